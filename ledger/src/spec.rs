//! The chain spec: everything genesis fixes that the state machine depends on.
//! The `genesis` crate reads and writes it as the genesis file.

use serde::{Deserialize, Serialize};

use crate::error::{LedgerError, Result};
use crate::record::Variety;
use crate::score::ModelParams;
use crate::signing::{SigAlg, SignerKey};
use crate::state::VarietyCatalogue;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Region {
    pub code: String,
    pub name: String,
}

/// A county-level district of the region table (GB/T 2260).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct District {
    pub code: String,
    pub name: String,
    pub city_code: String,
    pub city: String,
    #[serde(default)]
    pub lon: Option<f64>,
    #[serde(default)]
    pub lat: Option<f64>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RootRegulator {
    pub id: String,
    pub name: String,
    /// Ed25519 public key (64 lowercase hex) or, on a chain with
    /// `sm2_accounts`, an SM2 key (130 lowercase hex, `04 ‖ x ‖ y`).
    pub public_key: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Validator {
    /// The node id shown in `/v1/status`.
    pub node_id: u64,
    pub name: String,
    /// Ed25519 public key, lowercase hex; also the node's libp2p identity.
    pub public_key: String,
}

/// The `log_host` a new genesis gets unless its operator names one: a
/// reserved name (RFC 2606), saying plainly that nobody chose it. The
/// origin stays unique without it: it carries the chain id and genesis hash.
pub const DEFAULT_LOG_HOST: &str = "zsl.example";

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChainSpec {
    pub chain_id: String,
    /// RFC 3339; the time of block 0.
    pub genesis_time: String,
    pub province: Region,
    pub districts: Vec<District>,
    pub root_regulators: Vec<RootRegulator>,
    pub validators: Vec<Validator>,
    /// Signatures needed to seal a checkpoint; default a majority of validators.
    #[serde(default)]
    pub checkpoint_quorum: Option<u32>,
    pub key_varieties: VarietyCatalogue,
    pub model: ModelParams,
    /// How far `created_at` may lie before the block time.
    pub tx_window_past_ms: i64,
    /// How far `created_at` may lie after the block time (clock skew).
    pub tx_window_future_ms: i64,
    /// The host part of the checkpoints' origin (a DNS name the chain's
    /// operator controls, e.g. `trace.amr.zj.gov.cn`). Set: checkpoints are
    /// C2SP-conformant (note format v2, `checkpoint::LogIdentity`). Unset:
    /// the format of genesis files written before it existed (v1), kept so
    /// their chains and bundles stay verifiable. Left out of the file (and of
    /// the genesis hash) when unset, so those files hash as they did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub log_host: Option<String>,
    /// Whether accounts (and root regulators) may hold 国密 SM2 keys next
    /// to Ed25519 ones (`signing::SignerKey`). Validators stay Ed25519: their
    /// key is the libp2p identity and signs C2SP notes. Left out of the file
    /// when false, so genesis files written before it hash as they did.
    #[serde(default, skip_serializing_if = "is_false")]
    pub sm2_accounts: bool,
}

fn is_false(b: &bool) -> bool {
    !*b
}

impl ChainSpec {
    pub fn genesis_time_ms(&self) -> Result<i64> {
        crate::record::parse_timestamp_ms(&self.genesis_time).ok_or_else(|| {
            LedgerError::Spec(format!(
                "genesis_time `{}` is not RFC 3339",
                self.genesis_time
            ))
        })
    }

    pub fn district(&self, code: &str) -> Option<&District> {
        self.districts.iter().find(|d| d.code == code)
    }

    pub fn district_codes(&self) -> Vec<String> {
        self.districts.iter().map(|d| d.code.clone()).collect()
    }

    pub fn is_city(&self, code: &str) -> bool {
        self.districts.iter().any(|d| d.city_code == code)
    }

    /// A jurisdiction is the province, a city of the table, or a district of the table.
    pub fn is_jurisdiction(&self, code: &str) -> bool {
        code == self.province.code || self.is_city(code) || self.district(code).is_some()
    }

    /// Whether `code` may name where goods come from: a district, city or
    /// the province of the table, or a GB/T 2260 code of another province
    /// (whose table the chain does not hold, so only its shape is checked).
    pub fn origin_known(&self, code: &str) -> bool {
        if !crate::validate::is_region_code(code) {
            return false;
        }
        match self.province.code.get(..2) {
            Some(own) if code.starts_with(own) => self.is_jurisdiction(code),
            _ => true,
        }
    }

    /// Whether `jurisdiction` covers `district`.
    pub fn covers(&self, jurisdiction: &str, district: &str) -> bool {
        let Some(d) = self.district(district) else {
            return false;
        };
        jurisdiction == self.province.code || jurisdiction == d.city_code || jurisdiction == d.code
    }

    /// Whether `outer` covers all of `inner` (both jurisdictions).
    pub fn covers_jurisdiction(&self, outer: &str, inner: &str) -> bool {
        if outer == self.province.code {
            return self.is_jurisdiction(inner);
        }
        if outer == inner {
            return true;
        }
        self.district(inner).is_some_and(|d| d.city_code == outer)
    }

    pub fn quorum(&self) -> u32 {
        self.checkpoint_quorum
            .unwrap_or(self.validators.len() as u32 / 2 + 1)
    }

    /// SHA-256 of the RFC 8785 form of the spec: the genesis hash, block 0's `prev_hash`.
    pub fn hash(&self) -> Result<[u8; 32]> {
        let value = serde_json::to_value(self).map_err(|e| LedgerError::Spec(e.to_string()))?;
        let jcs =
            crate::signing::canonical_json(&value).map_err(|e| LedgerError::Spec(e.message))?;
        Ok(crate::hash::sha256(&jcs))
    }

    /// Whether `text` may be bound to an account on this chain: the one
    /// spelling of a usable Ed25519 key or, with `sm2_accounts`, SM2 key.
    /// The error says why not, for the refusal's message.
    pub fn check_account_key(&self, text: &str) -> std::result::Result<SignerKey, &'static str> {
        let key = SignerKey::parse_hex(text).ok_or(if self.sm2_accounts {
            "`public_key` must be 64 (Ed25519) or 130 (SM2, 04 ‖ x ‖ y) lowercase hex characters"
        } else {
            "`public_key` must be 64 lowercase hex characters"
        })?;
        match key.alg() {
            SigAlg::Sm2Sm3 if !self.sm2_accounts => {
                Err("this chain does not accept SM2 keys (its genesis has no `sm2_accounts`)")
            }
            SigAlg::Ed25519 if !key.check_point() => {
                Err("`public_key` is not a usable Ed25519 public key")
            }
            SigAlg::Sm2Sm3 if !key.check_point() => {
                Err("`public_key` is not a point on the SM2 curve")
            }
            _ => Ok(key),
        }
    }

    /// Checks what the state machine relies on.
    pub fn validate(&self) -> Result<()> {
        let fail = |m: String| Err(LedgerError::Spec(m));
        if self.chain_id.is_empty() || self.chain_id.len() > 64 {
            return fail("chain_id must be 1-64 characters".into());
        }
        self.genesis_time_ms()?;
        if self.districts.is_empty() {
            return fail("the region table is empty".into());
        }
        let mut codes: Vec<&str> = self.districts.iter().map(|d| d.code.as_str()).collect();
        codes.sort_unstable();
        if codes.windows(2).any(|w| w[0] == w[1]) {
            return fail("duplicate district code".into());
        }
        if let Some(d) = self
            .districts
            .iter()
            .find(|d| !crate::validate::is_region_code(&d.code))
        {
            return fail(format!("district code `{}` is not 6 digits", d.code));
        }
        if self.root_regulators.is_empty() {
            return fail("genesis names no root regulator".into());
        }
        for r in &self.root_regulators {
            if let Err(why) = self.check_account_key(&r.public_key) {
                return fail(format!("root regulator `{}`: {why}", r.id));
            }
        }
        if self.tx_window_past_ms <= 0 || self.tx_window_future_ms < 0 {
            return fail("transaction window must be positive".into());
        }
        let mut names = std::collections::BTreeSet::new();
        let mut ids = std::collections::BTreeSet::new();
        for v in &self.validators {
            if !crate::validate::valid_key_name(&v.name) {
                return fail(format!(
                    "validator name `{}` cannot name a note key (no spaces or `+`)",
                    v.name
                ));
            }
            if !names.insert(v.name.as_str()) || !ids.insert(v.node_id) {
                return fail(format!("validator `{}` is listed twice", v.name));
            }
            let mut k = [0u8; 32];
            if hex::decode_to_slice(&v.public_key, &mut k).is_err() {
                return fail(format!("validator `{}` has a bad public key", v.name));
            }
        }
        if let Some(host) = &self.log_host {
            if !crate::validate::is_log_host(host) {
                return fail(format!(
                    "log_host `{host}` is not a DNS name (letters, digits, `-` and `.`, at most 253)"
                ));
            }
            // Every validator signs under the origin, so key ids tell them apart.
            let log = crate::checkpoint::LogIdentity::new(
                &self.chain_id,
                Some(host),
                &crate::hash::H32(self.hash()?),
            );
            let mut keys = Vec::with_capacity(self.validators.len());
            for v in &self.validators {
                let mut k = [0u8; 32];
                hex::decode_to_slice(&v.public_key, &mut k).map_err(|_| {
                    LedgerError::Spec(format!("validator `{}` has a bad public key", v.name))
                })?;
                keys.push((v.name.as_str(), k));
            }
            if log.note_keys(keys).is_err() {
                return fail("two validators' keys have the same note key id; replace one".into());
            }
        }
        let q = self.quorum() as usize;
        if !self.validators.is_empty() && (q == 0 || q > self.validators.len()) {
            return fail(format!(
                "checkpoint quorum {q} does not fit {} validators",
                self.validators.len()
            ));
        }
        Ok(())
    }

    /// The key-variety catalogue at genesis.
    pub fn varieties(&self) -> &[Variety] {
        &self.key_varieties.varieties
    }
}
