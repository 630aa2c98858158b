//! `huifang serve`: the daemon.

use anyhow::Context;
use tracing::info;

use super::ServeArgs;
use super::app::App;
use crate::config::Config;

/// Loads the configuration, starts huifang (store, recovery, SIP endpoint)
/// and runs until SIGINT or SIGTERM, then shuts down within
/// `sip.shutdown_grace_ms`.
pub fn run(args: ServeArgs) -> anyhow::Result<()> {
    let cfg = Config::load(&args.config)?;
    super::init_logging(&cfg.log.level);
    let rt = tokio::runtime::Runtime::new().context("starting the async runtime")?;
    rt.block_on(async move {
        let mut app = App::start(&cfg).await?;
        app.spawn_uploader();
        info!(listen = %app.local, "huifang {} serving", env!("CARGO_PKG_VERSION"));
        super::shutdown_signal().await;
        info!("shutting down");
        app.shutdown().await?;
        info!("stopped");
        anyhow::Ok(())
    })
}
