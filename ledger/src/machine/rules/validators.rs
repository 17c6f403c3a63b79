//! Changes to the validator set.

use super::*;

impl<K: KvWrite> Apply<'_, '_, K> {
    /// The set after this block (earlier changes in the same block included).
    pub(super) fn next_validator_set(&self) -> Result<Vec<crate::spec::Validator>> {
        seal::validator_set_at(&*self.kv, self.ctx.height + 1)
    }

    pub(super) fn validator_add(&mut self, r: record::ValidatorAdd) -> R {
        self.provincial()?;
        ensure!(
            crate::validate::valid_key_name(&r.name) && r.name.chars().count() <= 64,
            C::InvalidField,
            "`name` must be 1-64 characters without spaces or `+`"
        );
        check_validator_key(&r.public_key)?;
        ensure!(
            !r.address.is_empty() && r.address.len() <= 512,
            C::InvalidField,
            "`address` must be 1-512 bytes"
        );
        ensure!(r.node_id > 0, C::InvalidField, "`node_id` must be positive");
        let mut set = self.next_validator_set()?;
        ensure!(
            set.len() < seal::VALIDATORS_MAX,
            C::LimitExceeded,
            "a chain has at most {} validators",
            seal::VALIDATORS_MAX
        );
        if let Some(v) = set
            .iter()
            .find(|v| v.node_id == r.node_id || v.name == r.name || v.public_key == r.public_key)
        {
            return Err(ApplyError::Refused(refuse(
                C::ValidatorExists,
                format!(
                    "validator {} `{}` already has that node id, name or key",
                    v.node_id, v.name
                ),
            )));
        }
        set.push(crate::spec::Validator {
            node_id: r.node_id,
            name: r.name,
            public_key: r.public_key,
        });
        set.sort_by_key(|v| v.node_id);
        // Under note format v2 every validator signs under the origin, so
        // two keys with one key id (odds 2^-32 a pair) could not be told apart.
        let log = seal::log_identity(&*self.kv, self.spec())?;
        ensure!(
            seal::note_keys(&log, &set).is_ok(),
            C::ValidatorExists,
            "the key's note key id equals another validator's; use another key"
        );
        seal::put_validator_set(self.kv, self.ctx.height + 1, &set)?;
        self.put(&seal::validator_address_key(r.node_id), &r.address)?;
        Ok(())
    }

    pub(super) fn validator_remove(&mut self, r: record::ValidatorRemove) -> R {
        self.provincial()?;
        let mut set = self.next_validator_set()?;
        let before = set.len();
        set.retain(|v| v.node_id != r.node_id);
        ensure!(
            set.len() < before,
            C::UnknownValidator,
            "node {} is not a validator",
            r.node_id
        );
        ensure!(
            !set.is_empty(),
            C::LimitExceeded,
            "the last validator cannot be removed"
        );
        seal::put_validator_set(self.kv, self.ctx.height + 1, &set)?;
        Ok(())
    }
}
