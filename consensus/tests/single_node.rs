//! A one-member cluster end to end: submit, commit, refuse, restart.

mod common;

use std::sync::Arc;
use std::time::Duration;

use consensus::{ConsensusConfig, ConsensusError, ConsensusNode, TxOutcomeResponse, TxResult};
use ledger::{Ledger, RefusalCode};

const NODE_ID: u64 = 1;
const WAIT: Duration = Duration::from_secs(20);

async fn outcome(node: &ConsensusNode, wire: Vec<u8>) -> TxOutcomeResponse {
    let rx = node.submit(wire).expect("submit is admitted");
    match tokio::time::timeout(WAIT, rx).await {
        Ok(Ok(Ok(o))) => o,
        Ok(Ok(Err(e))) => panic!("consensus error: {e}"),
        Ok(Err(_)) => panic!("responder dropped"),
        Err(_) => panic!("no outcome within {WAIT:?}"),
    }
}

fn height(o: &TxOutcomeResponse) -> u64 {
    match &o.result {
        TxResult::Committed { height, .. } => *height,
        TxResult::Refused { code, message } => panic!("refused: {code}: {message}"),
    }
}

fn refusal(o: &TxOutcomeResponse) -> RefusalCode {
    match &o.result {
        TxResult::Refused { code, .. } => *code,
        other => panic!("expected a refusal, got {other:?}"),
    }
}

/// Shuts the node down and waits until Raft's tasks have released the
/// ledger, so the RocksDB lock is free for a re-open.
async fn stop(node: ConsensusNode, ledger: Arc<Ledger>) {
    node.shutdown().await.expect("clean shutdown");
    drop(node);
    let mut ledger = Some(ledger);
    common::poll_until(WAIT, "raft tasks to release the ledger", || {
        let l = ledger.take()?;
        match Arc::try_unwrap(l) {
            Ok(inner) => {
                drop(inner);
                Some(())
            }
            Err(l) => {
                ledger = Some(l);
                None
            }
        }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn single_node_commits_refuses_and_survives_restart() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (spec, root) = common::test_spec();

    let ledger = common::open_ledger(dir.path(), spec.clone(), true);
    let node = ConsensusNode::start_single(
        NODE_ID,
        "127.0.0.1:7000".into(),
        ledger.clone(),
        common::fast_config(),
        None,
    )
    .await
    .expect("single node starts");
    assert!(node.is_leader());
    assert_eq!(node.leader_id(), Some(NODE_ID));

    // Submitted together: they may share a block or not, but all commit, in order.
    let txs: Vec<_> = (0..3)
        .map(|i| common::notarize(&root, &format!("n{i}")))
        .collect();
    let receivers: Vec<_> = txs
        .iter()
        .map(|tx| node.submit(common::wire(tx)).expect("admitted"))
        .collect();
    let mut heights = Vec::new();
    for (tx, rx) in txs.iter().zip(receivers) {
        let o = tokio::time::timeout(WAIT, rx)
            .await
            .expect("in time")
            .expect("answered")
            .expect("no consensus error");
        assert_eq!(o.id.as_deref(), Some(tx.id_hex().as_str()));
        heights.push(height(&o));
    }
    assert!(heights.windows(2).all(|w| w[0] <= w[1]), "{heights:?}");
    assert!(heights[0] >= 1);

    // One more on its own: a lone client gets its own block right away.
    let lone = common::notarize(&root, "lone");
    let lone_height = height(&outcome(&node, common::wire(&lone)).await);
    assert_eq!(lone_height, heights[2] + 1);

    // A bad signature is refused with its code, and cuts no block.
    let mut forged = common::notarize(&root, "forged");
    forged.sig[0] ^= 0x01;
    let o = outcome(&node, common::wire(&forged)).await;
    assert_eq!(refusal(&o), RefusalCode::BadSignature);
    assert_eq!(o.id.as_deref(), Some(forged.id_hex().as_str()));

    // A replay of a committed transaction is refused.
    assert_eq!(
        refusal(&outcome(&node, common::wire(&txs[0])).await),
        RefusalCode::Replayed
    );

    // Oversized wire bytes are answered without a Raft round.
    let big = vec![b' '; ledger::signing::TX_BYTES_MAX + 1];
    assert_eq!(refusal(&outcome(&node, big).await), RefusalCode::TxTooLarge);

    let head = ledger.head().expect("head");
    assert_eq!(head.height, lone_height);
    // Raft publishes `last_applied` in its metrics a moment after the
    // outcome is answered: wait for the two to meet.
    let m = common::poll_until(WAIT, "applied to catch up with committed", || {
        let m = node.metrics();
        (m.commit_index.is_some() && m.commit_index == m.last_applied_index).then_some(m)
    })
    .await;
    assert!(m.is_leader);
    assert_eq!(m.leader, Some(NODE_ID));
    let (term_before, applied_before) = (m.term, m.last_applied_index);

    stop(node, ledger).await;

    // Re-open the same directory: the chain is intact, the cluster is not
    // re-initialised, and the node leads again. (A sole voter whose vote is
    // committed resumes leadership in the same term; openraft needs no election.)
    let ledger = common::open_ledger(dir.path(), spec.clone(), true);
    assert_eq!(ledger.head().expect("head"), head);
    let node = ConsensusNode::start_single(
        NODE_ID,
        "127.0.0.1:7000".into(),
        ledger.clone(),
        common::fast_config(),
        None,
    )
    .await
    .expect("restarted node starts");
    assert_eq!(
        ledger.head().expect("head"),
        head,
        "restart must not re-apply or lose blocks"
    );
    let m = node.metrics();
    assert!(m.is_leader);
    assert!(m.term >= term_before);
    assert!(
        m.last_applied_index >= applied_before,
        "{:?} < {applied_before:?}",
        m.last_applied_index
    );

    let after = common::notarize(&root, "after-restart");
    assert_eq!(
        height(&outcome(&node, common::wire(&after)).await),
        head.height + 1
    );
    // Still refused after the restart: replay protection lives in the ledger.
    assert_eq!(
        refusal(&outcome(&node, common::wire(&lone)).await),
        RefusalCode::Replayed
    );

    stop(node, ledger).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_store_of_another_member_is_refused_and_shutdown_rejects_submits() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (spec, root) = common::test_spec();

    let ledger = common::open_ledger(dir.path(), spec.clone(), false);
    let node = ConsensusNode::start_single(
        NODE_ID,
        "127.0.0.1:7000".into(),
        ledger.clone(),
        common::fast_config(),
        None,
    )
    .await
    .expect("single node starts");
    node.shutdown().await.expect("clean shutdown");
    // Idempotent, and submits are refused once stopped.
    node.shutdown().await.expect("second shutdown is a no-op");
    let tx = common::notarize(&root, "late");
    assert_eq!(
        node.submit(common::wire(&tx)).err(),
        Some(ConsensusError::ShuttingDown)
    );
    stop(node, ledger).await;

    let ledger = common::open_ledger(dir.path(), spec, false);
    let err = ConsensusNode::start_single(
        NODE_ID + 1,
        "127.0.0.1:7001".into(),
        ledger.clone(),
        common::fast_config(),
        None,
    )
    .await
    .err()
    .expect("node 2 may not take over node 1's store");
    assert!(matches!(err, ConsensusError::Config(_)), "{err}");
}

#[test]
fn config_limits_are_checked() {
    let bad = ConsensusConfig {
        block_txs_max: 0,
        ..Default::default()
    };
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let dir = tempfile::tempdir().expect("temp dir");
    let (spec, _) = common::test_spec();
    let ledger = common::open_ledger(dir.path(), spec, false);
    for config in [
        bad,
        ConsensusConfig {
            block_bytes_max: 10,
            ..Default::default()
        },
        ConsensusConfig {
            queue_txs_max: 0,
            ..Default::default()
        },
        ConsensusConfig {
            election_timeout_min_ms: 50,
            heartbeat_ms: 100,
            ..Default::default()
        },
    ] {
        let r = rt.block_on(ConsensusNode::start_single(
            NODE_ID,
            "a".into(),
            ledger.clone(),
            config.clone(),
            None,
        ));
        assert!(matches!(r, Err(ConsensusError::Config(_))), "{config:?}");
    }
}
