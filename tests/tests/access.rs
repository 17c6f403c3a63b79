//! Who sees what (docs/api.md), as a matrix on a real node: each caller —
//! the public, an enterprise party to the records, an enterprise outside
//! them, a regulator in and out of jurisdiction, the province, a validator —
//! against each kind of read; then the signature rules (replay, expiry,
//! unknown key, tampering) and the web session.

use serde_json::{json, Value};
use zsl_tests::record::*;
use zsl_tests::*;

const D1: &str = "330102";
const D2: &str = "330106";

fn ok(node: &TestNode, tx: &Value) -> Value {
    let (status, body) = node.submit(tx);
    assert_eq!(status, 200, "expected commit: {body}");
    body
}

struct World {
    node: TestNode,
    producer: (String, ed25519_dalek::SigningKey),
    shop: (String, ed25519_dalek::SigningKey),
    outsider: (String, ed25519_dalek::SigningKey),
    reg_d1: (String, ed25519_dalek::SigningKey),
    reg_d2: (String, ed25519_dalek::SigningKey),
    trace: String,
    coded_tx: String,
}

fn world() -> World {
    let node = TestNode::start();
    let chain = node.spec.chain_id.clone();
    let (root, root_id) = (node.root_key(), node.root.account.clone());
    let subject = |n: u32, d: &str, kind: SubjectKind| {
        let (id, key, reg) = subject_register(n, d, kind, false);
        ok(
            &node,
            &sign(&chain, &root, &root_id, "subject.register", &reg),
        );
        (id, key)
    };
    let producer = subject(1, D1, SubjectKind::Producer);
    let shop = subject(2, D1, SubjectKind::Supermarket);
    let outsider = subject(3, D2, SubjectKind::Restaurant);
    let regulator = |id: &str, j: &str| {
        let key = test_key(id);
        let a = AccountRegister {
            id: id.into(),
            role: AuthorityRole::Regulator,
            jurisdiction: j.into(),
            name: id.into(),
            public_key: hex::encode(key.verifying_key().to_bytes()),
        };
        ok(
            &node,
            &sign(&chain, &root, &root_id, "account.register", &a),
        );
        (id.to_string(), key)
    };
    let reg_d1 = regulator("reg-d1", D1);
    let reg_d2 = regulator("reg-d2", D2);
    let p = &producer;
    let product = ProductRegister {
        product_id: "pork".into(),
        name: "冷鲜猪肉".into(),
        gtin: None,
        variety: "meat".into(),
        shelf_life_days: 5,
    };
    ok(
        &node,
        &sign(&chain, &p.1, &p.0, "product.register", &product),
    );
    let today = ledger::score::local_date(
        &ledger::score::ModelParams::zj_2024(),
        jiff::Timestamp::now().as_millisecond(),
    )
    .unwrap();
    let coded = ok(
        &node,
        &sign(
            &chain,
            &p.1,
            &p.0,
            "batch.code",
            &BatchCode {
                batch_id: "B1".into(),
                product_id: "pork".into(),
                quantity: 100,
                unit: "kg".into(),
                production_date: today.to_string(),
                expiry_date: today
                    .checked_add(jiff::ToSpan::days(5))
                    .unwrap()
                    .to_string(),
                origin_region: D1.into(),
                upstream: None,
                certificates: vec![],
                rapid_tests: vec![],
            },
        ),
    );
    let trace = ledger::machine::trace_code(&p.0, "B1");
    let ship = ShipmentCreate {
        shipment_id: "SH1".into(),
        to: shop.0.clone(),
        lines: vec![ShipmentLine {
            trace_code: trace.clone(),
            quantity: 40,
        }],
    };
    ok(&node, &sign(&chain, &p.1, &p.0, "shipment.create", &ship));
    World {
        coded_tx: coded["tx_id"].as_str().unwrap().to_string(),
        node,
        producer,
        shop,
        outsider,
        reg_d1,
        reg_d2,
        trace,
    }
}

/// The callers of the matrix, by name (`None`: unsigned).
fn callers(w: &World) -> Vec<(&'static str, Option<ed25519_dalek::SigningKey>)> {
    vec![
        ("public", None),
        ("producer", Some(w.producer.1.clone())),
        ("shop", Some(w.shop.1.clone())),
        ("outsider", Some(w.outsider.1.clone())),
        ("reg-d1", Some(w.reg_d1.1.clone())),
        ("reg-d2", Some(w.reg_d2.1.clone())),
        ("province", Some(w.node.root_key())),
        ("validator", Some(w.node.validator_key())),
    ]
}

fn read(w: &World, key: &Option<ed25519_dalek::SigningKey>, path: &str) -> (u16, Value) {
    match key {
        Some(k) => signed_get(&w.node.api, path, k),
        None => w.node.get_public(path),
    }
}

#[test]
fn who_sees_what() {
    let w = world();
    let (from, to) = {
        let d = ledger::score::local_date(
            &ledger::score::ModelParams::zj_2024(),
            jiff::Timestamp::now().as_millisecond(),
        )
        .unwrap();
        (d.checked_sub(jiff::ToSpan::days(7)).unwrap(), d)
    };
    // Evidence needs a sealed checkpoint: wait for it as the province.
    let evidence = format!("/v1/evidence/{}", w.coded_tx);
    poll("the coding sealed", 30_000, || {
        (w.node.get(&evidence).0 == 200).then_some(())
    });
    let p = &w.producer.0;
    // (path, what each caller gets, in the order of `callers`): a status,
    // or `F`/`V` for 200 with the full or the public view.
    const F: u16 = 1; // 200, full view
    const V: u16 = 2; // 200, public view
    let rows: Vec<(String, [u16; 8])> = vec![
        (format!("/v1/trace/{}", w.trace), [V, F, F, V, F, V, F, V]),
        (format!("/v1/subjects/{p}"), [V, F, V, V, F, V, F, V]),
        (format!("/v1/tx/{}", w.coded_tx), [V, F, V, V, F, V, F, V]),
        (
            format!("/v1/batches/{}", w.trace),
            [401, 200, 200, 403, 200, 403, 200, 403],
        ),
        (
            format!("/v1/shipments/{p}/SH1"),
            [401, 200, 200, 403, 200, 403, 200, 403],
        ),
        (
            format!("/v1/accounts/{p}"),
            [401, 200, 403, 403, 200, 403, 200, 403],
        ),
        (evidence.clone(), [401, 200, 403, 403, 200, 403, 200, 403]),
        (
            format!("/v1/views/subjects/{p}/portrait?from={from}&to={to}"),
            [401, 200, 403, 403, 200, 403, 200, 403],
        ),
        (
            format!("/v1/scores/{D1}?from={from}&to={to}"),
            [401, 403, 403, 403, 200, 403, 200, 403],
        ),
        (
            format!("/v1/views/daily?from={from}&to={to}&district={D2}"),
            [401, 403, 403, 403, 403, 200, 200, 403],
        ),
        (
            format!("/v1/views/daily?from={from}&to={to}"),
            [401, 403, 403, 403, 403, 403, 200, 403],
        ),
        (
            "/v1/views/blocks?limit=2".into(),
            [401, 403, 403, 403, 200, 200, 200, 403],
        ),
        (
            "/v1/internal/read-index".into(),
            [401, 403, 403, 403, 403, 403, 403, 200],
        ),
        ("/v1/status".into(), [200; 8]),
        ("/v1/checkpoints/latest?format=json".into(), [200; 8]),
    ];
    let mut wrong = Vec::new();
    for (path, want) in &rows {
        for ((who, key), want) in callers(&w).iter().zip(want) {
            let (status, body) = read(&w, key, path);
            let public_view = body["public_view"] == json!(true)
                || body["trace"]["public_view"] == json!(true)
                || (path.starts_with("/v1/tx/") && body.get("tx").is_none());
            let got = match status {
                200 if path.starts_with("/v1/trace/")
                    || path.starts_with("/v1/subjects/")
                    || path.starts_with("/v1/tx/") =>
                {
                    if public_view {
                        V
                    } else {
                        F
                    }
                }
                s => s,
            };
            if got != *want {
                wrong.push(format!(
                    "{who} GET {path}: got {got} ({status}), want {want}: {body}"
                ));
            }
            if status == 401 || status == 403 {
                assert!(
                    body["code"].is_string() && body["message"].is_string(),
                    "{body}"
                );
            }
        }
    }
    assert!(
        wrong.is_empty(),
        "{} cells wrong:\n{}",
        wrong.len(),
        wrong.join("\n")
    );

    // The public trace view has no quantities; the full one has them.
    let (_, public) = w.node.get_public(&format!("/v1/trace/{}", w.trace));
    assert!(
        public["trace"]["batch"].get("quantity").is_none(),
        "{public}"
    );
    assert!(
        public["trace"]["holders"][0].get("quantity").is_none(),
        "{public}"
    );
    let (_, full) = w.node.get(&format!("/v1/trace/{}", w.trace));
    assert_eq!(full["trace"]["batch"]["quantity"], 100);

    // A district regulator's scores cover its district only; the province's all.
    let scores = format!("/v1/scores?from={from}&to={to}");
    let (_, mine) = signed_get(&w.node.api, &scores, &w.reg_d1.1);
    let districts: Vec<&String> = mine["districts"].as_object().unwrap().keys().collect();
    assert_eq!(districts, [D1], "{mine}");
    let (_, all) = w.node.get(&scores);
    assert!(all["districts"].as_object().unwrap().len() >= 3);
}

#[test]
fn signatures_are_checked_once_in_their_window_and_sessions_end() {
    let w = world();
    let api = &w.node.api;
    let path = format!("/v1/accounts/{}", w.producer.0);
    let key = &w.producer.1;
    let get_with = |headers: &[(&str, String)]| -> (u16, Value) {
        let mut req = http().get(format!("{api}{path}"));
        for (n, v) in headers {
            req = req.header(*n, v.clone());
        }
        let r = req.send().expect("GET");
        (r.status().as_u16(), r.json().unwrap_or(Value::Null))
    };
    let now = jiff::Timestamp::now().as_second();
    let signed = api::httpsig::sign(key, &reqwest::Method::GET, &path, b"", now).expect("sign");
    assert_eq!(get_with(&signed).0, 200);
    // The same signature again.
    let (s, b) = get_with(&signed);
    assert_eq!(
        (s, b["code"].as_str()),
        (401, Some("replayed_request")),
        "{b}"
    );
    // Outside the window.
    let old = api::httpsig::sign(key, &reqwest::Method::GET, &path, b"", now - 3_600).unwrap();
    let (s, b) = get_with(&old);
    assert_eq!(
        (s, b["code"].as_str()),
        (401, Some("signature_expired")),
        "{b}"
    );
    // A key nobody holds.
    let stranger = test_key("stranger");
    let (s, b) =
        get_with(&api::httpsig::sign(&stranger, &reqwest::Method::GET, &path, b"", now).unwrap());
    assert_eq!((s, b["code"].as_str()), (401, Some("unknown_key")), "{b}");
    // Signed for another path.
    let other = format!("/v1/accounts/{}", w.shop.0);
    let (s, b) =
        get_with(&api::httpsig::sign(key, &reqwest::Method::GET, &other, b"", now).unwrap());
    assert_eq!(
        (s, b["code"].as_str()),
        (401, Some("bad_request_signature")),
        "{b}"
    );
    // A header that is not the profile.
    let (s, b) = get_with(&[
        ("signature-input", "zsl=(\"@method\");created=1".into()),
        ("signature", "zsl=:AAAA:".into()),
    ]);
    assert_eq!(
        (s, b["code"].as_str()),
        (401, Some("unauthenticated")),
        "{b}"
    );

    // A session: one signed request opens it, the token reads, sign-out ends it.
    let sign_in = |key: &ed25519_dalek::SigningKey| -> String {
        let mut req = http().post(format!("{api}/v1/sessions"));
        for (n, v) in signature_headers(key, "POST", "/v1/sessions", b"") {
            req = req.header(n, v);
        }
        let r = req.send().unwrap();
        assert_eq!(r.status(), 200);
        let session: Value = r.json().unwrap();
        assert_eq!(session["account"], w.producer.0.as_str());
        format!("Bearer {}", session["token"].as_str().unwrap())
    };
    let bearer = sign_in(key);
    assert_eq!(get_with(&[("authorization", bearer.clone())]).0, 200);
    let r = http()
        .delete(format!("{api}/v1/sessions"))
        .header("authorization", bearer.clone())
        .send()
        .unwrap();
    assert_eq!(r.status(), 200);
    let (s, b) = get_with(&[("authorization", bearer)]);
    assert_eq!(
        (s, b["code"].as_str()),
        (401, Some("unauthenticated")),
        "{b}"
    );
    // A validator cannot open a session (sessions are for accounts).
    let mut req = http().post(format!("{api}/v1/sessions"));
    for (n, v) in signature_headers(&w.node.validator_key(), "POST", "/v1/sessions", b"") {
        req = req.header(n, v);
    }
    assert_eq!(req.send().unwrap().status(), 403);

    // A session ends when the key that opened it is revoked, not 15 minutes later.
    let bearer = sign_in(key);
    assert_eq!(get_with(&[("authorization", bearer.clone())]).0, 200);
    // A session does not open another.
    let r = http()
        .post(format!("{api}/v1/sessions"))
        .header("authorization", bearer.clone())
        .send()
        .unwrap();
    assert_eq!(r.status(), 401);
    let chain = w.node.spec.chain_id.clone();
    let second = test_key("producer-second");
    let change = |k: &ed25519_dalek::SigningKey| KeyChange {
        target: w.producer.0.clone(),
        public_key: hex::encode(k.verifying_key().to_bytes()),
    };
    ok(
        &w.node,
        &sign(&chain, key, &w.producer.0, "key.bind", &change(&second)),
    );
    ok(
        &w.node,
        &sign(&chain, &second, &w.producer.0, "key.revoke", &change(key)),
    );
    let (s, b) = get_with(&[("authorization", bearer.clone())]);
    assert_eq!((s, b["code"].as_str()), (401, Some("unknown_key")), "{b}");
    let (s, b) = get_with(&[("authorization", bearer)]);
    assert_eq!(
        (s, b["code"].as_str()),
        (401, Some("unauthenticated")),
        "the session is closed: {b}"
    );
}

/// The enterprise's credit report, signed by the validator that served it,
/// verifies offline with the genesis file (`zsl verify-report`); a changed
/// figure does not. Only the enterprise and its regulators may request it.
#[test]
fn a_signed_credit_report_verifies_offline() {
    let w = world();
    let d = ledger::score::local_date(
        &ledger::score::ModelParams::zj_2024(),
        jiff::Timestamp::now().as_millisecond(),
    )
    .unwrap();
    let path = format!(
        "/v1/views/subjects/{}/credit-report?from={}&to={d}",
        w.producer.0,
        d.checked_sub(jiff::ToSpan::days(7)).unwrap()
    );
    assert_eq!(signed_get(&w.node.api, &path, &w.outsider.1).0, 403);
    assert_eq!(w.node.get_public(&path).0, 401);
    let (status, doc) = signed_get(&w.node.api, &path, &w.producer.1);
    assert_eq!(status, 200, "{doc}");
    assert_eq!(doc["report"]["subject"]["uscc"], w.producer.0.as_str());
    let genesis = w.node.dir.path().join("genesis.json");
    let verify = |doc: &Value| {
        let file = w.node.dir.path().join("report.json");
        std::fs::write(&file, serde_json::to_vec_pretty(doc).unwrap()).unwrap();
        let out = std::process::Command::new(zsl_binary())
            .arg("verify-report")
            .arg(&file)
            .arg("--genesis")
            .arg(&genesis)
            .output()
            .expect("zsl verify-report");
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).to_string(),
        )
    };
    let (code, out) = verify(&doc);
    assert_eq!(code, Some(0), "{out}");
    assert!(out.contains("VERIFIED"), "{out}");
    let mut tampered = doc.clone();
    tampered["report"]["activity"]["batches_coded"] = json!(99);
    let (code, out) = verify(&tampered);
    assert_eq!(code, Some(2), "{out}");
    assert!(out.contains("✗ report_signature"), "{out}");
}
