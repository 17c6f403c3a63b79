//! The crate's one error type.

/// What can go wrong in consensus. Payloads are strings so the error is
/// `Clone`: one failed proposal has to be reported to every transaction in it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, serde::Serialize, serde::Deserialize)]
pub enum ConsensusError {
    /// The admission queue is at capacity: back-pressure, the HTTP layer answers 503.
    #[error("the admission queue is full ({capacity} transactions waiting); retry later")]
    QueueFull { capacity: usize },
    /// Only the leader cuts blocks. The cluster issue forwards to `leader`;
    /// today the HTTP layer reports it. A transaction that got this after it was
    /// queued may still commit: resubmitting is safe, a duplicate is refused as `replayed`.
    #[error("this node is not the leader (leader: {leader:?})")]
    NotLeader { leader: Option<u64> },
    #[error("consensus is shutting down")]
    ShuttingDown,
    #[error("invalid consensus config: {0}")]
    Config(String),
    #[error("ledger: {0}")]
    Ledger(String),
    #[error("raft: {0}")]
    Raft(String),
    #[error("timed out: {0}")]
    Timeout(String),
}

pub type Result<T, E = ConsensusError> = std::result::Result<T, E>;

impl From<ledger::LedgerError> for ConsensusError {
    fn from(e: ledger::LedgerError) -> Self {
        ConsensusError::Ledger(e.to_string())
    }
}

impl From<openraft::error::Fatal<u64>> for ConsensusError {
    fn from(e: openraft::error::Fatal<u64>) -> Self {
        match e {
            openraft::error::Fatal::Stopped => ConsensusError::ShuttingDown,
            other => ConsensusError::Raft(other.to_string()),
        }
    }
}
