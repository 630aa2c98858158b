//! The web door's one error type: every failure becomes an RFC 9457
//! `application/problem+json` answer with the status its cause deserves.
//! Database and internal errors are logged and never shown.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;
use tracing::error;

use crate::ops::OpsError;

/// A failed request.
#[derive(Debug)]
pub enum ApiError {
    /// No valid session or token (401).
    Unauthenticated,
    /// An operation failed (status by cause).
    Ops(OpsError),
    /// The request itself is malformed: `field` and why (400).
    BadRequest(&'static str, String),
    /// A state-changing request from a foreign origin (403).
    ForeignOrigin,
    /// No such route (404).
    NoRoute,
}

impl From<OpsError> for ApiError {
    fn from(e: OpsError) -> Self {
        ApiError::Ops(e)
    }
}

fn problem(status: StatusCode, title: &str, detail: String, extra: serde_json::Value) -> Response {
    let mut body = json!({
        "type": "about:blank",
        "title": title,
        "status": status.as_u16(),
        "detail": detail,
    });
    if let (Some(b), Some(e)) = (body.as_object_mut(), extra.as_object()) {
        b.extend(e.clone());
    }
    let mut r = (status, body.to_string()).into_response();
    r.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/problem+json"));
    r
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        match self {
            ApiError::Unauthenticated => {
                let mut r = problem(
                    StatusCode::UNAUTHORIZED,
                    "Unauthorized",
                    "log in (POST /api/v1/session) or send an API token (Authorization: Bearer)".into(),
                    json!({}),
                );
                r.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
                r
            }
            ApiError::BadRequest(field, reason) => problem(
                StatusCode::BAD_REQUEST,
                "Bad Request",
                format!("{field}: {reason}"),
                json!({"field": field, "reason": reason}),
            ),
            ApiError::ForeignOrigin => problem(
                StatusCode::FORBIDDEN,
                "Forbidden",
                "a state-changing request from another origin is refused".into(),
                json!({"field": "Origin"}),
            ),
            ApiError::NoRoute => {
                problem(StatusCode::NOT_FOUND, "Not Found", "no such route".into(), json!({}))
            }
            ApiError::Ops(e) => match e {
                OpsError::Invalid { field, reason } => problem(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "Unprocessable Content",
                    format!("{field}: {reason}"),
                    json!({"field": field, "reason": reason}),
                ),
                OpsError::NotFound { what, key } => {
                    problem(StatusCode::NOT_FOUND, "Not Found", format!("{what} {key} not found"), json!({}))
                }
                OpsError::Forbidden(why) => problem(StatusCode::FORBIDDEN, "Forbidden", why, json!({})),
                OpsError::Rule { code, reason } => {
                    problem(StatusCode::FORBIDDEN, "Forbidden", reason, json!({"code": code}))
                }
                OpsError::BadCredentials => problem(
                    StatusCode::UNAUTHORIZED,
                    "Unauthorized",
                    "login or password is wrong".into(),
                    json!({}),
                ),
                OpsError::Locked { until } => {
                    let secs = (until - chrono::Utc::now()).num_seconds().max(1);
                    let mut r = problem(
                        StatusCode::TOO_MANY_REQUESTS,
                        "Too Many Requests",
                        format!("too many failed logins; try again after {}", crate::audit::time_text(until)),
                        json!({}),
                    );
                    if let Ok(v) = HeaderValue::from_str(&secs.to_string()) {
                        r.headers_mut().insert(header::RETRY_AFTER, v);
                    }
                    r
                }
                OpsError::RangeNotSatisfiable { size } => {
                    let mut r = problem(
                        StatusCode::RANGE_NOT_SATISFIABLE,
                        "Range Not Satisfiable",
                        format!("the recording has {size} bytes"),
                        json!({"field": "Range"}),
                    );
                    if let Ok(v) = HeaderValue::from_str(&format!("bytes */{size}")) {
                        r.headers_mut().insert(header::CONTENT_RANGE, v);
                    }
                    r
                }
                OpsError::Conflict(why) => problem(StatusCode::CONFLICT, "Conflict", why, json!({})),
                OpsError::State { code, reason } => {
                    problem(StatusCode::CONFLICT, "Conflict", reason, json!({"code": code}))
                }
                e @ (OpsError::Store(_) | OpsError::Archive(_) | OpsError::Internal(_)) => {
                    error!(error = %e, "request failed");
                    problem(
                        StatusCode::SERVICE_UNAVAILABLE,
                        "Service Unavailable",
                        "the database or the archive failed; try again".into(),
                        json!({}),
                    )
                }
            },
        }
    }
}
