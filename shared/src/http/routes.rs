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
use super::{admin as a, fhir as f, oauth as o, stored as st};

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

/// A route's handler, bound to its method.
type Handler = fn(MethodFilter) -> MethodRouter<AppState>;

fn route(group: &'static str, method: Method, path: &'static str, audit: Audit, handler: Handler) -> Route {
    Route { group, method, path, audit, cors: false, handler }
}

/// A route of the OAuth endpoints, with open CORS.
fn oauth(method: Method, path: &'static str, audit: Audit, handler: Handler) -> Route {
    Route { cors: true, ..route("auth", method, path, audit, handler) }
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
        route("discovery", GET, "/health", No, |m| on(m, super::health)),
        route("discovery", GET, "/api/schema/", No, |m| on(m, super::api_schema)),
        // OAuth 2.0 / OpenID Connect, the login pages, the web UI's settings.
        oauth(GET, "/o/.well-known/openid-configuration", No, |m| on(m, o::discovery)),
        oauth(GET, "/o/.well-known/jwks.json", No, |m| on(m, o::jwks)),
        oauth(GET, "/o/authorize/", As("authorize", "E"), |m| on(m, o::authorize)),
        oauth(POST, "/o/token/", As("token", "E"), |m| on(m, o::token)),
        oauth(GET, "/o/userinfo/", No, |m| on(m, o::userinfo)),
        route("auth", GET, "/accounts/login/", No, |m| on(m, o::login_form)),
        route("auth", POST, "/accounts/login/", As("login", "E"), |m| on(m, o::login_submit)),
        route("auth", GET, "/accounts/logout/", As("logout", "E"), |m| on(m, o::logout_page)),
        route("auth", POST, "/accounts/logout/", As("logout", "E"), |m| on(m, o::logout)),
        route("auth", GET, "/common/server-settings.js", No, |m| on(m, o::server_settings)),
        // Users, organizations, practitioners.
        route(orgs, GET, "/api/v1/users", No, |m| on(m, a::users_list)),
        route(orgs, GET, "/api/v1/users/profile", No, |m| on(m, a::users_profile)),
        route(orgs, GET, "/api/v1/users/organizations", No, |m| on(m, a::users_orgs)),
        route(orgs, GET, "/api/v1/users/search_by_email", No, |m| on(m, a::users_search)),
        route(orgs, GET, "/api/v1/users/{id}", No, |m| on(m, a::users_get)),
        route(orgs, PATCH, "/api/v1/users/{id}", No, |m| on(m, a::users_update)),
        route(orgs, PUT, "/api/v1/users/{id}", No, |m| on(m, a::users_update)),
        route(orgs, GET, "/api/v1/organizations", No, |m| on(m, a::orgs_list)),
        route(orgs, POST, "/api/v1/organizations", No, |m| on(m, a::orgs_create)),
        route(orgs, GET, "/api/v1/organizations/types", No, |m| on(m, a::orgs_types)),
        route(orgs, GET, "/api/v1/organizations/{id}", No, |m| on(m, a::orgs_get)),
        route(orgs, PATCH, "/api/v1/organizations/{id}", No, |m| on(m, a::orgs_update)),
        route(orgs, PUT, "/api/v1/organizations/{id}", No, |m| on(m, a::orgs_update)),
        route(orgs, DELETE, "/api/v1/organizations/{id}", No, |m| on(m, a::orgs_delete)),
        route(orgs, GET, "/api/v1/organizations/{id}/tree", No, |m| on(m, a::orgs_tree)),
        route(orgs, GET, "/api/v1/organizations/{id}/users", No, |m| on(m, a::orgs_users)),
        route(orgs, POST, "/api/v1/organizations/{id}/user", As("organization.member.write", "U"), |m| {
            on(m, a::orgs_add_user)
        }),
        route(orgs, DELETE, "/api/v1/organizations/{id}/remove_user", As("organization.member.write", "U"), |m| {
            on(m, a::orgs_remove_user)
        }),
        route(orgs, GET, "/api/v1/organizations/{id}/studies", No, |m| on(m, a::orgs_studies)),
        route(orgs, GET, "/api/v1/practitioners", No, |m| on(m, a::pract_list)),
        route(orgs, POST, "/api/v1/practitioners", As("practitioner.create", "C"), |m| on(m, a::pract_create)),
        route(orgs, GET, "/api/v1/practitioners/{id}", No, |m| on(m, a::pract_get)),
        route(orgs, PATCH, "/api/v1/practitioners/{id}", No, |m| on(m, a::pract_update)),
        route(orgs, PUT, "/api/v1/practitioners/{id}", No, |m| on(m, a::pract_update)),
        route(orgs, DELETE, "/api/v1/practitioners/{id}", As("practitioner.delete", "D"), |m| on(m, a::pract_delete)),
        // Patients, consents, invitations, a patient's access log.
        route(pats, GET, "/api/v1/patients", As("patient.read", "R"), |m| on(m, a::pat_list)),
        route(pats, POST, "/api/v1/patients", As("patient.create", "C"), |m| on(m, a::pat_create)),
        route(pats, GET, "/api/v1/patients/me", As("patient.read", "R"), |m| on(m, a::pat_me)),
        route(pats, GET, "/api/v1/patients/global_lookup", As("patient.lookup", "E"), |m| on(m, a::pat_lookup)),
        route(pats, GET, "/api/v1/patients/{id}", As("patient.read", "R"), |m| on(m, a::pat_get)),
        route(pats, PATCH, "/api/v1/patients/{id}", As("patient.update", "U"), |m| on(m, a::pat_update)),
        route(pats, PUT, "/api/v1/patients/{id}", As("patient.update", "U"), |m| on(m, a::pat_update)),
        route(pats, DELETE, "/api/v1/patients/{id}", As("patient.delete", "D"), |m| on(m, a::pat_delete)),
        route(pats, PATCH, "/api/v1/patients/{id}/global_add_organization", As("patient.organization.add", "U"), |m| {
            on(m, a::pat_add_org)
        }),
        route(pats, GET, "/api/v1/patients/{id}/consolidated_clients", As("patient.read", "R"), |m| {
            on(m, a::pat_clients)
        }),
        route(pats, GET, "/api/v1/patients/{id}/consents", As("consent.read", "R"), |m| on(m, a::consents_get)),
        route(pats, POST, "/api/v1/patients/{id}/consents", As("consent.write", "U"), |m| on(m, a::consents_post)),
        route(pats, PATCH, "/api/v1/patients/{id}/consents", As("consent.write", "U"), |m| on(m, a::consents_patch)),
        route(pats, DELETE, "/api/v1/patients/{id}/consents", As("consent.forget", "D"), |m| on(m, a::consents_delete)),
        route(pats, GET, "/api/v1/patients/{id}/audit", As("audit.read", "E"), |m| on(m, a::pat_audit)),
        route(pats, GET, "/api/v1/fhir_sources", As("fhir_source.read", "R"), |m| on(m, st::sources_list)),
        route(pats, POST, "/api/v1/fhir_sources", As("fhir_source.write", "C"), |m| on(m, st::sources_create)),
        route(pats, GET, "/api/v1/fhir_sources/{id}", As("fhir_source.read", "R"), |m| on(m, st::sources_get)),
        route(pats, PATCH, "/api/v1/fhir_sources/{id}", As("fhir_source.write", "U"), |m| on(m, st::sources_update)),
        route(pats, PUT, "/api/v1/fhir_sources/{id}", As("fhir_source.write", "U"), |m| on(m, st::sources_update)),
        route(pats, DELETE, "/api/v1/fhir_sources/{id}", As("fhir_source.delete", "D"), |m| on(m, st::sources_delete)),
        route(pats, GET, "/api/v1/invitation", As("invitation.read", "R"), |m| on(m, a::inv_list)),
        route(pats, POST, "/api/v1/invitation", As("invitation.issue", "C"), |m| on(m, a::inv_create)),
        route(pats, POST, "/api/v1/invitation/{token}", As("invitation.redeem", "E"), |m| on(m, a::inv_redeem)),
        // Studies and what they ask for, take from and hold.
        route(studies, GET, "/api/v1/studies", No, |m| on(m, a::st_list)),
        route(studies, POST, "/api/v1/studies", No, |m| on(m, a::st_create)),
        route(studies, GET, "/api/v1/studies/{id}", No, |m| on(m, a::st_get)),
        route(studies, PATCH, "/api/v1/studies/{id}", No, |m| on(m, a::st_update)),
        route(studies, PUT, "/api/v1/studies/{id}", No, |m| on(m, a::st_update)),
        route(studies, DELETE, "/api/v1/studies/{id}", No, |m| on(m, a::st_delete)),
        route(studies, GET, "/api/v1/studies/{id}/patients", As("enrolment.read", "R"), |m| on(m, a::st_patients)),
        route(studies, POST, "/api/v1/studies/{id}/patients", As("enrolment.write", "U"), |m| {
            on(m, a::st_add_patients)
        }),
        route(studies, DELETE, "/api/v1/studies/{id}/patients", As("enrolment.write", "U"), |m| {
            on(m, a::st_remove_patients)
        }),
        route(studies, GET, "/api/v1/studies/{id}/scope_requests", No, |m| on(m, a::st_scopes)),
        route(studies, POST, "/api/v1/studies/{id}/scope_requests", As("study.grant.write", "U"), |m| {
            on(m, a::st_add_scope)
        }),
        route(studies, DELETE, "/api/v1/studies/{id}/scope_requests", As("study.grant.write", "U"), |m| {
            on(m, a::st_remove_scope)
        }),
        route(studies, GET, "/api/v1/studies/{id}/clients", No, |m| on(m, a::st_clients)),
        route(studies, POST, "/api/v1/studies/{id}/clients", As("study.grant.write", "U"), |m| on(m, a::st_add_client)),
        route(studies, DELETE, "/api/v1/studies/{id}/clients", As("study.grant.write", "U"), |m| {
            on(m, a::st_remove_client)
        }),
        route(studies, GET, "/api/v1/studies/{id}/data_sources", No, |m| on(m, a::st_data_sources)),
        route(studies, POST, "/api/v1/studies/{id}/data_sources", As("study.grant.write", "U"), |m| {
            on(m, a::st_add_data_source)
        }),
        route(studies, DELETE, "/api/v1/studies/{id}/data_sources", As("study.grant.write", "U"), |m| {
            on(m, a::st_remove_data_source)
        }),
        // The catalogue: data sources, apps, API keys.
        route(cat, GET, "/api/v1/data_sources", No, |m| on(m, a::ds_list)),
        route(cat, POST, "/api/v1/data_sources", No, |m| on(m, a::ds_create)),
        route(cat, GET, "/api/v1/data_sources/all_scopes", No, |m| on(m, a::ds_all_scopes)),
        route(cat, GET, "/api/v1/data_sources/{id}", No, |m| on(m, a::ds_get)),
        route(cat, PATCH, "/api/v1/data_sources/{id}", No, |m| on(m, a::ds_update)),
        route(cat, PUT, "/api/v1/data_sources/{id}", No, |m| on(m, a::ds_update)),
        route(cat, DELETE, "/api/v1/data_sources/{id}", No, |m| on(m, a::ds_delete)),
        route(cat, GET, "/api/v1/data_sources/{id}/supported_scopes", No, |m| on(m, a::ds_scopes)),
        route(cat, POST, "/api/v1/data_sources/{id}/supported_scopes", No, |m| on(m, a::ds_add_scope)),
        route(cat, DELETE, "/api/v1/data_sources/{id}/supported_scopes", No, |m| on(m, a::ds_remove_scope)),
        route(cat, GET, "/api/v1/clients", No, |m| on(m, a::cl_list)),
        route(cat, POST, "/api/v1/clients", No, |m| on(m, a::cl_create)),
        route(cat, GET, "/api/v1/clients/{id}", No, |m| on(m, a::cl_get)),
        route(cat, PATCH, "/api/v1/clients/{id}", No, |m| on(m, a::cl_update)),
        route(cat, PUT, "/api/v1/clients/{id}", No, |m| on(m, a::cl_update)),
        route(cat, DELETE, "/api/v1/clients/{id}", No, |m| on(m, a::cl_delete)),
        route(cat, GET, "/api/v1/clients/{id}/data_sources", No, |m| on(m, a::cl_data_sources)),
        route(cat, POST, "/api/v1/clients/{id}/data_sources", No, |m| on(m, a::cl_add_data_source)),
        route(cat, DELETE, "/api/v1/clients/{id}/data_sources", No, |m| on(m, a::cl_remove_data_source)),
        route(cat, GET, "/api/v1/practitioner_clients", No, |m| on(m, a::key_list)),
        route(cat, POST, "/api/v1/practitioner_clients", As("apikey.create", "C"), |m| on(m, a::key_create)),
        route(cat, GET, "/api/v1/practitioner_clients/{id}", No, |m| on(m, a::key_get)),
        route(cat, PATCH, "/api/v1/practitioner_clients/{id}", No, |m| on(m, a::key_update)),
        route(cat, DELETE, "/api/v1/practitioner_clients/{id}", As("apikey.revoke", "D"), |m| on(m, a::key_delete)),
        // FHIR reads and searches, and the admin list of observations.
        route("fhir-read", GET, "/FHIR/R5/metadata", No, |m| on(m, f::metadata)),
        route("fhir-read", GET, "/FHIR/R5/.well-known/smart-configuration", No, |m| on(m, f::smart)),
        route("fhir-read", GET, "/FHIR/R5/Observation", FhirSearch, |m| on(m, f::search_observation)),
        route("fhir-read", GET, "/FHIR/R5/{rtype}", FhirSearch, |m| on(m, f::search)),
        route("fhir-read", POST, "/FHIR/R5/{rtype}/_search", FhirSearch, |m| on(m, f::search_post)),
        route("fhir-read", GET, "/FHIR/R5/{rtype}/{id}", FhirRead, |m| on(m, f::read)),
        route("fhir-read", GET, "/api/v1/observations", As("observation.search", "E"), |m| {
            on(m, f::admin_observations)
        }),
        // Uploads.
        route("fhir-ingest", POST, "/FHIR/R5/Observation", As("observation.upload", "C"), |m| on(m, f::create)),
        route("fhir-ingest", POST, "/FHIR/R5/", As("observation.upload", "C"), |m| on(m, f::batch)),
        route("fhir-ingest", POST, "/FHIR/R5", As("observation.upload", "C"), |m| on(m, f::batch)),
        // FHIR resources stored as sent (the Observation create above takes those too).
        route("fhir-ingest", POST, "/FHIR/R5/{rtype}", As("fhir.create", "C"), |m| on(m, st::create)),
        route("fhir-ingest", PUT, "/FHIR/R5/{rtype}/{id}", As("fhir.update", "U"), |m| on(m, st::change)),
        route("fhir-ingest", PATCH, "/FHIR/R5/{rtype}/{id}", As("fhir.update", "U"), |m| on(m, st::change)),
        route("fhir-ingest", DELETE, "/FHIR/R5/{rtype}/{id}", As("fhir.delete", "D"), |m| on(m, st::delete)),
        route("fhir-ingest", POST, "/fhir-import/R4", As("fhir.import", "C"), |m| on(m, st::import_bundle)),
        route("fhir-ingest", POST, "/fhir-import/R4/{rtype}", As("fhir.import", "C"), |m| on(m, st::import_resource)),
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
