//! `huifang verify [--since DATE] [--deep]`: proves the evidence (E3–E6).
//!
//! Prints one line per finding, then a summary; exits 1 on any finding.
//! Findings:
//! - `unrecorded`: an answered call without a sealed (or interrupted)
//!   recording;
//! - `not-archived`: a final recording without an archived copy;
//! - `spool-mismatch`: a spooled file (of a recording not archived yet; with
//!   `--deep` also of an archived one still in the spool) no longer hashes
//!   to the SHA-256 sealed in the database;
//! - `spool-missing`: a recording not archived yet whose spooled file — its
//!   only copy — is gone;
//! - `object-missing`: the archive has no object under the recorded key and
//!   version;
//! - `object-mismatch`: the object's size, `sha256` metadata, lock mode
//!   (S3: COMPLIANCE), retain-until or identifying metadata differ from
//!   the database; with `--deep` the object is downloaded and re-hashed;
//! - `object-shadowed` (S3): the recorded version is intact, but the key's
//!   current version is another one or a delete marker (a plain DELETE is
//!   allowed on a locked object; `fetch` still reads the recorded version);
//! - `orphan-manifest`: a manifest in the archive without a recording row;
//! - (orphan rows — an archived row whose object is gone — show as
//!   `object-missing`; a recording without a call cannot exist: foreign key);
//! - `audit-chain`: the audit log's hash chain is broken (first bad seq).
//!
//! `--since` limits the calls walked (UTC date, inclusive); the audit chain
//! and the orphan manifests are always checked in full.

use anyhow::Context;
use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::{Exit, VerifyArgs};
use crate::archive::{Archive, sha256_hex};
use crate::audit::verify_chain;
use crate::config::Config;
use crate::store::{ClientCall, Store, StoreError};

/// Runs `huifang verify`.
pub fn run(args: VerifyArgs) -> anyhow::Result<Exit> {
    let cfg = Config::load(&args.config)?;
    super::init_logging(&cfg.log.level);
    let since = args.since.as_deref().map(|d| super::recordings::day_start(d, "--since")).transpose()?;
    let rt = tokio::runtime::Runtime::new().context("starting the async runtime")?;
    rt.block_on(async move {
        let store = Store::open(&cfg.database_url()).await?;
        let archive = Archive::from_config(&cfg)?;
        let findings = verify(&store, &archive, since, args.deep).await;
        store.close().await;
        let findings = findings?;
        for f in &findings {
            println!("{f}");
        }
        if findings.is_empty() {
            println!("verify: OK — no findings");
            Ok(Exit::Ok)
        } else {
            println!("verify: {} finding(s)", findings.len());
            Ok(Exit::Unsuccessful)
        }
    })
}

/// Every finding, one line each (the kind first).
pub async fn verify(
    store: &Store,
    archive: &Archive,
    since: Option<DateTime<Utc>>,
    deep: bool,
) -> anyhow::Result<Vec<String>> {
    let mut out = Vec::new();
    // E6: the audit chain.
    let rows = store.audit_rows(0).await?;
    if let Err(b) = verify_chain(&rows) {
        out.push(format!("audit-chain: seq {}: {}", b.seq, b.why));
    }
    // E3–E5: every call walked.
    let from = since.unwrap_or_else(|| super::recordings::day_start("0001-01-01", "").expect("valid"));
    let to = super::recordings::day_start("9999-12-31", "").expect("valid");
    let calls = store.calls_between(from, to).await?;
    for c in &calls {
        check_call(store, archive, c, deep, &mut out).await?;
    }
    // Orphan manifests: in the archive, no row.
    for key in archive.list("recordings/").await.context("listing the archive")? {
        let Some(stem) = key.strip_suffix(".json").and_then(|k| k.rsplit('/').next()) else { continue };
        match Uuid::parse_str(stem) {
            Ok(id) => match store.get_recording(id).await {
                Ok(_) => {}
                Err(StoreError::NotFound { .. }) => {
                    out.push(format!("orphan-manifest: {key}: no recording row"))
                }
                Err(e) => return Err(e.into()),
            },
            Err(_) => out.push(format!("orphan-manifest: {key}: not named by a recording id")),
        }
    }
    Ok(out)
}

async fn check_call(
    store: &Store,
    archive: &Archive,
    c: &ClientCall,
    deep: bool,
    out: &mut Vec<String>,
) -> anyhow::Result<()> {
    let final_state = matches!(c.state.as_deref(), Some("sealed" | "interrupted"));
    if c.answered_at.is_some() && !final_state {
        out.push(format!("unrecorded: call {} was answered but has no sealed recording", c.call_id));
    }
    let Some(rec) = c.recording_id else { return Ok(()) };
    if !final_state {
        return Ok(());
    }
    let record = store.archive_record(rec).await?;
    let Some(a) = record.archived else {
        out.push(format!(
            "not-archived: recording {rec} is {} but not archived",
            c.state.as_deref().unwrap_or("?")
        ));
        // the spooled file is the only copy: always check it
        check_spool(c, rec, true, out).await;
        return Ok(());
    };
    if deep && record.spool_removed_at.is_none() {
        check_spool(c, rec, false, out).await;
    }
    let version = a.version.as_deref();
    let head = archive.head_version(&a.key, version).await.with_context(|| format!("HEAD {}", a.key))?;
    let Some(info) = head else {
        out.push(format!(
            "object-missing: recording {rec}: no object {}{}",
            a.key,
            version.map(|v| format!(" version {v}")).unwrap_or_default()
        ));
        return Ok(());
    };
    let mut bad = Vec::new();
    if Some(info.size as i64) != c.bytes {
        bad.push(format!("size {} (database {:?})", info.size, c.bytes));
    }
    if info.metadata.get("sha256") != c.sha256.as_ref() {
        bad.push("sha256 metadata differs".to_string());
    }
    if info.metadata.get("recording-id").map(String::as_str) != Some(rec.to_string().as_str())
        || info.metadata.get("call-id").map(String::as_str) != Some(c.call_id.to_string().as_str())
    {
        bad.push("recording-id/call-id metadata differs".to_string());
    }
    if matches!(archive, Archive::S3(_)) {
        if info.lock_mode.as_deref() != Some("COMPLIANCE") {
            bad.push(format!("lock mode {:?}, not COMPLIANCE", info.lock_mode));
        }
        match info.retain_until {
            Some(t) if t >= a.retain_until => {}
            other => bad.push(format!("retain-until {other:?} before the database's {}", a.retain_until)),
        }
    }
    if deep {
        let bytes = archive.get_version(&a.key, version).await.with_context(|| format!("GET {}", a.key))?;
        let h = sha256_hex(&bytes);
        if Some(&h) != c.sha256.as_ref() {
            bad.push(format!("content SHA-256 {h} differs from the database"));
        }
    }
    let manifest = archive
        .head_version(&a.manifest_key, a.manifest_version.as_deref())
        .await
        .with_context(|| format!("HEAD {}", a.manifest_key))?;
    if manifest.is_none() {
        bad.push(format!("manifest {} missing", a.manifest_key));
    }
    if !bad.is_empty() {
        out.push(format!("object-mismatch: recording {rec} ({}): {}", a.key, bad.join("; ")));
    }
    // The recorded version is intact; is it still what the key shows?
    if let Some(v) = version {
        let current = archive.head(&a.key).await.with_context(|| format!("HEAD {}", a.key))?;
        match current.and_then(|i| i.version_id) {
            Some(cur) if cur == v => {}
            Some(cur) => out.push(format!(
                "object-shadowed: recording {rec}: {} now shows version {cur}, not the recorded {v} \
                 (which is intact)",
                a.key
            )),
            None => out.push(format!(
                "object-shadowed: recording {rec}: {} now shows a delete marker; the recorded version \
                 {v} is intact",
                a.key
            )),
        }
    }
    Ok(())
}

/// The spooled file of recording `rec` against the database's SHA-256:
/// `spool-mismatch` when it differs, `spool-missing` when the file is gone
/// and `must_exist` (the recording is not archived: it was the only copy).
async fn check_spool(c: &ClientCall, rec: Uuid, must_exist: bool, out: &mut Vec<String>) {
    let Some(path) = c.path.as_deref() else { return };
    match tokio::fs::read(path).await {
        Ok(bytes) => {
            let h = sha256_hex(&bytes);
            if Some(&h) != c.sha256.as_ref() {
                out.push(format!(
                    "spool-mismatch: recording {rec}: the spooled file {path} hashes to {h}, \
                     the database says {}",
                    c.sha256.as_deref().unwrap_or("?")
                ));
            }
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && !must_exist => {}
        Err(e) => out.push(format!("spool-missing: recording {rec}: the spooled file {path}: {e}")),
    }
}
