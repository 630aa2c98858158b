//! The local archive: a directory with the S3 backend's key layout.
//!
//! `<dir>/<key>` holds the bytes, written to a temporary file, fsynced,
//! made read-only (0444) and linked into place without replacing anything
//! (so two writers of one key cannot both win). `<dir>/<key>.meta.json`, the
//! sidecar, holds what S3 would keep beside the object: lock mode
//! (`COMPLIANCE`), retain-until, SHA-256, MD5 (the ETag), content type, user
//! metadata and the legal hold.
//!
//! Write-once: a PUT of an existing key with the same bytes changes nothing
//! (a retain-until later than the stored one extends it, as S3 allows); with
//! other bytes it is [`ArchiveError::Exists`]. There is no delete. The file
//! system does not enforce retention; the local backend is the embedded
//! default for development and single-machine use, not a WORM store.

use std::collections::BTreeMap;
use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::{ArchiveError, Body, LOCK_MODE, ObjectInfo, PutObject, PutResult, sha256_hex};

/// The suffix of sidecar files.
const SIDECAR: &str = ".meta.json";

/// A directory archive (cheap to clone).
#[derive(Debug, Clone)]
pub struct LocalArchive {
    root: PathBuf,
}

/// What S3 would keep beside an object.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
struct Sidecar {
    mode: String,
    #[serde(with = "super::ztime")]
    retain_until: DateTime<Utc>,
    sha256: String,
    md5: String,
    size: u64,
    content_type: String,
    metadata: BTreeMap<String, String>,
    legal_hold: bool,
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> ArchiveError + '_ {
    move |source| ArchiveError::Io { path: path.display().to_string(), source }
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, ArchiveError> + Send + 'static,
) -> Result<T, ArchiveError> {
    tokio::task::spawn_blocking(f)
        .await
        .unwrap_or_else(|e| Err(ArchiveError::Unreachable(format!("archive worker thread: {e}"))))
}

impl LocalArchive {
    /// An archive in `root` (not touched until used).
    pub fn new(root: PathBuf) -> LocalArchive {
        LocalArchive { root }
    }

    /// `"local /path"`.
    pub fn describe(&self) -> String {
        format!("local {}", self.root.display())
    }

    fn path(&self, key: &str) -> Result<PathBuf, ArchiveError> {
        let ok = !key.is_empty()
            && !key.starts_with('/')
            && !key.ends_with(SIDECAR)
            && key.split('/').all(|p| !p.is_empty() && p != "." && p != "..")
            && key.bytes().all(|b| b.is_ascii_alphanumeric() || b"/._-".contains(&b));
        if !ok {
            return Err(ArchiveError::Config(format!("invalid object key {key:?}")));
        }
        Ok(self.root.join(key))
    }

    /// The directory exists (created if missing) and is writable.
    pub(super) async fn check(&self) -> Result<(), ArchiveError> {
        let root = self.root.clone();
        blocking(move || {
            // the embedded default: a missing directory is created
            std::fs::create_dir_all(&root).map_err(|e| {
                ArchiveError::Unreachable(format!(
                    "{} does not exist and cannot be created ({e}); create it with `huifang archive init`",
                    root.display()
                ))
            })?;
            let probe = root.join(format!(".huifang-probe-{}", uuid::Uuid::new_v4()));
            std::fs::write(&probe, b"probe")
                .map_err(|e| ArchiveError::Unreachable(format!("{} is not writable: {e}", root.display())))?;
            let _ = std::fs::remove_file(&probe);
            Ok(())
        })
        .await
    }

    pub(super) async fn init(&self) -> Result<(), ArchiveError> {
        let root = self.root.clone();
        blocking(move || std::fs::create_dir_all(&root).map_err(io(&root))).await
    }

    pub(super) async fn put(&self, obj: &PutObject<'_>) -> Result<PutResult, ArchiveError> {
        let path = self.path(obj.key)?;
        let key = obj.key.to_string();
        let source = match obj.body {
            Body::Bytes(b) => Source::Bytes(b.to_vec()),
            Body::File { path, len, md5 } => Source::File { path: path.to_path_buf(), len, md5 },
        };
        let sidecar = Sidecar {
            mode: LOCK_MODE.into(),
            retain_until: obj.retain_until,
            sha256: obj.sha256_hex.to_string(),
            md5: String::new(), // from the bytes written
            size: obj.body.len(),
            content_type: obj.content_type.to_string(),
            metadata: obj.metadata.clone(),
            legal_hold: false,
        };
        blocking(move || put_blocking(&key, &path, source, sidecar)).await?;
        Ok(PutResult { version_id: None })
    }

    pub(super) async fn head(&self, key: &str) -> Result<Option<ObjectInfo>, ArchiveError> {
        let path = self.path(key)?;
        let key = key.to_string();
        blocking(move || {
            let meta = match std::fs::metadata(&path) {
                Ok(m) => m,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
                Err(e) => return Err(io(&path)(e)),
            };
            let side = read_sidecar(&path)?;
            Ok(Some(ObjectInfo {
                key,
                version_id: None,
                size: meta.len(),
                lock_mode: side.as_ref().map(|s| s.mode.clone()),
                retain_until: side.as_ref().map(|s| s.retain_until),
                legal_hold: side.as_ref().is_some_and(|s| s.legal_hold),
                metadata: side.as_ref().map(|s| s.metadata.clone()).unwrap_or_default(),
                etag: side.map(|s| s.md5),
            }))
        })
        .await
    }

    pub(super) async fn get(&self, key: &str) -> Result<Vec<u8>, ArchiveError> {
        let path = self.path(key)?;
        let key = key.to_string();
        blocking(move || match std::fs::read(&path) {
            Ok(b) => Ok(b),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Err(ArchiveError::NotFound(key)),
            Err(e) => Err(io(&path)(e)),
        })
        .await
    }

    pub(super) async fn read_range(
        &self,
        key: &str,
        start: u64,
        len: u64,
    ) -> Result<super::RangeReader, ArchiveError> {
        use tokio::io::{AsyncReadExt, AsyncSeekExt};
        let path = self.path(key)?;
        let mut f = match tokio::fs::File::open(&path).await {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(ArchiveError::NotFound(key.to_string()));
            }
            Err(e) => return Err(io(&path)(e)),
        };
        f.seek(std::io::SeekFrom::Start(start)).await.map_err(io(&path))?;
        Ok(Box::pin(f.take(len)))
    }

    pub(super) async fn list(&self, prefix: &str) -> Result<Vec<String>, ArchiveError> {
        let root = self.root.clone();
        let prefix = prefix.to_string();
        blocking(move || {
            let mut keys = Vec::new();
            if root.is_dir() {
                walk(&root, &root, &mut keys)?;
            }
            keys.retain(|k| k.starts_with(&prefix));
            Ok(keys)
        })
        .await
    }

    pub(super) async fn set_legal_hold(&self, key: &str, on: bool) -> Result<(), ArchiveError> {
        let path = self.path(key)?;
        let key = key.to_string();
        blocking(move || {
            if !path.is_file() {
                return Err(ArchiveError::NotFound(key));
            }
            let mut side =
                read_sidecar(&path)?.ok_or_else(|| ArchiveError::NotFound(format!("{key}{SIDECAR}")))?;
            side.legal_hold = on;
            write_sidecar(&path, &side)
        })
        .await
    }
}

fn md5_hex(body: &[u8]) -> String {
    use md5::Digest;
    hex::encode(md5::Md5::digest(body))
}

fn sidecar_path(path: &Path) -> PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(SIDECAR);
    PathBuf::from(s)
}

fn read_sidecar(path: &Path) -> Result<Option<Sidecar>, ArchiveError> {
    let side = sidecar_path(path);
    match std::fs::read(&side) {
        Ok(b) => serde_json::from_slice(&b).map(Some).map_err(|e| ArchiveError::Io {
            path: side.display().to_string(),
            source: std::io::Error::new(std::io::ErrorKind::InvalidData, e),
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(io(&side)(e)),
    }
}

/// Writes `bytes` to a fresh temporary file beside `path`, fsynced and 0444.
fn temp_file(path: &Path, bytes: &[u8]) -> Result<PathBuf, ArchiveError> {
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).map_err(io(dir))?;
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let tmp = dir.join(format!(".{name}.tmp-{}", uuid::Uuid::new_v4()));
    let mut f = std::fs::OpenOptions::new().write(true).create_new(true).open(&tmp).map_err(io(&tmp))?;
    f.write_all(bytes).map_err(io(&tmp))?;
    f.sync_all().map_err(io(&tmp))?;
    drop(f);
    std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o444)).map_err(io(&tmp))?;
    Ok(tmp)
}

fn write_sidecar(path: &Path, side: &Sidecar) -> Result<(), ArchiveError> {
    let target = sidecar_path(path);
    let mut json = serde_json::to_vec_pretty(side).expect("a sidecar always serialises");
    json.push(b'\n');
    let tmp = temp_file(&target, &json)?;
    std::fs::rename(&tmp, &target).map_err(io(&target))?;
    sync_dir(&target);
    Ok(())
}

fn sync_dir(path: &Path) {
    if let Some(dir) = path.parent()
        && let Ok(d) = std::fs::File::open(dir)
    {
        let _ = d.sync_all();
    }
}

/// Where a local PUT's bytes come from.
enum Source {
    Bytes(Vec<u8>),
    File { path: PathBuf, len: u64, md5: [u8; 16] },
}

/// Copies `src` into a new read-only temporary file beside `path`,
/// hashing as it goes; refuses (and removes the copy) when the bytes are
/// not the ones announced — as an S3 store refuses a bad Content-MD5.
fn temp_copy(
    key: &str,
    path: &Path,
    src: &Path,
    len: u64,
    md5: [u8; 16],
    sha256_hex: &str,
) -> Result<(PathBuf, String), ArchiveError> {
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).map_err(io(dir))?;
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let tmp = dir.join(format!(".{name}.tmp-{}", uuid::Uuid::new_v4()));
    let copy = || -> Result<super::FileDigests, ArchiveError> {
        let mut from = std::fs::File::open(src).map_err(io(src))?;
        let mut to = std::fs::OpenOptions::new().write(true).create_new(true).open(&tmp).map_err(io(&tmp))?;
        // a read or a write error of the copy, named by the file copied
        let d = super::digest_stream(&mut from, |chunk| to.write_all(chunk)).map_err(io(src))?;
        to.sync_all().map_err(io(&tmp))?;
        Ok(d)
    };
    let got = copy();
    match got {
        Ok(d) if d.md5 == md5 && d.sha256_hex == sha256_hex && d.len == len => {
            std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o444)).map_err(io(&tmp))?;
            Ok((tmp, hex::encode(d.md5)))
        }
        other => {
            let _ = std::fs::remove_file(&tmp);
            let d = other?;
            Err(ArchiveError::Checksum(format!(
                "{key}: the file changed since it was hashed ({} bytes hashing to {})",
                d.len, d.sha256_hex
            )))
        }
    }
}

fn put_blocking(key: &str, path: &Path, source: Source, mut side: Sidecar) -> Result<(), ArchiveError> {
    if !path.exists() {
        let tmp = match &source {
            Source::Bytes(body) => {
                side.md5 = md5_hex(body);
                temp_file(path, body)?
            }
            Source::File { path: src, len, md5 } => {
                let (tmp, md5) = temp_copy(key, path, src, *len, *md5, &side.sha256)?;
                side.md5 = md5;
                tmp
            }
        };
        // link, not rename: never replaces an object another writer made meanwhile
        let linked = std::fs::hard_link(&tmp, path);
        let _ = std::fs::remove_file(&tmp);
        match linked {
            Ok(()) => {
                sync_dir(path);
                return write_sidecar(path, &side);
            }
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(io(path)(e)),
        }
    }
    // the key exists: the same bytes are a no-op, others are refused (WORM)
    let existing = std::fs::read(path).map_err(io(path))?;
    if sha256_hex(&existing) != side.sha256 {
        return Err(ArchiveError::Exists(key.to_string()));
    }
    side.md5 = md5_hex(&existing);
    match read_sidecar(path)? {
        Some(old) if old.retain_until >= side.retain_until && old.metadata == side.metadata => Ok(()),
        Some(old) => {
            // retention may be extended, never shortened; metadata stays as first written
            side.retain_until = side.retain_until.max(old.retain_until);
            side.metadata = old.metadata;
            side.legal_hold = old.legal_hold;
            write_sidecar(path, &side)
        }
        None => write_sidecar(path, &side),
    }
}

fn walk(root: &Path, dir: &Path, keys: &mut Vec<String>) -> Result<(), ArchiveError> {
    for entry in std::fs::read_dir(dir).map_err(io(dir))? {
        let entry = entry.map_err(io(dir))?;
        let path = entry.path();
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.starts_with('.') {
            continue;
        }
        let ft = entry.file_type().map_err(io(&path))?;
        if ft.is_dir() {
            walk(root, &path, keys)?;
        } else if ft.is_file()
            && !name.ends_with(SIDECAR)
            && let Ok(rel) = path.strip_prefix(root)
        {
            let key: Vec<String> =
                rel.components().map(|c| c.as_os_str().to_string_lossy().into_owned()).collect();
            keys.push(key.join("/"));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::super::Archive;
    use super::*;

    fn meta() -> BTreeMap<String, String> {
        BTreeMap::from([("call-id".to_string(), "c1".to_string()), ("sha256".to_string(), "x".to_string())])
    }

    fn put<'a>(key: &'a str, body: &'a [u8], sha: &'a str, m: &'a BTreeMap<String, String>) -> PutObject<'a> {
        PutObject {
            key,
            body: Body::Bytes(body),
            content_type: "audio/wav",
            sha256_hex: sha,
            metadata: m,
            retain_until: Utc.with_ymd_and_hms(2041, 11, 27, 0, 0, 0).unwrap(),
        }
    }

    // invariant E3: a streamed file is stored only as the bytes announced
    #[tokio::test]
    async fn file_bodies_are_copied_checked_and_refused_when_changed() {
        let dir = tempfile::tempdir().unwrap();
        let a = Archive::Local(LocalArchive::new(dir.path().join("archive")));
        a.init().await.unwrap();
        let m = meta();
        let src = dir.path().join("call.wav");
        let body: Vec<u8> = (0..700_000u32).map(|i| (i % 251) as u8).collect(); // > 2 copy buffers
        std::fs::write(&src, &body).unwrap();
        let d = crate::archive::file_digests(&src).unwrap();
        assert_eq!(d.sha256_hex, sha256_hex(&body));
        assert_eq!(d.len, body.len() as u64);
        let obj = |key: &'static str, d: &crate::archive::FileDigests| PutObject {
            key,
            body: Body::File { path: &src, len: d.len, md5: d.md5 },
            content_type: "audio/wav",
            sha256_hex: "",
            metadata: &m,
            retain_until: Utc.with_ymd_and_hms(2041, 11, 27, 0, 0, 0).unwrap(),
        };
        let key = "recordings/2026/11/27/f.wav";
        a.put(&PutObject { sha256_hex: &d.sha256_hex, ..obj(key, &d) }).await.unwrap();
        assert_eq!(a.get(key).await.unwrap(), body);
        let info = a.head(key).await.unwrap().unwrap();
        assert_eq!(info.size, body.len() as u64);
        // the file changes after it was hashed: refused, nothing stored
        std::fs::write(&src, b"RIFF....EVIL").unwrap();
        let other = "recordings/2026/11/27/g.wav";
        let r = a.put(&PutObject { sha256_hex: &d.sha256_hex, ..obj(other, &d) }).await;
        assert!(matches!(r, Err(ArchiveError::Checksum(_))), "{r:?}");
        assert!(a.head(other).await.unwrap().is_none());
        let left: Vec<_> = std::fs::read_dir(dir.path().join("archive/recordings/2026/11/27"))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.contains(".tmp-"))
            .collect();
        assert!(left.is_empty(), "temporary copies left: {left:?}");
    }

    // invariant E3, E5
    #[tokio::test]
    async fn local_backend_is_write_once() {
        let dir = tempfile::tempdir().unwrap();
        let a = Archive::Local(LocalArchive::new(dir.path().join("archive")));
        a.check().await.unwrap(); // creates the directory
        a.init().await.unwrap();
        assert!(a.describe().starts_with("local "));

        let m = meta();
        let body = b"RIFF....WAVE".to_vec();
        let sha = sha256_hex(&body);
        let key = "recordings/2026/11/27/a.wav";
        assert_eq!(a.put(&put(key, &body, &sha, &m)).await.unwrap(), PutResult { version_id: None });
        // identical bytes again: no-op
        a.put(&put(key, &body, &sha, &m)).await.unwrap();
        // other bytes: refused
        let other = b"RIFF....EVIL".to_vec();
        let osha = sha256_hex(&other);
        assert!(matches!(a.put(&put(key, &other, &osha, &m)).await, Err(ArchiveError::Exists(_))));
        // a body that does not hash to what the caller says: refused before writing
        assert!(matches!(
            a.put(&put("recordings/x.wav", &other, &sha, &m)).await,
            Err(ArchiveError::Checksum(_))
        ));

        let info = a.head(key).await.unwrap().unwrap();
        assert_eq!(info.size, body.len() as u64);
        assert_eq!(info.lock_mode.as_deref(), Some("COMPLIANCE"));
        assert_eq!(info.retain_until, Some(Utc.with_ymd_and_hms(2041, 11, 27, 0, 0, 0).unwrap()));
        assert_eq!(info.metadata, m);
        assert!(!info.legal_hold);
        assert_eq!(a.get(key).await.unwrap(), body);
        assert!(a.head("recordings/none.wav").await.unwrap().is_none());
        assert!(matches!(a.get("recordings/none.wav").await, Err(ArchiveError::NotFound(_))));

        let file = dir.path().join("archive").join(key);
        assert_eq!(std::fs::metadata(&file).unwrap().permissions().mode() & 0o777, 0o444);

        a.set_legal_hold(key, None, true).await.unwrap();
        assert!(a.head(key).await.unwrap().unwrap().legal_hold);
        a.set_legal_hold(key, None, false).await.unwrap();
        assert!(!a.head(key).await.unwrap().unwrap().legal_hold);

        let j = b"{}".to_vec();
        let jsha = sha256_hex(&j);
        a.put(&put("recordings/2026/11/27/a.json", &j, &jsha, &m)).await.unwrap();
        a.put(&put("recordings/2026/11/28/b.json", &j, &jsha, &m)).await.unwrap();
        assert_eq!(
            a.list("recordings/2026/11/27/").await.unwrap(),
            vec!["recordings/2026/11/27/a.json", "recordings/2026/11/27/a.wav"]
        );
        assert_eq!(a.list("recordings/").await.unwrap().len(), 3);
        assert!(matches!(a.head("../etc/passwd").await, Err(ArchiveError::Config(_))));
    }
}
