//! The live stream's per-client filter limit behind a reverse proxy (issue 24, finding 6): with
//! the proxy listed in `RealtimeBuilder::trusted_proxies`, each client it forwards for gets its own
//! 8 filters; forwarding headers from anyone else are ignored, so they cannot buy more.

use realtime_layer::serve::{self, ServeConfig};
use realtime_layer::Realtime;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};

async fn server(trusted: &[&str]) -> (Realtime, SocketAddr) {
    let realtime = Realtime::builder()
        .trusted_proxies(trusted.iter().copied())
        .build()
        .unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let app = realtime.routes();
    let token = realtime.shutdown_token();
    tokio::spawn(serve::serve(
        listener,
        app,
        ServeConfig::default(),
        token.cancelled_owned(),
    ));
    (realtime, addr)
}

fn client_from(local: Ipv4Addr) -> reqwest::Client {
    reqwest::Client::builder()
        .local_address(IpAddr::V4(local))
        .build()
        .unwrap()
}

/// Opens a filtered stream (`user=NAME`) as `forwarded_for` says; the status, and the response
/// kept open while it streams.
async fn open(
    client: &reqwest::Client,
    addr: SocketAddr,
    user: &str,
    forwarded_for: &str,
) -> (u16, reqwest::Response) {
    let resp = client
        .get(format!("http://{addr}/realtime/stream?user={user}"))
        .header("x-forwarded-for", forwarded_for)
        .send()
        .await
        .unwrap();
    (resp.status().as_u16(), resp)
}

#[tokio::test]
async fn each_client_behind_a_trusted_proxy_gets_its_own_filters() {
    let (realtime, addr) = server(&["127.0.0.1"]).await;
    let proxy = client_from(Ipv4Addr::LOCALHOST);
    let mut held = Vec::new();
    for i in 0..8 {
        let (status, resp) = open(&proxy, addr, &format!("a{i}"), "203.0.113.1").await;
        assert_eq!(status, 200);
        held.push(resp);
    }
    let (status, _) = open(&proxy, addr, "a8", "203.0.113.1").await;
    assert_eq!(status, 503, "a 9th filter of one client");
    // Another client of the same proxy: its own share (before, the proxy's 8 were everyone's).
    let (status, resp) = open(&proxy, addr, "b0", "198.51.100.7, 203.0.113.2").await;
    assert_eq!(status, 200);
    held.push(resp);
    // `Forwarded` counts too.
    let resp = proxy
        .get(format!("http://{addr}/realtime/stream?user=c0"))
        .header("forwarded", "for=\"[2001:db8::1]:4711\"")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    held.push(resp);
    // A peer that is not a trusted proxy cannot claim to be someone else: its headers are
    // ignored and it is one client whatever it says.
    let stranger = client_from(Ipv4Addr::new(127, 0, 0, 2));
    for i in 0..8 {
        let (status, resp) = open(&stranger, addr, &format!("s{i}"), &format!("192.0.2.{i}")).await;
        assert_eq!(status, 200);
        held.push(resp);
    }
    let (status, _) = open(&stranger, addr, "s8", "192.0.2.99").await;
    assert_eq!(
        status, 503,
        "forwarding headers from an untrusted peer were believed"
    );
    drop(held);
    realtime.shutdown();
}

#[tokio::test]
async fn without_trusted_proxies_forwarding_headers_are_ignored() {
    let (realtime, addr) = server(&[]).await;
    let proxy = client_from(Ipv4Addr::LOCALHOST);
    let mut held = Vec::new();
    for i in 0..8 {
        let (status, resp) = open(&proxy, addr, &format!("a{i}"), &format!("203.0.113.{i}")).await;
        assert_eq!(status, 200);
        held.push(resp);
    }
    let (status, _) = open(&proxy, addr, "a8", "198.51.100.1").await;
    assert_eq!(status, 503);
    drop(held);
    realtime.shutdown();
}

#[test]
fn an_invalid_proxy_is_a_configuration_error() {
    let err = Realtime::builder()
        .trusted_proxies(["10.0.0.0/8", "proxy.internal"])
        .build()
        .unwrap_err();
    assert!(err.to_string().contains("proxy.internal"), "{err}");
}
