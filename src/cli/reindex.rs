//! `huifang reindex`: rebuilds the calls and recordings index from the
//! archive's manifests alone (the database was lost).
//!
//! For every `recordings/…/<uuid>.json` manifest whose recording has no
//! row: the call is inserted (unless present) with its ids, URIs, kind,
//! times and outcome; the recording is inserted, sealed with the
//! manifest's state, SHA-256, size and duration (its `path` is the WAV's
//! object key: the spooled file is long gone), and marked archived with
//! the keys, the object versions HEAD reports and the manifest's
//! retain-until. Existing rows are left alone. Per-side RTP counters are
//! not in the manifest and come back as zero; the audit log cannot be
//! rebuilt from the archive (it starts anew): each recording reindexed gets
//! a `recording.reindexed` event instead, so that `verify` knows why its
//! call has no `call.*` events. Afterwards `huifang verify` passes. Prints the counts; exits 1 if any manifest could not be used.

use anyhow::Context;
use chrono::Utc;

use super::{ConfigArg, Exit};
use crate::archive::{Archive, Manifest, recording_key};
use crate::config::Config;
use crate::store::{
    Archived, NewCall, NewRecording, RecordingState, SealedRecording, SideCounters, Store, StoreError,
};

/// Runs `huifang reindex`.
pub fn run(args: ConfigArg) -> anyhow::Result<Exit> {
    let cfg = Config::load(&args.config)?;
    super::init_logging(&cfg.log.level);
    let rt = tokio::runtime::Runtime::new().context("starting the async runtime")?;
    rt.block_on(async move {
        let store = Store::open(&cfg.database_url()).await?;
        let archive = Archive::from_config(&cfg)?;
        let r = reindex(&store, &archive).await;
        store.close().await;
        let c = r?;
        println!(
            "reindex: {} manifest(s); inserted {} call(s) and {} recording(s); {} already indexed; {} failed",
            c.manifests, c.calls, c.recordings, c.existing, c.failed
        );
        Ok(if c.failed == 0 { Exit::Ok } else { Exit::Unsuccessful })
    })
}

/// What `reindex` did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Counts {
    /// Manifests found.
    pub manifests: u64,
    /// Calls inserted.
    pub calls: u64,
    /// Recordings inserted.
    pub recordings: u64,
    /// Recordings already in the database.
    pub existing: u64,
    /// Manifests that could not be used (each printed on stderr).
    pub failed: u64,
}

/// Rebuilds what is missing from the manifests.
pub async fn reindex(store: &Store, archive: &Archive) -> anyhow::Result<Counts> {
    let mut c = Counts::default();
    for key in archive.list("recordings/").await.context("listing the archive")? {
        if !key.ends_with(".json") {
            continue;
        }
        c.manifests += 1;
        if let Err(e) = one(store, archive, &key, &mut c).await {
            eprintln!("reindex: {key}: {e:#}");
            c.failed += 1;
        }
    }
    Ok(c)
}

async fn one(store: &Store, archive: &Archive, key: &str, c: &mut Counts) -> anyhow::Result<()> {
    let m = Manifest::from_json(&archive.get(key).await?).context("not a manifest")?;
    match store.get_recording(m.recording_id).await {
        Ok(_) => {
            c.existing += 1;
            return Ok(());
        }
        Err(StoreError::NotFound { .. }) => {}
        Err(e) => return Err(e.into()),
    }
    let wav = recording_key(m.started_at, m.recording_id);
    let wav_info = archive.head(&wav).await?.with_context(|| format!("no object {wav}"))?;
    let manifest_info = archive.head(key).await?.context("manifest vanished")?;
    match store.get_call(m.call_id).await {
        Ok(_) => {}
        Err(StoreError::NotFound { .. }) => {
            store
                .insert_call(&NewCall {
                    id: m.call_id,
                    task_id: m.task_id.clone(),
                    client_id: m.client_id.clone(),
                    agent_uri: m.agent_uri.clone(),
                    client_uri: m.client_uri.clone(),
                    started_at: m.started_at,
                    kind: m.kind.clone(),
                    agent_id: m.agent_id.clone(),
                    claimed_at: None,
                })
                .await?;
            if let Some(at) = m.answered_at {
                store.mark_answered(m.call_id, at).await?;
            }
            if let (Some(outcome), Some(ended)) = (m.outcome.as_deref(), m.ended_at) {
                store.finish_call(m.call_id, outcome, Some("reindexed from the archive"), ended).await?;
            }
            c.calls += 1;
        }
        Err(e) => return Err(e.into()),
    }
    let state = RecordingState::from_name(&m.state)
        .filter(|s| s.is_final())
        .with_context(|| format!("manifest state {:?} is not final", m.state))?;
    store
        .insert_recording(&NewRecording {
            id: m.recording_id,
            call_id: m.call_id,
            path: wav.clone(),
            started_at: m.started_at,
        })
        .await?;
    store
        .seal_recording(&SealedRecording {
            id: m.recording_id,
            path: wav.clone(),
            sha256: m.sha256.clone(),
            bytes: m.bytes,
            duration_ms: m.duration_ms,
            agent: SideCounters::default(),
            client: SideCounters::default(),
            state,
            sealed_at: m.ended_at.unwrap_or(m.started_at),
        })
        .await?;
    store
        .mark_archived(
            m.recording_id,
            &Archived {
                key: wav,
                manifest_key: key.to_string(),
                version: wav_info.version_id,
                manifest_version: manifest_info.version_id,
                retain_until: m.retain_until,
                at: Utc::now(),
            },
        )
        .await?;
    // the chain says the history of this call was rebuilt, not lost unseen
    // (verify does not ask for its call.* events)
    let e = crate::audit::AuditEvent::system(
        crate::audit::AuditAction::RecordingReindexed,
        m.recording_id,
        serde_json::json!({"call_id": m.call_id, "manifest_key": key}),
    );
    store.append_audit(&e).await?;
    c.recordings += 1;
    Ok(())
}
