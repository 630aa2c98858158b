//! `GET /api/v1/users` (admin): who may log in.

use axum::Json;
use axum::extract::State;
use serde_json::json;

use super::WebState;
use super::auth::Auth;
use super::error::ApiError;
use crate::ops::access::Role;

/// Every user (no password hashes).
#[utoipa::path(get, path = "/api/v1/users", tag = "users",
    responses((status = 200, description = "the users"), (status = 403, description = "not an admin")))]
pub async fn list(State(s): State<WebState>, Auth(p): Auth) -> Result<Json<serde_json::Value>, ApiError> {
    p.require_any(&[Role::Admin])?;
    let users = crate::ops::users::list_users(&s.store).await?;
    Ok(Json(json!({"items": users, "next": null})))
}
