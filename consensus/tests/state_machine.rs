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
    // The same transaction twice: the second is refused (`replayed`), so
    // the snapshot carries a kept refusal, which no replay of the chain
    // gives (the simulator found installs failing on them).
    let proposal = BlockProposal {
        time_ms: jiff::Timestamp::now().as_millisecond(),
        txs: vec![common::wire(&tx), common::wire(&tx)],
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
    let found = ledger::history::read_tx(&ledger_b.store, &tx.id)
        .expect("read")
        .expect("tx carried over");
    assert_eq!(found.height, 1);
    ledger::verify_chain(&ledger_b.store, &ledger_b.spec).expect("installed chain re-verifies");
    let kept = |l: &ledger::Ledger| {
        ledger::refusals::read(&l.store, &tx.id)
            .expect("read")
            .map(|r| r.code)
    };
    assert!(
        kept(&ledger_a).is_some(),
        "the duplicate was refused and kept"
    );
    assert_eq!(
        kept(&ledger_b),
        kept(&ledger_a),
        "the kept refusal is carried over"
    );
}

/// The snapshot format as the state machine writes it (bincode, standard
/// config): `(column family, rows)` per ledger space. Mirrored here so the
/// test can tamper with a snapshot the way a faulty or hostile leader could.
#[derive(serde::Serialize, serde::Deserialize)]
struct Payload {
    spaces: Vec<(String, Rows)>,
}

/// A column family's rows, `(key, value)` in key order.
type Rows = Vec<(Vec<u8>, Vec<u8>)>;

fn unpack(data: &[u8]) -> Payload {
    bincode::serde::decode_from_slice(data, bincode::config::standard())
        .expect("snapshot decodes")
        .0
}

fn pack(p: &Payload) -> Vec<u8> {
    bincode::serde::encode_to_vec(p, bincode::config::standard()).expect("snapshot encodes")
}

fn rows(p: &mut Payload, space: ledger::kv::Space) -> &mut Vec<(Vec<u8>, Vec<u8>)> {
    &mut p
        .spaces
        .iter_mut()
        .find(|(name, _)| name == space.cf_name())
        .expect("space in snapshot")
        .1
}

/// Every row of every ledger space and of `raft_meta`: the whole store as
/// the state machine sees it.
fn dump(ledger: &ledger::Ledger) -> Vec<(String, Rows)> {
    let db = ledger.store.db();
    let names = ledger::kv::Space::ALL
        .iter()
        .map(|s| s.cf_name())
        .chain([ledger::store::CF_RAFT_META]);
    names
        .map(|name| {
            let cf = db.cf_handle(name).expect("column family");
            let rows = db
                .iterator_cf(cf, rocksdb::IteratorMode::Start)
                .map(|r| {
                    let (k, v) = r.expect("row");
                    (k.to_vec(), v.to_vec())
                })
                .collect();
            (name.to_string(), rows)
        })
        .collect()
}

fn block_entry(index: u64, time_ms: i64, txs: &[ledger::SignedTx]) -> Entry<consensus::TypeConfig> {
    Entry {
        log_id: log_id(1, index),
        payload: EntryPayload::Normal(BlockProposal {
            time_ms,
            txs: txs.iter().map(common::wire).collect(),
            cosigs: Vec::new(),
        }),
    }
}

/// Membership, blank, then block 1 with `txs`: the log every node starts with.
fn opening(time_ms: i64, txs: &[ledger::SignedTx]) -> Vec<Entry<consensus::TypeConfig>> {
    vec![
        Entry {
            log_id: log_id(1, 0),
            payload: EntryPayload::Membership(Membership::new(
                vec![[1u64].into_iter().collect()],
                None,
            )),
        },
        Entry {
            log_id: log_id(1, 1),
            payload: EntryPayload::Blank,
        },
        block_entry(2, time_ms, txs),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_snapshot_is_reverified_against_the_chain_before_it_is_installed() {
    use ledger::kv::Space;
    let (spec, root) = common::test_spec();
    let t0 = jiff::Timestamp::now().as_millisecond();
    let block1: Vec<_> = (0..3)
        .map(|i| common::notarize(&root, &format!("b1-{i}")))
        .collect();

    // Node A applies blocks 1 (three txs) and 2 (one more: the tree has four
    // leaves, so its root is one stored hash, the last row of `tree`).
    let dir_a = tempfile::tempdir().expect("temp dir");
    let ledger_a = common::open_ledger(dir_a.path(), spec.clone(), false);
    let mut sm_a = StateMachine::new(ledger_a.clone());
    sm_a.apply(opening(t0, &block1)).await.expect("apply");
    let late = common::notarize(&root, "b2");
    sm_a.apply([block_entry(3, t0 + 10, std::slice::from_ref(&late))])
        .await
        .expect("apply");
    assert_eq!(ledger_a.head().expect("head").height, 2);
    let snap = sm_a
        .get_snapshot_builder()
        .await
        .build_snapshot()
        .await
        .expect("snapshot builds");
    let good = snap.snapshot.into_inner();
    let meta = snap.meta;

    // Node B applied the same block 1 and then fell behind.
    let dir_b = tempfile::tempdir().expect("temp dir");
    let ledger_b = common::open_ledger(dir_b.path(), spec.clone(), false);
    let mut sm_b = StateMachine::new(ledger_b.clone());
    sm_b.apply(opening(t0, &block1)).await.expect("apply");
    assert_eq!(ledger_b.head().expect("head").height, 1);
    let before = dump(&ledger_b);

    // One byte of one transaction's signed body.
    let mut p = unpack(&good);
    let txs = rows(&mut p, Space::Txs);
    let row = txs
        .iter_mut()
        .find(|(k, _)| k.as_slice() == late.id.as_slice())
        .expect("tx row");
    let mut loc: ledger::TxLocation =
        ledger::state::decode(&row.0, &row.1).expect("tx row decodes");
    let at = loc
        .wire
        .windows(3)
        .position(|w| w == b"b2\"")
        .expect("nonce in wire");
    loc.wire[at + 1] = b'3';
    row.1 = ledger::state::encode(&loc).unwrap();
    let tx_byte = pack(&p);

    // Block 2's header: a later time, re-hashed so the block looks whole.
    let mut p = unpack(&good);
    let blocks = rows(&mut p, Space::Blocks);
    let key2 = ledger::history::block_key(2);
    let row = blocks
        .iter_mut()
        .find(|(k, _)| *k == key2)
        .expect("block 2 row");
    let mut block: ledger::Block = ledger::state::decode(&row.0, &row.1).expect("block decodes");
    block.header.time_ms += 1;
    block.hash = block.header.hash();
    row.1 = ledger::state::encode(&block).unwrap();
    let header = pack(&p);

    // One stored tree hash: the root of the four-leaf tree.
    let mut p = unpack(&good);
    let tree = rows(&mut p, Space::Tree);
    tree.last_mut().expect("tree rows").1[0] ^= 0x01;
    let tree_hash = pack(&p);

    // One row of domain state (blocks, txs and tree untouched), and one
    // index row dropped: `verify_chain` alone would not see either.
    let mut p = unpack(&good);
    let state = rows(&mut p, Space::State);
    let value = &mut state.last_mut().expect("state rows").1;
    let last = value.len() - 1;
    value[last] ^= 0x01;
    let state_row = pack(&p);
    let mut p = unpack(&good);
    rows(&mut p, Space::Index).pop().expect("index rows");
    let index_row = pack(&p);

    // A valid chain from the same genesis whose block 1 differs from B's.
    let dir_c = tempfile::tempdir().expect("temp dir");
    let ledger_c = common::open_ledger(dir_c.path(), spec, false);
    let mut sm_c = StateMachine::new(ledger_c.clone());
    let other = common::notarize(&root, "fork");
    sm_c.apply(opening(t0, std::slice::from_ref(&other)))
        .await
        .expect("apply");
    sm_c.apply([block_entry(3, t0 + 10, std::slice::from_ref(&late))])
        .await
        .expect("apply");
    let fork = sm_c
        .get_snapshot_builder()
        .await
        .build_snapshot()
        .await
        .expect("snapshot builds");
    ledger::verify_chain(&ledger_c.store, &ledger_c.spec).expect("the fork is itself valid");

    let cases = [
        (
            "a transaction byte",
            tx_byte,
            meta.clone(),
            "does not hash to its id",
        ),
        (
            "a block header",
            header,
            meta.clone(),
            "re-applied header differs",
        ),
        (
            "a tree hash",
            tree_hash,
            meta.clone(),
            "tree does not give the head's root",
        ),
        (
            "a state row",
            state_row,
            meta.clone(),
            "is not what replaying the chain gives",
        ),
        (
            "an index row",
            index_row,
            meta.clone(),
            "replaying the chain gives",
        ),
        (
            "another block 1",
            fork.snapshot.into_inner(),
            fork.meta,
            "rewrites block 1",
        ),
    ];
    for (what, data, meta, why) in cases {
        let err = sm_b
            .install_snapshot(&meta, Box::new(std::io::Cursor::new(data)))
            .await
            .expect_err(&format!("a snapshot with {what} altered is refused"));
        let shown = format!("{err} {err:?}");
        assert!(shown.contains(why), "{what}: refused, but for `{shown}`");
        assert!(dump(&ledger_b) == before, "{what}: B's store changed");
        assert_eq!(ledger_b.head().expect("head").height, 1);
    }
    assert!(
        sm_b.get_current_snapshot()
            .await
            .expect("current")
            .is_none(),
        "a refused snapshot is not kept as the current one"
    );

    // The untouched snapshot extends B's chain and installs.
    sm_b.install_snapshot(&meta, Box::new(std::io::Cursor::new(good)))
        .await
        .expect("the good snapshot installs");
    assert_eq!(
        ledger_b.head().expect("head"),
        ledger_a.head().expect("head")
    );
    assert_eq!(
        sm_b.applied_state().await.expect("state").0,
        Some(log_id(1, 3))
    );
    ledger::verify_chain(&ledger_b.store, &ledger_b.spec).expect("installed chain re-verifies");
}
