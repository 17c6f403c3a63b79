//! The node's config file (TOML).

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
    #[serde(default)]
    pub block: BlockConfig,
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
}

fn default_api_listen() -> String {
    "127.0.0.1:8080".into()
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

impl Default for BlockConfig {
    fn default() -> Self {
        Self {
            txs_max: default_block_txs_max(),
            bytes_max: default_block_bytes_max(),
            queue_txs_max: default_queue_txs_max(),
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
        if let Some(k) = c.validator_key.as_mut() {
            if k.is_relative() {
                *k = base.join(&*k);
            }
        }
        if c.block.txs_max == 0 || c.block.bytes_max == 0 || c.block.queue_txs_max == 0 {
            bail!("block limits must be positive");
        }
        Ok(c)
    }

    pub fn write(&self, path: &Path) -> Result<()> {
        std::fs::write(path, toml::to_string_pretty(self)?)
            .with_context(|| format!("writing {}", path.display()))
    }
}
