//! The callback tables on both backends: imports upsert by natural key and
//! change nothing the second time; planning loads clients without their
//! name and phone; a plan saved twice stores each task once
//! with its batch's seed; a record closes its task, opens its follow-up,
//! and is never reviewed by its author (refused by the store and by the
//! schema); follow-ups only move forward; the tables refuse DELETE.

use crate::common;

use std::collections::BTreeMap;

use chrono::{NaiveDate, TimeZone, Utc};
use common::db::TestDb;
use huifang::domain::facts::{Client, Cny, Event, EventKind, Role, Staff};
use huifang::domain::kinds::RulesConfig;
use huifang::domain::planner::{Facts, plan};
use huifang::domain::records::{Form, Outcome};
use huifang::store::{NewFollowUp, NewRecord, StoreError, TaskFilter, Verdict};
use uuid::Uuid;

fn d(s: &str) -> NaiveDate {
    NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
}

fn client(id: &str, opened: &str, broker: bool) -> Client {
    Client {
        client_id: id.into(),
        name: "王小明".into(),
        phone: "13812345678".into(),
        branch: "SH01".into(),
        opened_on: d(opened),
        introducer_id: Some("S1".into()),
        broker_introduced: broker,
        assets: Some(Cny(123_456)),
        yearly_commission: None,
        monthly_turnover: None,
        last_trade_on: Some(d(opened)),
        id_number: None,
        risk_level: None,
    }
}

fn staff(id: &str, role: Role) -> Staff {
    Staff {
        staff_id: id.into(),
        name: format!("员工{id}"),
        role,
        branch: "SH01".into(),
        manager_id: None,
        sip_uri: Some(format!("sip:{id}@127.0.0.1")),
        active: true,
        left_on: None,
    }
}

fn calendar() -> huifang::domain::calendar::Calendar {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/config/holidays/cn-exchanges.toml");
    huifang::domain::calendar::Calendar::from_toml(&std::fs::read_to_string(path).unwrap()).unwrap()
}

on_both_backends!(
    staff_lines_are_the_reporting_lines_of_two_people,
    import_upserts_and_reimport_changes_nothing,
    plan_saved_twice_stores_each_task_once,
    record_review_and_follow_up_rules,
    callback_rows_are_never_deleted,
);

/// What the dial-time E7 check reads: the two people and every manager
/// above them, nobody else; a cycle in the manager links is walked once.
async fn staff_lines_are_the_reporting_lines_of_two_people(db: TestDb) {
    let store = db.open_store().await;
    let at = Utc.with_ymd_and_hms(2026, 11, 27, 8, 0, 0).unwrap();
    let under = |id: &str, role: Role, m: &str| Staff { manager_id: Some(m.into()), ..staff(id, role) };
    let rows = vec![
        staff("M1", Role::Supervisor),
        under("M2", Role::Supervisor, "M1"),
        under("A1", Role::Service, "M2"),
        under("S1", Role::Sales, "M3"),
        under("M3", Role::Supervisor, "M1"),
        under("X1", Role::Service, "M2"), // a colleague: not on either line
        under("C1", Role::Service, "C2"), // a cycle
        under("C2", Role::Supervisor, "C1"),
    ];
    store.import(&rows, false, at, &mut |_| {}).await.unwrap();
    let ids = |v: Vec<Staff>| v.into_iter().map(|s| s.staff_id).collect::<Vec<_>>();
    assert_eq!(ids(store.staff_lines("A1", Some("S1")).await.unwrap()), ["A1", "M1", "M2", "M3", "S1"]);
    assert_eq!(ids(store.staff_lines("A1", None).await.unwrap()), ["A1", "M1", "M2"]);
    assert_eq!(ids(store.staff_lines("C1", Some("NOBODY")).await.unwrap()), ["C1", "C2"]);
    assert_eq!(store.staff_lines("A1", Some("S1")).await.unwrap()[0], rows[2], "whole rows");
    store.close().await;
}

async fn import_upserts_and_reimport_changes_nothing(db: TestDb) {
    let store = db.open_store().await;
    let at = Utc.with_ymd_and_hms(2026, 11, 27, 8, 0, 0).unwrap();
    let rows = vec![client("C1", "2026-11-23", false), client("C2", "2026-11-24", true)];
    let c = store.import(&rows, false, at, &mut |_| {}).await.unwrap();
    assert_eq!((c.rows, c.inserted, c.updated, c.unchanged), (2, 2, 0, 0));
    let again = store.import(&rows, false, at, &mut |_| {}).await.unwrap();
    assert_eq!((again.inserted, again.updated, again.unchanged), (0, 0, 2));
    assert_eq!(store.clients().await.unwrap(), rows);
    // a changed row is updated; a dry run counts but writes nothing
    let mut changed = rows.clone();
    changed[1].branch = "SH02".into();
    changed.push(client("C3", "2026-11-25", false));
    let dry = store.import(&changed, true, at, &mut |_| {}).await.unwrap();
    assert_eq!((dry.inserted, dry.updated, dry.unchanged), (1, 1, 1));
    assert_eq!(store.clients().await.unwrap(), rows, "a dry run writes nothing");
    let mut progress = Vec::new();
    store.import(&changed, false, at, &mut |n| progress.push(n)).await.unwrap();
    assert_eq!(progress.last(), Some(&3));
    assert_eq!(store.client("C2").await.unwrap().branch, "SH02");
    assert!(matches!(store.client("NOPE").await, Err(StoreError::Missing { .. })));
    // what planning loads: every fact but the personal data
    let stored = store.clients().await.unwrap();
    let blank = |c: &Client| Client { name: String::new(), phone: String::new(), ..c.clone() };
    assert_eq!(store.clients_for_planning().await.unwrap(), stored.iter().map(blank).collect::<Vec<_>>());

    let s = vec![staff("S1", Role::Sales), staff("A1", Role::Service)];
    assert_eq!(store.import(&s, false, at, &mut |_| {}).await.unwrap().inserted, 2);
    assert_eq!(store.staff().await.unwrap().len(), 2);
    let e = vec![Event {
        event_id: "E1".into(),
        client_id: Some("C1".into()),
        kind: EventKind::Complaint,
        occurred_on: d("2026-11-26"),
        amount: Some(Cny(-5)),
        staff_id: None,
        note: Some("说明".into()),
    }];
    store.import(&e, false, at, &mut |_| {}).await.unwrap();
    assert_eq!(store.events().await.unwrap(), e);
    assert_eq!(store.import(&e, false, at, &mut |_| {}).await.unwrap().unchanged, 1);
    store.close().await;
}

async fn plan_saved_twice_stores_each_task_once(db: TestDb) {
    let store = db.open_store().await;
    let at = Utc.with_ymd_and_hms(2026, 11, 27, 8, 0, 0).unwrap();
    let clients: Vec<Client> = (0..30).map(|i| client(&format!("N{i:02}"), "2026-11-24", i < 3)).collect();
    store.import(&clients, false, at, &mut |_| {}).await.unwrap();
    let rules = RulesConfig::default();
    let cal = calendar();
    let facts = Facts { clients: &clients, staff: &[], events: &[] };
    let p1 = plan(facts, &rules, &cal, d("2026-11-27"), &store.batch_seeds().await.unwrap(), &mut || [5; 32])
        .unwrap();
    let saved = store.save_plan(&p1, at).await.unwrap();
    let (planned, new) = saved[&huifang::domain::kinds::TaskKind::NewAccount];
    assert_eq!(planned, new);
    assert!(planned >= 3 + 9, "{planned}");
    // again, with the stored seed: the same tasks, nothing new
    let seeds = store.batch_seeds().await.unwrap();
    assert_eq!(seeds.len(), 1);
    let p2 = plan(facts, &rules, &cal, d("2026-11-27"), &seeds, &mut || panic!("seed is stored")).unwrap();
    let saved = store.save_plan(&p2, at).await.unwrap();
    assert_eq!(saved[&huifang::domain::kinds::TaskKind::NewAccount], (planned, 0));
    let tasks = store.tasks(&TaskFilter::default()).await.unwrap();
    assert_eq!(tasks.len() as u64, planned);
    assert_eq!(db.count("SELECT count(*) FROM tasks").await as u64, planned);
    let batch = &store.batches().await.unwrap()[0];
    assert_eq!(batch.seed.as_deref(), Some(&"05".repeat(32)[..]));
    assert_eq!(batch.selected, planned);
    assert_eq!(batch.population, 30);
    // a plan with another seed for the same batch is refused whole
    let p3 = plan(facts, &rules, &cal, d("2026-11-27"), &BTreeMap::new(), &mut || [6; 32]).unwrap();
    assert!(matches!(store.save_plan(&p3, at).await, Err(StoreError::Refused(_))));
    assert_eq!(db.count("SELECT count(*) FROM tasks").await as u64, planned);
    // the schema keeps the seed
    assert!(db.raw("UPDATE task_batches SET seed = NULL").await.is_err());
    // filters
    let t = &tasks[0];
    let by_client =
        store.tasks(&TaskFilter { client: Some(t.client_id.clone()), ..Default::default() }).await.unwrap();
    assert_eq!(by_client.len(), 1);
    assert_eq!(store.task_by_key(&t.key).await.unwrap().id, t.id);
    assert_eq!(store.task(t.id).await.unwrap().reason["rule"], "new_account");
    store.close().await;
}

async fn record_review_and_follow_up_rules(db: TestDb) {
    let store = db.open_store().await;
    let at = Utc.with_ymd_and_hms(2026, 11, 27, 8, 0, 0).unwrap();
    let clients = vec![client("C1", "2026-11-24", true)];
    store.import(&clients, false, at, &mut |_| {}).await.unwrap();
    let facts = Facts { clients: &clients, staff: &[], events: &[] };
    let p =
        plan(facts, &RulesConfig::default(), &calendar(), d("2026-11-27"), &BTreeMap::new(), &mut || [1; 32])
            .unwrap();
    store.save_plan(&p, at).await.unwrap();
    let task = store.task_by_key("new_account:C1").await.unwrap();
    let rec = NewRecord {
        id: Uuid::now_v7(),
        task_id: task.id,
        form: Form::NewAccount,
        agent_id: "A1".into(),
        method: "phone".into(),
        call_id: None,
        called_on: d("2026-11-27"),
        outcome: Outcome::Reached,
        answers: BTreeMap::from([("own_account".to_string(), "no".to_string())]),
        problems: Some("account opened by a relative".into()),
        notes: None,
        feedback_due_on: None,
        submitted_at: at,
    };
    let fu = NewFollowUp {
        id: Uuid::now_v7(),
        opened_on: d("2026-11-27"),
        answer_due_on: d("2026-12-01"),
        resolve_due_on: d("2026-12-18"),
    };
    let stored = store.submit_record(&rec, Some(&fu)).await.unwrap();
    assert_eq!(stored.state, "submitted");
    assert_eq!(stored.answers["own_account"], "no");
    let task = store.task(task.id).await.unwrap();
    assert_eq!((task.state.as_str(), task.outcome.as_deref()), ("done", Some("reached")));
    // a second record for the same task is refused, nothing written
    let second = NewRecord { id: Uuid::now_v7(), ..rec.clone() };
    assert!(matches!(store.submit_record(&second, None).await, Err(StoreError::Refused(_))));
    assert_eq!(db.count("SELECT count(*) FROM callback_records").await, 1);
    // the author may not review; the schema refuses it too
    let e = store.review_record(rec.id, "A1", Verdict::Approved, None, at).await.unwrap_err();
    assert!(matches!(e, StoreError::Refused(_)), "{e}");
    let id = match db.kind {
        common::db::Kind::Sqlite => format!("'{}'", rec.id),
        common::db::Kind::Postgres => format!("'{}'::uuid", rec.id),
    };
    let ts = match db.kind {
        common::db::Kind::Sqlite => "'2026-11-27T09:00:00.000Z'",
        common::db::Kind::Postgres => "now()",
    };
    assert!(
        db.raw(&format!(
            "UPDATE callback_records SET state = 'reviewed', reviewer_id = 'A1', verdict = 'approved', \
             reviewed_at = {ts} WHERE id = {id}"
        ))
        .await
        .is_err()
    );
    let reviewed =
        store.review_record(rec.id, "R1", Verdict::Returned, Some("call again"), at).await.unwrap();
    assert_eq!((reviewed.state.as_str(), reviewed.verdict.as_deref()), ("reviewed", Some("returned")));
    assert!(matches!(
        store.review_record(rec.id, "R2", Verdict::Approved, None, at).await,
        Err(StoreError::Refused(_))
    ));
    // follow-up: open → answered → resolved, never back
    let f = &store.follow_ups().await.unwrap()[0];
    assert_eq!(
        (f.answer_due_on, f.resolve_due_on, f.state.as_str()),
        (d("2026-12-01"), d("2026-12-18"), "open")
    );
    assert!(
        store.advance_follow_up(f.id, false, d("2026-11-20"), None).await.is_err(),
        "before it was opened"
    );
    let a = store.advance_follow_up(f.id, false, d("2026-11-30"), Some("department answered")).await.unwrap();
    assert_eq!(a.state, "answered");
    let r = store.advance_follow_up(f.id, true, d("2026-12-03"), None).await.unwrap();
    assert_eq!(
        (r.state.as_str(), r.answered_on, r.resolved_on),
        ("resolved", Some(d("2026-11-30")), Some(d("2026-12-03")))
    );
    assert!(matches!(
        store.advance_follow_up(f.id, false, d("2026-12-04"), None).await,
        Err(StoreError::Refused(_))
    ));
    store.close().await;
}

async fn callback_rows_are_never_deleted(db: TestDb) {
    let store = db.open_store().await;
    let at = Utc::now();
    let clients = vec![client("C1", "2026-11-24", true)];
    store.import(&clients, false, at, &mut |_| {}).await.unwrap();
    let facts = Facts { clients: &clients, staff: &[], events: &[] };
    let p =
        plan(facts, &RulesConfig::default(), &calendar(), d("2026-11-27"), &BTreeMap::new(), &mut || [1; 32])
            .unwrap();
    store.save_plan(&p, at).await.unwrap();
    for table in ["tasks", "task_batches"] {
        assert!(db.raw(&format!("DELETE FROM {table}")).await.is_err(), "{table}");
    }
    assert!(db.raw("UPDATE tasks SET due_on = '2030-01-02'").await.is_err(), "due dates are written once");
    assert_eq!(db.count("SELECT count(*) FROM tasks").await, 1);
    store.close().await;
}
