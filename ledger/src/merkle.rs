//! RFC 9162 (Certificate Transparency v2, same tree as RFC 6962) Merkle tree
//! over transaction ids.
//!
//! Storage: every complete subtree hash is persisted once, in a flat map
//! `u64 -> Hash` keyed by the "stored hash index" of Go's
//! `golang.org/x/mod/sumdb/tlog` (Crosby & Wallach §3.3). The index is a pure
//! function of `(level, n)`, so every node writes identical storage, and
//! roots/proofs for any tree size up to the current one need only O(log n)
//! reads of that map.
//!
//! Generation (`append_leaf`, `tree_root`, `inclusion_proof`,
//! `consistency_proof`) wraps `tlog_tiles` (Cloudflare's Rust port of Go's
//! tlog: same hashing, same storage layout, one batched read per call). That
//! crate asserts on internal invariants and on a misbehaving reader, and uses
//! unchecked arithmetic, so every call here first bounds the sizes
//! ([`MAX_TREE_SIZE`]) and routes reads through an adapter that turns a
//! wrong-length answer into an error before tlog_tiles can see it.
//!
//! Verification (`verify_inclusion`, `verify_consistency`) is hand-written
//! from the RFC 9162 §2.1.3.2 / §2.1.4.2 algorithms, depends only on `sha2`,
//! uses only shifts and comparisons, and never panics: offline verifiers can
//! reuse it without trusting anything else here.

use std::cell::Cell;

use sha2::{Digest, Sha256};

/// A SHA-256 digest: leaf hash, interior node hash or tree root.
pub type Hash = [u8; 32];

/// Length of [`Hash`](type@Hash) in bytes.
pub const HASH_LEN: usize = 32;

/// Largest tree size accepted by the storage-backed functions.
///
/// Keeps every stored-hash index (< 2 * size + 64) and every intermediate of
/// the tlog arithmetic inside `u64`; no ledger gets anywhere near it.
pub const MAX_TREE_SIZE: u64 = 1 << 62;

/// Upper bound on hashes in any proof we accept before hashing anything.
///
/// An inclusion proof has at most 64 hashes and a consistency proof at most
/// 65 for any `u64` tree size; longer input is rejected cheaply.
pub const MAX_PROOF_HASHES: usize = 65;

/// Domain-separation prefix for leaves (RFC 9162 §2.1.1).
const LEAF_PREFIX: u8 = 0x00;
/// Domain-separation prefix for interior nodes (RFC 9162 §2.1.1).
const NODE_PREFIX: u8 = 0x01;

/// Errors from tree storage, proof generation and proof verification.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum MerkleError {
    /// Leaf index is not inside the tree.
    #[error("leaf index {index} out of range for tree size {size}")]
    IndexOutOfRange { index: u64, size: u64 },
    /// Consistency sizes are not `old_size <= new_size`.
    #[error("invalid tree sizes: old {old_size}, new {new_size}")]
    InvalidSizes { old_size: u64, new_size: u64 },
    /// Tree size beyond [`MAX_TREE_SIZE`].
    #[error("tree size {size} exceeds the maximum {max}", max = MAX_TREE_SIZE)]
    TreeTooLarge { size: u64 },
    /// A stored-hash index computation would overflow `u64`.
    #[error("stored hash index overflows for level {level}, index {n}")]
    IndexOverflow { level: u8, n: u64 },
    /// The proof is structurally wrong for the claimed sizes.
    #[error("bad proof: {reason}")]
    BadProof { reason: &'static str },
    /// The proof is well-formed but does not lead to the given root(s).
    #[error("recomputed root does not match the expected root")]
    RootMismatch,
    /// The reader has no hash at this stored index.
    #[error("stored hash {index} is missing")]
    MissingHash { index: u64 },
    /// Any other storage failure (I/O, decoding, a reader breaking its contract).
    #[error("hash storage: {0}")]
    Storage(String),
}

/// Read access to persisted tree nodes, keyed by stored hash index
/// (see [`stored_hash_index`]). The ledger backs this with RocksDB plus an
/// in-block overlay; [`MemoryTree`] is the in-memory version.
pub trait HashReader {
    /// Returns exactly one hash per requested index, in the same order, or an
    /// error. Callers here always ask in increasing index order, in one batch.
    fn read_hashes(&self, indexes: &[u64]) -> Result<Vec<Hash>, MerkleError>;
}

impl<T: HashReader + ?Sized> HashReader for &T {
    fn read_hashes(&self, indexes: &[u64]) -> Result<Vec<Hash>, MerkleError> {
        (**self).read_hashes(indexes)
    }
}

/// RFC 9162 leaf hash of a transaction id: `SHA-256(0x00 ‖ id)`.
pub fn leaf_hash(tx_id: &[u8; 32]) -> Hash {
    leaf_hash_bytes(tx_id)
}

/// RFC 9162 leaf hash of arbitrary leaf data: `SHA-256(0x00 ‖ data)`.
pub fn leaf_hash_bytes(data: &[u8]) -> Hash {
    let mut h = Sha256::new();
    h.update([LEAF_PREFIX]);
    h.update(data);
    h.finalize().into()
}

/// RFC 9162 interior node hash: `SHA-256(0x01 ‖ left ‖ right)`.
pub fn node_hash(left: &Hash, right: &Hash) -> Hash {
    let mut h = Sha256::new();
    h.update([NODE_PREFIX]);
    h.update(left);
    h.update(right);
    h.finalize().into()
}

/// Root of the empty tree: `SHA-256("")`.
pub fn empty_root() -> Hash {
    Sha256::digest(b"").into()
}

/// Stored hash index of the `n`-th node at `level` (level 0 = leaves), exactly
/// Go tlog's `StoredHashIndex`: hashes are laid out in the order they become
/// computable while leaves are appended.
pub fn stored_hash_index(level: u8, n: u64) -> Result<u64, MerkleError> {
    let overflow = MerkleError::IndexOverflow { level, n };
    // Level L's n-th hash is stored right after level L+1's (2n+1)-th...
    // rewritten in level-0 terms: the last leaf under it is 2^L * (n+1) - 1.
    let mut last_leaf = n;
    for _ in 0..level {
        last_leaf = last_leaf
            .checked_mul(2)
            .and_then(|x| x.checked_add(1))
            .ok_or_else(|| overflow.clone())?;
    }
    // Leaf m is stored at m + m/2 + m/4 + ... (one hash per completed subtree).
    let mut index: u64 = 0;
    let mut m = last_leaf;
    while m > 0 {
        index = index.checked_add(m).ok_or_else(|| overflow.clone())?;
        m >>= 1;
    }
    index.checked_add(u64::from(level)).ok_or(overflow)
}

/// Number of stored hashes a tree of `size` leaves has written
/// (= the next free stored index).
pub fn stored_hash_count(size: u64) -> Result<u64, MerkleError> {
    check_size(size)?;
    if size == 0 {
        return Ok(0);
    }
    // Leaf `size-1` plus one parent for every trailing 1 bit of `size-1`.
    let last = size - 1;
    let base = stored_hash_index(0, last)?;
    Ok(base + 1 + u64::from(last.trailing_ones()))
}

/// Hashes to persist when leaf `n` (0-based; the tree has `n` leaves now) with
/// transaction id `tx_id` is appended: `(stored index, hash)` pairs with
/// consecutive indexes starting at `stored_hash_index(0, n)`. Reads at most
/// log2(n) earlier stored hashes, in one batch.
pub fn append_leaf(
    n: u64,
    tx_id: &[u8; 32],
    reader: &impl HashReader,
) -> Result<Vec<(u64, Hash)>, MerkleError> {
    append_leaf_hash(n, leaf_hash(tx_id), reader)
}

/// Like [`append_leaf`] but takes the leaf hash itself, so leaves that are not
/// transaction ids (e.g. the RFC 6962 test vectors) share the same storage code.
pub fn append_leaf_hash(
    n: u64,
    leaf: Hash,
    reader: &impl HashReader,
) -> Result<Vec<(u64, Hash)>, MerkleError> {
    // The tree will have n + 1 leaves afterwards.
    check_size(
        n.checked_add(1)
            .ok_or(MerkleError::TreeTooLarge { size: n })?,
    )?;
    let start = stored_hash_index(0, n)?;
    let adapter = TlogReader::new(reader);
    let hashes = tlog_tiles::stored_hashes_for_record_hash(n, tlog_tiles::Hash(leaf), &adapter)
        .map_err(|e| adapter.into_error(e))?;
    let mut out = Vec::with_capacity(hashes.len());
    let mut index = start;
    for h in hashes {
        out.push((index, h.0));
        index = index
            .checked_add(1)
            .ok_or(MerkleError::IndexOverflow { level: 0, n })?;
    }
    Ok(out)
}

/// Root (RFC 9162 MTH) of the tree made of the first `size` leaves.
/// One batched read of at most 1 + log2(size) stored hashes.
pub fn tree_root(size: u64, reader: &impl HashReader) -> Result<Hash, MerkleError> {
    check_size(size)?;
    if size == 0 {
        return Ok(empty_root());
    }
    let adapter = TlogReader::new(reader);
    tlog_tiles::tree_hash(size, &adapter)
        .map(|h| h.0)
        .map_err(|e| adapter.into_error(e))
}

/// RFC 9162 §2.1.3.1 inclusion proof (audit path, leaf to root) for leaf
/// `index` in the tree of the first `size` leaves. O(log size) reads.
pub fn inclusion_proof(
    index: u64,
    size: u64,
    reader: &impl HashReader,
) -> Result<Vec<Hash>, MerkleError> {
    check_size(size)?;
    if index >= size {
        return Err(MerkleError::IndexOutOfRange { index, size });
    }
    let adapter = TlogReader::new(reader);
    tlog_tiles::prove_record(size, index, &adapter)
        .map(|p| p.into_iter().map(|h| h.0).collect())
        .map_err(|e| adapter.into_error(e))
}

/// RFC 9162 §2.1.4.1 consistency proof that the tree of `old_size` leaves is a
/// prefix of the tree of `new_size` leaves. O(log new_size) reads.
///
/// Empty when `old_size == new_size` or `old_size == 0` (nothing to prove;
/// [`verify_consistency`] accepts exactly those with an empty proof).
pub fn consistency_proof(
    old_size: u64,
    new_size: u64,
    reader: &impl HashReader,
) -> Result<Vec<Hash>, MerkleError> {
    check_size(new_size)?;
    if old_size > new_size {
        return Err(MerkleError::InvalidSizes { old_size, new_size });
    }
    if old_size == 0 || old_size == new_size {
        return Ok(Vec::new());
    }
    let adapter = TlogReader::new(reader);
    tlog_tiles::prove_tree(new_size, old_size, &adapter)
        .map(|p| p.into_iter().map(|h| h.0).collect())
        .map_err(|e| adapter.into_error(e))
}

/// Verifies an inclusion proof with the RFC 9162 §2.1.3.2 algorithm.
///
/// Pure; any input (size 0, index >= size, u64::MAX, wrong length) gives an
/// error, never a panic.
pub fn verify_inclusion(
    leaf: &Hash,
    index: u64,
    size: u64,
    proof: &[Hash],
    root: &Hash,
) -> Result<(), MerkleError> {
    if index >= size {
        return Err(MerkleError::IndexOutOfRange { index, size });
    }
    if proof.len() > MAX_PROOF_HASHES {
        return Err(MerkleError::BadProof {
            reason: "proof longer than any tree allows",
        });
    }
    // fn: position of the running node; sn: position of the last node, same level.
    let mut fnode = index;
    let mut snode = size - 1;
    let mut r = *leaf;
    for p in proof {
        if snode == 0 {
            return Err(MerkleError::BadProof {
                reason: "inclusion proof has too many hashes",
            });
        }
        if fnode & 1 == 1 || fnode == snode {
            r = node_hash(p, &r);
            // A right-edge node with no sibling moves up without hashing.
            while fnode & 1 == 0 && fnode != 0 {
                fnode >>= 1;
                snode >>= 1;
            }
        } else {
            r = node_hash(&r, p);
        }
        fnode >>= 1;
        snode >>= 1;
    }
    if snode != 0 {
        return Err(MerkleError::BadProof {
            reason: "inclusion proof has too few hashes",
        });
    }
    if r != *root {
        return Err(MerkleError::RootMismatch);
    }
    Ok(())
}

/// Verifies a consistency proof with the RFC 9162 §2.1.4.2 algorithm.
///
/// RFC 9162 defines proofs only for `0 < old_size < new_size`. The trivial
/// cases are accepted with an empty proof: `old_size == new_size` when the
/// roots are equal, and `old_size == 0` when `old_root` is the empty-tree root
/// (any tree extends the empty one). Pure; never panics.
pub fn verify_consistency(
    old_size: u64,
    new_size: u64,
    old_root: &Hash,
    new_root: &Hash,
    proof: &[Hash],
) -> Result<(), MerkleError> {
    if old_size > new_size {
        return Err(MerkleError::InvalidSizes { old_size, new_size });
    }
    if old_size == 0 || old_size == new_size {
        if !proof.is_empty() {
            return Err(MerkleError::BadProof {
                reason: "consistency proof must be empty for an empty or unchanged tree",
            });
        }
        let roots_ok = if old_size == 0 {
            // The empty tree's root is fixed; so is the new one if it is empty too.
            *old_root == empty_root() && (new_size != 0 || *new_root == empty_root())
        } else {
            old_root == new_root
        };
        if !roots_ok {
            return Err(MerkleError::RootMismatch);
        }
        return Ok(());
    }
    if proof.is_empty() {
        return Err(MerkleError::BadProof {
            reason: "consistency proof is empty",
        });
    }
    if proof.len() > MAX_PROOF_HASHES {
        return Err(MerkleError::BadProof {
            reason: "proof longer than any tree allows",
        });
    }
    // Step 2: when old_size is a power of two the old root is itself the
    // starting node, and the proof omits it.
    let (seed, rest) = if old_size.is_power_of_two() {
        (old_root, proof)
    } else {
        match proof.split_first() {
            Some((first, rest)) => (first, rest),
            None => {
                return Err(MerkleError::BadProof {
                    reason: "consistency proof is empty",
                })
            }
        }
    };
    let mut fnode = old_size - 1;
    let mut snode = new_size - 1;
    // Skip the levels where the old tree's last node is a right child: the
    // seed already covers them.
    while fnode & 1 == 1 {
        fnode >>= 1;
        snode >>= 1;
    }
    let mut fr = *seed;
    let mut sr = *seed;
    for c in rest {
        if snode == 0 {
            return Err(MerkleError::BadProof {
                reason: "consistency proof has too many hashes",
            });
        }
        if fnode & 1 == 1 || fnode == snode {
            fr = node_hash(c, &fr);
            sr = node_hash(c, &sr);
            while fnode & 1 == 0 && fnode != 0 {
                fnode >>= 1;
                snode >>= 1;
            }
        } else {
            sr = node_hash(&sr, c);
        }
        fnode >>= 1;
        snode >>= 1;
    }
    if snode != 0 {
        return Err(MerkleError::BadProof {
            reason: "consistency proof has too few hashes",
        });
    }
    if fr != *old_root || sr != *new_root {
        return Err(MerkleError::RootMismatch);
    }
    Ok(())
}

/// In-memory stored-hash map plus appender: for tests, offline verifiers and
/// replay. Stored index `i` lives at `stored[i]`, since appends fill indexes
/// densely.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MemoryTree {
    stored: Vec<Hash>,
    size: u64,
}

impl MemoryTree {
    /// An empty tree.
    pub fn new() -> Self {
        Self::default()
    }

    /// Appends a transaction id; returns its leaf index.
    pub fn push(&mut self, tx_id: &[u8; 32]) -> Result<u64, MerkleError> {
        self.push_leaf_hash(leaf_hash(tx_id))
    }

    /// Appends an already-hashed leaf; returns its leaf index.
    pub fn push_leaf_hash(&mut self, leaf: Hash) -> Result<u64, MerkleError> {
        let pairs = append_leaf_hash(self.size, leaf, &*self)?;
        // Check density before mutating so a failed push leaves the tree intact.
        let next = self.stored.len() as u64;
        let dense = pairs
            .iter()
            .enumerate()
            .all(|(i, (idx, _))| next.checked_add(i as u64) == Some(*idx));
        if !dense {
            return Err(MerkleError::Storage(
                "append produced non-contiguous stored indexes".into(),
            ));
        }
        self.stored.extend(pairs.into_iter().map(|(_, h)| h));
        let index = self.size;
        self.size += 1;
        Ok(index)
    }

    /// Number of leaves.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// Root of the whole tree.
    pub fn root(&self) -> Result<Hash, MerkleError> {
        tree_root(self.size, self)
    }

    /// Root of the prefix of `size` leaves (`size <= self.size()`).
    pub fn root_at(&self, size: u64) -> Result<Hash, MerkleError> {
        self.check_prefix(size)?;
        tree_root(size, self)
    }

    /// Inclusion proof for leaf `index` in the prefix of `size` leaves.
    pub fn inclusion_proof(&self, index: u64, size: u64) -> Result<Vec<Hash>, MerkleError> {
        self.check_prefix(size)?;
        inclusion_proof(index, size, self)
    }

    /// Consistency proof between the prefixes of `old_size` and `new_size` leaves.
    pub fn consistency_proof(
        &self,
        old_size: u64,
        new_size: u64,
    ) -> Result<Vec<Hash>, MerkleError> {
        self.check_prefix(new_size)?;
        consistency_proof(old_size, new_size, self)
    }

    /// All stored hashes, in stored-index order (what RocksDB would hold).
    pub fn stored_hashes(&self) -> &[Hash] {
        &self.stored
    }

    fn check_prefix(&self, size: u64) -> Result<(), MerkleError> {
        if size > self.size {
            return Err(MerkleError::InvalidSizes {
                old_size: size,
                new_size: self.size,
            });
        }
        Ok(())
    }
}

impl HashReader for MemoryTree {
    fn read_hashes(&self, indexes: &[u64]) -> Result<Vec<Hash>, MerkleError> {
        indexes
            .iter()
            .map(|&index| {
                usize::try_from(index)
                    .ok()
                    .and_then(|i| self.stored.get(i))
                    .copied()
                    .ok_or(MerkleError::MissingHash { index })
            })
            .collect()
    }
}

fn check_size(size: u64) -> Result<(), MerkleError> {
    if size > MAX_TREE_SIZE {
        return Err(MerkleError::TreeTooLarge { size });
    }
    Ok(())
}

/// Bridges our [`HashReader`] to tlog_tiles': enforces the one-hash-per-index
/// contract (tlog_tiles would panic otherwise) and keeps our own error so the
/// caller sees it instead of tlog_tiles' generic one.
struct TlogReader<'a, R: HashReader + ?Sized> {
    inner: &'a R,
    error: Cell<Option<MerkleError>>,
}

impl<'a, R: HashReader + ?Sized> TlogReader<'a, R> {
    fn new(inner: &'a R) -> Self {
        Self {
            inner,
            error: Cell::new(None),
        }
    }

    fn into_error(self, fallback: tlog_tiles::Error) -> MerkleError {
        self.error
            .into_inner()
            .unwrap_or_else(|| MerkleError::Storage(fallback.to_string()))
    }
}

impl<R: HashReader + ?Sized> tlog_tiles::HashReader for TlogReader<'_, R> {
    fn read_hashes(&self, indexes: &[u64]) -> Result<Vec<tlog_tiles::Hash>, tlog_tiles::Error> {
        // tlog_tiles asks even when it needs nothing (e.g. appending an even
        // leaf); spare the backing store an empty round trip.
        if indexes.is_empty() {
            return Ok(Vec::new());
        }
        let result = match self.inner.read_hashes(indexes) {
            Ok(hashes) if hashes.len() == indexes.len() => {
                return Ok(hashes.into_iter().map(tlog_tiles::Hash).collect());
            }
            Ok(hashes) => MerkleError::Storage(format!(
                "reader returned {} hashes for {} indexes",
                hashes.len(),
                indexes.len()
            )),
            Err(e) => e,
        };
        self.error.set(Some(result));
        Err(tlog_tiles::Error::IndexesNotInTree)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::BTreeMap;
    use std::sync::OnceLock;

    fn h(s: &str) -> Hash {
        let v = hex::decode(s).expect("test constant is hex");
        v.try_into().expect("test constant is 32 bytes")
    }

    // ---- RFC 6962 / CT reference vectors (transparency-dev/merkle
    // proof/verify_test.go, same as certificate-transparency's merkle tests).

    const VECTOR_LEAVES: [&str; 8] = [
        "",
        "00",
        "10",
        "2021",
        "3031",
        "40414243",
        "5051525354555657",
        "606162636465666768696a6b6c6d6e6f",
    ];

    const VECTOR_ROOTS: [&str; 8] = [
        "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
        "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
        "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
        "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
        "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
        "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
        "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
    ];

    /// (0-based leaf index, tree size, audit path).
    const VECTOR_INCLUSION: &[(u64, u64, &[&str])] = &[
        (0, 1, &[]),
        (
            0,
            8,
            &[
                "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
                "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
                "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
            ],
        ),
        (
            5,
            8,
            &[
                "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
                "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
                "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
            ],
        ),
        (
            2,
            3,
            &["fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125"],
        ),
        (
            1,
            5,
            &[
                "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
                "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
                "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
            ],
        ),
    ];

    /// (old size, new size, consistency proof).
    const VECTOR_CONSISTENCY: &[(u64, u64, &[&str])] = &[
        (1, 1, &[]),
        (
            1,
            8,
            &[
                "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
                "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
                "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
            ],
        ),
        (
            6,
            8,
            &[
                "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
                "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
                "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
            ],
        ),
        (
            2,
            5,
            &[
                "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
                "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
            ],
        ),
        (
            6,
            7,
            &[
                "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
                "b08693ec2e721597130641e8211e7eedccb4c26413963eee6c1e2ed16ffb1a5f",
                "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
            ],
        ),
    ];

    fn vector_leaf_hashes() -> Vec<Hash> {
        VECTOR_LEAVES
            .iter()
            .map(|l| leaf_hash_bytes(&hex::decode(l).expect("hex")))
            .collect()
    }

    fn vector_tree() -> MemoryTree {
        let mut t = MemoryTree::new();
        for lh in vector_leaf_hashes() {
            t.push_leaf_hash(lh).expect("push");
        }
        t
    }

    fn hashes(v: &[&str]) -> Vec<Hash> {
        v.iter().map(|s| h(s)).collect()
    }

    // ---- Naive RFC 9162 reference implementations (recursive definitions).

    /// Largest power of two strictly below `n` (n >= 2).
    fn split(n: usize) -> usize {
        let mut k = 1;
        while k * 2 < n {
            k *= 2;
        }
        k
    }

    fn naive_mth(leaves: &[Hash]) -> Hash {
        match leaves.len() {
            0 => empty_root(),
            1 => leaves[0],
            n => {
                let k = split(n);
                node_hash(&naive_mth(&leaves[..k]), &naive_mth(&leaves[k..]))
            }
        }
    }

    /// RFC 9162 §2.1.3.1 PATH(m, D[n]).
    fn naive_path(m: usize, leaves: &[Hash]) -> Vec<Hash> {
        let n = leaves.len();
        if n <= 1 {
            return Vec::new();
        }
        let k = split(n);
        if m < k {
            let mut p = naive_path(m, &leaves[..k]);
            p.push(naive_mth(&leaves[k..]));
            p
        } else {
            let mut p = naive_path(m - k, &leaves[k..]);
            p.push(naive_mth(&leaves[..k]));
            p
        }
    }

    /// RFC 9162 §2.1.4.1 SUBPROOF(m, D[n], b).
    fn naive_subproof(m: usize, leaves: &[Hash], b: bool) -> Vec<Hash> {
        let n = leaves.len();
        if m == n {
            return if b {
                Vec::new()
            } else {
                vec![naive_mth(leaves)]
            };
        }
        let k = split(n);
        if m <= k {
            let mut p = naive_subproof(m, &leaves[..k], b);
            p.push(naive_mth(&leaves[k..]));
            p
        } else {
            let mut p = naive_subproof(m - k, &leaves[k..], false);
            p.push(naive_mth(&leaves[..k]));
            p
        }
    }

    /// Shape of PATH(m, n): per proof hash, whether the sibling is on the left.
    /// Two (index, size) pairs with equal shapes verify identically, so a
    /// mutated size can only be caught when the shape changes.
    fn path_shape(m: u64, n: u64) -> Vec<bool> {
        if n <= 1 {
            return Vec::new();
        }
        let k = 1u64 << (63 - (n - 1).leading_zeros());
        if m < k {
            let mut s = path_shape(m, k);
            s.push(false);
            s
        } else {
            let mut s = path_shape(m - k, n - k);
            s.push(true);
            s
        }
    }

    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    enum Step {
        Seed,
        Right,
        Left,
    }

    /// Shape of SUBPROOF(m, n, b), same purpose as [`path_shape`].
    fn subproof_shape(m: u64, n: u64, b: bool) -> Vec<Step> {
        if m == n {
            return if b { Vec::new() } else { vec![Step::Seed] };
        }
        let k = 1u64 << (63 - (n - 1).leading_zeros());
        if m <= k {
            let mut s = subproof_shape(m, k, b);
            s.push(Step::Right);
            s
        } else {
            let mut s = subproof_shape(m - k, n - k, false);
            s.push(Step::Left);
            s
        }
    }

    fn consistency_shape(old: u64, new: u64) -> Option<Vec<Step>> {
        (old >= 1 && old < new).then(|| subproof_shape(old, new, true))
    }

    // ---- Fixture for property tests: one big tree; smaller trees are its
    // prefixes, which the stored-hash layout serves directly.

    const FIXTURE_SIZE: u64 = 2000;

    struct Fixture {
        tree: MemoryTree,
        leaves: Vec<Hash>,
    }

    fn tx_id(i: u64) -> [u8; 32] {
        Sha256::digest(i.to_be_bytes()).into()
    }

    fn fixture() -> &'static Fixture {
        static F: OnceLock<Fixture> = OnceLock::new();
        F.get_or_init(|| {
            let mut tree = MemoryTree::new();
            let mut leaves = Vec::new();
            for i in 0..FIXTURE_SIZE {
                let id = tx_id(i);
                leaves.push(leaf_hash(&id));
                tree.push(&id).expect("push");
            }
            Fixture { tree, leaves }
        })
    }

    fn flip(mut x: Hash, byte: usize) -> Hash {
        x[byte % HASH_LEN] ^= 0x01;
        x
    }

    // ---- Hashing and layout.

    #[test]
    fn hashing_is_rfc9162() {
        assert_eq!(
            empty_root(),
            h("e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
        );
        let id = [7u8; 32];
        let mut pre = vec![0x00];
        pre.extend_from_slice(&id);
        assert_eq!(leaf_hash(&id), <Hash>::from(Sha256::digest(&pre)));
        let (l, r) = ([1u8; 32], [2u8; 32]);
        let mut pre = vec![0x01];
        pre.extend_from_slice(&l);
        pre.extend_from_slice(&r);
        assert_eq!(node_hash(&l, &r), <Hash>::from(Sha256::digest(&pre)));
    }

    #[test]
    fn stored_hash_index_matches_go_tlog_layout() {
        // Go tlog order for leaves 0..4: L0(0) L0(1) L1(0) L0(2) L0(3) L1(1) L2(0).
        let expected = [
            (0u8, 0u64, 0u64),
            (0, 1, 1),
            (1, 0, 2),
            (0, 2, 3),
            (0, 3, 4),
            (1, 1, 5),
            (2, 0, 6),
            (0, 4, 7),
        ];
        for (level, n, idx) in expected {
            assert_eq!(stored_hash_index(level, n), Ok(idx), "({level},{n})");
        }
        // Agrees with the crate we wrap on a sample of coordinates.
        for level in 0..20u8 {
            for n in (0..5000u64).step_by(37) {
                assert_eq!(
                    stored_hash_index(level, n),
                    Ok(tlog_tiles::stored_hash_index(level, n))
                );
            }
        }
        assert!(stored_hash_index(64, 1).is_err());
        assert!(stored_hash_index(0, u64::MAX).is_err());
        // Every append writes exactly the next stored indexes.
        let t = &fixture().tree;
        assert_eq!(
            stored_hash_count(t.size()),
            Ok(t.stored_hashes().len() as u64)
        );
        assert_eq!(stored_hash_count(0), Ok(0));
        assert!(stored_hash_count(MAX_TREE_SIZE + 1).is_err());
    }

    // ---- Golden vectors.

    #[test]
    fn golden_roots() {
        assert_eq!(MemoryTree::new().root(), Ok(empty_root()));
        let t = vector_tree();
        for (i, want) in VECTOR_ROOTS.iter().enumerate() {
            let size = i as u64 + 1;
            assert_eq!(t.root_at(size), Ok(h(want)), "root at size {size}");
        }
        assert_eq!(t.root(), Ok(h(VECTOR_ROOTS[7])));
    }

    #[test]
    fn golden_inclusion_proofs() {
        let t = vector_tree();
        let leaves = vector_leaf_hashes();
        for &(index, size, proof) in VECTOR_INCLUSION {
            let want = hashes(proof);
            assert_eq!(t.inclusion_proof(index, size), Ok(want.clone()));
            let root = h(VECTOR_ROOTS[size as usize - 1]);
            assert_eq!(
                verify_inclusion(&leaves[index as usize], index, size, &want, &root),
                Ok(())
            );
            assert_corrupt_inclusion_fails(&leaves[index as usize], index, size, &want, &root);
        }
    }

    #[test]
    fn golden_consistency_proofs() {
        let t = vector_tree();
        for &(old, new, proof) in VECTOR_CONSISTENCY {
            let want = hashes(proof);
            assert_eq!(t.consistency_proof(old, new), Ok(want.clone()));
            let r1 = h(VECTOR_ROOTS[old as usize - 1]);
            let r2 = h(VECTOR_ROOTS[new as usize - 1]);
            assert_eq!(verify_consistency(old, new, &r1, &r2, &want), Ok(()));
            if old < new {
                assert_corrupt_consistency_fails(old, new, &r1, &r2, &want);
            }
        }
    }

    // ---- Corruption probes shared by golden and property tests.

    fn assert_corrupt_inclusion_fails(
        leaf: &Hash,
        index: u64,
        size: u64,
        proof: &[Hash],
        root: &Hash,
    ) {
        let other = [0xabu8; 32];
        // Wrong leaf / root.
        assert!(verify_inclusion(&other, index, size, proof, root).is_err());
        assert!(verify_inclusion(leaf, index, size, proof, &flip(*root, 5)).is_err());
        assert!(verify_inclusion(leaf, index, size, proof, &empty_root()).is_err());
        // Every proof hash with a flipped byte.
        for i in 0..proof.len() {
            for byte in [0, 17, 31] {
                let mut p = proof.to_vec();
                p[i] = flip(p[i], byte);
                assert!(
                    verify_inclusion(leaf, index, size, &p, root).is_err(),
                    "mutated proof[{i}] byte {byte} verified (index {index}, size {size})"
                );
            }
        }
        // Truncated, extended, prepended.
        if !proof.is_empty() {
            assert!(verify_inclusion(leaf, index, size, &proof[..proof.len() - 1], root).is_err());
            assert!(verify_inclusion(leaf, index, size, &proof[1..], root).is_err());
        }
        for extra in [other, *root, *leaf] {
            let mut p = proof.to_vec();
            p.push(extra);
            assert!(verify_inclusion(leaf, index, size, &p, root).is_err());
            let mut p = vec![extra];
            p.extend_from_slice(proof);
            assert!(verify_inclusion(leaf, index, size, &p, root).is_err());
        }
        // Changed index: a different leaf position always changes the path.
        for i2 in [
            index.wrapping_sub(1),
            index.wrapping_add(1),
            index ^ 2,
            index ^ 1,
            u64::MAX,
        ] {
            if i2 != index {
                assert!(
                    verify_inclusion(leaf, i2, size, proof, root).is_err(),
                    "index {i2}"
                );
            }
        }
        // Changed size: fails unless the RFC path shape is identical (then the
        // same hashes are combined the same way; the root is what binds size).
        let shape = path_shape(index, size);
        for s2 in [size - 1, size + 1, size * 2, size / 2, u64::MAX, 0] {
            if s2 == size {
                continue;
            }
            let res = verify_inclusion(leaf, index, s2, proof, root);
            let same_shape = index < s2 && path_shape(index, s2) == shape;
            assert_eq!(
                res.is_ok(),
                same_shape,
                "size {size} -> {s2}, index {index}"
            );
        }
    }

    fn assert_corrupt_consistency_fails(old: u64, new: u64, r1: &Hash, r2: &Hash, proof: &[Hash]) {
        let other = [0xcdu8; 32];
        assert!(
            verify_consistency(old, new, r2, r1, proof).is_err(),
            "swapped roots"
        );
        assert!(verify_consistency(old, new, &flip(*r1, 3), r2, proof).is_err());
        assert!(verify_consistency(old, new, r1, &flip(*r2, 30), proof).is_err());
        assert!(verify_consistency(old, new, r1, r2, &[]).is_err());
        for i in 0..proof.len() {
            for byte in [0, 13, 31] {
                let mut p = proof.to_vec();
                p[i] = flip(p[i], byte);
                assert!(
                    verify_consistency(old, new, r1, r2, &p).is_err(),
                    "mutated proof[{i}] byte {byte} verified ({old} -> {new})"
                );
            }
        }
        assert!(verify_consistency(old, new, r1, r2, &proof[..proof.len() - 1]).is_err());
        assert!(verify_consistency(old, new, r1, r2, &proof[1..]).is_err());
        for extra in [other, *r1, *r2, proof[0]] {
            let mut p = proof.to_vec();
            p.push(extra);
            assert!(verify_consistency(old, new, r1, r2, &p).is_err());
            let mut p = vec![extra];
            p.extend_from_slice(proof);
            assert!(verify_consistency(old, new, r1, r2, &p).is_err());
        }
        // Changed sizes: fail unless the SUBPROOF shape is identical.
        let shape = consistency_shape(old, new);
        let probes = [
            (old - 1, new),
            (old + 1, new),
            (old ^ 2, new),
            (old, new - 1),
            (old, new + 1),
            (old, new * 2),
            (old, new / 2),
            (old, u64::MAX),
            (u64::MAX, u64::MAX),
            (0, new),
        ];
        for (o2, n2) in probes {
            if (o2, n2) == (old, new) {
                continue;
            }
            let res = verify_consistency(o2, n2, r1, r2, proof);
            let same_shape =
                consistency_shape(o2, n2).is_some() && consistency_shape(o2, n2) == shape;
            assert_eq!(res.is_ok(), same_shape, "({old},{new}) -> ({o2},{n2})");
        }
    }

    // ---- Edge cases and robustness.

    #[test]
    fn verify_inclusion_edge_cases() {
        let x = [9u8; 32];
        // Single-leaf tree: root == leaf, empty proof.
        assert_eq!(verify_inclusion(&x, 0, 1, &[], &x), Ok(()));
        assert_eq!(
            verify_inclusion(&x, 0, 1, &[], &empty_root()),
            Err(MerkleError::RootMismatch)
        );
        for (index, size) in [(0, 0), (1, 0), (2, 1), (u64::MAX, u64::MAX), (5, 5)] {
            assert_eq!(
                verify_inclusion(&x, index, size, &[], &x),
                Err(MerkleError::IndexOutOfRange { index, size })
            );
        }
        // Huge sizes: lengths are checked, nothing overflows.
        let p64 = vec![x; 64];
        assert!(verify_inclusion(&x, u64::MAX - 1, u64::MAX, &p64, &x).is_err());
        assert!(verify_inclusion(&x, 0, u64::MAX, &p64, &x).is_err());
        assert!(verify_inclusion(&x, 0, u64::MAX, &p64[..10], &x).is_err());
        let long = vec![x; 10_000];
        assert!(matches!(
            verify_inclusion(&x, 0, 2, &long, &x),
            Err(MerkleError::BadProof { .. })
        ));
    }

    #[test]
    fn verify_consistency_edge_cases() {
        let (a, b) = ([1u8; 32], [2u8; 32]);
        let e = empty_root();
        assert_eq!(verify_consistency(0, 0, &e, &e, &[]), Ok(()));
        assert_eq!(
            verify_consistency(0, 0, &e, &a, &[]),
            Err(MerkleError::RootMismatch)
        );
        assert_eq!(verify_consistency(0, 5, &e, &b, &[]), Ok(()));
        assert_eq!(
            verify_consistency(0, 5, &a, &b, &[]),
            Err(MerkleError::RootMismatch)
        );
        assert!(verify_consistency(0, 5, &e, &b, &[a]).is_err());
        assert_eq!(verify_consistency(3, 3, &a, &a, &[]), Ok(()));
        assert_eq!(
            verify_consistency(3, 3, &a, &b, &[]),
            Err(MerkleError::RootMismatch)
        );
        assert!(verify_consistency(3, 3, &a, &a, &[a]).is_err());
        assert_eq!(
            verify_consistency(4, 3, &a, &b, &[a]),
            Err(MerkleError::InvalidSizes {
                old_size: 4,
                new_size: 3
            })
        );
        assert!(verify_consistency(1, 2, &a, &b, &[]).is_err());
        let p = vec![a; 65];
        assert!(verify_consistency(u64::MAX - 1, u64::MAX, &a, &b, &p).is_err());
        assert!(verify_consistency(1, u64::MAX, &a, &b, &p[..64]).is_err());
        assert!(verify_consistency(u64::MAX, u64::MAX, &a, &a, &[]).is_ok());
        assert!(verify_consistency(1 << 63, u64::MAX, &a, &b, &p[..3]).is_err());
        let long = vec![a; 10_000];
        assert!(matches!(
            verify_consistency(3, 7, &a, &b, &long),
            Err(MerkleError::BadProof { .. })
        ));
    }

    #[test]
    fn generation_rejects_bad_arguments() {
        let t = vector_tree();
        assert_eq!(
            inclusion_proof(8, 8, &t),
            Err(MerkleError::IndexOutOfRange { index: 8, size: 8 })
        );
        assert!(inclusion_proof(0, 0, &t).is_err());
        assert_eq!(
            inclusion_proof(0, 9, &t),
            Err(MerkleError::MissingHash { index: 15 })
        );
        assert!(matches!(
            t.inclusion_proof(0, 9),
            Err(MerkleError::InvalidSizes { .. })
        ));
        assert_eq!(
            consistency_proof(5, 4, &t),
            Err(MerkleError::InvalidSizes {
                old_size: 5,
                new_size: 4
            })
        );
        assert_eq!(consistency_proof(0, 8, &t), Ok(vec![]));
        assert_eq!(consistency_proof(8, 8, &t), Ok(vec![]));
        assert!(consistency_proof(3, 100, &t).is_err());
        for size in [MAX_TREE_SIZE + 1, u64::MAX] {
            assert_eq!(tree_root(size, &t), Err(MerkleError::TreeTooLarge { size }));
            assert!(inclusion_proof(0, size, &t).is_err());
            assert!(inclusion_proof(size - 1, size, &t).is_err());
            assert!(consistency_proof(1, size, &t).is_err());
            assert!(append_leaf(size, &[0; 32], &t).is_err());
        }
        assert!(append_leaf(MAX_TREE_SIZE, &[0; 32], &t).is_err());
        // Past the stored data: an error from the reader, not a panic.
        assert!(tree_root(MAX_TREE_SIZE, &t).is_err());
        assert!(inclusion_proof(MAX_TREE_SIZE - 1, MAX_TREE_SIZE, &t).is_err());
        assert!(consistency_proof(MAX_TREE_SIZE - 1, MAX_TREE_SIZE, &t).is_err());
    }

    struct BrokenReader {
        short: bool,
    }

    impl HashReader for BrokenReader {
        fn read_hashes(&self, indexes: &[u64]) -> Result<Vec<Hash>, MerkleError> {
            if self.short {
                Ok(vec![[0; 32]; indexes.len().saturating_sub(1)])
            } else {
                Err(MerkleError::Storage("disk on fire".into()))
            }
        }
    }

    #[test]
    fn reader_failures_are_errors_not_panics() {
        for short in [true, false] {
            let r = BrokenReader { short };
            assert!(tree_root(7, &r).is_err());
            assert!(inclusion_proof(3, 7, &r).is_err());
            assert!(consistency_proof(3, 7, &r).is_err());
            assert!(append_leaf(7, &[1; 32], &r).is_err());
        }
        let r = BrokenReader { short: false };
        assert_eq!(
            tree_root(7, &r),
            Err(MerkleError::Storage("disk on fire".into()))
        );
        // Appending leaf 0 reads nothing, so even a broken reader works.
        assert_eq!(append_leaf(0, &[1; 32], &r).map(|v| v.len()), Ok(1));
    }

    /// Simulates the ledger: committed hashes in a KV map, a block's appends in
    /// an overlay the reader also sees, merged at commit.
    #[test]
    fn append_leaf_through_block_overlay_matches_memory_tree() {
        struct Overlay<'a> {
            base: &'a BTreeMap<u64, Hash>,
            pending: &'a BTreeMap<u64, Hash>,
        }
        impl HashReader for Overlay<'_> {
            fn read_hashes(&self, indexes: &[u64]) -> Result<Vec<Hash>, MerkleError> {
                indexes
                    .iter()
                    .map(|i| {
                        self.pending
                            .get(i)
                            .or_else(|| self.base.get(i))
                            .copied()
                            .ok_or(MerkleError::MissingHash { index: *i })
                    })
                    .collect()
            }
        }
        let mut db = BTreeMap::new();
        let mut reference = MemoryTree::new();
        let mut n = 0u64;
        for block_len in [1u64, 7, 0, 64, 33, 100, 3] {
            let mut pending = BTreeMap::new();
            for _ in 0..block_len {
                let id = tx_id(n);
                let pairs = append_leaf(
                    n,
                    &id,
                    &Overlay {
                        base: &db,
                        pending: &pending,
                    },
                )
                .expect("append");
                pending.extend(pairs);
                reference.push(&id).expect("push");
                n += 1;
            }
            db.extend(pending);
            assert_eq!(
                tree_root(
                    n,
                    &Overlay {
                        base: &db,
                        pending: &BTreeMap::new()
                    }
                ),
                reference.root()
            );
        }
        let flat: Vec<Hash> = db.values().copied().collect();
        assert_eq!(
            db.keys().copied().collect::<Vec<_>>(),
            (0..flat.len() as u64).collect::<Vec<_>>()
        );
        assert_eq!(flat, reference.stored_hashes());
    }

    #[test]
    fn roots_match_naive_mth_for_every_small_size() {
        let f = fixture();
        for size in 0..=300usize {
            assert_eq!(
                f.tree.root_at(size as u64),
                Ok(naive_mth(&f.leaves[..size])),
                "size {size}"
            );
        }
    }

    // ---- Read counting.

    struct CountingReader<'a> {
        inner: &'a MemoryTree,
        reads: Cell<u64>,
    }

    impl HashReader for CountingReader<'_> {
        fn read_hashes(&self, indexes: &[u64]) -> Result<Vec<Hash>, MerkleError> {
            self.reads.set(self.reads.get() + indexes.len() as u64);
            self.inner.read_hashes(indexes)
        }
    }

    const COUNT_TREE_SIZE: u64 = 1_000_000;
    /// log2(1e6) rounded up.
    const COUNT_LOG2: u64 = 20;

    #[test]
    fn reads_are_logarithmic_at_one_million_leaves() {
        let mut t = MemoryTree::new();
        let mut max_append_reads = 0;
        for i in 0..COUNT_TREE_SIZE {
            let id = tx_id(i);
            if i % 4096 == 4095 {
                let c = CountingReader {
                    inner: &t,
                    reads: Cell::new(0),
                };
                let pairs = append_leaf(i, &id, &c).expect("append");
                max_append_reads = max_append_reads.max(c.reads.get());
                assert_eq!(pairs.len() as u64, 1 + c.reads.get());
            }
            t.push(&id).expect("push");
        }
        assert!(
            max_append_reads <= COUNT_LOG2,
            "append read {max_append_reads}"
        );
        let c = CountingReader {
            inner: &t,
            reads: Cell::new(0),
        };
        let count = |f: &dyn Fn(&CountingReader<'_>)| {
            c.reads.set(0);
            f(&c);
            c.reads.get()
        };
        let n = COUNT_TREE_SIZE;
        let root = tree_root(n, &t).expect("root");
        let r = count(&|c| {
            tree_root(n, c).expect("root");
        });
        assert!(r <= COUNT_LOG2 + 1, "tree_root read {r}");
        for index in [0, 1, n / 3, n / 2 + 7, n - 2, n - 1] {
            let r = count(&|c| {
                let p = inclusion_proof(index, n, c).expect("proof");
                let leaf = t
                    .read_hashes(&[stored_hash_index(0, index).expect("idx")])
                    .expect("leaf")[0];
                verify_inclusion(&leaf, index, n, &p, &root).expect("verify");
            });
            assert!(r <= 2 * COUNT_LOG2 + 2, "inclusion {index} read {r}");
        }
        for old in [1, 2, 3, 1000, n / 2, n / 2 + 1, n - 1] {
            let r = count(&|c| {
                let p = consistency_proof(old, n, c).expect("proof");
                let old_root = tree_root(old, &t).expect("root");
                verify_consistency(old, n, &old_root, &root, &p).expect("verify");
            });
            assert!(r <= 2 * COUNT_LOG2 + 2, "consistency {old} read {r}");
        }
    }

    // ---- Property tests.

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        #[test]
        fn prop_root_matches_naive_mth(size in 0u64..=FIXTURE_SIZE) {
            let f = fixture();
            let want = naive_mth(&f.leaves[..size as usize]);
            prop_assert_eq!(tree_root(size, &f.tree), Ok(want));
            // A fresh tree of exactly this size stores the same prefix.
            let mut t = MemoryTree::new();
            for lh in &f.leaves[..size as usize] {
                t.push_leaf_hash(*lh).expect("push");
            }
            prop_assert_eq!(t.root(), Ok(want));
            let prefix_len = stored_hash_count(size).expect("count") as usize;
            prop_assert_eq!(t.stored_hashes(), &f.tree.stored_hashes()[..prefix_len]);
        }

        #[test]
        fn prop_inclusion_proofs(size in 1u64..=FIXTURE_SIZE, picks in prop::collection::vec(any::<u64>(), 8)) {
            let f = fixture();
            let root = tree_root(size, &f.tree).expect("root");
            let mut indexes: Vec<u64> = picks.iter().map(|p| p % size).collect();
            indexes.extend([0, size - 1]);
            for (k, &index) in indexes.iter().enumerate() {
                let proof = inclusion_proof(index, size, &f.tree).expect("proof");
                let leaf = f.leaves[index as usize];
                prop_assert_eq!(verify_inclusion(&leaf, index, size, &proof, &root), Ok(()));
                // Generated proof is exactly the RFC PATH.
                if k < 2 {
                    prop_assert_eq!(&proof, &naive_path(index as usize, &f.leaves[..size as usize]));
                }
                if k == 0 {
                    assert_corrupt_inclusion_fails(&leaf, index, size, &proof, &root);
                }
            }
        }

        #[test]
        fn prop_every_inclusion_proof_of_small_tree(size in 1u64..=200) {
            let f = fixture();
            let root = tree_root(size, &f.tree).expect("root");
            for index in 0..size {
                let proof = inclusion_proof(index, size, &f.tree).expect("proof");
                prop_assert_eq!(verify_inclusion(&f.leaves[index as usize], index, size, &proof, &root), Ok(()));
            }
        }

        #[test]
        fn prop_consistency_proofs(a in 1u64..=FIXTURE_SIZE, b in 1u64..=FIXTURE_SIZE) {
            let f = fixture();
            let (old, new) = (a.min(b), a.max(b));
            let r1 = tree_root(old, &f.tree).expect("root");
            let r2 = tree_root(new, &f.tree).expect("root");
            let proof = consistency_proof(old, new, &f.tree).expect("proof");
            prop_assert_eq!(verify_consistency(old, new, &r1, &r2, &proof), Ok(()));
            if old < new {
                prop_assert_eq!(&proof, &naive_subproof(old as usize, &f.leaves[..new as usize], true));
                assert_corrupt_consistency_fails(old, new, &r1, &r2, &proof);
            } else {
                prop_assert!(proof.is_empty());
            }
            // From the empty tree, anything is consistent (empty proof).
            prop_assert_eq!(verify_consistency(0, new, &empty_root(), &r2, &[]), Ok(()));
        }

        #[test]
        fn prop_verifiers_never_panic(
            index in any::<u64>(),
            size in prop_oneof![any::<u64>(), 0u64..64, Just(u64::MAX)],
            old in any::<u64>(),
            proof in prop::collection::vec(any::<[u8; 32]>(), 0..80),
            r1 in any::<[u8; 32]>(),
            r2 in any::<[u8; 32]>(),
        ) {
            // Random garbage must be rejected (a forgery would be a SHA-256 break).
            let inc = verify_inclusion(&r1, index, size, &proof, &r2);
            prop_assert!(inc.is_err() || (proof.is_empty() && size == 1 && r1 == r2));
            let con = verify_consistency(old, size, &r1, &r2, &proof);
            prop_assert!(con.is_err() || (proof.is_empty() && ((old == size && r1 == r2) || (old == 0 && r1 == empty_root()))));
            let small_old = old % size.max(1);
            let con2 = verify_consistency(small_old, size, &r1, &r2, &proof);
            prop_assert!(con2.is_err() || proof.is_empty());
        }
    }
}
