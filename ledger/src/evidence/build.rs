//! Building a bundle from any `KvRead` (pure: no clock, no I/O beyond the
//! reads), its summary, and the C2SP tlog-proof text form.

use super::*;

/// Builds the bundle for committed transaction `tx_id`.
pub fn build(
    kv: &(impl KvRead + ?Sized),
    spec: &ChainSpec,
    tx_id: &[u8; 32],
) -> Result<Bundle, EvidenceError> {
    build_with(kv, &Genesis::new(spec)?, tx_id)
}

/// Block `height`'s checkpoint as a signed note with every recorded
/// signature of a validator in force, and that set (`seal::signed_checkpoint`,
/// which reads the header alone).
pub use crate::seal::signed_checkpoint as sealed_checkpoint;

// Long because a bundle is assembled in the order docs/evidence.md lists
// its parts, each a few bounded reads.
/// [`build()`] with the genesis-derived values computed once.
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
    let inclusion = inclusion_into(kv, loc.leaf_index, cp.tree_size)?;
    let record = wire_value(&loc.wire)?;
    let signer_key = signer_key_of(kv, &loc, &record, cp.tree_size)?;
    let changes = membership_changes(kv, sealed, cp.tree_size)?;
    let mut bundle = Bundle {
        format: g.format().into(),
        chain_id: spec.chain_id.clone(),
        genesis_hash: g.hash,
        tx_id: H32(*tx_id),
        record,
        signer_key,
        headers,
        tx_index: loc.index,
        leaf_index: loc.leaf_index,
        inclusion,
        checkpoint: note.render(),
        validators: ValidatorEvidence {
            changes,
            quorum: seal::quorum(spec, &set) as u64,
            vkeys: g.vkeys(&set)?,
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

/// The key that signed a stored record and how it came to the account,
/// its binding record proved into the tree of `tree_size`.
pub(super) fn signer_key_of(
    kv: &(impl KvRead + ?Sized),
    loc: &crate::block::TxLocation,
    record: &Value,
    tree_size: u64,
) -> Result<SignerKey, EvidenceError> {
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
            inclusion: inclusion_into(kv, bloc.leaf_index, tree_size)?,
        })
    };
    Ok(SignerKey {
        account: loc.account.clone(),
        public_key: signer_hex,
        binding,
        revoked: entry.revoked.clone(),
    })
}

/// The audit path of leaf `leaf_index` into the tree of `tree_size`.
pub(super) fn inclusion_into(
    kv: &(impl KvRead + ?Sized),
    leaf_index: u64,
    tree_size: u64,
) -> Result<Vec<H32>, EvidenceError> {
    Ok(hashes(
        merkle::inclusion_proof(leaf_index, tree_size, &TreeReader(kv))
            .map_err(LedgerError::from)?,
    ))
}

/// Every membership record in force at the checkpoint of block `sealed`,
/// in commit order, proved into its tree of `tree_size`.
pub(super) fn membership_changes(
    kv: &(impl KvRead + ?Sized),
    sealed: u64,
    tree_size: u64,
) -> Result<Vec<MembershipChange>, EvidenceError> {
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
                    inclusion: inclusion_into(kv, l.leaf_index, tree_size)?,
                });
            }
        }
    }
    Ok(changes)
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
    // Only the validators' lines count: a witness's cosignature added to
    // the note later leaves the summary (and so the bundle) valid.
    let log = LogIdentity::new(&spec.chain_id, spec.log_host.as_deref(), &b.genesis_hash);
    let validators = seal::note_keys(&log, &b.validators.set).unwrap_or_default();
    let (cp_height, cp_size, sigs) = cp
        .map(|(c, n)| {
            let by_validators = n
                .signatures
                .iter()
                .filter(|s| validators.contains_key(&(s.name.clone(), s.key_id)))
                .count();
            (c.height, c.tree_size, by_validators)
        })
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
