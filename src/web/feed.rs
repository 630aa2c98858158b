//! `GET /ws/agent`: the agent's event feed over a WebSocket (protocol v1,
//! `docs/AGENT_EVENTS.md`).
//!
//! On connect the page gets a `snapshot` (state, the call and task in
//! progress), or — when it says the last `seq` it saw (`?since=N`) and
//! the log still holds everything after it — the missed events again.
//! Then every event of the agent, in order and without holes: an event
//! that arrives ahead of one not yet seen (another instance's, a lagging
//! receiver) makes the connection read the gap from the log first.
//!
//! Every `http.ws_ping_secs` (20 s) the server pings; a connection that did not answer the
//! previous ping is closed. Every minute the session or token is asked
//! again: a logout, a disabled user or an expired session closes the feed
//! (code 4401). A stopping server closes it with 1001.

use std::time::Duration;

use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade};
use axum::extract::{FromRequestParts, Query, Request, State};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Value, json};
use tokio::sync::broadcast::error::RecvError;
use tracing::debug;

use super::WebState;
use super::auth::{Credential, peer};
use super::error::ApiError;
use crate::feed::Delivered;
use crate::feed::events::{VERSION, time};
use crate::ops::OpsError;
use crate::ops::access::Role;
use crate::ops::agents::registered;

/// How many missed events a reconnecting page is sent again, at most
/// (beyond that it gets a snapshot).
const REPLAY_MAX: i64 = 200;
/// Re-check the credential every this many pings.
const RECHECK_PINGS: u32 = 3;

/// The connection's query.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct FeedParams {
    /// The last `seq` the page saw.
    since: Option<i64>,
}

/// Upgrades an agent's request to the event feed.
pub async fn agent(State(s): State<WebState>, req: Request) -> Result<Response, ApiError> {
    let (mut parts, _) = req.into_parts();
    let cred = Credential::of(&s, &parts.headers, peer(&parts));
    let p = cred.person(&s).await?.ok_or(ApiError::Unauthenticated)?;
    p.require_any(&[Role::Agent])?;
    let agent =
        p.staff_id.clone().ok_or_else(|| OpsError::Forbidden("an agent without a staff row".into()))?;
    let Query(params) = Query::<FeedParams>::from_request_parts(&mut parts, &s)
        .await
        .map_err(|e| ApiError::BadRequest("query", e.body_text()))?;
    let ws = WebSocketUpgrade::from_request_parts(&mut parts, &s).await.map_err(|e| {
        ApiError::BadRequest("upgrade", format!("a WebSocket upgrade is expected here: {}", e.body_text()))
    })?;
    // small buffers: an agent sends pongs, and a message is a few KiB (the
    // 128 KiB defaults would cost that much per connected agent)
    let ws =
        ws.max_message_size(64 * 1024).max_frame_size(64 * 1024).read_buffer_size(4096).write_buffer_size(0);
    Ok(ws.on_upgrade(move |socket| serve(s, agent, cred, params.since, socket)).into_response())
}

async fn send(socket: &mut WebSocket, text: &str) -> bool {
    socket.send(Message::Text(text.into())).await.is_ok()
}

/// The feed of one connection.
async fn serve(s: WebState, agent: String, cred: Credential, since: Option<i64>, mut socket: WebSocket) {
    // subscribe before reading the log: nothing falls between the two
    let mut sub = s.hub.subscribe(&agent);
    s.metrics.websocket(1);
    let mut last = match opening(&s, &agent, since).await {
        Ok((texts, last)) => {
            let mut ok = true;
            for t in &texts {
                ok = ok && send(&mut socket, t).await;
            }
            if !ok {
                s.metrics.websocket(-1);
                return;
            }
            last
        }
        Err(e) => {
            debug!(error = %e, "feed: opening failed");
            let _ = socket.send(close(1011, "the feed could not be read")).await;
            s.metrics.websocket(-1);
            return;
        }
    };
    let mut stopping = s.stopping.clone();
    let mut ping = tokio::time::interval(Duration::from_secs(s.cfg.ws_ping_secs));
    ping.tick().await;
    let mut alive = true;
    let mut pings = 0u32;
    loop {
        tokio::select! {
            _ = stopping.changed() => {
                let _ = socket.send(close(1001, "the server is stopping")).await;
                break;
            }
            d = sub.rx.recv() => {
                let more = match d {
                    Ok(d) if d.seq <= last => continue,
                    Ok(d) if d.seq == last + 1 => {
                        last = d.seq;
                        send(&mut socket, &d.text).await
                    }
                    // a hole (an event of another instance not here yet, or
                    // one this receiver fell behind on): read it from the log
                    Ok(_) | Err(RecvError::Lagged(_)) => match s.hub.missed(&agent, last, REPLAY_MAX).await {
                        Ok(rows) => {
                            let mut ok = true;
                            for r in &rows {
                                if r.seq > last {
                                    last = r.seq;
                                    ok = ok && send(&mut socket, &r.text).await;
                                }
                            }
                            ok
                        }
                        Err(e) => {
                            debug!(error = %e, "feed: missed events not read");
                            true
                        }
                    },
                    Err(RecvError::Closed) => false,
                };
                if !more {
                    break;
                }
            }
            m = socket.recv() => match m {
                Some(Ok(Message::Pong(_))) => alive = true,
                Some(Ok(Message::Text(t))) => {
                    alive = true;
                    // an application-level ping for clients that cannot send frames
                    if serde_json::from_str::<Value>(t.as_str()).ok().is_some_and(|v| v["type"] == "ping") {
                        let pong = json!({"v": VERSION, "type": "pong", "seq": last, "at": time(chrono::Utc::now())});
                        if !send(&mut socket, &pong.to_string()).await {
                            break;
                        }
                    }
                }
                Some(Ok(Message::Close(_))) | None | Some(Err(_)) => break,
                Some(Ok(_)) => alive = true,
            },
            _ = ping.tick() => {
                if !alive {
                    debug!("feed: no answer to the last ping; closing");
                    break;
                }
                alive = false;
                pings += 1;
                if pings.is_multiple_of(RECHECK_PINGS) {
                    let still = cred.person(&s).await.ok().flatten();
                    if !still.is_some_and(|p| p.has(Role::Agent) && p.staff_id.as_deref() == Some(agent.as_str())) {
                        let _ = socket.send(close(4401, "the session has ended")).await;
                        break;
                    }
                }
                if socket.send(Message::Ping(Vec::new().into())).await.is_err() {
                    break;
                }
            }
        }
    }
    drop(sub);
    s.metrics.websocket(-1);
}

fn close(code: u16, why: &'static str) -> Message {
    Message::Close(Some(CloseFrame { code, reason: why.into() }))
}

/// What a new connection gets first: the missed events when `since` can
/// be honoured, else a snapshot; and the last `seq` sent.
async fn opening(
    s: &WebState,
    agent: &str,
    since: Option<i64>,
) -> Result<(Vec<String>, i64), crate::store::StoreError> {
    let newest = s.store.feed_last_seq(agent).await?;
    if let Some(n) = since
        && n <= newest
        && n >= 0
    {
        let rows: Vec<std::sync::Arc<Delivered>> = s.hub.missed(agent, n, REPLAY_MAX + 1).await?;
        let whole = rows.first().is_none_or(|r| r.seq == n + 1) && (rows.len() as i64) <= REPLAY_MAX;
        if whole {
            let last = rows.last().map_or(n, |r| r.seq);
            return Ok((rows.iter().map(|r| r.text.clone()).collect(), last));
        }
    }
    let snap = snapshot(s, agent, newest).await?;
    Ok((vec![snap.to_string()], newest))
}

/// The `snapshot` message: the agent's state now and the call and task in
/// progress (the last offer whose task is still open and has no record).
pub async fn snapshot(s: &WebState, agent: &str, seq: i64) -> Result<Value, crate::store::StoreError> {
    let now = chrono::Utc::now();
    let session = s.store.agent_session(agent).await?;
    let presence = session.as_ref().map(|a| a.presence(now).as_str()).unwrap_or("logged_out");
    let mut call = Value::Null;
    let mut offer = Value::Null;
    if let Some(o) = s.store.feed_latest(agent, "offered").await? {
        let events = s.store.feed_after(agent, o.seq - 1, 50).await?;
        let task_id = o.body["task_id"].as_str().and_then(|t| t.parse().ok());
        let open = match task_id {
            Some(t) => s.store.task(t).await.map(|t| t.state == "open").unwrap_or(false),
            None => false,
        };
        let saved = events.iter().any(|e| e.kind == "record_saved" && e.body["task_id"] == o.body["task_id"]);
        if open && !saved {
            let phase =
                events.iter().rev().find(|e| e.body["call_id"] == o.body["call_id"]).map(|e| e.kind.clone());
            let ended = events.iter().find(|e| e.kind == "ended" && e.body["call_id"] == o.body["call_id"]);
            let wrap = events.iter().find(|e| e.kind == "wrap_up" && e.body["call_id"] == o.body["call_id"]);
            call = json!({
                "call_id": o.body["call_id"],
                "task_id": o.body["task_id"],
                "phase": phase,
                "outcome": ended.map(|e| e.body["outcome"].clone()),
                "recording_id": ended.map(|e| e.body["recording_id"].clone()),
                "wrap_up_deadline": wrap.map(|e| e.body["deadline"].clone()),
            });
            let mut body = o.body.clone();
            if let Some(m) = body.as_object_mut() {
                m.remove("type");
            }
            offer = body;
        }
    }
    Ok(json!({
        "v": VERSION,
        "type": "snapshot",
        "seq": seq,
        "at": time(now),
        "agent_id": agent,
        "state": session.as_ref().map(|a| a.state.as_str()).unwrap_or("logged_out"),
        "presence": presence,
        "reason": session.as_ref().and_then(|a| a.reason.clone()),
        "since": session.as_ref().map(|a| time(a.changed_at)),
        "softphone_registered": registered(&s.store, s.endpoint.as_ref(), agent).await?,
        "call": call,
        "offer": offer,
    }))
}
