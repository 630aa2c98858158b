//! The uploader: takes sealed recordings from the spool to the archive
//! (E4, E5). A worker in garage's style: one unit of work per
//! [`Uploader::step`], cancellable waiting, states
//! Busy/Idle/Throttled/Done, per-job exponential back-off on errors, a
//! visible [`WorkerStatus`] and an exit deadline at shutdown.
//!
//! ## One recording
//! 1. Read the sealed file (on a blocking thread), re-hash it and compare
//!    with the SHA-256 the database holds (E3): a mismatch is an error, and
//!    a different file is never uploaded.
//! 2. retain-until = the call's start + `retention.years_for(kind)`
//!    ([`super::retain_until`]).
//! 3. HEAD the WAV's key. Already there with the same `sha256` metadata and
//!    mode COMPLIANCE → no PUT (a crash between the PUT and the database
//!    update is repaired this way). There with another SHA-256 → error,
//!    nothing is written. Otherwise one PUT with COMPLIANCE, retain-until,
//!    Content-MD5, the SHA-256 and the metadata (`call-id`,
//!    `recording-id`, `task-id`, `client-id`, `agent-id` (the user part of
//!    the agent URI), `started-at` (`Z`), `duration-ms`, `sha256`).
//! 4. The same for the manifest JSON ([`super::Manifest`]) next to it,
//!    under the same lock. The manifest is built from the database only, so
//!    a retry produces the very same bytes.
//! 5. HEAD both and verify size, `sha256` metadata, mode COMPLIANCE,
//!    retain-until ≥ the expected date and every metadata entry; only then
//!    [`Store::mark_archived`].
//!    A recording under legal hold (an open `legal_holds` row) gets the
//!    hold on both objects before it is marked (and, if the hold appeared
//!    meanwhile, right after).
//! 6. The spooled file is removed only after that, and only once
//!    `spool.keep_after_upload_secs` have passed since.
//!
//! ## Object versions when a PUT is retried
//! The bucket is versioned (Object Lock requires it), so every PUT that
//! reaches the store creates a new *version* of the key, each locked on its
//! own until its retain-until date; a locked version can never be removed
//! before then, so a duplicate version would be kept for 15+ years. Two
//! things keep one recording one object:
//! - **HEAD before each PUT.** When the key's current version already holds
//!   the same SHA-256, locked COMPLIANCE at least as long, the PUT is
//!   skipped. That is the usual retry: a crash (`kill -9`, power cut)
//!   after the WAV's PUT, or after both PUTs but before the database
//!   update, or a lost response. The next attempt (at the next start, or by
//!   `huifang archive drain`) finds the objects and only verifies and marks
//!   them (`tests/archive_kill_during_upload.rs` kills at both points and
//!   counts one version per key with ListObjectVersions).
//! - **Deterministic bytes.** Both objects are a function of the sealed
//!   file and the database row alone (the manifest has no upload time), so
//!   whatever a retry writes is byte-identical: same SHA-256, same
//!   metadata, same lock.
//!
//! What remains: a PUT whose response was lost *while* the retry's HEAD ran
//! (two attempts racing, e.g. two daemons; one worker never uploads the
//! same recording twice at once) can leave a second, identical version.
//! A conditional PUT (`If-None-Match: *`) would close that gap on AWS S3,
//! but Ceph RGW 16 ignores the header on PutObject (a second PUT with it
//! makes a second version), so it is not relied on. A recording never ends
//! up as two *different* objects: a key whose current version holds another
//! SHA-256 is an error and nothing is written. The database records the
//! version ids HEAD reports after the upload; `verify`, `fetch` and `hold`
//! address those versions, so a later version or a delete marker (a plain
//! DELETE without a version id is allowed on a locked object: it hides the
//! current version and destroys nothing) does not change what they see.
//! Give huifang's S3 user no `s3:DeleteObject` permission all the same.
//!
//! ## Test hook (test-only)
//! `HUIFANG_TEST_UPLOAD_PAUSE=after-wav` (or `before-mark`) makes every
//! upload stop for good right after the WAV's PUT (or after both objects
//! are written and verified, before [`Store::mark_archived`]), after
//! printing `huifang test hook: upload of <recording> paused <point>` on
//! stderr. The kill-during-upload test (`tests/archive_kill_during_upload.rs`)
//! waits for that line and `kill -9`s the process there. Never set it in
//! production: the uploader would hang (`archive drain` gives up at its
//! `--timeout`).
//!
//! ## Errors
//! Each failed recording waits `archive.retry_min_secs`, doubling per
//! consecutive failure up to `archive.retry_max_secs`, and the error is
//! kept in `recordings.last_upload_error` (with `upload_attempts`). The
//! other recordings go on; with the archive down all of them back off and
//! the spool grows (see [`super::guard`]) until it returns.

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use tokio::sync::watch;
use tokio::task::JoinSet;
use tokio::time::Instant;
use tracing::{debug, info, warn};
use uuid::Uuid;

use super::{
    Archive, ArchiveError, LOCK_MODE, Manifest, ObjectInfo, PutObject, manifest_key, recording_key,
    retain_until, sha256_hex, z_time,
};
use crate::config::{Config, RetentionConfig};
use crate::store::{Archived, Store, StoreError, UploadJob};

/// How many pending recordings one step looks at.
const BATCH: u32 = 10_000;
/// How long an idle worker waits before looking at the queue again.
const IDLE_POLL: Duration = Duration::from_secs(1);

/// The uploader's settings (from `[archive]`, `[spool]`, `[retention]`).
#[derive(Debug, Clone)]
pub struct UploaderConfig {
    /// Uploads at once (`archive.parallel_uploads`).
    pub parallel: usize,
    /// First retry delay (`archive.retry_min_secs`).
    pub retry_min: Duration,
    /// Longest retry delay (`archive.retry_max_secs`).
    pub retry_max: Duration,
    /// Grace before a spooled file is removed (`spool.keep_after_upload_secs`).
    pub keep_after_upload: Duration,
    /// Years per callback kind.
    pub retention: RetentionConfig,
}

impl UploaderConfig {
    /// The settings of `cfg`.
    pub fn from_config(cfg: &Config) -> UploaderConfig {
        UploaderConfig {
            parallel: cfg.archive.parallel_uploads.max(1),
            retry_min: Duration::from_secs(cfg.archive.retry_min_secs),
            retry_max: Duration::from_secs(cfg.archive.retry_max_secs),
            keep_after_upload: Duration::from_secs(cfg.spool.keep_after_upload_secs),
            retention: cfg.retention.clone(),
        }
    }
}

/// What the worker is doing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WorkerState {
    /// Uploading.
    Busy,
    /// Nothing queued.
    Idle,
    /// Everything queued is waiting for its retry (the archive fails).
    Throttled,
    /// Stopped.
    Done,
}

/// The uploader's status, for operators (logged on every change).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkerStatus {
    /// What it is doing.
    pub state: WorkerState,
    /// Recordings waiting for the archive.
    pub queued: usize,
    /// The most recent error, if the last attempt failed.
    pub last_error: Option<String>,
    /// Recordings archived and verified since start.
    pub archived: u64,
    /// Failed attempts since start.
    pub failures: u64,
    /// Spooled files removed since start (archived, grace period over).
    pub removed: u64,
}

/// What one [`Uploader::step`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// Worked on at least one recording; call again at once.
    Busy,
    /// Nothing queued.
    Idle,
    /// Recordings are queued but all wait for their retry, until this instant.
    Throttled(Instant),
}

/// Why one upload failed.
#[derive(Debug, thiserror::Error)]
pub enum UploadError {
    /// The archive failed.
    #[error(transparent)]
    Archive(#[from] ArchiveError),
    /// The database failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The spooled file cannot be read.
    #[error("reading {path}: {source}")]
    Read {
        /// The file.
        path: String,
        /// The cause.
        source: std::io::Error,
    },
    /// The spooled file is not what was sealed (E3): never uploaded.
    #[error("spooled file {path} hashes to {actual}, but was sealed as {sealed}: not uploaded")]
    Tampered {
        /// The file.
        path: String,
        /// Its hash now.
        actual: String,
        /// The hash sealed in the database.
        sealed: String,
    },
    /// The archive holds another object under this recording's key.
    #[error("{key} already holds a different object (sha256 {found}): not overwritten")]
    Conflict {
        /// The key.
        key: String,
        /// The SHA-256 in its metadata.
        found: String,
    },
    /// HEAD after the PUT did not show what was written.
    #[error("verification of {key} failed: {what}")]
    Verify {
        /// The key.
        key: String,
        /// What differed.
        what: String,
    },
}

/// What [`Uploader::drain`] achieved.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DrainReport {
    /// Recordings archived and verified.
    pub archived: u64,
    /// Failed attempts.
    pub failures: u64,
    /// Recordings still queued at the end (0: the queue is empty).
    pub remaining: usize,
    /// Spooled files removed.
    pub removed: u64,
}

#[derive(Debug, Clone, Copy)]
struct Backoff {
    errors: u32,
    next: Instant,
}

/// The uploader worker. Create it with [`Uploader::new`], then either
/// [`run`](Self::run) it in the background (`serve`) or
/// [`drain`](Self::drain) the queue once (`huifang archive drain`).
pub struct Uploader {
    store: Store,
    archive: Archive,
    cfg: Arc<UploaderConfig>,
    backoff: HashMap<Uuid, Backoff>,
    status: watch::Sender<WorkerStatus>,
}

impl Uploader {
    /// A worker for `store` and `archive`, idle.
    pub fn new(store: Store, archive: Archive, cfg: UploaderConfig) -> Uploader {
        let (status, _) = watch::channel(WorkerStatus {
            state: WorkerState::Idle,
            queued: 0,
            last_error: None,
            archived: 0,
            failures: 0,
            removed: 0,
        });
        Uploader { store, archive, cfg: Arc::new(cfg), backoff: HashMap::new(), status }
    }

    /// The status, updated as the worker goes.
    pub fn status(&self) -> watch::Receiver<WorkerStatus> {
        self.status.subscribe()
    }

    fn set_status(&self, f: impl FnOnce(&mut WorkerStatus)) {
        let mut new = self.status.borrow().clone();
        f(&mut new);
        let old = self.status.borrow().clone();
        if new != old {
            if new.state != old.state || new.last_error != old.last_error {
                info!(
                    state = ?new.state,
                    queued = new.queued,
                    archived = new.archived,
                    failures = new.failures,
                    last_error = new.last_error.as_deref().unwrap_or(""),
                    "uploader status"
                );
            }
            self.status.send_replace(new);
        }
    }

    /// One unit of work: up to `archive.parallel_uploads` recordings whose
    /// retry time has come, at once; then the spooled files whose grace
    /// period is over are removed. Cancel-safe between recordings only: a
    /// dropped step may leave an object uploaded but not marked, which the
    /// next attempt finds by HEAD.
    pub async fn step(&mut self) -> Result<Step, StoreError> {
        let pending = self.store.pending_uploads(BATCH).await?;
        let now = Instant::now();
        let queued = pending.len();
        self.backoff.retain(|id, _| pending.iter().any(|j| j.recording_id == *id));
        let ready: Vec<UploadJob> = pending
            .into_iter()
            .filter(|j| self.backoff.get(&j.recording_id).is_none_or(|b| b.next <= now))
            .take(self.cfg.parallel)
            .collect();
        self.remove_spooled().await?;
        if ready.is_empty() {
            return Ok(if queued == 0 {
                self.set_status(|s| {
                    s.state = WorkerState::Idle;
                    s.queued = 0;
                });
                Step::Idle
            } else {
                let until = self.backoff.values().map(|b| b.next).min().unwrap_or(now + self.cfg.retry_min);
                self.set_status(|s| {
                    s.state = WorkerState::Throttled;
                    s.queued = queued;
                });
                Step::Throttled(until)
            });
        }
        self.set_status(|s| {
            s.state = WorkerState::Busy;
            s.queued = queued;
        });
        let mut set = JoinSet::new();
        for job in ready {
            let (store, archive, cfg) = (self.store.clone(), self.archive.clone(), self.cfg.clone());
            set.spawn(async move {
                let id = job.recording_id;
                (id, upload_one(&store, &archive, &cfg.retention, &job).await)
            });
        }
        while let Some(done) = set.join_next().await {
            let Ok((id, result)) = done else { continue };
            match result {
                Ok(a) => {
                    self.backoff.remove(&id);
                    info!(recording = %id, key = %a.key, "recording archived and verified");
                    self.set_status(|s| {
                        s.archived += 1;
                        s.queued = s.queued.saturating_sub(1);
                        s.last_error = None;
                    });
                }
                Err(e) => {
                    let msg = e.to_string();
                    let errors = self.backoff.get(&id).map_or(1, |b| b.errors + 1);
                    let delay = backoff_delay(self.cfg.retry_min, self.cfg.retry_max, errors);
                    self.backoff.insert(id, Backoff { errors, next: Instant::now() + delay });
                    warn!(recording = %id, attempt = errors, retry_in_secs = delay.as_secs(), error = %msg, "upload failed");
                    if let Err(se) = self.store.record_upload_error(id, &msg).await {
                        warn!(recording = %id, error = %se, "could not record the upload error");
                    }
                    self.set_status(|s| {
                        s.failures += 1;
                        s.last_error = Some(msg);
                    });
                }
            }
        }
        Ok(Step::Busy)
    }

    /// Removes the spooled files of recordings archived at least
    /// `spool.keep_after_upload_secs` ago; returns how many.
    async fn remove_spooled(&self) -> Result<u64, StoreError> {
        let grace = chrono::Duration::from_std(self.cfg.keep_after_upload).unwrap_or(chrono::Duration::MAX);
        let cutoff = Utc::now().checked_sub_signed(grace).unwrap_or(chrono::DateTime::<Utc>::MIN_UTC);
        let due = self.store.archived_not_removed(cutoff).await?;
        let mut removed = 0;
        for (id, path) in due {
            let gone = tokio::task::spawn_blocking({
                let path = path.clone();
                move || match std::fs::remove_file(&path) {
                    Ok(()) => Ok(()),
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
                    Err(e) => Err(e),
                }
            })
            .await;
            match gone {
                Ok(Ok(())) => {
                    self.store.mark_spool_removed(id, Utc::now()).await?;
                    removed += 1;
                    self.set_status(|s| s.removed += 1);
                    debug!(recording = %id, "spooled file removed after archiving");
                }
                Ok(Err(e)) => warn!(recording = %id, %path, error = %e, "cannot remove the spooled file"),
                Err(e) => warn!(recording = %id, error = %e, "spool removal thread failed"),
            }
        }
        Ok(removed)
    }

    /// Runs until `stop` turns true, then finishes the uploads in flight
    /// within `exit_deadline` (what is left is resumed at the next start).
    pub async fn run(mut self, mut stop: watch::Receiver<bool>, exit_deadline: Duration) {
        info!(archive = %self.archive.describe(), "uploader started");
        loop {
            if *stop.borrow() {
                break;
            }
            let step = {
                let fut = self.step();
                tokio::pin!(fut);
                tokio::select! {
                    r = &mut fut => r,
                    _ = stop.changed() => {
                        match tokio::time::timeout(exit_deadline, fut).await {
                            Ok(_) => {}
                            Err(_) => warn!("uploader exit deadline passed; unfinished uploads resume at the next start"),
                        }
                        break;
                    }
                }
            };
            let wait = match step {
                Ok(Step::Busy) => continue,
                Ok(Step::Idle) => Instant::now() + IDLE_POLL,
                Ok(Step::Throttled(until)) => until.min(Instant::now() + IDLE_POLL * 5),
                Err(e) => {
                    warn!(error = %e, "uploader cannot read its queue");
                    self.set_status(|s| s.last_error = Some(e.to_string()));
                    Instant::now() + self.cfg.retry_min
                }
            };
            tokio::select! {
                _ = tokio::time::sleep_until(wait) => {}
                _ = stop.changed() => {}
            }
        }
        self.set_status(|s| s.state = WorkerState::Done);
        info!("uploader stopped");
    }

    /// Works until the queue is empty or `deadline` passes; then removes
    /// the spooled files whose grace period is over.
    pub async fn drain(&mut self, deadline: Instant) -> Result<DrainReport, StoreError> {
        let start = self.status.borrow().clone();
        let remaining = loop {
            let step = tokio::time::timeout_at(deadline, self.step()).await;
            match step {
                Ok(Ok(Step::Busy)) => {}
                Ok(Ok(Step::Idle)) => break 0,
                Ok(Ok(Step::Throttled(until))) => {
                    if until >= deadline {
                        break self.store.pending_uploads(BATCH).await?.len();
                    }
                    tokio::time::sleep_until(until).await;
                }
                Ok(Err(e)) => return Err(e),
                Err(_) => break self.store.pending_uploads(BATCH).await?.len(),
            }
            if Instant::now() >= deadline {
                break self.store.pending_uploads(BATCH).await?.len();
            }
        };
        self.remove_spooled().await?;
        self.set_status(|s| s.state = WorkerState::Done);
        let end = self.status.borrow().clone();
        Ok(DrainReport {
            archived: end.archived - start.archived,
            failures: end.failures - start.failures,
            remaining,
            removed: end.removed - start.removed,
        })
    }
}

/// `min · 2^(errors-1)`, at most `max`.
pub fn backoff_delay(min: Duration, max: Duration, errors: u32) -> Duration {
    let factor = 1u32.checked_shl(errors.saturating_sub(1).min(30)).unwrap_or(u32::MAX);
    min.checked_mul(factor).unwrap_or(max).min(max)
}

/// The user part of a SIP URI (`sip:agent1@host` → `agent1`), or the whole
/// URI without its scheme when it has none.
fn agent_id(uri: &str) -> String {
    let rest = uri.split_once(':').map_or(uri, |(_, r)| r);
    let user = rest.split_once('@').map_or(rest, |(u, _)| u);
    user.split([';', ':']).next().unwrap_or(user).to_string()
}

/// A metadata value as an HTTP header can carry it: printable ASCII kept,
/// anything else (and `%`) percent-encoded as UTF-8.
fn header_safe(v: &str) -> String {
    let mut out = String::with_capacity(v.len());
    for b in v.bytes() {
        if (0x20..0x7f).contains(&b) && b != b'%' {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The WAV's user metadata.
fn recording_metadata(job: &UploadJob) -> BTreeMap<String, String> {
    let mut m = BTreeMap::new();
    m.insert("call-id".into(), job.call_id.to_string());
    m.insert("recording-id".into(), job.recording_id.to_string());
    if let Some(t) = &job.task_id {
        m.insert("task-id".into(), header_safe(t));
    }
    if let Some(c) = &job.client_id {
        m.insert("client-id".into(), header_safe(c));
    }
    m.insert("agent-id".into(), header_safe(&agent_id(&job.agent_uri)));
    m.insert("started-at".into(), z_time(job.call_started_at));
    m.insert("duration-ms".into(), job.duration_ms.to_string());
    m.insert("sha256".into(), job.sha256.clone());
    m
}

/// The environment variable of the test hook (see the module doc).
pub const TEST_PAUSE_VAR: &str = "HUIFANG_TEST_UPLOAD_PAUSE";

/// Test-only: stops this upload for good at `point` when
/// [`TEST_PAUSE_VAR`] names it, saying so on stderr first.
async fn test_pause(point: &str, recording: Uuid) {
    if std::env::var(TEST_PAUSE_VAR).is_ok_and(|v| v == point) {
        eprintln!("huifang test hook: upload of {recording} paused {point}");
        std::future::pending::<()>().await;
    }
}

/// Uploads and verifies one recording and its manifest, then marks it
/// archived (see the module doc for the steps).
pub async fn upload_one(
    store: &Store,
    archive: &Archive,
    retention: &RetentionConfig,
    job: &UploadJob,
) -> Result<Archived, UploadError> {
    let path = PathBuf::from(&job.path);
    let body = tokio::task::spawn_blocking({
        let path = path.clone();
        move || std::fs::read(&path)
    })
    .await
    .map_err(|e| UploadError::Read { path: job.path.clone(), source: std::io::Error::other(e) })?
    .map_err(|source| UploadError::Read { path: job.path.clone(), source })?;
    let actual = tokio::task::spawn_blocking({
        let body = body.clone();
        move || sha256_hex(&body)
    })
    .await
    .map_err(|e| UploadError::Read { path: job.path.clone(), source: std::io::Error::other(e) })?;
    if actual != job.sha256 || body.len() as u64 != job.bytes {
        return Err(UploadError::Tampered { path: job.path.clone(), actual, sealed: job.sha256.clone() });
    }

    let years = retention.years_for(job.kind.as_deref());
    let until = retain_until(job.call_started_at, years);
    let key = recording_key(job.call_started_at, job.recording_id);
    let mkey = manifest_key(job.call_started_at, job.recording_id);

    let meta = recording_metadata(job);
    let wav_put = put_once(
        archive,
        &PutObject {
            key: &key,
            body: &body,
            content_type: "audio/wav",
            sha256_hex: &job.sha256,
            metadata: &meta,
            retain_until: until,
        },
    )
    .await?;
    test_pause("after-wav", job.recording_id).await;

    let manifest = Manifest {
        version: 1,
        recording_id: job.recording_id,
        call_id: job.call_id,
        task_id: job.task_id.clone(),
        client_id: job.client_id.clone(),
        agent_uri: job.agent_uri.clone(),
        client_uri: job.client_uri.clone(),
        kind: job.kind.clone(),
        started_at: job.call_started_at,
        answered_at: job.answered_at,
        ended_at: job.ended_at,
        outcome: job.outcome.clone(),
        state: job.state.as_str().to_string(),
        duration_ms: job.duration_ms,
        bytes: job.bytes,
        sha256: job.sha256.clone(),
        retain_until: until,
        retention_years: years,
    };
    let mbody = manifest.to_json();
    let msha = sha256_hex(&mbody);
    let mmeta = BTreeMap::from([
        ("call-id".to_string(), job.call_id.to_string()),
        ("recording-id".to_string(), job.recording_id.to_string()),
        ("recording-sha256".to_string(), job.sha256.clone()),
        ("sha256".to_string(), msha.clone()),
    ]);
    let manifest_put = put_once(
        archive,
        &PutObject {
            key: &mkey,
            body: &mbody,
            content_type: "application/json",
            sha256_hex: &msha,
            metadata: &mmeta,
            retain_until: until,
        },
    )
    .await?;

    audit(
        store,
        crate::audit::AuditAction::RecordingUploaded,
        job.recording_id,
        serde_json::json!({
            "key": key,
            "manifest_key": mkey,
            "sha256": job.sha256,
            "archive": archive.describe(),
            // false: the object was already there (a retry after a crash), no PUT
            "put": { "wav": wav_put, "manifest": manifest_put },
        }),
    )
    .await;
    let wav = verify(archive, &key, body.len() as u64, &meta, until).await?;
    let man = verify(archive, &mkey, mbody.len() as u64, &mmeta, until).await?;
    test_pause("before-mark", job.recording_id).await;
    let archived = Archived {
        key,
        manifest_key: mkey,
        version: wav.version_id,
        manifest_version: man.version_id,
        retain_until: until,
        at: Utc::now(),
    };
    // A recording put under legal hold before it was archived: hold its objects.
    let held = store.open_hold(job.recording_id).await?.is_some();
    if held {
        archive.set_recording_hold(&archived, true).await?;
    }
    match store.mark_archived(job.recording_id, &archived).await {
        Ok(()) => {
            // `hold set` may have written its row after the look above and
            // looked for the archived objects before they were marked: look
            // again now that they are (see `cli/hold.rs`).
            if !held
                && store.open_hold(job.recording_id).await?.is_some()
                && let Err(e) = archive.set_recording_hold(&archived, true).await
            {
                let id = job.recording_id;
                warn!(recording = %id, error = %e, "legal hold not set on the archived objects (verify reports it)");
            }
            let detail = serde_json::json!({
                "key": archived.key,
                "version": archived.version,
                "retain_until": crate::archive::z_time(archived.retain_until),
                "mode": LOCK_MODE,
            });
            audit(store, crate::audit::AuditAction::RecordingVerified, job.recording_id, detail).await;
        }
        // another daemon finished it first: the objects are verified either way
        Err(StoreError::Conflict { .. }) => {}
        Err(e) => return Err(e.into()),
    }
    Ok(archived)
}

/// Appends an audit event (E6); a failure is logged, the upload stands.
async fn audit(
    store: &Store,
    action: crate::audit::AuditAction,
    subject: uuid::Uuid,
    detail: serde_json::Value,
) {
    let event = crate::audit::AuditEvent::system(action, subject, detail);
    if let Err(e) = store.append_audit(&event).await {
        warn!(recording = %subject, error = %e, "audit event not written");
    }
}

/// PUTs `obj` unless its key already holds the same bytes, locked; `true`
/// when it PUT.
async fn put_once(archive: &Archive, obj: &PutObject<'_>) -> Result<bool, UploadError> {
    if let Some(info) = archive.head(obj.key).await? {
        let found = info.metadata.get("sha256").cloned().unwrap_or_default();
        if found != obj.sha256_hex {
            return Err(UploadError::Conflict { key: obj.key.to_string(), found });
        }
        if info.lock_mode.as_deref() == Some(LOCK_MODE)
            && info.retain_until.is_some_and(|t| t >= obj.retain_until)
        {
            debug!(key = obj.key, "already in the archive; no PUT");
            return Ok(false);
        }
    }
    match archive.put(obj).await {
        Ok(_) => Ok(true),
        // local backend: a concurrent writer stored the same key meanwhile; verify decides
        Err(ArchiveError::Exists(_)) => Ok(false),
        Err(e) => Err(e.into()),
    }
}

/// HEADs `key` and checks it against what was written.
async fn verify(
    archive: &Archive,
    key: &str,
    size: u64,
    meta: &BTreeMap<String, String>,
    until: chrono::DateTime<Utc>,
) -> Result<ObjectInfo, UploadError> {
    let fail = |what: String| UploadError::Verify { key: key.to_string(), what };
    let info = archive.head(key).await?.ok_or_else(|| fail("object missing after PUT".into()))?;
    if info.size != size {
        return Err(fail(format!("size {} instead of {size}", info.size)));
    }
    if info.lock_mode.as_deref() != Some(LOCK_MODE) {
        return Err(fail(format!("lock mode {:?} instead of COMPLIANCE", info.lock_mode)));
    }
    match info.retain_until {
        Some(t) if t >= until => {}
        other => return Err(fail(format!("retain-until {other:?} before {}", z_time(until)))),
    }
    for (k, v) in meta {
        if info.metadata.get(k) != Some(v) {
            return Err(fail(format!("metadata {k} is {:?}, expected {v:?}", info.metadata.get(k))));
        }
    }
    Ok(info)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_the_maximum() {
        let (min, max) = (Duration::from_secs(2), Duration::from_secs(60));
        let got: Vec<u64> = (1..=8).map(|n| backoff_delay(min, max, n).as_secs()).collect();
        assert_eq!(got, vec![2, 4, 8, 16, 32, 60, 60, 60]);
        assert_eq!(backoff_delay(min, max, 1000), max);
    }

    #[test]
    fn agent_id_is_the_user_part() {
        assert_eq!(agent_id("sip:agent1@127.0.0.1:5060;transport=udp"), "agent1");
        assert_eq!(agent_id("sips:a-7@example.com"), "a-7");
        assert_eq!(agent_id("sip:example.com"), "example.com");
    }

    #[test]
    fn metadata_values_are_header_safe() {
        assert_eq!(header_safe("C-001"), "C-001");
        assert_eq!(header_safe("客户%1"), "%E5%AE%A2%E6%88%B7%251");
    }
}
