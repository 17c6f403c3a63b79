//! EPCIS 2.0 (GS1) export of a batch's chain of custody as a JSON-LD
//! `EPCISDocument`, with CBV 2.0 business steps and dispositions, and the
//! reading back of such a document into custody steps (docs/epcis.md).
//!
//! Identifiers: a batch whose product has a GTIN is the GS1 Digital Link URI
//! of its LGTIN (`https://id.gs1.org/01/{gtin14}/10/{batch_id}`), else
//! `urn:zsl:batch:{trace_code}`; a subject is `urn:zsl:subject:{uscc}`, an
//! authority `urn:zsl:account:{id}`; an event is `urn:zsl:tx:{tx_id}`, the
//! ledger transaction it comes from, which `zsl:txId` and `zsl:evidence`
//! also carry. Times are ledger (block) times.

use std::collections::BTreeMap;

use serde_json::{json, Map, Value};

use crate::error::Result;
use crate::kv::{KvRead, Space};
use crate::query::{self, CustodyEvent, TraceView};
use crate::record::TestResult;
use crate::spec::ChainSpec;
use crate::state::{self, Product, ShipmentStatus};

/// The EPCIS 2.0 JSON-LD context every document names first.
pub const EPCIS_CONTEXT: &str = "https://ref.gs1.org/standards/epcis/2.0.0/epcis-context.jsonld";
/// The namespace of ZSL's extension members (`zsl:txId`, …).
pub const ZSL_NAMESPACE: &str = "urn:zsl:epcis:";
/// Prefix of a batch without a GTIN.
const BATCH_URN: &str = "urn:zsl:batch:";
const SUBJECT_URN: &str = "urn:zsl:subject:";
const TX_URN: &str = "urn:zsl:tx:";

/// The batch's class identifier: an LGTIN Digital Link URI where the product
/// has a GTIN and the batch id is a valid GS1 AI (10) value, else a ZSL URN.
pub fn epc_class(trace_code: &str, gtin: Option<&str>, batch_id: &str) -> String {
    // AI (10): 1-20 characters of GS1 set 82; ZSL's id alphabet is within it.
    let lot_ok = (1..=20).contains(&batch_id.len())
        && batch_id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.:/".contains(&b));
    match gtin {
        Some(g) if lot_ok && g.len() <= 14 && g.bytes().all(|b| b.is_ascii_digit()) => format!(
            "https://id.gs1.org/01/{g:0>14}/10/{}",
            batch_id.replace('/', "%2F")
        ),
        _ => format!("{BATCH_URN}{trace_code}"),
    }
}

fn party(uscc: &str) -> String {
    format!("{SUBJECT_URN}{uscc}")
}

/// UN/CEFACT Rec. 20 code of a ZSL unit, where there is one; other units are
/// counts (no `uom`).
fn uom(unit: &str) -> Option<&'static str> {
    Some(match unit.to_ascii_lowercase().as_str() {
        "kg" | "千克" | "公斤" => "KGM",
        "g" | "克" => "GRM",
        "t" | "吨" => "TNE",
        "l" | "升" => "LTR",
        "ml" | "毫升" => "MLT",
        _ => return None,
    })
}

struct Classes<'a, K: KvRead + ?Sized> {
    kv: &'a K,
    /// Trace code → (epc class, unit).
    known: BTreeMap<String, (String, String)>,
}

impl<K: KvRead + ?Sized> Classes<'_, K> {
    fn of(&mut self, trace_code: &str) -> Result<(String, String)> {
        if let Some(c) = self.known.get(trace_code) {
            return Ok(c.clone());
        }
        let c =
            match state::get::<state::Batch>(self.kv, Space::State, &state::batch_key(trace_code))?
            {
                Some(b) => {
                    let p: Option<Product> = state::get(
                        self.kv,
                        Space::State,
                        &state::product_key(&b.coder, &b.product_id),
                    )?;
                    let gtin = p.and_then(|p| p.gtin);
                    (epc_class(trace_code, gtin.as_deref(), &b.batch_id), b.unit)
                }
                None => (format!("{BATCH_URN}{trace_code}"), String::new()),
            };
        self.known.insert(trace_code.to_string(), c.clone());
        Ok(c)
    }

    fn quantity(&mut self, trace_code: &str, quantity: u64) -> Result<Value> {
        let (class, unit) = self.of(trace_code)?;
        let mut q = json!({"epcClass": class, "quantity": quantity});
        if let Some(u) = uom(&unit) {
            q["uom"] = u.into();
        }
        Ok(q)
    }
}

/// An RFC 3339 time in the chain's time zone (`2024-03-01T09:00:00.000+08:00`)
/// and its offset (`+08:00`).
fn local_time(spec: &ChainSpec, at_ms: i64) -> (String, String) {
    let ts = jiff::Timestamp::from_millisecond(at_ms).unwrap_or(jiff::Timestamp::UNIX_EPOCH);
    let tz = spec.model.time_zone().unwrap_or(jiff::tz::TimeZone::UTC);
    let zoned = ts.to_zoned_datetime(tz);
    (
        zoned.strftime("%Y-%m-%dT%H:%M:%S%.3f%:z").to_string(),
        zoned.strftime("%:z").to_string(),
    )
}

/// The members every event has: identity, time and ZSL's links.
fn event_base(spec: &ChainSpec, tx: &str, at_ms: i64) -> Map<String, Value> {
    let (time, offset) = local_time(spec, at_ms);
    let mut e = Map::new();
    e.insert("type".into(), "ObjectEvent".into());
    e.insert("eventID".into(), format!("{TX_URN}{tx}").into());
    e.insert("eventTime".into(), time.into());
    e.insert("eventTimeZoneOffset".into(), offset.into());
    e.insert("zsl:txId".into(), tx.into());
    e.insert("zsl:evidence".into(), format!("/v1/evidence/{tx}").into());
    e
}

fn observe(mut e: Map<String, Value>, biz_step: &str, disposition: &str) -> Map<String, Value> {
    e.insert("action".into(), "OBSERVE".into());
    e.insert("bizStep".into(), biz_step.into());
    e.insert("disposition".into(), disposition.into());
    e
}

fn coded_event<K: KvRead + ?Sized>(
    spec: &ChainSpec,
    t: &TraceView,
    c: &CustodyEvent,
    classes: &mut Classes<'_, K>,
) -> Result<Value> {
    let b = &t.batch;
    let mut e = event_base(spec, &c.tx, c.at_ms);
    e.insert("action".into(), "ADD".into());
    e.insert("bizStep".into(), "commissioning".into());
    e.insert("disposition".into(), "active".into());
    e.insert(
        "quantityList".into(),
        json!([classes.quantity(&b.trace_code, b.quantity)?]),
    );
    e.insert("readPoint".into(), json!({"id": party(&b.coder)}));
    e.insert("bizLocation".into(), json!({"id": party(&b.coder)}));
    let upstream = match &b.upstream {
        Some(state::UpstreamInfo::Registered { uscc, .. }) => Some(uscc.clone()),
        Some(state::UpstreamInfo::Unregistered { uscc, .. }) => uscc.clone(),
        None => None,
    };
    if let Some(u) = upstream {
        e.insert(
            "sourceList".into(),
            json!([{"type": "owning_party", "source": party(&u)}]),
        );
    }
    e.insert(
        "ilmd".into(),
        json!({
            "cbvmda:lotNumber": b.batch_id,
            "cbvmda:itemExpirationDate": b.expiry_date,
            "zsl:productionDate": b.production_date,
            "zsl:originRegion": b.origin_region,
        }),
    );
    e.insert("zsl:traceCode".into(), b.trace_code.clone().into());
    Ok(Value::Object(e))
}

fn shipment_event<K: KvRead + ?Sized>(
    spec: &ChainSpec,
    c: &CustodyEvent,
    classes: &mut Classes<'_, K>,
) -> Result<Option<Value>> {
    let (Some(from), Some(to), Some(id)) = (&c.from, &c.to, &c.shipment_id) else {
        return Ok(None);
    };
    let Some(sh) = query::shipment(classes.kv, from, id)? else {
        return Ok(None);
    };
    let mut e = event_base(spec, &c.tx, c.at_ms);
    let at = match c.event {
        "shipped" => from,
        _ => to,
    };
    e = match (c.event, &sh.status) {
        ("shipped", _) => observe(e, "shipping", "in_transit"),
        ("received", _) => observe(e, "receiving", "in_progress"),
        (_, ShipmentStatus::Rejected { reason, .. }) => {
            let mut e = observe(e, "inspecting", "returned");
            e.insert("zsl:rejectionReason".into(), json!(reason));
            e
        }
        _ => return Ok(None),
    };
    let mut lines = Vec::with_capacity(sh.lines.len());
    for l in &sh.lines {
        lines.push(classes.quantity(&l.trace_code, l.quantity)?);
    }
    e.insert("quantityList".into(), Value::Array(lines));
    e.insert("readPoint".into(), json!({"id": party(at)}));
    e.insert("bizLocation".into(), json!({"id": party(at)}));
    e.insert(
        "bizTransactionList".into(),
        json!([{"type": "desadv", "bizTransaction": format!("urn:zsl:shipment:{from}:{id}")}]),
    );
    e.insert(
        "sourceList".into(),
        json!([{"type": "owning_party", "source": party(from)}]),
    );
    e.insert(
        "destinationList".into(),
        json!([{"type": "owning_party", "destination": party(to)}]),
    );
    Ok(Some(Value::Object(e)))
}

/// Every event of a trace, in ledger order.
fn trace_events<K: KvRead + ?Sized>(kv: &K, spec: &ChainSpec, t: &TraceView) -> Result<Vec<Value>> {
    let mut classes = Classes {
        kv,
        known: BTreeMap::new(),
    };
    let mut out = Vec::new();
    for c in &t.custody {
        let e = match c.event {
            "coded" => Some(coded_event(spec, t, c, &mut classes)?),
            _ => shipment_event(spec, c, &mut classes)?,
        };
        if let Some(e) = e {
            out.push((c.at_ms, c.tx.clone(), e));
        }
    }
    let this = classes.quantity(&t.trace_code, t.batch.quantity)?;
    for cert in &t.certificates {
        let mut e = observe(
            event_base(spec, &cert.issued.tx, cert.issued.at_ms),
            "inspecting",
            "conformant",
        );
        e.insert("quantityList".into(), json!([this.clone()]));
        e.insert(
            "certificationInfo".into(),
            format!("urn:zsl:certificate:{}", cert.certificate_id).into(),
        );
        out.push((cert.issued.at_ms, cert.issued.tx.clone(), Value::Object(e)));
    }
    for test in &t.rapid_tests {
        let disposition = match test.result {
            TestResult::Pass => "conformant",
            TestResult::Fail => "non_conformant",
        };
        let mut e = observe(
            event_base(spec, &test.tested.tx, test.tested.at_ms),
            "inspecting",
            disposition,
        );
        e.insert("quantityList".into(), json!([this.clone()]));
        e.insert("zsl:testItem".into(), test.item.clone().into());
        out.push((test.tested.at_ms, test.tested.tx.clone(), Value::Object(e)));
    }
    if let Some(r) = &t.batch.recall {
        let mut e = observe(
            event_base(spec, &r.origin.tx, r.origin.at_ms),
            "holding",
            "recalled",
        );
        e.insert("quantityList".into(), json!([this]));
        e.insert("zsl:recallReason".into(), r.reason.clone().into());
        out.push((r.origin.at_ms, r.origin.tx.clone(), Value::Object(e)));
    }
    // Ledger order: by block time, then by where each transaction sits.
    let mut keyed = Vec::with_capacity(out.len());
    for (at, tx, e) in out {
        let place = match crate::hash::H32::parse(&tx) {
            Some(h) => crate::history::read_tx(kv, &h.0)?.map(|l| (l.height, l.index)),
            None => None,
        };
        keyed.push(((at, place, tx), e));
    }
    keyed.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(keyed.into_iter().map(|(_, e)| e).collect())
}

/// The chain of custody of a trace ([`query::trace`]) as an `EPCISDocument`
/// created at `created_ms` (the caller passes the head block's time, so the
/// document depends on the ledger only).
pub fn trace_document(
    kv: &(impl KvRead + ?Sized),
    spec: &ChainSpec,
    t: &TraceView,
    created_ms: i64,
) -> Result<Value> {
    let events = trace_events(kv, spec, t)?;
    Ok(json!({
        "@context": [EPCIS_CONTEXT, {"zsl": ZSL_NAMESPACE}],
        "type": "EPCISDocument",
        "schemaVersion": "2.0",
        "creationDate": local_time(spec, created_ms).0,
        "epcisBody": {"eventList": events},
    }))
}

/// One custody step read back from an EPCIS document: what `query::trace`
/// lists as its custody (`event`, `from`, `to`, `quantity`, `tx`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CustodyStep {
    pub event: String,
    pub from: Option<String>,
    pub to: Option<String>,
    pub quantity: u64,
    pub tx: String,
}

fn party_of(list: &Value, key: &str) -> Option<String> {
    list.as_array()?
        .iter()
        .find(|s| s["type"] == "owning_party")?[key]
        .as_str()?
        .strip_prefix(SUBJECT_URN)
        .map(str::to_string)
}

/// Reads the custody steps of a trace export back: the commissioning event
/// names the batch's class; each shipping, receiving and returning event
/// gives a step with this batch's quantity on it.
pub fn read_custody(doc: &Value) -> std::result::Result<Vec<CustodyStep>, String> {
    let events = doc["epcisBody"]["eventList"]
        .as_array()
        .ok_or("no epcisBody.eventList")?;
    let coding = events
        .iter()
        .find(|e| e["bizStep"] == "commissioning")
        .ok_or("no commissioning event")?;
    let class = coding["quantityList"][0]["epcClass"]
        .as_str()
        .ok_or("the commissioning event names no epcClass")?;
    let mut steps = Vec::new();
    for e in events {
        let event = match (e["bizStep"].as_str(), e["disposition"].as_str()) {
            (Some("commissioning"), _) => "coded",
            (Some("shipping"), _) => "shipped",
            (Some("receiving"), _) => "received",
            (Some("inspecting"), Some("returned")) => "rejected",
            _ => continue,
        };
        let quantity = e["quantityList"]
            .as_array()
            .and_then(|q| q.iter().find(|q| q["epcClass"] == class))
            .and_then(|q| q["quantity"].as_u64())
            .ok_or_else(|| format!("event {} has no quantity of {class}", e["eventID"]))?;
        let tx = e["eventID"]
            .as_str()
            .and_then(|id| id.strip_prefix(TX_URN))
            .ok_or("an eventID is not a ZSL transaction")?;
        let (from, to) = match event {
            "coded" => (
                None,
                e["bizLocation"]["id"]
                    .as_str()
                    .and_then(|i| i.strip_prefix(SUBJECT_URN))
                    .map(str::to_string),
            ),
            _ => (
                party_of(&e["sourceList"], "source"),
                party_of(&e["destinationList"], "destination"),
            ),
        };
        steps.push(CustodyStep {
            event: event.into(),
            from,
            to,
            quantity,
            tx: tx.into(),
        });
    }
    Ok(steps)
}

/// The custody of a trace view as steps, to compare with [`read_custody`].
pub fn custody_steps(t: &TraceView) -> Vec<CustodyStep> {
    t.custody
        .iter()
        .map(|c| CustodyStep {
            event: c.event.into(),
            from: c.from.clone(),
            to: c.to.clone(),
            quantity: c.quantity,
            tx: c.tx.clone(),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_batch_is_its_lgtin_where_a_gtin_and_a_fitting_lot_exist() {
        assert_eq!(
            epc_class("ZS00", Some("6901234567892"), "B/1"),
            "https://id.gs1.org/01/06901234567892/10/B%2F1"
        );
        // No GTIN, or a batch id longer than AI (10) allows: the ZSL URN.
        assert_eq!(epc_class("ZS00", None, "B1"), "urn:zsl:batch:ZS00");
        assert_eq!(
            epc_class("ZS00", Some("6901234567892"), &"x".repeat(21)),
            "urn:zsl:batch:ZS00"
        );
        assert_eq!((uom("kg"), uom("箱")), (Some("KGM"), None));
    }

    #[test]
    fn read_custody_needs_a_commissioning_event() {
        let doc = json!({"epcisBody": {"eventList": [{"bizStep": "shipping"}]}});
        assert!(read_custody(&doc).unwrap_err().contains("commissioning"));
        assert!(read_custody(&json!({})).is_err());
    }
}
