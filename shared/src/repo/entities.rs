//! What the entity modules share: `Tx` (one atomic write), the stored records of links and
//! grants, and small helpers. The reads and writes are in `people`, `patients`, `catalog`,
//! `studies` and `grants`.

use serde::{Deserialize, Serialize};
use serde_json::json;

use super::{Repo, put};
use crate::error::{Error, Result};
use crate::model::*;
use crate::ports::{Cond, Item, Write};

/// How long after the app stops honouring an item the store may delete it: a day, so that no
/// answer depends on when the store's clean-up runs.
pub(super) const EXPIRY_GRACE: i64 = 86_400;

/// `item` with the store's clean-up time set from when the app stops honouring it.
pub(super) fn expiring(item: Item, honoured_until: i64) -> Item {
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
pub(super) struct RoleLink {
    pub(super) role: Role,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub(super) struct Pointer {
    pub(super) id: i64,
    #[serde(default)]
    pub(super) kind: Option<String>,
    #[serde(default)]
    pub(super) owner: Option<i64>,
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

pub(super) fn ident_taken(system: &str, value: &str) -> Option<String> {
    Some(format!("The external identifier {system}|{value} is already in use by another patient."))
}

/// A patient-organization link written by `add_patient_org` and not yet established.
pub(super) fn is_added(data: &serde_json::Value) -> bool {
    data["added"] == json!(true)
}

pub(super) fn map_missing(e: crate::ports::StoreError) -> Error {
    match e {
        crate::ports::StoreError::ConditionFailed { .. } => Error::not_found(),
        other => other.into(),
    }
}
