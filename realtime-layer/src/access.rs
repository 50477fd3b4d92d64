//! Access to the dashboard (`/realtime*`) and `/metrics`: HTTP Basic (`user:password`) or a
//! bearer token, enforced by tower-http's [`ValidateRequestHeaderLayer`] (feature
//! `dashboard-auth`; the sidecar and license-demo use it for their `--dashboard-auth` and
//! `--dashboard-token` flags).
//!
//! tower-http's own `ValidateRequestHeaderLayer::basic`/`::bearer` are deprecated (and compare
//! with `==`); this validator plugs into the same layer with a constant-time comparison and a
//! JSON 401 that carries the `WWW-Authenticate` challenge browsers need to prompt.

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
/// use axum::Router;
/// use realtime_layer::access::DashboardAuth;
/// use realtime_layer::Realtime;
///
/// let realtime = Realtime::builder().build().unwrap();
/// assert!(DashboardAuth::basic("no-colon").is_none());
/// let auth = DashboardAuth::basic("ops:secret").unwrap().realm("orders dashboard");
/// // Everything under /realtime now answers 401 (with a Basic challenge) without the password.
/// let app: Router = Router::new().merge(realtime.routes().layer(auth.layer()));
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
                r#"Basic realm="realtime dashboard", charset="UTF-8""#,
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
            challenge: HeaderValue::from_static(r#"Bearer realm="realtime dashboard""#),
        })
    }

    /// Names the protected area in the `WWW-Authenticate` challenge (browsers may show it in
    /// their login prompt); the default is `realtime dashboard`. Characters that cannot appear
    /// in a quoted header parameter (controls, `"`, `\`, non-ASCII) are left out.
    pub fn realm(mut self, realm: &str) -> Self {
        let realm: String = realm
            .chars()
            .filter(|c| (' '..='~').contains(c) && *c != '"' && *c != '\\')
            .collect();
        let challenge = if self.scheme == "Basic" {
            format!(r#"Basic realm="{realm}", charset="UTF-8""#)
        } else {
            format!(r#"Bearer realm="{realm}""#)
        };
        // Only visible ASCII and spaces are left, which a header value always accepts.
        if let Ok(value) = HeaderValue::from_str(&challenge) {
            self.challenge = value;
        }
        self
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
        assert!(DashboardAuth::basic("nocolon").is_none());
        assert!(DashboardAuth::basic(":pw").is_none());
        let bearer = DashboardAuth::bearer("t0ken").unwrap();
        assert!(bearer.accepts(b"Bearer t0ken"));
        assert!(!bearer.accepts(b"Bearer t0ke"));
        assert!(!bearer.accepts(b"t0ken"));
        assert!(DashboardAuth::bearer("has space").is_none());
    }

    #[test]
    fn a_refusal_is_json_with_the_realm_in_its_challenge() {
        let challenge = |mut auth: DashboardAuth| {
            let mut request = Request::new(());
            let refusal = auth.validate(&mut request).expect_err("no credentials");
            assert_eq!(refusal.status(), StatusCode::UNAUTHORIZED);
            assert_eq!(
                refusal.headers()[header::CONTENT_TYPE],
                "application/json",
                "the refusal is the JSON error"
            );
            refusal.headers()[header::WWW_AUTHENTICATE]
                .to_str()
                .unwrap()
                .to_owned()
        };
        let basic = DashboardAuth::basic("ops:pw").unwrap();
        assert_eq!(
            challenge(basic.clone()),
            r#"Basic realm="realtime dashboard", charset="UTF-8""#
        );
        assert_eq!(
            challenge(basic.realm("orders \"x\"\u{202e}\n board")),
            r#"Basic realm="orders x board", charset="UTF-8""#
        );
        let bearer = DashboardAuth::bearer("t0ken")
            .unwrap()
            .realm("license-demo dashboard");
        assert_eq!(
            challenge(bearer.clone()),
            r#"Bearer realm="license-demo dashboard""#
        );
        let mut ok = Request::new(());
        ok.headers_mut().insert(
            header::AUTHORIZATION,
            HeaderValue::from_static("Bearer t0ken"),
        );
        assert!(bearer.clone().validate(&mut ok).is_ok());
    }
}
