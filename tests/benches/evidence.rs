//! Evidence bench (issue 5): bundle generation and verification times on a
//! scratch RocksDB ledger holding `ZSL_BENCH_EVIDENCE_TXS` real signed
//! notarizations (default 1,000,000), applied through `apply_block` in
//! blocks that three validators' checkpoint signatures seal (quorum 2), as on
//! a running cluster. Optionally `ZSL_BENCH_EVIDENCE_PREFIX` synthetic leaves
//! first (stored tree hashes written directly, Go tlog layout; no tx records
//! behind them), to measure proofs in a larger tree without signing every leaf.
//!
//! Run: `cargo bench --workspace --bench evidence --profile dev` (scripts/bench).

use std::time::{Duration, Instant};

use ed25519_dalek::SigningKey;
use ledger::block::BlockProposal;
use ledger::evidence;
use ledger::hash::H32;
use ledger::history::{read_block, read_head, tree_key};
use ledger::kv::{KvWrite, Overlay, Space};
use ledger::record::{build_body, DocumentNotarize, SubjectKind, SubjectRegister};
use ledger::seal;
use ledger::SignedTx;

const BLOCK_TXS: usize = 10_000;
const SUBJECTS: u32 = 16;
const SAMPLES: usize = 2_000;
const DISTRICT: &str = "330102";

fn env_u64(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.replace('_', "").parse().ok())
        .unwrap_or(default)
}

fn pct(sorted: &[Duration], p: f64) -> f64 {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i].as_secs_f64() * 1e3
}

fn dir_bytes(path: &std::path::Path) -> u64 {
    std::fs::read_dir(path)
        .map(|d| {
            d.flatten()
                .filter_map(|e| e.metadata().ok())
                .filter(|m| m.is_file())
                .map(|m| m.len())
                .sum()
        })
        .unwrap_or(0)
}

fn main() {
    let txs = env_u64("ZSL_BENCH_EVIDENCE_TXS", 1_000_000);
    let prefix = env_u64("ZSL_BENCH_EVIDENCE_PREFIX", 0);
    // ZSL_BENCH_EVIDENCE_DIR keeps the ledger; a second run with the same
    // directory skips loading and measures again.
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = std::env::var_os("ZSL_BENCH_EVIDENCE_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| tmp.path().to_path_buf());
    std::fs::create_dir_all(&dir).expect("bench dir");
    if dir.join("genesis.json").exists() {
        let spec = genesis::read_spec(&dir.join("genesis.json")).expect("genesis");
        let ledger =
            ledger::chain::scratch_ledger(&dir.join("data"), spec.clone()).expect("ledger");
        let head = ledger.head().unwrap();
        let mut ids = Vec::new();
        for h in 1..=head.height {
            if let Some(b) = read_block(&ledger.store, h).unwrap() {
                ids.extend(b.tx_ids);
            }
        }
        println!(
            "reusing {}: {} records, tree size {}, height {}",
            dir.display(),
            ids.len(),
            head.tree_size,
            head.height
        );
        measure(&ledger, &spec, &ids);
        return;
    }
    let start_ms = jiff::Timestamp::now().as_millisecond() - 3_600_000;
    let genesis_time = jiff::Timestamp::from_millisecond(start_ms - 60_000)
        .unwrap()
        .to_string();
    let d = genesis::devnet("zsl-bench", &genesis_time, 3).expect("devnet");
    let spec = d.spec.clone();
    genesis::write_json(&dir.join("genesis.json"), &spec).expect("write genesis");
    let validators: Vec<(String, SigningKey)> = d
        .validators
        .iter()
        .map(|k| (k.account.clone(), k.signing_key().expect("key")))
        .collect();
    let root = d.root.signing_key().expect("root key");
    let root_id = d.root.account.clone();
    let ledger = ledger::chain::scratch_ledger(&dir.join("data"), spec.clone()).expect("ledger");

    // Synthetic prefix: stored hashes only, committed in chunks.
    if prefix > 0 {
        let t = Instant::now();
        let mut tree = ledger::merkle::MemoryTree::new();
        for i in 0..prefix {
            tree.push(&ledger::hash::sha256(&i.to_be_bytes()))
                .expect("push");
        }
        let stored = tree.stored_hashes();
        for chunk in stored.chunks(1 << 20).enumerate() {
            let (c, hashes) = chunk;
            let mut ov = Overlay::new(&ledger.store);
            for (k, h) in hashes.iter().enumerate() {
                ov.put(
                    Space::Tree,
                    tree_key((c << 20) as u64 + k as u64),
                    h.to_vec(),
                );
            }
            ledger
                .store
                .commit(&ov.into_changes(), &[])
                .expect("commit");
        }
        let mut head = read_head(&ledger.store).unwrap().unwrap();
        head.tree_size = prefix;
        head.tree_root = H32(tree.root().unwrap());
        let mut ov = Overlay::new(&ledger.store);
        ov.put(
            Space::Blocks,
            b"head".to_vec(),
            ledger::state::encode(&head).unwrap(),
        );
        ledger
            .store
            .commit(&ov.into_changes(), &[])
            .expect("commit");
        println!(
            "synthetic prefix: {prefix} leaves ({} stored hashes) in {:.1} s",
            stored.len(),
            t.elapsed().as_secs_f64()
        );
    }

    let mut nonce = 0u64;
    let mut now = start_ms;
    let mut sign = |key: &SigningKey, account: &str, kind: &str, at: i64, rec: &dyn erased::Rec| {
        nonce += 1;
        let at = jiff::Timestamp::from_millisecond(at).unwrap().to_string();
        let body = build_body(
            kind,
            &spec.chain_id,
            account,
            &at,
            &nonce.to_string(),
            &rec.value(),
        );
        serde_json::to_vec(&SignedTx::sign(body, key).unwrap().to_json()).unwrap()
    };
    // Applies a block with the previous tree-growing block's signatures
    // (validators 1 and 2: the quorum), as the leader does.
    let mut pending_sigs: Vec<ledger::block::Cosignature> = Vec::new();
    let mut ids: Vec<H32> = Vec::with_capacity(txs as usize);
    let apply = |wires: Vec<Vec<u8>>,
                 at: i64,
                 ids: &mut Vec<H32>,
                 pending: &mut Vec<ledger::block::Cosignature>| {
        let applied = ledger
            .apply(
                &BlockProposal {
                    time_ms: at,
                    txs: wires,
                    cosigs: std::mem::take(pending),
                },
                &[],
            )
            .expect("apply");
        for o in &applied.outcomes {
            match &o.result {
                Ok(_) => ids.push(o.id.expect("id")),
                Err(r) => panic!("refused: {r}"),
            }
        }
        let block = applied.block.expect("block");
        if let Some(cp) = seal::checkpoint_of(
            &seal::log_identity(&ledger.store, &spec).expect("log"),
            &block.header,
        ) {
            *pending = validators[..2]
                .iter()
                .map(|(n, k)| seal::cosign(&cp, n, k))
                .collect();
        }
    };

    let t = Instant::now();
    let subjects: Vec<(String, SigningKey)> = (1..=SUBJECTS)
        .map(|n| {
            let id = ledger::validate::synthetic_uscc(DISTRICT, n);
            let key = SigningKey::from_bytes(&ledger::hash::sha256(id.as_bytes()));
            (id, key)
        })
        .collect();
    let regs: Vec<Vec<u8>> = subjects
        .iter()
        .map(|(id, key)| {
            let rec = SubjectRegister {
                uscc: id.clone(),
                name: format!("bench subject {id}"),
                kind: SubjectKind::Producer,
                district: DISTRICT.into(),
                key_subject: false,
                public_key: hex::encode(key.verifying_key().to_bytes()),
                market: None,
            };
            sign(&root, &root_id, "subject.register", now, &rec)
        })
        .collect();
    now += 1;
    let mut bindings = Vec::new();
    apply(regs, now, &mut bindings, &mut pending_sigs);
    let mut done = 0u64;
    while done < txs {
        now += 20;
        let n = (txs - done).min(BLOCK_TXS as u64);
        let wires: Vec<Vec<u8>> = (done..done + n)
            .map(|i| {
                let (id, key) = &subjects[(i % SUBJECTS as u64) as usize];
                let rec = DocumentNotarize {
                    document_hash: hex::encode(ledger::hash::sha256(&i.to_be_bytes())),
                    title: format!("bench document {i}"),
                    media_type: Some("application/pdf".into()),
                    note: None,
                };
                sign(key, id, "document.notarize", now, &rec)
            })
            .collect();
        apply(wires, now, &mut ids, &mut pending_sigs);
        done += n;
        if done.is_multiple_of(200_000) {
            eprintln!("  {done} notarizations, {:.0} s", t.elapsed().as_secs_f64());
        }
    }
    now += 20;
    // The last block's signatures, alone in a block: everything is sealed.
    apply(Vec::new(), now, &mut Vec::new(), &mut pending_sigs);
    ledger.store.flush().expect("flush");
    let load_s = t.elapsed().as_secs_f64();
    let head = ledger.head().unwrap();
    let sealed = seal::latest_sealed_height(&ledger.store).unwrap();
    assert_eq!(
        sealed,
        Some(head.height - 1),
        "the last tree-growing block is sealed"
    );
    assert!(read_block(&ledger.store, head.height).unwrap().is_some());
    println!(
        "loaded {txs} signed notarizations (+{SUBJECTS} registrations) in {load_s:.1} s \
         ({:.0} tx/s, signing included); tree size {}, height {}, on disk {:.0} MiB",
        txs as f64 / load_s,
        head.tree_size,
        head.height,
        dir_bytes(&dir.join("data")) as f64 / (1 << 20) as f64
    );

    measure(&ledger, &spec, &ids);
}

fn measure(ledger: &ledger::Ledger, spec: &ledger::ChainSpec, ids: &[H32]) {
    let spec = spec.clone();
    let head = ledger.head().unwrap();
    // Generation: random committed records, each from a fresh store snapshot.
    // xorshift64: a fixed, dependency-free spread over the whole tree.
    let mut x = 0x9e37_79b9_7f4a_7c15u64;
    let sample: Vec<H32> = (0..SAMPLES)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            ids[(x % ids.len() as u64) as usize]
        })
        .collect();
    // What a node (and a verifier) derives from genesis once per process.
    let g = evidence::Genesis::new(&spec).expect("genesis");
    let mut gen = Vec::with_capacity(SAMPLES);
    let mut bundles = Vec::with_capacity(SAMPLES);
    for id in &sample {
        let t = Instant::now();
        let view = ledger.store.view();
        let b = evidence::build_with(&view, &g, &id.0).expect("bundle");
        gen.push(t.elapsed());
        bundles.push(b);
    }
    // The same records again: RocksDB's block cache and the page cache now
    // hold what the first pass read from disk.
    let mut gen_warm = Vec::with_capacity(SAMPLES);
    for id in &sample {
        let t = Instant::now();
        let view = ledger.store.view();
        let b = evidence::build_with(&view, &g, &id.0).expect("bundle");
        gen_warm.push(t.elapsed());
        assert_eq!(b.tx_id, *id);
    }
    gen_warm.sort();
    let mut ver = Vec::with_capacity(SAMPLES);
    let mut ver_cold = Vec::with_capacity(SAMPLES);
    let mut parse_ver = Vec::with_capacity(SAMPLES);
    let mut bytes = 0usize;
    for b in &bundles {
        let t = Instant::now();
        let r = evidence::verify_with(b, &g);
        ver.push(t.elapsed());
        assert!(r.ok(), "{r:?}");
        let t = Instant::now();
        assert!(evidence::verify(b, &spec).ok());
        ver_cold.push(t.elapsed());
        let json = serde_json::to_vec(b).unwrap();
        bytes += json.len();
        let t = Instant::now();
        let parsed = evidence::parse_bundle(&json).unwrap();
        assert!(evidence::verify_with(&parsed, &g).ok());
        parse_ver.push(t.elapsed());
    }
    gen.sort();
    ver.sort();
    parse_ver.sort();
    ver_cold.sort();
    println!(
        "| measure ({SAMPLES} random records, tree size {}) | p50 | p99 | max |",
        head.tree_size
    );
    println!("| --- | --- | --- | --- |");
    for (name, v) in [
        (
            "bundle generation, first read (RocksDB snapshot → Bundle), ms",
            &gen,
        ),
        (
            "bundle generation, same records again (warm caches), ms",
            &gen_warm,
        ),
        (
            "verification of a parsed bundle (genesis derived once), ms",
            &ver,
        ),
        ("parse JSON + verify, ms", &parse_ver),
        (
            "verification incl. deriving genesis (hash of the genesis file), ms",
            &ver_cold,
        ),
    ] {
        println!(
            "| {name} | {:.3} | {:.3} | {:.3} |",
            pct(v, 0.5),
            pct(v, 0.99),
            pct(v, 1.0)
        );
    }
    println!(
        "bundle size: {:.0} bytes average (JSON); inclusion path {} hashes",
        bytes as f64 / SAMPLES as f64,
        bundles[0].inclusion.len()
    );
}

/// Lets one signing closure take any record type.
mod erased {
    pub trait Rec {
        fn value(&self) -> serde_json::Value;
    }
    impl<T: serde::Serialize> Rec for T {
        fn value(&self) -> serde_json::Value {
            serde_json::to_value(self).expect("record")
        }
    }
}
