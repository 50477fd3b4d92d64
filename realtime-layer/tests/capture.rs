//! The three capture paths, each through a real `tower::Service` call.

use axum::extract::Extension;
use axum::routing::{delete, post};
use axum::Router;
use http::{Request, Response, StatusCode};
use realtime_layer::{
    Event, EventKind, ManualClock, Realtime, RealtimeEvents, RequestInfo, ResponseInfo,
};
use std::convert::Infallible;
use tower::{service_fn, ServiceBuilder, ServiceExt};

fn realtime() -> Realtime {
    Realtime::builder()
        .clock(ManualClock::new(1_800_000_000_000))
        .build()
        .unwrap()
}

fn kinds(rt: &Realtime) -> Vec<(EventKind, String, String, bool)> {
    let mut events = rt.buffer().recent_events(60, 100, &Default::default());
    events.reverse();
    events
        .into_iter()
        .map(|e| {
            (
                e.kind,
                e.resource.to_string(),
                e.user.to_string(),
                e.overage,
            )
        })
        .collect()
}

#[tokio::test]
async fn response_extensions_are_recorded_and_removed() {
    let rt = realtime();
    async fn borrow() -> (Event, Event, &'static str) {
        (
            Event::borrow("GPU", "ann").overage(true).borrow_id("7"),
            Event::failure("GPU", "bob", "exhausted"),
            "ok",
        )
    }
    let app = Router::new()
        .route("/borrow", post(borrow))
        .layer(rt.layer());
    let response = app
        .oneshot(
            Request::post("/borrow")
                .body(axum::body::Body::empty())
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert!(
        response.extensions().get::<RealtimeEvents>().is_none(),
        "the layer removes the events it recorded"
    );
    assert_eq!(
        kinds(&rt),
        vec![
            (EventKind::Borrow, "GPU".into(), "ann".into(), true),
            (EventKind::Failure, "GPU".into(), "bob".into(), false),
        ]
    );
    let recent = rt.buffer().recent_events(60, 10, &Default::default());
    assert_eq!(recent[1].borrow_id.as_deref(), Some("7"));
    assert_eq!(recent[0].reason.as_deref(), Some("exhausted"));
}

#[tokio::test]
async fn handle_records_from_a_handler_through_an_extension() {
    let rt = realtime();
    async fn give_back(Extension(rt): Extension<Realtime>) -> &'static str {
        rt.record(Event::returned("seat", "cid"));
        "returned"
    }
    let app = Router::new()
        .route("/seat", delete(give_back))
        .layer(Extension(rt.clone()));
    let response = app
        .oneshot(
            Request::delete("/seat")
                .body(axum::body::Body::empty())
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        kinds(&rt),
        vec![(EventKind::Return, "seat".into(), "cid".into(), false)]
    );
}

#[tokio::test]
async fn classifier_maps_route_and_status_on_a_plain_tower_service() {
    let rt = realtime();
    let layer = rt
        .layer()
        .classifier(|req: &RequestInfo, res: &ResponseInfo<'_>| {
            let user = req.headers.get("x-user")?.to_str().ok()?.to_owned();
            match (req.method.as_str(), req.route(), res.status) {
                ("POST", "/leases", StatusCode::CREATED) => Some(Event::borrow("lease", user)),
                ("POST", "/leases", StatusCode::CONFLICT) => {
                    Some(Event::failure("lease", user, "exhausted"))
                }
                _ => None,
            }
        });
    // A plain tower service (not axum): the first call succeeds, later ones conflict.
    let calls = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let inner = service_fn(move |_req: Request<String>| {
        let n = calls.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        async move {
            let status = if n == 0 {
                StatusCode::CREATED
            } else {
                StatusCode::CONFLICT
            };
            Ok::<_, Infallible>(
                Response::builder()
                    .status(status)
                    .body(String::new())
                    .unwrap(),
            )
        }
    });
    let service = ServiceBuilder::new().layer(layer).service(inner);
    for _ in 0..2 {
        let req = Request::post("/leases")
            .header("x-user", "dee")
            .body(String::new())
            .unwrap();
        service.clone().oneshot(req).await.unwrap();
    }
    // No user header: the classifier declines.
    service
        .clone()
        .oneshot(Request::post("/leases").body(String::new()).unwrap())
        .await
        .unwrap();
    assert_eq!(
        kinds(&rt),
        vec![
            (EventKind::Borrow, "lease".into(), "dee".into(), false),
            (EventKind::Failure, "lease".into(), "dee".into(), false),
        ]
    );
}

#[tokio::test]
async fn classifier_sees_axum_matched_path() {
    let rt = realtime();
    let layer = rt
        .layer()
        .classifier(|req: &RequestInfo, res: &ResponseInfo<'_>| {
            (req.matched_path.as_deref() == Some("/spaces/{id}") && res.status.is_success())
                .then(|| Event::returned("parking", "eve"))
        });
    let app = Router::new()
        .route("/spaces/{id}", delete(|| async { "freed" }))
        .layer(layer);
    let response = app
        .oneshot(
            Request::delete("/spaces/42")
                .body(axum::body::Body::empty())
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        kinds(&rt),
        vec![(EventKind::Return, "parking".into(), "eve".into(), false)]
    );
}

#[tokio::test]
async fn two_instances_never_share_events() {
    let a = realtime();
    let b = realtime();
    a.record(Event::borrow("x", "u"));
    assert_eq!(a.buffer().stats().total_events, 1);
    assert_eq!(b.buffer().stats().total_events, 0);
}
