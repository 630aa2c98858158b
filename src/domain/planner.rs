//! Rules → tasks: which clients must be called back, by when, and why.
//!
//! [`plan`] is a pure function of the facts (clients, staff, events), the
//! rules' numbers ([`RulesConfig`]), the trading calendar and the planning
//! day. It returns every task the rules demand as of that day, each with an
//! **idempotency key**; the store inserts a task only when its key is new,
//! so planning twice for the same period creates no duplicates:
//!
//! | kind | key | period of its batch | due |
//! | --- | --- | --- | --- |
//! | `new_account` | `new_account:CLIENT` | ISO week of the opening (`2026-W48`) | opening + N business days |
//! | `important` | `important:PERIOD:CLIENT` | month (core) / year (HQ level), per cadence | last business day of the period |
//! | `potential_risk` | `potential_risk:WEEK:CLIENT` | the last full ISO week before the planning day | planning day + N business days |
//! | `complaint`, `abnormal_trading`, `special` | `KIND:EVENT` | the planning day | event + N business days |
//! | `departed_staff` | `departed_staff:STAFF:CLIENT` | the planning day | departure + N business days |
//! | `dormant` | `dormant:HALF:CLIENT` | half-year (`2026-H2`) | last business day of the half-year |
//! | `existing` | `existing:YEAR:CLIENT` | year (`2026`); clients of the previous year-end, dormant ones excluded | last business day of the year |
//!
//! Every task belongs to a **batch** (kind, period). Sampled rules
//! (`new_account` for ordinary clients, `dormant`, `existing`) draw their sample with the
//! batch's seed ([`super::sample`]): pass the seeds of batches already
//! stored in `seeds`; a batch met for the first time gets one from `fresh`
//! (the caller's random source) and is marked `new_seed`. Planning again
//! with the stored seed re-derives the same sample.
//!
//! A task's `reason` (JSON) says which rule made it and on which facts.
//! Events about clients that are not in the client list make no task; they
//! are counted in the plan's warnings.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use chrono::{Datelike, Days, NaiveDate};
use serde_json::{Value, json};
use thiserror::Error;

use super::calendar::{Calendar, CalendarError};
use super::facts::{Client, Cny, Event, EventKind, Staff};
use super::kinds::{Cadence, RulesConfig, TaskKind};
use super::sample::{self, Seed};

/// Planning failed; nothing was planned.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum PlanError {
    /// A due date could not be computed (the calendar lacks a year).
    #[error("{rule}: {source}")]
    Calendar {
        /// The rule that needed the date.
        rule: &'static str,
        /// What the calendar said.
        #[source]
        source: CalendarError,
    },
}

/// What the rules work on.
#[derive(Debug, Clone, Copy)]
pub struct Facts<'a> {
    /// Every client. The rules never read a client's name or phone
    /// (`huifang plan` loads clients without them).
    pub clients: &'a [Client],
    /// Every staff member.
    pub staff: &'a [Staff],
    /// Every event.
    pub events: &'a [Event],
}

/// A batch: the tasks of one rule for one period.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct BatchKey {
    /// The rule.
    pub kind: TaskKind,
    /// The period (`2026-W48`, `2026-11`, `2026-H2`, `2026-11-27`).
    pub period: String,
}

impl std::fmt::Display for BatchKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.kind, self.period)
    }
}

/// A batch as planned.
#[derive(Debug, Clone, PartialEq)]
pub struct Batch {
    /// Rule and period.
    pub key: BatchKey,
    /// The sampling seed (sampled rules only).
    pub seed: Option<Seed>,
    /// Whether the seed was drawn by this plan (store it).
    pub new_seed: bool,
    /// The sampling ratio (sampled rules only).
    pub ratio: Option<f64>,
    /// Clients the rule looked at (the sampled population for sampled rules).
    pub population: u64,
    /// Tasks the rule asks for in this batch (as of this plan).
    pub selected: u64,
}

/// A task the rules ask for.
#[derive(Debug, Clone, PartialEq)]
pub struct PlannedTask {
    /// Unique per task: planning again yields the same key.
    pub key: String,
    /// The rule.
    pub kind: TaskKind,
    /// The client to call.
    pub client_id: String,
    /// The client's branch (for reports).
    pub branch: String,
    /// Due date (a business day).
    pub due_on: NaiveDate,
    /// 1 = most urgent.
    pub priority: u8,
    /// Decides the recordings' retention.
    pub retention_kind: String,
    /// A compliance callback (no sales agents, E7).
    pub compliance: bool,
    /// Which rule, on which facts (JSON object; ids and amounts, no phone
    /// numbers or names).
    pub reason: Reason,
    /// Its batch.
    pub batch: BatchKey,
}

/// Why a task exists: a JSON object (which rule, on which facts), kept as
/// its compact text, which is also what the store writes. As a
/// [`Value`] a reason took ≈ 0.6–0.9 KiB (a B-tree node per object, a
/// string per key); as text ≈ 0.15 KiB — at a million clients a plan has
/// hundreds of thousands of tasks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reason(String);

impl Reason {
    /// A reason from its JSON form (which rule, which facts).
    pub fn new(v: &Value) -> Reason {
        Reason(v.to_string())
    }

    /// The JSON text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The JSON object.
    pub fn to_value(&self) -> Value {
        // made by `Reason::new` from a `Value` only: always JSON
        serde_json::from_str(&self.0).expect("a reason is JSON")
    }
}

/// Everything one planning run asks for.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Plan {
    /// Batches touched.
    pub batches: Vec<Batch>,
    /// Tasks, in rule order.
    pub tasks: Vec<PlannedTask>,
    /// Things the operator should know (unknown clients in events,
    /// provisional calendar years).
    pub warnings: Vec<String>,
}

struct Planner<'a> {
    rules: &'a RulesConfig,
    cal: &'a Calendar,
    as_of: NaiveDate,
    seeds: &'a BTreeMap<BatchKey, Seed>,
    fresh: &'a mut dyn FnMut() -> Seed,
    clients: HashMap<&'a str, &'a Client>,
    batches: BTreeMap<BatchKey, Batch>,
    tasks: Vec<PlannedTask>,
    unknown_clients: BTreeMap<&'static str, u64>,
    provisional: BTreeSet<i32>,
}

/// Plans every enabled rule as of `as_of` (see the module docs).
pub fn plan(
    facts: Facts<'_>,
    rules: &RulesConfig,
    cal: &Calendar,
    as_of: NaiveDate,
    seeds: &BTreeMap<BatchKey, Seed>,
    fresh: &mut dyn FnMut() -> Seed,
) -> Result<Plan, PlanError> {
    let mut p = Planner {
        rules,
        cal,
        as_of,
        seeds,
        fresh,
        clients: facts.clients.iter().map(|c| (c.client_id.as_str(), c)).collect(),
        batches: BTreeMap::new(),
        tasks: Vec::new(),
        unknown_clients: BTreeMap::new(),
        provisional: BTreeSet::new(),
    };
    if rules.new_account.enabled {
        p.new_accounts(facts.clients)?;
    }
    if rules.important.enabled {
        p.important(facts.clients)?;
    }
    if rules.potential_risk.enabled {
        p.potential_risk(facts.events)?;
    }
    for kind in [TaskKind::Complaint, TaskKind::AbnormalTrading, TaskKind::Special] {
        if rules.policy(kind).enabled {
            p.per_event(kind, facts.events)?;
        }
    }
    if rules.departed_staff.enabled {
        p.departed(facts)?;
    }
    if rules.dormant.enabled {
        p.dormant(facts.clients)?;
    }
    if rules.existing.enabled {
        p.existing(facts.clients)?;
    }
    let mut warnings = Vec::new();
    for (kind, n) in &p.unknown_clients {
        warnings.push(format!("{n} {kind} event(s) name a client that is not in the client list: no task"));
    }
    for y in &p.provisional {
        warnings.push(format!(
            "due dates fall in {y}, whose holiday calendar is provisional: replace it when the official one is published"
        ));
    }
    Ok(Plan { batches: p.batches.into_values().collect(), tasks: p.tasks, warnings })
}

impl Planner<'_> {
    fn cal_err(rule: TaskKind) -> impl FnOnce(CalendarError) -> PlanError {
        move |source| PlanError::Calendar { rule: rule.as_str(), source }
    }

    fn due_after(&mut self, kind: TaskKind, from: NaiveDate, n: u32) -> Result<NaiveDate, PlanError> {
        let d = self.cal.add_business_days(from, n).map_err(Self::cal_err(kind))?;
        self.note_year(d);
        Ok(d)
    }

    /// The last business day of a period ending on `end`, not before the
    /// planning day.
    fn due_by(&mut self, kind: TaskKind, end: NaiveDate) -> Result<NaiveDate, PlanError> {
        let last = self.cal.on_or_before(end).map_err(Self::cal_err(kind))?;
        let d = if last < self.as_of {
            self.cal.on_or_after(self.as_of).map_err(Self::cal_err(kind))?
        } else {
            last
        };
        self.note_year(d);
        Ok(d)
    }

    fn note_year(&mut self, d: NaiveDate) {
        if self.cal.is_provisional(d.year()) {
            self.provisional.insert(d.year());
        }
    }

    fn batch(&mut self, kind: TaskKind, period: String, sampled: Option<f64>) -> BatchKey {
        let key = BatchKey { kind, period };
        if !self.batches.contains_key(&key) {
            let (seed, new_seed) = match sampled {
                None => (None, false),
                Some(_) => match self.seeds.get(&key) {
                    Some(s) => (Some(*s), false),
                    None => (Some((self.fresh)()), true),
                },
            };
            self.batches.insert(
                key.clone(),
                Batch { key: key.clone(), seed, new_seed, ratio: sampled, population: 0, selected: 0 },
            );
        }
        key
    }

    fn push(&mut self, batch: &BatchKey, key: String, client: &Client, due_on: NaiveDate, reason: Value) {
        let p = self.rules.policy(batch.kind);
        if let Some(b) = self.batches.get_mut(batch) {
            b.selected += 1;
        }
        self.tasks.push(PlannedTask {
            key,
            kind: batch.kind,
            client_id: client.client_id.clone(),
            branch: client.branch.clone(),
            due_on,
            priority: p.priority,
            retention_kind: p.retention_kind,
            compliance: p.compliance,
            reason: Reason::new(&reason),
            batch: batch.clone(),
        });
    }

    fn new_accounts(&mut self, clients: &[Client]) -> Result<(), PlanError> {
        let r = self.rules.new_account.clone();
        let kind = TaskKind::NewAccount;
        let from = self.as_of - Days::new(u64::from(r.lookback_days));
        // group by the ISO week of opening
        let mut weeks: BTreeMap<String, Vec<&Client>> = BTreeMap::new();
        for c in clients.iter().filter(|c| c.opened_on >= from && c.opened_on <= self.as_of) {
            weeks.entry(iso_week(c.opened_on)).or_default().push(c);
        }
        for (week, members) in weeks {
            let ordinary: Vec<&Client> = members.iter().copied().filter(|c| !c.broker_introduced).collect();
            let batch = self.batch(kind, week.clone(), (!ordinary.is_empty()).then_some(r.sample_ratio));
            let seed = self.batches[&batch].seed;
            if let Some(b) = self.batches.get_mut(&batch) {
                b.population = members.len() as u64;
            }
            let chosen = match seed {
                Some(seed) => {
                    sample::select(&seed, ordinary.iter().map(|c| c.client_id.as_str()), r.sample_ratio)
                }
                None => BTreeSet::new(),
            };
            for c in members {
                let reason = if c.broker_introduced {
                    json!({"rule": "new_account", "opened_on": c.opened_on, "broker_introduced": true,
                           "introducer_id": c.introducer_id, "coverage": "100%"})
                } else if chosen.contains(&c.client_id) {
                    let seed = seed.expect("sampled batches have a seed");
                    json!({"rule": "new_account", "opened_on": c.opened_on, "broker_introduced": false,
                           "sample": {"batch": batch.to_string(), "ratio": r.sample_ratio,
                                      "score": format!("{:016x}", sample::score(&seed, &c.client_id))}})
                } else {
                    continue;
                };
                let due = self.due_after(kind, c.opened_on, r.due_business_days)?;
                self.push(&batch, format!("new_account:{}", c.client_id), c, due, reason);
            }
        }
        Ok(())
    }

    fn important(&mut self, clients: &[Client]) -> Result<(), PlanError> {
        let kind = TaskKind::Important;
        let [assets, commission, turnover, hq] = self.rules.important_thresholds();
        let (core_cadence, hq_cadence) = self.rules.important_cadences();
        let reached = |v: Option<Cny>, t: Cny| v.is_some_and(|v| v >= t);
        let as_of = self.as_of;
        for c in clients.iter().filter(|c| c.opened_on <= as_of) {
            let hq_level = reached(c.assets, hq);
            let mut met = Vec::new();
            if reached(c.assets, assets) {
                met.push("assets");
            }
            if reached(c.yearly_commission, commission) {
                met.push("yearly_commission");
            }
            if reached(c.monthly_turnover, turnover) {
                met.push("monthly_turnover");
            }
            if met.is_empty() {
                continue;
            }
            let cadence = if hq_level { hq_cadence } else { core_cadence };
            let (period, end) = period_of(cadence, self.as_of);
            let batch = self.batch(kind, period.clone(), None);
            if let Some(b) = self.batches.get_mut(&batch) {
                b.population += 1;
            }
            let due = self.due_by(kind, end)?;
            let reason = json!({"rule": "important", "level": if hq_level { "hq" } else { "core" },
                "period": period, "thresholds_met": met,
                "assets_cny": c.assets.map(|a| a.to_string()),
                "yearly_commission_cny": c.yearly_commission.map(|a| a.to_string()),
                "monthly_turnover_cny": c.monthly_turnover.map(|a| a.to_string())});
            self.push(&batch, format!("important:{period}:{}", c.client_id), c, due, reason);
        }
        Ok(())
    }

    fn potential_risk(&mut self, events: &[Event]) -> Result<(), PlanError> {
        let kind = TaskKind::PotentialRisk;
        let r = self.rules.potential_risk.clone();
        let last_week_day = self.as_of - Days::new(7);
        let week = iso_week(last_week_day);
        let monday = last_week_day - Days::new(u64::from(last_week_day.weekday().num_days_from_monday()));
        let sunday = monday + Days::new(6);
        let mut sums: BTreeMap<EventKind, BTreeMap<&str, i64>> = BTreeMap::new();
        for e in events {
            if !matches!(e.kind, EventKind::AssetInflow | EventKind::AssetOutflow | EventKind::Turnover)
                || e.occurred_on < monday
                || e.occurred_on > sunday
            {
                continue;
            }
            let (Some(client), Some(amount)) = (e.client_id.as_deref(), e.amount) else { continue };
            *sums.entry(e.kind).or_default().entry(client).or_default() += amount.0.abs();
        }
        // client → the metrics it ranks in
        let mut flagged: BTreeMap<&str, Vec<Value>> = BTreeMap::new();
        let mut population = 0u64;
        for (metric, per_client) in &sums {
            population += per_client.len() as u64;
            let mut ranked: Vec<(&str, i64)> = per_client.iter().map(|(c, a)| (*c, *a)).collect();
            ranked.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
            let Some(cutoff) = ranked.get(r.top_n as usize - 1).or(ranked.last()).map(|x| x.1) else {
                continue;
            };
            for (i, (client, amount)) in ranked.iter().enumerate() {
                if *amount < cutoff || *amount <= 0 {
                    break;
                }
                // rank counts ties as equal (1, 2, 2, 4)
                let rank = ranked.iter().position(|x| x.1 == *amount).unwrap_or(i) + 1;
                flagged.entry(client).or_default().push(
                    json!({"metric": metric.as_str(), "amount_cny": Cny(*amount).to_string(), "rank": rank}),
                );
            }
        }
        if flagged.is_empty() {
            return Ok(());
        }
        let batch = self.batch(kind, week.clone(), None);
        if let Some(b) = self.batches.get_mut(&batch) {
            b.population = population;
        }
        let due = self.due_after(kind, self.as_of, r.due_business_days)?;
        for (client_id, metrics) in flagged {
            let Some(c) = self.clients.get(client_id).copied() else {
                *self.unknown_clients.entry("potential_risk").or_default() += 1;
                continue;
            };
            let reason = json!({"rule": "potential_risk", "week": week, "from": monday, "to": sunday,
                                "top_n": r.top_n, "metrics": metrics});
            self.push(&batch, format!("potential_risk:{week}:{client_id}"), c, due, reason);
        }
        Ok(())
    }

    fn per_event(&mut self, kind: TaskKind, events: &[Event]) -> Result<(), PlanError> {
        let r = self.rules.event_rule(kind).expect("an event rule");
        let event_kind = match kind {
            TaskKind::Complaint => EventKind::Complaint,
            TaskKind::AbnormalTrading => EventKind::AbnormalTrading,
            _ => EventKind::SpecialOrder,
        };
        let mut batch = None;
        let as_of = self.as_of;
        for e in events.iter().filter(|e| e.kind == event_kind && e.occurred_on <= as_of) {
            let Some(c) = e.client_id.as_deref().and_then(|id| self.clients.get(id).copied()) else {
                *self.unknown_clients.entry(kind.as_str()).or_default() += 1;
                continue;
            };
            let b = match &batch {
                Some(b) => b,
                None => batch.insert(self.batch(kind, as_of.to_string(), None)),
            }
            .clone();
            if let Some(x) = self.batches.get_mut(&b) {
                x.population += 1;
            }
            let due = self.due_after(kind, e.occurred_on, r.due_business_days)?;
            let reason = json!({"rule": kind.as_str(), "event_id": e.event_id, "occurred_on": e.occurred_on,
                                "amount_cny": e.amount.map(|a| a.to_string()), "staff_id": e.staff_id,
                                "note": e.note});
            self.push(&b, format!("{kind}:{}", e.event_id), c, due, reason);
        }
        Ok(())
    }

    fn departed(&mut self, facts: Facts<'_>) -> Result<(), PlanError> {
        let kind = TaskKind::DepartedStaff;
        let r = self.rules.departed_staff.rule();
        // staff id → (departure day, source)
        let mut departures: BTreeMap<&str, (NaiveDate, &str)> = BTreeMap::new();
        for s in facts.staff {
            if let Some(d) = s.left_on.filter(|d| *d <= self.as_of) {
                departures.insert(&s.staff_id, (d, "staff.left_on"));
            }
        }
        for e in
            facts.events.iter().filter(|e| e.kind == EventKind::StaffDeparture && e.occurred_on <= self.as_of)
        {
            if let Some(s) = e.staff_id.as_deref() {
                departures.entry(s).or_insert((e.occurred_on, "event"));
            }
        }
        if departures.is_empty() {
            return Ok(());
        }
        let mut by_introducer: HashMap<&str, Vec<&Client>> = HashMap::new();
        for c in facts.clients {
            if let Some(i) = c.introducer_id.as_deref() {
                by_introducer.entry(i).or_default().push(c);
            }
        }
        let mut batch = None;
        for (staff_id, (left_on, source)) in departures {
            let mut clients = by_introducer.get(staff_id).cloned().unwrap_or_default();
            clients.sort_by(|a, b| a.client_id.cmp(&b.client_id));
            for c in clients {
                let b = match &batch {
                    Some(b) => b,
                    None => batch.insert(self.batch(kind, self.as_of.to_string(), None)),
                }
                .clone();
                if let Some(x) = self.batches.get_mut(&b) {
                    x.population += 1;
                }
                let due = self.due_after(kind, left_on, r.due_business_days)?;
                let reason = json!({"rule": "departed_staff", "staff_id": staff_id, "left_on": left_on,
                                    "source": source});
                self.push(&b, format!("departed_staff:{staff_id}:{}", c.client_id), c, due, reason);
            }
        }
        Ok(())
    }

    fn dormant(&mut self, clients: &[Client]) -> Result<(), PlanError> {
        let kind = TaskKind::Dormant;
        let r = self.rules.dormant.clone();
        let cut = self.as_of - Days::new(u64::from(r.dormant_after_days));
        let dormant: Vec<&Client> =
            clients.iter().filter(|c| c.last_trade_on.unwrap_or(c.opened_on) <= cut).collect();
        if dormant.is_empty() {
            return Ok(());
        }
        let (half, end) = period_of(Cadence::HalfYearly, self.as_of);
        let batch = self.batch(kind, half.clone(), Some(r.sample_ratio));
        let seed = self.batches[&batch].seed.expect("sampled batches have a seed");
        if let Some(b) = self.batches.get_mut(&batch) {
            b.population = dormant.len() as u64;
        }
        let chosen = sample::select(&seed, dormant.iter().map(|c| c.client_id.as_str()), r.sample_ratio);
        let due = self.due_by(kind, end)?;
        for c in dormant {
            if !chosen.contains(&c.client_id) {
                continue;
            }
            let reason = json!({"rule": "dormant", "half_year": half,
                "last_trade_on": c.last_trade_on, "dormant_after_days": r.dormant_after_days,
                "sample": {"batch": batch.to_string(), "ratio": r.sample_ratio,
                           "score": format!("{:016x}", sample::score(&seed, &c.client_id))}});
            self.push(&batch, format!("dormant:{half}:{}", c.client_id), c, due, reason);
        }
        Ok(())
    }
}

impl Planner<'_> {
    fn existing(&mut self, clients: &[Client]) -> Result<(), PlanError> {
        let kind = TaskKind::Existing;
        let r = self.rules.existing.clone();
        let year_end = NaiveDate::from_ymd_opt(self.as_of.year() - 1, 12, 31).expect("a valid day");
        let dormant_cut = self.as_of - Days::new(u64::from(self.rules.dormant.dormant_after_days));
        let book: Vec<&Client> = clients
            .iter()
            .filter(|c| c.opened_on <= year_end && c.last_trade_on.unwrap_or(c.opened_on) > dormant_cut)
            .collect();
        if book.is_empty() {
            return Ok(());
        }
        let (year, end) = period_of(Cadence::Yearly, self.as_of);
        let batch = self.batch(kind, year.clone(), Some(r.sample_ratio));
        let seed = self.batches[&batch].seed.expect("sampled batches have a seed");
        if let Some(b) = self.batches.get_mut(&batch) {
            b.population = book.len() as u64;
        }
        let chosen = sample::select(&seed, book.iter().map(|c| c.client_id.as_str()), r.sample_ratio);
        let due = self.due_by(kind, end)?;
        for c in book {
            if !chosen.contains(&c.client_id) {
                continue;
            }
            let reason = json!({"rule": "existing", "year": year, "year_end": year_end,
                "sample": {"batch": batch.to_string(), "ratio": r.sample_ratio,
                           "score": format!("{:016x}", sample::score(&seed, &c.client_id))}});
            self.push(&batch, format!("existing:{year}:{}", c.client_id), c, due, reason);
        }
        Ok(())
    }
}

/// `2026-W48` (ISO 8601 week-numbering year and week).
pub fn iso_week(d: NaiveDate) -> String {
    let w = d.iso_week();
    format!("{}-W{:02}", w.year(), w.week())
}

/// The period of a cadence that contains `d`: its name and last day.
pub fn period_of(cadence: Cadence, d: NaiveDate) -> (String, NaiveDate) {
    let y = d.year();
    let (name, end_month) = match cadence {
        Cadence::Monthly => (format!("{y}-{:02}", d.month()), d.month()),
        Cadence::Quarterly => {
            let q = (d.month() - 1) / 3 + 1;
            (format!("{y}-Q{q}"), q * 3)
        }
        Cadence::HalfYearly => {
            let h = if d.month() <= 6 { 1 } else { 2 };
            (format!("{y}-H{h}"), h * 6)
        }
        Cadence::Yearly => (format!("{y}"), 12),
    };
    (name, last_day_of_month(y, end_month))
}

fn last_day_of_month(y: i32, m: u32) -> NaiveDate {
    let (ny, nm) = if m == 12 { (y + 1, 1) } else { (y, m + 1) };
    NaiveDate::from_ymd_opt(ny, nm, 1).and_then(|d| d.pred_opt()).expect("a valid month")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::calendar::tests::shipped;
    use crate::domain::facts::Role;

    fn d(s: &str) -> NaiveDate {
        NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
    }

    fn client(id: &str, opened: &str) -> Client {
        Client {
            client_id: id.into(),
            name: "n".into(),
            phone: "13800000000".into(),
            branch: "B1".into(),
            opened_on: d(opened),
            introducer_id: None,
            broker_introduced: false,
            assets: None,
            yearly_commission: None,
            monthly_turnover: None,
            last_trade_on: Some(d(opened)),
            id_number: None,
            risk_level: None,
        }
    }

    fn event(id: &str, client: &str, kind: EventKind, on: &str, amount: Option<i64>) -> Event {
        Event {
            event_id: id.into(),
            client_id: Some(client.into()),
            kind,
            occurred_on: d(on),
            amount: amount.map(Cny::yuan),
            staff_id: None,
            note: None,
        }
    }

    /// Only the rule under test enabled.
    fn only(kind: TaskKind) -> RulesConfig {
        let mut r = RulesConfig::default();
        r.new_account.enabled = kind == TaskKind::NewAccount;
        r.important.enabled = kind == TaskKind::Important;
        r.potential_risk.enabled = kind == TaskKind::PotentialRisk;
        r.complaint.enabled = kind == TaskKind::Complaint;
        r.abnormal_trading.enabled = kind == TaskKind::AbnormalTrading;
        r.departed_staff.enabled = kind == TaskKind::DepartedStaff;
        r.dormant.enabled = kind == TaskKind::Dormant;
        r.special.enabled = kind == TaskKind::Special;
        r.existing.enabled = kind == TaskKind::Existing;
        r
    }

    fn run(facts: Facts<'_>, rules: &RulesConfig, as_of: &str) -> Plan {
        let mut n = 0u8;
        let mut fresh = || {
            n += 1;
            [n; 32]
        };
        plan(facts, rules, &shipped(), d(as_of), &BTreeMap::new(), &mut fresh).unwrap()
    }

    fn facts<'a>(clients: &'a [Client], staff: &'a [Staff], events: &'a [Event]) -> Facts<'a> {
        Facts { clients, staff, events }
    }

    #[test]
    fn new_account_deadlines_across_weekends_and_holidays() {
        // (opened_on, as_of, due): 5 business days after opening
        let cases = [
            ("2026-11-23", "2026-11-27", "2026-11-30"),
            ("2026-11-27", "2026-11-27", "2026-12-04"),
            ("2026-02-12", "2026-02-13", "2026-02-27"), // across the Spring Festival
            ("2026-09-28", "2026-09-30", "2026-10-12"), // across National Day
            ("2026-12-28", "2026-12-31", "2027-01-05"), // into 2027 (1 Jan closed)
        ];
        for (opened, as_of, due) in cases {
            let mut c = client("C1", opened);
            c.broker_introduced = true;
            let plan = run(facts(&[c], &[], &[]), &only(TaskKind::NewAccount), as_of);
            assert_eq!(plan.tasks.len(), 1, "{opened}");
            assert_eq!(plan.tasks[0].due_on, d(due), "{opened}");
            assert_eq!(plan.tasks[0].key, "new_account:C1");
        }
    }

    #[test]
    fn provisional_years_warn() {
        let mut c = client("C1", "2026-12-28");
        c.broker_introduced = true;
        let plan = run(facts(&[c], &[], &[]), &only(TaskKind::NewAccount), "2026-12-31");
        assert!(
            plan.warnings.iter().any(|w| w.contains("2027") && w.contains("provisional")),
            "{:?}",
            plan.warnings
        );
    }

    #[test]
    fn new_accounts_broker_all_ordinary_sampled_reproducibly() {
        let mut clients: Vec<Client> = (0..100).map(|i| client(&format!("N{i:03}"), "2026-11-24")).collect();
        for c in clients.iter_mut().take(10) {
            c.broker_introduced = true;
        }
        clients.push(client("OLD", "2026-09-01")); // outside the lookback
        let rules = only(TaskKind::NewAccount);
        let plan = run(facts(&clients, &[], &[]), &rules, "2026-11-27");
        let broker = plan.tasks.iter().filter(|t| t.reason.to_value()["broker_introduced"] == true).count();
        let sampled = plan.tasks.len() - broker;
        assert_eq!(broker, 10);
        assert!(sampled >= 27, "30% of 90 is 27, got {sampled}");
        assert!(!plan.tasks.iter().any(|t| t.client_id == "OLD"));
        assert_eq!(plan.batches.len(), 1);
        let b = &plan.batches[0];
        assert!(b.new_seed);
        assert_eq!(b.key.period, "2026-W48");
        // re-derive with the stored seed: the same sample, no new seed
        let seeds = BTreeMap::from([(b.key.clone(), b.seed.unwrap())]);
        let again = plan_with(&clients, &rules, "2026-11-27", &seeds);
        assert_eq!(again.tasks, plan.tasks);
        assert!(!again.batches[0].new_seed);
        // and by hand from the documented algorithm
        let ids: Vec<&str> = clients[10..100].iter().map(|c| c.client_id.as_str()).collect();
        let by_hand = sample::select(&b.seed.unwrap(), ids, 0.30);
        let planned: BTreeSet<String> = plan
            .tasks
            .iter()
            .filter(|t| t.reason.to_value()["broker_introduced"] == false)
            .map(|t| t.client_id.clone())
            .collect();
        assert_eq!(planned, by_hand);
    }

    fn plan_with(
        clients: &[Client],
        rules: &RulesConfig,
        as_of: &str,
        seeds: &BTreeMap<BatchKey, Seed>,
    ) -> Plan {
        let mut fresh = || panic!("no fresh seed expected");
        plan(facts(clients, &[], &[]), rules, &shipped(), d(as_of), seeds, &mut fresh).unwrap()
    }

    #[test]
    fn important_threshold_edges_and_cadence() {
        let mk = |id: &str, assets: i64, commission: i64, turnover: i64| {
            let mut c = client(id, "2025-01-02");
            c.assets = Some(Cny::yuan(assets));
            c.yearly_commission = Some(Cny::yuan(commission));
            c.monthly_turnover = Some(Cny::yuan(turnover));
            c
        };
        let clients = [
            mk("A_EQ", 3_000_000, 0, 0),                  // assets at the threshold: in
            mk("A_BELOW", 2_999_999, 199_999, 9_999_999), // everything one yuan short: out
            mk("C_EQ", 0, 200_000, 0),                    // commission at the threshold
            mk("T_EQ", 0, 0, 10_000_000),                 // turnover at the threshold
            mk("HQ", 10_000_000, 0, 0),                   // head-office level: yearly
        ];
        let mut below_by_a_fen = mk("FEN", 0, 0, 0);
        below_by_a_fen.assets = Some(Cny(299_999_999));
        let mut all = clients.to_vec();
        all.push(below_by_a_fen);
        let plan = run(facts(&all, &[], &[]), &only(TaskKind::Important), "2026-11-27");
        let got: BTreeMap<&str, &PlannedTask> =
            plan.tasks.iter().map(|t| (t.client_id.as_str(), t)).collect();
        assert_eq!(got.keys().copied().collect::<Vec<_>>(), ["A_EQ", "C_EQ", "HQ", "T_EQ"]);
        assert_eq!(got["A_EQ"].key, "important:2026-11:A_EQ");
        assert_eq!(got["A_EQ"].due_on, d("2026-11-30"));
        assert_eq!(got["HQ"].key, "important:2026:HQ");
        assert_eq!(got["HQ"].due_on, d("2026-12-31"));
        assert_eq!(got["HQ"].reason.to_value()["level"], "hq");
    }

    #[test]
    fn potential_risk_top_n_with_ties() {
        let mut rules = only(TaskKind::PotentialRisk);
        rules.potential_risk.top_n = 2;
        let clients: Vec<Client> =
            ["A", "B", "C", "D", "E"].iter().map(|i| client(i, "2025-01-02")).collect();
        // last full week before Mon 2026-11-30 is 2026-W48 (23–29 Nov)
        let events = [
            event("e1", "A", EventKind::AssetInflow, "2026-11-23", Some(500)),
            event("e2", "A", EventKind::AssetInflow, "2026-11-24", Some(600)), // A: 1100
            event("e3", "B", EventKind::AssetInflow, "2026-11-25", Some(900)),
            event("e4", "C", EventKind::AssetInflow, "2026-11-29", Some(900)), // tie with B at the cut
            event("e5", "D", EventKind::AssetInflow, "2026-11-26", Some(100)),
            event("e6", "E", EventKind::AssetInflow, "2026-11-30", Some(99_999)), // this week: not yet
            event("e7", "D", EventKind::Turnover, "2026-11-27", Some(5)),
            event("e8", "Z", EventKind::AssetOutflow, "2026-11-27", Some(5)), // unknown client
        ];
        let plan = run(facts(&clients, &[], &events), &rules, "2026-11-30");
        let ids: Vec<&str> = plan.tasks.iter().map(|t| t.client_id.as_str()).collect();
        assert_eq!(ids, ["A", "B", "C", "D"]);
        assert_eq!(plan.tasks[0].key, "potential_risk:2026-W48:A");
        assert_eq!(plan.tasks[1].reason.to_value()["metrics"][0]["rank"], 2);
        assert_eq!(plan.tasks[2].reason.to_value()["metrics"][0]["rank"], 2);
        assert_eq!(plan.tasks[0].due_on, d("2026-12-02"));
        assert_eq!(plan.warnings.len(), 1, "{:?}", plan.warnings);
    }

    #[test]
    fn complaints_abnormal_and_special_orders_are_all_called() {
        let clients = [client("A", "2025-01-02"), client("B", "2025-01-02")];
        let events = [
            event("c1", "A", EventKind::Complaint, "2026-09-30", None),
            event("c2", "B", EventKind::Complaint, "2026-11-26", None),
            event("x1", "A", EventKind::AbnormalTrading, "2026-11-27", None),
            event("s1", "B", EventKind::SpecialOrder, "2026-11-27", None),
            event("future", "B", EventKind::Complaint, "2026-12-01", None),
        ];
        let mut rules = RulesConfig::default();
        rules.new_account.enabled = false;
        rules.important.enabled = false;
        rules.potential_risk.enabled = false;
        rules.dormant.enabled = false;
        rules.existing.enabled = false;
        let plan = run(facts(&clients, &[], &events), &rules, "2026-11-27");
        let keys: Vec<(&str, NaiveDate)> = plan.tasks.iter().map(|t| (t.key.as_str(), t.due_on)).collect();
        assert_eq!(
            keys,
            [
                ("complaint:c1", d("2026-10-09")), // 2 business days across National Day
                ("complaint:c2", d("2026-11-30")),
                ("abnormal_trading:x1", d("2026-12-01")),
                ("special:s1", d("2026-12-04")),
            ]
        );
    }

    #[test]
    fn all_clients_of_departed_staff() {
        let mut a = client("A", "2025-01-02");
        a.introducer_id = Some("S1".into());
        let mut b = client("B", "2025-01-02");
        b.introducer_id = Some("S1".into());
        let mut c = client("C", "2025-01-02");
        c.introducer_id = Some("S2".into());
        let mut e = client("E", "2025-01-02");
        e.introducer_id = Some("S3".into());
        let staff = |id: &str, left: Option<&str>| Staff {
            staff_id: id.into(),
            name: String::new(),
            role: Role::Sales,
            branch: "B1".into(),
            manager_id: None,
            sip_uri: None,
            active: left.is_none(),
            left_on: left.map(d),
        };
        let staff = [staff("S1", Some("2026-11-20")), staff("S2", None), staff("S3", Some("2026-12-15"))];
        let events = [Event {
            event_id: "dep2".into(),
            client_id: None,
            kind: EventKind::StaffDeparture,
            occurred_on: d("2026-11-25"),
            amount: None,
            staff_id: Some("S2".into()),
            note: None,
        }];
        let plan = run(facts(&[a, b, c, e], &staff, &events), &only(TaskKind::DepartedStaff), "2026-11-27");
        let keys: Vec<(&str, NaiveDate)> = plan.tasks.iter().map(|t| (t.key.as_str(), t.due_on)).collect();
        assert_eq!(
            keys,
            [
                ("departed_staff:S1:A", d("2026-11-27")),
                ("departed_staff:S1:B", d("2026-11-27")),
                ("departed_staff:S2:C", d("2026-12-02")),
            ]
        );
    }

    #[test]
    fn dormant_twenty_percent_per_half_year() {
        let mut clients: Vec<Client> = (0..50).map(|i| client(&format!("D{i:02}"), "2024-01-02")).collect();
        for c in &mut clients {
            c.last_trade_on = Some(d("2026-03-01"));
        }
        clients.push(client("ACTIVE", "2024-01-02")); // traded on opening… long ago: dormant too
        clients.last_mut().unwrap().last_trade_on = Some(d("2026-11-20"));
        let plan = run(facts(&clients, &[], &[]), &only(TaskKind::Dormant), "2026-11-27");
        assert_eq!(plan.batches[0].key.period, "2026-H2");
        assert_eq!(plan.batches[0].population, 50);
        assert!(plan.tasks.len() >= 10, "{}", plan.tasks.len());
        assert!(
            plan.tasks.iter().all(|t| t.due_on == d("2026-12-31") && t.key.starts_with("dormant:2026-H2:"))
        );
        assert!(!plan.tasks.iter().any(|t| t.client_id == "ACTIVE"));
    }

    #[test]
    fn existing_clients_ten_percent_of_last_year_end_without_dormant() {
        let mut clients: Vec<Client> = (0..100).map(|i| client(&format!("X{i:03}"), "2024-06-03")).collect();
        for c in &mut clients {
            c.last_trade_on = Some(d("2026-11-02"));
        }
        clients.push(client("NEW", "2026-03-02")); // opened this year: not in last year-end's book
        clients.last_mut().unwrap().last_trade_on = Some(d("2026-11-02"));
        clients.push(client("SLEEPY", "2020-01-02")); // dormant: excluded
        let plan = run(facts(&clients, &[], &[]), &only(TaskKind::Existing), "2026-11-27");
        assert_eq!(plan.batches[0].key.period, "2026");
        assert_eq!(plan.batches[0].population, 100);
        assert!(plan.tasks.len() >= 10, "{}", plan.tasks.len());
        assert!(plan.tasks.iter().all(|t| t.client_id.starts_with('X') && t.due_on == d("2026-12-31")));
    }

    #[test]
    fn planning_twice_yields_the_same_keys() {
        let mut clients: Vec<Client> = (0..40).map(|i| client(&format!("N{i}"), "2026-11-24")).collect();
        clients[0].assets = Some(Cny::yuan(5_000_000));
        let events = [event("c1", "N1", EventKind::Complaint, "2026-11-26", None)];
        let mut fresh = || [9u8; 32];
        let cal = shipped();
        let rules = RulesConfig::default();
        let p1 =
            plan(facts(&clients, &[], &events), &rules, &cal, d("2026-11-27"), &BTreeMap::new(), &mut fresh)
                .unwrap();
        let seeds: BTreeMap<BatchKey, Seed> =
            p1.batches.iter().filter_map(|b| b.seed.map(|s| (b.key.clone(), s))).collect();
        let p2 =
            plan(facts(&clients, &[], &events), &rules, &cal, d("2026-11-27"), &seeds, &mut || [1u8; 32])
                .unwrap();
        let k1: BTreeSet<&str> = p1.tasks.iter().map(|t| t.key.as_str()).collect();
        let k2: BTreeSet<&str> = p2.tasks.iter().map(|t| t.key.as_str()).collect();
        assert_eq!(k1, k2);
        assert_eq!(k1.len(), p1.tasks.len(), "keys are unique within a plan");
    }

    #[test]
    fn uncovered_calendar_is_an_error() {
        let mut c = client("C1", "2027-12-29");
        c.broker_introduced = true;
        let e = plan(
            facts(&[c], &[], &[]),
            &only(TaskKind::NewAccount),
            &shipped(),
            d("2027-12-30"),
            &BTreeMap::new(),
            &mut || [0; 32],
        )
        .unwrap_err();
        assert!(e.to_string().contains("2028"), "{e}");
    }

    #[test]
    fn periods() {
        assert_eq!(period_of(Cadence::Monthly, d("2026-02-10")), ("2026-02".into(), d("2026-02-28")));
        assert_eq!(period_of(Cadence::Quarterly, d("2026-11-27")), ("2026-Q4".into(), d("2026-12-31")));
        assert_eq!(period_of(Cadence::HalfYearly, d("2026-06-30")), ("2026-H1".into(), d("2026-06-30")));
        assert_eq!(period_of(Cadence::Yearly, d("2026-01-01")), ("2026".into(), d("2026-12-31")));
        assert_eq!(iso_week(d("2026-11-27")), "2026-W48");
        assert_eq!(iso_week(d("2027-01-01")), "2026-W53");
    }
}
