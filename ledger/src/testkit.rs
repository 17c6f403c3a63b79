//! The test kit: keys derived from labels, a test chain spec, and an
//! in-memory chain that signs records and applies them block by block.
//! Built for this crate's tests and, behind the `testkit` feature, for the
//! workspace's tests and benches. Nothing in a node calls it: its keys are
//! public, and a failure here is a broken test, so it panics.

use ed25519_dalek::SigningKey;
use serde::Serialize;

use crate::block::{BlockProposal, Cosignature};
use crate::hash::sha256;
use crate::kv::{MemoryKv, Space};
use crate::machine::{apply_block, genesis, AppliedBlock};
use crate::record::*;
use crate::refusal::RefusalCode;
use crate::signing::{AccountSigningKey, SignedTx};
use crate::spec::{ChainSpec, District, Region, RootRegulator, Validator};
use crate::state::{get, holding_key, VarietyCatalogue};

/// 2024-03-01T09:00:00+08:00, where test chains start.
pub const T0: i64 = 1_709_254_800_000;
pub const DAY: i64 = 86_400_000;
/// 杭州市上城区, 杭州市西湖区, 宁波市海曙区.
pub const D1: &str = "330102";
pub const D2: &str = "330106";
pub const D3: &str = "330203";

/// The key a label names (the same label, the same key, everywhere).
pub fn key(label: &str) -> SigningKey {
    SigningKey::from_bytes(&sha256(label.as_bytes()))
}

/// A key's public half as lowercase hex, as records carry it.
pub fn pk(k: &SigningKey) -> String {
    hex::encode(k.verifying_key().to_bytes())
}

/// The `n`th valid USCC of a subject in [`D1`].
pub fn uscc(n: u32) -> String {
    crate::validate::synthetic_uscc(D1, n)
}

/// `validator-1` … `validator-n` with their keys.
pub fn validator_keys(n: usize) -> Vec<(String, SigningKey)> {
    (1..=n)
        .map(|i| (format!("validator-{i}"), key(&format!("validator-{i}"))))
        .collect()
}

pub fn district(code: &str, name: &str, city_code: &str, city: &str) -> District {
    District {
        code: code.into(),
        name: name.into(),
        city_code: city_code.into(),
        city: city.into(),
        lon: None,
        lat: None,
    }
}

/// [`D1`], [`D2`] (both in 杭州市) and [`D3`] (宁波市).
pub fn three_districts() -> Vec<District> {
    vec![
        district(D1, "上城区", "330100", "杭州市"),
        district(D2, "西湖区", "330100", "杭州市"),
        district(D3, "海曙区", "330200", "宁波市"),
    ]
}

/// Chain `zsl-test`: genesis 2024-02-01, root regulator `root` (key
/// `key("root")`), `validators` validators from [`validator_keys`], one key
/// variety (`meat`), the zj-2024 model, a one-day transaction window.
pub fn spec(districts: Vec<District>, validators: usize) -> ChainSpec {
    ChainSpec {
        chain_id: "zsl-test".into(),
        genesis_time: "2024-02-01T00:00:00+08:00".into(),
        province: Region {
            code: "330000".into(),
            name: "浙江省".into(),
        },
        districts,
        root_regulators: vec![RootRegulator {
            id: "root".into(),
            name: "root".into(),
            public_key: pk(&key("root")),
        }],
        validators: validator_keys(validators)
            .iter()
            .enumerate()
            .map(|(i, (name, k))| Validator {
                node_id: i as u64 + 1,
                name: name.clone(),
                public_key: pk(k),
            })
            .collect(),
        checkpoint_quorum: None,
        log_host: Some(crate::spec::DEFAULT_LOG_HOST.into()),
        sm2_accounts: false,
        key_varieties: VarietyCatalogue {
            version: 1,
            varieties: vec![Variety {
                code: "meat".into(),
                name: "meat".into(),
            }],
        },
        model: crate::score::ModelParams::zj_2024(),
        tx_window_past_ms: DAY,
        tx_window_future_ms: 300_000,
    }
}

/// A chain in memory: records signed at its clock, one block a second.
pub struct MemoryChain {
    pub spec: ChainSpec,
    pub kv: MemoryKv,
    /// The clock records are signed at; each block advances it 1 s.
    pub now: i64,
    pub nonce: u64,
}

impl MemoryChain {
    pub fn new(spec: ChainSpec) -> Self {
        let (changes, _) = genesis(&spec).unwrap();
        let mut kv = MemoryKv::new();
        kv.apply(&changes);
        MemoryChain {
            spec,
            kv,
            now: T0,
            nonce: 0,
        }
    }

    /// A signed transaction's wire bytes: `rec` as a `kind` record of `account`.
    pub fn tx<T: Serialize>(
        &mut self,
        signer: &SigningKey,
        account: &str,
        kind: &str,
        rec: &T,
    ) -> Vec<u8> {
        self.tx_with(&signer.clone().into(), account, kind, rec)
    }

    /// [`Self::tx`] signed by any account key (Ed25519 or SM2).
    pub fn tx_with<T: Serialize>(
        &mut self,
        signer: &AccountSigningKey,
        account: &str,
        kind: &str,
        rec: &T,
    ) -> Vec<u8> {
        self.nonce += 1;
        let at = jiff::Timestamp::from_millisecond(self.now)
            .unwrap()
            .to_string();
        let body = build_body(
            kind,
            &self.spec.chain_id,
            account,
            &at,
            &self.nonce.to_string(),
            rec,
        );
        serde_json::to_vec(&SignedTx::sign_with(body, signer).unwrap().to_json()).unwrap()
    }

    /// Applies and commits a block of `txs` (refusals included).
    pub fn block(&mut self, txs: Vec<Vec<u8>>) -> AppliedBlock {
        self.block_with(txs, Vec::new())
    }

    /// [`Self::block`] carrying checkpoint signatures.
    pub fn block_with(&mut self, txs: Vec<Vec<u8>>, cosigs: Vec<Cosignature>) -> AppliedBlock {
        self.now += 1_000;
        let applied = apply_block(
            &self.kv,
            &self.spec,
            &BlockProposal {
                time_ms: self.now,
                txs,
                cosigs,
            },
        )
        .unwrap();
        self.kv.apply(&applied.changes);
        applied
    }

    /// Applies one transaction; returns its refusal code, if any.
    pub fn one(&mut self, wire: Vec<u8>) -> Option<RefusalCode> {
        let applied = self.block(vec![wire]);
        applied.outcomes[0].result.as_ref().err().map(|r| r.code)
    }

    /// Applies one transaction that must be accepted.
    pub fn ok(&mut self, wire: Vec<u8>) {
        let applied = self.block(vec![wire]);
        if let Err(r) = &applied.outcomes[0].result {
            panic!("refused: {r}");
        }
    }

    pub fn holding(&self, trace: &str, who: &str) -> u64 {
        get::<u64>(&self.kv, Space::State, &holding_key(trace, who))
            .unwrap()
            .unwrap_or(0)
    }

    /// Registers subject `uscc(n)` (key `key(uscc)`) as root; returns its id and key.
    pub fn register(&mut self, n: u32, district: &str, kind: SubjectKind) -> (String, SigningKey) {
        let id = uscc(n);
        let k = key(&id);
        let rec = SubjectRegister {
            uscc: id.clone(),
            name: format!("s{n}"),
            kind,
            district: district.into(),
            key_subject: false,
            public_key: pk(&k),
            market: None,
        };
        let w = self.tx(&key("root"), "root", "subject.register", &rec);
        self.ok(w);
        (id, k)
    }

    /// Registers product `p` (pork, variety `meat`) of `who`.
    pub fn product(&mut self, who: &(String, SigningKey)) {
        let rec = ProductRegister {
            product_id: "p".into(),
            name: "pork".into(),
            gtin: None,
            variety: "meat".into(),
            shelf_life_days: 5,
        };
        let w = self.tx(&who.1, &who.0, "product.register", &rec);
        self.ok(w);
    }

    /// A `batch.code` of product `p`, produced 2024-02-28 in [`D1`].
    pub fn code(
        &mut self,
        who: &(String, SigningKey),
        batch_id: &str,
        qty: u64,
        expiry: &str,
    ) -> Vec<u8> {
        let rec = BatchCode {
            batch_id: batch_id.into(),
            product_id: "p".into(),
            quantity: qty,
            unit: "kg".into(),
            production_date: "2024-02-28".into(),
            expiry_date: expiry.into(),
            origin_region: D1.into(),
            upstream: None,
            certificates: vec![],
            rapid_tests: vec![],
        };
        self.tx(&who.1, &who.0, "batch.code", &rec)
    }

    /// A one-line `shipment.create`.
    pub fn ship(
        &mut self,
        from: &(String, SigningKey),
        id: &str,
        to: &str,
        trace: &str,
        qty: u64,
    ) -> Vec<u8> {
        let rec = ShipmentCreate {
            shipment_id: id.into(),
            to: to.into(),
            lines: vec![ShipmentLine {
                trace_code: trace.into(),
                quantity: qty,
            }],
        };
        self.tx(&from.1, &from.0, "shipment.create", &rec)
    }

    /// A receipt, or with `reject` a rejection for quality.
    pub fn answer(
        &mut self,
        by: &(String, SigningKey),
        shipper: &str,
        id: &str,
        reject: bool,
    ) -> Vec<u8> {
        if reject {
            let rec = ShipmentReject {
                shipper: shipper.into(),
                shipment_id: id.into(),
                reason: RejectionReason::Quality,
                note: None,
            };
            self.tx(&by.1, &by.0, "shipment.reject", &rec)
        } else {
            let rec = ShipmentReceive {
                shipper: shipper.into(),
                shipment_id: id.into(),
            };
            self.tx(&by.1, &by.0, "shipment.receive", &rec)
        }
    }
}
