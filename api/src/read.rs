//! Read consistency: local (the default) or linearizable (read-index).
//!
//! A GET is answered from this node's ledger as it stands, which on a
//! follower may trail the leader by a block or two. With
//! `?consistency=linearizable` (or the header `x-zsl-consistency:
//! linearizable`) the answer reflects at least everything committed when the
//! request arrived: on the leader, Raft confirms leadership with a quorum and
//! waits until its own state machine applied the commit index; on a follower,
//! the leader is asked for that index (`GET /v1/internal/read-index`) and the
//! follower waits until it has applied it. Either way the wait is bounded by
//! [`READ_WAIT_MS`]; past it the answer is 503 `read_timeout`, never a stale
//! read passed off as linearizable.

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use axum::extract::{Query, Request, State};
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Value};

use crate::ApiCode;
use crate::{ApiError, ApiResult, AppState};

/// How long a linearizable read may wait for the read index and the local apply.
pub const READ_WAIT_MS: u64 = 5_000;
/// The query parameter and the header that ask for a linearizable read.
pub const CONSISTENCY_PARAM: &str = "consistency";
pub const CONSISTENCY_HEADER: &str = "x-zsl-consistency";
/// The leader's read-index endpoint, used by followers.
pub const READ_INDEX_PATH: &str = "/v1/internal/read-index";
/// Between two looks at the local applied index; a block applies in about a
/// millisecond on an idle follower, so this keeps the added latency small.
const APPLY_POLL_MS: u64 = 2;
/// Longest value accepted for the consistency parameter or header (it is
/// echoed in the error message).
const VALUE_CHARS_MAX: usize = 40;

/// Why a read index could not be had.
#[derive(Debug, Clone, thiserror::Error)]
pub enum ReadIndexError {
    #[error("this node is not the leader (leader: {leader:?})")]
    NotLeader { leader: Option<u64> },
    #[error("{0}")]
    Unavailable(String),
}

/// A read index: the committed Raft log index a linearizable read must see
/// applied (`None`: nothing committed yet).
pub type ReadIndexFuture =
    Pin<Box<dyn Future<Output = Result<Option<u64>, ReadIndexError>> + Send>>;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Consistency {
    Local,
    Linearizable,
}

fn parse_value(value: &str, from: &str) -> ApiResult<Consistency> {
    match value {
        "local" => Ok(Consistency::Local),
        "linearizable" => Ok(Consistency::Linearizable),
        other => {
            let shown: String = other.chars().take(VALUE_CHARS_MAX).collect();
            Err(ApiError::bad_request(
                ApiCode::InvalidConsistency,
                format!("{from} must be `local` or `linearizable`, not `{shown}`"),
            ))
        }
    }
}

/// The consistency a request asks for: linearizable if the query or the
/// header says so; a value that is neither `local` nor `linearizable` is
/// refused rather than silently read locally.
pub fn requested(uri: &Uri, headers: &HeaderMap) -> ApiResult<Consistency> {
    let mut wanted = Consistency::Local;
    if let Some(h) = headers.get(CONSISTENCY_HEADER) {
        let text = h.to_str().map_err(|_| {
            ApiError::bad_request(
                ApiCode::InvalidConsistency,
                format!("the {CONSISTENCY_HEADER} header is not text"),
            )
        })?;
        if parse_value(text.trim(), CONSISTENCY_HEADER)? == Consistency::Linearizable {
            wanted = Consistency::Linearizable;
        }
    }
    // Queries that cannot name the parameter are left alone (and unparsed):
    // routes that ignore their query keep doing so.
    if !uri.query().is_some_and(|q| q.contains(CONSISTENCY_PARAM)) {
        return Ok(wanted);
    }
    let Query(pairs) = Query::<Vec<(String, String)>>::try_from_uri(uri)
        .map_err(|e| ApiError::bad_request(ApiCode::InvalidQuery, e.body_text()))?;
    for (k, v) in pairs {
        if k == CONSISTENCY_PARAM
            && parse_value(&v, CONSISTENCY_PARAM)? == Consistency::Linearizable
        {
            wanted = Consistency::Linearizable;
        }
    }
    Ok(wanted)
}

/// Middleware on every route: GETs that ask for a linearizable read wait
/// for the read index first; everything else passes through untouched.
pub async fn consistency(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let is_read = req.method() == Method::GET || req.method() == Method::HEAD;
    // The read-index endpoint is what a linearizable read waits on; it must
    // not wait on itself.
    if !is_read || req.uri().path() == READ_INDEX_PATH {
        return next.run(req).await;
    }
    match requested(req.uri(), req.headers()) {
        Err(e) => return e.into_response(),
        Ok(Consistency::Local) => return next.run(req).await,
        Ok(Consistency::Linearizable) => {}
    }
    let wait = Duration::from_millis(READ_WAIT_MS);
    match tokio::time::timeout(wait, linearize(&state)).await {
        Ok(Ok(())) => next.run(req).await,
        Ok(Err(e)) => e.into_response(),
        Err(_) => ApiError::unavailable(
            ApiCode::ReadTimeout,
            format!(
                "this node could not catch up with the cluster's commit index within \
                 {READ_WAIT_MS} ms; retry, or read without consistency=linearizable"
            ),
        )
        .into_response(),
    }
}

/// `from_leader`: the read index was asked of another node (`leader_unreachable`)
/// rather than of this one, which leads but has no quorum (`no_quorum`).
fn read_index_error(e: ReadIndexError, from_leader: bool) -> ApiError {
    match e {
        ReadIndexError::NotLeader { .. } => {
            ApiError::unavailable(ApiCode::NotLeader, e.to_string())
        }
        ReadIndexError::Unavailable(why) if from_leader => ApiError::unavailable(
            ApiCode::LeaderUnreachable,
            format!("the leader's read index could not be had: {why}"),
        ),
        ReadIndexError::Unavailable(why) => ApiError::unavailable(
            ApiCode::NoQuorum,
            format!("this node cannot confirm it still leads: {why}"),
        ),
    }
}

/// Returns once this node has applied everything the cluster had committed
/// when it was called.
async fn linearize(state: &AppState) -> ApiResult<()> {
    let cluster = state.sink.cluster();
    let mut leader = cluster.leader;
    if cluster.role == "leader" {
        // On the leader, Raft's read index already waits for the local apply.
        match state.sink.read_index().await {
            Ok(_) => return Ok(()),
            // Leadership moved since the role was read: ask the new leader.
            Err(ReadIndexError::NotLeader { leader: Some(l) }) if l != cluster.node_id => {
                leader = Some(l);
            }
            Err(e) => return Err(read_index_error(e, false)),
        }
    }
    let leader = leader.ok_or_else(|| {
        ApiError::unavailable(
            ApiCode::NoLeader,
            "no leader is known (an election is running, or this node is cut off); retry shortly",
        )
    })?;
    let index = state
        .sink
        .leader_read_index(leader)
        .await
        .map_err(|e| read_index_error(e, true))?;
    let Some(index) = index else {
        return Ok(());
    };
    // The caller's timeout bounds this loop.
    loop {
        if state.sink.cluster().last_applied >= Some(index) {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(APPLY_POLL_MS)).await;
    }
}

/// `GET /v1/internal/read-index`: on the leader, the committed log index
/// after a quorum confirmed its leadership (and its state machine applied
/// it). Any other node answers 503 `not_leader`: followers ask the leader
/// they know, and a request is never relayed further.
pub async fn read_index_endpoint(State(state): State<AppState>) -> ApiResult<Json<Value>> {
    let wait = Duration::from_millis(READ_WAIT_MS);
    let index = tokio::time::timeout(wait, state.sink.read_index())
        .await
        .map_err(|_| {
            ApiError::unavailable(
                ApiCode::NoQuorum,
                "no quorum confirmed this node's leadership in time",
            )
        })?
        .map_err(|e| read_index_error(e, false))?;
    Ok(Json(json!({"read_index": index})))
}

/// Parses the leader's answer to [`READ_INDEX_PATH`] (status and JSON body).
pub fn parse_read_index_answer(status: u16, body: &[u8]) -> Result<Option<u64>, ReadIndexError> {
    let v: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
    if status != StatusCode::OK.as_u16() {
        let code = v["code"].as_str().unwrap_or("unknown");
        return Err(ReadIndexError::Unavailable(format!(
            "the leader answered {status} `{code}`"
        )));
    }
    match v.get("read_index") {
        Some(Value::Null) => Ok(None),
        n => n.and_then(Value::as_u64).map(Some).ok_or_else(|| {
            ReadIndexError::Unavailable("the leader's read index is not a number".into())
        }),
    }
}
