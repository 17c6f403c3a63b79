//! Replays of valid stories through the real ledger: the story the scenario
//! check once refused (a batch re-shipped after its receiver rejected it), and
//! random valid stories, which must all replay without a refusal.

use proptest::prelude::*;
use serde_json::{json, Value};

use super::*;

/// Districts of the region table the stories use (Hangzhou's first three).
const DISTRICTS: [&str; 3] = ["330102", "330105", "330106"];
const KINDS: [&str; 4] = ["producer", "wholesaler", "supermarket", "restaurant"];
const START_MS: i64 = 1_709_254_800_000; // 2024-03-01T09:00:00+08:00

fn at(ms: i64) -> String {
    jiff::Timestamp::from_millisecond(ms)
        .expect("in range")
        .to_zoned_datetime(jiff::tz::TimeZone::fixed(jiff::tz::offset(8)))
        .strftime("%Y-%m-%dT%H:%M:%S%.3f%:z")
        .to_string()
}

fn date(ms: i64) -> String {
    at(ms)[..10].to_string()
}

fn run(story: &Value) -> Result<Value> {
    let s = scenario::parse(&story.to_string())?;
    let dir = tempfile::tempdir()?;
    replay(&s, None, None, dir.path())
}

fn two_subject_story(events: Vec<Value>) -> Value {
    json!({
        "model": "zj-2024",
        "period": {"from": "2024-03-01", "to": "2024-03-31"},
        "districts": ["330102"],
        "subjects": [
            {"id": "S1", "district": "330102", "kind": "producer"},
            {"id": "S7", "district": "330102", "kind": "supermarket"},
            {"id": "S8", "district": "330102", "kind": "restaurant"}
        ],
        "events": events,
    })
}

#[test]
fn a_rejected_batch_returns_to_its_shipper_and_ships_again() {
    let story = two_subject_story(vec![
        json!({"at": "2024-03-01T09:00:00+08:00", "type": "code", "by": "S1", "batches": ["B2"]}),
        json!({"at": "2024-03-02T09:00:00+08:00", "type": "ship", "id": "H1", "from": "S1", "to": "S7", "batches": ["B2"]}),
        json!({"at": "2024-03-02T10:00:00+08:00", "type": "reject", "shipment": "H1", "reason": "temperature"}),
        json!({"at": "2024-03-03T09:00:00+08:00", "type": "ship", "id": "H2", "from": "S1", "to": "S8", "batches": ["B2"]}),
        json!({"at": "2024-03-03T10:00:00+08:00", "type": "receive", "shipment": "H2"}),
    ]);
    let report = run(&story).expect("the story replays");
    // One batch coded; one line rejected, charged to the shipper's district.
    let d = &report["districts"]["330102"];
    assert_eq!(
        (d["N"].as_u64(), d["scanning"]["c"].as_u64()),
        (Some(1), Some(1)),
        "{report:#}"
    );
}

#[test]
fn a_batch_in_transit_is_held_by_nobody() {
    let ship = |id: &str, from: &str, to: &str, at: &str| json!({"at": at, "type": "ship", "id": id, "from": from, "to": to, "batches": ["B2"]});
    let code =
        json!({"at": "2024-03-01T09:00:00+08:00", "type": "code", "by": "S1", "batches": ["B2"]});
    // The receiver ships on before answering: the ledger would refuse it.
    let early = two_subject_story(vec![
        code.clone(),
        ship("H1", "S1", "S7", "2024-03-02T09:00:00+08:00"),
        ship("H2", "S7", "S8", "2024-03-02T10:00:00+08:00"),
    ]);
    let e = run(&early).unwrap_err().to_string();
    assert!(e.contains("event 2") && e.contains("in shipment H1"), "{e}");
    // After a rejection the receiver holds nothing.
    let rejected = two_subject_story(vec![
        code.clone(),
        ship("H1", "S1", "S7", "2024-03-02T09:00:00+08:00"),
        json!({"at": "2024-03-02T10:00:00+08:00", "type": "reject", "shipment": "H1", "reason": "x"}),
        ship("H2", "S7", "S8", "2024-03-02T11:00:00+08:00"),
    ]);
    let e = run(&rejected).unwrap_err().to_string();
    assert!(e.contains("held by S1, not by S7"), "{e}");
    let to_itself = two_subject_story(vec![
        code,
        ship("H1", "S1", "S1", "2024-03-02T09:00:00+08:00"),
    ]);
    let e = run(&to_itself).unwrap_err().to_string();
    assert!(e.contains("ships to itself"), "{e}");
}

#[test]
fn ledger_limits_are_refused_up_front_and_odd_labels_map_to_ledger_ids() {
    let story = |points: f64| {
        two_subject_story(vec![
            json!({"at": "2024-03-01T09:00:00+08:00", "type": "code", "by": "S1", "batches": ["批次 1"]}),
            json!({"at": "2024-03-02T09:00:00+08:00", "type": "ship", "id": "出库 1", "from": "S1", "to": "S7", "batches": ["批次 1"]}),
            json!({"at": "2024-03-02T10:00:00+08:00", "type": "reject", "shipment": "出库 1", "reason": ""}),
            json!({"at": "2024-03-03T09:00:00+08:00", "type": "adjust", "district": "330102", "term": "h", "points": points, "reason": "r"}),
        ])
    };
    run(&story(1.5)).expect("labels the ledger does not take as ids still replay");
    let e = run(&story(0.0)).unwrap_err().to_string();
    assert!(e.contains("event 3") && e.contains("0.01-100"), "{e}");
}

/// One step of a random story; [`StoryBuilder`] turns it into a valid event
/// or skips it where the story's state offers nothing it could do.
#[derive(Debug, Clone)]
enum Step {
    Code {
        by: usize,
        n: usize,
        upstream: usize,
    },
    Ship {
        from: usize,
        to: usize,
        pick: u32,
    },
    Answer {
        pick: usize,
        reject: bool,
    },
    Find {
        subject: usize,
        off_chain: bool,
        batches: u64,
    },
    Rectify {
        pick: usize,
    },
    Adjust {
        district: usize,
        h: bool,
        hundredths: u32,
    },
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        3 => (0..8usize, 1..4usize, 0..4usize).prop_map(|(by, n, upstream)| Step::Code { by, n, upstream }),
        4 => (0..8usize, 0..8usize, any::<u32>()).prop_map(|(from, to, pick)| Step::Ship { from, to, pick }),
        4 => (0..64usize, any::<bool>()).prop_map(|(pick, reject)| Step::Answer { pick, reject }),
        1 => (0..8usize, any::<bool>(), 1..50u64).prop_map(|(subject, off_chain, batches)| Step::Find { subject, off_chain, batches }),
        1 => (0..64usize).prop_map(|pick| Step::Rectify { pick }),
        1 => (0..3usize, any::<bool>(), 1..10_000u32).prop_map(|(district, h, hundredths)| Step::Adjust { district, h, hundredths }),
    ]
}

/// Gaps between events: often none (one block), minutes, hours or days.
fn gap_ms() -> impl Strategy<Value = i64> {
    prop_oneof![
        Just(0i64),
        1..600_000i64,
        3_600_000..86_400_000i64,
        86_400_000..(5 * 86_400_000i64)
    ]
}

struct StoryBuilder {
    subjects: usize,
    /// Batch and holder (`None`: in transit).
    batches: Vec<(String, Option<usize>)>,
    /// Unanswered shipments: id, shipper, receiver, batch indices.
    pending: Vec<(String, usize, usize, Vec<usize>)>,
    /// Unrectified `uncoded` findings.
    open_findings: Vec<String>,
    events: Vec<Value>,
    serial: usize,
}

impl StoryBuilder {
    fn next_id(&mut self, prefix: &str) -> String {
        self.serial += 1;
        format!("{prefix}{}", self.serial)
    }

    fn push(&mut self, ms: i64, step: &Step) {
        let subjects = self.subjects;
        let s = move |i: usize| format!("S{}", i % subjects);
        let event = match *step {
            Step::Code { by, n, upstream } => {
                let by = by % self.subjects;
                let ids: Vec<String> = (0..n).map(|_| self.next_id("B")).collect();
                self.batches
                    .extend(ids.iter().map(|b| (b.clone(), Some(by))));
                let mut e = json!({"type": "code", "by": s(by), "batches": ids});
                let other = (by + 1) % self.subjects;
                match upstream {
                    1 => e["upstream"] = json!(s(other)),
                    2 => e["upstream"] = json!({"district": DISTRICTS[by % DISTRICTS.len()]}),
                    3 => e["upstream"] = json!({"district": "320102"}),
                    _ => {}
                }
                e
            }
            Step::Ship { from, to, pick } => {
                let from = from % self.subjects;
                let mut to = to % self.subjects;
                if to == from {
                    to = (to + 1) % self.subjects;
                }
                let held: Vec<usize> = (0..self.batches.len())
                    .filter(|&i| self.batches[i].1 == Some(from))
                    .collect();
                let chosen: Vec<usize> = held
                    .iter()
                    .enumerate()
                    .filter(|(k, _)| pick & (1 << (k % 32)) != 0)
                    .map(|(_, &i)| i)
                    .collect();
                if chosen.is_empty() {
                    return;
                }
                let id = self.next_id("H");
                for &i in &chosen {
                    self.batches[i].1 = None;
                }
                let names: Vec<&str> = chosen.iter().map(|&i| self.batches[i].0.as_str()).collect();
                let e = json!({"type": "ship", "id": id, "from": s(from), "to": s(to), "batches": names});
                self.pending.push((id, from, to, chosen));
                e
            }
            Step::Answer { pick, reject } => {
                if self.pending.is_empty() {
                    return;
                }
                let (id, from, to, lines) = self.pending.remove(pick % self.pending.len());
                let back_to = if reject { from } else { to };
                for i in lines {
                    self.batches[i].1 = Some(back_to);
                }
                if reject {
                    json!({"type": "reject", "shipment": id, "reason": "不合格"})
                } else {
                    json!({"type": "receive", "shipment": id})
                }
            }
            Step::Find {
                subject,
                off_chain,
                batches,
            } => {
                let id = self.next_id("F");
                if !off_chain {
                    self.open_findings.push(id.clone());
                }
                let kind = if off_chain { "off_chain" } else { "uncoded" };
                json!({"type": "finding", "id": id, "kind": kind, "subject": s(subject), "batches": batches})
            }
            Step::Rectify { pick } => {
                if self.open_findings.is_empty() {
                    return;
                }
                let id = self.open_findings.remove(pick % self.open_findings.len());
                json!({"type": "rectify", "finding": id})
            }
            Step::Adjust {
                district,
                h,
                hundredths,
            } => {
                let points =
                    serde_json::Number::from_f64(f64::from(hundredths) / 100.0).expect("finite");
                json!({"type": "adjust", "district": DISTRICTS[district], "term": if h { "h" } else { "g" }, "points": points, "reason": "酌情"})
            }
        };
        let mut event = event;
        event["at"] = json!(at(ms));
        self.events.push(event);
    }
}

fn story(kinds: &[usize], steps: &[(i64, Step)]) -> Value {
    let mut b = StoryBuilder {
        subjects: kinds.len(),
        batches: Vec::new(),
        pending: Vec::new(),
        open_findings: Vec::new(),
        events: Vec::new(),
        serial: 0,
    };
    let mut ms = START_MS;
    for (gap, step) in steps {
        ms += gap;
        b.push(ms, step);
    }
    let subjects: Vec<Value> = kinds
        .iter()
        .enumerate()
        .map(|(i, &k)| json!({"id": format!("S{i}"), "district": DISTRICTS[i % DISTRICTS.len()], "kind": KINDS[k]}))
        .collect();
    json!({
        "model": "zj-2024",
        "period": {"from": date(START_MS), "to": date(ms)},
        "districts": DISTRICTS,
        "subjects": subjects,
        "events": b.events,
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(32))]

    /// Coding (in lieu, too), shipping, receiving, rejecting and re-shipping,
    /// findings, rectifications and adjustments in any valid order replay
    /// through the ledger without a refusal.
    #[test]
    fn random_valid_stories_replay(
        kinds in prop::collection::vec(0..KINDS.len(), 2..6),
        steps in prop::collection::vec((gap_ms(), step()), 1..60),
    ) {
        let story = story(&kinds, &steps);
        let events = story["events"].as_array().map_or(0, Vec::len);
        let report = run(&story).map_err(|e| TestCaseError::fail(format!("{e:#}\n{story:#}")))?;
        prop_assert_eq!(report["districts"].as_object().map(|d| d.len()), Some(DISTRICTS.len()));
        let head = report["checkpoint"]["height"].as_u64().unwrap_or(0);
        // Genesis, subjects, products, then at least one block per instant with events.
        prop_assert!(events == 0 || head >= 3, "height {} for {} events", head, events);
    }
}
