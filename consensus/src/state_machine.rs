//! The Raft state machine: committed entries become blocks.
//!
//! A normal entry's proposal goes through [`Ledger::apply`], which commits
//! the block's change set together with this entry's `last_applied` log id in
//! one synced write batch. A crash therefore leaves either both (the block is
//! there and Raft knows it was applied) or neither (Raft re-applies the entry
//! on restart): a block is never applied twice and never lost. Blank and
//! membership entries only write `raft_meta`, also in one batch.
//!
//! The state is persisted on every apply, so snapshots only exist to catch
//! up a lagging follower (and to let Raft purge its log). A received
//! snapshot is re-verified against the chain before it is installed (see
//! `verify_snapshot`): a node never takes a leader's word for its state.

// openraft's `StorageError` is what its storage traits return; boxing it
// in private helpers would only add conversions at every trait method.
#![allow(clippy::result_large_err)]

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use ledger::kv::{ChangeSet, Space};
use ledger::store::{ExtraWrite, Store, CF_RAFT_META};
use ledger::Ledger;
use openraft::storage::RaftStateMachine;
use openraft::{EntryPayload, OptionalSend, RaftSnapshotBuilder, Snapshot, StorageIOError};
use rocksdb::{IteratorMode, WriteBatch};

use crate::snapshot::{SnapshotFile, SnapshotLimits};
use crate::types::{
    decode, encode, meta_key, ApplyResponse, Entry, LogId, SnapshotMeta, StorageError,
    StoredMembership, TypeConfig,
};

/// The last snapshot built or installed: its meta and its archive in the
/// snapshot directory. Known in memory only: after a restart there is none
/// until Raft asks for one, and the state machine itself is durable, so
/// nothing is lost.
#[derive(Clone)]
struct StoredSnapshot {
    meta: SnapshotMeta,
    path: PathBuf,
}

type CurrentSnapshot = Arc<Mutex<Option<StoredSnapshot>>>;

/// Where this node's snapshots live while they are built, received, checked
/// and kept: `zsl-snapshots/` inside the store's directory (RocksDB skips
/// names it does not know), so it moves, and is backed up, with the store.
struct SnapshotDir {
    path: PathBuf,
    limits: SnapshotLimits,
    /// Makes each working file's name unique in this process.
    next: AtomicU64,
}

impl SnapshotDir {
    /// A new working path; whatever an earlier process left there is removed
    /// (names are unique within a process only).
    fn fresh(&self, kind: &str) -> PathBuf {
        let n = self.next.fetch_add(1, Ordering::Relaxed);
        let path = self.path.join(format!("{kind}-{n}"));
        discard(&path);
        path
    }

    /// Whether `path` is one of this directory's own files.
    fn holds(&self, path: &Path) -> bool {
        path.parent() == Some(self.path.as_path())
    }
}

/// Set in `raft_meta` while a verified snapshot is being copied in: what
/// [`resume_install`] needs to finish the copy after a crash.
#[derive(serde::Serialize, serde::Deserialize)]
struct InstallMarker {
    meta: SnapshotMeta,
    /// The unpacked store's name in the snapshot directory.
    staged: String,
}

impl InstallMarker {
    fn read(store: &Store) -> Result<Option<Self>, StorageError> {
        read_meta(
            store
                .get_raw(CF_RAFT_META, meta_key::SNAPSHOT_INSTALLING)
                .map_err(|e| read_err(&e))?,
        )
    }
}

/// A file or directory no longer needed; failing to remove it costs disk,
/// not correctness, so it is logged, not returned.
fn discard(path: &Path) {
    let removed = if path.is_dir() {
        std::fs::remove_dir_all(path)
    } else {
        std::fs::remove_file(path)
    };
    match removed {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => {
            tracing::warn!(path = %path.display(), error = %e, "cannot remove a snapshot file")
        }
    }
}

pub struct StateMachine {
    ledger: Arc<Ledger>,
    current: CurrentSnapshot,
    dir: Arc<SnapshotDir>,
    /// Height of the last applied block that grew the tree (what validators sign).
    tree_grown: Arc<tokio::sync::watch::Sender<u64>>,
}

impl StateMachine {
    pub fn new(ledger: Arc<Ledger>) -> Self {
        Self::with_limits(ledger, SnapshotLimits::default())
    }

    /// A state machine whose snapshots keep to `limits`. Working files of
    /// an earlier run are removed, except a verified snapshot whose install
    /// was interrupted: [`RaftStateMachine::applied_state`] finishes that
    /// before Raft reads anything.
    pub fn with_limits(ledger: Arc<Ledger>, limits: SnapshotLimits) -> Self {
        let dir = SnapshotDir {
            path: ledger.store.db().path().join("zsl-snapshots"),
            limits,
            next: AtomicU64::new(0),
        };
        match InstallMarker::read(&ledger.store) {
            Ok(None) => discard(&dir.path),
            Ok(Some(marker)) => {
                for entry in std::fs::read_dir(&dir.path).into_iter().flatten().flatten() {
                    if entry.file_name().to_string_lossy() != marker.staged {
                        discard(&entry.path());
                    }
                }
            }
            // An unreadable marker keeps everything: resuming reports it.
            Err(_) => {}
        }
        if let Err(e) = std::fs::create_dir_all(&dir.path) {
            tracing::warn!(path = %dir.path.display(), error = %e, "cannot create the snapshot directory");
        }
        let start = ledger
            .head()
            .ok()
            .and_then(|h| {
                ledger::history::read_block(&ledger.store, h.height)
                    .ok()
                    .flatten()
            })
            .filter(|b| b.header.tx_count > 0)
            .map_or(0, |b| b.header.height);
        Self {
            ledger,
            current: Arc::default(),
            dir: Arc::new(dir),
            tree_grown: Arc::new(tokio::sync::watch::channel(start).0),
        }
    }

    /// Follows the height of the last applied block that grew the tree.
    pub fn tree_grown(&self) -> tokio::sync::watch::Receiver<u64> {
        self.tree_grown.subscribe()
    }
}

pub struct SnapshotBuilder {
    ledger: Arc<Ledger>,
    current: CurrentSnapshot,
    dir: Arc<SnapshotDir>,
}

fn cf<'a>(ledger: &'a Ledger, name: &str) -> Result<&'a rocksdb::ColumnFamily, StorageError> {
    cf_in(&ledger.store, name).map_err(|why| {
        let e = std::io::Error::new(std::io::ErrorKind::NotFound, why);
        StorageIOError::read_state_machine(&e).into()
    })
}

fn cf_in<'a>(store: &'a Store, name: &str) -> Result<&'a rocksdb::ColumnFamily, String> {
    store.db().cf_handle(name).ok_or_else(|| {
        format!(
            "column family {name} is missing from {}",
            store.db().path().display()
        )
    })
}

fn read_meta<T: serde::de::DeserializeOwned>(
    raw: Option<Vec<u8>>,
) -> Result<Option<T>, StorageError> {
    match raw {
        Some(bytes) => decode(&bytes)
            .map(Some)
            .map_err(|e| StorageIOError::read_state_machine(&e).into()),
        None => Ok(None),
    }
}

fn meta_write(key: &[u8], value: Vec<u8>) -> ExtraWrite {
    ExtraWrite {
        cf: CF_RAFT_META,
        key: key.to_vec(),
        value: Some(value),
    }
}

/// Applies entries in order. Runs on a blocking thread: signature checks and
/// a synced write per entry.
fn apply_entries(
    ledger: &Ledger,
    entries: Vec<Entry>,
    tree_grown: &tokio::sync::watch::Sender<u64>,
) -> Result<Vec<ApplyResponse>, StorageError> {
    let mut responses = Vec::with_capacity(entries.len());
    for entry in entries {
        let log_id = entry.log_id;
        let apply_err = |e: &dyn std::fmt::Display| -> StorageError {
            StorageIOError::apply(log_id, &std::io::Error::other(e.to_string())).into()
        };
        let applied = meta_write(
            meta_key::LAST_APPLIED,
            encode(&log_id).map_err(|e| apply_err(&e))?,
        );
        match entry.payload {
            EntryPayload::Blank => {
                ledger
                    .store
                    .commit(&ChangeSet::default(), &[applied])
                    .map_err(|e| apply_err(&e))?;
                responses.push(ApplyResponse::default());
            }
            EntryPayload::Membership(m) => {
                let stored = StoredMembership::new(Some(log_id), m);
                let membership = meta_write(
                    meta_key::LAST_MEMBERSHIP,
                    encode(&stored).map_err(|e| apply_err(&e))?,
                );
                ledger
                    .store
                    .commit(&ChangeSet::default(), &[applied, membership])
                    .map_err(|e| apply_err(&e))?;
                responses.push(ApplyResponse::default());
            }
            EntryPayload::Normal(proposal) => {
                let result = ledger
                    .apply_relaxed(&proposal, |a| {
                        let height = a.block.as_ref().map(|b| b.header.height);
                        let time_ms = a
                            .block
                            .as_ref()
                            .map_or(proposal.time_ms, |b| b.header.time_ms);
                        let compact =
                            crate::log_store::compaction_write(ledger, &log_id, time_ms, height);
                        std::iter::once(applied).chain(compact).collect()
                    })
                    .map_err(|e| apply_err(&e))?;
                if let Some(b) = result.block.as_ref().filter(|b| b.header.tx_count > 0) {
                    tree_grown.send_replace(b.header.height);
                }
                responses.push(ApplyResponse::from_applied(
                    result.block.as_ref(),
                    &result.outcomes,
                ));
            }
        }
    }
    Ok(responses)
}

fn read_err(e: &dyn std::fmt::Display) -> StorageError {
    StorageIOError::read_state_machine(&std::io::Error::other(e.to_string())).into()
}

/// `last_applied` and membership as a store holds them.
fn applied_in(store: &Store) -> Result<(Option<LogId>, StoredMembership), StorageError> {
    let get = |key: &[u8]| store.get_raw(CF_RAFT_META, key).map_err(|e| read_err(&e));
    let last_applied: Option<LogId> = read_meta(get(meta_key::LAST_APPLIED)?)?;
    let membership: Option<StoredMembership> = read_meta(get(meta_key::LAST_MEMBERSHIP)?)?;
    Ok((last_applied, membership.unwrap_or_default()))
}

/// Takes a RocksDB checkpoint of the store (hard links to its table files,
/// so rows, `last_applied` and membership agree even while blocks keep
/// being applied) and packs it into one archive in the snapshot directory.
fn build_snapshot(ledger: &Ledger, dir: &SnapshotDir) -> Result<StoredSnapshot, StorageError> {
    let checkpoint = dir.fresh("checkpoint");
    let built = (|| {
        rocksdb::checkpoint::Checkpoint::new(ledger.store.db())
            .and_then(|c| c.create_checkpoint(&checkpoint))
            .map_err(|e| read_err(&e))?;
        // Opened and dropped before packing: the archive is the files as
        // the checkpoint wrote them.
        let (last_applied, last_membership) =
            applied_in(&Store::open_read_only(&checkpoint).map_err(|e| read_err(&e))?)?;
        let path = dir.fresh("built");
        let file = std::fs::File::create(&path).map_err(|e| read_err(&e))?;
        let mut out = std::io::BufWriter::with_capacity(dir.limits.io_buffer_bytes(), file);
        let bytes = crate::snapshot::pack(&checkpoint, &mut out, &dir.limits)
            .and_then(|n| {
                out.into_inner()
                    .map_err(std::io::IntoInnerError::into_error)?
                    .sync_all()?;
                Ok(n)
            })
            .map_err(|e| {
                discard(&path);
                read_err(&e)
            })?;
        let snapshot_id = match &last_applied {
            Some(id) => format!("{id}-{}", crate::clock::now_ms()),
            None => format!("none-{}", crate::clock::now_ms()),
        };
        tracing::info!(%snapshot_id, bytes, "built a snapshot");
        Ok(StoredSnapshot {
            meta: SnapshotMeta {
                last_log_id: last_applied,
                last_membership,
                snapshot_id,
            },
            path,
        })
    })();
    discard(&checkpoint);
    built
}

/// Unpacks a received archive, re-verifies it (see [`verify_snapshot`]) and
/// installs it; returns where its archive is now kept. A refused snapshot
/// leaves this node's store exactly as it was.
fn install_snapshot(
    ledger: &Ledger,
    dir: &SnapshotDir,
    meta: &SnapshotMeta,
    archive: &mut SnapshotFile,
) -> Result<PathBuf, StorageError> {
    let sig = Some(meta.signature());
    let write_err = |e: &dyn std::fmt::Display| -> StorageError {
        StorageIOError::write_snapshot(sig.clone(), &std::io::Error::other(e.to_string())).into()
    };
    let refuse = |why: String| -> StorageError {
        tracing::warn!(snapshot = %meta.snapshot_id, %why, "refusing a snapshot");
        StorageIOError::write_snapshot(
            sig.clone(),
            &std::io::Error::new(std::io::ErrorKind::InvalidData, why),
        )
        .into()
    };
    let staged = dir.fresh("staged");
    let checked = (|| {
        std::fs::create_dir(&staged).map_err(|e| write_err(&e))?;
        let mut input = std::io::BufReader::with_capacity(
            dir.limits.io_buffer_bytes(),
            archive.rewound().map_err(|e| write_err(&e))?,
        );
        crate::snapshot::unpack(&mut input, &staged, &dir.limits).map_err(|e| match e.kind() {
            std::io::ErrorKind::InvalidData => refuse(format!("the snapshot archive: {e}")),
            _ => write_err(&e),
        })?;
        let store = Store::open_read_only(&staged)
            .map_err(|e| refuse(format!("the snapshot's store does not open: {e}")))?;
        verify_snapshot(ledger, dir, meta, &store).map_err(refuse)?;
        Ok(store)
    })();
    let store = match checked {
        Ok(store) => store,
        Err(e) => {
            discard(&staged);
            return Err(e);
        }
    };
    let marker = encode(&InstallMarker {
        meta: meta.clone(),
        staged: staged
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default(),
    })
    .map_err(|e| write_err(&e))?;
    let mut batch = WriteBatch::default();
    batch.put_cf(
        cf(ledger, CF_RAFT_META)?,
        meta_key::SNAPSHOT_INSTALLING,
        marker,
    );
    ledger.store.write_batch(batch).map_err(|e| write_err(&e))?;
    copy_rows(ledger, &store, meta, &dir.limits).map_err(|e| write_err(&e))?;
    drop(store);
    discard(&staged);
    let kept = dir.fresh("installed");
    let moved = if dir.holds(archive.path()) {
        std::fs::rename(archive.path(), &kept)
    } else {
        std::fs::copy(archive.path(), &kept).map(drop)
    };
    moved.map_err(|e| write_err(&e))?;
    Ok(kept)
}

/// Finishes an install a crash interrupted after its snapshot was verified
/// (the marker names it and its unpacked store); none interrupted: nothing.
fn resume_install(ledger: &Ledger, dir: &SnapshotDir) -> Result<(), StorageError> {
    let Some(InstallMarker { meta, staged }) = InstallMarker::read(&ledger.store)? else {
        return Ok(());
    };
    let staged = dir.path.join(staged);
    tracing::warn!(snapshot = %meta.snapshot_id, "finishing a snapshot install a restart interrupted");
    let store = Store::open_read_only(&staged).map_err(|e| {
        read_err(&format!(
            "an interrupted snapshot install cannot go on, its store at {} does not open: {e}",
            staged.display()
        ))
    })?;
    copy_rows(ledger, &store, &meta, &dir.limits).map_err(|e| read_err(&e))?;
    drop(store);
    discard(&staged);
    Ok(())
}

/// Makes every ledger space of this node's store hold exactly `from`'s rows,
/// then sets the applied state from `meta` and clears the install marker.
///
/// Writes only what differs, in synced batches of at most
/// [`SnapshotLimits::batch_bytes_max`]: memory stays bounded however large
/// the store. A crash between batches leaves the marker, and
/// [`resume_install`] runs this again; comparing with what is there makes
/// that safe. Readers in between see a mix of old and new rows of one chain
/// (the snapshot extends this node's blocks, [`verify_snapshot`]).
fn copy_rows(
    ledger: &Ledger,
    from: &Store,
    meta: &SnapshotMeta,
    limits: &SnapshotLimits,
) -> Result<(), String> {
    let err = |e: &dyn std::fmt::Display| e.to_string();
    let db = ledger.store.db();
    let mut batch = WriteBatch::default();
    let mut written = 0u32;
    let mut flush = |batch: &mut WriteBatch, force: bool| -> Result<(), String> {
        if force || batch.size_in_bytes() >= limits.batch_bytes_max() {
            if limits.interrupt_after_batches == Some(written) {
                return Err(format!(
                    "interrupted after {written} batches (fault injection)"
                ));
            }
            written += 1;
            ledger
                .store
                .write_batch(std::mem::take(batch))
                .map_err(|e| err(&e))?;
        }
        Ok(())
    };
    for space in Space::ALL {
        let name = space.cf_name();
        let (mine_cf, theirs_cf) = (cf_in(&ledger.store, name)?, cf_in(from, name)?);
        let view = db.snapshot();
        walk_together(
            view.iterator_cf(mine_cf, IteratorMode::Start),
            from.db().iterator_cf(theirs_cf, IteratorMode::Start),
            |pair| {
                match pair {
                    RowPair::Left((k, _)) => batch.delete_cf(mine_cf, k),
                    RowPair::Right((k, v)) => batch.put_cf(mine_cf, k, v),
                    RowPair::Both((_, mine), (k, theirs)) if mine != theirs => {
                        batch.put_cf(mine_cf, k, theirs);
                    }
                    RowPair::Both(..) => {}
                }
                flush(&mut batch, false)
            },
        )?;
    }
    let meta_cf = cf_in(&ledger.store, CF_RAFT_META)?;
    match &meta.last_log_id {
        Some(id) => batch.put_cf(
            meta_cf,
            meta_key::LAST_APPLIED,
            encode(id).map_err(|e| err(&e))?,
        ),
        None => batch.delete_cf(meta_cf, meta_key::LAST_APPLIED),
    }
    batch.put_cf(
        meta_cf,
        meta_key::LAST_MEMBERSHIP,
        encode(&meta.last_membership).map_err(|e| err(&e))?,
    );
    batch.delete_cf(meta_cf, meta_key::SNAPSHOT_INSTALLING);
    flush(&mut batch, true)
}

/// Re-verifies a received snapshot against the chain before it may replace
/// this node's ledger: the sender (the leader) is trusted to order entries,
/// not to dictate state, so a snapshot has to be a valid chain from this
/// genesis and must extend, never rewrite, the blocks this node already applied.
///
/// `verify_chain_with` checks blocks, transactions, signatures, the state
/// hashes in the headers and the tree root at the head, replaying the chain
/// into a scratch store on disk; every row of the snapshot's ledger spaces
/// is then compared with that replay's (`matches_replay`), all but the kept
/// refusals (`ledger::refusals`), which come from proposals, not blocks.
///
/// Cost: one replay of every block from genesis (every signature, every
/// state rule), so installing costs O(chain length) CPU and disk, and
/// memory bounded by the limits, not by the chain. Snapshots only reach a
/// follower that fell behind the log purge point; a later issue verifies
/// from the last sealed checkpoint instead.
fn verify_snapshot(
    ledger: &Ledger,
    dir: &SnapshotDir,
    meta: &SnapshotMeta,
    staged: &Store,
) -> Result<(), String> {
    let (last_applied, membership) = applied_in(staged).map_err(|e| e.to_string())?;
    if last_applied != meta.last_log_id || membership != meta.last_membership {
        return Err(format!(
            "the snapshot's store was applied up to {last_applied:?} with membership {membership:?}, \
             but its meta names {:?} and {:?}",
            meta.last_log_id, meta.last_membership
        ));
    }
    let replay_dir = dir.fresh("replay");
    let verdict = (|| {
        let scratch = ledger::chain::scratch_ledger_within(
            &replay_dir,
            ledger.spec.clone(),
            dir.limits.memory_budget_bytes,
        )
        .map_err(|e| format!("a scratch store for the replay does not open: {e}"))?;
        let report = ledger::verify_chain_with(staged, &ledger.spec, &mut &scratch)
            .map_err(|e| format!("the snapshot's chain does not re-verify: {e}"))?;
        // verify_chain links every block to the one before, but the head row is
        // only checked for its tree; it must name the last block too.
        let last = ledger::history::read_block(staged, report.height)
            .map_err(|e| e.to_string())?
            .ok_or_else(|| format!("the snapshot has no block {}", report.height))?;
        if last.hash != report.head_hash {
            return Err(format!(
                "the snapshot's head names {} but its block {} is {}",
                report.head_hash, report.height, last.hash
            ));
        }
        matches_replay(staged, &scratch.store)?;
        extends_own_chain(ledger, staged, report.height)
    })();
    discard(&replay_dir);
    verdict
}

/// Every block this node has must be in the snapshot unchanged. The head
/// alone would do (each header hashes its predecessor); checking every
/// height costs one read per block, little next to the replay.
fn extends_own_chain(ledger: &Ledger, staged: &Store, height: u64) -> Result<(), String> {
    let own = ledger.head().map_err(|e| e.to_string())?;
    if height < own.height {
        return Err(format!(
            "the snapshot ends at block {height} but this node already applied block {}",
            own.height
        ));
    }
    for h in 0..=own.height {
        let mine = ledger::history::read_block(&ledger.store, h)
            .map_err(|e| e.to_string())?
            .map(|b| b.hash);
        let theirs = ledger::history::read_block(staged, h)
            .map_err(|e| e.to_string())?
            .map(|b| b.hash);
        if mine != theirs {
            return Err(format!(
                "the snapshot rewrites block {h}: this node has {mine:?}, the snapshot {theirs:?}"
            ));
        }
    }
    Ok(())
}

/// One row as a RocksDB iterator yields it.
type RawRow = Result<Row, rocksdb::Error>;
type Row = (Box<[u8]>, Box<[u8]>);

/// A key found while walking two stores' rows together: on the left only,
/// on the right only, or on both.
enum RowPair<'r> {
    Left(&'r Row),
    Right(&'r Row),
    Both(&'r Row, &'r Row),
}

/// Walks two key-ordered row streams of one column family together, a row
/// at a time, handing each key to `each` once.
fn walk_together(
    left: impl Iterator<Item = RawRow>,
    right: impl Iterator<Item = RawRow>,
    mut each: impl FnMut(RowPair<'_>) -> Result<(), String>,
) -> Result<(), String> {
    use std::cmp::Ordering::{Equal, Greater, Less};
    let err = |e: rocksdb::Error| e.to_string();
    let (mut left, mut right) = (left, right);
    let mut l = left.next().transpose().map_err(err)?;
    let mut r = right.next().transpose().map_err(err)?;
    loop {
        let pair = match (&l, &r) {
            (None, None) => return Ok(()),
            (Some(lr), None) => RowPair::Left(lr),
            (None, Some(rr)) => RowPair::Right(rr),
            (Some(lr), Some(rr)) => match lr.0.cmp(&rr.0) {
                Less => RowPair::Left(lr),
                Greater => RowPair::Right(rr),
                Equal => RowPair::Both(lr, rr),
            },
        };
        let (step_left, step_right) = match pair {
            RowPair::Left(_) => (true, false),
            RowPair::Right(_) => (false, true),
            RowPair::Both(..) => (true, true),
        };
        each(pair)?;
        if step_left {
            l = left.next().transpose().map_err(err)?;
        }
        if step_right {
            r = right.next().transpose().map_err(err)?;
        }
    }
}

/// Checks that the snapshot holds exactly the rows the replay gave, space by
/// space: none changed, none missing, none added.
fn matches_replay(staged: &Store, replay: &Store) -> Result<(), String> {
    for space in Space::ALL {
        let name = space.cf_name();
        // Kept refusals come from proposals, not blocks: no replay of the
        // chain gives them. They are outside the state hash and no rule
        // reads them; the snapshot's are taken as sent.
        let derived = |row: &RawRow| {
            row.as_ref()
                .map_or(true, |(k, _)| !ledger::refusals::is_kept_row(space, k))
        };
        let (theirs_cf, ours_cf) = (cf_in(staged, name)?, cf_in(replay, name)?);
        walk_together(
            staged
                .db()
                .iterator_cf(theirs_cf, IteratorMode::Start)
                .filter(derived),
            replay
                .db()
                .iterator_cf(ours_cf, IteratorMode::Start)
                .filter(derived),
            |pair| match pair {
                RowPair::Both((k, theirs), (_, ours)) if theirs != ours => Err(format!(
                    "the snapshot's `{name}` row {} is not what replaying the chain gives",
                    hex::encode(k)
                )),
                RowPair::Both(..) => Ok(()),
                RowPair::Left((k, _)) => Err(format!(
                    "the snapshot has a `{name}` row {} for which replaying the chain gives no row",
                    hex::encode(k)
                )),
                RowPair::Right((k, _)) => Err(format!(
                    "the snapshot lacks the `{name}` row {}, which replaying the chain gives",
                    hex::encode(k)
                )),
            },
        )?;
    }
    Ok(())
}

fn join_err(e: tokio::task::JoinError) -> StorageError {
    StorageIOError::write_state_machine(&e).into()
}

impl RaftSnapshotBuilder<TypeConfig> for SnapshotBuilder {
    async fn build_snapshot(&mut self) -> Result<Snapshot<TypeConfig>, StorageError> {
        let (ledger, dir) = (self.ledger.clone(), self.dir.clone());
        let built = crate::spawn_blocking(move || build_snapshot(&ledger, &dir))
            .await
            .map_err(join_err)??;
        let file = SnapshotFile::open(&built.path).map_err(|e| read_err(&e))?;
        let snapshot = Snapshot {
            meta: built.meta.clone(),
            snapshot: Box::new(file),
        };
        keep_current(&self.current, built);
        Ok(snapshot)
    }
}

/// Makes `new` the current snapshot and removes the archive it replaces.
fn keep_current(current: &CurrentSnapshot, new: StoredSnapshot) {
    let old = current
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .replace(new.clone());
    // Readers that opened the old archive keep their handle (POSIX unlink).
    if let Some(old) = old.filter(|o| o.path != new.path) {
        discard(&old.path);
    }
}

impl RaftStateMachine<TypeConfig> for StateMachine {
    type SnapshotBuilder = SnapshotBuilder;

    async fn applied_state(&mut self) -> Result<(Option<LogId>, StoredMembership), StorageError> {
        // Raft asks this first, on start: an install a crash interrupted is
        // finished before anything reads the state.
        resume_install(&self.ledger, &self.dir)?;
        applied_in(&self.ledger.store)
    }

    async fn apply<I>(&mut self, entries: I) -> Result<Vec<ApplyResponse>, StorageError>
    where
        I: IntoIterator<Item = Entry> + OptionalSend,
        I::IntoIter: OptionalSend,
    {
        let entries: Vec<Entry> = entries.into_iter().collect();
        if entries.is_empty() {
            return Ok(Vec::new());
        }
        let ledger = self.ledger.clone();
        let tree_grown = self.tree_grown.clone();
        crate::blocking(move || apply_entries(&ledger, entries, &tree_grown))
            .await
            .map_err(join_err)?
    }

    async fn get_snapshot_builder(&mut self) -> Self::SnapshotBuilder {
        SnapshotBuilder {
            ledger: self.ledger.clone(),
            current: self.current.clone(),
            dir: self.dir.clone(),
        }
    }

    async fn begin_receiving_snapshot(&mut self) -> Result<Box<SnapshotFile>, StorageError> {
        // Raft streams one snapshot at a time: a transfer it gave up on
        // leaves a partial file nothing will read again.
        if let Ok(entries) = std::fs::read_dir(&self.dir.path) {
            for entry in entries.flatten() {
                if entry.file_name().to_string_lossy().starts_with("incoming-") {
                    discard(&entry.path());
                }
            }
        }
        let path = self.dir.fresh("incoming");
        let file = SnapshotFile::create(&path, self.dir.limits.archive_bytes_max)
            .map_err(|e| StorageError::from(StorageIOError::write_snapshot(None, &e)))?;
        Ok(Box::new(file))
    }

    async fn install_snapshot(
        &mut self,
        meta: &SnapshotMeta,
        mut snapshot: Box<SnapshotFile>,
    ) -> Result<(), StorageError> {
        let (ledger, dir, meta) = (self.ledger.clone(), self.dir.clone(), meta.clone());
        let stored = crate::spawn_blocking(move || {
            install_snapshot(&ledger, &dir, &meta, &mut snapshot)
                .map(|path| StoredSnapshot { meta, path })
        })
        .await
        .map_err(join_err)??;
        keep_current(&self.current, stored);
        Ok(())
    }

    async fn get_current_snapshot(&mut self) -> Result<Option<Snapshot<TypeConfig>>, StorageError> {
        let current = self
            .current
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        let Some(current) = current else {
            return Ok(None);
        };
        let file = SnapshotFile::open(&current.path).map_err(|e| read_err(&e))?;
        Ok(Some(Snapshot {
            meta: current.meta,
            snapshot: Box::new(file),
        }))
    }
}
