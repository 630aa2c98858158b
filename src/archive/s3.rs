//! The S3 archive: a bucket with Object Lock, through `aws-sdk-s3`.
//!
//! - Every object is one PutObject (never multipart) with
//!   `x-amz-object-lock-mode: COMPLIANCE`, `x-amz-object-lock-retain-until-date`
//!   in `Z` form (the SDK writes smithy `DateTime`s as `…Z`; RGW refuses
//!   `+00:00`), `Content-MD5` (checked by every store; RGW ignores the
//!   SHA-256 header) and `x-amz-checksum-sha256` as a plain header.
//! - Recordings are streamed from their file ([`Body::File`]); the request
//!   is signed with the SHA-256 huifang already has (no second hashing
//!   pass, and never `UNSIGNED-PAYLOAD`).
//! - The client is configured with request checksum calculation "when
//!   required" and response validation "when required": the SDK's default
//!   would add aws-chunked trailers that RGW and moto reject.
//! - Path-style addressing, any region, a custom endpoint.
//!
//! Errors carry the operation and what the store said (status and code),
//! never the credentials.

use std::collections::BTreeMap;

use aws_runtime::auth::PayloadSigningOverride;
use aws_sdk_s3::Client;
use aws_sdk_s3::config::interceptors::BeforeTransmitInterceptorContextMut;
use aws_sdk_s3::config::{
    BehaviorVersion, ConfigBag, Credentials, Intercept, Region, RequestChecksumCalculation,
    ResponseChecksumValidation, RuntimeComponents,
};
use aws_sdk_s3::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_sdk_s3::primitives::{ByteStream, DateTime as SmithyTime, Length};
use aws_sdk_s3::types::{
    BucketVersioningStatus, ObjectLockEnabled, ObjectLockLegalHold, ObjectLockLegalHoldStatus, ObjectLockMode,
};
use base64::Engine;
use chrono::{DateTime, TimeZone, Utc};

use super::{ArchiveError, Body, ObjectInfo, PutObject, PutResult};
use crate::config::S3Config;

/// A bucket with Object Lock (cheap to clone).
#[derive(Clone)]
pub struct S3Archive {
    client: Client,
    bucket: String,
    endpoint: String,
}

impl std::fmt::Debug for S3Archive {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.describe())
    }
}

/// What an SDK error says, for the operator: status, code, message.
fn describe<E: ProvideErrorMetadata + std::error::Error + 'static, R: std::fmt::Debug>(
    e: &SdkError<E, R>,
) -> String {
    match e {
        SdkError::ServiceError(s) => {
            let err = s.err();
            format!(
                "{} {}",
                err.code().unwrap_or("error"),
                err.message().map(str::to_string).unwrap_or_else(|| DisplayErrorContext(err).to_string())
            )
        }
        other => DisplayErrorContext(other).to_string(),
    }
}

/// Whether the error is a connection failure or timeout (the store is down).
fn is_unreachable<E, R>(e: &SdkError<E, R>) -> bool {
    matches!(e, SdkError::DispatchFailure(_) | SdkError::TimeoutError(_))
}

fn s3_err<E: ProvideErrorMetadata + std::error::Error + 'static, R: std::fmt::Debug>(
    op: &'static str,
) -> impl FnOnce(SdkError<E, R>) -> ArchiveError {
    move |e| {
        if is_unreachable(&e) {
            ArchiveError::Unreachable(format!("{op}: {}", describe(&e)))
        } else {
            ArchiveError::S3 { op, message: describe(&e) }
        }
    }
}

fn service_code<E: ProvideErrorMetadata, R>(e: &SdkError<E, R>) -> Option<&str> {
    match e {
        SdkError::ServiceError(s) => s.err().code(),
        _ => None,
    }
}

fn smithy_time(t: DateTime<Utc>) -> SmithyTime {
    SmithyTime::from_secs(t.timestamp())
}

fn chrono_time(t: &SmithyTime) -> Option<DateTime<Utc>> {
    Utc.timestamp_opt(t.secs(), t.subsec_nanos()).single()
}

impl S3Archive {
    /// The client for `[archive.s3]`: credentials from the config or the
    /// standard AWS environment variables.
    pub fn from_config(cfg: &S3Config) -> Result<S3Archive, ArchiveError> {
        let key_id = match &cfg.access_key_id {
            Some(k) => k.clone(),
            None => std::env::var("AWS_ACCESS_KEY_ID").map_err(|_| {
                ArchiveError::Config(
                    "archive.s3.access_key_id is not set and neither is AWS_ACCESS_KEY_ID".into(),
                )
            })?,
        };
        let secret_var = cfg.secret_access_key_env.as_deref().unwrap_or("AWS_SECRET_ACCESS_KEY");
        let secret = std::env::var(secret_var)
            .map_err(|_| ArchiveError::Config(format!("the secret key variable {secret_var} is not set")))?;
        let session = std::env::var("AWS_SESSION_TOKEN").ok().filter(|_| cfg.access_key_id.is_none());
        let creds = Credentials::new(key_id, secret, session, None, "huifang-config");
        let conf = aws_sdk_s3::Config::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new(cfg.region.clone()))
            .endpoint_url(cfg.endpoint.clone())
            .force_path_style(cfg.path_style)
            .credentials_provider(creds)
            .request_checksum_calculation(RequestChecksumCalculation::WhenRequired)
            .response_checksum_validation(ResponseChecksumValidation::WhenRequired)
            .build();
        Ok(S3Archive {
            client: Client::from_conf(conf),
            bucket: cfg.bucket.clone(),
            endpoint: cfg.endpoint.trim_end_matches('/').to_string(),
        })
    }

    /// `"s3 http://host:port/bucket"`.
    pub fn describe(&self) -> String {
        format!("s3 {}/{}", self.endpoint, self.bucket)
    }

    pub(super) async fn check(&self) -> Result<(), ArchiveError> {
        let b = &self.bucket;
        match self.client.head_bucket().bucket(b).send().await {
            Ok(_) => {}
            Err(e) if is_unreachable(&e) => return Err(s3_err("HeadBucket")(e)),
            Err(e) => {
                let status = e.raw_response().map(|r| r.status().as_u16());
                return Err(if status == Some(404) {
                    ArchiveError::Unreachable(format!(
                        "bucket {b} does not exist at {}; create it with `huifang archive init`",
                        self.endpoint
                    ))
                } else {
                    s3_err("HeadBucket")(e)
                });
            }
        }
        let lock = match self.client.get_object_lock_configuration().bucket(b).send().await {
            Ok(out) => out
                .object_lock_configuration()
                .and_then(|c| c.object_lock_enabled())
                .is_some_and(|e| *e == ObjectLockEnabled::Enabled),
            Err(e) if service_code(&e) == Some("ObjectLockConfigurationNotFoundError") => false,
            Err(e) => {
                let status = e.raw_response().map(|r| r.status().as_u16());
                if status == Some(404) {
                    false
                } else {
                    return Err(s3_err("GetObjectLockConfiguration")(e));
                }
            }
        };
        if !lock {
            return Err(ArchiveError::NotLocked(format!(
                "bucket {b} has no Object Lock: recordings could be deleted. Object Lock can only be \
                 enabled when a bucket is created: create a new bucket with `huifang archive init` \
                 (archive.s3.bucket names it)"
            )));
        }
        let status = match self.client.get_bucket_versioning().bucket(b).send().await {
            Ok(v) => v.status().map(|s| s.as_str().to_string()),
            // moto 5.2 answers with a `GetBucketVersioningResponse` root, which the
            // SDK cannot parse: read the status from the raw body instead
            Err(e) if e.raw_response().is_some_and(|r| r.status().is_success()) => {
                let body = e.raw_response().and_then(|r| r.body().bytes()).unwrap_or_default();
                let text = String::from_utf8_lossy(body);
                text.split_once("<Status>")
                    .and_then(|(_, rest)| rest.split_once("</Status>"))
                    .map(|(status, _)| status.to_string())
            }
            Err(e) => return Err(s3_err("GetBucketVersioning")(e)),
        };
        if status.as_deref() != Some(BucketVersioningStatus::Enabled.as_str()) {
            return Err(ArchiveError::NotLocked(format!(
                "bucket {b} does not have versioning Enabled (status {status:?}); Object Lock needs it: \
                 re-enable it, or create a new bucket with `huifang archive init`"
            )));
        }
        Ok(())
    }

    pub(super) async fn init(&self) -> Result<(), ArchiveError> {
        match self
            .client
            .create_bucket()
            .bucket(&self.bucket)
            .object_lock_enabled_for_bucket(true)
            .send()
            .await
        {
            Ok(_) => Ok(()),
            Err(e) if service_code(&e) == Some("BucketAlreadyOwnedByYou") => Ok(()),
            Err(e) => Err(s3_err("CreateBucket")(e)),
        }
    }

    pub(super) async fn put(&self, obj: &PutObject<'_>) -> Result<PutResult, ArchiveError> {
        use md5::Digest;
        let b64 = base64::engine::general_purpose::STANDARD;
        let sha = hex::decode(obj.sha256_hex)
            .ok()
            .filter(|h| h.len() == 32)
            .ok_or_else(|| ArchiveError::Checksum(format!("{}: sha256 is not 64 hex digits", obj.key)))?;
        let (body, md5): (ByteStream, [u8; 16]) = match obj.body {
            Body::Bytes(bytes) => (ByteStream::from(bytes.to_vec()), md5::Md5::digest(bytes).into()),
            // streamed from the file (re-opened by the SDK on a retry)
            Body::File { path, len, md5 } => {
                let stream =
                    ByteStream::read_from().path(path).length(Length::Exact(len)).build().await.map_err(
                        |e| ArchiveError::Io {
                            path: path.display().to_string(),
                            source: std::io::Error::other(e),
                        },
                    )?;
                (stream, md5)
            }
        };
        let mut req = self
            .client
            .put_object()
            .bucket(&self.bucket)
            .key(obj.key)
            .content_type(obj.content_type)
            .content_length(obj.body.len() as i64)
            .content_md5(b64.encode(md5))
            .checksum_sha256(b64.encode(&sha))
            .object_lock_mode(ObjectLockMode::Compliance)
            .object_lock_retain_until_date(smithy_time(obj.retain_until))
            .body(body);
        for (k, v) in obj.metadata {
            req = req.metadata(k, v);
        }
        let out = req
            .customize()
            .interceptor(PrecomputedPayload(obj.sha256_hex.to_string()))
            .send()
            .await
            .map_err(s3_err("PutObject"))?;
        Ok(PutResult { version_id: out.version_id().map(str::to_string) })
    }

    pub(super) async fn head(
        &self,
        key: &str,
        version: Option<&str>,
    ) -> Result<Option<ObjectInfo>, ArchiveError> {
        let req = self
            .client
            .head_object()
            .bucket(&self.bucket)
            .key(key)
            .set_version_id(version.map(str::to_string));
        let out = match req.send().await {
            Ok(out) => out,
            Err(e) if matches!(&e, SdkError::ServiceError(s) if s.err().is_not_found()) => return Ok(None),
            // 404: no such key or version; 405: the version is a delete marker
            Err(e) if e.raw_response().is_some_and(|r| matches!(r.status().as_u16(), 404 | 405)) => {
                return Ok(None);
            }
            Err(e) => return Err(s3_err("HeadObject")(e)),
        };
        let metadata: BTreeMap<String, String> = out
            .metadata()
            .map(|m| m.iter().map(|(k, v)| (k.to_ascii_lowercase(), v.clone())).collect())
            .unwrap_or_default();
        Ok(Some(ObjectInfo {
            key: key.to_string(),
            version_id: out.version_id().map(str::to_string),
            size: out.content_length().and_then(|n| u64::try_from(n).ok()).unwrap_or(0),
            lock_mode: out.object_lock_mode().map(|m| m.as_str().to_string()),
            retain_until: out.object_lock_retain_until_date().and_then(chrono_time),
            legal_hold: out.object_lock_legal_hold_status() == Some(&ObjectLockLegalHoldStatus::On),
            metadata,
            etag: out.e_tag().map(|e| e.trim_matches('"').to_string()),
        }))
    }

    pub(super) async fn get(&self, key: &str, version: Option<&str>) -> Result<Vec<u8>, ArchiveError> {
        let req = self
            .client
            .get_object()
            .bucket(&self.bucket)
            .key(key)
            .set_version_id(version.map(str::to_string));
        let out = match req.send().await {
            Ok(out) => out,
            Err(e) if matches!(&e, SdkError::ServiceError(s) if s.err().is_no_such_key()) => {
                return Err(ArchiveError::NotFound(key.to_string()));
            }
            Err(e) if e.raw_response().is_some_and(|r| matches!(r.status().as_u16(), 404 | 405)) => {
                return Err(ArchiveError::NotFound(match version {
                    Some(v) => format!("{key} version {v}"),
                    None => key.to_string(),
                }));
            }
            Err(e) => return Err(s3_err("GetObject")(e)),
        };
        let body = out
            .body
            .collect()
            .await
            .map_err(|e| ArchiveError::S3 { op: "GetObject", message: format!("reading the body: {e}") })?;
        Ok(body.into_bytes().to_vec())
    }

    pub(super) async fn read_range(
        &self,
        key: &str,
        version: Option<&str>,
        start: u64,
        len: u64,
    ) -> Result<super::RangeReader, ArchiveError> {
        if len == 0 {
            return Ok(Box::pin(tokio::io::empty()));
        }
        let req = self
            .client
            .get_object()
            .bucket(&self.bucket)
            .key(key)
            .set_version_id(version.map(str::to_string))
            .range(format!("bytes={start}-{}", start + len - 1));
        let out = match req.send().await {
            Ok(out) => out,
            Err(e) if matches!(&e, SdkError::ServiceError(s) if s.err().is_no_such_key()) => {
                return Err(ArchiveError::NotFound(key.to_string()));
            }
            Err(e) if e.raw_response().is_some_and(|r| matches!(r.status().as_u16(), 404 | 405)) => {
                return Err(ArchiveError::NotFound(key.to_string()));
            }
            Err(e) => return Err(s3_err("GetObject")(e)),
        };
        Ok(Box::pin(out.body.into_async_read()))
    }

    pub(super) async fn list(&self, prefix: &str) -> Result<Vec<String>, ArchiveError> {
        let mut pages =
            self.client.list_objects_v2().bucket(&self.bucket).prefix(prefix).into_paginator().send();
        let mut keys = Vec::new();
        while let Some(page) = pages.next().await {
            let page = page.map_err(s3_err("ListObjectsV2"))?;
            keys.extend(page.contents().iter().filter_map(|o| o.key().map(str::to_string)));
        }
        Ok(keys)
    }

    pub(super) async fn set_legal_hold(
        &self,
        key: &str,
        version: Option<&str>,
        on: bool,
    ) -> Result<(), ArchiveError> {
        let status = if on { ObjectLockLegalHoldStatus::On } else { ObjectLockLegalHoldStatus::Off };
        // PutObjectLegalHold requires a checksum: the SDK adds one as a plain header
        // (a small, non-streaming body), which every store accepts.
        match self
            .client
            .put_object_legal_hold()
            .bucket(&self.bucket)
            .key(key)
            .set_version_id(version.map(str::to_string))
            .legal_hold(ObjectLockLegalHold::builder().status(status).build())
            .send()
            .await
        {
            Ok(_) => Ok(()),
            Err(e) if matches!(service_code(&e), Some("NoSuchKey" | "NoSuchVersion")) => {
                Err(ArchiveError::NotFound(key.to_string()))
            }
            Err(e) => Err(s3_err("PutObjectLegalHold")(e)),
        }
    }
}

/// Signs a PUT with the payload's SHA-256 we already know
/// (`x-amz-content-sha256`), instead of the SDK hashing an in-memory body
/// once more or sending a streamed one as `UNSIGNED-PAYLOAD`: the store
/// checks the bytes it receives against the signed hash. The SDK has the
/// setting ([`PayloadSigningOverride::Precomputed`]) but exposes only the
/// unsigned variant on its operations, hence this small interceptor.
#[derive(Debug)]
struct PrecomputedPayload(String);

impl Intercept for PrecomputedPayload {
    fn name(&self) -> &'static str {
        "huifang::PrecomputedPayload"
    }

    fn modify_before_signing(
        &self,
        _context: &mut BeforeTransmitInterceptorContextMut<'_>,
        _runtime_components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
        cfg.interceptor_state().store_put(PayloadSigningOverride::Precomputed(self.0.clone()));
        Ok(())
    }
}
