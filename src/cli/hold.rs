//! `huifang hold` (issue 4; being written).

use super::{Exit, HoldArgs};

/// Runs `huifang hold`.
pub fn run(_args: HoldArgs) -> anyhow::Result<Exit> {
    anyhow::bail!("huifang hold is not available yet")
}
