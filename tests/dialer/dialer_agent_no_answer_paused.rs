//! An agent whose phone does not answer is paused by the dialer, with the
//! reason in the agent's trace, and the task goes to another agent without
//! counting as an attempt. Real phones: baresip agents registered to
//! `serve`'s built-in registrar (one answering by hand, so never), the
//! client on SIPp.

use crate::common;

use std::time::Duration;

use common::db::{Kind, fresh};
use common::dialer::{QUIET_RULES, T, cli_ok, client, seed, serve_config, staff, wait_for};
use common::huifang::Huifang;
use common::{Baresip, BaresipOpts, audio, sipp_uas};
use huifang::domain::facts::Role;
use huifang::domain::kinds::TaskKind;

const USERS: &str = "[[sip.users]]\nname = \"agent1\"\npassword = \"agent1-test-secret\"\n\
                     [[sip.users]]\nname = \"agent2\"\npassword = \"agent2-test-secret\"\n";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_agent_who_does_not_answer_is_paused_and_another_takes_the_task() {
    let db = fresh(Kind::Sqlite).await;
    let wav = audio::fixture(audio::CLIENT_ULAW_WAV);
    let sipp =
        sipp_uas("client-answer-hangup.xml", Some(&wav), &["-set", "talk_ms", "1000", "-timeout", "60s"]);
    let rest = format!(
        "{USERS}\n[call]\nagent_ring_secs = 2\nclient_ring_secs = 5\n\n\
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
        &[client("C1", "13900000001", None)],
        &[T { key: "complaint:E1", kind: TaskKind::Complaint, client: "C1", due: "2026-12-01" }],
    )
    .await;
    let mut h = Huifang::start_with_config(&config);
    let addr = h.addr.to_string();
    let mut a1 = Baresip::spawn(BaresipOpts::new("agent1", "agent1-test-secret", &addr).answermode("manual"));
    let mut a2 = Baresip::spawn(BaresipOpts::new("agent2", "agent2-test-secret", &addr));
    assert!(a1.wait_registered(Duration::from_secs(10)) && a2.wait_registered(Duration::from_secs(10)));
    cli_ok(&config, &["agent", "login", "A1"]);

    // A1's phone rings and nobody answers: A1 paused, reason traced
    let session = wait_for(Duration::from_secs(20), "A1 to be paused", || async {
        let s = store.agent_session("A1").await.unwrap().unwrap();
        (s.state.as_str() == "paused").then_some(s)
    })
    .await;
    assert!(session.changed_by.starts_with("dialer@"), "{session:?}");
    let reason = session.reason.clone().unwrap();
    assert!(reason.contains("did not answer"), "{reason}");
    let events = store.agent_events("A1").await.unwrap();
    let paused = events.last().unwrap();
    assert_eq!((paused.to_state.as_str(), paused.reason.as_deref()), ("paused", Some(reason.as_str())));
    assert!(paused.task_id.is_some());
    let task = store.task_by_key("complaint:E1").await.unwrap();
    assert_eq!((task.attempts, task.last_outcome.as_deref()), (0, Some("agent-unavailable")), "{}", h.log());
    let status = cli_ok(&config, &["status"]);
    assert!(status.contains("did not answer"), "{status}");

    // A2 logs in and takes the task
    cli_ok(&config, &["agent", "login", "A2"]);
    let task = wait_for(Duration::from_secs(30), "A2's call to complete", || async {
        let t = store.task_by_key("complaint:E1").await.unwrap();
        t.awaiting_record_since.is_some().then_some(t)
    })
    .await;
    assert_eq!((task.attempts, task.assigned_agent.as_deref()), (1, Some("A2")));
    assert_eq!(store.task_calls(task.id).await.unwrap().len(), 2, "both attempts traced (E2)");
    // A1 stays paused until A1 resumes
    assert_eq!(store.agent_session("A1").await.unwrap().unwrap().state.as_str(), "paused");
    cli_ok(&config, &["agent", "resume", "A1"]);
    let (st, _) = h.terminate(Duration::from_secs(20));
    assert!(st.success(), "{}", h.log());
    store.close().await;
    drop((a1, a2));
    let _ = sipp.kill();
}
