//! The operations behind the API: holds, tasks, reports, records, agent
//! state and status, a call's trace — and the CLI giving the same answers.

use huifang::domain::kinds::TaskKind;
use huifang::domain::records::{Form, checklist};
use huifang::ops::access::Role;
use serde_json::json;

use crate::fixture::Site;

#[tokio::test]
async fn a_legal_hold_set_over_the_api_is_released_only_by_a_second_person() {
    let site = Site::new().await;
    let c1 = site.token(Role::Compliance).await;
    let rec = site.recording;
    let (st, v) =
        site.post_json(&format!("/api/v1/recordings/{rec}/hold"), &c1, json!({"reason": "case 42"})).await;
    assert_eq!((st, v["result"].as_str()), (200, Some("set")), "{v}");
    let (st, _) =
        site.post_json(&format!("/api/v1/recordings/{rec}/hold"), &c1, json!({"reason": "again"})).await;
    assert_eq!(st, 409, "already held");
    let (st, v) = site
        .post_json(&format!("/api/v1/recordings/{rec}/hold/release"), &c1, json!({"reason": "done"}))
        .await;
    assert_eq!((st, v["result"].as_str()), (200, Some("release_requested")));
    let (st, v) = site
        .post_json(&format!("/api/v1/recordings/{rec}/hold/release"), &c1, json!({"reason": "me again"}))
        .await;
    assert_eq!(st, 403, "the same person cannot confirm: {v}");
    assert!(v["detail"].as_str().unwrap().contains("two-person"), "{v}");
    assert_eq!(v["code"], "two-person", "{v}");
    // a second compliance officer confirms
    let s = huifang::ops::users::AuthSettings::from_config(
        &huifang::config::Config::load(&site.config_path).unwrap().http,
    );
    let u = huifang::ops::users::NewUser {
        login: "compliance2".into(),
        roles: vec![Role::Compliance],
        staff_id: None,
        branches: vec![],
    };
    huifang::ops::users::add_user(&site.db.store, "test", u, crate::fixture::PASSWORD.into(), &s)
        .await
        .unwrap();
    let c2 = site.token_of("compliance2", vec![Role::Compliance]).await;
    let (st, v) = site
        .post_json(&format!("/api/v1/recordings/{rec}/hold/release"), &c2, json!({"reason": "agreed"}))
        .await;
    assert_eq!((st, v["result"].as_str()), (200, Some("released")), "{v}");
    let (_, holds) = site.get_json(&format!("/api/v1/recordings/{rec}/holds"), &c1).await;
    assert_eq!(holds["items"][0]["state"], "released");
    assert_eq!(holds["items"][0]["released_by"], "compliance2");
    let actors: Vec<(String, String)> = site
        .db
        .store
        .audit_rows(0)
        .await
        .unwrap()
        .into_iter()
        .filter(|r| r.action.starts_with("hold."))
        .map(|r| (r.action, r.actor))
        .collect();
    assert_eq!(
        actors,
        [
            ("hold.set".to_string(), "compliance1".to_string()),
            ("hold.release_requested".into(), "compliance1".into()),
            ("hold.released".into(), "compliance2".into())
        ]
    );
}

#[tokio::test]
async fn tasks_and_reports_through_the_api_are_the_clis() {
    let site = Site::with_demo_data().await;
    let c = site.token(Role::Compliance).await;
    // every task, in pages of 3, in the CLI's order
    let cli: serde_json::Value = serde_json::from_str(&site.cli(&["tasks", "--format", "json"])).unwrap();
    let cli_ids: Vec<&str> = cli.as_array().unwrap().iter().map(|t| t["id"].as_str().unwrap()).collect();
    assert!(cli_ids.len() > 3, "the demo plans several tasks");
    let mut api_ids = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let q = match &cursor {
            Some(c) => format!("/api/v1/tasks?limit=3&cursor={c}"),
            None => "/api/v1/tasks?limit=3".into(),
        };
        let (st, v) = site.get_json(&q, &c).await;
        assert_eq!(st, 200, "{v}");
        api_ids.extend(v["items"].as_array().unwrap().iter().map(|t| t["id"].as_str().unwrap().to_string()));
        match v["next"].as_str() {
            Some(n) => cursor = Some(n.into()),
            None => break,
        }
    }
    assert_eq!(api_ids, cli_ids);
    // the coverage report: the same JSON
    let cli: serde_json::Value = serde_json::from_str(&site.cli(&[
        "report",
        "coverage",
        "--month",
        "2026-11",
        "--as-of",
        "2026-11-27",
        "--format",
        "json",
    ]))
    .unwrap();
    let (st, v) = site.get_json("/api/v1/reports/coverage?month=2026-11&as_of=2026-11-27", &c).await;
    assert_eq!(st, 200, "{v}");
    assert_eq!(v["items"], cli);
    // a bad month is named
    let (st, v) = site.get_json("/api/v1/reports/coverage?month=2026-13", &c).await;
    assert_eq!((st, v["field"].as_str()), (422, Some("month")));
    // the supervisor of 上海陆家嘴营业部 sees that branch's tasks only; an agent those assigned to them
    let m = site.token_of("m01", vec![Role::Supervisor]).await;
    let (_, v) = site.get_json("/api/v1/tasks?limit=500", &m).await;
    let branches: Vec<&str> =
        v["items"].as_array().unwrap().iter().map(|t| t["branch"].as_str().unwrap()).collect();
    assert!(!branches.is_empty() && branches.iter().all(|b| *b == "上海陆家嘴营业部"), "{branches:?}");
    assert!(branches.len() < cli_ids.len(), "other branches' tasks are not shown");
    let a = site.token_of("a01", vec![Role::Agent]).await;
    let (_, v) = site.get_json("/api/v1/tasks", &a).await;
    assert_eq!(v["items"].as_array().unwrap().len(), 0, "nothing assigned to A01 yet");
}

#[tokio::test]
async fn an_agent_submits_their_record_and_a_supervisor_reviews_it() {
    let site = Site::with_demo_data().await;
    let c = site.token(Role::Compliance).await;
    let (_, v) = site.get_json("/api/v1/tasks?status=open&limit=500", &c).await;
    // a task of A01's branch whose client A01 did not introduce (E7 is checked anyway)
    let task = v["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["branch"] == "上海陆家嘴营业部" && t["kind"] == "new_account")
        .expect("an open new-account task")
        .clone();
    let kind = TaskKind::from_name(task["kind"].as_str().unwrap()).unwrap();
    let answers: serde_json::Map<String, serde_json::Value> = checklist(Form::for_kind(kind))
        .iter()
        .filter(|q| !q.free_text)
        .map(|q| (q.id.to_string(), json!("yes")))
        .collect();
    let a = site.token_of("a01", vec![Role::Agent]).await;
    let body =
        json!({"task": task["key"], "outcome": "reached", "answers": answers, "called_on": "2026-11-27"});
    let (st, v) = site.post_json("/api/v1/records", &a, body.clone()).await;
    assert_eq!((st, &v["replayed"]), (201, &json!(false)), "{v}");
    let record = v["record_id"].as_str().unwrap().to_string();
    // the same submit again (a retry, a double click): the same record, nothing new
    let (st, v) = site.post_json("/api/v1/records", &a, body.clone()).await;
    assert_eq!(
        (st, v["record_id"].as_str(), &v["replayed"]),
        (201, Some(record.as_str()), &json!(true)),
        "{v}"
    );
    // another record for the done task is refused
    let mut other = body.clone();
    other["answers"]["satisfied"] = json!("no");
    let (st, _) = site.post_json("/api/v1/records", &a, other).await;
    assert_eq!(st, 409);
    // a wrong answer is named
    let (st, v) =
        site.post_json("/api/v1/records", &a, json!({"task": task["key"], "outcome": "sideways"})).await;
    assert_eq!((st, v["field"].as_str()), (422, Some("outcome")));
    // a checklist item left out is named by its id
    let open = site.get_json("/api/v1/tasks?status=open&limit=500", &c).await.1["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["branch"] == "上海陆家嘴营业部" && t["kind"] == "new_account" && t["key"] != task["key"])
        .cloned()
        .expect("a second open new-account task");
    let mut partial = answers.clone();
    partial.remove("own_account");
    let (st, v) = site
        .post_json(
            "/api/v1/records",
            &a,
            json!({"task_id": open["id"], "answers": partial, "called_on": "2026-11-27"}),
        )
        .await;
    assert_eq!((st, v["field"].as_str()), (422, Some("answers.own_account")), "{v}");
    // A02 may not read it; A01 and the branch's supervisor may
    let a2 = site.token_of("a02", vec![Role::Agent]).await;
    assert_eq!(site.get_json(&format!("/api/v1/records/{record}"), &a2).await.0, 403);
    assert_eq!(site.get_json(&format!("/api/v1/records/{record}"), &a).await.0, 200);
    let m = site.token_of("m01", vec![Role::Supervisor]).await;
    let (st, v) =
        site.post_json(&format!("/api/v1/records/{record}/review"), &m, json!({"verdict": "approved"})).await;
    assert_eq!(st, 200, "{v}");
    assert_eq!(v["record"]["verdict"], "approved");
    assert_eq!(v["record"]["reviewer_id"], "M01");
    // the lists: A01 sees it, A02 not; the supervisor's unreviewed list is empty again
    let q = "/api/v1/records?from=2026-11-01&to=2026-11-30";
    let ids = |v: &serde_json::Value| -> Vec<String> {
        v["items"].as_array().unwrap().iter().map(|r| r["id"].as_str().unwrap().to_string()).collect()
    };
    assert_eq!(ids(&site.get_json(q, &a).await.1), vec![record.clone()]);
    assert!(ids(&site.get_json(q, &a2).await.1).is_empty());
    assert_eq!(ids(&site.get_json(q, &m).await.1), vec![record.clone()]);
    let (_, v) = site.get_json(&format!("{q}&unreviewed=true"), &m).await;
    assert!(ids(&v).is_empty(), "reviewed");
    let (st, v) = site.get_json("/api/v1/records?from=2026-11-30&to=2026-11-01", &m).await;
    assert_eq!((st, v["field"].as_str()), (422, Some("to")));
}

#[tokio::test]
async fn agents_log_in_from_the_api_and_supervisors_see_their_branch() {
    let site = Site::with_demo_data().await;
    let a = site.token_of("a01", vec![Role::Agent]).await;
    let (st, v) = site.post_json("/api/v1/agents/A01/state", &a, json!({"action": "login"})).await;
    assert_eq!(st, 200, "{v}");
    assert_eq!(v["presence"], "available");
    let (st, v) =
        site.post_json("/api/v1/agents/A01/state", &a, json!({"action": "pause", "reason": "午餐"})).await;
    assert_eq!((st, v["session"]["reason"].as_str()), (200, Some("午餐")));
    // another agent can neither see nor change A01
    let a2 = site.token_of("a02", vec![Role::Agent]).await;
    assert_eq!(site.get_json("/api/v1/agents/A01", &a2).await.0, 403);
    assert_eq!(site.post_json("/api/v1/agents/A01/state", &a2, json!({"action": "resume"})).await.0, 403);
    // A02 logs in too; M01's status shows A01 (their branch), not A02
    assert_eq!(site.post_json("/api/v1/agents/A02/state", &a2, json!({"action": "login"})).await.0, 200);
    let m = site.token_of("m01", vec![Role::Supervisor]).await;
    let (st, v) = site.get_json("/api/v1/status", &m).await;
    assert_eq!(st, 200);
    let agents: Vec<(&str, &str)> = v["agents"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| (a["staff_id"].as_str().unwrap(), a["presence"].as_str().unwrap()))
        .collect();
    assert_eq!(agents, [("A01", "paused")]);
    // the same trace as `huifang agent`: the CLI's status sees both
    let cli: serde_json::Value = serde_json::from_str(&site.cli(&["status", "--format", "json"])).unwrap();
    assert_eq!(cli["agents"].as_array().unwrap().len(), 2);
}

#[tokio::test]
async fn a_calls_trace_names_no_phone_number() {
    let site = Site::new().await;
    let c = site.token(Role::Compliance).await;
    let (st, v) = site.get_json(&format!("/api/v1/calls/{}", site.recording), &c).await;
    assert_eq!(st, 200, "{v}");
    assert_eq!(v["outcome"], "completed");
    assert_eq!(v["agent_id"], "S1");
    assert_eq!(v["recording"]["state"], "sealed");
    let text = v.to_string();
    assert!(!text.contains("13800000000") && !text.contains("sip:"), "{text}");
    // verify over the API: the recording is sealed but not archived yet
    let (st, v) = site.get_json("/api/v1/verify", &c).await;
    assert_eq!(st, 200);
    let kinds: Vec<&str> =
        v["findings"].as_array().unwrap().iter().map(|f| f["kind"].as_str().unwrap()).collect();
    assert_eq!(kinds, ["not-archived"]);
}

#[tokio::test]
async fn an_agent_moves_their_own_state_with_the_same_trace_as_the_cli() {
    let site = Site::new().await;
    let a = site.token(Role::Agent).await;
    let mut seen = Vec::new();
    for (want, reason) in [
        ("available", None),
        ("paused", Some("休息")),
        ("available", None),
        ("logged_out", None),
        ("logged_out", None),
    ] {
        let (st, v) =
            site.post_json("/api/v1/agent/state", &a, json!({"state": want, "reason": reason})).await;
        assert_eq!((st, v["session"]["state"].as_str()), (200, Some(want)), "{v}");
        seen.push(v["session"]["state"].as_str().unwrap().to_string());
    }
    let (st, v) = site.post_json("/api/v1/agent/state", &a, json!({"state": "sideways"})).await;
    assert_eq!((st, v["field"].as_str()), (422, Some("state")));
    // login, pause (with its reason), resume, logout: what `huifang agent` writes; the last ask changed nothing
    let trace = site.db.store.agent_events("S1").await.unwrap();
    let steps: Vec<(&str, Option<&str>, &str)> =
        trace.iter().map(|e| (e.to_state.as_str(), e.reason.as_deref(), e.by.as_str())).collect();
    assert_eq!(
        steps,
        [
            ("available", None, "S1"),
            ("paused", Some("休息"), "S1"),
            ("available", None, "S1"),
            ("logged_out", None, "S1")
        ]
    );
    // the page's feed heard each change
    let events = site.db.store.feed_after("S1", 0, 100).await.unwrap();
    assert_eq!(events.iter().filter(|e| e.kind == "state").count(), 4);
}

#[tokio::test]
async fn a_report_comes_as_a_table_a_csv_download_and_a_chart() {
    let site = Site::with_demo_data().await;
    let c = site.token(Role::Compliance).await;
    let (st, v) = site.get_json("/api/v1/reports/coverage?month=2026-11&as_of=2026-11-27", &c).await;
    assert_eq!(st, 200, "{v}");
    let rows = v["rows"].as_array().unwrap().len();
    assert!(rows > 0, "{v}");
    let csv = site
        .http
        .get(site.url("/api/v1/reports/coverage?month=2026-11&as_of=2026-11-27&format=csv"))
        .bearer_auth(&c)
        .send()
        .await
        .unwrap();
    assert_eq!(csv.headers()["content-type"], "text/csv; charset=utf-8");
    assert!(csv.headers()["content-disposition"].to_str().unwrap().contains("coverage.csv"));
    let text = csv.text().await.unwrap();
    assert!(text.starts_with("KIND,BRANCH,PLANNED,DONE"), "{text}");
    assert_eq!(text.lines().count(), rows + 1, "{text}");
    let svg = site
        .http
        .get(site.url("/api/v1/reports/coverage/chart.svg?month=2026-11&as_of=2026-11-27"))
        .bearer_auth(&c)
        .send()
        .await
        .unwrap();
    assert_eq!(svg.headers()["content-type"], "image/svg+xml; charset=utf-8");
    let svg = svg.text().await.unwrap();
    assert!(svg.starts_with("<svg") && svg.contains("回访覆盖率"), "{svg}");
    assert_eq!(svg.matches("fill=\"#b3261e\"").count(), rows, "a bar per row");
    let (st, v) = site.get_json("/api/v1/reports/coverage?format=pdf", &c).await;
    assert_eq!((st, v["field"].as_str()), (422, Some("format")));
}
