//! OTLP/JSON logs (`Content-Type: application/json` on `/v1/logs`), decoded with our own serde
//! types so the OTLP JSON rules hold exactly: lowerCamelCase keys (the proto field names are
//! accepted too), 64-bit integers as strings or numbers, enums as integers (names tolerated),
//! trace and span ids as hex (not needed here, so never a reason to refuse a record).
//! `opentelemetry-proto`'s serde support is not used: it has gaps with integer encodings.

use super::otlp::{AttrValue, Records};
use serde::de::{self, Deserializer};
use serde::Deserialize;

/// A 64-bit unsigned integer sent as a JSON string or number.
fn u64_flexible<'de, D: Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Flex<'a> {
        Num(u64),
        Text(&'a str),
        Owned(String),
    }
    match Flex::deserialize(d)? {
        Flex::Num(n) => Ok(n),
        Flex::Text(s) => s.parse().map_err(de::Error::custom),
        Flex::Owned(s) => s.parse().map_err(de::Error::custom),
    }
}

#[derive(Deserialize)]
pub(crate) struct Request {
    #[serde(default, rename = "resourceLogs", alias = "resource_logs")]
    resource_logs: Vec<ResourceLogs>,
}

#[derive(Deserialize)]
struct ResourceLogs {
    #[serde(default, rename = "scopeLogs", alias = "scope_logs")]
    scope_logs: Vec<ScopeLogs>,
}

#[derive(Deserialize)]
struct ScopeLogs {
    #[serde(default, rename = "logRecords", alias = "log_records")]
    log_records: Vec<LogRecord>,
}

#[derive(Deserialize)]
struct LogRecord {
    #[serde(
        default,
        rename = "timeUnixNano",
        alias = "time_unix_nano",
        deserialize_with = "u64_flexible"
    )]
    time_unix_nano: u64,
    #[serde(
        default,
        rename = "observedTimeUnixNano",
        alias = "observed_time_unix_nano",
        deserialize_with = "u64_flexible"
    )]
    observed_time_unix_nano: u64,
    #[serde(default, rename = "eventName", alias = "event_name")]
    event_name: String,
    #[serde(default)]
    attributes: Vec<KeyValue>,
}

#[derive(Deserialize)]
struct KeyValue {
    key: String,
    #[serde(default)]
    value: Option<AnyValue>,
}

/// An `AnyValue`: one of its fields is set.
#[derive(Deserialize, Default)]
struct AnyValue {
    #[serde(default, rename = "stringValue", alias = "string_value")]
    string_value: Option<String>,
    #[serde(default, rename = "boolValue", alias = "bool_value")]
    bool_value: Option<bool>,
    #[serde(
        default,
        rename = "intValue",
        alias = "int_value",
        deserialize_with = "i64_flexible_opt"
    )]
    int_value: Option<i64>,
}

/// A signed 64-bit integer sent as a JSON string or number.
fn i64_flexible_opt<'de, D: Deserializer<'de>>(d: D) -> Result<Option<i64>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Flex {
        Num(i64),
        Text(String),
    }
    match Flex::deserialize(d)? {
        Flex::Num(n) => Ok(Some(n)),
        Flex::Text(s) => s.parse().map(Some).map_err(de::Error::custom),
    }
}

impl AnyValue {
    fn as_attr(&self) -> AttrValue<'_> {
        if let Some(s) = &self.string_value {
            AttrValue::Str(s)
        } else if let Some(b) = self.bool_value {
            AttrValue::Bool(b)
        } else if let Some(n) = self.int_value {
            AttrValue::Int(n)
        } else {
            AttrValue::Other
        }
    }
}

/// Decodes an OTLP/JSON `ExportLogsServiceRequest`; `Err` when the body is not one.
pub(crate) fn decode_json(body: &[u8], now_ms: u64) -> Result<Records, String> {
    let request: Request = serde_json::from_slice(body).map_err(|e| e.to_string())?;
    let mut records = Records::default();
    for rl in &request.resource_logs {
        for sl in &rl.scope_logs {
            for r in &sl.log_records {
                let attrs = r.attributes.iter().map(|kv| {
                    let value = kv
                        .value
                        .as_ref()
                        .map_or(AttrValue::Other, AnyValue::as_attr);
                    (kv.key.as_str(), value)
                });
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn otlp_json_encoding_rules() {
        // 64-bit integers as strings and as numbers, hex ids, enum integers, a body, resource
        // and scope, snake_case keys in one record.
        let body = br#"{"resourceLogs":[{"resource":{"attributes":[{"key":"service.name","value":{"stringValue":"billing"}}]},
          "scopeLogs":[{"scope":{"name":"x"},"logRecords":[
            {"timeUnixNano":"1700000000123456789","severityNumber":9,"severityText":"INFO",
             "traceId":"5b8efff798038103d269b633813fc60c","spanId":"eee19b7ec3c1b174","flags":1,
             "body":{"stringValue":"borrowed"},"eventName":"lease.borrow",
             "attributes":[{"key":"lease.resource","value":{"stringValue":"GPU A100"}},
                           {"key":"lease.user","value":{"stringValue":"ann"}},
                           {"key":"lease.id","value":{"intValue":"9007199254740993"}},
                           {"key":"lease.overage","value":{"boolValue":true}}]},
            {"timeUnixNano":1700000001000000000,"attributes":[
                           {"key":"event.name","value":{"stringValue":"lease.return"}},
                           {"key":"lease.resource","value":{"stringValue":"GPU A100"}},
                           {"key":"lease.user","value":{"stringValue":"ann"}},
                           {"key":"lease.id","value":{"intValue":9007199254740993}}]},
            {"observed_time_unix_nano":"1700000002000000000","event_name":"lease.failure",
             "attributes":[{"key":"lease.resource","value":{"string_value":"GPU A100"}},
                           {"key":"lease.user","value":{"stringValue":"bob"}},
                           {"key":"lease.reason","value":{"stringValue":"exhausted"}}]},
            {"eventName":"app.started","attributes":[]},
            {"eventName":"lease.borrow","attributes":[{"key":"lease.resource","value":{"doubleValue":1.5}}]}
          ]}]}]}"#;
        let r = decode_json(body, 0).unwrap();
        assert_eq!((r.events.len(), r.ignored, r.rejected), (3, 1, 1));
        assert_eq!(r.events[0].ts_ms, 1_700_000_000_123);
        assert_eq!(r.events[0].event.borrow_id_str(), Some("9007199254740993"));
        assert!(r.events[0].event.is_overage());
        assert_eq!(r.events[1].event.borrow_id_str(), Some("9007199254740993"));
        assert_eq!(r.events[1].ts_ms, 1_700_000_001_000);
        assert_eq!(r.events[2].ts_ms, 1_700_000_002_000);
        assert_eq!(r.events[2].event.reason(), Some("exhausted"));
        assert!(decode_json(
            br#"{"resourceLogs":[{"scopeLogs":[{"logRecords":[{"timeUnixNano":"12x"}]}]}]}"#,
            0
        )
        .is_err());
        assert!(decode_json(b"[1,2]", 0).is_err());
        assert!(decode_json(b"{}", 0).unwrap().events.is_empty());
    }
}
