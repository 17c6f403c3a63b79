use super::*;
use crate::record::SubjectKind;
use crate::testkit::{self, validator_keys, MemoryChain, D1};

/// A producer codes 100 kg; its first shipment to a wholesaler is
/// rejected and comes back, the second is received, and the wholesaler
/// ships 30 on to a supermarket, which receives them. A second batch of
/// the producer's is coded and shipped too (not on the trace). Sealed.
fn story() -> (MemoryChain, Genesis, String, String) {
    let spec = testkit::spec(vec![testkit::district(D1, "上城区", "330100", "杭州市")], 1);
    let mut c = MemoryChain::new(spec);
    let p = c.register(1, D1, SubjectKind::Producer);
    let w = c.register(2, D1, SubjectKind::Wholesaler);
    let r = c.register(3, D1, SubjectKind::Supermarket);
    c.product(&p);
    let code = crate::machine::trace_code(&p.0, "B1");
    let other = crate::machine::trace_code(&p.0, "B2");
    for wire in [
        c.code(&p, "B1", 100, "2024-03-05"),
        c.ship(&p, "S1", &w.0, &code, 60),
        c.answer(&w, &p.0, "S1", true),
        c.ship(&p, "S2", &w.0, &code, 60),
        c.answer(&w, &p.0, "S2", false),
        c.ship(&w, "S3", &r.0, &code, 30),
        c.answer(&r, &w.0, "S3", false),
        c.code(&p, "B2", 10, "2024-03-05"),
        c.ship(&p, "S4", &w.0, &other, 10),
    ] {
        c.ok(wire);
    }
    let head = crate::history::read_head(&c.kv).unwrap().unwrap().height;
    let header = read_header(&c.kv, head).unwrap().unwrap();
    let cp = seal::checkpoint_of(&seal::log_identity(&c.kv, &c.spec).unwrap(), &header).unwrap();
    let (name, key) = &validator_keys(1)[0];
    c.block_with(vec![], vec![seal::cosign(&cp, name, key)]);
    let g = Genesis::new(&c.spec).unwrap();
    (c, g, code, other)
}

#[test]
fn a_trace_bundle_verifies_and_states_the_story() {
    let (c, g, code, _) = story();
    let b = build_trace(&c.kv, &g, &code).unwrap();
    assert_eq!(b.records.len(), 7);
    let r = verify_trace(&b, &g);
    assert!(r.ok(), "{r:#?}");
    let facts = &r.checks.last().unwrap().detail;
    assert!(facts.contains("coded (赋码)"), "{facts}");
    assert!(facts.contains("rejected (拒收)"), "{facts}");
    assert_eq!(facts.matches("received (入库确认)").count(), 2, "{facts}");
    let json = serde_json::to_vec(&b).unwrap();
    assert!(is_trace_bundle(&json));
    assert_eq!(parse_trace_bundle(&json).unwrap(), b);
    assert!(matches!(
        build_trace(&c.kv, &g, "ZSNOSUCHCODE"),
        Err(TraceEvidenceError::NotFound(_))
    ));
}

fn without(b: &TraceBundle, kind: &str, nth: usize) -> TraceBundle {
    let mut t = b.clone();
    let i = t
        .records
        .iter()
        .enumerate()
        .filter(|(_, r)| r.record["body"]["type"] == kind)
        .nth(nth)
        .map(|(i, _)| i)
        .unwrap();
    t.records.remove(i);
    t
}

fn failed(b: &TraceBundle, g: &Genesis) -> (Vec<String>, String) {
    let r = verify_trace(b, g);
    let detail = r
        .checks
        .iter()
        .filter(|c| !c.ok)
        .map(|c| c.detail.clone())
        .collect::<Vec<_>>()
        .join("; ");
    (r.failed().iter().map(|s| s.to_string()).collect(), detail)
}

#[test]
fn a_dropped_record_the_story_depends_on_fails_custody() {
    let (c, g, code, _) = story();
    let b = build_trace(&c.kv, &g, &code).unwrap();
    // The wholesaler's receipt of S2: its shipment S3 has nothing to ship.
    let (f, why) = failed(&without(&b, "shipment.receive", 0), &g);
    assert_eq!(f[0], trace_check::CUSTODY, "{why}");
    assert!(why.contains("holds 0"), "{why}");
    // Shipment S3: the supermarket's receipt names a shipment the bundle lacks.
    let (f, why) = failed(&without(&b, "shipment.create", 2), &g);
    assert_eq!(f[0], trace_check::CUSTODY);
    assert!(why.contains("which the bundle lacks"), "{why}");
    // The rejection of S1: the producer then ships 60 of the 40 it holds.
    let (f, why) = failed(&without(&b, "shipment.reject", 0), &g);
    assert_eq!(f[0], trace_check::CUSTODY);
    assert!(why.contains("holds 40"), "{why}");
    // The coding.
    let (f, _) = failed(&without(&b, "batch.code", 0), &g);
    assert_eq!(f[0], trace_check::CUSTODY);
}

#[test]
fn an_added_record_fails() {
    let (c, g, code, other) = story();
    let b = build_trace(&c.kv, &g, &code).unwrap();
    let o = build_trace(&c.kv, &g, &other).unwrap();
    // The other batch's shipment, validly signed and included: not on this trace.
    let mut t = b.clone();
    let s4 = o
        .records
        .iter()
        .find(|r| r.record["body"]["type"] == "shipment.create")
        .unwrap();
    t.records.push(s4.clone());
    t.records.sort_by_key(|r| r.leaf_index);
    let (f, why) = failed(&t, &g);
    assert_eq!(f, [trace_check::CUSTODY, trace_check::FACTS], "{why}");
    assert!(why.contains("carries nothing of"), "{why}");
    // A record repeated.
    let mut t = b.clone();
    t.records.push(t.records[0].clone());
    assert!(failed(&t, &g).0.contains(&trace_check::RECORDS.to_string()));
    // Facts that say something else.
    let mut t = b.clone();
    t.facts[1] = t.facts[1].replace("60", "6");
    assert_eq!(failed(&t, &g).0, [trace_check::FACTS]);
}

#[test]
fn single_byte_changes_fail() {
    let (c, g, code, _) = story();
    let b = build_trace(&c.kv, &g, &code).unwrap();
    let json = serde_json::to_vec(&b).unwrap();
    let mut tried = 0;
    for i in (0..json.len()).step_by(11) {
        let mut t = json.clone();
        t[i] ^= 0x01;
        let ok = match parse_trace_bundle(&t) {
            Ok(tb) => verify_trace(&tb, &g).ok(),
            Err(_) => false,
        };
        assert!(
            !ok,
            "flipping byte {i} ({:?}) still verifies",
            json[i] as char
        );
        tried += 1;
    }
    assert!(tried > 500, "{tried}");
}
