//! The layering rule of `docs/ARCHITECTURE.md`, checked against the crate's source.
//!
//! The rule is an ordered list of top-level modules (bottom first) between the
//! `<!-- layering:begin -->` and `<!-- layering:end -->` markers: a module may import modules on
//! earlier lines only. This test reads every `use crate::…` / `use super::…` tree and every inline
//! `crate::…` / `super::…` path under `src/` (comments, string literals and a trailing
//! `#[cfg(test)] mod … { … }` left out), resolves each to the top-level module it names (names
//! re-exported by `lib.rs` resolve to the module they come from), and fails on any edge that
//! points up or sideways. A new module must be placed in the list before it may be imported.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// One violation: the importing file, the path, and the two modules.
#[derive(Debug, PartialEq, Eq)]
struct Violation {
    file: String,
    path: String,
    from: String,
    to: String,
}

/// The rule: top-level module → its line (0 = bottom).
fn read_rule(architecture: &str) -> BTreeMap<String, usize> {
    let begin = architecture
        .find("<!-- layering:begin -->")
        .expect("docs/ARCHITECTURE.md has a <!-- layering:begin --> marker");
    let end = architecture
        .find("<!-- layering:end -->")
        .expect("docs/ARCHITECTURE.md has a <!-- layering:end --> marker");
    let mut rule = BTreeMap::new();
    let mut level = 0;
    for line in architecture[begin..end].lines().skip(1) {
        let line = line.trim();
        let Some((number, rest)) = line.split_once(". ") else {
            continue;
        };
        if number.parse::<usize>().is_err() {
            continue;
        }
        // The module names are the back-ticked words before the dash.
        let names = rest.split(" — ").next().unwrap_or(rest);
        for name in names.split(',') {
            let name = name.trim().trim_matches('`');
            assert!(
                rule.insert(name.to_string(), level).is_none(),
                "{name} is listed twice in the layering rule"
            );
        }
        level += 1;
    }
    assert!(level >= 2, "the layering rule lists fewer than two lines");
    rule
}

/// The source without comments and string/char literals (so doc links and messages that
/// mention `crate::…` are not imports).
fn code_only(source: &str) -> String {
    let bytes = source.as_bytes();
    let mut out = String::with_capacity(source.len());
    let mut i = 0;
    while i < bytes.len() {
        let rest = &source[i..];
        if rest.starts_with("//") {
            let end = rest.find('\n').map_or(source.len(), |n| i + n);
            i = end;
        } else if rest.starts_with("/*") {
            let end = rest.find("*/").map_or(source.len(), |n| i + n + 2);
            i = end;
        } else if rest.starts_with("r#\"") || rest.starts_with("r\"") {
            let hashes = rest[1..].chars().take_while(|c| *c == '#').count();
            let close = format!("\"{}", "#".repeat(hashes));
            let body = i + 2 + hashes;
            i = source[body..]
                .find(&close)
                .map_or(source.len(), |n| body + n + close.len());
            out.push_str("\"\"");
        } else if bytes[i] == b'"' {
            let mut j = i + 1;
            while j < bytes.len() && bytes[j] != b'"' {
                j += if bytes[j] == b'\\' { 2 } else { 1 };
            }
            i = j + 1;
            out.push_str("\"\"");
        } else if bytes[i] == b'\'' && is_char_literal(rest) {
            let len = rest[1..].find('\'').map_or(rest.len(), |n| n + 2);
            i += len;
            out.push_str("' '");
        } else {
            let ch = rest.chars().next().unwrap_or(' ');
            out.push(ch);
            i += ch.len_utf8();
        }
    }
    out
}

/// `'x'` or `'\n'` (a char literal), not a lifetime `'a`.
fn is_char_literal(rest: &str) -> bool {
    let mut chars = rest.chars().skip(1);
    match chars.next() {
        Some('\\') => true,
        Some(_) => chars.next() == Some('\''),
        None => false,
    }
}

/// The code before a trailing `#[cfg(test)] mod name { … }` (unit tests may use anything).
fn without_test_module(code: &str) -> &str {
    let mut search = 0;
    while let Some(at) = code[search..].find("#[cfg(test)]") {
        let at = search + at;
        let after = code[at + "#[cfg(test)]".len()..].trim_start();
        let after = after.strip_prefix("pub(crate) ").unwrap_or(after);
        if let Some(rest) = after.strip_prefix("mod ") {
            if rest
                .split_once(|c: char| !c.is_alphanumeric() && c != '_')
                .is_some_and(|(_, tail)| tail.trim_start().starts_with('{'))
            {
                return &code[..at];
            }
        }
        search = at + 1;
    }
    code
}

/// `a::{b, c::{d, e}}` → `["a::b", "a::c::d", "a::c::e"]`.
fn expand(tree: &str) -> Vec<String> {
    // Renames (`x as y`) go first, then every space.
    let mut tokens = tree.split_whitespace().peekable();
    let mut tree = String::new();
    while let Some(token) = tokens.next() {
        if token == "as" {
            // The new name; a following `,` or `}` may be glued to it.
            let name = tokens.next().unwrap_or("");
            tree.extend(name.chars().filter(|c| matches!(c, ',' | '}')));
        } else {
            tree.push_str(token);
        }
    }
    let Some(open) = tree.find('{') else {
        return vec![tree];
    };
    let prefix = &tree[..open];
    let inner = &tree[open + 1..tree.rfind('}').unwrap_or(tree.len())];
    let mut parts = Vec::new();
    let (mut depth, mut start) = (0, 0);
    for (i, c) in inner.char_indices() {
        match c {
            '{' => depth += 1,
            '}' => depth -= 1,
            ',' if depth == 0 => {
                parts.push(&inner[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    parts.push(&inner[start..]);
    parts
        .into_iter()
        .filter(|p| !p.is_empty())
        .flat_map(|p| expand(&format!("{prefix}{p}")))
        .collect()
}

/// Every `use` tree of the code, expanded (`use a::{b, c};` → `a::b`, `a::c`).
fn use_trees(code: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = code;
    while let Some(at) = find_word(rest, "use") {
        let tail = &rest[at + 3..];
        let end = tail.find(';').unwrap_or(tail.len());
        out.extend(expand(&tail[..end]));
        rest = &tail[end..];
    }
    out
}

/// Every `crate::`/`super::` path the code names: `use` trees expanded, plus inline paths.
fn paths(code: &str) -> Vec<String> {
    let mut out = use_trees(code);
    for start in ["crate::", "super::"] {
        let mut from = 0;
        while let Some(at) = code[from..].find(start) {
            let at = from + at;
            let before = code[..at].chars().next_back();
            if !before.is_some_and(|c| c.is_alphanumeric() || c == '_' || c == ':') {
                let len = code[at..]
                    .find(|c: char| !(c.is_alphanumeric() || c == '_' || c == ':'))
                    .unwrap_or(code.len() - at);
                out.push(code[at..at + len].to_string());
            }
            from = at + start.len();
        }
    }
    // A `use` path is also seen by the inline scan: keep each path once.
    out.retain(|p| p.starts_with("crate::") || p.starts_with("super::"));
    out.sort();
    out.dedup();
    out
}

/// The position of `word` as a whole word.
fn find_word(text: &str, word: &str) -> Option<usize> {
    let mut from = 0;
    while let Some(at) = text[from..].find(word) {
        let at = from + at;
        let before = text[..at].chars().next_back();
        let after = text[at + word.len()..].chars().next();
        let boundary = |c: Option<char>| !c.is_some_and(|c| c.is_alphanumeric() || c == '_');
        if boundary(before) && boundary(after) {
            return Some(at);
        }
        from = at + word.len();
    }
    None
}

/// The top-level module a path from the file at module path `here` names, if any.
fn target(path: &str, here: &[String], reexports: &BTreeMap<String, String>) -> Option<String> {
    let segs: Vec<&str> = path.split("::").filter(|s| !s.is_empty()).collect();
    let (base, rest): (Vec<String>, &[&str]) = match segs.first() {
        Some(&"crate") => (Vec::new(), &segs[1..]),
        Some(&"super") => {
            // `super` in `a/b.rs` (module a::b) is `a`; in `a/mod.rs` (module a) it is the root.
            let mut base = here.to_vec();
            let mut i = 0;
            while segs.get(i) == Some(&"super") {
                base.pop();
                i += 1;
            }
            (base, &segs[i..])
        }
        _ => return None,
    };
    match base.first() {
        Some(top) => Some(top.clone()),
        None => {
            let first = rest.first()?;
            Some(reexports.get(*first).cloned().unwrap_or(first.to_string()))
        }
    }
}

/// Names `lib.rs` re-exports at the root → the top-level module they come from.
fn root_reexports(lib: &str) -> BTreeMap<String, String> {
    let code = code_only(lib);
    let mut map = BTreeMap::new();
    // `pub use module::{A, B};`: 2018 paths without `crate::` as well.
    for path in paths(&code).into_iter().chain(use_trees(&code)) {
        let segs: Vec<&str> = path.split("::").collect();
        let segs = if segs.first() == Some(&"crate") {
            &segs[1..]
        } else {
            &segs[..]
        };
        if let (Some(module), Some(name)) = (segs.first(), segs.last()) {
            if segs.len() > 1 {
                map.insert(name.to_string(), module.to_string());
            }
        }
    }
    map
}

/// The module path of a source file (`stream/hub.rs` → `["stream", "hub"]`, `core/mod.rs` →
/// `["core"]`).
fn module_path(relative: &Path) -> Vec<String> {
    let mut parts: Vec<String> = relative
        .iter()
        .map(|p| p.to_string_lossy().trim_end_matches(".rs").to_string())
        .collect();
    if parts.last().is_some_and(|p| p == "mod") {
        parts.pop();
    }
    parts
}

/// The violations of `rule` in one file's source.
fn check_file(
    file: &str,
    here: &[String],
    source: &str,
    rule: &BTreeMap<String, usize>,
    reexports: &BTreeMap<String, String>,
) -> Result<Vec<Violation>, String> {
    let Some(from) = here.first() else {
        return Ok(Vec::new());
    };
    let Some(&from_level) = rule.get(from) else {
        return Err(format!(
            "{file}: top-level module `{from}` is not in the layering rule of docs/ARCHITECTURE.md"
        ));
    };
    let code = code_only(source);
    let mut out = Vec::new();
    for path in paths(without_test_module(&code)) {
        let Some(to) = target(&path, here, reexports) else {
            continue;
        };
        if to == *from {
            continue;
        }
        let Some(&to_level) = rule.get(&to) else {
            // A name defined in lib.rs itself, or a macro path: nothing to check.
            continue;
        };
        if to_level >= from_level {
            out.push(Violation {
                file: file.to_string(),
                path,
                from: from.clone(),
                to,
            });
        }
    }
    Ok(out)
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("read {}: {e}", dir.display()))
        .filter_map(Result::ok)
        .map(|e| e.path())
        .collect();
    entries.sort();
    for path in entries {
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

#[test]
fn imports_follow_the_layering_rule() {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    let architecture = std::fs::read_to_string(manifest.join("../docs/ARCHITECTURE.md"))
        .expect("read docs/ARCHITECTURE.md");
    let rule = read_rule(&architecture);
    let src = manifest.join("src");
    let lib = std::fs::read_to_string(src.join("lib.rs")).expect("read src/lib.rs");
    let reexports = root_reexports(&lib);
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let mut violations = Vec::new();
    let mut unlisted = Vec::new();
    let mut seen = std::collections::BTreeSet::new();
    for path in &files {
        let relative = path.strip_prefix(&src).expect("under src/");
        let here = module_path(relative);
        // `src/bin/` holds binary targets (`realtime-sidecar`): crates of their own that use the
        // library through its public paths only, outside its module tree.
        if here == ["lib"] || relative.starts_with("bin") {
            continue;
        }
        seen.insert(here[0].clone());
        let source = std::fs::read_to_string(path).expect("read source");
        match check_file(
            &relative.display().to_string(),
            &here,
            &source,
            &rule,
            &reexports,
        ) {
            Ok(v) => violations.extend(v),
            Err(e) => unlisted.push(e),
        }
    }
    assert!(unlisted.is_empty(), "{}", unlisted.join("\n"));
    let missing: Vec<_> = rule.keys().filter(|m| !seen.contains(*m)).collect();
    assert!(
        missing.is_empty(),
        "the layering rule lists modules that do not exist: {missing:?}"
    );
    assert!(
        violations.is_empty(),
        "imports against the layering rule of docs/ARCHITECTURE.md (a module may import only \
         modules on earlier lines):\n{}",
        violations
            .iter()
            .map(|v| format!("  src/{}: `{}` ({} -> {})", v.file, v.path, v.from, v.to))
            .collect::<Vec<_>>()
            .join("\n")
    );
}

/// The checker itself: an upward, a sideways and a root-re-export import are caught; a
/// downward one, comments, strings and a trailing test module are not.
#[test]
fn the_checker_catches_upward_and_sideways_imports() {
    let rule = read_rule(
        "<!-- layering:begin -->\n1. `buffer` — store\n2. `core` — state\n3. `stream`, `metrics` — \
         readers\n4. `realtime` — facade\n<!-- layering:end -->",
    );
    let reexports = root_reexports("pub use realtime::{Realtime, RealtimeBuilder};\n");
    let here = |p: &str| module_path(Path::new(p));
    let check = |file: &str, src: &str| {
        check_file(file, &here(file), src, &rule, &reexports)
            .expect("listed module")
            .into_iter()
            .map(|v| (v.from, v.to))
            .collect::<Vec<_>>()
    };
    assert_eq!(
        check("core/mod.rs", "use crate::realtime::Realtime;"),
        [("core".into(), "realtime".into())]
    );
    assert_eq!(
        check("stream/hub.rs", "fn f() { let _ = crate::metrics::x(); }"),
        [("stream".into(), "metrics".into())]
    );
    assert_eq!(
        check("core/mod.rs", "use crate::{buffer::EventBuffer, Realtime};"),
        [("core".into(), "realtime".into())]
    );
    assert_eq!(
        check(
            "stream/hub.rs",
            "use super::channel::Channel;\nuse crate::core::Core;"
        ),
        []
    );
    assert_eq!(
        check(
            "buffer/mod.rs",
            "// see crate::realtime::Realtime\nconst S: &str = \"crate::core\";\n\
             #[cfg(test)]\nmod tests {\n    use crate::realtime::Realtime;\n}\n"
        ),
        []
    );
    assert!(check_file("nowhere.rs", &here("nowhere.rs"), "", &rule, &reexports).is_err());
}
