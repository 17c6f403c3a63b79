//! `zsl node run`: ledger + consensus + HTTP API in one process.

use std::path::Path;
use std::sync::Arc;

use anyhow::{Context, Result};
use tracing::info;

use crate::config::NodeConfig;

/// Consensus seen through the API's [`api::TxSink`].
struct ConsensusSink {
    node: Arc<consensus::ConsensusNode>,
    node_id: u64,
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
    let node = Arc::new(
        consensus::ConsensusNode::start_single(
            config.node_id,
            addr.to_string(),
            ledger.clone(),
            cc,
        )
        .await
        .context("starting consensus")?,
    );
    let state = api::AppState {
        ledger: ledger.clone(),
        sink: Arc::new(ConsensusSink {
            node: node.clone(),
            node_id: config.node_id,
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
    Ok(())
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
