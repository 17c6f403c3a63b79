//! `zsl-sim`: runs the whole-cluster simulator over one seed or many
//! (`scripts/sim` builds and calls it). The last line is always
//! `<ops> ops, <violations> violations`; the exit code is 1 if any run
//! found a violation, each printed with the command that replays it.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

use clap::Parser;
use zsl_sim::{run, SimConfig, SimReport};

#[derive(Parser)]
#[command(about = "Seeded whole-cluster simulation of ZSL validators")]
struct Args {
    /// Client operations in all (transactions and reads).
    #[arg(long, default_value_t = 100_000)]
    ops: u64,
    /// Run this one seed with all the operations (a replay); otherwise
    /// seeds follow one another from --first-seed.
    #[arg(long)]
    seed: Option<u64>,
    /// The first of consecutive seeds (default: drawn at random, printed).
    #[arg(long)]
    first_seed: Option<u64>,
    /// Operations per seed when running many.
    #[arg(long, default_value_t = 25_000)]
    ops_per_seed: u64,
    /// Validators, 3..=5 (default: each seed chooses).
    #[arg(long)]
    nodes: Option<usize>,
    /// Simulations at once, one thread each (default: the machine's cores).
    #[arg(long)]
    jobs: Option<usize>,
}

/// Log lines stamped with simulated time (ms since the run began).
struct SimulatedTime;

impl tracing_subscriber::fmt::time::FormatTime for SimulatedTime {
    fn format_time(&self, w: &mut tracing_subscriber::fmt::format::Writer<'_>) -> std::fmt::Result {
        let t = consensus::clock::now_ms() - ledger::testkit::T0;
        write!(w, "{:>6}.{:03}", t / 1_000, t % 1_000)
    }
}

fn main() {
    let args = Args::parse();
    // A replay can show the nodes' own logs: ZSL_SIM_LOG=info (or any
    // tracing filter, e.g. `openraft=debug,consensus=info`).
    if let Ok(filter) = std::env::var("ZSL_SIM_LOG") {
        tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::new(filter))
            .with_timer(SimulatedTime)
            .with_writer(std::io::stderr)
            .init();
    }
    let configs = plan(&args);
    let jobs = args
        .jobs
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
        .clamp(1, 64);
    let started = std::time::Instant::now();
    let next = AtomicU64::new(0);
    let reports: Mutex<Vec<(SimConfig, SimReport)>> = Mutex::new(Vec::new());
    std::thread::scope(|scope| {
        for _ in 0..jobs {
            scope.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::Relaxed) as usize;
                let Some(config) = configs.get(i) else {
                    return;
                };
                let report = run(config);
                println!("{}", report.summary());
                for v in &report.violations {
                    println!("  violation: {v}");
                }
                if !report.violations.is_empty() {
                    println!("  replay: {}", config.replay_command());
                }
                reports
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner)
                    .push((config.clone(), report));
            });
        }
    });
    let reports = reports
        .into_inner()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let ops: u64 = reports.iter().map(|(_, r)| r.ops).sum();
    let sim_ms: u64 = reports.iter().map(|(_, r)| r.sim_ms).sum();
    let violations: usize = reports.iter().map(|(_, r)| r.violations.len()).sum();
    let wall = started.elapsed().as_secs_f64();
    println!(
        "{} seeds in {wall:.1} s wall on {jobs} threads: {:.0} simulated ops/s, {:.1} simulated s per wall s",
        reports.len(),
        ops as f64 / wall.max(1e-9),
        sim_ms as f64 / 1_000.0 / wall.max(1e-9),
    );
    println!("{ops} ops, {violations} violations");
    if violations > 0 {
        std::process::exit(1);
    }
}

/// The runs: one seed with every operation, or consecutive seeds.
fn plan(args: &Args) -> Vec<SimConfig> {
    if let Some(seed) = args.seed {
        return vec![SimConfig {
            seed,
            ops: args.ops,
            nodes: args.nodes,
        }];
    }
    let first = args.first_seed.unwrap_or_else(|| {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64);
        nanos % 1_000_000_000
    });
    println!("seeds from {first}");
    let per = args.ops_per_seed.max(1);
    let mut configs = Vec::new();
    let mut left = args.ops;
    let mut seed = first;
    while left > 0 {
        let ops = per.min(left);
        configs.push(SimConfig {
            seed,
            ops,
            nodes: args.nodes,
        });
        left -= ops;
        seed += 1;
    }
    configs
}
