//! The Python signing example in docs/examples/sign.py — no ZSL code, only
//! hashlib, json and `cryptography` — produces transactions a node accepts.

use std::process::Command;

use zsl_tests::*;

/// Runs a signing example on `body_path` with `secret`; returns the
/// transaction it prints and the tx id it reports.
fn python_sign(
    script: &std::path::Path,
    secret: &str,
    body_path: &std::path::Path,
) -> (serde_json::Value, String) {
    let out = Command::new("python3")
        .arg(script)
        .arg(secret)
        .arg(body_path)
        .output()
        .expect("python3");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "{} failed: {stderr}",
        script.display()
    );
    let tx = serde_json::from_slice(&out.stdout).expect("a transaction");
    let id = stderr
        .lines()
        .find_map(|l| l.strip_prefix("tx id: "))
        .expect("a tx id line")
        .trim()
        .to_string();
    (tx, id)
}

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
    let (tx, py_id) = python_sign(&script, &node.root.secret_key, &body_path);
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

/// docs/examples/sign_sm2.py — gmalg and the standard library, no ZSL code —
/// signs for an SM2-keyed subject; the node commits it under the same tx id.
/// With no arguments it checks the worked example of docs/signing.md.
#[test]
fn python_sm2_signed_transaction_is_committed() {
    let node = TestNode::start();
    let key = KeyFile::generate_sm2("sm2");
    let (id, _, mut reg) = subject_register(81, "330102", record::SubjectKind::Producer, false);
    reg.public_key = key.public_key.clone();
    let (status, answer) = node.submit(&sign(
        &node.spec.chain_id,
        &node.root_key(),
        &node.root.account,
        "subject.register",
        &reg,
    ));
    assert_eq!(status, 200, "{answer}");
    let body = serde_json::json!({
        "type": "product.register",
        "chain_id": node.spec.chain_id,
        "account": id,
        "created_at": jiff::Timestamp::now().to_string(),
        "nonce": "python-sm2-1",
        "product_id": "P1",
        "name": "猪肉 pork",
        "variety": "meat",
        "shelf_life_days": 5,
    });
    let body_path = node.dir.path().join("sm2-body.json");
    std::fs::write(&body_path, serde_json::to_vec(&body).unwrap()).unwrap();
    let script =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/examples/sign_sm2.py");
    let (tx, py_id) = python_sign(&script, &key.secret_key, &body_path);
    assert_eq!(tx["signer"], key.public_key.as_str());
    let (status, answer) = node.submit(&tx);
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["status"], "committed", "{answer}");
    assert_eq!(answer["tx_id"].as_str().unwrap(), py_id);
    // A signature by the same key over another body is refused, changing nothing.
    let mut forged = tx.clone();
    forged["body"]["nonce"] = serde_json::json!("python-sm2-2");
    let (status, answer) = node.submit(&forged);
    assert_eq!(status, 403, "{answer}");
    assert_eq!(answer["code"], "bad_signature", "{answer}");

    let out = Command::new("python3").arg(&script).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(!stderr.contains("MISMATCH"), "{stderr}");
    assert!(
        stderr.contains("5a5c6130498627e396025979edb0737a676ac5614d4b9105b36ff2cd04eff68c"),
        "{stderr}"
    );
}
