//! Accounts and their keys: registration, binding and revoking keys.

use super::*;

impl<K: KvWrite> Apply<'_, '_, K> {
    pub(super) fn account_register(&mut self, r: record::AccountRegister) -> R {
        check_client_id("id", &r.id)?;
        check_text("name", &r.name, NAME_CHARS_MAX)?;
        ensure!(
            self.is_role(AccountRole::Regulator),
            C::NoRole,
            "only a regulator registers accounts"
        );
        ensure!(
            self.spec().is_jurisdiction(&r.jurisdiction),
            C::UnknownDistrict,
            "`{}` is not a jurisdiction of the region table",
            r.jurisdiction
        );
        ensure!(
            self.spec()
                .covers_jurisdiction(&self.signer.jurisdiction, &r.jurisdiction),
            C::NoJurisdiction,
            "`{}` (jurisdiction {}) cannot register an account for {}",
            self.signer.id,
            self.signer.jurisdiction,
            r.jurisdiction
        );
        ensure!(
            self.get::<Account>(&account_key(&r.id))?.is_none(),
            C::AccountExists,
            "account `{}` exists",
            r.id
        );
        let key = self.new_key(&r.public_key)?;
        let account = Account {
            id: r.id.clone(),
            role: r.role.into(),
            jurisdiction: r.jurisdiction,
            name: r.name,
            keys: vec![key],
            registered: Some(self.origin.clone()),
            registered_by: Some(self.signer.id.clone()),
        };
        self.put(&key_owner_key(&r.public_key), &r.id)?;
        self.put(&account_key(&r.id), &account)?;
        Ok(())
    }

    /// The signer may change `target`'s keys: it is the target, or a regulator over it.
    pub(super) fn key_authority(&self, target: &Account) -> std::result::Result<(), Refusal> {
        if target.id == self.signer.id {
            return Ok(());
        }
        if self.signer.role == AccountRole::Regulator
            && self
                .spec()
                .covers_jurisdiction(&self.signer.jurisdiction, &target.jurisdiction)
        {
            return Ok(());
        }
        Err(refuse(
            C::NoJurisdiction,
            format!(
                "`{}` may not change the keys of `{}`",
                self.signer.id, target.id
            ),
        ))
    }

    pub(super) fn key_bind(&mut self, r: record::KeyChange) -> R {
        let mut target = self.account(&r.target)?;
        self.key_authority(&target)?;
        ensure!(
            target.active_key_count() < ACCOUNT_KEYS_MAX,
            C::LimitExceeded,
            "an account has at most {ACCOUNT_KEYS_MAX} active keys"
        );
        let key = self.new_key(&r.public_key)?;
        target.keys.push(key);
        self.put(&key_owner_key(&r.public_key), &target.id)?;
        self.put(&account_key(&target.id), &target)?;
        Ok(())
    }

    pub(super) fn key_revoke(&mut self, r: record::KeyChange) -> R {
        let mut target = self.account(&r.target)?;
        self.key_authority(&target)?;
        ensure!(
            target.active_key(&r.public_key).is_some(),
            C::KeyNotActive,
            "that key is not an active key of `{}`",
            target.id
        );
        ensure!(
            target.active_key_count() > 1,
            C::LastKey,
            "revoking the last active key would lock `{}` out; bind a new key first",
            target.id
        );
        let origin = self.origin.clone();
        for k in target
            .keys
            .iter_mut()
            .filter(|k| k.public_key == r.public_key && k.revoked.is_none())
        {
            // Signatures made before this stay valid: they were checked at their commit.
            k.revoked = Some(origin.clone());
        }
        self.put(&account_key(&target.id), &target)?;
        Ok(())
    }
}
