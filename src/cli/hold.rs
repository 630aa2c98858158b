//! `huifang hold set|release --recording ID --reason TEXT --user NAME`:
//! legal hold on a recording, released only by two people.
//!
//! - `set`: the archive object's legal hold is put on first (when the
//!   recording is archived; holding too much is the safe side), then the
//!   `legal_holds` row, then the `hold.set` audit event.
//! - `release` by a first user: the release is requested
//!   (`hold.release_requested`); the recording stays held.
//! - `release` by a second, different user: the row becomes `released`,
//!   then the object's legal hold is lifted, then `hold.released`.
//!   The same user twice is refused (two-person rule) and changes nothing.

use anyhow::Context;
use chrono::Utc;
use serde_json::json;
use uuid::Uuid;

use super::{Exit, HoldAction, HoldArgs, HoldTarget};
use crate::archive::Archive;
use crate::audit::{AuditAction, AuditEvent};
use crate::config::Config;
use crate::store::{ReleaseStep, Store};

/// Runs `huifang hold`.
pub fn run(args: HoldArgs) -> anyhow::Result<Exit> {
    let (set, t) = match args.action {
        HoldAction::Set(t) => (true, t),
        HoldAction::Release(t) => (false, t),
    };
    let cfg = Config::load(&t.config)?;
    super::init_logging(&cfg.log.level);
    let id = Uuid::parse_str(&t.recording).context("--recording: not a recording id (UUID)")?;
    if t.user.trim().is_empty() {
        anyhow::bail!("--user: must not be empty");
    }
    let rt = tokio::runtime::Runtime::new().context("starting the async runtime")?;
    rt.block_on(async move {
        let store = Store::open(&cfg.database_url()).await?;
        let r = if set { set_hold(&cfg, &store, id, &t).await } else { release(&cfg, &store, id, &t).await };
        store.close().await;
        r
    })
}

/// The recording's archive key, when it is archived.
async fn archived_key(store: &Store, id: Uuid) -> anyhow::Result<Option<String>> {
    Ok(store.archive_record(id).await?.archived.map(|a| a.key))
}

async fn set_hold(cfg: &Config, store: &Store, id: Uuid, t: &HoldTarget) -> anyhow::Result<Exit> {
    store.get_recording(id).await?;
    if store.open_hold(id).await?.is_some() {
        anyhow::bail!("recording {id} is already under legal hold");
    }
    let key = archived_key(store, id).await?;
    if let Some(key) = &key {
        Archive::from_config(cfg)?
            .set_legal_hold(key, true)
            .await
            .context("setting the archive's legal hold")?;
    }
    let hold = store.set_hold(id, &t.user, &t.reason, Utc::now()).await?;
    store
        .append_audit(&AuditEvent {
            at: hold.set_at,
            ..AuditEvent::new(
                &t.user,
                AuditAction::HoldSet,
                id,
                json!({"hold_id": hold.id, "reason": t.reason, "archive_key": key}),
            )
        })
        .await
        .context("audit log: hold.set not written (the hold itself is set)")?;
    println!("recording {id}: legal hold set by {}", t.user);
    Ok(Exit::Ok)
}

async fn release(cfg: &Config, store: &Store, id: Uuid, t: &HoldTarget) -> anyhow::Result<Exit> {
    match store.release_hold(id, &t.user, &t.reason, Utc::now()).await? {
        ReleaseStep::Requested(hold) => {
            store
                .append_audit(&AuditEvent {
                    at: hold.requested_at.unwrap_or_else(Utc::now),
                    ..AuditEvent::new(
                        &t.user,
                        AuditAction::HoldReleaseRequested,
                        id,
                        json!({"hold_id": hold.id, "reason": t.reason}),
                    )
                })
                .await
                .context("audit log: hold.release_requested not written")?;
            println!(
                "recording {id}: release of the legal hold requested by {}; a different user must confirm \
                 with `huifang hold release`",
                t.user
            );
        }
        ReleaseStep::Released(hold) => {
            let key = archived_key(store, id).await?;
            if let Some(key) = &key {
                Archive::from_config(cfg)?.set_legal_hold(key, false).await.with_context(|| {
                    format!("the hold is released in the database, but lifting the archive's legal hold on {key} failed")
                })?;
            }
            store
                .append_audit(&AuditEvent {
                    at: hold.released_at.unwrap_or_else(Utc::now),
                    ..AuditEvent::new(
                        &t.user,
                        AuditAction::HoldReleased,
                        id,
                        json!({
                            "hold_id": hold.id,
                            "reason": t.reason,
                            "requested_by": hold.requested_by,
                            "archive_key": key,
                        }),
                    )
                })
                .await
                .context("audit log: hold.released not written")?;
            println!("recording {id}: legal hold released by {}", t.user);
        }
    }
    Ok(Exit::Ok)
}
