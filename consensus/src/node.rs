//! A consensus node: Raft over the ledger, an admission queue and the block producer.
//!
//! Transactions enter through [`ConsensusNode::submit`] as frames (the exact
//! signed bytes, see [`ledger::TxFrame`]); on a follower they go on to the
//! leader (`forward`). The leader's producer task waits for the first one,
//! drains whatever else is queued up to the block limits, verifies the
//! signatures of the lot on every core — answering failures at once, so no
//! forged transaction reaches the log — and proposes the rest at once. Up to
//! `pipeline_blocks_max` proposals are in flight: while one block is
//! replicated and applied the next is verified and proposed, so a lone client
//! waits about one Raft round, and under load a transaction waits for about
//! one block, not a queue of them. No timer is involved.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use ledger::signing::TX_BYTES_MAX;
use ledger::{BlockProposal, Ledger, RefusalCode, TxFrame};
use openraft::error::{ClientWriteError, InitializeError, RaftError};
use openraft::{BasicNode, ServerState, SnapshotPolicy};
use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinHandle;

use crate::cosign::{CosignInbox, CosignPool, ValidatorSigner};
use crate::error::{ConsensusError, Result};
use crate::log_store::{CommittedIndex, LogStore};
use crate::network::{NoPeers, Transport, TransportNetwork};
use crate::state_machine::StateMachine;
use crate::types::{NodeId, Raft, TxOutcomeResponse};

/// Limits and timings. Defaults suit a handful of validators on one LAN or region.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsensusConfig {
    /// Transactions in one block proposal (at most the ledger's `BLOCK_TXS_MAX`).
    pub block_txs_max: usize,
    /// Wire bytes of the transactions in one proposal; at least one
    /// transaction's limit, so any admissible transaction fits alone.
    pub block_bytes_max: usize,
    /// Transactions waiting for a block; beyond this `submit` refuses (back-pressure).
    pub queue_txs_max: usize,
    pub heartbeat_ms: u64,
    pub election_timeout_min_ms: u64,
    pub election_timeout_max_ms: u64,
    /// Raft builds a snapshot (and may then purge its log) after this many
    /// entries. A snapshot packs a checkpoint of the whole store into one
    /// file (disk I/O of the store's size, memory within
    /// `snapshot_memory_budget_bytes`), and applied entries cost a pointer of
    /// a few bytes each in the log, so the default is far apart: under load
    /// a block is cut every few ms.
    pub snapshot_logs_since_last: u64,
    /// Memory a snapshot build or install may use for its buffers and write
    /// batches, bytes; the store itself may be any size.
    pub snapshot_memory_budget_bytes: usize,
    /// Log entries already in a snapshot that are kept anyway, so a follower
    /// that is only a little behind catches up from the log rather than by
    /// a snapshot transfer.
    pub snapshot_logs_kept: u64,
    /// Block proposals in flight at once (proposed, not yet applied).
    pub pipeline_blocks_max: usize,
    /// How long checkpoint signatures alone wait for a transaction to ride
    /// with before they make a block of their own: at idle the chain grows by
    /// at most one signature-only block per this many ms.
    pub seal_linger_ms: u64,
}

impl Default for ConsensusConfig {
    fn default() -> Self {
        Self {
            block_txs_max: 2_000,
            block_bytes_max: 8 << 20,
            queue_txs_max: 20_000,
            heartbeat_ms: 100,
            election_timeout_min_ms: 500,
            election_timeout_max_ms: 1_000,
            snapshot_logs_since_last: 1_000_000,
            snapshot_memory_budget_bytes: 16 << 20,
            snapshot_logs_kept: 1_000,
            pipeline_blocks_max: 2,
            seal_linger_ms: 250,
        }
    }
}

impl ConsensusConfig {
    fn raft_config(&self) -> Result<openraft::Config> {
        if self.block_txs_max == 0 || self.block_txs_max > ledger::machine::BLOCK_TXS_MAX {
            return Err(ConsensusError::Config(format!(
                "block_txs_max must be 1..={}, not {}",
                ledger::machine::BLOCK_TXS_MAX,
                self.block_txs_max
            )));
        }
        if self.block_bytes_max < TX_BYTES_MAX {
            return Err(ConsensusError::Config(format!(
                "block_bytes_max must be at least one transaction's limit ({TX_BYTES_MAX} bytes)"
            )));
        }
        if self.queue_txs_max == 0 {
            return Err(ConsensusError::Config(
                "queue_txs_max must be at least 1".into(),
            ));
        }
        if self.pipeline_blocks_max == 0 || self.pipeline_blocks_max > PIPELINE_BLOCKS_LIMIT {
            return Err(ConsensusError::Config(format!(
                "pipeline_blocks_max must be 1..={PIPELINE_BLOCKS_LIMIT}, not {}",
                self.pipeline_blocks_max
            )));
        }
        if self.snapshot_memory_budget_bytes < crate::snapshot::MEMORY_BUDGET_BYTES_MIN {
            return Err(ConsensusError::Config(format!(
                "snapshot_memory_budget_bytes must be at least {}",
                crate::snapshot::MEMORY_BUDGET_BYTES_MIN
            )));
        }
        if self.snapshot_logs_since_last == 0 {
            return Err(ConsensusError::Config(
                "snapshot_logs_since_last must be at least 1".into(),
            ));
        }
        let config = openraft::Config {
            cluster_name: "zsl".into(),
            heartbeat_interval: self.heartbeat_ms,
            election_timeout_min: self.election_timeout_min_ms,
            election_timeout_max: self.election_timeout_max_ms,
            snapshot_policy: SnapshotPolicy::LogsSinceLast(self.snapshot_logs_since_last),
            max_in_snapshot_log_to_keep: self.snapshot_logs_kept,
            ..Default::default()
        };
        config
            .validate()
            .map_err(|e| ConsensusError::Config(e.to_string()))
    }

    /// How long a fresh or restarted member may take to become leader of a
    /// one-member cluster: a few election rounds, never under 5 s.
    fn leader_wait(&self) -> Duration {
        Duration::from_millis(self.election_timeout_max_ms.saturating_mul(10).max(5_000))
    }

    /// How long shutdown waits for the block in flight: ample for one Raft
    /// round, short enough that a leader cut off from its quorum still stops.
    fn shutdown_grace(&self) -> Duration {
        Duration::from_millis(self.election_timeout_max_ms.saturating_mul(4).max(1_000))
    }
}

/// Upper bound of [`ConsensusConfig::pipeline_blocks_max`].
pub const PIPELINE_BLOCKS_LIMIT: usize = 64;

/// A snapshot of the node's Raft state, for `/v1/status` and logs.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ConsensusMetrics {
    pub node_id: NodeId,
    pub term: u64,
    pub leader: Option<NodeId>,
    pub is_leader: bool,
    /// The last committed log index as this node last persisted it.
    pub commit_index: Option<u64>,
    pub last_applied_index: Option<u64>,
    pub last_log_index: Option<u64>,
    /// Transactions waiting in the admission queue.
    pub queue_txs: usize,
}

/// What a submitter waits on: the transaction's outcome once its block is
/// applied, or why its fate is unknown (leadership lost, shutdown). After
/// such an error the transaction may still commit; resubmitting is safe,
/// because a duplicate is refused as `replayed`.
pub type Submission = oneshot::Receiver<Result<TxOutcomeResponse>>;

pub(crate) struct Pending {
    pub(crate) tx: TxFrame,
    pub(crate) reply: oneshot::Sender<Result<TxOutcomeResponse>>,
}

/// Reads a submission (a frame or a JSON wire) and queues it; a transaction
/// that does not even read as one is answered at once, without a Raft round.
pub(crate) fn enqueue(queue: &mpsc::Sender<Pending>, wire: Vec<u8>) -> Result<Submission> {
    let (p, rx) = match read_pending(wire) {
        Ok(x) => x,
        Err(answered) => return Ok(answered),
    };
    match queue.try_send(p) {
        Ok(()) => Ok(rx),
        Err(mpsc::error::TrySendError::Full(_)) => Err(ConsensusError::QueueFull {
            capacity: queue.max_capacity(),
        }),
        Err(mpsc::error::TrySendError::Closed(_)) => Err(ConsensusError::ShuttingDown),
    }
}

/// A submission as queued, with its answer's receiver; or, for one that
/// does not read as a transaction, the receiver already holding its refusal.
fn read_pending(wire: Vec<u8>) -> std::result::Result<(Pending, Submission), Submission> {
    let (reply, rx) = oneshot::channel();
    if wire.len() > TX_BYTES_MAX + 128 {
        let message = format!(
            "transaction is {} bytes; the limit is {TX_BYTES_MAX}",
            wire.len()
        );
        // The receiver is in hand, so this send cannot fail.
        let _ = reply.send(Ok(TxOutcomeResponse::refused(
            None,
            RefusalCode::TxTooLarge,
            message,
        )));
        return Err(rx);
    }
    match TxFrame::from_proposed(&wire) {
        Ok(tx) => Ok((Pending { tx, reply }, rx)),
        Err(r) => {
            let _ = reply.send(Ok(TxOutcomeResponse::refused(None, r.code, r.message)));
            Err(rx)
        }
    }
}

/// Raft, the ledger it drives, and the block producer.
pub struct ConsensusNode {
    id: NodeId,
    raft: Raft,
    ledger: Arc<Ledger>,
    queue: mpsc::Sender<Pending>,
    /// A follower's submissions, on their way to the leader, one unit per
    /// call (a unit is forwarded whole and in order).
    forward: mpsc::Sender<crate::forward::ForwardUnit>,
    /// Transactions being forwarded at most (`queue_txs_max`), answered or not.
    forward_room: Arc<tokio::sync::Semaphore>,
    committed: CommittedIndex,
    stop: watch::Sender<bool>,
    producer: Mutex<Option<JoinHandle<()>>>,
    forwarder: Mutex<Option<JoinHandle<()>>>,
    signer: Mutex<Option<JoinHandle<()>>>,
    reconciler: Mutex<Option<JoinHandle<()>>>,
    /// Set once `validator.remove` took this node out of the set in force.
    removed: Arc<std::sync::atomic::AtomicBool>,
    set_listener: Arc<std::sync::OnceLock<crate::membership::ValidatorSetListener>>,
    inbox: CosignInbox,
    /// How long `shutdown` lets the block in flight commit.
    shutdown_grace: Duration,
}

impl ConsensusNode {
    /// Starts a one-member cluster on `ledger`: initialises membership
    /// `{node_id: addr}` on a pristine store, or resumes from an existing one
    /// (never re-initialising it), and waits until this node leads.
    pub async fn start_single(
        node_id: NodeId,
        addr: String,
        ledger: Arc<Ledger>,
        config: ConsensusConfig,
        signer: Option<ValidatorSigner>,
    ) -> Result<Self> {
        let wait = config.leader_wait();
        let node = Self::start(node_id, ledger, config, Arc::new(NoPeers), signer).await?;
        if node.raft.is_initialized().await? {
            // Asked of the Raft core, not the metrics channel, which may not
            // have published the loaded membership yet.
            let voters: Vec<NodeId> = node
                .raft
                .with_raft_state(|st| st.membership_state.effective().voter_ids().collect())
                .await?;
            if !voters.contains(&node_id) {
                node.shutdown().await?;
                return Err(ConsensusError::Config(format!(
                    "this store belongs to a cluster of {voters:?}; node {node_id} is not a voter"
                )));
            }
        } else {
            let members = BTreeMap::from([(node_id, BasicNode::new(addr))]);
            match node.raft.initialize(members).await {
                Ok(()) => {}
                // Raced with a vote or log written since the check: already initialised.
                Err(RaftError::APIError(InitializeError::NotAllowed(_))) => {}
                Err(e) => {
                    node.shutdown().await?;
                    return Err(ConsensusError::Raft(e.to_string()));
                }
            }
        }
        let leads = node
            .raft
            .wait(Some(wait))
            .current_leader(node_id, "single member becomes leader")
            .await;
        if let Err(e) = leads {
            node.shutdown().await?;
            return Err(ConsensusError::Timeout(e.to_string()));
        }
        Ok(node)
    }

    /// Starts Raft, the producer and (for a validator with its key) the
    /// checkpoint signer over any transport; does not initialise membership.
    /// The transport must also hand inbound checkpoint signatures to
    /// [`Self::cosign_inbox`].
    pub async fn start<T: Transport>(
        node_id: NodeId,
        ledger: Arc<Ledger>,
        config: ConsensusConfig,
        transport: Arc<T>,
        signer: Option<ValidatorSigner>,
    ) -> Result<Self> {
        let raft_config = Arc::new(config.raft_config()?);
        let log_store = LogStore::new(ledger.clone());
        let committed = log_store.committed_index();
        let state_machine = StateMachine::with_limits(
            ledger.clone(),
            crate::snapshot::SnapshotLimits {
                memory_budget_bytes: config.snapshot_memory_budget_bytes,
                ..Default::default()
            },
        );
        let tree_grown = state_machine.tree_grown();
        let network = TransportNetwork::new(transport.clone());
        let raft = Raft::new(node_id, raft_config, network, log_store, state_machine).await?;
        let (queue, rx) = mpsc::channel(config.queue_txs_max);
        let (forward, forward_rx) = mpsc::channel(config.queue_txs_max);
        let forward_room = Arc::new(tokio::sync::Semaphore::new(config.queue_txs_max));
        let (stop, stop_rx) = watch::channel(false);
        let limits = Limits {
            txs_max: config.block_txs_max,
            bytes_max: config.block_bytes_max,
            pipeline: config.pipeline_blocks_max,
            linger: Duration::from_millis(config.seal_linger_ms),
        };
        let pool = Arc::new(CosignPool::default());
        let inbox = CosignInbox {
            pool: pool.clone(),
            ledger: ledger.clone(),
            raft: raft.clone(),
            node_id,
        };
        let producer = tokio::spawn(produce(
            raft.clone(),
            ledger.clone(),
            rx,
            stop_rx.clone(),
            limits,
            pool,
        ));
        let forwarder = tokio::spawn(crate::forward::run_forwarder(
            crate::forward::SubmitInbox {
                queue: queue.clone(),
                raft: raft.clone(),
                node_id,
            },
            ledger.clone(),
            transport.clone(),
            forward_rx,
            stop_rx.clone(),
            config.block_txs_max,
            config.block_bytes_max,
        ));
        let set_listener = Arc::new(std::sync::OnceLock::new());
        let removed = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let reconciler = tokio::spawn(crate::membership::run_reconciler(
            raft.clone(),
            ledger.clone(),
            node_id,
            removed.clone(),
            set_listener.clone(),
            tree_grown.clone(),
            stop_rx.clone(),
        ));
        let signer = signer.map(|s| {
            tokio::spawn(crate::cosign::run_signer(
                inbox.clone(),
                s,
                transport,
                tree_grown,
                stop_rx,
            ))
        });
        Ok(Self {
            id: node_id,
            raft,
            ledger,
            queue,
            forward,
            forward_room,
            committed,
            stop,
            producer: Mutex::new(Some(producer)),
            forwarder: Mutex::new(Some(forwarder)),
            signer: Mutex::new(signer),
            reconciler: Mutex::new(Some(reconciler)),
            removed,
            set_listener,
            inbox,
            shutdown_grace: config.shutdown_grace(),
        })
    }

    /// Whether a `validator.remove` record took this node out of the
    /// validator set: it then no longer campaigns (see `membership`).
    pub fn is_removed(&self) -> bool {
        self.removed.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Tells `f` every validator set this node applies (first within about a
    /// second), e.g. to update the network's allow-list. Set once; returns
    /// `false` if a listener was already set.
    pub fn on_validator_set(&self, f: crate::membership::ValidatorSetListener) -> bool {
        self.set_listener.set(f).is_ok()
    }

    /// Where the transport delivers other validators' checkpoint signatures.
    pub fn cosign_inbox(&self) -> CosignInbox {
        self.inbox.clone()
    }

    /// Initialises a pristine cluster whose voters are `members` (node id →
    /// address as the transport understands it). Call it on one member, after
    /// every member has started; the others learn the membership from the
    /// leader's log. A store that is already initialised is left alone
    /// (`Ok`), so calling it on a restart, or on several members, is harmless.
    pub async fn initialize_cluster(&self, members: BTreeMap<NodeId, BasicNode>) -> Result<()> {
        if !members.contains_key(&self.id) {
            return Err(ConsensusError::Config(format!(
                "node {} is not among the members {:?}",
                self.id,
                members.keys().collect::<Vec<_>>()
            )));
        }
        match self.raft.initialize(members).await {
            Ok(()) => Ok(()),
            Err(RaftError::APIError(InitializeError::NotAllowed(_))) => Ok(()),
            Err(e) => Err(ConsensusError::Raft(e.to_string())),
        }
    }

    /// Waits until this node knows a leader, and returns it.
    pub async fn wait_for_leader(&self, timeout: Duration) -> Result<NodeId> {
        let m = self
            .raft
            .wait(Some(timeout))
            .metrics(|m| m.current_leader.is_some(), "a leader is known")
            .await
            .map_err(|e| ConsensusError::Timeout(e.to_string()))?;
        m.current_leader
            .ok_or_else(|| ConsensusError::Timeout("leader vanished".into()))
    }

    /// Read index (Raft thesis §6.4), for linearizable reads on the leader:
    /// confirms with a quorum that this node still leads, waits until its
    /// state machine has applied everything committed at that moment, and
    /// returns that log index. A follower's API asks the leader for it and
    /// then waits for its own state machine to reach the index.
    ///
    /// Errors: `NotLeader` (with the leader this node knows of), `Timeout`
    /// when no quorum answers within `timeout` (a leader cut off in a
    /// minority must not serve reads as if current).
    pub async fn read_index(&self, timeout: Duration) -> Result<Option<u64>> {
        use openraft::error::CheckIsLeaderError;
        let read = tokio::time::timeout(timeout, self.raft.ensure_linearizable())
            .await
            .map_err(|_| {
                ConsensusError::Timeout("no quorum confirmed this node's leadership".into())
            })?;
        match read {
            Ok(log_id) => Ok(log_id.map(|id| id.index)),
            Err(RaftError::APIError(CheckIsLeaderError::ForwardToLeader(f))) => {
                Err(ConsensusError::NotLeader {
                    leader: f.leader_id,
                })
            }
            // QuorumNotEnough: its message lists the whole membership; the
            // short form is what a client can act on.
            Err(RaftError::APIError(CheckIsLeaderError::QuorumNotEnough(_))) => Err(
                ConsensusError::Raft("no quorum confirmed this node's leadership".into()),
            ),
            Err(RaftError::Fatal(f)) => Err(f.into()),
        }
    }

    /// Queues a transaction for the next block: its frame
    /// ([`TxFrame::to_bytes`]) or its JSON wire `{body, signer, sig}`. On a
    /// follower it is forwarded to the leader and the answer comes back the
    /// same way.
    ///
    /// Errors: `QueueFull` (back-pressure: answer 503), `NotLeader` (no
    /// leader is known), `ShuttingDown`. A transaction over the size limit
    /// or one that does not read as a transaction is answered at once,
    /// without a Raft round, so it never reaches the log.
    pub fn submit(&self, wire: Vec<u8>) -> Result<Submission> {
        self.submit_all(vec![wire])
            .pop()
            .unwrap_or(Err(ConsensusError::ShuttingDown))
    }

    /// [`Self::submit`] for transactions that stay together and in order
    /// (one request's): on a follower they are forwarded as one unit. One
    /// result per transaction.
    pub fn submit_all(&self, wires: Vec<Vec<u8>>) -> Vec<Result<Submission>> {
        if *self.stop.borrow() {
            return wires
                .iter()
                .map(|_| Err(ConsensusError::ShuttingDown))
                .collect();
        }
        if self.is_leader() {
            return wires.into_iter().map(|w| enqueue(&self.queue, w)).collect();
        }
        let leader = self.leader_id();
        if leader.is_none() || leader == Some(self.id) {
            return wires
                .iter()
                .map(|_| Err(ConsensusError::NotLeader { leader }))
                .collect();
        }
        let mut unit = Vec::with_capacity(wires.len());
        // (receiver, whether it waits on the unit) per transaction.
        let mut out: Vec<(Submission, bool)> = Vec::with_capacity(wires.len());
        for w in wires {
            out.push(match read_pending(w) {
                Ok((p, rx)) => {
                    unit.push(p);
                    (rx, true)
                }
                Err(answered) => (answered, false),
            });
        }
        if unit.is_empty() {
            return out.into_iter().map(|(rx, _)| Ok(rx)).collect();
        }
        let full = ConsensusError::QueueFull {
            capacity: self.forward.max_capacity(),
        };
        let sent = u32::try_from(unit.len())
            .ok()
            .and_then(|n| self.forward_room.clone().try_acquire_many_owned(n).ok())
            .ok_or(full.clone())
            .and_then(|room| {
                self.forward
                    .try_send(crate::forward::ForwardUnit { txs: unit, room })
                    .map_err(|e| match e {
                        mpsc::error::TrySendError::Full(_) => full.clone(),
                        mpsc::error::TrySendError::Closed(_) => ConsensusError::ShuttingDown,
                    })
            });
        match sent {
            Ok(()) => out.into_iter().map(|(rx, _)| Ok(rx)).collect(),
            Err(why) => {
                // The unit (and its reply senders) is gone; every queued one fails alike.
                out.into_iter()
                    .map(|(rx, queued)| if queued { Err(why.clone()) } else { Ok(rx) })
                    .collect()
            }
        }
    }

    /// Where the transport delivers transactions that followers forward.
    pub fn submit_inbox(&self) -> crate::forward::SubmitInbox {
        crate::forward::SubmitInbox {
            queue: self.queue.clone(),
            raft: self.raft.clone(),
            node_id: self.id,
        }
    }

    /// Whether this node believes it leads (local view, no quorum round trip).
    pub fn is_leader(&self) -> bool {
        crate::membership::is_leader(&self.raft, self.id)
    }

    pub fn leader_id(&self) -> Option<NodeId> {
        self.raft.metrics().borrow().current_leader
    }

    pub fn metrics(&self) -> ConsensusMetrics {
        let m = self.raft.metrics().borrow().clone();
        ConsensusMetrics {
            node_id: self.id,
            term: m.current_term,
            leader: m.current_leader,
            is_leader: m.state == ServerState::Leader && m.current_leader == Some(self.id),
            commit_index: self.committed.get(),
            last_applied_index: m.last_applied.map(|id| id.index),
            last_log_index: m.last_log_index,
            queue_txs: self.queue.max_capacity() - self.queue.capacity(),
        }
    }

    pub fn node_id(&self) -> NodeId {
        self.id
    }

    pub fn ledger(&self) -> &Arc<Ledger> {
        &self.ledger
    }

    /// The Raft handle: the network layer hands incoming RPCs to it.
    pub fn raft(&self) -> &Raft {
        &self.raft
    }

    /// Stops admitting, lets the block in flight finish, answers what is
    /// still queued with `ShuttingDown`, then stops Raft. Idempotent.
    pub async fn shutdown(&self) -> Result<()> {
        self.stop.send_replace(true);
        let signer = self
            .signer
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        if let Some(signer) = signer {
            // It only signs and sends; nothing to finish.
            signer.abort();
        }
        let forwarder = self
            .forwarder
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        if let Some(f) = forwarder {
            // It stops on the stop signal, answering what it still holds.
            let _ = tokio::time::timeout(self.shutdown_grace, f).await;
        }
        let reconciler = self
            .reconciler
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        if let Some(r) = reconciler {
            // A membership change it started is Raft's to finish or abandon.
            r.abort();
        }
        let producer = self
            .producer
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        let Some(mut producer) = producer else {
            return Ok(());
        };
        // A leader cut off from its quorum never finishes the block in
        // flight; after the grace period stop Raft under it, which fails
        // that proposal and lets the producer end.
        let finished = tokio::time::timeout(self.shutdown_grace, &mut producer).await;
        let stopped = self.raft.shutdown().await;
        let joined = match finished {
            Ok(joined) => joined,
            Err(_) => {
                tracing::warn!("the block in flight did not commit before shutdown");
                producer.await
            }
        };
        if let Err(e) = joined {
            tracing::error!(error = %e, "block producer task failed");
        }
        stopped.map_err(|e| ConsensusError::Raft(format!("raft did not stop cleanly: {e}")))
    }
}

#[derive(Clone, Copy)]
struct Limits {
    txs_max: usize,
    bytes_max: usize,
    /// Proposals in flight at once.
    pipeline: usize,
    /// How long signatures alone wait for a transaction.
    linger: Duration,
}

/// The block producer: drains the queue, verifies, proposes; up to
/// `limits.pipeline` proposals in flight.
async fn produce(
    raft: Raft,
    ledger: Arc<Ledger>,
    mut rx: mpsc::Receiver<Pending>,
    mut stop: watch::Receiver<bool>,
    limits: Limits,
    cosigs: Arc<CosignPool>,
) {
    let inflight = Arc::new(tokio::sync::Semaphore::new(limits.pipeline));
    // A transaction that did not fit the previous block opens the next one.
    let mut carry: Option<Pending> = None;
    loop {
        if *stop.borrow() {
            break;
        }
        let first = match carry.take() {
            Some(p) => Some(p),
            None => tokio::select! {
                biased;
                _ = stop.changed() => break,
                next = rx.recv() => match next {
                    Some(p) => Some(p),
                    None => break,
                },
                // Signatures alone also make a block (one that leaves the tree
                // as it is), but they linger for a transaction to ride with,
                // so a quiet chain does not grow a signature-only block after
                // every transaction block.
                _ = cosigs.arrived.notified() => tokio::select! {
                    biased;
                    _ = stop.changed() => break,
                    next = rx.recv() => match next {
                        Some(p) => Some(p),
                        None => break,
                    },
                    _ = tokio::time::sleep(limits.linger) => None,
                },
            },
        };
        // Wait for room in the pipeline before draining, so the block takes
        // everything that arrived meanwhile.
        let Ok(permit) = inflight.clone().acquire_owned().await else {
            break;
        };
        let batch = drain(&mut rx, first, &mut carry, limits.txs_max, limits.bytes_max);
        let batch = verified(&ledger, batch).await;
        let signatures = cosigs.take();
        if batch.is_empty() && signatures.is_empty() {
            continue;
        }
        propose(&raft, batch, signatures, permit).await;
    }
    rx.close();
    // Let the blocks in flight finish (shutdown bounds the wait).
    let _ = inflight.acquire_many(limits.pipeline as u32).await;
    for p in carry
        .into_iter()
        .chain(std::iter::from_fn(|| rx.try_recv().ok()))
    {
        let _ = p.reply.send(Err(ConsensusError::ShuttingDown));
    }
}

/// `first` and whatever else is queued, up to `txs_max` transactions and
/// `bytes_max` signed bytes; one that would not fit is left in `carry`.
pub(crate) fn drain(
    rx: &mut mpsc::Receiver<Pending>,
    first: Option<Pending>,
    carry: &mut Option<Pending>,
    txs_max: usize,
    bytes_max: usize,
) -> Vec<Pending> {
    let mut bytes = first.as_ref().map_or(0, |p| p.tx.signed_bytes.len());
    let mut batch: Vec<Pending> = first.into_iter().collect();
    while batch.len() < txs_max {
        match rx.try_recv() {
            Ok(p) if bytes.saturating_add(p.tx.signed_bytes.len()) > bytes_max => {
                *carry = Some(p);
                break;
            }
            Ok(p) => {
                bytes += p.tx.signed_bytes.len();
                batch.push(p);
            }
            Err(_) => break,
        }
    }
    batch
}

/// Verifies the batch's signatures (on every core, off the async
/// runtime), answers those that fail, and returns the rest; the ledger's
/// signature cache remembers them, so applying them later costs no second
/// verification on this node.
async fn verified(ledger: &Arc<Ledger>, batch: Vec<Pending>) -> Vec<Pending> {
    if batch.is_empty() {
        return batch;
    }
    let l = ledger.clone();
    let checked = crate::blocking(move || {
        let refs: Vec<&TxFrame> = batch.iter().map(|p| &p.tx).collect();
        let verdicts = l.signatures.verify_for_proposal(&refs);
        (batch, verdicts)
    })
    .await;
    let Ok((batch, verdicts)) = checked else {
        // The blocking pool is gone: the runtime is shutting down, and the
        // batch went with the task.
        return Vec::new();
    };
    let mut good = Vec::with_capacity(batch.len());
    for (p, ok) in batch.into_iter().zip(verdicts) {
        if ok {
            good.push(p);
        } else {
            let refusal = TxOutcomeResponse::refused(
                Some(p.tx.id_hex()),
                RefusalCode::BadSignature,
                "signature does not verify over the signed bytes",
            );
            let _ = p.reply.send(Ok(refusal));
        }
    }
    good
}

/// Hands the proposal to Raft in order and answers its submitters from a
/// task of its own once the block is applied; `permit` is the pipeline slot.
async fn propose(
    raft: &Raft,
    batch: Vec<Pending>,
    cosigs: Vec<ledger::block::Cosignature>,
    permit: tokio::sync::OwnedSemaphorePermit,
) {
    let (txs, replies): (Vec<Vec<u8>>, Vec<_>) = batch
        .into_iter()
        .map(|p| (p.tx.to_bytes(), p.reply))
        .unzip();
    let count = txs.len();
    let proposal = BlockProposal {
        time_ms: crate::clock::now_ms(),
        txs,
        cosigs,
    };
    let rx = match raft.client_write_ff(proposal).await {
        Ok(rx) => rx,
        Err(fatal) => {
            let failure = ConsensusError::from(fatal);
            tracing::warn!(error = %failure, txs = count, "block proposal failed");
            for reply in replies {
                let _ = reply.send(Err(failure.clone()));
            }
            return;
        }
    };
    tokio::spawn(async move {
        let failure = match rx.await {
            Ok(Ok(resp)) if resp.data.outcomes.len() == count => {
                if let Some(b) = &resp.data.block {
                    tracing::debug!(height = b.height, txs = count, "block committed");
                }
                for (reply, outcome) in replies.into_iter().zip(resp.data.outcomes) {
                    // A submitter that stopped waiting is no error.
                    let _ = reply.send(Ok(outcome));
                }
                drop(permit);
                return;
            }
            Ok(Ok(resp)) => ConsensusError::Raft(format!(
                "internal: {count} transactions proposed, {} outcomes applied",
                resp.data.outcomes.len()
            )),
            Ok(Err(ClientWriteError::ForwardToLeader(f))) => ConsensusError::NotLeader {
                leader: f.leader_id,
            },
            Ok(Err(e)) => ConsensusError::Raft(e.to_string()),
            Err(_) => ConsensusError::ShuttingDown,
        };
        drop(permit);
        tracing::warn!(error = %failure, txs = count, "block proposal failed");
        for reply in replies {
            let _ = reply.send(Err(failure.clone()));
        }
    });
}
