//! Subjects (市场主体) and their products.

use super::*;

impl<K: KvWrite> Apply<'_, '_, K> {
    pub(super) fn subject_register(&mut self, r: record::SubjectRegister) -> R {
        check_uscc(&r.uscc)?;
        check_text("name", &r.name, NAME_CHARS_MAX)?;
        self.regulated_district(&r.district)?;
        ensure!(
            self.get::<Account>(&account_key(&r.uscc))?.is_none(),
            C::SubjectExists,
            "subject `{}` is registered",
            r.uscc
        );
        if let Some(m) = &r.market {
            ensure!(
                r.kind == SubjectKind::MarketOperator,
                C::InvalidField,
                "only a market_operator names a market"
            );
            let market = self.subject(m)?;
            ensure!(
                market.kind.is_market(),
                C::InvalidField,
                "`{m}` is not a market"
            );
        }
        let key = self.new_key(&r.public_key)?;
        let account = Account {
            id: r.uscc.clone(),
            role: AccountRole::Subject,
            jurisdiction: r.district.clone(),
            name: r.name.clone(),
            keys: vec![key],
            registered: Some(self.origin.clone()),
            registered_by: Some(self.signer.id.clone()),
        };
        let subject = Subject {
            subject_code: subject_code(&r.uscc),
            uscc: r.uscc.clone(),
            name: r.name,
            kind: r.kind,
            district: r.district.clone(),
            key_subject: r.key_subject,
            market: r.market.clone(),
            registered: self.origin.clone(),
            updated: None,
        };
        self.put(&key_owner_key(&r.public_key), &r.uscc)?;
        self.put(&account_key(&r.uscc), &account)?;
        self.put(&subject_key(&r.uscc), &subject)?;
        if r.key_subject {
            score::on_key_subject(self.kv, &r.uscc, &r.district, true, self.ctx.time_ms)?;
        }
        if let Some(m) = &r.market {
            let market = self
                .get::<Subject>(&subject_key(m))?
                .ok_or_else(|| LedgerError::Corrupt(format!("market {m} vanished")))?;
            let market_kind = if market.kind == SubjectKind::FarmWholesaleMarket {
                score::MarketKind::Wholesale
            } else {
                score::MarketKind::Retail
            };
            score::on_operator_registered(
                self.kv,
                &self.ctx.spec.model,
                &score::OperatorFact {
                    at_ms: self.ctx.time_ms,
                    market: m.clone(),
                    market_district: market.district,
                    market_kind,
                    operator: r.uscc.clone(),
                },
            )?;
        }
        Ok(())
    }

    pub(super) fn subject_update(&mut self, r: record::SubjectUpdate) -> R {
        let mut s = self.subject(&r.uscc)?;
        self.regulator_over(&s.district)?;
        if let Some(name) = &r.name {
            check_text("name", name, NAME_CHARS_MAX)?;
            s.name = name.clone();
        }
        if let Some(kind) = r.kind {
            ensure!(
                s.market.is_none() || kind == SubjectKind::MarketOperator,
                C::InvalidField,
                "a stall registered in a market stays a market_operator"
            );
            s.kind = kind;
        }
        let old_district = s.district.clone();
        if let Some(d) = &r.district {
            self.regulated_district(d)?;
            s.district = d.clone();
        }
        let was_key = s.key_subject;
        if let Some(k) = r.key_subject {
            s.key_subject = k;
        }
        if was_key && (!s.key_subject || old_district != s.district) {
            score::on_key_subject(self.kv, &s.uscc, &old_district, false, self.ctx.time_ms)?;
        }
        if s.key_subject && (!was_key || old_district != s.district) {
            score::on_key_subject(self.kv, &s.uscc, &s.district, true, self.ctx.time_ms)?;
        }
        s.updated = Some(self.origin.clone());
        if let Some(mut acct) = self.get::<Account>(&account_key(&s.uscc))? {
            acct.jurisdiction = s.district.clone();
            acct.name = s.name.clone();
            self.put(&account_key(&s.uscc), &acct)?;
        }
        self.put(&subject_key(&s.uscc), &s)?;
        Ok(())
    }

    pub(super) fn product_register(&mut self, r: record::ProductRegister) -> R {
        let owner = self.subject_signer()?;
        check_client_id("product_id", &r.product_id)?;
        check_text("name", &r.name, NAME_CHARS_MAX)?;
        if let Some(g) = &r.gtin {
            check_gtin(g)?;
        }
        ensure!(
            (1..=SHELF_LIFE_DAYS_MAX).contains(&r.shelf_life_days),
            C::InvalidField,
            "`shelf_life_days` must be 1-{SHELF_LIFE_DAYS_MAX}"
        );
        let catalogue: VarietyCatalogue = self.get(VARIETIES_KEY)?.unwrap_or(VarietyCatalogue {
            version: 0,
            varieties: vec![],
        });
        ensure!(
            r.variety == VARIETY_OTHER || catalogue.contains(&r.variety),
            C::UnknownVariety,
            "variety `{}` is not in key-variety catalogue v{} (use `{VARIETY_OTHER}` for other foods)",
            r.variety,
            catalogue.version
        );
        let key = product_key(&owner.uscc, &r.product_id);
        ensure!(
            self.get::<Product>(&key)?.is_none(),
            C::ProductExists,
            "product `{}` exists",
            r.product_id
        );
        let p = Product {
            owner: owner.uscc,
            product_id: r.product_id,
            name: r.name,
            gtin: r.gtin,
            variety: r.variety,
            shelf_life_days: r.shelf_life_days,
            registered: self.origin.clone(),
        };
        self.put(&key, &p)?;
        Ok(())
    }
}
