//! Spot-checks (抽检) of callback records: each month's draw (its seed and
//! percentage, `spot_check_draws`) and the checks made (`spot_checks`);
//! schema `migrations/*/20261208000000_spot_checks.sql`. Which records a
//! draw selects is computed, not stored ([`crate::ops::spotcheck`]): it
//! depends on nothing but the seed, the records' ids and the percentage.
//! Both tables are written once; the schema refuses changes.

use chrono::{DateTime, NaiveDate, Utc};
use uuid::Uuid;

use super::callbacks::{DbRow, V, ot, t};
use super::error::query;
use super::{ClientCall, Store, StoreError, ms};

/// A month's draw.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct SpotDraw {
    /// `YYYY-MM`: the records called on a day of this month.
    pub month: String,
    /// 64 hex digits (see [`crate::domain::sample`]).
    pub seed: String,
    /// The share of the month's records drawn, in percent.
    pub percent: i64,
    /// When it was drawn.
    #[serde(serialize_with = "super::audit::z_time")]
    pub drawn_at: DateTime<Utc>,
    /// Who opened the month's queue first (a login).
    pub drawn_by: String,
}

/// One spot-check made.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct SpotCheckRow {
    /// The record checked.
    pub record_id: Uuid,
    /// The draw's month.
    pub month: String,
    /// Who checked it (a staff id).
    pub checker_id: String,
    /// `pass` or `fail`.
    pub verdict: String,
    /// What the checker wrote.
    pub note: Option<String>,
    /// When.
    #[serde(serialize_with = "super::audit::z_time")]
    pub checked_at: DateTime<Utc>,
}

fn draw_row(r: &DbRow) -> Result<SpotDraw, sqlx::Error> {
    Ok(SpotDraw {
        month: r.text("month")?,
        seed: r.text("seed")?,
        percent: r.int("percent")?,
        drawn_at: r.time("drawn_at")?,
        drawn_by: r.text("drawn_by")?,
    })
}

fn check_row(r: &DbRow) -> Result<SpotCheckRow, sqlx::Error> {
    Ok(SpotCheckRow {
        record_id: r.id("record_id")?,
        month: r.text("month")?,
        checker_id: r.text("checker_id")?,
        verdict: r.text("verdict")?,
        note: r.opt_text("note")?,
        checked_at: r.time("checked_at")?,
    })
}

impl Store {
    /// The draw of `month`, if one was made.
    pub async fn spot_draw(&self, month: &str) -> Result<Option<SpotDraw>, StoreError> {
        let rows = self
            .read(
                "SELECT month, seed, percent, drawn_at, drawn_by FROM spot_check_draws WHERE month = $1",
                vec![t(month)],
            )
            .await
            .map_err(query("spot_draw"))?;
        rows.first().map(draw_row).transpose().map_err(query("spot_draw"))
    }

    /// Stores `d` unless its month was drawn already (by another instance
    /// a moment ago); returns the month's draw as stored.
    pub async fn draw_spot_checks(&self, d: &SpotDraw) -> Result<SpotDraw, StoreError> {
        self.write(
            "INSERT INTO spot_check_draws (month, seed, percent, drawn_at, drawn_by) VALUES ($1, $2, $3, $4, $5) \
             ON CONFLICT (month) DO NOTHING",
            vec![t(&d.month), t(&d.seed), V::Int(Some(d.percent)), V::Time(Some(ms(d.drawn_at))), t(&d.drawn_by)],
        )
        .await
        .map_err(query("draw_spot_checks"))?;
        self.spot_draw(&d.month)
            .await?
            .ok_or(StoreError::Missing { what: "spot-check draw", key: d.month.clone() })
    }

    /// The ids of the records called on a day in `[from, to]` whose
    /// outcome was `reached`: the population a month's draw selects from.
    pub async fn reached_record_ids(&self, from: NaiveDate, to: NaiveDate) -> Result<Vec<Uuid>, StoreError> {
        let rows = self
            .read(
                "SELECT id FROM callback_records WHERE called_on >= $1 AND called_on <= $2 AND outcome = 'reached'",
                vec![V::Date(Some(from)), V::Date(Some(to))],
            )
            .await
            .map_err(query("reached_record_ids"))?;
        rows.iter().map(|r| r.id("id")).collect::<Result<_, _>>().map_err(query("reached_record_ids"))
    }

    /// The checks made on `month`'s draw.
    pub async fn spot_checks(&self, month: &str) -> Result<Vec<SpotCheckRow>, StoreError> {
        let rows = self
            .read(
                "SELECT record_id, month, checker_id, verdict, note, checked_at FROM spot_checks WHERE month = $1",
                vec![t(month)],
            )
            .await
            .map_err(query("spot_checks"))?;
        rows.iter().map(check_row).collect::<Result<_, _>>().map_err(query("spot_checks"))
    }

    /// The check of record `record`, if one was made.
    pub async fn spot_check_of(&self, record: Uuid) -> Result<Option<SpotCheckRow>, StoreError> {
        let rows = self
            .read(
                "SELECT record_id, month, checker_id, verdict, note, checked_at FROM spot_checks WHERE record_id = $1",
                vec![V::Id(record)],
            )
            .await
            .map_err(query("spot_check_of"))?;
        rows.first().map(check_row).transpose().map_err(query("spot_check_of"))
    }

    /// Stores a check; [`StoreError::Refused`] when the record was checked
    /// already (a check is never changed).
    pub async fn add_spot_check(&self, c: &SpotCheckRow) -> Result<(), StoreError> {
        let n = self
            .write(
                "INSERT INTO spot_checks (record_id, month, checker_id, verdict, note, checked_at) \
                 VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (record_id) DO NOTHING",
                vec![
                    V::Id(c.record_id),
                    t(&c.month),
                    t(&c.checker_id),
                    t(&c.verdict),
                    ot(c.note.as_deref()),
                    V::Time(Some(ms(c.checked_at))),
                ],
            )
            .await
            .map_err(query("add_spot_check"))?;
        if n == 0 {
            return Err(StoreError::Refused(format!("record {} was spot-checked already", c.record_id)));
        }
        Ok(())
    }

    /// The calls with these ids, with their recordings' columns.
    pub async fn calls_by_id(&self, ids: &[Uuid]) -> Result<Vec<ClientCall>, StoreError> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let marks: Vec<String> = (1..=ids.len()).map(|i| format!("${i}")).collect();
        let sql = format!("{} WHERE c.id IN ({})", super::audit::CALL_COLUMNS, marks.join(", "));
        let rows =
            self.read(&sql, ids.iter().map(|id| V::Id(*id)).collect()).await.map_err(query("calls_by_id"))?;
        rows.iter().map(super::audit::client_call).collect::<Result<_, _>>().map_err(query("calls_by_id"))
    }
}
