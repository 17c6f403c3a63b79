//! Harness for workspace-level tests: real `zsl` processes on 127.0.0.1 with
//! ports chosen at run time, polled with deadlines, killed on drop.
//!
//! Depends on the built `zsl` binary (`cargo build -p node`, which
//! `scripts/test` does first); never on the node's internals.

// A dependency this target does not use is an error under clippy's
// `-D warnings` (scripts/test); test targets see dev-dependencies too.
#![cfg_attr(not(test), warn(unused_crate_dependencies))]
// etcd-client serves the cluster bench only (feature `etcd`), not this harness.
#[cfg(feature = "etcd")]
use etcd_client as _;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use ed25519_dalek::SigningKey;
use serde::Serialize;
use serde_json::Value;

pub mod chaos;
pub mod epcis_check;

pub use genesis::KeyFile;
pub use ledger::record;

pub const READY_TIMEOUT_MS: u64 = 60_000;

/// The `zsl` binary in `target/<profile>/`: beside this executable (a tool
/// such as `zsl-chaos`) or one directory up (a test in `deps/`).
pub fn zsl_binary() -> PathBuf {
    let exe = std::env::current_exe().expect("test executable path");
    let beside = exe.parent().map(|d| d.join("zsl"));
    let bin = match beside.filter(|b| b.exists()) {
        Some(b) => b,
        None => exe
            .parent()
            .and_then(Path::parent)
            .expect("target/<profile>")
            .join("zsl"),
    };
    assert!(
        bin.exists(),
        "{} is missing: run `cargo build -p node` first (scripts/test does)",
        bin.display()
    );
    bin
}

pub fn http() -> reqwest::blocking::Client {
    reqwest::blocking::Client::builder()
        .timeout(Duration::from_secs(60))
        .build()
        .expect("http client")
}

/// Polls `f` until it returns `Some`, or panics after `timeout_ms`.
pub fn poll<T>(what: &str, timeout_ms: u64, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + Duration::from_millis(timeout_ms);
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// One validator process with its own genesis in a temp dir.
pub struct TestNode {
    pub dir: tempfile::TempDir,
    pub spec: ledger::ChainSpec,
    pub root: KeyFile,
    pub api: String,
    child: Option<Child>,
}

impl TestNode {
    pub fn start() -> Self {
        let mut node = Self::prepare("zsl-test");
        node.launch();
        node
    }

    /// A one-validator chain `chain_id` with its files written and not yet
    /// launched (add to its config with [`TestNode::append_config`] first).
    pub fn prepare(chain_id: &str) -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        // Genesis an hour back, so records may carry times from the last hour.
        let genesis_time = jiff::Timestamp::now()
            .checked_sub(jiff::SignedDuration::from_hours(1))
            .expect("time")
            .to_string();
        let d = genesis::devnet(chain_id, &genesis_time, 1).expect("devnet genesis");
        genesis::write_json(&dir.path().join("genesis.json"), &d.spec).expect("write genesis");
        genesis::write_json(&dir.path().join("validator.key.json"), &d.validators[0])
            .expect("write key");
        genesis::write_json(&dir.path().join("root.key.json"), &d.root).expect("write key");
        let config = "node_id = 1\ndata_dir = \"data\"\ngenesis = \"genesis.json\"\napi_listen = \"127.0.0.1:0\"\nvalidator_key = \"validator.key.json\"\n";
        std::fs::write(dir.path().join("node.toml"), config).expect("write config");
        TestNode {
            dir,
            spec: d.spec,
            root: d.root,
            api: String::new(),
            child: None,
        }
    }

    /// Appends TOML to the node's config (before it launches).
    pub fn append_config(&self, toml: &str) {
        use std::io::Write;
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .open(self.config_path())
            .expect("config");
        f.write_all(toml.as_bytes()).expect("append config");
    }

    pub fn config_path(&self) -> PathBuf {
        self.dir.path().join("node.toml")
    }

    pub fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    /// Starts the process and waits until it serves and leads.
    pub fn launch(&mut self) {
        let _ = std::fs::remove_file(self.data_dir().join("api.addr"));
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.path().join("node.log"))
            .expect("log");
        let child = Command::new(zsl_binary())
            .args(["node", "run", "--config"])
            .arg(self.config_path())
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log"))
            .stderr(log)
            .spawn()
            .expect("spawn zsl");
        self.child = Some(child);
        let addr_file = self.data_dir().join("api.addr");
        let client = http();
        let api = poll("the node to serve", READY_TIMEOUT_MS, || {
            if let Some(c) = self.child.as_mut() {
                if let Ok(Some(status)) = c.try_wait() {
                    panic!("zsl exited early ({status}); log:\n{}", self.log());
                }
            }
            let addr = std::fs::read_to_string(&addr_file).ok()?;
            let api = format!("http://{}", addr.trim());
            let s: Value = client
                .get(format!("{api}/v1/status"))
                .send()
                .ok()?
                .json()
                .ok()?;
            s["leader"].is_u64().then_some(api)
        });
        self.api = api;
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("node.log")).unwrap_or_default()
    }

    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(|c| c.id())
    }

    /// SIGKILL: no chance to flush anything.
    pub fn kill9(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// SIGTERM and wait for a clean exit.
    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let exited = terminate(&mut c, 20_000);
            assert!(
                exited.success(),
                "zsl exited with {exited}; log:\n{}",
                self.log()
            );
        }
    }

    /// The node's validator key (it may read what replication needs).
    pub fn validator_key(&self) -> SigningKey {
        genesis::KeyFile::read(&self.dir.path().join("validator.key.json"))
            .and_then(|k| k.signing_key())
            .expect("validator key file")
    }

    pub fn root_key(&self) -> SigningKey {
        self.root.signing_key().expect("root key")
    }

    /// GET signed by the root regulator (who sees the whole province).
    pub fn get(&self, path: &str) -> (u16, Value) {
        signed_get(&self.api, path, &self.root_key())
    }

    /// GET as an anonymous caller (the public view).
    pub fn get_public(&self, path: &str) -> (u16, Value) {
        let r = http()
            .get(format!("{}{path}", self.api))
            .send()
            .expect("GET");
        let status = r.status().as_u16();
        (status, r.json().unwrap_or(Value::Null))
    }

    pub fn post_raw(&self, path: &str, body: Vec<u8>) -> (u16, Value) {
        let r = http()
            .post(format!("{}{path}", self.api))
            .header("content-type", "application/json")
            .body(body)
            .send()
            .expect("POST");
        let status = r.status().as_u16();
        (status, r.json().unwrap_or(Value::Null))
    }

    /// Submits and waits for commit; returns (HTTP status, answer).
    pub fn submit(&self, tx: &Value) -> (u16, Value) {
        self.post_raw("/v1/tx?wait=commit", serde_json::to_vec(tx).expect("json"))
    }

    pub fn height(&self) -> u64 {
        self.get("/v1/status").1["height"].as_u64().expect("height")
    }

    /// The transaction tree (size, root): what any committed transaction
    /// changes. Unlike the height, checkpoint-signature blocks leave it alone.
    pub fn tree(&self) -> (u64, String) {
        let s = self.get("/v1/status").1;
        (
            s["tree_size"].as_u64().expect("tree_size"),
            s["tree_root"].as_str().expect("tree_root").to_string(),
        )
    }
}

impl Drop for TestNode {
    fn drop(&mut self) {
        self.kill9();
    }
}

/// SIGTERM a child and wait (bounded) for it to exit.
fn terminate(c: &mut Child, timeout_ms: u64) -> std::process::ExitStatus {
    let _ = Command::new("kill")
        .arg("-TERM")
        .arg(c.id().to_string())
        .status();
    poll("the node to exit", timeout_ms, || {
        c.try_wait().ok().flatten()
    })
}

/// Signs a record as `account` at the current time.
pub fn sign<T: Serialize>(
    chain_id: &str,
    key: &SigningKey,
    account: &str,
    kind: &str,
    rec: &T,
) -> Value {
    sign_with(chain_id, &key.clone().into(), account, kind, rec)
}

/// [`sign`] with any account key (Ed25519 or SM2).
pub fn sign_with<T: Serialize>(
    chain_id: &str,
    key: &ledger::signing::AccountSigningKey,
    account: &str,
    kind: &str,
    rec: &T,
) -> Value {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    let nonce = format!(
        "t{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    );
    let body = record::build_body(
        kind,
        chain_id,
        account,
        &jiff::Timestamp::now().to_string(),
        &nonce,
        rec,
    );
    ledger::SignedTx::sign_with(body, key)
        .expect("sign")
        .to_json()
}

/// The headers that sign a request by `key` (RFC 9421, as `zsl` does).
pub fn signature_headers(
    key: &SigningKey,
    method: &str,
    path: &str,
    body: &[u8],
) -> Vec<(&'static str, String)> {
    let method: reqwest::Method = method.parse().expect("a method");
    api::httpsig::sign(key, &method, path, body, jiff::Timestamp::now().as_second())
        .expect("signable path")
}

/// The path and query of `url` as a client sends them (normalised and
/// percent-encoded): what a signature must cover.
pub fn sent_path(url: &str) -> String {
    let u = reqwest::Url::parse(url).expect("a URL");
    match u.query() {
        Some(q) => format!("{}?{q}", u.path()),
        None => u.path().to_string(),
    }
}

/// GET `path` from `api`, signed by `key`: (HTTP status, JSON answer).
pub fn signed_get(api: &str, path: &str, key: &SigningKey) -> (u16, Value) {
    let url = format!("{api}{path}");
    let mut req = http().get(&url);
    for (name, value) in signature_headers(key, "GET", &sent_path(&url), b"") {
        req = req.header(name, value);
    }
    let r = req.send().expect("GET");
    let status = r.status().as_u16();
    (status, r.json().unwrap_or(Value::Null))
}

/// Starts `zsl devnet` with `validators` validators on free ports in `dir`
/// (with demo data when `demo`); its output lines, stdout and stderr, arrive
/// on the receiver.
pub fn spawn_devnet(dir: &Path, validators: usize, demo: bool) -> (Child, mpsc::Receiver<String>) {
    let mut cmd = Command::new(zsl_binary());
    cmd.arg("devnet");
    if demo {
        cmd.arg("--demo");
    }
    let mut child = cmd
        .args([
            "--validators",
            &validators.to_string(),
            "--port",
            "0",
            "--dir",
        ])
        .arg(dir)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn zsl devnet");
    let (tx, rx) = mpsc::channel::<String>();
    let outs: [Option<Box<dyn std::io::Read + Send>>; 2] = [
        child.stdout.take().map(|s| Box::new(s) as _),
        child.stderr.take().map(|s| Box::new(s) as _),
    ];
    for out in outs.into_iter().flatten() {
        let tx = tx.clone();
        std::thread::spawn(move || {
            use std::io::BufRead;
            for line in std::io::BufReader::new(out).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
    }
    (child, rx)
}

/// Stops a `zsl devnet` supervisor (SIGTERM, then SIGKILL after 20 s) and
/// then SIGKILLs `pids`, its validators as devnet.json recorded them, in
/// case it died before it could stop them (harmless when they are gone).
pub fn stop_devnet(child: &mut Child, pids: &[u64]) {
    let _ = Command::new("kill")
        .arg("-TERM")
        .arg(child.id().to_string())
        .status();
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        if let Ok(Some(_)) = child.try_wait() {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = child.kill();
    let _ = child.wait();
    for pid in pids {
        let _ = Command::new("kill")
            .arg("-KILL")
            .arg(pid.to_string())
            .stderr(Stdio::null())
            .status();
    }
}

/// Subject `n` of district `d`: its USCC, its key ([`test_key`] of the
/// USCC) and the `subject.register` record the root regulator signs.
pub fn subject_register(
    n: u32,
    d: &str,
    kind: record::SubjectKind,
    key_subject: bool,
) -> (String, SigningKey, record::SubjectRegister) {
    let id = uscc(d, n);
    let key = test_key(&id);
    let reg = record::SubjectRegister {
        uscc: id.clone(),
        name: format!("subject {n}"),
        kind,
        district: d.into(),
        key_subject,
        public_key: hex::encode(key.verifying_key().to_bytes()),
        market: None,
    };
    (id, key, reg)
}

/// A deterministic key for a test actor.
pub fn test_key(label: &str) -> SigningKey {
    SigningKey::from_bytes(&ledger::hash::sha256(
        format!("zsl-test/{label}").as_bytes(),
    ))
}

/// A valid USCC for test subject `n` in `district`.
pub fn uscc(district: &str, n: u32) -> String {
    ledger::validate::synthetic_uscc(district, n)
}

/// A cluster of validator processes sharing one genesis, each with its own
/// data directory under one temp dir; every process is killed on drop.
///
/// Ports are chosen at run time: the followers-to-be start first on port 0,
/// then node 1 (which initialises the cluster) with their addresses as
/// `peers`; then every config is pinned to the ports in use, because the
/// Raft membership records them and a restarted node must be found there.
pub struct TestCluster {
    pub dir: tempfile::TempDir,
    pub spec: ledger::ChainSpec,
    pub root: KeyFile,
    apis: std::collections::BTreeMap<u64, String>,
    children: std::collections::BTreeMap<u64, Child>,
    /// TOML appended to every node's config (sections such as `[api]`).
    extra_config: String,
}

impl TestCluster {
    pub fn start(validators: usize) -> Self {
        Self::start_with(validators, "")
    }

    /// [`Self::start`] with `extra_config` (TOML sections, e.g. `[api]\nrate_limit_per_s = 0`)
    /// in every node's config.
    pub fn start_with(validators: usize, extra_config: &str) -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let genesis_time = jiff::Timestamp::now()
            .checked_sub(jiff::SignedDuration::from_hours(1))
            .expect("time")
            .to_string();
        let d = genesis::devnet("zsl-test", &genesis_time, validators).expect("devnet genesis");
        genesis::write_json(&dir.path().join("genesis.json"), &d.spec).expect("write genesis");
        genesis::write_json(&dir.path().join("root.key.json"), &d.root).expect("write key");
        for (v, k) in d.spec.validators.iter().zip(&d.validators) {
            genesis::write_json(
                &dir.path().join(format!("validator-{}.key.json", v.node_id)),
                k,
            )
            .expect("write key");
        }
        let mut c = TestCluster {
            dir,
            spec: d.spec,
            root: d.root,
            apis: Default::default(),
            children: Default::default(),
            extra_config: extra_config.to_string(),
        };
        let ids = c.ids();
        let (first, others) = ids.split_first().expect("validators");
        for &id in others {
            c.write_config(id, "127.0.0.1:0", "127.0.0.1:0", "");
            c.launch(id);
        }
        let mut peers = String::new();
        for &id in others {
            peers.push_str(&format!(
                "[peers.{id}]\np2p = \"{}\"\napi = \"{}\"\n",
                c.read_addr(id, "p2p.addr"),
                c.read_addr(id, "api.addr")
            ));
        }
        c.write_config(*first, "127.0.0.1:0", "127.0.0.1:0", &peers);
        c.launch(*first);
        for &id in &ids {
            let (api, p2p) = (c.read_addr(id, "api.addr"), c.read_addr(id, "p2p.addr"));
            let peers = if id == *first { peers.as_str() } else { "" };
            c.write_config(id, &api, &p2p, peers);
        }
        c
    }

    pub fn ids(&self) -> Vec<u64> {
        self.spec.validators.iter().map(|v| v.node_id).collect()
    }

    /// A fresh `document.notarize` by the root regulator: the cheapest
    /// transaction that commits, for load and liveness checks.
    pub fn notarize(&self, label: &str) -> Value {
        notarize(
            &self.spec.chain_id,
            &self.root_key(),
            &self.root.account,
            label,
        )
    }

    /// Starts node `id` with a fresh validator key that genesis does not
    /// list: it waits until a `validator.add` record brings it in. Returns
    /// its key and its `{"p2p", "api"}` address for that record.
    pub fn launch_joining(&mut self, id: u64) -> (KeyFile, String) {
        let key = KeyFile::generate(&format!("validator-{id}"));
        genesis::write_json(
            &self.dir.path().join(format!("validator-{id}.key.json")),
            &key,
        )
        .expect("write key");
        self.write_config(id, "127.0.0.1:0", "127.0.0.1:0", "");
        self.launch(id);
        let (api, p2p) = (
            self.read_addr(id, "api.addr"),
            self.read_addr(id, "p2p.addr"),
        );
        self.write_config(id, &api, &p2p, "");
        let address = serde_json::json!({"p2p": p2p, "api": api}).to_string();
        (key, address)
    }

    /// Node `id`'s data directory (benchmarks measure its size on disk).
    pub fn data_dir(&self, id: u64) -> PathBuf {
        self.dir.path().join(format!("node-{id}"))
    }

    /// The OS process id of node `id`, while it runs (benchmarks read its
    /// CPU time and peak RSS from /proc).
    pub fn pid(&self, id: u64) -> Option<u32> {
        self.children.get(&id).map(|c| c.id())
    }

    fn config_path(&self, id: u64) -> PathBuf {
        self.dir.path().join(format!("node-{id}.toml"))
    }

    fn read_addr(&self, id: u64, file: &str) -> String {
        std::fs::read_to_string(self.data_dir(id).join(file))
            .expect("address file")
            .trim()
            .to_string()
    }

    fn write_config(&self, id: u64, api: &str, p2p: &str, peers: &str) {
        let config = format!(
            "node_id = {id}\ndata_dir = \"node-{id}\"\ngenesis = \"genesis.json\"\napi_listen = \"{api}\"\np2p_listen = \"{p2p}\"\nvalidator_key = \"validator-{id}.key.json\"\n{peers}{}",
            self.extra_config
        );
        std::fs::write(self.config_path(id), config).expect("write config");
    }

    pub fn log(&self, id: u64) -> String {
        std::fs::read_to_string(self.dir.path().join(format!("node-{id}.log"))).unwrap_or_default()
    }

    /// Starts node `id` and waits until its API answers (not for a leader:
    /// a lone member of a new cluster has none yet).
    pub fn launch(&mut self, id: u64) {
        for f in ["api.addr", "p2p.addr"] {
            let _ = std::fs::remove_file(self.data_dir(id).join(f));
        }
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.path().join(format!("node-{id}.log")))
            .expect("log");
        let child = Command::new(zsl_binary())
            .args(["node", "run", "--config"])
            .arg(self.config_path(id))
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log"))
            .stderr(log)
            .spawn()
            .expect("spawn zsl");
        self.children.insert(id, child);
        let client = http();
        let api = poll("the node to serve", READY_TIMEOUT_MS, || {
            if let Some(c) = self.children.get_mut(&id) {
                if let Ok(Some(status)) = c.try_wait() {
                    panic!("zsl {id} exited early ({status}); log:\n{}", self.log(id));
                }
            }
            if !self.data_dir(id).join("p2p.addr").exists() {
                return None;
            }
            let addr = std::fs::read_to_string(self.data_dir(id).join("api.addr")).ok()?;
            let api = format!("http://{}", addr.trim());
            let r = client.get(format!("{api}/v1/status")).send().ok()?;
            r.status().is_success().then_some(api)
        });
        self.apis.insert(id, api);
    }

    /// SIGTERM node `id` and wait for a clean exit (it flushes its store).
    pub fn stop(&mut self, id: u64) {
        if let Some(mut c) = self.children.remove(&id) {
            let exited = terminate(&mut c, 30_000);
            assert!(
                exited.success(),
                "zsl {id} exited with {exited}; log:\n{}",
                self.log(id)
            );
        }
    }

    /// SIGKILL node `id`.
    pub fn kill9(&mut self, id: u64) {
        if let Some(mut c) = self.children.remove(&id) {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    pub fn is_running(&self, id: u64) -> bool {
        self.children.contains_key(&id)
    }

    /// Sends `signal` (a `kill` name: `STOP`, `CONT`, …) to node `id`'s
    /// process, if it runs. SIGSTOP freezes a node without closing its
    /// sockets: to its peers it looks partitioned away, not crashed.
    pub fn signal(&self, id: u64, signal: &str) {
        assert!(
            self.try_signal(id, signal),
            "kill -{signal} to node {id} failed"
        );
    }

    /// [`Self::signal`] without the panic, for drop guards. True if no
    /// process runs for `id` or the signal was delivered.
    fn try_signal(&self, id: u64, signal: &str) -> bool {
        let Some(pid) = self.pid(id) else {
            return true;
        };
        Command::new("kill")
            .arg(format!("-{signal}"))
            .arg(pid.to_string())
            .status()
            .is_ok_and(|s| s.success())
    }

    /// Freezes nodes `ids` with SIGSTOP; they get SIGCONT when the guard
    /// drops (also when the test panics), so no test leaves them frozen.
    pub fn pause(&self, ids: &[u64]) -> Paused<'_> {
        for &id in ids {
            self.signal(id, "STOP");
        }
        Paused {
            cluster: self,
            ids: ids.to_vec(),
        }
    }

    pub fn api(&self, id: u64) -> &str {
        &self.apis[&id]
    }

    /// `/v1/status` of node `id`, if it answers.
    pub fn status(&self, id: u64) -> Option<Value> {
        let r = reqwest::blocking::Client::builder()
            .timeout(Duration::from_secs(5))
            .build()
            .ok()?
            .get(format!("{}/v1/status", self.api(id)))
            .send()
            .ok()?;
        r.json().ok()
    }

    /// Waits until every running node names the same leader, which is
    /// running and says it leads; returns it.
    pub fn leader(&self, timeout_ms: u64) -> u64 {
        poll("an agreed leader", timeout_ms, || {
            let mut leaders = std::collections::BTreeSet::new();
            for id in self.ids().into_iter().filter(|id| self.is_running(*id)) {
                leaders.insert(self.status(id)?["leader"].as_u64()?);
            }
            let leader = *leaders.first()?;
            let leads =
                self.is_running(leader) && self.status(leader)?["role"].as_str() == Some("leader");
            (leaders.len() == 1 && leads).then_some(leader)
        })
    }

    /// GET from node `id`, signed by the root regulator.
    pub fn get(&self, id: u64, path: &str) -> (u16, Value) {
        signed_get(self.api(id), path, &self.root_key())
    }

    /// Submits to node `id` and waits for commit; returns (HTTP status, answer).
    pub fn submit(&self, id: u64, tx: &Value) -> (u16, Value) {
        let r = http()
            .post(format!("{}/v1/tx?wait=commit", self.api(id)))
            .json(tx)
            .send()
            .expect("POST");
        let status = r.status().as_u16();
        (status, r.json().unwrap_or(Value::Null))
    }

    /// Submits to node `id` without waiting for commit (202 when admitted).
    pub fn submit_no_wait(&self, id: u64, tx: &Value) -> (u16, Value) {
        let r = http()
            .post(format!("{}/v1/tx", self.api(id)))
            .json(tx)
            .send()
            .expect("POST");
        let status = r.status().as_u16();
        (status, r.json().unwrap_or(Value::Null))
    }

    /// Validator `id`'s key (it may read what replication needs).
    pub fn validator_key(&self, id: u64) -> SigningKey {
        genesis::KeyFile::read(&self.dir.path().join(format!("validator-{id}.key.json")))
            .and_then(|k| k.signing_key())
            .expect("validator key file")
    }

    pub fn root_key(&self) -> SigningKey {
        self.root.signing_key().expect("root key")
    }
}

/// A `document.notarize` of the document named `label`, signed by `account`.
pub fn notarize(chain_id: &str, key: &SigningKey, account: &str, label: &str) -> Value {
    let doc = record::DocumentNotarize {
        document_hash: hex::encode(ledger::hash::sha256(label.as_bytes())),
        title: label.into(),
        media_type: None,
        note: None,
    };
    sign(chain_id, key, account, "document.notarize", &doc)
}

/// Nodes frozen by [`TestCluster::pause`]; resumed on drop.
pub struct Paused<'a> {
    cluster: &'a TestCluster,
    ids: Vec<u64>,
}

impl Paused<'_> {
    /// Resumes the frozen nodes now.
    pub fn resume(self) {}
}

impl Drop for Paused<'_> {
    fn drop(&mut self) {
        for &id in &self.ids {
            self.cluster.try_signal(id, "CONT");
        }
    }
}

impl Drop for TestCluster {
    fn drop(&mut self) {
        // Every process it started, including nodes that joined later.
        let ids: Vec<u64> = self.children.keys().copied().collect();
        for id in ids {
            self.kill9(id);
        }
    }
}

/// Builds tests/c2sp/noteverify.go (golang.org/x/mod/sumdb/note, a signed-note
/// verifier that knows nothing of ZSL, plus a cosignature/v1 verifier) into
/// `dir`; returns the binary.
pub fn go_note_verifier(dir: &Path) -> PathBuf {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("c2sp/noteverify.go");
    let bin = dir.join("noteverify");
    let out = Command::new("go")
        .args(["build", "-o"])
        .arg(&bin)
        .arg(&src)
        .env("GO111MODULE", "off")
        .env("GOPATH", "/usr/share/gocode")
        .env("GOCACHE", dir.join("gocache"))
        .output()
        .expect("run go (scripts/setup installs golang-go and golang-golang-x-mod-dev)");
    assert!(
        out.status.success(),
        "go build: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    bin
}

/// Runs the Go verifier on `note`: `quorum` of the validators' `vkeys`,
/// and with `witnesses` (quorum, cosigner vkeys) that many witnesses too.
/// Returns (exit code, output).
pub fn go_note_verify(
    bin: &Path,
    dir: &Path,
    note: &str,
    quorum: u64,
    vkeys: &[String],
    witnesses: Option<(u64, &[String])>,
) -> (i32, String) {
    let file = dir.join("note.txt");
    std::fs::write(&file, note).unwrap();
    let mut cmd = Command::new(bin);
    cmd.arg(&file).arg(quorum.to_string()).args(vkeys);
    if let Some((q, cosigners)) = witnesses {
        cmd.arg("--").arg(q.to_string()).args(cosigners);
    }
    let out = cmd.output().expect("run noteverify");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr),
    )
}

/// An answer's status, content type and text.
pub fn status_type_text(r: reqwest::blocking::Response) -> (u16, String, String) {
    let status = r.status().as_u16();
    let ctype = r
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    (status, ctype, r.text().unwrap_or_default())
}
