//! Reading Redis replies into stream entries (`XRANGE` answers and the bounded page script's,
//! which has the same shape): plain functions over `redis::Value`, testable without a server.

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_keep_their_fields_and_skip_what_is_not_an_entry() {
        let b = |s: &str| Value::BulkString(s.as_bytes().to_vec());
        let answer = Value::Array(vec![
            Value::Array(vec![
                b("1-0"),
                Value::Array(vec![b("v"), b("1"), b("i"), b("web-1"), b("odd")]),
            ]),
            Value::Array(vec![
                b("2-0"),
                Value::Array(vec![b("oversized"), b("13000000")]),
            ]),
            Value::Int(7),
            Value::Array(vec![b("3-0"), Value::Nil]),
        ]);
        let got = entries(answer);
        assert_eq!(got.len(), 3);
        assert_eq!(got[0].id, "1-0");
        assert_eq!(got[0].fields.len(), 2, "the unpaired field is dropped");
        assert_eq!(got[1].fields[0].0, b"oversized");
        assert!(
            got[2].fields.is_empty(),
            "unreadable: no fields, skipped later"
        );
        assert!(entries(Value::Nil).is_empty());
    }
}
