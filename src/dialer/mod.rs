//! The dialer: `serve` works the callback queue (progressive mode).
//!
//! A worker in garage's style, around the pure decisions of
//! [`crate::domain::dialing`] and the claims of the store:
//!
//! 1. **Each poll** (`dialer.poll_interval_ms`), if the calling window is
//!    open ([`DialingPolicy::gate`] on the dialer's clock) and fewer than
//!    `dialer.max_concurrent_calls` calls run, every free agent — logged in,
//!    `available`, held by no instance and, in built-in registrar mode,
//!    with a registered softphone — is offered the next ready task that
//!    passes avoidance (E7): [`Store::claim_task`] takes the agent's row and
//!    the task's lease in one transaction.
//! 2. **Right before the INVITE** avoidance is checked again on freshly
//!    read staff and client rows; a refusal gives the claim back.
//! 3. The call is placed with [`place_call`] (agent first, then the client;
//!    the `calls` row names the task, E2) on a task of its own, inside a
//!    `call` tracing span; the lease of the task and the agent's hold are
//!    renewed every third of `dialer.lease_secs` while it runs.
//! 4. **After the call** [`RetryPolicy::after`] decides: wait for the
//!    record, retry at, or close `unreachable`; an agent whose phone did
//!    not answer is paused with the reason traced; [`Store::finish_attempt`]
//!    writes it all at once and gives the lease back.
//!
//! Each poll also writes the instance's state and a heartbeat to the
//! database, which is what `huifang status` shows.
//!
//! ## Shutdown
//! [`Dialer::run`] returns after its stop signal: it stops claiming, lets
//! the calls in progress go on for `dialer.shutdown_deadline_secs`, then
//! ends the rest (they end `interrupted` and go back to the queue), and
//! gives back every lease it holds. `serve` stops the dialer before the
//! SIP endpoint, so the calls keep their signalling to the end.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinSet;
use tokio::time::Instant;
use tracing::{Instrument, debug, info, info_span, warn};
use uuid::Uuid;

use crate::call::task::{CallReport, CallRequest, CallServices, Progress, place_call};
use crate::config::{Config, ConfigError, DialerConfig};
use crate::domain::agents::AgentState;
use crate::domain::avoidance::{Avoidance, Directory, may_call};
use crate::domain::calendar::Calendar;
use crate::domain::dialing::{Attempt, DialingPolicy, Gate, Next, RetryPolicy};
use crate::feed::Hub;
use crate::feed::events::{Event, offer};
use crate::sip::msg::Uri;
use crate::store::{
    AttemptEnd, AttemptWritten, ClaimResult, ClaimSpec, Claimed, DialerBeat, Store, StoreError,
};

/// The dialer's settings, resolved from the configuration.
#[derive(Debug, Clone)]
pub struct DialerSettings {
    /// This instance (lease owner, `calls.instance`).
    pub instance: String,
    /// Calls at once, at most.
    pub max_calls: usize,
    /// Time between polls.
    pub poll: Duration,
    /// Lease length.
    pub lease: Duration,
    /// Hold on the agent after a completed call.
    pub wrap_up: Duration,
    /// How long calls may go on after the stop signal.
    pub shutdown_deadline: Duration,
    /// Calling windows.
    pub policy: DialingPolicy,
    /// Retries.
    pub retry: RetryPolicy,
    /// Business days.
    pub calendar: Calendar,
    /// E7.
    pub avoidance: Avoidance,
    /// The test clock's start.
    pub clock_start: Option<DateTime<Utc>>,
    /// `[dialer]` (the client URI template).
    pub raw: DialerConfig,
}

impl DialerSettings {
    /// The settings of `cfg` (already checked at load; the calendar file is
    /// read here).
    pub fn from_config(cfg: &Config) -> Result<DialerSettings, ConfigError> {
        let d = &cfg.dialer;
        let bad = |(key, reason): (String, String)| ConfigError { file: "-".into(), key, reason };
        Ok(DialerSettings {
            instance: cfg.instance_id(),
            max_calls: d.max_concurrent_calls as usize,
            poll: Duration::from_millis(d.poll_interval_ms),
            lease: Duration::from_secs(d.lease_secs),
            wrap_up: Duration::from_secs(d.wrap_up_secs),
            shutdown_deadline: Duration::from_secs(d.shutdown_deadline_secs),
            policy: d.policy().map_err(bad)?,
            retry: d.retry().map_err(bad)?,
            calendar: cfg.load_calendar()?,
            avoidance: cfg.avoidance(),
            clock_start: d.clock_start().map_err(bad)?,
            raw: d.clone(),
        })
    }
}

/// What the dialer is doing (also written to `dialer_instances`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DialerStatus {
    /// `starting`, `dialing`, `idle`, `full`, `closed`, `error`,
    /// `stopping`, `stopped`.
    pub state: &'static str,
    /// Why, in words.
    pub detail: Option<String>,
    /// Calls in progress.
    pub active_calls: usize,
    /// Calls placed since start.
    pub calls_placed: u64,
    /// The last error.
    pub last_error: Option<String>,
}

struct Active {
    agent: String,
}

/// A call placed by hand (`POST /api/v1/calls`): task `task` for agent
/// `agent` now, through this dialer — the same claim, E7 checks, feed,
/// trace and retry rules as its own calls.
#[derive(Debug)]
pub struct ManualCall {
    /// The task.
    pub task: Uuid,
    /// The agent (a staff id).
    pub agent: String,
    /// Who asked (a login), for the trace.
    pub by: String,
    /// Outside the calling window: why the supervisor overrides it.
    pub override_window: Option<String>,
    /// The call's id once placed, or why not.
    pub reply: tokio::sync::oneshot::Sender<Result<Uuid, ManualRefused>>,
}

/// Why a call placed by hand was not placed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ManualRefused {
    /// The calling window is shut (and nobody overrode it).
    #[error("the calling window is shut: {0}")]
    WindowShut(String),
    /// This dialer already runs `dialer.max_concurrent_calls` calls (its
    /// lines are all in use).
    #[error("all {0} lines of this dialer are in use (dialer.max_concurrent_calls)")]
    LinesFull(usize),
    /// The agent is not available (paused, logged out, on a call, in wrap-up).
    #[error("agent {0} is not available (logged out, paused, on a call or in wrap-up)")]
    AgentBusy(String),
    /// The agent's softphone is not registered (built-in registrar).
    #[error("agent {0}'s softphone is not registered")]
    NotRegistered(String),
    /// The agent has no usable `sip_uri`.
    #[error("agent {0} has no usable sip_uri in the staff list")]
    NoPhone(String),
    /// The task cannot be called now.
    #[error("{0}")]
    Task(String),
    /// Avoidance (E7).
    #[error("avoidance (E7): {0}")]
    Avoidance(String),
    /// The database failed, or the dialer stopped.
    #[error("{0}")]
    Failed(String),
}

/// Test-only (the `test-hooks` feature): `HUIFANG_TEST_DIAL_PAUSE_MS`
/// holds the dialer between a claim and its E7 recheck, so that a test can
/// change the facts in between.
#[cfg(feature = "test-hooks")]
async fn test_pause_before_recheck() {
    if let Some(ms) = std::env::var("HUIFANG_TEST_DIAL_PAUSE_MS").ok().and_then(|v| v.parse::<u64>().ok()) {
        eprintln!("huifang test hook: claimed; {ms} ms before the E7 recheck");
        tokio::time::sleep(Duration::from_millis(ms)).await;
    }
}

/// Hands calls placed by hand to the running dialer.
#[derive(Debug, Clone)]
pub struct DialerHandle {
    tx: mpsc::Sender<ManualCall>,
}

impl DialerHandle {
    /// Asks the dialer to place `call`; waits until it is placed (the call
    /// goes on) or refused.
    pub async fn call_now(
        &self,
        task: Uuid,
        agent: &str,
        by: &str,
        override_window: Option<String>,
    ) -> Result<Uuid, ManualRefused> {
        let (reply, answer) = tokio::sync::oneshot::channel();
        let m = ManualCall { task, agent: agent.to_string(), by: by.to_string(), override_window, reply };
        let gone = || ManualRefused::Failed("the dialer of this serve is stopping".into());
        self.tx.send(m).await.map_err(|_| gone())?;
        answer.await.map_err(|_| gone())?
    }
}

struct CallDone {
    task: Uuid,
    key: String,
    agent: String,
    attempts_before: u32,
    result: Result<CallReport, StoreError>,
}

/// The dialer worker. [`Dialer::new`], then [`run`](Self::run) it.
pub struct Dialer {
    svc: CallServices,
    s: Arc<DialerSettings>,
    calls: JoinSet<CallDone>,
    active: HashMap<Uuid, Active>,
    call_stop: watch::Sender<bool>,
    status: watch::Sender<DialerStatus>,
    started_at: DateTime<Utc>,
    started: Instant,
    registrar_mode: bool,
    hub: Hub,
    manual: mpsc::Receiver<ManualCall>,
    manual_tx: mpsc::Sender<ManualCall>,
}

impl Dialer {
    /// A dialer placing calls through `svc`.
    pub fn new(svc: CallServices, settings: DialerSettings, hub: Hub) -> Dialer {
        let (status, _) = watch::channel(DialerStatus {
            state: "starting",
            detail: None,
            active_calls: 0,
            calls_placed: 0,
            last_error: None,
        });
        let registrar_mode = svc.endpoint.switch_transport().is_none();
        let (manual_tx, manual) = mpsc::channel(16);
        Dialer {
            svc,
            s: Arc::new(settings),
            calls: JoinSet::new(),
            active: HashMap::new(),
            call_stop: watch::channel(false).0,
            status,
            started_at: Utc::now(),
            started: Instant::now(),
            registrar_mode,
            hub,
            manual,
            manual_tx,
        }
    }

    /// Where calls placed by hand are handed in.
    pub fn handle(&self) -> DialerHandle {
        DialerHandle { tx: self.manual_tx.clone() }
    }

    /// The status, updated as the dialer goes.
    pub fn status(&self) -> watch::Receiver<DialerStatus> {
        self.status.subscribe()
    }

    fn store(&self) -> &Store {
        &self.svc.store
    }

    /// The dialer's clock: the real time, or the test clock.
    fn now_v(&self) -> DateTime<Utc> {
        match self.s.clock_start {
            Some(start) => start + chrono::Duration::from_std(self.started.elapsed()).unwrap_or_default(),
            None => Utc::now(),
        }
    }

    fn lease_until(&self, now: DateTime<Utc>) -> DateTime<Utc> {
        now + chrono::Duration::from_std(self.s.lease).unwrap_or_default()
    }

    async fn set_status(&self, f: impl FnOnce(&mut DialerStatus)) {
        let mut new = self.status.borrow().clone();
        f(&mut new);
        // `status` shows a drill for what it is
        if self.s.clock_start.is_some() && !new.detail.as_deref().is_some_and(|d| d.starts_with("DRILL")) {
            let clock = self.now_v().with_timezone(&self.s.policy.offset).format("%Y-%m-%d %H:%M");
            new.detail = Some(match new.detail {
                Some(d) => format!("DRILL clock {clock}; {d}"),
                None => format!("DRILL clock {clock}"),
            });
        }
        new.active_calls = self.active.len();
        let old = self.status.borrow().clone();
        if new.state != old.state || new.detail != old.detail {
            info!(
                state = new.state,
                detail = new.detail.as_deref().unwrap_or(""),
                calls = new.active_calls,
                "dialer"
            );
        }
        self.status.send_replace(new.clone());
        let beat = DialerBeat {
            instance_id: self.s.instance.clone(),
            state: new.state.to_string(),
            detail: new.detail,
            started_at: self.started_at,
            heartbeat_at: Utc::now(),
            active_calls: new.active_calls as u64,
            calls_placed: new.calls_placed,
            last_error: new.last_error,
            version: env!("CARGO_PKG_VERSION").to_string(),
        };
        if let Err(e) = self.store().dialer_beat(&beat).await {
            warn!(error = %e, "dialer: heartbeat not written");
        }
    }

    /// Works until `stop` turns true, then shuts down (see the module docs).
    pub async fn run(mut self, mut stop: watch::Receiver<bool>) {
        info!(instance = %self.s.instance, max_calls = self.s.max_calls, "dialer started (progressive)");
        let mut drill_warned = Instant::now();
        self.warn_drill();
        self.set_status(|_| {}).await;
        let mut poll = tokio::time::interval(self.s.poll);
        poll.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut renew = tokio::time::interval((self.s.lease / 3).max(Duration::from_millis(500)));
        renew.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        while !*stop.borrow() {
            tokio::select! {
                r = stop.changed() => if r.is_err() { break },
                Some(done) = self.calls.join_next(), if !self.calls.is_empty() => self.joined(done).await,
                _ = renew.tick() => self.renew().await,
                _ = poll.tick() => {
                    if drill_warned.elapsed() >= Duration::from_secs(600) {
                        drill_warned = Instant::now();
                        self.warn_drill();
                    }
                    self.step().await
                }
                Some(m) = self.manual.recv() => self.manual_call(m).await,
            }
        }
        // calls asked for now are refused: their reply channel is dropped
        self.manual.close();
        self.shutdown(&mut renew).await;
    }

    /// A drill clock moves the calling windows: said loudly, at start and
    /// every ten minutes (`dialer.drill`).
    fn warn_drill(&self) {
        if let Some(start) = self.s.clock_start {
            warn!(
                clock_start = %start.to_rfc3339(),
                now_in_the_drill = %self.now_v().with_timezone(&self.s.policy.offset).to_rfc3339(),
                "DRILL: the dialer's clock is not the real time (dialer.clock_start, dialer.drill); \
                 calling windows follow the drill clock — never in production"
            );
        }
    }

    async fn shutdown(&mut self, renew: &mut tokio::time::Interval) {
        let deadline = Instant::now() + self.s.shutdown_deadline;
        let n = self.active.len();
        self.set_status(|st| {
            st.state = "stopping";
            st.detail = Some(format!("no new calls; {n} in progress may finish"));
        })
        .await;
        let mut hung_up = false;
        while !self.calls.is_empty() {
            tokio::select! {
                Some(done) = self.calls.join_next() => self.joined(done).await,
                _ = renew.tick() => self.renew().await,
                _ = tokio::time::sleep_until(deadline), if !hung_up => {
                    warn!(calls = self.active.len(), "dialer shutdown deadline: ending the calls in progress");
                    let _ = self.call_stop.send(true);
                    hung_up = true;
                }
            }
        }
        match self.store().release_instance(&self.s.instance).await {
            Ok(n) if n > 0 => info!(tasks = n, "dialer: leases given back"),
            Ok(_) => {}
            Err(e) => warn!(error = %e, "dialer: leases not given back; they expire by themselves"),
        }
        self.set_status(|st| {
            st.state = "stopped";
            st.detail = None;
        })
        .await;
        info!("dialer stopped");
    }

    async fn joined(&mut self, done: Result<CallDone, tokio::task::JoinError>) {
        match done {
            Ok(done) => {
                let span = info_span!("task", task = %done.task, key = %done.key, agent = %done.agent);
                self.after_call(done).instrument(span).await;
            }
            Err(e) => {
                // A call task panicked: its lease expires and another poll
                // (or instance) takes the task up.
                warn!(error = %e, "dialer: a call task failed");
            }
        }
    }

    /// One poll: claims and places calls while agents and slots are free.
    async fn step(&mut self) {
        let s = self.s.clone();
        let now_v = self.now_v();
        match s.policy.gate(&s.calendar, now_v) {
            Ok(Gate::Open { .. }) => {}
            Ok(Gate::Closed { why, opens }) => {
                let opens = opens
                    .map(|t| t.with_timezone(&self.s.policy.offset).to_rfc3339())
                    .unwrap_or_else(|| "not within 31 days".into());
                self.set_status(|st| {
                    st.state = "closed";
                    st.detail = Some(format!("{}; next window opens {opens}", why.as_str()));
                })
                .await;
                return;
            }
            Err(e) => {
                self.set_status(|st| {
                    st.state = "error";
                    st.detail = Some("no calls: the trading calendar does not cover today".into());
                    st.last_error = Some(e.to_string());
                })
                .await;
                return;
            }
        }
        if self.active.len() >= self.s.max_calls {
            let max = self.s.max_calls;
            self.set_status(|st| {
                st.state = "full";
                st.detail = Some(format!("{max} calls in progress (dialer.max_concurrent_calls)"));
            })
            .await;
            return;
        }
        let now = Utc::now();
        let agents = match self.store().free_agents(now).await {
            Ok(a) => a,
            Err(e) => return self.failed("reading the free agents", e).await,
        };
        let mut unregistered = Vec::new();
        let mut placed = 0;
        let mut refused = 0;
        let dir = if agents.is_empty() {
            None
        } else {
            match self.store().staff().await {
                Ok(staff) => Some(Directory::new(staff)),
                Err(e) => return self.failed("reading the staff list", e).await,
            }
        };
        for (agent, sip_uri) in agents {
            if self.active.len() >= self.s.max_calls {
                break;
            }
            // our own calls, should their leases have run out (the database
            // was unreachable for a while): never a second call for them
            if self.active.values().any(|a| a.agent == agent) {
                continue;
            }
            let Some(agent_uri) = sip_uri.as_deref().and_then(|u| Uri::parse(u).ok()) else {
                debug!(%agent, "dialer: agent without a usable sip_uri");
                continue;
            };
            // built-in registrar: an agent whose softphone is not registered is not available
            if self.registrar_mode && self.svc.endpoint.resolve(&agent_uri).await.is_none() {
                unregistered.push(agent);
                continue;
            }
            let dir = dir.as_ref().expect("staff read when agents are free");
            let today = s.policy.local_day(now_v);
            let avoidance = &s.avoidance;
            let running = &self.active;
            let mut eligible = |t: &crate::store::TaskRow, c: &crate::domain::facts::Client| {
                !running.contains_key(&t.id)
                    && may_call(dir, avoidance, &agent, c, t.compliance, today).is_ok()
            };
            // the claim's own time (the poll's may be a few claims old)
            let now = Utc::now();
            let spec =
                ClaimSpec { instance: &s.instance, agent: &agent, now, lease_until: self.lease_until(now) };
            match self.store().claim_task(&spec, &mut eligible).await {
                Ok(ClaimResult::Claimed(c)) => {
                    let span = info_span!("task", task = %c.task.id, key = %c.task.key, agent = %agent);
                    if self.start_call(*c, agent, agent_uri).instrument(span).await.is_ok() {
                        placed += 1;
                    }
                }
                Ok(ClaimResult::NoTask { refused: r }) => refused += r,
                Ok(ClaimResult::AgentBusy) => {}
                Err(e) => return self.failed("claiming a task", e).await,
            }
        }
        let mut detail = Vec::new();
        if !unregistered.is_empty() {
            detail.push(format!("softphone not registered: {}", unregistered.join(", ")));
        }
        if refused > 0 {
            detail.push(format!("{refused} ready task(s) refused to the free agents by avoidance (E7)"));
        }
        let state = if placed > 0 || !self.active.is_empty() { "dialing" } else { "idle" };
        self.set_status(|st| {
            st.state = state;
            st.detail = (!detail.is_empty()).then(|| detail.join("; "));
            st.calls_placed += placed;
            st.last_error = None;
        })
        .await;
    }

    async fn failed(&mut self, what: &str, e: StoreError) {
        warn!(error = %e, "dialer: {what} failed");
        let msg = format!("{what}: {e}");
        self.set_status(|st| {
            st.state = "error";
            st.detail = Some("the database failed; retrying at the next poll".into());
            st.last_error = Some(msg);
        })
        .await;
    }

    /// Checks avoidance again and places the call: its id when placed, or
    /// why not (the claim is given back).
    async fn start_call(&mut self, c: Claimed, agent: String, agent_uri: Uri) -> Result<Uuid, ManualRefused> {
        let now = Utc::now();
        let task = c.task;
        if c.abandoned_calls > 0 {
            warn!(
                calls = c.abandoned_calls,
                "dialer: took up a task whose instance lost its lease; its call closed as interrupted"
            );
        }
        // the task's last call ended, but a crash came before its attempt
        // was written back (found by the soak: the restarted dialer called
        // the client again): write it back now instead of calling. A call
        // cut by the crash (`interrupted`) is retried as usual.
        match self.store().unwritten_call(task.id, task.last_call_id).await {
            Ok(Some(call)) if call.outcome.as_deref() != Some("interrupted") => {
                let outcome = call.outcome.clone().unwrap_or_default();
                warn!(call = %call.id, %outcome, "dialer: the task's last call ended before a restart without its attempt written; written now, not called again");
                let why = call.reason.clone().unwrap_or_default();
                self.write_back(
                    task.id,
                    &agent,
                    task.attempts as u32,
                    &outcome,
                    Some(call.id),
                    &why,
                    call.agent_status,
                )
                .await;
                return Err(ManualRefused::Task(
                    "its last call had ended; its attempt is written now".into(),
                ));
            }
            Ok(_) => {}
            Err(e) => warn!(error = %e, "dialer: cannot read the task's last call; calling"),
        }
        #[cfg(feature = "test-hooks")]
        test_pause_before_recheck().await;
        // E7, again, on fresh rows, right before the INVITE: the client,
        // and the reporting lines of the agent and the client's introducer
        let recheck = async {
            let client = self.store().client(&task.client_id).await?;
            let staff = self.store().staff_lines(&agent, client.introducer_id.as_deref()).await?;
            Ok::<_, StoreError>((Directory::new(staff), client))
        }
        .await;
        let client = match recheck {
            Ok((dir, client)) => {
                let today = self.s.policy.local_day(self.now_v());
                if let Err(why) = may_call(&dir, &self.s.avoidance, &agent, &client, task.compliance, today) {
                    warn!(%why, "dialer: avoidance refused the call at dial time (E7); claim given back");
                    let reason = format!("avoidance at dial time: {why}");
                    if let Err(e) = self
                        .store()
                        .release_claim(&self.s.instance, task.id, &agent, now, None, &reason)
                        .await
                    {
                        warn!(error = %e, "dialer: claim not given back; its lease expires");
                    }
                    return Err(ManualRefused::Avoidance(why.to_string()));
                }
                client
            }
            Err(e) => {
                warn!(error = %e, "dialer: cannot check avoidance at dial time; claim given back");
                let _ = self
                    .store()
                    .release_claim(&self.s.instance, task.id, &agent, now, None, "check failed")
                    .await;
                return Err(ManualRefused::Failed(format!("avoidance could not be checked: {e}")));
            }
        };
        let Some(client_uri) = self.s.raw.client_uri_for(&client.phone) else {
            // imported phones are checked, so this is a changed template or row
            warn!("dialer: the client's phone does not make a SIP URI; attempt counted as failed");
            let after = self.s.retry.after(Attempt::Failed, task.attempts as u32, now);
            let end = AttemptEnd {
                instance: &self.s.instance,
                task: task.id,
                agent: &agent,
                call_id: None,
                outcome: "failed",
                attempts: after.attempts,
                next: after.next,
                now,
                wrap_up_until: None,
                pause_reason: None,
            };
            if let Err(e) = self.store().finish_attempt(&end).await {
                warn!(error = %e, "dialer: attempt not written; the lease expires");
            }
            return Err(ManualRefused::Task("the client's phone does not make a SIP URI".into()));
        };
        // the screen-pop, before the agent's phone rings
        let call_id = Uuid::now_v7();
        let today = self.s.policy.local_day(self.now_v());
        match offer(self.store(), &task, &client, call_id, today).await {
            Ok(o) => self.hub.tell(&agent, &Event::Offered(Box::new(o))).await,
            Err(e) => warn!(error = %e, "dialer: the screen-pop could not be read; calling anyway"),
        }
        let (progress, mut heard) = mpsc::unbounded_channel();
        let req = CallRequest {
            call_id: Some(call_id),
            progress: Some(progress),
            agent: agent_uri,
            client: client_uri,
            client_id: Some(task.client_id.clone()),
            task_id: Some(task.id.to_string()),
            kind: Some(task.retention_kind.clone()),
            agent_id: Some(agent.clone()),
            max_duration: None,
            claimed_at: Some(c.claimed_at),
        };
        info!(attempt = task.attempts + 1, "dialer: calling the agent, then the client");
        let svc = self.svc.clone();
        let stop = self.call_stop.subscribe();
        let (id, key, attempts_before) = (task.id, task.key.clone(), task.attempts as u32);
        let agent2 = agent.clone();
        let hub = self.hub.clone();
        let span = info_span!("call", task = %id, agent = %agent);
        self.calls.spawn(
            async move {
                // the call's progress goes to the agent's feed as it comes
                let forward = async {
                    while let Some(p) = heard.recv().await {
                        let (call_id, task_id) = (call_id, id);
                        let ev = match p {
                            Progress::AgentRinging => Event::AgentRinging { call_id, task_id },
                            Progress::ClientRinging => Event::ClientRinging { call_id, task_id },
                            Progress::Connected => Event::Connected { call_id, task_id },
                        };
                        hub.tell(&agent2, &ev).await;
                    }
                };
                let (result, ()) = tokio::join!(Box::pin(place_call(&svc, req, stop)), forward);
                let ended = match &result {
                    Ok(r) => Event::Ended {
                        call_id: r.call_id,
                        task_id: id,
                        outcome: r.outcome.as_str().to_string(),
                        reason: r.reason.clone(),
                        recording_id: r.recording.as_ref().map(|rec| rec.id),
                        sealed: r.recording.is_some(),
                        duration_ms: r.recording.as_ref().map(|rec| rec.duration_ms),
                    },
                    Err(e) => Event::Ended {
                        call_id,
                        task_id: id,
                        outcome: "failed".into(),
                        reason: Some(format!("the call could not be placed: {e}")),
                        recording_id: None,
                        sealed: false,
                        duration_ms: None,
                    },
                };
                hub.tell(&agent2, &ended).await;
                CallDone { task: id, key, agent: agent2, attempts_before, result }
            }
            .instrument(span),
        );
        self.active.insert(id, Active { agent });
        Ok(call_id)
    }

    /// A call placed by hand: the window (unless overridden), the agent's
    /// phone, the claim of that task (E7), then [`start_call`]
    /// (Self::start_call) as for the dialer's own.
    async fn manual_call(&mut self, m: ManualCall) {
        let span = info_span!("manual", task = %m.task, agent = %m.agent, by = %m.by);
        let r = self.manual_inner(&m).instrument(span).await;
        if let Ok(id) = r {
            self.set_status(|st| st.calls_placed += 1).await;
            info!(call = %id, task = %m.task, agent = %m.agent, by = %m.by, "dialer: call placed by hand");
        }
        let _ = m.reply.send(r);
    }

    async fn manual_inner(&mut self, m: &ManualCall) -> Result<Uuid, ManualRefused> {
        let s = self.s.clone();
        let failed = |e: StoreError| ManualRefused::Failed(format!("the database failed: {e}"));
        match s.policy.gate(&s.calendar, self.now_v()) {
            Ok(Gate::Open { .. }) => {}
            Ok(Gate::Closed { why, .. }) if m.override_window.is_none() => {
                return Err(ManualRefused::WindowShut(why.as_str().to_string()));
            }
            Ok(Gate::Closed { why, .. }) => {
                warn!(why = why.as_str(), reason = ?m.override_window, by = %m.by, "dialer: calling window overridden");
            }
            Err(e) => return Err(ManualRefused::WindowShut(format!("the trading calendar: {e}"))),
        }
        if self.active.values().any(|a| a.agent == m.agent) {
            return Err(ManualRefused::AgentBusy(m.agent.clone()));
        }
        // a call by hand counts against the same lines as the dialer's own
        if self.active.len() >= s.max_calls {
            return Err(ManualRefused::LinesFull(s.max_calls));
        }
        let staff = self.store().staff().await.map_err(failed)?;
        let agent_uri = staff
            .iter()
            .find(|x| x.staff_id == m.agent)
            .and_then(|x| x.sip_uri.as_deref())
            .and_then(|u| Uri::parse(u).ok())
            .ok_or_else(|| ManualRefused::NoPhone(m.agent.clone()))?;
        if self.registrar_mode && self.svc.endpoint.resolve(&agent_uri).await.is_none() {
            return Err(ManualRefused::NotRegistered(m.agent.clone()));
        }
        let dir = Directory::new(staff);
        let today = s.policy.local_day(self.now_v());
        let mut why = None;
        let mut eligible = |t: &crate::store::TaskRow, c: &crate::domain::facts::Client| match may_call(
            &dir,
            &s.avoidance,
            &m.agent,
            c,
            t.compliance,
            today,
        ) {
            Ok(()) => true,
            Err(e) => {
                why = Some(e.to_string());
                false
            }
        };
        let now = Utc::now();
        let spec =
            ClaimSpec { instance: &s.instance, agent: &m.agent, now, lease_until: self.lease_until(now) };
        let claimed = self.store().claim_this_task(&spec, m.task, &mut eligible).await.map_err(failed)?;
        match claimed {
            ClaimResult::Claimed(c) => {
                if let Some(reason) = &m.override_window {
                    let e = crate::audit::AuditEvent::new(
                        &m.by,
                        crate::audit::AuditAction::CallWindowOverridden,
                        m.task,
                        serde_json::json!({"agent_id": m.agent, "reason": reason}),
                    );
                    if let Err(e) = self.store().append_audit(&e).await {
                        let _ = self
                            .store()
                            .release_claim(&s.instance, m.task, &m.agent, now, None, "not audited")
                            .await;
                        return Err(failed(e));
                    }
                }
                let span = info_span!("task", task = %c.task.id, key = %c.task.key, agent = %m.agent);
                self.start_call(*c, m.agent.clone(), agent_uri).instrument(span).await
            }
            ClaimResult::AgentBusy => Err(ManualRefused::AgentBusy(m.agent.clone())),
            ClaimResult::NoTask { refused } if refused > 0 => {
                Err(ManualRefused::Avoidance(why.unwrap_or_else(|| "refused".into())))
            }
            ClaimResult::NoTask { .. } => {
                let t = self.store().task(m.task).await.map_err(failed)?;
                Err(ManualRefused::Task(if t.state != "open" {
                    format!("task {} is {}", t.key, t.state)
                } else if t.awaiting_record_since.is_some() {
                    format!("task {} waits for the record of its last call", t.key)
                } else {
                    format!("task {} is being called (by the dialer or another person)", t.key)
                }))
            }
        }
    }

    async fn after_call(&mut self, done: CallDone) {
        self.active.remove(&done.task);
        let now = Utc::now();
        let (outcome, call_id, why) = match &done.result {
            Ok(r) => (r.outcome.as_str(), Some(r.call_id), r.reason.clone().unwrap_or_default()),
            Err(e) => {
                // no calls row, so no INVITE either: give the claim back
                warn!(error = %e, "dialer: the call could not be traced, so it was not placed");
                let retry = now + chrono::Duration::from_std(self.s.retry.failed_delay).unwrap_or_default();
                let _ = self
                    .store()
                    .release_claim(
                        &self.s.instance,
                        done.task,
                        &done.agent,
                        now,
                        Some(retry),
                        "call not traced",
                    )
                    .await;
                return;
            }
        };
        let status = done.result.as_ref().ok().and_then(|r| r.agent.status);
        self.write_back(done.task, &done.agent, done.attempts_before, outcome, call_id, &why, status).await;
    }

    /// Writes an attempt's end back to its task and agent (`finish_attempt`)
    /// with what the retry policy decides, and tells the agent's feed.
    #[allow(clippy::too_many_arguments)]
    async fn write_back(
        &mut self,
        task: Uuid,
        agent: &str,
        attempts_before: u32,
        outcome: &str,
        call_id: Option<Uuid>,
        why: &str,
        agent_status: Option<u16>,
    ) {
        let now = Utc::now();
        let attempt = Attempt::from_outcome(outcome).unwrap_or(Attempt::Failed);
        let after = self.s.retry.after(attempt, attempts_before, now);
        let pause_reason = after.pause_agent.then(|| match agent_status {
            Some(s) => format!("did not answer a callback call (agent leg {s}; {why})"),
            None => format!("did not answer a callback call ({why})"),
        });
        let wrap_up_until = (attempt == Attempt::Completed && !self.s.wrap_up.is_zero())
            .then(|| now + chrono::Duration::from_std(self.s.wrap_up).unwrap_or_default());
        let end = AttemptEnd {
            instance: &self.s.instance,
            task,
            agent,
            call_id,
            outcome,
            attempts: after.attempts,
            next: after.next,
            now,
            wrap_up_until,
            pause_reason: pause_reason.as_deref(),
        };
        let written = self.store().finish_attempt(&end).await;
        if let (Ok(AttemptWritten::Moved), Some(call_id), Next::AwaitRecord) = (&written, call_id, after.next)
        {
            let ev = Event::WrapUp { call_id, task_id: task, deadline: wrap_up_until };
            self.hub.tell(agent, &ev).await;
        }
        if let (Ok(AttemptWritten::Moved), Some(reason)) = (&written, &pause_reason) {
            let ev = Event::State {
                state: AgentState::Paused.as_str().into(),
                reason: Some(reason.clone()),
                by: format!("dialer@{}", self.s.instance),
                since: now,
            };
            self.hub.tell(agent, &ev).await;
        }
        match written {
            Ok(AttemptWritten::Moved) => {
                let next = match after.next {
                    Next::AwaitRecord => "awaiting the callback record".to_string(),
                    Next::RetryAt(t) => {
                        format!("retry at {}", t.with_timezone(&self.s.policy.offset).to_rfc3339())
                    }
                    Next::CloseUnreachable => "closed unreachable".to_string(),
                };
                info!(call = ?call_id, %outcome, attempts = after.attempts, %next, "dialer: attempt done");
            }
            Ok(AttemptWritten::AlreadyFinished) => {
                info!(%outcome, "dialer: attempt done; the task was closed meanwhile")
            }
            Ok(AttemptWritten::LeaseLost) => {
                warn!(%outcome, "dialer: the task's lease was lost during the call; another instance has it")
            }
            Err(e) => {
                warn!(error = %e, "dialer: attempt not written; the lease expires and the task is retried")
            }
        }
        if let Some(reason) = &pause_reason {
            warn!(%agent, %reason, "dialer: agent paused");
        }
    }

    /// Renews the leases of the calls in progress.
    async fn renew(&mut self) {
        if self.active.is_empty() {
            return;
        }
        let until = self.lease_until(Utc::now());
        for (task, a) in &self.active {
            match self.svc.store.renew_lease(&self.s.instance, *task, &a.agent, until).await {
                Ok(true) => {}
                Ok(false) => {
                    warn!(%task, "dialer: lease lost during a call (another instance took the task)")
                }
                Err(e) => warn!(%task, error = %e, "dialer: lease not renewed"),
            }
        }
    }
}
