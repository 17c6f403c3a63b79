//! ZSL's deterministic core: records, signing, the RFC 9162 transaction tree,
//! hash-chained blocks, the state machine, the score engine and storage.
//!
//! Owns: what a valid transaction is and what it does to state; how blocks
//! and proofs are hashed; how state is laid out in RocksDB.
//! May not depend on: Raft, libp2p, HTTP, or the wall clock. Time enters only
//! as a block's `time_ms`; the same state and proposal give the same block on
//! every node.

// A dependency this target does not use is an error under clippy's
// `-D warnings` (scripts/test); test targets see dev-dependencies too.
#![cfg_attr(not(test), warn(unused_crate_dependencies))]

pub mod block;
pub mod chain;
pub mod checkpoint;
pub mod credit_report;
pub mod epcis;
pub mod error;
pub mod evidence;
pub mod hash;
pub mod history;
pub mod jcs;
pub mod kv;
pub mod machine;
pub mod merkle;
pub mod query;
pub mod record;
pub mod refusal;
pub mod refusals;
pub mod scitt;
pub mod score;
pub mod score_evidence;
pub mod seal;
pub mod signing;
pub mod spec;
pub mod state;
pub mod store;
pub mod strict_json;
#[cfg(any(test, feature = "testkit"))]
pub mod testkit;
pub mod validate;
pub mod witness;

pub use block::{Block, BlockHeader, BlockProposal, ChainHead, TxLocation};
pub use chain::{verify_chain, verify_chain_with, Ledger, MemoryLedger, Replay, VerifyReport};
pub use error::{LedgerError, Refusal, RefusalCode, Result};
pub use hash::H32;
pub use signing::{SignedTx, TxFrame};
pub use spec::ChainSpec;
