//! ZSL's HTTP API (axum): submission, lookups, trace, scores, and the small
//! embedded web page.
//!
//! Owns: URL layout, JSON shapes of answers, mapping refusals to HTTP status.
//! May depend on `ledger` for reads and on a [`TxSink`] for writes; it does
//! not know Raft or libp2p (the node wires the consensus crate in as a sink).

// A dependency this target does not use is an error under clippy's
// `-D warnings` (scripts/test); test targets see dev-dependencies too.
#![cfg_attr(not(test), warn(unused_crate_dependencies))]

pub mod access;
pub mod auth;
pub mod cosignatures;
mod error;
mod evidence;
pub mod httpsig;
pub mod in_flight;
pub mod scitt;
pub use evidence::public_url;
pub mod limits;
mod metrics;
mod openapi;
pub mod read;
pub mod serve;
mod ui;
mod views;
pub mod witness;

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{DefaultBodyLimit, Path, Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

pub use error::{refusal_status, ApiCode, ApiError, ApiResult};
use ledger::{history, query, record, Ledger, SignedTx, TxFrame, H32};
pub use read::{ReadIndexError, ReadIndexFuture, CONSISTENCY_HEADER, READ_INDEX_PATH};

/// Largest request body: a batch of transactions.
pub const REQUEST_BYTES_MAX: usize = 4 << 20;
/// Transactions in one `POST /v1/txs`.
pub const BATCH_TXS_MAX: usize = 1_000;
/// How long `?wait=commit` waits before answering 504.
pub const COMMIT_WAIT_MS: u64 = 30_000;

/// What became of a submitted transaction.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum SubmitOutcome {
    Committed {
        tx_id: String,
        height: u64,
        index: u32,
        leaf_index: u64,
    },
    Refused {
        tx_id: Option<String>,
        code: String,
        message: String,
    },
}

#[derive(Debug, Clone, thiserror::Error)]
pub enum SinkError {
    #[error("the admission queue is full; retry shortly")]
    Busy,
    #[error("this node is not the leader (leader: {leader:?})")]
    NotLeader { leader: Option<u64> },
    #[error("the node is shutting down")]
    Closed,
}

pub type OutcomeFuture = Pin<Box<dyn Future<Output = Option<SubmitOutcome>> + Send>>;

/// A forwarded request's answer: the leader's HTTP status and JSON body, or
/// why the leader could not be asked.
pub type ForwardFuture = Pin<Box<dyn Future<Output = Result<(u16, Bytes), String>> + Send>>;

/// Marks a submission a follower forwarded to the leader. A node that gets
/// one and does not lead answers `not_leader` instead of forwarding again,
/// so a request makes at most one hop while leadership moves.
pub const FORWARDED_HEADER: &str = "x-zsl-forwarded";

/// Consensus as the API sees it.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ClusterInfo {
    pub node_id: u64,
    pub leader: Option<u64>,
    pub term: u64,
    pub commit_index: Option<u64>,
    pub last_applied: Option<u64>,
    pub role: String,
}

pub trait TxSink: Send + Sync + 'static {
    /// Queues a transaction (wire bytes); the future resolves when it is committed or refused.
    fn submit(&self, wire: Vec<u8>) -> Result<OutcomeFuture, SinkError>;
    /// Queues transactions that must stay together and in order (one
    /// request's); one result per transaction. The default submits each.
    fn submit_all(&self, wires: Vec<Vec<u8>>) -> Vec<Result<OutcomeFuture, SinkError>> {
        wires.into_iter().map(|w| self.submit(w)).collect()
    }
    fn cluster(&self) -> ClusterInfo;
    /// Posts `body` to `path_and_query` on `leader`'s API (with
    /// [`FORWARDED_HEADER`]) and brings back its answer. Used when `submit`
    /// says this node does not lead, so a client need not know who does.
    /// The default cannot forward.
    fn forward(&self, leader: u64, path_and_query: String, body: Vec<u8>) -> ForwardFuture {
        let _ = (path_and_query, body);
        Box::pin(async move { Err(format!("this node cannot forward to node {leader}")) })
    }
    /// GETs `path_and_query` from `node`'s API (with [`FORWARDED_HEADER`])
    /// and brings back its answer: how a statement asks the other
    /// validators for their receipt signatures. The default cannot reach
    /// other nodes.
    fn fetch(&self, node: u64, path_and_query: String) -> ForwardFuture {
        let _ = path_and_query;
        Box::pin(async move { Err(format!("this node cannot reach node {node}")) })
    }
    /// Extra `/metrics` lines only the node knows (peers, queue depth), in
    /// the Prometheus text format. The default has none.
    fn metrics_text(&self) -> String {
        String::new()
    }
    /// Read index on this node if it leads (see [`read`]): confirms
    /// leadership with a quorum, waits until this node applied the commit
    /// index, and returns it. The default has no cluster: what it applied
    /// is all there is.
    fn read_index(&self) -> ReadIndexFuture {
        let applied = self.cluster().last_applied;
        Box::pin(async move { Ok(applied) })
    }
    /// Asks `leader` for its read index ([`READ_INDEX_PATH`] on its API).
    /// The default cannot reach other nodes.
    fn leader_read_index(&self, leader: u64) -> ReadIndexFuture {
        Box::pin(async move {
            Err(ReadIndexError::Unavailable(format!(
                "this node cannot ask node {leader}"
            )))
        })
    }
}

#[derive(Clone)]
pub struct AppState {
    pub ledger: Arc<Ledger>,
    pub sink: Arc<dyn TxSink>,
    /// Where people reach this API (`[api] public_url`, checked by
    /// [`evidence::public_url`]); empty: links stay relative.
    pub public_url: String,
    /// What this node took and has not seen decided (`pending` lookups).
    pub in_flight: Arc<in_flight::InFlight>,
    /// Signed-request replay window and web sessions ([`auth`]).
    pub guard: Arc<auth::Guard>,
    /// The validator whose key signs credit reports; `None`: this node
    /// serves none (it is no validator).
    pub report_signer: Option<Arc<ReportSigner>>,
    /// This node as a witness of other chains (`[witness]`); `None`: not one.
    pub witness: Option<Arc<witness::WitnessService>>,
    /// Witness cosignatures collected for this chain's checkpoints.
    pub cosignatures: Option<Arc<cosignatures::CosignatureBook>>,
    /// Verified receipt signatures for SCITT statements ([`scitt`]).
    pub receipts: Arc<scitt::ReceiptBook>,
}

impl AppState {
    /// The state of a node's API over `ledger` and `sink`, with relative
    /// links, no report signer, and this node's own in-flight set and
    /// signature guard (state a caller never shares or sets).
    pub fn new(ledger: Arc<Ledger>, sink: Arc<dyn TxSink>) -> Self {
        Self {
            ledger,
            sink,
            public_url: String::new(),
            in_flight: Default::default(),
            guard: Default::default(),
            report_signer: None,
            witness: None,
            cosignatures: None,
            receipts: Default::default(),
        }
    }
}

/// A validator's name and key, for signing credit reports
/// ([`ledger::credit_report`]).
pub struct ReportSigner {
    pub name: String,
    pub key: ed25519_dalek::SigningKey,
}

pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/", get(ui::index))
        .route("/t/{code}", get(ui::trace_page))
        .route("/s/{uscc}", get(ui::page))
        .route("/dashboard", get(ui::page))
        .route("/explorer", get(ui::page))
        .route("/verify", get(ui::verify_page))
        .route("/assets/{file}", get(ui::asset))
        .route("/v1/qr", get(views::qr))
        .route("/v1/views/blocks", get(views::blocks))
        .route("/v1/views/blocks/{height}/txs", get(views::block_txs))
        .route("/v1/views/daily", get(views::daily))
        .route("/v1/views/alerts", get(views::alerts))
        .route("/v1/views/subjects/{uscc}/portrait", get(views::portrait))
        .route(
            "/v1/views/subjects/{uscc}/credit-report",
            get(views::credit_report),
        )
        .route("/metrics", get(metrics::render))
        .route("/openapi.json", get(openapi::openapi_json))
        .route("/docs", get(openapi::docs_page))
        .route("/docs/{file}", get(openapi::docs_asset))
        .route("/v1/status", get(status))
        .route("/v1/genesis", get(genesis))
        .route("/v1/tx", post(submit_one))
        .route("/v1/txs", post(submit_many))
        .route("/v1/tx/{id}", get(tx_status))
        .route("/v1/blocks/latest", get(block_latest))
        .route("/v1/blocks/{height}", get(block_at))
        .route("/v1/accounts/{id}", get(account))
        .route("/v1/subjects/{uscc}", get(subject))
        .route("/v1/batches/{trace_code}", get(batch))
        .route("/v1/shipments/{shipper}/{shipment_id}", get(shipment))
        .route("/v1/findings/{finding_id}", get(finding))
        .route("/v1/documents/{hash}", get(documents))
        .route("/v1/evidence/{tx_id}", get(evidence::bundle))
        .route(
            "/v1/evidence/{tx_id}/certificate",
            get(evidence::certificate),
        )
        .route("/v1/evidence/{tx_id}/scitt", get(scitt::statement))
        .route("/v1/trace/{code}/evidence", get(evidence::trace_bundle))
        .route("/v1/epcis/events", get(evidence::epcis_events))
        .route(
            "/v1/scitt/receipt-signature/{height}",
            get(scitt::receipt_signature),
        )
        .route("/v1/checkpoints/latest", get(evidence::latest))
        .route("/v1/checkpoints/{height}", get(evidence::at))
        .route("/v1/proofs/consistency", get(evidence::consistency))
        .route("/v1/notarize", post(evidence::notarize))
        .route("/v1/notarize/hash", post(evidence::hash_upload))
        .route("/v1/catalogue/varieties", get(varieties))
        .route("/v1/regions", get(regions))
        .route("/v1/schemas", get(record_schemas))
        .route("/v1/schemas/{kind}", get(record_schema))
        .route("/v1/trace/{code}", get(trace))
        .route("/v1/scores", get(scores))
        .route("/v1/scores/{district}", get(score_detail))
        .route("/v1/scores/{district}/evidence", get(score_evidence))
        .route(read::READ_INDEX_PATH, get(read::read_index_endpoint))
        .route("/v1/sessions", post(sign_in).delete(sign_out))
        .route("/witness/add-checkpoint", post(witness::add_checkpoint))
        .route("/witness/{origin_hash}/checkpoint", get(witness::latest))
        // Each route's rule (access.rs), once the caller is known.
        .route_layer(axum::middleware::from_fn(access::enforce))
        .fallback(not_found)
        .layer(DefaultBodyLimit::max(REQUEST_BYTES_MAX))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            auth::identify,
        ))
        // GETs with `consistency=linearizable` wait for the read index first.
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            read::consistency,
        ))
        .with_state(state)
}

/// `POST /v1/sessions`: a signed request by an account opens a session
/// (the web UI signs in once with its key file, then sends the token).
async fn sign_in(
    State(state): State<AppState>,
    caller: auth::Caller,
    signed_by: Option<axum::Extension<auth::SignedBy>>,
) -> ApiResult<Json<Value>> {
    let auth::Caller::Account {
        id,
        role,
        jurisdiction,
    } = &caller
    else {
        return Err(access::denied(&caller, "a session (accounts only)"));
    };
    let (account, role, jurisdiction) = (id.clone(), *role, jurisdiction.clone());
    // A session is opened by a signed request, never by another session.
    let Some(axum::Extension(auth::SignedBy(keyid))) = signed_by else {
        return Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            ApiCode::AuthenticationRequired,
            "sign in with a signed request (RFC 9421), not a session token",
        ));
    };
    let (token, expires_s) = state.guard.open_session(&keyid)?;
    Ok(Json(json!({
        "token": token,
        "expires_at_ms": expires_s * 1000,
        "account": account,
        "role": role,
        "jurisdiction": jurisdiction,
    })))
}

/// `DELETE /v1/sessions`: ends the session of the request's bearer token.
async fn sign_out(State(state): State<AppState>, headers: HeaderMap) -> Json<Value> {
    if let Some(t) = headers
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
    {
        state.guard.close_session(t);
    }
    Json(json!({"status": "signed_out"}))
}

async fn not_found() -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        ApiCode::NotFound,
        "no such endpoint; see /v1/status",
    )
}

fn body_bytes(body: Result<Bytes, BytesRejection>) -> ApiResult<Bytes> {
    body.map_err(|e| {
        if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::body_too_large()
        } else {
            ApiError::bad_request(ApiCode::MalformedRequest, e.body_text())
        }
    })
}

/// Submissions are JSON and say so: `Content-Type: application/json`,
/// with at most a `charset=utf-8` parameter. Anything else (`text/plain`,
/// a form, none) is `415 unsupported_media_type`, so a proxy or browser form
/// cannot smuggle a body the client did not mean as JSON.
fn require_json(headers: &HeaderMap) -> ApiResult<()> {
    let value = headers
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let mut parts = value.split(';').map(str::trim);
    let essence_ok = parts
        .next()
        .is_some_and(|t| t.eq_ignore_ascii_case("application/json"));
    let params_ok = parts.all(|p| {
        p.split_once('=').is_some_and(|(k, v)| {
            k.trim().eq_ignore_ascii_case("charset")
                && v.trim().trim_matches('"').eq_ignore_ascii_case("utf-8")
        })
    });
    if essence_ok && params_ok {
        return Ok(());
    }
    Err(ApiError::new(
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        ApiCode::UnsupportedMediaType,
        format!(
            "send `Content-Type: application/json`, not `{}`",
            value.chars().take(60).collect::<String>()
        ),
    ))
}

#[derive(Deserialize)]
struct WaitQuery {
    wait: Option<String>,
}

impl WaitQuery {
    fn commit(&self) -> ApiResult<bool> {
        match self.wait.as_deref() {
            None | Some("none") => Ok(false),
            Some("commit") => Ok(true),
            Some(other) => Err(ApiError::bad_request(
                ApiCode::InvalidQuery,
                format!("wait must be `commit` or `none`, not `{other}`"),
            )),
        }
    }
}

/// The ids a record creates that its body does not spell out: a coding's
/// trace code, a subject's subject code, a shipment's and a product's key
/// (what `/v1/batches/…`, `/v1/trace/…` and `/v1/shipments/…` take).
fn created_ids(account: &str, record: &record::Record) -> Option<Value> {
    use record::Record as R;
    Some(match record {
        R::BatchCode(r) => {
            let code = ledger::machine::trace_code(account, &r.batch_id);
            json!({"trace_code": code, "batch": format!("/v1/batches/{code}")})
        }
        R::ShipmentCreate(r) => json!({
            "shipment": {"shipper": account, "shipment_id": r.shipment_id},
            "url": format!("/v1/shipments/{account}/{}", r.shipment_id),
        }),
        R::SubjectRegister(r) => json!({
            "subject_code": ledger::machine::subject_code(&r.uscc),
            "subject": format!("/v1/subjects/{}", r.uscc),
        }),
        R::ProductRegister(r) => {
            json!({"product": {"subject": account, "product_id": r.product_id}})
        }
        _ => return None,
    })
}

/// Adds `created` (see [`created_ids`]) to an answer object.
fn with_created(mut answer: Value, created: &Option<Value>) -> Value {
    if let (Some(c), Some(o)) = (created, answer.as_object_mut()) {
        o.insert("created".into(), c.clone());
    }
    answer
}

/// An outcome as JSON; a committed one with the ids its record created.
fn outcome_json(outcome: &SubmitOutcome, created: &Option<Value>) -> Value {
    let answer = serde_json::to_value(outcome).unwrap_or(Value::Null);
    match outcome {
        SubmitOutcome::Committed { .. } => with_created(answer, created),
        SubmitOutcome::Refused { .. } => answer,
    }
}

/// Checks what can be checked before consensus: envelope, fields, chain,
/// and replay of a committed id; the signature too when the client does not
/// wait for commit (`check_signature`), so that 202 means well-signed. A
/// client that waits gets the leader's verdict: its block producer verifies
/// every signature once, in batches on every core. The state rules run at commit.
/// Answers the ids the record creates ([`created_ids`]).
fn admit(state: &AppState, tx: &TxFrame, check_signature: bool) -> Result<Option<Value>, ApiError> {
    let checked = admit_checks(state, tx, check_signature);
    if let Err(e) = &checked {
        metrics::refused_at_admission(e.code);
    }
    checked
}

fn admit_checks(
    state: &AppState,
    tx: &TxFrame,
    check_signature: bool,
) -> Result<Option<Value>, ApiError> {
    let id = Some(tx.id_hex());
    let (common, record) = record::parse_canonical(tx.body_json())
        .map_err(|r| ApiError::from(r).with_tx(id.clone()))?;
    if check_signature {
        tx.verify_signature()
            .map_err(|r| ApiError::from(r).with_tx(id.clone()))?;
    }
    if common.chain_id != state.ledger.spec.chain_id {
        return Err(ApiError::from(ledger::Refusal::new(
            ledger::RefusalCode::WrongChain,
            format!("this is chain `{}`", state.ledger.spec.chain_id),
        ))
        .with_tx(id));
    }
    if matches!(tx.signer, ledger::signing::SignerKey::Sm2(_)) && !state.ledger.spec.sm2_accounts {
        // The state machine would refuse it too (no SM2 key can be bound
        // here); saying why up front spares an ERP developer the search.
        return Err(ApiError::from(ledger::Refusal::new(
            ledger::RefusalCode::KeyNotActive,
            "this chain does not accept SM2 signatures (its genesis has no `sm2_accounts`)",
        ))
        .with_tx(id));
    }
    if history::read_tx(&state.ledger.store, &tx.id)?.is_some() {
        return Err(ApiError::from(ledger::Refusal::new(
            ledger::RefusalCode::Replayed,
            "transaction is already committed",
        ))
        .with_tx(id));
    }
    Ok(created_ids(&common.account, &record))
}

fn sink_error(e: SinkError, tx_id: Option<String>) -> ApiError {
    match e {
        SinkError::Busy => ApiError::unavailable(ApiCode::Busy, e.to_string()),
        SinkError::NotLeader { .. } => ApiError::unavailable(ApiCode::NotLeader, e.to_string()),
        SinkError::Closed => ApiError::unavailable(ApiCode::ShuttingDown, e.to_string()),
    }
    .with_tx(tx_id)
}

fn outcome_response(outcome: SubmitOutcome, created: &Option<Value>) -> Response {
    match &outcome {
        SubmitOutcome::Committed { .. } => {
            (StatusCode::OK, Json(outcome_json(&outcome, created))).into_response()
        }
        SubmitOutcome::Refused {
            code,
            tx_id,
            message,
        } => {
            let status = serde_json::from_value::<ledger::RefusalCode>(Value::String(code.clone()))
                .map(refusal_status)
                .unwrap_or(StatusCode::UNPROCESSABLE_ENTITY);
            let body = json!({"status": "refused", "code": code, "message": message, "retryable": false, "tx_id": tx_id});
            (status, Json(body)).into_response()
        }
    }
}

async fn wait_outcome(fut: OutcomeFuture, tx_id: &str) -> ApiResult<SubmitOutcome> {
    match tokio::time::timeout(Duration::from_millis(COMMIT_WAIT_MS), fut).await {
        Ok(Some(o)) => Ok(o),
        Ok(None) => Err(ApiError::unavailable(
            ApiCode::OutcomeLost,
            "the node stopped before the transaction was decided; query /v1/tx/{id}",
        )
        .with_tx(Some(tx_id.into()))),
        Err(_) => Err(ApiError::new(
            StatusCode::GATEWAY_TIMEOUT,
            ApiCode::CommitTimeout,
            "not committed in time; query /v1/tx/{id} later",
        )
        .with_tx(Some(tx_id.into()))),
    }
}

/// The leader to forward to, if `e` says another node leads and this
/// request has not been forwarded already.
fn forward_target(e: &SinkError, headers: &HeaderMap) -> Option<u64> {
    match e {
        SinkError::NotLeader { leader: Some(l) } if !headers.contains_key(FORWARDED_HEADER) => {
            Some(*l)
        }
        _ => None,
    }
}

fn wait_suffix(wait: bool) -> &'static str {
    if wait {
        "?wait=commit"
    } else {
        ""
    }
}

/// Relays `body` to the leader's `path` and answers with what it answered.
async fn forward_one(
    state: &AppState,
    leader: u64,
    path_and_query: String,
    body: Vec<u8>,
    tx_id: String,
) -> ApiResult<Response> {
    match state.sink.forward(leader, path_and_query, body).await {
        Ok((status, body)) => {
            let status = StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_GATEWAY);
            Ok((
                status,
                [(axum::http::header::CONTENT_TYPE, "application/json")],
                body,
            )
                .into_response())
        }
        Err(why) => Err(ApiError::unavailable(
            ApiCode::LeaderUnreachable,
            format!("node {leader} leads but did not answer: {why}; retry, or query /v1/tx/{{id}}"),
        )
        .with_tx(Some(tx_id))),
    }
}

async fn submit_one(
    State(state): State<AppState>,
    Query(q): Query<WaitQuery>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult<Response> {
    let wait = q.commit()?;
    require_json(&headers)?;
    let bytes = body_bytes(body)?;
    let tx = TxFrame::from_wire(&bytes).inspect_err(|r| {
        metrics::refused_at_admission(r.code.as_str());
    })?;
    let created = admit(&state, &tx, !wait)?;
    let id = tx.id_hex();
    // Consensus takes the exact signed bytes: nothing is re-serialised or re-canonicalised.
    let fut = match state.sink.submit(tx.to_bytes()) {
        Ok(fut) => metrics::observe(fut, state.in_flight.track(tx.id)),
        Err(e) => match forward_target(&e, &headers) {
            Some(leader) => {
                let path = format!("/v1/tx{}", wait_suffix(wait));
                return forward_one(&state, leader, path, tx.wire_json(), id).await;
            }
            None => return Err(sink_error(e, Some(id))),
        },
    };
    if !wait {
        // Admitted, not yet committed: the client polls /v1/tx/{id} or uses ?wait=commit.
        return Ok((
            StatusCode::ACCEPTED,
            Json(with_created(
                json!({"status": "admitted", "tx_id": id}),
                &created,
            )),
        )
            .into_response());
    }
    Ok(outcome_response(wait_outcome(fut, &id).await?, &created))
}

// Long because one request's items go through admission, submission in
// order and the commit wait together, and each item's answer keeps its index.
async fn submit_many(
    State(state): State<AppState>,
    Query(q): Query<WaitQuery>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult<Response> {
    let wait = q.commit()?;
    require_json(&headers)?;
    let bytes = body_bytes(body)?;
    let items = match ledger::signing::parse_strict(&bytes, ledger::RefusalCode::MalformedTx)? {
        Value::Array(items) => items,
        _ => {
            return Err(ApiError::bad_request(
                ApiCode::MalformedRequest,
                "expected a JSON array of transactions",
            ))
        }
    };
    if items.len() > BATCH_TXS_MAX {
        return Err(ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            ApiCode::TooManyTxs,
            format!(
                "{} transactions; at most {BATCH_TXS_MAX} per request",
                items.len()
            ),
        ));
    }
    let mut pending: Vec<(usize, String, Option<Value>, OutcomeFuture)> = Vec::new();
    let mut results: Vec<Value> = vec![Value::Null; items.len()];
    // Admission first, then the admitted ones go to consensus as one unit,
    // so a follower forwards them together and in order.
    let mut admitted: Vec<(usize, String, SignedTx, TxFrame, Option<Value>)> = Vec::new();
    for (i, item) in items.into_iter().enumerate() {
        let tx = match SignedTx::from_value(item) {
            Ok(tx) => tx,
            Err(r) => {
                metrics::refused_at_admission(r.code.as_str());
                results[i] = json!({"status": "refused", "code": r.code, "message": r.message});
                continue;
            }
        };
        let id = tx.id_hex();
        let frame = tx.frame();
        match admit(&state, &frame, !wait) {
            Ok(created) => admitted.push((i, id, tx, frame, created)),
            Err(e) => {
                results[i] =
                    json!({"status": "refused", "code": e.code, "message": e.message, "tx_id": id});
            }
        }
    }
    let frames = admitted
        .iter()
        .map(|(_, _, _, f, _)| f.to_bytes())
        .collect();
    let submitted = state.sink.submit_all(frames);
    // Set when this node turns out not to lead: (leader, indexes to forward).
    let mut forward_from: Option<(u64, Vec<usize>)> = None;
    let mut rest: Vec<Value> = Vec::new();
    for ((i, id, tx, _, created), sub) in admitted.into_iter().zip(submitted) {
        if let Some((_, idx)) = forward_from.as_mut() {
            idx.push(i);
            rest.push(tx.to_json());
            continue;
        }
        match sub {
            Ok(fut) => {
                results[i] = with_created(json!({"status": "admitted", "tx_id": id}), &created);
                let fut = metrics::observe(fut, state.in_flight.track(tx.id));
                pending.push((i, id, created, fut));
            }
            Err(e) if forward_target(&e, &headers).is_some() => {
                // This and every later transaction go to the leader in one request.
                forward_from = forward_target(&e, &headers).map(|l| (l, vec![i]));
                rest.push(tx.to_json());
            }
            Err(e) => {
                // Not taken (busy, no leader, shutting down): never tried,
                // so the client sends it again rather than dropping it.
                let e = sink_error(e, Some(id.clone()));
                results[i] = json!({"status": "retry", "code": e.code, "message": e.message,
                    "retryable": true, "tx_id": id});
            }
        }
    }
    if let Some((leader, forwarded)) = forward_from {
        let count = rest.len();
        let body = serde_json::to_vec(&rest).map_err(ApiError::internal)?;
        let path = format!("/v1/txs{}", wait_suffix(wait));
        let answer = state.sink.forward(leader, path, body).await;
        let relayed: Option<Vec<Value>> = match &answer {
            Ok((200, body)) => serde_json::from_slice::<Value>(body)
                .ok()
                .and_then(|v| v.get("results")?.as_array().cloned())
                .filter(|r| r.len() == count),
            _ => None,
        };
        match relayed {
            Some(r) => {
                for (&i, v) in forwarded.iter().zip(r) {
                    results[i] = v;
                }
            }
            None => {
                let why = match answer {
                    Ok((status, _)) => format!("answered {status}"),
                    Err(why) => why,
                };
                for &i in &forwarded {
                    results[i] = json!({"status": "unknown", "code": "leader_unreachable",
                        "retryable": true,
                        "message": format!("node {leader} leads; forwarding failed: {why}")});
                }
            }
        }
    }
    if wait {
        for (i, id, created, fut) in pending {
            results[i] = match wait_outcome(fut, &id).await {
                Ok(o) => outcome_json(&o, &created),
                Err(e) => json!({"status": "unknown", "code": e.code, "message": e.message,
                    "retryable": true, "tx_id": id}),
            };
        }
    }
    Ok(Json(json!({"results": results})).into_response())
}

/// The node's genesis (ChainSpec) in the bytes `zsl genesis init` writes:
/// pretty JSON and a final newline, so a file fetched here and one written
/// by `genesis init` are the same file. (A hand-formatted genesis comes
/// back re-formatted; its hash, over the JCS form, is the same.) For the
/// verifier page to prefill; a verifier that does not trust this node
/// pastes the genesis it keeps.
async fn genesis(State(state): State<AppState>) -> ApiResult<Response> {
    let text = serde_json::to_string_pretty(&state.ledger.spec)
        .map_err(|e| ApiError::internal(e.to_string()))?;
    Ok((
        [(axum::http::header::CONTENT_TYPE, "application/json")],
        text + "\n",
    )
        .into_response())
}

async fn status(State(state): State<AppState>) -> ApiResult<Json<Value>> {
    let head = state.ledger.head()?;
    let cluster = state.sink.cluster();
    Ok(Json(json!({
        "chain_id": state.ledger.spec.chain_id,
        "node_id": cluster.node_id,
        "leader": cluster.leader,
        "role": cluster.role,
        "term": cluster.term,
        "commit_index": cluster.commit_index,
        "height": head.height,
        "head_hash": head.hash,
        "head_time_ms": head.time_ms,
        "tree_size": head.tree_size,
        "tree_root": head.tree_root,
        // The set in force for the next block (genesis, changed by validator records).
        "validators": ledger::seal::validator_set_at(&state.ledger.store, head.height + 1)?,
        "genesis_hash": H32(state.ledger.spec.hash()?),
    })))
}

fn parse_id(text: &str) -> ApiResult<H32> {
    H32::parse(text)
        .ok_or_else(|| ApiError::bad_request(ApiCode::InvalidId, "a tx id is 64 hex characters"))
}

/// A transaction with no committed row: refused (kept on every node for
/// the last [`ledger::refusals::REFUSALS_KEPT`] refusals), pending (taken by
/// this node, not yet decided), or unknown here. The status is what a
/// client waiting on the submission got (the refusal's, or 202), so only a
/// committed transaction ever answers 200.
fn tx_not_committed(state: &AppState, caller: &auth::Caller, h: H32) -> ApiResult<Response> {
    let kept = ledger::refusals::read(&state.ledger.store, &h.0).map_err(ApiError::internal)?;
    if let Some(r) = kept {
        // A message may name holdings: signed callers only (the code is public).
        let message = (*caller != auth::Caller::Public).then_some(r.message);
        let body = json!({
            "tx_id": h,
            "status": "refused",
            "code": r.code,
            "message": message,
            "retryable": false,
            "height": r.height,
            "block_time_ms": r.time_ms,
        });
        return Ok((refusal_status(r.code), Json(body)).into_response());
    }
    if state.in_flight.contains(&h.0) {
        let body = json!({"tx_id": h, "status": "pending"});
        return Ok((StatusCode::ACCEPTED, Json(body)).into_response());
    }
    Err(ApiError::new(
        StatusCode::NOT_FOUND,
        ApiCode::NotFound,
        format!(
            "transaction {h} is not committed, not among the last {} refusals, and not pending at \
             this node (a transaction pending at another node is known there until decided)",
            ledger::refusals::REFUSALS_KEPT
        ),
    ))
}

async fn tx_status(
    State(state): State<AppState>,
    caller: auth::Caller,
    Path(id): Path<String>,
) -> ApiResult<Response> {
    let h = parse_id(&id)?;
    let Some(loc) = history::read_tx(&state.ledger.store, &h.0)? else {
        return tx_not_committed(&state, &caller, h);
    };
    let tx: Value = serde_json::from_slice(&loc.wire).map_err(ApiError::internal)?;
    let block = history::read_block(&state.ledger.store, loc.height)?;
    // Where it is committed is public (block headers list tx ids); what it
    // says is its parties' and their regulators'.
    let mut answer = json!({
        "tx_id": h,
        "status": "committed",
        "height": loc.height,
        "index": loc.index,
        "leaf_index": loc.leaf_index,
        "block_hash": block.as_ref().map(|b| b.hash),
        "block_time_ms": block.as_ref().map(|b| b.header.time_ms),
    });
    let body = tx.get("body").unwrap_or(&tx);
    if !access::may_read_record(&state, &caller, &loc.account, body)? {
        return Ok(Json(answer).into_response());
    }
    // The trace code a coding yields is derived, not in the body; the
    // explorer links it like the trace codes other records name.
    let trace_code = match (
        loc.kind.as_str(),
        body.get("batch_id").and_then(Value::as_str),
    ) {
        ("batch.code", Some(batch_id)) => Some(ledger::machine::trace_code(&loc.account, batch_id)),
        _ => body
            .get("trace_code")
            .and_then(Value::as_str)
            .map(str::to_string),
    };
    answer["trace_code"] = json!(trace_code);
    answer["type"] = json!(loc.kind);
    answer["account"] = json!(loc.account);
    answer["tx"] = tx;
    Ok(Json(answer).into_response())
}

async fn block_latest(State(state): State<AppState>) -> ApiResult<Json<ledger::Block>> {
    let head = state.ledger.head()?;
    block_json(&state, head.height)
}

async fn block_at(
    State(state): State<AppState>,
    Path(height): Path<String>,
) -> ApiResult<Json<ledger::Block>> {
    let h: u64 = height.parse().map_err(|_| {
        ApiError::bad_request(ApiCode::InvalidHeight, "height is a non-negative integer")
    })?;
    block_json(&state, h)
}

fn block_json(state: &AppState, height: u64) -> ApiResult<Json<ledger::Block>> {
    history::read_block(&state.ledger.store, height)?
        .map(Json)
        .ok_or_else(|| ApiError::not_found("block at height", &height.to_string()))
}

fn found<T: Serialize>(v: Option<T>, what: &str, id: &str) -> ApiResult<Json<Value>> {
    let v = v.ok_or_else(|| ApiError::not_found(what, id))?;
    Ok(Json(serde_json::to_value(v).map_err(ApiError::internal)?))
}

async fn account(
    State(state): State<AppState>,
    caller: auth::Caller,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    let a = query::account(&state.ledger.store.view(), &id)?;
    if let Some(a) = &a {
        let sees = access::sees_region(&caller, &state.ledger.spec, &a.jurisdiction);
        access::require(
            &caller,
            sees || access::is_party(&caller, [a.id.as_str()]),
            "this account",
        )?;
    }
    found(a, "account", &id)
}

async fn subject(
    State(state): State<AppState>,
    caller: auth::Caller,
    Path(uscc): Path<String>,
) -> ApiResult<Json<Value>> {
    let v = query::subject_view(&state.ledger.store.view(), &uscc)?
        .ok_or_else(|| ApiError::not_found("subject", &uscc))?;
    if sees_subject(&state, &caller, &v.subject) {
        return Ok(Json(serde_json::to_value(v).map_err(ApiError::internal)?));
    }
    Ok(Json(public_card(&v.subject)))
}

/// Whether the caller sees a subject in full: itself, or its regulator.
fn sees_subject(state: &AppState, caller: &auth::Caller, s: &ledger::state::Subject) -> bool {
    access::is_party(caller, [s.uscc.as_str()])
        || access::sees_region(caller, &state.ledger.spec, &s.district)
}

/// A subject's public card: who it is, not what it holds.
fn public_card(s: &ledger::state::Subject) -> Value {
    json!({
        "subject": {
            "uscc": s.uscc,
            "name": s.name,
            "kind": s.kind,
            "district": s.district,
            "subject_code": s.subject_code,
        },
        "public_view": true,
    })
}

async fn batch(
    State(state): State<AppState>,
    caller: auth::Caller,
    Path(code): Path<String>,
) -> ApiResult<Json<Value>> {
    let b = query::batch(&state.ledger.store, &code)?;
    if let Some(b) = &b {
        let view = state.ledger.store.view();
        let parties = query::trace(&view, &code, None)?
            .map(|t| t.parties.into_keys().collect::<Vec<_>>())
            .unwrap_or_default();
        let sees = access::sees_region(&caller, &state.ledger.spec, &b.coder_district)
            || access::is_party(
                &caller,
                parties.iter().map(String::as_str).chain([b.coder.as_str()]),
            );
        access::require(&caller, sees, "this batch")?;
    }
    found(b, "batch", &code)
}

async fn shipment(
    State(state): State<AppState>,
    caller: auth::Caller,
    Path((shipper, id)): Path<(String, String)>,
) -> ApiResult<Json<Value>> {
    let sh = query::shipment(&state.ledger.store, &shipper, &id)?;
    if let Some(sh) = &sh {
        let spec = &state.ledger.spec;
        let sees = access::is_party(&caller, [sh.shipper.as_str(), sh.to.as_str()])
            || access::sees_region(&caller, spec, &sh.shipper_district)
            || access::sees_region(&caller, spec, &sh.receiver_district);
        access::require(&caller, sees, "this shipment")?;
    }
    found(sh, "shipment", &format!("{shipper}/{id}"))
}

async fn finding(
    State(state): State<AppState>,
    caller: auth::Caller,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    let f = query::finding(&state.ledger.store, &id)?;
    if let Some(f) = &f {
        let sees = access::is_party(&caller, [f.subject.as_str(), f.inspector.as_str()])
            || access::sees_region(&caller, &state.ledger.spec, &f.district);
        access::require(&caller, sees, "this finding")?;
    }
    found(f, "finding", &id)
}

async fn documents(
    State(state): State<AppState>,
    caller: auth::Caller,
    Path(hash): Path<String>,
) -> ApiResult<Json<Value>> {
    let all = query::notarizations(&state.ledger.store.view(), &hash.to_ascii_lowercase())?;
    let mut list = Vec::with_capacity(all.len());
    for n in all {
        let region = access::account_region(&state, &n.account)?;
        let sees = access::is_party(&caller, [n.account.as_str()])
            || region.is_some_and(|r| access::sees_region(&caller, &state.ledger.spec, &r));
        if sees {
            list.push(n);
        }
    }
    if list.is_empty() {
        return Err(ApiError::not_found(
            "notarization of document visible to this caller",
            &hash,
        ));
    }
    Ok(Json(json!({"document_hash": hash, "notarizations": list})))
}

async fn varieties(State(state): State<AppState>) -> ApiResult<Json<Value>> {
    found(
        query::varieties(&state.ledger.store)?,
        "catalogue",
        "varieties",
    )
}

/// The record types and where each one's JSON Schema is.
async fn record_schemas() -> Json<Value> {
    let types: Vec<Value> = ledger::record::RECORD_TYPES
        .iter()
        .map(|kind| json!({"type": kind, "schema": format!("/v1/schemas/{kind}"), "signed_by": ledger::record::schema::signed_by(kind)}))
        .collect();
    Json(json!({"dialect": ledger::record::schema::DIALECT, "types": types}))
}

/// One record type's body schema (`application/schema+json`).
async fn record_schema(Path(kind): Path<String>) -> ApiResult<Response> {
    let schema = ledger::record::schema::body_schema(&kind)
        .ok_or_else(|| ApiError::not_found("record type", &kind))?;
    Ok((
        [(header::CONTENT_TYPE, "application/schema+json")],
        Json(schema),
    )
        .into_response())
}

async fn regions(State(state): State<AppState>) -> Json<Value> {
    Json(json!({"province": state.ledger.spec.province, "districts": state.ledger.spec.districts}))
}

/// Today's local date at the chain head: what "expired" means on this ledger.
fn head_date(state: &AppState) -> ApiResult<Option<jiff::civil::Date>> {
    let head = state.ledger.head()?;
    Ok(ledger::score::local_date(&state.ledger.spec.model, head.time_ms).ok())
}

/// A trace or subject code's view (一码聚合): in full for a party to the
/// batch or its regulator, else the consumer's public view (who, where,
/// when, certificates, tests, recall and expiry; no quantities, holdings or
/// findings).
pub(crate) fn trace_value(state: &AppState, caller: &auth::Caller, code: &str) -> ApiResult<Value> {
    let view = state.ledger.store.view();
    if let Some(uscc) = code.strip_prefix('S').filter(|rest| rest.len() == 18) {
        let v = query::subject_view(&view, uscc)?
            .ok_or_else(|| ApiError::not_found("subject code", code))?;
        if sees_subject(state, caller, &v.subject) {
            return Ok(json!({"kind": "subject", "subject": v}));
        }
        return Ok(json!({"kind": "subject", "subject": public_card(&v.subject)}));
    }
    let t = query::trace(&view, code, head_date(state)?)?
        .ok_or_else(|| ApiError::not_found("trace code", code))?;
    let full = access::sees_region(caller, &state.ledger.spec, &t.batch.coder_district)
        || access::is_party(caller, t.parties.keys().map(String::as_str));
    let mut v = json!({"kind": "batch", "trace": t});
    if !full {
        public_trace(&mut v["trace"]);
    }
    Ok(v)
}

/// Strips what the public trace view does not show.
fn public_trace(t: &mut Value) {
    for e in t["custody"].as_array_mut().into_iter().flatten() {
        if let Some(o) = e.as_object_mut() {
            o.remove("quantity");
        }
    }
    for h in t["holders"].as_array_mut().into_iter().flatten() {
        if let Some(o) = h.as_object_mut() {
            o.remove("quantity");
        }
    }
    if let Some(o) = t.as_object_mut() {
        o.remove("in_transit");
        o.insert("findings".into(), json!([]));
        o.insert("public_view".into(), json!(true));
    }
    if let Some(b) = t["batch"].as_object_mut() {
        b.remove("quantity");
    }
}

async fn trace(
    State(state): State<AppState>,
    caller: auth::Caller,
    Path(code): Path<String>,
) -> ApiResult<Json<Value>> {
    Ok(Json(trace_value(&state, &caller, &code)?))
}

#[derive(Deserialize)]
struct PeriodQuery {
    from: Option<String>,
    to: Option<String>,
}

fn period(state: &AppState, q: &PeriodQuery) -> ApiResult<ledger::score::Period> {
    let (Some(from), Some(to)) = (&q.from, &q.to) else {
        return Err(ApiError::bad_request(
            ApiCode::InvalidQuery,
            "give the period as ?from=YYYY-MM-DD&to=YYYY-MM-DD",
        ));
    };
    let _ = state;
    ledger::score::Period::parse(from, to)
        .map_err(|e| ApiError::bad_request(ApiCode::InvalidPeriod, e.to_string()))
}

/// The checkpoint a score rests on: anyone with the ledger up to it recomputes the same numbers.
fn checkpoint_json(head: &ledger::ChainHead) -> Value {
    json!({"height": head.height, "block_hash": head.hash, "tree_size": head.tree_size, "tree_root": head.tree_root, "as_of_ms": head.time_ms})
}

async fn scores(
    State(state): State<AppState>,
    caller: auth::Caller,
    Query(q): Query<PeriodQuery>,
) -> ApiResult<Json<Value>> {
    let p = period(&state, &q)?;
    let view = state.ledger.store.view();
    let head = history::read_head(&view)?.ok_or_else(|| ApiError::internal("no head"))?;
    // The districts the caller oversees (a province regulator: all).
    let regions: Vec<String> = state
        .ledger
        .spec
        .district_codes()
        .into_iter()
        .filter(|d| access::sees_region(&caller, &state.ledger.spec, d))
        .collect();
    let report = ledger::score::scores(
        &view,
        &state.ledger.spec.model,
        &regions,
        p,
        Some(head.time_ms),
    )
    .map_err(|e| ApiError::bad_request(ApiCode::InvalidPeriod, e.to_string()))?;
    let mut v = serde_json::to_value(report).map_err(ApiError::internal)?;
    v["checkpoint"] = checkpoint_json(&head);
    Ok(Json(v))
}

/// The period asked about a district the caller oversees.
fn district_period(
    state: &AppState,
    caller: &auth::Caller,
    district: &str,
    q: &PeriodQuery,
) -> ApiResult<ledger::score::Period> {
    let p = period(state, q)?;
    if state.ledger.spec.district(district).is_none() {
        return Err(ApiError::not_found("district", district));
    }
    let sees = access::sees_region(caller, &state.ledger.spec, district);
    access::require(caller, sees, "this district's score")?;
    Ok(p)
}

/// `GET /v1/scores/{district}/evidence?from&to`: the district's score with
/// the block it rests on and the model, for `zsl score verify` on another
/// node ([`ledger::score_evidence`]).
async fn score_evidence(
    State(state): State<AppState>,
    caller: auth::Caller,
    Path(district): Path<String>,
    Query(q): Query<PeriodQuery>,
) -> ApiResult<Json<Value>> {
    let p = district_period(&state, &caller, &district, &q)?;
    let view = state.ledger.store.view();
    let e = ledger::score_evidence::export(&view, &state.ledger.spec, &district, p)
        .map_err(|e| ApiError::bad_request(ApiCode::InvalidPeriod, e))?;
    Ok(Json(serde_json::to_value(e).map_err(ApiError::internal)?))
}

async fn score_detail(
    State(state): State<AppState>,
    caller: auth::Caller,
    Path(district): Path<String>,
    Query(q): Query<PeriodQuery>,
) -> ApiResult<Json<Value>> {
    let p = district_period(&state, &caller, &district, &q)?;
    let view = state.ledger.store.view();
    let head = history::read_head(&view)?.ok_or_else(|| ApiError::internal("no head"))?;
    let regions = state.ledger.spec.district_codes();
    let detail = ledger::score::district_detail(
        &view,
        &state.ledger.spec.model,
        &regions,
        &district,
        p,
        Some(head.time_ms),
    )
    .map_err(|e| ApiError::bad_request(ApiCode::InvalidPeriod, e.to_string()))?;
    let upcoming = ledger::score::upcoming_deadlines(
        &view,
        &state.ledger.spec.model,
        &district,
        head.time_ms,
        7,
    )
    .map_err(ApiError::internal)?;
    let mut v = serde_json::to_value(detail).map_err(ApiError::internal)?;
    v["upcoming_deadlines"] = serde_json::to_value(upcoming).map_err(ApiError::internal)?;
    v["checkpoint"] = checkpoint_json(&head);
    Ok(Json(v))
}
