//! The record types: what a transaction body says, parsed strictly.
//!
//! Every body carries the common fields `type`, `chain_id`, `account`,
//! `created_at` (RFC 3339) and `nonce`; the rest depends on `type`. Unknown
//! fields are refused, so a typo never silently drops data.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::refusal::{refuse, Refusal, RefusalCode};

#[cfg(test)]
mod reference;
pub mod schema;

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
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, schemars::JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum AuthorityRole {
    Regulator,
    Inspector,
    AgricultureAuthority,
    TestingLab,
}

/// The kinds of food business (GLOSSARY: subject).
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, schemars::JsonSchema,
)]
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

/// Registers an authority account (regulator, inspector, agriculture authority, testing lab) with its first key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AccountRegister {
    /// The new account's id (an authority, not a subject): 1-64 ASCII letters and
    /// digits joined by single `-` `_` `.` `:` `/`.
    pub id: String,
    pub role: AuthorityRole,
    /// The province, a city or a district code of the region table, within the
    /// signing regulator's own jurisdiction.
    pub jurisdiction: String,
    /// 1-200 characters, no control or invisible characters.
    pub name: String,
    /// The account's first public key, lowercase hex: Ed25519 (64 characters)
    /// or, where the chain has `sm2_accounts`, SM2 (130 characters, `04` ‖ x ‖ y);
    /// a key bound to another account is refused (`key_in_use`).
    pub public_key: String,
}

/// Registers a subject (市场主体), a food business, with its first key; its USCC is its account.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SubjectRegister {
    /// The subject's unified social credit code (GB 32100: 18 characters of
    /// 0-9 and A-Y without I, O, S, V, Z, the last a check character); it is
    /// also the subject's account id.
    pub uscc: String,
    /// 1-200 characters.
    pub name: String,
    pub kind: SubjectKind,
    /// A 6-digit district code of the region table the signer regulates.
    pub district: String,
    /// On the key-subject list (重点主体) from the start.
    #[serde(default)]
    pub key_subject: bool,
    /// The subject's first public key, lowercase hex: Ed25519 (64 characters)
    /// or, where the chain has `sm2_accounts`, SM2 (130 characters, `04` ‖ x ‖ y).
    pub public_key: String,
    /// For a market operator (stall): the USCC of its market.
    #[serde(default)]
    pub market: Option<String>,
}

/// Changes a registered subject's name, kind, district or key-subject flag.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SubjectUpdate {
    /// The subject to update; the fields given replace the registered ones.
    pub uscc: String,
    /// 1-200 characters.
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub kind: Option<SubjectKind>,
    /// A 6-digit district code of the region table the signer regulates.
    #[serde(default)]
    pub district: Option<String>,
    /// Whether the subject is on the key-subject list (重点主体).
    #[serde(default)]
    pub key_subject: Option<bool>,
}

/// `key.bind` adds a key to an account; `key.revoke` revokes one (an account keeps at least one active key, and at most 16).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct KeyChange {
    /// The account whose keys change (the signer's own, or one a regulator oversees).
    pub target: String,
    /// The public key bound or revoked, lowercase hex: Ed25519 (64 characters)
    /// or, where the chain has `sm2_accounts`, SM2 (130 characters, `04` ‖ x ‖ y).
    pub public_key: String,
}

/// Registers one of the signer's products, which its batches then name.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ProductRegister {
    /// The signer's own product id: 1-64 ASCII letters and digits joined by
    /// single `-` `_` `.` `:` `/`.
    pub product_id: String,
    /// 1-200 characters.
    pub name: String,
    /// GTIN-8, -12, -13 or -14 with a correct check digit (GS1).
    #[serde(default)]
    pub gtin: Option<String>,
    /// A variety code of the key-variety catalogue (`GET /v1/catalogue/varieties`),
    /// or `other`.
    pub variety: String,
    /// 1-3650 days.
    pub shelf_life_days: u32,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(untagged)]
pub enum Upstream {
    /// A registered subject, by USCC.
    Registered {
        /// The upstream subject's USCC; the coder codes in lieu of it (代赋码).
        subject: String,
    },
    /// A supplier not on the chain.
    Unregistered {
        /// 1-200 characters.
        name: String,
        /// Its USCC, when known.
        #[serde(default)]
        uscc: Option<String>,
        /// Where it is: a district, city or province code of the region table,
        /// or a GB/T 2260 code of another province.
        region: String,
    },
}

/// First-station coding (首站赋码): a new batch of one of the signer's products; its trace code is derived from the coder's USCC and `batch_id`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct BatchCode {
    /// The coder's own batch id: 1-64 ASCII letters and digits joined by single
    /// `-` `_` `.` `:` `/`. With the coder's USCC it gives the trace code.
    pub batch_id: String,
    /// A product the signer registered.
    pub product_id: String,
    /// 1-10^12, in `unit`.
    pub quantity: u64,
    /// 1-16 characters, e.g. `kg`.
    pub unit: String,
    /// `YYYY-MM-DD`, not after today (Asia/Shanghai).
    #[schemars(extend("format" = "date"))]
    pub production_date: String,
    /// `YYYY-MM-DD`, the last day the batch may be sold; not before `production_date`.
    #[schemars(extend("format" = "date"))]
    pub expiry_date: String,
    /// Where the food comes from: a district, city or province code of the
    /// region table, or a GB/T 2260 code of another province.
    pub origin_region: String,
    /// Who supplied the batch, when the coder is not its first station.
    #[serde(default)]
    pub upstream: Option<Upstream>,
    /// Ids of certificates (合格证) on the ledger; at most 16.
    #[serde(default)]
    pub certificates: Vec<String>,
    /// Ids of rapid tests (快检) on the ledger; at most 16. A failed one blocks the batch.
    #[serde(default)]
    pub rapid_tests: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ShipmentLine {
    /// The batch's trace code (`ZS` + 20 upper-case hex digits).
    pub trace_code: String,
    /// 1-10^12, at most what the shipper holds of the batch.
    pub quantity: u64,
}

/// A shipment (出库) of batches the signer holds to another subject; the quantities leave the shipper at once and reach the receiver on receipt.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ShipmentCreate {
    /// The shipper's own shipment id: 1-64 ASCII letters and digits joined by
    /// single `-` `_` `.` `:` `/`.
    pub shipment_id: String,
    /// The addressee's USCC (not the shipper's own).
    pub to: String,
    /// 1-100 lines, each batch at most once.
    pub lines: Vec<ShipmentLine>,
}

/// Receipt confirmation (入库确认) of a shipment addressed to the signer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ShipmentReceive {
    /// The shipper's USCC.
    pub shipper: String,
    /// The shipment, addressed to the signer and not yet answered.
    pub shipment_id: String,
}

#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, schemars::JsonSchema,
)]
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

/// Rejection (拒收) of a shipment addressed to the signer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ShipmentReject {
    /// The shipper's USCC.
    pub shipper: String,
    /// The shipment, addressed to the signer and not yet answered; its
    /// quantities return to the shipper.
    pub shipment_id: String,
    pub reason: RejectionReason,
    /// 1-1000 characters.
    #[serde(default)]
    pub note: Option<String>,
}

/// A certificate (合格证) issued to a producer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CertificateIssue {
    /// 1-64 ASCII letters and digits joined by single `-` `_` `.` `:` `/`.
    pub certificate_id: String,
    /// The producer the certificate is issued to (USCC).
    pub subject: String,
    /// 1-200 characters.
    pub product_name: String,
    /// The batch it certifies, when one is named.
    #[serde(default)]
    pub trace_code: Option<String>,
    /// 1-10^12, in `unit`.
    #[serde(default)]
    pub quantity: Option<u64>,
    /// 1-16 characters.
    #[serde(default)]
    pub unit: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum TestResult {
    Pass,
    Fail,
}

/// A rapid test (快检) of a batch.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RapidTestRecord {
    /// 1-64 ASCII letters and digits joined by single `-` `_` `.` `:` `/`.
    pub test_id: String,
    /// The batch tested; a `fail` blocks it (no further shipment).
    pub trace_code: String,
    /// What was tested for, e.g. `organophosphate_pesticides`.
    pub item: String,
    pub result: TestResult,
    /// 1-1000 characters.
    #[serde(default)]
    pub note: Option<String>,
}

#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, schemars::JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum FindingKind {
    Uncoded,
    OffChain,
    Other,
}

/// An inspection finding against a subject.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct FindingRecord {
    /// 1-64 ASCII letters and digits joined by single `-` `_` `.` `:` `/`.
    pub finding_id: String,
    /// The inspected subject's USCC, in the inspector's jurisdiction.
    pub subject: String,
    pub kind: FindingKind,
    /// Number of batches the finding concerns, 1-1000000.
    pub batches: u64,
    /// 1-1000 characters.
    #[serde(default)]
    pub note: Option<String>,
    /// SHA-256 of the inspection record, 64 lowercase hex characters.
    #[serde(default)]
    pub document_hash: Option<String>,
}

/// Records a finding's rectification (整改).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct FindingRectify {
    /// An `uncoded` or `other` finding not yet rectified.
    pub finding_id: String,
    /// 1-1000 characters.
    #[serde(default)]
    pub note: Option<String>,
}

/// Recalls (召回) a batch.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RecallIssue {
    /// The recalled batch; no one ships it afterwards.
    pub trace_code: String,
    /// 1-1000 characters.
    pub reason: String,
}

#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, schemars::JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum AdjustmentTerm {
    G,
    H,
}

/// A regulator's discretionary points for a district's coding rate: `g` deducts (酌情扣分), `h` adds (酌情加分).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AdjustmentRecord {
    /// The district the points are for, one the signer regulates.
    pub district: String,
    pub term: AdjustmentTerm,
    /// Points with at most two decimals, 0.01-100, e.g. `0.5`.
    pub points: serde_json::Number,
    /// 1-1000 characters.
    pub reason: String,
}

/// Notarizes a document's SHA-256 (区块链固证); the document itself stays off the chain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DocumentNotarize {
    /// SHA-256 of the document, lowercase hex.
    pub document_hash: String,
    /// 1-200 characters.
    pub title: String,
    /// The document's media type, 1-100 characters, e.g. `application/pdf`.
    #[serde(default)]
    pub media_type: Option<String>,
    /// 1-1000 characters.
    #[serde(default)]
    pub note: Option<String>,
}

/// Changes the key-subject list (重点主体).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct KeySubjectsUpdate {
    /// USCCs to put on the key-subject list.
    #[serde(default)]
    pub add: Vec<String>,
    /// USCCs to take off it.
    #[serde(default)]
    pub remove: Vec<String>,
}

#[derive(
    Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, schemars::JsonSchema,
)]
#[serde(deny_unknown_fields)]
pub struct Variety {
    /// 1-64 ASCII letters and digits joined by single `-` `_` `.` `:` `/`.
    pub code: String,
    /// 1-200 characters.
    pub name: String,
}

/// Replaces the key-variety catalogue (重点品种).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct KeyVarietiesUpdate {
    /// The catalogue's new version, above the current one.
    pub version: u32,
    /// The whole new catalogue, at most 500 varieties.
    pub varieties: Vec<Variety>,
}

/// Adds a validator (provincial regulator only). It takes part in
/// consensus and checkpoint signing from the next block on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
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
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
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
