//! The dialer's decisions, as pure functions of (state, now): when calls
//! may be placed, which task comes next, and what happens to a task after
//! each attempt. The dialer worker (`crate::dialer`) only does the IO
//! around them; these are tested here on a virtual clock, no sleeping.
//!
//! - **Calling windows** ([`DialingPolicy::gate`]): hours per weekday in
//!   the call center's time zone (UTC+8 by default); no calls on days the
//!   exchanges are closed unless `call_on_non_business_days` says so (the
//!   weekday's windows then apply).
//! - **Queue order** ([`queue_order`]): overdue tasks first, then by due
//!   date, then by the kind's priority from `[rules.KIND] priority` (1 =
//!   most urgent; stored on each task when it is planned, so that the
//!   store serves the queue in index order), then oldest first.
//! - **After an attempt** ([`RetryPolicy::after`]): a completed call waits
//!   for the agent's callback record; no answer, busy, rejected,
//!   unreachable and failed calls count as attempts and are retried after
//!   `retry_spacing_secs[n-1]` (the last spacing repeats) until
//!   `max_attempts`, then the task is closed `unreachable`; a call that did
//!   not get to the client for reasons of ours (the agent did not answer,
//!   recording failed, huifang stopped, the call was cancelled) does not
//!   count and goes back to the queue after `retry_failed_secs` (at once
//!   for the agent's own no-answer: another agent takes it), and an agent
//!   who did not answer is paused.

use std::cmp::Ordering;
use std::time::Duration;

use chrono::{DateTime, Datelike, FixedOffset, NaiveDate, NaiveTime, TimeZone, Utc};
use serde::Deserialize;

use super::calendar::{Calendar, CalendarError};

/// `[dialer.windows]`: calling hours per weekday, `"HH:MM-HH:MM"` each.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WindowsConfig {
    /// Monday.
    #[serde(default = "default_weekday")]
    pub mon: Vec<String>,
    /// Tuesday.
    #[serde(default = "default_weekday")]
    pub tue: Vec<String>,
    /// Wednesday.
    #[serde(default = "default_weekday")]
    pub wed: Vec<String>,
    /// Thursday.
    #[serde(default = "default_weekday")]
    pub thu: Vec<String>,
    /// Friday.
    #[serde(default = "default_weekday")]
    pub fri: Vec<String>,
    /// Saturday (used only with `call_on_non_business_days`).
    #[serde(default)]
    pub sat: Vec<String>,
    /// Sunday (used only with `call_on_non_business_days`).
    #[serde(default)]
    pub sun: Vec<String>,
}

fn default_weekday() -> Vec<String> {
    vec!["09:00-12:00".into(), "13:30-18:00".into()]
}

impl Default for WindowsConfig {
    fn default() -> Self {
        WindowsConfig {
            mon: default_weekday(),
            tue: default_weekday(),
            wed: default_weekday(),
            thu: default_weekday(),
            fri: default_weekday(),
            sat: Vec::new(),
            sun: Vec::new(),
        }
    }
}

/// The retry settings of `[dialer]`, as written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetryConfig {
    /// Attempts that reach the client's phone, at most.
    pub max_attempts: u32,
    /// Spacing after the 1st, 2nd, … failed attempt, seconds.
    pub spacing_secs: Vec<u64>,
    /// Delay after an attempt that did not count, seconds.
    pub failed_secs: u64,
}

/// One calling window, `[start, end)` in local time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    /// First minute.
    pub start: NaiveTime,
    /// End (excluded).
    pub end: NaiveTime,
}

/// What to do after an attempt; see the module docs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Attempts that reach the client's phone, at most (≥ 1).
    pub max_attempts: u32,
    /// Spacing after the n-th failed attempt; the last one repeats.
    pub spacing: Vec<Duration>,
    /// Delay after an attempt that does not count.
    pub failed_delay: Duration,
}

/// When calls may be placed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DialingPolicy {
    /// Windows per weekday, Monday first, sorted, not overlapping.
    pub windows: [Vec<Window>; 7],
    /// Whether non-business days (weekends, holidays) have calls.
    pub non_business_days: bool,
    /// The call center's time zone.
    pub offset: FixedOffset,
}

fn parse_hm(s: &str) -> Option<NaiveTime> {
    let (h, m) = s.trim().split_once(':')?;
    if h.len() != 2 || m.len() != 2 {
        return None;
    }
    let (h, m): (u32, u32) = (h.parse().ok()?, m.parse().ok()?);
    if h == 24 && m == 0 {
        return NaiveTime::from_hms_milli_opt(23, 59, 59, 999);
    }
    NaiveTime::from_hms_opt(h, m, 0)
}

/// Parses `"HH:MM-HH:MM"` (start before end; `24:00` ends a day).
pub fn parse_window(s: &str) -> Result<Window, String> {
    let bad = || format!("{s:?} is not HH:MM-HH:MM with the start before the end");
    let (a, b) = s.split_once('-').ok_or_else(bad)?;
    let (start, end) = (parse_hm(a).ok_or_else(bad)?, parse_hm(b).ok_or_else(bad)?);
    if start >= end {
        return Err(bad());
    }
    Ok(Window { start, end })
}

impl WindowsConfig {
    /// Checks and resolves the windows: `Err((key, reason))`, keys under
    /// `dialer.windows`.
    pub fn resolve(&self) -> Result<[Vec<Window>; 7], (String, String)> {
        let days = [
            ("mon", &self.mon),
            ("tue", &self.tue),
            ("wed", &self.wed),
            ("thu", &self.thu),
            ("fri", &self.fri),
            ("sat", &self.sat),
            ("sun", &self.sun),
        ];
        let mut out: [Vec<Window>; 7] = Default::default();
        for (i, (name, list)) in days.into_iter().enumerate() {
            let mut ws = Vec::new();
            for (j, s) in list.iter().enumerate() {
                ws.push(parse_window(s).map_err(|r| (format!("dialer.windows.{name}[{j}]"), r))?);
            }
            ws.sort_by_key(|w| w.start);
            if ws.windows(2).any(|p| p[1].start < p[0].end) {
                return Err((format!("dialer.windows.{name}"), "windows overlap".into()));
            }
            out[i] = ws;
        }
        Ok(out)
    }
}

impl RetryConfig {
    /// Checks and resolves: `Err((key, reason))`.
    pub fn resolve(&self) -> Result<RetryPolicy, (String, String)> {
        if !(1..=20).contains(&self.max_attempts) {
            return Err((
                "dialer.max_attempts".into(),
                format!("{} is out of range 1..=20", self.max_attempts),
            ));
        }
        if self.spacing_secs.is_empty() {
            return Err(("dialer.retry_spacing_secs".into(), "must list at least one spacing".into()));
        }
        if let Some(i) = self.spacing_secs.iter().position(|s| *s == 0 || *s > 30 * 86_400) {
            return Err((format!("dialer.retry_spacing_secs[{i}]"), "must be in 1..=2592000 seconds".into()));
        }
        if self.failed_secs > 86_400 {
            return Err(("dialer.retry_failed_secs".into(), "must be at most 86400 seconds".into()));
        }
        Ok(RetryPolicy {
            max_attempts: self.max_attempts,
            spacing: self.spacing_secs.iter().map(|s| Duration::from_secs(*s)).collect(),
            failed_delay: Duration::from_secs(self.failed_secs),
        })
    }
}

/// Whether calls may be placed now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Gate {
    /// Yes, until this instant (the end of the window).
    Open {
        /// End of the current window.
        until: DateTime<Utc>,
    },
    /// No.
    Closed {
        /// Why.
        why: Closed,
        /// When the next window opens (within 31 days), if any.
        opens: Option<DateTime<Utc>>,
    },
}

/// Why no call may be placed now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Closed {
    /// The exchanges are closed today (weekend or holiday).
    NonBusinessDay,
    /// Outside today's calling hours.
    OutsideWindow,
}

impl Closed {
    /// In words.
    pub fn as_str(self) -> &'static str {
        match self {
            Closed::NonBusinessDay => "not a business day",
            Closed::OutsideWindow => "outside the calling hours",
        }
    }
}

fn weekday_index(d: NaiveDate) -> usize {
    d.weekday().num_days_from_monday() as usize
}

impl DialingPolicy {
    /// The call center's local day at `now`.
    pub fn local_day(&self, now: DateTime<Utc>) -> NaiveDate {
        now.with_timezone(&self.offset).date_naive()
    }

    /// The windows of local day `d` (none on a non-business day unless
    /// allowed). A day outside the calendar's years is an error.
    pub fn windows_of(&self, cal: &Calendar, d: NaiveDate) -> Result<&[Window], CalendarError> {
        if !self.non_business_days && !cal.is_business_day(d)? {
            return Ok(&[]);
        }
        Ok(&self.windows[weekday_index(d)])
    }

    fn at(&self, d: NaiveDate, t: NaiveTime) -> DateTime<Utc> {
        self.offset
            .from_local_datetime(&d.and_time(t))
            .single()
            .map(|x| x.with_timezone(&Utc))
            .unwrap_or_else(|| Utc.from_utc_datetime(&d.and_time(t)))
    }

    /// May calls be placed at `now`? An error when the calendar does not
    /// cover the day (no call is placed then).
    pub fn gate(&self, cal: &Calendar, now: DateTime<Utc>) -> Result<Gate, CalendarError> {
        let local = now.with_timezone(&self.offset);
        let (day, time) = (local.date_naive(), local.time());
        let business = self.non_business_days || cal.is_business_day(day)?;
        if business
            && let Some(w) = self.windows[weekday_index(day)].iter().find(|w| w.start <= time && time < w.end)
        {
            return Ok(Gate::Open { until: self.at(day, w.end) });
        }
        let why = if business { Closed::OutsideWindow } else { Closed::NonBusinessDay };
        Ok(Gate::Closed { why, opens: self.next_open(cal, now) })
    }

    /// When the next window opens after `now` (within 31 days).
    pub fn next_open(&self, cal: &Calendar, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let local = now.with_timezone(&self.offset);
        let mut day = local.date_naive();
        for _ in 0..=31 {
            if let Ok(ws) = self.windows_of(cal, day) {
                for w in ws {
                    let start = self.at(day, w.start);
                    if start > now {
                        return Some(start);
                    }
                }
            }
            day = day.succ_opt()?;
        }
        None
    }
}

/// How an attempt ended, as the dialer sees it (the call outcomes of E2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Attempt {
    /// The agent and the client talked.
    Completed,
    /// The client did not answer.
    NoAnswer,
    /// The client was busy.
    Busy,
    /// The client declined.
    Rejected,
    /// The client could not be reached.
    Unreachable,
    /// Another failure on the client's side (a 5xx, no common codec, …).
    Failed,
    /// The agent did not answer or could not be reached.
    AgentUnavailable,
    /// Cancelled before the client answered (the agent hung up).
    Cancelled,
    /// The recording could not start (E1: nothing was said unrecorded).
    RecordingFailed,
    /// huifang stopped during the call.
    Interrupted,
}

impl Attempt {
    /// From a call outcome's stored name (`no-answer`, …).
    pub fn from_outcome(s: &str) -> Option<Attempt> {
        Some(match s {
            "completed" => Attempt::Completed,
            "no-answer" => Attempt::NoAnswer,
            "busy" => Attempt::Busy,
            "rejected" => Attempt::Rejected,
            "unreachable" => Attempt::Unreachable,
            "failed" => Attempt::Failed,
            "agent-unavailable" => Attempt::AgentUnavailable,
            "cancelled" => Attempt::Cancelled,
            "recording-failed" => Attempt::RecordingFailed,
            "interrupted" => Attempt::Interrupted,
            _ => return None,
        })
    }

    /// Whether the attempt counts against `max_attempts` (the client's
    /// phone was tried).
    pub fn counts(self) -> bool {
        matches!(
            self,
            Attempt::Completed
                | Attempt::NoAnswer
                | Attempt::Busy
                | Attempt::Rejected
                | Attempt::Unreachable
                | Attempt::Failed
        )
    }
}

/// What becomes of a task after an attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AfterCall {
    /// Attempts counted so far (after this one).
    pub attempts: u32,
    /// What next.
    pub next: Next,
    /// Pause the agent (the agent's phone did not answer).
    pub pause_agent: bool,
}

/// The task's next step.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Next {
    /// Wait for the agent's callback record.
    AwaitRecord,
    /// Dial again, not before this instant.
    RetryAt(DateTime<Utc>),
    /// Give up: closed as `unreachable`.
    CloseUnreachable,
}

impl RetryPolicy {
    /// The spacing after the `n`-th counted attempt (n ≥ 1).
    pub fn spacing_after(&self, n: u32) -> Duration {
        let i = (n.max(1) - 1) as usize;
        self.spacing.get(i).or(self.spacing.last()).copied().unwrap_or_default()
    }

    /// What becomes of a task whose attempt ended with `a` at `now`, after
    /// `attempts_before` counted attempts.
    pub fn after(&self, a: Attempt, attempts_before: u32, now: DateTime<Utc>) -> AfterCall {
        let plus = |d: Duration| now + chrono::Duration::from_std(d).unwrap_or(chrono::Duration::MAX);
        if !a.counts() {
            let delay = if a == Attempt::AgentUnavailable { Duration::ZERO } else { self.failed_delay };
            return AfterCall {
                attempts: attempts_before,
                next: Next::RetryAt(plus(delay)),
                pause_agent: a == Attempt::AgentUnavailable,
            };
        }
        let attempts = attempts_before.saturating_add(1);
        let next = if a == Attempt::Completed {
            Next::AwaitRecord
        } else if attempts >= self.max_attempts {
            Next::CloseUnreachable
        } else {
            Next::RetryAt(plus(self.spacing_after(attempts)))
        };
        AfterCall { attempts, next, pause_agent: false }
    }
}

/// What orders the queue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueEntry {
    /// Due date.
    pub due_on: NaiveDate,
    /// The kind's priority (`[rules.KIND] priority`, stored with the task
    /// when planned; 1 = most urgent).
    pub priority: u8,
    /// When the task was planned.
    pub created_at: DateTime<Utc>,
    /// A last tie-breaker (the idempotency key).
    pub key: String,
}

/// The dialer's order: overdue first (due before `today`), then by due
/// date, then by priority, then oldest first, then by key. The store's
/// claim query sorts the same way (a test checks both agree).
pub fn queue_order(a: &QueueEntry, b: &QueueEntry, today: NaiveDate) -> Ordering {
    let overdue = |e: &QueueEntry| if e.due_on < today { 0 } else { 1 };
    overdue(a)
        .cmp(&overdue(b))
        .then(a.due_on.cmp(&b.due_on))
        .then(a.priority.cmp(&b.priority))
        .then(a.created_at.cmp(&b.created_at))
        .then(a.key.cmp(&b.key))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cal() -> Calendar {
        let text = std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/config/holidays/cn-exchanges.toml"
        ))
        .unwrap();
        Calendar::from_toml(&text).unwrap()
    }

    /// Local time (UTC+8) as UTC.
    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(&format!("{s}+08:00")).unwrap().with_timezone(&Utc)
    }

    fn policy(non_business_days: bool) -> DialingPolicy {
        let w = WindowsConfig { sat: vec!["10:00-12:00".into()], ..Default::default() };
        DialingPolicy {
            windows: w.resolve().unwrap(),
            non_business_days,
            offset: FixedOffset::east_opt(8 * 3600).unwrap(),
        }
    }

    fn retry() -> RetryPolicy {
        RetryConfig { max_attempts: 3, spacing_secs: vec![600, 3600], failed_secs: 60 }.resolve().unwrap()
    }

    #[test]
    fn windows_parse_and_refuse() {
        assert_eq!(
            parse_window("09:00-12:00").unwrap(),
            Window {
                start: NaiveTime::from_hms_opt(9, 0, 0).unwrap(),
                end: NaiveTime::from_hms_opt(12, 0, 0).unwrap()
            }
        );
        assert!(parse_window("00:00-24:00").is_ok());
        for bad in ["9:00-12:00", "12:00-09:00", "09:00", "09:00-25:00", "09:60-10:00", "10:00-10:00"] {
            assert!(parse_window(bad).is_err(), "{bad}");
        }
        let w = WindowsConfig { tue: vec!["09:00-12:00".into(), "11:00-13:00".into()], ..Default::default() };
        assert_eq!(w.resolve().unwrap_err().0, "dialer.windows.tue");
        let w = WindowsConfig { sun: vec!["x".into()], ..Default::default() };
        assert_eq!(w.resolve().unwrap_err().0, "dialer.windows.sun[0]");
    }

    #[test]
    fn retry_config_checked() {
        let c =
            |m, s: Vec<u64>, f| RetryConfig { max_attempts: m, spacing_secs: s, failed_secs: f }.resolve();
        assert_eq!(c(0, vec![1], 1).unwrap_err().0, "dialer.max_attempts");
        assert_eq!(c(3, vec![], 1).unwrap_err().0, "dialer.retry_spacing_secs");
        assert_eq!(c(3, vec![10, 0], 1).unwrap_err().0, "dialer.retry_spacing_secs[1]");
        assert_eq!(c(3, vec![10], 100_000).unwrap_err().0, "dialer.retry_failed_secs");
    }

    #[test]
    fn gate_over_a_day_and_a_holiday() {
        let (p, cal) = (policy(false), cal());
        // Monday 2026-11-30, a trading day
        let cases = [
            ("2026-11-30T08:59:59", None),
            ("2026-11-30T09:00:00", Some("2026-11-30T12:00:00")),
            ("2026-11-30T11:59:59", Some("2026-11-30T12:00:00")),
            ("2026-11-30T12:00:00", None),
            ("2026-11-30T13:30:00", Some("2026-11-30T18:00:00")),
            ("2026-11-30T18:00:00", None),
        ];
        for (now, open_until) in cases {
            match (p.gate(&cal, at(now)).unwrap(), open_until) {
                (Gate::Open { until }, Some(u)) => assert_eq!(until, at(u), "{now}"),
                (Gate::Closed { why: Closed::OutsideWindow, .. }, None) => {}
                (g, want) => panic!("{now}: {g:?}, wanted open until {want:?}"),
            }
        }
        // lunch: closed, opens at 13:30; evening: opens next morning
        assert_eq!(
            p.gate(&cal, at("2026-11-30T12:30:00")).unwrap(),
            Gate::Closed { why: Closed::OutsideWindow, opens: Some(at("2026-11-30T13:30:00")) }
        );
        assert_eq!(p.next_open(&cal, at("2026-11-30T19:00:00")), Some(at("2026-12-01T09:00:00")));
        // Saturday: not a business day; Friday evening → Monday morning
        assert_eq!(
            p.gate(&cal, at("2026-12-05T10:30:00")).unwrap(),
            Gate::Closed { why: Closed::NonBusinessDay, opens: Some(at("2026-12-07T09:00:00")) }
        );
        // New Year's Day 2027 is a Friday and a holiday: the next window is Monday the 4th
        assert_eq!(p.next_open(&cal, at("2026-12-31T18:30:00")), Some(at("2027-01-04T09:00:00")));
        // allowed on non-business days: Saturday's own window applies
        let weekend = policy(true);
        assert!(matches!(weekend.gate(&cal, at("2026-12-05T10:30:00")).unwrap(), Gate::Open { .. }));
        assert_eq!(weekend.next_open(&cal, at("2026-12-05T12:00:00")), Some(at("2026-12-07T09:00:00")));
        // a year the calendar does not cover is an error, never an open gate
        assert!(p.gate(&cal, at("2031-03-03T10:00:00")).is_err());
    }

    #[test]
    fn after_each_outcome() {
        let (r, now) = (retry(), at("2026-11-30T10:00:00"));
        let m = chrono::Duration::minutes;
        let cases = [
            (Attempt::Completed, 0, 1, Next::AwaitRecord, false),
            (Attempt::NoAnswer, 0, 1, Next::RetryAt(now + m(10)), false),
            (Attempt::Busy, 1, 2, Next::RetryAt(now + m(60)), false),
            (Attempt::Unreachable, 2, 3, Next::CloseUnreachable, false),
            (Attempt::Rejected, 0, 1, Next::RetryAt(now + m(10)), false),
            (Attempt::Failed, 2, 3, Next::CloseUnreachable, false),
            (Attempt::Completed, 2, 3, Next::AwaitRecord, false),
            (Attempt::AgentUnavailable, 1, 1, Next::RetryAt(now), true),
            (Attempt::RecordingFailed, 1, 1, Next::RetryAt(now + m(1)), false),
            (Attempt::Interrupted, 2, 2, Next::RetryAt(now + m(1)), false),
            (Attempt::Cancelled, 0, 0, Next::RetryAt(now + m(1)), false),
        ];
        for (a, before, attempts, next, pause_agent) in cases {
            assert_eq!(
                r.after(a, before, now),
                AfterCall { attempts, next, pause_agent },
                "{a:?} after {before}"
            );
        }
        // the last spacing repeats
        let long =
            RetryConfig { max_attempts: 9, spacing_secs: vec![60, 120], failed_secs: 0 }.resolve().unwrap();
        assert_eq!(long.spacing_after(5), Duration::from_secs(120));
        for name in ["completed", "no-answer", "agent-unavailable", "interrupted"] {
            assert!(Attempt::from_outcome(name).is_some(), "{name}");
        }
        assert_eq!(Attempt::from_outcome("bogus"), None);
    }

    /// A client who never answers, on a virtual clock: dialed at 11:50,
    /// retried 10 minutes later — but 12:00 is lunch, so at 13:30 — then an
    /// hour later, then closed unreachable. No sleeping: the clock jumps
    /// to the next instant the dialer would act.
    #[test]
    fn retries_respect_windows_on_a_virtual_clock() {
        let (p, r, cal) = (policy(false), retry(), cal());
        let mut now = at("2026-11-30T11:50:00");
        let mut attempts = 0;
        let mut dialed = Vec::new();
        let closed = loop {
            let due = match p.gate(&cal, now).unwrap() {
                Gate::Open { .. } => now,
                Gate::Closed { opens, .. } => opens.expect("a window opens"),
            };
            now = due;
            dialed.push(now);
            let after = r.after(Attempt::NoAnswer, attempts, now + chrono::Duration::seconds(45));
            attempts = after.attempts;
            match after.next {
                Next::RetryAt(t) => now = t,
                Next::CloseUnreachable => break now,
                Next::AwaitRecord => unreachable!(),
            }
        };
        assert_eq!(
            dialed,
            vec![at("2026-11-30T11:50:00"), at("2026-11-30T13:30:00"), at("2026-11-30T14:30:45")]
        );
        assert_eq!((attempts, closed), (3, at("2026-11-30T14:30:45")));
    }

    #[test]
    fn queue_order_overdue_then_due_then_priority() {
        let today = NaiveDate::from_ymd_opt(2026, 11, 30).unwrap();
        let e = |due: &str, priority: u8, key: &str| QueueEntry {
            due_on: NaiveDate::parse_from_str(due, "%Y-%m-%d").unwrap(),
            priority,
            created_at: at("2026-11-20T09:00:00"),
            key: key.into(),
        };
        let mut q = [
            e("2026-12-02", 1, "a"),
            e("2026-11-30", 5, "b"),
            e("2026-11-27", 9, "c"),
            e("2026-11-30", 1, "d"),
            e("2026-11-25", 9, "e"),
            e("2026-11-30", 1, "f"),
        ];
        q.sort_by(|a, b| queue_order(a, b, today));
        let keys: String = q.iter().map(|e| e.key.as_str()).collect();
        assert_eq!(keys, "ecdfba");
    }
}
