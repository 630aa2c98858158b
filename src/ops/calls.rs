//! Calls placed by hand, and callbacks at the client's time
//! (`POST /api/v1/calls`, `POST /api/v1/tasks/{id}/call-back`).
//!
//! - [`call_now`] hands one task to the running dialer for one agent: the
//!   same claim (the agent's row and the task's lease in one
//!   transaction), avoidance (E7) at the claim and again right before the
//!   INVITE, the screen-pop and progress on the agent's feed, the trace,
//!   the recording and the retry rules as for the dialer's own calls
//!   ([`crate::dialer::DialerHandle::call_now`]). An agent calls for
//!   themselves; a supervisor for an agent of their branches, and may
//!   override a shut calling window with a reason (audited,
//!   `call.window_overridden`). It answers as soon as the call is placed.
//! - [`call_back_at`] sets a task's next attempt to the time the client
//!   asked for (audited, `task.rescheduled`); the dialer calls then, within
//!   the calling windows.

use chrono::{DateTime, Utc};
use serde_json::json;
use uuid::Uuid;

use super::OpsError;
use super::access::{Person, Role};
use crate::audit::{AuditAction, AuditEvent};
use crate::dialer::{DialerHandle, ManualRefused};
use crate::store::Store;

/// What was placed.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Placed {
    /// The call (its trace is `GET /api/v1/calls/{id}`).
    pub call_id: Uuid,
    /// The task.
    pub task_id: Uuid,
    /// The agent whose phone rings first.
    pub agent_id: String,
}

/// Places a call for `task` (id or key) now, for `agent` (an agent: only
/// themselves; a supervisor: an agent of their branches).
pub async fn call_now(
    store: &Store,
    dialer: Option<&DialerHandle>,
    p: &Person,
    task: &str,
    agent: Option<&str>,
    override_window: Option<&str>,
) -> Result<Placed, OpsError> {
    p.require_any(&[Role::Agent, Role::Supervisor])?;
    let t = super::tasks::find(store, task).await?;
    let agent = match (agent, p.own_staff()) {
        (None, Some(me)) if p.has(Role::Agent) => me.to_string(),
        (None, _) => return Err(OpsError::invalid("agent_id", "name the agent whose phone rings first")),
        (Some(a), _) => a.to_string(),
    };
    let own = p.has(Role::Agent) && p.own_staff() == Some(agent.as_str());
    let staff = store.staff().await?;
    let row = staff
        .iter()
        .find(|s| s.staff_id == agent)
        .ok_or_else(|| OpsError::invalid("agent_id", format!("{agent}: not in the staff list")))?;
    let supervised = p.has(Role::Supervisor) && p.supervises(&row.branch);
    if !own && !supervised {
        return Err(OpsError::Forbidden(if p.has(Role::Supervisor) {
            format!("{agent} is not an agent of a branch you supervise")
        } else {
            "an agent places calls for themselves only".into()
        }));
    }
    let override_window = match override_window.map(str::trim) {
        None | Some("") => None,
        Some(_) if !supervised => {
            return Err(OpsError::Forbidden("only a supervisor overrides the calling window".into()));
        }
        Some(r) => Some(r.to_string()),
    };
    let dialer = dialer.ok_or_else(|| {
        OpsError::Conflict("the dialer does not run in this serve (dialer.enabled = false)".into())
    })?;
    match dialer.call_now(t.id, &agent, &p.login, override_window).await {
        Ok(call_id) => Ok(Placed { call_id, task_id: t.id, agent_id: agent }),
        Err(e) => Err(refusal(e)),
    }
}

fn refusal(e: ManualRefused) -> OpsError {
    let code = match &e {
        ManualRefused::Avoidance(_) => return OpsError::Rule { code: "avoidance", reason: e.to_string() },
        ManualRefused::Failed(why) => return OpsError::Internal(why.clone()),
        ManualRefused::WindowShut(_) => "window-shut",
        ManualRefused::AgentBusy(_) => "agent-busy",
        ManualRefused::LinesFull(_) => "lines-full",
        ManualRefused::NotRegistered(_) | ManualRefused::NoPhone(_) => "not-registered",
        ManualRefused::Task(_) => "task-not-callable",
    };
    OpsError::State { code, reason: e.to_string() }
}

/// Sets `task`'s next attempt to `at` (the client asked to be called back
/// then): its assigned agent, or a supervisor of its branch. The dialer
/// calls it then, within the calling windows.
pub async fn call_back_at(store: &Store, p: &Person, task: &str, at: DateTime<Utc>) -> Result<(), OpsError> {
    p.require_any(&[Role::Agent, Role::Supervisor])?;
    let t = super::tasks::find(store, task).await?;
    let own = p.own_staff().is_some_and(|s| t.assigned_agent.as_deref() == Some(s));
    if !own && !p.supervises(&t.branch) {
        return Err(OpsError::Forbidden("not a task assigned to you, nor of a branch you supervise".into()));
    }
    let now = Utc::now();
    if at < now - chrono::Duration::minutes(1) || at > now + chrono::Duration::days(90) {
        return Err(OpsError::invalid("at", "from now to 90 days ahead"));
    }
    if t.state != "open" {
        return Err(OpsError::State {
            code: "task-not-callable",
            reason: format!("task {} is {}", t.key, t.state),
        });
    }
    let e = AuditEvent::new(
        &p.login,
        AuditAction::TaskRescheduled,
        t.id,
        json!({"key": t.key, "next_attempt_at": crate::audit::time_text(at), "address": p.address}),
    );
    store.append_audit(&e).await?;
    store.reschedule_task(t.id, at).await?;
    Ok(())
}
