//! The archive's columns: the uploader's queue and what it found.
//!
//! A final recording (`sealed` or `interrupted`) with no `archived_at` is
//! queued ([`Store::pending_uploads`]). Each failed try is counted with its
//! error ([`Store::record_upload_error`]); once the WAV and its manifest are
//! verified in the archive, [`Store::mark_archived`] writes where they are
//! and until when they are locked, exactly once (the schema refuses any
//! later change). The spooled file is removed only after that
//! ([`Store::archived_not_removed`], [`Store::mark_spool_removed`], E4).

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::{ArchiveRecord, Archived, Backend, Store, StoreError, UploadJob, error::query, ms};

/// `on_backend!` of `mod.rs` (declared after this module, so not in scope).
macro_rules! on_backend {
    ($store:expr, $method:ident ( $($arg:expr),* )) => {
        match &$store.backend {
            Backend::Sqlite(b) => b.$method($($arg),*).await,
            Backend::Postgres(b) => b.$method($($arg),*).await,
        }
    };
}

impl Store {
    /// Up to `limit` final recordings not yet archived, oldest first, with
    /// the call's fields their manifest needs.
    pub async fn pending_uploads(&self, limit: u32) -> Result<Vec<UploadJob>, StoreError> {
        on_backend!(self, pending_uploads(i64::from(limit))).map_err(query("pending_uploads"))
    }

    /// Counts a failed upload of recording `id` and keeps `msg` as its last
    /// error. Does nothing once the recording is archived.
    pub async fn record_upload_error(&self, id: Uuid, msg: &str) -> Result<(), StoreError> {
        let msg: String = msg.chars().take(1000).collect();
        on_backend!(self, record_upload_error(id, &msg)).map_err(query("record_upload_error"))?;
        Ok(())
    }

    /// Records that recording `id` is in the archive, verified: its keys,
    /// versions, retain-until date and the time. Once only and only for a
    /// final recording: a second call is [`StoreError::Conflict`] and
    /// changes nothing; an unknown id is [`StoreError::NotFound`].
    pub async fn mark_archived(&self, id: Uuid, a: &Archived) -> Result<(), StoreError> {
        if a.key.is_empty() || a.manifest_key.is_empty() {
            return Err(StoreError::Invalid { what: "archive key" });
        }
        let a = Archived { retain_until: ms(a.retain_until), at: ms(a.at), ..a.clone() };
        let n = on_backend!(self, mark_archived(id, &a)).map_err(query("mark_archived"))?;
        if n == 0 {
            self.get_recording(id).await?;
            return Err(StoreError::Conflict { what: "recording already archived, or not final", id });
        }
        Ok(())
    }

    /// Archived recordings whose spooled file is still there and whose
    /// archiving happened at or before `older_than`: `(id, path)`.
    pub async fn archived_not_removed(
        &self,
        older_than: DateTime<Utc>,
    ) -> Result<Vec<(Uuid, String)>, StoreError> {
        on_backend!(self, archived_not_removed(ms(older_than))).map_err(query("archived_not_removed"))
    }

    /// Records that the spooled file of recording `id` was removed. Only
    /// after [`mark_archived`](Self::mark_archived), once; otherwise
    /// [`StoreError::Conflict`].
    pub async fn mark_spool_removed(&self, id: Uuid, at: DateTime<Utc>) -> Result<(), StoreError> {
        let n = on_backend!(self, mark_spool_removed(id, ms(at))).map_err(query("mark_spool_removed"))?;
        if n == 0 {
            self.get_recording(id).await?;
            return Err(StoreError::Conflict {
                what: "recording not archived, or spool already removed",
                id,
            });
        }
        Ok(())
    }

    /// The archive columns of recording `id`, or [`StoreError::NotFound`].
    pub async fn archive_record(&self, id: Uuid) -> Result<ArchiveRecord, StoreError> {
        on_backend!(self, archive_record(id))
            .map_err(query("archive_record"))?
            .ok_or(StoreError::NotFound { what: "recording", id })
    }
}
