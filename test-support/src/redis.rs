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

/// A running `redis-server` (killed when dropped). It also listens on a Unix socket
/// ([`RedisServer::socket`]).
pub struct RedisServer {
    binary: PathBuf,
    child: Option<Child>,
    pub port: u16,
    pub url: String,
    dir: tempfile::TempDir,
    /// Extra `redis-server` arguments ([`RedisServer::start_with`]).
    extra: Vec<String>,
    /// The default user's password, when `--requirepass` is among the extra arguments.
    password: Option<String>,
}

impl RedisServer {
    /// A fresh server, or `None` (after a loud SKIPPED line) when Redis is not installed.
    pub fn start(test: &str) -> Option<RedisServer> {
        Self::start_with(test, &[])
    }

    /// [`RedisServer::start`] with extra `redis-server` arguments (`--requirepass PW`, ...).
    pub fn start_with(test: &str, extra: &[&str]) -> Option<RedisServer> {
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
            extra: extra.iter().map(|a| a.to_string()).collect(),
            password: extra
                .windows(2)
                .find(|w| w[0] == "--requirepass")
                .map(|w| w[1].to_string()),
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
            .arg("--unixsocket")
            .arg(self.socket())
            .args(["--unixsocketperm", "700"])
            .args(&self.extra)
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

    /// The path of its Unix socket.
    pub fn socket(&self) -> PathBuf {
        self.dir.path().join("redis.sock")
    }

    /// Runs `redis-cli` against it (with its password, if any); returns stdout.
    pub fn cli(&self, args: &[&str]) -> String {
        let mut cmd = Command::new("redis-cli");
        cmd.args(["-h", "127.0.0.1", "-p"])
            .arg(self.port.to_string());
        if let Some(password) = &self.password {
            cmd.args(["--no-auth-warning", "-a", password]);
        }
        let out = cmd.args(args).output().expect("redis-cli runs");
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Sends one command over RESP (after `AUTH` with its password, if any) and returns the raw
    /// reply: for arguments too large for a command line (a 13 MB `XADD`).
    pub fn command(&self, args: &[&[u8]]) -> Vec<u8> {
        use std::io::{Read, Write};
        let mut conn = TcpStream::connect(("127.0.0.1", self.port)).expect("redis connects");
        conn.set_read_timeout(Some(Duration::from_secs(30)))
            .unwrap();
        let mut out = Vec::new();
        let mut push = |args: &[&[u8]]| {
            out.extend_from_slice(format!("*{}\r\n", args.len()).as_bytes());
            for a in args {
                out.extend_from_slice(format!("${}\r\n", a.len()).as_bytes());
                out.extend_from_slice(a);
                out.extend_from_slice(b"\r\n");
            }
        };
        if let Some(password) = &self.password {
            push(&[b"AUTH", password.as_bytes()]);
        }
        push(args);
        conn.write_all(&out).expect("command sent");
        let mut conn = std::io::BufReader::new(conn);
        let mut reply = Vec::new();
        // One reply per command sent: a line, plus the body of a bulk string.
        for _ in 0..1 + usize::from(self.password.is_some()) {
            reply.clear();
            std::io::BufRead::read_until(&mut conn, b'\n', &mut reply).expect("reply");
            if let Some(len) = reply
                .strip_prefix(b"$")
                .and_then(|l| std::str::from_utf8(l).ok())
                .and_then(|l| l.trim().parse::<usize>().ok())
            {
                let mut body = vec![0; len + 2];
                conn.read_exact(&mut body).expect("bulk reply");
                reply.extend_from_slice(&body);
            }
        }
        reply
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
