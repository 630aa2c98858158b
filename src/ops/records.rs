//! Callback records: submit after a callback, review by someone else,
//! move a follow-up forward (`huifang record …`, `POST /api/v1/records`,
//! `POST /api/v1/records/{id}/review`, `GET /api/v1/records/{id}`).
//!
//! - submit checks avoidance (E7: the agent may make this callback — not
//!   the introducer, not in their reporting line, not sales for a
//!   compliance callback, not inactive or departed), checks the answers
//!   against the form's checklist, then stores the record, closes the task
//!   and, when problems were found, opens a follow-up due in 2 and 15
//!   business days;
//! - review: by an active reviewer, supervisor or compliance officer who is
//!   not the author (on the web: the person's own staff row).

use std::collections::BTreeMap;

use base64::Engine;
use chrono::Utc;
use uuid::Uuid;

use super::OpsError;
use super::access::{Person, Role, Via};
use super::recordings::{MAX_PAGE, Page};
use crate::config::Config;
use crate::domain::avoidance::{Directory, may_call};
use crate::domain::calendar::CalendarError;
use crate::domain::facts::Role as StaffRole;
use crate::domain::kinds::TaskKind;
use crate::domain::records::{Form, Outcome, RecordDraft, follow_up_dues};
use crate::feed::{Event, Hub};
use crate::store::{FollowUpRow, NewFollowUp, NewRecord, RecordFilter, RecordRow, Store, TaskRow, Verdict};

fn cal_err(e: CalendarError) -> OpsError {
    OpsError::invalid("called_on", e.to_string())
}

/// A callback record to submit: `record submit`'s arguments, parsed.
pub struct Submission {
    /// The task: its id, or its key such as `new_account:C0001`.
    pub task: String,
    /// The agent who made the callback (staff id).
    pub agent: String,
    /// How it went.
    pub outcome: Outcome,
    /// Question id → answer.
    pub answers: BTreeMap<String, String>,
    /// Problems found (opens a follow-up).
    pub problems: Option<String>,
    /// The agent's notes (备注).
    pub notes: Option<String>,
    /// How the callback was made (`phone`, …).
    pub method: String,
    /// The recorded call.
    pub call_id: Option<Uuid>,
    /// Day of the callback.
    pub called_on: chrono::NaiveDate,
}

/// What `submit_record` stored.
pub struct Submitted {
    /// The record's id.
    pub id: Uuid,
    /// The task it closed.
    pub task: TaskRow,
    /// Its form.
    pub form: Form,
    /// Special callbacks: when the ordering department gets the record.
    pub feedback_due_on: Option<chrono::NaiveDate>,
    /// The follow-up opened for the problems found.
    pub follow_up: Option<NewFollowUp>,
    /// The same record had already been submitted (a submit sent twice):
    /// nothing new was stored.
    pub replayed: bool,
}

/// Submits a callback record: checks avoidance (E7) for its agent and the
/// answers against the form, then stores the record, closes the task and
/// opens a follow-up when problems were found. Used by `record submit` and
/// by `huifang demo`; on the web an agent submits their own records.
pub async fn submit_record(
    store: &Store,
    hub: &Hub,
    cfg: &Config,
    cal: &crate::domain::calendar::Calendar,
    p: &Person,
    s: Submission,
) -> Result<Submitted, OpsError> {
    if p.via != Via::Cli && p.own_staff() != Some(s.agent.as_str()) {
        return Err(OpsError::Forbidden("an agent submits their own callback records".into()));
    }
    let task = super::tasks::find(store, &s.task).await?;
    let kind = TaskKind::from_name(&task.kind)
        .ok_or_else(|| OpsError::Internal(format!("task {} has an unknown kind", task.key)))?;
    if task.state != "open"
        && let Some(done) = replay(store, &task, kind, &s).await?
    {
        return Ok(done);
    }
    let client = store.client(&task.client_id).await?;
    let dir = Directory::new(store.staff().await?);
    if let Err(why) = may_call(&dir, &cfg.avoidance(), &s.agent, &client, task.compliance, s.called_on) {
        return Err(OpsError::Forbidden(format!(
            "refused (E7): agent {} may not make this callback: {why}",
            s.agent
        )));
    }
    let draft = RecordDraft {
        kind,
        agent_id: s.agent.clone(),
        called_on: s.called_on,
        method: s.method.clone(),
        outcome: s.outcome,
        answers: s.answers,
        problems: s.problems.filter(|p| !p.trim().is_empty()),
    };
    let form = draft.validate().map_err(record_error)?;
    let feedback_due_on = match form {
        Form::Special => Some(
            cal.add_business_days(s.called_on, cfg.records.special_feedback_business_days)
                .map_err(cal_err)?,
        ),
        _ => None,
    };
    let follow_up = if draft.has_problems() {
        let (answer_due_on, resolve_due_on) =
            follow_up_dues(cal, s.called_on, &cfg.records).map_err(cal_err)?;
        Some(NewFollowUp { id: Uuid::now_v7(), opened_on: s.called_on, answer_due_on, resolve_due_on })
    } else {
        None
    };
    let rec = NewRecord {
        id: Uuid::now_v7(),
        task_id: task.id,
        form,
        agent_id: draft.agent_id,
        method: draft.method,
        call_id: s.call_id,
        called_on: s.called_on,
        outcome: s.outcome,
        answers: draft.answers,
        problems: draft.problems,
        notes: s.notes.filter(|n| !n.trim().is_empty()),
        feedback_due_on,
        submitted_at: Utc::now(),
    };
    let stored = store.submit_record(&rec, follow_up.as_ref()).await?;
    let ev = Event::RecordSaved {
        task_id: task.id,
        record_id: stored.id,
        call_id: s.call_id,
        outcome: s.outcome.as_str().into(),
    };
    hub.tell(&stored.agent_id, &ev).await;
    Ok(Submitted { id: stored.id, task, form, feedback_due_on, follow_up, replayed: false })
}

/// A record that does not fit its form, naming the answer at fault
/// (`answers.own_account`) so that a page shows the error beside it.
fn record_error(e: crate::domain::records::RecordError) -> OpsError {
    use crate::domain::records::RecordError as R;
    let field = match &e {
        R::Missing(q) | R::NotYesNo(q) => format!("answers.{q}"),
        R::UnknownQuestion { question, .. } => format!("answers.{question}"),
        R::ProblemNotDescribed(_) => "problems".into(),
        R::Method(_) => "method".into(),
        R::NoAgent | R::OwnRecord => "agent".into(),
    };
    OpsError::invalid(field, format!("the record does not match its form: {e}"))
}

/// A submit sent twice (a page's retry, a double click): the same agent,
/// call, outcome and answers as the task's stored record give that record
/// back; anything else is the usual refusal of a closed task.
async fn replay(
    store: &Store,
    task: &TaskRow,
    kind: TaskKind,
    s: &Submission,
) -> Result<Option<Submitted>, OpsError> {
    let Some(rec) = store.record_of_task(task.id).await? else { return Ok(None) };
    let answers: BTreeMap<String, String> = serde_json::from_value(rec.answers.clone()).unwrap_or_default();
    let same = rec.agent_id == s.agent
        && rec.call_id == s.call_id.map(|c| c.to_string())
        && rec.outcome == s.outcome.as_str()
        && answers == s.answers
        && rec.problems.as_deref() == s.problems.as_deref().filter(|p| !p.trim().is_empty());
    if !same {
        return Ok(None);
    }
    let form = Form::for_kind(kind);
    let follow_up = store.follow_up_of(rec.id).await?.map(|f| NewFollowUp {
        id: f.id,
        opened_on: f.opened_on,
        answer_due_on: f.answer_due_on,
        resolve_due_on: f.resolve_due_on,
    });
    Ok(Some(Submitted {
        id: rec.id,
        task: task.clone(),
        form,
        feedback_due_on: rec.feedback_due_on,
        follow_up,
        replayed: true,
    }))
}

/// Reviews record `id` as staff member `reviewer`.
pub async fn review(
    store: &Store,
    p: &Person,
    id: Uuid,
    reviewer: &str,
    verdict: Verdict,
    note: Option<&str>,
) -> Result<RecordRow, OpsError> {
    if p.via != Via::Cli {
        if p.staff_id.as_deref() != Some(reviewer) {
            return Err(OpsError::Forbidden("a review is made under the reviewer's own staff row".into()));
        }
        let rec = store.record(id).await?;
        if !(p.has(Role::Compliance) || p.supervises(&rec.branch)) {
            return Err(OpsError::Forbidden("not a record of a branch you supervise".into()));
        }
    }
    // 相互制衡: the author never reviews their own record, whatever their role
    let rec = store.record(id).await?;
    if let Err(e) = crate::domain::records::check_reviewer(&rec.agent_id, reviewer) {
        return Err(OpsError::Rule {
            code: "own-record",
            reason: format!("{e}: record {id} was made by {reviewer}"),
        });
    }
    let dir = Directory::new(store.staff().await?);
    let r = dir.get(reviewer).ok_or_else(|| {
        OpsError::invalid("reviewer", format!("reviewer {reviewer} is not in the staff list"))
    })?;
    let today = super::today();
    if !r.active || r.left_on.is_some_and(|l| l <= today) {
        return Err(OpsError::invalid("reviewer", format!("reviewer {reviewer} is not active")));
    }
    if !matches!(r.role, StaffRole::Reviewer | StaffRole::Supervisor | StaffRole::Compliance) {
        return Err(OpsError::invalid(
            "reviewer",
            format!("a {} may not review records (reviewer, supervisor or compliance)", r.role),
        ));
    }
    Ok(store.review_record(id, reviewer, verdict, note, Utc::now()).await?)
}

/// Record `id`, if `p` may see it (compliance; a supervisor of its branch;
/// its author).
pub async fn record(store: &Store, p: &Person, id: Uuid) -> Result<RecordRow, OpsError> {
    let rec = store.record(id).await?;
    let own = p.own_staff() == Some(rec.agent_id.as_str());
    if p.sees_every_client() || p.supervises(&rec.branch) || own {
        Ok(rec)
    } else {
        Err(OpsError::Forbidden("not your record, nor of a branch you supervise".into()))
    }
}

/// Which records to list.
#[derive(Debug, Clone)]
pub struct ListRecords {
    /// Callbacks on or after this day.
    pub from: chrono::NaiveDate,
    /// Callbacks on or before this day.
    pub to: chrono::NaiveDate,
    /// Only records nobody reviewed yet (a supervisor's work list).
    pub unreviewed: bool,
    /// A cursor from the previous page.
    pub cursor: Option<String>,
    /// Page size (1..=500).
    pub limit: i64,
}

/// The records `p` may see that `q` selects, by day and id: compliance
/// all, a supervisor their branches', an agent their own.
pub async fn list(store: &Store, p: &Person, q: &ListRecords) -> Result<Page<RecordRow>, OpsError> {
    if !(1..=MAX_PAGE).contains(&q.limit) {
        return Err(OpsError::invalid("limit", format!("must be in 1..={MAX_PAGE}")));
    }
    if q.to < q.from || (q.to - q.from).num_days() > 366 {
        return Err(OpsError::invalid("to", "on or after `from`, at most a year later"));
    }
    let (branches, agent_id) = p.list_scope()?;
    let after = q.cursor.as_deref().map(decode_cursor).transpose()?;
    let f = RecordFilter {
        from: q.from,
        to: q.to,
        agent_id,
        branches,
        unreviewed: q.unreviewed,
        after,
        limit: q.limit + 1,
    };
    let mut items = store.records_page(&f).await?;
    let next = if items.len() as i64 > q.limit {
        items.truncate(q.limit as usize);
        items.last().map(|r| encode_cursor(r.called_on, r.id))
    } else {
        None
    };
    Ok(Page { items, next })
}

fn encode_cursor(day: chrono::NaiveDate, id: Uuid) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(format!("{day}|{id}"))
}

fn decode_cursor(c: &str) -> Result<(chrono::NaiveDate, Uuid), OpsError> {
    let bad = || OpsError::invalid("cursor", "not a cursor this API gave out");
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(c).map_err(|_| bad())?;
    let text = String::from_utf8(bytes).map_err(|_| bad())?;
    let (d, id) = text.split_once('|').ok_or_else(bad)?;
    let d = chrono::NaiveDate::parse_from_str(d, "%Y-%m-%d").map_err(|_| bad())?;
    Ok((d, Uuid::parse_str(id).map_err(|_| bad())?))
}

/// Moves follow-up `id` forward: answered by the department, or resolved.
pub async fn advance_follow_up(
    store: &Store,
    p: &Person,
    id: Uuid,
    resolved: bool,
    on: chrono::NaiveDate,
    note: Option<&str>,
) -> Result<FollowUpRow, OpsError> {
    p.require_any(&[Role::Compliance, Role::Supervisor])?;
    if !p.sees_every_client() {
        match store.follow_up(id).await? {
            Some(f) if p.supervises(&f.branch) => {}
            Some(_) => return Err(OpsError::Forbidden("not a follow-up of a branch you supervise".into())),
            None => return Err(OpsError::NotFound { what: "follow-up", key: id.to_string() }),
        }
    }
    Ok(store.advance_follow_up(id, resolved, on, note).await?)
}

/// A follow-up with the deadline it is working towards now.
#[derive(Debug, Clone, serde::Serialize)]
pub struct FollowUpView {
    /// The follow-up.
    #[serde(flatten)]
    pub row: FollowUpRow,
    /// The department's answer while `open`, the client's final answer
    /// while `answered`; none once resolved.
    pub due_on: Option<chrono::NaiveDate>,
    /// Whether `due_on` has passed (UTC+8).
    pub overdue: bool,
}

impl FollowUpView {
    /// `row` as of `today`.
    pub fn of(row: FollowUpRow, today: chrono::NaiveDate) -> FollowUpView {
        let due_on = match row.state.as_str() {
            "open" => Some(row.answer_due_on),
            "answered" => Some(row.resolve_due_on),
            _ => None,
        };
        FollowUpView { overdue: due_on.is_some_and(|d| d < today), due_on, row }
    }
}

/// The follow-ups `p` may see (compliance all, a supervisor their
/// branches'), the earliest deadline first; only those not resolved when
/// `open_only`.
pub async fn follow_ups(store: &Store, p: &Person, open_only: bool) -> Result<Vec<FollowUpView>, OpsError> {
    p.require_any(&[Role::Compliance, Role::Supervisor])?;
    let today = super::today();
    let mut views: Vec<FollowUpView> = store
        .follow_ups()
        .await?
        .into_iter()
        .filter(|f| p.sees_every_client() || p.supervises(&f.branch))
        .filter(|f| !open_only || f.state != "resolved")
        .map(|f| FollowUpView::of(f, today))
        .collect();
    // the nearest deadline first, the resolved last
    views.sort_by_key(|v| (v.due_on.is_none(), v.due_on));
    Ok(views)
}

/// Answers given as `QUESTION=ANSWER` pairs, as a map.
pub fn parse_answers(pairs: &[String]) -> Result<BTreeMap<String, String>, OpsError> {
    let mut answers = BTreeMap::new();
    for pair in pairs {
        let (q, v) = pair
            .split_once('=')
            .ok_or_else(|| OpsError::invalid("answer", format!("{pair:?}: expected QUESTION=ANSWER")))?;
        answers.insert(q.trim().to_string(), v.trim().to_string());
    }
    Ok(answers)
}

/// An outcome by name.
pub fn parse_outcome(s: &str) -> Result<Outcome, OpsError> {
    Outcome::from_name(s).ok_or_else(|| {
        OpsError::invalid("outcome", format!("{s:?} is not reached, unreachable, refused or wrong_number"))
    })
}
