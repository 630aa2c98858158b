//! `huifang task mark TASK wrong-number|refused --by STAFF_ID`: the agent
//! found a wrong number, or the client refuses the callback. The task is
//! closed with that outcome, and who did it is kept on the task
//! (`closed_by`). A task that is not open stays as it is.

use anyhow::Context;

use super::{Exit, MarkAs, TaskAction, TaskArgs};
use crate::config::Config;
use crate::domain::records::Outcome;
use crate::ops::access::Person;
use crate::ops::tasks;
use crate::store::Store;

/// Runs `huifang task`.
pub fn run(args: TaskArgs) -> anyhow::Result<Exit> {
    let TaskAction::Mark(a) = args.action;
    let cfg = Config::load(&a.config)?;
    super::init_logging(&cfg.log.level);
    let outcome = match a.outcome {
        MarkAs::WrongNumber => Outcome::WrongNumber,
        MarkAs::Refused => Outcome::Refused,
    };
    let rt = tokio::runtime::Runtime::new().context("starting the async runtime")?;
    rt.block_on(async {
        let store = Store::open(&cfg.database_url()).await?;
        let r = tasks::mark(&store, &Person::operator(&a.by), &a.task, outcome, &a.by).await;
        if let Ok(t) = &r {
            println!("task {} closed: {} (by {})", t.key, outcome.as_str(), a.by);
        }
        store.close().await;
        r.map(|_| Exit::Ok).map_err(super::output::flagged)
    })
}
