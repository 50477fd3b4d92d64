//! otel-prometheus — realtime metrics in *your* OpenTelemetry pipeline, next to your own.
//!
//! The app owns an `SdkMeterProvider` exporting to its own Prometheus registry, counts its own
//! requests there, and hands a `Meter` to realtime-layer, which registers its instruments on it.
//! One `/metrics` then serves both. Swap the Prometheus reader for an OTLP exporter and the same
//! instruments flow to an OpenTelemetry Collector instead.
//! Run: `cargo run -p realtime-examples --example otel-prometheus -- --simulate`
//! then open http://127.0.0.1:3005/realtime and http://127.0.0.1:3005/metrics
//!
//! Prometheus scrape config:
//! ```yaml
//! scrape_configs:
//!   - job_name: realtime-example
//!     scrape_interval: 5s
//!     static_configs:
//!       - targets: ["127.0.0.1:3005"]
//! ```

use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::{get, post};
use axum::Router;
use opentelemetry::metrics::{Counter, MeterProvider as _};
use opentelemetry::KeyValue;
use opentelemetry_sdk::metrics::SdkMeterProvider;
use prometheus::{Encoder, TextEncoder};
use realtime_layer::{Event, Realtime};

/// The app's own telemetry: a provider, its registry and one instrument of its own.
#[derive(Clone)]
pub struct Telemetry {
    pub registry: prometheus::Registry,
    pub provider: SdkMeterProvider,
    requests: Counter<u64>,
}

impl Telemetry {
    pub fn new() -> Result<Telemetry, Box<dyn std::error::Error>> {
        let registry = prometheus::Registry::new();
        let exporter = opentelemetry_prometheus::exporter()
            .with_registry(registry.clone())
            .build()?;
        let provider = SdkMeterProvider::builder().with_reader(exporter).build();
        let requests = provider
            .meter("app")
            .u64_counter("app.requests")
            .with_description("Requests served")
            .build();
        Ok(Telemetry {
            registry,
            provider,
            requests,
        })
    }
}

async fn rent(State(t): State<Telemetry>) -> (Event, &'static str) {
    t.requests.add(1, &[KeyValue::new("route", "/bikes/rent")]);
    (Event::borrow("city-bikes", "rider"), "enjoy the ride\n")
}

async fn give_back(State(t): State<Telemetry>) -> (Event, &'static str) {
    t.requests
        .add(1, &[KeyValue::new("route", "/bikes/return")]);
    (Event::returned("city-bikes", "rider"), "thanks\n")
}

/// `GET /metrics`: the app's registry, which now holds the realtime instruments too.
async fn metrics(State(t): State<Telemetry>) -> impl IntoResponse {
    let mut body = Vec::new();
    let encoder = TextEncoder::new();
    let _ = encoder.encode(&t.registry.gather(), &mut body);
    (
        [(header::CONTENT_TYPE, encoder.format_type().to_owned())],
        body,
    )
}

pub fn build(telemetry: &Telemetry) -> Result<(Router, Realtime), realtime_layer::ConfigError> {
    let realtime = Realtime::builder()
        .meter(telemetry.provider.meter("realtime"))
        .build()?;
    let app = Router::new()
        .route("/bikes/rent", post(rent))
        .route("/bikes/return", post(give_back))
        .route("/metrics", get(metrics))
        .with_state(telemetry.clone())
        .layer(realtime.layer())
        .merge(realtime.routes());
    Ok((app, realtime))
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args = realtime_examples::Args::parse(3005);
    let telemetry = Telemetry::new()?;
    let (app, realtime) = build(&telemetry)?;
    if args.simulate {
        tokio::spawn(simulate(app.clone()));
    }
    realtime_examples::serve(app, args.bind, &realtime, "/realtime").await?;
    Ok(())
}

async fn simulate(app: Router) {
    let mut rng = realtime_examples::Rng::new();
    loop {
        let path = if rng.below(2) == 0 {
            "/bikes/rent"
        } else {
            "/bikes/return"
        };
        let request = http::Request::post(path)
            .body(axum::body::Body::empty())
            .unwrap();
        realtime_examples::send(&app, request).await;
        rng.pause(150, 400).await;
    }
}
