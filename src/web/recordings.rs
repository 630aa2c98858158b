//! A client's recordings and calls, and a recording's audio.

use axum::Json;
use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::json;
use uuid::Uuid;

use super::WebState;
use super::auth::Auth;
use super::error::ApiError;
use crate::ops::OpsError;
use crate::ops::recordings::{self, AudioUse, ListCalls};
use crate::store::ClientCall;

/// Paging and dates of a list.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub struct ListParams {
    /// Page size, 1..=500 (default 100).
    pub limit: Option<i64>,
    /// The `next` of the previous page.
    pub cursor: Option<String>,
    /// Calls started on or after this UTC date (YYYY-MM-DD).
    pub from: Option<String>,
    /// Calls started on or before this UTC date (YYYY-MM-DD).
    pub to: Option<String>,
}

fn list(p: ListParams, recorded_only: bool) -> Result<ListCalls, ApiError> {
    Ok(ListCalls {
        recorded_only,
        from: p.from.as_deref().map(|d| recordings::day_start(d, "from")).transpose()?,
        to: p
            .to
            .as_deref()
            .map(|d| recordings::day_start(d, "to"))
            .transpose()?
            .map(|t| t + chrono::Duration::days(1)),
        cursor: p.cursor,
        limit: Some(p.limit.unwrap_or(recordings::DEFAULT_PAGE)),
    })
}

/// One recording in a client's list (the API contract).
pub fn recording_item(c: &ClientCall) -> serde_json::Value {
    json!({
        "recording_id": c.recording_id,
        "call_id": c.call_id,
        "task_id": c.task_id,
        "client_id": c.client_id,
        "agent_id": c.agent_id,
        "started_at": crate::audit::time_text(c.started_at),
        "duration_ms": c.duration_ms,
        "outcome": c.outcome,
        "state": c.state,
        "sha256": c.sha256,
        "archive_key": c.archive_key,
        "retain_until": c.retain_until.map(crate::audit::time_text),
        "legal_hold": c.legal_hold,
        "hold_state": c.hold_state,
        "hold_requested_by": c.hold_requested_by,
        "archived": c.archived,
    })
}

fn query_params(
    q: Result<Query<ListParams>, axum::extract::rejection::QueryRejection>,
) -> Result<ListParams, ApiError> {
    q.map(|Query(p)| p).map_err(|e| ApiError::BadRequest("query", e.body_text()))
}

/// The recordings of a client, oldest first, a page at a time.
#[utoipa::path(get, path = "/api/v1/clients/{client_id}/recordings", tag = "recordings",
    params(("client_id" = String, Path, description = "the client's id"), ListParams),
    responses((status = 200, description = "{items, next}"), (status = 403, description = "not the person's client"),
              (status = 404, description = "no such client")))]
pub async fn client_recordings(
    State(s): State<WebState>,
    Auth(p): Auth,
    Path(client_id): Path<String>,
    q: Result<Query<ListParams>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let q = list(query_params(q)?, true)?;
    let page = recordings::client_calls(&s.store, &p, &client_id, &q).await?;
    Ok(Json(json!({"items": page.items.iter().map(recording_item).collect::<Vec<_>>(), "next": page.next})))
}

/// Every call of a client (with its recording when it has one), oldest
/// first: the same rows as `huifang recordings --client ID --json`.
#[utoipa::path(get, path = "/api/v1/clients/{client_id}/calls", tag = "recordings",
    params(("client_id" = String, Path, description = "the client's id"), ListParams),
    responses((status = 200, description = "{items, next}"), (status = 403, description = "not the person's client")))]
pub async fn client_calls(
    State(s): State<WebState>,
    Auth(p): Auth,
    Path(client_id): Path<String>,
    q: Result<Query<ListParams>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let q = list(query_params(q)?, false)?;
    let page = recordings::client_calls(&s.store, &p, &client_id, &q).await?;
    Ok(Json(json!({"items": page.items, "next": page.next})))
}

/// A call's trace: both legs' times and statuses, the outcome, the
/// recording (no phone URIs).
#[utoipa::path(get, path = "/api/v1/calls/{id}", tag = "recordings",
    params(("id" = String, Path, description = "the call")),
    responses((status = 200, description = "the trace"), (status = 403, description = "not a call you may see")))]
pub async fn call(
    State(s): State<WebState>,
    Auth(p): Auth,
    Path(id): Path<String>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let id = super::body::uuid(&id, "id")?;
    Ok(Json(recordings::call_trace(&s.store, &p, id).await?))
}

/// `?download=1`
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub struct AudioParams {
    /// `1`: as an attachment (audited as a download).
    pub download: Option<u8>,
}

/// A recording's WAV, with byte ranges (206, 416) for players.
#[utoipa::path(get, path = "/api/v1/recordings/{id}/audio", tag = "recordings",
    params(("id" = Uuid, Path, description = "the recording"), AudioParams),
    responses((status = 200, description = "the WAV", content_type = "audio/wav"),
              (status = 206, description = "one byte range"), (status = 403, description = "refused (audited)"),
              (status = 416, description = "range outside the file")))]
pub async fn audio(
    State(s): State<WebState>,
    Auth(p): Auth,
    Path(id): Path<String>,
    q: Result<Query<AudioParams>, axum::extract::rejection::QueryRejection>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let id =
        Uuid::parse_str(&id).map_err(|_| ApiError::BadRequest("id", "not a recording id (UUID)".into()))?;
    let Query(q) = q.map_err(|e| ApiError::BadRequest("query", e.body_text()))?;
    let usage = if q.download == Some(1) { AudioUse::Download } else { AudioUse::Play };
    let range = match headers.get(header::RANGE).and_then(|v| v.to_str().ok()).map(recordings::parse_range) {
        Some(Ok(r)) if usage == AudioUse::Play => Some(r),
        _ => None,
    };
    let audio =
        recordings::open_audio(&s.store, &s.archive, &p, s.cfg.agents_may_play, id, range, usage).await?;
    if usage == AudioUse::Download {
        recordings::audit_download(&s.store, &p, id, audio.source, audio.len).await?;
    } else {
        s.plays.served(&p, id, audio.source, audio.start, audio.len);
    }
    let status = if audio.partial { StatusCode::PARTIAL_CONTENT } else { StatusCode::OK };
    let mut r = Response::builder()
        .status(status)
        .header(header::CONTENT_TYPE, "audio/wav")
        .header(header::ACCEPT_RANGES, "bytes")
        .header(header::CONTENT_LENGTH, audio.len)
        .header(header::CACHE_CONTROL, "no-store")
        .body(Body::from_stream(tokio_util::io::ReaderStream::new(audio.body)))
        .map_err(|e| OpsError::Internal(format!("building the answer: {e}")))?;
    if audio.partial {
        let v = format!("bytes {}-{}/{}", audio.start, audio.start + audio.len.max(1) - 1, audio.size);
        r.headers_mut().insert(header::CONTENT_RANGE, HeaderValue::from_str(&v).expect("ascii"));
    }
    if usage == AudioUse::Download {
        let v = format!("attachment; filename=\"{id}.wav\"");
        r.headers_mut().insert(header::CONTENT_DISPOSITION, HeaderValue::from_str(&v).expect("ascii"));
    }
    Ok(r.into_response())
}

/// `?points=N`
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub struct WaveformParams {
    /// Slices, 1..=4000 (default 800).
    pub points: Option<usize>,
}

/// A recording's waveform: each channel's peak per slice (the agent left,
/// the client right), computed on the server. Whoever may play the
/// recording may see it; a refusal is audited.
#[utoipa::path(get, path = "/api/v1/recordings/{id}/waveform", tag = "recordings",
    params(("id" = Uuid, Path, description = "the recording"), WaveformParams),
    responses((status = 200, description = "{sample_rate, duration_ms, frames_per_point, agent: [0..1000], client: [..]}"),
              (status = 403, description = "refused (audited)")))]
pub async fn waveform(
    State(s): State<WebState>,
    Auth(p): Auth,
    Path(id): Path<String>,
    q: Result<Query<WaveformParams>, axum::extract::rejection::QueryRejection>,
) -> Result<Response, ApiError> {
    let id = super::body::uuid(&id, "id")?;
    let Query(q) = q.map_err(|e| ApiError::BadRequest("query", e.body_text()))?;
    let points = q.points.unwrap_or(crate::ops::waveform::DEFAULT_POINTS);
    let w = recordings::waveform(&s.store, &s.archive, &p, s.cfg.agents_may_play, id, points).await?;
    // a sealed recording never changes: the browser may keep it
    let mut r = Json(w).into_response();
    r.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("private, max-age=86400"));
    Ok(r)
}
