//! Secrets are never printed (issue 24, finding 4): planted secrets (a Redis password in every
//! URL form the `redis` crate reads, API keys, dashboard credentials, a vendor secret) are looked
//! for in `--help`, everything the real binary prints (at `--log debug`), every answer it gives
//! (errors, `/realtime/config`, `/realtime/stats` with the cluster's last error, `/metrics`) and
//! the `Debug` output and error messages of the library's configuration types.

mod common;

use clap::Parser;
use license_demo::api::Caller;
use license_demo::auth::SecurityConfig;
use license_demo::cli::Cli;
use license_demo::server::ClusterOptions;
use realtime_layer::{redact_redis_url, Cluster, Realtime};
use std::io::{BufReader, Read};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use test_support::redis::RedisServer;

const REDIS_PW: &str = "redis-pw-PLANTED-7Qx";
const WRONG_PW: &str = "wrong-pw-PLANTED-3Kd";
const API_KEY: &str = "api-key-PLANTED-0123456789";
const DASH_PW: &str = "dash-pw-PLANTED-5Xz";
const VENDOR_SECRET: &str = "vendor-secret-PLANTED-0123456789";
const PLANTED: [&str; 5] = [REDIS_PW, WRONG_PW, API_KEY, DASH_PW, VENDOR_SECRET];
/// The distinctive part every planted secret shares (also found percent-encoded or split).
const MARK: &str = "PLANTED";

fn assert_clean(what: &str, text: &str) {
    for secret in PLANTED {
        assert!(!text.contains(secret), "{what} shows {secret:?}:\n{text}");
    }
    assert!(
        !text.contains(MARK),
        "{what} shows part of a secret:\n{text}"
    );
}

/// Every URL form the `redis` crate reads (TCP: `redis`, `rediss`, `valkey`, `valkeys`, with
/// `user:password@`, `:password@`, a password in the user's place, query parameters; Unix:
/// `redis+unix`, `valkey+unix`, `unix` with `?user=&pass=`), plus a wrong password and an
/// unparseable URL. `true`: the server starts with it.
fn url_forms(redis: &RedisServer) -> Vec<(String, bool)> {
    let port = redis.port;
    let sock = redis.socket();
    let sock = sock.display();
    vec![
        (format!("redis://app:{REDIS_PW}@127.0.0.1:{port}"), true),
        (format!("redis://:{REDIS_PW}@127.0.0.1:{port}/0"), true),
        (
            format!("redis://:{REDIS_PW}@127.0.0.1:{port}/0?protocol=resp3"),
            true,
        ),
        (
            format!("valkey://default:{REDIS_PW}@127.0.0.1:{port}"),
            true,
        ),
        (format!("redis+unix://{sock}?pass={REDIS_PW}"), true),
        (
            format!("valkey+unix://{sock}?user=app&pass={REDIS_PW}"),
            true,
        ),
        (format!("unix://{sock}?pass={REDIS_PW}&db=0"), true),
        (format!("redis://:{WRONG_PW}@127.0.0.1:{port}"), true),
        (format!("redis://{REDIS_PW}@127.0.0.1:{port}"), true),
        (format!("rediss://:{REDIS_PW}@127.0.0.1:{port}"), false),
        (format!("valkeys://app:{REDIS_PW}@127.0.0.1:{port}"), false),
        (format!("redis://:{REDIS_PW}@127.0.0.1:notaport"), false),
        (format!("redis:/{REDIS_PW}"), false),
    ]
}

struct Files {
    _dir: tempfile::TempDir,
    keys: String,
    vendors: String,
    db: std::path::PathBuf,
}

fn files() -> Files {
    let dir = tempfile::tempdir().unwrap();
    let keys = dir.path().join("keys.toml");
    std::fs::write(
        &keys,
        format!("[keys.\"{API_KEY}\"]\ntenant = \"acme\"\nusers = [\"*\"]\n"),
    )
    .unwrap();
    let vendors = dir.path().join("vendors.toml");
    std::fs::write(
        &vendors,
        format!("[vendors]\nvendor-42 = \"{VENDOR_SECRET}\"\n"),
    )
    .unwrap();
    let db = dir.path().join("secrets.db");
    Files {
        keys: keys.display().to_string(),
        vendors: vendors.display().to_string(),
        db,
        _dir: dir,
    }
}

fn binary() -> Command {
    Command::new(env!("CARGO_BIN_EXE_license-demo"))
}

/// A started binary whose output is collected in the background.
struct Running {
    child: Child,
    url: Option<String>,
    output: std::thread::JoinHandle<String>,
}

fn spawn(url: &str, f: &Files, db: &str) -> Running {
    let mut child = binary()
        .args(["--bind", "127.0.0.1:0", "--log", "debug", "--db", db])
        .args([
            "--api-keys",
            &f.keys,
            "--vendor-secrets",
            &f.vendors,
            "--require-signature",
        ])
        .args(["--instance-id", "secrets-test"])
        .env("LICENSE_DEMO_REDIS", url)
        .env("LICENSE_DEMO_DASHBOARD_AUTH", format!("ops:{DASH_PW}"))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("binary starts");
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut stderr = child.stderr.take().unwrap();
    // The URL line comes first on stdout, unless the server refuses to start.
    let mut text = String::new();
    let mut url_line = None;
    loop {
        let before = text.len();
        if std::io::BufRead::read_line(&mut stdout, &mut text).unwrap_or(0) == 0 {
            break;
        }
        if let Some(u) = text[before..]
            .split_whitespace()
            .find(|w| w.starts_with("http://"))
        {
            url_line = Some(u.to_string());
            break;
        }
    }
    let output = std::thread::spawn(move || {
        let err = std::thread::spawn(move || {
            let mut e = String::new();
            let _ = stderr.read_to_string(&mut e);
            e
        });
        let _ = stdout.read_to_string(&mut text);
        text + &err.join().unwrap_or_default()
    });
    Running {
        child,
        url: url_line,
        output,
    }
}

/// Requests that make the server talk: with and without credentials, right and wrong.
async fn exercise(base: &str) -> Vec<(String, String)> {
    let client = reqwest::Client::new();
    let mut bodies = Vec::new();
    let ts = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let tool = "ECU Development Suite";
    let signature =
        license_demo::auth::sign(VENDOR_SECRET.as_bytes(), tool, "u", ts, Some(API_KEY));
    let borrow = |key: &str, sig: &str| {
        client
            .post(format!("{base}/licenses/borrow"))
            .bearer_auth(key)
            .header("x-vendor-id", "vendor-42")
            .header("x-timestamp", ts.to_string())
            .header("x-signature", sig)
            .json(&serde_json::json!({"tool": tool, "user": "u"}))
    };
    let wrong_key = format!("{API_KEY}-WRONG");
    let requests = vec![
        ("borrow", borrow(API_KEY, &signature)),
        ("borrow replayed", borrow(API_KEY, &signature)),
        ("borrow, wrong key", borrow(&wrong_key, &signature)),
        ("borrow, bad signature", borrow(API_KEY, &signature[1..])),
        (
            "borrows",
            client.get(format!("{base}/borrows")).bearer_auth(API_KEY),
        ),
        (
            "charges",
            client
                .get(format!("{base}/overage-charges"))
                .bearer_auth(API_KEY),
        ),
        (
            "charges, wrong key",
            client
                .get(format!("{base}/overage-charges"))
                .bearer_auth(&wrong_key),
        ),
        (
            "config",
            client
                .get(format!("{base}/realtime/config"))
                .basic_auth("ops", Some(DASH_PW)),
        ),
        (
            "stats",
            client
                .get(format!("{base}/realtime/stats"))
                .basic_auth("ops", Some(DASH_PW)),
        ),
        (
            "stats, wrong password",
            client
                .get(format!("{base}/realtime/stats"))
                .basic_auth("ops", Some(format!("{DASH_PW}x"))),
        ),
        (
            "metrics",
            client
                .get(format!("{base}/metrics"))
                .basic_auth("ops", Some(DASH_PW)),
        ),
    ];
    for (what, req) in requests {
        let resp = req.send().await.unwrap();
        let head = format!("{} {:?}", resp.status(), resp.headers());
        let body = resp.text().await.unwrap();
        bodies.push((what.to_string(), format!("{head}\n{body}")));
    }
    bodies
}

/// Waits until the cluster is `ok` or has an error to show (a wrong password).
async fn wait_cluster(base: &str) -> String {
    let client = reqwest::Client::new();
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let text = client
            .get(format!("{base}/realtime/stats"))
            .basic_auth("ops", Some(DASH_PW))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        let stats: serde_json::Value = serde_json::from_str(&text).unwrap();
        let c = &stats["cluster"];
        if c["state"] == "ok" || c["last_error"].is_string() {
            return text;
        }
        assert!(Instant::now() < deadline, "cluster never settled: {text}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_binary_never_prints_a_secret() {
    let Some(redis) = RedisServer::start_with("secrets::binary", &["--requirepass", REDIS_PW])
    else {
        return;
    };
    let acl = redis.cli(&[
        "ACL",
        "SETUSER",
        "app",
        "on",
        &format!(">{REDIS_PW}"),
        "~*",
        "&*",
        "+@all",
    ]);
    assert!(acl.contains("OK"), "{acl}");
    let f = files();
    // --help, with every secret in the environment.
    for (url, _) in url_forms(&redis) {
        let help = binary()
            .arg("--help")
            .env("LICENSE_DEMO_REDIS", &url)
            .env("LICENSE_DEMO_DASHBOARD_AUTH", format!("ops:{DASH_PW}"))
            .env("LICENSE_DEMO_DASHBOARD_TOKEN", DASH_PW)
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&help.stdout).into_owned()
            + &String::from_utf8_lossy(&help.stderr);
        assert!(text.contains("LICENSE_DEMO_REDIS"), "{text}");
        assert_clean("--help", &text);
    }
    // Flags that conflict, with secrets as their values: the usage error names flags only.
    let conflict = binary()
        .args([
            "--dashboard-auth",
            &format!("ops:{DASH_PW}"),
            "--dashboard-token",
            DASH_PW,
        ])
        .output()
        .unwrap();
    assert!(!conflict.status.success());
    assert_clean("a usage error", &String::from_utf8_lossy(&conflict.stderr));

    // Every URL form, all at once: what each server prints and answers.
    let forms = url_forms(&redis);
    let running: Vec<(String, bool, Running)> = forms
        .into_iter()
        .enumerate()
        .map(|(i, (url, starts))| {
            let db = f.db.with_extension(format!("{i}.db"));
            let r = spawn(&url, &f, db.to_str().unwrap());
            (url, starts, r)
        })
        .collect();
    for (url, starts, mut r) in running {
        let shown = redact_redis_url(&url);
        let mut seen = String::new();
        match (&r.url, starts) {
            (Some(base), true) => {
                seen += &wait_cluster(base).await;
                for (what, text) in exercise(base).await {
                    assert_clean(&format!("{what} ({shown})"), &text);
                }
                seen += &wait_cluster(base).await;
                let _ = r.child.kill();
            }
            (None, false) => {
                let status = r.child.wait().unwrap();
                assert!(!status.success(), "{shown} started");
            }
            (got, _) => panic!("{shown}: started {got:?}, expected {starts}"),
        }
        let _ = r.child.wait();
        let output = r.output.join().unwrap();
        assert_clean(
            &format!("the output with {shown}"),
            &(output.clone() + &seen),
        );
        if starts {
            // The banner shows where the cluster is, without credentials.
            assert!(
                output.contains("Cluster mode: license-demo on "),
                "{output}"
            );
        } else {
            assert!(output.contains("error"), "{shown}: {output}");
        }
    }
}

#[tokio::test]
async fn debug_output_and_errors_never_show_a_secret() {
    let f = files();
    for url in &offline_forms() {
        assert_clean("redact_redis_url", &redact_redis_url(url));
        let cluster = Cluster::redis(url.clone());
        assert_clean("Cluster's Debug", &format!("{cluster:?}"));
        assert_clean("Cluster::redacted_url", &cluster.redacted_url());
        let options = ClusterOptions {
            redis_url: url.clone(),
            name: "license-demo".into(),
            instance_id: None,
            pool_scope: Default::default(),
        };
        assert_clean("ClusterOptions' Debug", &format!("{options:?}"));
        // Building: an invalid URL is an error that must not quote it.
        if let Err(e) = Realtime::builder()
            .cluster(Cluster::redis(url.clone()))
            .build()
        {
            assert_clean("a build error", &e.to_string());
            assert_clean("a build error's Debug", &format!("{e:?}"));
        }
        let cli = Cli::try_parse_from([
            "license-demo",
            "--redis",
            url.as_str(),
            "--dashboard-auth",
            &format!("ops:{DASH_PW}"),
            "--api-keys",
            &f.keys,
            "--vendor-secrets",
            &f.vendors,
            "--require-signature",
        ])
        .unwrap();
        assert_clean("the parsed command line's Debug", &format!("{cli:?}"));
        let security = SecurityConfig::from_args(&cli.serve).unwrap();
        assert_clean("SecurityConfig's Debug", &format!("{security:?}"));
    }
    let token = Cli::try_parse_from(["license-demo", "--dashboard-token", DASH_PW]).unwrap();
    assert_clean("a token's Debug", &format!("{token:?}"));
    let caller = Caller {
        tenant: None,
        api_key: Some(API_KEY.into()),
    };
    assert_clean("Caller's Debug", &format!("{caller:?}"));
    // A keys file that is not valid TOML: the error points at a byte, never quotes the line.
    let dir = tempfile::tempdir().unwrap();
    let broken = dir.path().join("broken.toml");
    std::fs::write(&broken, format!("[keys.\"{API_KEY}\"]\ntenant = acme\n")).unwrap();
    let cli =
        Cli::try_parse_from(["license-demo", "--api-keys", broken.to_str().unwrap()]).unwrap();
    let e = SecurityConfig::from_args(&cli.serve).unwrap_err();
    assert_clean("a keys file error", &format!("{e} {e:?}"));
}

/// URL forms without a live server (for the in-process checks).
fn offline_forms() -> Vec<String> {
    let encoded = REDIS_PW.replace('-', "%2D");
    vec![
        format!("redis://app:{REDIS_PW}@db:6379"),
        format!("redis://:{REDIS_PW}@db:6379/2"),
        format!("redis://:{encoded}@db:6379"),
        format!("redis://{REDIS_PW}@db"),
        format!("rediss://:{REDIS_PW}@db:6380/#insecure"),
        format!("valkey://app:{REDIS_PW}@db"),
        format!("valkeys://app:{REDIS_PW}@db"),
        format!("redis+unix:///run/redis.sock?pass={REDIS_PW}"),
        format!("valkey+unix:///run/redis.sock?user=app&pass={REDIS_PW}&db=1"),
        format!("unix:///run/redis.sock?pass={REDIS_PW}"),
        format!("unix:///run/redis.sock?{REDIS_PW}"),
        format!("redis://:{REDIS_PW}@db:notaport"),
        format!("redis:/{REDIS_PW}"),
        REDIS_PW.to_string(),
    ]
}
