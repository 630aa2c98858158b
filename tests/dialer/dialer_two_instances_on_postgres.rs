//! Two `serve` instances share one PostgreSQL queue: 50 tasks, 3 agents
//! (baresip, reached directly), the clients on one SIPp. Every task is
//! dialed exactly once, both instances take part, and no agent is ever on
//! two calls at once — the task and the agent are claimed together, with
//! `FOR UPDATE SKIP LOCKED` and leases.

use crate::common;

use std::time::Duration;

use common::db::{Kind, fresh};
use common::dialer::{T, cli_ok, client, log_in, seed, staff, two_instances, wait_for};
use common::huifang::Huifang;
use common::{Baresip, BaresipOpts, audio, sipp_uas};
use huifang::domain::facts::Role;
use huifang::domain::kinds::TaskKind;
use huifang::store::TaskFilter;

const TASKS: usize = 50;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifty_tasks_three_agents_two_instances_no_task_twice_no_agent_twice() {
    let db = fresh(Kind::Postgres).await;
    let wav = audio::fixture(audio::CLIENT_ULAW_WAV);
    let sipp = sipp_uas(
        "client-answer-hangup.xml",
        Some(&wav),
        &["-m", &TASKS.to_string(), "-l", "10", "-set", "talk_ms", "700", "-timeout", "180s"],
    );
    let agents: Vec<Baresip> = (1..=3)
        .map(|n| Baresip::spawn(BaresipOpts::new(&format!("agent{n}"), "unused", "127.0.0.1:9").regint(0)))
        .collect();
    std::thread::sleep(Duration::from_millis(500));
    let store = db.open_store().await;
    let staff_list: Vec<_> = agents
        .iter()
        .enumerate()
        .map(|(i, a)| {
            let uri = format!("sip:agent{}@127.0.0.1:{}", i + 1, a.sip_port);
            staff(&format!("A{}", i + 1), Role::Service, None, Some(&uri))
        })
        .collect();
    let clients: Vec<_> =
        (0..TASKS).map(|i| client(&format!("C{i:02}"), &format!("1390001{i:04}"), None)).collect();
    let keys: Vec<String> = (0..TASKS).map(|i| format!("special:O{i:02}")).collect();
    let tasks: Vec<T> = (0..TASKS)
        .map(|i| T {
            key: &keys[i],
            kind: TaskKind::Special,
            client: &clients[i].client_id,
            due: "2026-12-01",
        })
        .collect();
    seed(&store, &staff_list, &clients, &tasks).await;
    log_in(&store, &["A1", "A2", "A3"]).await;
    let (_dirs, config_a, config_b) = two_instances(&db.url, sipp.sip_port, 10, 20);
    let mut a = Huifang::start_with_config(&config_a);
    let mut b = Huifang::start_with_config(&config_b);

    let status: serde_json::Value =
        serde_json::from_str(&cli_ok(&config_a, &["status", "--format", "json"])).unwrap();
    assert_eq!(status["dialers"].as_array().unwrap().len(), 2, "{status:#}");

    wait_for(Duration::from_secs(180), "every task dialed", || async {
        let tasks = store.tasks(&TaskFilter::default()).await.unwrap();
        let done = tasks.iter().filter(|t| t.awaiting_record_since.is_some()).count();
        (done == TASKS).then_some(())
    })
    .await;

    // every task dialed exactly once, completed
    let mut calls = Vec::new();
    for t in store.tasks(&TaskFilter::default()).await.unwrap() {
        let ids = store.task_calls(t.id).await.unwrap();
        assert_eq!(ids.len(), 1, "task {} dialed {} times", t.key, ids.len());
        let call = store.get_call(ids[0]).await.unwrap();
        assert_eq!(call.outcome.as_deref(), Some("completed"), "{}\n{}", a.log(), b.log());
        calls.push(call);
    }
    assert_eq!(db.count("SELECT count(*) FROM calls").await, TASKS as i64);
    // both instances took part
    let by_a = db.count("SELECT count(*) FROM calls WHERE instance = 'inst-a'").await;
    let by_b = db.count("SELECT count(*) FROM calls WHERE instance = 'inst-b'").await;
    assert!(by_a > 0 && by_b > 0 && by_a + by_b == TASKS as i64, "a {by_a}, b {by_b}");
    // no agent on two calls at once
    for n in 1..=3 {
        let tag = format!("agent{n}@");
        let mut mine: Vec<_> = calls.iter().filter(|c| c.agent_uri.contains(&tag)).collect();
        mine.sort_by_key(|c| c.started_at);
        assert!(!mine.is_empty(), "agent{n} took no call");
        for w in mine.windows(2) {
            assert!(w[0].ended_at.unwrap() <= w[1].started_at, "agent{n} had two calls at once");
        }
    }
    for (h, name) in [(&mut a, "a"), (&mut b, "b")] {
        let (st, _) = h.terminate(Duration::from_secs(20));
        assert!(st.success(), "instance {name}:\n{}", h.log());
    }
    let status: serde_json::Value =
        serde_json::from_str(&cli_ok(&config_b, &["status", "--format", "json"])).unwrap();
    assert!(status["dialers"].as_array().unwrap().iter().all(|d| d["state"] == "stopped"), "{status:#}");
    assert_eq!(db.count("SELECT count(*) FROM tasks WHERE lease_owner IS NOT NULL").await, 0);
    store.close().await;
    drop(agents);
    let _ = sipp.kill();
}
