//! A client as the supervisor and compliance pages show it
//! (`GET /api/v1/clients/{id}`), the audited reveal of a full number
//! (`POST /api/v1/clients/{id}/reveal`), and the search of calls by agent
//! and days (`GET /api/v1/calls`).
//!
//! The dossier puts everything in time order: the tasks and why each was
//! created, every attempt, the recordings (with their SHA-256, archive state,
//! retention and holds), the records, reviews and follow-ups, and — for
//! compliance — who played, downloaded or exported each recording, read
//! from the audit chain. Phone and ID numbers are masked for everyone; a
//! compliance officer may reveal one, and each reveal is an audit event.

use chrono::{DateTime, Utc};
use serde_json::{Value, json};

use super::OpsError;
use super::access::{ClientScope, Person, Role};
use super::recordings::{MAX_PAGE, Page};
use crate::audit::{AuditAction, AuditEvent};
use crate::domain::facts::{mask_name, mask_phone};
use crate::feed::events::mask_id_number;
use crate::store::{CallQuery, ClientCall, Store, StoreError, TaskFilter};

/// The audit actions the dossier shows as accesses to a recording.
const ACCESS: [&str; 7] = [
    "recording.played",
    "recording.downloaded",
    "recording.fetched",
    "recording.exported",
    "recording.access_denied",
    "hold.set",
    "hold.released",
];

fn time(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

async fn client_scope(
    store: &Store,
    p: &Person,
    client_id: &str,
) -> Result<crate::domain::facts::Client, OpsError> {
    if client_id.is_empty() || client_id.len() > 64 {
        return Err(OpsError::invalid("client_id", "1 to 64 characters"));
    }
    let client = match store.client(client_id).await {
        Ok(c) => c,
        Err(StoreError::NotFound { .. } | StoreError::Missing { .. }) => {
            return Err(OpsError::NotFound { what: "client", key: client_id.to_string() });
        }
        Err(e) => return Err(e.into()),
    };
    match ClientScope::of(p, Some(&client.branch))? {
        ClientScope::All if p.has(Role::Compliance) || p.supervises(&client.branch) => Ok(client),
        _ => Err(OpsError::Forbidden(
            "not a compliance officer, nor the supervisor of the client's branch".into(),
        )),
    }
}

/// Everything about `client_id` that `p` may see, in time order.
pub async fn dossier(store: &Store, p: &Person, client_id: &str) -> Result<Value, OpsError> {
    let client = client_scope(store, p, client_id).await?;
    let compliance = p.has(Role::Compliance);
    let tasks =
        store.tasks(&TaskFilter { client: Some(client_id.to_string()), ..TaskFilter::default() }).await?;
    let q = CallQuery { client_id: Some(client_id), ..CallQuery::default() };
    let calls = store.calls_page(&q).await?;
    let mut timeline: Vec<(DateTime<Utc>, Value)> = Vec::new();
    let mut records = Vec::new();
    for t in &tasks {
        timeline.push((
            t.created_at,
            json!({"what": "task.created", "task_id": t.id, "key": t.key, "kind": t.kind, "reason": t.reason,
                   "due_on": t.due_on}),
        ));
        if let Some(r) = store.record_of_task(t.id).await? {
            timeline.push((
                r.submitted_at,
                json!({"what": "record.submitted", "task_id": t.id, "record_id": r.id, "agent_id": r.agent_id,
                       "outcome": r.outcome, "problems": r.problems, "call_id": r.call_id}),
            ));
            if let (Some(at), Some(reviewer)) = (r.reviewed_at, &r.reviewer_id) {
                timeline.push((
                    at,
                    json!({"what": "record.reviewed", "record_id": r.id, "reviewer_id": reviewer,
                           "verdict": r.verdict, "note": r.review_note}),
                ));
            }
            let follow_up = store.follow_up_of(r.id).await?;
            records.push(json!({"task_id": t.id, "record": r, "follow_up": follow_up}));
        }
        if let (Some(at), true) = (t.closed_at, t.state != "open") {
            timeline.push((
                at,
                json!({"what": "task.closed", "task_id": t.id, "state": t.state, "outcome": t.outcome}),
            ));
        }
    }
    let mut accesses = Vec::new();
    for c in &calls {
        timeline.push((
            c.started_at,
            json!({"what": "call", "call_id": c.call_id, "task_id": c.task_id, "agent_id": c.agent_id,
                   "outcome": c.outcome, "answered": c.answered_at.is_some(), "recording_id": c.recording_id,
                   "duration_ms": c.duration_ms}),
        ));
        let Some(rec) = c.recording_id else { continue };
        if compliance {
            let mut after = 0;
            loop {
                let page = store.audit_of(&rec.to_string(), after, 500).await?;
                let done = page.len() < 500;
                after = page.last().map_or(after, |e| e.seq);
                for e in page.into_iter().filter(|e| ACCESS.contains(&e.action.as_str())) {
                    let v = json!({"what": e.action, "recording_id": rec, "actor": e.actor, "seq": e.seq,
                                   "detail": e.detail});
                    accesses.push(v.clone());
                    timeline.push((e.at, v));
                }
                if done {
                    break;
                }
            }
        }
    }
    timeline.sort_by_key(|(at, _)| *at);
    let timeline: Vec<Value> = timeline
        .into_iter()
        .map(|(at, mut v)| {
            v["at"] = json!(time(at));
            v
        })
        .collect();
    let calls: Vec<Value> = calls.iter().map(call_json).collect();
    Ok(json!({
        "client": {
            "client_id": client.client_id,
            "name": if compliance { client.name.clone() } else { mask_name(&client.name) },
            "phone_masked": mask_phone(&client.phone),
            "id_number_masked": client.id_number.as_deref().map(mask_id_number),
            "branch": client.branch,
            "opened_on": client.opened_on,
            "risk_level": client.risk_level,
            "introducer_id": if compliance { client.introducer_id.clone() } else { None },
            "broker_introduced": client.broker_introduced,
        },
        "may_reveal": compliance,
        "tasks": tasks.iter().map(|t| json!({
            "task_id": t.id, "key": t.key, "kind": t.kind, "due_on": t.due_on, "state": t.state,
            "outcome": t.outcome, "attempts": t.attempts, "reason": t.reason,
            "created_at": time(t.created_at), "closed_at": t.closed_at.map(time),
        })).collect::<Vec<_>>(),
        "calls": calls,
        "records": records,
        "accesses": accesses,
        "timeline": timeline,
    }))
}

fn call_json(c: &ClientCall) -> Value {
    json!({
        "call_id": c.call_id, "recording_id": c.recording_id, "client_id": c.client_id, "task_id": c.task_id,
        "agent_id": c.agent_id, "started_at": time(c.started_at), "answered_at": c.answered_at.map(time),
        "ended_at": c.ended_at.map(time), "outcome": c.outcome, "state": c.state, "sha256": c.sha256,
        "bytes": c.bytes, "duration_ms": c.duration_ms, "archive_key": c.archive_key,
        "retain_until": c.retain_until.map(time), "legal_hold": c.legal_hold, "archived": c.archived,
    })
}

/// A full number of `client_id` (`phone` or `id_number`), for compliance;
/// the reveal is an audit event (`client.revealed`) before the number is
/// returned.
pub async fn reveal(
    store: &Store,
    p: &Person,
    client_id: &str,
    field: &str,
) -> Result<Option<String>, OpsError> {
    if !p.has(Role::Compliance) {
        return Err(OpsError::Forbidden("only compliance reveals a full number".into()));
    }
    let client = client_scope(store, p, client_id).await?;
    let value = match field {
        "phone" => Some(client.phone.clone()),
        "id_number" => client.id_number.clone(),
        other => return Err(OpsError::invalid("field", format!("{other:?} is not phone or id_number"))),
    };
    let e = AuditEvent::new(
        &p.login,
        AuditAction::ClientRevealed,
        client_id,
        json!({"field": field, "role": p.role_text(), "address": p.address}),
    );
    store.append_audit(&e).await?;
    Ok(value)
}

/// Which calls to search.
#[derive(Debug, Clone, Default)]
pub struct SearchCalls {
    /// The agent who took them.
    pub agent_id: Option<String>,
    /// Started at or after.
    pub from: Option<DateTime<Utc>>,
    /// Started before.
    pub to: Option<DateTime<Utc>>,
    /// Only this outcome (`completed`, `no-answer`, …).
    pub outcome: Option<String>,
    /// The page size (1..=500).
    pub limit: i64,
}

/// Calls by agent and days, every attempt: compliance any agent, a
/// supervisor the agents of their branches, an agent their own.
pub async fn search(store: &Store, p: &Person, q: &SearchCalls) -> Result<Page<Value>, OpsError> {
    p.require_any(&[Role::Agent, Role::Supervisor, Role::Compliance])?;
    if !(1..=MAX_PAGE).contains(&q.limit) {
        return Err(OpsError::invalid("limit", format!("must be in 1..={MAX_PAGE}")));
    }
    let agent = match (&q.agent_id, p.has(Role::Compliance)) {
        (Some(a), true) => Some(a.clone()),
        (None, true) => None,
        (a, false) => {
            let want = a.clone().or_else(|| p.own_staff().map(str::to_string));
            let Some(want) = want else {
                return Err(OpsError::invalid("agent_id", "name the agent whose calls to search"));
            };
            let own = p.own_staff() == Some(want.as_str());
            let of_branch = if p.has(Role::Supervisor) {
                store.staff().await?.iter().any(|s| s.staff_id == want && p.supervises(&s.branch))
            } else {
                false
            };
            if !own && !of_branch {
                return Err(OpsError::Forbidden("not an agent of a branch you supervise".into()));
            }
            Some(want)
        }
    };
    let query = CallQuery {
        client_id: None,
        agent_id: agent.as_deref(),
        recorded_only: false,
        from: q.from,
        to: q.to,
        after: None,
        limit: Some(q.limit * 4),
    };
    let mut items: Vec<Value> = store
        .calls_page(&query)
        .await?
        .iter()
        .filter(|c| q.outcome.as_deref().is_none_or(|o| c.outcome.as_deref() == Some(o)))
        .map(call_json)
        .collect();
    items.truncate(q.limit as usize);
    Ok(Page { items, next: None })
}
