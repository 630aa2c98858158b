//! `huifang archive drain | init`.
//!
//! - `drain` opens the store and the archive, checks the archive (Object
//!   Lock, versioning), uploads and verifies every queued recording, removes
//!   the spooled files whose grace period is over, prints one summary line
//!   and exits 0 when the queue is empty (every upload verified), 1 when
//!   `--timeout` passed first. For operators after an outage, and after
//!   `dial` runs outside `serve`.
//! - `init` creates the bucket with Object Lock (versioning comes with it)
//!   or the local directory, then checks it.

use std::time::Duration;

use anyhow::Context;

use super::{ArchiveAction, ArchiveArgs, Exit};
use crate::archive::Archive;
use crate::archive::uploader::{Uploader, UploaderConfig};
use crate::config::Config;
use crate::store::Store;

/// Runs `huifang archive`.
pub fn run(args: ArchiveArgs) -> anyhow::Result<Exit> {
    let rt = tokio::runtime::Runtime::new().context("starting the async runtime")?;
    match args.action {
        ArchiveAction::Init(a) => {
            let cfg = Config::load(&a.config)?;
            super::init_logging(&cfg.log.level);
            rt.block_on(async {
                let archive = Archive::from_config(&cfg)?;
                archive.init().await.with_context(|| format!("initialising {}", archive.describe()))?;
                let what = match &archive {
                    Archive::S3(_) => "bucket with Object Lock and versioning",
                    Archive::Local(_) => {
                        "directory; retention kept in sidecars, not enforced by the file system"
                    }
                };
                println!("archive ready: {} ({what})", archive.describe());
                Ok(Exit::Ok)
            })
        }
        ArchiveAction::Drain(a) => {
            let cfg = Config::load(&a.config)?;
            super::init_logging(&cfg.log.level);
            rt.block_on(async {
                let store = Store::open(&cfg.database_url()).await.context("opening the database")?;
                let archive = Archive::from_config(&cfg)?;
                archive.check().await.with_context(|| format!("checking {}", archive.describe()))?;
                let mut uploader = Uploader::new(store.clone(), archive.clone(), UploaderConfig::from_config(&cfg));
                let deadline = tokio::time::Instant::now() + Duration::from_secs(a.timeout);
                let report = uploader.drain(deadline).await.context("reading the upload queue")?;
                let last_error = uploader.status().borrow().last_error.clone();
                store.close().await;
                println!(
                    "archive drain: {} archived and verified, {} failed attempts, {} still queued, {} spooled files removed ({})",
                    report.archived,
                    report.failures,
                    report.remaining,
                    report.removed,
                    archive.describe()
                );
                if report.remaining == 0 {
                    Ok(Exit::Ok)
                } else {
                    eprintln!(
                        "huifang: {} recordings not archived within {} s{}",
                        report.remaining,
                        a.timeout,
                        last_error.map(|e| format!("; last error: {e}")).unwrap_or_default()
                    );
                    Ok(Exit::Unsuccessful)
                }
            })
        }
    }
}
