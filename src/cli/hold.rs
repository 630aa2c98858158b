//! `huifang hold set|release --recording ID --reason TEXT --user NAME`:
//! legal hold on a recording, released only by two people.
//!
//! - `set`: when the recording is archived, the legal hold is put on both
//!   of its objects (the WAV and the manifest, the versions the database
//!   recorded; S3: PutObjectLegalHold) first — holding too much is the safe
//!   side — then the `legal_holds` row, then the `hold.set` audit event. A
//!   recording not archived yet gets the row only; the uploader puts the
//!   hold on its objects when it archives it. The recording is looked up
//!   again after the row is written, so a recording archived meanwhile is
//!   held too (the uploader checks for open holds after marking it
//!   archived: one of the two always sees the other).
//! - `release` by a first user: the release is requested
//!   (`hold.release_requested`); the recording stays held.
//! - `release` by a second, different user: the row becomes `released`,
//!   then `hold.released` is appended, then the objects' legal hold is
//!   lifted.
//!   The same user twice is refused (two-person rule) and changes nothing.
//!   If lifting failed after the release was confirmed (the store was
//!   down), `release` again, by anyone, lifts it: both people have already
//!   agreed. `huifang verify` reports objects whose legal hold differs
//!   from the database.

use anyhow::Context;
use chrono::Utc;
use serde_json::json;
use uuid::Uuid;

use super::{Exit, HoldAction, HoldArgs, HoldTarget};
use crate::archive::Archive;
use crate::audit::{AuditAction, AuditEvent};
use crate::config::Config;
use crate::store::{Archived, HoldState, ReleaseStep, Store, StoreError};

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

/// Where the recording's objects are, when it is archived.
async fn archived(store: &Store, id: Uuid) -> anyhow::Result<Option<Archived>> {
    Ok(store.archive_record(id).await?.archived)
}

async fn set_hold(cfg: &Config, store: &Store, id: Uuid, t: &HoldTarget) -> anyhow::Result<Exit> {
    store.get_recording(id).await?;
    if let Some(h) = store.open_hold(id).await? {
        anyhow::bail!("recording {id} is already under legal hold (set by {} at {})", h.set_by, h.set_at);
    }
    let mut objects = archived(store, id).await?;
    if let Some(a) = &objects {
        Archive::from_config(cfg)?
            .set_recording_hold(a, true)
            .await
            .context("setting the archive's legal hold")?;
    }
    let hold = store.set_hold(id, &t.user, &t.reason, Utc::now()).await?;
    if objects.is_none() {
        // archived between the first look and the row: the uploader may have
        // checked for holds before the row existed, so hold its objects here
        objects = archived(store, id).await?;
        if let Some(a) = &objects {
            Archive::from_config(cfg)?.set_recording_hold(a, true).await.with_context(|| {
                format!(
                    "the hold is set in the database, but setting the archive's legal hold on {} failed",
                    a.key
                )
            })?;
        }
    }
    let key = objects.as_ref().map(|a| a.key.clone());
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
    println!(
        "recording {id}: legal hold set by {}{}",
        t.user,
        if key.is_some() { " (archive objects held)" } else { " (not archived yet: held when uploaded)" }
    );
    Ok(Exit::Ok)
}

async fn release(cfg: &Config, store: &Store, id: Uuid, t: &HoldTarget) -> anyhow::Result<Exit> {
    let step = match store.release_hold(id, &t.user, &t.reason, Utc::now()).await {
        Ok(step) => step,
        Err(StoreError::NotFound { .. }) => return finish_release(cfg, store, id).await,
        Err(e) => return Err(e.into()),
    };
    match step {
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
            let objects = archived(store, id).await?;
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
                            "archive_key": objects.as_ref().map(|a| a.key.clone()),
                        }),
                    )
                })
                .await
                .context("audit log: hold.released not written (the hold is released in the database)")?;
            if let Some(a) = &objects {
                Archive::from_config(cfg)?.set_recording_hold(a, false).await.with_context(|| {
                    format!(
                        "the hold is released in the database, but lifting the archive's legal hold on {} \
                         failed; run `huifang hold release` again to lift it",
                        a.key
                    )
                })?;
            }
            println!("recording {id}: legal hold released by {}", t.user);
        }
    }
    Ok(Exit::Ok)
}

/// `release` of a recording with no open hold: when its last hold was
/// released (by two people) but the archive still holds the objects (the
/// lifting failed), lift it now; otherwise there is nothing to release.
async fn finish_release(cfg: &Config, store: &Store, id: Uuid) -> anyhow::Result<Exit> {
    let last = store.holds(id).await?.into_iter().last();
    let released = last.as_ref().is_some_and(|h| h.state == HoldState::Released);
    if let (true, Some(a)) = (released, archived(store, id).await?) {
        let archive = Archive::from_config(cfg)?;
        let held = archive.head_version(&a.key, a.version.as_deref()).await?.is_some_and(|i| i.legal_hold)
            || archive
                .head_version(&a.manifest_key, a.manifest_version.as_deref())
                .await?
                .is_some_and(|i| i.legal_hold);
        if held {
            archive.set_recording_hold(&a, false).await.context("lifting the archive's legal hold")?;
            println!(
                "recording {id}: the archive's legal hold lifted (the release was confirmed by {})",
                last.and_then(|h| h.released_by).unwrap_or_default()
            );
            return Ok(Exit::Ok);
        }
    }
    anyhow::bail!("recording {id} is not under legal hold")
}
