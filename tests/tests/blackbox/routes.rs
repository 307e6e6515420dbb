//! The route table (`jhe::http::routes::ROUTES`) is the truth the SAM template is checked
//! against, so it must match the routers exactly: every `.route(...)` in the source is in the
//! table, every table entry is served by its group's router, and by no other group.

use std::collections::BTreeSet;
use std::path::Path;

use axum::body::Body;
use axum::http::Request;
use jhe::http::routes::ROUTES;
use tower::ServiceExt;

use crate::common::*;

/// (method, path) of every `.route("path", method(..).method(..))` call in the HTTP sources.
fn routes_in_source() -> BTreeSet<(String, String)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/src/http");
    let mut out = BTreeSet::new();
    for e in std::fs::read_dir(dir).expect("read_dir").flatten() {
        let text = std::fs::read_to_string(e.path()).expect("read");
        let mut rest = text.as_str();
        while let Some(i) = rest.find(".route(") {
            rest = &rest[i + ".route(".len()..];
            let Some(q1) = rest.find('"') else { break };
            let Some(q2) = rest[q1 + 1..].find('"') else { break };
            let path = rest[q1 + 1..q1 + 1 + q2].to_string();
            // The call's arguments, up to its closing parenthesis.
            let mut depth = 1;
            let mut end = 0;
            for (k, ch) in rest.char_indices() {
                match ch {
                    '(' => depth += 1,
                    ')' => {
                        depth -= 1;
                        if depth == 0 {
                            end = k;
                            break;
                        }
                    }
                    _ => {}
                }
            }
            let args = &rest[q1 + 2 + q2..end];
            for m in ["get", "post", "put", "patch", "delete"] {
                let needle = format!("{m}(");
                let mut from = 0;
                while let Some(j) = args[from..].find(&needle) {
                    let at = from + j;
                    let before = args[..at].chars().last().unwrap_or(' ');
                    if matches!(before, '.' | ':' | ' ' | '\n' | '(' | ',') {
                        out.insert((m.to_uppercase(), path.clone()));
                    }
                    from = at + needle.len();
                }
            }
            rest = &rest[end..];
        }
    }
    out
}

#[test]
fn the_route_table_lists_exactly_the_routes_in_the_source() {
    let table: BTreeSet<(String, String)> = ROUTES.iter().map(|(_, m, p)| (m.to_string(), p.to_string())).collect();
    assert_eq!(table.len(), ROUTES.len(), "no route twice in the table");
    let source = routes_in_source();
    let missing: Vec<_> = source.difference(&table).collect();
    let extra: Vec<_> = table.difference(&source).collect();
    assert!(missing.is_empty() && extra.is_empty(), "not in the table: {missing:?}\nnot in the source: {extra:?}");
    assert!(ROUTES.len() > 100);
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
    let in_table: BTreeSet<&str> = ROUTES.iter().map(|(g, _, _)| *g).collect();
    assert_eq!(names, in_table, "every group has routes in the table, and only groups exist there");
    let mut wrong = Vec::new();
    for (name, router) in groups {
        let served = jhe::http::serve_group(router, app.state.clone());
        for (g, m, p) in ROUTES {
            let should = *g == name;
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
