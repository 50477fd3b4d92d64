//! Query parameters shared by the routes, validated into clear 400s.

use super::error::ApiError;
use crate::buffer::EventFilter;
use crate::handle::Realtime;
use std::collections::HashMap;

/// Raw query pairs (`axum::extract::Query<HashMap<..>>` only fails on broken encoding).
pub(crate) type QueryMap = HashMap<String, String>;

/// `window`: integer seconds in `1..=retention`, `default` when absent.
pub(crate) fn window(q: &QueryMap, realtime: &Realtime, default: u32) -> Result<u32, ApiError> {
    let retention = realtime.buffer().config().retention.as_secs();
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

/// `resource` and `user` filters. An empty value means "no filter"; a resource the buffer has
/// never seen is a 404 (the likely cause is a typo).
pub(crate) fn filter(q: &QueryMap, realtime: &Realtime) -> Result<EventFilter, ApiError> {
    let get = |key: &str| {
        q.get(key)
            .map(|v| v.trim())
            .filter(|v| !v.is_empty())
            .map(str::to_owned)
    };
    let resource = get("resource");
    if let Some(name) = &resource {
        if name.len() > 1024 {
            return Err(ApiError::bad_request(
                "invalid_resource",
                "resource names are at most 1024 bytes",
            ));
        }
        let known = realtime
            .buffer()
            .resource_names()
            .iter()
            .any(|n| &**n == name)
            || realtime
                .shared
                .status_source
                .as_ref()
                .is_some_and(|s| s.status().iter().any(|r| &r.name == name));
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
