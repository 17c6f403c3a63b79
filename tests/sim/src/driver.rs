//! One run: the cluster, the clients, the fault campaign and the checker,
//! all tasks on one current-thread runtime with paused time.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use consensus::simulation::SplitMix64;
use consensus::{FaultPlan, MemRouter, TxResult};
use ledger::RefusalCode;
use sha2::{Digest, Sha256};

use crate::checks::{self, Heights};
use crate::cluster::{self, Cluster};
use crate::workload::{Tx, Workload};
use crate::{SimConfig, SimReport, NODES_MAX};

/// Concurrent clients.
const CLIENTS: u64 = 12;
/// How long a client waits for one answer before it asks elsewhere.
const CLIENT_DEADLINE_MS: u64 = 10_000;
/// Submissions of one transaction before its client gives up on it.
const ATTEMPTS_MAX: u32 = 8;
/// Operations that are reads, per hundred.
const READS_PER_HUNDRED: u64 = 55;
/// How long the cluster may take to converge once the campaign ends.
const CONVERGE_MS_MAX: u64 = 120_000;
/// How long heads must stay equal and unchanged to count as converged.
const QUIET_MS: u64 = 3_000;
/// Simulated wall-clock time at the start: the test kit's T0.
const EPOCH_MS: i64 = ledger::testkit::T0;

/// Runs one simulation to the end and reports what it found.
pub fn run(config: &SimConfig) -> SimReport {
    // Seeded, so every unbiased `select!` (openraft's among them) picks
    // its branches in the same order on a replay.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .start_paused(true)
        .rng_seed(tokio::runtime::RngSeed::from_bytes(
            &config.seed.to_le_bytes(),
        ))
        .build();
    let runtime = match runtime {
        Ok(r) => r,
        Err(e) => {
            return SimReport {
                seed: config.seed,
                violations: vec![format!("no runtime: {e}")],
                ..Default::default()
            }
        }
    };
    runtime.block_on(simulate(config.clone()))
}

/// A transaction's acknowledgements so far.
#[derive(Default)]
struct Record {
    /// Where a committed answer put it.
    committed: Option<(u64, u32)>,
    /// Answered `replayed`: committed by an earlier submission.
    replayed: bool,
    /// A refusal other than `replayed`.
    refused: Option<RefusalCode>,
    /// Every submission got an answer (none timed out or was cut off).
    all_answered: bool,
    /// The partition episode all its submissions went to a minority of, if so.
    minority_only: Option<u64>,
    submissions: u32,
}

/// A partition in force: its number and the nodes on the losing side.
struct Episode {
    id: u64,
    minority: BTreeSet<u64>,
}

struct Shared {
    ops_target: u64,
    ops_started: u64,
    report: SimReport,
    workload: Workload,
    records: BTreeMap<[u8; 32], Record>,
    /// Transactions answered committed, in the order of their first such answer.
    acked: Vec<[u8; 32]>,
    partition: Option<Episode>,
    episodes: u64,
    /// The one validator this run removes and re-adds (once drawn): the
    /// voter sets a partition's sides are judged against include the set
    /// without it.
    membership_target: Option<u64>,
    heights: Heights,
    digest: Sha256,
    done: bool,
}

type Share = Arc<Mutex<Shared>>;
type ClusterShare = Arc<Mutex<Cluster>>;

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Shared {
    fn violation(&mut self, what: String) {
        // The first few say what went wrong; a broken run may find thousands.
        if self.report.violations.len() < 100 {
            self.report.violations.push(what);
        }
    }
}

async fn simulate(config: SimConfig) -> SimReport {
    let _simulation = consensus::simulation::enter(config.seed, EPOCH_MS, 1..=8);
    let mut rng = SplitMix64(config.seed);
    let nodes = config
        .nodes
        .unwrap_or(3 + rng.range(0, 2) as usize)
        .clamp(3, NODES_MAX);
    let spec = ledger::testkit::spec(ledger::testkit::three_districts(), nodes);
    let shared: Share = Arc::new(Mutex::new(Shared {
        ops_target: config.ops,
        ops_started: 0,
        report: SimReport {
            seed: config.seed,
            nodes,
            ..Default::default()
        },
        workload: Workload::new(&spec.chain_id),
        records: BTreeMap::new(),
        acked: Vec::new(),
        partition: None,
        episodes: 0,
        membership_target: None,
        heights: Heights::default(),
        digest: Sha256::new(),
        done: false,
    }));
    let started = tokio::time::Instant::now();
    let cluster = match start_cluster(spec, &mut rng).await {
        Ok(c) => Arc::new(Mutex::new(c)),
        Err(e) => {
            let mut s = lock(&shared);
            s.violation(format!("cluster did not start: {e}"));
            return s.report.clone();
        }
    };
    setup(&shared, &cluster, &mut rng).await;
    let checker = tokio::spawn(check_continuously(shared.clone(), cluster.clone()));
    let campaign = tokio::spawn(campaign(shared.clone(), cluster.clone(), rng.next_u64()));
    let mut clients = Vec::new();
    for c in 0..CLIENTS {
        let seed = rng.next_u64() ^ c;
        clients.push(tokio::spawn(client(shared.clone(), cluster.clone(), seed)));
    }
    for c in clients {
        let _ = c.await;
    }
    lock(&shared).done = true;
    let _ = campaign.await;
    let _ = checker.await;
    finish(&shared, &cluster).await;
    let mut s = lock(&shared);
    s.report.ops = s.report.txs + s.report.reads;
    s.report.sim_ms = started.elapsed().as_millis() as u64;
    let stats = lock(&cluster).router.stats();
    s.report.messages_dropped = stats.dropped;
    s.report.messages_duplicated = stats.duplicated;
    let unknown = s
        .records
        .values()
        .filter(|r| r.committed.is_none() && !r.replayed && r.refused.is_none())
        .count();
    s.report.unknown = unknown as u64;
    let digest = std::mem::take(&mut s.digest);
    s.report.digest = hex::encode(digest.finalize());
    s.report.clone()
}

async fn start_cluster(
    spec: ledger::spec::ChainSpec,
    rng: &mut SplitMix64,
) -> Result<Cluster, String> {
    let router = MemRouter::new(FaultPlan {
        seed: rng.next_u64(),
        ..Default::default()
    })
    .map_err(|e| e.to_string())?;
    let mut cluster = Cluster::new(spec, router)?;
    for id in cluster.ids() {
        let params = cluster.boot_params(id, rng).ok_or("no member")?;
        let node = cluster::boot(params).await?;
        cluster.install(id, node)?;
    }
    let first = cluster.node(1).ok_or("node 1 is not running")?;
    first
        .initialize_cluster(cluster.voters())
        .await
        .map_err(|e| format!("initialise: {e}"))?;
    Ok(cluster)
}

/// The regulator registers every subject, then producers their products.
async fn setup(shared: &Share, cluster: &ClusterShare, rng: &mut SplitMix64) {
    let now = consensus::clock::now_ms();
    let (subjects, products) = lock(shared).workload.setup(now);
    for wave in [subjects, products] {
        let mut waiting = Vec::new();
        for tx in wave {
            let (s, c, seed) = (shared.clone(), cluster.clone(), rng.next_u64());
            waiting.push(tokio::spawn(async move {
                submit(&s, &c, tx, &mut SplitMix64(seed)).await;
            }));
        }
        for w in waiting {
            let _ = w.await;
        }
    }
}

/// A client: reads and signed transactions until the run has its operations.
async fn client(shared: Share, cluster: ClusterShare, seed: u64) {
    let mut rng = SplitMix64(seed);
    loop {
        {
            let mut s = lock(&shared);
            if s.ops_started >= s.ops_target {
                return;
            }
            s.ops_started += 1;
        }
        if rng.range(0, 99) < READS_PER_HUNDRED {
            read(&shared, &cluster, &mut rng);
            // A reader thinks a little; so time moves between reads.
            tokio::time::sleep(Duration::from_millis(rng.range(0, 2))).await;
            continue;
        }
        let now = consensus::clock::now_ms();
        let tx = lock(&shared).workload.next_tx(&mut rng, now);
        submit(&shared, &cluster, tx, &mut rng).await;
    }
}

/// A random running node, its life, and whether it is in a minority partition.
fn pick_node(
    shared: &Share,
    cluster: &ClusterShare,
    rng: &mut SplitMix64,
) -> Option<(u64, Arc<consensus::ConsensusNode>, u64, Option<u64>)> {
    let c = lock(cluster);
    let running = c.running();
    if running.is_empty() {
        return None;
    }
    let id = running[rng.range(0, running.len() as u64 - 1) as usize];
    let node = c.node(id)?;
    let life = c.life(id);
    drop(c);
    let s = lock(shared);
    let minority = s
        .partition
        .as_ref()
        .filter(|e| e.minority.contains(&id))
        .map(|e| e.id);
    Some((id, node, life, minority))
}

/// Submits `tx` until some node answers it for certain, or gives up.
async fn submit(shared: &Share, cluster: &ClusterShare, tx: Tx, rng: &mut SplitMix64) {
    {
        let mut s = lock(shared);
        s.report.txs += 1;
        s.records.insert(
            tx.id,
            Record {
                all_answered: true,
                ..Default::default()
            },
        );
    }
    for _ in 0..ATTEMPTS_MAX {
        let Some((id, node, life, minority)) = pick_node(shared, cluster, rng) else {
            tokio::time::sleep(Duration::from_millis(200)).await;
            continue;
        };
        {
            let mut s = lock(shared);
            if let Some(r) = s.records.get_mut(&tx.id) {
                r.minority_only = match (r.submissions, minority) {
                    (0, m) => m,
                    (_, Some(m)) if r.minority_only == Some(m) => Some(m),
                    _ => None,
                };
                r.submissions += 1;
            }
        }
        let submitted = node.submit(tx.wire.clone());
        drop(node);
        let rx = match submitted {
            Ok(rx) => rx,
            // Not queued (no leader known, queue full): this try took nothing.
            Err(_) => {
                tokio::time::sleep(Duration::from_millis(rng.range(20, 300))).await;
                continue;
            }
        };
        let answer = tokio::time::timeout(Duration::from_millis(CLIENT_DEADLINE_MS), rx).await;
        let current = lock(cluster).life(id) == life;
        match answer {
            Ok(Ok(Ok(outcome))) if current => {
                if answered(shared, id, &tx, &outcome.result) {
                    return;
                }
            }
            _ => {
                if let Some(r) = lock(shared).records.get_mut(&tx.id) {
                    r.all_answered = false;
                }
                tokio::time::sleep(Duration::from_millis(rng.range(20, 300))).await;
            }
        }
    }
}

/// Records a node's answer; `true` if it is final for the client.
fn answered(shared: &Share, node: u64, tx: &Tx, result: &TxResult) -> bool {
    let mut s = lock(shared);
    let id_hex = hex::encode(tx.id);
    match result {
        TxResult::Committed { height, index, .. } => {
            s.digest
                .update(format!("c {id_hex} {height} {index}\n").as_bytes());
            let episode = s.partition.as_ref().map(|e| e.id);
            let Some(r) = s.records.get_mut(&tx.id) else {
                return true;
            };
            let first = r.committed.is_none() && !r.replayed;
            let earlier = r.committed.replace((*height, *index));
            let minority_only = r.minority_only;
            if earlier.is_none() {
                s.acked.push(tx.id);
            }
            if let Some(e) = earlier.filter(|e| *e != (*height, *index)) {
                s.violation(format!(
                    "tx {id_hex} acknowledged committed at {e:?}, then by node {node} at {:?}",
                    (height, index)
                ));
            }
            if minority_only.is_some() && minority_only == episode {
                s.violation(format!(
                    "node {node}, in a minority partition, acknowledged tx {id_hex} committed \
                     though every submission of it went to the minority"
                ));
            }
            if first {
                s.report.committed += 1;
                s.workload.committed(&tx.effect);
            }
            true
        }
        TxResult::Refused {
            code: RefusalCode::Replayed,
            ..
        } => {
            s.digest.update(format!("d {id_hex}\n").as_bytes());
            let Some(r) = s.records.get_mut(&tx.id) else {
                return true;
            };
            let first = r.committed.is_none() && !r.replayed;
            r.replayed = true;
            if first {
                // An earlier submission committed it; the model moves once.
                s.report.committed += 1;
                s.workload.committed(&tx.effect);
            }
            true
        }
        TxResult::Refused { code, .. } => {
            s.digest
                .update(format!("r {id_hex} {}\n", code.as_str()).as_bytes());
            let Some(r) = s.records.get_mut(&tx.id) else {
                return true;
            };
            let first = r.refused.is_none() && r.committed.is_none();
            r.refused = Some(*code);
            if first {
                s.report.refused += 1;
            }
            true
        }
    }
}

/// A client's read on a random running node: where an acknowledged
/// transaction is, a trace (一码聚合), or the head. A node that has applied
/// past an acknowledged transaction's block must hold it there.
fn read(shared: &Share, cluster: &ClusterShare, rng: &mut SplitMix64) {
    lock(shared).report.reads += 1;
    let Some((id, node, _, _)) = pick_node(shared, cluster, rng) else {
        return;
    };
    let ledger = node.ledger().clone();
    drop(node);
    let roll = rng.range(0, 99);
    let s = lock(shared);
    if roll < 45 {
        if s.acked.is_empty() {
            return;
        }
        let tx = s.acked[rng.range(0, s.acked.len() as u64 - 1) as usize];
        let Some(at) = s.records.get(&tx).and_then(|r| r.committed) else {
            return;
        };
        drop(s);
        if let Some(why) = checks::holds_at(&ledger, id, &tx, at) {
            lock(shared).violation(why);
        }
    } else if roll < 90 {
        let trace = s.workload.some_trace(rng);
        drop(s);
        if let Some(code) = trace {
            if let Err(e) = ledger::query::trace(&ledger.store, &code, None) {
                lock(shared).violation(format!("node {id}: trace {code} does not read: {e}"));
            }
        }
    } else {
        drop(s);
        if let Err(e) = ledger.head() {
            lock(shared).violation(format!("node {id}: head does not read: {e}"));
        }
    }
}

/// Every 100 ms: each running node's new blocks against every other's.
async fn check_continuously(shared: Share, cluster: ClusterShare) {
    loop {
        tokio::time::sleep(Duration::from_millis(100)).await;
        check_heights(&shared, &cluster);
        if lock(&shared).done {
            return;
        }
    }
}

fn check_heights(shared: &Share, cluster: &ClusterShare) {
    let running = lock(cluster).running_ledgers();
    let mut s = lock(shared);
    for (id, ledger) in running {
        let found = s.heights.check(id, &ledger);
        for v in found {
            s.violation(v);
        }
    }
}

/// One run's fault mix, drawn from its seed (swarm testing): each kind of
/// fault gets a weight, zero for some runs, so one run hammers power losses
/// while another only partitions, and faults that one kind would mask get
/// runs of their own.
struct FaultMix {
    power_loss: u64,
    blackout: u64,
    partition: u64,
    network: u64,
    membership: u64,
    calm: u64,
    /// The pause between two campaign steps is drawn from `50..=step_ms_max`.
    step_ms_max: u64,
}

impl FaultMix {
    fn draw(rng: &mut SplitMix64) -> Self {
        // A kind is off in about a quarter of the runs.
        let mut weight = |max: u64| rng.range(0, max * 4 / 3).saturating_sub(max / 3);
        let mix = FaultMix {
            power_loss: weight(20),
            blackout: weight(10),
            partition: weight(20),
            network: weight(15),
            membership: weight(8),
            calm: 10 + weight(30),
            step_ms_max: 200 + rng.range(0, 1_300),
        };
        assert!(mix.total() > 0, "the calm weight is never zero");
        mix
    }

    fn total(&self) -> u64 {
        self.power_loss
            + self.blackout
            + self.partition
            + self.network
            + self.membership
            + self.calm
    }

    /// The fault of one step.
    fn pick(&self, rng: &mut SplitMix64) -> Fault {
        let mut roll = rng.range(0, self.total() - 1);
        for (weight, fault) in [
            (self.power_loss, Fault::PowerLoss),
            (self.blackout, Fault::Blackout),
            (self.partition, Fault::Partition),
            (self.network, Fault::Network),
            (self.membership, Fault::Membership),
        ] {
            if roll < weight {
                return fault;
            }
            roll -= weight;
        }
        Fault::Calm
    }
}

#[derive(Clone, Copy)]
enum Fault {
    /// One running node loses power.
    PowerLoss,
    /// A majority, or every node, loses power at the same instant.
    Blackout,
    Partition,
    /// A new network plan: drops, delays, duplicates (or a clean network).
    Network,
    /// `validator.remove` of one validator, or `validator.add` of the removed one.
    Membership,
    Calm,
}

/// The fault campaign: power losses (one node, a majority, all), partitions,
/// and a network that drops, delays, duplicates and reorders, each for a
/// while, in the run's own mix; then everything healed and restarted.
async fn campaign(shared: Share, cluster: ClusterShare, seed: u64) {
    let mut rng = SplitMix64(seed);
    let mix = FaultMix::draw(&mut rng);
    let mut restart_at: BTreeMap<u64, tokio::time::Instant> = BTreeMap::new();
    let mut heal_at: Option<tokio::time::Instant> = None;
    while !lock(&shared).done {
        tokio::time::sleep(Duration::from_millis(rng.range(50, mix.step_ms_max))).await;
        let now = tokio::time::Instant::now();
        let due: Vec<u64> = restart_at
            .iter()
            .filter(|(_, &t)| t <= now)
            .map(|(&id, _)| id)
            .collect();
        for id in due {
            restart_at.remove(&id);
            restart(&shared, &cluster, id, &mut rng).await;
        }
        if heal_at.is_some_and(|t| t <= now) {
            heal_at = None;
            heal(&shared, &cluster);
        }
        let ms = |rng: &mut SplitMix64, lo, hi| now + Duration::from_millis(rng.range(lo, hi));
        match mix.pick(&mut rng) {
            Fault::PowerLoss => {
                let running = lock(&cluster).running();
                if let Some(&id) = running.get(rng.range(0, 9) as usize % running.len().max(1)) {
                    power_loss(&shared, &cluster, &[id], &mut rng).await;
                    restart_at.insert(id, ms(&mut rng, 100, 3_000));
                }
            }
            Fault::Blackout => {
                let mut hit = lock(&cluster).running();
                let n = lock(&cluster).ids().len();
                let count = if rng.range(0, 1) == 0 { n / 2 + 1 } else { n };
                shuffle(&mut hit, &mut rng);
                hit.truncate(count);
                power_loss(&shared, &cluster, &hit, &mut rng).await;
                for id in hit {
                    restart_at.insert(id, ms(&mut rng, 100, 3_000));
                }
            }
            Fault::Partition if heal_at.is_none() => {
                partition(&shared, &cluster, &mut rng);
                heal_at = Some(ms(&mut rng, 100, 4_000));
            }
            Fault::Network => {
                let plan = if rng.range(0, 2) == 0 {
                    FaultPlan::default()
                } else {
                    let delay_max_ms = rng.range(0, 40);
                    FaultPlan {
                        seed: rng.next_u64(),
                        drop_per_mille: rng.range(0, 80) as u16,
                        delay_min_ms: rng.range(0, delay_max_ms),
                        delay_max_ms,
                        duplicate_per_mille: rng.range(0, 50) as u16,
                    }
                };
                let _ = lock(&cluster).router.set_plan(plan);
            }
            Fault::Membership => membership_change(&shared, &cluster, &mut rng).await,
            Fault::Partition | Fault::Calm => {}
        }
    }
    heal(&shared, &cluster);
    let _ = lock(&cluster).router.set_plan(FaultPlan::default());
    let crashed = lock(&cluster).crashed();
    for id in crashed {
        restart(&shared, &cluster, id, &mut rng).await;
    }
    // The run ends with every validator in the set, so all must converge.
    for _ in 0..ATTEMPTS_MAX {
        let ids: BTreeSet<u64> = lock(&cluster).ids().into_iter().collect();
        if set_in_force(&cluster).is_some_and(|set| set == ids) {
            break;
        }
        membership_change(&shared, &cluster, &mut rng).await;
    }
}

/// The validator set in force after the head of the most advanced running
/// node: the ledger's word, not the clients', since a `validator.remove`
/// whose client gave up may still commit.
fn set_in_force(cluster: &ClusterShare) -> Option<BTreeSet<u64>> {
    let ledgers = lock(cluster).running_ledgers();
    let (head, ledger) = ledgers
        .iter()
        .filter_map(|(_, l)| Some((l.head().ok()?.height, l)))
        .max_by_key(|(h, _)| *h)?;
    let set = ledger::seal::validator_set_at(&ledger.store, head + 1).ok()?;
    Some(set.iter().map(|v| v.node_id).collect())
}

/// Fisher–Yates on the seed.
fn shuffle(v: &mut [u64], rng: &mut SplitMix64) {
    for i in (1..v.len()).rev() {
        let j = rng.range(0, i as u64) as usize;
        v.swap(i, j);
    }
}

/// With four or five validators, one of them (drawn once per run) leaves
/// and rejoins: `validator.remove` while the ledger's set holds it,
/// `validator.add` while it does not. One target per run keeps at most one
/// validator out, whatever records commit late. The reconciler moves Raft's
/// membership after the record commits.
async fn membership_change(shared: &Share, cluster: &ClusterShare, rng: &mut SplitMix64) {
    let ids = lock(cluster).ids();
    if ids.len() < 4 {
        return;
    }
    let Some(set) = set_in_force(cluster) else {
        return;
    };
    let now = consensus::clock::now_ms();
    let (tx, target, removing) = {
        let mut s = lock(shared);
        let target = *s
            .membership_target
            .get_or_insert_with(|| ids[rng.range(0, ids.len() as u64 - 1) as usize]);
        if set.contains(&target) {
            (s.workload.validator_remove(target, now), target, true)
        } else {
            (s.workload.validator_add(target, now), target, false)
        }
    };
    let id = tx.id;
    submit(shared, cluster, tx, rng).await;
    let mut s = lock(shared);
    let done = s
        .records
        .get(&id)
        .is_some_and(|r| r.committed.is_some() || r.replayed);
    if done {
        s.digest
            .update(format!("m {target} {removing}\n").as_bytes());
    }
}

/// Cuts the power of every node in `ids` at one instant (no simulated time
/// passes between them), then lets each stop.
async fn power_loss(shared: &Share, cluster: &ClusterShare, ids: &[u64], rng: &mut SplitMix64) {
    let mut cut = Vec::new();
    {
        let mut c = lock(cluster);
        let mut s = lock(shared);
        for &id in ids {
            match c.cut_power(id, rng) {
                Ok((node, loss)) => {
                    s.report.power_losses += 1;
                    s.report.batches_lost += loss.batches_lost as u64;
                    s.digest
                        .update(format!("p {id} {}\n", loss.batches_lost).as_bytes());
                    cut.push(node);
                }
                Err(e) => s.violation(format!("node {id}: power loss failed: {e}")),
            }
        }
    }
    for node in cut {
        if let Err(e) = cluster::stop(node).await {
            lock(shared).violation(e);
        }
    }
}

async fn restart(shared: &Share, cluster: &ClusterShare, id: u64, rng: &mut SplitMix64) {
    let Some(params) = lock(cluster).boot_params(id, rng) else {
        return;
    };
    let booted = match cluster::boot(params).await {
        Ok(node) => lock(cluster).install(id, node),
        Err(e) => Err(e),
    };
    if let Err(e) = booted {
        lock(shared).violation(format!("node {id} did not restart: {e}"));
    }
    lock(shared).digest.update(format!("b {id}\n").as_bytes());
}

/// Splits the validators in two at random; the smaller side (or, at an even
/// split, both sides) cannot commit.
fn partition(shared: &Share, cluster: &ClusterShare, rng: &mut SplitMix64) {
    let c = lock(cluster);
    let ids = c.ids();
    let side: Vec<u64> = ids
        .iter()
        .copied()
        .filter(|_| rng.range(0, 1) == 0)
        .collect();
    let other: Vec<u64> = ids
        .iter()
        .copied()
        .filter(|id| !side.contains(id))
        .collect();
    c.router.partition(&[&side]);
    drop(c);
    let mut s = lock(shared);
    // A side is a minority if it lacks a majority of every voter set the
    // cluster may be in: all validators, or all but the membership target.
    let mut sets = vec![ids.clone()];
    if let Some(x) = s.membership_target {
        sets.push(ids.iter().copied().filter(|&id| id != x).collect());
    }
    let mut minority = BTreeSet::new();
    for group in [&side, &other] {
        let loses = sets.iter().all(|set: &Vec<u64>| {
            let inside = group.iter().filter(|id| set.contains(id)).count();
            inside < set.len() / 2 + 1
        });
        if loses {
            minority.extend(group.iter().copied());
        }
    }
    s.episodes += 1;
    s.report.partitions += 1;
    let id = s.episodes;
    s.digest
        .update(format!("x {side:?} {other:?}\n").as_bytes());
    s.partition = Some(Episode { id, minority });
}

fn heal(shared: &Share, cluster: &ClusterShare) {
    lock(cluster).router.heal();
    let mut s = lock(shared);
    s.partition = None;
    s.digest.update(b"h\n");
}

/// Waits for the healed cluster to settle, then runs the final checks.
async fn finish(shared: &Share, cluster: &ClusterShare) {
    let mut quiet_ms = 0;
    let mut waited_ms = 0;
    let mut last = None;
    while quiet_ms < QUIET_MS {
        if waited_ms >= CONVERGE_MS_MAX {
            let heads = checks::heads(&lock(cluster));
            lock(shared).violation(format!(
                "the healed cluster did not converge within {CONVERGE_MS_MAX} ms: {heads:?}"
            ));
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        waited_ms += 100;
        let heads = checks::heads(&lock(cluster));
        let one: BTreeSet<_> = heads.values().collect();
        let settled = one.len() == 1 && heads.len() == lock(cluster).ids().len();
        if settled && last.as_ref() == Some(&heads) {
            quiet_ms += 100;
        } else {
            quiet_ms = 0;
        }
        last = Some(heads);
    }
    check_heights(shared, cluster);
    let c = lock(cluster);
    let mut s = lock(shared);
    let found = checks::at_end(&c, &s.records_view(), &mut s.heights);
    for v in found {
        s.violation(v);
    }
    let head = checks::heads(&c).into_values().next();
    if let Some((height, hash)) = head {
        s.report.height = height;
        s.digest.update(format!("end {height} {hash}\n").as_bytes());
    }
}

impl Shared {
    /// What the final checks need of each transaction's acknowledgements.
    fn records_view(&self) -> Vec<checks::Acked> {
        self.records
            .iter()
            .map(|(id, r)| checks::Acked {
                id: *id,
                committed: r.committed,
                replayed: r.replayed,
                only_refused: r.all_answered
                    && r.refused.is_some()
                    && r.committed.is_none()
                    && !r.replayed,
            })
            .collect()
    }
}
