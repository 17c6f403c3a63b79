//! `zsl backup` / `zsl restore`: a consistent copy of a node's RocksDB store
//! (ledger state and Raft log in one database) taken with a RocksDB
//! checkpoint.
//!
//! Offline: the node must be stopped (RocksDB's lock refuses a second
//! writer, and a checkpoint needs the database open for writing). In a
//! cluster, stop one validator, back it up, start it again: the others keep
//! committing and it catches up through Raft.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use serde_json::{json, Value};

const MANIFEST: &str = "backup.json";
const FORMAT: &str = "zsl-backup-v1";

/// The RocksDB directory: `DIR/db` for a node's data directory, or `DIR` itself.
pub fn store_dir(dir: &Path) -> Result<PathBuf> {
    if dir.join("db").join("CURRENT").exists() {
        Ok(dir.join("db"))
    } else if dir.join("CURRENT").exists() {
        Ok(dir.to_path_buf())
    } else {
        bail!("no ZSL store in {} (nor in its db/)", dir.display())
    }
}

fn head_json(store: &ledger::store::Store) -> Result<Value> {
    let head = ledger::history::read_head(&store.view())?.context("the store has no chain head")?;
    Ok(json!({
        "height": head.height,
        "head_hash": head.hash,
        "tree_size": head.tree_size,
        "tree_root": head.tree_root,
    }))
}

/// Writes `OUT/db` (a checkpoint: hard links where `OUT` is on the same
/// file system, copies otherwise) and `OUT/backup.json` (the head it holds).
pub fn backup(data: &Path, out: &Path) -> Result<Value> {
    let src = store_dir(data)?;
    if out.exists() {
        bail!("{} exists; give a new directory", out.display());
    }
    let store = ledger::store::Store::open(&src, &ledger::store::StoreOptions::default())
        .with_context(|| format!("opening {} (is the node stopped?)", src.display()))?;
    let head = head_json(&store)?;
    std::fs::create_dir_all(out).with_context(|| format!("creating {}", out.display()))?;
    rocksdb::checkpoint::Checkpoint::new(store.db())
        .and_then(|c| c.create_checkpoint(out.join("db")))
        .context("creating the RocksDB checkpoint")?;
    drop(store);
    let manifest = json!({
        "format": FORMAT,
        "created_at": crate::client::now_rfc3339(),
        "source": src,
        "head": head,
    });
    std::fs::write(out.join(MANIFEST), serde_json::to_vec_pretty(&manifest)?)?;
    // The copy must open and show the head the source had.
    let copy = ledger::store::Store::open_read_only(&out.join("db"))?;
    if head_json(&copy)? != manifest["head"] {
        bail!("the checkpoint's head differs from the source's");
    }
    Ok(manifest)
}

/// Copies a backup's store to `DATA/db` for a node whose config names
/// `data_dir = DATA`; refuses to overwrite a store.
pub fn restore(backup: &Path, data: &Path) -> Result<Value> {
    let manifest: Value = serde_json::from_slice(
        &std::fs::read(backup.join(MANIFEST))
            .with_context(|| format!("reading {}", backup.join(MANIFEST).display()))?,
    )
    .context("backup.json is not JSON")?;
    if manifest["format"] != FORMAT {
        bail!("{} is not a zsl backup", backup.display());
    }
    let target = data.join("db");
    if target.exists() {
        bail!(
            "{} exists; restore into an empty data directory (move the old store away first)",
            target.display()
        );
    }
    let partial = data.join("db.restoring");
    let _ = std::fs::remove_dir_all(&partial);
    copy_dir(&backup.join("db"), &partial)?;
    {
        let store = ledger::store::Store::open_read_only(&partial)?;
        if head_json(&store)? != manifest["head"] {
            bail!("the restored store's head differs from backup.json");
        }
    }
    // Only a complete copy takes the store's name: a crash mid-copy leaves no half store.
    std::fs::rename(&partial, &target)?;
    Ok(manifest)
}

fn copy_dir(from: &Path, to: &Path) -> Result<()> {
    std::fs::create_dir_all(to).with_context(|| format!("creating {}", to.display()))?;
    for entry in std::fs::read_dir(from).with_context(|| format!("reading {}", from.display()))? {
        let entry = entry?;
        let dest = to.join(entry.file_name());
        if entry.file_type()?.is_dir() {
            copy_dir(&entry.path(), &dest)?;
        } else {
            std::fs::copy(entry.path(), &dest)
                .with_context(|| format!("copying {}", entry.path().display()))?;
        }
    }
    // The files are durable before the rename makes them the store.
    for entry in std::fs::read_dir(to)? {
        let entry = entry?;
        if entry.file_type()?.is_file() {
            std::fs::File::open(entry.path())?.sync_all()?;
        }
    }
    Ok(())
}
