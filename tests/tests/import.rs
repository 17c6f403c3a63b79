//! `zsl client import` against a real one-node devnet: good and bad rows, the
//! report of refused rows, and re-runs that submit nothing twice. Plus the
//! PyNaCl signing example (docs/examples/sign_pynacl.py) accepted by a node.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;
use zsl_tests::record::*;
use zsl_tests::*;

const D1: &str = "330102";

fn ok(node: &TestNode, tx: &Value) {
    let (status, body) = node.submit(tx);
    assert_eq!(status, 200, "expected commit, got {status}: {body}");
}

/// Registers a subject; returns its USCC and writes its key file.
fn subject(node: &TestNode, n: u32, kind: SubjectKind) -> (String, PathBuf) {
    let id = uscc(D1, n);
    let key = test_key(&id);
    let reg = SubjectRegister {
        uscc: id.clone(),
        name: format!("subject {n}"),
        kind,
        district: D1.into(),
        key_subject: true,
        public_key: hex::encode(key.verifying_key().to_bytes()),
        market: None,
    };
    let root = node.root_key();
    ok(
        node,
        &sign(
            &node.spec.chain_id,
            &root,
            &node.root.account,
            "subject.register",
            &reg,
        ),
    );
    let path = node.dir.path().join(format!("{id}.key.json"));
    genesis::write_json(&path, &KeyFile::from_key(&id, &key)).unwrap();
    (id, path)
}

fn today_plus(days: i64) -> String {
    let today = ledger::score::local_date(
        &ledger::score::ModelParams::zj_2024(),
        jiff::Timestamp::now().as_millisecond(),
    )
    .unwrap();
    today
        .checked_add(jiff::ToSpan::days(days))
        .unwrap()
        .to_string()
}

/// Runs the importer; returns its summary line.
fn import(node: &TestNode, file: &Path, key: &Path) -> Value {
    let out = Command::new(zsl_binary())
        .args(["client", "import"])
        .arg(file)
        .arg("--key")
        .arg(key)
        .args(["--node", &node.api, "--batch", "3"])
        .output()
        .expect("run zsl client import");
    assert!(
        out.status.success(),
        "import failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("rows:"),
        "no progress line on stderr"
    );
    serde_json::from_slice(&out.stdout).expect("summary JSON on stdout")
}

/// The report's rows: line → (status, code).
fn report(file: &Path) -> Vec<(u64, String, String)> {
    let mut name = file.as_os_str().to_owned();
    name.push(".report.csv");
    let text = std::fs::read_to_string(PathBuf::from(name)).expect("report");
    let mut lines = text.lines();
    assert_eq!(lines.next(), Some("line,tx_id,status,code,message"));
    lines
        .map(|l| {
            let cells: Vec<&str> = l.splitn(5, ',').collect();
            (
                cells[0].parse().unwrap(),
                cells[2].to_string(),
                cells[3].to_string(),
            )
        })
        .collect()
}

fn counts(s: &Value) -> [u64; 5] {
    [
        "committed",
        "already_committed",
        "refused",
        "unknown",
        "submitted",
    ]
    .map(|k| s[k].as_u64().unwrap_or_else(|| panic!("{k} in {s}")))
}

#[test]
fn import_reports_refused_rows_and_resumes_without_resubmitting() {
    let node = TestNode::start();
    let (producer, key) = subject(&node, 1, SubjectKind::Producer);
    let (shop, _) = subject(&node, 2, SubjectKind::Supermarket);
    let trace_b1 = ledger::machine::trace_code(&producer, "B1");
    let (prod, exp) = (today_plus(-1), today_plus(5));
    // Lines: 2 product, 3 batch B1, 4 bad quantity (refused locally), 5 unknown product
    // (refused by the node), 6 shipment of B1, 7 expiry before production, 8 batch B4 with a
    // quoted cell holding a comma.
    let csv = format!(
        "type,product_id,name,variety,shelf_life_days,batch_id,quantity,unit,production_date,expiry_date,origin_region,upstream_name,upstream_region,shipment_id,to,lines\n\
         product.register,pork,冷鲜猪肉,meat,5,,,,,,,,,,,\n\
         batch.code,pork,,,,B1,100,kg,{prod},{exp},{D1},\"养殖场 farm\",341100,,,\n\
         batch.code,pork,,,,B2,lots,kg,{prod},{exp},{D1},,,,,\n\
         batch.code,no-such-product,,,,B3,5,kg,{prod},{exp},{D1},,,,,\n\
         shipment.create,,,,,,,,,,,,,SH1,{shop},{trace_b1}:10\n\
         batch.code,pork,,,,B5,5,kg,{exp},{prod},{D1},,,,,\n\
         batch.code,pork,,,,B4,7,kg,{prod},{exp},{D1},\"Farm, Ltd\",341100,,,\n"
    );
    let file = node.dir.path().join("erp.csv");
    std::fs::write(&file, csv).unwrap();

    let first = import(&node, &file, &key);
    assert_eq!(first["rows"], 7, "{first}");
    // committed, already, refused, unknown, submitted (the locally refused row is not sent)
    assert_eq!(counts(&first), [4, 0, 3, 0, 6], "{first}");
    let refused = report(&file);
    let lines: Vec<u64> = refused.iter().map(|r| r.0).collect();
    assert_eq!(lines, vec![4, 5, 7], "{refused:?}");
    assert_eq!(refused[0].2, "invalid_row");
    assert!(refused.iter().all(|r| r.1 == "refused" && !r.2.is_empty()));
    let (status, batch) = node.get(&format!("/v1/batches/{trace_b1}"));
    assert_eq!(status, 200, "{batch}");
    let (status, ship) = node.get(&format!("/v1/shipments/{producer}/SH1"));
    assert_eq!(status, 200, "{ship}");
    // Committed transactions (the Merkle tree's size): blocks may still come
    // (checkpoint co-signatures), but no re-run may add a transaction.
    let tree_size = || node.get("/v1/status").1["tree_size"].as_u64().unwrap();
    let committed = tree_size();

    // A re-run settles every row from the journal: nothing is sent.
    let second = import(&node, &file, &key);
    assert_eq!(counts(&second), [0, 4, 3, 0, 0], "{second}");
    assert_eq!(tree_size(), committed);
    assert_eq!(report(&file), refused);

    // A journal that lost its outcomes (a crash after sending): the rows are signed
    // again to the same tx ids, so the node refuses the committed ones as replays.
    let mut journal = file.as_os_str().to_owned();
    journal.push(".journal.jsonl");
    let text = std::fs::read_to_string(&journal).unwrap();
    std::fs::write(&journal, format!("{}\n", text.lines().next().unwrap())).unwrap();
    let third = import(&node, &file, &key);
    assert_eq!(counts(&third), [0, 4, 3, 0, 6], "{third}");
    assert_eq!(report(&file), refused);
    assert_eq!(tree_size(), committed, "a re-run committed something");

    // JSONL: one body per line; a line that is not an object is reported, not sent.
    let body = serde_json::json!({"type": "batch.code", "batch_id": "J1", "product_id": "pork",
        "quantity": 3, "unit": "kg", "production_date": prod, "expiry_date": exp, "origin_region": D1});
    let jsonl = node.dir.path().join("erp.jsonl");
    std::fs::write(&jsonl, format!("{body}\n\n[1, 2]\n")).unwrap();
    let s = import(&node, &jsonl, &key);
    assert_eq!(counts(&s), [1, 0, 1, 0, 1], "{s}");
    assert_eq!(report(&jsonl)[0].0, 3);
    let (status, _) = node.get(&format!(
        "/v1/batches/{}",
        ledger::machine::trace_code(&producer, "J1")
    ));
    assert_eq!(status, 200);
}

#[test]
fn pynacl_signed_transaction_is_committed() {
    let node = TestNode::start();
    let body = serde_json::json!({
        "type": "document.notarize",
        "chain_id": node.spec.chain_id,
        "account": node.root.account,
        "created_at": jiff::Timestamp::now().to_string(),
        "nonce": "pynacl-1",
        "document_hash": hex::encode(ledger::hash::sha256(b"rapid test sheet 2024-03")),
        "title": "快检记录 rapid test sheet",
    });
    let body_path = node.dir.path().join("body.json");
    std::fs::write(&body_path, serde_json::to_vec(&body).unwrap()).unwrap();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/examples/sign_pynacl.py");
    let out = Command::new("python3")
        .arg(&script)
        .arg(&node.root.secret_key)
        .arg(&body_path)
        .arg(&node.api)
        .output()
        .expect("python3");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "sign_pynacl.py failed: {stderr}");
    let answer: Value = serde_json::from_slice(&out.stdout).expect("the node's answer");
    assert_eq!(answer["status"], "committed", "{answer}");
    let py_id = stderr
        .lines()
        .find_map(|l| l.strip_prefix("tx id: "))
        .expect("tx id on stderr")
        .trim();
    assert_eq!(
        answer["tx_id"], py_id,
        "PyNaCl and the node disagree on the tx id"
    );
    let (status, tx) = node.get(&format!("/v1/tx/{py_id}"));
    assert_eq!(status, 200, "{tx}");

    // With no arguments it reproduces the worked example of docs/signing.md.
    let out = Command::new("python3").arg(&script).output().unwrap();
    assert!(String::from_utf8_lossy(&out.stderr)
        .contains("5a5c6130498627e396025979edb0737a676ac5614d4b9105b36ff2cd04eff68c"));
}
