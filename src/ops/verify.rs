//! Verification: proves the evidence (E3–E6). `huifang verify [--since
//! DATE] [--deep]` prints one line per finding; `GET /api/v1/verify`
//! (compliance) answers them as JSON. The kinds ([`Kind`]):
//! - `unrecorded`: an answered (or `completed`) call without a sealed or
//!   interrupted recording (E1, E3);
//! - `not-archived`: a final recording without an archived copy;
//! - `spool-mismatch`: a spooled file (of a recording not archived yet; with
//!   `--deep` also of an archived one still in the spool) no longer hashes
//!   to the SHA-256 sealed in the database;
//! - `spool-missing`: a recording not archived yet whose spooled file — its
//!   only copy — is gone;
//! - `orphan-row`: the database says the recording is archived, but the
//!   archive has no object under its key and version (a missing object);
//! - `object-mismatch`: the object's size, `sha256` metadata, lock mode
//!   (S3: COMPLIANCE), retain-until or identifying metadata differ from
//!   the database, or its manifest is missing; with `--deep` the object is
//!   downloaded and re-hashed;
//! - `object-shadowed` (S3): the recorded version is intact, but the key's
//!   current version is another one or a delete marker (a plain DELETE is
//!   allowed on a locked object; `fetch` still reads the recorded version);
//! - `hold-mismatch`: the legal hold on the WAV or the manifest differs from
//!   the database (an open hold — active or release requested — must hold
//!   both objects; no open hold, neither);
//! - `orphan-manifest`: a manifest in the archive without a recording row;
//! - `orphan-object`: any other object under `recordings/` without a
//!   recording row;
//! - `audit-chain`: the audit log's hash chain is broken (first bad seq).
//!
//! A recording without a call cannot exist (foreign key). Calls still
//! running (no outcome yet) are not checked, only counted in the summary:
//! their recording is legitimately still being written. After a crash,
//! start huifang once (start-up recovery closes them) before verifying.
//!
//! `--since` limits the calls walked (UTC date, inclusive); the audit chain
//! and the orphan objects are always checked in full. Calls and archive
//! keys are checked [`VERIFY_PARALLEL`] at once, the findings still listed
//! in the calls' order (oldest first), then the keys' order.

use std::collections::HashSet;
use std::fmt;

use chrono::{DateTime, Utc};
use futures_util::{StreamExt, stream};
use uuid::Uuid;

use super::OpsError;
use super::access::{Person, Role};
use crate::archive::{Archive, ArchiveError, sha256_hex};
use crate::audit::verify_chain;
use crate::store::{ClientCall, Store, StoreError};

/// Calls (and archive keys) checked at once: each check waits on a few
/// archive and database round trips, so a serial walk of a large archive
/// is bound by latency, not by either side's capacity.
const VERIFY_PARALLEL: usize = 8;

/// What kind of finding (the first word of its line).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    /// An answered call without a final recording.
    Unrecorded,
    /// A final recording not archived.
    NotArchived,
    /// A spooled file that does not hash to its sealed SHA-256.
    SpoolMismatch,
    /// The only copy of a recording (in the spool) is gone.
    SpoolMissing,
    /// A row says archived; the archive has no such object.
    OrphanRow,
    /// The object differs from the database.
    ObjectMismatch,
    /// The recorded version is no longer the key's current one.
    ObjectShadowed,
    /// The objects' legal hold differs from the database.
    HoldMismatch,
    /// A manifest without a recording row.
    OrphanManifest,
    /// Another object without a recording row.
    OrphanObject,
    /// The audit chain is broken.
    AuditChain,
    /// A finished call lacks an audit event it must have (E6).
    AuditMissing,
}

impl Kind {
    /// The name printed.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Unrecorded => "unrecorded",
            Kind::NotArchived => "not-archived",
            Kind::SpoolMismatch => "spool-mismatch",
            Kind::SpoolMissing => "spool-missing",
            Kind::OrphanRow => "orphan-row",
            Kind::ObjectMismatch => "object-mismatch",
            Kind::ObjectShadowed => "object-shadowed",
            Kind::HoldMismatch => "hold-mismatch",
            Kind::OrphanManifest => "orphan-manifest",
            Kind::OrphanObject => "orphan-object",
            Kind::AuditChain => "audit-chain",
            Kind::AuditMissing => "audit-missing",
        }
    }
}

/// One finding: its kind and what was found (ids, keys, hashes; never a
/// phone number).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Finding {
    /// The kind.
    pub kind: Kind,
    /// What was found.
    pub text: String,
}

impl serde::Serialize for Kind {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl fmt::Display for Finding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.kind.as_str(), self.text)
    }
}

/// What [`verify`] found.
#[derive(Debug, Default, serde::Serialize)]
pub struct Report {
    /// Every finding, in the order found.
    pub findings: Vec<Finding>,
    /// Calls without an outcome yet, not checked.
    pub running: usize,
    /// Things to know that are not findings (the local archive is not
    /// write-once storage).
    pub notices: Vec<String>,
}

impl Report {
    fn push(&mut self, kind: Kind, text: String) {
        self.findings.push(Finding { kind, text });
    }
}

/// Checks everything (see the module doc), for `p` (compliance, or the
/// CLI's operator).
pub async fn verify_as(
    store: &Store,
    archive: &Archive,
    p: &Person,
    since: Option<DateTime<Utc>>,
    deep: bool,
) -> Result<Report, OpsError> {
    p.require_any(&[Role::Compliance])?;
    verify(store, archive, since, deep).await
}

/// Checks everything (see the module doc).
pub async fn verify(
    store: &Store,
    archive: &Archive,
    since: Option<DateTime<Utc>>,
    deep: bool,
) -> Result<Report, OpsError> {
    let mut out = Report::default();
    out.notices.extend(archive.notice().map(str::to_string));
    // E6: the audit chain.
    let rows = store.audit_rows(0).await?;
    if let Err(b) = verify_chain(&rows) {
        out.push(Kind::AuditChain, format!("seq {}: {}", b.seq, b.why));
    }
    // E6 per call: the events a finished call must have
    let events: HashSet<(&str, &str)> =
        rows.iter().map(|r| (r.subject.as_str(), r.action.as_str())).collect();
    // E1, E3–E5: every call walked, VERIFY_PARALLEL at once (each check is
    // a few archive round trips; `--deep` downloads the object), findings in
    // the calls' order.
    let calls = store.calls_page(&crate::store::CallQuery { from: since, ..Default::default() }).await?;
    out.running = calls.iter().filter(|c| c.outcome.is_none()).count();
    // (the futures are made first: a stream of closures over borrowed
    // calls is not `Send` for every lifetime, which the web door needs)
    let checks: Vec<_> = calls
        .iter()
        .filter(|c| c.outcome.is_some())
        .map(|c| check_call(store, archive, &events, c, deep))
        .collect();
    let mut checks = stream::iter(checks).buffered(VERIFY_PARALLEL);
    while let Some(found) = checks.next().await {
        out.findings.extend(found?);
    }
    // Orphan objects: in the archive, no row.
    let keys = archive.list("recordings/").await.map_err(at("listing the archive"))?;
    let orphans: Vec<_> = keys.into_iter().map(|key| orphan(store, key)).collect();
    let mut orphans = stream::iter(orphans).buffered(VERIFY_PARALLEL);
    while let Some(found) = orphans.next().await {
        out.findings.extend(found?);
    }
    Ok(out)
}

/// An archive key without a recording row: `orphan-manifest` (a `.json`)
/// or `orphan-object` (anything else).
async fn orphan(store: &Store, key: String) -> Result<Option<Finding>, OpsError> {
    let name = key.rsplit('/').next().unwrap_or(&key);
    let (stem, kind) = match name.strip_suffix(".json") {
        Some(stem) => (stem, Kind::OrphanManifest),
        None => (name.strip_suffix(".wav").unwrap_or(name), Kind::OrphanObject),
    };
    Ok(match Uuid::parse_str(stem) {
        Ok(id) => match store.get_recording(id).await {
            Ok(_) => None,
            Err(StoreError::NotFound { .. }) => {
                Some(Finding { kind, text: format!("{key}: no recording row") })
            }
            Err(e) => return Err(e.into()),
        },
        Err(_) => Some(Finding { kind, text: format!("{key}: not named by a recording id") }),
    })
}

/// One finished call's findings: its audit events (E6), its recording
/// (E1, E3–E5) and, with `deep`, the archived object's content.
async fn check_call(
    store: &Store,
    archive: &Archive,
    events: &HashSet<(&str, &str)>,
    c: &ClientCall,
    deep: bool,
) -> Result<Vec<Finding>, OpsError> {
    let mut out = Report::default();
    let id = c.call_id.to_string();
    let reindexed =
        c.recording_id.is_some_and(|r| events.contains(&(r.to_string().as_str(), "recording.reindexed")));
    let mut must = if reindexed { vec![] } else { vec!["call.placed", "call.ended"] };
    if c.answered_at.is_some() && !reindexed {
        must.push("call.answered");
    }
    for action in must {
        if !events.contains(&(id.as_str(), action)) {
            out.push(Kind::AuditMissing, format!("call {id}: no {action} event"));
        }
    }
    if let Some(rec) = c.recording_id
        && !reindexed
        && matches!(c.state.as_deref(), Some("sealed" | "interrupted"))
        && !events.contains(&(rec.to_string().as_str(), "recording.sealed"))
    {
        out.push(Kind::AuditMissing, format!("recording {rec}: no recording.sealed event"));
    }
    check_recording(store, archive, c, deep, &mut out).await?;
    Ok(out.findings)
}

/// The call's recording: final, archived, the object as the database says.
async fn check_recording(
    store: &Store,
    archive: &Archive,
    c: &ClientCall,
    deep: bool,
    out: &mut Report,
) -> Result<(), OpsError> {
    let final_state = matches!(c.state.as_deref(), Some("sealed" | "interrupted"));
    let answered = c.answered_at.is_some() || c.outcome.as_deref() == Some("completed");
    if answered && !final_state {
        let what = match c.state.as_deref() {
            None => "no recording".to_string(),
            Some(s) => format!("its recording is still {s:?}"),
        };
        out.push(Kind::Unrecorded, format!("call {} was answered but has {what}", c.call_id));
    }
    let Some(rec) = c.recording_id else { return Ok(()) };
    if !final_state {
        return Ok(());
    }
    let record = store.archive_record(rec).await?;
    let Some(a) = record.archived else {
        out.push(
            Kind::NotArchived,
            format!("recording {rec} is {} but not archived", c.state.as_deref().unwrap_or("?")),
        );
        // the spooled file is the only copy: always check it
        check_spool(c, rec, true, out).await;
        return Ok(());
    };
    if deep && record.spool_removed_at.is_none() {
        check_spool(c, rec, false, out).await;
    }
    let version = a.version.as_deref();
    let head = archive.head_version(&a.key, version).await.map_err(at(format!("HEAD {}", a.key)))?;
    let Some(info) = head else {
        out.push(
            Kind::OrphanRow,
            format!(
                "recording {rec} is archived at {}{} in the database, but the archive has no such object",
                a.key,
                version.map(|v| format!(" version {v}")).unwrap_or_default()
            ),
        );
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
    if info.lock_mode.as_deref() != Some("COMPLIANCE") {
        bad.push(format!("lock mode {:?}, not COMPLIANCE", info.lock_mode));
    }
    match info.retain_until {
        Some(t) if t >= a.retain_until => {}
        other => bad.push(format!("retain-until {other:?} before the database's {}", a.retain_until)),
    }
    if deep {
        let bytes = archive.get_version(&a.key, version).await.map_err(at(format!("GET {}", a.key)))?;
        let h = sha256_hex(&bytes);
        if Some(&h) != c.sha256.as_ref() {
            bad.push(format!("content SHA-256 {h} differs from the database"));
        }
    }
    let manifest = archive
        .head_version(&a.manifest_key, a.manifest_version.as_deref())
        .await
        .map_err(at(format!("HEAD {}", a.manifest_key)))?;
    if manifest.is_none() {
        bad.push(format!("manifest {} missing", a.manifest_key));
    }
    if !bad.is_empty() {
        out.push(Kind::ObjectMismatch, format!("recording {rec} ({}): {}", a.key, bad.join("; ")));
    }
    // Legal hold: an open hold holds both objects; none, neither.
    let open = store.open_hold(rec).await?;
    let objects = [("WAV", Some(info.legal_hold)), ("manifest", manifest.as_ref().map(|m| m.legal_hold))];
    for (what, on) in objects {
        match (open.as_ref(), on) {
            (Some(h), Some(false)) => out.push(
                Kind::HoldMismatch,
                format!(
                    "recording {rec}: under legal hold since {} ({}), but its {what} is not",
                    h.set_at, h.state
                ),
            ),
            (None, Some(true)) => out.push(
                Kind::HoldMismatch,
                format!("recording {rec}: its {what} is under legal hold, but the database has no open hold"),
            ),
            _ => {}
        }
    }
    // The recorded version is intact; is it still what the key shows?
    if let Some(v) = version {
        let current = archive.head(&a.key).await.map_err(at(format!("HEAD {}", a.key)))?;
        match current.and_then(|i| i.version_id) {
            Some(cur) if cur == v => {}
            Some(cur) => out.push(
                Kind::ObjectShadowed,
                format!(
                    "recording {rec}: {} now shows version {cur}, not the recorded {v} (which is intact)",
                    a.key
                ),
            ),
            None => out.push(
                Kind::ObjectShadowed,
                format!(
                    "recording {rec}: {} now shows a delete marker; the recorded version {v} is intact",
                    a.key
                ),
            ),
        }
    }
    Ok(())
}

/// An archive failure while verifying, saying where.
fn at(what: impl Into<String>) -> impl FnOnce(ArchiveError) -> OpsError {
    let what = what.into();
    move |e| OpsError::Internal(format!("{what}: {e}"))
}

/// The spooled file of recording `rec` against the database's SHA-256:
/// `spool-mismatch` when it differs, `spool-missing` when the file is gone
/// and `must_exist` (the recording is not archived: it was the only copy).
async fn check_spool(c: &ClientCall, rec: Uuid, must_exist: bool, out: &mut Report) {
    let Some(path) = c.path.as_deref() else { return };
    match tokio::fs::read(path).await {
        Ok(bytes) => {
            let h = sha256_hex(&bytes);
            if Some(&h) != c.sha256.as_ref() {
                out.push(
                    Kind::SpoolMismatch,
                    format!(
                        "recording {rec}: the spooled file {path} hashes to {h}, the database says {}",
                        c.sha256.as_deref().unwrap_or("?")
                    ),
                );
            }
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && !must_exist => {}
        Err(e) => out.push(Kind::SpoolMissing, format!("recording {rec}: the spooled file {path}: {e}")),
    }
}

#[cfg(test)]
mod tests {
    //! One test per finding kind, on SQLite and the local archive in a
    //! temporary directory (`object-shadowed` needs S3 versions: it is
    //! tested against Ceph RGW in `tests/archive/fetch_from_rgw.rs`).

    use std::collections::BTreeMap;
    use std::time::Duration;

    use super::*;
    use crate::archive::local::LocalArchive;
    use crate::archive::uploader::{Uploader, UploaderConfig};
    use crate::archive::{PutObject, recording_key};
    use crate::config::RetentionConfig;
    use crate::store::{NewCall, NewRecording, RecordingState, SealedRecording, SideCounters};

    struct Site {
        dir: tempfile::TempDir,
        url: String,
        store: Store,
        archive: Archive,
    }

    async fn site() -> Site {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("huifang.db").display());
        let store = Store::open(&url).await.unwrap();
        let archive = Archive::Local(LocalArchive::new(dir.path().join("archive")));
        archive.init().await.unwrap();
        std::fs::create_dir_all(dir.path().join("sealed")).unwrap();
        Site { dir, url, store, archive }
    }

    /// What a call got: answered or not, a recording in `state` or none;
    /// the call ends (outcome) unless `running`.
    #[derive(Clone, Copy)]
    struct Call {
        answered: bool,
        recording: Option<RecordingState>,
        running: bool,
    }

    const RECORDED: Call = Call { answered: true, recording: Some(RecordingState::Sealed), running: false };

    impl Site {
        /// A call row and nothing else (no events, no recording).
        async fn bare_call(&self) -> Uuid {
            let id = Uuid::now_v7();
            self.store.insert_call(&NewCall::sample(id, Utc::now())).await.unwrap();
            id
        }

        async fn call(&self, c: Call) -> Uuid {
            let id = self.bare_call().await;
            let s = &self.store;
            // the events a real call writes
            let event = |action| crate::audit::AuditEvent::system(action, id, serde_json::json!({}));
            s.append_audit(&event(crate::audit::AuditAction::CallPlaced)).await.unwrap();
            if let Some(state) = c.recording {
                let path = self.dir.path().join(format!("sealed/{id}.wav"));
                let body = format!("RIFF....WAVEfmt {id}").into_bytes();
                std::fs::write(&path, &body).unwrap();
                let path = path.display().to_string();
                s.insert_recording(&NewRecording {
                    id,
                    call_id: id,
                    path: path.clone(),
                    started_at: Utc::now(),
                })
                .await
                .unwrap();
                if state.is_final() {
                    s.seal_recording(&SealedRecording {
                        id,
                        path,
                        sha256: sha256_hex(&body),
                        bytes: body.len() as u64,
                        duration_ms: 1000,
                        agent: SideCounters::default(),
                        client: SideCounters::default(),
                        state,
                        sealed_at: Utc::now(),
                    })
                    .await
                    .unwrap();
                    s.append_audit(&event(crate::audit::AuditAction::RecordingSealed)).await.unwrap();
                }
            }
            if c.answered {
                s.mark_answered(id, Utc::now()).await.unwrap();
                s.append_audit(&event(crate::audit::AuditAction::CallAnswered)).await.unwrap();
            }
            if !c.running {
                let outcome = if c.answered { "completed" } else { "no-answer" };
                s.finish_call(id, outcome, None, Utc::now()).await.unwrap();
                s.append_audit(&event(crate::audit::AuditAction::CallEnded)).await.unwrap();
            }
            id
        }

        async fn drain(&self) {
            let cfg = UploaderConfig {
                parallel: 2,
                retry_min: Duration::from_secs(1),
                retry_max: Duration::from_secs(1),
                keep_after_upload: Duration::from_secs(3600),
                retention: RetentionConfig::default(),
            };
            let mut up = Uploader::new(self.store.clone(), self.archive.clone(), cfg);
            let r = up.drain(tokio::time::Instant::now() + Duration::from_secs(20)).await.unwrap();
            assert_eq!((r.failures, r.remaining), (0, 0));
        }

        async fn kinds(&self, deep: bool) -> Vec<Kind> {
            let r = verify(&self.store, &self.archive, None, deep).await.unwrap();
            let mut k: Vec<Kind> = r.findings.iter().map(|f| f.kind).collect();
            k.sort_by_key(|k| k.as_str());
            k
        }

        async fn archived(&self, id: Uuid) -> crate::store::Archived {
            self.store.archive_record(id).await.unwrap().archived.unwrap()
        }

        fn file(&self, key: &str) -> std::path::PathBuf {
            self.dir.path().join("archive").join(key)
        }
    }

    #[tokio::test]
    async fn a_clean_site_has_no_findings_and_running_calls_are_only_counted() {
        let s = site().await;
        s.call(RECORDED).await;
        s.call(Call { answered: false, recording: None, running: false }).await;
        s.call(Call { answered: false, recording: Some(RecordingState::Sealed), running: false }).await;
        s.drain().await;
        s.call(Call { answered: true, recording: Some(RecordingState::Recording), running: true }).await;
        let r = verify(&s.store, &s.archive, None, true).await.unwrap();
        assert!(r.findings.is_empty(), "{:?}", r.findings);
        assert_eq!(r.running, 1);
    }

    // invariant E1, E3
    #[tokio::test]
    async fn unrecorded_answered_calls() {
        let s = site().await;
        s.call(Call { answered: true, recording: None, running: false }).await;
        s.call(Call { answered: true, recording: Some(RecordingState::Recording), running: false }).await;
        assert_eq!(s.kinds(false).await, [Kind::Unrecorded, Kind::Unrecorded]);
    }

    // invariant E6: a finished call without its events (written nowhere,
    // or lost after a failed retry) is a finding, never only a log line
    #[tokio::test]
    async fn a_finished_call_without_its_audit_events() {
        let s = site().await;
        s.call(Call { answered: false, recording: None, running: false }).await;
        let id = s.bare_call().await;
        s.store.mark_answered(id, Utc::now()).await.unwrap();
        s.store.finish_call(id, "cancelled", None, Utc::now()).await.unwrap();
        let r = verify(&s.store, &s.archive, None, false).await.unwrap();
        let missing: Vec<String> =
            r.findings.iter().filter(|f| f.kind == Kind::AuditMissing).map(|f| f.text.clone()).collect();
        assert_eq!(
            missing,
            [
                format!("call {id}: no call.placed event"),
                format!("call {id}: no call.ended event"),
                format!("call {id}: no call.answered event")
            ],
        );
    }

    // invariant E3, E4
    #[tokio::test]
    async fn not_archived_with_its_spooled_file_tampered_or_gone() {
        let s = site().await;
        let id = s.call(RECORDED).await;
        assert_eq!(s.kinds(false).await, [Kind::NotArchived]);
        let path = s.store.get_recording(id).await.unwrap().path;
        std::fs::write(&path, b"RIFF....WAVEfmt changed").unwrap();
        assert_eq!(s.kinds(false).await, [Kind::NotArchived, Kind::SpoolMismatch]);
        std::fs::remove_file(&path).unwrap();
        assert_eq!(s.kinds(false).await, [Kind::NotArchived, Kind::SpoolMissing]);
    }

    // invariant E3
    #[tokio::test]
    async fn a_tampered_spooled_copy_of_an_archived_recording_shows_with_deep() {
        let s = site().await;
        let id = s.call(RECORDED).await;
        s.drain().await;
        std::fs::write(s.store.get_recording(id).await.unwrap().path, b"RIFF....WAVEfmt changed").unwrap();
        assert_eq!(s.kinds(false).await, []);
        assert_eq!(s.kinds(true).await, [Kind::SpoolMismatch]);
    }

    // invariant E5
    #[tokio::test]
    async fn orphan_row_when_the_archived_object_is_gone() {
        let s = site().await;
        let id = s.call(RECORDED).await;
        s.drain().await;
        std::fs::remove_file(s.file(&s.archived(id).await.key)).unwrap();
        assert_eq!(s.kinds(false).await, [Kind::OrphanRow]);
    }

    // invariant E3, E5
    #[tokio::test]
    async fn object_mismatch_content_and_missing_manifest() {
        let s = site().await;
        let a = s.call(RECORDED).await;
        let b = s.call(RECORDED).await;
        s.drain().await;
        // same size, other bytes: only a deep verification sees it
        let wav = s.file(&s.archived(a).await.key);
        let mut bytes = std::fs::read(&wav).unwrap();
        bytes[0] ^= 1;
        std::fs::write(&wav, &bytes).unwrap();
        assert_eq!(s.kinds(false).await, []);
        assert_eq!(s.kinds(true).await, [Kind::ObjectMismatch]);
        std::fs::remove_file(s.file(&s.archived(b).await.manifest_key)).unwrap();
        let r = verify(&s.store, &s.archive, None, false).await.unwrap();
        assert_eq!(r.findings.len(), 1);
        assert!(r.findings[0].text.contains("manifest") && r.findings[0].text.contains(&b.to_string()));
    }

    // invariant E5
    #[tokio::test]
    async fn hold_mismatch_either_way() {
        let s = site().await;
        let id = s.call(RECORDED).await;
        s.drain().await;
        let a = s.archived(id).await;
        // held in the database, not in the archive
        s.store.set_hold(id, "alice", "inquiry", Utc::now()).await.unwrap();
        assert_eq!(s.kinds(false).await, [Kind::HoldMismatch, Kind::HoldMismatch]);
        s.archive.set_recording_hold(&a, true).await.unwrap();
        assert_eq!(s.kinds(false).await, []);
        // a release requested still holds
        s.store.release_hold(id, "alice", "closed", Utc::now()).await.unwrap();
        assert_eq!(s.kinds(false).await, []);
        // released in the database, still held in the archive
        s.store.release_hold(id, "bob", "closed", Utc::now()).await.unwrap();
        assert_eq!(s.kinds(false).await, [Kind::HoldMismatch, Kind::HoldMismatch]);
        s.archive.set_recording_hold(&a, false).await.unwrap();
        assert_eq!(s.kinds(false).await, []);
    }

    #[tokio::test]
    async fn orphan_manifest_and_orphan_object() {
        let s = site().await;
        let meta = BTreeMap::new();
        let body = b"{}".to_vec();
        let sha = sha256_hex(&body);
        let stray = recording_key(Utc::now(), Uuid::now_v7());
        for key in [stray.replace(".wav", ".json"), stray, "recordings/notes.txt".to_string()] {
            let put = PutObject {
                key: &key,
                body: crate::archive::Body::Bytes(&body),
                content_type: "application/octet-stream",
                sha256_hex: &sha,
                metadata: &meta,
                retain_until: Utc::now(),
            };
            s.archive.put(&put).await.unwrap();
        }
        assert_eq!(s.kinds(false).await, [Kind::OrphanManifest, Kind::OrphanObject, Kind::OrphanObject]);
    }

    // invariant E6
    #[tokio::test]
    async fn audit_chain_broken() {
        let s = site().await;
        s.call(RECORDED).await;
        s.drain().await; // appends recording.uploaded and recording.verified
        assert_eq!(s.kinds(false).await, []);
        let mut conn = <sqlx::SqliteConnection as sqlx::Connection>::connect(&s.url).await.unwrap();
        for q in [
            "DROP TRIGGER audit_events_never_updated",
            "UPDATE audit_events SET actor = 'mallory' WHERE seq = 1",
        ] {
            sqlx::query(q).execute(&mut conn).await.unwrap();
        }
        let r = verify(&s.store, &s.archive, None, false).await.unwrap();
        assert_eq!(r.findings.iter().map(|f| f.kind).collect::<Vec<_>>(), [Kind::AuditChain]);
        assert!(r.findings[0].to_string().starts_with("audit-chain: seq 1"), "{}", r.findings[0]);
    }
}
