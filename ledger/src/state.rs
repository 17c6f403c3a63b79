//! Domain state as stored: the entities, their keys, and typed access over [`KvRead`].
//!
//! Values are bincode (serde mode, fixed config); keys are ASCII paths so that
//! range scans follow the domain (`hold/{trace}/`, `ship/{shipper}/`).
//! Hashes and keys are lowercase hex strings so that the same structs serve
//! the JSON API unchanged.

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::kv::{KvError, KvRead, KvResult, KvWrite, Space};
use crate::record::{
    AdjustmentTerm, AuthorityRole, FindingKind, RejectionReason, ShipmentLine, SubjectKind,
    TestResult,
};

/// A stored value's bytes. A failure is an error, never empty bytes: those
/// would enter the state hash on every node.
pub fn encode<T: Serialize>(value: &T) -> KvResult<Vec<u8>> {
    bincode::serde::encode_to_vec(value, bincode::config::standard())
        .map_err(|e| KvError::Encode(e.to_string()))
}

pub fn decode<T: DeserializeOwned>(key: &[u8], bytes: &[u8]) -> KvResult<T> {
    bincode::serde::decode_from_slice(bytes, bincode::config::standard())
        .map(|(v, _)| v)
        .map_err(|e| KvError::Corrupt {
            key: String::from_utf8_lossy(key).into_owned(),
            reason: e.to_string(),
        })
}

pub fn get<T: DeserializeOwned>(
    kv: &(impl KvRead + ?Sized),
    space: Space,
    key: &str,
) -> KvResult<Option<T>> {
    match kv.get(space, key.as_bytes())? {
        Some(bytes) => decode(key.as_bytes(), &bytes).map(Some),
        None => Ok(None),
    }
}

pub fn put<T: Serialize>(
    kv: &mut impl KvWrite,
    space: Space,
    key: &str,
    value: &T,
) -> KvResult<()> {
    kv.put(space, key.as_bytes().to_vec(), encode(value)?);
    Ok(())
}

/// All values under a key prefix, decoded, in key order.
pub fn scan<T: DeserializeOwned>(
    kv: &(impl KvRead + ?Sized),
    space: Space,
    prefix: &str,
    limit: usize,
) -> KvResult<Vec<(String, T)>> {
    kv.scan_prefix(space, prefix.as_bytes(), limit)?
        .into_iter()
        .map(|(k, v)| Ok((String::from_utf8_lossy(&k).into_owned(), decode(&k, &v)?)))
        .collect()
}

// ---- keys -------------------------------------------------------------------

pub fn account_key(id: &str) -> String {
    format!("acct/{id}")
}
pub fn key_owner_key(public_key_hex: &str) -> String {
    format!("key/{public_key_hex}")
}
pub fn subject_key(uscc: &str) -> String {
    format!("subj/{uscc}")
}
pub fn product_key(owner: &str, product_id: &str) -> String {
    format!("prod/{owner}/{product_id}")
}
/// Where every batch record lives (`batch/{trace_code}`).
pub const BATCH_PREFIX: &str = "batch/";

pub fn batch_key(trace_code: &str) -> String {
    format!("{BATCH_PREFIX}{trace_code}")
}
pub fn batch_id_key(coder: &str, batch_id: &str) -> String {
    format!("batchid/{coder}/{batch_id}")
}
pub fn holding_key(trace_code: &str, holder: &str) -> String {
    format!("hold/{trace_code}/{holder}")
}
/// Where every shipment record lives (`ship/{shipper}/{shipment_id}`).
pub const SHIPMENT_PREFIX: &str = "ship/";

pub fn shipment_key(shipper: &str, shipment_id: &str) -> String {
    format!("{SHIPMENT_PREFIX}{shipper}/{shipment_id}")
}
pub fn finding_key(finding_id: &str) -> String {
    format!("find/{finding_id}")
}
pub fn certificate_key(id: &str) -> String {
    format!("cert/{id}")
}
pub fn test_key(id: &str) -> String {
    format!("test/{id}")
}
pub const VARIETIES_KEY: &str = "catalogue/varieties";

// Index space: lookups that queries need and the state machine maintains.
pub fn holdings_by_subject_key(holder: &str, trace_code: &str) -> String {
    format!("hb/{holder}/{trace_code}")
}
/// Index rows `bs/{trace}/{height}/{index}` → `shipper/shipment_id`: the
/// shipments naming a batch, in commit order.
pub fn batch_shipments_prefix(trace_code: &str) -> String {
    format!("bs/{trace_code}/")
}
pub fn batch_shipment_key(trace_code: &str, height: u64, index: u32) -> String {
    format!("bs/{trace_code}/{height:020}/{index:010}")
}

/// Up to `limit` shipments naming a batch, as `shipper/shipment_id`, in commit order.
pub fn batch_shipments(
    kv: &(impl KvRead + ?Sized),
    trace_code: &str,
    limit: usize,
) -> KvResult<Vec<String>> {
    Ok(kv
        .scan_prefix(
            Space::Index,
            batch_shipments_prefix(trace_code).as_bytes(),
            limit,
        )?
        .into_iter()
        .map(|(_, v)| String::from_utf8_lossy(&v).into_owned())
        .collect())
}

pub fn shipments_out_key(shipper: &str, shipment_id: &str) -> String {
    format!("so/{shipper}/{shipment_id}")
}
pub fn shipments_in_key(receiver: &str, shipper: &str, shipment_id: &str) -> String {
    format!("si/{receiver}/{shipper}/{shipment_id}")
}
pub fn findings_by_subject_key(subject: &str, finding_id: &str) -> String {
    format!("fs/{subject}/{finding_id}")
}
pub fn batches_by_coder_key(coder: &str, trace_code: &str) -> String {
    format!("bc/{coder}/{trace_code}")
}
pub fn documents_key(document_hash: &str, tx_id: &str) -> String {
    format!("doc/{document_hash}/{tx_id}")
}
/// An account's records in commit order: `ar/{account}/{height:016x}/{index:08x}`.
pub fn account_records_key(account: &str, height: u64, index: u32) -> String {
    format!("ar/{account}/{height:016x}/{index:08x}")
}

// ---- entities ---------------------------------------------------------------

/// Where and when something was committed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Origin {
    pub tx: String,
    pub height: u64,
    pub at_ms: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyEntry {
    pub public_key: String,
    pub bound: Origin,
    pub revoked: Option<Origin>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AccountRole {
    Regulator,
    Inspector,
    AgricultureAuthority,
    TestingLab,
    Subject,
}

impl From<AuthorityRole> for AccountRole {
    fn from(r: AuthorityRole) -> Self {
        match r {
            AuthorityRole::Regulator => AccountRole::Regulator,
            AuthorityRole::Inspector => AccountRole::Inspector,
            AuthorityRole::AgricultureAuthority => AccountRole::AgricultureAuthority,
            AuthorityRole::TestingLab => AccountRole::TestingLab,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Account {
    pub id: String,
    pub role: AccountRole,
    /// Region code: the province, a city or a district; a subject's district.
    pub jurisdiction: String,
    pub name: String,
    pub keys: Vec<KeyEntry>,
    /// `None` for the genesis root regulators.
    pub registered: Option<Origin>,
    pub registered_by: Option<String>,
}

impl Account {
    pub fn active_key(&self, public_key_hex: &str) -> Option<&KeyEntry> {
        self.keys
            .iter()
            .find(|k| k.public_key == public_key_hex && k.revoked.is_none())
    }

    pub fn active_key_count(&self) -> usize {
        self.keys.iter().filter(|k| k.revoked.is_none()).count()
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Subject {
    pub uscc: String,
    pub name: String,
    pub kind: SubjectKind,
    pub district: String,
    pub key_subject: bool,
    pub market: Option<String>,
    /// The subject trace code (主体码) shown at the point of sale.
    pub subject_code: String,
    pub registered: Origin,
    pub updated: Option<Origin>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Product {
    pub owner: String,
    pub product_id: String,
    pub name: String,
    pub gtin: Option<String>,
    pub variety: String,
    pub shelf_life_days: u32,
    pub registered: Origin,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum UpstreamInfo {
    Registered {
        uscc: String,
        district: String,
    },
    Unregistered {
        name: String,
        uscc: Option<String>,
        region: String,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecallInfo {
    pub by: String,
    pub reason: String,
    pub origin: Origin,
    /// Every subject downstream of the coder that held or was sent the batch.
    pub affected: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Batch {
    pub trace_code: String,
    pub coder: String,
    pub coder_district: String,
    pub batch_id: String,
    pub product_id: String,
    pub product_name: String,
    pub variety: String,
    pub key_variety: bool,
    pub quantity: u64,
    pub unit: String,
    pub production_date: String,
    pub expiry_date: String,
    pub origin_region: String,
    pub upstream: Option<UpstreamInfo>,
    pub certificates: Vec<String>,
    pub rapid_tests: Vec<String>,
    pub coded: Origin,
    /// 赋绿码: cleared by a compliance certificate or a passed rapid test.
    pub green: bool,
    /// A failed rapid test blocks the batch from shipment.
    pub blocked: bool,
    pub recall: Option<RecallInfo>,
    /// Shipments naming this batch, as `shipper/shipment_id`, in commit
    /// order (trace forward). Always empty in state: each shipment is an
    /// index row under [`batch_shipments_prefix`], so a batch shipped
    /// thousands of times stays a small record; reads fill this in
    /// (`query::batch`), bounded.
    pub shipments: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ShipmentStatus {
    Pending,
    Received {
        origin: Origin,
        on_time: bool,
    },
    Rejected {
        origin: Origin,
        on_time: bool,
        reason: RejectionReason,
        note: Option<String>,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Shipment {
    pub shipper: String,
    pub shipment_id: String,
    pub to: String,
    pub lines: Vec<ShipmentLine>,
    pub shipper_district: String,
    pub receiver_district: String,
    pub shipped: Origin,
    /// 00:00 local of the third natural day after shipping.
    pub receipt_deadline_ms: i64,
    pub status: ShipmentStatus,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Finding {
    pub finding_id: String,
    pub inspector: String,
    pub subject: String,
    pub district: String,
    pub kind: FindingKind,
    pub batches: u64,
    pub note: Option<String>,
    pub document_hash: Option<String>,
    pub found: Origin,
    pub rectification_deadline_ms: i64,
    pub rectified: Option<(Origin, bool)>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Certificate {
    pub certificate_id: String,
    pub issuer: String,
    pub subject: String,
    pub product_name: String,
    pub trace_code: Option<String>,
    pub quantity: Option<u64>,
    pub unit: Option<String>,
    pub issued: Origin,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RapidTest {
    pub test_id: String,
    pub tester: String,
    pub trace_code: String,
    pub item: String,
    pub result: TestResult,
    pub note: Option<String>,
    pub tested: Origin,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Notarization {
    pub document_hash: String,
    pub title: String,
    pub media_type: Option<String>,
    pub note: Option<String>,
    pub account: String,
    pub origin: Origin,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Adjustment {
    pub district: String,
    pub term: AdjustmentTerm,
    pub points_hundredths: i64,
    pub reason: String,
    pub by: String,
    pub origin: Origin,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VarietyCatalogue {
    pub version: u32,
    pub varieties: Vec<crate::record::Variety>,
}

impl VarietyCatalogue {
    pub fn contains(&self, code: &str) -> bool {
        self.varieties.iter().any(|v| v.code == code)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kv::MemoryKv;

    #[test]
    fn typed_roundtrip_and_corruption() {
        let mut kv = MemoryKv::new();
        let o = Origin {
            tx: "ab".into(),
            height: 3,
            at_ms: -5,
        };
        put(&mut kv, Space::State, "x", &o).unwrap();
        assert_eq!(get::<Origin>(&kv, Space::State, "x").unwrap(), Some(o));
        kv.put(Space::State, b"y".to_vec(), vec![0xff]);
        assert!(matches!(
            get::<Origin>(&kv, Space::State, "y"),
            Err(KvError::Corrupt { .. })
        ));
    }

    #[test]
    fn tagged_enums_survive_bincode() {
        let s = ShipmentStatus::Rejected {
            origin: Origin {
                tx: "t".into(),
                height: 1,
                at_ms: 2,
            },
            on_time: true,
            reason: RejectionReason::Quality,
            note: None,
        };
        let bytes = encode(&s);
        assert_eq!(decode::<ShipmentStatus>(b"k", &bytes.unwrap()).unwrap(), s);
        let u = Some(UpstreamInfo::Unregistered {
            name: "n".into(),
            uscc: None,
            region: "340100".into(),
        });
        assert_eq!(
            decode::<Option<UpstreamInfo>>(b"k", &encode(&u).unwrap()).unwrap(),
            u
        );
    }
}
