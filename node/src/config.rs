//! The node's config file (TOML).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NodeConfig {
    /// This node's id in the validator set (as in genesis and `/v1/status`).
    pub node_id: u64,
    /// RocksDB directory.
    pub data_dir: PathBuf,
    /// Genesis file.
    pub genesis: PathBuf,
    /// HTTP listen address; port 0 picks a free port, written to `DATA_DIR/api.addr`.
    #[serde(default = "default_api_listen")]
    pub api_listen: String,
    /// The validator's key file (signs checkpoints; its public key is in genesis).
    #[serde(default)]
    pub validator_key: Option<PathBuf>,
    /// Where validators reach this one (libp2p): a multiaddr
    /// (`/ip4/127.0.0.1/tcp/7000`) or `host:port`; port 0 picks a free port,
    /// written to `DATA_DIR/p2p.addr`. Used when genesis has several validators.
    #[serde(default = "default_p2p_listen")]
    pub p2p_listen: String,
    /// The other validators, by node id (TOML keys are strings: `[peers.2]`).
    /// The lowest node id initialises the cluster and needs every entry; the
    /// others learn the membership from it.
    #[serde(default)]
    pub peers: BTreeMap<String, PeerConfig>,
    #[serde(default)]
    pub block: BlockConfig,
    #[serde(default)]
    pub api: ApiConfig,
    #[serde(default)]
    pub log: LogConfig,
    /// This node as a C2SP witness of other chains' checkpoints.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub witness: Option<WitnessConfig>,
    /// Witnesses asked to cosign this chain's checkpoints.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub witnessed_by: Vec<WitnessedByConfig>,
}

/// `[witness]`: serve c2sp.org/tlog-witness at `/witness/`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WitnessConfig {
    /// The witness's key name, a schema-less URL (`witness.amr.zj.gov.cn/w1`).
    pub name: String,
    /// Its Ed25519 key file (`zsl keygen`), not a validator's key.
    pub key: PathBuf,
    /// The chains it witnesses.
    pub logs: Vec<WitnessedLogConfig>,
}

/// A chain this node witnesses, known by its genesis file: the origin, the
/// validators' note keys and the checkpoint quorum follow from it.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WitnessedLogConfig {
    pub genesis: PathBuf,
}

/// `[[witnessed_by]]`: a witness of this chain.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WitnessedByConfig {
    /// Its vkey (`<name>+<key id>+<base64(0x04 ‖ key)>`), as its operator publishes it.
    pub vkey: String,
    /// Its submission prefix (`https://witness.example/witness`); the node
    /// posts to `<url>/add-checkpoint`.
    pub url: String,
    /// How often the latest sealed checkpoint is offered, at most.
    #[serde(default = "default_witness_interval_ms")]
    pub interval_ms: u64,
}

fn default_witness_interval_ms() -> u64 {
    1_000
}

/// The HTTP API's transport and limits (`[api]`).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApiConfig {
    /// PEM certificate chain; with `tls_key`, the API serves HTTPS (rustls) only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls_cert: Option<PathBuf>,
    /// PEM private key (PKCS#8, PKCS#1 or SEC1) of `tls_cert`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls_key: Option<PathBuf>,
    /// Requests per second each client IP may make, sustained (0: no limit).
    #[serde(default = "default_rate_limit_per_s")]
    pub rate_limit_per_s: f64,
    /// Requests each client IP may make at once after being idle.
    #[serde(default = "default_rate_limit_burst")]
    pub rate_limit_burst: u32,
    /// Client IPs the rate limiter tracks at most (its memory bound).
    #[serde(default = "default_rate_limit_ips_max")]
    pub rate_limit_ips_max: usize,
    /// The URL people reach this API at (e.g. `https://ledger.example.org`),
    /// printed into evidence certificates and their QR codes. Default: the
    /// scheme and address the API is bound to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub public_url: Option<String>,
    /// Time a client has to send a request's headers (also the idle
    /// keep-alive limit); the connection is closed past it.
    #[serde(default = "default_header_read_timeout_ms")]
    pub header_read_timeout_ms: u64,
    /// Time a client has to send a request's body (`408 request_timeout`).
    #[serde(default = "default_body_read_timeout_ms")]
    pub body_read_timeout_ms: u64,
    /// Open connections at most, all clients together.
    #[serde(default = "default_connections_max")]
    pub connections_max: usize,
    /// Open connections at most from one client address (IPv6: one /64).
    #[serde(default = "default_connections_per_client_max")]
    pub connections_per_client_max: usize,
}

/// Logging (`[log]`).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogConfig {
    /// `text` (default) or `json`: one JSON object per line, for log collectors.
    #[serde(default)]
    pub format: LogFormat,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LogFormat {
    #[default]
    Text,
    Json,
}

// Generous defaults: a node's own tools, benchmarks and followers forwarding
// for their clients all arrive from few addresses; operators facing the
// public set tighter values.
fn default_rate_limit_per_s() -> f64 {
    1_000.0
}
fn default_rate_limit_burst() -> u32 {
    2_000
}
fn default_rate_limit_ips_max() -> usize {
    100_000
}
fn default_header_read_timeout_ms() -> u64 {
    api::serve::ConnectionLimits::default().header_read_timeout_ms
}
fn default_body_read_timeout_ms() -> u64 {
    api::serve::ConnectionLimits::default().body_read_timeout_ms
}
fn default_connections_max() -> usize {
    api::serve::ConnectionLimits::default().connections_max
}
fn default_connections_per_client_max() -> usize {
    api::serve::ConnectionLimits::default().connections_per_client_max
}

impl Default for ApiConfig {
    fn default() -> Self {
        Self {
            tls_cert: None,
            tls_key: None,
            rate_limit_per_s: default_rate_limit_per_s(),
            rate_limit_burst: default_rate_limit_burst(),
            rate_limit_ips_max: default_rate_limit_ips_max(),
            public_url: None,
            header_read_timeout_ms: default_header_read_timeout_ms(),
            body_read_timeout_ms: default_body_read_timeout_ms(),
            connections_max: default_connections_max(),
            connections_per_client_max: default_connections_per_client_max(),
        }
    }
}

impl ApiConfig {
    /// The serve loop's timeouts and connection caps.
    pub fn connection_limits(&self) -> api::serve::ConnectionLimits {
        api::serve::ConnectionLimits {
            header_read_timeout_ms: self.header_read_timeout_ms,
            body_read_timeout_ms: self.body_read_timeout_ms,
            connections_max: self.connections_max,
            connections_per_client_max: self.connections_per_client_max,
        }
    }

    /// The limiter's settings, or `None` when the limit is switched off.
    pub fn rate_limit(&self) -> Option<api::limits::RateLimit> {
        (self.rate_limit_per_s > 0.0).then(|| api::limits::RateLimit {
            per_second: self.rate_limit_per_s,
            burst: f64::from(self.rate_limit_burst.max(1)),
            ips_max: self.rate_limit_ips_max.max(1),
        })
    }
}

/// Another validator's addresses.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PeerConfig {
    /// Its libp2p address (multiaddr or `host:port`).
    pub p2p: String,
    /// Its HTTP API (`host:port`), where followers forward submissions while it leads.
    #[serde(default)]
    pub api: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BlockConfig {
    /// Transactions per block at most.
    #[serde(default = "default_block_txs_max")]
    pub txs_max: usize,
    /// Bytes of transactions per block at most.
    #[serde(default = "default_block_bytes_max")]
    pub bytes_max: usize,
    /// Admitted transactions waiting for a block at most; beyond it, submissions get 503.
    #[serde(default = "default_queue_txs_max")]
    pub queue_txs_max: usize,
    /// Block proposals in flight at once (proposed, not yet applied).
    #[serde(default = "default_pipeline_blocks_max")]
    pub pipeline_blocks_max: usize,
    /// How long checkpoint signatures wait for a transaction to ride with
    /// before they make a block of their own, in ms.
    #[serde(default = "default_seal_linger_ms")]
    pub seal_linger_ms: u64,
}

fn default_api_listen() -> String {
    "127.0.0.1:8080".into()
}
fn default_p2p_listen() -> String {
    "127.0.0.1:0".into()
}
fn default_block_txs_max() -> usize {
    5_000
}
fn default_block_bytes_max() -> usize {
    4 << 20
}
fn default_queue_txs_max() -> usize {
    50_000
}
fn default_pipeline_blocks_max() -> usize {
    consensus::ConsensusConfig::default().pipeline_blocks_max
}
fn default_seal_linger_ms() -> u64 {
    consensus::ConsensusConfig::default().seal_linger_ms
}

impl Default for BlockConfig {
    fn default() -> Self {
        Self {
            txs_max: default_block_txs_max(),
            bytes_max: default_block_bytes_max(),
            queue_txs_max: default_queue_txs_max(),
            pipeline_blocks_max: default_pipeline_blocks_max(),
            seal_linger_ms: default_seal_linger_ms(),
        }
    }
}

impl NodeConfig {
    pub fn read(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("reading config {}", path.display()))?;
        let mut c: NodeConfig =
            toml::from_str(&text).with_context(|| format!("parsing config {}", path.display()))?;
        // Relative paths are relative to the config file.
        let base = path.parent().unwrap_or(Path::new("."));
        for p in [&mut c.data_dir, &mut c.genesis] {
            if p.is_relative() {
                *p = base.join(&*p);
            }
        }
        let witness_paths = c.witness.as_mut().map(|w| {
            let mut v = vec![&mut w.key];
            v.extend(w.logs.iter_mut().map(|l| &mut l.genesis));
            v
        });
        for k in [
            c.validator_key.as_mut(),
            c.api.tls_cert.as_mut(),
            c.api.tls_key.as_mut(),
        ]
        .into_iter()
        .flatten()
        .chain(witness_paths.into_iter().flatten())
        {
            if k.is_relative() {
                *k = base.join(&*k);
            }
        }
        if c.api.tls_cert.is_some() != c.api.tls_key.is_some() {
            bail!("[api] needs both tls_cert and tls_key, or neither");
        }
        if !c.api.rate_limit_per_s.is_finite() || c.api.rate_limit_per_s < 0.0 {
            bail!("[api] rate_limit_per_s must be a non-negative number");
        }
        if let Some(url) = &mut c.api.public_url {
            *url =
                api::public_url(url).map_err(|why| anyhow::anyhow!("[api] public_url: {why}"))?;
        }
        if c.block.txs_max == 0 || c.block.bytes_max == 0 || c.block.queue_txs_max == 0 {
            bail!("block limits must be positive");
        }
        for id in c.peers.keys() {
            id.parse::<u64>()
                .with_context(|| format!("peers: `{id}` is not a node id"))?;
        }
        Ok(c)
    }

    /// `peers` keyed by node id (`read` has checked the keys).
    pub fn peer(&self, node_id: u64) -> Option<&PeerConfig> {
        self.peers.get(&node_id.to_string())
    }

    /// `p2p_listen` as a multiaddr.
    pub fn p2p_multiaddr(&self) -> Result<libp2p::Multiaddr> {
        to_multiaddr(&self.p2p_listen)
    }

    pub fn write(&self, path: &Path) -> Result<()> {
        std::fs::write(path, toml::to_string_pretty(self)?)
            .with_context(|| format!("writing {}", path.display()))
    }
}

/// A multiaddr as given, or one built from `host:port` (IPv4, IPv6 or a DNS name).
pub fn to_multiaddr(text: &str) -> Result<libp2p::Multiaddr> {
    let text = text.trim();
    if text.starts_with('/') {
        return text
            .parse()
            .with_context(|| format!("`{text}` is not a multiaddr"));
    }
    let (host, port) = text
        .rsplit_once(':')
        .with_context(|| format!("`{text}` is neither a multiaddr nor host:port"))?;
    let port: u16 = port
        .parse()
        .with_context(|| format!("`{text}`: bad port"))?;
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let proto = match host.parse::<std::net::IpAddr>() {
        Ok(std::net::IpAddr::V4(_)) => "ip4",
        Ok(std::net::IpAddr::V6(_)) => "ip6",
        Err(_) => "dns",
    };
    format!("/{proto}/{host}/tcp/{port}")
        .parse()
        .with_context(|| format!("`{text}` does not make a multiaddr"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listen_addresses_are_multiaddrs_or_host_port() {
        assert_eq!(
            to_multiaddr("127.0.0.1:0").unwrap().to_string(),
            "/ip4/127.0.0.1/tcp/0"
        );
        assert_eq!(
            to_multiaddr("/ip4/127.0.0.1/tcp/7000").unwrap().to_string(),
            "/ip4/127.0.0.1/tcp/7000"
        );
        assert_eq!(
            to_multiaddr("[::1]:7000").unwrap().to_string(),
            "/ip6/::1/tcp/7000"
        );
        assert!(to_multiaddr("nonsense").is_err());
        assert!(to_multiaddr("127.0.0.1:99999").is_err());
    }

    #[test]
    fn peers_parse_from_toml() {
        let c: NodeConfig = toml::from_str(
            "node_id = 1\ndata_dir = \"d\"\ngenesis = \"g\"\n[peers.2]\np2p = \"127.0.0.1:7002\"\napi = \"127.0.0.1:8081\"\n",
        )
        .unwrap();
        assert_eq!(c.peer(2).unwrap().api.as_deref(), Some("127.0.0.1:8081"));
        assert!(c.peer(3).is_none());
    }
}
