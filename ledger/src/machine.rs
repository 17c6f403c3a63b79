//! The state machine: a pure function from (state, block proposal) to (block,
//! per-transaction outcomes, change set). No clock but the proposal's time,
//! no randomness, no I/O: the caller commits the change set in one write.

use std::collections::BTreeSet;

use serde_json::Number;

use crate::block::{Block, BlockHeader, BlockProposal, ChainHead, TxLocation};
use crate::error::{
    refuse, ApplyError, ApplyResult, LedgerError, Refusal, RefusalCode as C, Result,
};
use crate::hash::sha256;
use crate::hash::H32;
use crate::history::{block_key, read_head, tree_key, TreeReader, HEAD_KEY};
use crate::kv::{ChangeSet, KvRead, KvWrite, Overlay, Space};
use crate::merkle;
use crate::record::{self, Common, FindingKind, Record, SubjectKind, TestResult, Upstream};
use crate::score;
use crate::seal;
use crate::signing::{SignatureCache, TxFrame};
use crate::spec::ChainSpec;
use crate::state::*;
use crate::validate::{check_client_id, check_gtin, check_text, check_uscc, is_region_code};

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
    let height = head.height + 1;
    let time_ms = block_time(&head, proposal.time_ms);

    let parsed: Vec<std::result::Result<TxFrame, Refusal>> = proposal
        .txs
        .iter()
        .map(|w| TxFrame::from_proposed(w))
        .collect();
    let ok: Vec<&TxFrame> = parsed.iter().filter_map(|p| p.as_ref().ok()).collect();
    let mut verdicts = signatures.verify(&ok).into_iter();

    let mut block_ov = Overlay::new(kv);
    let mut outcomes = Vec::with_capacity(parsed.len());
    let mut tx_ids = Vec::new();
    let mut tree_size = head.tree_size;
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
            spec,
            height,
            time_ms,
            index: tx_ids.len() as u32,
        };
        let attempt = {
            let mut tx_ov = Overlay::new(&block_ov);
            match apply_tx(&mut tx_ov, &ctx, tx, sig_ok) {
                Ok(ok) => Ok((ok, tx_ov.into_changes())),
                Err(ApplyError::Refused(r)) => Err(r),
                Err(ApplyError::Fatal(e)) => return Err(e),
            }
        };
        match attempt {
            Ok(((common, kind), changes)) => {
                block_ov.absorb(changes);
                for (i, h) in merkle::append_leaf(tree_size, &tx.id, &TreeReader(&block_ov))? {
                    block_ov.put(Space::Tree, tree_key(i), h.to_vec());
                }
                let loc = TxLocation {
                    height,
                    index: ctx.index,
                    leaf_index: tree_size,
                    kind,
                    account: common.account.clone(),
                    wire: tx.wire_json(),
                };
                block_ov.put(Space::Txs, tx.id.to_vec(), encode(&loc)?);
                block_ov.put(
                    Space::Index,
                    account_records_key(&common.account, height, ctx.index).into_bytes(),
                    tx.id.to_vec(),
                );
                tree_size += 1;
                tx_ids.push(H32(tx.id));
                outcomes.push(TxOutcome {
                    id: Some(H32(tx.id)),
                    result: Ok(loc),
                });
            }
            Err(r) => outcomes.push(TxOutcome {
                id: Some(H32(tx.id)),
                result: Err(r),
            }),
        }
    }

    // Signatures over earlier checkpoints; invalid ones are dropped, the same
    // way on every node (the leader checked them already, so this is rare).
    let mut cosigs = Vec::new();
    for c in &proposal.cosigs {
        match seal::check_cosignature(&block_ov, spec, c)? {
            Ok((cp, set)) => {
                seal::record_cosignature(&mut block_ov, spec, c, &cp, &set)?;
                cosigs.push(c.clone());
            }
            Err(why) => {
                tracing::debug!(height = c.height, name = %c.name, %why, "checkpoint signature dropped");
            }
        }
    }

    if tx_ids.is_empty() && cosigs.is_empty() {
        return Ok(AppliedBlock {
            block: None,
            head,
            outcomes,
            changes: ChangeSet::default(),
        });
    }
    let tree_root = H32(merkle::tree_root(tree_size, &TreeReader(&block_ov))?);
    let state_hash = H32(sha256(&block_ov.changes().digest_input()));
    let header = BlockHeader {
        chain_id: spec.chain_id.clone(),
        height,
        prev_hash: head.hash,
        time_ms,
        tx_count: tx_ids.len() as u32,
        tree_size,
        tree_root,
        state_hash,
        validators_hash: seal::validator_set_hash(&seal::validator_set_at(&block_ov, height)?)?,
    };
    let hash = header.hash();
    let new_head = ChainHead {
        height,
        hash,
        time_ms,
        tree_size,
        tree_root,
    };
    let block = Block {
        header,
        hash,
        tx_ids,
        cosigs,
    };
    block_ov.put(Space::Blocks, block_key(height), encode(&block)?);
    block_ov.put(Space::Blocks, HEAD_KEY.to_vec(), encode(&new_head)?);
    Ok(AppliedBlock {
        block: Some(block),
        head: new_head,
        outcomes,
        changes: block_ov.into_changes(),
    })
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

fn parse_date(field: &str, text: &str) -> std::result::Result<jiff::civil::Date, Refusal> {
    if text.len() != 10 {
        return Err(refuse(
            C::InvalidField,
            format!("`{field}` must be a date YYYY-MM-DD"),
        ));
    }
    text.parse().map_err(|_| {
        refuse(
            C::InvalidField,
            format!("`{field}` must be a date YYYY-MM-DD"),
        )
    })
}

fn check_public_key(text: &str) -> std::result::Result<(), Refusal> {
    let mut b = [0u8; 32];
    if text.len() != 64
        || hex::decode_to_slice(text, &mut b).is_err()
        || text.bytes().any(|c| c.is_ascii_uppercase())
    {
        return Err(refuse(
            C::InvalidField,
            "`public_key` must be 64 lowercase hex characters",
        ));
    }
    match ed25519_dalek::VerifyingKey::from_bytes(&b) {
        Ok(k) if !k.is_weak() => Ok(()),
        _ => Err(refuse(
            C::InvalidField,
            "`public_key` is not a usable Ed25519 public key",
        )),
    }
}

fn check_hash_hex(field: &str, text: &str) -> std::result::Result<(), Refusal> {
    let ok = text.len() == 64
        && text
            .bytes()
            .all(|c| c.is_ascii_digit() || (b'a'..=b'f').contains(&c));
    if ok {
        Ok(())
    } else {
        Err(refuse(
            C::InvalidField,
            format!("`{field}` must be a SHA-256 in 64 lowercase hex characters"),
        ))
    }
}

fn opt_text(field: &str, text: &Option<String>, max: usize) -> std::result::Result<(), Refusal> {
    match text {
        Some(t) => check_text(field, t, max),
        None => Ok(()),
    }
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

impl<K: KvWrite> Apply<'_, '_, K> {
    fn spec(&self) -> &ChainSpec {
        self.ctx.spec
    }

    fn get<T: serde::de::DeserializeOwned>(&self, key: &str) -> Result<Option<T>> {
        Ok(get(&*self.kv, Space::State, key)?)
    }

    fn put<T: serde::Serialize>(&mut self, key: &str, value: &T) -> Result<()> {
        Ok(put(self.kv, Space::State, key, value)?)
    }

    fn index(&mut self, key: String, value: &[u8]) {
        self.kv.put(Space::Index, key.into_bytes(), value.to_vec());
    }

    fn today(&self) -> Result<jiff::civil::Date> {
        Ok(score::local_date(&self.spec().model, self.ctx.time_ms)?)
    }

    fn is_role(&self, role: AccountRole) -> bool {
        self.signer.role == role
    }

    /// The signer is a regulator whose jurisdiction covers `district`.
    fn regulator_over(&self, district: &str) -> std::result::Result<(), Refusal> {
        self.authority_over(&[AccountRole::Regulator], district)
    }

    fn authority_over(
        &self,
        roles: &[AccountRole],
        district: &str,
    ) -> std::result::Result<(), Refusal> {
        if !roles.contains(&self.signer.role) {
            return Err(refuse(
                C::NoRole,
                format!(
                    "`{}` is a {:?}, not one of {roles:?}",
                    self.signer.id, self.signer.role
                ),
            ));
        }
        if !self.spec().covers(&self.signer.jurisdiction, district) {
            return Err(refuse(
                C::NoJurisdiction,
                format!(
                    "`{}` (jurisdiction {}) has no jurisdiction over {district}",
                    self.signer.id, self.signer.jurisdiction
                ),
            ));
        }
        Ok(())
    }

    fn subject_signer(&self) -> ApplyResult<Subject> {
        if !self.is_role(AccountRole::Subject) {
            return Err(ApplyError::Refused(refuse(
                C::NoRole,
                format!("`{}` is not a registered subject", self.signer.id),
            )));
        }
        match self.get::<Subject>(&subject_key(&self.signer.id))? {
            Some(s) => Ok(s),
            None => Err(ApplyError::Fatal(LedgerError::Corrupt(format!(
                "subject account `{}` has no subject record",
                self.signer.id
            )))),
        }
    }

    fn subject(&self, uscc: &str) -> ApplyResult<Subject> {
        Ok(self
            .get::<Subject>(&subject_key(uscc))?
            .ok_or_else(|| refuse(C::UnknownSubject, format!("no subject `{uscc}`")))?)
    }

    fn batch(&self, trace: &str) -> ApplyResult<Batch> {
        Ok(self.get::<Batch>(&batch_key(trace))?.ok_or_else(|| {
            refuse(
                C::UnknownBatch,
                format!("no batch with trace code `{trace}`"),
            )
        })?)
    }

    fn holding(&self, trace: &str, holder: &str) -> Result<u64> {
        Ok(self.get::<u64>(&holding_key(trace, holder))?.unwrap_or(0))
    }

    fn set_holding(&mut self, trace: &str, holder: &str, qty: u64) -> Result<()> {
        if qty == 0 {
            self.kv
                .delete(Space::State, holding_key(trace, holder).into_bytes());
            self.kv.delete(
                Space::Index,
                holdings_by_subject_key(holder, trace).into_bytes(),
            );
        } else {
            self.put(&holding_key(trace, holder), &qty)?;
            self.index(holdings_by_subject_key(holder, trace), b"");
        }
        Ok(())
    }

    fn new_key(&mut self, public_key: &str) -> ApplyResult<KeyEntry> {
        check_public_key(public_key)?;
        if self.get::<String>(&key_owner_key(public_key))?.is_some() {
            return Err(ApplyError::Refused(refuse(
                C::KeyInUse,
                "that public key is already bound to an account",
            )));
        }
        Ok(KeyEntry {
            public_key: public_key.to_string(),
            bound: self.origin.clone(),
            revoked: None,
        })
    }

    fn activity(&mut self, subject: &Subject) -> Result<()> {
        score::on_activity(
            self.kv,
            &self.ctx.spec.model,
            &score::ActivityFact {
                at_ms: self.ctx.time_ms,
                subject: subject.uscc.clone(),
                district: subject.district.clone(),
                market: subject.market.clone(),
            },
        )?;
        Ok(())
    }

    fn record(&mut self, record: Record) -> R {
        match record {
            Record::AccountRegister(r) => self.account_register(r),
            Record::SubjectRegister(r) => self.subject_register(r),
            Record::SubjectUpdate(r) => self.subject_update(r),
            Record::KeyBind(r) => self.key_bind(r),
            Record::KeyRevoke(r) => self.key_revoke(r),
            Record::ProductRegister(r) => self.product_register(r),
            Record::BatchCode(r) => self.batch_code(r),
            Record::ShipmentCreate(r) => self.shipment_create(r),
            Record::ShipmentReceive(r) => self.shipment_answer(r.shipper, r.shipment_id, None),
            Record::ShipmentReject(r) => {
                opt_text("note", &r.note, NOTE_CHARS_MAX)?;
                self.shipment_answer(r.shipper, r.shipment_id, Some((r.reason, r.note)))
            }
            Record::CertificateIssue(r) => self.certificate_issue(r),
            Record::RapidTestRecord(r) => self.rapid_test(r),
            Record::FindingRecord(r) => self.finding_record(r),
            Record::FindingRectify(r) => self.finding_rectify(r),
            Record::RecallIssue(r) => self.recall(r),
            Record::AdjustmentRecord(r) => self.adjustment(r),
            Record::DocumentNotarize(r) => self.notarize(r),
            Record::KeySubjectsUpdate(r) => self.key_subjects(r),
            Record::KeyVarietiesUpdate(r) => self.key_varieties(r),
            Record::ValidatorAdd(r) => self.validator_add(r),
            Record::ValidatorRemove(r) => self.validator_remove(r),
        }
    }

    /// The set after this block (earlier changes in the same block included).
    fn next_validator_set(&self) -> Result<Vec<crate::spec::Validator>> {
        seal::validator_set_at(&*self.kv, self.ctx.height + 1)
    }

    fn validator_add(&mut self, r: record::ValidatorAdd) -> R {
        self.provincial()?;
        ensure!(
            crate::validate::valid_key_name(&r.name) && r.name.chars().count() <= 64,
            C::InvalidField,
            "`name` must be 1-64 characters without spaces or `+`"
        );
        check_public_key(&r.public_key)?;
        ensure!(
            !r.address.is_empty() && r.address.len() <= 512,
            C::InvalidField,
            "`address` must be 1-512 bytes"
        );
        ensure!(r.node_id > 0, C::InvalidField, "`node_id` must be positive");
        let mut set = self.next_validator_set()?;
        ensure!(
            set.len() < seal::VALIDATORS_MAX,
            C::LimitExceeded,
            "a chain has at most {} validators",
            seal::VALIDATORS_MAX
        );
        if let Some(v) = set
            .iter()
            .find(|v| v.node_id == r.node_id || v.name == r.name || v.public_key == r.public_key)
        {
            return Err(ApplyError::Refused(refuse(
                C::ValidatorExists,
                format!(
                    "validator {} `{}` already has that node id, name or key",
                    v.node_id, v.name
                ),
            )));
        }
        set.push(crate::spec::Validator {
            node_id: r.node_id,
            name: r.name,
            public_key: r.public_key,
        });
        set.sort_by_key(|v| v.node_id);
        seal::put_validator_set(self.kv, self.ctx.height + 1, &set)?;
        self.put(&seal::validator_address_key(r.node_id), &r.address)?;
        Ok(())
    }

    fn validator_remove(&mut self, r: record::ValidatorRemove) -> R {
        self.provincial()?;
        let mut set = self.next_validator_set()?;
        let before = set.len();
        set.retain(|v| v.node_id != r.node_id);
        ensure!(
            set.len() < before,
            C::UnknownValidator,
            "node {} is not a validator",
            r.node_id
        );
        ensure!(
            !set.is_empty(),
            C::LimitExceeded,
            "the last validator cannot be removed"
        );
        seal::put_validator_set(self.kv, self.ctx.height + 1, &set)?;
        Ok(())
    }

    fn account_register(&mut self, r: record::AccountRegister) -> R {
        check_client_id("id", &r.id)?;
        check_text("name", &r.name, NAME_CHARS_MAX)?;
        ensure!(
            self.is_role(AccountRole::Regulator),
            C::NoRole,
            "only a regulator registers accounts"
        );
        ensure!(
            self.spec().is_jurisdiction(&r.jurisdiction),
            C::UnknownDistrict,
            "`{}` is not a jurisdiction of the region table",
            r.jurisdiction
        );
        ensure!(
            self.spec()
                .covers_jurisdiction(&self.signer.jurisdiction, &r.jurisdiction),
            C::NoJurisdiction,
            "`{}` (jurisdiction {}) cannot register an account for {}",
            self.signer.id,
            self.signer.jurisdiction,
            r.jurisdiction
        );
        ensure!(
            self.get::<Account>(&account_key(&r.id))?.is_none(),
            C::AccountExists,
            "account `{}` exists",
            r.id
        );
        let key = self.new_key(&r.public_key)?;
        let account = Account {
            id: r.id.clone(),
            role: r.role.into(),
            jurisdiction: r.jurisdiction,
            name: r.name,
            keys: vec![key],
            registered: Some(self.origin.clone()),
            registered_by: Some(self.signer.id.clone()),
        };
        self.put(&key_owner_key(&r.public_key), &r.id)?;
        self.put(&account_key(&r.id), &account)?;
        Ok(())
    }

    fn subject_register(&mut self, r: record::SubjectRegister) -> R {
        check_uscc(&r.uscc)?;
        check_text("name", &r.name, NAME_CHARS_MAX)?;
        ensure!(
            self.spec().district(&r.district).is_some(),
            C::UnknownDistrict,
            "district `{}` is not in the region table",
            r.district
        );
        self.regulator_over(&r.district)?;
        ensure!(
            self.get::<Account>(&account_key(&r.uscc))?.is_none(),
            C::SubjectExists,
            "subject `{}` is registered",
            r.uscc
        );
        if let Some(m) = &r.market {
            ensure!(
                r.kind == SubjectKind::MarketOperator,
                C::InvalidField,
                "only a market_operator names a market"
            );
            let market = self.subject(m)?;
            ensure!(
                market.kind.is_market(),
                C::InvalidField,
                "`{m}` is not a market"
            );
        }
        let key = self.new_key(&r.public_key)?;
        let account = Account {
            id: r.uscc.clone(),
            role: AccountRole::Subject,
            jurisdiction: r.district.clone(),
            name: r.name.clone(),
            keys: vec![key],
            registered: Some(self.origin.clone()),
            registered_by: Some(self.signer.id.clone()),
        };
        let subject = Subject {
            subject_code: subject_code(&r.uscc),
            uscc: r.uscc.clone(),
            name: r.name,
            kind: r.kind,
            district: r.district.clone(),
            key_subject: r.key_subject,
            market: r.market.clone(),
            registered: self.origin.clone(),
            updated: None,
        };
        self.put(&key_owner_key(&r.public_key), &r.uscc)?;
        self.put(&account_key(&r.uscc), &account)?;
        self.put(&subject_key(&r.uscc), &subject)?;
        if r.key_subject {
            score::on_key_subject(self.kv, &r.uscc, &r.district, true, self.ctx.time_ms)?;
        }
        if let Some(m) = &r.market {
            let market = self
                .get::<Subject>(&subject_key(m))?
                .ok_or_else(|| LedgerError::Corrupt(format!("market {m} vanished")))?;
            let market_kind = if market.kind == SubjectKind::FarmWholesaleMarket {
                score::MarketKind::Wholesale
            } else {
                score::MarketKind::Retail
            };
            score::on_operator_registered(
                self.kv,
                &self.ctx.spec.model,
                &score::OperatorFact {
                    at_ms: self.ctx.time_ms,
                    market: m.clone(),
                    market_district: market.district,
                    market_kind,
                    operator: r.uscc.clone(),
                },
            )?;
        }
        Ok(())
    }

    fn subject_update(&mut self, r: record::SubjectUpdate) -> R {
        let mut s = self.subject(&r.uscc)?;
        self.regulator_over(&s.district)?;
        if let Some(name) = &r.name {
            check_text("name", name, NAME_CHARS_MAX)?;
            s.name = name.clone();
        }
        if let Some(kind) = r.kind {
            ensure!(
                s.market.is_none() || kind == SubjectKind::MarketOperator,
                C::InvalidField,
                "a stall registered in a market stays a market_operator"
            );
            s.kind = kind;
        }
        let old_district = s.district.clone();
        if let Some(d) = &r.district {
            ensure!(
                self.spec().district(d).is_some(),
                C::UnknownDistrict,
                "district `{d}` is not in the region table"
            );
            self.regulator_over(d)?;
            s.district = d.clone();
        }
        let was_key = s.key_subject;
        if let Some(k) = r.key_subject {
            s.key_subject = k;
        }
        if was_key && (!s.key_subject || old_district != s.district) {
            score::on_key_subject(self.kv, &s.uscc, &old_district, false, self.ctx.time_ms)?;
        }
        if s.key_subject && (!was_key || old_district != s.district) {
            score::on_key_subject(self.kv, &s.uscc, &s.district, true, self.ctx.time_ms)?;
        }
        s.updated = Some(self.origin.clone());
        if let Some(mut acct) = self.get::<Account>(&account_key(&s.uscc))? {
            acct.jurisdiction = s.district.clone();
            acct.name = s.name.clone();
            self.put(&account_key(&s.uscc), &acct)?;
        }
        self.put(&subject_key(&s.uscc), &s)?;
        Ok(())
    }

    /// The signer may change `target`'s keys: it is the target, or a regulator over it.
    fn key_authority(&self, target: &Account) -> std::result::Result<(), Refusal> {
        if target.id == self.signer.id {
            return Ok(());
        }
        if self.signer.role == AccountRole::Regulator
            && self
                .spec()
                .covers_jurisdiction(&self.signer.jurisdiction, &target.jurisdiction)
        {
            return Ok(());
        }
        Err(refuse(
            C::NoJurisdiction,
            format!(
                "`{}` may not change the keys of `{}`",
                self.signer.id, target.id
            ),
        ))
    }

    fn key_bind(&mut self, r: record::KeyChange) -> R {
        let Some(mut target) = self.get::<Account>(&account_key(&r.target))? else {
            return Err(ApplyError::Refused(refuse(
                C::UnknownAccount,
                format!("no account `{}`", r.target),
            )));
        };
        self.key_authority(&target)?;
        ensure!(
            target.active_key_count() < ACCOUNT_KEYS_MAX,
            C::LimitExceeded,
            "an account has at most {ACCOUNT_KEYS_MAX} active keys"
        );
        let key = self.new_key(&r.public_key)?;
        target.keys.push(key);
        self.put(&key_owner_key(&r.public_key), &target.id)?;
        self.put(&account_key(&target.id), &target)?;
        Ok(())
    }

    fn key_revoke(&mut self, r: record::KeyChange) -> R {
        let Some(mut target) = self.get::<Account>(&account_key(&r.target))? else {
            return Err(ApplyError::Refused(refuse(
                C::UnknownAccount,
                format!("no account `{}`", r.target),
            )));
        };
        self.key_authority(&target)?;
        ensure!(
            target.active_key(&r.public_key).is_some(),
            C::KeyNotActive,
            "that key is not an active key of `{}`",
            target.id
        );
        ensure!(
            target.active_key_count() > 1,
            C::LastKey,
            "revoking the last active key would lock `{}` out; bind a new key first",
            target.id
        );
        let origin = self.origin.clone();
        for k in target
            .keys
            .iter_mut()
            .filter(|k| k.public_key == r.public_key && k.revoked.is_none())
        {
            // Signatures made before this stay valid: they were checked at their commit.
            k.revoked = Some(origin.clone());
        }
        self.put(&account_key(&target.id), &target)?;
        Ok(())
    }

    fn product_register(&mut self, r: record::ProductRegister) -> R {
        let owner = self.subject_signer()?;
        check_client_id("product_id", &r.product_id)?;
        check_text("name", &r.name, NAME_CHARS_MAX)?;
        if let Some(g) = &r.gtin {
            check_gtin(g)?;
        }
        ensure!(
            (1..=SHELF_LIFE_DAYS_MAX).contains(&r.shelf_life_days),
            C::InvalidField,
            "`shelf_life_days` must be 1-{SHELF_LIFE_DAYS_MAX}"
        );
        let catalogue: VarietyCatalogue = self.get(VARIETIES_KEY)?.unwrap_or(VarietyCatalogue {
            version: 0,
            varieties: vec![],
        });
        ensure!(
            r.variety == VARIETY_OTHER || catalogue.contains(&r.variety),
            C::UnknownVariety,
            "variety `{}` is not in key-variety catalogue v{} (use `{VARIETY_OTHER}` for other foods)",
            r.variety,
            catalogue.version
        );
        let key = product_key(&owner.uscc, &r.product_id);
        ensure!(
            self.get::<Product>(&key)?.is_none(),
            C::ProductExists,
            "product `{}` exists",
            r.product_id
        );
        let p = Product {
            owner: owner.uscc,
            product_id: r.product_id,
            name: r.name,
            gtin: r.gtin,
            variety: r.variety,
            shelf_life_days: r.shelf_life_days,
            registered: self.origin.clone(),
        };
        self.put(&key, &p)?;
        Ok(())
    }

    fn batch_code(&mut self, r: record::BatchCode) -> R {
        let coder = self.subject_signer()?;
        check_client_id("batch_id", &r.batch_id)?;
        check_text("unit", &r.unit, 16)?;
        ensure!(
            (1..=QUANTITY_MAX).contains(&r.quantity),
            C::InvalidField,
            "`quantity` must be 1-{QUANTITY_MAX}"
        );
        let production = parse_date("production_date", &r.production_date)?;
        let expiry = parse_date("expiry_date", &r.expiry_date)?;
        ensure!(
            production <= expiry,
            C::InvalidDates,
            "production_date is after expiry_date"
        );
        let today = self.today()?;
        ensure!(
            production <= today,
            C::InvalidDates,
            "production_date {production} is after today {today}"
        );
        ensure!(
            is_region_code(&r.origin_region),
            C::UnknownRegion,
            "`origin_region` must be a 6-digit region code"
        );
        ensure!(
            r.certificates.len() <= BATCH_REFERENCES_MAX
                && r.rapid_tests.len() <= BATCH_REFERENCES_MAX,
            C::LimitExceeded,
            "at most {BATCH_REFERENCES_MAX} certificates and rapid tests"
        );
        let Some(product) = self.get::<Product>(&product_key(&coder.uscc, &r.product_id))? else {
            return Err(ApplyError::Refused(refuse(
                C::UnknownProduct,
                format!("`{}` has no product `{}`", coder.uscc, r.product_id),
            )));
        };
        let id_key = batch_id_key(&coder.uscc, &r.batch_id);
        ensure!(
            self.get::<String>(&id_key)?.is_none(),
            C::BatchExists,
            "batch `{}` is already coded by `{}`",
            r.batch_id,
            coder.uscc
        );
        let trace = trace_code(&coder.uscc, &r.batch_id);
        ensure!(
            self.get::<Batch>(&batch_key(&trace))?.is_none(),
            C::TraceCodeCollision,
            "trace code `{trace}` is taken"
        );

        let (upstream, upstream_fact) = match r.upstream {
            None => (None, score::UpstreamFact::None),
            Some(Upstream::Registered { subject }) => {
                ensure!(
                    subject != coder.uscc,
                    C::InvalidField,
                    "a subject is not its own upstream"
                );
                let up = self.subject(&subject)?;
                (
                    Some(UpstreamInfo::Registered {
                        uscc: up.uscc.clone(),
                        district: up.district.clone(),
                    }),
                    score::UpstreamFact::Registered {
                        subject: up.uscc,
                        district: up.district,
                    },
                )
            }
            Some(Upstream::Unregistered { name, uscc, region }) => {
                check_text("upstream.name", &name, NAME_CHARS_MAX)?;
                if let Some(u) = &uscc {
                    check_uscc(u)?;
                }
                ensure!(
                    is_region_code(&region),
                    C::UnknownRegion,
                    "`upstream.region` must be a 6-digit region code"
                );
                let in_table = self.spec().district(&region).is_some();
                (
                    Some(UpstreamInfo::Unregistered {
                        name,
                        uscc,
                        region: region.clone(),
                    }),
                    score::UpstreamFact::Unregistered {
                        region,
                        in_region_table: in_table,
                    },
                )
            }
        };
        let mut green = false;
        let mut blocked = false;
        for c in &r.certificates {
            ensure!(
                self.get::<Certificate>(&certificate_key(c))?.is_some(),
                C::UnknownCertificate,
                "no certificate `{c}`"
            );
            green = true;
        }
        for t in &r.rapid_tests {
            let Some(test) = self.get::<RapidTest>(&test_key(t))? else {
                return Err(ApplyError::Refused(refuse(
                    C::UnknownTest,
                    format!("no rapid test `{t}`"),
                )));
            };
            match test.result {
                TestResult::Pass => green = true,
                TestResult::Fail => blocked = true,
            }
        }
        let catalogue: VarietyCatalogue = self.get(VARIETIES_KEY)?.unwrap_or(VarietyCatalogue {
            version: 0,
            varieties: vec![],
        });
        let key_variety = product.variety != VARIETY_OTHER && catalogue.contains(&product.variety);
        let batch = Batch {
            trace_code: trace.clone(),
            coder: coder.uscc.clone(),
            coder_district: coder.district.clone(),
            batch_id: r.batch_id,
            product_id: product.product_id,
            product_name: product.name,
            variety: product.variety,
            key_variety,
            quantity: r.quantity,
            unit: r.unit,
            production_date: r.production_date,
            expiry_date: r.expiry_date,
            origin_region: r.origin_region,
            upstream,
            certificates: r.certificates,
            rapid_tests: r.rapid_tests,
            coded: self.origin.clone(),
            green: green && !blocked,
            blocked,
            recall: None,
            shipments: Vec::new(),
        };
        self.put(&id_key, &trace)?;
        self.put(&batch_key(&trace), &batch)?;
        self.set_holding(&trace, &coder.uscc, batch.quantity)?;
        self.index(batches_by_coder_key(&coder.uscc, &trace), b"");
        score::on_coded(
            self.kv,
            &self.ctx.spec.model,
            &score::CodedFact {
                tx_id: sha_id(&self.origin.tx),
                at_ms: self.ctx.time_ms,
                coder: coder.uscc.clone(),
                coder_district: coder.district.clone(),
                batches: 1,
                key_variety_batches: u64::from(key_variety),
                upstream: upstream_fact,
            },
        )?;
        self.activity(&coder)?;
        Ok(())
    }

    fn shipment_create(&mut self, r: record::ShipmentCreate) -> R {
        let shipper = self.subject_signer()?;
        check_client_id("shipment_id", &r.shipment_id)?;
        ensure!(
            !r.lines.is_empty(),
            C::InvalidField,
            "a shipment has at least one line"
        );
        ensure!(
            r.lines.len() <= SHIPMENT_LINES_MAX,
            C::LimitExceeded,
            "a shipment has at most {SHIPMENT_LINES_MAX} lines"
        );
        ensure!(
            r.to != shipper.uscc,
            C::SelfShipment,
            "a subject does not ship to itself"
        );
        let receiver = self.subject(&r.to)?;
        let skey = shipment_key(&shipper.uscc, &r.shipment_id);
        ensure!(
            self.get::<Shipment>(&skey)?.is_none(),
            C::ShipmentExists,
            "shipment `{}` exists",
            r.shipment_id
        );
        let mut seen = BTreeSet::new();
        let today = self.today()?;
        let shipment_ref = format!("{}/{}", shipper.uscc, r.shipment_id);
        let mut key_variety_lines = 0u64;
        for line in &r.lines {
            ensure!(
                seen.insert(line.trace_code.clone()),
                C::InvalidField,
                "batch `{}` appears twice",
                line.trace_code
            );
            ensure!(
                (1..=QUANTITY_MAX).contains(&line.quantity),
                C::InvalidField,
                "line quantity must be 1-{QUANTITY_MAX}"
            );
            let batch = self.batch(&line.trace_code)?;
            ensure!(
                batch.recall.is_none(),
                C::BatchRecalled,
                "batch `{}` is recalled",
                batch.trace_code
            );
            ensure!(
                !batch.blocked,
                C::BatchBlocked,
                "batch `{}` failed a rapid test",
                batch.trace_code
            );
            let expiry = match parse_date("expiry_date", &batch.expiry_date) {
                Ok(d) => d,
                Err(e) => return Err(LedgerError::Corrupt(e.message).into()),
            };
            ensure!(
                today <= expiry,
                C::BatchExpired,
                "batch `{}` expired on {expiry} (过期阻断)",
                batch.trace_code
            );
            let held = self.holding(&line.trace_code, &shipper.uscc)?;
            ensure!(
                held >= line.quantity,
                C::InsufficientHolding,
                "`{}` holds {held} {} of `{}`, not {}",
                shipper.uscc,
                batch.unit,
                batch.trace_code,
                line.quantity
            );
            self.set_holding(&line.trace_code, &shipper.uscc, held - line.quantity)?;
            if batch.key_variety {
                key_variety_lines += 1;
            }
            self.index(
                batch_shipment_key(&batch.trace_code, self.ctx.height, self.ctx.index),
                shipment_ref.as_bytes(),
            );
        }
        let deadline = score::deadline_ms(
            &self.ctx.spec.model,
            self.ctx.time_ms,
            self.ctx.spec.model.receipt_window_days,
        )?;
        let shipment = Shipment {
            shipper: shipper.uscc.clone(),
            shipment_id: r.shipment_id.clone(),
            to: receiver.uscc.clone(),
            lines: r.lines,
            shipper_district: shipper.district.clone(),
            receiver_district: receiver.district.clone(),
            shipped: self.origin.clone(),
            receipt_deadline_ms: deadline,
            status: ShipmentStatus::Pending,
        };
        score::on_shipped(
            self.kv,
            &self.ctx.spec.model,
            &score::ShippedFact {
                tx_id: sha_id(&self.origin.tx),
                at_ms: self.ctx.time_ms,
                shipper: shipper.uscc.clone(),
                shipper_district: shipper.district.clone(),
                receiver: receiver.uscc.clone(),
                receiver_district: receiver.district.clone(),
                lines: shipment.lines.len() as u64,
                key_variety_lines,
            },
        )?;
        self.put(&skey, &shipment)?;
        self.index(shipments_out_key(&shipper.uscc, &r.shipment_id), b"");
        self.index(
            shipments_in_key(&receiver.uscc, &shipper.uscc, &r.shipment_id),
            b"",
        );
        self.activity(&shipper)?;
        Ok(())
    }

    fn shipment_answer(
        &mut self,
        shipper: String,
        shipment_id: String,
        rejection: Option<(record::RejectionReason, Option<String>)>,
    ) -> R {
        let me = self.subject_signer()?;
        let skey = shipment_key(&shipper, &shipment_id);
        let Some(mut shipment) = self.get::<Shipment>(&skey)? else {
            return Err(ApplyError::Refused(refuse(
                C::UnknownShipment,
                format!("no shipment `{shipment_id}` from `{shipper}`"),
            )));
        };
        ensure!(
            shipment.to == me.uscc,
            C::NotAddressee,
            "shipment `{shipment_id}` is addressed to `{}`",
            shipment.to
        );
        ensure!(
            shipment.status == ShipmentStatus::Pending,
            C::AlreadyAnswered,
            "shipment `{shipment_id}` is already answered"
        );
        let on_time = self.ctx.time_ms < shipment.receipt_deadline_ms;
        let rejected = rejection.is_some();
        // Quantity moves to the receiver only on receipt; a rejection returns it.
        let holder = if rejected {
            shipment.shipper.clone()
        } else {
            me.uscc.clone()
        };
        let mut key_variety_lines = 0u64;
        for line in &shipment.lines {
            let held = self.holding(&line.trace_code, &holder)?;
            let total = held.checked_add(line.quantity).ok_or_else(|| {
                LedgerError::Corrupt(format!("holding overflow on {}", line.trace_code))
            })?;
            self.set_holding(&line.trace_code, &holder, total)?;
            if let Some(b) = self.get::<Batch>(&batch_key(&line.trace_code))? {
                if b.key_variety {
                    key_variety_lines += 1;
                }
            }
        }
        shipment.status = match rejection {
            None => ShipmentStatus::Received {
                origin: self.origin.clone(),
                on_time,
            },
            Some((reason, note)) => ShipmentStatus::Rejected {
                origin: self.origin.clone(),
                on_time,
                reason,
                note,
            },
        };
        score::on_answered(
            self.kv,
            &self.ctx.spec.model,
            &score::AnsweredFact {
                tx_id: sha_id(&self.origin.tx),
                shipment_tx_id: sha_id(&shipment.shipped.tx),
                shipped_at_ms: shipment.shipped.at_ms,
                at_ms: self.ctx.time_ms,
                rejected,
                shipper_district: shipment.shipper_district.clone(),
                receiver: me.uscc.clone(),
                receiver_district: shipment.receiver_district.clone(),
                lines: shipment.lines.len() as u64,
                key_variety_lines,
            },
        )?;
        self.put(&skey, &shipment)?;
        self.activity(&me)?;
        Ok(())
    }

    fn certificate_issue(&mut self, r: record::CertificateIssue) -> R {
        check_client_id("certificate_id", &r.certificate_id)?;
        check_text("product_name", &r.product_name, NAME_CHARS_MAX)?;
        opt_text("unit", &r.unit, 16)?;
        let subject = self.subject(&r.subject)?;
        self.authority_over(&[AccountRole::AgricultureAuthority], &subject.district)?;
        let key = certificate_key(&r.certificate_id);
        ensure!(
            self.get::<Certificate>(&key)?.is_none(),
            C::CertificateExists,
            "certificate `{}` exists",
            r.certificate_id
        );
        if let Some(q) = r.quantity {
            ensure!(
                (1..=QUANTITY_MAX).contains(&q),
                C::InvalidField,
                "`quantity` must be 1-{QUANTITY_MAX}"
            );
        }
        if let Some(trace) = &r.trace_code {
            let mut b = self.batch(trace)?;
            b.certificates.push(r.certificate_id.clone());
            b.green = !b.blocked;
            self.put(&batch_key(trace), &b)?;
        }
        let cert = Certificate {
            certificate_id: r.certificate_id,
            issuer: self.signer.id.clone(),
            subject: subject.uscc,
            product_name: r.product_name,
            trace_code: r.trace_code,
            quantity: r.quantity,
            unit: r.unit,
            issued: self.origin.clone(),
        };
        self.put(&key, &cert)?;
        Ok(())
    }

    fn rapid_test(&mut self, r: record::RapidTestRecord) -> R {
        check_client_id("test_id", &r.test_id)?;
        check_text("item", &r.item, NAME_CHARS_MAX)?;
        opt_text("note", &r.note, NOTE_CHARS_MAX)?;
        let mut b = self.batch(&r.trace_code)?;
        ensure!(
            matches!(
                self.signer.role,
                AccountRole::TestingLab | AccountRole::Inspector
            ),
            C::NoRole,
            "only a testing lab or an inspector records rapid tests"
        );
        let key = test_key(&r.test_id);
        ensure!(
            self.get::<RapidTest>(&key)?.is_none(),
            C::TestExists,
            "rapid test `{}` exists",
            r.test_id
        );
        match r.result {
            TestResult::Pass => b.green = !b.blocked,
            TestResult::Fail => {
                b.blocked = true;
                b.green = false;
            }
        }
        b.rapid_tests.push(r.test_id.clone());
        self.put(&batch_key(&r.trace_code), &b)?;
        let t = RapidTest {
            test_id: r.test_id,
            tester: self.signer.id.clone(),
            trace_code: r.trace_code,
            item: r.item,
            result: r.result,
            note: r.note,
            tested: self.origin.clone(),
        };
        self.put(&key, &t)?;
        Ok(())
    }

    fn finding_record(&mut self, r: record::FindingRecord) -> R {
        check_client_id("finding_id", &r.finding_id)?;
        opt_text("note", &r.note, NOTE_CHARS_MAX)?;
        if let Some(h) = &r.document_hash {
            check_hash_hex("document_hash", h)?;
        }
        ensure!(
            (1..=FINDING_BATCHES_MAX).contains(&r.batches),
            C::InvalidField,
            "`batches` must be 1-{FINDING_BATCHES_MAX}"
        );
        let subject = self.subject(&r.subject)?;
        self.authority_over(&[AccountRole::Inspector], &subject.district)?;
        let key = finding_key(&r.finding_id);
        ensure!(
            self.get::<Finding>(&key)?.is_none(),
            C::FindingExists,
            "finding `{}` exists",
            r.finding_id
        );
        let model = &self.ctx.spec.model;
        let deadline =
            score::deadline_ms(model, self.ctx.time_ms, model.rectification_window_days)?;
        let f = Finding {
            finding_id: r.finding_id.clone(),
            inspector: self.signer.id.clone(),
            subject: subject.uscc.clone(),
            district: subject.district.clone(),
            kind: r.kind,
            batches: r.batches,
            note: r.note,
            document_hash: r.document_hash,
            found: self.origin.clone(),
            rectification_deadline_ms: deadline,
            rectified: None,
        };
        score::on_finding(
            self.kv,
            &self.ctx.spec.model,
            &score::FindingFact {
                tx_id: sha_id(&self.origin.tx),
                at_ms: self.ctx.time_ms,
                subject: subject.uscc.clone(),
                district: subject.district.clone(),
                kind: score_kind(r.kind),
                batches: r.batches,
            },
        )?;
        self.put(&key, &f)?;
        self.index(findings_by_subject_key(&subject.uscc, &r.finding_id), b"");
        Ok(())
    }

    fn finding_rectify(&mut self, r: record::FindingRectify) -> R {
        opt_text("note", &r.note, NOTE_CHARS_MAX)?;
        let key = finding_key(&r.finding_id);
        let Some(mut f) = self.get::<Finding>(&key)? else {
            return Err(ApplyError::Refused(refuse(
                C::UnknownFinding,
                format!("no finding `{}`", r.finding_id),
            )));
        };
        self.authority_over(
            &[AccountRole::Inspector, AccountRole::Regulator],
            &f.district,
        )?;
        ensure!(
            f.kind != FindingKind::OffChain,
            C::NotRectifiable,
            "an off_chain finding has no rectification window"
        );
        ensure!(
            f.rectified.is_none(),
            C::AlreadyRectified,
            "finding `{}` is already rectified",
            r.finding_id
        );
        let in_time = self.ctx.time_ms < f.rectification_deadline_ms;
        f.rectified = Some((self.origin.clone(), in_time));
        // Only `uncoded` findings carry a score term with a rectification window.
        if f.kind == FindingKind::Uncoded {
            score::on_rectified(
                self.kv,
                &self.ctx.spec.model,
                &score::RectifiedFact {
                    tx_id: sha_id(&self.origin.tx),
                    finding_tx_id: sha_id(&f.found.tx),
                    finding_at_ms: f.found.at_ms,
                    at_ms: self.ctx.time_ms,
                    subject: f.subject.clone(),
                    district: f.district.clone(),
                    batches: f.batches,
                },
            )?;
        }
        self.put(&key, &f)?;
        Ok(())
    }

    fn recall(&mut self, r: record::RecallIssue) -> R {
        check_text("reason", &r.reason, NOTE_CHARS_MAX)?;
        let mut b = self.batch(&r.trace_code)?;
        if self.signer.id != b.coder {
            self.regulator_over(&b.coder_district)?;
        }
        ensure!(
            b.recall.is_none(),
            C::AlreadyRecalled,
            "batch `{}` is already recalled",
            b.trace_code
        );
        // Trace forward: everyone the batch was shipped to, and everyone holding it now.
        let mut affected = BTreeSet::new();
        for s in batch_shipments(&*self.kv, &b.trace_code, usize::MAX)? {
            if let Some((shipper, id)) = s.split_once('/') {
                if let Some(sh) = self.get::<Shipment>(&shipment_key(shipper, id))? {
                    affected.insert(sh.to);
                }
            }
        }
        let prefix = format!("hold/{}/", b.trace_code);
        for (k, _) in self
            .kv
            .scan_prefix(Space::State, prefix.as_bytes(), usize::MAX)?
        {
            let holder = String::from_utf8_lossy(&k[prefix.len()..]).into_owned();
            affected.insert(holder);
        }
        affected.remove(&b.coder);
        b.recall = Some(RecallInfo {
            by: self.signer.id.clone(),
            reason: r.reason,
            origin: self.origin.clone(),
            affected: affected.into_iter().collect(),
        });
        self.put(&batch_key(&b.trace_code), &b)?;
        Ok(())
    }

    fn adjustment(&mut self, r: record::AdjustmentRecord) -> R {
        check_text("reason", &r.reason, NOTE_CHARS_MAX)?;
        ensure!(
            self.spec().district(&r.district).is_some(),
            C::UnknownDistrict,
            "district `{}` is not in the region table",
            r.district
        );
        self.regulator_over(&r.district)?;
        let Some(points) = points_hundredths(&r.points) else {
            return Err(ApplyError::Refused(refuse(
                C::InvalidField,
                "`points` must be a number with at most two decimals",
            )));
        };
        ensure!(
            (1..=ADJUSTMENT_HUNDREDTHS_MAX).contains(&points),
            C::InvalidField,
            "`points` must be between 0.01 and {}",
            ADJUSTMENT_HUNDREDTHS_MAX / 100
        );
        score::on_adjustment(
            self.kv,
            &self.ctx.spec.model,
            &score::AdjustmentFact {
                tx_id: sha_id(&self.origin.tx),
                at_ms: self.ctx.time_ms,
                district: r.district.clone(),
                term: match r.term {
                    record::AdjustmentTerm::G => score::Term::G,
                    record::AdjustmentTerm::H => score::Term::H,
                },
                points_hundredths: points,
            },
        )?;
        Ok(())
    }

    fn notarize(&mut self, r: record::DocumentNotarize) -> R {
        check_hash_hex("document_hash", &r.document_hash)?;
        check_text("title", &r.title, NAME_CHARS_MAX)?;
        opt_text("media_type", &r.media_type, 100)?;
        opt_text("note", &r.note, NOTE_CHARS_MAX)?;
        let n = Notarization {
            document_hash: r.document_hash.clone(),
            title: r.title,
            media_type: r.media_type,
            note: r.note,
            account: self.signer.id.clone(),
            origin: self.origin.clone(),
        };
        put(
            self.kv,
            Space::Index,
            &documents_key(&r.document_hash, &self.origin.tx),
            &n,
        )?;
        Ok(())
    }

    fn provincial(&self) -> std::result::Result<(), Refusal> {
        if self.signer.role != AccountRole::Regulator {
            return Err(refuse(
                C::NoRole,
                "only the provincial regulator may record this",
            ));
        }
        if self.signer.jurisdiction != self.spec().province.code {
            return Err(refuse(
                C::NoJurisdiction,
                "only the provincial regulator may record this",
            ));
        }
        Ok(())
    }

    fn key_subjects(&mut self, r: record::KeySubjectsUpdate) -> R {
        self.provincial()?;
        ensure!(
            r.add.len() + r.remove.len() <= CATALOGUE_CHANGES_MAX,
            C::LimitExceeded,
            "at most {CATALOGUE_CHANGES_MAX} changes per update"
        );
        ensure!(
            !r.add.is_empty() || !r.remove.is_empty(),
            C::InvalidField,
            "nothing to add or remove"
        );
        for (list, flag) in [(&r.add, true), (&r.remove, false)] {
            for uscc in list {
                let mut s = self.subject(uscc)?;
                if s.key_subject != flag {
                    s.key_subject = flag;
                    s.updated = Some(self.origin.clone());
                    score::on_key_subject(self.kv, &s.uscc, &s.district, flag, self.ctx.time_ms)?;
                    self.put(&subject_key(uscc), &s)?;
                }
            }
        }
        Ok(())
    }

    fn key_varieties(&mut self, r: record::KeyVarietiesUpdate) -> R {
        self.provincial()?;
        let current: VarietyCatalogue = self.get(VARIETIES_KEY)?.unwrap_or(VarietyCatalogue {
            version: 0,
            varieties: vec![],
        });
        ensure!(
            r.version > current.version,
            C::StaleCatalogue,
            "catalogue version {} is not after {}",
            r.version,
            current.version
        );
        ensure!(
            !r.varieties.is_empty() && r.varieties.len() <= VARIETIES_MAX,
            C::LimitExceeded,
            "a catalogue has 1-{VARIETIES_MAX} varieties"
        );
        let mut codes = BTreeSet::new();
        for v in &r.varieties {
            check_client_id("varieties.code", &v.code)?;
            check_text("varieties.name", &v.name, NAME_CHARS_MAX)?;
            ensure!(
                v.code != VARIETY_OTHER,
                C::InvalidField,
                "`{VARIETY_OTHER}` is reserved"
            );
            ensure!(
                codes.insert(v.code.clone()),
                C::InvalidField,
                "variety `{}` appears twice",
                v.code
            );
        }
        self.put(
            VARIETIES_KEY,
            &VarietyCatalogue {
                version: r.version,
                varieties: r.varieties,
            },
        )?;
        Ok(())
    }
}

fn score_kind(k: FindingKind) -> score::FindingKind {
    match k {
        FindingKind::Uncoded => score::FindingKind::Uncoded,
        FindingKind::OffChain => score::FindingKind::OffChain,
        FindingKind::Other => score::FindingKind::Other,
    }
}

fn sha_id(hex_id: &str) -> [u8; 32] {
    H32::parse(hex_id).map(|h| h.0).unwrap_or([0; 32])
}

#[cfg(test)]
#[path = "machine/tests.rs"]
mod tests;
