//! Every route × every role, and no credentials at all.

use huifang::ops::access::Role;
use reqwest::Method;

use crate::common::site::record_call_by;
use crate::fixture::{ROLES, Site};

/// Expected statuses: no credentials, then agent, supervisor, compliance,
/// admin, monitor (the order of [`ROLES`]).
type Row = (&'static str, &'static str, [u16; 6]);

/// The routes a browser opens as a page.
const PAGES: &[&str] = &["/", "/agent", "/supervisor", "/compliance", "/login"];

const MATRIX: &[Row] = &[
    ("GET", "/healthz", [200, 200, 200, 200, 200, 200]),
    ("GET", "/readyz", [401, 200, 200, 200, 200, 200]),
    ("GET", "/metrics", [401, 403, 403, 403, 403, 200]),
    ("GET", "/api/v1/openapi.json", [401, 200, 200, 200, 200, 200]),
    // wrong credentials whoever asks
    ("POST", "/api/v1/session", [401, 401, 401, 401, 401, 401]),
    ("GET", "/api/v1/session", [401, 200, 200, 200, 200, 200]),
    ("DELETE", "/api/v1/session", [401, 204, 204, 204, 204, 204]),
    // the agent sees their own calls of C1; the supervisor supervises B1
    ("GET", "/api/v1/clients/{client_id}/recordings", [401, 200, 200, 200, 403, 403]),
    ("GET", "/api/v1/clients/{client_id}/calls", [401, 200, 200, 200, 403, 403]),
    // agents play nothing by default
    ("GET", "/api/v1/recordings/{id}/audio", [401, 403, 200, 200, 403, 403]),
    // the waveform: whoever may play it
    ("GET", "/api/v1/recordings/{id}/waveform", [401, 403, 200, 200, 403, 403]),
    ("GET", "/api/v1/calls/{id}", [401, 200, 200, 200, 403, 403]),
    // a client's dossier: compliance, the supervisor of the branch
    ("GET", "/api/v1/clients/{client_id}", [401, 403, 200, 200, 403, 403]),
    ("POST", "/api/v1/clients/{client_id}/reveal", [401, 403, 403, 200, 403, 403]),
    // calls: an agent their own, a supervisor their branches', compliance all
    ("GET", "/api/v1/calls", [401, 200, 200, 200, 403, 403]),
    // a call placed by hand for an unknown task: 404 for agents and supervisors
    ("POST", "/api/v1/calls", [401, 404, 404, 403, 403, 403]),
    // evidence exports: compliance only
    ("GET", "/api/v1/clients/{client_id}/export", [401, 403, 403, 200, 403, 403]),
    ("GET", "/api/v1/calls/{id}/export", [401, 403, 403, 200, 403, 403]),
    ("GET", "/api/v1/recordings/{id}/holds", [401, 403, 403, 200, 403, 403]),
    // compliance sets a hold, then asks for its release (a second person confirms: ops.rs)
    ("POST", "/api/v1/recordings/{id}/hold", [401, 403, 403, 200, 403, 403]),
    ("POST", "/api/v1/recordings/{id}/hold/release", [401, 403, 403, 200, 403, 403]),
    ("GET", "/api/v1/audit", [401, 403, 403, 200, 403, 403]),
    ("GET", "/api/v1/verify", [401, 403, 403, 200, 403, 403]),
    ("GET", "/api/v1/reports/{what}", [401, 403, 403, 200, 403, 403]),
    ("GET", "/api/v1/reports/{what}/chart.svg", [401, 403, 403, 200, 403, 403]),
    ("GET", "/api/v1/tasks", [401, 200, 200, 200, 403, 403]),
    // an unknown task: 404 for those who may mark tasks
    ("POST", "/api/v1/tasks/{id}/mark", [401, 404, 404, 404, 403, 403]),
    ("POST", "/api/v1/tasks/{id}/call-back", [401, 404, 404, 403, 403, 403]),
    // an empty body: 400 for the agent, who alone submits records
    ("POST", "/api/v1/records", [401, 400, 403, 403, 403, 403]),
    ("GET", "/api/v1/records", [401, 200, 200, 200, 403, 403]),
    ("GET", "/api/v1/records/{id}", [401, 404, 404, 404, 403, 403]),
    ("POST", "/api/v1/records/{id}/review", [401, 403, 404, 404, 403, 403]),
    // spot-checks and follow-ups: supervisors and compliance; unknown ids 404
    ("GET", "/api/v1/spot-checks", [401, 403, 200, 200, 403, 403]),
    ("POST", "/api/v1/spot-checks/{record_id}", [401, 403, 404, 404, 403, 403]),
    ("GET", "/api/v1/follow-ups", [401, 403, 200, 200, 403, 403]),
    ("POST", "/api/v1/follow-ups/{id}", [401, 403, 404, 404, 403, 403]),
    // S1 is the agent's own row and in the supervisor's branch
    ("GET", "/api/v1/agents/{staff_id}", [401, 200, 200, 403, 403, 403]),
    // pausing an agent who never logged in: refused as a state change
    ("POST", "/api/v1/agents/{staff_id}/state", [401, 409, 409, 403, 403, 403]),
    ("GET", "/api/v1/status", [401, 403, 200, 200, 403, 403]),
    ("GET", "/api/v1/users", [401, 403, 403, 403, 200, 403]),
    ("GET", "/api/v1/agent", [401, 200, 403, 403, 403, 403]),
    // an empty body: 400 for the agent, who alone changes their own state here
    ("POST", "/api/v1/agent/state", [401, 400, 403, 403, 403, 403]),
    // not an upgrade: 400 for the agent
    ("GET", "/ws/agent", [401, 400, 403, 403, 403, 403]),
    ("GET", "/ws/supervisor", [401, 403, 400, 400, 403, 403]),
    // pages: to the login without a session; the agent's console for agents
    ("GET", "/", [303, 303, 303, 303, 303, 303]),
    ("GET", "/agent", [303, 200, 403, 403, 403, 403]),
    ("GET", "/supervisor", [303, 403, 200, 403, 403, 403]),
    ("GET", "/compliance", [303, 403, 403, 200, 403, 403]),
    // open: the login form and the embedded stylesheet and scripts hold no data
    ("GET", "/login", [200, 200, 200, 200, 200, 200]),
    ("GET", "/static/{file}", [200, 200, 200, 200, 200, 200]),
    ("GET", "/api/docs/", [401, 200, 200, 200, 200, 200]),
    ("GET", "/api/docs/swagger-initializer.js", [401, 200, 200, 200, 200, 200]),
];

#[tokio::test]
async fn every_route_answers_each_role_as_the_matrix_says() {
    let site = Site::new().await;
    // a route without a matrix entry (or an entry without a route) fails
    let routes: Vec<(String, String)> =
        huifang::web::route_list().into_iter().map(|(m, p)| (m.to_string(), p.to_string())).collect();
    for (m, p) in &routes {
        assert!(
            MATRIX.iter().any(|(mm, pp, _)| mm == m && pp == p),
            "route {m} {p} has no entry in the matrix"
        );
    }
    for (m, p, _) in MATRIX {
        assert!(routes.iter().any(|(mm, pp)| mm == m && pp == p), "matrix entry {m} {p} is not a route");
    }
    let mut tokens = Vec::new();
    for r in ROLES {
        tokens.push(Some(site.token(r).await));
    }
    let who: Vec<Option<String>> = std::iter::once(None).chain(tokens).collect();
    let mut failures = Vec::new();
    for (method, path, want) in MATRIX {
        // tasks and records: an id that does not exist; else the recording's
        let id = if path.starts_with("/api/v1/tasks/") || path.starts_with("/api/v1/records/") {
            uuid::Uuid::now_v7().to_string()
        } else {
            site.recording.to_string()
        };
        let concrete = path
            .replace("{client_id}", "C1")
            .replace("{id}", &id)
            .replace("{staff_id}", "S1")
            .replace("{record_id}", &uuid::Uuid::now_v7().to_string())
            .replace("{what}", "coverage")
            .replace("{file}", "agent.js");
        let concrete = if *path == "/api/v1/audit" {
            format!("{concrete}?recording_id={}", site.recording)
        } else {
            concrete
        };
        for (i, token) in who.iter().enumerate() {
            let mut req =
                site.http.request(Method::from_bytes(method.as_bytes()).unwrap(), site.url(&concrete));
            if let Some(t) = token {
                req = req.bearer_auth(t);
            }
            let body = match *path {
                "/api/v1/session" => {
                    serde_json::json!({"login": format!("nobody{i}"), "password": "wrong password 1"})
                }
                "/api/v1/tasks/{id}/mark" => serde_json::json!({"outcome": "refused"}),
                "/api/v1/tasks/{id}/call-back" => serde_json::json!({"at": "2030-01-01T02:00:00Z"}),
                "/api/v1/calls" => serde_json::json!({"task_id": uuid::Uuid::now_v7().to_string()}),
                "/api/v1/records" => serde_json::json!({}),
                "/api/v1/records/{id}/review" => serde_json::json!({"verdict": "approved"}),
                "/api/v1/spot-checks/{record_id}" => serde_json::json!({"verdict": "pass"}),
                "/api/v1/follow-ups/{id}" => serde_json::json!({"step": "answered"}),
                "/api/v1/agents/{staff_id}/state" => {
                    serde_json::json!({"action": "pause", "reason": "matrix"})
                }
                p if p.contains("/hold") => serde_json::json!({"reason": "matrix"}),
                p if p.ends_with("/reveal") => serde_json::json!({"field": "phone"}),
                _ => serde_json::Value::Null,
            };
            if *method == "POST" {
                req = req.json(&body);
            }
            let got = req.send().await.unwrap();
            let status = got.status().as_u16();
            let role = if i == 0 { "none".to_string() } else { ROLES[i - 1].to_string() };
            if status != want[i] {
                failures.push(format!("{method} {path} as {role}: {status}, expected {}", want[i]));
            }
            let ct = got.headers().get("content-type").map(|v| v.to_str().unwrap().to_string());
            if (status == 401 || status == 403) && PAGES.contains(path) {
                // a person at a browser gets a page saying why
                assert!(
                    ct.as_deref().is_some_and(|c| c.starts_with("text/html")),
                    "{method} {path} as {role}"
                );
            } else if status == 401 || status == 403 {
                assert_eq!(ct.as_deref(), Some("application/problem+json"), "{method} {path} as {role}");
            }
            if status == 303 {
                let to = got.headers().get("location").map(|v| v.to_str().unwrap().to_string());
                let expected = if i == 0 { "/login?next=" } else { "/" };
                assert!(
                    to.as_deref().is_some_and(|t| t.starts_with(expected)),
                    "{method} {path} as {role}: {to:?}"
                );
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[tokio::test]
async fn a_supervisor_sees_only_their_branches_and_an_agent_only_their_calls() {
    let site = Site::new().await;
    let sup = site.token(Role::Supervisor).await;
    let r = site.http.get(site.url("/api/v1/clients/C2/recordings")).bearer_auth(&sup).send().await.unwrap();
    assert_eq!(r.status(), 403, "B1's supervisor asked for B2's client");
    let agent = site.token(Role::Agent).await;
    let r =
        site.http.get(site.url("/api/v1/clients/C1/recordings")).bearer_auth(&agent).send().await.unwrap();
    let v: serde_json::Value = r.json().await.unwrap();
    assert_eq!(v["items"].as_array().unwrap().len(), 1, "S1 took the call");
    assert_eq!(v["items"][0]["agent_id"], "S1");
    // C2 has no calls of S1: an empty list, not someone else's calls
    let r =
        site.http.get(site.url("/api/v1/clients/C2/recordings")).bearer_auth(&agent).send().await.unwrap();
    let v: serde_json::Value = r.json().await.unwrap();
    assert_eq!(v["items"].as_array().unwrap().len(), 0);
}

#[tokio::test]
async fn the_recordings_list_follows_the_contract_and_pages_by_cursor() {
    let site = Site::new().await;
    let c = site.token(Role::Compliance).await;
    let r = site
        .http
        .get(site.url("/api/v1/clients/C1/recordings?limit=1"))
        .bearer_auth(&c)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let v: serde_json::Value = r.json().await.unwrap();
    let item = &v["items"][0];
    for key in [
        "recording_id",
        "call_id",
        "task_id",
        "client_id",
        "agent_id",
        "started_at",
        "duration_ms",
        "outcome",
        "sha256",
        "archive_key",
        "retain_until",
        "legal_hold",
        "archived",
    ] {
        assert!(item.get(key).is_some(), "{key} missing in {item}");
    }
    assert_eq!(item["recording_id"], site.recording.to_string());
    assert_eq!(item["sha256"], huifang::archive::sha256_hex(&site.wav));
    assert_eq!(item["legal_hold"], false);
    assert_eq!(item["archived"], false);
    assert!(v["next"].is_null(), "one recording, one page");
    // four more recordings: pages of two follow each other without gaps or repeats
    let mut all = vec![site.recording.to_string()];
    for i in 0..4 {
        let path = site.db.dir.path().join(format!("spool/sealed/more-{i}.wav"));
        std::fs::write(&path, format!("RIFF recording {i}")).unwrap();
        all.push(record_call_by(&site.db.store, "C1", Some("S1"), Some(&path)).await.to_string());
    }
    let (mut seen, mut cursor, mut pages) = (Vec::new(), None::<String>, 0);
    loop {
        let q = match &cursor {
            Some(c) => format!("/api/v1/clients/C1/recordings?limit=2&cursor={c}"),
            None => "/api/v1/clients/C1/recordings?limit=2".to_string(),
        };
        let v: serde_json::Value =
            site.http.get(site.url(&q)).bearer_auth(&c).send().await.unwrap().json().await.unwrap();
        pages += 1;
        seen.extend(
            v["items"].as_array().unwrap().iter().map(|i| i["recording_id"].as_str().unwrap().to_string()),
        );
        match v["next"].as_str() {
            Some(n) => cursor = Some(n.to_string()),
            None => break,
        }
    }
    assert_eq!(pages, 3, "5 recordings in pages of 2");
    assert_eq!(seen, all, "every recording once, in start order");
    // bad paging values are named
    let r = site
        .http
        .get(site.url("/api/v1/clients/C1/recordings?limit=0"))
        .bearer_auth(&c)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 422);
    let p: serde_json::Value = r.json().await.unwrap();
    assert_eq!(p["field"], "limit");
    let r = site
        .http
        .get(site.url("/api/v1/clients/C1/recordings?cursor=zzz"))
        .bearer_auth(&c)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 422);
}

#[tokio::test]
async fn the_same_answers_on_postgres() {
    let site = Site::on_postgres().await;
    for (r, path, want) in [
        (Role::Compliance, "/api/v1/clients/C1/recordings?limit=1", 200),
        (Role::Compliance, "/api/v1/tasks?limit=5", 200),
        (Role::Compliance, "/api/v1/verify", 200),
        (Role::Supervisor, "/api/v1/status", 200),
        (Role::Agent, "/api/v1/clients/C1/calls", 200),
    ] {
        let t = site.token(r).await;
        let (st, v) = site.get_json(path, &t).await;
        assert_eq!(st, want, "{path} as {r}: {v}");
    }
    let c = site.token(Role::Compliance).await;
    let (_, v) = site.get_json("/api/v1/clients/C1/recordings", &c).await;
    assert_eq!(v["items"][0]["recording_id"], site.recording.to_string());
    assert_eq!(v["items"][0]["agent_id"], "S1");
    assert_eq!(v["items"][0]["legal_hold"], false);
    let m = site.token(Role::Monitor).await;
    let text =
        site.http.get(site.url("/metrics")).bearer_auth(&m).send().await.unwrap().text().await.unwrap();
    assert!(text.contains("huifang_recordings{state=\"queued\"} 1"), "{text}");
    let url = site.url(&format!("/api/v1/recordings/{}/audio", site.recording));
    let r = site.http.get(&url).bearer_auth(&c).header("range", "bytes=10-19").send().await.unwrap();
    assert_eq!(r.status(), 206);
    assert_eq!(r.bytes().await.unwrap().as_ref(), &site.wav[10..20]);
}
