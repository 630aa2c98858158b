//! `GET /api/v1/audit?recording_id=ID` or `?client_id=ID` (compliance).

use axum::Json;
use axum::extract::{Query, State};
use serde::Deserialize;
use serde_json::json;
use uuid::Uuid;

use super::WebState;
use super::auth::Auth;
use super::error::ApiError;
use crate::ops::audit::{self, EventFilter};

/// Which events.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub struct AuditParams {
    /// The events of this recording (and its call).
    pub recording_id: Option<String>,
    /// The events of every call and recording of this client.
    pub client_id: Option<String>,
}

/// Audit events in chain order, with their hashes.
#[utoipa::path(get, path = "/api/v1/audit", tag = "audit", params(AuditParams),
    responses((status = 200, description = "{items}"), (status = 403, description = "not compliance")))]
pub async fn events(
    State(s): State<WebState>,
    Auth(p): Auth,
    q: Result<Query<AuditParams>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let Query(q) = q.map_err(|e| ApiError::BadRequest("query", e.body_text()))?;
    let recording_id = q
        .recording_id
        .as_deref()
        .map(|r| Uuid::parse_str(r).map_err(|_| ApiError::BadRequest("recording_id", "not a UUID".into())))
        .transpose()?;
    let items = audit::events(&s.store, &p, &EventFilter { recording_id, client_id: q.client_id }).await?;
    Ok(Json(json!({"items": items, "next": null})))
}
