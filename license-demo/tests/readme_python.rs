//! The Python client of README's "Signed requests", run as written (standard library only)
//! against the real binary with API keys and `--require-signature`: two borrows of one tool by
//! one user in the same second both granted, with and without an API key.
//!
//! Needs `python3`; SKIPPED without it unless `REQUIRE_PYTHON=1` (set by `.ci/run`).

mod common;

use common::binary::spawn;
use serde_json::Value;
use std::process::Command;
use test_support::require::{find_binary, or_skip};

const VENDOR: &str = "vendor-py";
const SECRET: &str = "vendor-py-secret-3e8d1f0a6b";
const API_KEY: &str = "ak-python-readme-4c7a9e21";

/// The first ```python block after the "### Signed requests" heading of license-demo's README.
fn readme_example() -> String {
    let readme = include_str!("../README.md");
    let section = &readme[readme
        .find("### Signed requests")
        .expect("README has a Signed requests section")..];
    let start = section.find("```python\n").expect("a python block") + "```python\n".len();
    let end = start + section[start..].find("```").expect("the block ends");
    section[start..end].to_string()
}

#[tokio::test]
async fn the_readme_python_client_borrows_twice_a_second() {
    let Some(python) = or_skip(
        find_binary("PYTHON3", &["python3"]),
        "REQUIRE_PYTHON",
        "the_readme_python_client_borrows_twice_a_second",
        "python3 is not installed (apt-get install python3)",
    ) else {
        return;
    };
    let example = readme_example();
    let code_lines = example.lines().filter(|l| !l.trim().is_empty()).count();
    assert!(
        code_lines <= 10,
        "the example grew to {code_lines} lines:\n{example}"
    );

    let dir = tempfile::tempdir().unwrap();
    let vendors = dir.path().join("vendors.toml");
    std::fs::write(
        &vendors,
        format!("[vendors]\n\"{VENDOR}\" = \"{SECRET}\"\n"),
    )
    .unwrap();
    let keys = dir.path().join("keys.toml");
    std::fs::write(
        &keys,
        format!("[keys.\"{API_KEY}\"]\ntenant = \"py\"\nusers = [\"*\"]\n"),
    )
    .unwrap();
    let db = dir.path().join("py.db");
    let server = spawn(
        &[
            "--log",
            "warn",
            "--db",
            db.to_str().unwrap(),
            "--api-keys",
            keys.to_str().unwrap(),
            "--vendor-secrets",
            vendors.to_str().unwrap(),
            "--require-signature",
            "--strict-replay",
        ],
        &[],
    );
    // With --strict-replay a nonce-less client would get one of these two; the nonce form gets
    // both. The user name has a `|` (the signed text is length-prefixed).
    let script = format!(
        "{example}\nimport sys\nurl, vendor, secret, key = sys.argv[1:5]\n\
         answers = [borrow(url, vendor, secret, 'ECU Development Suite', 'py|user', key) for _ in range(2)]\n\
         print(json.dumps(answers))\n"
    );
    let path = dir.path().join("client.py");
    std::fs::write(&path, script).unwrap();
    let out = Command::new(&python)
        .arg(&path)
        .args([&server.url, VENDOR, SECRET, API_KEY])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let answers: Value = serde_json::from_slice(&out.stdout).unwrap();
    let answers = answers.as_array().unwrap();
    assert_eq!(answers.len(), 2);
    for a in answers {
        assert_eq!(a["user"], "py|user", "{a}");
        assert!(a["id"].is_string(), "{a}");
    }
    assert_ne!(answers[0]["id"], answers[1]["id"]);
}
