//! Shared test fixtures: a small valid chain spec and signed transactions.

#![allow(dead_code)]

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use genesis::{GenesisParams, KeyFile};
use ledger::record::{build_body, DocumentNotarize};
use ledger::spec::{ChainSpec, RootRegulator, Validator};
use ledger::store::StoreOptions;
use ledger::{Ledger, SignedTx};

pub const CHAIN_ID: &str = "zsl-test";
pub const ROOT_ACCOUNT: &str = "zj-root";

/// A valid spec over Zhejiang's district table and the zj-2024 model, with a
/// fresh root regulator key (returned so tests can sign as the regulator).
pub fn test_spec() -> (ChainSpec, KeyFile) {
    let root = KeyFile::generate(ROOT_ACCOUNT);
    let validator = KeyFile::generate("validator-1");
    let spec = genesis::build_spec(GenesisParams {
        chain_id: CHAIN_ID.into(),
        genesis_time: "2024-01-01T00:00:00+08:00".into(),
        root_regulators: vec![RootRegulator {
            id: ROOT_ACCOUNT.into(),
            name: "Zhejiang AMR".into(),
            public_key: root.public_key.clone(),
        }],
        validators: vec![Validator {
            node_id: 1,
            name: validator.account.clone(),
            public_key: validator.public_key,
        }],
        districts: None,
        sm2_accounts: false,
    })
    .expect("test spec is valid");
    assert_eq!(spec.model, ledger::score::ModelParams::zj_2024());
    (spec, root)
}

/// A valid spec with `n` validators (node ids 1..=n), and their keys in node
/// id order, for cluster tests.
pub fn cluster_spec(n: u64) -> (ChainSpec, KeyFile, Vec<KeyFile>) {
    let root = KeyFile::generate(ROOT_ACCOUNT);
    let keys: Vec<KeyFile> = (1..=n)
        .map(|i| KeyFile::generate(&format!("validator-{i}")))
        .collect();
    let spec = genesis::build_spec(GenesisParams {
        chain_id: CHAIN_ID.into(),
        genesis_time: "2024-01-01T00:00:00+08:00".into(),
        root_regulators: vec![RootRegulator {
            id: ROOT_ACCOUNT.into(),
            name: "Zhejiang AMR".into(),
            public_key: root.public_key.clone(),
        }],
        validators: keys
            .iter()
            .zip(1..)
            .map(|(k, node_id)| Validator {
                node_id,
                name: k.account.clone(),
                public_key: k.public_key.clone(),
            })
            .collect(),
        districts: None,
        sm2_accounts: false,
    })
    .expect("cluster spec is valid");
    (spec, root, keys)
}

pub fn open_ledger(dir: &Path, spec: ChainSpec, sync: bool) -> Arc<Ledger> {
    Arc::new(
        Ledger::open(
            dir,
            spec,
            &StoreOptions {
                sync,
                cache_bytes: 8 << 20,
                ..StoreOptions::default()
            },
        )
        .expect("ledger opens"),
    )
}

/// A `document.notarize` by the root regulator, created now.
pub fn notarize(root: &KeyFile, nonce: &str) -> SignedTx {
    let record = DocumentNotarize {
        document_hash: hex::encode(ledger::hash::sha256(nonce.as_bytes())),
        title: format!("document {nonce}"),
        media_type: None,
        note: None,
    };
    let created_at = jiff::Timestamp::now().to_string();
    let body = build_body(
        "document.notarize",
        CHAIN_ID,
        ROOT_ACCOUNT,
        &created_at,
        nonce,
        &record,
    );
    let key = root.signing_key().expect("key file is valid");
    SignedTx::sign(body, &key).expect("body signs")
}

pub fn wire(tx: &SignedTx) -> Vec<u8> {
    serde_json::to_vec(&tx.to_json()).expect("tx serialises")
}

/// Polls `f` until it returns `Some` or `deadline` passes.
pub async fn poll_until<T>(deadline: Duration, what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let end = Instant::now() + deadline;
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(Instant::now() < end, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Waits until every other holder (Raft's tasks) has dropped `ledger`, then
/// closes it, so its RocksDB lock is free for a re-open.
pub async fn release(ledger: Arc<Ledger>) {
    let mut ledger = Some(ledger);
    poll_until(
        Duration::from_secs(30),
        "raft tasks to release the ledger",
        || {
            let l = ledger.take()?;
            match Arc::try_unwrap(l) {
                Ok(inner) => {
                    drop(inner);
                    Some(())
                }
                Err(l) => {
                    ledger = Some(l);
                    None
                }
            }
        },
    )
    .await;
}

/// A validator's checkpoint signer from its key file.
#[allow(dead_code)]
pub fn signer(key: &KeyFile) -> consensus::ValidatorSigner {
    consensus::ValidatorSigner {
        key: key.signing_key().expect("key file seed"),
        clock_tolerance_ms: 60_000,
    }
}

/// Raft timings for in-process tests: elections in a few hundred ms.
pub fn fast_config() -> consensus::ConsensusConfig {
    consensus::ConsensusConfig {
        heartbeat_ms: 50,
        election_timeout_min_ms: 150,
        election_timeout_max_ms: 300,
        ..Default::default()
    }
}

/// A snapshot of what `sm` has applied, built as Raft would ask for one.
pub async fn snapshot_of(
    sm: &mut consensus::StateMachine,
) -> openraft::Snapshot<consensus::TypeConfig> {
    use openraft::storage::RaftStateMachine;
    use openraft::RaftSnapshotBuilder;
    sm.get_snapshot_builder()
        .await
        .build_snapshot()
        .await
        .expect("snapshot builds")
}

/// The rows of one ledger space, `(key, value)` in key order.
pub fn rows_of(ledger: &Ledger, space: ledger::kv::Space) -> Vec<(Vec<u8>, Vec<u8>)> {
    let db = ledger.store.db();
    let cf = db.cf_handle(space.cf_name()).expect("column family");
    db.iterator_cf(cf, rocksdb::IteratorMode::Start)
        .map(|r| {
            let (k, v) = r.expect("row");
            (k.to_vec(), v.to_vec())
        })
        .collect()
}
