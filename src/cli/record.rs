//! `huifang record submit|review|followup|checklist`: the callback records.
//!
//! - `submit --task T --agent A [--outcome O] --answer Q=A … [--problems P]`:
//!   checks avoidance (E7: the agent may make this callback — not the
//!   introducer, not in their reporting line, not sales for a compliance
//!   callback, not inactive or departed), checks the answers against the
//!   form's checklist, then stores the record, closes the task and, when
//!   problems were found, opens a follow-up due in 2 and 15 business days.
//! - `review --record R --reviewer S [--return] [--note N]`: by an active
//!   reviewer, supervisor or compliance officer who is not the author.
//! - `followup --id F [--resolved] [--on DATE]`: the department answered,
//!   or the client has the final answer.
//! - `checklist --kind K`: the questions of the kind's form.

use std::collections::BTreeMap;

use anyhow::{Context, bail};
use chrono::Utc;
use uuid::Uuid;

use super::output::day_or_today;
use super::{ChecklistArgs, Exit, FollowupArgs, RecordAction, RecordArgs, ReviewArgs, SubmitArgs};
use crate::config::Config;
use crate::domain::avoidance::{Directory, may_call};
use crate::domain::facts::Role;
use crate::domain::kinds::TaskKind;
use crate::domain::records::{Form, Outcome, RecordDraft, checklist, follow_up_dues};
use crate::store::{NewFollowUp, NewRecord, Store, TaskRow, Verdict};

/// Runs `huifang record`.
pub fn run(args: RecordArgs) -> anyhow::Result<Exit> {
    match args.action {
        RecordAction::Submit(a) => submit(a),
        RecordAction::Review(a) => review(a),
        RecordAction::Followup(a) => followup(a),
        RecordAction::Checklist(a) => show_checklist(a),
    }
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Runtime::new().context("starting the async runtime")
}

async fn find_task(store: &Store, task: &str) -> anyhow::Result<TaskRow> {
    Ok(match Uuid::parse_str(task) {
        Ok(id) => store.task(id).await?,
        Err(_) => store.task_by_key(task).await?,
    })
}

/// A callback record to submit: `record submit`'s arguments, parsed.
pub(crate) struct Submission {
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
    /// How the callback was made (`phone`, …).
    pub method: String,
    /// The recorded call.
    pub call_id: Option<Uuid>,
    /// Day of the callback.
    pub called_on: chrono::NaiveDate,
}

/// What `submit_record` stored.
pub(crate) struct Submitted {
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
}

/// Submits a callback record: checks avoidance (E7) for its agent and the
/// answers against the form, then stores the record, closes the task and
/// opens a follow-up when problems were found. Used by `record submit` and
/// by `huifang demo`.
pub(crate) async fn submit_record(
    store: &Store,
    cfg: &Config,
    cal: &crate::domain::calendar::Calendar,
    s: Submission,
) -> anyhow::Result<Submitted> {
    let task = find_task(store, &s.task).await?;
    let kind = TaskKind::from_name(&task.kind).context("the task has an unknown kind")?;
    let client = store.client(&task.client_id).await?;
    let dir = Directory::new(store.staff().await?);
    if let Err(why) = may_call(&dir, &cfg.avoidance(), &s.agent, &client, task.compliance, s.called_on) {
        bail!("refused (E7): agent {} may not make this callback: {why}", s.agent);
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
    let form = draft.validate().context("the record does not match its form")?;
    let feedback_due_on = match form {
        Form::Special => {
            Some(cal.add_business_days(s.called_on, cfg.records.special_feedback_business_days)?)
        }
        _ => None,
    };
    let follow_up = if draft.has_problems() {
        let (answer_due_on, resolve_due_on) = follow_up_dues(cal, s.called_on, &cfg.records)?;
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
        feedback_due_on,
        submitted_at: Utc::now(),
    };
    let stored = store.submit_record(&rec, follow_up.as_ref()).await?;
    Ok(Submitted { id: stored.id, task, form, feedback_due_on, follow_up })
}

fn submit(a: SubmitArgs) -> anyhow::Result<Exit> {
    let cfg = Config::load(&a.config)?;
    super::init_logging(&cfg.log.level);
    let cal = cfg.load_calendar()?;
    let called_on = day_or_today(a.on.as_deref(), "--on")?;
    let outcome = Outcome::from_name(&a.outcome).with_context(|| {
        format!("--outcome: {:?} is not reached, unreachable, refused or wrong_number", a.outcome)
    })?;
    let mut answers = BTreeMap::new();
    for pair in &a.answers {
        let (q, v) =
            pair.split_once('=').with_context(|| format!("--answer {pair:?}: expected QUESTION=ANSWER"))?;
        answers.insert(q.trim().to_string(), v.trim().to_string());
    }
    let call_id =
        a.call.as_deref().map(Uuid::parse_str).transpose().context("--call: not a call id (UUID)")?;
    let submission = Submission {
        task: a.task.clone(),
        agent: a.agent.clone(),
        outcome,
        answers,
        problems: a.problems.clone(),
        method: a.method.clone(),
        call_id,
        called_on,
    };
    runtime()?.block_on(async {
        let store = Store::open(&cfg.database_url()).await?;
        let r = submit_record(&store, &cfg, &cal, submission).await;
        store.close().await;
        let done = r?;
        println!(
            "record {} submitted for task {} ({}, {})",
            done.id,
            done.task.key,
            done.form.zh(),
            outcome.as_str()
        );
        if let Some(d) = done.feedback_due_on {
            println!("special callback: the record goes to the ordering department by {d}");
        }
        if let Some(f) = done.follow_up {
            println!(
                "follow-up {} opened: the department answers by {}, the client has the final answer by {}",
                f.id, f.answer_due_on, f.resolve_due_on
            );
        }
        Ok(Exit::Ok)
    })
}

fn review(a: ReviewArgs) -> anyhow::Result<Exit> {
    let cfg = Config::load(&a.config)?;
    super::init_logging(&cfg.log.level);
    let id = Uuid::parse_str(&a.record).context("--record: not a record id (UUID)")?;
    runtime()?.block_on(async {
        let store = Store::open(&cfg.database_url()).await?;
        let r = async {
            let dir = Directory::new(store.staff().await?);
            let reviewer = dir
                .get(&a.reviewer)
                .with_context(|| format!("reviewer {} is not in the staff list", a.reviewer))?;
            let today = super::output::today();
            if !reviewer.active || reviewer.left_on.is_some_and(|l| l <= today) {
                bail!("reviewer {} is not active", a.reviewer);
            }
            if !matches!(reviewer.role, Role::Reviewer | Role::Supervisor | Role::Compliance) {
                bail!("a {} may not review records (reviewer, supervisor or compliance)", reviewer.role);
            }
            let verdict = if a.r#return { Verdict::Returned } else { Verdict::Approved };
            let rec = store.review_record(id, &a.reviewer, verdict, a.note.as_deref(), Utc::now()).await?;
            println!("record {} reviewed by {}: {}", rec.id, a.reviewer, verdict.as_str());
            anyhow::Ok(())
        }
        .await;
        store.close().await;
        r.map(|()| Exit::Ok)
    })
}

fn followup(a: FollowupArgs) -> anyhow::Result<Exit> {
    let cfg = Config::load(&a.config)?;
    super::init_logging(&cfg.log.level);
    let id = Uuid::parse_str(&a.id).context("--id: not a follow-up id (UUID)")?;
    let on = day_or_today(a.on.as_deref(), "--on")?;
    runtime()?.block_on(async {
        let store = Store::open(&cfg.database_url()).await?;
        let r = store.advance_follow_up(id, a.resolved, on, a.note.as_deref()).await;
        store.close().await;
        let f = r?;
        println!("follow-up {} is {} (on {on})", f.id, f.state);
        Ok(Exit::Ok)
    })
}

fn show_checklist(a: ChecklistArgs) -> anyhow::Result<Exit> {
    let kind =
        TaskKind::from_name(&a.kind).with_context(|| format!("--kind: {:?} is not a task kind", a.kind))?;
    let form = Form::for_kind(kind);
    println!("{}", form.zh());
    for q in checklist(form) {
        let takes = if q.free_text { "text" } else { "yes|no" };
        println!("  {:<26} {:<7} {}  {}", q.id, takes, q.zh, q.en);
    }
    Ok(Exit::Ok)
}
