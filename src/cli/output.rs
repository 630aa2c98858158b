//! Output shared by the listing and report commands: one table, CSV or
//! JSON writer, and the day arguments (`YYYY-MM-DD`, default today in
//! China, UTC+8, where the exchanges are).

use std::io::Write;

use anyhow::Context;
use chrono::NaiveDate;
use serde_json::Value;

use super::Format;

/// An operation's error as the CLI says it: a field named by the
/// operation (`status`, `by`) is named as its flag (`--status`, `--by`).
pub(crate) fn flagged(e: crate::ops::OpsError) -> anyhow::Error {
    match e {
        crate::ops::OpsError::Invalid { field, reason } if field.starts_with("answers.") => {
            anyhow::anyhow!("--answer {}: {reason}", &field["answers.".len()..])
        }
        crate::ops::OpsError::Invalid { field, reason } if !field.starts_with('-') => {
            anyhow::anyhow!("--{}: {reason}", field.replace('_', "-"))
        }
        e => e.into(),
    }
}

/// Today in China (UTC+8).
pub(crate) fn today() -> NaiveDate {
    crate::ops::today()
}

/// A `--flag YYYY-MM-DD` value, or today.
pub(crate) fn day_or_today(s: Option<&str>, flag: &str) -> anyhow::Result<NaiveDate> {
    match s {
        None => Ok(today()),
        Some(s) => NaiveDate::parse_from_str(s, "%Y-%m-%d")
            .with_context(|| format!("{flag}: {s:?} is not a date (YYYY-MM-DD)")),
    }
}

/// Prints rows: `headers` name the columns of `rows` (table and CSV);
/// `json` is what `--format json` prints.
pub(crate) fn print(
    format: Format,
    headers: &[&str],
    rows: &[Vec<String>],
    json: &Value,
) -> anyhow::Result<()> {
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    match format {
        Format::Json => writeln!(out, "{}", serde_json::to_string_pretty(json)?)?,
        Format::Csv => {
            let mut w = csv::Writer::from_writer(out);
            w.write_record(headers)?;
            for r in rows {
                w.write_record(r)?;
            }
            w.flush()?;
        }
        Format::Table => {
            let mut widths: Vec<usize> = headers.iter().map(|h| width(h)).collect();
            for r in rows {
                for (i, c) in r.iter().enumerate() {
                    if let Some(w) = widths.get_mut(i) {
                        *w = (*w).max(width(c));
                    }
                }
            }
            let line = |cells: Vec<&str>| -> String {
                let mut s = String::new();
                for (i, c) in cells.iter().enumerate() {
                    if i > 0 {
                        s.push_str("  ");
                    }
                    s.push_str(c);
                    if i + 1 < cells.len() {
                        s.push_str(&" ".repeat(widths[i].saturating_sub(width(c))));
                    }
                }
                s
            };
            writeln!(out, "{}", line(headers.to_vec()))?;
            for r in rows {
                writeln!(out, "{}", line(r.iter().map(String::as_str).collect()))?;
            }
        }
    }
    Ok(())
}

/// Display width: CJK characters take two columns.
fn width(s: &str) -> usize {
    s.chars().map(|c| if (c as u32) >= 0x1100 { 2 } else { 1 }).sum()
}
