//! `huifang softphone`: a SIP phone on huifang's own stack (see
//! [`crate::softphone`]). Prints one JSON line per call on stdout; exits 0
//! when it registered (if asked to) and every call it dialled was
//! answered. Ctrl-C or SIGTERM ends the calls, unregisters and exits.

use std::io::Write;
use std::time::Duration;

use anyhow::{Context, bail};

use super::{Exit, SoftphoneArgs};
use crate::media::g711::Codec;
use crate::sip::msg::Uri;
use crate::sip::transport::Transport;
use crate::softphone::media::AfterPrompt;
use crate::softphone::{Options, Softphone, load_prompt};

fn seconds(value: f64, flag: &str) -> anyhow::Result<Duration> {
    if !value.is_finite() || !(0.0..=86_400.0).contains(&value) {
        bail!("{flag}: {value} is not a number of seconds in 0..=86400");
    }
    Ok(Duration::from_secs_f64(value))
}

/// Builds the phone's options from the command line.
fn options(args: &SoftphoneArgs) -> anyhow::Result<Options> {
    let mut o = Options::new(&args.user, args.listen);
    o.transport = if args.transport == "tcp" { Transport::Tcp } else { Transport::Udp };
    o.password = match &args.password_env {
        Some(var) => match std::env::var(var) {
            Ok(p) if !p.is_empty() => Some(p),
            _ => bail!("--password-env: the environment variable {var} is not set"),
        },
        None => None,
    };
    o.registrar = args
        .registrar
        .as_deref()
        .map(Uri::parse)
        .transpose()
        .map_err(|e| anyhow::anyhow!("--registrar: not a SIP URI ({e})"))?;
    if o.registrar.is_some() && o.password.is_none() {
        bail!("--registrar needs --password-env (the digest password)");
    }
    o.domain = args.domain.clone();
    o.expires = args.expires;
    o.answer_after = Some(seconds(args.answer_after, "--answer-after")?);
    o.hangup_after = args.hangup_after.map(|s| seconds(s, "--hangup-after")).transpose()?;
    o.dial = args.dial.as_deref().map(Uri::parse).transpose().map_err(|e| anyhow::anyhow!("--dial: {e}"))?;
    if o.dial.is_some() && o.registrar.is_none() && o.dial.as_ref().and_then(Uri::socket_addr).is_none() {
        bail!("--dial: without --registrar the URI must name an IP address");
    }
    if args.calls == Some(0) {
        bail!("--calls: must be positive");
    }
    // Dialling, one call unless told otherwise.
    o.calls = args.calls.or(o.dial.as_ref().map(|_| 1));
    o.duration = args.seconds.map(Duration::from_secs);
    if let Some(path) = &args.play {
        o.prompt = load_prompt(path)?;
    }
    o.after_prompt = if args.looped { AfterPrompt::Loop } else { AfterPrompt::Silence };
    o.play_after = seconds(args.play_after, "--play-after")?;
    o.record_dir = args.record_dir.clone();
    o.codecs = args
        .codecs
        .iter()
        .map(|c| Codec::from_name(c.trim()).with_context(|| format!("--codecs: {c:?} is not PCMU or PCMA")))
        .collect::<anyhow::Result<_>>()?;
    Ok(o)
}

/// Runs `huifang softphone`.
pub fn run(args: SoftphoneArgs) -> anyhow::Result<Exit> {
    super::init_logging(&args.log);
    let opts = options(&args)?;
    let rt = tokio::runtime::Runtime::new().context("starting the async runtime")?;
    rt.block_on(async move {
        let mut phone = Softphone::start(opts).await?;
        eprintln!("huifang softphone: listening on {} ({})", phone.local_addr(), args.transport);
        let mut reports = phone.take_reports();
        let mut stopping = false;
        let signal = super::shutdown_signal();
        tokio::pin!(signal);
        let summary = loop {
            tokio::select! {
                Some(report) = reports.recv() => print(&report)?,
                _ = &mut signal, if !stopping => {
                    stopping = true;
                    phone.request_stop();
                }
                s = phone.finished() => {
                    // The last reports were sent before the task ended.
                    while let Ok(report) = reports.try_recv() {
                        print(&report)?;
                    }
                    break s?;
                }
            }
        };
        if summary.registered == Some(false) {
            eprintln!("huifang softphone: never registered");
        }
        if summary.unanswered_dials > 0 {
            eprintln!("huifang softphone: {} dialled call(s) not answered", summary.unanswered_dials);
        }
        Ok(if summary.is_success() { Exit::Ok } else { Exit::Unsuccessful })
    })
}

fn print(report: &crate::softphone::CallReport) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    serde_json::to_writer(&mut out, report).context("printing a call report")?;
    writeln!(out).context("printing a call report")?;
    out.flush().context("printing a call report")
}
