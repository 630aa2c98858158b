//! Retries and calling windows, against real phones on a test clock: a
//! client (SIPp) who never answers is dialed just before noon on a Monday;
//! the retry falls due after 12:00, in the lunch break, so no call is placed
//! (the dialer says it is outside the calling hours until 13:30). At 14:00
//! (the clock of a restarted `serve`) it is dialed again, then once more
//! after the configured spacing, and the task is closed as unreachable
//! after the third attempt. No real hours are waited for.

use crate::common;

use std::time::Duration;

use common::db::{Kind, fresh};
use common::dialer::{QUIET_RULES, cli_ok, seed_one, serve_config, wait_for};
use common::huifang::Huifang;
use common::{Baresip, BaresipOpts, sipp_uas};
use huifang::domain::agents::AgentCommand;
use huifang::store::{Store, TaskRow};

const USERS: &str = "[[sip.users]]\nname = \"agent1\"\npassword = \"agent1-test-secret\"\n";

async fn the_task(store: &Store) -> TaskRow {
    store.task_by_key("complaint:E1").await.unwrap()
}

fn agent(h: &Huifang) -> Baresip {
    let mut a = Baresip::spawn(BaresipOpts::new("agent1", "agent1-test-secret", &h.addr.to_string()));
    assert!(a.wait_registered(Duration::from_secs(10)), "agent1 did not register:\n{}", a.log());
    a
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unanswered_client_is_retried_at_the_spacing_within_the_windows_then_closed_unreachable() {
    let db = fresh(Kind::Sqlite).await;
    let sipp = sipp_uas("client-no-answer.xml", None, &["-m", "3", "-timeout", "90s"]);
    let rest = |clock: &str| {
        format!(
            "{USERS}\n[call]\nagent_ring_secs = 5\nclient_ring_secs = 2\n\n\
             [dialer]\npoll_interval_ms = 200\nlease_secs = 10\nwrap_up_secs = 0\n\
             max_attempts = 3\nretry_spacing_secs = [12, 4]\ndrill = true\nclock_start = \"{clock}\"\n\
             client_uri = \"sip:{{phone}}@127.0.0.1:{}\"\n\n{QUIET_RULES}",
            sipp.sip_port
        )
    };
    let (config, _) = serve_config(db.dir.path(), &db.url, "", &rest("2026-11-30T11:59:50+08:00"));
    let store = db.open_store().await;
    seed_one(&store).await;
    store.change_agent("A1", AgentCommand::Login, "A1", None, chrono::Utc::now()).await.unwrap();

    // from 11:59:50 (the first poll after the agent registered): the first attempt, unanswered
    let mut h = Huifang::start_with_config(&config);
    let a = agent(&h);
    let t = wait_for(Duration::from_secs(20), "the first attempt", || async {
        let t = the_task(&store).await;
        (t.attempts == 1 && t.lease_owner.is_none()).then_some(t)
    })
    .await;
    assert_eq!(t.last_outcome.as_deref(), Some("no-answer"), "{}", h.log());
    let retry_at = t.next_attempt_at.expect("a retry time");
    let first_end = t.last_attempt_at.unwrap();
    assert!(retry_at - first_end >= chrono::Duration::seconds(12), "spacing: {first_end} → {retry_at}");

    // the retry is due (real time), but on the test clock it is past 12:00: lunch, no call
    let wait = (retry_at - chrono::Utc::now()).to_std().unwrap_or_default() + Duration::from_secs(2);
    tokio::time::sleep(wait).await;
    assert_eq!(db.count("SELECT count(*) FROM calls").await, 1, "{}", h.log());
    let status: serde_json::Value =
        serde_json::from_str(&cli_ok(&config, &["status", "--format", "json"])).unwrap();
    let d = &status["dialers"][0];
    assert_eq!(d["state"], "closed", "{status:#}");
    let detail = d["detail"].as_str().unwrap();
    assert!(
        detail.contains("outside the calling hours") && detail.contains("2026-11-30T13:30:00+08:00"),
        "{detail}"
    );
    // a drill says so, in status and in the log
    assert!(detail.starts_with("DRILL clock 2026-11-30 12:"), "{detail}");
    assert!(h.log().contains("DRILL: the dialer's clock is not the real time"), "{}", h.log());
    assert_eq!(status["queue"]["ready"], 1, "due, waiting for the window: {status:#}");
    let (st, _) = h.terminate(Duration::from_secs(20));
    assert!(st.success(), "{}", h.log());
    drop(a);

    // 14:00: dialed again at once, then after 4 s, then closed unreachable
    let text = std::fs::read_to_string(&config).unwrap();
    std::fs::write(&config, text.replace("2026-11-30T11:59:50+08:00", "2026-11-30T14:00:00+08:00")).unwrap();
    let mut h = Huifang::start_with_config(&config);
    let a = agent(&h);
    let t = wait_for(Duration::from_secs(40), "the task to be closed", || async {
        let t = the_task(&store).await;
        (t.state != "open").then_some(t)
    })
    .await;
    assert_eq!(
        (t.state.as_str(), t.outcome.as_deref(), t.attempts),
        ("closed", Some("unreachable"), 3),
        "{}",
        h.log()
    );
    assert!(t.closed_by.as_deref().unwrap().starts_with("dialer@"));
    assert!(store.open_calls().await.unwrap().is_empty());
    let mut calls = Vec::new();
    for id in store.task_calls(t.id).await.unwrap() {
        calls.push(store.get_call(id).await.unwrap());
    }
    assert_eq!(calls.len(), 3);
    assert!(calls.iter().all(|c| c.outcome.as_deref() == Some("no-answer")), "{calls:?}");
    let gap = |a: &huifang::store::CallRow, b: &huifang::store::CallRow| b.started_at - a.ended_at.unwrap();
    assert!(gap(&calls[0], &calls[1]) >= chrono::Duration::seconds(12));
    let g = gap(&calls[1], &calls[2]);
    assert!(
        g >= chrono::Duration::milliseconds(3950) && g <= chrono::Duration::seconds(6),
        "second spacing {g}"
    );
    let (st, _) = h.terminate(Duration::from_secs(20));
    assert!(st.success(), "{}", h.log());
    drop(a);
    store.close().await;
    sipp.wait().assert_success();
}
