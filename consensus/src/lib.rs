//! ZSL consensus: Raft (openraft 0.9) over the ledger, and block production.
//!
//! Owns: the Raft log and vote (the `raft_log` / `raft_meta` column families
//! of the ledger's RocksDB), the Raft state machine that turns committed
//! entries into blocks through [`ledger::Ledger::apply`], snapshots, the
//! admission queue, and the block producer that cuts proposals from it.
//! The network sits behind [`network::Transport`]: [`p2p`] carries Raft's
//! RPCs over libp2p between validators whose identities genesis fixes, and
//! [`memnet`] is an in-memory network with a seeded fault plan for tests.
//! A one-member cluster starts with [`ConsensusNode::start_single`]; a
//! cluster with [`ConsensusNode::start`] on each member and
//! [`ConsensusNode::initialize_cluster`] on one.
//!
//! May not depend on: HTTP (no axum, no tower), the `api` or `node` crates.
//! The HTTP layer calls [`ConsensusNode::submit`] and maps its errors to
//! status codes; nothing here knows about requests or responses on the wire.

// A dependency this target does not use is an error under clippy's
// `-D warnings` (scripts/test); test targets see dev-dependencies too.
#![cfg_attr(not(test), warn(unused_crate_dependencies))]

pub mod clock;
pub mod cosign;
pub mod error;
pub mod forward;
pub mod log_store;
pub mod membership;
pub mod memnet;
pub mod network;
pub mod node;
pub mod p2p;
pub mod simulation;
pub mod snapshot;
pub mod state_machine;
pub mod types;

pub use cosign::{CosignInbox, ValidatorSigner};
pub use error::{ConsensusError, Result};
pub use forward::{ForwardedOutcome, SubmitInbox};
pub use log_store::LogStore;
pub use memnet::{FaultPlan, MemNetStats, MemRouter, MemTransport};
pub use network::{NoPeers, Transport, TransportNetwork};
pub use node::{ConsensusConfig, ConsensusMetrics, ConsensusNode, Submission};
pub use p2p::{P2pConfig, P2pNode, P2pStats, P2pTransport};
pub use snapshot::{SnapshotFile, SnapshotLimits};
pub use state_machine::StateMachine;
pub use types::{ApplyResponse, BlockRef, TxOutcomeResponse, TxResult, TypeConfig};

/// Runs CPU-bound work (applying a block, verifying signatures) without
/// stalling the async tasks around it: in place on a multi-threaded runtime
/// (the worker hands its other tasks on, and no thread switch is paid), on
/// the blocking pool otherwise.
pub(crate) async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> T + Send + 'static,
) -> Result<T, tokio::task::JoinError> {
    use tokio::runtime::{Handle, RuntimeFlavor};
    if simulation::active() {
        // One thread runs the whole simulated cluster: no thread may decide
        // when this finishes.
        return Ok(f());
    }
    if Handle::current().runtime_flavor() == RuntimeFlavor::MultiThread {
        Ok(tokio::task::block_in_place(f))
    } else {
        tokio::task::spawn_blocking(f).await
    }
}

/// `tokio::task::spawn_blocking`, except in a simulation, where `f` runs
/// in place (see [`blocking`]).
pub(crate) async fn spawn_blocking<T: Send + 'static>(
    f: impl FnOnce() -> T + Send + 'static,
) -> Result<T, tokio::task::JoinError> {
    if simulation::active() {
        return Ok(f());
    }
    tokio::task::spawn_blocking(f).await
}
