//! The dialer's claims in the store, on both backends: tasks come in the
//! dialer's order (overdue, due date, the kind's priority) and only to an
//! agent the avoidance check lets call them (E7); an agent held for a call
//! is not offered a second one; an expired lease frees the task for
//! another instance, which closes the dead instance's call as interrupted;
//! each attempt moves the task (retry, wait for the record, closed
//! unreachable) and an agent who did not answer is paused, traced; and
//! four claimers at once never share a task or an agent.

use crate::common;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::{NaiveDate, Utc};
use common::db::TestDb;
use common::dialer::{T, client, seed, staff};
use huifang::domain::agents::{AgentCommand, Presence};
use huifang::domain::avoidance::{Avoidance, Directory, may_call};
use huifang::domain::dialing::{Next, QueueEntry, queue_order};
use huifang::domain::facts::Role;
use huifang::domain::kinds::TaskKind;
use huifang::domain::records::Outcome as RecordOutcome;
use huifang::store::{
    AttemptEnd, AttemptWritten, ClaimResult, ClaimSpec, NewCall, Store, StoreError, TaskFilter,
};
use uuid::Uuid;

on_both_backends!(
    claims_follow_the_queue_order_and_avoidance,
    leases_attempts_and_automatic_pause,
    concurrent_claimers_never_share_a_task_or_an_agent,
    a_restarted_instance_gives_its_leases_back_at_once
);

fn today() -> NaiveDate {
    NaiveDate::from_ymd_opt(2026, 11, 30).unwrap()
}

async fn claim(store: &Store, instance: &str, agent: &str, lease: Duration) -> ClaimResult {
    let dir = Directory::new(store.staff().await.unwrap());
    let rules = Avoidance::default();
    let now = Utc::now();
    let spec =
        ClaimSpec { instance, agent, now, lease_until: now + chrono::Duration::from_std(lease).unwrap() };
    let mut check = |t: &huifang::store::TaskRow, c: &huifang::domain::facts::Client| {
        may_call(&dir, &rules, agent, c, t.compliance, today()).is_ok()
    };
    store.claim_task(&spec, &mut check).await.unwrap()
}

fn end<'a>(instance: &'a str, task: Uuid, agent: &'a str, outcome: &'a str, next: Next) -> AttemptEnd<'a> {
    AttemptEnd {
        instance,
        task,
        agent,
        call_id: None,
        outcome,
        attempts: 1,
        next,
        now: Utc::now(),
        wrap_up_until: None,
        pause_reason: None,
    }
}

fn later(secs: i64) -> chrono::DateTime<Utc> {
    Utc::now() + chrono::Duration::seconds(secs)
}

async fn login(store: &Store, agent: &str) {
    store.change_agent(agent, AgentCommand::Login, agent, None, Utc::now()).await.unwrap();
}

async fn claims_follow_the_queue_order_and_avoidance(db: TestDb) {
    let store = db.open_store().await;
    seed(
        &store,
        &[
            staff("A1", Role::Service, None, Some("sip:agent1@127.0.0.1")),
            staff("A2", Role::Service, None, Some("sip:agent2@127.0.0.1")),
            staff("S1", Role::Sales, None, None),
        ],
        &[
            client("C1", "13800000001", Some("A1")),
            client("C2", "13800000002", Some("S1")),
            client("C3", "13800000003", None),
            client("C4", "13800000004", None),
            client("C5", "13800000005", None),
        ],
        &[
            T { key: "k1", kind: TaskKind::Complaint, client: "C2", due: "2026-12-02" },
            T { key: "k2", kind: TaskKind::Dormant, client: "C3", due: "2026-11-30" },
            T { key: "k3", kind: TaskKind::NewAccount, client: "C1", due: "2026-11-25" },
            T { key: "k4", kind: TaskKind::Important, client: "C4", due: "2026-11-30" },
            T { key: "k5", kind: TaskKind::Special, client: "C5", due: "2026-11-30" },
        ],
    )
    .await;
    assert!(matches!(claim(&store, "i1", "A1", Duration::from_secs(30)).await, ClaimResult::AgentBusy));
    login(&store, "A1").await;

    // the queue as the pure order sees it
    let mut tasks = store.tasks(&TaskFilter::default()).await.unwrap();
    tasks.sort_by(|a, b| {
        let e = |t: &huifang::store::TaskRow| QueueEntry {
            due_on: t.due_on,
            priority: t.priority,
            created_at: t.created_at,
            key: t.key.clone(),
        };
        queue_order(&e(a), &e(b), today())
    });
    let order: Vec<&str> = tasks.iter().map(|t| t.key.as_str()).collect();
    assert_eq!(order, ["k3", "k5", "k4", "k2", "k1"]);

    // A1 gets them in that order, never k3 (A1 introduced C1: E7)
    let mut got = Vec::new();
    let refused = loop {
        match claim(&store, "i1", "A1", Duration::from_secs(30)).await {
            ClaimResult::Claimed(c) => {
                assert_eq!(c.task.lease_owner.as_deref(), Some("i1"));
                let w = store
                    .finish_attempt(&end("i1", c.task.id, "A1", "no-answer", Next::RetryAt(later(3600))))
                    .await
                    .unwrap();
                assert_eq!(w, AttemptWritten::Moved);
                got.push(c.task.key.clone());
            }
            ClaimResult::NoTask { refused } => break refused,
            ClaimResult::AgentBusy => panic!("A1 is free between attempts"),
        }
    };
    assert_eq!(got, ["k5", "k4", "k2", "k1"]);
    assert_eq!(refused, 1, "k3 was ready and refused");
    // a second, eligible agent gets it
    login(&store, "A2").await;
    match claim(&store, "i1", "A2", Duration::from_secs(30)).await {
        ClaimResult::Claimed(c) => assert_eq!(c.task.key, "k3"),
        other => panic!("{other:?}"),
    }
    store.close().await;
}

async fn leases_attempts_and_automatic_pause(db: TestDb) {
    let store = db.open_store().await;
    seed(
        &store,
        &[
            staff("A1", Role::Service, None, Some("sip:agent1@127.0.0.1")),
            staff("A2", Role::Service, None, Some("sip:agent2@127.0.0.1")),
        ],
        &[client("C1", "13800000001", None), client("C2", "13800000002", None)],
        &[
            T { key: "k1", kind: TaskKind::Complaint, client: "C1", due: "2026-11-30" },
            T { key: "k2", kind: TaskKind::Dormant, client: "C2", due: "2026-12-30" },
        ],
    )
    .await;
    login(&store, "A1").await;
    login(&store, "A2").await;
    store.change_agent("A2", AgentCommand::Pause, "A2", Some("coffee"), Utc::now()).await.unwrap();
    assert!(matches!(claim(&store, "i1", "A2", Duration::from_secs(30)).await, ClaimResult::AgentBusy));

    // instance i1 claims k1 for A1 with a short lease and places a call
    let ClaimResult::Claimed(c) = claim(&store, "i1", "A1", Duration::from_secs(1)).await else { panic!() };
    let k1 = c.task.id;
    assert_eq!(c.task.key, "k1");
    let session = store.agent_session("A1").await.unwrap().unwrap();
    assert_eq!(session.presence(Utc::now()), Presence::OnCall);
    assert!(matches!(claim(&store, "i2", "A1", Duration::from_secs(30)).await, ClaimResult::AgentBusy));
    let call = Uuid::now_v7();
    let new_call = NewCall {
        id: call,
        task_id: Some(k1.to_string()),
        client_id: Some("C1".into()),
        agent_uri: "sip:agent1@127.0.0.1".into(),
        client_uri: "sip:13800000001@127.0.0.1".into(),
        started_at: Utc::now(),
        kind: Some("complaint".into()),
        agent_id: None,
        claimed_at: None,
    };
    store.insert_call_by(&new_call, Some("i1")).await.unwrap();
    assert_eq!(store.open_calls_of("i2").await.unwrap(), Vec::<Uuid>::new(), "i2 never closes i1's calls");
    assert_eq!(store.open_calls_of("i1").await.unwrap(), vec![call]);

    // i1 dies; after its lease, i2 takes k1 up (with A2, resumed) and closes the dead call
    tokio::time::sleep(Duration::from_millis(1500)).await;
    store.change_agent("A2", AgentCommand::Resume, "A2", None, Utc::now()).await.unwrap();
    let ClaimResult::Claimed(c) = claim(&store, "i2", "A2", Duration::from_secs(30)).await else { panic!() };
    assert_eq!((c.task.id, c.abandoned_calls), (k1, 1));
    let dead = store.get_call(call).await.unwrap();
    assert_eq!(dead.outcome.as_deref(), Some("interrupted"));
    // a late word from i1 changes nothing
    assert!(!store.renew_lease("i1", k1, "A1", later(30)).await.unwrap());
    let late = store.finish_attempt(&end("i1", k1, "A1", "completed", Next::AwaitRecord)).await.unwrap();
    assert_eq!(late, AttemptWritten::LeaseLost);
    assert!(store.renew_lease("i2", k1, "A2", later(30)).await.unwrap());

    // completed: the task waits for the record, A2 in wrap-up
    let mut e = end("i2", k1, "A2", "completed", Next::AwaitRecord);
    e.wrap_up_until = Some(later(60));
    assert_eq!(store.finish_attempt(&e).await.unwrap(), AttemptWritten::Moved);
    let t = store.task(k1).await.unwrap();
    assert!(t.awaiting_record_since.is_some() && t.lease_owner.is_none() && t.state == "open");
    assert_eq!(t.last_outcome.as_deref(), Some("completed"));
    assert_eq!(store.agent_session("A2").await.unwrap().unwrap().presence(Utc::now()), Presence::WrapUp);
    assert!(matches!(claim(&store, "i2", "A2", Duration::from_secs(30)).await, ClaimResult::AgentBusy));
    let depth = store.queue_depth(Utc::now(), later(3600)).await.unwrap();
    assert_eq!((depth.ready, depth.awaiting_record, depth.record_overdue), (1, 1, 1));
    assert_eq!(store.records_overdue(later(3600)).await.unwrap().len(), 1);
    assert!(store.records_overdue(later(-3600)).await.unwrap().is_empty());

    // the agent marks a wrong number: closed, with who
    let t = store.mark_task(k1, RecordOutcome::WrongNumber, "A2", Utc::now()).await.unwrap();
    assert_eq!(
        (t.state.as_str(), t.outcome.as_deref(), t.closed_by.as_deref()),
        ("closed", Some("wrong_number"), Some("A2"))
    );
    assert!(matches!(
        store.mark_task(k1, RecordOutcome::Refused, "A2", Utc::now()).await,
        Err(StoreError::Refused(_))
    ));

    // A1's phone does not answer: A1 paused by the dialer, reason traced; k2 back in the queue
    store.release_instance("i1").await.unwrap();
    let ClaimResult::Claimed(c) = claim(&store, "i1", "A1", Duration::from_secs(30)).await else { panic!() };
    let mut e = end("i1", c.task.id, "A1", "agent-unavailable", Next::RetryAt(Utc::now()));
    e.attempts = 0;
    e.pause_reason = Some("did not answer (480)");
    store.finish_attempt(&e).await.unwrap();
    let s = store.agent_session("A1").await.unwrap().unwrap();
    assert_eq!(
        (s.state.as_str(), s.reason.as_deref(), s.changed_by.as_str()),
        ("paused", Some("did not answer (480)"), "dialer@i1")
    );
    let events = store.agent_events("A1").await.unwrap();
    let last: Vec<(&str, &str)> =
        events.iter().rev().take(3).map(|e| (e.to_state.as_str(), e.by.as_str())).collect();
    assert_eq!(last, [("paused", "dialer@i1"), ("available", "dialer@i1"), ("on_call", "dialer@i1")]);
    assert_eq!(events.last().unwrap().task_id, Some(c.task.id));

    // the last attempt closes the task unreachable (A2's wrap-up ended as a shutdown ends it)
    assert!(matches!(claim(&store, "i2", "A2", Duration::from_secs(30)).await, ClaimResult::AgentBusy));
    store.release_instance("i2").await.unwrap();
    let ClaimResult::Claimed(c) = claim(&store, "i2", "A2", Duration::from_secs(30)).await else { panic!() };
    let mut e = end("i2", c.task.id, "A2", "no-answer", Next::CloseUnreachable);
    e.attempts = 3;
    store.finish_attempt(&e).await.unwrap();
    let t = store.task(c.task.id).await.unwrap();
    assert_eq!((t.state.as_str(), t.outcome.as_deref(), t.attempts), ("closed", Some("unreachable"), 3));
    assert_eq!(t.closed_by.as_deref(), Some("dialer@i2"));
    assert!(matches!(
        claim(&store, "i2", "A2", Duration::from_secs(30)).await,
        ClaimResult::NoTask { refused: 0 }
    ));
    store.close().await;
}

async fn concurrent_claimers_never_share_a_task_or_an_agent(db: TestDb) {
    let store = db.open_store().await;
    let agents = ["A1", "A2", "A3"];
    let staff_list: Vec<_> =
        agents.iter().map(|a| staff(a, Role::Service, None, Some(&format!("sip:{a}@127.0.0.1")))).collect();
    let clients: Vec<_> =
        (0..40).map(|i| client(&format!("C{i:02}"), &format!("139000000{i:02}"), None)).collect();
    let keys: Vec<String> = (0..40).map(|i| format!("t{i:02}")).collect();
    let tasks: Vec<T> = (0..40)
        .map(|i| T {
            key: &keys[i],
            kind: TaskKind::Special,
            client: &clients[i].client_id,
            due: "2026-11-30",
        })
        .collect();
    seed(&store, &staff_list, &clients, &tasks).await;
    for a in agents {
        login(&store, a).await;
    }
    store.close().await;

    // (task, agent, start, end) of every hold
    type Hold = (Uuid, String, Instant, Instant);
    let holds: Arc<Mutex<Vec<Hold>>> = Arc::default();
    let mut claimers = Vec::new();
    for n in 0..4 {
        let (url, holds) = (db.url.clone(), holds.clone());
        claimers.push(tokio::spawn(async move {
            let store = Store::open(&url).await.unwrap();
            let me = format!("claimer-{n}");
            let mut idle_rounds = 0;
            while idle_rounds < 3 {
                let mut claimed = false;
                for a in agents {
                    if let ClaimResult::Claimed(c) = claim(&store, &me, a, Duration::from_secs(30)).await {
                        claimed = true;
                        let start = Instant::now();
                        tokio::time::sleep(Duration::from_millis(5)).await;
                        let stop = Instant::now();
                        store
                            .finish_attempt(&end(&me, c.task.id, a, "completed", Next::AwaitRecord))
                            .await
                            .unwrap();
                        holds.lock().unwrap().push((c.task.id, a.to_string(), start, stop));
                    }
                }
                idle_rounds = if claimed { 0 } else { idle_rounds + 1 };
            }
            store.close().await;
        }));
    }
    for c in claimers {
        tokio::time::timeout(Duration::from_secs(120), c).await.expect("claimers finish").unwrap();
    }
    let holds = holds.lock().unwrap();
    let mut tasks: Vec<Uuid> = holds.iter().map(|h| h.0).collect();
    tasks.sort();
    tasks.dedup();
    assert_eq!((holds.len(), tasks.len()), (40, 40), "every task claimed exactly once");
    for a in agents {
        let mut mine: Vec<_> = holds.iter().filter(|h| h.1 == a).collect();
        mine.sort_by_key(|h| h.2);
        for w in mine.windows(2) {
            assert!(w[0].3 <= w[1].2, "agent {a} held for two calls at once");
        }
    }
}

/// Found by the soak (issue 16 §1): after a `kill -9`, start-up recovery
/// closes the instance's open calls and gives back its leases, so the
/// tasks those calls were for go back to the queue at once — not when
/// their leases run out — and their agents are free again.
async fn a_restarted_instance_gives_its_leases_back_at_once(db: TestDb) {
    let store = db.open_store().await;
    seed(
        &store,
        &[staff("A1", Role::Service, None, Some("sip:agent1@127.0.0.1"))],
        &[client("C3", "13800000003", None)],
        &[T { key: "k2", kind: TaskKind::Dormant, client: "C3", due: "2026-11-30" }],
    )
    .await;
    login(&store, "A1").await;
    // i1 claims the task for 15 minutes and places its call; then dies
    let ClaimResult::Claimed(c) = claim(&store, "i1", "A1", Duration::from_secs(900)).await else { panic!() };
    let call = NewCall {
        id: Uuid::now_v7(),
        task_id: Some(c.task.id.to_string()),
        client_id: Some("C3".into()),
        agent_uri: "sip:agent1@127.0.0.1".into(),
        client_uri: "sip:13800000003@127.0.0.1".into(),
        started_at: Utc::now(),
        kind: Some("dormant".into()),
        agent_id: Some("A1".into()),
        claimed_at: None,
    };
    store.insert_call_by(&call, Some("i1")).await.unwrap();
    assert!(matches!(claim(&store, "i1", "A1", Duration::from_secs(30)).await, ClaimResult::AgentBusy));
    // i1 starts again
    let spool = tempfile::tempdir().unwrap();
    let done = huifang::call::recover::recover(&store, spool.path(), Some("i1")).await.unwrap();
    assert_eq!((done.calls, done.leases), (1, 1));
    assert_eq!(store.get_call(call.id).await.unwrap().outcome.as_deref(), Some("interrupted"));
    let t = store.task(c.task.id).await.unwrap();
    assert_eq!((t.lease_owner, t.lease_until), (None, None));
    // the task and the agent can be claimed now, 15 minutes early
    let ClaimResult::Claimed(again) = claim(&store, "i1", "A1", Duration::from_secs(30)).await else {
        panic!("the task is still held")
    };
    assert_eq!(again.task.id, c.task.id);
}
