//! The wire shapes of the admin API (camelCase out, as upstream), built from entities.

use serde::Serialize;
use serde_json::Value;
use time::OffsetDateTime;

use crate::model::*;

pub fn ts(t: OffsetDateTime) -> String {
    t.format(&time::format_description::well_known::Rfc3339).unwrap_or_default()
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct OrgView {
    pub id: Id,
    pub name: String,
    #[serde(rename = "type")]
    pub org_type: String,
    pub part_of: Option<Id>,
    pub current_user_role: Option<&'static str>,
    pub children: Vec<OrgView>,
}

impl OrgView {
    pub fn new(o: &Organization, role: Option<&'static str>) -> Self {
        Self {
            id: o.id,
            name: o.name.clone(),
            org_type: o.org_type.clone(),
            part_of: o.part_of,
            current_user_role: role,
            children: vec![],
        }
    }
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct OrgRef {
    pub id: Id,
    pub name: String,
    #[serde(rename = "type")]
    pub org_type: String,
}

impl From<&Organization> for OrgRef {
    fn from(o: &Organization) -> Self {
        Self { id: o.id, name: o.name.clone(), org_type: o.org_type.clone() }
    }
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct IdentifierView {
    pub id: Id,
    pub system: String,
    pub value: String,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PatientView {
    pub id: Id,
    pub jhe_user_id: Option<Id>,
    pub identifiers: Vec<IdentifierView>,
    pub name_family: Option<String>,
    pub name_given: Option<String>,
    pub birth_date: Option<String>,
    pub telecom_phone: Option<String>,
    pub telecom_email: Option<String>,
    pub organizations: Vec<OrgView>,
    pub last_updated: String,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CodeView {
    pub id: Id,
    pub coding_system: String,
    pub coding_code: String,
    pub text: String,
}

impl From<&Code> for CodeView {
    fn from(c: &Code) -> Self {
        Self {
            id: c.id,
            coding_system: c.coding_system.clone(),
            coding_code: c.coding_code.clone(),
            text: c.text.clone(),
        }
    }
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct StudyView {
    pub id: Id,
    pub name: String,
    pub description: String,
    pub organization: OrgRef,
    pub icon_url: Option<String>,
}

/// A study as upstream returns it from create/update (organization as an id).
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct StudyFlat {
    pub id: Id,
    pub name: String,
    pub description: String,
    pub organization: Id,
    pub icon_url: Option<String>,
}

impl From<&Study> for StudyFlat {
    fn from(s: &Study) -> Self {
        Self {
            id: s.id,
            name: s.name.clone(),
            description: s.description.clone(),
            organization: s.organization_id,
            icon_url: s.icon_url.clone(),
        }
    }
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DataSourceView {
    pub id: Id,
    pub name: String,
    #[serde(rename = "type")]
    pub ds_type: String,
    pub supported_scopes: Vec<CodeView>,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ClientView {
    pub id: Id,
    pub name: String,
    pub client_id: String,
    pub invitation_url: Option<String>,
}

impl From<&Client> for ClientView {
    fn from(c: &Client) -> Self {
        Self {
            id: c.id,
            name: c.name.clone(),
            client_id: c.client_id.clone(),
            invitation_url: c.invitation_url.clone(),
        }
    }
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PractitionerView {
    pub id: Id,
    pub jhe_user_id: Id,
    pub name_family: Option<String>,
    pub name_given: Option<String>,
    pub telecom_email: Option<String>,
    pub organizations: Vec<OrgView>,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ApiKeyView {
    pub id: Id,
    pub label: String,
    pub created: String,
    pub name: String,
    /// `base64(client_id:client_secret)`: present only in the response that created the key.
    pub key: Option<String>,
}

impl From<&ApiKey> for ApiKeyView {
    fn from(k: &ApiKey) -> Self {
        Self { id: k.id, label: k.label.clone(), created: ts(k.created), name: k.name.clone(), key: None }
    }
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct InvitationView {
    pub id: Id,
    pub patient_id: Id,
    /// Upstream keeps this key in snake_case.
    #[serde(rename = "client_id")]
    pub client_id: Id,
    pub token_hash: String,
    /// The token, only in the response that issued it.
    pub token: Option<String>,
    pub status: &'static str,
    pub last_updated: String,
    /// When it stops working if not redeemed.
    pub expires: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub invitation_link: Option<String>,
}

impl From<&Invitation> for InvitationView {
    fn from(i: &Invitation) -> Self {
        Self {
            id: i.id,
            patient_id: i.patient_id,
            client_id: i.client,
            token_hash: i.token_hash.clone(),
            token: None,
            status: i.status.as_str(),
            last_updated: ts(i.last_updated),
            expires: i.expires.map(ts),
            invitation_link: None,
        }
    }
}

pub fn to_value<T: Serialize>(v: &T) -> Value {
    serde_json::to_value(v).unwrap_or(Value::Null)
}
