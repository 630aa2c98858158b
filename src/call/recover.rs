//! Start-up recovery after a crash (E4).
//!
//! Before huifang places any call it repairs what a `kill -9` or a power
//! cut left behind: every WAV still in the spool's `recording/` directory
//! gets its header sizes rewritten from its length and is sealed (fsync,
//! SHA-256, rename) with state `interrupted`; every call without an outcome
//! of this instance is closed as `interrupted`. Nothing is deleted.

use chrono::Utc;
use tracing::{info, warn};

use super::Outcome;
use crate::media::recorder::repair_spool;
use crate::store::{NewRecording, RecordingState, SealedRecording, SideCounters, Store, StoreError};

/// What recovery did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Recovered {
    /// Recordings repaired and sealed as interrupted.
    pub recordings: usize,
    /// Calls closed as interrupted.
    pub calls: usize,
}

/// Repairs the spool and closes open calls. Call once at start-up, before
/// the first call. With `instance`, only the open calls that instance
/// placed (and calls of no named instance) are closed: other instances
/// sharing the database may be in the middle of theirs.
pub async fn recover(
    store: &Store,
    spool: &std::path::Path,
    instance: Option<&str>,
) -> Result<Recovered, StoreError> {
    let spool = spool.to_path_buf();
    let repaired = match tokio::task::spawn_blocking(move || repair_spool(&spool)).await {
        Ok(Ok(r)) => r,
        Ok(Err(e)) => {
            warn!(error = %e, "spool repair failed");
            Vec::new()
        }
        Err(e) => {
            warn!(error = %e, "spool repair panicked");
            Vec::new()
        }
    };
    let mut done = Recovered::default();
    for sealed in &repaired {
        let row = SealedRecording {
            id: sealed.id,
            path: sealed.path.display().to_string(),
            sha256: sealed.sha256.clone(),
            bytes: sealed.bytes,
            duration_ms: sealed.duration_ms,
            agent: SideCounters::default(),
            client: SideCounters::default(),
            state: RecordingState::Interrupted,
            sealed_at: Utc::now(),
        };
        let mut result = store.seal_recording(&row).await;
        if let Err(StoreError::NotFound { .. }) = result {
            // The crash came between opening the file and writing its row:
            // the file is named after its call, so the row can be made now.
            let new = NewRecording {
                id: sealed.id,
                call_id: sealed.id,
                path: sealed.path.display().to_string(),
                started_at: Utc::now(),
            };
            result = match store.insert_recording(&new).await {
                Ok(()) => store.seal_recording(&row).await,
                Err(e) => Err(e),
            };
        }
        match result {
            Ok(()) => done.recordings += 1,
            Err(e) => warn!(recording = %sealed.id, error = %e, "repaired recording not traced"),
        }
        info!(recording = %sealed.id, duration_ms = sealed.duration_ms, "repaired an interrupted recording");
    }
    let open = match instance {
        Some(me) => store.open_calls_of(me).await?,
        None => store.open_calls().await?,
    };
    for call in open {
        store
            .finish_call(
                call,
                Outcome::Interrupted.as_str(),
                Some("huifang stopped during the call"),
                Utc::now(),
            )
            .await?;
        done.calls += 1;
        info!(%call, "closed an interrupted call");
    }
    Ok(done)
}
