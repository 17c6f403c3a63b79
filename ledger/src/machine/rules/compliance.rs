//! Compliance records: certificates (合格证), rapid tests (快检) and notarised
//! documents.

use super::*;

impl<K: KvWrite> Apply<'_, '_, K> {
    pub(super) fn certificate_issue(&mut self, r: record::CertificateIssue) -> R {
        check_client_id("certificate_id", &r.certificate_id)?;
        check_text("product_name", &r.product_name, NAME_CHARS_MAX)?;
        opt_text("unit", &r.unit, 16)?;
        let subject = self.subject(&r.subject)?;
        self.authority_over(&[AccountRole::AgricultureAuthority], &subject.district)?;
        let key = certificate_key(&r.certificate_id);
        ensure!(
            self.get::<Certificate>(&key)?.is_none(),
            C::CertificateExists,
            "certificate `{}` exists",
            r.certificate_id
        );
        if let Some(q) = r.quantity {
            ensure!(
                (1..=QUANTITY_MAX).contains(&q),
                C::InvalidField,
                "`quantity` must be 1-{QUANTITY_MAX}"
            );
        }
        if let Some(trace) = &r.trace_code {
            let mut b = self.batch(trace)?;
            b.certificates.push(r.certificate_id.clone());
            b.green = !b.blocked;
            self.put(&batch_key(trace), &b)?;
        }
        let cert = Certificate {
            certificate_id: r.certificate_id,
            issuer: self.signer.id.clone(),
            subject: subject.uscc,
            product_name: r.product_name,
            trace_code: r.trace_code,
            quantity: r.quantity,
            unit: r.unit,
            issued: self.origin.clone(),
        };
        self.put(&key, &cert)?;
        Ok(())
    }

    pub(super) fn rapid_test(&mut self, r: record::RapidTestRecord) -> R {
        check_client_id("test_id", &r.test_id)?;
        check_text("item", &r.item, NAME_CHARS_MAX)?;
        opt_text("note", &r.note, NOTE_CHARS_MAX)?;
        let mut b = self.batch(&r.trace_code)?;
        ensure!(
            matches!(
                self.signer.role,
                AccountRole::TestingLab | AccountRole::Inspector
            ),
            C::NoRole,
            "only a testing lab or an inspector records rapid tests"
        );
        let key = test_key(&r.test_id);
        ensure!(
            self.get::<RapidTest>(&key)?.is_none(),
            C::TestExists,
            "rapid test `{}` exists",
            r.test_id
        );
        match r.result {
            TestResult::Pass => b.green = !b.blocked,
            TestResult::Fail => {
                b.blocked = true;
                b.green = false;
            }
        }
        b.rapid_tests.push(r.test_id.clone());
        self.put(&batch_key(&r.trace_code), &b)?;
        let t = RapidTest {
            test_id: r.test_id,
            tester: self.signer.id.clone(),
            trace_code: r.trace_code,
            item: r.item,
            result: r.result,
            note: r.note,
            tested: self.origin.clone(),
        };
        self.put(&key, &t)?;
        Ok(())
    }

    pub(super) fn notarize(&mut self, r: record::DocumentNotarize) -> R {
        check_hash_hex("document_hash", &r.document_hash)?;
        check_text("title", &r.title, NAME_CHARS_MAX)?;
        opt_text("media_type", &r.media_type, 100)?;
        opt_text("note", &r.note, NOTE_CHARS_MAX)?;
        let n = Notarization {
            document_hash: r.document_hash.clone(),
            title: r.title,
            media_type: r.media_type,
            note: r.note,
            account: self.signer.id.clone(),
            origin: self.origin.clone(),
        };
        put(
            self.kv,
            Space::Index,
            &documents_key(&r.document_hash, &self.origin.tx),
            &n,
        )?;
        Ok(())
    }
}
