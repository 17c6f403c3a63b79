//! A follower's submissions go to the leader through `TxSink::forward` and
//! the leader's answer is relayed; a forwarded request is never forwarded again.

use std::sync::{Arc, Mutex};

use api::{
    AppState, ClusterInfo, ForwardFuture, OutcomeFuture, SinkError, TxSink, FORWARDED_HEADER,
};
use axum::body::{to_bytes, Body, Bytes};
use axum::http::{Request, StatusCode};
use serde_json::{json, Value};
use tower::ServiceExt;

/// A follower that knows node 2 leads; it records what it forwards.
#[derive(Default)]
struct Follower {
    forwarded: Mutex<Vec<(u64, String, Vec<u8>)>>,
}

impl TxSink for Follower {
    fn submit(&self, _wire: Vec<u8>) -> Result<OutcomeFuture, SinkError> {
        Err(SinkError::NotLeader { leader: Some(2) })
    }

    fn cluster(&self) -> ClusterInfo {
        ClusterInfo::default()
    }

    fn forward(&self, leader: u64, path_and_query: String, body: Vec<u8>) -> ForwardFuture {
        let answer = if path_and_query.starts_with("/v1/txs") {
            let n = serde_json::from_slice::<Vec<Value>>(&body).map_or(0, |v| v.len());
            json!({"results": vec![json!({"status": "admitted"}); n]})
        } else {
            json!({"status": "committed", "tx_id": "from-leader"})
        };
        self.forwarded
            .lock()
            .expect("lock")
            .push((leader, path_and_query, body));
        Box::pin(async move { Ok((200, Bytes::from(answer.to_string()))) })
    }
}

fn setup() -> (tempfile::TempDir, Arc<Follower>, axum::Router, String) {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = genesis::devnet("zsl-fwd", "2026-01-01T00:00:00Z", 3).expect("genesis");
    let chain = d.spec.chain_id.clone();
    let ledger = ledger::Ledger::open(
        &dir.path().join("db"),
        d.spec,
        &ledger::store::StoreOptions::default(),
    )
    .expect("ledger");
    let sink = Arc::new(Follower::default());
    let router = api::router(AppState::new(Arc::new(ledger), sink.clone()));
    (dir, sink, router, chain)
}

fn tx(chain: &str, n: u32) -> Value {
    let key = ed25519_dalek::SigningKey::from_bytes(&[7; 32]);
    let doc = ledger::record::DocumentNotarize {
        document_hash: hex::encode(ledger::hash::sha256(format!("doc {n}").as_bytes())),
        title: format!("doc {n}"),
        media_type: None,
        note: None,
    };
    let body = ledger::record::build_body(
        "document.notarize",
        chain,
        "someone",
        "2026-01-01T00:00:01Z",
        &format!("n{n}"),
        &doc,
    );
    ledger::SignedTx::sign(body, &key).expect("sign").to_json()
}

async fn post(
    router: &axum::Router,
    uri: &str,
    body: &Value,
    forwarded: bool,
) -> (StatusCode, Value) {
    let mut req = Request::post(uri).header("content-type", "application/json");
    if forwarded {
        req = req.header(FORWARDED_HEADER, "1");
    }
    let resp = router
        .clone()
        .oneshot(req.body(Body::from(body.to_string())).expect("request"))
        .await
        .expect("answer");
    let status = resp.status();
    let bytes = to_bytes(resp.into_body(), 1 << 20).await.expect("body");
    (
        status,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    )
}

#[tokio::test]
async fn a_follower_relays_submissions_to_the_leader_once() {
    let (_dir, sink, router, chain) = setup();

    let (status, body) = post(&router, "/v1/tx?wait=commit", &tx(&chain, 1), false).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["tx_id"], "from-leader");

    let batch = json!([tx(&chain, 2), tx(&chain, 3)]);
    let (status, body) = post(&router, "/v1/txs", &batch, false).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["results"].as_array().map(Vec::len), Some(2), "{body}");

    {
        let forwarded = sink.forwarded.lock().expect("lock");
        let paths: Vec<_> = forwarded.iter().map(|(l, p, _)| (*l, p.as_str())).collect();
        assert_eq!(paths, [(2, "/v1/tx?wait=commit"), (2, "/v1/txs")]);
        let relayed: Vec<Value> = serde_json::from_slice(&forwarded[1].2).expect("json");
        assert_eq!(relayed.len(), 2);
    }

    // Already forwarded once: answered here, not sent on.
    let (status, body) = post(&router, "/v1/tx", &tx(&chain, 4), true).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert_eq!(body["code"], "not_leader", "{body}");
    assert_eq!(sink.forwarded.lock().expect("lock").len(), 2);
}

/// A leader whose admission queue is full.
struct Full;

impl TxSink for Full {
    fn submit(&self, _wire: Vec<u8>) -> Result<OutcomeFuture, SinkError> {
        Err(SinkError::Busy)
    }

    fn cluster(&self) -> ClusterInfo {
        ClusterInfo::default()
    }
}

/// A transaction the node did not take is `retry` (retryable), never
/// `refused`: a client that trusts the status must send it again.
#[tokio::test]
async fn not_taken_is_retry_not_refused() {
    let (dir, _, _, chain) = setup();
    let ledger = ledger::Ledger::open(
        &dir.path().join("db2"),
        genesis::devnet("zsl-fwd", "2026-01-01T00:00:00Z", 3)
            .expect("genesis")
            .spec,
        &ledger::store::StoreOptions::default(),
    )
    .expect("ledger");
    let router = api::router(AppState::new(Arc::new(ledger), Arc::new(Full)));
    let (status, body) = post(&router, "/v1/txs", &json!([tx(&chain, 9)]), false).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let r = &body["results"][0];
    assert_eq!(
        (
            r["status"].as_str(),
            r["code"].as_str(),
            r["retryable"].as_bool()
        ),
        (Some("retry"), Some("busy"), Some(true)),
        "{body}"
    );
    let (status, body) = post(&router, "/v1/tx", &tx(&chain, 10), false).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert_eq!(body["retryable"], true, "{body}");
}
