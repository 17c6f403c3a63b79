//! State machine tests: the rules, refusals that change nothing, and a
//! property test that quantities are conserved whatever happens.

use ed25519_dalek::SigningKey;

use super::*;
use crate::error::RefusalCode;
use crate::history::{read_block, read_tx};
use crate::query;
use crate::record::*;
use crate::signing::AccountSigningKey;
use crate::testkit::{self, key, pk, uscc, MemoryChain, D1, D2, DAY, T0};

fn spec() -> ChainSpec {
    testkit::spec(testkit::three_districts(), 0)
}

#[test]
fn code_ship_receive_moves_quantity_only_on_receipt() {
    let mut c = MemoryChain::new(spec());
    let p = c.register(1, D1, SubjectKind::Producer);
    let s = c.register(2, D2, SubjectKind::Supermarket);
    c.product(&p);
    let w = c.code(&p, "B1", 100, "2024-03-10");
    c.ok(w);
    let trace = trace_code(&p.0, "B1");
    assert_eq!(c.holding(&trace, &p.0), 100);
    let w = c.ship(&p, "SH1", &s.0, &trace, 30);
    c.ok(w);
    assert_eq!(
        (c.holding(&trace, &p.0), c.holding(&trace, &s.0)),
        (70, 0),
        "in transit belongs to nobody"
    );
    let w = c.answer(&s, &p.0, "SH1", false);
    c.ok(w);
    assert_eq!((c.holding(&trace, &p.0), c.holding(&trace, &s.0)), (70, 30));
    let w = c.answer(&s, &p.0, "SH1", false);
    assert_eq!(c.one(w), Some(RefusalCode::AlreadyAnswered));
    // The trace view shows the whole story.
    let view = crate::query::trace(&c.kv, &trace, None).unwrap().unwrap();
    let events: Vec<&str> = view.custody.iter().map(|e| e.event).collect();
    assert_eq!(events, ["coded", "shipped", "received"]);
    // A rejection returns the quantity to the shipper.
    let w = c.ship(&p, "SH2", &s.0, &trace, 70);
    c.ok(w);
    let w = c.answer(&s, &p.0, "SH2", true);
    c.ok(w);
    assert_eq!(c.holding(&trace, &p.0), 70);
}

#[test]
fn refused_transactions_change_nothing_and_cut_no_block() {
    let mut c = MemoryChain::new(spec());
    let p = c.register(1, D1, SubjectKind::Producer);
    c.product(&p);
    let head = read_head(&c.kv).unwrap().unwrap();
    let before = c.kv.clone();
    let w = c.ship(&p, "SH1", &uscc(9), "ZSNOPE", 1);
    let applied = c.block(vec![w, b"not json".to_vec()]);
    assert!(applied.block.is_none());
    // Only the kept refusal of the parsed one (the other has no id).
    assert!(applied
        .changes
        .entries
        .keys()
        .all(|(space, key)| crate::refusals::is_kept_row(*space, key)));
    let id = applied.outcomes[0].id.expect("the shipment parsed");
    let kept = crate::refusals::read(&c.kv, &id.0).unwrap().expect("kept");
    assert_eq!(
        (kept.code, kept.height),
        (
            applied.outcomes[0].result.as_ref().unwrap_err().code,
            head.height
        )
    );
    assert_eq!(read_head(&c.kv).unwrap().unwrap(), head);
    assert_eq!(
        crate::refusals::rows_besides(&c.kv),
        crate::refusals::rows_besides(&before)
    );
    assert_eq!(
        applied.outcomes[1].result.as_ref().unwrap_err().code,
        RefusalCode::MalformedTx
    );
}

#[test]
fn proposals_over_the_block_limits_are_refused_whole_not_an_error() {
    let mut c = MemoryChain::new(spec());
    let p = c.register(1, D1, SubjectKind::Producer);
    c.product(&p);
    let head = read_head(&c.kv).unwrap().unwrap();
    let good = c.code(&p, "B1", 10, "2024-12-31");
    let cosig = crate::block::Cosignature {
        height: 1,
        name: "v1".into(),
        sig: vec![0; 64],
    };
    let too_many_cosigs = BlockProposal {
        time_ms: c.now + 1_000,
        txs: vec![good.clone()],
        cosigs: vec![cosig; seal::COSIGNATURES_PER_BLOCK_MAX + 1],
    };
    let too_many_txs = BlockProposal {
        time_ms: c.now + 1_000,
        txs: vec![good.clone(); BLOCK_TXS_MAX + 1],
        cosigs: Vec::new(),
    };
    for proposal in [too_many_cosigs, too_many_txs] {
        let applied = apply_block(&c.kv, &c.spec, &proposal).expect("a refusal, not an error");
        assert!(applied.block.is_none());
        assert!(applied.changes.is_empty());
        assert_eq!(applied.head, head);
        assert_eq!(applied.outcomes.len(), proposal.txs.len());
        assert!(applied
            .outcomes
            .iter()
            .all(|o| o.result.as_ref().unwrap_err().code == RefusalCode::LimitExceeded));
    }
    // The same transaction in a proposal within the limits applies.
    assert_eq!(c.one(good), None);
}

#[test]
fn a_block_keeps_the_good_and_drops_the_bad() {
    let mut c = MemoryChain::new(spec());
    let p = c.register(1, D1, SubjectKind::Producer);
    c.product(&p);
    let good1 = c.code(&p, "B1", 10, "2024-03-10");
    let dup = good1.clone();
    let bad = c.code(&p, "B1", 10, "2024-03-10"); // same batch id, new nonce
    let good2 = c.code(&p, "B2", 10, "2024-03-10");
    let size_before = read_head(&c.kv).unwrap().unwrap().tree_size;
    let applied = c.block(vec![good1, dup, bad, good2]);
    let codes: Vec<Option<RefusalCode>> = applied
        .outcomes
        .iter()
        .map(|o| o.result.as_ref().err().map(|r| r.code))
        .collect();
    assert_eq!(
        codes,
        [
            None,
            Some(RefusalCode::Replayed),
            Some(RefusalCode::BatchExists),
            None
        ]
    );
    let block = applied.block.unwrap();
    assert_eq!(block.tx_ids.len(), 2);
    assert_eq!(block.header.tree_size, size_before + 2);
    assert_eq!(
        block.header.prev_hash,
        read_block(&c.kv, block.header.height - 1)
            .unwrap()
            .unwrap()
            .hash
    );
    // The tree root in the header is the root of all committed ids.
    let root = merkle::tree_root(block.header.tree_size, &TreeReader(&c.kv)).unwrap();
    assert_eq!(H32(root), block.header.tree_root);
    let loc = read_tx(&c.kv, &block.tx_ids[1].0).unwrap().unwrap();
    let proof = merkle::inclusion_proof(loc.leaf_index, block.header.tree_size, &TreeReader(&c.kv))
        .unwrap();
    merkle::verify_inclusion(
        &merkle::leaf_hash(&block.tx_ids[1].0),
        loc.leaf_index,
        block.header.tree_size,
        &proof,
        &root,
    )
    .unwrap();
}

#[test]
fn expired_recalled_and_blocked_batches_do_not_ship() {
    let mut c = MemoryChain::new(spec());
    let p = c.register(1, D1, SubjectKind::Producer);
    let s = c.register(2, D1, SubjectKind::Supermarket);
    let lab_key = key("lab");
    let reg = AccountRegister {
        id: "lab".into(),
        role: AuthorityRole::TestingLab,
        jurisdiction: "330000".into(),
        name: "lab".into(),
        public_key: pk(&lab_key),
    };
    let w = c.tx(&key("root"), "root", "account.register", &reg);
    c.ok(w);
    c.product(&p);
    // T0 is 2024-03-01 local: a batch that expired on 02-29 is blocked (过期阻断); one expiring today ships.
    for (id, exp) in [
        ("OLD", "2024-02-29"),
        ("TODAY", "2024-03-01"),
        ("REC", "2024-03-10"),
        ("BAD", "2024-03-10"),
    ] {
        let w = c.code(&p, id, 10, exp);
        c.ok(w);
    }
    let w = c.ship(&p, "S1", &s.0, &trace_code(&p.0, "OLD"), 1);
    assert_eq!(c.one(w), Some(RefusalCode::BatchExpired));
    let w = c.ship(&p, "S2", &s.0, &trace_code(&p.0, "TODAY"), 1);
    assert_eq!(c.one(w), None);
    let recall = RecallIssue {
        trace_code: trace_code(&p.0, "REC"),
        reason: "bacteria".into(),
    };
    let w = c.tx(&p.1, &p.0, "recall.issue", &recall);
    c.ok(w);
    let w = c.ship(&p, "S3", &s.0, &trace_code(&p.0, "REC"), 1);
    assert_eq!(c.one(w), Some(RefusalCode::BatchRecalled));
    let test = RapidTestRecord {
        test_id: "T1".into(),
        trace_code: trace_code(&p.0, "BAD"),
        item: "pesticide".into(),
        result: TestResult::Fail,
        note: None,
    };
    let w = c.tx(&lab_key, "lab", "rapid_test.record", &test);
    c.ok(w);
    let w = c.ship(&p, "S4", &s.0, &trace_code(&p.0, "BAD"), 1);
    assert_eq!(c.one(w), Some(RefusalCode::BatchBlocked));
}

#[test]
fn recall_traces_forward_to_every_holder() {
    let mut c = MemoryChain::new(spec());
    let p = c.register(1, D1, SubjectKind::Producer);
    let w1 = c.register(2, D1, SubjectKind::Wholesaler);
    let r1 = c.register(3, D2, SubjectKind::Restaurant);
    c.product(&p);
    let w = c.code(&p, "B", 100, "2024-03-10");
    c.ok(w);
    let t = trace_code(&p.0, "B");
    let w = c.ship(&p, "A", &w1.0, &t, 50);
    c.ok(w);
    let w = c.answer(&w1, &p.0, "A", false);
    c.ok(w);
    let w = c.ship(&w1, "B", &r1.0, &t, 20);
    c.ok(w); // pending: r1 has not received yet
             // Only the coder or a regulator over it may recall.
    let rec = RecallIssue {
        trace_code: t.clone(),
        reason: "x".into(),
    };
    let w = c.tx(&w1.1, &w1.0, "recall.issue", &rec);
    assert_eq!(c.one(w), Some(RefusalCode::NoRole));
    let w = c.tx(&key("root"), "root", "recall.issue", &rec);
    c.ok(w);
    let b = get::<Batch>(&c.kv, Space::State, &batch_key(&t))
        .unwrap()
        .unwrap();
    let mut affected = b.recall.unwrap().affected;
    affected.sort();
    let mut want = vec![w1.0.clone(), r1.0.clone()];
    want.sort();
    assert_eq!(affected, want);
}

#[test]
fn alerts_flag_recalls_near_expiry_and_overdue_receipts() {
    let mut c = MemoryChain::new(spec());
    let p = c.register(1, D1, SubjectKind::Producer);
    let r = c.register(3, D2, SubjectKind::Restaurant);
    c.product(&p);
    for (batch, expiry) in [
        ("R", "2024-12-31"),
        ("SOON", "2024-03-03"),
        ("LATER", "2024-12-31"),
    ] {
        let w = c.code(&p, batch, 100, expiry);
        c.ok(w);
    }
    let recalled = trace_code(&p.0, "R");
    let rec = RecallIssue {
        trace_code: recalled.clone(),
        reason: "x".into(),
    };
    let w = c.tx(&key("root"), "root", "recall.issue", &rec);
    c.ok(w);
    let w = c.ship(&p, "S1", &r.0, &trace_code(&p.0, "LATER"), 10);
    c.ok(w);
    let shipment = get::<Shipment>(&c.kv, Space::State, &shipment_key(&p.0, "S1"))
        .unwrap()
        .unwrap();
    let (today, until) = ("2024-03-01", "2024-03-04");

    let before_deadline = query::alerts(&c.kv, None, today, until, c.now).unwrap();
    assert_eq!(before_deadline.recalls.len(), 1);
    assert_eq!(before_deadline.recalls[0].batch.trace_code, recalled);
    assert_eq!(before_deadline.recalls[0].recall.by, "root");
    assert_eq!(
        before_deadline
            .near_expiry
            .iter()
            .map(|b| b.trace_code.clone())
            .collect::<Vec<_>>(),
        [trace_code(&p.0, "SOON")]
    );
    assert!(before_deadline.overdue_receipts.is_empty());
    assert!(before_deadline.complete);
    assert_eq!(before_deadline.scanned_batches, 3);

    let after = query::alerts(&c.kv, None, today, until, shipment.receipt_deadline_ms + 1).unwrap();
    assert_eq!(after.overdue_receipts_total, 1);
    assert_eq!(after.overdue_receipts[0].shipment_id, "S1");
    // By district: the coder's district for batches, the receiver's for receipts.
    let d2 = query::alerts(
        &c.kv,
        Some(D2),
        today,
        until,
        shipment.receipt_deadline_ms + 1,
    )
    .unwrap();
    assert_eq!(
        (
            d2.recalls_total,
            d2.near_expiry_total,
            d2.overdue_receipts_total
        ),
        (0, 0, 1)
    );
    let d1 = query::alerts(
        &c.kv,
        Some(D1),
        today,
        until,
        shipment.receipt_deadline_ms + 1,
    )
    .unwrap();
    assert_eq!(
        (
            d1.recalls_total,
            d1.near_expiry_total,
            d1.overdue_receipts_total
        ),
        (1, 1, 0)
    );
}

#[test]
fn a_portrait_counts_the_subjects_records_in_its_period() {
    let mut c = MemoryChain::new(spec());
    let p = c.register(1, D1, SubjectKind::Producer);
    let r = c.register(3, D2, SubjectKind::Restaurant);
    c.product(&p);
    for batch in ["A", "B"] {
        let w = c.code(&p, batch, 100, "2024-12-31");
        c.ok(w);
    }
    let (a, b) = (trace_code(&p.0, "A"), trace_code(&p.0, "B"));
    let w = c.ship(&p, "S1", &r.0, &a, 10);
    c.ok(w);
    let w = c.ship(&p, "S2", &r.0, &b, 10);
    c.ok(w);
    let w = c.answer(&r, &p.0, "S1", false);
    c.ok(w);
    let w = c.answer(&r, &p.0, "S2", true);
    c.ok(w);
    let rec = RecallIssue {
        trace_code: a.clone(),
        reason: "x".into(),
    };
    let w = c.tx(&key("root"), "root", "recall.issue", &rec);
    c.ok(w);
    let params = &c.spec.model;
    let day_ms = 86_400_000;
    let period = (T0 - day_ms, T0 + day_ms);

    let mine = query::portrait(&c.kv, params, &p.0, period, c.now)
        .unwrap()
        .unwrap();
    assert_eq!(mine.activity.batches_coded, 2);
    assert_eq!(mine.activity.shipments_out, 2);
    assert_eq!(mine.activity.active_days, 1);
    assert_eq!((mine.rejections.received, mine.rejections.made), (1, 0));
    assert_eq!(mine.recalls.len(), 1);
    assert_eq!(
        (mine.recalls[0].trace_code.as_str(), mine.recalls[0].role),
        (a.as_str(), query::RecallRole::Coder)
    );
    assert!(mine.complete);

    let theirs = query::portrait(&c.kv, params, &r.0, period, c.now)
        .unwrap()
        .unwrap();
    assert_eq!((theirs.receipts.due, theirs.receipts.on_time), (2, 2));
    assert_eq!(theirs.receipts.on_time_rate, Some(100.0));
    assert_eq!(theirs.rejections.made, 1);
    assert_eq!(theirs.rejections.list[0].shipment_id, "S2");
    // The received batch was recalled while the restaurant held it.
    assert_eq!(theirs.recalls.len(), 1);
    assert_eq!(theirs.recalls[0].role, query::RecallRole::Holder);
    assert_eq!(theirs.recalls[0].quantity, Some(10));

    // Outside the period nothing counts; an unknown subject has no portrait.
    let later = (T0 + 10 * day_ms, T0 + 11 * day_ms);
    let none = query::portrait(&c.kv, params, &p.0, later, c.now)
        .unwrap()
        .unwrap();
    assert_eq!(
        (none.activity.batches_coded, none.activity.active_days),
        (0, 0)
    );
    assert!(query::portrait(&c.kv, params, &uscc(99), period, c.now)
        .unwrap()
        .is_none());
}

#[test]
fn keys_rotate_and_old_signatures_stay_valid() {
    let mut c = MemoryChain::new(spec());
    let p = c.register(1, D1, SubjectKind::Producer);
    c.product(&p);
    let w = c.code(&p, "B1", 10, "2024-03-10");
    c.ok(w);
    let new_key = key("new");
    let bind = KeyChange {
        target: p.0.clone(),
        public_key: pk(&new_key),
    };
    let w = c.tx(&p.1, &p.0, "key.bind", &bind);
    c.ok(w);
    let revoke = KeyChange {
        target: p.0.clone(),
        public_key: pk(&p.1),
    };
    let w = c.tx(&p.1, &p.0, "key.revoke", &revoke);
    c.ok(w);
    // The old key no longer signs; the new one does; the earlier record stays committed.
    let w = c.code(&p, "B2", 10, "2024-03-10");
    assert_eq!(c.one(w), Some(RefusalCode::KeyNotActive));
    let p2 = (p.0.clone(), new_key.clone());
    let w = c.code(&p2, "B2", 10, "2024-03-10");
    c.ok(w);
    assert!(
        get::<Batch>(&c.kv, Space::State, &batch_key(&trace_code(&p.0, "B1")))
            .unwrap()
            .is_some()
    );
    // The last key cannot be revoked; a key cannot be bound twice.
    let last = KeyChange {
        target: p.0.clone(),
        public_key: pk(&new_key),
    };
    let w = c.tx(&new_key, &p.0, "key.revoke", &last);
    assert_eq!(c.one(w), Some(RefusalCode::LastKey));
    let w = c.tx(&new_key, &p.0, "key.bind", &bind);
    assert_eq!(c.one(w), Some(RefusalCode::KeyInUse));
}

/// A chain that accepts SM2 account keys.
fn sm2_spec() -> ChainSpec {
    let mut spec = spec();
    spec.sm2_accounts = true;
    spec
}

#[test]
fn an_sm2_account_registers_codes_ships_and_rotates() {
    let mut c = MemoryChain::new(sm2_spec());
    let sm2 = crate::signing::gmt_a2_key();
    let sm2_hex = sm2.public().to_hex();
    assert_eq!(sm2_hex.len(), 130);
    let id = uscc(1);
    let reg = SubjectRegister {
        uscc: id.clone(),
        name: "sm2 producer".into(),
        kind: SubjectKind::Producer,
        district: D1.into(),
        key_subject: false,
        public_key: sm2_hex.clone(),
        market: None,
    };
    let w = c.tx(&key("root"), "root", "subject.register", &reg);
    c.ok(w);
    let product = ProductRegister {
        product_id: "p".into(),
        name: "pork".into(),
        gtin: None,
        variety: "meat".into(),
        shelf_life_days: 5,
    };
    let w = c.tx_with(&sm2, &id, "product.register", &product);
    c.ok(w);
    let s = c.register(2, D2, SubjectKind::Supermarket);
    let code = BatchCode {
        batch_id: "B1".into(),
        product_id: "p".into(),
        quantity: 10,
        unit: "kg".into(),
        production_date: "2024-02-28".into(),
        expiry_date: "2024-03-10".into(),
        origin_region: D1.into(),
        upstream: None,
        certificates: vec![],
        rapid_tests: vec![],
    };
    let w = c.tx_with(&sm2, &id, "batch.code", &code);
    c.ok(w);
    let trace = trace_code(&id, "B1");
    let ship = ShipmentCreate {
        shipment_id: "S1".into(),
        to: s.0.clone(),
        lines: vec![ShipmentLine {
            trace_code: trace.clone(),
            quantity: 4,
        }],
    };
    let w = c.tx_with(&sm2, &id, "shipment.create", &ship);
    c.ok(w);
    let w = c.answer(&s, &id, "S1", false);
    c.ok(w);
    assert_eq!(c.holding(&trace, &id), 6);
    assert_eq!(c.holding(&trace, &s.0), 4);

    // The same SM2 key cannot be bound twice, not even to another account.
    let again = KeyChange {
        target: s.0.clone(),
        public_key: sm2_hex.clone(),
    };
    let w = c.tx(&s.1, &s.0, "key.bind", &again);
    assert_eq!(c.one(w), Some(RefusalCode::KeyInUse));

    // Rotate SM2 → Ed25519 → a fresh SM2 key; revoked keys stop signing.
    let ed = key("ed");
    let bind = KeyChange {
        target: id.clone(),
        public_key: pk(&ed),
    };
    let w = c.tx_with(&sm2, &id, "key.bind", &bind);
    c.ok(w);
    let revoke = KeyChange {
        target: id.clone(),
        public_key: sm2_hex.clone(),
    };
    let w = c.tx(&ed, &id, "key.revoke", &revoke);
    c.ok(w);
    let w = c.tx_with(&sm2, &id, "product.register", &product);
    assert_eq!(c.one(w), Some(RefusalCode::KeyNotActive));
    let fresh = AccountSigningKey::generate_sm2();
    let bind = KeyChange {
        target: id.clone(),
        public_key: fresh.public().to_hex(),
    };
    let w = c.tx(&ed, &id, "key.bind", &bind);
    c.ok(w);
    let code2 = BatchCode {
        batch_id: "B2".into(),
        ..code
    };
    let w = c.tx_with(&fresh, &id, "batch.code", &code2);
    c.ok(w);
}

#[test]
fn sm2_keys_are_refused_where_the_chain_or_the_role_does_not_take_them() {
    let sm2_hex = crate::signing::gmt_a2_key().public().to_hex();
    let register = |public_key: String| SubjectRegister {
        uscc: uscc(1),
        name: "s1".into(),
        kind: SubjectKind::Producer,
        district: D1.into(),
        key_subject: false,
        public_key,
        market: None,
    };
    // Without `sm2_accounts`, an SM2 key is refused and changes nothing.
    let mut c = MemoryChain::new(spec());
    let w = c.tx(
        &key("root"),
        "root",
        "subject.register",
        &register(sm2_hex.clone()),
    );
    assert_eq!(c.one(w), Some(RefusalCode::InvalidField));
    let w = c.tx(
        &key("root"),
        "root",
        "subject.register",
        &register(pk(&key("x"))),
    );
    c.ok(w);

    let mut c = MemoryChain::new(sm2_spec());
    // A compressed point (02/03 ‖ x) and a point off the curve are refused.
    let compressed = format!("02{}", &sm2_hex[2..66]);
    let w = c.tx(
        &key("root"),
        "root",
        "subject.register",
        &register(compressed),
    );
    assert_eq!(c.one(w), Some(RefusalCode::InvalidField));
    let mut off_curve = sm2_hex.clone();
    off_curve.replace_range(128.., if sm2_hex.ends_with('3') { "4" } else { "3" });
    let w = c.tx(
        &key("root"),
        "root",
        "subject.register",
        &register(off_curve),
    );
    assert_eq!(c.one(w), Some(RefusalCode::InvalidField));
    // Upper-case hex is not the key's one spelling.
    let w = c.tx(
        &key("root"),
        "root",
        "subject.register",
        &register(sm2_hex.to_uppercase()),
    );
    assert_eq!(c.one(w), Some(RefusalCode::InvalidField));
    // Validators sign C2SP checkpoints with Ed25519: never an SM2 key.
    let add = ValidatorAdd {
        node_id: 9,
        name: "v9".into(),
        public_key: sm2_hex.clone(),
        address: "/ip4/127.0.0.1/tcp/9".into(),
    };
    let w = c.tx(&key("root"), "root", "validator.add", &add);
    assert_eq!(c.one(w), Some(RefusalCode::InvalidField));
}

#[test]
fn an_sm2_root_regulator_needs_sm2_accounts() {
    let mut spec = spec();
    spec.root_regulators[0].public_key = crate::signing::gmt_a2_key().public().to_hex();
    let err = spec.validate().unwrap_err().to_string();
    assert!(err.contains("does not accept SM2"), "{err}");
    spec.sm2_accounts = true;
    spec.validate().unwrap();
}

#[test]
fn time_window_and_chain_id_are_enforced() {
    let mut c = MemoryChain::new(spec());
    let p = c.register(1, D1, SubjectKind::Producer);
    c.product(&p);
    let now = c.now;
    c.now = now - 2 * DAY;
    let stale = c.code(&p, "B1", 1, "2024-03-10");
    c.now = now + 3_600_000;
    let future = c.code(&p, "B2", 1, "2024-03-10");
    c.now = now;
    assert_eq!(c.one(stale), Some(RefusalCode::Stale));
    assert_eq!(c.one(future), Some(RefusalCode::FromFuture));
    c.spec.chain_id = "other".into();
    let other = c.code(&p, "B3", 1, "2024-03-10");
    c.spec.chain_id = "zsl-test".into();
    assert_eq!(c.one(other), Some(RefusalCode::WrongChain));
}

#[test]
fn jurisdiction_is_checked() {
    let mut c = MemoryChain::new(spec());
    let county = key("county");
    let reg = AccountRegister {
        id: "county".into(),
        role: AuthorityRole::Regulator,
        jurisdiction: D1.into(),
        name: "c".into(),
        public_key: pk(&county),
    };
    let w = c.tx(&key("root"), "root", "account.register", &reg);
    c.ok(w);
    let k = key("x");
    let subj = |d: &str, n: u32| SubjectRegister {
        uscc: uscc(n),
        name: "x".into(),
        kind: SubjectKind::Restaurant,
        district: d.into(),
        key_subject: false,
        public_key: pk(&key(&n.to_string())),
        market: None,
    };
    let w = c.tx(&county, "county", "subject.register", &subj(D2, 5));
    assert_eq!(c.one(w), Some(RefusalCode::NoJurisdiction));
    let w = c.tx(&county, "county", "subject.register", &subj(D1, 5));
    assert_eq!(c.one(w), None);
    let w = c.tx(&county, "county", "subject.register", &subj("110101", 6));
    assert_eq!(c.one(w), Some(RefusalCode::UnknownDistrict));
    // A county regulator cannot create a city-level account.
    let up = AccountRegister {
        id: "city".into(),
        role: AuthorityRole::Regulator,
        jurisdiction: "330100".into(),
        name: "c".into(),
        public_key: pk(&k),
    };
    let w = c.tx(&county, "county", "account.register", &up);
    assert_eq!(c.one(w), Some(RefusalCode::NoJurisdiction));
    // Catalogues are the province's.
    let cat = KeyVarietiesUpdate {
        version: 2,
        varieties: vec![Variety {
            code: "fish".into(),
            name: "fish".into(),
        }],
    };
    let w = c.tx(&county, "county", "catalogue.key_varieties", &cat);
    assert_eq!(c.one(w), Some(RefusalCode::NoJurisdiction));
    let w = c.tx(&key("root"), "root", "catalogue.key_varieties", &cat);
    assert_eq!(c.one(w), None);
    let w = c.tx(&key("root"), "root", "catalogue.key_varieties", &cat);
    assert_eq!(c.one(w), Some(RefusalCode::StaleCatalogue));
}

#[test]
fn adjustment_points_parse_exactly() {
    for (text, want) in [
        ("0.5", Some(50)),
        ("2", Some(200)),
        ("1.25", Some(125)),
        ("0.125", None),
        ("1e2", Some(10_000)),
        ("-0.5", Some(-50)),
    ] {
        let n: serde_json::Number = serde_json::from_str(text).unwrap();
        assert_eq!(points_hundredths(&n), want, "{text}");
    }
}

/// Scores do not depend on how the same records are grouped into blocks
/// (all blocks here fall on the same natural day).
#[test]
fn scores_do_not_depend_on_block_grouping() {
    let build = |group: usize| {
        let mut c = MemoryChain::new(spec());
        let p = c.register(1, D1, SubjectKind::Producer);
        let s = c.register(2, D2, SubjectKind::Supermarket);
        c.product(&p);
        let mut wires = Vec::new();
        for i in 0..12 {
            wires.push(c.code(&p, &format!("B{i}"), 5, "2024-03-10"));
        }
        for i in 0..12 {
            wires.push(c.ship(
                &p,
                &format!("S{i}"),
                &s.0,
                &trace_code(&p.0, &format!("B{i}")),
                5,
            ));
        }
        for i in 0..12 {
            wires.push(c.answer(&s, &p.0, &format!("S{i}"), i % 4 == 0));
        }
        for chunk in wires.chunks(group) {
            let applied = c.block(chunk.to_vec());
            assert!(applied.outcomes.iter().all(|o| o.result.is_ok()));
        }
        let regions = c.spec.district_codes();
        let period = crate::score::Period::parse("2024-03-01", "2024-03-31").unwrap();
        serde_json::to_value(
            crate::score::scores(&c.kv, &c.spec.model, &regions, period, None).unwrap(),
        )
        .unwrap()
    };
    let one = build(36);
    assert_eq!(one["districts"][D1]["N"], 12);
    assert_eq!(one["districts"][D1]["scanning"]["c"], 3);
    for group in [1, 5, 7] {
        assert_eq!(build(group), one, "grouping by {group}");
    }
}

mod props {
    use super::*;
    use proptest::prelude::*;

    #[derive(Debug, Clone)]
    enum Op {
        Ship { from: usize, to: usize, qty: u64 },
        Answer { shipment: usize, reject: bool },
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            (0usize..3, 0usize..3, 0u64..60).prop_map(|(from, to, qty)| Op::Ship { from, to, qty }),
            (0usize..20, any::<bool>())
                .prop_map(|(shipment, reject)| Op::Answer { shipment, reject }),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(24))]
        /// Whatever is shipped, received, rejected or refused, the coded quantity is
        /// conserved (held + in transit), and a refused operation changes no state.
        #[test]
        fn quantity_is_conserved(ops in prop::collection::vec(op(), 1..25)) {
            let mut c = MemoryChain::new(spec());
            let subjects: Vec<(String, SigningKey)> = (0..3).map(|i| c.register(10 + i, D1, SubjectKind::Wholesaler)).collect();
            c.product(&subjects[0]);
            let w = c.code(&subjects[0], "B", 100, "2024-03-10");
            c.ok(w);
            let t = trace_code(&subjects[0].0, "B");
            let mut shipments: Vec<(usize, usize, String)> = Vec::new();
            for op in ops {
                let wire = match &op {
                    Op::Ship { from, to, qty } => {
                        let id = format!("S{}", shipments.len());
                        let w = c.ship(&subjects[*from], &id, &subjects[*to].0, &t, *qty);
                        shipments.push((*from, *to, id));
                        w
                    }
                    Op::Answer { shipment, reject } => {
                        let Some((from, to, id)) = shipments.get(*shipment).cloned() else { continue };
                        c.answer(&subjects[to], &subjects[from].0, &id, *reject)
                    }
                };
                let before = c.kv.clone();
                let refused = c.one(wire).is_some();
                if refused {
                    // Only the head's time would differ; no block was cut, so nothing at all.
                    prop_assert_eq!(crate::refusals::rows_besides(&c.kv), crate::refusals::rows_besides(&before));
                }
                let held: u64 = subjects.iter().map(|s| c.holding(&t, &s.0)).sum();
                let mut transit = 0;
                for (from, _, id) in &shipments {
                    if let Some(sh) = get::<Shipment>(&c.kv, Space::State, &shipment_key(&subjects[*from].0, id)).unwrap() {
                        if sh.status == ShipmentStatus::Pending {
                            transit += sh.lines.iter().map(|l| l.quantity).sum::<u64>();
                        }
                    }
                }
                prop_assert_eq!(held + transit, 100);
            }
        }

        /// Two nodes applying the same proposals get the same blocks.
        #[test]
        fn application_is_deterministic(n in 1usize..6) {
            let mut a = MemoryChain::new(spec());
            let mut b = MemoryChain::new(spec());
            let p = a.register(1, D1, SubjectKind::Producer);
            b.register(1, D1, SubjectKind::Producer);
            let wires: Vec<Vec<u8>> = (0..n).map(|i| {
                let rec = DocumentNotarize { document_hash: hex::encode(sha256(&[i as u8])), title: "t".into(), media_type: None, note: None };
                a.tx(&p.1, &p.0, "document.notarize", &rec)
            }).collect();
            let x = a.block(wires.clone());
            let y = b.block(wires);
            prop_assert_eq!(x.block.map(|b| b.hash), y.block.map(|b| b.hash));
            prop_assert_eq!(x.changes, y.changes);
        }
    }
}

mod sealing {
    use super::*;
    use crate::block::Cosignature;
    use crate::seal;

    fn validator_keys() -> Vec<(String, SigningKey)> {
        testkit::validator_keys(3)
    }

    fn chain() -> MemoryChain {
        MemoryChain::new(testkit::spec(testkit::three_districts(), 3))
    }

    fn sign(c: &MemoryChain, height: u64, who: usize) -> Cosignature {
        let block = read_block(&c.kv, height).unwrap().unwrap();
        let cp = seal::checkpoint_of(&seal::log_identity(&c.kv, &c.spec).unwrap(), &block.header)
            .unwrap();
        let (name, k) = &validator_keys()[who];
        seal::cosign(&cp, name, k)
    }

    #[test]
    fn a_quorum_of_valid_signatures_seals_and_nothing_less() {
        let mut c = chain();
        c.register(1, D1, SubjectKind::Producer);
        let h = read_head(&c.kv).unwrap().unwrap().height;
        assert_eq!(seal::latest_sealed_height(&c.kv).unwrap(), None);

        // A bad signature, a stranger, a signature for a block without a
        // checkpoint (genesis) and one for a block not yet cut are dropped.
        let mut bad = sign(&c, h, 0);
        bad.sig[0] ^= 1;
        let stranger = seal::cosign(
            &seal::checkpoint_of(
                &seal::log_identity(&c.kv, &c.spec).unwrap(),
                &read_block(&c.kv, h).unwrap().unwrap().header,
            )
            .unwrap(),
            "validator-9",
            &key("validator-9"),
        );
        let mut early = sign(&c, h, 1);
        early.height = h + 5;
        let mut genesis_sig = sign(&c, h, 1);
        genesis_sig.height = 0;
        let applied = c.block_with(vec![], vec![bad, stranger, early, genesis_sig]);
        assert!(applied.block.is_none(), "nothing valid: no block");

        // One valid signature of three: recorded, not sealed (quorum 2).
        let sigs = vec![sign(&c, h, 0)];
        let applied = c.block_with(vec![], sigs);
        let block = applied.block.expect("a signature-only block");
        assert_eq!(block.header.tx_count, 0);
        assert_eq!(block.cosigs.len(), 1);
        assert!(!seal::is_sealed(&c.kv, h).unwrap());
        // A block that did not grow the tree has no checkpoint to sign.
        assert!(
            seal::checkpoint_of(&seal::log_identity(&c.kv, &c.spec).unwrap(), &block.header)
                .is_none()
        );

        // The same signature again is a duplicate; a second validator seals.
        let sigs = vec![sign(&c, h, 0), sign(&c, h, 2)];
        let applied = c.block_with(vec![], sigs);
        assert_eq!(applied.block.unwrap().cosigs.len(), 1);
        assert!(seal::is_sealed(&c.kv, h).unwrap());
        assert_eq!(seal::latest_sealed_height(&c.kv).unwrap(), Some(h));
        assert_eq!(seal::sealed_at_or_after(&c.kv, 1).unwrap(), Some(h));
        assert_eq!(seal::sealed_at_or_after(&c.kv, h + 1).unwrap(), None);

        let (cp, note, set) = seal::signed_checkpoint(&c.kv, &c.spec, h).unwrap().unwrap();
        assert_eq!(cp.height, h);
        let log = seal::log_identity(&c.kv, &c.spec).unwrap();
        let known = seal::note_keys(&log, &set).unwrap();
        let signed = note
            .verify_quorum(&known, seal::quorum(&c.spec, &set))
            .unwrap();
        assert_eq!(
            signed.signers,
            vec!["validator-1".to_string(), "validator-3".to_string()]
        );
        assert!(
            note.signatures.iter().all(|s| s.name == log.origin),
            "v2: every validator signs under the origin"
        );
        // The rendered note parses back and still verifies.
        let back = crate::checkpoint::SignedNote::parse(&note.render()).unwrap();
        back.verify_quorum(&known, 2).unwrap();

        // The whole chain, signature blocks included, re-verifies.
        crate::chain::verify_chain(&c.kv, &c.spec).unwrap();
    }

    #[test]
    fn signatures_and_transactions_share_a_block() {
        let mut c = chain();
        c.register(1, D1, SubjectKind::Producer);
        let h = read_head(&c.kv).unwrap().unwrap().height;
        let rec = SubjectRegister {
            uscc: uscc(2),
            name: "s2".into(),
            kind: SubjectKind::Producer,
            district: D1.into(),
            key_subject: false,
            public_key: pk(&key("s2")),
            market: None,
        };
        let w = c.tx(&key("root"), "root", "subject.register", &rec);
        let sigs = vec![sign(&c, h, 0), sign(&c, h, 1)];
        let applied = c.block_with(vec![w], sigs);
        let block = applied.block.unwrap();
        assert_eq!((block.header.tx_count, block.cosigs.len()), (1, 2));
        assert!(seal::is_sealed(&c.kv, h).unwrap());
        // The new block has a checkpoint of its own, not yet signed.
        assert!(
            seal::checkpoint_of(&seal::log_identity(&c.kv, &c.spec).unwrap(), &block.header)
                .is_some()
        );
        assert!(!seal::is_sealed(&c.kv, block.header.height).unwrap());
        crate::chain::verify_chain(&c.kv, &c.spec).unwrap();
    }
}
