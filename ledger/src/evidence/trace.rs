//! Trace evidence (一码聚合, provable): one bundle for a batch's whole chain
//! of custody — its coding, every shipment naming it and each one's receipt
//! or rejection, its certificates, rapid tests and recall — each record
//! with its signer's key and its inclusion proof under one sealed
//! checkpoint (docs/evidence.md, "Trace bundles").
//!
//! The verifier replays the records by the ledger's own custody rules
//! (who holds how much; a rejected shipment returns to its shipper), so a
//! record added from elsewhere, or dropped where a later record depends on
//! it (a receipt naming a missing shipment, a shipment by a party that never
//! received the batch, a certificate the coding lists), fails `custody`.

use std::collections::{BTreeMap, BTreeSet};

use super::*;
use crate::query;

/// The trace bundle format.
pub const TRACE_FORMAT: &str = "zsl-trace-evidence/1";
/// Records a trace bundle carries at most.
pub const TRACE_RECORDS_MAX: usize = 2_048;

/// Check names of a trace bundle (stable), besides the bundle's own
/// `bundle`, `checkpoint_matches_header`, `validator_set` and
/// `checkpoint_signatures`.
pub mod trace_check {
    /// Every record: signature, key, inclusion, order.
    pub const RECORDS: &str = "records";
    /// The records tell one batch's story by the ledger's rules.
    pub const CUSTODY: &str = "custody";
    /// The facts are what the records say.
    pub const FACTS: &str = "facts";
}

/// One record of a trace, proved into the bundle's checkpoint.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TraceRecord {
    pub tx_id: H32,
    /// The record as signed: `{body, signer, sig}`.
    pub record: Value,
    pub signer_key: SignerKey,
    pub leaf_index: u64,
    pub inclusion: Vec<H32>,
}

/// A batch's chain of custody, offline-verifiable.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TraceBundle {
    /// [`TRACE_FORMAT`].
    pub format: String,
    pub chain_id: String,
    pub genesis_hash: H32,
    pub trace_code: String,
    /// The header of the checkpoint's block.
    pub header: BlockHeader,
    /// The sealed checkpoint as a C2SP signed note.
    pub checkpoint: String,
    pub validators: ValidatorEvidence,
    /// In commit (leaf) order.
    pub records: Vec<TraceRecord>,
    /// One line per record, what it says (regenerated and compared).
    pub facts: Vec<String>,
}

/// Why no trace bundle could be built.
#[derive(Debug, thiserror::Error)]
pub enum TraceEvidenceError {
    #[error("no batch with trace code {0}")]
    NotFound(String),
    #[error("the newest record of trace {0} is not yet under a sealed checkpoint; retry shortly")]
    NotYetSealed(String),
    #[error("trace {0} has more than {TRACE_RECORDS_MAX} records (or {shipments} shipments) to prove", shipments = query::LIST_ROWS_MAX)]
    TooLarge(String),
    #[error(transparent)]
    Evidence(#[from] EvidenceError),
}

impl From<LedgerError> for TraceEvidenceError {
    fn from(e: LedgerError) -> Self {
        TraceEvidenceError::Evidence(EvidenceError::Ledger(e))
    }
}

/// The tx ids of every record on the trace, from the batch's state.
fn trace_tx_ids(
    kv: &(impl KvRead + ?Sized),
    code: &str,
) -> Result<BTreeSet<String>, TraceEvidenceError> {
    let b = query::batch(kv, code)?.ok_or_else(|| TraceEvidenceError::NotFound(code.into()))?;
    if b.shipments.len() >= query::LIST_ROWS_MAX {
        return Err(TraceEvidenceError::TooLarge(code.into()));
    }
    let mut ids = BTreeSet::from([b.coded.tx.clone()]);
    for s in &b.shipments {
        let Some((shipper, id)) = s.split_once('/') else {
            continue;
        };
        let sh = query::shipment(kv, shipper, id)?
            .ok_or_else(|| corrupt(format!("shipment {s} of trace {code} missing")))?;
        ids.insert(sh.shipped.tx.clone());
        match &sh.status {
            state::ShipmentStatus::Pending => {}
            state::ShipmentStatus::Received { origin, .. }
            | state::ShipmentStatus::Rejected { origin, .. } => {
                ids.insert(origin.tx.clone());
            }
        }
    }
    for c in &b.certificates {
        let c: state::Certificate = state::get(kv, Space::State, &state::certificate_key(c))
            .map_err(LedgerError::from)?
            .ok_or_else(|| corrupt(format!("certificate {c} missing")))?;
        ids.insert(c.issued.tx);
    }
    for t in &b.rapid_tests {
        let t: state::RapidTest = state::get(kv, Space::State, &state::test_key(t))
            .map_err(LedgerError::from)?
            .ok_or_else(|| corrupt(format!("rapid test {t} missing")))?;
        ids.insert(t.tested.tx);
    }
    if let Some(r) = &b.recall {
        ids.insert(r.origin.tx.clone());
    }
    Ok(ids)
}

/// Builds the trace bundle of `code` under the newest sealed checkpoint.
pub fn build_trace(
    kv: &(impl KvRead + ?Sized),
    g: &Genesis,
    code: &str,
) -> Result<TraceBundle, TraceEvidenceError> {
    let spec = &g.spec;
    let ids = trace_tx_ids(kv, code)?;
    if ids.len() > TRACE_RECORDS_MAX {
        return Err(TraceEvidenceError::TooLarge(code.into()));
    }
    let sealed = seal::latest_sealed_height(kv)?
        .ok_or_else(|| TraceEvidenceError::NotYetSealed(code.into()))?;
    let (cp, note, set) = sealed_checkpoint(kv, spec, sealed)?
        .ok_or_else(|| corrupt(format!("sealed block {sealed} has no signed checkpoint")))?;
    let header =
        read_header(kv, sealed)?.ok_or_else(|| corrupt(format!("block {sealed} missing")))?;
    let mut records = Vec::with_capacity(ids.len());
    for id in &ids {
        let tx_id = H32::parse(id).ok_or_else(|| corrupt(format!("tx id {id} is not hex")))?;
        let loc = read_tx(kv, &tx_id.0)?.ok_or_else(|| corrupt(format!("tx {id} missing")))?;
        if loc.leaf_index >= cp.tree_size {
            return Err(TraceEvidenceError::NotYetSealed(code.into()));
        }
        let record = wire_value(&loc.wire)?;
        records.push(TraceRecord {
            tx_id,
            signer_key: build::signer_key_of(kv, &loc, &record, cp.tree_size)?,
            inclusion: build::inclusion_into(kv, loc.leaf_index, cp.tree_size)?,
            leaf_index: loc.leaf_index,
            record,
        });
    }
    records.sort_by_key(|r| r.leaf_index);
    let mut b = TraceBundle {
        format: TRACE_FORMAT.into(),
        chain_id: spec.chain_id.clone(),
        genesis_hash: g.hash,
        trace_code: code.into(),
        header,
        checkpoint: note.render(),
        validators: ValidatorEvidence {
            changes: build::membership_changes(kv, sealed, cp.tree_size)?,
            quorum: seal::quorum(spec, &set) as u64,
            vkeys: g.vkeys(&set)?,
            set,
        },
        records,
        facts: Vec::new(),
    };
    b.facts = custody(&b, spec).map_err(|e| corrupt(format!("trace {code}: {e}")))?;
    Ok(b)
}

/// Parses a trace bundle file strictly.
pub fn parse_trace_bundle(bytes: &[u8]) -> Result<TraceBundle, String> {
    if bytes.len() > TRACE_BUNDLE_BYTES_MAX {
        return Err(format!(
            "trace bundle is over {TRACE_BUNDLE_BYTES_MAX} bytes"
        ));
    }
    crate::strict_json::from_slice(bytes).map_err(|e| format!("not a {TRACE_FORMAT} bundle: {e}"))
}

/// Bytes of a trace bundle a verifier reads at most.
pub const TRACE_BUNDLE_BYTES_MAX: usize = 16 << 20;

/// Whether JSON bytes are a trace bundle (by their `format`), not a
/// record's bundle.
pub fn is_trace_bundle(bytes: &[u8]) -> bool {
    #[derive(Deserialize)]
    struct Format {
        format: String,
    }
    serde_json::from_slice::<Format>(bytes).is_ok_and(|f| f.format == TRACE_FORMAT)
}

/// Verifies a trace bundle from the genesis alone; every check named.
pub fn verify_trace(b: &TraceBundle, trust: &Genesis) -> Report {
    let spec = &trust.spec;
    let cp = parse_checkpoint(&b.checkpoint);
    let mut r = Report { checks: Vec::new() };
    r.push(check::BUNDLE, check_trace_bundle(b, trust));
    r.push(
        check::CHECKPOINT_MATCHES_HEADER,
        check_checkpoint_header(Some(&b.header), trust, &cp),
    );
    let in_force = derive_set(&b.validators, Some(&b.header), trust, &cp);
    r.push(
        check::VALIDATOR_SET,
        check_validator_set(&b.validators, Some(&b.header), trust, &in_force),
    );
    r.push(
        check::CHECKPOINT_SIGNATURES,
        check_quorum(&b.checkpoint, &in_force),
    );
    r.push(trace_check::RECORDS, check_records(b, spec, &cp));
    let story = custody(b, spec);
    r.push(
        trace_check::CUSTODY,
        story
            .as_ref()
            .map(|f| {
                format!(
                    "{} records tell trace {}'s story by the ledger's custody rules",
                    f.len(),
                    b.trace_code
                )
            })
            .map_err(Clone::clone),
    );
    r.push(
        trace_check::FACTS,
        match story {
            Ok(f) if f == b.facts => Ok(b.facts.join("\n")),
            Ok(_) => Err("the facts do not say what the records say".into()),
            Err(_) => Err("the custody check failed, so the facts cannot be derived".into()),
        },
    );
    r
}

fn check_trace_bundle(b: &TraceBundle, g: &Genesis) -> Result<String, String> {
    if b.format != TRACE_FORMAT {
        return Err(format!("format is `{}`, not `{TRACE_FORMAT}`", b.format));
    }
    if b.chain_id != g.spec.chain_id || b.genesis_hash != g.hash {
        return Err("the bundle is for another chain or genesis".into());
    }
    if b.header.chain_id != g.spec.chain_id {
        return Err("the header is for another chain".into());
    }
    Ok(format!(
        "{TRACE_FORMAT}, trace {}, chain `{}`, genesis {}",
        b.trace_code, b.chain_id, b.genesis_hash
    ))
}

/// Each record signed, its key bound before it, included in the
/// checkpoint's tree; strictly in commit order.
fn check_records(
    b: &TraceBundle,
    spec: &ChainSpec,
    cp: &Result<Checkpoint, String>,
) -> Result<String, String> {
    let c = cp.as_ref().map_err(Clone::clone)?;
    if b.records.is_empty() || b.records.len() > TRACE_RECORDS_MAX {
        return Err(format!(
            "1 to {TRACE_RECORDS_MAX} records, not {}",
            b.records.len()
        ));
    }
    let mut prev: Option<u64> = None;
    let mut sm2 = 0usize;
    for (i, rec) in b.records.iter().enumerate() {
        let at = |e: String| format!("record {i} ({}): {e}", rec.tx_id);
        if prev.is_some_and(|p| rec.leaf_index <= p) {
            return Err(at("not after the record before it (leaf order)".into()));
        }
        prev = Some(rec.leaf_index);
        let (tx, _) = check_signed_record(&rec.record, &rec.tx_id, spec).map_err(at)?;
        sm2 += usize::from(tx.signer.alg() == crate::signing::SigAlg::Sm2Sm3);
        check_key(&rec.signer_key, rec.leaf_index, None, spec, Some(&tx), cp).map_err(at)?;
        included(&rec.tx_id, rec.leaf_index, &rec.inclusion, c)
            .map_err(|e| at(format!("inclusion: {e}")))?;
    }
    // Which records are SM2 is worth a line: Ed25519 is the default.
    let sm2_note = match sm2 {
        0 => String::new(),
        n => format!(" ({n} of them SM2-SM3)"),
    };
    Ok(format!(
        "{} records signed by their keys{sm2_note} and included in the tree of size {}",
        b.records.len(),
        c.tree_size
    ))
}

/// What a shipment moved, until answered.
struct InTransit {
    to: String,
    quantity: u64,
}

/// Replays the records by the ledger's custody rules; returns one fact per
/// record, or the first thing the ledger would not have accepted, or that
/// a record the story depends on is missing.
fn custody(b: &TraceBundle, spec: &ChainSpec) -> Result<Vec<String>, String> {
    let code = &b.trace_code;
    let mut facts = Vec::with_capacity(b.records.len());
    let mut coding: Option<(String, Vec<String>, Vec<String>)> = None;
    let mut held: BTreeMap<String, u64> = BTreeMap::new();
    let mut transit: BTreeMap<(String, String), InTransit> = BTreeMap::new();
    // Certificate id → whether it names this trace code (one issued before
    // the coding is on the trace only if the coding lists it).
    let mut certificates: BTreeMap<String, bool> = BTreeMap::new();
    let mut tests = BTreeSet::new();
    let mut recalled = false;
    let mut seen = BTreeSet::new();
    for (i, rec) in b.records.iter().enumerate() {
        let at = |e: String| format!("record {i} ({}): {e}", rec.tx_id);
        if !seen.insert(rec.tx_id) {
            return Err(at("appears twice".into()));
        }
        let tx = SignedTx::from_value(rec.record.clone()).map_err(|e| at(e.to_string()))?;
        let (common, body) = record::parse_body(&tx.body).map_err(|e| at(e.to_string()))?;
        let who = common.account.clone();
        let when = local_time(spec, common.created_at_ms);
        let fact = match body {
            record::Record::BatchCode(r) => {
                if coding.is_some() {
                    return Err(at("a second coding".into()));
                }
                if crate::machine::trace_code(&who, &r.batch_id) != *code {
                    return Err(at(format!("codes another batch than {code}")));
                }
                held.insert(who.clone(), r.quantity);
                let f = format!(
                    "{when} coded (赋码) by {who}: batch {}, {} {} of {}",
                    r.batch_id, r.quantity, r.unit, r.product_id
                );
                coding = Some((who, r.certificates, r.rapid_tests));
                f
            }
            _ if coding.is_none() && !matches!(body, record::Record::CertificateIssue(_)) => {
                return Err(at(format!("a `{}` before the batch's coding", common.kind)));
            }
            record::Record::ShipmentCreate(r) => {
                let qty: u64 = r
                    .lines
                    .iter()
                    .filter(|l| l.trace_code == *code)
                    .map(|l| l.quantity)
                    .sum();
                if qty == 0 {
                    return Err(at(format!(
                        "shipment {} carries nothing of {code}",
                        r.shipment_id
                    )));
                }
                let has = held.entry(who.clone()).or_default();
                if *has < qty {
                    return Err(at(format!(
                        "{who} ships {qty} but holds {has} by the records before it (a receipt missing?)"
                    )));
                }
                *has -= qty;
                transit.insert(
                    (who.clone(), r.shipment_id.clone()),
                    InTransit {
                        to: r.to.clone(),
                        quantity: qty,
                    },
                );
                format!(
                    "{when} shipped (出库) by {who} to {}: shipment {}, {qty}",
                    r.to, r.shipment_id
                )
            }
            record::Record::ShipmentReceive(r) => {
                let t = answer(&mut transit, &r.shipper, &r.shipment_id, &who).map_err(at)?;
                *held.entry(who.clone()).or_default() += t.quantity;
                format!(
                    "{when} received (入库确认) by {who}: shipment {} from {}, {}",
                    r.shipment_id, r.shipper, t.quantity
                )
            }
            record::Record::ShipmentReject(r) => {
                let t = answer(&mut transit, &r.shipper, &r.shipment_id, &who).map_err(at)?;
                *held.entry(r.shipper.clone()).or_default() += t.quantity;
                format!(
                    "{when} rejected (拒收) by {who}: shipment {} from {}, {} back to the shipper",
                    r.shipment_id, r.shipper, t.quantity
                )
            }
            record::Record::CertificateIssue(r) => {
                let names = r.trace_code.as_deref() == Some(code.as_str());
                certificates.insert(r.certificate_id.clone(), names);
                format!(
                    "{when} certificate (合格证) {} issued by {who}",
                    r.certificate_id
                )
            }
            record::Record::RapidTestRecord(r) => {
                if r.trace_code != *code {
                    return Err(at(format!("rapid test {} is of another batch", r.test_id)));
                }
                tests.insert(r.test_id.clone());
                format!(
                    "{when} rapid test (快检) {} by {who}: {} {}",
                    r.test_id,
                    r.item,
                    serde_json::to_value(r.result)
                        .ok()
                        .and_then(|v| v.as_str().map(str::to_string))
                        .unwrap_or_default()
                )
            }
            record::Record::RecallIssue(r) => {
                if r.trace_code != *code || recalled {
                    return Err(at("a recall of another batch, or a second one".into()));
                }
                recalled = true;
                format!("{when} recalled (召回) by {who}: {}", r.reason)
            }
            _ => {
                return Err(at(format!(
                    "a `{}` record is not part of a trace",
                    common.kind
                )))
            }
        };
        facts.push(fact);
    }
    let (_, listed_certs, listed_tests) = coding.ok_or("no coding record")?;
    for c in &listed_certs {
        if !certificates.contains_key(c) {
            return Err(format!(
                "the coding lists certificate {c}, which the bundle lacks"
            ));
        }
    }
    for (c, names) in &certificates {
        if !names && !listed_certs.contains(c) {
            return Err(format!("certificate {c} is not for {code}"));
        }
    }
    for t in &listed_tests {
        if !tests.contains(t) {
            return Err(format!(
                "the coding lists rapid test {t}, which the bundle lacks"
            ));
        }
    }
    Ok(facts)
}

/// The shipment a receipt or rejection by `who` answers, taken off the road.
fn answer(
    transit: &mut BTreeMap<(String, String), InTransit>,
    shipper: &str,
    id: &str,
    who: &str,
) -> Result<InTransit, String> {
    let key = (shipper.to_string(), id.to_string());
    let missing = || {
        format!(
            "answers shipment {id} from {shipper}, which the bundle lacks or was answered already"
        )
    };
    let t = transit.remove(&key).ok_or_else(missing)?;
    if t.to != who {
        return Err(format!("shipment {id} is addressed to {}, not {who}", t.to));
    }
    Ok(t)
}

#[cfg(test)]
mod tests;
