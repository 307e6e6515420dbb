//! The route table: the one place a route is declared. Each row is a method and path, the route
//! group that serves it (one Lambda function each), its handler, and its audit class. The
//! routers (`route_groups`), the route list the SAM template is checked against (`jhe routes`),
//! the OpenAPI document's paths and the audit middleware's classification all come from it.
//!
//! Adding a route: one row here (and its handler in its module); then its events in `events/`
//! and its `HttpApi` event in `infra/template.yaml` (the template check says what is missing), and
//! its description in `openapi::describe` (a test says so).

use axum::Router;
use axum::http::Method;
use axum::routing::{MethodFilter, MethodRouter, on};

use super::AppState;
use super::{admin as a, fhir as f, oauth as o};

/// What the audit trail records of a route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Audit {
    /// Touches no patient data, consent or access grant: not recorded. (A request that notes a
    /// patient all the same is recorded as `unclassified`, and a test fails on it.)
    No,
    /// Recorded under this action and FHIR AuditEvent action code (C, R, U, D, E).
    As(&'static str, &'static str),
    /// A FHIR search (`fhir.search`, E), or of AuditEvents `audit.read`.
    FhirSearch,
    /// A FHIR read by id (`fhir.read`, R), or of an AuditEvent `audit.read` (E).
    FhirRead,
}

impl Audit {
    /// The (action, FHIR action) of a request to this route with this concrete path.
    pub fn class(self, path: &str) -> Option<(&'static str, &'static str)> {
        let audit_event = path.split('/').nth(3) == Some("AuditEvent");
        match self {
            Audit::No => None,
            Audit::As(action, code) => Some((action, code)),
            Audit::FhirSearch | Audit::FhirRead if audit_event => Some(("audit.read", "E")),
            Audit::FhirSearch => Some(("fhir.search", "E")),
            Audit::FhirRead => Some(("fhir.read", "R")),
        }
    }
}

/// One route.
pub struct Route {
    pub group: &'static str,
    pub method: Method,
    pub path: &'static str,
    pub audit: Audit,
    /// Open CORS (the OAuth endpoints: tokens travel in headers, not cookies).
    pub cors: bool,
    handler: fn(MethodFilter) -> MethodRouter<AppState>,
}

impl Route {
    /// The route's method router (its handler for its method).
    pub fn method_router(&self) -> MethodRouter<AppState> {
        let filter = MethodFilter::try_from(self.method.clone()).unwrap_or(MethodFilter::GET);
        (self.handler)(filter)
    }
}

type H = fn(MethodFilter) -> MethodRouter<AppState>;

fn r(group: &'static str, method: Method, path: &'static str, audit: Audit, handler: H) -> Route {
    Route { group, method, path, audit, cors: false, handler }
}

/// A route of the OAuth endpoints, with open CORS.
fn oauth(method: Method, path: &'static str, audit: Audit, handler: H) -> Route {
    Route { cors: true, ..r("auth", method, path, audit, handler) }
}

use Audit::{As, FhirRead, FhirSearch, No};
const GET: Method = Method::GET;
const POST: Method = Method::POST;
const PUT: Method = Method::PUT;
const PATCH: Method = Method::PATCH;
const DELETE: Method = Method::DELETE;

/// Every route, by group (in the order the groups are listed in `route_groups`).
pub fn table() -> Vec<Route> {
    let (orgs, pats, studies, cat) = ("admin-orgs", "admin-patients", "admin-studies", "admin-catalog");
    vec![
        r("discovery", GET, "/health", No, |m| on(m, super::health)),
        r("discovery", GET, "/api/schema/", No, |m| on(m, super::api_schema)),
        // OAuth 2.0 / OpenID Connect, the login pages, the web UI's settings.
        oauth(GET, "/o/.well-known/openid-configuration", No, |m| on(m, o::discovery)),
        oauth(GET, "/o/.well-known/jwks.json", No, |m| on(m, o::jwks)),
        oauth(GET, "/o/authorize/", As("authorize", "E"), |m| on(m, o::authorize)),
        oauth(POST, "/o/token/", As("token", "E"), |m| on(m, o::token)),
        oauth(GET, "/o/userinfo/", No, |m| on(m, o::userinfo)),
        r("auth", GET, "/accounts/login/", No, |m| on(m, o::login_form)),
        r("auth", POST, "/accounts/login/", As("login", "E"), |m| on(m, o::login_submit)),
        r("auth", GET, "/accounts/logout/", As("logout", "E"), |m| on(m, o::logout_page)),
        r("auth", POST, "/accounts/logout/", As("logout", "E"), |m| on(m, o::logout)),
        r("auth", GET, "/common/server-settings.js", No, |m| on(m, o::server_settings)),
        // Users, organizations, practitioners.
        r(orgs, GET, "/api/v1/users", No, |m| on(m, a::users_list)),
        r(orgs, GET, "/api/v1/users/profile", No, |m| on(m, a::users_profile)),
        r(orgs, GET, "/api/v1/users/organizations", No, |m| on(m, a::users_orgs)),
        r(orgs, GET, "/api/v1/users/search_by_email", No, |m| on(m, a::users_search)),
        r(orgs, GET, "/api/v1/users/{id}", No, |m| on(m, a::users_get)),
        r(orgs, PATCH, "/api/v1/users/{id}", No, |m| on(m, a::users_update)),
        r(orgs, PUT, "/api/v1/users/{id}", No, |m| on(m, a::users_update)),
        r(orgs, GET, "/api/v1/organizations", No, |m| on(m, a::orgs_list)),
        r(orgs, POST, "/api/v1/organizations", No, |m| on(m, a::orgs_create)),
        r(orgs, GET, "/api/v1/organizations/types", No, |m| on(m, a::orgs_types)),
        r(orgs, GET, "/api/v1/organizations/{id}", No, |m| on(m, a::orgs_get)),
        r(orgs, PATCH, "/api/v1/organizations/{id}", No, |m| on(m, a::orgs_update)),
        r(orgs, PUT, "/api/v1/organizations/{id}", No, |m| on(m, a::orgs_update)),
        r(orgs, DELETE, "/api/v1/organizations/{id}", No, |m| on(m, a::orgs_delete)),
        r(orgs, GET, "/api/v1/organizations/{id}/tree", No, |m| on(m, a::orgs_tree)),
        r(orgs, GET, "/api/v1/organizations/{id}/users", No, |m| on(m, a::orgs_users)),
        r(orgs, POST, "/api/v1/organizations/{id}/user", As("organization.member.write", "U"), |m| {
            on(m, a::orgs_add_user)
        }),
        r(orgs, DELETE, "/api/v1/organizations/{id}/remove_user", As("organization.member.write", "U"), |m| {
            on(m, a::orgs_remove_user)
        }),
        r(orgs, GET, "/api/v1/organizations/{id}/studies", No, |m| on(m, a::orgs_studies)),
        r(orgs, GET, "/api/v1/practitioners", No, |m| on(m, a::pract_list)),
        r(orgs, POST, "/api/v1/practitioners", As("practitioner.create", "C"), |m| on(m, a::pract_create)),
        r(orgs, GET, "/api/v1/practitioners/{id}", No, |m| on(m, a::pract_get)),
        r(orgs, PATCH, "/api/v1/practitioners/{id}", No, |m| on(m, a::pract_update)),
        r(orgs, PUT, "/api/v1/practitioners/{id}", No, |m| on(m, a::pract_update)),
        r(orgs, DELETE, "/api/v1/practitioners/{id}", As("practitioner.delete", "D"), |m| on(m, a::pract_delete)),
        // Patients, consents, invitations, a patient's access log.
        r(pats, GET, "/api/v1/patients", As("patient.read", "R"), |m| on(m, a::pat_list)),
        r(pats, POST, "/api/v1/patients", As("patient.create", "C"), |m| on(m, a::pat_create)),
        r(pats, GET, "/api/v1/patients/me", As("patient.read", "R"), |m| on(m, a::pat_me)),
        r(pats, GET, "/api/v1/patients/global_lookup", As("patient.lookup", "E"), |m| on(m, a::pat_lookup)),
        r(pats, GET, "/api/v1/patients/{id}", As("patient.read", "R"), |m| on(m, a::pat_get)),
        r(pats, PATCH, "/api/v1/patients/{id}", As("patient.update", "U"), |m| on(m, a::pat_update)),
        r(pats, PUT, "/api/v1/patients/{id}", As("patient.update", "U"), |m| on(m, a::pat_update)),
        r(pats, DELETE, "/api/v1/patients/{id}", As("patient.delete", "D"), |m| on(m, a::pat_delete)),
        r(pats, PATCH, "/api/v1/patients/{id}/global_add_organization", As("patient.organization.add", "U"), |m| {
            on(m, a::pat_add_org)
        }),
        r(pats, GET, "/api/v1/patients/{id}/consolidated_clients", As("patient.read", "R"), |m| on(m, a::pat_clients)),
        r(pats, GET, "/api/v1/patients/{id}/consents", As("consent.read", "R"), |m| on(m, a::consents_get)),
        r(pats, POST, "/api/v1/patients/{id}/consents", As("consent.write", "U"), |m| on(m, a::consents_post)),
        r(pats, PATCH, "/api/v1/patients/{id}/consents", As("consent.write", "U"), |m| on(m, a::consents_patch)),
        r(pats, DELETE, "/api/v1/patients/{id}/consents", As("consent.forget", "D"), |m| on(m, a::consents_delete)),
        r(pats, GET, "/api/v1/patients/{id}/audit", As("audit.read", "E"), |m| on(m, a::pat_audit)),
        r(pats, GET, "/api/v1/invitation", As("invitation.read", "R"), |m| on(m, a::inv_list)),
        r(pats, POST, "/api/v1/invitation", As("invitation.issue", "C"), |m| on(m, a::inv_create)),
        r(pats, POST, "/api/v1/invitation/{token}", As("invitation.redeem", "E"), |m| on(m, a::inv_redeem)),
        // Studies and what they ask for, take from and hold.
        r(studies, GET, "/api/v1/studies", No, |m| on(m, a::st_list)),
        r(studies, POST, "/api/v1/studies", No, |m| on(m, a::st_create)),
        r(studies, GET, "/api/v1/studies/{id}", No, |m| on(m, a::st_get)),
        r(studies, PATCH, "/api/v1/studies/{id}", No, |m| on(m, a::st_update)),
        r(studies, PUT, "/api/v1/studies/{id}", No, |m| on(m, a::st_update)),
        r(studies, DELETE, "/api/v1/studies/{id}", No, |m| on(m, a::st_delete)),
        r(studies, GET, "/api/v1/studies/{id}/patients", As("enrolment.read", "R"), |m| on(m, a::st_patients)),
        r(studies, POST, "/api/v1/studies/{id}/patients", As("enrolment.write", "U"), |m| on(m, a::st_add_patients)),
        r(studies, DELETE, "/api/v1/studies/{id}/patients", As("enrolment.write", "U"), |m| {
            on(m, a::st_remove_patients)
        }),
        r(studies, GET, "/api/v1/studies/{id}/scope_requests", No, |m| on(m, a::st_scopes)),
        r(studies, POST, "/api/v1/studies/{id}/scope_requests", As("study.grant.write", "U"), |m| {
            on(m, a::st_add_scope)
        }),
        r(studies, DELETE, "/api/v1/studies/{id}/scope_requests", As("study.grant.write", "U"), |m| {
            on(m, a::st_remove_scope)
        }),
        r(studies, GET, "/api/v1/studies/{id}/clients", No, |m| on(m, a::st_clients)),
        r(studies, POST, "/api/v1/studies/{id}/clients", As("study.grant.write", "U"), |m| on(m, a::st_add_client)),
        r(studies, DELETE, "/api/v1/studies/{id}/clients", As("study.grant.write", "U"), |m| {
            on(m, a::st_remove_client)
        }),
        r(studies, GET, "/api/v1/studies/{id}/data_sources", No, |m| on(m, a::st_data_sources)),
        r(studies, POST, "/api/v1/studies/{id}/data_sources", As("study.grant.write", "U"), |m| {
            on(m, a::st_add_data_source)
        }),
        r(studies, DELETE, "/api/v1/studies/{id}/data_sources", As("study.grant.write", "U"), |m| {
            on(m, a::st_remove_data_source)
        }),
        // The catalogue: data sources, apps, API keys.
        r(cat, GET, "/api/v1/data_sources", No, |m| on(m, a::ds_list)),
        r(cat, POST, "/api/v1/data_sources", No, |m| on(m, a::ds_create)),
        r(cat, GET, "/api/v1/data_sources/all_scopes", No, |m| on(m, a::ds_all_scopes)),
        r(cat, GET, "/api/v1/data_sources/{id}", No, |m| on(m, a::ds_get)),
        r(cat, PATCH, "/api/v1/data_sources/{id}", No, |m| on(m, a::ds_update)),
        r(cat, PUT, "/api/v1/data_sources/{id}", No, |m| on(m, a::ds_update)),
        r(cat, DELETE, "/api/v1/data_sources/{id}", No, |m| on(m, a::ds_delete)),
        r(cat, GET, "/api/v1/data_sources/{id}/supported_scopes", No, |m| on(m, a::ds_scopes)),
        r(cat, POST, "/api/v1/data_sources/{id}/supported_scopes", No, |m| on(m, a::ds_add_scope)),
        r(cat, DELETE, "/api/v1/data_sources/{id}/supported_scopes", No, |m| on(m, a::ds_remove_scope)),
        r(cat, GET, "/api/v1/clients", No, |m| on(m, a::cl_list)),
        r(cat, POST, "/api/v1/clients", No, |m| on(m, a::cl_create)),
        r(cat, GET, "/api/v1/clients/{id}", No, |m| on(m, a::cl_get)),
        r(cat, PATCH, "/api/v1/clients/{id}", No, |m| on(m, a::cl_update)),
        r(cat, PUT, "/api/v1/clients/{id}", No, |m| on(m, a::cl_update)),
        r(cat, DELETE, "/api/v1/clients/{id}", No, |m| on(m, a::cl_delete)),
        r(cat, GET, "/api/v1/clients/{id}/data_sources", No, |m| on(m, a::cl_data_sources)),
        r(cat, POST, "/api/v1/clients/{id}/data_sources", No, |m| on(m, a::cl_add_data_source)),
        r(cat, DELETE, "/api/v1/clients/{id}/data_sources", No, |m| on(m, a::cl_remove_data_source)),
        r(cat, GET, "/api/v1/practitioner_clients", No, |m| on(m, a::key_list)),
        r(cat, POST, "/api/v1/practitioner_clients", As("apikey.create", "C"), |m| on(m, a::key_create)),
        r(cat, GET, "/api/v1/practitioner_clients/{id}", No, |m| on(m, a::key_get)),
        r(cat, PATCH, "/api/v1/practitioner_clients/{id}", No, |m| on(m, a::key_update)),
        r(cat, DELETE, "/api/v1/practitioner_clients/{id}", As("apikey.revoke", "D"), |m| on(m, a::key_delete)),
        // FHIR reads and searches, and the admin list of observations.
        r("fhir-read", GET, "/FHIR/R5/metadata", No, |m| on(m, f::metadata)),
        r("fhir-read", GET, "/FHIR/R5/.well-known/smart-configuration", No, |m| on(m, f::smart)),
        r("fhir-read", GET, "/FHIR/R5/Observation", FhirSearch, |m| on(m, f::search_observation)),
        r("fhir-read", GET, "/FHIR/R5/{rtype}", FhirSearch, |m| on(m, f::search)),
        r("fhir-read", POST, "/FHIR/R5/{rtype}/_search", FhirSearch, |m| on(m, f::search_post)),
        r("fhir-read", GET, "/FHIR/R5/{rtype}/{id}", FhirRead, |m| on(m, f::read)),
        r("fhir-read", PUT, "/FHIR/R5/{rtype}/{id}", FhirRead, |m| on(m, f::not_allowed)),
        r("fhir-read", PATCH, "/FHIR/R5/{rtype}/{id}", FhirRead, |m| on(m, f::not_allowed)),
        r("fhir-read", DELETE, "/FHIR/R5/{rtype}/{id}", FhirRead, |m| on(m, f::not_allowed)),
        r("fhir-read", GET, "/api/v1/observations", As("observation.search", "E"), |m| on(m, f::admin_observations)),
        // Uploads.
        r("fhir-ingest", POST, "/FHIR/R5/Observation", As("observation.upload", "C"), |m| on(m, f::create)),
        r("fhir-ingest", POST, "/FHIR/R5/", As("observation.upload", "C"), |m| on(m, f::batch)),
        r("fhir-ingest", POST, "/FHIR/R5", As("observation.upload", "C"), |m| on(m, f::batch)),
    ]
}

/// The route groups, in order.
pub const GROUPS: [&str; 8] =
    ["discovery", "auth", "admin-orgs", "admin-patients", "admin-studies", "admin-catalog", "fhir-read", "fhir-ingest"];

/// The router of one group, built from its rows.
pub fn router(group: &str) -> Router<AppState> {
    let mut plain = Router::new();
    let mut cors = Router::new();
    for route in table().into_iter().filter(|r| r.group == group) {
        if route.cors {
            cors = cors.route(route.path, route.method_router());
        } else {
            plain = plain.route(route.path, route.method_router());
        }
    }
    plain.merge(cors.layer(axum::middleware::from_fn(o::cors)))
}

/// (group, method, path) of every route: what the SAM template is checked against.
pub fn list() -> Vec<(&'static str, String, &'static str)> {
    table().iter().map(|r| (r.group, r.method.to_string(), r.path)).collect()
}

/// The audit class of a route, by its method and path pattern (axum's `MatchedPath`).
pub fn audit_of(method: &Method, pattern: &str) -> Option<Audit> {
    type ByPath = std::collections::HashMap<&'static str, Vec<(Method, Audit)>>;
    static BY_PATH: std::sync::OnceLock<ByPath> = std::sync::OnceLock::new();
    let map = BY_PATH.get_or_init(|| {
        let mut m = ByPath::new();
        for r in table() {
            m.entry(r.path).or_default().push((r.method, r.audit));
        }
        m
    });
    let method = if method == Method::HEAD { &Method::GET } else { method };
    map.get(pattern)?.iter().find(|(m, _)| m == method).map(|(_, a)| *a)
}
