//! `zsl devnet`: generate a local chain, start its validators as child
//! processes on 127.0.0.1, optionally fill it with demo data, and supervise.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use serde_json::json;

use crate::config::{BlockConfig, NodeConfig, PeerConfig};

pub const DEVNET_CHAIN_ID: &str = "zsl-devnet";
const START_TIMEOUT_MS: u64 = 60_000;
/// Validators a devnet may have: enough for a majority to survive one or two failures.
pub const DEVNET_VALIDATORS_MAX: usize = 5;

struct Running {
    id: u64,
    child: Child,
    api: String,
    /// When it was last (re)started.
    started: Instant,
    /// Set while it is down: when to start it again.
    restart_at: Option<Instant>,
    /// The pause before the next restart; doubles while it keeps dying young.
    backoff: Duration,
}

/// The first pause before restarting a validator that died: longer than an
/// election, so the others have taken over (and a user sees the failover)
/// before it rejoins.
const RESTART_BACKOFF_MIN: Duration = Duration::from_secs(5);
/// The longest pause between restarts.
const RESTART_BACKOFF_MAX: Duration = Duration::from_secs(30);
/// A validator that ran this long before dying is restarted after the
/// shortest pause again.
const RESTART_STABLE: Duration = Duration::from_secs(60);

impl Running {
    fn new(id: u64, child: Child) -> Self {
        Running {
            id,
            child,
            api: String::new(),
            started: Instant::now(),
            restart_at: None,
            backoff: RESTART_BACKOFF_MIN,
        }
    }
}

fn node_dir(dir: &Path, id: u64) -> PathBuf {
    dir.join(format!("node-{id}"))
}

fn write_config(
    dir: &Path,
    id: u64,
    api_listen: String,
    p2p_listen: String,
    peers: BTreeMap<String, PeerConfig>,
) -> Result<()> {
    let cfg = NodeConfig {
        node_id: id,
        data_dir: PathBuf::from(format!("node-{id}")),
        genesis: PathBuf::from("genesis.json"),
        api_listen,
        validator_key: Some(PathBuf::from(format!("validator-{id}.key.json"))),
        p2p_listen,
        peers,
        block: BlockConfig::default(),
        api: Default::default(),
        log: Default::default(),
        witness: None,
        witnessed_by: Vec::new(),
    };
    cfg.write(&dir.join(format!("node-{id}.toml")))
}

/// Writes genesis, keys and node configs unless the directory already holds
/// a devnet; returns whether it is new.
fn prepare(dir: &Path, validators: usize, port: u16) -> Result<bool> {
    if dir.join("genesis.json").exists() {
        return Ok(false);
    }
    std::fs::create_dir_all(dir)?;
    let d = genesis::devnet(DEVNET_CHAIN_ID, &crate::client::now_rfc3339(), validators)?;
    genesis::write_json(&dir.join("genesis.json"), &d.spec)?;
    genesis::write_json(&dir.join("root.key.json"), &d.root)?;
    for (i, k) in d.validators.iter().enumerate() {
        let id = i as u64 + genesis::DEVNET_FIRST_NODE_ID;
        let key_path = dir.join(format!("validator-{id}.key.json"));
        genesis::write_json(&key_path, k)?;
        let api_listen = if port == 0 {
            "127.0.0.1:0".to_string()
        } else {
            format!("127.0.0.1:{}", port + i as u16)
        };
        write_config(dir, id, api_listen, "127.0.0.1:0".into(), BTreeMap::new())?;
    }
    Ok(true)
}

/// Reads a file a node writes once it has bound its port.
fn read_addr(dir: &Path, id: u64, file: &str) -> Result<String> {
    let path = node_dir(dir, id).join(file);
    Ok(std::fs::read_to_string(&path)
        .with_context(|| format!("reading {}", path.display()))?
        .trim()
        .to_string())
}

fn start(dir: &Path, id: u64) -> Result<Child> {
    let exe = std::env::current_exe()?;
    let nd = node_dir(dir, id);
    std::fs::create_dir_all(&nd)?;
    let _ = std::fs::remove_file(nd.join("api.addr"));
    let _ = std::fs::remove_file(nd.join("p2p.addr"));
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(dir.join(format!("node-{id}.log")))?;
    let child = Command::new(exe)
        .args(["node", "run", "--config"])
        .arg(dir.join(format!("node-{id}.toml")))
        .stdin(Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log)
        .spawn()
        .context("starting a validator")?;
    Ok(child)
}

/// Waits until the node answers on its API (and, in a cluster, has written
/// its p2p address); returns the API's URL.
fn wait_serving(dir: &Path, id: u64, child: &mut Child, cluster: bool) -> Result<String> {
    let deadline = Instant::now() + Duration::from_millis(START_TIMEOUT_MS);
    let client = crate::client::http()?;
    loop {
        if let Some(status) = child.try_wait()? {
            bail!(
                "validator {id} exited ({status}); see {}",
                dir.join(format!("node-{id}.log")).display()
            );
        }
        let p2p_ready = !cluster || node_dir(dir, id).join("p2p.addr").exists();
        if let (Ok(addr), true) = (read_addr(dir, id, "api.addr"), p2p_ready) {
            let api = format!("http://{addr}");
            if let Ok(r) = client.get(format!("{api}/v1/status")).send() {
                if r.status().is_success() {
                    return Ok(api);
                }
            }
        }
        if Instant::now() > deadline {
            bail!(
                "validator {id} did not become ready in {} s",
                START_TIMEOUT_MS / 1000
            );
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Waits until every node reports the same leader, and returns it.
fn wait_agreed_leader(running: &mut [Running]) -> Result<u64> {
    let deadline = Instant::now() + Duration::from_millis(START_TIMEOUT_MS);
    let client = crate::client::http()?;
    loop {
        let mut leaders = std::collections::BTreeSet::new();
        for r in running.iter_mut() {
            if let Some(status) = r.child.try_wait()? {
                bail!("validator {} exited ({status})", r.id);
            }
            let leader = client
                .get(format!("{}/v1/status", r.api))
                .send()
                .ok()
                .and_then(|resp| resp.json::<serde_json::Value>().ok())
                .and_then(|s| s["leader"].as_u64());
            leaders.insert(leader);
        }
        if let (1, Some(Some(leader))) = (leaders.len(), leaders.first()) {
            return Ok(*leader);
        }
        if Instant::now() > deadline {
            bail!(
                "the validators did not agree on a leader in {} s (they report {leaders:?})",
                START_TIMEOUT_MS / 1000
            );
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn stop_all(running: &mut [Running]) {
    for r in running.iter() {
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(r.child.id().to_string())
            .status();
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    for r in running.iter_mut() {
        while Instant::now() < deadline {
            if let Ok(Some(_)) = r.child.try_wait() {
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = r.child.kill();
        let _ = r.child.wait();
    }
}

/// `DIR/devnet.json`: the genesis and each node's id, API and pid (scripts
/// and tests read it; pids change when a validator is restarted).
fn write_devnet_file(dir: &Path, running: &[Running]) -> Result<()> {
    let nodes: Vec<_> = running
        .iter()
        .map(|r| json!({"id": r.id, "api": r.api, "pid": r.child.id()}))
        .collect();
    genesis::write_json(
        &dir.join("devnet.json"),
        &json!({"genesis": dir.join("genesis.json"), "nodes": nodes}),
    )?;
    Ok(())
}

/// Until Ctrl-C or SIGTERM: a validator that exits is reported and started
/// again after a pause (5 s, doubling to 30 s while it keeps dying within a
/// minute), on the ports its config pins, so it rejoins the cluster; the
/// others carry on meanwhile.
fn supervise(dir: &Path, running: &mut [Running]) -> Result<()> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    rt.block_on(async {
        let mut term =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
        loop {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => return Ok(()),
                _ = async { match term.as_mut() { Some(t) => { t.recv().await; } None => std::future::pending::<()>().await } } => return Ok(()),
                _ = tokio::time::sleep(Duration::from_millis(200)) => tend(dir, running)?,
            }
        }
    })
}

/// One round of supervision: notices deaths, restarts the validators due.
fn tend(dir: &Path, running: &mut [Running]) -> Result<()> {
    let now = Instant::now();
    let mut restarted = false;
    for r in running.iter_mut() {
        match r.restart_at {
            None => {
                if let Ok(Some(status)) = r.child.try_wait() {
                    r.backoff = if now.duration_since(r.started) >= RESTART_STABLE {
                        RESTART_BACKOFF_MIN
                    } else {
                        r.backoff
                    };
                    r.restart_at = Some(now + r.backoff);
                    println!(
                        "validator {} exited ({status}); the others carry on; restarting it in {} s (log: {})",
                        r.id,
                        r.backoff.as_secs(),
                        dir.join(format!("node-{}.log", r.id)).display()
                    );
                }
            }
            Some(at) if now >= at => {
                r.child = start(dir, r.id)?;
                r.started = now;
                r.restart_at = None;
                r.backoff = (r.backoff * 2).min(RESTART_BACKOFF_MAX);
                restarted = true;
                println!("validator {} restarted (pid {})", r.id, r.child.id());
            }
            Some(_) => {}
        }
    }
    if restarted {
        write_devnet_file(dir, running)?;
    }
    Ok(())
}

/// Starts validator `id` and waits until it serves.
fn launch(dir: &Path, id: u64, cluster: bool, running: &mut Vec<Running>) -> Result<()> {
    let child = start(dir, id)?;
    running.push(Running::new(id, child));
    let r = running.last_mut().context("just pushed")?;
    r.api = wait_serving(dir, id, &mut r.child, cluster)?;
    Ok(())
}

/// Starts every validator. A new cluster's ports are chosen at run time, so
/// the first node (which initialises the cluster with every member's
/// address) starts last, once the others have written theirs; then every
/// config is pinned to the ports in use, since the membership records them
/// and a restart must be found there again.
fn start_all(
    dir: &Path,
    spec: &ledger::spec::ChainSpec,
    fresh: bool,
    running: &mut Vec<Running>,
) -> Result<()> {
    let cluster = spec.validators.len() > 1;
    let mut ids: Vec<u64> = spec.validators.iter().map(|v| v.node_id).collect();
    ids.sort_unstable();
    if !(cluster && fresh) {
        for id in ids {
            launch(dir, id, cluster, running)?;
        }
        return Ok(());
    }
    let (first, others) = ids.split_first().context("genesis has no validators")?;
    for &id in others {
        launch(dir, id, cluster, running)?;
    }
    let mut peers = BTreeMap::new();
    for &id in others {
        peers.insert(
            id.to_string(),
            PeerConfig {
                p2p: read_addr(dir, id, "p2p.addr")?,
                api: Some(read_addr(dir, id, "api.addr")?),
            },
        );
    }
    let first_api = NodeConfig::read(&dir.join(format!("node-{first}.toml")))?.api_listen;
    write_config(dir, *first, first_api, "127.0.0.1:0".into(), peers.clone())?;
    launch(dir, *first, cluster, running)?;
    for &id in &ids {
        let peers = if id == *first {
            peers.clone()
        } else {
            BTreeMap::new()
        };
        write_config(
            dir,
            id,
            read_addr(dir, id, "api.addr")?,
            read_addr(dir, id, "p2p.addr")?,
            peers,
        )?;
    }
    Ok(())
}

pub fn run(dir: &Path, demo: bool, validators: usize, port: u16) -> Result<()> {
    if !(1..=DEVNET_VALIDATORS_MAX).contains(&validators) {
        bail!("--validators must be 1..={DEVNET_VALIDATORS_MAX}, not {validators}");
    }
    let dir = std::path::absolute(dir)?;
    let fresh = prepare(&dir, validators, port)?;
    let spec = genesis::read_spec(&dir.join("genesis.json"))?;
    let mut running: Vec<Running> = Vec::new();
    let started =
        start_all(&dir, &spec, fresh, &mut running).and_then(|()| wait_agreed_leader(&mut running));
    let leader = match started {
        Ok(leader) => leader,
        Err(e) => {
            stop_all(&mut running);
            return Err(e);
        }
    };
    running.sort_by_key(|r| r.id);
    write_devnet_file(&dir, &running)?;
    let api = running[0].api.clone();
    if demo && dir.join("demo-keys.json").exists() {
        println!(
            "demo data: already loaded (see {})",
            dir.join("demo-keys.json").display()
        );
    } else if demo {
        let root = genesis::KeyFile::read(&dir.join("root.key.json"))?;
        match crate::demo::populate(&api, &spec, &root, &dir) {
            Ok(summary) => println!("demo data: {summary}"),
            Err(e) => {
                stop_all(&mut running);
                return Err(e.context("filling demo data"));
            }
        }
    }
    println!(
        "ZSL devnet is up: {} validator(s), chain {}",
        running.len(),
        spec.chain_id
    );
    println!("  leader:          node {leader}");
    for r in &running {
        println!("  node {}:          {}/", r.id, r.api);
    }
    println!("  web UI and API:  {api}/ (any node accepts submissions)");
    println!("  status:          {api}/v1/status");
    println!("  devnet file:     {}", dir.join("devnet.json").display());
    println!("  root key:        {}", dir.join("root.key.json").display());
    println!("Ctrl-C stops it.");

    println!("A validator that dies is restarted; the others carry on.");
    let supervised = supervise(&dir, &mut running);
    stop_all(&mut running);
    supervised
}
