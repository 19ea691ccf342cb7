//! Random tokens handed to clients (refresh, verification and reset tokens, cart
//! tokens), and the hashes we keep instead of them.

use crate::{ApiError, ApiResult};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sha2::{Digest, Sha256};

/// 256 random bits, base64url: refresh, verification and reset tokens, OIDC state.
pub fn random_token() -> ApiResult<String> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).map_err(|e| ApiError::Internal(format!("no randomness: {e}")))?;
    Ok(URL_SAFE_NO_PAD.encode(bytes))
}

/// What we store for a token: its SHA-256 in hex. The tokens are random and long, so a
/// fast hash is enough; a stolen table yields nothing usable.
pub fn hash_token(token: &str) -> String {
    let digest = Sha256::digest(token.as_bytes());
    let mut out = String::with_capacity(64);
    for b in digest {
        out.push_str(&format!("{b:02x}"));
    }
    out
}

/// 256 random bits, for a key this process alone uses.
pub fn random_key() -> ApiResult<[u8; 32]> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).map_err(|e| ApiError::Internal(format!("no randomness: {e}")))?;
    Ok(bytes)
}

fn hmac_of(secret: &[u8], parts: &[&[u8]]) -> Option<hmac::Hmac<Sha256>> {
    use hmac::Mac;
    // HMAC takes keys of any length: this never fails.
    let mut mac = hmac::Hmac::<Sha256>::new_from_slice(secret).ok()?;
    for p in parts {
        mac.update(p);
    }
    Some(mac)
}

/// HMAC-SHA256 of `parts` (concatenated) under `secret`, in lower-case hex: signed links
/// and webhooks.
pub fn hmac_hex(secret: &[u8], parts: &[&[u8]]) -> String {
    use hmac::Mac;
    hmac_of(secret, parts)
        .map(|m| {
            m.finalize()
                .into_bytes()
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect()
        })
        .unwrap_or_default()
}

/// Whether `signature` (hex) is the HMAC-SHA256 of `parts` under `secret`, compared in
/// constant time.
pub fn hmac_matches(secret: &[u8], parts: &[&[u8]], signature: &str) -> bool {
    use hmac::Mac;
    let Some(given) = (0..signature.len())
        .step_by(2)
        .map(|i| {
            signature
                .get(i..i + 2)
                .and_then(|h| u8::from_str_radix(h, 16).ok())
        })
        .collect::<Option<Vec<u8>>>()
    else {
        return false;
    };
    hmac_of(secret, parts).is_some_and(|m| m.verify_slice(&given).is_ok())
}
