//! Read-side views over committed state: the one-code view (一码聚合) of a
//! batch, subjects, shipments, a regulator's alerts and a subject's portrait
//! (企业画像). Pure functions of a [`KvRead`]; the API only maps them to HTTP.

use std::collections::BTreeSet;

use serde::Serialize;

use crate::error::Result;
use crate::kv::{KvRead, Space};
use crate::record::{FindingKind, RejectionReason};
use crate::state::*;

/// Rows a listing returns at most.
pub const LIST_ROWS_MAX: usize = 500;

#[derive(Debug, Clone, Serialize)]
pub struct SubjectSummary {
    pub uscc: String,
    pub name: String,
    pub kind: crate::record::SubjectKind,
    pub district: String,
    pub subject_code: String,
}

impl From<&Subject> for SubjectSummary {
    fn from(s: &Subject) -> Self {
        Self {
            uscc: s.uscc.clone(),
            name: s.name.clone(),
            kind: s.kind,
            district: s.district.clone(),
            subject_code: s.subject_code.clone(),
        }
    }
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum UpstreamView {
    Registered {
        subject: Option<SubjectSummary>,
        uscc: String,
    },
    Unregistered {
        name: String,
        uscc: Option<String>,
        region: String,
    },
}

#[derive(Debug, Clone, Serialize)]
pub struct CustodyEvent {
    pub at_ms: i64,
    /// `coded`, `shipped`, `received` or `rejected`.
    pub event: &'static str,
    pub from: Option<String>,
    pub to: Option<String>,
    pub shipment_id: Option<String>,
    pub quantity: u64,
    pub tx: String,
    pub on_time: Option<bool>,
}

#[derive(Debug, Clone, Serialize)]
pub struct HoldingView {
    pub subject: SubjectSummary,
    pub quantity: u64,
}

#[derive(Debug, Clone, Serialize)]
pub struct TraceView {
    pub trace_code: String,
    pub batch: Batch,
    pub product: Option<Product>,
    pub coder: Option<SubjectSummary>,
    pub upstream: Option<UpstreamView>,
    pub certificates: Vec<Certificate>,
    pub rapid_tests: Vec<RapidTest>,
    /// Coding, then every shipment and its answer, in commit order.
    pub custody: Vec<CustodyEvent>,
    /// Who holds the batch now, and how much.
    pub holders: Vec<HoldingView>,
    pub in_transit: u64,
    /// Inspection findings against the subjects on the chain of custody.
    pub findings: Vec<Finding>,
    /// Every subject on the chain of custody, by USCC (names for display).
    pub parties: std::collections::BTreeMap<String, SubjectSummary>,
    pub recalled: bool,
    pub expired: bool,
}

pub fn subject(kv: &(impl KvRead + ?Sized), uscc: &str) -> Result<Option<Subject>> {
    Ok(get(kv, Space::State, &subject_key(uscc))?)
}

pub fn account(kv: &(impl KvRead + ?Sized), id: &str) -> Result<Option<Account>> {
    Ok(get(kv, Space::State, &account_key(id))?)
}

/// A batch with (up to [`LIST_ROWS_MAX`] of) the shipments naming it.
pub fn batch(kv: &(impl KvRead + ?Sized), trace_code: &str) -> Result<Option<Batch>> {
    let Some(mut b) = get::<Batch>(kv, Space::State, &batch_key(trace_code))? else {
        return Ok(None);
    };
    b.shipments = batch_shipments(kv, trace_code, LIST_ROWS_MAX)?;
    Ok(Some(b))
}

pub fn shipment(
    kv: &(impl KvRead + ?Sized),
    shipper: &str,
    shipment_id: &str,
) -> Result<Option<Shipment>> {
    Ok(get(kv, Space::State, &shipment_key(shipper, shipment_id))?)
}

pub fn finding(kv: &(impl KvRead + ?Sized), finding_id: &str) -> Result<Option<Finding>> {
    Ok(get(kv, Space::State, &finding_key(finding_id))?)
}

pub fn varieties(kv: &(impl KvRead + ?Sized)) -> Result<Option<VarietyCatalogue>> {
    Ok(get(kv, Space::State, VARIETIES_KEY)?)
}

// Long because the one-code view gathers every part of a batch's story
// (coding, custody, shipments, tests, recall) in one bounded read; each part
// is a few lines of the same shape.
/// The one-code view of a batch. `today` is the local date used for the expiry flag.
pub fn trace(
    kv: &(impl KvRead + ?Sized),
    trace_code: &str,
    today: Option<jiff::civil::Date>,
) -> Result<Option<TraceView>> {
    let Some(b) = batch(kv, trace_code)? else {
        return Ok(None);
    };
    let product = get::<Product>(kv, Space::State, &product_key(&b.coder, &b.product_id))?;
    let coder = subject(kv, &b.coder)?;
    let upstream = match &b.upstream {
        None => None,
        Some(UpstreamInfo::Registered { uscc, .. }) => Some(UpstreamView::Registered {
            subject: subject(kv, uscc)?.as_ref().map(Into::into),
            uscc: uscc.clone(),
        }),
        Some(UpstreamInfo::Unregistered { name, uscc, region }) => {
            Some(UpstreamView::Unregistered {
                name: name.clone(),
                uscc: uscc.clone(),
                region: region.clone(),
            })
        }
    };
    let mut certificates = Vec::new();
    for c in &b.certificates {
        if let Some(c) = get::<Certificate>(kv, Space::State, &certificate_key(c))? {
            certificates.push(c);
        }
    }
    let mut rapid_tests = Vec::new();
    for t in &b.rapid_tests {
        if let Some(t) = get::<RapidTest>(kv, Space::State, &test_key(t))? {
            rapid_tests.push(t);
        }
    }
    let mut custody = vec![CustodyEvent {
        at_ms: b.coded.at_ms,
        event: "coded",
        from: None,
        to: Some(b.coder.clone()),
        shipment_id: None,
        quantity: b.quantity,
        tx: b.coded.tx.clone(),
        on_time: None,
    }];
    let mut parties: BTreeSet<String> = BTreeSet::from([b.coder.clone()]);
    let mut in_transit = 0u64;
    for s in b.shipments.iter().take(LIST_ROWS_MAX) {
        let Some((shipper, id)) = s.split_once('/') else {
            continue;
        };
        let Some(sh) = shipment(kv, shipper, id)? else {
            continue;
        };
        let qty = sh
            .lines
            .iter()
            .filter(|l| l.trace_code == b.trace_code)
            .map(|l| l.quantity)
            .sum();
        parties.insert(sh.to.clone());
        custody.push(CustodyEvent {
            at_ms: sh.shipped.at_ms,
            event: "shipped",
            from: Some(sh.shipper.clone()),
            to: Some(sh.to.clone()),
            shipment_id: Some(sh.shipment_id.clone()),
            quantity: qty,
            tx: sh.shipped.tx.clone(),
            on_time: None,
        });
        match &sh.status {
            ShipmentStatus::Pending => in_transit += qty,
            ShipmentStatus::Received { origin, on_time } => custody.push(CustodyEvent {
                at_ms: origin.at_ms,
                event: "received",
                from: Some(sh.shipper.clone()),
                to: Some(sh.to.clone()),
                shipment_id: Some(sh.shipment_id.clone()),
                quantity: qty,
                tx: origin.tx.clone(),
                on_time: Some(*on_time),
            }),
            ShipmentStatus::Rejected {
                origin, on_time, ..
            } => custody.push(CustodyEvent {
                at_ms: origin.at_ms,
                event: "rejected",
                from: Some(sh.shipper.clone()),
                to: Some(sh.to.clone()),
                shipment_id: Some(sh.shipment_id.clone()),
                quantity: qty,
                tx: origin.tx.clone(),
                on_time: Some(*on_time),
            }),
        }
    }
    custody.sort_by(|a, c| a.at_ms.cmp(&c.at_ms).then(a.tx.cmp(&c.tx)));
    let mut holders = Vec::new();
    let prefix = format!("hold/{}/", b.trace_code);
    for (k, v) in kv.scan_prefix(Space::State, prefix.as_bytes(), LIST_ROWS_MAX)? {
        let holder = String::from_utf8_lossy(&k[prefix.len()..]).into_owned();
        let quantity: u64 = decode(&k, &v)?;
        if let Some(s) = subject(kv, &holder)? {
            holders.push(HoldingView {
                subject: (&s).into(),
                quantity,
            });
        }
    }
    let mut findings = Vec::new();
    let mut party_views = std::collections::BTreeMap::new();
    for p in &parties {
        if let Some(s) = subject(kv, p)? {
            party_views.insert(p.clone(), SubjectSummary::from(&s));
        }
        for (k, _) in kv.scan_prefix(Space::Index, format!("fs/{p}/").as_bytes(), LIST_ROWS_MAX)? {
            let key = String::from_utf8_lossy(&k).into_owned();
            if let Some(id) = key.rsplit('/').next() {
                if let Some(f) = finding(kv, id)? {
                    findings.push(f);
                }
            }
        }
    }
    let expired = match (today, b.expiry_date.parse::<jiff::civil::Date>()) {
        (Some(t), Ok(e)) => t > e,
        _ => false,
    };
    Ok(Some(TraceView {
        trace_code: b.trace_code.clone(),
        recalled: b.recall.is_some(),
        expired,
        product,
        coder: coder.as_ref().map(Into::into),
        upstream,
        certificates,
        rapid_tests,
        custody,
        holders,
        in_transit,
        findings,
        parties: party_views,
        batch: b,
    }))
}

#[derive(Debug, Clone, Serialize)]
pub struct SubjectView {
    pub subject: Subject,
    pub keys: Vec<KeyEntry>,
    pub holdings: Vec<(String, u64)>,
    pub batches_coded: Vec<String>,
    pub shipments_out: Vec<Shipment>,
    pub shipments_in: Vec<Shipment>,
    pub findings: Vec<Finding>,
}

fn keys_under(kv: &(impl KvRead + ?Sized), prefix: &str) -> Result<Vec<String>> {
    Ok(kv
        .scan_prefix(Space::Index, prefix.as_bytes(), LIST_ROWS_MAX)?
        .into_iter()
        .map(|(k, _)| String::from_utf8_lossy(&k[prefix.len()..]).into_owned())
        .collect())
}

pub fn subject_view(kv: &(impl KvRead + ?Sized), uscc: &str) -> Result<Option<SubjectView>> {
    let Some(s) = subject(kv, uscc)? else {
        return Ok(None);
    };
    let keys = account(kv, uscc)?.map(|a| a.keys).unwrap_or_default();
    let mut holdings = Vec::new();
    for trace in keys_under(kv, &format!("hb/{uscc}/"))? {
        let q: u64 = get(kv, Space::State, &holding_key(&trace, uscc))?.unwrap_or(0);
        holdings.push((trace, q));
    }
    let batches_coded = keys_under(kv, &format!("bc/{uscc}/"))?;
    let mut shipments_out = Vec::new();
    for id in keys_under(kv, &format!("so/{uscc}/"))? {
        if let Some(sh) = shipment(kv, uscc, &id)? {
            shipments_out.push(sh);
        }
    }
    let mut shipments_in = Vec::new();
    for rest in keys_under(kv, &format!("si/{uscc}/"))? {
        if let Some((shipper, id)) = rest.split_once('/') {
            if let Some(sh) = shipment(kv, shipper, id)? {
                shipments_in.push(sh);
            }
        }
    }
    let mut findings = Vec::new();
    for id in keys_under(kv, &format!("fs/{uscc}/"))? {
        if let Some(f) = finding(kv, &id)? {
            findings.push(f);
        }
    }
    Ok(Some(SubjectView {
        subject: s,
        keys,
        holdings,
        batches_coded,
        shipments_out,
        shipments_in,
        findings,
    }))
}

/// Notarizations of a document hash.
pub fn notarizations(
    kv: &(impl KvRead + ?Sized),
    document_hash: &str,
) -> Result<Vec<Notarization>> {
    Ok(scan::<Notarization>(
        kv,
        Space::Index,
        &format!("doc/{document_hash}/"),
        LIST_ROWS_MAX,
    )?
    .into_iter()
    .map(|(_, n)| n)
    .collect())
}

// ---- alerts -----------------------------------------------------------------

/// State rows an alerts query reads at most, per kind (batches, shipments);
/// past it the answer says it is incomplete.
pub const ALERT_SCAN_ROWS_MAX: usize = 50_000;
/// Alerts of each kind an answer lists at most (the totals count them all).
pub const ALERTS_MAX: usize = 200;
const ALERT_SCAN_PAGE_ROWS: usize = 1_024;

/// A batch as an alert lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BatchBrief {
    pub trace_code: String,
    pub product_name: String,
    pub coder: String,
    /// The coder's district.
    pub district: String,
    pub quantity: u64,
    pub unit: String,
    pub expiry_date: String,
    pub coded: Origin,
}

impl BatchBrief {
    fn of(b: &Batch) -> Self {
        BatchBrief {
            trace_code: b.trace_code.clone(),
            product_name: b.product_name.clone(),
            coder: b.coder.clone(),
            district: b.coder_district.clone(),
            quantity: b.quantity,
            unit: b.unit.clone(),
            expiry_date: b.expiry_date.clone(),
            coded: b.coded.clone(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RecallBrief {
    pub reason: String,
    pub by: String,
    pub origin: Origin,
    /// Subjects downstream that held or were sent the batch.
    pub affected: usize,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RecalledBatch {
    #[serde(flatten)]
    pub batch: BatchBrief,
    pub recall: RecallBrief,
}

/// A shipment whose receipt deadline passed with no answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct OverdueReceipt {
    pub shipper: String,
    pub shipment_id: String,
    pub to: String,
    pub receiver_district: String,
    pub lines: usize,
    pub shipped: Origin,
    pub receipt_deadline_ms: i64,
}

/// What a regulator's dashboard flags: recalled batches (newest first),
/// batches expiring in a window (soonest first) and overdue receipts
/// (oldest deadline first), each list capped at [`ALERTS_MAX`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Alerts {
    pub recalls: Vec<RecalledBatch>,
    pub recalls_total: usize,
    pub near_expiry: Vec<BatchBrief>,
    pub near_expiry_total: usize,
    pub overdue_receipts: Vec<OverdueReceipt>,
    pub overdue_receipts_total: usize,
    pub scanned_batches: usize,
    pub scanned_shipments: usize,
    /// Every batch and shipment was read (no scan hit [`ALERT_SCAN_ROWS_MAX`]).
    pub complete: bool,
}

/// Alerts over every district, or over `district` alone: batches not
/// recalled whose expiry date is within `[today, until]` (ISO dates), and
/// pending shipments whose receipt deadline is before `now_ms` (the head's
/// block time, so every node answers the same).
pub fn alerts(
    kv: &(impl KvRead + ?Sized),
    district: Option<&str>,
    today: &str,
    until: &str,
    now_ms: i64,
) -> Result<Alerts> {
    let in_district = |d: &str| district.is_none_or(|w| w == d);
    let (mut recalls, mut near_expiry) = (Vec::new(), Vec::new());
    let (mut recalls_total, mut near_expiry_total) = (0, 0);
    let (scanned_batches, batches_complete) =
        scan_paged(kv, BATCH_PREFIX, ALERT_SCAN_ROWS_MAX, |k, v| {
            let b: Batch = decode(k, v)?;
            if !in_district(&b.coder_district) {
                return Ok(());
            }
            if let Some(r) = &b.recall {
                recalls_total += 1;
                if recalls.len() < ALERTS_MAX {
                    recalls.push(RecalledBatch {
                        batch: BatchBrief::of(&b),
                        recall: RecallBrief {
                            reason: r.reason.clone(),
                            by: r.by.clone(),
                            origin: r.origin.clone(),
                            affected: r.affected.len(),
                        },
                    });
                }
            } else if b.expiry_date.as_str() >= today && b.expiry_date.as_str() <= until {
                near_expiry_total += 1;
                if near_expiry.len() < ALERTS_MAX {
                    near_expiry.push(BatchBrief::of(&b));
                }
            }
            Ok(())
        })?;
    let (mut overdue_receipts, mut overdue_receipts_total) = (Vec::new(), 0);
    let (scanned_shipments, shipments_complete) =
        scan_paged(kv, SHIPMENT_PREFIX, ALERT_SCAN_ROWS_MAX, |k, v| {
            let s: Shipment = decode(k, v)?;
            if matches!(s.status, ShipmentStatus::Pending)
                && s.receipt_deadline_ms < now_ms
                && in_district(&s.receiver_district)
            {
                overdue_receipts_total += 1;
                if overdue_receipts.len() < ALERTS_MAX {
                    overdue_receipts.push(OverdueReceipt {
                        shipper: s.shipper,
                        shipment_id: s.shipment_id,
                        to: s.to,
                        receiver_district: s.receiver_district,
                        lines: s.lines.len(),
                        shipped: s.shipped,
                        receipt_deadline_ms: s.receipt_deadline_ms,
                    });
                }
            }
            Ok(())
        })?;
    recalls.sort_by_key(|r| std::cmp::Reverse(r.recall.origin.at_ms));
    near_expiry.sort_by(|a, b| a.expiry_date.cmp(&b.expiry_date));
    overdue_receipts.sort_by_key(|s| s.receipt_deadline_ms);
    Ok(Alerts {
        recalls,
        recalls_total,
        near_expiry,
        near_expiry_total,
        overdue_receipts,
        overdue_receipts_total,
        scanned_batches,
        scanned_shipments,
        complete: batches_complete && shipments_complete,
    })
}

/// Calls `f` on every State row under `prefix`, in pages, up to `rows_max`
/// rows; answers how many it saw and whether that was all of them.
fn scan_paged(
    kv: &(impl KvRead + ?Sized),
    prefix: &str,
    rows_max: usize,
    mut f: impl FnMut(&[u8], &[u8]) -> Result<()>,
) -> Result<(usize, bool)> {
    let to = crate::kv::prefix_end(prefix.as_bytes()).unwrap_or_else(|| vec![0xff; 64]);
    let mut cursor = prefix.as_bytes().to_vec();
    let mut seen = 0usize;
    loop {
        let want = ALERT_SCAN_PAGE_ROWS.min(rows_max - seen);
        if want == 0 {
            // Complete only if nothing is left past the cap.
            let more = kv.scan(Space::State, &cursor, &to, 1)?;
            return Ok((seen, more.is_empty()));
        }
        let page = kv.scan(Space::State, &cursor, &to, want)?;
        let full = page.len() == want;
        for (k, v) in &page {
            f(k, v)?;
        }
        seen += page.len();
        match page.last() {
            Some((k, _)) if full => {
                cursor = k.clone();
                cursor.push(0);
            }
            _ => return Ok((seen, true)),
        }
    }
}

// ---- subject portrait (企业画像) ----------------------------------------------

/// Batches (coded or held) whose details a portrait reads.
const PORTRAIT_BATCHES_MAX: usize = LIST_ROWS_MAX;

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PortraitAccount {
    pub name: String,
    pub role: AccountRole,
    pub active_keys: usize,
    pub registered: Option<Origin>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct VarietyMark {
    pub variety: String,
    pub key_variety: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PortraitCatalogue {
    pub key_subject: bool,
    pub catalogue_version: Option<u32>,
    pub varieties: Vec<VarietyMark>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PortraitActivity {
    /// Natural days (model time zone) in the period with any record by the subject.
    pub active_days: usize,
    pub batches_coded: u64,
    pub key_variety_batches_coded: u64,
    pub shipments_out: u64,
    pub holdings: usize,
}

/// Receipts owed by the subject for shipments sent to it in the period. The
/// score model files receipts under their deadline's day instead; a portrait
/// counts an answer as soon as it is given, and a receipt not yet due as pending.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PortraitReceipts {
    pub due: u64,
    pub on_time: u64,
    pub late: u64,
    pub overdue_unanswered: u64,
    pub pending: u64,
    /// Percent of due receipts answered on time; `None` with none due.
    pub on_time_rate: Option<f64>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RejectionMade {
    pub shipper: String,
    pub shipment_id: String,
    pub reason: RejectionReason,
    pub note: Option<String>,
    pub origin: Origin,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PortraitRejections {
    /// Rejections the subject made in the period.
    pub made: u64,
    /// Of the subject's shipments in the period, those its receivers rejected.
    pub received: u64,
    pub list: Vec<RejectionMade>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Rectified {
    pub origin: Origin,
    pub in_time: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PortraitFinding {
    pub finding_id: String,
    pub kind: FindingKind,
    pub batches: u64,
    pub found: Origin,
    pub rectification_deadline_ms: i64,
    pub rectified: Option<Rectified>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RecallRole {
    Coder,
    Holder,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PortraitRecall {
    pub trace_code: String,
    pub product_name: String,
    pub reason: String,
    pub origin: Origin,
    pub role: RecallRole,
    /// What the subject holds of the batch (holders only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub quantity: Option<u64>,
}

/// A subject's portrait over `[start_ms, end_ms)`, which the food-safety
/// credit report prints.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Portrait {
    pub subject: Subject,
    pub account: Option<PortraitAccount>,
    pub catalogue: PortraitCatalogue,
    pub activity: PortraitActivity,
    pub receipts: PortraitReceipts,
    pub rejections: PortraitRejections,
    pub findings: Vec<PortraitFinding>,
    pub recalls: Vec<PortraitRecall>,
    /// No list the portrait reads was cut at [`LIST_ROWS_MAX`].
    pub complete: bool,
}

// Long because a portrait counts five lists of the subject (codings,
// holdings, shipments out, receipts owed, findings) in one pass each;
// receipts are in `receipts_owed`.
/// The portrait of `uscc`, or `None` for no such subject. `now_ms` (the
/// head's block time) decides which unanswered receipts are overdue.
pub fn portrait(
    kv: &(impl KvRead + ?Sized),
    params: &crate::score::ModelParams,
    uscc: &str,
    (start_ms, end_ms): (i64, i64),
    now_ms: i64,
) -> Result<Option<Portrait>> {
    let Some(v) = subject_view(kv, uscc)? else {
        return Ok(None);
    };
    let in_period = |ms: i64| ms >= start_ms && ms < end_ms;
    let mut active_days = BTreeSet::new();
    let mut mark = |ms: i64| {
        if in_period(ms) {
            if let Ok(d) = crate::score::local_date(params, ms) {
                active_days.insert(d);
            }
        }
    };

    // Coding, and recalls of what the subject coded or holds.
    let (mut coded, mut coded_key_variety) = (0u64, 0u64);
    let mut recalls = Vec::new();
    let mut coded_varieties = BTreeSet::new();
    for code in v.batches_coded.iter().take(PORTRAIT_BATCHES_MAX) {
        let Some(b) = batch(kv, code)? else {
            continue;
        };
        coded_varieties.insert(b.variety.clone());
        if in_period(b.coded.at_ms) {
            coded += 1;
            coded_key_variety += u64::from(b.key_variety);
            mark(b.coded.at_ms);
        }
        recalls.extend(recall_in(&b, RecallRole::Coder, None, in_period));
    }
    for (code, qty) in v.holdings.iter().take(PORTRAIT_BATCHES_MAX) {
        if v.batches_coded.contains(code) {
            continue;
        }
        if let Some(b) = batch(kv, code)? {
            recalls.extend(recall_in(&b, RecallRole::Holder, Some(*qty), in_period));
        }
    }

    // Shipments out, and how receivers answered them.
    let (mut shipped, mut shipped_rejected) = (0u64, 0u64);
    for s in &v.shipments_out {
        if in_period(s.shipped.at_ms) {
            shipped += 1;
            mark(s.shipped.at_ms);
            if matches!(s.status, ShipmentStatus::Rejected { .. }) {
                shipped_rejected += 1;
            }
        }
    }
    let (receipts, rejections_list) = receipts_owed(&v.shipments_in, in_period, now_ms, &mut mark);
    let findings = v
        .findings
        .iter()
        .filter(|f| in_period(f.found.at_ms))
        .map(|f| PortraitFinding {
            finding_id: f.finding_id.clone(),
            kind: f.kind,
            batches: f.batches,
            found: f.found.clone(),
            rectification_deadline_ms: f.rectification_deadline_ms,
            rectified: f.rectified.as_ref().map(|(origin, in_time)| Rectified {
                origin: origin.clone(),
                in_time: *in_time,
            }),
        })
        .collect();
    let complete = [
        v.batches_coded.len(),
        v.holdings.len(),
        v.shipments_in.len(),
        v.shipments_out.len(),
        v.findings.len(),
    ]
    .iter()
    .all(|n| *n < LIST_ROWS_MAX);
    let catalogue = varieties(kv)?;
    Ok(Some(Portrait {
        account: account(kv, uscc)?.map(|a| PortraitAccount {
            active_keys: a.active_key_count(),
            name: a.name,
            role: a.role,
            registered: a.registered,
        }),
        catalogue: PortraitCatalogue {
            key_subject: v.subject.key_subject,
            catalogue_version: catalogue.as_ref().map(|c| c.version),
            varieties: coded_varieties
                .into_iter()
                .map(|x| VarietyMark {
                    key_variety: catalogue.as_ref().is_some_and(|c| c.contains(&x)),
                    variety: x,
                })
                .collect(),
        },
        activity: PortraitActivity {
            active_days: active_days.len(),
            batches_coded: coded,
            key_variety_batches_coded: coded_key_variety,
            shipments_out: shipped,
            holdings: v.holdings.len(),
        },
        receipts,
        rejections: PortraitRejections {
            made: rejections_list.len() as u64,
            received: shipped_rejected,
            list: rejections_list,
        },
        findings,
        recalls,
        complete,
        subject: v.subject,
    }))
}

fn recall_in(
    b: &Batch,
    role: RecallRole,
    quantity: Option<u64>,
    in_period: impl Fn(i64) -> bool,
) -> Option<PortraitRecall> {
    let r = b.recall.as_ref().filter(|r| in_period(r.origin.at_ms))?;
    Some(PortraitRecall {
        trace_code: b.trace_code.clone(),
        product_name: b.product_name.clone(),
        reason: r.reason.clone(),
        origin: r.origin.clone(),
        role,
        quantity,
    })
}

/// Receipts the subject owed for shipments sent to it in the period, and
/// the rejections it made in the period.
fn receipts_owed(
    shipments_in: &[Shipment],
    in_period: impl Fn(i64) -> bool,
    now_ms: i64,
    mark: &mut impl FnMut(i64),
) -> (PortraitReceipts, Vec<RejectionMade>) {
    let (mut due, mut on_time, mut late, mut overdue, mut pending) = (0u64, 0u64, 0u64, 0u64, 0u64);
    let mut rejections = Vec::new();
    for s in shipments_in {
        let answered = match &s.status {
            ShipmentStatus::Pending => None,
            ShipmentStatus::Received { origin, on_time } => Some((origin, *on_time)),
            ShipmentStatus::Rejected {
                origin, on_time, ..
            } => Some((origin, *on_time)),
        };
        if let Some((o, _)) = answered {
            mark(o.at_ms);
        }
        if let ShipmentStatus::Rejected {
            origin,
            reason,
            note,
            ..
        } = &s.status
        {
            if in_period(origin.at_ms) {
                rejections.push(RejectionMade {
                    shipper: s.shipper.clone(),
                    shipment_id: s.shipment_id.clone(),
                    reason: *reason,
                    note: note.clone(),
                    origin: origin.clone(),
                });
            }
        }
        if !in_period(s.shipped.at_ms) {
            continue;
        }
        match answered {
            Some((_, true)) => {
                due += 1;
                on_time += 1;
            }
            Some((_, false)) => {
                due += 1;
                late += 1;
            }
            // Not answered: counts as missed once its deadline passed.
            None if s.receipt_deadline_ms <= now_ms => {
                due += 1;
                overdue += 1;
            }
            None => pending += 1,
        }
    }
    let on_time_rate = (due > 0).then(|| (on_time as f64) * 100.0 / (due as f64));
    (
        PortraitReceipts {
            due,
            on_time,
            late,
            overdue_unanswered: overdue,
            pending,
            on_time_rate,
        },
        rejections,
    )
}
