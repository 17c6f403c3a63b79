//! Cluster throughput benchmark (issue 3, item 7): distinct signed
//! transactions in a realistic mix (≈40% batch.code, 30% shipment.create,
//! 30% shipment.receive) from concurrent HTTP clients to a three-validator
//! loopback cluster of real `zsl node run` processes; in the same run, this
//! machine's one-core Ed25519 verify rates and, when installed, a 3-member
//! etcd put rate. Prints a markdown table (scripts/bench appends it to
//! bench/RESULTS.md).
//!
//! Run: `scripts/bench` (`cargo bench --workspace --bench cluster --profile dev`).
//! Environment: `ZSL_BENCH_SECS` (full-load run, default 30),
//! `ZSL_BENCH_TXS` (transactions pre-signed for it, default 150,000),
//! `ZSL_BENCH_CLIENTS` (batch clients, default 16), `ZSL_BENCH_BATCH`
//! (transactions per `/v1/txs` request, default 100).

use std::collections::BTreeMap;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use ed25519_dalek::{Signer as _, SigningKey, Verifier as _};
use serde::Serialize;
use serde_json::Value;

use ledger::record::*;
use zsl_tests::TestCluster;

/// Single-transaction clients (`POST /v1/tx`) alongside the batch clients.
const SINGLE_CLIENTS: usize = 4;
/// Transactions per group for single-transaction clients.
const SINGLE_GROUP: usize = 10;
const PRODUCERS: usize = 16;
const RECEIVERS: usize = 16;
const DISTRICT: &str = "330102";
/// Quantity of each producer's stock batch, so shipments never run dry.
const STOCK: u64 = 1_000_000_000;

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
    /// Unique ids across every phase.
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

    /// A shipment of one line from producer `p`'s stock to receiver `r`;
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

    /// One client's stream: groups of `size` transactions in which the
    /// receipts refer to shipments of the previous group, so that, sent in
    /// order with `wait=commit`, every transaction is valid when applied.
    fn stream(&self, client: usize, groups: usize, size: usize) -> Vec<Vec<Vec<u8>>> {
        let p = client % PRODUCERS;
        let r = client % RECEIVERS;
        let ships = (size * 3 / 10).max(1);
        let mut out = Vec::with_capacity(groups);
        let mut prev: Vec<(String, String)> = Vec::new();
        for _ in 0..groups {
            let mut g = Vec::with_capacity(size);
            let mut made = Vec::with_capacity(ships);
            for _ in 0..ships {
                let (tx, id) = self.shipment(p, r);
                g.push(tx);
                made.push(id);
            }
            for (shipper, sid) in &prev {
                g.push(self.receipt(r, shipper, sid));
            }
            while g.len() < size {
                g.push(self.coding(p));
            }
            prev = made;
            out.push(g);
        }
        out
    }
}

/// Builds the streams on every core, since signing is what limits how much
/// a run can pre-sign.
fn sign_streams(
    w: &World,
    first_client: usize,
    clients: usize,
    groups: usize,
    size: usize,
) -> Vec<Vec<Vec<Vec<u8>>>> {
    std::thread::scope(|s| {
        let hs: Vec<_> = (0..clients)
            .map(|c| s.spawn(move || w.stream(first_client + c, groups, size)))
            .collect();
        hs.into_iter().map(|h| h.join().expect("signer")).collect()
    })
}

fn post(client: &reqwest::blocking::Client, url: &str, body: Vec<u8>) -> Option<Value> {
    let r = client
        .post(url)
        .header("content-type", "application/json")
        .body(body)
        .send()
        .ok()?;
    r.json().ok()
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
}

fn percentile(v: &mut [u64], p: f64) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_unstable();
    let i = ((v.len() - 1) as f64 * p).round() as usize;
    v[i] as f64 / 1000.0
}

/// Drives batch streams (`POST /v1/txs`) and single streams (`POST /v1/tx`)
/// against the nodes round-robin until `secs` pass or the streams run out;
/// `pace` spaces each batch client's requests (for the half-load run).
/// Returns the tally and the elapsed seconds.
fn drive(
    apis: &[String],
    batch: Vec<Vec<Vec<Vec<u8>>>>,
    single: Vec<Vec<Vec<Vec<u8>>>>,
    secs: f64,
    pace: Option<Duration>,
) -> (Tally, f64) {
    let total = Mutex::new(Tally::default());
    let start = Instant::now();
    let deadline = start + Duration::from_secs_f64(secs);
    let last_done = Mutex::new(start);
    std::thread::scope(|s| {
        for (i, stream) in batch.into_iter().enumerate() {
            let (total, last_done) = (&total, &last_done);
            let url = format!("{}/v1/txs?wait=commit", apis[i % apis.len()]);
            s.spawn(move || {
                let client = zsl_tests::http();
                let mut t = Tally::default();
                let mut next = Instant::now();
                for g in stream {
                    if Instant::now() >= deadline {
                        break;
                    }
                    if let Some(p) = pace {
                        if let Some(wait) = next.checked_duration_since(Instant::now()) {
                            std::thread::sleep(wait);
                        }
                        next += p;
                    }
                    let n = g.len();
                    let mut body = Vec::with_capacity(n * 600);
                    body.push(b'[');
                    for (j, tx) in g.into_iter().enumerate() {
                        if j > 0 {
                            body.push(b',');
                        }
                        body.extend_from_slice(&tx);
                    }
                    body.push(b']');
                    let t0 = Instant::now();
                    let answer = post(&client, &url, body);
                    let us = t0.elapsed().as_micros() as u64;
                    match answer.as_ref().and_then(|a| a["results"].as_array()) {
                        Some(rs) => rs.iter().for_each(|r| t.note(r, us)),
                        None => *t.refused.entry("batch_failed".into()).or_default() += n as u64,
                    }
                }
                let mut l = last_done.lock().expect("lock");
                *l = (*l).max(Instant::now());
                total.lock().expect("lock").merge(t);
            });
        }
        for (i, stream) in single.into_iter().enumerate() {
            let (total, last_done) = (&total, &last_done);
            let url = format!("{}/v1/tx?wait=commit", apis[(i + 1) % apis.len()]);
            s.spawn(move || {
                let client = zsl_tests::http();
                let mut t = Tally::default();
                'run: for g in stream {
                    for tx in g {
                        if Instant::now() >= deadline {
                            break 'run;
                        }
                        let t0 = Instant::now();
                        let answer = post(&client, &url, tx).unwrap_or(Value::Null);
                        t.note(&answer, t0.elapsed().as_micros() as u64);
                    }
                }
                let mut l = last_done.lock().expect("lock");
                *l = (*l).max(Instant::now());
                total.lock().expect("lock").merge(t);
            });
        }
    });
    let elapsed = last_done.into_inner().expect("lock").duration_since(start);
    (total.into_inner().expect("lock"), elapsed.as_secs_f64())
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
        let a = post(
            &client,
            &format!("{api}/v1/txs?wait=commit"),
            body.into_bytes(),
        )
        .expect("setup answer");
        for r in a["results"].as_array().expect("results") {
            assert_eq!(r["status"], "committed", "setup refused: {r}");
        }
    }
}

/// One-core Ed25519 rates: (single verifies/s, batch-of-256 verifies/s).
fn ed25519_rates() -> (f64, f64) {
    let keys: Vec<SigningKey> = (0..256u32)
        .map(|i| SigningKey::from_bytes(&ledger::signing::sha256(&i.to_le_bytes())))
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

fn base64(data: &[u8]) -> String {
    const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(data.len().div_ceil(3) * 4);
    for c in data.chunks(3) {
        let b = [c[0], *c.get(1).unwrap_or(&0), *c.get(2).unwrap_or(&0)];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= c.len() {
                out.push(A[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

/// Kills etcd members on drop, whatever happens.
struct Etcd {
    children: Vec<Child>,
    dir: tempfile::TempDir,
}

impl Drop for Etcd {
    fn drop(&mut self) {
        for c in &mut self.children {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

fn etcd_binary() -> Option<std::path::PathBuf> {
    ["/usr/bin/etcd", "/usr/local/bin/etcd"]
        .iter()
        .map(std::path::PathBuf::from)
        .find(|p| p.exists())
}

/// A 3-member etcd on loopback driven through its HTTP/JSON gateway with
/// `clients` concurrent clients putting `value_size`-byte values, one put
/// at a time each; returns (puts/s, p50 ms, p99 ms), or why it could not run.
fn etcd_rate(clients: usize, value_size: usize, secs: f64) -> Result<(f64, f64, f64), String> {
    let bin = etcd_binary().ok_or("etcd not installed (Debian: etcd-server)")?;
    let mut etcd = Etcd {
        children: Vec::new(),
        dir: tempfile::tempdir().map_err(|e| e.to_string())?,
    };
    let dir = etcd.dir.path().to_path_buf();
    let ports: Vec<(u16, u16)> = (0..3).map(|_| (free_port(), free_port())).collect();
    let cluster = ports
        .iter()
        .enumerate()
        .map(|(i, (_, peer))| format!("m{i}=http://127.0.0.1:{peer}"))
        .collect::<Vec<_>>()
        .join(",");
    for (i, (client, peer)) in ports.iter().enumerate() {
        let log =
            std::fs::File::create(dir.join(format!("m{i}.log"))).map_err(|e| e.to_string())?;
        let child = Command::new(&bin)
            .arg(format!("--name=m{i}"))
            .arg(format!(
                "--data-dir={}",
                dir.join(format!("m{i}")).display()
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
            .stdin(Stdio::null())
            .stdout(log.try_clone().map_err(|e| e.to_string())?)
            .stderr(log)
            .spawn()
            .map_err(|e| format!("starting etcd: {e}"))?;
        etcd.children.push(child);
    }
    let urls: Vec<String> = ports
        .iter()
        .map(|(c, _)| format!("http://127.0.0.1:{c}/v3/kv/put"))
        .collect();
    // Ready when a put through every member succeeds.
    let http = zsl_tests::http();
    let ready = Instant::now() + Duration::from_secs(60);
    for u in &urls {
        loop {
            let ok = http
                .post(u)
                .body(format!(
                    r#"{{"key":"{}","value":"{}"}}"#,
                    base64(b"ready"),
                    base64(b"1")
                ))
                .send()
                .map(|r| r.status().is_success())
                .unwrap_or(false);
            if ok {
                break;
            }
            if Instant::now() > ready {
                return Err("etcd did not become ready in 60 s".into());
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
    let value = base64(&vec![b'v'; value_size]);
    let total = Mutex::new(Tally::default());
    let start = Instant::now();
    let deadline = start + Duration::from_secs_f64(secs);
    std::thread::scope(|s| {
        for c in 0..clients {
            let (total, value, url) = (&total, &value, &urls[c % urls.len()]);
            s.spawn(move || {
                let http = zsl_tests::http();
                let mut t = Tally::default();
                let mut i = 0u64;
                while Instant::now() < deadline && i < 10_000_000 {
                    let key = base64(format!("bench/{c}/{i}").as_bytes());
                    let t0 = Instant::now();
                    let ok = http
                        .post(url)
                        .body(format!(r#"{{"key":"{key}","value":"{value}"}}"#))
                        .send()
                        .map(|r| r.status().is_success())
                        .unwrap_or(false);
                    let us = t0.elapsed().as_micros() as u64;
                    if ok {
                        t.committed += 1;
                        t.latencies_us.push(us);
                    } else {
                        *t.refused.entry("put_failed".into()).or_default() += 1;
                    }
                    i += 1;
                }
                total.lock().expect("lock").merge(t);
            });
        }
    });
    let elapsed = start.elapsed().as_secs_f64();
    let mut t = total.into_inner().expect("lock");
    drop(etcd);
    Ok((
        t.committed as f64 / elapsed,
        percentile(&mut t.latencies_us, 0.5),
        percentile(&mut t.latencies_us, 0.99),
    ))
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
/// phase is reported rather than aborting the run.
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

fn refused_note(t: &Tally) -> String {
    if t.refused.is_empty() {
        "none refused".into()
    } else {
        format!("refused or failed: {:?}", t.refused)
    }
}

fn main() {
    let secs = env_usize("ZSL_BENCH_SECS", 30) as f64;
    let budget = env_usize("ZSL_BENCH_TXS", 150_000);
    let clients = env_usize("ZSL_BENCH_CLIENTS", 16).max(1);
    let batch = env_usize("ZSL_BENCH_BATCH", 100).clamp(10, 1_000);
    let ticks = clock_ticks();

    let mut cluster = TestCluster::start(3);
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

    // Full load: pre-sign, then drive.
    // A tenth of the pool goes to the single-transaction clients, which
    // wait a round trip per transaction and so use far fewer.
    let single_groups = (budget / 10 / SINGLE_CLIENTS / SINGLE_GROUP).max(1);
    let groups =
        (budget.saturating_sub(SINGLE_CLIENTS * single_groups * SINGLE_GROUP) / clients / batch)
            .max(1);
    let t_sign = Instant::now();
    let batch_streams = sign_streams(&w, 0, clients, groups, batch);
    let single_streams = sign_streams(&w, clients, SINGLE_CLIENTS, single_groups, SINGLE_GROUP);
    let signed = (clients * groups * batch + SINGLE_CLIENTS * single_groups * SINGLE_GROUP) as u64;
    let raw_bytes: u64 = batch_streams
        .iter()
        .chain(&single_streams)
        .flatten()
        .flatten()
        .map(|t| t.len() as u64)
        .sum();
    let raw_per_tx = raw_bytes as f64 / signed as f64;
    let (min_len, max_len) = batch_streams
        .iter()
        .flatten()
        .flatten()
        .fold((usize::MAX, 0), |(a, b), t| {
            (a.min(t.len()), b.max(t.len()))
        });
    eprintln!(
        "pre-signed {signed} txs in {:.1} s ({:.0} bytes avg, {min_len}–{max_len})",
        t_sign.elapsed().as_secs_f64(),
        raw_per_tx
    );
    let term0 = max_term(&cluster);
    let cpu0: Vec<f64> = ids
        .iter()
        .map(|&id| proc_usage(cluster.pid(id).expect("pid"), ticks).0)
        .collect();
    let (mut full, full_secs) = drive(&apis, batch_streams, single_streams, secs, None);
    let cpu1: Vec<f64> = ids
        .iter()
        .map(|&id| proc_usage(cluster.pid(id).expect("pid"), ticks).0)
        .collect();
    let term1 = max_term(&cluster);
    let tps = full.committed as f64 / full_secs;
    let exhausted = full_secs < secs * 0.95;
    eprintln!(
        "full load: {} committed in {full_secs:.1} s, refused {:?}",
        full.committed, full.refused
    );

    let settled_half = settle(&cluster, 30);
    // Half load: the batch clients paced so together they offer half the peak rate.
    let half_secs = (secs / 2.0).max(10.0);
    let per_client_rate = (tps / 2.0) / clients as f64 / batch as f64; // batches/s
    let pace = Duration::from_secs_f64(1.0 / per_client_rate.max(0.01));
    let half_groups = ((per_client_rate * half_secs).ceil() as usize + 1).min(groups.max(2));
    let half_streams = sign_streams(&w, 0, clients, half_groups, batch);
    let (mut half, half_elapsed) = drive(&apis, half_streams, vec![], half_secs, Some(pace));
    eprintln!(
        "half load: {} committed in {half_elapsed:.1} s, refused {:?}",
        half.committed, half.refused
    );

    let term2 = max_term(&cluster);
    // One client, one transaction at a time, to a follower (so the forwarding hop counts).
    let settled_one = settle(&cluster, 30);
    let leader = settled_one.unwrap_or(leader);
    let leader_api = cluster.api(leader).to_string();
    let follower = ids.iter().position(|&id| id != leader).unwrap_or(0);
    let lone = sign_streams(&w, clients, 1, 50, SINGLE_GROUP);
    let (mut one, _) = drive(
        &apis[follower..=follower].to_vec(),
        vec![],
        lone,
        10.0,
        None,
    );
    let (mut one_leader, _) = {
        let more = sign_streams(&w, clients + 1, 1, 50, SINGLE_GROUP);
        drive(&[leader_api.clone()], vec![], more, 10.0, None)
    };

    let term3 = max_term(&cluster);
    // Per-node usage and disk.
    let tree_size = cluster
        .status(leader)
        .and_then(|s| s["tree_size"].as_u64())
        .unwrap_or(0);
    let usage: Vec<(u64, f64, f64)> = ids
        .iter()
        .enumerate()
        .map(|(i, &id)| {
            let (_, rss) = proc_usage(cluster.pid(id).expect("pid"), ticks);
            (id, cpu1[i] - cpu0[i], rss)
        })
        .collect();
    // Disk after a clean stop: memtables flushed into compressed tables, the
    // write-ahead log (an uncompressed second copy of recent writes) gone.
    for &id in &ids {
        cluster.stop(id);
    }
    let nodes: Vec<(u64, f64, f64, f64)> = usage
        .into_iter()
        .map(|(id, cpu, rss)| {
            let disk = du_bytes(&cluster.data_dir(id)) as f64 / tree_size.max(1) as f64;
            (id, cpu, rss, disk)
        })
        .collect();
    drop(cluster);

    let (verify1, verify_batch) = ed25519_rates();
    let etcd = etcd_rate(
        clients + SINGLE_CLIENTS,
        raw_per_tx.round() as usize,
        half_secs,
    );

    let cores = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1);
    println!("| measure | value | ratio / note |");
    println!("| --- | --- | --- |");
    println!(
        "| committed tx/s, full load ({clients} batch clients × {batch} tx + {SINGLE_CLIENTS} single-tx clients, {full_secs:.1} s) | {tps:.0} | {} committed, {}{} |",
        full.committed,
        refused_note(&full),
        if exhausted { "; pre-signed pool ran out before the time" } else { "" }
    );
    println!(
        "| submit→commit p50 / p99, full load | {:.1} / {:.1} ms | per tx (a batch's latency counts for each of its txs) |",
        percentile(&mut full.latencies_us, 0.5),
        percentile(&mut full.latencies_us, 0.99)
    );
    println!(
        "| submit→commit p50 / p99, half load ({:.0} tx/s offered, {half_elapsed:.1} s) | {:.1} / {:.1} ms | {:.0} tx/s committed, {}{} |",
        tps / 2.0,
        percentile(&mut half.latencies_us, 0.5),
        percentile(&mut half.latencies_us, 0.99),
        half.committed as f64 / half_elapsed,
        refused_note(&half),
        if settled_half.is_none() { "; no agreed leader 30 s after the full-load run" } else { "" }
    );
    println!(
        "| one client, one tx at a time, p50 (via follower / at leader) | {:.1} / {:.1} ms | {} + {} txs committed{} |",
        percentile(&mut one.latencies_us, 0.5),
        percentile(&mut one_leader.latencies_us, 0.5),
        one.committed,
        one_leader.committed,
        if settled_one.is_none() { "; no agreed leader before this phase" } else { "" }
    );
    println!(
        "| Raft term: before / after full load / after half load / end | {term0} / {term1} / {term2} / {term3} | a rise means leader elections during the run |"
    );
    for (id, cpu, rss, disk) in &nodes {
        println!(
            "| node {id}{}: CPU s in full-load run / peak RSS / disk per tx after a clean stop | {cpu:.1} s / {rss:.0} MiB / {disk:.0} B | disk {:.2}× raw record bytes ({raw_per_tx:.0} B/tx) |",
            if *id == leader { " (leader)" } else { "" },
            disk / raw_per_tx
        );
    }
    println!(
        "| Ed25519 verify, one core | {verify1:.0} /s | ZSL tx/s ÷ it = {:.2} |",
        tps / verify1
    );
    println!(
        "| Ed25519 batch verify (256), one core | {verify_batch:.0} /s | ZSL tx/s ÷ it = {:.2} |",
        tps / verify_batch
    );
    match etcd {
        Ok((rate, p50, p99)) => println!(
            "| etcd 3-member puts/s ({} clients, {:.0}-byte values, {half_secs:.0} s) | {rate:.0} | ZSL ÷ etcd = {:.2}; etcd p50 / p99 {p50:.1} / {p99:.1} ms |",
            clients + SINGLE_CLIENTS,
            raw_per_tx,
            tps / rate
        ),
        Err(why) => println!("| etcd 3-member puts/s | not measured | {why} |"),
    }
    println!(
        "\n{cores} cores shared with other work; nodes built with the `dev` profile (dependencies and ledger at opt-level 2); {signed} txs pre-signed for the full-load run."
    );
}
