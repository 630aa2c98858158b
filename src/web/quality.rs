//! The supervisor's quality work: the month's spot-checks (抽检,
//! `GET /api/v1/spot-checks`, `POST /api/v1/spot-checks/{record_id}`) and
//! the follow-ups with their deadlines (`GET /api/v1/follow-ups`,
//! `POST /api/v1/follow-ups/{id}`). The rules are in
//! [`crate::ops::spotcheck`] and [`crate::ops::records`].

use axum::Json;
use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use serde::Deserialize;
use serde_json::json;

use super::WebState;
use super::auth::Auth;
use super::body::{body, uuid};
use super::error::ApiError;
use crate::ops::spotcheck;
use crate::ops::{records, today};

/// `?month=YYYY-MM`
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub struct MonthParams {
    /// The month of the callbacks (default this month, UTC+8).
    pub month: Option<String>,
}

/// The month's spot-check queue: the draw (seed, percentage), the
/// population and the sampled records the person may see, each with its
/// call's recording and its check once made. The first look at a month
/// draws it.
#[utoipa::path(get, path = "/api/v1/spot-checks", tag = "records", params(MonthParams),
    responses((status = 200, description = "{draw, population, sampled, items}"),
              (status = 403, description = "not a supervisor or compliance officer")))]
pub async fn queue(
    State(s): State<WebState>,
    Auth(p): Auth,
    q: Result<Query<MonthParams>, QueryRejection>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let Query(q) = q.map_err(|e| ApiError::BadRequest("query", e.body_text()))?;
    let month = q.month.unwrap_or_else(|| today().format("%Y-%m").to_string());
    let percent = s.config.records.spot_check_percent;
    let queue = spotcheck::queue(&s.store, &p, &month, percent).await?;
    Ok(Json(spotcheck::queue_json(&queue)))
}

/// A spot-check's result.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CheckBody {
    /// `pass` or `fail`.
    pub verdict: String,
    /// What the checker found.
    pub note: Option<String>,
}

/// Records a spot-check of a sampled record, as the person's own staff row
/// (never the record's author; once).
#[utoipa::path(post, path = "/api/v1/spot-checks/{record_id}", tag = "records", request_body = CheckBody,
    params(("record_id" = String, Path, description = "the record")),
    responses((status = 200, description = "{check}"),
              (status = 403, description = "not a checker of it (`code`: own-record for its author)"),
              (status = 409, description = "not in the sample, or checked already")))]
pub async fn check(
    State(s): State<WebState>,
    Auth(p): Auth,
    Path(id): Path<String>,
    b: Result<Json<CheckBody>, JsonRejection>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let id = uuid(&id, "record_id")?;
    let b = body(b)?;
    let c = spotcheck::check(&s.store, &p, id, &b.verdict, b.note.as_deref()).await?;
    Ok(Json(json!({"check": c})))
}

/// `?open=true`
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub struct FollowUpParams {
    /// `true` (default): only follow-ups not resolved yet.
    pub open: Option<bool>,
}

/// The follow-ups the person may see, the nearest deadline first, each
/// with `overdue` (its current deadline passed, UTC+8).
#[utoipa::path(get, path = "/api/v1/follow-ups", tag = "records", params(FollowUpParams),
    responses((status = 200, description = "{items}"), (status = 403, description = "not a supervisor or compliance officer")))]
pub async fn follow_ups(
    State(s): State<WebState>,
    Auth(p): Auth,
    q: Result<Query<FollowUpParams>, QueryRejection>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let Query(q) = q.map_err(|e| ApiError::BadRequest("query", e.body_text()))?;
    let items = records::follow_ups(&s.store, &p, q.open.unwrap_or(true)).await?;
    Ok(Json(json!({"items": items})))
}

/// A step of a follow-up.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct StepBody {
    /// `answered` (the department answered) or `resolved` (the client has
    /// the final answer).
    pub step: String,
    /// The day it happened (YYYY-MM-DD; default today, UTC+8).
    pub on: Option<String>,
    /// A note.
    pub note: Option<String>,
}

/// Moves a follow-up forward.
#[utoipa::path(post, path = "/api/v1/follow-ups/{id}", tag = "records", request_body = StepBody,
    params(("id" = String, Path, description = "the follow-up")),
    responses((status = 200, description = "{follow_up}"), (status = 403, description = "not of a branch you supervise"),
              (status = 409, description = "already past that step")))]
pub async fn step(
    State(s): State<WebState>,
    Auth(p): Auth,
    Path(id): Path<String>,
    b: Result<Json<StepBody>, JsonRejection>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let id = uuid(&id, "id")?;
    let b = body(b)?;
    let resolved = match b.step.as_str() {
        "answered" => false,
        "resolved" => true,
        other => {
            return Err(crate::ops::OpsError::invalid(
                "step",
                format!("{other:?} is not answered or resolved"),
            )
            .into());
        }
    };
    let on = match &b.on {
        Some(d) => crate::ops::recordings::day_start(d, "on")?.date_naive(),
        None => today(),
    };
    let f = records::advance_follow_up(&s.store, &p, id, resolved, on, b.note.as_deref()).await?;
    Ok(Json(json!({"follow_up": f})))
}
