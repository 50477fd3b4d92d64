//! Query parameters shared by the routes, validated into clear 400s.

use crate::buffer::EventFilter;
use crate::core::Core;
use crate::error::ApiError;
use crate::views::Scope;
use std::collections::HashMap;
use std::sync::Arc;

/// Raw query pairs (`axum::extract::Query<HashMap<..>>` only fails on broken encoding).
pub(crate) type QueryMap = HashMap<String, String>;

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
