//! `huifang demo --web --json --dir DIR --http 127.0.0.1:PORT`: after the
//! demo's calls one JSON line with the pages' address and the accounts;
//! huifang keeps running, and the agent takes the next call from the page's
//! feed; SIGTERM stops it cleanly.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;

use serde_json::json;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

use crate::floor::{close, until};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn demo_web_keeps_huifang_running_for_a_person_at_the_agent_console() {
    let dir = tempfile::tempdir().unwrap();
    let port = crate::common::free_port_tcp();
    let mut child = Command::new(env!("CARGO_BIN_EXE_huifang"))
        .args(["demo", "--web", "--json", "--tasks", "1", "--dir"])
        .arg(dir.path().join("demo"))
        .args(["--http", &format!("127.0.0.1:{port}")])
        .env_remove("RUST_LOG")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if line.starts_with("{\"") && line.contains("\"web\"") {
                let _ = tx.send(line);
            }
        }
    });
    let line = rx.recv_timeout(Duration::from_secs(120)).expect("the web line within two minutes");
    let v: serde_json::Value = serde_json::from_str(&line).unwrap();
    let base = v["web"].as_str().unwrap().to_string();
    assert_eq!(base, format!("http://127.0.0.1:{port}"));
    let accounts = v["accounts"].as_array().unwrap();
    let roles: Vec<&str> = accounts.iter().map(|a| a["role"].as_str().unwrap()).collect();
    assert_eq!(roles, ["agent", "supervisor", "compliance"]);
    let agent = &accounts[0];
    assert_eq!(agent["staff_id"], "A01");

    // the agent logs in at the page's door and goes available: the next call comes
    let http = reqwest::Client::new();
    let r = http
        .post(format!("{base}/api/v1/session"))
        .json(&json!({"login": agent["login"], "password": agent["password"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let cookie = r.headers()["set-cookie"].to_str().unwrap().split(';').next().unwrap().to_string();
    let page = http.get(format!("{base}/agent")).header("cookie", &cookie).send().await.unwrap();
    assert_eq!(page.status(), 200);
    let mut req = format!("{}/ws/agent", base.replace("http://", "ws://")).into_client_request().unwrap();
    req.headers_mut().insert("cookie", cookie.parse().unwrap());
    req.headers_mut().insert("origin", base.parse().unwrap());
    let (mut ws, _) = tokio_tungstenite::connect_async(req).await.unwrap();
    let r = http
        .post(format!("{base}/api/v1/agent/state"))
        .header("cookie", &cookie)
        .header("origin", &base)
        .json(&json!({"state": "available"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let (offered, _) = until(&mut ws, "offered", Duration::from_secs(30)).await;
    assert!(offered["client"]["client_id"].is_string(), "{offered}");
    let (ended, _) = until(&mut ws, "ended", Duration::from_secs(30)).await;
    assert_eq!(ended["outcome"], "completed", "{ended}");
    close(ws).await;

    // SIGTERM: a clean stop
    let pid = child.id().to_string();
    assert!(Command::new("kill").args(["-TERM", &pid]).status().unwrap().success());
    let t0 = std::time::Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        assert!(t0.elapsed() < Duration::from_secs(30), "demo --web did not stop on SIGTERM");
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(status.success(), "{status:?}");
}
