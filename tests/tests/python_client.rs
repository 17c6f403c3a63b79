//! The Python signing example in docs/examples/sign.py — no ZSL code, only
//! hashlib, json and `cryptography` — produces transactions a node accepts.

use std::process::Command;

use zsl_tests::*;

#[test]
fn python_signed_transaction_is_committed() {
    let node = TestNode::start();
    let body = serde_json::json!({
        "type": "document.notarize",
        "chain_id": node.spec.chain_id,
        "account": node.root.account,
        "created_at": jiff::Timestamp::now().to_string(),
        "nonce": "python-1",
        "document_hash": hex::encode(ledger::hash::sha256(b"inspection report 2024-03")),
        "title": "检查报告 inspection report",
    });
    let body_path = node.dir.path().join("body.json");
    std::fs::write(&body_path, serde_json::to_vec(&body).unwrap()).unwrap();
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/examples/sign.py");
    let out = Command::new("python3")
        .arg(&script)
        .arg(&node.root.secret_key)
        .arg(&body_path)
        .output()
        .expect("python3");
    assert!(
        out.status.success(),
        "sign.py failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let tx: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    let py_id = stderr
        .lines()
        .find_map(|l| l.strip_prefix("tx id: "))
        .unwrap()
        .trim()
        .to_string();
    let (status, answer) = node.submit(&tx);
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["status"], "committed");
    assert_eq!(
        answer["tx_id"].as_str().unwrap(),
        py_id,
        "Python and the node disagree on the tx id"
    );

    // The worked example in docs/signing.md is what the script prints with no arguments.
    let out = Command::new("python3").arg(&script).output().unwrap();
    assert!(String::from_utf8_lossy(&out.stderr)
        .contains("5a5c6130498627e396025979edb0737a676ac5614d4b9105b36ff2cd04eff68c"));
}

/// docs/examples/signed_read.py — `cryptography` and the standard library —
/// signs a read the node accepts as the root regulator's; unsigned, the same
/// read is refused.
#[test]
fn python_signed_read_is_accepted() {
    let node = TestNode::start();
    let script =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/examples/signed_read.py");
    let path = format!("/v1/accounts/{}", node.root.account);
    let out = Command::new("python3")
        .arg(&script)
        .arg(&node.api)
        .arg(node.dir.path().join("root.key.json"))
        .arg(&path)
        .output()
        .expect("python3");
    assert!(
        out.status.success(),
        "signed_read.py failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let answer: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    assert_eq!(answer["id"], node.root.account.as_str(), "{answer}");
    assert_eq!(node.get_public(&path).0, 401);
}
