//! Raft membership follows the ledger's validator set.
//!
//! The ledger is the source of truth: `validator.add` / `validator.remove`
//! records (signed by the provincial regulator) change the validator set from
//! the next block on (`ledger::seal`). Every node watches the set it has
//! applied and hands it to its network (who may connect); the leader also
//! moves Raft's membership to it — new members join as learners first, then
//! one `change_membership` call, which openraft runs as joint consensus, so
//! there is never a moment where two disjoint majorities could decide.
//! Reconciling is idempotent and retried, so a leader change half-way
//! through only delays it.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use ledger::seal;
use ledger::spec::Validator;
use ledger::Ledger;
use openraft::{BasicNode, ServerState};
use tokio::sync::watch;

use crate::types::{NodeId, Raft};

/// How often the set is compared when nothing was applied.
const RECONCILE_MS: u64 = 1_000;
/// How long a new member may take to catch up as a learner.
const LEARNER_CATCH_UP_MS: u64 = 60_000;
/// How long one membership change may take to commit.
const CHANGE_MS: u64 = 30_000;

/// Told every validator set this node applies (the network's allow-list).
pub type ValidatorSetListener = Box<dyn Fn(&[Validator]) + Send + Sync>;

/// The set in force for the next block, per this node's ledger.
fn next_set(ledger: &Ledger) -> Option<Vec<Validator>> {
    let head = ledger.head().ok()?;
    seal::validator_set_at(&ledger.store, head.height + 1).ok()
}

/// Notices when this node leaves or re-enters the validator set: a node
/// the set no longer names stops campaigning (the others no longer send it
/// the log, so it would otherwise start election after election, each
/// refused), and says so; `validator.add` of it again lets it campaign.
fn follow_own_membership(
    raft: &Raft,
    node_id: NodeId,
    set: &[Validator],
    was_member: &mut bool,
    removed: &std::sync::atomic::AtomicBool,
) {
    use std::sync::atomic::Ordering;
    let member = set.iter().any(|v| v.node_id == node_id);
    if member {
        *was_member = true;
        if removed.swap(false, Ordering::Relaxed) {
            raft.runtime_config().elect(true);
            tracing::info!(node_id, "this node is a validator again; it may campaign");
        }
    } else if *was_member && !removed.swap(true, Ordering::Relaxed) {
        raft.runtime_config().elect(false);
        tracing::warn!(
            node_id,
            "this node was removed from the validator set (validator.remove): it no longer campaigns; stop it, or add it again with validator.add"
        );
    }
}

pub(crate) async fn run_reconciler(
    raft: Raft,
    ledger: Arc<Ledger>,
    node_id: NodeId,
    removed: Arc<std::sync::atomic::AtomicBool>,
    listener: Arc<OnceLock<ValidatorSetListener>>,
    mut applied: watch::Receiver<u64>,
    mut stop: watch::Receiver<bool>,
) {
    let mut told: Option<Vec<Validator>> = None;
    // A genesis validator was a member from the start; one that joined later
    // becomes one when a set names it.
    let mut was_member = ledger.spec.validators.iter().any(|v| v.node_id == node_id);
    loop {
        tokio::select! {
            biased;
            _ = stop.changed() => break,
            changed = applied.changed() => if changed.is_err() { break },
            _ = tokio::time::sleep(Duration::from_millis(RECONCILE_MS)) => {}
        }
        if *stop.borrow() {
            break;
        }
        applied.borrow_and_update();
        let l = ledger.clone();
        let Ok(Some(set)) = crate::spawn_blocking(move || next_set(&l)).await else {
            continue;
        };
        if set.is_empty() {
            // A chain without validators (a bare single node) has no membership to follow.
            continue;
        }
        follow_own_membership(&raft, node_id, &set, &mut was_member, &removed);
        if told.as_ref() != Some(&set) {
            if let Some(f) = listener.get() {
                f(&set);
                told = Some(set.clone());
            }
        }
        if is_leader(&raft, node_id) {
            if let Err(why) = reconcile(&raft, &ledger, &set).await {
                tracing::warn!(%why, "raft membership does not follow the validator set yet; retrying");
            }
        }
    }
}

/// Whether `node_id` believes it leads, from Raft's metrics (local view, no
/// quorum round trip).
pub(crate) fn is_leader(raft: &Raft, node_id: NodeId) -> bool {
    let m = raft.metrics();
    let m = m.borrow();
    m.state == ServerState::Leader && m.current_leader == Some(node_id)
}

/// One step toward Raft voters == the ledger's validator set.
async fn reconcile(raft: &Raft, ledger: &Ledger, set: &[Validator]) -> Result<(), String> {
    let target: BTreeSet<NodeId> = set.iter().map(|v| v.node_id).collect();
    let (voters, known): (BTreeSet<NodeId>, BTreeMap<NodeId, BasicNode>) = {
        let m = raft.metrics();
        let m = m.borrow();
        let membership = m.membership_config.membership();
        (
            membership.voter_ids().collect(),
            membership.nodes().map(|(id, n)| (*id, n.clone())).collect(),
        )
    };
    if voters == target {
        return Ok(());
    }
    for id in target.iter().filter(|id| !known.contains_key(id)) {
        let addr = seal::validator_address(&ledger.store, *id)
            .map_err(|e| e.to_string())?
            .ok_or_else(|| format!("node {id} has no recorded address"))?;
        tracing::info!(node = id, %addr, "adding a validator as a learner");
        let added = tokio::time::timeout(
            Duration::from_millis(LEARNER_CATCH_UP_MS),
            raft.add_learner(*id, BasicNode::new(addr), true),
        )
        .await;
        match added {
            Ok(Ok(_)) => {}
            Ok(Err(e)) => return Err(format!("adding learner {id}: {e}")),
            Err(_) => return Err(format!("learner {id} did not catch up in time")),
        }
    }
    tracing::info!(from = ?voters, to = ?target, "changing raft membership (joint consensus)");
    let changed = tokio::time::timeout(
        Duration::from_millis(CHANGE_MS),
        raft.change_membership(target.clone(), false),
    )
    .await;
    match changed {
        Ok(Ok(_)) => {
            tracing::info!(voters = ?target, "raft membership follows the validator set");
            Ok(())
        }
        Ok(Err(e)) => Err(format!("changing membership: {e}")),
        Err(_) => Err("membership change did not commit in time".into()),
    }
}
