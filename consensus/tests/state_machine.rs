//! The state machine over a real ledger: blocks, applied state, and a
//! snapshot carried from one ledger to another.

mod common;

use std::path::Path;
use std::sync::Arc;

use consensus::{ApplyResponse, SnapshotFile, SnapshotLimits, StateMachine, TxResult};
use ledger::{BlockProposal, Ledger};
use openraft::storage::RaftStateMachine;
use openraft::{CommittedLeaderId, Entry, EntryPayload, LogId, Membership, StoredMembership};

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

    let snap = common::snapshot_of(&mut sm_a).await;
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

/// A column family's rows, `(key, value)` in key order.
type Rows = Vec<(Vec<u8>, Vec<u8>)>;

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

/// Node A's log in the re-verification tests: blocks 1 (three txs) and 2
/// (one more: the tree has four leaves, so its root is one stored hash, the
/// last row of `tree`).
struct TwoBlocks {
    t0: i64,
    block1: Vec<ledger::SignedTx>,
    late: ledger::SignedTx,
}

impl TwoBlocks {
    fn new(root: &genesis::KeyFile) -> Self {
        Self {
            t0: jiff::Timestamp::now().as_millisecond(),
            block1: (0..3)
                .map(|i| common::notarize(root, &format!("b1-{i}")))
                .collect(),
            late: common::notarize(root, "b2"),
        }
    }

    /// A ledger that applied both blocks, with its state machine.
    async fn applied(
        &self,
        spec: &ledger::ChainSpec,
    ) -> (tempfile::TempDir, Arc<Ledger>, StateMachine) {
        let dir = tempfile::tempdir().expect("temp dir");
        let ledger = common::open_ledger(dir.path(), spec.clone(), false);
        let mut sm = StateMachine::new(ledger.clone());
        sm.apply(opening(self.t0, &self.block1))
            .await
            .expect("apply");
        sm.apply([block_entry(
            3,
            self.t0 + 10,
            std::slice::from_ref(&self.late),
        )])
        .await
        .expect("apply");
        assert_eq!(ledger.head().expect("head").height, 2);
        (dir, ledger, sm)
    }

    /// What a faulty or hostile leader could send: a well-formed snapshot of
    /// the same chain with its store altered by `alter` before the build.
    async fn altered(
        &self,
        spec: &ledger::ChainSpec,
        alter: impl FnOnce(&rocksdb::DB),
    ) -> (tempfile::TempDir, openraft::Snapshot<consensus::TypeConfig>) {
        let (dir, ledger, mut sm) = self.applied(spec).await;
        alter(ledger.store.db());
        let snap = common::snapshot_of(&mut sm).await;
        (dir, snap)
    }
}

fn put(db: &rocksdb::DB, space: ledger::kv::Space, key: &[u8], value: &[u8]) {
    let cf = db.cf_handle(space.cf_name()).expect("column family");
    db.put_cf(cf, key, value).expect("put");
}

/// A copy of a snapshot's archive with one byte flipped, `at` bytes from its end.
fn flipped_archive(
    snap: &openraft::Snapshot<consensus::TypeConfig>,
    at: usize,
    dir: &Path,
) -> SnapshotFile {
    let mut bytes = std::fs::read(snap.snapshot.path()).expect("archive");
    let i = bytes.len() - at;
    bytes[i] ^= 0x01;
    let path = dir.join("flipped.snap");
    std::fs::write(&path, bytes).expect("write");
    SnapshotFile::open(&path).expect("open")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_snapshot_is_reverified_against_the_chain_before_it_is_installed() {
    use ledger::kv::Space;
    let (spec, root) = common::test_spec();
    let story = TwoBlocks::new(&root);
    let (_dir_a, ledger_a, mut sm_a) = story.applied(&spec).await;
    let good = common::snapshot_of(&mut sm_a).await;
    let meta = good.meta.clone();

    // Node B applied the same block 1 and then fell behind.
    let dir_b = tempfile::tempdir().expect("temp dir");
    let ledger_b = common::open_ledger(dir_b.path(), spec.clone(), false);
    let mut sm_b = StateMachine::new(ledger_b.clone());
    sm_b.apply(opening(story.t0, &story.block1))
        .await
        .expect("apply");
    assert_eq!(ledger_b.head().expect("head").height, 1);
    let before = dump(&ledger_b);

    // One byte of one transaction's signed body.
    let late_id = story.late.id;
    let (_d1, tx_byte) = story
        .altered(&spec, |db| {
            let cf = db.cf_handle(Space::Txs.cf_name()).expect("cf");
            let raw = db
                .get_cf(cf, late_id.as_slice())
                .expect("get")
                .expect("tx row");
            let mut loc: ledger::TxLocation =
                ledger::state::decode(late_id.as_slice(), &raw).expect("tx row decodes");
            let at = loc
                .wire
                .windows(3)
                .position(|w| w == b"b2\"")
                .expect("nonce in wire");
            loc.wire[at + 1] = b'3';
            put(
                db,
                Space::Txs,
                late_id.as_slice(),
                &ledger::state::encode(&loc).unwrap(),
            );
        })
        .await;
    // Block 2's header: a later time, re-hashed so the block looks whole.
    let (_d2, header) = story
        .altered(&spec, |db| {
            let key2 = ledger::history::block_key(2);
            let cf = db.cf_handle(Space::Blocks.cf_name()).expect("cf");
            let raw = db.get_cf(cf, &key2).expect("get").expect("block 2 row");
            let mut block: ledger::Block =
                ledger::state::decode(&key2, &raw).expect("block decodes");
            block.header.time_ms += 1;
            block.hash = block.header.hash();
            put(
                db,
                Space::Blocks,
                &key2,
                &ledger::state::encode(&block).unwrap(),
            );
        })
        .await;
    // One stored tree hash: the root of the four-leaf tree.
    let (_d3, tree_hash) = story
        .altered(&spec, |db| {
            let (k, mut v) = last_row(db, Space::Tree);
            v[0] ^= 0x01;
            put(db, Space::Tree, &k, &v);
        })
        .await;
    // One row of domain state (blocks, txs and tree untouched), and one
    // index row dropped: `verify_chain` alone would not see either.
    let (_d4, state_row) = story
        .altered(&spec, |db| {
            let (k, mut v) = last_row(db, Space::State);
            let last = v.len() - 1;
            v[last] ^= 0x01;
            put(db, Space::State, &k, &v);
        })
        .await;
    let (_d5, index_row) = story
        .altered(&spec, |db| {
            let (k, _) = last_row(db, Space::Index);
            let cf = db.cf_handle(Space::Index.cf_name()).expect("cf");
            db.delete_cf(cf, k).expect("delete");
        })
        .await;
    let (_d6, extra_row) = story
        .altered(&spec, |db| put(db, Space::Index, b"\xffplanted", b"row"))
        .await;

    // A valid chain from the same genesis whose block 1 differs from B's.
    let dir_c = tempfile::tempdir().expect("temp dir");
    let ledger_c = common::open_ledger(dir_c.path(), spec.clone(), false);
    let mut sm_c = StateMachine::new(ledger_c.clone());
    let other = common::notarize(&root, "fork");
    sm_c.apply(opening(story.t0, std::slice::from_ref(&other)))
        .await
        .expect("apply");
    sm_c.apply([block_entry(
        3,
        story.t0 + 10,
        std::slice::from_ref(&story.late),
    )])
    .await
    .expect("apply");
    let fork = common::snapshot_of(&mut sm_c).await;
    ledger::verify_chain(&ledger_c.store, &ledger_c.spec).expect("the fork is itself valid");

    let scratch = tempfile::tempdir().expect("temp dir");
    let archive_len = std::fs::metadata(good.snapshot.path())
        .expect("archive")
        .len() as usize;
    let mut older = meta.clone();
    older.last_log_id = Some(log_id(1, 2));
    let reopen = |s: &openraft::Snapshot<consensus::TypeConfig>| {
        SnapshotFile::open(s.snapshot.path()).expect("archive opens")
    };
    let cases = [
        (
            "a transaction byte",
            *tx_byte.snapshot,
            meta.clone(),
            "does not hash to its id",
        ),
        (
            "a block header",
            *header.snapshot,
            meta.clone(),
            "re-applied header differs",
        ),
        (
            "a tree hash",
            *tree_hash.snapshot,
            meta.clone(),
            "tree does not give the head's root",
        ),
        (
            "a state row",
            *state_row.snapshot,
            meta.clone(),
            "is not what replaying the chain gives",
        ),
        (
            "an index row",
            *index_row.snapshot,
            meta.clone(),
            "which replaying the chain gives",
        ),
        (
            "an added row",
            *extra_row.snapshot,
            meta.clone(),
            "replaying the chain gives no row",
        ),
        (
            "another block 1",
            *fork.snapshot,
            fork.meta.clone(),
            "rewrites block 1",
        ),
        // A byte in the middle of the archive (inside a table file's
        // content, or a header) and the archive's last byte (its end mark).
        (
            "an archive byte",
            flipped_archive(&good, archive_len / 2, scratch.path()),
            meta.clone(),
            "the snapshot archive",
        ),
        (
            "the end of the archive",
            flipped_archive(&good, 1, scratch.path()),
            meta.clone(),
            "the archive",
        ),
        (
            "the meta's log id",
            reopen(&good),
            older,
            "but its meta names",
        ),
    ];
    for (what, data, meta, why) in cases {
        let err = sm_b
            .install_snapshot(&meta, Box::new(data))
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
    assert_eq!(
        working_files(&ledger_b),
        Vec::<String>::new(),
        "refused snapshots leave no working files"
    );

    // The untouched snapshot extends B's chain and installs.
    sm_b.install_snapshot(&meta, Box::new(reopen(&good)))
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
    for space in ledger::kv::Space::ALL {
        assert_eq!(
            common::rows_of(&ledger_b, space),
            common::rows_of(&ledger_a, space),
            "{space:?}"
        );
    }
    // B keeps the archive it installed and can hand it on.
    let kept = sm_b
        .get_current_snapshot()
        .await
        .expect("current")
        .expect("the installed snapshot is kept");
    assert_eq!(kept.meta, meta);
    assert_eq!(
        std::fs::read(kept.snapshot.path()).expect("kept archive"),
        std::fs::read(good.snapshot.path()).expect("archive")
    );
}

/// A crash while a verified snapshot is copied in (here: injected after the
/// first batch) leaves a marker; the next start finishes the copy before
/// Raft reads the applied state.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_interrupted_install_is_finished_on_the_next_start() {
    let (spec, root) = common::test_spec();
    let story = TwoBlocks::new(&root);
    let (_dir_a, ledger_a, mut sm_a) = story.applied(&spec).await;
    let good = common::snapshot_of(&mut sm_a).await;

    let dir_b = tempfile::tempdir().expect("temp dir");
    let ledger_b = common::open_ledger(dir_b.path(), spec.clone(), false);
    let limits = SnapshotLimits {
        memory_budget_bytes: 0,
        interrupt_after_batches: Some(1),
        ..SnapshotLimits::default()
    };
    let mut sm_b = StateMachine::with_limits(ledger_b.clone(), limits);
    sm_b.apply(opening(story.t0, &story.block1))
        .await
        .expect("apply");
    let err = sm_b
        .install_snapshot(
            &good.meta,
            Box::new(SnapshotFile::open(good.snapshot.path()).expect("open")),
        )
        .await
        .expect_err("the injected crash stops the install");
    assert!(format!("{err:?}").contains("fault injection"), "{err:?}");
    let differ = ledger::kv::Space::ALL
        .into_iter()
        .filter(|s| common::rows_of(&ledger_b, *s) != common::rows_of(&ledger_a, *s))
        .count();
    assert!(differ > 0, "the crash came before the copy was done");
    assert!(
        ledger_b
            .store
            .get_raw(ledger::store::CF_RAFT_META, b"snapshot_installing")
            .expect("read")
            .is_some(),
        "the install marker stays"
    );
    drop(sm_b);
    // As after a restart: a new state machine over the same store.
    let mut restarted = StateMachine::new(ledger_b.clone());
    assert_eq!(
        restarted.applied_state().await.expect("state").0,
        Some(log_id(1, 3))
    );
    assert_eq!(
        ledger_b.head().expect("head"),
        ledger_a.head().expect("head")
    );
    for space in ledger::kv::Space::ALL {
        assert_eq!(
            common::rows_of(&ledger_b, space),
            common::rows_of(&ledger_a, space),
            "{space:?}"
        );
    }
    ledger::verify_chain(&ledger_b.store, &ledger_b.spec).expect("installed chain re-verifies");
    assert_eq!(working_files(&ledger_b), Vec::<String>::new());
}

fn last_row(db: &rocksdb::DB, space: ledger::kv::Space) -> (Vec<u8>, Vec<u8>) {
    let cf = db.cf_handle(space.cf_name()).expect("cf");
    let (k, v) = db
        .iterator_cf(cf, rocksdb::IteratorMode::End)
        .next()
        .expect("a row")
        .expect("row");
    (k.to_vec(), v.to_vec())
}

/// What a node's snapshot directory holds besides kept archives.
fn working_files(ledger: &ledger::Ledger) -> Vec<String> {
    let dir = ledger.store.db().path().join("zsl-snapshots");
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .expect("snapshot directory")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .filter(|n| !n.starts_with("installed-") && !n.starts_with("built-"))
        .collect();
    names.sort();
    names
}
