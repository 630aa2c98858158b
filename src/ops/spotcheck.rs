//! Spot-checks (抽检): each month, a share of the callback records whose
//! client was reached is drawn for a second look — the record and its
//! recording — by someone who did not make it (相互制衡).
//!
//! The draw is reproducible ([`crate::domain::sample`]): the first time
//! anyone opens a month's queue, a random seed is drawn and stored with the
//! percentage then in force (`[records] spot_check_percent`); the sample is
//! then the records of that month selected by the seed alone, whoever asks
//! and whenever. A record joins or stays in the sample by its own score, so
//! records submitted later in the month do not change earlier choices. A
//! supervisor sees the sampled records of their branches, compliance all.
//! Each check (`pass` or `fail`, with a note) is stored once and never
//! changed; a record checked stays in the queue as checked even should the
//! minimum-count top-up of a growing month no longer select it.

use std::collections::{BTreeSet, HashMap};

use chrono::{Datelike, NaiveDate, Utc};
use serde_json::{Value, json};
use uuid::Uuid;

use super::OpsError;
use super::access::{Person, Role};
use crate::domain::sample;
use crate::store::{ClientCall, RecordFilter, RecordRow, SpotCheckRow, SpotDraw, Store};

/// One record of the queue.
#[derive(Debug, Clone, serde::Serialize)]
pub struct SpotItem {
    /// The record.
    pub record: RecordRow,
    /// Its call with the recording's columns, when it has one.
    pub call: Option<ClientCall>,
    /// The check, once made.
    pub check: Option<SpotCheckRow>,
}

/// A month's queue as a person may see it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct SpotQueue {
    /// The draw (seed and percentage: what re-derives the sample).
    pub draw: SpotDraw,
    /// Reached records in the month (every branch): the population.
    pub population: usize,
    /// How many of them the draw selects (every branch).
    pub sampled: usize,
    /// The selected records the person may see, by day.
    pub items: Vec<SpotItem>,
}

/// The first and last day of `YYYY-MM`.
pub fn month_days(month: &str) -> Result<(NaiveDate, NaiveDate), OpsError> {
    let bad = || OpsError::invalid("month", format!("{month:?} is not a month (YYYY-MM)"));
    if month.len() != 7 {
        return Err(bad());
    }
    let first = NaiveDate::parse_from_str(&format!("{month}-01"), "%Y-%m-%d").map_err(|_| bad())?;
    let next = if first.month() == 12 {
        NaiveDate::from_ymd_opt(first.year() + 1, 1, 1)
    } else {
        NaiveDate::from_ymd_opt(first.year(), first.month() + 1, 1)
    }
    .ok_or_else(bad)?;
    Ok((first, next.pred_opt().ok_or_else(bad)?))
}

/// The ids `draw` selects among `population`.
fn selected(draw: &SpotDraw, population: &[Uuid]) -> Result<BTreeSet<String>, OpsError> {
    let seed = sample::parse_seed(&draw.seed)
        .ok_or_else(|| OpsError::Internal(format!("spot-check draw {}: bad seed", draw.month)))?;
    let ids: Vec<String> = population.iter().map(Uuid::to_string).collect();
    Ok(sample::select(&seed, ids.iter().map(String::as_str), draw.percent as f64 / 100.0))
}

/// The month's draw, made now (with a fresh random seed and `percent`)
/// when nobody opened the month before.
async fn draw(store: &Store, p: &Person, month: &str, percent: u32) -> Result<SpotDraw, OpsError> {
    if let Some(d) = store.spot_draw(month).await? {
        return Ok(d);
    }
    let mut seed = [0u8; 32];
    rand::fill(&mut seed);
    let d = SpotDraw {
        month: month.to_string(),
        seed: sample::seed_hex(&seed),
        percent: i64::from(percent),
        drawn_at: Utc::now(),
        drawn_by: p.login.clone(),
    };
    Ok(store.draw_spot_checks(&d).await?)
}

/// The spot-check queue of `month` for `p` (a supervisor: their branches;
/// compliance: all), drawing the month when nobody did yet.
pub async fn queue(store: &Store, p: &Person, month: &str, percent: u32) -> Result<SpotQueue, OpsError> {
    p.require_any(&[Role::Supervisor, Role::Compliance])?;
    let (from, to) = month_days(month)?;
    let draw = draw(store, p, month, percent).await?;
    let population = store.reached_record_ids(from, to).await?;
    let chosen = selected(&draw, &population)?;
    let checks: HashMap<Uuid, SpotCheckRow> =
        store.spot_checks(month).await?.into_iter().map(|c| (c.record_id, c)).collect();
    let (branches, _) = p.list_scope()?;
    let mut records = Vec::new();
    let mut after = None;
    loop {
        let f = RecordFilter {
            from,
            to,
            agent_id: None,
            branches: branches.clone(),
            unreviewed: false,
            after,
            limit: 500,
        };
        let page = store.records_page(&f).await?;
        let done = page.len() < 500;
        after = page.last().map(|r| (r.called_on, r.id));
        records.extend(
            page.into_iter().filter(|r| chosen.contains(&r.id.to_string()) || checks.contains_key(&r.id)),
        );
        if done {
            break;
        }
    }
    let call_ids: Vec<Uuid> =
        records.iter().filter_map(|r| r.call_id.as_deref().and_then(|c| Uuid::parse_str(c).ok())).collect();
    let mut calls: HashMap<Uuid, ClientCall> =
        store.calls_by_id(&call_ids).await?.into_iter().map(|c| (c.call_id, c)).collect();
    let items = records
        .into_iter()
        .map(|r| {
            let call =
                r.call_id.as_deref().and_then(|c| Uuid::parse_str(c).ok()).and_then(|c| calls.remove(&c));
            let check = checks.get(&r.id).cloned();
            SpotItem { record: r, call, check }
        })
        .collect();
    Ok(SpotQueue { draw, population: population.len(), sampled: chosen.len(), items })
}

/// `pass` or `fail`.
pub fn parse_verdict(v: &str) -> Result<&'static str, OpsError> {
    match v {
        "pass" => Ok("pass"),
        "fail" => Ok("fail"),
        other => Err(OpsError::invalid("verdict", format!("{other:?} is not pass or fail"))),
    }
}

/// Records `p`'s spot-check of record `id`: only a record of the month's
/// sample that `p` may see, never by its author, once.
pub async fn check(
    store: &Store,
    p: &Person,
    id: Uuid,
    verdict: &str,
    note: Option<&str>,
) -> Result<SpotCheckRow, OpsError> {
    p.require_any(&[Role::Supervisor, Role::Compliance])?;
    let verdict = parse_verdict(verdict)?;
    // the record first: an unknown id is 404 whoever asks
    let rec = super::records::record(store, p, id).await?;
    let checker = p
        .staff_id
        .clone()
        .ok_or_else(|| OpsError::Forbidden("a spot-check needs the checker's staff row".into()))?;
    if crate::domain::records::check_reviewer(&rec.agent_id, &checker).is_err() {
        return Err(OpsError::Rule {
            code: "own-record",
            reason: format!(
                "a record is never checked by the person who made it: record {id} was made by {checker}"
            ),
        });
    }
    let month = rec.called_on.format("%Y-%m").to_string();
    let (from, to) = month_days(&month)?;
    let draw = store
        .spot_draw(&month)
        .await?
        .ok_or_else(|| OpsError::Conflict(format!("the spot-checks of {month} were not drawn yet")))?;
    let chosen = selected(&draw, &store.reached_record_ids(from, to).await?)?;
    if !chosen.contains(&id.to_string()) {
        return Err(OpsError::Conflict(format!("record {id} is not in the spot-check sample of {month}")));
    }
    let row = SpotCheckRow {
        record_id: id,
        month,
        checker_id: checker,
        verdict: verdict.to_string(),
        note: note.map(str::trim).filter(|n| !n.is_empty()).map(str::to_string),
        checked_at: Utc::now(),
    };
    store.add_spot_check(&row).await?;
    Ok(row)
}

/// The queue as the API answers it.
pub fn queue_json(q: &SpotQueue) -> Value {
    json!({
        "draw": q.draw,
        "population": q.population,
        "sampled": q.sampled,
        "items": q.items,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn months_have_their_first_and_last_days() {
        let d = |s| NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap();
        assert_eq!(month_days("2026-12").unwrap(), (d("2026-12-01"), d("2026-12-31")));
        assert_eq!(month_days("2028-02").unwrap(), (d("2028-02-01"), d("2028-02-29")));
        for bad in ["2026-13", "2026-1", "202612", "", "2026-12-01"] {
            assert!(month_days(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn the_sample_depends_on_the_seed_alone() {
        let ids: Vec<Uuid> = (0..200u128).map(Uuid::from_u128).collect();
        let d = |seed: &str| SpotDraw {
            month: "2026-12".into(),
            seed: seed.repeat(64),
            percent: 10,
            drawn_at: Utc::now(),
            drawn_by: "x".into(),
        };
        let a = selected(&d("a"), &ids).unwrap();
        assert!(a.len() >= 20, "{}", a.len());
        let mut reversed = ids.clone();
        reversed.reverse();
        assert_eq!(selected(&d("a"), &reversed).unwrap(), a, "order does not matter");
        assert_ne!(selected(&d("b"), &ids).unwrap(), a, "another seed, another sample");
    }
}
