use super::*;
use crate::chain::MemoryLedger;
use crate::record::SubjectKind;
use crate::testkit::{self, MemoryChain, D1};

fn chain(batches: usize) -> MemoryChain {
    chain_of(1, batches)
}

/// `batches` batches coded by producer `uscc(producer)` and half shipped.
fn chain_of(producer: u32, batches: usize) -> MemoryChain {
    let spec = testkit::spec(testkit::three_districts(), 1);
    let mut c = MemoryChain::new(spec);
    let p = c.register(producer, D1, SubjectKind::Producer);
    let w = c.register(producer + 1, D1, SubjectKind::Wholesaler);
    c.product(&p);
    for i in 0..batches {
        let id = format!("B{i}");
        let code = crate::machine::trace_code(&p.0, &id);
        let wire = c.code(&p, &id, 10, "2024-03-09");
        c.ok(wire);
        let wire = c.ship(&p, &format!("S{i}"), &w.0, &code, 5);
        c.ok(wire);
    }
    c
}

fn period() -> Period {
    Period::parse("2024-02-01", "2024-03-31").unwrap()
}

fn verified(e: &ScoreEvidence, c: &MemoryChain) -> Report {
    let mut replay = MemoryLedger::new(c.spec.clone()).unwrap();
    verify(e, &c.spec, &c.kv, &mut replay)
}

#[test]
fn a_score_recomputes_at_its_block_on_a_chain_that_grew_since() {
    let mut c = chain(2);
    let e = export(&c.kv, &c.spec, D1, period()).unwrap();
    assert_eq!(e.model, c.spec.model.model);
    let r = verified(&e, &c);
    assert!(r.ok(), "{r:#?}");
    // More records after the export change today's score, not the one at
    // the exported block.
    let p = (testkit::uscc(1), testkit::key(&testkit::uscc(1)));
    let wire = c.code(&p, "B9", 10, "2024-03-09");
    c.ok(wire);
    let now = export(&c.kv, &c.spec, D1, period()).unwrap();
    assert_ne!(now.detail, e.detail, "the new batch counts");
    let r = verified(&e, &c);
    assert!(r.ok(), "{r:#?}");
    assert!(r.checks[3].detail.contains("as exported"), "{r:#?}");
}

#[test]
fn a_changed_answer_or_another_chain_fails_named() {
    let c = chain(2);
    let e = export(&c.kv, &c.spec, D1, period()).unwrap();
    let mut t = e.clone();
    t.detail["score"]["coding"]["a"] = serde_json::json!(99);
    assert_eq!(verified(&t, &c).failed(), [check::SCORE]);
    // Another chain of the same genesis whose history differs from block 1.
    let other = chain_of(5, 2);
    let r = verified(&e, &other);
    assert_eq!(r.failed(), [check::CHECKPOINT, check::REPLAY, check::SCORE]);
    let mut t = e.clone();
    t.model = "zj-2099".into();
    assert_eq!(verified(&t, &c).failed(), [check::EVIDENCE]);
    let mut t = e.clone();
    t.checkpoint.height += 100;
    assert!(verified(&t, &c).failed().contains(&check::CHECKPOINT));
}
