//! RocksDB storage: the one place ledger state is written.
//!
//! Column families: the ledger's [`Space`]s plus `raft_log` and `raft_meta`,
//! which the consensus crate owns. A block's change set, and the Raft
//! metadata that goes with it, land in one write batch, synced.

use std::path::Path;

use rocksdb::{
    ColumnFamilyDescriptor, Direction, IteratorMode, Options, ReadOptions, WriteBatch,
    WriteOptions, DB,
};

use crate::error::{LedgerError, Result};
use crate::kv::{ChangeSet, KvError, KvRead, KvResult, Space};

pub const CF_RAFT_LOG: &str = "raft_log";
pub const CF_RAFT_META: &str = "raft_meta";

/// A write outside the ledger spaces (Raft's column families), carried in the same batch.
#[derive(Debug, Clone)]
pub struct ExtraWrite {
    pub cf: &'static str,
    pub key: Vec<u8>,
    /// `None` deletes.
    pub value: Option<Vec<u8>>,
}

#[derive(Debug, Clone)]
pub struct StoreOptions {
    /// fsync every commit (Raft's durability needs it; tests of throwaway stores may skip it).
    pub sync: bool,
    /// RocksDB block cache, bytes.
    pub cache_bytes: usize,
    /// Keys and values of the domain spaces kept in this process's read
    /// cache at most, bytes (see `ReadCache`).
    pub read_cache_bytes: usize,
    /// RocksDB memtable size per column family, bytes.
    pub write_buffer_bytes: usize,
}

impl Default for StoreOptions {
    fn default() -> Self {
        Self {
            sync: true,
            cache_bytes: 64 << 20,
            read_cache_bytes: READ_CACHE_BYTES_MAX,
            write_buffer_bytes: 16 << 20,
        }
    }
}

pub struct Store {
    db: DB,
    sync: bool,
    cache: ReadCache,
    /// The simulator's disk model ([`Store::simulate_disk`]); unset on a node.
    simulated: std::sync::OnceLock<std::sync::Mutex<UnsyncedWrites>>,
}

/// A simulated disk's unsynced writes: what a power loss may take back.
#[derive(Default)]
struct UnsyncedWrites {
    /// One entry per write batch not yet covered by a sync, oldest first:
    /// each key it wrote, with the value the key held before.
    undo: Vec<Vec<PriorValue>>,
    /// Set by [`Store::simulate_power_loss`]: every later write fails.
    down: bool,
}

/// A key's value before a write: column family, key, value (`None`: absent).
type PriorValue = (&'static str, Vec<u8>, Option<Vec<u8>>);

/// Values of the domain spaces (State, Index) read through [`Store`]'s
/// `KvRead`, kept in memory: the state machine reads the same accounts,
/// subjects, products and counters for transaction after transaction, and a
/// RocksDB point read (memtables, then table files) costs microseconds.
/// Every commit through this store drops the keys it changes; a read that
/// raced a commit is not cached (generation check), so the cache never
/// holds a value older than the store's.
struct ReadCache {
    inner: std::sync::Mutex<CacheInner>,
    bytes_max: usize,
}

impl Default for ReadCache {
    fn default() -> Self {
        Self::with_bytes_max(READ_CACHE_BYTES_MAX)
    }
}

#[derive(Default)]
struct CacheInner {
    /// State rows, then Index rows.
    rows: [std::collections::HashMap<Vec<u8>, Vec<u8>>; 2],
    bytes: usize,
    /// Bumped by every commit, after its write.
    generation: u64,
}

/// Bytes of keys and values the read cache holds at most by default
/// (cleared when full).
pub const READ_CACHE_BYTES_MAX: usize = 32 << 20;
/// Values larger than this are not cached.
const READ_CACHE_VALUE_MAX: usize = 4096;

impl ReadCache {
    fn with_bytes_max(bytes_max: usize) -> Self {
        Self {
            inner: std::sync::Mutex::default(),
            bytes_max,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, CacheInner> {
        self.inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn cached(space: Space) -> bool {
        Self::slot(space).is_some()
    }

    fn slot(space: Space) -> Option<usize> {
        match space {
            Space::State => Some(0),
            Space::Index => Some(1),
            _ => None,
        }
    }

    /// The cached value, or the generation to hand to [`Self::fill`].
    fn get(&self, space: Space, key: &[u8]) -> Result<Vec<u8>, u64> {
        let c = self.lock();
        let hit = Self::slot(space).and_then(|i| c.rows[i].get(key));
        match hit {
            Some(v) => Ok(v.clone()),
            None => Err(c.generation),
        }
    }

    fn fill(&self, generation: u64, space: Space, key: &[u8], value: &[u8]) {
        let Some(i) = Self::slot(space) else {
            return;
        };
        if value.len() > READ_CACHE_VALUE_MAX {
            return;
        }
        let mut c = self.lock();
        if c.generation != generation {
            return;
        }
        if c.bytes + key.len() + value.len() > self.bytes_max {
            c.rows.iter_mut().for_each(|r| r.clear());
            c.bytes = 0;
        }
        c.bytes += key.len() + value.len();
        if let Some(old) = c.rows[i].insert(key.to_vec(), value.to_vec()) {
            c.bytes -= key.len() + old.len();
        }
    }

    /// After a commit: forget what it changed.
    fn committed(&self, changes: &ChangeSet) {
        let mut c = self.lock();
        for (space, key) in changes.entries.keys() {
            let Some(i) = Self::slot(*space) else {
                continue;
            };
            if let Some(old) = c.rows[i].remove(key.as_slice()) {
                c.bytes -= key.len() + old.len();
            }
        }
        c.generation += 1;
    }

    fn clear(&self) {
        let mut c = self.lock();
        c.rows.iter_mut().for_each(|r| r.clear());
        c.bytes = 0;
        c.generation += 1;
    }
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("path", &self.db.path())
            .finish()
    }
}

fn storage(e: rocksdb::Error) -> LedgerError {
    LedgerError::Storage(e.to_string())
}

fn all_cfs() -> Vec<&'static str> {
    let mut v: Vec<&'static str> = Space::ALL.iter().map(|s| s.cf_name()).collect();
    v.push(CF_RAFT_LOG);
    v.push(CF_RAFT_META);
    v
}

impl Store {
    pub fn open(path: &Path, options: &StoreOptions) -> Result<Self> {
        let mut opts = Options::default();
        opts.create_if_missing(true);
        opts.create_missing_column_families(true);
        opts.set_compression_type(rocksdb::DBCompressionType::Lz4);
        // Bounded memory: a shared block cache and modest write buffers.
        let cache = rocksdb::Cache::new_lru_cache(options.cache_bytes);
        let mut table = rocksdb::BlockBasedOptions::default();
        table.set_block_cache(&cache);
        table.set_bloom_filter(10.0, false);
        opts.set_block_based_table_factory(&table);
        opts.set_write_buffer_size(options.write_buffer_bytes);
        opts.set_max_write_buffer_number(3);
        opts.set_keep_log_file_num(4);
        let cfs = all_cfs().into_iter().map(|name| {
            let mut o = Options::default();
            o.set_compression_type(rocksdb::DBCompressionType::Lz4);
            o.set_block_based_table_factory(&table);
            o.set_write_buffer_size(options.write_buffer_bytes);
            // Most point reads of the state machine ask for keys that do not
            // exist yet (a new tx id, batch, shipment): a bloom filter over
            // each memtable answers those without searching its skip list.
            o.set_memtable_prefix_bloom_ratio(0.1);
            o.set_memtable_whole_key_filtering(true);
            ColumnFamilyDescriptor::new(name, o)
        });
        let db = DB::open_cf_descriptors(&opts, path, cfs).map_err(storage)?;
        Ok(Self {
            db,
            sync: options.sync,
            cache: ReadCache::with_bytes_max(options.read_cache_bytes),
            simulated: std::sync::OnceLock::new(),
        })
    }

    /// Opens an existing store for reading only (offline verification).
    pub fn open_read_only(path: &Path) -> Result<Self> {
        if !path.join("CURRENT").exists() {
            return Err(LedgerError::Storage(format!(
                "no store at {}",
                path.display()
            )));
        }
        let opts = Options::default();
        let db = DB::open_cf_for_read_only(&opts, path, all_cfs(), false).map_err(storage)?;
        Ok(Self {
            db,
            sync: false,
            cache: ReadCache::default(),
            simulated: std::sync::OnceLock::new(),
        })
    }

    pub fn db(&self) -> &DB {
        &self.db
    }

    fn cf(&self, name: &str) -> Result<&rocksdb::ColumnFamily> {
        self.db
            .cf_handle(name)
            .ok_or_else(|| LedgerError::Storage(format!("column family {name} is missing")))
    }

    /// Commits a change set and extra writes atomically.
    pub fn commit(&self, changes: &ChangeSet, extra: &[ExtraWrite]) -> Result<()> {
        self.commit_with(changes, extra, self.sync)
    }

    /// [`Self::commit`] without waiting for the disk. Still atomic; durable
    /// once any later synced write lands, because every column family shares
    /// one sequential write-ahead log and a sync covers all of it.
    pub fn commit_relaxed(&self, changes: &ChangeSet, extra: &[ExtraWrite]) -> Result<()> {
        self.commit_with(changes, extra, false)
    }

    fn commit_with(&self, changes: &ChangeSet, extra: &[ExtraWrite], sync: bool) -> Result<()> {
        let mut simulated = self.simulated_disk()?;
        // Only a simulated disk remembers what an unsynced write replaced.
        let priors = match &simulated {
            Some(_) if !sync => self.prior_values(changes, extra)?,
            _ => Vec::new(),
        };
        let mut batch = WriteBatch::default();
        for ((space, key), value) in &changes.entries {
            let cf = self.cf(space.cf_name())?;
            match value {
                Some(v) => batch.put_cf(cf, key, v),
                None => batch.delete_cf(cf, key),
            }
        }
        for w in extra {
            let cf = self.cf(w.cf)?;
            match &w.value {
                Some(v) => batch.put_cf(cf, &w.key, v),
                None => batch.delete_cf(cf, &w.key),
            }
        }
        let mut wo = WriteOptions::default();
        // A simulated disk keeps its own account of what is durable, so the
        // real fsync is skipped.
        wo.set_sync(sync && simulated.is_none());
        let written = self.db.write_opt(batch, &wo).map_err(storage);
        // Also after a failed write: RocksDB may have applied part of it.
        self.cache.committed(changes);
        if let Some(disk) = simulated.as_mut() {
            if sync {
                disk.undo.clear();
            } else {
                disk.undo.push(priors);
            }
        }
        written
    }

    /// The value each key of a commit holds before it (a simulated disk's undo record).
    fn prior_values(&self, changes: &ChangeSet, extra: &[ExtraWrite]) -> Result<Vec<PriorValue>> {
        let keys = changes
            .entries
            .keys()
            .map(|(space, key)| (space.cf_name(), key))
            .chain(extra.iter().map(|w| (w.cf, &w.key)));
        let mut priors = Vec::new();
        for (cf, key) in keys {
            let value = self.db.get_cf(self.cf(cf)?, key).map_err(storage)?;
            priors.push((cf, key.clone(), value));
        }
        Ok(priors)
    }

    /// Writes a batch built outside [`ChangeSet`]s (snapshot install, which
    /// replaces every ledger space), synced; the read cache is dropped.
    pub fn write_batch(&self, batch: WriteBatch) -> Result<()> {
        let written = self.write_synced(batch);
        self.cache.clear();
        written
    }

    /// Writes a batch to Raft's own column families (log truncation and
    /// purging), synced. The read cache holds none of their rows.
    pub fn write_raft_batch(&self, batch: WriteBatch) -> Result<()> {
        self.write_synced(batch)
    }

    fn write_synced(&self, batch: WriteBatch) -> Result<()> {
        let mut simulated = self.simulated_disk()?;
        let mut wo = WriteOptions::default();
        wo.set_sync(simulated.is_none());
        let written = self.db.write_opt(batch, &wo).map_err(storage);
        if let Some(disk) = simulated.as_mut() {
            disk.undo.clear();
        }
        written
    }

    /// Turns this store's disk into the simulator's model of one: syncs cost
    /// nothing, every write not yet covered by a sync is remembered, and
    /// [`Self::simulate_power_loss`] takes such writes back as a power
    /// failure would. For the whole-cluster simulator only; a node never
    /// calls it. Call it right after opening, before any write to keep.
    pub fn simulate_disk(&self) {
        let _ = self.simulated.set(std::sync::Mutex::default());
    }

    /// Write batches a power loss could still take back (0 on a real disk).
    pub fn unsynced_batches(&self) -> usize {
        self.simulated.get().map_or(0, |d| {
            d.lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .undo
                .len()
        })
    }

    /// A simulated power loss: the store goes down (every later write
    /// fails), the unsynced write batches after the oldest `keep` are
    /// undone, newest first, and their number is returned. What a real
    /// disk loses is a suffix of its write-ahead log, and RocksDB recovers
    /// the prefix, so undoing a suffix of batches is that crash. The store
    /// is then only good for dropping and reopening.
    pub fn simulate_power_loss(&self, keep: usize) -> Result<usize> {
        let disk = self
            .simulated
            .get()
            .ok_or_else(|| LedgerError::Storage("not a simulated disk".into()))?;
        let mut disk = disk
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        disk.down = true;
        let keep = keep.min(disk.undo.len());
        let lost = disk.undo.split_off(keep);
        for priors in lost.iter().rev() {
            let mut batch = WriteBatch::default();
            for (cf, key, value) in priors.iter().rev() {
                let cf = self.cf(cf)?;
                match value {
                    Some(v) => batch.put_cf(cf, key, v),
                    None => batch.delete_cf(cf, key),
                }
            }
            self.db.write(batch).map_err(storage)?;
        }
        self.cache.clear();
        Ok(lost.len())
    }

    /// The simulated disk's record, locked for one write; `Err` once it lost power.
    fn simulated_disk(&self) -> Result<Option<std::sync::MutexGuard<'_, UnsyncedWrites>>> {
        let Some(disk) = self.simulated.get() else {
            return Ok(None);
        };
        let disk = disk
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if disk.down {
            return Err(LedgerError::Storage(
                "the disk lost power (simulated)".into(),
            ));
        }
        Ok(Some(disk))
    }

    /// Whether commits are synced (`StoreOptions::sync`).
    pub fn syncs(&self) -> bool {
        self.sync
    }

    /// Makes every write so far durable: one fsync of the shared
    /// write-ahead log, however many unsynced commits it covers (group commit).
    pub fn sync_wal(&self) -> Result<()> {
        match self.simulated_disk()? {
            Some(mut disk) => {
                disk.undo.clear();
                Ok(())
            }
            None => self.db.flush_wal(true).map_err(storage),
        }
    }

    /// Reads from a column family outside the ledger spaces.
    pub fn get_raw(&self, cf: &str, key: &[u8]) -> Result<Option<Vec<u8>>> {
        self.db.get_cf(self.cf(cf)?, key).map_err(storage)
    }

    /// Entries of a raw column family with `from <= key < to`.
    pub fn scan_raw(
        &self,
        cf: &str,
        from: &[u8],
        to: &[u8],
        limit: usize,
    ) -> Result<Vec<(Vec<u8>, Vec<u8>)>> {
        scan_cf(&self.db, self.cf(cf)?, from, to, limit, None)
            .map_err(|e| LedgerError::Storage(e.to_string()))
    }

    /// A consistent read view (a RocksDB snapshot) for multi-key queries.
    pub fn view(&self) -> StoreView<'_> {
        StoreView {
            store: self,
            snapshot: self.db.snapshot(),
        }
    }

    /// Approximate on-disk bytes per column family.
    pub fn sizes(&self) -> Vec<(&'static str, u64)> {
        all_cfs()
            .into_iter()
            .filter_map(|name| {
                let cf = self.db.cf_handle(name)?;
                let v = self
                    .db
                    .property_int_value_cf(cf, "rocksdb.total-sst-files-size")
                    .ok()
                    .flatten()?;
                Some((name, v))
            })
            .collect()
    }

    pub fn flush(&self) -> Result<()> {
        for name in all_cfs() {
            self.db.flush_cf(self.cf(name)?).map_err(storage)?;
        }
        Ok(())
    }
}

fn scan_cf(
    db: &DB,
    cf: &rocksdb::ColumnFamily,
    from: &[u8],
    to: &[u8],
    limit: usize,
    snapshot: Option<&rocksdb::Snapshot<'_>>,
) -> KvResult<Vec<(Vec<u8>, Vec<u8>)>> {
    if from >= to || limit == 0 {
        return Ok(Vec::new());
    }
    let mut ro = ReadOptions::default();
    ro.set_iterate_upper_bound(to.to_vec());
    if let Some(s) = snapshot {
        ro.set_snapshot(s);
    }
    let mut out = Vec::new();
    for item in db.iterator_cf_opt(cf, ro, IteratorMode::From(from, Direction::Forward)) {
        let (k, v) = item.map_err(read_err)?;
        out.push((k.to_vec(), v.to_vec()));
        if out.len() >= limit {
            break;
        }
    }
    Ok(out)
}

fn read_err(e: rocksdb::Error) -> KvError {
    KvError::Read(e.to_string())
}

impl Store {
    /// The column family of a ledger space, as a read error if it is missing.
    fn space_cf(&self, space: Space) -> KvResult<&rocksdb::ColumnFamily> {
        self.cf(space.cf_name())
            .map_err(|e| KvError::Read(e.to_string()))
    }
}

impl KvRead for Store {
    fn get(&self, space: Space, key: &[u8]) -> KvResult<Option<Vec<u8>>> {
        if !ReadCache::cached(space) {
            return self.db.get_cf(self.space_cf(space)?, key).map_err(read_err);
        }
        let generation = match self.cache.get(space, key) {
            Ok(v) => return Ok(Some(v)),
            Err(g) => g,
        };
        let value = self
            .db
            .get_pinned_cf(self.space_cf(space)?, key)
            .map_err(read_err)?;
        Ok(value.map(|v| {
            self.cache.fill(generation, space, key, &v);
            v.to_vec()
        }))
    }

    fn scan(
        &self,
        space: Space,
        from: &[u8],
        to: &[u8],
        limit: usize,
    ) -> KvResult<Vec<(Vec<u8>, Vec<u8>)>> {
        scan_cf(&self.db, self.space_cf(space)?, from, to, limit, None)
    }
}

/// A point-in-time view of the store.
pub struct StoreView<'a> {
    store: &'a Store,
    snapshot: rocksdb::Snapshot<'a>,
}

impl KvRead for StoreView<'_> {
    fn get(&self, space: Space, key: &[u8]) -> KvResult<Option<Vec<u8>>> {
        self.snapshot
            .get_cf(self.store.space_cf(space)?, key)
            .map_err(read_err)
    }

    fn scan(
        &self,
        space: Space,
        from: &[u8],
        to: &[u8],
        limit: usize,
    ) -> KvResult<Vec<(Vec<u8>, Vec<u8>)>> {
        scan_cf(
            &self.store.db,
            self.store.space_cf(space)?,
            from,
            to,
            limit,
            Some(&self.snapshot),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kv::KvWrite;

    #[test]
    fn commit_is_atomic_and_survives_reopen() {
        let dir = tempfile::tempdir().unwrap();
        {
            let store = Store::open(dir.path(), &StoreOptions::default()).unwrap();
            let mut c = crate::kv::Overlay::new(&store);
            c.put(Space::State, b"a".to_vec(), b"1".to_vec());
            c.put(Space::Tree, b"t".to_vec(), b"2".to_vec());
            let changes = c.into_changes();
            store
                .commit(
                    &changes,
                    &[ExtraWrite {
                        cf: CF_RAFT_META,
                        key: b"m".to_vec(),
                        value: Some(b"3".to_vec()),
                    }],
                )
                .unwrap();
        }
        let store = Store::open(dir.path(), &StoreOptions::default()).unwrap();
        assert_eq!(store.get(Space::State, b"a").unwrap(), Some(b"1".to_vec()));
        assert_eq!(store.get(Space::Tree, b"t").unwrap(), Some(b"2".to_vec()));
        assert_eq!(store.get(Space::Index, b"a").unwrap(), None);
        assert_eq!(
            store.get_raw(CF_RAFT_META, b"m").unwrap(),
            Some(b"3".to_vec())
        );
        let view = store.view();
        assert_eq!(view.scan(Space::State, b"", b"z", 10).unwrap().len(), 1);
    }
}
