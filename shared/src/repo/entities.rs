//! Typed reads and writes of each entity. Multi-item changes are one atomic `transact`.

use serde::{Deserialize, Serialize};
use serde_json::json;
use time::OffsetDateTime;

use super::keys::{self, A, link};
use super::{Repo, del, item, parse, put};
use crate::error::{Error, Result};
use crate::model::*;
use crate::ports::{Cond, Index, Item, Query, Write};

/// How long after the app stops honouring an item the store may delete it: a day, so that no
/// answer depends on when the store's clean-up runs.
const EXPIRY_GRACE: i64 = 86_400;

/// `item` with the store's clean-up time set from when the app stops honouring it.
fn expiring(item: Item, honoured_until: i64) -> Item {
    item.expiring_at(honoured_until.saturating_add(EXPIRY_GRACE))
}

/// A patient and the links the consent rule reads (`Repo::patient_with_links`).
#[derive(Debug, Clone)]
pub struct PatientLinks {
    pub patient: Patient,
    /// Organizations (not those that added the patient without their consent there yet).
    pub orgs: Vec<Id>,
    /// Studies the patient is enrolled in.
    pub studies: Vec<Id>,
    pub consents: Vec<Consent>,
}

/// An atomic write under construction, remembering what each precondition protects.
#[derive(Default)]
pub struct Tx {
    writes: Vec<Write>,
    reasons: Vec<Option<String>>,
}

impl Tx {
    pub fn new() -> Self {
        Self::default()
    }
    /// Adds a write; `reason` is the client's message should its precondition fail.
    pub fn push(&mut self, w: Write, reason: Option<String>) {
        self.writes.push(w);
        self.reasons.push(reason);
    }
    pub fn put(&mut self, i: Item, cond: Cond, reason: Option<String>) {
        self.push(put(i, cond), reason);
    }
    pub fn len(&self) -> usize {
        self.writes.len()
    }
    pub fn is_empty(&self) -> bool {
        self.writes.is_empty()
    }
    pub async fn commit(self, repo: &Repo) -> Result<()> {
        if self.writes.is_empty() {
            return Ok(());
        }
        if self.writes.len() > repo.table.max_transact_items() {
            return Err(Error::Conflict(format!(
                "This change touches {} records, more than can be changed at once; remove linked records first.",
                self.writes.len()
            )));
        }
        let reasons = self.reasons;
        repo.transact(self.writes, |i| {
            Error::Conflict(
                reasons
                    .get(i)
                    .cloned()
                    .flatten()
                    .unwrap_or_else(|| "The record was changed by another request; try again.".into()),
            )
        })
        .await
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct RoleLink {
    role: Role,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Pointer {
    id: i64,
    #[serde(default)]
    kind: Option<String>,
    #[serde(default)]
    owner: Option<i64>,
}

/// What an OAuth `client_id` string names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClientRef {
    Client(Id),
    ApiKey { user_id: Id, id: Id },
}

/// A pending authorization code (stored by its hash, single use).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AuthCode {
    pub client_id: String,
    pub user_id: Id,
    pub redirect_uri: String,
    pub code_challenge: String,
    pub scope: String,
    #[serde(default)]
    pub nonce: Option<String>,
    pub expires: i64,
}

/// A refresh token (stored by its hash, rotated on use).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RefreshToken {
    pub client_id: String,
    pub user_id: Id,
    pub scope: String,
    pub expires: i64,
    /// The login it descends from: every token a refresh replaced shares it, so that one used
    /// twice revokes them all. Empty for tokens stored before families (their own family).
    #[serde(default)]
    pub family: String,
}

/// A login session of the built-in issuer (stored by the hash of its id): the signed cookie
/// names it; logging out deletes it.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct Session {
    pub user_id: Id,
    pub expires: i64,
}

/// Failed attempts counted against an account or an address (`THROTTLE#...`).
#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize)]
pub struct Failures {
    pub count: u32,
    /// The last failure (s since the epoch).
    pub last: i64,
}

/// The fields of a new patient.
#[derive(Debug, Clone, Default)]
pub struct NewPatient {
    pub email: String,
    pub name_family: Option<String>,
    pub name_given: Option<String>,
    pub birth_date: Option<String>,
    pub telecom_phone: Option<String>,
    pub identifiers: Vec<(String, String)>,
    pub organization_id: Id,
}

fn ident_taken(system: &str, value: &str) -> Option<String> {
    Some(format!("The external identifier {system}|{value} is already in use by another patient."))
}

impl Repo {
    // ---------------------------------------------------------------- users

    pub async fn user(&self, id: Id) -> Result<Option<User>> {
        self.get(&keys::user(id), A).await
    }

    pub async fn user_by_email(&self, email: &str) -> Result<Option<User>> {
        let p: Option<Pointer> = self.get(&keys::email(email), A).await?;
        match p {
            Some(p) => self.user(p.id).await,
            None => Ok(None),
        }
    }

    pub fn user_item(u: &User) -> Result<Item> {
        Ok(item(keys::user(u.id), A, u)?.with_gsi1("USERS", keys::pad(u.id)))
    }

    /// Adds the writes that create a user and reserve its email.
    pub fn tx_new_user(tx: &mut Tx, u: &User) -> Result<()> {
        tx.put(Self::user_item(u)?, Cond::Absent, None);
        tx.put(
            item(keys::email(&u.email), A, &Pointer { id: u.id, kind: None, owner: None })?,
            Cond::Absent,
            Some(format!("A user with email {} already exists.", u.email)),
        );
        Ok(())
    }

    pub async fn create_user(&self, u: &User) -> Result<()> {
        let mut tx = Tx::new();
        Self::tx_new_user(&mut tx, u)?;
        tx.commit(self).await
    }

    pub async fn save_user(&self, u: &User) -> Result<()> {
        self.table.put(Self::user_item(u)?, Cond::Exists).await.map_err(map_missing)
    }

    pub async fn list_users(&self) -> Result<Vec<User>> {
        self.query_parsed(Query::partition("USERS").on(Index::Gsi1)).await
    }

    // ---------------------------------------------------------------- organizations

    pub async fn org(&self, id: Id) -> Result<Option<Organization>> {
        self.get(&keys::org(id), A).await
    }

    fn org_item(o: &Organization) -> Result<Item> {
        Ok(item(keys::org(o.id), A, o)?.with_gsi1("ORGS", keys::by_name(&o.name, o.id)))
    }

    /// Every organization, ordered by name.
    pub async fn list_orgs(&self) -> Result<Vec<Organization>> {
        self.query_parsed(Query::partition("ORGS").on(Index::Gsi1)).await
    }

    /// The direct children of an organization, ordered by name.
    pub async fn children(&self, id: Id) -> Result<Vec<Organization>> {
        let ids = self.linked_ids(&keys::org(id), "CH#").await?;
        let mut out = Vec::new();
        for c in ids {
            if let Some(o) = self.org(c).await? {
                out.push(o);
            }
        }
        out.sort_by_key(|o| keys::by_name(&o.name, o.id));
        Ok(out)
    }

    /// Creates an organization under its parent, optionally making `manager` its first manager.
    pub async fn create_org(&self, o: &Organization, manager: Option<Id>) -> Result<()> {
        let mut tx = Tx::new();
        tx.put(Self::org_item(o)?, Cond::Absent, None);
        if let Some(parent) = o.part_of {
            tx.push(
                Write::Check { key: crate::ports::Key::new(keys::org(parent), A), cond: Cond::Exists },
                Some(format!("Organization {parent} does not exist.")),
            );
            tx.put(Item::new(keys::org(parent), link("CH#", o.id), json!({})), Cond::Absent, None);
        }
        if let Some(u) = manager {
            Self::tx_set_role(&mut tx, o.id, u, Role::Manager)?;
        }
        tx.commit(self).await
    }

    pub async fn save_org(&self, o: &Organization) -> Result<()> {
        self.table.put(Self::org_item(o)?, Cond::Exists).await.map_err(map_missing)
    }

    /// Deletes an empty organization (no sub-organizations, studies or patients) and its memberships.
    pub async fn delete_org(&self, id: Id) -> Result<()> {
        let Some(o) = self.org(id).await? else { return Err(Error::not_found()) };
        let pk = keys::org(id);
        if !self.linked_ids(&pk, "CH#").await?.is_empty() {
            return Err(Error::Conflict("This organization has sub-organizations; delete them first.".into()));
        }
        if !self.linked_ids(&pk, "S#").await?.is_empty() {
            return Err(Error::Conflict("This organization has studies; delete them first.".into()));
        }
        if !self.linked_ids(&pk, "P#").await?.is_empty() {
            return Err(Error::Conflict("This organization has patients; remove them first.".into()));
        }
        let mut tx = Tx::new();
        tx.push(Write::Delete { key: crate::ports::Key::new(pk.clone(), A), cond: Cond::Exists }, None);
        if let Some(parent) = o.part_of {
            tx.push(del(keys::org(parent), link("CH#", id)), None);
        }
        for (u, _) in self.org_members(id).await? {
            tx.push(del(pk.clone(), link("M#", u)), None);
            tx.push(del(keys::user(u), link("R#", id)), None);
        }
        tx.commit(self).await
    }

    fn tx_set_role(tx: &mut Tx, org: Id, user: Id, role: Role) -> Result<()> {
        let l = RoleLink { role };
        tx.put(item(keys::org(org), link("M#", user), &l)?, Cond::None, None);
        tx.put(item(keys::user(user), link("R#", org), &l)?, Cond::None, None);
        Ok(())
    }

    /// Sets a practitioner's role in an organization; `true` if the membership is new.
    pub async fn set_role(&self, org: Id, user: Id, role: Role) -> Result<bool> {
        let existed = self.role_of(org, user).await?.is_some();
        let mut tx = Tx::new();
        tx.push(
            Write::Check { key: crate::ports::Key::new(keys::org(org), A), cond: Cond::Exists },
            Some("Organization not found.".into()),
        );
        Self::tx_set_role(&mut tx, org, user, role)?;
        tx.commit(self).await?;
        Ok(!existed)
    }

    pub async fn remove_role(&self, org: Id, user: Id) -> Result<bool> {
        let existed = self.role_of(org, user).await?.is_some();
        let mut tx = Tx::new();
        tx.push(del(keys::org(org), link("M#", user)), None);
        tx.push(del(keys::user(user), link("R#", org)), None);
        tx.commit(self).await?;
        Ok(existed)
    }

    pub async fn role_of(&self, org: Id, user: Id) -> Result<Option<Role>> {
        let l: Option<RoleLink> = self.get(&keys::org(org), &link("M#", user)).await?;
        Ok(l.map(|l| l.role))
    }

    pub async fn org_members(&self, org: Id) -> Result<Vec<(Id, Role)>> {
        self.role_links(&keys::org(org), "M#").await
    }

    pub async fn user_roles(&self, user: Id) -> Result<Vec<(Id, Role)>> {
        self.role_links(&keys::user(user), "R#").await
    }

    async fn role_links(&self, pk: &str, prefix: &str) -> Result<Vec<(Id, Role)>> {
        let items = self.query_all(Query::prefix(pk, prefix)).await?;
        let mut out = Vec::new();
        for i in items {
            let id = i.sk.strip_prefix(prefix).and_then(|s| s.parse().ok());
            let l: RoleLink = parse(&i)?;
            if let Some(id) = id {
                out.push((id, l.role));
            }
        }
        Ok(out)
    }

    // ---------------------------------------------------------------- practitioners

    pub async fn practitioner(&self, id: Id) -> Result<Option<Practitioner>> {
        self.get(&keys::pract(id), A).await
    }

    pub fn practitioner_item(p: &Practitioner) -> Result<Item> {
        Ok(item(keys::pract(p.id), A, p)?.with_gsi1("PRACTS", keys::pad(p.id)))
    }

    pub async fn list_practitioners(&self) -> Result<Vec<Practitioner>> {
        self.query_parsed(Query::partition("PRACTS").on(Index::Gsi1)).await
    }

    pub async fn save_practitioner(&self, p: &Practitioner) -> Result<()> {
        self.table.put(Self::practitioner_item(p)?, Cond::Exists).await.map_err(map_missing)
    }

    /// Creates a practitioner profile for a new or existing user, optionally in an organization.
    pub async fn create_practitioner(
        &self,
        user: &User,
        user_is_new: bool,
        p: &Practitioner,
        org: Option<(Id, Role)>,
    ) -> Result<()> {
        let mut tx = Tx::new();
        if user_is_new {
            Self::tx_new_user(&mut tx, user)?;
        } else {
            tx.put(Self::user_item(user)?, Cond::Exists, None);
        }
        tx.put(Self::practitioner_item(p)?, Cond::Absent, None);
        if let Some((o, role)) = org {
            tx.push(
                Write::Check { key: crate::ports::Key::new(keys::org(o), A), cond: Cond::Exists },
                Some("Organization not found.".into()),
            );
            Self::tx_set_role(&mut tx, o, user.id, role)?;
        }
        tx.commit(self).await
    }

    /// Deletes a practitioner profile, its memberships and API keys, and the user unless the user
    /// is a superuser or also a patient. Returns the accounts deleted (the keys, and the user if
    /// it was), for the identity provider to forget.
    pub async fn delete_practitioner(&self, p: &Practitioner) -> Result<Vec<GoneAccount>> {
        let Some(mut user) = self.user(p.user_id).await? else { return Err(Error::not_found()) };
        let mut tx = Tx::new();
        tx.push(del(keys::pract(p.id), A), None);
        for (o, _) in self.user_roles(user.id).await? {
            tx.push(del(keys::org(o), link("M#", user.id)), None);
            tx.push(del(keys::user(user.id), link("R#", o)), None);
        }
        let mut gone = Vec::new();
        for k in self.api_keys(user.id).await? {
            tx.push(del(keys::user(user.id), link("K#", k.id)), None);
            tx.push(del(keys::client_id(&k.client_id), A), None);
            gone.push(GoneAccount::ApiKey(k.client_id));
        }
        if user.is_superuser || user.patient_id.is_some() {
            user.practitioner_id = None;
            if user.user_type == Some(UserType::Practitioner) && user.patient_id.is_some() {
                user.user_type = Some(UserType::Patient);
            }
            tx.put(Self::user_item(&user)?, Cond::Exists, None);
        } else {
            tx.push(del(keys::user(user.id), A), None);
            tx.push(del(keys::email(&user.email), A), None);
            gone.push(GoneAccount::User(user.id));
        }
        tx.commit(self).await?;
        Ok(gone)
    }

    // ---------------------------------------------------------------- patients

    pub async fn patient(&self, id: Id) -> Result<Option<Patient>> {
        self.get(&keys::patient(id), A).await
    }

    fn patient_item(p: &Patient) -> Result<Item> {
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
        let pid = self.next_id("patient", 40001).await?;
        let mut tx = Tx::new();
        let user = User {
            id: self.next_id("user", 10001).await?,
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
            let iid = self.next_id("identifier", 1).await?;
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

    fn tx_link_patient_org(tx: &mut Tx, p: Id, o: Id) {
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
                let iid = self.next_id("identifier", 1).await?;
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

    // ---------------------------------------------------------------- codes

    pub async fn code(&self, id: Id) -> Result<Option<Code>> {
        self.get(&keys::code(id), A).await
    }

    pub async fn code_by_key(&self, system: &str, code: &str) -> Result<Option<Code>> {
        let p: Option<Pointer> = self.get(&keys::code_key(system, code), A).await?;
        match p {
            Some(p) => self.code(p.id).await,
            None => Ok(None),
        }
    }

    pub async fn create_code(&self, c: &Code) -> Result<()> {
        let mut tx = Tx::new();
        tx.put(item(keys::code(c.id), A, c)?.with_gsi1("CODES", keys::by_name(&c.text, c.id)), Cond::Absent, None);
        tx.put(
            item(keys::code_key(&c.coding_system, &c.coding_code), A, &Pointer { id: c.id, kind: None, owner: None })?,
            Cond::Absent,
            Some(format!("Code {}|{} already exists.", c.coding_system, c.coding_code)),
        );
        tx.commit(self).await
    }

    /// Every code, ordered by text.
    pub async fn list_codes(&self) -> Result<Vec<Code>> {
        self.query_parsed(Query::partition("CODES").on(Index::Gsi1)).await
    }

    pub async fn codes(&self, ids: &[Id]) -> Result<Vec<Code>> {
        let mut out = Vec::new();
        for id in ids {
            if let Some(c) = self.code(*id).await? {
                out.push(c);
            }
        }
        Ok(out)
    }

    // ---------------------------------------------------------------- data sources

    pub async fn data_source(&self, id: Id) -> Result<Option<DataSource>> {
        self.get(&keys::ds(id), A).await
    }

    fn ds_item(d: &DataSource) -> Result<Item> {
        Ok(item(keys::ds(d.id), A, d)?.with_gsi1("DSS", keys::by_name(&d.name, d.id)))
    }

    pub async fn list_data_sources(&self) -> Result<Vec<DataSource>> {
        self.query_parsed(Query::partition("DSS").on(Index::Gsi1)).await
    }

    pub async fn create_data_source(&self, d: &DataSource) -> Result<()> {
        self.table.put(Self::ds_item(d)?, Cond::Absent).await.map_err(Into::into)
    }

    pub async fn save_data_source(&self, d: &DataSource) -> Result<()> {
        self.table.put(Self::ds_item(d)?, Cond::Exists).await.map_err(map_missing)
    }

    pub async fn delete_data_source(&self, id: Id) -> Result<()> {
        let mut tx = Tx::new();
        tx.push(
            Write::Delete { key: crate::ports::Key::new(keys::ds(id), A), cond: Cond::Exists },
            Some("Not found.".into()),
        );
        for c in self.linked_ids(&keys::ds(id), "C#").await? {
            tx.push(del(keys::ds(id), link("C#", c)), None);
        }
        tx.commit(self).await
    }

    pub async fn supported_scope_ids(&self, ds: Id) -> Result<Vec<Id>> {
        self.linked_ids(&keys::ds(ds), "C#").await
    }

    /// Adds (`true`) or removes (`false`) a link item `pk / {prefix}{id}`; the owner must exist.
    pub async fn set_link(&self, owner_pk: &str, prefix: &str, id: Id, present: bool) -> Result<()> {
        let mut tx = Tx::new();
        tx.push(
            Write::Check { key: crate::ports::Key::new(owner_pk, A), cond: Cond::Exists },
            Some("Not found.".into()),
        );
        if present {
            tx.put(Item::new(owner_pk, link(prefix, id), json!({})), Cond::None, None);
        } else {
            tx.push(del(owner_pk, link(prefix, id)), None);
        }
        tx.commit(self).await
    }

    // ---------------------------------------------------------------- clients

    pub async fn client(&self, id: Id) -> Result<Option<Client>> {
        self.get(&keys::client(id), A).await
    }

    fn client_item(c: &Client) -> Result<Item> {
        Ok(item(keys::client(c.id), A, c)?.with_gsi1("CLIENTS", keys::pad(c.id)))
    }

    pub async fn list_clients(&self) -> Result<Vec<Client>> {
        self.query_parsed(Query::partition("CLIENTS").on(Index::Gsi1)).await
    }

    pub async fn create_client(&self, c: &Client) -> Result<()> {
        let mut tx = Tx::new();
        tx.put(Self::client_item(c)?, Cond::Absent, None);
        tx.put(
            item(keys::client_id(&c.client_id), A, &Pointer { id: c.id, kind: Some("client".into()), owner: None })?,
            Cond::Absent,
            Some(format!("A client with client id {} already exists.", c.client_id)),
        );
        tx.commit(self).await
    }

    pub async fn save_client(&self, old: &Client, c: &Client) -> Result<()> {
        let mut tx = Tx::new();
        tx.put(Self::client_item(c)?, Cond::Exists, Some("Not found.".into()));
        if old.client_id != c.client_id {
            tx.push(del(keys::client_id(&old.client_id), A), None);
            tx.put(
                item(
                    keys::client_id(&c.client_id),
                    A,
                    &Pointer { id: c.id, kind: Some("client".into()), owner: None },
                )?,
                Cond::Absent,
                Some(format!("A client with client id {} already exists.", c.client_id)),
            );
        }
        tx.commit(self).await
    }

    pub async fn delete_client(&self, c: &Client) -> Result<()> {
        let mut tx = Tx::new();
        tx.push(del(keys::client(c.id), A), None);
        tx.push(del(keys::client_id(&c.client_id), A), None);
        for d in self.linked_ids(&keys::client(c.id), "D#").await? {
            tx.push(del(keys::client(c.id), link("D#", d)), None);
        }
        tx.commit(self).await
    }

    pub async fn client_ref(&self, client_id: &str) -> Result<Option<ClientRef>> {
        let p: Option<Pointer> = self.get(&keys::client_id(client_id), A).await?;
        Ok(p.and_then(|p| match p.kind.as_deref() {
            Some("client") => Some(ClientRef::Client(p.id)),
            Some("apikey") => p.owner.map(|u| ClientRef::ApiKey { user_id: u, id: p.id }),
            _ => None,
        }))
    }

    pub async fn client_by_client_id(&self, client_id: &str) -> Result<Option<Client>> {
        match self.client_ref(client_id).await? {
            Some(ClientRef::Client(id)) => self.client(id).await,
            _ => Ok(None),
        }
    }

    // ---------------------------------------------------------------- API keys

    pub async fn api_keys(&self, user: Id) -> Result<Vec<ApiKey>> {
        self.query_parsed(Query::prefix(keys::user(user), "K#")).await
    }

    pub async fn api_key(&self, user: Id, id: Id) -> Result<Option<ApiKey>> {
        self.get(&keys::user(user), &link("K#", id)).await
    }

    pub async fn create_api_key(&self, k: &ApiKey) -> Result<()> {
        let mut tx = Tx::new();
        tx.put(item(keys::user(k.user_id), link("K#", k.id), k)?, Cond::Absent, None);
        tx.put(
            item(
                keys::client_id(&k.client_id),
                A,
                &Pointer { id: k.id, kind: Some("apikey".into()), owner: Some(k.user_id) },
            )?,
            Cond::Absent,
            None,
        );
        tx.commit(self).await
    }

    pub async fn save_api_key(&self, k: &ApiKey) -> Result<()> {
        self.table.put(item(keys::user(k.user_id), link("K#", k.id), k)?, Cond::Exists).await.map_err(map_missing)
    }

    pub async fn delete_api_key(&self, k: &ApiKey) -> Result<()> {
        let mut tx = Tx::new();
        tx.push(del(keys::user(k.user_id), link("K#", k.id)), None);
        tx.push(del(keys::client_id(&k.client_id), A), None);
        tx.commit(self).await
    }

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
            let rm: Vec<(Id, Id, Id)> = chunk.iter().map(|p| (*p, s, code)).collect();
            self.write_consents(&[], &rm).await?;
        }
        Ok(())
    }

    // ---------------------------------------------------------------- consents

    pub async fn consents(&self, p: Id) -> Result<Vec<Consent>> {
        self.query_parsed(Query::prefix(keys::patient(p), "CONSENT#")).await
    }

    /// Records decisions and removals atomically.
    pub async fn write_consents(&self, set: &[Consent], remove: &[(Id, Id, Id)]) -> Result<()> {
        let mut tx = Tx::new();
        for c in set {
            tx.put(item(keys::patient(c.patient_id), keys::consent(c.study_id, c.code_id), c)?, Cond::None, None);
        }
        for (p, s, code) in remove {
            tx.push(del(keys::patient(*p), keys::consent(*s, *code)), None);
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

    // ---------------------------------------------------------------- OAuth grants

    pub async fn put_auth_code(&self, hash: &str, c: &AuthCode) -> Result<()> {
        self.table.put(expiring(item(keys::auth_code(hash), A, c)?, c.expires), Cond::Absent).await.map_err(Into::into)
    }

    /// Takes an authorization code: at most one caller ever gets it.
    pub async fn take_auth_code(&self, hash: &str) -> Result<Option<AuthCode>> {
        self.take(&keys::auth_code(hash)).await
    }

    /// Stores a refresh token and its place in its family.
    pub async fn put_refresh_in_family(&self, hash: &str, r: &RefreshToken) -> Result<()> {
        let mut tx = Tx::new();
        tx.put(expiring(item(keys::refresh(hash), A, r)?, r.expires), Cond::Absent, None);
        let member = Item::new(format!("RFAM#{}", r.family), hash, json!({"expires": r.expires}));
        tx.put(expiring(member, r.expires), Cond::None, None);
        tx.commit(self).await
    }

    /// Takes a refresh token (at most one caller gets it) and leaves a tombstone under its hash,
    /// so that a second use can be told from an unknown token.
    pub async fn take_refresh(&self, hash: &str) -> Result<Option<RefreshToken>> {
        let taken: Option<RefreshToken> = self.take(&keys::refresh(hash)).await?;
        if let Some(t) = &taken {
            let family = if t.family.is_empty() { hash } else { t.family.as_str() };
            let tomb = json!({"family": family, "expires": t.expires});
            self.table.put(expiring(Item::new(format!("RUSED#{hash}"), A, tomb), t.expires), Cond::None).await?;
            self.table.delete(&crate::ports::Key::new(format!("RFAM#{family}"), hash), Cond::None).await?;
        }
        Ok(taken)
    }

    /// The family of a refresh token already used, if it is one.
    pub async fn used_refresh_family(&self, hash: &str) -> Result<Option<String>> {
        let Some(i) = self.table.get(&crate::ports::Key::new(format!("RUSED#{hash}"), A)).await? else {
            return Ok(None);
        };
        Ok(i.data["family"].as_str().map(str::to_string))
    }

    /// Deletes every live refresh token of a family; gives how many.
    pub async fn revoke_refresh_family(&self, family: &str) -> Result<usize> {
        let live = self.query_all(Query::prefix(format!("RFAM#{family}"), "")).await?;
        for i in &live {
            self.table.delete(&crate::ports::Key::new(keys::refresh(&i.sk), A), Cond::None).await?;
            self.table.delete(&crate::ports::Key::new(&i.pk, &i.sk), Cond::None).await?;
        }
        Ok(live.len())
    }

    // ---------------------------------------------------------------- login sessions

    pub async fn put_session(&self, hash: &str, s: &Session) -> Result<()> {
        self.table
            .put(expiring(item(format!("SESSION#{hash}"), A, s)?, s.expires), Cond::Absent)
            .await
            .map_err(Into::into)
    }

    pub async fn session(&self, hash: &str) -> Result<Option<Session>> {
        self.get(&format!("SESSION#{hash}"), A).await
    }

    pub async fn delete_session(&self, hash: &str) -> Result<()> {
        self.table.delete(&crate::ports::Key::new(format!("SESSION#{hash}"), A), Cond::None).await.map_err(Into::into)
    }

    // ---------------------------------------------------------------- failed attempts

    pub async fn failures(&self, key: &str) -> Result<Failures> {
        Ok(self.get(&format!("THROTTLE#{key}"), A).await?.unwrap_or_default())
    }

    /// Counts one more failure (a lost race between two failures counts one: enough to slow down).
    pub async fn add_failure(&self, key: &str, now: i64, forget_after: i64) -> Result<Failures> {
        let mut f = self.failures(key).await?;
        f.count = if now - f.last > forget_after { 1 } else { f.count.saturating_add(1) };
        f.last = now;
        self.table.put(expiring(item(format!("THROTTLE#{key}"), A, &f)?, now + forget_after), Cond::None).await?;
        Ok(f)
    }

    pub async fn clear_failures(&self, key: &str) -> Result<()> {
        self.table.delete(&crate::ports::Key::new(format!("THROTTLE#{key}"), A), Cond::None).await.map_err(Into::into)
    }

    /// Reads and deletes an item in one step: of concurrent takers, at most one gets it.
    async fn take<T: serde::de::DeserializeOwned>(&self, pk: &str) -> Result<Option<T>> {
        let key = crate::ports::Key::new(pk, A);
        let Some(i) = self.table.get(&key).await? else { return Ok(None) };
        match self.table.delete(&key, Cond::Version(i.version)).await {
            Ok(()) => Ok(Some(parse(&i)?)),
            Err(crate::ports::StoreError::ConditionFailed { .. }) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }
}

/// A patient-organization link written by `add_patient_org` and not yet established.
fn is_added(data: &serde_json::Value) -> bool {
    data["added"] == json!(true)
}

fn map_missing(e: crate::ports::StoreError) -> Error {
    match e {
        crate::ports::StoreError::ConditionFailed { .. } => Error::not_found(),
        other => other.into(),
    }
}

impl Repo {
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
