use super::*;
use crate::block::Cosignature;
use crate::checkpoint::Checkpoint;
use crate::hash::sha256;
use crate::record::{DocumentNotarize, SubjectKind, SubjectRegister};
use crate::testkit::{self, key, pk, validator_keys, MemoryChain, D1};

/// Three validators (quorum 2); a subject's notarization sealed by the
/// next block. Returns the chain and the record's bundle.
fn fixture() -> (MemoryChain, Bundle) {
    let spec = testkit::spec(vec![testkit::district(D1, "上城区", "330100", "杭州市")], 3);
    let mut c = MemoryChain::new(spec);
    let id = crate::validate::synthetic_uscc(D1, 1);
    let k = key("s1");
    let rec = SubjectRegister {
        uscc: id.clone(),
        name: "s1".into(),
        kind: SubjectKind::Producer,
        district: D1.into(),
        key_subject: false,
        public_key: pk(&k),
        market: None,
    };
    let w = c.tx(&key("root"), "root", "subject.register", &rec);
    c.ok(w);
    let doc = DocumentNotarize {
        document_hash: hex::encode(sha256(b"report")),
        title: "检测报告".into(),
        media_type: None,
        note: None,
    };
    let w = c.tx(&k, &id, "document.notarize", &doc);
    let applied = c.block(vec![w]);
    let block = applied.block.unwrap();
    let cosigs = sign(&c, block.header.height, &[0, 1, 2]);
    c.block_with(vec![], cosigs);
    let b = evidence::build(&c.kv, &c.spec, &block.tx_ids[0].0).unwrap();
    (c, b)
}

fn sign(c: &MemoryChain, height: u64, who: &[usize]) -> Vec<Cosignature> {
    let header = crate::history::read_header(&c.kv, height).unwrap().unwrap();
    let cp = seal::checkpoint_of(&seal::log_identity(&c.kv, &c.spec).unwrap(), &header).unwrap();
    let keys = validator_keys(8);
    who.iter()
        .map(|&i| seal::cosign(&cp, &keys[i].0, &keys[i].1))
        .collect()
}

fn checkpoint(b: &Bundle) -> Checkpoint {
    evidence::parse_checkpoint(&b.checkpoint).unwrap()
}

/// Receipt signatures by validators `who` (indices into the test keys).
fn receipts(g: &Genesis, b: &Bundle, who: &[usize]) -> Vec<ReceiptSignature> {
    let keys = validator_keys(8);
    let root = checkpoint(b).root;
    who.iter()
        .map(|&i| ReceiptSignature {
            validator: keys[i].0.clone(),
            signature: sign_receipt(&keys[i].1, &g.log.origin, &keys[i].0, &root),
        })
        .collect()
}

fn statement(who: &[usize]) -> (Genesis, Bundle, Vec<u8>) {
    let (c, b) = fixture();
    let g = Genesis::new(&c.spec).unwrap();
    let sigs = receipts(&g, &b, who);
    let bytes = transparent_statement(&b, &g.log.origin, &sigs).unwrap();
    (g, b, bytes)
}

#[test]
fn a_statement_with_a_quorum_of_receipts_verifies() {
    let (g, b, bytes) = statement(&[0, 2]);
    assert!(is_statement(&bytes));
    let r = verify(&bytes, &g);
    assert!(r.ok(), "{r:#?}");
    let names: Vec<&str> = r.checks.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(names.first(), Some(&check::STATEMENT));
    assert!(names.contains(&evidence::check::CHECKPOINT_SIGNATURES));
    assert_eq!(
        &names[names.len() - 2..],
        [check::SIGNED_STATEMENT, check::RECEIPTS]
    );
    let receipts = r.checks.last().unwrap();
    assert!(receipts.detail.contains("2 of 3"), "{}", receipts.detail);
    // The payload is the body as signed, and its id is the bundle's.
    let s = CoseSign1::from_tagged_slice(&bytes).unwrap();
    let mut signed = TX_DOMAIN.to_vec();
    signed.extend_from_slice(s.payload.as_ref().unwrap());
    assert_eq!(H32(sha256(&signed)), b.tx_id);
}

#[test]
fn fewer_receipts_than_the_quorum_fail() {
    let (g, _, bytes) = statement(&[1]);
    let r = verify(&bytes, &g);
    assert_eq!(r.failed(), [check::RECEIPTS]);
    assert!(r.checks.last().unwrap().detail.contains("2 needed"));
    // The same validator twice still counts once.
    let (c, b) = fixture();
    let g = Genesis::new(&c.spec).unwrap();
    let mut sigs = receipts(&g, &b, &[1]);
    sigs.push(sigs[0].clone());
    let bytes = transparent_statement(&b, &g.log.origin, &sigs).unwrap();
    assert_eq!(verify(&bytes, &g).failed(), [check::RECEIPTS]);
}

#[test]
fn a_receipt_by_an_unknown_key_is_ignored_and_a_bad_known_one_fails() {
    let (c, b) = fixture();
    let g = Genesis::new(&c.spec).unwrap();
    let mut sigs = receipts(&g, &b, &[0, 1]);
    let stranger = key("stranger");
    sigs.push(ReceiptSignature {
        validator: "stranger".into(),
        signature: sign_receipt(&stranger, &g.log.origin, "stranger", &checkpoint(&b).root),
    });
    let bytes = transparent_statement(&b, &g.log.origin, &sigs).unwrap();
    assert!(verify(&bytes, &g).ok());
    // Validator 2's name on validator 0's signature: a known key that fails.
    let mut sigs = receipts(&g, &b, &[0, 1, 2]);
    sigs[2].signature = sigs[0].signature;
    let bytes = transparent_statement(&b, &g.log.origin, &sigs).unwrap();
    let r = verify(&bytes, &g);
    assert_eq!(r.failed(), [check::RECEIPTS]);
    assert!(r.checks.last().unwrap().detail.contains("does not verify"));
}

#[test]
fn a_receipt_over_another_root_fails() {
    let (c, b) = fixture();
    let g = Genesis::new(&c.spec).unwrap();
    let keys = validator_keys(3);
    let other = H32([7; 32]);
    let sigs: Vec<ReceiptSignature> = (0..2)
        .map(|i| ReceiptSignature {
            validator: keys[i].0.clone(),
            signature: sign_receipt(&keys[i].1, &g.log.origin, &keys[i].0, &other),
        })
        .collect();
    let bytes = transparent_statement(&b, &g.log.origin, &sigs).unwrap();
    assert_eq!(verify(&bytes, &g).failed(), [check::RECEIPTS]);
    // And a receipt for another log (origin) fails too.
    let sigs = receipts(&g, &b, &[0, 1]);
    let bytes = transparent_statement(&b, "zsl.example/elsewhere", &sigs).unwrap();
    assert_eq!(verify(&bytes, &g).failed(), [check::RECEIPTS]);
}

#[test]
fn every_single_byte_change_outside_the_bundle_fails_and_inside_it_too() {
    // Exactly a quorum of receipts: with one more, a receipt whose kid is
    // changed to a name nobody knows is rightly ignored.
    let (g, b, bytes) = statement(&[0, 1]);
    let json = serde_json::to_vec(&b).unwrap();
    let at = bytes
        .windows(json.len())
        .position(|w| w == json.as_slice())
        .unwrap();
    let inside = at..at + json.len();
    let mut tried = 0;
    for i in 0..bytes.len() {
        // Every byte of the COSE structure, signed statement and receipts;
        // every 37th of the bundle (whose own tampering tests are in
        // evidence::tests).
        if inside.contains(&i) && (i - at) % 37 != 0 {
            continue;
        }
        let mut t = bytes.clone();
        t[i] ^= 0x01;
        let r = verify(&t, &g);
        assert!(
            !r.ok(),
            "flipping byte {i} of {} still verifies",
            bytes.len()
        );
        tried += 1;
    }
    assert!(tried > 1_000, "{tried}");
}

#[test]
fn garbage_and_a_bundle_alone_fail_as_statements() {
    let (g, b, _) = statement(&[0, 1]);
    for junk in [&b""[..], b"\xd2", b"\xd2\x84\x40\xa0\xf6\x40", b"{}"] {
        assert_eq!(verify(junk, &g).failed(), [check::STATEMENT]);
    }
    let json = serde_json::to_vec(&b).unwrap();
    assert!(!is_statement(&json));
    assert_eq!(verify(&json, &g).failed(), [check::STATEMENT]);
    let big = vec![0xd2; STATEMENT_BYTES_MAX + 1];
    assert_eq!(verify(&big, &g).failed(), [check::STATEMENT]);
}

#[test]
fn receipt_signatures_verify_for_their_validator_only() {
    let (g, b, _) = statement(&[0]);
    let keys = validator_keys(2);
    let root = checkpoint(&b).root;
    let sig = sign_receipt(&keys[0].1, &g.log.origin, &keys[0].0, &root);
    let vk = keys[0].1.verifying_key();
    assert!(receipt_signature_verifies(
        &vk,
        &g.log.origin,
        &keys[0].0,
        &root,
        &sig
    ));
    assert!(!receipt_signature_verifies(
        &vk,
        &g.log.origin,
        &keys[1].0,
        &root,
        &sig
    ));
    assert!(!receipt_signature_verifies(
        &vk,
        &g.log.origin,
        &keys[0].0,
        &H32([0; 32]),
        &sig
    ));
    let other = keys[1].1.verifying_key();
    assert!(!receipt_signature_verifies(
        &other,
        &g.log.origin,
        &keys[0].0,
        &root,
        &sig
    ));
}
