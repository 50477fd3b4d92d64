//! Query parameters shared by the routes, validated into clear 400s.
//!
//! The query is percent-decoded strictly: a name or value whose bytes are not UTF-8 once decoded
//! (`?user=%FF`) is a 400 `invalid_query`, never a lossy `\u{FFFD}` that would filter on a name
//! nobody sent. [`strict_query`] applies the same rule to a whole app.

use crate::buffer::EventFilter;
use crate::core::Core;
use crate::error::ApiError;
use crate::views::Scope;
use axum::extract::{FromRequestParts, Request};
use axum::http::request::Parts;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::Arc;

/// Decoded query pairs (the last of repeated names wins).
pub(crate) type QueryMap = HashMap<String, String>;

/// The request's query pairs, decoded strictly (a 400 `invalid_query` JSON answer otherwise).
pub(crate) struct Params(pub(crate) QueryMap);

impl<S: Send + Sync> FromRequestParts<S> for Params {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, ApiError> {
        let mut map = QueryMap::new();
        for_each_pair(parts.uri.query().unwrap_or(""), |name, value| {
            map.insert(name.into_owned(), value.into_owned());
        })?;
        Ok(Params(map))
    }
}

/// Calls `f` with each decoded `name=value` pair of `query` (`+` is a space), or answers the
/// 400 for the first name or value that is not UTF-8.
fn for_each_pair(
    query: &str,
    mut f: impl FnMut(Cow<'_, str>, Cow<'_, str>),
) -> Result<(), ApiError> {
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
        let name = decode(name).map_err(|()| not_utf8(None))?;
        let value = decode(value).map_err(|()| not_utf8(Some(&name)))?;
        f(name, value);
    }
    Ok(())
}

fn decode(text: &str) -> Result<Cow<'_, str>, ()> {
    let spaced: Cow<'_, str> = if text.contains('+') {
        Cow::Owned(text.replace('+', " "))
    } else {
        Cow::Borrowed(text)
    };
    let decoded = percent_encoding::percent_decode_str(&spaced)
        .decode_utf8()
        .map_err(|_| ())?;
    Ok(Cow::Owned(decoded.into_owned()))
}

fn not_utf8(name: Option<&str>) -> ApiError {
    let what = match name {
        Some(name) => format!("the value of query parameter {name:?}"),
        None => "a query parameter name".to_string(),
    };
    ApiError::bad_request(
        "invalid_query",
        format!("{what} is not valid UTF-8 once percent-decoded"),
    )
}

/// Middleware answering 400 `{"error": "invalid_query", ...}` to a request whose query has a
/// name or value that is not UTF-8 once percent-decoded (`?user=%FF`), for every route of an
/// app: axum's `Query` decodes such bytes lossily (as U+FFFD) and the handler would answer for a
/// name nobody sent. The `/realtime` routes check this themselves.
///
/// ```
/// use axum::{middleware::from_fn, routing::get, Router};
///
/// let app: Router = Router::new()
///     .route("/borrows", get(|| async { "[]" }))
///     .layer(from_fn(realtime_layer::strict_query));
/// # let _ = app;
/// ```
pub async fn strict_query(request: Request, next: Next) -> Response {
    if let Some(query) = request.uri().query() {
        if let Err(refusal) = for_each_pair(query, |_, _| {}) {
            return refusal.into_response();
        }
    }
    next.run(request).await
}

/// `window`: integer seconds in `1..=retention`, `default` when absent.
pub(crate) fn window(q: &QueryMap, core: &Core, default: u32) -> Result<u32, ApiError> {
    let retention = core.buffer.config().retention.as_secs();
    let Some(raw) = q.get("window") else {
        return Ok(default.min(retention as u32));
    };
    let bad = || {
        ApiError::bad_request(
            "invalid_window",
            format!("window must be an integer number of seconds between 1 and {retention}, got {raw:?}"),
        )
    };
    let value: u64 = raw.trim().parse().map_err(|_| bad())?;
    if value == 0 || value > retention {
        return Err(bad());
    }
    Ok(value as u32)
}

/// `scope` (`cluster`, the default with cluster mode on, or `local`) and `instance` (one
/// instance's events, from the cluster view): which view answers. Unknown values are 400, an
/// unknown instance 404.
pub(crate) fn scope(q: &QueryMap, core: &Core) -> Result<Scope, ApiError> {
    // Every route that reads a view parses its scope first: the place to bring it up to date.
    core.feed_cluster();
    let get = |key: &str| q.get(key).map(|v| v.trim()).filter(|v| !v.is_empty());
    let cluster = core.cluster.as_deref();
    let scope = match get("scope") {
        None => Scope::Default,
        Some("local") => Scope::Local,
        Some("cluster") if cluster.is_some() => Scope::Default,
        Some("cluster") => return Err(ApiError::bad_request(
            "cluster_disabled",
            "scope=cluster needs cluster mode (the `redis` feature and `Cluster` configuration)",
        )),
        Some(other) => {
            return Err(ApiError::bad_request(
                "invalid_scope",
                format!("scope must be \"cluster\" or \"local\", got {other:?}"),
            ))
        }
    };
    let Some(id) = get("instance") else {
        return Ok(scope);
    };
    if id == &*core.instance_id {
        return Ok(Scope::Local);
    }
    if scope == Scope::Local {
        return Err(ApiError::bad_request(
            "invalid_scope",
            "scope=local shows this instance only; drop it to see another instance",
        ));
    }
    let known = cluster.is_some_and(|c| c.known_instances().iter().any(|k| &**k == id));
    if !known {
        return Err(ApiError::not_found(
            "unknown_instance",
            format!("no instance named {id:?} is known to this instance's cluster view"),
        ));
    }
    Ok(Scope::Instance(Arc::from(id)))
}

/// `resource` and `user` filters. An empty value means "no filter"; a resource never seen in
/// `scope`'s view is a 404 (the likely cause is a typo).
pub(crate) fn filter(q: &QueryMap, core: &Core, scope: &Scope) -> Result<EventFilter, ApiError> {
    let get = |key: &str| {
        q.get(key)
            .map(|v| v.trim())
            .filter(|v| !v.is_empty())
            // Names are recorded with deceptive characters escaped: compare like with like.
            .map(|v| crate::names::visible(v).into_owned())
    };
    let resource = get("resource");
    if let Some(name) = &resource {
        if name.len() > 1024 {
            return Err(ApiError::bad_request(
                "invalid_resource",
                "resource names are at most 1024 bytes",
            ));
        }
        let known = scope
            .buffer(core)
            .resource_names()
            .iter()
            .any(|n| &**n == name)
            || scope
                .status(core)
                .is_some_and(|rows| rows.iter().any(|r| &r.name == name));
        if !known {
            return Err(ApiError::not_found(
                "unknown_resource",
                format!("no resource named {name:?} has been seen"),
            ));
        }
    }
    let user = get("user");
    if user.as_ref().is_some_and(|u| u.len() > 1024) {
        return Err(ApiError::bad_request(
            "invalid_user",
            "user names are at most 1024 bytes",
        ));
    }
    Ok(EventFilter {
        resource,
        user,
        instance: None,
    })
}
