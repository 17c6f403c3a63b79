//! Checkpoint co-signing between validators.
//!
//! After a block that grows the transaction tree is applied, each validator
//! signs its checkpoint (if [`ledger::checkpoint::may_sign`] allows: block
//! time near its own clock, never backwards, never two roots for one size —
//! remembered across restarts in `raft_meta`) and sends the signature to the
//! leader. The leader checks it against its ledger and keeps it in a bounded
//! pool; the block producer puts the pool into the next proposal, and the
//! state machine records it (see `ledger::seal`). A signature not yet on the
//! ledger is re-sent every [`RESEND_MS`], so a lost message or a leader
//! change only delays sealing.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use ed25519_dalek::SigningKey;
use ledger::block::Cosignature;
use ledger::checkpoint::{may_sign, SignerState};
use ledger::kv::{ChangeSet, Space};
use ledger::seal::{self, CosignRefusal, COSIGNATURES_PER_BLOCK_MAX};
use ledger::store::{ExtraWrite, CF_RAFT_META};
use ledger::Ledger;
use openraft::network::RPCOption;
use tokio::sync::{watch, Notify};
use tokio::time::Instant;

use crate::network::Transport;
use crate::types::Raft;

/// How often an unrecorded signature is sent again.
pub const RESEND_MS: u64 = 1_000;
/// Checkpoints are signed at most about once per window of this many ms of
/// block time: under load a block is cut every few ms, and sealing every
/// one would cost each validator a signature and a synced write, and every
/// node a verification per signature per block, for evidence nobody waits
/// that closely for. Which blocks get signed is a function of the chain
/// alone (see [`is_window_head`]), so all validators sign the same ones and
/// a quorum forms.
pub const SIGN_WINDOW_MS: i64 = 100;
/// When the chain rests on a tree-growing block that is not a window head
/// for this long, validators sign it anyway: they all see the same head, so
/// a burst's last transactions are sealed without waiting for more traffic.
pub const IDLE_SIGN_MS: u64 = 150;
/// Signatures the leader holds for the next block.
pub const POOL_SIGNATURES_MAX: usize = 4 * COSIGNATURES_PER_BLOCK_MAX;
/// How long a signature delivery may take.
const DELIVERY_TIMEOUT_MS: u64 = 2_000;
const SIGNER_STATE_KEY: &[u8] = b"checkpoint_signer";

/// This validator's signing key and its clock rule. Its name (the note key
/// name) is whatever the validator set in force calls this key, so a node
/// added later by a record signs as soon as the record applies.
#[derive(Clone)]
pub struct ValidatorSigner {
    pub key: SigningKey,
    /// How far a block time may be from this validator's clock for it to sign.
    pub clock_tolerance_ms: i64,
}

impl std::fmt::Debug for ValidatorSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ValidatorSigner")
            .field(
                "public_key",
                &hex::encode(self.key.verifying_key().to_bytes()),
            )
            .finish_non_exhaustive()
    }
}

/// Signatures waiting for the next block, keyed so a re-send replaces.
#[derive(Default)]
pub(crate) struct CosignPool {
    waiting: Mutex<BTreeMap<(u64, String), Cosignature>>,
    pub(crate) arrived: Notify,
}

impl CosignPool {
    fn offer(&self, c: Cosignature) -> bool {
        let mut w = self.waiting.lock().unwrap_or_else(PoisonError::into_inner);
        let key = (c.height, c.name.clone());
        if !w.contains_key(&key) && w.len() >= POOL_SIGNATURES_MAX {
            return false;
        }
        w.insert(key, c);
        drop(w);
        self.arrived.notify_one();
        true
    }

    /// Takes up to one block's worth, lowest heights first.
    pub(crate) fn take(&self) -> Vec<Cosignature> {
        let mut w = self.waiting.lock().unwrap_or_else(PoisonError::into_inner);
        let mut out = Vec::new();
        while out.len() < COSIGNATURES_PER_BLOCK_MAX {
            match w.pop_first() {
                Some((_, c)) => out.push(c),
                None => break,
            }
        }
        out
    }
}

/// Where transports deliver signatures from other validators. Cheap to clone.
#[derive(Clone)]
pub struct CosignInbox {
    pub(crate) pool: Arc<CosignPool>,
    pub(crate) ledger: Arc<Ledger>,
    pub(crate) raft: Raft,
    pub(crate) node_id: u64,
}

impl CosignInbox {
    /// Checks a signature against this node's ledger and pools it for the
    /// next block. Only the leader takes signatures.
    pub fn receive(&self, c: Cosignature) -> Result<(), String> {
        if !crate::membership::is_leader(&self.raft, self.node_id) {
            return Err("not the leader".into());
        }
        match seal::check_cosignature(&self.ledger.store, &self.ledger.spec, &c) {
            Err(e) => Err(format!("reading the ledger: {e}")),
            Ok(Err(CosignRefusal::Duplicate)) => Ok(()),
            Ok(Err(why)) => Err(why.to_string()),
            Ok(Ok(_)) => {
                if self.pool.offer(c) {
                    Ok(())
                } else {
                    Err("signature pool full".into())
                }
            }
        }
    }
}

fn load_signer_state(ledger: &Ledger) -> SignerState {
    ledger
        .store
        .get_raw(CF_RAFT_META, SIGNER_STATE_KEY)
        .ok()
        .flatten()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or_default()
}

fn save_signer_state(ledger: &Ledger, s: &SignerState) -> ledger::Result<()> {
    let value = serde_json::to_vec(s).map_err(|e| ledger::LedgerError::Corrupt(e.to_string()))?;
    ledger.store.commit(
        &ChangeSet::default(),
        &[ExtraWrite {
            cf: CF_RAFT_META,
            key: SIGNER_STATE_KEY.to_vec(),
            value: Some(value),
        }],
    )
}

/// Signs the checkpoint of block `height` if the rules allow, remembering it first.
fn sign_block(
    ledger: &Ledger,
    signer: &ValidatorSigner,
    state: &mut SignerState,
    height: u64,
) -> Option<Cosignature> {
    let header = ledger::history::read_header(&ledger.store, height).ok()??;
    let cp = seal::checkpoint_of(
        &seal::log_identity(&ledger.store, &ledger.spec).ok()?,
        &header,
    )?;
    let set = seal::validator_set_at(&ledger.store, height).ok()?;
    let me = hex::encode(signer.key.verifying_key().to_bytes());
    let name = set.iter().find(|v| v.public_key == me)?.name.clone();
    if let Err(why) = may_sign(
        state,
        &cp,
        crate::clock::now_ms(),
        signer.clock_tolerance_ms,
    ) {
        tracing::debug!(height, %why, "not signing a checkpoint");
        return None;
    }
    let mut next = state.clone();
    next.record(&cp);
    // Remembered before the signature leaves this node, so a crash cannot
    // make it sign a second root for the same size.
    if let Err(e) = save_signer_state(ledger, &next) {
        tracing::error!(error = %e, "could not persist the checkpoint signer state");
        return None;
    }
    *state = next;
    Some(seal::cosign(&cp, &name, &signer.key))
}

fn recorded(ledger: &Ledger, c: &Cosignature) -> bool {
    ledger
        .store
        .get_raw(
            Space::State.cf_name(),
            seal::cosig_key(c.height, &c.name).as_bytes(),
        )
        .ok()
        .flatten()
        .is_some()
}

/// Whether block `height` is the first of its [`SIGN_WINDOW_MS`] window of
/// block time and grows the tree: the blocks every validator signs.
fn is_window_head(ledger: &Ledger, height: u64) -> bool {
    let header = |h| {
        ledger::history::read_header(&ledger.store, h)
            .ok()
            .flatten()
    };
    let (Some(b), Some(prev)) = (header(height), height.checked_sub(1).and_then(header)) else {
        return false;
    };
    b.tx_count > 0 && b.time_ms / SIGN_WINDOW_MS != prev.time_ms / SIGN_WINDOW_MS
}

/// The highest window head in `(after, to]`.
fn last_window_head(ledger: &Ledger, after: u64, to: u64) -> Option<u64> {
    (after.saturating_add(1)..=to)
        .rev()
        .find(|h| is_window_head(ledger, *h))
}

/// The signing loop of one validator: signs the window heads among the
/// tree-growing blocks it applies (`applied` carries the latest one's
/// height), and the latest one when the chain rests on it; delivers each
/// signature until it is on the ledger.
pub(crate) async fn run_signer<T: Transport>(
    inbox: CosignInbox,
    signer: ValidatorSigner,
    transport: Arc<T>,
    mut applied: watch::Receiver<u64>,
    mut stop: watch::Receiver<bool>,
) {
    let ledger = inbox.ledger.clone();
    let mut state = load_signer_state(&ledger);
    // Heights up to `seen` were looked at; `signed_height` was signed last.
    let mut seen = *applied.borrow();
    let mut signed_height = 0u64;
    let mut seen_at = Instant::now();
    let mut pending: Option<(Cosignature, Option<Instant>)> = None;
    loop {
        let resting = seen > signed_height;
        let wait = if resting {
            Duration::from_millis(IDLE_SIGN_MS).saturating_sub(seen_at.elapsed())
        } else {
            Duration::from_millis(RESEND_MS)
        };
        tokio::select! {
            biased;
            _ = stop.changed() => break,
            changed = applied.changed() => if changed.is_err() { break },
            _ = tokio::time::sleep(wait) => {}
        }
        if *stop.borrow() {
            break;
        }
        let latest = *applied.borrow_and_update();
        let mut to_sign = None;
        if latest > seen {
            let (from, l) = (seen.max(signed_height), ledger.clone());
            let head = crate::spawn_blocking(move || last_window_head(&l, from, latest))
                .await
                .ok()
                .flatten();
            to_sign = head.filter(|h| *h > signed_height);
            seen = latest;
            seen_at = Instant::now();
        } else if seen > signed_height && seen_at.elapsed() >= Duration::from_millis(IDLE_SIGN_MS) {
            to_sign = Some(seen);
        }
        if let Some(height) = to_sign {
            signed_height = height;
            let l = ledger.clone();
            let s = signer.clone();
            let mut st = state.clone();
            let signed = crate::spawn_blocking(move || {
                let c = sign_block(&l, &s, &mut st, height);
                (c, st)
            })
            .await;
            if let Ok((Some(c), st)) = signed {
                state = st;
                pending = Some((c, None));
            }
        }
        let Some((c, sent_at)) = &mut pending else {
            continue;
        };
        if recorded(&ledger, c) {
            pending = None;
            continue;
        }
        if sent_at.is_some_and(|t| t.elapsed() < Duration::from_millis(RESEND_MS)) {
            continue;
        }
        *sent_at = Some(Instant::now());
        deliver(&inbox, transport.as_ref(), c.clone()).await;
    }
}

async fn deliver<T: Transport>(inbox: &CosignInbox, transport: &T, c: Cosignature) {
    let (leader, node) = {
        let m = inbox.raft.metrics();
        let m = m.borrow();
        let Some(leader) = m.current_leader else {
            return;
        };
        let node = m.membership_config.membership().get_node(&leader).cloned();
        (leader, node)
    };
    let height = c.height;
    let result = if leader == inbox.node_id {
        inbox.receive(c)
    } else {
        let Some(node) = node else {
            return;
        };
        let option = RPCOption::new(Duration::from_millis(DELIVERY_TIMEOUT_MS));
        transport.cosign(leader, &node, c, option).await
    };
    if let Err(why) = result {
        tracing::debug!(height, leader, %why, "checkpoint signature not delivered; will retry");
    }
}
