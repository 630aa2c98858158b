//! `POST /api/v1/session` (log in), `GET` (who am I), `DELETE` (log out).

use axum::Json;
use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::json;

use super::WebState;
use super::auth::{Auth, COOKIE, client_address, is_https, session_cookie};
use super::error::ApiError;
use crate::ops::access::Person;
use crate::ops::users;

/// A login.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Login {
    /// The login.
    pub login: String,
    /// The password.
    pub password: String,
}

fn person_json(p: &Person) -> serde_json::Value {
    json!({
        "login": p.login,
        "roles": p.roles,
        "staff_id": p.staff_id,
        "branches": p.branches,
    })
}

/// Logs in: sets the session cookie.
#[utoipa::path(post, path = "/api/v1/session", request_body = Login, tag = "session",
    responses((status = 200, description = "logged in; the cookie is set"),
              (status = 401, description = "login or password is wrong"),
              (status = 429, description = "locked after too many failures")))]
pub async fn login(
    State(s): State<WebState>,
    ConnectInfo(peer): ConnectInfo<std::net::SocketAddr>,
    headers: HeaderMap,
    body: Result<Json<Login>, axum::extract::rejection::JsonRejection>,
) -> Result<Response, ApiError> {
    let Json(body) = body.map_err(|e| ApiError::BadRequest("body", e.body_text()))?;
    let address = client_address(&s, &headers, Some(peer)).map(|a| a.to_string());
    let session = users::login(&s.store, &s.auth, &body.login, body.password, address.as_deref()).await?;
    let secure = if is_https(&s, &headers, Some(peer)) { "; Secure" } else { "" };
    let max_age = (session.expires_at - chrono::Utc::now()).num_seconds().max(0);
    let cookie =
        format!("{COOKIE}={}; Path=/; HttpOnly; SameSite=Strict; Max-Age={max_age}{secure}", session.cookie);
    let mut r = Json(json!({
        "person": person_json(&session.person),
        "expires_at": crate::audit::time_text(session.expires_at),
    }))
    .into_response();
    r.headers_mut().insert(
        header::SET_COOKIE,
        HeaderValue::from_str(&cookie).map_err(|_| ApiError::BadRequest("cookie", "unencodable".into()))?,
    );
    Ok(r)
}

/// Who is logged in (or whose token this is).
#[utoipa::path(get, path = "/api/v1/session", tag = "session",
    responses((status = 200, description = "the person"), (status = 401, description = "no session or token")))]
pub async fn whoami(Auth(p): Auth) -> Json<serde_json::Value> {
    Json(json!({"person": person_json(&p)}))
}

/// Logs out: ends the session, clears the cookie.
#[utoipa::path(delete, path = "/api/v1/session", tag = "session",
    responses((status = 204, description = "logged out"), (status = 401, description = "no session")))]
pub async fn logout(
    State(s): State<WebState>,
    Auth(p): Auth,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    if let Some(cookie) = session_cookie(&headers) {
        users::logout(&s.store, &cookie, &p).await?;
    }
    let mut r = StatusCode::NO_CONTENT.into_response();
    r.headers_mut().insert(
        header::SET_COOKIE,
        HeaderValue::from_static("huifang_session=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0"),
    );
    Ok(r)
}
