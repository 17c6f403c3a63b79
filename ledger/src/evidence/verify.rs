//! Verifying a bundle from the genesis spec alone: every check named, and
//! fail-closed (a check whose input is missing or malformed fails).

use super::*;

/// One named check and what it found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Check {
    pub name: String,
    pub ok: bool,
    pub detail: String,
}

/// Every check, in order. `ok()` only if all passed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Report {
    pub checks: Vec<Check>,
}

impl Report {
    pub fn ok(&self) -> bool {
        !self.checks.is_empty() && self.checks.iter().all(|c| c.ok)
    }

    /// Names of the checks that failed.
    pub fn failed(&self) -> Vec<&str> {
        self.checks
            .iter()
            .filter(|c| !c.ok)
            .map(|c| c.name.as_str())
            .collect()
    }

    pub(crate) fn push(&mut self, name: &str, r: Result<String, String>) {
        let (ok, detail) = match r {
            Ok(d) => (true, d),
            Err(d) => (false, d),
        };
        self.checks.push(Check {
            name: name.into(),
            ok,
            detail,
        });
    }

    /// A report of one failed check (for input that did not even parse).
    pub fn failed_with(name: &str, detail: impl Into<String>) -> Report {
        Report {
            checks: vec![Check {
                name: name.into(),
                ok: false,
                detail: detail.into(),
            }],
        }
    }
}

/// What a verifier trusts, the genesis file, and what it derives from it
/// once: its hash, the validator set and quorum, their keys.
#[derive(Debug, Clone)]
pub struct Genesis {
    pub spec: ChainSpec,
    pub hash: H32,
    /// The checkpoints' origin and key names.
    pub log: LogIdentity,
    pub(super) set: Vec<Validator>,
    pub(super) quorum: usize,
    pub(super) set_hash: H32,
    pub(super) known: NoteKeys,
}

impl Genesis {
    pub fn new(spec: &ChainSpec) -> Result<Self, LedgerError> {
        // The genesis set; a bundle's membership records change it
        // (`derive_set`).
        let set = spec.validators.clone();
        let hash = H32(spec.hash()?);
        let log = LogIdentity::new(&spec.chain_id, spec.log_host.as_deref(), &hash);
        Ok(Genesis {
            hash,
            quorum: seal::quorum(spec, &set),
            set_hash: seal::validator_set_hash(&set)?,
            known: seal::note_keys(&log, &set)?,
            log,
            set,
            spec: spec.clone(),
        })
    }

    /// The bundle format this chain's bundles have.
    pub fn format(&self) -> &'static str {
        format_for(self.log.format)
    }

    /// The C2SP vkeys of a validator set under this chain's key names, in
    /// set order: what a format 2 bundle's `validators.vkeys` holds; `None`
    /// in format 1, whose bundles have none.
    pub fn vkeys(&self, set: &[Validator]) -> Result<Option<Vec<String>>, LedgerError> {
        if self.log.format == NoteFormat::V1 {
            return Ok(None);
        }
        set.iter()
            .map(|v| Ok(self.log.vkey(&v.name, &seal::public_key(v)?)))
            .collect::<Result<_, _>>()
            .map(Some)
    }
}

/// Parses a bundle file strictly (unknown fields refused, size bounded).
pub fn parse_bundle(bytes: &[u8]) -> Result<Bundle, String> {
    if bytes.len() > BUNDLE_BYTES_MAX {
        return Err(format!("bundle is over {BUNDLE_BYTES_MAX} bytes"));
    }
    crate::strict_json::from_slice(bytes)
        .map_err(|e| format!("not a {FORMAT_V1} or {FORMAT_V2} bundle: {e}"))
}

/// Verifies a bundle against the genesis spec; runs every check.
pub fn verify(b: &Bundle, spec: &ChainSpec) -> Report {
    match Genesis::new(spec) {
        Ok(g) => verify_with(b, &g),
        Err(e) => Report::failed_with(check::BUNDLE, format!("genesis file: {e}")),
    }
}

/// [`verify_with`], and with a witness policy (c2sp.org/tlog-policy) the
/// `witnesses` check after `checkpoint_signatures`: the note's witness
/// cosignatures meet the policy's quorum.
pub fn verify_with_policy(
    b: &Bundle,
    trust: &Genesis,
    policy: Option<&crate::witness::Policy>,
) -> Report {
    let mut r = verify_with(b, trust);
    let Some(policy) = policy else {
        return r;
    };
    let check = SignedNote::parse(&b.checkpoint)
        .map_err(|e| format!("checkpoint note: {e}"))
        .and_then(|n| policy.check(&n))
        .map(|by| {
            if by.is_empty() {
                "the policy requires no witness".to_string()
            } else {
                let names: Vec<String> = by
                    .iter()
                    .map(|(name, t)| format!("{name} at {t} s"))
                    .collect();
                format!(
                    "cosigned by {}: the policy's quorum is met",
                    names.join(", ")
                )
            }
        });
    let at = r
        .checks
        .iter()
        .position(|c| c.name == check::CHECKPOINT_SIGNATURES)
        .map_or(r.checks.len(), |i| i + 1);
    let (ok, detail) = match check {
        Ok(d) => (true, d),
        Err(d) => (false, d),
    };
    r.checks.insert(
        at,
        Check {
            name: check::WITNESSES.into(),
            ok,
            detail,
        },
    );
    r
}

/// [`verify()`] with the genesis-derived values computed once.
pub fn verify_with(b: &Bundle, trust: &Genesis) -> Report {
    let spec = &trust.spec;
    let cp = parse_checkpoint(&b.checkpoint);
    let mut r = Report { checks: Vec::new() };
    r.push(check::BUNDLE, check_bundle(b, trust));
    let tx = check_record(b, spec);
    r.push(
        check::RECORD_SIGNATURE,
        tx.as_ref().map(|t| t.1.clone()).map_err(Clone::clone),
    );
    let tx = tx.ok().map(|t| t.0);
    r.push(
        check::SIGNER_KEY,
        check_signer_key(b, spec, tx.as_ref(), &cp),
    );
    r.push(check::BLOCK_HEADER, check_headers(b, spec));
    r.push(check::INCLUSION, check_inclusion(b, &cp));
    r.push(
        check::CHECKPOINT_MATCHES_HEADER,
        check_checkpoint_header(b.headers.last(), trust, &cp),
    );
    let in_force = derive_set(&b.validators, b.headers.last(), trust, &cp);
    r.push(
        check::VALIDATOR_SET,
        check_validator_set(&b.validators, b.headers.last(), trust, &in_force),
    );
    r.push(
        check::CHECKPOINT_SIGNATURES,
        check_quorum(&b.checkpoint, &in_force),
    );
    r.push(check::BLOCK_TIME, check_block_time(b, spec, tx.as_ref()));
    r.push(
        check::SUMMARY,
        if summary(b, spec) == b.summary {
            Ok("the summary states what the bundle proves".into())
        } else {
            Err("the summary does not match the bundle's contents".into())
        },
    );
    r
}

pub(crate) fn parse_checkpoint(note: &str) -> Result<Checkpoint, String> {
    let n = SignedNote::parse(note).map_err(|e| format!("checkpoint note: {e}"))?;
    Checkpoint::parse_text(&n.text).map_err(|e| format!("checkpoint: {e}"))
}

pub(super) fn check_bundle(b: &Bundle, g: &Genesis) -> Result<String, String> {
    let spec = &g.spec;
    if b.format != g.format() {
        return Err(format!(
            "format is `{}`; this genesis's bundles are `{}`",
            b.format,
            g.format()
        ));
    }
    if b.chain_id != spec.chain_id {
        return Err(format!(
            "bundle is for chain `{}`, the genesis file for `{}`",
            b.chain_id, spec.chain_id
        ));
    }
    if b.genesis_hash != g.hash {
        return Err(format!(
            "genesis hash {} is not the genesis file's {}",
            b.genesis_hash, g.hash
        ));
    }
    Ok(format!(
        "{}, chain `{}`, genesis {}",
        b.format, b.chain_id, b.genesis_hash
    ))
}

pub(super) fn check_record(b: &Bundle, spec: &ChainSpec) -> Result<(SignedTx, String), String> {
    check_signed_record(&b.record, &b.tx_id, spec)
}

/// A record as signed: its signature, chain and id.
pub(super) fn check_signed_record(
    record: &Value,
    tx_id: &H32,
    spec: &ChainSpec,
) -> Result<(SignedTx, String), String> {
    let tx = SignedTx::from_value(record.clone()).map_err(|r| format!("record: {r}"))?;
    tx.verify_signature().map_err(|r| format!("record: {r}"))?;
    let (common, _) = record::parse_body(&tx.body).map_err(|r| format!("record body: {r}"))?;
    if common.chain_id != spec.chain_id {
        return Err(format!(
            "the record is for chain `{}`, the genesis file for `{}`",
            common.chain_id, spec.chain_id
        ));
    }
    if tx.id != tx_id.0 {
        return Err(format!(
            "the record's id is {}, the bundle claims {tx_id}",
            H32(tx.id),
        ));
    }
    let alg = tx.signer.alg();
    if alg == crate::signing::SigAlg::Sm2Sm3 && !spec.sm2_accounts {
        return Err(
            "the record is SM2-signed, and this chain's genesis has no `sm2_accounts`".into(),
        );
    }
    let detail = format!(
        "{} signature by {} verifies; tx id {tx_id} = SHA-256(ZSL-TX-V1\\0 ‖ JCS(body))",
        alg.label(),
        tx.signer.to_hex(),
    );
    Ok((tx, detail))
}

pub(super) fn check_signer_key(
    b: &Bundle,
    spec: &ChainSpec,
    tx: Option<&SignedTx>,
    cp: &Result<Checkpoint, String>,
) -> Result<String, String> {
    let height = b.headers.first().map(|h| h.height).ok_or("no headers")?;
    check_key(&b.signer_key, b.leaf_index, Some(height), spec, tx, cp)
}

/// The signer's key of a record at `leaf_index` (in block `height`, when
/// known, for the revocation check): a genesis root regulator's, or bound
/// by a record included before it in the checkpoint's tree.
pub(super) fn check_key(
    k: &SignerKey,
    leaf_index: u64,
    height: Option<u64>,
    spec: &ChainSpec,
    tx: Option<&SignedTx>,
    cp: &Result<Checkpoint, String>,
) -> Result<String, String> {
    let tx = tx.ok_or("the record does not verify, so neither can its key")?;
    let (common, _) = record::parse_body(&tx.body).map_err(|r| format!("record body: {r}"))?;
    let signer = hex::encode(tx.signer);
    if k.account != common.account || k.public_key != signer {
        return Err(format!(
            "signer_key names {} / {}, the record {} / {}",
            k.account, k.public_key, common.account, signer
        ));
    }
    if let (Some(rev), Some(height)) = (&k.revoked, height) {
        if rev.height < height {
            return Err(format!(
                "the key was revoked at height {}, before block {height}",
                rev.height
            ));
        }
    }
    let how = match &k.binding {
        None => {
            if !spec
                .root_regulators
                .iter()
                .any(|r| r.id == k.account && r.public_key == k.public_key)
            {
                return Err(format!(
                    "no binding record, and `{}` with this key is not a root regulator of genesis",
                    k.account
                ));
            }
            "a root regulator's key in the genesis file".to_string()
        }
        Some(bind) => {
            let cp = cp.as_ref().map_err(Clone::clone)?;
            let btx = SignedTx::from_value(bind.record.clone())
                .map_err(|r| format!("binding record: {r}"))?;
            btx.verify_signature()
                .map_err(|r| format!("binding record: {r}"))?;
            if btx.id != bind.tx_id.0 {
                return Err("the binding record's id is not its tx_id".into());
            }
            let (bcommon, _) =
                record::parse_body(&btx.body).map_err(|r| format!("binding record: {r}"))?;
            if bcommon.chain_id != spec.chain_id {
                return Err("the binding record is for another chain".into());
            }
            let (_, account_field) = KEY_BINDING_TYPES
                .iter()
                .find(|(t, _)| *t == bcommon.kind)
                .ok_or_else(|| format!("a `{}` record binds no key", bcommon.kind))?;
            let bound_account = btx.body.get(*account_field).and_then(Value::as_str);
            let bound_key = btx.body.get("public_key").and_then(Value::as_str);
            if bound_account != Some(k.account.as_str()) || bound_key != Some(signer.as_str()) {
                return Err("the binding record binds another key or account".into());
            }
            if bind.leaf_index >= leaf_index {
                return Err(format!(
                    "the binding (leaf {}) is not before the record (leaf {leaf_index})",
                    bind.leaf_index
                ));
            }
            included(&bind.tx_id, bind.leaf_index, &bind.inclusion, cp)
                .map_err(|e| format!("binding record inclusion: {e}"))?;
            format!(
                "bound by {} {} at leaf {}, included in the checkpoint's tree",
                bcommon.kind, bind.tx_id, bind.leaf_index
            )
        }
    };
    let later = match &k.revoked {
        Some(rev) => format!(
            "; revoked later at height {} (signatures before stay valid)",
            rev.height
        ),
        None => String::new(),
    };
    Ok(format!("key of `{}`: {how}{later}", k.account))
}

pub(super) fn check_headers(b: &Bundle, spec: &ChainSpec) -> Result<String, String> {
    let first = b.headers.first().ok_or("no headers")?;
    let last = b.headers.last().ok_or("no headers")?;
    if b.headers.len() > HEADERS_MAX {
        return Err(format!("more than {HEADERS_MAX} headers"));
    }
    for h in &b.headers {
        if h.chain_id != spec.chain_id {
            return Err(format!("header {} is for chain `{}`", h.height, h.chain_id));
        }
    }
    for w in b.headers.windows(2) {
        if w[1].height != w[0].height.wrapping_add(1) || w[1].prev_hash != w[0].hash() {
            return Err(format!(
                "header {} does not follow header {} (height or prev_hash)",
                w[1].height, w[0].height
            ));
        }
        if w[1].tree_size < w[0].tree_size {
            return Err(format!("the tree shrinks at header {}", w[1].height));
        }
    }
    let start = first
        .tree_size
        .checked_sub(u64::from(first.tx_count))
        .ok_or("header tx_count exceeds its tree size")?;
    if b.leaf_index < start
        || b.leaf_index >= first.tree_size
        || b.leaf_index - start != u64::from(b.tx_index)
    {
        return Err(format!(
            "leaf {} / index {} is not in block {} (leaves {start}..{})",
            b.leaf_index, b.tx_index, first.height, first.tree_size
        ));
    }
    Ok(format!(
        "block {} hash {} (SHA-256 of its header), chained to block {} hash {}",
        first.height,
        first.hash(),
        last.height,
        last.hash()
    ))
}

/// Whether the record `tx_id` is leaf `leaf_index` of the checkpoint's
/// tree by the audit path `path` (RFC 9162; leaf `SHA-256(0x00 ‖ tx_id)`).
pub(super) fn included(
    tx_id: &H32,
    leaf_index: u64,
    path: &[H32],
    cp: &Checkpoint,
) -> Result<(), String> {
    let path: Vec<merkle::Hash> = path.iter().map(|h| h.0).collect();
    merkle::verify_inclusion(
        &merkle::leaf_hash(&tx_id.0),
        leaf_index,
        cp.tree_size,
        &path,
        &cp.root.0,
    )
    .map_err(|e| e.to_string())
}

pub(super) fn check_inclusion(
    b: &Bundle,
    cp: &Result<Checkpoint, String>,
) -> Result<String, String> {
    let cp = cp.as_ref().map_err(Clone::clone)?;
    included(&b.tx_id, b.leaf_index, &b.inclusion, cp)
        .map_err(|e| format!("leaf {} in tree of {}: {e}", b.leaf_index, cp.tree_size))?;
    Ok(format!(
        "leaf {} (SHA-256(0x00 ‖ tx id)) + {} hashes = root {} of tree size {}",
        b.leaf_index,
        b.inclusion.len(),
        cp.root,
        cp.tree_size
    ))
}

pub(super) fn check_checkpoint_header(
    last: Option<&BlockHeader>,
    g: &Genesis,
    cp: &Result<Checkpoint, String>,
) -> Result<String, String> {
    let cp = cp.as_ref().map_err(Clone::clone)?;
    let last = last.ok_or("no headers")?;
    let mismatch = |what: &str| {
        Err(format!(
            "checkpoint {what} differs from block {}",
            last.height
        ))
    };
    if cp.origin != g.log.origin {
        return Err(format!(
            "checkpoint origin `{}` is not this genesis's `{}`",
            cp.origin, g.log.origin
        ));
    }
    if cp.tree_size != last.tree_size {
        return mismatch("tree size");
    }
    if cp.root != last.tree_root {
        return mismatch("root");
    }
    if cp.height != last.height {
        return mismatch("height");
    }
    if cp.block_hash != last.hash() {
        return mismatch("block hash");
    }
    if cp.time_ms != last.time_ms {
        return mismatch("time");
    }
    if last.tx_count == 0 {
        return Err("the checkpoint's block did not grow the tree, so it has no checkpoint".into());
    }
    Ok(format!(
        "size {}, root, height {}, block hash and time match header {}",
        cp.tree_size, cp.height, cp.height
    ))
}

/// The validator set in force at the bundle's checkpoint and its quorum, as
/// the `validator_set` check derives them from genesis.
pub(crate) fn validators_in_force(
    b: &Bundle,
    g: &Genesis,
) -> Result<(Vec<Validator>, usize), String> {
    let cp = parse_checkpoint(&b.checkpoint);
    let f = derive_set(&b.validators, b.headers.last(), g, &cp);
    check_validator_set(&b.validators, b.headers.last(), g, &f)?;
    let f = f?;
    Ok((f.set, f.quorum))
}

pub(super) struct InForce {
    pub(super) set: Vec<Validator>,
    pub(super) quorum: usize,
    pub(super) hash: H32,
    pub(super) known: NoteKeys,
}

/// Applies the bundle's membership records to the genesis set, checking
/// each: signed by a root regulator of genesis (the province's trust anchor,
/// so the set cannot be rewritten without its key), in commit order,
/// committed before the checkpoint's block, included in its tree, and a
/// change the state machine would have made.
pub(super) fn derive_set(
    v: &ValidatorEvidence,
    last: Option<&BlockHeader>,
    g: &Genesis,
    cp: &Result<Checkpoint, String>,
) -> Result<InForce, String> {
    if v.changes.is_empty() {
        return Ok(InForce {
            set: g.set.clone(),
            quorum: g.quorum,
            hash: g.set_hash,
            known: g.known.clone(),
        });
    }
    let cp = cp.as_ref().map_err(Clone::clone)?;
    let last = last.ok_or("no headers")?;
    let block_start = last.tree_size.saturating_sub(u64::from(last.tx_count));
    let mut set = g.set.clone();
    let mut prev_leaf = None;
    for (i, c) in v.changes.iter().enumerate() {
        let at = |e: String| format!("membership record {i} ({}): {e}", c.tx_id);
        let tx = SignedTx::from_value(c.record.clone()).map_err(|r| at(r.to_string()))?;
        tx.verify_signature().map_err(|r| at(r.to_string()))?;
        if tx.id != c.tx_id.0 {
            return Err(at("its id is not tx_id".into()));
        }
        let (common, rec) = record::parse_body(&tx.body).map_err(|r| at(r.to_string()))?;
        if common.chain_id != g.spec.chain_id {
            return Err(at("for another chain".into()));
        }
        let signer = hex::encode(tx.signer);
        if !g
            .spec
            .root_regulators
            .iter()
            .any(|r| r.id == common.account && r.public_key == signer)
        {
            return Err(at("not signed by a root regulator of genesis".into()));
        }
        if prev_leaf.is_some_and(|p| c.leaf_index <= p) || c.leaf_index >= block_start {
            return Err(at(format!(
                "leaf {} is out of order or not before the checkpoint's block",
                c.leaf_index
            )));
        }
        prev_leaf = Some(c.leaf_index);
        included(&c.tx_id, c.leaf_index, &c.inclusion, cp)
            .map_err(|e| at(format!("inclusion: {e}")))?;
        match rec {
            record::Record::ValidatorAdd(r) => {
                if set.len() >= seal::VALIDATORS_MAX
                    || set.iter().any(|v| {
                        v.node_id == r.node_id || v.name == r.name || v.public_key == r.public_key
                    })
                {
                    return Err(at("adds a validator the set could not take".into()));
                }
                set.push(Validator {
                    node_id: r.node_id,
                    name: r.name,
                    public_key: r.public_key,
                });
                set.sort_by_key(|v| v.node_id);
            }
            record::Record::ValidatorRemove(r) => {
                let before = set.len();
                set.retain(|v| v.node_id != r.node_id);
                if set.len() == before || set.is_empty() {
                    return Err(at("removes a validator the set could not lose".into()));
                }
            }
            _ => {
                return Err(at(format!(
                    "a `{}` record is not a membership record",
                    common.kind
                )))
            }
        }
    }
    Ok(InForce {
        quorum: seal::quorum(&g.spec, &set),
        hash: seal::validator_set_hash(&set).map_err(|e| e.to_string())?,
        known: seal::note_keys(&g.log, &set).map_err(|e| e.to_string())?,
        set,
    })
}

pub(super) fn check_validator_set(
    v: &ValidatorEvidence,
    last: Option<&BlockHeader>,
    g: &Genesis,
    in_force: &Result<InForce, String>,
) -> Result<String, String> {
    let f = in_force.as_ref().map_err(Clone::clone)?;
    if v.vkeys != g.vkeys(&f.set).map_err(|e| e.to_string())? {
        return Err("vkeys are not the note keys of the derived set".into());
    }
    if v.set != f.set {
        return Err("the set differs from the one genesis and the membership records give".into());
    }
    if v.quorum != f.quorum as u64 {
        return Err(format!(
            "quorum {} is not the derived {}",
            v.quorum, f.quorum
        ));
    }
    let last = last.ok_or("no headers")?;
    if last.validators_hash != f.hash {
        return Err(format!(
            "header {}'s validators_hash is not that of the derived set",
            last.height
        ));
    }
    Ok(format!(
        "{} validators from genesis and {} membership record(s); hash {} in the checkpoint's header",
        f.set.len(),
        v.changes.len(),
        f.hash
    ))
}

/// The note check of c2sp.org/signed-note, counted over the validators in
/// force: lines by other keys are ignored (a witness's cosignature, or any
/// key the genesis does not name); a validator's line that fails to verify
/// fails (a repeated one counts once); then at least a quorum.
pub(super) fn check_note_signatures(
    note: &str,
    known: &NoteKeys,
    quorum: usize,
) -> Result<crate::checkpoint::NoteVerdict, String> {
    let n = SignedNote::parse(note).map_err(|e| format!("checkpoint note: {e}"))?;
    let verdict = n.verify(known).map_err(|e| e.to_string())?;
    if verdict.signers.len() < quorum {
        return Err(format!(
            "{} valid validator signatures; the quorum is {quorum}",
            verdict.signers.len(),
        ));
    }
    Ok(verdict)
}

/// The `checkpoint_signatures` check: the note meets the quorum of the set
/// in force.
pub(super) fn check_quorum(
    note: &str,
    in_force: &Result<InForce, String>,
) -> Result<String, String> {
    match in_force {
        Err(_) => Err("the validator set in force does not follow from genesis".into()),
        Ok(f) => check_note_signatures(note, &f.known, f.quorum)
            .map(|v| quorum_detail(&v, f.set.len(), f.quorum)),
    }
}

/// How a note's signatures met the quorum, in words.
pub(super) fn quorum_detail(
    v: &crate::checkpoint::NoteVerdict,
    validators: usize,
    quorum: usize,
) -> String {
    let ignored = match v.ignored {
        0 => String::new(),
        n => format!("; {n} signature line(s) by keys that are not validators in force ignored"),
    };
    format!(
        "{} of {validators} validators signed ({}); the quorum is {quorum}{ignored}",
        v.signers.len(),
        v.signers.join(", "),
    )
}

pub(super) fn check_block_time(
    b: &Bundle,
    spec: &ChainSpec,
    tx: Option<&SignedTx>,
) -> Result<String, String> {
    let first = b.headers.first().ok_or("no headers")?;
    let genesis = spec.genesis_time_ms().map_err(|e| e.to_string())?;
    if first.time_ms <= genesis {
        return Err("the block is not after genesis".into());
    }
    if b.headers.windows(2).any(|w| w[1].time_ms <= w[0].time_ms) {
        return Err("block times do not strictly increase".into());
    }
    let tx = tx.ok_or("the record does not verify, so its time cannot be checked")?;
    let (common, _) = record::parse_body(&tx.body).map_err(|r| format!("record body: {r}"))?;
    let t = first.time_ms;
    if common.created_at_ms < t.saturating_sub(spec.tx_window_past_ms)
        || common.created_at_ms > t.saturating_add(spec.tx_window_future_ms)
    {
        return Err(format!(
            "created_at {} is outside the genesis window around block time {}",
            common.created_at_ms, t
        ));
    }
    Ok(format!(
        "block time {} ({} ms), within the window of the record's created_at",
        local_time(spec, t),
        t
    ))
}
