//! `GET /ws/supervisor`: the supervisor's live wall over a WebSocket.
//! Every second the connection takes the status as the person may see it
//! (`ops::status::snapshot`: their branches' agents and calls, the queue,
//! the dialer instances) and sends it when it changed — so the wall is
//! never more than a second behind, whichever instance made the change,
//! with no bus of our own. Messages: `{"v": 1, "type": "wall", "seq", "at",
//! "status": {…}}` (the same object as `GET /api/v1/status`). Pings,
//! session checks and closing as `/ws/agent`.

use std::time::Duration;

use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade};
use axum::extract::{FromRequestParts, Request, State};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use super::WebState;
use super::auth::{Credential, peer};
use super::error::ApiError;
use crate::feed::events::{VERSION, time};
use crate::ops::access::{Person, Role};
use crate::ops::status;

/// Upgrades a supervisor's (or compliance officer's) request to the wall.
pub async fn supervisor(State(s): State<WebState>, req: Request) -> Result<Response, ApiError> {
    let (mut parts, _) = req.into_parts();
    let cred = Credential::of(&s, &parts.headers, peer(&parts));
    let p = cred.person(&s).await?.ok_or(ApiError::Unauthenticated)?;
    p.require_any(&[Role::Supervisor, Role::Compliance])?;
    let ws = WebSocketUpgrade::from_request_parts(&mut parts, &s).await.map_err(|e| {
        ApiError::BadRequest("upgrade", format!("a WebSocket upgrade is expected here: {}", e.body_text()))
    })?;
    let ws = ws.max_message_size(64 * 1024).read_buffer_size(4096).write_buffer_size(0);
    Ok(ws.on_upgrade(move |socket| serve(s, p, cred, socket)).into_response())
}

async fn serve(s: WebState, mut p: Person, cred: Credential, mut socket: WebSocket) {
    s.metrics.websocket(1);
    let mut stopping = s.stopping.clone();
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let ping_every = s.cfg.ws_ping_secs.max(1);
    let mut seq = 0u64;
    let mut last = String::new();
    let mut alive = true;
    let mut ticks = 0u64;
    loop {
        tokio::select! {
            _ = stopping.changed() => {
                let _ = socket.send(Message::Close(Some(CloseFrame { code: 1001, reason: "the server is stopping".into() }))).await;
                break;
            }
            m = socket.recv() => match m {
                Some(Ok(Message::Close(_))) | None | Some(Err(_)) => break,
                Some(Ok(_)) => alive = true,
            },
            _ = tick.tick() => {
                ticks += 1;
                if ticks.is_multiple_of(ping_every) {
                    if !alive {
                        break;
                    }
                    alive = false;
                    if socket.send(Message::Ping(Vec::new().into())).await.is_err() {
                        break;
                    }
                }
                if ticks.is_multiple_of(60) {
                    match cred.person(&s).await.ok().flatten() {
                        Some(now) if now.has(Role::Supervisor) || now.has(Role::Compliance) => p = now,
                        _ => {
                            let _ = socket.send(Message::Close(Some(CloseFrame { code: 4401, reason: "the session has ended".into() }))).await;
                            break;
                        }
                    }
                }
                let Ok(st) = status::snapshot(&s.store, &s.config, &p).await else { continue };
                let mut body = st.json();
                // what changes every second by itself is not a change
                body["at"] = json!(null);
                let text = body.to_string();
                if text == last && !ticks.is_multiple_of(10) {
                    continue;
                }
                last = text;
                seq += 1;
                body["at"] = json!(time(st.now));
                let msg = json!({"v": VERSION, "type": "wall", "seq": seq, "at": time(st.now), "status": body});
                if socket.send(Message::Text(msg.to_string().into())).await.is_err() {
                    break;
                }
            }
        }
    }
    s.metrics.websocket(-1);
}
