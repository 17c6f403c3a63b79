//! Co-signed checkpoints on the ledger: validators' signatures over the
//! checkpoint of a block travel in later block proposals, the state machine
//! checks and records them, and a checkpoint with a quorum of them is
//! *sealed*. Also the validator set in force at every height.
//!
//! Why signatures are not transactions (tree leaves): a block carrying them
//! would grow the tree, need its own checkpoint, and so on forever. Here a
//! block that carries only signatures leaves the tree as it was, and only
//! blocks that grow the tree have checkpoints to sign, so the exchange ends.
//!
//! Keys (Space::State, so the header's state hash covers them):
//! - `validators/{height:020}` → the validator set from that height on;
//! - `cosig/{height:020}/{name}` → a validator's 64-byte signature;
//! - `sealed/{height:020}` → the tree size of a sealed checkpoint;
//! - `sealed_head` → the highest sealed height.

use std::collections::BTreeMap;

use ed25519_dalek::{Signature, SigningKey, VerifyingKey};

use crate::block::{BlockHeader, Cosignature};
use crate::checkpoint::{key_id, Checkpoint, LogIdentity, NoteKeys, NoteSignature, SignedNote};
use crate::error::{LedgerError, Result};
use crate::hash::H32;
use crate::history::read_header;
use crate::kv::{KvRead, KvWrite, Space};
use crate::spec::{ChainSpec, Validator};
use crate::state::{self, encode};

/// Signatures one proposal may carry.
pub const COSIGNATURES_PER_BLOCK_MAX: usize = 1_024;
/// Validators in one set.
pub const VALIDATORS_MAX: usize = 64;
/// Validator-set changes a chain may have (bounds the history scan).
pub const VALIDATOR_SET_CHANGES_MAX: usize = 4_096;

const SEALED_HEAD_KEY: &str = "sealed_head";

pub fn validators_key(height: u64) -> String {
    format!("validators/{height:020}")
}

/// Where a validator added by a record is reached (genesis validators'
/// addresses are node configuration, not ledger facts).
pub fn validator_address_key(node_id: u64) -> String {
    format!("validator_address/{node_id:020}")
}

pub fn validator_address(kv: &(impl KvRead + ?Sized), node_id: u64) -> Result<Option<String>> {
    Ok(state::get(
        kv,
        Space::State,
        &validator_address_key(node_id),
    )?)
}

pub fn cosig_prefix(height: u64) -> String {
    format!("cosig/{height:020}/")
}

pub fn cosig_key(height: u64, name: &str) -> String {
    format!("cosig/{height:020}/{name}")
}

pub fn sealed_key(height: u64) -> String {
    format!("sealed/{height:020}")
}

/// Signatures needed to seal a checkpoint under `set`: the genesis quorum if
/// one is given (never more than the set), else a majority.
pub fn quorum(spec: &ChainSpec, set: &[Validator]) -> usize {
    let majority = set.len() / 2 + 1;
    spec.checkpoint_quorum
        .map(|q| (q as usize).min(set.len()))
        .unwrap_or(majority)
        .max(1)
}

/// Records the validator set in force from `height` on.
pub fn put_validator_set(kv: &mut impl KvWrite, height: u64, set: &[Validator]) -> Result<()> {
    Ok(state::put(
        kv,
        Space::State,
        &validators_key(height),
        &set.to_vec(),
    )?)
}

/// The validator set in force at `height`: the last one recorded at or below it.
pub fn validator_set_at(kv: &(impl KvRead + ?Sized), height: u64) -> Result<Vec<Validator>> {
    let from = validators_key(0);
    let to = validators_key(height.saturating_add(1));
    let rows = kv.scan(
        Space::State,
        from.as_bytes(),
        to.as_bytes(),
        VALIDATOR_SET_CHANGES_MAX,
    )?;
    let (key, value) = rows
        .last()
        .ok_or_else(|| LedgerError::Corrupt("no validator set recorded at genesis".into()))?;
    Ok(state::decode(key, value)?)
}

/// Every validator-set change: (from height, set).
pub fn validator_history(kv: &(impl KvRead + ?Sized)) -> Result<Vec<(u64, Vec<Validator>)>> {
    let rows = kv.scan_prefix(Space::State, b"validators/", VALIDATOR_SET_CHANGES_MAX)?;
    rows.iter()
        .map(|(k, v)| {
            let height = std::str::from_utf8(&k[b"validators/".len()..])
                .ok()
                .and_then(|s| s.parse().ok())
                .ok_or_else(|| LedgerError::Corrupt("validator set key".into()))?;
            Ok((height, state::decode(k, v)?))
        })
        .collect()
}

/// SHA-256 over the RFC 8785 form of a validator set (a block header's `validators_hash`).
pub fn validator_set_hash(set: &[Validator]) -> Result<H32> {
    let v = serde_json::to_value(set).map_err(|e| LedgerError::Spec(e.to_string()))?;
    let jcs = crate::signing::canonical_json(&v).map_err(|e| LedgerError::Spec(e.message))?;
    Ok(H32(crate::hash::sha256(&jcs)))
}

/// How this chain's checkpoints name themselves: genesis's `log_host` and
/// the genesis hash, read from block 0's `prev_hash` (one stored header,
/// rather than hashing the whole genesis again for every signature).
pub fn log_identity(kv: &(impl KvRead + ?Sized), spec: &ChainSpec) -> Result<LogIdentity> {
    let genesis = read_header(kv, 0)?
        .ok_or_else(|| LedgerError::Corrupt("no block 0".into()))?
        .prev_hash;
    Ok(LogIdentity::new(
        &spec.chain_id,
        spec.log_host.as_deref(),
        &genesis,
    ))
}

/// The checkpoint a block commits to, from its header. Only blocks that
/// grow the tree have one.
pub fn checkpoint_of(log: &LogIdentity, header: &BlockHeader) -> Option<Checkpoint> {
    (header.tx_count > 0).then(|| Checkpoint {
        origin: log.origin.clone(),
        tree_size: header.tree_size,
        root: header.tree_root,
        height: header.height,
        block_hash: header.hash(),
        time_ms: header.time_ms,
    })
}

/// Why a signature was not taken.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CosignRefusal {
    #[error("block {0} does not exist yet")]
    NoSuchBlock(u64),
    #[error("block {0} did not grow the tree, so it has no checkpoint")]
    NoCheckpoint(u64),
    #[error("`{0}` is not a validator at that height")]
    NotAValidator(String),
    #[error("the signature does not verify")]
    BadSignature,
    #[error("already recorded")]
    Duplicate,
}

/// Checks a signature against the ledger in `kv` (whose head is below the
/// block being built). Returns the checkpoint it signs and the set in force.
pub fn check_cosignature(
    kv: &(impl KvRead + ?Sized),
    spec: &ChainSpec,
    c: &Cosignature,
) -> Result<std::result::Result<(Checkpoint, Vec<Validator>), CosignRefusal>> {
    // The header alone: a block's tx ids (thousands under load) are not needed.
    let Some(header) = read_header(kv, c.height)? else {
        return Ok(Err(CosignRefusal::NoSuchBlock(c.height)));
    };
    let Some(cp) = checkpoint_of(&log_identity(kv, spec)?, &header) else {
        return Ok(Err(CosignRefusal::NoCheckpoint(c.height)));
    };
    let set = validator_set_at(kv, c.height)?;
    let Some(v) = set.iter().find(|v| v.name == c.name) else {
        return Ok(Err(CosignRefusal::NotAValidator(c.name.clone())));
    };
    if kv
        .get(Space::State, cosig_key(c.height, &c.name).as_bytes())?
        .is_some()
    {
        return Ok(Err(CosignRefusal::Duplicate));
    }
    let verified = public_key(v).ok().is_some_and(|pk| {
        let Ok(sig) = <[u8; 64]>::try_from(c.sig.as_slice()) else {
            return false;
        };
        VerifyingKey::from_bytes(&pk).is_ok_and(|vk| {
            vk.verify_strict(cp.text().as_bytes(), &Signature::from_bytes(&sig))
                .is_ok()
        })
    });
    if !verified {
        return Ok(Err(CosignRefusal::BadSignature));
    }
    Ok(Ok((cp, set)))
}

/// Records a checked signature and seals its checkpoint once a quorum signed.
/// Returns whether this signature sealed it.
pub fn record_cosignature(
    kv: &mut impl KvWrite,
    spec: &ChainSpec,
    c: &Cosignature,
    cp: &Checkpoint,
    set: &[Validator],
) -> Result<bool> {
    kv.put(
        Space::State,
        cosig_key(c.height, &c.name).into_bytes(),
        c.sig.clone(),
    );
    let sealed_key = sealed_key(c.height);
    if kv.get(Space::State, sealed_key.as_bytes())?.is_some() {
        return Ok(false);
    }
    let signed = kv.scan_prefix(
        Space::State,
        cosig_prefix(c.height).as_bytes(),
        set.len() + 1,
    )?;
    if signed.len() < quorum(spec, set) {
        return Ok(false);
    }
    kv.put(
        Space::State,
        sealed_key.into_bytes(),
        encode(&cp.tree_size)?,
    );
    let prev = latest_sealed_height(kv)?;
    if prev.is_none_or(|h| h < c.height) {
        state::put(kv, Space::State, SEALED_HEAD_KEY, &c.height)?;
    }
    Ok(true)
}

/// The highest sealed height.
pub fn latest_sealed_height(kv: &(impl KvRead + ?Sized)) -> Result<Option<u64>> {
    Ok(state::get(kv, Space::State, SEALED_HEAD_KEY)?)
}

pub fn is_sealed(kv: &(impl KvRead + ?Sized), height: u64) -> Result<bool> {
    Ok(kv
        .get(Space::State, sealed_key(height).as_bytes())?
        .is_some())
}

/// The first sealed checkpoint at or above `height` (a transaction in block
/// `height` is proved against it).
pub fn sealed_at_or_after(kv: &(impl KvRead + ?Sized), height: u64) -> Result<Option<u64>> {
    let from = sealed_key(height);
    let rows = kv.scan(Space::State, from.as_bytes(), b"sealed/~", 1)?;
    Ok(rows.first().and_then(|(k, _)| {
        std::str::from_utf8(&k[b"sealed/".len()..])
            .ok()
            .and_then(|s| s.parse().ok())
    }))
}

/// The recorded signatures of block `height`'s checkpoint, by validator name.
pub fn cosignatures(kv: &(impl KvRead + ?Sized), height: u64) -> Result<BTreeMap<String, Vec<u8>>> {
    let prefix = cosig_prefix(height);
    let rows = kv.scan_prefix(
        Space::State,
        prefix.as_bytes(),
        crate::checkpoint::NOTE_SIGNATURES_MAX,
    )?;
    Ok(rows
        .into_iter()
        .filter_map(|(k, v)| {
            let name = std::str::from_utf8(&k[prefix.len()..]).ok()?.to_string();
            Some((name, v))
        })
        .collect())
}

/// Block `height`'s checkpoint as a C2SP signed note with every recorded
/// signature, and the validator set those signatures are checked against.
/// `None` if the block has no checkpoint or nobody signed it yet.
pub fn signed_checkpoint(
    kv: &(impl KvRead + ?Sized),
    spec: &ChainSpec,
    height: u64,
) -> Result<Option<(Checkpoint, SignedNote, Vec<Validator>)>> {
    let Some(header) = read_header(kv, height)? else {
        return Ok(None);
    };
    let log = log_identity(kv, spec)?;
    let Some(cp) = checkpoint_of(&log, &header) else {
        return Ok(None);
    };
    let set = validator_set_at(kv, height)?;
    let note = note_of(kv, &log, &cp, &set)?;
    Ok((!note.signatures.is_empty()).then_some((cp, note, set)))
}

/// Checkpoint `cp` as a signed note with the recorded signature of every
/// validator of `set` that signed it, each under its key name.
pub fn note_of(
    kv: &(impl KvRead + ?Sized),
    log: &LogIdentity,
    cp: &Checkpoint,
    set: &[Validator],
) -> Result<SignedNote> {
    let mut signatures = Vec::new();
    for (validator, sig) in cosignatures(kv, cp.height)? {
        let Some(v) = set.iter().find(|v| v.name == validator) else {
            continue;
        };
        let name = log.key_name(&v.name).to_string();
        signatures.push(NoteSignature {
            key_id: key_id(&name, &public_key(v)?),
            name,
            signature: sig,
        });
    }
    Ok(SignedNote {
        text: cp.text(),
        signatures,
    })
}

/// A validator's public key bytes.
pub fn public_key(v: &Validator) -> Result<[u8; 32]> {
    let mut pk = [0u8; 32];
    hex::decode_to_slice(&v.public_key, &mut pk)
        .map_err(|_| LedgerError::Spec(format!("validator `{}` has a bad public key", v.name)))?;
    Ok(pk)
}

/// The note keys of a validator set, as `SignedNote::verify` wants them.
pub fn note_keys(log: &LogIdentity, set: &[Validator]) -> Result<NoteKeys> {
    let keys = set
        .iter()
        .map(|v| Ok((v.name.as_str(), public_key(v)?)))
        .collect::<Result<Vec<_>>>()?;
    log.note_keys(keys)
        .map_err(|e| LedgerError::Spec(e.to_string()))
}

/// Signs a checkpoint as validator `name`.
pub fn cosign(cp: &Checkpoint, name: &str, key: &SigningKey) -> Cosignature {
    use ed25519_dalek::Signer;
    Cosignature {
        height: cp.height,
        name: name.to_string(),
        sig: key.sign(cp.text().as_bytes()).to_bytes().to_vec(),
    }
}
