//! The `huifang` binary: parses the command line and maps errors to exit
//! codes (2 for configuration errors, 1 for everything else).

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = huifang::cli::Cli::parse();
    match huifang::cli::run(cli) {
        Ok(huifang::cli::Exit::Ok) => ExitCode::SUCCESS,
        Ok(huifang::cli::Exit::Unsuccessful) => ExitCode::from(1),
        Err(e) => {
            if e.downcast_ref::<huifang::config::ConfigError>().is_some() {
                eprintln!("huifang: {e}");
                ExitCode::from(2)
            } else {
                eprintln!("huifang: {e:#}");
                ExitCode::from(1)
            }
        }
    }
}
