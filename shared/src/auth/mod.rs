//! Identity: password hashing, RS256 signing keys, access/ID tokens, and the local OAuth 2.0 /
//! OIDC issuer's grant logic (authorization code + PKCE, refresh, client credentials, invitation
//! grants). HTTP wiring lives in `http::oauth`.
//!
//! Must not depend on: the web framework, SDKs.

pub mod crypto;
pub mod issuer;
pub mod jwt;
pub mod password;
