//! Real components or a loud skip: locally a missing component prints `SKIPPED` and the test
//! passes; with its `REQUIRE_*` variable set to `1` (as `.ci/run` does) it is a failure.

use std::path::PathBuf;

/// The first of `names` found on `PATH` (or the path in the environment variable `env`, when
/// set and non-empty).
pub fn find_binary(env: &str, names: &[&str]) -> Option<PathBuf> {
    if let Some(p) = std::env::var_os(env).filter(|p| !p.is_empty()) {
        let p = PathBuf::from(p);
        return p.is_file().then_some(p);
    }
    let path = std::env::var_os("PATH")?;
    names.iter().find_map(|name| {
        std::env::split_paths(&path)
            .map(|dir| dir.join(name))
            .find(|p| p.is_file())
    })
}

/// Whether the environment variable `var` asks for the component (`1`, or any non-empty value
/// other than `0`).
pub fn required(var: &str) -> bool {
    std::env::var(var).is_ok_and(|v| !v.is_empty() && v != "0")
}

/// `found`, or — when it is `None` — a panic if `var` is set (CI), else a loud `SKIPPED` line
/// naming `test` and `why` (with the install hint) and `None`.
pub fn or_skip<T>(found: Option<T>, var: &str, test: &str, why: &str) -> Option<T> {
    if found.is_some() {
        return found;
    }
    if required(var) {
        panic!("{var}=1 but {why}");
    }
    eprintln!("\n**********************************************************************");
    eprintln!("SKIPPED {test}: {why} ({var}=1 makes this a failure)");
    eprintln!("**********************************************************************\n");
    None
}
