//! Three validators over real libp2p on 127.0.0.1 (ports chosen at run time),
//! and an outsider whose key is not in genesis. Every wait is a poll with a
//! deadline.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use consensus::p2p::{keypair_of, validator_peers};
use consensus::{ConsensusConfig, ConsensusNode, P2pConfig, P2pNode, Transport};
use genesis::KeyFile;
use openraft::error::RPCError;
use openraft::network::RPCOption;
use openraft::raft::{AppendEntriesRequest, VoteRequest};
use openraft::{BasicNode, Vote};

const WAIT: Duration = Duration::from_secs(30);

fn fast_config() -> ConsensusConfig {
    ConsensusConfig {
        heartbeat_ms: 50,
        election_timeout_min_ms: 300,
        election_timeout_max_ms: 600,
        ..Default::default()
    }
}

struct Validator {
    node: ConsensusNode,
    p2p: P2pNode,
}

struct Cluster {
    validators: BTreeMap<u64, Validator>,
    root: KeyFile,
    keys: Vec<KeyFile>,
    peers: BTreeMap<u64, libp2p::PeerId>,
    spec: ledger::spec::ChainSpec,
    config: ConsensusConfig,
    dirs: BTreeMap<u64, tempfile::TempDir>,
}

impl Cluster {
    async fn start() -> Self {
        Self::start_with(fast_config()).await
    }

    async fn start_with(config: ConsensusConfig) -> Self {
        let (spec, root, keys) = common::cluster_spec(3);
        let peers = validator_peers(&spec).expect("genesis keys are Ed25519");
        let mut validators = BTreeMap::new();
        let mut dirs = BTreeMap::new();
        for (key, id) in keys.iter().zip(1u64..) {
            let keypair = keypair_of(&key.secret_key).expect("key file seed");
            let p2p = P2pNode::start(keypair, peers.clone(), P2pConfig::default())
                .await
                .expect("p2p starts");
            // The libp2p identity is the validator key of genesis.
            assert_eq!(p2p.peer_id(), peers[&id]);
            let dir = tempfile::tempdir().expect("temp dir");
            let ledger = common::open_ledger(dir.path(), spec.clone(), false);
            let transport = Arc::new(p2p.transport());
            let signer = Some(common::signer(key));
            let node = ConsensusNode::start(id, ledger, config.clone(), transport, signer)
                .await
                .expect("node starts");
            assert!(p2p.serve(node.raft().clone()));
            assert!(p2p.serve_cosign(node.cosign_inbox()));
            assert!(p2p.serve_submit(node.submit_inbox()));
            validators.insert(id, Validator { node, p2p });
            dirs.insert(id, dir);
        }
        let members: BTreeMap<u64, BasicNode> = validators
            .iter()
            .map(|(id, v)| (*id, BasicNode::new(v.p2p.listen_addr().to_string())))
            .collect();
        validators[&1]
            .node
            .initialize_cluster(members)
            .await
            .expect("cluster initialises");
        Self {
            validators,
            root,
            keys,
            peers,
            spec,
            config,
            dirs,
        }
    }

    fn node(&self, id: u64) -> &ConsensusNode {
        &self.validators[&id].node
    }

    async fn leader(&self) -> u64 {
        common::poll_until(WAIT, "an agreed leader", || {
            let leaders: BTreeSet<_> = self
                .validators
                .values()
                .map(|v| v.node.leader_id())
                .collect();
            let leader = (*leaders.iter().next()?)?;
            (leaders.len() == 1 && self.node(leader).is_leader()).then_some(leader)
        })
        .await
    }

    async fn commit(&self, leader: u64, prefix: &str, count: usize) {
        let mut waiting = Vec::new();
        for i in 0..count {
            let tx = common::notarize(&self.root, &format!("{prefix}-{i}"));
            waiting.push(
                self.node(leader)
                    .submit(common::wire(&tx))
                    .expect("leader admits"),
            );
        }
        for rx in waiting {
            match tokio::time::timeout(WAIT, rx).await {
                Ok(Ok(Ok(o))) => assert!(o.is_committed(), "refused: {o:?}"),
                other => panic!("no commit: {other:?}"),
            }
        }
    }

    async fn converged(&self, min_height: u64) -> u64 {
        common::poll_until(WAIT, "heads to converge", || {
            let heads: BTreeSet<_> = self
                .validators
                .values()
                .map(|v| {
                    let h = v.node.ledger().head().expect("head reads");
                    (h.height, h.hash.to_string())
                })
                .collect();
            let (height, _) = heads.iter().next()?.clone();
            (heads.len() == 1 && height >= min_height).then_some(height)
        })
        .await
    }

    async fn shutdown(self) {
        for v in self.validators.values() {
            v.node.shutdown().await.expect("clean shutdown");
            v.p2p.shutdown();
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn three_p2p_validators_elect_a_leader_and_commit() {
    let cluster = Cluster::start().await;
    let leader = cluster.leader().await;
    cluster.commit(leader, "p2p", 10).await;
    let height = cluster.converged(1).await;
    for h in 0..=height {
        let hashes: BTreeSet<String> = cluster
            .validators
            .values()
            .map(|v| {
                ledger::history::read_block(&v.node.ledger().store, h)
                    .expect("block reads")
                    .expect("block exists")
                    .hash
                    .to_string()
            })
            .collect();
        assert_eq!(hashes.len(), 1, "validators disagree on block {h}");
    }
    for v in cluster.validators.values() {
        assert_eq!(v.p2p.stats().denied, 0, "a validator was refused");
    }
    cluster.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_peer_outside_the_validator_set_can_neither_connect_nor_append() {
    let cluster = Cluster::start().await;
    let leader = cluster.leader().await;
    cluster.commit(leader, "before", 3).await;
    let height = cluster.converged(1).await;
    let tree_before = cluster.node(1).ledger().head().expect("head").tree_size;

    // The outsider knows the genesis validator set and every address, but
    // its own key is not in genesis.
    let (spec_peers, target_addr) = {
        let v = &cluster.validators[&1];
        let spec = &v.node.ledger().spec;
        (
            validator_peers(spec).expect("genesis keys"),
            v.p2p.listen_addr().to_string(),
        )
    };
    let intruder_key = KeyFile::generate("intruder");
    let keypair = keypair_of(&intruder_key.secret_key).expect("seed");
    let intruder = P2pNode::start(keypair, spec_peers, P2pConfig::default())
        .await
        .expect("intruder's p2p starts");
    let transport = intruder.transport();
    let target = BasicNode::new(target_addr);
    let term_before = cluster.node(1).metrics().term;
    let option = RPCOption::new(Duration::from_secs(2));

    // A heartbeat from a far higher term would depose the leader if it got in.
    let hijack = AppendEntriesRequest {
        vote: Vote::new_committed(term_before + 100, 1),
        prev_log_id: None,
        entries: vec![],
        leader_commit: None,
    };
    let appended = transport
        .append_entries(1, &target, hijack, option.clone())
        .await;
    // Refused at the connection: Raft never saw it, so no answer of Raft's.
    assert!(
        matches!(
            appended,
            Err(RPCError::Unreachable(_) | RPCError::Network(_) | RPCError::Timeout(_))
        ),
        "an outsider's append got through: {appended:?}"
    );
    let vote = VoteRequest::new(Vote::new(term_before + 100, 1), None);
    let voted = transport.vote(1, &target, vote, option).await;
    assert!(
        matches!(
            voted,
            Err(RPCError::Unreachable(_) | RPCError::Network(_) | RPCError::Timeout(_))
        ),
        "an outsider's vote got through: {voted:?}"
    );

    // The validator refused the connection, and nothing moved.
    common::poll_until(WAIT, "the validator to refuse the outsider", || {
        (cluster.validators[&1].p2p.stats().denied > 0).then_some(())
    })
    .await;
    // (A normal re-election may bump the term by one or two; the outsider's
    // would have set it 100 higher.)
    let term_after = cluster.node(1).metrics().term;
    assert!(
        term_after < term_before + 100,
        "the outsider set the term to {term_after}"
    );
    // (Blocks of checkpoint signatures may still arrive; the tree may not grow.)
    assert_eq!(
        cluster.node(1).ledger().head().expect("head").tree_size,
        tree_before
    );

    // The cluster still commits.
    let leader = cluster.leader().await;
    cluster.commit(leader, "after", 3).await;
    cluster.converged(height + 1).await;
    intruder.shutdown();
    cluster.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_restarted_follower_is_redialled_and_catches_up_by_snapshot() {
    // Snapshot often and keep no log behind a snapshot, so that a follower
    // that misses a few blocks can only catch up by an install-snapshot,
    // which then has to cross the wire too.
    let mut cluster = Cluster::start_with(ConsensusConfig {
        snapshot_logs_since_last: 3,
        snapshot_logs_kept: 0,
        ..fast_config()
    })
    .await;
    let leader = cluster.leader().await;
    cluster.commit(leader, "before", 3).await;
    let height = cluster.converged(1).await;

    // Stop one follower entirely, as a crashed process would be.
    let follower = *cluster
        .validators
        .keys()
        .find(|&&id| id != leader)
        .expect("a follower");
    let down = cluster.validators.remove(&follower).expect("follower");
    let addr = down.p2p.listen_addr().clone();
    let follower_last_log = down.node.metrics().last_log_index.unwrap_or(0);
    down.p2p.shutdown();
    let ledger = down.node.ledger().clone();
    down.node.shutdown().await.expect("clean shutdown");
    drop(down);
    common::release(ledger).await;

    // The other two are a majority and keep committing; the leader's dials
    // to the missing follower fail and back off meanwhile.
    for i in 0..8 {
        cluster.commit(leader, &format!("while-down-{i}"), 1).await;
    }
    let majority_height = cluster.converged(height + 1).await;
    common::poll_until(WAIT, "the leader to purge what the follower lacks", || {
        let purged = cluster.node(leader).raft().metrics().borrow().purged?;
        (purged.index > follower_last_log).then_some(())
    })
    .await;

    // Restart it on its own store, address and key (the port may take a
    // moment to be released by the stopped swarm).
    let keypair = || keypair_of(&cluster.keys[(follower - 1) as usize].secret_key).expect("seed");
    let p2p_config = P2pConfig {
        listen: addr.clone(),
        ..Default::default()
    };
    let deadline = std::time::Instant::now() + WAIT;
    let p2p = loop {
        match P2pNode::start(keypair(), cluster.peers.clone(), p2p_config.clone()).await {
            Ok(p2p) => break p2p,
            Err(e) => {
                assert!(
                    std::time::Instant::now() < deadline,
                    "could not rebind {addr}: {e}"
                );
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    };
    assert_eq!(p2p.listen_addr(), &addr);
    let ledger = common::open_ledger(cluster.dirs[&follower].path(), cluster.spec.clone(), false);
    let transport = Arc::new(p2p.transport());
    let node = ConsensusNode::start(follower, ledger, cluster.config.clone(), transport, None)
        .await
        .expect("follower restarts");
    assert!(p2p.serve(node.raft().clone()));
    assert!(p2p.serve_cosign(node.cosign_inbox()));
    assert!(p2p.serve_submit(node.submit_inbox()));
    cluster.validators.insert(follower, Validator { node, p2p });

    // The leader redials it and sends what it missed, as a snapshot.
    cluster.converged(majority_height).await;
    let leader = cluster.leader().await;
    cluster.commit(leader, "after", 2).await;
    cluster.converged(majority_height + 1).await;
    cluster.shutdown().await;
}
