//! One raw SSE client of `/realtime/stream`: HTTP head and chunked decoding, frame counting and
//! push latency, with counters the measuring code reads while it runs.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicU8, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

pub(crate) const CONNECTING: u8 = 0;
const STREAMING: u8 = 1;
const FAILED: u8 = 2;

/// What one client has seen, read by the measuring code.
#[derive(Default)]
pub(crate) struct ClientStats {
    pub(crate) phase: AtomicU8,
    /// Response bytes after the headers, chunk framing included (what the server sends).
    bytes: AtomicU64,
    /// SSE messages with a `data:` line.
    pub(crate) frames: AtomicU64,
    /// Events carried by deltas (latency clients only), omitted ones included.
    events: AtomicU64,
    pub(crate) failure: Mutex<Option<String>>,
    /// Push latencies in ms during the window (latency clients only).
    pub(crate) latencies_ms: Mutex<Vec<f64>>,
}

impl ClientStats {
    pub(crate) fn failed(&self) -> bool {
        self.phase.load(Ordering::Acquire) == FAILED
    }

    fn fail(&self, reason: String) {
        self.phase.store(FAILED, Ordering::Release);
        self.failure
            .lock()
            .expect("failure lock")
            .get_or_insert(reason);
    }

    pub(crate) fn counters(&self) -> [u64; 3] {
        [
            self.bytes.load(Ordering::Relaxed),
            self.frames.load(Ordering::Relaxed),
            self.events.load(Ordering::Relaxed),
        ]
    }
}

/// Decodes a `Transfer-Encoding: chunked` body incrementally (or passes a plain one through).
struct Body {
    chunked: bool,
    raw: Vec<u8>,
}

impl Body {
    /// Appends the payload decoded from `bytes` to `out`; `Ok(false)` at the last chunk.
    fn push(&mut self, bytes: &[u8], out: &mut Vec<u8>) -> Result<bool, String> {
        if !self.chunked {
            out.extend_from_slice(bytes);
            return Ok(true);
        }
        self.raw.extend_from_slice(bytes);
        loop {
            let Some(line_end) = find(&self.raw, b"\r\n") else {
                return Ok(true);
            };
            let line = String::from_utf8_lossy(&self.raw[..line_end]);
            let hex = line.split(';').next().unwrap_or("").trim();
            let size = usize::from_str_radix(hex, 16)
                .map_err(|_| format!("bad chunk size line {line:?}"))?;
            if size == 0 {
                return Ok(false);
            }
            let start = line_end + 2;
            if self.raw.len() < start + size + 2 {
                return Ok(true);
            }
            out.extend_from_slice(&self.raw[start..start + size]);
            self.raw.drain(..start + size + 2);
        }
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

fn unix_ms_now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock after 1970")
        .as_secs_f64()
        * 1000.0
}

/// A client's decoding state: the body decoder, and SSE text not yet split into messages.
struct Decoder {
    body: Body,
    payload: Vec<u8>,
    messages: Vec<u8>,
}

/// One client's connection.
pub(crate) struct Client {
    pub(crate) addr: SocketAddr,
    pub(crate) stats: Arc<ClientStats>,
    /// Parse frames for latency and event counts.
    pub(crate) parse: bool,
    /// Set during the measuring window: latency samples are kept only then.
    pub(crate) measuring: Arc<AtomicBool>,
}

impl Client {
    pub(crate) async fn run(self) {
        let reason = match self.stream().await {
            Ok(()) => "the server ended the stream".to_string(),
            Err(e) => e,
        };
        self.stats.fail(reason);
    }

    /// Reads the stream until it ends (`Ok`) or breaks (`Err`).
    async fn stream(&self) -> Result<(), String> {
        let mut s = TcpStream::connect(self.addr)
            .await
            .map_err(|e| format!("connect: {e}"))?;
        // The server answers only to allowed Host names: the bound address is one.
        let request = format!(
            "GET /realtime/stream HTTP/1.1\r\nHost: {}\r\nAccept: text/event-stream\r\n\r\n",
            self.addr
        );
        s.write_all(request.as_bytes())
            .await
            .map_err(|e| format!("send request: {e}"))?;
        let mut buf = vec![0u8; 8 * 1024];
        let (body, rest) = read_head(&mut s, &mut buf).await?;
        self.stats.phase.store(STREAMING, Ordering::Release);
        let mut decoder = Decoder {
            body,
            payload: Vec::new(),
            messages: Vec::new(),
        };
        let mut open = self.consume(&mut decoder, &rest, unix_ms_now())?;
        while open {
            let n = s.read(&mut buf).await.map_err(|e| format!("read: {e}"))?;
            if n == 0 {
                return Err("connection closed".into());
            }
            open = self.consume(&mut decoder, &buf[..n], unix_ms_now())?;
        }
        Ok(())
    }

    /// Counts and decodes bytes read at `read_at_ms`; `Ok(false)` when the body has ended.
    fn consume(&self, d: &mut Decoder, bytes: &[u8], read_at_ms: f64) -> Result<bool, String> {
        self.stats
            .bytes
            .fetch_add(bytes.len() as u64, Ordering::Relaxed);
        let open = d.body.push(bytes, &mut d.payload)?;
        d.messages.append(&mut d.payload);
        while let Some(end) = find(&d.messages, b"\n\n") {
            let message: Vec<u8> = d.messages.drain(..end + 2).collect();
            self.on_message(&message, read_at_ms)?;
        }
        Ok(open)
    }

    /// Counts a frame; on latency clients, also its events and (in the window) their latency.
    fn on_message(&self, message: &[u8], read_at_ms: f64) -> Result<(), String> {
        let text = String::from_utf8_lossy(message);
        let Some(data) = text.lines().find_map(|l| l.strip_prefix("data:")) else {
            return Ok(()); // `: keep-alive` or a lone `retry:`
        };
        self.stats.frames.fetch_add(1, Ordering::Relaxed);
        if !self.parse {
            return Ok(());
        }
        let frame: serde_json::Value = serde_json::from_str(data.trim_start())
            .map_err(|e| format!("frame is not JSON ({e}): {data}"))?;
        if frame["kind"] != "delta" {
            return Ok(());
        }
        let ts_ms = frame["ts_ms"]
            .as_f64()
            .ok_or_else(|| format!("frame without ts_ms: {data}"))?;
        let events = frame["ev"].as_array().map_or(&[][..], Vec::as_slice);
        let omitted = frame["events_omitted"].as_u64().unwrap_or(0);
        self.stats
            .events
            .fetch_add(events.len() as u64 + omitted, Ordering::Relaxed);
        if !self.measuring.load(Ordering::Relaxed) {
            return Ok(());
        }
        let mut samples = self.stats.latencies_ms.lock().expect("latency lock");
        for ev in events {
            // [dt, kind, resource, user, ...]: dt is the event's time minus the frame's.
            let dt = ev[0]
                .as_f64()
                .ok_or_else(|| format!("ev entry without dt: {ev}"))?;
            samples.push(read_at_ms - (ts_ms + dt));
        }
        Ok(())
    }
}

/// Reads the response head; fails unless it is `200`. Returns the body decoder and the bytes
/// read past the head.
async fn read_head(s: &mut TcpStream, buf: &mut [u8]) -> Result<(Body, Vec<u8>), String> {
    let mut head = Vec::new();
    loop {
        let n = s.read(buf).await.map_err(|e| format!("read head: {e}"))?;
        if n == 0 {
            return Err("closed before the response head".into());
        }
        head.extend_from_slice(&buf[..n]);
        let Some(end) = find(&head, b"\r\n\r\n") else {
            if head.len() > 64 * 1024 {
                return Err("response head over 64 KiB".into());
            }
            continue;
        };
        let text = String::from_utf8_lossy(&head[..end]).into_owned();
        let rest = head.split_off(end + 4);
        let status_line = text.lines().next().unwrap_or("");
        if status_line.split_whitespace().nth(1) != Some("200") {
            let body: String = String::from_utf8_lossy(&rest).chars().take(160).collect();
            return Err(format!("{status_line}: {body}"));
        }
        let chunked = text.lines().any(|l| {
            let l = l.to_ascii_lowercase();
            l.starts_with("transfer-encoding:") && l.contains("chunked")
        });
        let body = Body {
            chunked,
            raw: Vec::new(),
        };
        return Ok((body, rest));
    }
}
