//! ZSL's whole-cluster simulator, VOPR-style: 3–5 validators of the real
//! code (openraft, the state machine and ledger on RocksDB, block
//! production, forwarding, co-signing, the membership reconciler) run on
//! one thread, on simulated time, over the in-memory network, while a
//! seeded campaign loses, delays, duplicates and reorders messages,
//! partitions the network and cuts the power of nodes (their disks give
//! back what was not synced). Clients submit a signed mix of records and
//! read; every acknowledgement is recorded and checked.
//!
//! A run is a pure function of its [`SimConfig`]: one current-thread tokio
//! runtime with paused time, every random choice from the seed
//! ([`consensus::simulation`] routes the node's clock, fsyncs and blocking
//! work through it), `BTreeMap`s throughout. [`SimReport::digest`] hashes
//! every acknowledgement in order, so a replay is seen to be exact.
//!
//! Checks, during the run and at its end (`checks`): no two nodes hold
//! different blocks at a height; a committed answer never changes; a node
//! in a minority partition acknowledges nothing new as committed; every
//! acknowledged commit is on every node where it was acknowledged; a
//! transaction answered only with refusals is nowhere; all nodes end on one
//! head, state and tree, each chain re-verifies from genesis, sealed
//! checkpoints grow append-only, and scores are equal on every node.
//!
//! May not depend on: HTTP, libp2p, the wall clock. It is a test tool:
//! nothing in a node depends on it.

#![cfg_attr(not(test), warn(unused_crate_dependencies))]
// The bin target's argument parser and log output.
use clap as _;
use tracing_subscriber as _;

mod checks;
mod cluster;
mod driver;
mod workload;

pub use driver::run;

/// One simulation: the seed decides everything else.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SimConfig {
    pub seed: u64,
    /// Client operations (transactions submitted and reads) to run.
    pub ops: u64,
    /// Validators, 3..=5; `None` lets the seed choose.
    pub nodes: Option<usize>,
}

impl SimConfig {
    /// The command that replays this run exactly.
    pub fn replay_command(&self) -> String {
        let nodes = self
            .nodes
            .map(|n| format!(" --nodes {n}"))
            .unwrap_or_default();
        format!("scripts/sim --seed {} --ops {}{nodes}", self.seed, self.ops)
    }
}

/// Validators a simulation runs at most.
pub const NODES_MAX: usize = 5;

/// What a run did and found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SimReport {
    pub seed: u64,
    pub nodes: usize,
    /// Client operations run: `txs + reads`.
    pub ops: u64,
    /// Transactions submitted (each counted once, however often resubmitted).
    pub txs: u64,
    pub reads: u64,
    pub committed: u64,
    pub refused: u64,
    /// Transactions whose fate the client never learned (it gave up).
    pub unknown: u64,
    pub sim_ms: u64,
    pub power_losses: u64,
    /// Unsynced write batches the power losses took back.
    pub batches_lost: u64,
    pub partitions: u64,
    pub messages_dropped: u64,
    pub messages_duplicated: u64,
    pub height: u64,
    pub violations: Vec<String>,
    /// SHA-256 over every acknowledgement in order and the final head.
    pub digest: String,
}

impl SimReport {
    /// One line for a log.
    pub fn summary(&self) -> String {
        format!(
            "seed {} nodes {}: {} ops ({} txs: {} committed, {} refused, {} unknown; {} reads), \
             {} ms simulated, height {}, {} power losses ({} unsynced batches lost), \
             {} partitions, {} messages dropped, {} duplicated, {} violations, digest {}",
            self.seed,
            self.nodes,
            self.ops,
            self.txs,
            self.committed,
            self.refused,
            self.unknown,
            self.reads,
            self.sim_ms,
            self.height,
            self.power_losses,
            self.batches_lost,
            self.partitions,
            self.messages_dropped,
            self.messages_duplicated,
            self.violations.len(),
            &self.digest[..16.min(self.digest.len())],
        )
    }
}
