//! The Raft type configuration and what the state machine answers.

use ledger::machine::TxOutcome;
use ledger::{Block, BlockProposal, RefusalCode};
use serde::{Deserialize, Serialize};

openraft::declare_raft_types!(
    /// ZSL's Raft types: a log entry's payload is a block proposal; applying it
    /// answers with per-transaction outcomes.
    pub TypeConfig:
        D = BlockProposal,
        R = ApplyResponse,
        NodeId = u64,
        Node = openraft::BasicNode,
        Entry = openraft::Entry<TypeConfig>,
        SnapshotData = crate::snapshot::SnapshotFile,
        AsyncRuntime = openraft::TokioRuntime,
);

pub type NodeId = u64;
pub type LogId = openraft::LogId<NodeId>;
pub type Entry = openraft::Entry<TypeConfig>;
pub type StoredMembership = openraft::StoredMembership<NodeId, openraft::BasicNode>;
pub type SnapshotMeta = openraft::SnapshotMeta<NodeId, openraft::BasicNode>;
pub type StorageError = openraft::StorageError<NodeId>;
pub type Raft = openraft::Raft<TypeConfig>;

/// The block a proposal produced.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BlockRef {
    pub height: u64,
    /// Lowercase hex.
    pub hash: String,
}

/// What happened to one proposed transaction.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TxResult {
    Committed {
        height: u64,
        index: u32,
        leaf_index: u64,
    },
    Refused {
        code: RefusalCode,
        message: String,
    },
}

/// One transaction's outcome, as the submitter gets it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TxOutcomeResponse {
    /// Transaction id, lowercase hex; `None` when the wire bytes did not parse.
    pub id: Option<String>,
    pub result: TxResult,
}

impl TxOutcomeResponse {
    pub fn refused(id: Option<String>, code: RefusalCode, message: impl Into<String>) -> Self {
        Self {
            id,
            result: TxResult::Refused {
                code,
                message: message.into(),
            },
        }
    }

    /// Committed where `loc` says.
    pub fn committed(id: Option<String>, loc: &ledger::TxLocation) -> Self {
        Self {
            id,
            result: TxResult::Committed {
                height: loc.height,
                index: loc.index,
                leaf_index: loc.leaf_index,
            },
        }
    }

    pub fn is_committed(&self) -> bool {
        matches!(self.result, TxResult::Committed { .. })
    }
}

impl From<&TxOutcome> for TxOutcomeResponse {
    fn from(o: &TxOutcome) -> Self {
        let id = o.id.map(|h| h.to_string());
        match &o.result {
            Ok(loc) => Self::committed(id, loc),
            Err(r) => Self::refused(id, r.code, r.message.clone()),
        }
    }
}

/// The state machine's answer to one log entry (`C::R`). Blank and membership
/// entries answer with the default: no block, no outcomes.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApplyResponse {
    /// The block cut, if any transaction was accepted.
    pub block: Option<BlockRef>,
    /// One per proposed transaction, in proposal order.
    pub outcomes: Vec<TxOutcomeResponse>,
}

impl ApplyResponse {
    pub fn from_applied(block: Option<&Block>, outcomes: &[TxOutcome]) -> Self {
        Self {
            block: block.map(|b| BlockRef {
                height: b.header.height,
                hash: b.hash.to_string(),
            }),
            outcomes: outcomes.iter().map(TxOutcomeResponse::from).collect(),
        }
    }
}

/// Keys in `raft_meta`. The log store owns the first three, the state machine the rest.
pub(crate) mod meta_key {
    pub const VOTE: &[u8] = b"vote";
    pub const COMMITTED: &[u8] = b"committed";
    pub const LAST_PURGED: &[u8] = b"last_purged";
    pub const LAST_APPLIED: &[u8] = b"last_applied";
    pub const LAST_MEMBERSHIP: &[u8] = b"last_membership";
    /// Set while a verified snapshot is being copied in: its meta and
    /// unpacked store (see `state_machine::resume_install`).
    pub const SNAPSHOT_INSTALLING: &[u8] = b"snapshot_installing";
}

/// Every persisted Raft value goes through bincode's serde API, standard config.
pub(crate) fn encode<T: Serialize>(
    value: &T,
) -> std::result::Result<Vec<u8>, bincode::error::EncodeError> {
    bincode::serde::encode_to_vec(value, bincode::config::standard())
}

pub(crate) fn decode<T: serde::de::DeserializeOwned>(
    bytes: &[u8],
) -> std::result::Result<T, bincode::error::DecodeError> {
    bincode::serde::decode_from_slice(bytes, bincode::config::standard()).map(|(v, _)| v)
}
