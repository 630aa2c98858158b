//! `huifang fetch` (issue 4; being written).

use super::{Exit, FetchArgs};

/// Runs `huifang fetch`.
pub fn run(_args: FetchArgs) -> anyhow::Result<Exit> {
    anyhow::bail!("huifang fetch is not available yet")
}
