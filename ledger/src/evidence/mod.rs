//! Evidence bundles (区块链固证): everything an inspector, a court or another
//! province needs to check, with nothing but the genesis file, that a record
//! existed unaltered at a time and was accepted by a quorum of validators.
//!
//! A bundle (`"format": "zsl-evidence/1"`, docs/evidence.md) carries the
//! record as signed, the record that bound its signer's key, the block
//! headers from the record's block up to the first sealed checkpoint at or
//! after it, RFC 9162 inclusion proofs into that checkpoint's tree, the
//! checkpoint as a C2SP signed note, and the validator set in force.
//! [`build()`] makes one from any [`KvRead`] (pure: no clock, no I/O beyond the
//! reads); [`verify()`] re-derives everything from the genesis spec and names
//! each check. Verification fails closed: a check whose input is missing or
//! malformed fails. Signature lines of keys the verifier does not know (a
//! witness's cosignature) are ignored, as c2sp.org/signed-note requires; the
//! quorum is counted over the validators in force only.

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::block::BlockHeader;
use crate::checkpoint::{Checkpoint, LogIdentity, NoteFormat, NoteKeys, SignedNote};
use crate::error::LedgerError;
use crate::hash::H32;
use crate::history::{read_header, read_tx, TreeReader};
use crate::kv::{KvRead, Space};
use crate::merkle;
use crate::record;
use crate::seal;
use crate::signing::SignedTx;
use crate::spec::{ChainSpec, Validator};
use crate::state::{self, Account, Origin};

/// The bundle format of chains whose genesis has no `log_host` (note format
/// v1). Still written for them and verified.
pub const FORMAT_V1: &str = "zsl-evidence/1";
/// The bundle format of chains with C2SP-conformant checkpoints (note format
/// v2): the same fields, plus the validators' note keys (`validators.vkeys`).
pub const FORMAT_V2: &str = "zsl-evidence/2";

/// The bundle format of a chain with this note format.
pub fn format_for(note: NoteFormat) -> &'static str {
    match note {
        NoteFormat::V1 => FORMAT_V1,
        NoteFormat::V2 => FORMAT_V2,
    }
}
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
    /// Only with a witness policy (`verify_with_policy`).
    pub const WITNESSES: &str = "witnesses";
    // Consistency (append-only) checks.
    pub const OLD_CHECKPOINT: &str = "old_checkpoint";
    pub const NEW_CHECKPOINT: &str = "new_checkpoint";
    pub const CONSISTENCY: &str = "consistency";
}

/// A self-contained, offline-verifiable proof that a record was committed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Bundle {
    /// [`FORMAT_V1`] or [`FORMAT_V2`], as the chain's note format says.
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
    /// Format 2: the C2SP vkey of each validator of `set`, in its order, so
    /// a generic signed-note verifier can be configured from the bundle;
    /// the rule is "at least `quorum` of these keys signed the checkpoint",
    /// lines by other keys ignored. Derived and compared by the verifier:
    /// trust still comes from genesis. Absent in format 1.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vkeys: Option<Vec<String>>,
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

mod build;
mod consistency;
mod trace;
mod verify;

pub use build::*;
pub use consistency::*;
pub use trace::*;
pub use verify::*;

#[cfg(test)]
mod tests;
