//! Password hashing with argon2id (PHC strings), with the library's recommended parameters.

use argon2::Argon2;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};

use crate::error::{Error, Result};

pub fn hash(password: &str) -> Result<String> {
    let salt =
        SaltString::encode_b64(&super::crypto::random_bytes::<16>()).map_err(|e| Error::Internal(e.to_string()))?;
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| Error::Internal(e.to_string()))
}

/// Checks a password; a missing hash still costs one verification, so timing does not reveal
/// which emails have accounts.
pub fn verify(password: &str, phc: Option<&str>) -> bool {
    static DUMMY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    let dummy = DUMMY.get_or_init(|| hash("not-a-password").unwrap_or_default());
    let (target, real) = match phc {
        Some(h) => (h, true),
        None => (dummy.as_str(), false),
    };
    let Ok(parsed) = PasswordHash::new(target) else { return false };
    Argon2::default().verify_password(password.as_bytes(), &parsed).is_ok() && real
}

#[cfg(test)]
mod tests {
    #[test]
    fn hash_verifies_only_the_right_password() {
        let h = super::hash("Jhe1234!").expect("hash");
        assert!(h.starts_with("$argon2id$"));
        assert!(super::verify("Jhe1234!", Some(&h)));
        assert!(!super::verify("jhe1234!", Some(&h)));
        assert!(!super::verify("Jhe1234!", None));
    }
}
