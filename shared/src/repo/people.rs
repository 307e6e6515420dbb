//! Users, organizations with their members and roles, practitioners.

use serde_json::json;

use super::entities::*;
use super::keys::{self, A, link};
use super::{Repo, del, item, parse};
use crate::error::{Error, Result};
use crate::model::*;
use crate::ports::{Cond, Index, Item, Query, Write};

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

    pub(super) fn org_item(o: &Organization) -> Result<Item> {
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

    pub(super) fn tx_set_role(tx: &mut Tx, org: Id, user: Id, role: Role) -> Result<()> {
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

    pub(super) async fn role_links(&self, pk: &str, prefix: &str) -> Result<Vec<(Id, Role)>> {
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
}
