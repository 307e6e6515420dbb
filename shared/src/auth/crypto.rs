//! Small cryptographic helpers over aws-lc-rs: random strings, SHA-256, HMAC-signed values.

use aws_lc_rs::{digest, hmac, rand};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

const ALNUM: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";

/// A uniformly random string over `[A-Za-z0-9]` from the system CSPRNG.
pub fn random_alnum(n: usize) -> String {
    let mut out = String::with_capacity(n);
    let mut buf = [0u8; 64];
    while out.len() < n {
        rand::fill(&mut buf).expect("system random source");
        for b in buf {
            // Rejection sampling keeps the distribution uniform (248 = 4 * 62).
            if b < 248 && out.len() < n {
                out.push(ALNUM[(b % 62) as usize] as char);
            }
        }
    }
    out
}

/// A random (version 4) UUID, lower case.
pub fn uuid4() -> String {
    let mut b = random_bytes::<16>();
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h: String = b.iter().map(|x| format!("{x:02x}")).collect();
    format!("{}-{}-{}-{}-{}", &h[..8], &h[8..12], &h[12..16], &h[16..20], &h[20..])
}

pub fn random_bytes<const N: usize>() -> [u8; N] {
    let mut b = [0u8; N];
    rand::fill(&mut b).expect("system random source");
    b
}

pub fn b64url(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

pub fn b64url_decode(s: &str) -> Option<Vec<u8>> {
    URL_SAFE_NO_PAD.decode(s).ok()
}

/// base64url (no padding) of SHA-256: the form of stored token hashes and of PKCE S256.
pub fn sha256_b64url(data: &[u8]) -> String {
    b64url(digest::digest(&digest::SHA256, data).as_ref())
}

/// Constant-time equality of two strings.
pub fn ct_eq(a: &str, b: &str) -> bool {
    a.len() == b.len() && aws_lc_rs::constant_time::verify_slices_are_equal(a.as_bytes(), b.as_bytes()).is_ok()
}

/// Signs and checks short values (cookies, CSRF tokens) with a server secret.
#[derive(Clone)]
pub struct Signer {
    key: hmac::Key,
}

impl Signer {
    pub fn new(secret: &[u8]) -> Self {
        Self { key: hmac::Key::new(hmac::HMAC_SHA256, secret) }
    }
    /// `payload.signature`
    pub fn sign(&self, payload: &str) -> String {
        let tag = hmac::sign(&self.key, payload.as_bytes());
        format!("{payload}.{}", b64url(tag.as_ref()))
    }
    /// The payload, if the signature is right.
    pub fn verify<'a>(&self, signed: &'a str) -> Option<&'a str> {
        let (payload, sig) = signed.rsplit_once('.')?;
        let tag = b64url_decode(sig)?;
        hmac::verify(&self.key, payload.as_bytes(), &tag).ok()?;
        Some(payload)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn random_alnum_has_the_length_and_alphabet() {
        let s = random_alnum(32);
        assert_eq!(s.len(), 32);
        assert!(s.bytes().all(|b| b.is_ascii_alphanumeric()));
        assert_ne!(s, random_alnum(32));
    }

    #[test]
    fn pkce_s256_matches_rfc7636_example() {
        // RFC 7636 appendix B.
        assert_eq!(
            sha256_b64url(b"dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"),
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
        );
    }

    #[test]
    fn signer_rejects_tampering() {
        let s = Signer::new(b"secret");
        let v = s.sign("user:1");
        assert_eq!(s.verify(&v), Some("user:1"));
        assert_eq!(s.verify(&v.replace("user:1", "user:2")), None);
        assert_eq!(Signer::new(b"other").verify(&v), None);
    }
}
