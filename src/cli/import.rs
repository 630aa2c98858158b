//! `huifang import clients|staff|events FILE [--dry-run] [--encoding E]`:
//! reads a CSV export (contract in `docs/IMPORT.md`), checks every row and
//! upserts them by natural key in one transaction: a bad row anywhere
//! imports nothing, and re-importing a file changes nothing. A progress bar
//! shows on a terminal (stderr); the summary goes to stdout.
//!
//! The file is read and stored at the same time: a thread reads and checks
//! the rows ([`import::Reader`]) and hands them over in batches of
//! [`BATCH`] while the database stores the previous batch. Once a row is
//! bad no batch is handed over any more; the reader goes on to the end to
//! report every error, and the transaction is rolled back. Memory holds
//! the file's text, the keys seen and a few batches, not every row.

use std::io::IsTerminal;

use anyhow::Context;
use chrono::Utc;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use tokio::sync::mpsc;

use super::{Exit, ImportArgs, ImportWhat};
use crate::config::Config;
use crate::import::{self, Encoding, ImportError, Reader};
use crate::store::{ImportCounts, Importable, Store};

/// Rows handed from the reader to the database at a time.
const BATCH: usize = 5_000;
/// Batches read ahead of the database.
const AHEAD: usize = 2;

/// Runs `huifang import`.
pub fn run(args: ImportArgs) -> anyhow::Result<Exit> {
    let cfg = Config::load(&args.config)?;
    super::init_logging(&cfg.log.level);
    let enc = Encoding::parse(&args.encoding)
        .with_context(|| format!("--encoding: {:?} is not auto, utf-8 or gbk", args.encoding))?;
    let file = args.file.display().to_string();
    let bytes = std::fs::read(&args.file).with_context(|| format!("cannot read {file}"))?;
    let (text, encoding) = import::decode(bytes, enc).with_context(|| file.clone())?;
    let job = Job { url: cfg.database_url(), file: &file, dry_run: args.dry_run, size: text.len() as u64 };
    let (what, counts) = match args.what {
        ImportWhat::Clients => ("clients", job.run(Reader::clients(&text).with_context(|| file.clone())?)?),
        ImportWhat::Staff => ("staff", job.run(Reader::staff(&text).with_context(|| file.clone())?)?),
        ImportWhat::Events => ("events", job.run(Reader::events(&text).with_context(|| file.clone())?)?),
    };
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

struct Job<'a> {
    url: String,
    file: &'a str,
    dry_run: bool,
    /// Bytes of text, for the progress bar.
    size: u64,
}

/// From the reading thread to the database.
enum Msg<T> {
    /// Good rows, and how far into the text the reader is.
    Rows(Vec<T>, u64),
    /// The end: the file's warnings, or why it is refused.
    Done(Result<Vec<String>, ImportError>),
}

impl Job<'_> {
    fn run<T: Importable + Send + 'static>(&self, mut reader: Reader<'_, T>) -> anyhow::Result<ImportCounts> {
        for w in reader.warnings() {
            eprintln!("huifang: warning: {}: {w}", self.file);
        }
        let bar = if std::io::stderr().is_terminal() {
            let b = ProgressBar::with_draw_target(Some(self.size), ProgressDrawTarget::stderr());
            b.set_style(
                ProgressStyle::with_template("{msg} {bar:40} {percent}% ({binary_bytes_per_sec}, {eta})")
                    .unwrap_or_else(|_| ProgressStyle::default_bar()),
            );
            b
        } else {
            ProgressBar::hidden()
        };
        let rt = tokio::runtime::Runtime::new().context("starting the async runtime")?;
        let (send, mut recv) = mpsc::channel::<Msg<T>>(AHEAD);
        let counts = std::thread::scope(|s| {
            s.spawn(move || {
                let end = read_all(&mut reader, &send);
                // the database side may have given up already: nobody to tell
                let _ = send.blocking_send(Msg::Done(end.and_then(|()| reader.finish())));
            });
            rt.block_on(async {
                let store = Store::open(&self.url).await?;
                let r = store_all(&store, &mut recv, &bar, self.dry_run).await;
                // dropping the receiver stops the reader if the database failed
                drop(recv);
                store.close().await;
                r
            })
        });
        bar.finish_and_clear();
        counts.with_context(|| self.file.to_string())
    }
}

/// Reads every row, sending the good ones in batches while the file is clean.
fn read_all<T>(reader: &mut Reader<'_, T>, send: &mpsc::Sender<Msg<T>>) -> Result<(), ImportError> {
    let mut batch = Vec::with_capacity(BATCH);
    while let Some(row) = reader.next_row()? {
        if !reader.is_clean() {
            batch = Vec::new();
            continue;
        }
        batch.push(row);
        if batch.len() == BATCH {
            let full = std::mem::replace(&mut batch, Vec::with_capacity(BATCH));
            if send.blocking_send(Msg::Rows(full, reader.position())).is_err() {
                return Ok(()); // the database side failed; it reports why
            }
        }
    }
    if !batch.is_empty() && reader.is_clean() {
        let _ = send.blocking_send(Msg::Rows(batch, reader.position()));
    }
    Ok(())
}

/// Stores the batches in one transaction; commits only if the reader ends
/// without an error.
async fn store_all<T: Importable>(
    store: &Store,
    recv: &mut mpsc::Receiver<Msg<T>>,
    bar: &ProgressBar,
    dry_run: bool,
) -> anyhow::Result<ImportCounts> {
    let mut imp = store.begin_import::<T>(Utc::now()).await?;
    bar.set_message("importing");
    loop {
        match recv.recv().await {
            Some(Msg::Rows(rows, at)) => {
                if let Err(e) = imp.write(&rows).await {
                    imp.abort().await;
                    return Err(e.into());
                }
                bar.set_position(at);
                bar.set_message(format!("importing: {} rows", imp.rows()));
            }
            Some(Msg::Done(Ok(_warnings))) => return Ok(imp.finish(dry_run).await?),
            Some(Msg::Done(Err(e))) => {
                imp.abort().await;
                return Err(e.into());
            }
            None => {
                imp.abort().await;
                anyhow::bail!("the file's reader stopped");
            }
        }
    }
}
