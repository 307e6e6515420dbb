//! The entities of the exchange, as stored (snake_case JSON inside the table's items), and the
//! records the ports carry (audit records, token responses). It sits below the ports and the
//! domain, and imports neither.
//!
//! Must not depend on: the web framework, SDKs, storage engines.

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

pub type Id = i64;

/// The synthetic root of the organization tree ("top level" = child of ROOT).
pub const ROOT_ORG_ID: Id = 0;

/// The longest identifier system or value, in bytes. An identifier is stored as a unique key
/// (`OBSKEY#{system}|{value}`, `PATIDENT#...`), and the stores take keys of at most 1,024 bytes.
pub const MAX_IDENTIFIER_PART: usize = 500;

/// Whether an identifier (system, value) can be stored and looked up: each part non-empty, at most
/// [`MAX_IDENTIFIER_PART`] bytes, without control characters. The one rule for observation and
/// patient identifiers; the message names what is wrong.
pub fn check_identifier(system: &str, value: &str) -> Result<(), String> {
    for (what, part) in [("system", system), ("value", value)] {
        if part.is_empty() {
            return Err(format!("An identifier's {what} must not be empty."));
        }
        if part.len() > MAX_IDENTIFIER_PART {
            return Err(format!(
                "An identifier's {what} is {} bytes long; at most {MAX_IDENTIFIER_PART} are accepted.",
                part.len()
            ));
        }
        if part.chars().any(char::is_control) {
            return Err(format!(
                "An identifier's {what} must not contain control characters (such as NUL or a line break)."
            ));
        }
    }
    Ok(())
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum UserType {
    Patient,
    Practitioner,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct User {
    pub id: Id,
    pub email: String,
    #[serde(default)]
    pub first_name: String,
    #[serde(default)]
    pub last_name: String,
    /// argon2 PHC string; `None` for accounts that cannot log in with a password.
    #[serde(default)]
    pub password_hash: Option<String>,
    #[serde(default)]
    pub user_type: Option<UserType>,
    #[serde(default)]
    pub is_superuser: bool,
    #[serde(default)]
    pub patient_id: Option<Id>,
    #[serde(default)]
    pub practitioner_id: Option<Id>,
    #[serde(default)]
    pub identifier: Option<String>,
    #[serde(with = "time::serde::rfc3339")]
    pub date_joined: OffsetDateTime,
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub last_login: Option<OffsetDateTime>,
    /// Per-user UI state (current organization/study), as upstream's `Practitioner.settings`.
    #[serde(default)]
    pub settings: serde_json::Map<String, serde_json::Value>,
}

impl User {
    pub fn is_patient(&self) -> bool {
        self.user_type == Some(UserType::Patient) || self.patient_id.is_some()
    }
    pub fn is_practitioner(&self) -> bool {
        self.is_superuser || self.user_type == Some(UserType::Practitioner) || self.practitioner_id.is_some()
    }
}

/// Organization type codes and their labels, as upstream's `ORGANIZATION_TYPES`.
pub const ORGANIZATION_TYPES: &[(&str, &str)] = &[
    ("root", "ROOT"),
    ("prov", "Healthcare Provider"),
    ("dept", "Hospital Department"),
    ("team", "Organizational team"),
    ("govt", "Government"),
    ("ins", "Insurance Company"),
    ("pay", "Payer"),
    ("edu", "Educational Institute"),
    ("reli", "Religious Institution"),
    ("crs", "Clinical Research Sponsor"),
    ("cg", "Community Group"),
    ("bus", "Non-Healthcare Business or Corporation"),
    ("other", "Other"),
    ("laboratory", "Laboratory"),
    ("imaging", "Imaging Center"),
    ("pharmacy", "Pharmacy"),
    ("health-information-network", "Health Information Network"),
    ("health-data-aggregator", "Health Data Aggregator"),
];

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Organization {
    pub id: Id,
    pub name: String,
    #[serde(rename = "type")]
    pub org_type: String,
    /// `None` only for ROOT.
    pub part_of: Option<Id>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    Viewer,
    Member,
    Manager,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Viewer => "viewer",
            Role::Member => "member",
            Role::Manager => "manager",
        }
    }
    pub fn parse(s: &str) -> Option<Role> {
        match s {
            "viewer" => Some(Role::Viewer),
            "member" => Some(Role::Member),
            "manager" => Some(Role::Manager),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Practitioner {
    pub id: Id,
    pub user_id: Id,
    #[serde(default)]
    pub name_family: Option<String>,
    #[serde(default)]
    pub name_given: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PatientIdentifier {
    pub id: Id,
    pub system: String,
    pub value: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Patient {
    pub id: Id,
    pub user_id: Option<Id>,
    #[serde(default)]
    pub name_family: Option<String>,
    #[serde(default)]
    pub name_given: Option<String>,
    /// ISO date `YYYY-MM-DD`.
    #[serde(default)]
    pub birth_date: Option<String>,
    #[serde(default)]
    pub telecom_phone: Option<String>,
    #[serde(default)]
    pub identifiers: Vec<PatientIdentifier>,
    #[serde(with = "time::serde::rfc3339")]
    pub last_updated: OffsetDateTime,
}

/// A scope / observation code ("CodeableConcept" upstream).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Code {
    pub id: Id,
    pub coding_system: String,
    pub coding_code: String,
    pub text: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Study {
    pub id: Id,
    pub name: String,
    pub description: String,
    pub organization_id: Id,
    #[serde(default)]
    pub icon_url: Option<String>,
}

pub const DATA_SOURCE_TYPES: &[(&str, &str)] =
    &[("medical_device", "Medical Device"), ("personal_device", "Personal Device"), ("patient_app", "Patient App")];

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DataSource {
    pub id: Id,
    pub name: String,
    #[serde(rename = "type")]
    pub ds_type: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ClientKind {
    /// A patient app (upstream "JheClient"): listed by `/api/v1/clients`, has an invitation URL.
    PatientApp,
    /// The web UI's own public client.
    AdminUi,
}

/// An OAuth client that is not a practitioner API key.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Client {
    pub id: Id,
    pub name: String,
    /// The OAuth `client_id` string.
    pub client_id: String,
    pub kind: ClientKind,
    #[serde(default)]
    pub invitation_url: Option<String>,
    pub redirect_uris: Vec<String>,
    #[serde(with = "time::serde::rfc3339")]
    pub created: OffsetDateTime,
}

/// A practitioner's API key (upstream "PractitionerClient"): a confidential client-credentials client.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ApiKey {
    pub id: Id,
    pub user_id: Id,
    pub label: String,
    pub name: String,
    pub client_id: String,
    /// SHA-256 of the secret (the secret is 32 random alphanumerics, shown once).
    pub secret_sha256: String,
    #[serde(with = "time::serde::rfc3339")]
    pub created: OffsetDateTime,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum InvitationStatus {
    Issued,
    Reissued,
    Redeemed,
    Cancelled,
    Expired,
}

impl InvitationStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Issued => "issued",
            Self::Reissued => "reissued",
            Self::Redeemed => "redeemed",
            Self::Cancelled => "cancelled",
            Self::Expired => "expired",
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Invitation {
    pub id: Id,
    pub patient_id: Id,
    /// The client's numeric id.
    pub client: Id,
    pub token_hash: String,
    pub status: InvitationStatus,
    #[serde(with = "time::serde::rfc3339")]
    pub created: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub last_updated: OffsetDateTime,
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub redeemed_at: Option<OffsetDateTime>,
    /// When an unredeemed invitation stops working (set at issue from the configured lifetime).
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub expires: Option<OffsetDateTime>,
}

/// A patient's decision on one scope of one study. No record = pending.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Consent {
    pub patient_id: Id,
    pub study_id: Id,
    pub code_id: Id,
    pub consented: bool,
    #[serde(with = "time::serde::rfc3339")]
    pub consented_time: OffsetDateTime,
}

/// Which consent: the patient's decision on one scope of one study. (Named fields, not a tuple of
/// three ids that are easy to swap.)
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct ConsentKey {
    pub patient_id: Id,
    pub study_id: Id,
    pub code_id: Id,
}

impl Consent {
    pub fn key(&self) -> ConsentKey {
        ConsentKey { patient_id: self.patient_id, study_id: self.study_id, code_id: self.code_id }
    }
}

/// An account JHE has deleted, which the identity provider should no longer hold.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GoneAccount {
    /// A user (by user id).
    User(Id),
    /// A practitioner API key (by its client id).
    ApiKey(String),
}

// ----------------------------------------------------------------- audit records

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Agent {
    #[serde(default)]
    pub user_id: Option<Id>,
    /// `superuser`, `patient`, or the practitioner's roles as `role@organization`.
    #[serde(default)]
    pub role: Option<String>,
    #[serde(default)]
    pub client_id: Option<String>,
    /// For failed logins: the name that was tried.
    #[serde(default)]
    pub attempted: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct AuditRecord {
    /// Time-ordered id: `{ms:013}{random}`.
    pub id: String,
    pub recorded: i64,
    /// What was done, e.g. `observation.search`, `consent.write`, `token`.
    pub action: String,
    /// FHIR AuditEvent action: C, R, U, D or E.
    pub fhir_action: String,
    pub allowed: bool,
    pub status: u16,
    #[serde(default)]
    pub reason: Option<String>,
    pub agent: Agent,
    pub method: String,
    pub path: String,
    /// The search parameters (never values of data).
    #[serde(default)]
    pub query: Option<String>,
    #[serde(default)]
    pub resource_type: Option<String>,
    #[serde(default)]
    pub ids: Vec<String>,
    #[serde(default)]
    pub count: Option<usize>,
    #[serde(default)]
    pub patients: Vec<Id>,
    #[serde(default)]
    pub studies: Vec<Id>,
    /// The consents that allowed it, as `study/scope-code`.
    #[serde(default)]
    pub consents: Vec<String>,
    #[serde(default)]
    pub source_address: Option<String>,
    #[serde(default)]
    pub user_agent: Option<String>,
    /// Which patient each consent is of: (patient, study, `scope-code`). `studies` and `consents`
    /// are their projections (records stored before this field have only those).
    #[serde(default)]
    pub grants: Vec<Grant>,
    /// Some field or list was cut to its bound (`AuditRecord::bounded`).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub truncated: bool,
}

/// A consent that allowed (or was written by) a request: (patient, study, `scope-code` or
/// `scope-code=true|false` for a consent write).
pub type Grant = (Id, Id, String);

// ----------------------------------------------------------------- token responses

/// What `POST /o/token/` answers (the built-in issuer's or the user pool's tokens).
#[derive(Debug, Clone, Serialize)]
pub struct TokenResponse {
    pub access_token: String,
    pub token_type: &'static str,
    pub expires_in: i64,
    pub scope: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refresh_token: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id_token: Option<String>,
    /// The user the tokens are for, when the grant says (not sent: for the audit record).
    #[serde(skip)]
    pub user_id: Option<Id>,
}

/// A patient's registered source of FHIR resources (an EHR, an app), under which stored resources
/// arrive. One per (patient, data source, base URL) when the URL is given.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FhirSource {
    pub id: Id,
    pub patient_id: Id,
    pub data_source_id: Id,
    pub label: String,
    #[serde(default)]
    pub fhir_base_url: String,
    #[serde(with = "time::serde::rfc3339")]
    pub last_updated: OffsetDateTime,
}

/// A FHIR resource stored as sent (stamped: `id`, `meta.source`, the patient extensions), under
/// the source it came through. `upstream_id` is the id it had there (the upsert key).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StoredResource {
    pub id: String,
    pub resource_type: String,
    pub source_id: Id,
    pub patient_id: Id,
    #[serde(default)]
    pub upstream_id: Option<String>,
    #[serde(with = "time::serde::rfc3339")]
    pub last_updated: OffsetDateTime,
    /// The stamped body; `Null` in an item whose body is kept as a blob (`blob`).
    #[serde(default)]
    pub body: serde_json::Value,
    /// The blob holding the body when it is too large for an item.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub blob: Option<String>,
}
