//! `realtime-sidecar`: the live view of realtime-layer for services in any language.
//!
//! It serves what a Rust service gets from the layer (the dashboard at `/realtime`, the SSE and
//! WebSocket streams, stats, history, CSV, `/metrics`, cluster mode) and takes its events over
//! HTTP instead: OTLP/HTTP logs at `POST /v1/logs`, NDJSON at `POST /ingest`, pool statuses at
//! `PUT /status` (see `docs/SIDECAR.md`). Served through `realtime_layer::serve` (timeouts,
//! connection cap, shutdown deadline).
//!
//! ```text
//! cargo run --release -p realtime-layer --features sidecar --bin realtime-sidecar
//! ```

mod cli;

use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect};
use axum::routing::get;
use axum::Router;
use clap::Parser;
use cli::Args;
use realtime_layer::access::DashboardAuth;
use realtime_layer::ingest::{IngestConfig, Tokens};
use realtime_layer::{ApiError, Cluster, Labels, Realtime, StreamConfig};
use std::process::ExitCode;
use std::time::Duration;

fn main() -> ExitCode {
    let args = Args::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(args)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn run(args: Args) -> Result<(), String> {
    let filter = tracing_subscriber::EnvFilter::try_new(&args.log)
        .map_err(|e| format!("invalid --log filter {:?}: {e}", args.log))?;
    tracing_subscriber::fmt().with_env_filter(filter).init();
    if let Err(e) = realtime_layer::serve::raise_nofile_limit() {
        tracing::warn!(error = %e, "cannot raise the open-file limit");
    }
    let tokens = match &args.tokens {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .map_err(|e| format!("cannot read --tokens {}: {e}", path.display()))?;
            Some(Tokens::parse(&text).map_err(|e| format!("{}: {e}", path.display()))?)
        }
        None => None,
    };
    if tokens.is_none() && !args.bind.ip().is_loopback() {
        tracing::warn!(
            bind = %args.bind,
            "no --tokens: anyone who can reach this address may send events and statuses"
        );
    }
    let dashboard_auth = match (&args.dashboard_auth, &args.dashboard_token) {
        (Some(pair), _) => Some(
            DashboardAuth::basic(pair)
                .ok_or("--dashboard-auth must be USER:PASSWORD, both non-empty")?,
        ),
        (None, Some(token)) => Some(
            DashboardAuth::bearer(token)
                .ok_or("--dashboard-token must be non-empty printable ASCII without spaces")?,
        ),
        (None, None) => None,
    }
    .map(|auth| auth.realm("realtime-sidecar dashboard"));
    let mut ingest = IngestConfig::default();
    ingest.max_body_bytes = args.max_body_bytes;
    ingest.rate_limit = args.rate_limit;
    ingest.queue_high_water = args.queue_high_water;
    ingest.max_future_skew = args.max_future_skew;
    ingest.status_ttl = args.status_ttl;
    ingest.tokens = tokens;
    let mut builder = Realtime::builder()
        .labels(Labels::default().title(args.title.clone()))
        .service_name("realtime-sidecar")
        .retention(args.retention)
        .stream_config(StreamConfig {
            push_delay: Duration::from_millis(args.push_delay_ms),
            max_push_delay: Duration::from_millis(args.max_push_delay_ms),
            frame_budget: args.stream_frame_budget,
            max_streams: args.max_streams as usize,
            ..StreamConfig::default()
        })
        .trusted_proxies(args.trusted_proxies.iter().cloned())
        .ingest(ingest);
    if let Some(id) = &args.instance_id {
        builder = builder.instance_id(id.clone());
    }
    if let Some(url) = &args.redis {
        builder = builder.cluster(
            Cluster::redis(url.clone())
                .name(args.cluster_name.clone())
                .pool_scope(args.pool_scope.into()),
        );
    }
    let realtime = builder.build().map_err(|e| e.to_string())?;
    let listener = tokio::net::TcpListener::bind(args.bind)
        .await
        .map_err(|e| format!("cannot listen on {}: {e}", args.bind))?;
    let addr = listener.local_addr().map_err(|e| e.to_string())?;
    let app = app(&realtime, dashboard_auth);
    let mut url_addr = addr;
    if url_addr.ip().is_unspecified() {
        url_addr.set_ip(std::net::Ipv4Addr::LOCALHOST.into());
    }
    // Tests and scripts read this line for the port of `--bind 127.0.0.1:0`.
    println!("realtime-sidecar listening on http://{url_addr}");
    println!("Dashboard: http://{url_addr}/realtime");
    println!("OTLP/HTTP logs: http://{url_addr}/v1/logs   NDJSON: http://{url_addr}/ingest");
    if let Some(url) = &args.redis {
        println!(
            "Cluster mode: {} on {} (instance {})",
            args.cluster_name,
            realtime_layer::redact_redis_url(url),
            realtime.instance_id()
        );
    }
    let stop = realtime.shutdown_token();
    let deadline = args.shutdown_deadline;
    tokio::spawn(async move {
        wait_for_signal().await;
        tracing::info!(?deadline, "shutting down (a second signal exits at once)");
        stop.cancel();
        wait_for_signal().await;
        eprintln!("second signal: exiting now");
        std::process::exit(130);
    });
    let signal = realtime.shutdown_token().cancelled_owned();
    realtime_layer::serve::serve(listener, app, args.serve_config(), signal)
        .await
        .map_err(|e| format!("server error: {e}"))
}

/// The whole application: ingest routes, the dashboard and `/metrics` (behind the dashboard
/// credentials when given), `/` to the dashboard, JSON for everything else.
fn app(realtime: &Realtime, dashboard_auth: Option<DashboardAuth>) -> Router {
    // Rejections axum answers itself become JSON; the ingest routes shape their own errors
    // (OTLP protobuf clients get a protobuf Status).
    let dashboard = realtime
        .routes()
        .merge(realtime.metrics_routes())
        .layer(axum::middleware::map_response(realtime_layer::json_errors));
    let dashboard = match dashboard_auth {
        Some(auth) => dashboard.layer(auth.layer()),
        None => dashboard,
    };
    let ingest = realtime.ingest_routes().expect("built with .ingest(..)");
    Router::new()
        .merge(ingest)
        .merge(dashboard)
        .route("/", get(|| async { Redirect::temporary("/realtime") }))
        .fallback(|| async {
            ApiError::not_found(
                "not_found",
                "No such route: see docs/SIDECAR.md for the sidecar's routes.",
            )
        })
        .method_not_allowed_fallback(|| async {
            ApiError::new(
                StatusCode::METHOD_NOT_ALLOWED,
                "method_not_allowed",
                "This route does not take that method.",
            )
            .into_response()
        })
}

async fn wait_for_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}
