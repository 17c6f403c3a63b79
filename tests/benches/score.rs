//! Score benchmark (issue: district scores): loads a year of activity across
//! Zhejiang's 90 districts directly through the state machine — signed
//! transactions, `apply_block`, RocksDB — then times a province-wide monthly
//! score. Run: `scripts/bench` (`cargo bench --workspace --bench score --profile dev`).
//! Environment: `ZSL_BENCH_CODINGS` (default 1,000,000; shipment lines equal it).

use ledger::testkit::key;
use std::time::Instant;

use ed25519_dalek::SigningKey;
use serde::Serialize;

use ledger::block::BlockProposal;
use ledger::kv::Space;
use ledger::machine::trace_code;
use ledger::record::*;
use ledger::spec::RootRegulator;

const SUBJECTS_PER_DISTRICT: usize = 6;
const LINES_PER_SHIPMENT: usize = 4;
const BLOCK_TXS: usize = 4_000;
const YEAR_START_MS: i64 = 1_704_038_400_000; // 2024-01-01T00:00:00+08:00
const DAY_MS: i64 = 86_400_000;

struct Signer {
    chain_id: String,
    nonce: u64,
}

impl Signer {
    fn sign<T: Serialize>(
        &mut self,
        key: &SigningKey,
        account: &str,
        kind: &str,
        at_ms: i64,
        rec: &T,
    ) -> Vec<u8> {
        self.nonce += 1;
        let at = jiff::Timestamp::from_millisecond(at_ms)
            .unwrap()
            .to_string();
        let body = build_body(
            kind,
            &self.chain_id,
            account,
            &at,
            &self.nonce.to_string(),
            rec,
        );
        serde_json::to_vec(&ledger::SignedTx::sign(body, key).unwrap().to_json()).unwrap()
    }
}

fn peak_rss_mib() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|kb| kb.parse::<f64>().ok())
        .map(|kb| kb / 1024.0)
        .unwrap_or(0.0)
}

#[cfg(feature = "mimalloc")]
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() {
    let codings: usize = std::env::var("ZSL_BENCH_CODINGS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000);
    let dir = tempfile::tempdir().unwrap();
    let root = key("bench-root");
    let spec = genesis::build_spec(genesis::GenesisParams {
        chain_id: "zsl-bench".into(),
        genesis_time: "2023-12-31T00:00:00+08:00".into(),
        root_regulators: vec![RootRegulator {
            id: "root".into(),
            name: "root".into(),
            public_key: hex::encode(root.verifying_key().to_bytes()),
        }],
        validators: vec![],
        districts: None,
        sm2_accounts: false,
    })
    .unwrap();
    let ledger = ledger::chain::scratch_ledger(dir.path(), spec.clone()).unwrap();
    let mut s = Signer {
        chain_id: spec.chain_id.clone(),
        nonce: 0,
    };
    let mut now = YEAR_START_MS - DAY_MS / 2;
    let commit = |txs: Vec<Vec<u8>>, at: i64| {
        let applied = ledger
            .apply(
                &BlockProposal {
                    time_ms: at,
                    txs,
                    cosigs: Vec::new(),
                },
                &[],
            )
            .unwrap();
        if let Some(r) = applied
            .outcomes
            .iter()
            .find_map(|o| o.result.as_ref().err())
        {
            panic!("refused: {r}");
        }
    };

    // Subjects: per district, producers and receivers.
    let mut subjects: Vec<(String, SigningKey, String)> = Vec::new();
    let mut txs = Vec::new();
    for (di, d) in spec.districts.iter().enumerate() {
        for j in 0..SUBJECTS_PER_DISTRICT {
            let n = (di * SUBJECTS_PER_DISTRICT + j) as u32;
            let uscc = ledger::validate::synthetic_uscc(&d.code, n);
            let k = key(&uscc);
            let kind = if j < SUBJECTS_PER_DISTRICT / 2 {
                SubjectKind::Producer
            } else {
                SubjectKind::Wholesaler
            };
            let reg = SubjectRegister {
                uscc: uscc.clone(),
                name: uscc.clone(),
                kind,
                district: d.code.clone(),
                key_subject: j == 0,
                public_key: hex::encode(k.verifying_key().to_bytes()),
                market: None,
            };
            txs.push(s.sign(&root, "root", "subject.register", now, &reg));
            subjects.push((uscc, k, d.code.clone()));
        }
    }
    commit(std::mem::take(&mut txs), now);
    now += 1;
    for (id, k, _) in &subjects {
        let p = ProductRegister {
            product_id: "p".into(),
            name: "pork".into(),
            gtin: None,
            variety: "meat".into(),
            shelf_life_days: 3650,
        };
        txs.push(s.sign(k, id, "product.register", now, &p));
    }
    commit(std::mem::take(&mut txs), now);

    // A year: each day, codings, then yesterday's batches shipped in 4-line shipments, then received.
    let producers: Vec<usize> = (0..subjects.len())
        .filter(|i| i % SUBJECTS_PER_DISTRICT < SUBJECTS_PER_DISTRICT / 2)
        .collect();
    let receivers: Vec<usize> = (0..subjects.len())
        .filter(|i| i % SUBJECTS_PER_DISTRICT >= SUBJECTS_PER_DISTRICT / 2)
        .collect();
    let per_day = codings.div_ceil(365);
    let load_start = Instant::now();
    let mut coded = 0usize;
    let mut lines = 0usize;
    let mut pending: Vec<(usize, String)> = Vec::new(); // (coder, trace) awaiting shipment
    let block = |txs: &mut Vec<Vec<u8>>, at: &mut i64, force: bool| {
        if txs.len() >= BLOCK_TXS || (force && !txs.is_empty()) {
            *at += 1;
            commit(std::mem::take(txs), *at);
        }
    };
    for day in 0..365i64 {
        now = YEAR_START_MS + day * DAY_MS + 8 * 3_600_000;
        let mut shipments: Vec<(usize, usize, String)> = Vec::new();
        for i in 0..per_day {
            if coded >= codings {
                break;
            }
            let coder = producers[(coded * 7 + i) % producers.len()];
            let (id, k, _) = &subjects[coder];
            let batch_id = format!("b{coded}");
            let upstream = if coded.is_multiple_of(50) {
                Some(Upstream::Registered {
                    subject: subjects[producers[(coded + 1) % producers.len()]].0.clone(),
                })
            } else {
                None
            };
            let rec = BatchCode {
                batch_id: batch_id.clone(),
                product_id: "p".into(),
                quantity: 1,
                unit: "box".into(),
                production_date: ledger::score::local_date(&spec.model, now)
                    .unwrap()
                    .to_string(),
                expiry_date: "2099-12-31".into(),
                origin_region: subjects[coder].2.clone(),
                upstream,
                certificates: vec![],
                rapid_tests: vec![],
            };
            txs.push(s.sign(k, id, "batch.code", now, &rec));
            pending.push((coder, trace_code(id, &batch_id)));
            coded += 1;
            block(&mut txs, &mut now, false);
        }
        block(&mut txs, &mut now, true);
        // Ship today's batches in 4-line shipments, from each coder to a receiver elsewhere.
        pending.sort_by_key(|(c, _)| *c);
        let mut k = 0;
        while k < pending.len() {
            let coder = pending[k].0;
            let mut group = Vec::new();
            while k < pending.len() && pending[k].0 == coder && group.len() < LINES_PER_SHIPMENT {
                group.push(ShipmentLine {
                    trace_code: pending[k].1.clone(),
                    quantity: 1,
                });
                k += 1;
            }
            let to = receivers[(lines / LINES_PER_SHIPMENT * 13) % receivers.len()];
            let sid = format!("s{lines}");
            lines += group.len();
            let (id, key, _) = &subjects[coder];
            txs.push(s.sign(
                key,
                id,
                "shipment.create",
                now,
                &ShipmentCreate {
                    shipment_id: sid.clone(),
                    to: subjects[to].0.clone(),
                    lines: group,
                },
            ));
            shipments.push((coder, to, sid));
            block(&mut txs, &mut now, false);
        }
        pending.clear();
        block(&mut txs, &mut now, true);
        // Receipts: most the same day, 1 in 20 never (late items for scanning a).
        for (n, (from, to, sid)) in shipments.iter().enumerate() {
            if n % 20 == 19 {
                continue;
            }
            let (id, key, _) = &subjects[*to];
            txs.push(s.sign(
                key,
                id,
                "shipment.receive",
                now,
                &ShipmentReceive {
                    shipper: subjects[*from].0.clone(),
                    shipment_id: sid.clone(),
                },
            ));
            block(&mut txs, &mut now, false);
        }
        block(&mut txs, &mut now, true);
    }
    let load_s = load_start.elapsed().as_secs_f64();
    let head = ledger.head().unwrap();
    ledger.store.flush().unwrap();

    let regions = spec.district_codes();
    let period = ledger::score::Period::parse("2024-03-01", "2024-03-31").unwrap();
    let mut times = Vec::new();
    let mut report = None;
    for _ in 0..21 {
        let t = Instant::now();
        let view = ledger.store.view();
        report = Some(
            ledger::score::scores(&view, &spec.model, &regions, period, Some(head.time_ms))
                .unwrap(),
        );
        times.push(t.elapsed().as_secs_f64() * 1000.0);
    }
    times.sort_by(|a, b| a.total_cmp(b));
    let t = Instant::now();
    let detail = ledger::score::district_detail(
        &ledger.store.view(),
        &spec.model,
        &regions,
        &regions[0],
        period,
        Some(head.time_ms),
    )
    .unwrap();
    let detail_ms = t.elapsed().as_secs_f64() * 1000.0;
    let sizes = ledger.store.sizes();
    let index_mib = sizes
        .iter()
        .find(|(n, _)| *n == Space::Index.cf_name())
        .map(|(_, b)| *b as f64 / 1048576.0)
        .unwrap_or(0.0);
    let total_mib: f64 = sizes.iter().map(|(_, b)| *b as f64 / 1048576.0).sum();
    let r = report.unwrap();
    let n_march: u64 = r.districts.values().map(|d| d.n).sum();
    println!(
        "score bench: {coded} codings, {lines} shipment lines (+ receipts), {} blocks, {} txs",
        head.height, head.tree_size
    );
    println!(
        "  load through apply_block + RocksDB: {load_s:.1} s ({:.0} tx/s, signing included)",
        head.tree_size as f64 / load_s
    );
    println!(
        "  province-wide March score (90 districts, N = {n_march}): median {:.2} ms, p95 {:.2} ms",
        times[times.len() / 2],
        times[times.len() * 95 / 100]
    );
    println!(
        "  district drill-down ({} items): {detail_ms:.1} ms",
        detail.items.len()
    );
    println!("  index column family on disk: {index_mib:.1} MiB (all column families {total_mib:.1} MiB); peak RSS {:.0} MiB", peak_rss_mib());
}
