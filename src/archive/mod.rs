//! The archive: where sealed recordings are kept for good (E4, E5).
//!
//! ## Backends
//! - **`s3`** ([`s3::S3Archive`]) — any S3-compatible store with Object
//!   Lock (Ceph RGW, MinIO, AWS S3) through `aws-sdk-s3`: custom endpoint,
//!   region, path-style. Every object is written with one PUT (never
//!   multipart: RGW drops the lock headers of multipart uploads), Object
//!   Lock mode COMPLIANCE and a retain-until date in `Z` form, `Content-MD5`
//!   (so that the store checks the bytes) and `x-amz-checksum-sha256` as a
//!   plain header (honoured by AWS, ignored by RGW). The SDK's own request
//!   checksums are switched to "when required": they would use aws-chunked
//!   trailers that several S3-compatible stores reject.
//! - **`local`** ([`local::LocalArchive`]) — a directory (the embedded
//!   default) with the same key layout; each object a read-only file, its
//!   metadata and lock in a sidecar `<key>.meta.json`. Retention is kept in
//!   the sidecar and the manifest: the file system does not enforce it, so
//!   the local backend is for development and single-machine tests only.
//!
//! Neither backend has a delete path.
//!
//! ## Layout
//! `recordings/YYYY/MM/DD/<recording uuid>.wav` and, next to it, the
//! manifest `<recording uuid>.json` ([`Manifest`]): call, task, client,
//! agent, times, SHA-256 and retention. No personal data in keys. The
//! manifests make the archive self-describing: `huifang reindex` rebuilds
//! the index from them alone.
//!
//! ## Retention
//! retain-until = the call's start + the retention years of its callback
//! kind (`[retention]`, never below 15), counted in calendar years (29
//! February plus one year is 28 February) and rounded *up* to the whole
//! second, so that a store keeping whole seconds never shortens it. See
//! [`retain_until`].
//!
//! The uploader, which takes sealed recordings from the spool to the
//! archive, is [`uploader`]; the spool's free-space guard is [`guard`].

pub mod guard;
pub mod local;
pub mod s3;
pub mod uploader;

use std::collections::BTreeMap;
use std::path::Path;

use chrono::{DateTime, Datelike, NaiveDate, SecondsFormat, TimeZone, Utc};
use serde::{Deserialize, Serialize};
use thiserror::Error;
use uuid::Uuid;

/// The Object Lock mode huifang writes (and requires on verification).
pub const LOCK_MODE: &str = "COMPLIANCE";

/// Why the local archive is for the demo and evaluation only.
pub const LOCAL_NOTICE: &str = "the local archive (archive.backend = \"local\") is not write-once storage: \
    fine for the demo and evaluation, never for production (use archive.backend = \"s3\" with Object Lock)";

/// An archive backend (cheap to clone).
#[derive(Clone)]
pub enum Archive {
    /// A directory.
    Local(local::LocalArchive),
    /// An S3-compatible bucket with Object Lock.
    S3(s3::S3Archive),
}

/// What went wrong with the archive. Never holds credentials.
#[derive(Debug, Error)]
pub enum ArchiveError {
    /// The configuration cannot be used (what is missing or wrong).
    #[error("archive configuration: {0}")]
    Config(String),
    /// The store cannot be reached, or the bucket/directory does not exist.
    #[error("archive unreachable: {0}")]
    Unreachable(String),
    /// The bucket lacks Object Lock or versioning (the message says how to fix it).
    #[error("archive not write-once: {0}")]
    NotLocked(String),
    /// No such object.
    #[error("no such object: {0}")]
    NotFound(String),
    /// The bytes do not match their checksum.
    #[error("checksum mismatch: {0}")]
    Checksum(String),
    /// A write-once object already exists with other content.
    #[error("refused to overwrite {0}: the archive is write-once")]
    Exists(String),
    /// A local file operation failed.
    #[error("archive I/O on {path}: {source}")]
    Io {
        /// The file or directory.
        path: String,
        /// The cause.
        source: std::io::Error,
    },
    /// An S3 operation failed.
    #[error("S3 {op}: {message}")]
    S3 {
        /// The operation (`PutObject`, …).
        op: &'static str,
        /// What the store or the SDK said.
        message: String,
    },
}

/// Bytes streamed out of the archive ([`Archive::read_range`]).
pub type RangeReader = std::pin::Pin<Box<dyn tokio::io::AsyncRead + Send>>;

/// What a PUT sends: bytes in memory, or a file streamed from disk.
#[derive(Debug, Clone, Copy)]
pub enum Body<'a> {
    /// Small objects (manifests): hashed again by [`Archive::put`].
    Bytes(&'a [u8]),
    /// Recordings: read from the file while they are sent, so that an
    /// upload holds a few buffers, not the recording (an hour is 115 MB).
    /// The caller has just hashed the file ([`file_digests`]); `len` and
    /// `md5` come from that pass. The file is not read again before
    /// sending: the store checks the bytes it receives against `md5`
    /// (S3: Content-MD5, and the payload's SHA-256 in the signature; the
    /// local backend re-hashes while it copies), so a file that changed in
    /// between is refused, never stored.
    File {
        /// The file.
        path: &'a Path,
        /// Its length.
        len: u64,
        /// Its MD5.
        md5: [u8; 16],
    },
}

impl Body<'_> {
    /// The body's length in bytes.
    pub fn len(&self) -> u64 {
        match self {
            Body::Bytes(b) => b.len() as u64,
            Body::File { len, .. } => *len,
        }
    }

    /// Whether the body is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// One object to write: see [`Archive::put`].
#[derive(Debug, Clone, Copy)]
pub struct PutObject<'a> {
    /// The key (`recordings/…`).
    pub key: &'a str,
    /// The bytes.
    pub body: Body<'a>,
    /// `audio/wav`, `application/json`.
    pub content_type: &'a str,
    /// SHA-256 of `body`, 64 lower-case hex digits (see [`Body`] for how
    /// it is checked).
    pub sha256_hex: &'a str,
    /// User metadata (keys lower-case, without `x-amz-meta-`; ASCII values).
    pub metadata: &'a BTreeMap<String, String>,
    /// Object Lock COMPLIANCE retain-until date.
    pub retain_until: DateTime<Utc>,
}

/// What a PUT returned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PutResult {
    /// The object version written (S3 with versioning); `None` locally.
    pub version_id: Option<String>,
}

/// What HEAD says about an object.
#[derive(Debug, Clone, PartialEq)]
pub struct ObjectInfo {
    /// The key.
    pub key: String,
    /// Current version id (S3), `None` locally.
    pub version_id: Option<String>,
    /// Size in bytes.
    pub size: u64,
    /// Object Lock mode (`"COMPLIANCE"`).
    pub lock_mode: Option<String>,
    /// Object Lock retain-until date.
    pub retain_until: Option<DateTime<Utc>>,
    /// Whether a legal hold is on.
    pub legal_hold: bool,
    /// User metadata: lower-case keys without `x-amz-meta-`.
    pub metadata: BTreeMap<String, String>,
    /// The ETag, quotes removed (S3: hex MD5 of a single-PUT object).
    pub etag: Option<String>,
}

impl Archive {
    /// The archive the configuration names (`[archive]`). For S3 the
    /// credentials are `archive.s3.access_key_id` (or `AWS_ACCESS_KEY_ID`)
    /// and the secret in the environment variable
    /// `archive.s3.secret_access_key_env` (or `AWS_SECRET_ACCESS_KEY`). No
    /// network access yet: call [`check`](Self::check).
    pub fn from_config(cfg: &crate::config::Config) -> Result<Archive, ArchiveError> {
        match cfg.archive.backend.as_str() {
            "local" => Ok(Archive::Local(local::LocalArchive::new(cfg.archive_path()))),
            "s3" => {
                let s3 = cfg
                    .archive
                    .s3
                    .as_ref()
                    .ok_or_else(|| ArchiveError::Config("backend = \"s3\" needs [archive.s3]".into()))?;
                Ok(Archive::S3(s3::S3Archive::from_config(s3)?))
            }
            other => Err(ArchiveError::Config(format!("unknown archive.backend {other:?}"))),
        }
    }

    /// Checks that the archive can keep evidence: S3 — the bucket exists,
    /// Object Lock is enabled and versioning is `Enabled`; local — the
    /// directory exists (or can be created) and is writable. Run at
    /// start-up: huifang refuses to start when it fails.
    pub async fn check(&self) -> Result<(), ArchiveError> {
        match self {
            Archive::Local(a) => a.check().await,
            Archive::S3(a) => a.check().await,
        }
    }

    /// Creates the bucket with Object Lock (which turns versioning on) or
    /// the directory, then [`check`](Self::check)s it. An existing bucket
    /// owned by us is fine.
    pub async fn init(&self) -> Result<(), ArchiveError> {
        match self {
            Archive::Local(a) => a.init().await?,
            Archive::S3(a) => a.init().await?,
        }
        self.check().await
    }

    /// Writes one object, write-once, with Object Lock COMPLIANCE until
    /// `obj.retain_until`, in a single request. A [`Body::Bytes`] is
    /// hashed against `obj.sha256_hex` first, a [`Body::File`] is checked
    /// by the store against its MD5 as it arrives; either way a mismatch is
    /// [`ArchiveError::Checksum`] (or the store's refusal) and nothing is
    /// stored.
    pub async fn put(&self, obj: &PutObject<'_>) -> Result<PutResult, ArchiveError> {
        if let Body::Bytes(bytes) = obj.body {
            let actual = sha256_hex(bytes);
            if actual != obj.sha256_hex {
                return Err(ArchiveError::Checksum(format!(
                    "{}: body hashes to {actual}, expected {}",
                    obj.key, obj.sha256_hex
                )));
            }
        }
        match self {
            Archive::Local(a) => a.put(obj).await,
            Archive::S3(a) => a.put(obj).await,
        }
    }

    /// What the archive holds at `key` (the current version), or `None`.
    pub async fn head(&self, key: &str) -> Result<Option<ObjectInfo>, ArchiveError> {
        self.head_version(key, None).await
    }

    /// What the archive holds at `key` in version `version` (`None`: the
    /// current version), or `None` when there is no such object or
    /// version. The local backend keeps one version per key and ignores
    /// `version`.
    pub async fn head_version(
        &self,
        key: &str,
        version: Option<&str>,
    ) -> Result<Option<ObjectInfo>, ArchiveError> {
        match self {
            Archive::Local(a) => a.head(key).await,
            Archive::S3(a) => a.head(key, version).await,
        }
    }

    /// The bytes at `key` ([`ArchiveError::NotFound`] if none).
    pub async fn get(&self, key: &str) -> Result<Vec<u8>, ArchiveError> {
        self.get_version(key, None).await
    }

    /// The bytes of version `version` of `key` (`None`: the current one;
    /// [`ArchiveError::NotFound`] if none). The local backend ignores
    /// `version`.
    pub async fn get_version(&self, key: &str, version: Option<&str>) -> Result<Vec<u8>, ArchiveError> {
        match self {
            Archive::Local(a) => a.get(key).await,
            Archive::S3(a) => a.get(key, version).await,
        }
    }

    /// `len` bytes of version `version` of `key` from byte `start`, as a
    /// stream: never the whole object in memory (a browser player asks for
    /// ranges of an hour-long recording). S3: GetObject with the Range
    /// passed through. The caller knows the object's size (the database
    /// holds it) and asks only for bytes inside it.
    pub async fn read_range(
        &self,
        key: &str,
        version: Option<&str>,
        start: u64,
        len: u64,
    ) -> Result<RangeReader, ArchiveError> {
        match self {
            Archive::Local(a) => a.read_range(key, start, len).await,
            Archive::S3(a) => a.read_range(key, version, start, len).await,
        }
    }

    /// Every key starting with `prefix`, sorted (all pages).
    pub async fn list(&self, prefix: &str) -> Result<Vec<String>, ArchiveError> {
        let mut keys = match self {
            Archive::Local(a) => a.list(prefix).await?,
            Archive::S3(a) => a.list(prefix).await?,
        };
        keys.sort();
        Ok(keys)
    }

    /// Puts a legal hold on version `version` of the object at `key`
    /// (`None`: the current version), or takes it off (S3:
    /// PutObjectLegalHold). The local backend ignores `version`.
    pub async fn set_legal_hold(
        &self,
        key: &str,
        version: Option<&str>,
        on: bool,
    ) -> Result<(), ArchiveError> {
        match self {
            Archive::Local(a) => a.set_legal_hold(key, on).await,
            Archive::S3(a) => a.set_legal_hold(key, version, on).await,
        }
    }

    /// Puts the legal hold on both objects of an archived recording (the
    /// WAV and its manifest, the versions the database recorded), or takes
    /// it off. Idempotent.
    pub async fn set_recording_hold(&self, a: &crate::store::Archived, on: bool) -> Result<(), ArchiveError> {
        self.set_legal_hold(&a.key, a.version.as_deref(), on).await?;
        self.set_legal_hold(&a.manifest_key, a.manifest_version.as_deref(), on).await
    }

    /// Whether objects are kept write-once (S3 Object Lock); the local
    /// archive is not ([`LOCAL_NOTICE`]).
    pub fn is_write_once(&self) -> bool {
        matches!(self, Archive::S3(_))
    }

    /// A notice for people (start-up, `status`, `verify`) when the archive
    /// is not write-once; `None` for S3 with Object Lock.
    pub fn notice(&self) -> Option<&'static str> {
        (!self.is_write_once()).then_some(LOCAL_NOTICE)
    }

    /// `"s3 http://host:port/bucket"` or `"local /path"`: for logs, no secrets.
    pub fn describe(&self) -> String {
        match self {
            Archive::Local(a) => a.describe(),
            Archive::S3(a) => a.describe(),
        }
    }
}

/// The key of a recording's WAV: `recordings/YYYY/MM/DD/<uuid>.wav` (UTC date).
pub fn recording_key(started_at: DateTime<Utc>, id: Uuid) -> String {
    format!("{}/{}.wav", day_prefix(started_at), id.hyphenated())
}

/// The key of a recording's manifest: `recordings/YYYY/MM/DD/<uuid>.json`.
pub fn manifest_key(started_at: DateTime<Utc>, id: Uuid) -> String {
    format!("{}/{}.json", day_prefix(started_at), id.hyphenated())
}

fn day_prefix(t: DateTime<Utc>) -> String {
    format!("recordings/{:04}/{:02}/{:02}", t.year(), t.month(), t.day())
}

/// The Object Lock date of a recording: `call_started` + `years` calendar
/// years (29 February becomes 28 February in a common year), rounded up to
/// the whole second. Format it with [`z_time`].
pub fn retain_until(call_started: DateTime<Utc>, years: u32) -> DateTime<Utc> {
    let d = call_started.date_naive();
    let y = d.year() + i32::try_from(years).unwrap_or(i32::MAX - d.year());
    let date = NaiveDate::from_ymd_opt(y, d.month(), d.day())
        .or_else(|| NaiveDate::from_ymd_opt(y, d.month(), 28))
        .unwrap_or(NaiveDate::MAX);
    let t = Utc.from_utc_datetime(&date.and_time(call_started.time()));
    let whole = t.timestamp();
    let up = if t.timestamp_subsec_nanos() > 0 { whole + 1 } else { whole };
    Utc.timestamp_opt(up, 0).single().unwrap_or(t)
}

/// A time as huifang writes it everywhere outside the database: RFC 3339,
/// UTC, `Z`, whole seconds when there is no fraction, else milliseconds.
pub fn z_time(t: DateTime<Utc>) -> String {
    if t.timestamp_subsec_millis() == 0 {
        t.to_rfc3339_opts(SecondsFormat::Secs, true)
    } else {
        t.to_rfc3339_opts(SecondsFormat::Millis, true)
    }
}

/// SHA-256 of `bytes`, lower-case hex.
pub fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(bytes))
}

/// A file's digests, from one streaming pass.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileDigests {
    /// SHA-256, lower-case hex.
    pub sha256_hex: String,
    /// MD5 (for Content-MD5).
    pub md5: [u8; 16],
    /// Bytes read.
    pub len: u64,
}

/// Reads `path` once, in 256 KiB chunks, and returns its SHA-256, MD5 and
/// length. Blocking: call it from `spawn_blocking`.
pub fn file_digests(path: &Path) -> std::io::Result<FileDigests> {
    digest_stream(&mut std::fs::File::open(path)?, |_| Ok(()))
}

/// Reads `from` to its end in 256 KiB chunks, hands each chunk to `sink`
/// (e.g. a copy being written) and returns the SHA-256, MD5 and length of
/// what was read. Blocking.
pub(crate) fn digest_stream(
    from: &mut impl std::io::Read,
    mut sink: impl FnMut(&[u8]) -> std::io::Result<()>,
) -> std::io::Result<FileDigests> {
    use md5::Digest as _;
    let mut sha = sha2::Sha256::new();
    let mut md5 = md5::Md5::new();
    let mut buf = vec![0u8; 256 * 1024];
    let mut len = 0u64;
    loop {
        let n = match from.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        sink(&buf[..n])?;
        sha2::Digest::update(&mut sha, &buf[..n]);
        md5.update(&buf[..n]);
        len += n as u64;
    }
    Ok(FileDigests { sha256_hex: hex::encode(sha2::Digest::finalize(sha)), md5: md5.finalize().into(), len })
}

/// The manifest stored next to each recording (`<uuid>.json`): everything
/// needed to rebuild the index from the archive alone. Times are RFC 3339
/// UTC with `Z`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Manifest {
    /// Format version: 1.
    pub version: u32,
    /// The recording.
    pub recording_id: Uuid,
    /// The call it records.
    pub call_id: Uuid,
    /// The callback task.
    pub task_id: Option<String>,
    /// The brokerage's client id.
    pub client_id: Option<String>,
    /// The agent's SIP URI.
    pub agent_uri: String,
    /// The agent (a staff id) who took the call, when known (absent in
    /// manifests written before issue 12).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent_id: Option<String>,
    /// The client's SIP URI.
    pub client_uri: String,
    /// The callback kind (decides the retention).
    pub kind: Option<String>,
    /// When the call started.
    #[serde(with = "ztime")]
    pub started_at: DateTime<Utc>,
    /// When the conversation started.
    #[serde(with = "ztime_opt")]
    pub answered_at: Option<DateTime<Utc>>,
    /// When the call ended.
    #[serde(with = "ztime_opt")]
    pub ended_at: Option<DateTime<Utc>>,
    /// The call's outcome.
    pub outcome: Option<String>,
    /// `sealed` or `interrupted`.
    pub state: String,
    /// Audio duration in milliseconds.
    pub duration_ms: u64,
    /// WAV size in bytes.
    pub bytes: u64,
    /// SHA-256 of the WAV, lower-case hex.
    pub sha256: String,
    /// Object Lock retain-until date of both objects.
    #[serde(with = "ztime")]
    pub retain_until: DateTime<Utc>,
    /// The retention applied, years.
    pub retention_years: u32,
}

impl Manifest {
    /// The manifest as stored: pretty JSON with a final newline.
    pub fn to_json(&self) -> Vec<u8> {
        let mut v = serde_json::to_vec_pretty(self).expect("a manifest always serialises");
        v.push(b'\n');
        v
    }

    /// Parses a stored manifest.
    pub fn from_json(bytes: &[u8]) -> Result<Manifest, serde_json::Error> {
        serde_json::from_slice(bytes)
    }
}

mod ztime {
    use chrono::{DateTime, Utc};
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(t: &DateTime<Utc>, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&super::z_time(*t))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<DateTime<Utc>, D::Error> {
        let s = String::deserialize(d)?;
        DateTime::parse_from_rfc3339(&s).map(|t| t.with_timezone(&Utc)).map_err(serde::de::Error::custom)
    }
}

mod ztime_opt {
    use chrono::{DateTime, Utc};
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(t: &Option<DateTime<Utc>>, s: S) -> Result<S::Ok, S::Error> {
        match t {
            Some(t) => s.serialize_str(&super::z_time(*t)),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<DateTime<Utc>>, D::Error> {
        let s = Option::<String>::deserialize(d)?;
        s.map(|s| {
            DateTime::parse_from_rfc3339(&s).map(|t| t.with_timezone(&Utc)).map_err(serde::de::Error::custom)
        })
        .transpose()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    #[test]
    fn keys_use_the_utc_day_and_the_uuid_only() {
        let id = Uuid::parse_str("0192f0c4-1b2c-7d3e-8f40-123456789abc").unwrap();
        let at = t("2026-03-05T23:59:59.999+00:00");
        assert_eq!(recording_key(at, id), "recordings/2026/03/05/0192f0c4-1b2c-7d3e-8f40-123456789abc.wav");
        assert_eq!(manifest_key(at, id), "recordings/2026/03/05/0192f0c4-1b2c-7d3e-8f40-123456789abc.json");
        // a local time east of UTC is filed under the UTC day
        assert!(recording_key(t("2026-03-06T07:00:00+08:00"), id).starts_with("recordings/2026/03/05/"));
    }

    // invariant E5
    #[test]
    fn retain_until_counts_calendar_years_and_rounds_up() {
        let cases = [
            ("2026-11-27T14:44:53Z", 15, "2041-11-27T14:44:53Z"),
            ("2026-11-27T14:44:53.001Z", 15, "2041-11-27T14:44:54Z"),
            ("2028-02-29T10:00:00Z", 15, "2043-02-28T10:00:00Z"),
            ("2028-02-29T10:00:00Z", 20, "2048-02-29T10:00:00Z"),
            ("2026-12-31T23:59:59.500Z", 20, "2047-01-01T00:00:00Z"),
        ];
        for (start, years, want) in cases {
            let got = retain_until(t(start), years);
            assert_eq!(z_time(got), want, "{start} + {years}");
            assert!(got >= t(start));
        }
    }

    #[test]
    fn times_are_written_with_z() {
        assert_eq!(z_time(t("2041-11-27T14:44:53+00:00")), "2041-11-27T14:44:53Z");
        assert_eq!(z_time(t("2026-11-27T14:44:53.120+00:00")), "2026-11-27T14:44:53.120Z");
    }

    fn manifest() -> Manifest {
        Manifest {
            version: 1,
            recording_id: Uuid::now_v7(),
            call_id: Uuid::now_v7(),
            task_id: Some("task-1".into()),
            client_id: Some("C1".into()),
            agent_uri: "sip:agent1@127.0.0.1".into(),
            agent_id: None,
            client_uri: "sip:13800000000@127.0.0.1".into(),
            kind: Some("new_account".into()),
            started_at: t("2026-11-27T14:44:53.123Z"),
            answered_at: Some(t("2026-11-27T14:44:58Z")),
            ended_at: None,
            outcome: Some("completed".into()),
            state: "sealed".into(),
            duration_ms: 12_000,
            bytes: 384_044,
            sha256: sha256_hex(b"x"),
            retain_until: t("2046-11-27T14:44:54Z"),
            retention_years: 20,
        }
    }

    #[test]
    fn manifest_round_trips_with_z_times() {
        let m = manifest();
        let json = m.to_json();
        let text = String::from_utf8(json.clone()).unwrap();
        assert!(text.contains("\"started_at\": \"2026-11-27T14:44:53.123Z\""), "{text}");
        assert!(text.contains("\"retain_until\": \"2046-11-27T14:44:54Z\""), "{text}");
        assert!(text.contains("\"ended_at\": null"), "{text}");
        assert!(!text.contains("+00:00"));
        assert_eq!(Manifest::from_json(&json).unwrap(), m);
    }
}
