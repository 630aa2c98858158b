//! The agent's event feed, `/ws/agent` (issue 13), with a WebSocket client
//! in Rust against a real `serve`, real softphones and the dialer.

use std::time::{Duration, Instant};

use huifang::domain::facts::Role as StaffRole;
use huifang::domain::kinds::TaskKind;
use huifang::domain::records::{Form, checklist};
use serde_json::json;
use tokio_tungstenite::tungstenite;

use crate::common::dialer::{T, client, staff};
use crate::fixture::{PASSWORD, Site};
use crate::floor::{Floor, close, next, until};

const SECS: Duration = Duration::from_secs(30);

fn all_yes(kind: TaskKind) -> serde_json::Map<String, serde_json::Value> {
    checklist(Form::for_kind(kind))
        .iter()
        .filter(|q| !q.free_text)
        .map(|q| (q.id.to_string(), json!("yes")))
        .collect()
}

/// Staff: agent A1, the sales member S9 who introduced client C1.
pub fn book() -> (Vec<huifang::domain::facts::Staff>, Vec<huifang::domain::facts::Client>) {
    let staff = vec![
        staff("A1", StaffRole::Service, None, Some("sip:agent1@127.0.0.1")),
        staff("S9", StaffRole::Sales, None, None),
    ];
    let mut c1 = client("C1", "13900000001", Some("S9"));
    c1.id_number = Some("110101199003071234".into());
    c1.risk_level = Some("C3".into());
    (staff, vec![c1])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_offer_pops_up_before_the_phone_rings_and_the_record_closes_the_call() {
    let (staff, clients) = book();
    let task = T { key: "complaint:E1", kind: TaskKind::Complaint, client: "C1", due: "2026-11-27" };
    let mut floor = Floor::start(&staff, &clients, &[task]).await;
    let agent = floor.phone("agent1", Duration::from_millis(300), None).await;
    floor.phone("13900000001", Duration::from_millis(200), Some(Duration::from_millis(1500))).await;
    // when the agent's phone receives the INVITE
    let mut status = floor.phones[agent].status();
    let invited = tokio::spawn(async move {
        loop {
            if status.borrow().calls_offered > 0 {
                return Instant::now();
            }
            status.changed().await.unwrap();
        }
    });

    let cookie = floor.cookie().await;
    let mut ws = floor.ws(&cookie, None).await;
    let snap = next(&mut ws, SECS).await.unwrap();
    assert_eq!((snap["v"].as_i64(), snap["type"].as_str()), (Some(1), Some("snapshot")), "{snap}");
    assert_eq!(snap["state"], "logged_out");
    assert_eq!(snap["softphone_registered"], true, "{snap}");

    let (st, v) = floor.post(&cookie, "/api/v1/agent/state", json!({"state": "available"})).await;
    assert_eq!(st, 200, "{v}");
    let (state, _) = until(&mut ws, "state", SECS).await;
    assert_eq!(state["state"], "available");

    let (offered, _) = until(&mut ws, "offered", SECS).await;
    let offered_at = Instant::now();
    let invited_at = invited.await.unwrap();
    assert!(offered_at < invited_at, "the offer came {:?} after the INVITE", offered_at - invited_at);
    let text = offered.to_string();
    assert!(!text.contains("S9"), "the introducer is never shown: {text}");
    assert!(!text.contains("13900000001") && !text.contains("199003071234"), "{text}");
    assert_eq!(offered["client"]["client_id"], "C1");
    assert_eq!(offered["client"]["phone_masked"], "139****0001");
    assert_eq!(offered["client"]["id_number_masked"], "110101********1234");
    assert_eq!(offered["client"]["risk_level"], "C3");
    assert_eq!(offered["kind"]["id"], "complaint");
    assert_eq!(offered["kind"]["zh"], "投诉回访");
    assert_eq!(offered["overdue"], true, "due 2026-11-27, called on 2026-11-30");
    assert_eq!(offered["attempts"], json!([]));
    assert_eq!(offered["form"]["id"], "special");
    let ids: Vec<&str> =
        offered["checklist"].as_array().unwrap().iter().map(|q| q["id"].as_str().unwrap()).collect();
    assert!(ids.contains(&"event_confirmed") && ids.contains(&"satisfied"), "{ids:?}");
    let (task_id, call_id) = (offered["task_id"].clone(), offered["call_id"].clone());

    // the call as it goes, in order, each with the next seq
    let (ended, before) = until(&mut ws, "ended", SECS).await;
    let kinds: Vec<&str> = before.iter().map(|m| m["type"].as_str().unwrap()).collect();
    assert_eq!(kinds, ["agent_ringing", "client_ringing", "connected"], "{before:#?}");
    assert_eq!(ended["outcome"], "completed", "{ended}\n{}", floor.serve.log());
    assert_eq!(ended["call_id"], call_id);
    assert_eq!(ended["sealed"], true);
    assert_eq!(ended["recording_id"], call_id, "the recording is the call's");
    let (wrap, _) = until(&mut ws, "wrap_up", SECS).await;
    assert!(wrap["deadline"].is_string(), "{wrap}");
    let mut seqs: Vec<i64> =
        before.iter().chain([&ended, &wrap]).map(|m| m["seq"].as_i64().unwrap()).collect();
    seqs.insert(0, offered["seq"].as_i64().unwrap());
    assert!(seqs.windows(2).all(|w| w[1] == w[0] + 1), "seq increases by one: {seqs:?}");

    // the record from the page: a missing answer is named, then it is saved, once
    let mut answers = all_yes(TaskKind::Complaint);
    answers.remove("event_confirmed");
    let body = json!({"task_id": task_id, "call_id": call_id, "answers": answers});
    let (st, v) = floor.post(&cookie, "/api/v1/records", body).await;
    assert_eq!((st, v["field"].as_str()), (422, Some("answers.event_confirmed")), "{v}");
    let body = json!({"task_id": task_id, "call_id": call_id, "answers": all_yes(TaskKind::Complaint),
                      "notes": "客户确认投诉已处理"});
    let (st, v) = floor.post(&cookie, "/api/v1/records", body.clone()).await;
    assert_eq!(st, 201, "{v}");
    let record_id = v["record_id"].clone();
    let (saved, _) = until(&mut ws, "record_saved", SECS).await;
    assert_eq!((saved["record_id"].clone(), saved["task_id"].clone()), (record_id.clone(), task_id.clone()));
    let (st, again) = floor.post(&cookie, "/api/v1/records", body).await;
    assert_eq!(
        (st, again["record_id"].clone(), again["replayed"].clone()),
        (201, record_id.clone(), json!(true))
    );
    let rec = floor.db.store.record(record_id.as_str().unwrap().parse().unwrap()).await.unwrap();
    assert_eq!(rec.notes.as_deref(), Some("客户确认投诉已处理"));
    assert_eq!(rec.call_id, call_id.as_str().map(str::to_string));
    close(ws).await;

    // reconnecting after `connected`: the rest is replayed, in order
    let since = before[2]["seq"].as_i64().unwrap();
    let mut ws = floor.ws(&cookie, Some(since)).await;
    let mut replayed = Vec::new();
    while let Some(m) = next(&mut ws, Duration::from_millis(500)).await {
        replayed.push(m["type"].as_str().unwrap().to_string());
    }
    assert_eq!(replayed, ["ended", "wrap_up", "record_saved"]);
    close(ws).await;
    // without a seq: a snapshot, the record saved, no call in progress
    let mut ws = floor.ws(&cookie, None).await;
    let snap = next(&mut ws, SECS).await.unwrap();
    assert_eq!(snap["type"], "snapshot");
    assert_eq!(snap["seq"].as_i64(), Some(seqs.last().unwrap() + 1), "{snap}");
    assert!(snap["offer"].is_null(), "{snap}");
    close(ws).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_agent_who_introduced_the_client_is_never_offered_the_call() {
    let (staff, mut clients) = book();
    clients[0].introducer_id = Some("A1".into());
    let task = T { key: "complaint:E1", kind: TaskKind::Complaint, client: "C1", due: "2026-12-01" };
    let mut floor = Floor::start(&staff, &clients, &[task]).await;
    floor.phone("agent1", Duration::from_millis(300), None).await;
    let cookie = floor.cookie().await;
    let mut ws = floor.ws(&cookie, None).await;
    next(&mut ws, SECS).await.unwrap();
    let (st, _) = floor.post(&cookie, "/api/v1/agent/state", json!({"state": "available"})).await;
    assert_eq!(st, 200);
    let (state, _) = until(&mut ws, "state", SECS).await;
    assert_eq!(state["state"], "available");
    // a dozen polls of the dialer: nothing is offered
    let mut seen = Vec::new();
    while let Some(m) = next(&mut ws, Duration::from_secs(3)).await {
        seen.push(m);
    }
    assert!(seen.iter().all(|m| m["type"] != "offered"), "{seen:#?}");
    let t = floor.db.store.task_by_key("complaint:E1").await.unwrap();
    assert_eq!((t.attempts, t.assigned_agent), (0, None), "{}", floor.serve.log());
    close(ws).await;
}

#[tokio::test]
async fn the_feed_needs_a_session_and_the_sites_own_origin() {
    let site = Site::new().await;
    let url = format!("{}/ws/agent", site.base.replace("http://", "ws://"));
    let status = |e: tungstenite::Error| match e {
        tungstenite::Error::Http(r) => r.status().as_u16(),
        e => panic!("not an HTTP refusal: {e}"),
    };
    use tungstenite::client::IntoClientRequest;
    let e = tokio_tungstenite::connect_async(url.clone()).await.unwrap_err();
    assert_eq!(status(e), 401);
    let cookie = Site::cookie_of(&site.login("agent1", PASSWORD).await);
    let mut req = url.clone().into_client_request().unwrap();
    req.headers_mut().insert("cookie", cookie.parse().unwrap());
    req.headers_mut().insert("origin", "http://evil.example".parse().unwrap());
    assert_eq!(status(tokio_tungstenite::connect_async(req).await.unwrap_err()), 403);
    // a supervisor has no agent feed
    let sup = site.token(huifang::ops::access::Role::Supervisor).await;
    let mut req = url.clone().into_client_request().unwrap();
    req.headers_mut().insert("authorization", format!("Bearer {sup}").parse().unwrap());
    assert_eq!(status(tokio_tungstenite::connect_async(req).await.unwrap_err()), 403);
    // the agent's own origin (or a bearer token): connected, a snapshot first
    let mut req = url.into_client_request().unwrap();
    req.headers_mut().insert("cookie", cookie.parse().unwrap());
    req.headers_mut().insert("origin", site.base.parse().unwrap());
    let (mut ws, _) = tokio_tungstenite::connect_async(req).await.unwrap();
    let snap = crate::floor::next(&mut ws, SECS).await.unwrap();
    assert_eq!((snap["type"].as_str(), snap["agent_id"].as_str()), (Some("snapshot"), Some("S1")));
    let metrics = site.token(huifang::ops::access::Role::Monitor).await;
    let m =
        site.http.get(site.url("/metrics")).bearer_auth(&metrics).send().await.unwrap().text().await.unwrap();
    assert!(m.contains("huifang_websocket_connections{feed=\"agent\"} 1"), "{m}");
    close(ws).await;
}

#[tokio::test]
async fn an_event_written_on_one_instance_reaches_a_page_on_another_through_postgres() {
    let mut site = Site::on_postgres().await;
    let (other, _server) = site.second_instance().await;
    let cookie = Site::cookie_of(&site.login("agent1", PASSWORD).await);
    // the page is connected to the second instance
    use tungstenite::client::IntoClientRequest;
    let mut req = format!("{}/ws/agent", other.replace("http://", "ws://")).into_client_request().unwrap();
    req.headers_mut().insert("cookie", cookie.parse().unwrap());
    req.headers_mut().insert("origin", other.parse().unwrap());
    let (mut ws, _) = tokio_tungstenite::connect_async(req).await.unwrap();
    let snap = next(&mut ws, SECS).await.unwrap();
    let seq = snap["seq"].as_i64().unwrap();
    // the first instance publishes three events for S1
    for i in 0..3 {
        let ev = huifang::feed::Event::State {
            state: "paused".into(),
            reason: Some(format!("test {i}")),
            by: "S1".into(),
            since: chrono::Utc::now(),
        };
        site.hub.publish("S1", &ev).await.unwrap();
    }
    for i in 0..3 {
        let m = next(&mut ws, Duration::from_secs(5)).await.expect("the event through LISTEN/NOTIFY");
        assert_eq!(m["type"], "state");
        assert_eq!(m["reason"], format!("test {i}"));
        assert_eq!(m["seq"].as_i64(), Some(seq + 1 + i));
    }
    close(ws).await;
}

#[tokio::test]
async fn pings_keep_a_live_feed_open_and_close_a_dead_one() {
    let site = Site::with_http("ws_ping_secs = 1\n").await;
    let token = site.token(huifang::ops::access::Role::Agent).await;
    let monitor = site.token(huifang::ops::access::Role::Monitor).await;
    let open_feeds = || async {
        let m = site
            .http
            .get(site.url("/metrics"))
            .bearer_auth(&monitor)
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        let line = m.lines().find(|l| l.starts_with("huifang_websocket_connections{")).unwrap().to_string();
        line.rsplit(' ').next().unwrap().parse::<i64>().unwrap()
    };
    use tungstenite::client::IntoClientRequest;
    let connect = || async {
        let mut req =
            format!("{}/ws/agent", site.base.replace("http://", "ws://")).into_client_request().unwrap();
        req.headers_mut().insert("authorization", format!("Bearer {token}").parse().unwrap());
        let (mut ws, _) = tokio_tungstenite::connect_async(req).await.unwrap();
        assert_eq!(next(&mut ws, SECS).await.unwrap()["type"], "snapshot");
        ws
    };
    // a client that keeps reading answers the pings (tungstenite replies): it stays
    let mut live = connect().await;
    let reader = tokio::spawn(async move {
        let quiet = next(&mut live, Duration::from_secs(5)).await.is_none();
        (quiet, live)
    });
    // a client that reads nothing answers no ping: closed after two
    let mut dead = connect().await;
    tokio::time::sleep(Duration::from_millis(3500)).await;
    assert_eq!(open_feeds().await, 1, "the live one only");
    let end = tokio::time::timeout(SECS, async {
        use futures_util::StreamExt;
        loop {
            match dead.next().await {
                None | Some(Err(_)) => return "ended",
                Some(Ok(tungstenite::Message::Close(_))) => return "closed",
                Some(Ok(_)) => {}
            }
        }
    })
    .await
    .unwrap();
    assert!(["ended", "closed"].contains(&end));
    let (quiet, live) = reader.await.unwrap();
    assert!(quiet, "no message, and no close, for the live one");
    assert_eq!(open_feeds().await, 1);
    close(live).await;
}

#[tokio::test]
async fn the_supervisors_wall_shows_their_agents_within_a_second() {
    let site = Site::new().await;
    let sup = site.token(huifang::ops::access::Role::Supervisor).await;
    use tungstenite::client::IntoClientRequest;
    let mut req =
        format!("{}/ws/supervisor", site.base.replace("http://", "ws://")).into_client_request().unwrap();
    req.headers_mut().insert("authorization", format!("Bearer {sup}").parse().unwrap());
    let (mut ws, _) = tokio_tungstenite::connect_async(req).await.unwrap();
    let first = next(&mut ws, SECS).await.unwrap();
    assert_eq!((first["v"].as_i64(), first["type"].as_str()), (Some(1), Some("wall")), "{first}");
    assert!(first["status"]["agents"].as_array().unwrap().is_empty(), "{first}");
    // S1 (branch B1, supervised) logs in: on the wall within a second or two
    let agent = site.token(huifang::ops::access::Role::Agent).await;
    let (st, _) = site.post_json("/api/v1/agent/state", &agent, json!({"state": "available"})).await;
    assert_eq!(st, 200);
    let t0 = Instant::now();
    let m = next(&mut ws, Duration::from_secs(3)).await.expect("the change on the wall");
    assert!(t0.elapsed() < Duration::from_millis(2100), "{:?}", t0.elapsed());
    let agents = m["status"]["agents"].as_array().unwrap();
    assert_eq!(agents.len(), 1, "{m}");
    assert_eq!(
        (agents[0]["staff_id"].as_str(), agents[0]["presence"].as_str()),
        (Some("S1"), Some("available"))
    );
    assert!(m["seq"].as_i64() > first["seq"].as_i64());
    close(ws).await;
}
