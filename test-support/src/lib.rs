//! What the tests of every crate in this workspace share (a dev-dependency, never published):
//!
//! - [`browser`]: headless Chromium through chromedriver, with a small WebDriver client;
//! - [`require`]: a component the tests need (a binary on `PATH`) or a loud `SKIPPED` line, and
//!   a failure instead when CI sets the component's `REQUIRE_*` variable;
//! - [`redis`]: a real `redis-server` on its own loopback port and temp dir, stopped by pid;
//! - [`prometheus`]: a real `prometheus` scraping given targets, and its query API;
//! - [`python`]: a Python with the OpenTelemetry SDK (a virtualenv made by `.ci/run`);
//! - [`http`]: JSON GET/POST helpers returning `(status, body)`, Prometheus text lookups;
//! - [`wait`]: bounded polling (`until`) and waiting for a cluster view to be ready.
//!
//! Every helper panics with a message on failure: they serve tests, where a panic is the report.

pub mod browser;
pub mod http;
pub mod prometheus;
pub mod python;
pub mod redis;
pub mod require;
pub mod wait;

/// A free TCP port on 127.0.0.1 (bound and released: another process could take it first, so
/// callers start their server right away).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free loopback port")
}
