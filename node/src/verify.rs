//! `zsl verify`: offline verification of an evidence bundle, or of two
//! checkpoints and a consistency proof, with nothing but the genesis file.
//! Prints every check with ✓/✗; the caller exits 0 only if all passed.

use std::path::Path;

use anyhow::{Context, Result};
use ledger::evidence::{self, Report};

fn read_bounded(path: &Path) -> Result<Vec<u8>> {
    read_at_most(path, evidence::BUNDLE_BYTES_MAX)
}

fn read_at_most(path: &Path, max: usize) -> Result<Vec<u8>> {
    let meta = std::fs::metadata(path).with_context(|| format!("reading {}", path.display()))?;
    if meta.len() > max as u64 {
        anyhow::bail!(
            "{} is {} bytes; an evidence file is at most {max}",
            path.display(),
            meta.len(),
        );
    }
    std::fs::read(path).with_context(|| format!("reading {}", path.display()))
}

fn print(report: &Report, json: bool) -> Result<bool> {
    if json {
        println!("{}", serde_json::to_string_pretty(report)?);
    } else {
        for c in &report.checks {
            let mark = if c.ok { "✓" } else { "✗" };
            // A multi-line detail (a trace's facts) goes on, indented.
            let mut lines = c.detail.lines();
            println!("{mark} {:<26} {}", c.name, lines.next().unwrap_or(""));
            for line in lines {
                println!("  {:<26} {line}", "");
            }
        }
        if report.ok() {
            println!("VERIFIED: all {} checks passed", report.checks.len());
        } else {
            println!("NOT VERIFIED: failed {}", report.failed().join(", "));
        }
    }
    Ok(report.ok())
}

/// Verifies a signed credit report file; returns whether every check passed.
pub fn credit_report(path: &Path, genesis: &Path, json: bool) -> Result<bool> {
    let spec = genesis::read_spec(genesis)?;
    let bytes = read_bounded(path)?;
    let report = match ledger::strict_json::parse(&bytes) {
        Ok(doc) => ledger::credit_report::verify(&doc, &spec),
        Err(e) => Report::failed_with(
            ledger::credit_report::check::FORMAT,
            format!("not a {}: {e}", ledger::credit_report::REPORT_FORMAT),
        ),
    };
    print(&report, json)
}

/// Verifies a bundle file, a trace bundle (`GET /v1/trace/{code}/evidence`)
/// or a SCITT transparent statement (COSE, as `GET /v1/evidence/{tx_id}/scitt`
/// serves it); returns whether every check passed.
pub fn bundle(path: &Path, genesis: &Path, policy: Option<&Path>, json: bool) -> Result<bool> {
    let spec = genesis::read_spec(genesis)?;
    let policy = match policy {
        Some(p) => {
            let text = String::from_utf8(read_bounded(p)?)
                .with_context(|| format!("{} is not UTF-8", p.display()))?;
            Some(
                ledger::witness::Policy::parse(&text)
                    .map_err(|e| anyhow::anyhow!("{}: {e}", p.display()))?,
            )
        }
        None => None,
    };
    let max = ledger::scitt::STATEMENT_BYTES_MAX.max(evidence::TRACE_BUNDLE_BYTES_MAX);
    let bytes = read_at_most(path, max)?;
    let trust = match evidence::Genesis::new(&spec) {
        Ok(g) => g,
        Err(e) => {
            let r = Report::failed_with(evidence::check::BUNDLE, format!("genesis file: {e}"));
            return print(&r, json);
        }
    };
    let report = if ledger::scitt::is_statement(&bytes) {
        ledger::scitt::verify_with_policy(&bytes, &trust, policy.as_ref())
    } else if evidence::is_trace_bundle(&bytes) {
        match evidence::parse_trace_bundle(&bytes) {
            Ok(b) => evidence::verify_trace(&b, &trust),
            Err(why) => Report::failed_with(evidence::check::BUNDLE, why),
        }
    } else {
        match evidence::parse_bundle(&bytes) {
            Ok(b) => evidence::verify_with_policy(&b, &trust, policy.as_ref()),
            Err(why) => Report::failed_with(evidence::check::BUNDLE, why),
        }
    };
    print(&report, json)
}

/// Verifies that `new`'s tree extends `old`'s (both C2SP signed notes, as
/// served by `GET /v1/checkpoints/{height}`) with `proof` (the JSON of
/// `GET /v1/proofs/consistency`).
pub fn consistency(
    old: &Path,
    new: &Path,
    proof: &Path,
    genesis: &Path,
    json: bool,
) -> Result<bool> {
    let spec = genesis::read_spec(genesis)?;
    let note = |p: &Path| -> Result<String> {
        String::from_utf8(read_bounded(p)?).with_context(|| format!("{} is not UTF-8", p.display()))
    };
    let (old, new) = (note(old)?, note(new)?);
    let report = match ledger::strict_json::from_slice::<evidence::ConsistencyProof>(&read_bounded(
        proof,
    )?) {
        Ok(p) => evidence::verify_consistency(&old, &new, &p, &spec),
        Err(e) => Report::failed_with(
            evidence::check::CONSISTENCY,
            format!("not a {} proof: {e}", evidence::CONSISTENCY_FORMAT),
        ),
    };
    print(&report, json)
}

/// Verifies a score evidence file against another node's store at `data`
/// (opened read-only), replaying its chain on a scratch ledger in a
/// temporary directory; returns whether every check passed.
pub fn score(evidence: &Path, data: &Path, genesis: &Path, json: bool) -> Result<bool> {
    use ledger::score_evidence::{self as se, ScoreEvidence};
    let spec = genesis::read_spec(genesis)?;
    let bytes = read_bounded(evidence)?;
    let report = match ledger::strict_json::from_slice::<ScoreEvidence>(&bytes) {
        Ok(e) => {
            let data = crate::backup::store_dir(data)?;
            let store = ledger::store::Store::open_read_only(&data)
                .with_context(|| format!("opening {} (is the node stopped?)", data.display()))?;
            let scratch = tempfile::tempdir().context("a scratch directory for the replay")?;
            let ledger = ledger::chain::scratch_ledger(scratch.path(), spec.clone())?;
            se::verify(&e, &spec, &store, &mut &ledger)
        }
        Err(why) => Report::failed_with(
            se::check::EVIDENCE,
            format!("not a {} file: {why}", se::SCORE_EVIDENCE_FORMAT),
        ),
    };
    print(&report, json)
}
