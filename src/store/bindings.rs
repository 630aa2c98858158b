//! The built-in registrar's bindings, kept across restarts.
//!
//! The registrar itself lives in memory (`sip::registrar`, sans-IO); the
//! endpoint's bindings worker copies each user's bindings here after every
//! change, and `serve` reads them back at start-up, so that a crash or a
//! deploy does not leave every agent unreachable until their softphones'
//! next REGISTER (minutes: phones refresh at three quarters of an hour's
//! lifetime). Rows are per instance: each `serve` is the registrar of the
//! phones registered to it.
//!
//! Not evidence (E5 does not apply): a user's rows are replaced as a whole
//! ([`Store::replace_bindings`]), and ended ones are removed when read.

use chrono::{DateTime, Utc};

use super::callbacks::{V, t};
use super::error::query;
use super::{Store, StoreError, ms};

/// One binding of a registrar user, as kept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredBinding {
    /// The account (the user part of its address of record).
    pub user: String,
    /// The contact URI the phone asked to be reached at (personal data of
    /// nobody: an agent's softphone).
    pub contact: String,
    /// `udp` or `tcp`: what the REGISTER came over.
    pub transport: String,
    /// The address it came from (`ip:port`).
    pub source: String,
    /// The REGISTER's Call-ID and CSeq (an older REGISTER never wins).
    pub call_id: String,
    /// See `call_id`.
    pub cseq: u32,
    /// When the binding ends.
    pub expires_at: DateTime<Utc>,
}

impl Store {
    /// Replaces every binding of `user` at `instance` with `rows` (none:
    /// the user has no binding left), in one transaction.
    pub async fn replace_bindings(
        &self,
        instance: &str,
        user: &str,
        rows: &[StoredBinding],
    ) -> Result<(), StoreError> {
        let op = "replace_bindings";
        let mut tx = self.begin().await.map_err(query(op))?;
        let r = async {
            tx.exec(
                "DELETE FROM sip_bindings WHERE instance = $1 AND username = $2",
                vec![t(instance), t(user)],
            )
            .await?;
            for b in rows.iter().filter(|b| b.user == user) {
                tx.exec(
                    "INSERT INTO sip_bindings \
                     (instance, username, contact, transport, source, call_id, cseq, expires_at) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
                    vec![
                        t(instance),
                        t(user),
                        t(&b.contact),
                        t(&b.transport),
                        t(&b.source),
                        t(&b.call_id),
                        V::Int(Some(b.cseq.into())),
                        V::Time(Some(ms(b.expires_at))),
                    ],
                )
                .await?;
            }
            Ok::<_, sqlx::Error>(())
        }
        .await;
        match r {
            Ok(()) => tx.commit().await.map_err(query(op)),
            Err(e) => {
                let _ = tx.rollback().await;
                Err(query(op)(e))
            }
        }
    }

    /// The bindings of `instance` still alive at `now`, by user; the
    /// ended ones are removed.
    pub async fn live_bindings(
        &self,
        instance: &str,
        now: DateTime<Utc>,
    ) -> Result<Vec<StoredBinding>, StoreError> {
        let op = "live_bindings";
        let now = ms(now);
        self.write(
            "DELETE FROM sip_bindings WHERE instance = $1 AND expires_at <= $2",
            vec![t(instance), V::Time(Some(now))],
        )
        .await
        .map_err(query(op))?;
        let rows = self
            .read(
                "SELECT username, contact, transport, source, call_id, cseq, expires_at FROM sip_bindings \
                 WHERE instance = $1 AND expires_at > $2 ORDER BY username, contact",
                vec![t(instance), V::Time(Some(now))],
            )
            .await
            .map_err(query(op))?;
        rows.iter()
            .map(|r| {
                Ok(StoredBinding {
                    user: r.text("username")?,
                    contact: r.text("contact")?,
                    transport: r.text("transport")?,
                    source: r.text("source")?,
                    call_id: r.text("call_id")?,
                    cseq: u32::try_from(r.int("cseq")?).unwrap_or(u32::MAX),
                    expires_at: r.time("expires_at")?,
                })
            })
            .collect::<Result<_, sqlx::Error>>()
            .map_err(query(op))
    }
}
