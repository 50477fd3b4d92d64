//! Signed requests, compatible with the original project's client libraries
//! (`--require-signature`).
//!
//! A client sends `X-Vendor-ID`, `X-Timestamp` (Unix seconds) and `X-Signature`: the lowercase
//! hex HMAC-SHA256, keyed with the vendor's secret, of `tool|user|timestamp`, followed by
//! `|api_key` when the request carries `Authorization: Bearer <api_key>`. See [`sign`].
//!
//! A signature is accepted when the vendor is known, the timestamp is within
//! [`SIGNATURE_WINDOW`] of the server's clock, the HMAC matches (compared in constant time) and
//! the same signature was not accepted before: accepted signatures are remembered until their
//! timestamp leaves the window, so a captured request cannot be replayed.

use axum::http::HeaderMap;
use hmac::{Hmac, Mac};
use realtime_layer::Clock;
use sha2::Sha256;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// How far `X-Timestamp` may be from the server's clock, either way.
pub const SIGNATURE_WINDOW: Duration = Duration::from_secs(300);

/// Most signatures remembered for replay detection; beyond it new signed requests are refused
/// (503) until old ones leave the window, so memory stays bounded.
pub const MAX_REMEMBERED_SIGNATURES: usize = 1_000_000;

type HmacSha256 = Hmac<Sha256>;

/// Why a signed request was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    /// `X-Signature`, `X-Timestamp` or `X-Vendor-ID` is absent.
    #[error("the request is not signed: X-Signature, X-Timestamp and X-Vendor-ID are required")]
    Missing,
    /// `X-Vendor-ID` names no configured vendor.
    #[error("unknown vendor (X-Vendor-ID)")]
    UnknownVendor,
    /// `X-Timestamp` is further than the window from now.
    #[error("X-Timestamp is more than 300 s away from the server's clock")]
    Expired,
    /// The signature (or the timestamp) is malformed or does not match.
    #[error("the signature does not match the request")]
    Invalid,
    /// This exact signature was already used.
    #[error("this signature was already used (replay)")]
    Replayed,
    /// The replay memory is full.
    #[error("too many signed requests in the last 300 s; retry later")]
    Busy,
}

impl SignatureError {
    /// Short machine code for the JSON error.
    pub fn code(&self) -> &'static str {
        match self {
            SignatureError::Missing => "signature_missing",
            SignatureError::UnknownVendor => "unknown_vendor",
            SignatureError::Expired => "signature_expired",
            SignatureError::Invalid => "signature_invalid",
            SignatureError::Replayed => "signature_replayed",
            SignatureError::Busy => "signature_busy",
        }
    }
}

/// The signature of a request, exactly as the original clients compute it: lowercase hex of
/// HMAC-SHA256(`secret`, `tool|user|timestamp` + `|api_key` when a Bearer key is sent).
pub fn sign(
    secret: &[u8],
    tool: &str,
    user: &str,
    timestamp: i64,
    api_key: Option<&str>,
) -> String {
    let mac = message_mac(secret, tool, user, &timestamp.to_string(), api_key);
    hex(&mac.finalize().into_bytes())
}

fn message_mac(
    secret: &[u8],
    tool: &str,
    user: &str,
    timestamp: &str,
    api_key: Option<&str>,
) -> HmacSha256 {
    // HMAC takes keys of any length; `new_from_slice` cannot fail for it.
    let mut mac = match HmacSha256::new_from_slice(secret) {
        Ok(mac) => mac,
        Err(_) => unreachable!("HMAC accepts keys of any length"),
    };
    mac.update(tool.as_bytes());
    mac.update(b"|");
    mac.update(user.as_bytes());
    mac.update(b"|");
    mac.update(timestamp.as_bytes());
    if let Some(key) = api_key {
        mac.update(b"|");
        mac.update(key.as_bytes());
    }
    mac
}

fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        out.push(DIGITS[usize::from(b >> 4)] as char);
        out.push(DIGITS[usize::from(b & 0x0f)] as char);
    }
    out
}

fn unhex(text: &str) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) {
        return None;
    }
    text.as_bytes()
        .chunks(2)
        .map(|pair| {
            let digit = |c: u8| (c as char).to_digit(16);
            Some((digit(pair[0])? * 16 + digit(pair[1])?) as u8)
        })
        .collect()
}

/// Checks request signatures against the vendors' secrets and remembers used ones.
pub struct SignatureVerifier {
    vendors: HashMap<String, Vec<u8>>,
    clock: Arc<dyn Clock>,
    seen: Mutex<Seen>,
}

#[derive(Default)]
struct Seen {
    /// Accepted MACs -> Unix second after which their timestamp is stale anyway.
    until: HashMap<[u8; 32], i64>,
    last_prune: i64,
}

impl std::fmt::Debug for SignatureVerifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SignatureVerifier")
            .field("vendors", &self.vendors.len())
            .finish_non_exhaustive()
    }
}

impl SignatureVerifier {
    /// A verifier for `vendors` (`vendor id -> secret`), reading time from `clock`.
    pub fn new(vendors: Vec<(String, String)>, clock: Arc<dyn Clock>) -> Self {
        SignatureVerifier {
            vendors: vendors
                .into_iter()
                .map(|(id, secret)| (id, secret.into_bytes()))
                .collect(),
            clock,
            seen: Mutex::new(Seen::default()),
        }
    }

    /// Verifies the signature headers of a request about `tool` and `user`, sent with Bearer
    /// `api_key` if any; on success the signature cannot be used again.
    pub fn verify(
        &self,
        headers: &HeaderMap,
        tool: &str,
        user: &str,
        api_key: Option<&str>,
    ) -> Result<(), SignatureError> {
        let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
        let (Some(signature), Some(timestamp), Some(vendor)) = (
            header("x-signature"),
            header("x-timestamp"),
            header("x-vendor-id"),
        ) else {
            return Err(SignatureError::Missing);
        };
        let secret = self
            .vendors
            .get(vendor)
            .ok_or(SignatureError::UnknownVendor)?;
        let ts: i64 = timestamp
            .trim()
            .parse()
            .map_err(|_| SignatureError::Invalid)?;
        let now = i64::try_from(self.clock.now_ms() / 1000).unwrap_or(i64::MAX);
        let window = SIGNATURE_WINDOW.as_secs() as i64;
        if ts.abs_diff(now) > window.unsigned_abs() {
            return Err(SignatureError::Expired);
        }
        let presented = unhex(signature.trim()).ok_or(SignatureError::Invalid)?;
        let mac = message_mac(secret, tool, user, timestamp.trim(), api_key);
        let Ok(mac_bytes) = <[u8; 32]>::try_from(presented.as_slice()) else {
            return Err(SignatureError::Invalid);
        };
        mac.verify_slice(&mac_bytes)
            .map_err(|_| SignatureError::Invalid)?;
        self.remember(mac_bytes, ts + window, now)
    }

    fn remember(&self, mac: [u8; 32], until: i64, now: i64) -> Result<(), SignatureError> {
        let mut seen = self.seen.lock().unwrap_or_else(|p| p.into_inner());
        if now != seen.last_prune {
            seen.until.retain(|_, expires| *expires >= now);
            seen.last_prune = now;
        }
        if seen.until.contains_key(&mac) {
            return Err(SignatureError::Replayed);
        }
        if seen.until.len() >= MAX_REMEMBERED_SIGNATURES {
            return Err(SignatureError::Busy);
        }
        seen.until.insert(mac, until);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_round_trip_and_known_vector() {
        // RFC 4231 test case 2: key "Jefe", data "what do ya want for nothing?".
        let mut mac = HmacSha256::new_from_slice(b"Jefe").unwrap();
        mac.update(b"what do ya want for nothing?");
        assert_eq!(
            hex(&mac.finalize().into_bytes()),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
        assert_eq!(unhex("00ff10").unwrap(), vec![0, 255, 16]);
        assert!(unhex("0g").is_none() && unhex("abc").is_none());
    }
}
