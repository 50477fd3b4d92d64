//! The ingest routes: `POST /v1/logs`, `POST /ingest`, `PUT /status`, `GET /status`, and the
//! path every batch takes (see the module documentation of `ingest`).

use super::body::{self, BodyError};
use super::ndjson::{self, LineError, MAX_LISTED_ERRORS};
use super::otlp::{self, Status};
use super::rate::Verdict;
use super::status_push::StatusPush;
use super::{apply::Job, otlp_json, Ingest};
use crate::buffer::{TimedEvent, TimedOutcome};
use crate::core::{Core, IngestCounters, IngestRefusal, Rejection};
use crate::error::ApiError;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use prost::Message;
use serde_json::json;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use tokio::sync::oneshot;

/// Largest `PUT /status` body.
const MAX_STATUS_BODY: usize = 1 << 20;

/// What the ingest handlers read.
#[derive(Clone)]
pub(crate) struct IngestState {
    pub(crate) core: Arc<Core>,
    pub(crate) ingest: Arc<Ingest>,
}

/// The ingest routes.
pub(crate) fn router<S: Clone + Send + Sync + 'static>(state: IngestState) -> Router<S> {
    Router::new()
        .route("/v1/logs", post(otlp_logs))
        .route("/ingest", post(ndjson_ingest))
        .route("/status", axum::routing::put(put_status).get(get_status))
        .with_state(state)
}

/// The wire format of a request, which also shapes its error answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Format {
    OtlpProtobuf,
    OtlpJson,
    Ndjson,
}

/// A refused request.
struct Refused {
    status: StatusCode,
    code: &'static str,
    detail: String,
    retry_after: Option<u64>,
}

impl Refused {
    fn new(status: StatusCode, code: &'static str, detail: impl Into<String>) -> Self {
        Refused {
            status,
            code,
            detail: detail.into(),
            retry_after: None,
        }
    }

    /// The answer in the request's format: `{"error","detail"}` JSON (with OTLP's `code` and
    /// `message` beside them for OTLP/JSON), or a protobuf `google.rpc.Status` for OTLP protobuf.
    fn respond(self, format: Format) -> Response {
        // gRPC codes of the OTLP error body.
        let grpc = match self.status {
            StatusCode::UNAUTHORIZED => 16,
            StatusCode::FORBIDDEN => 7,
            StatusCode::TOO_MANY_REQUESTS => 8,
            StatusCode::SERVICE_UNAVAILABLE => 14,
            _ => 3,
        };
        let mut response = match format {
            Format::OtlpProtobuf => {
                let status = Status {
                    code: grpc,
                    message: format!("{}: {}", self.code, self.detail),
                };
                (
                    self.status,
                    [(header::CONTENT_TYPE, "application/x-protobuf")],
                    status.encode_to_vec(),
                )
                    .into_response()
            }
            Format::OtlpJson => (
                self.status,
                Json(json!({
                    "error": self.code,
                    "detail": self.detail,
                    "code": grpc,
                    "message": format!("{}: {}", self.code, self.detail),
                })),
            )
                .into_response(),
            Format::Ndjson => ApiError::new(self.status, self.code, self.detail).into_response(),
        };
        if let Some(secs) = self.retry_after {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(secs.max(1)));
        }
        if self.status == StatusCode::UNAUTHORIZED {
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static(r#"Bearer realm="realtime-sidecar ingest""#),
            );
        }
        response
    }
}

/// The media type of a request, lowercase, without parameters.
fn media_type(headers: &HeaderMap) -> String {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .map(|v| v.trim().to_ascii_lowercase())
        .unwrap_or_default()
}

impl Ingest {
    /// The sender's token index (`None` without tokens), or 401.
    fn authorize(&self, headers: &HeaderMap) -> Result<Option<usize>, Refused> {
        let Some(tokens) = &self.config.tokens else {
            return Ok(None);
        };
        let refuse = |code: &'static str, detail: &str| {
            self.counters.refuse(IngestRefusal::Unauthorized);
            Refused::new(StatusCode::UNAUTHORIZED, code, detail)
        };
        let Some(value) = headers.get(header::AUTHORIZATION) else {
            return Err(refuse(
                "missing_token",
                "Send Authorization: Bearer <token> (a token of the sidecar's --tokens file).",
            ));
        };
        let value = value.as_bytes();
        let token = match value.iter().position(|b| *b == b' ') {
            Some(i) if value[..i].eq_ignore_ascii_case(b"bearer") => value[i..].trim_ascii(),
            _ => {
                return Err(refuse(
                    "missing_token",
                    "Use the Bearer scheme: Authorization: Bearer <token>.",
                ))
            }
        };
        match tokens.find(token) {
            Some(i) => Ok(Some(i)),
            None => Err(refuse(
                "invalid_token",
                "This token is not in the sidecar's --tokens file.",
            )),
        }
    }

    /// Refuses a request whose events include a resource the token may not send.
    fn check_resources(
        &self,
        token: Option<usize>,
        mut resources: impl Iterator<Item = String>,
        events: u64,
    ) -> Result<(), Refused> {
        let Some(t) = token.and_then(|i| self.config.tokens.as_ref()?.get(i)) else {
            return Ok(());
        };
        if let Some(r) = resources.find(|r| !t.allows(r)) {
            self.counters.reject(Rejection::Forbidden, events);
            return Err(Refused::new(
                StatusCode::FORBIDDEN,
                "resource_not_allowed",
                format!("Token {:?} may not send events or status for resource {r:?}; nothing was stored.", t.name),
            ));
        }
        Ok(())
    }

    /// The body within the cap, or 413/415/400.
    async fn read_body(
        &self,
        headers: &HeaderMap,
        body: Body,
        cap: usize,
    ) -> Result<Vec<u8>, Refused> {
        body::read(headers, body, cap).await.map_err(|e| match e {
            BodyError::TooLarge => {
                self.counters.refuse(IngestRefusal::TooLarge);
                Refused::new(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    "body_too_large",
                    format!("The body is over {cap} bytes (on the wire or decompressed); send smaller batches."),
                )
            }
            BodyError::UnsupportedEncoding(enc) => {
                self.counters.refuse(IngestRefusal::Unsupported);
                Refused::new(
                    StatusCode::UNSUPPORTED_MEDIA_TYPE,
                    "unsupported_encoding",
                    format!("Content-Encoding {enc:?} is not supported: use gzip or none."),
                )
            }
            BodyError::BadGzip(why) => {
                self.counters.refuse(IngestRefusal::BadBody);
                Refused::new(StatusCode::BAD_REQUEST, "bad_gzip", format!("The gzip body does not decompress: {why}."))
            }
            BodyError::Read(why) => {
                self.counters.refuse(IngestRefusal::BadBody);
                Refused::new(StatusCode::BAD_REQUEST, "body_read", format!("The body could not be read: {why}."))
            }
        })
    }

    /// Drops events too old or too far ahead (their indices into `events` go to `rejected`),
    /// counting those a little ahead.
    fn check_times(
        &self,
        now: u64,
        events: &mut Vec<TimedEvent>,
        rejected: &mut Vec<(usize, String)>,
    ) {
        let skew = self.config.max_future_skew.as_millis() as u64;
        let oldest = now.saturating_sub(self.retention_ms);
        let mut index = 0;
        let mut clamped = 0;
        events.retain(|e| {
            let i = index;
            index += 1;
            if e.ts_ms > now.saturating_add(skew) {
                self.counters.reject(Rejection::Future, 1);
                rejected.push((
                    i,
                    format!(
                        "timestamp {} ms ahead of the sidecar's clock (at most {skew} ms allowed)",
                        e.ts_ms - now
                    ),
                ));
                return false;
            }
            if e.ts_ms < oldest {
                self.counters.reject(Rejection::TooOld, 1);
                rejected.push((
                    i,
                    format!(
                        "timestamp older than the retention ({} s)",
                        self.retention_ms / 1000
                    ),
                ));
                return false;
            }
            clamped += (e.ts_ms > now) as u64;
            true
        });
        IngestCounters::add(&self.counters.clamped_future, clamped);
    }

    /// Takes `n` events from the sender's bucket, or 429 (413 for a batch above the burst).
    fn check_rate(&self, token: Option<usize>, n: usize) -> Result<(), Refused> {
        let bucket = &self.buckets[token.unwrap_or(0).min(self.buckets.len() - 1)];
        match bucket.check(n) {
            Verdict::Allowed => Ok(()),
            Verdict::Wait(d) => {
                self.counters.reject(Rejection::RateLimited, n as u64);
                let mut r = Refused::new(
                    StatusCode::TOO_MANY_REQUESTS,
                    "rate_limited",
                    format!("Over this sender's rate; retry in {} ms.", d.as_millis()),
                );
                r.retry_after = Some(d.as_secs_f64().ceil() as u64);
                Err(r)
            }
            Verdict::OverBurst(burst) => {
                self.counters.reject(Rejection::RateLimited, n as u64);
                Err(Refused::new(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    "batch_over_burst",
                    format!(
                        "{n} events in one request; this sender may send at most {burst} at once."
                    ),
                ))
            }
        }
    }

    /// Queues `events` and waits until they are stored, or 503 over the high-water mark.
    async fn apply(&self, events: Vec<TimedEvent>) -> Result<TimedOutcome, Refused> {
        let n = events.len() as u64;
        if n == 0 {
            return Ok(TimedOutcome::default());
        }
        let before = self.counters.queued.fetch_add(n, Ordering::Relaxed);
        let overloaded = |counters: &IngestCounters| {
            counters.queued.fetch_sub(n, Ordering::Relaxed);
            counters.reject(Rejection::Overloaded, n);
            let mut r = Refused::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "overloaded",
                "The sidecar's apply queue is full; retry shortly.",
            );
            r.retry_after = Some(1);
            r
        };
        if before + n > self.config.queue_high_water as u64 {
            return Err(overloaded(&self.counters));
        }
        let (done, outcome) = oneshot::channel();
        if self.queue.send(Job { events, done }).is_err() {
            return Err(overloaded(&self.counters));
        }
        // Once queued the batch is applied even if this request goes away.
        outcome.await.map_err(|_| overloaded(&self.counters))
    }
}

/// `POST /v1/logs`: OTLP/HTTP logs, protobuf or JSON.
async fn otlp_logs(State(state): State<IngestState>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let format = match media_type(&parts.headers).as_str() {
        "application/x-protobuf" | "application/protobuf" => Format::OtlpProtobuf,
        "application/json" => Format::OtlpJson,
        other => {
            state.ingest.counters.refuse(IngestRefusal::Unsupported);
            return Refused::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
                format!("Content-Type {other:?}: /v1/logs takes application/x-protobuf or application/json (OTLP/HTTP)."),
            )
            .respond(Format::OtlpJson);
        }
    };
    match otlp_batch(&state, format, &parts.headers, body).await {
        Ok(response) => response,
        Err(refused) => refused.respond(format),
    }
}

async fn otlp_batch(
    state: &IngestState,
    format: Format,
    headers: &HeaderMap,
    body: Body,
) -> Result<Response, Refused> {
    let ingest = &state.ingest;
    let token = ingest.authorize(headers)?;
    let bytes = ingest
        .read_body(headers, body, ingest.config.max_body_bytes)
        .await?;
    let now = state.core.buffer.clock().now_ms();
    let decoded = match format {
        Format::OtlpProtobuf => otlp::decode_protobuf(&bytes, now),
        _ => otlp_json::decode_json(&bytes, now),
    };
    let mut records = decoded.map_err(|why| {
        ingest.counters.refuse(IngestRefusal::BadBody);
        Refused::new(
            StatusCode::BAD_REQUEST,
            "bad_body",
            format!("Not an OTLP ExportLogsServiceRequest: {why}."),
        )
    })?;
    drop(bytes);
    let n = records.events.len() as u64;
    let names = records.events.iter().map(|e| e.event.resource().to_owned());
    ingest.check_resources(token, names, n)?;
    let mut time_errors = Vec::new();
    ingest.check_times(now, &mut records.events, &mut time_errors);
    ingest.check_rate(token, records.events.len())?;
    let outcome = ingest.apply(std::mem::take(&mut records.events)).await?;
    IngestCounters::add(&ingest.counters.ignored, records.ignored);
    ingest
        .counters
        .reject(Rejection::Malformed, records.rejected);
    for (_, why) in time_errors.iter().take(5) {
        if records.messages.len() < 5 {
            records.messages.push(why.clone());
        }
    }
    let rejected = records.rejected + time_errors.len() as u64 + outcome.expired;
    let message = records.messages.join("; ");
    Ok(match format {
        Format::OtlpProtobuf => (
            [(header::CONTENT_TYPE, "application/x-protobuf")],
            otlp::protobuf_response(rejected, &message),
        )
            .into_response(),
        _ => Json(otlp::json_response(rejected, &message)).into_response(),
    })
}

/// `POST /ingest`: NDJSON events.
async fn ndjson_ingest(State(state): State<IngestState>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let media = media_type(&parts.headers);
    if !matches!(
        media.as_str(),
        "application/x-ndjson"
            | "application/ndjson"
            | "application/jsonl"
            | "application/x-jsonlines"
    ) {
        state.ingest.counters.refuse(IngestRefusal::Unsupported);
        return Refused::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            format!("Content-Type {media:?}: /ingest takes application/x-ndjson, one JSON event per line."),
        )
        .respond(Format::Ndjson);
    }
    match ndjson_batch(&state, &parts.headers, body).await {
        Ok(response) => response,
        Err(refused) => refused.respond(Format::Ndjson),
    }
}

async fn ndjson_batch(
    state: &IngestState,
    headers: &HeaderMap,
    body: Body,
) -> Result<Response, Refused> {
    let ingest = &state.ingest;
    let token = ingest.authorize(headers)?;
    let bytes = ingest
        .read_body(headers, body, ingest.config.max_body_bytes)
        .await?;
    let now = state.core.buffer.clock().now_ms();
    let mut parsed = ndjson::parse(&bytes, now);
    drop(bytes);
    let malformed = parsed.errors.len() as u64;
    let names = parsed.events.iter().map(|e| e.event.resource().to_owned());
    ingest.check_resources(token, names, parsed.events.len() as u64)?;
    let mut time_errors = Vec::new();
    ingest.check_times(now, &mut parsed.events, &mut time_errors);
    for (i, error) in time_errors {
        parsed.errors.push(LineError {
            line: parsed.lines[i],
            error,
        });
    }
    ingest.check_rate(token, parsed.events.len())?;
    let valid = parsed.events.len() as u64;
    let outcome = ingest.apply(std::mem::take(&mut parsed.events)).await?;
    ingest.counters.reject(Rejection::Malformed, malformed);
    let rejected = parsed.errors.len() as u64 + outcome.expired;
    parsed.errors.sort_by_key(|e| e.line);
    parsed.errors.truncate(MAX_LISTED_ERRORS);
    Ok(Json(json!({
        "accepted": valid - outcome.expired,
        "rejected": rejected,
        "duplicates": outcome.duplicates,
        "errors": parsed.errors,
    }))
    .into_response())
}

/// `PUT /status`: pool sizes, commits, overage limits and prices.
async fn put_status(State(state): State<IngestState>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let result = async {
        let ingest = &state.ingest;
        let token = ingest.authorize(&parts.headers)?;
        if media_type(&parts.headers) != "application/json" {
            return Err(Refused::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
                "PUT /status takes application/json.",
            ));
        }
        let bytes = ingest
            .read_body(&parts.headers, body, MAX_STATUS_BODY)
            .await?;
        let push: StatusPush = serde_json::from_slice(&bytes).map_err(|e| {
            Refused::new(
                StatusCode::BAD_REQUEST,
                "invalid_status",
                format!("Not a status push: {e}."),
            )
        })?;
        let names = push.resources.iter().map(|p| p.name.clone());
        ingest.check_resources(token, names, 0)?;
        let n = ingest
            .status
            .push(push)
            .map_err(|why| Refused::new(StatusCode::BAD_REQUEST, "invalid_status", why))?;
        // The stream's next frame carries the new totals.
        state.core.activity.signal();
        Ok(Json(json!({
            "updated": n,
            "ttl_seconds": ingest.config.status_ttl.as_secs_f64(),
        }))
        .into_response())
    }
    .await;
    result.unwrap_or_else(|r| r.respond(Format::Ndjson))
}

/// `GET /status`: the pushed rows, their age, and whether each is still fresh.
async fn get_status(State(state): State<IngestState>, headers: HeaderMap) -> Response {
    match state.ingest.authorize(&headers) {
        Ok(_) => Json(json!({
            "ttl_seconds": state.ingest.config.status_ttl.as_secs_f64(),
            "resources": state.ingest.status.rows(),
        }))
        .into_response(),
        Err(r) => r.respond(Format::Ndjson),
    }
}
