//! Where one transaction's CPU goes on a node, stage by stage (issue 10):
//! the bench's mix (≈40% batch.code, 30% shipment.create, 30%
//! shipment.receive) of distinct signed transactions, each stage timed on
//! its own over the same transactions, on one core. Prints a markdown table
//! (scripts/bench appends it to bench/RESULTS.md).
//!
//! Run: `cargo bench --workspace --bench hotpath --profile dev`.
//! Environment: `ZSL_BENCH_HOTPATH_TXS` (default 40,000), `ZSL_BENCH_BLOCK`
//! (transactions per block, default 1,000).

use ledger::testkit::key;
use std::time::Instant;

use ed25519_dalek::SigningKey;
use serde::Serialize;
use serde_json::Value;

use ledger::block::BlockProposal;
use ledger::record::*;
use ledger::spec::RootRegulator;
use ledger::SignedTx;

const PRODUCERS: usize = 16;
const RECEIVERS: usize = 16;
const DISTRICT: &str = "330102";

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

struct Signer {
    chain_id: String,
    nonce: u64,
    at: String,
}

impl Signer {
    fn sign<T: Serialize>(
        &mut self,
        key: &SigningKey,
        account: &str,
        kind: &str,
        rec: &T,
    ) -> Vec<u8> {
        self.nonce += 1;
        let body = build_body(
            kind,
            &self.chain_id,
            account,
            &self.at,
            &self.nonce.to_string(),
            rec,
        );
        serde_json::to_vec(&SignedTx::sign(body, key).expect("sign").to_json()).expect("json")
    }
}

/// Median of `runs` timings of `f` over all items, in µs per item.
fn per_item_us(items: usize, runs: usize, mut f: impl FnMut()) -> f64 {
    if runs == 0 {
        return f64::NAN;
    }
    let mut t: Vec<f64> = (0..runs)
        .map(|_| {
            let t0 = Instant::now();
            f();
            t0.elapsed().as_secs_f64() * 1e6 / items as f64
        })
        .collect();
    t.sort_by(|a, b| a.total_cmp(b));
    t[t.len() / 2]
}

fn main() {
    let n = env_usize("ZSL_BENCH_HOTPATH_TXS", 40_000);
    let block = env_usize("ZSL_BENCH_BLOCK", 1_000).clamp(1, 20_000);
    let root = key("hotpath-root");
    let spec = genesis::build_spec(genesis::GenesisParams {
        chain_id: "zsl-bench".into(),
        genesis_time: "2024-01-01T00:00:00+08:00".into(),
        root_regulators: vec![RootRegulator {
            id: "root".into(),
            name: "root".into(),
            public_key: hex::encode(root.verifying_key().to_bytes()),
        }],
        validators: vec![],
        districts: None,
        sm2_accounts: false,
    })
    .expect("spec");
    let now_ms = jiff::Timestamp::now().as_millisecond();
    let today = ledger::score::local_date(&spec.model, now_ms)
        .expect("date")
        .to_string();
    let mut s = Signer {
        chain_id: spec.chain_id.clone(),
        nonce: 0,
        at: jiff::Timestamp::from_millisecond(now_ms)
            .expect("time")
            .to_string(),
    };
    let subject = |kind: &str, i: usize| {
        let id = ledger::validate::synthetic_uscc(
            DISTRICT,
            (if kind == "p" { 0 } else { 1_000 } + i) as u32,
        );
        (key(&id), id)
    };
    let producers: Vec<(SigningKey, String)> = (0..PRODUCERS).map(|i| subject("p", i)).collect();
    let receivers: Vec<(SigningKey, String)> = (0..RECEIVERS).map(|i| subject("r", i)).collect();

    let mut setup: Vec<Vec<Vec<u8>>> = vec![Vec::new(), Vec::new(), Vec::new()];
    for (k, id, kind) in producers
        .iter()
        .map(|(k, id)| (k, id, SubjectKind::Producer))
        .chain(
            receivers
                .iter()
                .map(|(k, id)| (k, id, SubjectKind::Supermarket)),
        )
    {
        let reg = SubjectRegister {
            uscc: id.clone(),
            name: format!("基准测试企业 {id}"),
            kind,
            district: DISTRICT.into(),
            key_subject: false,
            public_key: hex::encode(k.verifying_key().to_bytes()),
            market: None,
        };
        setup[0].push(s.sign(&root, "root", "subject.register", &reg));
    }
    for (k, id) in &producers {
        let p = ProductRegister {
            product_id: "pork-chilled".into(),
            name: "冷鲜猪肉（基准测试）".into(),
            gtin: None,
            variety: "meat".into(),
            shelf_life_days: 3650,
        };
        setup[1].push(s.sign(k, id, "product.register", &p));
        let stock = BatchCode {
            batch_id: "stock".into(),
            product_id: "pork-chilled".into(),
            quantity: 1_000_000_000,
            unit: "kg".into(),
            production_date: today.clone(),
            expiry_date: "2099-12-31".into(),
            origin_region: DISTRICT.into(),
            upstream: None,
            certificates: vec![],
            rapid_tests: vec![],
        };
        setup[2].push(s.sign(k, id, "batch.code", &stock));
    }

    // The mix, in blocks: shipments of block b are received in block b + 1.
    let mut blocks: Vec<Vec<Vec<u8>>> = Vec::new();
    let mut prev: Vec<(usize, String, String)> = Vec::new();
    let mut seq = 0u64;
    let mut total = 0usize;
    while total < n {
        let size = block.min(n - total);
        let mut b = Vec::with_capacity(size);
        let mut made = Vec::new();
        for (r, shipper, sid) in prev.drain(..) {
            let rec = ShipmentReceive {
                shipper,
                shipment_id: sid,
            };
            b.push(s.sign(&receivers[r].0, &receivers[r].1, "shipment.receive", &rec));
        }
        let ships = size * 3 / 10;
        for _ in 0..ships {
            seq += 1;
            let p = seq as usize % PRODUCERS;
            let r = seq as usize % RECEIVERS;
            let sid = format!("BENCH-SHIP-{seq:010}");
            let rec = ShipmentCreate {
                shipment_id: sid.clone(),
                to: receivers[r].1.clone(),
                lines: vec![ShipmentLine {
                    trace_code: ledger::machine::trace_code(&producers[p].1, "stock"),
                    quantity: 1 + seq % 7,
                }],
            };
            b.push(s.sign(&producers[p].0, &producers[p].1, "shipment.create", &rec));
            made.push((r, producers[p].1.clone(), sid));
        }
        while b.len() < size {
            seq += 1;
            let p = seq as usize % PRODUCERS;
            let rec = BatchCode {
                batch_id: format!("BENCH-BATCH-{seq:010}"),
                product_id: "pork-chilled".into(),
                quantity: 250 + seq % 500,
                unit: "kg".into(),
                production_date: today.clone(),
                expiry_date: "2099-12-31".into(),
                origin_region: DISTRICT.into(),
                upstream: None,
                certificates: vec![],
                rapid_tests: vec![],
            };
            b.push(s.sign(&producers[p].0, &producers[p].1, "batch.code", &rec));
        }
        total += b.len();
        prev = made;
        blocks.push(b);
    }
    let all: Vec<&Vec<u8>> = blocks.iter().flatten().collect();
    let bytes: usize = all.iter().map(|w| w.len()).sum();
    let count = all.len();
    eprintln!(
        "{count} txs, {:.0} bytes each on average, blocks of {block}",
        bytes as f64 / count as f64
    );

    if std::env::var_os("ZSL_BENCH_READS").is_some() {
        count_reads(&spec, &setup, &blocks, now_ms);
        return;
    }
    let runs = 3;
    // `ZSL_BENCH_ONLY=apply` runs the state-machine stage alone (for a profiler).
    let only_apply = std::env::var("ZSL_BENCH_ONLY").is_ok_and(|v| v == "apply");
    let runs_stage = if only_apply { 0 } else { runs };
    let parse_value = per_item_us(count, runs_stage, || {
        for w in &all {
            std::hint::black_box(serde_json::from_slice::<Value>(w).expect("json"));
        }
    });
    let parsed: Vec<SignedTx> = all
        .iter()
        .map(|w| SignedTx::from_json_bytes(w).expect("tx"))
        .collect();
    let envelope = per_item_us(count, runs_stage, || {
        for w in &all {
            std::hint::black_box(SignedTx::from_json_bytes(w).expect("tx"));
        }
    });
    let jcs = per_item_us(count, runs_stage, || {
        for t in &parsed {
            std::hint::black_box(ledger::signing::signed_bytes_of(&t.body).expect("jcs"));
        }
    });
    let sha = per_item_us(count, runs_stage, || {
        for t in &parsed {
            std::hint::black_box(ledger::hash::sha256(&t.signed_bytes));
        }
    });
    let record = per_item_us(count, runs_stage, || {
        for t in &parsed {
            std::hint::black_box(parse_body(&t.body).expect("record"));
        }
    });
    let single = per_item_us(count.min(4_000), runs_stage, || {
        for t in parsed.iter().take(4_000) {
            t.verify_signature().expect("sig");
        }
    });
    let refs: Vec<&SignedTx> = parsed.iter().collect();
    let batch_us = per_item_us(count, runs_stage, || {
        for c in refs.chunks(block) {
            assert!(ledger::signing::verify_many(c).iter().all(|ok| *ok));
        }
    });
    let frames: Vec<Vec<u8>> = parsed.iter().map(|t| t.frame().to_bytes()).collect();
    let frame_parse = per_item_us(count, runs_stage, || {
        for f in &frames {
            std::hint::black_box(ledger::TxFrame::parse(f).expect("frame"));
        }
    });
    let framed: Vec<ledger::TxFrame> = frames
        .iter()
        .map(|f| ledger::TxFrame::parse(f).expect("frame"))
        .collect();
    let record_raw = per_item_us(count, runs_stage, || {
        for f in &framed {
            std::hint::black_box(parse_canonical(f.body_json()).expect("record"));
        }
    });
    let frame_refs: Vec<&ledger::TxFrame> = framed.iter().collect();
    let one_core = rayon::ThreadPoolBuilder::new()
        .num_threads(1)
        .build()
        .expect("pool");
    let keys = ledger::signing::KeyCache::default();
    let batch_one_core = per_item_us(count, runs_stage, || {
        one_core.install(|| {
            for c in frame_refs.chunks(block) {
                assert!(ledger::signing::verify_frames(c, &keys)
                    .iter()
                    .all(|ok| *ok));
            }
        })
    });
    let wire_out = per_item_us(count, runs_stage, || {
        for t in &parsed {
            std::hint::black_box(serde_json::to_vec(&t.to_json()).expect("json"));
        }
    });

    // The state machine on RocksDB (no fsync), as a node applies blocks.
    let apply = |setup: &[Vec<Vec<u8>>], blocks: &[Vec<Vec<u8>>]| -> (f64, f64) {
        let dir = tempfile::tempdir().expect("dir");
        let ledger = ledger::chain::scratch_ledger(dir.path(), spec.clone()).expect("ledger");
        let mut at = now_ms;
        let mut go = |txs: &Vec<Vec<u8>>| {
            at += 1;
            let applied = ledger
                .apply(
                    &BlockProposal {
                        time_ms: at,
                        txs: txs.clone(),
                        cosigs: Vec::new(),
                    },
                    &[],
                )
                .expect("apply");
            if let Some(r) = applied
                .outcomes
                .iter()
                .find_map(|o| o.result.as_ref().err())
            {
                panic!("refused: {r}");
            }
            if std::env::var_os("ZSL_BENCH_WRITES").is_some() {
                let mut by: std::collections::BTreeMap<&str, (usize, usize)> = Default::default();
                for ((space, k), v) in &applied.changes.entries {
                    let e = by.entry(space.cf_name()).or_default();
                    e.0 += 1;
                    e.1 += k.len() + v.as_ref().map_or(0, |v| v.len());
                }
                let n = txs.len().max(1) as f64;
                let rows: Vec<String> = by
                    .iter()
                    .map(|(cf, (c, b))| {
                        format!("{cf}: {:.2} rows {:.0} B", *c as f64 / n, *b as f64 / n)
                    })
                    .collect();
                eprintln!("per tx: {}", rows.join(", "));
            }
        };
        setup.iter().for_each(&mut go);
        let t0 = Instant::now();
        blocks.iter().for_each(&mut go);
        let whole = t0.elapsed().as_secs_f64() * 1e6 / count as f64;
        (whole, 0.0)
    };
    let (apply_us, _) = if only_apply {
        (f64::INFINITY, 0.0)
    } else {
        apply(&setup, &blocks)
    };
    // As proposals carry them: frames of the canonical signed bytes.
    let frame_blocks: Vec<Vec<Vec<u8>>> = blocks
        .iter()
        .map(|b| {
            b.iter()
                .map(|w| ledger::TxFrame::from_proposed(w).expect("frame").to_bytes())
                .collect()
        })
        .collect();
    let (frames_us, _) = apply(&setup, &frame_blocks);
    let (frames_us2, _) = if only_apply {
        (f64::INFINITY, 0.0)
    } else {
        apply(&setup, &frame_blocks)
    };
    let frames_us = frames_us.min(frames_us2);

    println!(
        "| stage (one core, {count} txs of the bench mix, {:.0} B avg) | µs per tx |",
        bytes as f64 / count as f64
    );
    println!("| --- | --- |");
    println!("| JSON parse of the wire into a `Value` | {parse_value:.2} |");
    println!("| envelope: parse + RFC 8785 canonical body + SHA-256 id (`SignedTx::from_json_bytes`) | {envelope:.2} |");
    println!("| RFC 8785 canonicalisation of the body alone | {jcs:.2} |");
    println!("| SHA-256 of the signed bytes | {sha:.2} |");
    println!("| record parse (`record::parse_body`) | {record:.2} |");
    println!("| Ed25519 verify_strict, one at a time | {single:.2} |");
    println!("| Ed25519 batch verification (`verify_many`, blocks of {block}) | {batch_us:.2} |");
    println!(
        "| frame read: canonical-form check + SHA-256 id (`TxFrame::parse`) | {frame_parse:.2} |"
    );
    println!("| record parse from canonical bytes (`record::parse_canonical`) | {record_raw:.2} |");
    println!("| Ed25519 batch verification of frames on one core (`verify_frames`, cached keys) | {batch_one_core:.2} |");
    println!("| wire re-serialisation (`to_json` → bytes) | {wire_out:.2} |");
    println!("| `Ledger::apply` on RocksDB without fsync (whole block: parse, verify, rules, tree, commit), JSON wires | {apply_us:.2} |");
    println!("| `Ledger::apply` as above, proposals of frames (verification on every core) | {frames_us:.2} |");
}

/// Counts reads by space and key prefix (`ZSL_BENCH_READS=1`), to see what a transaction reads.
struct CountingKv {
    inner: ledger::kv::MemoryKv,
    reads: std::cell::RefCell<std::collections::BTreeMap<String, (u64, u64)>>,
}

impl ledger::kv::KvRead for CountingKv {
    fn get(&self, space: ledger::kv::Space, key: &[u8]) -> ledger::kv::KvResult<Option<Vec<u8>>> {
        let v = self.inner.get(space, key)?;
        let prefix: String = String::from_utf8_lossy(key)
            .chars()
            .take_while(|c| *c != '/')
            .take(8)
            .collect();
        let mut r = self.reads.borrow_mut();
        let e = r
            .entry(format!(
                "{}:{}",
                space.cf_name(),
                if space == ledger::kv::Space::Tree || space == ledger::kv::Space::Txs {
                    ""
                } else {
                    &prefix
                }
            ))
            .or_default();
        if v.is_some() {
            e.0 += 1
        } else {
            e.1 += 1
        }
        Ok(v)
    }
    fn scan(
        &self,
        space: ledger::kv::Space,
        from: &[u8],
        to: &[u8],
        limit: usize,
    ) -> ledger::kv::KvResult<Vec<(Vec<u8>, Vec<u8>)>> {
        *self
            .reads
            .borrow_mut()
            .entry(format!("scan {}", space.cf_name()))
            .or_default() = (0, 0);
        self.inner.scan(space, from, to, limit)
    }
}

#[allow(dead_code)]
fn count_reads(
    spec: &ledger::ChainSpec,
    setup: &[Vec<Vec<u8>>],
    blocks: &[Vec<Vec<u8>>],
    now_ms: i64,
) {
    let mut m = ledger::MemoryLedger::new(spec.clone()).expect("ledger");
    let mut at = now_ms;
    for b in setup {
        at += 1;
        m.apply(&BlockProposal {
            time_ms: at,
            txs: b.clone(),
            cosigs: Vec::new(),
        })
        .expect("apply");
    }
    let kv = CountingKv {
        inner: m.kv.clone(),
        reads: Default::default(),
    };
    let mut kv = kv;
    let mut n = 0usize;
    for b in blocks.iter().take(5) {
        at += 1;
        let a = ledger::machine::apply_block(
            &kv,
            spec,
            &BlockProposal {
                time_ms: at,
                txs: b.clone(),
                cosigs: Vec::new(),
            },
        )
        .expect("apply");
        kv.inner.apply(&a.changes);
        n += b.len();
    }
    for (k, (hit, miss)) in kv.reads.borrow().iter() {
        eprintln!(
            "reads per tx {k}: {:.2} found, {:.2} absent",
            *hit as f64 / n as f64,
            *miss as f64 / n as f64
        );
    }
}
