//! `/api/v1/organizations`.

use serde_json::{Value, json};

use super::input::{Body, text};
use super::{load_org, org_view, practitioner_only};
use crate::access;
use crate::domain::Caller;
use crate::domain::views::*;
use crate::error::{Error, Result};
use crate::model::*;
use crate::repo::Repo;

pub async fn list(repo: &Repo, c: &Caller, part_of: Option<Id>) -> Result<Vec<Value>> {
    let orgs = match part_of {
        Some(p) => repo.children(p).await?,
        None => repo.list_orgs().await?,
    };
    Ok(orgs.iter().map(|o| to_value(&OrgView::new(o, access::role_label(c, o.id)))).collect())
}

pub async fn get(repo: &Repo, c: &Caller, id: Id) -> Result<Value> {
    Ok(to_value(&org_view(repo, c, id).await?))
}

pub fn types() -> Value {
    Value::Object(ORGANIZATION_TYPES.iter().map(|(k, v)| (k.to_string(), json!(v))).collect())
}

fn check_type(t: &str) -> Result<()> {
    if t != "root" && ORGANIZATION_TYPES.iter().any(|(k, _)| *k == t) {
        Ok(())
    } else {
        Err(Error::bad(format!("\"{t}\" is not a valid organization type.")))
    }
}

/// A new organization as the admin API takes it (`name`, `type`, `partOf`), checked once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewOrganization {
    pub name: String,
    pub org_type: String,
    /// The parent; `None` for a top-level organization (`partOf` absent, null or 0).
    pub parent: Option<Id>,
}

/// The parent a body names (`partOf`): malformed is a 400, never "top level".
fn parent_of(body: &Body) -> Result<Option<Id>> {
    Ok(body.opt_id("part_of")?.filter(|p| *p != ROOT_ORG_ID))
}

impl TryFrom<&Body> for NewOrganization {
    type Error = Error;
    fn try_from(body: &Body) -> Result<Self> {
        let parent = parent_of(body)?;
        let name = text(body.req_str("name")?, "name", 200)?;
        let org_type = body.req_str("type")?;
        check_type(&org_type)?;
        Ok(Self { name, org_type, parent })
    }
}

pub async fn create(repo: &Repo, c: &Caller, body: &Body) -> Result<Value> {
    // Who may create depends on where: asked before the rest of the body is judged.
    let parent = parent_of(body)?;
    if !access::may_create_org(c, parent) {
        return Err(Error::Forbidden(match parent {
            None => "You don't have permission to create a top-level organization.".into(),
            Some(_) => "You do not have permission to perform this action.".into(),
        }));
    }
    let new = NewOrganization::try_from(body)?;
    let part_of = new.parent.unwrap_or(ROOT_ORG_ID);
    if repo.org(part_of).await?.is_none() {
        return Err(Error::bad(format!("Organization {part_of} (partOf) does not exist.")));
    }
    let id = repo.next_id("organization").await?;
    let o = Organization { id, name: new.name, org_type: new.org_type, part_of: Some(part_of) };
    // The creator of a sub-organization becomes its manager (a superuser needs no membership).
    let manager = access::manages_what_they_create(c).then(|| c.id());
    repo.create_org(&o, manager).await?;
    let role = if manager.is_some() { Some("manager") } else { access::role_label(c, o.id) };
    Ok(to_value(&OrgView::new(&o, role)))
}

pub async fn update(repo: &Repo, c: &Caller, id: Id, body: &Body) -> Result<Value> {
    let mut o = load_org(repo, id).await?;
    if !access::may_edit_org(c, o.id, o.part_of) {
        return Err(Error::forbidden());
    }
    if o.part_of.is_none() {
        return Err(Error::bad("The root organization cannot be changed."));
    }
    if let Some(n) = body.opt_str("name")? {
        o.name = text(n, "name", 200)?;
    }
    if let Some(t) = body.opt_str("type")? {
        check_type(&t)?;
        o.org_type = t;
    }
    if let Some(p) = body.opt_id("part_of")?
        && Some(p) != o.part_of
    {
        return Err(Error::bad("partOf cannot be changed: organizations do not move in the tree."));
    }
    repo.save_org(&o).await?;
    Ok(to_value(&OrgView::new(&o, access::role_label(c, o.id))))
}

pub async fn delete(repo: &Repo, c: &Caller, id: Id) -> Result<()> {
    let o = load_org(repo, id).await?;
    if o.part_of.is_none() {
        return Err(Error::forbidden());
    }
    if !access::may_edit_org(c, o.id, o.part_of) {
        return Err(Error::forbidden());
    }
    repo.delete_org(id).await
}

pub async fn tree(repo: &Repo, c: &Caller, id: Id) -> Result<Value> {
    let root = load_org(repo, id).await?;
    // Breadth-first, bounded by the number of organizations (no cycles possible: parents never change).
    async fn build(repo: &Repo, c: &Caller, o: &Organization, depth: usize) -> Result<OrgView> {
        let mut v = OrgView::new(o, access::role_label(c, o.id));
        if depth < 32 {
            for child in repo.children(o.id).await? {
                v.children.push(Box::pin(build(repo, c, &child, depth + 1)).await?);
            }
        }
        Ok(v)
    }
    Ok(to_value(&build(repo, c, &root, 0).await?))
}

/// `GET /organizations/{id}/users`: the practitioners of an organization and their roles.
pub async fn users(repo: &Repo, c: &Caller, id: Id) -> Result<Vec<Value>> {
    practitioner_only(c)?;
    load_org(repo, id).await?;
    let mut rows = Vec::new();
    for (u, role) in repo.org_members(id).await? {
        if let Some(user) = repo.user(u).await? {
            rows.push((user, role));
        }
    }
    rows.sort_by(|a, b| a.0.last_name.cmp(&b.0.last_name).then(a.0.id.cmp(&b.0.id)));
    Ok(rows
        .into_iter()
        .map(|(u, role)| json!({"id": u.id, "email": u.email, "firstName": u.first_name, "lastName": u.last_name, "role": role.as_str()}))
        .collect())
}

/// `POST /organizations/{id}/user`: add a practitioner or change their role. `Ok((json, created))`.
pub async fn add_user(repo: &Repo, c: &Caller, id: Id, body: &Body) -> Result<(Value, bool)> {
    let o = load_org(repo, id).await?;
    if o.part_of.is_none() || !access::may_manage_members(c, id) {
        return Err(Error::forbidden());
    }
    let user_id = body.opt_id("jhe_user_id")?.ok_or_else(|| Error::bad("jheUserId is required."))?;
    if !access::may_change_membership_of(c, user_id) {
        return Err(Error::Forbidden("You cannot change your own role.".into()));
    }
    let role_s = match body.opt_str("organization_partitioner_role")? {
        Some(r) => Some(r),
        None => body.opt_str("role")?,
    };
    let role_s = role_s.unwrap_or_else(|| "member".into());
    let role = Role::parse(&role_s)
        .ok_or_else(|| Error::bad(format!("\"{role_s}\" is not a valid role (manager, member, viewer).")))?;
    let user = repo.user(user_id).await?.ok_or_else(|| Error::NotFound("User not found.".into()))?;
    if !user.is_practitioner() {
        return Err(Error::NotFound("Practitioner not found.".into()));
    }
    let created = repo.set_role(id, user_id, role).await?;
    let practitioner = match user.practitioner_id {
        Some(p) => repo.practitioner(p).await?,
        None => None,
    };
    Ok((
        json!({
            "id": user.id,
            "organization": to_value(&OrgView::new(&o, access::role_label(c, o.id))),
            "practitioner": {
                "id": practitioner.as_ref().map(|p| p.id), "jheUserId": user.id,
                "nameFamily": practitioner.as_ref().and_then(|p| p.name_family.clone()),
                "nameGiven": practitioner.as_ref().and_then(|p| p.name_given.clone()),
                "telecomEmail": user.email,
            },
            "role": role.as_str(),
        }),
        created,
    ))
}

pub async fn remove_user(repo: &Repo, c: &Caller, id: Id, body: &Body) -> Result<()> {
    let o = load_org(repo, id).await?;
    if o.part_of.is_none() || !access::may_manage_members(c, id) {
        return Err(Error::forbidden());
    }
    let user_id = body.opt_id("jhe_user_id")?.ok_or_else(|| Error::bad("jheUserId is required."))?;
    if !access::may_change_membership_of(c, user_id) {
        return Err(Error::Forbidden("You cannot remove yourself from an organization.".into()));
    }
    if !repo.remove_role(id, user_id).await? {
        return Err(Error::NotFound("This practitioner is not in the organization.".into()));
    }
    Ok(())
}

/// `GET /organizations/{id}/studies`: for practitioners of the organization.
pub async fn studies(repo: &Repo, c: &Caller, id: Id) -> Result<Vec<Value>> {
    load_org(repo, id).await?;
    if !access::is_in_org(c, id) {
        return Err(Error::forbidden());
    }
    let mut studies = repo.studies(&repo.org_study_ids(id).await?).await?;
    studies.sort_by(|a, b| a.name.to_lowercase().cmp(&b.name.to_lowercase()).then(a.id.cmp(&b.id)));
    Ok(studies.iter().map(|s| to_value(&StudyFlat::from(s))).collect())
}
