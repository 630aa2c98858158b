//! The demo's shift: the agent logs in and `serve`'s dialer works the
//! queue, as in production.
//!
//! The demo does not choose the tasks or place the calls: once the agent
//! is logged in ([`AgentCommand::Login`]) with a registered softphone, the
//! dialer ([`crate::dialer`]) claims the next ready task the agent may make
//! (avoidance, E7), rings the agent, then the client, and writes the
//! attempt. The demo watches the trace like a supervisor's screen would:
//! each new call of the shift, each ended call. During the wrap-up after a
//! completed call the agent submits the callback record (the task is then
//! done). Once the dialer has placed as many calls as asked, the agent
//! logs out — the call in progress finishes, and no further one is
//! offered.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use anyhow::{Context, bail};
use chrono::Utc;
use tokio::sync::watch;
use uuid::Uuid;

use super::progress;
use crate::config::Config;
use crate::dialer::DialerStatus;
use crate::domain::agents::AgentCommand;
use crate::domain::calendar::Calendar;
use crate::domain::kinds::TaskKind;
use crate::domain::records::{Form, Outcome, checklist};
use crate::feed::Hub;
use crate::ops::access::Person;
use crate::ops::records::{Submission, submit_record};
use crate::store::{CallRow, RecordingRow, Store, TaskRow};

/// How often the demo looks at the trace.
const WATCH: Duration = Duration::from_millis(200);
/// How long the dialer may take to place the first call of the shift.
const FIRST_CALL_WITHIN: Duration = Duration::from_secs(20);
/// How long one call may take, ring to record, before the demo gives up.
const PER_CALL: Duration = Duration::from_secs(45);

/// One call the dialer placed during the shift.
pub struct Worked {
    /// Its task, as it stands after the call (and the record).
    pub task: TaskRow,
    /// The call's trace.
    pub call: CallRow,
    /// Its recording, if one was opened.
    pub recording: Option<RecordingRow>,
    /// The callback record the agent submitted after a completed call.
    pub record_id: Option<Uuid>,
}

/// What the shift needs.
pub struct Shift<'a> {
    /// The trace.
    pub store: &'a Store,
    /// The agents' feeds.
    pub hub: &'a Hub,
    /// For the records: avoidance, forms.
    pub cfg: &'a Config,
    /// For the records: business days.
    pub calendar: &'a Calendar,
    /// The agent (staff id).
    pub agent: &'a str,
    /// Calls to let the dialer place.
    pub calls: usize,
    /// The dialer's status.
    pub dialer: watch::Receiver<DialerStatus>,
}

/// What the shift did, call by call in the order the dialer placed them,
/// and what the dialer said on the way (avoidance refusals, …).
pub struct ShiftReport {
    /// The calls.
    pub worked: Vec<Worked>,
    /// The dialer's notes (its status details), each once.
    pub notes: Vec<String>,
}

impl Shift<'_> {
    /// Logs the agent in, watches the dialer place `calls` calls and each
    /// end, submits a record after each completed call, and logs the agent
    /// out. Errors when the dialer cannot work (closed window, no call in
    /// time) or on `stop`.
    pub async fn work(&self, stop: watch::Receiver<bool>) -> anyhow::Result<ShiftReport> {
        let since = Utc::now() - chrono::Duration::seconds(1);
        self.store
            .change_agent(self.agent, AgentCommand::Login, self.agent, Some("demo shift"), Utc::now())
            .await
            .context("logging the agent in")?;
        progress(&format!(
            "agent {} logged in; the dialer works the queue: each call rings the agent, then the client…",
            self.agent
        ));
        let started = tokio::time::Instant::now();
        let deadline = started + FIRST_CALL_WITHIN + PER_CALL * self.calls as u32;
        let mut placed: Vec<Uuid> = Vec::new();
        let mut ended: BTreeMap<Uuid, Worked> = BTreeMap::new();
        let mut notes: BTreeSet<String> = BTreeSet::new();
        let mut logged_out = false;
        let mut stop = stop;
        loop {
            if *stop.borrow() {
                bail!("stopped before the end");
            }
            let status = self.dialer.borrow().clone();
            if let Some(d) = &status.detail
                && status.state != "closed"
            {
                notes.insert(d.clone());
            }
            match status.state {
                "closed" => bail!(
                    "the dialer's calling window is closed: {}",
                    status.detail.as_deref().unwrap_or("(no detail)")
                ),
                "stopped" => bail!("the dialer stopped"),
                _ => {}
            }
            let calls = self.store.calls_between(since, Utc::now() + chrono::Duration::hours(1)).await?;
            for c in calls.iter().filter(|c| c.task_id.is_some()) {
                if !placed.contains(&c.call_id) {
                    placed.push(c.call_id);
                    let task = self.task_of(c.task_id.as_deref()).await?;
                    progress(&format!(
                        "call {}: the dialer took task {} ({}) — ringing the agent, then the client",
                        placed.len(),
                        task.key,
                        TaskKind::from_name(&task.kind).map(TaskKind::zh).unwrap_or("")
                    ));
                }
                if c.ended_at.is_some() && !ended.contains_key(&c.call_id) {
                    let worked = self.ended(c.call_id, c.task_id.as_deref()).await?;
                    ended.insert(c.call_id, worked);
                }
            }
            if placed.len() >= self.calls && !logged_out {
                self.store
                    .change_agent(
                        self.agent,
                        AgentCommand::Logout,
                        self.agent,
                        Some("demo shift over"),
                        Utc::now(),
                    )
                    .await
                    .context("logging the agent out")?;
                logged_out = true;
                progress(&format!(
                    "agent {} logs out after {} calls (the call in progress finishes)",
                    self.agent, self.calls
                ));
            }
            if logged_out && ended.len() == placed.len() {
                break;
            }
            let now = tokio::time::Instant::now();
            if placed.is_empty() && now > started + FIRST_CALL_WITHIN {
                bail!(
                    "the dialer placed no call within {} s (dialer {}: {})",
                    FIRST_CALL_WITHIN.as_secs(),
                    status.state,
                    status.detail.as_deref().or(status.last_error.as_deref()).unwrap_or("no detail")
                );
            }
            if now > deadline {
                bail!(
                    "the dialer's calls took too long: {} placed, {} ended (dialer {})",
                    placed.len(),
                    ended.len(),
                    status.state
                );
            }
            tokio::select! {
                _ = tokio::time::sleep(WATCH) => {}
                _ = stop.changed() => {}
            }
        }
        let worked = placed.iter().filter_map(|id| ended.remove(id)).collect();
        Ok(ShiftReport { worked, notes: notes.into_iter().collect() })
    }

    async fn task_of(&self, id: Option<&str>) -> anyhow::Result<TaskRow> {
        let id: Uuid = id.context("a call without a task")?.parse().context("a call's task id")?;
        Ok(self.store.task(id).await?)
    }

    /// An ended call: its trace and recording; after a completed call the
    /// agent submits the callback record.
    async fn ended(&self, call_id: Uuid, task_id: Option<&str>) -> anyhow::Result<Worked> {
        let call = self.store.get_call(call_id).await?;
        let recording = self.store.recording_for_call(call_id).await?;
        let task = self.task_of(task_id).await?;
        let outcome = call.outcome.clone().unwrap_or_default();
        let mut record_id = None;
        if outcome == "completed" {
            record_id = Some(self.submit(&task, call_id).await?);
            progress(&format!(
                "call {}: completed, recording sealed ({:.1} s); the agent submitted the callback record",
                task.key,
                recording.as_ref().and_then(|r| r.duration_ms).unwrap_or(0) as f64 / 1000.0
            ));
        } else {
            progress(&format!(
                "call {}: {outcome}{}",
                task.key,
                call.reason.as_deref().map(|r| format!(" ({r})")).unwrap_or_default()
            ));
        }
        let task = self.store.task(task.id).await?;
        Ok(Worked { task, call, recording, record_id })
    }

    /// The record of a reached client who confirmed every point of the
    /// form (the demo's clients are happy).
    async fn submit(&self, task: &TaskRow, call_id: Uuid) -> anyhow::Result<Uuid> {
        let kind = TaskKind::from_name(&task.kind).context("a task of unknown kind")?;
        let answers = checklist(Form::for_kind(kind))
            .iter()
            .filter(|q| !q.free_text)
            .map(|q| (q.id.to_string(), "yes".to_string()))
            .collect();
        let submitted = submit_record(
            self.store,
            self.hub,
            self.cfg,
            self.calendar,
            &Person::operator(self.agent),
            Submission {
                task: task.id.to_string(),
                agent: self.agent.into(),
                outcome: Outcome::Reached,
                answers,
                problems: None,
                notes: None,
                method: "phone".into(),
                call_id: Some(call_id),
                called_on: crate::cli::output::today(),
            },
        )
        .await
        .with_context(|| format!("submitting the record of task {}", task.key))?;
        Ok(submitted.id)
    }
}
