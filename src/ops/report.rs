//! Reports: `huifang report coverage|overdue|followups|monthly [--month
//! YYYY-MM] [--as-of DATE] [--format table|csv|json]`, and
//! `GET /api/v1/reports/{what}?month=&as_of=` (compliance), the same rows.
//!
//! - **coverage** — tasks due in the month, per kind and branch: planned,
//!   done (a record was submitted), closed, open, overdue, and coverage =
//!   done / planned against the required 100% (the sampling ratios are
//!   applied when planning: every planned task must be done).
//! - **overdue** — open tasks whose due date is before `--as-of`, with the
//!   business days they are late, and open tasks whose call completed more
//!   than `dialer.record_due_secs` ago without a callback record.
//! - **followups** — follow-ups past a deadline: not answered by the
//!   department's due date (2 business days), not resolved by the final one
//!   (15), or answered/resolved late.
//! - **monthly** — the report a branch uploads to head office within the
//!   first N business days of the next month (the deadline is printed): per
//!   branch and kind, the callbacks made in the month, their outcomes,
//!   reviews, problems found and follow-ups opened, and the month's tasks.
//!
//! The computations are pure functions over the stored rows (below), so
//! each report is the same on both backends.

use std::collections::BTreeMap;

use chrono::{Datelike, NaiveDate};
use serde_json::{Value, json};

use super::OpsError;
use super::access::{Person, Role};
use crate::config::Config;
use crate::domain::calendar::{Calendar, CalendarError};
use crate::store::{FollowUpRow, RecordRow, Store, TaskFilter, TaskRow};

/// Which report.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReportKind {
    /// Tasks due in the month per kind and branch: done against planned.
    Coverage,
    /// Open tasks past their due date.
    Overdue,
    /// Follow-ups past their deadlines.
    Followups,
    /// The monthly report a branch sends to head office.
    Monthly,
}

impl ReportKind {
    /// Every report.
    pub const ALL: [ReportKind; 4] =
        [ReportKind::Coverage, ReportKind::Overdue, ReportKind::Followups, ReportKind::Monthly];

    /// Its name (`coverage`, …).
    pub fn as_str(self) -> &'static str {
        match self {
            ReportKind::Coverage => "coverage",
            ReportKind::Overdue => "overdue",
            ReportKind::Followups => "followups",
            ReportKind::Monthly => "monthly",
        }
    }

    /// The report of a name.
    pub fn from_name(s: &str) -> Option<ReportKind> {
        ReportKind::ALL.into_iter().find(|k| k.as_str() == s)
    }
}

/// A report: its columns and rows (tables, CSV) and its JSON.
#[derive(Debug, Clone)]
pub struct Report {
    /// Column names.
    pub headers: Vec<&'static str>,
    /// Rows, one string per column.
    pub rows: Vec<Vec<String>>,
    /// The same as JSON.
    pub json: Value,
    /// A line for the reader (the monthly report's upload deadline).
    pub note: Option<String>,
}

impl Report {
    /// The rows as CSV, with the column names first.
    pub fn csv(&self) -> Result<Vec<u8>, OpsError> {
        let mut w = csv::Writer::from_writer(Vec::new());
        let err = |e: csv::Error| OpsError::Internal(format!("writing CSV: {e}"));
        w.write_record(&self.headers).map_err(err)?;
        for r in &self.rows {
            w.write_record(r).map_err(err)?;
        }
        w.into_inner().map_err(|e| OpsError::Internal(format!("writing CSV: {e}")))
    }

    /// The report's chart (SVG): coverage per kind and branch against the
    /// required 100 %; overdue tasks by kind; late follow-ups by state;
    /// the month's tasks done of those due per branch and kind.
    pub fn chart(&self, kind: ReportKind) -> String {
        use super::chart::{Bar, bars};
        let col = |name: &str| self.headers.iter().position(|h| *h == name);
        let cell =
            |r: &Vec<String>, name: &str| col(name).and_then(|i| r.get(i)).cloned().unwrap_or_default();
        let number = |s: String| s.trim_end_matches('%').parse::<f64>().unwrap_or(0.0);
        let counted = |by: &str| {
            let mut n: BTreeMap<String, f64> = BTreeMap::new();
            for r in &self.rows {
                *n.entry(cell(r, by)).or_default() += 1.0;
            }
            n.into_iter()
                .map(|(label, value)| Bar { label, value, total: None, mark: None })
                .collect::<Vec<_>>()
        };
        match kind {
            ReportKind::Coverage => {
                let b: Vec<Bar> = self
                    .rows
                    .iter()
                    .map(|r| Bar {
                        label: format!("{} {}", cell(r, "KIND"), cell(r, "BRANCH")),
                        value: number(cell(r, "COVERAGE")),
                        total: None,
                        mark: Some(number(cell(r, "REQUIRED"))),
                    })
                    .collect();
                bars("回访覆盖率 Coverage", &b, "%")
            }
            ReportKind::Overdue => bars("逾期任务（按类型） Overdue by kind", &counted("KIND"), ""),
            ReportKind::Followups => {
                bars("逾期跟进（按状态） Late follow-ups by state", &counted("STATE"), "")
            }
            ReportKind::Monthly => {
                let b: Vec<Bar> = self
                    .rows
                    .iter()
                    .map(|r| Bar {
                        label: format!("{} {}", cell(r, "BRANCH"), cell(r, "KIND")),
                        value: number(cell(r, "TASKS_DONE")),
                        total: Some(number(cell(r, "TASKS_DUE"))),
                        mark: None,
                    })
                    .collect();
                bars("本月完成 / 应完成 Done of due", &b, "")
            }
        }
    }
}

fn cal_err(e: CalendarError) -> OpsError {
    OpsError::invalid("month", e.to_string())
}

/// Makes report `what` for `month` (default: this month, or last month for
/// the monthly report) as of the day `as_of` (compliance).
pub async fn report(
    store: &Store,
    cfg: &Config,
    cal: &Calendar,
    p: &Person,
    what: ReportKind,
    month: Option<NaiveDate>,
    as_of: NaiveDate,
) -> Result<Report, OpsError> {
    p.require_any(&[Role::Compliance])?;
    let month = match month {
        Some(m) => m,
        None if what == ReportKind::Monthly => {
            let first = as_of.with_day(1).expect("day 1");
            let prev = first.pred_opt().expect("a previous day");
            prev.with_day(1).expect("day 1")
        }
        None => as_of.with_day(1).expect("day 1"),
    };
    let (from, to) = (month, last_day(month));
    let tasks = match what {
        ReportKind::Coverage | ReportKind::Monthly => {
            store.tasks(&TaskFilter { due_from: Some(from), due_to: Some(to), ..Default::default() }).await?
        }
        ReportKind::Overdue => {
            store.tasks(&TaskFilter { state: Some("open".into()), ..Default::default() }).await?
        }
        ReportKind::Followups => Vec::new(),
    };
    let records = if what == ReportKind::Monthly { store.records(from, to).await? } else { Vec::new() };
    let follow_ups = if matches!(what, ReportKind::Followups | ReportKind::Monthly) {
        store.follow_ups().await?
    } else {
        Vec::new()
    };
    let mut note = None;
    let (headers, rows, json): (&[&'static str], Vec<Vec<String>>, Value) = match what {
        ReportKind::Coverage => {
            let (rows, json) = coverage(&tasks, as_of, month);
            (
                &["KIND", "BRANCH", "PLANNED", "DONE", "CLOSED", "OPEN", "OVERDUE", "COVERAGE", "REQUIRED"],
                rows,
                json,
            )
        }
        ReportKind::Overdue => {
            let due = chrono::Duration::seconds(cfg.dialer.record_due_secs as i64);
            let (rows, json) = overdue(&tasks, cal, as_of, chrono::Utc::now() - due)?;
            (&["TASK", "KEY", "KIND", "CLIENT", "BRANCH", "DUE", "LATE_BUSINESS_DAYS", "WHY"], rows, json)
        }
        ReportKind::Followups => {
            let (rows, json) = late_follow_ups(&follow_ups, cal, as_of)?;
            (
                &[
                    "FOLLOW_UP",
                    "CLIENT",
                    "BRANCH",
                    "KIND",
                    "OPENED",
                    "ANSWER_DUE",
                    "RESOLVE_DUE",
                    "STATE",
                    "LATE",
                ],
                rows,
                json,
            )
        }
        ReportKind::Monthly => {
            let upload_due = next_month_upload_due(cal, month, cfg.records.monthly_upload_business_days)?;
            let (rows, json) = monthly(&tasks, &records, &follow_ups, month, upload_due);
            note = Some(format!(
                "monthly report for {}: upload to head office by {upload_due}",
                month.format("%Y-%m")
            ));
            (
                &[
                    "BRANCH",
                    "KIND",
                    "TASKS_DUE",
                    "TASKS_DONE",
                    "CALLBACKS",
                    "REACHED",
                    "NOT_REACHED",
                    "REVIEWED",
                    "PROBLEMS",
                    "FOLLOW_UPS",
                ],
                rows,
                json,
            )
        }
    };
    Ok(Report { headers: headers.to_vec(), rows, json, note })
}

/// A `YYYY-MM` month (its first day); `field` names it in the error.
pub fn parse_month(s: &str, field: &'static str) -> Result<NaiveDate, OpsError> {
    NaiveDate::parse_from_str(&format!("{s}-01"), "%Y-%m-%d")
        .map_err(|_| OpsError::invalid(field, format!("{s:?} is not a month (YYYY-MM)")))
}

fn last_day(first: NaiveDate) -> NaiveDate {
    let next = if first.month() == 12 {
        NaiveDate::from_ymd_opt(first.year() + 1, 1, 1)
    } else {
        NaiveDate::from_ymd_opt(first.year(), first.month() + 1, 1)
    };
    next.and_then(|d| d.pred_opt()).expect("a valid month")
}

fn next_month_upload_due(cal: &Calendar, month: NaiveDate, n: u32) -> Result<NaiveDate, OpsError> {
    let next = last_day(month).succ_opt().expect("a next day");
    cal.nth_business_day_of_month(next.year(), next.month(), n).map_err(cal_err)
}

fn pct(part: u64, whole: u64) -> String {
    if whole == 0 { "-".into() } else { format!("{:.1}%", part as f64 * 100.0 / whole as f64) }
}

#[derive(Default)]
struct Cov {
    planned: u64,
    done: u64,
    closed: u64,
    open: u64,
    overdue: u64,
}

/// Coverage per kind and branch of the tasks due in the month.
fn coverage(tasks: &[TaskRow], as_of: NaiveDate, month: NaiveDate) -> (Vec<Vec<String>>, Value) {
    let mut by: BTreeMap<(String, String), Cov> = BTreeMap::new();
    for t in tasks {
        let c = by.entry((t.kind.clone(), t.branch.clone())).or_default();
        c.planned += 1;
        match t.state.as_str() {
            "done" => c.done += 1,
            "closed" => c.closed += 1,
            _ => {
                c.open += 1;
                if t.due_on < as_of {
                    c.overdue += 1;
                }
            }
        }
    }
    let mut rows = Vec::new();
    let mut json_rows = Vec::new();
    for ((kind, branch), c) in &by {
        rows.push(vec![
            kind.clone(),
            branch.clone(),
            c.planned.to_string(),
            c.done.to_string(),
            c.closed.to_string(),
            c.open.to_string(),
            c.overdue.to_string(),
            pct(c.done, c.planned),
            "100%".into(),
        ]);
        json_rows.push(json!({"kind": kind, "branch": branch, "planned": c.planned, "done": c.done,
            "closed": c.closed, "open": c.open, "overdue": c.overdue,
            "coverage": if c.planned == 0 { 0.0 } else { c.done as f64 / c.planned as f64 }, "required": 1.0}));
    }
    (rows, json!({"month": month.format("%Y-%m").to_string(), "as_of": as_of, "rows": json_rows}))
}

/// Open tasks due before `as_of`, and open tasks whose call completed
/// before `record_cutoff` (`dialer.record_due_secs` ago) without a
/// callback record.
fn overdue(
    tasks: &[TaskRow],
    cal: &Calendar,
    as_of: NaiveDate,
    record_cutoff: chrono::DateTime<chrono::Utc>,
) -> Result<(Vec<Vec<String>>, Value), OpsError> {
    let mut rows = Vec::new();
    let mut json_rows = Vec::new();
    for t in tasks.iter().filter(|t| t.state == "open") {
        let past_due = t.due_on < as_of;
        let no_record = t.awaiting_record_since.is_some_and(|s| s < record_cutoff);
        if !past_due && !no_record {
            continue;
        }
        let late = if past_due { cal.business_days_between(t.due_on, as_of).map_err(cal_err)? } else { 0 };
        let mut why = Vec::new();
        if past_due {
            why.push("past due".to_string());
        }
        if let Some(since) = t.awaiting_record_since.filter(|_| no_record) {
            why.push(format!("no callback record since the call of {}", since.format("%Y-%m-%d %H:%M UTC")));
        }
        let why = why.join("; ");
        rows.push(vec![
            t.id.to_string(),
            t.key.clone(),
            t.kind.clone(),
            t.client_id.clone(),
            t.branch.clone(),
            t.due_on.to_string(),
            late.to_string(),
            why.clone(),
        ]);
        json_rows.push(json!({"task_id": t.id, "key": t.key, "kind": t.kind, "client_id": t.client_id,
            "branch": t.branch, "due_on": t.due_on, "late_business_days": late, "why": why,
            "awaiting_record_since": t.awaiting_record_since, "last_call_id": t.last_call_id}));
    }
    Ok((rows, json!({"as_of": as_of, "rows": json_rows})))
}

/// What is late about a follow-up as of a day, if anything.
fn lateness(f: &FollowUpRow, as_of: NaiveDate) -> Vec<&'static str> {
    let mut late = Vec::new();
    match f.answered_on {
        None if f.answer_due_on < as_of => late.push("not answered"),
        Some(a) if a > f.answer_due_on => late.push("answered late"),
        _ => {}
    }
    match f.resolved_on {
        None if f.resolve_due_on < as_of => late.push("not resolved"),
        Some(r) if r > f.resolve_due_on => late.push("resolved late"),
        _ => {}
    }
    late
}

/// Follow-ups past a deadline.
fn late_follow_ups(
    follow_ups: &[FollowUpRow],
    cal: &Calendar,
    as_of: NaiveDate,
) -> Result<(Vec<Vec<String>>, Value), OpsError> {
    let mut rows = Vec::new();
    let mut json_rows = Vec::new();
    for f in follow_ups {
        let late = lateness(f, as_of);
        if late.is_empty() {
            continue;
        }
        let open_late = if f.resolved_on.is_none() && f.resolve_due_on < as_of {
            Some(cal.business_days_between(f.resolve_due_on, as_of).map_err(cal_err)?)
        } else {
            None
        };
        rows.push(vec![
            f.id.to_string(),
            f.client_id.clone(),
            f.branch.clone(),
            f.kind.clone(),
            f.opened_on.to_string(),
            f.answer_due_on.to_string(),
            f.resolve_due_on.to_string(),
            f.state.clone(),
            late.join(", "),
        ]);
        json_rows.push(
            json!({"follow_up_id": f.id, "client_id": f.client_id, "branch": f.branch, "kind": f.kind,
            "opened_on": f.opened_on, "answer_due_on": f.answer_due_on, "resolve_due_on": f.resolve_due_on,
            "state": f.state, "late": late, "business_days_past_resolve_due": open_late}),
        );
    }
    Ok((rows, json!({"as_of": as_of, "rows": json_rows})))
}

#[derive(Default)]
struct Month {
    tasks_due: u64,
    tasks_done: u64,
    callbacks: u64,
    reached: u64,
    not_reached: u64,
    reviewed: u64,
    problems: u64,
    follow_ups: u64,
}

/// The monthly report per branch and kind.
fn monthly(
    tasks: &[TaskRow],
    records: &[RecordRow],
    follow_ups: &[FollowUpRow],
    month: NaiveDate,
    upload_due: NaiveDate,
) -> (Vec<Vec<String>>, Value) {
    let mut by: BTreeMap<(String, String), Month> = BTreeMap::new();
    for t in tasks {
        let m = by.entry((t.branch.clone(), t.kind.clone())).or_default();
        m.tasks_due += 1;
        if t.state == "done" {
            m.tasks_done += 1;
        }
    }
    for r in records {
        let m = by.entry((r.branch.clone(), r.kind.clone())).or_default();
        m.callbacks += 1;
        if r.outcome == "reached" {
            m.reached += 1;
        } else {
            m.not_reached += 1;
        }
        if r.state == "reviewed" {
            m.reviewed += 1;
        }
        if r.problems.as_deref().is_some_and(|p| !p.is_empty()) {
            m.problems += 1;
        }
    }
    let last = last_day(month);
    for f in follow_ups.iter().filter(|f| f.opened_on >= month && f.opened_on <= last) {
        by.entry((f.branch.clone(), f.kind.clone())).or_default().follow_ups += 1;
    }
    let mut rows = Vec::new();
    let mut json_rows = Vec::new();
    for ((branch, kind), m) in &by {
        rows.push(vec![
            branch.clone(),
            kind.clone(),
            m.tasks_due.to_string(),
            m.tasks_done.to_string(),
            m.callbacks.to_string(),
            m.reached.to_string(),
            m.not_reached.to_string(),
            m.reviewed.to_string(),
            m.problems.to_string(),
            m.follow_ups.to_string(),
        ]);
        json_rows.push(json!({"branch": branch, "kind": kind, "tasks_due": m.tasks_due, "tasks_done": m.tasks_done,
            "callbacks": m.callbacks, "reached": m.reached, "not_reached": m.not_reached, "reviewed": m.reviewed,
            "problems": m.problems, "follow_ups": m.follow_ups}));
    }
    let json =
        json!({"month": month.format("%Y-%m").to_string(), "upload_due_on": upload_due, "rows": json_rows});
    (rows, json)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> NaiveDate {
        NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
    }

    #[test]
    fn months() {
        assert_eq!(last_day(d("2026-02-01")), d("2026-02-28"));
        assert_eq!(last_day(d("2026-12-01")), d("2026-12-31"));
        assert!(parse_month("2026-13", "month").is_err());
        assert_eq!(parse_month("2026-11", "month").unwrap(), d("2026-11-01"));
    }

    #[test]
    fn follow_up_lateness() {
        let f = FollowUpRow {
            id: uuid::Uuid::nil(),
            record_id: uuid::Uuid::nil(),
            client_id: "C".into(),
            branch: "B".into(),
            kind: "new_account".into(),
            problems: "p".into(),
            opened_on: d("2026-11-27"),
            answer_due_on: d("2026-12-01"),
            resolve_due_on: d("2026-12-18"),
            state: "open".into(),
            answered_on: None,
            resolved_on: None,
            note: None,
        };
        assert!(lateness(&f, d("2026-12-01")).is_empty());
        assert_eq!(lateness(&f, d("2026-12-02")), ["not answered"]);
        assert_eq!(lateness(&f, d("2026-12-21")), ["not answered", "not resolved"]);
        let answered =
            FollowUpRow { answered_on: Some(d("2026-12-03")), state: "answered".into(), ..f.clone() };
        assert_eq!(lateness(&answered, d("2026-12-04")), ["answered late"]);
    }
}
