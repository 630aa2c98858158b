//! `huifang plan [--as-of DATE] [--dry-run] [--format F]`: runs the rules
//! (`domain::planner`) over the stored clients, staff and events and stores
//! the tasks they demand, in one transaction. Each task has an idempotency
//! key, so planning the same period again creates nothing new; sampled
//! batches reuse their stored seed. Prints, per kind, the tasks the rules
//! ask for and how many of them are new; warnings (provisional calendar,
//! events about unknown clients) go to stderr.

use std::collections::BTreeMap;

use anyhow::Context;
use chrono::Utc;
use serde_json::json;

use super::output::{day_or_today, print};
use super::{Exit, PlanArgs};
use crate::config::Config;
use crate::domain::kinds::TaskKind;
use crate::domain::planner::{Facts, plan};
use crate::store::Store;

/// Runs `huifang plan`.
pub fn run(args: PlanArgs) -> anyhow::Result<Exit> {
    let cfg = Config::load(&args.config)?;
    super::init_logging(&cfg.log.level);
    let cal = cfg.load_calendar()?;
    let as_of = day_or_today(args.as_of.as_deref(), "--as-of")?;
    let rt = tokio::runtime::Runtime::new().context("starting the async runtime")?;
    rt.block_on(async {
        let store = Store::open(&cfg.database_url()).await?;
        let r = async {
            let clients = store.clients_for_planning().await?;
            let staff = store.staff().await?;
            let events = store.events().await?;
            let seeds = store.batch_seeds().await?;
            let facts = Facts { clients: &clients, staff: &staff, events: &events };
            let p = plan(facts, &cfg.rules, &cal, as_of, &seeds, &mut rand::random::<[u8; 32]>)
                .context("planning")?;
            for w in &p.warnings {
                eprintln!("huifang: warning: {w}");
            }
            let counts = if args.dry_run {
                let mut c: BTreeMap<TaskKind, (u64, u64)> = BTreeMap::new();
                for t in &p.tasks {
                    c.entry(t.kind).or_default().0 += 1;
                }
                c
            } else {
                store.save_plan(&p, Utc::now()).await?
            };
            anyhow::Ok(counts)
        }
        .await;
        store.close().await;
        let counts = r?;
        let mut rows = Vec::new();
        let mut json_rows = Vec::new();
        for kind in TaskKind::ALL {
            let (planned, new) = counts.get(&kind).copied().unwrap_or((0, 0));
            let new_text = if args.dry_run { "-".to_string() } else { new.to_string() };
            rows.push(vec![kind.to_string(), kind.zh().to_string(), planned.to_string(), new_text]);
            json_rows.push(json!({"kind": kind.as_str(), "planned": planned,
                                  "new": if args.dry_run { None } else { Some(new) }}));
        }
        print(
            args.format,
            &["KIND", "项目", "PLANNED", "NEW"],
            &rows,
            &json!({"as_of": as_of, "dry_run": args.dry_run, "kinds": json_rows}),
        )?;
        Ok(Exit::Ok)
    })
}
