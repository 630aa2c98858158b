//! `GET /api/v1/reports/{what}` and `GET /api/v1/verify` (compliance).

use axum::Json;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::json;

use super::WebState;
use super::auth::Auth;
use super::error::ApiError;
use crate::ops::OpsError;
use crate::ops::access::Role;
use crate::ops::recordings::day_start;
use crate::ops::report::{self, ReportKind, parse_month};
use crate::ops::verify::verify_as;

/// Which month, as of which day.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub struct ReportParams {
    /// YYYY-MM (default: this month; last month for `monthly`).
    pub month: Option<String>,
    /// YYYY-MM-DD (default: today, UTC+8).
    pub as_of: Option<String>,
    /// `json` (default) or `csv` (a download).
    pub format: Option<String>,
}

async fn make(
    s: &WebState,
    p: &crate::ops::access::Person,
    what: &str,
    q: &ReportParams,
) -> Result<(ReportKind, report::Report), ApiError> {
    p.require_any(&[Role::Compliance])?;
    let kind = ReportKind::from_name(what).ok_or_else(|| {
        OpsError::invalid("what", format!("{what:?} is not coverage, overdue, followups or monthly"))
    })?;
    let month = q.month.as_deref().map(|m| parse_month(m, "month")).transpose()?;
    let as_of = match &q.as_of {
        Some(d) => day_start(d, "as_of")?.date_naive(),
        None => crate::ops::today(),
    };
    Ok((kind, report::report(&s.store, &s.config, &s.calendar, p, kind, month, as_of).await?))
}

/// A report: the same rows as `huifang report WHAT --format json`, or as
/// CSV (`?format=csv`, a download).
#[utoipa::path(get, path = "/api/v1/reports/{what}", tag = "reports",
    params(("what" = String, Path, description = "coverage, overdue, followups or monthly"), ReportParams),
    responses((status = 200, description = "{report, columns, rows, items, note}, or text/csv"),
              (status = 403, description = "not compliance")))]
pub async fn get(
    State(s): State<WebState>,
    Auth(p): Auth,
    Path(what): Path<String>,
    q: Result<Query<ReportParams>, QueryRejection>,
) -> Result<Response, ApiError> {
    let Query(q) = q.map_err(|e| ApiError::BadRequest("query", e.body_text()))?;
    let (kind, r) = make(&s, &p, &what, &q).await?;
    match q.format.as_deref().unwrap_or("json") {
        "json" => {
            Ok(Json(json!({"report": kind.as_str(), "items": r.json, "columns": r.headers, "rows": r.rows,
                                 "note": r.note}))
            .into_response())
        }
        "csv" => {
            let mut resp = r.csv()?.into_response();
            let h = resp.headers_mut();
            h.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/csv; charset=utf-8"));
            if let Ok(v) = HeaderValue::from_str(&format!("attachment; filename=\"{}.csv\"", kind.as_str())) {
                h.insert(header::CONTENT_DISPOSITION, v);
            }
            Ok(resp)
        }
        f => Err(OpsError::invalid("format", format!("{f:?} is not json or csv")).into()),
    }
}

/// The report's chart, drawn on the server (SVG).
#[utoipa::path(get, path = "/api/v1/reports/{what}/chart.svg", tag = "reports",
    params(("what" = String, Path, description = "coverage, overdue, followups or monthly"), ReportParams),
    responses((status = 200, description = "image/svg+xml"), (status = 403, description = "not compliance")))]
pub async fn chart(
    State(s): State<WebState>,
    Auth(p): Auth,
    Path(what): Path<String>,
    q: Result<Query<ReportParams>, QueryRejection>,
) -> Result<Response, ApiError> {
    let Query(q) = q.map_err(|e| ApiError::BadRequest("query", e.body_text()))?;
    let (kind, r) = make(&s, &p, &what, &q).await?;
    let mut resp = r.chart(kind).into_response();
    resp.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("image/svg+xml; charset=utf-8"));
    Ok(resp)
}

/// `?since=YYYY-MM-DD&deep=true`
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub struct VerifyParams {
    /// Only calls started on or after this UTC date.
    pub since: Option<String>,
    /// Download every object and re-hash it.
    pub deep: Option<bool>,
}

/// Verification findings (the same as `huifang verify`).
#[utoipa::path(get, path = "/api/v1/verify", tag = "verify", params(VerifyParams),
    responses((status = 200, description = "{findings, running}"), (status = 403, description = "not compliance")))]
pub async fn verify(
    State(s): State<WebState>,
    Auth(p): Auth,
    q: Result<Query<VerifyParams>, QueryRejection>,
) -> Result<Json<crate::ops::verify::Report>, ApiError> {
    p.require_any(&[Role::Compliance])?;
    let Query(q) = q.map_err(|e| ApiError::BadRequest("query", e.body_text()))?;
    let since = q.since.as_deref().map(|d| day_start(d, "since")).transpose()?;
    Ok(Json(verify_as(&s.store, &s.archive, &p, since, q.deep.unwrap_or(false)).await?))
}
