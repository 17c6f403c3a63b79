//! The ordered key-value view the state machine reads and writes.
//!
//! The state machine never talks to RocksDB: it reads through [`KvRead`] and
//! writes into an [`Overlay`], a sorted change set that the store commits in
//! one write batch. Sorted maps only, so the change set (and its hash in the
//! block header) is identical on every node.

use std::collections::BTreeMap;
use std::ops::Bound;

/// The column family a key lives in. Each maps to one RocksDB column family.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Space {
    /// Block headers and bodies, by height.
    Blocks,
    /// Signed transactions and their outcome, by tx id.
    Txs,
    /// Stored Merkle tree hashes, by stored-hash index.
    Tree,
    /// Domain state: accounts, subjects, batches, holdings, shipments, findings.
    State,
    /// Secondary indices: score counters, drill-down items, lookups by subject.
    Index,
}

impl Space {
    pub const ALL: [Space; 5] = [
        Space::Blocks,
        Space::Txs,
        Space::Tree,
        Space::State,
        Space::Index,
    ];

    /// The RocksDB column family name.
    pub fn cf_name(self) -> &'static str {
        match self {
            Space::Blocks => "blocks",
            Space::Txs => "txs",
            Space::Tree => "tree",
            Space::State => "state",
            Space::Index => "indices",
        }
    }

    fn tag(self) -> u8 {
        match self {
            Space::Blocks => 1,
            Space::Txs => 2,
            Space::Tree => 3,
            Space::State => 4,
            Space::Index => 5,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum KvError {
    #[error("storage read failed: {0}")]
    Read(String),
    #[error("stored value under {key} does not decode: {reason}")]
    Corrupt { key: String, reason: String },
    #[error("a value does not encode: {0}")]
    Encode(String),
}

pub type KvResult<T> = std::result::Result<T, KvError>;

/// Read access to committed (or overlaid) state.
pub trait KvRead {
    fn get(&self, space: Space, key: &[u8]) -> KvResult<Option<Vec<u8>>>;

    /// Entries with `from <= key < to`, in key order, at most `limit` of them.
    fn scan(
        &self,
        space: Space,
        from: &[u8],
        to: &[u8],
        limit: usize,
    ) -> KvResult<Vec<(Vec<u8>, Vec<u8>)>>;

    /// Entries whose key starts with `prefix`, in key order, at most `limit`.
    fn scan_prefix(
        &self,
        space: Space,
        prefix: &[u8],
        limit: usize,
    ) -> KvResult<Vec<(Vec<u8>, Vec<u8>)>> {
        match prefix_end(prefix) {
            Some(end) => self.scan(space, prefix, &end, limit),
            None => self.scan(space, prefix, &[0xff; 64], limit),
        }
    }
}

/// The smallest key greater than every key that starts with `prefix`.
pub fn prefix_end(prefix: &[u8]) -> Option<Vec<u8>> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last < 0xff {
            end.push(last + 1);
            return Some(end);
        }
    }
    None
}

/// Write access: a change set over some base.
pub trait KvWrite: KvRead {
    fn put(&mut self, space: Space, key: Vec<u8>, value: Vec<u8>);
    fn delete(&mut self, space: Space, key: Vec<u8>);
}

/// A sorted in-memory map; the test and replay backend, and the base of [`Overlay`].
#[derive(Debug, Default, Clone)]
pub struct MemoryKv {
    map: BTreeMap<(Space, Vec<u8>), Vec<u8>>,
}

impl MemoryKv {
    pub fn new() -> Self {
        Self::default()
    }

    /// Every (space, key) held, in order.
    #[cfg(test)]
    pub fn keys(&self) -> impl Iterator<Item = &(Space, Vec<u8>)> {
        self.map.keys()
    }

    pub fn len(&self) -> usize {
        self.map.len()
    }

    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    /// Applies a change set.
    pub fn apply(&mut self, changes: &ChangeSet) {
        for ((space, key), value) in &changes.entries {
            match value {
                Some(v) => {
                    self.map.insert((*space, key.clone()), v.clone());
                }
                None => {
                    self.map.remove(&(*space, key.clone()));
                }
            }
        }
    }
}

impl KvRead for MemoryKv {
    fn get(&self, space: Space, key: &[u8]) -> KvResult<Option<Vec<u8>>> {
        Ok(self.map.get(&(space, key.to_vec())).cloned())
    }

    fn scan(
        &self,
        space: Space,
        from: &[u8],
        to: &[u8],
        limit: usize,
    ) -> KvResult<Vec<(Vec<u8>, Vec<u8>)>> {
        if from >= to {
            return Ok(Vec::new());
        }
        let range = (
            Bound::Included((space, from.to_vec())),
            Bound::Excluded((space, to.to_vec())),
        );
        Ok(self
            .map
            .range(range)
            .take(limit)
            .map(|((_, k), v)| (k.clone(), v.clone()))
            .collect())
    }
}

impl KvWrite for MemoryKv {
    fn put(&mut self, space: Space, key: Vec<u8>, value: Vec<u8>) {
        self.map.insert((space, key), value);
    }

    fn delete(&mut self, space: Space, key: Vec<u8>) {
        self.map.remove(&(space, key));
    }
}

/// The changes of one block (or one transaction): `None` is a deletion.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct ChangeSet {
    pub entries: BTreeMap<(Space, Vec<u8>), Option<Vec<u8>>>,
}

impl ChangeSet {
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Folds `later` on top of `self`.
    pub fn extend(&mut self, later: ChangeSet) {
        self.entries.extend(later.entries);
    }

    /// The bytes hashed into a block header's state-change hash: for each entry
    /// in key order, `tag ‖ len(key) ‖ key ‖ (0 | 1 ‖ len(value) ‖ value)`, lengths as u32 BE.
    /// Only the domain spaces (State, Index) are covered: Blocks, Txs and Tree
    /// are covered by the header's own fields.
    pub fn digest_input(&self) -> Vec<u8> {
        let mut out = Vec::new();
        for ((space, key), value) in &self.entries {
            if !matches!(space, Space::State | Space::Index) {
                continue;
            }
            out.push(space.tag());
            out.extend_from_slice(&(key.len() as u32).to_be_bytes());
            out.extend_from_slice(key);
            match value {
                None => out.push(0),
                Some(v) => {
                    out.push(1);
                    out.extend_from_slice(&(v.len() as u32).to_be_bytes());
                    out.extend_from_slice(v);
                }
            }
        }
        out
    }
}

/// Reads fall through to `base` where the change set has nothing.
pub struct Overlay<'a, B: KvRead + ?Sized> {
    base: &'a B,
    changes: ChangeSet,
}

impl<'a, B: KvRead + ?Sized> Overlay<'a, B> {
    pub fn new(base: &'a B) -> Self {
        Self {
            base,
            changes: ChangeSet::default(),
        }
    }

    pub fn into_changes(self) -> ChangeSet {
        self.changes
    }

    pub fn changes(&self) -> &ChangeSet {
        &self.changes
    }

    /// Folds a nested overlay's changes (an accepted transaction) into this one.
    pub fn absorb(&mut self, changes: ChangeSet) {
        self.changes.extend(changes);
    }
}

impl<B: KvRead + ?Sized> KvRead for Overlay<'_, B> {
    fn get(&self, space: Space, key: &[u8]) -> KvResult<Option<Vec<u8>>> {
        match self.changes.entries.get(&(space, key.to_vec())) {
            Some(v) => Ok(v.clone()),
            None => self.base.get(space, key),
        }
    }

    fn scan(
        &self,
        space: Space,
        from: &[u8],
        to: &[u8],
        limit: usize,
    ) -> KvResult<Vec<(Vec<u8>, Vec<u8>)>> {
        if from >= to || limit == 0 {
            return Ok(Vec::new());
        }
        let range = (
            Bound::Included((space, from.to_vec())),
            Bound::Excluded((space, to.to_vec())),
        );
        let overlaid: Vec<(&Vec<u8>, &Option<Vec<u8>>)> = self
            .changes
            .entries
            .range(range)
            .map(|((_, k), v)| (k, v))
            .collect();
        // Ask the base for enough rows that deletions in the overlay cannot starve the result.
        let deleted = overlaid.iter().filter(|(_, v)| v.is_none()).count();
        let base = self
            .base
            .scan(space, from, to, limit.saturating_add(deleted))?;
        let mut merged: BTreeMap<Vec<u8>, Option<Vec<u8>>> =
            base.into_iter().map(|(k, v)| (k, Some(v))).collect();
        for (k, v) in overlaid {
            merged.insert(k.clone(), v.clone());
        }
        Ok(merged
            .into_iter()
            .filter_map(|(k, v)| v.map(|v| (k, v)))
            .take(limit)
            .collect())
    }
}

impl<B: KvRead + ?Sized> KvWrite for Overlay<'_, B> {
    fn put(&mut self, space: Space, key: Vec<u8>, value: Vec<u8>) {
        self.changes.entries.insert((space, key), Some(value));
    }

    fn delete(&mut self, space: Space, key: Vec<u8>) {
        self.changes.entries.insert((space, key), None);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overlay_reads_its_own_writes_and_hides_deletions() {
        let mut base = MemoryKv::new();
        base.put(Space::State, b"a".to_vec(), b"1".to_vec());
        base.put(Space::State, b"b".to_vec(), b"2".to_vec());
        base.put(Space::State, b"c".to_vec(), b"3".to_vec());
        let mut o = Overlay::new(&base);
        o.delete(Space::State, b"b".to_vec());
        o.put(Space::State, b"bb".to_vec(), b"22".to_vec());
        assert_eq!(o.get(Space::State, b"b").unwrap(), None);
        assert_eq!(o.get(Space::State, b"a").unwrap(), Some(b"1".to_vec()));
        let rows = o.scan(Space::State, b"a", b"z", 10).unwrap();
        let keys: Vec<&[u8]> = rows.iter().map(|(k, _)| k.as_slice()).collect();
        assert_eq!(keys, vec![&b"a"[..], b"bb", b"c"]);
        let rows = o.scan(Space::State, b"a", b"z", 2).unwrap();
        assert_eq!(rows.len(), 2);
        // Other spaces are separate.
        assert!(o.scan(Space::Index, b"a", b"z", 10).unwrap().is_empty());
    }

    #[test]
    fn prefix_end_handles_ff() {
        assert_eq!(prefix_end(b"ab"), Some(b"ac".to_vec()));
        assert_eq!(prefix_end(&[1, 0xff]), Some(vec![2]));
        assert_eq!(prefix_end(&[0xff, 0xff]), None);
    }

    #[test]
    fn digest_covers_only_domain_spaces() {
        let mut c = ChangeSet::default();
        c.entries
            .insert((Space::Tree, b"x".to_vec()), Some(b"y".to_vec()));
        assert!(c.digest_input().is_empty());
        c.entries.insert((Space::State, b"x".to_vec()), None);
        assert_eq!(c.digest_input(), vec![4, 0, 0, 0, 1, b'x', 0]);
    }
}
