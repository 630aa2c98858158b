//! `huifang task mark TASK wrong-number|refused --by STAFF_ID`: the agent
//! found a wrong number, or the client refuses the callback. The task is
//! closed with that outcome, and who did it is kept on the task
//! (`closed_by`). A task that is not open stays as it is.

use anyhow::{Context, bail};
use chrono::Utc;
use uuid::Uuid;

use super::{Exit, MarkAs, TaskAction, TaskArgs};
use crate::config::Config;
use crate::domain::records::Outcome;
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
        let r = async {
            if !store.staff().await?.iter().any(|s| s.staff_id == a.by) {
                bail!("--by {}: not in the staff list", a.by);
            }
            let task = match Uuid::parse_str(&a.task) {
                Ok(id) => store.task(id).await?,
                Err(_) => store.task_by_key(&a.task).await?,
            };
            let t = store.mark_task(task.id, outcome, &a.by, Utc::now()).await?;
            println!("task {} closed: {} (by {})", t.key, outcome.as_str(), a.by);
            anyhow::Ok(())
        }
        .await;
        store.close().await;
        r.map(|()| Exit::Ok)
    })
}
