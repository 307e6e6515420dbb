//! RS256 JSON Web Tokens: a signing key (created on first run, kept as PKCS#8), its JWKS, and a
//! verifier that pins the algorithm and checks signature, issuer, audience and expiry.

use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::rsa::{KeyPair, KeySize};
use aws_lc_rs::signature::{KeyPair as _, RSA_PKCS1_SHA256};
use jsonwebtoken::{Algorithm, DecodingKey, Validation, decode, decode_header};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::crypto::{b64url, sha256_b64url};
use crate::error::{Error, Result};

/// An RSA private key that signs tokens.
pub struct SigningKey {
    pair: KeyPair,
    kid: String,
    n: String,
    e: String,
}

impl SigningKey {
    pub fn generate() -> Result<Self> {
        let pair = KeyPair::generate(KeySize::Rsa2048).map_err(|e| Error::Internal(e.to_string()))?;
        Self::from_pair(pair)
    }

    pub fn from_pkcs8(der: &[u8]) -> Result<Self> {
        let pair = KeyPair::from_pkcs8(der).map_err(|e| Error::Internal(format!("bad signing key: {e}")))?;
        Self::from_pair(pair)
    }

    fn from_pair(pair: KeyPair) -> Result<Self> {
        let public = pair.public_key();
        let n = b64url(public.modulus().big_endian_without_leading_zero());
        let e = b64url(public.exponent().big_endian_without_leading_zero());
        // RFC 7638-style thumbprint as the key id.
        let kid = sha256_b64url(format!(r#"{{"e":"{e}","kty":"RSA","n":"{n}"}}"#).as_bytes());
        Ok(Self { pair, kid, n, e })
    }

    pub fn to_pkcs8(&self) -> Result<Vec<u8>> {
        let der = self.pair.as_der().map_err(|e| Error::Internal(e.to_string()))?;
        Ok(der.as_ref().to_vec())
    }

    pub fn kid(&self) -> &str {
        &self.kid
    }

    /// The public key as a JWK.
    pub fn jwk(&self) -> Value {
        json!({"kty": "RSA", "use": "sig", "alg": "RS256", "kid": self.kid, "n": self.n, "e": self.e})
    }

    /// A compact JWS (RS256) of the claims.
    pub fn sign(&self, claims: &Value) -> Result<String> {
        let header = json!({"alg": "RS256", "typ": "JWT", "kid": self.kid});
        let signing_input = format!(
            "{}.{}",
            b64url(header.to_string().as_bytes()),
            b64url(serde_json::to_vec(claims).map_err(|e| Error::Internal(e.to_string()))?.as_slice())
        );
        let mut sig = vec![0u8; self.pair.public_modulus_len()];
        self.pair
            .sign(&RSA_PKCS1_SHA256, &aws_lc_rs::rand::SystemRandom::new(), signing_input.as_bytes(), &mut sig)
            .map_err(|e| Error::Internal(e.to_string()))?;
        Ok(format!("{signing_input}.{}", b64url(&sig)))
    }

    pub fn decoding_key(&self) -> Result<DecodingKey> {
        DecodingKey::from_rsa_components(&self.n, &self.e).map_err(|e| Error::Internal(e.to_string()))
    }
}

/// The claims of an access token issued here.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AccessClaims {
    pub iss: String,
    pub sub: String,
    pub aud: String,
    pub exp: i64,
    pub iat: i64,
    pub jti: String,
    pub client_id: String,
    #[serde(default)]
    pub scope: String,
    pub token_use: String,
    /// `client_credentials` for API-key tokens, `authorization_code` for user logins.
    #[serde(default)]
    pub grant: String,
}

/// The key among `keys` that signed `token`, if its header pins RS256 and names a known key id
/// (checked before any signature work; the caller then verifies signature and claims).
fn rs256_key<'a>(keys: &'a [(String, DecodingKey)], token: &str) -> std::result::Result<&'a DecodingKey, String> {
    let header = decode_header(token).map_err(|e| format!("malformed token: {e}"))?;
    if header.alg != Algorithm::RS256 {
        return Err("token algorithm not accepted".into());
    }
    let kid = header.kid.ok_or("token has no key id")?;
    keys.iter().find(|(k, _)| *k == kid).map(|(_, k)| k).ok_or_else(|| "token signed by an unknown key".into())
}

/// The checks every access token gets: pinned RS256, this issuer, expiry and not-before (30 s
/// leeway). Callers add what their tokens carry (audience, required claims).
fn rs256_validation(issuer: &str) -> Validation {
    let mut validation = Validation::new(Algorithm::RS256);
    validation.set_issuer(&[issuer]);
    validation.leeway = 30;
    validation.validate_nbf = true;
    validation
}

/// Claims that say what kind of token they are.
trait TokenUse {
    fn token_use(&self) -> &str;
}

/// `token` verified with its key among `keys` under `validation`, and an access token.
fn decode_access<T: serde::de::DeserializeOwned + TokenUse>(
    keys: &[(String, DecodingKey)],
    token: &str,
    validation: &Validation,
) -> std::result::Result<T, String> {
    let key = rs256_key(keys, token)?;
    let claims = decode::<T>(token, key, validation).map_err(|e| format!("invalid token: {e}"))?.claims;
    if claims.token_use() != "access" {
        return Err("not an access token".into());
    }
    Ok(claims)
}

/// Verifies access tokens against a fixed set of public keys.
pub struct Verifier {
    keys: Vec<(String, DecodingKey)>,
    validation: Validation,
}

impl Verifier {
    pub fn new(keys: Vec<(String, DecodingKey)>, issuer: &str, audience: &str) -> Self {
        let mut validation = rs256_validation(issuer);
        validation.set_audience(&[audience]);
        validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        Self { keys, validation }
    }

    /// The claims of a valid access token, or why it is not valid.
    pub fn verify(&self, token: &str) -> std::result::Result<AccessClaims, String> {
        decode_access(&self.keys, token, &self.validation)
    }
}

impl TokenUse for AccessClaims {
    fn token_use(&self) -> &str {
        &self.token_use
    }
}

/// The claims JHE reads from an access token of a Cognito user pool (`iss` and `exp` are
/// checked by the validation).
#[derive(Debug, Clone, Deserialize)]
pub struct PoolClaims {
    pub token_use: String,
    pub client_id: String,
    pub username: String,
}

impl TokenUse for PoolClaims {
    fn token_use(&self) -> &str {
        &self.token_use
    }
}

/// Verifies access tokens of a Cognito user pool against its JWKS: pinned RS256, a known key id,
/// the pool's issuer, expiry, `token_use` = `access` and an app client of this deployment (pool
/// access tokens carry `client_id` instead of `aud`).
pub struct PoolVerifier {
    keys: Vec<(String, DecodingKey)>,
    validation: Validation,
    clients: Vec<String>,
}

impl PoolVerifier {
    /// From a JWKS document (`{"keys": [...]}`); RSA keys only, others are ignored.
    pub fn from_jwks(jwks: &Value, issuer: &str, clients: Vec<String>) -> std::result::Result<Self, String> {
        let keys: Vec<(String, DecodingKey)> = jwks
            .get("keys")
            .and_then(Value::as_array)
            .ok_or("the JWKS has no keys")?
            .iter()
            .filter(|k| k.get("kty").and_then(Value::as_str) == Some("RSA"))
            .filter_map(|k| {
                let kid = k.get("kid")?.as_str()?;
                let key = DecodingKey::from_rsa_components(k.get("n")?.as_str()?, k.get("e")?.as_str()?).ok()?;
                Some((kid.to_string(), key))
            })
            .collect();
        if keys.is_empty() {
            return Err("the JWKS has no RSA keys".into());
        }
        let mut validation = rs256_validation(issuer);
        validation.validate_aud = false;
        validation.set_required_spec_claims(&["exp", "iss"]);
        Ok(Self { keys, validation, clients })
    }

    /// Whether a key id is among the keys (an unknown one may mean the pool rotated its keys).
    pub fn knows(&self, kid: &str) -> bool {
        self.keys.iter().any(|(k, _)| k == kid)
    }

    /// The claims of a valid access token, or why it is not valid.
    pub fn verify(&self, token: &str) -> std::result::Result<PoolClaims, String> {
        let claims: PoolClaims = decode_access(&self.keys, token, &self.validation)?;
        if !self.clients.contains(&claims.client_id) {
            return Err("token issued to another app client".into());
        }
        Ok(claims)
    }
}

/// The key id a token's header names, without verifying anything.
pub fn token_kid(token: &str) -> Option<String> {
    decode_header(token).ok()?.kid
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claims(exp: i64) -> Value {
        json!({"iss": "http://x/o", "sub": "1", "aud": "jhe", "exp": exp, "iat": 0, "jti": "j",
               "client_id": "c", "scope": "openid", "token_use": "access", "grant": "authorization_code"})
    }

    #[test]
    fn signed_tokens_verify_and_tampering_fails() {
        let k = SigningKey::generate().expect("key");
        let v = Verifier::new(vec![(k.kid().to_string(), k.decoding_key().expect("dk"))], "http://x/o", "jhe");
        let now = time::OffsetDateTime::now_utc().unix_timestamp();
        let t = k.sign(&claims(now + 60)).expect("sign");
        assert_eq!(v.verify(&t).expect("valid").sub, "1");
        assert!(v.verify(&k.sign(&claims(now - 3600)).expect("sign")).is_err(), "expired");
        let mut parts: Vec<String> = t.split('.').map(String::from).collect();
        parts[1] = b64url(claims(now + 60).to_string().replace("\"sub\":\"1\"", "\"sub\":\"2\"").as_bytes());
        assert!(v.verify(&parts.join(".")).is_err(), "tampered payload");
        let other = SigningKey::generate().expect("key");
        assert!(v.verify(&other.sign(&claims(now + 60)).expect("sign")).is_err(), "foreign key");
        let reloaded = SigningKey::from_pkcs8(&k.to_pkcs8().expect("der")).expect("reload");
        assert_eq!(reloaded.kid(), k.kid());
        let wrong_iss = Verifier::new(vec![(k.kid().to_string(), k.decoding_key().expect("dk"))], "http://y/o", "jhe");
        assert!(wrong_iss.verify(&t).is_err(), "issuer checked");
        let wrong_aud =
            Verifier::new(vec![(k.kid().to_string(), k.decoding_key().expect("dk"))], "http://x/o", "other");
        assert!(wrong_aud.verify(&t).is_err(), "audience checked");
    }

    #[test]
    fn alg_none_and_hs256_are_refused() {
        let k = SigningKey::generate().expect("key");
        let v = Verifier::new(vec![(k.kid().to_string(), k.decoding_key().expect("dk"))], "http://x/o", "jhe");
        let now = time::OffsetDateTime::now_utc().unix_timestamp();
        let body = b64url(claims(now + 60).to_string().as_bytes());
        let none = format!("{}.{body}.", b64url(format!(r#"{{"alg":"none","kid":"{}"}}"#, k.kid()).as_bytes()));
        assert!(v.verify(&none).is_err());
        let hs = jsonwebtoken::encode(
            &jsonwebtoken::Header { kid: Some(k.kid().into()), ..jsonwebtoken::Header::new(Algorithm::HS256) },
            &claims(now + 60),
            &jsonwebtoken::EncodingKey::from_secret(k.n.as_bytes()).expect("hmac key"),
        )
        .expect("hs256");
        assert!(v.verify(&hs).is_err());
    }

    #[test]
    fn pool_tokens_need_the_pool_issuer_a_known_client_and_an_access_token_use() {
        let k = SigningKey::generate().expect("key");
        let iss = "https://cognito-idp.us-east-1.amazonaws.com/us-east-1_pool";
        let v = PoolVerifier::from_jwks(&json!({"keys": [k.jwk()]}), iss, vec!["spa".into()]).expect("jwks");
        assert!(v.knows(k.kid()) && !v.knows("other"));
        let now = time::OffsetDateTime::now_utc().unix_timestamp();
        let c = |iss: &str, client: &str, use_: &str, exp: i64| json!({"iss": iss, "exp": exp, "iat": now, "token_use": use_, "client_id": client, "username": "7", "sub": "u"});
        assert_eq!(v.verify(&k.sign(&c(iss, "spa", "access", now + 60)).expect("sign")).expect("valid").username, "7");
        assert!(v.verify(&k.sign(&c(iss, "spa", "access", now - 3600)).expect("sign")).is_err(), "expired");
        assert!(v.verify(&k.sign(&c(iss, "other", "access", now + 60)).expect("sign")).is_err(), "client");
        assert!(v.verify(&k.sign(&c(iss, "spa", "id", now + 60)).expect("sign")).is_err(), "id token");
        assert!(v.verify(&k.sign(&c("https://elsewhere", "spa", "access", now + 60)).expect("sign")).is_err(), "iss");
        let other = SigningKey::generate().expect("key");
        assert!(v.verify(&other.sign(&c(iss, "spa", "access", now + 60)).expect("sign")).is_err(), "foreign key");
        assert!(PoolVerifier::from_jwks(&json!({"keys": []}), iss, vec![]).is_err());
    }
}
