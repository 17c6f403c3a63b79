//! The Raft log and vote on the ledger's RocksDB.
//!
//! Layout: `raft_log` maps the log index (u64 big-endian, so key order is
//! index order) to a bincode-encoded [`StoredEntry`]; `raft_meta` holds the
//! vote, the committed log id and the last purged log id. Every write is one
//! RocksDB write batch, so a crash leaves either all of it or none.
//!
//! Appends are group-committed: `append` writes its batch without waiting
//! for the disk (so the entries are readable at once, as openraft requires)
//! and hands the flush callback to a syncer thread, which fsyncs the shared
//! write-ahead log once for every append queued meanwhile and only then
//! tells Raft the entries are durable. The Raft core never blocks on the
//! disk, and one fsync serves as many appends (and unsynced state-machine
//! commits) as arrived during the previous one.
//!
//! An applied block proposal is not kept twice: the state machine replaces
//! it, in the same write batch that applies it, by a pointer to the block it
//! produced ([`StoredEntry::Applied`]). Reading such an entry rebuilds a
//! proposal from the block's transactions and signatures; applied on a
//! lagging follower it gives the same block (refused transactions had no
//! effect, and the block time is kept). So the log costs a few bytes per
//! block instead of a second copy of every transaction, without snapshots.

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
use rocksdb::{IteratorMode, WriteBatch};
use serde::de::DeserializeOwned;

use crate::types::{decode, encode, meta_key, Entry, LogId, NodeId, StorageError, TypeConfig};

/// How a log entry is stored.
#[derive(serde::Serialize, serde::Deserialize)]
pub(crate) enum StoredEntry {
    Whole(Entry),
    /// A normal entry this node applied: `height` is the block it produced
    /// (`None`: every transaction was refused and nothing was recorded).
    Applied {
        log_id: LogId,
        time_ms: i64,
        height: Option<u64>,
    },
}

/// The leading fields of a [`StoredEntry`]: bincode writes fields in order,
/// so the log id of a whole entry decodes without its (large) proposal.
#[derive(serde::Deserialize)]
enum StoredEntryHead {
    Whole { log_id: LogId },
    Applied { log_id: LogId },
}

impl StoredEntryHead {
    fn log_id(&self) -> LogId {
        match self {
            StoredEntryHead::Whole { log_id } | StoredEntryHead::Applied { log_id } => *log_id,
        }
    }
}

/// The write that replaces entry `log_id` by its applied form, if this
/// store holds that entry whole (a state machine may apply entries that
/// reached it by other means, e.g. in storage tests).
pub(crate) fn compaction_write(
    ledger: &Ledger,
    log_id: &LogId,
    time_ms: i64,
    height: Option<u64>,
) -> Option<ExtraWrite> {
    let key = log_key(log_id.index);
    let raw = ledger.store.get_raw(CF_RAFT_LOG, &key).ok()??;
    match decode::<StoredEntryHead>(&raw).ok()? {
        StoredEntryHead::Whole { log_id: held } if held == *log_id => {}
        _ => return None,
    }
    let value = encode(&StoredEntry::Applied {
        log_id: *log_id,
        time_ms,
        height,
    })
    .ok()?;
    Some(ExtraWrite {
        cf: CF_RAFT_LOG,
        key: key.to_vec(),
        value: Some(value),
    })
}

/// An entry as Raft wants it back.
fn load_entry(ledger: &Ledger, raw: &[u8]) -> Result<Entry, String> {
    match decode::<StoredEntry>(raw).map_err(|e| e.to_string())? {
        StoredEntry::Whole(e) => Ok(e),
        StoredEntry::Applied {
            log_id,
            time_ms,
            height: None,
        } => Ok(Entry {
            log_id,
            payload: openraft::EntryPayload::Normal(ledger::BlockProposal {
                time_ms,
                txs: Vec::new(),
                cosigs: Vec::new(),
            }),
        }),
        StoredEntry::Applied {
            log_id,
            height: Some(h),
            ..
        } => {
            let block = ledger::history::read_block(&ledger.store, h)
                .map_err(|e| e.to_string())?
                .ok_or_else(|| format!("log entry {log_id} points at missing block {h}"))?;
            let mut txs = Vec::with_capacity(block.tx_ids.len());
            for id in &block.tx_ids {
                let loc = ledger::history::read_tx(&ledger.store, &id.0)
                    .map_err(|e| e.to_string())?
                    .ok_or_else(|| format!("block {h} lists missing transaction {id}"))?;
                txs.push(loc.wire);
            }
            Ok(Entry {
                log_id,
                payload: openraft::EntryPayload::Normal(ledger::BlockProposal {
                    time_ms: block.header.time_ms,
                    txs,
                    cosigs: block.cosigs,
                }),
            })
        }
    }
}

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

/// Flush callbacks waiting for the syncer; beyond this `append` waits (back-pressure).
pub const SYNC_QUEUE_MAX: usize = 4_096;

/// The syncer's queue: the callbacks of appends written but not yet synced.
#[derive(Clone)]
enum WalSyncer {
    /// A thread of its own (a node).
    Thread(std::sync::mpsc::SyncSender<LogFlushed<TypeConfig>>),
    /// A task on the simulator's one thread, each fsync taking a seeded
    /// simulated time ([`crate::simulation`]).
    Task(tokio::sync::mpsc::Sender<LogFlushed<TypeConfig>>),
}

impl WalSyncer {
    /// Starts the syncer; `None` if the OS will not give a thread (appends
    /// then sync inline).
    fn start(ledger: Arc<Ledger>) -> Option<Self> {
        if crate::simulation::active() {
            let (queue, rx) = tokio::sync::mpsc::channel(SYNC_QUEUE_MAX);
            tokio::spawn(simulated_sync_loop(ledger, rx));
            return Some(Self::Task(queue));
        }
        let (queue, rx) = std::sync::mpsc::sync_channel(SYNC_QUEUE_MAX);
        std::thread::Builder::new()
            .name("zsl-log-sync".into())
            .spawn(move || sync_loop(&ledger, &rx))
            .map_err(|e| tracing::warn!(error = %e, "no log syncer thread; appends sync inline"))
            .ok()?;
        Some(Self::Thread(queue))
    }

    /// Queues `callback` for the next sync; gives it back if the syncer is gone.
    fn send(&self, callback: LogFlushed<TypeConfig>) -> Result<(), LogFlushed<TypeConfig>> {
        match self {
            Self::Thread(queue) => queue.send(callback).map_err(|e| e.0),
            Self::Task(queue) => queue.try_send(callback).map_err(|e| match e {
                tokio::sync::mpsc::error::TrySendError::Full(c)
                | tokio::sync::mpsc::error::TrySendError::Closed(c) => c,
            }),
        }
    }
}

/// One fsync for everything queued, then the callbacks in order. Ends when
/// every log store handle is gone.
fn sync_loop(ledger: &Ledger, rx: &std::sync::mpsc::Receiver<LogFlushed<TypeConfig>>) {
    while let Ok(first) = rx.recv() {
        let mut waiting = vec![first];
        waiting.extend(std::iter::from_fn(|| rx.try_recv().ok()));
        complete(waiting, ledger.store.sync_wal());
    }
}

/// [`sync_loop`] on simulated time: an fsync takes a seeded delay, and the
/// appends queued meanwhile ride on it.
async fn simulated_sync_loop(
    ledger: Arc<Ledger>,
    mut rx: tokio::sync::mpsc::Receiver<LogFlushed<TypeConfig>>,
) {
    while let Some(first) = rx.recv().await {
        tokio::time::sleep(crate::simulation::fsync_delay()).await;
        let mut waiting = vec![first];
        waiting.extend(std::iter::from_fn(|| rx.try_recv().ok()));
        complete(waiting, ledger.store.sync_wal());
    }
}

fn complete(waiting: Vec<LogFlushed<TypeConfig>>, synced: ledger::Result<()>) {
    for callback in waiting {
        callback.log_io_completed(match &synced {
            Ok(()) => Ok(()),
            Err(e) => Err(std::io::Error::other(e.to_string())),
        });
    }
}

/// The Raft log store. Cheap to clone: the clone is the log reader that
/// replication tasks use concurrently (reads only; all writes come from the
/// Raft core, one at a time).
#[derive(Clone)]
pub struct LogStore {
    ledger: Arc<Ledger>,
    committed: CommittedIndex,
    /// `None` for a store that does not sync (tests), or without a thread.
    syncer: Option<WalSyncer>,
}

impl LogStore {
    pub fn new(ledger: Arc<Ledger>) -> Self {
        let syncer = if ledger.store.syncs() {
            WalSyncer::start(ledger.clone())
        } else {
            None
        };
        Self {
            ledger,
            committed: CommittedIndex::default(),
            syncer,
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

    fn last_log_id(&self) -> Result<Option<LogId>, StorageError> {
        let db = self.ledger.store.db();
        let cf = db
            .cf_handle(CF_RAFT_LOG)
            .ok_or_else(|| StorageIOError::read_logs(&missing_cf(CF_RAFT_LOG)))?;
        match db.iterator_cf(cf, IteratorMode::End).next() {
            Some(Ok((_, v))) => decode::<StoredEntryHead>(&v)
                .map(|h| Some(h.log_id()))
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
        self.ledger
            .store
            .write_raft_batch(batch)
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
            .map(|(_, v)| {
                load_entry(&self.ledger, v)
                    .map_err(|e| StorageIOError::read_logs(&std::io::Error::other(e)).into())
            })
            .collect()
    }
}

impl RaftLogStorage<TypeConfig> for LogStore {
    type LogReader = LogStore;

    async fn get_log_state(&mut self) -> Result<LogState<TypeConfig>, StorageError> {
        let last_purged_log_id: Option<LogId> = self.read_meta(meta_key::LAST_PURGED)?;
        let last_log_id = match self.last_log_id()? {
            Some(id) => Some(id),
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
        // instead of waiting for a leader to tell it. Not synced: a lost value
        // only means waiting for the leader to say it again, and an fsync
        // here would sit on every commit's path.
        let value = match &committed {
            Some(id) => Some(encode(id).map_err(|e| StorageIOError::write(&e))?),
            None => None,
        };
        self.ledger
            .store
            .commit_relaxed(
                &ChangeSet::default(),
                &[ExtraWrite {
                    cf: CF_RAFT_META,
                    key: meta_key::COMMITTED.to_vec(),
                    value,
                }],
            )
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
            let log_id = entry.log_id;
            let value = encode(&StoredEntry::Whole(entry))
                .map_err(|e| StorageIOError::write_log_entry(log_id, &e))?;
            writes.push(ExtraWrite {
                cf: CF_RAFT_LOG,
                key: log_key(log_id.index).to_vec(),
                value: Some(value),
            });
        }
        // One batch, readable once written; durable once the syncer's next
        // fsync of the write-ahead log covers it, which is when Raft hears so.
        let result = match &self.syncer {
            Some(_) => self
                .ledger
                .store
                .commit_relaxed(&ChangeSet::default(), &writes),
            None => self.write_raw(&writes),
        };
        if let Err(e) = result {
            callback.log_io_completed(Err(std::io::Error::other(e.to_string())));
            return Err(StorageIOError::write_logs(&e).into());
        }
        let Some(syncer) = &self.syncer else {
            callback.log_io_completed(Ok(()));
            return Ok(());
        };
        if let Err(callback) = syncer.send(callback) {
            // The syncer thread is gone: sync here.
            let synced = self.ledger.store.sync_wal();
            callback.log_io_completed(
                synced
                    .as_ref()
                    .map(|_| ())
                    .map_err(|e| std::io::Error::other(e.to_string())),
            );
            synced.map_err(|e| StorageError::from(StorageIOError::write_logs(&e)))?;
        }
        Ok(())
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state_machine::StateMachine;
    use ledger::record::{build_body, DocumentNotarize};
    use ledger::spec::RootRegulator;
    use ledger::store::StoreOptions;
    use ledger::{BlockProposal, SignedTx};
    use openraft::storage::RaftStateMachine;
    use openraft::{CommittedLeaderId, EntryPayload};

    fn ledger_at(dir: &std::path::Path, spec: ledger::ChainSpec) -> Arc<Ledger> {
        let options = StoreOptions {
            sync: false,
            ..StoreOptions::default()
        };
        Arc::new(Ledger::open(dir, spec, &options).expect("ledger opens"))
    }

    fn notarize(key: &ed25519_dalek::SigningKey, n: &str) -> Vec<u8> {
        let rec = DocumentNotarize {
            document_hash: hex::encode(ledger::hash::sha256(n.as_bytes())),
            title: n.into(),
            media_type: None,
            note: None,
        };
        let body = build_body(
            "document.notarize",
            "zsl-log-test",
            "root",
            &jiff::Timestamp::now().to_string(),
            n,
            &rec,
        );
        serde_json::to_vec(&SignedTx::sign(body, key).expect("signs").to_json()).expect("json")
    }

    fn entry(index: u64, proposal: BlockProposal) -> Entry {
        Entry {
            log_id: LogId::new(CommittedLeaderId::new(1, 1), index),
            payload: EntryPayload::Normal(proposal),
        }
    }

    /// Applied entries shrink to pointers, and what they read back as
    /// re-applies to the same chain on another node.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn applied_entries_are_kept_as_pointers_and_rebuild_the_same_blocks() {
        let root = ed25519_dalek::SigningKey::from_bytes(&[7u8; 32]);
        let spec = genesis::build_spec(genesis::GenesisParams {
            chain_id: "zsl-log-test".into(),
            genesis_time: "2024-01-01T00:00:00+08:00".into(),
            root_regulators: vec![RootRegulator {
                id: "root".into(),
                name: "root".into(),
                public_key: hex::encode(root.verifying_key().to_bytes()),
            }],
            validators: vec![],
            districts: None,
            sm2_accounts: false,
        })
        .expect("spec");
        let dir_a = tempfile::tempdir().expect("dir");
        let a = ledger_at(dir_a.path(), spec.clone());
        let store = LogStore::new(a.clone());

        let now = jiff::Timestamp::now().as_millisecond();
        let (t1, t2) = (notarize(&root, "one"), notarize(&root, "two"));
        let entries = vec![
            // A block with a refused duplicate in the middle.
            entry(
                1,
                BlockProposal {
                    time_ms: now,
                    txs: vec![t1.clone(), t1.clone(), t2],
                    cosigs: Vec::new(),
                },
            ),
            // Nothing valid: no block.
            entry(
                2,
                BlockProposal {
                    time_ms: now + 1,
                    txs: vec![t1, b"{}".to_vec()],
                    cosigs: Vec::new(),
                },
            ),
            entry(
                3,
                BlockProposal {
                    time_ms: now + 2,
                    txs: vec![notarize(&root, "three")],
                    cosigs: Vec::new(),
                },
            ),
        ];
        let whole: Vec<ExtraWrite> = entries
            .iter()
            .map(|e| ExtraWrite {
                cf: CF_RAFT_LOG,
                key: log_key(e.log_id.index).to_vec(),
                value: Some(encode(&StoredEntry::Whole(e.clone())).expect("encodes")),
            })
            .collect();
        store.write_raw(&whole).expect("log written");
        let size_whole: usize = whole.iter().map(|w| w.value.as_ref().unwrap().len()).sum();

        let mut sm = StateMachine::new(a.clone());
        sm.apply(entries.clone()).await.expect("applies");
        let head_a = a.head().expect("head");
        assert_eq!((head_a.height, head_a.tree_size), (2, 3));

        // Each entry is now a pointer, far smaller than the transactions.
        let rows = a
            .store
            .scan_raw(CF_RAFT_LOG, &log_key(0), &LOG_KEY_END, 10)
            .expect("scan");
        assert_eq!(rows.len(), 3);
        let size_now: usize = rows.iter().map(|(_, v)| v.len()).sum();
        for (_, v) in &rows {
            assert!(matches!(
                decode::<StoredEntry>(v).expect("decodes"),
                StoredEntry::Applied { .. }
            ));
        }
        assert!(size_now * 10 < size_whole, "{size_now} vs {size_whole}");

        // Read back as Raft would, and replay on a fresh node: the same chain.
        let mut reader = store.clone();
        let back = reader.try_get_log_entries(1..4).await.expect("reads");
        assert_eq!(back.len(), 3);
        assert_eq!(
            back.iter().map(|e| e.log_id).collect::<Vec<_>>(),
            entries.iter().map(|e| e.log_id).collect::<Vec<_>>()
        );
        let dir_b = tempfile::tempdir().expect("dir");
        let b = ledger_at(dir_b.path(), spec.clone());
        for e in back {
            let EntryPayload::Normal(p) = e.payload else {
                panic!("payload kind changed");
            };
            b.apply(&p, &[]).expect("re-applies");
        }
        assert_eq!(b.head().expect("head"), head_a);
        ledger::verify_chain(&b.store, &spec).expect("verifies");
        // The log state still reports the last index.
        let mut s = store.clone();
        let st = s.get_log_state().await.expect("state");
        assert_eq!(st.last_log_id.map(|l| l.index), Some(3));
    }
}
