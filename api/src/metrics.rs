//! `GET /metrics` in the Prometheus text format (0.0.4), rendered by hand:
//! a handful of counters and one histogram do not need a metrics crate.
//!
//! Counters are process-wide (one node per process): transactions admitted,
//! committed and refused by code and stage, the submit→commit latency, and
//! requests turned away by the rate limit. Gauges are read when scraped:
//! chain head, Raft state (through [`TxSink::cluster`](crate::TxSink::cluster) and
//! [`TxSink::metrics_text`](crate::TxSink::metrics_text)) and RocksDB sizes.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{LazyLock, Mutex};
use std::time::Instant;

use axum::extract::State;
use axum::http::header::CONTENT_TYPE;
use axum::response::{IntoResponse, Response};

use crate::{ApiError, AppState, OutcomeFuture, SubmitOutcome};

/// Upper bounds (seconds) of the submit→commit latency buckets.
const LATENCY_BUCKETS_S: [f64; 12] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];
/// Distinct refusal label sets kept; codes are the API's own fixed strings,
/// so this is never reached in practice, but a counter map must not grow without end.
const REFUSAL_LABELS_MAX: usize = 256;

struct Metrics {
    admitted: AtomicU64,
    committed: AtomicU64,
    /// (stage, code) → count; stage is `admission` or `commit`.
    refused: Mutex<BTreeMap<(&'static str, String), u64>>,
    latency_buckets: [AtomicU64; LATENCY_BUCKETS_S.len()],
    latency_count: AtomicU64,
    latency_sum_us: AtomicU64,
    rate_limited: AtomicU64,
    too_large: AtomicU64,
    connections_refused: AtomicU64,
    request_timeouts: AtomicU64,
}

static METRICS: LazyLock<Metrics> = LazyLock::new(|| Metrics {
    admitted: AtomicU64::new(0),
    committed: AtomicU64::new(0),
    refused: Mutex::new(BTreeMap::new()),
    latency_buckets: std::array::from_fn(|_| AtomicU64::new(0)),
    latency_count: AtomicU64::new(0),
    latency_sum_us: AtomicU64::new(0),
    rate_limited: AtomicU64::new(0),
    too_large: AtomicU64::new(0),
    connections_refused: AtomicU64::new(0),
    request_timeouts: AtomicU64::new(0),
});

fn count_refusal(stage: &'static str, code: &str) {
    let mut m = METRICS.refused.lock().unwrap_or_else(|p| p.into_inner());
    let key = (stage, code.to_string());
    if let Some(n) = m.get_mut(&key) {
        *n += 1;
    } else if m.len() < REFUSAL_LABELS_MAX {
        m.insert(key, 1);
    }
}

/// A transaction refused before it reached consensus.
pub(crate) fn refused_at_admission(code: &str) {
    count_refusal("admission", code);
}

/// A request refused by the per-IP rate limit.
pub(crate) fn rate_limited() {
    METRICS.rate_limited.fetch_add(1, Ordering::Relaxed);
}

/// A connection closed at once: over the total or per-client cap.
pub(crate) fn connection_refused() {
    METRICS.connections_refused.fetch_add(1, Ordering::Relaxed);
}

/// A request whose body did not arrive in time (408).
pub(crate) fn request_timed_out() {
    METRICS.request_timeouts.fetch_add(1, Ordering::Relaxed);
}

/// A request whose body exceeded the size limit.
pub(crate) fn too_large() {
    METRICS.too_large.fetch_add(1, Ordering::Relaxed);
}

/// Counts a queued transaction and, whether or not the client waits, its
/// outcome and submit→commit latency: the outcome is awaited in a task of
/// its own and handed on to the returned future.
/// Counts the outcome when it arrives; `in_flight` is held until then.
pub(crate) fn observe(
    fut: OutcomeFuture,
    in_flight: Option<crate::in_flight::InFlightGuard>,
) -> OutcomeFuture {
    METRICS.admitted.fetch_add(1, Ordering::Relaxed);
    let started = Instant::now();
    let (tx, rx) = tokio::sync::oneshot::channel();
    tokio::spawn(async move {
        let outcome = fut.await;
        match &outcome {
            Some(SubmitOutcome::Committed { .. }) => {
                METRICS.committed.fetch_add(1, Ordering::Relaxed);
                let secs = started.elapsed().as_secs_f64();
                for (i, le) in LATENCY_BUCKETS_S.iter().enumerate() {
                    if secs <= *le {
                        METRICS.latency_buckets[i].fetch_add(1, Ordering::Relaxed);
                    }
                }
                METRICS.latency_count.fetch_add(1, Ordering::Relaxed);
                METRICS
                    .latency_sum_us
                    .fetch_add(started.elapsed().as_micros() as u64, Ordering::Relaxed);
            }
            // The leader's block producer verifies signatures before a
            // block is proposed, so a bad one is refused at admission there.
            Some(SubmitOutcome::Refused { code, .. }) if code == "bad_signature" => {
                count_refusal("admission", code)
            }
            Some(SubmitOutcome::Refused { code, .. }) => count_refusal("commit", code),
            None => count_refusal("commit", "outcome_lost"),
        }
        // Decided (or lost): no longer pending at this node.
        drop(in_flight);
        // The client may have stopped waiting; the count stands either way.
        let _ = tx.send(outcome);
    });
    Box::pin(async move { rx.await.ok().flatten() })
}

fn metric(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
}

/// A metric with one unlabelled sample.
fn scalar(out: &mut String, name: &str, kind: &str, help: &str, value: impl std::fmt::Display) {
    metric(out, name, kind, help);
    let _ = writeln!(out, "{name} {value}");
}

/// Escapes a label value (`\`, `"`, newline).
pub fn label(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

pub(crate) async fn render(State(state): State<AppState>) -> Response {
    match render_text(&state) {
        Ok(text) => (
            [(CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")],
            text,
        )
            .into_response(),
        Err(e) => e.into_response(),
    }
}

// Long because it is the flat list of every metric, one block per family, in
// the order /metrics prints them; splitting it would scatter the list.
fn render_text(state: &AppState) -> Result<String, ApiError> {
    let m = &*METRICS;
    let mut out = String::with_capacity(4096);
    scalar(
        &mut out,
        "zsl_txs_admitted_total",
        "counter",
        "Transactions that passed admission and were queued for a block.",
        m.admitted.load(Ordering::Relaxed),
    );
    scalar(
        &mut out,
        "zsl_txs_committed_total",
        "counter",
        "Transactions submitted here and committed.",
        m.committed.load(Ordering::Relaxed),
    );
    metric(
        &mut out,
        "zsl_txs_refused_total",
        "counter",
        "Transactions refused, by refusal code and stage (admission: before consensus; commit: by the state rules).",
    );
    {
        let refused = m.refused.lock().unwrap_or_else(|p| p.into_inner());
        for ((stage, code), n) in refused.iter() {
            let _ = writeln!(
                out,
                "zsl_txs_refused_total{{code=\"{}\",stage=\"{stage}\"}} {n}",
                label(code)
            );
        }
    }
    metric(
        &mut out,
        "zsl_tx_commit_seconds",
        "histogram",
        "Time from queuing a transaction on this node to its commit.",
    );
    for (i, le) in LATENCY_BUCKETS_S.iter().enumerate() {
        let _ = writeln!(
            out,
            "zsl_tx_commit_seconds_bucket{{le=\"{le}\"}} {}",
            m.latency_buckets[i].load(Ordering::Relaxed)
        );
    }
    let count = m.latency_count.load(Ordering::Relaxed);
    let _ = writeln!(out, "zsl_tx_commit_seconds_bucket{{le=\"+Inf\"}} {count}");
    let _ = writeln!(
        out,
        "zsl_tx_commit_seconds_sum {}",
        m.latency_sum_us.load(Ordering::Relaxed) as f64 / 1e6
    );
    let _ = writeln!(out, "zsl_tx_commit_seconds_count {count}");
    scalar(
        &mut out,
        "zsl_http_rate_limited_total",
        "counter",
        "Requests answered 429 by the per-IP rate limit.",
        m.rate_limited.load(Ordering::Relaxed),
    );
    scalar(
        &mut out,
        "zsl_http_body_too_large_total",
        "counter",
        "Requests answered 413 because the body exceeded the limit.",
        m.too_large.load(Ordering::Relaxed),
    );
    scalar(
        &mut out,
        "zsl_http_connections_refused_total",
        "counter",
        "Connections closed at once, over the total or per-client cap.",
        m.connections_refused.load(Ordering::Relaxed),
    );
    scalar(
        &mut out,
        "zsl_http_request_timeouts_total",
        "counter",
        "Requests answered 408: the body did not arrive in time.",
        m.request_timeouts.load(Ordering::Relaxed),
    );

    let head = state.ledger.head()?;
    scalar(
        &mut out,
        "zsl_block_height",
        "gauge",
        "Height of the chain head.",
        head.height,
    );
    scalar(
        &mut out,
        "zsl_tree_size",
        "gauge",
        "Committed transactions (leaves of the Merkle tree).",
        head.tree_size,
    );
    scalar(
        &mut out,
        "zsl_block_time_seconds",
        "gauge",
        "Block time of the chain head (Unix seconds).",
        head.time_ms as f64 / 1000.0,
    );

    let c = state.sink.cluster();
    scalar(
        &mut out,
        "zsl_raft_node_id",
        "gauge",
        "This node's id.",
        c.node_id,
    );
    scalar(
        &mut out,
        "zsl_raft_term",
        "gauge",
        "Current Raft term.",
        c.term,
    );
    scalar(
        &mut out,
        "zsl_raft_leader",
        "gauge",
        "Node id of the known leader (0: none known).",
        c.leader.unwrap_or(0),
    );
    scalar(
        &mut out,
        "zsl_raft_is_leader",
        "gauge",
        "1 if this node leads.",
        u8::from(c.role == "leader" && c.leader == Some(c.node_id)),
    );
    scalar(
        &mut out,
        "zsl_raft_commit_index",
        "gauge",
        "Last committed Raft log index (-1: none).",
        c.commit_index.map_or(-1, |i| i as i64),
    );
    scalar(
        &mut out,
        "zsl_raft_last_applied_index",
        "gauge",
        "Last Raft log index applied to the ledger (-1: none).",
        c.last_applied.map_or(-1, |i| i as i64),
    );
    scalar(
        &mut out,
        "zsl_validators",
        "gauge",
        "Validators in the set in force (genesis, changed by validator records).",
        ledger::seal::validator_set_at(&state.ledger.store, head.height + 1)?.len(),
    );
    // What only the node knows (peers, queue depth), already in this format.
    out.push_str(&state.sink.metrics_text());

    metric(
        &mut out,
        "zsl_rocksdb_sst_bytes",
        "gauge",
        "Size of the SST files per RocksDB column family.",
    );
    for (cf, bytes) in state.ledger.store.sizes() {
        let _ = writeln!(out, "zsl_rocksdb_sst_bytes{{cf=\"{}\"}} {bytes}", label(cf));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    #[test]
    fn labels_are_escaped() {
        assert_eq!(super::label("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
    }
}
