//! Identity: password hashing, RS256 signing keys, access/ID tokens, and the local OAuth 2.0 /
//! OIDC issuer's grant logic (authorization code + PKCE, refresh, client credentials, invitation
//! grants). HTTP wiring lives in `http::oauth`.
//!
//! Must not depend on: the web framework, SDKs.

pub mod crypto;
pub mod flows;
pub mod issuer;
pub mod jwt;
pub mod password;
pub mod sessions;

/// Whether `given` is one of a client's registered redirect URIs. With `loopback_aliases` (local
/// mode on a loopback site URL), `localhost`, `127.0.0.1` and `[::1]` name the same host: a URI
/// registered on one matches on the others, with the same scheme, port, path and query.
pub fn redirect_uri_registered(registered: &[String], given: &str, loopback_aliases: bool) -> bool {
    registered.iter().any(|r| r == given || (loopback_aliases && same_loopback_uri(r, given)))
}

/// `scheme://host[:port]rest` with a loopback host, as (scheme, port, rest).
fn loopback_parts(uri: &str) -> Option<(&str, &str, &str)> {
    let (scheme, after) = uri.split_once("://")?;
    let (authority, rest) = after.split_at(after.find(['/', '?', '#']).unwrap_or(after.len()));
    let (host, port) = match authority.strip_prefix('[') {
        Some(v6) => {
            let (h, p) = v6.split_once(']')?;
            (h, p.strip_prefix(':').unwrap_or(p))
        }
        None => authority.split_once(':').unwrap_or((authority, "")),
    };
    matches!(host.to_ascii_lowercase().as_str(), "localhost" | "127.0.0.1" | "::1").then_some((scheme, port, rest))
}

fn same_loopback_uri(a: &str, b: &str) -> bool {
    matches!((loopback_parts(a), loopback_parts(b)), (Some(x), Some(y)) if x == y)
}

/// Whether a site URL is on a loopback host (local mode then treats its aliases as one site).
pub fn is_loopback_site(site_url: &str) -> bool {
    loopback_parts(site_url).is_some()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_hosts_are_one_site_only_when_asked() {
        let reg = vec!["http://127.0.0.1:8000/auth/callback".to_string()];
        for (given, aliases, ok) in [
            ("http://127.0.0.1:8000/auth/callback", false, true),
            ("http://localhost:8000/auth/callback", false, false),
            ("http://localhost:8000/auth/callback", true, true),
            ("http://[::1]:8000/auth/callback", true, true),
            ("http://LOCALHOST:8000/auth/callback", true, true),
            ("http://localhost:8001/auth/callback", true, false),
            ("https://localhost:8000/auth/callback", true, false),
            ("http://localhost:8000/auth/callback?x=1", true, false),
            ("http://localhost:8000/other", true, false),
            ("http://localhost.evil.example:8000/auth/callback", true, false),
            ("http://evil.example/auth/callback", true, false),
            ("http://localhost@evil.example:8000/auth/callback", true, false),
        ] {
            assert_eq!(redirect_uri_registered(&reg, given, aliases), ok, "{given} aliases={aliases}");
        }
        assert!(is_loopback_site("http://127.0.0.1:8000"));
        assert!(is_loopback_site("http://localhost"));
        assert!(!is_loopback_site("https://jhe.example.org"));
    }
}
