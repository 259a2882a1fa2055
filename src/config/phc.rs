//! Whether a configured `password-hash` is a well-formed Argon2 PHC string. Part of validating
//! the configuration, so it lives here and security (which verifies passcodes against these
//! hashes) depends on config, not the other way round.

use argon2::password_hash::PasswordHash;

/// Checks that `phc` is an Argon2 PHC string; the reason is phrased for the operator.
pub fn check_phc(phc: &str) -> Result<(), String> {
    if !phc.starts_with('$') {
        // Never echo the value: it may be a plain password pasted by mistake.
        return Err("is not a PHC string but a placeholder or a plain password; replace it with the output of `wrenmq user hash`".to_string());
    }
    let parsed = PasswordHash::new(phc)
        .map_err(|e| format!("is not a PHC string ({e}); make one with `wrenmq user hash`"))?;
    if !parsed.algorithm.as_str().starts_with("argon2") {
        return Err(format!(
            "uses algorithm '{}'; only argon2 (argon2id, argon2i, argon2d) hashes are accepted",
            parsed.algorithm
        ));
    }
    if parsed.hash.is_none() || parsed.salt.is_none() {
        return Err("has no salt or no hash part; make one with `wrenmq user hash`".to_string());
    }
    Ok(())
}
