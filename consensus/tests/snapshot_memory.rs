//! A snapshot of a store many times the snapshot memory budget builds,
//! streams in chunks and installs while this process's heap stays within
//! the budget and one block's replay, however large the store.
//!
//! The heap is counted by this test binary's global allocator: everything
//! Rust allocates, on every thread. RocksDB's C++ memory (block caches,
//! memtables, write batches) is outside it; the stores size those
//! themselves. (`peak_alloc` counts: the workspace forbids unsafe code.)

mod common;

use consensus::{SnapshotLimits, StateMachine};
use ledger::BlockProposal;
use openraft::storage::RaftStateMachine;
use openraft::{CommittedLeaderId, Entry, EntryPayload, LogId, Membership};
use peak_alloc::PeakAlloc;
use tokio::io::AsyncWriteExt;

#[global_allocator]
static HEAP: PeakAlloc = PeakAlloc;

/// Starts a measurement: the peak from here on is reported relative to now.
fn heap_mark() -> usize {
    HEAP.reset_peak_usage();
    HEAP.current_usage()
}

fn heap_peak_since(mark: usize) -> usize {
    HEAP.peak_usage().saturating_sub(mark)
}

const BUDGET_BYTES: usize = 256 << 10;
const BLOCKS: u64 = 40;
const TXS_PER_BLOCK: usize = 400;

fn log_id(index: u64) -> LogId<u64> {
    LogId::new(CommittedLeaderId::new(1, 1), index)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_store_many_times_the_budget_snapshots_within_it() {
    let (spec, root) = common::test_spec();
    let limits = SnapshotLimits {
        memory_budget_bytes: BUDGET_BYTES,
        ..SnapshotLimits::default()
    };

    // Node A: a chain of BLOCKS blocks of TXS_PER_BLOCK notarisations.
    let dir_a = tempfile::tempdir().expect("temp dir");
    let ledger_a = common::open_ledger(dir_a.path(), spec.clone(), false);
    let mut sm_a = StateMachine::with_limits(ledger_a.clone(), limits.clone());
    let now_ms = jiff::Timestamp::now().as_millisecond();
    let mut entries = vec![
        Entry {
            log_id: log_id(0),
            payload: EntryPayload::Membership(Membership::new(
                vec![[1u64].into_iter().collect()],
                None,
            )),
        },
        Entry {
            log_id: log_id(1),
            payload: EntryPayload::Blank,
        },
    ];
    let mut block_wire_bytes_max = 0;
    for b in 0..BLOCKS {
        let txs: Vec<Vec<u8>> = (0..TXS_PER_BLOCK)
            .map(|i| common::wire(&common::notarize(&root, &format!("big-{b}-{i}"))))
            .collect();
        block_wire_bytes_max = block_wire_bytes_max.max(txs.iter().map(Vec::len).sum::<usize>());
        entries.push(Entry {
            log_id: log_id(2 + b),
            payload: EntryPayload::Normal(BlockProposal {
                time_ms: now_ms + i64::try_from(b).expect("small"),
                txs,
                cosigs: Vec::new(),
            }),
        });
    }
    for chunk in entries.chunks(4) {
        sm_a.apply(chunk.to_vec()).await.expect("apply");
    }
    assert_eq!(ledger_a.head().expect("head").height, BLOCKS);

    let mark = heap_mark();
    let snap = common::snapshot_of(&mut sm_a).await;
    let build_peak = heap_peak_since(mark);
    let archive_bytes = std::fs::metadata(snap.snapshot.path())
        .expect("archive")
        .len();
    assert!(
        archive_bytes > 8 * BUDGET_BYTES as u64,
        "the store ({archive_bytes} bytes packed) must dwarf the budget"
    );

    // Node B, at genesis, receives the archive in chunks as openraft sends
    // them, then installs it.
    let dir_b = tempfile::tempdir().expect("temp dir");
    let ledger_b = common::open_ledger(dir_b.path(), spec, false);
    let mut sm_b = StateMachine::with_limits(ledger_b.clone(), limits.clone());
    let mut source = std::fs::File::open(snap.snapshot.path()).expect("archive");
    let mut chunk = vec![0u8; 64 << 10];
    let mark = heap_mark();
    let mut incoming = sm_b.begin_receiving_snapshot().await.expect("receive");
    loop {
        let n = std::io::Read::read(&mut source, &mut chunk).expect("read");
        if n == 0 {
            break;
        }
        incoming.write_all(&chunk[..n]).await.expect("chunk lands");
    }
    sm_b.install_snapshot(&snap.meta, incoming)
        .await
        .expect("snapshot installs");
    let install_peak = heap_peak_since(mark);

    eprintln!(
        "store packed: {archive_bytes} bytes; budget {BUDGET_BYTES}; largest block's wire \
         {block_wire_bytes_max} bytes; heap peak: build {build_peak}, receive+verify+install \
         {install_peak}"
    );
    // The replay holds one block at a time (its wire, parsed transactions,
    // change set and tree: measured at about 8.6 times its wire), besides
    // the budget.
    let bound = 2 * BUDGET_BYTES + 12 * block_wire_bytes_max;
    assert!(
        build_peak < bound,
        "build peaked at {build_peak} bytes (bound {bound})"
    );
    assert!(
        install_peak < bound,
        "install peaked at {install_peak} bytes (bound {bound})"
    );
    assert!(
        (install_peak as u64) < archive_bytes / 2,
        "install memory ({install_peak}) does not grow with the store ({archive_bytes})"
    );

    assert_eq!(
        ledger_b.head().expect("head"),
        ledger_a.head().expect("head")
    );
    assert_eq!(
        sm_b.applied_state().await.expect("state").0,
        Some(log_id(1 + BLOCKS))
    );
    for space in ledger::kv::Space::ALL {
        assert!(
            common::rows_of(&ledger_b, space) == common::rows_of(&ledger_a, space),
            "{space:?} differs"
        );
    }
    ledger::verify_chain(&ledger_b.store, &ledger_b.spec).expect("installed chain re-verifies");
}
