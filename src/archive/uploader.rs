//! The uploader: takes sealed recordings from the spool to the archive
//! (E4, E5). A worker in garage's style: a continuous, bounded pool of
//! uploads, cancellable waiting, states Busy/Idle/Throttled/Done,
//! exponential back-off on errors, a visible [`WorkerStatus`] and an exit
//! deadline at shutdown.
//!
//! ## The pool
//! Up to `archive.parallel_uploads` recordings upload at once, each a task
//! in a [`JoinSet`]; as soon as one finishes the next queued recording
//! starts (no waiting for a whole batch). The queue is read from the store
//! ([`Store::pending_uploads`], oldest first) when it runs empty: at once
//! when a recording was just sealed (the call task [nudges](Uploader::nudge)
//! the worker), otherwise at most once a second. Recordings in flight are
//! never started twice.
//!
//! Back-off, two levels: a failed recording waits `archive.retry_min_secs`,
//! doubling per consecutive failure of *that* recording up to
//! `archive.retry_max_secs`, while the others go on; and each time another
//! `archive.parallel_uploads` uploads have failed *in a row* (the archive
//! or the database is down, not one bad file), the whole worker pauses —
//! taking no new work — for `retry_min_secs`, doubling per pause up to
//! `retry_max_secs` (at most [`PAUSE_MAX`]), until an upload succeeds
//! again. So an outage costs a few failed requests per pause, not one per
//! queued recording. The first success after a pause ends every
//! recording's back-off: the queue moves at once when the archive is back,
//! not each recording up to `retry_max_secs` later (found by the soak). The status
//! shows the uploads in flight, the errors in a row and the pause.
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
//!    under the same lock, always *after* the WAV: so when the WAV was not
//!    there, neither is the manifest and its HEAD is skipped. The manifest
//!    is built from the database only, so a retry produces the very same
//!    bytes.
//! 5. HEAD both (at once) and verify size, `sha256` metadata, mode
//!    COMPLIANCE, retain-until ≥ the expected date and every metadata
//!    entry; only then mark it archived, together with its
//!    `recording.uploaded` and `recording.verified` audit events in one
//!    transaction ([`Store::mark_archived_audited`]): one commit, and never
//!    an archived recording without its events.
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
//!   them (`tests/archive/archive_kill_during_upload.rs` kills at both points and
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
//! ## Test hook (test builds only: the `test-hooks` feature)
//! `HUIFANG_TEST_UPLOAD_PAUSE=after-wav` (or `before-mark`) makes every
//! upload stop for good right after the WAV's PUT (or after both objects
//! are written and verified, before [`Store::mark_archived`]), after
//! printing `huifang test hook: upload of <recording> paused <point>` on
//! stderr. The kill-during-upload test (`tests/archive/archive_kill_during_upload.rs`)
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

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use tokio::sync::{Notify, watch};
use tokio::task::JoinSet;
use tokio::time::Instant;
use tracing::{debug, info, warn};
use uuid::Uuid;

use super::{
    Archive, ArchiveError, Body, LOCK_MODE, Manifest, ObjectInfo, PutObject, file_digests, manifest_key,
    recording_key, retain_until, sha256_hex, z_time,
};
use crate::audit::{AuditAction, AuditEvent};
use crate::config::{Config, RetentionConfig};
use crate::store::{Archived, Store, StoreError, UploadJob};

/// How many pending recordings one read of the queue takes.
const BATCH: u32 = 10_000;
/// How often an idle worker looks at the queue without a nudge.
const IDLE_POLL: Duration = Duration::from_secs(1);
/// How often archived files past their grace period are removed.
const CLEANUP_EVERY: Duration = Duration::from_secs(10);

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
    /// Recordings are queued but wait: each for its retry, or the whole
    /// worker after errors in a row.
    Throttled,
    /// Stopped.
    Done,
}

/// The uploader's status, for operators (logged on every change of state
/// or error).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkerStatus {
    /// What it is doing.
    pub state: WorkerState,
    /// Recordings waiting for the archive (as of the last read of the
    /// queue, minus those archived since).
    pub queued: usize,
    /// Uploads running now.
    pub in_flight: usize,
    /// Failed uploads since the last success.
    pub errors_in_a_row: u32,
    /// While the whole worker pauses after errors in a row: until when.
    pub paused_until: Option<Instant>,
    /// The most recent error, if the last attempt failed.
    pub last_error: Option<String>,
    /// Recordings archived and verified since start.
    pub archived: u64,
    /// Failed attempts since start.
    pub failures: u64,
    /// Spooled files removed since start (archived, grace period over).
    pub removed: u64,
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
    /// The upload task panicked.
    #[error("upload task failed: {0}")]
    Task(String),
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

type Done = (Uuid, Result<Archived, UploadError>);

/// The longest worker pause: the archive is tried again at least this
/// often through an outage, so the queue starts moving at most this long
/// after the store returns (a try costs `parallel_uploads` requests).
pub const PAUSE_MAX: Duration = Duration::from_secs(60);

/// The uploader worker. Create it with [`Uploader::new`], then either
/// [`run`](Self::run) it in the background (`serve`) or
/// [`drain`](Self::drain) the queue once (`huifang archive drain`).
pub struct Uploader {
    store: Store,
    archive: Archive,
    cfg: Arc<UploaderConfig>,
    /// Per recording: failures in a row and when it may be tried again.
    backoff: HashMap<Uuid, Backoff>,
    /// Read from the store, not started yet.
    queue: VecDeque<UploadJob>,
    /// The uploads running.
    tasks: JoinSet<Done>,
    in_flight: HashSet<Uuid>,
    task_ids: HashMap<tokio::task::Id, Uuid>,
    /// Worker pauses since the last successful upload.
    pauses: u32,
    /// Not before this is the store asked for more work (unless nudged).
    refill_at: Instant,
    cleanup_at: Instant,
    nudge: Arc<Notify>,
    status: watch::Sender<WorkerStatus>,
}

impl Uploader {
    /// A worker for `store` and `archive`, idle.
    pub fn new(store: Store, archive: Archive, cfg: UploaderConfig) -> Uploader {
        let (status, _) = watch::channel(WorkerStatus {
            state: WorkerState::Idle,
            queued: 0,
            in_flight: 0,
            errors_in_a_row: 0,
            paused_until: None,
            last_error: None,
            archived: 0,
            failures: 0,
            removed: 0,
        });
        let now = Instant::now();
        Uploader {
            store,
            archive,
            cfg: Arc::new(cfg),
            backoff: HashMap::new(),
            queue: VecDeque::new(),
            tasks: JoinSet::new(),
            in_flight: HashSet::new(),
            task_ids: HashMap::new(),
            pauses: 0,
            refill_at: now,
            cleanup_at: now,
            nudge: Arc::new(Notify::new()),
            status,
        }
    }

    /// Uses `nudge` to be woken: whoever seals a recording calls
    /// `nudge.notify_one()` and the worker reads the queue at once instead
    /// of at its next poll.
    pub fn with_nudge(mut self, nudge: Arc<Notify>) -> Uploader {
        self.nudge = nudge;
        self
    }

    /// The handle that wakes the worker (see [`with_nudge`](Self::with_nudge)).
    pub fn nudge(&self) -> Arc<Notify> {
        self.nudge.clone()
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
                    in_flight = new.in_flight,
                    archived = new.archived,
                    failures = new.failures,
                    errors_in_a_row = new.errors_in_a_row,
                    paused_secs = new.paused_until.map_or(0, |t| t.saturating_duration_since(Instant::now()).as_secs()),
                    last_error = new.last_error.as_deref().unwrap_or(""),
                    "uploader status"
                );
            }
            self.status.send_replace(new);
        }
    }

    /// Reads the queue from the store: every pending recording not in
    /// flight, oldest first. Returns how many are pending in all.
    async fn refill(&mut self) -> Result<usize, StoreError> {
        let pending = self.store.pending_uploads(BATCH).await?;
        self.refill_at = Instant::now() + IDLE_POLL;
        let total = pending.len();
        self.backoff.retain(|id, _| pending.iter().any(|j| j.recording_id == *id));
        self.queue = pending.into_iter().filter(|j| !self.in_flight.contains(&j.recording_id)).collect();
        self.set_status(|s| s.queued = total);
        Ok(total)
    }

    /// Starts uploads while a slot is free and work is ready; returns when
    /// to look again (`None`: when an upload finishes or a nudge comes).
    async fn fill(&mut self) -> Result<Option<Instant>, StoreError> {
        let now = Instant::now();
        if let Some(until) = self.status.borrow().paused_until.filter(|t| *t > now) {
            return Ok(Some(until));
        }
        while self.tasks.len() < self.cfg.parallel {
            let Some(job) = self.queue.pop_front() else {
                if now < self.refill_at || self.refill().await? == 0 || self.queue.is_empty() {
                    break;
                }
                continue;
            };
            let id = job.recording_id;
            if self.in_flight.contains(&id) || self.backoff.get(&id).is_some_and(|b| b.next > now) {
                continue; // back in the queue at the next read
            }
            let (store, archive, cfg) = (self.store.clone(), self.archive.clone(), self.cfg.clone());
            self.in_flight.insert(id);
            let task = self
                .tasks
                .spawn(async move { (id, upload_one(&store, &archive, &cfg.retention, &job).await) });
            self.task_ids.insert(task.id(), id);
        }
        let waiting = !self.backoff.is_empty() || !self.queue.is_empty();
        let state = match (self.tasks.is_empty(), waiting) {
            (false, _) => WorkerState::Busy,
            (true, true) => WorkerState::Throttled,
            (true, false) => WorkerState::Idle,
        };
        let in_flight = self.tasks.len();
        self.set_status(|s| {
            s.state = state;
            s.in_flight = in_flight;
            s.paused_until = None;
        });
        if self.tasks.len() >= self.cfg.parallel {
            // no free slot: nothing to do before an upload finishes (waking
            // at a time already past would spin)
            return Ok(None);
        }
        // a free slot and an empty queue (else an upload would have started):
        // the queue was just read, so look again at the next poll, or when
        // the first recording's retry comes, whichever is later
        let retry = self.backoff.values().map(|b| b.next).min();
        let at = retry.map_or(self.refill_at, |r| r.max(self.refill_at));
        Ok(Some(at.max(now + Duration::from_millis(1))))
    }

    /// Books the end of one upload.
    async fn finished(&mut self, done: Result<Done, tokio::task::JoinError>) {
        let (id, result) = match done {
            Ok(d) => d,
            Err(e) => match self.task_ids.get(&e.id()).copied() {
                // a panic (or an abort) in an upload: counted as a failure
                Some(id) => (id, Err(UploadError::Task(e.to_string()))),
                None => {
                    warn!(error = %e, "upload task failed");
                    return;
                }
            },
        };
        self.in_flight.remove(&id);
        self.task_ids.retain(|_, r| *r != id);
        match result {
            Ok(a) => {
                self.backoff.remove(&id);
                if self.pauses > 0 {
                    // the archive (or the database) is back after an outage:
                    // what waited it out goes now, not each at the end of
                    // its own back-off — up to retry_max_secs later
                    let waiting = self.backoff.len();
                    self.backoff.clear();
                    self.refill_at = Instant::now();
                    info!(waiting, "uploads succeed again; the recordings that waited are retried now");
                }
                self.pauses = 0;
                info!(recording = %id, key = %a.key, "recording archived and verified");
                let in_flight = self.tasks.len();
                self.set_status(|s| {
                    s.archived += 1;
                    s.queued = s.queued.saturating_sub(1);
                    s.in_flight = in_flight;
                    s.errors_in_a_row = 0;
                    s.paused_until = None;
                    s.last_error = None;
                });
            }
            Err(e) => {
                let msg = e.to_string();
                let errors = self.backoff.get(&id).map_or(1, |b| b.errors + 1);
                let delay = backoff_delay(self.cfg.retry_min, self.cfg.retry_max, errors);
                self.backoff.insert(id, Backoff { errors, next: Instant::now() + delay });
                warn!(recording = %id, attempt = errors, retry_in_secs = delay.as_secs(), error = %msg, "upload failed");
                crate::metrics::METRICS.archive_error();
                if let Err(se) = self.store.record_upload_error(id, &msg).await {
                    warn!(recording = %id, error = %se, "could not record the upload error");
                }
                let errors_in_a_row = self.status.borrow().errors_in_a_row + 1;
                // a whole pool's worth of failures in a row: pause the worker
                let pause = if errors_in_a_row.is_multiple_of(self.cfg.parallel.max(1) as u32) {
                    self.pauses += 1;
                    let longest = self.cfg.retry_max.min(PAUSE_MAX);
                    let pause = backoff_delay(self.cfg.retry_min.min(longest), longest, self.pauses);
                    warn!(
                        errors_in_a_row,
                        pause_secs = pause.as_secs(),
                        "uploads fail in a row; the uploader pauses"
                    );
                    Some(Instant::now() + pause)
                } else {
                    None
                };
                let in_flight = self.tasks.len();
                self.set_status(|s| {
                    s.failures += 1;
                    s.in_flight = in_flight;
                    s.errors_in_a_row = errors_in_a_row;
                    if pause.is_some() {
                        s.paused_until = pause;
                        s.state = WorkerState::Throttled;
                    }
                    s.last_error = Some(msg);
                });
            }
        }
    }

    /// Removes the spooled files of recordings archived at least
    /// `spool.keep_after_upload_secs` ago; returns how many.
    async fn remove_spooled(&mut self) -> Result<u64, StoreError> {
        self.cleanup_at = Instant::now() + CLEANUP_EVERY;
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

    /// Runs until `stop` turns true (or its sender is gone), then lets the
    /// uploads in flight finish within `exit_deadline`; what is left is
    /// resumed at the next start (the next attempt finds a half-done upload
    /// by HEAD).
    pub async fn run(mut self, mut stop: watch::Receiver<bool>, exit_deadline: Duration) {
        info!(archive = %self.archive.describe(), parallel = self.cfg.parallel, "uploader started");
        while !*stop.borrow() {
            let wake = match self.fill().await {
                Ok(w) => w,
                Err(e) => {
                    warn!(error = %e, "uploader cannot read its queue");
                    self.set_status(|s| s.last_error = Some(e.to_string()));
                    Some(Instant::now() + self.cfg.retry_min)
                }
            };
            if Instant::now() >= self.cleanup_at
                && let Err(e) = self.remove_spooled().await
            {
                warn!(error = %e, "uploader cannot clean the spool");
            }
            let wake = wake.unwrap_or_else(|| Instant::now() + IDLE_POLL).min(self.cleanup_at);
            let nudge = self.nudge.clone();
            tokio::select! {
                Some(done) = self.tasks.join_next(), if !self.tasks.is_empty() => self.finished(done).await,
                _ = nudge.notified() => self.refill_at = Instant::now(),
                _ = tokio::time::sleep_until(wake) => {}
                _ = stop.changed() => {}
            }
        }
        let finishing = async {
            while let Some(done) = self.tasks.join_next().await {
                self.finished(done).await;
            }
        };
        if tokio::time::timeout(exit_deadline, finishing).await.is_err() {
            warn!("uploader exit deadline passed; unfinished uploads resume at the next start");
            self.tasks.abort_all();
        }
        self.set_status(|s| {
            s.state = WorkerState::Done;
            s.in_flight = 0;
        });
        info!("uploader stopped");
    }

    /// Works until nothing is queued (every upload verified) or `deadline`
    /// passes; then removes the spooled files whose grace period is over.
    pub async fn drain(&mut self, deadline: Instant) -> Result<DrainReport, StoreError> {
        let start = self.status.borrow().clone();
        let remaining = loop {
            if self.tasks.is_empty() {
                // nothing running: read the queue now, whatever the poll interval
                self.refill_at = Instant::now();
            }
            let wake = self.fill().await?;
            if self.tasks.is_empty() {
                if self.status.borrow().queued == 0 {
                    break 0;
                }
                // all queued recordings wait for their retry, or the worker pauses
                let until = wake.unwrap_or(deadline);
                if until >= deadline {
                    break self.status.borrow().queued;
                }
                tokio::time::sleep_until(until).await;
                continue;
            }
            tokio::select! {
                Some(done) = self.tasks.join_next() => self.finished(done).await,
                _ = tokio::time::sleep_until(deadline) => {
                    self.tasks.abort_all();
                    while self.tasks.join_next().await.is_some() {}
                    self.in_flight.clear();
                    self.task_ids.clear();
                    break self.store.pending_uploads(BATCH).await?.len();
                }
            }
        };
        self.remove_spooled().await?;
        self.set_status(|s| {
            s.state = WorkerState::Done;
            s.in_flight = 0;
        });
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
/// [`TEST_PAUSE_VAR`] names it, saying so on stderr first. Built only with
/// the `test-hooks` feature, which only the test build enables (the crate
/// is its own dev-dependency with that feature): a release binary ignores
/// the variable.
#[cfg(feature = "test-hooks")]
async fn test_pause(point: &str, recording: Uuid) {
    if std::env::var(TEST_PAUSE_VAR).is_ok_and(|v| v == point) {
        eprintln!("huifang test hook: upload of {recording} paused {point}");
        std::future::pending::<()>().await;
    }
}

/// Without `test-hooks`: nothing.
#[cfg(not(feature = "test-hooks"))]
async fn test_pause(_point: &str, _recording: Uuid) {}

/// Uploads and verifies one recording and its manifest, then marks it
/// archived (see the module doc for the steps).
pub async fn upload_one(
    store: &Store,
    archive: &Archive,
    retention: &RetentionConfig,
    job: &UploadJob,
) -> Result<Archived, UploadError> {
    let t0 = Instant::now();
    let path = PathBuf::from(&job.path);
    // one pass over the file: the seal's SHA-256 checked, the MD5 for the
    // store; the PUT then streams the file (Body::File)
    let digests = tokio::task::spawn_blocking({
        let path = path.clone();
        move || file_digests(&path)
    })
    .await
    .map_err(|e| UploadError::Read { path: job.path.clone(), source: std::io::Error::other(e) })?
    .map_err(|source| UploadError::Read { path: job.path.clone(), source })?;
    if digests.sha256_hex != job.sha256 || digests.len != job.bytes {
        return Err(UploadError::Tampered {
            path: job.path.clone(),
            actual: digests.sha256_hex,
            sealed: job.sha256.clone(),
        });
    }

    let t_read = Instant::now();
    let years = retention.years_for(job.kind.as_deref());
    let until = retain_until(job.call_started_at, years);
    let key = recording_key(job.call_started_at, job.recording_id);
    let mkey = manifest_key(job.call_started_at, job.recording_id);

    let meta = recording_metadata(job);
    let wav_head = archive.head(&key).await?;
    let wav_was_there = wav_head.is_some();
    let wav_put = put_unless_there(
        archive,
        wav_head,
        &PutObject {
            key: &key,
            body: Body::File { path: &path, len: digests.len, md5: digests.md5 },
            content_type: "audio/wav",
            sha256_hex: &job.sha256,
            metadata: &meta,
            retain_until: until,
        },
    )
    .await?;
    let t_wav = Instant::now();
    test_pause("after-wav", job.recording_id).await;

    let manifest = Manifest {
        version: 1,
        recording_id: job.recording_id,
        call_id: job.call_id,
        task_id: job.task_id.clone(),
        client_id: job.client_id.clone(),
        agent_uri: job.agent_uri.clone(),
        agent_id: job.agent_id.clone(),
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
    // The manifest is only ever PUT after its WAV is in the archive: when
    // the WAV was not there, neither is the manifest, and no HEAD is needed.
    let manifest_head = if wav_was_there { archive.head(&mkey).await? } else { None };
    let manifest_put = put_unless_there(
        archive,
        manifest_head,
        &PutObject {
            key: &mkey,
            body: Body::Bytes(&mbody),
            content_type: "application/json",
            sha256_hex: &msha,
            metadata: &mmeta,
            retain_until: until,
        },
    )
    .await?;
    let t_manifest = Instant::now();

    let (wav, man) = tokio::try_join!(
        verify(archive, &key, digests.len, &meta, until),
        verify(archive, &mkey, mbody.len() as u64, &mmeta, until),
    )?;
    let t_verify = Instant::now();
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
    // E6: marked archived together with its audit events, in one commit
    let uploaded = AuditEvent::system(
        AuditAction::RecordingUploaded,
        job.recording_id,
        serde_json::json!({
            "key": archived.key,
            "manifest_key": archived.manifest_key,
            "sha256": job.sha256,
            "archive": archive.describe(),
            // false: the object was already there (a retry after a crash), no PUT
            "put": { "wav": wav_put, "manifest": manifest_put },
        }),
    );
    let verified = AuditEvent::system(
        AuditAction::RecordingVerified,
        job.recording_id,
        serde_json::json!({
            "key": archived.key,
            "version": archived.version,
            "retain_until": z_time(archived.retain_until),
            "mode": LOCK_MODE,
        }),
    );
    match store.mark_archived_audited(job.recording_id, &archived, &[uploaded, verified]).await {
        Ok(_) => {
            let since_hangup = job.ended_at.map(|t| (Utc::now() - t).num_milliseconds() as f64 / 1000.0);
            crate::metrics::METRICS.archived(since_hangup);
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
        }
        // another daemon finished it first: the objects are verified either way
        Err(StoreError::Conflict { .. }) => {}
        Err(e) => return Err(e.into()),
    }
    let ms = |a: Instant, b: Instant| b.saturating_duration_since(a).as_millis() as u64;
    let t_end = Instant::now();
    debug!(
        recording = %job.recording_id,
        read_ms = ms(t0, t_read),
        wav_ms = ms(t_read, t_wav),
        manifest_ms = ms(t_wav, t_manifest),
        verify_ms = ms(t_manifest, t_verify),
        mark_ms = ms(t_verify, t_end),
        "upload timings"
    );
    Ok(archived)
}

/// PUTs `obj` unless its key already holds the same bytes, locked (`head`:
/// what HEAD found at the key); `true` when it PUT.
async fn put_unless_there(
    archive: &Archive,
    head: Option<ObjectInfo>,
    obj: &PutObject<'_>,
) -> Result<bool, UploadError> {
    if let Some(info) = head {
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
    use std::path::Path;

    use super::*;
    use crate::archive::local::LocalArchive;
    use crate::store::{NewCall, NewRecording, RecordingState, SealedRecording, SideCounters};

    fn config(parallel: usize) -> UploaderConfig {
        UploaderConfig {
            parallel,
            retry_min: Duration::from_secs(1),
            retry_max: Duration::from_secs(8),
            keep_after_upload: Duration::from_secs(3600),
            retention: RetentionConfig::default(),
        }
    }

    /// A sealed recording whose spooled file is `file` (written by the
    /// caller, or a FIFO) and whose SHA-256 is that of `body`.
    async fn sealed(store: &Store, file: &Path, body: &[u8]) -> Uuid {
        let id = sealed_call_open(store, file, body).await;
        // the call's end comes right after the seal; only then is it queued
        store.finish_call(id, "completed", None, Utc::now()).await.unwrap();
        id
    }

    /// A sealed recording whose call has not ended yet (the moment between
    /// the seal and the call's outcome).
    async fn sealed_call_open(store: &Store, file: &Path, body: &[u8]) -> Uuid {
        let id = Uuid::now_v7();
        let at = Utc::now();
        store.insert_call(&NewCall::sample(id, at)).await.unwrap();
        let path = file.display().to_string();
        store
            .insert_recording(&NewRecording { id, call_id: id, path: path.clone(), started_at: at })
            .await
            .unwrap();
        store
            .seal_recording(&SealedRecording {
                id,
                path,
                sha256: sha256_hex(body),
                bytes: body.len() as u64,
                duration_ms: 1000,
                agent: SideCounters::default(),
                client: SideCounters::default(),
                state: RecordingState::Sealed,
                sealed_at: at,
            })
            .await
            .unwrap();
        id
    }

    // Found by the soak: a manifest PUT before the call's end was written
    // differed from the one the retry after a kill built, and the WORM
    // archive refused the retry for ever.
    #[tokio::test]
    async fn a_recording_is_queued_only_once_its_call_has_ended() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open("sqlite::memory:").await.unwrap();
        let file = dir.path().join("a.wav");
        std::fs::write(&file, b"RIFF").unwrap();
        let id = sealed_call_open(&store, &file, b"RIFF").await;
        assert!(store.pending_uploads(10).await.unwrap().is_empty(), "queued before the call ended");
        store.finish_call(id, "completed", None, Utc::now()).await.unwrap();
        let queued: Vec<Uuid> =
            store.pending_uploads(10).await.unwrap().iter().map(|j| j.recording_id).collect();
        assert_eq!(queued, [id]);
    }

    async fn until(
        status: &mut watch::Receiver<WorkerStatus>,
        what: &str,
        f: impl Fn(&WorkerStatus) -> bool,
    ) {
        let reached = tokio::time::timeout(Duration::from_secs(20), status.wait_for(|s| f(s))).await.is_ok();
        assert!(reached, "uploader never reached: {what}; status {:?}", *status.borrow());
    }

    /// An uploader's world with one sealed recording whose spooled file is
    /// a FIFO nobody writes yet: its upload blocks in the first read.
    struct StuckSite {
        dir: tempfile::TempDir,
        store: Store,
        archive: Archive,
        stuck_file: PathBuf,
        stuck_body: Vec<u8>,
        stuck: Uuid,
    }

    async fn stuck_site() -> StuckSite {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open("sqlite::memory:").await.unwrap();
        let archive = Archive::Local(LocalArchive::new(dir.path().join("archive")));
        let stuck_file = dir.path().join("stuck.wav");
        let made = std::process::Command::new("mkfifo").arg(&stuck_file).status().unwrap();
        assert!(made.success(), "mkfifo");
        let stuck_body = b"RIFF....WAVEfmt stuck".to_vec();
        let stuck = sealed(&store, &stuck_file, &stuck_body).await; // the oldest: started first
        StuckSite { dir, store, archive, stuck_file, stuck_body, stuck }
    }

    /// Lets the upload stuck on the FIFO `fifo` go on: once the upload's
    /// first read (the hashing) has the FIFO open, a regular file with
    /// `body` takes its place (for the second read, the sending) and `body`
    /// goes through the FIFO.
    fn unstick(fifo: PathBuf, body: Vec<u8>) -> std::thread::JoinHandle<()> {
        std::thread::spawn(move || {
            let regular = fifo.with_extension("regular");
            std::fs::write(&regular, &body).unwrap();
            let mut w = std::fs::OpenOptions::new().write(true).open(&fifo).unwrap(); // the reader is there
            std::fs::rename(&regular, &fifo).unwrap();
            std::io::Write::write_all(&mut w, &body).unwrap();
        })
    }

    /// A slot that frees is refilled at once: one upload stuck (its spooled
    /// file is a FIFO nobody writes yet) does not hold back the others.
    #[tokio::test]
    async fn the_pool_refills_a_free_slot_without_waiting_for_the_others() {
        let StuckSite { dir, store, archive, stuck_file, stuck_body, stuck } = stuck_site().await;
        let mut others = Vec::new();
        for n in 0..4 {
            let body = format!("RIFF....WAVEfmt {n}").into_bytes();
            let file = dir.path().join(format!("{n}.wav"));
            std::fs::write(&file, &body).unwrap();
            others.push(sealed(&store, &file, &body).await);
        }
        let up = Uploader::new(store.clone(), archive.clone(), config(2));
        let mut status = up.status();
        let (stop_tx, stop_rx) = watch::channel(false);
        let worker = tokio::spawn(up.run(stop_rx, Duration::from_secs(5)));

        // two slots, one stuck: the other four go through the second slot
        until(&mut status, "four archived beside the stuck one", |s| s.archived == 4).await;
        assert_eq!(status.borrow().in_flight, 1);
        assert!(store.archive_record(stuck).await.unwrap().archived.is_none());
        for id in &others {
            assert!(store.archive_record(*id).await.unwrap().archived.is_some());
        }
        // unstick it
        let writer = unstick(stuck_file, stuck_body);
        until(&mut status, "the stuck one archived", |s| s.archived == 5 && s.in_flight == 0).await;
        writer.join().unwrap();
        assert!(store.archive_record(stuck).await.unwrap().archived.is_some());
        stop_tx.send(true).unwrap();
        worker.await.unwrap();
        assert_eq!(status.borrow().state, WorkerState::Done);
    }

    /// With every slot taken the worker waits for an upload to finish, not
    /// for a time: a wake-up time already past (the poll interval over, or
    /// a nudge) would make `run` spin (the benchmark found it burning a
    /// core while 8 uploads ran).
    #[tokio::test]
    async fn a_full_pool_waits_for_an_upload_not_for_a_time() {
        let StuckSite { dir, store, archive, stuck_file, stuck_body: body, .. } = stuck_site().await;
        let other = dir.path().join("other.wav");
        std::fs::write(&other, b"RIFF....WAVEfmt other").unwrap();
        sealed(&store, &other, b"RIFF....WAVEfmt other").await;
        let mut up = Uploader::new(store, archive, config(1));
        assert_eq!(up.fill().await.unwrap(), None, "the one slot is taken");
        assert_eq!(up.tasks.len(), 1);
        up.refill_at = Instant::now() - Duration::from_secs(1); // the poll interval is over
        assert_eq!(up.fill().await.unwrap(), None, "still nothing to do but wait for the upload");
        unstick(stuck_file, body);
        let done = up.tasks.join_next().await.unwrap();
        up.finished(done).await;
        assert_eq!(up.status.borrow().archived, 1);
    }

    /// Five sealed recordings and an archive that cannot work (its
    /// directory is a file, `not-a-directory` in the temporary directory).
    async fn five_behind_a_broken_archive() -> (tempfile::TempDir, Store, Archive) {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open("sqlite::memory:").await.unwrap();
        let broken = dir.path().join("not-a-directory");
        std::fs::write(&broken, b"").unwrap();
        let archive = Archive::Local(LocalArchive::new(broken.join("archive")));
        for n in 0..5 {
            let body = format!("RIFF....WAVEfmt {n}").into_bytes();
            let file = dir.path().join(format!("{n}.wav"));
            std::fs::write(&file, &body).unwrap();
            sealed(&store, &file, &body).await;
        }
        (dir, store, archive)
    }

    /// A run of failures as long as the pool pauses the whole worker, so an
    /// outage does not burn through the queue one failed request each.
    #[tokio::test]
    async fn errors_in_a_row_pause_the_worker() {
        let (_dir, store, archive) = five_behind_a_broken_archive().await;
        let mut up = Uploader::new(store.clone(), archive, config(2));
        let status = up.status();
        // the pause (1 s) outlasts the deadline: only the first pool's worth
        // was tried (plus what started while the run was shorter than the
        // pool: at most 2 · parallel − 1), not all five
        let report = up.drain(Instant::now() + Duration::from_millis(500)).await.unwrap();
        assert_eq!((report.archived, report.remaining), (0, 5));
        assert!((2..=3).contains(&report.failures), "{report:?}");
        let s = status.borrow().clone();
        assert_eq!(u64::from(s.errors_in_a_row), report.failures);
        assert!(s.paused_until.is_some(), "{s:?}");
        assert!(s.last_error.is_some());
        let tried: u64 = {
            let mut n = 0;
            for j in store.pending_uploads(10).await.unwrap() {
                n += j.upload_attempts;
            }
            n
        };
        assert_eq!(tried, report.failures);
    }

    /// When the archive is back after an outage, the recordings that
    /// waited it out go at once, not each at the end of its own back-off
    /// (found by the soak: up to `retry_max_secs` after the store returned).
    #[tokio::test]
    async fn the_first_success_after_an_outage_ends_every_back_off() {
        let (dir, store, archive) = five_behind_a_broken_archive().await;
        let broken = dir.path().join("not-a-directory");
        let mut up = Uploader::new(store.clone(), archive, config(2));
        let report = up.drain(Instant::now() + Duration::from_millis(500)).await.unwrap();
        assert!(report.failures >= 2 && report.archived == 0, "{report:?}");
        assert!(up.pauses > 0 && !up.backoff.is_empty(), "the outage paused the worker");
        let waited: Vec<Uuid> = up.backoff.keys().copied().collect();
        // the archive comes back; the pause ends
        std::fs::remove_file(&broken).unwrap();
        std::fs::create_dir_all(broken.join("archive")).unwrap();
        up.set_status(|s| s.paused_until = None);
        up.refill_at = Instant::now() - Duration::from_secs(1);
        up.fill().await.unwrap();
        assert!(!up.tasks.is_empty(), "a recording not backed off starts");
        let done = up.tasks.join_next().await.unwrap();
        up.finished(done).await;
        assert_eq!(up.status.borrow().archived, 1);
        assert!(up.backoff.is_empty(), "every back-off ended: {:?}", up.backoff.keys());
        assert_eq!(up.pauses, 0);
        // and the ones that failed in the outage are started now, not in a second
        while let Some(done) = up.tasks.join_next().await {
            up.finished(done).await;
        }
        up.fill().await.unwrap();
        let started: HashSet<Uuid> = up.in_flight.iter().copied().collect();
        assert!(waited.iter().any(|id| started.contains(id)), "waited {waited:?}, started {started:?}");
    }

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
