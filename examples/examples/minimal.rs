//! minimal — the "hello world": one layer, one merge, and a live dashboard.
//!
//! A seat-booking service whose handlers return an `Event` next to their body.
//! Run: `cargo run -p realtime-examples --example minimal -- --simulate`
//! then open http://127.0.0.1:3000/realtime

use axum::{extract::Path, routing::post, Router};
use realtime_layer::{Event, Realtime, RealtimeService};

async fn book(Path(seat): Path<String>) -> (Event, String) {
    (
        Event::borrow(seat.clone(), "guest"),
        format!("seat {seat} booked\n"),
    )
}

async fn release(Path(seat): Path<String>) -> (Event, String) {
    (
        Event::returned(seat.clone(), "guest"),
        format!("seat {seat} released\n"),
    )
}

pub fn app(realtime: &Realtime) -> RealtimeService<Router> {
    let router = Router::new()
        .route("/seats/{seat}", post(book).delete(release))
        .merge(realtime.routes()); // GET /realtime (dashboard), /realtime/stats, /realtime/stream...
                                   // The layer once around the whole router (the cheapest place): records the events handlers
                                   // return.
    realtime.wrap(router)
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args = realtime_examples::Args::parse(3000);
    let realtime = Realtime::builder().build()?;
    let app = app(&realtime);
    if args.simulate {
        tokio::spawn(simulate(app.clone()));
    }
    realtime_examples::serve(app, args.bind, &realtime, "/realtime").await?;
    Ok(())
}

/// Books and releases random seats through the app itself (so events pass the layer).
async fn simulate(app: RealtimeService<Router>) {
    let mut rng = realtime_examples::Rng::new();
    loop {
        let seat = format!("row-{}", rng.below(4) + 1);
        for method in ["POST", "DELETE"] {
            let request = http::Request::builder()
                .method(method)
                .uri(format!("/seats/{seat}"));
            realtime_examples::send(&app, request.body(axum::body::Body::empty()).unwrap()).await;
            rng.pause(150, 400).await;
        }
    }
}
