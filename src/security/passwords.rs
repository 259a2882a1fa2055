//! Argon2 password hashes as PHC strings: making them (for `wrenmq user hash`) and verifying a
//! passcode against one. Whether a configured one is well formed is the configuration's own
//! check, [`crate::config::check_phc`].

use argon2::Argon2;
use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};

/// A valid hash of a random secret nobody knows: verified against when the login names no
/// user, so an unknown user costs as much time as a wrong password and the two cannot be told
/// apart by timing.
pub(crate) const DUMMY_HASH: &str = "$argon2id$v=19$m=19456,t=2,p=1$YWrQMF18aAB91ffUCeOiJQ$RHO3ljNfMAEQJ6FT3WmkH8imCC8Pb2oVemLony35CKY";

/// Hashes `password` with Argon2id, default parameters and a fresh random salt.
pub fn hash_password(password: &str) -> Result<String, String> {
    let salt = SaltString::generate(&mut OsRng);
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| format!("cannot hash the password: {e}"))
}

/// Whether `password` matches `phc`. CPU-heavy by design: call it off the async workers.
pub fn verify_password(password: &str, phc: &str) -> bool {
    match PasswordHash::new(phc) {
        Ok(parsed) => Argon2::default()
            .verify_password(password.as_bytes(), &parsed)
            .is_ok(),
        Err(_) => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::check_phc;

    #[test]
    fn hash_then_verify() {
        let h = hash_password("s3cret").unwrap();
        assert!(h.starts_with("$argon2id$"));
        assert_eq!(check_phc(&h), Ok(()));
        assert!(verify_password("s3cret", &h));
        assert!(!verify_password("s3cret ", &h));
    }

    #[test]
    fn dummy_hash_is_valid() {
        assert_eq!(check_phc(DUMMY_HASH), Ok(()));
        assert!(!verify_password("", DUMMY_HASH));
    }

    #[test]
    fn refuses_plain_text_and_other_algorithms() {
        assert!(check_phc("hunter2").is_err());
        assert!(check_phc("$pbkdf2-sha256$i=1000$c2FsdA$aGFzaA").is_err());
    }
}
