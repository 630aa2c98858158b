//! Avoidance in practice (E7) and who is available, against real phones:
//! `serve` in built-in registrar mode, agents on baresip, the client on
//! SIPp. The client was introduced by agent A1, the only agent logged in:
//! the task is never offered to A1. A2 logs in, but A2's softphone is not
//! registered: A2 is not available either. Once A2's phone registers, the
//! task goes to A2 and the call is placed, agent first, then the client.

use crate::common;

use std::time::Duration;

use common::db::{Kind, fresh};
use common::dialer::{QUIET_RULES, T, client, seed, serve_config, staff, wait_for};
use common::huifang::Huifang;
use common::{Baresip, BaresipOpts, audio, sipp_uas};
use huifang::domain::agents::AgentCommand;
use huifang::domain::facts::Role;
use huifang::domain::kinds::TaskKind;
use huifang::store::TaskFilter;

const USERS: &str = "[[sip.users]]\nname = \"agent1\"\npassword = \"agent1-test-secret\"\n\
                     [[sip.users]]\nname = \"agent2\"\npassword = \"agent2-test-secret\"\n";

fn status(config: &std::path::Path) -> serde_json::Value {
    serde_json::from_str(&common::dialer::cli_ok(config, &["status", "--format", "json"])).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_introducer_is_never_offered_the_task_and_an_unregistered_agent_is_not_available() {
    let db = fresh(Kind::Sqlite).await;
    let wav = audio::fixture(audio::CLIENT_ULAW_WAV);
    let sipp =
        sipp_uas("client-answer-hangup.xml", Some(&wav), &["-set", "talk_ms", "1500", "-timeout", "60s"]);
    let rest = format!(
        "{USERS}\n[call]\nagent_ring_secs = 5\nclient_ring_secs = 5\nmax_call_secs = 20\n\n\
         [dialer]\npoll_interval_ms = 200\nlease_secs = 10\nwrap_up_secs = 0\n\
         drill = true\nclock_start = \"2026-11-30T10:00:00+08:00\"\nclient_uri = \"sip:{{phone}}@127.0.0.1:{}\"\n\n{QUIET_RULES}",
        sipp.sip_port
    );
    let (config, _) = serve_config(db.dir.path(), &db.url, "", &rest);
    let store = db.open_store().await;
    seed(
        &store,
        &[
            staff("A1", Role::Service, None, Some("sip:agent1@127.0.0.1")),
            staff("A2", Role::Service, None, Some("sip:agent2@127.0.0.1")),
        ],
        &[client("C1", "13900000001", Some("A1"))],
        &[T { key: "complaint:E1", kind: TaskKind::Complaint, client: "C1", due: "2026-12-01" }],
    )
    .await;
    store.change_agent("A1", AgentCommand::Login, "A1", None, chrono::Utc::now()).await.unwrap();

    let mut h = Huifang::start_with_config(&config);
    let mut a1 = Baresip::spawn(BaresipOpts::new("agent1", "agent1-test-secret", &h.addr.to_string()));
    assert!(a1.wait_registered(Duration::from_secs(10)), "agent1 did not register:\n{}", a1.log());

    // A1 is free and registered, the task is ready: A1 introduced the client, so nothing happens
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(db.count("SELECT count(*) FROM calls").await, 0, "a call was placed:\n{}", h.log());
    let s = status(&config);
    let detail = s["dialers"][0]["detail"].as_str().unwrap_or_default().to_string();
    assert!(detail.contains("refused") && detail.contains("E7"), "{s:#}");
    assert_eq!(s["queue"]["ready"], 1, "{s:#}");
    // serve on the local archive says it is no WORM storage, at start-up and in status
    assert!(s["notices"][0].as_str().is_some_and(|n| n.contains("not write-once")), "{s:#}");
    assert!(h.log().contains("is not write-once storage"), "{}", h.log());

    // A2 logs in, but A2's softphone is not registered: not available
    store.change_agent("A2", AgentCommand::Login, "A2", None, chrono::Utc::now()).await.unwrap();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(db.count("SELECT count(*) FROM calls").await, 0, "a call was placed:\n{}", h.log());
    let s = status(&config);
    assert!(
        s["dialers"][0]["detail"].as_str().unwrap_or_default().contains("softphone not registered: A2"),
        "{s:#}"
    );

    // A2's phone registers: the task goes to A2
    let mut a2 = Baresip::spawn(BaresipOpts::new("agent2", "agent2-test-secret", &h.addr.to_string()));
    assert!(a2.wait_registered(Duration::from_secs(10)), "agent2 did not register:\n{}", a2.log());
    let task = wait_for(Duration::from_secs(30), "the call to complete", || async {
        let t = store.tasks(&TaskFilter::default()).await.unwrap().remove(0);
        t.awaiting_record_since.is_some().then_some(t)
    })
    .await;
    assert_eq!(task.assigned_agent.as_deref(), Some("A2"));
    assert_eq!((task.attempts, task.last_outcome.as_deref()), (1, Some("completed")), "{}", h.log());
    let call = store.get_call(task.last_call_id.unwrap()).await.unwrap();
    assert_eq!(call.task_id.as_deref(), Some(task.id.to_string().as_str()));
    assert!(call.agent_uri.contains("agent2"));
    assert!(
        call.agent_answered_at.unwrap() <= call.client_invited_at.unwrap(),
        "agent first, then the client"
    );
    assert_eq!(db.count("SELECT count(*) FROM calls").await, 1);
    // A1 was never put on a call
    let a1_events = store.agent_events("A1").await.unwrap();
    assert!(a1_events.iter().all(|e| e.to_state != "on_call"), "{a1_events:?}");
    assert!(store.agent_events("A2").await.unwrap().iter().any(|e| e.to_state == "on_call"));

    let (st, _) = h.terminate(Duration::from_secs(20));
    assert!(st.success(), "{}", h.log());
    assert_eq!(status(&config)["dialers"][0]["state"], "stopped");
    store.close().await;
    drop((a1, a2));
    let _ = sipp.kill();
}
