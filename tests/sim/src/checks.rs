//! What must hold, whatever the campaign did: each check returns the
//! violations it found, as sentences naming the node, height or transaction.

use std::collections::BTreeMap;

use ledger::history::{read_block, read_tx};
use ledger::kv::{KvRead, Space};
use ledger::{Ledger, H32};

use crate::cluster::Cluster;

/// The first block hash any node showed at each height, and how far each
/// node has been checked.
#[derive(Default)]
pub struct Heights {
    hashes: BTreeMap<u64, H32>,
    checked: BTreeMap<u64, u64>,
}

impl Heights {
    /// Compares `ledger`'s blocks above what was checked of node `id` with
    /// every other node's. A node that lost power may come back lower; it
    /// is checked again from there.
    pub fn check(&mut self, id: u64, ledger: &Ledger) -> Vec<String> {
        let mut found = Vec::new();
        let head = match ledger.head() {
            Ok(h) => h.height,
            Err(e) => return vec![format!("node {id}: head does not read: {e}")],
        };
        let from = self.checked.get(&id).map_or(0, |&c| c.min(head));
        for height in from + 1..=head {
            match read_block(&ledger.store, height) {
                Ok(Some(block)) => {
                    let first = *self.hashes.entry(height).or_insert(block.hash);
                    if first != block.hash {
                        found.push(format!(
                            "node {id} holds block {} at height {height}; another node holds {first}",
                            block.hash
                        ));
                    }
                }
                Ok(None) => found.push(format!(
                    "node {id}: block {height} below its head is missing"
                )),
                Err(e) => found.push(format!("node {id}: block {height} does not read: {e}")),
            }
        }
        self.checked.insert(id, head);
        found
    }

    /// Every node checked again from genesis.
    fn recheck_all(&mut self) {
        self.checked.clear();
    }
}

/// A node that has applied past an acknowledged transaction's block holds
/// it where the acknowledgement said.
pub fn holds_at(ledger: &Ledger, node: u64, tx: &[u8; 32], at: (u64, u32)) -> Option<String> {
    let head = ledger.head().ok()?.height;
    if head < at.0 {
        return None;
    }
    match read_tx(&ledger.store, tx) {
        Ok(Some(loc)) if (loc.height, loc.index) == at => None,
        Ok(Some(loc)) => Some(format!(
            "node {node} holds acknowledged tx {} at {:?}, not at {at:?}",
            hex::encode(tx),
            (loc.height, loc.index)
        )),
        Ok(None) => Some(format!(
            "node {node} is at height {head} but lacks tx {} acknowledged committed at {at:?}",
            hex::encode(tx)
        )),
        Err(e) => Some(format!(
            "node {node}: tx {} does not read: {e}",
            hex::encode(tx)
        )),
    }
}

/// Each running node's head (height, hash).
pub fn heads(cluster: &Cluster) -> BTreeMap<u64, (u64, String)> {
    cluster
        .running()
        .into_iter()
        .filter_map(|id| {
            let h = cluster.node(id)?.ledger().head().ok()?;
            Some((id, (h.height, h.hash.to_string())))
        })
        .collect()
}

/// A transaction's acknowledgements, as the final checks need them.
pub struct Acked {
    pub id: [u8; 32],
    pub committed: Option<(u64, u32)>,
    pub replayed: bool,
    /// Every submission was answered, and only with refusals.
    pub only_refused: bool,
}

/// The checks on the settled cluster: one head, state and tree; every
/// block the same on every node; every acknowledged commit everywhere and
/// every refused-only transaction nowhere; each chain re-verified from
/// genesis; sealed checkpoints append-only and quorum-signed; equal scores.
pub fn at_end(cluster: &Cluster, acked: &[Acked], heights: &mut Heights) -> Vec<String> {
    let mut found = Vec::new();
    let nodes = cluster.running_ledgers();
    let heads: BTreeMap<u64, _> = nodes
        .iter()
        .filter_map(|(id, l)| Some((*id, l.head().ok()?)))
        .collect();
    let distinct: std::collections::BTreeSet<_> = heads
        .values()
        .map(|h| (h.height, h.hash, h.tree_size, h.tree_root))
        .collect();
    if distinct.len() != 1 {
        found.push(format!("nodes end on different heads: {heads:?}"));
    }
    heights.recheck_all();
    for (id, ledger) in &nodes {
        found.extend(heights.check(*id, ledger));
        found.extend(acknowledged(*id, ledger, acked));
        if let Err(e) = ledger::verify_chain(&ledger.store, &cluster.spec) {
            found.push(format!("node {id}: the chain does not re-verify: {e}"));
        }
        found.extend(sealed_append_only(*id, ledger, &cluster.spec));
    }
    found.extend(equal_scores(&nodes, &cluster.spec));
    found
}

fn acknowledged(id: u64, ledger: &Ledger, acked: &[Acked]) -> Vec<String> {
    let mut found = Vec::new();
    for a in acked {
        let held = read_tx(&ledger.store, &a.id);
        let tx = hex::encode(a.id);
        match (held, a.committed) {
            (Err(e), _) => found.push(format!("node {id}: tx {tx} does not read: {e}")),
            (Ok(Some(loc)), Some(at)) if (loc.height, loc.index) != at => found.push(format!(
                "node {id} holds tx {tx} at {:?}; it was acknowledged at {at:?}",
                (loc.height, loc.index)
            )),
            (Ok(None), Some(at)) => found.push(format!(
                "node {id} lost tx {tx}, acknowledged committed at {at:?}"
            )),
            (Ok(None), None) if a.replayed => found.push(format!(
                "node {id} lacks tx {tx}, which a node answered `replayed` (committed before)"
            )),
            (Ok(Some(loc)), None) if a.only_refused => found.push(format!(
                "node {id} holds tx {tx} at height {}, though every answer to it was a refusal",
                loc.height
            )),
            _ => {}
        }
    }
    found
}

/// Each sealed checkpoint extends the one before it: a consistency proof
/// links their roots, and each note carries a quorum of the validator set
/// in force at its height.
fn sealed_append_only(id: u64, ledger: &Ledger, spec: &ledger::ChainSpec) -> Vec<String> {
    let rows = match ledger
        .store
        .scan_prefix(Space::State, b"sealed/", usize::MAX)
    {
        Ok(rows) => rows,
        Err(e) => return vec![format!("node {id}: sealed checkpoints do not read: {e}")],
    };
    let heights: Vec<u64> = rows
        .iter()
        .filter_map(|(k, _)| {
            std::str::from_utf8(&k[b"sealed/".len()..])
                .ok()?
                .parse()
                .ok()
        })
        .collect();
    let mut found = Vec::new();
    let mut previous: Option<(u64, u64, String, Vec<ledger::spec::Validator>)> = None;
    for h in heights {
        let note = match ledger::seal::signed_checkpoint(&ledger.store, spec, h) {
            Ok(Some((cp, note, set))) => (cp.tree_size, note.render(), set),
            Ok(None) => {
                found.push(format!(
                    "node {id}: sealed height {h} has no signed checkpoint"
                ));
                continue;
            }
            Err(e) => {
                found.push(format!("node {id}: checkpoint {h} does not read: {e}"));
                continue;
            }
        };
        if let Some((ph, from, old, old_set)) = &previous {
            // Each note against the set in force at its height: a
            // membership change between them changes who signs, and how many must.
            let proof = ledger::evidence::consistency_proof(&ledger.store, *from, note.0);
            let report = proof.map(|p| {
                ledger::evidence::verify_consistency_under(
                    old,
                    &note.1,
                    &p,
                    spec,
                    [old_set, &note.2],
                )
            });
            match report {
                Ok(r) if r.ok() => {}
                Ok(r) => found.push(format!(
                    "node {id}: sealed checkpoint {h} does not extend {ph}: {:?}",
                    r.failed()
                )),
                Err(e) => found.push(format!("node {id}: no consistency proof {ph}→{h}: {e}")),
            }
        }
        previous = Some((h, note.0, note.1, note.2));
    }
    found
}

/// The district scores of March 2024, as of the head, are the same on every node.
fn equal_scores(nodes: &[(u64, std::sync::Arc<Ledger>)], spec: &ledger::ChainSpec) -> Vec<String> {
    let districts: Vec<String> = spec.districts.iter().map(|d| d.code.clone()).collect();
    let period = match (
        jiff::civil::Date::new(2024, 3, 1),
        jiff::civil::Date::new(2024, 3, 31),
    ) {
        (Ok(from), Ok(to)) => ledger::score::Period::new(from, to),
        _ => return vec!["the score period does not build".into()],
    };
    let Ok(period) = period else {
        return vec!["the score period does not build".into()];
    };
    let mut first: Option<(u64, String)> = None;
    let mut found = Vec::new();
    for (id, ledger) in nodes {
        let as_of = ledger.head().ok().map(|h| h.time_ms);
        let report = ledger::score::scores(&ledger.store, &spec.model, &districts, period, as_of);
        let text = match report.map(|r| serde_json::to_string(&r)) {
            Ok(Ok(t)) => t,
            Ok(Err(e)) => {
                found.push(format!("node {id}: scores do not serialise: {e}"));
                continue;
            }
            Err(e) => {
                found.push(format!("node {id}: scores do not compute: {e}"));
                continue;
            }
        };
        match &first {
            None => first = Some((*id, text)),
            Some((other, t)) if *t != text => found.push(format!(
                "node {id}'s district scores differ from node {other}'s"
            )),
            Some(_) => {}
        }
    }
    found
}
