use std::collections::BTreeMap;

use proptest::prelude::*;

use super::scenario::{self, EventBody, FindingKindSpec, Scenario, UpstreamPlace, UpstreamSpec};
use super::*;
use crate::kv::{MemoryKv, Overlay};

fn zj() -> ModelParams {
    ModelParams::zj_2024()
}

fn ms(rfc3339: &str) -> i64 {
    rfc3339
        .parse::<Timestamp>()
        .expect("test literal")
        .as_millisecond()
}

fn date(s: &str) -> Date {
    s.parse().expect("test literal")
}

fn period(from: &str, to: &str) -> Period {
    Period::parse(from, to).expect("test literal")
}

fn tx(salt: u8, index: u64) -> TxId {
    let mut t = [0u8; 32];
    t[0] = salt;
    t[24..].copy_from_slice(&index.to_be_bytes());
    t
}

fn index_rows(kv: &MemoryKv) -> Vec<(Vec<u8>, Vec<u8>)> {
    kv.scan(Space::Index, b"", &[0xff; 16], usize::MAX)
        .expect("memory scan")
}

// ---------------------------------------------------------------------------------------
// Natural days and deadlines.

#[test]
fn local_date_is_shanghai_day_for_utc_inputs() {
    let p = zj();
    assert_eq!(
        local_date(&p, ms("2024-03-01T01:00:00Z")).unwrap(),
        date("2024-03-01")
    );
    // 16:00 UTC is 00:00 the next day in Shanghai.
    assert_eq!(
        local_date(&p, ms("2024-03-31T15:59:59.999Z")).unwrap(),
        date("2024-03-31")
    );
    assert_eq!(
        local_date(&p, ms("2024-03-31T16:00:00Z")).unwrap(),
        date("2024-04-01")
    );
    assert_eq!(
        local_date(&p, ms("2024-03-31T16:30:00Z")).unwrap(),
        date("2024-04-01")
    );
    assert_eq!(local_date(&p, 0).unwrap(), date("1970-01-01"));
    assert!(local_date(&p, i64::MAX).is_err());
    assert!(local_date(&p, i64::MIN).is_err());
}

#[test]
fn deadline_follows_model_md_example() {
    let p = zj();
    let shipped = ms("2024-03-01T23:59:00+08:00");
    let deadline = deadline_ms(&p, shipped, p.receipt_window_days).unwrap();
    assert_eq!(deadline, ms("2024-03-04T00:00:00+08:00"));
    assert!(
        ms("2024-03-03T23:59:59+08:00") < deadline,
        "answered 03-03 23:59:59 is on time"
    );
    assert!(
        ms("2024-03-04T00:00:00+08:00") >= deadline,
        "answered 03-04 00:00:00 is late"
    );
    // A UTC-written event time: 2024-03-01T16:00Z is 03-02 00:00 local.
    assert_eq!(
        deadline_ms(&p, ms("2024-03-01T16:00:00Z"), 2).unwrap(),
        ms("2024-03-05T00:00:00+08:00")
    );
    assert_eq!(
        deadline_ms(&p, ms("2024-03-01T15:59:59Z"), 2).unwrap(),
        ms("2024-03-04T00:00:00+08:00")
    );
    // Across a month and a leap day.
    assert_eq!(
        deadline_ms(&p, ms("2024-02-28T12:00:00+08:00"), 2).unwrap(),
        ms("2024-03-02T00:00:00+08:00")
    );
    assert!(deadline_ms(&p, 0, WINDOW_DAYS_MAX + 1).is_err());
}

#[test]
fn day_numbers_round_trip() {
    for day in [-800_000, -1, 0, 1, 19_783, 60_000, 2_000_000] {
        assert_eq!(day_number(date_of_day(day).unwrap()), day);
    }
    assert_eq!(day_number(date("1970-01-01")), 0);
    assert_eq!(day_number(date("2024-03-01")), 19_783);
    assert!(date_of_day(i32::MAX).is_err());
}

#[test]
fn period_is_validated() {
    assert!(Period::parse("2024-03-02", "2024-03-01").is_err());
    assert!(Period::parse("2024-01-01", "2025-12-31").is_err());
    assert!(Period::parse("2024-3-1", "2024-03-31").is_err());
    assert_eq!(period("2024-03-01", "2024-03-31").days(), 31);
    let json = serde_json::to_string(&period("2024-03-01", "2024-03-31")).unwrap();
    assert_eq!(json, r#"{"from":"2024-03-01","to":"2024-03-31"}"#);
}

#[test]
fn params_round_trip_and_validate() {
    let p = zj();
    p.validate().unwrap();
    let json = serde_json::to_string(&p).unwrap();
    let back: ModelParams = serde_json::from_str(&json).unwrap();
    assert_eq!(back, p);
    let mut bad = p.clone();
    bad.timezone = "Mars/Olympus".to_string();
    assert!(bad.validate().is_err());
    assert!(local_date(&bad, 0).is_err());
    assert_eq!(
        (
            p.rank_bonus(1),
            p.rank_bonus(10),
            p.rank_bonus(11),
            p.rank_bonus(20),
            p.rank_bonus(21)
        ),
        (2, 2, 1, 1, 0)
    );
}

// ---------------------------------------------------------------------------------------
// Engine-level scenario check: scenario events translated directly into the `on_*` calls
// (no signing, no state machine). `zsl score replay` runs the same files through the real
// ledger; this checks the engine alone against the same `expect`.

struct Driver<'s> {
    s: &'s Scenario,
    params: ModelParams,
    district_of: BTreeMap<String, String>,
    /// Shipment id → (tx, shipped at, from, to, lines).
    shipments: BTreeMap<String, (TxId, i64, String, String, u64)>,
    /// Finding id → (tx, at, subject).
    findings: BTreeMap<String, (TxId, i64, String, u64)>,
}

impl<'s> Driver<'s> {
    fn new(s: &'s Scenario) -> Self {
        let district_of = s
            .subjects
            .iter()
            .map(|x| (x.id.clone(), x.district.clone()))
            .collect();
        Driver {
            s,
            params: zj(),
            district_of,
            shipments: BTreeMap::new(),
            findings: BTreeMap::new(),
        }
    }

    fn district(&self, subject: &str) -> String {
        self.district_of
            .get(subject)
            .cloned()
            .expect("parser checked subjects")
    }

    fn activity(&self, kv: &mut impl KvWrite, at_ms: i64, subject: &str) -> Result<()> {
        on_activity(
            kv,
            &self.params,
            &ActivityFact {
                at_ms,
                subject: subject.to_string(),
                district: self.district(subject),
                market: None,
            },
        )
    }

    fn apply(&mut self, kv: &mut impl KvWrite, index: usize) -> Result<()> {
        let at_ms = self.s.at_ms(index).expect("parser checked times");
        let t = tx(1, index as u64);
        let p = self.params.clone();
        match &self.s.events[index].body {
            EventBody::Code { by, upstream, .. } => {
                let batches = self
                    .s
                    .code_batches(index)
                    .expect("parser checked code events")
                    .len() as u64;
                let upstream = match upstream {
                    None => UpstreamFact::None,
                    Some(UpstreamSpec::Registered(u)) => UpstreamFact::Registered {
                        subject: u.clone(),
                        district: self.district(u),
                    },
                    Some(UpstreamSpec::Unregistered { district }) => UpstreamFact::Unregistered {
                        region: district.clone(),
                        in_region_table: self.s.upstream_place(district)
                            == Some(UpstreamPlace::InRegionTable),
                    },
                };
                let f = CodedFact {
                    tx_id: t,
                    at_ms,
                    coder: by.clone(),
                    coder_district: self.district(by),
                    batches,
                    key_variety_batches: 0,
                    upstream,
                };
                on_coded(kv, &p, &f)?;
                self.activity(kv, at_ms, by)
            }
            EventBody::Ship {
                id,
                from,
                to,
                batches,
            } => {
                let lines = batches.len() as u64;
                let f = ShippedFact {
                    tx_id: t,
                    at_ms,
                    shipper: from.clone(),
                    shipper_district: self.district(from),
                    receiver: to.clone(),
                    receiver_district: self.district(to),
                    lines,
                    key_variety_lines: 0,
                };
                on_shipped(kv, &p, &f)?;
                self.shipments
                    .insert(id.clone(), (t, at_ms, from.clone(), to.clone(), lines));
                self.activity(kv, at_ms, from)
            }
            EventBody::Receive { shipment } | EventBody::Reject { shipment, .. } => {
                let rejected = matches!(self.s.events[index].body, EventBody::Reject { .. });
                let (stx, shipped_at_ms, from, to, lines) = self
                    .shipments
                    .get(shipment)
                    .cloned()
                    .expect("parser checked shipments");
                let f = AnsweredFact {
                    tx_id: t,
                    shipment_tx_id: stx,
                    shipped_at_ms,
                    at_ms,
                    rejected,
                    shipper_district: self.district(&from),
                    receiver: to.clone(),
                    receiver_district: self.district(&to),
                    lines,
                    key_variety_lines: 0,
                };
                on_answered(kv, &p, &f)?;
                self.activity(kv, at_ms, &to)
            }
            EventBody::Finding {
                id,
                kind,
                subject,
                batches,
            } => {
                let kind = match kind {
                    FindingKindSpec::Uncoded => FindingKind::Uncoded,
                    FindingKindSpec::OffChain => FindingKind::OffChain,
                };
                let f = FindingFact {
                    tx_id: t,
                    at_ms,
                    subject: subject.clone(),
                    district: self.district(subject),
                    kind,
                    batches: *batches,
                };
                self.findings
                    .insert(id.clone(), (t, at_ms, subject.clone(), *batches));
                on_finding(kv, &p, &f)
            }
            EventBody::Rectify { finding } => {
                let (ftx, finding_at_ms, subject, batches) = self
                    .findings
                    .get(finding)
                    .cloned()
                    .expect("parser checked findings");
                let f = RectifiedFact {
                    tx_id: t,
                    finding_tx_id: ftx,
                    finding_at_ms,
                    at_ms,
                    subject: subject.clone(),
                    district: self.district(&subject),
                    batches,
                };
                on_rectified(kv, &p, &f)?;
                self.activity(kv, at_ms, &subject)
            }
            EventBody::Adjust {
                district,
                term,
                points,
                ..
            } => {
                let points_hundredths =
                    scenario::points_hundredths(points).expect("parser checked points");
                on_adjustment(
                    kv,
                    &p,
                    &AdjustmentFact {
                        tx_id: t,
                        at_ms,
                        district: district.clone(),
                        term: *term,
                        points_hundredths,
                    },
                )
            }
        }
    }

    /// Commits events with the same `at` in one block (one overlay).
    fn run(mut self) -> MemoryKv {
        let mut base = MemoryKv::new();
        let n = self.s.events.len();
        let mut i = 0;
        while i < n {
            let at = self.s.at_ms(i).expect("parser checked times");
            let changes = {
                let mut block = Overlay::new(&base);
                while i < n && self.s.at_ms(i).expect("parser checked times") == at {
                    self.apply(&mut block, i)
                        .expect("engine accepts a valid scenario");
                    i += 1;
                }
                block.into_changes()
            };
            base.apply(&changes);
        }
        base
    }
}

fn scenario_dir() -> std::path::PathBuf {
    let in_repo = std::path::Path::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../tests/data/scoring/"
    ));
    if in_repo.is_dir() {
        in_repo.to_path_buf()
    } else {
        std::path::PathBuf::from("/work/shared/scoring/examples/")
    }
}

fn scenario_files() -> Vec<std::path::PathBuf> {
    let mut files: Vec<_> = std::fs::read_dir(scenario_dir())
        .expect("scenario directory")
        .map(|e| e.expect("dir entry").path())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    files.sort();
    files
}

#[test]
fn engine_level_check_of_example_scenarios() {
    let files = scenario_files();
    assert!(
        files.len() >= 3,
        "expected the example scenarios in {:?}",
        scenario_dir()
    );
    for file in files {
        let text = std::fs::read_to_string(&file).expect("read scenario");
        let s = scenario::parse(&text).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
        let kv = Driver::new(&s).run();
        let report = scores(&kv, &zj(), &s.districts, s.period, None).expect("scores");
        let json = serde_json::to_value(&report).expect("report serializes");
        let mismatches = scenario::compare(&json, &s.expect);
        assert!(
            mismatches.is_empty(),
            "{}: {}\nreport: {json:#}",
            file.display(),
            mismatches
                .iter()
                .map(|m| m.to_string())
                .collect::<Vec<_>>()
                .join("; ")
        );
    }
}

fn example(name: &str) -> (Scenario, MemoryKv) {
    let text = std::fs::read_to_string(scenario_dir().join(name)).expect("read scenario");
    let s = scenario::parse(&text).expect("parse");
    let kv = Driver::new(&s).run();
    (s, kv)
}

#[test]
fn report_json_has_model_md_shape() {
    let (s, kv) = example("01-basic-receipts.json");
    let json =
        serde_json::to_value(scores(&kv, &zj(), &s.districts, s.period, None).unwrap()).unwrap();
    assert_eq!(json["model"], "zj-2024");
    assert_eq!(json["period"]["from"], "2024-03-01");
    let d = &json["districts"]["330102"];
    assert_eq!(d["N"], 10);
    assert_eq!(d["coding"]["rate"].to_string(), "102.0");
    assert_eq!(d["scanning"]["rate"].to_string(), "82.0");
    assert_eq!(d["scanning"]["rate_exact"], "82");
    assert_eq!(d["coding"]["g"].to_string(), "0.0");
}

#[test]
fn detail_lists_the_items_behind_the_terms() {
    let (s, kv) = example("02-lieu-coding.json");
    let d = district_detail(&kv, &zj(), &s.districts, "330105", s.period, None).unwrap();
    assert_eq!(d.score.coding.beta_c, 5);
    let kinds: Vec<&str> = d
        .items
        .iter()
        .map(|i| match &i.item {
            Item::LieuCodingAgainst { .. } => "against",
            Item::LieuCodingBy { .. } => "by",
            Item::GCandidate { .. } => "g",
            Item::Adjustment { .. } => "adjust",
            _ => "other",
        })
        .collect();
    // 03-02: S3 coded in lieu of S2 (against 330105, by 330105), S2 in lieu of S1 (by); 03-03: L4.
    assert_eq!(kinds, vec!["against", "by", "by", "g", "adjust"]);
    assert!(district_detail(&kv, &zj(), &s.districts, "330199", s.period, None).is_err());

    let (s, kv) = example("03-inspections.json");
    let d = district_detail(&kv, &zj(), &s.districts, "330102", s.period, None).unwrap();
    // F2 unrectified (due 03-18) and F5 off-chain; F1 was rectified in time, F3 is due in April.
    let days: Vec<&str> = d.items.iter().map(|i| i.day.as_str()).collect();
    assert_eq!(days, vec!["2024-03-18", "2024-03-20"]);

    let (s, kv) = example("01-basic-receipts.json");
    let d = district_detail(&kv, &zj(), &s.districts, "330102", s.period, None).unwrap();
    let late = d
        .items
        .iter()
        .filter(|i| matches!(i.item, Item::Receipt { .. }))
        .count();
    let rejections = d
        .items
        .iter()
        .filter(|i| matches!(i.item, Item::Rejection { .. }))
        .count();
    assert_eq!((late, rejections), (1, 1));
}

#[test]
fn scenario_parser_reports_clear_errors() {
    let good = std::fs::read_to_string(scenario_dir().join("01-basic-receipts.json")).unwrap();
    let mut v: serde_json::Value = serde_json::from_str(&good).unwrap();
    v["events"][1]["from"] = "S9".into();
    let e = scenario::parse(&v.to_string()).unwrap_err().to_string();
    assert!(
        e.contains("event 1") && e.contains("unknown shipper"),
        "{e}"
    );

    let mut v: serde_json::Value = serde_json::from_str(&good).unwrap();
    v["events"][0]["at"] = "2024-04-01T00:00:00+08:00".into();
    let e = scenario::parse(&v.to_string()).unwrap_err().to_string();
    assert!(e.contains("time order"), "{e}");

    let mut v: serde_json::Value = serde_json::from_str(&good).unwrap();
    v["events"][0]["at"] = "2024-03-01 09:00".into();
    assert!(scenario::parse(&v.to_string())
        .unwrap_err()
        .to_string()
        .contains("RFC 3339"));

    let mut v: serde_json::Value = serde_json::from_str(&good).unwrap();
    v["events"][2]["type"] = "teleport".into();
    assert!(scenario::parse(&v.to_string()).is_err());
    assert!(scenario::parse("{").is_err());
}

#[test]
fn compare_checks_every_expected_field() {
    let report = serde_json::json!({"districts": {"330102": {"N": 10, "coding": {"g": 0.0, "rate": 102.004}}}});
    let expect: BTreeMap<String, serde_json::Value> = serde_json::from_value(
        serde_json::json!({"330102": {"N": 10, "coding": {"g": 0, "rate": 102.0}}}),
    )
    .unwrap();
    assert!(scenario::compare(&report, &expect).is_empty());
    let expect: BTreeMap<String, serde_json::Value> = serde_json::from_value(
        serde_json::json!({"330102": {"N": 11, "coding": {"rate": 102.01, "h": 0}}, "330105": {}}),
    )
    .unwrap();
    let mut paths: Vec<String> = scenario::compare(&report, &expect)
        .into_iter()
        .map(|m| m.path)
        .collect();
    paths.sort();
    assert_eq!(
        paths,
        vec![
            "330102.N",
            "330102.coding.h",
            "330102.coding.rate",
            "330105"
        ]
    );
}

#[test]
fn running_score_counts_an_unanswered_receipt_only_from_its_deadline() {
    let p = zj();
    let mut kv = MemoryKv::new();
    let d = "330102".to_string();
    on_coded(
        &mut kv,
        &p,
        &CodedFact {
            tx_id: tx(1, 1),
            at_ms: ms("2024-03-01T09:00:00+08:00"),
            coder: "S1".into(),
            coder_district: d.clone(),
            batches: 10,
            key_variety_batches: 4,
            upstream: UpstreamFact::None,
        },
    )
    .unwrap();
    let shipped = ShippedFact {
        tx_id: tx(2, 1),
        at_ms: ms("2024-03-01T10:00:00+08:00"),
        shipper: "S1".into(),
        shipper_district: d.clone(),
        receiver: "S2".into(),
        receiver_district: d.clone(),
        lines: 1,
        key_variety_lines: 1,
    };
    on_shipped(&mut kv, &p, &shipped).unwrap();
    let table = vec![d.clone()];
    let march = period("2024-03-01", "2024-03-31");
    let at = |t: &str| {
        scores(&kv, &p, &table, march, Some(ms(t)))
            .unwrap()
            .districts[&d]
            .clone()
    };
    assert_eq!(at("2024-03-03T23:59:59.999+08:00").scanning.a, 0);
    assert_eq!(at("2024-03-04T00:00:00+08:00").scanning.a, 1);
    assert_eq!(
        scores(&kv, &p, &table, march, None).unwrap().districts[&d]
            .scanning
            .a,
        1
    );
    // Before the period begins nothing counts.
    assert_eq!(
        scores(
            &kv,
            &p,
            &table,
            march,
            Some(ms("2024-02-20T00:00:00+08:00"))
        )
        .unwrap()
        .districts[&d]
            .n,
        0
    );
    // The open receipt shows among upcoming deadlines until it falls due.
    let up = upcoming_deadlines(&kv, &p, &d, ms("2024-03-02T12:00:00+08:00"), 3).unwrap();
    assert_eq!(up.len(), 1);
    assert_eq!(
        (up[0].subject.as_str(), up[0].due_ms, up[0].kind),
        ("S2", ms("2024-03-04T00:00:00+08:00"), DeadlineKind::Receipt)
    );
    assert!(
        upcoming_deadlines(&kv, &p, &d, ms("2024-03-04T00:00:00+08:00"), 3)
            .unwrap()
            .is_empty()
    );
    // Key-variety coverage: 4 key-variety batches, 1 key-variety line unanswered → 75%.
    let s = scores(&kv, &p, &table, march, None).unwrap().districts[&d].clone();
    assert_eq!(s.key_variety_coverage.scanning_rate, Some(Hundredths(7500)));
    assert_eq!(s.key_variety_coverage.rate, Some(Hundredths(8750)));
    assert_eq!(s.key_variety_coverage.meets_target, Some(false));
    // A late answer does not undo scanning a; answering twice is refused.
    let answer = AnsweredFact {
        tx_id: tx(3, 1),
        shipment_tx_id: tx(2, 1),
        shipped_at_ms: shipped.at_ms,
        at_ms: ms("2024-03-05T08:00:00+08:00"),
        rejected: false,
        shipper_district: d.clone(),
        receiver: "S2".into(),
        receiver_district: d.clone(),
        lines: 1,
        key_variety_lines: 1,
    };
    on_answered(&mut kv, &p, &answer).unwrap();
    assert_eq!(
        scores(&kv, &p, &table, march, None).unwrap().districts[&d]
            .scanning
            .a,
        1
    );
    assert!(matches!(
        on_answered(&mut kv, &p, &answer),
        Err(ScoreError::AlreadyAnswered(_))
    ));
    let unknown = AnsweredFact {
        shipment_tx_id: tx(9, 9),
        ..answer
    };
    assert!(matches!(
        on_answered(&mut kv, &p, &unknown),
        Err(ScoreError::UnknownShipment(_))
    ));
}

#[test]
fn daily_counters_file_codings_by_day_and_receipts_by_deadline() {
    let p = zj();
    let mut kv = MemoryKv::new();
    let (d1, d2) = ("330102".to_string(), "330106".to_string());
    for (n, (district, at)) in [
        (&d1, "2024-03-01T09:00:00+08:00"),
        (&d2, "2024-03-01T23:30:00+08:00"),
        (&d1, "2024-03-02T00:30:00+08:00"),
    ]
    .into_iter()
    .enumerate()
    {
        on_coded(
            &mut kv,
            &p,
            &CodedFact {
                tx_id: tx(1, n as u64),
                at_ms: ms(at),
                coder: "S1".into(),
                coder_district: district.clone(),
                batches: 10,
                key_variety_batches: 0,
                upstream: UpstreamFact::None,
            },
        )
        .unwrap();
    }
    let shipped = ShippedFact {
        tx_id: tx(2, 1),
        at_ms: ms("2024-03-01T10:00:00+08:00"),
        shipper: "S1".into(),
        shipper_district: d1.clone(),
        receiver: "S2".into(),
        receiver_district: d2.clone(),
        lines: 3,
        key_variety_lines: 0,
    };
    on_shipped(&mut kv, &p, &shipped).unwrap();
    let first = day_number(date("2024-03-01"));
    let all = daily_counters(&kv, first, first + 3, None).unwrap();
    assert_eq!(all.len(), 4);
    assert_eq!(
        all.iter().map(|d| d.coded).collect::<Vec<_>>(),
        [20, 10, 0, 0],
        "codings under their local (Shanghai) day"
    );
    // The receipt falls due at the start of 03-04 (MODEL.md's deadline):
    // filed under that day, and under the receiving district.
    assert_eq!(
        all.iter().map(|d| d.receipts_due).collect::<Vec<_>>(),
        [0, 0, 0, 3]
    );
    let only_d1 = daily_counters(&kv, first, first + 3, Some(&d1)).unwrap();
    assert_eq!(
        only_d1
            .iter()
            .map(|d| (d.coded, d.receipts_due))
            .collect::<Vec<_>>(),
        [(10, 0), (10, 0), (0, 0), (0, 0)]
    );
    assert!(daily_counters(&kv, first, first - 1, None).is_err());
    assert!(daily_counters(&kv, first, first + DAILY_DAYS_MAX, None).is_err());
}

#[test]
fn secondary_metrics_key_subjects_and_markets() {
    let p = zj();
    let mut kv = MemoryKv::new();
    let d = "330102";
    let day = |n: u32| ms(&format!("2024-03-{n:02}T10:00:00+08:00"));
    on_key_subject(&mut kv, "K1", d, true, day(1) - 86_400_000 * 30).unwrap();
    on_key_subject(&mut kv, "K2", d, true, day(1) - 86_400_000 * 30).unwrap();
    on_key_subject(&mut kv, "K3", d, true, day(1) - 86_400_000 * 30).unwrap();
    on_key_subject(&mut kv, "K3", d, false, day(2)).unwrap();
    on_activity(
        &mut kv,
        &p,
        &ActivityFact {
            at_ms: day(5),
            subject: "K1".into(),
            district: d.into(),
            market: None,
        },
    )
    .unwrap();
    // The market M has 2 operators from 03-01; O1 is active every day, O2 on day 1 only.
    for op in ["O1", "O2"] {
        let f = OperatorFact {
            at_ms: day(1),
            market: "M".into(),
            market_district: d.into(),
            market_kind: MarketKind::Retail,
            operator: op.into(),
        };
        on_operator_registered(&mut kv, &p, &f).unwrap();
    }
    for n in 1..=4 {
        let a = ActivityFact {
            at_ms: day(n),
            subject: "O1".into(),
            district: d.into(),
            market: Some("M".into()),
        };
        on_activity(&mut kv, &p, &a).unwrap();
        on_activity(&mut kv, &p, &a).unwrap(); // a second record the same day counts once
    }
    on_activity(
        &mut kv,
        &p,
        &ActivityFact {
            at_ms: day(1),
            subject: "O2".into(),
            district: d.into(),
            market: Some("M".into()),
        },
    )
    .unwrap();
    let s = scores(
        &kv,
        &p,
        &[d.to_string()],
        period("2024-03-01", "2024-03-04"),
        None,
    )
    .unwrap()
    .districts[d]
        .clone();
    // K3 left the catalogue; K1 was not active until 03-05.
    assert_eq!(
        (
            s.key_subject_coverage.active,
            s.key_subject_coverage.catalogued
        ),
        (0, 2)
    );
    let m = &s.market_daily_activity[0];
    // Days: 100%, 50%, 50%, 50% → 62.5%.
    assert_eq!(
        (m.operators, m.days, m.rate, m.target, m.meets_target),
        (2, 4, Some(Hundredths(6250)), 80, Some(false))
    );
    let s = scores(
        &kv,
        &p,
        &[d.to_string()],
        period("2024-03-01", "2024-03-31"),
        None,
    )
    .unwrap()
    .districts[d]
        .clone();
    assert_eq!(s.key_subject_coverage.rate, Some(Hundredths(5000)));
}

#[test]
fn facts_with_bad_ids_are_errors_not_panics() {
    let p = zj();
    let mut kv = MemoryKv::new();
    let f = CodedFact {
        tx_id: tx(1, 1),
        at_ms: 0,
        coder: "S".into(),
        coder_district: String::new(),
        batches: 1,
        key_variety_batches: 0,
        upstream: UpstreamFact::None,
    };
    assert!(on_coded(&mut kv, &p, &f).is_err());
    let f = CodedFact {
        coder_district: "330102".into(),
        key_variety_batches: 2,
        ..f
    };
    assert!(on_coded(&mut kv, &p, &f).is_err());
    let f = CodedFact {
        key_variety_batches: 0,
        at_ms: i64::MAX,
        ..f
    };
    assert!(on_coded(&mut kv, &p, &f).is_err());
    let f = CodedFact {
        at_ms: 0,
        batches: u64::MAX,
        ..f
    };
    assert!(on_coded(&mut kv, &p, &f).is_err());
    assert!(scores(
        &kv,
        &p,
        &["330102".into(), "330102".into()],
        period("2024-03-01", "2024-03-31"),
        None
    )
    .is_err());
    // A corrupt counter record is an error.
    kv.put(
        Space::Index,
        keys::KeyBuf::new(keys::TAG_COUNTERS)
            .day(19_783)
            .id("district", "330102")
            .unwrap()
            .into_vec(),
        vec![1, 2, 3],
    );
    assert!(scores(
        &kv,
        &p,
        &["330102".into()],
        period("2024-03-01", "2024-03-31"),
        None
    )
    .is_err());
}

// ---------------------------------------------------------------------------------------
// Property tests over generated stories.

const DISTRICTS: [&str; 3] = ["330102", "330105", "330106"];

#[derive(Debug, Clone)]
enum Op {
    Coded(CodedFact),
    Shipped(ShippedFact),
    Answered(AnsweredFact),
    Finding(FindingFact),
    Rectified(RectifiedFact),
    Adjustment(AdjustmentFact),
}

fn apply_op(kv: &mut impl KvWrite, p: &ModelParams, op: &Op) -> Result<()> {
    match op {
        Op::Coded(f) => on_coded(kv, p, f),
        Op::Shipped(f) => on_shipped(kv, p, f),
        Op::Answered(f) => on_answered(kv, p, f),
        Op::Finding(f) => on_finding(kv, p, f),
        Op::Rectified(f) => on_rectified(kv, p, f),
        Op::Adjustment(f) => on_adjustment(kv, p, f),
    }
}

/// (kind, minutes after 2024-03-01 00:00 +08, district, other district, count, pick)
type RawOp = (u8, u32, usize, usize, u64, usize);

/// Turns raw tuples into a valid story in time order (answers and rectifications pick an
/// open shipment or finding from before them).
fn story(raw: &[RawOp]) -> Vec<Op> {
    let start = ms("2024-03-01T00:00:00+08:00");
    let mut raw = raw.to_vec();
    raw.sort_by_key(|r| r.1);
    let mut open_ships: Vec<ShippedFact> = Vec::new();
    let mut open_findings: Vec<FindingFact> = Vec::new();
    let mut ops = Vec::new();
    for (i, (kind, minute, di, oi, count, pick)) in raw.into_iter().enumerate() {
        let at_ms = start + i64::from(minute) * 60_000;
        let (d, o) = (DISTRICTS[di % 3].to_string(), DISTRICTS[oi % 3].to_string());
        let t = tx(7, i as u64);
        let op = match kind % 8 {
            0 | 1 => Op::Coded(CodedFact {
                tx_id: t,
                at_ms,
                coder: format!("C{d}"),
                coder_district: d.clone(),
                batches: count,
                key_variety_batches: count / 2,
                upstream: match pick % 4 {
                    0 => UpstreamFact::None,
                    1 => UpstreamFact::Registered {
                        subject: format!("U{o}"),
                        district: o.clone(),
                    },
                    2 => UpstreamFact::Unregistered {
                        region: o.clone(),
                        in_region_table: true,
                    },
                    _ => UpstreamFact::Unregistered {
                        region: "110101".into(),
                        in_region_table: false,
                    },
                },
            }),
            2 | 3 => {
                let f = ShippedFact {
                    tx_id: t,
                    at_ms,
                    shipper: format!("C{d}"),
                    shipper_district: d.clone(),
                    receiver: format!("R{o}"),
                    receiver_district: o.clone(),
                    lines: count,
                    key_variety_lines: count / 3,
                };
                open_ships.push(f.clone());
                Op::Shipped(f)
            }
            4 if !open_ships.is_empty() => {
                let s = open_ships.remove(pick % open_ships.len());
                Op::Answered(AnsweredFact {
                    tx_id: t,
                    shipment_tx_id: s.tx_id,
                    shipped_at_ms: s.at_ms,
                    at_ms,
                    rejected: pick % 3 == 0,
                    shipper_district: s.shipper_district,
                    receiver: s.receiver,
                    receiver_district: s.receiver_district,
                    lines: s.lines,
                    key_variety_lines: s.key_variety_lines,
                })
            }
            5 => {
                let kind = [
                    FindingKind::Uncoded,
                    FindingKind::OffChain,
                    FindingKind::Other,
                ][pick % 3];
                let f = FindingFact {
                    tx_id: t,
                    at_ms,
                    subject: format!("C{d}"),
                    district: d.clone(),
                    kind,
                    batches: count,
                };
                if kind == FindingKind::Uncoded {
                    open_findings.push(f.clone());
                }
                Op::Finding(f)
            }
            6 if !open_findings.is_empty() => {
                let f = open_findings.remove(pick % open_findings.len());
                Op::Rectified(RectifiedFact {
                    tx_id: t,
                    finding_tx_id: f.tx_id,
                    finding_at_ms: f.at_ms,
                    at_ms,
                    subject: f.subject,
                    district: f.district,
                    batches: f.batches,
                })
            }
            _ => Op::Adjustment(AdjustmentFact {
                tx_id: t,
                at_ms,
                district: d.clone(),
                term: if pick % 2 == 0 { Term::G } else { Term::H },
                points_hundredths: count as i64 * 25,
            }),
        };
        ops.push(op);
    }
    ops
}

fn raw_ops() -> impl Strategy<Value = Vec<RawOp>> {
    prop::collection::vec(
        (
            0u8..8,
            0u32..(35 * 24 * 60),
            0usize..3,
            0usize..3,
            1u64..20,
            0usize..100,
        ),
        0..60,
    )
}

/// Applies ops in blocks: `cuts[i]` ends a block after op i.
fn apply_in_blocks(ops: &[Op], cuts: &[bool]) -> MemoryKv {
    let p = zj();
    let mut base = MemoryKv::new();
    let mut i = 0;
    while i < ops.len() {
        let changes = {
            let mut block = Overlay::new(&base);
            loop {
                apply_op(&mut block, &p, &ops[i]).expect("valid story");
                i += 1;
                if i >= ops.len() || cuts.get(i - 1).copied().unwrap_or(false) {
                    break;
                }
            }
            block.into_changes()
        };
        base.apply(&changes);
    }
    base
}

fn table() -> Vec<String> {
    DISTRICTS.iter().map(|d| d.to_string()).collect()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, .. ProptestConfig::default() })]

    #[test]
    fn result_does_not_depend_on_block_grouping(raw in raw_ops(), cuts in prop::collection::vec(any::<bool>(), 60)) {
        let ops = story(&raw);
        let one = apply_in_blocks(&ops, &[]);
        let each = apply_in_blocks(&ops, &vec![true; ops.len()]);
        let mixed = apply_in_blocks(&ops, &cuts);
        prop_assert_eq!(index_rows(&one), index_rows(&each));
        prop_assert_eq!(index_rows(&one), index_rows(&mixed));
        let p = zj();
        for (from, to) in [("2024-03-01", "2024-03-31"), ("2024-03-10", "2024-04-10")] {
            let r1 = scores(&one, &p, &table(), period(from, to), None).unwrap();
            let r2 = scores(&mixed, &p, &table(), period(from, to), None).unwrap();
            prop_assert_eq!(r1, r2);
        }
    }

    #[test]
    fn an_event_near_midnight_lands_on_its_natural_day(day in 0i32..365, delta_ms in -7_200_000i64..7_200_000) {
        let p = zj();
        let d = day_number(date("2024-01-01")) + day;
        let start = day_start_ms(&p, date_of_day(d).unwrap()).unwrap();
        let at_ms = start + delta_ms;
        let mut kv = MemoryKv::new();
        on_coded(&mut kv, &p, &CodedFact { tx_id: tx(1, 0), at_ms, coder: "S".into(), coder_district: "330102".into(), batches: 1, key_variety_batches: 0, upstream: UpstreamFact::None }).unwrap();
        on_shipped(&mut kv, &p, &ShippedFact { tx_id: tx(2, 0), at_ms, shipper: "S".into(), shipper_district: "330102".into(), receiver: "R".into(), receiver_district: "330102".into(), lines: 1, key_variety_lines: 0 }).unwrap();
        let event_day = if delta_ms >= 0 { d } else { d - 1 };
        prop_assert_eq!(day_number(local_date(&p, at_ms).unwrap()), event_day);
        let only = |day: i32| Period::new(date_of_day(day).unwrap(), date_of_day(day).unwrap()).unwrap();
        let t = vec!["330102".to_string()];
        for probe in [d - 1, d] {
            let r = scores(&kv, &p, &t, only(probe), None).unwrap();
            prop_assert_eq!(r.districts["330102"].n, u64::from(probe == event_day));
        }
        // The unanswered line counts on its deadline day: local day + 2 + 1.
        let due = event_day + 3;
        prop_assert_eq!(deadline_ms(&p, at_ms, 2).unwrap(), day_start_ms(&p, date_of_day(due).unwrap()).unwrap());
        for probe in [due - 1, due, due + 1] {
            let r = scores(&kv, &p, &t, only(probe), None).unwrap();
            prop_assert_eq!(r.districts["330102"].scanning.a, u64::from(probe == due));
        }
    }

    #[test]
    fn an_event_in_one_district_changes_no_other_districts_terms(raw in raw_ops(), kind in 0u8..5, minute in 0u32..(31 * 24 * 60), di in 0usize..3, count in 1u64..50) {
        let ops = story(&raw);
        let d = DISTRICTS[di].to_string();
        let at_ms = ms("2024-03-01T00:00:00+08:00") + i64::from(minute) * 60_000;
        let t = tx(9, 0);
        let extra = match kind {
            0 => Op::Coded(CodedFact { tx_id: t, at_ms, coder: "X".into(), coder_district: d.clone(), batches: count, key_variety_batches: 0, upstream: UpstreamFact::None }),
            1 => Op::Finding(FindingFact { tx_id: t, at_ms, subject: "X".into(), district: d.clone(), kind: FindingKind::Uncoded, batches: count }),
            2 => Op::Finding(FindingFact { tx_id: t, at_ms, subject: "X".into(), district: d.clone(), kind: FindingKind::OffChain, batches: count }),
            3 => Op::Adjustment(AdjustmentFact { tx_id: t, at_ms, district: d.clone(), term: Term::H, points_hundredths: count as i64 }),
            _ => Op::Shipped(ShippedFact { tx_id: t, at_ms, shipper: "X".into(), shipper_district: d.clone(), receiver: "Y".into(), receiver_district: d.clone(), lines: count, key_variety_lines: 0 }),
        };
        let p = zj();
        let before = apply_in_blocks(&ops, &[]);
        let mut after = before.clone();
        apply_op(&mut after, &p, &extra).unwrap();
        for (from, to) in [("2024-03-01", "2024-03-31"), ("2024-03-15", "2024-04-15")] {
            let r1 = scores(&before, &p, &table(), period(from, to), None).unwrap();
            let r2 = scores(&after, &p, &table(), period(from, to), None).unwrap();
            for other in DISTRICTS.iter().filter(|o| **o != d) {
                let (mut a, mut b) = (r1.districts[*other].clone(), r2.districts[*other].clone());
                // Only rank and f (and so the rates, by f exactly) may differ.
                let base = |s: &DistrictScore, rate: &Option<String>| rate.as_ref().map(|r| parse_ratio(r).checked_sub(Ratio::int(i128::from(s.f))).unwrap());
                prop_assert_eq!(base(&a, &a.coding.rate_exact), base(&b, &b.coding.rate_exact));
                prop_assert_eq!(base(&a, &a.scanning.rate_exact), base(&b, &b.scanning.rate_exact));
                for s in [&mut a, &mut b] {
                    s.rank = 0;
                    s.f = 0;
                    s.coding.rate = None;
                    s.coding.rate_exact = None;
                    s.scanning.rate = None;
                    s.scanning.rate_exact = None;
                }
                prop_assert_eq!(a, b);
            }
        }
    }
}

fn parse_ratio(s: &str) -> Ratio {
    match s.split_once('/') {
        Some((n, d)) => Ratio::new(n.parse().unwrap(), d.parse().unwrap()).unwrap(),
        None => Ratio::int(s.parse().unwrap()),
    }
}
