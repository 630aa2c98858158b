//! `search_bench`: how fast compliance finds a client's recordings
//! (`scripts/bench/search.sh`, `docs/PERFORMANCE.md`).
//!
//! Three modes, each printing one JSON line:
//! - `--mode api`: `--connections` clients loop for `--seconds`, each
//!   asking `GET /api/v1/clients/{id}/recordings` of `--base` for a random
//!   client `C0000000`…, with a bearer `--token`; requests per second,
//!   p50/p99 latency, errors.
//! - `--mode db`: the same query the API runs ([`Store::calls_page`], one
//!   page of 100 of a client's recordings), straight against `--url` with
//!   as many connections: what the database alone costs.
//! - `--mode login`: `--logins` logins one after the other
//!   (`POST /api/v1/session` with `--login` and the password in
//!   `BENCH_PASSWORD`): the cost of Argon2id with huifang's parameters.
//!
//! ```text
//! cargo build --release --example search_bench
//! target/release/examples/search_bench --mode db --url postgres://… --clients 1000000
//! ```

#[path = "bench_common/mod.rs"]
#[allow(dead_code)]
mod bench_common;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bench_common::percentile;
use huifang::store::{CallQuery, Store};

struct Args {
    mode: String,
    url: String,
    base: String,
    token: String,
    login: String,
    clients: u64,
    connections: usize,
    seconds: u64,
    logins: usize,
}

fn args() -> Args {
    let mut a = Args {
        mode: "api".into(),
        url: String::new(),
        base: "http://127.0.0.1:18080".into(),
        token: String::new(),
        login: "bench".into(),
        clients: 1_000_000,
        connections: 50,
        seconds: 60,
        logins: 20,
    };
    let mut it = std::env::args().skip(1);
    while let Some(k) = it.next() {
        let v = it.next().unwrap_or_else(|| panic!("{k}: a value is missing"));
        match k.as_str() {
            "--mode" => a.mode = v,
            "--url" => a.url = v,
            "--base" => a.base = v,
            "--token" => a.token = v,
            "--login" => a.login = v,
            "--clients" => a.clients = v.parse().expect("--clients"),
            "--connections" => a.connections = v.parse().expect("--connections"),
            "--seconds" => a.seconds = v.parse().expect("--seconds"),
            "--logins" => a.logins = v.parse().expect("--logins"),
            _ => panic!("unknown argument {k}"),
        }
    }
    a
}

/// A small xorshift: each worker its own sequence of client ids.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

fn report(mode: &str, mut lat: Vec<f64>, errors: u64, items: u64, wall: Duration) {
    lat.sort_by(|a, b| a.partial_cmp(b).expect("no NaN"));
    println!(
        "{}",
        serde_json::json!({
            "mode": mode,
            "requests": lat.len(),
            "per_s": lat.len() as f64 / wall.as_secs_f64(),
            "p50_ms": percentile(&lat, 0.50),
            "p99_ms": percentile(&lat, 0.99),
            "max_ms": lat.last().copied().unwrap_or(f64::NAN),
            "errors": errors,
            "items": items,
        })
    );
}

#[tokio::main]
async fn main() {
    let a = args();
    match a.mode.as_str() {
        "api" | "db" => load(a).await,
        "login" => logins(a).await,
        m => panic!("--mode {m}: api, db or login"),
    }
}

async fn load(a: Args) {
    let store = if a.mode == "db" { Some(Store::open(&a.url).await.expect("database")) } else { None };
    let http = reqwest::Client::builder().pool_max_idle_per_host(a.connections).build().expect("client");
    let errors = Arc::new(AtomicU64::new(0));
    let items = Arc::new(AtomicU64::new(0));
    let deadline = Instant::now() + Duration::from_secs(a.seconds);
    let started = Instant::now();
    let mut workers = Vec::new();
    for w in 0..a.connections {
        let (store, http, errors, items) = (store.clone(), http.clone(), errors.clone(), items.clone());
        let (base, token, clients) = (a.base.clone(), a.token.clone(), a.clients);
        workers.push(tokio::spawn(async move {
            let mut rng = Rng(0x9E37_79B9_7F4A_7C15 ^ ((w as u64 + 1) * 0x1000_0001));
            let mut lat = Vec::new();
            while Instant::now() < deadline {
                let client = format!("C{:07}", rng.next() % clients);
                let t = Instant::now();
                let n = match &store {
                    Some(s) => {
                        let q = CallQuery {
                            client_id: Some(&client),
                            recorded_only: true,
                            limit: Some(101),
                            ..Default::default()
                        };
                        s.calls_page(&q).await.map(|r| r.len()).map_err(|e| e.to_string())
                    }
                    None => {
                        let url = format!("{base}/api/v1/clients/{client}/recordings");
                        match http.get(url).bearer_auth(&token).send().await {
                            Ok(r) if r.status().is_success() => match r.json::<serde_json::Value>().await {
                                Ok(v) => Ok(v["items"].as_array().map_or(0, |i| i.len())),
                                Err(e) => Err(e.to_string()),
                            },
                            Ok(r) => Err(format!("status {}", r.status())),
                            Err(e) => Err(e.to_string()),
                        }
                    }
                };
                lat.push(t.elapsed().as_secs_f64() * 1000.0);
                match n {
                    Ok(n) => {
                        items.fetch_add(n as u64, Ordering::Relaxed);
                    }
                    Err(_) => {
                        errors.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
            lat
        }));
    }
    let mut lat = Vec::new();
    for w in workers {
        lat.extend(w.await.expect("worker"));
    }
    report(&a.mode, lat, errors.load(Ordering::Relaxed), items.load(Ordering::Relaxed), started.elapsed());
}

async fn logins(a: Args) {
    let password = std::env::var("BENCH_PASSWORD").expect("BENCH_PASSWORD");
    let http = reqwest::Client::new();
    let mut lat = Vec::new();
    let mut errors = 0;
    let started = Instant::now();
    for _ in 0..a.logins {
        let t = Instant::now();
        let r = http
            .post(format!("{}/api/v1/session", a.base))
            .json(&serde_json::json!({"login": a.login, "password": password}))
            .send()
            .await;
        lat.push(t.elapsed().as_secs_f64() * 1000.0);
        if !r.is_ok_and(|r| r.status().is_success()) {
            errors += 1;
        }
    }
    report("login", lat, errors, 0, started.elapsed());
}
