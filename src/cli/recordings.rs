//! `huifang recordings --client ID [--from DATE] [--to DATE] [--json]`:
//! every call of a client, with its recording when it has one (issue 4,
//! retrieval for compliance).
//!
//! `--json` prints one JSON array; each object has `recording_id`,
//! `call_id`, `client_id`, `task_id`, `started_at`, `answered_at`,
//! `ended_at`, `outcome`, `state`, `sha256`, `bytes`, `duration_ms`,
//! `archive_key`, `retain_until`, `path` (`null` where a call has no
//! recording or the recording is not archived yet). Times in `Z` form.
//! Without `--json`, a table. `--from` and `--to` are UTC dates, both
//! inclusive.

use anyhow::Context;

use super::{Exit, RecordingsArgs};
use crate::config::Config;
use crate::ops::access::Person;
use crate::ops::recordings::{ListCalls, client_calls, day_start};
use crate::store::Store;

/// Runs `huifang recordings`.
pub fn run(args: RecordingsArgs) -> anyhow::Result<Exit> {
    let cfg = Config::load(&args.config)?;
    super::init_logging(&cfg.log.level);
    let from = args.from.as_deref().map(|d| day_start(d, "--from")).transpose()?;
    let to =
        args.to.as_deref().map(|d| day_start(d, "--to")).transpose()?.map(|t| t + chrono::Duration::days(1));
    let rt = tokio::runtime::Runtime::new().context("starting the async runtime")?;
    rt.block_on(async move {
        let store = Store::open(&cfg.database_url()).await?;
        // the same operation as GET /api/v1/clients/{id}/calls
        let q = ListCalls { recorded_only: false, from, to, cursor: None, limit: None };
        let calls = client_calls(&store, &Person::operator("cli"), &args.client, &q).await;
        store.close().await;
        let calls = calls?.items;
        if args.json {
            println!("{}", serde_json::to_string_pretty(&calls)?);
        } else {
            println!(
                "{:<24}  {:<36}  {:<36}  {:<11}  {:<17}  {:>9}  {:<64}  ARCHIVE KEY",
                "STARTED", "CALL", "RECORDING", "STATE", "OUTCOME", "MS", "SHA-256"
            );
            for c in &calls {
                let dash = || "-".to_string();
                println!(
                    "{:<24}  {:<36}  {:<36}  {:<11}  {:<17}  {:>9}  {:<64}  {}",
                    crate::audit::time_text(c.started_at),
                    c.call_id,
                    c.recording_id.map(|r| r.to_string()).unwrap_or_else(dash),
                    c.state.clone().unwrap_or_else(dash),
                    c.outcome.clone().unwrap_or_else(dash),
                    c.duration_ms.map(|d| d.to_string()).unwrap_or_else(dash),
                    c.sha256.clone().unwrap_or_else(dash),
                    c.archive_key.clone().unwrap_or_else(dash),
                );
            }
            eprintln!("{} call(s)", calls.len());
        }
        Ok(Exit::Ok)
    })
}
