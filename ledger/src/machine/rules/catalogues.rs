//! The provincial catalogues: key subjects and key varieties.

use super::*;

impl<K: KvWrite> Apply<'_, '_, K> {
    pub(super) fn provincial(&self) -> std::result::Result<(), Refusal> {
        if self.signer.role != AccountRole::Regulator {
            return Err(refuse(
                C::NoRole,
                "only the provincial regulator may record this",
            ));
        }
        if self.signer.jurisdiction != self.spec().province.code {
            return Err(refuse(
                C::NoJurisdiction,
                "only the provincial regulator may record this",
            ));
        }
        Ok(())
    }

    pub(super) fn key_subjects(&mut self, r: record::KeySubjectsUpdate) -> R {
        self.provincial()?;
        ensure!(
            r.add.len() + r.remove.len() <= CATALOGUE_CHANGES_MAX,
            C::LimitExceeded,
            "at most {CATALOGUE_CHANGES_MAX} changes per update"
        );
        ensure!(
            !r.add.is_empty() || !r.remove.is_empty(),
            C::InvalidField,
            "nothing to add or remove"
        );
        for (list, flag) in [(&r.add, true), (&r.remove, false)] {
            for uscc in list {
                let mut s = self.subject(uscc)?;
                if s.key_subject != flag {
                    s.key_subject = flag;
                    s.updated = Some(self.origin.clone());
                    score::on_key_subject(self.kv, &s.uscc, &s.district, flag, self.ctx.time_ms)?;
                    self.put(&subject_key(uscc), &s)?;
                }
            }
        }
        Ok(())
    }

    pub(super) fn key_varieties(&mut self, r: record::KeyVarietiesUpdate) -> R {
        self.provincial()?;
        let current: VarietyCatalogue = self.get(VARIETIES_KEY)?.unwrap_or(VarietyCatalogue {
            version: 0,
            varieties: vec![],
        });
        ensure!(
            r.version > current.version,
            C::StaleCatalogue,
            "catalogue version {} is not after {}",
            r.version,
            current.version
        );
        ensure!(
            !r.varieties.is_empty() && r.varieties.len() <= VARIETIES_MAX,
            C::LimitExceeded,
            "a catalogue has 1-{VARIETIES_MAX} varieties"
        );
        let mut codes = BTreeSet::new();
        for v in &r.varieties {
            check_client_id("varieties.code", &v.code)?;
            check_text("varieties.name", &v.name, NAME_CHARS_MAX)?;
            ensure!(
                v.code != VARIETY_OTHER,
                C::InvalidField,
                "`{VARIETY_OTHER}` is reserved"
            );
            ensure!(
                codes.insert(v.code.clone()),
                C::InvalidField,
                "variety `{}` appears twice",
                v.code
            );
        }
        self.put(
            VARIETIES_KEY,
            &VarietyCatalogue {
                version: r.version,
                varieties: r.varieties,
            },
        )?;
        Ok(())
    }
}
