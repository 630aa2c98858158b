//! `huifang serve`: the daemon.

use std::time::Duration;

use anyhow::Context;
use tracing::info;

use super::ServeArgs;
use crate::config::Config;
use crate::sip::endpoint::{Endpoint, EndpointConfig};

/// Loads the configuration, binds the SIP sockets and runs until SIGINT or
/// SIGTERM, then shuts down within `sip.shutdown_grace_ms`.
pub fn run(args: ServeArgs) -> anyhow::Result<()> {
    let cfg = Config::load(&args.config)?;
    super::init_logging(&cfg.log.level);
    let ep_cfg = EndpointConfig::from_config(&cfg)?;
    let rt = tokio::runtime::Runtime::new().context("starting the async runtime")?;
    rt.block_on(async move {
        let endpoint = Endpoint::bind(ep_cfg).await?;
        info!(listen = %endpoint.local_addr(), "huifang {} serving", env!("CARGO_PKG_VERSION"));
        let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
        let task = tokio::spawn(endpoint.run(stop_rx));
        shutdown_signal().await;
        info!("shutting down");
        let _ = stop_tx.send(true);
        let grace = Duration::from_millis(cfg.sip.shutdown_grace_ms) + Duration::from_secs(1);
        match tokio::time::timeout(grace, task).await {
            Ok(res) => res.context("endpoint task")??,
            Err(_) => tracing::warn!("shutdown deadline passed; exiting anyway"),
        }
        info!("stopped");
        anyhow::Ok(())
    })
}

async fn shutdown_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate()).expect("installing a SIGTERM handler");
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {},
        _ = term.recv() => {},
    }
}
