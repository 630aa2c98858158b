//! `huifang hold set|release --recording ID --reason TEXT --user NAME`: the
//! CLI's door onto [`crate::ops::holds`] (legal hold, released only by two
//! people).

use anyhow::Context;
use uuid::Uuid;

use super::{Exit, HoldAction, HoldArgs};
use crate::archive::Archive;
use crate::config::Config;
use crate::ops::access::Person;
use crate::ops::holds::{self, HoldResult};
use crate::store::Store;

/// Runs `huifang hold`.
pub fn run(args: HoldArgs) -> anyhow::Result<Exit> {
    let (set, t) = match args.action {
        HoldAction::Set(t) => (true, t),
        HoldAction::Release(t) => (false, t),
    };
    let cfg = Config::load(&t.config)?;
    super::init_logging(&cfg.log.level);
    let id = Uuid::parse_str(&t.recording).context("--recording: not a recording id (UUID)")?;
    if t.user.trim().is_empty() {
        anyhow::bail!("--user: must not be empty");
    }
    let archive = Archive::from_config(&cfg)?;
    let who = Person::operator(&t.user);
    let rt = tokio::runtime::Runtime::new().context("starting the async runtime")?;
    let result = rt.block_on(async {
        let store = Store::open(&cfg.database_url()).await?;
        let r = if set {
            holds::set_hold(&store, &archive, &who, id, &t.reason).await
        } else {
            holds::release_hold(&store, &archive, &who, id, &t.reason).await
        };
        store.close().await;
        anyhow::Ok(r?)
    })?;
    match result {
        HoldResult::Set { archive_key, .. } => println!(
            "recording {id}: legal hold set by {}{}",
            t.user,
            if archive_key.is_some() {
                " (archive objects held)"
            } else {
                " (not archived yet: held when uploaded)"
            }
        ),
        HoldResult::ReleaseRequested { .. } => println!(
            "recording {id}: release of the legal hold requested by {}; a different user must confirm \
             with `huifang hold release`",
            t.user
        ),
        HoldResult::Released { .. } => println!("recording {id}: legal hold released by {}", t.user),
        HoldResult::Lifted { released_by } => println!(
            "recording {id}: the archive's legal hold lifted (the release was confirmed by {})",
            released_by.unwrap_or_default()
        ),
    }
    Ok(Exit::Ok)
}
