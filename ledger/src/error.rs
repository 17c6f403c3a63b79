//! The crate's error type. Refusals (a transaction not applied, with a stable
//! code) are not errors and live in [`crate::refusal`]; they are re-exported here.

use crate::kv::KvError;
pub use crate::refusal::{refuse, Refusal, RefusalCode};

/// Failures of the ledger itself (storage, corruption, broken invariants of
/// stored data). A refused transaction is not an error: see [`Refusal`].
#[derive(Debug, thiserror::Error)]
pub enum LedgerError {
    #[error(transparent)]
    Kv(#[from] KvError),
    #[error("storage: {0}")]
    Storage(String),
    #[error("stored data is corrupt: {0}")]
    Corrupt(String),
    #[error("merkle tree: {0}")]
    Merkle(#[from] crate::merkle::MerkleError),
    #[error("score: {0}")]
    Score(#[from] crate::score::ScoreError),
    #[error("invalid chain spec: {0}")]
    Spec(String),
    #[error("block rejected: {0}")]
    Block(String),
    #[error("chain verification failed at height {height}: {reason}")]
    Verify { height: u64, reason: String },
    #[error("io: {0}")]
    Io(#[from] std::io::Error),
}

pub type Result<T, E = LedgerError> = std::result::Result<T, E>;

/// Why a record rule did not apply a transaction: the transaction is refused
/// (the block goes on without it) or the ledger failed (the block must not be
/// cut). Rules return this instead of a result nested in a result, so `?`
/// carries both.
#[derive(Debug, thiserror::Error)]
pub enum ApplyError {
    #[error("refused: {0}")]
    Refused(Refusal),
    #[error(transparent)]
    Fatal(#[from] LedgerError),
}

pub type ApplyResult<T> = std::result::Result<T, ApplyError>;

impl From<Refusal> for ApplyError {
    fn from(r: Refusal) -> Self {
        ApplyError::Refused(r)
    }
}

impl From<KvError> for ApplyError {
    fn from(e: KvError) -> Self {
        ApplyError::Fatal(e.into())
    }
}

impl From<crate::score::ScoreError> for ApplyError {
    fn from(e: crate::score::ScoreError) -> Self {
        ApplyError::Fatal(e.into())
    }
}

impl From<crate::merkle::MerkleError> for ApplyError {
    fn from(e: crate::merkle::MerkleError) -> Self {
        ApplyError::Fatal(e.into())
    }
}
