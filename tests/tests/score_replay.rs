//! Every example scenario (copied unchanged from shared/scoring/examples) runs
//! through `zsl score replay` — the real signed ledger on a throwaway store —
//! and every field under `expect` matches.

use std::process::Command;

use zsl_tests::zsl_binary;

#[test]
fn example_scenarios_replay_through_the_ledger() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("data/scoring");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    files.sort();
    assert!(files.len() >= 3, "scenarios missing in {}", dir.display());
    for file in files {
        let out = Command::new(zsl_binary())
            .args(["score", "replay"])
            .arg(&file)
            .args(["--format", "json"])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}: {}",
            file.display(),
            String::from_utf8_lossy(&out.stderr)
        );
        let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        let scenario =
            ledger::score::scenario::parse(&std::fs::read_to_string(&file).unwrap()).unwrap();
        assert!(
            !scenario.expect.is_empty(),
            "{} expects nothing",
            file.display()
        );
        let mismatches = ledger::score::scenario::compare(&report, &scenario.expect);
        assert!(
            mismatches.is_empty(),
            "{}: {}",
            file.display(),
            mismatches
                .iter()
                .map(|m| m.to_string())
                .collect::<Vec<_>>()
                .join("; ")
        );
    }
}

#[test]
fn table_format_and_period_override() {
    let file = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("data/scoring/01-basic-receipts.json");
    let out = Command::new(zsl_binary())
        .args(["score", "replay"])
        .arg(&file)
        .args(["--format", "table"])
        .output()
        .unwrap();
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.lines().any(|l| l.starts_with("330102")), "{text}");
    // A period before any event has N = 0 and no rates.
    let out = Command::new(zsl_binary())
        .args(["score", "replay"])
        .arg(&file)
        .args(["--from", "2024-02-01", "--to", "2024-02-29"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["districts"]["330102"]["N"], 0);
    assert!(report["districts"]["330102"]["coding"]["rate"].is_null());
}
