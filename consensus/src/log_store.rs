//! The Raft log and vote on the ledger's RocksDB.
//!
//! Layout: `raft_log` maps the log index (u64 big-endian, so key order is
//! index order) to a bincode-encoded [`Entry`]; `raft_meta` holds the vote,
//! the committed log id and the last purged log id. Every write is one
//! RocksDB write batch, so a crash leaves either all of it or none.

// openraft's `StorageError` is what its storage traits return; boxing it
// in private helpers would only add conversions at every trait method.
#![allow(clippy::result_large_err)]

use std::fmt::Debug;
use std::ops::{Bound, RangeBounds};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use ledger::kv::ChangeSet;
use ledger::store::{ExtraWrite, CF_RAFT_LOG, CF_RAFT_META};
use ledger::Ledger;
use openraft::storage::{LogFlushed, RaftLogStorage};
use openraft::{LogState, OptionalSend, RaftLogReader, StorageIOError, Vote};
use rocksdb::{IteratorMode, WriteBatch, WriteOptions};
use serde::de::DeserializeOwned;

use crate::types::{decode, encode, meta_key, Entry, LogId, NodeId, StorageError, TypeConfig};

/// One past the largest 8-byte key: the exclusive end of "the whole log".
const LOG_KEY_END: [u8; 9] = [0xff; 9];

fn log_key(index: u64) -> [u8; 8] {
    index.to_be_bytes()
}

/// The committed index as last saved by Raft, readable without a round trip
/// to the Raft core (for metrics). Stores `index + 1`; 0 means none.
#[derive(Debug, Clone, Default)]
pub struct CommittedIndex(Arc<AtomicU64>);

impl CommittedIndex {
    pub fn get(&self) -> Option<u64> {
        self.0.load(Ordering::Relaxed).checked_sub(1)
    }

    fn set(&self, index: Option<u64>) {
        self.0
            .store(index.map_or(0, |i| i.saturating_add(1)), Ordering::Relaxed);
    }
}

/// The Raft log store. Cheap to clone: the clone is the log reader that
/// replication tasks use concurrently (reads only; all writes come from the
/// Raft core, one at a time).
#[derive(Clone)]
pub struct LogStore {
    ledger: Arc<Ledger>,
    committed: CommittedIndex,
}

impl LogStore {
    pub fn new(ledger: Arc<Ledger>) -> Self {
        Self {
            ledger,
            committed: CommittedIndex::default(),
        }
    }

    /// A handle on the committed index this store records.
    pub fn committed_index(&self) -> CommittedIndex {
        self.committed.clone()
    }

    fn read_meta<T: DeserializeOwned>(&self, key: &[u8]) -> Result<Option<T>, StorageError> {
        let raw = self
            .ledger
            .store
            .get_raw(CF_RAFT_META, key)
            .map_err(|e| StorageIOError::read(&e))?;
        match raw {
            Some(bytes) => decode(&bytes)
                .map(Some)
                .map_err(|e| StorageIOError::read(&e).into()),
            None => Ok(None),
        }
    }

    /// Writes `raft_log` / `raft_meta` entries in one batch, synced per the store's options.
    fn write_raw(&self, writes: &[ExtraWrite]) -> Result<(), ledger::LedgerError> {
        self.ledger.store.commit(&ChangeSet::default(), writes)
    }

    fn last_entry(&self) -> Result<Option<Entry>, StorageError> {
        let db = self.ledger.store.db();
        let cf = db
            .cf_handle(CF_RAFT_LOG)
            .ok_or_else(|| StorageIOError::read_logs(&missing_cf(CF_RAFT_LOG)))?;
        match db.iterator_cf(cf, IteratorMode::End).next() {
            Some(Ok((_, v))) => decode(&v)
                .map(Some)
                .map_err(|e| StorageIOError::read_logs(&e).into()),
            Some(Err(e)) => Err(StorageIOError::read_logs(&e).into()),
            None => Ok(None),
        }
    }

    /// Deletes the log keys in `[from, to)` (and, with `purged`, records the
    /// new last purged id) in one synced batch. Range deletes bypass
    /// `Store::commit`, so sync is forced here: a truncation that a crash
    /// undid could resurrect entries of a deposed leader.
    fn delete_range(
        &self,
        from: &[u8],
        to: &[u8],
        purged: Option<&LogId>,
    ) -> Result<(), StorageError> {
        let db = self.ledger.store.db();
        let log_cf = db
            .cf_handle(CF_RAFT_LOG)
            .ok_or_else(|| StorageIOError::write_logs(&missing_cf(CF_RAFT_LOG)))?;
        let mut batch = WriteBatch::default();
        batch.delete_range_cf(log_cf, from, to);
        if let Some(id) = purged {
            let meta_cf = db
                .cf_handle(CF_RAFT_META)
                .ok_or_else(|| StorageIOError::write_logs(&missing_cf(CF_RAFT_META)))?;
            batch.put_cf(
                meta_cf,
                meta_key::LAST_PURGED,
                encode(id).map_err(|e| StorageIOError::write_logs(&e))?,
            );
        }
        let mut wo = WriteOptions::default();
        wo.set_sync(true);
        db.write_opt(batch, &wo)
            .map_err(|e| StorageIOError::write_logs(&e).into())
    }
}

fn missing_cf(name: &str) -> std::io::Error {
    std::io::Error::new(
        std::io::ErrorKind::NotFound,
        format!("column family {name} is missing"),
    )
}

/// `[start, end)` of a range of log indexes; `end == None` means unbounded.
fn index_bounds<RB: RangeBounds<u64>>(range: &RB) -> (u64, Option<u64>) {
    let start = match range.start_bound() {
        Bound::Included(i) => *i,
        Bound::Excluded(i) => i.saturating_add(1),
        Bound::Unbounded => 0,
    };
    let end = match range.end_bound() {
        Bound::Included(i) => i.checked_add(1),
        Bound::Excluded(i) => Some(*i),
        Bound::Unbounded => None,
    };
    (start, end)
}

impl RaftLogReader<TypeConfig> for LogStore {
    async fn try_get_log_entries<RB: RangeBounds<u64> + Clone + Debug + OptionalSend>(
        &mut self,
        range: RB,
    ) -> Result<Vec<Entry>, StorageError> {
        let (start, end) = index_bounds(&range);
        let from = log_key(start);
        let rows = match end {
            Some(end) => self
                .ledger
                .store
                .scan_raw(CF_RAFT_LOG, &from, &log_key(end), usize::MAX),
            None => self
                .ledger
                .store
                .scan_raw(CF_RAFT_LOG, &from, &LOG_KEY_END, usize::MAX),
        }
        .map_err(|e| StorageIOError::read_logs(&e))?;
        rows.iter()
            .map(|(_, v)| decode::<Entry>(v).map_err(|e| StorageIOError::read_logs(&e).into()))
            .collect()
    }
}

impl RaftLogStorage<TypeConfig> for LogStore {
    type LogReader = LogStore;

    async fn get_log_state(&mut self) -> Result<LogState<TypeConfig>, StorageError> {
        let last_purged_log_id: Option<LogId> = self.read_meta(meta_key::LAST_PURGED)?;
        let last_log_id = match self.last_entry()? {
            Some(e) => Some(e.log_id),
            None => last_purged_log_id,
        };
        Ok(LogState {
            last_purged_log_id,
            last_log_id,
        })
    }

    async fn get_log_reader(&mut self) -> Self::LogReader {
        self.clone()
    }

    async fn save_vote(&mut self, vote: &Vote<NodeId>) -> Result<(), StorageError> {
        let value = encode(vote).map_err(|e| StorageIOError::write_vote(&e))?;
        self.write_raw(&[ExtraWrite {
            cf: CF_RAFT_META,
            key: meta_key::VOTE.to_vec(),
            value: Some(value),
        }])
        .map_err(|e| StorageIOError::write_vote(&e).into())
    }

    async fn read_vote(&mut self) -> Result<Option<Vote<NodeId>>, StorageError> {
        self.read_meta(meta_key::VOTE)
    }

    async fn save_committed(&mut self, committed: Option<LogId>) -> Result<(), StorageError> {
        // Saved so that a restart re-applies up to the committed index at once
        // instead of waiting for a leader to tell it.
        let value = match &committed {
            Some(id) => Some(encode(id).map_err(|e| StorageIOError::write(&e))?),
            None => None,
        };
        self.write_raw(&[ExtraWrite {
            cf: CF_RAFT_META,
            key: meta_key::COMMITTED.to_vec(),
            value,
        }])
        .map_err(|e| StorageIOError::write(&e))?;
        self.committed.set(committed.map(|id| id.index));
        Ok(())
    }

    async fn read_committed(&mut self) -> Result<Option<LogId>, StorageError> {
        let committed: Option<LogId> = self.read_meta(meta_key::COMMITTED)?;
        self.committed.set(committed.map(|id| id.index));
        Ok(committed)
    }

    async fn append<I>(
        &mut self,
        entries: I,
        callback: LogFlushed<TypeConfig>,
    ) -> Result<(), StorageError>
    where
        I: IntoIterator<Item = Entry> + OptionalSend,
        I::IntoIter: OptionalSend,
    {
        let mut writes = Vec::new();
        for entry in entries {
            let value =
                encode(&entry).map_err(|e| StorageIOError::write_log_entry(entry.log_id, &e))?;
            writes.push(ExtraWrite {
                cf: CF_RAFT_LOG,
                key: log_key(entry.log_id.index).to_vec(),
                value: Some(value),
            });
        }
        // One batch, synced (StoreOptions::sync) before it returns: the
        // callback below is Raft's signal that the entries are durable.
        let result = self.write_raw(&writes);
        match result {
            Ok(()) => {
                callback.log_io_completed(Ok(()));
                Ok(())
            }
            Err(e) => {
                callback.log_io_completed(Err(std::io::Error::other(e.to_string())));
                Err(StorageIOError::write_logs(&e).into())
            }
        }
    }

    async fn truncate(&mut self, log_id: LogId) -> Result<(), StorageError> {
        self.delete_range(&log_key(log_id.index), &LOG_KEY_END, None)
    }

    async fn purge(&mut self, log_id: LogId) -> Result<(), StorageError> {
        let to = log_id.index.checked_add(1).map(log_key);
        match to {
            Some(to) => self.delete_range(&log_key(0), &to, Some(&log_id)),
            None => self.delete_range(&log_key(0), &LOG_KEY_END, Some(&log_id)),
        }
    }
}
