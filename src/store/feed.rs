//! The agent event feed's log (`feed_seq`, `feed_events`; schema
//! `migrations/*/20261207100000_feed.sql`).
//!
//! [`Store::append_feed`] gives the event the agent's next sequence number
//! and stores it in one transaction; on PostgreSQL the same transaction
//! sends `NOTIFY huifang_feed` with the event's id, agent, number and
//! writing instance, so every other instance learns of it at the commit
//! ([`FeedListener`]). SQLite has one process serving, and other processes
//! (the CLI) are found by reading new rows by id ([`Store::feed_since_id`]).
//!
//! The log is not evidence — the audit chain is: it is pruned after a day
//! ([`Store::prune_feed`]).

use chrono::{DateTime, Utc};
use serde_json::Value;
use sqlx::postgres::PgListener;

use super::callbacks::{DbRow, V, t};
use super::error::query;
use super::{Backend, Store, StoreError, ms};

/// The PostgreSQL channel of new feed events.
pub const FEED_CHANNEL: &str = "huifang_feed";

/// One stored event of an agent's feed.
#[derive(Debug, Clone, PartialEq)]
pub struct FeedRow {
    /// Order of all events (every agent).
    pub id: i64,
    /// The agent (a staff id).
    pub agent_id: String,
    /// The agent's sequence number, increasing by one per event.
    pub seq: i64,
    /// When.
    pub at: DateTime<Utc>,
    /// The message type (`offered`, `state`, …).
    pub kind: String,
    /// The instance that wrote it.
    pub instance: String,
    /// The message's own fields.
    pub body: Value,
}

/// What a `NOTIFY huifang_feed` says: enough to read the event.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct FeedNote {
    /// `feed_events.id`.
    pub id: i64,
    /// The agent.
    pub agent: String,
    /// The agent's sequence number.
    pub seq: i64,
    /// The writing instance.
    pub instance: String,
}

const FEED_COLUMNS: &str = "id, agent_id, seq, at, type, instance, body";

fn feed_row(r: &DbRow) -> Result<FeedRow, sqlx::Error> {
    Ok(FeedRow {
        id: r.int("id")?,
        agent_id: r.text("agent_id")?,
        seq: r.int("seq")?,
        at: r.time("at")?,
        kind: r.text("type")?,
        instance: r.text("instance")?,
        body: r.json("body")?,
    })
}

impl Store {
    /// Appends an event of type `kind` to `agent`'s feed, written by
    /// `instance`; returns it with its sequence number.
    pub async fn append_feed(
        &self,
        agent: &str,
        kind: &str,
        instance: &str,
        body: &Value,
        at: DateTime<Utc>,
    ) -> Result<FeedRow, StoreError> {
        let op = "append_feed";
        let at = ms(at);
        let mut tx = self.begin().await.map_err(query(op))?;
        let r = async {
            let rows = tx
                .all(
                    "INSERT INTO feed_seq (agent_id, seq) VALUES ($1, 1) \
                     ON CONFLICT (agent_id) DO UPDATE SET seq = feed_seq.seq + 1 RETURNING seq",
                    vec![t(agent)],
                )
                .await?;
            let seq = rows.first().ok_or_else(|| super::callbacks::bad("seq", "no row"))?.int("seq")?;
            let rows = tx
                .all(
                    "INSERT INTO feed_events (agent_id, seq, at, type, instance, body) \
                     VALUES ($1, $2, $3, $4, $5, $6) RETURNING id",
                    vec![
                        t(agent),
                        V::Int(Some(seq)),
                        V::Time(Some(at)),
                        t(kind),
                        t(instance),
                        V::Json(body.clone()),
                    ],
                )
                .await?;
            let id = rows.first().ok_or_else(|| super::callbacks::bad("id", "no row"))?.int("id")?;
            if tx.is_pg() {
                let note = FeedNote { id, agent: agent.to_string(), seq, instance: instance.to_string() };
                let payload = serde_json::to_string(&note).unwrap_or_default();
                tx.all("SELECT pg_notify($1, $2)", vec![t(FEED_CHANNEL), V::Text(Some(payload))]).await?;
            }
            Ok::<_, sqlx::Error>((id, seq))
        }
        .await;
        match r {
            Ok((id, seq)) => {
                tx.commit().await.map_err(query(op))?;
                Ok(FeedRow {
                    id,
                    agent_id: agent.to_string(),
                    seq,
                    at,
                    kind: kind.to_string(),
                    instance: instance.to_string(),
                    body: body.clone(),
                })
            }
            Err(e) => {
                let _ = tx.rollback().await;
                Err(query(op)(e))
            }
        }
    }

    /// `agent`'s events after number `after`, oldest first, at most `limit`.
    pub async fn feed_after(&self, agent: &str, after: i64, limit: i64) -> Result<Vec<FeedRow>, StoreError> {
        let sql = format!(
            "SELECT {FEED_COLUMNS} FROM feed_events WHERE agent_id = $1 AND seq > $2 ORDER BY seq LIMIT $3"
        );
        let rows = self
            .read(&sql, vec![t(agent), V::Int(Some(after)), V::Int(Some(limit))])
            .await
            .map_err(query("feed_after"))?;
        rows.iter().map(feed_row).collect::<Result<_, _>>().map_err(query("feed_after"))
    }

    /// `agent`'s latest event of type `kind`, if any is still in the log.
    pub async fn feed_latest(&self, agent: &str, kind: &str) -> Result<Option<FeedRow>, StoreError> {
        let sql = format!(
            "SELECT {FEED_COLUMNS} FROM feed_events WHERE agent_id = $1 AND type = $2 ORDER BY seq DESC LIMIT 1"
        );
        let rows = self.read(&sql, vec![t(agent), t(kind)]).await.map_err(query("feed_latest"))?;
        rows.first().map(feed_row).transpose().map_err(query("feed_latest"))
    }

    /// The last sequence number given to `agent` (0: none yet).
    pub async fn feed_last_seq(&self, agent: &str) -> Result<i64, StoreError> {
        let rows = self
            .read("SELECT seq FROM feed_seq WHERE agent_id = $1", vec![t(agent)])
            .await
            .map_err(query("feed_last_seq"))?;
        rows.first()
            .map(|r| r.int("seq"))
            .transpose()
            .map(Option::unwrap_or_default)
            .map_err(query("feed_last_seq"))
    }

    /// Events of every agent after id `after`, oldest first, at most `limit`.
    pub async fn feed_since_id(&self, after: i64, limit: i64) -> Result<Vec<FeedRow>, StoreError> {
        let sql = format!("SELECT {FEED_COLUMNS} FROM feed_events WHERE id > $1 ORDER BY id LIMIT $2");
        let rows = self
            .read(&sql, vec![V::Int(Some(after)), V::Int(Some(limit))])
            .await
            .map_err(query("feed_since_id"))?;
        rows.iter().map(feed_row).collect::<Result<_, _>>().map_err(query("feed_since_id"))
    }

    /// The highest event id (0: none).
    pub async fn feed_last_id(&self) -> Result<i64, StoreError> {
        let rows = self
            .read("SELECT COALESCE(MAX(id), 0) AS id FROM feed_events", vec![])
            .await
            .map_err(query("feed_last_id"))?;
        rows.first()
            .map(|r| r.int("id"))
            .transpose()
            .map(Option::unwrap_or_default)
            .map_err(query("feed_last_id"))
    }

    /// Removes events older than `before`; returns how many.
    pub async fn prune_feed(&self, before: DateTime<Utc>) -> Result<u64, StoreError> {
        self.write("DELETE FROM feed_events WHERE at < $1", vec![V::Time(Some(ms(before)))])
            .await
            .map_err(query("prune_feed"))
    }

    /// A listener of `NOTIFY huifang_feed` on its own connection
    /// (PostgreSQL); `None` on SQLite.
    pub async fn feed_listener(&self) -> Result<Option<FeedListener>, StoreError> {
        let Backend::Postgres(b) = &self.backend else { return Ok(None) };
        let mut l = PgListener::connect_with(&b.pool).await.map_err(query("feed_listener"))?;
        l.listen(FEED_CHANNEL).await.map_err(query("feed_listener"))?;
        Ok(Some(FeedListener(l)))
    }
}

/// Notifications of new feed events from every instance (PostgreSQL).
pub struct FeedListener(PgListener);

impl FeedListener {
    /// The next note. An error means the connection was lost (and is
    /// opened again at the next call): notes may have been missed, so the
    /// caller reads the log from the last id it saw.
    pub async fn recv(&mut self) -> Result<Option<FeedNote>, StoreError> {
        let n = self.0.recv().await.map_err(query("feed_listener"))?;
        Ok(serde_json::from_str(n.payload()).ok())
    }
}
