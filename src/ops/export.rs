//! Evidence export: everything about one client (optionally a date range)
//! or one call, as a zip an inspector can check offline
//! (`GET /api/v1/clients/{id}/export`, `GET /api/v1/calls/{id}/export`,
//! `huifang export --client ID --out FILE`).
//!
//! ```text
//! huifang-export-C0001-20261207T101500Z/
//!   VERIFY.md                 what the export holds and how to check it
//!   verify.py                 the offline verifier (Python 3, standard library)
//!   export.json               who, when, what; the audit chain's head
//!   client.json               the client's facts and tasks (why each was made)
//!   calls/<id>/recording.wav  the archived version, byte for byte
//!   calls/<id>/manifest.json  the archive's manifest of it
//!   calls/<id>/call.vcon.json one vCon per call (answered or not)
//!   records/<task>.record.json the callback record, its review, follow-up
//!   audit/audit-events.jsonl  the events about these calls and recordings
//!   audit/audit-chain.txt     every link from the first of them to the head
//!   SHA256SUMS                every other file (`sha256sum -c`)
//! ```
//!
//! [`gather`] reads everything but the audio and the chain's links (small)
//! and writes the audit events of the export itself first (one
//! `recording.exported` per recording, one `evidence.exported`), so that
//! they are in it. [`write_zip`] streams the zip to any `Write` on a
//! blocking thread: the WAVs in 256 KiB pieces straight from the archive
//! (a ranged read of the recorded version) or the spool, the links a page at
//! a time — an export of any size holds a few buffers, never a recording.
//! Each file's SHA-256 is computed as it is written; `SHA256SUMS` comes
//! last. [`verify`] is `huifang export verify`: the same checks as
//! `verify.py`.
//!
//! What offline checking proves: every file is as exported (SHA256SUMS);
//! each WAV is the one whose SHA-256 huifang sealed (the `recording.sealed`
//! event), the manifest and the vCon say; each audit event's hash covers its
//! content and its predecessor; the links run unbroken from the first event
//! to the head named in `export.json`. That head can be compared with the
//! live chain (`huifang verify`) or any copy of it kept elsewhere.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::path::PathBuf;

use base64::Engine;
use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use uuid::Uuid;

use super::OpsError;
use super::access::{Person, Role};
use crate::archive::Archive;
use crate::audit::{AuditAction, AuditEvent, AuditRow};
use crate::domain::facts::Client;
use crate::store::{CallQuery, CallRow, ClientCall, Store, TaskFilter};

/// The offline verifier put in every export.
pub const VERIFY_PY: &str = include_str!("export/verify.py");
const VERIFY_MD: &str = include_str!("export/VERIFY.md");

/// What to export.
#[derive(Debug, Clone, Default)]
pub struct Scope {
    /// Everything about this client…
    pub client_id: Option<String>,
    /// …or this one call.
    pub call_id: Option<Uuid>,
    /// Calls from (client exports).
    pub from: Option<DateTime<Utc>>,
    /// Calls before (client exports).
    pub to: Option<DateTime<Utc>>,
}

/// Where a WAV comes from.
#[derive(Debug, Clone)]
enum Audio {
    /// The archive's recorded version.
    Archive { key: String, version: Option<String>, bytes: u64 },
    /// Not archived yet: the sealed file in the spool.
    Spool { path: PathBuf },
}

#[derive(Debug, Clone)]
enum Body {
    Bytes(Vec<u8>),
    Audio(Audio),
    /// The chain's links after `after` up to `head`.
    Links {
        after: i64,
        head: i64,
    },
}

#[derive(Debug, Clone)]
struct Entry {
    path: String,
    body: Body,
}

/// An export ready to be written.
#[derive(Debug, Clone)]
pub struct Evidence {
    /// Its name (the zip's top folder and file name).
    pub name: String,
    /// Recordings in it.
    pub recordings: usize,
    /// Calls in it.
    pub calls: usize,
    entries: Vec<Entry>,
}

/// What was written.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Written {
    /// Files in the zip (SHA256SUMS included).
    pub files: usize,
    /// Bytes of the files, uncompressed.
    pub bytes: u64,
}

fn time(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}

fn pretty(v: &Value) -> Vec<u8> {
    let mut b = serde_json::to_vec_pretty(v).unwrap_or_default();
    b.push(b'\n');
    b
}

fn client_json(c: &Client) -> Value {
    json!({
        "client_id": c.client_id, "name": c.name, "phone": c.phone, "id_number": c.id_number,
        "branch": c.branch, "opened_on": c.opened_on, "introducer_id": c.introducer_id,
        "broker_introduced": c.broker_introduced, "risk_level": c.risk_level,
        "assets_cny": c.assets.map(|a| a.to_string()), "last_trade_on": c.last_trade_on,
    })
}

/// `sha256-` and the base64url digest: a vCon `content_hash`.
pub fn content_hash(hex_sha256: &str) -> Option<String> {
    let raw = hex::decode(hex_sha256).ok()?;
    Some(format!("sha256-{}", base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(raw)))
}

/// The vCon of one call (draft-ietf-vcon-vcon-core): the agent and the
/// client as parties, the recording as a dialog referencing its file in
/// the zip by name and `content_hash` (or an `incomplete` dialog with its
/// disposition), the callback record as an attachment.
fn vcon(
    call: &CallRow,
    cc: &ClientCall,
    client: Option<&Client>,
    record: Option<&Value>,
    kind: Option<&str>,
) -> Value {
    let agent = json!({"role": "agent", "meta": {"staff_id": call.agent_id, "uri": call.agent_uri}});
    let customer = json!({
        "role": "customer",
        "name": client.map(|c| c.name.clone()),
        "tel": client.map(|c| c.phone.clone()),
        "meta": {"client_id": call.client_id, "uri": call.client_uri},
    });
    let start = time(call.answered_at.unwrap_or(call.started_at));
    let dialog = match (&cc.sha256, cc.recording_id, call.answered_at) {
        (Some(sha), Some(_), Some(_)) => json!({
            "type": "recording",
            "start": start,
            "duration": cc.duration_ms.unwrap_or(0) as f64 / 1000.0,
            "parties": [0, 1],
            "originator": 0,
            "mediatype": "audio/x-wav",
            "filename": "recording.wav",
            "url": "recording.wav",
            "content_hash": content_hash(sha),
            "meta": {"channels": {"left": "agent", "right": "customer"}, "sha256": sha},
        }),
        _ => json!({
            "type": "incomplete",
            "start": time(call.started_at),
            "parties": [0, 1],
            "originator": 0,
            "disposition": match call.outcome.as_deref() {
                Some("no-answer") => "no-answer",
                Some("busy") => "busy",
                Some("rejected") => "hung-up",
                Some("agent-unavailable") => "congestion",
                Some("unreachable") => "failed",
                _ => "failed",
            },
            "meta": {"outcome": call.outcome, "reason": call.reason},
        }),
    };
    let mut attachments = Vec::new();
    if let Some(r) = record {
        attachments.push(json!({"type": "callback_record", "start": start, "party": 0,
                                "mediatype": "application/json", "encoding": "json", "body": r}));
    }
    json!({
        "vcon": "0.0.2",
        "uuid": call.id,
        "created_at": time(call.started_at),
        "updated_at": call.ended_at.map(time),
        "subject": kind.map(|k| format!("callback {k}")),
        "parties": [agent, customer],
        "dialog": [dialog],
        "attachments": attachments,
        "analysis": [],
        "meta": {"task_id": call.task_id, "outcome": call.outcome, "reason": call.reason,
                 "started_at": time(call.started_at), "answered_at": call.answered_at.map(time),
                 "ended_at": call.ended_at.map(time)},
    })
}

/// Reads what an export of `scope` holds and writes its audit events (the
/// export is itself evidence: one `recording.exported` per recording and
/// one `evidence.exported`). Compliance only.
pub async fn gather(
    store: &Store,
    archive: &Archive,
    p: &Person,
    scope: &Scope,
    now: DateTime<Utc>,
) -> Result<Evidence, OpsError> {
    if !p.has(Role::Compliance) {
        return Err(OpsError::Forbidden("evidence exports are made by compliance".into()));
    }
    // the calls: of the client (every attempt, answered or not), or the one
    let (client_id, mut calls) = match (&scope.client_id, scope.call_id) {
        (Some(c), None) => {
            if c.is_empty() || c.len() > 64 {
                return Err(OpsError::invalid("client_id", "1 to 64 characters"));
            }
            let q = CallQuery { client_id: Some(c), from: scope.from, to: scope.to, ..CallQuery::default() };
            (c.clone(), store.calls_page(&q).await?)
        }
        (None, Some(id)) => {
            let call = store.get_call(id).await?;
            let c = call.client_id.clone().ok_or_else(|| {
                OpsError::invalid("call_id", "a call without a client cannot be exported alone")
            })?;
            let q = CallQuery { client_id: Some(&c), ..CallQuery::default() };
            let one: Vec<ClientCall> =
                store.calls_page(&q).await?.into_iter().filter(|x| x.call_id == id).collect();
            (c, one)
        }
        _ => return Err(OpsError::invalid("scope", "a client or a call")),
    };
    calls.sort_by_key(|c| (c.started_at, c.call_id));
    let client = match store.client(&client_id).await {
        Ok(c) => Some(c),
        Err(crate::store::StoreError::NotFound { .. } | crate::store::StoreError::Missing { .. }) => None,
        Err(e) => return Err(e.into()),
    };
    if client.is_none() && calls.is_empty() {
        return Err(OpsError::NotFound { what: "client", key: client_id });
    }
    let stamp = now.format("%Y%m%dT%H%M%SZ");
    let name = match scope.call_id {
        Some(id) => format!("huifang-export-call-{id}-{stamp}"),
        None => format!("huifang-export-{client_id}-{stamp}"),
    };
    let name: String =
        name.chars().map(|c| if c.is_ascii_alphanumeric() || "-_.".contains(c) { c } else { '_' }).collect();

    // tasks and records
    let mut tasks =
        store.tasks(&TaskFilter { client: Some(client_id.clone()), ..TaskFilter::default() }).await?;
    if scope.call_id.is_some() {
        let task = calls.first().and_then(|c| c.task_id.clone());
        tasks.retain(|t| Some(t.id.to_string()) == task || Some(&t.key) == task.as_ref());
    }
    let mut records: BTreeMap<String, Value> = BTreeMap::new();
    for t in &tasks {
        if let Some(r) = store.record_of_task(t.id).await? {
            let follow_up = store.follow_up_of(r.id).await?;
            let v = json!({"task_key": t.key, "record": r, "follow_up": follow_up});
            records.insert(t.id.to_string(), v);
        }
    }

    // the export's own audit events, before the head is read
    let recordings: Vec<&ClientCall> =
        calls.iter().filter(|c| c.recording_id.is_some() && c.sha256.is_some()).collect();
    for c in &recordings {
        let e = AuditEvent::new(
            &p.login,
            AuditAction::RecordingExported,
            c.recording_id.unwrap_or(c.call_id),
            json!({"export": name, "role": p.role_text(), "address": p.address, "sha256": c.sha256}),
        );
        store.append_audit(&e).await?;
    }
    let subject = scope.call_id.map(|c| c.to_string()).unwrap_or_else(|| client_id.clone());
    let summary = AuditEvent::new(
        &p.login,
        AuditAction::EvidenceExported,
        &subject,
        json!({
            "export": name,
            "scope": if scope.call_id.is_some() { "call" } else { "client" },
            "from": scope.from.map(time), "to": scope.to.map(time),
            "recordings": recordings.len(), "calls": calls.len(),
            "role": p.role_text(), "address": p.address,
        }),
    );
    let head = store.append_audit(&summary).await?;

    // the audit events about them: each call's (= its recording's) events, the client's
    let mut events: Vec<AuditRow> = Vec::new();
    let mut subjects: Vec<String> = calls.iter().map(|c| c.call_id.to_string()).collect();
    subjects.extend(calls.iter().filter_map(|c| c.recording_id).map(|r| r.to_string()));
    subjects.push(subject.clone());
    subjects.sort();
    subjects.dedup();
    for s in &subjects {
        let mut after = 0;
        loop {
            let page = store.audit_of(s, after, 1000).await?;
            let done = page.len() < 1000;
            if let Some(last) = page.last() {
                after = last.seq;
            }
            events.extend(page);
            if done {
                break;
            }
        }
    }
    events.sort_by_key(|e| e.seq);
    events.dedup_by_key(|e| e.seq);
    events.retain(|e| e.seq <= head.seq);
    let first = events.first().map_or(head.seq, |e| e.seq);

    let mut entries = Vec::new();
    let mut sealed_sums = BTreeMap::new();
    for c in &calls {
        let call = store.get_call(c.call_id).await?;
        let dir = format!("calls/{}", c.call_id);
        let task_record = c.task_id.as_deref().and_then(|t| records.get(t));
        let kind = call.kind.clone();
        if let (Some(rec_id), Some(sha)) = (c.recording_id, &c.sha256) {
            let ar = store.archive_record(rec_id).await?;
            let (audio, manifest) = match &ar.archived {
                Some(a) => {
                    let m = archive.get_version(&a.manifest_key, a.manifest_version.as_deref()).await?;
                    let bytes = c.bytes.unwrap_or(0).max(0) as u64;
                    (Audio::Archive { key: a.key.clone(), version: a.version.clone(), bytes }, m)
                }
                None => {
                    let rec = store.get_recording(rec_id).await?;
                    let m = json!({
                        "recording_id": rec_id, "call_id": c.call_id, "sha256": sha, "bytes": c.bytes,
                        "duration_ms": c.duration_ms, "archived": false,
                        "note": "not archived yet: the sealed file in the spool",
                    });
                    (Audio::Spool { path: PathBuf::from(rec.path) }, pretty(&m))
                }
            };
            sealed_sums.insert(c.call_id.to_string(), sha.clone());
            entries.push(Entry { path: format!("{dir}/recording.wav"), body: Body::Audio(audio) });
            entries.push(Entry { path: format!("{dir}/manifest.json"), body: Body::Bytes(manifest) });
        }
        let record = task_record.map(|r| r["record"].clone());
        let v = vcon(&call, c, client.as_ref(), record.as_ref(), kind.as_deref());
        entries.push(Entry { path: format!("{dir}/call.vcon.json"), body: Body::Bytes(pretty(&v)) });
    }
    for (task, r) in &records {
        entries.push(Entry { path: format!("records/{task}.record.json"), body: Body::Bytes(pretty(r)) });
    }
    let mut lines = Vec::new();
    for e in &events {
        let v = json!({
            "seq": e.seq, "at": time(e.at), "actor": e.actor, "action": e.action, "subject": e.subject,
            "detail": e.detail, "prev_hash": e.prev_hash, "hash": e.hash, "canonical": e.canonical(),
        });
        lines.extend(serde_json::to_vec(&v).unwrap_or_default());
        lines.push(b'\n');
    }
    entries.push(Entry { path: "audit/audit-events.jsonl".into(), body: Body::Bytes(lines) });
    entries.push(Entry {
        path: "audit/audit-chain.txt".into(),
        body: Body::Links { after: first - 1, head: head.seq },
    });
    let tasks_json: Vec<Value> = tasks
        .iter()
        .map(|t| {
            json!({"task_id": t.id, "key": t.key, "kind": t.kind, "due_on": t.due_on, "state": t.state,
                         "outcome": t.outcome, "reason": t.reason, "attempts": t.attempts,
                         "created_at": time(t.created_at), "closed_at": t.closed_at.map(time)})
        })
        .collect();
    let client_doc = json!({"client": client.as_ref().map(client_json), "tasks": tasks_json});
    entries.push(Entry { path: "client.json".into(), body: Body::Bytes(pretty(&client_doc)) });
    let export = json!({
        "export": name,
        "huifang": env!("CARGO_PKG_VERSION"),
        "made_at": time(now),
        "made_by": p.login,
        "role": p.role_text(),
        "scope": {"client_id": client_id, "call_id": scope.call_id, "from": scope.from.map(time), "to": scope.to.map(time)},
        "calls": calls.len(),
        "recordings": recordings.len(),
        "records": records.len(),
        "sealed_sha256": sealed_sums,
        "audit": {"events": events.len(), "first_seq": first, "head_seq": head.seq, "head_hash": head.hash},
    });
    entries.push(Entry { path: "export.json".into(), body: Body::Bytes(pretty(&export)) });
    entries.push(Entry { path: "VERIFY.md".into(), body: Body::Bytes(VERIFY_MD.as_bytes().to_vec()) });
    entries.push(Entry { path: "verify.py".into(), body: Body::Bytes(VERIFY_PY.as_bytes().to_vec()) });
    Ok(Evidence { name, recordings: recordings.len(), calls: calls.len(), entries })
}

/// A writer that hashes and counts what goes through it.
struct Hashing<'a, W: Write> {
    inner: &'a mut W,
    hash: Sha256,
    bytes: u64,
}

impl<W: Write> Write for Hashing<'_, W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hash.update(&buf[..n]);
        self.bytes += n as u64;
        Ok(n)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

fn io_err(what: &str) -> impl Fn(std::io::Error) -> OpsError + '_ {
    move |e| OpsError::Internal(format!("export: {what}: {e}"))
}

fn zip_err(what: &str) -> impl Fn(zip::result::ZipError) -> OpsError + '_ {
    move |e| OpsError::Internal(format!("export: {what}: {e}"))
}

/// Writes `ev` as a zip to `out`, streamed. Runs on a blocking thread
/// (`spawn_blocking`): the archive and the database are reached through
/// `rt`.
pub fn write_zip<W: Write + Send>(
    ev: &Evidence,
    store: &Store,
    archive: &Archive,
    rt: &tokio::runtime::Handle,
    out: W,
) -> Result<Written, OpsError> {
    use zip::CompressionMethod;
    use zip::write::SimpleFileOptions;
    let mut zw = zip::ZipWriter::new_stream(out);
    let json_opts = SimpleFileOptions::default().compression_method(CompressionMethod::Deflated);
    let mut sums = String::new();
    let mut total = 0u64;
    let mut buf = vec![0u8; 256 * 1024];
    for e in &ev.entries {
        let path = format!("{}/{}", ev.name, e.path);
        let opts = match &e.body {
            Body::Audio(Audio::Archive { bytes, .. }) => SimpleFileOptions::default()
                .compression_method(CompressionMethod::Stored)
                .large_file(*bytes >= u32::MAX as u64),
            Body::Audio(Audio::Spool { .. }) => {
                SimpleFileOptions::default().compression_method(CompressionMethod::Stored).large_file(true)
            }
            _ => json_opts,
        };
        zw.start_file(path.as_str(), opts).map_err(zip_err(&e.path))?;
        let mut w = Hashing { inner: &mut zw, hash: Sha256::new(), bytes: 0 };
        match &e.body {
            Body::Bytes(b) => w.write_all(b).map_err(io_err(&e.path))?,
            Body::Audio(a) => {
                let mut reader: Box<dyn Read> = match a {
                    Audio::Archive { key, version, bytes } => {
                        let r = rt.block_on(archive.read_range(key, version.as_deref(), 0, *bytes))?;
                        Box::new(tokio_util::io::SyncIoBridge::new_with_handle(r, rt.clone()))
                    }
                    Audio::Spool { path } => Box::new(std::fs::File::open(path).map_err(io_err(&e.path))?),
                };
                loop {
                    let n = reader.read(&mut buf).map_err(io_err(&e.path))?;
                    if n == 0 {
                        break;
                    }
                    w.write_all(&buf[..n]).map_err(io_err(&e.path))?;
                }
            }
            Body::Links { after, head } => {
                let mut at = *after;
                while at < *head {
                    let page = rt.block_on(store.audit_links(at, 10_000))?;
                    if page.is_empty() {
                        break;
                    }
                    let mut text = String::with_capacity(page.len() * 140);
                    for (seq, prev, hash) in &page {
                        if *seq > *head {
                            break;
                        }
                        text.push_str(&format!("{seq} {prev} {hash}\n"));
                        at = *seq;
                    }
                    w.write_all(text.as_bytes()).map_err(io_err(&e.path))?;
                    if page.last().is_some_and(|l| l.0 > *head) {
                        break;
                    }
                }
            }
        }
        let (hash, bytes) = (hex::encode(w.hash.finalize()), w.bytes);
        total += bytes;
        sums.push_str(&format!("{hash}  {}\n", e.path));
    }
    zw.start_file(format!("{}/SHA256SUMS", ev.name).as_str(), json_opts).map_err(zip_err("SHA256SUMS"))?;
    zw.write_all(sums.as_bytes()).map_err(io_err("SHA256SUMS"))?;
    total += sums.len() as u64;
    zw.finish().map_err(zip_err("the end of the zip"))?.flush().map_err(io_err("flushing"))?;
    Ok(Written { files: ev.entries.len() + 1, bytes: total })
}

/// What [`verify`] found wrong, naming the file.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{file}: {why}")]
pub struct Tampered {
    /// The file at fault (its path in the export).
    pub file: String,
    /// What does not hold.
    pub why: String,
}

/// What [`verify`] checked.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct Checked {
    /// Files whose SHA-256 matched SHA256SUMS.
    pub files: usize,
    /// Recordings matched to their sealed SHA-256.
    pub recordings: usize,
    /// Audit events whose hash was recomputed.
    pub events: usize,
    /// Links of the chain followed to the head.
    pub links: usize,
}

/// Checks an export offline, as `verify.py` does: SHA256SUMS, each WAV
/// against its sealed SHA-256, manifest and vCon, each audit event's hash,
/// the links to the head.
pub fn verify<R: Read + std::io::Seek>(zip_file: R) -> Result<Checked, Tampered> {
    let bad = |file: &str, why: String| Tampered { file: file.to_string(), why };
    let mut z = zip::ZipArchive::new(zip_file).map_err(|e| bad("(the zip)", e.to_string()))?;
    // every file hashed as it is read; only the small ones kept (a WAV is
    // never held whole)
    let mut hashes: BTreeMap<String, String> = BTreeMap::new();
    let mut files: BTreeMap<String, Vec<u8>> = BTreeMap::new();
    let mut prefix = String::new();
    let mut buf = vec![0u8; 256 * 1024];
    for i in 0..z.len() {
        let mut f = z.by_index(i).map_err(|e| bad("(the zip)", e.to_string()))?;
        let name = f.name().map_err(|e| bad("(the zip)", e.to_string()))?.to_string();
        let (top, rest) =
            name.split_once('/').ok_or_else(|| bad(&name, "not inside the export's folder".into()))?;
        if prefix.is_empty() {
            prefix = top.to_string();
        } else if prefix != top {
            return Err(bad(&name, "a second top folder".into()));
        }
        if f.is_dir() {
            continue;
        }
        let keep = !rest.ends_with(".wav");
        let mut h = Sha256::new();
        let mut kept = Vec::new();
        loop {
            let n = f.read(&mut buf).map_err(|e| bad(rest, e.to_string()))?;
            if n == 0 {
                break;
            }
            h.update(&buf[..n]);
            if keep {
                kept.extend_from_slice(&buf[..n]);
            }
        }
        hashes.insert(rest.to_string(), hex::encode(h.finalize()));
        if keep {
            files.insert(rest.to_string(), kept);
        }
    }
    let sums = files.get("SHA256SUMS").ok_or_else(|| bad("SHA256SUMS", "missing".into()))?;
    let sums = std::str::from_utf8(sums).map_err(|_| bad("SHA256SUMS", "not text".into()))?;
    let mut listed = BTreeMap::new();
    for line in sums.lines() {
        let (hash, path) =
            line.split_once("  ").ok_or_else(|| bad("SHA256SUMS", format!("bad line {line:?}")))?;
        listed.insert(path.to_string(), hash.to_string());
    }
    let mut checked = Checked::default();
    for (path, hash) in &hashes {
        if path == "SHA256SUMS" {
            continue;
        }
        let want = listed.get(path).ok_or_else(|| bad(path, "not listed in SHA256SUMS".into()))?;
        if hash != want {
            return Err(bad(path, "its SHA-256 differs from SHA256SUMS".into()));
        }
        checked.files += 1;
    }
    if let Some(missing) = listed.keys().find(|p| !hashes.contains_key(*p)) {
        return Err(bad(missing, "listed in SHA256SUMS but missing".into()));
    }
    let json = |path: &str| -> Result<Value, Tampered> {
        let b = files.get(path).ok_or_else(|| bad(path, "missing".into()))?;
        serde_json::from_slice(b).map_err(|e| bad(path, format!("not JSON: {e}")))
    };
    let export = json("export.json")?;
    // the audit events: each hash over its content and predecessor
    let events_file = "audit/audit-events.jsonl";
    let text = std::str::from_utf8(files.get(events_file).ok_or_else(|| bad(events_file, "missing".into()))?)
        .map_err(|_| bad(events_file, "not text".into()))?;
    let mut event_hash: BTreeMap<i64, String> = BTreeMap::new();
    let mut sealed: BTreeMap<String, String> = BTreeMap::new();
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        let e: Value = serde_json::from_str(line).map_err(|e| bad(events_file, format!("not JSON: {e}")))?;
        let seq = e["seq"].as_i64().ok_or_else(|| bad(events_file, "an event without seq".into()))?;
        let canonical = e["canonical"].as_str().unwrap_or_default();
        let prev = e["prev_hash"].as_str().unwrap_or_default();
        let hash = e["hash"].as_str().unwrap_or_default();
        let mut h = Sha256::new();
        h.update(prev.as_bytes());
        h.update(canonical.as_bytes());
        if hex::encode(h.finalize()) != hash {
            return Err(bad(events_file, format!("event {seq}: its hash does not cover its content")));
        }
        let c: Value = serde_json::from_str(canonical)
            .map_err(|_| bad(events_file, format!("event {seq}: canonical form")))?;
        for k in ["seq", "at", "actor", "action", "subject", "detail"] {
            if c[k] != e[k] {
                return Err(bad(events_file, format!("event {seq}: {k} differs from what its hash covers")));
            }
        }
        if e["action"] == "recording.sealed"
            && let (Some(s), Some(sha)) = (e["subject"].as_str(), e["detail"]["sha256"].as_str())
        {
            sealed.insert(s.to_string(), sha.to_string());
        }
        event_hash.insert(seq, hash.to_string());
        checked.events += 1;
    }
    // the links: unbroken to the head, through every event above
    let chain_file = "audit/audit-chain.txt";
    let chain = std::str::from_utf8(files.get(chain_file).ok_or_else(|| bad(chain_file, "missing".into()))?)
        .map_err(|_| bad(chain_file, "not text".into()))?;
    let mut last: Option<(i64, String)> = None;
    let mut first: Option<i64> = None;
    for line in chain.lines() {
        let mut it = line.split(' ');
        let (Some(seq), Some(prev), Some(hash)) = (it.next(), it.next(), it.next()) else {
            return Err(bad(chain_file, format!("bad line {line:?}")));
        };
        let seq: i64 = seq.parse().map_err(|_| bad(chain_file, format!("bad line {line:?}")))?;
        first.get_or_insert(seq);
        if let Some((s, h)) = &last
            && (seq != s + 1 || prev != h)
        {
            return Err(bad(chain_file, format!("the link at {seq} does not follow {s}")));
        }
        if let Some(h) = event_hash.get(&seq)
            && h != hash
        {
            return Err(bad(chain_file, format!("event {seq}'s hash differs from the chain's")));
        }
        last = Some((seq, hash.to_string()));
        checked.links += 1;
    }
    let head = export["audit"]["head_hash"].as_str().unwrap_or_default();
    if last.as_ref().map(|(_, h)| h.as_str()) != Some(head) {
        return Err(bad(chain_file, "does not end at the head named in export.json".into()));
    }
    if let Some(s) = event_hash.keys().find(|s| first.is_none_or(|f| **s < f)) {
        return Err(bad(chain_file, format!("event {s} is not among the links")));
    }
    // each recording: sealed SHA-256 = the file = manifest = vCon
    for (path, sha) in &hashes {
        let Some(dir) = path.strip_suffix("/recording.wav") else { continue };
        let id = dir.trim_start_matches("calls/");
        let sha = sha.clone();
        match sealed.get(id) {
            Some(s) if *s == sha => {}
            Some(_) => {
                return Err(bad(
                    path,
                    "differs from the SHA-256 huifang sealed (audit recording.sealed)".into(),
                ));
            }
            None => return Err(bad(path, "no recording.sealed event for it".into())),
        }
        let m = json(&format!("{dir}/manifest.json"))?;
        if m["sha256"].as_str() != Some(sha.as_str()) {
            return Err(bad(&format!("{dir}/manifest.json"), "its sha256 differs from the recording".into()));
        }
        let v = json(&format!("{dir}/call.vcon.json"))?;
        if v["dialog"][0]["content_hash"].as_str() != content_hash(&sha).as_deref() {
            return Err(bad(
                &format!("{dir}/call.vcon.json"),
                "its content_hash differs from the recording".into(),
            ));
        }
        checked.recordings += 1;
    }
    Ok(checked)
}
