//! Calls placed by hand through the running `serve` (issue 15):
//! `POST /api/v1/calls` by an agent for a task they may make — the trace,
//! the recording, the audit events and the feed as for the dialer's own
//! calls — refused for a client they introduced (E7), while they are on a
//! call, and for a supervisor naming another branch's agent;
//! `POST /api/v1/tasks/{id}/call-back` sets the next attempt (audited).

use std::time::Duration;

use huifang::domain::facts::Role as StaffRole;
use huifang::domain::kinds::TaskKind;
use serde_json::json;

use crate::common::dialer::{T, client, staff, wait_for};
use crate::floor::{Floor, until};

const SECS: Duration = Duration::from_secs(20);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calls_placed_by_hand_go_through_serves_dialer_with_its_rules() {
    let mut other = staff("B7", StaffRole::Service, None, Some("sip:agent7@127.0.0.1"));
    other.branch = "BJ01".into();
    let staff = vec![
        staff("A1", StaffRole::Service, None, Some("sip:agent1@127.0.0.1")),
        other,
        staff("M1", StaffRole::Supervisor, None, None),
        staff("K1", StaffRole::Compliance, None, None),
    ];
    // C2 was introduced by A1: A1 may not call them back (E7)
    let clients = vec![client("C1", "13900000001", None), client("C2", "13900000002", Some("A1"))];
    let tasks = vec![
        T { key: "complaint:E1", kind: TaskKind::Complaint, client: "C1", due: "2026-12-01" },
        T { key: "complaint:E2", kind: TaskKind::Complaint, client: "C2", due: "2026-12-01" },
    ];
    let mut floor = Floor::build(&staff, &clients, &tasks, 0).await;
    // not due before next year: the dialer leaves them alone, a person may call now
    floor.db.raw("UPDATE tasks SET next_attempt_at = '2027-06-01T00:00:00.000Z'").await.unwrap();
    floor.phone("agent1", Duration::from_millis(300), None).await;
    floor.phone("13900000001", Duration::from_millis(200), Some(Duration::from_millis(2500))).await;
    let agent = floor.cookie().await;
    let mut ws = floor.ws(&agent, None).await;
    assert_eq!(floor.post(&agent, "/api/v1/agent/state", json!({"state": "available"})).await.0, 200);

    // a supervisor naming another branch's agent: refused
    let sup = floor.cookie_of("super1").await;
    let (st, v) =
        floor.post(&sup, "/api/v1/calls", json!({"task_id": "complaint:E1", "agent_id": "B7"})).await;
    assert_eq!(st, 403, "{v}");
    // the client A1 introduced: refused by avoidance, and the page can say so
    let (st, v) = floor.post(&agent, "/api/v1/calls", json!({"task_id": "complaint:E2"})).await;
    assert_eq!((st, v["code"].as_str()), (403, Some("avoidance")), "{v}");
    // an agent may not override the window
    let body = json!({"task_id": "complaint:E1", "override_window": "the client asked"});
    assert_eq!(floor.post(&agent, "/api/v1/calls", body).await.0, 403);

    // the agent calls C1 now
    let (st, placed) = floor.post(&agent, "/api/v1/calls", json!({"task_id": "complaint:E1"})).await;
    assert_eq!(st, 202, "{placed}\n{}", floor.serve.log());
    let call_id = placed["call_id"].as_str().unwrap().to_string();
    assert_eq!(placed["agent_id"], "A1");
    // on a call: a second one is refused
    let (st, v) = floor.post(&agent, "/api/v1/calls", json!({"task_id": "complaint:E1"})).await;
    assert_eq!((st, v["code"].as_str()), (409, Some("agent-busy")), "{v}");
    // the feed: the screen-pop, then the call's progress, then its end
    let (offered, _) = until(&mut ws, "offered", SECS).await;
    assert_eq!(offered["call_id"], call_id.as_str());
    let (ended, seen) = until(&mut ws, "ended", SECS).await;
    assert_eq!(ended["outcome"], "completed", "{}", floor.serve.log());
    let types: Vec<&str> = seen.iter().filter_map(|m| m["type"].as_str()).collect();
    assert!(types.contains(&"agent_ringing") && types.contains(&"connected"), "{types:?}");
    // the trace and the recording, as the supervisor sees them
    let r = floor
        .http
        .get(format!("{}/api/v1/calls/{call_id}", floor.base))
        .header("cookie", &sup)
        .send()
        .await
        .unwrap();
    let trace: serde_json::Value = r.json().await.unwrap();
    assert_eq!(
        (trace["outcome"].as_str(), trace["agent_id"].as_str()),
        (Some("completed"), Some("A1")),
        "{trace}"
    );
    assert_eq!(trace["task_id"].as_str().map(|t| t.len()), Some(36), "{trace}");
    assert!(trace["recording"]["sha256"].is_string(), "{trace}");
    // the audit events of the call
    let store = floor.db.store.clone();
    let id = call_id.clone();
    wait_for(SECS, "the call's audit events", || {
        let (store, id) = (store.clone(), id.clone());
        async move {
            let actions: Vec<String> =
                store.audit_of(&id, 0, 100).await.unwrap().into_iter().map(|e| e.action).collect();
            ["call.placed", "call.answered", "call.ended"]
                .iter()
                .all(|a| actions.iter().any(|x| x == a))
                .then_some(())
        }
    })
    .await;

    // the client asks to be called back tomorrow at three: the next attempt, audited
    let at = "2026-12-08T15:00:00+08:00";
    let (st, v) = floor.post(&agent, "/api/v1/tasks/complaint:E1/call-back", json!({"at": at})).await;
    assert_eq!(st, 204, "{v}");
    let task = floor.db.store.task_by_key("complaint:E1").await.unwrap();
    assert_eq!(task.next_attempt_at.map(|t| t.to_rfc3339()), Some("2026-12-08T07:00:00+00:00".into()));
    assert!(task.awaiting_record_since.is_none(), "the callback is not done yet");
    let audited = floor.db.store.audit_of(&task.id.to_string(), 0, 100).await.unwrap();
    assert!(audited.iter().any(|e| e.action == "task.rescheduled" && e.actor == "agent1"), "{audited:?}");
    let (st, v) = floor.post(&agent, "/api/v1/tasks/complaint:E1/call-back", json!({"at": "3pm"})).await;
    assert_eq!((st, v["field"].as_str()), (422, Some("at")));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_shut_window_a_closed_task_and_an_unregistered_phone_are_refused_and_a_supervisor_overrides_the_window()
 {
    let staff = vec![
        staff("A1", StaffRole::Service, None, Some("sip:agent1@127.0.0.1")),
        // a registrar account (the floor makes one per client phone) that never registers
        staff("A3", StaffRole::Service, None, Some("sip:13900000009@127.0.0.1")),
        staff("M1", StaffRole::Supervisor, None, None),
    ];
    let clients = vec![client("C1", "13900000001", None), client("C9", "13900000009", None)];
    let tasks = vec![
        T { key: "complaint:E1", kind: TaskKind::Complaint, client: "C1", due: "2026-12-01" },
        T { key: "complaint:E2", kind: TaskKind::Complaint, client: "C1", due: "2026-12-01" },
    ];
    // 22:00 in Beijing: the calling window is shut
    let mut floor = Floor::build_at(&staff, &clients, &tasks, 0, "2026-11-30T22:00:00+08:00").await;
    floor.phone("agent1", Duration::from_millis(300), None).await;
    floor.phone("13900000001", Duration::from_millis(200), Some(Duration::from_millis(1500))).await;
    let agent = floor.cookie().await;
    let mut ws = floor.ws(&agent, None).await;
    assert_eq!(floor.post(&agent, "/api/v1/agent/state", json!({"state": "available"})).await.0, 200);
    let sup = floor.cookie_of("super1").await;
    let e1 = json!({"task_id": "complaint:E1"});
    let (st, v) = floor.post(&agent, "/api/v1/calls", e1.clone()).await;
    assert_eq!((st, v["code"].as_str()), (409, Some("window-shut")), "{v}");
    let (st, v) =
        floor.post(&sup, "/api/v1/calls", json!({"task_id": "complaint:E1", "agent_id": "A1"})).await;
    assert_eq!((st, v["code"].as_str()), (409, Some("window-shut")), "{v}");
    // A3's softphone never registered
    let body = json!({"task_id": "complaint:E1", "agent_id": "A3", "override_window": "the client asked"});
    let (st, v) = floor.post(&sup, "/api/v1/calls", body).await;
    assert_eq!((st, v["code"].as_str()), (409, Some("not-registered")), "{v}");
    // a closed task
    assert_eq!(
        floor.post(&sup, "/api/v1/tasks/complaint:E2/mark", json!({"outcome": "refused"})).await.0,
        200
    );
    let body = json!({"task_id": "complaint:E2", "agent_id": "A1", "override_window": "the client asked"});
    let (st, v) = floor.post(&sup, "/api/v1/calls", body).await;
    assert_eq!((st, v["code"].as_str()), (409, Some("task-not-callable")), "{v}");
    // the supervisor overrides the window, with a reason: placed, and audited
    let body =
        json!({"task_id": "complaint:E1", "agent_id": "A1", "override_window": "the client asked for 22:00"});
    let (st, placed) = floor.post(&sup, "/api/v1/calls", body).await;
    assert_eq!(st, 202, "{placed}\n{}", floor.serve.log());
    let (ended, _) = until(&mut ws, "ended", SECS).await;
    assert_eq!(
        (ended["call_id"].as_str(), ended["outcome"].as_str()),
        (placed["call_id"].as_str(), Some("completed"))
    );
    let task = floor.db.store.task_by_key("complaint:E1").await.unwrap();
    let audit = floor.db.store.audit_of(&task.id.to_string(), 0, 100).await.unwrap();
    let o = audit.iter().find(|e| e.action == "call.window_overridden").expect("the override audited");
    assert_eq!(
        (o.actor.as_str(), o.detail["reason"].as_str()),
        ("super1", Some("the client asked for 22:00"))
    );
}

/// A call by hand takes one of the dialer's lines like its own calls: with
/// `dialer.max_concurrent_calls = 1` and a call up, another agent's call is
/// refused `lines-full` (a trunk sized for the limit would refuse it
/// anyway, as a failed call), and placed once the line is free.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_by_hand_is_refused_while_every_line_is_in_use() {
    let staff = vec![
        staff("A1", StaffRole::Service, None, Some("sip:agent1@127.0.0.1")),
        // a registrar account of the floor's (one per client phone) as A2's softphone
        staff("A2", StaffRole::Service, None, Some("sip:13900000009@127.0.0.1")),
        staff("M1", StaffRole::Supervisor, None, None),
    ];
    let clients = vec![
        client("C1", "13900000001", None),
        client("C2", "13900000002", None),
        client("C9", "13900000009", None),
    ];
    let tasks = vec![
        T { key: "complaint:E1", kind: TaskKind::Complaint, client: "C1", due: "2026-12-01" },
        T { key: "complaint:E2", kind: TaskKind::Complaint, client: "C2", due: "2026-12-01" },
    ];
    let mut floor =
        Floor::build_lines(&staff, &clients, &tasks, 0, "2026-11-30T10:00:00+08:00", Some(1)).await;
    // not due before next year: only calls by hand
    floor.db.raw("UPDATE tasks SET next_attempt_at = '2027-06-01T00:00:00.000Z'").await.unwrap();
    floor.phone("agent1", Duration::from_millis(300), None).await;
    floor.phone("13900000009", Duration::from_millis(300), None).await;
    floor.phone("13900000001", Duration::from_millis(200), Some(Duration::from_millis(3000))).await;
    floor.phone("13900000002", Duration::from_millis(200), Some(Duration::from_millis(1000))).await;
    let agent = floor.cookie().await;
    let mut ws = floor.ws(&agent, None).await;
    assert_eq!(floor.post(&agent, "/api/v1/agent/state", json!({"state": "available"})).await.0, 200);
    floor
        .db
        .store
        .change_agent("A2", huifang::domain::agents::AgentCommand::Login, "M1", None, chrono::Utc::now())
        .await
        .unwrap();
    let sup = floor.cookie_of("super1").await;

    let (st, first) = floor.post(&agent, "/api/v1/calls", json!({"task_id": "complaint:E1"})).await;
    assert_eq!(st, 202, "{first}\n{}", floor.serve.log());
    let e2 = json!({"task_id": "complaint:E2", "agent_id": "A2"});
    let (st, v) = floor.post(&sup, "/api/v1/calls", e2.clone()).await;
    assert_eq!((st, v["code"].as_str()), (409, Some("lines-full")), "{v}");
    assert!(v["detail"].as_str().is_some_and(|d| d.contains("max_concurrent_calls")), "{v}");
    let task = floor.db.store.task_by_key("complaint:E2").await.unwrap();
    assert_eq!((task.attempts, task.lease_owner.as_deref()), (0, None), "nothing of E2 was claimed");

    // the first call ends: the line is free again
    let (ended, _) = until(&mut ws, "ended", SECS).await;
    assert_eq!(ended["call_id"].as_str(), first["call_id"].as_str());
    let (st, v) = floor.post(&sup, "/api/v1/calls", e2).await;
    assert_eq!(st, 202, "{v}\n{}", floor.serve.log());
}
