//! `huifang archive` (issue 4; being written).

use super::{ArchiveArgs, Exit};

/// Runs `huifang archive`.
pub fn run(_args: ArchiveArgs) -> anyhow::Result<Exit> {
    anyhow::bail!("huifang archive is not available yet")
}
