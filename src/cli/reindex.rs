//! `huifang reindex` (issue 4; being written).

use super::{ConfigArg, Exit};

/// Runs `huifang reindex`.
pub fn run(_args: ConfigArg) -> anyhow::Result<Exit> {
    anyhow::bail!("huifang reindex is not available yet")
}
