//! A per-instance Prometheus registry fed by OpenTelemetry, and the `/metrics` handler.

use super::Metrics;
use crate::buffer::ConfigError;
use crate::error::ApiError;
use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use opentelemetry_sdk::metrics::SdkMeterProvider;
use opentelemetry_sdk::Resource;
use prometheus::{Encoder, TextEncoder};
use std::sync::Arc;

/// One registry per instance (not the global default one), so two instances never collide.
pub(crate) struct PrometheusPipeline {
    pub(crate) registry: prometheus::Registry,
    pub(crate) provider: SdkMeterProvider,
}

impl PrometheusPipeline {
    /// A registry and provider; `service_name` becomes the OpenTelemetry `service.name`
    /// (`target_info{service_name=..}`), otherwise the SDK's `unknown_service:<binary>`.
    pub(crate) fn new(service_name: Option<String>) -> Result<Self, ConfigError> {
        let registry = prometheus::Registry::new();
        let exporter = opentelemetry_prometheus::exporter()
            .with_registry(registry.clone())
            .build()
            .map_err(|e| ConfigError(format!("prometheus exporter: {e}")))?;
        let mut provider = SdkMeterProvider::builder().with_reader(exporter);
        if let Some(name) = service_name {
            provider = provider.with_resource(Resource::builder().with_service_name(name).build());
        }
        let provider = provider.build();
        Ok(PrometheusPipeline { registry, provider })
    }
}

/// `GET /metrics`: Prometheus text exposition format.
pub(crate) async fn metrics_handler(State(metrics): State<Arc<Metrics>>) -> Response {
    let Some(pipeline) = metrics.prometheus.as_ref() else {
        return ApiError::new(
            StatusCode::NOT_FOUND,
            "no_exporter",
            "this instance has no Prometheus exporter",
        )
        .into_response();
    };
    let families = pipeline.registry.gather();
    let encoder = TextEncoder::new();
    let mut body = Vec::new();
    if let Err(e) = encoder.encode(&families, &mut body) {
        return ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "encode_failed",
            e.to_string(),
        )
        .into_response();
    }
    (
        [(header::CONTENT_TYPE, encoder.format_type().to_owned())],
        body,
    )
        .into_response()
}
