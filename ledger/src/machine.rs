//! The state machine: a pure function from (state, block proposal) to (block,
//! per-transaction outcomes, change set). No clock but the proposal's time,
//! no randomness, no I/O: the caller commits the change set in one write.

use std::collections::BTreeSet;

use serde_json::Number;

use crate::block::{Block, BlockHeader, BlockProposal, ChainHead, Cosignature, TxLocation};
use crate::error::{
    refuse, ApplyError, ApplyResult, LedgerError, Refusal, RefusalCode as C, Result,
};
use crate::hash::sha256;
use crate::hash::H32;
use crate::history::{block_key, read_head, tree_key, TreeReader, HEAD_KEY};
use crate::kv::{ChangeSet, KvRead, KvWrite, Overlay, Space};
use crate::merkle;
use crate::record::{self, Common, FindingKind, Record, SubjectKind, TestResult, Upstream};
use crate::refusals;
use crate::score;
use crate::seal;
use crate::signing::{SignatureCache, TxFrame};
use crate::spec::ChainSpec;
use crate::state::*;
use crate::validate::{check_client_id, check_gtin, check_text, check_uscc};

/// Limits on what one record may carry.
pub const SHIPMENT_LINES_MAX: usize = 100;
pub const BATCH_REFERENCES_MAX: usize = 16;
pub const QUANTITY_MAX: u64 = 1_000_000_000_000;
pub const FINDING_BATCHES_MAX: u64 = 1_000_000;
pub const ACCOUNT_KEYS_MAX: usize = 16;
pub const CATALOGUE_CHANGES_MAX: usize = 1_000;
pub const VARIETIES_MAX: usize = 500;
pub const NAME_CHARS_MAX: usize = 200;
pub const NOTE_CHARS_MAX: usize = 1_000;
pub const SHELF_LIFE_DAYS_MAX: u32 = 3_650;
pub const ADJUSTMENT_HUNDREDTHS_MAX: i64 = 10_000;
/// Transactions in one block proposal.
pub const BLOCK_TXS_MAX: usize = 20_000;
/// The variety code for products outside the key-variety catalogue.
pub const VARIETY_OTHER: &str = "other";

/// What happened to one proposed transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TxOutcome {
    /// `None` when the wire bytes did not even parse into a transaction.
    pub id: Option<H32>,
    pub result: std::result::Result<TxLocation, Refusal>,
}

/// The result of applying a proposal.
#[derive(Debug, Clone)]
pub struct AppliedBlock {
    /// `None` when every transaction was refused: no block is cut.
    pub block: Option<Block>,
    pub head: ChainHead,
    pub outcomes: Vec<TxOutcome>,
    pub changes: ChangeSet,
}

/// The state of block 0: root regulators, the catalogue, the head.
pub fn genesis(spec: &ChainSpec) -> Result<(ChangeSet, Block)> {
    spec.validate()?;
    let base = crate::kv::MemoryKv::new();
    let mut ov = Overlay::new(&base);
    let time_ms = spec.genesis_time_ms()?;
    for r in &spec.root_regulators {
        let account = Account {
            id: r.id.clone(),
            role: AccountRole::Regulator,
            jurisdiction: spec.province.code.clone(),
            name: r.name.clone(),
            keys: vec![KeyEntry {
                public_key: r.public_key.clone(),
                bound: Origin {
                    tx: String::new(),
                    height: 0,
                    at_ms: time_ms,
                },
                revoked: None,
            }],
            registered: None,
            registered_by: None,
        };
        put(&mut ov, Space::State, &account_key(&r.id), &account)?;
        put(&mut ov, Space::State, &key_owner_key(&r.public_key), &r.id)?;
    }
    put(&mut ov, Space::State, VARIETIES_KEY, &spec.key_varieties)?;
    seal::put_validator_set(&mut ov, 0, &spec.validators)?;
    let state_hash = H32(sha256(&ov.changes().digest_input()));
    let header = BlockHeader {
        chain_id: spec.chain_id.clone(),
        height: 0,
        prev_hash: H32(spec.hash()?),
        time_ms,
        tx_count: 0,
        tree_size: 0,
        tree_root: H32(merkle::empty_root()),
        state_hash,
        validators_hash: seal::validator_set_hash(&spec.validators)?,
    };
    let block = Block {
        hash: header.hash(),
        header,
        tx_ids: Vec::new(),
        cosigs: Vec::new(),
    };
    let head = ChainHead {
        height: 0,
        hash: block.hash,
        time_ms,
        tree_size: 0,
        tree_root: block.header.tree_root,
    };
    ov.put(Space::Blocks, block_key(0), encode(&block)?);
    ov.put(Space::Blocks, HEAD_KEY.to_vec(), encode(&head)?);
    Ok((ov.into_changes(), block))
}

/// The block time a proposal gets: the leader's clock, forced strictly increasing.
pub fn block_time(head: &ChainHead, proposed_ms: i64) -> i64 {
    proposed_ms.max(head.time_ms.saturating_add(1))
}

/// Applies a proposal on top of `kv`. Deterministic: the same state and
/// proposal give the same block, outcomes and change set on every node.
pub fn apply_block(
    kv: &(impl KvRead + ?Sized),
    spec: &ChainSpec,
    proposal: &BlockProposal,
) -> Result<AppliedBlock> {
    apply_block_with(kv, spec, proposal, &SignatureCache::default())
}

/// [`apply_block`] with a node's signature cache (decompressed keys, and
/// the frames this node verified before proposing them). The cache changes
/// only how much work verification takes, never its verdicts.
pub fn apply_block_with(
    kv: &(impl KvRead + ?Sized),
    spec: &ChainSpec,
    proposal: &BlockProposal,
    signatures: &SignatureCache,
) -> Result<AppliedBlock> {
    let head =
        read_head(kv)?.ok_or_else(|| LedgerError::Block("the store has no genesis".into()))?;
    if let Some(limit) = proposal_over_limits(proposal) {
        // A property of the committed entry alone, the same on every node:
        // every transaction is refused and no block is cut. An error here
        // would halt every replica on that entry forever.
        let outcomes = proposal
            .txs
            .iter()
            .map(|_| TxOutcome {
                id: None,
                result: Err(refuse(C::LimitExceeded, limit.clone())),
            })
            .collect();
        return Ok(AppliedBlock {
            block: None,
            head,
            outcomes,
            changes: ChangeSet::default(),
        });
    }
    let mut block = BlockInProgress {
        spec,
        height: head.height + 1,
        time_ms: block_time(&head, proposal.time_ms),
        ov: Overlay::new(kv),
        tree_size: head.tree_size,
        tx_ids: Vec::new(),
    };
    let outcomes = block.apply_txs(&proposal.txs, signatures)?;
    let cosigs = block.take_cosignatures(&proposal.cosigs)?;
    let (height, time_ms) = (block.height, block.time_ms);
    let mut applied = if block.tx_ids.is_empty() && cosigs.is_empty() {
        AppliedBlock {
            block: None,
            changes: ChangeSet::default(),
            head: head.clone(),
            outcomes,
        }
    } else {
        block.seal(&head, cosigs, outcomes)?
    };
    // Kept outside the state hash, the same on every node (crate::refusals).
    let decided_at = if applied.block.is_some() {
        height
    } else {
        head.height
    };
    let refused = applied
        .outcomes
        .iter()
        .filter_map(|o| match (&o.id, &o.result) {
            (Some(id), Err(r)) => Some((&id.0, r)),
            _ => None,
        });
    let mut kept = ChangeSet::default();
    refusals::record(kv, &mut kept, refused, decided_at, time_ms)?;
    applied.changes.extend(kept);
    Ok(applied)
}

/// A block being assembled: the overlay its transactions write into, and
/// the tree and ids it has grown so far.
struct BlockInProgress<'a, K: KvRead + ?Sized> {
    spec: &'a ChainSpec,
    height: u64,
    time_ms: i64,
    ov: Overlay<'a, K>,
    tree_size: u64,
    tx_ids: Vec<H32>,
}

impl<K: KvRead + ?Sized> BlockInProgress<'_, K> {
    /// Each proposed transaction in order: parsed, its signature verdict
    /// taken, applied into its own overlay, and kept or refused.
    fn apply_txs(
        &mut self,
        txs: &[Vec<u8>],
        signatures: &SignatureCache,
    ) -> Result<Vec<TxOutcome>> {
        let parsed: Vec<std::result::Result<TxFrame, Refusal>> =
            txs.iter().map(|w| TxFrame::from_proposed(w)).collect();
        let ok: Vec<&TxFrame> = parsed.iter().filter_map(|p| p.as_ref().ok()).collect();
        let mut verdicts = signatures.verify(&ok).into_iter();
        let mut outcomes = Vec::with_capacity(parsed.len());
        for p in &parsed {
            let tx = match p {
                Ok(tx) => tx,
                Err(r) => {
                    outcomes.push(TxOutcome {
                        id: None,
                        result: Err(r.clone()),
                    });
                    continue;
                }
            };
            let sig_ok = verdicts.next().unwrap_or(false);
            let ctx = TxContext {
                spec: self.spec,
                height: self.height,
                time_ms: self.time_ms,
                index: self.tx_ids.len() as u32,
            };
            let attempt = {
                let mut tx_ov = Overlay::new(&self.ov);
                match apply_tx(&mut tx_ov, &ctx, tx, sig_ok) {
                    Ok(ok) => Ok((ok, tx_ov.into_changes())),
                    Err(ApplyError::Refused(r)) => Err(r),
                    Err(ApplyError::Fatal(e)) => return Err(e),
                }
            };
            let result = match attempt {
                Ok(((common, kind), changes)) => {
                    self.ov.absorb(changes);
                    Ok(self.keep(tx, ctx.index, &common.account, kind)?)
                }
                Err(r) => Err(r),
            };
            outcomes.push(TxOutcome {
                id: Some(H32(tx.id)),
                result,
            });
        }
        Ok(outcomes)
    }

    /// A transaction the rules applied: a tree leaf, its location and the
    /// account's record index.
    fn keep(
        &mut self,
        tx: &TxFrame,
        index: u32,
        account: &str,
        kind: String,
    ) -> Result<TxLocation> {
        for (i, h) in merkle::append_leaf(self.tree_size, &tx.id, &TreeReader(&self.ov))? {
            self.ov.put(Space::Tree, tree_key(i), h.to_vec());
        }
        let loc = TxLocation {
            height: self.height,
            index,
            leaf_index: self.tree_size,
            kind,
            account: account.to_string(),
            wire: tx.wire_json(),
        };
        self.ov.put(Space::Txs, tx.id.to_vec(), encode(&loc)?);
        self.ov.put(
            Space::Index,
            account_records_key(account, self.height, index).into_bytes(),
            tx.id.to_vec(),
        );
        self.tree_size += 1;
        self.tx_ids.push(H32(tx.id));
        Ok(loc)
    }

    /// Signatures over earlier checkpoints; invalid ones are dropped, the
    /// same way on every node (the leader checked them already, so this is rare).
    fn take_cosignatures(&mut self, proposed: &[Cosignature]) -> Result<Vec<Cosignature>> {
        let mut cosigs = Vec::new();
        for c in proposed {
            match seal::check_cosignature(&self.ov, self.spec, c)? {
                Ok((cp, set)) => {
                    seal::record_cosignature(&mut self.ov, self.spec, c, &cp, &set)?;
                    cosigs.push(c.clone());
                }
                Err(why) => {
                    tracing::debug!(height = c.height, name = %c.name, %why, "checkpoint signature dropped");
                }
            }
        }
        Ok(cosigs)
    }

    /// The header over the tree and the state changes, the block, and the new head.
    fn seal(
        mut self,
        head: &ChainHead,
        cosigs: Vec<Cosignature>,
        outcomes: Vec<TxOutcome>,
    ) -> Result<AppliedBlock> {
        let tree_root = H32(merkle::tree_root(self.tree_size, &TreeReader(&self.ov))?);
        let state_hash = H32(sha256(&self.ov.changes().digest_input()));
        let header = BlockHeader {
            chain_id: self.spec.chain_id.clone(),
            height: self.height,
            prev_hash: head.hash,
            time_ms: self.time_ms,
            tx_count: self.tx_ids.len() as u32,
            tree_size: self.tree_size,
            tree_root,
            state_hash,
            validators_hash: seal::validator_set_hash(&seal::validator_set_at(
                &self.ov,
                self.height,
            )?)?,
        };
        let hash = header.hash();
        let new_head = ChainHead {
            height: self.height,
            hash,
            time_ms: self.time_ms,
            tree_size: self.tree_size,
            tree_root,
        };
        let block = Block {
            header,
            hash,
            tx_ids: self.tx_ids,
            cosigs,
        };
        self.ov
            .put(Space::Blocks, block_key(self.height), encode(&block)?);
        self.ov
            .put(Space::Blocks, HEAD_KEY.to_vec(), encode(&new_head)?);
        Ok(AppliedBlock {
            block: Some(block),
            head: new_head,
            outcomes,
            changes: self.ov.into_changes(),
        })
    }
}

/// Why a proposal is refused as a whole, if it is: more transactions or
/// checkpoint signatures than a block may carry.
pub fn proposal_over_limits(proposal: &BlockProposal) -> Option<String> {
    if proposal.txs.len() > BLOCK_TXS_MAX {
        return Some(format!(
            "the block proposal has {} transactions; the limit is {BLOCK_TXS_MAX}",
            proposal.txs.len()
        ));
    }
    if proposal.cosigs.len() > seal::COSIGNATURES_PER_BLOCK_MAX {
        return Some(format!(
            "the block proposal has {} checkpoint signatures; the limit is {}",
            proposal.cosigs.len(),
            seal::COSIGNATURES_PER_BLOCK_MAX
        ));
    }
    None
}

/// The block-level facts a transaction is applied under.
pub struct TxContext<'a> {
    pub spec: &'a ChainSpec,
    pub height: u64,
    pub time_ms: i64,
    pub index: u32,
}

/// Applies one transaction into `kv` (a per-transaction overlay the caller
/// discards on refusal). The outer error is a storage failure; the inner one a refusal.
pub fn apply_tx(
    kv: &mut impl KvWrite,
    ctx: &TxContext<'_>,
    tx: &TxFrame,
    sig_ok: bool,
) -> ApplyResult<(Common, String)> {
    let (common, record) = record::parse_canonical(tx.body_json())?;
    if !sig_ok {
        return Err(ApplyError::Refused(refuse(
            C::BadSignature,
            "signature does not verify over the signed bytes",
        )));
    }
    if common.chain_id != ctx.spec.chain_id {
        return Err(ApplyError::Refused(refuse(
            C::WrongChain,
            format!("this is chain `{}`", ctx.spec.chain_id),
        )));
    }
    if common.created_at_ms < ctx.time_ms - ctx.spec.tx_window_past_ms {
        return Err(ApplyError::Refused(refuse(
            C::Stale,
            format!(
                "created_at is more than {} s before the block time",
                ctx.spec.tx_window_past_ms / 1000
            ),
        )));
    }
    if common.created_at_ms > ctx.time_ms + ctx.spec.tx_window_future_ms {
        return Err(ApplyError::Refused(refuse(
            C::FromFuture,
            format!(
                "created_at is more than {} s after the block time",
                ctx.spec.tx_window_future_ms / 1000
            ),
        )));
    }
    if kv.get(Space::Txs, &tx.id)?.is_some() {
        return Err(ApplyError::Refused(refuse(
            C::Replayed,
            format!("transaction {} is already committed", tx.id_hex()),
        )));
    }
    let Some(signer) = get::<Account>(kv, Space::State, &account_key(&common.account))? else {
        return Err(ApplyError::Refused(refuse(
            C::UnknownAccount,
            format!("no account `{}`", common.account),
        )));
    };
    if signer.active_key(&hex::encode(tx.signer)).is_none() {
        return Err(ApplyError::Refused(refuse(
            C::KeyNotActive,
            format!("the signing key is not an active key of `{}`", signer.id),
        )));
    }
    let origin = Origin {
        tx: tx.id_hex(),
        height: ctx.height,
        at_ms: ctx.time_ms,
    };
    let mut a = Apply {
        kv,
        ctx,
        signer,
        origin,
    };
    let kind = record.type_name().to_string();
    a.record(record)?;
    Ok((common, kind))
}

struct Apply<'a, 'c, K: KvWrite> {
    kv: &'a mut K,
    ctx: &'a TxContext<'c>,
    signer: Account,
    origin: Origin,
}

/// A rule's outcome: applied, refused, or a storage failure.
type R = ApplyResult<()>;

macro_rules! ensure {
    ($cond:expr, $code:expr, $($msg:tt)+) => {
        if !$cond {
            return Err(ApplyError::Refused(refuse($code, format!($($msg)+))));
        }
    };
}

/// Points with at most two decimals, as hundredths (the score engine's exact decimal parser).
pub fn points_hundredths(n: &Number) -> Option<i64> {
    score::parse_hundredths(&n.to_string()).ok()
}

/// The product trace code (追溯码) a coding yields: derived from coder and batch id.
pub fn trace_code(coder: &str, batch_id: &str) -> String {
    let mut input = b"zsl-trace\x00".to_vec();
    input.extend_from_slice(coder.as_bytes());
    input.push(0);
    input.extend_from_slice(batch_id.as_bytes());
    format!("ZS{}", hex::encode_upper(&sha256(&input)[..10]))
}

/// The subject trace code (主体码).
pub fn subject_code(uscc: &str) -> String {
    format!("S{uscc}")
}

mod rules;

#[cfg(test)]
#[path = "machine/tests.rs"]
mod tests;
