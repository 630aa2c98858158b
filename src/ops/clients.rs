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
const ACCESS: [&str; 8] = [
    "recording.played",
    "recording.downloaded",
    "recording.fetched",
    "recording.exported",
    "recording.access_denied",
    "hold.set",
    "hold.release_requested",
    "hold.released",
];

/// The start of a day in Beijing (UTC+8), where the callback dates are.
fn day_in_beijing(d: chrono::NaiveDate) -> DateTime<Utc> {
    d.and_hms_opt(0, 0, 0).expect("midnight exists").and_utc() - chrono::Duration::hours(8)
}

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
            if let Some(f) = &follow_up {
                timeline.push((
                    r.submitted_at,
                    json!({"what": "follow_up.opened", "follow_up_id": f.id, "record_id": r.id,
                           "problems": f.problems, "answer_due_on": f.answer_due_on,
                           "resolve_due_on": f.resolve_due_on}),
                ));
                for (what, on) in
                    [("follow_up.answered", f.answered_on), ("follow_up.resolved", f.resolved_on)]
                {
                    if let Some(on) = on {
                        timeline.push((
                            day_in_beijing(on),
                            json!({"what": what, "follow_up_id": f.id, "on": on}),
                        ));
                    }
                }
            }
            let spot_check = store.spot_check_of(r.id).await?;
            if let Some(c) = &spot_check {
                timeline.push((
                    c.checked_at,
                    json!({"what": "record.spot_checked", "record_id": r.id, "checker_id": c.checker_id,
                           "verdict": c.verdict, "note": c.note}),
                ));
            }
            records.push(
                json!({"task_id": t.id, "record": r, "follow_up": follow_up, "spot_check": spot_check}),
            );
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
        "agent_id": c.agent_id, "kind": c.kind, "started_at": time(c.started_at), "answered_at": c.answered_at.map(time),
        "ended_at": c.ended_at.map(time), "outcome": c.outcome, "state": c.state, "sha256": c.sha256,
        "bytes": c.bytes, "duration_ms": c.duration_ms, "archive_key": c.archive_key,
        "retain_until": c.retain_until.map(time), "legal_hold": c.legal_hold, "archived": c.archived,
        "hold_state": c.hold_state, "hold_requested_by": c.hold_requested_by,
    })
}

/// Whether `p` holds one of `reveal_roles` (`[http] reveal_roles`).
pub fn may_reveal(p: &Person, reveal_roles: &[String]) -> bool {
    reveal_roles.iter().filter_map(|r| Role::from_name(r)).any(|r| p.has(r))
}

/// A full number of `client_id` (`phone` or `id_number`), for a holder of
/// one of `reveal_roles` who may see the client; the reveal is an audit
/// event (`client.revealed`) before the number is returned.
pub async fn reveal(
    store: &Store,
    p: &Person,
    reveal_roles: &[String],
    client_id: &str,
    field: &str,
) -> Result<Option<String>, OpsError> {
    if !may_reveal(p, reveal_roles) {
        return Err(OpsError::Forbidden(format!(
            "only {} may reveal a full number (http.reveal_roles)",
            reveal_roles.join(" or ")
        )));
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

/// Which calls to search; every filter is optional.
#[derive(Debug, Clone, Default)]
pub struct SearchCalls {
    /// The agent who took them.
    pub agent_id: Option<String>,
    /// The client called.
    pub client_id: Option<String>,
    /// The kind of callback (`new_account`, …).
    pub kind: Option<String>,
    /// Only this outcome (`completed`, `no-answer`, …).
    pub outcome: Option<String>,
    /// Started at or after.
    pub from: Option<DateTime<Utc>>,
    /// Started before.
    pub to: Option<DateTime<Utc>>,
    /// The `next` of the previous page.
    pub cursor: Option<String>,
    /// The page size (1..=500).
    pub limit: i64,
}

/// Calls, newest first, every attempt (answered or not), a page at a time
/// (keyset cursor): compliance any call, a supervisor the calls of their
/// branches' clients (naming an agent of another branch is refused), an
/// agent their own.
pub async fn search(store: &Store, p: &Person, q: &SearchCalls) -> Result<Page<Value>, OpsError> {
    p.require_any(&[Role::Agent, Role::Supervisor, Role::Compliance])?;
    if !(1..=MAX_PAGE).contains(&q.limit) {
        return Err(OpsError::invalid("limit", format!("must be in 1..={MAX_PAGE}")));
    }
    for (field, v) in [("agent_id", &q.agent_id), ("client_id", &q.client_id), ("kind", &q.kind)] {
        if v.as_ref().is_some_and(|v| v.is_empty() || v.len() > 64) {
            return Err(OpsError::invalid(field, "1 to 64 characters"));
        }
    }
    if let Some(o) = &q.outcome
        && !crate::store::OUTCOMES.contains(&o.as_str())
    {
        return Err(OpsError::invalid("outcome", format!("{o:?} is not an outcome of a call")));
    }
    if let Some(k) = &q.kind
        && crate::domain::kinds::TaskKind::from_name(k).is_none()
    {
        return Err(OpsError::invalid("kind", format!("{k:?} is not a kind of callback")));
    }
    let (branches, own) = p.list_scope()?;
    let agent = match (&own, &q.agent_id) {
        // an agent: their own calls, whatever they named
        (Some(me), Some(a)) if a != me => {
            return Err(OpsError::Forbidden("an agent searches their own calls only".into()));
        }
        (Some(me), _) => Some(me.clone()),
        (None, a) => a.clone(),
    };
    if let (Some(b), Some(a)) = (&branches, &q.agent_id)
        && !store.staff().await?.iter().any(|s| &s.staff_id == a && b.contains(&s.branch))
    {
        return Err(OpsError::Forbidden("not an agent of a branch you supervise".into()));
    }
    let after = q.cursor.as_deref().map(super::recordings::decode_cursor).transpose()?;
    let query = CallQuery {
        client_id: q.client_id.as_deref(),
        agent_id: agent.as_deref(),
        kind: q.kind.as_deref(),
        outcome: q.outcome.as_deref(),
        branches: branches.as_deref(),
        from: q.from,
        to: q.to,
        after,
        newest_first: true,
        limit: Some(q.limit + 1),
        ..CallQuery::default()
    };
    let mut rows = store.calls_page(&query).await?;
    let next = if rows.len() as i64 > q.limit {
        rows.truncate(q.limit as usize);
        rows.last().map(|c| super::recordings::encode_cursor(c.started_at, c.call_id))
    } else {
        None
    };
    Ok(Page { items: rows.iter().map(call_json).collect(), next })
}
