//! Runs `huifang softphone` as a child process: its JSON call reports
//! (stdout), its log (stderr), a kill on drop.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A running `huifang softphone`.
pub struct Phone {
    child: Option<Child>,
    out: Option<std::thread::JoinHandle<String>>,
    err: Option<std::thread::JoinHandle<String>>,
    /// Its record directory (`--record-dir`), in a temporary directory.
    pub record_dir: PathBuf,
    dir: Option<tempfile::TempDir>,
}

/// A finished `huifang softphone`.
#[derive(Debug)]
pub struct Finished {
    /// Exit code (`None`: killed after the timeout).
    pub code: Option<i32>,
    /// One JSON value per call.
    pub reports: Vec<serde_json::Value>,
    /// stderr.
    pub log: String,
    /// Holds the recordings until dropped.
    pub dir: Option<tempfile::TempDir>,
}

impl Finished {
    /// The only call's report; panics with everything otherwise.
    pub fn call(&self) -> &serde_json::Value {
        assert_eq!(self.reports.len(), 1, "want one call report: {self:#?}");
        &self.reports[0]
    }
    /// The recording of the only call.
    pub fn recording(&self) -> PathBuf {
        PathBuf::from(self.call()["recorded"].as_str().unwrap_or_else(|| panic!("no recording: {self:#?}")))
    }
}

impl Phone {
    /// Starts `huifang softphone ARGS… --record-dir <tmp>` with `env`.
    pub fn spawn(args: &[&str], env: &[(&str, &str)]) -> Phone {
        let dir = tempfile::tempdir().unwrap();
        let record_dir = dir.path().join("rec");
        let mut child = Command::new(super::huifang::binary())
            .arg("softphone")
            .args(args)
            .arg("--record-dir")
            .arg(&record_dir)
            .args(["--log", "debug"])
            .envs(env.iter().copied())
            .env_remove("RUST_LOG")
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawning huifang softphone");
        let out = child.stdout.take().unwrap();
        let err = child.stderr.take().unwrap();
        let read = |mut r: Box<dyn Read + Send>| {
            std::thread::spawn(move || {
                let mut s = String::new();
                let _ = r.read_to_string(&mut s);
                s
            })
        };
        Phone {
            child: Some(child),
            out: Some(read(Box::new(out))),
            err: Some(read(Box::new(err))),
            record_dir,
            dir: Some(dir),
        }
    }

    /// A phone listening on 127.0.0.1:`port` as `user` (no registration),
    /// answering one call after `answer_after` seconds, playing `wav` and
    /// hanging up `hangup_after` seconds after its answer.
    pub fn answering(port: u16, user: &str, wav: &Path, answer_after: &str, hangup_after: &str) -> Phone {
        Phone::spawn(
            &[
                "--listen",
                &format!("127.0.0.1:{port}"),
                "--user",
                user,
                "--answer-after",
                answer_after,
                "--play",
                wav.to_str().unwrap(),
                "--hangup-after",
                hangup_after,
                "--calls",
                "1",
                "--seconds",
                "40",
            ],
            &[],
        )
    }

    /// A phone registering to `registrar` (a `host:port`) as `user` with
    /// `password` (passed in the environment), then `more` arguments.
    pub fn registered(registrar: &str, user: &str, password: &str, more: &[&str]) -> Phone {
        let registrar = format!("sip:{registrar}");
        let mut args = vec!["--registrar", registrar.as_str(), "--user", user, "--password-env", "PHONE_PW"];
        args.extend_from_slice(more);
        Phone::spawn(&args, &[("PHONE_PW", password)])
    }

    /// The record directory.
    pub fn record_dir(&self) -> &Path {
        &self.record_dir
    }

    /// Waits for the exit (killing it after `timeout`).
    pub fn wait(mut self, timeout: Duration) -> Finished {
        let mut child = self.child.take().unwrap();
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
        let stdout = self.out.take().unwrap().join().unwrap_or_default();
        let log = super::strip_ansi(&self.err.take().unwrap().join().unwrap_or_default());
        let reports = stdout.lines().filter_map(|l| serde_json::from_str(l).ok()).collect();
        Finished { code, reports, log, dir: self.dir.take() }
    }

    /// SIGTERM, then [`Phone::wait`].
    pub fn terminate(self, timeout: Duration) -> Finished {
        if let Some(c) = self.child.as_ref() {
            let _ = Command::new("kill").args(["-TERM", &c.id().to_string()]).status();
        }
        self.wait(timeout)
    }
}

impl Drop for Phone {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}
