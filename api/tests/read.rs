//! Read consistency on a follower, against a scripted sink: a local read
//! never asks the leader; a linearizable read waits until this node applied
//! the leader's read index, answers 503 when it cannot, and a bad
//! consistency value is refused.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use api::{
    AppState, ClusterInfo, OutcomeFuture, ReadIndexError, ReadIndexFuture, SinkError, TxSink,
    CONSISTENCY_HEADER,
};
use axum::body::{to_bytes, Body};
use axum::http::{Request, StatusCode};
use serde_json::Value;
use tower::ServiceExt;

/// `applied` stands for "nothing applied".
const NONE: u64 = u64::MAX;

/// A follower of node 2 whose applied index the test moves.
struct Follower {
    leader: Option<u64>,
    applied: AtomicU64,
    /// What node 2 answers as its read index (`Err` when unreachable).
    read_index: Result<u64, ()>,
    asked: AtomicUsize,
    asked_notify: tokio::sync::Notify,
}

impl Follower {
    fn new(leader: Option<u64>, applied: u64, read_index: Result<u64, ()>) -> Arc<Self> {
        Arc::new(Self {
            leader,
            applied: AtomicU64::new(applied),
            read_index,
            asked: AtomicUsize::new(0),
            asked_notify: tokio::sync::Notify::new(),
        })
    }
}

impl TxSink for Follower {
    fn submit(&self, _wire: Vec<u8>) -> Result<OutcomeFuture, SinkError> {
        Err(SinkError::NotLeader {
            leader: self.leader,
        })
    }

    fn cluster(&self) -> ClusterInfo {
        let applied = self.applied.load(Ordering::SeqCst);
        ClusterInfo {
            node_id: 1,
            leader: self.leader,
            role: "follower".into(),
            last_applied: (applied != NONE).then_some(applied),
            ..ClusterInfo::default()
        }
    }

    fn read_index(&self) -> ReadIndexFuture {
        let leader = self.leader;
        Box::pin(async move { Err(ReadIndexError::NotLeader { leader }) })
    }

    fn leader_read_index(&self, leader: u64) -> ReadIndexFuture {
        assert_eq!(Some(leader), self.leader, "asks the leader it knows");
        self.asked.fetch_add(1, Ordering::SeqCst);
        self.asked_notify.notify_one();
        let answer = self
            .read_index
            .map(Some)
            .map_err(|()| ReadIndexError::Unavailable("connection refused".into()));
        Box::pin(async move { answer })
    }
}

fn app(sink: Arc<Follower>) -> (tempfile::TempDir, axum::Router) {
    let (dir, router, _) = app_with_keys(sink);
    (dir, router)
}

/// [`app`] and the keys of its genesis: (validator 1, the root regulator).
fn app_with_keys(
    sink: Arc<Follower>,
) -> (
    tempfile::TempDir,
    axum::Router,
    [ed25519_dalek::SigningKey; 2],
) {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = genesis::devnet("zsl-read", "2026-01-01T00:00:00Z", 3).expect("genesis");
    let keys = [
        d.validators[0].signing_key().expect("validator key"),
        d.root.signing_key().expect("root key"),
    ];
    let ledger = ledger::Ledger::open(
        &dir.path().join("db"),
        d.spec,
        &ledger::store::StoreOptions::default(),
    )
    .expect("ledger");
    let router = api::router(AppState::new(Arc::new(ledger), sink));
    (dir, router, keys)
}

/// Sends `req` (no body) through the router: (status, JSON answer).
async fn send(router: &axum::Router, req: axum::http::request::Builder) -> (StatusCode, Value) {
    let resp = router
        .clone()
        .oneshot(req.body(Body::empty()).expect("request"))
        .await
        .expect("answer");
    let status = resp.status();
    let bytes = to_bytes(resp.into_body(), 1 << 20).await.expect("body");
    (
        status,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    )
}

/// GET signed by `key` (RFC 9421, as a validator or an account signs).
async fn signed(
    router: &axum::Router,
    uri: &str,
    key: &ed25519_dalek::SigningKey,
) -> (StatusCode, Value) {
    let now = jiff::Timestamp::now().as_second();
    let mut req = Request::get(uri);
    for (name, value) in api::httpsig::sign(key, &axum::http::Method::GET, uri, b"", now).unwrap() {
        req = req.header(name, value);
    }
    send(router, req).await
}

async fn get(router: &axum::Router, uri: &str, header: Option<&str>) -> (StatusCode, Value) {
    let mut req = Request::get(uri);
    if let Some(h) = header {
        req = req.header(CONSISTENCY_HEADER, h);
    }
    send(router, req).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_linearizable_read_waits_until_the_read_index_is_applied() {
    let sink = Follower::new(Some(2), 3, Ok(7));
    let (_dir, router) = app(sink.clone());

    // Local reads (the default, or asked for) never ask the leader.
    let (status, body) = get(&router, "/v1/status", None).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, _) = get(&router, "/v1/status?consistency=local", Some("local")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(sink.asked.load(Ordering::SeqCst), 0);

    // Applied 3 < read index 7: the read is held until the node applies 7.
    let read = tokio::spawn({
        let router = router.clone();
        async move { get(&router, "/v1/status?consistency=linearizable", None).await }
    });
    sink.asked_notify.notified().await;
    assert!(
        !read.is_finished(),
        "answered before the read index was applied"
    );
    sink.applied.store(7, Ordering::SeqCst);
    let (status, body) = read.await.expect("read task");
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(sink.asked.load(Ordering::SeqCst), 1);

    // The header works as well as the parameter.
    let (status, body) = get(&router, "/v1/regions", Some("linearizable")).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(sink.asked.load(Ordering::SeqCst), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_linearizable_read_that_cannot_catch_up_is_refused_not_served_stale() {
    // The leader's index is never applied here: 503 after the bounded wait.
    let sink = Follower::new(Some(2), NONE, Ok(9));
    let (_dir, router) = app(sink);
    let started = Instant::now();
    let (status, body) = get(&router, "/v1/status?consistency=linearizable", None).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert_eq!(body["code"], "read_timeout");
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_millis(api::read::READ_WAIT_MS),
        "gave up after {waited:?}"
    );

    // The leader cannot be asked.
    let sink = Follower::new(Some(2), 5, Err(()));
    let (_dir, router) = app(sink);
    let (status, body) = get(&router, "/v1/status?consistency=linearizable", None).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert_eq!(body["code"], "leader_unreachable");

    // No leader is known.
    let sink = Follower::new(None, 5, Ok(1));
    let (_dir, router, [validator, root]) = app_with_keys(sink.clone());
    let (status, body) = get(&router, "/v1/status?consistency=linearizable", None).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert_eq!(body["code"], "no_leader");

    // A value that is neither `local` nor `linearizable` is refused up front.
    for (uri, header) in [
        ("/v1/status?consistency=strong", None),
        ("/v1/status", Some("LINEARIZABLE")),
    ] {
        let (status, body) = get(&router, uri, header).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{uri} {header:?}: {body}");
        assert_eq!(body["code"], "invalid_consistency");
    }
    assert_eq!(sink.asked.load(Ordering::SeqCst), 0);

    // The read index is for validators: not the public, not an account.
    let (status, body) = get(&router, "/v1/internal/read-index", None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    let (status, body) = signed(&router, "/v1/internal/read-index", &root).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    // A follower does not hand out read indices: only the leader can.
    let (status, body) = signed(&router, "/v1/internal/read-index", &validator).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert_eq!(body["code"], "not_leader");
}
