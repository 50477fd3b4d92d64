//! Access to the dashboard (`/realtime*`) and `/metrics` of the sidecar: HTTP Basic
//! (`--dashboard-auth user:password`) or a bearer token (`--dashboard-token`), enforced by
//! tower-http's [`ValidateRequestHeaderLayer`] with a constant-time comparison and a JSON 401
//! carrying the `WWW-Authenticate` challenge browsers need to prompt (the same behaviour as
//! license-demo's flags of the same names).

use crate::error::ApiError;
use axum::body::Body;
use axum::http::{header, HeaderValue, Request, Response, StatusCode};
use axum::response::IntoResponse;
use base64::Engine as _;
use subtle::ConstantTimeEq;
use tower_http::validate_request::{ValidateRequest, ValidateRequestHeaderLayer};

/// Credentials required for the dashboard and metrics routes.
///
/// ```
/// use realtime_layer::ingest::DashboardAuth;
///
/// assert!(DashboardAuth::basic("ops:secret").is_some());
/// assert!(DashboardAuth::basic("no-colon").is_none());
/// let _layer = DashboardAuth::bearer("t0ken").unwrap().layer();
/// ```
#[derive(Clone)]
pub struct DashboardAuth {
    /// `Basic` or `Bearer`.
    scheme: &'static str,
    /// The expected credentials after the scheme (base64 of `user:password`, or the token).
    expected: Vec<u8>,
    challenge: HeaderValue,
}

impl std::fmt::Debug for DashboardAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DashboardAuth")
            .field("scheme", &self.scheme)
            .finish_non_exhaustive()
    }
}

impl DashboardAuth {
    /// HTTP Basic with `user_password` given as `user:password`; `None` without a `:` or with
    /// an empty user or password.
    pub fn basic(user_password: &str) -> Option<Self> {
        let (user, password) = user_password.split_once(':')?;
        if user.is_empty() || password.is_empty() {
            return None;
        }
        Some(DashboardAuth {
            scheme: "Basic",
            expected: base64::engine::general_purpose::STANDARD
                .encode(user_password)
                .into_bytes(),
            challenge: HeaderValue::from_static(
                r#"Basic realm="realtime-sidecar dashboard", charset="UTF-8""#,
            ),
        })
    }

    /// `Authorization: Bearer <token>`; `None` for an empty token or one that cannot be sent in
    /// a header.
    pub fn bearer(token: &str) -> Option<Self> {
        if token.is_empty() || !token.bytes().all(|b| b.is_ascii_graphic()) {
            return None;
        }
        Some(DashboardAuth {
            scheme: "Bearer",
            expected: token.as_bytes().to_vec(),
            challenge: HeaderValue::from_static(r#"Bearer realm="realtime-sidecar dashboard""#),
        })
    }

    /// The tower-http layer enforcing these credentials.
    pub fn layer(self) -> ValidateRequestHeaderLayer<Self> {
        ValidateRequestHeaderLayer::custom(self)
    }

    fn accepts(&self, value: &[u8]) -> bool {
        let Some(space) = value.iter().position(|b| *b == b' ') else {
            return false;
        };
        let (scheme, rest) = value.split_at(space);
        let credentials = rest.trim_ascii_start();
        scheme.eq_ignore_ascii_case(self.scheme.as_bytes())
            && bool::from(credentials.ct_eq(&self.expected))
    }
}

impl<B> ValidateRequest<B> for DashboardAuth {
    type ResponseBody = Body;

    fn validate(&mut self, request: &mut Request<B>) -> Result<(), Response<Body>> {
        let presented = request.headers().get(header::AUTHORIZATION);
        if presented.is_some_and(|v| self.accepts(v.as_bytes())) {
            return Ok(());
        }
        let mut refusal = ApiError::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "The dashboard and metrics need credentials (--dashboard-auth or --dashboard-token).",
        )
        .into_response();
        refusal
            .headers_mut()
            .insert(header::WWW_AUTHENTICATE, self.challenge.clone());
        Err(refusal)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn basic_and_bearer_compare_scheme_insensitively() {
        let basic = DashboardAuth::basic("ops:pa:ss").unwrap();
        assert!(basic.accepts(b"Basic b3BzOnBhOnNz"));
        assert!(basic.accepts(b"basic b3BzOnBhOnNz"));
        assert!(!basic.accepts(b"Basic b3BzOnBhOnN"));
        assert!(!basic.accepts(b"Bearer b3BzOnBhOnNz"));
        let bearer = DashboardAuth::bearer("t0ken").unwrap();
        assert!(bearer.accepts(b"Bearer t0ken"));
        assert!(!bearer.accepts(b"Bearer t0ke"));
        assert!(DashboardAuth::bearer("has space").is_none());
    }
}
