//! Calls placed by hand: `POST /api/v1/calls` (call now) and
//! `POST /api/v1/tasks/{id}/call-back` (call back at the client's time).
//! The rules are in [`crate::ops::calls`].

use axum::Json;
use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::Deserialize;
use serde_json::json;

use super::WebState;
use super::auth::Auth;
use super::body::body;
use super::error::ApiError;
use crate::ops::OpsError;
use crate::ops::calls;

/// A call to place now.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CallBody {
    /// The task (its id, or its key such as `new_account:C0001`).
    pub task_id: String,
    /// The agent whose phone rings first (a staff id); an agent's own by
    /// default.
    pub agent_id: Option<String>,
    /// Outside the calling window: why (supervisors only; audited).
    pub override_window: Option<String>,
}

/// Places one recorded callback call now, through this `serve`'s dialer:
/// the agent's phone first, then the client's; the trace, recording,
/// audit events and the agent's feed as for the dialer's own calls.
/// Answers as soon as the call is placed.
#[utoipa::path(post, path = "/api/v1/calls", tag = "recordings", request_body = CallBody,
    responses((status = 202, description = "placed: {call_id, task_id, agent_id}"),
              (status = 403, description = "not your agent or task; avoidance (E7, `code` avoidance)"),
              (status = 409, description = "`code`: agent-busy, lines-full, not-registered, window-shut, task-not-callable")))]
pub async fn place(
    State(s): State<WebState>,
    Auth(p): Auth,
    b: Result<Json<CallBody>, JsonRejection>,
) -> Result<(StatusCode, Json<serde_json::Value>), ApiError> {
    let b = body(b)?;
    let placed = calls::call_now(
        &s.store,
        s.dialer.as_ref(),
        &p,
        &b.task_id,
        b.agent_id.as_deref(),
        b.override_window.as_deref(),
    )
    .await?;
    Ok((StatusCode::ACCEPTED, Json(json!(placed))))
}

/// When to call back.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CallBackBody {
    /// The time the client asked for (RFC 3339, e.g.
    /// `2026-12-08T15:00:00+08:00`).
    pub at: String,
}

/// Sets the task's next attempt to the time the client asked for
/// (audited); the dialer calls then, within the calling windows.
#[utoipa::path(post, path = "/api/v1/tasks/{id}/call-back", tag = "tasks", request_body = CallBackBody,
    params(("id" = String, Path, description = "the task (id or key)")),
    responses((status = 204, description = "set"), (status = 403, description = "not your task"),
              (status = 409, description = "the task is closed, or a call holds it")))]
pub async fn call_back(
    State(s): State<WebState>,
    Auth(p): Auth,
    Path(id): Path<String>,
    b: Result<Json<CallBackBody>, JsonRejection>,
) -> Result<StatusCode, ApiError> {
    let b = body(b)?;
    let at = chrono::DateTime::parse_from_rfc3339(b.at.trim())
        .map_err(|_| OpsError::invalid("at", format!("{:?} is not a time (RFC 3339)", b.at)))?
        .with_timezone(&chrono::Utc);
    calls::call_back_at(&s.store, &p, &id, at).await?;
    Ok(StatusCode::NO_CONTENT)
}
