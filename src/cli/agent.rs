//! `huifang agent login|logout|pause|resume STAFF_ID [--reason R] [--by S]`:
//! agent sessions, until the web console takes them over.
//!
//! Login checks that the staff member may take callback calls at all: in
//! the staff list, active and not departed, a role in
//! `avoidance.agent_roles`, and a softphone (`sip_uri`) to ring. Every
//! change is stored with who (`--by`, default the agent), when and why
//! (`--reason`), and printed as one line.

use anyhow::{Context, bail};
use chrono::Utc;

use super::output::today;
use super::{AgentAction, AgentArgs, Exit};
use crate::config::Config;
use crate::domain::agents::AgentCommand;
use crate::sip::msg::Uri;
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
        let r = async {
            if cmd == AgentCommand::Login {
                let staff = store.staff().await?;
                let Some(s) = staff.iter().find(|s| s.staff_id == args.staff_id) else {
                    bail!("agent {}: not in the staff list (huifang import staff)", args.staff_id);
                };
                if !s.active || s.left_on.is_some_and(|d| d <= today()) {
                    bail!("agent {}: inactive or departed", s.staff_id);
                }
                if !cfg.avoidance().agent_roles.contains(&s.role) {
                    bail!(
                        "agent {}: a {} may not make callbacks (avoidance.agent_roles)",
                        s.staff_id,
                        s.role
                    );
                }
                let Some(uri) = s.sip_uri.as_deref() else {
                    bail!("agent {}: no softphone (sip_uri) in the staff list", s.staff_id);
                };
                Uri::parse(uri)
                    .map_err(|e| anyhow::anyhow!("agent {}: sip_uri is not a SIP URI: {e}", s.staff_id))?;
            }
            let session =
                store.change_agent(&args.staff_id, cmd, &by, args.reason.as_deref(), Utc::now()).await?;
            println!(
                "agent {} {} by {}{}",
                session.staff_id,
                session.state,
                session.changed_by,
                session.reason.as_deref().map(|r| format!(" ({r})")).unwrap_or_default()
            );
            anyhow::Ok(())
        }
        .await;
        store.close().await;
        r.map(|()| Exit::Ok)
    })
}
