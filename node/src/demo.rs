//! `zsl devnet --demo`: a realistic sample, submitted as real signed
//! transactions over HTTP: authorities, a few hundred subjects across several
//! districts, products, thousands of coded batches moving through shipments
//! and receipts, certificates and rapid tests, a rejection, a recall, an
//! inspection finding with its rectification, a notarized document.

use std::path::Path;

use std::collections::BTreeMap;

use anyhow::{anyhow, bail, Result};
use ed25519_dalek::SigningKey;
use serde::Serialize;
use serde_json::{json, Value};

use ledger::machine::trace_code;
use ledger::record::{self, *};
use ledger::spec::ChainSpec;

const CHUNK_TXS: usize = 500;

struct Actor {
    id: String,
    key: SigningKey,
    district: String,
}

fn seed_key(label: &str) -> SigningKey {
    SigningKey::from_bytes(&ledger::hash::sha256(
        format!("zsl-demo-key/{label}").as_bytes(),
    ))
}

struct Batch<'a> {
    chain_id: &'a str,
    txs: Vec<Value>,
    sent: usize,
    schemas: RecordSchemas,
}

/// Each record type's schema as the node serves it (`GET /v1/schemas/{type}`):
/// every record the demo creates is checked against it before it is signed.
pub(crate) struct RecordSchemas(BTreeMap<String, jsonschema::Validator>);

impl RecordSchemas {
    fn fetch(client: &reqwest::blocking::Client, api: &str) -> Result<RecordSchemas> {
        let mut out = BTreeMap::new();
        for kind in record::RECORD_TYPES {
            let url = format!("{}/v1/schemas/{kind}", api.trim_end_matches('/'));
            let schema: Value = client.get(&url).send()?.error_for_status()?.json()?;
            out.insert(kind.to_string(), Self::compile(&schema)?);
        }
        Ok(RecordSchemas(out))
    }

    pub(crate) fn compile(schema: &Value) -> Result<jsonschema::Validator> {
        jsonschema::options()
            .should_validate_formats(true)
            .build(schema)
            .map_err(|e| anyhow!("a served schema does not compile: {e}"))
    }

    fn check(&self, kind: &str, body: &Value) -> Result<()> {
        let validator = self
            .0
            .get(kind)
            .ok_or_else(|| anyhow!("no schema for record type {kind}"))?;
        if let Err(e) = validator.validate(body) {
            bail!(
                "the demo's {kind} record does not match its schema: {e} at {}",
                e.instance_path()
            );
        }
        Ok(())
    }
}

impl<'a> Batch<'a> {
    fn add<T: Serialize>(&mut self, who: &Actor, kind: &str, rec: &T) -> Result<()> {
        let body = record::build_body(
            kind,
            self.chain_id,
            &who.id,
            &crate::client::now_rfc3339(),
            &crate::client::fresh_nonce(),
            rec,
        );
        self.schemas.check(kind, &Value::Object(body.clone()))?;
        let tx = crate::client::sign_map(body, &who.key.clone().into())?;
        self.txs.push(tx.to_json());
        Ok(())
    }

    /// Submits everything added so far and waits until committed; any refusal is a bug in the demo.
    fn flush(&mut self, client: &reqwest::blocking::Client, api: &str) -> Result<()> {
        for chunk in self.txs.chunks(CHUNK_TXS) {
            let results = crate::client::submit_batch(client, api, chunk)?;
            if let Some(bad) = results.iter().find(|r| r["status"] != "committed") {
                bail!("demo transaction refused: {bad}");
            }
            self.sent += chunk.len();
        }
        self.txs.clear();
        Ok(())
    }
}

pub fn populate(
    api: &str,
    spec: &ChainSpec,
    root: &genesis::KeyFile,
    dir: &Path,
) -> Result<String> {
    let client = crate::client::http()?;
    let mut b = Batch {
        chain_id: &spec.chain_id,
        txs: Vec::new(),
        sent: 0,
        schemas: RecordSchemas::fetch(&client, api)?,
    };
    let root = Actor {
        id: root.account.clone(),
        key: root.signing_key()?,
        district: spec.province.code.clone(),
    };

    // Districts from three cities: Hangzhou, Ningbo, Wenzhou.
    let districts: Vec<String> = ["3301", "3302", "3303"]
        .iter()
        .flat_map(|city| {
            spec.districts
                .iter()
                .filter(move |d| d.code.starts_with(city))
                .take(2)
        })
        .map(|d| d.code.clone())
        .collect();
    if districts.is_empty() {
        bail!("the region table has none of the demo cities");
    }

    let authority = |id: &str, role: AuthorityRole, name: &str| -> (Actor, AccountRegister) {
        let key = seed_key(id);
        let reg = AccountRegister {
            id: id.into(),
            role,
            jurisdiction: spec.province.code.clone(),
            name: name.into(),
            public_key: hex::encode(key.verifying_key().to_bytes()),
        };
        (
            Actor {
                id: id.into(),
                key,
                district: spec.province.code.clone(),
            },
            reg,
        )
    };
    let (inspector, r1) = authority(
        "zj-inspector-01",
        AuthorityRole::Inspector,
        "省局检查员 Inspector 01",
    );
    let (agri, r2) = authority(
        "zj-agri",
        AuthorityRole::AgricultureAuthority,
        "浙江省农业农村厅 Agriculture",
    );
    let (lab, r3) = authority(
        "zj-lab-01",
        AuthorityRole::TestingLab,
        "快检实验室 Testing lab 01",
    );
    for r in [&r1, &r2, &r3] {
        b.add(&root, "account.register", r)?;
    }

    // Subjects: per district a mix of kinds; markets before their stalls.
    let kinds: [(SubjectKind, usize, &str); 9] = [
        (SubjectKind::Producer, 6, "生产企业"),
        (SubjectKind::FirstImporter, 2, "入浙首站"),
        (SubjectKind::Wholesaler, 7, "批发商"),
        (SubjectKind::Distributor, 3, "配送企业"),
        (SubjectKind::FarmWholesaleMarket, 1, "农批市场"),
        (SubjectKind::Supermarket, 7, "超市"),
        (SubjectKind::SchoolCanteen, 3, "学校食堂"),
        (SubjectKind::Restaurant, 7, "餐馆"),
        (SubjectKind::MarketOperator, 8, "市场经营户"),
    ];
    let mut subjects: Vec<(Actor, SubjectKind)> = Vec::new();
    let mut n = 0u32;
    for d in &districts {
        let mut market: Option<String> = None;
        for (kind, count, label) in kinds {
            for i in 0..count {
                n += 1;
                let uscc = ledger::validate::synthetic_uscc(d, n);
                let key = seed_key(&uscc);
                let reg = SubjectRegister {
                    uscc: uscc.clone(),
                    name: format!("{label}{}号 ({d})", i + 1),
                    kind,
                    district: d.clone(),
                    key_subject: matches!(
                        kind,
                        SubjectKind::Producer
                            | SubjectKind::Wholesaler
                            | SubjectKind::SchoolCanteen
                    ),
                    public_key: hex::encode(key.verifying_key().to_bytes()),
                    market: if kind == SubjectKind::MarketOperator {
                        market.clone()
                    } else {
                        None
                    },
                };
                b.add(&root, "subject.register", &reg)?;
                if kind == SubjectKind::FarmWholesaleMarket {
                    market = Some(uscc.clone());
                }
                subjects.push((
                    Actor {
                        id: uscc,
                        key,
                        district: d.clone(),
                    },
                    kind,
                ));
            }
        }
        // The market must be committed before its stalls reference it.
        b.flush(&client, api)?;
    }
    b.flush(&client, api)?;

    let of = |k: SubjectKind| {
        subjects
            .iter()
            .filter(move |(_, kind)| *kind == k)
            .map(|(a, _)| a)
    };
    let producers: Vec<&Actor> = of(SubjectKind::Producer)
        .chain(of(SubjectKind::FirstImporter))
        .collect();
    let wholesalers: Vec<&Actor> = of(SubjectKind::Wholesaler)
        .chain(of(SubjectKind::Distributor))
        .collect();
    let retail: Vec<&Actor> = of(SubjectKind::Supermarket)
        .chain(of(SubjectKind::Restaurant))
        .chain(of(SubjectKind::SchoolCanteen))
        .chain(of(SubjectKind::MarketOperator))
        .collect();

    let varieties = [
        "meat",
        "aquatic",
        "fruit_veg",
        "soy_products",
        "eggs",
        "other",
    ];
    let product_names = ["冷鲜猪肉", "带鱼", "青菜", "豆腐", "鸡蛋", "酱油"];
    for (i, p) in producers.iter().enumerate() {
        for j in 0..2 {
            let v = (i + j) % varieties.len();
            b.add(
                p,
                "product.register",
                &ProductRegister {
                    product_id: format!("P{j}"),
                    name: product_names[v].into(),
                    gtin: None,
                    variety: varieties[v].into(),
                    shelf_life_days: if varieties[v] == "other" { 365 } else { 7 },
                },
            )?;
        }
    }
    b.flush(&client, api)?;

    let today = ledger::score::local_date(&spec.model, jiff::Timestamp::now().as_millisecond())?;
    let production = today.to_string();
    let expiry = today.checked_add(jiff::ToSpan::days(7))?.to_string();
    // Certificates first, so codings can reference them.
    let mut coded: Vec<(String, &Actor)> = Vec::new();
    let batches_per_producer = 2_400 / producers.len().max(1);
    for (i, p) in producers.iter().enumerate() {
        for k in 0..batches_per_producer {
            let batch_id = format!("B{:05}", k);
            let upstream = match k % 10 {
                0 => Some(Upstream::Unregistered {
                    name: "外省供应商 Out-of-province supplier".into(),
                    uscc: None,
                    region: "340100".into(),
                }),
                1 if i + 1 < producers.len() => Some(Upstream::Registered {
                    subject: producers[i + 1].id.clone(),
                }),
                _ => None,
            };
            b.add(
                p,
                "batch.code",
                &BatchCode {
                    batch_id: batch_id.clone(),
                    product_id: format!("P{}", k % 2),
                    quantity: 100,
                    unit: "kg".into(),
                    production_date: production.clone(),
                    expiry_date: expiry.clone(),
                    origin_region: p.district.clone(),
                    upstream,
                    certificates: vec![],
                    rapid_tests: vec![],
                },
            )?;
            coded.push((trace_code(&p.id, &batch_id), *p));
        }
    }
    b.flush(&client, api)?;

    // Certificates and rapid tests on some batches; one fails (blocked).
    for (k, (trace, p)) in coded.iter().enumerate().filter(|(k, _)| k % 25 == 0) {
        b.add(
            &agri,
            "certificate.issue",
            &CertificateIssue {
                certificate_id: format!("HGZ-{k:05}"),
                subject: p.id.clone(),
                product_name: "食用农产品".into(),
                trace_code: Some(trace.clone()),
                quantity: Some(100),
                unit: Some("kg".into()),
            },
        )?;
        b.add(
            &lab,
            "rapid_test.record",
            &RapidTestRecord {
                test_id: format!("KJ-{k:05}"),
                trace_code: trace.clone(),
                item: "农药残留 pesticide residue".into(),
                result: if k == 50 {
                    TestResult::Fail
                } else {
                    TestResult::Pass
                },
                note: None,
            },
        )?;
    }
    b.flush(&client, api)?;

    // First leg: producers ship to wholesalers; most are received, one rejected, some left pending.
    let mut first_leg: Vec<(String, &Actor, &Actor, String)> = Vec::new();
    for (k, (trace, p)) in coded.iter().enumerate() {
        if k == 50 {
            continue; // the blocked batch stays home
        }
        if k % 3 == 2 {
            continue; // still in the producer's stock
        }
        let w = wholesalers[k % wholesalers.len()];
        let sid = format!("SH1-{k:05}");
        b.add(
            p,
            "shipment.create",
            &ShipmentCreate {
                shipment_id: sid.clone(),
                to: w.id.clone(),
                lines: vec![ShipmentLine {
                    trace_code: trace.clone(),
                    quantity: 60,
                }],
            },
        )?;
        first_leg.push((trace.clone(), *p, w, sid));
    }
    b.flush(&client, api)?;
    let mut received: Vec<(String, &Actor)> = Vec::new();
    for (k, (trace, p, w, sid)) in first_leg.iter().enumerate() {
        if k == 7 {
            b.add(
                w,
                "shipment.reject",
                &ShipmentReject {
                    shipper: p.id.clone(),
                    shipment_id: sid.clone(),
                    reason: RejectionReason::NoCertificate,
                    note: Some("缺少合格证 no certificate".into()),
                },
            )?;
        } else if k % 20 != 19 {
            b.add(
                w,
                "shipment.receive",
                &ShipmentReceive {
                    shipper: p.id.clone(),
                    shipment_id: sid.clone(),
                },
            )?;
            received.push((trace.clone(), *w));
        }
    }
    b.flush(&client, api)?;

    // Second leg: wholesalers ship to retail, all received.
    let mut second: Vec<(&Actor, &Actor, String)> = Vec::new();
    for (k, (trace, w)) in received.iter().enumerate().filter(|(k, _)| k % 2 == 0) {
        let r = retail[k % retail.len()];
        let sid = format!("SH2-{k:05}");
        b.add(
            w,
            "shipment.create",
            &ShipmentCreate {
                shipment_id: sid.clone(),
                to: r.id.clone(),
                lines: vec![ShipmentLine {
                    trace_code: trace.clone(),
                    quantity: 20,
                }],
            },
        )?;
        second.push((*w, r, sid));
    }
    b.flush(&client, api)?;
    for (w, r, sid) in &second {
        b.add(
            r,
            "shipment.receive",
            &ShipmentReceive {
                shipper: w.id.clone(),
                shipment_id: sid.clone(),
            },
        )?;
    }
    b.flush(&client, api)?;

    // A recall of a batch that went two steps down the chain.
    if let Some((trace, _)) = received.first() {
        let coder = coded.iter().find(|(t, _)| t == trace).map(|(_, p)| *p);
        if let Some(p) = coder {
            b.add(
                p,
                "recall.issue",
                &RecallIssue {
                    trace_code: trace.clone(),
                    reason: "菌落总数超标 total bacterial count over limit".into(),
                },
            )?;
        }
    }
    // Inspection findings: one uncoded finding rectified, one open, one off-chain.
    let w0 = wholesalers[0];
    let w1 = wholesalers[1 % wholesalers.len()];
    for (id, subject, kind, batches) in [
        ("F-0001", w0, FindingKind::Uncoded, 2),
        ("F-0002", w1, FindingKind::Uncoded, 1),
        ("F-0003", w1, FindingKind::OffChain, 1),
    ] {
        b.add(
            &inspector,
            "finding.record",
            &FindingRecord {
                finding_id: id.into(),
                subject: subject.id.clone(),
                kind,
                batches,
                note: Some("线下巡查 on-site inspection".into()),
                document_hash: None,
            },
        )?;
    }
    b.flush(&client, api)?;
    b.add(
        &inspector,
        "finding.rectify",
        &FindingRectify {
            finding_id: "F-0001".into(),
            note: Some("已补码 coded after inspection".into()),
        },
    )?;
    b.add(
        &inspector,
        "document.notarize",
        &DocumentNotarize {
            document_hash: hex::encode(ledger::hash::sha256(b"inspection photo F-0002")),
            title: "检查现场照片 inspection photo F-0002".into(),
            media_type: Some("image/jpeg".into()),
            note: None,
        },
    )?;
    b.flush(&client, api)?;

    // Keys for the walkthrough: one producer, one wholesaler, the inspector.
    let keys = json!({
        "producer": genesis::KeyFile::from_key(&producers[0].id, &producers[0].key),
        "wholesaler": genesis::KeyFile::from_key(&wholesalers[0].id, &wholesalers[0].key),
        "inspector": genesis::KeyFile::from_key(&inspector.id, &inspector.key),
        "sample_trace_code": coded.first().map(|(t, _)| t.clone()),
        "recalled_trace_code": received.first().map(|(t, _)| t.clone()),
    });
    genesis::write_json(&dir.join("demo-keys.json"), &keys)?;
    Ok(format!(
        "{} transactions: {} subjects in {} districts, {} batches, {} + {} shipments (see {})",
        b.sent,
        subjects.len(),
        districts.len(),
        coded.len(),
        first_leg.len(),
        second.len(),
        dir.join("demo-keys.json").display()
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn batch_code_body() -> Value {
        let rec = BatchCode {
            batch_id: "B-1".into(),
            product_id: "pork".into(),
            quantity: 10,
            unit: "kg".into(),
            production_date: "2024-03-01".into(),
            expiry_date: "2024-03-06".into(),
            origin_region: "330102".into(),
            upstream: Some(Upstream::Unregistered {
                name: "养殖场".into(),
                uscc: None,
                region: "341100".into(),
            }),
            certificates: vec![],
            rapid_tests: vec![],
        };
        let body = record::build_body(
            "batch.code",
            "zsl-demo",
            "91330102MA0000002F",
            "2024-03-01T09:00:00+08:00",
            "n1",
            &rec,
        );
        Value::Object(body)
    }

    /// The served schemas tell a body the parser takes from one it refuses.
    #[test]
    fn schemas_accept_what_the_parser_accepts_and_refuse_the_rest() {
        let schema = ledger::record::schema::body_schema("batch.code").expect("schema");
        let v = RecordSchemas::compile(&schema).expect("compiles");
        let good = batch_code_body();
        assert!(record::parse_body(good.as_object().expect("object")).is_ok());
        assert!(v.is_valid(&good), "{:?}", v.validate(&good).err());
        let broken = |f: &dyn Fn(&mut Value)| {
            let mut b = good.clone();
            f(&mut b);
            b
        };
        for bad in [
            broken(&|b| b["colour"] = "red".into()),
            broken(&|b| b["quantity"] = "ten".into()),
            broken(&|b| b["expiry_date"] = "6 March".into()),
            broken(&|b| b["created_at"] = "yesterday".into()),
            broken(&|b| b["type"] = "shipment.create".into()),
            broken(&|b| {
                b.as_object_mut().expect("object").remove("unit");
            }),
        ] {
            assert!(!v.is_valid(&bad), "{bad}");
        }
        let reject = ledger::record::schema::body_schema("shipment.reject").expect("schema");
        let v = RecordSchemas::compile(&reject).expect("compiles");
        let body = |reason: &str| {
            json!({"type": "shipment.reject", "chain_id": "c", "account": "a",
                "created_at": "2024-03-01T09:00:00+08:00", "nonce": "1",
                "shipper": "S", "shipment_id": "H1", "reason": reason})
        };
        assert!(v.is_valid(&body("not_ordered")));
        assert!(!v.is_valid(&body("too_late")));
    }
}
