//! `huifang export --client ID [--from D] [--to D] --out FILE [--user NAME]`
//! (or `--call ID`): an evidence export, the same zip as
//! `GET /api/v1/clients/{id}/export` (`ops::export`); written under a
//! temporary name beside `--out`, fsynced and renamed: a file at `--out` is
//! always a whole export. `huifang export verify FILE` checks one offline
//! (what `verify.py` in it does); non-zero exit, naming the file, when
//! anything was changed.

use std::path::Path;

use anyhow::{Context, bail};
use uuid::Uuid;

use super::{Exit, ExportAction, ExportArgs};
use crate::archive::Archive;
use crate::config::Config;
use crate::ops::access::Person;
use crate::ops::export::{self, Scope};
use crate::store::Store;

/// Runs `huifang export`.
pub fn run(args: ExportArgs) -> anyhow::Result<Exit> {
    if let Some(ExportAction::Verify { file }) = &args.action {
        return verify(file);
    }
    let cfg = Config::load(&args.config)?;
    super::init_logging(&cfg.log.level);
    let Some(out) = args.out.clone() else { bail!("--out: where to write the export is missing") };
    let call =
        args.call.as_deref().map(Uuid::parse_str).transpose().context("--call: not a call id (UUID)")?;
    if args.client.is_some() == call.is_some() {
        bail!("--client or --call: give one of them");
    }
    let day = |d: &Option<String>, flag: &'static str| {
        d.as_deref()
            .map(|d| crate::ops::recordings::day_start(d, flag))
            .transpose()
            .map_err(super::output::flagged)
    };
    let scope = Scope {
        client_id: args.client.clone(),
        call_id: call,
        from: day(&args.from, "from")?,
        to: day(&args.to, "to")?.map(|t| t + chrono::Duration::days(1)),
    };
    let user = args.user.clone().or_else(|| std::env::var("USER").ok()).filter(|u| !u.is_empty());
    let Some(user) = user else { bail!("--user: not given and $USER is not set") };
    let rt = tokio::runtime::Runtime::new().context("starting the async runtime")?;
    rt.block_on(async move {
        let store = Store::open(&cfg.database_url()).await?;
        let archive = Archive::from_config(&cfg)?;
        let r = write(&store, &archive, &Person::operator(&user), &scope, &out).await;
        store.close().await;
        r
    })
}

async fn write(
    store: &Store,
    archive: &Archive,
    p: &Person,
    scope: &Scope,
    out: &Path,
) -> anyhow::Result<Exit> {
    let t0 = std::time::Instant::now();
    let ev =
        export::gather(store, archive, p, scope, chrono::Utc::now()).await.map_err(super::output::flagged)?;
    tracing::info!(export = %ev.name, ms = t0.elapsed().as_millis() as u64, "export gathered");
    let tmp = out.with_file_name(format!(
        ".{}.partial",
        out.file_name().and_then(|n| n.to_str()).unwrap_or("export.zip")
    ));
    let file = std::fs::File::create(&tmp).with_context(|| format!("creating {}", tmp.display()))?;
    let (store2, archive2, ev2) = (store.clone(), archive.clone(), ev.clone());
    let handle = tokio::runtime::Handle::current();
    let written = tokio::task::spawn_blocking(move || {
        let mut w = std::io::BufWriter::with_capacity(1 << 20, file);
        let r = export::write_zip(&ev2, &store2, &archive2, &handle, &mut w);
        let file = w.into_inner().map_err(|e| crate::ops::OpsError::Internal(e.to_string()))?;
        file.sync_all().map_err(|e| crate::ops::OpsError::Internal(e.to_string()))?;
        r
    })
    .await
    .context("the export's writer")?;
    let written = match written {
        Ok(w) => w,
        Err(e) => {
            let _ = std::fs::remove_file(&tmp);
            return Err(e.into());
        }
    };
    std::fs::rename(&tmp, out).with_context(|| format!("renaming to {}", out.display()))?;
    tracing::info!(ms = t0.elapsed().as_millis() as u64, "export written");
    println!(
        "{}: {} files, {} bytes ({} calls, {} recordings); check it with `python3 verify.py {}` or `huifang export verify {}`",
        out.display(),
        written.files,
        written.bytes,
        ev.calls,
        ev.recordings,
        out.display(),
        out.display()
    );
    Ok(Exit::Ok)
}

fn verify(file: &Path) -> anyhow::Result<Exit> {
    let f = std::fs::File::open(file).with_context(|| format!("opening {}", file.display()))?;
    match export::verify(std::io::BufReader::new(f)) {
        Ok(c) => {
            println!(
                "OK: {} files match SHA256SUMS; {} recordings match their sealed SHA-256; {} audit events and {} links to the head hold",
                c.files, c.recordings, c.events, c.links
            );
            Ok(Exit::Ok)
        }
        Err(t) => {
            eprintln!("FAILED {t}");
            Ok(Exit::Unsuccessful)
        }
    }
}
