//! Evidence fixing end to end on a real one-validator `zsl` node: notarize a
//! document, wait until its checkpoint is sealed, fetch the bundle, verify it
//! offline with `zsl verify` and the genesis file alone; a tampered copy
//! fails naming the check. Also the checkpoint, consistency, certificate and
//! bad-input answers.

use std::path::Path;
use std::process::Command;

use serde_json::{json, Value};
use zsl_tests::record::*;
use zsl_tests::*;

const D1: &str = "330102";
/// Sealing needs the next block after the record's (quorum 1); generous for a loaded box.
const SEAL_TIMEOUT_MS: u64 = 30_000;

fn ok(node: &TestNode, tx: &Value) -> Value {
    let (status, body) = node.submit(tx);
    assert_eq!(status, 200, "expected commit, got {status}: {body}");
    body
}

/// GET as the root regulator (evidence is for parties and their regulators).
fn get_text(node: &TestNode, path: &str) -> (u16, String, String) {
    let url = format!("{}{path}", node.api);
    let mut req = http().get(&url);
    for (name, value) in signature_headers(&node.root_key(), "GET", &sent_path(&url), b"") {
        req = req.header(name, value);
    }
    status_type_text(req.send().expect("GET"))
}

/// Runs `zsl verify ARGS`; returns (exit code, stdout).
fn zsl_verify(args: &[&Path], extra: &[&str]) -> (i32, String) {
    let out = Command::new(zsl_binary())
        .arg("verify")
        .args(extra)
        .args(args)
        .output()
        .expect("run zsl verify");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr),
    )
}

/// Checks a note with the Go verifier configured with the bundle's vkeys and
/// quorum; returns (exit code, output).
fn go_verify(bin: &Path, dir: &Path, note: &str, bundle: &Value) -> (i32, String) {
    let vkeys: Vec<String> = serde_json::from_value(bundle["validators"]["vkeys"].clone())
        .expect("a format 2 bundle lists vkeys");
    let quorum = bundle["validators"]["quorum"].as_u64().unwrap();
    go_note_verify(bin, dir, note, quorum, &vkeys, None)
}

/// Polls until the bundle of `id` is served (its checkpoint sealed).
fn wait_for_bundle(node: &TestNode, id: &str) -> Value {
    poll(
        "the record's checkpoint to be sealed (GET /v1/evidence/{id} answering 200)",
        SEAL_TIMEOUT_MS,
        || {
            let (status, body) = node.get(&format!("/v1/evidence/{id}"));
            match status {
                200 => Some(body),
                409 => {
                    // It passes by itself: the next checkpoint seals a block later.
                    assert_eq!(body["code"], "not_yet_sealed", "{body}");
                    assert_eq!(body["retryable"], true, "{body}");
                    None
                }
                other => panic!("GET /v1/evidence answered {other}: {body}"),
            }
        },
    )
}

#[test]
fn a_notarized_document_verifies_offline_and_a_tampered_bundle_does_not() {
    let node = TestNode::start();
    let chain = node.spec.chain_id.clone();
    let root = node.root_key();
    let root_id = node.root.account.clone();
    let genesis = node.dir.path().join("genesis.json");

    // A subject whose key is bound by a record (so the bundle carries the binding).
    let id = uscc(D1, 1);
    let key = test_key(&id);
    let reg = SubjectRegister {
        uscc: id.clone(),
        name: "检测机构样本".into(),
        kind: SubjectKind::Producer,
        district: D1.into(),
        key_subject: false,
        public_key: hex::encode(key.verifying_key().to_bytes()),
        market: None,
    };
    ok(
        &node,
        &sign(&chain, &root, &root_id, "subject.register", &reg),
    );

    // The upload helper hashes and forgets the file.
    let doc = "抽检报告 2024-03 / inspection report".as_bytes().to_vec();
    let r = http()
        .post(format!("{}/v1/notarize/hash?title=report", node.api))
        .header("content-type", "application/pdf")
        .body(doc.clone())
        .send()
        .expect("POST");
    assert_eq!(r.status().as_u16(), 200);
    let hashed: Value = r.json().expect("json");
    let hash = hex::encode(ledger::hash::sha256(&doc));
    assert_eq!(hashed["document_hash"], hash.as_str());
    assert_eq!(hashed["body"]["type"], "document.notarize");
    assert_eq!(hashed["body"]["media_type"], "application/pdf");
    let (status, body) = node.post_raw("/v1/notarize/hash", Vec::new());
    assert_eq!(
        (status, body["code"].as_str()),
        (400, Some("empty_document"))
    );

    // POST /v1/notarize takes only notarizations.
    let wrong = sign(&chain, &root, &root_id, "subject.register", &reg);
    let (status, body) = node.post_raw("/v1/notarize", serde_json::to_vec(&wrong).unwrap());
    assert_eq!(
        (status, body["code"].as_str()),
        (400, Some("not_a_notarization")),
        "{body}"
    );
    let rec = DocumentNotarize {
        document_hash: hash.clone(),
        title: "抽检报告 <2024-03>".into(),
        media_type: Some("application/pdf".into()),
        note: None,
    };
    let tx = sign(&chain, &key, &id, "document.notarize", &rec);
    let (status, committed) =
        node.post_raw("/v1/notarize?wait=commit", serde_json::to_vec(&tx).unwrap());
    assert_eq!(status, 200, "{committed}");
    let tx_id = committed["tx_id"].as_str().expect("tx_id").to_string();

    // Bad ids and unknown ids: clear 4xx JSON.
    let (status, body) = node.get("/v1/evidence/not-hex");
    assert_eq!((status, body["code"].as_str()), (400, Some("invalid_id")));
    let (status, body) = node.get(&format!("/v1/evidence/{}", "0".repeat(64)));
    assert_eq!((status, body["code"].as_str()), (404, Some("not_found")));
    let (status, body) = node.get(&format!("/v1/evidence/{tx_id}?format=pdf"));
    assert_eq!(
        (status, body["code"].as_str()),
        (400, Some("invalid_query"))
    );

    let bundle = wait_for_bundle(&node, &tx_id);
    assert_eq!(bundle["format"], "zsl-evidence/2");
    assert!(bundle["signer_key"]["binding"].is_object(), "{bundle}");
    let path = node.dir.path().join("bundle.json");
    std::fs::write(&path, serde_json::to_vec_pretty(&bundle).unwrap()).unwrap();
    let (code, out) = zsl_verify(&[&path], &["--genesis", genesis.to_str().unwrap()]);
    assert_eq!(code, 0, "{out}");
    for check in [
        "record_signature",
        "signer_key",
        "block_header",
        "inclusion",
        "checkpoint_matches_header",
        "validator_set",
        "checkpoint_signatures",
        "block_time",
    ] {
        assert!(
            out.contains(&format!("✓ {check}")),
            "{check} missing:\n{out}"
        );
    }
    assert!(out.contains("VERIFIED"), "{out}");

    // Tampered: the title in the signed record, then the leaf index.
    let mut t = bundle.clone();
    t["record"]["body"]["title"] = json!("another title");
    let bad = node.dir.path().join("tampered.json");
    std::fs::write(&bad, serde_json::to_vec(&t).unwrap()).unwrap();
    let (code, out) = zsl_verify(&[&bad], &["--genesis", genesis.to_str().unwrap()]);
    assert_eq!(code, 2, "{out}");
    assert!(out.contains("✗ record_signature"), "{out}");
    assert!(out.contains("NOT VERIFIED"), "{out}");
    let mut t = bundle.clone();
    t["leaf_index"] = json!(t["leaf_index"].as_u64().unwrap() + 1);
    std::fs::write(&bad, serde_json::to_vec(&t).unwrap()).unwrap();
    let (code, out) = zsl_verify(&[&bad], &["--genesis", genesis.to_str().unwrap()]);
    assert_eq!(code, 2, "{out}");
    assert!(out.contains("✗ inclusion"), "{out}");
    // Not a bundle at all.
    std::fs::write(&bad, b"{\"format\": 1}").unwrap();
    let (code, out) = zsl_verify(&[&bad], &["--genesis", genesis.to_str().unwrap()]);
    assert_eq!(code, 2, "{out}");
    assert!(out.contains("✗ bundle"), "{out}");

    // The tlog-proof text form and the certificate.
    let (status, ctype, text) = get_text(&node, &format!("/v1/evidence/{tx_id}?format=tlog-proof"));
    assert_eq!(status, 200);
    assert!(ctype.starts_with("text/plain"), "{ctype}");
    assert!(text.starts_with("c2sp.org/tlog-proof@v1\nextra "), "{text}");
    assert!(text.ends_with(bundle["checkpoint"].as_str().unwrap()));
    let (status, ctype, html) = get_text(&node, &format!("/v1/evidence/{tx_id}/certificate"));
    assert_eq!(status, 200);
    assert!(ctype.starts_with("text/html"), "{ctype}");
    assert!(html.contains("证据证书") && html.contains("<svg"), "{html}");
    // The QR code and link point at the node's own address (its configured
    // public URL by default), never at a Host header a client sent.
    assert!(
        html.contains(&format!("{}/verify?tx={tx_id}", node.api)),
        "verify link at the node's address"
    );
    assert!(html.contains(&hash));
    assert!(
        html.contains("&lt;2024-03&gt;") && !html.contains("<2024-03>"),
        "escaped title"
    );

    // Checkpoints: the one proving the record's block, then a later one.
    let height = bundle["headers"][0]["height"].as_u64().unwrap();
    let (status, _, old_note) = get_text(&node, &format!("/v1/checkpoints/{height}"));
    assert_eq!(status, 200, "{old_note}");
    let (status, old) = node.get(&format!("/v1/checkpoints/{height}?format=json"));
    assert_eq!(status, 200, "{old}");
    assert_eq!(old["note"].as_str(), Some(old_note.as_str()));
    let rec2 = DocumentNotarize {
        document_hash: hex::encode(ledger::hash::sha256(b"second")),
        title: "second".into(),
        media_type: None,
        note: None,
    };
    let c2 = ok(&node, &sign(&chain, &key, &id, "document.notarize", &rec2));
    wait_for_bundle(&node, c2["tx_id"].as_str().unwrap());
    let (status, _, new_note) = get_text(&node, "/v1/checkpoints/latest");
    assert_eq!(status, 200);
    let (_, latest) = node.get("/v1/checkpoints/latest?format=json");
    let (from, to) = (
        old["tree_size"].as_u64().unwrap(),
        latest["tree_size"].as_u64().unwrap(),
    );
    assert!(from < to, "{from} {to}");
    let (status, proof) = node.get(&format!("/v1/proofs/consistency?from={from}&to={to}"));
    assert_eq!(status, 200, "{proof}");
    let dir = node.dir.path();
    let (o, n, p) = (
        dir.join("old.note"),
        dir.join("new.note"),
        dir.join("proof.json"),
    );
    std::fs::write(&o, &old_note).unwrap();
    std::fs::write(&n, &new_note).unwrap();
    std::fs::write(&p, serde_json::to_vec(&proof).unwrap()).unwrap();
    let g = genesis.to_str().unwrap();
    let consistency = [
        "--genesis",
        g,
        "--proof",
        p.to_str().unwrap(),
        "--consistency",
    ];
    let (code, out) = zsl_verify(&[&o, &n], &consistency);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("✓ consistency"), "{out}");
    // Swapped old and new: not append-only.
    let (code, out) = zsl_verify(&[&n, &o], &consistency);
    assert_eq!(code, 2, "{out}");
    assert!(out.contains("✗ consistency"), "{out}");

    // Bad sizes.
    let (status, body) = node.get(&format!("/v1/proofs/consistency?from={to}&to={from}"));
    assert_eq!(
        (status, body["code"].as_str()),
        (400, Some("invalid_sizes"))
    );
    let (status, body) = node.get("/v1/proofs/consistency?from=x&to=1");
    assert_eq!(
        (status, body["code"].as_str()),
        (400, Some("invalid_query"))
    );
    let (status, body) = node.get("/v1/checkpoints/999999999");
    assert_eq!(status, 404, "{body}");
    let (status, body) = node.get("/v1/checkpoints/abc");
    assert_eq!(
        (status, body["code"].as_str()),
        (400, Some("invalid_height"))
    );
}

#[test]
fn a_bundle_from_a_three_node_cluster_verifies_offline() {
    let c = TestCluster::start(3);
    let leader = c.leader(READY_TIMEOUT_MS);
    let root = c.root_key();
    let rec = DocumentNotarize {
        document_hash: hex::encode(ledger::hash::sha256(b"cluster document")),
        title: "三节点 cluster".into(),
        media_type: None,
        note: None,
    };
    let tx = sign(
        &c.spec.chain_id,
        &root,
        &c.root.account,
        "document.notarize",
        &rec,
    );
    let (status, body) = c.submit(leader, &tx);
    assert_eq!(status, 200, "{body}");
    let tx_id = body["tx_id"].as_str().expect("tx_id").to_string();
    // Any node serves the bundle once a quorum (2 of 3) signed; ask a follower.
    let follower = c
        .ids()
        .into_iter()
        .find(|&id| id != leader)
        .expect("follower");
    let bundle = poll(
        "a sealed checkpoint on a follower (GET /v1/evidence/{id} answering 200)",
        SEAL_TIMEOUT_MS,
        || {
            let (status, body) = c.get(follower, &format!("/v1/evidence/{tx_id}"));
            match status {
                200 => Some(body),
                404 | 409 => None, // not applied on this follower yet / not sealed yet
                other => panic!("GET /v1/evidence answered {other}: {body}"),
            }
        },
    );
    assert_eq!(
        bundle["validators"]["set"].as_array().map(Vec::len),
        Some(3)
    );
    assert_eq!(bundle["validators"]["quorum"], 2);
    let path = c.dir.path().join("bundle.json");
    std::fs::write(&path, serde_json::to_vec_pretty(&bundle).unwrap()).unwrap();
    let genesis = c.dir.path().join("genesis.json");
    let (code, out) = zsl_verify(&[&path], &["--genesis", genesis.to_str().unwrap()]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("✓ checkpoint_signatures"), "{out}");
    assert_eq!(bundle["format"], "zsl-evidence/2");
    let note = bundle["checkpoint"].as_str().unwrap();
    let (text, sigs) = note.split_once("\n\n").unwrap();
    let origin = text.lines().next().unwrap();
    let genesis_hash = bundle["genesis_hash"].as_str().unwrap();
    assert_eq!(
        origin,
        format!("zsl.example/{}/{genesis_hash}", c.spec.chain_id)
    );
    // A line by a key nobody knows (a witness's, say) is ignored: still verified.
    let stranger = ledger::checkpoint::SignedNote::sign(
        format!("{text}\n"),
        "witness.example/w1",
        &ed25519_dalek::SigningKey::from_bytes(&[7; 32]),
    )
    .unwrap()
    .render();
    let stranger_line = stranger.lines().last().unwrap();
    let with_stranger = format!("{note}{stranger_line}\n");
    // `zsl verify` of the bundle with its checkpoint note replaced.
    let zsl_with_note = |note: &str| {
        let mut t = bundle.clone();
        t["checkpoint"] = json!(note);
        std::fs::write(&path, serde_json::to_vec(&t).unwrap()).unwrap();
        zsl_verify(&[&path], &["--genesis", genesis.to_str().unwrap()])
    };
    let (code, out) = zsl_with_note(&with_stranger);
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains("1 signature line(s) by keys that are not validators in force ignored"),
        "{out}"
    );
    // A generic C2SP verifier (Go's x/mod/sumdb/note) configured with the
    // bundle's vkeys and quorum agrees, with and without the stranger.
    let go = go_note_verifier(c.dir.path());
    let (code, out) = go_verify(&go, c.dir.path(), note, &bundle);
    assert_eq!(code, 0, "{out}");
    let (code, out) = go_verify(&go, c.dir.path(), &with_stranger, &bundle);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("unknown 1"), "{out}");
    // Dropping signatures below the quorum fails the signature check, in both.
    let one = sigs.lines().next().unwrap();
    let below = format!("{text}\n\n{one}\n");
    let (code, out) = go_verify(&go, c.dir.path(), &below, &bundle);
    assert_eq!(code, 3, "{out}");
    let (code, out) = zsl_with_note(&below);
    assert_eq!(code, 2, "{out}");
    assert!(out.contains("✗ checkpoint_signatures"), "{out}");
    // A validator's line with a flipped signature byte: refused by both.
    let mut line: Vec<char> = one.chars().collect();
    let last = line.len() - 3;
    line[last] = if line[last] == 'A' { 'B' } else { 'A' };
    let bad: String = line.into_iter().collect();
    let tampered = format!(
        "{text}\n\n{bad}\n{}",
        sigs.lines()
            .skip(1)
            .map(|l| format!("{l}\n"))
            .collect::<String>()
    );
    let (code, out) = go_verify(&go, c.dir.path(), &tampered, &bundle);
    assert_eq!(code, 2, "{out}");
    let (code, out) = zsl_with_note(&tampered);
    assert_eq!(code, 2, "{out}");
    assert!(out.contains("✗ checkpoint_signatures"), "{out}");
}

/// GETs raw bytes as the root regulator; returns (status, content type, body).
fn get_bytes(api: &str, root: &ed25519_dalek::SigningKey, path: &str) -> (u16, String, Vec<u8>) {
    let url = format!("{api}{path}");
    let mut req = http().get(&url);
    for (name, value) in signature_headers(root, "GET", &sent_path(&url), b"") {
        req = req.header(name, value);
    }
    let r = req.send().expect("GET");
    let status = r.status().as_u16();
    let kind = r
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    (status, kind, r.bytes().expect("body").to_vec())
}

/// Runs tests/scitt/receipts.py (pycose); returns (exit code, output).
fn pycose(args: &[&str]) -> (i32, String) {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scitt/receipts.py");
    let out = Command::new("python3")
        .arg(&script)
        .args(args)
        .output()
        .expect("python3");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr),
    )
}

#[test]
fn a_scitt_statement_from_a_three_node_cluster_verifies_with_pycose() {
    let c = TestCluster::start(3);
    let leader = c.leader(READY_TIMEOUT_MS);
    let root = c.root_key();
    // Two records before it, so its inclusion proof has hashes in it.
    for label in ["scitt a", "scitt b"] {
        let (status, body) = c.submit(leader, &c.notarize(label));
        assert_eq!(status, 200, "{body}");
    }
    let (status, body) = c.submit(leader, &c.notarize("SCITT 声明"));
    assert_eq!(status, 200, "{body}");
    let tx_id = body["tx_id"].as_str().expect("tx_id").to_string();
    // A follower builds it: its own receipt, and the others' asked over HTTP.
    let follower = c.ids().into_iter().find(|&id| id != leader).unwrap();
    let path = format!("/v1/evidence/{tx_id}/scitt");
    let statement = poll(
        "a SCITT statement with a quorum of receipts",
        SEAL_TIMEOUT_MS,
        || {
            let (status, kind, bytes) = get_bytes(c.api(follower), &root, &path);
            match status {
                200 => {
                    assert!(kind.starts_with("application/cose"), "{kind}");
                    Some(bytes)
                }
                404 | 409 | 503 => None, // not applied / not sealed / receipts short yet
                other => panic!(
                    "GET {path} answered {other}: {}",
                    String::from_utf8_lossy(&bytes)
                ),
            }
        },
    );
    let dir = c.dir.path();
    let file = dir.join("statement.cose");
    std::fs::write(&file, &statement).unwrap();
    let genesis = dir.join("genesis.json");
    let (g, f) = (genesis.to_str().unwrap(), file.to_str().unwrap());
    // pycose verifies every receipt over the root its proof leads to; all
    // three validators answered.
    let (code, out) = pycose(&["verify", f, g, "3"]);
    assert_eq!(code, 0, "{out}");
    assert_eq!(out.matches("receipt by ").count(), 3, "{out}");
    assert!(out.contains("leaf 2 of "), "{out}");
    let (code, out) = zsl_verify(&[&file], &["--genesis", g]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("✓ receipts"), "{out}");
    assert!(out.contains("✓ checkpoint_signatures"), "{out}");
    // Each tampering fails in both verifiers, `zsl verify` naming the check.
    for (kind, check) in [
        ("payload", "signed_statement"),
        ("proof", "receipts"),
        ("signature", "receipts"),
        ("drop", "receipts"),
    ] {
        let t = dir.join(format!("tampered-{kind}.cose"));
        let ts = t.to_str().unwrap();
        let (code, out) = pycose(&["tamper", kind, f, ts]);
        assert_eq!(code, 0, "{out}");
        let (code, out) = pycose(&["verify", ts, g, "2"]);
        assert_eq!(code, 1, "{kind}: {out}");
        let (code, out) = zsl_verify(&[&t], &["--genesis", g]);
        assert_eq!(code, 2, "{kind}: {out}");
        assert!(out.contains(&format!("✗ {check}")), "{kind}: {out}");
    }
    // A validator's receipt signature is public, over the checkpoint's root.
    let bundle: Value = {
        let (s, _, b) = get_bytes(c.api(follower), &root, &format!("/v1/evidence/{tx_id}"));
        assert_eq!(s, 200);
        serde_json::from_slice(&b).unwrap()
    };
    let height = bundle["headers"].as_array().unwrap().last().unwrap()["height"]
        .as_u64()
        .unwrap();
    let (status, a) = c.get(leader, &format!("/v1/scitt/receipt-signature/{height}"));
    assert_eq!(status, 200, "{a}");
    assert_eq!(a["height"], height);
    let (status, a) = c.get(leader, "/v1/scitt/receipt-signature/999999");
    assert_eq!(status, 409, "{a}");
    assert_eq!(a["code"], "not_yet_sealed");
    let (status, a) = c.get(leader, "/v1/scitt/receipt-signature/x");
    assert_eq!((status, a["code"].as_str()), (400, Some("invalid_height")));
    // The statement is for the record's parties and regulators.
    let r = http()
        .get(format!("{}{path}", c.api(follower)))
        .send()
        .expect("GET");
    assert_eq!(r.status().as_u16(), 401);
}

/// Product P1 (pork) and its batch B1 of 10 kg, produced today in [`D1`],
/// and today: the model's days are Asia/Shanghai days (UTC+8).
fn pork_p1_b1() -> (ProductRegister, BatchCode, jiff::civil::Date) {
    let product = ProductRegister {
        product_id: "P1".into(),
        name: "猪肉 pork".into(),
        gtin: None,
        variety: "meat".into(),
        shelf_life_days: 5,
    };
    let today = jiff::tz::Offset::constant(8)
        .to_datetime(jiff::Timestamp::now())
        .date();
    let code = BatchCode {
        batch_id: "B1".into(),
        product_id: "P1".into(),
        quantity: 10,
        unit: "kg".into(),
        production_date: today.to_string(),
        expiry_date: today
            .checked_add(jiff::Span::new().days(3))
            .unwrap()
            .to_string(),
        origin_region: D1.into(),
        upstream: None,
        certificates: vec![],
        rapid_tests: vec![],
    };
    (product, code, today)
}

#[test]
fn a_district_score_verifies_on_another_node() {
    let mut c = TestCluster::start(3);
    let leader = c.leader(READY_TIMEOUT_MS);
    let root = c.root_key();
    let chain = c.spec.chain_id.clone();
    let (p, pk, preg) = subject_register(1, D1, SubjectKind::Producer, false);
    let (w, _, wreg) = subject_register(2, D1, SubjectKind::Wholesaler, false);
    let (product, code, today) = pork_p1_b1();
    for tx in [
        sign(&chain, &root, &c.root.account, "subject.register", &preg),
        sign(&chain, &root, &c.root.account, "subject.register", &wreg),
        sign(&chain, &pk, &p, "product.register", &product),
        sign(&chain, &pk, &p, "batch.code", &code),
    ] {
        let (status, body) = c.submit(leader, &tx);
        assert_eq!(status, 200, "{body}");
    }
    let trace = ledger::machine::trace_code(&p, "B1");
    let ship = ShipmentCreate {
        shipment_id: "S1".into(),
        to: w.clone(),
        lines: vec![ShipmentLine {
            trace_code: trace,
            quantity: 4,
        }],
    };
    let (status, body) = c.submit(leader, &sign(&chain, &pk, &p, "shipment.create", &ship));
    assert_eq!(status, 200, "{body}");
    let from = today.checked_sub(jiff::Span::new().days(6)).unwrap();
    let path = format!("/v1/scores/{D1}/evidence?from={from}&to={today}");
    let (status, e) = c.get(leader, &path);
    assert_eq!(status, 200, "{e}");
    assert_eq!(e["format"], "zsl-score-evidence/1");
    assert!(
        e["detail"]["score"]["coding"]["rate_exact"].is_string(),
        "{e}"
    );
    let height = e["checkpoint"]["height"].as_u64().unwrap();
    // Another node, stopped once it has applied that block, recomputes the
    // score from its own chain.
    let other = c.ids().into_iter().find(|&id| id != leader).unwrap();
    poll("the other node to apply the block", SEAL_TIMEOUT_MS, || {
        let (s, b) = c.get(other, &format!("/v1/blocks/{height}"));
        (s == 200).then_some(b)
    });
    c.stop(other);
    let dir = c.dir.path().to_path_buf();
    let file = dir.join("score.json");
    let genesis = dir.join("genesis.json");
    let run = |e: &Value| {
        std::fs::write(&file, serde_json::to_vec(e).unwrap()).unwrap();
        let out = Command::new(zsl_binary())
            .args(["score", "verify"])
            .arg(&file)
            .arg("--data")
            .arg(c.data_dir(other))
            .arg("--genesis")
            .arg(&genesis)
            .output()
            .expect("zsl score verify");
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).into_owned()
                + &String::from_utf8_lossy(&out.stderr),
        )
    };
    let (rc, out) = run(&e);
    assert_eq!(rc, 0, "{out}");
    assert!(out.contains("✓ score"), "{out}");
    // A changed term, or a block the other node does not have, fails.
    let mut t = e.clone();
    t["detail"]["score"]["coding"]["a"] = json!(7);
    let (rc, out) = run(&t);
    assert_eq!(rc, 2, "{out}");
    assert!(out.contains("✗ score"), "{out}");
    let mut t = e.clone();
    t["checkpoint"]["block_hash"] = json!("00".repeat(32));
    let (rc, out) = run(&t);
    assert_eq!(rc, 2, "{out}");
    assert!(out.contains("✗ checkpoint"), "{out}");
}

/// Issue 15's SM2 done-criterion: an enterprise whose key `zsl keygen --alg
/// sm2` made codes, ships and (its customer) receives on a three-node
/// cluster; the record's evidence bundle, its SCITT statement and the trace
/// evidence verify offline with the genesis file alone (`zsl verify`, and
/// pycose/gmalg for the statement); a tampered SM2 signature does not.
#[test]
fn an_sm2_enterprise_codes_ships_and_receives_and_its_evidence_verifies_offline() {
    let c = TestCluster::start(3);
    let leader = c.leader(READY_TIMEOUT_MS);
    let root = c.root_key();
    let chain = c.spec.chain_id.clone();
    let dir = c.dir.path().to_path_buf();
    let p = uscc(D1, 71);
    let key_path = dir.join("producer.sm2.key.json");
    let out = Command::new(zsl_binary())
        .args(["keygen", "--alg", "sm2", "--account", &p, "--out"])
        .arg(&key_path)
        .output()
        .expect("zsl keygen");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let key_file = KeyFile::read(&key_path).expect("key file");
    assert_eq!(key_file.public_key.len(), 130, "an SM2 point 04 ‖ x ‖ y");
    let pk = key_file.account_key().expect("an SM2 account key");
    let preg = SubjectRegister {
        uscc: p.clone(),
        name: "国密 SM2 producer".into(),
        kind: SubjectKind::Producer,
        district: D1.into(),
        key_subject: false,
        public_key: key_file.public_key.clone(),
        market: None,
    };
    let (s, s_key, sreg) = subject_register(72, D1, SubjectKind::Supermarket, false);
    let (product, code, _) = pork_p1_b1();
    let trace = ledger::machine::trace_code(&p, "B1");
    let ship = ShipmentCreate {
        shipment_id: "S1".into(),
        to: s.clone(),
        lines: vec![ShipmentLine {
            trace_code: trace.clone(),
            quantity: 4,
        }],
    };
    let receive = ShipmentReceive {
        shipper: p.clone(),
        shipment_id: "S1".into(),
    };
    let mut ids = Vec::new();
    for tx in [
        sign(&chain, &root, &c.root.account, "subject.register", &preg),
        sign(&chain, &root, &c.root.account, "subject.register", &sreg),
        sign_with(&chain, &pk, &p, "product.register", &product),
        sign_with(&chain, &pk, &p, "batch.code", &code),
        sign_with(&chain, &pk, &p, "shipment.create", &ship),
        sign(&chain, &s_key, &s, "shipment.receive", &receive),
    ] {
        let (status, body) = c.submit(leader, &tx);
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["status"], "committed", "{body}");
        ids.push(body["tx_id"].as_str().expect("tx_id").to_string());
    }
    // The SM2 key signs reads too (RFC 9421, alg `sm2-sm3`): `zsl client
    // get` with its key file reads the account's own record.
    let read = Command::new(zsl_binary())
        .args(["client", "get", "--node", c.api(leader), "--key"])
        .arg(&key_path)
        .arg(format!("/v1/accounts/{p}"))
        .output()
        .expect("zsl client get");
    let text = String::from_utf8_lossy(&read.stdout);
    assert!(
        read.status.success(),
        "{}",
        String::from_utf8_lossy(&read.stderr)
    );
    assert!(text.contains(&key_file.public_key), "{text}");
    let (status, t) = c.get(leader, &format!("/v1/trace/{trace}"));
    assert_eq!(status, 200, "{t}");
    assert!(
        t.to_string().contains(&s),
        "the receiver is in the chain of custody: {t}"
    );

    // The coding record's bundle, from a follower, verifies offline.
    let coding = &ids[3];
    let follower = c.ids().into_iter().find(|&id| id != leader).unwrap();
    let bundle = poll("a sealed checkpoint on a follower", SEAL_TIMEOUT_MS, || {
        let (status, body) = c.get(follower, &format!("/v1/evidence/{coding}"));
        match status {
            200 => Some(body),
            404 | 409 => None,
            other => panic!("GET /v1/evidence answered {other}: {body}"),
        }
    });
    assert_eq!(bundle["record"]["signer"], key_file.public_key.as_str());
    let genesis = dir.join("genesis.json");
    let g = genesis.to_str().unwrap();
    let path = dir.join("sm2-bundle.json");
    std::fs::write(&path, serde_json::to_vec(&bundle).unwrap()).unwrap();
    let (code, out) = zsl_verify(&[&path], &["--genesis", g]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("SM2-SM3 signature by"), "{out}");
    // One flipped bit of the SM2 signature fails the record check.
    let mut t = bundle.clone();
    let sig = t["record"]["sig"].as_str().unwrap().to_string();
    let flipped = if sig.ends_with('0') { "1" } else { "0" };
    t["record"]["sig"] = json!(format!("{}{flipped}", &sig[..127]));
    std::fs::write(&path, serde_json::to_vec(&t).unwrap()).unwrap();
    let (code, out) = zsl_verify(&[&path], &["--genesis", g]);
    assert_eq!(code, 2, "{out}");
    assert!(out.contains("✗ record_signature"), "{out}");

    // The shipment's SCITT statement: pycose checks the receipts, gmalg the
    // SM2 record signature (private alg -65537, 65-byte kid).
    let shipment = &ids[4];
    let scitt = format!("/v1/evidence/{shipment}/scitt");
    let statement = poll("a SCITT statement with receipts", SEAL_TIMEOUT_MS, || {
        let (status, _, bytes) = get_bytes(c.api(follower), &root, &scitt);
        match status {
            200 => Some(bytes),
            404 | 409 | 503 => None,
            other => panic!(
                "GET {scitt} answered {other}: {}",
                String::from_utf8_lossy(&bytes)
            ),
        }
    });
    let file = dir.join("sm2-statement.cose");
    std::fs::write(&file, &statement).unwrap();
    let f = file.to_str().unwrap();
    let (code, out) = pycose(&["verify", f, g, "2"]);
    assert_eq!(code, 0, "{out}");
    let (code, out) = zsl_verify(&[&file], &["--genesis", g]);
    assert_eq!(code, 0, "{out}");
    let tampered = dir.join("sm2-statement-payload.cose");
    let ts = tampered.to_str().unwrap();
    let (code, out) = pycose(&["tamper", "payload", f, ts]);
    assert_eq!(code, 0, "{out}");
    let (code, out) = pycose(&["verify", ts, g, "2"]);
    assert_eq!(code, 1, "{out}");
    let (code, out) = zsl_verify(&[&tampered], &["--genesis", g]);
    assert_eq!(code, 2, "{out}");

    // The trace evidence (every record of the chain of custody) verifies too.
    let trace_path = format!("/v1/trace/{trace}/evidence");
    let trace_bundle = poll("trace evidence", SEAL_TIMEOUT_MS, || {
        let (status, _, bytes) = get_bytes(c.api(follower), &root, &trace_path);
        match status {
            200 => Some(bytes),
            404 | 409 => None,
            other => panic!(
                "GET {trace_path} answered {other}: {}",
                String::from_utf8_lossy(&bytes)
            ),
        }
    });
    let file = dir.join("sm2-trace.json");
    std::fs::write(&file, &trace_bundle).unwrap();
    let (code, out) = zsl_verify(&[&file], &["--genesis", g]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("(2 of them SM2-SM3)"), "{out}");

    // The browser's verifier (api/assets/verify.js, its own SM2 and SM3)
    // agrees on both bundles, detail for detail.
    for (bundle_file, rust_out) in [(&path, None), (&file, Some(out))] {
        if rust_out.is_none() {
            std::fs::write(bundle_file, serde_json::to_vec(&bundle).unwrap()).unwrap();
        }
        let run = Command::new("node")
            .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("browser/verify-trace.js"))
            .arg(bundle_file)
            .arg(&genesis)
            .output()
            .expect("node");
        assert!(
            run.status.success(),
            "{}",
            String::from_utf8_lossy(&run.stderr)
        );
        let report: Value = serde_json::from_slice(&run.stdout).expect("a report");
        let checks = report["checks"].as_array().expect("checks");
        assert!(checks.iter().all(|c| c["ok"] == true), "{report}");
        let sm2_detail = checks
            .iter()
            .filter_map(|c| c["detail"].as_str())
            .find(|d| d.contains("SM2-SM3"))
            .unwrap_or_else(|| panic!("no check names SM2-SM3: {report}"));
        if let Some(rust_out) = rust_out {
            assert!(rust_out.contains(sm2_detail), "{sm2_detail}\n{rust_out}");
        }
    }
}
