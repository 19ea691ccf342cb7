//! Password policy and Argon2id hashing.
//!
//! Hashing runs on the blocking pool: one hash takes tens of milliseconds of CPU on
//! purpose, which would stall every request sharing the async worker.

use std::sync::OnceLock;

use argon2::Argon2;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use shop_kit::{ApiError, ApiResult};

pub const MIN_LENGTH: usize = 10;
pub const MAX_LENGTH: usize = 128;

/// Passwords people pick first; refused whatever their length.
const COMMON: &[&str] = &[
    "password",
    "password1",
    "password12",
    "password123",
    "password1234",
    "123456789",
    "1234567890",
    "12345678910",
    "qwertyuiop",
    "qwerty1234",
    "qwerty12345",
    "iloveyou12",
    "1q2w3e4r5t",
    "abcdefghij",
    "abc1234567",
    "letmein123",
    "welcome123",
    "changeme12",
    "administrator",
    "0123456789",
    "1111111111",
    "aaaaaaaaaa",
    "passw0rd12",
    "shop123456",
];

/// The policy, after NIST SP 800-63B: length and a blocklist, no composition rules.
/// The message says exactly what to change.
pub fn check_policy(password: &str, email: &str, name: &str) -> ApiResult<()> {
    let len = password.chars().count();
    if len < MIN_LENGTH {
        return Err(ApiError::bad_input(format!(
            "password: use at least {MIN_LENGTH} characters (this one has {len})"
        )));
    }
    if len > MAX_LENGTH {
        return Err(ApiError::bad_input(format!(
            "password: use at most {MAX_LENGTH} characters"
        )));
    }
    let lower = password.to_lowercase();
    if COMMON.contains(&lower.as_str()) {
        return Err(ApiError::bad_input(
            "password: this password is too common; choose another",
        ));
    }
    let first = lower.chars().next();
    if lower.chars().all(|c| Some(c) == first) {
        return Err(ApiError::bad_input(
            "password: a single repeated character is too easy to guess",
        ));
    }
    let local = email.split('@').next().unwrap_or_default().to_lowercase();
    if local.chars().count() >= 3 && lower.contains(&local) {
        return Err(ApiError::bad_input(
            "password: must not contain your e-mail address",
        ));
    }
    let name = name.trim().to_lowercase();
    if name.chars().count() >= 3 && lower.contains(&name) {
        return Err(ApiError::bad_input("password: must not contain your name"));
    }
    Ok(())
}

/// Argon2id with the crate's defaults (19 MiB, 2 passes, 1 lane: OWASP's minimum).
pub async fn hash(password: String) -> ApiResult<String> {
    let _turn = hashing_turn().await?;
    tokio::task::spawn_blocking(move || hash_now(&password))
        .await
        .map_err(|e| ApiError::Internal(format!("hashing task: {e}")))?
}

/// Checks `password` against the policy for this account and hashes it.
pub async fn checked_hash(password: &str, email: &str, name: &str) -> ApiResult<String> {
    check_policy(password, email, name)?;
    hash(password.to_string()).await
}

/// A turn to hash or verify. Each takes about 19 MiB and tens of milliseconds of one
/// core; run all at once (128 sign-ups in flight), they thrash the cores and memory and
/// every one of them finishes late, past the gateway's timeout. With one turn per core
/// they finish in arrival order at full speed; the rest wait their turn in line.
async fn hashing_turn() -> ApiResult<tokio::sync::SemaphorePermit<'static>> {
    static TURNS: OnceLock<tokio::sync::Semaphore> = OnceLock::new();
    TURNS
        .get_or_init(|| {
            let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
            tokio::sync::Semaphore::new(cores)
        })
        .acquire()
        .await
        .map_err(|e| ApiError::Internal(format!("hashing turns: {e}")))
}

fn hash_now(password: &str) -> ApiResult<String> {
    let mut salt = [0u8; 16];
    getrandom::fill(&mut salt).map_err(|e| ApiError::Internal(format!("no randomness: {e}")))?;
    let salt =
        SaltString::encode_b64(&salt).map_err(|e| ApiError::Internal(format!("salt: {e}")))?;
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| ApiError::Internal(format!("hashing: {e}")))
}

/// Whether `password` matches `stored`. Without a stored hash (no such account, or an
/// account without a password) it checks against a throwaway hash anyway, so the answer
/// takes as long either way and timing does not tell which accounts exist.
pub async fn verify(password: String, stored: Option<String>) -> bool {
    let Ok(_turn) = hashing_turn().await else {
        return false;
    };
    tokio::task::spawn_blocking(move || {
        let (hash, real) = match stored {
            Some(h) => (h, true),
            None => (dummy_hash().to_string(), false),
        };
        let Ok(parsed) = PasswordHash::new(&hash) else {
            return false;
        };
        let ok = Argon2::default()
            .verify_password(password.as_bytes(), &parsed)
            .is_ok();
        ok && real
    })
    .await
    .unwrap_or(false)
}

fn dummy_hash() -> &'static str {
    static DUMMY: OnceLock<String> = OnceLock::new();
    DUMMY.get_or_init(|| hash_now("not a password anyone has").unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_policy_explains_what_is_wrong() {
        let err = |p: &str| match check_policy(p, "ann.lee@example.com", "Ann Lee") {
            Err(ApiError::BadUserInput(m)) => m,
            other => panic!("{p}: {other:?}"),
        };
        assert!(err("short").contains("at least 10"));
        assert!(err("Password123").contains("too common"));
        assert!(err("zzzzzzzzzzzz").contains("repeated"));
        assert!(err("my-ann.lee-pass").contains("e-mail"));
        assert!(err("x Ann Lee x 9").contains("name"));
        assert!(err(&"a1".repeat(65)).contains("at most 128"));
        assert!(check_policy("correct horse battery", "ann@example.com", "Ann").is_ok());
    }

    #[tokio::test]
    async fn hashes_verify_only_their_password_and_are_salted() {
        let a = hash("correct horse battery".into()).await.expect("hash");
        let b = hash("correct horse battery".into()).await.expect("hash");
        assert!(a.starts_with("$argon2id$"));
        assert_ne!(a, b, "salted");
        assert!(verify("correct horse battery".into(), Some(a.clone())).await);
        assert!(!verify("wrong horse battery".into(), Some(a)).await);
        assert!(!verify("not a password anyone has".into(), None).await);
    }
}
