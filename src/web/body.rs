//! Request bodies: JSON with no unknown keys; a body that does not parse
//! is a 400 naming why.

use axum::Json;
use axum::extract::rejection::JsonRejection;

use super::error::ApiError;

/// The body, or [`ApiError::BadRequest`] on field `body`.
pub fn body<T>(b: Result<Json<T>, JsonRejection>) -> Result<T, ApiError> {
    b.map(|Json(t)| t).map_err(|e| ApiError::BadRequest("body", e.body_text()))
}

/// A recording, call or record id from the path.
pub fn uuid(s: &str, field: &'static str) -> Result<uuid::Uuid, ApiError> {
    uuid::Uuid::parse_str(s).map_err(|_| ApiError::BadRequest(field, "not an id (UUID)".into()))
}
