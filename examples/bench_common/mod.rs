//! Shared by the benchmark examples (`phones`, `media_bench`): CPU time and
//! memory of a process read from `/proc`, and a description of the machine.
//!
//! Not an example itself (Cargo only builds `examples/*.rs` and
//! `examples/*/main.rs`); the examples include it with `#[path]`.

use std::fs;

/// Clock ticks per second of `/proc/*/stat` times (`USER_HZ`). It is 100
/// on every Linux architecture this runs on; `getconf CLK_TCK` would tell.
const USER_HZ: u64 = 100;

/// CPU time (user + system, all threads) of a process, in microseconds;
/// `None` when the process is gone. `pid` `None` is this process.
pub fn cpu_us(pid: Option<u32>) -> Option<u64> {
    let path = match pid {
        Some(p) => format!("/proc/{p}/stat"),
        None => "/proc/self/stat".to_string(),
    };
    let stat = fs::read_to_string(path).ok()?;
    // The command name may contain spaces and parentheses: fields are
    // counted after the last ')'. utime and stime are fields 14 and 15 of
    // the whole line, so the 12th and 13th after the name.
    let rest = &stat[stat.rfind(')')? + 1..];
    let mut fields = rest.split_whitespace().skip(11);
    let utime: u64 = fields.next()?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    Some((utime + stime) * 1_000_000 / USER_HZ)
}

/// A `kB` line of `/proc/<pid>/status` (`VmRSS`, `VmHWM`), in KiB.
pub fn status_kib(pid: Option<u32>, key: &str) -> Option<u64> {
    let path = match pid {
        Some(p) => format!("/proc/{p}/status"),
        None => "/proc/self/status".to_string(),
    };
    let status = fs::read_to_string(path).ok()?;
    status.lines().find_map(|l| {
        let v = l.strip_prefix(key)?.strip_prefix(':')?;
        v.trim().trim_end_matches("kB").trim().parse().ok()
    })
}

/// Online CPUs and the CPU model, for the report.
pub fn machine() -> (usize, String) {
    let nproc = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
    let model = fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|c| {
            c.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split_once(':'))
                .map(|(_, m)| m.trim().to_string())
        })
        .unwrap_or_else(|| "unknown".into());
    (nproc, model)
}

/// The 1-minute load average: how busy the machine was besides us.
pub fn loadavg() -> Option<f64> {
    fs::read_to_string("/proc/loadavg").ok()?.split_whitespace().next()?.parse().ok()
}

/// The `p` quantile (0..=1) of `sorted` (NaN when empty).
#[allow(dead_code)] // not every benchmark reports quantiles
pub fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}
