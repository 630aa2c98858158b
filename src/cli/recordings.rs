//! `huifang recordings` (issue 4; being written).

use super::{Exit, RecordingsArgs};

/// Runs `huifang recordings`.
pub fn run(_args: RecordingsArgs) -> anyhow::Result<Exit> {
    anyhow::bail!("huifang recordings is not available yet")
}
