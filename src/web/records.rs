//! `POST /api/v1/records`, `GET /api/v1/records/{id}`,
//! `POST /api/v1/records/{id}/review`.

use std::collections::BTreeMap;

use axum::Json;
use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::Deserialize;
use serde_json::json;

use super::WebState;
use super::auth::Auth;
use super::body::{body, uuid};
use super::error::ApiError;
use crate::ops::OpsError;
use crate::ops::access::Role;
use crate::ops::records::{self, Submission, parse_outcome};
use crate::store::Verdict;

/// A callback record, as the agent submits it (the agent console's form,
/// a CRM).
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewRecordBody {
    /// The task (its id, or its key such as `new_account:C0001`).
    #[serde(alias = "task")]
    pub task_id: String,
    /// The recorded call.
    pub call_id: Option<String>,
    /// `reached` (default), `unreachable`, `refused` or `wrong_number`.
    pub outcome: Option<String>,
    /// Checklist id → `yes`, `no` or text (the kind's checklist; every
    /// yes/no question when the client was reached).
    #[serde(default)]
    pub answers: BTreeMap<String, String>,
    /// Notes on the callback (备注).
    pub notes: Option<String>,
    /// Problems found (opens a follow-up; required when a compliance
    /// question was answered `no`).
    pub problems: Option<String>,
    /// `phone` (default), `face_to_face`, `letter`, `email`, `questionnaire`, `sms`.
    pub method: Option<String>,
    /// Day of the callback (YYYY-MM-DD; default today, UTC+8).
    pub called_on: Option<String>,
}

/// Submits the person's own callback record (agents). The same checks as
/// `huifang record submit`: avoidance (E7), the form's rules. Sent twice
/// with the same content, it answers the same record again (`"replayed":
/// true`) and stores nothing new.
#[utoipa::path(post, path = "/api/v1/records", tag = "records", request_body = NewRecordBody,
    responses((status = 201, description = "stored (or replayed); the task is closed: {record_id, …}"),
              (status = 403, description = "not an agent, or E7"),
              (status = 409, description = "the task already has another record"),
              (status = 422, description = "a field does not fit the form; `field` names it (`answers.ID`)")))]
pub async fn submit(
    State(s): State<WebState>,
    Auth(p): Auth,
    b: Result<Json<NewRecordBody>, JsonRejection>,
) -> Result<(StatusCode, Json<serde_json::Value>), ApiError> {
    p.require_any(&[Role::Agent])?;
    let b = body(b)?;
    let agent =
        p.staff_id.clone().ok_or_else(|| OpsError::Forbidden("an agent without a staff row".into()))?;
    let called_on = match &b.called_on {
        Some(d) => chrono::NaiveDate::parse_from_str(d, "%Y-%m-%d")
            .map_err(|_| OpsError::invalid("called_on", format!("{d:?} is not a date (YYYY-MM-DD)")))?,
        None => crate::ops::today(),
    };
    let sub = Submission {
        task: b.task_id,
        agent,
        outcome: parse_outcome(b.outcome.as_deref().unwrap_or("reached"))?,
        answers: b.answers,
        problems: b.problems,
        notes: b.notes,
        method: b.method.unwrap_or_else(|| "phone".into()),
        call_id: b.call_id.as_deref().map(|c| uuid(c, "call_id")).transpose()?,
        called_on,
    };
    let done = records::submit_record(&s.store, &s.hub, &s.config, &s.calendar, &p, sub).await?;
    Ok((
        StatusCode::CREATED,
        Json(json!({
            "record_id": done.id,
            "task_id": done.task.id,
            "task": done.task.key,
            "form": done.form.zh(),
            "replayed": done.replayed,
            "feedback_due_on": done.feedback_due_on,
            "follow_up": done.follow_up.map(|f| json!({
                "id": f.id, "answer_due_on": f.answer_due_on, "resolve_due_on": f.resolve_due_on
            })),
        })),
    ))
}

/// Which records.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub struct RecordParams {
    /// Callbacks on or after this day (YYYY-MM-DD; default 30 days ago).
    pub from: Option<String>,
    /// Callbacks on or before this day (YYYY-MM-DD; default today, UTC+8).
    pub to: Option<String>,
    /// `true`: only records nobody reviewed yet.
    pub unreviewed: Option<bool>,
    /// Page size, 1..=500 (default 100).
    pub limit: Option<i64>,
    /// The `next` of the previous page.
    pub cursor: Option<String>,
}

/// The records the person may see, by day of the callback.
#[utoipa::path(get, path = "/api/v1/records", tag = "records", params(RecordParams),
    responses((status = 200, description = "{items, next}"), (status = 403, description = "no record role")))]
pub async fn list(
    State(s): State<WebState>,
    Auth(p): Auth,
    q: Result<axum::extract::Query<RecordParams>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let axum::extract::Query(q) = q.map_err(|e| ApiError::BadRequest("query", e.body_text()))?;
    let today = crate::ops::today();
    let day = |d: &Option<String>, field: &'static str, default| -> Result<chrono::NaiveDate, ApiError> {
        Ok(match d {
            Some(d) => crate::ops::recordings::day_start(d, field)?.date_naive(),
            None => default,
        })
    };
    let q = records::ListRecords {
        from: day(&q.from, "from", today - chrono::Duration::days(30))?,
        to: day(&q.to, "to", today)?,
        unreviewed: q.unreviewed.unwrap_or(false),
        cursor: q.cursor,
        limit: q.limit.unwrap_or(crate::ops::recordings::DEFAULT_PAGE),
    };
    let page = records::list(&s.store, &p, &q).await?;
    Ok(Json(json!({"items": page.items, "next": page.next})))
}

/// One record (its author, a supervisor of its branch, compliance).
#[utoipa::path(get, path = "/api/v1/records/{id}", tag = "records",
    params(("id" = String, Path, description = "the record")),
    responses((status = 200, description = "the record"), (status = 404, description = "no such record")))]
pub async fn get(
    State(s): State<WebState>,
    Auth(p): Auth,
    Path(id): Path<String>,
) -> Result<Json<serde_json::Value>, ApiError> {
    p.require_any(&[Role::Agent, Role::Supervisor, Role::Compliance])?;
    let rec = records::record(&s.store, &p, uuid(&id, "id")?).await?;
    Ok(Json(json!({"record": rec})))
}

/// A review.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReviewBody {
    /// `approved` or `returned`.
    pub verdict: String,
    /// A note.
    pub note: Option<String>,
}

/// Reviews a record, as the person's own staff row (never its author).
#[utoipa::path(post, path = "/api/v1/records/{id}/review", tag = "records", request_body = ReviewBody,
    params(("id" = String, Path, description = "the record")),
    responses((status = 200, description = "reviewed"), (status = 403, description = "not a reviewer of it"),
              (status = 409, description = "already reviewed, or by its author")))]
pub async fn review(
    State(s): State<WebState>,
    Auth(p): Auth,
    Path(id): Path<String>,
    b: Result<Json<ReviewBody>, JsonRejection>,
) -> Result<Json<serde_json::Value>, ApiError> {
    p.require_any(&[Role::Supervisor, Role::Compliance])?;
    let id = uuid(&id, "id")?;
    let b = body(b)?;
    let verdict = match b.verdict.as_str() {
        "approved" => Verdict::Approved,
        "returned" => Verdict::Returned,
        v => return Err(OpsError::invalid("verdict", format!("{v:?} is not approved or returned")).into()),
    };
    // the record first: an unknown id is 404 whoever asks
    s.store.record(id).await.map_err(OpsError::from)?;
    let reviewer = p
        .staff_id
        .clone()
        .ok_or_else(|| OpsError::Forbidden("a review needs the reviewer's staff row".into()))?;
    let rec = records::review(&s.store, &p, id, &reviewer, verdict, b.note.as_deref()).await?;
    Ok(Json(json!({"record": rec})))
}
