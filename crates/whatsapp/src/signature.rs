//! Signatures and the subscription handshake.
//!
//! Meta signs every POST with HMAC-SHA256 over the body bytes exactly as sent
//! (non-ASCII escaped as `\uXXXX`, `/` possibly as `\/`), so the check runs on
//! the raw bytes before any parsing: re-serialised JSON would not match. Every
//! comparison is constant time so that a caller cannot learn a secret or a
//! token byte by byte from response times.

use hmac::{Hmac, Mac};
use sha2::Sha256;
use subtle::ConstantTimeEq;

/// The prefix of `X-Hub-Signature-256` values.
const PREFIX: &str = "sha256=";

/// Why a webhook's signature was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    /// No `X-Hub-Signature-256` header came with the request.
    #[error(
        "the request has no X-Hub-Signature-256 header, so it cannot be shown to come from Meta"
    )]
    Missing,
    /// The header is not `sha256=` followed by 64 hexadecimal digits.
    #[error("the X-Hub-Signature-256 header is not `sha256=` followed by 64 hexadecimal digits")]
    Malformed,
    /// The header is well formed but no configured app secret produces it.
    #[error("the X-Hub-Signature-256 header does not match the body with any configured app secret (check WHATSAPP_APP_SECRET)")]
    Mismatch,
}

/// Checks `X-Hub-Signature-256` (`sha256=<64 hex>`) over the raw body bytes with any of the app secrets, in constant time (hmac `verify_slice`).
///
/// The hex digits may be lowercase (as Meta sends them) or uppercase: both
/// spell the same 32 bytes, and refusing one case would protect nothing.
/// Surrounding whitespace is ignored; the `sha256=` prefix is case sensitive.
/// With no secrets configured every signature is a [`SignatureError::Mismatch`].
pub fn verify(secrets: &[String], body: &[u8], header: Option<&str>) -> Result<(), SignatureError> {
    let header = header.ok_or(SignatureError::Missing)?.trim();
    let digits = header
        .strip_prefix(PREFIX)
        .ok_or(SignatureError::Malformed)?;
    if digits.len() != 64 {
        return Err(SignatureError::Malformed);
    }
    let expected = hex::decode(digits).map_err(|_| SignatureError::Malformed)?;
    let matched = secrets.iter().any(|secret| {
        let mut mac = keyed(secret);
        mac.update(body);
        mac.verify_slice(&expected).is_ok()
    });
    if matched {
        Ok(())
    } else {
        Err(SignatureError::Mismatch)
    }
}

/// The header value Meta would send for this body: `sha256=<hex>` (for tests, the phone simulator and the load generator).
pub fn sign(secret: &str, body: &[u8]) -> String {
    let mut mac = keyed(secret);
    mac.update(body);
    format!("{PREFIX}{}", hex::encode(mac.finalize().into_bytes()))
}

/// The subscription handshake: given the query's `hub.mode`, `hub.verify_token`, `hub.challenge`, returns the challenge to echo when mode is `subscribe` and the token equals (constant time, subtle) one of `tokens`; None otherwise.
///
/// An empty configured token matches nothing, so a blank setting never opens
/// the subscription to whoever sends an empty `hub.verify_token`.
pub fn handshake(
    mode: Option<&str>,
    token: Option<&str>,
    challenge: Option<&str>,
    tokens: &[String],
) -> Option<String> {
    if mode != Some("subscribe") {
        return None;
    }
    let token = token?.as_bytes();
    // Compare with every token, without stopping at the first match.
    let accepted = tokens
        .iter()
        .filter(|configured| !configured.is_empty())
        .fold(subtle::Choice::from(0), |any, configured| {
            any | configured.as_bytes().ct_eq(token)
        });
    if bool::from(accepted) {
        challenge.map(str::to_owned)
    } else {
        None
    }
}

/// An HMAC-SHA256 keyed with `secret`.
fn keyed(secret: &str) -> Hmac<Sha256> {
    // HMAC accepts keys of any length (long ones are hashed), so this cannot fail.
    Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("HMAC takes a key of any length")
}
