//! The command line: `huifang <command>`.
//!
//! Each command lives in its own file and returns `anyhow::Result`; `main`
//! maps a [`crate::config::ConfigError`] to exit code 2 and any other error
//! to 1.

pub mod app;
mod dial;
mod serve;

use std::path::PathBuf;

use clap::{Parser, Subcommand};

/// huifang (回访): recorded client callbacks for brokerage call centers.
#[derive(Debug, Parser)]
#[command(name = "huifang", version, about, long_about = None, propagate_version = true)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the daemon: SIP endpoint, registration to the switch or the
    /// built-in registrar, until SIGINT or SIGTERM.
    Serve(ServeArgs),
    /// Place one recorded callback call: ring the agent, then the client,
    /// bridge and record; print one JSON line; exit 0 only when the call
    /// was answered and its recording sealed.
    Dial(DialArgs),
}

/// Arguments of `serve`.
#[derive(Debug, clap::Args)]
pub struct ServeArgs {
    /// Configuration file.
    #[arg(long, short, default_value_os_t = crate::config::default_path())]
    pub config: PathBuf,
}

/// Arguments of `dial`.
#[derive(Debug, clap::Args)]
pub struct DialArgs {
    /// The agent's softphone, e.g. `sip:agent1@127.0.0.1:5060`.
    #[arg(long)]
    pub agent: String,
    /// The client's phone, e.g. `sip:13800000000@127.0.0.1:5060`.
    #[arg(long)]
    pub client: String,
    /// The client's id in the brokerage's systems (stored with the call).
    #[arg(long)]
    pub client_id: Option<String>,
    /// The callback task this call works on.
    #[arg(long)]
    pub task_id: Option<String>,
    /// Longest conversation in seconds (default: `call.max_call_secs`).
    #[arg(long)]
    pub max_seconds: Option<u64>,
    /// Configuration file.
    #[arg(long, short, default_value_os_t = crate::config::default_path())]
    pub config: PathBuf,
}

/// How a command ended.
pub enum Exit {
    /// Exit code 0.
    Ok,
    /// Exit code 1, the command already said why.
    Unsuccessful,
}

/// Runs a parsed command line.
pub fn run(cli: Cli) -> anyhow::Result<Exit> {
    match cli.command {
        Command::Serve(args) => serve::run(args).map(|()| Exit::Ok),
        Command::Dial(args) => dial::run(args).map(|r| match r {
            dial::DialResult::Success => Exit::Ok,
            dial::DialResult::Unsuccessful => Exit::Unsuccessful,
        }),
    }
}

/// Sets up logging on stderr: `RUST_LOG` if set, else the configured level.
pub fn init_logging(level: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(level));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_target(false)
        .with_writer(std::io::stderr)
        .try_init();
}

/// Resolves on SIGINT or SIGTERM.
pub(crate) async fn shutdown_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate()).expect("installing a SIGTERM handler");
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {},
        _ = term.recv() => {},
    }
}
