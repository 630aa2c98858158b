//! `huifang report coverage|overdue|followups|monthly [--month YYYY-MM]
//! [--as-of DATE] [--format table|csv|json]`: the CLI's door onto
//! [`crate::ops::report`].

use anyhow::Context;

use super::output::{day_or_today, print};
use super::{Exit, ReportArgs, ReportWhat};
use crate::config::Config;
use crate::ops::access::Person;
use crate::ops::report::{ReportKind, parse_month, report};
use crate::store::Store;

/// Runs `huifang report`.
pub fn run(args: ReportArgs) -> anyhow::Result<Exit> {
    let cfg = Config::load(&args.config)?;
    super::init_logging(&cfg.log.level);
    let cal = cfg.load_calendar()?;
    let as_of = day_or_today(args.as_of.as_deref(), "--as-of")?;
    let month = args.month.as_deref().map(|m| parse_month(m, "--month")).transpose()?;
    let what = match args.what {
        ReportWhat::Coverage => ReportKind::Coverage,
        ReportWhat::Overdue => ReportKind::Overdue,
        ReportWhat::Followups => ReportKind::Followups,
        ReportWhat::Monthly => ReportKind::Monthly,
    };
    let rt = tokio::runtime::Runtime::new().context("starting the async runtime")?;
    let r = rt.block_on(async {
        let store = Store::open(&cfg.database_url()).await?;
        let r = report(&store, &cfg, &cal, &Person::operator("cli"), what, month, as_of).await;
        store.close().await;
        anyhow::Ok(r?)
    })?;
    if let Some(note) = &r.note {
        eprintln!("{note}");
    }
    print(args.format, &r.headers, &r.rows, &r.json)?;
    Ok(Exit::Ok)
}
