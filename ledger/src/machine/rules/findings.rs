//! Findings and their rectification, recalls (召回), and score adjustments by
//! regulators.

use super::*;

impl<K: KvWrite> Apply<'_, '_, K> {
    pub(super) fn finding_record(&mut self, r: record::FindingRecord) -> R {
        check_client_id("finding_id", &r.finding_id)?;
        opt_text("note", &r.note, NOTE_CHARS_MAX)?;
        if let Some(h) = &r.document_hash {
            check_hash_hex("document_hash", h)?;
        }
        ensure!(
            (1..=FINDING_BATCHES_MAX).contains(&r.batches),
            C::InvalidField,
            "`batches` must be 1-{FINDING_BATCHES_MAX}"
        );
        let subject = self.subject(&r.subject)?;
        self.authority_over(&[AccountRole::Inspector], &subject.district)?;
        let key = finding_key(&r.finding_id);
        ensure!(
            self.get::<Finding>(&key)?.is_none(),
            C::FindingExists,
            "finding `{}` exists",
            r.finding_id
        );
        let model = &self.ctx.spec.model;
        let deadline =
            score::deadline_ms(model, self.ctx.time_ms, model.rectification_window_days)?;
        let f = Finding {
            finding_id: r.finding_id.clone(),
            inspector: self.signer.id.clone(),
            subject: subject.uscc.clone(),
            district: subject.district.clone(),
            kind: r.kind,
            batches: r.batches,
            note: r.note,
            document_hash: r.document_hash,
            found: self.origin.clone(),
            rectification_deadline_ms: deadline,
            rectified: None,
        };
        score::on_finding(
            self.kv,
            &self.ctx.spec.model,
            &score::FindingFact {
                tx_id: sha_id(&self.origin.tx),
                at_ms: self.ctx.time_ms,
                subject: subject.uscc.clone(),
                district: subject.district.clone(),
                kind: score_kind(r.kind),
                batches: r.batches,
            },
        )?;
        self.put(&key, &f)?;
        self.index(findings_by_subject_key(&subject.uscc, &r.finding_id), b"");
        Ok(())
    }

    pub(super) fn finding_rectify(&mut self, r: record::FindingRectify) -> R {
        opt_text("note", &r.note, NOTE_CHARS_MAX)?;
        let key = finding_key(&r.finding_id);
        let Some(mut f) = self.get::<Finding>(&key)? else {
            return Err(ApplyError::Refused(refuse(
                C::UnknownFinding,
                format!("no finding `{}`", r.finding_id),
            )));
        };
        self.authority_over(
            &[AccountRole::Inspector, AccountRole::Regulator],
            &f.district,
        )?;
        ensure!(
            f.kind != FindingKind::OffChain,
            C::NotRectifiable,
            "an off_chain finding has no rectification window"
        );
        ensure!(
            f.rectified.is_none(),
            C::AlreadyRectified,
            "finding `{}` is already rectified",
            r.finding_id
        );
        let in_time = self.ctx.time_ms < f.rectification_deadline_ms;
        f.rectified = Some((self.origin.clone(), in_time));
        // Only `uncoded` findings carry a score term with a rectification window.
        if f.kind == FindingKind::Uncoded {
            score::on_rectified(
                self.kv,
                &self.ctx.spec.model,
                &score::RectifiedFact {
                    tx_id: sha_id(&self.origin.tx),
                    finding_tx_id: sha_id(&f.found.tx),
                    finding_at_ms: f.found.at_ms,
                    at_ms: self.ctx.time_ms,
                    subject: f.subject.clone(),
                    district: f.district.clone(),
                    batches: f.batches,
                },
            )?;
        }
        self.put(&key, &f)?;
        Ok(())
    }

    pub(super) fn recall(&mut self, r: record::RecallIssue) -> R {
        check_text("reason", &r.reason, NOTE_CHARS_MAX)?;
        let mut b = self.batch(&r.trace_code)?;
        if self.signer.id != b.coder {
            self.regulator_over(&b.coder_district)?;
        }
        ensure!(
            b.recall.is_none(),
            C::AlreadyRecalled,
            "batch `{}` is already recalled",
            b.trace_code
        );
        // Trace forward: everyone the batch was shipped to, and everyone holding it now.
        let mut affected = BTreeSet::new();
        for s in batch_shipments(&*self.kv, &b.trace_code, usize::MAX)? {
            if let Some((shipper, id)) = s.split_once('/') {
                if let Some(sh) = self.get::<Shipment>(&shipment_key(shipper, id))? {
                    affected.insert(sh.to);
                }
            }
        }
        let prefix = format!("hold/{}/", b.trace_code);
        for (k, _) in self
            .kv
            .scan_prefix(Space::State, prefix.as_bytes(), usize::MAX)?
        {
            let holder = String::from_utf8_lossy(&k[prefix.len()..]).into_owned();
            affected.insert(holder);
        }
        affected.remove(&b.coder);
        b.recall = Some(RecallInfo {
            by: self.signer.id.clone(),
            reason: r.reason,
            origin: self.origin.clone(),
            affected: affected.into_iter().collect(),
        });
        self.put(&batch_key(&b.trace_code), &b)?;
        Ok(())
    }

    pub(super) fn adjustment(&mut self, r: record::AdjustmentRecord) -> R {
        check_text("reason", &r.reason, NOTE_CHARS_MAX)?;
        self.regulated_district(&r.district)?;
        let Some(points) = points_hundredths(&r.points) else {
            return Err(ApplyError::Refused(refuse(
                C::InvalidField,
                "`points` must be a number with at most two decimals",
            )));
        };
        ensure!(
            (1..=ADJUSTMENT_HUNDREDTHS_MAX).contains(&points),
            C::InvalidField,
            "`points` must be between 0.01 and {}",
            ADJUSTMENT_HUNDREDTHS_MAX / 100
        );
        score::on_adjustment(
            self.kv,
            &self.ctx.spec.model,
            &score::AdjustmentFact {
                tx_id: sha_id(&self.origin.tx),
                at_ms: self.ctx.time_ms,
                district: r.district.clone(),
                term: match r.term {
                    record::AdjustmentTerm::G => score::Term::G,
                    record::AdjustmentTerm::H => score::Term::H,
                },
                points_hundredths: points,
            },
        )?;
        Ok(())
    }
}
