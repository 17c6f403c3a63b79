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
pub(crate) async fn run_forwarder<T: Transport>(
    raft: Raft,
    transport: Arc<T>,
    mut rx: mpsc::Receiver<ForwardUnit>,
    mut stop: watch::Receiver<bool>,
    batch_txs_max: usize,
    batch_bytes_max: usize,
) {
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
        let transport = transport.clone();
        tokio::spawn(async move {
            forward_batch(&raft, transport.as_ref(), batch).await;
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

async fn forward_batch<T: Transport>(raft: &Raft, transport: &T, batch: Vec<Pending>) {
    let (leader, node) = {
        let m = raft.metrics();
        let m = m.borrow();
        let leader = m.current_leader;
        let node = leader.and_then(|l| m.membership_config.membership().get_node(&l).cloned());
        (leader, node)
    };
    let (frames, replies): (Vec<Vec<u8>>, Vec<_>) = batch
        .into_iter()
        .map(|p| (p.tx.to_bytes(), p.reply))
        .unzip();
    let (Some(leader), Some(node)) = (leader, node) else {
        for r in replies {
            let _ = r.send(Err(ConsensusError::NotLeader { leader }));
        }
        return;
    };
    let count = frames.len();
    let option = RPCOption::new(Duration::from_millis(FORWARD_TIMEOUT_MS));
    let answers: Result<Vec<ForwardedOutcome>> = transport
        .submit(leader, &node, frames, option)
        .await
        .map_err(|why| ConsensusError::Raft(format!("forwarding to node {leader}: {why}")))
        .and_then(|a| {
            if a.len() == count {
                Ok(a)
            } else {
                Err(ConsensusError::Raft(format!(
                    "node {leader} answered {} of {count} forwarded transactions",
                    a.len()
                )))
            }
        });
    match answers {
        Ok(answers) => {
            for (r, a) in replies.into_iter().zip(answers) {
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
