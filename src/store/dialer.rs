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

use super::callbacks::{CLIENTS, DbRow, TASK_COLUMNS, TaskRow, Tx, V, client_row, ot, t, task_row};
use super::error::query;
use super::{Store, StoreError, ms};
use crate::domain::agents::{AgentCommand, AgentState, Presence, transition};
use crate::domain::dialing::Next;
use crate::domain::facts::Client;
use crate::domain::records::Outcome as RecordOutcome;

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

// ---------------------------------------------------------------- claims
//
// ## Claiming (several instances, one queue)
// [`Store::claim_task`] runs one transaction (SQLite: `BEGIN IMMEDIATE`,
// the one write lock; PostgreSQL: row locks):
// 1. the agent's row is taken — only if the agent is `available` and no
//    instance holds it (`call_until` empty or past) — so two instances
//    never offer one agent two calls;
// 2. ready tasks are read in the dialer's order (due date, the kind's
//    priority stored with the task, age), a page at a time, `FOR UPDATE SKIP
//    LOCKED` on PostgreSQL so that instances claiming at once skip each
//    other's rows instead of waiting; each is offered to the caller's
//    check (avoidance, E7) with its client;
// 3. the first that passes gets the lease (`lease_owner` = the instance,
//    `lease_until`), the agent's row names the task, and the agent's
//    trace says `on_call`.
// Nothing found: the transaction is rolled back and the agent stays free.
// A task whose lease expired (its instance died) is ready again; its
// dead call, if any, is closed as `interrupted` in the same transaction.
//
// Leases are renewed while the call runs ([`Store::renew_lease`]) and
// given back by [`Store::finish_attempt`] (after the call),
// [`Store::release_claim`] (no call placed) or [`Store::release_instance`]
// (shutdown). Times are the callers' clocks: instances sharing a database
// need synchronised clocks (NTP), well within `lease_secs`.

/// Ready tasks read in the first page of a claim.
const FIRST_PAGE: i64 = 4;
/// Ready tasks read per further page while looking for one an agent may call.
const PAGE: i64 = 64;
/// Ready tasks looked at, at most, per claim.
const MAX_SCAN: i64 = 2048;

/// What a claim needs.
#[derive(Debug, Clone)]
pub struct ClaimSpec<'a> {
    /// The claiming instance.
    pub instance: &'a str,
    /// The agent to find a task for.
    pub agent: &'a str,
    /// Now (the lease clock).
    pub now: DateTime<Utc>,
    /// End of the lease to take.
    pub lease_until: DateTime<Utc>,
}

/// A task claimed for an agent.
#[derive(Debug, Clone)]
pub struct Claimed {
    /// The task (its lease taken).
    pub task: TaskRow,
    /// Its client.
    pub client: Client,
    /// Open calls of another instance for this task, closed as
    /// `interrupted` because that instance's lease had expired.
    pub abandoned_calls: u64,
    /// The claim's time (`ClaimSpec::now`).
    pub claimed_at: DateTime<Utc>,
}

/// How a claim went.
#[derive(Debug, Clone)]
pub enum ClaimResult {
    /// The agent is not available (paused, logged out, or held by an
    /// instance for a call or its wrap-up).
    AgentBusy,
    /// No ready task this agent may call; `refused` tasks were ready but
    /// refused by the check.
    NoTask {
        /// Ready tasks the check refused.
        refused: usize,
    },
    /// Claimed.
    Claimed(Box<Claimed>),
}

/// The end of an attempt, for [`Store::finish_attempt`].
#[derive(Debug, Clone)]
pub struct AttemptEnd<'a> {
    /// The instance that held the lease.
    pub instance: &'a str,
    /// The task.
    pub task: Uuid,
    /// The agent.
    pub agent: &'a str,
    /// The call placed (none if the call was never traced).
    pub call_id: Option<Uuid>,
    /// Its outcome (`completed`, `no-answer`, …).
    pub outcome: &'a str,
    /// Counted attempts after this one.
    pub attempts: u32,
    /// What next.
    pub next: Next,
    /// When the call ended.
    pub now: DateTime<Utc>,
    /// Hold the agent for wrap-up until then (none: free at once).
    pub wrap_up_until: Option<DateTime<Utc>>,
    /// Pause the agent (a state change traced with this reason).
    pub pause_reason: Option<&'a str>,
}

/// How the task stood when its attempt was written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AttemptWritten {
    /// Moved as asked.
    Moved,
    /// The task was closed meanwhile (a record, `task mark`): only the
    /// call was noted and the lease given back.
    AlreadyFinished,
    /// Another instance holds the task now (this one's lease expired):
    /// nothing was changed on the task.
    LeaseLost,
}

/// A dialer instance's state, for `huifang status`.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct DialerBeat {
    /// The instance.
    pub instance_id: String,
    /// `dialing`, `idle`, `full`, `closed`, `stopping`, `stopped`, …
    pub state: String,
    /// Why, in words (no personal data).
    pub detail: Option<String>,
    /// When it started.
    pub started_at: DateTime<Utc>,
    /// Its last heartbeat.
    pub heartbeat_at: DateTime<Utc>,
    /// Calls in progress.
    pub active_calls: u64,
    /// Calls placed since it started.
    pub calls_placed: u64,
    /// Its last error, if the last step failed.
    pub last_error: Option<String>,
    /// huifang's version.
    pub version: String,
}

/// The queue at a glance.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct QueueDepth {
    /// Open tasks that may be dialed now.
    pub ready: u64,
    /// Open tasks waiting for their next attempt.
    pub waiting_retry: u64,
    /// Open tasks with a call in progress (a valid lease).
    pub in_call: u64,
    /// Open tasks whose call completed, waiting for the record.
    pub awaiting_record: u64,
    /// Of those, waiting longer than `dialer.record_due_secs`.
    pub record_overdue: u64,
}

/// Ready tasks in the dialer's order (`domain::dialing::queue_order`): due
/// date (so overdue first), priority, age, key — the order of the partial
/// index `tasks_dial_queue`, so the scan stops at the page's end.
fn ready_sql(pg: bool) -> String {
    format!(
        "SELECT {TASK_COLUMNS} FROM tasks WHERE state = 'open' AND awaiting_record_since IS NULL \
         AND (next_attempt_at IS NULL OR next_attempt_at <= $1) AND (lease_until IS NULL OR lease_until <= $1) \
         ORDER BY due_on, priority, created_at, idempotency_key LIMIT $2 OFFSET $3{}",
        if pg { " FOR UPDATE SKIP LOCKED" } else { "" }
    )
}

/// One task by id (`$4`), open, not waiting for its record and not leased,
/// whatever its next attempt time: a call placed by hand.
fn this_sql(pg: bool) -> String {
    format!(
        "SELECT {TASK_COLUMNS} FROM tasks WHERE id = $4 AND state = 'open' AND awaiting_record_since IS NULL \
         AND (lease_until IS NULL OR lease_until <= $1) LIMIT $2 OFFSET $3{}",
        if pg { " FOR UPDATE SKIP LOCKED" } else { "" }
    )
}

impl Store {
    /// Claims task `task` for `spec.agent`, now, whatever its next attempt
    /// time (a call placed by hand, `POST /api/v1/calls`): the agent's row
    /// and the task's lease in one transaction, as [`claim_task`]
    /// (Self::claim_task) does. [`ClaimResult::NoTask`] when the task is
    /// not open, waits for its record or is leased (`refused` 0), or when
    /// `eligible` refuses it (E7, `refused` 1).
    pub async fn claim_this_task(
        &self,
        spec: &ClaimSpec<'_>,
        task: Uuid,
        eligible: &mut (dyn FnMut(&TaskRow, &Client) -> bool + Send),
    ) -> Result<ClaimResult, StoreError> {
        self.claim_with(spec, Some(task), eligible).await
    }

    /// Claims the next ready task `spec.agent` may call (see the section
    /// above); `eligible` is asked about each ready task in order, with
    /// its client, and decides (E7). Tasks whose client is missing are
    /// skipped.
    pub async fn claim_task(
        &self,
        spec: &ClaimSpec<'_>,
        eligible: &mut (dyn FnMut(&TaskRow, &Client) -> bool + Send),
    ) -> Result<ClaimResult, StoreError> {
        self.claim_with(spec, None, eligible).await
    }

    async fn claim_with(
        &self,
        spec: &ClaimSpec<'_>,
        only: Option<Uuid>,
        eligible: &mut (dyn FnMut(&TaskRow, &Client) -> bool + Send),
    ) -> Result<ClaimResult, StoreError> {
        let op = "claim_task";
        let mut tx = self.begin().await.map_err(query(op))?;
        let r = claim_in(&mut tx, spec, only, eligible).await;
        match r {
            Ok(ClaimResult::Claimed(c)) => {
                tx.commit().await.map_err(query(op))?;
                Ok(ClaimResult::Claimed(c))
            }
            Ok(other) => {
                tx.rollback().await.map_err(query(op))?;
                Ok(other)
            }
            Err(e) => {
                let _ = tx.rollback().await;
                Err(e)
            }
        }
    }

    /// Extends the lease of a task whose call runs, and the hold on its
    /// agent. `false` when this instance no longer holds the task (its
    /// lease expired and another instance took it).
    pub async fn renew_lease(
        &self,
        instance: &str,
        task: Uuid,
        agent: &str,
        until: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let op = "renew_lease";
        let until = V::Time(Some(ms(until)));
        let n = self
            .write(
                "UPDATE tasks SET lease_until = $3 WHERE id = $1 AND lease_owner = $2",
                vec![V::Id(task), t(instance), until.clone()],
            )
            .await
            .map_err(query(op))?;
        self.write(
            "UPDATE agent_sessions SET call_until = $3 WHERE staff_id = $1 AND call_owner = $2",
            vec![t(agent), t(instance), until],
        )
        .await
        .map_err(query(op))?;
        Ok(n > 0)
    }

    /// Writes how an attempt ended, in one transaction: the task's
    /// attempts, last call and next step (wait for the record, retry at,
    /// or closed `unreachable`), its lease given back; the agent freed (or
    /// held for wrap-up) and, when asked, paused with the reason traced.
    pub async fn finish_attempt(&self, end: &AttemptEnd<'_>) -> Result<AttemptWritten, StoreError> {
        let op = "finish_attempt";
        let mut tx = self.begin().await.map_err(query(op))?;
        match finish_in(&mut tx, end).await {
            Ok(w) => {
                tx.commit().await.map_err(query(op))?;
                Ok(w)
            }
            Err(e) => {
                let _ = tx.rollback().await;
                Err(e)
            }
        }
    }

    /// Gives a claim back without a call (the check failed at dial time,
    /// or the call could not be placed): the task is ready again at
    /// `retry_at` (now if `None`), the agent is freed, with `why` traced.
    pub async fn release_claim(
        &self,
        instance: &str,
        task: Uuid,
        agent: &str,
        now: DateTime<Utc>,
        retry_at: Option<DateTime<Utc>>,
        why: &str,
    ) -> Result<(), StoreError> {
        let op = "release_claim";
        let mut tx = self.begin().await.map_err(query(op))?;
        let r = async {
            tx.exec(
                "UPDATE tasks SET lease_owner = NULL, lease_until = NULL, \
                 next_attempt_at = COALESCE($3, next_attempt_at) WHERE id = $1 AND lease_owner = $2",
                vec![V::Id(task), t(instance), V::Time(retry_at.map(ms))],
            )
            .await?;
            free_agent(&mut tx, instance, agent, ms(now), None, Some(task), why).await
        }
        .await;
        match r {
            Ok(()) => tx.commit().await.map_err(query(op)),
            Err(e) => {
                let _ = tx.rollback().await;
                Err(query(op)(e))
            }
        }
    }

    /// The latest call of `task` when it has an outcome the task has not
    /// taken (`last_call_id` names another call, or none): a crash came
    /// between the call's end and the dialer's write-back of its attempt.
    pub async fn unwritten_call(
        &self,
        task: Uuid,
        last_call_id: Option<Uuid>,
    ) -> Result<Option<super::CallRow>, StoreError> {
        // a task has a handful of calls at most (its attempts)
        let Some(id) = self.task_calls(task).await?.pop() else { return Ok(None) };
        if Some(id) == last_call_id {
            return Ok(None);
        }
        let call = self.get_call(id).await?;
        Ok(call.outcome.is_some().then_some(call))
    }

    /// Gives back every lease `instance` holds (tasks and agents): at the
    /// end of shutdown, after its calls ended. Returns the tasks released.
    pub async fn release_instance(&self, instance: &str) -> Result<u64, StoreError> {
        let op = "release_instance";
        let n = self
            .write(
                "UPDATE tasks SET lease_owner = NULL, lease_until = NULL WHERE lease_owner = $1",
                vec![t(instance)],
            )
            .await
            .map_err(query(op))?;
        self.write(
            "UPDATE agent_sessions SET call_owner = NULL, call_task = NULL, call_until = NULL WHERE call_owner = $1",
            vec![t(instance)],
        )
        .await
        .map_err(query(op))?;
        Ok(n)
    }

    /// Agents logged in and `available` whom no instance holds at `now`,
    /// with their softphones (staff `sip_uri`), longest idle first.
    pub async fn free_agents(&self, now: DateTime<Utc>) -> Result<Vec<(String, Option<String>)>, StoreError> {
        let rows = self
            .read(
                "SELECT a.staff_id, s.sip_uri FROM agent_sessions a JOIN staff s ON s.staff_id = a.staff_id \
                 WHERE a.state = 'available' AND (a.call_until IS NULL OR a.call_until <= $1) \
                 ORDER BY CASE WHEN a.last_call_ended_at IS NULL THEN 0 ELSE 1 END, a.last_call_ended_at, a.staff_id",
                vec![V::Time(Some(ms(now)))],
            )
            .await
            .map_err(query("free_agents"))?;
        rows.iter()
            .map(|r| Ok((r.text("staff_id")?, r.opt_text("sip_uri")?)))
            .collect::<Result<_, sqlx::Error>>()
            .map_err(query("free_agents"))
    }

    /// Pauses an available agent on the dialer's behalf (e.g. the agent's
    /// softphone is not registered), traced like any change. `false` when
    /// the agent was not available.
    pub async fn pause_agent(
        &self,
        staff_id: &str,
        by: &str,
        reason: &str,
        at: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        match self.change_agent(staff_id, AgentCommand::Pause, by, Some(reason), at).await {
            Ok(_) => Ok(true),
            Err(StoreError::Refused(_)) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Sets an open task's next attempt to `at` (the client asked to be
    /// called back then), and stops waiting for a record of its last call
    /// (the callback is not done). A task that is not open, or that a call
    /// holds, is [`StoreError::Refused`].
    pub async fn reschedule_task(&self, task: Uuid, at: DateTime<Utc>) -> Result<(), StoreError> {
        let op = "reschedule_task";
        let now = V::Time(Some(ms(Utc::now())));
        let n = self
            .write(
                "UPDATE tasks SET next_attempt_at = $2, awaiting_record_since = NULL \
                 WHERE id = $1 AND state = 'open' AND (lease_until IS NULL OR lease_until <= $3)",
                vec![V::Id(task), V::Time(Some(ms(at))), now],
            )
            .await
            .map_err(query(op))?;
        if n == 0 {
            return Err(StoreError::Refused(format!("task {task} is not open, or a call holds it")));
        }
        Ok(())
    }

    /// Closes an open task by hand with `outcome` (`wrong_number`,
    /// `refused`), by a staff member. A task that is not open is
    /// [`StoreError::Refused`].
    pub async fn mark_task(
        &self,
        task: Uuid,
        outcome: RecordOutcome,
        by: &str,
        at: DateTime<Utc>,
    ) -> Result<TaskRow, StoreError> {
        let op = "mark_task";
        if !matches!(outcome, RecordOutcome::WrongNumber | RecordOutcome::Refused) {
            return Err(StoreError::Invalid { what: "mark outcome (wrong_number or refused)" });
        }
        let current = self.task(task).await?;
        let n = self
            .write(
                "UPDATE tasks SET state = 'closed', outcome = $2, closed_at = $3, closed_by = $4 \
                 WHERE id = $1 AND state = 'open'",
                vec![V::Id(task), t(outcome.as_str()), V::Time(Some(ms(at))), t(by)],
            )
            .await
            .map_err(query(op))?;
        if n == 0 {
            return Err(StoreError::Refused(format!("task {task} is {}, not open", current.state)));
        }
        self.task(task).await
    }

    /// Writes this instance's state and heartbeat.
    pub async fn dialer_beat(&self, b: &DialerBeat) -> Result<(), StoreError> {
        self.write(
            "INSERT INTO dialer_instances (instance_id, state, detail, started_at, heartbeat_at, active_calls, \
             calls_placed, last_error, version) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) \
             ON CONFLICT (instance_id) DO UPDATE SET state = excluded.state, detail = excluded.detail, \
             started_at = excluded.started_at, heartbeat_at = excluded.heartbeat_at, \
             active_calls = excluded.active_calls, calls_placed = excluded.calls_placed, \
             last_error = excluded.last_error, version = excluded.version",
            vec![
                t(&b.instance_id),
                t(&b.state),
                ot(b.detail.as_deref()),
                V::Time(Some(ms(b.started_at))),
                V::Time(Some(ms(b.heartbeat_at))),
                V::Int(Some(b.active_calls as i64)),
                V::Int(Some(b.calls_placed as i64)),
                ot(b.last_error.as_deref()),
                t(&b.version),
            ],
        )
        .await
        .map_err(query("dialer_beat"))?;
        Ok(())
    }

    /// Every dialer instance that ever ran, by id.
    pub async fn dialer_instances(&self) -> Result<Vec<DialerBeat>, StoreError> {
        let rows = self
            .read(
                "SELECT instance_id, state, detail, started_at, heartbeat_at, active_calls, calls_placed, last_error, \
                 version FROM dialer_instances ORDER BY instance_id",
                vec![],
            )
            .await
            .map_err(query("dialer_instances"))?;
        rows.iter()
            .map(|r| {
                Ok(DialerBeat {
                    instance_id: r.text("instance_id")?,
                    state: r.text("state")?,
                    detail: r.opt_text("detail")?,
                    started_at: r.time("started_at")?,
                    heartbeat_at: r.time("heartbeat_at")?,
                    active_calls: r.int("active_calls")?.max(0) as u64,
                    calls_placed: r.int("calls_placed")?.max(0) as u64,
                    last_error: r.opt_text("last_error")?,
                    version: r.text("version")?,
                })
            })
            .collect::<Result<_, sqlx::Error>>()
            .map_err(query("dialer_instances"))
    }

    /// The open tasks by what they wait for, at `now`; a record is overdue
    /// when the call completed before `record_due_before`.
    pub async fn queue_depth(
        &self,
        now: DateTime<Utc>,
        record_due_before: DateTime<Utc>,
    ) -> Result<QueueDepth, StoreError> {
        let rows = self
            .read(
                "SELECT \
                 sum(CASE WHEN awaiting_record_since IS NULL AND (lease_until IS NULL OR lease_until <= $1) \
                     AND (next_attempt_at IS NULL OR next_attempt_at <= $1) THEN 1 ELSE 0 END) AS ready, \
                 sum(CASE WHEN awaiting_record_since IS NULL AND (lease_until IS NULL OR lease_until <= $1) \
                     AND next_attempt_at > $1 THEN 1 ELSE 0 END) AS waiting, \
                 sum(CASE WHEN lease_until > $1 THEN 1 ELSE 0 END) AS in_call, \
                 sum(CASE WHEN awaiting_record_since IS NOT NULL AND (lease_until IS NULL OR lease_until <= $1) \
                     THEN 1 ELSE 0 END) AS awaiting, \
                 sum(CASE WHEN awaiting_record_since < $2 AND (lease_until IS NULL OR lease_until <= $1) \
                     THEN 1 ELSE 0 END) AS overdue \
                 FROM tasks WHERE state = 'open'",
                vec![V::Time(Some(ms(now))), V::Time(Some(ms(record_due_before)))],
            )
            .await
            .map_err(query("queue_depth"))?;
        let r = rows.first().ok_or(StoreError::Invalid { what: "queue depth (no row)" })?;
        let n = |c: &str| r.opt_int(c).map(|v| v.unwrap_or(0).max(0) as u64);
        (|| {
            Ok(QueueDepth {
                ready: n("ready")?,
                waiting_retry: n("waiting")?,
                in_call: n("in_call")?,
                awaiting_record: n("awaiting")?,
                record_overdue: n("overdue")?,
            })
        })()
        .map_err(|e: sqlx::Error| query("queue_depth")(e))
    }

    /// Open tasks whose call completed before `before` and that still
    /// have no callback record.
    pub async fn records_overdue(&self, before: DateTime<Utc>) -> Result<Vec<TaskRow>, StoreError> {
        let sql = format!(
            "SELECT {TASK_COLUMNS} FROM tasks WHERE state = 'open' AND awaiting_record_since < $1 \
             ORDER BY awaiting_record_since, idempotency_key"
        );
        let rows =
            self.read(&sql, vec![V::Time(Some(ms(before)))]).await.map_err(query("records_overdue"))?;
        rows.iter().map(task_row).collect::<Result<_, _>>().map_err(query("records_overdue"))
    }
}

async fn claim_in(
    tx: &mut Tx,
    spec: &ClaimSpec<'_>,
    only: Option<Uuid>,
    eligible: &mut (dyn FnMut(&TaskRow, &Client) -> bool + Send),
) -> Result<ClaimResult, StoreError> {
    let op = "claim_task";
    let now = ms(spec.now);
    let until = ms(spec.lease_until);
    let took = tx
        .exec(
            "UPDATE agent_sessions SET call_owner = $2, call_task = NULL, call_until = $3 \
             WHERE staff_id = $1 AND state = 'available' AND (call_until IS NULL OR call_until <= $4)",
            vec![t(spec.agent), t(spec.instance), V::Time(Some(until)), V::Time(Some(now))],
        )
        .await
        .map_err(query(op))?;
    if took == 0 {
        return Ok(ClaimResult::AgentBusy);
    }
    let sql = match only {
        Some(_) => this_sql(tx.is_pg()),
        None => ready_sql(tx.is_pg()),
    };
    let mut refused = 0;
    let mut offset = 0;
    // a small first page: the first ready task usually passes, and every
    // row read is locked (PostgreSQL) until the transaction ends
    let mut page = FIRST_PAGE;
    let found = 'scan: loop {
        if offset >= MAX_SCAN {
            break None;
        }
        let mut args = vec![V::Time(Some(now)), V::Int(Some(page)), V::Int(Some(offset))];
        if let Some(id) = only {
            args.push(V::Id(id));
        }
        let rows = tx.all(&sql, args).await.map_err(query(op))?;
        if rows.is_empty() {
            break None;
        }
        offset += rows.len() as i64;
        page = PAGE;
        let tasks: Vec<TaskRow> = rows.iter().map(task_row).collect::<Result<_, _>>().map_err(query(op))?;
        let mut ids: Vec<&str> = tasks.iter().map(|t| t.client_id.as_str()).collect();
        ids.sort_unstable();
        ids.dedup();
        let client_sql = format!(
            "SELECT {} FROM clients WHERE client_id IN ({})",
            CLIENTS.cols.join(", "),
            (1..=ids.len()).map(|i| format!("${i}")).collect::<Vec<_>>().join(", ")
        );
        let clients: Vec<Client> = tx
            .all(&client_sql, ids.iter().map(|s| t(s)).collect())
            .await
            .map_err(query(op))?
            .iter()
            .map(client_row)
            .collect::<Result<_, _>>()
            .map_err(query(op))?;
        for task in tasks {
            let Some(client) = clients.iter().find(|c| c.client_id == task.client_id) else {
                continue;
            };
            if eligible(&task, client) {
                break 'scan Some((task, client.clone()));
            }
            refused += 1;
        }
    };
    let Some((task, client)) = found else {
        return Ok(ClaimResult::NoTask { refused });
    };
    let n = tx
        .exec(
            "UPDATE tasks SET lease_owner = $2, lease_until = $3, assigned_agent = $4 \
             WHERE id = $1 AND state = 'open' AND (lease_until IS NULL OR lease_until <= $5)",
            vec![V::Id(task.id), t(spec.instance), V::Time(Some(until)), t(spec.agent), V::Time(Some(now))],
        )
        .await
        .map_err(query(op))?;
    if n == 0 {
        // only possible on a race SKIP LOCKED already excludes; be safe
        return Ok(ClaimResult::NoTask { refused });
    }
    tx.exec(
        "UPDATE agent_sessions SET call_task = $2 WHERE staff_id = $1",
        vec![t(spec.agent), V::Id(task.id)],
    )
    .await
    .map_err(query(op))?;
    let by = format!("dialer@{}", spec.instance);
    add_event(
        tx,
        NewEvent {
            staff_id: spec.agent,
            at: now,
            from: Some(AgentState::Available.as_str()),
            to: "on_call",
            by: &by,
            reason: None,
            task: Some(task.id),
        },
    )
    .await
    .map_err(query(op))?;
    let abandoned = match task.lease_owner.as_deref() {
        Some(previous) if previous != spec.instance => tx
            .exec(
                "UPDATE calls SET outcome = 'interrupted', reason = $3, ended_at = $2 \
                 WHERE task_id = $1 AND outcome IS NULL AND instance = $4",
                vec![
                    t(&task.id.to_string()),
                    V::Time(Some(now)),
                    t(&format!("instance {previous} lost its lease on the task (stopped or unreachable)")),
                    t(previous),
                ],
            )
            .await
            .map_err(query(op))?,
        _ => 0,
    };
    let mut task = task;
    task.lease_owner = Some(spec.instance.to_string());
    task.lease_until = Some(until);
    task.assigned_agent = Some(spec.agent.to_string());
    Ok(ClaimResult::Claimed(Box::new(Claimed {
        task,
        client,
        abandoned_calls: abandoned,
        claimed_at: spec.now,
    })))
}

async fn finish_in(tx: &mut Tx, e: &AttemptEnd<'_>) -> Result<AttemptWritten, StoreError> {
    let op = "finish_attempt";
    let now = ms(e.now);
    let by = format!("dialer@{}", e.instance);
    let mut args = vec![
        V::Id(e.task),
        t(e.instance),
        V::Int(Some(i64::from(e.attempts))),
        V::OptId(e.call_id),
        t(e.outcome),
        V::Time(Some(now)),
    ];
    let step = match e.next {
        Next::AwaitRecord => "awaiting_record_since = $6, next_attempt_at = NULL".to_string(),
        Next::RetryAt(at) => {
            args.push(V::Time(Some(ms(at))));
            "next_attempt_at = $7".to_string()
        }
        Next::CloseUnreachable => {
            args.push(t(&by));
            "state = 'closed', outcome = 'unreachable', closed_at = $6, closed_by = $7, next_attempt_at = NULL"
                .to_string()
        }
    };
    let n = tx
        .exec(
            &format!(
                "UPDATE tasks SET attempts = $3, last_call_id = $4, last_outcome = $5, last_attempt_at = $6, \
                 lease_owner = NULL, lease_until = NULL, {step} WHERE id = $1 AND lease_owner = $2 AND state = 'open'"
            ),
            args,
        )
        .await
        .map_err(query(op))?;
    let written = if n > 0 {
        AttemptWritten::Moved
    } else {
        let n = tx
            .exec(
                "UPDATE tasks SET last_call_id = $3, last_outcome = $4, last_attempt_at = $5, lease_owner = NULL, \
                 lease_until = NULL WHERE id = $1 AND lease_owner = $2",
                vec![V::Id(e.task), t(e.instance), V::OptId(e.call_id), t(e.outcome), V::Time(Some(now))],
            )
            .await
            .map_err(query(op))?;
        if n > 0 { AttemptWritten::AlreadyFinished } else { AttemptWritten::LeaseLost }
    };
    let why = format!("call ended: {}", e.outcome);
    free_agent(tx, e.instance, e.agent, now, e.wrap_up_until.map(ms), Some(e.task), &why)
        .await
        .map_err(query(op))?;
    if let Some(reason) = e.pause_reason {
        let n = tx
            .exec(
                "UPDATE agent_sessions SET state = 'paused', reason = $2, changed_by = $3, changed_at = $4 \
                 WHERE staff_id = $1 AND state = 'available'",
                vec![t(e.agent), t(reason), t(&by), V::Time(Some(now))],
            )
            .await
            .map_err(query(op))?;
        if n > 0 {
            let event = NewEvent {
                staff_id: e.agent,
                at: now,
                from: Some("available"),
                to: "paused",
                by: &by,
                reason: Some(reason),
                task: Some(e.task),
            };
            add_event(tx, event).await.map_err(query(op))?;
        }
    }
    Ok(written)
}

/// Ends this instance's hold on an agent's call: held on for wrap-up
/// until `wrap_up_until`, or freed; the agent's trace goes from `on_call`
/// back to the stored state.
async fn free_agent(
    tx: &mut Tx,
    instance: &str,
    agent: &str,
    now: DateTime<Utc>,
    wrap_up_until: Option<DateTime<Utc>>,
    task: Option<Uuid>,
    why: &str,
) -> Result<(), sqlx::Error> {
    let n = match wrap_up_until {
        Some(until) if until > now => {
            tx.exec(
                "UPDATE agent_sessions SET call_task = NULL, call_until = $3, last_call_ended_at = $4 \
                 WHERE staff_id = $1 AND call_owner = $2",
                vec![t(agent), t(instance), V::Time(Some(until)), V::Time(Some(now))],
            )
            .await?
        }
        _ => {
            tx.exec(
                "UPDATE agent_sessions SET call_owner = NULL, call_task = NULL, call_until = NULL, \
                 last_call_ended_at = $3 WHERE staff_id = $1 AND call_owner = $2",
                vec![t(agent), t(instance), V::Time(Some(now))],
            )
            .await?
        }
    };
    if n > 0 {
        let rows = tx.all("SELECT state FROM agent_sessions WHERE staff_id = $1", vec![t(agent)]).await?;
        let state = rows.first().map(|r| r.text("state")).transpose()?.unwrap_or_else(|| "available".into());
        let by = format!("dialer@{instance}");
        let event = NewEvent {
            staff_id: agent,
            at: now,
            from: Some("on_call"),
            to: &state,
            by: &by,
            reason: Some(why),
            task,
        };
        add_event(tx, event).await?;
    }
    Ok(())
}

/// A call without an outcome yet, for `huifang status` (no phone URIs).
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct CallInProgress {
    /// The call.
    pub id: Uuid,
    /// Its task.
    pub task_id: Option<String>,
    /// The agent taking it, when known.
    pub agent_id: Option<String>,
    /// The instance that placed it.
    pub instance: Option<String>,
    /// When it started.
    pub started_at: DateTime<Utc>,
    /// When the agent answered.
    pub agent_answered_at: Option<DateTime<Utc>>,
    /// When the client was bridged.
    pub answered_at: Option<DateTime<Utc>>,
}

impl Store {
    /// Calls without an outcome, oldest first.
    pub async fn calls_in_progress(&self) -> Result<Vec<CallInProgress>, StoreError> {
        let rows = self
            .read(
                "SELECT id, task_id, agent_id, instance, started_at, agent_answered_at, answered_at FROM calls \
                 WHERE outcome IS NULL ORDER BY started_at, id",
                vec![],
            )
            .await
            .map_err(query("calls_in_progress"))?;
        rows.iter()
            .map(|r| {
                Ok(CallInProgress {
                    id: r.id("id")?,
                    task_id: r.opt_text("task_id")?,
                    agent_id: r.opt_text("agent_id")?,
                    instance: r.opt_text("instance")?,
                    started_at: r.time("started_at")?,
                    agent_answered_at: r.opt_time("agent_answered_at")?,
                    answered_at: r.opt_time("answered_at")?,
                })
            })
            .collect::<Result<_, sqlx::Error>>()
            .map_err(query("calls_in_progress"))
    }
}

impl Store {
    /// The calls placed for a task, oldest first (every attempt, E2).
    pub async fn task_calls(&self, task: Uuid) -> Result<Vec<Uuid>, StoreError> {
        let rows = self
            .read(
                "SELECT id FROM calls WHERE task_id = $1 ORDER BY started_at, id",
                vec![t(&task.to_string())],
            )
            .await
            .map_err(query("task_calls"))?;
        rows.iter().map(|r| r.id("id")).collect::<Result<_, _>>().map_err(query("task_calls"))
    }

    /// The calls placed for `task`, oldest first: id, start and outcome
    /// (none while the call runs).
    pub async fn task_attempts(
        &self,
        task: Uuid,
    ) -> Result<Vec<(Uuid, DateTime<Utc>, Option<String>)>, StoreError> {
        let op = "task_attempts";
        let rows = self
            .read(
                "SELECT id, started_at, outcome FROM calls WHERE task_id = $1 ORDER BY started_at, id",
                vec![t(&task.to_string())],
            )
            .await
            .map_err(query(op))?;
        rows.iter()
            .map(|r| Ok((r.id("id")?, r.time("started_at")?, r.opt_text("outcome")?)))
            .collect::<Result<_, sqlx::Error>>()
            .map_err(query(op))
    }
}
