//! `/metrics` in Prometheus text format: the web door's own counters, and
//! gauges read from the database at scrape time (so any instance answers
//! for the whole call center).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Mutex;

use axum::extract::{MatchedPath, Request, State};
use axum::middleware::Next;
use axum::response::Response;
use chrono::Utc;

use super::WebState;
use crate::ops::OpsError;

/// Counters kept in memory by this instance.
#[derive(Default)]
pub struct Metrics {
    http: Mutex<BTreeMap<(String, String, u16), u64>>,
    websockets: std::sync::atomic::AtomicI64,
}

impl Metrics {
    /// A WebSocket feed opened (`+1`) or closed (`-1`).
    pub fn websocket(&self, delta: i64) {
        self.websockets.fetch_add(delta, std::sync::atomic::Ordering::Relaxed);
    }

    /// WebSocket feeds open now.
    pub fn websockets(&self) -> i64 {
        self.websockets.load(std::sync::atomic::Ordering::Relaxed)
    }
}

/// Middleware: counts each request by method, route and status.
pub async fn count(State(s): State<WebState>, req: Request, next: Next) -> Response {
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map(|m| m.as_str().to_string())
        .unwrap_or_else(|| "unmatched".into());
    let method = req.method().as_str().to_string();
    let r = next.run(req).await;
    let key = (method, route, r.status().as_u16());
    *s.metrics.http.lock().expect("metrics lock").entry(key).or_default() += 1;
    r
}

fn esc(s: &str) -> String {
    s.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}

/// The exposition text.
pub async fn render(s: &WebState) -> Result<String, OpsError> {
    let mut out = String::new();
    let now = Utc::now();
    let calls = s.store.calls_in_progress().await?;
    let _ = writeln!(out, "# HELP huifang_calls_in_progress Calls placed by any instance and not ended.");
    let _ = writeln!(out, "# TYPE huifang_calls_in_progress gauge");
    let _ = writeln!(out, "huifang_calls_in_progress {}", calls.len());

    let (recording, queued) = s.store.recordings_in_flight().await?;
    let _ = writeln!(
        out,
        "# HELP huifang_recordings Recordings being written, and sealed ones waiting for the archive."
    );
    let _ = writeln!(out, "# TYPE huifang_recordings gauge");
    let _ = writeln!(out, "huifang_recordings{{state=\"recording\"}} {recording}");
    let _ = writeln!(out, "huifang_recordings{{state=\"queued\"}} {queued}");

    let q = s.store.queue_depth(now, now).await?;
    let _ = writeln!(out, "# HELP huifang_dialer_queue Open callback tasks by what they wait for.");
    let _ = writeln!(out, "# TYPE huifang_dialer_queue gauge");
    for (state, n) in [
        ("ready", q.ready),
        ("waiting_retry", q.waiting_retry),
        ("in_call", q.in_call),
        ("awaiting_record", q.awaiting_record),
    ] {
        let _ = writeln!(out, "huifang_dialer_queue{{state=\"{state}\"}} {n}");
    }

    let mut agents: BTreeMap<&str, u64> = BTreeMap::new();
    for a in s.store.agent_sessions().await? {
        *agents.entry(a.presence(now).as_str()).or_default() += 1;
    }
    let _ = writeln!(out, "# HELP huifang_agents Agents by what they are doing.");
    let _ = writeln!(out, "# TYPE huifang_agents gauge");
    for (state, n) in agents {
        let _ = writeln!(out, "huifang_agents{{state=\"{state}\"}} {n}");
    }

    let _ = writeln!(out, "# HELP huifang_http_requests_total HTTP requests answered by this instance.");
    let _ = writeln!(out, "# TYPE huifang_http_requests_total counter");
    for ((method, route, status), n) in s.metrics.http.lock().expect("metrics lock").iter() {
        let _ = writeln!(
            out,
            "huifang_http_requests_total{{method=\"{method}\",route=\"{}\",status=\"{status}\"}} {n}",
            esc(route)
        );
    }
    let _ = writeln!(out, "# HELP huifang_websocket_connections WebSocket feeds open on this instance.");
    let _ = writeln!(out, "# TYPE huifang_websocket_connections gauge");
    let _ = writeln!(out, "huifang_websocket_connections{{feed=\"agent\"}} {}", s.metrics.websockets());
    crate::metrics::METRICS.render(&mut out);
    let _ = writeln!(out, "# HELP huifang_plays_pending Plays not yet written to the audit log.");
    let _ = writeln!(out, "# TYPE huifang_plays_pending gauge");
    let _ = writeln!(out, "huifang_plays_pending {}", s.plays.pending());
    Ok(out)
}
