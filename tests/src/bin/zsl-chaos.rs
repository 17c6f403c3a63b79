//! `zsl-chaos`: a seeded kill/pause campaign against three real `zsl`
//! validators (`scripts/chaos --rounds N [--seed S]`). Prints one line per
//! problem and the summary last; exits 0 only if no acknowledged
//! transaction was lost, the heads agree and every chain verifies.

fn main() {
    let mut rounds = 10u32;
    let mut seed: Option<u64> = None;
    let mut clients = 6usize;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let value = args.next();
        let parsed = match (a.as_str(), value.as_deref()) {
            ("--rounds", Some(v)) => v.parse().map(|v| rounds = v).is_ok(),
            ("--seed", Some(v)) => v.parse().map(|v| seed = Some(v)).is_ok(),
            ("--clients", Some(v)) => v.parse().map(|v| clients = v).is_ok(),
            _ => false,
        };
        if !parsed {
            eprintln!("usage: zsl-chaos [--rounds N] [--seed S] [--clients C]");
            std::process::exit(2);
        }
    }
    let seed = seed.unwrap_or_else(|| {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(1, |d| d.as_nanos() as u64 % 1_000_000_000)
    });
    println!("chaos: seed {seed}, {rounds} rounds, {clients} clients");
    let report = zsl_tests::chaos::run(&zsl_tests::chaos::ChaosConfig {
        seed,
        rounds,
        clients,
    });
    for (kind, n) in &report.faults {
        println!("  {kind}: {n}");
    }
    for p in report.problems.iter().chain(&report.lost) {
        println!("  problem: {p}");
    }
    println!("replay: scripts/chaos --rounds {rounds} --seed {seed}");
    println!("{}", report.summary());
    std::process::exit(if report.ok() { 0 } else { 1 });
}
