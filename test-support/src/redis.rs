//! A real `redis-server` for tests: its own port on 127.0.0.1, its own temp dir, stopped by pid.
//!
//! Without `redis-server` installed the tests print a loud SKIPPED line, unless `REQUIRE_REDIS=1`
//! (CI sets it), which turns a missing server into a failure.

use crate::free_port;
use crate::require::{find_binary, or_skip};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A running `redis-server` (killed when dropped).
pub struct RedisServer {
    binary: PathBuf,
    child: Option<Child>,
    pub port: u16,
    pub url: String,
    dir: tempfile::TempDir,
}

impl RedisServer {
    /// A fresh server, or `None` (after a loud SKIPPED line) when Redis is not installed.
    pub fn start(test: &str) -> Option<RedisServer> {
        let binary = or_skip(
            find_binary("REDIS_SERVER", &["redis-server"]),
            "REQUIRE_REDIS",
            test,
            "redis-server is not installed (apt-get install redis-server)",
        )?;
        let port = free_port();
        let mut server = RedisServer {
            binary,
            child: None,
            port,
            url: format!("redis://127.0.0.1:{port}"),
            dir: tempfile::tempdir().expect("temp dir"),
        };
        server.launch();
        Some(server)
    }

    fn launch(&mut self) {
        let child = Command::new(&self.binary)
            .args(["--bind", "127.0.0.1", "--port"])
            .arg(self.port.to_string())
            .args(["--save", "", "--appendonly", "no", "--dir"])
            .arg(self.dir.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server starts");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        while TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(Instant::now() < deadline, "redis-server did not listen");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Kills the server (SIGKILL, by pid) and waits for it.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts it again on the same port (empty: no persistence).
    pub fn restart(&mut self) {
        self.kill();
        self.launch();
    }

    /// Runs `redis-cli` against it; returns stdout.
    pub fn cli(&self, args: &[&str]) -> String {
        let out = Command::new("redis-cli")
            .args(["-h", "127.0.0.1", "-p"])
            .arg(self.port.to_string())
            .args(args)
            .output()
            .expect("redis-cli runs");
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Bytes of memory the server uses (`INFO memory` → `used_memory`).
    pub fn used_memory(&self) -> u64 {
        self.cli(&["INFO", "memory"])
            .lines()
            .find_map(|l| l.strip_prefix("used_memory:"))
            .and_then(|v| v.trim().parse().ok())
            .expect("used_memory in INFO")
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.kill();
    }
}
