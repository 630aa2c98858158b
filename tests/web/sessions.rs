//! Logins, lockout, logout, expiry, disabled users, tokens.

use huifang::ops::access::Role;
use huifang::ops::users;

use crate::fixture::{PASSWORD, Site, login_of};

#[tokio::test]
async fn a_login_sets_a_strict_http_only_cookie_and_logout_ends_it() {
    let site = Site::new().await;
    let r = site.login("compliance1", PASSWORD).await;
    assert_eq!(r.status(), 200);
    let set = r.headers().get("set-cookie").unwrap().to_str().unwrap().to_string();
    assert!(set.contains("HttpOnly") && set.contains("SameSite=Strict") && set.contains("Path=/"), "{set}");
    assert!(!set.contains("Secure"), "plain HTTP: no Secure flag ({set})");
    let cookie = Site::cookie_of(&r);
    let me = site.http.get(site.url("/api/v1/session")).header("cookie", &cookie).send().await.unwrap();
    assert_eq!(me.status(), 200);
    let v: serde_json::Value = me.json().await.unwrap();
    assert_eq!(v["person"]["login"], "compliance1");
    let out = site.http.delete(site.url("/api/v1/session")).header("cookie", &cookie).send().await.unwrap();
    assert_eq!(out.status(), 204);
    let me = site.http.get(site.url("/api/v1/session")).header("cookie", &cookie).send().await.unwrap();
    assert_eq!(me.status(), 401, "the session ended with the logout");
    assert_eq!(site.audit("session.login").await.len(), 1);
    assert_eq!(site.audit("session.logout").await.len(), 1);
}

#[tokio::test]
async fn unknown_logins_and_wrong_passwords_get_the_same_answer_and_five_lock_the_login() {
    let site = Site::new().await;
    let unknown = site.login("nobody", "some password 1").await;
    let wrong = site.login("admin1", "wrong password 1").await;
    assert_eq!(unknown.status(), 401);
    assert_eq!(wrong.status(), 401);
    let (a, b) = (unknown.text().await.unwrap(), wrong.text().await.unwrap());
    assert_eq!(a, b, "the answer must not tell an unknown login from a wrong password");
    for _ in 0..4 {
        assert_eq!(site.login("admin1", "wrong password 1").await.status(), 401);
    }
    // five failures: locked, even with the right password
    let locked = site.login("admin1", PASSWORD).await;
    assert_eq!(locked.status(), 429);
    assert!(locked.headers().get("retry-after").is_some());
    let failed = site.audit("session.login_failed").await;
    assert_eq!(failed.len(), 1 + 5 + 1, "each failure and the refused attempt while locked");
    assert!(failed.iter().any(|e| e.detail["why"] == "unknown-login"));
    assert!(failed.iter().any(|e| e.detail["why"] == "wrong-password"));
    assert!(failed.iter().any(|e| e.detail["why"] == "locked"));
    let locks = site.audit("session.locked").await;
    assert_eq!(locks.len(), 1);
    assert_eq!(locks[0].subject, "admin1");
    // the lock ends after login_lock_mins
    site.db.raw("UPDATE login_throttle SET locked_until = '2000-01-01T00:00:00.000Z'").await.unwrap();
    assert_eq!(site.login("admin1", PASSWORD).await.status(), 200);
}

#[tokio::test]
async fn idle_and_absolute_timeouts_end_a_session() {
    let site = Site::new().await;
    let idle = Site::cookie_of(&site.login("supervisor1", PASSWORD).await);
    let old = Site::cookie_of(&site.login("compliance1", PASSWORD).await);
    // 31 minutes without a request (idle timeout 30)
    let past = (chrono::Utc::now() - chrono::Duration::minutes(31)).format("%Y-%m-%dT%H:%M:%S%.3fZ");
    site.db
        .raw(format!("UPDATE web_sessions SET last_seen_at = '{past}' WHERE login = 'supervisor1'"))
        .await
        .unwrap();
    // past its absolute end, though used a moment ago
    let end = (chrono::Utc::now() - chrono::Duration::seconds(1)).format("%Y-%m-%dT%H:%M:%S%.3fZ");
    site.db
        .raw(format!("UPDATE web_sessions SET expires_at = '{end}' WHERE login = 'compliance1'"))
        .await
        .unwrap();
    for c in [&idle, &old] {
        let r = site.http.get(site.url("/api/v1/session")).header("cookie", c).send().await.unwrap();
        assert_eq!(r.status(), 401);
    }
    assert_eq!(
        site.db.count("SELECT count(*) FROM web_sessions WHERE ended_why IN ('idle', 'expired')").await,
        2
    );
}

#[tokio::test]
async fn a_disabled_users_session_and_tokens_stop_working() {
    let site = Site::new().await;
    let cookie = Site::cookie_of(&site.login("admin1", PASSWORD).await);
    let token = site.token(Role::Admin).await;
    for auth in [("cookie", cookie.clone()), ("authorization", format!("Bearer {token}"))] {
        let r = site.http.get(site.url("/api/v1/users")).header(auth.0, &auth.1).send().await.unwrap();
        assert_eq!(r.status(), 200);
    }
    assert!(users::disable_user(&site.db.store, "test", &login_of(Role::Admin)).await.unwrap());
    for auth in [("cookie", cookie), ("authorization", format!("Bearer {token}"))] {
        let r = site.http.get(site.url("/api/v1/users")).header(auth.0, &auth.1).send().await.unwrap();
        assert_eq!(r.status(), 401);
    }
    assert_eq!(site.login("admin1", PASSWORD).await.status(), 401);
    assert_eq!(site.audit("user.disabled").await.len(), 1);
}

#[tokio::test]
async fn tokens_expire_and_can_be_revoked() {
    let site = Site::new().await;
    let (t1, row1) =
        users::create_token(&site.db.store, "test", "monitor1", vec![Role::Monitor], 1, None).await.unwrap();
    let (t2, row2) =
        users::create_token(&site.db.store, "test", "monitor1", vec![Role::Monitor], 1, None).await.unwrap();
    for t in [&t1, &t2] {
        let r = site.http.get(site.url("/metrics")).bearer_auth(t).send().await.unwrap();
        assert_eq!(r.status(), 200);
        let text = r.text().await.unwrap();
        assert!(text.contains("huifang_recordings{state=\"queued\"} 1"), "{text}");
    }
    site.db
        .raw(format!(
            "UPDATE api_tokens SET expires_at = '2000-01-01T00:00:00.000Z' WHERE id = '{}'",
            row1.id
        ))
        .await
        .unwrap();
    // expired: refused at the next request (every request asks the database)
    let r = site.http.get(site.url("/metrics")).bearer_auth(&t1).send().await.unwrap();
    assert_eq!(r.status(), 401, "expired");
    // t2 was used just now; revoked: refused at once
    let r = site.http.get(site.url("/metrics")).bearer_auth(&t2).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert!(users::revoke_token(&site.db.store, "test", row2.id).await.unwrap());
    let r = site.http.get(site.url("/metrics")).bearer_auth(&t2).send().await.unwrap();
    assert_eq!(r.status(), 401, "revoked");
    // a token never carries a role its user does not hold
    let e = users::create_token(&site.db.store, "test", "monitor1", vec![Role::Compliance], 1, None).await;
    assert!(e.unwrap_err().to_string().contains("does not hold the role compliance"));
}

#[tokio::test]
async fn over_tls_the_cookie_is_secure() {
    let site = Site::with_tls().await;
    assert!(site.base.starts_with("https://"));
    let r = site.login("compliance1", PASSWORD).await;
    assert_eq!(r.status(), 200);
    let set = r.headers().get("set-cookie").unwrap().to_str().unwrap().to_string();
    assert!(set.contains("; Secure"), "{set}");
    // plain HTTP on the TLS port gets no answer a browser would take
    let plain =
        reqwest::Client::new().get(site.base.replace("https://", "http://") + "/healthz").send().await;
    assert!(plain.is_err() || !plain.unwrap().status().is_success());
}

#[tokio::test]
async fn sessions_and_lockout_hold_across_two_instances_on_postgres() {
    let mut site = Site::on_postgres().await;
    let (other, server) = site.second_instance().await;
    // logged in on the first, known on the second
    let cookie = Site::cookie_of(&site.login("supervisor1", PASSWORD).await);
    let me = site.http.get(format!("{other}/api/v1/session")).header("cookie", &cookie).send().await.unwrap();
    assert_eq!(me.status(), 200);
    // used on the first too, then logged out on the second: gone on the
    // first at once
    let me = site.http.get(site.url("/api/v1/session")).header("cookie", &cookie).send().await.unwrap();
    assert_eq!(me.status(), 200);
    let out =
        site.http.delete(format!("{other}/api/v1/session")).header("cookie", &cookie).send().await.unwrap();
    assert_eq!(out.status(), 204);
    let me = site.http.get(site.url("/api/v1/session")).header("cookie", &cookie).send().await.unwrap();
    assert_eq!(me.status(), 401);
    // failures on both instances count together: 3 here, 2 there, locked everywhere
    for _ in 0..3 {
        assert_eq!(site.login("admin1", "wrong password 1").await.status(), 401);
    }
    let body = serde_json::json!({"login": "admin1", "password": "wrong password 1"});
    for _ in 0..2 {
        let r = site.http.post(format!("{other}/api/v1/session")).json(&body).send().await.unwrap();
        assert_eq!(r.status(), 401);
    }
    assert_eq!(site.login("admin1", PASSWORD).await.status(), 429);
    let right = serde_json::json!({"login": "admin1", "password": PASSWORD});
    let r = site.http.post(format!("{other}/api/v1/session")).json(&right).send().await.unwrap();
    assert_eq!(r.status(), 429);
    assert_eq!(site.audit("session.locked").await.len(), 1);
    server.shutdown(std::time::Duration::from_secs(1)).await;
}
