//! Studies, enrolments, consents, invitations.

use serde_json::json;

use super::entities::*;
use super::keys::{self, A, link};
use super::{Repo, del, item, parse};
use crate::error::{Error, Result};
use crate::model::*;
use crate::ports::{Cond, Item, Query, Write};

impl Repo {
    // ---------------------------------------------------------------- studies

    pub async fn study(&self, id: Id) -> Result<Option<Study>> {
        self.get(&keys::study(id), A).await
    }

    pub async fn org_study_ids(&self, org: Id) -> Result<Vec<Id>> {
        self.linked_ids(&keys::org(org), "S#").await
    }

    pub async fn studies(&self, ids: &[Id]) -> Result<Vec<Study>> {
        let mut out = Vec::new();
        for id in ids {
            if let Some(s) = self.study(*id).await? {
                out.push(s);
            }
        }
        Ok(out)
    }

    pub async fn create_study(&self, s: &Study) -> Result<()> {
        let mut tx = Tx::new();
        tx.push(
            Write::Check { key: crate::ports::Key::new(keys::org(s.organization_id), A), cond: Cond::Exists },
            Some("Organization not found.".into()),
        );
        tx.put(item(keys::study(s.id), A, s)?, Cond::Absent, None);
        tx.put(Item::new(keys::org(s.organization_id), link("S#", s.id), json!({})), Cond::Absent, None);
        tx.commit(self).await
    }

    pub async fn save_study(&self, s: &Study) -> Result<()> {
        self.table.put(item(keys::study(s.id), A, s)?, Cond::Exists).await.map_err(map_missing)
    }

    /// Deletes a study with its scope requests, data-source and client links; refused while
    /// patients are enrolled (their consents would go with it).
    pub async fn delete_study(&self, s: &Study) -> Result<()> {
        let pk = keys::study(s.id);
        if !self.linked_ids(&pk, "P#").await?.is_empty() {
            return Err(Error::Conflict("Patients are enrolled in this study; remove them first.".into()));
        }
        let mut tx = Tx::new();
        for i in self.query_all(Query::partition(pk.clone())).await? {
            tx.push(del(i.pk, i.sk), None);
        }
        tx.push(del(keys::org(s.organization_id), link("S#", s.id)), None);
        tx.commit(self).await
    }

    pub async fn study_patient_ids(&self, s: Id) -> Result<Vec<Id>> {
        self.linked_ids(&keys::study(s), "P#").await
    }

    pub async fn patient_study_ids(&self, p: Id) -> Result<Vec<Id>> {
        self.linked_ids(&keys::patient(p), "S#").await
    }

    /// A patient with the links the consent rule reads (organizations, enrolments, consents), in
    /// one query of the patient's partition instead of one read of each kind.
    pub async fn patient_with_links(&self, p: Id) -> Result<Option<PatientLinks>> {
        let items = self.query_all(Query::partition(keys::patient(p))).await?;
        let mut out: Option<PatientLinks> = None;
        let (mut orgs, mut studies, mut consents) = (Vec::new(), Vec::new(), Vec::new());
        for i in &items {
            let id_after = |prefix: &str| i.sk.strip_prefix(prefix).and_then(|n| n.parse::<Id>().ok());
            if i.sk == A {
                out = Some(PatientLinks { patient: parse(i)?, orgs: vec![], studies: vec![], consents: vec![] });
            } else if let Some(o) = id_after("O#") {
                if !is_added(&i.data) {
                    orgs.push(o);
                }
            } else if let Some(s) = id_after("S#") {
                studies.push(s);
            } else if i.sk.starts_with("CONSENT#") {
                consents.push(parse(i)?);
            }
        }
        Ok(out.map(|l| PatientLinks { orgs, studies, consents, ..l }))
    }

    pub async fn enrol(&self, s: Id, patients: &[Id]) -> Result<()> {
        let mut tx = Tx::new();
        tx.push(
            Write::Check { key: crate::ports::Key::new(keys::study(s), A), cond: Cond::Exists },
            Some("Not found.".into()),
        );
        for p in patients {
            tx.push(
                Write::Check { key: crate::ports::Key::new(keys::patient(*p), A), cond: Cond::Exists },
                Some(format!("Patient {p} not found.")),
            );
            tx.put(Item::new(keys::study(s), link("P#", *p), json!({})), Cond::None, None);
            tx.put(Item::new(keys::patient(*p), link("S#", s), json!({})), Cond::None, None);
        }
        tx.commit(self).await
    }

    /// Withdraws patients from a study with their decisions on its scopes: enrolled again, they
    /// decide again (a grant is the patient's act, never revived by a practitioner).
    pub async fn unenrol(&self, s: Id, patients: &[Id]) -> Result<()> {
        let mut tx = Tx::new();
        for p in patients {
            tx.push(del(keys::study(s), link("P#", *p)), None);
            tx.push(del(keys::patient(*p), link("S#", s)), None);
            for c in self.query_all(Query::prefix(keys::patient(*p), format!("CONSENT#{}#", keys::pad(s)))).await? {
                tx.push(del(c.pk, c.sk), None);
            }
        }
        tx.commit(self).await
    }

    /// Forgets every enrolled patient's decision on one scope of a study (the study no longer
    /// requests it; requested again, the patients decide again).
    pub async fn forget_scope_consents(&self, s: Id, code: Id) -> Result<()> {
        let patients = self.linked_ids(&keys::study(s), "P#").await?;
        for chunk in patients.chunks(90) {
            let rm: Vec<ConsentKey> =
                chunk.iter().map(|p| ConsentKey { patient_id: *p, study_id: s, code_id: code }).collect();
            self.write_consents(&[], &rm).await?;
        }
        Ok(())
    }

    // ---------------------------------------------------------------- consents

    pub async fn consents(&self, p: Id) -> Result<Vec<Consent>> {
        self.query_parsed(Query::prefix(keys::patient(p), "CONSENT#")).await
    }

    /// Records decisions and removals atomically.
    pub async fn write_consents(&self, set: &[Consent], remove: &[ConsentKey]) -> Result<()> {
        let mut tx = Tx::new();
        for c in set {
            tx.put(item(keys::patient(c.patient_id), keys::consent(c.study_id, c.code_id), c)?, Cond::None, None);
        }
        for k in remove {
            tx.push(del(keys::patient(k.patient_id), keys::consent(k.study_id, k.code_id)), None);
        }
        tx.commit(self).await
    }

    // ---------------------------------------------------------------- invitations

    pub async fn invitations_of(&self, p: Id) -> Result<Vec<Invitation>> {
        self.query_parsed(Query::prefix(keys::patient(p), "I#")).await
    }

    /// Stores a new invitation and marks the earlier issued ones for the same client as reissued.
    pub async fn create_invitation(&self, inv: &Invitation) -> Result<()> {
        let mut tx = Tx::new();
        for mut old in self.invitations_of(inv.patient_id).await? {
            if old.client == inv.client && old.status == InvitationStatus::Issued {
                old.status = InvitationStatus::Reissued;
                old.last_updated = inv.created;
                tx.put(item(keys::patient(old.patient_id), link("I#", old.id), &old)?, Cond::Exists, None);
            }
        }
        tx.put(item(keys::patient(inv.patient_id), link("I#", inv.id), inv)?, Cond::Absent, None);
        tx.put(
            item(
                keys::inv_token(&inv.token_hash),
                A,
                &Pointer { id: inv.id, kind: None, owner: Some(inv.patient_id) },
            )?,
            Cond::Absent,
            None,
        );
        tx.commit(self).await
    }

    pub async fn invitation_by_token_hash(&self, hash: &str) -> Result<Option<Invitation>> {
        let p: Option<Pointer> = self.get(&keys::inv_token(hash), A).await?;
        match p.and_then(|p| p.owner.map(|o| (o, p.id))) {
            Some((patient, id)) => self.get(&keys::patient(patient), &link("I#", id)).await,
            None => Ok(None),
        }
    }

    pub async fn save_invitation(&self, inv: &Invitation) -> Result<()> {
        self.table
            .put(item(keys::patient(inv.patient_id), link("I#", inv.id), inv)?, Cond::Exists)
            .await
            .map_err(map_missing)
    }
}
