//! Refused transactions, kept so a client that did not wait can still learn
//! why (`GET /v1/tx/{id}` answers `refused` with the code and message).
//!
//! Every node applies the same proposals and so refuses the same
//! transactions in the same order: the rows are written with the block's
//! other changes, identical on every node and carried by snapshots. They
//! live in the `Txs` space, outside the state hash: a record of what was
//! not applied, never state a rule reads.
//!
//! Retention is by count: the last [`REFUSALS_KEPT`] refusals. Each has a
//! sequence number; writing refusal `n` deletes refusal `n - REFUSALS_KEPT`,
//! so the rows stay bounded however many refusals a flood causes.

use serde::{Deserialize, Serialize};

use crate::kv::{ChangeSet, KvRead, KvResult, Space};
use crate::refusal::{Refusal, RefusalCode};
use crate::state::{decode, encode};

/// How many refusals every node keeps (the newest).
pub const REFUSALS_KEPT: u64 = 100_000;
/// Message length kept, in characters (refusal messages are short already).
const MESSAGE_CHARS_MAX: usize = 512;

// Keys in the `Txs` space, whose other keys are 32-byte tx ids; these are
// longer, so no key of one kind can equal a key of the other.
const RECORD_PREFIX: &[u8] = b"refused/";
const SEQ_PREFIX: &[u8] = b"refused-seq/";
const NEXT_KEY: &[u8] = b"refused-next-seq";

/// A refused transaction as kept.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RefusedTx {
    pub code: RefusalCode,
    pub message: String,
    /// The block the proposal became, or the head it left unchanged when
    /// every transaction in it was refused.
    pub height: u64,
    /// The proposal's block time.
    pub time_ms: i64,
    seq: u64,
}

/// Whether a row is one of these: checks that a refusal changed nothing
/// else, and a snapshot's re-verification, which cannot re-derive them
/// (blocks hold only applied transactions, so replaying the chain refuses
/// nothing).
pub fn is_kept_row(space: Space, key: &[u8]) -> bool {
    space == Space::Txs
        && [RECORD_PREFIX, SEQ_PREFIX, NEXT_KEY]
            .iter()
            .any(|p| key.starts_with(p))
}

/// Rows of `kv` other than kept refusals: what a refused transaction
/// must leave unchanged.
#[cfg(test)]
pub fn rows_besides(kv: &crate::kv::MemoryKv) -> usize {
    kv.keys()
        .filter(|(space, key)| !is_kept_row(*space, key))
        .count()
}

fn record_key(id: &[u8; 32]) -> Vec<u8> {
    [RECORD_PREFIX, id.as_slice()].concat()
}

fn seq_key(seq: u64) -> Vec<u8> {
    [SEQ_PREFIX, &seq.to_be_bytes()].concat()
}

/// The refusal kept for `id`, if any.
pub fn read(kv: &(impl KvRead + ?Sized), id: &[u8; 32]) -> KvResult<Option<RefusedTx>> {
    kv.get(Space::Txs, &record_key(id))?
        .map(|b| decode(&record_key(id), &b))
        .transpose()
}

/// Adds `refused` (in proposal order) to `changes`, and drops the refusals
/// that fall out of the retention window. `kv` is the state before the
/// proposal (the proposal itself never writes these keys).
pub fn record<'a>(
    kv: &(impl KvRead + ?Sized),
    changes: &mut ChangeSet,
    refused: impl IntoIterator<Item = (&'a [u8; 32], &'a Refusal)>,
    height: u64,
    time_ms: i64,
) -> KvResult<()> {
    let mut refused = refused.into_iter().peekable();
    if refused.peek().is_none() {
        return Ok(()); // the common block: nothing to read or write
    }
    let mut next: u64 = match kv.get(Space::Txs, NEXT_KEY)? {
        Some(b) => decode(NEXT_KEY, &b)?,
        None => 0,
    };
    let start = next;
    for (id, r) in refused {
        let kept = RefusedTx {
            code: r.code,
            message: r.message.chars().take(MESSAGE_CHARS_MAX).collect(),
            height,
            time_ms,
            seq: next,
        };
        put(changes, record_key(id), encode(&kept)?);
        put(changes, seq_key(next), id.to_vec());
        if let Some(old) = next.checked_sub(REFUSALS_KEPT) {
            forget(kv, changes, old)?;
        }
        next += 1;
    }
    if next != start {
        put(changes, NEXT_KEY.to_vec(), encode(&next)?);
    }
    Ok(())
}

/// Deletes refusal `seq`, and its record unless a later refusal of the same
/// transaction replaced it.
fn forget(kv: &(impl KvRead + ?Sized), changes: &mut ChangeSet, seq: u64) -> KvResult<()> {
    let key = seq_key(seq);
    let id = current(kv, changes, &key)?;
    changes.entries.insert((Space::Txs, key), None);
    let Some(id) = id.and_then(|b| <[u8; 32]>::try_from(b.as_slice()).ok()) else {
        return Ok(());
    };
    let rkey = record_key(&id);
    if let Some(b) = current(kv, changes, &rkey)? {
        let r: RefusedTx = decode(&rkey, &b)?;
        if r.seq == seq {
            changes.entries.insert((Space::Txs, rkey), None);
        }
    }
    Ok(())
}

/// A `Txs` row as this proposal leaves it so far: its own change, else the store's.
fn current(
    kv: &(impl KvRead + ?Sized),
    changes: &ChangeSet,
    key: &[u8],
) -> KvResult<Option<Vec<u8>>> {
    match changes.entries.get(&(Space::Txs, key.to_vec())) {
        Some(v) => Ok(v.clone()),
        None => kv.get(Space::Txs, key),
    }
}

fn put(changes: &mut ChangeSet, key: Vec<u8>, value: Vec<u8>) {
    changes.entries.insert((Space::Txs, key), Some(value));
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kv::{KvWrite, MemoryKv};
    use crate::refusal::refuse;

    fn apply(kv: &mut MemoryKv, ids: &[[u8; 32]], height: u64) {
        let r = refuse(RefusalCode::InsufficientHolding, "holds 1 kg, ships 2");
        let mut c = ChangeSet::default();
        record(&*kv, &mut c, ids.iter().map(|id| (id, &r)), height, 1_000).unwrap();
        for ((space, key), v) in c.entries {
            match v {
                Some(v) => kv.put(space, key, v),
                None => kv.delete(space, key),
            }
        }
    }

    fn id(n: u64) -> [u8; 32] {
        let mut b = [0u8; 32];
        b[..8].copy_from_slice(&n.to_be_bytes());
        b
    }

    #[test]
    fn a_refusal_is_kept_with_its_code_and_height() {
        let mut kv = MemoryKv::new();
        apply(&mut kv, &[id(1)], 7);
        let r = read(&kv, &id(1)).unwrap().expect("kept");
        assert_eq!((r.code, r.height), (RefusalCode::InsufficientHolding, 7));
        assert_eq!(read(&kv, &id(2)).unwrap(), None);
    }

    #[test]
    fn only_the_newest_refusals_are_kept() {
        let mut kv = MemoryKv::new();
        let n = REFUSALS_KEPT + 3;
        let ids: Vec<[u8; 32]> = (0..n).map(id).collect();
        for chunk in ids.chunks(10_000) {
            apply(&mut kv, chunk, 1);
        }
        for k in 0..3 {
            assert_eq!(read(&kv, &id(k)).unwrap(), None, "{k} dropped");
        }
        assert!(read(&kv, &id(3)).unwrap().is_some());
        assert!(read(&kv, &id(n - 1)).unwrap().is_some());
        let rows = kv
            .scan(Space::Txs, b"refused-seq/", b"refused-seq0", usize::MAX)
            .unwrap();
        assert_eq!(rows.len() as u64, REFUSALS_KEPT);
    }

    #[test]
    fn a_transaction_refused_again_keeps_its_newest_refusal() {
        let mut kv = MemoryKv::new();
        apply(&mut kv, &[id(9)], 1);
        let filler: Vec<[u8; 32]> = (100..100 + REFUSALS_KEPT - 1).map(id).collect();
        apply(&mut kv, &filler, 2);
        apply(&mut kv, &[id(9)], 3); // refused again: seq REFUSALS_KEPT
        apply(&mut kv, &[id(5)], 4); // pushes out seq 1 …
                                     // … and seq 0 (the first refusal of id 9) went with refusal REFUSALS_KEPT.
        let r = read(&kv, &id(9)).unwrap().expect("the newer refusal stays");
        assert_eq!(r.height, 3);
    }
}
