//! `huifang verify` (issue 4; being written).

use super::{Exit, VerifyArgs};

/// Runs `huifang verify`.
pub fn run(_args: VerifyArgs) -> anyhow::Result<Exit> {
    anyhow::bail!("huifang verify is not available yet")
}
