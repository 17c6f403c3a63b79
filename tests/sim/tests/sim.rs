//! The simulator in CI, at the scale it passes today: three-validator runs
//! under power losses, partitions and a lossy, duplicating network, with no
//! violation. Everything runs on simulated time on one thread.
//!
//! Not yet here (issue 13, see ARCHITECTURE.md): the million-operation
//! campaign (the simulator runs ≈ 1,000 ops/s per core, so it needs a
//! faster workload first), four- and five-validator runs with membership
//! changes (some do not converge: under investigation), and an exact-replay
//! check (two runs of one seed still differ by a commit or so).

use zsl_sim::{run, SimConfig};

/// Seeds CI runs, three validators each.
const SEEDS: [u64; 4] = [7, 11, 102, 103];
const OPS_PER_SEED: u64 = 5_000;

fn campaign(seeds: &[u64]) {
    let mut failures = Vec::new();
    for &seed in seeds {
        let config = SimConfig {
            seed,
            ops: OPS_PER_SEED,
            nodes: Some(3),
        };
        let report = run(&config);
        println!("{}", report.summary());
        assert!(report.ops >= OPS_PER_SEED, "{}", report.summary());
        assert!(
            report.committed > 0,
            "nothing committed: {}",
            report.summary()
        );
        if !report.violations.is_empty() {
            failures.push(format!(
                "seed {seed}: {:?}\n  replay: {}",
                report.violations,
                config.replay_command()
            ));
        }
    }
    assert!(failures.is_empty(), "violations:\n{}", failures.join("\n"));
}

// Two halves, so the two test threads of `scripts/test` share the work.
#[test]
fn three_validator_runs_on_the_first_seeds_find_no_violation() {
    campaign(&SEEDS[..2]);
}

#[test]
fn three_validator_runs_on_the_other_seeds_find_no_violation() {
    campaign(&SEEDS[2..]);
}
