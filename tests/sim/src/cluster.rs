//! The simulated cluster: real [`ConsensusNode`]s over the in-memory network,
//! each on its own RocksDB under the simulated disk model, crashed by power
//! loss and restarted on what its disk kept.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use consensus::simulation::SplitMix64;
use consensus::{ConsensusConfig, ConsensusNode, MemRouter, ValidatorSigner};
use ledger::spec::ChainSpec;
use ledger::store::StoreOptions;
use ledger::Ledger;
use openraft::BasicNode;

/// How long a crashed node's tasks may take to let go of its store.
const RELEASE_WAIT_MS: u64 = 60_000;

/// One validator's place in the simulation: its directory outlives its crashes.
pub struct Member {
    pub dir: PathBuf,
    /// Running, or `None` while crashed.
    pub node: Option<Arc<ConsensusNode>>,
    /// Bumped by every crash: an answer from an earlier life is not an acknowledgement.
    pub life: u64,
}

pub struct Cluster {
    pub spec: ChainSpec,
    pub router: MemRouter,
    pub members: BTreeMap<u64, Member>,
    keys: BTreeMap<u64, ed25519_dalek::SigningKey>,
    _root: tempfile::TempDir,
}

/// What one power loss did.
pub struct PowerLoss {
    /// Unsynced write batches the disk gave back.
    pub batches_lost: usize,
}

/// Everything [`boot`] needs, taken from the cluster so no lock is held while it runs.
pub struct BootParams {
    id: u64,
    dir: PathBuf,
    spec: ChainSpec,
    key: ed25519_dalek::SigningKey,
    transport: Arc<consensus::MemTransport>,
    config: ConsensusConfig,
}

impl Cluster {
    /// `n` members (node ids 1..=n, n = the spec's validators), none running yet.
    pub fn new(spec: ChainSpec, router: MemRouter) -> Result<Self, String> {
        let root = tempfile::tempdir().map_err(|e| format!("temp dir: {e}"))?;
        let keys: BTreeMap<u64, _> = ledger::testkit::validator_keys(spec.validators.len())
            .into_iter()
            .zip(1u64..)
            .map(|((_, k), id)| (id, k))
            .collect();
        let members = keys
            .keys()
            .map(|&id| {
                let member = Member {
                    dir: root.path().join(format!("node-{id}")),
                    node: None,
                    life: 0,
                };
                (id, member)
            })
            .collect();
        Ok(Self {
            spec,
            router,
            members,
            keys,
            _root: root,
        })
    }

    /// The members as Raft's initial membership.
    pub fn voters(&self) -> BTreeMap<u64, BasicNode> {
        self.members
            .keys()
            .map(|&id| (id, BasicNode::new(format!("mem:{id}"))))
            .collect()
    }

    pub fn ids(&self) -> Vec<u64> {
        self.members.keys().copied().collect()
    }

    pub fn node(&self, id: u64) -> Option<Arc<ConsensusNode>> {
        self.members.get(&id)?.node.clone()
    }

    pub fn running(&self) -> Vec<u64> {
        self.members_up(true)
    }

    /// Each running member's ledger.
    pub fn running_ledgers(&self) -> Vec<(u64, Arc<Ledger>)> {
        self.members
            .iter()
            .filter_map(|(&id, m)| Some((id, m.node.as_ref()?.ledger().clone())))
            .collect()
    }

    pub fn crashed(&self) -> Vec<u64> {
        self.members_up(false)
    }

    fn members_up(&self, up: bool) -> Vec<u64> {
        self.members
            .iter()
            .filter(|(_, m)| m.node.is_some() == up)
            .map(|(&id, _)| id)
            .collect()
    }

    pub fn life(&self, id: u64) -> u64 {
        self.members.get(&id).map_or(0, |m| m.life)
    }

    /// What booting `id` takes, its election timeout drawn from `rng`.
    pub fn boot_params(&self, id: u64, rng: &mut SplitMix64) -> Option<BootParams> {
        Some(BootParams {
            id,
            dir: self.members.get(&id)?.dir.clone(),
            spec: self.spec.clone(),
            key: self.keys.get(&id)?.clone(),
            transport: Arc::new(self.router.transport(id)),
            config: raft_config(rng),
        })
    }

    /// Connects a booted node.
    pub fn install(&mut self, id: u64, node: ConsensusNode) -> Result<(), String> {
        self.router
            .register(id, node.raft().clone())
            .map_err(|e| e.to_string())?;
        self.router.register_inbox(id, node.cosign_inbox());
        self.router.register_submit_inbox(id, node.submit_inbox());
        let member = self.members.get_mut(&id).ok_or("no such member")?;
        member.node = Some(Arc::new(node));
        Ok(())
    }

    /// The instant of a power loss at `id`: cut from the network, its
    /// disk gives back a seeded suffix of its unsynced writes and fails
    /// every later write. The node is returned for [`stop`].
    pub fn cut_power(
        &mut self,
        id: u64,
        rng: &mut SplitMix64,
    ) -> Result<(Arc<ConsensusNode>, PowerLoss), String> {
        let member = self.members.get_mut(&id).ok_or("no such member")?;
        let node = member.node.take().ok_or("already down")?;
        member.life += 1;
        self.router.unregister(id);
        let store = &node.ledger().store;
        let keep = rng.range(0, store.unsynced_batches() as u64) as usize;
        let batches_lost = store
            .simulate_power_loss(keep)
            .map_err(|e| format!("node {id}: power loss: {e}"))?;
        Ok((node, PowerLoss { batches_lost }))
    }
}

/// Opens a member's ledger on the simulated disk and starts its node.
pub async fn boot(p: BootParams) -> Result<ConsensusNode, String> {
    let id = p.id;
    let ledger = Ledger::open(
        &p.dir,
        p.spec,
        &StoreOptions {
            sync: true,
            cache_bytes: 2 << 20,
            ..StoreOptions::default()
        },
    )
    .map_err(|e| format!("node {id}: ledger opens: {e}"))?;
    ledger.store.simulate_disk();
    let signer = ValidatorSigner {
        key: p.key,
        clock_tolerance_ms: 60_000,
    };
    ConsensusNode::start(id, Arc::new(ledger), p.config, p.transport, Some(signer))
        .await
        .map_err(|e| format!("node {id}: starts: {e}"))
}

/// Lets a node whose power was cut stop (its writes fail, nothing it sends
/// arrives), then closes its store so it can be booted again.
pub async fn stop(node: Arc<ConsensusNode>) -> Result<(), String> {
    let id = node.node_id();
    let ledger = node.ledger().clone();
    let _ = node.shutdown().await;
    drop(node);
    release(ledger, id).await
}

/// Raft timings for the simulation, the election timeout drawn from the
/// seed. openraft 0.9 draws a node's timeout once, when it starts, from
/// `min..max`; drawing it here from the same range, and handing openraft a
/// one-value range, is the same distribution through the seed.
/// Half the boots also snapshot every few hundred entries and keep little
/// log, so a node that was down catches up by snapshot install; half of
/// those install in small batches.
fn raft_config(rng: &mut SplitMix64) -> ConsensusConfig {
    let election_ms = rng.range(150, 299);
    let defaults = ConsensusConfig::default();
    let snapshots = rng.range(0, 1) == 0;
    ConsensusConfig {
        heartbeat_ms: 50,
        election_timeout_min_ms: election_ms,
        election_timeout_max_ms: election_ms + 1,
        snapshot_logs_since_last: if snapshots {
            rng.range(100, 1_000)
        } else {
            defaults.snapshot_logs_since_last
        },
        snapshot_logs_kept: if snapshots {
            rng.range(10, 100)
        } else {
            defaults.snapshot_logs_kept
        },
        // A small budget: installs copy in many batches, archives stream
        // through small buffers.
        snapshot_memory_budget_bytes: if snapshots && rng.range(0, 1) == 0 {
            64 << 10
        } else {
            defaults.snapshot_memory_budget_bytes
        },
        ..defaults
    }
}

/// Waits (in simulated time) until every task of a stopped node has dropped
/// its ledger, then closes it.
async fn release(ledger: Arc<Ledger>, id: u64) -> Result<(), String> {
    let mut ledger = ledger;
    let mut waited_ms = 0;
    loop {
        match Arc::try_unwrap(ledger) {
            Ok(inner) => {
                drop(inner);
                return Ok(());
            }
            Err(held) => ledger = held,
        }
        if waited_ms >= RELEASE_WAIT_MS {
            return Err(format!(
                "node {id}: its tasks still hold its store {RELEASE_WAIT_MS} ms after it stopped"
            ));
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
        waited_ms += 10;
    }
}
