//! `GET /api/v1/clients/{client_id}/export` (`?from=&to=`) and
//! `GET /api/v1/calls/{id}/export`: the evidence export as a streamed zip
//! (`ops::export`). The zip is written on a blocking thread into a pipe
//! whose other end is the response body: the export's audit events are
//! written before the first byte, and an export of any size holds a few
//! buffers in memory. Compliance only.

use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use tracing::warn;

use super::WebState;
use super::auth::Auth;
use super::body::uuid;
use super::error::ApiError;
use crate::ops::export::{self, Scope};
use crate::ops::recordings::day_start;

/// The days of a client's export.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub struct ExportParams {
    /// Calls on or after this day (YYYY-MM-DD).
    pub from: Option<String>,
    /// Calls on or before this day (YYYY-MM-DD).
    pub to: Option<String>,
}

async fn stream(s: WebState, p: crate::ops::access::Person, scope: Scope) -> Result<Response, ApiError> {
    let ev = export::gather(&s.store, &s.archive, &p, &scope, chrono::Utc::now()).await?;
    let (writer, reader) = tokio::io::duplex(256 * 1024);
    let (store, archive, ev2) = (s.store.clone(), s.archive.clone(), ev.clone());
    let handle = tokio::runtime::Handle::current();
    tokio::task::spawn_blocking(move || {
        let out = tokio_util::io::SyncIoBridge::new_with_handle(writer, handle.clone());
        if let Err(e) = export::write_zip(&ev2, &store, &archive, &handle, out) {
            // the body ends early: the client's zip is incomplete and fails to open
            warn!(export = %ev2.name, error = %e, "evidence export cut short");
        }
    });
    let mut r =
        Response::new(Body::from_stream(tokio_util::io::ReaderStream::with_capacity(reader, 64 * 1024)));
    *r.status_mut() = StatusCode::OK;
    let h = r.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/zip"));
    if let Ok(v) = HeaderValue::from_str(&format!("attachment; filename=\"{}.zip\"", ev.name)) {
        h.insert(header::CONTENT_DISPOSITION, v);
    }
    Ok(r.into_response())
}

/// Everything about a client as a zip an inspector checks offline: the
/// archived WAVs, manifests, one vCon per call, records and reviews, the
/// audit events with their links to the chain's head, SHA256SUMS,
/// VERIFY.md and verify.py. An audit event itself.
#[utoipa::path(get, path = "/api/v1/clients/{client_id}/export", tag = "compliance",
    params(("client_id" = String, Path, description = "the client"), ExportParams),
    responses((status = 200, description = "application/zip, streamed"), (status = 403, description = "not compliance"),
              (status = 404, description = "no such client")))]
pub async fn client(
    State(s): State<WebState>,
    Auth(p): Auth,
    Path(client_id): Path<String>,
    q: Result<Query<ExportParams>, axum::extract::rejection::QueryRejection>,
) -> Result<Response, ApiError> {
    let Query(q) = q.map_err(|e| ApiError::BadRequest("query", e.body_text()))?;
    let from = q.from.as_deref().map(|d| day_start(d, "from")).transpose()?;
    let to = q.to.as_deref().map(|d| day_start(d, "to")).transpose()?.map(|t| t + chrono::Duration::days(1));
    stream(s, p, Scope { client_id: Some(client_id), call_id: None, from, to }).await
}

/// One call's evidence (its recording, vCon, record, audit events).
#[utoipa::path(get, path = "/api/v1/calls/{id}/export", tag = "compliance",
    params(("id" = String, Path, description = "the call")),
    responses((status = 200, description = "application/zip, streamed"), (status = 403, description = "not compliance"),
              (status = 404, description = "no such call")))]
pub async fn call(
    State(s): State<WebState>,
    Auth(p): Auth,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let id = uuid(&id, "id")?;
    stream(s, p, Scope { client_id: None, call_id: Some(id), from: None, to: None }).await
}
