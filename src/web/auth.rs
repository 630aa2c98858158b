//! Who is asking, from where, and whether the browser may ask.
//!
//! - [`Auth`] is the extractor of every route but `/healthz` and
//!   `/readyz`: a handler that takes it cannot forget to authenticate. A
//!   bearer token wins over a cookie; neither, or an invalid one, is 401.
//! - [`client_address`]: the peer's address, or — only when the peer is a
//!   trusted proxy (`http.trusted_proxies`) — the last address in
//!   `X-Forwarded-For` that is not a trusted proxy.
//! - [`guard`] (middleware): refuses a state-changing request made with a
//!   session cookie (or a login) from a foreign `Origin` or a cross-site
//!   `Sec-Fetch-Site`, and sets the browser-safety headers on every answer.

use std::net::{IpAddr, SocketAddr};

use axum::extract::{ConnectInfo, FromRequestParts, Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, Method, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::WebState;
use super::error::ApiError;
use crate::ops::OpsError;
use crate::ops::access::Person;
use crate::ops::users;

/// The session cookie's name.
pub const COOKIE: &str = "huifang_session";

/// An authenticated person.
#[derive(Debug, Clone)]
pub struct Auth(pub Person);

/// The value of the session cookie, if the request has one.
pub fn session_cookie(h: &HeaderMap) -> Option<String> {
    h.get_all(header::COOKIE).iter().filter_map(|v| v.to_str().ok()).flat_map(|v| v.split(';')).find_map(
        |kv| {
            let (k, v) = kv.trim().split_once('=')?;
            (k == COOKIE && !v.is_empty()).then(|| v.to_string())
        },
    )
}

fn bearer(h: &HeaderMap) -> Option<&str> {
    let v = h.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = v.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim()).filter(|t| !t.is_empty())
}

/// The client's address (see the module docs).
pub fn client_address(s: &WebState, parts_headers: &HeaderMap, peer: Option<SocketAddr>) -> Option<IpAddr> {
    let peer = peer?.ip();
    if !s.cfg.trusted_proxies.contains(&peer) {
        return Some(peer);
    }
    let forwarded = parts_headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|a| a.trim().parse::<IpAddr>().ok())
        .collect::<Vec<_>>();
    Some(forwarded.into_iter().rev().find(|a| !s.cfg.trusted_proxies.contains(a)).unwrap_or(peer))
}

/// Whether the request came over HTTPS (huifang's own TLS, or a trusted
/// proxy's `X-Forwarded-Proto: https`).
pub fn is_https(s: &WebState, h: &HeaderMap, peer: Option<SocketAddr>) -> bool {
    s.cfg.tls.is_some()
        || peer.is_some_and(|p| s.cfg.trusted_proxies.contains(&p.ip()))
            && h.get("x-forwarded-proto")
                .and_then(|v| v.to_str().ok())
                .is_some_and(|v| v.eq_ignore_ascii_case("https"))
}

pub(super) fn peer(parts: &Parts) -> Option<SocketAddr> {
    parts.extensions.get::<ConnectInfo<SocketAddr>>().map(|c| c.0)
}

impl FromRequestParts<WebState> for Auth {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, s: &WebState) -> Result<Self, Self::Rejection> {
        let cred = Credential::of(s, &parts.headers, peer(parts));
        cred.person(s).await?.map(Auth).ok_or(ApiError::Unauthenticated)
    }
}

/// What a request came with: a bearer token or a session cookie, and the
/// client's address. Kept by a WebSocket to ask again, now and then,
/// whether the session or token still holds.
#[derive(Clone)]
pub struct Credential {
    bearer: Option<String>,
    cookie: Option<String>,
    address: Option<String>,
}

impl Credential {
    /// The credential of a request's headers.
    pub fn of(s: &WebState, h: &HeaderMap, peer: Option<SocketAddr>) -> Credential {
        Credential {
            bearer: bearer(h).map(str::to_string),
            cookie: session_cookie(h),
            address: client_address(s, h, peer).map(|a| a.to_string()),
        }
    }

    /// The person it stands for now, if any (a token first, then the
    /// cookie).
    pub async fn person(&self, s: &WebState) -> Result<Option<Person>, OpsError> {
        if let Some(token) = &self.bearer {
            users::token_person(&s.store, token, self.address.as_deref()).await
        } else if let Some(cookie) = &self.cookie {
            users::session_person(&s.store, &s.auth, cookie, self.address.as_deref()).await
        } else {
            Ok(None)
        }
    }
}

/// The origins a browser may change state from: the one the request's
/// `Host` names (with this request's scheme), and `http.allowed_origins`.
fn origin_allowed(s: &WebState, h: &HeaderMap, https: bool, origin: &str) -> bool {
    let origin = origin.trim_end_matches('/');
    if s.cfg.allowed_origins.iter().any(|o| o.trim_end_matches('/').eq_ignore_ascii_case(origin)) {
        return true;
    }
    let Some(host) = h.get(header::HOST).and_then(|v| v.to_str().ok()) else { return false };
    let own = format!("{}://{host}", if https { "https" } else { "http" });
    own.eq_ignore_ascii_case(origin)
}

/// Whether a request is one a foreign page must not make: it changes state
/// (or opens a WebSocket) and rides on the browser's cookie.
fn needs_origin_check(method: &Method, h: &HeaderMap) -> bool {
    let upgrade = h.get(header::UPGRADE).is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"websocket"));
    let changes = !matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS);
    (changes || upgrade) && bearer(h).is_none()
}

/// Middleware: the origin check, then the browser-safety headers.
pub async fn guard(State(s): State<WebState>, req: Request, next: Next) -> Response {
    let peer = req.extensions().get::<ConnectInfo<SocketAddr>>().map(|c| c.0);
    let h = req.headers();
    if needs_origin_check(req.method(), h) {
        let https = is_https(&s, h, peer);
        let foreign = match h.get(header::ORIGIN).and_then(|v| v.to_str().ok()) {
            Some(o) => !origin_allowed(&s, h, https, o),
            None => h
                .get("sec-fetch-site")
                .and_then(|v| v.to_str().ok())
                .is_some_and(|v| !matches!(v, "same-origin" | "none")),
        };
        if foreign {
            let mut r = ApiError::ForeignOrigin.into_response();
            safety_headers(r.headers_mut(), false);
            return r;
        }
    }
    let docs = req.uri().path().starts_with("/api/docs");
    let mut r = next.run(req).await;
    safety_headers(r.headers_mut(), docs);
    r
}

fn safety_headers(h: &mut HeaderMap, docs: bool) {
    // the API browser (vendored Swagger UI) sets styles inline
    let csp = if docs {
        "default-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; frame-ancestors 'none'; base-uri 'none'"
    } else {
        "default-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
    };
    h.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(csp));
    h.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    h.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.entry(header::CACHE_CONTROL).or_insert(HeaderValue::from_static("no-store"));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cookies_and_bearer_tokens_are_found() {
        let mut h = HeaderMap::new();
        h.insert(header::COOKIE, HeaderValue::from_static("a=1; huifang_session=abc; b=2"));
        assert_eq!(session_cookie(&h).as_deref(), Some("abc"));
        h.insert(header::AUTHORIZATION, HeaderValue::from_static("Bearer hf_x"));
        assert_eq!(bearer(&h), Some("hf_x"));
        h.insert(header::AUTHORIZATION, HeaderValue::from_static("Basic abc"));
        assert_eq!(bearer(&h), None);
    }

    #[test]
    fn only_cookie_borne_changes_and_upgrades_are_origin_checked() {
        let h = HeaderMap::new();
        assert!(!needs_origin_check(&Method::GET, &h));
        assert!(needs_origin_check(&Method::POST, &h));
        assert!(needs_origin_check(&Method::DELETE, &h));
        let mut up = HeaderMap::new();
        up.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
        assert!(needs_origin_check(&Method::GET, &up));
        let mut tok = HeaderMap::new();
        tok.insert(header::AUTHORIZATION, HeaderValue::from_static("Bearer hf_x"));
        assert!(!needs_origin_check(&Method::POST, &tok));
    }
}
