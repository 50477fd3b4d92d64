//! `GET /realtime/ws?resource=NAME&user=NAME`: the frames of `/realtime/stream` over a WebSocket
//! (see `docs/PROTOCOL.md`).
//!
//! Same hub, channel, limits and snapshot-then-delta semantics as the SSE route (both go through
//! [`Subscription`]); each frame goes out as one text message holding only its JSON, a slice of
//! the hub's shared SSE message (no re-serialisation per client).

use super::params::Params;
use super::stream::{last_event_id, Next, Subscription};
use super::RouteState;
use crate::error::ApiError;
use crate::stream::frame_json;
use axum::body::Bytes;
use axum::extract::ws::rejection::WebSocketUpgradeRejection;
use axum::extract::ws::{close_code, CloseFrame, Message, Utf8Bytes, WebSocket, WebSocketUpgrade};
use axum::extract::State;
use axum::http::{Extensions, HeaderMap};
use axum::response::{IntoResponse, Response};
use futures_util::SinkExt as _;
use std::time::Duration;

/// Largest message (and frame) accepted from a client: incoming messages are read and dropped,
/// never buffered beyond this.
const MAX_INCOMING: usize = 4 * 1024;
/// How long to wait for the client's Close reply after ours.
const CLOSE_WAIT: Duration = Duration::from_secs(1);

pub(crate) async fn ws(
    State(routes): State<RouteState>,
    Params(q): Params,
    headers: HeaderMap,
    extensions: Extensions,
    upgrade: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> Response {
    // Parameters and limits are checked (JSON errors) before the upgrade.
    let last_seen = last_event_id(&headers, &q);
    let (sub, snapshot) = match Subscription::open(&routes, &q, last_seen, &headers, &extensions) {
        Ok(s) => s,
        Err(response) => return *response,
    };
    let upgrade = match upgrade {
        Ok(u) => u,
        Err(rejection) => {
            return ApiError::new(
                rejection.status(),
                "websocket_upgrade_required",
                format!(
                    "/realtime/ws needs a WebSocket upgrade request ({}); plain HTTP clients can \
                     use /realtime/stream",
                    rejection.body_text()
                ),
            )
            .into_response()
        }
    };
    upgrade
        .max_message_size(MAX_INCOMING)
        .max_frame_size(MAX_INCOMING)
        .on_upgrade(move |socket| session(socket, sub, snapshot))
}

/// One frame as a text message of its JSON.
fn text(message: &Bytes) -> Option<Message> {
    Utf8Bytes::try_from(frame_json(message))
        .ok()
        .map(Message::Text)
}

/// Sends the snapshot, then every frame, a Ping per `keep_alive`, and a Close on shutdown;
/// ends when the client closes or goes away. The subscription (and its `stream_clients` count)
/// lives exactly as long.
async fn session(mut socket: WebSocket, mut sub: Subscription, snapshot: Bytes) {
    if let Some(msg) = (!snapshot.is_empty()).then(|| text(&snapshot)).flatten() {
        if socket.send(msg).await.is_err() {
            return;
        }
    }
    loop {
        tokio::select! {
            next = sub.next() => {
                let msg = match next {
                    Some(Next::Frame(bytes)) => match text(&bytes) {
                        Some(msg) => msg,
                        None => continue,
                    },
                    Some(Next::KeepAlive) => Message::Ping(Bytes::new()),
                    None => {
                        drop(sub);
                        let close = Message::Close(Some(CloseFrame {
                            code: close_code::AWAY,
                            reason: Utf8Bytes::from_static("server shutting down"),
                        }));
                        if socket.send(close).await.is_ok() {
                            // Let the client answer the Close (bounded), for a clean close.
                            let _ = tokio::time::timeout(CLOSE_WAIT, async {
                                while let Some(Ok(_)) = socket.recv().await {}
                            })
                            .await;
                        }
                        return;
                    }
                };
                if socket.send(msg).await.is_err() {
                    return;
                }
            }
            incoming = socket.recv() => match incoming {
                Some(Ok(Message::Close(_))) => {
                    // Sends the Close reply the protocol queued (bounded).
                    drop(sub);
                    let _ = tokio::time::timeout(CLOSE_WAIT, socket.close()).await;
                    return;
                }
                // Anything else the client sends is ignored (Pings are answered by the socket).
                Some(Ok(_)) => {}
                None | Some(Err(_)) => return,
            },
        }
    }
}
