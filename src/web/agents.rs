//! Agent state and the live status: `GET /api/v1/agents/{staff_id}`,
//! `POST /api/v1/agents/{staff_id}/state`, `GET /api/v1/status`.

use axum::Json;
use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, State};
use serde::Deserialize;
use serde_json::json;

use super::WebState;
use super::auth::Auth;
use super::body::body;
use super::error::ApiError;
use crate::domain::agents::AgentCommand;
use crate::ops::access::Role;
use crate::ops::{OpsError, agents, status};

/// An agent's session and what they are doing now.
#[utoipa::path(get, path = "/api/v1/agents/{staff_id}", tag = "agents",
    params(("staff_id" = String, Path, description = "the agent")),
    responses((status = 200, description = "{session, presence}"), (status = 403, description = "not yours")))]
pub async fn get(
    State(s): State<WebState>,
    Auth(p): Auth,
    Path(staff_id): Path<String>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let session = agents::session(&s.store, &p, &staff_id).await?;
    let presence = session.as_ref().map(|a| a.presence(chrono::Utc::now()).as_str());
    Ok(Json(json!({"staff_id": staff_id, "session": session, "presence": presence})))
}

/// A change of state.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct StateChange {
    /// `login`, `logout`, `pause` or `resume`.
    pub action: String,
    /// Why (a pause's reason).
    pub reason: Option<String>,
}

/// Logs an agent in or out, pauses or resumes them (the agent themselves,
/// or a supervisor of their branch); the same trace as `huifang agent`.
#[utoipa::path(post, path = "/api/v1/agents/{staff_id}/state", tag = "agents", request_body = StateChange,
    params(("staff_id" = String, Path, description = "the agent")),
    responses((status = 200, description = "the session"), (status = 409, description = "not from this state")))]
pub async fn change(
    State(s): State<WebState>,
    Auth(p): Auth,
    Path(staff_id): Path<String>,
    b: Result<Json<StateChange>, JsonRejection>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let b = body(b)?;
    let cmd = match b.action.as_str() {
        "login" => AgentCommand::Login,
        "logout" => AgentCommand::Logout,
        "pause" => AgentCommand::Pause,
        "resume" => AgentCommand::Resume,
        a => {
            return Err(
                OpsError::invalid("action", format!("{a:?} is not login, logout, pause or resume")).into()
            );
        }
    };
    let by = p.staff_id.clone().unwrap_or_else(|| p.login.clone());
    let session = agents::change(&s.hub, &s.config, &p, &staff_id, cmd, &by, b.reason.as_deref()).await?;
    Ok(Json(json!({"session": session, "presence": session.presence(chrono::Utc::now()).as_str()})))
}

/// The agent of the session: state, presence, whether the softphone is
/// registered, the call and task in progress (the feed's `snapshot`).
#[utoipa::path(get, path = "/api/v1/agent", tag = "agents",
    responses((status = 200, description = "the snapshot message of docs/AGENT_EVENTS.md"),
              (status = 403, description = "not an agent")))]
pub async fn own(State(s): State<WebState>, Auth(p): Auth) -> Result<Json<serde_json::Value>, ApiError> {
    let agent = own_staff(&p)?;
    let seq = s.store.feed_last_seq(&agent).await.map_err(OpsError::from)?;
    Ok(Json(super::feed::snapshot(&s, &agent, seq).await.map_err(OpsError::from)?))
}

fn own_staff(p: &crate::ops::access::Person) -> Result<String, ApiError> {
    p.require_any(&[Role::Agent])?;
    Ok(p.staff_id.clone().ok_or_else(|| OpsError::Forbidden("an agent without a staff row".into()))?)
}

/// The state an agent asks for.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OwnState {
    /// `available`, `paused` or `logged_out`.
    pub state: String,
    /// Why (a pause's reason).
    pub reason: Option<String>,
}

/// The agent of the session goes available (logging in, or resuming),
/// pauses or logs out: the same operations and trace as `huifang agent`.
/// Asking for the state one is in changes nothing.
#[utoipa::path(post, path = "/api/v1/agent/state", tag = "agents", request_body = OwnState,
    responses((status = 200, description = "{session, presence}"), (status = 403, description = "not an agent"),
              (status = 409, description = "not from this state"), (status = 422, description = "an unknown state")))]
pub async fn own_state(
    State(s): State<WebState>,
    Auth(p): Auth,
    b: Result<Json<OwnState>, JsonRejection>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let agent = own_staff(&p)?;
    let b = body(b)?;
    let session = agents::go_to(&s.hub, &s.config, &p, &agent, &b.state, b.reason.as_deref()).await?;
    Ok(Json(json!({"session": session, "presence": session.presence(chrono::Utc::now()).as_str()})))
}

/// Dialers, agents, calls in progress, the queue (what `huifang status
/// --format json` prints), as the person may see them.
#[utoipa::path(get, path = "/api/v1/status", tag = "agents",
    responses((status = 200, description = "{at, dialers, agents, calls, queue}"), (status = 403, description = "not a supervisor")))]
pub async fn status(State(s): State<WebState>, Auth(p): Auth) -> Result<Json<serde_json::Value>, ApiError> {
    Ok(Json(status::snapshot(&s.store, &s.config, &p).await?.json()))
}
