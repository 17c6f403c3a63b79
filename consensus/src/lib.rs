//! ZSL consensus: Raft (openraft 0.9) over the ledger, and block production.
//!
//! Owns: the Raft log and vote (the `raft_log` / `raft_meta` column families
//! of the ledger's RocksDB), the Raft state machine that turns committed
//! entries into blocks through [`ledger::Ledger::apply`], snapshots, the
//! admission queue, and the block producer that cuts proposals from it.
//! Today the cluster has one member; the network sits behind
//! [`network::Transport`] so that the cluster issue can add libp2p (and an
//! in-memory faulty transport for tests) without touching storage or the
//! producer.
//!
//! May not depend on: HTTP (no axum, no tower), the `api` or `node` crates.
//! The HTTP layer calls [`ConsensusNode::submit`] and maps its errors to
//! status codes; nothing here knows about requests or responses on the wire.

pub mod error;
pub mod log_store;
pub mod network;
pub mod node;
pub mod state_machine;
pub mod types;

pub use error::{ConsensusError, Result};
pub use log_store::LogStore;
pub use network::{NoPeers, Transport, TransportNetwork};
pub use node::{ConsensusConfig, ConsensusMetrics, ConsensusNode, Submission};
pub use state_machine::StateMachine;
pub use types::{ApplyResponse, BlockRef, TxOutcomeResponse, TxResult, TypeConfig};
