//! Three validator processes on 127.0.0.1: they elect a leader, a follower
//! accepts submissions (forwarding them to the leader), and SIGKILL of the
//! leader under a submit loop loses no transaction acknowledged as
//! committed; the killed node restarts and catches up to the same head.
//! Every wait is a poll with a deadline.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use serde_json::Value;
use zsl_tests::*;

const WAIT_MS: u64 = 60_000;

/// Waits until every running node has committed `tx_id`.
fn readable_everywhere(cluster: &TestCluster, tx_id: &str) {
    poll(&format!("{tx_id} on every node"), WAIT_MS, || {
        cluster
            .ids()
            .into_iter()
            .all(|id| cluster.get(id, &format!("/v1/tx/{tx_id}")).0 == 200)
            .then_some(())
    });
}

#[test]
fn three_validators_survive_a_leader_sigkill_and_converge() {
    let mut cluster = TestCluster::start(3);
    let leader = cluster.leader(WAIT_MS);
    let followers: Vec<u64> = cluster
        .ids()
        .into_iter()
        .filter(|&id| id != leader)
        .collect();
    assert_eq!(followers.len(), 2);

    // A follower accepts a submission: the client need not know who leads.
    for &f in &followers {
        let (status, body) = cluster.submit(f, &cluster.notarize(&format!("via {f}")));
        assert_eq!(status, 200, "follower {f} answered {status}: {body}");
        assert_eq!(body["status"], "committed", "{body}");
        readable_everywhere(&cluster, body["tx_id"].as_str().expect("tx id"));
    }

    // Refused at commit, submitted without waiting: every node keeps why.
    let stranger = test_key("not an account");
    let unknown = sign(
        &cluster.spec.chain_id,
        &stranger,
        "nobody",
        "document.notarize",
        &record::DocumentNotarize {
            document_hash: hex::encode(ledger::hash::sha256(b"stranger's document")),
            title: "stranger".into(),
            media_type: None,
            note: None,
        },
    );
    let (status, body) = cluster.submit_no_wait(followers[0], &unknown);
    assert_eq!(status, 202, "{body}");
    let id = body["tx_id"].as_str().expect("tx id").to_string();
    poll("the refusal on every node", WAIT_MS, || {
        cluster
            .ids()
            .into_iter()
            .all(|n| {
                let (s, b) = cluster.get(n, &format!("/v1/tx/{id}"));
                s == 403 && b["status"] == "refused" && b["code"] == "unknown_account"
            })
            .then_some(())
    });

    // Four clients submit through the followers, one transaction at a time,
    // waiting for commit; only `committed` answers count as acknowledged.
    let acked: Arc<Mutex<Vec<String>>> = Arc::new(Mutex::new(Vec::new()));
    let stop = Arc::new(AtomicBool::new(false));
    let mut workers = Vec::new();
    for w in 0..4 {
        let api = cluster.api(followers[w % 2]).to_string();
        let (acked, stop) = (acked.clone(), stop.clone());
        let txs: Vec<Value> = (0..2_000)
            .map(|n| cluster.notarize(&format!("worker {w} doc {n}")))
            .collect();
        workers.push(std::thread::spawn(move || {
            let client = http();
            for tx in txs {
                if stop.load(Ordering::Relaxed) {
                    break;
                }
                let answer = client
                    .post(format!("{api}/v1/tx?wait=commit"))
                    .json(&tx)
                    .send()
                    .ok()
                    .and_then(|r| r.json::<Value>().ok());
                match answer {
                    Some(body) if body["status"] == "committed" => {
                        if let Some(id) = body["tx_id"].as_str() {
                            acked.lock().expect("lock").push(id.to_string());
                        }
                    }
                    // Refused, unknown or no leader for the moment: this one
                    // is not acknowledged; go on with the next.
                    _ => std::thread::sleep(std::time::Duration::from_millis(20)),
                }
            }
        }));
    }
    let count = || acked.lock().expect("lock").len();
    poll("acknowledged commits before the kill", WAIT_MS, || {
        (count() >= 100).then_some(())
    });
    cluster.kill9(leader);
    let at_kill = count();
    // The survivors elect a new leader and the followers forward to it.
    let new_leader = cluster.leader(WAIT_MS);
    assert_ne!(new_leader, leader);
    poll("acknowledged commits after the kill", WAIT_MS, || {
        (count() >= at_kill + 100).then_some(())
    });
    stop.store(true, Ordering::Relaxed);
    for w in workers {
        w.join().expect("worker");
    }

    // The killed node restarts on its own store and catches up.
    cluster.launch(leader);
    let acked = acked.lock().expect("lock").clone();
    for id in &acked {
        readable_everywhere(&cluster, id);
    }
    let head = poll("every node at the same head", WAIT_MS, || {
        let heads: std::collections::BTreeSet<(u64, String)> = cluster
            .ids()
            .into_iter()
            .map(|id| {
                let s = cluster.status(id)?;
                Some((s["height"].as_u64()?, s["head_hash"].as_str()?.to_string()))
            })
            .collect::<Option<_>>()?;
        (heads.len() == 1)
            .then(|| heads.into_iter().next())
            .flatten()
    });
    assert!(head.0 >= 2, "head {head:?}");
    // A block hash is over its predecessor's, so one head hash means one chain;
    // spot-check a middle block anyway.
    let mid = head.0 / 2;
    let hashes: std::collections::BTreeSet<String> = cluster
        .ids()
        .into_iter()
        .map(|id| cluster.get(id, &format!("/v1/blocks/{mid}")).1["hash"].to_string())
        .collect();
    assert_eq!(hashes.len(), 1, "nodes disagree on block {mid}: {hashes:?}");
    // The restarted node serves submissions too.
    let (status, body) = cluster.submit(leader, &cluster.notarize("after restart"));
    assert_eq!(status, 200, "{body}");
    for id in cluster.ids() {
        cluster.kill9(id);
    }
}
