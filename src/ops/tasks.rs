//! Callback tasks: the list a person may see, a page at a time, and
//! closing one as a wrong number or a refusal (`huifang tasks`, `huifang
//! task mark`, `GET /api/v1/tasks`, `POST /api/v1/tasks/{id}/mark`).
//!
//! Compliance sees every task; a supervisor the tasks of their branches;
//! an agent the tasks assigned to them (by the dialer's claim or their
//! record).

use base64::Engine;
use chrono::{NaiveDate, Utc};
use uuid::Uuid;

use super::OpsError;
use super::access::{Person, Role, Via};
use super::recordings::{MAX_PAGE, Page};
use crate::domain::kinds::TaskKind;
use crate::domain::records::Outcome;
use crate::store::{Store, TaskFilter, TaskRow};

/// What to list.
#[derive(Debug, Clone, Default)]
pub struct ListTasks {
    /// `open`, `done` or `closed`.
    pub state: Option<String>,
    /// A task kind.
    pub kind: Option<String>,
    /// A client id.
    pub client: Option<String>,
    /// A cursor from the previous page.
    pub cursor: Option<String>,
    /// Page size (1..=[`MAX_PAGE`]); `None`: every task (the CLI).
    pub limit: Option<i64>,
}

fn encode_cursor(t: &TaskRow) -> String {
    let text = format!("{}|{}|{}", t.due_on, t.priority, t.key);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(text)
}

fn decode_cursor(c: &str) -> Result<(NaiveDate, u8, String), OpsError> {
    let bad = || OpsError::invalid("cursor", "not a cursor this API gave out");
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(c).map_err(|_| bad())?;
    let text = String::from_utf8(bytes).map_err(|_| bad())?;
    let mut parts = text.splitn(3, '|');
    let (Some(d), Some(p), Some(k)) = (parts.next(), parts.next(), parts.next()) else { return Err(bad()) };
    let d = NaiveDate::parse_from_str(d, "%Y-%m-%d").map_err(|_| bad())?;
    Ok((d, p.parse().map_err(|_| bad())?, k.to_string()))
}

/// The tasks `p` may see that `q` selects, by due date, priority and key.
pub async fn list(store: &Store, p: &Person, q: &ListTasks) -> Result<Page<TaskRow>, OpsError> {
    if let Some(s) = &q.state
        && !["open", "done", "closed"].contains(&s.as_str())
    {
        return Err(OpsError::invalid("status", format!("{s:?} is not open, done or closed")));
    }
    if let Some(k) = &q.kind
        && TaskKind::from_name(k).is_none()
    {
        return Err(OpsError::invalid("kind", format!("{k:?} is not a task kind")));
    }
    if let Some(n) = q.limit
        && !(1..=MAX_PAGE).contains(&n)
    {
        return Err(OpsError::invalid("limit", format!("must be in 1..={MAX_PAGE}")));
    }
    let (branches, agent) = p.list_scope()?;
    let f = TaskFilter {
        state: q.state.clone(),
        kind: q.kind.clone(),
        client: q.client.clone(),
        branches,
        assigned_agent: agent,
        after: q.cursor.as_deref().map(decode_cursor).transpose()?,
        limit: q.limit.map(|n| n + 1),
        ..Default::default()
    };
    let mut items = store.tasks(&f).await?;
    let next = match q.limit {
        Some(n) if items.len() as i64 > n => {
            items.truncate(n as usize);
            items.last().map(encode_cursor)
        }
        _ => None,
    };
    Ok(Page { items, next })
}

/// A task by its id or its key (`new_account:C0001`).
pub async fn find(store: &Store, task: &str) -> Result<TaskRow, OpsError> {
    Ok(match Uuid::parse_str(task) {
        Ok(id) => store.task(id).await?,
        Err(_) => store.task_by_key(task).await?,
    })
}

/// Closes an open task as a wrong number or a refusal, by staff member
/// `by`. On the web, an agent marks the tasks assigned to them (as
/// themselves), a supervisor those of their branches.
pub async fn mark(
    store: &Store,
    p: &Person,
    task: &str,
    outcome: Outcome,
    by: &str,
) -> Result<TaskRow, OpsError> {
    if !matches!(outcome, Outcome::WrongNumber | Outcome::Refused) {
        return Err(OpsError::invalid("outcome", "wrong_number or refused"));
    }
    let t = find(store, task).await?;
    if p.via != Via::Cli {
        let own = p.own_staff().is_some_and(|s| s == by && t.assigned_agent.as_deref() == Some(s));
        if !(own || p.supervises(&t.branch) || p.has(Role::Compliance)) {
            return Err(OpsError::Forbidden(
                "not a task assigned to you, nor of a branch you supervise".into(),
            ));
        }
    }
    if !store.staff().await?.iter().any(|s| s.staff_id == by) {
        return Err(OpsError::invalid("by", format!("{by}: not in the staff list")));
    }
    Ok(store.mark_task(t.id, outcome, by, Utc::now()).await?)
}
