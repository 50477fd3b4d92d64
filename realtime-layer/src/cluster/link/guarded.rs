//! Reads that bring a bounded number of bytes from Redis, whatever another writer put there.
//!
//! Anyone who can write the stream or the heartbeat keys can write values of hundreds of
//! megabytes. Read naively (`XRANGE COUNT 500`, `MGET`), 500 such entries would arrive at once.
//! So the bulk reads go through two small Lua scripts (`EVAL`) that measure each value inside
//! Redis and answer a marker instead of any value over the bound:
//!
//! - [`PAGE`]: stream entries after an id, one `XRANGE ... COUNT 1` at a time, up to a count and a
//!   byte budget per page; an entry over [`wire::MAX_ENTRY_BYTES`] comes back as
//!   `[id, ["oversized", "<bytes>"]]`, which the merge skips and counts;
//! - [`PEERS`]: the newest members of the instance set and their heartbeat values; a member
//!   longer than an instance id or a heartbeat over [`MAX_HEARTBEAT_BYTES`] comes back as the
//!   marker `oversized`.
//!
//! So the live follow polls with pages too: a blocking `XREAD` would bring the next entry whatever
//! its size. A server that refuses scripts (an ACL user without `+eval`, scripting disabled) gets
//! plain `XRANGE` with small pages and `ZRANGE` + `MGET` instead, said once in the log: every
//! value is then still checked before it is parsed, but only Redis's own limits bound what one
//! read brings.

use super::reply::{entries, Entry};
use super::{wire, Link, MAX_PEERS};
use redis::aio::ConnectionManager;
use redis::{ErrorKind, RedisError, Value};
use std::sync::atomic::Ordering;

/// Largest heartbeat value read (4,096 status rows with long names and prices fit).
pub(super) const MAX_HEARTBEAT_BYTES: usize = 8 << 20;
/// Longest instance id (a member of the instance set).
const MAX_ID_BYTES: usize = 128;
/// Bytes of entries one page brings at most (beyond its first entry, itself at most
/// [`wire::MAX_ENTRY_BYTES`]).
const PAGE_BUDGET: usize = 4 << 20;
/// Entries per page when the server refuses scripts: each may be as large as Redis allows.
const FALLBACK_COUNT: usize = 16;
/// The marker of a value over its bound.
pub(super) const OVERSIZED: &[u8] = b"oversized";

/// `KEYS[1]` the stream; `ARGV` start (`(id` exclusive or `id`), count, most bytes per entry,
/// page budget. Fields and values are counted with 16 bytes of overhead each, so an entry of a
/// million tiny fields is oversized too.
const PAGE: &str = r"
local start, count = ARGV[1], tonumber(ARGV[2])
local max_entry, budget = tonumber(ARGV[3]), tonumber(ARGV[4])
local out, used = {}, 0
while #out < count do
  local e = redis.call('XRANGE', KEYS[1], start, '+', 'COUNT', 1)[1]
  if not e then break end
  local size = 0
  for _, v in ipairs(e[2]) do size = size + #v + 16 end
  if size > max_entry then
    out[#out + 1] = {e[1], {'oversized', tostring(size)}}
  else
    if used + size > budget and #out > 0 then break end
    used = used + size
    out[#out + 1] = e
  end
  start = '(' .. e[1]
end
return out
";

/// `KEYS[1]` the instance set; `ARGV` heartbeat key prefix, most members, longest member, largest
/// heartbeat. Answers `[member, heartbeat, ...]`: `false` (nil) for a missing key, `oversized`
/// for a member or heartbeat over its bound.
const PEERS: &str = r"
local prefix, max_member, max_beat = ARGV[1], tonumber(ARGV[3]), tonumber(ARGV[4])
local members = redis.call('ZRANGE', KEYS[1], 0, tonumber(ARGV[2]) - 1, 'REV')
local out = {}
for _, m in ipairs(members) do
  if #m > max_member then
    out[#out + 1] = 'oversized'
    out[#out + 1] = false
  else
    local key = prefix .. m
    local beat = false
    if redis.call('TYPE', key)['ok'] == 'string' then
      if redis.call('STRLEN', key) > max_beat then beat = 'oversized' else beat = redis.call('GET', key) end
    end
    out[#out + 1] = m
    out[#out + 1] = beat
  end
end
return out
";

/// True for a server's refusal of the script itself (permissions, scripting off), as opposed to
/// a connection problem, which is retried as any other.
fn refused(e: &RedisError) -> bool {
    matches!(e.kind(), ErrorKind::Server(_) | ErrorKind::Extension)
}

/// One member of the instance set with its heartbeat value, as read.
pub(super) enum Beat {
    /// The member and its heartbeat key's value (`None`: no key, it expired).
    Read(String, Option<Vec<u8>>),
    /// A member or heartbeat over its bound: skipped and counted.
    Oversized,
}

impl Link {
    /// Stream entries after `start`, at most `count`: through [`PAGE`], or plain `XRANGE` with
    /// small pages when scripts are refused.
    pub(super) async fn page(
        &self,
        conn: &mut ConnectionManager,
        start: &str,
        count: usize,
    ) -> Result<Vec<Entry>, RedisError> {
        if self.scripts.load(Ordering::Relaxed) {
            let answer: Result<Value, RedisError> = redis::cmd("EVAL")
                .arg(PAGE)
                .arg(1)
                .arg(&self.keys.stream)
                .arg(start)
                .arg(count)
                .arg(wire::MAX_ENTRY_BYTES)
                .arg(PAGE_BUDGET)
                .query_async(conn)
                .await;
            match answer {
                Ok(value) => return Ok(entries(value)),
                Err(e) if refused(&e) => self.scripts_refused(&e),
                Err(e) => return Err(e),
            }
        }
        let value: Value = redis::cmd("XRANGE")
            .arg(&self.keys.stream)
            .arg(start)
            .arg("+")
            .arg("COUNT")
            .arg(count.min(FALLBACK_COUNT))
            .query_async(conn)
            .await?;
        Ok(entries(value))
    }

    /// The newest members of the instance set (at most [`MAX_PEERS`]) with their heartbeats.
    pub(super) async fn beats(
        &self,
        conn: &mut ConnectionManager,
    ) -> Result<Vec<Beat>, RedisError> {
        if self.scripts.load(Ordering::Relaxed) {
            let answer: Result<Vec<Value>, RedisError> = redis::cmd("EVAL")
                .arg(PEERS)
                .arg(1)
                .arg(&self.keys.members)
                .arg(&self.keys.prefix)
                .arg(MAX_PEERS)
                .arg(MAX_ID_BYTES)
                .arg(MAX_HEARTBEAT_BYTES)
                .query_async(conn)
                .await;
            match answer {
                Ok(flat) => return Ok(beats_of(flat)),
                Err(e) if refused(&e) => self.scripts_refused(&e),
                Err(e) => return Err(e),
            }
        }
        let members: Vec<Vec<u8>> = redis::cmd("ZRANGE")
            .arg(&self.keys.members)
            .arg(0)
            .arg(MAX_PEERS as i64 - 1)
            .arg("REV")
            .query_async(conn)
            .await?;
        let mut out = Vec::with_capacity(members.len());
        let mut keys = Vec::new();
        let mut named = Vec::new();
        for m in members {
            match String::from_utf8(m) {
                Ok(m) if m.len() <= MAX_ID_BYTES => {
                    keys.push(self.keys.heartbeat(&m));
                    named.push(m);
                }
                _ => out.push(Beat::Oversized),
            }
        }
        if !keys.is_empty() {
            let values: Vec<Option<Vec<u8>>> =
                redis::cmd("MGET").arg(keys).query_async(conn).await?;
            for (m, v) in named.into_iter().zip(values) {
                out.push(match v {
                    Some(v) if v.len() > MAX_HEARTBEAT_BYTES => Beat::Oversized,
                    v => Beat::Read(m, v),
                });
            }
        }
        Ok(out)
    }

    fn scripts_refused(&self, e: &RedisError) {
        if self.scripts.swap(false, Ordering::Relaxed) {
            tracing::warn!(
                error = %e,
                "Redis refused the cluster link's read scripts (EVAL): reading with plain \
                 XRANGE/MGET instead, whose answers only Redis's own limits bound (allow +eval \
                 for the cluster's user, see docs/OPERATIONS.md)"
            );
        }
    }
}

/// The [`PEERS`] answer, `[member, heartbeat, ...]`, as beats.
fn beats_of(flat: Vec<Value>) -> Vec<Beat> {
    let bytes = |v: &Value| match v {
        Value::BulkString(b) => Some(b.clone()),
        Value::SimpleString(s) => Some(s.clone().into_bytes()),
        _ => None,
    };
    flat.chunks(2)
        .map(|pair| {
            let [member, beat] = pair else {
                return Beat::Oversized;
            };
            let member = bytes(member).and_then(|m| String::from_utf8(m).ok());
            let beat = bytes(beat);
            match (member, beat) {
                (Some(m), _) if m.as_bytes() == OVERSIZED => Beat::Oversized,
                (_, Some(b)) if b == OVERSIZED => Beat::Oversized,
                (Some(m), beat) => Beat::Read(m, beat),
                (None, _) => Beat::Oversized,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn peers_answers_are_read_as_beats() {
        let s = |b: &str| Value::BulkString(b.as_bytes().to_vec());
        let beats = beats_of(vec![
            s("web-1"),
            s("{}"),
            s("web-2"),
            Value::Nil,
            s("oversized"),
            Value::Nil,
            s("web-3"),
            s("oversized"),
            s("odd"),
        ]);
        assert!(matches!(&beats[0], Beat::Read(m, Some(b)) if m == "web-1" && b == b"{}"));
        assert!(matches!(&beats[1], Beat::Read(m, None) if m == "web-2"));
        assert!(matches!(beats[2], Beat::Oversized));
        assert!(matches!(beats[3], Beat::Oversized));
        assert!(matches!(beats[4], Beat::Oversized));
        assert_eq!(beats.len(), 5);
    }
}
