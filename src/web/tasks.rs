//! `GET /api/v1/tasks`, `POST /api/v1/tasks/{id}/mark`.

use axum::Json;
use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use serde::Deserialize;
use serde_json::json;

use super::WebState;
use super::auth::Auth;
use super::body::body;
use super::error::ApiError;
use crate::ops::access::Role;
use crate::ops::recordings::DEFAULT_PAGE;
use crate::ops::records::parse_outcome;
use crate::ops::tasks::{self, ListTasks};

/// Which tasks.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub struct TaskParams {
    /// `open`, `done` or `closed`.
    pub status: Option<String>,
    /// A task kind, e.g. `new_account`.
    pub kind: Option<String>,
    /// A client id.
    pub client_id: Option<String>,
    /// Page size, 1..=500 (default 100).
    pub limit: Option<i64>,
    /// The `next` of the previous page.
    pub cursor: Option<String>,
}

/// The tasks the person may see, by due date, priority and key.
#[utoipa::path(get, path = "/api/v1/tasks", tag = "tasks", params(TaskParams),
    responses((status = 200, description = "{items, next}"), (status = 403, description = "no task role")))]
pub async fn list(
    State(s): State<WebState>,
    Auth(p): Auth,
    q: Result<Query<TaskParams>, QueryRejection>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let Query(q) = q.map_err(|e| ApiError::BadRequest("query", e.body_text()))?;
    let q = ListTasks {
        state: q.status,
        kind: q.kind,
        client: q.client_id,
        cursor: q.cursor,
        limit: Some(q.limit.unwrap_or(DEFAULT_PAGE)),
    };
    let page = tasks::list(&s.store, &p, &q).await?;
    Ok(Json(json!({"items": page.items, "next": page.next})))
}

/// How a task is closed by hand.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Mark {
    /// `wrong_number` or `refused`.
    pub outcome: String,
}

/// Closes a task as a wrong number or a refusal (as the person's staff row).
#[utoipa::path(post, path = "/api/v1/tasks/{id}/mark", tag = "tasks", request_body = Mark,
    params(("id" = String, Path, description = "the task's id or key")),
    responses((status = 200, description = "the task, closed"), (status = 403, description = "not yours"),
              (status = 404, description = "no such task")))]
pub async fn mark(
    State(s): State<WebState>,
    Auth(p): Auth,
    Path(id): Path<String>,
    b: Result<Json<Mark>, JsonRejection>,
) -> Result<Json<serde_json::Value>, ApiError> {
    p.require_any(&[Role::Agent, Role::Supervisor, Role::Compliance])?;
    let m = body(b)?;
    let outcome = parse_outcome(&m.outcome)?;
    let by = p.staff_id.clone().ok_or_else(|| {
        crate::ops::OpsError::Forbidden(
            "marking a task needs a staff row (huifang user add --staff-id)".into(),
        )
    })?;
    let t = tasks::mark(&s.store, &p, &id, outcome, &by).await?;
    Ok(Json(json!({"task": t})))
}
