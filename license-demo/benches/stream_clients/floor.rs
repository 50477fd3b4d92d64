//! The kernel floor: what the same socket writes cost a process that does nothing else.
//!
//! On loopback a write also runs the receiving side's TCP processing and wakes the reader,
//! charged to the writer, so most of the server's kernel share is not the server's doing. To
//! put a number on it, this bench re-runs itself as a bare writer (no HTTP library, no async
//! runtime, one thread): it answers N raw SSE requests with a chunked response head, lowers
//! each socket's send buffer as the server does, then writes one chunk of the server's mean
//! frame size to every socket at the server's frame rate. The same clients read it; its
//! system time is the floor under the server's kernel share.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The variable that makes this bench binary the bare writer: `N,INTERVAL_US,FRAME_BYTES`.
const WRITER_ENV: &str = "STREAM_FLOOR_WRITER";

/// The bare writer, started as a child of this bench: its pid and address.
pub(crate) struct Writer {
    pub(crate) child: Child,
    pub(crate) addr: std::net::SocketAddr,
}

impl Drop for Writer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts this binary as a bare writer for `clients` readers, one `frame_bytes` chunk each per
/// `interval`.
pub(crate) fn start(clients: usize, interval: Duration, frame_bytes: usize) -> Writer {
    let exe = std::env::current_exe().expect("the bench's own path");
    let mut child = Command::new(exe)
        .env(
            WRITER_ENV,
            format!("{clients},{},{frame_bytes}", interval.as_micros()),
        )
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start the bare writer");
    let mut line = String::new();
    BufReader::new(child.stdout.take().expect("piped stdout"))
        .read_line(&mut line)
        .expect("the writer's address");
    let addr = line
        .trim()
        .parse()
        .unwrap_or_else(|e| panic!("writer address {line:?}: {e}"));
    Writer { child, addr }
}

/// Runs the bare writer and exits, when this process was started as one.
pub(crate) fn run_if_asked() {
    let Ok(spec) = std::env::var(WRITER_ENV) else {
        return;
    };
    let parts: Vec<u64> = spec
        .split(',')
        .map(|p| p.parse().expect("N,INTERVAL_US,FRAME_BYTES"))
        .collect();
    let [clients, interval_us, frame_bytes] = parts[..] else {
        panic!("{WRITER_ENV} is N,INTERVAL_US,FRAME_BYTES, got {spec:?}");
    };
    write_frames(
        clients as usize,
        Duration::from_micros(interval_us),
        frame_bytes as usize,
    );
    std::process::exit(0);
}

/// One SSE message of about `size` bytes, as an HTTP chunk.
fn chunk(size: usize) -> Vec<u8> {
    let fixed = "id: 1\ndata: {\"p\":\"\"}\n\n".len();
    let message = format!(
        "id: 1\ndata: {{\"p\":\"{}\"}}\n\n",
        "x".repeat(size.saturating_sub(fixed + 8))
    );
    format!("{:X}\r\n{message}\r\n", message.len()).into_bytes()
}

fn write_frames(clients: usize, interval: Duration, frame_bytes: usize) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind the writer");
    println!("{}", listener.local_addr().expect("writer address"));
    std::io::stdout().flush().expect("print the address");
    let mut sockets: Vec<TcpStream> = Vec::with_capacity(clients);
    while sockets.len() < clients {
        let (mut s, _) = listener.accept().expect("accept a reader");
        read_head(&mut s);
        s.set_nodelay(true).expect("nodelay");
        limit_send_buffer(&s);
        s.write_all(
            b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\n\
              transfer-encoding: chunked\r\n\r\n",
        )
        .expect("write the head");
        sockets.push(s);
    }
    let frame = chunk(frame_bytes);
    let start = Instant::now();
    for tick in 1u32.. {
        // Readers that went away are dropped (the bench closes them between rounds).
        sockets.retain_mut(|s| s.write_all(&frame).is_ok());
        if sockets.is_empty() {
            return;
        }
        let next = start + interval * tick;
        std::thread::sleep(next.saturating_duration_since(Instant::now()));
    }
}

fn read_head(s: &mut TcpStream) {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        s.read_exact(&mut byte).expect("read the request head");
        head.push(byte[0]);
    }
}

/// The server's stream sockets ask for an 8 KiB send buffer (`ServeConfig::stream_send_buffer`).
fn limit_send_buffer(s: &TcpStream) {
    use std::os::fd::AsRawFd as _;
    let size: libc::c_int = 8 * 1024;
    // SAFETY: the descriptor is open for this borrow; the value is one c_int with its size.
    let rc = unsafe {
        libc::setsockopt(
            s.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_SNDBUF,
            (&size as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    assert_eq!(rc, 0, "setsockopt SO_SNDBUF");
}
