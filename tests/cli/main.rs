//! The command line: `--version`, `--help` on every command, configuration
//! errors (exit code 2 naming file, key and reason), and a clean stop of
//! `serve` on SIGTERM; and `huifang demo` (its modules).

#[macro_use]
#[path = "../common/mod.rs"]
mod common;
mod demo_runs_from_a_clean_directory;
mod demo_stops_cleanly_on_ctrl_c;

use std::process::Command;
use std::time::Duration;

use common::huifang::{Huifang, binary};

fn huifang(args: &[&str]) -> std::process::Output {
    Command::new(binary()).args(args).env_remove("RUST_LOG").output().unwrap()
}

#[test]
fn version_and_help() {
    let out = huifang(&["--version"]);
    assert!(out.status.success());
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), format!("huifang {}", env!("CARGO_PKG_VERSION")));
    for args in [&["--help"][..], &["serve", "--help"], &["help", "serve"]] {
        let out = huifang(args);
        assert!(out.status.success(), "{args:?}");
        assert!(String::from_utf8_lossy(&out.stdout).contains("Usage"), "{args:?}");
    }
    assert!(String::from_utf8_lossy(&huifang(&["serve", "--help"]).stdout).contains("--config"));
}

fn config_error(text: Option<&str>) -> (i32, String, String) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad.toml");
    if let Some(t) = text {
        std::fs::write(&path, t).unwrap();
    }
    let out = huifang(&["serve", "--config", path.to_str().unwrap()]);
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stderr).into_owned(),
        path.display().to_string(),
    )
}

#[test]
fn config_errors_exit_2_with_file_key_and_reason() {
    let (code, err, path) = config_error(None);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains(&path) && err.contains("cannot read"), "{err}");

    let (code, err, path) = config_error(Some("[sip]\nlisten = \"127.0.0.1:5070\"\nlisten_port = 5\n"));
    assert_eq!(code, 2, "{err}");
    assert!(err.contains(&path) && err.contains("listen_port") && err.contains("line 3"), "{err}");

    let (code, err, _) = config_error(Some(
        "[sip]\nlisten = \"127.0.0.1:5070\"\n[sip.switch]\nregistrar = \"sip:127.0.0.1\"\nuser = \"u\"\npassword = \"p\"\ntransport = \"carrier-pigeon\"\n",
    ));
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("sip.switch.transport") && err.contains("carrier-pigeon"), "{err}");

    let (code, err, _) = config_error(Some("[sip]\nlisten = \"127.0.0.1:5070\"\nt1_ms = \"fast\"\n"));
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("sip.t1_ms"), "{err}");
}

#[test]
fn serve_stops_cleanly_on_sigterm() {
    let mut h = Huifang::start("", "");
    let (status, took) = h.terminate(Duration::from_secs(10));
    assert!(status.success(), "{status:?}\n{}", h.log());
    assert!(took < Duration::from_secs(3), "idle shutdown took {took:?}");
    assert!(h.log().contains("stopped"), "{}", h.log());
}

/// A configuration written from scratch (no `[calendar]`, no holiday file
/// beside it) starts `serve` on the calendar built in; a holiday file that
/// ends too soon is warned about at start-up.
#[test]
fn serve_starts_on_the_built_in_calendar_and_warns_of_one_that_ends_soon() {
    let dir = tempfile::tempdir().unwrap();
    let port = common::free_port_udp_tcp();
    let config = dir.path().join("huifang.toml");
    std::fs::write(&config, format!("[sip]\nlisten = \"127.0.0.1:{port}\"\n")).unwrap();
    let mut h = Huifang::start_with_config(&config);
    assert!(h.wait_log("serving", Duration::from_secs(10)), "{}", h.log());
    assert!(!h.log().contains("trading calendar ends"), "{}", h.log());
    h.terminate(Duration::from_secs(10));

    // a file listing this year only: deadlines two months ahead fall outside it
    use chrono::Datelike;
    let year = chrono::Utc::now().year();
    let short = dir.path().join("short.toml");
    std::fs::write(&short, format!("[years.{year}]\nstatus = \"official\"\nclosed = []\n")).unwrap();
    let port = common::free_port_udp_tcp();
    std::fs::write(
        &config,
        format!("[sip]\nlisten = \"127.0.0.1:{port}\"\n[calendar]\nholidays = \"short.toml\"\n"),
    )
    .unwrap();
    let mut h = Huifang::start_with_config(&config);
    assert!(h.wait_log("serving", Duration::from_secs(10)), "{}", h.log());
    let within_60_days = chrono::Utc::now() + chrono::Duration::days(60);
    assert_eq!(
        h.log().contains(&format!("the trading calendar ends with {year}")),
        within_60_days.year() > year,
        "{}",
        h.log()
    );
    h.terminate(Duration::from_secs(10));
}
