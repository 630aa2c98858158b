//! This instance's counters for `/metrics`: calls ended by outcome, RTP
//! packets lost and late, recordings archived and archive errors, and the
//! hang-up → verified latency histogram.
//!
//! One process-wide registry ([`METRICS`]), written where the events
//! happen — the call task at hang-up, the uploader after each upload —
//! never per packet: a call adds its RTP counters once, when its
//! recording is sealed. Prometheus adds the instances up.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

/// Upper bounds (seconds) of the hang-up → verified histogram's buckets.
pub const LATENCY_BUCKETS: [f64; 10] = [0.25, 0.5, 1.0, 2.0, 3.0, 5.0, 10.0, 30.0, 60.0, 300.0];

/// The counters.
pub struct Registry {
    calls: Mutex<BTreeMap<String, u64>>,
    rtp: [AtomicU64; 6],
    archived: AtomicU64,
    archive_errors: AtomicU64,
    registrar_auth_failures: AtomicU64,
    latency_buckets: [AtomicU64; LATENCY_BUCKETS.len()],
    latency_count: AtomicU64,
    latency_sum_ms: AtomicU64,
}

/// The process's registry.
pub static METRICS: Registry = Registry::new();

/// A side's RTP counters of one call.
#[derive(Debug, Clone, Copy, Default)]
pub struct Rtp {
    /// Packets received.
    pub packets: u64,
    /// Packets lost.
    pub lost: u64,
    /// Packets too late for the timeline.
    pub late: u64,
}

impl Registry {
    const fn new() -> Registry {
        Registry {
            calls: Mutex::new(BTreeMap::new()),
            rtp: [const { AtomicU64::new(0) }; 6],
            archived: AtomicU64::new(0),
            archive_errors: AtomicU64::new(0),
            registrar_auth_failures: AtomicU64::new(0),
            latency_buckets: [const { AtomicU64::new(0) }; LATENCY_BUCKETS.len()],
            latency_count: AtomicU64::new(0),
            latency_sum_ms: AtomicU64::new(0),
        }
    }

    /// A call ended with `outcome`.
    pub fn call_ended(&self, outcome: &str) {
        *self.calls.lock().expect("metrics lock").entry(outcome.to_string()).or_default() += 1;
    }

    /// A call's recording was sealed with these per-side counters.
    pub fn rtp(&self, agent: Rtp, client: Rtp) {
        for (i, v) in [agent.packets, agent.lost, agent.late, client.packets, client.lost, client.late]
            .into_iter()
            .enumerate()
        {
            self.rtp[i].fetch_add(v, Ordering::Relaxed);
        }
    }

    /// A recording was archived and verified, `secs` after its call hung up.
    pub fn archived(&self, secs: Option<f64>) {
        self.archived.fetch_add(1, Ordering::Relaxed);
        if let Some(s) = secs.filter(|s| s.is_finite() && *s >= 0.0) {
            for (i, le) in LATENCY_BUCKETS.iter().enumerate() {
                if s <= *le {
                    self.latency_buckets[i].fetch_add(1, Ordering::Relaxed);
                }
            }
            self.latency_count.fetch_add(1, Ordering::Relaxed);
            self.latency_sum_ms.fetch_add((s * 1000.0) as u64, Ordering::Relaxed);
        }
    }

    /// A REGISTER's credentials were wrong (or named an unknown user).
    pub fn registrar_auth_failed(&self) {
        self.registrar_auth_failures.fetch_add(1, Ordering::Relaxed);
    }

    /// An upload failed.
    pub fn archive_error(&self) {
        self.archive_errors.fetch_add(1, Ordering::Relaxed);
    }

    /// The counters in Prometheus text format.
    pub fn render(&self, out: &mut String) {
        let _ = writeln!(out, "# HELP huifang_calls_ended_total Calls this instance placed, by outcome.");
        let _ = writeln!(out, "# TYPE huifang_calls_ended_total counter");
        for (outcome, n) in self.calls.lock().expect("metrics lock").iter() {
            let _ = writeln!(out, "huifang_calls_ended_total{{outcome=\"{outcome}\"}} {n}");
        }
        let _ = writeln!(
            out,
            "# HELP huifang_rtp_packets_total RTP packets of recorded calls, by side and fate."
        );
        let _ = writeln!(out, "# TYPE huifang_rtp_packets_total counter");
        let names = [
            ("agent", "received"),
            ("agent", "lost"),
            ("agent", "late"),
            ("client", "received"),
            ("client", "lost"),
            ("client", "late"),
        ];
        for ((side, fate), v) in names.iter().zip(&self.rtp) {
            let _ = writeln!(
                out,
                "huifang_rtp_packets_total{{side=\"{side}\",fate=\"{fate}\"}} {}",
                v.load(Ordering::Relaxed)
            );
        }
        let _ = writeln!(
            out,
            "# HELP huifang_registrar_auth_failures_total REGISTERs with a wrong password or an unknown user."
        );
        let _ = writeln!(out, "# TYPE huifang_registrar_auth_failures_total counter");
        let _ = writeln!(
            out,
            "huifang_registrar_auth_failures_total {}",
            self.registrar_auth_failures.load(Ordering::Relaxed)
        );
        let _ =
            writeln!(out, "# HELP huifang_archived_total Recordings this instance archived and verified.");
        let _ = writeln!(out, "# TYPE huifang_archived_total counter");
        let _ = writeln!(out, "huifang_archived_total {}", self.archived.load(Ordering::Relaxed));
        let _ = writeln!(out, "# HELP huifang_archive_errors_total Failed uploads (each is retried).");
        let _ = writeln!(out, "# TYPE huifang_archive_errors_total counter");
        let _ = writeln!(out, "huifang_archive_errors_total {}", self.archive_errors.load(Ordering::Relaxed));
        let _ = writeln!(
            out,
            "# HELP huifang_hangup_to_verified_seconds From a call's hang-up to its recording verified in the archive."
        );
        let _ = writeln!(out, "# TYPE huifang_hangup_to_verified_seconds histogram");
        for (le, n) in LATENCY_BUCKETS.iter().zip(&self.latency_buckets) {
            let _ = writeln!(
                out,
                "huifang_hangup_to_verified_seconds_bucket{{le=\"{le}\"}} {}",
                n.load(Ordering::Relaxed)
            );
        }
        let count = self.latency_count.load(Ordering::Relaxed);
        let _ = writeln!(out, "huifang_hangup_to_verified_seconds_bucket{{le=\"+Inf\"}} {count}");
        let sum = self.latency_sum_ms.load(Ordering::Relaxed) as f64 / 1000.0;
        let _ = writeln!(out, "huifang_hangup_to_verified_seconds_sum {sum}");
        let _ = writeln!(out, "huifang_hangup_to_verified_seconds_count {count}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_histogram_is_cumulative_and_renders_as_prometheus_text() {
        let r = Registry::new();
        r.archived(Some(0.2));
        r.archived(Some(1.5));
        r.archived(Some(400.0));
        r.archived(None);
        r.call_ended("completed");
        r.call_ended("completed");
        r.call_ended("no-answer");
        r.rtp(Rtp { packets: 100, lost: 2, late: 1 }, Rtp { packets: 90, lost: 0, late: 0 });
        let mut text = String::new();
        r.render(&mut text);
        for line in [
            "huifang_hangup_to_verified_seconds_bucket{le=\"0.25\"} 1",
            "huifang_hangup_to_verified_seconds_bucket{le=\"2\"} 2",
            "huifang_hangup_to_verified_seconds_bucket{le=\"300\"} 2",
            "huifang_hangup_to_verified_seconds_bucket{le=\"+Inf\"} 3",
            "huifang_hangup_to_verified_seconds_count 3",
            "huifang_archived_total 4",
            "huifang_calls_ended_total{outcome=\"completed\"} 2",
            "huifang_calls_ended_total{outcome=\"no-answer\"} 1",
            "huifang_rtp_packets_total{side=\"agent\",fate=\"lost\"} 2",
            "huifang_rtp_packets_total{side=\"client\",fate=\"received\"} 90",
        ] {
            assert!(text.lines().any(|l| l == line), "{line} missing in\n{text}");
        }
    }
}
