//! Two chains on loopback witnessing each other (c2sp.org/tlog-witness):
//! chain B's node witnesses chain A's checkpoints, and A's node, offering
//! each sealed checkpoint to B with a consistency proof, collects B's
//! cosignatures into A's bundles. The bundle verifies in `zsl verify` with
//! and without a witness policy, and in Go's generic signed-note verifier;
//! A's node answers as a witness of B too, with the protocol's refusals.

use std::path::Path;
use std::process::Command;

use ledger::checkpoint::SignedNote;
use ledger::witness::{verify_cosignature, Cosigner};
use serde_json::{json, Value};
use zsl_tests::record::DocumentNotarize;
use zsl_tests::*;

/// The witness's cosignature arrives within a few offer intervals.
const WITNESSED_TIMEOUT_MS: u64 = 30_000;

fn zsl_verify(args: &[&str]) -> (i32, String) {
    let out = Command::new(zsl_binary())
        .arg("verify")
        .args(args)
        .output()
        .expect("run zsl verify");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr),
    )
}

/// A fresh witness key file in `dir`; returns (path, vkey, cosigner).
fn witness_key(dir: &Path, name: &str) -> (String, String, Cosigner) {
    let k = genesis::KeyFile::generate(name);
    let path = dir.join(format!("{}.key.json", name.replace('/', "_")));
    genesis::write_json(&path, &k).unwrap();
    let pk = k.signing_key().unwrap().verifying_key().to_bytes();
    let vkey = ledger::witness::cosigner_vkey(name, &pk);
    let c = Cosigner::from_vkey(&vkey).unwrap();
    (path.display().to_string(), vkey, c)
}

fn post_text(url: &str, body: String) -> (u16, String, String) {
    status_type_text(http().post(url).body(body).send().expect("POST"))
}

#[test]
fn two_chains_witness_each_other_on_loopback() {
    let mut a = TestNode::prepare("zsl-a");
    let mut b = TestNode::prepare("zsl-b");
    let (wa_key, wa_vkey, wa) = witness_key(a.dir.path(), "witness.a.example/w1");
    let (wb_key, wb_vkey, wb) = witness_key(b.dir.path(), "witness.b.example/w1");
    let a_genesis = a.dir.path().join("genesis.json");
    let b_genesis = b.dir.path().join("genesis.json");
    // B witnesses A.
    b.append_config(&format!(
        "[witness]\nname = \"witness.b.example/w1\"\nkey = \"{wb_key}\"\n[[witness.logs]]\ngenesis = \"{}\"\n",
        a_genesis.display()
    ));
    b.launch();
    // A witnesses B, and asks B to witness it.
    a.append_config(&format!(
        "[witness]\nname = \"witness.a.example/w1\"\nkey = \"{wa_key}\"\n[[witness.logs]]\ngenesis = \"{}\"\n\n[[witnessed_by]]\nvkey = \"{wb_vkey}\"\nurl = \"{}/witness\"\ninterval_ms = 100\n",
        b_genesis.display(),
        b.api
    ));
    a.launch();

    // A record on A; its bundle's checkpoint gains B's cosignature.
    let rec = DocumentNotarize {
        document_hash: hex::encode(ledger::hash::sha256(b"witnessed document")),
        title: "跨省见证 witnessed".into(),
        media_type: None,
        note: None,
    };
    let tx = sign(
        &a.spec.chain_id,
        &a.root_key(),
        &a.root.account,
        "document.notarize",
        &rec,
    );
    let (status, body) = a.submit(&tx);
    assert_eq!(status, 200, "{body}");
    let tx_id = body["tx_id"].as_str().unwrap().to_string();
    let bundle = poll(
        "B's cosignature in A's bundle",
        WITNESSED_TIMEOUT_MS,
        || {
            let (status, body) = a.get(&format!("/v1/evidence/{tx_id}"));
            (status == 200
                && body["checkpoint"]
                    .as_str()
                    .is_some_and(|n| n.contains("\u{2014} witness.b.example/w1 ")))
            .then_some(body)
        },
    );
    let note = SignedNote::parse(bundle["checkpoint"].as_str().unwrap()).unwrap();
    let line = note
        .signatures
        .iter()
        .find(|s| s.name == wb.name)
        .expect("B's line");
    assert!(
        verify_cosignature(&note.text, line, &wb).is_some(),
        "B's cosignature verifies"
    );

    // zsl verify: without a policy the witness line is ignored; with one
    // requiring B it must be B's; a policy requiring another witness fails.
    let dir = a.dir.path();
    let bundle_path = dir.join("bundle.json");
    std::fs::write(&bundle_path, serde_json::to_vec_pretty(&bundle).unwrap()).unwrap();
    let g = a_genesis.to_str().unwrap();
    let bp = bundle_path.to_str().unwrap();
    let (code, out) = zsl_verify(&[bp, "--genesis", g]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("ignored"), "{out}");
    let policy = dir.join("policy.txt");
    std::fs::write(&policy, format!("witness B {wb_vkey}\nquorum B\n")).unwrap();
    let with_policy = |bundle: &str, policy: &Path| {
        zsl_verify(&[
            bundle,
            "--genesis",
            g,
            "--witness-policy",
            policy.to_str().unwrap(),
        ])
    };
    let (code, out) = with_policy(bp, &policy);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("✓ witnesses"), "{out}");
    let other = dir.join("other-policy.txt");
    std::fs::write(
        &other,
        format!("witness B {wb_vkey}\nwitness A {wa_vkey}\ngroup both all B A\nquorum both\n"),
    )
    .unwrap();
    let (code, out) = with_policy(bp, &other);
    assert_eq!(code, 2, "{out}");
    assert!(out.contains("✗ witnesses"), "{out}");
    // B's line tampered: without a policy still ignored (a stranger's line);
    // with the policy the witness check fails.
    let mut t = bundle.clone();
    let text = t["checkpoint"].as_str().unwrap().to_string();
    let at = text.find("\u{2014} witness.b.example/w1 ").unwrap()
        + "\u{2014} witness.b.example/w1 ".len()
        + 20;
    let mut bytes = text.into_bytes();
    bytes[at] = if bytes[at] == b'A' { b'B' } else { b'A' };
    t["checkpoint"] = json!(String::from_utf8(bytes).unwrap());
    let tampered = dir.join("tampered.json");
    std::fs::write(&tampered, serde_json::to_vec(&t).unwrap()).unwrap();
    let (code, out) = with_policy(tampered.to_str().unwrap(), &policy);
    assert_eq!(code, 2, "{out}");
    assert!(out.contains("✗ witnesses"), "{out}");

    // Go's generic verifier: the validators' quorum and one witness.
    let go = go_note_verifier(dir);
    let vkeys: Vec<String> = serde_json::from_value(bundle["validators"]["vkeys"].clone()).unwrap();
    let quorum = bundle["validators"]["quorum"].as_u64().unwrap();
    let cp = bundle["checkpoint"].as_str().unwrap();
    let go_with_witness = |witness: &String| {
        let witnesses = std::slice::from_ref(witness);
        go_note_verify(&go, dir, cp, quorum, &vkeys, Some((1, witnesses)))
    };
    let (code, out) = go_with_witness(&wb_vkey);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("witnesses 1"), "{out}");
    let (code, out) = go_with_witness(&wa_vkey);
    assert_eq!(code, 3, "a witness that did not cosign: {out}");

    // B's monitoring endpoint serves the checkpoint it cosigned.
    let origin = note.text.lines().next().unwrap();
    let hash = hex::encode(ledger::hash::sha256(origin.as_bytes()));
    let r = http()
        .get(format!("{}/witness/{hash}/checkpoint", b.api))
        .send()
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let served = SignedNote::parse(&r.text().unwrap()).unwrap();
    assert!(served.signatures.iter().any(|s| s.name == wb.name));

    // A as B's witness, driven by hand as B's log would drive it.
    let (status, b_note) = {
        let r = http()
            .get(format!("{}/v1/checkpoints/latest", b.api))
            .send()
            .unwrap();
        (r.status().as_u16(), r.text().unwrap())
    };
    if status == 404 {
        // B sealed nothing yet: give it a record.
        let tx = sign(
            &b.spec.chain_id,
            &b.root_key(),
            &b.root.account,
            "document.notarize",
            &rec,
        );
        assert_eq!(b.submit(&tx).0, 200);
    }
    let b_note = poll("a sealed checkpoint on B", WITNESSED_TIMEOUT_MS, || {
        if status == 200 {
            return Some(b_note.clone());
        }
        let r = http()
            .get(format!("{}/v1/checkpoints/latest", b.api))
            .send()
            .ok()?;
        (r.status().as_u16() == 200).then(|| r.text().unwrap())
    });
    let url = format!("{}/witness/add-checkpoint", a.api);
    let (status, _, lines) = post_text(&url, format!("old 0\n\n{b_note}"));
    assert_eq!(status, 200, "{lines}");
    let parsed = SignedNote::parse(&format!(
        "{}\n{lines}",
        SignedNote::parse(&b_note).unwrap().text
    ))
    .unwrap();
    assert!(parsed
        .signatures
        .iter()
        .any(|s| verify_cosignature(&parsed.text, s, &wa).is_some()));
    // Old size 0 again: 409 with the size A holds.
    let size = b_note.lines().nth(1).unwrap();
    let (status, ctype, body) = post_text(&url, format!("old 0\n\n{b_note}"));
    assert_eq!(
        (status, ctype.as_str(), body.trim()),
        (409, "text/x.tlog.size", size),
        "{body}"
    );
    // A forged validator signature: 403; A's own chain (not witnessed by A): 404; garbage: 400.
    let mut forged = SignedNote::parse(&b_note).unwrap();
    forged.signatures[0].signature[7] ^= 1;
    let (status, _, body) = post_text(&url, format!("old {size}\n\n{}", forged.render()));
    assert_eq!(status, 403, "{body}");
    let (status, _, body) = post_text(&url, format!("old 0\n\n{}", note.render()));
    assert_eq!(status, 404, "{body}");
    let (status, _, _) = post_text(&url, "not a request".into());
    assert_eq!(status, 400);
    // The checkpoint answer lists the witness cosignatures A collected.
    let h = bundle["headers"].as_array().unwrap().last().unwrap()["height"]
        .as_u64()
        .unwrap();
    let (status, cp_json) = a.get(&format!("/v1/checkpoints/{h}?format=json"));
    assert_eq!(status, 200, "{cp_json}");
    let ws: Vec<Value> = serde_json::from_value(cp_json["witnesses"].clone()).unwrap();
    assert!(ws.iter().any(|w| w["name"] == wb.name), "{cp_json}");
    a.stop();
    b.stop();
}
