//! The real `license-demo` binary on a free port: started with arguments and environment, its
//! output read in the background (a chatty log never fills the pipe), stopped by pid.

use std::io::{BufReader, Read};
use std::process::{Child, Command, Stdio};

/// A running binary; killed (SIGKILL) when dropped.
pub struct Binary {
    child: Option<Child>,
    /// Its base URL, e.g. `http://127.0.0.1:40123`.
    pub url: String,
    output: Option<std::thread::JoinHandle<String>>,
}

/// Starts the binary on 127.0.0.1:0 with `args` and `env` and waits for its URL.
pub fn spawn(args: &[&str], env: &[(&str, &str)]) -> Binary {
    let mut child = Command::new(env!("CARGO_BIN_EXE_license-demo"))
        .args(["--bind", "127.0.0.1:0"])
        .args(args)
        .envs(env.iter().copied())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("binary starts");
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    let url = super::read_url(&mut stdout, &mut line);
    let mut stderr = child.stderr.take().unwrap();
    let output = std::thread::spawn(move || {
        let err = std::thread::spawn(move || {
            let mut text = String::new();
            let _ = stderr.read_to_string(&mut text);
            text
        });
        let mut text = line;
        let _ = stdout.read_to_string(&mut text);
        text + &err.join().unwrap_or_default()
    });
    Binary {
        child: Some(child),
        url,
        output: Some(output),
    }
}

impl Binary {
    /// SIGKILL (no shutdown code runs); answers everything the process printed.
    pub fn kill(mut self) -> String {
        self.stop();
        self.output
            .take()
            .map(|o| o.join().unwrap_or_default())
            .unwrap_or_default()
    }

    fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for Binary {
    fn drop(&mut self) {
        self.stop();
    }
}
