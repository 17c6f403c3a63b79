//! Three validators over the in-memory faulty network: replication, a
//! minority partition that commits nothing, healing, and no acknowledged
//! transaction lost. Every wait is a poll with a deadline.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use consensus::{ConsensusNode, FaultPlan, MemRouter, TxOutcomeResponse, TxResult};
use genesis::KeyFile;
use ledger::{Ledger, RefusalCode};
use openraft::BasicNode;

const IDS: [u64; 3] = [1, 2, 3];
const WAIT: Duration = Duration::from_secs(30);

struct Cluster {
    router: MemRouter,
    nodes: BTreeMap<u64, ConsensusNode>,
    root: KeyFile,
    spec: ledger::spec::ChainSpec,
    dirs: BTreeMap<u64, tempfile::TempDir>,
    keys: Vec<KeyFile>,
}

impl Cluster {
    async fn start(plan: FaultPlan) -> Self {
        let (spec, root, keys) = common::cluster_spec(IDS.len() as u64);
        let router = MemRouter::new(plan).expect("plan is valid");
        let mut nodes = BTreeMap::new();
        let mut dirs = BTreeMap::new();
        for id in IDS {
            let dir = tempfile::tempdir().expect("temp dir");
            let ledger = common::open_ledger(dir.path(), spec.clone(), false);
            let transport = Arc::new(router.transport(id));
            let signer = Some(common::signer(&keys[id as usize - 1]));
            let node = ConsensusNode::start(id, ledger, common::fast_config(), transport, signer)
                .await
                .expect("node starts");
            router
                .register(id, node.raft().clone())
                .expect("router has room");
            router.register_inbox(id, node.cosign_inbox());
            router.register_submit_inbox(id, node.submit_inbox());
            nodes.insert(id, node);
            dirs.insert(id, dir);
        }
        let members: BTreeMap<u64, BasicNode> = IDS
            .iter()
            .map(|&id| (id, BasicNode::new(format!("mem:{id}"))))
            .collect();
        nodes[&1]
            .initialize_cluster(members)
            .await
            .expect("cluster initialises");
        Self {
            router,
            nodes,
            root,
            spec,
            dirs,
            keys,
        }
    }

    /// Crashes `id`: cut from the network at once, then stopped, and its
    /// store released so it can be reopened.
    async fn crash(&mut self, id: u64) {
        self.router.unregister(id);
        let node = self.nodes.remove(&id).expect("node is running");
        let ledger = node.ledger().clone();
        node.shutdown().await.expect("shutdown");
        drop(node);
        common::release(ledger).await;
    }

    /// Restarts a crashed node on its own store; it rejoins without re-initialising.
    async fn restart(&mut self, id: u64) {
        let ledger = common::open_ledger(self.dirs[&id].path(), self.spec.clone(), false);
        let transport = Arc::new(self.router.transport(id));
        let signer = Some(common::signer(&self.keys[id as usize - 1]));
        let node = ConsensusNode::start(id, ledger, common::fast_config(), transport, signer)
            .await
            .expect("node restarts");
        self.router
            .register(id, node.raft().clone())
            .expect("router has room");
        self.router.register_inbox(id, node.cosign_inbox());
        self.router.register_submit_inbox(id, node.submit_inbox());
        self.nodes.insert(id, node);
    }

    fn ledger(&self, id: u64) -> &Arc<Ledger> {
        self.nodes[&id].ledger()
    }

    fn head(&self, id: u64) -> (u64, String) {
        let h = self.ledger(id).head().expect("head reads");
        (h.height, h.hash.to_string())
    }

    /// A leader that every node in `among` agrees on, with a term above `after_term`.
    async fn leader(&self, among: &[u64], after_term: u64) -> u64 {
        common::poll_until(WAIT, "an agreed leader", || {
            let m: Vec<_> = among.iter().map(|id| self.nodes[id].metrics()).collect();
            let leader = m[0].leader?;
            let agreed = m
                .iter()
                .all(|x| x.leader == Some(leader) && x.term > after_term);
            let leads = among.contains(&leader) && self.nodes[&leader].is_leader();
            (agreed && leads).then_some(leader)
        })
        .await
    }

    /// Polls until the nodes in `among` have one head, at least `min_height`.
    async fn converged(&self, among: &[u64], min_height: u64) -> (u64, String) {
        common::poll_until(WAIT, "heads to converge", || {
            let heads: BTreeSet<_> = among.iter().map(|&id| self.head(id)).collect();
            let first = heads.iter().next()?.clone();
            (heads.len() == 1 && first.0 >= min_height).then_some(first)
        })
        .await
    }

    /// Submits `count` fresh transactions to `leader` at once and waits for
    /// every outcome; returns the outcomes.
    async fn commit_batch(
        &self,
        leader: u64,
        prefix: &str,
        count: usize,
    ) -> Vec<TxOutcomeResponse> {
        let mut waiting = Vec::new();
        for i in 0..count {
            let tx = common::notarize(&self.root, &format!("{prefix}-{i}"));
            let rx = self.nodes[&leader]
                .submit(common::wire(&tx))
                .expect("the leader admits");
            waiting.push(rx);
        }
        let mut outcomes = Vec::new();
        for rx in waiting {
            match tokio::time::timeout(WAIT, rx).await {
                Ok(Ok(Ok(o))) => outcomes.push(o),
                Ok(Ok(Err(e))) => panic!("consensus error: {e}"),
                Ok(Err(_)) => panic!("responder dropped"),
                Err(_) => panic!("no outcome within {WAIT:?}"),
            }
        }
        outcomes
    }

    /// Every node has the same block at every height up to `height`.
    fn same_blocks(&self, height: u64) {
        for h in 0..=height {
            let hashes: BTreeSet<String> = IDS
                .iter()
                .map(|&id| {
                    let b = ledger::history::read_block(&self.ledger(id).store, h)
                        .expect("block reads")
                        .unwrap_or_else(|| panic!("node {id} has no block {h}"));
                    b.hash.to_string()
                })
                .collect();
            assert_eq!(hashes.len(), 1, "nodes disagree on block {h}: {hashes:?}");
        }
    }

    /// Every acknowledged transaction is committed, at the same place, everywhere.
    fn holds_all(&self, acked: &[TxOutcomeResponse]) {
        for o in acked {
            let id_hex = o.id.as_deref().expect("a committed tx has an id");
            let mut id = [0u8; 32];
            hex::decode_to_slice(id_hex, &mut id).expect("tx id is hex");
            for node in IDS {
                let loc = ledger::history::read_tx(&self.ledger(node).store, &id)
                    .expect("tx index reads")
                    .unwrap_or_else(|| panic!("node {node} lost acknowledged tx {id_hex}"));
                let TxResult::Committed { height, index, .. } = o.result else {
                    panic!("not a commit: {o:?}");
                };
                assert_eq!(
                    (loc.height, loc.index),
                    (height, index),
                    "tx {id_hex} moved"
                );
            }
        }
    }

    /// Every node has each of these transactions committed.
    fn holds_ids(&self, ids: &[String]) {
        for id_hex in ids {
            let mut id = [0u8; 32];
            hex::decode_to_slice(id_hex, &mut id).expect("tx id is hex");
            for node in IDS {
                let found = ledger::history::read_tx(&self.ledger(node).store, &id)
                    .expect("tx index reads");
                assert!(found.is_some(), "node {node} lacks tx {id_hex}");
            }
        }
    }

    async fn shutdown(self) {
        for node in self.nodes.values() {
            node.shutdown().await.expect("clean shutdown");
        }
    }
}

fn committed(outcomes: &[TxOutcomeResponse]) {
    for o in outcomes {
        assert!(o.is_committed(), "refused: {o:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn three_nodes_replicate_survive_a_minority_partition_and_converge() {
    let cluster = Cluster::start(FaultPlan {
        seed: 0x5a5a_0003,
        drop_per_mille: 30,
        delay_min_ms: 0,
        delay_max_ms: 5,
        ..Default::default()
    })
    .await;

    // Replication over a lossy, jittery network.
    let old = cluster.leader(&IDS, 0).await;
    let mut acked = cluster.commit_batch(old, "before", 20).await;
    committed(&acked);
    let (height, _) = cluster.converged(&IDS, 1).await;
    cluster.same_blocks(height);
    cluster.holds_all(&acked);
    let old_term = cluster.nodes[&old].metrics().term;

    // Isolate the leader. It still believes it leads, so it admits a
    // transaction, which it can never commit alone.
    cluster.router.partition(&[&[old]]);
    let isolated_head = cluster.head(old);
    let stale = common::notarize(&cluster.root, "isolated");
    let mut stale_rx = cluster.nodes[&old].submit(common::wire(&stale)).ok();

    let majority: Vec<u64> = IDS.iter().copied().filter(|&id| id != old).collect();
    let new = cluster.leader(&majority, old_term).await;
    assert_ne!(new, old);
    let during = cluster.commit_batch(new, "during", 10).await;
    committed(&during);
    acked.extend(during);
    let (majority_height, _) = cluster.converged(&majority, height + 1).await;

    // The minority side committed nothing meanwhile.
    assert_eq!(cluster.head(old), isolated_head, "the isolated node moved");
    if let Some(rx) = stale_rx.as_mut() {
        assert!(
            rx.try_recv().is_err(),
            "the isolated leader answered a submission while cut off"
        );
    }
    assert!(cluster.router.stats().unreachable > 0);

    // Heal: the old leader follows, and every node ends on the same chain.
    cluster.router.heal();
    let after = cluster.leader(&IDS, old_term).await;
    let more = cluster.commit_batch(after, "after", 10).await;
    committed(&more);
    acked.extend(more);
    let (final_height, _) = cluster.converged(&IDS, majority_height + 1).await;
    cluster.same_blocks(final_height);
    cluster.holds_all(&acked);

    // The stale submission is either reported failed or, if it did commit
    // (it cannot have while cut off), committed everywhere.
    if let Some(mut rx) = stale_rx {
        if let Ok(Ok(o)) = rx.try_recv() {
            if o.is_committed() {
                cluster.holds_all(&[o]);
            }
        }
    }
    assert!(cluster.router.stats().dropped > 0, "the plan lost nothing");
    cluster.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_heavily_lossy_network_still_commits_and_converges() {
    let cluster = Cluster::start(FaultPlan {
        seed: 0x10_55,
        drop_per_mille: 150,
        delay_min_ms: 1,
        delay_max_ms: 20,
        ..Default::default()
    })
    .await;
    // Leadership may move under this much loss, so each transaction is
    // retried against whoever leads until it has an answer; a retry of one
    // that did commit is refused as `replayed`, which also proves it is there.
    let mut ids = Vec::new();
    for i in 0..15 {
        let tx = common::notarize(&cluster.root, &format!("lossy-{i}"));
        let wire = common::wire(&tx);
        let mut answered = None;
        for _attempt in 0..20 {
            let leader = cluster.leader(&IDS, 0).await;
            let Ok(rx) = cluster.nodes[&leader].submit(wire.clone()) else {
                continue;
            };
            if let Ok(Ok(Ok(o))) = tokio::time::timeout(WAIT, rx).await {
                answered = Some(o);
                break;
            }
        }
        let o = answered.expect("an answer within 20 attempts");
        match &o.result {
            TxResult::Committed { .. } => {}
            TxResult::Refused { code, .. } => assert_eq!(*code, RefusalCode::Replayed, "{o:?}"),
        }
        ids.push(tx.id_hex());
    }
    let (height, _) = cluster.converged(&IDS, 1).await;
    cluster.same_blocks(height);
    cluster.holds_ids(&ids);
    assert!(cluster.router.stats().dropped > 0, "the plan lost nothing");
    cluster.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_leader_crash_under_load_loses_no_acknowledged_tx_and_it_catches_up_on_restart() {
    let mut cluster = Cluster::start(FaultPlan {
        seed: 0xc4a5_4001,
        drop_per_mille: 20,
        delay_min_ms: 0,
        delay_max_ms: 3,
        ..Default::default()
    })
    .await;
    let old = cluster.leader(&IDS, 0).await;
    let mut acked = cluster.commit_batch(old, "warm", 5).await;
    committed(&acked);
    let old_term = cluster.nodes[&old].metrics().term;

    // Load: many submissions in flight; crash the leader as soon as the
    // first of them is acknowledged, so the rest are mid-replication.
    let mut waiting = Vec::new();
    for i in 0..60 {
        let tx = common::notarize(&cluster.root, &format!("load-{i}"));
        match cluster.nodes[&old].submit(common::wire(&tx)) {
            Ok(rx) => waiting.push(rx),
            Err(e) => panic!("the leader refused load: {e}"),
        }
    }
    let mut waiting = waiting.into_iter();
    let first = waiting.next().expect("one submission");
    match tokio::time::timeout(WAIT, first).await {
        Ok(Ok(Ok(o))) if o.is_committed() => acked.push(o),
        other => panic!("the first load tx did not commit: {other:?}"),
    }
    cluster.crash(old).await;
    // Whatever the crashed leader acknowledged before it died must survive;
    // the rest it answered with an error (fate unknown) or not at all.
    for rx in waiting {
        if let Ok(Ok(Ok(o))) = tokio::time::timeout(WAIT, rx).await {
            if o.is_committed() {
                acked.push(o);
            }
        }
    }

    let survivors: Vec<u64> = IDS.iter().copied().filter(|&id| id != old).collect();
    let new = cluster.leader(&survivors, old_term).await;
    let during = cluster.commit_batch(new, "after-crash", 5).await;
    committed(&during);
    acked.extend(during);
    let (survivor_height, _) = cluster.converged(&survivors, 1).await;

    // The old leader restarts from its store and catches up.
    cluster.restart(old).await;
    let (height, _) = cluster.converged(&IDS, survivor_height).await;
    cluster.same_blocks(height);
    cluster.holds_all(&acked);
    cluster.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn validators_co_sign_checkpoints_and_a_quorum_seals_them() {
    let cluster = Cluster::start(FaultPlan {
        seed: 0x5ea1,
        drop_per_mille: 20,
        delay_min_ms: 0,
        delay_max_ms: 3,
        ..Default::default()
    })
    .await;
    let leader = cluster.leader(&IDS, 0).await;
    let outcomes = cluster.commit_batch(leader, "sealed", 12).await;
    committed(&outcomes);
    let last_tx_height = outcomes
        .iter()
        .filter_map(|o| match o.result {
            TxResult::Committed { height, .. } => Some(height),
            _ => None,
        })
        .max()
        .expect("commits");

    // Every node sees the last transaction's block sealed (signatures arrive
    // in later blocks), on the same chain.
    let sealed = common::poll_until(WAIT, "the last block sealed on every node", || {
        let hs: BTreeSet<Option<u64>> = IDS
            .iter()
            .map(|&id| {
                ledger::seal::sealed_at_or_after(&cluster.ledger(id).store, last_tx_height)
                    .expect("reads")
            })
            .collect();
        (hs.len() == 1)
            .then(|| hs.into_iter().next().flatten())
            .flatten()
    })
    .await;
    let (height, _) = cluster.converged(&IDS, sealed + 1).await;
    cluster.same_blocks(height);

    // The sealed note verifies against the genesis validators with a quorum,
    // and every recorded signature is a genesis validator's.
    let store = &cluster.ledger(leader).store;
    let (cp, note, set) = ledger::seal::signed_checkpoint(store, &cluster.spec, sealed)
        .expect("reads")
        .expect("a signed checkpoint");
    assert_eq!(cp.height, sealed);
    let log = ledger::seal::log_identity(store, &cluster.spec).expect("log");
    let known = ledger::seal::note_keys(&log, &cluster.spec.validators).expect("keys");
    assert_eq!(set, cluster.spec.validators);
    let signers = note
        .verify_quorum(&known, cluster.spec.quorum() as usize)
        .expect("quorum");
    assert!(signers.signers.len() >= 2, "{signers:?}");
    let parsed = ledger::checkpoint::SignedNote::parse(&note.render()).expect("renders");
    assert_eq!(parsed, note);
    // The blocks that carried the signatures re-verify from genesis.
    ledger::verify_chain(store, &cluster.spec).expect("chain verifies");
    cluster.shutdown().await;
}

/// A proposal carrying a forged signature (put straight into Raft, as a
/// faulty leader might, past the producer's check) is refused the same way
/// on every node: the leader did not verify that proposal itself, so it
/// verifies it as a follower does. Submissions to a follower are forwarded
/// to the leader and answered with their outcome.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_forged_signature_in_a_proposal_is_refused_everywhere_and_followers_forward() {
    let cluster = Cluster::start(FaultPlan {
        seed: 0x5a5a_0010,
        drop_per_mille: 0,
        delay_min_ms: 0,
        delay_max_ms: 2,
        ..Default::default()
    })
    .await;
    let leader = cluster.leader(&IDS, 0).await;
    let good = common::notarize(&cluster.root, "forged-good");
    let mut forged = common::notarize(&cluster.root, "forged-bad");
    forged.sig[7] ^= 0x20;
    let proposal = ledger::BlockProposal {
        time_ms: jiff::Timestamp::now().as_millisecond(),
        txs: vec![good.frame().to_bytes(), forged.frame().to_bytes()],
        cosigs: Vec::new(),
    };
    let resp = cluster.nodes[&leader]
        .raft()
        .client_write(proposal)
        .await
        .expect("the proposal commits");
    let outcomes = resp.data.outcomes;
    assert!(outcomes[0].is_committed(), "{:?}", outcomes[0]);
    assert!(
        matches!(
            &outcomes[1].result,
            TxResult::Refused {
                code: RefusalCode::BadSignature,
                ..
            }
        ),
        "{:?}",
        outcomes[1]
    );
    let height = resp.data.block.expect("a block").height;
    cluster.converged(&IDS, height).await;
    cluster.same_blocks(height);
    for id in IDS {
        let store = &cluster.ledger(id).store;
        assert!(ledger::history::read_tx(store, &good.id)
            .expect("reads")
            .is_some());
        assert!(ledger::history::read_tx(store, &forged.id)
            .expect("reads")
            .is_none());
    }

    // Through a follower: forwarded, committed, and a forged one refused before any block.
    let follower = IDS
        .iter()
        .copied()
        .find(|&id| id != leader)
        .expect("a follower");
    let via = common::notarize(&cluster.root, "via-follower");
    let mut bad = common::notarize(&cluster.root, "via-follower-bad");
    bad.sig[1] ^= 1;
    let ok_rx = cluster.nodes[&follower]
        .submit(common::wire(&via))
        .expect("forwarded");
    let bad_rx = cluster.nodes[&follower]
        .submit(common::wire(&bad))
        .expect("forwarded");
    let ok = tokio::time::timeout(WAIT, ok_rx)
        .await
        .expect("in time")
        .expect("answered")
        .expect("decided");
    assert!(ok.is_committed(), "{ok:?}");
    let refused = tokio::time::timeout(WAIT, bad_rx)
        .await
        .expect("in time")
        .expect("answered")
        .expect("decided");
    assert!(
        matches!(
            &refused.result,
            TxResult::Refused {
                code: RefusalCode::BadSignature,
                ..
            }
        ),
        "{refused:?}"
    );
    let TxResult::Committed { height, .. } = ok.result else {
        unreachable!()
    };
    cluster.converged(&IDS, height).await;
    cluster.same_blocks(height);
    cluster.shutdown().await;
}
