//! `screenpop_bench`: how fast the screen-pop reaches the agents
//! (`scripts/bench/screenpop.sh`, `docs/PERFORMANCE.md`).
//!
//! - `--mode seed`: adds `--agents` agent users `bench0001`… (staff
//!   `A0001`…, password from `BENCH_PASSWORD`) and writes one API token per
//!   line to `--tokens FILE`.
//! - `--mode run`: opens one `/ws/agent` per token on `--base` (waiting for
//!   each `snapshot`), reads the resident memory of `--serve-pid` before and
//!   after, puts every agent `available`, and for `--seconds` takes note of
//!   each `offered` as it arrives. Then it logs the agents out and compares
//!   each `offered` with its claim: the agent's trace (`on_call`, written in
//!   the claim's transaction, `--url`). Prints one JSON line: offers,
//!   latency claim → message at the client (p50/p99/max), the server's part
//!   (claim → the message's `at`), and memory per connection.

#[path = "bench_common/mod.rs"]
#[allow(dead_code)]
mod bench_common;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bench_common::percentile;
use chrono::{DateTime, Utc};
use futures_util::StreamExt;
use huifang::ops::access::Role;
use huifang::ops::users::{AuthSettings, NewUser, add_user, create_token};
use huifang::store::Store;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

struct Args {
    mode: String,
    url: String,
    base: String,
    agents: usize,
    seconds: u64,
    tokens: String,
    serve_pid: u32,
}

fn args() -> Args {
    let mut a = Args {
        mode: "run".into(),
        url: String::new(),
        base: "http://127.0.0.1:18180".into(),
        agents: 500,
        seconds: 60,
        tokens: "tokens.txt".into(),
        serve_pid: 0,
    };
    let mut it = std::env::args().skip(1);
    while let Some(k) = it.next() {
        let v = it.next().unwrap_or_else(|| panic!("{k}: a value is missing"));
        match k.as_str() {
            "--mode" => a.mode = v,
            "--url" => a.url = v,
            "--base" => a.base = v,
            "--agents" => a.agents = v.parse().expect("--agents"),
            "--seconds" => a.seconds = v.parse().expect("--seconds"),
            "--tokens" => a.tokens = v,
            "--serve-pid" => a.serve_pid = v.parse().expect("--serve-pid"),
            _ => panic!("unknown argument {k}"),
        }
    }
    a
}

/// Resident memory of `pid`, KiB.
fn rss_kib(pid: u32) -> u64 {
    bench_common::status_kib(Some(pid), "VmRSS").expect("the serve process's VmRSS")
}

#[tokio::main]
async fn main() {
    let a = args();
    match a.mode.as_str() {
        "seed" => seed(a).await,
        "run" => run(a).await,
        m => panic!("--mode {m}: seed or run"),
    }
}

async fn seed(a: Args) {
    let store = Store::open(&a.url).await.expect("database");
    let password = std::env::var("BENCH_PASSWORD").expect("BENCH_PASSWORD");
    let cfg = huifang::config::HttpConfig::default();
    let s = AuthSettings::from_config(&cfg);
    let mut tokens = String::new();
    for i in 1..=a.agents {
        let login = format!("bench{i:04}");
        let u = NewUser {
            login: login.clone(),
            roles: vec![Role::Agent],
            staff_id: Some(format!("A{i:04}")),
            branches: vec![],
        };
        add_user(&store, "bench", u, password.clone(), &s).await.expect("adding a user");
        let (token, _) =
            create_token(&store, "bench", &login, vec![Role::Agent], 1, None).await.expect("a token");
        tokens.push_str(&token);
        tokens.push('\n');
    }
    std::fs::write(&a.tokens, tokens).expect("writing the tokens");
    store.close().await;
}

/// One `offered` as the client saw it.
struct Seen {
    agent: String,
    task: String,
    received: DateTime<Utc>,
    at: DateTime<Utc>,
}

async fn run(a: Args) {
    let tokens: Vec<String> =
        std::fs::read_to_string(&a.tokens).expect("the tokens").lines().map(str::to_string).collect();
    let store = Store::open(&a.url).await.expect("database");
    let http = reqwest::Client::new();
    let before = rss_kib(a.serve_pid);
    let seen: Arc<Mutex<Vec<Seen>>> = Arc::default();
    let ws_url = format!("{}/ws/agent", a.base.replace("http://", "ws://"));
    let mut readers = Vec::new();
    let (ready_tx, mut ready_rx) = tokio::sync::mpsc::unbounded_channel();
    let t0 = Instant::now();
    for token in &tokens {
        let mut req = ws_url.clone().into_client_request().expect("a request");
        req.headers_mut().insert("authorization", format!("Bearer {token}").parse().expect("a header"));
        let (ws, _) = tokio_tungstenite::connect_async(req).await.expect("the feed");
        let (seen, ready) = (seen.clone(), ready_tx.clone());
        readers.push(tokio::spawn(async move {
            let mut rx = ws;
            let mut agent = String::new();
            while let Some(Ok(m)) = rx.next().await {
                let Message::Text(t) = m else { continue };
                let received = Utc::now();
                let v: serde_json::Value = serde_json::from_str(t.as_str()).expect("JSON");
                match v["type"].as_str() {
                    Some("snapshot") => {
                        agent = v["agent_id"].as_str().unwrap_or_default().to_string();
                        let _ = ready.send(());
                    }
                    Some("offered") => {
                        let at = v["at"].as_str().and_then(|s| s.parse().ok()).unwrap_or(received);
                        let task = v["task_id"].as_str().unwrap_or_default().to_string();
                        seen.lock().unwrap().push(Seen { agent: agent.clone(), task, received, at });
                    }
                    _ => {}
                }
            }
        }));
    }
    for _ in 0..tokens.len() {
        ready_rx.recv().await.expect("a snapshot per connection");
    }
    let connect_s = t0.elapsed().as_secs_f64();
    tokio::time::sleep(Duration::from_secs(2)).await;
    let after = rss_kib(a.serve_pid);
    let state = |st: &'static str| {
        let (http, base) = (http.clone(), a.base.clone());
        let tokens = tokens.clone();
        async move {
            for t in &tokens {
                let r = http
                    .post(format!("{base}/api/v1/agent/state"))
                    .bearer_auth(t)
                    .json(&serde_json::json!({"state": st}))
                    .send()
                    .await
                    .expect("agent state");
                assert!(r.status().is_success(), "agent state {st}: {}", r.status());
            }
        }
    };
    state("available").await;
    tokio::time::sleep(Duration::from_secs(a.seconds)).await;
    state("logged_out").await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    for r in &readers {
        r.abort();
    }
    // each offer against its claim (the agent's trace, written in the claim's transaction)
    let seen = std::mem::take(&mut *seen.lock().unwrap());
    let mut claims: HashMap<(String, String), DateTime<Utc>> = HashMap::new();
    let agents: std::collections::BTreeSet<&str> = seen.iter().map(|s| s.agent.as_str()).collect();
    for agent in agents {
        for e in store.agent_events(agent).await.expect("the agent's trace") {
            if let (Some(task), "on_call") = (e.task_id, e.to_state.as_str()) {
                claims.insert((agent.to_string(), task.to_string()), e.at);
            }
        }
    }
    let ms = |d: chrono::Duration| d.num_microseconds().unwrap_or(0) as f64 / 1000.0;
    let mut total = Vec::new();
    let mut server = Vec::new();
    for s in &seen {
        if let Some(claim) = claims.get(&(s.agent.clone(), s.task.clone())) {
            total.push(ms(s.received - *claim));
            server.push(ms(s.at - *claim));
        }
    }
    total.sort_by(|x, y| x.partial_cmp(y).expect("no NaN"));
    server.sort_by(|x, y| x.partial_cmp(y).expect("no NaN"));
    let per_conn = (after.saturating_sub(before)) as f64 / tokens.len() as f64;
    println!(
        "{}",
        serde_json::json!({
            "agents": tokens.len(),
            "connect_s": connect_s,
            "offers": seen.len(),
            "matched": total.len(),
            "p50_ms": percentile(&total, 0.50),
            "p99_ms": percentile(&total, 0.99),
            "max_ms": total.last().copied().unwrap_or(f64::NAN),
            "server_p50_ms": percentile(&server, 0.50),
            "server_p99_ms": percentile(&server, 0.99),
            "rss_before_kib": before,
            "rss_after_kib": after,
            "kib_per_connection": per_conn,
        })
    );
    store.close().await;
}
