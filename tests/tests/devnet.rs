//! `zsl devnet` keeps going when a validator dies: SIGKILL of the leader of a
//! three-validator devnet leaves two that elect a new leader and commit; the
//! supervisor restarts the killed one, which rejoins and catches up. Every
//! wait is a poll with a deadline; every process is stopped at the end.

use std::process::{Child, Command};

use serde_json::Value;
use zsl_tests::*;

const WAIT_MS: u64 = 60_000;

/// The supervisor and its directory; stops everything on drop.
struct Devnet {
    dir: tempfile::TempDir,
    child: Child,
}

impl Devnet {
    fn file(&self) -> Value {
        std::fs::read(self.dir.path().join("devnet.json"))
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or(Value::Null)
    }

    /// (id, api, pid) of every node, as devnet.json has them now.
    fn nodes(&self) -> Vec<(u64, String, u64)> {
        self.file()["nodes"]
            .as_array()
            .map(|n| {
                n.iter()
                    .filter_map(|x| {
                        Some((
                            x["id"].as_u64()?,
                            x["api"].as_str()?.to_string(),
                            x["pid"].as_u64()?,
                        ))
                    })
                    .collect()
            })
            .unwrap_or_default()
    }
}

impl Drop for Devnet {
    fn drop(&mut self) {
        let pids: Vec<u64> = self.nodes().into_iter().map(|n| n.2).collect();
        stop_devnet(&mut self.child, &pids);
    }
}

fn status(api: &str) -> Option<Value> {
    let r = http().get(format!("{api}/v1/status")).send().ok()?;
    r.json().ok()
}

#[test]
fn the_devnet_survives_its_leader_and_the_killed_one_rejoins() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (child, rx) = spawn_devnet(dir.path(), 3, false);
    let devnet = Devnet { dir, child };
    let mut log = String::new();
    poll("the devnet to come up", WAIT_MS, || {
        while let Ok(line) = rx.try_recv() {
            log.push_str(&line);
            log.push('\n');
        }
        log.contains("ZSL devnet is up").then_some(())
    });
    let nodes = devnet.nodes();
    assert_eq!(nodes.len(), 3, "{}", devnet.file());
    let leader = status(&nodes[0].1)
        .and_then(|s| s["leader"].as_u64())
        .expect("a leader");
    let (_, _, leader_pid) = nodes
        .iter()
        .find(|n| n.0 == leader)
        .cloned()
        .expect("the leader's entry");

    Command::new("kill")
        .args(["-KILL", &leader_pid.to_string()])
        .status()
        .expect("kill");

    // The two others elect a new leader and commit through either of them.
    let survivor = nodes
        .iter()
        .find(|n| n.0 != leader)
        .expect("a survivor")
        .1
        .clone();
    let new_leader = poll("a new leader among the survivors", WAIT_MS, || {
        let l = status(&survivor)?["leader"].as_u64()?;
        (l != leader).then_some(l)
    });
    let spec = genesis::read_spec(&devnet.dir.path().join("genesis.json")).expect("genesis");
    let root = genesis::KeyFile::read(&devnet.dir.path().join("root.key.json")).expect("root key");
    let tx = sign(
        &spec.chain_id,
        &root.signing_key().unwrap(),
        &root.account,
        "document.notarize",
        &record::DocumentNotarize {
            document_hash: hex::encode(ledger::hash::sha256(b"after the leader died")),
            title: "after the leader died".into(),
            media_type: None,
            note: None,
        },
    );
    let committed = poll("a commit with the leader dead", WAIT_MS, || {
        let r = http()
            .post(format!("{survivor}/v1/tx?wait=commit"))
            .json(&tx)
            .send()
            .ok()?;
        let body: Value = r.json().ok()?;
        (body["status"] == "committed").then_some(body)
    });
    let height = committed["height"].as_u64().expect("height");

    // The supervisor said so, restarted the killed one, and it catches up.
    poll(
        "the supervisor to restart the killed validator",
        WAIT_MS,
        || {
            while let Ok(line) = rx.try_recv() {
                log.push_str(&line);
                log.push('\n');
            }
            devnet
                .nodes()
                .iter()
                .any(|n| n.0 == leader && n.2 != leader_pid)
                .then_some(())
        },
    );
    assert!(log.contains(&format!("validator {leader} exited")), "{log}");
    let rejoined_api = devnet
        .nodes()
        .into_iter()
        .find(|n| n.0 == leader)
        .expect("entry")
        .1;
    poll("the restarted validator to catch up", WAIT_MS, || {
        (status(&rejoined_api)?["height"].as_u64()? >= height).then_some(())
    });
    eprintln!("leader {leader} killed; node {new_leader} leads; {leader} restarted and at height ≥ {height}");
}
