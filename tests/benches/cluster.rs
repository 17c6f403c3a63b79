//! Cluster throughput and latency against etcd, in one run (issue 10).
//!
//! ZSL: three real `zsl node run` processes on loopback (rate limit off, so
//! the limiter is not what is measured). Closed-loop clients, each with its
//! own keep-alive HTTP connection, submit one distinct pre-signed
//! transaction at a time (`POST /v1/tx?wait=commit`, the realistic mix:
//! ≈40% batch.code, 30% shipment.create, 30% shipment.receive) and wait for
//! commit; clients are spread over the three nodes. Runs at 1, 256 and
//! 1,000 clients, then a half-load run (256 clients paced to half the peak
//! rate) for p99, a batch-client run (`POST /v1/txs`, 16 clients × 100 txs),
//! and evidence sealing latency at idle and under load.
//!
//! etcd (with `--features etcd`, which needs `protoc`): a 3-member etcd on
//! loopback driven over gRPC by the `etcd-client` crate as its users drive
//! it — clients sharing a pool of HTTP/2 connections (one per ten clients,
//! at most 100, as etcd's own benchmark tool does), spread over the three
//! members, each client one put at a time of a value the size of ZSL's mean
//! transaction. Ratios ZSL ÷ etcd at each client count are printed.
//!
//! Run: `scripts/bench` (`cargo bench --workspace --bench cluster --profile dev --features zsl-tests/etcd`).
//! Environment: `ZSL_BENCH_SECS` (each closed-loop run, default 20),
//! `ZSL_BENCH_TXS` (transactions pre-signed per run, default 200,000).

use std::collections::BTreeMap;
use std::process::Command;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ed25519_dalek::{Signer as _, SigningKey, Verifier as _};
use serde::Serialize;
use serde_json::Value;

use ledger::record::*;
use zsl_tests::TestCluster;

const PRODUCERS: usize = 16;
const RECEIVERS: usize = 16;
const DISTRICT: &str = "330102";
/// Quantity of each producer's stock batch, so shipments never run dry.
const STOCK: u64 = 1_000_000_000;
/// Transactions a client signs per group: receipts of the previous group's
/// shipments follow them in the same client's stream.
const GROUP: usize = 10;
/// Batch-client run: clients × transactions per `/v1/txs` request.
const BATCH_CLIENTS: usize = 16;
const BATCH_SIZE: usize = 100;
/// Client counts of the closed-loop runs.
const CLIENT_COUNTS: [usize; 3] = [1, 256, 1_000];

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

struct Subject {
    id: String,
    key: SigningKey,
}

/// Signs with the ledger's own code; nonces are global so every
/// transaction is distinct.
struct Signer {
    chain_id: String,
    nonce: AtomicU64,
}

impl Signer {
    fn sign<T: Serialize>(&self, key: &SigningKey, account: &str, kind: &str, rec: &T) -> Vec<u8> {
        let n = self.nonce.fetch_add(1, Ordering::Relaxed);
        let body = build_body(
            kind,
            &self.chain_id,
            account,
            &jiff::Timestamp::now().to_string(),
            &format!("bench-{n}"),
            rec,
        );
        serde_json::to_vec(&ledger::SignedTx::sign(body, key).expect("sign").to_json())
            .expect("json")
    }
}

struct World {
    signer: Signer,
    producers: Vec<Subject>,
    receivers: Vec<Subject>,
    today: String,
    /// Unique ids across every run.
    seq: AtomicU64,
}

impl World {
    fn stock_trace(&self, p: usize) -> String {
        ledger::machine::trace_code(&self.producers[p].id, "stock")
    }

    fn coding(&self, p: usize) -> Vec<u8> {
        let n = self.seq.fetch_add(1, Ordering::Relaxed);
        let s = &self.producers[p];
        let rec = BatchCode {
            batch_id: format!("BENCH-BATCH-{n:010}"),
            product_id: "pork-chilled".into(),
            quantity: 250 + n % 500,
            unit: "kg".into(),
            production_date: self.today.clone(),
            expiry_date: "2099-12-31".into(),
            origin_region: DISTRICT.into(),
            upstream: None,
            certificates: vec![],
            rapid_tests: vec![],
        };
        self.signer.sign(&s.key, &s.id, "batch.code", &rec)
    }

    /// A one-line shipment from producer `p`'s stock to receiver `r`;
    /// returns the transaction and (shipper, shipment id).
    fn shipment(&self, p: usize, r: usize) -> (Vec<u8>, (String, String)) {
        let n = self.seq.fetch_add(1, Ordering::Relaxed);
        let s = &self.producers[p];
        let sid = format!("BENCH-SHIP-{n:010}");
        let rec = ShipmentCreate {
            shipment_id: sid.clone(),
            to: self.receivers[r].id.clone(),
            lines: vec![ShipmentLine {
                trace_code: self.stock_trace(p),
                quantity: 1 + n % 7,
            }],
        };
        (
            self.signer.sign(&s.key, &s.id, "shipment.create", &rec),
            (s.id.clone(), sid),
        )
    }

    fn receipt(&self, r: usize, shipper: &str, sid: &str) -> Vec<u8> {
        let s = &self.receivers[r];
        let rec = ShipmentReceive {
            shipper: shipper.into(),
            shipment_id: sid.into(),
        };
        self.signer.sign(&s.key, &s.id, "shipment.receive", &rec)
    }

    /// One client's stream of `count` transactions in groups of [`GROUP`]:
    /// receipts refer to shipments of the previous group, so sent in order,
    /// each waiting for commit, every transaction is valid when applied.
    fn stream(&self, client: usize, count: usize) -> Vec<Vec<u8>> {
        let p = client % PRODUCERS;
        let r = client % RECEIVERS;
        let ships = GROUP * 3 / 10;
        let mut out = Vec::with_capacity(count);
        let mut prev: Vec<(String, String)> = Vec::new();
        while out.len() < count {
            let mut made = Vec::with_capacity(ships);
            for _ in 0..ships {
                let (tx, id) = self.shipment(p, r);
                out.push(tx);
                made.push(id);
            }
            for (shipper, sid) in &prev {
                out.push(self.receipt(r, shipper, sid));
            }
            while out.len() % GROUP != 0 {
                out.push(self.coding(p));
            }
            prev = made;
        }
        // The tail may name shipments of a group cut short: keep whole groups.
        out.truncate(count.div_ceil(GROUP) * GROUP);
        out
    }
}

/// Builds client streams on every core (signing limits how much a run can pre-sign).
fn sign_streams(
    w: &World,
    first_client: usize,
    clients: usize,
    per_client: usize,
) -> Vec<Vec<Vec<u8>>> {
    let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
    let next = AtomicU64::new(0);
    let out: Mutex<Vec<(usize, Vec<Vec<u8>>)>> = Mutex::new(Vec::with_capacity(clients));
    std::thread::scope(|s| {
        for _ in 0..cores {
            s.spawn(|| loop {
                let c = next.fetch_add(1, Ordering::Relaxed) as usize;
                if c >= clients {
                    break;
                }
                let stream = w.stream(first_client + c, per_client);
                out.lock().expect("lock").push((c, stream));
            });
        }
    });
    let mut v = out.into_inner().expect("lock");
    v.sort_by_key(|(c, _)| *c);
    v.into_iter().map(|(_, s)| s).collect()
}

#[derive(Default)]
struct Tally {
    committed: u64,
    refused: BTreeMap<String, u64>,
    /// Submit→commit latency of each committed transaction, in µs.
    latencies_us: Vec<u64>,
}

impl Tally {
    fn merge(&mut self, o: Tally) {
        self.committed += o.committed;
        for (k, v) in o.refused {
            *self.refused.entry(k).or_default() += v;
        }
        self.latencies_us.extend(o.latencies_us);
    }

    fn note(&mut self, v: &Value, us: u64) {
        if v["status"] == "committed" {
            self.committed += 1;
            self.latencies_us.push(us);
        } else {
            let code = v["code"].as_str().unwrap_or("no_answer").to_string();
            *self.refused.entry(code).or_default() += 1;
        }
    }

    fn percentile_ms(&mut self, p: f64) -> f64 {
        percentile(&mut self.latencies_us, p)
    }

    fn refused_note(&self) -> String {
        if self.refused.is_empty() {
            "none refused".into()
        } else {
            format!("refused or failed: {:?}", self.refused)
        }
    }
}

fn percentile(v: &mut [u64], p: f64) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_unstable();
    let i = ((v.len() - 1) as f64 * p).round() as usize;
    v[i] as f64 / 1000.0
}

/// The most recent commit a client saw (for the sealing sampler).
type LastCommit = Arc<Mutex<Option<(String, Instant)>>>;

/// One client per stream, each on its own keep-alive connection to node
/// `c % nodes`, one transaction at a time until the deadline or its stream
/// ends. `pace` spaces a client's submissions (for the half-load run).
/// Returns the tally and the elapsed seconds.
async fn closed_loop(
    apis: &[String],
    streams: Vec<Vec<Vec<u8>>>,
    secs: f64,
    pace: Option<Duration>,
    last: Option<LastCommit>,
) -> (Tally, f64) {
    let start = Instant::now();
    let deadline = start + Duration::from_secs_f64(secs);
    let mut tasks = tokio::task::JoinSet::new();
    for (c, stream) in streams.into_iter().enumerate() {
        let url = format!("{}/v1/tx?wait=commit", apis[c % apis.len()]);
        let last = last.clone();
        tasks.spawn(async move {
            // One connection per client, as independent ERP clients would have.
            let http = reqwest::Client::builder()
                .pool_max_idle_per_host(1)
                .timeout(Duration::from_secs(60))
                .build()
                .expect("client");
            let mut t = Tally::default();
            let mut next = Instant::now();
            if let Some(p) = pace {
                // Spread the clients' first submissions over one period.
                next += p.mul_f64((c % 997) as f64 / 997.0);
            }
            for tx in stream {
                if let Some(p) = pace {
                    tokio::time::sleep_until(next.into()).await;
                    next += p;
                }
                if Instant::now() >= deadline {
                    break;
                }
                let t0 = Instant::now();
                let answer = match http
                    .post(&url)
                    .header("content-type", "application/json")
                    .body(tx)
                    .send()
                    .await
                {
                    Ok(r) => r.json::<Value>().await.unwrap_or(Value::Null),
                    Err(_) => Value::Null,
                };
                t.note(&answer, t0.elapsed().as_micros() as u64);
                if let (Some(last), Some(id)) = (&last, answer["tx_id"].as_str()) {
                    if answer["status"] == "committed" {
                        *last.lock().expect("lock") = Some((id.to_string(), Instant::now()));
                    }
                }
            }
            (t, Instant::now())
        });
    }
    join_clients(tasks, start).await
}

/// Merges the clients' tallies; the run lasted until the last one finished.
async fn join_clients(
    mut tasks: tokio::task::JoinSet<(Tally, Instant)>,
    start: Instant,
) -> (Tally, f64) {
    let mut total = Tally::default();
    let mut end = start;
    while let Some(r) = tasks.join_next().await {
        let (t, done) = r.expect("client task");
        total.merge(t);
        end = end.max(done);
    }
    (total, end.duration_since(start).as_secs_f64())
}

/// Batch clients: each posts its stream in `/v1/txs?wait=commit` requests of `size`.
async fn batch_clients(
    apis: &[String],
    streams: Vec<Vec<Vec<u8>>>,
    size: usize,
    secs: f64,
) -> (Tally, f64) {
    let start = Instant::now();
    let deadline = start + Duration::from_secs_f64(secs);
    let mut tasks = tokio::task::JoinSet::new();
    for (c, stream) in streams.into_iter().enumerate() {
        let url = format!("{}/v1/txs?wait=commit", apis[c % apis.len()]);
        tasks.spawn(async move {
            let http = reqwest::Client::builder()
                .timeout(Duration::from_secs(60))
                .build()
                .expect("client");
            let mut t = Tally::default();
            for g in stream.chunks(size) {
                if Instant::now() >= deadline {
                    break;
                }
                let mut body = Vec::with_capacity(g.len() * 600);
                body.push(b'[');
                for (j, tx) in g.iter().enumerate() {
                    if j > 0 {
                        body.push(b',');
                    }
                    body.extend_from_slice(tx);
                }
                body.push(b']');
                let t0 = Instant::now();
                let answer = match http
                    .post(&url)
                    .header("content-type", "application/json")
                    .body(body)
                    .send()
                    .await
                {
                    Ok(r) => r.json::<Value>().await.ok(),
                    Err(_) => None,
                };
                let us = t0.elapsed().as_micros() as u64;
                match answer.as_ref().and_then(|a| a["results"].as_array()) {
                    Some(rs) => rs.iter().for_each(|r| t.note(r, us)),
                    None => *t.refused.entry("batch_failed".into()).or_default() += g.len() as u64,
                }
            }
            (t, Instant::now())
        });
    }
    join_clients(tasks, start).await
}

/// Samples the latest commit every `every` and measures how long until
/// its evidence is sealed (`GET /v1/evidence/{id}` answers 200); stops at `until`.
async fn sealing_sampler(
    api: String,
    reader: SigningKey,
    last: LastCommit,
    every: Duration,
    until: Instant,
) -> Vec<u64> {
    let http = reqwest::Client::new();
    let mut out = Vec::new();
    let mut seen = String::new();
    while Instant::now() < until {
        tokio::time::sleep(every).await;
        let Some((id, committed_at)) = last.lock().expect("lock").clone() else {
            continue;
        };
        if id == seen {
            continue;
        }
        seen = id.clone();
        let give_up = Instant::now() + Duration::from_secs(10);
        while Instant::now() < give_up {
            // Evidence is for parties and regulators: read as the root regulator.
            let path = format!("/v1/evidence/{id}");
            let mut req = http.get(format!("{api}{path}"));
            for (name, value) in zsl_tests::signature_headers(&reader, "GET", &path, b"") {
                req = req.header(name, value);
            }
            let ok = req
                .send()
                .await
                .map(|r| r.status().as_u16() == 200)
                .unwrap_or(false);
            if ok {
                out.push(committed_at.elapsed().as_micros() as u64);
                break;
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    }
    out
}

/// (utime + stime) seconds and peak RSS in MiB of a process, from /proc.
fn proc_usage(pid: u32, ticks: f64) -> (f64, f64) {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the command name, which is in parentheses and may hold spaces.
    let rest = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
    let f: Vec<&str> = rest.split_whitespace().collect();
    let t = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    // utime and stime are fields 14 and 15; `rest` starts at field 3.
    let cpu = (t(11) + t(12)) / ticks;
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let rss = status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|kb| kb.parse::<f64>().ok())
        .map(|kb| kb / 1024.0)
        .unwrap_or(f64::NAN);
    (cpu, rss)
}

fn clock_ticks() -> f64 {
    Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(100.0)
}

fn du_bytes(path: &std::path::Path) -> u64 {
    Command::new("du")
        .args(["-sb"])
        .arg(path)
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

/// Submits setup transactions in batches and insists every one commits.
fn setup(api: &str, txs: Vec<Vec<u8>>) {
    let client = zsl_tests::http();
    for chunk in txs.chunks(500) {
        let body = format!(
            "[{}]",
            chunk
                .iter()
                .map(|t| String::from_utf8_lossy(t).into_owned())
                .collect::<Vec<_>>()
                .join(",")
        );
        let a: Value = client
            .post(format!("{api}/v1/txs?wait=commit"))
            .header("content-type", "application/json")
            .body(body)
            .send()
            .and_then(|r| r.json())
            .expect("setup answer");
        for r in a["results"].as_array().expect("results") {
            assert_eq!(r["status"], "committed", "setup refused: {r}");
        }
    }
}

/// One-core Ed25519 rates: (single verifies/s, batch-of-256 verifies/s).
fn ed25519_rates() -> (f64, f64) {
    let keys: Vec<SigningKey> = (0..256u32)
        .map(|i| SigningKey::from_bytes(&ledger::hash::sha256(&i.to_le_bytes())))
        .collect();
    let msgs: Vec<Vec<u8>> = (0..256u32)
        .map(|i| format!("{i:0>400}").into_bytes())
        .collect();
    let sigs: Vec<_> = keys.iter().zip(&msgs).map(|(k, m)| k.sign(m)).collect();
    let vks: Vec<_> = keys.iter().map(|k| k.verifying_key()).collect();
    let budget = Duration::from_secs(2);
    let t0 = Instant::now();
    let mut n = 0u64;
    while t0.elapsed() < budget && n < 10_000_000 {
        for i in 0..256 {
            vks[i].verify(&msgs[i], &sigs[i]).expect("verify");
        }
        n += 256;
    }
    let single = n as f64 / t0.elapsed().as_secs_f64();
    let refs: Vec<&[u8]> = msgs.iter().map(|m| m.as_slice()).collect();
    let t0 = Instant::now();
    let mut n = 0u64;
    while t0.elapsed() < budget && n < 10_000_000 {
        ed25519_dalek::verify_batch(&refs, &sigs, &vks).expect("batch verify");
        n += 256;
    }
    (single, n as f64 / t0.elapsed().as_secs_f64())
}

/// The highest Raft term any node reports: a rise during a run means
/// leader elections happened under load.
fn max_term(cluster: &TestCluster) -> u64 {
    cluster
        .ids()
        .into_iter()
        .filter_map(|id| cluster.status(id)?["term"].as_u64())
        .max()
        .unwrap_or(0)
}

/// Waits (bounded) until every node names the same leader; `None` if
/// they do not within `secs`, so a cluster left unsettled by the previous
/// run is reported rather than aborting the bench.
fn settle(cluster: &TestCluster, secs: u64) -> Option<u64> {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while Instant::now() < deadline {
        let leaders: std::collections::BTreeSet<Option<u64>> = cluster
            .ids()
            .into_iter()
            .map(|id| cluster.status(id).and_then(|s| s["leader"].as_u64()))
            .collect();
        if let (1, Some(Some(l))) = (leaders.len(), leaders.first()) {
            return Some(*l);
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    None
}

/// Block heights `[from, to]` that carry no transaction (signature-only blocks).
fn signature_only_blocks(api: &str, from: u64, to: u64) -> (u64, u64) {
    let http = zsl_tests::http();
    let (mut all, mut empty) = (0, 0);
    // At most 5,000 headers are read: a sample of the range when it is longer.
    let step = ((to.saturating_sub(from) + 1) / 5_000).max(1);
    let mut h = from;
    while h <= to {
        if let Ok(b) = http
            .get(format!("{api}/v1/blocks/{h}"))
            .send()
            .and_then(|r| r.json::<Value>())
        {
            all += 1;
            if b["header"]["tx_count"].as_u64() == Some(0) {
                empty += 1;
            }
        }
        h += step;
    }
    (all, empty)
}

/// A closed-loop run's measurements.
struct RunResult {
    clients: usize,
    tally: Tally,
    secs: f64,
    /// CPU seconds per node (id, seconds) during the run.
    cpu: Vec<(u64, f64)>,
    /// The load generator's own CPU seconds.
    client_cpu: f64,
    term: (u64, u64),
    heights: (u64, u64),
}

impl RunResult {
    fn tps(&self) -> f64 {
        self.tally.committed as f64 / self.secs.max(1e-9)
    }
}

fn head_height(cluster: &TestCluster, id: u64) -> u64 {
    cluster
        .status(id)
        .and_then(|s| s["height"].as_u64())
        .unwrap_or(0)
}

#[cfg(feature = "etcd")]
mod etcd {
    //! A 3-member etcd on loopback driven over gRPC.
    use super::*;
    use std::process::{Child, Stdio};

    /// Kills etcd members on drop, whatever happens.
    pub struct Etcd {
        children: Vec<Child>,
        _dir: tempfile::TempDir,
        pub endpoints: Vec<String>,
    }

    impl Drop for Etcd {
        fn drop(&mut self) {
            for c in &mut self.children {
                let _ = c.kill();
                let _ = c.wait();
            }
        }
    }

    fn free_port() -> u16 {
        std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .expect("free port")
    }

    pub fn binary() -> Option<std::path::PathBuf> {
        ["/usr/bin/etcd", "/usr/local/bin/etcd"]
            .iter()
            .map(std::path::PathBuf::from)
            .find(|p| p.exists())
    }

    /// Starts three members (fsync on, etcd's defaults) and waits until each takes a put.
    pub async fn start() -> Result<Etcd, String> {
        let bin = binary().ok_or("etcd not installed (Debian: etcd-server)")?;
        let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
        let ports: Vec<(u16, u16)> = (0..3).map(|_| (free_port(), free_port())).collect();
        let cluster = ports
            .iter()
            .enumerate()
            .map(|(i, (_, peer))| format!("m{i}=http://127.0.0.1:{peer}"))
            .collect::<Vec<_>>()
            .join(",");
        let mut etcd = Etcd {
            children: Vec::new(),
            endpoints: ports
                .iter()
                .map(|(c, _)| format!("http://127.0.0.1:{c}"))
                .collect(),
            _dir: dir,
        };
        let root = etcd._dir.path().to_path_buf();
        for (i, (client, peer)) in ports.iter().enumerate() {
            let log =
                std::fs::File::create(root.join(format!("m{i}.log"))).map_err(|e| e.to_string())?;
            let child = Command::new(&bin)
                .arg(format!("--name=m{i}"))
                .arg(format!(
                    "--data-dir={}",
                    root.join(format!("m{i}")).display()
                ))
                .arg(format!("--listen-client-urls=http://127.0.0.1:{client}"))
                .arg(format!("--advertise-client-urls=http://127.0.0.1:{client}"))
                .arg(format!("--listen-peer-urls=http://127.0.0.1:{peer}"))
                .arg(format!(
                    "--initial-advertise-peer-urls=http://127.0.0.1:{peer}"
                ))
                .arg(format!("--initial-cluster={cluster}"))
                .arg("--initial-cluster-state=new")
                .arg("--initial-cluster-token=zsl-bench")
                // Room for the 1,000-client run's data.
                .arg("--quota-backend-bytes=8589934592")
                .stdin(Stdio::null())
                .stdout(log.try_clone().map_err(|e| e.to_string())?)
                .stderr(log)
                .spawn()
                .map_err(|e| format!("starting etcd: {e}"))?;
            etcd.children.push(child);
        }
        let ready = Instant::now() + Duration::from_secs(60);
        for e in etcd.endpoints.clone() {
            loop {
                let ok = async {
                    let mut c = etcd_client::Client::connect([e.as_str()], None)
                        .await
                        .ok()?;
                    c.put("ready", "1", None).await.ok()
                }
                .await
                .is_some();
                if ok {
                    break;
                }
                if Instant::now() > ready {
                    return Err("etcd did not become ready in 60 s".into());
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
        Ok(etcd)
    }

    /// `clients` closed-loop clients putting distinct keys with `value_size`-byte values.
    pub async fn drive(
        etcd: &Etcd,
        run: usize,
        clients: usize,
        value_size: usize,
        secs: f64,
    ) -> Result<(Tally, f64), String> {
        let conns = clients.div_ceil(10).clamp(1, 100);
        let mut kvs = Vec::with_capacity(conns);
        for i in 0..conns {
            let c = etcd_client::Client::connect(
                [etcd.endpoints[i % etcd.endpoints.len()].as_str()],
                None,
            )
            .await
            .map_err(|e| e.to_string())?;
            kvs.push(c.kv_client());
        }
        let value = vec![b'v'; value_size];
        let start = Instant::now();
        let deadline = start + Duration::from_secs_f64(secs);
        let mut tasks = tokio::task::JoinSet::new();
        for c in 0..clients {
            let mut kv = kvs[c % conns].clone();
            let value = value.clone();
            tasks.spawn(async move {
                let mut t = Tally::default();
                let mut i = 0u64;
                while Instant::now() < deadline {
                    let key = format!("bench/{run}/{c}/{i}");
                    let t0 = Instant::now();
                    match kv.put(key, value.clone(), None).await {
                        Ok(_) => {
                            t.committed += 1;
                            t.latencies_us.push(t0.elapsed().as_micros() as u64);
                        }
                        Err(_) => *t.refused.entry("put_failed".into()).or_default() += 1,
                    }
                    i += 1;
                }
                (t, Instant::now())
            });
        }
        let mut total = Tally::default();
        let mut end = start;
        while let Some(r) = tasks.join_next().await {
            let (t, done) = r.map_err(|e| e.to_string())?;
            total.merge(t);
            end = end.max(done);
        }
        Ok((total, end.duration_since(start).as_secs_f64()))
    }

    pub fn pids(etcd: &Etcd) -> Vec<u32> {
        etcd.children.iter().map(|c| c.id()).collect()
    }
}

fn main() {
    let secs = env_usize("ZSL_BENCH_SECS", 20) as f64;
    let budget = env_usize("ZSL_BENCH_TXS", 200_000);
    let ticks = clock_ticks();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");

    // `ZSL_BENCH_NODE_CONFIG`: more TOML for every node (trying levers).
    let extra = std::env::var("ZSL_BENCH_NODE_CONFIG")
        .unwrap_or_default()
        .replace("\\n", "\n");
    let mut cluster = TestCluster::start_with(3, &format!("[api]\nrate_limit_per_s = 0\n{extra}"));
    let leader = cluster.leader(60_000);
    let ids = cluster.ids();
    let apis: Vec<String> = ids.iter().map(|&id| cluster.api(id).to_string()).collect();
    let leader_api = cluster.api(leader).to_string();
    let root = cluster.root_key();
    let root_id = cluster.root.account.clone();
    let mk = |kind: &str, n: usize| -> Vec<Subject> {
        (0..n)
            .map(|i| {
                let id =
                    zsl_tests::uscc(DISTRICT, (if kind == "p" { 0 } else { 1_000 } + i) as u32);
                Subject {
                    key: zsl_tests::test_key(&format!("bench/{id}")),
                    id,
                }
            })
            .collect()
    };
    let now_ms = jiff::Timestamp::now().as_millisecond();
    let w = World {
        signer: Signer {
            chain_id: cluster.spec.chain_id.clone(),
            nonce: AtomicU64::new(0),
        },
        producers: mk("p", PRODUCERS),
        receivers: mk("r", RECEIVERS),
        today: ledger::score::local_date(&cluster.spec.model, now_ms)
            .expect("date")
            .to_string(),
        seq: AtomicU64::new(0),
    };

    // Setup: subjects, a product and a large stock batch per producer.
    let reg = |s: &Subject, kind: SubjectKind| SubjectRegister {
        uscc: s.id.clone(),
        name: format!("基准测试企业 {}", s.id),
        kind,
        district: DISTRICT.into(),
        key_subject: false,
        public_key: hex::encode(s.key.verifying_key().to_bytes()),
        market: None,
    };
    let mut txs = Vec::new();
    for s in &w.producers {
        txs.push(w.signer.sign(
            &root,
            &root_id,
            "subject.register",
            &reg(s, SubjectKind::Producer),
        ));
    }
    for s in &w.receivers {
        txs.push(w.signer.sign(
            &root,
            &root_id,
            "subject.register",
            &reg(s, SubjectKind::Supermarket),
        ));
    }
    setup(&leader_api, std::mem::take(&mut txs));
    for s in &w.producers {
        let p = ProductRegister {
            product_id: "pork-chilled".into(),
            name: "冷鲜猪肉（基准测试）".into(),
            gtin: None,
            variety: "meat".into(),
            shelf_life_days: 3650,
        };
        txs.push(w.signer.sign(&s.key, &s.id, "product.register", &p));
    }
    setup(&leader_api, std::mem::take(&mut txs));
    for s in &w.producers {
        let rec = BatchCode {
            batch_id: "stock".into(),
            product_id: "pork-chilled".into(),
            quantity: STOCK,
            unit: "kg".into(),
            production_date: w.today.clone(),
            expiry_date: "2099-12-31".into(),
            origin_region: DISTRICT.into(),
            upstream: None,
            certificates: vec![],
            rapid_tests: vec![],
        };
        txs.push(w.signer.sign(&s.key, &s.id, "batch.code", &rec));
    }
    setup(&leader_api, txs);

    // Idle sealing: one commit, then the time until its evidence is sealed.
    let idle_seal_ms: Vec<f64> = rt.block_on(async {
        let mut out = Vec::new();
        for i in 0..5 {
            let last: LastCommit = Arc::default();
            let stream = w
                .stream(5_000 + i, 1)
                .into_iter()
                .take(1)
                .collect::<Vec<_>>();
            closed_loop(&apis[..1], vec![stream], 30.0, None, Some(last.clone())).await;
            let s = sealing_sampler(
                apis[0].clone(),
                cluster.root_key(),
                last,
                Duration::from_millis(1),
                Instant::now() + Duration::from_millis(5),
            )
            .await;
            out.extend(s.into_iter().map(|us| us as f64 / 1000.0));
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
        out
    });

    let mut raw_bytes = 0u64;
    let mut raw_count = 0u64;
    let mut runs: Vec<RunResult> = Vec::new();
    let mut under_load_seal: Vec<u64> = Vec::new();
    let mut first_client = 0usize;
    // `ZSL_BENCH_QUICK=N`: one closed-loop run of N clients and its CPU per
    // node, nothing else (for trying a lever; not what scripts/bench reports).
    if let Some(clients) = std::env::var("ZSL_BENCH_QUICK")
        .ok()
        .and_then(|v| v.parse::<usize>().ok())
    {
        let streams = sign_streams(&w, 0, clients, (budget / clients).max(GROUP));
        let cpu0: Vec<f64> = ids
            .iter()
            .map(|&id| proc_usage(cluster.pid(id).expect("pid"), ticks).0)
            .collect();
        let (mut t, run_secs) = rt.block_on(closed_loop(&apis, streams, secs, None, None));
        let cpu: Vec<String> = ids
            .iter()
            .zip(&cpu0)
            .map(|(&id, c0)| {
                format!(
                    "{:.0}",
                    (proc_usage(cluster.pid(id).expect("pid"), ticks).0 - c0) * 1e6
                        / t.committed.max(1) as f64
                )
            })
            .collect();
        println!(
            "quick: {clients} clients, {:.0} tx/s, p50 {:.1} ms, p99 {:.1} ms, CPU µs/tx per node {} ({})",
            t.committed as f64 / run_secs,
            t.percentile_ms(0.5),
            t.percentile_ms(0.99),
            cpu.join(" / "),
            t.refused_note()
        );
        return;
    }
    for clients in CLIENT_COUNTS {
        settle(&cluster, 30);
        let per_client = if clients == 1 {
            3_000
        } else {
            (budget / clients).max(GROUP)
        };
        let t_sign = Instant::now();
        let streams = sign_streams(&w, first_client, clients, per_client);
        first_client += clients;
        for t in streams.iter().flatten() {
            raw_bytes += t.len() as u64;
            raw_count += 1;
        }
        eprintln!(
            "{clients} clients: pre-signed {} txs in {:.1} s",
            clients * per_client,
            t_sign.elapsed().as_secs_f64()
        );
        let term0 = max_term(&cluster);
        let h0 = head_height(&cluster, leader);
        let cpu0: Vec<f64> = ids
            .iter()
            .map(|&id| proc_usage(cluster.pid(id).expect("pid"), ticks).0)
            .collect();
        let me0 = proc_usage(std::process::id(), ticks).0;
        let last: LastCommit = Arc::default();
        let sampler = (clients == 256).then(|| {
            rt.spawn(sealing_sampler(
                apis[0].clone(),
                cluster.root_key(),
                last.clone(),
                Duration::from_millis(500),
                Instant::now() + Duration::from_secs_f64(secs - 1.0),
            ))
        });
        let (tally, run_secs) = rt.block_on(closed_loop(&apis, streams, secs, None, Some(last)));
        if let Some(s) = sampler {
            under_load_seal = rt.block_on(s).unwrap_or_default();
        }
        let cpu1: Vec<f64> = ids
            .iter()
            .map(|&id| proc_usage(cluster.pid(id).expect("pid"), ticks).0)
            .collect();
        let me1 = proc_usage(std::process::id(), ticks).0;
        let r = RunResult {
            clients,
            secs: run_secs,
            cpu: ids
                .iter()
                .zip(cpu0.iter().zip(&cpu1))
                .map(|(&id, (a, b))| (id, b - a))
                .collect(),
            client_cpu: me1 - me0,
            term: (term0, max_term(&cluster)),
            heights: (h0 + 1, head_height(&cluster, leader)),
            tally,
        };
        eprintln!(
            "{clients} clients: {} committed in {:.1} s ({:.0} tx/s), {}",
            r.tally.committed,
            r.secs,
            r.tps(),
            r.tally.refused_note()
        );
        runs.push(r);
    }
    let raw_per_tx = raw_bytes as f64 / raw_count.max(1) as f64;

    // Half load: 256 clients paced to half the 256-client peak together.
    settle(&cluster, 30);
    let peak256 = runs
        .iter()
        .find(|r| r.clients == 256)
        .map_or(1000.0, |r| r.tps());
    let half_rate = peak256 / 2.0;
    let half_secs = secs.max(10.0);
    let pace = Duration::from_secs_f64(256.0 / half_rate.max(1.0));
    let per_client = ((half_rate * half_secs / 256.0).ceil() as usize + GROUP).max(GROUP);
    let streams = sign_streams(&w, first_client, 256, per_client);
    first_client += 256;
    let (mut half, half_elapsed) =
        rt.block_on(closed_loop(&apis, streams, half_secs, Some(pace), None));
    eprintln!(
        "half load: {} committed in {half_elapsed:.1} s, {}",
        half.committed,
        half.refused_note()
    );

    // Batch clients (`POST /v1/txs`).
    settle(&cluster, 30);
    let streams = sign_streams(
        &w,
        first_client,
        BATCH_CLIENTS,
        (budget / BATCH_CLIENTS).max(BATCH_SIZE),
    );
    first_client += BATCH_CLIENTS;
    let term_b0 = max_term(&cluster);
    let (mut batch, batch_secs) = rt.block_on(batch_clients(&apis, streams, BATCH_SIZE, secs));
    let term_b1 = max_term(&cluster);
    eprintln!(
        "batch clients: {} committed in {batch_secs:.1} s, {}",
        batch.committed,
        batch.refused_note()
    );

    // Single client at the leader (the 1-client run above went to node 1).
    settle(&cluster, 30);
    let leader = settle(&cluster, 30).unwrap_or(leader);
    let streams = sign_streams(&w, first_client, 1, 3_000);
    let (mut one_leader, _) = rt.block_on(closed_loop(
        &[cluster.api(leader).to_string()],
        streams,
        10.0,
        None,
        None,
    ));
    let follower = ids
        .iter()
        .copied()
        .find(|&id| id != leader)
        .unwrap_or(leader);
    let streams = sign_streams(&w, first_client + 1, 1, 3_000);
    let (mut one_follower, _) = rt.block_on(closed_loop(
        &[cluster.api(follower).to_string()],
        streams,
        10.0,
        None,
        None,
    ));

    let term_end = max_term(&cluster);
    let tree_size = cluster
        .status(leader)
        .and_then(|s| s["tree_size"].as_u64())
        .unwrap_or(0);
    let (blocks_seen, sig_only) = runs.iter().find(|r| r.clients == 256).map_or((0, 0), |r| {
        signature_only_blocks(&leader_api, r.heights.0, r.heights.1)
    });
    let rss: Vec<(u64, f64)> = ids
        .iter()
        .map(|&id| (id, proc_usage(cluster.pid(id).expect("pid"), ticks).1))
        .collect();
    for &id in &ids {
        cluster.stop(id);
    }
    let disk: Vec<f64> = ids
        .iter()
        .map(|&id| du_bytes(&cluster.data_dir(id)) as f64 / tree_size.max(1) as f64)
        .collect();
    drop(cluster);

    let (verify1, verify_batch) = ed25519_rates();
    let etcd_runs = rt.block_on(etcd_runs(raw_per_tx.round() as usize, secs, ticks));

    // ---- the table ----
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    println!("| measure | ZSL | etcd (gRPC) | ZSL ÷ etcd |");
    println!("| --- | --- | --- | --- |");
    for r in &mut runs {
        let e = etcd_runs
            .as_ref()
            .ok()
            .and_then(|v| v.iter().find(|e| e.0 == r.clients));
        let (e_tps, e_p50, e_p99) = e.map_or((f64::NAN, f64::NAN, f64::NAN), |e| (e.1, e.2, e.3));
        let tps = r.tps();
        println!(
            "| {} client{}, one tx at a time: committed tx/s | {tps:.0} | {e_tps:.0} | {:.2} |",
            r.clients,
            if r.clients == 1 { "" } else { "s" },
            tps / e_tps
        );
        let (p50, p99) = (r.tally.percentile_ms(0.5), r.tally.percentile_ms(0.99));
        println!(
            "| {} client{}: submit→commit p50 / p99 | {p50:.2} / {p99:.2} ms | {e_p50:.2} / {e_p99:.2} ms | p50 {:.2}× |",
            r.clients,
            if r.clients == 1 { "" } else { "s" },
            p50 / e_p50
        );
    }
    println!(
        "| half load (256 clients paced to {half_rate:.0} tx/s): committed tx/s, p50 / p99 | {:.0}, {:.1} / {:.1} ms | | |",
        half.committed as f64 / half_elapsed,
        half.percentile_ms(0.5),
        half.percentile_ms(0.99)
    );
    println!(
        "| batch clients ({BATCH_CLIENTS} × {BATCH_SIZE} txs per `POST /v1/txs`): committed tx/s, p50 / p99 | {:.0}, {:.1} / {:.1} ms | | |",
        batch.committed as f64 / batch_secs,
        batch.percentile_ms(0.5),
        batch.percentile_ms(0.99)
    );
    println!(
        "| one client, one tx at a time, p50 / p99 at the leader · via a follower | {:.2} / {:.2} · {:.2} / {:.2} ms | | |",
        one_leader.percentile_ms(0.5),
        one_leader.percentile_ms(0.99),
        one_follower.percentile_ms(0.5),
        one_follower.percentile_ms(0.99)
    );
    for r in &runs {
        let per_node: Vec<String> = r
            .cpu
            .iter()
            .map(|(id, s)| {
                format!(
                    "node {id}{} {:.0}",
                    if *id == leader { " (leader)" } else { "" },
                    s * 1e6 / r.tally.committed.max(1) as f64
                )
            })
            .collect();
        println!(
            "| {} clients: CPU µs per committed tx | {} · load generator {:.0} | | |",
            r.clients,
            per_node.join(" · "),
            r.client_cpu * 1e6 / r.tally.committed.max(1) as f64
        );
    }
    if let Ok(v) = &etcd_runs {
        let per: Vec<String> = v
            .iter()
            .map(|e| format!("{} clients {:.0}", e.0, e.4 * 1e6 / e.5.max(1) as f64))
            .collect();
        println!(
            "| etcd: CPU µs per put, all three members together | | {} | |",
            per.join(" · ")
        );
    }
    let terms: Vec<String> = runs
        .iter()
        .map(|r| format!("{}→{}", r.term.0, r.term.1))
        .collect();
    println!(
        "| Raft term across runs (1 / 256 / 1,000 clients; batch) | {} ; {term_b0}→{term_b1}; end {term_end} | | a rise means an election |",
        terms.join(" / ")
    );
    let mut idle = idle_seal_ms.clone();
    idle.sort_by(|a, b| a.total_cmp(b));
    let idle_med = idle.get(idle.len() / 2).copied().unwrap_or(f64::NAN);
    println!(
        "| commit → sealed evidence, median: idle · under 256-client load | {idle_med:.1} ms ({} samples) · {:.1} ms ({} samples) | | |",
        idle.len(),
        percentile(&mut under_load_seal, 0.5),
        under_load_seal.len()
    );
    println!(
        "| blocks in the 256-client run: read / signature-only | {blocks_seen} / {sig_only} | | |"
    );
    for ((id, rss), disk) in rss.iter().zip(&disk) {
        println!(
            "| node {id}: peak RSS / disk per tx after a clean stop | {rss:.0} MiB / {disk:.0} B ({:.2}× raw {raw_per_tx:.0} B) | | |",
            disk / raw_per_tx
        );
    }
    println!("| Ed25519 on one core: verify · batch verify (256) | {verify1:.0} /s · {verify_batch:.0} /s | | |");
    if let Err(why) = &etcd_runs {
        println!("| etcd | | not measured: {why} | |");
    }
    for r in &runs {
        if !r.tally.refused.is_empty() {
            println!("\n{} clients: {}", r.clients, r.tally.refused_note());
        }
    }
    println!(
        "\n{cores} cores; nodes built with the `dev` profile (opt-level 2 for the node's crates and dependencies); every transaction distinct and signed before its run."
    );
    let _ = (&mut one_leader, &mut batch);
}

/// etcd at each client count: (clients, puts/s, p50 ms, p99 ms, CPU s of the members, puts).
#[cfg(feature = "etcd")]
async fn etcd_runs(
    value_size: usize,
    secs: f64,
    ticks: f64,
) -> Result<Vec<(usize, f64, f64, f64, f64, u64)>, String> {
    let e = etcd::start().await?;
    let mut out = Vec::new();
    for (run, clients) in CLIENT_COUNTS.into_iter().enumerate() {
        let cpu0: f64 = etcd::pids(&e).iter().map(|p| proc_usage(*p, ticks).0).sum();
        let (mut t, s) = etcd::drive(&e, run, clients, value_size, secs).await?;
        let cpu1: f64 = etcd::pids(&e).iter().map(|p| proc_usage(*p, ticks).0).sum();
        eprintln!("etcd {clients} clients: {} puts in {s:.1} s", t.committed);
        out.push((
            clients,
            t.committed as f64 / s,
            t.percentile_ms(0.5),
            t.percentile_ms(0.99),
            cpu1 - cpu0,
            t.committed,
        ));
    }
    Ok(out)
}

#[cfg(not(feature = "etcd"))]
async fn etcd_runs(
    _value_size: usize,
    _secs: f64,
    _ticks: f64,
) -> Result<Vec<(usize, f64, f64, f64, f64, u64)>, String> {
    Err("built without `--features zsl-tests/etcd` (needs protoc)".into())
}
