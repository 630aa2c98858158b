//! What the dialers are doing, read from the database (so it works against
//! running `serve`s on any machine sharing it): `huifang status` and
//! `GET /api/v1/status`.
//!
//! Compliance sees everything; a supervisor the agents of their branches
//! and those agents' calls (the dialer instances and the queue's counts
//! carry no client data and are shown whole).

use chrono::{DateTime, Utc};
use serde_json::{Value, json};

use super::OpsError;
use super::access::{Person, Role};
use crate::config::Config;
use crate::store::{AgentSession, CallInProgress, DialerBeat, QueueDepth, Store};

/// A heartbeat older than this means the instance is gone.
pub const GONE_AFTER_SECS: i64 = 15;

/// One look at the dialers.
#[derive(Debug, Clone)]
pub struct Status {
    /// When it was taken.
    pub now: DateTime<Utc>,
    /// The dialer instances.
    pub instances: Vec<DialerBeat>,
    /// The agents' sessions.
    pub agents: Vec<AgentSession>,
    /// Calls without an outcome.
    pub calls: Vec<CallInProgress>,
    /// The queue's counts.
    pub queue: QueueDepth,
    /// Things to know (the local archive is not write-once storage).
    pub notices: Vec<String>,
}

impl Status {
    /// An instance's state, `gone` when its heartbeat is old and it did not
    /// say `stopped`.
    pub fn state_of(&self, i: &DialerBeat) -> String {
        if i.state != "stopped" && (self.now - i.heartbeat_at).num_seconds() > GONE_AFTER_SECS {
            "gone".to_string()
        } else {
            i.state.clone()
        }
    }

    /// The whole look as JSON (what `huifang status --format json` prints).
    pub fn json(&self) -> Value {
        let instances: Vec<_> = self
            .instances
            .iter()
            .map(|i| {
                let mut v = serde_json::to_value(i).unwrap_or_default();
                v["state"] = json!(self.state_of(i));
                v
            })
            .collect();
        let agents: Vec<_> = self
            .agents
            .iter()
            .map(|a| {
                let mut v = serde_json::to_value(a).unwrap_or_default();
                v["presence"] = json!(a.presence(self.now).as_str());
                v
            })
            .collect();
        json!({"at": self.now, "dialers": instances, "agents": agents, "calls": self.calls, "queue": self.queue,
               "notices": self.notices})
    }
}

/// Takes one look, as `p` may see it.
pub async fn snapshot(store: &Store, cfg: &Config, p: &Person) -> Result<Status, OpsError> {
    p.require_any(&[Role::Compliance, Role::Supervisor])?;
    let now = Utc::now();
    let due = chrono::Duration::seconds(cfg.dialer.record_due_secs as i64);
    let mut status = Status {
        now,
        instances: store.dialer_instances().await?,
        agents: store.agent_sessions().await?,
        calls: store.calls_in_progress().await?,
        queue: store.queue_depth(now, now - due).await?,
        notices: if cfg.archive.backend == "local" {
            vec![crate::archive::LOCAL_NOTICE.to_string()]
        } else {
            Vec::new()
        },
    };
    if !p.sees_every_client() {
        let staff = store.staff().await?;
        let mine = |id: &str| staff.iter().any(|s| s.staff_id == id && p.supervises(&s.branch));
        status.agents.retain(|a| mine(&a.staff_id));
        status.calls.retain(|c| c.agent_id.as_deref().is_some_and(mine));
    }
    Ok(status)
}
