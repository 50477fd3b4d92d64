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

/// A window length: integer seconds (`3600`) or a number with a unit, `s`, `m`, `h` or `d`
/// (`90s`, `15m`, `6h`, `24h`, `7d`, `30d`). `None` when it is neither.
pub(crate) fn parse_window(raw: &str) -> Option<u64> {
    let raw = raw.trim();
    let (digits, unit) = match raw.char_indices().last() {
        Some((i, c)) if c.is_ascii_alphabetic() => (&raw[..i], c.to_ascii_lowercase()),
        _ => (raw, 's'),
    };
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) || digits.len() > 12 {
        return None;
    }
    let n: u64 = digits.parse().ok()?;
    let unit = match unit {
        's' => 1,
        'm' => 60,
        'h' => 3600,
        'd' => 86_400,
        _ => return None,
    };
    n.checked_mul(unit)
}

/// A window length for people: `45 s`, `15m`, `6h`, `7d` (the largest unit that divides it).
pub(crate) fn window_text(secs: u64) -> String {
    for (unit, len) in [("d", 86_400), ("h", 3600), ("m", 60)] {
        if secs >= len && secs.is_multiple_of(len) {
            return format!("{}{unit}", secs / len);
        }
    }
    format!("{secs}s")
}

/// `window` in `1..=max` seconds (`what` names the limit in the error), `default` when absent.
pub(crate) fn window_up_to(
    q: &QueryMap,
    max: u64,
    what: &str,
    default: u64,
) -> Result<u64, ApiError> {
    let Some(raw) = q.get("window") else {
        return Ok(default.min(max));
    };
    match parse_window(raw) {
        Some(v) if (1..=max).contains(&v) => Ok(v),
        _ => Err(ApiError::bad_request(
            "invalid_window",
            format!(
                "window must be seconds (3600) or a number with a unit (15m, 6h, 24h, 7d, 30d) between 1 s and {} ({what}), got {raw:?}",
                window_text(max)
            ),
        )),
    }
}

/// `window` within the live buffer's retention, `default` when absent.
pub(crate) fn window(q: &QueryMap, core: &Core, default: u32) -> Result<u32, ApiError> {
    let retention = core.buffer.config().retention.as_secs();
    let v = window_up_to(
        q,
        retention,
        "the live buffer's retention",
        u64::from(default),
    )?;
    Ok(v as u32)
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
    // Instance ids are shown with deceptive characters escaped: compare like with like.
    let id = crate::names::visible(id);
    let id = id.as_ref();
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn windows_take_seconds_or_units() {
        for (raw, secs) in [
            ("60", 60),
            (" 3600 ", 3600),
            ("90s", 90),
            ("15m", 900),
            ("6h", 21_600),
            ("24H", 86_400),
            ("7d", 604_800),
            ("30d", 2_592_000),
        ] {
            assert_eq!(parse_window(raw), Some(secs), "{raw}");
        }
        for bad in [
            "",
            "d",
            "-5",
            "1.5h",
            "5w",
            "h5",
            "99999999999999999d",
            "5 m",
        ] {
            assert_eq!(parse_window(bad), None, "{bad:?}");
        }
        assert_eq!(window_text(2_592_000), "30d");
        assert_eq!(window_text(21_600), "6h");
        assert_eq!(window_text(90), "90s");
    }
}
