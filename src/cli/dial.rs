//! `huifang dial`: place one recorded callback call and report it.
//!
//! When a `serve` runs on the same configuration (its control socket in
//! the spool answers, [`super::control`]), the call is placed by it: it
//! owns the SIP port and the phones registered to its built-in registrar,
//! and the call shows in `huifang status` while it lasts. Otherwise `dial`
//! runs the endpoint from the configuration itself (registering to the
//! switch when one is configured). Either way it waits for the call to
//! end, prints one JSON line on stdout and exits 0 only when the client
//! answered and the recording was sealed.

use std::time::Duration;

use anyhow::Context;
use tracing::{info, warn};

use super::DialArgs;
use super::app::App;
use super::control::{Answer, DialAsk, dial_through};
use crate::call::task::{CallRequest, place_call};
use crate::config::Config;
use crate::sip::msg::Uri;

/// `call ID ended OUTCOME[: REASON]`, from a report's JSON line.
fn unsuccessful(report: &str) -> String {
    let v: serde_json::Value = serde_json::from_str(report).unwrap_or_default();
    let s = |k: &str| v[k].as_str().unwrap_or("?").to_string();
    let reason = v["reason"].as_str().map(|r| format!(": {r}")).unwrap_or_default();
    format!("call {} ended {}{reason}", s("call_id"), s("outcome"))
}

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
        let ask = DialAsk {
            agent: args.agent.clone(),
            client: args.client.clone(),
            client_id: args.client_id.clone(),
            task_id: args.task_id.clone(),
            kind: args.kind.clone(),
            max_seconds: args.max_seconds,
        };
        if let Some(answer) = dial_through(&cfg.spool_path(), &ask, super::shutdown_signal()).await {
            info!("placed by the running serve (control socket)");
            return match answer.context("asking the running serve (control socket)")? {
                Answer::Ended { success, report } => {
                    println!("{report}");
                    if !success {
                        eprintln!("huifang: {}", unsuccessful(&report));
                    }
                    Ok(if success { DialResult::Success } else { DialResult::Unsuccessful })
                }
                Answer::Refused(why) => {
                    Err(anyhow::anyhow!("the running serve did not place the call: {why}"))
                }
            };
        }
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
            claimed_at: None,
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
            let line = serde_json::to_string(&report).context("printing the report")?;
            eprintln!("huifang: {}", unsuccessful(&line));
        }
        app.shutdown().await?;
        Ok(if success { DialResult::Success } else { DialResult::Unsuccessful })
    })
}
