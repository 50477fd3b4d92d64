//! response-extensions — handlers describe what happened by putting events in their response.
//!
//! A meeting-room service with real state. Handlers never see the realtime handle: they return
//! `Event`s as response parts (one or several), or push them into `response.extensions_mut()`
//! when they build a response by hand. The layer records them and strips them from the response.
//! Run: `cargo run -p realtime-examples --example response-extensions -- --simulate`
//! then open http://127.0.0.1:3001/realtime

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use realtime_layer::{Event, Realtime, RealtimeEvents, RealtimeService};
use serde::Deserialize;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// Rooms and how many of their desks are taken.
#[derive(Clone, Default)]
pub struct Rooms(Arc<Mutex<HashMap<String, (u32, u32)>>>);

#[derive(Deserialize)]
pub struct Who {
    user: String,
}

/// `POST /rooms/{room}/desks`: one event as a response part, success or failure.
async fn take(
    State(rooms): State<Rooms>,
    Path(room): Path<String>,
    Json(who): Json<Who>,
) -> Response {
    let mut rooms = rooms.0.lock().unwrap();
    let Some((size, taken)) = rooms.get_mut(&room) else {
        let event = Event::failure(room.clone(), who.user.clone(), "unknown_room");
        return (StatusCode::NOT_FOUND, event, "no such room\n").into_response();
    };
    if *taken == *size {
        let event = Event::failure(room.clone(), who.user.clone(), "exhausted");
        return (StatusCode::CONFLICT, event, "room is full\n").into_response();
    }
    *taken += 1;
    (
        StatusCode::CREATED,
        Event::borrow(room.clone(), who.user.clone()),
        "desk taken\n",
    )
        .into_response()
}

/// `DELETE /rooms/{room}/desks`: a response built by hand, the event pushed into its extensions.
async fn leave(
    State(rooms): State<Rooms>,
    Path(room): Path<String>,
    Json(who): Json<Who>,
) -> Response {
    let mut rooms = rooms.0.lock().unwrap();
    let mut response = "desk freed\n".into_response();
    match rooms.get_mut(&room) {
        Some((_, taken)) if *taken > 0 => {
            *taken -= 1;
            RealtimeEvents::push_into(
                response.extensions_mut(),
                Event::returned(room.clone(), who.user.clone()),
            );
        }
        _ => *response.status_mut() = StatusCode::NOT_FOUND,
    }
    response
}

/// `POST /rooms/{room}/evacuate`: several events from one request.
async fn evacuate(State(rooms): State<Rooms>, Path(room): Path<String>) -> Response {
    let mut rooms = rooms.0.lock().unwrap();
    let Some((_, taken)) = rooms.get_mut(&room) else {
        return StatusCode::NOT_FOUND.into_response();
    };
    let events: Vec<Event> = (0..*taken)
        .map(|_| Event::returned(room.clone(), "facility"))
        .collect();
    *taken = 0;
    (RealtimeEvents::from(events), "room emptied\n").into_response()
}

pub fn app(realtime: &Realtime, rooms: Rooms) -> RealtimeService<Router> {
    let router = Router::new()
        .route("/rooms/{room}/desks", post(take).delete(leave))
        .route("/rooms/{room}/evacuate", post(evacuate))
        .with_state(rooms)
        .merge(realtime.routes());
    realtime.wrap(router)
}

pub fn rooms() -> Rooms {
    let rooms = Rooms::default();
    for (name, size) in [("Atrium", 6), ("Library", 3), ("Lab", 4)] {
        rooms.0.lock().unwrap().insert(name.to_owned(), (size, 0));
    }
    rooms
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args = realtime_examples::Args::parse(3001);
    let realtime = Realtime::builder().build()?;
    let app = app(&realtime, rooms());
    if args.simulate {
        tokio::spawn(simulate(app.clone()));
    }
    realtime_examples::serve(app, args.bind, &realtime, "/realtime").await?;
    Ok(())
}

async fn simulate(app: RealtimeService<Router>) {
    let mut rng = realtime_examples::Rng::new();
    loop {
        let room = rng.pick(&["Atrium", "Library", "Lab"]);
        let user = rng.pick(&realtime_examples::USERS);
        let (method, path) = match rng.below(10) {
            0..=5 => ("POST", format!("/rooms/{room}/desks")),
            6..=8 => ("DELETE", format!("/rooms/{room}/desks")),
            _ => ("POST", format!("/rooms/{room}/evacuate")),
        };
        let body = serde_json::json!({ "user": user }).to_string();
        let request = http::Request::builder()
            .method(method)
            .uri(path)
            .header("content-type", "application/json")
            .body(axum::body::Body::from(body))
            .unwrap();
        realtime_examples::send(&app, request).await;
        rng.pause(100, 300).await;
    }
}
