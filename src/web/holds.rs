//! Legal holds (compliance): `GET /api/v1/recordings/{id}/holds`,
//! `POST …/hold`, `POST …/hold/release` (two different people).

use axum::Json;
use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, State};
use serde::Deserialize;
use serde_json::json;

use super::WebState;
use super::auth::Auth;
use super::body::{body, uuid};
use super::error::ApiError;
use crate::ops::holds;

/// Why.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Reason {
    /// Kept in the audit log.
    pub reason: String,
}

/// The holds of a recording, oldest first.
#[utoipa::path(get, path = "/api/v1/recordings/{id}/holds", tag = "holds",
    params(("id" = String, Path, description = "the recording")),
    responses((status = 200, description = "{items}"), (status = 403, description = "not compliance")))]
pub async fn list(
    State(s): State<WebState>,
    Auth(p): Auth,
    Path(id): Path<String>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let items = holds::holds(&s.store, &p, uuid(&id, "id")?).await?;
    Ok(Json(json!({"items": items, "next": null})))
}

/// Puts a recording under legal hold.
#[utoipa::path(post, path = "/api/v1/recordings/{id}/hold", tag = "holds", request_body = Reason,
    params(("id" = String, Path, description = "the recording")),
    responses((status = 200, description = "held"), (status = 409, description = "already held")))]
pub async fn set(
    State(s): State<WebState>,
    Auth(p): Auth,
    Path(id): Path<String>,
    b: Result<Json<Reason>, JsonRejection>,
) -> Result<Json<holds::HoldResult>, ApiError> {
    p.require_any(&[crate::ops::access::Role::Compliance])?;
    let r = body(b)?;
    Ok(Json(holds::set_hold(&s.store, &s.archive, &p, uuid(&id, "id")?, &r.reason).await?))
}

/// Asks for (first person) or confirms (a second person) a release.
#[utoipa::path(post, path = "/api/v1/recordings/{id}/hold/release", tag = "holds", request_body = Reason,
    params(("id" = String, Path, description = "the recording")),
    responses((status = 200, description = "requested, released or lifted"),
              (status = 409, description = "the same person twice, or not held")))]
pub async fn release(
    State(s): State<WebState>,
    Auth(p): Auth,
    Path(id): Path<String>,
    b: Result<Json<Reason>, JsonRejection>,
) -> Result<Json<holds::HoldResult>, ApiError> {
    p.require_any(&[crate::ops::access::Role::Compliance])?;
    let r = body(b)?;
    Ok(Json(holds::release_hold(&s.store, &s.archive, &p, uuid(&id, "id")?, &r.reason).await?))
}
