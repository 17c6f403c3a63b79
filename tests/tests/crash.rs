//! SIGKILL during a submit loop loses no transaction that was acknowledged as
//! committed, and `zsl verify-chain` passes after restart.

use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use zsl_tests::record::DocumentNotarize;
use zsl_tests::*;

#[test]
fn sigkill_loses_nothing_acknowledged() {
    let mut node = TestNode::start();
    let chain = node.spec.chain_id.clone();
    let root = node.root_key();
    let account = node.root.account.clone();
    let api = node.api.clone();
    let acked: Arc<Mutex<Vec<String>>> = Arc::new(Mutex::new(Vec::new()));
    let stop = Arc::new(AtomicBool::new(false));

    // Four clients submit one transaction at a time, waiting for commit.
    let mut workers = Vec::new();
    for w in 0..4 {
        let (acked, stop, chain, root, account, api) = (
            acked.clone(),
            stop.clone(),
            chain.clone(),
            root.clone(),
            account.clone(),
            api.clone(),
        );
        workers.push(std::thread::spawn(move || {
            let client = http();
            let mut n = 0u64;
            while !stop.load(Ordering::Relaxed) && n < 10_000 {
                n += 1;
                let doc = DocumentNotarize {
                    document_hash: hex::encode(ledger::hash::sha256(
                        format!("doc {w} {n}").as_bytes(),
                    )),
                    title: format!("worker {w} doc {n}"),
                    media_type: None,
                    note: None,
                };
                let tx = sign(&chain, &root, &account, "document.notarize", &doc);
                let Ok(resp) = client
                    .post(format!("{api}/v1/tx?wait=commit"))
                    .json(&tx)
                    .send()
                else {
                    break;
                };
                let Ok(body) = resp.json::<serde_json::Value>() else {
                    break;
                };
                if body["status"] == "committed" {
                    acked
                        .lock()
                        .unwrap()
                        .push(body["tx_id"].as_str().unwrap().to_string());
                }
            }
        }));
    }
    // Kill once a good number are acknowledged, while the loop is still running.
    poll("acknowledged commits", 60_000, || {
        (acked.lock().unwrap().len() >= 200).then_some(())
    });
    node.kill9();
    stop.store(true, Ordering::Relaxed);
    for w in workers {
        w.join().unwrap();
    }
    let acked = acked.lock().unwrap().clone();
    assert!(acked.len() >= 200);

    node.launch();
    for id in &acked {
        let (status, body) = node.get(&format!("/v1/tx/{id}"));
        assert_eq!(
            status, 200,
            "acknowledged {id} is lost after SIGKILL: {body}"
        );
    }
    node.stop();

    let out = Command::new(zsl_binary())
        .args(["verify-chain", "--data"])
        .arg(node.data_dir().join("db"))
        .arg("--genesis")
        .arg(node.dir.path().join("genesis.json"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "verify-chain failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("chain verified"), "{text}");
}
