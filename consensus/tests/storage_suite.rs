//! openraft's own storage test suite against the RocksDB log store and state machine.

mod common;

use consensus::{LogStore, StateMachine, TypeConfig};
use openraft::testing::{StoreBuilder, Suite};
use openraft::{StorageError, StorageIOError};
use tempfile::TempDir;

/// Each case gets a fresh ledger in its own temp dir; the dir is the guard
/// the suite drops when the case ends. Every ledger is of one chain spec:
/// the suite moves snapshots between stores, and a node refuses a snapshot
/// of another genesis (it re-verifies what it installs).
struct FreshLedger(ledger::ChainSpec);

impl StoreBuilder<TypeConfig, LogStore, StateMachine, TempDir> for FreshLedger {
    async fn build(&self) -> Result<(TempDir, LogStore, StateMachine), StorageError<u64>> {
        let dir = tempfile::tempdir().map_err(|e| StorageIOError::write(&e))?;
        let spec = self.0.clone();
        // Throwaway stores: skip fsync so the ~35 cases stay fast.
        let ledger = common::open_ledger(dir.path(), spec, false);
        Ok((
            dir,
            LogStore::new(ledger.clone()),
            StateMachine::new(ledger),
        ))
    }
}

#[test]
fn openraft_storage_suite() {
    // The suite runs every case on its own tokio runtime, so this is a plain #[test].
    if let Err(e) = Suite::test_all(FreshLedger(common::test_spec().0)) {
        panic!("storage suite failed: {e}");
    }
}
