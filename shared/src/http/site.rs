//! The web UI as local mode serves it: files embedded in the `jhe` binary (or read from a folder
//! with `--static-dir`), `index.html` for the UI's own page paths (history routing), 404 for a
//! file that does not exist (never `index.html` in its place), gzip when the browser takes it,
//! caching (versioned libraries under `/vendor/<package>@<version>/` for a year, everything else
//! revalidated by ETag), and the strictest content security policy the UI runs under. In the
//! cloud the same files are on S3 behind CloudFront.

use std::path::PathBuf;

use axum::body::{Body, Bytes};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};

use super::AppState;

/// One embedded file (written by `functions/local/build.rs`).
pub struct SiteFile {
    /// `/index.html`, `/js/main.js`, ...
    pub path: &'static str,
    pub body: &'static [u8],
    /// The same, gzipped, when that is smaller.
    pub gzip: Option<&'static [u8]>,
    /// A strong ETag of the content.
    pub etag: &'static str,
}

/// Where the UI's files come from.
#[derive(Clone)]
pub enum SiteSource {
    Embedded(&'static [SiteFile]),
    /// A folder (development: edits show on the next load).
    Dir(PathBuf),
}

/// The vendored Bootstrap stylesheet (the login page, served by the issuer, uses it too).
pub const BOOTSTRAP_CSS: &str = "/vendor/bootstrap@5.3.9/bootstrap.min.css";

/// Paths that belong to the API: an unknown one is the API's JSON 404, not the UI.
const API_PREFIXES: [&str; 5] = ["/api/", "/FHIR/", "/fhir-import/", "/o/", "/accounts/"];

fn content_type(path: &str) -> &'static str {
    match path.rsplit('.').next().unwrap_or("") {
        "html" => "text/html; charset=utf-8",
        "js" | "mjs" => "text/javascript; charset=utf-8",
        "css" => "text/css; charset=utf-8",
        "json" => "application/json",
        "svg" => "image/svg+xml",
        "png" => "image/png",
        "ico" => "image/x-icon",
        "woff2" => "font/woff2",
        "woff" => "font/woff",
        "hbs" | "txt" => "text/plain; charset=utf-8",
        _ => "application/octet-stream",
    }
}

/// The content security policy of the UI's pages: scripts, styles and fonts of this site only; no
/// inline script, no eval, no inline style attributes; API calls to this site (and to its other
/// loopback names, and the user pool's endpoints when there is one); never framed.
pub fn page_policy(s: &AppState) -> String {
    policy_for(&s.settings)
}

fn policy_for(settings: &crate::config::Settings) -> String {
    let mut connect = vec!["'self'".to_string(), settings.site_url.clone()];
    if let Some(c) = &settings.cognito {
        // With a trailing slash a source with a path covers what lies under it (the issuer's
        // discovery document and keys); without, only that exact path.
        connect.push(format!("{}/", c.issuer.trim_end_matches('/')));
        connect.push(c.jwks_url.clone());
        connect.push(c.domain.clone());
    }
    format!(
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; font-src 'self'; connect-src {}; \
         object-src 'none'; base-uri 'self'; form-action 'self'; frame-ancestors 'none'",
        connect.join(" ")
    )
}

/// The headers every answer of the UI carries.
pub fn protect(headers: &mut HeaderMap, policy: &str) {
    if let Ok(v) = HeaderValue::from_str(policy) {
        headers.insert(header::CONTENT_SECURITY_POLICY, v);
    }
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    headers.insert(header::REFERRER_POLICY, HeaderValue::from_static("same-origin"));
}

fn not_found(api: Option<&str>) -> Response {
    if let Some(path) = api {
        super::no_route(path)
    } else {
        (StatusCode::NOT_FOUND, [(header::CONTENT_TYPE, "text/plain; charset=utf-8")], "Not found.").into_response()
    }
}

/// Whether a path that is not a file is one of the UI's pages: no file extension, not under the
/// folders of files.
fn is_page(path: &str) -> bool {
    let last = path.rsplit('/').next().unwrap_or("");
    !last.contains('.') && !["/vendor/", "/js/", "/css/", "/templates/"].iter().any(|p| path.starts_with(p))
}

/// A file's bytes: (body, gzip copy, etag).
async fn lookup(source: &SiteSource, path: &str) -> Option<(Bytes, Option<&'static [u8]>, String)> {
    match source {
        SiteSource::Embedded(files) => {
            files.iter().find(|f| f.path == path).map(|f| (Bytes::from_static(f.body), f.gzip, f.etag.to_string()))
        }
        SiteSource::Dir(dir) => {
            let rel = path.trim_start_matches('/');
            if rel.split('/').any(|seg| seg.is_empty() || seg == ".." || seg.starts_with('.')) {
                return None;
            }
            let body = tokio::fs::read(dir.join(rel)).await.ok()?;
            let hash =
                body.iter().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3));
            Some((Bytes::from(body), None, format!("\"{hash:016x}\"")))
        }
    }
}

/// Serves a request for the UI (the router's fallback).
pub async fn serve(s: &AppState, source: &SiteSource, method: &Method, path: &str, headers: &HeaderMap) -> Response {
    if API_PREFIXES.iter().any(|p| path.starts_with(p)) {
        return not_found(Some(path));
    }
    if *method != Method::GET && *method != Method::HEAD {
        return (StatusCode::METHOD_NOT_ALLOWED, [(header::ALLOW, "GET, HEAD")]).into_response();
    }
    let wanted = if path == "/" { "/index.html" } else { path };
    let (file_path, found) = match lookup(source, wanted).await {
        Some(f) => (wanted, f),
        None if is_page(path) => match lookup(source, "/index.html").await {
            Some(f) => ("/index.html", f),
            None => return not_found(None),
        },
        None => return not_found(None),
    };
    let (body, gzip, etag) = found;
    let mut resp = if headers.get(header::IF_NONE_MATCH).and_then(|v| v.to_str().ok()) == Some(etag.as_str()) {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        let takes_gzip = headers
            .get_all(header::ACCEPT_ENCODING)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .any(|v| v.split(',').any(|e| e.trim().split(';').next() == Some("gzip")));
        let mut r = match gzip.filter(|_| takes_gzip) {
            Some(gz) => {
                let mut r = Body::from(gz).into_response();
                r.headers_mut().insert(header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
                r
            }
            None => Body::from(body).into_response(),
        };
        r.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type(file_path)));
        if *method == Method::HEAD {
            *r.body_mut() = Body::empty();
        }
        r
    };
    let h = resp.headers_mut();
    if let Ok(v) = HeaderValue::from_str(&etag) {
        h.insert(header::ETAG, v);
    }
    h.insert(header::VARY, HeaderValue::from_static("Accept-Encoding"));
    let cache = if file_path.starts_with("/vendor/") && file_path.contains('@') {
        "public, max-age=31536000, immutable"
    } else {
        "no-cache"
    };
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static(cache));
    protect(h, &page_policy(s));
    resp
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_pages_may_fetch_the_pools_discovery_and_keys() {
        let mut s = crate::config::Settings::from_env("https://jhe.example.org");
        let issuer = "https://cognito-idp.us-east-1.amazonaws.com/us-east-1_Abc";
        s.cognito = Some(crate::config::CognitoSettings {
            user_pool_id: "us-east-1_Abc".into(),
            issuer: issuer.into(),
            jwks_url: format!("{issuer}/.well-known/jwks.json"),
            spa_client_id: "spa".into(),
            patient_client_id: "app".into(),
            api_client_id: "api".into(),
            domain: "https://jhe.auth.us-east-1.amazoncognito.com".into(),
        });
        let p = super::policy_for(&s);
        let connect: Vec<&str> =
            p.split(';').find_map(|d| d.trim().strip_prefix("connect-src ")).expect("connect-src").split(' ').collect();
        // A source with a path and no trailing slash matches that exact path only.
        assert!(connect.contains(&"https://cognito-idp.us-east-1.amazonaws.com/us-east-1_Abc/"), "{p}");
        assert!(connect.contains(&"https://jhe.auth.us-east-1.amazoncognito.com"), "{p}");
    }

    #[test]
    fn pages_are_paths_without_a_file_name() {
        for page in ["/", "/organizations", "/patients/40001", "/me/data", "/auth/callback"] {
            assert!(super::is_page(page), "{page}");
        }
        for file in ["/favicon.ico", "/js/nope.js", "/vendor/x", "/css/app.css", "/robots.txt", "/templates/x"] {
            assert!(!super::is_page(file), "{file}");
        }
    }
}
