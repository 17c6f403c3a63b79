//! The record types: what a transaction body says, parsed strictly.
//!
//! Every body carries the common fields `type`, `chain_id`, `account`,
//! `created_at` (RFC 3339) and `nonce`; the rest depends on `type`. Unknown
//! fields are refused, so a typo never silently drops data.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::refusal::{refuse, Refusal, RefusalCode};

/// The fields every body has.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Common {
    pub kind: String,
    pub chain_id: String,
    pub account: String,
    pub created_at_ms: i64,
    pub nonce: String,
}

pub const COMMON_FIELDS: [&str; 5] = ["type", "chain_id", "account", "created_at", "nonce"];

/// Roles an authority account can have (subjects are registered separately).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AuthorityRole {
    Regulator,
    Inspector,
    AgricultureAuthority,
    TestingLab,
}

/// The kinds of food business (GLOSSARY: subject).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SubjectKind {
    Producer,
    FirstImporter,
    Wholesaler,
    Distributor,
    FarmWholesaleMarket,
    FarmRetailMarket,
    MarketOperator,
    Supermarket,
    SchoolCanteen,
    Restaurant,
    Caterer,
}

impl SubjectKind {
    pub fn is_market(self) -> bool {
        matches!(
            self,
            SubjectKind::FarmWholesaleMarket | SubjectKind::FarmRetailMarket
        )
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AccountRegister {
    pub id: String,
    pub role: AuthorityRole,
    pub jurisdiction: String,
    pub name: String,
    pub public_key: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SubjectRegister {
    pub uscc: String,
    pub name: String,
    pub kind: SubjectKind,
    pub district: String,
    #[serde(default)]
    pub key_subject: bool,
    pub public_key: String,
    /// For a market operator (stall): the USCC of its market.
    #[serde(default)]
    pub market: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SubjectUpdate {
    pub uscc: String,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub kind: Option<SubjectKind>,
    #[serde(default)]
    pub district: Option<String>,
    #[serde(default)]
    pub key_subject: Option<bool>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeyChange {
    /// The account whose keys change (the signer's own, or one a regulator oversees).
    pub target: String,
    pub public_key: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProductRegister {
    pub product_id: String,
    pub name: String,
    #[serde(default)]
    pub gtin: Option<String>,
    pub variety: String,
    pub shelf_life_days: u32,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Upstream {
    /// A registered subject, by USCC.
    Registered { subject: String },
    /// A supplier not on the chain.
    Unregistered {
        name: String,
        #[serde(default)]
        uscc: Option<String>,
        region: String,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BatchCode {
    pub batch_id: String,
    pub product_id: String,
    pub quantity: u64,
    pub unit: String,
    /// `YYYY-MM-DD`
    pub production_date: String,
    /// `YYYY-MM-DD`, the last day the batch may be sold.
    pub expiry_date: String,
    pub origin_region: String,
    #[serde(default)]
    pub upstream: Option<Upstream>,
    #[serde(default)]
    pub certificates: Vec<String>,
    #[serde(default)]
    pub rapid_tests: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ShipmentLine {
    pub trace_code: String,
    pub quantity: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ShipmentCreate {
    pub shipment_id: String,
    /// The addressee's USCC.
    pub to: String,
    pub lines: Vec<ShipmentLine>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ShipmentReceive {
    pub shipper: String,
    pub shipment_id: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RejectionReason {
    Quality,
    NoCertificate,
    Mismatch,
    Expired,
    Damaged,
    NotOrdered,
    Other,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ShipmentReject {
    pub shipper: String,
    pub shipment_id: String,
    pub reason: RejectionReason,
    #[serde(default)]
    pub note: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CertificateIssue {
    pub certificate_id: String,
    /// The producer the certificate is issued to (USCC).
    pub subject: String,
    pub product_name: String,
    #[serde(default)]
    pub trace_code: Option<String>,
    #[serde(default)]
    pub quantity: Option<u64>,
    #[serde(default)]
    pub unit: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TestResult {
    Pass,
    Fail,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RapidTestRecord {
    pub test_id: String,
    pub trace_code: String,
    /// What was tested for, e.g. `organophosphate_pesticides`.
    pub item: String,
    pub result: TestResult,
    #[serde(default)]
    pub note: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FindingKind {
    Uncoded,
    OffChain,
    Other,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FindingRecord {
    pub finding_id: String,
    pub subject: String,
    pub kind: FindingKind,
    /// Number of batches the finding concerns.
    pub batches: u64,
    #[serde(default)]
    pub note: Option<String>,
    #[serde(default)]
    pub document_hash: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FindingRectify {
    pub finding_id: String,
    #[serde(default)]
    pub note: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RecallIssue {
    pub trace_code: String,
    pub reason: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AdjustmentTerm {
    G,
    H,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AdjustmentRecord {
    pub district: String,
    pub term: AdjustmentTerm,
    /// Points with at most two decimals, e.g. `0.5`.
    pub points: serde_json::Number,
    pub reason: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DocumentNotarize {
    /// SHA-256 of the document, lowercase hex.
    pub document_hash: String,
    pub title: String,
    #[serde(default)]
    pub media_type: Option<String>,
    #[serde(default)]
    pub note: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeySubjectsUpdate {
    #[serde(default)]
    pub add: Vec<String>,
    #[serde(default)]
    pub remove: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Variety {
    pub code: String,
    pub name: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeyVarietiesUpdate {
    pub version: u32,
    pub varieties: Vec<Variety>,
}

/// Adds a validator (provincial regulator only). It takes part in
/// consensus and checkpoint signing from the next block on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ValidatorAdd {
    pub node_id: u64,
    /// Its note key name: no spaces, no `+`.
    pub name: String,
    /// Ed25519 public key, lowercase hex; also its libp2p identity.
    pub public_key: String,
    /// Where peers reach it: `{"p2p": multiaddr, "api": "host:port"}` JSON or a multiaddr.
    pub address: String,
}

/// Removes a validator (provincial regulator only), from the next block on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ValidatorRemove {
    pub node_id: u64,
}

/// A parsed record.
#[derive(Debug, Clone, PartialEq)]
pub enum Record {
    AccountRegister(AccountRegister),
    SubjectRegister(SubjectRegister),
    SubjectUpdate(SubjectUpdate),
    KeyBind(KeyChange),
    KeyRevoke(KeyChange),
    ProductRegister(ProductRegister),
    BatchCode(BatchCode),
    ShipmentCreate(ShipmentCreate),
    ShipmentReceive(ShipmentReceive),
    ShipmentReject(ShipmentReject),
    CertificateIssue(CertificateIssue),
    RapidTestRecord(RapidTestRecord),
    FindingRecord(FindingRecord),
    FindingRectify(FindingRectify),
    RecallIssue(RecallIssue),
    AdjustmentRecord(AdjustmentRecord),
    DocumentNotarize(DocumentNotarize),
    KeySubjectsUpdate(KeySubjectsUpdate),
    KeyVarietiesUpdate(KeyVarietiesUpdate),
    ValidatorAdd(ValidatorAdd),
    ValidatorRemove(ValidatorRemove),
}

/// Every record type, as it appears in `body.type`.
pub const RECORD_TYPES: [&str; 21] = [
    "account.register",
    "subject.register",
    "subject.update",
    "key.bind",
    "key.revoke",
    "product.register",
    "batch.code",
    "shipment.create",
    "shipment.receive",
    "shipment.reject",
    "certificate.issue",
    "rapid_test.record",
    "finding.record",
    "finding.rectify",
    "recall.issue",
    "adjustment.record",
    "document.notarize",
    "catalogue.key_subjects",
    "catalogue.key_varieties",
    "validator.add",
    "validator.remove",
];

impl Record {
    pub fn type_name(&self) -> &'static str {
        match self {
            Record::AccountRegister(_) => "account.register",
            Record::SubjectRegister(_) => "subject.register",
            Record::SubjectUpdate(_) => "subject.update",
            Record::KeyBind(_) => "key.bind",
            Record::KeyRevoke(_) => "key.revoke",
            Record::ProductRegister(_) => "product.register",
            Record::BatchCode(_) => "batch.code",
            Record::ShipmentCreate(_) => "shipment.create",
            Record::ShipmentReceive(_) => "shipment.receive",
            Record::ShipmentReject(_) => "shipment.reject",
            Record::CertificateIssue(_) => "certificate.issue",
            Record::RapidTestRecord(_) => "rapid_test.record",
            Record::FindingRecord(_) => "finding.record",
            Record::FindingRectify(_) => "finding.rectify",
            Record::RecallIssue(_) => "recall.issue",
            Record::AdjustmentRecord(_) => "adjustment.record",
            Record::DocumentNotarize(_) => "document.notarize",
            Record::KeySubjectsUpdate(_) => "catalogue.key_subjects",
            Record::KeyVarietiesUpdate(_) => "catalogue.key_varieties",
            Record::ValidatorAdd(_) => "validator.add",
            Record::ValidatorRemove(_) => "validator.remove",
        }
    }

    /// Whether the record is a subject's business activity (for coverage and daily activity).
    pub fn is_business(&self) -> bool {
        matches!(
            self,
            Record::BatchCode(_)
                | Record::ShipmentCreate(_)
                | Record::ShipmentReceive(_)
                | Record::ShipmentReject(_)
        )
    }
}

/// A serde_json message without its " at line L column C" suffix (positions
/// differ between a parsed tree and raw bytes, and say nothing to a client).
fn without_position(e: &serde_json::Error) -> String {
    let msg = e.to_string();
    match msg.rfind(" at line ") {
        Some(i) if e.line() > 0 => msg[..i].to_string(),
        _ => msg,
    }
}

fn field_error(e: serde_json::Error) -> Refusal {
    let msg = without_position(&e);
    let code = if msg.starts_with("unknown field") {
        RefusalCode::UnknownField
    } else if msg.starts_with("missing field") {
        RefusalCode::MissingField
    } else {
        RefusalCode::InvalidField
    };
    refuse(code, msg)
}

/// Where a body's fields come from: a parsed JSON object, or the raw
/// values of canonical bytes (the state machine's path, no JSON tree built).
trait BodyFields: Sized {
    /// Removes and returns a common field, which must be a string.
    fn take_str(&mut self, key: &str) -> Result<String, Refusal>;
    /// The remaining fields as a typed record.
    fn into_record<T: serde::de::DeserializeOwned>(self) -> Result<T, Refusal>;
}

fn missing(key: &str) -> Refusal {
    refuse(RefusalCode::MissingField, format!("missing field `{key}`"))
}

fn not_a_string(key: &str) -> Refusal {
    refuse(
        RefusalCode::InvalidField,
        format!("`{key}` must be a string"),
    )
}

impl BodyFields for Map<String, Value> {
    fn take_str(&mut self, key: &str) -> Result<String, Refusal> {
        match self.get(key) {
            Some(Value::String(s)) => {
                let s = s.clone();
                self.remove(key);
                Ok(s)
            }
            Some(_) => Err(not_a_string(key)),
            None => Err(missing(key)),
        }
    }

    fn into_record<T: serde::de::DeserializeOwned>(self) -> Result<T, Refusal> {
        serde_json::from_value(Value::Object(self)).map_err(field_error)
    }
}

/// A field name, borrowed from the body when it has no escapes.
#[derive(PartialEq, Eq, PartialOrd, Ord)]
struct Name<'a>(std::borrow::Cow<'a, str>);

impl<'de> Deserialize<'de> for Name<'de> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = Name<'de>;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a field name")
            }
            fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Name<'de>, E> {
                Ok(Name(std::borrow::Cow::Borrowed(v)))
            }
            fn visit_str<E>(self, v: &str) -> Result<Name<'de>, E> {
                Ok(Name(std::borrow::Cow::Owned(v.to_owned())))
            }
        }
        d.deserialize_str(V)
    }
}

impl std::borrow::Borrow<str> for Name<'_> {
    fn borrow(&self) -> &str {
        &self.0
    }
}

struct RawFields<'a>(std::collections::BTreeMap<Name<'a>, &'a serde_json::value::RawValue>);

impl BodyFields for RawFields<'_> {
    fn take_str(&mut self, key: &str) -> Result<String, Refusal> {
        let raw = self.0.get(key).ok_or_else(|| missing(key))?;
        let s: String = serde_json::from_str(raw.get()).map_err(|_| not_a_string(key))?;
        self.0.remove(key);
        Ok(s)
    }

    fn into_record<T: serde::de::DeserializeOwned>(self) -> Result<T, Refusal> {
        let fields = self.0.into_iter().map(|(k, v)| (k.0, v));
        T::deserialize(serde::de::value::MapDeserializer::<_, serde_json::Error>::new(fields))
            .map_err(field_error)
    }
}

/// Parses an RFC 3339 timestamp (with offset) to ms since the Unix epoch.
pub fn parse_timestamp_ms(text: &str) -> Option<i64> {
    let ts: jiff::Timestamp = text.parse().ok()?;
    Some(ts.as_millisecond())
}

/// Splits a body into its common fields and its typed record.
pub fn parse_body(body: &Map<String, Value>) -> Result<(Common, Record), Refusal> {
    parse_fields(body.clone())
}

/// [`parse_body`] straight from a body's canonical JSON bytes (the signed
/// bytes after the domain prefix): the same checks and refusals, without
/// building a JSON tree.
pub fn parse_canonical(body: &[u8]) -> Result<(Common, Record), Refusal> {
    let fields: std::collections::BTreeMap<Name<'_>, &serde_json::value::RawValue> =
        serde_json::from_slice(body).map_err(|e| {
            refuse(
                RefusalCode::MalformedBody,
                format!("body is not a JSON object: {}", without_position(&e)),
            )
        })?;
    parse_fields(RawFields(fields))
}

fn parse_fields(mut body: impl BodyFields) -> Result<(Common, Record), Refusal> {
    let kind = body.take_str("type")?;
    let chain_id = body.take_str("chain_id")?;
    let account = body.take_str("account")?;
    let created_at = body.take_str("created_at")?;
    let nonce = body.take_str("nonce")?;
    let created_at_ms = parse_timestamp_ms(&created_at).ok_or_else(|| {
        refuse(
            RefusalCode::InvalidField,
            "`created_at` must be an RFC 3339 time with offset, e.g. 2024-03-01T09:00:00+08:00",
        )
    })?;
    if nonce.is_empty() || nonce.len() > 64 {
        return Err(refuse(
            RefusalCode::InvalidField,
            "`nonce` must be 1-64 characters",
        ));
    }
    if account.is_empty() || account.len() > 64 {
        return Err(refuse(
            RefusalCode::InvalidField,
            "`account` must be 1-64 characters",
        ));
    }
    let rest = body;
    let record = match kind.as_str() {
        "account.register" => Record::AccountRegister(rest.into_record()?),
        "subject.register" => Record::SubjectRegister(rest.into_record()?),
        "subject.update" => Record::SubjectUpdate(rest.into_record()?),
        "key.bind" => Record::KeyBind(rest.into_record()?),
        "key.revoke" => Record::KeyRevoke(rest.into_record()?),
        "product.register" => Record::ProductRegister(rest.into_record()?),
        "batch.code" => Record::BatchCode(rest.into_record()?),
        "shipment.create" => Record::ShipmentCreate(rest.into_record()?),
        "shipment.receive" => Record::ShipmentReceive(rest.into_record()?),
        "shipment.reject" => Record::ShipmentReject(rest.into_record()?),
        "certificate.issue" => Record::CertificateIssue(rest.into_record()?),
        "rapid_test.record" => Record::RapidTestRecord(rest.into_record()?),
        "finding.record" => Record::FindingRecord(rest.into_record()?),
        "finding.rectify" => Record::FindingRectify(rest.into_record()?),
        "recall.issue" => Record::RecallIssue(rest.into_record()?),
        "adjustment.record" => Record::AdjustmentRecord(rest.into_record()?),
        "document.notarize" => Record::DocumentNotarize(rest.into_record()?),
        "catalogue.key_subjects" => Record::KeySubjectsUpdate(rest.into_record()?),
        "catalogue.key_varieties" => Record::KeyVarietiesUpdate(rest.into_record()?),
        "validator.add" => Record::ValidatorAdd(rest.into_record()?),
        "validator.remove" => Record::ValidatorRemove(rest.into_record()?),
        other => {
            return Err(refuse(
                RefusalCode::UnknownType,
                format!(
                    "unknown record type `{}`; known: {}",
                    other.chars().take(40).collect::<String>(),
                    RECORD_TYPES.join(", ")
                ),
            ))
        }
    };
    Ok((
        Common {
            kind,
            chain_id,
            account,
            created_at_ms,
            nonce,
        },
        record,
    ))
}

/// Builds a body from common fields and a typed record (clients, replay, demo data).
pub fn build_body<T: Serialize>(
    kind: &str,
    chain_id: &str,
    account: &str,
    created_at: &str,
    nonce: &str,
    record: &T,
) -> Map<String, Value> {
    let mut m = match serde_json::to_value(record) {
        Ok(Value::Object(m)) => m,
        _ => Map::new(),
    };
    // Optional fields left at None would be sent as null; drop them so bodies stay minimal.
    m.retain(|_, v| !v.is_null());
    m.insert("type".into(), Value::String(kind.into()));
    m.insert("chain_id".into(), Value::String(chain_id.into()));
    m.insert("account".into(), Value::String(account.into()));
    m.insert("created_at".into(), Value::String(created_at.into()));
    m.insert("nonce".into(), Value::String(nonce.into()));
    m
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn obj(v: Value) -> Map<String, Value> {
        match v {
            Value::Object(m) => m,
            _ => Map::new(),
        }
    }

    fn common() -> Value {
        json!({"chain_id": "c", "account": "a", "created_at": "2024-03-01T09:00:00+08:00", "nonce": "n"})
    }

    #[test]
    fn parses_a_shipment() {
        let mut b = obj(common());
        b.extend(obj(
            json!({"type": "shipment.create", "shipment_id": "SH1", "to": "X",
            "lines": [{"trace_code": "ZS1", "quantity": 5}]}),
        ));
        let (c, r) = both(&b).unwrap();
        assert_eq!(c.created_at_ms, 1709254800000);
        assert_eq!(r.type_name(), "shipment.create");
    }

    /// Parses from the tree and from canonical bytes; both must agree.
    fn both(b: &Map<String, Value>) -> Result<(Common, Record), Refusal> {
        let tree = parse_body(b);
        let bytes = crate::signing::canonical_json(&Value::Object(b.clone())).unwrap();
        let raw = parse_canonical(&bytes);
        match (&tree, &raw) {
            (Ok(a), Ok(b)) => assert_eq!(a, b),
            (Err(a), Err(b)) => assert_eq!((a.code, &a.message), (b.code, &b.message)),
            _ => panic!("the two parses disagree: {tree:?} vs {raw:?}"),
        }
        tree
    }

    #[test]
    fn refusals_are_typed() {
        let mut b = obj(common());
        b.insert("type".into(), json!("shipment.teleport"));
        assert_eq!(both(&b).unwrap_err().code, RefusalCode::UnknownType);
        b.insert("type".into(), json!("shipment.receive"));
        b.insert("shipper".into(), json!("X"));
        assert_eq!(both(&b).unwrap_err().code, RefusalCode::MissingField);
        b.insert("shipment_id".into(), json!("S"));
        b.insert("colour".into(), json!("red"));
        assert_eq!(both(&b).unwrap_err().code, RefusalCode::UnknownField);
        b.remove("colour");
        b.insert("shipment_id".into(), json!(5));
        assert_eq!(both(&b).unwrap_err().code, RefusalCode::InvalidField);
        b.insert("shipment_id".into(), json!("S"));
        assert!(both(&b).is_ok());
        b.insert("created_at".into(), json!("yesterday"));
        assert_eq!(both(&b).unwrap_err().code, RefusalCode::InvalidField);
        b.remove("created_at");
        assert_eq!(both(&b).unwrap_err().code, RefusalCode::MissingField);
    }

    #[test]
    fn upstream_forms() {
        let r: Upstream = serde_json::from_value(json!({"subject": "U"})).unwrap();
        assert_eq!(
            r,
            Upstream::Registered {
                subject: "U".into()
            }
        );
        let r: Upstream =
            serde_json::from_value(json!({"name": "Farm", "region": "340100"})).unwrap();
        assert!(matches!(r, Upstream::Unregistered { .. }));
    }

    #[test]
    fn build_body_roundtrips() {
        let rec = ShipmentReceive {
            shipper: "X".into(),
            shipment_id: "S".into(),
        };
        let b = build_body(
            "shipment.receive",
            "c",
            "a",
            "2024-03-01T09:00:00+08:00",
            "1",
            &rec,
        );
        let (_, r) = parse_body(&b).unwrap();
        assert_eq!(r, Record::ShipmentReceive(rec));
    }
}
