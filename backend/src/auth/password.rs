//! Password hashing with argon2id (the crate's default parameters: 19 MiB, 2 passes), off the
//! async runtime so a login never stalls other requests.

use argon2::{Argon2, PasswordHasher, PasswordVerifier};

pub fn hash_blocking(password: &str) -> anyhow::Result<String> {
    Argon2::default()
        .hash_password(password.as_bytes())
        .map(|h| h.to_string())
        .map_err(|e| anyhow::anyhow!("hashing password: {e}"))
}

pub async fn hash(password: String) -> anyhow::Result<String> {
    tokio::task::spawn_blocking(move || hash_blocking(&password)).await?
}

/// Checks a password. Unknown users are checked against a fixed hash so that the answer takes
/// as long as for a known user and does not reveal which usernames exist.
pub async fn verify(password: String, stored: Option<String>) -> bool {
    tokio::task::spawn_blocking(move || {
        let stored = stored.unwrap_or_else(|| DUMMY_HASH.to_string());
        Argon2::default()
            .verify_password(password.as_bytes(), stored.as_str())
            .is_ok()
    })
    .await
    .unwrap_or(false)
}

/// argon2id hash of a random string nobody knows, with the default parameters.
const DUMMY_HASH: &str = "$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHRzb21lc2FsdA$0dGaTHGU4nvk1mWG3vF1wlnvzmUQHV2fCQlCPoWb1qw";

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn hashes_verify_and_wrong_passwords_do_not() {
        let h = hash("geheim".into()).await.unwrap();
        assert!(h.starts_with("$argon2id$"));
        assert!(verify("geheim".into(), Some(h.clone())).await);
        assert!(!verify("fout".into(), Some(h)).await);
        assert!(!verify("geheim".into(), None).await);
    }

    #[test]
    fn dummy_hash_parses() {
        assert!(argon2::PasswordHash::new(DUMMY_HASH).is_ok());
    }
}
