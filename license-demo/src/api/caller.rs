//! The caller of a license route: the tenant of its API key when keys are configured.

use super::AppState;
use crate::auth::Tenant;
use crate::error::ApiError;
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

/// Who calls, as far as the server can tell.
///
/// Without `--api-keys` nobody is authenticated (`tenant` is `None`) and a Bearer header is only
/// kept for signature checks (the original's clients send one whatever the server). With keys,
/// extracting a `Caller` answers 401 unless a configured key is presented.
///
/// Its `Debug` output never shows the key (only whether one was sent).
#[derive(Clone, Default)]
pub struct Caller {
    /// The tenant of the presented key (keys on).
    pub tenant: Option<Tenant>,
    /// The Bearer value sent, if any (it is part of the signed message).
    pub api_key: Option<String>,
}

impl std::fmt::Debug for Caller {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Caller")
            .field("tenant", &self.tenant)
            .field("api_key", &self.api_key.as_ref().map(|_| "***"))
            .finish()
    }
}

impl Caller {
    /// The tenant name, for storing with a borrow or scoping a query.
    pub fn tenant_name(&self) -> Option<String> {
        self.tenant.as_ref().map(|t| t.name.to_string())
    }

    /// Whether this caller may act as `user` (always without API keys).
    pub fn may_act_as(&self, user: &str) -> bool {
        self.tenant.as_ref().is_none_or(|t| t.may_act_as(user))
    }

    /// Whose borrows and charges this caller may see or touch: its tenant's, of the users its
    /// key may act as, narrowed to `user` when given.
    pub fn owner(&self, user: Option<String>) -> crate::pool::Owner {
        crate::pool::Owner {
            user,
            tenant: self.tenant_name(),
            users: self.tenant.as_ref().and_then(Tenant::users),
        }
    }
}

/// The token of `Authorization: Bearer <token>` (scheme in any case).
fn bearer(value: &HeaderValue) -> Option<&str> {
    let (scheme, token) = value.to_str().ok()?.split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

fn unauthorized(detail: &str) -> Response {
    let mut response =
        ApiError::new(StatusCode::UNAUTHORIZED, "unauthorized", detail).into_response();
    response.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        HeaderValue::from_static("Bearer realm=\"license-demo\""),
    );
    response
}

impl FromRequestParts<AppState> for Caller {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Response> {
        let api_key = parts.headers.get(header::AUTHORIZATION).and_then(bearer);
        let Some(keys) = &state.keys else {
            return Ok(Caller {
                tenant: None,
                api_key: api_key.map(str::to_string),
            });
        };
        let Some(key) = api_key else {
            return Err(unauthorized(
                "This server requires an API key: send `Authorization: Bearer <key>`.",
            ));
        };
        match keys.authenticate(key) {
            Some(tenant) => Ok(Caller {
                tenant: Some(tenant.clone()),
                api_key: Some(key.to_string()),
            }),
            None => Err(unauthorized("The API key is not valid.")),
        }
    }
}
