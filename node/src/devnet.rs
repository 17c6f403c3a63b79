//! `zsl devnet`: generate a local chain, start its validators as child
//! processes on 127.0.0.1, optionally fill it with demo data, and supervise.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use serde_json::json;

use crate::config::{BlockConfig, NodeConfig};

pub const DEVNET_CHAIN_ID: &str = "zsl-devnet";
const START_TIMEOUT_MS: u64 = 60_000;

struct Running {
    id: u64,
    child: Child,
    api: String,
}

fn node_dir(dir: &Path, id: u64) -> PathBuf {
    dir.join(format!("node-{id}"))
}

/// Writes genesis, keys and node configs unless the directory already holds a devnet.
fn prepare(dir: &Path, validators: usize, port: u16) -> Result<()> {
    if dir.join("genesis.json").exists() {
        return Ok(());
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
        let cfg = NodeConfig {
            node_id: id,
            data_dir: PathBuf::from(format!("node-{id}")),
            genesis: PathBuf::from("genesis.json"),
            api_listen,
            validator_key: Some(PathBuf::from(format!("validator-{id}.key.json"))),
            block: BlockConfig::default(),
        };
        cfg.write(&dir.join(format!("node-{id}.toml")))?;
    }
    Ok(())
}

fn start(dir: &Path, id: u64) -> Result<Child> {
    let exe = std::env::current_exe()?;
    let nd = node_dir(dir, id);
    std::fs::create_dir_all(&nd)?;
    let _ = std::fs::remove_file(nd.join("api.addr"));
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

fn wait_ready(dir: &Path, id: u64, child: &mut Child) -> Result<String> {
    let deadline = Instant::now() + Duration::from_millis(START_TIMEOUT_MS);
    let client = crate::client::http()?;
    loop {
        if let Some(status) = child.try_wait()? {
            bail!(
                "validator {id} exited ({status}); see {}",
                dir.join(format!("node-{id}.log")).display()
            );
        }
        if let Ok(addr) = std::fs::read_to_string(node_dir(dir, id).join("api.addr")) {
            let api = format!("http://{}", addr.trim());
            if let Ok(r) = client.get(format!("{api}/v1/status")).send() {
                if r.status().is_success() {
                    let s: serde_json::Value = r.json()?;
                    if s["leader"].is_u64() {
                        return Ok(api);
                    }
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

pub fn run(dir: &Path, demo: bool, validators: usize, port: u16) -> Result<()> {
    if validators != 1 {
        bail!("this release runs a one-validator devnet (`--validators 1`); the cluster release adds three");
    }
    let dir = std::path::absolute(dir)?;
    prepare(&dir, validators, port)?;
    let spec = genesis::read_spec(&dir.join("genesis.json"))?;
    let mut running: Vec<Running> = Vec::new();
    for v in &spec.validators {
        let child = start(&dir, v.node_id)?;
        running.push(Running {
            id: v.node_id,
            child,
            api: String::new(),
        });
    }
    for r in running.iter_mut() {
        match wait_ready(&dir, r.id, &mut r.child) {
            Ok(api) => r.api = api,
            Err(e) => {
                stop_all(&mut running);
                return Err(e);
            }
        }
    }
    let nodes: Vec<_> = running
        .iter()
        .map(|r| json!({"id": r.id, "api": r.api, "pid": r.child.id()}))
        .collect();
    genesis::write_json(
        &dir.join("devnet.json"),
        &json!({"genesis": dir.join("genesis.json"), "nodes": nodes}),
    )?;
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
    println!("  web UI and API:  {api}/");
    println!("  status:          {api}/v1/status");
    println!("  devnet file:     {}", dir.join("devnet.json").display());
    println!("  root key:        {}", dir.join("root.key.json").display());
    println!("Ctrl-C stops it.");

    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let exited = rt.block_on(async {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
        loop {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => return None,
                _ = async { match term.as_mut() { Some(t) => { t.recv().await; } None => std::future::pending::<()>().await } } => return None,
                _ = tokio::time::sleep(Duration::from_millis(500)) => {
                    for r in running.iter_mut() {
                        if let Ok(Some(status)) = r.child.try_wait() {
                            return Some((r.id, status));
                        }
                    }
                }
            }
        }
    });
    stop_all(&mut running);
    if let Some((id, status)) = exited {
        bail!(
            "validator {id} exited ({status}); see {}",
            dir.join(format!("node-{id}.log")).display()
        );
    }
    Ok(())
}
