//! The command line: `huifang <command>`.
//!
//! Each command lives in its own file and returns `anyhow::Result`; `main`
//! maps a [`crate::config::ConfigError`] to exit code 2 and any other error
//! to 1.

pub mod app;
mod archive;
mod dial;
mod fetch;
mod hold;
mod recordings;
mod reindex;
mod serve;
mod verify;

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
    /// The archive: upload what is queued (`drain`), create a bucket (`init`).
    Archive(ArchiveArgs),
    /// Legal hold on a recording: `set`, or `release` (two people).
    Hold(HoldArgs),
    /// Check every recording against the database and the archive, and the
    /// audit chain; one line per finding; non-zero exit on any finding.
    Verify(VerifyArgs),
    /// Rebuild the recordings index from the archive's manifests alone.
    Reindex(ConfigArg),
    /// List every call and recording of a client.
    Recordings(RecordingsArgs),
    /// Download a recording, check its SHA-256, write an audit event.
    Fetch(FetchArgs),
}

/// Just `--config`.
#[derive(Debug, clap::Args)]
pub struct ConfigArg {
    /// Configuration file.
    #[arg(long, short, default_value_os_t = crate::config::default_path())]
    pub config: PathBuf,
}

/// Arguments of `archive`.
#[derive(Debug, clap::Args)]
pub struct ArchiveArgs {
    /// What to do.
    #[command(subcommand)]
    pub action: ArchiveAction,
}

/// `archive` subcommands.
#[derive(Debug, Subcommand)]
pub enum ArchiveAction {
    /// Upload and verify everything queued, then exit (0 when the queue is
    /// empty and every upload verified).
    Drain(DrainArgs),
    /// Create the configured bucket with Object Lock and versioning.
    Init(ConfigArg),
}

/// Arguments of `archive drain`.
#[derive(Debug, clap::Args)]
pub struct DrainArgs {
    /// Give up (exit 1) when the queue is not empty after this many seconds.
    #[arg(long, default_value_t = 300)]
    pub timeout: u64,
    /// Configuration file.
    #[arg(long, short, default_value_os_t = crate::config::default_path())]
    pub config: PathBuf,
}

/// Arguments of `hold`.
#[derive(Debug, clap::Args)]
pub struct HoldArgs {
    /// `set` or `release`.
    #[command(subcommand)]
    pub action: HoldAction,
}

/// `hold` subcommands.
#[derive(Debug, Subcommand)]
pub enum HoldAction {
    /// Put a recording under legal hold.
    Set(HoldTarget),
    /// Release a legal hold: the first call asks, a second, different user
    /// confirms.
    Release(HoldTarget),
}

/// Which recording, why, and who.
#[derive(Debug, clap::Args)]
pub struct HoldTarget {
    /// The recording id.
    #[arg(long)]
    pub recording: String,
    /// Why (kept in the audit log).
    #[arg(long)]
    pub reason: String,
    /// Who.
    #[arg(long)]
    pub user: String,
    /// Configuration file.
    #[arg(long, short, default_value_os_t = crate::config::default_path())]
    pub config: PathBuf,
}

/// Arguments of `verify`.
#[derive(Debug, clap::Args)]
pub struct VerifyArgs {
    /// Only calls started on or after this date (YYYY-MM-DD).
    #[arg(long)]
    pub since: Option<String>,
    /// Download every object and re-hash it.
    #[arg(long)]
    pub deep: bool,
    /// Configuration file.
    #[arg(long, short, default_value_os_t = crate::config::default_path())]
    pub config: PathBuf,
}

/// Arguments of `recordings`.
#[derive(Debug, clap::Args)]
pub struct RecordingsArgs {
    /// The client's id.
    #[arg(long)]
    pub client: String,
    /// From this date (YYYY-MM-DD).
    #[arg(long)]
    pub from: Option<String>,
    /// Up to this date (YYYY-MM-DD).
    #[arg(long)]
    pub to: Option<String>,
    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
    /// Configuration file.
    #[arg(long, short, default_value_os_t = crate::config::default_path())]
    pub config: PathBuf,
}

/// Arguments of `fetch`.
#[derive(Debug, clap::Args)]
pub struct FetchArgs {
    /// The recording id.
    #[arg(long)]
    pub recording: String,
    /// Where to write the file.
    #[arg(long)]
    pub out: PathBuf,
    /// Who fetches it (for the audit log; default: the login name).
    #[arg(long)]
    pub user: Option<String>,
    /// Configuration file.
    #[arg(long, short, default_value_os_t = crate::config::default_path())]
    pub config: PathBuf,
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
    /// The callback kind (decides the retention, e.g. `new_account`).
    #[arg(long)]
    pub kind: Option<String>,
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
        Command::Archive(args) => archive::run(args),
        Command::Hold(args) => hold::run(args),
        Command::Verify(args) => verify::run(args),
        Command::Reindex(args) => reindex::run(args),
        Command::Recordings(args) => recordings::run(args),
        Command::Fetch(args) => fetch::run(args),
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
