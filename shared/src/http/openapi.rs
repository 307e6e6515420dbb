//! The OpenAPI 3.1 description served at `/api/schema/` (upstream's path). Its paths are the
//! route table (`routes::table`, from which the routers are built), each described by one
//! entry of `describe`; a test fails when a route has no entry or an entry no route, so the
//! document cannot drift from what is served. Request and response shapes are JSON Schemas of
//! the wire format (camelCase, as `domain::views` writes it).

use serde_json::{Map, Value, json};

/// Who may call an operation.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Auth {
    /// Anyone.
    Public,
    /// A bearer access token.
    Bearer,
}

/// How an operation answers when it succeeds.
#[derive(Clone, Debug)]
enum Out {
    /// JSON with this schema.
    Json(Value),
    /// A FHIR resource (`application/fhir+json`) with this schema.
    Fhir(Value),
    /// No body.
    Empty,
    /// A redirect (`Location`).
    Redirect,
    /// An HTML page.
    Html,
    /// JavaScript.
    Script,
}

/// One operation: what `describe` says about a (method, path) of the route table.
#[derive(Clone, Debug)]
struct Op {
    summary: &'static str,
    auth: Auth,
    /// Query parameters: (name, schema, required).
    query: Vec<(&'static str, Value, bool)>,
    /// A JSON request body's schema (`application/json`; forms are accepted too).
    body: Option<Value>,
    /// A form body's schema (`application/x-www-form-urlencoded`).
    form: Option<Value>,
    ok: u16,
    out: Out,
    /// More statuses than the ones every operation of its kind may answer.
    also: Vec<u16>,
}

fn r(name: &str) -> Value {
    json!({"$ref": format!("#/components/schemas/{name}")})
}
fn int() -> Value {
    json!({"type": "integer"})
}
fn string() -> Value {
    json!({"type": "string"})
}
fn nullable(t: &str) -> Value {
    json!({"type": [t, "null"]})
}
fn array(items: Value) -> Value {
    json!({"type": "array", "items": items})
}
fn page(item: &str) -> Value {
    json!({
        "type": "object",
        "required": ["count", "next", "previous", "results"],
        "properties": {"count": int(), "next": nullable("string"), "previous": nullable("string"), "results": array(r(item))},
    })
}
fn object(required: &[&str], props: Value) -> Value {
    json!({"type": "object", "required": required, "properties": props})
}
fn paged() -> Vec<(&'static str, Value, bool)> {
    vec![
        ("page", json!({"type": "integer", "minimum": 1}), false),
        ("pageSize", json!({"type": "integer", "minimum": 1}), false),
    ]
}

fn op(summary: &'static str, ok: u16, out: Out) -> Op {
    Op { summary, auth: Auth::Bearer, query: vec![], body: None, form: None, ok, out, also: vec![] }
}
fn get_json(summary: &'static str, schema: Value) -> Op {
    op(summary, 200, Out::Json(schema))
}
impl Op {
    fn public(mut self) -> Self {
        self.auth = Auth::Public;
        self
    }
    fn query(mut self, q: Vec<(&'static str, Value, bool)>) -> Self {
        self.query.extend(q);
        self
    }
    fn body(mut self, schema: Value) -> Self {
        self.body = Some(schema);
        self
    }
    fn also(mut self, statuses: &[u16]) -> Self {
        self.also.extend_from_slice(statuses);
        self
    }
}

/// The description of one route, or `None` if the route table has a route this does not know.
fn describe(method: &str, path: &str) -> Option<Op> {
    use Out::*;
    let id_list = |name: &'static str| object(&[name], json!({ name: array(int()) }));
    let one_id = |name: &'static str| object(&[name], json!({ name: int() }));
    let patient_query = || vec![("organizationId", int(), false)];
    Some(match (method, path) {
        ("GET", "/health") => get_json("Liveness", object(&["status"], json!({"status": string(), "version": string()}))).public(),
        ("GET", "/api/schema/") => get_json("This OpenAPI document", json!({"type": "object"}))
            .public()
            .query(vec![("format", json!({"enum": ["json", "yaml"]}), false)]),
        // OAuth 2.0 / OpenID Connect.
        ("GET", "/o/.well-known/openid-configuration") => get_json("OpenID Provider metadata", json!({"type": "object", "required": ["issuer", "token_endpoint"]})).public(),
        ("GET", "/o/.well-known/jwks.json") => get_json("The token signing keys", object(&["keys"], json!({"keys": array(json!({"type": "object"}))}))).public(),
        ("GET", "/o/authorize/") => op("Authorization endpoint (code + PKCE): to the login form or back to redirect_uri", 302, Redirect)
            .public()
            .query(vec![
                ("response_type", json!({"enum": ["code"]}), true),
                ("client_id", string(), true),
                ("redirect_uri", string(), true),
                ("code_challenge", string(), false),
                ("code_challenge_method", json!({"enum": ["S256"]}), false),
                ("scope", string(), false),
                ("state", string(), false),
                ("nonce", string(), false),
            ])
            .also(&[400]),
        ("POST", "/o/token/") => Op {
            form: Some(object(&["grant_type"], json!({
                "grant_type": {"enum": ["authorization_code", "refresh_token", "client_credentials"]},
                "code": string(), "redirect_uri": string(), "client_id": string(), "code_verifier": string(),
                "refresh_token": string(), "client_secret": string(),
            }))),
            ..op("Token endpoint", 200, Json(r("Token"))).public().also(&[400, 401, 408, 413, 429])
        },
        ("GET", "/o/userinfo/") => get_json("The caller's claims", object(&["sub"], json!({"sub": string(), "email": string()}))),
        ("GET", "/accounts/login/") => op("The login form", 200, Html).public().query(vec![("next", string(), false)]),
        ("POST", "/accounts/login/") => Op {
            form: Some(object(&[], json!({"csrfmiddlewaretoken": string(), "next": string(), "username": string(), "password": string()}))),
            ..op("Log in (from the form): back to `next`, or the form again with an error", 302, Redirect).public().also(&[200, 400, 403, 408, 413, 429])
        },
        ("GET", "/accounts/logout/") => op("Asks whether to log out", 200, Html).public(),
        ("POST", "/accounts/logout/") => op("Logs out (ends the session)", 302, Redirect).public().also(&[403]),
        ("GET", "/common/server-settings.js") => op("Settings for the web UI", 200, Script).public(),
        // Users.
        ("GET", "/api/v1/users") => get_json("Users (superusers)", page("User")).query(paged()).query(vec![("email", string(), false)]),
        ("GET", "/api/v1/users/profile") => get_json("The caller", r("User")),
        ("GET", "/api/v1/users/organizations") => get_json("The caller's organizations", array(r("Organization"))),
        ("GET", "/api/v1/users/search_by_email") => get_json("A practitioner by email", r("User")).query(vec![("email", string(), true)]),
        ("GET", "/api/v1/users/{id}") => get_json("A user", r("User")),
        ("PATCH" | "PUT", "/api/v1/users/{id}") => get_json("Changes a user's name", r("User"))
            .body(object(&[], json!({"firstName": string(), "lastName": string()}))),
        // Organizations.
        ("GET", "/api/v1/organizations") => get_json("Organizations", page("Organization")).query(paged()).query(vec![("partOf", int(), false)]),
        ("POST", "/api/v1/organizations") => op("Creates an organization", 201, Json(r("Organization")))
            .body(object(&["name", "type"], json!({"name": string(), "type": string(), "partOf": nullable("integer")}))),
        ("GET", "/api/v1/organizations/types") => get_json("Organization types", json!({"type": "object", "additionalProperties": string()})),
        ("GET", "/api/v1/organizations/{id}") => get_json("An organization", r("Organization")),
        ("PATCH" | "PUT", "/api/v1/organizations/{id}") => get_json("Changes an organization", r("Organization"))
            .body(object(&[], json!({"name": string(), "type": string(), "partOf": nullable("integer")}))),
        ("DELETE", "/api/v1/organizations/{id}") => op("Deletes an organization", 204, Empty).also(&[409]),
        ("GET", "/api/v1/organizations/{id}/tree") => get_json("An organization and its descendants", r("Organization")),
        ("GET", "/api/v1/organizations/{id}/users") => get_json("An organization's members", array(r("Member"))),
        ("POST", "/api/v1/organizations/{id}/user") => op("Adds a member (200 when the role changed)", 201, Json(json!({"type": "object"})))
            .body(object(&["jheUserId"], json!({"jheUserId": int(), "organizationPartitionerRole": string(), "role": string()})))
            .also(&[200]),
        ("DELETE", "/api/v1/organizations/{id}/remove_user") => op("Removes a member", 204, Empty).body(one_id("jheUserId")),
        ("GET", "/api/v1/organizations/{id}/studies") => get_json("An organization's studies", array(r("StudyFlat"))),
        // Practitioners.
        ("GET", "/api/v1/practitioners") => get_json("Practitioners", page("Practitioner")).query(paged()),
        ("POST", "/api/v1/practitioners") => op("Creates a practitioner", 201, Json(r("Practitioner")))
            .body(object(&["telecomEmail", "organizationId"], json!({"telecomEmail": string(), "organizationId": int(), "nameFamily": string(), "nameGiven": string()})))
            .also(&[409]),
        ("GET", "/api/v1/practitioners/{id}") => get_json("A practitioner", r("Practitioner")),
        ("PATCH" | "PUT", "/api/v1/practitioners/{id}") => get_json("Changes a practitioner", r("Practitioner"))
            .body(object(&[], json!({"nameFamily": nullable("string"), "nameGiven": nullable("string")}))),
        ("DELETE", "/api/v1/practitioners/{id}") => op("Deletes a practitioner", 204, Empty),
        // Patients.
        ("GET", "/api/v1/patients") => get_json("Patients of the caller's organizations", page("Patient")).query(paged()).query(vec![
            ("organizationId", int(), false),
            ("studyId", int(), false),
            ("patientId", int(), false),
            ("patientIdentifierSystem", string(), false),
            ("patientIdentifierValue", string(), false),
        ]),
        ("POST", "/api/v1/patients") => op("Creates a patient", 201, Json(r("Patient"))).body(r("PatientInput")).also(&[409]),
        ("GET", "/api/v1/patients/me") => get_json("The calling patient", r("Patient")),
        ("GET", "/api/v1/patients/global_lookup") => get_json(
            "Patients by email, to add to an organization",
            array(json!({"anyOf": [r("Patient"), object(&["id"], json!({"id": int()}))]})),
        )
        .query(vec![("email", string(), true)]),
        ("GET", "/api/v1/patients/{id}") => get_json("A patient", r("Patient")),
        ("PATCH" | "PUT", "/api/v1/patients/{id}") => get_json("Changes a patient", r("Patient")).query(patient_query()).body(r("PatientInput")).also(&[409]),
        ("DELETE", "/api/v1/patients/{id}") => op("Deletes a patient (or removes them from an organization)", 204, Empty).query(patient_query()),
        ("PATCH", "/api/v1/patients/{id}/global_add_organization") => get_json("Adds a patient to an organization", json!({"type": "object"}))
            .query(patient_query())
            .body(object(&[], json!({"organizationId": int()}))),
        ("GET", "/api/v1/patients/{id}/consolidated_clients") => get_json("The apps a patient was invited with", array(r("Client"))),
        ("GET", "/api/v1/patients/{id}/consents") => get_json("A patient's consents, decided and pending", r("Consents")),
        ("POST", "/api/v1/patients/{id}/consents") => op("Records a patient's consent decisions", 201, Json(r("ConsentsWritten"))).body(r("ConsentsInput")).also(&[409]),
        ("PATCH", "/api/v1/patients/{id}/consents") => get_json("Changes a patient's consent decisions", r("ConsentsWritten")).body(r("ConsentsInput")),
        ("DELETE", "/api/v1/patients/{id}/consents") => op("Forgets consent decisions (all of them, without a body: the patient only)", 204, Empty).body(r("ConsentsInput")),
        ("GET", "/api/v1/patients/{id}/audit") => get_json("Who accessed a patient's data", page("PatientAuditEntry"))
            .query(vec![("pageSize", json!({"type": "integer", "minimum": 1}), false), ("cursor", string(), false)]),
        // Invitations.
        ("GET", "/api/v1/invitation") => get_json("Invitations the caller issued", page("Invitation")).query(paged()),
        ("POST", "/api/v1/invitation") => op("Invites a patient (the link is in the answer only)", 201, Json(r("Invitation")))
            .body(object(&["patientId", "clientId"], json!({"patientId": int(), "clientId": int()}))),
        ("POST", "/api/v1/invitation/{token}") => op("Redeems an invitation: an authorization code for the app", 200, Json(r("Redemption")))
            .public()
            .also(&[410]),
        // Studies.
        ("GET", "/api/v1/studies") => get_json("Studies", page("Study")).query(paged()).query(vec![("organizationId", int(), false)]),
        ("POST", "/api/v1/studies") => op("Creates a study", 201, Json(r("StudyFlat"))).body(r("StudyInput")),
        ("GET", "/api/v1/studies/{id}") => get_json("A study", r("Study")),
        ("PATCH" | "PUT", "/api/v1/studies/{id}") => get_json("Changes a study", r("StudyFlat")).body(r("StudyInput")),
        ("DELETE", "/api/v1/studies/{id}") => op("Deletes a study", 204, Empty).also(&[409]),
        ("GET", "/api/v1/studies/{id}/patients") => get_json("A study's patients", page("Patient")).query(paged()),
        ("POST", "/api/v1/studies/{id}/patients") => op("Enrols patients", 201, Json(json!({"type": ["object", "array"]}))).body(id_list("patientIds")),
        ("DELETE", "/api/v1/studies/{id}/patients") => op("Unenrols patients", 204, Empty).body(id_list("patientIds")),
        ("GET", "/api/v1/studies/{id}/scope_requests") => get_json("The scopes a study asks for", array(json!({"type": "object", "required": ["id", "scopeCode"], "properties": {"id": int(), "scopeCode": r("Code")}}))),
        ("POST", "/api/v1/studies/{id}/scope_requests") => op("Asks for a scope", 201, Json(json!({"type": "object"}))).body(one_id("scopeCodeId")).also(&[409]),
        ("DELETE", "/api/v1/studies/{id}/scope_requests") => op("Stops asking for a scope", 204, Empty).body(one_id("scopeCodeId")),
        ("GET", "/api/v1/studies/{id}/clients") => get_json("A study's apps", array(json!({"type": "object", "required": ["id", "client"], "properties": {"id": int(), "client": r("Client")}}))),
        ("POST", "/api/v1/studies/{id}/clients") => op("Adds an app", 201, Json(json!({"type": "object"}))).body(one_id("clientId")).also(&[409]),
        ("DELETE", "/api/v1/studies/{id}/clients") => op("Removes an app", 204, Empty).body(one_id("clientId")),
        ("GET", "/api/v1/studies/{id}/data_sources") => get_json("A study's data sources", array(json!({"type": "object", "required": ["id", "dataSource"], "properties": {"id": int(), "dataSource": r("DataSource")}}))),
        ("POST", "/api/v1/studies/{id}/data_sources") => op("Adds a data source", 201, Json(json!({"type": "object"}))).body(one_id("dataSourceId")).also(&[409]),
        ("DELETE", "/api/v1/studies/{id}/data_sources") => op("Removes a data source", 204, Empty).body(one_id("dataSourceId")),
        // The catalogue: data sources, apps, API keys.
        ("GET", "/api/v1/data_sources") => get_json("Data sources", page("DataSource")).query(paged()),
        ("POST", "/api/v1/data_sources") => op("Creates a data source (superusers)", 201, Json(r("DataSource")))
            .body(object(&["name"], json!({"name": string(), "type": string()}))),
        ("GET", "/api/v1/data_sources/all_scopes") => get_json("Every scope", array(r("Code"))),
        ("GET", "/api/v1/data_sources/{id}") => get_json("A data source", r("DataSource")),
        ("PATCH" | "PUT", "/api/v1/data_sources/{id}") => get_json("Changes a data source (superusers)", r("DataSource"))
            .body(object(&[], json!({"name": string(), "type": string()}))),
        ("DELETE", "/api/v1/data_sources/{id}") => op("Deletes a data source (superusers)", 204, Empty).also(&[409]),
        ("GET", "/api/v1/data_sources/{id}/supported_scopes") => get_json("The scopes a data source supports", array(json!({"type": "object", "required": ["id", "scopeCode"], "properties": {"id": int(), "scopeCode": r("Code")}}))),
        ("POST", "/api/v1/data_sources/{id}/supported_scopes") => op("Adds a supported scope (superusers)", 201, Json(json!({"type": "object"}))).body(one_id("scopeCodeId")).also(&[409]),
        ("DELETE", "/api/v1/data_sources/{id}/supported_scopes") => op("Removes a supported scope (superusers)", 204, Empty).body(one_id("scopeCodeId")),
        ("GET", "/api/v1/clients") => get_json("Apps", page("Client")).query(paged()),
        ("POST", "/api/v1/clients") => op("Registers an app (superusers)", 201, Json(r("Client")))
            .body(object(&["name", "clientId", "invitationUrl"], json!({"name": string(), "clientId": string(), "invitationUrl": string()})))
            .also(&[409]),
        ("GET", "/api/v1/clients/{id}") => get_json("An app", r("Client")),
        ("PATCH" | "PUT", "/api/v1/clients/{id}") => get_json("Changes an app (superusers)", r("Client"))
            .body(object(&[], json!({"name": string(), "clientId": string(), "invitationUrl": string()})))
            .also(&[409]),
        ("DELETE", "/api/v1/clients/{id}") => op("Deletes an app (superusers)", 204, Empty).also(&[409]),
        ("GET", "/api/v1/clients/{id}/data_sources") => get_json("An app's data sources", array(json!({"type": "object"}))),
        ("POST", "/api/v1/clients/{id}/data_sources") => op("Adds a data source to an app (superusers)", 201, Json(json!({"type": "object"}))).body(one_id("dataSourceId")).also(&[409]),
        ("DELETE", "/api/v1/clients/{id}/data_sources") => op("Removes a data source from an app (superusers)", 204, Empty).body(one_id("dataSourceId")),
        ("GET", "/api/v1/practitioner_clients") => get_json("The caller's API keys", page("ApiKey")).query(paged()),
        ("POST", "/api/v1/practitioner_clients") => op("Creates an API key (the key is in the answer only)", 201, Json(r("ApiKey")))
            .body(object(&[], json!({"label": string()}))),
        ("GET", "/api/v1/practitioner_clients/{id}") => get_json("One of the caller's API keys", r("ApiKey")),
        ("PATCH", "/api/v1/practitioner_clients/{id}") => get_json("Relabels an API key", r("ApiKey")).body(object(&[], json!({"label": string()}))),
        ("DELETE", "/api/v1/practitioner_clients/{id}") => op("Deletes an API key", 204, Empty),
        // Observations, FHIR.
        ("GET", "/api/v1/observations") => get_json("Observations the caller may read (newest first)", page("ObservationRow")).query(paged()).query(vec![
            ("organizationId", int(), false),
            ("studyId", int(), false),
            ("patientId", int(), false),
            ("observationId", int(), false),
        ]),
        ("GET", "/FHIR/R5/metadata") => op("The CapabilityStatement", 200, Fhir(r("Resource"))).public(),
        ("GET", "/FHIR/R5/.well-known/smart-configuration") => get_json("SMART configuration", json!({"type": "object"})).public(),
        ("GET", "/FHIR/R5/Observation") => op("Searches observations the caller may read", 200, Fhir(r("Bundle"))).query(fhir_search()),
        ("GET", "/FHIR/R5/{rtype}") => op("Searches a resource type (see the CapabilityStatement)", 200, Fhir(r("Bundle"))).query(fhir_search()),
        ("POST", "/FHIR/R5/{rtype}/_search") => Op {
            form: Some(json!({"type": "object"})),
            ..op("Searches, the parameters in a form body", 200, Fhir(r("Bundle"))).also(&[408, 413, 415])
        },
        ("GET", "/FHIR/R5/{rtype}/{id}") => op("Reads a resource", 200, Fhir(r("Resource"))),
        ("PUT" | "PATCH", "/FHIR/R5/{rtype}/{id}") => op("Replaces (PUT) or merges into (PATCH) a resource stored as sent (uuid id; JHE's records: 405)", 200, Fhir(r("Resource")))
            .body(r("Resource"))
            .also(&[403, 405, 415]),
        ("DELETE", "/FHIR/R5/{rtype}/{id}") => op("Deletes a resource stored as sent (uuid id; JHE's records: 405)", 204, Empty).also(&[405]),
        ("POST", "/FHIR/R5/{rtype}") => op("Stores a FHIR resource as sent, under the FHIR source named by X-JHE-FHIR-Source-ID or meta.source", 201, Fhir(r("Resource")))
            .body(r("Resource"))
            .also(&[403, 415]),
        ("POST", "/fhir-import/R4") => op("Imports a Bundle of R4 resources: each converted to R5 and stored as sent; a batch-response with what each lost", 200, Fhir(r("Bundle")))
            .body(r("Bundle"))
            .also(&[415]),
        ("POST", "/fhir-import/R4/{rtype}") => op("Imports one R4 resource (see POST /fhir-import/R4)", 200, Fhir(r("Bundle")))
            .body(r("Resource"))
            .also(&[415]),
        ("GET", "/api/v1/fhir_sources") => get_json("The calling patient's FHIR sources", page("FhirSource")).query(paged()),
        ("POST", "/api/v1/fhir_sources") => op("Registers a FHIR source for the calling patient (the same data source and URL again: 200, that one)", 201, Json(r("FhirSource")))
            .body(r("FhirSource"))
            .also(&[200]),
        ("GET", "/api/v1/fhir_sources/{id}") => get_json("One of the calling patient's FHIR sources", r("FhirSource")),
        ("PATCH" | "PUT", "/api/v1/fhir_sources/{id}") => get_json("Changes a FHIR source", r("FhirSource")).body(r("FhirSource")),
        ("DELETE", "/api/v1/fhir_sources/{id}") => op("Deletes a FHIR source and every resource stored under it", 204, Empty),
        ("POST", "/FHIR/R5/Observation") => op("Uploads one Observation", 201, Fhir(r("Resource")))
            .body(r("Resource"))
            .also(&[200, 409, 415, 422]),
        ("POST", "/FHIR/R5/" | "/FHIR/R5") => op("Uploads a batch Bundle of Observations", 200, Fhir(r("Bundle")))
            .body(r("Bundle"))
            .also(&[415, 422]),
        _ => return None,
    })
}

fn fhir_search() -> Vec<(&'static str, Value, bool)> {
    vec![
        ("patient", string(), false),
        ("subject", string(), false),
        ("code", string(), false),
        ("date", string(), false),
        ("_id", string(), false),
        ("patient.organization", string(), false),
        ("patient._has:Group:member:_id", string(), false),
        ("_count", json!({"type": "integer", "minimum": 1}), false),
        ("_cursor", string(), false),
        ("_sort", string(), false),
        ("_summary", string(), false),
        ("agent", string(), false),
        ("action", string(), false),
        ("outcome", string(), false),
    ]
}

/// The components every operation refers to.
fn schemas() -> Value {
    let org_props = json!({
        "id": int(), "name": string(), "type": string(), "partOf": nullable("integer"),
        "currentUserRole": nullable("string"), "children": array(r("Organization")),
    });
    let code = object(
        &["id", "codingSystem", "codingCode", "text"],
        json!({"id": int(), "codingSystem": string(), "codingCode": string(), "text": string()}),
    );
    let study_props = |org: Value| json!({"id": int(), "name": string(), "description": string(), "organization": org, "iconUrl": nullable("string")});
    let consent_study = json!({"type": "object", "required": ["id", "name"], "properties": {
        "id": int(), "name": string(), "description": string(), "iconUrl": nullable("string"),
        "organization": {"anyOf": [r("OrganizationRef"), {"type": "null"}]}, "dataSources": array(r("DataSource")),
        "scopeConsents": array(r("ScopeDecision")), "pendingScopeConsents": array(r("ScopeDecision")),
    }});
    let mut m = Map::new();
    m.insert("Error".into(), object(&["detail"], json!({"detail": string()})));
    m.insert("OAuthError".into(), object(&["error"], json!({"error": string(), "error_description": string()})));
    m.insert(
        "Token".into(),
        object(
            &["access_token", "token_type", "expires_in"],
            json!({
                "access_token": string(), "token_type": string(), "expires_in": int(), "scope": string(),
                "refresh_token": string(), "id_token": string(),
            }),
        ),
    );
    m.insert("Resource".into(), object(&["resourceType"], json!({"resourceType": string()})));
    m.insert("Bundle".into(), object(&["resourceType", "type"], json!({"resourceType": {"const": "Bundle"}, "type": string(), "total": int(), "entry": array(json!({"type": "object"})), "link": array(json!({"type": "object"}))})));
    m.insert("OperationOutcome".into(), object(&["resourceType", "issue"], json!({"resourceType": {"const": "OperationOutcome"}, "issue": array(json!({"type": "object", "required": ["severity", "code"]}))})));
    m.insert("Organization".into(), object(&["id", "name", "type"], org_props));
    m.insert(
        "OrganizationRef".into(),
        object(&["id", "name", "type"], json!({"id": int(), "name": string(), "type": string()})),
    );
    m.insert("Member".into(), object(&["id", "email"], json!({"id": int(), "email": string(), "firstName": nullable("string"), "lastName": nullable("string"), "role": string()})));
    m.insert("User".into(), object(&["id", "email", "userType"], json!({
            "id": int(), "email": string(), "firstName": nullable("string"), "lastName": nullable("string"),
            "patient": {"anyOf": [r("Patient"), {"type": "null"}]}, "userType": string(), "isSuperuser": {"type": "boolean"},
            "settings": {"type": "object"},
        })));
    m.insert(
        "Identifier".into(),
        object(&["system", "value"], json!({"id": int(), "system": string(), "value": string()})),
    );
    m.insert(
        "Patient".into(),
        object(
            &["id", "identifiers", "organizations"],
            json!({
                "id": int(), "jheUserId": nullable("integer"), "identifiers": array(r("Identifier")),
                "nameFamily": nullable("string"), "nameGiven": nullable("string"), "birthDate": nullable("string"),
                "telecomPhone": nullable("string"), "telecomEmail": nullable("string"),
                "organizations": array(r("Organization")), "lastUpdated": string(),
            }),
        ),
    );
    m.insert(
        "PatientInput".into(),
        object(
            &[],
            json!({
                "organizationId": int(), "telecomEmail": string(), "nameFamily": string(), "nameGiven": string(),
                "birthDate": json!({"type": "string", "format": "date"}), "telecomPhone": string(),
                "identifiers": array(object(&["system", "value"], json!({"system": string(), "value": string()}))),
            }),
        ),
    );
    m.insert(
        "Practitioner".into(),
        object(
            &["id", "jheUserId"],
            json!({
                "id": int(), "jheUserId": int(), "nameFamily": nullable("string"), "nameGiven": nullable("string"),
                "telecomEmail": nullable("string"), "organizations": array(r("Organization")),
            }),
        ),
    );
    m.insert("Code".into(), code);
    m.insert(
        "ScopeDecision".into(),
        object(
            &["code"],
            json!({"code": r("Code"), "consented": nullable("boolean"), "consentedTime": nullable("string")}),
        ),
    );
    m.insert("Study".into(), object(&["id", "name", "organization"], study_props(r("OrganizationRef"))));
    m.insert("StudyFlat".into(), object(&["id", "name", "organization"], study_props(int())));
    m.insert(
        "StudyInput".into(),
        object(
            &[],
            json!({"name": string(), "description": string(), "organization": int(), "iconUrl": nullable("string")}),
        ),
    );
    m.insert(
        "FhirSource".into(),
        object(
            &["dataSource"],
            json!({"id": int(), "patient": int(), "dataSource": int(), "label": string(), "fhirBaseUrl": string(), "lastUpdated": string()}),
        ),
    );
    m.insert(
        "DataSource".into(),
        object(
            &["id", "name", "type"],
            json!({"id": int(), "name": string(), "type": string(), "supportedScopes": array(r("Code"))}),
        ),
    );
    m.insert(
        "Client".into(),
        object(
            &["id", "name", "clientId"],
            json!({"id": int(), "name": string(), "clientId": string(), "invitationUrl": nullable("string")}),
        ),
    );
    m.insert(
        "ApiKey".into(),
        object(
            &["id", "label", "created"],
            json!({"id": int(), "label": string(), "created": string(), "name": string(), "key": nullable("string")}),
        ),
    );
    m.insert(
        "Invitation".into(),
        object(
            &["id", "patientId", "client_id", "status"],
            json!({
                "id": int(), "patientId": int(), "client_id": int(), "tokenHash": string(), "token": nullable("string"),
                "status": string(), "lastUpdated": string(), "expires": nullable("string"), "invitationLink": string(),
            }),
        ),
    );
    m.insert(
        "Redemption".into(),
        object(
            &["grant", "token_endpoint"],
            json!({"grant": {"type": "object"}, "token_endpoint": string(), "expires": string()}),
        ),
    );
    m.insert(
        "Consents".into(),
        object(
            &["patient", "consolidatedConsentedScopes", "studiesPendingConsent", "studies"],
            json!({
                "patient": r("Patient"), "consolidatedConsentedScopes": array(r("Code")),
                "studiesPendingConsent": array(consent_study.clone()), "studies": array(consent_study),
            }),
        ),
    );
    m.insert("ConsentsInput".into(), object(&["studyScopeConsents"], json!({"studyScopeConsents": array(object(&["studyId", "scopeConsents"], json!({
            "studyId": int(),
            "scopeConsents": array(object(&["codingSystem", "codingCode", "consented"], json!({"codingSystem": string(), "codingCode": string(), "consented": {"type": "boolean"}}))),
        })))})));
    m.insert(
        "ConsentsWritten".into(),
        object(&["studyScopeConsents"], json!({"studyScopeConsents": array(json!({"type": "object"}))})),
    );
    m.insert("PatientAuditEntry".into(), object(&["id", "recorded", "action", "outcome", "status"], json!({
            "id": string(), "recorded": string(), "action": string(), "method": string(), "path": string(),
            "outcome": {"enum": ["allowed", "refused"]}, "status": int(), "reason": nullable("string"),
            "agent": {"type": "object"}, "count": nullable("integer"), "studies": array(int()), "consents": array(string()),
            "sourceAddress": nullable("string"),
        })));
    m.insert("ObservationRow".into(), object(&["id", "subjectPatientId", "codeableConceptId"], json!({
            "id": int(), "subjectPatientId": int(), "codeableConceptId": int(), "dataSourceId": nullable("integer"),
            "status": string(), "effectiveDateTime": nullable("string"), "lastUpdated": string(), "omhData": {"type": "object"},
        })));
    Value::Object(m)
}

/// The statuses an operation may answer besides its success and `also`.
fn errors(method: &str, path: &str, o: &Op) -> Vec<u16> {
    let mut s = vec![503];
    if o.auth == Auth::Bearer {
        s.extend([401, 403]);
    }
    if !o.query.is_empty() || path.contains('{') || o.body.is_some() || o.form.is_some() {
        s.push(400);
    }
    // An unknown id in the path, the body (a patient, a study...) or a query filter.
    if path.contains('{') || o.body.is_some() || matches!(o.out, Out::Json(_) | Out::Fhir(_)) && method == "GET" {
        s.push(404);
    }
    if matches!(o.out, Out::Redirect) {
        s.extend([302, 303]);
    }
    if o.body.is_some() || o.form.is_some() {
        s.extend([408, 413]);
    }
    s.extend(o.also.iter().copied());
    s.retain(|c| *c != o.ok);
    s.sort_unstable();
    s.dedup();
    s
}

fn error_schema(path: &str) -> (&'static str, Value) {
    if super::is_fhir_path(path) {
        ("application/fhir+json", r("OperationOutcome"))
    } else if path.starts_with("/o/") {
        ("application/json", json!({"anyOf": [r("OAuthError"), r("Error")]}))
    } else if path.starts_with("/accounts/") {
        ("text/html", string())
    } else {
        ("application/json", r("Error"))
    }
}

fn operation(group: &str, method: &str, path: &str, o: &Op) -> Value {
    let mut params: Vec<Value> = path
        .split('/')
        .filter_map(|seg| seg.strip_prefix('{').and_then(|s| s.strip_suffix('}')))
        .map(|name| {
            let schema = if path.starts_with("/api/v1/") && name == "id" { int() } else { string() };
            json!({"name": name, "in": "path", "required": true, "schema": schema})
        })
        .collect();
    params.extend(
        o.query.iter().map(
            |(name, schema, required)| json!({"name": name, "in": "query", "required": required, "schema": schema}),
        ),
    );
    let mut responses = Map::new();
    let success = match &o.out {
        Out::Json(schema) => json!({"description": "OK", "content": {"application/json": {"schema": schema}}}),
        Out::Fhir(schema) => json!({"description": "OK", "content": {"application/fhir+json": {"schema": schema}}}),
        Out::Empty => json!({"description": "Done"}),
        Out::Redirect => json!({"description": "Redirect", "headers": {"Location": {"schema": string()}}}),
        Out::Html => json!({"description": "HTML page", "content": {"text/html": {"schema": string()}}}),
        Out::Script => {
            json!({"description": "JavaScript", "content": {"application/javascript": {"schema": string()}}})
        }
    };
    responses.insert(o.ok.to_string(), success);
    let (ctype, schema) = error_schema(path);
    for code in errors(method, path, o) {
        let described = match code {
            200 | 201 => match &o.out {
                Out::Json(schema) => json!({"description": "OK", "content": {"application/json": {"schema": schema}}}),
                Out::Fhir(schema) => {
                    json!({"description": "OK", "content": {"application/fhir+json": {"schema": schema}}})
                }
                Out::Html => json!({"description": "HTML page", "content": {"text/html": {"schema": string()}}}),
                Out::Redirect => {
                    json!({"description": "The form again, with what went wrong", "content": {"text/html": {"schema": string()}}})
                }
                _ => json!({"description": "OK"}),
            },
            302 | 303 => json!({"description": "Redirect", "headers": {"Location": {"schema": string()}}}),
            _ => json!({
                "description": reason(code),
                "content": {ctype: {"schema": schema}},
            }),
        };
        responses.insert(code.to_string(), described);
    }
    let mut v = json!({
        "operationId": format!("{}_{}", method.to_lowercase(), path.trim_matches('/').replace(['/', '.', '{', '}', '-'], "_")),
        "summary": o.summary,
        "tags": [group],
        "parameters": params,
        "responses": responses,
    });
    v["security"] = match o.auth {
        Auth::Public => json!([]),
        Auth::Bearer => json!([{"bearer": []}]),
    };
    if let Some(body) = &o.body {
        let fhir = super::is_fhir_path(path);
        let ctype = if fhir { "application/fhir+json" } else { "application/json" };
        v["requestBody"] = json!({"required": fhir, "content": {ctype: {"schema": body}}});
    }
    if let Some(form) = &o.form {
        v["requestBody"] =
            json!({"required": true, "content": {"application/x-www-form-urlencoded": {"schema": form}}});
    }
    v
}

fn reason(code: u16) -> &'static str {
    axum::http::StatusCode::from_u16(code).ok().and_then(|s| s.canonical_reason()).unwrap_or("Error")
}

/// The routes the table has and `describe` does not know (empty when the document is whole).
pub fn undescribed() -> Vec<(String, &'static str)> {
    super::routes::list().into_iter().filter(|(_, m, p)| describe(m, p).is_none()).map(|(_, m, p)| (m, p)).collect()
}

/// The document, with `base` (the site URL) as its server.
pub fn document(base: &str) -> Value {
    let mut paths = Map::new();
    for (group, method, path) in super::routes::list() {
        let Some(o) = describe(&method, path) else { continue };
        let entry = paths.entry(path.to_string()).or_insert_with(|| json!({}));
        entry[method.to_lowercase()] = operation(group, &method, path, &o);
    }
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "JupyterHealth Exchange",
            "version": crate::config::VERSION,
            "description": "Consent-based sharing of patients' device data (FHIR R5 Observations carrying Open mHealth) with studies. The admin REST API, the OAuth 2.0 / OpenID Connect endpoints and the FHIR routes.",
        },
        "servers": [{"url": base}],
        "paths": paths,
        "components": {
            "schemas": schemas(),
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}},
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_route_is_described_once() {
        assert_eq!(undescribed(), Vec::<(String, &str)>::new());
        let doc = document("http://localhost:8000");
        let n: usize =
            doc["paths"].as_object().expect("paths").values().map(|p| p.as_object().map_or(0, Map::len)).sum();
        assert_eq!(n, super::super::routes::table().len());
    }

    #[test]
    fn every_reference_resolves() {
        let doc = document("http://localhost:8000");
        let text = doc.to_string();
        let defined = doc["components"]["schemas"].as_object().expect("schemas");
        for part in text.split("#/components/schemas/").skip(1) {
            let name: String = part.chars().take_while(|c| c.is_ascii_alphanumeric()).collect();
            assert!(defined.contains_key(&name), "{name} is referred to and not defined");
        }
    }
}
