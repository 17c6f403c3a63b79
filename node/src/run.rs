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
    /// `https` when this node serves TLS: validators of one cluster serve alike.
    scheme: &'static str,
    /// This validator's key: it signs the read-index call (a validators-only route).
    key: Option<ed25519_dalek::SigningKey>,
}

impl ConsensusSink {
    /// A member's API address, from the membership (`{"p2p", "api"}` JSON).
    fn api_of(&self, leader: u64) -> Option<String> {
        let metrics = self.node.raft().metrics();
        let m = metrics.borrow();
        let node = m.membership_config.membership().get_node(&leader)?;
        consensus::p2p::member_field(&node.addr, "api")
    }
}

/// The API's view of a submission's fate.
fn to_outcome_future(
    submitted: consensus::Result<consensus::Submission>,
) -> Result<api::OutcomeFuture, api::SinkError> {
    let rx = submitted.map_err(|e| match e {
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

impl api::TxSink for ConsensusSink {
    fn submit(&self, wire: Vec<u8>) -> Result<api::OutcomeFuture, api::SinkError> {
        to_outcome_future(self.node.submit(wire))
    }

    fn submit_all(&self, wires: Vec<Vec<u8>>) -> Vec<Result<api::OutcomeFuture, api::SinkError>> {
        self.node
            .submit_all(wires)
            .into_iter()
            .map(to_outcome_future)
            .collect()
    }

    fn cluster(&self) -> api::ClusterInfo {
        let m = self.node.metrics();
        api::ClusterInfo {
            node_id: self.node_id,
            leader: m.leader,
            term: m.term,
            commit_index: m.commit_index,
            last_applied: m.last_applied_index,
            role: if self.node.is_removed() {
                "removed".into()
            } else if m.is_leader {
                "leader".into()
            } else {
                "follower".into()
            },
        }
    }

    fn metrics_text(&self) -> String {
        peer_metrics(&self.node)
    }

    fn read_index(&self) -> api::ReadIndexFuture {
        let node = self.node.clone();
        Box::pin(async move {
            let wait = Duration::from_millis(api::read::READ_WAIT_MS);
            node.read_index(wait).await.map_err(|e| match e {
                consensus::ConsensusError::NotLeader { leader } => {
                    api::ReadIndexError::NotLeader { leader }
                }
                other => api::ReadIndexError::Unavailable(other.to_string()),
            })
        })
    }

    fn leader_read_index(&self, leader: u64) -> api::ReadIndexFuture {
        let api = self.api_of(leader);
        let http = self.http.clone();
        let scheme = self.scheme;
        let key = self.key.clone();
        Box::pin(async move {
            let unreachable = |why: String| api::ReadIndexError::Unavailable(why);
            let api =
                api.ok_or_else(|| unreachable(format!("node {leader}'s API address is unknown")))?;
            let mut req = http
                .get(format!("{scheme}://{api}{}", api::READ_INDEX_PATH))
                .header(api::FORWARDED_HEADER, "1");
            if let Some(key) = &key {
                let now = jiff::Timestamp::now().as_second();
                let headers =
                    api::httpsig::sign(key, &reqwest::Method::GET, api::READ_INDEX_PATH, b"", now)
                        .map_err(|e| unreachable(e.to_string()))?;
                for (name, value) in headers {
                    req = req.header(name, value);
                }
            }
            let resp = req.send().await.map_err(|e| unreachable(e.to_string()))?;
            let status = resp.status().as_u16();
            let body = resp.bytes().await.map_err(|e| unreachable(e.to_string()))?;
            api::read::parse_read_index_answer(status, &body)
        })
    }

    fn fetch(&self, node: u64, path_and_query: String) -> api::ForwardFuture {
        self.relay(node, reqwest::Method::GET, path_and_query, None)
    }

    fn forward(&self, leader: u64, path_and_query: String, body: Vec<u8>) -> api::ForwardFuture {
        self.relay(leader, reqwest::Method::POST, path_and_query, Some(body))
    }
}

impl ConsensusSink {
    /// Sends one request to `node`'s API (marked forwarded, a JSON body if
    /// any) and brings back its status and body.
    fn relay(
        &self,
        node: u64,
        method: reqwest::Method,
        path_and_query: String,
        body: Option<Vec<u8>>,
    ) -> api::ForwardFuture {
        let api = self.api_of(node);
        let http = self.http.clone();
        let scheme = self.scheme;
        Box::pin(async move {
            let api = api.ok_or_else(|| format!("node {node}'s API address is unknown"))?;
            let mut req = http
                .request(method, format!("{scheme}://{api}{path_and_query}"))
                .header(api::FORWARDED_HEADER, "1");
            if let Some(body) = body {
                req = req.header("content-type", "application/json").body(body);
            }
            let resp = req.send().await.map_err(|e| e.to_string())?;
            let status = resp.status().as_u16();
            let bytes = resp.bytes().await.map_err(|e| e.to_string())?;
            Ok((status, bytes))
        })
    }
}

/// `/metrics` lines from Raft: members, and on the leader each peer's
/// replication progress (a peer whose matched index stops moving is down or
/// partitioned), plus the admission queue's depth.
fn peer_metrics(node: &consensus::ConsensusNode) -> String {
    use std::fmt::Write as _;
    let m = node.raft().metrics().borrow().clone();
    let members: Vec<u64> = m.membership_config.membership().voter_ids().collect();
    let mut out = String::new();
    let _ = writeln!(out, "# HELP zsl_raft_members Voting members of the Raft cluster.\n# TYPE zsl_raft_members gauge\nzsl_raft_members {}", members.len());
    let _ = writeln!(out, "# HELP zsl_peers Other validators in the membership.\n# TYPE zsl_peers gauge\nzsl_peers {}", members.iter().filter(|&&id| id != node.node_id()).count());
    let _ = writeln!(out, "# HELP zsl_raft_last_log_index Last Raft log index on this node (-1: none).\n# TYPE zsl_raft_last_log_index gauge\nzsl_raft_last_log_index {}", m.last_log_index.map_or(-1, |i| i as i64));
    if let Some(replication) = &m.replication {
        let _ = writeln!(out, "# HELP zsl_peer_matched_index On the leader: the last log index each peer has acknowledged (-1: none).\n# TYPE zsl_peer_matched_index gauge");
        for (peer, matched) in replication.iter().filter(|(id, _)| **id != node.node_id()) {
            let _ = writeln!(
                out,
                "zsl_peer_matched_index{{peer=\"{peer}\"}} {}",
                matched.map_or(-1, |l| l.index as i64)
            );
        }
    }
    if let Some(ms) = m.millis_since_quorum_ack {
        let _ = writeln!(out, "# HELP zsl_raft_quorum_ack_age_seconds On the leader: time since a quorum last acknowledged it.\n# TYPE zsl_raft_quorum_ack_age_seconds gauge\nzsl_raft_quorum_ack_age_seconds {}", ms as f64 / 1000.0);
    }
    let _ = writeln!(out, "# HELP zsl_admission_queue_txs Transactions waiting for a block.\n# TYPE zsl_admission_queue_txs gauge\nzsl_admission_queue_txs {}", node.metrics().queue_txs);
    out
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
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| "info,openraft=warn".into());
    match config.log.format {
        // One JSON object per line (time, level, message, fields) for log collectors.
        crate::config::LogFormat::Json => tracing_subscriber::fmt()
            .json()
            .with_env_filter(filter)
            .with_current_span(false)
            .init(),
        crate::config::LogFormat::Text => tracing_subscriber::fmt()
            .with_env_filter(filter)
            .with_target(false)
            .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
            .init(),
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .thread_name("zsl-api")
        .enable_all()
        .build()?;
    // Raft, the p2p swarm, block production and co-signing run on their own
    // threads: however many HTTP requests are queued, a heartbeat or a vote
    // never waits behind them in one run queue.
    let consensus = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(consensus_threads())
        .thread_name("zsl-consensus")
        .enable_all()
        .build()?;
    let served = runtime.block_on(serve(config, consensus.handle().clone()));
    consensus.shutdown_timeout(Duration::from_secs(5));
    served
}

/// Worker threads of the consensus runtime: half the cores, two to eight
/// (signature checks and block application run in place on them).
fn consensus_threads() -> usize {
    let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
    (cores / 2).clamp(2, 8)
}

async fn serve(config: NodeConfig, consensus_rt: tokio::runtime::Handle) -> Result<()> {
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
    // Read before binding, so a bad certificate stops the node before it serves anything.
    let tls = match (&config.api.tls_cert, &config.api.tls_key) {
        (Some(cert), Some(key)) => Some(crate::tls::acceptor(cert, key)?),
        _ => None,
    };
    let listener = tokio::net::TcpListener::bind(&config.api_listen)
        .await
        .with_context(|| format!("binding the API to {}", config.api_listen))?;
    let addr = listener.local_addr()?;
    let cc = consensus::ConsensusConfig {
        block_txs_max: config.block.txs_max,
        block_bytes_max: config.block.bytes_max,
        queue_txs_max: config.block.queue_txs_max,
        pipeline_blocks_max: config.block.pipeline_blocks_max,
        seal_linger_ms: config.block.seal_linger_ms,
        ..consensus::ConsensusConfig::default()
    };
    let spec = ledger.spec.clone();
    // A node with a validator key that genesis does not list joins a running
    // cluster: it waits for a `validator.add` record to bring it in.
    let joining =
        !spec.validators.is_empty() && !spec.validators.iter().any(|v| v.node_id == config.node_id);
    let key = match (&config.validator_key, spec.validators.is_empty()) {
        (Some(path), _) => Some(genesis::KeyFile::read(path)?),
        (None, true) => None,
        (None, false) => bail!("genesis has validators: set `validator_key` in the config"),
    };
    if let (true, Some(key)) = (joining, &key) {
        if spec
            .validators
            .iter()
            .any(|v| v.public_key == key.public_key)
        {
            bail!(
                "validator_key belongs to another genesis validator than node {}",
                config.node_id
            );
        }
        info!(
            node_id = config.node_id,
            "not in genesis: joining the cluster once a validator.add record names this node"
        );
    }
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
    // The read-index call to the leader is signed with this key.
    let read_index_key = key.as_ref().map(|k| k.signing_key()).transpose()?;
    // The same key signs credit reports, under this validator's genesis name.
    let report_signer = match (
        &read_index_key,
        spec.validators.iter().find(|v| v.node_id == config.node_id),
    ) {
        (Some(k), Some(v)) => Some(Arc::new(api::ReportSigner {
            name: v.name.clone(),
            key: k.clone(),
        })),
        _ => None,
    };
    let start = {
        let (config, spec, ledger) = (config.clone(), spec.clone(), ledger.clone());
        start_consensus(config, spec, key, addr, ledger, cc, joining)
    };
    let (node, p2p) = consensus_rt
        .spawn(start)
        .await
        .context("the consensus runtime stopped")??;
    let node = Arc::new(node);
    let mut http = reqwest::Client::builder()
        .connect_timeout(Duration::from_millis(FORWARD_CONNECT_MS))
        .timeout(Duration::from_millis(FORWARD_TOTAL_MS));
    // Besides the OS trust store, trust this node's own certificate chain: a
    // cluster whose validators share a private CA or certificate works
    // without touching the system store.
    if let Some(cert) = &config.api.tls_cert {
        let pem = std::fs::read(cert).with_context(|| format!("reading {}", cert.display()))?;
        for c in reqwest::Certificate::from_pem_bundle(&pem).context("the TLS certificate")? {
            http = http.add_root_certificate(c);
        }
    }
    let http = http.build().context("building the forwarding client")?;
    let public_url = match &config.api.public_url {
        Some(url) => url.clone(),
        None => format!("{}://{addr}", if tls.is_some() { "https" } else { "http" }),
    };
    let witness = match &config.witness {
        Some(c) => Some(Arc::new(crate::witnessing::service(c, &config.data_dir)?)),
        None => None,
    };
    let cosignatures = if config.witnessed_by.is_empty() {
        None
    } else {
        let book = Arc::new(api::cosignatures::CosignatureBook::open(
            config.data_dir.join("witness-cosignatures.jsonl"),
        )?);
        crate::witnessing::collect(ledger.clone(), book.clone(), &config.witnessed_by)?;
        Some(book)
    };
    let state = api::AppState {
        public_url,
        report_signer,
        witness,
        cosignatures,
        ..api::AppState::new(
            ledger.clone(),
            Arc::new(ConsensusSink {
                node: node.clone(),
                node_id: config.node_id,
                http,
                scheme: if tls.is_some() { "https" } else { "http" },
                key: read_index_key,
            }),
        )
    };
    let app = api::router(state);
    // Written after binding so a supervisor learns the real port without racing.
    std::fs::write(config.data_dir.join("api.addr"), addr.to_string())?;
    let app = api::limits::with_rate_limit(app, config.api.rate_limit());
    let limits = config.api.connection_limits();
    let scheme = if tls.is_some() { "https" } else { "http" };
    info!(node_id = config.node_id, api = %addr, scheme, chain = %ledger.spec.chain_id, "node serving");
    match tls {
        Some(acceptor) => {
            let listener = crate::tls::TlsListener::new(listener, acceptor)?;
            api::serve::serve(listener, app, limits, shutdown_signal()).await
        }
        None => api::serve::serve(listener, app, limits, shutdown_signal()).await,
    }
    info!("shutting down");
    if let Err(e) = node.shutdown().await {
        tracing::warn!(error = %e, "consensus shutdown");
    }
    if let Some(p2p) = p2p {
        p2p.shutdown();
    }
    // Memtables to compressed tables: the next start replays no WAL, and the
    // directory holds what the data really takes.
    if let Err(e) = ledger.store.flush() {
        tracing::warn!(error = %e, "flushing the store at shutdown");
    }
    Ok(())
}

/// Consensus for this node: a cluster member over libp2p, or a one-member cluster.
async fn start_consensus(
    config: NodeConfig,
    spec: ledger::spec::ChainSpec,
    key: Option<genesis::KeyFile>,
    addr: std::net::SocketAddr,
    ledger: Arc<ledger::Ledger>,
    cc: consensus::ConsensusConfig,
    joining: bool,
) -> Result<(consensus::ConsensusNode, Option<consensus::P2pNode>)> {
    if spec.validators.len() > 1 || joining {
        let key = key.context("a cluster member needs its validator key")?;
        let (node, p2p) = start_member(&config, &spec, &key, addr, ledger, cc, joining).await?;
        return Ok((node, Some(p2p)));
    }
    let signer = match &key {
        Some(k) => Some(validator_signer(k)?),
        None => None,
    };
    let node = consensus::ConsensusNode::start_single(
        config.node_id,
        addr.to_string(),
        ledger,
        cc,
        signer,
    )
    .await
    .context("starting consensus")?;
    Ok((node, None))
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
    joining: bool,
) -> Result<(consensus::ConsensusNode, consensus::P2pNode)> {
    let keypair = consensus::p2p::keypair_of(&key.secret_key)?;
    // The set this node's ledger has reached (genesis on a fresh store); the
    // node keeps it current as records change it.
    let head = ledger.head()?;
    let set = ledger::seal::validator_set_at(&ledger.store, head.height + 1)?;
    let mut peers = consensus::p2p::validator_set_peers(&set)?;
    if joining {
        peers.insert(config.node_id, keypair.public().to_peer_id());
    }
    let p2p_config = consensus::P2pConfig {
        listen: config.p2p_multiaddr()?,
        ..consensus::P2pConfig::default()
    };
    // One Raft entry is one block proposal and must fit one p2p message,
    // with room for the entry's framing and its checkpoint signatures;
    // otherwise a full block could never replicate.
    const ENTRY_OVERHEAD_BYTES: usize = 1 << 20;
    if cc.block_bytes_max.saturating_add(ENTRY_OVERHEAD_BYTES) > p2p_config.message_bytes_max {
        bail!(
            "block.bytes_max ({} bytes) must be at least {ENTRY_OVERHEAD_BYTES} bytes below the p2p message limit ({} bytes)",
            cc.block_bytes_max,
            p2p_config.message_bytes_max
        );
    }
    let p2p = consensus::P2pNode::start(keypair, peers, p2p_config)
        .await
        .with_context(|| format!("starting libp2p on {}", config.p2p_listen))?;
    std::fs::write(
        config.data_dir.join("p2p.addr"),
        p2p.listen_addr().to_string(),
    )?;
    let signer = Some(validator_signer(key)?);
    let node = consensus::ConsensusNode::start(
        config.node_id,
        ledger,
        cc,
        Arc::new(p2p.transport()),
        signer,
    )
    .await
    .context("starting consensus")?;
    p2p.serve(node.raft().clone());
    p2p.serve_cosign(node.cosign_inbox());
    p2p.serve_submit(node.submit_inbox());
    let transport = p2p.transport();
    let self_id = config.node_id;
    let self_peer = p2p.peer_id();
    node.on_validator_set(Box::new(move |set| {
        match consensus::p2p::validator_set_peers(set) {
            Ok(mut peers) => {
                // A joining node keeps itself until the set names it.
                peers.entry(self_id).or_insert(self_peer);
                transport.set_validators(peers);
            }
            Err(e) => tracing::error!(error = %e, "a validator key in the set is unusable"),
        }
    }));
    let first = spec.validators.iter().map(|v| v.node_id).min();
    if first == Some(config.node_id) && !joining {
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

/// How far a block time may be from this validator's clock for it to sign
/// the block's checkpoint.
const CHECKPOINT_CLOCK_TOLERANCE_MS: i64 = 30_000;

/// This node's checkpoint signer.
fn validator_signer(key: &genesis::KeyFile) -> Result<consensus::ValidatorSigner> {
    Ok(consensus::ValidatorSigner {
        key: key.signing_key()?,
        clock_tolerance_ms: CHECKPOINT_CLOCK_TOLERANCE_MS,
    })
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
