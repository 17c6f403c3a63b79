//! `zsl node run`: ledger + consensus + HTTP API in one process.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use tracing::info;

use crate::config::NodeConfig;

/// How long a follower waits to reach the leader's API.
const FORWARD_CONNECT_MS: u64 = 2_000;
/// A forwarded request's whole round trip: the leader's own commit wait and some slack.
const FORWARD_TOTAL_MS: u64 = api::COMMIT_WAIT_MS + 5_000;

/// Consensus seen through the API's [`api::TxSink`].
struct ConsensusSink {
    node: Arc<consensus::ConsensusNode>,
    node_id: u64,
    /// For forwarding submissions to the leader's API.
    http: reqwest::Client,
}

impl ConsensusSink {
    /// The leader's API address, from the membership (`{"p2p", "api"}` JSON).
    fn api_of(&self, leader: u64) -> Option<String> {
        let metrics = self.node.raft().metrics();
        let m = metrics.borrow();
        let node = m.membership_config.membership().get_node(&leader)?;
        consensus::p2p::member_field(&node.addr, "api")
    }
}

impl api::TxSink for ConsensusSink {
    fn submit(&self, wire: Vec<u8>) -> Result<api::OutcomeFuture, api::SinkError> {
        let rx = self.node.submit(wire).map_err(|e| match e {
            consensus::ConsensusError::QueueFull { .. } => api::SinkError::Busy,
            consensus::ConsensusError::NotLeader { leader } => api::SinkError::NotLeader { leader },
            _ => api::SinkError::Closed,
        })?;
        // A proposal that failed in Raft leaves the outcome unknown: the API says so
        // and the client asks /v1/tx/{id} (a resubmission is refused as `replayed` if it did commit).
        Ok(Box::pin(async move {
            match rx.await {
                Ok(Ok(o)) => Some(to_api_outcome(o)),
                _ => None,
            }
        }))
    }

    fn cluster(&self) -> api::ClusterInfo {
        let m = self.node.metrics();
        api::ClusterInfo {
            node_id: self.node_id,
            leader: m.leader,
            term: m.term,
            commit_index: m.commit_index,
            last_applied: m.last_applied_index,
            role: if m.is_leader {
                "leader".into()
            } else {
                "follower".into()
            },
        }
    }

    fn forward(&self, leader: u64, path_and_query: String, body: Vec<u8>) -> api::ForwardFuture {
        let api = self.api_of(leader);
        let http = self.http.clone();
        Box::pin(async move {
            let api = api.ok_or_else(|| format!("node {leader}'s API address is unknown"))?;
            let resp = http
                .post(format!("http://{api}{path_and_query}"))
                .header(api::FORWARDED_HEADER, "1")
                .header("content-type", "application/json")
                .body(body)
                .send()
                .await
                .map_err(|e| e.to_string())?;
            let status = resp.status().as_u16();
            let bytes = resp.bytes().await.map_err(|e| e.to_string())?;
            Ok((status, bytes))
        })
    }
}

fn to_api_outcome(o: consensus::TxOutcomeResponse) -> api::SubmitOutcome {
    match o.result {
        consensus::TxResult::Committed {
            height,
            index,
            leaf_index,
        } => api::SubmitOutcome::Committed {
            tx_id: o.id.unwrap_or_default(),
            height,
            index,
            leaf_index,
        },
        consensus::TxResult::Refused { code, message } => api::SubmitOutcome::Refused {
            tx_id: o.id,
            code: code.as_str().into(),
            message,
        },
    }
}

pub fn run_node(config_path: &Path) -> Result<()> {
    let config = NodeConfig::read(config_path)?;
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "info,openraft=warn".into()),
        )
        .with_target(false)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(serve(config))
}

async fn serve(config: NodeConfig) -> Result<()> {
    let spec = genesis::read_spec(&config.genesis)?;
    std::fs::create_dir_all(&config.data_dir)
        .with_context(|| format!("creating {}", config.data_dir.display()))?;
    let ledger = Arc::new(
        ledger::Ledger::open(
            &config.data_dir.join("db"),
            spec,
            &ledger::store::StoreOptions::default(),
        )
        .context("opening the ledger")?,
    );
    let listener = tokio::net::TcpListener::bind(&config.api_listen)
        .await
        .with_context(|| format!("binding the API to {}", config.api_listen))?;
    let addr = listener.local_addr()?;
    let cc = consensus::ConsensusConfig {
        block_txs_max: config.block.txs_max,
        block_bytes_max: config.block.bytes_max,
        queue_txs_max: config.block.queue_txs_max,
        ..consensus::ConsensusConfig::default()
    };
    let spec = ledger.spec.clone();
    if !spec.validators.is_empty() && !spec.validators.iter().any(|v| v.node_id == config.node_id) {
        bail!("node {} is not a validator of this genesis", config.node_id);
    }
    let key = match (&config.validator_key, spec.validators.is_empty()) {
        (Some(path), _) => Some(genesis::KeyFile::read(path)?),
        (None, true) => None,
        (None, false) => bail!("genesis has validators: set `validator_key` in the config"),
    };
    if let (Some(key), Some(v)) = (
        &key,
        spec.validators.iter().find(|v| v.node_id == config.node_id),
    ) {
        if key.public_key != v.public_key {
            bail!(
                "validator_key is not node {}'s key in genesis",
                config.node_id
            );
        }
    }
    let mut p2p = None;
    let node = if spec.validators.len() > 1 {
        let key = key.context("a cluster member needs its validator key")?;
        let (node, p2p_node) = start_member(&config, &spec, &key, addr, ledger.clone(), cc).await?;
        p2p = Some(p2p_node);
        node
    } else {
        consensus::ConsensusNode::start_single(config.node_id, addr.to_string(), ledger.clone(), cc)
            .await
            .context("starting consensus")?
    };
    let node = Arc::new(node);
    let http = reqwest::Client::builder()
        .connect_timeout(Duration::from_millis(FORWARD_CONNECT_MS))
        .timeout(Duration::from_millis(FORWARD_TOTAL_MS))
        .build()
        .context("building the forwarding client")?;
    let state = api::AppState {
        ledger: ledger.clone(),
        sink: Arc::new(ConsensusSink {
            node: node.clone(),
            node_id: config.node_id,
            http,
        }),
    };
    let app = api::router(state);
    // Written after binding so a supervisor learns the real port without racing.
    std::fs::write(config.data_dir.join("api.addr"), addr.to_string())?;
    info!(node_id = config.node_id, api = %addr, chain = %ledger.spec.chain_id, "node serving");
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown_signal())
        .await?;
    info!("shutting down");
    if let Err(e) = node.shutdown().await {
        tracing::warn!(error = %e, "consensus shutdown");
    }
    if let Some(p2p) = p2p {
        p2p.shutdown();
    }
    Ok(())
}

/// A member of a multi-validator cluster: libp2p as the validator key, Raft
/// over it, and — on the lowest node id — the cluster's initialisation with
/// every genesis validator (a no-op on an initialised store, so restarts are safe).
async fn start_member(
    config: &NodeConfig,
    spec: &ledger::spec::ChainSpec,
    key: &genesis::KeyFile,
    api_addr: std::net::SocketAddr,
    ledger: Arc<ledger::Ledger>,
    cc: consensus::ConsensusConfig,
) -> Result<(consensus::ConsensusNode, consensus::P2pNode)> {
    let keypair = consensus::p2p::keypair_of(&key.secret_key)?;
    let peers = consensus::p2p::validator_peers(spec)?;
    let p2p_config = consensus::P2pConfig {
        listen: config.p2p_multiaddr()?,
        ..consensus::P2pConfig::default()
    };
    let p2p = consensus::P2pNode::start(keypair, peers, p2p_config)
        .await
        .with_context(|| format!("starting libp2p on {}", config.p2p_listen))?;
    std::fs::write(
        config.data_dir.join("p2p.addr"),
        p2p.listen_addr().to_string(),
    )?;
    let network = consensus::TransportNetwork::new(Arc::new(p2p.transport()));
    let node = consensus::ConsensusNode::start(config.node_id, ledger, cc, network)
        .await
        .context("starting consensus")?;
    p2p.serve(node.raft().clone());
    let first = spec.validators.iter().map(|v| v.node_id).min();
    if first == Some(config.node_id) {
        let mut members = BTreeMap::new();
        for v in &spec.validators {
            let (p2p_addr, api) = if v.node_id == config.node_id {
                (p2p.listen_addr().to_string(), Some(api_addr.to_string()))
            } else {
                let peer = config.peer(v.node_id).with_context(|| {
                    format!(
                        "node {} initialises the cluster and needs `[peers.{}]` in its config",
                        config.node_id, v.node_id
                    )
                })?;
                (
                    crate::config::to_multiaddr(&peer.p2p)?.to_string(),
                    peer.api.clone(),
                )
            };
            let addr = serde_json::json!({"p2p": p2p_addr, "api": api}).to_string();
            members.insert(v.node_id, openraft::BasicNode::new(addr));
        }
        node.initialize_cluster(members)
            .await
            .context("initialising the cluster")?;
    }
    info!(node_id = config.node_id, p2p = %p2p.listen_addr(), validators = spec.validators.len(), "cluster member started");
    Ok((node, p2p))
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
}
