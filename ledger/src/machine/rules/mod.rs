//! The record rules, one module per record family. Each rule is a method on
//! [`Apply`]: state seen through the transaction's overlay, the signer and
//! the block's facts. It writes its changes into that overlay or returns a
//! typed refusal (`ApplyError::Refused`); a storage failure is `Fatal`.

use super::*;
use crate::signing::SignerKey;

mod accounts;
mod batches;
mod catalogues;
mod compliance;
mod findings;
mod subjects;
mod validators;

fn parse_date(field: &str, text: &str) -> std::result::Result<jiff::civil::Date, Refusal> {
    if text.len() != 10 {
        return Err(refuse(
            C::InvalidField,
            format!("`{field}` must be a date YYYY-MM-DD"),
        ));
    }
    text.parse().map_err(|_| {
        refuse(
            C::InvalidField,
            format!("`{field}` must be a date YYYY-MM-DD"),
        )
    })
}

/// A validator's key: Ed25519 only, on every chain. It is the node's
/// libp2p identity and signs checkpoints (C2SP signed notes, Ed25519).
fn check_validator_key(text: &str) -> std::result::Result<(), Refusal> {
    match SignerKey::parse_hex(text) {
        Some(k @ SignerKey::Ed25519(_)) if k.check_point() => Ok(()),
        Some(SignerKey::Ed25519(_)) => Err(refuse(
            C::InvalidField,
            "`public_key` is not a usable Ed25519 public key",
        )),
        Some(SignerKey::Sm2(_)) => Err(refuse(
            C::InvalidField,
            "a validator's `public_key` is Ed25519 (it signs C2SP checkpoints), never SM2",
        )),
        None => Err(refuse(
            C::InvalidField,
            "`public_key` must be 64 lowercase hex characters",
        )),
    }
}

fn check_hash_hex(field: &str, text: &str) -> std::result::Result<(), Refusal> {
    let ok = text.len() == 64
        && text
            .bytes()
            .all(|c| c.is_ascii_digit() || (b'a'..=b'f').contains(&c));
    if ok {
        Ok(())
    } else {
        Err(refuse(
            C::InvalidField,
            format!("`{field}` must be a SHA-256 in 64 lowercase hex characters"),
        ))
    }
}

fn opt_text(field: &str, text: &Option<String>, max: usize) -> std::result::Result<(), Refusal> {
    match text {
        Some(t) => check_text(field, t, max),
        None => Ok(()),
    }
}

impl<K: KvWrite> Apply<'_, '_, K> {
    fn spec(&self) -> &ChainSpec {
        self.ctx.spec
    }

    fn get<T: serde::de::DeserializeOwned>(&self, key: &str) -> Result<Option<T>> {
        Ok(get(&*self.kv, Space::State, key)?)
    }

    fn put<T: serde::Serialize>(&mut self, key: &str, value: &T) -> Result<()> {
        Ok(put(self.kv, Space::State, key, value)?)
    }

    fn index(&mut self, key: String, value: &[u8]) {
        self.kv.put(Space::Index, key.into_bytes(), value.to_vec());
    }

    fn today(&self) -> Result<jiff::civil::Date> {
        Ok(score::local_date(&self.spec().model, self.ctx.time_ms)?)
    }

    fn is_role(&self, role: AccountRole) -> bool {
        self.signer.role == role
    }

    /// The signer is a regulator whose jurisdiction covers `district`.
    fn regulator_over(&self, district: &str) -> std::result::Result<(), Refusal> {
        self.authority_over(&[AccountRole::Regulator], district)
    }

    /// `district` is in the region table and the signer regulates it.
    fn regulated_district(&self, district: &str) -> std::result::Result<(), Refusal> {
        if self.spec().district(district).is_none() {
            return Err(refuse(
                C::UnknownDistrict,
                format!("district `{district}` is not in the region table"),
            ));
        }
        self.regulator_over(district)
    }

    fn authority_over(
        &self,
        roles: &[AccountRole],
        district: &str,
    ) -> std::result::Result<(), Refusal> {
        if !roles.contains(&self.signer.role) {
            return Err(refuse(
                C::NoRole,
                format!(
                    "`{}` is a {:?}, not one of {roles:?}",
                    self.signer.id, self.signer.role
                ),
            ));
        }
        if !self.spec().covers(&self.signer.jurisdiction, district) {
            return Err(refuse(
                C::NoJurisdiction,
                format!(
                    "`{}` (jurisdiction {}) has no jurisdiction over {district}",
                    self.signer.id, self.signer.jurisdiction
                ),
            ));
        }
        Ok(())
    }

    fn subject_signer(&self) -> ApplyResult<Subject> {
        if !self.is_role(AccountRole::Subject) {
            return Err(ApplyError::Refused(refuse(
                C::NoRole,
                format!("`{}` is not a registered subject", self.signer.id),
            )));
        }
        match self.get::<Subject>(&subject_key(&self.signer.id))? {
            Some(s) => Ok(s),
            None => Err(ApplyError::Fatal(LedgerError::Corrupt(format!(
                "subject account `{}` has no subject record",
                self.signer.id
            )))),
        }
    }

    fn account(&self, id: &str) -> ApplyResult<Account> {
        Ok(self
            .get::<Account>(&account_key(id))?
            .ok_or_else(|| refuse(C::UnknownAccount, format!("no account `{id}`")))?)
    }

    fn subject(&self, uscc: &str) -> ApplyResult<Subject> {
        Ok(self
            .get::<Subject>(&subject_key(uscc))?
            .ok_or_else(|| refuse(C::UnknownSubject, format!("no subject `{uscc}`")))?)
    }

    fn batch(&self, trace: &str) -> ApplyResult<Batch> {
        Ok(self.get::<Batch>(&batch_key(trace))?.ok_or_else(|| {
            refuse(
                C::UnknownBatch,
                format!("no batch with trace code `{trace}`"),
            )
        })?)
    }

    fn holding(&self, trace: &str, holder: &str) -> Result<u64> {
        Ok(self.get::<u64>(&holding_key(trace, holder))?.unwrap_or(0))
    }

    fn set_holding(&mut self, trace: &str, holder: &str, qty: u64) -> Result<()> {
        if qty == 0 {
            self.kv
                .delete(Space::State, holding_key(trace, holder).into_bytes());
            self.kv.delete(
                Space::Index,
                holdings_by_subject_key(holder, trace).into_bytes(),
            );
        } else {
            self.put(&holding_key(trace, holder), &qty)?;
            self.index(holdings_by_subject_key(holder, trace), b"");
        }
        Ok(())
    }

    fn new_key(&mut self, public_key: &str) -> ApplyResult<KeyEntry> {
        self.spec()
            .check_account_key(public_key)
            .map_err(|why| refuse(C::InvalidField, why))?;
        if self.get::<String>(&key_owner_key(public_key))?.is_some() {
            return Err(ApplyError::Refused(refuse(
                C::KeyInUse,
                "that public key is already bound to an account",
            )));
        }
        Ok(KeyEntry {
            public_key: public_key.to_string(),
            bound: self.origin.clone(),
            revoked: None,
        })
    }

    fn activity(&mut self, subject: &Subject) -> Result<()> {
        score::on_activity(
            self.kv,
            &self.ctx.spec.model,
            &score::ActivityFact {
                at_ms: self.ctx.time_ms,
                subject: subject.uscc.clone(),
                district: subject.district.clone(),
                market: subject.market.clone(),
            },
        )?;
        Ok(())
    }

    pub(super) fn record(&mut self, record: Record) -> R {
        match record {
            Record::AccountRegister(r) => self.account_register(r),
            Record::SubjectRegister(r) => self.subject_register(r),
            Record::SubjectUpdate(r) => self.subject_update(r),
            Record::KeyBind(r) => self.key_bind(r),
            Record::KeyRevoke(r) => self.key_revoke(r),
            Record::ProductRegister(r) => self.product_register(r),
            Record::BatchCode(r) => self.batch_code(r),
            Record::ShipmentCreate(r) => self.shipment_create(r),
            Record::ShipmentReceive(r) => self.shipment_answer(r.shipper, r.shipment_id, None),
            Record::ShipmentReject(r) => {
                opt_text("note", &r.note, NOTE_CHARS_MAX)?;
                self.shipment_answer(r.shipper, r.shipment_id, Some((r.reason, r.note)))
            }
            Record::CertificateIssue(r) => self.certificate_issue(r),
            Record::RapidTestRecord(r) => self.rapid_test(r),
            Record::FindingRecord(r) => self.finding_record(r),
            Record::FindingRectify(r) => self.finding_rectify(r),
            Record::RecallIssue(r) => self.recall(r),
            Record::AdjustmentRecord(r) => self.adjustment(r),
            Record::DocumentNotarize(r) => self.notarize(r),
            Record::KeySubjectsUpdate(r) => self.key_subjects(r),
            Record::KeyVarietiesUpdate(r) => self.key_varieties(r),
            Record::ValidatorAdd(r) => self.validator_add(r),
            Record::ValidatorRemove(r) => self.validator_remove(r),
        }
    }
}

fn score_kind(k: FindingKind) -> score::FindingKind {
    match k {
        FindingKind::Uncoded => score::FindingKind::Uncoded,
        FindingKind::OffChain => score::FindingKind::OffChain,
        FindingKind::Other => score::FindingKind::Other,
    }
}

fn sha_id(hex_id: &str) -> [u8; 32] {
    H32::parse(hex_id).map(|h| h.0).unwrap_or([0; 32])
}
