//! `serve`'s shutdown with a call in progress: on SIGTERM the dialer stops
//! claiming and lets the call finish (within `dialer.shutdown_deadline_secs`)
//! before the SIP endpoint stops — the call completes and is recorded, the
//! task waits for its record, no lease is left behind. A call still going
//! at the deadline is ended as interrupted and its task goes back to the
//! queue without counting as an attempt. Real phones: baresip agent,
//! SIPp client.

use crate::common;

use std::time::{Duration, Instant};

use common::db::{Kind, fresh};
use common::dialer::{QUIET_RULES, seed_one, serve_config, wait_for};
use common::huifang::Huifang;
use common::{Baresip, BaresipOpts, audio, sipp_uas};
use huifang::domain::agents::AgentCommand;

const USERS: &str = "[[sip.users]]\nname = \"agent1\"\npassword = \"agent1-test-secret\"\n";

/// Starts serve with one task and one agent, waits for the client to
/// answer, sends SIGTERM; returns (the task after the exit, how long the
/// exit took, the call's outcome).
async fn terminate_mid_call(
    talk_ms: &str,
    deadline_secs: u64,
) -> (huifang::store::TaskRow, Duration, String) {
    let db = fresh(Kind::Sqlite).await;
    let wav = audio::fixture(audio::CLIENT_ULAW_WAV);
    let sipp =
        sipp_uas("client-answer-hangup.xml", Some(&wav), &["-set", "talk_ms", talk_ms, "-timeout", "60s"]);
    let rest = format!(
        "{USERS}\n[call]\nagent_ring_secs = 5\nclient_ring_secs = 5\nmax_call_secs = 60\n\n\
         [dialer]\npoll_interval_ms = 200\nlease_secs = 10\nwrap_up_secs = 30\nshutdown_deadline_secs = {deadline_secs}\n\
         drill = true\nclock_start = \"2026-11-30T10:00:00+08:00\"\nclient_uri = \"sip:{{phone}}@127.0.0.1:{}\"\n\n{QUIET_RULES}",
        sipp.sip_port
    );
    let (config, _) = serve_config(db.dir.path(), &db.url, "", &rest);
    let store = db.open_store().await;
    seed_one(&store).await;
    store.change_agent("A1", AgentCommand::Login, "A1", None, chrono::Utc::now()).await.unwrap();
    let mut h = Huifang::start_with_config(&config);
    let mut agent = Baresip::spawn(BaresipOpts::new("agent1", "agent1-test-secret", &h.addr.to_string()));
    assert!(agent.wait_registered(Duration::from_secs(10)), "{}", agent.log());
    let call = wait_for(Duration::from_secs(20), "the client to answer", || async {
        let task = store.task_by_key("complaint:E1").await.unwrap();
        let id = *store.task_calls(task.id).await.unwrap().first()?;
        let call = store.get_call(id).await.unwrap();
        call.answered_at.is_some().then_some(call)
    })
    .await;
    let asked = Instant::now();
    let (st, _) = h.terminate(Duration::from_secs(deadline_secs + 20));
    let took = asked.elapsed();
    assert!(st.success(), "{}", h.log());
    assert!(h.log().contains("no new calls"), "{}", h.log());
    let call = store.get_call(call.id).await.unwrap();
    let rec = store.recording_for_call(call.id).await.unwrap().expect("recorded");
    assert_eq!(rec.state.as_str(), "sealed", "the recording is sealed before exit");
    let task = store.task_by_key("complaint:E1").await.unwrap();
    assert_eq!(db.count("SELECT count(*) FROM tasks WHERE lease_owner IS NOT NULL").await, 0, "a lease left");
    assert_eq!(
        db.count("SELECT count(*) FROM agent_sessions WHERE call_owner IS NOT NULL").await,
        0,
        "agent held"
    );
    assert_eq!(db.count("SELECT count(*) FROM calls").await, 1, "no new call after the signal");
    store.close().await;
    drop(agent);
    let _ = sipp.kill();
    (task, took, call.outcome.unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_in_progress_finishes_before_serve_exits() {
    let (task, took, outcome) = terminate_mid_call("2500", 20).await;
    assert_eq!(outcome, "completed");
    assert!(took >= Duration::from_millis(1500), "serve exited after {took:?}, before the call ended");
    assert!(task.awaiting_record_since.is_some() && task.attempts == 1, "{task:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_still_going_at_the_deadline_is_interrupted_and_its_task_requeued() {
    let (task, took, outcome) = terminate_mid_call("30000", 2).await;
    assert_eq!(outcome, "interrupted");
    assert!(took >= Duration::from_secs(2) && took < Duration::from_secs(15), "exit took {took:?}");
    assert_eq!(
        (task.state.as_str(), task.attempts, task.last_outcome.as_deref()),
        ("open", 0, Some("interrupted"))
    );
    assert!(task.next_attempt_at.is_some() && task.awaiting_record_since.is_none(), "{task:?}");
}
