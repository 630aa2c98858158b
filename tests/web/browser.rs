//! Browser safety: origins, fetch metadata, headers.

use crate::fixture::{PASSWORD, Site};

#[tokio::test]
async fn a_foreign_origin_cannot_change_state_or_open_a_websocket() {
    let site = Site::new().await;
    let body = serde_json::json!({"login": "compliance1", "password": PASSWORD});
    let r = site
        .http
        .post(site.url("/api/v1/session"))
        .header("origin", "http://evil.example")
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    assert_eq!(site.audit("session.login").await.len(), 0, "nothing happened");
    let own = site.base.clone();
    let r =
        site.http.post(site.url("/api/v1/session")).header("origin", &own).json(&body).send().await.unwrap();
    assert_eq!(r.status(), 200, "the page's own origin may log in");
    let cookie = Site::cookie_of(&r);
    let r = site
        .http
        .delete(site.url("/api/v1/session"))
        .header("cookie", &cookie)
        .header("sec-fetch-site", "cross-site")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403, "a cross-site logout is refused");
    let r = site
        .http
        .get(site.url("/api/v1/session"))
        .header("cookie", &cookie)
        .header("connection", "upgrade")
        .header("upgrade", "websocket")
        .header("origin", "http://evil.example")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403, "a WebSocket upgrade from a foreign origin is refused");
    let me = site.http.get(site.url("/api/v1/session")).header("cookie", &cookie).send().await.unwrap();
    assert_eq!(me.status(), 200, "the session survived the foreign attempts");
}

#[tokio::test]
async fn every_answer_carries_the_safety_headers() {
    let site = Site::new().await;
    for path in ["/healthz", "/api/v1/session", "/no/such/route"] {
        let r = site.http.get(site.url(path)).send().await.unwrap();
        let h = r.headers();
        let csp = h.get("content-security-policy").unwrap().to_str().unwrap();
        assert!(
            csp.contains("default-src 'self'") && csp.contains("frame-ancestors 'none'"),
            "{path}: {csp}"
        );
        assert_eq!(h.get("x-content-type-options").unwrap(), "nosniff");
        assert_eq!(h.get("referrer-policy").unwrap(), "no-referrer");
    }
    let r = site.http.get(site.url("/no/such/route")).send().await.unwrap();
    assert_eq!(r.status(), 404);
}

#[tokio::test]
async fn a_trusted_proxy_names_the_client_and_the_scheme_and_nobody_else_does() {
    let body = serde_json::json!({"login": "compliance1", "password": PASSWORD});
    // behind the proxy on 127.0.0.1: its X-Forwarded-For and -Proto are believed
    let site = Site::behind_proxy().await;
    let r = site
        .http
        .post(site.url("/api/v1/session"))
        .header("x-forwarded-for", "198.51.100.23, 203.0.113.7")
        .header("x-forwarded-proto", "https")
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert!(r.headers().get("set-cookie").unwrap().to_str().unwrap().contains("; Secure"));
    let login = site.audit("session.login").await;
    assert_eq!(login[0].detail["address"], "203.0.113.7", "the last address the proxy saw");
    // without trust, the same headers are ignored
    let site = Site::new().await;
    let r = site
        .http
        .post(site.url("/api/v1/session"))
        .header("x-forwarded-for", "203.0.113.7")
        .header("x-forwarded-proto", "https")
        .json(&body)
        .send()
        .await
        .unwrap();
    assert!(!r.headers().get("set-cookie").unwrap().to_str().unwrap().contains("Secure"));
    let login = site.audit("session.login").await;
    assert_eq!(login[0].detail["address"], "127.0.0.1");
}
