//! Headless Chromium for tests: finding chromedriver and Chromium (a loud SKIPPED, or a failure
//! with `REQUIRE_BROWSER=1`), starting a session with the flags this machine needs, and a
//! minimal W3C WebDriver client over `reqwest` (just what the dashboard tests need). Avoids
//! pulling a WebDriver crate and its TLS stack into the build.

use crate::require::{find_binary, or_skip};
use serde_json::{json, Value};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const ELEMENT_KEY: &str = "element-6066-11e4-a52e-4f735466cecf";

/// chromedriver and Chromium, found on `PATH` (or through `CHROMEDRIVER` / `CHROME`).
#[derive(Debug, Clone)]
pub struct Binaries {
    pub chromedriver: PathBuf,
    pub chrome: PathBuf,
}

/// Both binaries, or `None` after a loud SKIPPED naming `test`; a failure instead when
/// `REQUIRE_BROWSER` is set.
pub fn binaries(test: &str) -> Option<Binaries> {
    let chromedriver = find_binary("CHROMEDRIVER", &["chromedriver", "chromium-driver"]);
    let chrome = find_binary(
        "CHROME",
        &[
            "chromium",
            "chromium-browser",
            "google-chrome",
            "google-chrome-stable",
        ],
    );
    let found = match (chromedriver, chrome) {
        (Some(chromedriver), Some(chrome)) => Some(Binaries {
            chromedriver,
            chrome,
        }),
        _ => None,
    };
    or_skip(
        found,
        "REQUIRE_BROWSER",
        test,
        "chromium and/or chromedriver not found on PATH (apt-get install chromium chromium-driver)",
    )
}

/// Fails the test when Chromium's console `log` (from [`Session::browser_log`]) holds an error
/// or a Content-Security-Policy report.
pub fn assert_clean_log(log: &[Value]) {
    let bad: Vec<String> = log
        .iter()
        .filter(|entry| {
            let level = entry["level"].as_str().unwrap_or("");
            let msg = entry["message"].as_str().unwrap_or("");
            level == "SEVERE"
                || msg.contains("Content Security Policy")
                || msg.contains("Content-Security-Policy")
        })
        .map(|entry| format!("{} {}", entry["level"], entry["message"]))
        .collect();
    assert!(
        bad.is_empty(),
        "browser console errors:\n{}",
        bad.join("\n")
    );
}

/// A browser profile directory, removed when dropped.
#[derive(Debug)]
pub struct Profile(pub PathBuf);

impl Drop for Profile {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// chromedriver and a headless Chromium session: a `width`×`height` window, scale factor 1, the
/// browser console log kept (for the zero-errors checks), a fresh profile named by `tag`, and the
/// flags that keep Chromium off the network on a closed machine. Drop the session (or `quit` it)
/// before the driver; the profile goes last.
pub async fn start_session(
    bins: &Binaries,
    tag: &str,
    width: u32,
    height: u32,
) -> (Driver, Session, Profile) {
    let driver = Driver::start(&bins.chromedriver)
        .await
        .expect("chromedriver");
    let profile = std::env::temp_dir().join(format!("rt-browser-{}-{tag}", std::process::id()));
    let _ = std::fs::remove_dir_all(&profile);
    let capabilities = json!({
        "browserName": "chrome",
        "goog:loggingPrefs": { "browser": "ALL" },
        "goog:chromeOptions": {
            "binary": bins.chrome.to_string_lossy(),
            "args": [
                "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--disable-quic", "--no-first-run", "--disable-background-networking",
                "--disable-component-update", "--disable-sync", "--hide-scrollbars",
                "--force-device-scale-factor=1", format!("--window-size={width},{height}"),
                format!("--user-data-dir={}", profile.display()),
            ],
        },
    });
    let session = Session::new(&driver, capabilities)
        .await
        .expect("browser session");
    (driver, session, Profile(profile))
}

/// A running chromedriver, killed on drop.
pub struct Driver {
    child: Child,
    pub url: String,
}

impl Driver {
    pub async fn start(binary: &Path) -> Result<Driver, String> {
        let port = {
            let l = TcpListener::bind("127.0.0.1:0").map_err(|e| e.to_string())?;
            l.local_addr().map_err(|e| e.to_string())?.port()
        };
        let child = Command::new(binary)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| format!("cannot start {}: {e}", binary.display()))?;
        let driver = Driver {
            child,
            url: format!("http://127.0.0.1:{port}"),
        };
        let http = reqwest::Client::new();
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Ok(r) = http.get(format!("{}/status", driver.url)).send().await {
                if r.status().is_success() {
                    return Ok(driver);
                }
            }
            if Instant::now() > deadline {
                return Err("chromedriver did not become ready within 20 s".into());
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        // Ask chromedriver to close its browsers first: killing it outright orphans Chromium.
        let addr = self.url.trim_start_matches("http://").to_owned();
        if let Ok(mut s) = std::net::TcpStream::connect(&addr) {
            use std::io::{Read, Write};
            let _ = s.set_read_timeout(Some(Duration::from_secs(5)));
            let _ = write!(
                s,
                "GET /shutdown HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
            );
            let _ = s.read_to_end(&mut Vec::new());
        }
        for _ in 0..50 {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One WebDriver session.
pub struct Session {
    http: reqwest::Client,
    base: String,
}

impl Session {
    pub async fn new(driver: &Driver, capabilities: Value) -> Result<Session, String> {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(60))
            .build()
            .map_err(|e| e.to_string())?;
        let value = call(
            &http,
            reqwest::Method::POST,
            &format!("{}/session", driver.url),
            Some(json!({ "capabilities": { "alwaysMatch": capabilities } })),
        )
        .await?;
        let id = value["sessionId"]
            .as_str()
            .ok_or_else(|| format!("no sessionId in {value}"))?;
        Ok(Session {
            http,
            base: format!("{}/session/{id}", driver.url),
        })
    }

    async fn cmd(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> Result<Value, String> {
        call(&self.http, method, &format!("{}{path}", self.base), body).await
    }

    pub async fn goto(&self, url: &str) -> Result<(), String> {
        self.cmd(reqwest::Method::POST, "/url", Some(json!({ "url": url })))
            .await
            .map(|_| ())
    }

    /// Runs `script` (a function body; `arguments` holds `args`) and returns its result.
    pub async fn execute(&self, script: &str, args: Vec<Value>) -> Result<Value, String> {
        self.cmd(
            reqwest::Method::POST,
            "/execute/sync",
            Some(json!({ "script": script, "args": args })),
        )
        .await
    }

    pub async fn find(&self, css: &str) -> Result<String, String> {
        let v = self
            .cmd(
                reqwest::Method::POST,
                "/element",
                Some(json!({ "using": "css selector", "value": css })),
            )
            .await?;
        v[ELEMENT_KEY]
            .as_str()
            .map(str::to_owned)
            .ok_or_else(|| format!("no element for {css}: {v}"))
    }

    pub async fn click(&self, element: &str) -> Result<(), String> {
        self.cmd(
            reqwest::Method::POST,
            &format!("/element/{element}/click"),
            Some(json!({})),
        )
        .await
        .map(|_| ())
    }

    /// PNG bytes of the viewport.
    pub async fn screenshot(&self) -> Result<Vec<u8>, String> {
        let v = self.cmd(reqwest::Method::GET, "/screenshot", None).await?;
        let b64 = v.as_str().ok_or("screenshot is not a string")?;
        base64_decode(b64)
    }

    /// Chrome's browser log (console messages, CSP violations, failed loads) since the last call.
    pub async fn browser_log(&self) -> Result<Vec<Value>, String> {
        let v = self
            .cmd(
                reqwest::Method::POST,
                "/se/log",
                Some(json!({ "type": "browser" })),
            )
            .await?;
        Ok(v.as_array().cloned().unwrap_or_default())
    }

    /// A Chrome DevTools Protocol command through chromedriver.
    pub async fn cdp(&self, cmd: &str, params: Value) -> Result<Value, String> {
        self.cmd(
            reqwest::Method::POST,
            "/goog/cdp/execute",
            Some(json!({ "cmd": cmd, "params": params })),
        )
        .await
    }

    /// The current window's handle.
    pub async fn window(&self) -> Result<String, String> {
        let v = self.cmd(reqwest::Method::GET, "/window", None).await?;
        v.as_str()
            .map(str::to_owned)
            .ok_or_else(|| format!("no window handle in {v}"))
    }

    /// Opens a new tab and switches to it: the previous tab goes to the background, and its page
    /// sees `document.visibilityState == "hidden"` (Page Visibility), as in a desktop browser.
    pub async fn open_tab(&self) -> Result<String, String> {
        let v = self
            .cmd(
                reqwest::Method::POST,
                "/window/new",
                Some(json!({ "type": "tab" })),
            )
            .await?;
        let handle = v["handle"]
            .as_str()
            .ok_or_else(|| format!("no handle in {v}"))?
            .to_owned();
        self.switch_to(&handle).await?;
        Ok(handle)
    }

    /// Switches to the window `handle` (a background tab comes to the front: visible again).
    pub async fn switch_to(&self, handle: &str) -> Result<(), String> {
        self.cmd(
            reqwest::Method::POST,
            "/window",
            Some(json!({ "handle": handle })),
        )
        .await
        .map(|_| ())
    }

    /// Closes the current window (tab).
    pub async fn close_window(&self) -> Result<(), String> {
        self.cmd(reqwest::Method::DELETE, "/window", None)
            .await
            .map(|_| ())
    }

    pub async fn quit(self) {
        let _ = self.cmd(reqwest::Method::DELETE, "", None).await;
    }

    /// Polls `script` until it returns a truthy value; returns that value.
    pub async fn wait_for(&self, what: &str, script: &str, timeout: Duration) -> Value {
        let deadline = Instant::now() + timeout;
        loop {
            let last = match self.execute(script, vec![]).await {
                Ok(v) if truthy(&v) => return v,
                Ok(v) => v,
                Err(e) => Value::String(e),
            };
            if Instant::now() > deadline {
                panic!("timed out after {timeout:?} waiting for {what}; last result: {last}");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

fn truthy(v: &Value) -> bool {
    match v {
        Value::Null => false,
        Value::Bool(b) => *b,
        Value::Number(n) => n.as_f64().is_some_and(|f| f != 0.0),
        Value::String(s) => !s.is_empty(),
        Value::Array(_) | Value::Object(_) => true,
    }
}

async fn call(
    http: &reqwest::Client,
    method: reqwest::Method,
    url: &str,
    body: Option<Value>,
) -> Result<Value, String> {
    let mut req = http.request(method, url);
    if let Some(body) = body {
        req = req.json(&body);
    }
    let resp = req.send().await.map_err(|e| format!("{url}: {e}"))?;
    let status = resp.status();
    let v: Value = resp.json().await.map_err(|e| format!("{url}: {e}"))?;
    let value = v.get("value").cloned().unwrap_or(Value::Null);
    if !status.is_success() || value.get("error").is_some() {
        return Err(format!("{url}: {status}: {value}"));
    }
    Ok(value)
}

fn base64_decode(s: &str) -> Result<Vec<u8>, String> {
    fn val(c: u8) -> Option<u32> {
        Some(match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            _ => return None,
        } as u32)
    }
    let bytes: Vec<u8> = s
        .bytes()
        .filter(|c| !c.is_ascii_whitespace() && *c != b'=')
        .collect();
    let mut out = Vec::with_capacity(bytes.len() * 3 / 4);
    for chunk in bytes.chunks(4) {
        let mut acc = 0u32;
        for (i, &c) in chunk.iter().enumerate() {
            acc |= val(c).ok_or("invalid base64")? << (18 - 6 * i);
        }
        let n = chunk.len();
        if n < 2 {
            return Err("truncated base64".into());
        }
        out.push((acc >> 16) as u8);
        if n > 2 {
            out.push((acc >> 8) as u8);
        }
        if n > 3 {
            out.push(acc as u8);
        }
    }
    Ok(out)
}
