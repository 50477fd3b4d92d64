//! `POST /v1/logs` (the OTLP/HTTP logs binding): log records whose event name is a lease event
//! become events; the rest are counted and skipped. Protobuf through the prost types of
//! `opentelemetry-proto`; JSON in `otlp_json.rs`. Both end in [`Records`].

use super::lease::{kind_of_event_name, LeaseRecord};
use crate::buffer::TimedEvent;
use opentelemetry_proto::tonic::collector::logs::v1::{
    ExportLogsPartialSuccess, ExportLogsServiceRequest, ExportLogsServiceResponse,
};
use opentelemetry_proto::tonic::common::v1::any_value::Value;
use opentelemetry_proto::tonic::common::v1::KeyValue;
use prost::Message;
use std::borrow::Cow;

/// Error messages joined into `partial_success.error_message` (the rest are only counted).
const MAX_MESSAGES: usize = 5;

/// An attribute value as the lease mapping needs it.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum AttrValue<'a> {
    Str(&'a str),
    Bool(bool),
    Int(i64),
    /// Any other type (double, bytes, array, map) or no value.
    Other,
}

/// The log records of one request, sorted into events, skipped records and malformed ones.
#[derive(Debug, Default)]
pub(crate) struct Records {
    pub(crate) events: Vec<TimedEvent>,
    /// Records that are not lease events.
    pub(crate) ignored: u64,
    /// Lease records that are malformed.
    pub(crate) rejected: u64,
    /// The first error messages.
    pub(crate) messages: Vec<String>,
}

impl Records {
    /// Notes one malformed record.
    pub(crate) fn reject(&mut self, why: String) {
        self.rejected += 1;
        if self.messages.len() < MAX_MESSAGES {
            self.messages.push(why);
        }
    }

    /// Takes one log record: its event name (the field, else the `event.name` attribute), its
    /// attributes and its times (ns since the epoch; 0 when unset).
    pub(crate) fn take<'a>(
        &mut self,
        event_name: &'a str,
        attributes: impl Iterator<Item = (&'a str, AttrValue<'a>)> + Clone,
        time_unix_nano: u64,
        observed_unix_nano: u64,
        now_ms: u64,
    ) {
        let name = if event_name.is_empty() {
            attributes.clone().find_map(|(k, v)| match (k, v) {
                ("event.name", AttrValue::Str(s)) => Some(s),
                _ => None,
            })
        } else {
            Some(event_name)
        };
        let Some(kind) = name.and_then(kind_of_event_name) else {
            self.ignored += 1;
            return;
        };
        let mut record = LeaseRecord {
            kind,
            ..LeaseRecord::default()
        };
        let nanos = if time_unix_nano > 0 {
            time_unix_nano
        } else {
            observed_unix_nano
        };
        record.ts_ms = (nanos > 0).then_some(nanos / 1_000_000);
        for (key, value) in attributes {
            let field = match key {
                "lease.resource" => &mut record.resource,
                "lease.user" => &mut record.user,
                "lease.reason" => &mut record.reason,
                "lease.id" => {
                    record.borrow_id = match value {
                        AttrValue::Str(s) => Some(Cow::Borrowed(s)),
                        AttrValue::Int(n) => Some(Cow::Owned(n.to_string())),
                        _ => {
                            return self.reject(format!(
                                "{name}: lease.id must be a string or an integer",
                                name = name.unwrap_or_default()
                            ))
                        }
                    };
                    continue;
                }
                "lease.overage" => {
                    record.overage = match value {
                        AttrValue::Bool(b) => b,
                        AttrValue::Str("true") => true,
                        AttrValue::Str("false") => false,
                        _ => {
                            return self.reject(format!(
                                "{name}: lease.overage must be a boolean",
                                name = name.unwrap_or_default()
                            ))
                        }
                    };
                    continue;
                }
                _ => continue,
            };
            match value {
                AttrValue::Str(s) => *field = Some(s),
                _ => {
                    return self.reject(format!(
                        "{name}: {key} must be a string",
                        name = name.unwrap_or_default()
                    ))
                }
            }
        }
        match record.to_event(now_ms, true) {
            Ok(e) => self.events.push(e),
            Err(why) => self.reject(format!("{}: {why}", name.unwrap_or_default())),
        }
    }
}

fn attr_value(kv: &KeyValue) -> AttrValue<'_> {
    match kv.value.as_ref().and_then(|v| v.value.as_ref()) {
        Some(Value::StringValue(s)) => AttrValue::Str(s),
        Some(Value::BoolValue(b)) => AttrValue::Bool(*b),
        Some(Value::IntValue(n)) => AttrValue::Int(*n),
        _ => AttrValue::Other,
    }
}

/// Decodes a protobuf `ExportLogsServiceRequest`; `Err` when the body is not one.
pub(crate) fn decode_protobuf(body: &[u8], now_ms: u64) -> Result<Records, String> {
    let request = ExportLogsServiceRequest::decode(body).map_err(|e| e.to_string())?;
    let mut records = Records::default();
    for rl in &request.resource_logs {
        for sl in &rl.scope_logs {
            for r in &sl.log_records {
                let attrs = r
                    .attributes
                    .iter()
                    .map(|kv| (kv.key.as_str(), attr_value(kv)));
                records.take(
                    &r.event_name,
                    attrs,
                    r.time_unix_nano,
                    r.observed_time_unix_nano,
                    now_ms,
                );
            }
        }
    }
    Ok(records)
}

/// The success answer in protobuf: `partial_success` set when records were rejected.
pub(crate) fn protobuf_response(rejected: u64, message: &str) -> Vec<u8> {
    let response = ExportLogsServiceResponse {
        partial_success: (rejected > 0).then(|| ExportLogsPartialSuccess {
            rejected_log_records: rejected as i64,
            error_message: message.to_owned(),
        }),
    };
    response.encode_to_vec()
}

/// The success answer in OTLP JSON (64-bit integers as strings, lowerCamelCase).
pub(crate) fn json_response(rejected: u64, message: &str) -> serde_json::Value {
    if rejected == 0 {
        return serde_json::json!({});
    }
    serde_json::json!({
        "partialSuccess": {
            "rejectedLogRecords": rejected.to_string(),
            "errorMessage": message,
        }
    })
}

/// `google.rpc.Status`, the body of an OTLP/HTTP error answer in protobuf.
#[derive(Clone, PartialEq, Message)]
pub(crate) struct Status {
    #[prost(int32, tag = "1")]
    pub(crate) code: i32,
    #[prost(string, tag = "2")]
    pub(crate) message: String,
}

#[cfg(test)]
mod tests {
    use super::*;
    use opentelemetry_proto::tonic::common::v1::AnyValue;
    use opentelemetry_proto::tonic::logs::v1::{LogRecord, ResourceLogs, ScopeLogs};

    fn kv(key: &str, value: Value) -> KeyValue {
        KeyValue {
            key: key.into(),
            value: Some(AnyValue { value: Some(value) }),
            ..Default::default()
        }
    }

    fn s(v: &str) -> Value {
        Value::StringValue(v.into())
    }

    #[test]
    fn protobuf_records_map_to_events() {
        let records = vec![
            LogRecord {
                event_name: "lease.borrow".into(),
                time_unix_nano: 1_700_000_000_123_456_789,
                attributes: vec![
                    kv("lease.resource", s("GPU A100")),
                    kv("lease.user", s("ann")),
                    kv("lease.id", Value::IntValue(42)),
                    kv("lease.overage", Value::BoolValue(true)),
                ],
                ..Default::default()
            },
            LogRecord {
                observed_time_unix_nano: 1_700_000_001_000_000_000,
                attributes: vec![
                    kv("event.name", s("lease.return")),
                    kv("lease.resource", s("GPU A100")),
                    kv("lease.user", s("ann")),
                    kv("lease.id", s("42")),
                ],
                ..Default::default()
            },
            LogRecord {
                event_name: "http.request".into(),
                ..Default::default()
            },
            LogRecord {
                event_name: "lease.failure".into(),
                attributes: vec![kv("lease.resource", Value::IntValue(3))],
                ..Default::default()
            },
            LogRecord {
                event_name: "lease.failure".into(),
                attributes: vec![kv("lease.resource", s("GPU A100"))],
                ..Default::default()
            },
        ];
        let request = ExportLogsServiceRequest {
            resource_logs: vec![ResourceLogs {
                scope_logs: vec![ScopeLogs {
                    log_records: records,
                    ..Default::default()
                }],
                ..Default::default()
            }],
        };
        let r = decode_protobuf(&request.encode_to_vec(), 9).unwrap();
        assert_eq!((r.events.len(), r.ignored, r.rejected), (2, 1, 2));
        assert_eq!(r.events[0].ts_ms, 1_700_000_000_123);
        assert!(r.events[0].event.is_overage());
        assert_eq!(r.events[0].event.borrow_id_str(), Some("42"));
        assert_eq!(
            r.events[1].ts_ms, 1_700_000_001_000,
            "observed time as a fallback"
        );
        assert!(r.messages[0].contains("lease.resource must be a string"));
        assert!(r.messages[1].contains("missing lease.user"));
        assert!(decode_protobuf(b"\xff\xff\xff", 0).is_err());
        let answer = ExportLogsServiceResponse::decode(&protobuf_response(2, "x")[..]).unwrap();
        assert_eq!(answer.partial_success.unwrap().rejected_log_records, 2);
    }
}
