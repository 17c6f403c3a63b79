//! Batches and shipments: first-station coding (首站赋码), shipping (出库), receipt
//! (入库确认) and rejection (拒收).

use super::*;

impl<K: KvWrite> Apply<'_, '_, K> {
    pub(super) fn batch_code(&mut self, r: record::BatchCode) -> R {
        let coder = self.subject_signer()?;
        check_client_id("batch_id", &r.batch_id)?;
        check_text("unit", &r.unit, 16)?;
        ensure!(
            (1..=QUANTITY_MAX).contains(&r.quantity),
            C::InvalidField,
            "`quantity` must be 1-{QUANTITY_MAX}"
        );
        let production = parse_date("production_date", &r.production_date)?;
        let expiry = parse_date("expiry_date", &r.expiry_date)?;
        ensure!(
            production <= expiry,
            C::InvalidDates,
            "production_date is after expiry_date"
        );
        let today = self.today()?;
        ensure!(
            production <= today,
            C::InvalidDates,
            "production_date {production} is after today {today}"
        );
        ensure!(
            self.spec().origin_known(&r.origin_region),
            C::UnknownRegion,
            "`origin_region` must be a district, city or the province of the region table, or a GB/T 2260 code of another province"
        );
        ensure!(
            r.certificates.len() <= BATCH_REFERENCES_MAX
                && r.rapid_tests.len() <= BATCH_REFERENCES_MAX,
            C::LimitExceeded,
            "at most {BATCH_REFERENCES_MAX} certificates and rapid tests"
        );
        let Some(product) = self.get::<Product>(&product_key(&coder.uscc, &r.product_id))? else {
            return Err(ApplyError::Refused(refuse(
                C::UnknownProduct,
                format!("`{}` has no product `{}`", coder.uscc, r.product_id),
            )));
        };
        let id_key = batch_id_key(&coder.uscc, &r.batch_id);
        ensure!(
            self.get::<String>(&id_key)?.is_none(),
            C::BatchExists,
            "batch `{}` is already coded by `{}`",
            r.batch_id,
            coder.uscc
        );
        let trace = trace_code(&coder.uscc, &r.batch_id);
        ensure!(
            self.get::<Batch>(&batch_key(&trace))?.is_none(),
            C::TraceCodeCollision,
            "trace code `{trace}` is taken"
        );

        let (upstream, upstream_fact) = self.upstream_of(&coder, r.upstream)?;
        let (green, blocked) = self.reference_verdict(&r.certificates, &r.rapid_tests)?;
        let catalogue: VarietyCatalogue = self.get(VARIETIES_KEY)?.unwrap_or(VarietyCatalogue {
            version: 0,
            varieties: vec![],
        });
        let key_variety = product.variety != VARIETY_OTHER && catalogue.contains(&product.variety);
        let batch = Batch {
            trace_code: trace.clone(),
            coder: coder.uscc.clone(),
            coder_district: coder.district.clone(),
            batch_id: r.batch_id,
            product_id: product.product_id,
            product_name: product.name,
            variety: product.variety,
            key_variety,
            quantity: r.quantity,
            unit: r.unit,
            production_date: r.production_date,
            expiry_date: r.expiry_date,
            origin_region: r.origin_region,
            upstream,
            certificates: r.certificates,
            rapid_tests: r.rapid_tests,
            coded: self.origin.clone(),
            green: green && !blocked,
            blocked,
            recall: None,
            shipments: Vec::new(),
        };
        self.put(&id_key, &trace)?;
        self.put(&batch_key(&trace), &batch)?;
        self.set_holding(&trace, &coder.uscc, batch.quantity)?;
        self.index(batches_by_coder_key(&coder.uscc, &trace), b"");
        score::on_coded(
            self.kv,
            &self.ctx.spec.model,
            &score::CodedFact {
                tx_id: sha_id(&self.origin.tx),
                at_ms: self.ctx.time_ms,
                coder: coder.uscc.clone(),
                coder_district: coder.district.clone(),
                batches: 1,
                key_variety_batches: u64::from(key_variety),
                upstream: upstream_fact,
            },
        )?;
        self.activity(&coder)?;
        Ok(())
    }

    /// Who a coding names upstream (where the goods came from), and the
    /// fact the score engine counts for it.
    fn upstream_of(
        &self,
        coder: &Subject,
        upstream: Option<Upstream>,
    ) -> ApplyResult<(Option<UpstreamInfo>, score::UpstreamFact)> {
        Ok(match upstream {
            None => (None, score::UpstreamFact::None),
            Some(Upstream::Registered { subject }) => {
                ensure!(
                    subject != coder.uscc,
                    C::InvalidField,
                    "a subject is not its own upstream"
                );
                let up = self.subject(&subject)?;
                (
                    Some(UpstreamInfo::Registered {
                        uscc: up.uscc.clone(),
                        district: up.district.clone(),
                    }),
                    score::UpstreamFact::Registered {
                        subject: up.uscc,
                        district: up.district,
                    },
                )
            }
            Some(Upstream::Unregistered { name, uscc, region }) => {
                check_text("upstream.name", &name, NAME_CHARS_MAX)?;
                if let Some(u) = &uscc {
                    check_uscc(u)?;
                }
                ensure!(
                    self.spec().origin_known(&region),
                    C::UnknownRegion,
                    "`upstream.region` must be a district, city or the province of the region table, or a GB/T 2260 code of another province"
                );
                let in_table = self.spec().district(&region).is_some();
                (
                    Some(UpstreamInfo::Unregistered {
                        name,
                        uscc,
                        region: region.clone(),
                    }),
                    score::UpstreamFact::Unregistered {
                        region,
                        in_region_table: in_table,
                    },
                )
            }
        })
    }

    /// Whether the certificates and rapid tests a coding cites make the
    /// batch green (any certificate or passed test) or blocked (a failed
    /// test); every one cited must exist.
    fn reference_verdict(
        &self,
        certificates: &[String],
        rapid_tests: &[String],
    ) -> ApplyResult<(bool, bool)> {
        let mut green = false;
        let mut blocked = false;
        for c in certificates {
            ensure!(
                self.get::<Certificate>(&certificate_key(c))?.is_some(),
                C::UnknownCertificate,
                "no certificate `{c}`"
            );
            green = true;
        }
        for t in rapid_tests {
            let Some(test) = self.get::<RapidTest>(&test_key(t))? else {
                return Err(ApplyError::Refused(refuse(
                    C::UnknownTest,
                    format!("no rapid test `{t}`"),
                )));
            };
            match test.result {
                TestResult::Pass => green = true,
                TestResult::Fail => blocked = true,
            }
        }
        Ok((green, blocked))
    }

    // Long because each line is checked (batch, holding, expiry, recall,
    // block) and moved in one loop; a refusal midway changes nothing, as the
    // transaction's overlay is dropped.
    pub(super) fn shipment_create(&mut self, r: record::ShipmentCreate) -> R {
        let shipper = self.subject_signer()?;
        check_client_id("shipment_id", &r.shipment_id)?;
        ensure!(
            !r.lines.is_empty(),
            C::InvalidField,
            "a shipment has at least one line"
        );
        ensure!(
            r.lines.len() <= SHIPMENT_LINES_MAX,
            C::LimitExceeded,
            "a shipment has at most {SHIPMENT_LINES_MAX} lines"
        );
        ensure!(
            r.to != shipper.uscc,
            C::SelfShipment,
            "a subject does not ship to itself"
        );
        let receiver = self.subject(&r.to)?;
        let skey = shipment_key(&shipper.uscc, &r.shipment_id);
        ensure!(
            self.get::<Shipment>(&skey)?.is_none(),
            C::ShipmentExists,
            "shipment `{}` exists",
            r.shipment_id
        );
        let mut seen = BTreeSet::new();
        let today = self.today()?;
        let shipment_ref = format!("{}/{}", shipper.uscc, r.shipment_id);
        let mut key_variety_lines = 0u64;
        for line in &r.lines {
            ensure!(
                seen.insert(line.trace_code.clone()),
                C::InvalidField,
                "batch `{}` appears twice",
                line.trace_code
            );
            ensure!(
                (1..=QUANTITY_MAX).contains(&line.quantity),
                C::InvalidField,
                "line quantity must be 1-{QUANTITY_MAX}"
            );
            let batch = self.batch(&line.trace_code)?;
            ensure!(
                batch.recall.is_none(),
                C::BatchRecalled,
                "batch `{}` is recalled",
                batch.trace_code
            );
            ensure!(
                !batch.blocked,
                C::BatchBlocked,
                "batch `{}` failed a rapid test",
                batch.trace_code
            );
            let expiry = match parse_date("expiry_date", &batch.expiry_date) {
                Ok(d) => d,
                Err(e) => return Err(LedgerError::Corrupt(e.message).into()),
            };
            ensure!(
                today <= expiry,
                C::BatchExpired,
                "batch `{}` expired on {expiry} (过期阻断)",
                batch.trace_code
            );
            let held = self.holding(&line.trace_code, &shipper.uscc)?;
            ensure!(
                held >= line.quantity,
                C::InsufficientHolding,
                "`{}` holds {held} {} of `{}`, not {}",
                shipper.uscc,
                batch.unit,
                batch.trace_code,
                line.quantity
            );
            self.set_holding(&line.trace_code, &shipper.uscc, held - line.quantity)?;
            if batch.key_variety {
                key_variety_lines += 1;
            }
            self.index(
                batch_shipment_key(&batch.trace_code, self.ctx.height, self.ctx.index),
                shipment_ref.as_bytes(),
            );
        }
        let deadline = score::deadline_ms(
            &self.ctx.spec.model,
            self.ctx.time_ms,
            self.ctx.spec.model.receipt_window_days,
        )?;
        let shipment = Shipment {
            shipper: shipper.uscc.clone(),
            shipment_id: r.shipment_id.clone(),
            to: receiver.uscc.clone(),
            lines: r.lines,
            shipper_district: shipper.district.clone(),
            receiver_district: receiver.district.clone(),
            shipped: self.origin.clone(),
            receipt_deadline_ms: deadline,
            status: ShipmentStatus::Pending,
        };
        score::on_shipped(
            self.kv,
            &self.ctx.spec.model,
            &score::ShippedFact {
                tx_id: sha_id(&self.origin.tx),
                at_ms: self.ctx.time_ms,
                shipper: shipper.uscc.clone(),
                shipper_district: shipper.district.clone(),
                receiver: receiver.uscc.clone(),
                receiver_district: receiver.district.clone(),
                lines: shipment.lines.len() as u64,
                key_variety_lines,
            },
        )?;
        self.put(&skey, &shipment)?;
        self.index(shipments_out_key(&shipper.uscc, &r.shipment_id), b"");
        self.index(
            shipments_in_key(&receiver.uscc, &shipper.uscc, &r.shipment_id),
            b"",
        );
        self.activity(&shipper)?;
        Ok(())
    }

    pub(super) fn shipment_answer(
        &mut self,
        shipper: String,
        shipment_id: String,
        rejection: Option<(record::RejectionReason, Option<String>)>,
    ) -> R {
        let me = self.subject_signer()?;
        let skey = shipment_key(&shipper, &shipment_id);
        let Some(mut shipment) = self.get::<Shipment>(&skey)? else {
            return Err(ApplyError::Refused(refuse(
                C::UnknownShipment,
                format!("no shipment `{shipment_id}` from `{shipper}`"),
            )));
        };
        ensure!(
            shipment.to == me.uscc,
            C::NotAddressee,
            "shipment `{shipment_id}` is addressed to `{}`",
            shipment.to
        );
        ensure!(
            shipment.status == ShipmentStatus::Pending,
            C::AlreadyAnswered,
            "shipment `{shipment_id}` is already answered"
        );
        let on_time = self.ctx.time_ms < shipment.receipt_deadline_ms;
        let rejected = rejection.is_some();
        // Quantity moves to the receiver only on receipt; a rejection returns it.
        let holder = if rejected {
            shipment.shipper.clone()
        } else {
            me.uscc.clone()
        };
        let mut key_variety_lines = 0u64;
        for line in &shipment.lines {
            let held = self.holding(&line.trace_code, &holder)?;
            let total = held.checked_add(line.quantity).ok_or_else(|| {
                LedgerError::Corrupt(format!("holding overflow on {}", line.trace_code))
            })?;
            self.set_holding(&line.trace_code, &holder, total)?;
            if let Some(b) = self.get::<Batch>(&batch_key(&line.trace_code))? {
                if b.key_variety {
                    key_variety_lines += 1;
                }
            }
        }
        shipment.status = match rejection {
            None => ShipmentStatus::Received {
                origin: self.origin.clone(),
                on_time,
            },
            Some((reason, note)) => ShipmentStatus::Rejected {
                origin: self.origin.clone(),
                on_time,
                reason,
                note,
            },
        };
        score::on_answered(
            self.kv,
            &self.ctx.spec.model,
            &score::AnsweredFact {
                tx_id: sha_id(&self.origin.tx),
                shipment_tx_id: sha_id(&shipment.shipped.tx),
                shipped_at_ms: shipment.shipped.at_ms,
                at_ms: self.ctx.time_ms,
                rejected,
                shipper_district: shipment.shipper_district.clone(),
                receiver: me.uscc.clone(),
                receiver_district: shipment.receiver_district.clone(),
                lines: shipment.lines.len() as u64,
                key_variety_lines,
            },
        )?;
        self.put(&skey, &shipment)?;
        self.activity(&me)?;
        Ok(())
    }
}
