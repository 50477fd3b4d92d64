//! Browser-facing defaults: DNS-rebinding and cross-site request protection for every route.
//!
//! - **Host**: a request whose `Host` is not an allowed host gets 421. A DNS-rebinding page
//!   reaches a loopback server under its own domain name (`Host: evil.example:8000`), so by
//!   default only `localhost` and IP literals (which rebinding cannot produce) are accepted, on
//!   the server's port. `--allowed-hosts` replaces that list (`*` accepts any host).
//! - **Origin**: a mutating request (any method but GET/HEAD/OPTIONS) or a WebSocket upgrade that
//!   carries an `Origin` other than the server's own (`scheme://<Host>`) or one listed in
//!   `--allowed-origins` gets 403. Non-browser clients send no `Origin` and pass.
//!
//! The third default, `Content-Type: application/json` on POST bodies (415 otherwise), is
//! enforced where bodies are read ([`crate::api::JsonBody`]): a "simple" cross-site request
//! (`text/plain`, no preflight) can then never carry a body the API accepts.

use crate::error::ApiError;
use axum::extract::{Request, State};
use axum::http::{header, HeaderName, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use tower_http::cors::{AllowOrigin, CorsLayer};

/// One accepted `Host`: a name (lowercase) and, when given, the port it must come with.
#[derive(Debug, Clone, PartialEq, Eq)]
struct HostPattern {
    name: String,
    port: Option<u16>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Hosts {
    Any,
    /// `localhost` and any IP literal, on `port`.
    Default {
        port: u16,
    },
    Only(Vec<HostPattern>),
}

/// The Host and Origin rules of one server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestGuard {
    hosts: Hosts,
    /// Allowed origins, lowercase, without trailing `/`; `None`: any.
    origins: Option<Vec<String>>,
}

impl RequestGuard {
    /// Rules for a server bound to `addr`: `allowed_hosts` (empty: `localhost` and IP literals
    /// on the bound port; `*`: any) and `allowed_origins` (besides same-origin; `*`: any).
    pub fn new(addr: SocketAddr, allowed_hosts: &[String], allowed_origins: &[String]) -> Self {
        let hosts = if allowed_hosts.iter().any(|h| h.trim() == "*") {
            Hosts::Any
        } else if allowed_hosts.is_empty() {
            Hosts::Default { port: addr.port() }
        } else {
            Hosts::Only(
                allowed_hosts
                    .iter()
                    .filter_map(|h| split_host(h.trim()))
                    .map(|(name, port)| HostPattern { name, port })
                    .collect(),
            )
        };
        let origins = if allowed_origins.iter().any(|o| o.trim() == "*") {
            None
        } else {
            Some(
                allowed_origins
                    .iter()
                    .map(|o| normalize_origin(o))
                    .collect(),
            )
        };
        RequestGuard { hosts, origins }
    }

    fn host_allowed(&self, host: &str) -> bool {
        let Some((name, port)) = split_host(host) else {
            return false;
        };
        // A Host without a port means the scheme's default; clients only omit it for 80/443.
        match &self.hosts {
            Hosts::Any => true,
            Hosts::Default { port: ours } => {
                let port = port.unwrap_or(80);
                port == *ours && (name == "localhost" || is_ip_literal(&name))
            }
            Hosts::Only(patterns) => patterns
                .iter()
                .any(|p| p.name == name && p.port.is_none_or(|want| port.unwrap_or(80) == want)),
        }
    }

    fn origin_allowed(&self, origin: &str, host: Option<&str>) -> bool {
        let origin = normalize_origin(origin);
        if origin == "null" {
            return self.origins.is_none();
        }
        let same_origin = host.is_some_and(|host| {
            origin.split_once("://").is_some_and(|(scheme, authority)| {
                matches!(scheme, "http" | "https") && authority.eq_ignore_ascii_case(host)
            })
        });
        same_origin
            || self
                .origins
                .as_ref()
                .is_none_or(|list| list.contains(&origin))
    }

    /// Checks one request; `Err` is the JSON refusal to send.
    pub fn check(&self, req: &Request) -> Result<(), ApiError> {
        // HTTP/1.1 carries the Host header, HTTP/2 the URI authority; HTTP/1.0 may have neither
        // (no browser sends such a request, so there is nothing to protect).
        let host = req
            .headers()
            .get(header::HOST)
            .map(|h| h.to_str().unwrap_or("\u{fffd}"))
            .or_else(|| req.uri().authority().map(|a| a.as_str()));
        if let Some(host) = host {
            if !self.host_allowed(host) {
                return Err(ApiError::new(
                    StatusCode::MISDIRECTED_REQUEST,
                    "misdirected_request",
                    "This server does not answer to that Host name (start it with --allowed-hosts to add one).",
                ));
            }
        }
        let mutating = !matches!(*req.method(), Method::GET | Method::HEAD | Method::OPTIONS);
        let upgrade = req.headers().contains_key(header::UPGRADE);
        if mutating || upgrade {
            if let Some(origin) = req.headers().get(header::ORIGIN) {
                let origin = origin.to_str().unwrap_or("null");
                if !self.origin_allowed(origin, host) {
                    return Err(ApiError::new(
                        StatusCode::FORBIDDEN,
                        "forbidden_origin",
                        "Cross-origin requests that change state are refused (start the server with --allowed-origins to allow a site).",
                    ));
                }
            }
        }
        Ok(())
    }
}

/// CORS for the `--allowed-origins` pages (none without the flag: same-origin pages need none).
///
/// The Origin check refuses other sites; this lets the listed ones actually call the API from a
/// browser, where JSON bodies, API keys and signatures all need a preflight.
pub fn cors(allowed_origins: &[String]) -> Option<CorsLayer> {
    if allowed_origins.is_empty() {
        return None;
    }
    let origins = if allowed_origins.iter().any(|o| o.trim() == "*") {
        AllowOrigin::any()
    } else {
        AllowOrigin::list(
            allowed_origins
                .iter()
                .filter_map(|o| HeaderValue::from_str(&normalize_origin(o)).ok()),
        )
    };
    Some(
        CorsLayer::new()
            .allow_origin(origins)
            .allow_methods([Method::GET, Method::POST])
            .allow_headers([
                header::CONTENT_TYPE,
                header::AUTHORIZATION,
                HeaderName::from_static("idempotency-key"),
                super::signature::X_SIGNATURE,
                super::signature::X_TIMESTAMP,
                super::signature::X_VENDOR_ID,
                super::signature::X_NONCE,
            ])
            .expose_headers([HeaderName::from_static("idempotent-replayed")])
            .max_age(std::time::Duration::from_secs(600)),
    )
}

/// Middleware applying a [`RequestGuard`] (see `axum::middleware::from_fn_with_state`).
pub async fn guard(State(rules): State<Arc<RequestGuard>>, req: Request, next: Next) -> Response {
    match rules.check(&req) {
        Ok(()) => next.run(req).await,
        Err(refusal) => refusal.into_response(),
    }
}

/// `name[:port]` or `[v6]:port`, lowercased, trailing dot removed; `None` if unparseable.
fn split_host(host: &str) -> Option<(String, Option<u16>)> {
    let host = host.to_ascii_lowercase();
    let (name, port) = if let Some(rest) = host.strip_prefix('[') {
        let (inside, after) = rest.split_once(']')?;
        let port = match after.strip_prefix(':') {
            Some(p) => Some(p.parse().ok()?),
            None if after.is_empty() => None,
            None => return None,
        };
        (format!("[{inside}]"), port)
    } else {
        match host.rsplit_once(':') {
            Some((name, p)) => (name.to_string(), Some(p.parse().ok()?)),
            None => (host.clone(), None),
        }
    };
    let name = name.strip_suffix('.').unwrap_or(&name).to_string();
    (!name.is_empty()).then_some((name, port))
}

fn is_ip_literal(name: &str) -> bool {
    let bare = name
        .strip_prefix('[')
        .and_then(|n| n.strip_suffix(']'))
        .unwrap_or(name);
    bare.parse::<IpAddr>().is_ok()
}

fn normalize_origin(origin: &str) -> String {
    origin.trim().trim_end_matches('/').to_ascii_lowercase()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_hosts_are_localhost_and_ip_literals_on_our_port() {
        let g = RequestGuard::new("127.0.0.1:8000".parse().unwrap(), &[], &[]);
        for ok in [
            "localhost:8000",
            "127.0.0.1:8000",
            "[::1]:8000",
            "LOCALHOST.:8000",
            "10.1.2.3:8000",
        ] {
            assert!(g.host_allowed(ok), "{ok}");
        }
        for bad in [
            "evil.example:8000",
            "localhost:8001",
            "localhost",
            "[::1",
            "a:b",
            "",
        ] {
            assert!(!g.host_allowed(bad), "{bad}");
        }
        let g = RequestGuard::new(
            "127.0.0.1:8000".parse().unwrap(),
            &["licenses.example.com".into(), "127.0.0.1:9000".into()],
            &[],
        );
        assert!(g.host_allowed("licenses.example.com:443"));
        assert!(g.host_allowed("127.0.0.1:9000"));
        assert!(
            !g.host_allowed("127.0.0.1:8000"),
            "the list replaces the defaults"
        );
    }

    #[test]
    fn origins() {
        let g = RequestGuard::new(
            "127.0.0.1:8000".parse().unwrap(),
            &[],
            &["https://tools.example.com/".into()],
        );
        assert!(g.origin_allowed("http://127.0.0.1:8000", Some("127.0.0.1:8000")));
        assert!(g.origin_allowed("https://TOOLS.example.com", Some("127.0.0.1:8000")));
        assert!(!g.origin_allowed("http://evil.example", Some("127.0.0.1:8000")));
        assert!(!g.origin_allowed("null", Some("127.0.0.1:8000")));
        assert!(!g.origin_allowed("http://localhost:8000", Some("127.0.0.1:8000")));
    }
}
