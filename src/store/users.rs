//! The web door's tables: `users`, `web_sessions`, `api_tokens` and
//! `login_throttle` (schema: `migrations/*/20261207000000_web.sql`).
//!
//! The store keeps rows; the rules (password policy, roles, timeouts,
//! lockout numbers) are the caller's (`ops::users`). Secrets never reach
//! the database: a password is stored as its Argon2id PHC string, a
//! session cookie and an API token as their SHA-256. Users are never
//! deleted, only disabled; disabling one ends their sessions and revokes
//! their tokens in the same transaction, so no instance sharing the
//! database accepts them afterwards.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::callbacks::{DbRow, V, ot, t};
use super::error::{Violation, query, violation};
use super::{Store, StoreError, ms};

/// A person who logs in.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct UserRow {
    /// The login (lower case).
    pub login: String,
    /// The Argon2id PHC string.
    #[serde(skip)]
    pub password_hash: String,
    /// Role names, sorted.
    pub roles: Vec<String>,
    /// The staff row of an agent.
    pub staff_id: Option<String>,
    /// Branches a supervisor supervises, sorted.
    pub branches: Vec<String>,
    /// When the user was added.
    pub created_at: DateTime<Utc>,
    /// When the password was last set.
    pub password_changed_at: DateTime<Utc>,
    /// When the user was disabled (never logs in again).
    pub disabled_at: Option<DateTime<Utc>>,
}

/// A browser session, as stored (the cookie itself is not).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionRow {
    /// SHA-256 of the cookie value, hex.
    pub id_hash: String,
    /// Whose.
    pub login: String,
    /// When it started.
    pub created_at: DateTime<Utc>,
    /// Last request seen (updated at most once a minute).
    pub last_seen_at: DateTime<Utc>,
    /// The absolute end.
    pub expires_at: DateTime<Utc>,
    /// When it ended (logout, user disabled, idle).
    pub ended_at: Option<DateTime<Utc>>,
}

/// An API token, as stored (the token itself is not).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct TokenRow {
    /// The token's id (shown in lists, used to revoke it).
    pub id: Uuid,
    /// Whose.
    pub login: String,
    /// The roles it carries (a subset of its user's).
    pub roles: Vec<String>,
    /// What it is for.
    pub label: Option<String>,
    /// When it was made.
    pub created_at: DateTime<Utc>,
    /// When it stops working.
    pub expires_at: DateTime<Utc>,
    /// When it was revoked.
    pub revoked_at: Option<DateTime<Utc>>,
}

/// Failed logins of one typed login, after a failure was counted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Throttle {
    /// Failures in the current window.
    pub failures: i64,
    /// Locked until then, if locked.
    pub locked_until: Option<DateTime<Utc>>,
}

const USER_COLUMNS: &str =
    "login, password_hash, roles, staff_id, branches, created_at, password_changed_at, disabled_at";
const TOKEN_COLUMNS: &str = "id, login, roles, label, created_at, expires_at, revoked_at";

fn words(s: &str) -> Vec<String> {
    s.split_whitespace().map(str::to_string).collect()
}

fn joined(w: &[String]) -> String {
    let mut w: Vec<&str> = w.iter().map(String::as_str).collect();
    w.sort_unstable();
    w.dedup();
    w.join(" ")
}

fn user_row(r: &DbRow) -> Result<UserRow, sqlx::Error> {
    Ok(UserRow {
        login: r.text("login")?,
        password_hash: r.text("password_hash")?,
        roles: words(&r.text("roles")?),
        staff_id: r.opt_text("staff_id")?,
        branches: words(&r.text("branches")?),
        created_at: r.time("created_at")?,
        password_changed_at: r.time("password_changed_at")?,
        disabled_at: r.opt_time("disabled_at")?,
    })
}

fn token_row(r: &DbRow) -> Result<TokenRow, sqlx::Error> {
    Ok(TokenRow {
        id: r.id("id")?,
        login: r.text("login")?,
        roles: words(&r.text("roles")?),
        label: r.opt_text("label")?,
        created_at: r.time("created_at")?,
        expires_at: r.time("expires_at")?,
        revoked_at: r.opt_time("revoked_at")?,
    })
}

impl Store {
    /// Adds a user. A login already taken is [`StoreError::Refused`].
    pub async fn insert_user(&self, u: &UserRow) -> Result<(), StoreError> {
        let sql = format!("INSERT INTO users ({USER_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)");
        let args = vec![
            t(&u.login),
            t(&u.password_hash),
            t(&joined(&u.roles)),
            ot(u.staff_id.as_deref()),
            t(&joined(&u.branches)),
            V::Time(Some(ms(u.created_at))),
            V::Time(Some(ms(u.password_changed_at))),
            V::Time(u.disabled_at.map(ms)),
        ];
        match self.write(&sql, args).await {
            Ok(_) => Ok(()),
            Err(e) if violation(&e) == Violation::Unique => {
                Err(StoreError::Refused(format!("login {:?} is taken", u.login)))
            }
            Err(e) => Err(query("insert_user")(e)),
        }
    }

    /// The user with this login, if any.
    pub async fn user(&self, login: &str) -> Result<Option<UserRow>, StoreError> {
        let sql = format!("SELECT {USER_COLUMNS} FROM users WHERE login = $1");
        let rows = self.read(&sql, vec![t(login)]).await.map_err(query("user"))?;
        rows.first().map(user_row).transpose().map_err(query("user"))
    }

    /// Every user, by login.
    pub async fn users(&self) -> Result<Vec<UserRow>, StoreError> {
        let sql = format!("SELECT {USER_COLUMNS} FROM users ORDER BY login");
        let rows = self.read(&sql, vec![]).await.map_err(query("users"))?;
        rows.iter().map(user_row).collect::<Result<_, _>>().map_err(query("users"))
    }

    /// Sets a user's password hash and ends their open sessions (a new
    /// password means logging in again). [`StoreError::Missing`] for an
    /// unknown login.
    pub async fn set_password(&self, login: &str, hash: &str, at: DateTime<Utc>) -> Result<(), StoreError> {
        let op = query("set_password");
        let mut tx = self.begin().await.map_err(op)?;
        let n = tx
            .exec(
                "UPDATE users SET password_hash = $2, password_changed_at = $3 WHERE login = $1",
                vec![t(login), t(hash), V::Time(Some(ms(at)))],
            )
            .await
            .map_err(query("set_password"))?;
        if n == 0 {
            let _ = tx.rollback().await;
            return Err(StoreError::Missing { what: "user", key: login.to_string() });
        }
        end_sessions(&mut tx, login, "password-changed", at).await.map_err(query("set_password"))?;
        tx.commit().await.map_err(query("set_password"))
    }

    /// Disables a user: their open sessions end and their tokens are
    /// revoked, in one transaction. Returns `false` when the user was
    /// already disabled (nothing changes); [`StoreError::Missing`] for an
    /// unknown login.
    pub async fn disable_user(&self, login: &str, at: DateTime<Utc>) -> Result<bool, StoreError> {
        let op = "disable_user";
        let at = ms(at);
        let mut tx = self.begin().await.map_err(query(op))?;
        let n = tx
            .exec(
                "UPDATE users SET disabled_at = $2 WHERE login = $1 AND disabled_at IS NULL",
                vec![t(login), V::Time(Some(at))],
            )
            .await
            .map_err(query(op))?;
        if n == 0 {
            let _ = tx.rollback().await;
            return match self.user(login).await? {
                Some(_) => Ok(false),
                None => Err(StoreError::Missing { what: "user", key: login.to_string() }),
            };
        }
        end_sessions(&mut tx, login, "user-disabled", at).await.map_err(query(op))?;
        tx.exec(
            "UPDATE api_tokens SET revoked_at = $2 WHERE login = $1 AND revoked_at IS NULL",
            vec![t(login), V::Time(Some(at))],
        )
        .await
        .map_err(query(op))?;
        tx.commit().await.map_err(query(op))?;
        Ok(true)
    }

    /// Stores a new browser session.
    pub async fn insert_session(&self, s: &SessionRow, address: Option<&str>) -> Result<(), StoreError> {
        self.write(
            "INSERT INTO web_sessions (id_hash, login, created_at, last_seen_at, expires_at, address) \
             VALUES ($1, $2, $3, $4, $5, $6)",
            vec![
                t(&s.id_hash),
                t(&s.login),
                V::Time(Some(ms(s.created_at))),
                V::Time(Some(ms(s.last_seen_at))),
                V::Time(Some(ms(s.expires_at))),
                ot(address),
            ],
        )
        .await
        .map(|_| ())
        .map_err(query("insert_session"))
    }

    /// The session with this hash and its user, whatever their state (the
    /// caller checks the timeouts, the end and the user's state).
    pub async fn session(&self, id_hash: &str) -> Result<Option<(SessionRow, UserRow)>, StoreError> {
        let sql = "SELECT s.id_hash, s.created_at AS s_created_at, s.last_seen_at, s.expires_at, s.ended_at, \
             u.login, u.password_hash, u.roles, u.staff_id, u.branches, u.created_at, u.password_changed_at, \
             u.disabled_at FROM web_sessions s JOIN users u ON u.login = s.login WHERE s.id_hash = $1";
        let rows = self.read(sql, vec![t(id_hash)]).await.map_err(query("session"))?;
        let Some(r) = rows.first() else { return Ok(None) };
        let decode = || -> Result<(SessionRow, UserRow), sqlx::Error> {
            let user = user_row(r)?;
            let s = SessionRow {
                id_hash: r.text("id_hash")?,
                login: user.login.clone(),
                created_at: r.time("s_created_at")?,
                last_seen_at: r.time("last_seen_at")?,
                expires_at: r.time("expires_at")?,
                ended_at: r.opt_time("ended_at")?,
            };
            Ok((s, user))
        };
        decode().map(Some).map_err(query("session"))
    }

    /// Records that the session was used at `at`.
    pub async fn touch_session(&self, id_hash: &str, at: DateTime<Utc>) -> Result<(), StoreError> {
        self.write(
            "UPDATE web_sessions SET last_seen_at = $2 WHERE id_hash = $1 AND ended_at IS NULL \
             AND last_seen_at < $2",
            vec![t(id_hash), V::Time(Some(ms(at)))],
        )
        .await
        .map(|_| ())
        .map_err(query("touch_session"))
    }

    /// Ends a session (`why`: `logout`, `idle`, `expired`, …); `false` when
    /// it had already ended or does not exist.
    pub async fn end_session(&self, id_hash: &str, why: &str, at: DateTime<Utc>) -> Result<bool, StoreError> {
        let n = self
            .write(
                "UPDATE web_sessions SET ended_at = $2, ended_why = $3 WHERE id_hash = $1 AND ended_at IS NULL",
                vec![t(id_hash), V::Time(Some(ms(at))), t(why)],
            )
            .await
            .map_err(query("end_session"))?;
        Ok(n > 0)
    }

    /// Stores a new API token by its hash.
    pub async fn insert_token(&self, tok: &TokenRow, hash: &str) -> Result<(), StoreError> {
        self.write(
            &format!(
                "INSERT INTO api_tokens ({TOKEN_COLUMNS}, token_hash) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)"
            ),
            vec![
                V::Id(tok.id),
                t(&tok.login),
                t(&joined(&tok.roles)),
                ot(tok.label.as_deref()),
                V::Time(Some(ms(tok.created_at))),
                V::Time(Some(ms(tok.expires_at))),
                V::Time(tok.revoked_at.map(ms)),
                t(hash),
            ],
        )
        .await
        .map(|_| ())
        .map_err(query("insert_token"))
    }

    /// The token with this hash and its user, whatever their state.
    pub async fn token(&self, hash: &str) -> Result<Option<(TokenRow, UserRow)>, StoreError> {
        let sql = "SELECT k.id, k.roles AS k_roles, k.label, k.created_at AS k_created_at, k.expires_at, \
             k.revoked_at, u.login, u.password_hash, u.roles, u.staff_id, u.branches, u.created_at, \
             u.password_changed_at, u.disabled_at FROM api_tokens k JOIN users u ON u.login = k.login \
             WHERE k.token_hash = $1";
        let rows = self.read(sql, vec![t(hash)]).await.map_err(query("token"))?;
        let Some(r) = rows.first() else { return Ok(None) };
        let decode = || -> Result<(TokenRow, UserRow), sqlx::Error> {
            let user = user_row(r)?;
            let tok = TokenRow {
                id: r.id("id")?,
                login: user.login.clone(),
                roles: words(&r.text("k_roles")?),
                label: r.opt_text("label")?,
                created_at: r.time("k_created_at")?,
                expires_at: r.time("expires_at")?,
                revoked_at: r.opt_time("revoked_at")?,
            };
            Ok((tok, user))
        };
        decode().map(Some).map_err(query("token"))
    }

    /// Tokens of a login (or of everyone), newest first.
    pub async fn tokens(&self, login: Option<&str>) -> Result<Vec<TokenRow>, StoreError> {
        let sql = format!(
            "SELECT {TOKEN_COLUMNS} FROM api_tokens WHERE (CAST($1 AS TEXT) IS NULL OR login = $1) \
             ORDER BY created_at DESC, id"
        );
        let rows = self.read(&sql, vec![ot(login)]).await.map_err(query("tokens"))?;
        rows.iter().map(token_row).collect::<Result<_, _>>().map_err(query("tokens"))
    }

    /// The token with this id, if any.
    pub async fn token_by_id(&self, id: Uuid) -> Result<Option<TokenRow>, StoreError> {
        let sql = format!("SELECT {TOKEN_COLUMNS} FROM api_tokens WHERE id = $1");
        let rows = self.read(&sql, vec![V::Id(id)]).await.map_err(query("token_by_id"))?;
        rows.first().map(token_row).transpose().map_err(query("token_by_id"))
    }

    /// Revokes a token; `false` when it was already revoked or does not
    /// exist ([`token_by_id`](Self::token_by_id) tells them apart).
    pub async fn revoke_token(&self, id: Uuid, at: DateTime<Utc>) -> Result<bool, StoreError> {
        let n = self
            .write(
                "UPDATE api_tokens SET revoked_at = $2 WHERE id = $1 AND revoked_at IS NULL",
                vec![V::Id(id), V::Time(Some(ms(at)))],
            )
            .await
            .map_err(query("revoke_token"))?;
        Ok(n > 0)
    }

    /// Until when `login` is locked out, if it is at `at`.
    pub async fn login_locked_until(
        &self,
        login: &str,
        at: DateTime<Utc>,
    ) -> Result<Option<DateTime<Utc>>, StoreError> {
        let rows = self
            .read(
                "SELECT locked_until FROM login_throttle WHERE login = $1 AND locked_until > $2",
                vec![t(login), V::Time(Some(ms(at)))],
            )
            .await
            .map_err(query("login_locked_until"))?;
        rows.first().map(|r| r.time("locked_until")).transpose().map_err(query("login_locked_until"))
    }

    /// Counts a failed login of `login` at `at`, in one statement so that
    /// instances sharing the database count together: failures older than
    /// `window` start a new count; reaching `max` locks the login until
    /// `at + lock`.
    pub async fn login_failed(
        &self,
        login: &str,
        at: DateTime<Utc>,
        window: chrono::Duration,
        max: i64,
        lock: chrono::Duration,
    ) -> Result<Throttle, StoreError> {
        let at = ms(at);
        let op = "login_failed";
        let mut tx = self.begin().await.map_err(query(op))?;
        // $1 login, $2 now, $3 start of the window, $4 max, $5 lock end
        let sql = "INSERT INTO login_throttle (login, failures, window_started_at, locked_until) \
             VALUES ($1, 1, $2, CASE WHEN 1 >= $4 THEN $5 ELSE NULL END) \
             ON CONFLICT (login) DO UPDATE SET \
               failures = CASE WHEN login_throttle.window_started_at < $3 THEN 1 \
                               ELSE login_throttle.failures + 1 END, \
               window_started_at = CASE WHEN login_throttle.window_started_at < $3 THEN $2 \
                                        ELSE login_throttle.window_started_at END, \
               locked_until = CASE \
                   WHEN login_throttle.locked_until IS NOT NULL AND login_throttle.locked_until > $2 \
                        THEN login_throttle.locked_until \
                   WHEN (CASE WHEN login_throttle.window_started_at < $3 THEN 1 \
                              ELSE login_throttle.failures + 1 END) >= $4 THEN $5 \
                   ELSE NULL END";
        let args = vec![
            t(login),
            V::Time(Some(at)),
            V::Time(Some(ms(at - window))),
            V::Int(Some(max)),
            V::Time(Some(ms(at + lock))),
        ];
        tx.exec(sql, args).await.map_err(query(op))?;
        let rows = tx
            .all("SELECT failures, locked_until FROM login_throttle WHERE login = $1", vec![t(login)])
            .await
            .map_err(query(op))?;
        tx.commit().await.map_err(query(op))?;
        let r =
            rows.first().ok_or_else(|| StoreError::Missing { what: "login throttle", key: login.into() })?;
        Ok(Throttle {
            failures: r.int("failures").map_err(query(op))?,
            locked_until: r.opt_time("locked_until").map_err(query(op))?,
        })
    }

    /// Forgets the failures of `login` (after a successful login).
    pub async fn login_succeeded(&self, login: &str) -> Result<(), StoreError> {
        self.write(
            "UPDATE login_throttle SET failures = 0, locked_until = NULL WHERE login = $1 AND failures > 0",
            vec![t(login)],
        )
        .await
        .map(|_| ())
        .map_err(query("login_succeeded"))
    }
}

/// Ends every open session of `login` inside `tx`.
async fn end_sessions(
    tx: &mut super::callbacks::Tx,
    login: &str,
    why: &str,
    at: DateTime<Utc>,
) -> Result<u64, sqlx::Error> {
    tx.exec(
        "UPDATE web_sessions SET ended_at = $2, ended_why = $3 WHERE login = $1 AND ended_at IS NULL",
        vec![t(login), V::Time(Some(ms(at))), t(why)],
    )
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_are_sorted_and_unique_when_stored() {
        assert_eq!(joined(&["supervisor".into(), "agent".into(), "agent".into()]), "agent supervisor");
        assert_eq!(words(" agent  supervisor "), vec!["agent", "supervisor"]);
        assert_eq!(words(""), Vec::<String>::new());
    }
}
