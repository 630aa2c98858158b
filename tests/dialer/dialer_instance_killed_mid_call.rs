//! An instance dies mid-call (`kill -9`) while another shares its
//! PostgreSQL queue. While the first one lives, the second never touches
//! its task (the lease is renewed during the call). Once the lease has
//! expired, the second takes the task up: the dead instance's call is
//! recorded as interrupted and the client is dialed again (an interrupted
//! call does not count as an attempt). When the dead instance restarts,
//! start-up recovery seals its half-written recording as interrupted.

use crate::common;

use std::time::{Duration, Instant};

use common::db::{Kind, fresh};
use common::dialer::{T, client, log_in, seed, staff, two_instances, wait_for};
use common::huifang::Huifang;
use common::{Baresip, BaresipOpts, audio, sipp_uas};
use huifang::domain::facts::Role;
use huifang::domain::kinds::TaskKind;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_task_of_a_killed_instance_is_retried_by_the_other_after_the_lease() {
    let db = fresh(Kind::Postgres).await;
    let wav = audio::fixture(audio::CLIENT_ULAW_WAV);
    let sipp = sipp_uas(
        "client-answer-hangup.xml",
        Some(&wav),
        &["-m", "2", "-set", "talk_ms", "5000", "-timeout", "60s"],
    );
    let agents: Vec<Baresip> = (1..=2)
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
    seed(
        &store,
        &staff_list,
        &[client("C1", "13900000001", None)],
        &[T { key: "special:O1", kind: TaskKind::Special, client: "C1", due: "2026-12-01" }],
    )
    .await;
    log_in(&store, &["A1", "A2"]).await;
    let (_dirs, config_a, config_b) = two_instances(&db.url, sipp.sip_port, 4, 30);

    // A places the call; the client answers
    let mut a = Huifang::start_with_config(&config_a);
    let first = wait_for(Duration::from_secs(20), "the client to answer A's call", || async {
        let task = store.task_by_key("special:O1").await.unwrap();
        let ids = store.task_calls(task.id).await.unwrap();
        let call = store.get_call(*ids.first()?).await.unwrap();
        call.answered_at.is_some().then_some(call)
    })
    .await;
    // B runs beside A for a while and leaves A's task alone (the lease is renewed)
    let mut b = Huifang::start_with_config(&config_b);
    tokio::time::sleep(Duration::from_secs(2)).await;
    let task = store.task_by_key("special:O1").await.unwrap();
    assert_eq!(task.lease_owner.as_deref(), Some("inst-a"), "{}", b.log());
    assert_eq!(store.task_calls(task.id).await.unwrap().len(), 1);

    // kill -9 A mid-call (its lease runs at least until `leased`); the phones drop the dead call
    let leased = store.task(task.id).await.unwrap().lease_until.unwrap();
    a.kill9();
    let killed = Instant::now();
    for p in &agents {
        let _ = p.hangup();
    }
    let second = wait_for(Duration::from_secs(30), "B to dial the task again", || async {
        let ids = store.task_calls(task.id).await.unwrap();
        let id = *ids.get(1)?;
        Some(store.get_call(id).await.unwrap())
    })
    .await;
    let waited = killed.elapsed();
    assert!(
        second.started_at >= leased,
        "B took the task {waited:?} after the kill, at {}, before A's lease ran out at {leased}",
        second.started_at
    );
    let first = store.get_call(first.id).await.unwrap();
    assert_eq!(first.outcome.as_deref(), Some("interrupted"), "{}", b.log());
    assert!(first.reason.as_deref().unwrap_or_default().contains("inst-a"), "{:?}", first.reason);
    let task = wait_for(Duration::from_secs(30), "B's call to complete", || async {
        let t = store.task(task.id).await.unwrap();
        t.awaiting_record_since.is_some().then_some(t)
    })
    .await;
    assert_eq!(
        (task.attempts, task.last_call_id),
        (1, Some(second.id)),
        "an interrupted call does not count"
    );
    assert_eq!(store.get_call(second.id).await.unwrap().outcome.as_deref(), Some("completed"));

    // A restarts: its half-written recording is sealed as interrupted
    assert_eq!(store.recording_for_call(first.id).await.unwrap().unwrap().state.as_str(), "recording");
    let mut a = Huifang::start_with_config(&config_a);
    assert!(a.wait_log("recovered from an unclean stop", Duration::from_secs(10)), "{}", a.log());
    let rec = store.recording_for_call(first.id).await.unwrap().unwrap();
    assert_eq!(rec.state.as_str(), "interrupted");
    assert_eq!(store.recording_for_call(second.id).await.unwrap().unwrap().state.as_str(), "sealed");
    for (h, name) in [(&mut a, "a"), (&mut b, "b")] {
        let (st, _) = h.terminate(Duration::from_secs(20));
        assert!(st.success(), "instance {name}:\n{}", h.log());
    }
    store.close().await;
    drop(agents);
    let _ = sipp.kill();
}
