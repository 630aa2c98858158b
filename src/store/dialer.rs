//! The dialer's tables: agent sessions and their trace (`agent_sessions`,
//! `agent_events`), the dialer's columns of `tasks`, and the instances'
//! heartbeats (`dialer_instances`). Schema:
//! `migrations/*/20261130060000_dialer.sql`.
//!
//! ## Agent sessions
//! [`Store::change_agent`] applies one [`AgentCommand`] in a transaction
//! (the state machine is `domain::agents::transition`): the row is read
//! (locked on PostgreSQL), moved, and the change is appended to
//! `agent_events` with who, when and why. An agent is **on call** while an
//! instance holds the row's call lease (`call_owner`, `call_task`,
//! `call_until`); see the claim below.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::callbacks::{DbRow, Tx, V, ot, t};
use super::error::query;
use super::{Store, StoreError, ms};
use crate::domain::agents::{AgentCommand, AgentState, Presence, transition};

/// An agent's session, as stored.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct AgentSession {
    /// The agent (a staff id).
    pub staff_id: String,
    /// The stored state.
    pub state: AgentState,
    /// Why the last change was made (a pause reason), if given.
    pub reason: Option<String>,
    /// Who made the last change (a staff id, or `dialer@INSTANCE`).
    pub changed_by: String,
    /// When.
    pub changed_at: DateTime<Utc>,
    /// The instance holding the agent for a call or its wrap-up.
    pub call_owner: Option<String>,
    /// The task of the running call (none during wrap-up).
    pub call_task: Option<Uuid>,
    /// Until when the instance holds the agent (renewed while the call runs).
    pub call_until: Option<DateTime<Utc>>,
    /// When the agent's last call ended.
    pub last_call_ended_at: Option<DateTime<Utc>>,
}

impl AgentSession {
    /// What the agent is doing at `now`: on a call, in wrap-up, or the
    /// stored state (a lease that expired counts for nothing).
    pub fn presence(&self, now: DateTime<Utc>) -> Presence {
        match self.call_until {
            Some(until) if until > now && self.call_task.is_some() => Presence::OnCall,
            Some(until) if until > now => Presence::WrapUp,
            _ => Presence::Idle(self.state),
        }
    }
}

impl serde::Serialize for AgentState {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

/// One change of an agent's state.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct AgentEvent {
    /// Order of the events.
    pub id: i64,
    /// The agent.
    pub staff_id: String,
    /// When.
    pub at: DateTime<Utc>,
    /// The state before (none for the first login).
    pub from_state: Option<String>,
    /// The state after (`on_call` when a call starts).
    pub to_state: String,
    /// Who (a staff id or `dialer@INSTANCE`).
    pub by: String,
    /// Why.
    pub reason: Option<String>,
    /// The task, for call starts and automatic pauses.
    pub task_id: Option<Uuid>,
}

pub(super) const SESSION_COLUMNS: &str =
    "staff_id, state, reason, changed_by, changed_at, call_owner, call_task, call_until, last_call_ended_at";

pub(super) fn session_row(r: &DbRow) -> Result<AgentSession, sqlx::Error> {
    let state = r.text("state")?;
    Ok(AgentSession {
        staff_id: r.text("staff_id")?,
        state: AgentState::from_name(&state)
            .ok_or_else(|| super::callbacks::bad("state", "unknown state"))?,
        reason: r.opt_text("reason")?,
        changed_by: r.text("changed_by")?,
        changed_at: r.time("changed_at")?,
        call_owner: r.opt_text("call_owner")?,
        call_task: r.opt_id("call_task")?,
        call_until: r.opt_time("call_until")?,
        last_call_ended_at: r.opt_time("last_call_ended_at")?,
    })
}

fn event_row(r: &DbRow) -> Result<AgentEvent, sqlx::Error> {
    Ok(AgentEvent {
        id: r.int("id")?,
        staff_id: r.text("staff_id")?,
        at: r.time("at")?,
        from_state: r.opt_text("from_state")?,
        to_state: r.text("to_state")?,
        by: r.text("by")?,
        reason: r.opt_text("reason")?,
        task_id: r.opt_id("task_id")?,
    })
}

/// An agent event to append.
pub(super) struct NewEvent<'a> {
    pub(super) staff_id: &'a str,
    pub(super) at: DateTime<Utc>,
    pub(super) from: Option<&'a str>,
    pub(super) to: &'a str,
    pub(super) by: &'a str,
    pub(super) reason: Option<&'a str>,
    pub(super) task: Option<Uuid>,
}

/// Appends one agent event in `tx`.
pub(super) async fn add_event(tx: &mut Tx, e: NewEvent<'_>) -> Result<(), sqlx::Error> {
    let sql = "INSERT INTO agent_events (staff_id, at, from_state, to_state, by, reason, task_id) \
               VALUES ($1, $2, $3, $4, $5, $6, $7)";
    let args = vec![
        t(e.staff_id),
        V::Time(Some(ms(e.at))),
        ot(e.from),
        t(e.to),
        t(e.by),
        ot(e.reason),
        V::OptId(e.task),
    ];
    tx.exec(sql, args).await?;
    Ok(())
}

impl Store {
    /// The agent's session, if the agent ever logged in.
    pub async fn agent_session(&self, staff_id: &str) -> Result<Option<AgentSession>, StoreError> {
        let sql = format!("SELECT {SESSION_COLUMNS} FROM agent_sessions WHERE staff_id = $1");
        let rows = self.read(&sql, vec![t(staff_id)]).await.map_err(query("agent_session"))?;
        rows.first().map(session_row).transpose().map_err(query("agent_session"))
    }

    /// Every agent session, by staff id.
    pub async fn agent_sessions(&self) -> Result<Vec<AgentSession>, StoreError> {
        let sql = format!("SELECT {SESSION_COLUMNS} FROM agent_sessions ORDER BY staff_id");
        let rows = self.read(&sql, vec![]).await.map_err(query("agent_sessions"))?;
        rows.iter().map(session_row).collect::<Result<_, _>>().map_err(query("agent_sessions"))
    }

    /// The agent's state changes, oldest first.
    pub async fn agent_events(&self, staff_id: &str) -> Result<Vec<AgentEvent>, StoreError> {
        let sql = "SELECT id, staff_id, at, from_state, to_state, by, reason, task_id FROM agent_events \
                   WHERE staff_id = $1 ORDER BY id";
        let rows = self.read(sql, vec![t(staff_id)]).await.map_err(query("agent_events"))?;
        rows.iter().map(event_row).collect::<Result<_, _>>().map_err(query("agent_events"))
    }

    /// Applies `cmd` to the agent's session at `at`, by `by` (a staff id,
    /// or the dialer), for `reason`; the change is traced in
    /// `agent_events`. A command that does not apply (pause while logged
    /// out, …) is [`StoreError::Refused`] and changes nothing; an unknown
    /// staff id is [`StoreError::Missing`]. A running call is not touched:
    /// an agent who pauses or logs out finishes it and is not offered the
    /// next one.
    pub async fn change_agent(
        &self,
        staff_id: &str,
        cmd: AgentCommand,
        by: &str,
        reason: Option<&str>,
        at: DateTime<Utc>,
    ) -> Result<AgentSession, StoreError> {
        let op = "change_agent";
        if by.trim().is_empty() {
            return Err(StoreError::Invalid { what: "who changes the agent (empty)" });
        }
        let known = self.read("SELECT staff_id FROM staff WHERE staff_id = $1", vec![t(staff_id)]).await;
        if known.map_err(query(op))?.is_empty() {
            return Err(StoreError::Missing { what: "staff member", key: staff_id.to_string() });
        }
        let at = ms(at);
        let mut tx = self.begin().await.map_err(query(op))?;
        let r = change_in(&mut tx, staff_id, cmd, by, reason, at).await;
        match r {
            Ok(()) => tx.commit().await.map_err(query(op))?,
            Err(e) => {
                let _ = tx.rollback().await;
                return Err(e);
            }
        }
        self.agent_session(staff_id)
            .await?
            .ok_or_else(|| StoreError::Missing { what: "agent session", key: staff_id.to_string() })
    }
}

async fn change_in(
    tx: &mut Tx,
    staff_id: &str,
    cmd: AgentCommand,
    by: &str,
    reason: Option<&str>,
    at: DateTime<Utc>,
) -> Result<(), StoreError> {
    let op = "change_agent";
    let lock = if tx.is_pg() { " FOR UPDATE" } else { "" };
    let rows = tx
        .all(&format!("SELECT state FROM agent_sessions WHERE staff_id = $1{lock}"), vec![t(staff_id)])
        .await
        .map_err(query(op))?;
    let from = match rows.first() {
        Some(r) => {
            let s = r.text("state").map_err(query(op))?;
            Some(AgentState::from_name(&s).ok_or_else(|| StoreError::Refused(format!("unknown state {s}")))?)
        }
        None => None,
    };
    let to = transition(from, cmd)
        .map_err(|e| StoreError::Refused(format!("agent {staff_id}: {} refused: {e}", cmd.as_str())))?;
    let n = match from {
        None => tx
            .exec(
                "INSERT INTO agent_sessions (staff_id, state, reason, changed_by, changed_at) \
                 VALUES ($1, $2, $3, $4, $5)",
                vec![t(staff_id), t(to.as_str()), ot(reason), t(by), V::Time(Some(at))],
            )
            .await
            .map_err(query(op))?,
        Some(old) => tx
            .exec(
                "UPDATE agent_sessions SET state = $2, reason = $3, changed_by = $4, changed_at = $5 \
                 WHERE staff_id = $1 AND state = $6",
                vec![t(staff_id), t(to.as_str()), ot(reason), t(by), V::Time(Some(at)), t(old.as_str())],
            )
            .await
            .map_err(query(op))?,
    };
    if n == 0 {
        return Err(StoreError::Refused(format!("agent {staff_id} changed meanwhile: try again")));
    }
    let event = NewEvent {
        staff_id,
        at,
        from: from.map(AgentState::as_str),
        to: to.as_str(),
        by,
        reason,
        task: None,
    };
    add_event(tx, event).await.map_err(query(op))?;
    Ok(())
}
