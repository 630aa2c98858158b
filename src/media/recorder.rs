//! Stereo WAV recording on blocking writer threads; sealing; start-up repair.
//!
//! A recording is one file, `<spool>/recording/<id>.wav` while it is written
//! and `<spool>/sealed/<id>.wav` once sealed; `id` is the call's uuid, never
//! personal data. The format is WAV, 2 channels (left = agent, right =
//! client), 16-bit PCM, 8000 Hz: hound's header, byte for byte (a test
//! holds [`header`] to what hound writes), and the samples appended as
//! little-endian bytes.
//!
//! Why not hound's `WavWriter` for the samples: it takes them one call per
//! sample (its `SampleWriter16` also allocates per batch), puts an 8 KiB
//! `BufWriter` in front of every file, and rewrites the header at each
//! flush. At 500 recorded calls that was ≈ 8 % of huifang's CPU and 8 KiB
//! per call (docs/PERFORMANCE.md). The format is a fixed 44-byte header and
//! raw frames, so the writer appends whole 100 ms chunks with one `write`
//! each and leaves the sizes in the header at 0 until the seal; a crash's
//! file gets them from its length in the start-up repair, as before.
//!
//! ## When to call what
//! - At start-up, before the first call: [`repair_spool`] (blocking; from
//!   `spawn_blocking`) seals whatever a crash left in `recording/` (E4), then
//!   [`RecorderPool::new`] starts the writer threads.
//! - Before the client is bridged: [`RecorderPool::open`]. It returns only
//!   once the file exists with its header, fsynced with its directory (E1).
//! - Every ~100 ms: [`Recorder::write`] with the frames drained from the
//!   timeline, or [`Recorder::write_with`] to let the timeline drain straight
//!   into the recorder's buffer. Neither blocks nor allocates in steady
//!   state: frames fill 100 ms buffers that go to the recording's writer
//!   thread and come back to the pool's spare list, from which any
//!   recorder takes one when it has frames to buffer. `write_with` hands its
//!   buffer over at the end of each drain, so between drains a call holds no
//!   buffer at all: the buffers in existence are those in flight, not one or
//!   two per call. An error means the recording failed: end
//!   the call (`recording-failed`, E1, fail closed).
//! - At hang-up: [`Recorder::seal`] (E3).
//!
//! ## Writer threads
//! [`RecorderPool`] runs `threads` std threads (`huifang-rec-N`); each
//! recording is pinned to one. The writer appends each 100 ms chunk to the
//! file with one `write` (so a `kill -9` loses at most what the relay has not
//! drained yet: ~300 ms). A writer wakes at most every 20 ms and then takes
//! all the chunks queued meanwhile, rather than once per chunk. The header's
//! sizes stay 0 until the seal; the start-up repair takes them from the
//! file's length.
//!
//! ## Durability: group commit
//! Once a second one syncer thread (`huifang-rec-sync`) makes everything
//! written so far durable with one `syncfs(2)` on the spool's filesystem,
//! instead of one `fdatasync` per recording: on ext4 every `fdatasync` of a
//! growing file writes its inode and flushes the device cache, so at 500
//! calls that is 500 cache flushes a second where one does. A power cut then
//! loses at most ~1.3 s of any recording (E4). `syncfs` syncs the whole
//! filesystem, so give the spool its own filesystem in production. If
//! `syncfs` fails (an I/O error, or a kernel without it), the pool logs it
//! and falls back for good to an `fdatasync` per recording every second,
//! whose errors then fail the recordings they belong to. [`Recorder::flush`]
//! always `fdatasync`s its own file.
//! A writer that falls more than 10 s behind (a stalled disk) makes `write`
//! return [`RecordError::Full`] rather than buffer without bound.
//!
//! ## Failure
//! The writer's first error stops that recording's writing and is returned by
//! the next [`Recorder::write`]. [`Recorder::seal`] then still seals what is
//! on disk (it is evidence), sizes rewritten from the file length. If the
//! failure was never returned by `write` (it happened on the last chunks),
//! `seal` returns it instead, and the file stays in `recording/` until the
//! next start-up's [`repair_spool`]. A [`Recorder`] dropped without `seal`
//! closes its file and leaves it in `recording/` likewise.
//!
//! ## Sealing
//! Finalize the header, fsync, set the file read-only (0444), SHA-256 it
//! (streamed, 64 KiB buffer), move it into `sealed/` (hard link + unlink, so
//! an existing sealed file is never replaced), fsync both directories. After
//! that, nothing opens the file for writing again (E3).

use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc::{self, Receiver, SyncSender, TrySendError};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};
use uuid::Uuid;

/// Sample rate of every recording.
pub const SAMPLE_RATE: u32 = 8000;
/// Channels of every recording: left = agent, right = client.
pub const CHANNELS: u16 = 2;
/// Length of the WAV header (hound's, for this format).
const HEADER_LEN: u64 = 44;
/// Bytes per stereo frame.
const FRAME_BYTES: u64 = 4;
/// Samples per buffer handed to the writer: 100 ms of stereo.
const CHUNK_SAMPLES: usize = 1600;
/// Buffers per recording: 10 s of backlog before [`RecordError::Full`].
const MAX_BUFFERS: usize = 100;
/// Jobs a recorder keeps without allocating while its writer's queue is full.
const PENDING: usize = 4;
/// Jobs queued per writer thread before senders hold them back.
const QUEUE: usize = 1024;
/// Per-file durability (after a `syncfs` failure): checkpoint after this
/// much audio…
const CHECKPOINT_FRAMES: u64 = SAMPLE_RATE as u64;
/// …or this much wall time. Also the group commit's period.
const CHECKPOINT_EVERY: Duration = Duration::from_secs(1);
/// A writer thread sleeps this long after a batch of jobs, so that the next
/// batch is many chunks rather than one wake-up per chunk.
const COALESCE: Duration = Duration::from_millis(20);
/// The most data a WAV can hold (the RIFF size, 36 + data, is 32 bits).
const MAX_DATA_BYTES: u64 = (u32::MAX as u64 - 36) / FRAME_BYTES * FRAME_BYTES;
/// Buffer for hashing.
const HASH_BUFFER: usize = 64 * 1024;

/// Why recording failed. `Display` names the operation, never a path.
#[derive(Debug, thiserror::Error)]
pub enum RecordError {
    /// An I/O operation on the recording failed; `op` names it (`create`,
    /// `header`, `write`, `flush`, `sync`, `finalize`, `repair`, `seal`,
    /// `hash`, `rename`).
    #[error("recording {op} failed: {source}")]
    Io {
        /// The operation.
        op: &'static str,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
    /// The writer thread is gone (the pool shut down or the thread died).
    #[error("recording writer is gone")]
    WriterGone,
    /// The writer is more than 10 s behind (a stalled disk); the frames
    /// could not be queued.
    #[error("recording writer is more than 10 s behind")]
    Full,
    /// The file reached the WAV size limit (4 GiB, about 37 hours).
    #[error("recording reached the WAV size limit")]
    TooLong,
    /// `write` was given an odd number of samples (not whole stereo frames).
    #[error("recording write of an incomplete stereo frame")]
    PartialFrame,
}

impl RecordError {
    fn io(op: &'static str) -> impl FnOnce(io::Error) -> RecordError {
        move |source| RecordError::Io { op, source }
    }

    /// A copy for reporting the same failure again (an `io::Error` is not
    /// `Clone`; the copy keeps its kind and text).
    fn duplicate(&self) -> RecordError {
        match self {
            RecordError::Io { op, source } => {
                RecordError::Io { op, source: io::Error::new(source.kind(), source.to_string()) }
            }
            RecordError::WriterGone => RecordError::WriterGone,
            RecordError::Full => RecordError::Full,
            RecordError::TooLong => RecordError::TooLong,
            RecordError::PartialFrame => RecordError::PartialFrame,
        }
    }
}

/// A sealed recording: where it is and what proves it (E3).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Sealed {
    /// The recording's id (the call id).
    pub id: Uuid,
    /// `<spool>/sealed/<id>.wav`.
    pub path: PathBuf,
    /// SHA-256 of the whole file, lower-case hex.
    pub sha256: String,
    /// File size in bytes.
    pub bytes: u64,
    /// Audio duration in milliseconds (frames / 8).
    pub duration_ms: u64,
}

#[cfg(test)]
fn spec() -> hound::WavSpec {
    hound::WavSpec {
        channels: CHANNELS,
        sample_rate: SAMPLE_RATE,
        bits_per_sample: 16,
        sample_format: hound::SampleFormat::Int,
    }
}

/// The 44-byte header of a recording holding `data` bytes of frames, byte for
/// byte what hound writes for [`spec`].
fn header(data: u32) -> [u8; 44] {
    let mut h = [0u8; 44];
    h[0..4].copy_from_slice(b"RIFF");
    h[4..8].copy_from_slice(&(36 + data).to_le_bytes());
    h[8..16].copy_from_slice(b"WAVEfmt ");
    h[16..20].copy_from_slice(&16u32.to_le_bytes());
    h[20..22].copy_from_slice(&1u16.to_le_bytes()); // PCM
    h[22..24].copy_from_slice(&CHANNELS.to_le_bytes());
    h[24..28].copy_from_slice(&SAMPLE_RATE.to_le_bytes());
    h[28..32].copy_from_slice(&(SAMPLE_RATE * FRAME_BYTES as u32).to_le_bytes());
    h[32..34].copy_from_slice(&(FRAME_BYTES as u16).to_le_bytes());
    h[34..36].copy_from_slice(&16u16.to_le_bytes());
    h[36..40].copy_from_slice(b"data");
    h[40..44].copy_from_slice(&data.to_le_bytes());
    h
}

fn recording_path(spool: &Path, id: Uuid) -> PathBuf {
    spool.join("recording").join(format!("{id}.wav"))
}

/// Where a sealed recording lives: `<spool>/sealed/<id>.wav`.
pub fn sealed_path(spool: &Path, id: Uuid) -> PathBuf {
    spool.join("sealed").join(format!("{id}.wav"))
}

fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

/// Test builds only (the `test-hooks` feature): `HUIFANG_TEST_RECORD_FAIL_AFTER`
/// = N makes every recording's writes fail with "no space left" once N
/// bytes (header included) are written — a disk that fills mid-call, for
/// the tests that drive the binary (E1). The release binary has no hook.
#[cfg(feature = "test-hooks")]
fn test_fail_after() -> Option<u64> {
    std::env::var("HUIFANG_TEST_RECORD_FAIL_AFTER").ok().and_then(|v| v.parse().ok())
}

/// Without `test-hooks`: nothing.
#[cfg(not(feature = "test-hooks"))]
fn test_fail_after() -> Option<u64> {
    None
}

/// Where a writer's bytes go: the file, or (in tests) a file that fails with
/// "no space left" after a byte budget.
enum Sink {
    File(File),
    #[cfg(any(test, feature = "test-hooks"))]
    Limited {
        file: File,
        left: u64,
    },
}

impl Write for Sink {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Sink::File(f) => f.write(buf),
            #[cfg(any(test, feature = "test-hooks"))]
            Sink::Limited { file, left } => {
                if (buf.len() as u64) > *left {
                    return Err(io::Error::from_raw_os_error(28)); // ENOSPC
                }
                let n = file.write(buf)?;
                *left -= n as u64;
                Ok(n)
            }
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            Sink::File(f) => f.flush(),
            #[cfg(any(test, feature = "test-hooks"))]
            Sink::Limited { file, .. } => file.flush(),
        }
    }
}

impl Seek for Sink {
    fn seek(&mut self, pos: SeekFrom) -> io::Result<u64> {
        match self {
            Sink::File(f) => f.seek(pos),
            #[cfg(any(test, feature = "test-hooks"))]
            Sink::Limited { file, .. } => file.seek(pos),
        }
    }
}

/// State shared by a recorder and its writer: the writer's first error.
#[derive(Default)]
struct Shared {
    failed: AtomicBool,
    error: Mutex<Option<RecordError>>,
}

impl Shared {
    fn set(&self, e: RecordError) {
        let mut slot = self.error.lock().unwrap_or_else(|p| p.into_inner());
        if slot.is_none() {
            *slot = Some(e);
        }
        self.failed.store(true, Ordering::Release);
    }

    fn get(&self) -> Option<RecordError> {
        if !self.failed.load(Ordering::Acquire) {
            return None;
        }
        let slot = self.error.lock().unwrap_or_else(|p| p.into_inner());
        slot.as_ref().map(RecordError::duplicate)
    }
}

/// Work for a writer thread.
enum Job {
    /// Take over an opened recording.
    Adopt(Box<Open>),
    /// Write `buf` (interleaved samples) and give the buffer back;
    /// `checkpoint` forces an fdatasync.
    Chunk { key: u64, buf: Vec<i16>, checkpoint: bool },
    /// Finalize and close; reply when done.
    Seal { key: u64, reply: tokio::sync::oneshot::Sender<Option<RecordError>> },
    /// The recorder was dropped without sealing: finalize and close.
    Close { key: u64 },
}

/// A recording open on a writer thread.
struct Open {
    key: u64,
    id: Uuid,
    /// Where the frames go; `None` once closed.
    sink: Option<Sink>,
    /// A second handle on the file, for fsync.
    sync: File,
    /// Where written buffers go back to.
    spare: Arc<Spare>,
    /// The recorder's count of buffers handed over and not written yet.
    in_flight: Arc<AtomicUsize>,
    shared: Arc<Shared>,
    data_bytes: u64,
    unsynced_frames: u64,
    last_checkpoint: Instant,
    failed: bool,
}

impl Open {
    /// Appends `buf` (through the worker's byte buffer `bytes`) and
    /// checkpoints when asked, or when due if `per_file` durability is on.
    fn write(&mut self, buf: &[i16], checkpoint: bool, per_file: bool, bytes: &mut Vec<u8>) {
        if self.failed {
            return;
        }
        if let Err(e) = self.try_write(buf, checkpoint, per_file, bytes) {
            self.fail(e);
        }
    }

    fn try_write(
        &mut self,
        buf: &[i16],
        checkpoint: bool,
        per_file: bool,
        bytes: &mut Vec<u8>,
    ) -> Result<(), RecordError> {
        let sink = self.sink.as_mut().ok_or(RecordError::WriterGone)?;
        if !buf.is_empty() {
            let len = 2 * buf.len() as u64;
            if self.data_bytes + len > MAX_DATA_BYTES {
                return Err(RecordError::TooLong);
            }
            bytes.clear();
            bytes.extend(buf.iter().flat_map(|s| s.to_le_bytes()));
            sink.write_all(bytes).map_err(RecordError::io("write"))?;
            self.data_bytes += len;
            self.unsynced_frames += buf.len() as u64 / 2;
        }
        if checkpoint
            || (per_file
                && (self.unsynced_frames >= CHECKPOINT_FRAMES
                    || self.last_checkpoint.elapsed() >= CHECKPOINT_EVERY))
        {
            self.sync.sync_data().map_err(RecordError::io("sync"))?;
            self.unsynced_frames = 0;
            self.last_checkpoint = Instant::now();
        }
        Ok(())
    }

    fn fail(&mut self, e: RecordError) {
        tracing::error!(recording = %self.id, error = %e, "recording writer failed; writing stopped");
        self.failed = true;
        self.shared.set(e);
    }

    /// Finalizes the header and fsyncs. Returns the writer's error, if any
    /// (earlier or now). A failed writer is dropped as is: the sizes are
    /// then rewritten from the file length by the salvage.
    fn close(mut self) -> Option<RecordError> {
        if !self.failed
            && let Some(mut sink) = self.sink.take()
        {
            // `data_bytes` ≤ MAX_DATA_BYTES, which fits the header's u32.
            let h = header(self.data_bytes as u32);
            let done = sink
                .seek(SeekFrom::Start(0))
                .and_then(|_| sink.write_all(&h))
                .map_err(RecordError::io("finalize"))
                .and_then(|()| self.sync.sync_all().map_err(RecordError::io("sync")));
            if let Err(e) = done {
                self.fail(e);
            }
        }
        self.sink = None;
        self.shared.get()
    }
}

fn worker(rx: Receiver<Job>, durability: Arc<Durability>) {
    let mut open: HashMap<u64, Open> = HashMap::new();
    // One byte buffer per thread for the little-endian samples.
    let mut bytes = Vec::with_capacity(2 * CHUNK_SAMPLES);
    while let Ok(first) = rx.recv() {
        let per_file = durability.per_file.load(Ordering::Relaxed);
        let mut next = Some(first);
        while let Some(job) = next.take() {
            handle(job, &mut open, per_file, &mut bytes);
            next = rx.try_recv().ok();
        }
        // Let the next batch gather (see COALESCE).
        std::thread::sleep(COALESCE);
    }
    // The pool and every recorder are gone: close what is left.
    for (_, o) in open.drain() {
        let _ = o.close();
    }
}

/// One job of a writer thread.
fn handle(job: Job, open: &mut HashMap<u64, Open>, per_file: bool, bytes: &mut Vec<u8>) {
    match job {
        Job::Adopt(o) => {
            open.insert(o.key, *o);
        }
        Job::Chunk { key, mut buf, checkpoint } => {
            if let Some(o) = open.get_mut(&key) {
                o.write(&buf, checkpoint, per_file, bytes);
                buf.clear();
                o.in_flight.fetch_sub(1, Ordering::Release);
                o.spare.give(buf);
            }
        }
        Job::Seal { key, reply } => {
            let result = match open.remove(&key) {
                Some(o) => o.close(),
                None => Some(RecordError::WriterGone),
            };
            let _ = reply.send(result);
        }
        Job::Close { key } => {
            if let Some(o) = open.remove(&key) {
                let id = o.id;
                match o.close() {
                    None => {
                        tracing::warn!(recording = %id, "recorder dropped without seal; left for start-up repair")
                    }
                    Some(e) => {
                        tracing::error!(recording = %id, error = %e, "recorder dropped after a failure; left for start-up repair")
                    }
                }
            }
        }
    }
}

/// How recordings are made durable (see the module doc).
#[derive(Debug, Default)]
struct Durability {
    /// `syncfs` failed once: every writer `fdatasync`s each recording every
    /// second instead.
    per_file: AtomicBool,
}

/// The group commit: every [`CHECKPOINT_EVERY`], `sync` (a `syncfs` of the
/// spool's filesystem) until `stop`'s sender is dropped, then once more.
/// The first failure switches to per-file durability for good.
fn syncer(stop: Receiver<()>, durability: Arc<Durability>, mut sync: impl FnMut() -> io::Result<()>) {
    loop {
        let last = matches!(stop.recv_timeout(CHECKPOINT_EVERY), Err(mpsc::RecvTimeoutError::Disconnected));
        if durability.per_file.load(Ordering::Relaxed) {
            if last {
                return;
            }
            continue;
        }
        if let Err(e) = sync() {
            tracing::error!(
                error = %e,
                "syncfs of the spool failed; falling back to an fdatasync per recording every second"
            );
            durability.per_file.store(true, Ordering::Relaxed);
        }
        if last {
            return;
        }
    }
}

/// `syncfs(2)` of the filesystem that holds `dir`.
fn sync_filesystem(dir: &File) -> io::Result<()> {
    rustix::fs::syncfs(dir).map_err(io::Error::from)
}

/// How many spare buffers the pool keeps at most (≈ 3 MiB); more are freed.
const SPARE_MAX: usize = 1024;

/// Buffers the writers gave back, for any recorder of the pool.
#[derive(Default)]
struct Spare {
    list: Mutex<Vec<Vec<i16>>>,
    /// Buffers allocated so far (recycled, not made per chunk: tested).
    allocated: AtomicUsize,
}

impl Spare {
    /// A buffer with room for a chunk.
    fn take(&self) -> Vec<i16> {
        if let Some(buf) = self.list.lock().unwrap_or_else(PoisonError::into_inner).pop() {
            return buf;
        }
        self.allocated.fetch_add(1, Ordering::Relaxed);
        Vec::with_capacity(CHUNK_SAMPLES)
    }

    /// Takes a buffer back (emptied).
    fn give(&self, mut buf: Vec<i16>) {
        buf.clear();
        let mut list = self.list.lock().unwrap_or_else(PoisonError::into_inner);
        if list.len() < SPARE_MAX && buf.capacity() >= CHUNK_SAMPLES {
            list.push(buf);
        }
    }
}

struct PoolInner {
    spool: PathBuf,
    spare: Arc<Spare>,
    workers: Vec<SyncSender<Job>>,
    /// Dropped with the pool: the syncer's last sync, then it ends.
    _syncer: Option<SyncSender<()>>,
    next_key: AtomicU64,
    /// Test only: writers fail with ENOSPC after this many bytes.
    #[cfg(any(test, feature = "test-hooks"))]
    fail_after: Option<u64>,
}

/// The writer threads and the spool. Cheap to clone.
#[derive(Clone)]
pub struct RecorderPool {
    inner: Arc<PoolInner>,
}

impl fmt::Debug for RecorderPool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RecorderPool")
            .field("spool", &self.inner.spool)
            .field("threads", &self.inner.workers.len())
            .finish()
    }
}

impl RecorderPool {
    /// Creates `<spool>/recording/` and `<spool>/sealed/` and starts
    /// `threads` writer threads (std threads named `huifang-rec-N`); each
    /// recording is pinned to one, round robin. The threads end when the
    /// pool and all its recorders are dropped.
    pub fn new(spool: PathBuf, threads: usize) -> io::Result<RecorderPool> {
        Self::build(spool, threads, test_fail_after())
    }

    fn build(spool: PathBuf, threads: usize, fail_after: Option<u64>) -> io::Result<RecorderPool> {
        if threads == 0 {
            return Err(io::Error::new(io::ErrorKind::InvalidInput, "recorder pool needs a thread"));
        }
        fs::create_dir_all(spool.join("recording"))?;
        fs::create_dir_all(spool.join("sealed"))?;
        let durability = Arc::new(Durability::default());
        let dir = File::open(spool.join("recording"))?;
        let (stop, stopped) = mpsc::sync_channel(1);
        let d = durability.clone();
        std::thread::Builder::new()
            .name("huifang-rec-sync".into())
            .spawn(move || syncer(stopped, d, || sync_filesystem(&dir)))?;
        let mut workers = Vec::with_capacity(threads);
        for n in 0..threads {
            let (tx, rx) = mpsc::sync_channel(QUEUE);
            let d = durability.clone();
            std::thread::Builder::new().name(format!("huifang-rec-{n}")).spawn(move || worker(rx, d))?;
            workers.push(tx);
        }
        #[cfg(not(any(test, feature = "test-hooks")))]
        let _ = fail_after;
        Ok(RecorderPool {
            inner: Arc::new(PoolInner {
                spool,
                spare: Arc::default(),
                workers,
                _syncer: Some(stop),
                next_key: AtomicU64::new(0),
                #[cfg(any(test, feature = "test-hooks"))]
                fail_after,
            }),
        })
    }

    /// Opens `<spool>/recording/<id>.wav` (it must not exist), writes the
    /// header, fsyncs the file and the directory, and only then returns (E1:
    /// the file is on disk before the client is bridged). Errors if the file
    /// cannot be created (nothing is left behind then).
    pub async fn open(&self, id: Uuid) -> Result<Recorder, RecordError> {
        let inner = self.inner.clone();
        let key = inner.next_key.fetch_add(1, Ordering::Relaxed);
        let tx = inner.workers[(key % inner.workers.len() as u64) as usize].clone();
        let in_flight = Arc::new(AtomicUsize::new(0));
        let job_in_flight = in_flight.clone();
        let shared = Arc::new(Shared::default());
        let job_shared = shared.clone();
        let job_tx = tx.clone();
        tokio::task::spawn_blocking(move || {
            let path = recording_path(&inner.spool, id);
            let open = create(&inner, &path, id, key, job_in_flight, job_shared)?;
            job_tx.send(Job::Adopt(Box::new(open))).map_err(|e| {
                drop(e);
                let _ = fs::remove_file(&path);
                RecordError::WriterGone
            })
        })
        .await
        .map_err(|_| RecordError::WriterGone)??;
        Ok(Recorder {
            id,
            key,
            pool: self.inner.clone(),
            tx,
            in_flight,
            current: Vec::new(),
            pending: VecDeque::with_capacity(PENDING),
            shared,
            error: None,
            reported: false,
            done: false,
        })
    }

    /// The spool directory.
    pub fn spool(&self) -> &Path {
        &self.inner.spool
    }
}

/// Creates the file with its header, durably (blocking).
fn create(
    inner: &PoolInner,
    path: &Path,
    id: Uuid,
    key: u64,
    in_flight: Arc<AtomicUsize>,
    shared: Arc<Shared>,
) -> Result<Open, RecordError> {
    let file =
        OpenOptions::new().write(true).create_new(true).open(path).map_err(RecordError::io("create"))?;
    let made = (|| {
        let sync = file.try_clone().map_err(RecordError::io("create"))?;
        #[cfg(any(test, feature = "test-hooks"))]
        let sink = match inner.fail_after {
            Some(left) => Sink::Limited { file, left },
            None => Sink::File(file),
        };
        #[cfg(not(any(test, feature = "test-hooks")))]
        let sink = {
            let _ = inner;
            Sink::File(file)
        };
        let mut sink = sink;
        sink.write_all(&header(0)).map_err(RecordError::io("header"))?;
        sync.sync_all().map_err(RecordError::io("sync"))?;
        if let Some(dir) = path.parent() {
            sync_dir(dir).map_err(RecordError::io("sync"))?;
        }
        Ok(Open {
            key,
            id,
            sink: Some(sink),
            sync,
            spare: inner.spare.clone(),
            in_flight,
            shared,
            data_bytes: 0,
            unsynced_frames: 0,
            last_checkpoint: Instant::now(),
            failed: false,
        })
    })();
    if made.is_err() {
        let _ = fs::remove_file(path);
    }
    made
}

/// One open recording, owned by the call's task. See the module doc.
pub struct Recorder {
    id: Uuid,
    key: u64,
    pool: Arc<PoolInner>,
    tx: SyncSender<Job>,
    /// Buffers handed to the writer and not written yet (at most
    /// [`MAX_BUFFERS`] − 1: 10 s of audio).
    in_flight: Arc<AtomicUsize>,
    /// Frames not handed over yet; no capacity while there are none to
    /// keep (between drains), a spare buffer of the pool's otherwise.
    current: Vec<i16>,
    /// Jobs the writer's queue had no room for yet, in order.
    pending: VecDeque<Job>,
    shared: Arc<Shared>,
    /// A recorder-side failure (`Full`, `WriterGone`), sticky.
    error: Option<RecordError>,
    /// Whether `write` has returned an error to the caller.
    reported: bool,
    /// Sealed (or being sealed): nothing to do on drop.
    done: bool,
}

impl fmt::Debug for Recorder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Recorder")
            .field("id", &self.id)
            .field("pending", &self.pending.len())
            .field("in_flight", &self.in_flight.load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
}

impl Recorder {
    /// The recording's id (the call id).
    pub fn id(&self) -> Uuid {
        self.id
    }

    /// Queues interleaved stereo frames (L,R,L,R…; an even number of
    /// samples) for writing. Never blocks; allocates nothing in steady state.
    /// Returns the writer's error if it failed earlier (disk full, I/O error),
    /// [`RecordError::Full`] if the writer is 10 s behind: the call must then
    /// end with `recording-failed` (E1, fail closed). Once it returned an
    /// error it keeps returning it.
    pub fn write(&mut self, frames: &[i16]) -> Result<(), RecordError> {
        if !frames.len().is_multiple_of(2) {
            return Err(RecordError::PartialFrame);
        }
        let result = self.queue(frames, false);
        if result.is_err() {
            self.reported = true;
        }
        result
    }

    /// Like [`Recorder::write`], but `fill` appends the frames straight into
    /// the recorder's buffer, with no copy in between: it is called with the
    /// buffer and the number of stereo frames it may append at most, and
    /// returns whether more frames are due — then it is called again once
    /// the buffer has room. Made for `Timeline::drain_upto`. If the
    /// recording failed earlier, returns that error without calling `fill`.
    pub fn write_with(
        &mut self,
        mut fill: impl FnMut(&mut Vec<i16>, u64) -> bool,
    ) -> Result<(), RecordError> {
        let result = self.check().and_then(|()| {
            loop {
                self.ensure_buffer();
                let room = (CHUNK_SAMPLES - self.current.len()) / 2;
                let more = fill(&mut self.current, room as u64);
                if !self.current.len().is_multiple_of(2) {
                    return Err(RecordError::PartialFrame);
                }
                if self.current.len() >= CHUNK_SAMPLES {
                    self.hand_over(false)?;
                }
                if !more {
                    break;
                }
            }
            // The drain's frames go now, whatever their number: between
            // drains the call keeps no buffer (see the module doc).
            if self.current.is_empty() {
                self.pool.spare.give(std::mem::take(&mut self.current));
            } else {
                self.hand_over(false)?;
            }
            self.pump()
        });
        if result.is_err() {
            self.reported = true;
        }
        result
    }

    /// Hands whatever is buffered to the writer now and asks it to
    /// checkpoint (fdatasync) after writing it. Not needed in
    /// normal operation (the writer checkpoints every second by itself);
    /// useful before a risky operation, and in tests.
    pub fn flush(&mut self) -> Result<(), RecordError> {
        let result = self.queue(&[], true);
        if result.is_err() {
            self.reported = true;
        }
        result
    }

    fn check(&self) -> Result<(), RecordError> {
        if let Some(e) = &self.error {
            return Err(e.duplicate());
        }
        match self.shared.get() {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    fn queue(&mut self, mut frames: &[i16], checkpoint: bool) -> Result<(), RecordError> {
        self.check()?;
        while !frames.is_empty() {
            self.ensure_buffer();
            let k = (CHUNK_SAMPLES - self.current.len()).min(frames.len());
            self.current.extend_from_slice(&frames[..k]);
            frames = &frames[k..];
            if self.current.len() == CHUNK_SAMPLES {
                self.hand_over(false)?;
            }
        }
        if checkpoint {
            self.hand_over(true)?;
        }
        self.pump()
    }

    /// A spare buffer of the pool's to fill, if the recorder holds none.
    fn ensure_buffer(&mut self) {
        if self.current.capacity() == 0 {
            self.current = self.pool.spare.take();
        }
    }

    /// Moves the current buffer to the pending jobs (the next frames take
    /// a spare one), unless the writer is 10 s behind.
    fn hand_over(&mut self, checkpoint: bool) -> Result<(), RecordError> {
        if self.in_flight.load(Ordering::Acquire) + 1 >= MAX_BUFFERS {
            tracing::error!(recording = %self.id, "recording writer 10 s behind; failing the recording");
            self.error = Some(RecordError::Full);
            return Err(RecordError::Full);
        }
        self.in_flight.fetch_add(1, Ordering::AcqRel);
        let buf = std::mem::take(&mut self.current);
        self.pending.push_back(Job::Chunk { key: self.key, buf, checkpoint });
        Ok(())
    }

    /// Sends pending jobs while the writer's queue has room.
    fn pump(&mut self) -> Result<(), RecordError> {
        while let Some(job) = self.pending.pop_front() {
            match self.tx.try_send(job) {
                Ok(()) => {}
                Err(TrySendError::Full(job)) => {
                    self.pending.push_front(job);
                    break;
                }
                Err(TrySendError::Disconnected(_)) => {
                    self.error = Some(RecordError::WriterGone);
                    return Err(RecordError::WriterGone);
                }
            }
        }
        Ok(())
    }

    /// Hands over the rest, finalizes the header, fsyncs, sets the file
    /// read-only (0444), SHA-256s it, moves it into `sealed/` and fsyncs both
    /// directories (E3). If the writer failed and `write` already returned
    /// that error, what is on disk is sealed all the same (sizes rewritten
    /// from the file length). If the writer failed and no `write` returned it
    /// yet, the error is returned and the file stays in `recording/` for
    /// start-up repair. Runs the blocking parts on tokio's blocking pool.
    pub async fn seal(mut self) -> Result<Sealed, RecordError> {
        self.done = true;
        let buf = std::mem::take(&mut self.current);
        if buf.is_empty() {
            self.pool.spare.give(buf);
        } else {
            self.in_flight.fetch_add(1, Ordering::AcqRel);
            self.pending.push_back(Job::Chunk { key: self.key, buf, checkpoint: false });
        }
        let (reply, closed) = tokio::sync::oneshot::channel();
        self.pending.push_back(Job::Seal { key: self.key, reply });
        let jobs = std::mem::take(&mut self.pending);
        let tx = self.tx.clone();
        tokio::task::spawn_blocking(move || jobs.into_iter().try_for_each(|job| tx.send(job)))
            .await
            .map_err(|_| RecordError::WriterGone)?
            .map_err(|_| RecordError::WriterGone)?;
        let failure = closed.await.map_err(|_| RecordError::WriterGone)?;
        let salvage = match failure {
            None => false,
            Some(_) if self.reported => true,
            Some(e) => return Err(e),
        };
        let spool = self.pool.spool.clone();
        let id = self.id;
        tokio::task::spawn_blocking(move || {
            let path = recording_path(&spool, id);
            if salvage {
                repair_file(&path)?;
            }
            seal_file(&spool, id)
        })
        .await
        .map_err(|_| RecordError::WriterGone)?
    }
}

impl Drop for Recorder {
    /// Dropped without [`Recorder::seal`]: hands over what is buffered and
    /// closes the file, which stays in `recording/` for start-up repair.
    fn drop(&mut self) {
        if self.done {
            return;
        }
        let buf = std::mem::take(&mut self.current);
        if buf.is_empty() {
            self.pool.spare.give(buf);
        } else {
            self.in_flight.fetch_add(1, Ordering::AcqRel);
            self.pending.push_back(Job::Chunk { key: self.key, buf, checkpoint: false });
        }
        self.pending.push_back(Job::Close { key: self.key });
        let _ = self.pump();
        if !self.pending.is_empty() {
            // The writer's queue is full: finish the hand-over off this thread.
            let jobs = std::mem::take(&mut self.pending);
            let tx = self.tx.clone();
            let _ = std::thread::Builder::new()
                .name("huifang-rec-drop".into())
                .spawn(move || jobs.into_iter().try_for_each(|job| tx.send(job)));
        }
    }
}

/// Whether `h` is a header of our format, sizes aside.
fn is_our_header(h: &[u8; 44]) -> bool {
    let ours = header(0);
    h[0..4] == ours[0..4] && h[8..40] == ours[8..40]
}

/// Rewrites the RIFF and data sizes of a recording from its length,
/// truncating a trailing partial frame; makes a too-short file an empty but
/// valid WAV. Leaves a file alone when it is already right.
fn repair_file(path: &Path) -> Result<(), RecordError> {
    let len = fs::metadata(path).map_err(RecordError::io("repair"))?.len();
    let mut h = [0u8; 44];
    let got = {
        let mut f = File::open(path).map_err(RecordError::io("repair"))?;
        let mut got = 0;
        while got < h.len() {
            match f.read(&mut h[got..]) {
                Ok(0) => break,
                Ok(n) => got += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    return Err(RecordError::Io { op: "repair", source: e });
                }
            }
        }
        got
    };
    let (data, rewrite_all) = if got == h.len() && is_our_header(&h) {
        let data = (len - HEADER_LEN) / FRAME_BYTES * FRAME_BYTES;
        if data > MAX_DATA_BYTES {
            return Err(RecordError::TooLong);
        }
        (data as u32, false)
    } else if len <= HEADER_LEN {
        (0, true)
    } else {
        return Err(RecordError::Io {
            op: "repair",
            source: io::Error::new(io::ErrorKind::InvalidData, "not a recording header"),
        });
    };
    let want = header(data);
    let new_len = HEADER_LEN + u64::from(data);
    if !rewrite_all && h == want && len == new_len {
        // Right already; make sure it is on disk (a salvage after a failed
        // writer never fsynced the last data).
        return File::open(path).and_then(|f| f.sync_all()).map_err(RecordError::io("sync"));
    }
    let meta = fs::metadata(path).map_err(RecordError::io("repair"))?;
    if meta.permissions().readonly() {
        fs::set_permissions(path, fs::Permissions::from_mode(0o644)).map_err(RecordError::io("repair"))?;
    }
    let mut f = OpenOptions::new().write(true).open(path).map_err(RecordError::io("repair"))?;
    if len != new_len {
        f.set_len(new_len).map_err(RecordError::io("repair"))?;
    }
    if rewrite_all {
        f.write_all(&want).map_err(RecordError::io("repair"))?;
    } else {
        f.seek(SeekFrom::Start(4)).map_err(RecordError::io("repair"))?;
        f.write_all(&want[4..8]).map_err(RecordError::io("repair"))?;
        f.seek(SeekFrom::Start(40)).map_err(RecordError::io("repair"))?;
        f.write_all(&want[40..44]).map_err(RecordError::io("repair"))?;
    }
    f.sync_all().map_err(RecordError::io("sync"))
}

/// Seals `<spool>/recording/<id>.wav` whose header is final and on disk:
/// 0444, SHA-256, into `sealed/` without replacing anything, fsync both
/// directories.
fn seal_file(spool: &Path, id: Uuid) -> Result<Sealed, RecordError> {
    let src = recording_path(spool, id);
    let dst = sealed_path(spool, id);
    fs::set_permissions(&src, fs::Permissions::from_mode(0o444)).map_err(RecordError::io("seal"))?;
    let (sha256, bytes) = hash_file(&src).map_err(RecordError::io("hash"))?;
    publish(&src, &dst).map_err(RecordError::io("rename"))?;
    sync_dir(&spool.join("sealed")).map_err(RecordError::io("sync"))?;
    sync_dir(&spool.join("recording")).map_err(RecordError::io("sync"))?;
    let frames = bytes.saturating_sub(HEADER_LEN) / FRAME_BYTES;
    Ok(Sealed { id, path: dst, sha256, bytes, duration_ms: frames * 1000 / u64::from(SAMPLE_RATE) })
}

/// What a file already in `<spool>/sealed/` is: its seal finished, but a
/// crash came before its row was sealed (start-up recovery finds such rows
/// still `recording`). Hashed again; nothing is changed. Blocking.
pub fn describe_sealed(spool: &Path, id: Uuid) -> io::Result<Sealed> {
    let path = sealed_path(spool, id);
    let (sha256, bytes) = hash_file(&path)?;
    let frames = bytes.saturating_sub(HEADER_LEN) / FRAME_BYTES;
    Ok(Sealed { id, path, sha256, bytes, duration_ms: frames * 1000 / u64::from(SAMPLE_RATE) })
}

/// SHA-256 (hex) and length of a file, streamed.
fn hash_file(path: &Path) -> io::Result<(String, u64)> {
    let mut f = File::open(path)?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; HASH_BUFFER];
    let mut bytes = 0u64;
    loop {
        let n = match f.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        hasher.update(&buf[..n]);
        bytes += n as u64;
    }
    Ok((hex::encode(hasher.finalize()), bytes))
}

/// Moves `src` to `dst` without ever replacing an existing `dst`: a hard link
/// then an unlink (a crash in between leaves both names on one file, which
/// the next repair completes). Where hard links are not supported, a rename
/// after checking that `dst` does not exist.
fn publish(src: &Path, dst: &Path) -> io::Result<()> {
    match fs::hard_link(src, dst) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
            let (a, b) = (fs::metadata(src)?, fs::metadata(dst)?);
            if (a.dev(), a.ino()) != (b.dev(), b.ino()) {
                return Err(io::Error::new(
                    io::ErrorKind::AlreadyExists,
                    "another sealed recording has this id",
                ));
            }
        }
        Err(e) if matches!(e.kind(), io::ErrorKind::Unsupported | io::ErrorKind::PermissionDenied) => {
            if fs::symlink_metadata(dst).is_ok() {
                return Err(io::Error::new(
                    io::ErrorKind::AlreadyExists,
                    "another sealed recording has this id",
                ));
            }
            return fs::rename(src, dst);
        }
        Err(e) => return Err(e),
    }
    fs::remove_file(src)
}

/// The id of `<uuid>.wav` (canonical lower-case form only).
fn recording_id(path: &Path) -> Option<Uuid> {
    let name = path.file_name()?.to_str()?;
    let id = Uuid::parse_str(name.strip_suffix(".wav")?).ok()?;
    (name == format!("{id}.wav")).then_some(id)
}

/// Start-up repair (E4): every `<uuid>.wav` left in `<spool>/recording/` (a
/// crash, a `kill -9`, a dropped recorder) gets its RIFF and data sizes
/// rewritten from the file length (a trailing partial frame truncated), then
/// is sealed like [`Recorder::seal`] does (fsync, 0444, SHA-256, into
/// `sealed/`). A file too short to hold a header is sealed as an empty but
/// valid WAV. Returns what it sealed.
///
/// A file that cannot be repaired or sealed (its header is not ours, the
/// disk fails) is logged and left where it is, untouched, for a human; other
/// files in the directory (not `<uuid>.wav`) are left alone. Errors only if
/// the directories cannot be created or read. Call before the pool opens any
/// recording (it would seal open ones). Blocking: call from `spawn_blocking`.
pub fn repair_spool(spool: &Path) -> io::Result<Vec<Sealed>> {
    let dir = spool.join("recording");
    fs::create_dir_all(&dir)?;
    fs::create_dir_all(spool.join("sealed"))?;
    let mut found = Vec::new();
    for entry in fs::read_dir(&dir)? {
        let path = entry?.path();
        match recording_id(&path) {
            Some(id) => found.push(id),
            None => {
                tracing::warn!(file = ?path.file_name(), "spool repair: not a recording; left alone")
            }
        }
    }
    found.sort();
    let mut sealed = Vec::with_capacity(found.len());
    for id in found {
        match repair_file(&recording_path(spool, id)).and_then(|()| seal_file(spool, id)) {
            Ok(s) => {
                tracing::info!(recording = %id, duration_ms = s.duration_ms, "spool repair: sealed an interrupted recording");
                sealed.push(s);
            }
            Err(e) => {
                tracing::error!(recording = %id, error = %e, "spool repair: recording left in place")
            }
        }
    }
    Ok(sealed)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frames(n: usize, seed: i16) -> Vec<i16> {
        (0..n * 2)
            .map(|i| if i % 2 == 0 { seed.wrapping_add(i as i16) } else { -seed.wrapping_sub(i as i16 / 3) })
            .collect()
    }

    fn read_wav(path: &Path) -> (hound::WavSpec, Vec<i16>) {
        let mut r = hound::WavReader::open(path).unwrap();
        let spec = r.spec();
        let samples = r.samples::<i16>().map(Result::unwrap).collect();
        (spec, samples)
    }

    fn sha_of(path: &Path) -> String {
        hex::encode(Sha256::digest(fs::read(path).unwrap()))
    }

    fn mode(path: &Path) -> u32 {
        fs::metadata(path).unwrap().permissions().mode() & 0o777
    }

    /// Polls (the writer thread works asynchronously) until `f` holds.
    async fn eventually(mut f: impl FnMut() -> bool) {
        for _ in 0..500 {
            if f() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!("condition not reached in 5 s");
    }

    #[tokio::test]
    async fn open_write_seal_gives_a_sealed_exact_wav() {
        // invariant E1, E3
        let dir = tempfile::tempdir().unwrap();
        let pool = RecorderPool::new(dir.path().to_path_buf(), 2).unwrap();
        let id = Uuid::new_v4();
        let mut rec = pool.open(id).await.unwrap();
        assert_eq!(rec.id(), id);
        let live = recording_path(dir.path(), id);
        // E1: on disk, with a valid (empty) header, before any audio.
        assert_eq!(fs::read(&live).unwrap(), header(0));
        let audio = frames(8000 * 3 + 123, 7);
        for part in audio.chunks(1600 + 2 * 37) {
            rec.write(part).unwrap();
        }
        let sealed = rec.seal().await.unwrap();
        assert_eq!(sealed.id, id);
        assert_eq!(sealed.path, sealed_path(dir.path(), id));
        assert!(!live.exists(), "gone from recording/");
        assert_eq!(mode(&sealed.path), 0o444);
        let (spec, samples) = read_wav(&sealed.path);
        assert_eq!(spec, spec_for_test());
        assert_eq!(samples, audio);
        assert_eq!(sealed.sha256, sha_of(&sealed.path));
        assert_eq!(sealed.bytes, fs::metadata(&sealed.path).unwrap().len());
        assert_eq!(sealed.bytes, 44 + 4 * (8000 * 3 + 123));
        assert_eq!(sealed.duration_ms, 3015);
        assert_eq!(fs::read(&sealed.path).unwrap()[..44], header(4 * (8000 * 3 + 123)));
    }

    fn spec_for_test() -> hound::WavSpec {
        hound::WavSpec {
            channels: 2,
            sample_rate: 8000,
            bits_per_sample: 16,
            sample_format: hound::SampleFormat::Int,
        }
    }

    #[tokio::test]
    async fn many_recordings_on_few_threads() {
        let dir = tempfile::tempdir().unwrap();
        let pool = RecorderPool::new(dir.path().to_path_buf(), 2).unwrap();
        let mut recs = Vec::new();
        for _ in 0..5 {
            recs.push(pool.open(Uuid::new_v4()).await.unwrap());
        }
        for round in 0..30 {
            for (i, rec) in recs.iter_mut().enumerate() {
                rec.write(&frames(800, (round * 10 + i) as i16)).unwrap();
            }
        }
        for (i, rec) in recs.into_iter().enumerate() {
            let sealed = rec.seal().await.unwrap();
            let (_, samples) = read_wav(&sealed.path);
            let expected: Vec<i16> = (0..30).flat_map(|round| frames(800, (round * 10 + i) as i16)).collect();
            assert_eq!(samples, expected);
            assert_eq!(sealed.duration_ms, 3000);
        }
    }

    #[tokio::test]
    async fn empty_recording_seals() {
        let dir = tempfile::tempdir().unwrap();
        let pool = RecorderPool::new(dir.path().to_path_buf(), 1).unwrap();
        let rec = pool.open(Uuid::new_v4()).await.unwrap();
        let sealed = rec.seal().await.unwrap();
        assert_eq!((sealed.bytes, sealed.duration_ms), (44, 0));
        assert!(read_wav(&sealed.path).1.is_empty());
    }

    #[tokio::test]
    async fn a_recorder_holds_no_buffer_between_drains() {
        let dir = tempfile::tempdir().unwrap();
        let pool = RecorderPool::new(dir.path().to_path_buf(), 1).unwrap();
        let mut rec = pool.open(Uuid::new_v4()).await.unwrap();
        assert_eq!(rec.current.capacity(), 0, "nothing held before the first drain");
        let drain = frames(300, 1);
        for _ in 0..3 {
            rec.write_with(|buf, room| {
                assert!(room >= 300);
                buf.extend_from_slice(&drain);
                false
            })
            .unwrap();
            // the drain's frames went to the writer; the call keeps nothing
            assert_eq!(rec.current.capacity(), 0);
        }
        // an empty drain takes no buffer either
        rec.write_with(|_, _| false).unwrap();
        assert_eq!(rec.current.capacity(), 0);
        let sealed = rec.seal().await.unwrap();
        assert_eq!(sealed.bytes, 44 + 3 * 300 * 4);
        // the written buffers came back to the pool for any recorder
        let spare = &pool.inner.spare;
        assert!(spare.allocated.load(Ordering::Relaxed) <= 4, "one per drain at most");
        assert_eq!(spare.list.lock().unwrap().len(), spare.allocated.load(Ordering::Relaxed));
    }

    #[tokio::test]
    async fn write_allocates_nothing_in_steady_state() {
        let dir = tempfile::tempdir().unwrap();
        let pool = RecorderPool::new(dir.path().to_path_buf(), 1).unwrap();
        let mut rec = pool.open(Uuid::new_v4()).await.unwrap();
        let chunk = frames(800, 1);
        for _ in 0..600 {
            rec.write(&chunk).unwrap();
            // The relay's pace is 100 ms; 1 ms is plenty for the writer.
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        // 60 s of audio (600 chunks) went through recycled buffers.
        // A loaded machine may let the writer lag a little; what matters is
        // that buffers are recycled rather than allocated per chunk.
        let allocated = pool.inner.spare.allocated.load(Ordering::Relaxed);
        assert!(allocated <= 60, "buffers allocated: {allocated}");
        let sealed = rec.seal().await.unwrap();
        assert_eq!(sealed.duration_ms, 60_000);
    }

    #[tokio::test]
    async fn write_with_fills_the_buffer_in_pieces_and_writes_it_all() {
        let dir = tempfile::tempdir().unwrap();
        let pool = RecorderPool::new(dir.path().to_path_buf(), 1).unwrap();
        let id = Uuid::new_v4();
        let mut rec = pool.open(id).await.unwrap();
        let audio = frames(5000, 3);
        let mut at = 0;
        let mut calls = 0;
        for _ in 0..3 {
            // Hand over a third (or so) each time, as bounded drains would.
            let upto = (at + audio.len() / 3 + 1).min(audio.len()) & !1;
            let upto = if upto < at { audio.len() } else { upto };
            rec.write_with(|out, max| {
                calls += 1;
                assert!(out.len() + 2 * max as usize <= CHUNK_SAMPLES);
                let n = (2 * max as usize).min(upto - at);
                out.extend_from_slice(&audio[at..at + n]);
                at += n;
                at < upto
            })
            .unwrap();
        }
        rec.write_with(|out, max| {
            let n = (2 * max as usize).min(audio.len() - at);
            out.extend_from_slice(&audio[at..at + n]);
            at += n;
            at < audio.len()
        })
        .unwrap();
        assert!(calls > 3, "the chunk size bounds each piece");
        let sealed = rec.seal().await.unwrap();
        assert_eq!(read_wav(&sealed.path).1, audio);
    }

    #[test]
    fn the_group_commit_syncs_every_second_and_falls_back_to_per_file_on_failure() {
        let durability = Arc::new(Durability::default());
        let (stop, stopped) = mpsc::sync_channel(1);
        let (count_tx, count_rx) = mpsc::channel();
        let d = durability.clone();
        let syncer = std::thread::spawn(move || {
            let mut n = 0;
            syncer(stopped, d, || {
                n += 1;
                count_tx.send(n).unwrap();
                if n < 2 { Ok(()) } else { Err(io::Error::from_raw_os_error(5)) }
            })
        });
        // First sync after a second, fine; the second fails: per file now.
        assert_eq!(count_rx.recv_timeout(Duration::from_secs(5)).unwrap(), 1);
        assert!(!durability.per_file.load(Ordering::Relaxed));
        assert_eq!(count_rx.recv_timeout(Duration::from_secs(5)).unwrap(), 2);
        drop(stop);
        syncer.join().unwrap();
        assert!(durability.per_file.load(Ordering::Relaxed));
        assert!(count_rx.try_recv().is_err(), "no group commit after the fallback");
    }

    #[test]
    fn per_file_durability_checkpoints_each_second_of_audio() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.wav");
        let file = File::create(&path).unwrap();
        let mut open = Open {
            key: 0,
            id: Uuid::nil(),
            sink: Some(Sink::File(file.try_clone().unwrap())),
            sync: file,
            spare: Arc::default(),
            in_flight: Arc::default(),
            shared: Arc::default(),
            data_bytes: 0,
            unsynced_frames: 0,
            last_checkpoint: Instant::now(),
            failed: false,
        };
        let mut bytes = Vec::new();
        let second = frames(8000, 1);
        open.write(&second[..8000], false, false, &mut bytes);
        open.write(&second[8000..], false, false, &mut bytes);
        assert_eq!(open.unsynced_frames, 8000, "group commit: no fdatasync of its own");
        open.write(&second, false, true, &mut bytes);
        assert_eq!(open.unsynced_frames, 0, "per file: synced after 1 s of audio");
        open.write(&second[..100], true, false, &mut bytes);
        assert_eq!(open.unsynced_frames, 0, "an explicit checkpoint always syncs");
        assert_eq!(fs::metadata(&path).unwrap().len(), 2 * 32_100);
    }

    #[tokio::test]
    async fn odd_sample_counts_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let pool = RecorderPool::new(dir.path().to_path_buf(), 1).unwrap();
        let mut rec = pool.open(Uuid::new_v4()).await.unwrap();
        assert!(matches!(rec.write(&[1, 2, 3]), Err(RecordError::PartialFrame)));
        rec.write(&[1, 2]).unwrap();
        let sealed = rec.seal().await.unwrap();
        assert_eq!(read_wav(&sealed.path).1, [1, 2]);
    }

    #[tokio::test]
    async fn open_fails_cleanly() {
        let dir = tempfile::tempdir().unwrap();
        let pool = RecorderPool::new(dir.path().to_path_buf(), 1).unwrap();
        let id = Uuid::new_v4();
        let rec = pool.open(id).await.unwrap();
        // The same id twice: refused, the first file untouched.
        let again = pool.open(id).await.unwrap_err();
        assert!(matches!(again, RecordError::Io { op: "create", .. }), "{again}");
        assert!(!again.to_string().contains(&id.to_string()));
        rec.seal().await.unwrap();
        // The directory is gone.
        fs::remove_dir_all(dir.path().join("recording")).unwrap();
        let err = pool.open(Uuid::new_v4()).await.unwrap_err();
        match err {
            RecordError::Io { op: "create", source } => assert_eq!(source.kind(), io::ErrorKind::NotFound),
            other => panic!("unexpected {other:?}"),
        }
        assert!(RecorderPool::new(dir.path().to_path_buf(), 0).is_err());
    }

    #[tokio::test]
    async fn open_fails_when_the_header_cannot_be_written() {
        let dir = tempfile::tempdir().unwrap();
        let pool = RecorderPool::build(dir.path().to_path_buf(), 1, Some(10)).unwrap();
        let id = Uuid::new_v4();
        let err = pool.open(id).await.unwrap_err();
        assert!(matches!(err, RecordError::Io { op: "header", .. }), "{err}");
        assert!(!recording_path(dir.path(), id).exists(), "nothing left behind");
    }

    #[tokio::test]
    async fn writer_failure_surfaces_from_write_and_the_partial_file_is_sealed() {
        // invariant E1: fail closed; what was written is still evidence.
        let dir = tempfile::tempdir().unwrap();
        let budget = 44 + 4 * 8000 + 100;
        let pool = RecorderPool::build(dir.path().to_path_buf(), 1, Some(budget)).unwrap();
        let id = Uuid::new_v4();
        let mut rec = pool.open(id).await.unwrap();
        let audio = frames(8000 * 3, 3);
        let mut failed = None;
        for part in audio.chunks(1600) {
            if let Err(e) = rec.write(part) {
                failed = Some(e);
                break;
            }
        }
        if failed.is_none() {
            rec.flush().unwrap();
            let mut err = None;
            eventually(|| {
                err = rec.write(&[]).err();
                err.is_some()
            })
            .await;
            failed = err;
        }
        let failed = failed.unwrap();
        assert!(matches!(&failed, RecordError::Io { op: "write" | "flush", .. }), "{failed}");
        assert!(rec.write(&audio[..1600]).is_err(), "the error is sticky");
        let sealed = rec.seal().await.unwrap();
        assert!(!recording_path(dir.path(), id).exists());
        assert_eq!(mode(&sealed.path), 0o444);
        let (_, samples) = read_wav(&sealed.path);
        assert!(samples.len() <= 2 * 8000 + 50);
        assert_eq!(samples[..], audio[..samples.len()]);
        assert_eq!(sealed.sha256, sha_of(&sealed.path));
    }

    #[tokio::test]
    async fn writer_failure_found_at_seal_is_returned_and_repaired_later() {
        let dir = tempfile::tempdir().unwrap();
        let pool = RecorderPool::build(dir.path().to_path_buf(), 1, Some(44 + 1000)).unwrap();
        let id = Uuid::new_v4();
        let mut rec = pool.open(id).await.unwrap();
        // Less than one chunk: nothing reaches the writer before seal.
        rec.write(&frames(700, 5)).unwrap();
        let err = rec.seal().await.unwrap_err();
        assert!(matches!(err, RecordError::Io { .. }), "{err}");
        assert!(recording_path(dir.path(), id).exists(), "left for repair");
        let repaired = repair_spool(dir.path()).unwrap();
        assert_eq!(repaired.len(), 1);
        assert_eq!(repaired[0].id, id);
        let (_, samples) = read_wav(&repaired[0].path);
        assert_eq!(samples[..], frames(700, 5)[..samples.len()]);
    }

    #[tokio::test]
    async fn seal_fails_cleanly_when_sealed_dir_is_gone() {
        let dir = tempfile::tempdir().unwrap();
        let pool = RecorderPool::new(dir.path().to_path_buf(), 1).unwrap();
        let id = Uuid::new_v4();
        let mut rec = pool.open(id).await.unwrap();
        rec.write(&frames(1000, 9)).unwrap();
        fs::remove_dir_all(dir.path().join("sealed")).unwrap();
        let err = rec.seal().await.unwrap_err();
        assert!(matches!(err, RecordError::Io { op: "rename", .. }), "{err}");
        assert!(recording_path(dir.path(), id).exists());
        // Next start-up: sealed then.
        let repaired = repair_spool(dir.path()).unwrap();
        assert_eq!(read_wav(&repaired[0].path).1, frames(1000, 9));
    }

    #[tokio::test]
    async fn crash_after_a_checkpoint_is_repaired() {
        // invariant E4
        let dir = tempfile::tempdir().unwrap();
        let pool = RecorderPool::new(dir.path().to_path_buf(), 1).unwrap();
        let id = Uuid::new_v4();
        let mut rec = pool.open(id).await.unwrap();
        let audio = frames(8000 * 3, 11);
        rec.write(&audio).unwrap();
        rec.flush().unwrap();
        let live = recording_path(dir.path(), id);
        eventually(|| fs::read(&live).map(|b| b.len() as u64 == 44 + 4 * 24_000).unwrap_or(false)).await;
        // The sizes in the header are written at the seal only.
        assert_eq!(fs::read(&live).unwrap()[..44], header(0));
        // What a kill -9 now would leave, plus a torn write: a later chunk,
        // ending in a partial frame.
        let crashed = tempfile::tempdir().unwrap();
        let crash_id = Uuid::new_v4();
        fs::create_dir_all(crashed.path().join("recording")).unwrap();
        let mut bytes = fs::read(&live).unwrap();
        let more = frames(800, 12);
        bytes.extend(more.iter().flat_map(|s| s.to_le_bytes()));
        bytes.extend([1, 2, 3]);
        fs::write(recording_path(crashed.path(), crash_id), &bytes).unwrap();
        drop(rec);
        let repaired = repair_spool(crashed.path()).unwrap();
        assert_eq!(repaired.len(), 1);
        let s = &repaired[0];
        assert_eq!(s.id, crash_id);
        assert_eq!(s.duration_ms, 3100);
        let (_, samples) = read_wav(&s.path);
        assert_eq!(samples.len(), audio.len() + more.len());
        assert_eq!(samples[..audio.len()], audio[..]);
        assert_eq!(samples[audio.len()..], more[..]);
        assert_eq!(s.sha256, sha_of(&s.path));
        assert_eq!(mode(&s.path), 0o444);
        assert!(!recording_path(crashed.path(), crash_id).exists());
    }

    #[tokio::test]
    async fn dropped_recorder_is_closed_and_left_for_repair() {
        let dir = tempfile::tempdir().unwrap();
        let pool = RecorderPool::new(dir.path().to_path_buf(), 1).unwrap();
        let id = Uuid::new_v4();
        let mut rec = pool.open(id).await.unwrap();
        rec.write(&frames(1234, 2)).unwrap();
        drop(rec);
        let live = recording_path(dir.path(), id);
        eventually(|| fs::read(&live).map(|b| b[40..44] == header(4 * 1234)[40..44]).unwrap_or(false)).await;
        let repaired = repair_spool(dir.path()).unwrap();
        assert_eq!(read_wav(&repaired[0].path).1, frames(1234, 2));
    }

    #[test]
    fn repair_handles_stale_short_and_foreign_files() {
        let dir = tempfile::tempdir().unwrap();
        let rec_dir = dir.path().join("recording");
        fs::create_dir_all(&rec_dir).unwrap();
        // Stale header (as right after open: 0 data bytes) over 3 s of frames
        // and a partial frame.
        let stale = Uuid::new_v4();
        let audio = frames(24_000, 4);
        let mut bytes = header(0).to_vec();
        bytes.extend(audio.iter().flat_map(|s| s.to_le_bytes()));
        bytes.extend([9, 9]);
        fs::write(rec_dir.join(format!("{stale}.wav")), &bytes).unwrap();
        // Crashed before the header was complete.
        let short = Uuid::new_v4();
        fs::write(rec_dir.join(format!("{short}.wav")), &header(0)[..10]).unwrap();
        let empty = Uuid::new_v4();
        fs::write(rec_dir.join(format!("{empty}.wav")), b"").unwrap();
        // Not ours: left alone.
        let foreign = Uuid::new_v4();
        fs::write(rec_dir.join(format!("{foreign}.wav")), vec![7u8; 100]).unwrap();
        fs::write(rec_dir.join("notes.txt"), b"x").unwrap();
        fs::write(rec_dir.join("not-a-uuid.wav"), header(0)).unwrap();

        let repaired = repair_spool(dir.path()).unwrap();
        assert_eq!(repaired.len(), 3);
        let by_id = |id: Uuid| repaired.iter().find(|s| s.id == id).unwrap();
        let s = by_id(stale);
        assert_eq!(read_wav(&s.path).1, audio);
        assert_eq!((s.duration_ms, s.bytes), (3000, 44 + 96_000));
        for id in [short, empty] {
            let s = by_id(id);
            assert_eq!((s.bytes, s.duration_ms), (44, 0));
            assert!(read_wav(&s.path).1.is_empty());
            assert_eq!(s.sha256, sha_of(&s.path));
        }
        assert_eq!(fs::read(rec_dir.join(format!("{foreign}.wav"))).unwrap(), vec![7u8; 100]);
        assert!(rec_dir.join("notes.txt").exists());
        assert!(rec_dir.join("not-a-uuid.wav").exists());
        // Idempotent: a second run finds nothing new.
        assert!(repair_spool(dir.path()).unwrap().is_empty());
    }

    #[test]
    fn repair_completes_an_interrupted_move_and_never_replaces_a_sealed_file() {
        let dir = tempfile::tempdir().unwrap();
        fs::create_dir_all(dir.path().join("recording")).unwrap();
        fs::create_dir_all(dir.path().join("sealed")).unwrap();
        // Crash between link and unlink: both names on one read-only file.
        let id = Uuid::new_v4();
        let mut bytes = header(8).to_vec();
        bytes.extend([1, 0, 2, 0, 3, 0, 4, 0]);
        let src = recording_path(dir.path(), id);
        fs::write(&src, &bytes).unwrap();
        fs::set_permissions(&src, fs::Permissions::from_mode(0o444)).unwrap();
        fs::hard_link(&src, sealed_path(dir.path(), id)).unwrap();
        // Another file claiming a sealed id.
        let clash = Uuid::new_v4();
        fs::write(recording_path(dir.path(), clash), header(0)).unwrap();
        fs::write(sealed_path(dir.path(), clash), b"sealed before").unwrap();

        let repaired = repair_spool(dir.path()).unwrap();
        assert_eq!(repaired.len(), 1);
        assert_eq!(repaired[0].id, id);
        assert_eq!(read_wav(&repaired[0].path).1, [1, 2, 3, 4]);
        assert!(!src.exists());
        assert_eq!(fs::read(sealed_path(dir.path(), clash)).unwrap(), b"sealed before");
        assert!(recording_path(dir.path(), clash).exists());
    }

    #[test]
    fn our_header_is_what_hound_writes() {
        let mut cursor = io::Cursor::new(Vec::new());
        let mut w = hound::WavWriter::new(&mut cursor, spec()).unwrap();
        for s in [1i16, -1, 2, -2] {
            w.write_sample(s).unwrap();
        }
        w.finalize().unwrap();
        assert_eq!(cursor.get_ref()[..44], header(8));
    }

    #[test]
    fn a_stalled_writer_makes_write_fail_instead_of_growing() {
        // A writer that takes nothing: its queue holds 4 jobs, no buffer
        // ever comes back.
        let (tx, rx) = mpsc::sync_channel(4);
        let mut rec = Recorder {
            id: Uuid::nil(),
            key: 0,
            pool: Arc::new(PoolInner {
                spool: PathBuf::new(),
                spare: Arc::default(),
                workers: Vec::new(),
                _syncer: None,
                next_key: AtomicU64::new(0),
                fail_after: None,
            }),
            tx,
            in_flight: Arc::default(),
            current: Vec::new(),
            pending: VecDeque::with_capacity(MAX_BUFFERS + 1),
            shared: Arc::default(),
            error: None,
            reported: false,
            done: false,
        };
        let pending_capacity = rec.pending.capacity();
        let chunk = frames(800, 1);
        let mut accepted = 0;
        let err = loop {
            match rec.write(&chunk) {
                Ok(()) => accepted += 1,
                Err(e) => break e,
            }
        };
        assert!(matches!(err, RecordError::Full), "{err}");
        assert_eq!(accepted, MAX_BUFFERS - 1, "10 s of backlog, then fail");
        assert_eq!(rec.in_flight.load(Ordering::Relaxed), MAX_BUFFERS - 1);
        assert_eq!(rec.pending.capacity(), pending_capacity);
        assert!(matches!(rec.write(&[]), Err(RecordError::Full)), "sticky");
        drop(rec);
        drop(rx);
    }

    #[test]
    fn handles_can_move_between_tasks_and_threads() {
        fn send_sync<T: Send + Sync>() {}
        send_sync::<RecorderPool>();
        send_sync::<Recorder>();
        send_sync::<Sealed>();
        send_sync::<RecordError>();
    }

    #[test]
    fn errors_name_the_operation_only() {
        let e = RecordError::Io { op: "write", source: io::Error::from_raw_os_error(28) };
        assert!(e.to_string().starts_with("recording write failed: "));
        assert_eq!(e.duplicate().to_string(), e.to_string());
    }
}
