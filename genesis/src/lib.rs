//! ZSL genesis: the genesis file (a [`ChainSpec`] as JSON), the embedded
//! region table of Zhejiang's 90 county-level districts, the `zj-2024` model
//! parameters, the initial key-variety catalogue, key files, and devnet
//! generation.
//!
//! May depend on `ledger` only (for the spec types); never on consensus, HTTP
//! or the node.

// A dependency this target does not use is an error under clippy's
// `-D warnings` (scripts/test); test targets see dev-dependencies too.
#![cfg_attr(not(test), warn(unused_crate_dependencies))]

use std::path::Path;

use ed25519_dalek::SigningKey;
use serde::{Deserialize, Serialize};

use ledger::record::Variety;
use ledger::score::ModelParams;
use ledger::signing::AccountSigningKey;
use ledger::spec::{ChainSpec, District, Region, RootRegulator, Validator};
use ledger::state::VarietyCatalogue;
use ledger::strict_json;

/// GB/T 2260 county-level districts of Zhejiang, with seat coordinates.
pub const ZHEJIANG_DISTRICTS_JSON: &str = include_str!("../data/zhejiang-districts.json");

#[derive(Debug, thiserror::Error)]
pub enum GenesisError {
    #[error("io on {path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error("{path} is not a valid {what}: {reason}")]
    Parse {
        path: String,
        what: &'static str,
        reason: String,
    },
    #[error("invalid genesis: {0}")]
    Invalid(String),
}

pub type Result<T, E = GenesisError> = std::result::Result<T, E>;

#[derive(Deserialize)]
struct DistrictFile {
    province: Region,
    districts: Vec<District>,
}

/// The province and its districts from the embedded table.
pub fn zhejiang() -> Result<(Region, Vec<District>)> {
    let f: DistrictFile =
        serde_json::from_str(ZHEJIANG_DISTRICTS_JSON).map_err(|e| GenesisError::Parse {
            path: "embedded zhejiang-districts.json".into(),
            what: "district table",
            reason: e.to_string(),
        })?;
    Ok((f.province, f.districts))
}

/// The province's key-variety catalogue (重点品种), version 1.
pub fn default_varieties() -> VarietyCatalogue {
    let v = |code: &str, name: &str| Variety {
        code: code.into(),
        name: name.into(),
    };
    VarietyCatalogue {
        version: 1,
        varieties: vec![
            v("meat", "肉类 meat"),
            v("aquatic", "水产品 aquatic products"),
            v("fruit_veg", "果蔬 fruit and vegetables"),
            v("edible_oil", "食用油 edible oil"),
            v("pasteurized_milk", "巴氏杀菌乳 pasteurized milk"),
            v("soy_products", "豆制品 soy products"),
            v("special_dietary", "特殊膳食食品 special dietary foods"),
            v("health_food", "保健食品 health foods"),
            v("infant_formula", "婴幼儿配方食品 infant formula"),
            v("eggs", "蛋类 eggs"),
            v("rice_flour", "米面 rice and flour"),
        ],
    }
}

/// Parameters of a new chain.
pub struct GenesisParams {
    pub chain_id: String,
    pub genesis_time: String,
    pub root_regulators: Vec<RootRegulator>,
    pub validators: Vec<Validator>,
    /// Restrict the region table to these codes (scenario replays); `None`: all of Zhejiang.
    pub districts: Option<Vec<String>>,
    /// Whether accounts may hold SM2 keys (`ChainSpec::sm2_accounts`).
    pub sm2_accounts: bool,
}

/// Builds a chain spec over the embedded region table with the `zj-2024` model.
pub fn build_spec(p: GenesisParams) -> Result<ChainSpec> {
    let (province, mut districts) = zhejiang()?;
    if let Some(codes) = &p.districts {
        for c in codes {
            if !districts.iter().any(|d| &d.code == c) {
                return Err(GenesisError::Invalid(format!(
                    "district {c} is not in Zhejiang's region table"
                )));
            }
        }
        districts.retain(|d| codes.contains(&d.code));
    }
    let spec = ChainSpec {
        chain_id: p.chain_id,
        genesis_time: p.genesis_time,
        province,
        districts,
        root_regulators: p.root_regulators,
        validators: p.validators,
        checkpoint_quorum: None,
        key_varieties: default_varieties(),
        model: ModelParams::zj_2024(),
        // ERP systems upload in batches, sometimes a day late; a client clock may run a little fast.
        tx_window_past_ms: 24 * 3600 * 1000,
        tx_window_future_ms: 5 * 60 * 1000,
        log_host: Some(ledger::spec::DEFAULT_LOG_HOST.into()),
        sm2_accounts: p.sm2_accounts,
    };
    spec.validate()
        .map_err(|e| GenesisError::Invalid(e.to_string()))?;
    Ok(spec)
}

pub fn read_spec(path: &Path) -> Result<ChainSpec> {
    let text = std::fs::read_to_string(path).map_err(|e| GenesisError::Io {
        path: path.display().to_string(),
        source: e,
    })?;
    let spec: ChainSpec =
        strict_json::from_slice(text.as_bytes()).map_err(|e| GenesisError::Parse {
            path: path.display().to_string(),
            what: "genesis file",
            reason: e.to_string(),
        })?;
    spec.validate()
        .map_err(|e| GenesisError::Invalid(e.to_string()))?;
    Ok(spec)
}

pub fn write_json<T: Serialize>(path: &Path, value: &T) -> Result<()> {
    let text =
        serde_json::to_string_pretty(value).map_err(|e| GenesisError::Invalid(e.to_string()))?;
    std::fs::write(path, text + "\n").map_err(|e| GenesisError::Io {
        path: path.display().to_string(),
        source: e,
    })
}

/// Writes a new key file readable by its owner only (mode 0600 on Unix); an
/// existing file is never overwritten, so a key in use is not lost to a typo.
pub fn write_new_key_file(path: &Path, key: &KeyFile) -> Result<()> {
    let text =
        serde_json::to_string_pretty(key).map_err(|e| GenesisError::Invalid(e.to_string()))?;
    let io = |e: std::io::Error| GenesisError::Io {
        path: path.display().to_string(),
        source: e,
    };
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(path).map_err(io)?;
    std::io::Write::write_all(&mut file, (text + "\n").as_bytes()).map_err(io)?;
    file.sync_all().map_err(io)
}

/// A key file: an account (or validator) name and its secret. The length
/// of `public_key` says the algorithm, as on the wire: 64 hex is Ed25519
/// (`secret_key` its 32-byte seed), 130 hex is SM2 (`secret_key` the 32-byte
/// scalar d). Validators, witnesses and report signers are Ed25519 only.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeyFile {
    /// The account id the key signs for (or the validator name).
    pub account: String,
    pub public_key: String,
    /// The 32-byte secret, lowercase hex. Keep this file private.
    pub secret_key: String,
}

impl KeyFile {
    pub fn generate(account: &str) -> Self {
        let key = SigningKey::generate(&mut rand_core::OsRng);
        Self::from_key(account, &key)
    }

    /// A fresh 国密 SM2 account key.
    pub fn generate_sm2(account: &str) -> Self {
        Self::from_account_key(account, &AccountSigningKey::generate_sm2())
    }

    pub fn from_key(account: &str, key: &SigningKey) -> Self {
        Self {
            account: account.into(),
            public_key: hex::encode(key.verifying_key().to_bytes()),
            secret_key: hex::encode(key.to_bytes()),
        }
    }

    pub fn from_account_key(account: &str, key: &AccountSigningKey) -> Self {
        Self {
            account: account.into(),
            public_key: key.public().to_hex(),
            secret_key: hex::encode(key.secret_bytes()),
        }
    }

    fn secret(&self) -> Result<[u8; 32]> {
        let mut secret = [0u8; 32];
        hex::decode_to_slice(&self.secret_key, &mut secret).map_err(|_| {
            GenesisError::Invalid(format!(
                "key file for {} has a bad secret_key (64 hex characters)",
                self.account
            ))
        })?;
        Ok(secret)
    }

    fn check_public(&self, public: &str) -> Result<()> {
        if public != self.public_key {
            return Err(GenesisError::Invalid(format!(
                "key file for {}: public_key does not match secret_key",
                self.account
            )));
        }
        Ok(())
    }

    /// The Ed25519 key: what validators, witnesses and report signers need.
    pub fn signing_key(&self) -> Result<SigningKey> {
        if self.public_key.len() == 130 {
            return Err(GenesisError::Invalid(format!(
                "key file for {} holds an SM2 key; only an account may sign with SM2 \
                 (validators, witnesses and report signers are Ed25519)",
                self.account
            )));
        }
        let key = SigningKey::from_bytes(&self.secret()?);
        self.check_public(&hex::encode(key.verifying_key().to_bytes()))?;
        Ok(key)
    }

    /// The key an account signs records with: Ed25519 or SM2, by the length
    /// of `public_key`.
    pub fn account_key(&self) -> Result<AccountSigningKey> {
        if self.public_key.len() != 130 {
            return self.signing_key().map(AccountSigningKey::from);
        }
        let key = AccountSigningKey::sm2_from_secret(&self.secret()?)
            .map_err(|e| GenesisError::Invalid(format!("key file for {}: {e}", self.account)))?;
        self.check_public(&key.public().to_hex())?;
        Ok(key)
    }

    pub fn read(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|e| GenesisError::Io {
            path: path.display().to_string(),
            source: e,
        })?;
        strict_json::from_slice(text.as_bytes()).map_err(|e| GenesisError::Parse {
            path: path.display().to_string(),
            what: "key file",
            reason: e.to_string(),
        })
    }
}

/// Node ids of devnet validators start here (ids are what `/v1/status` shows).
pub const DEVNET_FIRST_NODE_ID: u64 = 1;

/// A generated devnet: genesis plus the keys to run and use it.
pub struct Devnet {
    pub spec: ChainSpec,
    pub root: KeyFile,
    pub validators: Vec<KeyFile>,
}

/// Generates a devnet genesis with fresh keys: one provincial root regulator
/// and `validators` validator keys. Its accounts may hold SM2 keys.
pub fn devnet(chain_id: &str, genesis_time: &str, validators: usize) -> Result<Devnet> {
    let root = KeyFile::generate("zj-root");
    let vkeys: Vec<KeyFile> = (0..validators)
        .map(|i| KeyFile::generate(&format!("validator-{}", i as u64 + DEVNET_FIRST_NODE_ID)))
        .collect();
    let spec = build_spec(GenesisParams {
        chain_id: chain_id.into(),
        genesis_time: genesis_time.into(),
        root_regulators: vec![RootRegulator {
            id: root.account.clone(),
            name: "浙江省市场监督管理局 Zhejiang AMR".into(),
            public_key: root.public_key.clone(),
        }],
        validators: vkeys
            .iter()
            .enumerate()
            .map(|(i, k)| Validator {
                node_id: i as u64 + DEVNET_FIRST_NODE_ID,
                name: k.account.clone(),
                public_key: k.public_key.clone(),
            })
            .collect(),
        districts: None,
        sm2_accounts: true,
    })?;
    Ok(Devnet {
        spec,
        root,
        validators: vkeys,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn embedded_table_has_all_90_districts() {
        let (province, districts) = zhejiang().unwrap();
        assert_eq!(province.code, "330000");
        assert_eq!(districts.len(), 90);
        assert!(districts
            .iter()
            .all(|d| d.code.starts_with("33") && d.code.len() == 6));
    }

    #[test]
    fn devnet_spec_roundtrips_through_a_file() {
        let d = devnet("zsl-dev", "2026-01-01T00:00:00+08:00", 3).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("genesis.json");
        write_json(&path, &d.spec).unwrap();
        let back = read_spec(&path).unwrap();
        assert_eq!(back, d.spec);
        assert_eq!(back.hash().unwrap(), d.spec.hash().unwrap());
        assert_eq!(back.quorum(), 2);
        d.root.signing_key().unwrap();
    }

    #[test]
    fn restricting_districts_checks_codes() {
        let p = |codes: Vec<&str>| GenesisParams {
            chain_id: "c".into(),
            genesis_time: "2024-01-01T00:00:00+08:00".into(),
            root_regulators: vec![RootRegulator {
                id: "r".into(),
                name: "r".into(),
                public_key: KeyFile::generate("r").public_key,
            }],
            validators: vec![],
            districts: Some(codes.into_iter().map(String::from).collect()),
            sm2_accounts: false,
        };
        assert_eq!(build_spec(p(vec!["330102"])).unwrap().districts.len(), 1);
        assert!(build_spec(p(vec!["110101"])).is_err());
    }
}

#[cfg(test)]
mod key_file_tests {
    use super::*;

    #[test]
    fn a_new_key_file_is_private_and_never_overwrites() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("k.json");
        let k = KeyFile::generate("acct");
        write_new_key_file(&path, &k).expect("written");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path)
                .expect("metadata")
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        let again = KeyFile::generate("acct");
        assert!(write_new_key_file(&path, &again).is_err());
        let kept: KeyFile =
            serde_json::from_str(&std::fs::read_to_string(&path).expect("read")).expect("json");
        assert_eq!(kept.public_key, k.public_key);
    }

    #[test]
    fn an_sm2_key_file_round_trips_and_is_only_an_account_key() {
        let k = KeyFile::generate_sm2("acct");
        assert_eq!(k.public_key.len(), 130);
        assert!(k.public_key.starts_with("04"));
        let json = serde_json::to_string(&k).expect("json");
        let back: KeyFile = serde_json::from_str(&json).expect("back");
        let key = back.account_key().expect("an SM2 account key");
        assert_eq!(key.public().to_hex(), k.public_key);
        let err = back.signing_key().unwrap_err().to_string();
        assert!(err.contains("SM2"), "{err}");
        // An Ed25519 file serves both.
        let ed = KeyFile::generate("acct");
        assert_eq!(
            ed.account_key().expect("ed25519").public().to_hex(),
            ed.public_key
        );
    }

    #[test]
    fn an_sm2_key_file_with_an_unusable_or_mismatched_secret_is_refused() {
        let good = KeyFile::generate_sm2("acct");
        // d = n − 1 is a scalar but cannot sign (1 + d has no inverse).
        let n_minus_1 = "fffffffeffffffffffffffffffffffff7203df6b21c6052b53bbf40939d54122";
        let bad = KeyFile {
            secret_key: n_minus_1.into(),
            ..good.clone()
        };
        assert!(bad.account_key().is_err());
        let other = KeyFile::generate_sm2("acct");
        let mismatched = KeyFile {
            secret_key: other.secret_key,
            ..good
        };
        let err = mismatched.account_key().unwrap_err().to_string();
        assert!(err.contains("does not match"), "{err}");
    }
}
