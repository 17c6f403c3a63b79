//! An in-memory [`Transport`] for tests: a router that hands each RPC straight
//! to the target's [`Raft`] handle, under a seeded fault plan.
//!
//! The plan loses a fraction of messages (requests and, separately, responses:
//! a lost response means the peer *did* act on the request, which is the case
//! Raft has to survive), delays each delivered message by a bounded random
//! time (so messages overtake each other), delivers some requests twice,
//! and splits the nodes into partitions that cannot reach each other until
//! [`MemRouter::heal`]. Random choices come from one SplitMix64 stream
//! seeded by the plan, so a plan is reproducible as far as the order in which
//! Raft's tasks send is. On a multi-threaded runtime the scheduler decides
//! that order; on the simulator's one thread (`tests/sim`) it is fixed
//! too, and a seed replays exactly.
//!
//! Everything is bounded: registered nodes ([`MEM_NODES_MAX`]), RPCs in flight
//! ([`MEM_INFLIGHT_MAX`]), and delay ([`MEM_DELAY_MAX_MS`]). Every delivery also
//! honours openraft's hard TTL, so a delayed message becomes a `Timeout`,
//! never a hang.

use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use openraft::error::{
    InstallSnapshotError, NetworkError, RPCError, RaftError, RemoteError, Timeout, Unreachable,
};
use openraft::network::{RPCOption, RPCTypes};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, InstallSnapshotRequest, InstallSnapshotResponse,
    VoteRequest, VoteResponse,
};
use openraft::BasicNode;
use tokio::sync::Semaphore;

use crate::error::{ConsensusError, Result};
use crate::network::{RpcResult, Transport};
use crate::types::{NodeId, Raft};

/// Nodes one router connects.
pub const MEM_NODES_MAX: usize = 64;
/// RPCs in flight across the router; beyond this a send fails as unreachable
/// (Raft backs off), as an overloaded NIC would.
pub const MEM_INFLIGHT_MAX: usize = 4_096;
/// The longest delay a plan may ask for.
pub const MEM_DELAY_MAX_MS: u64 = 10_000;

/// What the network does to messages. `Default` is a perfect network.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct FaultPlan {
    pub seed: u64,
    /// Messages lost, per thousand, decided separately for the request and
    /// for the response (0 = none, 1000 = all).
    pub drop_per_mille: u16,
    /// Each delivered request waits a uniform time in `delay_min_ms..=delay_max_ms`.
    pub delay_min_ms: u64,
    pub delay_max_ms: u64,
    /// Raft requests delivered twice, per thousand: the copy arrives after a
    /// further delay of the same range and its answer is discarded, as a
    /// retransmitted packet's would be.
    pub duplicate_per_mille: u16,
}

impl FaultPlan {
    fn validate(&self) -> Result<()> {
        if self.drop_per_mille > 1_000 || self.duplicate_per_mille > 1_000 {
            return Err(ConsensusError::Config(format!(
                "drop_per_mille and duplicate_per_mille must be 0..=1000, not {} and {}",
                self.drop_per_mille, self.duplicate_per_mille
            )));
        }
        if self.delay_min_ms > self.delay_max_ms || self.delay_max_ms > MEM_DELAY_MAX_MS {
            return Err(ConsensusError::Config(format!(
                "delay must satisfy min <= max <= {MEM_DELAY_MAX_MS} ms, not {}..={} ms",
                self.delay_min_ms, self.delay_max_ms
            )));
        }
        Ok(())
    }
}

/// What the router did so far; tests check that faults really happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct MemNetStats {
    pub delivered: u64,
    pub dropped: u64,
    /// Refused because sender and target are in different partitions, or one is not registered.
    pub unreachable: u64,
    pub timed_out: u64,
    /// Requests delivered a second time.
    pub duplicated: u64,
}

use crate::simulation::SplitMix64;

struct RouterState {
    nodes: BTreeMap<NodeId, Raft>,
    inboxes: BTreeMap<NodeId, crate::cosign::CosignInbox>,
    submissions: BTreeMap<NodeId, crate::forward::SubmitInbox>,
    /// Partition of each node; a node without an entry is in partition 0.
    partition: BTreeMap<NodeId, usize>,
    plan: FaultPlan,
    rng: SplitMix64,
    stats: MemNetStats,
}

impl RouterState {
    fn connected(&self, a: NodeId, b: NodeId) -> bool {
        let group = |n| self.partition.get(&n).copied().unwrap_or(0);
        self.nodes.contains_key(&a) && self.nodes.contains_key(&b) && group(a) == group(b)
    }

    fn lose(&mut self) -> bool {
        let p = u64::from(self.plan.drop_per_mille);
        p > 0 && self.rng.range(0, 999) < p
    }

    fn duplicate(&mut self) -> bool {
        let p = u64::from(self.plan.duplicate_per_mille);
        p > 0 && self.rng.range(0, 999) < p
    }

    fn delay(&mut self) -> Duration {
        let (lo, hi) = (self.plan.delay_min_ms, self.plan.delay_max_ms);
        Duration::from_millis(self.rng.range(lo, hi))
    }
}

/// The in-memory network. Cheap to clone; all clones are the same network.
#[derive(Clone)]
pub struct MemRouter {
    state: Arc<Mutex<RouterState>>,
    inflight: Arc<Semaphore>,
}

impl MemRouter {
    pub fn new(plan: FaultPlan) -> Result<Self> {
        plan.validate()?;
        Ok(Self {
            state: Arc::new(Mutex::new(RouterState {
                nodes: BTreeMap::new(),
                inboxes: BTreeMap::new(),
                submissions: BTreeMap::new(),
                partition: BTreeMap::new(),
                plan,
                rng: SplitMix64(plan.seed),
                stats: MemNetStats::default(),
            })),
            inflight: Arc::new(Semaphore::new(MEM_INFLIGHT_MAX)),
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, RouterState> {
        // A test that panicked while holding the lock must not wedge the others.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The transport `from` sends through: give it to that node's `ConsensusNode::start`.
    pub fn transport(&self, from: NodeId) -> MemTransport {
        MemTransport {
            router: self.clone(),
            from,
        }
    }

    /// Connects a started node: RPCs to `id` now reach `raft`.
    pub fn register(&self, id: NodeId, raft: Raft) -> Result<()> {
        let mut st = self.lock();
        if !st.nodes.contains_key(&id) && st.nodes.len() >= MEM_NODES_MAX {
            return Err(ConsensusError::Config(format!(
                "a memory network connects at most {MEM_NODES_MAX} nodes"
            )));
        }
        st.nodes.insert(id, raft);
        Ok(())
    }

    /// Connects a started node's checkpoint-signature inbox.
    pub fn register_inbox(&self, id: NodeId, inbox: crate::cosign::CosignInbox) {
        self.lock().inboxes.insert(id, inbox);
    }

    /// Connects a started node's inbox for forwarded transactions.
    pub fn register_submit_inbox(&self, id: NodeId, inbox: crate::forward::SubmitInbox) {
        self.lock().submissions.insert(id, inbox);
    }

    /// Disconnects a node, as if it crashed: it neither sends nor receives.
    pub fn unregister(&self, id: NodeId) {
        let mut st = self.lock();
        st.nodes.remove(&id);
        st.inboxes.remove(&id);
        st.submissions.remove(&id);
    }

    /// Splits the network: each listed set becomes its own partition, and
    /// every node not listed forms one more. Replaces any earlier split.
    pub fn partition(&self, sets: &[&[NodeId]]) {
        let mut st = self.lock();
        st.partition.clear();
        for (i, set) in sets.iter().enumerate() {
            for &n in set.iter() {
                st.partition.insert(n, i + 1);
            }
        }
    }

    /// Removes every partition.
    pub fn heal(&self) {
        self.lock().partition.clear();
    }

    /// Replaces the loss and delay settings (and reseeds), keeping partitions.
    pub fn set_plan(&self, plan: FaultPlan) -> Result<()> {
        plan.validate()?;
        let mut st = self.lock();
        st.plan = plan;
        st.rng = SplitMix64(plan.seed);
        Ok(())
    }

    pub fn stats(&self) -> MemNetStats {
        self.lock().stats
    }

    /// The nodes that `id` can currently reach (not itself).
    pub fn reachable_from(&self, id: NodeId) -> BTreeSet<NodeId> {
        let st = self.lock();
        st.nodes
            .keys()
            .copied()
            .filter(|&n| n != id && st.connected(id, n))
            .collect()
    }

    async fn deliver<Resp, E, F, Fut>(
        &self,
        from: NodeId,
        target: NodeId,
        action: RPCTypes,
        option: &RPCOption,
        call: F,
    ) -> RpcResult<Resp, E>
    where
        E: std::error::Error + Send + 'static,
        Resp: Send + 'static,
        F: Fn(Raft) -> Fut,
        Fut: Future<Output = std::result::Result<Resp, RaftError<NodeId, E>>> + Send + 'static,
    {
        let Ok(_permit) = self.inflight.try_acquire() else {
            return Err(unreachable(target, "too many RPCs in flight"));
        };
        // Decide the message's fate under the lock, then deliver without it.
        let (raft, delay, copy_delay) = {
            let mut st = self.lock();
            if !st.connected(from, target) {
                st.stats.unreachable += 1;
                return Err(unreachable(target, "partitioned or down"));
            }
            if st.lose() {
                st.stats.dropped += 1;
                return Err(lost(target, "request lost"));
            }
            let delay = st.delay();
            let copy_delay = st.duplicate().then(|| delay + st.delay());
            let Some(raft) = st.nodes.get(&target).cloned() else {
                return Err(unreachable(target, "not registered"));
            };
            (raft, delay, copy_delay)
        };
        if let Some(copy_delay) = copy_delay {
            // The copy holds a slot of its own, so duplicates stay bounded too.
            if let Ok(slot) = self.inflight.clone().try_acquire_owned() {
                self.lock().stats.duplicated += 1;
                let copy = call(raft.clone());
                tokio::spawn(async move {
                    tokio::time::sleep(copy_delay).await;
                    let _ = copy.await;
                    drop(slot);
                });
            }
        }
        let ttl = option.hard_ttl();
        let sent = tokio::time::timeout(ttl, async move {
            tokio::time::sleep(delay).await;
            call(raft).await
        })
        .await;
        let mut st = self.lock();
        let answer = match sent {
            Err(_) => {
                st.stats.timed_out += 1;
                return Err(RPCError::Timeout(Timeout {
                    action,
                    id: from,
                    target,
                    timeout: ttl,
                }));
            }
            Ok(answer) => answer,
        };
        // A partition raised while the request was in flight eats the response.
        if !st.connected(from, target) {
            st.stats.unreachable += 1;
            return Err(unreachable(target, "partitioned while in flight"));
        }
        if st.lose() {
            st.stats.dropped += 1;
            return Err(lost(target, "response lost"));
        }
        st.stats.delivered += 1;
        answer.map_err(|e| RPCError::RemoteError(RemoteError::new(target, e)))
    }
}

fn unreachable<E: std::error::Error>(target: NodeId, why: &str) -> RPCError<NodeId, BasicNode, E> {
    let e = std::io::Error::new(
        std::io::ErrorKind::NotConnected,
        format!("node {target}: {why}"),
    );
    RPCError::Unreachable(Unreachable::new(&e))
}

fn lost<E: std::error::Error>(target: NodeId, why: &str) -> RPCError<NodeId, BasicNode, E> {
    let e = std::io::Error::new(
        std::io::ErrorKind::TimedOut,
        format!("node {target}: {why}"),
    );
    RPCError::Network(NetworkError::new(&e))
}

/// One node's side of a [`MemRouter`].
#[derive(Clone)]
pub struct MemTransport {
    router: MemRouter,
    from: NodeId,
}

impl MemTransport {
    /// Gives a message to `target` the fate of a Raft message (partitions,
    /// loss, delay); the caller then hands it to the target's inbox.
    async fn reach(&self, target: NodeId, option: &RPCOption) -> Result<(), String> {
        self.router
            .deliver::<(), openraft::error::Infallible, _, _>(
                self.from,
                target,
                RPCTypes::AppendEntries,
                option,
                |_raft| async move { Ok(()) },
            )
            .await
            .map_err(|e| e.to_string())
    }
}

impl Transport for MemTransport {
    async fn append_entries(
        &self,
        target: NodeId,
        _node: &BasicNode,
        rpc: AppendEntriesRequest<crate::types::TypeConfig>,
        option: RPCOption,
    ) -> RpcResult<AppendEntriesResponse<NodeId>> {
        self.router
            .deliver(
                self.from,
                target,
                RPCTypes::AppendEntries,
                &option,
                move |raft| {
                    let rpc = rpc.clone();
                    async move { raft.append_entries(rpc).await }
                },
            )
            .await
    }

    async fn install_snapshot(
        &self,
        target: NodeId,
        _node: &BasicNode,
        rpc: InstallSnapshotRequest<crate::types::TypeConfig>,
        option: RPCOption,
    ) -> RpcResult<InstallSnapshotResponse<NodeId>, InstallSnapshotError> {
        self.router
            .deliver(
                self.from,
                target,
                RPCTypes::InstallSnapshot,
                &option,
                move |raft| {
                    let rpc = rpc.clone();
                    async move { raft.install_snapshot(rpc).await }
                },
            )
            .await
    }

    async fn vote(
        &self,
        target: NodeId,
        _node: &BasicNode,
        rpc: VoteRequest<NodeId>,
        option: RPCOption,
    ) -> RpcResult<VoteResponse<NodeId>> {
        self.router
            .deliver(self.from, target, RPCTypes::Vote, &option, move |raft| {
                let rpc = rpc.clone();
                async move { raft.vote(rpc).await }
            })
            .await
    }

    async fn cosign(
        &self,
        target: NodeId,
        _node: &BasicNode,
        signature: ledger::block::Cosignature,
        option: RPCOption,
    ) -> Result<(), String> {
        let inbox = self.router.lock().inboxes.get(&target).cloned();
        let Some(inbox) = inbox else {
            return Err(format!("node {target}: no inbox registered"));
        };
        self.reach(target, &option).await?;
        inbox.receive(signature)
    }

    async fn submit(
        &self,
        target: NodeId,
        _node: &BasicNode,
        txs: Vec<Vec<u8>>,
        option: RPCOption,
    ) -> Result<Vec<crate::ForwardedOutcome>, String> {
        let inbox = self.router.lock().submissions.get(&target).cloned();
        let Some(inbox) = inbox else {
            return Err(format!("node {target}: no submission inbox registered"));
        };
        self.reach(target, &option).await?;
        Ok(inbox.receive(txs).await)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plans_are_bounded() {
        let bad_drop = FaultPlan {
            drop_per_mille: 1_001,
            ..Default::default()
        };
        assert!(MemRouter::new(bad_drop).is_err());
        let bad_delay = FaultPlan {
            delay_min_ms: 5,
            delay_max_ms: 4,
            ..Default::default()
        };
        assert!(MemRouter::new(bad_delay).is_err());
        let too_slow = FaultPlan {
            delay_max_ms: MEM_DELAY_MAX_MS + 1,
            ..Default::default()
        };
        assert!(MemRouter::new(too_slow).is_err());
    }
}
