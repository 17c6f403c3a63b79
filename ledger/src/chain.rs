//! A ledger on a store: genesis, applying proposals, and re-verifying the chain.

use std::path::Path;

use crate::block::{Block, BlockProposal, ChainHead};
use crate::error::{LedgerError, Result};
use crate::hash::H32;
use crate::history::{self, TreeReader};
use crate::kv::{KvRead, MemoryKv};
use crate::machine::{self, AppliedBlock};
use crate::merkle;
use crate::signing::SignedTx;
use crate::spec::ChainSpec;
use crate::store::{ExtraWrite, Store, StoreOptions};

/// The ledger over RocksDB. Application is serialised by the caller (the Raft
/// state machine); reads may run concurrently.
pub struct Ledger {
    pub spec: ChainSpec,
    pub store: Store,
    /// Decompressed keys and the frames this node verified before proposing.
    pub signatures: crate::signing::SignatureCache,
}

impl Ledger {
    /// Opens (and on first use initialises) a ledger at `path`. Refuses a store
    /// made from a different genesis.
    pub fn open(path: &Path, spec: ChainSpec, options: &StoreOptions) -> Result<Self> {
        spec.validate()?;
        let store = Store::open(path, options)?;
        let (changes, genesis_block) = machine::genesis(&spec)?;
        match history::read_block(&store, 0)? {
            Some(b) if b.hash != genesis_block.hash => {
                return Err(LedgerError::Spec(format!(
                    "the store at {} was made from another genesis (block 0 {} ≠ {})",
                    path.display(),
                    b.hash,
                    genesis_block.hash
                )))
            }
            Some(_) => {}
            None => store.commit(&changes, &[])?,
        }
        Ok(Self {
            spec,
            store,
            signatures: Default::default(),
        })
    }

    pub fn head(&self) -> Result<ChainHead> {
        history::read_head(&self.store)?.ok_or_else(|| LedgerError::Corrupt("no chain head".into()))
    }

    /// Applies a proposal and commits it, with `extra` (Raft metadata) in the same batch.
    pub fn apply(&self, proposal: &BlockProposal, extra: &[ExtraWrite]) -> Result<AppliedBlock> {
        let applied =
            machine::apply_block_with(&self.store, &self.spec, proposal, &self.signatures)?;
        self.store.commit(&applied.changes, extra)?;
        Ok(applied)
    }

    /// [`Self::apply`] without an fsync of its own, for a Raft state machine:
    /// the entry is already durable in the (synced) Raft log, the batch is
    /// atomic with `last_applied`, so after a crash Raft re-applies whatever
    /// the disk lost; and the next synced log write makes this one durable.
    /// `extra` sees the applied block, so the caller can write what depends
    /// on it (the Raft log's compact form of the entry) in the same batch.
    pub fn apply_relaxed(
        &self,
        proposal: &BlockProposal,
        extra: impl FnOnce(&AppliedBlock) -> Vec<ExtraWrite>,
    ) -> Result<AppliedBlock> {
        let applied =
            machine::apply_block_with(&self.store, &self.spec, proposal, &self.signatures)?;
        self.store
            .commit_relaxed(&applied.changes, &extra(&applied))?;
        Ok(applied)
    }
}

/// An in-memory ledger: replays, tests and benchmarks.
pub struct MemoryLedger {
    pub spec: ChainSpec,
    pub kv: MemoryKv,
}

impl MemoryLedger {
    pub fn new(spec: ChainSpec) -> Result<Self> {
        let (changes, _) = machine::genesis(&spec)?;
        let mut kv = MemoryKv::new();
        kv.apply(&changes);
        Ok(Self { spec, kv })
    }

    pub fn apply(&mut self, proposal: &BlockProposal) -> Result<AppliedBlock> {
        let applied = machine::apply_block(&self.kv, &self.spec, proposal)?;
        self.kv.apply(&applied.changes);
        Ok(applied)
    }

    pub fn head(&self) -> Result<ChainHead> {
        history::read_head(&self.kv)?.ok_or_else(|| LedgerError::Corrupt("no chain head".into()))
    }
}

/// Report of a full re-verification.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct VerifyReport {
    pub height: u64,
    pub transactions: u64,
    pub head_hash: H32,
    pub tree_root: H32,
}

/// Where a re-verification re-applies the chain: a fresh ledger of the same
/// genesis, in memory ([`MemoryLedger`]) or, where the chain may not fit in
/// memory (a snapshot being installed), on disk ([`Ledger`], see
/// [`scratch_ledger`]).
pub trait Replay {
    type Kv: KvRead;

    /// What the replay has written so far.
    fn kv(&self) -> &Self::Kv;

    fn apply(&mut self, proposal: &BlockProposal) -> Result<AppliedBlock>;
}

impl Replay for MemoryLedger {
    type Kv = MemoryKv;

    fn kv(&self) -> &MemoryKv {
        &self.kv
    }

    fn apply(&mut self, proposal: &BlockProposal) -> Result<AppliedBlock> {
        MemoryLedger::apply(self, proposal)
    }
}

impl Replay for &Ledger {
    type Kv = Store;

    fn kv(&self) -> &Store {
        &self.store
    }

    fn apply(&mut self, proposal: &BlockProposal) -> Result<AppliedBlock> {
        Ledger::apply(self, proposal, &[])
    }
}

/// Re-verifies every block from genesis: re-applies each block's transactions
/// on a fresh in-memory state and checks that header, hashes, tree root, state
/// hash and every signature come out as stored.
pub fn verify_chain(kv: &(impl KvRead + ?Sized), spec: &ChainSpec) -> Result<VerifyReport> {
    verify_chain_with(kv, spec, &mut MemoryLedger::new(spec.clone())?)
}

/// [`verify_chain`], re-applying on `replay`, which must be a fresh ledger of
/// `spec` (holding the genesis block only). Afterwards `replay` holds every
/// row the chain gives, for callers that compare more than the chain checks.
pub fn verify_chain_with<R: Replay>(
    kv: &(impl KvRead + ?Sized),
    spec: &ChainSpec,
    replay: &mut R,
) -> Result<VerifyReport> {
    let genesis = history::read_block(kv, 0)?.ok_or(LedgerError::Verify {
        height: 0,
        reason: "no block 0".into(),
    })?;
    let expected0 = fresh_replay(replay, spec)?;
    if genesis.hash != expected0 {
        return Err(LedgerError::Verify {
            height: 0,
            reason: "block 0 does not match the genesis file".into(),
        });
    }
    let head = history::read_head(kv)?.ok_or(LedgerError::Verify {
        height: 0,
        reason: "no head".into(),
    })?;
    let mut txs = 0u64;
    for height in 1..=head.height {
        txs += replay_block(kv, replay, height)?;
    }
    let root = merkle::tree_root(head.tree_size, &TreeReader(kv))?;
    if root != head.tree_root.0 {
        return Err(LedgerError::Verify {
            height: head.height,
            reason: "stored tree does not give the head's root".into(),
        });
    }
    Ok(VerifyReport {
        height: head.height,
        transactions: txs,
        head_hash: head.hash,
        tree_root: head.tree_root,
    })
}

/// Re-applies `kv`'s blocks 1 to `height` on `replay`, a fresh ledger of
/// `spec`, checking each as [`verify_chain`] does: afterwards `replay`
/// holds the state as of block `height`. Returns the transactions applied.
pub fn replay_to<R: Replay>(
    kv: &(impl KvRead + ?Sized),
    spec: &ChainSpec,
    replay: &mut R,
    height: u64,
) -> Result<u64> {
    fresh_replay(replay, spec)?;
    let mut txs = 0u64;
    for h in 1..=height {
        txs += replay_block(kv, replay, h)?;
    }
    Ok(txs)
}

/// Checks that `replay` holds this genesis's block 0 only: a replay must
/// start where the genesis file does, or every later comparison with it
/// means nothing. Returns block 0's hash.
fn fresh_replay<R: Replay>(replay: &R, spec: &ChainSpec) -> Result<H32> {
    let expected0 = machine::genesis(spec)?.1;
    let replay_head = history::read_head(replay.kv())?;
    if replay_head.map(|h| (h.height, h.hash)) != Some((0, expected0.hash)) {
        return Err(LedgerError::Corrupt(
            "the replay ledger is not a fresh ledger of this genesis".into(),
        ));
    }
    Ok(expected0.hash)
}

/// Re-applies stored block `height` on `replay` and checks that it comes
/// out as stored; returns its transaction count.
fn replay_block<R: Replay>(
    kv: &(impl KvRead + ?Sized),
    replay: &mut R,
    height: u64,
) -> Result<u64> {
    let fail = |reason: String| LedgerError::Verify { height, reason };
    let stored: Block =
        history::read_block(kv, height)?.ok_or_else(|| fail("block is missing".into()))?;
    if stored.header.hash() != stored.hash {
        return Err(fail("header does not hash to the stored block hash".into()));
    }
    let mut wires = Vec::with_capacity(stored.tx_ids.len());
    for id in &stored.tx_ids {
        let loc = history::read_tx(kv, &id.0)?
            .ok_or_else(|| fail(format!("transaction {id} is missing")))?;
        let tx = SignedTx::from_json_bytes(&loc.wire)
            .map_err(|r| fail(format!("transaction {id}: {r}")))?;
        if tx.id != id.0 {
            return Err(fail(format!("transaction {id} does not hash to its id")));
        }
        wires.push(loc.wire);
    }
    let proposal = BlockProposal {
        time_ms: stored.header.time_ms,
        txs: wires,
        cosigs: stored.cosigs.clone(),
    };
    let applied = replay.apply(&proposal)?;
    let Some(block) = applied.block else {
        return Err(fail(
            "re-applying the block accepts none of its transactions".into(),
        ));
    };
    if let Some(bad) = applied.outcomes.iter().find(|o| o.result.is_err()) {
        let why = bad
            .result
            .as_ref()
            .err()
            .map(|r| r.to_string())
            .unwrap_or_default();
        return Err(fail(format!(
            "re-applying refuses a stored transaction: {why}"
        )));
    }
    if block.header != stored.header {
        return Err(fail(format!(
            "re-applied header differs: stored {:?}, computed {:?}",
            stored.header, block.header
        )));
    }
    Ok(stored.tx_ids.len() as u64)
}

/// A throwaway on-disk ledger whose caches and memtables share
/// `memory_bytes` (a quarter each for the read cache; RocksDB's block cache
/// and memtables get a quarter each, at least 1 MiB): a snapshot's replay.
pub fn scratch_ledger_within(dir: &Path, spec: ChainSpec, memory_bytes: usize) -> Result<Ledger> {
    Ledger::open(
        dir,
        spec,
        &StoreOptions {
            sync: false,
            cache_bytes: (memory_bytes / 4).max(1 << 20),
            read_cache_bytes: memory_bytes / 4,
            write_buffer_bytes: (memory_bytes / 4).max(1 << 20),
        },
    )
}

/// Opens a throwaway on-disk ledger (used by `zsl score replay`: the same
/// RocksDB path a node uses, without fsync).
pub fn scratch_ledger(dir: &Path, spec: ChainSpec) -> Result<Ledger> {
    Ledger::open(
        dir,
        spec,
        &StoreOptions {
            sync: false,
            cache_bytes: 16 << 20,
            ..StoreOptions::default()
        },
    )
}
