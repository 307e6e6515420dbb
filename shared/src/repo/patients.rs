//! Patients, their identifiers and organizations.

use serde_json::json;
use time::OffsetDateTime;

use super::entities::*;
use super::keys::{self, A, link};
use super::{Repo, del, item};
use crate::error::{Error, Result};
use crate::model::*;
use crate::ports::{Cond, Index, Item, Query, Write};

impl Repo {
    // ---------------------------------------------------------------- patients

    pub async fn patient(&self, id: Id) -> Result<Option<Patient>> {
        self.get(&keys::patient(id), A).await
    }

    pub(super) fn patient_item(p: &Patient) -> Result<Item> {
        Ok(item(keys::patient(p.id), A, p)?.with_gsi1("PATIENTS", keys::pad(p.id)))
    }

    pub async fn list_all_patients(&self) -> Result<Vec<Patient>> {
        self.query_parsed(Query::partition("PATIENTS").on(Index::Gsi1)).await
    }

    /// The patients of an organization (not those it added that have not consented there yet).
    pub async fn org_patient_ids(&self, org: Id) -> Result<Vec<Id>> {
        Ok(self.links(&keys::org(org), "P#").await?.into_iter().filter(|(_, d)| !is_added(d)).map(|(p, _)| p).collect())
    }

    /// The patients an organization added (global lookup) who have not consented there yet.
    pub async fn org_added_patient_ids(&self, org: Id) -> Result<Vec<Id>> {
        Ok(self.links(&keys::org(org), "P#").await?.into_iter().filter(|(_, d)| is_added(d)).map(|(p, _)| p).collect())
    }

    /// The organizations of a patient (not those that added them and where they have not
    /// consented yet: those see nothing of the patient).
    pub async fn patient_org_ids(&self, p: Id) -> Result<Vec<Id>> {
        Ok(self
            .links(&keys::patient(p), "O#")
            .await?
            .into_iter()
            .filter(|(_, d)| !is_added(d))
            .map(|(o, _)| o)
            .collect())
    }

    /// Every organization link of a patient: (organization, added and not consented there yet).
    pub async fn patient_org_links(&self, p: Id) -> Result<Vec<(Id, bool)>> {
        Ok(self.links(&keys::patient(p), "O#").await?.into_iter().map(|(o, d)| (o, is_added(&d))).collect())
    }

    /// The patient consented in a study of an organization that added them: it becomes one of
    /// their organizations.
    pub async fn establish_patient_org(&self, p: Id, o: Id) -> Result<()> {
        let mut tx = Tx::new();
        tx.put(Item::new(keys::org(o), link("P#", p), json!({})), Cond::Exists, None);
        tx.put(Item::new(keys::patient(p), link("O#", o), json!({})), Cond::Exists, None);
        tx.commit(self).await
    }

    pub async fn patient_by_identifier(&self, system: &str, value: &str) -> Result<Option<Id>> {
        let p: Option<Pointer> = self.get(&keys::pat_ident(system, value), A).await?;
        Ok(p.map(|p| p.id))
    }

    /// Creates a patient and their user in one organization, atomically. An email that already
    /// has an account is refused: a patient is looked up and added instead, and anyone else's
    /// account (a practitioner's, a superuser's) never becomes a patient that others may invite.
    pub async fn create_patient(&self, np: NewPatient) -> Result<Patient> {
        let now = OffsetDateTime::now_utc();
        let existing = self.user_by_email(&np.email).await?;
        match &existing {
            Some(u) if u.patient_id.is_some() => {
                return Err(Error::bad(format!(
                    "A patient with email {} already exists; look them up and add them to this organization instead.",
                    np.email
                )));
            }
            Some(_) => {
                return Err(Error::bad(format!("An account with email {} exists and is not a patient's.", np.email)));
            }
            None => {}
        }
        for (s, v) in &np.identifiers {
            if self.patient_by_identifier(s, v).await?.is_some() {
                return Err(Error::bad(ident_taken(s, v).unwrap_or_default()));
            }
        }
        let pid = self.next_id("patient").await?;
        let mut tx = Tx::new();
        let user = User {
            id: self.next_id("user").await?,
            email: np.email.clone(),
            first_name: np.name_given.clone().unwrap_or_default(),
            last_name: np.name_family.clone().unwrap_or_default(),
            password_hash: None,
            user_type: Some(UserType::Patient),
            is_superuser: false,
            patient_id: Some(pid),
            practitioner_id: None,
            identifier: None,
            date_joined: now,
            last_login: None,
            settings: Default::default(),
        };
        Self::tx_new_user(&mut tx, &user)?;
        let mut identifiers = Vec::new();
        for (s, v) in &np.identifiers {
            let iid = self.next_id("identifier").await?;
            identifiers.push(PatientIdentifier { id: iid, system: s.clone(), value: v.clone() });
            tx.put(
                item(keys::pat_ident(s, v), A, &Pointer { id: pid, kind: None, owner: None })?,
                Cond::Absent,
                ident_taken(s, v),
            );
        }
        let p = Patient {
            id: pid,
            user_id: Some(user.id),
            name_family: np.name_family,
            name_given: np.name_given,
            birth_date: np.birth_date,
            telecom_phone: np.telecom_phone,
            identifiers,
            last_updated: now,
        };
        tx.put(Self::patient_item(&p)?, Cond::Absent, None);
        tx.push(
            Write::Check { key: crate::ports::Key::new(keys::org(np.organization_id), A), cond: Cond::Exists },
            Some("Organization not found.".into()),
        );
        Self::tx_link_patient_org(&mut tx, pid, np.organization_id);
        tx.commit(self).await?;
        Ok(p)
    }

    pub(super) fn tx_link_patient_org(tx: &mut Tx, p: Id, o: Id) {
        tx.put(Item::new(keys::org(o), link("P#", p), json!({})), Cond::None, None);
        tx.put(Item::new(keys::patient(p), link("O#", o), json!({})), Cond::None, None);
    }

    /// Saves a patient; with `identifiers`, replaces the whole identifier list atomically.
    pub async fn update_patient(&self, mut p: Patient, identifiers: Option<Vec<(String, String)>>) -> Result<Patient> {
        p.last_updated = OffsetDateTime::now_utc();
        let mut tx = Tx::new();
        if let Some(new) = identifiers {
            let old = std::mem::take(&mut p.identifiers);
            for i in &old {
                if !new.iter().any(|(s, v)| *s == i.system && *v == i.value) {
                    tx.push(del(keys::pat_ident(&i.system, &i.value), A), None);
                }
            }
            for (s, v) in new {
                if let Some(kept) = old.iter().find(|i| i.system == s && i.value == v) {
                    p.identifiers.push(kept.clone());
                    continue;
                }
                if p.identifiers.iter().any(|i| i.system == s && i.value == v) {
                    continue;
                }
                let iid = self.next_id("identifier").await?;
                tx.put(
                    item(keys::pat_ident(&s, &v), A, &Pointer { id: p.id, kind: None, owner: None })?,
                    Cond::Absent,
                    ident_taken(&s, &v),
                );
                p.identifiers.push(PatientIdentifier { id: iid, system: s, value: v });
            }
        }
        tx.put(Self::patient_item(&p)?, Cond::Exists, Some("Patient not found.".into()));
        tx.commit(self).await?;
        Ok(p)
    }

    /// Adds an existing patient to an organization (global lookup): the link is marked added,
    /// and gives the organization nothing until the patient consents in one of its studies.
    pub async fn add_patient_org(&self, p: Id, o: Id) -> Result<()> {
        let mut tx = Tx::new();
        tx.push(
            Write::Check { key: crate::ports::Key::new(keys::patient(p), A), cond: Cond::Exists },
            Some("Patient not found.".into()),
        );
        tx.push(
            Write::Check { key: crate::ports::Key::new(keys::org(o), A), cond: Cond::Exists },
            Some("Organization not found.".into()),
        );
        tx.put(
            Item::new(keys::org(o), link("P#", p), json!({"added": true})),
            Cond::Absent,
            Some("This patient is already a member of this organization.".into()),
        );
        tx.put(Item::new(keys::patient(p), link("O#", o), json!({"added": true})), Cond::None, None);
        tx.commit(self).await
    }

    /// Removes a patient from an organization with their enrolments and consents for that
    /// organization's studies; a patient left in no organization is deleted with their
    /// identifiers, invitations and (unless otherwise used) their user. Returns the accounts
    /// deleted (the user, if it was), for the identity provider to forget.
    pub async fn remove_patient_from_org(&self, pid: Id, org: Id) -> Result<Vec<GoneAccount>> {
        let Some(p) = self.patient(pid).await? else { return Err(Error::not_found()) };
        let orgs: Vec<Id> = self.patient_org_links(pid).await?.into_iter().map(|(o, _)| o).collect();
        if !orgs.contains(&org) {
            return Err(Error::NotFound("The patient is not in this organization.".into()));
        }
        let mut gone = Vec::new();
        let mut tx = Tx::new();
        tx.push(del(keys::org(org), link("P#", pid)), None);
        tx.push(del(keys::patient(pid), link("O#", org)), None);
        let org_studies = self.linked_ids(&keys::org(org), "S#").await?;
        let last = orgs.len() == 1;
        for s in self.linked_ids(&keys::patient(pid), "S#").await? {
            if last || org_studies.contains(&s) {
                tx.push(del(keys::study(s), link("P#", pid)), None);
                tx.push(del(keys::patient(pid), link("S#", s)), None);
            }
        }
        for c in self.consents(pid).await? {
            if last || org_studies.contains(&c.study_id) {
                tx.push(del(keys::patient(pid), keys::consent(c.study_id, c.code_id)), None);
            }
        }
        if last {
            tx.push(del(keys::patient(pid), A), None);
            for i in &p.identifiers {
                tx.push(del(keys::pat_ident(&i.system, &i.value), A), None);
            }
            for inv in self.invitations_of(pid).await? {
                tx.push(del(keys::patient(pid), link("I#", inv.id)), None);
                tx.push(del(keys::inv_token(&inv.token_hash), A), None);
            }
            if let Some(uid) = p.user_id
                && let Some(mut u) = self.user(uid).await?
            {
                if u.is_superuser || u.practitioner_id.is_some() {
                    u.patient_id = None;
                    tx.put(Self::user_item(&u)?, Cond::Exists, None);
                } else {
                    tx.push(del(keys::user(uid), A), None);
                    tx.push(del(keys::email(&u.email), A), None);
                    gone.push(GoneAccount::User(uid));
                }
            }
        }
        tx.commit(self).await?;
        Ok(gone)
    }

    /// Stores a patient with chosen ids (the seed), with identifiers and organizations.
    pub async fn seed_patient(&self, p: &Patient, orgs: &[Id]) -> Result<()> {
        let mut tx = Tx::new();
        tx.put(Self::patient_item(p)?, Cond::Absent, None);
        for i in &p.identifiers {
            tx.put(
                item(keys::pat_ident(&i.system, &i.value), A, &Pointer { id: p.id, kind: None, owner: None })?,
                Cond::Absent,
                ident_taken(&i.system, &i.value),
            );
        }
        for o in orgs {
            Self::tx_link_patient_org(&mut tx, p.id, *o);
        }
        tx.commit(self).await
    }
}
