//! `huifang verify [--since DATE] [--deep]`: the CLI's door onto
//! [`crate::ops::verify`]. Prints one line per finding (its kind first),
//! then a summary; exits 1 on any finding.

use anyhow::Context;

use super::{Exit, VerifyArgs};
use crate::archive::Archive;
use crate::config::Config;
use crate::ops::access::Person;
use crate::ops::recordings::day_start;
use crate::ops::verify::verify_as;
use crate::store::Store;

/// Runs `huifang verify`.
pub fn run(args: VerifyArgs) -> anyhow::Result<Exit> {
    let cfg = Config::load(&args.config)?;
    super::init_logging(&cfg.log.level);
    let since = args.since.as_deref().map(|d| day_start(d, "--since")).transpose()?;
    let rt = tokio::runtime::Runtime::new().context("starting the async runtime")?;
    rt.block_on(async move {
        let store = Store::open(&cfg.database_url()).await?;
        let archive = Archive::from_config(&cfg)?;
        let report = verify_as(&store, &archive, &Person::operator("cli"), since, args.deep).await;
        store.close().await;
        let report = report?;
        for f in &report.findings {
            println!("{f}");
        }
        for n in &report.notices {
            println!("notice: {n}");
        }
        let running = if report.running > 0 {
            format!(" ({} call(s) still running, not checked)", report.running)
        } else {
            String::new()
        };
        if report.findings.is_empty() {
            println!("verify: OK — no findings{running}");
            Ok(Exit::Ok)
        } else {
            println!("verify: {} finding(s){running}", report.findings.len());
            Ok(Exit::Unsuccessful)
        }
    })
}
