//! `huifang tasks [--status S] [--kind K] [--client ID] [--format F]`: the
//! callback tasks, by due date and priority. JSON prints every column of
//! the task, its reason included.

use anyhow::Context;
use serde_json::json;

use super::output::print;
use super::{Exit, TasksArgs};
use crate::config::Config;
use crate::ops::access::Person;
use crate::ops::tasks::{self, ListTasks};
use crate::store::Store;

/// Runs `huifang tasks`.
pub fn run(args: TasksArgs) -> anyhow::Result<Exit> {
    let cfg = Config::load(&args.config)?;
    super::init_logging(&cfg.log.level);
    let q = ListTasks {
        state: args.status.clone(),
        kind: args.kind.clone(),
        client: args.client.clone(),
        ..Default::default()
    };
    let rt = tokio::runtime::Runtime::new().context("starting the async runtime")?;
    let tasks = rt
        .block_on(async {
            let store = Store::open(&cfg.database_url()).await?;
            let r = tasks::list(&store, &Person::operator("cli"), &q).await;
            store.close().await;
            r.map_err(super::output::flagged)
        })?
        .items;
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
