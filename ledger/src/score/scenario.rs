//! Scenario files (`scoring/examples/*.json`, MODEL.md "Scenario files"): types, a
//! parser that checks the story hangs together, and the comparison of a report with
//! `expect`.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{parse_hundredths, Period, Term};

/// Tolerance of a rate comparison, in percent (MODEL.md: within 0.005).
pub const RATE_TOLERANCE: f64 = 0.005;
/// Largest `count` of one `code` event, in batches.
pub const CODE_COUNT_MAX: u64 = 10_000_000;

#[derive(Debug, thiserror::Error)]
pub enum ScenarioError {
    #[error("scenario is not valid JSON for the format: {0}")]
    Json(#[from] serde_json::Error),
    #[error("{0}")]
    Invalid(String),
    #[error("event {index} (at {at}): {reason}")]
    Event {
        index: usize,
        at: String,
        reason: String,
    },
}

/// The scenario file as written.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    pub model: String,
    pub period: Period,
    /// The replay's region table.
    pub districts: Vec<String>,
    pub subjects: Vec<SubjectSpec>,
    pub events: Vec<Event>,
    #[serde(default)]
    pub expect: BTreeMap<String, Value>,
}

/// The ledger's subject kinds (they do not change the scores).
pub use crate::record::SubjectKind;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SubjectSpec {
    pub id: String,
    pub district: String,
    pub kind: SubjectKind,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Event {
    /// RFC 3339; the ledger time of the block that commits the event.
    pub at: String,
    #[serde(flatten)]
    pub body: EventBody,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum EventBody {
    Code {
        by: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        batches: Option<Vec<String>>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        count: Option<u64>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        upstream: Option<UpstreamSpec>,
    },
    Ship {
        id: String,
        from: String,
        to: String,
        batches: Vec<String>,
    },
    Receive {
        shipment: String,
    },
    Reject {
        shipment: String,
        reason: String,
    },
    Finding {
        id: String,
        kind: FindingKindSpec,
        subject: String,
        batches: u64,
    },
    Rectify {
        finding: String,
    },
    Adjust {
        district: String,
        term: Term,
        points: serde_json::Number,
        reason: String,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FindingKindSpec {
    Uncoded,
    OffChain,
}

/// A registered upstream by subject id, or an unregistered one by district.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum UpstreamSpec {
    Registered(String),
    Unregistered { district: String },
}

/// Where an unregistered upstream is, for the region table of the scenario.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UpstreamPlace {
    InRegionTable,
    OutsideProvince,
}

impl Scenario {
    /// The `at` of event `index` in ms since the Unix epoch (checked by [`parse`]).
    pub fn at_ms(&self, index: usize) -> Result<i64, ScenarioError> {
        let e = self
            .events
            .get(index)
            .ok_or_else(|| ScenarioError::Invalid(format!("no event {index}")))?;
        parse_at(index, &e.at)
    }

    /// Batches of a `code` event: the listed ids, or `count` generated ones.
    pub fn code_batches(&self, index: usize) -> Result<Vec<String>, ScenarioError> {
        match self.events.get(index).map(|e| &e.body) {
            Some(EventBody::Code {
                batches: Some(b),
                count: None,
                ..
            }) => Ok(b.clone()),
            Some(EventBody::Code {
                batches: None,
                count: Some(n),
                ..
            }) => Ok((0..*n).map(|i| format!("e{index}-b{i}")).collect()),
            _ => Err(ScenarioError::Invalid(format!(
                "event {index} is not a well-formed code event"
            ))),
        }
    }

    /// Whether an unregistered upstream's district is in the region table; a code outside
    /// `33` is outside the province; any other code must be in the table.
    pub fn upstream_place(&self, district: &str) -> Option<UpstreamPlace> {
        if self.districts.iter().any(|d| d == district) {
            Some(UpstreamPlace::InRegionTable)
        } else if !district.starts_with("33") {
            Some(UpstreamPlace::OutsideProvince)
        } else {
            None
        }
    }
}

fn parse_at(index: usize, at: &str) -> Result<i64, ScenarioError> {
    let ts: jiff::Timestamp = at.parse().map_err(|e: jiff::Error| ScenarioError::Event {
        index,
        at: at.to_string(),
        reason: format!("`at` is not RFC 3339 with an offset: {e}"),
    })?;
    Ok(ts.as_millisecond())
}

/// Parses a scenario and checks that its story hangs together: known model fields,
/// events in time order, every id referring to something declared earlier, batches
/// shipped only by their holder (by the ledger's rules: a shipped batch is held again
/// once its receiver receives it, or by its shipper once rejected), each shipment
/// answered and each finding rectified at most once.
pub fn parse(text: &str) -> Result<Scenario, ScenarioError> {
    let s: Scenario = serde_json::from_str(text)?;
    validate(&s)?;
    Ok(s)
}

// Long because it is MODEL.md's list of scenario-file checks in order, one
// short block per rule; each refusal names its rule.
fn validate(s: &Scenario) -> Result<(), ScenarioError> {
    let invalid = |m: String| Err(ScenarioError::Invalid(m));
    if s.model.is_empty() {
        return invalid("model is empty".to_string());
    }
    let mut districts = BTreeSet::new();
    for d in &s.districts {
        if d.len() != 6 || !d.bytes().all(|b| b.is_ascii_digit()) {
            return invalid(format!("district {d:?} is not a 6-digit code"));
        }
        if !districts.insert(d.as_str()) {
            return invalid(format!("district {d} listed twice"));
        }
    }
    let mut subjects: BTreeMap<&str, &str> = BTreeMap::new();
    for sub in &s.subjects {
        if !districts.contains(sub.district.as_str()) {
            return invalid(format!(
                "subject {} is in district {}, not in `districts`",
                sub.id, sub.district
            ));
        }
        if subjects
            .insert(sub.id.as_str(), sub.district.as_str())
            .is_some()
        {
            return invalid(format!("subject {} listed twice", sub.id));
        }
    }
    for key in s.expect.keys() {
        if !districts.contains(key.as_str()) {
            return invalid(format!("expect names district {key}, not in `districts`"));
        }
    }
    // Story state, by the ledger's holding rules: a shipped batch is in
    // transit (held by nobody) until its receiver answers; a receipt moves it
    // to the receiver, a rejection returns it to the shipper.
    let mut holder: BTreeMap<String, Holder<'_>> = BTreeMap::new();
    let mut shipments: BTreeMap<&str, ShipmentState<'_>> = BTreeMap::new();
    let mut findings: BTreeMap<&str, (FindingKindSpec, bool)> = BTreeMap::new();
    let mut last_at = i64::MIN;
    for (index, e) in s.events.iter().enumerate() {
        let err = |reason: String| {
            Err(ScenarioError::Event {
                index,
                at: e.at.clone(),
                reason,
            })
        };
        let at = parse_at(index, &e.at)?;
        if at < last_at {
            return err("events are not in time order".to_string());
        }
        last_at = at;
        let known = |id: &str| subjects.contains_key(id);
        match &e.body {
            EventBody::Code {
                by,
                batches,
                count,
                upstream,
            } => {
                if !known(by) {
                    return err(format!("unknown subject {by}"));
                }
                match (batches, count) {
                    (Some(_), None) => {}
                    (None, Some(n)) if *n <= CODE_COUNT_MAX => {}
                    (None, Some(_)) => return err(format!("count above {CODE_COUNT_MAX}")),
                    _ => {
                        return err(
                            "a code event needs exactly one of `batches` and `count`".to_string()
                        )
                    }
                }
                match upstream {
                    Some(UpstreamSpec::Registered(u)) if !known(u) => return err(format!("unknown upstream subject {u}")),
                    Some(UpstreamSpec::Registered(u)) if u == by => return err("a subject cannot code in lieu of itself".to_string()),
                    Some(UpstreamSpec::Unregistered { district }) if s.upstream_place(district).is_none() => {
                        return err(format!("upstream district {district} is in the province but not in `districts`"))
                    }
                    _ => {}
                }
                for b in s.code_batches(index)? {
                    if holder.contains_key(&b) {
                        return err(format!("batch {b} coded twice"));
                    }
                    holder.insert(b, Holder::Subject(by));
                }
            }
            EventBody::Ship {
                id,
                from,
                to,
                batches,
            } => {
                if shipments.contains_key(id.as_str()) {
                    return err(format!("shipment {id} declared twice"));
                }
                if let Err(reason) = ship(&mut holder, id, from, to, batches, &known) {
                    return err(reason);
                }
                let state = ShipmentState {
                    from,
                    to,
                    batches,
                    answered: false,
                };
                shipments.insert(id.as_str(), state);
            }
            EventBody::Receive { shipment } | EventBody::Reject { shipment, .. } => {
                let Some(state) = shipments.get_mut(shipment.as_str()) else {
                    return err(format!("unknown shipment {shipment}"));
                };
                if state.answered {
                    return err(format!("shipment {shipment} answered twice"));
                }
                state.answered = true;
                let back_to = match e.body {
                    EventBody::Receive { .. } => state.to,
                    _ => state.from,
                };
                for b in state.batches {
                    holder.insert(b.clone(), Holder::Subject(back_to));
                }
            }
            EventBody::Finding {
                id, kind, subject, ..
            } => {
                if !known(subject) {
                    return err(format!("unknown subject {subject}"));
                }
                if findings.insert(id.as_str(), (*kind, false)).is_some() {
                    return err(format!("finding {id} declared twice"));
                }
            }
            EventBody::Rectify { finding } => match findings.get_mut(finding.as_str()) {
                None => return err(format!("unknown finding {finding}")),
                Some((FindingKindSpec::OffChain, _)) => {
                    return err(format!(
                        "finding {finding} is off_chain: it has no rectification"
                    ))
                }
                Some((_, true)) => return err(format!("finding {finding} rectified twice")),
                Some((_, done)) => *done = true,
            },
            EventBody::Adjust {
                district, points, ..
            } => {
                if !districts.contains(district.as_str()) {
                    return err(format!("district {district} is not in `districts`"));
                }
                if let Err(m) = parse_hundredths(&points.to_string()) {
                    return err(format!("points: {m}"));
                }
            }
        }
    }
    Ok(())
}

/// Who holds a batch in the story.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Holder<'a> {
    Subject(&'a str),
    /// Shipped and not yet answered.
    InTransit(&'a str),
}

struct ShipmentState<'a> {
    from: &'a str,
    to: &'a str,
    batches: &'a [String],
    answered: bool,
}

/// Checks a `ship` event against the holdings and puts its batches in transit.
fn ship<'a>(
    holder: &mut BTreeMap<String, Holder<'a>>,
    id: &'a str,
    from: &str,
    to: &str,
    batches: &[String],
    known: &dyn Fn(&str) -> bool,
) -> Result<(), String> {
    if !known(from) || !known(to) {
        return Err("unknown shipper or receiver".to_string());
    }
    if from == to {
        return Err(format!(
            "{from} ships to itself (the ledger refuses a self-shipment)"
        ));
    }
    if batches.is_empty() {
        return Err("a shipment names no batch".to_string());
    }
    let mut seen = BTreeSet::new();
    for b in batches {
        if !seen.insert(b.as_str()) {
            return Err(format!("batch {b} appears twice in the shipment"));
        }
        match holder.get(b) {
            Some(Holder::Subject(h)) if *h == from => {}
            Some(Holder::Subject(h)) => {
                return Err(format!("batch {b} is held by {h}, not by {from}"))
            }
            Some(Holder::InTransit(s)) => {
                return Err(format!(
                    "batch {b} is in shipment {s}, not yet received or rejected"
                ))
            }
            None => return Err(format!("unknown batch {b}")),
        }
    }
    for b in batches {
        holder.insert(b.clone(), Holder::InTransit(id));
    }
    Ok(())
}

/// The points of an `adjust` event, in hundredths.
pub fn points_hundredths(points: &serde_json::Number) -> Result<i64, ScenarioError> {
    parse_hundredths(&points.to_string()).map_err(ScenarioError::Invalid)
}

/// One field under `expect` that the report does not match.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Mismatch {
    /// JSON path, e.g. `330102.scanning.rate`.
    pub path: String,
    pub expected: Value,
    /// `None`: the report has no such field.
    pub actual: Option<Value>,
}

impl std::fmt::Display for Mismatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.actual {
            Some(a) => write!(f, "{}: expected {}, got {}", self.path, self.expected, a),
            None => write!(f, "{}: expected {}, missing", self.path, self.expected),
        }
    }
}

/// Compares a report (as serialized JSON) with a scenario's `expect`: every field under
/// `expect` must match; a field named `rate` (or ending in `_rate`) within
/// [`RATE_TOLERANCE`], other numbers numerically equal (`0` matches `0.0`).
pub fn compare(report: &Value, expect: &BTreeMap<String, Value>) -> Vec<Mismatch> {
    let mut out = Vec::new();
    let districts = report.get("districts");
    for (district, want) in expect {
        let got = districts.and_then(|d| d.get(district));
        compare_value(district, "", want, got, &mut out);
    }
    out
}

fn compare_value(
    path: &str,
    field: &str,
    want: &Value,
    got: Option<&Value>,
    out: &mut Vec<Mismatch>,
) {
    let miss = |out: &mut Vec<Mismatch>| {
        out.push(Mismatch {
            path: path.to_string(),
            expected: want.clone(),
            actual: got.cloned(),
        });
    };
    let Some(got) = got else {
        miss(out);
        return;
    };
    match (want, got) {
        (Value::Object(w), Value::Object(g)) => {
            for (k, wv) in w {
                compare_value(&format!("{path}.{k}"), k, wv, g.get(k), out);
            }
        }
        (Value::Array(w), Value::Array(g)) => {
            if w.len() != g.len() {
                miss(out);
                return;
            }
            for (i, (wv, gv)) in w.iter().zip(g).enumerate() {
                compare_value(&format!("{path}[{i}]"), field, wv, Some(gv), out);
            }
        }
        (Value::Number(w), Value::Number(g)) => {
            let equal = match (w.as_i64(), g.as_i64(), w.as_u64(), g.as_u64()) {
                (Some(a), Some(b), _, _) => a == b,
                (_, _, Some(a), Some(b)) => a == b,
                _ => {
                    let (a, b) = (
                        w.as_f64().unwrap_or(f64::NAN),
                        g.as_f64().unwrap_or(f64::NAN),
                    );
                    let tolerance = if field == "rate" || field.ends_with("_rate") {
                        RATE_TOLERANCE
                    } else {
                        1e-9
                    };
                    (a - b).abs() <= tolerance
                }
            };
            if !equal {
                miss(out);
            }
        }
        (w, g) if w == g => {}
        _ => miss(out),
    }
}
