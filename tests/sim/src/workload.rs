//! The clients' signed mix: the root regulator registers producers,
//! wholesalers and supermarkets; producers register a product and code
//! batches (首站赋码); holders ship (出库); addressees receive (入库确认) or
//! reject (拒收, the batch goes back to its shipper); the regulator
//! notarises documents. The model of who holds what moves only on
//! acknowledged commits, so a client mostly sends what the ledger accepts,
//! and concurrent clients still race each other into refusals.

use std::collections::BTreeMap;

use consensus::simulation::SplitMix64;
use ed25519_dalek::SigningKey;
use ledger::record::{
    build_body, BatchCode, DocumentNotarize, ProductRegister, RejectionReason, ShipmentCreate,
    ShipmentLine, ShipmentReceive, ShipmentReject, SubjectKind, SubjectRegister, ValidatorAdd,
    ValidatorRemove,
};
use ledger::testkit::{key, pk, D1, D2, D3};
use ledger::SignedTx;
use serde::Serialize;

/// Subjects of each kind.
pub const SUBJECTS_PER_KIND: u32 = 3;

#[derive(Clone)]
pub struct Subject {
    pub uscc: String,
    pub key: SigningKey,
    pub kind: SubjectKind,
    pub district: &'static str,
}

/// A shipment on its way, as the model knows it.
#[derive(Clone)]
pub struct InTransit {
    pub shipper: usize,
    pub to: usize,
    pub shipment_id: String,
    pub trace: String,
    pub quantity: u64,
}

/// What a transaction does to the model once it commits.
#[derive(Clone)]
pub enum Effect {
    None,
    Coded {
        coder: usize,
        trace: String,
        quantity: u64,
    },
    Shipped(InTransit),
    Answered {
        shipment: InTransit,
        rejected: bool,
    },
}

/// One signed transaction for a client to submit.
pub struct Tx {
    pub wire: Vec<u8>,
    pub id: [u8; 32],
    pub effect: Effect,
}

/// The model: subjects, holdings and shipments in transit, per acknowledged commits.
pub struct Workload {
    chain_id: String,
    pub subjects: Vec<Subject>,
    /// (trace code, subject index) → quantity held.
    holdings: BTreeMap<(String, usize), u64>,
    in_transit: BTreeMap<String, InTransit>,
    /// Trace codes coded so far, for reads.
    pub traces: Vec<String>,
    nonce: u64,
}

impl Workload {
    pub fn new(chain_id: &str) -> Self {
        let kinds = [
            SubjectKind::Producer,
            SubjectKind::Wholesaler,
            SubjectKind::Supermarket,
        ];
        let districts = [D1, D2, D3];
        let mut subjects = Vec::new();
        for (k, kind) in kinds.iter().enumerate() {
            for i in 0..SUBJECTS_PER_KIND {
                let n = 100 + (k as u32) * 10 + i;
                let uscc = ledger::testkit::uscc(n);
                subjects.push(Subject {
                    key: key(&uscc),
                    uscc,
                    kind: *kind,
                    district: districts[i as usize % districts.len()],
                });
            }
        }
        Self {
            chain_id: chain_id.into(),
            subjects,
            holdings: BTreeMap::new(),
            in_transit: BTreeMap::new(),
            traces: Vec::new(),
            nonce: 0,
        }
    }

    fn sign<T: Serialize>(
        &mut self,
        signer: &SigningKey,
        account: &str,
        kind: &str,
        rec: &T,
        now_ms: i64,
        effect: Effect,
    ) -> Tx {
        self.nonce += 1;
        let at = jiff::Timestamp::from_millisecond(now_ms)
            .map(|t| t.to_string())
            .unwrap_or_default();
        let body = build_body(
            kind,
            &self.chain_id,
            account,
            &at,
            &self.nonce.to_string(),
            rec,
        );
        let signed = SignedTx::sign(body, signer).expect("a record of the test kit signs");
        let wire = serde_json::to_vec(&signed.to_json()).expect("a signed record serialises");
        let id = ledger::TxFrame::from_proposed(&wire)
            .expect("a signed record reads as a frame")
            .id;
        Tx { wire, id, effect }
    }

    /// The setup records: every subject registered, every producer's product.
    pub fn setup(&mut self, now_ms: i64) -> (Vec<Tx>, Vec<Tx>) {
        let root = key("root");
        let mut subjects = Vec::new();
        for s in self.subjects.clone() {
            let rec = SubjectRegister {
                uscc: s.uscc.clone(),
                name: format!("subject {}", s.uscc),
                kind: s.kind,
                district: s.district.into(),
                key_subject: false,
                public_key: pk(&s.key),
                market: None,
            };
            subjects.push(self.sign(
                &root,
                "root",
                "subject.register",
                &rec,
                now_ms,
                Effect::None,
            ));
        }
        let mut products = Vec::new();
        for s in self.subjects.clone() {
            if s.kind != SubjectKind::Producer {
                continue;
            }
            let rec = ProductRegister {
                product_id: "p".into(),
                name: "pork".into(),
                gtin: None,
                variety: "meat".into(),
                shelf_life_days: 5,
            };
            products.push(self.sign(
                &s.key,
                &s.uscc,
                "product.register",
                &rec,
                now_ms,
                Effect::None,
            ));
        }
        (subjects, products)
    }

    /// The next transaction a client sends.
    pub fn next_tx(&mut self, rng: &mut SplitMix64, now_ms: i64) -> Tx {
        let roll = rng.range(0, 99);
        if roll < 30 || self.holdings.is_empty() {
            return self.code(rng, now_ms);
        }
        if roll < 60 {
            if let Some(tx) = self.ship(rng, now_ms) {
                return tx;
            }
        }
        if roll < 92 {
            if let Some(tx) = self.answer(rng, now_ms) {
                return tx;
            }
        }
        self.notarize(now_ms)
    }

    fn code(&mut self, rng: &mut SplitMix64, now_ms: i64) -> Tx {
        let producers: Vec<usize> = (0..self.subjects.len())
            .filter(|&i| self.subjects[i].kind == SubjectKind::Producer)
            .collect();
        let coder = producers[rng.range(0, producers.len() as u64 - 1) as usize];
        let s = self.subjects[coder].clone();
        let batch_id = format!("b{}", self.nonce + 1);
        let quantity = rng.range(10, 1_000);
        let rec = BatchCode {
            batch_id: batch_id.clone(),
            product_id: "p".into(),
            quantity,
            unit: "kg".into(),
            production_date: "2024-02-28".into(),
            expiry_date: "2024-03-04".into(),
            origin_region: s.district.into(),
            upstream: None,
            certificates: vec![],
            rapid_tests: vec![],
        };
        let trace = ledger::machine::trace_code(&s.uscc, &batch_id);
        let effect = Effect::Coded {
            coder,
            trace,
            quantity,
        };
        self.sign(&s.key, &s.uscc, "batch.code", &rec, now_ms, effect)
    }

    /// Downstream of a holder: producers ship to wholesalers, wholesalers to
    /// supermarkets, supermarkets to another supermarket.
    fn downstream(&self, from: usize, rng: &mut SplitMix64) -> usize {
        let want = match self.subjects[from].kind {
            SubjectKind::Producer => SubjectKind::Wholesaler,
            _ => SubjectKind::Supermarket,
        };
        let choices: Vec<usize> = (0..self.subjects.len())
            .filter(|&i| i != from && self.subjects[i].kind == want)
            .collect();
        choices[rng.range(0, choices.len() as u64 - 1) as usize]
    }

    fn ship(&mut self, rng: &mut SplitMix64, now_ms: i64) -> Option<Tx> {
        let held: Vec<(&(String, usize), &u64)> =
            self.holdings.iter().filter(|(_, &q)| q > 0).collect();
        if held.is_empty() {
            return None;
        }
        let ((trace, holder), &qty) = held[rng.range(0, held.len() as u64 - 1) as usize];
        let (trace, holder) = (trace.clone(), *holder);
        let quantity = rng.range(1, qty);
        let to = self.downstream(holder, rng);
        let shipment_id = format!("s{}", self.nonce + 1);
        let rec = ShipmentCreate {
            shipment_id: shipment_id.clone(),
            to: self.subjects[to].uscc.clone(),
            lines: vec![ShipmentLine {
                trace_code: trace.clone(),
                quantity,
            }],
        };
        let effect = Effect::Shipped(InTransit {
            shipper: holder,
            to,
            shipment_id,
            trace,
            quantity,
        });
        let s = self.subjects[holder].clone();
        Some(self.sign(&s.key, &s.uscc, "shipment.create", &rec, now_ms, effect))
    }

    fn answer(&mut self, rng: &mut SplitMix64, now_ms: i64) -> Option<Tx> {
        if self.in_transit.is_empty() {
            return None;
        }
        let pick = rng.range(0, self.in_transit.len() as u64 - 1) as usize;
        let shipment = self.in_transit.values().nth(pick)?.clone();
        let rejected = rng.range(0, 99) < 20;
        let by = self.subjects[shipment.to].clone();
        let shipper = self.subjects[shipment.shipper].uscc.clone();
        let effect = Effect::Answered {
            shipment: shipment.clone(),
            rejected,
        };
        Some(if rejected {
            let rec = ShipmentReject {
                shipper,
                shipment_id: shipment.shipment_id.clone(),
                reason: RejectionReason::Quality,
                note: None,
            };
            self.sign(&by.key, &by.uscc, "shipment.reject", &rec, now_ms, effect)
        } else {
            let rec = ShipmentReceive {
                shipper,
                shipment_id: shipment.shipment_id.clone(),
            };
            self.sign(&by.key, &by.uscc, "shipment.receive", &rec, now_ms, effect)
        })
    }

    fn notarize(&mut self, now_ms: i64) -> Tx {
        let n = self.nonce + 1;
        let rec = DocumentNotarize {
            document_hash: hex::encode(ledger::hash::sha256(format!("doc {n}").as_bytes())),
            title: format!("inspection report {n}"),
            media_type: None,
            note: None,
        };
        self.sign(
            &key("root"),
            "root",
            "document.notarize",
            &rec,
            now_ms,
            Effect::None,
        )
    }

    /// `validator.remove` of `node_id`, by the provincial regulator.
    pub fn validator_remove(&mut self, node_id: u64, now_ms: i64) -> Tx {
        let rec = ValidatorRemove { node_id };
        self.sign(
            &key("root"),
            "root",
            "validator.remove",
            &rec,
            now_ms,
            Effect::None,
        )
    }

    /// `validator.add` of genesis validator `node_id` again (its key, its address).
    pub fn validator_add(&mut self, node_id: u64, now_ms: i64) -> Tx {
        let name = format!("validator-{node_id}");
        let rec = ValidatorAdd {
            node_id,
            public_key: pk(&key(&name)),
            name,
            address: format!("mem:{node_id}"),
        };
        self.sign(
            &key("root"),
            "root",
            "validator.add",
            &rec,
            now_ms,
            Effect::None,
        )
    }

    /// Moves the model by a committed transaction's effect.
    pub fn committed(&mut self, effect: &Effect) {
        match effect {
            Effect::None => {}
            Effect::Coded {
                coder,
                trace,
                quantity,
            } => {
                *self.holdings.entry((trace.clone(), *coder)).or_default() += quantity;
                self.traces.push(trace.clone());
            }
            Effect::Shipped(s) => {
                let held = self
                    .holdings
                    .entry((s.trace.clone(), s.shipper))
                    .or_default();
                *held = held.saturating_sub(s.quantity);
                self.in_transit.insert(s.shipment_id.clone(), s.clone());
            }
            Effect::Answered { shipment, rejected } => {
                if self.in_transit.remove(&shipment.shipment_id).is_some() {
                    let back_to = if *rejected {
                        shipment.shipper
                    } else {
                        shipment.to
                    };
                    *self
                        .holdings
                        .entry((shipment.trace.clone(), back_to))
                        .or_default() += shipment.quantity;
                }
            }
        }
    }

    /// A trace code for a read, if any batch was coded.
    pub fn some_trace(&self, rng: &mut SplitMix64) -> Option<String> {
        if self.traces.is_empty() {
            return None;
        }
        Some(self.traces[rng.range(0, self.traces.len() as u64 - 1) as usize].clone())
    }
}
