//! SCITT transparent statements over HTTP (`ledger::scitt`): a record's
//! signed statement with a quorum of validators' COSE receipts.
//!
//! A receipt signature covers a sealed checkpoint's root, not a record, so
//! each validator signs once per checkpoint; the node building a statement
//! signs its own and asks the other validators in force for theirs
//! (`GET /v1/scitt/receipt-signature/{height}`), checks each against the
//! validator's key, and keeps them in a bounded book.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::Duration;

use axum::extract::{Path, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use ed25519_dalek::VerifyingKey;
use serde::{Deserialize, Serialize};

use ledger::checkpoint::Checkpoint;
use ledger::hash::H32;
use ledger::scitt::{self, ReceiptSignature};
use ledger::seal;
use ledger::spec::Validator;

use crate::{ApiCode, ApiError, ApiResult, AppState};

/// Receipt signatures kept, by (checkpoint height, validator).
pub const RECEIPT_SIGNATURES_KEPT: usize = 4_096;
/// How long a statement waits for another validator's receipt signature.
pub const PEER_WAIT_MS: u64 = 2_000;

/// The path a validator serves its receipt signature for a sealed
/// checkpoint on.
pub fn receipt_signature_path(height: u64) -> String {
    format!("/v1/scitt/receipt-signature/{height}")
}

/// Verified receipt signatures, the newest heights kept.
#[derive(Default)]
pub struct ReceiptBook {
    by: Mutex<BTreeMap<(u64, String), [u8; 64]>>,
}

impl ReceiptBook {
    fn get(&self, height: u64, validator: &str) -> Option<[u8; 64]> {
        let by = self.by.lock().unwrap_or_else(|p| p.into_inner());
        by.get(&(height, validator.to_string())).copied()
    }

    fn put(&self, height: u64, validator: &str, sig: [u8; 64]) {
        let mut by = self.by.lock().unwrap_or_else(|p| p.into_inner());
        by.insert((height, validator.to_string()), sig);
        while by.len() > RECEIPT_SIGNATURES_KEPT {
            by.pop_first();
        }
    }
}

/// A validator's answer on [`receipt_signature_path`].
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReceiptSignatureAnswer {
    pub validator: String,
    pub height: u64,
    pub tree_size: u64,
    pub root: H32,
    /// Ed25519 over the receipt's `Sig_structure`, base64.
    pub signature: String,
}

/// The sealed checkpoint at `height`, with the validator set in force there.
fn sealed(state: &AppState, height: u64) -> ApiResult<(Checkpoint, Vec<Validator>, String)> {
    let view = state.ledger.store.view();
    if !seal::is_sealed(&view, height)? {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            ApiCode::NotYetSealed,
            format!("the checkpoint of block {height} is not sealed on this node"),
        ));
    }
    let log = seal::log_identity(&view, &state.ledger.spec)?;
    let header = ledger::history::read_header(&view, height)?
        .ok_or_else(|| ApiError::not_found("block", &height.to_string()))?;
    let cp = seal::checkpoint_of(&log, &header)
        .ok_or_else(|| ApiError::internal(format!("sealed block {height} has no checkpoint")))?;
    Ok((cp, seal::validator_set_at(&view, height)?, log.origin))
}

/// `GET /v1/scitt/receipt-signature/{height}`: this validator's receipt
/// signature over the root of the sealed checkpoint of block `height`.
pub(crate) async fn receipt_signature(
    State(state): State<AppState>,
    Path(height): Path<String>,
) -> ApiResult<Json<ReceiptSignatureAnswer>> {
    let height: u64 = height.parse().map_err(|_| {
        ApiError::bad_request(ApiCode::InvalidHeight, "a height is a decimal number")
    })?;
    let (cp, set, origin) = sealed(&state, height)?;
    let signer = state
        .report_signer
        .as_ref()
        .filter(|s| set.iter().any(|v| v.name == s.name))
        .ok_or_else(|| {
            ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                ApiCode::NotAValidator,
                format!("this node is not a validator in force at block {height}"),
            )
        })?;
    let sig = own_signature(&state, signer, height, &origin, &cp.root);
    Ok(Json(ReceiptSignatureAnswer {
        validator: signer.name.clone(),
        height,
        tree_size: cp.tree_size,
        root: cp.root,
        signature: B64.encode(sig),
    }))
}

/// This validator's receipt signature over `root`, from the book or signed
/// now and kept.
fn own_signature(
    state: &AppState,
    signer: &crate::ReportSigner,
    height: u64,
    origin: &str,
    root: &H32,
) -> [u8; 64] {
    if let Some(s) = state.receipts.get(height, &signer.name) {
        return s;
    }
    let s = scitt::sign_receipt(&signer.key, origin, &signer.name, root);
    state.receipts.put(height, &signer.name, s);
    s
}

/// Asks validator `v` for its receipt signature and checks it.
async fn ask(
    state: &AppState,
    v: &Validator,
    height: u64,
    origin: &str,
    root: &H32,
) -> Result<[u8; 64], String> {
    let fetch = state.sink.fetch(v.node_id, receipt_signature_path(height));
    let (status, body) = tokio::time::timeout(Duration::from_millis(PEER_WAIT_MS), fetch)
        .await
        .map_err(|_| format!("no answer within {PEER_WAIT_MS} ms"))??;
    if status != 200 {
        return Err(format!("answered {status}"));
    }
    let a: ReceiptSignatureAnswer =
        ledger::strict_json::from_slice(&body).map_err(|e| e.to_string())?;
    let sig: [u8; 64] = B64
        .decode(&a.signature)
        .ok()
        .and_then(|s| s.try_into().ok())
        .ok_or("the signature is not 64 bytes of base64")?;
    let key = VerifyingKey::from_bytes(&seal::public_key(v).map_err(|e| e.to_string())?)
        .map_err(|e| e.to_string())?;
    if a.validator != v.name
        || !scitt::receipt_signature_verifies(&key, origin, &v.name, root, &sig)
    {
        return Err("its signature does not verify over the checkpoint's root".into());
    }
    Ok(sig)
}

/// Receipt signatures for the sealed checkpoint of block `height` by the
/// validators of `set`, in set order: this node's own, the book's, and the
/// other validators' answers (asked at once, each within [`PEER_WAIT_MS`]).
async fn receipt_signatures(
    state: &AppState,
    height: u64,
    cp: &Checkpoint,
    set: &[Validator],
    origin: &str,
) -> Vec<ReceiptSignature> {
    let mut asks = Vec::new();
    for v in set {
        if let Some(s) = state.report_signer.as_ref().filter(|s| s.name == v.name) {
            own_signature(state, s, height, origin, &cp.root);
            continue;
        }
        if state.receipts.get(height, &v.name).is_some() {
            continue;
        }
        let (state, v, origin, root) = (state.clone(), v.clone(), origin.to_string(), cp.root);
        asks.push(tokio::spawn(async move {
            let got = ask(&state, &v, height, &origin, &root).await;
            match got {
                Ok(sig) => state.receipts.put(height, &v.name, sig),
                Err(why) => tracing::info!(
                    validator = %v.name,
                    height,
                    "no receipt signature: {why}"
                ),
            }
        }));
    }
    for a in asks {
        let _ = a.await;
    }
    set.iter()
        .filter_map(|v| {
            state
                .receipts
                .get(height, &v.name)
                .map(|signature| ReceiptSignature {
                    validator: v.name.clone(),
                    signature,
                })
        })
        .collect()
}

/// `GET /v1/evidence/{tx_id}/scitt`: the record as a SCITT transparent
/// statement (`application/cose`), with receipts by at least a quorum of
/// the validators in force at its bundle's checkpoint.
pub(crate) async fn statement(
    State(state): State<AppState>,
    caller: crate::auth::Caller,
    Path(id): Path<String>,
) -> ApiResult<Response> {
    let b = crate::evidence::bundle_of(&state, &id)?;
    crate::evidence::party_or_regulator(&state, &caller, &b)?;
    let height = b
        .headers
        .last()
        .map(|h| h.height)
        .ok_or_else(|| ApiError::internal("a bundle without headers"))?;
    let (cp, set, origin) = sealed(&state, height)?;
    let sigs = receipt_signatures(&state, height, &cp, &b.validators.set, &origin).await;
    let quorum = b.validators.quorum as usize;
    if sigs.len() < quorum {
        return Err(ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            ApiCode::ReceiptsUnavailable,
            format!(
                "receipt signatures from {} of the {} validators in force, {quorum} needed; retry shortly",
                sigs.len(),
                set.len()
            ),
        ));
    }
    let bytes = scitt::transparent_statement(&b, &origin, &sigs).map_err(ApiError::internal)?;
    Ok(([(header::CONTENT_TYPE, scitt::MEDIA_TYPE)], bytes).into_response())
}
