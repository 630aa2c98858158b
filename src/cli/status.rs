//! `huifang status [--format table|json]` (the CLI's door onto
//! [`crate::ops::status`]): what the dialers are doing,
//! read from the database (so it works against running `serve`s, on this
//! machine or others sharing the PostgreSQL database):
//!
//! - **dialer** — each instance: its state (`dialing`, `idle`, `full`,
//!   `closed` outside the calling windows, `error`, `stopping`,
//!   `stopped`), why, its calls, its last heartbeat; an instance whose
//!   heartbeat is older than 15 s and that did not say `stopped` is shown
//!   as `gone`;
//! - **agents** — each session: on call, wrap-up, available, paused or
//!   logged out, since when, why, by whom, the task and the instance;
//! - **calls** — calls in progress (ids, task, instance, times; never a
//!   phone number);
//! - **queue** — open tasks ready now, waiting for a retry, in a call,
//!   awaiting their record (and how many of those are overdue).

use anyhow::Context;
use chrono::Utc;
use serde_json::json;

use super::output::print;
use super::{Exit, Format, StatusArgs};
use crate::config::Config;
use crate::ops::access::Person;
use crate::ops::status;
use crate::store::Store;

/// Runs `huifang status`.
pub fn run(args: StatusArgs) -> anyhow::Result<Exit> {
    if args.format == Format::Csv {
        anyhow::bail!("--format csv: status has four sections; use table or json");
    }
    let cfg = Config::load(&args.config)?;
    super::init_logging(&cfg.log.level);
    let rt = tokio::runtime::Runtime::new().context("starting the async runtime")?;
    rt.block_on(async {
        let store = Store::open(&cfg.database_url()).await?;
        let r = status::snapshot(&store, &cfg, &Person::operator("cli")).await;
        store.close().await;
        let st = r?;
        let now = st.now;
        let ago = |t: chrono::DateTime<Utc>| format!("{}s ago", (now - t).num_seconds().max(0));
        let dialer_rows: Vec<Vec<String>> = st
            .instances
            .iter()
            .map(|i| {
                vec![
                    i.instance_id.clone(),
                    st.state_of(i),
                    i.detail.clone().unwrap_or_default(),
                    i.active_calls.to_string(),
                    i.calls_placed.to_string(),
                    ago(i.heartbeat_at),
                    i.last_error.clone().unwrap_or_default(),
                ]
            })
            .collect();
        let agent_rows: Vec<Vec<String>> = st
            .agents
            .iter()
            .map(|a| {
                vec![
                    a.staff_id.clone(),
                    a.presence(now).to_string(),
                    a.changed_at.to_rfc3339(),
                    a.reason.clone().unwrap_or_default(),
                    a.changed_by.clone(),
                    a.call_task.map(|t| t.to_string()).unwrap_or_default(),
                    a.call_owner
                        .clone()
                        .filter(|_| a.call_until.is_some_and(|u| u > now))
                        .unwrap_or_default(),
                ]
            })
            .collect();
        let call_rows: Vec<Vec<String>> = st
            .calls
            .iter()
            .map(|c| {
                vec![
                    c.id.to_string(),
                    c.task_id.clone().unwrap_or_default(),
                    c.instance.clone().unwrap_or_default(),
                    ago(c.started_at),
                    if c.answered_at.is_some() {
                        "talking"
                    } else if c.agent_answered_at.is_some() {
                        "ringing the client"
                    } else {
                        "ringing the agent"
                    }
                    .to_string(),
                ]
            })
            .collect();
        let queue = st.queue;
        let queue_row = vec![vec![
            queue.ready.to_string(),
            queue.waiting_retry.to_string(),
            queue.in_call.to_string(),
            queue.awaiting_record.to_string(),
            queue.record_overdue.to_string(),
        ]];
        match args.format {
            Format::Json => print(Format::Json, &[], &[], &st.json())?,
            f => {
                for n in &st.notices {
                    println!("notice: {n}\n");
                }
                type Section<'a> = (&'a str, &'a [&'a str], &'a Vec<Vec<String>>);
                let sections: [Section; 4] = [
                    (
                        "dialer",
                        &["INSTANCE", "STATE", "DETAIL", "CALLS", "PLACED", "HEARTBEAT", "LAST_ERROR"],
                        &dialer_rows,
                    ),
                    ("agents", &["AGENT", "STATE", "SINCE", "REASON", "BY", "TASK", "INSTANCE"], &agent_rows),
                    ("calls in progress", &["CALL", "TASK", "INSTANCE", "STARTED", "STAGE"], &call_rows),
                    (
                        "queue",
                        &["READY", "WAITING_RETRY", "IN_CALL", "AWAITING_RECORD", "RECORD_OVERDUE"],
                        &queue_row,
                    ),
                ];
                for (i, (title, headers, rows)) in sections.into_iter().enumerate() {
                    println!("{}{title}", if i > 0 { "\n" } else { "" });
                    print(f, headers, rows, &json!(null))?;
                }
            }
        }
        Ok(Exit::Ok)
    })
}
