use super::*;
use crate::block::Cosignature;
use crate::checkpoint::NoteSignature;
use crate::hash::sha256;
use crate::history::{read_head, tree_key};
use crate::kv::{KvWrite, MemoryKv};
use crate::record::{DocumentNotarize, SubjectKind, SubjectRegister};
use crate::testkit::{self, key, pk, validator_keys, MemoryChain, D1};
use ed25519_dalek::SigningKey;
use proptest::prelude::*;
use serde_json::json;

/// An in-memory chain whose validators sign when told to.
struct Chain(MemoryChain);

impl std::ops::Deref for Chain {
    type Target = MemoryChain;
    fn deref(&self) -> &MemoryChain {
        &self.0
    }
}

impl std::ops::DerefMut for Chain {
    fn deref_mut(&mut self) -> &mut MemoryChain {
        &mut self.0
    }
}

fn spec(validators: usize) -> ChainSpec {
    testkit::spec(
        vec![testkit::district(D1, "上城区", "330100", "杭州市")],
        validators,
    )
}

impl Chain {
    fn new(validators: usize) -> Self {
        Chain(MemoryChain::new(spec(validators)))
    }

    /// Applies a block that must refuse nothing; returns its height and
    /// the ids of its transactions.
    fn block(&mut self, txs: Vec<Vec<u8>>, cosigs: Vec<Cosignature>) -> (u64, Vec<H32>) {
        let applied = self.0.block_with(txs, cosigs);
        for o in &applied.outcomes {
            if let Err(r) = &o.result {
                panic!("refused: {r}");
            }
        }
        let b = applied.block.unwrap();
        (b.header.height, b.tx_ids)
    }

    fn sign(&self, height: u64, who: &[usize]) -> Vec<Cosignature> {
        let block = crate::history::read_block(&self.kv, height)
            .unwrap()
            .unwrap();
        let cp = seal::checkpoint_of(
            &seal::log_identity(&self.kv, &self.spec).unwrap(),
            &block.header,
        )
        .unwrap();
        let keys = validator_keys(8);
        who.iter()
            .map(|&i| seal::cosign(&cp, &keys[i].0, &keys[i].1))
            .collect()
    }

    fn register(&mut self, label: &str, n: u32) -> (String, SigningKey) {
        let id = crate::validate::synthetic_uscc(D1, n);
        let k = key(label);
        let rec = SubjectRegister {
            uscc: id.clone(),
            name: label.into(),
            kind: SubjectKind::Producer,
            district: D1.into(),
            key_subject: false,
            public_key: pk(&k),
            market: None,
        };
        let w = self.tx(&key("root"), "root", "subject.register", &rec);
        self.block(vec![w], vec![]);
        (id, k)
    }

    fn notarize(&mut self, who: &(String, SigningKey), title: &str) -> Vec<u8> {
        let rec = DocumentNotarize {
            document_hash: hex::encode(sha256(title.as_bytes())),
            title: title.into(),
            media_type: Some("application/pdf".into()),
            note: None,
        };
        self.tx(&who.1, &who.0, "document.notarize", &rec)
    }
}

/// Three validators (quorum 2). Returns the chain, the id of a subject's
/// notarization whose block was never signed itself (so its bundle spans
/// two headers), and the id of a root regulator's record (genesis key).
fn fixture() -> (Chain, H32, H32) {
    let mut c = Chain::new(3);
    let s = c.register("s1", 1); // block 1
    let sigs = c.sign(1, &[0, 1]);
    let w = c.notarize(&s, "检测报告 2024-03");
    let (h2, ids) = c.block(vec![w], sigs); // block 2: seals block 1
    let doc = ids[0];
    let w = c.notarize(&(String::from("root"), key("root")), "root memo");
    let (h3, ids) = c.block(vec![w], vec![]); // block 3, block 2 left unsigned
    let root_doc = ids[0];
    c.block(vec![], c.sign(h3, &[0, 1, 2])); // block 4 seals block 3
    assert!(!seal::is_sealed(&c.kv, h2).unwrap());
    (c, doc, root_doc)
}

#[test]
fn a_good_bundle_verifies_and_round_trips() {
    let (c, doc, root_doc) = fixture();
    for id in [doc, root_doc] {
        let b = build(&c.kv, &c.spec, &id.0).unwrap();
        let r = verify(&b, &c.spec);
        assert!(r.ok(), "{r:#?}");
        assert_eq!(r.checks.len(), 10);
        let json = serde_json::to_vec_pretty(&b).unwrap();
        let back = parse_bundle(&json).unwrap();
        assert_eq!(back, b);
        assert!(verify(&back, &c.spec).ok());
    }
    let b = build(&c.kv, &c.spec, &doc.0).unwrap();
    assert_eq!(
        b.headers.len(),
        2,
        "block 2 is proved by block 3's checkpoint"
    );
    assert!(b.signer_key.binding.is_some());
    assert!(b.summary.zh.contains("检测报告"));
    for h in &b.headers {
        let block = crate::history::read_block(&c.kv, h.height)
            .unwrap()
            .unwrap();
        assert_eq!(&block.header, h, "the header-only read");
    }
    let (cp, note, _) = sealed_checkpoint(&c.kv, &c.spec, 3).unwrap().unwrap();
    let (cp2, note2, _) = seal::signed_checkpoint(&c.kv, &c.spec, 3).unwrap().unwrap();
    assert_eq!((cp, note), (cp2, note2));
    let b = build(&c.kv, &c.spec, &root_doc.0).unwrap();
    assert!(b.signer_key.binding.is_none(), "a genesis key");
    assert_eq!(b.headers.len(), 1);
}

/// What the node never writes is refused when read back: an unknown header
/// field, uppercase hex, a member named twice in the record's body.
#[test]
fn a_bundle_the_node_would_never_emit_does_not_parse() {
    let (c, doc, _) = fixture();
    let b = build(&c.kv, &c.spec, &doc.0).unwrap();
    let good = serde_json::to_string(&b).unwrap();
    assert!(parse_bundle(good.as_bytes()).is_ok());
    let tx = b.tx_id.to_string();
    let first_type = format!(
        "\"type\":\"{}\"",
        b.record["body"]["type"].as_str().unwrap()
    );
    for (what, bad) in [
        (
            "unknown header field",
            good.replacen("\"headers\":[{", "\"headers\":[{\"extra\":1,", 1),
        ),
        ("uppercase hex", good.replacen(&tx, &tx.to_uppercase(), 1)),
        (
            "duplicate body key",
            good.replacen(&first_type, &format!("{first_type},{first_type}"), 1),
        ),
    ] {
        assert_ne!(bad, good, "{what}: the mutation applied");
        assert!(parse_bundle(bad.as_bytes()).is_err(), "{what} parsed");
    }
}

/// Root adds validator-4 in block 1 (in force from block 2: four
/// validators, quorum 3); a record in block 2 is sealed by validators 2-4.
fn membership_fixture() -> (Chain, H32) {
    let mut c = Chain::new(3);
    let add = crate::record::ValidatorAdd {
        node_id: 4,
        name: "validator-4".into(),
        public_key: pk(&key("validator-4")),
        address: "/ip4/127.0.0.1/tcp/1".into(),
    };
    let w = c.tx(&key("root"), "root", "validator.add", &add);
    let (h1, _) = c.block(vec![w], vec![]);
    let sigs = c.sign(h1, &[0, 1]);
    let w = c.notarize(&(String::from("root"), key("root")), "after the change");
    let (h2, ids) = c.block(vec![w], sigs);
    assert_eq!(seal::validator_set_at(&c.kv, h2).unwrap().len(), 4);
    c.block(vec![], c.sign(h2, &[1, 2, 3]));
    (c, ids[0])
}

#[test]
fn membership_records_carry_the_set_from_genesis() {
    let (c, id) = membership_fixture();
    let b = build(&c.kv, &c.spec, &id.0).unwrap();
    assert_eq!(b.validators.changes.len(), 1);
    assert_eq!((b.validators.set.len(), b.validators.quorum), (4, 3));
    let r = verify(&b, &c.spec);
    assert!(r.ok(), "{r:#?}");
    // Without the change the set does not follow, and validator-4's
    // signature is by a stranger.
    let mut m = b.clone();
    m.validators.changes.clear();
    let r = verify(&m, &c.spec);
    assert!(r.failed().contains(&check::VALIDATOR_SET), "{r:#?}");
    assert!(
        r.checks.iter().any(|c| c.detail.contains("ignored")),
        "{r:#?}"
    );
    // A membership record not signed by a genesis root regulator.
    let mut m = b.clone();
    let body = m.validators.changes[0].record["body"].clone();
    let body = body.as_object().unwrap().clone();
    let forged = SignedTx::sign(body, &key("validator-4")).unwrap();
    m.validators.changes[0].record = forged.to_json();
    m.validators.changes[0].tx_id = H32(forged.id);
    assert_eq!(
        verify(&m, &c.spec).failed(),
        vec![check::VALIDATOR_SET, check::CHECKPOINT_SIGNATURES]
    );
    // Every byte and field of this bundle too.
    mutate_everything(&serde_json::to_value(&b).unwrap(), &c.spec);
}

#[test]
fn unsealed_and_unknown_transactions_are_refused() {
    let mut c = Chain::new(3);
    let s = c.register("s1", 1);
    let w = c.notarize(&s, "x");
    let (_, ids) = c.block(vec![w], vec![]);
    let e = build(&c.kv, &c.spec, &ids[0].0).unwrap_err();
    assert!(matches!(e, EvidenceError::NotYetSealed { .. }), "{e}");
    assert!(e.to_string().contains("not yet sealed"));
    // One signature of three is not a quorum.
    let sigs = c.sign(2, &[0]);
    c.block(vec![], sigs);
    assert!(matches!(
        build(&c.kv, &c.spec, &ids[0].0),
        Err(EvidenceError::NotYetSealed { .. })
    ));
    assert!(matches!(
        build(&c.kv, &c.spec, &[7; 32]),
        Err(EvidenceError::NotFound(_))
    ));
}

#[test]
fn tlog_proof_text_round_trips_and_verifies() {
    let (c, doc, _) = fixture();
    let b = build(&c.kv, &c.spec, &doc.0).unwrap();
    let text = tlog_proof(&b);
    assert!(text.starts_with("c2sp.org/tlog-proof@v1\nextra "));
    let (extra, index, path, note) = parse_tlog_proof(&text).unwrap();
    assert_eq!(
        (extra, index, note.as_str()),
        (doc.0.to_vec(), b.leaf_index, b.checkpoint.as_str())
    );
    let cp = parse_checkpoint(&note).unwrap();
    let path: Vec<_> = path.iter().map(|h| h.0).collect();
    merkle::verify_inclusion(
        &merkle::leaf_hash(&doc.0),
        index,
        cp.tree_size,
        &path,
        &cp.root.0,
    )
    .unwrap();
}

/// Every scalar in the bundle's JSON, with its path.
fn leaves(v: &Value, path: String, out: &mut Vec<(String, Value)>) {
    match v {
        Value::Object(m) => {
            for (k, x) in m {
                leaves(x, format!("{path}/{k}"), out);
            }
        }
        Value::Array(a) => {
            for (i, x) in a.iter().enumerate() {
                leaves(x, format!("{path}/{i}"), out);
            }
        }
        other => out.push((path, other.clone())),
    }
}

fn arrays(v: &Value, path: String, out: &mut Vec<String>) {
    match v {
        Value::Object(m) => {
            for (k, x) in m {
                arrays(x, format!("{path}/{k}"), out);
            }
        }
        Value::Array(a) => {
            out.push(path.clone());
            for (i, x) in a.iter().enumerate() {
                arrays(x, format!("{path}/{i}"), out);
            }
        }
        _ => {}
    }
}

/// The check that must fail when the field at `path` changes.
fn expected_check(path: &str) -> &'static [&'static str] {
    let top = path.split('/').nth(1).unwrap_or("");
    match top {
        "format" | "chain_id" | "genesis_hash" => &[check::BUNDLE],
        "tx_id" | "record" => &[check::RECORD_SIGNATURE],
        "signer_key" => &[check::SIGNER_KEY],
        // The last header is bound by the checkpoint, earlier ones by the chain.
        "headers" => &[check::BLOCK_HEADER, check::CHECKPOINT_MATCHES_HEADER],
        "tx_index" => &[check::BLOCK_HEADER],
        "leaf_index" | "inclusion" => &[check::INCLUSION],
        // A line whose key name or id changes is a stranger's, ignored; then
        // the summary's count of validator signatures is wrong.
        "checkpoint" => &[check::CHECKPOINT_SIGNATURES, check::SUMMARY],
        "validators" => &[check::VALIDATOR_SET],
        "summary" => &[check::SUMMARY],
        _ => &[],
    }
}

/// Verifies a mutated JSON bundle; returns the failed checks (a bundle
/// that no longer parses fails the `bundle` check).
fn failures(v: &Value, spec: &ChainSpec) -> Vec<String> {
    match serde_json::from_value::<Bundle>(v.clone()) {
        Err(_) => vec![check::BUNDLE.to_string()],
        Ok(b) => verify(&b, spec)
            .failed()
            .into_iter()
            .map(String::from)
            .collect(),
    }
}

fn assert_fails(v: &Value, spec: &ChainSpec, path: &str, what: &str, parsed: &mut usize) {
    let failed = failures(v, spec);
    assert!(!failed.is_empty(), "{what} at {path} still verifies");
    if failed != [check::BUNDLE] || expected_check(path) == [check::BUNDLE] {
        *parsed += 1;
        assert!(
            expected_check(path)
                .iter()
                .any(|c| failed.iter().any(|f| f == c)),
            "{what} at {path}: failed {failed:?}, expected one of {:?}",
            expected_check(path)
        );
    }
}

fn pointer_set(v: &mut Value, path: &str, x: Value) {
    *v.pointer_mut(path).unwrap() = x;
}

#[test]
fn every_single_byte_and_field_mutation_fails_with_the_right_check() {
    let (c, doc, _) = fixture();
    let good = serde_json::to_value(build(&c.kv, &c.spec, &doc.0).unwrap()).unwrap();
    mutate_everything(&good, &c.spec);
}

/// Flips every byte of every string, moves every number by one, negates
/// every bool, drops and doubles every list element, removes every field:
/// each mutation must fail, naming the check of the part it changed.
fn mutate_everything(good: &Value, spec: &ChainSpec) {
    let c = Chain(MemoryChain {
        spec: spec.clone(),
        kv: MemoryKv::new(),
        now: 0,
        nonce: 0,
    });
    let mut scalars = Vec::new();
    leaves(good, String::new(), &mut scalars);
    let (mut tried, mut parsed) = (0usize, 0usize);
    for (path, value) in &scalars {
        match value {
            Value::String(s) => {
                for i in 0..s.len() {
                    let mut bytes = s.as_bytes().to_vec();
                    bytes[i] ^= 0x01;
                    let Ok(m) = String::from_utf8(bytes) else {
                        continue;
                    };
                    let mut v = good.clone();
                    pointer_set(&mut v, path, Value::String(m));
                    tried += 1;
                    assert_fails(&v, &c.spec, path, &format!("byte {i} flipped"), &mut parsed);
                }
            }
            Value::Number(n) => {
                let n = n.as_u64().unwrap();
                for m in [n.wrapping_add(1), n.wrapping_sub(1)] {
                    let mut v = good.clone();
                    pointer_set(&mut v, path, Value::from(m));
                    tried += 1;
                    assert_fails(&v, &c.spec, path, &format!("{n} → {m}"), &mut parsed);
                }
            }
            Value::Bool(b) => {
                let mut v = good.clone();
                pointer_set(&mut v, path, Value::Bool(!b));
                tried += 1;
                assert_fails(&v, &c.spec, path, "negated", &mut parsed);
            }
            Value::Null => {}
            _ => unreachable!(),
        }
    }
    // Whole fields: drop and duplicate each list element; drop each object field.
    let mut lists = Vec::new();
    arrays(good, String::new(), &mut lists);
    for path in &lists {
        let len = good.pointer(path).unwrap().as_array().unwrap().len();
        for i in 0..len {
            let mut v = good.clone();
            v.pointer_mut(path)
                .unwrap()
                .as_array_mut()
                .unwrap()
                .remove(i);
            tried += 1;
            assert_fails(
                &v,
                &c.spec,
                path,
                &format!("element {i} dropped"),
                &mut parsed,
            );
            let mut v = good.clone();
            let a = v.pointer_mut(path).unwrap().as_array_mut().unwrap();
            let x = a[i].clone();
            a.insert(i, x);
            tried += 1;
            assert_fails(
                &v,
                &c.spec,
                path,
                &format!("element {i} doubled"),
                &mut parsed,
            );
        }
    }
    // Removing a field breaks the schema (every field is required or
    // checked); swapping in the other signer's binding breaks the key.
    for (path, value) in &scalars {
        if value.is_null() {
            continue; // an absent optional field means the same as null
        }
        let (parent, field) = path.rsplit_once('/').unwrap();
        let mut v = good.clone();
        let Some(obj) = v.pointer_mut(parent).and_then(Value::as_object_mut) else {
            continue;
        };
        obj.remove(field);
        tried += 1;
        assert!(
            !failures(&v, &c.spec).is_empty(),
            "{path} removed still verifies"
        );
    }
    assert!(tried > 3_000, "{tried} mutations");
    assert!(
        parsed * 2 > tried,
        "most mutations reach the checks: {parsed} of {tried}"
    );
}

#[test]
fn fewer_than_a_quorum_or_an_outsider_fails_the_signature_check() {
    let (c, doc, _) = fixture();
    let good = build(&c.kv, &c.spec, &doc.0).unwrap();
    let note = SignedNote::parse(&good.checkpoint).unwrap();
    assert_eq!(note.signatures.len(), 3);
    let with = |sigs: Vec<NoteSignature>| {
        let mut b = good.clone();
        b.checkpoint = SignedNote {
            text: note.text.clone(),
            signatures: sigs,
        }
        .render();
        b.summary = summary(&b, &c.spec);
        verify(&b, &c.spec)
    };
    // Two of three is the quorum; one is not.
    assert!(with(note.signatures[..2].to_vec()).ok());
    let r = with(note.signatures[..1].to_vec());
    assert_eq!(r.failed(), vec![check::CHECKPOINT_SIGNATURES], "{r:#?}");
    // An outsider's line is ignored (c2sp.org/signed-note): it does not
    // count towards the quorum, and it does not spoil a note that has one.
    let origin = Checkpoint::parse_text(&note.text).unwrap().origin;
    let outsider = key("validator-9");
    for name in ["validator-9", origin.as_str()] {
        let mut extra = note.clone();
        extra.signatures.truncate(1);
        extra.add_signature(name, &outsider).unwrap();
        let r = with(extra.signatures.clone());
        assert_eq!(r.failed(), vec![check::CHECKPOINT_SIGNATURES], "{r:#?}");
        assert!(r
            .checks
            .iter()
            .any(|c| c.detail.contains("1 valid validator")));
        let mut extra = note.clone();
        extra.add_signature(name, &outsider).unwrap();
        let r = with(extra.signatures.clone());
        assert!(r.ok(), "{r:#?}");
        assert!(r.checks.iter().any(|c| c
            .detail
            .contains("1 signature line(s) by keys that are not validators in force ignored")));
    }
    // A validator's line whose signature fails rejects the note, even with a quorum besides.
    let mut bad = note.clone();
    bad.signatures[2].signature[5] ^= 1;
    let r = with(bad.signatures);
    assert_eq!(r.failed(), vec![check::CHECKPOINT_SIGNATURES], "{r:#?}");
    // A validator's line repeated counts once: one validator twice is no quorum.
    let mut twice = note.clone();
    twice.signatures.truncate(1);
    twice.signatures.push(twice.signatures[0].clone());
    assert_eq!(
        with(twice.signatures).failed(),
        vec![check::CHECKPOINT_SIGNATURES]
    );
    // A bundle claiming the outsiders are the set: the set does not follow
    // from genesis, and their signatures still do not count.
    let mut b = good.clone();
    b.validators.set[1].public_key = pk(&outsider);
    let mut n = SignedNote::parse(&b.checkpoint).unwrap();
    n.signatures.truncate(1);
    n.add_signature(&origin, &outsider).unwrap();
    b.checkpoint = n.render();
    b.summary = summary(&b, &c.spec);
    let r = verify(&b, &c.spec);
    assert_eq!(
        r.failed(),
        vec![check::VALIDATOR_SET, check::CHECKPOINT_SIGNATURES]
    );
    // Another genesis (other validators) rejects the bundle outright.
    let mut other = c.spec.clone();
    other.validators[0].public_key = pk(&outsider);
    let r = verify(&good, &other);
    assert!(
        r.failed().contains(&check::BUNDLE) && r.failed().contains(&check::CHECKPOINT_SIGNATURES)
    );
}

#[test]
fn consistency_old_to_new_verifies_and_a_fork_does_not() {
    let (c, _, _) = fixture();
    let old = seal::signed_checkpoint(&c.kv, &c.spec, 1).unwrap().unwrap();
    let new = seal::signed_checkpoint(&c.kv, &c.spec, 3).unwrap().unwrap();
    let proof = consistency_proof(&c.kv, old.0.tree_size, new.0.tree_size).unwrap();
    let r = verify_consistency(&old.1.render(), &new.1.render(), &proof, &c.spec);
    assert!(r.ok(), "{r:#?}");
    let json = serde_json::to_string(&proof).unwrap();
    assert_eq!(
        serde_json::from_str::<ConsistencyProof>(&json).unwrap(),
        proof
    );
    // Reversed, tampered or for other sizes: refused.
    assert!(!verify_consistency(&new.1.render(), &old.1.render(), &proof, &c.spec).ok());
    for i in 0..proof.hashes.len() {
        let mut p = proof.clone();
        p.hashes[i].0[i % 32] ^= 1;
        let r = verify_consistency(&old.1.render(), &new.1.render(), &p, &c.spec);
        assert_eq!(r.failed(), vec![check::CONSISTENCY]);
    }
    let mut p = proof.clone();
    p.to += 1;
    assert_eq!(
        verify_consistency(&old.1.render(), &new.1.render(), &p, &c.spec).failed(),
        vec![check::CONSISTENCY]
    );

    // A fork: the same validators sign a tree that rewrote leaf 1.
    let mut f = Chain::new(3);
    let s = f.register("s1", 1);
    f.block(vec![], f.sign(1, &[0, 1]));
    let w = f.notarize(&s, "another document");
    let w2 = f.notarize(&(String::from("root"), key("root")), "root memo");
    let (h, _) = f.block(vec![w, w2], vec![]);
    f.block(vec![], f.sign(h, &[0, 1]));
    let forked = seal::signed_checkpoint(&f.kv, &f.spec, h).unwrap().unwrap();
    assert_eq!(forked.0.tree_size, new.0.tree_size);
    assert_ne!(forked.0.root, new.0.root);
    let fork_old = seal::signed_checkpoint(&f.kv, &f.spec, 1).unwrap().unwrap();
    assert_eq!(fork_old.0.root, old.0.root, "same first leaf");
    // The fork's own proof from the shared prefix verifies only against the fork...
    let fp = consistency_proof(&f.kv, 1, forked.0.tree_size).unwrap();
    assert!(verify_consistency(&old.1.render(), &forked.1.render(), &fp, &c.spec).ok());
    // ...and neither proof links the honest chain's tree to the fork's.
    assert_eq!(
        verify_consistency(&old.1.render(), &forked.1.render(), &proof, &c.spec).failed(),
        vec![check::CONSISTENCY]
    );
    // Two size-2 trees with different roots are inconsistent whatever the proof.
    let mid_honest = consistency_proof(&c.kv, 2, 3).unwrap();
    let fork_mid = seal::signed_checkpoint(&f.kv, &f.spec, h).unwrap().unwrap();
    assert!(!verify_consistency(&fork_mid.1.render(), &new.1.render(), &mid_honest, &c.spec).ok());
    // A note whose signatures do not verify fails its own check.
    let mut bad = old.1.clone();
    bad.signatures[0].signature[0] ^= 1;
    let r = verify_consistency(&bad.render(), &new.1.render(), &proof, &c.spec);
    assert!(r.failed().contains(&check::OLD_CHECKPOINT));
}

/// A chain whose tree starts with `n` synthetic leaves (stored hashes
/// written directly, as Go tlog lays them out), then real blocks.
fn chain_with_prefix(n: u64) -> (Chain, Vec<[u8; 32]>) {
    let mut c = Chain::new(3);
    let mut tree = merkle::MemoryTree::new();
    let mut sample = Vec::new();
    for i in 0..n {
        let id = sha256(&i.to_be_bytes());
        tree.push(&id).unwrap();
        if i % 99_991 == 0 {
            sample.push(id);
        }
    }
    for (i, h) in tree.stored_hashes().iter().enumerate() {
        c.kv.put(Space::Tree, tree_key(i as u64), h.to_vec());
    }
    let mut head = read_head(&c.kv).unwrap().unwrap();
    head.tree_size = n;
    head.tree_root = H32(tree.root().unwrap());
    c.kv.put(
        Space::Blocks,
        b"head".to_vec(),
        state::encode(&head).unwrap(),
    );
    (c, sample)
}

#[test]
fn proofs_at_one_million_leaves_verify() {
    const N: u64 = 1_000_000;
    let (mut c, sample) = chain_with_prefix(N);
    let s = c.register("s1", 1);
    let w = c.notarize(&s, "million");
    let (h, ids) = c.block(vec![w], c.sign(1, &[0, 1]));
    c.block(vec![], c.sign(h, &[1, 2]));
    let b = build(&c.kv, &c.spec, &ids[0].0).unwrap();
    assert_eq!(b.leaf_index, N + 1);
    // The right edge of a 2^20-ish tree: a short path through the big subtrees.
    assert!(!b.inclusion.is_empty() && b.inclusion.len() <= 21);
    let r = verify(&b, &c.spec);
    assert!(r.ok(), "{r:#?}");
    // Synthetic leaves spread over the tree verify against the sealed root too.
    let cp = parse_checkpoint(&b.checkpoint).unwrap();
    for (k, id) in sample.iter().enumerate() {
        let index = k as u64 * 99_991;
        let p = merkle::inclusion_proof(index, cp.tree_size, &TreeReader(&c.kv)).unwrap();
        assert!(p.len() >= 15, "leaf {index}: {} hashes", p.len());
        merkle::verify_inclusion(&merkle::leaf_hash(id), index, cp.tree_size, &p, &cp.root.0)
            .unwrap();
    }
    // And the consistency proof from the prefix to the sealed tree.
    let old_root = merkle::tree_root(N, &TreeReader(&c.kv)).unwrap();
    let p = consistency_proof(&c.kv, N, cp.tree_size).unwrap();
    let path: Vec<_> = p.hashes.iter().map(|h| h.0).collect();
    merkle::verify_consistency(N, cp.tree_size, &old_root, &cp.root.0, &path).unwrap();
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(32))]

    /// Random multi-byte corruption of the bundle's JSON text: whatever
    /// still parses must not verify.
    #[test]
    fn prop_random_corruption_never_verifies(
        flips in prop::collection::vec((any::<prop::sample::Index>(), 1u8..=255), 1..4)
    ) {
        let (c, doc, _) = fixture_cached();
        let json = serde_json::to_vec(&build(&c.kv, &c.spec, &doc.0).unwrap()).unwrap();
        let mut m = json.clone();
        for (i, x) in &flips {
            let i = i.index(m.len());
            m[i] ^= x;
        }
        prop_assume!(m != json);
        if let Ok(b) = parse_bundle(&m) {
            // JSON whitespace or key order changes are not data changes.
            let same = serde_json::to_vec(&b).unwrap() == json;
            prop_assert!(same || !verify(&b, &c.spec).ok());
        }
    }
}

fn fixture_cached() -> &'static (Chain, H32, H32) {
    static F: std::sync::OnceLock<(Chain, H32, H32)> = std::sync::OnceLock::new();
    F.get_or_init(fixture)
}

/// The worked example of docs/evidence.md: the genesis, the bundle, every
/// intermediate value a verifier computes, and the expected checks.
fn worked_example() -> Value {
    let (c, doc, _) = fixture();
    let b = build(&c.kv, &c.spec, &doc.0).unwrap();
    let tx = SignedTx::from_value(b.record.clone()).unwrap();
    let jcs =
        String::from_utf8(tx.signed_bytes[crate::signing::TX_DOMAIN.len()..].to_vec()).unwrap();
    let cp = parse_checkpoint(&b.checkpoint).unwrap();
    // The inclusion walk, step by step (RFC 9162 §2.1.3.2).
    let mut steps = Vec::new();
    let (mut fnode, mut snode) = (b.leaf_index, cp.tree_size - 1);
    let mut r = merkle::leaf_hash(&b.tx_id.0);
    for p in &b.inclusion {
        let side = if fnode & 1 == 1 || fnode == snode {
            r = merkle::node_hash(&p.0, &r);
            while fnode & 1 == 0 && fnode != 0 {
                fnode >>= 1;
                snode >>= 1;
            }
            "left"
        } else {
            r = merkle::node_hash(&r, &p.0);
            "right"
        };
        fnode >>= 1;
        snode >>= 1;
        steps.push(json!({"sibling": p, "sibling_is": side, "result": H32(r)}));
    }
    let note = SignedNote::parse(&b.checkpoint).unwrap();
    let known = Genesis::new(&c.spec).unwrap().known;
    let set_jcs = String::from_utf8(
        crate::signing::canonical_json(&serde_json::to_value(&c.spec.validators).unwrap()).unwrap(),
    )
    .unwrap();
    let report = verify(&b, &c.spec);
    assert!(report.ok());
    json!({
        "about": "Generated by `ZSL_WRITE_EXAMPLES=1 cargo test --workspace evidence::tests::worked_example_is_current` (ledger/src/evidence.rs). `genesis` is the genesis file, `bundle` the evidence bundle, `intermediate` every value a verifier computes on the way, `expected_checks` what `zsl verify` reports.",
        "genesis": c.spec,
        "bundle": b,
        "tlog_proof": tlog_proof(&b),
        "intermediate": {
            "genesis_jcs_sha256": H32(c.spec.hash().unwrap()),
            "record_jcs_body": jcs,
            "record_signed_bytes_hex": hex::encode(&tx.signed_bytes),
            "tx_id": H32(tx.id),
            "leaf_hash": H32(merkle::leaf_hash(&b.tx_id.0)),
            "inclusion_steps": steps,
            "binding_leaf_hash": b.signer_key.binding.as_ref().map(|k| H32(merkle::leaf_hash(&k.tx_id.0))),
            "headers": b.headers.iter().map(|h| json!({
                "height": h.height,
                "hash_input_hex": hex::encode(h.hash_input()),
                "hash": h.hash(),
            })).collect::<Vec<_>>(),
            "origin": Checkpoint::parse_text(&note.text).unwrap().origin,
            "checkpoint_text": note.text,
            "checkpoint_signatures": note.signatures.iter().map(|s| json!({
                "validator": known.get(&(s.name.clone(), s.key_id)).map(|k| k.owner.clone()),
                "name": s.name,
                "key_id_hex": hex::encode(s.key_id),
                "signature_hex": hex::encode(&s.signature),
            })).collect::<Vec<_>>(),
            "validator_set_jcs": set_jcs,
            "validators_hash": seal::validator_set_hash(&c.spec.validators).unwrap(),
            "quorum": seal::quorum(&c.spec, &c.spec.validators),
        },
        "expected_checks": report.checks,
    })
}

#[test]
fn worked_example_is_current() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../docs/examples/evidence-example.json");
    let text = serde_json::to_string_pretty(&worked_example()).unwrap() + "\n";
    if std::env::var_os("ZSL_WRITE_EXAMPLES").is_some() {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, &text).unwrap();
    }
    let on_disk = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        on_disk == text,
        "docs/examples/evidence-example.json is stale: regenerate with \
         ZSL_WRITE_EXAMPLES=1 cargo test --workspace evidence::tests::worked_example_is_current"
    );
    // The example's bundle verifies against the example's genesis.
    let v: Value = serde_json::from_str(&on_disk).unwrap();
    let spec: ChainSpec = serde_json::from_value(v["genesis"].clone()).unwrap();
    let b: Bundle = serde_json::from_value(v["bundle"].clone()).unwrap();
    assert!(verify(&b, &spec).ok());
}

/// Bundles of chains whose genesis predates `log_host` (note format v1, the
/// worked example as it was published) still verify, and still fail when
/// touched.
#[test]
fn format_1_bundles_still_verify() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../docs/examples/evidence-example-v1.json");
    let v: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let spec: ChainSpec = serde_json::from_value(v["genesis"].clone()).unwrap();
    assert_eq!(spec.log_host, None);
    let b: Bundle = serde_json::from_value(v["bundle"].clone()).unwrap();
    assert_eq!(b.format, FORMAT_V1);
    let r = verify(&b, &spec);
    assert!(r.ok(), "{r:#?}");
    // A witness's line appended to a v1 note is ignored too.
    let mut n = SignedNote::parse(&b.checkpoint).unwrap();
    n.add_signature("witness.example/w1", &key("witness"))
        .unwrap();
    let mut w = b.clone();
    w.checkpoint = n.render();
    assert!(verify(&w, &spec).ok());
    let mut m = b.clone();
    m.tx_index += 1;
    assert!(!verify(&m, &spec).ok());
    // The same chain built today (genesis without `log_host`) still writes format 1.
    let mut c = Chain(MemoryChain::new(spec_v1(3)));
    let s = c.register("s1", 1);
    let w = c.notarize(&s, "v1");
    let (h, ids) = c.block(vec![w], vec![]);
    c.block(vec![], c.sign(h, &[0, 1]));
    let b = build(&c.kv, &c.spec, &ids[0].0).unwrap();
    assert_eq!(
        (b.format.as_str(), b.validators.vkeys.is_none()),
        (FORMAT_V1, true)
    );
    assert!(
        Checkpoint::parse_text(&SignedNote::parse(&b.checkpoint).unwrap().text)
            .unwrap()
            .origin
            == "zsl-test"
    );
    assert!(verify(&b, &c.spec).ok());
}

fn spec_v1(validators: usize) -> ChainSpec {
    let mut s = spec(validators);
    s.log_host = None;
    s
}

/// Format 2: the origin names the chain and commits to its genesis, the
/// validators sign under it, and the bundle lists their vkeys; a bundle
/// relabelled for another genesis with the same validators fails.
#[test]
fn format_2_origin_commits_to_the_genesis() {
    let (c, doc, _) = fixture();
    let b = build(&c.kv, &c.spec, &doc.0).unwrap();
    assert_eq!(b.format, FORMAT_V2);
    let note = SignedNote::parse(&b.checkpoint).unwrap();
    let cp = Checkpoint::parse_text(&note.text).unwrap();
    let genesis = H32(c.spec.hash().unwrap());
    assert_eq!(cp.origin, format!("zsl.example/zsl-test/{genesis}"));
    assert!(note.signatures.iter().all(|s| s.name == cp.origin));
    let vkeys = b.validators.vkeys.clone().unwrap();
    assert_eq!(vkeys.len(), 3);
    assert!(vkeys
        .iter()
        .all(|k| k.starts_with(&format!("{}+", cp.origin))));
    // Another genesis, same validators and chain id (other window): fails.
    let mut other = c.spec.clone();
    other.tx_window_past_ms += 1;
    let mut relabelled = b.clone();
    relabelled.genesis_hash = H32(other.hash().unwrap());
    let r = verify(&relabelled, &other);
    assert!(
        r.failed().contains(&check::CHECKPOINT_MATCHES_HEADER),
        "{r:#?}"
    );
    assert!(r.failed().contains(&check::CHECKPOINT_SIGNATURES), "{r:#?}");
    // A v1 bundle shape (no vkeys) on a v2 chain fails.
    let mut m = b.clone();
    m.validators.vkeys = None;
    assert_eq!(verify(&m, &c.spec).failed(), vec![check::VALIDATOR_SET]);
    let mut m = b.clone();
    m.format = FORMAT_V1.into();
    assert!(verify(&m, &c.spec).failed().contains(&check::BUNDLE));
}
