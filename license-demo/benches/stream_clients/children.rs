//! The two child processes of the bench (the server and the load generator), started from the
//! `license-demo` binary and killed when dropped.

use std::io::{BufRead, BufReader, Read};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// The server and the load generator: killed (by pid, SIGKILL) when dropped, also on panic.
#[derive(Default)]
pub(crate) struct Children(Vec<(&'static str, Child)>);

impl Children {
    /// Names of the children that have exited, with their status.
    pub(crate) fn exited(&mut self) -> Vec<String> {
        self.0
            .iter_mut()
            .filter_map(|(name, child)| match child.try_wait() {
                Ok(Some(status)) => Some(format!("{name} ({status})")),
                _ => None,
            })
            .collect()
    }
}

impl Drop for Children {
    fn drop(&mut self) {
        for (name, child) in self.0.iter_mut().rev() {
            if let Err(e) = child.kill() {
                eprintln!("cannot kill the {name} (pid {}): {e}", child.id());
            }
            let _ = child.wait();
        }
    }
}

/// Forwards a child's output lines: to `first` while its receiver lives, then to stderr with a
/// prefix (the first 50 lines; the rest is read and dropped so the child never blocks on a full
/// pipe).
fn forward_lines(name: &'static str, out: impl Read + Send + 'static) -> mpsc::Receiver<String> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut echoed = 0;
        for line in BufReader::new(out).lines() {
            let Ok(line) = line else { return };
            if let Err(mpsc::SendError(line)) = tx.send(line) {
                if echoed < 50 {
                    eprintln!("[{name}] {line}");
                    echoed += 1;
                }
            }
        }
    });
    rx
}

/// Starts the server on a free loopback port; returns its base URL.
pub(crate) fn start_server(
    children: &mut Children,
    db: &Path,
    push_delay_ms: u64,
) -> (String, u32) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_license-demo"))
        .arg("--bind")
        .arg("127.0.0.1:0")
        .arg("--db")
        .arg(db)
        .args(["--log", "warn"])
        .args(["--push-delay-ms", &push_delay_ms.to_string()])
        // Well above the largest round (the default, 1,000, would refuse the 1,001st client).
        .args(["--max-streams", "100000"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start the license-demo server");
    let pid = child.id();
    let stdout = child.stdout.take().expect("the server's stdout is piped");
    children.0.push(("server", child));
    let lines = forward_lines("server", stdout);
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut seen = Vec::new();
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let line = lines
            .recv_timeout(left)
            .unwrap_or_else(|e| panic!("no URL from the server ({e}); it printed {seen:?}"));
        if let Some(url) = line.split_whitespace().find(|w| w.starts_with("http://")) {
            return (url.trim_end_matches('/').to_string(), pid);
        }
        seen.push(line);
    }
}

/// Starts `license-demo stress` against `url` at 10 cycles/s, for far longer than the bench.
pub(crate) fn start_load(children: &mut Children, url: &str) -> u32 {
    let mut child = Command::new(env!("CARGO_BIN_EXE_license-demo"))
        .args(["stress", "--target", url])
        .args(["--workers", "4", "--rate", "10", "--ops", "100000"])
        .arg("--no-progress")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start license-demo stress");
    let pid = child.id();
    let stderr = child.stderr.take().expect("the load's stderr is piped");
    children.0.push(("load generator", child));
    drop(forward_lines("stress", stderr));
    pid
}
