//! `claim_bench`: task-claim throughput of the dialer's store on one
//! database (`scripts/bench/claim.sh`, `docs/PERFORMANCE.md`).
//!
//! Seeds `--tasks` open tasks (nine kinds, due dates over three weeks,
//! clients with introducers so that avoidance has work to do) and
//! `--claimers` × `--agents` logged-in agents, then runs `--claimers`
//! claimers at once, each with its own connection pool and instance id, as
//! several `serve` instances would: each loops over its own agents, claims
//! the next task the agent may call ([`Store::claim_task`] with
//! `domain::avoidance::may_call`, exactly as the dialer does) and writes
//! the attempt back at once ([`Store::finish_attempt`], the task then waits
//! for its record), until `--claims` claims are made in all.
//!
//! Prints one JSON line: claims, wall time, claims per second (a claim and
//! its write-back), and the p50/p99 latency of a claim alone. Checks on the
//! way that no task was claimed twice.
//!
//! ```text
//! cargo build --release --example claim_bench
//! target/release/examples/claim_bench --url postgres://postgres@127.0.0.1:5432/bench --claimers 4
//! ```

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::{NaiveDate, Utc};
use huifang::domain::agents::AgentCommand;
use huifang::domain::avoidance::{Avoidance, Directory, may_call};
use huifang::domain::dialing::Next;
use huifang::domain::facts::{Client, Role, Staff};
use huifang::domain::kinds::{RulesConfig, TaskKind};
use huifang::domain::planner::{Batch, BatchKey, Plan, PlannedTask};
use huifang::store::{AttemptEnd, ClaimResult, ClaimSpec, Store};

struct Args {
    url: String,
    tasks: usize,
    claims: usize,
    claimers: usize,
    agents: usize,
}

fn args() -> Args {
    let mut a = Args { url: String::new(), tasks: 20_000, claims: 4_000, claimers: 1, agents: 8 };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut val = || it.next().unwrap_or_else(|| panic!("{flag} needs a value"));
        match flag.as_str() {
            "--url" => a.url = val(),
            "--tasks" => a.tasks = val().parse().expect("--tasks N"),
            "--claims" => a.claims = val().parse().expect("--claims N"),
            "--claimers" => a.claimers = val().parse().expect("--claimers N"),
            "--agents" => a.agents = val().parse().expect("--agents N"),
            other => panic!("unknown argument {other}"),
        }
    }
    assert!(!a.url.is_empty(), "--url is required");
    assert!(a.claims <= a.tasks, "--claims must not exceed --tasks");
    a
}

async fn seed(store: &Store, a: &Args) -> Vec<Vec<String>> {
    let mut staff = Vec::new();
    let mut agents = Vec::new();
    for k in 0..a.claimers {
        let mut mine = Vec::new();
        for i in 0..a.agents {
            let id = format!("A{k:02}{i:03}");
            staff.push(Staff {
                staff_id: id.clone(),
                name: id.clone(),
                role: Role::Service,
                branch: "B01".into(),
                manager_id: None,
                sip_uri: Some(format!("sip:{id}@127.0.0.1")),
                active: true,
                left_on: None,
            });
            mine.push(id);
        }
        agents.push(mine);
    }
    for i in 0..20 {
        let id = format!("S{i:03}");
        staff.push(Staff {
            staff_id: id.clone(),
            name: id,
            role: Role::Sales,
            branch: "B01".into(),
            manager_id: None,
            sip_uri: None,
            active: true,
            left_on: None,
        });
    }
    let clients: Vec<Client> = (0..a.tasks)
        .map(|i| Client {
            client_id: format!("C{i:08}"),
            name: format!("c{i}"),
            phone: format!("139{i:08}"),
            branch: "B01".into(),
            opened_on: NaiveDate::from_ymd_opt(2025, 3, 1).unwrap(),
            // every 50th client was introduced by one of the agents: refused to that agent (E7)
            introducer_id: Some(if i % 50 == 0 {
                format!("A{:02}{:03}", i % a.claimers, i % a.agents)
            } else {
                format!("S{:03}", i % 20)
            }),
            broker_introduced: false,
            assets: None,
            yearly_commission: None,
            monthly_turnover: None,
            last_trade_on: None,
            id_number: None,
            risk_level: None,
        })
        .collect();
    let none = &mut |_| {};
    store.import(&staff, false, Utc::now(), none).await.expect("staff");
    store.import(&clients, false, Utc::now(), none).await.expect("clients");
    let rules = RulesConfig::default();
    let batches: Vec<Batch> = TaskKind::ALL
        .iter()
        .map(|k| Batch {
            key: BatchKey { kind: *k, period: "bench".into() },
            seed: None,
            new_seed: false,
            ratio: None,
            population: 0,
            selected: 0,
        })
        .collect();
    let first = NaiveDate::from_ymd_opt(2026, 11, 16).unwrap();
    let tasks: Vec<PlannedTask> = (0..a.tasks)
        .map(|i| {
            let kind = TaskKind::ALL[i % TaskKind::ALL.len()];
            let p = rules.policy(kind);
            PlannedTask {
                key: format!("bench:{i:08}"),
                kind,
                client_id: format!("C{i:08}"),
                branch: "B01".into(),
                due_on: first + chrono::Duration::days((i * 7919 % 21) as i64),
                priority: p.priority,
                retention_kind: p.retention_kind,
                compliance: p.compliance,
                reason: huifang::domain::planner::Reason::new(&serde_json::json!({"rule": "bench"})),
                batch: BatchKey { kind, period: "bench".into() },
            }
        })
        .collect();
    store.save_plan(&Plan { batches, tasks, warnings: vec![] }, Utc::now()).await.expect("plan");
    for id in agents.iter().flatten() {
        store.change_agent(id, AgentCommand::Login, id, None, Utc::now()).await.expect("login");
    }
    agents
}

fn percentile(sorted: &[Duration], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i].as_secs_f64() * 1000.0
}

#[tokio::main]
async fn main() {
    let a = args();
    let store = Store::open(&a.url).await.expect("open the database");
    let t0 = Instant::now();
    let agents = seed(&store, &a).await;
    eprintln!(
        "claim_bench: seeded {} tasks, {} agents in {:.1} s",
        a.tasks,
        a.claimers * a.agents,
        t0.elapsed().as_secs_f64()
    );
    let dir = Arc::new(Directory::new(store.staff().await.expect("staff")));
    store.close().await;
    let left = Arc::new(std::sync::atomic::AtomicUsize::new(a.claims));
    let latencies: Arc<Mutex<Vec<Duration>>> = Arc::default();
    let claimed: Arc<Mutex<HashSet<uuid::Uuid>>> = Arc::default();
    let started = Instant::now();
    let mut handles = Vec::new();
    for (k, mine) in agents.into_iter().enumerate() {
        let (url, dir, left, latencies, claimed) =
            (a.url.clone(), dir.clone(), left.clone(), latencies.clone(), claimed.clone());
        handles.push(tokio::spawn(async move {
            let store = Store::open(&url).await.expect("open");
            let me = format!("bench-{k}");
            let avoid = Avoidance::default();
            let today = NaiveDate::from_ymd_opt(2026, 11, 30).unwrap();
            let mut mine_lat = Vec::new();
            'work: loop {
                for agent in &mine {
                    if left
                        .fetch_update(
                            std::sync::atomic::Ordering::SeqCst,
                            std::sync::atomic::Ordering::SeqCst,
                            |n| n.checked_sub(1),
                        )
                        .is_err()
                    {
                        break 'work;
                    }
                    let now = Utc::now();
                    let spec = ClaimSpec {
                        instance: &me,
                        agent,
                        now,
                        lease_until: now + chrono::Duration::seconds(30),
                    };
                    let mut check = |t: &huifang::store::TaskRow, c: &Client| {
                        may_call(&dir, &avoid, agent, c, t.compliance, today).is_ok()
                    };
                    let t = Instant::now();
                    let r = store.claim_task(&spec, &mut check).await.expect("claim");
                    mine_lat.push(t.elapsed());
                    let ClaimResult::Claimed(c) = r else {
                        panic!("claim for {agent}: {r:?}");
                    };
                    assert!(claimed.lock().unwrap().insert(c.task.id), "task {} claimed twice", c.task.key);
                    let end = AttemptEnd {
                        instance: &me,
                        task: c.task.id,
                        agent,
                        call_id: None,
                        outcome: "completed",
                        attempts: 1,
                        next: Next::AwaitRecord,
                        now: Utc::now(),
                        wrap_up_until: None,
                        pause_reason: None,
                    };
                    store.finish_attempt(&end).await.expect("finish");
                }
            }
            latencies.lock().unwrap().extend(mine_lat);
            store.close().await;
        }));
    }
    for h in handles {
        h.await.expect("claimer");
    }
    let wall = started.elapsed().as_secs_f64();
    let mut lat = latencies.lock().unwrap().clone();
    lat.sort();
    let n = lat.len();
    let line = serde_json::json!({
        "claimers": a.claimers,
        "tasks": a.tasks,
        "claims": n,
        "wall_s": (wall * 100.0).round() / 100.0,
        "claims_per_s": (n as f64 / wall).round(),
        "claim_p50_ms": (percentile(&lat, 0.50) * 100.0).round() / 100.0,
        "claim_p99_ms": (percentile(&lat, 0.99) * 100.0).round() / 100.0,
    });
    println!("{line}");
}
