//! The supervisor's quality work through the API (issue 14): spot-checks
//! drawn once and reproducibly, never by the record's author; follow-ups
//! with their deadlines; the calls search by branch, kind and outcome,
//! paged by cursor; a recording's waveform.

use std::collections::BTreeSet;

use huifang::domain::kinds::TaskKind;
use huifang::domain::records::{Form, checklist};
use huifang::ops::access::Role;
use huifang::ops::users::{self, AuthSettings, NewUser};
use serde_json::{Value, json};

use crate::common::site::record_call_by;
use crate::fixture::{PASSWORD, Site};

const BRANCH: &str = "上海陆家嘴营业部";

fn yes_to_all(kind: &str) -> serde_json::Map<String, Value> {
    let kind = TaskKind::from_name(kind).unwrap();
    checklist(Form::for_kind(kind))
        .iter()
        .filter(|q| !q.free_text)
        .map(|q| (q.id.to_string(), json!("yes")))
        .collect()
}

/// Agent A01 submits a record (reached, 2026-11-27) for each open task of
/// their branch they may make (E7), the first with `problems` when given;
/// returns their ids.
async fn records_by_a01(site: &Site, problems: Option<&str>) -> Vec<String> {
    let c = site.token(Role::Compliance).await;
    let a = site.token_of("a01", vec![Role::Agent]).await;
    let (_, v) = site.get_json("/api/v1/tasks?status=open&limit=500", &c).await;
    let tasks: Vec<Value> =
        v["items"].as_array().unwrap().iter().filter(|t| t["branch"] == BRANCH).cloned().collect();
    let mut ids = Vec::new();
    for t in &tasks {
        let kind = t["kind"].as_str().unwrap();
        let mut body = json!({"task": t["key"], "outcome": "reached", "answers": yes_to_all(kind),
            "called_on": "2026-11-27"});
        if ids.is_empty()
            && let Some(p) = problems
        {
            body["problems"] = json!(p);
        }
        let (st, v) = site.post_json("/api/v1/records", &a, body).await;
        if st == 403 {
            continue; // A01 introduced this client (E7)
        }
        assert_eq!(st, 201, "{v}");
        ids.push(v["record_id"].as_str().unwrap().to_string());
    }
    assert!(ids.len() >= 5, "A01 made {} records", ids.len());
    ids
}

/// A supervisor of the demo branch who is also staff A01 (the records'
/// author).
async fn lead_a01(site: &Site) -> String {
    let cfg = huifang::config::Config::load(&site.config_path).unwrap();
    let u = NewUser {
        login: "lead".into(),
        roles: vec![Role::Supervisor],
        staff_id: Some("A01".into()),
        branches: vec![BRANCH.into()],
    };
    users::add_user(&site.db.store, "test", u, PASSWORD.into(), &AuthSettings::from_config(&cfg.http))
        .await
        .unwrap();
    site.token_of("lead", vec![Role::Supervisor]).await
}

#[tokio::test]
async fn a_months_spot_checks_are_drawn_once_reproducibly_and_never_by_the_author() {
    let site = Site::with_demo_data().await;
    let records = records_by_a01(&site, None).await;
    let m = site.token_of("m01", vec![Role::Supervisor]).await;
    let (st, q) = site.get_json("/api/v1/spot-checks?month=2026-11", &m).await;
    assert_eq!(st, 200, "{q}");
    let n = records.len() as u64;
    assert_eq!((q["population"].as_u64(), q["draw"]["percent"].as_u64()), (Some(n), Some(10)), "{q}");
    let seed = q["draw"]["seed"].as_str().unwrap().to_string();
    assert_eq!(q["draw"]["drawn_by"], "m01");
    // the sample is what the seed selects, at least ⌈10% of n⌉, and anyone can re-derive it
    let shown: BTreeSet<String> = q["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["record"]["id"].as_str().unwrap().to_string())
        .collect();
    let rederived = huifang::domain::sample::select(
        &huifang::domain::sample::parse_seed(&seed).unwrap(),
        records.iter().map(String::as_str),
        0.10,
    );
    assert_eq!(shown, rederived);
    assert!(shown.len() >= records.len().div_ceil(10), "{shown:?}");
    // drawn once: the same seed the next time, whoever looks
    let c = site.token(Role::Compliance).await;
    let (_, again) = site.get_json("/api/v1/spot-checks?month=2026-11", &c).await;
    assert_eq!(again["draw"]["seed"], seed.as_str());
    // agents do not see it; a bad month is named
    let a = site.token_of("a01", vec![Role::Agent]).await;
    assert_eq!(site.get_json("/api/v1/spot-checks?month=2026-11", &a).await.0, 403);
    let (st, v) = site.get_json("/api/v1/spot-checks?month=2026-13", &m).await;
    assert_eq!((st, v["field"].as_str()), (422, Some("month")));
    // the author, a supervisor too, may not check their own record: the rule is named
    let first = shown.iter().next().unwrap().clone();
    let lead = lead_a01(&site).await;
    let (st, v) =
        site.post_json(&format!("/api/v1/spot-checks/{first}"), &lead, json!({"verdict": "pass"})).await;
    assert_eq!((st, v["code"].as_str()), (403, Some("own-record")), "{v}");
    // the branch's supervisor checks it, once
    let body = json!({"verdict": "fail", "note": "did not read the risk warning"});
    let (st, v) = site.post_json(&format!("/api/v1/spot-checks/{first}"), &m, body.clone()).await;
    assert_eq!(
        (st, v["check"]["checker_id"].as_str(), v["check"]["verdict"].as_str()),
        (200, Some("M01"), Some("fail"))
    );
    let (st, _) = site.post_json(&format!("/api/v1/spot-checks/{first}"), &m, body).await;
    assert_eq!(st, 409, "checked once");
    // a record outside the sample is not checked
    let outside = records.iter().find(|r| !shown.contains(*r)).unwrap();
    let (st, v) =
        site.post_json(&format!("/api/v1/spot-checks/{outside}"), &m, json!({"verdict": "pass"})).await;
    assert_eq!(st, 409, "{v}");
    let (st, v) =
        site.post_json(&format!("/api/v1/spot-checks/{first}"), &m, json!({"verdict": "maybe"})).await;
    assert_eq!((st, v["field"].as_str()), (422, Some("verdict")));
    // the queue shows the check
    let (_, q) = site.get_json("/api/v1/spot-checks?month=2026-11", &m).await;
    let item = q["items"].as_array().unwrap().iter().find(|i| i["record"]["id"] == first.as_str()).unwrap();
    assert_eq!(item["check"]["note"], "did not read the risk warning");
    // the schema keeps it as it was
    assert!(site.db.raw("UPDATE spot_checks SET verdict = 'pass'").await.is_err());
}

#[tokio::test]
async fn follow_ups_show_their_deadlines_and_move_forward_once() {
    let site = Site::with_demo_data().await;
    records_by_a01(&site, Some("the client was not told of the fees")).await;
    let m = site.token_of("m01", vec![Role::Supervisor]).await;
    let (st, v) = site.get_json("/api/v1/follow-ups", &m).await;
    assert_eq!(st, 200, "{v}");
    let items = v["items"].as_array().unwrap();
    assert_eq!(items.len(), 1, "{v}");
    let f = &items[0];
    // opened 2026-11-27 (a Friday): the department answers within 2 business days
    assert_eq!((f["state"].as_str(), f["answer_due_on"].as_str()), (Some("open"), Some("2026-12-01")), "{f}");
    assert_eq!(f["due_on"], f["answer_due_on"]);
    assert_eq!(f["overdue"], true, "2026-12-01 has passed");
    let id = f["id"].as_str().unwrap();
    let (st, v) = site
        .post_json(&format!("/api/v1/follow-ups/{id}"), &m, json!({"step": "answered", "on": "2026-11-30"}))
        .await;
    assert_eq!((st, v["follow_up"]["state"].as_str()), (200, Some("answered")), "{v}");
    let (st, _) = site.post_json(&format!("/api/v1/follow-ups/{id}"), &m, json!({"step": "answered"})).await;
    assert_eq!(st, 409, "answered once");
    let (st, v) = site.post_json(&format!("/api/v1/follow-ups/{id}"), &m, json!({"step": "sideways"})).await;
    assert_eq!((st, v["field"].as_str()), (422, Some("step")));
    // now due by the final answer's deadline
    let (_, v) = site.get_json("/api/v1/follow-ups", &m).await;
    assert_eq!(v["items"][0]["due_on"], v["items"][0]["resolve_due_on"]);
    // agents and other branches' supervisors see none of it
    let a = site.token_of("a01", vec![Role::Agent]).await;
    assert_eq!(site.get_json("/api/v1/follow-ups", &a).await.0, 403);
    let other = site.token(Role::Supervisor).await; // supervises B1 only
    assert_eq!(site.get_json("/api/v1/follow-ups", &other).await.1["items"], json!([]));
    let (st, _) =
        site.post_json(&format!("/api/v1/follow-ups/{id}"), &other, json!({"step": "resolved"})).await;
    assert_eq!(st, 403);
    let (st, v) = site.post_json(&format!("/api/v1/follow-ups/{id}"), &m, json!({"step": "resolved"})).await;
    assert_eq!((st, v["follow_up"]["state"].as_str()), (200, Some("resolved")), "{v}");
    assert_eq!(
        site.get_json("/api/v1/follow-ups", &m).await.1["items"],
        json!([]),
        "resolved ones are not open"
    );
    assert_eq!(
        site.get_json("/api/v1/follow-ups?open=false", &m).await.1["items"].as_array().unwrap().len(),
        1
    );
}

#[tokio::test]
async fn the_calls_search_filters_by_branch_kind_and_outcome_and_pages_by_cursor() {
    let site = Site::new().await;
    // besides the fixture's call (S1 → C1, branch B1): three more to C1, one to C2 (branch B2)
    for _ in 0..3 {
        record_call_by(&site.db.store, "C1", Some("S1"), None).await;
    }
    record_call_by(&site.db.store, "C2", Some("S2"), None).await;
    let m = site.token(Role::Supervisor).await; // B1
    let c = site.token(Role::Compliance).await;
    let count = |v: &Value| v["items"].as_array().unwrap().len();
    assert_eq!(count(&site.get_json("/api/v1/calls", &c).await.1), 5);
    let (st, v) = site.get_json("/api/v1/calls", &m).await;
    assert_eq!((st, count(&v)), (200, 4), "B1's clients only: {v}");
    assert!(v["items"].as_array().unwrap().iter().all(|c| c["client_id"] == "C1"));
    // newest first, two at a time: every call once
    let (_, p1) = site.get_json("/api/v1/calls?limit=2", &m).await;
    let next = p1["next"].as_str().expect("a next page").to_string();
    let (_, p2) = site.get_json(&format!("/api/v1/calls?limit=2&cursor={next}"), &m).await;
    assert!(p2["next"].is_null(), "{p2}");
    let times: Vec<&str> = p1["items"]
        .as_array()
        .unwrap()
        .iter()
        .chain(p2["items"].as_array().unwrap())
        .map(|c| c["started_at"].as_str().unwrap())
        .collect();
    let mut sorted = times.clone();
    sorted.sort_by(|a, b| b.cmp(a));
    assert_eq!((times.len(), &times), (4, &sorted));
    // naming another branch's client or agent finds nothing of theirs
    assert_eq!(count(&site.get_json("/api/v1/calls?client_id=C2", &m).await.1), 0);
    assert_eq!(site.get_json("/api/v1/calls?agent_id=S2", &m).await.0, 403);
    // the filters: every one of these calls completed, none was of a kind
    assert_eq!(count(&site.get_json("/api/v1/calls?outcome=completed", &c).await.1), 5);
    assert_eq!(count(&site.get_json("/api/v1/calls?outcome=no-answer", &c).await.1), 0);
    assert_eq!(count(&site.get_json("/api/v1/calls?kind=complaint", &c).await.1), 0);
    let (st, v) = site.get_json("/api/v1/calls?outcome=sideways", &c).await;
    assert_eq!((st, v["field"].as_str()), (422, Some("outcome")));
    let (st, v) = site.get_json("/api/v1/calls?kind=gossip", &c).await;
    assert_eq!((st, v["field"].as_str()), (422, Some("kind")));
    let (st, v) = site.get_json("/api/v1/calls?cursor=forged", &c).await;
    assert_eq!((st, v["field"].as_str()), (422, Some("cursor")));
    // an agent: their own calls whatever they name
    let a = site.token(Role::Agent).await; // S1
    assert_eq!(count(&site.get_json("/api/v1/calls", &a).await.1), 4);
    assert_eq!(site.get_json("/api/v1/calls?agent_id=S2", &a).await.0, 403);
}

#[tokio::test]
async fn a_recordings_waveform_has_both_channels_and_is_refused_as_a_play_is() {
    let mut site = Site::new().await;
    let m = site.token(Role::Supervisor).await;
    let path = format!("/api/v1/recordings/{}/waveform?points=100", site.recording);
    let (st, w) = site.get_json(&path, &m).await;
    assert_eq!(st, 200, "{w}");
    let (agent, client) = (w["agent"].as_array().unwrap(), w["client"].as_array().unwrap());
    assert_eq!((agent.len(), client.len()), (100, 100), "{w}");
    assert!(agent.iter().chain(client).all(|p| p.as_u64().unwrap() <= 1000));
    assert!(agent.iter().any(|p| p.as_u64().unwrap() > 0), "not silence");
    // (100,000 − 44) bytes of 4-byte frames at 8 kHz
    assert_eq!(w["duration_ms"], 24_989 * 1000 / 8000);
    let (st, v) =
        site.get_json(&format!("/api/v1/recordings/{}/waveform?points=0", site.recording), &m).await;
    assert_eq!((st, v["field"].as_str()), (422, Some("points")));
    // agents play nothing by default: nor see the waveform, and the refusal is audited
    let a = site.token(Role::Agent).await;
    assert_eq!(site.get_json(&path, &a).await.0, 403);
    let denied = site.audit("recording.access_denied").await;
    assert!(denied.iter().any(|e| e.detail["use"] == "waveform"), "{denied:?}");
    // a waveform is not a play
    site.stop().await;
    assert!(site.audit("recording.played").await.is_empty());
}

#[tokio::test]
async fn who_may_reveal_a_full_number_is_configured_per_role() {
    // the default: compliance reveals, the branch's supervisor sees it masked
    let site = Site::new().await;
    let (m, c) = (site.token(Role::Supervisor).await, site.token(Role::Compliance).await);
    let reveal = |t: &str| {
        let t = t.to_string();
        let site = &site;
        async move { site.post_json("/api/v1/clients/C1/reveal", &t, json!({"field": "phone"})).await }
    };
    assert_eq!(reveal(&m).await.0, 403);
    assert_eq!(reveal(&c).await.1["value"], "13800000001");
    let (_, d) = site.get_json("/api/v1/clients/C1", &m).await;
    assert_eq!(d["client"]["phone_masked"], "138****0001", "{d}");
    // configured for supervisors alone: the supervisor of C1's branch reveals (audited), compliance not
    let site = Site::with_http("reveal_roles = [\"supervisor\"]\n").await;
    let (m, c) = (site.token(Role::Supervisor).await, site.token(Role::Compliance).await);
    let (st, v) = site.post_json("/api/v1/clients/C1/reveal", &m, json!({"field": "phone"})).await;
    assert_eq!((st, v["value"].as_str()), (200, Some("13800000001")), "{v}");
    let audited = site.audit("client.revealed").await;
    assert_eq!(audited.len(), 1);
    assert_eq!(audited[0].detail["role"], "supervisor");
    assert_eq!(site.post_json("/api/v1/clients/C1/reveal", &c, json!({"field": "phone"})).await.0, 403);
}

#[tokio::test]
async fn a_clients_dossier_shows_the_follow_up_and_the_spot_check_in_time_order() {
    let site = Site::with_demo_data().await;
    let records = records_by_a01(&site, Some("the fees were not explained")).await;
    let m = site.token_of("m01", vec![Role::Supervisor]).await;
    let (_, q) = site.get_json("/api/v1/spot-checks?month=2026-11", &m).await;
    let item = &q["items"][0];
    let record = item["record"]["id"].as_str().unwrap();
    let client = item["record"]["client_id"].as_str().unwrap().to_string();
    let body = json!({"verdict": "pass"});
    assert_eq!(site.post_json(&format!("/api/v1/spot-checks/{record}"), &m, body).await.0, 200);
    let c = site.token(Role::Compliance).await;
    let (st, d) = site.get_json(&format!("/api/v1/clients/{client}"), &c).await;
    assert_eq!(st, 200, "{d}");
    let whats: Vec<&str> =
        d["timeline"].as_array().unwrap().iter().map(|e| e["what"].as_str().unwrap()).collect();
    assert!(whats.contains(&"record.spot_checked"), "{whats:?}");
    // the follow-up is on the first record's client
    let first = &records[0];
    let (_, r) = site.get_json(&format!("/api/v1/records/{first}"), &c).await;
    let (_, d) =
        site.get_json(&format!("/api/v1/clients/{}", r["record"]["client_id"].as_str().unwrap()), &c).await;
    let opened =
        d["timeline"].as_array().unwrap().iter().find(|e| e["what"] == "follow_up.opened").expect("opened");
    assert_eq!(opened["answer_due_on"], "2026-12-01");
}
