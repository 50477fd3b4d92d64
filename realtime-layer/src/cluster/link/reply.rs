//! Reading Redis replies into stream entries (`XRANGE` and `XREAD` answers, RESP2 and RESP3):
//! plain functions over `redis::Value`, testable without a server.

use redis::Value;

/// One stream entry: its id and raw field/value pairs.
#[derive(Debug, Default)]
pub(super) struct Entry {
    pub(super) id: String,
    pub(super) fields: Vec<(Vec<u8>, Vec<u8>)>,
}

fn bytes(v: &Value) -> Option<Vec<u8>> {
    match v {
        Value::BulkString(b) => Some(b.clone()),
        Value::SimpleString(s) => Some(s.clone().into_bytes()),
        Value::Int(i) => Some(i.to_string().into_bytes()),
        _ => None,
    }
}

/// Entries of an `XRANGE` answer: `[[id, [field, value, ...]], ...]`. Unreadable entries come
/// out with no fields (and are then skipped and counted).
pub(super) fn entries(value: Value) -> Vec<Entry> {
    let Value::Array(items) = value else {
        return Vec::new();
    };
    items
        .iter()
        .filter_map(|item| {
            let Value::Array(parts) = item else {
                return None;
            };
            let id = String::from_utf8(bytes(parts.first()?)?).ok()?;
            let mut entry = Entry {
                id,
                fields: Vec::new(),
            };
            if let Some(Value::Array(kv)) = parts.get(1) {
                for pair in kv.chunks(2) {
                    if let [k, v] = pair {
                        if let (Some(k), Some(v)) = (bytes(k), bytes(v)) {
                            entry.fields.push((k, v));
                        }
                    }
                }
            }
            Some(entry)
        })
        .collect()
}

/// Entries of an `XREAD` answer for one stream: `[[key, entries]]` (RESP2), a map (RESP3) or nil
/// on timeout.
pub(super) fn read_entries(value: Value) -> Vec<Entry> {
    match value {
        Value::Array(streams) => streams
            .into_iter()
            .flat_map(|s| match s {
                Value::Array(mut parts) if parts.len() == 2 => entries(parts.remove(1)),
                _ => Vec::new(),
            })
            .collect(),
        Value::Map(streams) => streams.into_iter().flat_map(|(_, v)| entries(v)).collect(),
        _ => Vec::new(),
    }
}
