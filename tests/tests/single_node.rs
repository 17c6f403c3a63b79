//! End to end on a real `zsl` process: register, code, ship, receive, trace;
//! then the bad-input catalogue: each gets a clear error, changes nothing, and
//! the node keeps serving.

use serde_json::{json, Value};
use zsl_tests::record::*;
use zsl_tests::*;

const D1: &str = "330102";
const D2: &str = "330106";

struct World {
    node: TestNode,
    producer: (String, ed25519_dalek::SigningKey),
    shop: (String, ed25519_dalek::SigningKey),
    other: (String, ed25519_dalek::SigningKey),
    inspector: ed25519_dalek::SigningKey,
    county_regulator: ed25519_dalek::SigningKey,
}

fn ok(node: &TestNode, tx: &Value) -> Value {
    let (status, body) = node.submit(tx);
    assert_eq!(status, 200, "expected commit, got {status}: {body}");
    assert_eq!(body["status"], "committed", "{body}");
    body
}

fn setup() -> World {
    let node = TestNode::start();
    let chain = node.spec.chain_id.clone();
    let root = node.root_key();
    let root_id = node.root.account.clone();
    let mk = |n: u32, d: &str, kind: SubjectKind| subject_register(n, d, kind, true);
    let (p, pk, preg) = mk(1, D1, SubjectKind::Producer);
    let (s, sk, sreg) = mk(2, D1, SubjectKind::Supermarket);
    let (o, ok_, oreg) = mk(3, D2, SubjectKind::Restaurant);
    for reg in [&preg, &sreg, &oreg] {
        ok(
            &node,
            &sign(&chain, &root, &root_id, "subject.register", reg),
        );
    }
    let inspector = test_key("inspector");
    let county_regulator = test_key("county");
    let acct =
        |id: &str, role: AuthorityRole, j: &str, key: &ed25519_dalek::SigningKey| AccountRegister {
            id: id.into(),
            role,
            jurisdiction: j.into(),
            name: id.into(),
            public_key: hex::encode(key.verifying_key().to_bytes()),
        };
    ok(
        &node,
        &sign(
            &chain,
            &root,
            &root_id,
            "account.register",
            &acct("insp-d1", AuthorityRole::Inspector, D1, &inspector),
        ),
    );
    ok(
        &node,
        &sign(
            &chain,
            &root,
            &root_id,
            "account.register",
            &acct("reg-d1", AuthorityRole::Regulator, D1, &county_regulator),
        ),
    );
    let product = ProductRegister {
        product_id: "pork".into(),
        name: "冷鲜猪肉".into(),
        gtin: Some("6901234567892".into()),
        variety: "meat".into(),
        shelf_life_days: 5,
    };
    ok(&node, &sign(&chain, &pk, &p, "product.register", &product));
    World {
        node,
        producer: (p, pk),
        shop: (s, sk),
        other: (o, ok_),
        inspector,
        county_regulator,
    }
}

fn code(w: &World, batch_id: &str, expiry: &str) -> Value {
    let today = ledger::score::local_date(
        &ledger::score::ModelParams::zj_2024(),
        jiff::Timestamp::now().as_millisecond(),
    )
    .unwrap();
    let rec = BatchCode {
        batch_id: batch_id.into(),
        product_id: "pork".into(),
        quantity: 100,
        unit: "kg".into(),
        production_date: today
            .checked_sub(jiff::ToSpan::days(3))
            .unwrap()
            .to_string(),
        expiry_date: expiry.into(),
        origin_region: D1.into(),
        upstream: Some(Upstream::Unregistered {
            name: "养殖场 farm".into(),
            uscc: None,
            region: "341100".into(),
        }),
        certificates: vec![],
        rapid_tests: vec![],
    };
    sign(
        &w.node.spec.chain_id,
        &w.producer.1,
        &w.producer.0,
        "batch.code",
        &rec,
    )
}

fn ship(w: &World, id: &str, to: &str, trace: &str, qty: u64) -> Value {
    let rec = ShipmentCreate {
        shipment_id: id.into(),
        to: to.into(),
        lines: vec![ShipmentLine {
            trace_code: trace.into(),
            quantity: qty,
        }],
    };
    sign(
        &w.node.spec.chain_id,
        &w.producer.1,
        &w.producer.0,
        "shipment.create",
        &rec,
    )
}

fn future_date(days: i64) -> String {
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

#[test]
fn walkthrough_and_bad_input_catalogue() {
    let w = setup();
    let chain = w.node.spec.chain_id.clone();
    let node = &w.node;

    // Code a batch, ship part of it, receive, trace.
    let coded = ok(node, &code(&w, "B-001", &future_date(5)));
    let trace = ledger::machine::trace_code(&w.producer.0, "B-001");
    // The commit answer names the ids the record creates and where to read them.
    assert_eq!(coded["created"]["trace_code"], trace.as_str(), "{coded}");
    assert_eq!(node.get(coded["created"]["batch"].as_str().unwrap()).0, 200);
    let shipped = ok(node, &ship(&w, "SH-1", &w.shop.0, &trace, 40));
    assert_eq!(
        shipped["created"]["shipment"]["shipment_id"], "SH-1",
        "{shipped}"
    );
    assert_eq!(node.get(shipped["created"]["url"].as_str().unwrap()).0, 200);
    let receive = ShipmentReceive {
        shipper: w.producer.0.clone(),
        shipment_id: "SH-1".into(),
    };
    ok(
        node,
        &sign(&chain, &w.shop.1, &w.shop.0, "shipment.receive", &receive),
    );
    let (status, t) = node.get(&format!("/v1/trace/{trace}"));
    assert_eq!(status, 200, "{t}");
    let t = &t["trace"];
    let events: Vec<&str> = t["custody"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["event"].as_str().unwrap())
        .collect();
    assert_eq!(events, ["coded", "shipped", "received"]);
    let holders: Vec<(String, u64)> = t["holders"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| {
            (
                h["subject"]["uscc"].as_str().unwrap().to_string(),
                h["quantity"].as_u64().unwrap(),
            )
        })
        .collect();
    assert!(
        holders.contains(&(w.producer.0.clone(), 60)) && holders.contains(&(w.shop.0.clone(), 40)),
        "{holders:?}"
    );
    assert_eq!(t["upstream"]["kind"], "unregistered");
    // The committed tx is readable by id, with its block.
    let id = coded["tx_id"].as_str().unwrap();
    let (status, txv) = node.get(&format!("/v1/tx/{id}"));
    assert_eq!((status, txv["type"].as_str()), (200, Some("batch.code")));
    let (status, block) = node.get(&format!("/v1/blocks/{}", txv["height"]));
    assert_eq!(status, 200);
    assert!(block["tx_ids"].as_array().unwrap().iter().any(|x| x == id));
    // The subject code resolves to the subject.
    let (status, s) = node.get(&format!("/v1/trace/S{}", w.shop.0));
    assert_eq!((status, s["kind"].as_str()), (200, Some("subject")));
    // A second batch that expires today can still ship today; one recalled cannot.
    ok(node, &code(&w, "B-002", &future_date(0)));
    let trace2 = ledger::machine::trace_code(&w.producer.0, "B-002");

    // ---- the bad-input catalogue ----------------------------------------------------
    let before = node.tree();
    let mut cases: Vec<(&str, u16, &str, Vec<u8>)> = Vec::new();
    let j = |v: &Value| serde_json::to_vec(v).unwrap();
    cases.push((
        "malformed JSON",
        400,
        "malformed_tx",
        b"{\"body\": ".to_vec(),
    ));
    let mut unknown_type = code(&w, "X1", &future_date(5));
    unknown_type["body"]["type"] = json!("batch.teleport");
    cases.push((
        "unknown record type",
        400,
        "unknown_type",
        j(&resign(&unknown_type, &w.producer.1)),
    ));
    let mut unknown_field = code(&w, "X2", &future_date(5));
    unknown_field["body"]["colour"] = json!("red");
    cases.push((
        "unknown field",
        400,
        "unknown_field",
        j(&resign(&unknown_field, &w.producer.1)),
    ));
    let mut big = code(&w, "X3", &future_date(5));
    big["body"]["unit"] = json!("x".repeat(20_000));
    cases.push(("body over the size limit", 413, "tx_too_large", j(&big)));
    let mut bad_sig = code(&w, "X4", &future_date(5));
    bad_sig["body"]["quantity"] = json!(101);
    cases.push(("bad signature", 403, "bad_signature", j(&bad_sig)));
    let reg = SubjectRegister {
        uscc: uscc(D2, 9),
        name: "x".into(),
        kind: SubjectKind::Restaurant,
        district: D2.into(),
        key_subject: false,
        public_key: hex::encode(test_key("x9").verifying_key().to_bytes()),
        market: None,
    };
    cases.push((
        "signer without the role",
        403,
        "no_role",
        j(&sign(
            &chain,
            &w.producer.1,
            &w.producer.0,
            "subject.register",
            &reg,
        )),
    ));
    cases.push((
        "regulator outside its jurisdiction",
        403,
        "no_jurisdiction",
        j(&sign(
            &chain,
            &w.county_regulator,
            "reg-d1",
            "subject.register",
            &reg,
        )),
    ));
    let finding = FindingRecord {
        finding_id: "F-x".into(),
        subject: w.other.0.clone(),
        kind: FindingKind::Uncoded,
        batches: 1,
        note: None,
        document_hash: None,
    };
    cases.push((
        "inspector outside its jurisdiction",
        403,
        "no_jurisdiction",
        j(&sign(
            &chain,
            &w.inspector,
            "insp-d1",
            "finding.record",
            &finding,
        )),
    ));
    cases.push((
        "unknown subject",
        422,
        "unknown_subject",
        j(&ship(&w, "SH-x", &uscc(D1, 77), &trace, 1)),
    ));
    cases.push((
        "unknown batch",
        422,
        "unknown_batch",
        j(&ship(&w, "SH-x", &w.shop.0, "ZS00000000000000000000", 1)),
    ));
    let unknown_shipment = ShipmentReceive {
        shipper: w.producer.0.clone(),
        shipment_id: "nope".into(),
    };
    cases.push((
        "unknown shipment",
        422,
        "unknown_shipment",
        j(&sign(
            &chain,
            &w.shop.1,
            &w.shop.0,
            "shipment.receive",
            &unknown_shipment,
        )),
    ));
    cases.push((
        "shipping more than held",
        422,
        "insufficient_holding",
        j(&ship(&w, "SH-x", &w.shop.0, &trace, 61)),
    ));
    cases.push((
        "receiving twice",
        409,
        "already_answered",
        j(&sign(
            &chain,
            &w.shop.1,
            &w.shop.0,
            "shipment.receive",
            &receive,
        )),
    ));
    cases.push((
        "answering someone else's shipment",
        422,
        "not_addressee",
        j(&sign(
            &chain,
            &w.other.1,
            &w.other.0,
            "shipment.receive",
            &receive,
        )),
    ));
    cases.push(("replayed tx", 409, "replayed", j(&coded_tx(node, id))));
    let mut stale = code(&w, "X5", &future_date(5));
    stale["body"]["created_at"] = json!("2020-01-01T00:00:00+08:00");
    cases.push((
        "stale created_at",
        422,
        "stale",
        j(&resign(&stale, &w.producer.1)),
    ));
    let mut bad_uscc = reg.clone();
    bad_uscc.uscc.replace_range(
        17..18,
        if bad_uscc.uscc.ends_with('0') {
            "1"
        } else {
            "0"
        },
    );
    cases.push((
        "invalid USCC",
        422,
        "invalid_uscc",
        j(&sign(
            &chain,
            &node.root_key(),
            &node.root.account,
            "subject.register",
            &bad_uscc,
        )),
    ));
    let bad_gtin = ProductRegister {
        product_id: "g".into(),
        name: "g".into(),
        gtin: Some("6901234567893".into()),
        variety: "meat".into(),
        shelf_life_days: 5,
    };
    cases.push((
        "invalid GTIN",
        422,
        "invalid_gtin",
        j(&sign(
            &chain,
            &w.producer.1,
            &w.producer.0,
            "product.register",
            &bad_gtin,
        )),
    ));
    let mut outside = reg.clone();
    outside.district = "110101".into();
    cases.push((
        "district outside the region table",
        422,
        "unknown_district",
        j(&sign(
            &chain,
            &node.root_key(),
            &node.root.account,
            "subject.register",
            &outside,
        )),
    ));

    for (what, status, code, body) in &cases {
        let (got_status, got) = node.post_raw("/v1/tx?wait=commit", body.clone());
        assert_eq!(
            (got_status, got["code"].as_str()),
            (*status, Some(*code)),
            "{what}: {got}"
        );
        assert!(
            got["message"].as_str().is_some_and(|m| !m.is_empty()),
            "{what}: no message in {got}"
        );
    }
    assert_eq!(
        node.tree(),
        before,
        "a refused transaction changed the chain"
    );

    // Expired, recalled and blocked batches cannot ship.
    let recall = RecallIssue {
        trace_code: trace2.clone(),
        reason: "test".into(),
    };
    ok(
        node,
        &sign(
            &chain,
            &w.producer.1,
            &w.producer.0,
            "recall.issue",
            &recall,
        ),
    );
    let (s, b) = node.submit(&ship(&w, "SH-r", &w.shop.0, &trace2, 1));
    assert_eq!(
        (s, b["code"].as_str()),
        (422, Some("batch_recalled")),
        "{b}"
    );
    let (s, b) = node.post_raw("/v1/tx", b"[]".to_vec());
    assert_eq!((s, b["code"].as_str()), (400, Some("malformed_tx")), "{b}");
    // The recall reached the shop that holds part of the first batch? No: it was batch 2, held only by the producer.
    let (_, t2) = node.get(&format!("/v1/trace/{trace2}"));
    assert_eq!(t2["trace"]["recalled"], true);
    // Still serving.
    assert_eq!(node.get("/v1/status").0, 200);
}

/// Re-signs a tampered body so that only the tampering is wrong.
fn resign(tx: &Value, key: &ed25519_dalek::SigningKey) -> Value {
    let body = tx["body"].as_object().unwrap().clone();
    ledger::SignedTx::sign(body, key).unwrap().to_json()
}

fn coded_tx(node: &TestNode, id: &str) -> Value {
    node.get(&format!("/v1/tx/{id}")).1["tx"].clone()
}

/// The inputs the guard issue found accepted: each is refused with its code
/// and status, the chain does not move, and the node keeps serving.
#[test]
fn strict_input_refuses_what_two_parsers_could_read_differently() {
    let w = setup();
    let chain = w.node.spec.chain_id.clone();
    let node = &w.node;
    let before = node.tree();
    let text = |v: &Value| serde_json::to_string(v).expect("json");

    let coded = code(&w, "B-dup", &future_date(5));
    // `"quantity":1` first, the signed 100 last: serde would keep the last.
    let dup_body = text(&coded).replacen("\"body\":{", "\"body\":{\"quantity\":1,", 1);
    let dup_sig = {
        let t = text(&coded);
        let sig = coded["sig"].as_str().unwrap();
        t.replacen('{', &format!("{{\"sig\":\"{sig}\","), 1)
    };
    let as_array = text(&json!([coded["body"], coded["signer"], coded["sig"]]));
    let upper_hex = text(&json!({
        "body": coded["body"],
        "signer": coded["signer"].as_str().unwrap().to_uppercase(),
        "sig": coded["sig"],
    }));
    let mut far = BatchCode {
        batch_id: "B-far".into(),
        product_id: "pork".into(),
        quantity: 1,
        unit: "kg".into(),
        production_date: future_date(-1),
        expiry_date: future_date(5),
        origin_region: "999999".into(),
        upstream: None,
        certificates: vec![],
        rapid_tests: vec![],
    };
    let bad_region = sign(&chain, &w.producer.1, &w.producer.0, "batch.code", &far);
    far.origin_region = "330199".into(); // a Zhejiang code not in the table
    let unknown_zj = sign(&chain, &w.producer.1, &w.producer.0, "batch.code", &far);
    let product = |id: &str, name: &str| {
        sign(
            &chain,
            &w.producer.1,
            &w.producer.0,
            "product.register",
            &ProductRegister {
                product_id: id.into(),
                name: name.into(),
                gtin: None,
                variety: "meat".into(),
                shelf_life_days: 5,
            },
        )
    };
    let cases: Vec<(&str, u16, &str, String)> = vec![
        ("duplicate body key", 400, "duplicate_key", dup_body),
        ("duplicate envelope sig", 400, "duplicate_key", dup_sig),
        ("envelope as an array", 400, "malformed_tx", as_array),
        ("uppercase hex", 400, "malformed_tx", upper_hex),
        (
            "origin_region 999999",
            422,
            "unknown_region",
            text(&bad_region),
        ),
        (
            "a Zhejiang code off the table",
            422,
            "unknown_region",
            text(&unknown_zj),
        ),
        (
            "bidi override",
            400,
            "invalid_field",
            text(&product("p-bidi", "pork\u{202E}gpj.exe")),
        ),
        (
            "zero-width space",
            400,
            "invalid_field",
            text(&product("p-zw", "po\u{200B}rk")),
        ),
        (
            "line separator",
            400,
            "invalid_field",
            text(&product("p-ls", "pork\u{2028}x")),
        ),
        (
            "not NFC",
            400,
            "invalid_field",
            text(&product("p-nfc", "Cafe\u{301}")),
        ),
        (
            "path-like product_id",
            400,
            "invalid_field",
            text(&product("../x/y", "pork")),
        ),
    ];
    for (what, status, code, body) in &cases {
        for path in ["/v1/tx?wait=commit", "/v1/tx"] {
            let (got_status, got) = node.post_raw(path, body.clone().into_bytes());
            if path == "/v1/tx" && !matches!(*code, "duplicate_key" | "malformed_tx") {
                // Without waiting, the record rules run at commit: admitted, then refused.
                assert_eq!(got_status, 202, "{what}: {got}");
                continue;
            }
            assert_eq!(
                (got_status, got["code"].as_str()),
                (*status, Some(*code)),
                "{what} at {path}: {got}"
            );
            assert!(
                got["message"].as_str().is_some_and(|m| !m.is_empty()),
                "{what}: no message in {got}"
            );
        }
    }
    // A batch whose item repeats a member is not I-JSON as a whole.
    let batch = format!("[{}]", cases[0].3);
    let (s, b) = node.post_raw("/v1/txs?wait=commit", batch.into_bytes());
    assert_eq!((s, b["code"].as_str()), (400, Some("duplicate_key")), "{b}");
    // The body must be declared JSON.
    for content_type in ["text/plain", "application/x-www-form-urlencoded", ""] {
        let mut req = http()
            .post(format!("{}/v1/tx?wait=commit", node.api))
            .body(text(&coded));
        if !content_type.is_empty() {
            req = req.header("content-type", content_type);
        }
        let r = req.send().expect("POST");
        let status = r.status().as_u16();
        let b: Value = r.json().unwrap_or(Value::Null);
        assert_eq!(
            (status, b["code"].as_str()),
            (415, Some("unsupported_media_type")),
            "{content_type:?}: {b}"
        );
    }
    // Lookups take lowercase ids only.
    let upper = "A".repeat(64);
    assert_eq!(node.get(&format!("/v1/tx/{upper}")).0, 400);
    // The rule cases were admitted without waiting and are decided, in
    // order, before this product: only it grows the tree.
    ok(node, &product("p-after", "pork after"));
    assert_eq!(
        node.tree().0,
        before.0 + 1,
        "only the good product committed"
    );
    // Their outcome is kept: a client that did not wait learns why.
    let id = ledger::SignedTx::from_value(bad_region.clone())
        .unwrap()
        .id_hex();
    let (s, b) = node.get(&format!("/v1/tx/{id}"));
    assert_eq!(
        (
            s,
            b["status"].as_str(),
            b["code"].as_str(),
            b["retryable"].as_bool()
        ),
        (422, Some("refused"), Some("unknown_region"), Some(false)),
        "{b}"
    );
    // An id never seen is unknown, with a reason.
    let (s, b) = node.get(&format!("/v1/tx/{}", "0".repeat(64)));
    assert_eq!((s, b["code"].as_str()), (404, Some("not_found")), "{b}");
    assert_eq!(node.get("/v1/status").0, 200);
    // And the valid original still commits: its bytes were never the problem.
    ok(node, &coded);
}

/// A chain of custody with a rejection and a re-shipment, exported as EPCIS
/// 2.0: valid by GS1's schema, and read back it gives the ledger's custody.
#[test]
fn a_chain_of_custody_exports_to_epcis_and_reads_back() {
    let w = setup();
    let chain = w.node.spec.chain_id.clone();
    let node = &w.node;
    let gs1 = epcis_check::validator();
    assert!(
        gs1.is_valid(&epcis_check::gs1_example()),
        "GS1's own example"
    );

    ok(node, &code(&w, "B-E1", &future_date(5)));
    let trace = ledger::machine::trace_code(&w.producer.0, "B-E1");
    ok(node, &ship(&w, "SH-E1", &w.shop.0, &trace, 40));
    let reject = ShipmentReject {
        shipper: w.producer.0.clone(),
        shipment_id: "SH-E1".into(),
        reason: RejectionReason::Quality,
        note: Some("温度超标".into()),
    };
    ok(
        node,
        &sign(&chain, &w.shop.1, &w.shop.0, "shipment.reject", &reject),
    );
    ok(node, &ship(&w, "SH-E2", &w.shop.0, &trace, 40));
    let receive = ShipmentReceive {
        shipper: w.producer.0.clone(),
        shipment_id: "SH-E2".into(),
    };
    ok(
        node,
        &sign(&chain, &w.shop.1, &w.shop.0, "shipment.receive", &receive),
    );

    let (status, doc) = node.get(&format!("/v1/epcis/events?trace_code={trace}"));
    assert_eq!(status, 200, "{doc}");
    epcis_check::assert_valid(&gs1, &doc);
    let events = doc["epcisBody"]["eventList"].as_array().expect("events");
    let steps: Vec<&str> = events
        .iter()
        .map(|e| e["bizStep"].as_str().unwrap_or(""))
        .collect();
    assert_eq!(
        steps,
        [
            "commissioning",
            "shipping",
            "inspecting",
            "shipping",
            "receiving"
        ]
    );
    // The product has a GTIN: the batch is its LGTIN as a GS1 Digital Link URI, in kilograms.
    assert_eq!(
        events[0]["quantityList"][0],
        json!({"epcClass": "https://id.gs1.org/01/06901234567892/10/B-E1", "quantity": 100, "uom": "KGM"})
    );
    assert_eq!(
        (
            events[2]["disposition"].as_str(),
            events[2]["zsl:rejectionReason"].as_str()
        ),
        (Some("returned"), Some("quality"))
    );
    // Read back, the document gives the ledger's chain of custody.
    let (_, t) = node.get(&format!("/v1/trace/{trace}"));
    assert_eq!(epcis_check::custody_matches(&doc, &t["trace"]), Ok(5));
    // `zsl export epcis` writes the same document.
    let file = node.dir.path().join("custody.epcis.jsonld");
    let out = std::process::Command::new(zsl_binary())
        .args([
            "export",
            "epcis",
            "--node",
            &node.api,
            "--trace-code",
            &trace,
            "--out",
        ])
        .arg(&file)
        .arg("--key")
        .arg(node.dir.path().join("root.key.json"))
        .output()
        .expect("zsl export epcis");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let exported: Value =
        serde_json::from_slice(&std::fs::read(&file).expect("written")).expect("JSON");
    assert_eq!(exported, doc);
    // Each event names its transaction, whose evidence bundle is served.
    let tx = events[4]["zsl:txId"].as_str().expect("tx id");
    assert_eq!(events[4]["eventID"], format!("urn:zsl:tx:{tx}"));
    // The schema check is not vacuous: an event without its time zone is refused.
    let mut broken = doc.clone();
    broken["epcisBody"]["eventList"][1]
        .as_object_mut()
        .expect("event")
        .remove("eventTimeZoneOffset");
    assert!(!gs1.is_valid(&broken));
    // Bad queries are clear 4xx answers; the export is not public.
    assert_eq!(node.get("/v1/epcis/events").0, 400);
    assert_eq!(node.get("/v1/epcis/events?trace_code=ZS00").0, 404);
    assert_eq!(
        node.get_public(&format!("/v1/epcis/events?trace_code={trace}"))
            .0,
        401
    );
}
