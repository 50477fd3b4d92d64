//! A Python with the OpenTelemetry SDK and its OTLP/HTTP exporter (for tests whose sender is a
//! real Python service): `.ci/run` makes a virtualenv at `target/otel-venv` and pip-installs
//! `opentelemetry-sdk` and `opentelemetry-exporter-otlp-proto-http`; `OTEL_PYTHON` points at
//! another interpreter.

use std::path::{Path, PathBuf};
use std::process::Command;

/// The packages the interpreter must import.
pub const OTEL_MODULES: &str =
    "import opentelemetry.sdk._logs, opentelemetry.exporter.otlp.proto.http._log_exporter";

/// The virtualenv `.ci/run` creates, relative to the workspace root.
pub const DEFAULT_VENV: &str = "target/otel-venv";

/// `OTEL_PYTHON`, else `<workspace>/target/otel-venv/bin/python`, if it imports
/// [`OTEL_MODULES`]; else a loud skip (a failure with `REQUIRE_PYTHON_OTEL=1`). `workspace` is
/// the workspace root (`concat!(env!("CARGO_MANIFEST_DIR"), "/..")` from a member crate).
pub fn otel_python(workspace: &Path, test: &str) -> Option<PathBuf> {
    let candidate = std::env::var_os("OTEL_PYTHON")
        .filter(|p| !p.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace.join(DEFAULT_VENV).join("bin/python"));
    let works = candidate.is_file()
        && Command::new(&candidate)
            .args(["-c", OTEL_MODULES])
            .output()
            .is_ok_and(|o| o.status.success());
    crate::require::or_skip(
        works.then_some(candidate.clone()),
        "REQUIRE_PYTHON_OTEL",
        test,
        &format!(
            "no Python with the OpenTelemetry SDK at {} (python3 -m venv target/otel-venv && \
             target/otel-venv/bin/pip install opentelemetry-sdk \
             opentelemetry-exporter-otlp-proto-http, or set OTEL_PYTHON)",
            candidate.display()
        ),
    )
}
