//! Legal hold on a recording, released only by two people: `huifang hold
//! set|release --recording ID --reason TEXT --user NAME`, and
//! `POST /api/v1/recordings/{id}/hold` and `…/hold/release` (compliance).
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

use chrono::Utc;
use serde_json::json;
use uuid::Uuid;

use super::OpsError;
use super::access::{Person, Role};
use crate::archive::Archive;
use crate::audit::{AuditAction, AuditEvent};
use crate::store::{Archived, HoldRow, HoldState, ReleaseStep, Store, StoreError};

/// What a hold operation did.
#[derive(Debug, Clone, serde::Serialize)]
#[serde(tag = "result", rename_all = "snake_case")]
pub enum HoldResult {
    /// The hold is set (on the archive's objects too when archived).
    Set {
        /// The hold.
        hold_id: Uuid,
        /// The archived WAV's key, when the objects were held now.
        archive_key: Option<String>,
    },
    /// A first person asked to release it; it stays held.
    ReleaseRequested {
        /// The hold.
        hold_id: Uuid,
    },
    /// A second person confirmed: released, objects lifted.
    Released {
        /// The hold.
        hold_id: Uuid,
        /// Who asked first.
        requested_by: Option<String>,
    },
    /// An earlier confirmed release whose lifting had failed was finished.
    Lifted {
        /// Who confirmed the release.
        released_by: Option<String>,
    },
}

/// Where the recording's objects are, when it is archived.
async fn archived(store: &Store, id: Uuid) -> Result<Option<Archived>, OpsError> {
    Ok(store.archive_record(id).await?.archived)
}

fn check(p: &Person, reason: &str) -> Result<(), OpsError> {
    p.require_any(&[Role::Compliance])?;
    if reason.trim().is_empty() {
        return Err(OpsError::invalid("reason", "say why (it is kept in the audit log)"));
    }
    Ok(())
}

/// Puts recording `id` under legal hold, by `p`, for `reason`.
pub async fn set_hold(
    store: &Store,
    archive: &Archive,
    p: &Person,
    id: Uuid,
    reason: &str,
) -> Result<HoldResult, OpsError> {
    check(p, reason)?;
    store.get_recording(id).await?;
    if let Some(h) = store.open_hold(id).await? {
        return Err(OpsError::Conflict(format!(
            "recording {id} is already under legal hold (set by {} at {})",
            h.set_by, h.set_at
        )));
    }
    let mut objects = archived(store, id).await?;
    if let Some(a) = &objects {
        archive.set_recording_hold(a, true).await?;
    }
    let hold = store.set_hold(id, &p.login, reason, Utc::now()).await?;
    if objects.is_none() {
        // archived between the first look and the row: the uploader may have
        // checked for holds before the row existed, so hold its objects here
        objects = archived(store, id).await?;
        if let Some(a) = &objects {
            archive.set_recording_hold(a, true).await.map_err(|e| {
                OpsError::Internal(format!(
                    "the hold is set in the database, but setting the archive's legal hold on {} failed: {e}",
                    a.key
                ))
            })?;
        }
    }
    let key = objects.as_ref().map(|a| a.key.clone());
    store
        .append_audit(&AuditEvent {
            at: hold.set_at,
            ..AuditEvent::new(
                &p.login,
                AuditAction::HoldSet,
                id,
                json!({"hold_id": hold.id, "reason": reason, "archive_key": key, "address": p.address}),
            )
        })
        .await?;
    Ok(HoldResult::Set { hold_id: hold.id, archive_key: key })
}

/// Asks for (first person) or confirms (a second, different person) the
/// release of recording `id`'s legal hold.
pub async fn release_hold(
    store: &Store,
    archive: &Archive,
    p: &Person,
    id: Uuid,
    reason: &str,
) -> Result<HoldResult, OpsError> {
    check(p, reason)?;
    let step = match store.release_hold(id, &p.login, reason, Utc::now()).await {
        Ok(step) => step,
        Err(StoreError::NotFound { .. }) => return finish_release(store, archive, id).await,
        Err(StoreError::Conflict { what, .. }) if what.starts_with("two-person") => {
            return Err(OpsError::Rule {
                code: "two-person",
                reason: format!("{what}: {} asked for this release", p.login),
            });
        }
        Err(e) => return Err(e.into()),
    };
    match step {
        ReleaseStep::Requested(hold) => {
            store
                .append_audit(&AuditEvent {
                    at: hold.requested_at.unwrap_or_else(Utc::now),
                    ..AuditEvent::new(
                        &p.login,
                        AuditAction::HoldReleaseRequested,
                        id,
                        json!({"hold_id": hold.id, "reason": reason, "address": p.address}),
                    )
                })
                .await?;
            Ok(HoldResult::ReleaseRequested { hold_id: hold.id })
        }
        ReleaseStep::Released(hold) => {
            let objects = archived(store, id).await?;
            store
                .append_audit(&AuditEvent {
                    at: hold.released_at.unwrap_or_else(Utc::now),
                    ..AuditEvent::new(
                        &p.login,
                        AuditAction::HoldReleased,
                        id,
                        json!({
                            "hold_id": hold.id,
                            "reason": reason,
                            "requested_by": hold.requested_by,
                            "archive_key": objects.as_ref().map(|a| a.key.clone()),
                            "address": p.address,
                        }),
                    )
                })
                .await?;
            if let Some(a) = &objects {
                archive.set_recording_hold(a, false).await.map_err(|e| {
                    OpsError::Internal(format!(
                        "the hold is released in the database, but lifting the archive's legal hold on {} \
                         failed ({e}); release again to lift it",
                        a.key
                    ))
                })?;
            }
            Ok(HoldResult::Released { hold_id: hold.id, requested_by: hold.requested_by })
        }
    }
}

/// The holds of a recording, oldest first (compliance).
pub async fn holds(store: &Store, p: &Person, id: Uuid) -> Result<Vec<HoldRow>, OpsError> {
    p.require_any(&[Role::Compliance])?;
    store.get_recording(id).await?;
    Ok(store.holds(id).await?)
}

/// `release` of a recording with no open hold: when its last hold was
/// released (by two people) but the archive still holds the objects (the
/// lifting failed), lift it now; otherwise there is nothing to release.
async fn finish_release(store: &Store, archive: &Archive, id: Uuid) -> Result<HoldResult, OpsError> {
    let last = store.holds(id).await?.into_iter().last();
    let released = last.as_ref().is_some_and(|h| h.state == HoldState::Released);
    if let (true, Some(a)) = (released, archived(store, id).await?) {
        let held = archive.head_version(&a.key, a.version.as_deref()).await?.is_some_and(|i| i.legal_hold)
            || archive
                .head_version(&a.manifest_key, a.manifest_version.as_deref())
                .await?
                .is_some_and(|i| i.legal_hold);
        if held {
            archive.set_recording_hold(&a, false).await?;
            return Ok(HoldResult::Lifted { released_by: last.and_then(|h| h.released_by) });
        }
    }
    Err(OpsError::Conflict(format!("recording {id} is not under legal hold")))
}
