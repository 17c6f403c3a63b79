//! Validator membership follows signed ledger records, under load: a node
//! outside genesis is added by a `validator.add` record (it catches up as a
//! learner, then joint consensus makes it a voter and it co-signs
//! checkpoints), and a genesis validator is removed by `validator.remove`.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use consensus::{ConsensusNode, FaultPlan, MemRouter, TxResult};
use genesis::KeyFile;
use ledger::record::{build_body, ValidatorAdd, ValidatorRemove};
use ledger::{RefusalCode, SignedTx};
use openraft::BasicNode;

const WAIT: Duration = Duration::from_secs(60);

fn signed<T: serde::Serialize>(root: &KeyFile, kind: &str, nonce: &str, rec: &T) -> SignedTx {
    let body = build_body(
        kind,
        common::CHAIN_ID,
        common::ROOT_ACCOUNT,
        &jiff::Timestamp::now().to_string(),
        nonce,
        rec,
    );
    SignedTx::sign(body, &root.signing_key().expect("key")).expect("signs")
}

struct Nodes {
    nodes: BTreeMap<u64, Arc<ConsensusNode>>,
    _dirs: Vec<tempfile::TempDir>,
}

impl Nodes {
    fn leader(&self) -> Option<Arc<ConsensusNode>> {
        self.nodes.values().find(|n| n.is_leader()).cloned()
    }

    fn voters(&self, id: u64) -> BTreeSet<u64> {
        let m = self.nodes[&id].raft().metrics();
        let m = m.borrow();
        m.membership_config.membership().voter_ids().collect()
    }

    fn head(&self, id: u64) -> (u64, String) {
        let h = self.nodes[&id].ledger().head().expect("head");
        (h.height, h.hash.to_string())
    }

    /// Submits to whoever leads until the transaction has an answer.
    async fn commit(&self, tx: &SignedTx) -> TxResult {
        let wire = common::wire(tx);
        for _ in 0..200 {
            if let Some(leader) = self.leader() {
                if let Ok(rx) = leader.submit(wire.clone()) {
                    if let Ok(Ok(Ok(o))) = tokio::time::timeout(WAIT, rx).await {
                        return o.result;
                    }
                }
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("no answer for {}", tx.id_hex());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn validators_join_and_leave_by_signed_records_under_load() {
    let (spec, root, keys) = common::cluster_spec(3);
    let newcomer = KeyFile::generate("validator-4");
    let router = MemRouter::new(FaultPlan {
        seed: 0x3e3b,
        drop_per_mille: 10,
        delay_min_ms: 0,
        delay_max_ms: 2,
        ..Default::default()
    })
    .expect("plan");
    let mut nodes = BTreeMap::new();
    let mut dirs = Vec::new();
    for (id, key) in (1u64..=4).zip(keys.iter().chain([&newcomer])) {
        let dir = tempfile::tempdir().expect("temp dir");
        let ledger = common::open_ledger(dir.path(), spec.clone(), false);
        let node = ConsensusNode::start(
            id,
            ledger,
            common::fast_config(),
            Arc::new(router.transport(id)),
            Some(common::signer(key)),
        )
        .await
        .expect("starts");
        router.register(id, node.raft().clone()).expect("room");
        router.register_inbox(id, node.cosign_inbox());
        router.register_submit_inbox(id, node.submit_inbox());
        nodes.insert(id, Arc::new(node));
        dirs.push(dir);
    }
    // Only the genesis validators form the cluster; node 4 waits, uninitialised.
    let members: BTreeMap<u64, BasicNode> = (1..=3)
        .map(|id| (id, BasicNode::new(format!("mem:{id}"))))
        .collect();
    nodes[&1].initialize_cluster(members).await.expect("init");
    let cluster = Arc::new(Nodes { nodes, _dirs: dirs });
    common::poll_until(WAIT, "a leader", || cluster.leader()).await;

    // Background load for the whole test.
    let stop = Arc::new(AtomicBool::new(false));
    let committed = Arc::new(AtomicUsize::new(0));
    let load = {
        let (cluster, stop, committed, root) = (
            cluster.clone(),
            stop.clone(),
            committed.clone(),
            root.clone(),
        );
        tokio::spawn(async move {
            let mut i = 0;
            let mut ids = Vec::new();
            while !stop.load(Ordering::Relaxed) {
                let tx = common::notarize(&root, &format!("load-{i}"));
                i += 1;
                match cluster.commit(&tx).await {
                    TxResult::Committed { .. } => {}
                    TxResult::Refused { code, .. } => assert_eq!(code, RefusalCode::Replayed),
                }
                committed.fetch_add(1, Ordering::Relaxed);
                ids.push(tx.id);
            }
            ids
        })
    };
    common::poll_until(WAIT, "load commits", || {
        (committed.load(Ordering::Relaxed) >= 10).then_some(())
    })
    .await;

    // Add node 4. Only the provincial regulator may: a refused attempt first.
    let add = ValidatorAdd {
        node_id: 4,
        name: newcomer.account.clone(),
        public_key: newcomer.public_key.clone(),
        address: "mem:4".into(),
    };
    let dup = ValidatorAdd {
        node_id: 2,
        ..add.clone()
    };
    let r = cluster
        .commit(&signed(&root, "validator.add", "dup", &dup))
        .await;
    assert!(
        matches!(
            r,
            TxResult::Refused {
                code: RefusalCode::ValidatorExists,
                ..
            }
        ),
        "{r:?}"
    );
    let r = cluster
        .commit(&signed(&root, "validator.add", "add-4", &add))
        .await;
    assert!(matches!(r, TxResult::Committed { .. }), "{r:?}");
    common::poll_until(WAIT, "node 4 becomes a voter everywhere", || {
        let want: BTreeSet<u64> = [1, 2, 3, 4].into();
        (1..=4).all(|id| cluster.voters(id) == want).then_some(())
    })
    .await;

    // Node 4 co-signs: some checkpoint after it joined carries its signature.
    let joined_at = cluster.head(1).0;
    common::poll_until(WAIT, "a checkpoint signed by node 4 is sealed", || {
        let store = &cluster.nodes[&1].ledger().store;
        let h = ledger::seal::latest_sealed_height(store).ok()??;
        (h > joined_at).then_some(())?;
        let sigs = ledger::seal::cosignatures(store, h).ok()?;
        sigs.contains_key("validator-4").then_some(())
    })
    .await;

    // Remove node 2 (whoever leads), still under load.
    let r = cluster
        .commit(&signed(
            &root,
            "validator.remove",
            "rm-2",
            &ValidatorRemove { node_id: 2 },
        ))
        .await;
    assert!(matches!(r, TxResult::Committed { .. }), "{r:?}");
    let remaining = [1u64, 3, 4];
    common::poll_until(WAIT, "node 2 leaves the voters", || {
        let want: BTreeSet<u64> = remaining.into();
        remaining
            .iter()
            .all(|&id| cluster.voters(id) == want)
            .then_some(())
    })
    .await;
    let after = committed.load(Ordering::Relaxed);
    common::poll_until(WAIT, "load goes on without node 2", || {
        (committed.load(Ordering::Relaxed) >= after + 10).then_some(())
    })
    .await;
    stop.store(true, Ordering::Relaxed);
    let ids = load.await.expect("load task");

    // The remaining validators agree on every block; every load tx is there.
    let (height, _) = common::poll_until(WAIT, "heads converge", || {
        let heads: BTreeSet<_> = remaining.iter().map(|&id| cluster.head(id)).collect();
        (heads.len() == 1)
            .then(|| heads.into_iter().next())
            .flatten()
    })
    .await;
    for h in 0..=height {
        let hashes: BTreeSet<String> = remaining
            .iter()
            .map(|&id| {
                ledger::history::read_block(&cluster.nodes[&id].ledger().store, h)
                    .expect("reads")
                    .expect("block")
                    .hash
                    .to_string()
            })
            .collect();
        assert_eq!(hashes.len(), 1, "block {h}: {hashes:?}");
    }
    for id in &ids {
        for &n in &remaining {
            assert!(
                ledger::history::read_tx(&cluster.nodes[&n].ledger().store, id)
                    .expect("reads")
                    .is_some(),
                "node {n} lacks a load tx"
            );
        }
    }
    // The validator set on the ledger: genesis, +4, -2; checkpoints after the
    // removal verify against {1, 3, 4}.
    let store = &cluster.nodes[&1].ledger().store;
    let history = ledger::seal::validator_history(store).expect("history");
    let ids_of =
        |set: &[ledger::spec::Validator]| -> Vec<u64> { set.iter().map(|v| v.node_id).collect() };
    let shapes: Vec<Vec<u64>> = history.iter().map(|(_, s)| ids_of(s)).collect();
    assert_eq!(shapes, vec![vec![1, 2, 3], vec![1, 2, 3, 4], vec![1, 3, 4]]);
    ledger::verify_chain(store, &spec).expect("chain verifies");
    for node in cluster.nodes.values() {
        node.shutdown().await.expect("shutdown");
    }
}
