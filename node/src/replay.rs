//! `zsl score replay FILE`: a scenario through the real ledger — every event a
//! signed transaction, applied by the same state machine and score engine as a
//! node, on a throwaway RocksDB store, with each event's `at` as block time.

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::{anyhow, bail, Context, Result};
use ed25519_dalek::SigningKey;
use serde::Serialize;
use serde_json::Value;

use ledger::block::BlockProposal;
use ledger::machine::{trace_code, BLOCK_TXS_MAX};
use ledger::record::{self, *};
use ledger::score::scenario::{self, EventBody, FindingKindSpec, Scenario, UpstreamSpec};
use ledger::spec::{ChainSpec, RootRegulator};

const REPLAY_CHAIN_ID: &str = "zsl-replay";
const ROOT_ID: &str = "replay-regulator";
const INSPECTOR_ID: &str = "replay-inspector";
/// Registrations are committed this long before the first event.
const SETUP_LEAD_MS: i64 = 3_600_000;

fn key_for(label: &str) -> SigningKey {
    SigningKey::from_bytes(&ledger::hash::sha256(
        format!("zsl-replay-key/{label}").as_bytes(),
    ))
}

/// A stable, valid USCC for a scenario subject id.
fn uscc_for(district: &str, index: usize) -> String {
    ledger::validate::synthetic_uscc(district, index as u32 + 1)
}

fn rfc3339(ms: i64) -> Result<String> {
    Ok(jiff::Timestamp::from_millisecond(ms)?.to_string())
}

struct Replay {
    spec: ChainSpec,
    ledger: ledger::Ledger,
    accounts: BTreeMap<String, (String, SigningKey)>,
    nonce: u64,
}

impl Replay {
    fn tx<T: Serialize>(&mut self, who: &str, kind: &str, at_ms: i64, rec: &T) -> Result<Vec<u8>> {
        let (account, key) = self
            .accounts
            .get(who)
            .ok_or_else(|| anyhow!("unknown actor `{who}`"))?;
        self.nonce += 1;
        let body = record::build_body(
            kind,
            &self.spec.chain_id,
            account,
            &rfc3339(at_ms)?,
            &self.nonce.to_string(),
            rec,
        );
        let tx = ledger::SignedTx::sign(body, key).map_err(|r| anyhow!("{r}"))?;
        Ok(serde_json::to_vec(&tx.to_json())?)
    }

    /// Commits `txs` at `at_ms`: one block, or, past the ledger's block limit,
    /// one block per millisecond from `at_ms` on. Returns the last block's time.
    fn commit(&mut self, at_ms: i64, txs: Vec<Vec<u8>>, what: &str) -> Result<i64> {
        let mut txs = txs.into_iter().peekable();
        let mut last_ms = at_ms;
        for time_ms in at_ms.. {
            if txs.peek().is_none() {
                break;
            }
            let block: Vec<Vec<u8>> = txs.by_ref().take(BLOCK_TXS_MAX).collect();
            self.commit_block(time_ms, block, what)?;
            last_ms = time_ms;
        }
        Ok(last_ms)
    }

    fn commit_block(&mut self, time_ms: i64, txs: Vec<Vec<u8>>, what: &str) -> Result<()> {
        let applied = self.ledger.apply(
            &BlockProposal {
                time_ms,
                txs,
                cosigs: Vec::new(),
            },
            &[],
        )?;
        if let Some(bad) = applied
            .outcomes
            .iter()
            .find_map(|o| o.result.as_ref().err())
        {
            bail!("{what}: the ledger refused a transaction: {bad}");
        }
        let block = applied
            .block
            .ok_or_else(|| anyhow!("{what}: no block was cut"))?;
        if block.header.time_ms != time_ms {
            bail!(
                "{what}: block time {} is not the event time {time_ms}: the previous instant's \
                 events filled one block per millisecond (at most {BLOCK_TXS_MAX} transactions \
                 each) up to this one",
                block.header.time_ms
            );
        }
        Ok(())
    }
}

/// The ledger's id for a scenario's batch, shipment or finding label: the label
/// itself where the ledger accepts it as an id, else a digest of it.
fn ledger_id(label: &str) -> String {
    if ledger::validate::check_client_id("id", label).is_ok() {
        label.to_string()
    } else {
        format!(
            "x{}",
            &hex::encode(ledger::hash::sha256(label.as_bytes()))[..32]
        )
    }
}

/// The ledger's limits a scenario's events must keep beyond the story checks of
/// [`scenario::parse`]; refused up front, naming the event.
fn check_ledger_limits(s: &Scenario) -> Result<()> {
    use ledger::machine::{
        ADJUSTMENT_HUNDREDTHS_MAX, FINDING_BATCHES_MAX, NOTE_CHARS_MAX, SHIPMENT_LINES_MAX,
    };
    for (i, e) in s.events.iter().enumerate() {
        let what = |m: String| anyhow!("event {i} ({}): {m}", e.at);
        match &e.body {
            EventBody::Ship { batches, .. } if batches.len() > SHIPMENT_LINES_MAX => {
                return Err(what(format!(
                    "a shipment has at most {SHIPMENT_LINES_MAX} batches on the ledger"
                )))
            }
            EventBody::Reject { reason, .. } if !reason.is_empty() => {
                ledger::validate::check_text("reason", reason, NOTE_CHARS_MAX)
                    .map_err(|r| what(r.message))?
            }
            EventBody::Finding { batches, .. } if !(1..=FINDING_BATCHES_MAX).contains(batches) => {
                return Err(what(format!(
                    "a finding's `batches` is 1-{FINDING_BATCHES_MAX} on the ledger"
                )))
            }
            EventBody::Adjust { points, reason, .. } => {
                let p = scenario::points_hundredths(points)?;
                if !(1..=ADJUSTMENT_HUNDREDTHS_MAX).contains(&p) {
                    return Err(what(format!(
                        "`points` is 0.01-{} on the ledger",
                        ADJUSTMENT_HUNDREDTHS_MAX / 100
                    )));
                }
                ledger::validate::check_text("reason", reason, NOTE_CHARS_MAX)
                    .map_err(|r| what(r.message))?
            }
            _ => {}
        }
    }
    Ok(())
}

/// Runs a scenario; returns the score report JSON.
pub fn replay(
    s: &Scenario,
    from: Option<&str>,
    to: Option<&str>,
    store_dir: &Path,
) -> Result<Value> {
    check_ledger_limits(s)?;
    let first_ms = if s.events.is_empty() {
        None
    } else {
        Some(s.at_ms(0)?)
    };
    let setup_ms = first_ms.unwrap_or(0) - SETUP_LEAD_MS;
    let root_key = key_for(ROOT_ID);
    let spec = genesis::build_spec(genesis::GenesisParams {
        chain_id: REPLAY_CHAIN_ID.into(),
        genesis_time: rfc3339(setup_ms - SETUP_LEAD_MS)?,
        root_regulators: vec![RootRegulator {
            id: ROOT_ID.into(),
            name: "replay regulator".into(),
            public_key: hex::encode(root_key.verifying_key().to_bytes()),
        }],
        validators: vec![],
        districts: Some(s.districts.clone()),
        sm2_accounts: false,
    })?;
    let ledger = ledger::chain::scratch_ledger(store_dir, spec.clone())?;
    let mut r = Replay {
        spec,
        ledger,
        accounts: BTreeMap::new(),
        nonce: 0,
    };
    r.accounts
        .insert(ROOT_ID.into(), (ROOT_ID.into(), root_key));
    r.accounts.insert(
        INSPECTOR_ID.into(),
        (INSPECTOR_ID.into(), key_for(INSPECTOR_ID)),
    );

    // Setup: an inspector with provincial jurisdiction, the subjects, one product each.
    let mut txs = Vec::new();
    let province = r.spec.province.code.clone();
    let inspector = AccountRegister {
        id: INSPECTOR_ID.into(),
        role: AuthorityRole::Inspector,
        jurisdiction: province,
        name: "replay inspector".into(),
        public_key: hex::encode(key_for(INSPECTOR_ID).verifying_key().to_bytes()),
    };
    txs.push(r.tx(ROOT_ID, "account.register", setup_ms, &inspector)?);
    let mut districts: BTreeMap<String, String> = BTreeMap::new();
    for (i, subj) in s.subjects.iter().enumerate() {
        let uscc = uscc_for(&subj.district, i);
        let key = key_for(&subj.id);
        let kind = subj.kind;
        let reg = SubjectRegister {
            uscc: uscc.clone(),
            name: format!("scenario subject {}", subj.id),
            kind,
            district: subj.district.clone(),
            key_subject: false,
            public_key: hex::encode(key.verifying_key().to_bytes()),
            market: None,
        };
        txs.push(r.tx(ROOT_ID, "subject.register", setup_ms, &reg)?);
        r.accounts.insert(subj.id.clone(), (uscc, key));
        districts.insert(subj.id.clone(), subj.district.clone());
    }
    let products_ms = r.commit(setup_ms, txs, "registering subjects")? + 1;
    let mut txs = Vec::new();
    for subj in &s.subjects {
        let p = ProductRegister {
            product_id: "P".into(),
            name: "scenario product".into(),
            gtin: None,
            variety: "meat".into(),
            shelf_life_days: 3650,
        };
        txs.push(r.tx(&subj.id, "product.register", products_ms, &p)?);
    }
    r.commit(products_ms, txs, "registering products")?;

    // Events: those with the same `at` go into one block.
    let mut batch_trace: BTreeMap<String, String> = BTreeMap::new();
    let mut shipments: BTreeMap<String, (String, String)> = BTreeMap::new(); // id -> (shipper actor, receiver actor)
    let mut i = 0;
    while i < s.events.len() {
        let at = s.at_ms(i)?;
        let mut txs = Vec::new();
        let mut j = i;
        while j < s.events.len() && s.at_ms(j)? == at {
            let e = &s.events[j];
            let label = format!("event {j} ({})", e.at);
            match &e.body {
                EventBody::Code { by, upstream, .. } => {
                    let coder_district = districts.get(by).cloned().unwrap_or_default();
                    let date = ledger::score::local_date(&r.spec.model, at)?.to_string();
                    let upstream = match upstream {
                        None => None,
                        Some(UpstreamSpec::Registered(id)) => {
                            let uscc = r
                                .accounts
                                .get(id)
                                .map(|a| a.0.clone())
                                .with_context(|| format!("{label}: unknown upstream {id}"))?;
                            Some(Upstream::Registered { subject: uscc })
                        }
                        Some(UpstreamSpec::Unregistered { district }) => {
                            Some(Upstream::Unregistered {
                                name: "unregistered supplier".into(),
                                uscc: None,
                                region: district.clone(),
                            })
                        }
                    };
                    for label in s.code_batches(j)? {
                        let batch_id = ledger_id(&label);
                        let coder_uscc = r
                            .accounts
                            .get(by)
                            .map(|a| a.0.clone())
                            .with_context(|| format!("{label}: unknown coder {by}"))?;
                        batch_trace.insert(label, trace_code(&coder_uscc, &batch_id));
                        let rec = BatchCode {
                            batch_id,
                            product_id: "P".into(),
                            quantity: 1,
                            unit: "batch".into(),
                            production_date: date.clone(),
                            expiry_date: "2099-12-31".into(),
                            origin_region: coder_district.clone(),
                            upstream: upstream.clone(),
                            certificates: vec![],
                            rapid_tests: vec![],
                        };
                        txs.push(r.tx(by, "batch.code", at, &rec)?);
                    }
                }
                EventBody::Ship {
                    id,
                    from,
                    to,
                    batches,
                } => {
                    let to_uscc = r
                        .accounts
                        .get(to)
                        .map(|a| a.0.clone())
                        .with_context(|| format!("{label}: unknown receiver {to}"))?;
                    let lines = batches
                        .iter()
                        .map(|b| {
                            let t = batch_trace
                                .get(b)
                                .cloned()
                                .with_context(|| format!("{label}: batch {b} was never coded"))?;
                            Ok(ShipmentLine {
                                trace_code: t,
                                quantity: 1,
                            })
                        })
                        .collect::<Result<Vec<_>>>()?;
                    shipments.insert(id.clone(), (from.clone(), to.clone()));
                    txs.push(r.tx(
                        from,
                        "shipment.create",
                        at,
                        &ShipmentCreate {
                            shipment_id: ledger_id(id),
                            to: to_uscc,
                            lines,
                        },
                    )?);
                }
                EventBody::Receive { shipment } | EventBody::Reject { shipment, .. } => {
                    let (from, to) = shipments
                        .get(shipment)
                        .cloned()
                        .with_context(|| format!("{label}: unknown shipment {shipment}"))?;
                    let shipper = r
                        .accounts
                        .get(&from)
                        .map(|a| a.0.clone())
                        .unwrap_or_default();
                    if let EventBody::Reject { reason, .. } = &e.body {
                        let rec = ShipmentReject {
                            shipper,
                            shipment_id: ledger_id(shipment),
                            reason: RejectionReason::Other,
                            note: (!reason.is_empty()).then(|| reason.clone()),
                        };
                        txs.push(r.tx(&to, "shipment.reject", at, &rec)?);
                    } else {
                        txs.push(r.tx(
                            &to,
                            "shipment.receive",
                            at,
                            &ShipmentReceive {
                                shipper,
                                shipment_id: ledger_id(shipment),
                            },
                        )?);
                    }
                }
                EventBody::Finding {
                    id,
                    kind,
                    subject,
                    batches,
                } => {
                    let uscc = r
                        .accounts
                        .get(subject)
                        .map(|a| a.0.clone())
                        .with_context(|| format!("{label}: unknown subject {subject}"))?;
                    let kind = match kind {
                        FindingKindSpec::Uncoded => FindingKind::Uncoded,
                        FindingKindSpec::OffChain => FindingKind::OffChain,
                    };
                    let rec = FindingRecord {
                        finding_id: ledger_id(id),
                        subject: uscc,
                        kind,
                        batches: *batches,
                        note: None,
                        document_hash: None,
                    };
                    txs.push(r.tx(INSPECTOR_ID, "finding.record", at, &rec)?);
                }
                EventBody::Rectify { finding } => {
                    txs.push(r.tx(
                        INSPECTOR_ID,
                        "finding.rectify",
                        at,
                        &FindingRectify {
                            finding_id: ledger_id(finding),
                            note: None,
                        },
                    )?);
                }
                EventBody::Adjust {
                    district,
                    term,
                    points,
                    reason,
                } => {
                    let term: AdjustmentTerm = serde_json::from_value(serde_json::to_value(term)?)?;
                    let rec = AdjustmentRecord {
                        district: district.clone(),
                        term,
                        points: points.clone(),
                        reason: reason.clone(),
                    };
                    txs.push(r.tx(ROOT_ID, "adjustment.record", at, &rec)?);
                }
            }
            j += 1;
        }
        r.commit(at, txs, &format!("events {i}..{j}"))?;
        i = j;
    }

    let period = match (from, to) {
        (None, None) => s.period,
        (f, t) => ledger::score::Period::parse(
            f.unwrap_or(&s.period.from().to_string()),
            t.unwrap_or(&s.period.to().to_string()),
        )?,
    };
    let regions = r.spec.district_codes();
    let report = ledger::score::scores(&r.ledger.store, &r.spec.model, &regions, period, None)?;
    let head = r.ledger.head()?;
    let mut v = serde_json::to_value(report)?;
    v["checkpoint"] = serde_json::json!({"height": head.height, "tree_size": head.tree_size, "tree_root": head.tree_root});
    Ok(v)
}

fn fmt_num(v: &Value) -> String {
    match v {
        Value::Null => "-".into(),
        Value::Number(n) => n.to_string(),
        other => other.to_string(),
    }
}

pub fn table(report: &Value) -> String {
    let mut out = String::from("district  N       rank  f  | a     b     beta_c  g      h      coding  | a     b     c     scanning\n");
    if let Some(ds) = report["districts"].as_object() {
        for (code, d) in ds {
            let c = &d["coding"];
            let s = &d["scanning"];
            out.push_str(&format!(
                "{code:<9} {:<7} {:<5} {:<2} | {:<5} {:<5} {:<7} {:<6} {:<6} {:<7} | {:<5} {:<5} {:<5} {}\n",
                fmt_num(&d["N"]),
                fmt_num(&d["rank"]),
                fmt_num(&d["f"]),
                fmt_num(&c["a"]),
                fmt_num(&c["b"]),
                fmt_num(&c["beta_c"]),
                fmt_num(&c["g"]),
                fmt_num(&c["h"]),
                fmt_num(&c["rate"]),
                fmt_num(&s["a"]),
                fmt_num(&s["b"]),
                fmt_num(&s["c"]),
                fmt_num(&s["rate"]),
            ));
        }
    }
    out
}

pub fn replay_command(
    file: &Path,
    from: Option<&str>,
    to: Option<&str>,
    format: &str,
) -> Result<()> {
    let text =
        std::fs::read_to_string(file).with_context(|| format!("reading {}", file.display()))?;
    let s = scenario::parse(&text).with_context(|| format!("parsing {}", file.display()))?;
    let dir = tempfile::tempdir()?;
    let report = replay(&s, from, to, dir.path())?;
    match format {
        "json" => println!("{}", serde_json::to_string_pretty(&report)?),
        "table" => print!("{}", table(&report)),
        other => bail!("--format is json or table, not {other}"),
    }
    Ok(())
}

#[cfg(test)]
mod tests;
