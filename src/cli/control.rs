//! The local control socket: `huifang dial` asks the running `serve` to
//! place its call.
//!
//! Only the daemon that owns the SIP endpoint reaches the phones registered
//! to its built-in registrar, so a call placed by hand must go through it:
//! `serve` listens on `control.sock` in its spool directory (a Unix socket,
//! mode 0600: whoever may read the spool and the database may already do
//! as much), and `dial` with the same configuration connects there first.
//! With no `serve` on that spool (no socket, or nobody listening), `dial`
//! runs its own endpoint as before.
//!
//! The protocol is one line each way, so that a shell can speak it too:
//! `dial {json}\n` (the [`DialAsk`] fields), then, when the call has ended,
//! `ok success {report}\n`, `ok unsuccessful {report}\n` (the report
//! exactly as `dial` prints it) or `error {why}\n`. A client that goes
//! away hangs the call up, as Ctrl-C does to a `dial` of its own.
//!
//! Hand-written rather than through the web API: it needs no token, no
//! `[http]` section and no network port, and it answers only on this
//! machine.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tracing::{Instrument, info, info_span, warn};

use crate::call::task::{CallRequest, CallServices, place_call};
use crate::sip::msg::Uri;

/// The socket's name in the spool directory.
pub const SOCKET: &str = "control.sock";

/// Longest request line accepted.
const MAX_LINE: u64 = 16 * 1024;

/// What `dial` asks for.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DialAsk {
    /// The agent's softphone.
    pub agent: String,
    /// The client's phone.
    pub client: String,
    /// The client's id.
    pub client_id: Option<String>,
    /// The callback task.
    pub task_id: Option<String>,
    /// The callback kind (retention).
    pub kind: Option<String>,
    /// Longest conversation, seconds.
    pub max_seconds: Option<u64>,
}

/// How the daemon answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    /// The call ended: whether it succeeded, and the report's JSON line.
    Ended {
        /// Answered and sealed.
        success: bool,
        /// The report, as `dial` prints it.
        report: String,
    },
    /// The call was not placed: why.
    Refused(String),
}

/// The socket of the `serve` whose spool is `spool`.
pub fn socket_path(spool: &Path) -> PathBuf {
    spool.join(SOCKET)
}

/// The listening side, inside `serve`.
pub struct Control {
    path: PathBuf,
    task: JoinHandle<()>,
}

impl Control {
    /// Listens on `spool/control.sock` and places the calls asked for
    /// through `services` until `stop`. A socket left by a `serve` that
    /// died is replaced; one another `serve` answers on is left alone
    /// (`None`).
    pub async fn start(spool: &Path, services: CallServices, stop: watch::Receiver<bool>) -> Option<Control> {
        let path = socket_path(spool);
        if path.exists() {
            if UnixStream::connect(&path).await.is_ok() {
                warn!(path = %path.display(), "another serve answers on this spool's control socket; `dial` will reach it, not this one");
                return None;
            }
            let _ = std::fs::remove_file(&path);
        }
        let listener = match UnixListener::bind(&path) {
            Ok(l) => l,
            Err(e) => {
                warn!(path = %path.display(), error = %e, "no control socket: `huifang dial` runs its own endpoint");
                return None;
            }
        };
        use std::os::unix::fs::PermissionsExt;
        if let Err(e) = std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)) {
            warn!(error = %e, "control socket: mode 0600 not set");
        }
        info!(path = %path.display(), "control socket up (huifang dial)");
        let task = tokio::spawn(accept(listener, services, stop));
        Some(Control { path, task })
    }

    /// Stops listening and removes the socket (calls in progress end with
    /// the app's stop).
    pub fn stop(self) {
        self.task.abort();
        let _ = std::fs::remove_file(&self.path);
    }
}

async fn accept(listener: UnixListener, services: CallServices, mut stop: watch::Receiver<bool>) {
    loop {
        tokio::select! {
            r = stop.changed() => if r.is_err() || *stop.borrow() { return },
            c = listener.accept() => match c {
                Ok((conn, _)) => {
                    let svc = services.clone();
                    let stop = stop.clone();
                    tokio::spawn(async move {
                        if let Err(e) = serve_one(conn, svc, stop).await {
                            warn!(error = %e, "control socket: a request failed");
                        }
                    });
                }
                Err(e) => {
                    warn!(error = %e, "control socket: accept failed");
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
            },
        }
    }
}

/// Parses `dial {json}` into the call to place.
fn request(line: &str) -> Result<(CallRequest, DialAsk), String> {
    let json = line.trim_end().strip_prefix("dial ").ok_or("expected `dial {json}`")?;
    let ask: DialAsk = serde_json::from_str(json).map_err(|e| format!("the request: {e}"))?;
    let agent = Uri::parse(&ask.agent).map_err(|e| format!("agent: {e}"))?;
    let client = Uri::parse(&ask.client).map_err(|e| format!("client: {e}"))?;
    if ask.max_seconds == Some(0) {
        return Err("max_seconds: must be positive".into());
    }
    let req = CallRequest {
        call_id: None,
        progress: None,
        agent,
        client,
        client_id: ask.client_id.clone(),
        task_id: ask.task_id.clone(),
        kind: ask.kind.clone(),
        agent_id: None,
        max_duration: ask.max_seconds.map(Duration::from_secs),
        claimed_at: None,
    };
    Ok((req, ask))
}

async fn serve_one(
    conn: UnixStream,
    svc: CallServices,
    app_stop: watch::Receiver<bool>,
) -> std::io::Result<()> {
    let (read, mut write) = conn.into_split();
    let mut reader = BufReader::new(read);
    let mut line = String::new();
    (&mut reader).take(MAX_LINE).read_line(&mut line).await?;
    let (req, _ask) = match request(&line) {
        Ok(r) => r,
        Err(why) => {
            write.write_all(format!("error {why}\n").as_bytes()).await?;
            return Ok(());
        }
    };
    // the call ends when serve stops, or when the asking `dial` goes away
    let (call_stop, call_stop_rx) = watch::channel(false);
    let watcher = tokio::spawn(async move {
        let mut app_stop = app_stop;
        let mut rest = [0u8; 64];
        loop {
            tokio::select! {
                r = app_stop.changed() => if r.is_err() || *app_stop.borrow() { break },
                n = reader.read(&mut rest) => match n {
                    Ok(0) | Err(_) => break,
                    Ok(_) => {}
                },
            }
        }
        let _ = call_stop.send(true);
    });
    let span = info_span!("dial", via = "control socket");
    let result = place_call(&svc, req, call_stop_rx).instrument(span).await;
    watcher.abort();
    let answer = match result {
        Ok(report) => match serde_json::to_string(&report) {
            Ok(json) => {
                format!("ok {} {json}\n", if report.is_success() { "success" } else { "unsuccessful" })
            }
            Err(e) => format!("error printing the report: {e}\n"),
        },
        Err(e) => format!("error the call could not be traced: {e}\n"),
    };
    // the asker may be gone (it hung up): nothing to say then
    let _ = write.write_all(answer.as_bytes()).await;
    Ok(())
}

/// Asks the `serve` whose spool is `spool` to place `ask`, and waits for
/// the call's end; when `interrupt` completes first (Ctrl-C), the call is
/// hung up and its report still read. `None` when no `serve` listens
/// there (run the call here instead).
pub async fn dial_through(
    spool: &Path,
    ask: &DialAsk,
    interrupt: impl std::future::Future<Output = ()>,
) -> Option<std::io::Result<Answer>> {
    let conn = UnixStream::connect(socket_path(spool)).await.ok()?;
    Some(ask_one(conn, ask, interrupt).await)
}

async fn ask_one(
    conn: UnixStream,
    ask: &DialAsk,
    interrupt: impl std::future::Future<Output = ()>,
) -> std::io::Result<Answer> {
    let (read, mut write) = conn.into_split();
    let json = serde_json::to_string(ask).map_err(std::io::Error::other)?;
    write.write_all(format!("dial {json}\n").as_bytes()).await?;
    let mut reader = BufReader::new(read);
    let mut line = String::new();
    let answer = reader.read_line(&mut line);
    tokio::pin!(answer, interrupt);
    tokio::select! {
        r = &mut answer => { r?; }
        () = &mut interrupt => {
            // the daemon hangs up when we stop talking, then answers
            write.shutdown().await?;
            answer.await?;
        }
    }
    parse_answer(&line).map_err(std::io::Error::other)
}

/// Reads the daemon's answer line.
pub fn parse_answer(line: &str) -> Result<Answer, String> {
    let line = line.trim_end_matches('\n');
    if let Some(why) = line.strip_prefix("error ") {
        return Ok(Answer::Refused(why.to_string()));
    }
    let rest = line.strip_prefix("ok ").ok_or_else(|| {
        if line.is_empty() {
            "serve closed the control socket without an answer".to_string()
        } else {
            format!("not an answer: {line:?}")
        }
    })?;
    let (how, report) = rest.split_once(' ').ok_or("an answer without its report")?;
    let success = match how {
        "success" => true,
        "unsuccessful" => false,
        other => return Err(format!("not an answer: {other:?}")),
    };
    Ok(Answer::Ended { success, report: report.to_string() })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_parse_and_bad_ones_say_why() {
        let (req, _) =
            request(r#"dial {"agent":"sip:a@127.0.0.1","client":"sip:c@127.0.0.1","max_seconds":5}"#)
                .unwrap();
        assert_eq!(req.max_duration, Some(Duration::from_secs(5)));
        for (bad, why) in [
            ("hello", "expected"),
            (r#"dial {"agent":"sip:a@h"}"#, "missing field `client`"),
            (r#"dial {"agent":"x","client":"sip:c@h"}"#, "agent:"),
            (r#"dial {"agent":"sip:a@h","client":"sip:c@h","max_seconds":0}"#, "max_seconds"),
            (r#"dial {"agent":"sip:a@h","client":"sip:c@h","extra":1}"#, "unknown field"),
        ] {
            let e = request(bad).err().unwrap_or_default();
            assert!(e.contains(why), "{bad}: {e}");
        }
    }

    #[test]
    fn answers_parse() {
        assert_eq!(
            parse_answer("ok success {\"a\":1}\n").unwrap(),
            Answer::Ended { success: true, report: "{\"a\":1}".into() }
        );
        assert_eq!(
            parse_answer("ok unsuccessful {}\n").unwrap(),
            Answer::Ended { success: false, report: "{}".into() }
        );
        assert_eq!(parse_answer("error busy\n").unwrap(), Answer::Refused("busy".into()));
        assert!(parse_answer("").is_err());
        assert!(parse_answer("ok maybe {}").is_err());
    }
}
