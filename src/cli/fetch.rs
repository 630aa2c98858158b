//! `huifang fetch --recording ID --out FILE [--user NAME]`: download a
//! recording for compliance (issue 4, E6).
//!
//! From the archive when the recording is archived (the object version
//! the database recorded), else from the spool's sealed file. The bytes are checked against the SHA-256 the database
//! holds (E3): on a mismatch nothing is written and the command fails. The
//! file is written next to `--out` under a temporary name, fsynced, the
//! `recording.fetched` audit event appended (who: `--user` or `$USER`;
//! what: the recording; when; from where: this host, and the source), and
//! only then renamed to `--out`. No audit event, no file.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use serde_json::json;
use uuid::Uuid;

use super::{Exit, FetchArgs};
use crate::archive::{Archive, sha256_hex};
use crate::audit::{AuditAction, AuditEvent};
use crate::config::Config;
use crate::store::Store;

/// Runs `huifang fetch`.
pub fn run(args: FetchArgs) -> anyhow::Result<Exit> {
    let cfg = Config::load(&args.config)?;
    super::init_logging(&cfg.log.level);
    let id = Uuid::parse_str(&args.recording).context("--recording: not a recording id (UUID)")?;
    let user = args.user.clone().or_else(|| std::env::var("USER").ok()).filter(|u| !u.is_empty());
    let Some(user) = user else { bail!("--user: not given and $USER is not set") };
    let rt = tokio::runtime::Runtime::new().context("starting the async runtime")?;
    rt.block_on(async move {
        let store = Store::open(&cfg.database_url()).await?;
        let r = fetch(&cfg, &store, id, &user, &args.out).await;
        store.close().await;
        r
    })
}

async fn fetch(cfg: &Config, store: &Store, id: Uuid, user: &str, out: &Path) -> anyhow::Result<Exit> {
    let row = store.get_recording(id).await?;
    let Some(expected) = row.sha256.clone() else {
        bail!("recording {id} is still being recorded (state {})", row.state)
    };
    let record = store.archive_record(id).await?;
    let (bytes, from) = match record.archived {
        Some(a) => {
            let archive = Archive::from_config(cfg)?;
            // the version the database recorded: a later version or a delete
            // marker on the key does not change what is fetched
            let bytes = archive
                .get_version(&a.key, a.version.as_deref())
                .await
                .with_context(|| format!("fetching {} from the archive", a.key))?;
            (
                bytes,
                json!({"source": "archive", "archive": archive.describe(), "key": a.key, "version_id": a.version}),
            )
        }
        None => {
            let bytes = tokio::fs::read(&row.path)
                .await
                .with_context(|| format!("reading the spooled file of recording {id}"))?;
            (bytes, json!({"source": "spool", "path": row.path}))
        }
    };
    let actual = sha256_hex(&bytes);
    if actual != expected {
        bail!(
            "recording {id}: SHA-256 mismatch (database {expected}, {} gives {actual}); nothing written",
            from["source"].as_str().unwrap_or("source")
        );
    }
    let tmp = temp_path(out);
    write_synced(&tmp, &bytes).with_context(|| format!("writing {}", tmp.display()))?;
    let event = AuditEvent::new(
        user,
        AuditAction::RecordingFetched,
        id,
        json!({"from": from, "host": hostname(), "out": out.display().to_string(), "sha256": actual}),
    );
    if let Err(e) = store.append_audit(&event).await {
        let _ = std::fs::remove_file(&tmp);
        return Err(e).context("audit log: recording.fetched not written; nothing written");
    }
    std::fs::rename(&tmp, out).with_context(|| format!("renaming into {}", out.display()))?;
    eprintln!(
        "recording {id}: {} bytes, SHA-256 {actual} verified, written to {}",
        bytes.len(),
        out.display()
    );
    Ok(Exit::Ok)
}

fn temp_path(out: &Path) -> PathBuf {
    let name = out.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_else(|| "fetch".into());
    out.with_file_name(format!(".{name}.part-{}", Uuid::new_v4().simple()))
}

fn write_synced(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let mut f = std::fs::OpenOptions::new().write(true).create_new(true).open(path)?;
    f.write_all(bytes)?;
    f.sync_all()
}

/// This machine's name (for "from where" in the audit log).
pub(super) fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .or_else(|_| std::fs::read_to_string("/etc/hostname"))
        .map(|h| h.trim().to_string())
        .ok()
        .filter(|h| !h.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_else(|| "unknown".into())
}
