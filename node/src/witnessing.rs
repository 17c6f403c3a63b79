//! Witnessing, both ways (c2sp.org/tlog-witness):
//! - [`service`]: this node as a witness of other chains (`[witness]`), the
//!   trusted logs derived from their genesis files;
//! - [`collect`]: this chain's latest sealed checkpoint offered to its
//!   witnesses (`[[witnessed_by]]`) with a consistency proof from the size
//!   each holds, and their verified cosignatures kept in the node's
//!   [`api::cosignatures::CosignatureBook`].

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use ledger::checkpoint::{LogIdentity, SignedNote};
use ledger::hash::H32;
use ledger::witness::{AddCheckpoint, Cosigner, TrustedLog};
use tracing::{debug, info, warn};

use crate::config::{WitnessConfig, WitnessedByConfig};

/// Time one `add-checkpoint` request may take.
const REQUEST_TIMEOUT_MS: u64 = 5_000;
/// The shortest interval between offers to one witness.
const INTERVAL_MIN_MS: u64 = 50;

/// The witness service of `[witness]`.
pub fn service(
    c: &WitnessConfig,
    data_dir: &std::path::Path,
) -> Result<api::witness::WitnessService> {
    anyhow::ensure!(
        ledger::validate::valid_key_name(&c.name),
        "[witness] name `{}` cannot name a note key (no spaces or `+`)",
        c.name
    );
    let key = genesis::KeyFile::read(&c.key)?.signing_key()?;
    let mut logs = BTreeMap::new();
    for l in &c.logs {
        let spec = genesis::read_spec(&l.genesis)?;
        let hash = H32(spec.hash()?);
        let log = LogIdentity::new(&spec.chain_id, spec.log_host.as_deref(), &hash);
        let keys = ledger::seal::note_keys(&log, &spec.validators)?;
        let quorum = ledger::seal::quorum(&spec, &spec.validators);
        info!(origin = %log.origin, quorum, "witnessing a chain");
        logs.insert(
            log.origin.clone(),
            TrustedLog {
                origin: log.origin,
                keys,
                quorum,
            },
        );
    }
    let w = api::witness::WitnessService {
        name: c.name.clone(),
        key,
        logs,
        dir: data_dir.join("witness"),
        lock: tokio::sync::Mutex::new(()),
    };
    info!(vkey = %w.vkey(), "serving as a witness at /witness/");
    Ok(w)
}

/// One witness of this chain, and what it holds.
struct Witness {
    cosigner: Cosigner,
    url: String,
    interval: Duration,
    /// The tree size it last cosigned (0 until it says).
    size: u64,
    /// The checkpoint height last offered.
    offered: Option<u64>,
}

/// Offers each sealed checkpoint to every witness; runs until the process ends.
pub fn collect(
    ledger: Arc<ledger::Ledger>,
    book: Arc<api::cosignatures::CosignatureBook>,
    witnesses: &[WitnessedByConfig],
) -> Result<()> {
    let http = reqwest::Client::builder()
        .timeout(Duration::from_millis(REQUEST_TIMEOUT_MS))
        .build()
        .context("building the witness client")?;
    for c in witnesses {
        let cosigner = Cosigner::from_vkey(&c.vkey)
            .map_err(|e| anyhow::anyhow!("[[witnessed_by]] vkey: {e}"))?;
        let mut w = Witness {
            cosigner,
            url: c.url.trim_end_matches('/').to_string(),
            interval: Duration::from_millis(c.interval_ms.max(INTERVAL_MIN_MS)),
            size: 0,
            offered: None,
        };
        let (ledger, book, http) = (ledger.clone(), book.clone(), http.clone());
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(w.interval);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                if let Err(e) = offer(&ledger, &book, &http, &mut w).await {
                    warn!(witness = %w.cosigner.name, error = %e, "witness did not cosign");
                }
            }
        });
    }
    Ok(())
}

/// Offers the latest sealed checkpoint to `w`, once per checkpoint.
async fn offer(
    ledger: &ledger::Ledger,
    book: &api::cosignatures::CosignatureBook,
    http: &reqwest::Client,
    w: &mut Witness,
) -> Result<()> {
    let Some(height) = ledger::seal::latest_sealed_height(&ledger.store)? else {
        return Ok(());
    };
    if w.offered == Some(height) {
        return Ok(());
    }
    let (cp, note) = {
        let view = ledger.store.view();
        let (cp, note, _) = ledger::evidence::sealed_checkpoint(&view, &ledger.spec, height)?
            .context("a sealed checkpoint without signatures")?;
        (cp, note)
    };
    // Twice at most: the second time with the size a 409 named.
    for _ in 0..2 {
        let old = w.size.min(cp.tree_size);
        let proof = if old == 0 || old == cp.tree_size {
            Vec::new()
        } else {
            ledger::evidence::consistency_proof(&ledger.store.view(), old, cp.tree_size)?.hashes
        };
        let req = AddCheckpoint {
            old_size: old,
            proof,
            note: note.clone(),
        };
        let r = http
            .post(format!("{}/add-checkpoint", w.url))
            .body(req.render())
            .send()
            .await?;
        let status = r.status().as_u16();
        let body = r.text().await?;
        match status {
            200 => {
                let lines = SignedNote::parse(&format!("{}\n{body}", note.text))
                    .map_err(|e| anyhow::anyhow!("cosignature lines: {e}"))?;
                let mut kept = 0;
                for line in lines.signatures {
                    if ledger::witness::verify_cosignature(&note.text, &line, &w.cosigner).is_some()
                    {
                        book.add(height, line)?;
                        kept += 1;
                    }
                }
                anyhow::ensure!(kept > 0, "no line of the answer verifies under its vkey");
                w.size = cp.tree_size;
                w.offered = Some(height);
                debug!(witness = %w.cosigner.name, height, size = cp.tree_size, "cosigned");
                return Ok(());
            }
            409 => {
                w.size = body
                    .trim()
                    .parse()
                    .with_context(|| format!("a 409 without a size: {body}"))?;
            }
            other => anyhow::bail!("answered {other}: {}", body.trim()),
        }
    }
    anyhow::bail!("the witness holds another size after two tries")
}
