//! Consistency proofs between two checkpoints: the log only ever grew.

use super::*;

/// A consistency proof between two tree sizes (`GET /v1/proofs/consistency`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConsistencyProof {
    pub format: String,
    pub from: u64,
    pub to: u64,
    /// RFC 9162 §2.1.4 proof hashes.
    pub hashes: Vec<H32>,
}

/// Builds the proof that the tree of `from` leaves is a prefix of the tree of `to`.
pub fn consistency_proof(
    kv: &(impl KvRead + ?Sized),
    from: u64,
    to: u64,
) -> Result<ConsistencyProof, LedgerError> {
    let p = merkle::consistency_proof(from, to, &TreeReader(kv))?;
    Ok(ConsistencyProof {
        format: CONSISTENCY_FORMAT.into(),
        from,
        to,
        hashes: hashes(p),
    })
}

/// Checks that `new_note`'s tree extends `old_note`'s: both notes carry a
/// quorum of the genesis validators' signatures, and the proof links the roots.
pub fn verify_consistency(
    old_note: &str,
    new_note: &str,
    proof: &ConsistencyProof,
    spec: &ChainSpec,
) -> Report {
    let set = &spec.validators;
    verify_consistency_under(old_note, new_note, proof, spec, [set, set])
}

/// [`verify_consistency`] where each note is signed by the validator set in
/// force at its height (`sets`: the old note's, then the new one's), as a
/// node that applied the `validator.add` / `validator.remove` records
/// between them knows them.
pub fn verify_consistency_under(
    old_note: &str,
    new_note: &str,
    proof: &ConsistencyProof,
    spec: &ChainSpec,
    sets: [&[Validator]; 2],
) -> Report {
    let mut r = Report { checks: Vec::new() };
    let g = match Genesis::new(spec) {
        Ok(g) => g,
        Err(e) => return Report::failed_with(check::OLD_CHECKPOINT, format!("genesis file: {e}")),
    };
    let one = |note: &str, set: &[Validator]| -> Result<(Checkpoint, String), String> {
        let cp = parse_checkpoint(note)?;
        if cp.origin != g.log.origin {
            return Err(format!(
                "origin `{}` is not this genesis's `{}`",
                cp.origin, g.log.origin
            ));
        }
        let known = seal::note_keys(&g.log, set).map_err(|e| format!("validator set: {e}"))?;
        let quorum = seal::quorum(spec, set);
        let verdict = check_note_signatures(note, &known, quorum)?;
        let d = format!(
            "height {}, size {}, root {}: {}",
            cp.height,
            cp.tree_size,
            cp.root,
            quorum_detail(&verdict, set.len(), quorum),
        );
        Ok((cp, d))
    };
    let old = one(old_note, sets[0]);
    let new = one(new_note, sets[1]);
    r.push(
        check::OLD_CHECKPOINT,
        old.as_ref().map(|x| x.1.clone()).map_err(Clone::clone),
    );
    r.push(
        check::NEW_CHECKPOINT,
        new.as_ref().map(|x| x.1.clone()).map_err(Clone::clone),
    );
    let link = (|| {
        let (old, _) = old
            .as_ref()
            .map_err(|_| "the old checkpoint does not verify")?;
        let (new, _) = new
            .as_ref()
            .map_err(|_| "the new checkpoint does not verify")?;
        if proof.format != CONSISTENCY_FORMAT {
            return Err(format!("proof format is not {CONSISTENCY_FORMAT}"));
        }
        if proof.from != old.tree_size || proof.to != new.tree_size {
            return Err(format!(
                "the proof is for sizes {}→{}, the checkpoints are {}→{}",
                proof.from, proof.to, old.tree_size, new.tree_size
            ));
        }
        if new.height < old.height || new.time_ms < old.time_ms {
            return Err("the new checkpoint is older than the old one".into());
        }
        let path: Vec<merkle::Hash> = proof.hashes.iter().map(|h| h.0).collect();
        merkle::verify_consistency(
            old.tree_size,
            new.tree_size,
            &old.root.0,
            &new.root.0,
            &path,
        )
        .map_err(|e| format!("{e}: the new tree does not extend the old one"))?;
        Ok(format!(
            "tree {} (root {}) is a prefix of tree {} (root {}): append-only",
            old.tree_size, old.root, new.tree_size, new.root
        ))
    })();
    r.push(check::CONSISTENCY, link);
    r
}
