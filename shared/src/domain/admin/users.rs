//! `/api/v1/users` and `/api/v1/practitioners`.

use serde_json::{Value, json};
use time::OffsetDateTime;

use super::input::{Body, text, valid_email};
use super::{load_org, patient_view, practitioner_only, superuser_only};
use crate::access;
use crate::domain::Caller;
use crate::domain::views::*;
use crate::error::{Error, Result};
use crate::model::*;
use crate::repo::Repo;

fn user_type_label(u: &User) -> Option<&'static str> {
    match u.user_type {
        Some(UserType::Patient) => Some("patient"),
        Some(UserType::Practitioner) => Some("practitioner"),
        None if u.practitioner_id.is_some() || u.is_superuser => Some("practitioner"),
        None if u.patient_id.is_some() => Some("patient"),
        None => None,
    }
}

pub async fn user_json(repo: &Repo, u: &User) -> Result<Value> {
    let patient = match u.patient_id {
        Some(p) => match repo.patient(p).await? {
            Some(p) => to_value(&patient_view(repo, &p).await?),
            None => Value::Null,
        },
        None => Value::Null,
    };
    Ok(json!({
        "id": u.id, "email": u.email, "firstName": u.first_name, "lastName": u.last_name,
        "patient": patient, "userType": user_type_label(u), "isSuperuser": u.is_superuser,
    }))
}

/// `GET /users/profile`: the caller.
pub async fn profile(repo: &Repo, c: &Caller) -> Result<Value> {
    let mut v = user_json(repo, &c.user).await?;
    v["settings"] = Value::Object(c.user.settings.clone());
    Ok(v)
}

/// `GET /users`: superusers only (upstream lists every user's email to anyone).
pub async fn list(repo: &Repo, c: &Caller, email: Option<&str>) -> Result<Vec<Value>> {
    superuser_only(c)?;
    let mut users = repo.list_users().await?;
    if let Some(e) = email {
        users.retain(|u| u.email.eq_ignore_ascii_case(e));
    }
    users.sort_by(|a, b| a.last_name.cmp(&b.last_name).then(a.id.cmp(&b.id)));
    let mut out = Vec::new();
    for u in &users {
        out.push(user_json(repo, u).await?);
    }
    Ok(out)
}

/// `GET /users/{id}`: oneself, or any user for a superuser.
pub async fn get(repo: &Repo, c: &Caller, id: Id) -> Result<Value> {
    if !access::may_read_user(c, id) {
        return Err(Error::forbidden());
    }
    let u = repo.user(id).await?.ok_or_else(Error::not_found)?;
    user_json(repo, &u).await
}

/// `PATCH/PUT /users/{id}`: one's own names only. Email, type and privileges are never writable here.
pub async fn update(repo: &Repo, c: &Caller, id: Id, body: &Body) -> Result<Value> {
    if !access::may_edit_user(c, id) {
        return Err(Error::forbidden());
    }
    body.only(&["first_name", "last_name", "id"])?;
    if body.opt_id("id")?.is_some_and(|i| i != id) {
        return Err(Error::bad("id does not match the path."));
    }
    let mut u = repo.user(id).await?.ok_or_else(Error::not_found)?;
    if let Some(f) = body.opt_str("first_name")? {
        u.first_name = text(f, "firstName", 150)?;
    }
    if let Some(l) = body.opt_str("last_name")? {
        u.last_name = text(l, "lastName", 150)?;
    }
    repo.save_user(&u).await?;
    user_json(repo, &u).await
}

/// `GET /users/organizations`: the organizations where the caller holds a role, with that role.
pub async fn organizations(repo: &Repo, c: &Caller) -> Result<Vec<Value>> {
    let mut out = Vec::new();
    for org in access::searched_orgs(c) {
        if let Some(o) = repo.org(org).await? {
            out.push(to_value(&OrgView::new(&o, access::role_label(c, o.id))));
        }
    }
    Ok(out)
}

/// `GET /users/search_by_email?email=`: a practitioner account by exact email (to add them to an
/// organization). Patients' accounts are not found this way.
pub async fn search_by_email(repo: &Repo, c: &Caller, email: Option<&str>) -> Result<Value> {
    practitioner_only(c)?;
    let email = email.filter(|e| !e.is_empty()).ok_or_else(|| Error::bad("email is required."))?;
    match repo.user_by_email(email).await? {
        Some(u) if u.is_practitioner() => Ok(json!({
            "id": u.id, "email": u.email, "firstName": u.first_name, "lastName": u.last_name,
            "userType": user_type_label(&u), "patient": null, "isSuperuser": u.is_superuser,
        })),
        _ => Err(Error::NotFound("No practitioner with this email.".into())),
    }
}

// ------------------------------------------------------------------- practitioners

async fn practitioner_view(repo: &Repo, p: &Practitioner) -> Result<PractitionerView> {
    let user = repo.user(p.user_id).await?;
    let mut organizations = Vec::new();
    for (o, role) in repo.user_roles(p.user_id).await? {
        if let Some(org) = repo.org(o).await? {
            organizations.push(OrgView::new(&org, Some(role.as_str())));
        }
    }
    Ok(PractitionerView {
        id: p.id,
        jhe_user_id: p.user_id,
        name_family: p.name_family.clone(),
        name_given: p.name_given.clone(),
        telecom_email: user.map(|u| u.email),
        organizations,
    })
}

pub async fn list_practitioners(repo: &Repo, c: &Caller) -> Result<Vec<Value>> {
    superuser_only(c)?;
    let mut out = Vec::new();
    for p in repo.list_practitioners().await? {
        out.push(to_value(&practitioner_view(repo, &p).await?));
    }
    Ok(out)
}

pub async fn get_practitioner(repo: &Repo, c: &Caller, id: Id) -> Result<Value> {
    superuser_only(c)?;
    let p = repo.practitioner(id).await?.ok_or_else(Error::not_found)?;
    Ok(to_value(&practitioner_view(repo, &p).await?))
}

/// Creates a practitioner account (or gives an existing user a practitioner profile).
pub async fn create_practitioner(repo: &Repo, c: &Caller, body: &Body) -> Result<Value> {
    superuser_only(c)?;
    let email = body.opt_str("telecom_email")?.map(|e| e.trim().to_lowercase()).filter(|e| !e.is_empty());
    let email = email.ok_or_else(|| Error::bad("Email is required to create a practitioner."))?;
    if !valid_email(&email) {
        return Err(Error::bad("Enter a valid email address."));
    }
    let org = match body.opt_id("organization_id")? {
        Some(o) => {
            load_org(repo, o).await.map_err(|_| Error::bad("Organization not found."))?;
            Some((o, Role::Member))
        }
        None => None,
    };
    let name_family = body.opt_str("name_family")?;
    let name_given = body.opt_str("name_given")?;
    let (mut user, is_new) = match repo.user_by_email(&email).await? {
        Some(u) if u.practitioner_id.is_some() => {
            return Err(Error::bad("A practitioner with this email already exists."));
        }
        Some(u) => (u, false),
        None => (
            User {
                id: repo.next_id("user").await?,
                email: email.clone(),
                first_name: name_given.clone().unwrap_or_default(),
                last_name: name_family.clone().unwrap_or_default(),
                password_hash: None,
                user_type: Some(UserType::Practitioner),
                is_superuser: false,
                patient_id: None,
                practitioner_id: None,
                identifier: None,
                date_joined: OffsetDateTime::now_utc(),
                last_login: None,
                settings: Default::default(),
            },
            true,
        ),
    };
    let p = Practitioner { id: repo.next_id("practitioner").await?, user_id: user.id, name_family, name_given };
    user.practitioner_id = Some(p.id);
    if user.user_type.is_none() {
        user.user_type = Some(UserType::Practitioner);
    }
    repo.create_practitioner(&user, is_new, &p, org).await?;
    Ok(to_value(&practitioner_view(repo, &p).await?))
}

pub async fn update_practitioner(repo: &Repo, c: &Caller, id: Id, body: &Body) -> Result<Value> {
    superuser_only(c)?;
    let mut p = repo.practitioner(id).await?.ok_or_else(Error::not_found)?;
    if body.get("name_family").is_some() {
        p.name_family = body.opt_str("name_family")?;
    }
    if body.get("name_given").is_some() {
        p.name_given = body.opt_str("name_given")?;
    }
    repo.save_practitioner(&p).await?;
    Ok(to_value(&practitioner_view(repo, &p).await?))
}

/// Returns the accounts deleted, for the identity provider to forget.
pub async fn delete_practitioner(repo: &Repo, c: &Caller, id: Id) -> Result<Vec<GoneAccount>> {
    superuser_only(c)?;
    let p = repo.practitioner(id).await?.ok_or_else(Error::not_found)?;
    if p.user_id == c.id() {
        return Err(Error::bad("You cannot delete your own practitioner account."));
    }
    repo.delete_practitioner(&p).await
}
