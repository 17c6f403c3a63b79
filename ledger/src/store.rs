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
}

impl Default for StoreOptions {
    fn default() -> Self {
        Self {
            sync: true,
            cache_bytes: 64 << 20,
        }
    }
}

pub struct Store {
    db: DB,
    sync: bool,
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
        opts.set_write_buffer_size(32 << 20);
        opts.set_max_write_buffer_number(3);
        opts.set_keep_log_file_num(4);
        let cfs = all_cfs().into_iter().map(|name| {
            let mut o = Options::default();
            o.set_compression_type(rocksdb::DBCompressionType::Lz4);
            o.set_block_based_table_factory(&table);
            o.set_write_buffer_size(16 << 20);
            ColumnFamilyDescriptor::new(name, o)
        });
        let db = DB::open_cf_descriptors(&opts, path, cfs).map_err(storage)?;
        Ok(Self {
            db,
            sync: options.sync,
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
        Ok(Self { db, sync: false })
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
        wo.set_sync(sync);
        self.db.write_opt(batch, &wo).map_err(storage)
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
        self.db.get_cf(self.space_cf(space)?, key).map_err(read_err)
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
