//! The state machine over a real ledger: blocks, applied state, and a
//! snapshot carried from one ledger to another.

mod common;

use consensus::{ApplyResponse, StateMachine, TxResult};
use ledger::BlockProposal;
use openraft::storage::RaftStateMachine;
use openraft::{
    CommittedLeaderId, Entry, EntryPayload, LogId, Membership, RaftSnapshotBuilder,
    StoredMembership,
};

fn log_id(term: u64, index: u64) -> LogId<u64> {
    LogId::new(CommittedLeaderId::new(term, 1), index)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn blocks_and_applied_state_move_together_and_snapshots_carry_the_ledger() {
    let (spec, root) = common::test_spec();
    let dir_a = tempfile::tempdir().expect("temp dir");
    let ledger_a = common::open_ledger(dir_a.path(), spec.clone(), false);
    let mut sm_a = StateMachine::new(ledger_a.clone());

    let membership = Membership::new(vec![[1u64].into_iter().collect()], None);
    let tx = common::notarize(&root, "snap");
    let proposal = BlockProposal {
        time_ms: jiff::Timestamp::now().as_millisecond(),
        txs: vec![common::wire(&tx)],
        cosigs: Vec::new(),
    };
    let responses = sm_a
        .apply([
            Entry {
                log_id: log_id(1, 0),
                payload: EntryPayload::Membership(membership.clone()),
            },
            Entry {
                log_id: log_id(1, 1),
                payload: EntryPayload::Blank,
            },
            Entry {
                log_id: log_id(1, 2),
                payload: EntryPayload::Normal(proposal),
            },
        ])
        .await
        .expect("entries apply");
    assert_eq!(responses.len(), 3);
    assert_eq!(responses[0], ApplyResponse::default());
    let block = responses[2].block.clone().expect("a block is cut");
    assert_eq!(block.height, 1);
    assert!(matches!(
        responses[2].outcomes[0].result,
        TxResult::Committed {
            height: 1,
            index: 0,
            leaf_index: 0
        }
    ));
    let head_a = ledger_a.head().expect("head");
    assert_eq!(head_a.hash.to_string(), block.hash);

    // The block and its log id were committed in one batch: a fresh state
    // machine on the same store sees both.
    let expected = (
        Some(log_id(1, 2)),
        StoredMembership::new(Some(log_id(1, 0)), membership),
    );
    assert_eq!(
        StateMachine::new(ledger_a.clone())
            .applied_state()
            .await
            .expect("state"),
        expected
    );

    let snap = sm_a
        .get_snapshot_builder()
        .await
        .build_snapshot()
        .await
        .expect("snapshot builds");
    assert_eq!(snap.meta.last_log_id, Some(log_id(1, 2)));

    let dir_b = tempfile::tempdir().expect("temp dir");
    let ledger_b = common::open_ledger(dir_b.path(), spec, false);
    let mut sm_b = StateMachine::new(ledger_b.clone());
    let mut incoming = sm_b.begin_receiving_snapshot().await.expect("receive");
    *incoming = *snap.snapshot;
    sm_b.install_snapshot(&snap.meta, incoming)
        .await
        .expect("snapshot installs");

    assert_eq!(ledger_b.head().expect("head"), head_a);
    assert_eq!(sm_b.applied_state().await.expect("state"), expected);
    let found = ledger::machine::read_tx(&ledger_b.store, &tx.id)
        .expect("read")
        .expect("tx carried over");
    assert_eq!(found.height, 1);
    ledger::verify_chain(&ledger_b.store, &ledger_b.spec).expect("installed chain re-verifies");
}
