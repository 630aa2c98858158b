//! `/healthz` (open), `/readyz` and `/metrics` (authenticated).

use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use super::WebState;
use super::auth::Auth;
use super::error::ApiError;
use crate::ops::access::Role;

/// Alive: no data, no authentication.
#[utoipa::path(get, path = "/healthz", tag = "system", security(()),
    responses((status = 200, description = "ok")))]
pub async fn healthz() -> &'static str {
    "ok\n"
}

/// Ready to serve: the database answers. Only "ok" or "not ready".
#[utoipa::path(get, path = "/readyz", tag = "system",
    responses((status = 200, description = "ok"), (status = 503, description = "not ready")))]
pub async fn readyz(State(s): State<WebState>, _who: Auth) -> Response {
    match s.store.recordings_in_flight().await {
        Ok(_) => (StatusCode::OK, "ok\n").into_response(),
        Err(_) => (StatusCode::SERVICE_UNAVAILABLE, "not ready\n").into_response(),
    }
}

/// Prometheus metrics (the `monitor` role).
#[utoipa::path(get, path = "/metrics", tag = "system",
    responses((status = 200, description = "Prometheus text", content_type = "text/plain"),
              (status = 403, description = "not a monitor")))]
pub async fn metrics(State(s): State<WebState>, Auth(p): Auth) -> Result<Response, ApiError> {
    p.require_any(&[Role::Monitor])?;
    let text = super::metrics::render(&s).await?;
    let mut r = text.into_response();
    r.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"));
    Ok(r)
}
