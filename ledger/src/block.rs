//! Blocks: hash-chained headers over the transaction tree and the state changes.

use serde::{Deserialize, Serialize};

use crate::hash::sha256;
use crate::hash::H32;

/// Domain prefix of a block header's hash input.
pub const BLOCK_DOMAIN: &[u8] = b"ZSL-BLOCK-V1\x00";

/// One validator's signature over the checkpoint of block `height`, as
/// exchanged between validators and carried in block proposals.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Cosignature {
    pub height: u64,
    /// The validator's name in the set in force at `height` (its note key name).
    pub name: String,
    /// Ed25519 over the checkpoint text.
    #[serde(with = "serde_bytes")]
    pub sig: Vec<u8>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BlockHeader {
    pub chain_id: String,
    pub height: u64,
    /// Hash of the previous header; for block 0, the genesis hash.
    pub prev_hash: H32,
    /// Leader's clock, ms since the Unix epoch; strictly increasing.
    pub time_ms: i64,
    pub tx_count: u32,
    /// Transaction tree after this block.
    pub tree_size: u64,
    pub tree_root: H32,
    /// SHA-256 of the block's domain state changes (see `ChangeSet::digest_input`).
    pub state_hash: H32,
    /// SHA-256 of the validator set in force after this block.
    pub validators_hash: H32,
}

impl BlockHeader {
    /// The exact bytes hashed: fixed-width big-endian fields after the domain
    /// prefix, so a verifier in any language can rebuild them (docs/evidence.md).
    pub fn hash_input(&self) -> Vec<u8> {
        let id = self.chain_id.as_bytes();
        let mut out = Vec::with_capacity(BLOCK_DOMAIN.len() + 2 + id.len() + 8 * 4 + 4 + 32 * 4);
        out.extend_from_slice(BLOCK_DOMAIN);
        out.extend_from_slice(&(id.len() as u16).to_be_bytes());
        out.extend_from_slice(id);
        out.extend_from_slice(&self.height.to_be_bytes());
        out.extend_from_slice(&self.prev_hash.0);
        out.extend_from_slice(&self.time_ms.to_be_bytes());
        out.extend_from_slice(&self.tx_count.to_be_bytes());
        out.extend_from_slice(&self.tree_size.to_be_bytes());
        out.extend_from_slice(&self.tree_root.0);
        out.extend_from_slice(&self.state_hash.0);
        out.extend_from_slice(&self.validators_hash.0);
        out
    }

    pub fn hash(&self) -> H32 {
        H32(sha256(&self.hash_input()))
    }
}

/// A committed block as stored: header and the ids of its transactions, in order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Block {
    pub header: BlockHeader,
    pub hash: H32,
    pub tx_ids: Vec<H32>,
    /// Checkpoint signatures this block recorded (their effect is in the state hash).
    #[serde(default)]
    pub cosigs: Vec<Cosignature>,
}

/// What the leader proposes and Raft replicates: a time and candidate
/// transactions in their wire form. Every node applies it the same way;
/// refused transactions are dropped from the block deterministically.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct BlockProposal {
    pub time_ms: i64,
    /// As byte strings, not sequences of numbers: bincode then copies them whole.
    #[serde(with = "byte_strings")]
    pub txs: Vec<Vec<u8>>,
    /// Validators' signatures over earlier blocks' checkpoints (see `seal`).
    #[serde(default)]
    pub cosigs: Vec<Cosignature>,
}

/// Serde for `Vec<Vec<u8>>` as a sequence of byte strings.
mod byte_strings {
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    pub fn serialize<S: Serializer>(v: &[Vec<u8>], s: S) -> Result<S::Ok, S::Error> {
        let as_bytes: Vec<&serde_bytes::Bytes> =
            v.iter().map(|b| serde_bytes::Bytes::new(b)).collect();
        as_bytes.serialize(s)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<Vec<u8>>, D::Error> {
        let v: Vec<serde_bytes::ByteBuf> = Vec::deserialize(d)?;
        Ok(v.into_iter().map(serde_bytes::ByteBuf::into_vec).collect())
    }
}

/// The tip of the chain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChainHead {
    pub height: u64,
    pub hash: H32,
    pub time_ms: i64,
    pub tree_size: u64,
    pub tree_root: H32,
}

/// Where a committed transaction is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TxLocation {
    pub height: u64,
    pub index: u32,
    pub leaf_index: u64,
    pub kind: String,
    pub account: String,
    /// The wire form `{body, signer, sig}` as JSON bytes (compact).
    #[serde(with = "serde_bytes")]
    pub wire: Vec<u8>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proposals_roundtrip_through_bincode_as_byte_strings() {
        let p = BlockProposal {
            time_ms: 7,
            txs: vec![b"{}".to_vec(), vec![0, 255, 1]],
            cosigs: Vec::new(),
        };
        let bytes = bincode::serde::encode_to_vec(&p, bincode::config::standard()).unwrap();
        // varint time, count, then each length and raw bytes: no per-byte varints.
        assert_eq!(bytes.len(), 1 + 1 + (1 + 2) + (1 + 3) + 1);
        let (back, _): (BlockProposal, usize) =
            bincode::serde::decode_from_slice(&bytes, bincode::config::standard()).unwrap();
        assert_eq!(back, p);
        let json = serde_json::to_string(&p).unwrap();
        assert_eq!(serde_json::from_str::<BlockProposal>(&json).unwrap(), p);
    }

    #[test]
    fn header_hash_covers_every_field() {
        let h = BlockHeader {
            chain_id: "zsl".into(),
            height: 1,
            prev_hash: H32([1; 32]),
            time_ms: 2,
            tx_count: 3,
            tree_size: 4,
            tree_root: H32([5; 32]),
            state_hash: H32([6; 32]),
            validators_hash: H32([7; 32]),
        };
        let base = h.hash();
        let mutants = [
            BlockHeader {
                chain_id: "zsm".into(),
                ..h.clone()
            },
            BlockHeader {
                height: 9,
                ..h.clone()
            },
            BlockHeader {
                prev_hash: H32([9; 32]),
                ..h.clone()
            },
            BlockHeader {
                time_ms: 9,
                ..h.clone()
            },
            BlockHeader {
                tx_count: 9,
                ..h.clone()
            },
            BlockHeader {
                tree_size: 9,
                ..h.clone()
            },
            BlockHeader {
                tree_root: H32([9; 32]),
                ..h.clone()
            },
            BlockHeader {
                state_hash: H32([9; 32]),
                ..h.clone()
            },
            BlockHeader {
                validators_hash: H32([9; 32]),
                ..h.clone()
            },
        ];
        for m in mutants {
            assert_ne!(m.hash(), base, "{m:?}");
        }
        let json = serde_json::to_string(&h).unwrap();
        assert!(json.contains(&"05".repeat(32)));
        assert_eq!(serde_json::from_str::<BlockHeader>(&json).unwrap(), h);
    }
}
