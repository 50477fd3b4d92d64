//! The results table, with the targets marked.

use super::Row;

/// Targets from the issue.
const TARGET_BYTES_PER_SEC: f64 = 3_000.0;
const TARGET_SERVER_CPU_PERCENT: f64 = 10.0;
const TARGET_CPU_AT_CLIENTS: usize = 1_000;
const TARGET_P99_MS: f64 = 150.0;
/// Above this share of failed clients the numbers are flagged.
const FAILED_SHARE_WARNING: f64 = 0.01;

/// The server's push delay for `clients` streams, as the table shows it: `100 ms`, or
/// `100 → 125 ms` when that many streams stretch it (the server's defaults, or the
/// `LICENSE_DEMO_STREAM_FRAME_BUDGET` / `LICENSE_DEMO_MAX_PUSH_DELAY_MS` it inherits).
fn push_delay_cell(push_delay_ms: u64, clients: usize) -> String {
    let env = |name: &str| std::env::var(name).ok().and_then(|v| v.parse::<u64>().ok());
    let defaults = realtime_layer::StreamConfig::default();
    let config = realtime_layer::StreamConfig {
        push_delay: std::time::Duration::from_millis(push_delay_ms),
        max_push_delay: env("LICENSE_DEMO_MAX_PUSH_DELAY_MS")
            .map_or(defaults.max_push_delay, std::time::Duration::from_millis),
        frame_budget: env("LICENSE_DEMO_STREAM_FRAME_BUDGET").unwrap_or(defaults.frame_budget),
        ..defaults
    };
    let stretched = config.push_delay_for(clients).as_millis();
    if stretched == u128::from(push_delay_ms) {
        format!("{push_delay_ms} ms")
    } else {
        format!("{push_delay_ms} → {stretched} ms")
    }
}

fn mark(ok: bool) -> &'static str {
    if ok {
        "PASS"
    } else {
        "over"
    }
}

pub(crate) fn print_table(rows: &[Row]) {
    println!(
        "\nTargets (issue): ≤ {TARGET_BYTES_PER_SEC:.0} B/s (3 KB/s) per client (checked on the \
         max client), server ≤ {TARGET_SERVER_CPU_PERCENT:.0} % of one core at \
         {TARGET_CPU_AT_CLIENTS} clients, push latency p99 ≤ {TARGET_P99_MS:.0} ms; load: 10 \
         cycles/s = 20 events/s.\n"
    );
    println!(
        "| push delay | clients | server CPU % of a core (user + system) | bytes/s per client mean (min–max) | frames/s per \
         client | push latency ms p50 / p99 / max (samples) | events/s seen | failed clients | \
         bench-process CPU % | load-gen CPU % |"
    );
    println!("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    for r in rows {
        let cpu_mark = if r.clients >= TARGET_CPU_AT_CLIENTS {
            mark(r.server_cpu <= TARGET_SERVER_CPU_PERCENT)
        } else {
            "-"
        };
        if r.clients == 0 {
            // The load alone: what the streams' rows are compared with.
            println!(
                "| {} ms | 0 (the load alone) | {:.1} % ({:.1} + {:.1}) | - | - | - | - | - | {:.1} % \
                 | {:.1} % |",
                r.push_delay_ms,
                r.server_cpu,
                r.server_user_cpu(),
                r.server_system_cpu,
                r.bench_cpu,
                r.load_cpu,
            );
            continue;
        }
        let (mean, min, max) = r.bytes_per_sec;
        let latency = match r.latency {
            Some((p50, p99, top, count)) => format!(
                "{p50:.0} / {p99:.0} / {top:.0} ({count}) {}",
                mark(p99 <= TARGET_P99_MS)
            ),
            None => "no samples".into(),
        };
        println!(
            "| {} | {} | {:.1} % ({:.1} + {:.1}) {cpu_mark} | {mean:.0} ({min:.0}–{max:.0}) {} | {:.1} | {latency} | \
             {:.1} | {} | {:.1} % | {:.1} % |",
            push_delay_cell(r.push_delay_ms, r.clients),
            r.clients,
            r.server_cpu,
            r.server_user_cpu(),
            r.server_system_cpu,
            mark(max <= TARGET_BYTES_PER_SEC),
            r.frames_per_sec,
            r.events_per_sec,
            r.failed,
            r.bench_cpu,
            r.load_cpu,
        );
    }
    println!();
    for r in rows.iter().filter(|r| r.clients > 0) {
        let Some(alone) = rows
            .iter()
            .find(|a| a.clients == 0 && a.push_delay_ms == r.push_delay_ms)
        else {
            continue;
        };
        println!(
            "push delay {} ms, N = {}: the streams' own cost (minus the load alone): {:.1} % of a \
             core ({:.1} user + {:.1} system)",
            r.push_delay_ms,
            r.clients,
            r.server_cpu - alone.server_cpu,
            r.server_user_cpu() - alone.server_user_cpu(),
            r.server_system_cpu - alone.server_system_cpu,
        );
    }
    println!();
    for r in rows {
        println!(
            "push delay {} ms, N = {}: window {:.1} s; server streams left open after close: {}",
            r.push_delay_ms,
            r.clients,
            r.window_secs,
            r.left_open
                .map_or("unknown (/metrics unreadable)".into(), |n| n.to_string())
        );
        if r.failed as f64 > FAILED_SHARE_WARNING * r.clients as f64 {
            println!(
                "!!! WARNING: {} of {} clients FAILED (more than {:.0} %): the numbers above \
                 do not describe {} live clients. First failure: {}",
                r.failed,
                r.clients,
                FAILED_SHARE_WARNING * 100.0,
                r.clients,
                r.first_failure.as_deref().unwrap_or("?")
            );
        } else if let Some(why) = &r.first_failure {
            println!("  {} failed client(s), first: {why}", r.failed);
        }
    }
}
