//! The command line: `huifang <command>`.
//!
//! Each command lives in its own file and returns `anyhow::Result`; `main`
//! maps a [`crate::config::ConfigError`] to exit code 2 and any other error
//! to 1.

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
}

/// Arguments of `serve`.
#[derive(Debug, clap::Args)]
pub struct ServeArgs {
    /// Configuration file.
    #[arg(long, short, default_value_os_t = crate::config::default_path())]
    pub config: PathBuf,
}

/// Runs a parsed command line.
pub fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Serve(args) => serve::run(args),
    }
}

/// Sets up logging: `RUST_LOG` if set, else the configured level.
pub fn init_logging(level: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(level));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_target(false)
        .try_init();
}
