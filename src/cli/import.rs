//! `huifang import clients|staff|events FILE [--dry-run] [--encoding E]`:
//! reads a CSV export (contract in `docs/IMPORT.md`), checks every row and
//! upserts them by natural key in one transaction: a bad row anywhere
//! imports nothing, and re-importing a file changes nothing. A progress bar
//! shows on a terminal (stderr); the summary goes to stdout.

use std::io::IsTerminal;

use anyhow::Context;
use chrono::Utc;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use super::{Exit, ImportArgs, ImportWhat};
use crate::config::Config;
use crate::import::{self, Encoding};
use crate::store::Store;

/// Runs `huifang import`.
pub fn run(args: ImportArgs) -> anyhow::Result<Exit> {
    let cfg = Config::load(&args.config)?;
    super::init_logging(&cfg.log.level);
    let enc = Encoding::parse(&args.encoding)
        .with_context(|| format!("--encoding: {:?} is not auto, utf-8 or gbk", args.encoding))?;
    let file = args.file.display().to_string();
    let bytes = std::fs::read(&args.file).with_context(|| format!("cannot read {file}"))?;
    let (text, encoding) = import::decode(&bytes, enc).with_context(|| file.clone())?;
    let what = match args.what {
        ImportWhat::Clients => "clients",
        ImportWhat::Staff => "staff",
        ImportWhat::Events => "events",
    };
    enum Rows {
        Clients(Vec<crate::domain::facts::Client>),
        Staff(Vec<crate::domain::facts::Staff>),
        Events(Vec<crate::domain::facts::Event>),
    }
    let (rows, warnings, n) = match args.what {
        ImportWhat::Clients => {
            let p = import::clients(&text, encoding).with_context(|| file.clone())?;
            let n = p.rows.len();
            (Rows::Clients(p.rows), p.warnings, n)
        }
        ImportWhat::Staff => {
            let p = import::staff(&text, encoding).with_context(|| file.clone())?;
            let n = p.rows.len();
            (Rows::Staff(p.rows), p.warnings, n)
        }
        ImportWhat::Events => {
            let p = import::events(&text, encoding).with_context(|| file.clone())?;
            let n = p.rows.len();
            (Rows::Events(p.rows), p.warnings, n)
        }
    };
    for w in &warnings {
        eprintln!("huifang: warning: {file}: {w}");
    }
    let bar = if std::io::stderr().is_terminal() {
        let b = ProgressBar::with_draw_target(Some(n as u64), ProgressDrawTarget::stderr());
        b.set_style(
            ProgressStyle::with_template("{msg} {bar:40} {pos}/{len} rows ({per_sec}, {eta})")
                .unwrap_or_else(|_| ProgressStyle::default_bar()),
        );
        b.set_message(format!("importing {what}"));
        b
    } else {
        ProgressBar::hidden()
    };
    let rt = tokio::runtime::Runtime::new().context("starting the async runtime")?;
    let counts = rt.block_on(async {
        let store = Store::open(&cfg.database_url()).await?;
        let mut progress = |done: u64| bar.set_position(done);
        let now = Utc::now();
        let r = match &rows {
            Rows::Clients(r) => store.import_clients(r, args.dry_run, now, &mut progress).await,
            Rows::Staff(r) => store.import_staff(r, args.dry_run, now, &mut progress).await,
            Rows::Events(r) => store.import_events(r, args.dry_run, now, &mut progress).await,
        };
        store.close().await;
        anyhow::Ok(r?)
    })?;
    bar.finish_and_clear();
    println!(
        "{what}: {} row(s) from {file} ({encoding}): {} new, {} updated, {} unchanged{}",
        counts.rows,
        counts.inserted,
        counts.updated,
        counts.unchanged,
        if args.dry_run { " — dry run, nothing written" } else { "" }
    );
    Ok(Exit::Ok)
}
