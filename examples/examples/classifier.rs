//! classifier — observe a service whose handlers know nothing about the layer.
//!
//! A GPU-lease API written without realtime-layer in mind: plain status codes, the user in an
//! `x-user` header, the pool in the path. A classifier maps method + matched route + status to
//! borrow / return / failure; the handlers stay untouched.
//! Run: `cargo run -p realtime-examples --example classifier -- --simulate`
//! then open http://127.0.0.1:3002/realtime

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{delete, post};
use axum::Router;
use realtime_layer::{Event, Realtime, RequestInfo, ResponseInfo};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// GPUs free per pool — the app's own state, nothing realtime-specific.
#[derive(Clone)]
pub struct Pools(Arc<Mutex<HashMap<String, u32>>>);

async fn lease(State(pools): State<Pools>, Path(pool): Path<String>) -> StatusCode {
    match pools.0.lock().unwrap().get_mut(&pool) {
        Some(0) => StatusCode::CONFLICT,
        Some(free) => {
            *free -= 1;
            StatusCode::CREATED
        }
        None => StatusCode::NOT_FOUND,
    }
}

async fn release(State(pools): State<Pools>, Path(pool): Path<String>) -> StatusCode {
    match pools.0.lock().unwrap().get_mut(&pool) {
        Some(free) => {
            *free += 1;
            StatusCode::NO_CONTENT
        }
        None => StatusCode::NOT_FOUND,
    }
}

/// The whole integration: which exchanges are borrows, returns and failures.
pub fn classify(req: &RequestInfo, res: &ResponseInfo<'_>) -> Option<Event> {
    let user = req.headers.get("x-user")?.to_str().ok()?.to_owned();
    // "/pools/{pool}/leases" -> the pool name is the third path segment.
    let pool = req.uri.path().split('/').nth(2)?.to_owned();
    match (req.method.as_str(), req.route(), res.status) {
        ("POST", "/pools/{pool}/leases", StatusCode::CREATED) => Some(Event::borrow(pool, user)),
        ("POST", "/pools/{pool}/leases", StatusCode::CONFLICT) => {
            Some(Event::failure(pool, user, "exhausted"))
        }
        ("DELETE", "/pools/{pool}/leases", StatusCode::NO_CONTENT) => {
            Some(Event::returned(pool, user))
        }
        _ => None,
    }
}

pub fn app(realtime: &Realtime, pools: Pools) -> Router {
    Router::new()
        .route("/pools/{pool}/leases", post(lease))
        .route("/pools/{pool}/leases", delete(release))
        .with_state(pools)
        // `Router::layer` runs the layer inside routing, so the classifier sees `MatchedPath`.
        .layer(realtime.layer().classifier(classify))
        .merge(realtime.routes())
}

pub fn pools() -> Pools {
    let free = [("a100", 4), ("h100", 2), ("l4", 8)].map(|(n, f)| (n.to_owned(), f));
    Pools(Arc::new(Mutex::new(free.into_iter().collect())))
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args = realtime_examples::Args::parse(3002);
    let realtime = Realtime::builder()
        .labels(realtime_layer::Labels::default().resource("GPU pool", "GPU pools"))
        .build()?;
    let app = app(&realtime, pools());
    if args.simulate {
        tokio::spawn(simulate(app.clone()));
    }
    realtime_examples::serve(app, args.bind, &realtime, "/realtime").await?;
    Ok(())
}

async fn simulate(app: Router) {
    let mut rng = realtime_examples::Rng::new();
    loop {
        let pool = rng.pick(&["a100", "h100", "l4"]);
        let method = if rng.below(5) < 3 { "POST" } else { "DELETE" };
        let request = http::Request::builder()
            .method(method)
            .uri(format!("/pools/{pool}/leases"))
            .header("x-user", *rng.pick(&realtime_examples::USERS))
            .body(axum::body::Body::empty())
            .unwrap();
        realtime_examples::send(&app, request).await;
        rng.pause(100, 300).await;
    }
}
