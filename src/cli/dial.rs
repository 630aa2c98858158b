//! `huifang dial`: place one recorded callback call and report it.
//!
//! Runs the endpoint from the configuration (registering to the switch when
//! one is configured), places the call, waits for it to end, prints one
//! JSON line on stdout and exits 0 only when the client answered and the
//! recording was sealed.

use std::time::Duration;

use anyhow::Context;
use tracing::warn;

use super::DialArgs;
use super::app::App;
use crate::call::task::{CallRequest, place_call};
use crate::config::Config;
use crate::sip::msg::Uri;

/// What `dial` ended with, for the exit code.
pub enum DialResult {
    /// Answered and sealed.
    Success,
    /// Anything else (the JSON line says what).
    Unsuccessful,
}

/// Runs `huifang dial`.
pub fn run(args: DialArgs) -> anyhow::Result<DialResult> {
    let cfg = Config::load(&args.config)?;
    super::init_logging(&cfg.log.level);
    let agent = Uri::parse(&args.agent).map_err(|e| anyhow::anyhow!("--agent: {e}"))?;
    let client = Uri::parse(&args.client).map_err(|e| anyhow::anyhow!("--client: {e}"))?;
    if args.max_seconds == Some(0) {
        anyhow::bail!("--max-seconds: must be positive");
    }
    let rt = tokio::runtime::Runtime::new().context("starting the async runtime")?;
    rt.block_on(async move {
        let app = App::start(&cfg).await?;
        if !app.wait_registered(Duration::from_secs(10)).await {
            warn!("not registered to the switch after 10 s; placing the call anyway");
        }
        let stop = app.stopping();
        let signals = tokio::spawn(super::shutdown_signal());
        let req = CallRequest {
            call_id: None,
            progress: None,
            agent,
            client,
            client_id: args.client_id,
            task_id: args.task_id,
            kind: args.kind,
            agent_id: None,
            max_duration: args.max_seconds.map(Duration::from_secs),
        };
        let services = app.services.clone();
        let call = tokio::spawn(async move { place_call(&services, req, stop).await });
        tokio::pin!(call);
        let report = tokio::select! {
            r = &mut call => r,
            _ = signals => {
                app.request_stop();
                call.await
            }
        }
        .context("call task")?
        .context("tracing the call")?;
        println!("{}", serde_json::to_string(&report).context("printing the report")?);
        let success = report.is_success();
        if !success {
            eprintln!(
                "huifang: call {} ended {}{}",
                report.call_id,
                report.outcome,
                report.reason.as_deref().map(|r| format!(": {r}")).unwrap_or_default()
            );
        }
        app.shutdown().await?;
        Ok(if success { DialResult::Success } else { DialResult::Unsuccessful })
    })
}
