//! A call that ended just before a crash — its outcome written, the
//! dialer's write-back of the attempt not (found by the soak: 42 clients of
//! 10,000 called back twice after kills) — is written back when its task
//! is next claimed, and the client is not called again.

use crate::common;

use std::time::Duration;

use chrono::Utc;
use common::db::{Kind, fresh};
use common::dialer::{QUIET_RULES, seed_one, serve_config, wait_for};
use common::huifang::Huifang;
use common::{Baresip, BaresipOpts};
use huifang::domain::agents::AgentCommand;
use huifang::store::NewCall;
use uuid::Uuid;

const USERS: &str = "[[sip.users]]\nname = \"agent1\"\npassword = \"agent1-test-secret\"\n";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_that_ended_before_a_crash_is_written_back_not_placed_again() {
    let db = fresh(Kind::Sqlite).await;
    // the client's phone is nowhere: a second call would be traced, and fail
    let rest = format!(
        "{USERS}\n[dialer]\npoll_interval_ms = 200\nlease_secs = 10\nwrap_up_secs = 0\n\
         drill = true\nclock_start = \"2026-11-30T10:00:00+08:00\"\n\
         client_uri = \"sip:{{phone}}@127.0.0.1:9\"\n\n{QUIET_RULES}"
    );
    let (config, _) = serve_config(db.dir.path(), &db.url, "", &rest);
    let store = db.open_store().await;
    seed_one(&store).await;
    store.change_agent("A1", AgentCommand::Login, "A1", None, Utc::now()).await.unwrap();
    let task = store.task_by_key("complaint:E1").await.unwrap();
    let id = Uuid::now_v7();
    let at = Utc::now() - chrono::Duration::seconds(60);
    store
        .insert_call(&NewCall {
            id,
            task_id: Some(task.id.to_string()),
            client_id: Some("C1".into()),
            agent_uri: "sip:agent1@127.0.0.1".into(),
            client_uri: "sip:13900000001@127.0.0.1:9".into(),
            started_at: at,
            kind: Some("complaint".into()),
            agent_id: Some("A1".into()),
            claimed_at: Some(at),
        })
        .await
        .unwrap();
    store.mark_answered(id, at + chrono::Duration::seconds(5)).await.unwrap();
    store.finish_call(id, "completed", None, at + chrono::Duration::seconds(50)).await.unwrap();

    let h = Huifang::start_with_config(&config);
    let mut a = Baresip::spawn(BaresipOpts::new("agent1", "agent1-test-secret", &h.addr.to_string()));
    assert!(a.wait_registered(Duration::from_secs(10)), "agent1 did not register:\n{}", a.log());
    let t = wait_for(Duration::from_secs(20), "the attempt written back", || async {
        let t = store.task_by_key("complaint:E1").await.unwrap();
        (t.attempts == 1).then_some(t)
    })
    .await;
    assert_eq!(t.last_call_id, Some(id), "{}", h.log());
    assert_eq!(t.last_outcome.as_deref(), Some("completed"));
    assert!(t.awaiting_record_since.is_some(), "awaits its record: {t:?}");
    assert!(t.lease_owner.is_none(), "the lease is given back");
    // and the client was not called again, a while later either
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(db.count("SELECT count(*) FROM calls").await, 1, "{}", h.log());
    assert!(h.log().contains("written now, not called again"), "{}", h.log());
    drop(a);
    store.close().await;
}
