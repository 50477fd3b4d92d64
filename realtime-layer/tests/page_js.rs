//! The dashboard's JavaScript unit tests, without a browser: `node --test` over
//! `tests/js/*.test.mjs`, which import the page's pure modules from `static/js/` (the stream
//! decoder, units and formatting, URL view state, chart series, top-N selection).
//!
//! Needs Node.js 18 or newer as `node` on `PATH` (or the path in `NODE`). When it is missing the
//! test prints `SKIPPED` and passes, unless `REQUIRE_NODE=1` (set by `.ci/run`), which makes a
//! missing `node` a failure.

use std::path::{Path, PathBuf};
use std::process::Command;

fn which(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|candidate| candidate.is_file())
}

fn require_node() -> bool {
    std::env::var("REQUIRE_NODE").is_ok_and(|v| !v.is_empty() && v != "0")
}

#[test]
fn page_modules_pass_their_node_tests() {
    let node = match std::env::var_os("NODE") {
        Some(p) => Some(PathBuf::from(p)).filter(|p| p.is_file()),
        None => which("node").or_else(|| which("nodejs")),
    };
    let Some(node) = node else {
        let msg = "node not found (NODE, or node on PATH; apt-get install nodejs)";
        if require_node() {
            panic!("REQUIRE_NODE is set but {msg}");
        }
        eprintln!("\n**********************************************************************");
        eprintln!("SKIPPED: dashboard JavaScript unit tests: {msg}");
        eprintln!("**********************************************************************\n");
        return;
    };

    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    let dir = manifest.join("tests/js");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .filter(|p| p.to_string_lossy().ends_with(".test.mjs"))
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no *.test.mjs in {}", dir.display());

    // Files, not the directory: how `node --test` treats a directory changed across versions.
    let out = Command::new(&node)
        .arg("--test")
        .args(&files)
        .current_dir(manifest.join(".."))
        .env_remove("NODE_OPTIONS")
        .output()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", node.display()));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "node --test failed ({}):\n{stdout}\n{stderr}",
        out.status
    );
    // The TAP summary (`# tests 24`, `# pass 24`, ...), so a passing run still shows its size.
    for line in stdout
        .lines()
        .filter(|l| l.starts_with("# tests") || l.starts_with("# pass") || l.starts_with("# fail"))
    {
        eprintln!("{line}");
    }
    assert!(
        stdout.contains("# pass"),
        "no test ran under node:\n{stdout}\n{stderr}"
    );
}

/// The page's modules as files: `index.html` preloads exactly the modules under `static/js/`,
/// every import is relative and names a file that exists (no bare specifiers: there is no bundler
/// and the page works offline), and no module writes HTML (`innerHTML` and friends).
#[test]
fn index_preloads_every_module_and_imports_resolve() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../static");
    let html = std::fs::read_to_string(root.join("index.html")).unwrap();
    assert!(
        html.contains(r#"<script src="realtime/assets/app.js" type="module"></script>"#),
        "app.js is loaded as a module"
    );
    let preloaded: std::collections::BTreeSet<String> = html
        .split(r#"<link rel="modulepreload" href="realtime/assets/"#)
        .skip(1)
        .map(|rest| rest[..rest.find('"').unwrap()].to_owned())
        .collect();
    let mut sources = vec![root.join("app.js")];
    let mut modules = std::collections::BTreeSet::new();
    for entry in std::fs::read_dir(root.join("js")).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "js") {
            modules.insert(format!(
                "js/{}",
                path.file_name().unwrap().to_string_lossy()
            ));
            sources.push(path);
        }
    }
    assert_eq!(preloaded, modules, "modulepreload links vs static/js/");

    for source in &sources {
        let text = std::fs::read_to_string(source).unwrap();
        for banned in [
            "innerHTML",
            "outerHTML",
            "insertAdjacentHTML",
            "document.write",
        ] {
            assert!(!text.contains(banned), "{} uses {banned}", source.display());
        }
        let statements = text.lines().map(str::trim).filter(|l| {
            (l.starts_with("import ") || l.starts_with("export ")) && l.contains(" from ")
        });
        for line in statements {
            let rest = &line[line.rfind(" from ").unwrap() + 6..];
            let spec = rest
                .trim_end_matches(';')
                .trim_matches(|c| c == '\'' || c == '"');
            assert!(
                spec.starts_with("./") || spec.starts_with("../"),
                "{}: import {spec:?} is not relative",
                source.display()
            );
            let target = source.parent().unwrap().join(spec);
            assert!(
                target.is_file(),
                "{}: import {spec:?} names no file",
                source.display()
            );
        }
    }
}
