//! Submissions that reach a follower travel to the leader over the
//! validators' own p2p connections, in batches.
//!
//! A follower's [`crate::ConsensusNode::submit`] queues the transaction for
//! the forwarder task, which drains whatever is queued (up to the block
//! limits), sends it to the current leader as one request and hands each
//! submitter the leader's answer: the transaction's outcome once its block
//! is applied, or why it was not taken (`NotLeader`, `QueueFull`, …).
//! Several batches may be in flight, so a slow round does not stall the
//! next one. Compared with one HTTP request per transaction, the leader
//! handles one message per batch, and no transaction crosses HTTP twice.
//!
//! The leader side is [`SubmitInbox`]: it queues a forwarded batch exactly
//! as local submissions are queued and answers when every outcome is known.

use std::sync::Arc;
use std::time::Duration;

use openraft::network::RPCOption;
use tokio::sync::{mpsc, watch, Semaphore};

use crate::error::{ConsensusError, Result};
use crate::network::Transport;
use crate::node::Pending;
use crate::types::{NodeId, Raft, TxOutcomeResponse};

/// One submission call's transactions, forwarded whole and in order, with
/// their room in the follower's bound on transactions being forwarded.
pub(crate) struct ForwardUnit {
    pub(crate) txs: Vec<Pending>,
    pub(crate) room: tokio::sync::OwnedSemaphorePermit,
}

/// What the leader answers for one forwarded transaction.
pub type ForwardedOutcome = std::result::Result<TxOutcomeResponse, ConsensusError>;

/// Forwarded batches in flight at once from one follower.
pub const FORWARD_INFLIGHT_MAX: usize = 8;
/// How long a follower waits for the leader's answer to a batch: the
/// leader's own commit wait, with room for a slow round.
pub const FORWARD_TIMEOUT_MS: u64 = 30_000;

/// Where the transport hands transactions that followers forwarded.
#[derive(Clone)]
pub struct SubmitInbox {
    pub(crate) queue: mpsc::Sender<Pending>,
    pub(crate) raft: Raft,
    pub(crate) node_id: NodeId,
}

impl SubmitInbox {
    /// Queues `frames` (transaction frames or JSON wires) for this node's
    /// next blocks if it leads, and waits for every outcome.
    pub async fn receive(&self, frames: Vec<Vec<u8>>) -> Vec<ForwardedOutcome> {
        if !crate::membership::is_leader(&self.raft, self.node_id) {
            let leader = self.raft.metrics().borrow().current_leader;
            return frames
                .iter()
                .map(|_| Err(ConsensusError::NotLeader { leader }))
                .collect();
        }
        let waits: Vec<_> = frames
            .into_iter()
            .map(|f| crate::node::enqueue(&self.queue, f))
            .collect();
        let mut out = Vec::with_capacity(waits.len());
        for w in waits {
            out.push(match w {
                Ok(rx) => rx.await.unwrap_or(Err(ConsensusError::ShuttingDown)),
                Err(e) => Err(e),
            });
        }
        out
    }
}

/// The follower's forwarding loop: batches from `rx` to the leader.
/// `local` is this node's own inbox (its Raft, queue and id): a batch whose
/// leader turns out to be this node goes there.
pub(crate) async fn run_forwarder<T: Transport>(
    local: SubmitInbox,
    ledger: Arc<ledger::Ledger>,
    transport: Arc<T>,
    mut rx: mpsc::Receiver<ForwardUnit>,
    mut stop: watch::Receiver<bool>,
    batch_txs_max: usize,
    batch_bytes_max: usize,
) {
    let raft = local.raft.clone();
    let inflight = Arc::new(Semaphore::new(FORWARD_INFLIGHT_MAX));
    let mut carry: Option<ForwardUnit> = None;
    loop {
        let first = match carry.take() {
            Some(p) => p,
            None => tokio::select! {
                biased;
                _ = stop.changed() => break,
                next = rx.recv() => match next {
                    Some(p) => p,
                    None => break,
                },
            },
        };
        let (batch, room) = drain_units(&mut rx, first, &mut carry, batch_txs_max, batch_bytes_max);
        let Ok(permit) = inflight.clone().acquire_owned().await else {
            break;
        };
        let raft = raft.clone();
        let ledger = ledger.clone();
        let local = local.clone();
        let transport = transport.clone();
        tokio::spawn(async move {
            forward_batch(&raft, &ledger, &local, transport.as_ref(), batch).await;
            drop((permit, room));
        });
    }
    rx.close();
    for p in carry
        .into_iter()
        .chain(std::iter::from_fn(|| rx.try_recv().ok()))
        .flat_map(|u| u.txs)
    {
        let _ = p.reply.send(Err(ConsensusError::ShuttingDown));
    }
}

/// Units (each one submission call's transactions, kept whole) up to the
/// limits, with their room; the first unit goes even if it alone exceeds them.
fn drain_units(
    rx: &mut mpsc::Receiver<ForwardUnit>,
    first: ForwardUnit,
    carry: &mut Option<ForwardUnit>,
    txs_max: usize,
    bytes_max: usize,
) -> (Vec<Pending>, Vec<tokio::sync::OwnedSemaphorePermit>) {
    let size = |u: &[Pending]| u.iter().map(|p| p.tx.signed_bytes.len()).sum::<usize>();
    let mut bytes = size(&first.txs);
    let mut batch = first.txs;
    let mut room = vec![first.room];
    while batch.len() < txs_max {
        match rx.try_recv() {
            Ok(u) if batch.len() + u.txs.len() > txs_max || bytes + size(&u.txs) > bytes_max => {
                *carry = Some(u);
                break;
            }
            Ok(u) => {
                bytes += size(&u.txs);
                batch.extend(u.txs);
                room.push(u.room);
            }
            Err(_) => break,
        }
    }
    (batch, room)
}

/// How long a failed or refused round waits for the leadership to move
/// before asking the current leader again.
const RETRY_PAUSE_MS: u64 = 250;
/// How long an answer of `replayed` on a retry may wait for this node to
/// apply the block an earlier attempt committed the transaction in.
const REPLAYED_LOOKUP_MS: u64 = 2_000;

/// The leader and its address as this node knows them now.
fn current_leader(raft: &Raft) -> Option<(NodeId, openraft::BasicNode)> {
    leader_in(&raft.metrics().borrow())
}

/// The leader these metrics name, if its address is in their membership:
/// right after a membership change that removed it, a leader may still be
/// named while no config holds it.
fn leader_in(
    m: &openraft::RaftMetrics<NodeId, openraft::BasicNode>,
) -> Option<(NodeId, openraft::BasicNode)> {
    let leader = m.current_leader?;
    let node = m
        .membership_config
        .membership()
        .get_node(&leader)
        .cloned()?;
    Some((leader, node))
}

/// Resolves once this node's view of the leader is no longer `leader`.
async fn leadership_moves_from(raft: &Raft, leader: NodeId) {
    let mut m = raft.metrics();
    loop {
        if m.borrow().current_leader != Some(leader) {
            return;
        }
        if m.changed().await.is_err() {
            return std::future::pending().await;
        }
    }
}

/// Waits (at most `wait`) for a leader other than `avoid`; then whichever
/// leader is known, if any.
async fn next_leader(
    raft: &Raft,
    avoid: Option<NodeId>,
    wait: Duration,
) -> Option<(NodeId, openraft::BasicNode)> {
    let mut m = raft.metrics();
    // Only a leader that can be asked counts: one named without an address
    // would send the caller straight back here, a busy loop until the
    // deadline (the simulator found it: every other task starved).
    let moved = async {
        loop {
            let l = leader_in(&m.borrow()).map(|(id, _)| id);
            if l.is_some() && l != avoid {
                return;
            }
            if m.changed().await.is_err() {
                return std::future::pending().await;
            }
        }
    };
    let _ = tokio::time::timeout(wait, moved).await;
    current_leader(raft)
}

/// Asks the leader, and keeps asking the leader of the moment until an
/// answer or the deadline: a leader that stops answering (paused, cut off)
/// or that lost its leadership costs about one election, not the whole
/// wait. Resending is safe: the tx id is the key, and a transaction an
/// earlier round committed comes back `replayed` (see [`forward_batch`]).
async fn ask_leaders<T: Transport>(
    raft: &Raft,
    local: &SubmitInbox,
    transport: &T,
    frames: &[Vec<u8>],
    deadline: tokio::time::Instant,
) -> (Result<Vec<ForwardedOutcome>>, bool) {
    let count = frames.len();
    let mut asked: Option<NodeId> = None;
    let mut rounds = 0u32;
    loop {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        let wait = if rounds > 0 {
            Duration::from_millis(RETRY_PAUSE_MS)
        } else {
            Duration::ZERO
        };
        let Some((leader, node)) = next_leader(raft, asked, wait.min(left)).await else {
            // No leader known (an election): wait for one, within the deadline.
            if left.is_zero() {
                return (Err(ConsensusError::NotLeader { leader: None }), rounds > 0);
            }
            asked = None;
            rounds += 1;
            continue;
        };
        // Past the deadline, `sleep_until` below answers at once.
        let option = RPCOption::new(left);
        // This node may have become the leader while the batch waited.
        let ask = async {
            if leader == local.node_id {
                Ok(local.receive(frames.to_vec()).await)
            } else {
                transport
                    .submit(leader, &node, frames.to_vec(), option)
                    .await
            }
        };
        // Biased, so a seeded simulation replays exactly; an answer that is
        // in also wins over a deadline passing at the same instant.
        let answer = tokio::select! {
            biased;
            a = ask => Some(a),
            _ = leadership_moves_from(raft, leader) => None,
            _ = tokio::time::sleep_until(deadline) => Some(Err("timed out".into())),
        };
        let retry = match &answer {
            // Another node leads now: ask it (the old round is dropped).
            None => true,
            Some(Ok(a)) => {
                a.len() == count
                    && a.iter()
                        .all(|x| matches!(x, Err(ConsensusError::NotLeader { .. })))
            }
            Some(Err(_)) => true,
        };
        let time_left =
            tokio::time::Instant::now() + Duration::from_millis(RETRY_PAUSE_MS) < deadline;
        if retry && time_left {
            tracing::debug!(
                leader,
                round = rounds,
                "forwarding again, to the leader of the moment"
            );
            asked = Some(leader);
            rounds += 1;
            continue;
        }
        let result = match answer {
            None => Err(ConsensusError::NotLeader { leader: None }),
            Some(Err(why)) => Err(ConsensusError::Raft(format!(
                "forwarding to node {leader}: {why}"
            ))),
            Some(Ok(a)) if a.len() == count => Ok(a),
            Some(Ok(a)) => Err(ConsensusError::Raft(format!(
                "node {leader} answered {} of {count} forwarded transactions",
                a.len()
            ))),
        };
        return (result, rounds > 0);
    }
}

/// On a retried round, `replayed` means an earlier round committed the
/// transaction: answer where, once this node has applied that block.
async fn resolve_replayed(
    ledger: &ledger::Ledger,
    id: &[u8; 32],
    a: ForwardedOutcome,
) -> ForwardedOutcome {
    let replayed = matches!(
        &a,
        Ok(TxOutcomeResponse {
            result: crate::types::TxResult::Refused {
                code: ledger::RefusalCode::Replayed,
                ..
            },
            ..
        })
    );
    if !replayed {
        return a;
    }
    let until = tokio::time::Instant::now() + Duration::from_millis(REPLAYED_LOOKUP_MS);
    while tokio::time::Instant::now() < until {
        if let Ok(Some(loc)) = ledger::history::read_tx(&ledger.store, id) {
            return Ok(TxOutcomeResponse::committed(Some(hex::encode(id)), &loc));
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    a
}

async fn forward_batch<T: Transport>(
    raft: &Raft,
    ledger: &ledger::Ledger,
    local: &SubmitInbox,
    transport: &T,
    batch: Vec<Pending>,
) {
    let deadline = tokio::time::Instant::now() + Duration::from_millis(FORWARD_TIMEOUT_MS);
    let ids: Vec<[u8; 32]> = batch.iter().map(|p| p.tx.id).collect();
    let (frames, replies): (Vec<Vec<u8>>, Vec<_>) = batch
        .into_iter()
        .map(|p| (p.tx.to_bytes(), p.reply))
        .unzip();
    let count = frames.len();
    let (answers, retried) = ask_leaders(raft, local, transport, &frames, deadline).await;
    match answers {
        Ok(answers) => {
            for ((r, a), id) in replies.into_iter().zip(answers).zip(&ids) {
                let a = if retried {
                    resolve_replayed(ledger, id, a).await
                } else {
                    a
                };
                let _ = r.send(a);
            }
        }
        Err(e) => {
            tracing::debug!(error = %e, txs = count, "forwarding failed");
            for r in replies {
                let _ = r.send(Err(e.clone()));
            }
        }
    }
}
