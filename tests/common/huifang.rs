//! Runs the `huifang` binary under test: a temporary config, captured
//! logs, a clean stop by SIGTERM (to the PID we spawned) and a kill on drop.

use std::fs;
use std::io::Read;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

/// A running `huifang serve`.
pub struct Huifang {
    child: Option<Child>,
    dir: tempfile::TempDir,
    /// The SIP address it listens on (UDP and TCP).
    pub addr: SocketAddr,
}

/// `rest` with a `[calendar]` section naming the shipped holiday file,
/// unless it has one: `serve`'s dialer needs the trading calendar.
pub fn with_calendar(rest: &str) -> String {
    if rest.contains("[calendar]") {
        return rest.to_string();
    }
    let holidays = super::repo_root().join("config/holidays/cn-exchanges.toml");
    format!("{rest}\n[calendar]\nholidays = \"{}\"\n", holidays.display())
}

/// The built binary.
pub fn binary() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_huifang"))
}

impl Huifang {
    /// Starts `huifang serve` with `[sip] listen` on a free port and the
    /// given extra TOML appended (sections after `[sip]`, or `[sip]` keys
    /// when `sip_keys` is used). Waits until it answers OPTIONS.
    pub fn start(sip_keys: &str, rest: &str) -> Huifang {
        let port = super::free_port_udp_tcp();
        let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
        let dir = tempfile::tempdir().unwrap();
        let rest = with_calendar(rest);
        let config = format!("[log]\nlevel = \"debug\"\n\n[sip]\nlisten = \"{addr}\"\n{sip_keys}\n{rest}\n");
        fs::write(dir.path().join("huifang.toml"), config).unwrap();
        let conf = dir.path().join("huifang.toml");
        Self::spawn(&conf, addr, dir)
    }

    /// Starts `huifang serve` on an existing configuration file (its
    /// directory holds the database and spool); the log goes to a fresh
    /// temporary directory.
    pub fn start_with_config(config: &Path) -> Huifang {
        Self::start_with_config_env(config, &[])
    }

    /// [`start_with_config`](Self::start_with_config) with extra
    /// environment variables (test hooks, secrets).
    pub fn start_with_config_env(config: &Path, env: &[(&str, &str)]) -> Huifang {
        let text = fs::read_to_string(config).unwrap();
        let listen = text
            .lines()
            .find_map(|l| l.trim().strip_prefix("listen = "))
            .expect("listen in the config")
            .trim_matches('"');
        let addr: SocketAddr = listen.parse().unwrap();
        Self::spawn_env(config, addr, tempfile::tempdir().unwrap(), env)
    }

    fn spawn(config: &Path, addr: SocketAddr, dir: tempfile::TempDir) -> Huifang {
        Self::spawn_env(config, addr, dir, &[])
    }

    fn spawn_env(config: &Path, addr: SocketAddr, dir: tempfile::TempDir, env: &[(&str, &str)]) -> Huifang {
        let log = fs::File::create(dir.path().join("huifang.log")).unwrap();
        let child = Command::new(binary())
            .args(["serve", "--config"])
            .arg(config)
            .envs(env.iter().copied())
            .env_remove("RUST_LOG")
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("spawning huifang");
        let mut h = Huifang { child: Some(child), dir, addr };
        let deadline = Instant::now() + Duration::from_secs(10);
        while super::sip_options_ping(addr, Duration::from_millis(300)).is_err() {
            if Instant::now() > deadline || !h.is_running() {
                panic!("huifang did not come up on {addr}; log:\n{}", h.log());
            }
        }
        h
    }

    /// The log so far (ANSI colours stripped).
    pub fn log(&self) -> String {
        let mut s = String::new();
        if let Ok(mut f) = fs::File::open(self.dir.path().join("huifang.log")) {
            let _ = f.read_to_string(&mut s);
        }
        super::strip_ansi(&s)
    }

    /// The working directory of this instance.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// Waits until the log has a line containing `needle`.
    pub fn wait_log(&self, needle: &str, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        loop {
            if self.log().lines().any(|l| l.contains(needle)) {
                return true;
            }
            if Instant::now() > deadline {
                return false;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Counts log lines containing `needle`.
    pub fn count_log(&self, needle: &str) -> usize {
        self.log().lines().filter(|l| l.contains(needle)).count()
    }

    /// Whether the process still runs.
    pub fn is_running(&mut self) -> bool {
        match self.child.as_mut() {
            Some(c) => matches!(c.try_wait(), Ok(None)),
            None => false,
        }
    }

    /// Kills the process with SIGKILL (by its PID: a crash, no clean
    /// shutdown) and reaps it.
    pub fn kill9(&mut self) {
        let mut child = self.child.take().expect("already stopped");
        let ok = Command::new("kill").args(["-KILL", &child.id().to_string()]).status().unwrap();
        assert!(ok.success(), "kill -KILL failed");
        let _ = child.wait();
    }

    /// Sends SIGTERM and waits up to `timeout` for the exit; returns the
    /// exit status and how long the shutdown took.
    pub fn terminate(&mut self, timeout: Duration) -> (ExitStatus, Duration) {
        let mut child = self.child.take().expect("already stopped");
        let started = Instant::now();
        let ok = Command::new("kill").args(["-TERM", &child.id().to_string()]).status().unwrap();
        assert!(ok.success(), "kill -TERM failed");
        loop {
            if let Some(st) = child.try_wait().unwrap() {
                return (st, started.elapsed());
            }
            if started.elapsed() > timeout {
                let _ = child.kill();
                let _ = child.wait();
                panic!("huifang did not exit within {timeout:?} of SIGTERM; log:\n{}", self.log());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Huifang {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// A finished `huifang dial`.
pub struct Dial {
    /// Exit code.
    pub code: Option<i32>,
    /// The JSON line it printed (`Null` if none).
    pub report: serde_json::Value,
    /// Its log (stderr).
    pub stderr: String,
    /// Its working directory (config, database, spool).
    pub dir: tempfile::TempDir,
}

impl Dial {
    /// The outcome in the report.
    pub fn outcome(&self) -> &str {
        self.report["outcome"].as_str().unwrap_or("<no report>")
    }
    /// The sealed recording's path.
    pub fn recording(&self) -> PathBuf {
        PathBuf::from(self.report["recording"]["path"].as_str().expect("no recording in the report"))
    }
    /// Everything, for assertion messages.
    pub fn explain(&self) -> String {
        format!("exit {:?}\nreport: {}\nlog:\n{}", self.code, self.report, super::strip_ansi(&self.stderr))
    }
    /// Asserts the call completed (exit 0); `context` (serve's log, the
    /// phones) goes into the message when it did not.
    pub fn assert_completed(&self, context: &str) {
        assert_eq!(self.code, Some(0), "{}\n{context}", self.explain());
        assert_eq!(self.outcome(), "completed", "{}\n{context}", self.explain());
    }
}

/// Writes a config in a fresh directory: `[sip] listen` on a free port
/// plus `sip_keys`, then `rest` (other sections).
pub fn write_config(sip_keys: &str, rest: &str) -> (tempfile::TempDir, PathBuf) {
    let port = super::free_port_udp_tcp();
    let dir = tempfile::tempdir().unwrap();
    let rest = with_calendar(rest);
    let config =
        format!("[log]\nlevel = \"debug\"\n\n[sip]\nlisten = \"127.0.0.1:{port}\"\n{sip_keys}\n{rest}\n");
    let path = dir.path().join("huifang.toml");
    fs::write(&path, config).unwrap();
    (dir, path)
}

/// Runs `huifang dial --agent AGENT --client CLIENT ARGS…` with a fresh
/// config and waits for it (at most `timeout`).
pub fn dial(sip_keys: &str, rest: &str, agent: &str, client: &str, args: &[&str], timeout: Duration) -> Dial {
    dial_with_env(sip_keys, rest, agent, client, args, timeout, &[])
}

/// [`dial`] with extra environment variables (secrets the config names).
pub fn dial_with_env(
    sip_keys: &str,
    rest: &str,
    agent: &str,
    client: &str,
    args: &[&str],
    timeout: Duration,
    env: &[(&str, &str)],
) -> Dial {
    let (dir, config) = write_config(sip_keys, rest);
    run_dial(&config, dir, agent, client, args, timeout, env)
}

/// `huifang dial` on an existing configuration (a running `serve`'s).
pub fn dial_on(config: &Path, agent: &str, client: &str, args: &[&str], timeout: Duration) -> Dial {
    run_dial(config, tempfile::tempdir().unwrap(), agent, client, args, timeout, &[])
}

fn run_dial(
    config: &Path,
    dir: tempfile::TempDir,
    agent: &str,
    client: &str,
    args: &[&str],
    timeout: Duration,
    env: &[(&str, &str)],
) -> Dial {
    let mut child = Command::new(binary())
        .envs(env.iter().copied())
        .args(["dial", "--agent", agent, "--client", client, "--config"])
        .arg(config)
        .args(args)
        .env_remove("RUST_LOG")
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawning huifang dial");
    let mut out = child.stdout.take().unwrap();
    let mut err = child.stderr.take().unwrap();
    let out_t = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = out.read_to_string(&mut s);
        s
    });
    let err_t = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = err.read_to_string(&mut s);
        s
    });
    let started = Instant::now();
    let code = loop {
        if let Some(st) = child.try_wait().unwrap() {
            break st.code();
        }
        if started.elapsed() > timeout {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let stdout = out_t.join().unwrap_or_default();
    let stderr = err_t.join().unwrap_or_default();
    let report = stdout
        .lines()
        .find(|l| l.starts_with('{'))
        .and_then(|l| serde_json::from_str(l).ok())
        .unwrap_or(serde_json::Value::Null);
    let d = Dial { code, report, stderr, dir };
    assert!(code.is_some(), "huifang dial did not finish within {timeout:?}\n{}", d.explain());
    d
}
