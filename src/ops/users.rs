//! Users, passwords, logins, browser sessions and API tokens.
//!
//! - **Passwords**: Argon2id (m = 19 MiB, t = 2, p = 1: OWASP's minimum
//!   for Argon2id), hashed on a blocking thread; at least
//!   `http.password_min_length` characters, and never containing the login.
//!   Never taken from the command line (`--password-stdin`).
//! - **Logins**: an unknown login and a wrong password get the same answer
//!   ([`OpsError::BadCredentials`]) after the same work (an unknown login
//!   is checked against a dummy hash). Failures are counted per typed login
//!   in the database, so several instances count together; after
//!   `http.login_max_failures` within `http.login_window_mins` the login is
//!   locked for `http.login_lock_mins` ([`OpsError::Locked`]). Every login,
//!   failure and lock is an audit event.
//! - **Sessions**: 32 random bytes (base64url) in an HttpOnly cookie; only
//!   their SHA-256 is stored. Valid until `http.session_idle_mins` without
//!   a request or `http.session_absolute_hours` after the login, whichever
//!   comes first, and while the user is enabled.
//! - **Tokens**: `hf_` + 32 random bytes (base64url), printed once; stored
//!   as SHA-256 with their roles (a subset of the user's) and an expiry.

use std::sync::LazyLock;

use argon2::password_hash::phc::PasswordHash;
use argon2::password_hash::{PasswordHasher, PasswordVerifier};
use argon2::{Algorithm, Argon2, Params, Version};
use base64::Engine;
use chrono::{DateTime, Duration, Utc};
use serde_json::json;
use sha2::{Digest, Sha256};
use uuid::Uuid;

use super::OpsError;
use super::access::{Person, Role, Via};
use crate::audit::{AuditAction, AuditEvent, SYSTEM_ACTOR};
use crate::config::HttpConfig;
use crate::store::{SessionRow, Store, TokenRow, UserRow};

/// The numbers of logins and sessions (from `[http]`).
#[derive(Debug, Clone)]
pub struct AuthSettings {
    /// Idle timeout of a session.
    pub idle: Duration,
    /// Absolute lifetime of a session.
    pub absolute: Duration,
    /// Failures that lock a login…
    pub max_failures: i64,
    /// …within this window…
    pub window: Duration,
    /// …for this long.
    pub lock: Duration,
    /// Shortest password.
    pub password_min: usize,
}

impl AuthSettings {
    /// From the `[http]` section.
    pub fn from_config(c: &HttpConfig) -> AuthSettings {
        AuthSettings {
            idle: Duration::minutes(c.session_idle_mins.into()),
            absolute: Duration::hours(c.session_absolute_hours.into()),
            max_failures: c.login_max_failures.into(),
            window: Duration::minutes(c.login_window_mins.into()),
            lock: Duration::minutes(c.login_lock_mins.into()),
            password_min: c.password_min_length,
        }
    }
}

/// A new user.
#[derive(Debug, Clone)]
pub struct NewUser {
    /// The login (letters, digits, `._@-`; stored in lower case).
    pub login: String,
    /// Their roles.
    pub roles: Vec<Role>,
    /// The staff row (required for agents).
    pub staff_id: Option<String>,
    /// The branches they supervise (required for supervisors).
    pub branches: Vec<String>,
}

fn argon2() -> Argon2<'static> {
    let params = Params::new(19 * 1024, 2, 1, None).expect("valid Argon2 parameters");
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
}

/// A hash to check unknown logins against, so that they take as long as
/// known ones.
static DUMMY_HASH: LazyLock<String> =
    LazyLock::new(|| hash_password_now("not a password of anyone").expect("hashing a constant"));

fn hash_password_now(password: &str) -> Result<String, OpsError> {
    argon2()
        .hash_password(password.as_bytes())
        .map(|h| h.to_string())
        .map_err(|e| OpsError::Internal(format!("hashing the password: {e}")))
}

/// Hashes a password with Argon2id on a blocking thread.
pub async fn hash_password(password: String) -> Result<String, OpsError> {
    tokio::task::spawn_blocking(move || hash_password_now(&password))
        .await
        .map_err(|e| OpsError::Internal(format!("hashing thread: {e}")))?
}

/// Checks a password against a stored hash on a blocking thread.
pub async fn verify_password(password: String, hash: String) -> bool {
    tokio::task::spawn_blocking(move || {
        PasswordHash::new(&hash).is_ok_and(|h| argon2().verify_password(password.as_bytes(), &h).is_ok())
    })
    .await
    .unwrap_or(false)
}

/// Normalises and checks a login.
pub fn check_login(login: &str) -> Result<String, OpsError> {
    let l = login.trim().to_lowercase();
    let ok = !l.is_empty()
        && l.len() <= 64
        && l.chars().next().is_some_and(|c| c.is_ascii_alphanumeric())
        && l.chars().all(|c| c.is_ascii_alphanumeric() || "._@-".contains(c));
    if ok {
        Ok(l)
    } else {
        Err(OpsError::invalid("login", "1 to 64 of a-z 0-9 . _ @ -, starting with a letter or digit"))
    }
}

/// Checks a password against the policy (length, not the login).
pub fn check_password(login: &str, password: &str, min: usize) -> Result<(), OpsError> {
    let n = password.chars().count();
    if n < min {
        return Err(OpsError::invalid("password", format!("at least {min} characters ({n} given)")));
    }
    if n > 1024 {
        return Err(OpsError::invalid("password", "at most 1024 characters"));
    }
    if password.to_lowercase().contains(&login.to_lowercase()) {
        return Err(OpsError::invalid("password", "must not contain the login"));
    }
    if password.chars().all(|c| password.starts_with(c)) {
        return Err(OpsError::invalid("password", "must not be one character repeated"));
    }
    Ok(())
}

/// SHA-256 of a secret, hex: how sessions and tokens are stored.
pub fn secret_hash(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.as_bytes()))
}

fn random_secret() -> String {
    let mut b = [0u8; 32];
    rand::fill(&mut b);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b)
}

/// Adds a user (by `by`, who is audited).
pub async fn add_user(
    store: &Store,
    by: &str,
    u: NewUser,
    password: String,
    s: &AuthSettings,
) -> Result<UserRow, OpsError> {
    let login = check_login(&u.login)?;
    if u.roles.is_empty() {
        return Err(OpsError::invalid("role", "give at least one role"));
    }
    if u.roles.contains(&Role::Agent) {
        let Some(staff) = &u.staff_id else {
            return Err(OpsError::invalid("staff-id", "an agent needs the staff row they work as"));
        };
        if !store.staff().await?.iter().any(|m| &m.staff_id == staff) {
            return Err(OpsError::invalid(
                "staff-id",
                format!("no staff member {staff:?} (import staff first)"),
            ));
        }
    }
    if u.roles.contains(&Role::Supervisor) && u.branches.is_empty() {
        return Err(OpsError::invalid("branch", "a supervisor needs the branches they supervise"));
    }
    check_password(&login, &password, s.password_min)?;
    let hash = hash_password(password).await?;
    let now = Utc::now();
    let row = UserRow {
        login: login.clone(),
        password_hash: hash,
        roles: u.roles.iter().map(|r| r.as_str().to_string()).collect(),
        staff_id: u.staff_id.clone(),
        branches: u.branches.clone(),
        created_at: now,
        password_changed_at: now,
        disabled_at: None,
    };
    store.insert_user(&row).await?;
    audit(
        store,
        by,
        AuditAction::UserAdded,
        &login,
        json!({"roles": row.roles, "branches": row.branches, "staff_id": row.staff_id}),
    )
    .await?;
    Ok(store.user(&login).await?.unwrap_or(row))
}

/// Sets a user's password (their sessions end).
pub async fn set_password(
    store: &Store,
    by: &str,
    login: &str,
    password: String,
    s: &AuthSettings,
) -> Result<(), OpsError> {
    let login = check_login(login)?;
    check_password(&login, &password, s.password_min)?;
    let hash = hash_password(password).await?;
    store.set_password(&login, &hash, Utc::now()).await?;
    audit(store, by, AuditAction::UserPasswordChanged, &login, json!({})).await
}

/// Disables a user: their sessions end, their tokens are revoked.
pub async fn disable_user(store: &Store, by: &str, login: &str) -> Result<bool, OpsError> {
    let login = check_login(login)?;
    let changed = store.disable_user(&login, Utc::now()).await?;
    if changed {
        audit(store, by, AuditAction::UserDisabled, &login, json!({})).await?;
    }
    Ok(changed)
}

/// Makes an API token for `login` carrying `roles` (each one the user
/// holds), valid for `days`. Returns the token (shown once) and its row.
pub async fn create_token(
    store: &Store,
    by: &str,
    login: &str,
    roles: Vec<Role>,
    days: u32,
    label: Option<String>,
) -> Result<(String, TokenRow), OpsError> {
    let login = check_login(login)?;
    let user =
        store.user(&login).await?.ok_or_else(|| OpsError::NotFound { what: "user", key: login.clone() })?;
    if user.disabled_at.is_some() {
        return Err(OpsError::Conflict(format!("user {login} is disabled")));
    }
    if roles.is_empty() {
        return Err(OpsError::invalid("role", "give the token at least one role"));
    }
    for r in &roles {
        if !user.roles.iter().any(|u| u == r.as_str()) {
            return Err(OpsError::invalid("role", format!("{login} does not hold the role {r}")));
        }
    }
    if !(1..=3650).contains(&days) {
        return Err(OpsError::invalid("expires-days", "must be in 1..=3650"));
    }
    let secret = format!("hf_{}", random_secret());
    let now = Utc::now();
    let row = TokenRow {
        id: Uuid::now_v7(),
        login: login.clone(),
        roles: roles.iter().map(|r| r.as_str().to_string()).collect(),
        label,
        created_at: now,
        expires_at: now + Duration::days(days.into()),
        revoked_at: None,
    };
    store.insert_token(&row, &secret_hash(&secret)).await?;
    audit(
        store,
        by,
        AuditAction::TokenCreated,
        &login,
        json!({"token_id": row.id, "roles": row.roles, "expires_at": crate::audit::time_text(row.expires_at)}),
    )
    .await?;
    Ok((secret, row))
}

/// Revokes a token.
pub async fn revoke_token(store: &Store, by: &str, id: Uuid) -> Result<bool, OpsError> {
    let Some(tok) = store.token_by_id(id).await? else {
        return Err(OpsError::NotFound { what: "token", key: id.to_string() });
    };
    let changed = store.revoke_token(id, Utc::now()).await?;
    if changed {
        audit(store, by, AuditAction::TokenRevoked, &tok.login, json!({"token_id": id, "roles": tok.roles}))
            .await?;
    }
    Ok(changed)
}

/// Every user, by login (the CLI's `user list`, the API's `/users`).
pub async fn list_users(store: &Store) -> Result<Vec<UserRow>, OpsError> {
    Ok(store.users().await?)
}

/// A new session: the cookie's value (never stored) and the row.
#[derive(Debug)]
pub struct NewSession {
    /// The cookie's value.
    pub cookie: String,
    /// The person logged in.
    pub person: Person,
    /// The absolute end.
    pub expires_at: DateTime<Utc>,
}

/// Logs in with a login and password from `address`.
pub async fn login(
    store: &Store,
    s: &AuthSettings,
    login: &str,
    password: String,
    address: Option<&str>,
) -> Result<NewSession, OpsError> {
    let typed = login.trim().to_lowercase();
    if typed.is_empty() || typed.len() > 64 {
        return Err(OpsError::BadCredentials);
    }
    let now = Utc::now();
    if let Some(until) = store.login_locked_until(&typed, now).await? {
        audit(
            store,
            &typed,
            AuditAction::SessionLoginFailed,
            &typed,
            json!({"address": address, "why": "locked"}),
        )
        .await?;
        return Err(OpsError::Locked { until });
    }
    let user = store.user(&typed).await?;
    let hash = user.as_ref().map(|u| u.password_hash.clone()).unwrap_or_else(|| DUMMY_HASH.clone());
    let ok = verify_password(password, hash).await;
    let why = match &user {
        None => Some("unknown-login"),
        Some(_) if !ok => Some("wrong-password"),
        Some(u) if u.disabled_at.is_some() => Some("disabled"),
        Some(_) => None,
    };
    if let Some(why) = why {
        audit(
            store,
            &typed,
            AuditAction::SessionLoginFailed,
            &typed,
            json!({"address": address, "why": why}),
        )
        .await?;
        let t = store.login_failed(&typed, now, s.window, s.max_failures, s.lock).await?;
        if let Some(until) = t.locked_until
            && t.failures == s.max_failures
        {
            audit(
                store,
                SYSTEM_ACTOR,
                AuditAction::SessionLocked,
                &typed,
                json!({"address": address, "failures": t.failures, "until": crate::audit::time_text(until)}),
            )
            .await?;
        }
        return Err(OpsError::BadCredentials);
    }
    let user = user.expect("checked above");
    store.login_succeeded(&typed).await?;
    let cookie = random_secret();
    let id_hash = secret_hash(&cookie);
    let row = SessionRow {
        id_hash: id_hash.clone(),
        login: user.login.clone(),
        created_at: now,
        last_seen_at: now,
        expires_at: now + s.absolute,
        ended_at: None,
    };
    store.insert_session(&row, address).await?;
    audit(
        store,
        &user.login,
        AuditAction::SessionLogin,
        &user.login,
        json!({"address": address, "session": &id_hash[..12]}),
    )
    .await?;
    let person = person_of(&user, &user.roles, Via::Session(id_hash[..12].to_string()), address);
    Ok(NewSession { cookie, person, expires_at: row.expires_at })
}

/// The person behind a session cookie, if the session is valid now; an
/// idle or expired session is ended on the way.
pub async fn session_person(
    store: &Store,
    s: &AuthSettings,
    cookie: &str,
    address: Option<&str>,
) -> Result<Option<Person>, OpsError> {
    let hash = secret_hash(cookie);
    let Some((sess, user)) = store.session(&hash).await? else { return Ok(None) };
    let now = Utc::now();
    if sess.ended_at.is_some() || user.disabled_at.is_some() {
        return Ok(None);
    }
    if now >= sess.expires_at {
        store.end_session(&hash, "expired", now).await?;
        return Ok(None);
    }
    if now >= sess.last_seen_at + s.idle {
        store.end_session(&hash, "idle", now).await?;
        return Ok(None);
    }
    // at most one write a minute per session
    if now - sess.last_seen_at >= Duration::seconds(60) {
        store.touch_session(&hash, now).await?;
    }
    Ok(Some(person_of(&user, &user.roles, Via::Session(hash[..12].to_string()), address)))
}

/// The person behind an API token, if it is valid now. The roles in
/// force are the token's that the user still holds.
pub async fn token_person(
    store: &Store,
    token: &str,
    address: Option<&str>,
) -> Result<Option<Person>, OpsError> {
    let Some((tok, user)) = store.token(&secret_hash(token)).await? else { return Ok(None) };
    if tok.revoked_at.is_some() || user.disabled_at.is_some() || Utc::now() >= tok.expires_at {
        return Ok(None);
    }
    let roles: Vec<String> = tok.roles.iter().filter(|r| user.roles.contains(r)).cloned().collect();
    Ok(Some(person_of(&user, &roles, Via::Token(tok.id), address)))
}

/// Ends a session (logout).
pub async fn logout(store: &Store, cookie: &str, person: &Person) -> Result<(), OpsError> {
    let hash = secret_hash(cookie);
    if store.end_session(&hash, "logout", Utc::now()).await? {
        audit(
            store,
            &person.login,
            AuditAction::SessionLogout,
            &person.login,
            json!({"address": person.address, "session": &hash[..12]}),
        )
        .await?;
    }
    Ok(())
}

fn person_of(user: &UserRow, roles: &[String], via: Via, address: Option<&str>) -> Person {
    let mut roles: Vec<Role> = roles.iter().filter_map(|r| Role::from_name(r)).collect();
    roles.sort();
    roles.dedup();
    Person {
        login: user.login.clone(),
        roles,
        staff_id: user.staff_id.clone(),
        branches: user.branches.clone(),
        via,
        address: address.map(str::to_string),
    }
}

async fn audit(
    store: &Store,
    actor: &str,
    action: AuditAction,
    subject: &str,
    detail: serde_json::Value,
) -> Result<(), OpsError> {
    store.append_audit(&AuditEvent::new(actor, action, subject, detail)).await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_follow_the_policy() {
        assert!(check_password("alice", "correct horse battery", 12).is_ok());
        let short = check_password("alice", "short", 12).unwrap_err().to_string();
        assert!(short.contains("at least 12"), "{short}");
        let login = check_password("alice", "my-ALICE-password", 12).unwrap_err().to_string();
        assert!(login.contains("must not contain the login"), "{login}");
        assert!(check_password("bob", "aaaaaaaaaaaaaaaa", 12).is_err());
    }

    #[test]
    fn logins_are_lower_case_and_plain() {
        assert_eq!(check_login(" Alice.W@Branch-1 ").unwrap(), "alice.w@branch-1");
        for bad in ["", "-x", "a b", "名字", &"x".repeat(65)] {
            assert!(check_login(bad).is_err(), "{bad:?}");
        }
    }

    #[tokio::test]
    async fn hashes_are_argon2id_and_verify() {
        let h = hash_password("correct horse battery".into()).await.unwrap();
        assert!(h.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{h}");
        assert!(verify_password("correct horse battery".into(), h.clone()).await);
        assert!(!verify_password("wrong horse battery".into(), h).await);
    }

    #[test]
    fn secrets_are_random_and_stored_as_sha256() {
        let (a, b) = (random_secret(), random_secret());
        assert_ne!(a, b);
        assert_eq!(a.len(), 43);
        assert_eq!(secret_hash(&a).len(), 64);
        assert_ne!(secret_hash(&a), secret_hash(&b));
    }
}
