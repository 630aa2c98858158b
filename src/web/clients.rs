//! `GET /api/v1/clients/{client_id}` (the dossier), `POST
//! /api/v1/clients/{client_id}/reveal` (a full number, audited) and
//! `GET /api/v1/calls` (calls by agent and days) — `ops::clients`.

use axum::Json;
use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use serde::Deserialize;
use serde_json::json;

use super::WebState;
use super::auth::Auth;
use super::body::body;
use super::error::ApiError;
use crate::ops::clients::{self, SearchCalls};
use crate::ops::recordings::{DEFAULT_PAGE, day_start};

/// Everything about a client in time order (compliance; a supervisor of
/// the client's branch): tasks and why, every attempt, recordings, records,
/// reviews, follow-ups and — for compliance — who played, downloaded or
/// exported each recording. Numbers masked.
#[utoipa::path(get, path = "/api/v1/clients/{client_id}", tag = "compliance",
    params(("client_id" = String, Path, description = "the client")),
    responses((status = 200, description = "{client, tasks, calls, records, accesses, timeline}"),
              (status = 403, description = "not yours to see"), (status = 404, description = "no such client")))]
pub async fn dossier(
    State(s): State<WebState>,
    Auth(p): Auth,
    Path(client_id): Path<String>,
) -> Result<Json<serde_json::Value>, ApiError> {
    Ok(Json(clients::dossier(&s.store, &p, &client_id).await?))
}

/// Which number to reveal.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Reveal {
    /// `phone` or `id_number`.
    pub field: String,
}

/// A client's full phone or ID number (compliance); each reveal is an
/// audit event (`client.revealed`).
#[utoipa::path(post, path = "/api/v1/clients/{client_id}/reveal", tag = "compliance", request_body = Reveal,
    params(("client_id" = String, Path, description = "the client")),
    responses((status = 200, description = "{field, value}"), (status = 403, description = "not compliance")))]
pub async fn reveal(
    State(s): State<WebState>,
    Auth(p): Auth,
    Path(client_id): Path<String>,
    b: Result<Json<Reveal>, JsonRejection>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let b = body(b)?;
    let value = clients::reveal(&s.store, &p, &s.cfg.reveal_roles, &client_id, &b.field).await?;
    Ok(Json(json!({"field": b.field, "value": value})))
}

/// Which calls.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub struct CallParams {
    /// The agent (staff id).
    pub agent_id: Option<String>,
    /// The client.
    pub client_id: Option<String>,
    /// The kind of callback (`new_account`, …).
    pub kind: Option<String>,
    /// The `next` of the previous page.
    pub cursor: Option<String>,
    /// From this day (YYYY-MM-DD).
    pub from: Option<String>,
    /// To this day, included (YYYY-MM-DD).
    pub to: Option<String>,
    /// Only this outcome.
    pub outcome: Option<String>,
    /// Page size, 1..=500 (default 100).
    pub limit: Option<i64>,
}

/// Calls by agent, client, kind, outcome and days, every attempt, newest
/// first, paged by cursor: compliance any call, a supervisor their
/// branches' clients', an agent their own.
#[utoipa::path(get, path = "/api/v1/calls", tag = "recordings", params(CallParams),
    responses((status = 200, description = "{items, next}"), (status = 403, description = "not an agent of yours")))]
pub async fn search(
    State(s): State<WebState>,
    Auth(p): Auth,
    q: Result<Query<CallParams>, QueryRejection>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let Query(q) = q.map_err(|e| ApiError::BadRequest("query", e.body_text()))?;
    let nonempty = |v: Option<String>| v.filter(|v| !v.trim().is_empty()).map(|v| v.trim().to_string());
    let q = SearchCalls {
        agent_id: nonempty(q.agent_id),
        client_id: nonempty(q.client_id),
        kind: nonempty(q.kind),
        cursor: q.cursor,
        from: q.from.as_deref().map(|d| day_start(d, "from")).transpose()?,
        to: q.to.as_deref().map(|d| day_start(d, "to")).transpose()?.map(|t| t + chrono::Duration::days(1)),
        outcome: nonempty(q.outcome),
        limit: q.limit.unwrap_or(DEFAULT_PAGE),
    };
    let page = clients::search(&s.store, &p, &q).await?;
    Ok(Json(json!({"items": page.items, "next": page.next})))
}
