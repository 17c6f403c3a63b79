//! A seeded fault campaign against real `zsl` processes (`scripts/chaos`):
//! a three-validator cluster on loopback under signed load sent to every
//! node, while each round kills (SIGKILL) the leader, a follower, two nodes
//! or all three, or freezes (SIGSTOP) the leader or two nodes, and restarts
//! or resumes them after a seeded delay. Afterwards every acknowledged
//! transaction must be committed on every node, the heads must agree, and
//! `zsl verify-chain` must pass on every node's store.

use std::collections::{BTreeMap, BTreeSet};
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::{poll, zsl_binary, TestCluster};

/// How long a client waits for one commit answer.
const CLIENT_TIMEOUT_MS: u64 = 5_000;
/// How long the cluster may take to commit again after a round.
const RECOVERY_MS_MAX: u64 = 60_000;

#[derive(Debug, Clone)]
pub struct ChaosConfig {
    pub seed: u64,
    pub rounds: u32,
    /// Client threads, each sending to a random node.
    pub clients: usize,
}

/// What a campaign did and found.
#[derive(Debug, Default)]
pub struct ChaosReport {
    pub rounds: u32,
    /// Faults by kind.
    pub faults: BTreeMap<&'static str, u32>,
    pub acknowledged: usize,
    /// Acknowledged transactions some node does not hold, with the node.
    pub lost: Vec<String>,
    pub heads_agree: bool,
    /// `zsl verify-chain` passed on every node.
    pub chains_verify: bool,
    /// From each fault to the cluster's next commit, ms.
    pub recovery_ms: Vec<u64>,
    pub problems: Vec<String>,
}

impl ChaosReport {
    pub fn ok(&self) -> bool {
        self.lost.is_empty() && self.heads_agree && self.chains_verify && self.problems.is_empty()
    }

    /// The one-line summary `scripts/chaos` prints last.
    pub fn summary(&self) -> String {
        let mut r = self.recovery_ms.clone();
        r.sort_unstable();
        let p50 = r.get(r.len() / 2).copied().unwrap_or(0);
        let max = r.last().copied().unwrap_or(0);
        format!(
            "{} rounds, {} acknowledged, {} lost, heads {}, verify-chain {}, recovery p50 {p50} ms max {max} ms: {}",
            self.rounds,
            self.acknowledged,
            self.lost.len(),
            if self.heads_agree { "agree" } else { "DIFFER" },
            if self.chains_verify { "passed" } else { "FAILED" },
            if self.ok() { "ok" } else { "FAILED" },
        )
    }
}

/// SplitMix64, so a seed names a campaign.
struct Rng(u64);

impl Rng {
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n.max(1)
    }
}

/// Acknowledged transaction ids, from every client.
type Acked = Arc<Mutex<Vec<String>>>;

pub fn run(config: &ChaosConfig) -> ChaosReport {
    let mut rng = Rng(config.seed);
    let mut cluster = TestCluster::start(3);
    let mut report = ChaosReport::default();
    cluster.leader(RECOVERY_MS_MAX);
    let acked: Acked = Arc::default();
    let stop = Arc::new(AtomicBool::new(false));
    let clients: Vec<_> = (0..config.clients)
        .map(|c| spawn_client(&cluster, c, config.seed, acked.clone(), stop.clone()))
        .collect();
    for round in 0..config.rounds {
        let fault = one_round(&mut cluster, &mut rng, round, &mut report);
        *report.faults.entry(fault).or_default() += 1;
        report.rounds += 1;
    }
    stop.store(true, Ordering::Relaxed);
    for c in clients {
        let _ = c.join();
    }
    settle(&mut cluster, &mut report);
    let acked = acked.lock().unwrap_or_else(PoisonError::into_inner).clone();
    report.acknowledged = acked.len();
    for id in cluster.ids() {
        for tx in &acked {
            let (status, body) = cluster.get(id, &format!("/v1/tx/{tx}"));
            if status != 200 || body["status"] != "committed" {
                report
                    .lost
                    .push(format!("node {id}: {tx} answers {status} {body}"));
            }
        }
    }
    report.chains_verify = verify_chains(&mut cluster, &mut report);
    report
}

/// A client: signed `document.notarize` records to random nodes, waiting
/// for each commit; what is answered `committed` is acknowledged.
fn spawn_client(
    cluster: &TestCluster,
    client: usize,
    seed: u64,
    acked: Acked,
    stop: Arc<AtomicBool>,
) -> std::thread::JoinHandle<()> {
    let apis: Vec<String> = cluster
        .ids()
        .iter()
        .map(|&id| cluster.api(id).to_string())
        .collect();
    let (chain, root, account) = (
        cluster.spec.chain_id.clone(),
        cluster.root_key(),
        cluster.root.account.clone(),
    );
    std::thread::spawn(move || {
        let http = reqwest::blocking::Client::builder()
            .timeout(Duration::from_millis(CLIENT_TIMEOUT_MS))
            .build()
            .expect("http client");
        let mut rng = Rng(seed ^ (client as u64 + 1).wrapping_mul(0x51ed));
        let mut n = 0u64;
        while !stop.load(Ordering::Relaxed) {
            n += 1;
            let tx = crate::notarize(
                &chain,
                &root,
                &account,
                &format!("chaos {seed} client {client} record {n}"),
            );
            let api = &apis[rng.below(apis.len() as u64) as usize];
            let answer = http
                .post(format!("{api}/v1/tx?wait=commit"))
                .json(&tx)
                .send()
                .and_then(|r| r.json::<Value>());
            match answer {
                Ok(body) if body["status"] == "committed" => {
                    if let Some(id) = body["tx_id"].as_str() {
                        acked
                            .lock()
                            .unwrap_or_else(PoisonError::into_inner)
                            .push(id.to_string());
                    }
                }
                // Refused, unreachable, timed out: not acknowledged.
                _ => std::thread::sleep(Duration::from_millis(20)),
            }
        }
    })
}

/// One fault, its seeded duration, recovery, and the time until the
/// cluster commits again.
fn one_round(
    cluster: &mut TestCluster,
    rng: &mut Rng,
    round: u32,
    report: &mut ChaosReport,
) -> &'static str {
    let leader = cluster.leader(RECOVERY_MS_MAX);
    let ids = cluster.ids();
    let followers: Vec<u64> = ids.iter().copied().filter(|&i| i != leader).collect();
    let follower = followers[rng.below(followers.len() as u64) as usize];
    let hold = Duration::from_millis(200 + rng.below(2_800));
    let kinds = [
        "kill leader",
        "kill follower",
        "kill two",
        "kill all",
        "pause leader",
        "pause two",
    ];
    let kind = kinds[rng.below(kinds.len() as u64) as usize];
    let started = Instant::now();
    match kind {
        "kill leader" | "kill follower" | "kill two" | "kill all" => {
            let victims: Vec<u64> = match kind {
                "kill leader" => vec![leader],
                "kill follower" => vec![follower],
                "kill two" => vec![leader, follower],
                _ => ids.clone(),
            };
            for &v in &victims {
                cluster.kill9(v);
            }
            std::thread::sleep(hold);
            for &v in &victims {
                cluster.launch(v);
            }
        }
        _ => {
            let frozen = if kind == "pause leader" {
                vec![leader]
            } else {
                vec![leader, follower]
            };
            let paused = cluster.pause(&frozen);
            std::thread::sleep(hold);
            paused.resume();
        }
    }
    match commits_again(cluster, round) {
        Ok(()) => report
            .recovery_ms
            .push(started.elapsed().as_millis() as u64),
        Err(e) => report.problems.push(format!("round {round} ({kind}): {e}")),
    }
    kind
}

/// A probe commits through the leader of the moment.
fn commits_again(cluster: &TestCluster, round: u32) -> Result<(), String> {
    let deadline = Instant::now() + Duration::from_millis(RECOVERY_MS_MAX);
    let mut n = 0;
    while Instant::now() < deadline {
        n += 1;
        let probe = cluster.notarize(&format!("chaos probe {round} {n}"));
        for id in cluster.ids() {
            let (status, body) = cluster.submit(id, &probe);
            if status < 300 && body["status"] == "committed" {
                return Ok(());
            }
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    Err(format!("no commit within {RECOVERY_MS_MAX} ms"))
}

/// Waits until every node has one head, unchanged for a second.
fn settle(cluster: &mut TestCluster, report: &mut ChaosReport) {
    cluster.leader(RECOVERY_MS_MAX);
    let mut last: Option<BTreeSet<(u64, String)>> = None;
    let settled = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        poll("heads to agree", RECOVERY_MS_MAX, || {
            let heads: BTreeSet<(u64, String)> = cluster
                .ids()
                .into_iter()
                .filter_map(|id| {
                    let s = cluster.status(id)?;
                    Some((s["height"].as_u64()?, s["head_hash"].as_str()?.to_string()))
                })
                .collect();
            let agreed = heads.len() == 1 && last.as_ref() == Some(&heads);
            last = Some(heads);
            if agreed {
                Some(())
            } else {
                std::thread::sleep(Duration::from_millis(500));
                None
            }
        })
    }));
    report.heads_agree = settled.is_ok();
}

/// Stops every node cleanly and runs `zsl verify-chain` on its store.
fn verify_chains(cluster: &mut TestCluster, report: &mut ChaosReport) -> bool {
    let mut ok = true;
    let genesis = cluster.dir.path().join("genesis.json");
    for id in cluster.ids() {
        cluster.stop(id);
        let out = Command::new(zsl_binary())
            .args(["verify-chain", "--data"])
            .arg(cluster.data_dir(id).join("db"))
            .arg("--genesis")
            .arg(&genesis)
            .output();
        match out {
            Ok(o) if o.status.success() => {}
            Ok(o) => {
                ok = false;
                report.problems.push(format!(
                    "node {id}: verify-chain: {}{}",
                    String::from_utf8_lossy(&o.stdout),
                    String::from_utf8_lossy(&o.stderr)
                ));
            }
            Err(e) => {
                ok = false;
                report
                    .problems
                    .push(format!("node {id}: verify-chain did not run: {e}"));
            }
        }
    }
    ok
}
