//! The trading calendar: which days are business days.
//!
//! Every deadline of the rules ("within 5 business days", "answer within
//! 2 business days", "upload in the first 10 business days of the month")
//! counts trading days of the mainland exchanges: Monday to Friday, minus
//! the closures of a holiday file (`config/holidays/cn-exchanges.toml`).
//! Weekends are always closed, the State Council's make-up working
//! Saturdays included (the exchanges do not trade on them).
//!
//! The calendar is data, never code: [`Calendar::from_toml`] reads the
//! file's text (the caller reads the file). A year the file does not list
//! cannot be counted in: every function that would have to look at a day
//! of such a year returns [`CalendarError::NotCovered`] instead of
//! guessing. Years marked `provisional` count like the others; callers
//! warn about them ([`Calendar::is_provisional`]).
//!
//! Counting conventions, used by every rule:
//! - [`add_business_days(d, n)`](Calendar::add_business_days) is the n-th
//!   business day *after* `d` (`d` itself never counts); for `n = 0` it is
//!   `d` when `d` is a business day, else the next one.
//! - [`business_days_between(a, b)`](Calendar::business_days_between)
//!   counts the business days in `(a, b]`, negative when `b < a`.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{Datelike, NaiveDate, Weekday};
use serde::Deserialize;
use thiserror::Error;

/// The calendar cannot be built or cannot answer.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum CalendarError {
    /// The holiday file is not valid TOML or has an unknown key.
    #[error("{key}: {reason}")]
    Invalid {
        /// The key at fault (`years.2026.closed[3]`), or `-` for the file.
        key: String,
        /// Why.
        reason: String,
    },
    /// A day of a year the holiday file does not list was needed.
    #[error("the trading calendar does not cover {year}: add the year to the holiday file")]
    NotCovered {
        /// The year.
        year: i32,
    },
}

/// How sure the dates of a year are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum YearStatus {
    /// From the State Council's notice and the exchanges' announcement.
    Official,
    /// An estimate, to be replaced when the notice is published.
    Provisional,
}

/// One year of the holiday file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Year {
    /// How sure the dates are.
    pub status: YearStatus,
    /// Where they come from.
    pub source: String,
}

/// Business days: weekdays that are not exchange closures.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Calendar {
    years: BTreeMap<i32, Year>,
    closed: BTreeSet<NaiveDate>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    years: BTreeMap<String, YearEntry>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct YearEntry {
    status: String,
    #[serde(default)]
    source: String,
    closed: Vec<String>,
}

/// Longest stretch of closed weekdays the calendar accepts when searching
/// (no exchange closes for months; guards against a runaway search).
const MAX_SEARCH_DAYS: u32 = 3 * 366;

impl Calendar {
    /// Parses the text of a holiday file (format in the shipped
    /// `config/holidays/cn-exchanges.toml`). Errors name the key and the
    /// reason; the caller adds the file name.
    pub fn from_toml(text: &str) -> Result<Calendar, CalendarError> {
        let invalid = |key: String, reason: String| CalendarError::Invalid { key, reason };
        let de = toml::Deserializer::parse(text).map_err(|e| invalid("-".into(), toml_reason(text, &e)))?;
        let file: File = serde_path_to_error::deserialize(de).map_err(|e| {
            let key = e.path().to_string();
            invalid(if key == "." { "-".into() } else { key }, toml_reason(text, e.inner()))
        })?;
        let mut cal = Calendar { years: BTreeMap::new(), closed: BTreeSet::new() };
        for (name, entry) in file.years {
            let key = format!("years.{name}");
            let year: i32 = name
                .parse()
                .ok()
                .filter(|y| (1990..=2200).contains(y))
                .ok_or_else(|| invalid(key.clone(), format!("{name:?} is not a year (1990..=2200)")))?;
            let status = match entry.status.as_str() {
                "official" => YearStatus::Official,
                "provisional" => YearStatus::Provisional,
                other => {
                    return Err(invalid(
                        format!("{key}.status"),
                        format!("{other:?} is not \"official\" or \"provisional\""),
                    ));
                }
            };
            for (i, text) in entry.closed.iter().enumerate() {
                let k = format!("{key}.closed[{i}]");
                let d = NaiveDate::parse_from_str(text, "%Y-%m-%d")
                    .map_err(|_| invalid(k.clone(), format!("{text:?} is not a date (YYYY-MM-DD)")))?;
                if d.year() != year {
                    return Err(invalid(k, format!("{text} is not in {year}")));
                }
                if is_weekend(d) {
                    return Err(invalid(
                        k,
                        format!(
                            "{text} is a {:?}: weekends are always closed, list weekdays only",
                            d.weekday()
                        ),
                    ));
                }
                if !cal.closed.insert(d) {
                    return Err(invalid(k, format!("{text} is listed twice")));
                }
            }
            cal.years.insert(year, Year { status, source: entry.source });
        }
        if cal.years.is_empty() {
            return Err(invalid("years".into(), "lists no year".into()));
        }
        Ok(cal)
    }

    /// The years the calendar covers, with their status.
    pub fn years(&self) -> &BTreeMap<i32, Year> {
        &self.years
    }

    /// Whether `year` is listed as provisional (its dates are estimates).
    pub fn is_provisional(&self, year: i32) -> bool {
        self.years.get(&year).is_some_and(|y| y.status == YearStatus::Provisional)
    }

    /// Whether `d` is a trading day. A day of a year not covered is
    /// [`CalendarError::NotCovered`].
    pub fn is_business_day(&self, d: NaiveDate) -> Result<bool, CalendarError> {
        if !self.years.contains_key(&d.year()) {
            return Err(CalendarError::NotCovered { year: d.year() });
        }
        Ok(!is_weekend(d) && !self.closed.contains(&d))
    }

    /// The n-th business day after `d` (`d` itself never counts); for
    /// `n = 0`, `d` if it is a business day, else the next one.
    pub fn add_business_days(&self, d: NaiveDate, n: u32) -> Result<NaiveDate, CalendarError> {
        if n == 0 {
            return self.on_or_after(d);
        }
        let mut day = d;
        let mut left = n;
        let mut steps = 0u32;
        while left > 0 {
            day = day.succ_opt().ok_or(CalendarError::NotCovered { year: d.year() + 1 })?;
            if self.is_business_day(day)? {
                left -= 1;
            }
            steps += 1;
            if steps > MAX_SEARCH_DAYS + n.saturating_mul(7) {
                return Err(CalendarError::NotCovered { year: day.year() });
            }
        }
        Ok(day)
    }

    /// `d` if it is a business day, else the next business day.
    pub fn on_or_after(&self, d: NaiveDate) -> Result<NaiveDate, CalendarError> {
        let mut day = d;
        for _ in 0..MAX_SEARCH_DAYS {
            if self.is_business_day(day)? {
                return Ok(day);
            }
            day = day.succ_opt().ok_or(CalendarError::NotCovered { year: d.year() + 1 })?;
        }
        Err(CalendarError::NotCovered { year: day.year() })
    }

    /// `d` if it is a business day, else the previous business day.
    pub fn on_or_before(&self, d: NaiveDate) -> Result<NaiveDate, CalendarError> {
        let mut day = d;
        for _ in 0..MAX_SEARCH_DAYS {
            if self.is_business_day(day)? {
                return Ok(day);
            }
            day = day.pred_opt().ok_or(CalendarError::NotCovered { year: d.year() - 1 })?;
        }
        Err(CalendarError::NotCovered { year: day.year() })
    }

    /// Business days in `(from, to]`; negative (the count of `(to, from]`)
    /// when `to < from`.
    pub fn business_days_between(&self, from: NaiveDate, to: NaiveDate) -> Result<i64, CalendarError> {
        if to < from {
            return self.business_days_between(to, from).map(|n| -n);
        }
        let mut n = 0;
        let mut day = from;
        while day < to {
            day = day.succ_opt().ok_or(CalendarError::NotCovered { year: to.year() })?;
            if self.is_business_day(day)? {
                n += 1;
            }
        }
        Ok(n)
    }

    /// The n-th business day (1-based) of a month, e.g. the upload deadline
    /// "within the first 10 business days of the month".
    pub fn nth_business_day_of_month(
        &self,
        year: i32,
        month: u32,
        n: u32,
    ) -> Result<NaiveDate, CalendarError> {
        let first = NaiveDate::from_ymd_opt(year, month, 1).ok_or(CalendarError::NotCovered { year })?;
        let start = self.on_or_after(first)?;
        if n <= 1 {
            return Ok(start);
        }
        self.add_business_days(start, n - 1)
    }
}

fn is_weekend(d: NaiveDate) -> bool {
    matches!(d.weekday(), Weekday::Sat | Weekday::Sun)
}

/// A toml error as "line N: message".
fn toml_reason(text: &str, e: &toml::de::Error) -> String {
    match e.span() {
        Some(span) => {
            let line = text[..span.start.min(text.len())].matches('\n').count() + 1;
            format!("line {line}: {}", e.message().trim())
        }
        None => e.message().trim().to_string(),
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// The shipped calendar.
    pub(crate) fn shipped() -> Calendar {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/config/holidays/cn-exchanges.toml");
        Calendar::from_toml(&std::fs::read_to_string(path).unwrap()).unwrap()
    }

    fn d(s: &str) -> NaiveDate {
        NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
    }

    #[test]
    fn shipped_file_parses_2026_official_2027_provisional() {
        let cal = shipped();
        assert_eq!(cal.years()[&2026].status, YearStatus::Official);
        assert!(cal.is_provisional(2027));
        assert!(!cal.is_provisional(2026));
    }

    #[test]
    fn business_days_table() {
        let cal = shipped();
        // (from, n, expected): weekends, Spring Festival, National Day, New Year
        let cases = [
            ("2026-11-27", 0, "2026-11-27"), // a Friday is a business day
            ("2026-11-28", 0, "2026-11-30"), // Saturday → Monday
            ("2026-11-27", 1, "2026-11-30"), // Friday + 1 → Monday
            ("2026-11-23", 5, "2026-11-30"), // Monday + 5 → next Monday
            ("2026-02-12", 1, "2026-02-13"), // Thursday → Friday before the festival
            ("2026-02-13", 1, "2026-02-24"), // Friday + 1 jumps the whole Spring Festival
            ("2026-02-13", 5, "2026-03-02"),
            ("2026-02-14", 0, "2026-02-24"), // the make-up Saturday is not a trading day
            ("2026-09-24", 1, "2026-09-28"), // Mid-Autumn Friday
            ("2026-09-30", 1, "2026-10-08"), // National Day
            ("2026-09-30", 5, "2026-10-14"),
            ("2026-10-10", 0, "2026-10-12"), // make-up Saturday closed
            ("2026-12-31", 1, "2027-01-04"), // into the provisional year: 1 Jan closed
            ("2026-04-03", 1, "2026-04-07"), // Qingming Monday
            ("2026-04-30", 2, "2026-05-07"), // Labour Day
        ];
        for (from, n, want) in cases {
            assert_eq!(cal.add_business_days(d(from), n).unwrap(), d(want), "{from} + {n}");
        }
    }

    #[test]
    fn counting_between_is_the_inverse_of_adding() {
        let cal = shipped();
        let start = d("2026-01-01");
        for n in 0..200 {
            let end = cal.add_business_days(start, n).unwrap();
            if n > 0 {
                assert_eq!(cal.business_days_between(start, end).unwrap(), i64::from(n), "{end}");
                assert_eq!(cal.business_days_between(end, start).unwrap(), -i64::from(n));
            }
        }
    }

    #[test]
    fn nth_business_day_of_month() {
        let cal = shipped();
        // October 2026: 1–7 closed, so the 10th business day is the 21st
        assert_eq!(cal.nth_business_day_of_month(2026, 10, 1).unwrap(), d("2026-10-08"));
        assert_eq!(cal.nth_business_day_of_month(2026, 10, 10).unwrap(), d("2026-10-21"));
        assert_eq!(cal.nth_business_day_of_month(2026, 12, 10).unwrap(), d("2026-12-14"));
    }

    #[test]
    fn uncovered_year_is_an_error_not_a_guess() {
        let cal = shipped();
        assert_eq!(cal.is_business_day(d("2028-01-03")), Err(CalendarError::NotCovered { year: 2028 }));
        assert_eq!(cal.add_business_days(d("2027-12-30"), 3), Err(CalendarError::NotCovered { year: 2028 }));
        assert!(cal.is_business_day(d("2025-12-31")).is_err());
    }

    #[test]
    fn bad_files_name_key_and_reason() {
        let cases = [
            ("[years.2026]\nstatus = \"official\"\nclosed = [\"2026-13-01\"]\n", "years.2026.closed[0]"),
            ("[years.2026]\nstatus = \"official\"\nclosed = [\"2027-01-04\"]\n", "years.2026.closed[0]"),
            ("[years.2026]\nstatus = \"official\"\nclosed = [\"2026-11-28\"]\n", "years.2026.closed[0]"),
            (
                "[years.2026]\nstatus = \"official\"\nclosed = [\"2026-11-27\", \"2026-11-27\"]\n",
                "years.2026.closed[1]",
            ),
            ("[years.2026]\nstatus = \"maybe\"\nclosed = []\n", "years.2026.status"),
            ("[years.2026]\nstatus = \"official\"\nclosed = []\nextra = 1\n", "years.2026"),
            ("[years.MMXXVI]\nstatus = \"official\"\nclosed = []\n", "years.MMXXVI"),
            ("years = {}\n", "years"),
        ];
        for (text, key) in cases {
            match Calendar::from_toml(text) {
                Err(CalendarError::Invalid { key: k, reason }) => {
                    assert!(k.starts_with(key), "{text}: key {k}, want {key} ({reason})")
                }
                other => panic!("{text}: {other:?}"),
            }
        }
    }
}
