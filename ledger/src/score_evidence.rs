//! Score evidence: a district's 赋码率 / 扫码率 answer exported with the
//! block it rests on and the model that computed it, and its check on
//! another node — replay that node's own chain to that block, recompute,
//! compare (`zsl score verify`, docs/evidence.md "Score evidence").
//!
//! Pure over `KvRead`s: the export reads one store view; the check reads
//! the other node's store and re-applies its blocks on a fresh ledger.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::chain::{replay_to, Replay};
use crate::evidence::Report;
use crate::hash::H32;
use crate::history;
use crate::kv::KvRead;
use crate::score::{self, Period};
use crate::seal;
use crate::spec::ChainSpec;

/// The score evidence format.
pub const SCORE_EVIDENCE_FORMAT: &str = "zsl-score-evidence/1";

/// Check names (stable).
pub mod check {
    /// Format, chain, genesis and model are the verifier's genesis's.
    pub const EVIDENCE: &str = "evidence";
    /// The other node's block at that height is the one the score rests on.
    pub const CHECKPOINT: &str = "checkpoint";
    /// The other node's chain re-applies up to it, as stored.
    pub const REPLAY: &str = "replay";
    /// The recomputed answer is the exported one.
    pub const SCORE: &str = "score";
}

/// The block a score rests on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScoreCheckpoint {
    pub height: u64,
    pub block_hash: H32,
    pub tree_size: u64,
    pub tree_root: H32,
    /// The block's time: the score's `as_of`.
    pub time_ms: i64,
    /// The first checkpoint sealed at or after the block, as a signed note,
    /// when one is (the quorum's word that the block is on the chain).
    pub sealed_note: Option<String>,
}

/// A district score answer and what it rests on.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScoreEvidence {
    pub format: String,
    pub chain_id: String,
    pub genesis_hash: H32,
    /// The model id (e.g. `zj-2024`); its parameters are genesis's.
    pub model: String,
    pub district: String,
    pub from: String,
    pub to: String,
    pub checkpoint: ScoreCheckpoint,
    /// The answer of `GET /v1/scores/{district}` at that block.
    pub detail: Value,
}

fn detail_at(
    kv: &impl KvRead,
    spec: &ChainSpec,
    district: &str,
    period: Period,
    time_ms: i64,
) -> std::result::Result<Value, String> {
    let d = score::district_detail(
        kv,
        &spec.model,
        &spec.district_codes(),
        district,
        period,
        Some(time_ms),
    )
    .map_err(|e| e.to_string())?;
    serde_json::to_value(d).map_err(|e| e.to_string())
}

/// The score of `district` over `period` at this store's head, with the
/// head as its checkpoint.
pub fn export(
    kv: &impl KvRead,
    spec: &ChainSpec,
    district: &str,
    period: Period,
) -> std::result::Result<ScoreEvidence, String> {
    let head = history::read_head(kv)
        .map_err(|e| e.to_string())?
        .ok_or("no chain head")?;
    let detail = detail_at(kv, spec, district, period, head.time_ms)?;
    let sealed_note = match seal::sealed_at_or_after(kv, head.height).map_err(|e| e.to_string())? {
        Some(h) => seal::signed_checkpoint(kv, spec, h)
            .map_err(|e| e.to_string())?
            .map(|(_, note, _)| note.render()),
        None => None,
    };
    Ok(ScoreEvidence {
        format: SCORE_EVIDENCE_FORMAT.into(),
        chain_id: spec.chain_id.clone(),
        genesis_hash: H32(spec.hash().map_err(|e| e.to_string())?),
        model: spec.model.model.clone(),
        district: district.into(),
        from: period.from().to_string(),
        to: period.to().to_string(),
        checkpoint: ScoreCheckpoint {
            height: head.height,
            block_hash: head.hash,
            tree_size: head.tree_size,
            tree_root: head.tree_root,
            time_ms: head.time_ms,
            sealed_note,
        },
        detail,
    })
}

/// Checks `e` against another node's store `kv`: its block at the
/// checkpoint's height is the same block, its chain re-applies on `replay`
/// (a fresh ledger of `spec`) up to it, and the score recomputed there is
/// the exported answer.
pub fn verify<R: Replay>(
    e: &ScoreEvidence,
    spec: &ChainSpec,
    kv: &(impl KvRead + ?Sized),
    replay: &mut R,
) -> Report {
    let mut r = Report { checks: Vec::new() };
    r.push(check::EVIDENCE, check_evidence(e, spec));
    let cp = &e.checkpoint;
    let same = check_block(e, kv);
    let same_ok = same.is_ok();
    r.push(check::CHECKPOINT, same);
    let replayed = if same_ok {
        replay_to(kv, spec, replay, cp.height)
            .map(|n| {
                format!(
                    "blocks 1 to {} re-applied ({n} transactions) as stored",
                    cp.height
                )
            })
            .map_err(|e| format!("this node's chain does not re-apply: {e}"))
    } else {
        Err("not replayed: the block differs".into())
    };
    let replay_ok = replayed.is_ok();
    r.push(check::REPLAY, replayed);
    r.push(
        check::SCORE,
        if replay_ok {
            recompute(e, spec, replay.kv())
        } else {
            Err("not recomputed: no replay".into())
        },
    );
    r
}

fn check_evidence(e: &ScoreEvidence, spec: &ChainSpec) -> std::result::Result<String, String> {
    if e.format != SCORE_EVIDENCE_FORMAT {
        return Err(format!(
            "format is `{}`, not `{SCORE_EVIDENCE_FORMAT}`",
            e.format
        ));
    }
    let hash = H32(spec.hash().map_err(|e| e.to_string())?);
    if e.chain_id != spec.chain_id || e.genesis_hash != hash {
        return Err("the evidence is for another chain or genesis".into());
    }
    if e.model != spec.model.model {
        return Err(format!(
            "model `{}`, this genesis's is `{}`",
            e.model, spec.model.model
        ));
    }
    Ok(format!(
        "{SCORE_EVIDENCE_FORMAT}, model {} of genesis {hash}, district {} from {} to {}",
        e.model, e.district, e.from, e.to
    ))
}

fn check_block(
    e: &ScoreEvidence,
    kv: &(impl KvRead + ?Sized),
) -> std::result::Result<String, String> {
    let cp = &e.checkpoint;
    let h = history::read_header(kv, cp.height)
        .map_err(|e| e.to_string())?
        .ok_or_else(|| format!("this node has no block {} yet", cp.height))?;
    if h.hash() != cp.block_hash
        || h.tree_size != cp.tree_size
        || h.tree_root != cp.tree_root
        || h.time_ms != cp.time_ms
    {
        return Err(format!(
            "this node's block {} is another block (hash {})",
            cp.height,
            h.hash()
        ));
    }
    Ok(format!(
        "this node's block {} has hash {}, tree size {} and time {}",
        cp.height, cp.block_hash, cp.tree_size, cp.time_ms
    ))
}

fn recompute(
    e: &ScoreEvidence,
    spec: &ChainSpec,
    kv: &impl KvRead,
) -> std::result::Result<String, String> {
    let period = Period::parse(&e.from, &e.to).map_err(|e| e.to_string())?;
    let got = detail_at(kv, spec, &e.district, period, e.checkpoint.time_ms)?;
    if got != e.detail {
        return Err(format!(
            "recomputed at block {}: {}; the evidence says {}",
            e.checkpoint.height,
            summary(&got),
            summary(&e.detail)
        ));
    }
    Ok(format!(
        "recomputed at block {}: {}, as exported",
        e.checkpoint.height,
        summary(&got)
    ))
}

/// The two rates of an answer, for a report line.
fn summary(detail: &Value) -> String {
    let s = &detail["score"];
    format!(
        "赋码率 coding rate {}, 扫码率 scan rate {}",
        s["coding"]["rate_exact"], s["scanning"]["rate_exact"]
    )
}

#[cfg(test)]
mod tests;
