//! The route table (`jhe::http::routes::table`) is the only place a route is declared (the
//! routers are built from it), and the truth the SAM template is checked against: every entry is
//! served by its group's router, and by no other group.

use std::collections::BTreeSet;
use std::path::Path;

use axum::body::Body;
use axum::http::Request;
use jhe::http::routes::table as routes_table;
use tower::ServiceExt;

use crate::common::*;

/// The `.route(` calls in the HTTP sources outside the route table's router builder.
fn routes_declared_elsewhere() -> Vec<String> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/src/http");
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).expect("read_dir").flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        let text = std::fs::read_to_string(e.path()).expect("read");
        for (n, line) in text.lines().enumerate() {
            if line.contains(".route(") && name != "routes.rs" && !line.trim_start().starts_with("//") {
                out.push(format!("{name}:{}: {}", n + 1, line.trim()));
            }
        }
    }
    out
}

#[test]
fn the_route_table_is_the_only_place_a_route_is_declared() {
    let table = routes_table();
    let keys: BTreeSet<(String, &str)> = table.iter().map(|r| (r.method.to_string(), r.path)).collect();
    assert_eq!(keys.len(), table.len(), "no route twice in the table");
    assert!(table.len() > 100);
    let elsewhere = routes_declared_elsewhere();
    assert!(elsewhere.is_empty(), "routes declared outside http/routes.rs:\n{}", elsewhere.join("\n"));
}

fn concrete(path: &str) -> String {
    path.replace("{id}", "1").replace("{token}", &"A".repeat(32)).replace("{rtype}", "Patient")
}

/// True when the router has no such route (its fallback, or no such method on the path).
async fn unrouted(app: &axum::Router, method: &str, path: &str) -> bool {
    let req = Request::builder()
        .method(method)
        .uri(concrete(path))
        .header("content-type", "application/json")
        .body(Body::from("{}"))
        .expect("request");
    let resp = app.clone().oneshot(req).await.expect("response");
    let status = resp.status().as_u16();
    let body = axum::body::to_bytes(resp.into_body(), 1 << 20).await.expect("body");
    // The router's own 405 has no body; a handler's 405 (FHIR update/delete) explains itself.
    // The fallback's 404: `{"detail"}`, or under /FHIR/ an OperationOutcome saying so.
    let fallback = body.as_ref() == br#"{"detail":"Not found."}"#
        || String::from_utf8_lossy(&body).contains("No such FHIR endpoint.");
    (status == 405 && body.is_empty()) || (status == 404 && fallback)
}

#[tokio::test]
async fn each_route_is_served_by_its_group_and_by_no_other() {
    let app = spawn_app().await;
    let groups = jhe::http::route_groups();
    let names: BTreeSet<&str> = groups.iter().map(|(n, _)| *n).collect();
    let in_table: BTreeSet<&str> = routes_table().iter().map(|r| r.group).collect();
    assert_eq!(names, in_table, "every group has routes in the table, and only groups exist there");
    let mut wrong = Vec::new();
    for (name, router) in groups {
        let served = jhe::http::serve_group(router, app.state.clone());
        for route in routes_table() {
            let (g, m, p) = (route.group, route.method.as_str(), route.path);
            let should = g == name;
            // Paths served by two groups with different methods (e.g. /FHIR/R5/Observation) are
            // told apart by method, which `unrouted` does.
            if unrouted(&served, m, p).await == should {
                wrong.push(format!(
                    "{m} {p}: group {name} {}",
                    if should { "does not serve it" } else { "serves it too" }
                ));
            }
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}
