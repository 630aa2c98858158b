//! E7 at dial time (issue 16 §4): the facts change between the dialer's
//! claim and its INVITE — the client's row now names the agent as their
//! introducer (as a new client import would) — and the call is not
//! placed: no INVITE, no call row, the claim given back, and the log says
//! why. The test hook `HUIFANG_TEST_DIAL_PAUSE_MS` (test builds only)
//! holds the dialer between the claim and its recheck.

use crate::common;

use std::time::Duration;

use common::db::{Kind, fresh};
use common::dialer::{QUIET_RULES, seed_one, serve_config, wait_for};
use common::huifang::Huifang;
use common::softphone::Phone;
use huifang::domain::agents::AgentCommand;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_introducer_found_between_claim_and_invite_is_not_called() {
    let db = fresh(Kind::Sqlite).await;
    let rest = format!(
        "[[sip.users]]\nname = \"agent1\"\npassword = \"agent1-test-secret\"\n\n\
         [call]\nagent_ring_secs = 5\nclient_ring_secs = 5\nmax_call_secs = 20\n\n\
         [dialer]\npoll_interval_ms = 200\nlease_secs = 30\nwrap_up_secs = 0\n\
         drill = true\nclock_start = \"2026-11-30T10:00:00+08:00\"\nclient_uri = \"sip:{{phone}}@127.0.0.1:9\"\n\n{QUIET_RULES}"
    );
    let (config, _) = serve_config(db.dir.path(), &db.url, "", &rest);
    let store = db.open_store().await;
    seed_one(&store).await;
    let h = Huifang::start_with_config_env(&config, &[("HUIFANG_TEST_DIAL_PAUSE_MS", "2500")]);
    let agent = Phone::registered(&h.addr.to_string(), "agent1", "agent1-test-secret", &["--seconds", "30"]);
    assert!(h.wait_log("softphone registered", Duration::from_secs(10)), "{}", h.log());
    store.change_agent("A1", AgentCommand::Login, "A1", None, chrono::Utc::now()).await.unwrap();
    // claimed: now A1 becomes C1's introducer
    assert!(h.wait_log("before the E7 recheck", Duration::from_secs(15)), "{}", h.log());
    db.raw("UPDATE clients SET introducer_id = 'A1' WHERE client_id = 'C1'").await.unwrap();
    assert!(
        h.wait_log("avoidance refused the call at dial time (E7)", Duration::from_secs(10)),
        "{}",
        h.log()
    );
    // no call, no INVITE to the agent; the task back in the queue, unleased
    assert_eq!(db.count("SELECT count(*) FROM calls").await, 0, "{}", h.log());
    assert!(!h.log().contains("calling the agent, then the client"), "{}", h.log());
    let task = wait_for(Duration::from_secs(5), "the claim given back", || async {
        let t = store.task_by_key("complaint:E1").await.unwrap();
        (t.lease_owner.is_none()).then_some(t)
    })
    .await;
    assert_eq!((task.state.as_str(), task.attempts), ("open", 0));
    drop(agent);
}
