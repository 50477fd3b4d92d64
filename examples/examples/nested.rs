//! nested — the dashboard under `/admin/realtime`, behind a bearer token.
//!
//! `Router::nest` mounts the realtime routes under a prefix (the page uses relative URLs, so it
//! works there unchanged) and a middleware keeps everything under `/admin` private. The public
//! API stays open. Browsers cannot add headers to a page load, so the middleware also accepts
//! the token once as `?token=` and turns it into an HttpOnly cookie.
//! Run: `ADMIN_TOKEN=s3cret cargo run -p realtime-examples --example nested -- --simulate`
//! then open http://127.0.0.1:3006/admin/realtime?token=s3cret

use axum::extract::{Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use realtime_layer::{Event, Realtime};

/// Lets a request through when it carries the token as `Authorization: Bearer`, as the
/// `admin_token` cookie, or as `?token=` (which then sets the cookie).
async fn require_token(State(token): State<String>, request: Request, next: Next) -> Response {
    let bearer = format!("Bearer {token}");
    let cookie = format!("admin_token={token}");
    let headers = request.headers();
    let by_header = headers
        .get(header::AUTHORIZATION)
        .is_some_and(|v| v.as_bytes() == bearer.as_bytes());
    let by_cookie = headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .any(|v| v.split(';').any(|c| c.trim() == cookie));
    let by_query = request
        .uri()
        .query()
        .is_some_and(|q| q.split('&').any(|p| p == format!("token={token}")));
    if !(by_header || by_cookie || by_query) {
        let body = Json(
            serde_json::json!({"error": "unauthorized", "detail": "the dashboard needs the admin token"}),
        );
        return (
            StatusCode::UNAUTHORIZED,
            [(header::WWW_AUTHENTICATE, "Bearer")],
            body,
        )
            .into_response();
    }
    let mut response = next.run(request).await;
    if by_query {
        let set = format!("{cookie}; Path=/admin; HttpOnly; SameSite=Strict");
        if let Ok(value) = HeaderValue::from_str(&set) {
            response.headers_mut().append(header::SET_COOKIE, value);
        }
    }
    response
}

async fn checkout() -> (Event, &'static str) {
    (Event::borrow("api-quota", "partner-7"), "ok\n")
}

pub fn app(realtime: &Realtime, token: String) -> Router {
    let admin = Router::new()
        .merge(realtime.routes()) // /realtime, /realtime/stats, ... -> /admin/realtime/...
        .merge(realtime.metrics_routes())
        .layer(middleware::from_fn_with_state(token, require_token));
    Router::new()
        .route("/checkout", post(checkout))
        .layer(realtime.layer())
        .nest("/admin", admin)
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args = realtime_examples::Args::parse(3006);
    let token = std::env::var("ADMIN_TOKEN").unwrap_or_else(|_| "change-me".to_owned());
    let realtime = Realtime::builder().build()?;
    let app = app(&realtime, token.clone());
    if args.simulate {
        tokio::spawn(simulate(app.clone()));
    }
    println!("Token: {token} (open the URL below with ?token=...)");
    realtime_examples::serve(app, args.bind, &realtime, "/admin/realtime").await?;
    Ok(())
}

async fn simulate(app: Router) {
    let mut rng = realtime_examples::Rng::new();
    loop {
        let request = http::Request::post("/checkout")
            .body(axum::body::Body::empty())
            .unwrap();
        realtime_examples::send(&app, request).await;
        rng.pause(200, 600).await;
    }
}
