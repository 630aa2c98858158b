//! `huifang record submit|review|followup|checklist`: the callback records
//! (the CLI's door onto [`crate::ops::records`]).
//!
//! - `submit --task T --agent A [--outcome O] --answer Q=A … [--problems P] [--notes N]`:
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

use anyhow::Context;

use crate::feed::Hub;
use uuid::Uuid;

use super::output::day_or_today;
use super::{ChecklistArgs, Exit, FollowupArgs, RecordAction, RecordArgs, ReviewArgs, SubmitArgs};
use crate::config::Config;
use crate::domain::kinds::TaskKind;
use crate::domain::records::{Form, checklist};
use crate::ops::access::Person;
use crate::ops::records::{self, Submission, parse_answers, parse_outcome, submit_record};
use crate::store::{Store, Verdict};

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

fn submit(a: SubmitArgs) -> anyhow::Result<Exit> {
    let cfg = Config::load(&a.config)?;
    super::init_logging(&cfg.log.level);
    let cal = cfg.load_calendar()?;
    let called_on = day_or_today(a.on.as_deref(), "--on")?;
    let outcome = parse_outcome(&a.outcome).map_err(super::output::flagged)?;
    let answers = parse_answers(&a.answers).map_err(super::output::flagged)?;
    let call_id =
        a.call.as_deref().map(Uuid::parse_str).transpose().context("--call: not a call id (UUID)")?;
    let submission = Submission {
        task: a.task.clone(),
        agent: a.agent.clone(),
        outcome,
        answers,
        problems: a.problems.clone(),
        notes: a.notes.clone(),
        method: a.method.clone(),
        call_id,
        called_on,
    };
    runtime()?.block_on(async {
        let store = Store::open(&cfg.database_url()).await?;
        let hub = Hub::new(store.clone(), format!("cli@{}", cfg.instance_id()));
        let r = submit_record(&store, &hub, &cfg, &cal, &Person::operator(&a.agent), submission).await;
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
        let verdict = if a.r#return { Verdict::Returned } else { Verdict::Approved };
        let r = records::review(
            &store,
            &Person::operator(&a.reviewer),
            id,
            &a.reviewer,
            verdict,
            a.note.as_deref(),
        )
        .await;
        if let Ok(rec) = &r {
            println!("record {} reviewed by {}: {}", rec.id, a.reviewer, verdict.as_str());
        }
        store.close().await;
        r.map(|_| Exit::Ok).map_err(super::output::flagged)
    })
}

fn followup(a: FollowupArgs) -> anyhow::Result<Exit> {
    let cfg = Config::load(&a.config)?;
    super::init_logging(&cfg.log.level);
    let id = Uuid::parse_str(&a.id).context("--id: not a follow-up id (UUID)")?;
    let on = day_or_today(a.on.as_deref(), "--on")?;
    runtime()?.block_on(async {
        let store = Store::open(&cfg.database_url()).await?;
        let r = records::advance_follow_up(
            &store,
            &Person::operator("cli"),
            id,
            a.resolved,
            on,
            a.note.as_deref(),
        )
        .await;
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
