//! Read-side views over committed state: the one-code view (一码聚合) of a
//! batch, subjects, shipments. Pure functions of a [`KvRead`].

use std::collections::BTreeSet;

use serde::Serialize;

use crate::error::Result;
use crate::kv::{KvRead, Space};
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
