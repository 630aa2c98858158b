//! `huifang tasks [--status S] [--kind K] [--client ID] [--format F]`: the
//! callback tasks, by due date and priority. JSON prints every column of
//! the task, its reason included.

use anyhow::{Context, bail};
use serde_json::json;

use super::output::print;
use super::{Exit, TasksArgs};
use crate::config::Config;
use crate::domain::kinds::TaskKind;
use crate::store::{Store, TaskFilter};

/// Runs `huifang tasks`.
pub fn run(args: TasksArgs) -> anyhow::Result<Exit> {
    let cfg = Config::load(&args.config)?;
    super::init_logging(&cfg.log.level);
    if let Some(s) = &args.status
        && !["open", "done", "closed"].contains(&s.as_str())
    {
        bail!("--status: {s:?} is not open, done or closed");
    }
    if let Some(k) = &args.kind
        && TaskKind::from_name(k).is_none()
    {
        bail!("--kind: {k:?} is not a task kind");
    }
    let filter = TaskFilter {
        state: args.status.clone(),
        kind: args.kind.clone(),
        client: args.client.clone(),
        ..Default::default()
    };
    let rt = tokio::runtime::Runtime::new().context("starting the async runtime")?;
    let tasks = rt.block_on(async {
        let store = Store::open(&cfg.database_url()).await?;
        let r = store.tasks(&filter).await;
        store.close().await;
        anyhow::Ok(r?)
    })?;
    let rows: Vec<Vec<String>> = tasks
        .iter()
        .map(|t| {
            vec![
                t.id.to_string(),
                t.key.clone(),
                t.kind.clone(),
                t.client_id.clone(),
                t.branch.clone(),
                t.due_on.to_string(),
                t.priority.to_string(),
                t.state.clone(),
                t.outcome.clone().unwrap_or_else(|| "-".into()),
            ]
        })
        .collect();
    print(
        args.format,
        &["ID", "KEY", "KIND", "CLIENT", "BRANCH", "DUE", "PRI", "STATE", "OUTCOME"],
        &rows,
        &json!(tasks),
    )?;
    if args.format == super::Format::Table {
        eprintln!("{} task(s)", tasks.len());
    }
    Ok(Exit::Ok)
}
