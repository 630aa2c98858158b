//! `huifang agent login|logout|pause|resume STAFF_ID [--reason R] [--by S]`:
//! the CLI's door onto [`crate::ops::agents`]. Every change is stored with
//! who (`--by`, default the agent), when and why (`--reason`), and printed
//! as one line.

use anyhow::Context;

use crate::feed::Hub;

use super::{AgentAction, AgentArgs, Exit};
use crate::config::Config;
use crate::domain::agents::AgentCommand;
use crate::ops::access::Person;
use crate::ops::agents;
use crate::store::Store;

/// Runs `huifang agent`.
pub fn run(args: AgentArgs) -> anyhow::Result<Exit> {
    let cfg = Config::load(&args.config)?;
    super::init_logging(&cfg.log.level);
    let cmd = match args.action {
        AgentAction::Login => AgentCommand::Login,
        AgentAction::Logout => AgentCommand::Logout,
        AgentAction::Pause => AgentCommand::Pause,
        AgentAction::Resume => AgentCommand::Resume,
    };
    let by = args.by.clone().unwrap_or_else(|| args.staff_id.clone());
    let rt = tokio::runtime::Runtime::new().context("starting the async runtime")?;
    rt.block_on(async {
        let store = Store::open(&cfg.database_url()).await?;
        let hub = Hub::new(store.clone(), format!("cli@{}", cfg.instance_id()));
        let r = agents::change(
            &hub,
            &cfg,
            &Person::operator(&by),
            &args.staff_id,
            cmd,
            &by,
            args.reason.as_deref(),
        )
        .await;
        if let Ok(session) = &r {
            println!(
                "agent {} {} by {}{}",
                session.staff_id,
                session.state,
                session.changed_by,
                session.reason.as_deref().map(|r| format!(" ({r})")).unwrap_or_default()
            );
        }
        store.close().await;
        r.map(|_| Exit::Ok).map_err(super::output::flagged)
    })
}
