//! Passwords (argon2), API tokens and session secrets: creating them, and
//! finding the user a request acts for.

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;
use rand_core::{OsRng, RngCore};
use switchboard_store::{Store, User};

/// The roles, from most to least rights.
pub const ROLES: &[&str] = &["admin", "manager", "agent"];

/// A new random secret: 32 bytes from the OS, hex, with a prefix saying what it is.
pub fn new_secret(prefix: &str) -> String {
    let mut bytes = [0u8; 32];
    OsRng.fill_bytes(&mut bytes);
    format!("{prefix}_{}", hex::encode(bytes))
}

/// The hash kept in the database for a token or session secret.
pub fn secret_hash(secret: &str) -> String {
    switchboard_store::body_hash(secret.as_bytes())
}

/// An argon2id hash of a password (PHC string).
pub fn hash_password(password: &str) -> Result<String, String> {
    let salt = SaltString::generate(&mut OsRng);
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| format!("cannot hash the password: {e}"))
}

/// Whether a password matches its stored hash.
pub fn password_matches(password: &str, hash: &str) -> bool {
    PasswordHash::new(hash)
        .map(|h| {
            Argon2::default()
                .verify_password(password.as_bytes(), &h)
                .is_ok()
        })
        .unwrap_or(false)
}

/// Creates or updates a user; with no password given, a new one is made up
/// and returned (printed once by the CLI). Every mistake is one sentence.
pub async fn add_user(
    store: &Store,
    email: &str,
    name: &str,
    role: &str,
    password: Option<&str>,
) -> Result<(User, Option<String>), String> {
    let email = email.trim();
    if !looks_like_email(email) {
        return Err(format!("`{email}` is not an e-mail address"));
    }
    if !ROLES.contains(&role) {
        return Err(format!(
            "`{role}` is not a role; the roles are {}",
            ROLES.join(", ")
        ));
    }
    if name.trim().is_empty() {
        return Err("the user needs a name (--name)".into());
    }
    let (password, made_up) = match password {
        Some(p) if p.chars().count() < 8 => {
            return Err("the password is too short: use at least 8 characters".into())
        }
        Some(p) => (p.to_string(), None),
        None => {
            let p = new_secret("pw")[3..23].to_string();
            (p.clone(), Some(p))
        }
    };
    let hash = hash_password(&password)?;
    store
        .upsert_user(email, name.trim(), role, Some(&hash), crate::now_ms())
        .await
        .map_err(|e| e.to_string())?;
    let user = store
        .user_by_email(email)
        .await
        .map_err(|e| e.to_string())?
        .ok_or("the user was not stored")?;
    Ok((user, made_up))
}

/// Creates an API token acting for a user; returns the token (shown once).
pub async fn create_token(store: &Store, email: &str, name: &str) -> Result<String, String> {
    let user = store
        .user_by_email(email)
        .await
        .map_err(|e| e.to_string())?
        .ok_or_else(|| {
            format!("there is no user `{email}`; add one with `switchboard user add`")
        })?;
    let token = new_secret("sbt");
    store
        .create_token(user.id, &secret_hash(&token), name, crate::now_ms())
        .await
        .map_err(|e| e.to_string())?;
    Ok(token)
}

fn looks_like_email(s: &str) -> bool {
    match s.split_once('@') {
        Some((local, domain)) => {
            !local.is_empty()
                && domain.contains('.')
                && !domain.starts_with('.')
                && !s.contains(char::is_whitespace)
        }
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_password_matches_its_hash_and_nothing_else() {
        let h = hash_password("correct horse").unwrap();
        assert!(h.starts_with("$argon2id$"));
        assert!(password_matches("correct horse", &h));
        assert!(!password_matches("correct horse!", &h));
        assert!(!password_matches("correct horse", "not a hash"));
    }

    #[test]
    fn secrets_are_new_each_time_and_only_their_hash_is_kept() {
        let a = new_secret("sbt");
        let b = new_secret("sbt");
        assert_ne!(a, b);
        assert_eq!(a.len(), 4 + 64);
        assert_eq!(secret_hash(&a).len(), 64);
        assert_ne!(secret_hash(&a), a);
    }

    #[test]
    fn e_mail_addresses_are_checked_loosely() {
        assert!(looks_like_email("ana@acme.com"));
        assert!(!looks_like_email("ana"));
        assert!(!looks_like_email("ana@acme"));
        assert!(!looks_like_email("a na@acme.com"));
    }
}
