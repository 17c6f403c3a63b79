//! Evidence bundles (区块链固证): everything an inspector, a court or another
//! province needs to check, with nothing but the genesis file, that a record
//! existed unaltered at a time and was accepted by a quorum of validators.
//!
//! A bundle (`"format": "zsl-evidence/1"`, docs/evidence.md) carries the
//! record as signed, the record that bound its signer's key, the block
//! headers from the record's block up to the first sealed checkpoint at or
//! after it, RFC 9162 inclusion proofs into that checkpoint's tree, the
//! checkpoint as a C2SP signed note, and the validator set in force.
//! [`build`] makes one from any [`KvRead`] (pure: no clock, no I/O beyond the
//! reads); [`verify`] re-derives everything from the genesis spec and names
//! each check. Verification fails closed: a check whose input is missing or
//! malformed fails, and an unknown signature line fails rather than being
//! ignored, because a bundle is produced by this ledger only and every byte
//! of it is meant to be accounted for.

use std::collections::{BTreeMap, BTreeSet};

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use ed25519_dalek::{Signature, VerifyingKey};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::block::BlockHeader;
use crate::checkpoint::{key_id, Checkpoint, NoteSignature, SignedNote};
use crate::error::LedgerError;
use crate::hash::H32;
use crate::history::{block_key, read_tx, TreeReader};
use crate::kv::{KvRead, Space};
use crate::merkle;
use crate::record;
use crate::seal;
use crate::signing::SignedTx;
use crate::spec::{ChainSpec, Validator};
use crate::state::{self, Account, Origin};

/// The bundle format this code writes and verifies.
pub const FORMAT: &str = "zsl-evidence/1";
/// The consistency-proof format (`GET /v1/proofs/consistency`).
pub const CONSISTENCY_FORMAT: &str = "zsl-consistency/1";
/// First line of the C2SP tlog-proof text form.
pub const TLOG_PROOF_HEADER: &str = "c2sp.org/tlog-proof@v1";
/// Headers a bundle may carry between the record's block and its sealed
/// checkpoint. Validators sign every tree-growing block, so the gap is one
/// block in normal operation; a longer gap means sealing stalled, and a
/// bundle then waits rather than growing without bound.
pub const HEADERS_MAX: usize = 1_024;
/// Bytes of a bundle or proof file a verifier reads at most.
pub const BUNDLE_BYTES_MAX: usize = 1 << 20;

/// Record types that bind a public key to an account, and the body field
/// naming that account.
pub const KEY_BINDING_TYPES: [(&str, &str); 3] = [
    ("account.register", "id"),
    ("subject.register", "uscc"),
    ("key.bind", "target"),
];

/// Check names, stable: tools and tests match on them.
pub mod check {
    pub const BUNDLE: &str = "bundle";
    pub const RECORD_SIGNATURE: &str = "record_signature";
    pub const SIGNER_KEY: &str = "signer_key";
    pub const BLOCK_HEADER: &str = "block_header";
    pub const INCLUSION: &str = "inclusion";
    pub const CHECKPOINT_MATCHES_HEADER: &str = "checkpoint_matches_header";
    pub const VALIDATOR_SET: &str = "validator_set";
    pub const CHECKPOINT_SIGNATURES: &str = "checkpoint_signatures";
    pub const BLOCK_TIME: &str = "block_time";
    pub const SUMMARY: &str = "summary";
    // Consistency (append-only) checks.
    pub const OLD_CHECKPOINT: &str = "old_checkpoint";
    pub const NEW_CHECKPOINT: &str = "new_checkpoint";
    pub const CONSISTENCY: &str = "consistency";
}

/// A self-contained, offline-verifiable proof that a record was committed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Bundle {
    /// Always [`FORMAT`].
    pub format: String,
    pub chain_id: String,
    /// SHA-256 of the RFC 8785 form of the genesis file (block 0's `prev_hash`).
    pub genesis_hash: H32,
    /// SHA-256 of `ZSL-TX-V1\0 ‖ JCS(record.body)`.
    pub tx_id: H32,
    /// The record as signed: `{body, signer, sig}`.
    pub record: Value,
    pub signer_key: SignerKey,
    /// Headers from the record's block (first) to the checkpoint's block
    /// (last), consecutive heights.
    pub headers: Vec<BlockHeader>,
    /// Position of the record in its block.
    pub tx_index: u32,
    /// Position of the record in the transaction tree.
    pub leaf_index: u64,
    /// RFC 9162 audit path from the record's leaf to the checkpoint's root.
    pub inclusion: Vec<H32>,
    /// The sealed checkpoint as a C2SP signed note (text, blank line, signature lines).
    pub checkpoint: String,
    pub validators: ValidatorEvidence,
    pub summary: Summary,
}

/// The signer's key and how it came to the account.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SignerKey {
    pub account: String,
    /// Ed25519 public key, lowercase hex.
    pub public_key: String,
    /// The record that bound the key; `null` for a root regulator's genesis key.
    pub binding: Option<KeyBinding>,
    /// When the key was revoked, if it was (signatures made before stay valid).
    pub revoked: Option<Origin>,
}

/// A key-binding record (`account.register`, `subject.register`, `key.bind`)
/// with its proof into the same checkpoint.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeyBinding {
    pub tx_id: H32,
    pub record: Value,
    pub leaf_index: u64,
    pub inclusion: Vec<H32>,
}

/// The validator set the checkpoint's signatures are counted against, and how
/// it follows from genesis.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ValidatorEvidence {
    /// Every membership record (`validator.add`, `validator.remove`) in force
    /// at the checkpoint, in commit (leaf) order: applied to the genesis set
    /// they give `set`. Empty: the genesis set is in force.
    pub changes: Vec<MembershipChange>,
    pub set: Vec<Validator>,
    /// Signatures needed (the genesis `checkpoint_quorum`, or a majority).
    pub quorum: u64,
}

/// A membership record with its proof into the bundle's checkpoint.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MembershipChange {
    pub tx_id: H32,
    /// The record as signed, `{body, signer, sig}`.
    pub record: Value,
    pub leaf_index: u64,
    pub inclusion: Vec<H32>,
}

/// Record types that change the validator set.
pub const MEMBERSHIP_TYPES: [&str; 2] = ["validator.add", "validator.remove"];

/// A short human summary, regenerated and compared by the verifier.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Summary {
    pub zh: String,
    pub en: String,
}

/// Why no bundle could be built.
#[derive(Debug, thiserror::Error)]
pub enum EvidenceError {
    #[error("no committed transaction {0}")]
    NotFound(String),
    #[error("transaction {tx} (block {height}) is not yet sealed: no checkpoint at or after its block has a quorum of validator signatures yet; retry shortly")]
    NotYetSealed { tx: String, height: u64 },
    #[error("no sealed checkpoint within {HEADERS_MAX} blocks of block {0}")]
    TooFar(u64),
    #[error(transparent)]
    Ledger(#[from] LedgerError),
}

fn corrupt(what: impl Into<String>) -> EvidenceError {
    EvidenceError::Ledger(LedgerError::Corrupt(what.into()))
}

fn hashes(v: Vec<merkle::Hash>) -> Vec<H32> {
    v.into_iter().map(H32).collect()
}

fn wire_value(wire: &[u8]) -> Result<Value, EvidenceError> {
    serde_json::from_slice(wire).map_err(|e| corrupt(format!("stored wire form: {e}")))
}

/// Builds the bundle for committed transaction `tx_id`.
pub fn build(
    kv: &(impl KvRead + ?Sized),
    spec: &ChainSpec,
    tx_id: &[u8; 32],
) -> Result<Bundle, EvidenceError> {
    build_with(kv, &Genesis::new(spec)?, tx_id)
}

/// A block's header and hash, decoded without the block's tx ids (a full
/// block under load holds thousands of them; a bundle needs none).
#[derive(Deserialize)]
struct BlockPrefix {
    header: BlockHeader,
    hash: H32,
}

/// The header of block `height`, if it exists.
pub fn read_header(
    kv: &(impl KvRead + ?Sized),
    height: u64,
) -> Result<Option<BlockHeader>, LedgerError> {
    let key = block_key(height);
    match kv.get(Space::Blocks, &key)? {
        Some(bytes) => {
            let p: BlockPrefix = state::decode(&key, &bytes)?;
            if p.hash != p.header.hash() {
                return Err(LedgerError::Corrupt(format!("block {height}: hash")));
            }
            Ok(Some(p.header))
        }
        None => Ok(None),
    }
}

/// Block `height`'s checkpoint as a signed note with every recorded
/// signature of a validator in force, and that set. `None` when the block
/// does not exist, has no checkpoint, or nobody signed it. (Like
/// `seal::signed_checkpoint`, but from the header alone.)
pub fn sealed_checkpoint(
    kv: &(impl KvRead + ?Sized),
    spec: &ChainSpec,
    height: u64,
) -> Result<Option<(Checkpoint, SignedNote, Vec<Validator>)>, LedgerError> {
    let Some(header) = read_header(kv, height)? else {
        return Ok(None);
    };
    if header.tx_count == 0 {
        return Ok(None);
    }
    let cp = Checkpoint {
        origin: spec.chain_id.clone(),
        tree_size: header.tree_size,
        root: header.tree_root,
        height,
        block_hash: header.hash(),
        time_ms: header.time_ms,
    };
    let set = seal::validator_set_at(kv, height)?;
    let mut signatures = Vec::new();
    for (name, sig) in seal::cosignatures(kv, height)? {
        let Some(v) = set.iter().find(|v| v.name == name) else {
            continue;
        };
        signatures.push(NoteSignature {
            key_id: key_id(&name, &seal::public_key(v)?),
            name,
            signature: sig,
        });
    }
    if signatures.is_empty() {
        return Ok(None);
    }
    let note = SignedNote {
        text: cp.text(),
        signatures,
    };
    Ok(Some((cp, note, set)))
}

// Long because a bundle is assembled in the order docs/evidence.md lists
// its parts, each a few bounded reads.
/// [`build`] with the genesis-derived values computed once.
pub fn build_with(
    kv: &(impl KvRead + ?Sized),
    g: &Genesis,
    tx_id: &[u8; 32],
) -> Result<Bundle, EvidenceError> {
    let spec = &g.spec;
    let id_hex = hex::encode(tx_id);
    let loc = read_tx(kv, tx_id)?.ok_or_else(|| EvidenceError::NotFound(id_hex.clone()))?;
    let sealed =
        seal::sealed_at_or_after(kv, loc.height)?.ok_or_else(|| EvidenceError::NotYetSealed {
            tx: id_hex.clone(),
            height: loc.height,
        })?;
    if sealed - loc.height >= HEADERS_MAX as u64 {
        return Err(EvidenceError::TooFar(loc.height));
    }
    let (cp, note, set) = sealed_checkpoint(kv, spec, sealed)?
        .ok_or_else(|| corrupt(format!("sealed block {sealed} has no signed checkpoint")))?;
    let mut headers = Vec::with_capacity((sealed - loc.height + 1) as usize);
    for h in loc.height..=sealed {
        headers.push(read_header(kv, h)?.ok_or_else(|| corrupt(format!("block {h} missing")))?);
    }
    let reader = TreeReader(kv);
    let inclusion = hashes(
        merkle::inclusion_proof(loc.leaf_index, cp.tree_size, &reader)
            .map_err(LedgerError::from)?,
    );
    let record = wire_value(&loc.wire)?;
    let tx = SignedTx::from_value(record.clone())
        .map_err(|r| corrupt(format!("stored transaction: {r}")))?;
    let signer_hex = hex::encode(tx.signer);
    let account: Account = state::get(kv, Space::State, &state::account_key(&loc.account))
        .map_err(LedgerError::from)?
        .ok_or_else(|| corrupt(format!("account `{}` missing", loc.account)))?;
    let entry = account
        .keys
        .iter()
        .find(|k| k.public_key == signer_hex)
        .ok_or_else(|| corrupt("the signing key is not on the account"))?;
    let binding = if entry.bound.tx.is_empty() {
        None
    } else {
        let bid =
            H32::parse(&entry.bound.tx).ok_or_else(|| corrupt("key binding tx id is not hex"))?;
        let bloc = read_tx(kv, &bid.0)?
            .ok_or_else(|| corrupt(format!("key binding tx {} missing", entry.bound.tx)))?;
        Some(KeyBinding {
            tx_id: bid,
            record: wire_value(&bloc.wire)?,
            leaf_index: bloc.leaf_index,
            inclusion: hashes(
                merkle::inclusion_proof(bloc.leaf_index, cp.tree_size, &reader)
                    .map_err(LedgerError::from)?,
            ),
        })
    };
    // A set recorded at height e came from membership records in block
    // e - 1 and is in force from e; those in force at the checkpoint are
    // the ones with e <= sealed.
    let mut changes = Vec::new();
    for (effective, _) in seal::validator_history(kv)?
        .iter()
        .filter(|(e, _)| *e > 0 && *e <= sealed)
    {
        let block = crate::history::read_block(kv, effective - 1)?
            .ok_or_else(|| corrupt(format!("block {} missing", effective - 1)))?;
        for id in &block.tx_ids {
            let l = read_tx(kv, &id.0)?
                .ok_or_else(|| corrupt(format!("tx {id} of block {} missing", effective - 1)))?;
            if MEMBERSHIP_TYPES.contains(&l.kind.as_str()) {
                changes.push(MembershipChange {
                    tx_id: *id,
                    record: wire_value(&l.wire)?,
                    leaf_index: l.leaf_index,
                    inclusion: hashes(
                        merkle::inclusion_proof(l.leaf_index, cp.tree_size, &reader)
                            .map_err(LedgerError::from)?,
                    ),
                });
            }
        }
    }
    let mut bundle = Bundle {
        format: FORMAT.into(),
        chain_id: spec.chain_id.clone(),
        genesis_hash: g.hash,
        tx_id: H32(*tx_id),
        record,
        signer_key: SignerKey {
            account: loc.account.clone(),
            public_key: signer_hex,
            binding,
            revoked: entry.revoked.clone(),
        },
        headers,
        tx_index: loc.index,
        leaf_index: loc.leaf_index,
        inclusion,
        checkpoint: note.render(),
        validators: ValidatorEvidence {
            changes,
            quorum: seal::quorum(spec, &set) as u64,
            set,
        },
        summary: Summary {
            zh: String::new(),
            en: String::new(),
        },
    };
    if cp.height != sealed {
        return Err(corrupt(format!(
            "the checkpoint sealed at block {sealed} names block {}",
            cp.height
        )));
    }
    bundle.summary = summary(&bundle, spec);
    Ok(bundle)
}

/// The human summary of a bundle, from its fields (the verifier regenerates
/// it, so a summary that says something else fails).
pub fn summary(b: &Bundle, spec: &ChainSpec) -> Summary {
    let body = b.record.get("body");
    let field = |k: &str| body.and_then(|v| v.get(k)).and_then(Value::as_str);
    let kind = field("type").unwrap_or("?");
    let account = field("account").unwrap_or("?");
    let (height, time) = b
        .headers
        .first()
        .map(|h| (h.height, local_time(spec, h.time_ms)))
        .unwrap_or((0, "?".into()));
    let cp = SignedNote::parse(&b.checkpoint)
        .ok()
        .and_then(|n| Checkpoint::parse_text(&n.text).ok().map(|c| (c, n)));
    let (cp_height, cp_size, sigs) = cp
        .map(|(c, n)| (c.height, c.tree_size, n.signatures.len()))
        .unwrap_or((0, 0, 0));
    let doc = match (field("document_hash"), field("title")) {
        (Some(h), Some(t)) => (
            format!("文件《{t}》（SHA-256 {h}）"),
            format!("document \"{t}\" (SHA-256 {h}) "),
        ),
        _ => (String::new(), String::new()),
    };
    Summary {
        zh: format!(
            "账户 {account} 签署的 {kind} 记录{doc_zh}（交易 {tx}）于 {time} 写入区块 {height}，\
             位于交易树第 {leaf} 号叶子；区块 {cp_height} 的检查点（树大小 {cp_size}）\
             由 {sigs} 个验证节点签名（法定数 {quorum}/{n}），可仅凭创世文件离线验证。",
            doc_zh = doc.0,
            tx = b.tx_id,
            leaf = b.leaf_index,
            quorum = b.validators.quorum,
            n = b.validators.set.len(),
        ),
        en: format!(
            "A {kind} record {doc_en}signed by account {account} (tx {tx}) was committed in block \
             {height} at {time}, leaf {leaf} of the transaction tree; the checkpoint of block \
             {cp_height} (tree size {cp_size}) carries {sigs} validator signatures (quorum \
             {quorum} of {n}) and verifies offline with the genesis file alone.",
            doc_en = doc.1,
            tx = b.tx_id,
            leaf = b.leaf_index,
            quorum = b.validators.quorum,
            n = b.validators.set.len(),
        ),
    }
}

/// A block time in the chain's time zone, e.g. `2024-03-01 09:00:01.000 +08:00`.
pub fn local_time(spec: &ChainSpec, time_ms: i64) -> String {
    let Ok(ts) = jiff::Timestamp::from_millisecond(time_ms) else {
        return format!("{time_ms} ms");
    };
    match spec.model.time_zone() {
        Ok(tz) => {
            let dt = tz.to_datetime(ts);
            let off = tz.to_offset(ts).seconds();
            let sign = if off < 0 { '-' } else { '+' };
            let off = off.unsigned_abs();
            format!(
                "{:04}-{:02}-{:02} {:02}:{:02}:{:02}.{:03} {sign}{:02}:{:02}",
                dt.year(),
                dt.month(),
                dt.day(),
                dt.hour(),
                dt.minute(),
                dt.second(),
                dt.millisecond(),
                off / 3600,
                off % 3600 / 60
            )
        }
        Err(_) => ts.to_string(),
    }
}

/// The C2SP tlog-proof text (c2sp.org/tlog-proof): header, `extra` = the tx
/// id (the leaf's data), `index`, the audit path in base64, a blank line, the
/// signed checkpoint.
pub fn tlog_proof(b: &Bundle) -> String {
    let mut out = format!(
        "{TLOG_PROOF_HEADER}\nextra {}\nindex {}\n",
        B64.encode(b.tx_id.0),
        b.leaf_index
    );
    for h in &b.inclusion {
        out.push_str(&B64.encode(h.0));
        out.push('\n');
    }
    out.push('\n');
    out.push_str(&b.checkpoint);
    out
}

/// A parsed tlog-proof: (extra, index, audit path, signed note text).
pub fn parse_tlog_proof(text: &str) -> Result<(Vec<u8>, u64, Vec<H32>, String), String> {
    if text.len() > BUNDLE_BYTES_MAX {
        return Err("proof too large".into());
    }
    let (head, note) = text
        .split_once("\n\n")
        .ok_or("no blank line before the checkpoint")?;
    let mut lines = head.split('\n');
    if lines.next() != Some(TLOG_PROOF_HEADER) {
        return Err(format!("first line must be {TLOG_PROOF_HEADER}"));
    }
    let mut line = lines.next().ok_or("missing index line")?;
    let mut extra = Vec::new();
    if let Some(e) = line.strip_prefix("extra ") {
        extra = B64.decode(e).map_err(|_| "extra is not base64")?;
        line = lines.next().ok_or("missing index line")?;
    }
    let index = line
        .strip_prefix("index ")
        .and_then(|s| s.parse::<u64>().ok())
        .ok_or("bad index line")?;
    let mut path = Vec::new();
    for l in lines {
        let h: [u8; 32] = B64
            .decode(l)
            .ok()
            .and_then(|v| v.try_into().ok())
            .ok_or("a proof line is not a base64 SHA-256 hash")?;
        path.push(H32(h));
        if path.len() > merkle::MAX_PROOF_HASHES {
            return Err("proof too long".into());
        }
    }
    Ok((extra, index, path, note.to_string()))
}

// ---- verification -----------------------------------------------------------

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

    fn push(&mut self, name: &str, r: Result<String, String>) {
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
    set: Vec<Validator>,
    quorum: usize,
    set_hash: H32,
    known: BTreeMap<String, [u8; 32]>,
}

impl Genesis {
    pub fn new(spec: &ChainSpec) -> Result<Self, LedgerError> {
        // The genesis set; a bundle's membership records change it
        // (`derive_set`).
        let set = spec.validators.clone();
        Ok(Genesis {
            hash: H32(spec.hash()?),
            quorum: seal::quorum(spec, &set),
            set_hash: seal::validator_set_hash(&set)?,
            known: seal::known_keys(&set)?,
            set,
            spec: spec.clone(),
        })
    }
}

/// Parses a bundle file strictly (unknown fields refused, size bounded).
pub fn parse_bundle(bytes: &[u8]) -> Result<Bundle, String> {
    if bytes.len() > BUNDLE_BYTES_MAX {
        return Err(format!("bundle is over {BUNDLE_BYTES_MAX} bytes"));
    }
    serde_json::from_slice(bytes).map_err(|e| format!("not a {FORMAT} bundle: {e}"))
}

/// Verifies a bundle against the genesis spec; runs every check.
pub fn verify(b: &Bundle, spec: &ChainSpec) -> Report {
    match Genesis::new(spec) {
        Ok(g) => verify_with(b, &g),
        Err(e) => Report::failed_with(check::BUNDLE, format!("genesis file: {e}")),
    }
}

/// [`verify`] with the genesis-derived values computed once.
pub fn verify_with(b: &Bundle, trust: &Genesis) -> Report {
    let spec = &trust.spec;
    let cp = parse_checkpoint(&b.checkpoint);
    let mut r = Report { checks: Vec::new() };
    r.push(check::BUNDLE, check_bundle(b, trust));
    let tx = check_record(b);
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
        check_checkpoint_header(b, spec, &cp),
    );
    let in_force = derive_set(b, trust, &cp);
    r.push(check::VALIDATOR_SET, check_validator_set(b, &in_force));
    r.push(
        check::CHECKPOINT_SIGNATURES,
        match &in_force {
            Err(_) => Err("the validator set in force does not follow from genesis".into()),
            Ok(f) => check_note_signatures(&b.checkpoint, &f.known, f.quorum).map(|names| {
                format!(
                    "{} of {} validators signed ({}); the quorum is {}",
                    names.len(),
                    f.set.len(),
                    names.join(", "),
                    f.quorum
                )
            }),
        },
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

fn parse_checkpoint(note: &str) -> Result<Checkpoint, String> {
    let n = SignedNote::parse(note).map_err(|e| format!("checkpoint note: {e}"))?;
    Checkpoint::parse_text(&n.text).map_err(|e| format!("checkpoint: {e}"))
}

fn check_bundle(b: &Bundle, g: &Genesis) -> Result<String, String> {
    let spec = &g.spec;
    if b.format != FORMAT {
        return Err(format!("format is `{}`, expected `{FORMAT}`", b.format));
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
        "{FORMAT}, chain `{}`, genesis {}",
        b.chain_id, b.genesis_hash
    ))
}

fn check_record(b: &Bundle) -> Result<(SignedTx, String), String> {
    let tx = SignedTx::from_value(b.record.clone()).map_err(|r| format!("record: {r}"))?;
    tx.verify_signature().map_err(|r| format!("record: {r}"))?;
    if tx.id != b.tx_id.0 {
        return Err(format!(
            "the record's id is {}, the bundle claims {}",
            H32(tx.id),
            b.tx_id
        ));
    }
    let detail = format!(
        "Ed25519 signature by {} verifies; tx id {} = SHA-256(ZSL-TX-V1\\0 ‖ JCS(body))",
        hex::encode(tx.signer),
        b.tx_id
    );
    Ok((tx, detail))
}

fn check_signer_key(
    b: &Bundle,
    spec: &ChainSpec,
    tx: Option<&SignedTx>,
    cp: &Result<Checkpoint, String>,
) -> Result<String, String> {
    let tx = tx.ok_or("the record does not verify, so neither can its key")?;
    let (common, _) = record::parse_body(&tx.body).map_err(|r| format!("record body: {r}"))?;
    let k = &b.signer_key;
    let signer = hex::encode(tx.signer);
    if k.account != common.account || k.public_key != signer {
        return Err(format!(
            "signer_key names {} / {}, the record {} / {}",
            k.account, k.public_key, common.account, signer
        ));
    }
    let height = b.headers.first().map(|h| h.height).ok_or("no headers")?;
    if let Some(rev) = &k.revoked {
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
            if bind.leaf_index >= b.leaf_index {
                return Err(format!(
                    "the binding (leaf {}) is not before the record (leaf {})",
                    bind.leaf_index, b.leaf_index
                ));
            }
            let path: Vec<merkle::Hash> = bind.inclusion.iter().map(|h| h.0).collect();
            merkle::verify_inclusion(
                &merkle::leaf_hash(&bind.tx_id.0),
                bind.leaf_index,
                cp.tree_size,
                &path,
                &cp.root.0,
            )
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

fn check_headers(b: &Bundle, spec: &ChainSpec) -> Result<String, String> {
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

fn check_inclusion(b: &Bundle, cp: &Result<Checkpoint, String>) -> Result<String, String> {
    let cp = cp.as_ref().map_err(Clone::clone)?;
    let path: Vec<merkle::Hash> = b.inclusion.iter().map(|h| h.0).collect();
    merkle::verify_inclusion(
        &merkle::leaf_hash(&b.tx_id.0),
        b.leaf_index,
        cp.tree_size,
        &path,
        &cp.root.0,
    )
    .map_err(|e| format!("leaf {} in tree of {}: {e}", b.leaf_index, cp.tree_size))?;
    Ok(format!(
        "leaf {} (SHA-256(0x00 ‖ tx id)) + {} hashes = root {} of tree size {}",
        b.leaf_index,
        path.len(),
        cp.root,
        cp.tree_size
    ))
}

fn check_checkpoint_header(
    b: &Bundle,
    spec: &ChainSpec,
    cp: &Result<Checkpoint, String>,
) -> Result<String, String> {
    let cp = cp.as_ref().map_err(Clone::clone)?;
    let last = b.headers.last().ok_or("no headers")?;
    let mismatch = |what: &str| {
        Err(format!(
            "checkpoint {what} differs from block {}",
            last.height
        ))
    };
    if cp.origin != spec.chain_id {
        return Err(format!(
            "checkpoint origin `{}` is not the chain id",
            cp.origin
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

/// The validator set in force at the checkpoint, as a verifier derives it.
struct InForce {
    set: Vec<Validator>,
    quorum: usize,
    hash: H32,
    known: BTreeMap<String, [u8; 32]>,
}

/// Applies the bundle's membership records to the genesis set, checking
/// each: signed by a root regulator of genesis (the province's trust anchor,
/// so the set cannot be rewritten without its key), in commit order,
/// committed before the checkpoint's block, included in its tree, and a
/// change the state machine would have made.
fn derive_set(b: &Bundle, g: &Genesis, cp: &Result<Checkpoint, String>) -> Result<InForce, String> {
    if b.validators.changes.is_empty() {
        return Ok(InForce {
            set: g.set.clone(),
            quorum: g.quorum,
            hash: g.set_hash,
            known: g.known.clone(),
        });
    }
    let cp = cp.as_ref().map_err(Clone::clone)?;
    let last = b.headers.last().ok_or("no headers")?;
    let block_start = last.tree_size.saturating_sub(u64::from(last.tx_count));
    let mut set = g.set.clone();
    let mut prev_leaf = None;
    for (i, c) in b.validators.changes.iter().enumerate() {
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
        let path: Vec<merkle::Hash> = c.inclusion.iter().map(|h| h.0).collect();
        merkle::verify_inclusion(
            &merkle::leaf_hash(&c.tx_id.0),
            c.leaf_index,
            cp.tree_size,
            &path,
            &cp.root.0,
        )
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
        known: seal::known_keys(&set).map_err(|e| e.to_string())?,
        set,
    })
}

fn check_validator_set(b: &Bundle, in_force: &Result<InForce, String>) -> Result<String, String> {
    let f = in_force.as_ref().map_err(Clone::clone)?;
    let v = &b.validators;
    if v.set != f.set {
        return Err("the set differs from the one genesis and the membership records give".into());
    }
    if v.quorum != f.quorum as u64 {
        return Err(format!(
            "quorum {} is not the derived {}",
            v.quorum, f.quorum
        ));
    }
    let last = b.headers.last().ok_or("no headers")?;
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

/// Strict note check: every signature line must be a distinct validator of
/// the set in force with its key id, and verify; then at least a quorum.
fn check_note_signatures(
    note: &str,
    known: &BTreeMap<String, [u8; 32]>,
    quorum: usize,
) -> Result<Vec<String>, String> {
    let n = SignedNote::parse(note).map_err(|e| format!("checkpoint note: {e}"))?;
    let mut seen = BTreeSet::new();
    for s in &n.signatures {
        let pk = known
            .get(&s.name)
            .ok_or_else(|| format!("signature by `{}`, not a validator in force", s.name))?;
        if key_id(&s.name, pk) != s.key_id {
            return Err(format!("signature by `{}` has the wrong key id", s.name));
        }
        let sig: [u8; 64] = s
            .signature
            .as_slice()
            .try_into()
            .map_err(|_| format!("signature by `{}` is not 64 bytes", s.name))?;
        VerifyingKey::from_bytes(pk)
            .and_then(|vk| vk.verify_strict(n.text.as_bytes(), &Signature::from_bytes(&sig)))
            .map_err(|_| format!("signature by `{}` does not verify", s.name))?;
        if !seen.insert(s.name.clone()) {
            return Err(format!("`{}` signed twice", s.name));
        }
    }
    if seen.len() < quorum {
        return Err(format!(
            "{} valid validator signatures; the quorum is {quorum}",
            seen.len(),
        ));
    }
    Ok(seen.into_iter().collect())
}

fn check_block_time(b: &Bundle, spec: &ChainSpec, tx: Option<&SignedTx>) -> Result<String, String> {
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

// ---- consistency (append-only) ---------------------------------------------

/// A consistency proof between two tree sizes (`GET /v1/proofs/consistency`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConsistencyProof {
    pub format: String,
    pub from: u64,
    pub to: u64,
    /// RFC 9162 §2.1.4 proof hashes.
    pub hashes: Vec<H32>,
}

/// Builds the proof that the tree of `from` leaves is a prefix of the tree of `to`.
pub fn consistency_proof(
    kv: &(impl KvRead + ?Sized),
    from: u64,
    to: u64,
) -> Result<ConsistencyProof, LedgerError> {
    let p = merkle::consistency_proof(from, to, &TreeReader(kv))?;
    Ok(ConsistencyProof {
        format: CONSISTENCY_FORMAT.into(),
        from,
        to,
        hashes: hashes(p),
    })
}

/// Checks that `new_note`'s tree extends `old_note`'s: both notes carry a
/// quorum of the genesis validators' signatures, and the proof links the roots.
pub fn verify_consistency(
    old_note: &str,
    new_note: &str,
    proof: &ConsistencyProof,
    spec: &ChainSpec,
) -> Report {
    let trust = match Genesis::new(spec) {
        Ok(g) => g,
        Err(e) => return Report::failed_with(check::CONSISTENCY, format!("genesis file: {e}")),
    };
    let mut r = Report { checks: Vec::new() };
    let one = |note: &str| -> Result<(Checkpoint, String), String> {
        let cp = parse_checkpoint(note)?;
        if cp.origin != spec.chain_id {
            return Err(format!("origin `{}` is not the chain id", cp.origin));
        }
        let names = check_note_signatures(note, &trust.known, trust.quorum)?;
        let d = format!(
            "height {}, size {}, root {}: {} of {} validators signed (quorum {})",
            cp.height,
            cp.tree_size,
            cp.root,
            names.len(),
            trust.set.len(),
            trust.quorum
        );
        Ok((cp, d))
    };
    let old = one(old_note);
    let new = one(new_note);
    r.push(
        check::OLD_CHECKPOINT,
        old.as_ref().map(|x| x.1.clone()).map_err(Clone::clone),
    );
    r.push(
        check::NEW_CHECKPOINT,
        new.as_ref().map(|x| x.1.clone()).map_err(Clone::clone),
    );
    let link = (|| {
        let (old, _) = old
            .as_ref()
            .map_err(|_| "the old checkpoint does not verify")?;
        let (new, _) = new
            .as_ref()
            .map_err(|_| "the new checkpoint does not verify")?;
        if proof.format != CONSISTENCY_FORMAT {
            return Err(format!("proof format is not {CONSISTENCY_FORMAT}"));
        }
        if proof.from != old.tree_size || proof.to != new.tree_size {
            return Err(format!(
                "the proof is for sizes {}→{}, the checkpoints are {}→{}",
                proof.from, proof.to, old.tree_size, new.tree_size
            ));
        }
        if new.height < old.height || new.time_ms < old.time_ms {
            return Err("the new checkpoint is older than the old one".into());
        }
        let path: Vec<merkle::Hash> = proof.hashes.iter().map(|h| h.0).collect();
        merkle::verify_consistency(
            old.tree_size,
            new.tree_size,
            &old.root.0,
            &new.root.0,
            &path,
        )
        .map_err(|e| format!("{e}: the new tree does not extend the old one"))?;
        Ok(format!(
            "tree {} (root {}) is a prefix of tree {} (root {}): append-only",
            old.tree_size, old.root, new.tree_size, new.root
        ))
    })();
    r.push(check::CONSISTENCY, link);
    r
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::block::BlockProposal;
    use crate::block::Cosignature;
    use crate::checkpoint::NoteSignature;
    use crate::hash::sha256;
    use crate::history::{read_head, tree_key};
    use crate::kv::{KvWrite, MemoryKv};
    use crate::machine::{apply_block, genesis};
    use crate::record::{build_body, DocumentNotarize, SubjectKind, SubjectRegister, Variety};
    use crate::spec::{District, Region, RootRegulator};
    use ed25519_dalek::SigningKey;
    use proptest::prelude::*;
    use serde_json::json;

    const T0: i64 = 1_709_254_800_000; // 2024-03-01T09:00:00+08:00
    const D1: &str = "330102";

    fn key(label: &str) -> SigningKey {
        SigningKey::from_bytes(&sha256(label.as_bytes()))
    }

    fn pk(k: &SigningKey) -> String {
        hex::encode(k.verifying_key().to_bytes())
    }

    fn validator_keys(n: usize) -> Vec<(String, SigningKey)> {
        (1..=n)
            .map(|i| (format!("validator-{i}"), key(&format!("validator-{i}"))))
            .collect()
    }

    fn spec(validators: usize) -> ChainSpec {
        ChainSpec {
            chain_id: "zsl-test".into(),
            genesis_time: "2024-02-01T00:00:00+08:00".into(),
            province: Region {
                code: "330000".into(),
                name: "浙江省".into(),
            },
            districts: vec![District {
                code: D1.into(),
                name: "上城区".into(),
                city_code: "330100".into(),
                city: "杭州市".into(),
                lon: None,
                lat: None,
            }],
            root_regulators: vec![RootRegulator {
                id: "root".into(),
                name: "root".into(),
                public_key: pk(&key("root")),
            }],
            validators: validator_keys(validators)
                .iter()
                .enumerate()
                .map(|(i, (name, k))| Validator {
                    node_id: i as u64 + 1,
                    name: name.clone(),
                    public_key: pk(k),
                })
                .collect(),
            checkpoint_quorum: None,
            key_varieties: crate::state::VarietyCatalogue {
                version: 1,
                varieties: vec![Variety {
                    code: "meat".into(),
                    name: "meat".into(),
                }],
            },
            model: crate::score::ModelParams::zj_2024(),
            tx_window_past_ms: 86_400_000,
            tx_window_future_ms: 300_000,
        }
    }

    /// An in-memory chain whose validators sign when told to.
    struct Chain {
        spec: ChainSpec,
        kv: MemoryKv,
        now: i64,
        nonce: u64,
    }

    impl Chain {
        fn new(validators: usize) -> Self {
            let spec = spec(validators);
            let (changes, _) = genesis(&spec).unwrap();
            let mut kv = MemoryKv::new();
            kv.apply(&changes);
            Chain {
                spec,
                kv,
                now: T0,
                nonce: 0,
            }
        }

        fn tx<T: Serialize>(
            &mut self,
            signer: &SigningKey,
            account: &str,
            kind: &str,
            rec: &T,
        ) -> Vec<u8> {
            self.nonce += 1;
            let at = jiff::Timestamp::from_millisecond(self.now)
                .unwrap()
                .to_string();
            let body = build_body(
                kind,
                &self.spec.chain_id,
                account,
                &at,
                &self.nonce.to_string(),
                rec,
            );
            serde_json::to_vec(&SignedTx::sign(body, signer).unwrap().to_json()).unwrap()
        }

        /// Applies a block; returns its height and the ids of its transactions.
        fn block(&mut self, txs: Vec<Vec<u8>>, cosigs: Vec<Cosignature>) -> (u64, Vec<H32>) {
            self.now += 1_000;
            let applied = apply_block(
                &self.kv,
                &self.spec,
                &BlockProposal {
                    time_ms: self.now,
                    txs,
                    cosigs,
                },
            )
            .unwrap();
            for o in &applied.outcomes {
                if let Err(r) = &o.result {
                    panic!("refused: {r}");
                }
            }
            self.kv.apply(&applied.changes);
            let b = applied.block.unwrap();
            (b.header.height, b.tx_ids)
        }

        fn sign(&self, height: u64, who: &[usize]) -> Vec<Cosignature> {
            let block = crate::history::read_block(&self.kv, height)
                .unwrap()
                .unwrap();
            let cp = seal::checkpoint_of(&self.spec, &block).unwrap();
            let keys = validator_keys(8);
            who.iter()
                .map(|&i| seal::cosign(&cp, &keys[i].0, &keys[i].1))
                .collect()
        }

        fn register(&mut self, label: &str, n: u32) -> (String, SigningKey) {
            let id = crate::validate::synthetic_uscc(D1, n);
            let k = key(label);
            let rec = SubjectRegister {
                uscc: id.clone(),
                name: label.into(),
                kind: SubjectKind::Producer,
                district: D1.into(),
                key_subject: false,
                public_key: pk(&k),
                market: None,
            };
            let w = self.tx(&key("root"), "root", "subject.register", &rec);
            self.block(vec![w], vec![]);
            (id, k)
        }

        fn notarize(&mut self, who: &(String, SigningKey), title: &str) -> Vec<u8> {
            let rec = DocumentNotarize {
                document_hash: hex::encode(sha256(title.as_bytes())),
                title: title.into(),
                media_type: Some("application/pdf".into()),
                note: None,
            };
            self.tx(&who.1, &who.0, "document.notarize", &rec)
        }
    }

    /// Three validators (quorum 2). Returns the chain, the id of a subject's
    /// notarization whose block was never signed itself (so its bundle spans
    /// two headers), and the id of a root regulator's record (genesis key).
    fn fixture() -> (Chain, H32, H32) {
        let mut c = Chain::new(3);
        let s = c.register("s1", 1); // block 1
        let sigs = c.sign(1, &[0, 1]);
        let w = c.notarize(&s, "检测报告 2024-03");
        let (h2, ids) = c.block(vec![w], sigs); // block 2: seals block 1
        let doc = ids[0];
        let w = c.notarize(&(String::from("root"), key("root")), "root memo");
        let (h3, ids) = c.block(vec![w], vec![]); // block 3, block 2 left unsigned
        let root_doc = ids[0];
        c.block(vec![], c.sign(h3, &[0, 1, 2])); // block 4 seals block 3
        assert!(!seal::is_sealed(&c.kv, h2).unwrap());
        (c, doc, root_doc)
    }

    #[test]
    fn a_good_bundle_verifies_and_round_trips() {
        let (c, doc, root_doc) = fixture();
        for id in [doc, root_doc] {
            let b = build(&c.kv, &c.spec, &id.0).unwrap();
            let r = verify(&b, &c.spec);
            assert!(r.ok(), "{r:#?}");
            assert_eq!(r.checks.len(), 10);
            let json = serde_json::to_vec_pretty(&b).unwrap();
            let back = parse_bundle(&json).unwrap();
            assert_eq!(back, b);
            assert!(verify(&back, &c.spec).ok());
        }
        let b = build(&c.kv, &c.spec, &doc.0).unwrap();
        assert_eq!(
            b.headers.len(),
            2,
            "block 2 is proved by block 3's checkpoint"
        );
        assert!(b.signer_key.binding.is_some());
        assert!(b.summary.zh.contains("检测报告"));
        for h in &b.headers {
            let block = crate::history::read_block(&c.kv, h.height)
                .unwrap()
                .unwrap();
            assert_eq!(&block.header, h, "the header-only read");
        }
        let (cp, note, _) = sealed_checkpoint(&c.kv, &c.spec, 3).unwrap().unwrap();
        let (cp2, note2, _) = seal::signed_checkpoint(&c.kv, &c.spec, 3).unwrap().unwrap();
        assert_eq!((cp, note), (cp2, note2));
        let b = build(&c.kv, &c.spec, &root_doc.0).unwrap();
        assert!(b.signer_key.binding.is_none(), "a genesis key");
        assert_eq!(b.headers.len(), 1);
    }

    /// Root adds validator-4 in block 1 (in force from block 2: four
    /// validators, quorum 3); a record in block 2 is sealed by validators 2-4.
    fn membership_fixture() -> (Chain, H32) {
        let mut c = Chain::new(3);
        let add = crate::record::ValidatorAdd {
            node_id: 4,
            name: "validator-4".into(),
            public_key: pk(&key("validator-4")),
            address: "/ip4/127.0.0.1/tcp/1".into(),
        };
        let w = c.tx(&key("root"), "root", "validator.add", &add);
        let (h1, _) = c.block(vec![w], vec![]);
        let sigs = c.sign(h1, &[0, 1]);
        let w = c.notarize(&(String::from("root"), key("root")), "after the change");
        let (h2, ids) = c.block(vec![w], sigs);
        assert_eq!(seal::validator_set_at(&c.kv, h2).unwrap().len(), 4);
        c.block(vec![], c.sign(h2, &[1, 2, 3]));
        (c, ids[0])
    }

    #[test]
    fn membership_records_carry_the_set_from_genesis() {
        let (c, id) = membership_fixture();
        let b = build(&c.kv, &c.spec, &id.0).unwrap();
        assert_eq!(b.validators.changes.len(), 1);
        assert_eq!((b.validators.set.len(), b.validators.quorum), (4, 3));
        let r = verify(&b, &c.spec);
        assert!(r.ok(), "{r:#?}");
        // Without the change the set does not follow, and validator-4's
        // signature is by a stranger.
        let mut m = b.clone();
        m.validators.changes.clear();
        let r = verify(&m, &c.spec);
        assert!(r.failed().contains(&check::VALIDATOR_SET), "{r:#?}");
        assert!(r.failed().contains(&check::CHECKPOINT_SIGNATURES));
        // A membership record not signed by a genesis root regulator.
        let mut m = b.clone();
        let body = m.validators.changes[0].record["body"].clone();
        let body = body.as_object().unwrap().clone();
        let forged = SignedTx::sign(body, &key("validator-4")).unwrap();
        m.validators.changes[0].record = forged.to_json();
        m.validators.changes[0].tx_id = H32(forged.id);
        assert_eq!(
            verify(&m, &c.spec).failed(),
            vec![check::VALIDATOR_SET, check::CHECKPOINT_SIGNATURES]
        );
        // Every byte and field of this bundle too.
        mutate_everything(&serde_json::to_value(&b).unwrap(), &c.spec);
    }

    #[test]
    fn unsealed_and_unknown_transactions_are_refused() {
        let mut c = Chain::new(3);
        let s = c.register("s1", 1);
        let w = c.notarize(&s, "x");
        let (_, ids) = c.block(vec![w], vec![]);
        let e = build(&c.kv, &c.spec, &ids[0].0).unwrap_err();
        assert!(matches!(e, EvidenceError::NotYetSealed { .. }), "{e}");
        assert!(e.to_string().contains("not yet sealed"));
        // One signature of three is not a quorum.
        let sigs = c.sign(2, &[0]);
        c.block(vec![], sigs);
        assert!(matches!(
            build(&c.kv, &c.spec, &ids[0].0),
            Err(EvidenceError::NotYetSealed { .. })
        ));
        assert!(matches!(
            build(&c.kv, &c.spec, &[7; 32]),
            Err(EvidenceError::NotFound(_))
        ));
    }

    #[test]
    fn tlog_proof_text_round_trips_and_verifies() {
        let (c, doc, _) = fixture();
        let b = build(&c.kv, &c.spec, &doc.0).unwrap();
        let text = tlog_proof(&b);
        assert!(text.starts_with("c2sp.org/tlog-proof@v1\nextra "));
        let (extra, index, path, note) = parse_tlog_proof(&text).unwrap();
        assert_eq!(
            (extra, index, note.as_str()),
            (doc.0.to_vec(), b.leaf_index, b.checkpoint.as_str())
        );
        let cp = parse_checkpoint(&note).unwrap();
        let path: Vec<_> = path.iter().map(|h| h.0).collect();
        merkle::verify_inclusion(
            &merkle::leaf_hash(&doc.0),
            index,
            cp.tree_size,
            &path,
            &cp.root.0,
        )
        .unwrap();
    }

    /// Every scalar in the bundle's JSON, with its path.
    fn leaves(v: &Value, path: String, out: &mut Vec<(String, Value)>) {
        match v {
            Value::Object(m) => {
                for (k, x) in m {
                    leaves(x, format!("{path}/{k}"), out);
                }
            }
            Value::Array(a) => {
                for (i, x) in a.iter().enumerate() {
                    leaves(x, format!("{path}/{i}"), out);
                }
            }
            other => out.push((path, other.clone())),
        }
    }

    fn arrays(v: &Value, path: String, out: &mut Vec<String>) {
        match v {
            Value::Object(m) => {
                for (k, x) in m {
                    arrays(x, format!("{path}/{k}"), out);
                }
            }
            Value::Array(a) => {
                out.push(path.clone());
                for (i, x) in a.iter().enumerate() {
                    arrays(x, format!("{path}/{i}"), out);
                }
            }
            _ => {}
        }
    }

    /// The check that must fail when the field at `path` changes.
    fn expected_check(path: &str) -> &'static [&'static str] {
        let top = path.split('/').nth(1).unwrap_or("");
        match top {
            "format" | "chain_id" | "genesis_hash" => &[check::BUNDLE],
            "tx_id" | "record" => &[check::RECORD_SIGNATURE],
            "signer_key" => &[check::SIGNER_KEY],
            // The last header is bound by the checkpoint, earlier ones by the chain.
            "headers" => &[check::BLOCK_HEADER, check::CHECKPOINT_MATCHES_HEADER],
            "tx_index" => &[check::BLOCK_HEADER],
            "leaf_index" | "inclusion" => &[check::INCLUSION],
            "checkpoint" => &[check::CHECKPOINT_SIGNATURES],
            "validators" => &[check::VALIDATOR_SET],
            "summary" => &[check::SUMMARY],
            _ => &[],
        }
    }

    /// Verifies a mutated JSON bundle; returns the failed checks (a bundle
    /// that no longer parses fails the `bundle` check).
    fn failures(v: &Value, spec: &ChainSpec) -> Vec<String> {
        match serde_json::from_value::<Bundle>(v.clone()) {
            Err(_) => vec![check::BUNDLE.to_string()],
            Ok(b) => verify(&b, spec)
                .failed()
                .into_iter()
                .map(String::from)
                .collect(),
        }
    }

    fn assert_fails(v: &Value, spec: &ChainSpec, path: &str, what: &str, parsed: &mut usize) {
        let failed = failures(v, spec);
        assert!(!failed.is_empty(), "{what} at {path} still verifies");
        if failed != [check::BUNDLE] || expected_check(path) == [check::BUNDLE] {
            *parsed += 1;
            assert!(
                expected_check(path)
                    .iter()
                    .any(|c| failed.iter().any(|f| f == c)),
                "{what} at {path}: failed {failed:?}, expected one of {:?}",
                expected_check(path)
            );
        }
    }

    fn pointer_set(v: &mut Value, path: &str, x: Value) {
        *v.pointer_mut(path).unwrap() = x;
    }

    #[test]
    fn every_single_byte_and_field_mutation_fails_with_the_right_check() {
        let (c, doc, _) = fixture();
        let good = serde_json::to_value(build(&c.kv, &c.spec, &doc.0).unwrap()).unwrap();
        mutate_everything(&good, &c.spec);
    }

    /// Flips every byte of every string, moves every number by one, negates
    /// every bool, drops and doubles every list element, removes every field:
    /// each mutation must fail, naming the check of the part it changed.
    fn mutate_everything(good: &Value, spec: &ChainSpec) {
        let c = Chain {
            spec: spec.clone(),
            kv: MemoryKv::new(),
            now: 0,
            nonce: 0,
        };
        let mut scalars = Vec::new();
        leaves(good, String::new(), &mut scalars);
        let (mut tried, mut parsed) = (0usize, 0usize);
        for (path, value) in &scalars {
            match value {
                Value::String(s) => {
                    for i in 0..s.len() {
                        let mut bytes = s.as_bytes().to_vec();
                        bytes[i] ^= 0x01;
                        let Ok(m) = String::from_utf8(bytes) else {
                            continue;
                        };
                        let mut v = good.clone();
                        pointer_set(&mut v, path, Value::String(m));
                        tried += 1;
                        assert_fails(&v, &c.spec, path, &format!("byte {i} flipped"), &mut parsed);
                    }
                }
                Value::Number(n) => {
                    let n = n.as_u64().unwrap();
                    for m in [n.wrapping_add(1), n.wrapping_sub(1)] {
                        let mut v = good.clone();
                        pointer_set(&mut v, path, Value::from(m));
                        tried += 1;
                        assert_fails(&v, &c.spec, path, &format!("{n} → {m}"), &mut parsed);
                    }
                }
                Value::Bool(b) => {
                    let mut v = good.clone();
                    pointer_set(&mut v, path, Value::Bool(!b));
                    tried += 1;
                    assert_fails(&v, &c.spec, path, "negated", &mut parsed);
                }
                Value::Null => {}
                _ => unreachable!(),
            }
        }
        // Whole fields: drop and duplicate each list element; drop each object field.
        let mut lists = Vec::new();
        arrays(good, String::new(), &mut lists);
        for path in &lists {
            let len = good.pointer(path).unwrap().as_array().unwrap().len();
            for i in 0..len {
                let mut v = good.clone();
                v.pointer_mut(path)
                    .unwrap()
                    .as_array_mut()
                    .unwrap()
                    .remove(i);
                tried += 1;
                assert_fails(
                    &v,
                    &c.spec,
                    path,
                    &format!("element {i} dropped"),
                    &mut parsed,
                );
                let mut v = good.clone();
                let a = v.pointer_mut(path).unwrap().as_array_mut().unwrap();
                let x = a[i].clone();
                a.insert(i, x);
                tried += 1;
                assert_fails(
                    &v,
                    &c.spec,
                    path,
                    &format!("element {i} doubled"),
                    &mut parsed,
                );
            }
        }
        // Removing a field breaks the schema (every field is required or
        // checked); swapping in the other signer's binding breaks the key.
        for (path, value) in &scalars {
            if value.is_null() {
                continue; // an absent optional field means the same as null
            }
            let (parent, field) = path.rsplit_once('/').unwrap();
            let mut v = good.clone();
            let Some(obj) = v.pointer_mut(parent).and_then(Value::as_object_mut) else {
                continue;
            };
            obj.remove(field);
            tried += 1;
            assert!(
                !failures(&v, &c.spec).is_empty(),
                "{path} removed still verifies"
            );
        }
        assert!(tried > 3_000, "{tried} mutations");
        assert!(
            parsed * 2 > tried,
            "most mutations reach the checks: {parsed} of {tried}"
        );
    }

    #[test]
    fn fewer_than_a_quorum_or_an_outsider_fails_the_signature_check() {
        let (c, doc, _) = fixture();
        let good = build(&c.kv, &c.spec, &doc.0).unwrap();
        let note = SignedNote::parse(&good.checkpoint).unwrap();
        assert_eq!(note.signatures.len(), 3);
        let with = |sigs: Vec<NoteSignature>| {
            let mut b = good.clone();
            b.checkpoint = SignedNote {
                text: note.text.clone(),
                signatures: sigs,
            }
            .render();
            b.summary = summary(&b, &c.spec);
            verify(&b, &c.spec)
        };
        // Two of three is the quorum; one is not.
        assert!(with(note.signatures[..2].to_vec()).ok());
        let r = with(note.signatures[..1].to_vec());
        assert_eq!(r.failed(), vec![check::CHECKPOINT_SIGNATURES], "{r:#?}");
        // An outsider's valid signature neither counts nor is tolerated.
        let outsider = key("validator-9");
        let mut extra = note.clone();
        extra.signatures.truncate(1);
        extra.add_signature("validator-9", &outsider).unwrap();
        let r = with(extra.signatures.clone());
        assert_eq!(r.failed(), vec![check::CHECKPOINT_SIGNATURES]);
        assert!(r
            .checks
            .iter()
            .any(|c| c.detail.contains("not a validator")));
        // An outsider using a validator's name: wrong key id.
        let mut imposter = note.clone();
        imposter.signatures.truncate(1);
        imposter.add_signature("validator-2", &outsider).unwrap();
        assert_eq!(
            with(imposter.signatures).failed(),
            vec![check::CHECKPOINT_SIGNATURES]
        );
        // A bundle claiming the outsiders are the set: the set does not follow
        // from genesis, and their signatures still do not count.
        let mut b = good.clone();
        b.validators.set[1].public_key = pk(&outsider);
        let mut n = SignedNote::parse(&b.checkpoint).unwrap();
        n.signatures.truncate(1);
        n.add_signature("validator-2", &outsider).unwrap();
        b.checkpoint = n.render();
        b.summary = summary(&b, &c.spec);
        let r = verify(&b, &c.spec);
        assert_eq!(
            r.failed(),
            vec![check::VALIDATOR_SET, check::CHECKPOINT_SIGNATURES]
        );
        // Another genesis (other validators) rejects the bundle outright.
        let mut other = c.spec.clone();
        other.validators[0].public_key = pk(&outsider);
        let r = verify(&good, &other);
        assert!(
            r.failed().contains(&check::BUNDLE)
                && r.failed().contains(&check::CHECKPOINT_SIGNATURES)
        );
    }

    #[test]
    fn consistency_old_to_new_verifies_and_a_fork_does_not() {
        let (c, _, _) = fixture();
        let old = seal::signed_checkpoint(&c.kv, &c.spec, 1).unwrap().unwrap();
        let new = seal::signed_checkpoint(&c.kv, &c.spec, 3).unwrap().unwrap();
        let proof = consistency_proof(&c.kv, old.0.tree_size, new.0.tree_size).unwrap();
        let r = verify_consistency(&old.1.render(), &new.1.render(), &proof, &c.spec);
        assert!(r.ok(), "{r:#?}");
        let json = serde_json::to_string(&proof).unwrap();
        assert_eq!(
            serde_json::from_str::<ConsistencyProof>(&json).unwrap(),
            proof
        );
        // Reversed, tampered or for other sizes: refused.
        assert!(!verify_consistency(&new.1.render(), &old.1.render(), &proof, &c.spec).ok());
        for i in 0..proof.hashes.len() {
            let mut p = proof.clone();
            p.hashes[i].0[i % 32] ^= 1;
            let r = verify_consistency(&old.1.render(), &new.1.render(), &p, &c.spec);
            assert_eq!(r.failed(), vec![check::CONSISTENCY]);
        }
        let mut p = proof.clone();
        p.to += 1;
        assert_eq!(
            verify_consistency(&old.1.render(), &new.1.render(), &p, &c.spec).failed(),
            vec![check::CONSISTENCY]
        );

        // A fork: the same validators sign a tree that rewrote leaf 1.
        let mut f = Chain::new(3);
        let s = f.register("s1", 1);
        f.block(vec![], f.sign(1, &[0, 1]));
        let w = f.notarize(&s, "another document");
        let w2 = f.notarize(&(String::from("root"), key("root")), "root memo");
        let (h, _) = f.block(vec![w, w2], vec![]);
        f.block(vec![], f.sign(h, &[0, 1]));
        let forked = seal::signed_checkpoint(&f.kv, &f.spec, h).unwrap().unwrap();
        assert_eq!(forked.0.tree_size, new.0.tree_size);
        assert_ne!(forked.0.root, new.0.root);
        let fork_old = seal::signed_checkpoint(&f.kv, &f.spec, 1).unwrap().unwrap();
        assert_eq!(fork_old.0.root, old.0.root, "same first leaf");
        // The fork's own proof from the shared prefix verifies only against the fork...
        let fp = consistency_proof(&f.kv, 1, forked.0.tree_size).unwrap();
        assert!(verify_consistency(&old.1.render(), &forked.1.render(), &fp, &c.spec).ok());
        // ...and neither proof links the honest chain's tree to the fork's.
        assert_eq!(
            verify_consistency(&old.1.render(), &forked.1.render(), &proof, &c.spec).failed(),
            vec![check::CONSISTENCY]
        );
        // Two size-2 trees with different roots are inconsistent whatever the proof.
        let mid_honest = consistency_proof(&c.kv, 2, 3).unwrap();
        let fork_mid = seal::signed_checkpoint(&f.kv, &f.spec, h).unwrap().unwrap();
        assert!(
            !verify_consistency(&fork_mid.1.render(), &new.1.render(), &mid_honest, &c.spec).ok()
        );
        // A note whose signatures do not verify fails its own check.
        let mut bad = old.1.clone();
        bad.signatures[0].signature[0] ^= 1;
        let r = verify_consistency(&bad.render(), &new.1.render(), &proof, &c.spec);
        assert!(r.failed().contains(&check::OLD_CHECKPOINT));
    }

    /// A chain whose tree starts with `n` synthetic leaves (stored hashes
    /// written directly, as Go tlog lays them out), then real blocks.
    fn chain_with_prefix(n: u64) -> (Chain, Vec<[u8; 32]>) {
        let mut c = Chain::new(3);
        let mut tree = merkle::MemoryTree::new();
        let mut sample = Vec::new();
        for i in 0..n {
            let id = sha256(&i.to_be_bytes());
            tree.push(&id).unwrap();
            if i % 99_991 == 0 {
                sample.push(id);
            }
        }
        for (i, h) in tree.stored_hashes().iter().enumerate() {
            c.kv.put(Space::Tree, tree_key(i as u64), h.to_vec());
        }
        let mut head = read_head(&c.kv).unwrap().unwrap();
        head.tree_size = n;
        head.tree_root = H32(tree.root().unwrap());
        c.kv.put(
            Space::Blocks,
            b"head".to_vec(),
            state::encode(&head).unwrap(),
        );
        (c, sample)
    }

    #[test]
    fn proofs_at_one_million_leaves_verify() {
        const N: u64 = 1_000_000;
        let (mut c, sample) = chain_with_prefix(N);
        let s = c.register("s1", 1);
        let w = c.notarize(&s, "million");
        let (h, ids) = c.block(vec![w], c.sign(1, &[0, 1]));
        c.block(vec![], c.sign(h, &[1, 2]));
        let b = build(&c.kv, &c.spec, &ids[0].0).unwrap();
        assert_eq!(b.leaf_index, N + 1);
        // The right edge of a 2^20-ish tree: a short path through the big subtrees.
        assert!(!b.inclusion.is_empty() && b.inclusion.len() <= 21);
        let r = verify(&b, &c.spec);
        assert!(r.ok(), "{r:#?}");
        // Synthetic leaves spread over the tree verify against the sealed root too.
        let cp = parse_checkpoint(&b.checkpoint).unwrap();
        for (k, id) in sample.iter().enumerate() {
            let index = k as u64 * 99_991;
            let p = merkle::inclusion_proof(index, cp.tree_size, &TreeReader(&c.kv)).unwrap();
            assert!(p.len() >= 15, "leaf {index}: {} hashes", p.len());
            merkle::verify_inclusion(&merkle::leaf_hash(id), index, cp.tree_size, &p, &cp.root.0)
                .unwrap();
        }
        // And the consistency proof from the prefix to the sealed tree.
        let old_root = merkle::tree_root(N, &TreeReader(&c.kv)).unwrap();
        let p = consistency_proof(&c.kv, N, cp.tree_size).unwrap();
        let path: Vec<_> = p.hashes.iter().map(|h| h.0).collect();
        merkle::verify_consistency(N, cp.tree_size, &old_root, &cp.root.0, &path).unwrap();
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(32))]

        /// Random multi-byte corruption of the bundle's JSON text: whatever
        /// still parses must not verify.
        #[test]
        fn prop_random_corruption_never_verifies(
            flips in prop::collection::vec((any::<prop::sample::Index>(), 1u8..=255), 1..4)
        ) {
            let (c, doc, _) = fixture_cached();
            let json = serde_json::to_vec(&build(&c.kv, &c.spec, &doc.0).unwrap()).unwrap();
            let mut m = json.clone();
            for (i, x) in &flips {
                let i = i.index(m.len());
                m[i] ^= x;
            }
            prop_assume!(m != json);
            if let Ok(b) = parse_bundle(&m) {
                // JSON whitespace or key order changes are not data changes.
                let same = serde_json::to_vec(&b).unwrap() == json;
                prop_assert!(same || !verify(&b, &c.spec).ok());
            }
        }
    }

    fn fixture_cached() -> &'static (Chain, H32, H32) {
        static F: std::sync::OnceLock<(Chain, H32, H32)> = std::sync::OnceLock::new();
        F.get_or_init(fixture)
    }

    /// The worked example of docs/evidence.md: the genesis, the bundle, every
    /// intermediate value a verifier computes, and the expected checks.
    fn worked_example() -> Value {
        let (c, doc, _) = fixture();
        let b = build(&c.kv, &c.spec, &doc.0).unwrap();
        let tx = SignedTx::from_value(b.record.clone()).unwrap();
        let jcs =
            String::from_utf8(tx.signed_bytes[crate::signing::TX_DOMAIN.len()..].to_vec()).unwrap();
        let cp = parse_checkpoint(&b.checkpoint).unwrap();
        // The inclusion walk, step by step (RFC 9162 §2.1.3.2).
        let mut steps = Vec::new();
        let (mut fnode, mut snode) = (b.leaf_index, cp.tree_size - 1);
        let mut r = merkle::leaf_hash(&b.tx_id.0);
        for p in &b.inclusion {
            let side = if fnode & 1 == 1 || fnode == snode {
                r = merkle::node_hash(&p.0, &r);
                while fnode & 1 == 0 && fnode != 0 {
                    fnode >>= 1;
                    snode >>= 1;
                }
                "left"
            } else {
                r = merkle::node_hash(&r, &p.0);
                "right"
            };
            fnode >>= 1;
            snode >>= 1;
            steps.push(json!({"sibling": p, "sibling_is": side, "result": H32(r)}));
        }
        let note = SignedNote::parse(&b.checkpoint).unwrap();
        let set_jcs = String::from_utf8(
            crate::signing::canonical_json(&serde_json::to_value(&c.spec.validators).unwrap())
                .unwrap(),
        )
        .unwrap();
        let report = verify(&b, &c.spec);
        assert!(report.ok());
        json!({
            "about": "Generated by `ZSL_WRITE_EXAMPLES=1 cargo test --workspace evidence::tests::worked_example_is_current` (ledger/src/evidence.rs). `genesis` is the genesis file, `bundle` the evidence bundle, `intermediate` every value a verifier computes on the way, `expected_checks` what `zsl verify` reports.",
            "genesis": c.spec,
            "bundle": b,
            "tlog_proof": tlog_proof(&b),
            "intermediate": {
                "genesis_jcs_sha256": H32(c.spec.hash().unwrap()),
                "record_jcs_body": jcs,
                "record_signed_bytes_hex": hex::encode(&tx.signed_bytes),
                "tx_id": H32(tx.id),
                "leaf_hash": H32(merkle::leaf_hash(&b.tx_id.0)),
                "inclusion_steps": steps,
                "binding_leaf_hash": b.signer_key.binding.as_ref().map(|k| H32(merkle::leaf_hash(&k.tx_id.0))),
                "headers": b.headers.iter().map(|h| json!({
                    "height": h.height,
                    "hash_input_hex": hex::encode(h.hash_input()),
                    "hash": h.hash(),
                })).collect::<Vec<_>>(),
                "checkpoint_text": note.text,
                "checkpoint_signatures": note.signatures.iter().map(|s| json!({
                    "name": s.name,
                    "key_id_hex": hex::encode(s.key_id),
                    "signature_hex": hex::encode(&s.signature),
                })).collect::<Vec<_>>(),
                "validator_set_jcs": set_jcs,
                "validators_hash": seal::validator_set_hash(&c.spec.validators).unwrap(),
                "quorum": seal::quorum(&c.spec, &c.spec.validators),
            },
            "expected_checks": report.checks,
        })
    }

    #[test]
    fn worked_example_is_current() {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../docs/examples/evidence-example.json");
        let text = serde_json::to_string_pretty(&worked_example()).unwrap() + "\n";
        if std::env::var_os("ZSL_WRITE_EXAMPLES").is_some() {
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(&path, &text).unwrap();
        }
        let on_disk = std::fs::read_to_string(&path).unwrap_or_default();
        assert!(
            on_disk == text,
            "docs/examples/evidence-example.json is stale: regenerate with \
             ZSL_WRITE_EXAMPLES=1 cargo test --workspace evidence::tests::worked_example_is_current"
        );
        // The example's bundle verifies against the example's genesis.
        let v: Value = serde_json::from_str(&on_disk).unwrap();
        let spec: ChainSpec = serde_json::from_value(v["genesis"].clone()).unwrap();
        let b: Bundle = serde_json::from_value(v["bundle"].clone()).unwrap();
        assert!(verify(&b, &spec).ok());
    }
}
