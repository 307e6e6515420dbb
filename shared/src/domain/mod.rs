//! The domain: entities, the caller, and the admin services that the HTTP routers call.
//!
//! Must not depend on: axum, lambda_http, aws_sdk_*.

pub mod admin;
pub mod audit;
pub mod facts;
pub mod ingest;
pub mod observation;
pub mod reads;
pub mod stored;

pub mod views;

use std::collections::BTreeMap;

use crate::model::{Id, Role, User};

/// Who is making a request, resolved from a verified token.
#[derive(Debug, Clone)]
pub struct Caller {
    pub user: User,
    /// The caller's role in each organization where they hold one.
    pub roles: BTreeMap<Id, Role>,
    /// The OAuth client the token was issued to.
    pub client_id: String,
}

impl Caller {
    pub fn id(&self) -> Id {
        self.user.id
    }
    pub fn is_superuser(&self) -> bool {
        self.user.is_superuser
    }
    pub fn patient_id(&self) -> Option<Id> {
        self.user.patient_id
    }
    /// A practitioner (or superuser) acting as such; a user who is only a patient is not.
    pub fn is_practitioner(&self) -> bool {
        self.user.is_practitioner()
    }
    pub fn role_in(&self, org: Id) -> Option<Role> {
        self.roles.get(&org).copied()
    }
}
