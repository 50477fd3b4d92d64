//! Signed requests (`--require-signature`), in two forms.
//!
//! Every signed borrow sends `X-Vendor-ID`, `X-Timestamp` (Unix seconds) and `X-Signature`: the
//! lowercase hex HMAC-SHA256, keyed with the vendor's secret, of a *signed text*.
//!
//! - **Nonce form** (recommended): the request also sends `X-Nonce`, 16 to 64 URL-safe
//!   characters (`A-Z a-z 0-9 - _`) chosen at random for each request, and the signed text has
//!   every field length-prefixed: `<n>:<tool>|<n>:<user>|<n>:<timestamp>|<n>:<nonce>`, then
//!   `|<n>:<api_key>` when the request carries `Authorization: Bearer <api_key>`, where `<n>` is
//!   the field's length in bytes (UTF-8), in decimal ([`nonce_text`], [`sign_with_nonce`]). The
//!   lengths make the text unambiguous: tool `A|B` with user `u` and tool `A` with user `B|u`
//!   sign different bytes. A nonce is accepted once with its timestamp: the replay memory keeps
//!   (vendor, timestamp, nonce) until the timestamp leaves the window, as OAuth 1.0 scopes its
//!   nonces (RFC 5849, section 3.3). A replay carries the same signed timestamp, so it is
//!   refused; a fresh nonce per request, as clients send, never meets this limit.
//! - **Nonce-less form**, as the original project's clients sign: `tool|user|timestamp`, then
//!   `|api_key` with a Bearer key ([`sign`]). Two borrows of one tool by one user within one
//!   second carry the same signature, so a repeat cannot be told from a replay: by default a
//!   repeated signature is accepted (and counted); with `--strict-replay`
//!   ([`SignatureVerifier::strict_replay`]) it is refused, as a replay.
//!
//! [`SignatureVerifier::verify`] checks the vendor, the timestamp (within [`SIGNATURE_WINDOW`] of
//! the server's clock) and the HMAC (in constant time), and answers what the replay memory must
//! remember ([`Signed`]). The memory itself is the database's (the pool's `signature_replays`
//! table, so a restart or a second process on the same database refuses a replay too) and, in
//! cluster mode, Redis's ([`super::replay`]).

use axum::http::{HeaderMap, HeaderName};
use hmac::{Hmac, Mac};
use realtime_layer::Clock;
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// How far `X-Timestamp` may be from the server's clock, either way.
pub const SIGNATURE_WINDOW: Duration = Duration::from_secs(300);

/// Fewest characters of an `X-Nonce`.
pub const NONCE_MIN_CHARS: usize = 16;

/// Most characters of an `X-Nonce`.
pub const NONCE_MAX_CHARS: usize = 64;

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
    /// `X-Nonce` is not 16 to 64 URL-safe characters.
    #[error("X-Nonce must be 16 to 64 characters of A-Z, a-z, 0-9, '-' and '_'")]
    InvalidNonce,
    /// This nonce (or, with `--strict-replay`, this nonce-less signature) was already used.
    #[error("this signature was already used (replay); sign each request with a new X-Nonce")]
    Replayed,
    /// The replay memory is full.
    #[error("too many signed requests in the last 300 s; retry later")]
    Busy,
    /// The replay memory (Redis, in cluster mode) cannot be reached.
    #[error("the replay check is unavailable (Redis cannot be reached); retry later")]
    Unavailable,
}

impl SignatureError {
    /// Short machine code for the JSON error.
    pub fn code(&self) -> &'static str {
        match self {
            SignatureError::Missing => "signature_missing",
            SignatureError::UnknownVendor => "unknown_vendor",
            SignatureError::Expired => "signature_expired",
            SignatureError::Invalid => "signature_invalid",
            SignatureError::InvalidNonce => "nonce_invalid",
            SignatureError::Replayed => "signature_replayed",
            SignatureError::Busy => "signature_busy",
            SignatureError::Unavailable => "replay_check_unavailable",
        }
    }
}

/// `X-Signature`: the lowercase hex HMAC-SHA256 of the signed text.
pub const X_SIGNATURE: HeaderName = HeaderName::from_static("x-signature");
/// `X-Timestamp`: Unix seconds.
pub const X_TIMESTAMP: HeaderName = HeaderName::from_static("x-timestamp");
/// `X-Vendor-ID`: whose secret signed.
pub const X_VENDOR_ID: HeaderName = HeaderName::from_static("x-vendor-id");
/// `X-Nonce`: 16 to 64 URL-safe characters, new for each request (the nonce form).
pub const X_NONCE: HeaderName = HeaderName::from_static("x-nonce");

/// Which form a request was signed in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SignatureForm {
    /// With `X-Nonce`: each signature is used once.
    Nonce,
    /// Without a nonce, as the original clients sign.
    NonceLess,
}

/// A verified signature: what the replay memory must remember, and until when.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Signed {
    /// The form it came in.
    pub form: SignatureForm,
    /// What identifies a replay: a digest of vendor, timestamp and nonce (nonce form), or of the signature
    /// (nonce-less form).
    pub replay_key: [u8; 16],
    /// Unix second after which the timestamp is stale (a replay fails the clock check then), so
    /// the memory may forget it.
    pub expires_at: i64,
    /// Whether a repeat of this signature is accepted (nonce-less form without
    /// `--strict-replay`).
    pub repeat_allowed: bool,
}

/// The signature of a request in the nonce-less form, exactly as the original clients compute
/// it: lowercase hex of HMAC-SHA256(`secret`, `tool|user|timestamp` + `|api_key` when a Bearer
/// key is sent).
pub fn sign(
    secret: &[u8],
    tool: &str,
    user: &str,
    timestamp: i64,
    api_key: Option<&str>,
) -> String {
    let mut mac = new_mac(secret);
    write_legacy_text(tool, user, &timestamp.to_string(), api_key, |p| {
        mac.update(p)
    });
    hex(&mac.finalize().into_bytes())
}

/// The signature of a request in the nonce form: lowercase hex of HMAC-SHA256(`secret`,
/// [`nonce_text`]).
///
/// ```
/// use license_demo::auth::signature::{nonce_text, sign_with_nonce};
///
/// let text = nonce_text("CAD", "ann", "1700000000", "q8Zp1c0Xy7LrT2mVd9Wk", None);
/// assert_eq!(text, b"3:CAD|3:ann|10:1700000000|20:q8Zp1c0Xy7LrT2mVd9Wk");
/// let signature = sign_with_nonce(b"secret", "CAD", "ann", 1_700_000_000, "q8Zp1c0Xy7LrT2mVd9Wk", None);
/// assert_eq!(signature.len(), 64);
/// ```
pub fn sign_with_nonce(
    secret: &[u8],
    tool: &str,
    user: &str,
    timestamp: i64,
    nonce: &str,
    api_key: Option<&str>,
) -> String {
    mac_nonce_text(new_mac(secret), tool, user, timestamp, nonce, api_key)
}

/// `mac` (keyed with the vendor's secret) over the nonce form's signed text, as lowercase hex.
fn mac_nonce_text(
    mut mac: HmacSha256,
    tool: &str,
    user: &str,
    timestamp: i64,
    nonce: &str,
    api_key: Option<&str>,
) -> String {
    write_nonce_text(tool, user, &timestamp.to_string(), nonce, api_key, |p| {
        mac.update(p)
    });
    hex(&mac.finalize().into_bytes())
}

/// The signed text of the nonce form: each field as `<length in bytes>:<bytes>`, joined by `|`:
/// tool, user, timestamp (as sent in `X-Timestamp`), nonce, then the Bearer API key if sent.
pub fn nonce_text(
    tool: &str,
    user: &str,
    timestamp: &str,
    nonce: &str,
    api_key: Option<&str>,
) -> Vec<u8> {
    let mut text = Vec::with_capacity(tool.len() + user.len() + nonce.len() + 64);
    write_nonce_text(tool, user, timestamp, nonce, api_key, |part| {
        text.extend_from_slice(part)
    });
    text
}

/// Hands the pieces of [`nonce_text`] to `out`, in order (no allocation: the verifier feeds them
/// straight into the HMAC).
fn write_nonce_text(
    tool: &str,
    user: &str,
    timestamp: &str,
    nonce: &str,
    api_key: Option<&str>,
    mut out: impl FnMut(&[u8]),
) {
    let fields = [
        Some(tool),
        Some(user),
        Some(timestamp),
        Some(nonce),
        api_key,
    ];
    for (i, field) in fields.into_iter().flatten().enumerate() {
        if i > 0 {
            out(b"|");
        }
        // The length in decimal, from a stack buffer.
        let mut digits = [0u8; 20];
        let mut at = digits.len();
        let mut n = field.len();
        loop {
            at -= 1;
            digits[at] = b'0' + (n % 10) as u8;
            n /= 10;
            if n == 0 {
                break;
            }
        }
        out(&digits[at..]);
        out(b":");
        out(field.as_bytes());
    }
}

/// Hands the pieces of the nonce-less signed text (`tool|user|timestamp[|api_key]`) to `out`.
fn write_legacy_text(
    tool: &str,
    user: &str,
    timestamp: &str,
    api_key: Option<&str>,
    mut out: impl FnMut(&[u8]),
) {
    for (i, field) in [Some(tool), Some(user), Some(timestamp), api_key]
        .into_iter()
        .flatten()
        .enumerate()
    {
        if i > 0 {
            out(b"|");
        }
        out(field.as_bytes());
    }
}

/// A vendor's key, ready to sign many borrows in the nonce form (a client's side, e.g. the
/// stress tool): the HMAC key schedule is done once, not per request, and [`next_nonce`]
/// hands out nonces that never repeat (16 random hex digits from the operating system, then a
/// counter) without a system call each.
///
/// ```
/// use license_demo::auth::signature::{sign_with_nonce, valid_nonce, NonceSigner};
///
/// let signer = NonceSigner::new(b"secret");
/// let (a, b) = (signer.next_nonce(), signer.next_nonce());
/// assert!(valid_nonce(&a) && a != b);
/// assert_eq!(
///     signer.sign("CAD", "ann", 1_700_000_000, &a, None),
///     sign_with_nonce(b"secret", "CAD", "ann", 1_700_000_000, &a, None)
/// );
/// ```
///
/// [`next_nonce`]: NonceSigner::next_nonce
pub struct NonceSigner {
    keyed: HmacSha256,
    prefix: String,
    counter: AtomicU64,
}

impl std::fmt::Debug for NonceSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("NonceSigner(***)")
    }
}

impl NonceSigner {
    /// A signer for the vendor secret `secret`.
    pub fn new(secret: &[u8]) -> Self {
        let mut prefix = new_nonce();
        prefix.truncate(16);
        NonceSigner {
            keyed: new_mac(secret),
            prefix,
            counter: AtomicU64::new(0),
        }
    }

    /// A nonce this signer has not handed out before: `<16 random hex>-<counter in hex>`.
    pub fn next_nonce(&self) -> String {
        let n = self.counter.fetch_add(1, Ordering::Relaxed);
        format!("{}-{n:x}", self.prefix)
    }

    /// [`sign_with_nonce`] with this signer's secret.
    pub fn sign(
        &self,
        tool: &str,
        user: &str,
        timestamp: i64,
        nonce: &str,
        api_key: Option<&str>,
    ) -> String {
        mac_nonce_text(self.keyed.clone(), tool, user, timestamp, nonce, api_key)
    }
}

/// A fresh nonce: 32 random hex digits (from the operating system's generator).
pub fn new_nonce() -> String {
    uuid::Uuid::new_v4().simple().to_string()
}

/// Whether `nonce` is 16 to 64 URL-safe characters.
pub fn valid_nonce(nonce: &str) -> bool {
    (NONCE_MIN_CHARS..=NONCE_MAX_CHARS).contains(&nonce.len())
        && nonce
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

fn new_mac(secret: &[u8]) -> HmacSha256 {
    // HMAC takes keys of any length; `new_from_slice` cannot fail for it.
    match HmacSha256::new_from_slice(secret) {
        Ok(mac) => mac,
        Err(_) => unreachable!("HMAC accepts keys of any length"),
    }
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

/// 64 hex digits (either case) as 32 bytes.
fn unhex32(text: &str) -> Option<[u8; 32]> {
    let bytes = text.as_bytes();
    if bytes.len() != 64 {
        return None;
    }
    let digit = |c: u8| (c as char).to_digit(16).map(|d| d as u8);
    let mut out = [0u8; 32];
    for (i, pair) in bytes.chunks_exact(2).enumerate() {
        out[i] = (digit(pair[0])? << 4) | digit(pair[1])?;
    }
    Some(out)
}

/// The first 16 bytes of SHA-256 over `parts`, each followed by a NUL.
fn digest16(parts: &[&[u8]]) -> [u8; 16] {
    let mut hasher = Sha256::new();
    for part in parts {
        hasher.update(part);
        hasher.update([0]);
    }
    let full = hasher.finalize();
    let mut out = [0u8; 16];
    out.copy_from_slice(&full[..16]);
    out
}

/// Checks request signatures against the vendors' secrets.
pub struct SignatureVerifier {
    /// Each vendor's HMAC state keyed with its secret (cloned per request: the key schedule is
    /// computed once, not per signature).
    vendors: HashMap<String, HmacSha256>,
    clock: Arc<dyn Clock>,
    strict_replay: bool,
    nonceless: AtomicU64,
}

impl std::fmt::Debug for SignatureVerifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SignatureVerifier")
            .field("vendors", &self.vendors.len())
            .field("strict_replay", &self.strict_replay)
            .finish_non_exhaustive()
    }
}

impl SignatureVerifier {
    /// A verifier for `vendors` (`vendor id -> secret`), reading time from `clock`; nonce-less
    /// repeats are accepted (see [`strict_replay`](Self::strict_replay)).
    pub fn new(vendors: Vec<(String, String)>, clock: Arc<dyn Clock>) -> Self {
        SignatureVerifier {
            vendors: vendors
                .into_iter()
                .map(|(id, secret)| (id, new_mac(secret.as_bytes())))
                .collect(),
            clock,
            strict_replay: false,
            nonceless: AtomicU64::new(0),
        }
    }

    /// `--strict-replay`: a repeated nonce-less signature is refused as a replay (`401
    /// signature_replayed`). Clients of the nonce-less form then get one borrow per tool, user
    /// (and API key) per second; the nonce form is unaffected.
    pub fn strict_replay(mut self, strict: bool) -> Self {
        self.strict_replay = strict;
        self
    }

    /// Whether repeated nonce-less signatures are refused.
    pub fn is_strict(&self) -> bool {
        self.strict_replay
    }

    /// Verified borrows signed in the nonce-less form since start.
    pub fn nonceless_count(&self) -> u64 {
        self.nonceless.load(Ordering::Relaxed)
    }

    /// Verifies the signature headers of a request about `tool` and `user`, sent with Bearer
    /// `api_key` if any. Replays are not checked here: the answer says what to remember.
    pub fn verify(
        &self,
        headers: &HeaderMap,
        tool: &str,
        user: &str,
        api_key: Option<&str>,
    ) -> Result<Signed, SignatureError> {
        let header = |name: &HeaderName| headers.get(name).and_then(|v| v.to_str().ok());
        let (Some(signature), Some(timestamp), Some(vendor)) = (
            header(&X_SIGNATURE),
            header(&X_TIMESTAMP),
            header(&X_VENDOR_ID),
        ) else {
            return Err(SignatureError::Missing);
        };
        let nonce = match headers.get(&X_NONCE) {
            None => None,
            Some(value) => match value.to_str() {
                Ok(n) if valid_nonce(n.trim()) => Some(n.trim()),
                _ => return Err(SignatureError::InvalidNonce),
            },
        };
        let (secret_vendor, keyed) = self
            .vendors
            .get_key_value(vendor)
            .ok_or(SignatureError::UnknownVendor)?;
        let timestamp = timestamp.trim();
        let ts: i64 = timestamp.parse().map_err(|_| SignatureError::Invalid)?;
        let now = i64::try_from(self.clock.now_ms() / 1000).unwrap_or(i64::MAX);
        let window = SIGNATURE_WINDOW.as_secs() as i64;
        if ts.abs_diff(now) > window.unsigned_abs() {
            return Err(SignatureError::Expired);
        }
        let presented = unhex32(signature.trim()).ok_or(SignatureError::Invalid)?;
        let mut mac = keyed.clone();
        match nonce {
            Some(nonce) => {
                write_nonce_text(tool, user, timestamp, nonce, api_key, |p| mac.update(p))
            }
            None => write_legacy_text(tool, user, timestamp, api_key, |p| mac.update(p)),
        }
        mac.verify_slice(&presented)
            .map_err(|_| SignatureError::Invalid)?;
        let expires_at = ts.saturating_add(window);
        Ok(match nonce {
            Some(nonce) => Signed {
                form: SignatureForm::Nonce,
                replay_key: digest16(&[
                    b"nonce",
                    secret_vendor.as_bytes(),
                    &ts.to_be_bytes(),
                    nonce.as_bytes(),
                ]),
                expires_at,
                repeat_allowed: false,
            },
            None => {
                self.nonceless.fetch_add(1, Ordering::Relaxed);
                Signed {
                    form: SignatureForm::NonceLess,
                    replay_key: digest16(&[b"signature", &presented]),
                    expires_at,
                    repeat_allowed: !self.strict_replay,
                }
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;
    use realtime_layer::ManualClock;

    #[test]
    fn hex_round_trip_and_known_vector() {
        // RFC 4231 test case 2: key "Jefe", data "what do ya want for nothing?".
        let mut mac = HmacSha256::new_from_slice(b"Jefe").unwrap();
        mac.update(b"what do ya want for nothing?");
        assert_eq!(
            hex(&mac.finalize().into_bytes()),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
        let text = "00ff10".repeat(10) + "abCD";
        let bytes = unhex32(&text).unwrap();
        assert_eq!(
            (bytes[0], bytes[1], bytes[2], bytes[31]),
            (0, 255, 16, 0xcd)
        );
        assert!(unhex32(&"0g".repeat(32)).is_none() && unhex32("abc").is_none());
    }

    #[test]
    fn the_nonce_text_is_unambiguous() {
        let a = nonce_text("A|B", "u", "1", "n", None);
        let b = nonce_text("A", "B|u", "1", "n", None);
        assert_ne!(a, b);
        assert_eq!(a, b"3:A|B|1:u|1:1|1:n");
        // Lengths are bytes, not characters.
        assert_eq!(
            nonce_text("é", "u", "1", "n", Some("k")),
            "2:é|1:u|1:1|1:n|1:k".as_bytes()
        );
        assert!(valid_nonce(&new_nonce()));
        assert!(!valid_nonce("short") && !valid_nonce(&"a".repeat(65)));
        assert!(!valid_nonce("sixteen chars ok") && valid_nonce("sixteen_chars-ok"));
    }

    fn headers(vendor: &str, ts: i64, signature: &str, nonce: Option<&str>) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert("x-vendor-id", HeaderValue::from_str(vendor).unwrap());
        h.insert(
            "x-timestamp",
            HeaderValue::from_str(&ts.to_string()).unwrap(),
        );
        h.insert("x-signature", HeaderValue::from_str(signature).unwrap());
        if let Some(n) = nonce {
            h.insert("x-nonce", HeaderValue::from_str(n).unwrap());
        }
        h
    }

    #[test]
    fn both_forms_verify_and_name_what_to_remember() {
        let clock = ManualClock::new(1_700_000_000_000);
        let secret = "vendor-secret-0123456789";
        let v = SignatureVerifier::new(vec![("v".into(), secret.into())], Arc::new(clock));
        let ts = 1_700_000_000;
        let nonce = "0123456789abcdef";
        let sig = sign_with_nonce(secret.as_bytes(), "T", "u", ts, nonce, Some("key"));
        let ok = v
            .verify(&headers("v", ts, &sig, Some(nonce)), "T", "u", Some("key"))
            .unwrap();
        assert_eq!((ok.form, ok.repeat_allowed), (SignatureForm::Nonce, false));
        assert_eq!(ok.expires_at, ts + 300);
        // The same signature without the key, for another user, or as the nonce-less form.
        let h = headers("v", ts, &sig, Some(nonce));
        assert_eq!(v.verify(&h, "T", "u", None), Err(SignatureError::Invalid));
        assert_eq!(
            v.verify(&h, "T", "w", Some("key")),
            Err(SignatureError::Invalid)
        );
        let h = headers("v", ts, &sig, None);
        assert_eq!(
            v.verify(&h, "T", "u", Some("key")),
            Err(SignatureError::Invalid)
        );
        let h = headers("v", ts, &sig, Some("bad nonce!"));
        assert_eq!(
            v.verify(&h, "T", "u", Some("key")),
            Err(SignatureError::InvalidNonce)
        );
        // The nonce-less form: a repeat is allowed unless strict.
        let legacy = sign(secret.as_bytes(), "T", "u", ts, None);
        let h = headers("v", ts, &legacy, None);
        let first = v.verify(&h, "T", "u", None).unwrap();
        assert_eq!(first.form, SignatureForm::NonceLess);
        assert!(first.repeat_allowed);
        assert_ne!(first.replay_key, ok.replay_key);
        assert_eq!(v.nonceless_count(), 1);
        let clock = ManualClock::new(1_700_000_000_000);
        let strict = SignatureVerifier::new(vec![("v".into(), secret.into())], Arc::new(clock))
            .strict_replay(true);
        assert!(!strict.verify(&h, "T", "u", None).unwrap().repeat_allowed);
        // Stale either way.
        let old = sign_with_nonce(secret.as_bytes(), "T", "u", ts - 301, nonce, None);
        let h = headers("v", ts - 301, &old, Some(nonce));
        assert_eq!(v.verify(&h, "T", "u", None), Err(SignatureError::Expired));
    }
}
