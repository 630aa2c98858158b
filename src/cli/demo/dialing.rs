//! The demo's dialing step, kept apart so that it can be switched to the
//! dialer.
//!
//! **Until the dialer of issue 6 is merged** the calls are placed here
//! directly with [`place_call`], one after the other, each linked to its
//! task (task id, client id, and the task's retention kind, which decides
//! how long the recording is kept). Avoidance (E7) is checked for the agent
//! before each INVITE, as the dialer must. Once the dialer is in, this
//! function becomes: claim these tasks for the logged-in agent, let the
//! dialer place their calls, and wait for their outcomes.

use tokio::sync::watch;

use crate::call::task::{CallReport, CallRequest, CallServices, place_call};
use crate::domain::avoidance::{Avoidance, Directory, may_call};
use crate::domain::facts::{Client, Staff};
use crate::sip::msg::Uri;
use crate::store::TaskRow;

/// One task to work: its client and where the client's phone answers.
pub struct Assignment {
    /// The task.
    pub task: TaskRow,
    /// Its client.
    pub client: Client,
    /// The client's phone (in a real deployment `sip:<phone>@<switch>`).
    pub client_uri: Uri,
}

/// The agent on duty: staff record and softphone.
pub struct OnDuty {
    /// Who.
    pub staff: Staff,
    /// Where the agent's softphone answers (`sip:agent1@…`).
    pub uri: Uri,
}

/// What became of one assignment.
pub enum Worked {
    /// The call was placed; its report (outcome, recording).
    Called(Box<CallReport>),
    /// Avoidance (E7) forbade this agent to make the callback.
    Refused(String),
}

/// Works the assignments with `agent`, one call at a time, in order;
/// returns one result per assignment (fewer when stopped). Errors only
/// when a call could not even be traced.
pub async fn work_tasks(
    svc: &CallServices,
    staff: &Directory,
    avoidance: &Avoidance,
    agent: &OnDuty,
    work: &[Assignment],
    stop: watch::Receiver<bool>,
) -> anyhow::Result<Vec<Worked>> {
    let today = super::super::output::today();
    let mut done = Vec::with_capacity(work.len());
    for a in work {
        if *stop.borrow() {
            break;
        }
        // E7, checked again at dial time.
        if let Err(why) =
            may_call(staff, avoidance, &agent.staff.staff_id, &a.client, a.task.compliance, today)
        {
            done.push(Worked::Refused(why.to_string()));
            continue;
        }
        let req = CallRequest {
            agent: agent.uri.clone(),
            client: a.client_uri.clone(),
            client_id: Some(a.task.client_id.clone()),
            task_id: Some(a.task.id.to_string()),
            kind: Some(a.task.retention_kind.clone()),
            max_duration: None,
        };
        let report = place_call(svc, req, stop.clone()).await?;
        done.push(Worked::Called(Box::new(report)));
    }
    Ok(done)
}
