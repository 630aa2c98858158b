//! The real S3 peer: Ceph RADOS Gateway on 127.0.0.1, which enforces Object
//! Lock (COMPLIANCE) like AWS S3. Started by `scripts/peers/ceph-rgw.sh start`
//! (run by `scripts/test.sh`, which exports `HUIFANG_S3_ENDPOINT`,
//! `HUIFANG_S3_ACCESS_KEY` and `HUIFANG_S3_SECRET_KEY`). Without those
//! variables the endpoint is `http://127.0.0.1:${HUIFANG_RGW_PORT:-7480}` and
//! the keys come from `tests/peers/rgw-user.env` (a plain S3 user, never the
//! cluster admin).
//!
//! RGW's gaps (shared PEERS.md): multipart uploads ignore the lock headers,
//! `x-amz-checksum-*` is not verified (send `Content-MD5`), a retain-until
//! written as `+00:00` is refused (the SDK sends `Z`).
//!
//! The SDK client is made per call on purpose: each `#[tokio::test]` has its
//! own runtime, and a client's connection pool must not outlive it.

use std::io::{Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aws_sdk_s3::config::http::HttpResponse;
use aws_sdk_s3::config::{BehaviorVersion, Credentials, Region, RequestChecksumCalculation};
use aws_sdk_s3::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_s3::operation::head_object::HeadObjectOutput;

use super::{peer_missing, repo_root};

const RGW_START: &str = "scripts/peers/ceph-rgw.sh start";

/// The running test RGW and the plain S3 user's keys.
#[derive(Debug, Clone)]
pub struct Rgw {
    /// `http://127.0.0.1:PORT`
    pub endpoint: String,
    pub access_key: String,
    pub secret_key: String,
}

fn env_nonempty(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

/// `KEY=value` lines of `tests/peers/rgw-user.env`.
fn fixture_value(key: &str) -> Option<String> {
    let path = repo_root().join("tests").join("peers").join("rgw-user.env");
    let text = std::fs::read_to_string(&path).ok()?;
    text.lines()
        .filter(|l| !l.trim_start().starts_with('#'))
        .filter_map(|l| l.split_once('='))
        .find(|(k, _)| k.trim() == key)
        .map(|(_, v)| v.trim().to_string())
}

/// Does an HTTP server answer `GET /` at `endpoint` (`http://host:port`)?
fn answers_http(endpoint: &str) -> bool {
    let Some(hostport) = endpoint.strip_prefix("http://") else {
        return false;
    };
    let hostport = hostport.trim_end_matches('/');
    let Some(addr) = hostport.to_socket_addrs().ok().and_then(|mut a| a.next()) else {
        return false;
    };
    let Ok(mut s) = TcpStream::connect_timeout(&addr, Duration::from_secs(2)) else {
        return false;
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(3)));
    let req = format!("GET / HTTP/1.1\r\nHost: {hostport}\r\nConnection: close\r\n\r\n");
    if s.write_all(req.as_bytes()).is_err() {
        return false;
    }
    let mut buf = [0u8; 12];
    s.read_exact(&mut buf).is_ok() && buf.starts_with(b"HTTP/1.1 ")
}

/// The test RGW, after checking it answers HTTP. Fails the test naming the
/// start script otherwise.
pub fn rgw() -> Rgw {
    let endpoint = env_nonempty("HUIFANG_S3_ENDPOINT").unwrap_or_else(|| {
        let port = env_nonempty("HUIFANG_RGW_PORT").unwrap_or_else(|| "7480".into());
        format!("http://127.0.0.1:{port}")
    });
    let access_key = env_nonempty("HUIFANG_S3_ACCESS_KEY")
        .or_else(|| fixture_value("HUIFANG_RGW_ACCESS_KEY"))
        .expect("no S3 access key: set HUIFANG_S3_ACCESS_KEY or keep tests/peers/rgw-user.env");
    let secret_key = env_nonempty("HUIFANG_S3_SECRET_KEY")
        .or_else(|| fixture_value("HUIFANG_RGW_SECRET_KEY"))
        .expect("no S3 secret key: set HUIFANG_S3_SECRET_KEY or keep tests/peers/rgw-user.env");
    if !answers_http(&endpoint) {
        peer_missing(&format!("Ceph RGW ({endpoint})"), RGW_START);
    }
    Rgw { endpoint, access_key, secret_key }
}

/// A bucket name nobody used before: `<prefix>-<pid>-<time>-<n>`, lowercase,
/// at most 63 characters.
pub fn unique_bucket_name(prefix: &str) -> String {
    static N: AtomicU32 = AtomicU32::new(0);
    let n = N.fetch_add(1, Ordering::Relaxed);
    let nanos = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0);
    let mut p: String = prefix
        .to_ascii_lowercase()
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() || c == '-' { c } else { '-' })
        .collect();
    p.truncate(24);
    let p = p.trim_matches('-');
    let p = if p.is_empty() { "t" } else { p };
    format!("{p}-{}-{:x}-{n}", std::process::id(), nanos % (1u128 << 48))
}

/// `"<status> <code>: <message>"` of a failed S3 call (e.g.
/// `"403 AccessDenied: ..."`), or the debug form of a non-service error.
pub fn describe_err<E>(e: &SdkError<E, HttpResponse>) -> String
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    match e {
        SdkError::ServiceError(se) => format!(
            "{} {}: {}",
            se.raw().status().as_u16(),
            se.err().code().unwrap_or("?"),
            se.err().message().unwrap_or("")
        ),
        other => format!("{other:?}"),
    }
}

impl Rgw {
    /// An S3 client for the test user: path-style, region us-east-1, static
    /// credentials, checksums only when an operation requires them (no
    /// aws-chunked trailers; RGW ignores `x-amz-checksum-*` anyway).
    pub fn client(&self) -> aws_sdk_s3::Client {
        let creds = Credentials::new(&self.access_key, &self.secret_key, None, None, "huifang-tests");
        let conf = aws_sdk_s3::Config::builder()
            .behavior_version(BehaviorVersion::latest())
            .endpoint_url(&self.endpoint)
            .region(Region::new("us-east-1"))
            .credentials_provider(creds)
            .force_path_style(true)
            .request_checksum_calculation(RequestChecksumCalculation::WhenRequired)
            .build();
        aws_sdk_s3::Client::from_conf(conf)
    }

    async fn create_bucket(&self, prefix: &str, lock: bool) -> String {
        let name = unique_bucket_name(prefix);
        let mut req = self.client().create_bucket().bucket(&name);
        if lock {
            req = req.object_lock_enabled_for_bucket(true);
        }
        if let Err(e) = req.send().await {
            panic!("CreateBucket {name} (object lock {lock}) on {}: {}", self.endpoint, describe_err(&e));
        }
        name
    }

    /// A new bucket with Object Lock enabled (so also versioning), unique name.
    pub async fn new_lock_bucket(&self, prefix: &str) -> String {
        self.create_bucket(prefix, true).await
    }

    /// A new bucket without Object Lock, unique name.
    pub async fn new_plain_bucket(&self, prefix: &str) -> String {
        self.create_bucket(prefix, false).await
    }

    /// HeadObject of the current version of `key`.
    pub async fn head(&self, bucket: &str, key: &str) -> Result<HeadObjectOutput, String> {
        self.client().head_object().bucket(bucket).key(key).send().await.map_err(|e| describe_err(&e))
    }

    /// DeleteObject of one version; `Err("403 AccessDenied: ...")` when refused.
    pub async fn try_delete_version(&self, bucket: &str, key: &str, version: &str) -> Result<(), String> {
        self.client()
            .delete_object()
            .bucket(bucket)
            .key(key)
            .version_id(version)
            .send()
            .await
            .map(|_| ())
            .map_err(|e| describe_err(&e))
    }

    /// Every version of every key in `bucket` (all pages): `(key, version
    /// id)`, and the delete markers' keys.
    pub async fn versions(&self, bucket: &str) -> (Vec<(String, String)>, Vec<String>) {
        let c = self.client();
        let (mut versions, mut markers) = (Vec::new(), Vec::new());
        let (mut key_marker, mut version_marker) = (None::<String>, None::<String>);
        loop {
            let out = c
                .list_object_versions()
                .bucket(bucket)
                .set_key_marker(key_marker.clone())
                .set_version_id_marker(version_marker.clone())
                .send()
                .await
                .unwrap_or_else(|e| panic!("ListObjectVersions {bucket}: {}", describe_err(&e)));
            for v in out.versions() {
                versions.push((
                    v.key().unwrap_or_default().to_string(),
                    v.version_id().unwrap_or_default().to_string(),
                ));
            }
            markers.extend(out.delete_markers().iter().map(|m| m.key().unwrap_or_default().to_string()));
            if out.is_truncated() != Some(true) {
                break;
            }
            key_marker = out.next_key_marker().map(str::to_string);
            version_marker = out.next_version_id_marker().map(str::to_string);
        }
        versions.sort();
        (versions, markers)
    }

    /// HeadObject of version `version` of `key` (`None`: the current one).
    pub async fn head_version(
        &self,
        bucket: &str,
        key: &str,
        version: Option<&str>,
    ) -> Result<HeadObjectOutput, String> {
        self.client()
            .head_object()
            .bucket(bucket)
            .key(key)
            .set_version_id(version.map(str::to_string))
            .send()
            .await
            .map_err(|e| describe_err(&e))
    }

    /// A plain PutObject (no lock headers) of `body` at `key`: what someone
    /// with the bucket's credentials could write beside huifang.
    pub async fn put_plain(&self, bucket: &str, key: &str, body: &[u8]) {
        use base64::Engine;
        use md5::Digest;
        let md5 = base64::engine::general_purpose::STANDARD.encode(md5::Md5::digest(body));
        if let Err(e) = self
            .client()
            .put_object()
            .bucket(bucket)
            .key(key)
            .content_md5(md5)
            .body(aws_sdk_s3::primitives::ByteStream::from(body.to_vec()))
            .send()
            .await
        {
            panic!("PutObject {bucket}/{key}: {}", describe_err(&e));
        }
    }

    /// DeleteObject without a version id: on a versioned bucket this adds a
    /// delete marker (allowed even when the current version is locked) and
    /// destroys nothing. Returns the marker's version id.
    pub async fn delete_current(&self, bucket: &str, key: &str) -> String {
        match self.client().delete_object().bucket(bucket).key(key).send().await {
            Ok(out) => {
                assert_eq!(out.delete_marker(), Some(true), "DELETE of {key} made no delete marker");
                out.version_id().unwrap_or_default().to_string()
            }
            Err(e) => panic!("DeleteObject {bucket}/{key}: {}", describe_err(&e)),
        }
    }
}
