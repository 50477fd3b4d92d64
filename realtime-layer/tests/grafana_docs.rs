//! The monitoring files in `docs/` stay true to what realtime-layer exports:
//!
//! 1. `docs/grafana/dashboard.json` is valid JSON, every panel query uses only realtime-layer's
//!    metric names (the list below, checked against a live `/metrics`), and each of them is used
//!    by some panel;
//! 2. `docs/grafana/alerts.yml` passes `promtool check rules` (and its unit tests,
//!    `promtool test rules docs/grafana/alerts.test.yml`);
//! 3. the `prometheus.yml` in `docs/OPERATIONS.md` (the first ```yaml block after the marker
//!    comment starting `<!-- grafana_docs: prometheus.yml`) parses and passes `promtool check config`.
//!
//! promtool comes with Debian's `prometheus` package. Without it the checks fall back to a YAML
//! structure check and print a loud `SKIPPED promtool:` line, unless `REQUIRE_PROMTOOL=1` (as in
//! CI), which turns a missing promtool into a failure.

use serde_json::Value;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

/// Every metric realtime-layer exports, as Prometheus names them.
const METRICS: [&str; 12] = [
    "realtime_borrows_total",
    "realtime_returns_total",
    "realtime_failures_total",
    "realtime_borrowed",
    "realtime_capacity",
    "realtime_commit",
    "realtime_overage_cost_total",
    "realtime_hold_duration_seconds",
    "realtime_buffer_events",
    "realtime_stream_clients",
    "realtime_stream_slow_disconnects_total",
    "realtime_stream_push_delay_seconds",
];

/// Of those, the histograms (queried through their `_bucket`, `_sum` and `_count` series).
const HISTOGRAMS: [&str; 1] = ["realtime_hold_duration_seconds"];

/// The metric a queried series belongs to (`x_bucket` of histogram `x` is `x`).
fn exported_metric(series: &str) -> &str {
    for suffix in ["_bucket", "_sum", "_count"] {
        if let Some(base) = series.strip_suffix(suffix) {
            if HISTOGRAMS.contains(&base) {
                return base;
            }
        }
    }
    series
}

/// Gauges of pool levels and sizes: how to add them up over replicas depends on the pool model.
const POOL_GAUGES: [&str; 3] = ["realtime_borrowed", "realtime_capacity", "realtime_commit"];

const ALERTS: [&str; 3] = [
    "HighOverageRate",
    "OverageLimitReached",
    "BorrowFailuresSpike",
];

const PROMETHEUS_YML_MARKER: &str = "<!-- grafana_docs: prometheus.yml";

fn docs() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs")
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// PromQL words that are not metric names (aggregations may put `by (..)` before their `(`).
const PROMQL_WORDS: [&str; 25] = [
    "by",
    "without",
    "on",
    "ignoring",
    "group_left",
    "group_right",
    "and",
    "or",
    "unless",
    "offset",
    "bool",
    "inf",
    "nan",
    "sum",
    "min",
    "max",
    "avg",
    "count",
    "stddev",
    "stdvar",
    "topk",
    "bottomk",
    "quantile",
    "count_values",
    "group",
];

/// The metric names a PromQL expression selects: identifiers outside label matchers, ranges and
/// strings that are neither functions/aggregations (followed by `(`), keywords, grouping labels
/// nor numbers.
fn metric_names(expr: &str) -> BTreeSet<String> {
    // Drop strings, `{...}` matchers and `[...]` ranges (they hold label names and variables).
    let mut cleaned = String::new();
    let mut depth_brace = 0;
    let mut depth_bracket = 0;
    let mut in_string = None;
    for c in expr.chars() {
        if let Some(q) = in_string {
            if c == q {
                in_string = None;
            }
            continue;
        }
        match c {
            '"' | '\'' | '`' if depth_brace == 0 => in_string = Some(c),
            '{' => depth_brace += 1,
            '}' => depth_brace -= 1,
            '[' => depth_bracket += 1,
            ']' => depth_bracket -= 1,
            _ if depth_brace == 0 && depth_bracket == 0 => cleaned.push(c),
            _ => {}
        }
    }
    let chars: Vec<char> = cleaned.chars().collect();
    let mut names = BTreeSet::new();
    let mut i = 0;
    let mut grouping = false; // inside `by (...)` / `without (...)` / `on (...)`
    while i < chars.len() {
        let c = chars[i];
        if c == ')' {
            grouping = false;
        }
        if c.is_ascii_alphabetic() || c == '_' || c == ':' {
            let preceded_by_dollar = i > 0 && chars[i - 1] == '$';
            let start = i;
            while i < chars.len() && (chars[i].is_ascii_alphanumeric() || "_:".contains(chars[i])) {
                i += 1;
            }
            let word: String = chars[start..i].iter().collect();
            let next = chars[i..].iter().find(|c| !c.is_whitespace());
            let lower = word.to_ascii_lowercase();
            if [
                "by",
                "without",
                "on",
                "ignoring",
                "group_left",
                "group_right",
            ]
            .contains(&lower.as_str())
                && next == Some(&'(')
            {
                grouping = true;
            } else if !(preceded_by_dollar
                || grouping
                || next == Some(&'(')
                || PROMQL_WORDS.contains(&lower.as_str()))
            {
                names.insert(word);
            }
            continue;
        }
        if c.is_ascii_digit() {
            // Numbers, including durations like `5m` after `offset` and exponents.
            while i < chars.len() && (chars[i].is_ascii_alphanumeric() || chars[i] == '.') {
                i += 1;
            }
            continue;
        }
        i += 1;
    }
    names
}

fn collect_panels<'a>(panels: &'a [Value], out: &mut Vec<&'a Value>) {
    for panel in panels {
        out.push(panel);
        if let Some(children) = panel["panels"].as_array() {
            collect_panels(children, out);
        }
    }
}

/// The list above is exactly what an instance with a status source exports after one event of
/// each kind, so the dashboard and rules checks below compare against the truth.
#[tokio::test]
async fn metric_list_is_what_a_live_instance_exports() {
    use axum::body::Body;
    use http_body_util::BodyExt;
    use realtime_layer::{Event, Pricing, Realtime, ResourceStatus};
    use tower::ServiceExt;

    let realtime = Realtime::builder()
        .status_source(|| {
            vec![ResourceStatus::new("gpu", 8, 4, 1).with_pricing(Pricing::new("EUR", 9.0, 1.0))]
        })
        .build()
        .unwrap();
    realtime.record(Event::borrow("gpu", "ann").overage(true).borrow_id("1"));
    realtime.record(Event::returned("gpu", "ann").borrow_id("1"));
    realtime.record(Event::failure("gpu", "bob", "exhausted"));
    let request = http::Request::get("/metrics").body(Body::empty()).unwrap();
    let response = realtime
        .metrics_routes::<()>()
        .oneshot(request)
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    let text = String::from_utf8(bytes.to_vec()).unwrap();
    let exported: BTreeSet<&str> = text
        .lines()
        .filter_map(|l| l.strip_prefix("# TYPE "))
        .filter_map(|l| l.split_whitespace().next())
        .filter(|name| name.starts_with("realtime_"))
        .collect();
    assert_eq!(exported, METRICS.into_iter().collect(), "{text}");
}

#[test]
fn metric_names_are_found_in_promql() {
    let names = |e| metric_names(e).into_iter().collect::<Vec<_>>();
    assert_eq!(
        names(
            r#"100 * sum by (resource) (rate(realtime_borrows_total{job=~"$job", overage="true"}[$__rate_interval])) / sum(rate(realtime_borrows_total[5m]))"#
        ),
        ["realtime_borrows_total"]
    );
    assert_eq!(
        names("sum(rate(realtime_failures_total[1h] offset 5m)) > 3 * 60 and on (resource) realtime_borrowed"),
        ["realtime_borrowed", "realtime_failures_total"]
    );
    assert_eq!(names("sum by (instance, kind) (up)"), ["up"]);
}

#[test]
fn dashboard_queries_only_exported_metrics() {
    let path = docs().join("grafana/dashboard.json");
    let dashboard: Value = serde_json::from_str(&read(&path))
        .unwrap_or_else(|e| panic!("{} is not valid JSON: {e}", path.display()));

    assert!(dashboard["title"].is_string() && dashboard["uid"].is_string());
    let schema = dashboard["schemaVersion"].as_u64().expect("schemaVersion");
    assert!((36..=41).contains(&schema), "schemaVersion {schema}");
    let inputs = dashboard["__inputs"].as_array().expect("__inputs");
    assert!(
        inputs
            .iter()
            .any(|i| i["name"] == "DS_PROMETHEUS" && i["pluginId"] == "prometheus"),
        "a DS_PROMETHEUS datasource input"
    );

    let mut panels = Vec::new();
    collect_panels(dashboard["panels"].as_array().expect("panels"), &mut panels);
    let mut used = BTreeSet::new();
    let mut exprs = Vec::new();
    let mut queries = 0;
    for panel in panels {
        let title = panel["title"].as_str().unwrap_or("(untitled)");
        if panel["type"] == "row" {
            continue;
        }
        let targets = panel["targets"].as_array();
        let targets = targets.unwrap_or_else(|| panic!("panel {title:?} has no targets"));
        assert!(!targets.is_empty(), "panel {title:?} has no query");
        for target in targets {
            let expr = target["expr"]
                .as_str()
                .unwrap_or_else(|| panic!("panel {title:?}: target without expr"));
            let names = metric_names(expr);
            assert!(!names.is_empty(), "panel {title:?}: no metric in {expr}");
            for name in names {
                let metric = exported_metric(&name);
                assert!(
                    METRICS.contains(&metric),
                    "panel {title:?} queries {name}, which realtime-layer does not export: {expr}"
                );
                for gauge in POOL_GAUGES {
                    // Every selector of a pool gauge sits right inside `$pool by (resource) (`.
                    let selectors = expr.matches(&format!("{gauge}{{")).count();
                    let pooled = expr
                        .matches(&format!("$pool by (resource) ({gauge}{{"))
                        .count();
                    assert_eq!(
                        selectors, pooled,
                        "panel {title:?}: {gauge} must be aggregated over replicas with the pool \
                         model variable, `$pool by (resource) (...)`: {expr}"
                    );
                }
                used.insert(metric.to_string());
                exprs.push(expr.to_string());
            }
            queries += 1;
        }
    }
    for metric in METRICS {
        assert!(used.contains(metric), "no panel shows {metric}");
    }
    println!(
        "dashboard.json: {queries} queries over {} metrics",
        used.len()
    );

    // The pool model variable maps per-instance to sum and shared to max.
    let pool = dashboard["templating"]["list"]
        .as_array()
        .expect("templating")
        .iter()
        .find(|v| v["name"] == "pool")
        .expect("a `pool` dashboard variable");
    let options: Vec<(&str, &str)> = pool["options"]
        .as_array()
        .expect("pool options")
        .iter()
        .map(|o| (o["text"].as_str().unwrap(), o["value"].as_str().unwrap()))
        .collect();
    assert_eq!(options, [("per-instance", "sum"), ("shared", "max")]);

    // Every query, with the variables as Grafana fills them, is valid PromQL.
    let Some(promtool) = test_support::prometheus::promtool() else {
        println!("SKIPPED promtool: dashboard queries not parsed (apt-get install -y prometheus)");
        return;
    };
    let mut rules = String::from("groups:\n  - name: dashboard\n    rules:\n");
    for (i, expr) in exprs.iter().enumerate() {
        for (_, aggregation) in &options {
            let filled = expr
                .replace("$pool", aggregation)
                .replace("$__rate_interval", "1m")
                .replace("$__range", "6h")
                .replace("$job", ".*")
                .replace("$resource", ".*");
            let quoted = serde_json::to_string(&filled).unwrap();
            rules +=
                &format!("      - record: dashboard_{i}_{aggregation}\n        expr: {quoted}\n");
        }
    }
    let dir = std::env::temp_dir().join(format!("grafana_docs-dash-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("dashboard-queries.yml"), rules).unwrap();
    run(
        &promtool,
        &["check", "rules", "dashboard-queries.yml"],
        &dir,
    );
    let _ = std::fs::remove_dir_all(&dir);
}

fn run(promtool: &Path, args: &[&str], dir: &Path) {
    let out = Command::new(promtool)
        .args(args)
        .current_dir(dir)
        .output()
        .expect("run promtool");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "promtool {args:?} failed:\n{text}");
    println!("promtool {}: ok\n{text}", args.join(" "));
}

fn yaml(text: &str, what: &str) -> serde_yaml::Value {
    serde_yaml::from_str(text).unwrap_or_else(|e| panic!("{what} is not valid YAML: {e}"))
}

#[test]
fn alert_rules_are_valid() {
    let dir = docs().join("grafana");
    let rules = yaml(&read(&dir.join("alerts.yml")), "alerts.yml");

    // Structure, always: groups -> rules with alert, expr, for, labels.severity, annotations.
    let groups = rules["groups"].as_sequence().expect("groups");
    let mut alerts = BTreeSet::new();
    for group in groups {
        assert!(group["name"].is_string(), "group without name");
        for rule in group["rules"].as_sequence().expect("rules") {
            let name = rule["alert"].as_str().expect("alert name");
            let expr = rule["expr"]
                .as_str()
                .unwrap_or_else(|| panic!("{name}: expr"));
            assert!(rule["for"].is_string(), "{name}: for");
            assert!(rule["labels"]["severity"].is_string(), "{name}: severity");
            for key in ["summary", "description"] {
                assert!(rule["annotations"][key].is_string(), "{name}: {key}");
            }
            let names = metric_names(expr);
            assert!(!names.is_empty(), "{name}: no metric in {expr}");
            for metric in names {
                assert!(
                    METRICS.contains(&exported_metric(&metric)),
                    "{name} uses unknown {metric}"
                );
            }
            alerts.insert(name.to_string());
        }
    }
    for name in ALERTS {
        assert!(alerts.contains(name), "alerts.yml lacks {name}");
    }

    match test_support::prometheus::promtool() {
        Some(promtool) => {
            run(&promtool, &["check", "rules", "alerts.yml"], &dir);
            if dir.join("alerts.test.yml").is_file() {
                run(&promtool, &["test", "rules", "alerts.test.yml"], &dir);
            }
        }
        None => println!(
            "SKIPPED promtool: not on PATH, docs/grafana/alerts.yml got the YAML structure check \
             only (apt-get install -y prometheus; REQUIRE_PROMTOOL=1 makes this a failure)"
        ),
    }
}

/// The first ```yaml block after the marker in OPERATIONS.md.
fn prometheus_yml_from_operations() -> String {
    let text = read(&docs().join("OPERATIONS.md"));
    let after = text
        .split_once(PROMETHEUS_YML_MARKER)
        .unwrap_or_else(|| panic!("OPERATIONS.md lacks the marker {PROMETHEUS_YML_MARKER}"))
        .1;
    let block = after
        .split_once("```yaml\n")
        .expect("a ```yaml block after the marker")
        .1;
    block
        .split_once("\n```")
        .expect("closing fence")
        .0
        .to_string()
        + "\n"
}

#[test]
fn operations_prometheus_config_is_valid() {
    let config_text = prometheus_yml_from_operations();
    let config = yaml(&config_text, "the prometheus.yml of OPERATIONS.md");
    let jobs = config["scrape_configs"]
        .as_sequence()
        .expect("scrape_configs");
    assert!(!jobs.is_empty());
    for key in ["static_configs", "file_sd_configs", "dns_sd_configs"] {
        assert!(
            jobs.iter().any(|job| job[key].is_sequence()),
            "the prometheus.yml of OPERATIONS.md shows no {key} example"
        );
    }
    assert!(
        jobs.iter().all(|job| job["job_name"].is_string()),
        "every scrape config has a job_name"
    );

    let Some(promtool) = test_support::prometheus::promtool() else {
        println!(
            "SKIPPED promtool: not on PATH, the prometheus.yml of OPERATIONS.md got the YAML \
             structure check only (apt-get install -y prometheus)"
        );
        return;
    };
    // promtool resolves rule_files next to the config: give it the real rules under the names
    // the config uses.
    let dir = std::env::temp_dir().join(format!("grafana_docs-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("prometheus.yml"), &config_text).unwrap();
    let rules = read(&docs().join("grafana/alerts.yml"));
    for file in config["rule_files"].as_sequence().into_iter().flatten() {
        let name = file.as_str().expect("rule file name");
        assert!(
            !name.contains('/'),
            "keep rule_files relative in the doc: {name}"
        );
        std::fs::write(dir.join(name), &rules).unwrap();
    }
    run(&promtool, &["check", "config", "prometheus.yml"], &dir);
    let _ = std::fs::remove_dir_all(&dir);
}
