//! Where the chain's history lives in the KV spaces: blocks by height, the
//! head, the transaction tree's stored hashes, and each transaction's location.
//! Readers only; the state machine writes these rows (`machine::apply_block`).
//! May not depend on `machine`, `seal` or anything above the block format.

use crate::block::{Block, BlockHeader, ChainHead, TxLocation};
use crate::error::Result;
use crate::hash::H32;
use crate::kv::{KvRead, Space};
use crate::merkle::{self, HashReader, MerkleError};
use crate::state;

/// The key of the chain head in [`Space::Blocks`].
pub const HEAD_KEY: &[u8] = b"head";

pub fn block_key(height: u64) -> Vec<u8> {
    let mut k = b"h".to_vec();
    k.extend_from_slice(&height.to_be_bytes());
    k
}

pub fn tree_key(index: u64) -> Vec<u8> {
    index.to_be_bytes().to_vec()
}

/// Reads stored Merkle hashes through any KV view.
pub struct TreeReader<'a, K: KvRead + ?Sized>(pub &'a K);

impl<K: KvRead + ?Sized> HashReader for TreeReader<'_, K> {
    fn read_hashes(&self, indexes: &[u64]) -> std::result::Result<Vec<merkle::Hash>, MerkleError> {
        indexes
            .iter()
            .map(|i| {
                let v = self
                    .0
                    .get(Space::Tree, &tree_key(*i))
                    .map_err(|e| MerkleError::Storage(e.to_string()))?;
                let v =
                    v.ok_or_else(|| MerkleError::Storage(format!("stored hash {i} is missing")))?;
                v.try_into()
                    .map_err(|_| MerkleError::Storage(format!("stored hash {i} is not 32 bytes")))
            })
            .collect()
    }
}

pub fn read_head(kv: &(impl KvRead + ?Sized)) -> Result<Option<ChainHead>> {
    match kv.get(Space::Blocks, HEAD_KEY)? {
        Some(b) => Ok(Some(state::decode(HEAD_KEY, &b)?)),
        None => Ok(None),
    }
}

pub fn read_block(kv: &(impl KvRead + ?Sized), height: u64) -> Result<Option<Block>> {
    let key = block_key(height);
    match kv.get(Space::Blocks, &key)? {
        Some(b) => Ok(Some(state::decode(&key, &b)?)),
        None => Ok(None),
    }
}

/// A block's header and hash, decoded without the block's tx ids (a full
/// block under load holds thousands of them; a bundle needs none).
#[derive(serde::Deserialize)]
struct BlockPrefix {
    header: BlockHeader,
    hash: H32,
}

/// The header of block `height`, if it exists.
pub fn read_header(kv: &(impl KvRead + ?Sized), height: u64) -> Result<Option<BlockHeader>> {
    let key = block_key(height);
    match kv.get(Space::Blocks, &key)? {
        Some(bytes) => {
            let p: BlockPrefix = state::decode(&key, &bytes)?;
            if p.hash != p.header.hash() {
                return Err(crate::error::LedgerError::Corrupt(format!(
                    "block {height}: hash"
                )));
            }
            Ok(Some(p.header))
        }
        None => Ok(None),
    }
}

pub fn read_tx(kv: &(impl KvRead + ?Sized), id: &[u8; 32]) -> Result<Option<TxLocation>> {
    match kv.get(Space::Txs, id)? {
        Some(b) => Ok(Some(state::decode(id, &b)?)),
        None => Ok(None),
    }
}
