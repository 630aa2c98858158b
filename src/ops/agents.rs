//! Agent sessions: log in, pause, resume, log out (`huifang agent`,
//! `POST /api/v1/agents/{staff_id}/state`), and an agent's state
//! (`GET /api/v1/agents/{staff_id}`).
//!
//! Login checks that the staff member may take callback calls at all: in
//! the staff list, active and not departed, a role in
//! `avoidance.agent_roles`, and a softphone (`sip_uri`) to ring. Every
//! change is stored with who, when and why, and told to the agent's feed
//! (`state`). On the web an agent changes
//! their own state, a supervisor that of the agents of their branches.

use chrono::Utc;

use super::OpsError;
use super::access::{Person, Role, Via};
use crate::config::Config;
use crate::domain::agents::{AgentCommand, AgentState};
use crate::feed::{Event, Hub};
use crate::sip::endpoint::EndpointHandle;
use crate::sip::msg::Uri;
use crate::store::{AgentSession, Store};

/// Whether `p` may see and change `staff_id`'s state.
async fn may_manage(store: &Store, p: &Person, staff_id: &str) -> Result<(), OpsError> {
    if p.via == Via::Cli || p.own_staff() == Some(staff_id) {
        return Ok(());
    }
    if p.has(Role::Supervisor) {
        let staff = store.staff().await?;
        if staff.iter().any(|s| s.staff_id == staff_id && p.supervises(&s.branch)) {
            return Ok(());
        }
    }
    Err(OpsError::Forbidden("not your own state, nor an agent of a branch you supervise".into()))
}

/// Applies `cmd` to `staff_id`'s session, by `by` (a staff id or login),
/// with `reason`, and tells the agent's feed (through `hub`, which also
/// holds the store).
pub async fn change(
    hub: &Hub,
    cfg: &Config,
    p: &Person,
    staff_id: &str,
    cmd: AgentCommand,
    by: &str,
    reason: Option<&str>,
) -> Result<AgentSession, OpsError> {
    let store = hub.store();
    may_manage(store, p, staff_id).await?;
    if cmd == AgentCommand::Login {
        let staff = store.staff().await?;
        let Some(s) = staff.iter().find(|s| s.staff_id == staff_id) else {
            return Err(OpsError::invalid(
                "staff_id",
                format!("agent {staff_id}: not in the staff list (huifang import staff)"),
            ));
        };
        let refuse = |why: String| Err(OpsError::Conflict(format!("agent {}: {why}", s.staff_id)));
        if !s.active || s.left_on.is_some_and(|d| d <= super::today()) {
            return refuse("inactive or departed".into());
        }
        if !cfg.avoidance().agent_roles.contains(&s.role) {
            return refuse(format!("a {} may not make callbacks (avoidance.agent_roles)", s.role));
        }
        let Some(uri) = s.sip_uri.as_deref() else {
            return refuse("no softphone (sip_uri) in the staff list".into());
        };
        if let Err(e) = Uri::parse(uri) {
            return refuse(format!("sip_uri is not a SIP URI: {e}"));
        }
    }
    let session = store.change_agent(staff_id, cmd, by, reason, Utc::now()).await?;
    let ev = Event::State {
        state: session.state.as_str().into(),
        reason: session.reason.clone(),
        by: session.changed_by.clone(),
        since: session.changed_at,
    };
    hub.tell(staff_id, &ev).await;
    Ok(session)
}

/// Brings `staff_id` to the state `target` (`available`, `paused`,
/// `logged_out`) by the command that leads there from where they are:
/// available is a login from logged out and a resume from paused; asking
/// for the state one is in changes nothing. What the agent console's
/// buttons and `POST /api/v1/agent/state` do.
pub async fn go_to(
    hub: &Hub,
    cfg: &Config,
    p: &Person,
    staff_id: &str,
    target: &str,
    reason: Option<&str>,
) -> Result<AgentSession, OpsError> {
    let store = hub.store();
    may_manage(store, p, staff_id).await?;
    let now = store.agent_session(staff_id).await?;
    let cmd = match (target, now.as_ref().map(|a| a.state)) {
        ("available", None | Some(AgentState::LoggedOut)) => Some(AgentCommand::Login),
        ("available", Some(AgentState::Paused)) => Some(AgentCommand::Resume),
        ("available", Some(AgentState::Available)) | ("paused", Some(AgentState::Paused)) => None,
        ("paused", _) => Some(AgentCommand::Pause),
        ("logged_out", None | Some(AgentState::LoggedOut)) => None,
        ("logged_out", _) => Some(AgentCommand::Logout),
        (other, _) => {
            return Err(OpsError::invalid(
                "state",
                format!("{other:?} is not available, paused or logged_out"),
            ));
        }
    };
    let by = p.staff_id.clone().unwrap_or_else(|| p.login.clone());
    match (cmd, now) {
        (Some(cmd), _) => change(hub, cfg, p, staff_id, cmd, &by, reason).await,
        (None, Some(session)) => Ok(session),
        (None, None) => Err(OpsError::Conflict(format!("agent {staff_id} has never logged in"))),
    }
}

/// Whether `staff_id`'s softphone is registered to the built-in registrar
/// now; `None` when that cannot be told (a switch is used, no endpoint
/// here, or no softphone in the staff list).
pub async fn registered(
    store: &Store,
    endpoint: Option<&EndpointHandle>,
    staff_id: &str,
) -> Result<Option<bool>, crate::store::StoreError> {
    let Some(ep) = endpoint.filter(|e| e.switch_transport().is_none()) else { return Ok(None) };
    let staff = store.staff().await?;
    let uri = staff.iter().find(|s| s.staff_id == staff_id).and_then(|s| s.sip_uri.as_deref());
    let Some(uri) = uri.and_then(|u| Uri::parse(u).ok()) else { return Ok(None) };
    Ok(Some(ep.resolve(&uri).await.is_some()))
}

/// `staff_id`'s session, if they ever logged in.
pub async fn session(store: &Store, p: &Person, staff_id: &str) -> Result<Option<AgentSession>, OpsError> {
    may_manage(store, p, staff_id).await?;
    Ok(store.agent_session(staff_id).await?)
}
