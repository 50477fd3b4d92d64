//! plain-tower — the layer on a hand-written `tower::Service`, served by hyper directly.
//!
//! No axum in the observed service: a parking garage answering `POST /levels/{level}/enter/{plate}`
//! and `POST /levels/{level}/exit/{plate}` is a `service_fn` wrapped with `ServiceBuilder` and the
//! realtime layer; the dashboard routes (an axum `Router`) are served beside it on the same port
//! by a small dispatcher.
//! Run: `cargo run -p realtime-examples --example plain-tower -- --simulate`
//! then open http://127.0.0.1:3003/realtime

use axum::body::Body;
use http::{Request, Response, StatusCode};
use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use hyper::server::conn::http1;
use hyper_util::rt::TokioIo;
use realtime_layer::{Event, Realtime, RealtimeEvents};
use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::{Arc, Mutex};
use tokio::net::TcpListener;
use tower::{service_fn, ServiceBuilder, ServiceExt};

/// Free spaces per level.
#[derive(Clone)]
pub struct Garage(Arc<Mutex<HashMap<String, u32>>>);

impl Garage {
    pub fn new() -> Garage {
        let levels = [("L1", 5), ("L2", 10), ("roof", 3)].map(|(l, n)| (l.to_owned(), n));
        Garage(Arc::new(Mutex::new(levels.into_iter().collect())))
    }

    /// The plain service's logic: a response, with the event it stands for in its extensions.
    fn handle<B>(&self, req: &Request<B>) -> Response<Full<Bytes>> {
        let parts: Vec<&str> = req.uri().path().split('/').collect();
        let (level, action, plate) = match parts.as_slice() {
            ["", "levels", level, action, plate] => (*level, *action, *plate),
            _ => return reply(StatusCode::NOT_FOUND, "try POST /levels/L1/enter/AB-123\n"),
        };
        let mut levels = self.0.lock().unwrap();
        let Some(free) = levels.get_mut(level) else {
            return reply(StatusCode::NOT_FOUND, "no such level\n");
        };
        let (mut response, event) = match action {
            "enter" if *free == 0 => (
                reply(StatusCode::CONFLICT, "level full\n"),
                Event::failure(level.to_owned(), plate.to_owned(), "full"),
            ),
            "enter" => {
                *free -= 1;
                (
                    reply(StatusCode::OK, "welcome\n"),
                    Event::borrow(level.to_owned(), plate.to_owned()),
                )
            }
            "exit" => {
                *free += 1;
                (
                    reply(StatusCode::OK, "goodbye\n"),
                    Event::returned(level.to_owned(), plate.to_owned()),
                )
            }
            _ => return reply(StatusCode::NOT_FOUND, "enter or exit\n"),
        };
        RealtimeEvents::push_into(response.extensions_mut(), event);
        response
    }
}

impl Default for Garage {
    fn default() -> Self {
        Garage::new()
    }
}

fn reply(status: StatusCode, text: &'static str) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from_static(text.as_bytes())));
    *response.status_mut() = status;
    response
}

/// Accepts connections forever: `/realtime*` goes to the dashboard router, the rest to the
/// garage service wrapped in the realtime layer.
pub async fn run(listener: TcpListener, realtime: Realtime, garage: Garage) -> std::io::Result<()> {
    let observed = ServiceBuilder::new()
        .layer(realtime.layer())
        .service(service_fn(move |req: Request<Incoming>| {
            let garage = garage.clone();
            async move { Ok::<_, Infallible>(garage.handle(&req)) }
        }));
    let dashboard: axum::Router = realtime.routes();
    loop {
        let (stream, _) = listener.accept().await?;
        let (observed, dashboard) = (observed.clone(), dashboard.clone());
        let dispatch = hyper::service::service_fn(move |req: Request<Incoming>| {
            let (observed, dashboard) = (observed.clone(), dashboard.clone());
            async move {
                if req.uri().path().starts_with("/realtime") {
                    dashboard.oneshot(req).await
                } else {
                    observed.oneshot(req).await.map(|res| res.map(Body::new))
                }
            }
        });
        tokio::spawn(async move {
            let _ = http1::Builder::new()
                .serve_connection(TokioIo::new(stream), dispatch)
                .await;
        });
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args = realtime_examples::Args::parse(3003);
    let realtime = Realtime::builder()
        .labels(
            realtime_layer::Labels::default()
                .title("Garage")
                .resource("Level", "Levels")
                .user("Plate"),
        )
        .build()?;
    let listener = TcpListener::bind(args.bind).await?;
    let addr = listener.local_addr()?;
    println!("Dashboard: http://{addr}/realtime");
    if args.simulate {
        tokio::spawn(simulate(addr));
    }
    run(listener, realtime, Garage::new()).await?;
    Ok(())
}

/// Cars come and go over real TCP (raw HTTP/1.1, no client library needed).
async fn simulate(addr: std::net::SocketAddr) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut rng = realtime_examples::Rng::new();
    loop {
        let level = rng.pick(&["L1", "L2", "roof"]);
        let plate = format!("AB-{}", 100 + rng.below(20));
        let action = if rng.below(2) == 0 { "enter" } else { "exit" };
        if let Ok(mut conn) = tokio::net::TcpStream::connect(addr).await {
            let request = format!("POST /levels/{level}/{action}/{plate} HTTP/1.1\r\nhost: x\r\ncontent-length: 0\r\nconnection: close\r\n\r\n");
            let _ = conn.write_all(request.as_bytes()).await;
            let _ = conn.read_to_end(&mut Vec::new()).await;
        }
        rng.pause(150, 400).await;
    }
}
