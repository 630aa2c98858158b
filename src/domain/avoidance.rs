//! Avoidance (回避制度, invariant E7): may agent A call client C back for a
//! task of kind K?
//!
//! Never:
//! 1. an agent who is inactive, or who has left (`left_on` on or before
//!    the day of the call);
//! 2. the client's introducer (严禁回访责任人回访本人介绍开户的客户);
//! 3. when `[avoidance] reporting_line` says so, someone in the
//!    introducer's reporting line: `"up"` — the introducer's managers, all
//!    the way up; `"both"` — those and everyone who reports to the
//!    introducer, directly or not; `"none"` — nobody beyond the introducer;
//! 4. for a compliance callback, an agent whose role is not in
//!    `compliance_roles` (sales staff and brokers never: 非营销序列);
//!    for any callback, an agent whose role is not in `agent_roles`.
//!
//! [`may_call`] answers with the first reason that applies, in that order.
//! Call it where a task is offered to an agent and again right before
//! dialing (the dialer), and when a callback record is submitted (the
//! record's author made the call). Pure; a manager chain with a cycle is
//! walked once.

use std::collections::{HashMap, HashSet};
use std::fmt;

use chrono::NaiveDate;
use serde::Deserialize;

use super::facts::{Client, Role, Staff};

/// `[avoidance]`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AvoidanceConfig {
    /// `"none"`, `"up"` (the introducer's managers) or `"both"` (managers
    /// and reports).
    #[serde(default = "default_line")]
    pub reporting_line: String,
    /// Roles that may make callbacks at all.
    #[serde(default = "default_agent_roles")]
    pub agent_roles: Vec<String>,
    /// Roles that may make compliance callbacks (never sales or broker).
    #[serde(default = "default_compliance_roles")]
    pub compliance_roles: Vec<String>,
}

fn default_line() -> String {
    "up".into()
}
fn default_agent_roles() -> Vec<String> {
    ["service", "compliance", "reviewer", "supervisor", "sales"].map(String::from).to_vec()
}
fn default_compliance_roles() -> Vec<String> {
    ["service", "compliance", "reviewer", "supervisor"].map(String::from).to_vec()
}

impl Default for AvoidanceConfig {
    fn default() -> Self {
        AvoidanceConfig {
            reporting_line: default_line(),
            agent_roles: default_agent_roles(),
            compliance_roles: default_compliance_roles(),
        }
    }
}

/// How far the reporting line reaches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReportingLine {
    /// Only the introducer.
    None,
    /// The introducer's managers, up the chain.
    Up,
    /// Managers and reports.
    Both,
}

/// The avoidance settings, checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Avoidance {
    /// Reach of the reporting line.
    pub line: ReportingLine,
    /// Roles that may call at all.
    pub agent_roles: HashSet<Role>,
    /// Roles that may make compliance callbacks.
    pub compliance_roles: HashSet<Role>,
}

impl AvoidanceConfig {
    /// Checks and resolves the section: `Err((key, reason))`.
    pub fn resolve(&self) -> Result<Avoidance, (String, String)> {
        let line = match self.reporting_line.as_str() {
            "none" => ReportingLine::None,
            "up" => ReportingLine::Up,
            "both" => ReportingLine::Both,
            other => {
                return Err((
                    "avoidance.reporting_line".into(),
                    format!("{other:?} is not \"none\", \"up\" or \"both\""),
                ));
            }
        };
        let roles = |key: &str, names: &[String]| -> Result<HashSet<Role>, (String, String)> {
            let mut out = HashSet::new();
            for (i, n) in names.iter().enumerate() {
                let role = Role::parse(n)
                    .ok_or_else(|| (format!("avoidance.{key}[{i}]"), format!("{n:?} is not a role")))?;
                out.insert(role);
            }
            Ok(out)
        };
        let agent_roles = roles("agent_roles", &self.agent_roles)?;
        let compliance_roles = roles("compliance_roles", &self.compliance_roles)?;
        for forbidden in [Role::Sales, Role::Broker] {
            if compliance_roles.contains(&forbidden) {
                return Err((
                    "avoidance.compliance_roles".into(),
                    format!("{forbidden} may never make compliance callbacks (非营销序列)"),
                ));
            }
        }
        if agent_roles.is_empty() {
            return Err(("avoidance.agent_roles".into(), "must list at least one role".into()));
        }
        Ok(Avoidance { line, agent_roles, compliance_roles })
    }
}

impl Default for Avoidance {
    fn default() -> Self {
        AvoidanceConfig::default().resolve().expect("the defaults are valid")
    }
}

/// Why an agent may not make a callback.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// The agent is not in the staff list.
    UnknownAgent,
    /// The agent is inactive.
    Inactive,
    /// The agent left on this day.
    Departed(NaiveDate),
    /// The agent introduced the client.
    Introducer,
    /// The agent is in the introducer's reporting line: `Manager(n)` is n
    /// levels above the introducer, `Report(n)` n levels below.
    ReportingLine(Relation),
    /// The agent's role may not make this callback.
    Role {
        /// The agent's role.
        role: Role,
        /// Whether the callback is a compliance callback.
        compliance: bool,
    },
}

/// Where the agent stands relative to the introducer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Relation {
    /// n levels above.
    Manager(u32),
    /// n levels below.
    Report(u32),
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Refusal::UnknownAgent => f.write_str("the agent is not in the staff list"),
            Refusal::Inactive => f.write_str("the agent is inactive"),
            Refusal::Departed(d) => write!(f, "the agent left on {d}"),
            Refusal::Introducer => f.write_str("the agent introduced this client (回避)"),
            Refusal::ReportingLine(Relation::Manager(n)) => {
                write!(f, "the agent is the introducer's manager ({n} level(s) up) (回避)")
            }
            Refusal::ReportingLine(Relation::Report(n)) => {
                write!(f, "the agent reports to the introducer ({n} level(s) down) (回避)")
            }
            Refusal::Role { role, compliance: true } => {
                write!(f, "a {role} agent may not make compliance callbacks (非营销序列)")
            }
            Refusal::Role { role, compliance: false } => write!(f, "a {role} agent may not make callbacks"),
        }
    }
}

/// The staff list, indexed for reporting-line walks.
#[derive(Debug, Clone, Default)]
pub struct Directory {
    by_id: HashMap<String, Staff>,
    reports: HashMap<String, Vec<String>>,
}

impl Directory {
    /// Indexes a staff list (a later duplicate id replaces an earlier one).
    pub fn new(staff: impl IntoIterator<Item = Staff>) -> Directory {
        let mut by_id = HashMap::new();
        for s in staff {
            by_id.insert(s.staff_id.clone(), s);
        }
        let mut reports: HashMap<String, Vec<String>> = HashMap::new();
        for s in by_id.values() {
            if let Some(m) = &s.manager_id {
                reports.entry(m.clone()).or_default().push(s.staff_id.clone());
            }
        }
        Directory { by_id, reports }
    }

    /// A staff member.
    pub fn get(&self, id: &str) -> Option<&Staff> {
        self.by_id.get(id)
    }

    /// Every staff member.
    pub fn all(&self) -> impl Iterator<Item = &Staff> {
        self.by_id.values()
    }

    /// How many levels above `id` the manager `other` is, if they are.
    pub fn levels_up(&self, id: &str, other: &str) -> Option<u32> {
        let mut seen = HashSet::new();
        let mut cur = self.by_id.get(id)?.manager_id.as_deref();
        let mut level = 1;
        while let Some(m) = cur {
            if !seen.insert(m) {
                return None; // a cycle: walked once
            }
            if m == other {
                return Some(level);
            }
            level += 1;
            cur = self.by_id.get(m).and_then(|s| s.manager_id.as_deref());
        }
        None
    }

    /// Where `agent` stands relative to `introducer`, within `line`.
    pub fn relation(&self, introducer: &str, agent: &str, line: ReportingLine) -> Option<Relation> {
        match line {
            ReportingLine::None => None,
            ReportingLine::Up => self.levels_up(introducer, agent).map(Relation::Manager),
            ReportingLine::Both => self
                .levels_up(introducer, agent)
                .map(Relation::Manager)
                .or_else(|| self.levels_up(agent, introducer).map(Relation::Report)),
        }
    }

    /// Everyone who reports to `id`, directly or not.
    pub fn all_reports(&self, id: &str) -> HashSet<&str> {
        let mut out = HashSet::new();
        let mut stack = vec![id];
        while let Some(cur) = stack.pop() {
            for r in self.reports.get(cur).into_iter().flatten() {
                if r != id && out.insert(r.as_str()) {
                    stack.push(r);
                }
            }
        }
        out
    }
}

/// May `agent_id` call `client` back, on day `on`, for a callback that is a
/// compliance callback or not? `Ok(())` or the first [`Refusal`] that
/// applies (see the module docs for the order).
pub fn may_call(
    dir: &Directory,
    rules: &Avoidance,
    agent_id: &str,
    client: &Client,
    compliance: bool,
    on: NaiveDate,
) -> Result<(), Refusal> {
    let agent = dir.get(agent_id).ok_or(Refusal::UnknownAgent)?;
    if let Some(left) = agent.left_on
        && left <= on
    {
        return Err(Refusal::Departed(left));
    }
    if !agent.active {
        return Err(Refusal::Inactive);
    }
    if let Some(intro) = client.introducer_id.as_deref() {
        if intro == agent_id {
            return Err(Refusal::Introducer);
        }
        if let Some(rel) = dir.relation(intro, agent_id, rules.line) {
            return Err(Refusal::ReportingLine(rel));
        }
    }
    let allowed = if compliance { &rules.compliance_roles } else { &rules.agent_roles };
    if !allowed.contains(&agent.role) || !rules.agent_roles.contains(&agent.role) {
        return Err(Refusal::Role { role: agent.role, compliance });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn day(d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(2026, 11, d).unwrap()
    }

    fn staff(id: &str, role: Role, manager: Option<&str>) -> Staff {
        Staff {
            staff_id: id.into(),
            name: format!("name-{id}"),
            role,
            branch: "B1".into(),
            manager_id: manager.map(String::from),
            sip_uri: None,
            active: true,
            left_on: None,
        }
    }

    fn client(introducer: Option<&str>) -> Client {
        Client {
            client_id: "C1".into(),
            name: "n".into(),
            phone: "13800000000".into(),
            branch: "B1".into(),
            opened_on: day(2),
            introducer_id: introducer.map(String::from),
            broker_introduced: false,
            assets: None,
            yearly_commission: None,
            monthly_turnover: None,
            last_trade_on: None,
            id_number: None,
            risk_level: None,
        }
    }

    /// head ← mgr ← sales1 (introducer) ← junior; svc, comp elsewhere.
    fn directory() -> Directory {
        let mut left = staff("gone", Role::Service, None);
        left.left_on = Some(day(20));
        let mut off = staff("off", Role::Service, None);
        off.active = false;
        Directory::new([
            staff("head", Role::Supervisor, None),
            staff("mgr", Role::Supervisor, Some("head")),
            staff("sales1", Role::Sales, Some("mgr")),
            staff("junior", Role::Service, Some("sales1")),
            staff("sales2", Role::Sales, None),
            staff("svc", Role::Service, Some("head2")),
            staff("comp", Role::Compliance, None),
            staff("broker", Role::Broker, None),
            left,
            off,
        ])
    }

    #[test]
    fn table_of_cases() {
        let dir = directory();
        let up = Avoidance::default();
        let both = Avoidance { line: ReportingLine::Both, ..Avoidance::default() };
        let none = Avoidance { line: ReportingLine::None, ..Avoidance::default() };
        let c = client(Some("sales1"));
        type Case<'a> = (&'a Avoidance, &'a str, bool, u32, Result<(), Refusal>);
        let cases: Vec<Case> = vec![
            (&up, "svc", true, 27, Ok(())),
            (&up, "comp", true, 27, Ok(())),
            (&up, "sales1", false, 27, Err(Refusal::Introducer)),
            (&up, "sales1", true, 27, Err(Refusal::Introducer)),
            (&up, "mgr", true, 27, Err(Refusal::ReportingLine(Relation::Manager(1)))),
            (&up, "head", true, 27, Err(Refusal::ReportingLine(Relation::Manager(2)))),
            (&none, "mgr", true, 27, Ok(())),
            (&up, "junior", true, 27, Ok(())),
            (&both, "junior", true, 27, Err(Refusal::ReportingLine(Relation::Report(1)))),
            (&up, "sales2", true, 27, Err(Refusal::Role { role: Role::Sales, compliance: true })),
            (&up, "sales2", false, 27, Ok(())),
            (&up, "broker", false, 27, Err(Refusal::Role { role: Role::Broker, compliance: false })),
            (&up, "gone", true, 19, Ok(())),
            (&up, "gone", true, 20, Err(Refusal::Departed(day(20)))),
            (&up, "off", true, 27, Err(Refusal::Inactive)),
            (&up, "nobody", true, 27, Err(Refusal::UnknownAgent)),
        ];
        for (rules, agent, compliance, d, want) in cases {
            assert_eq!(
                may_call(&dir, rules, agent, &c, compliance, day(d)),
                want,
                "{agent} {compliance} {d}"
            );
        }
        // no introducer: only roles and status matter
        assert_eq!(may_call(&dir, &up, "mgr", &client(None), true, day(27)), Ok(()));
    }

    #[test]
    fn config_is_checked() {
        let bad = AvoidanceConfig { reporting_line: "sideways".into(), ..Default::default() };
        assert_eq!(bad.resolve().unwrap_err().0, "avoidance.reporting_line");
        let bad = AvoidanceConfig { compliance_roles: vec!["sales".into()], ..Default::default() };
        assert_eq!(bad.resolve().unwrap_err().0, "avoidance.compliance_roles");
        let bad = AvoidanceConfig { agent_roles: vec!["chef".into()], ..Default::default() };
        assert_eq!(bad.resolve().unwrap_err().0, "avoidance.agent_roles[0]");
    }

    #[test]
    fn a_manager_cycle_terminates() {
        let dir =
            Directory::new([staff("a", Role::Service, Some("b")), staff("b", Role::Service, Some("a"))]);
        assert_eq!(dir.levels_up("a", "b"), Some(1));
        assert_eq!(dir.levels_up("a", "zzz"), None);
        let both = Avoidance { line: ReportingLine::Both, ..Avoidance::default() };
        assert!(may_call(&dir, &both, "b", &client(Some("a")), true, day(1)).is_err());
    }

    // ------------------------------------------------------------ properties

    /// A random staff forest: staff i's manager is some j < i (or none), so
    /// the lines are trees; `cyclic` adds a few arbitrary edges.
    fn arb_world() -> impl Strategy<Value = (Vec<Staff>, Option<usize>, usize, bool, u32)> {
        (2usize..25).prop_flat_map(|n| {
            (
                proptest::collection::vec((0usize..6, any::<bool>(), 0u32..40, 0usize..n, any::<bool>()), n),
                proptest::option::of(0..n),
                0..n,
                any::<bool>(),
                1u32..30,
                any::<bool>(),
            )
                .prop_map(move |(rows, intro, agent, compliance, on, cyclic)| {
                    let staff = rows
                        .iter()
                        .enumerate()
                        .map(|(i, (role, active, left, mgr, has_mgr))| {
                            let manager = if cyclic {
                                has_mgr.then(|| format!("s{mgr}"))
                            } else if i > 0 && *has_mgr {
                                Some(format!("s{}", mgr % i))
                            } else {
                                None
                            };
                            Staff {
                                staff_id: format!("s{i}"),
                                name: String::new(),
                                role: Role::ALL[*role],
                                branch: "B".into(),
                                manager_id: manager,
                                sip_uri: None,
                                active: *active || *left % 3 == 0,
                                left_on: (*left < 30).then(|| day(left.max(&1).to_owned())),
                            }
                        })
                        .collect();
                    (staff, intro, agent, compliance, on)
                })
        })
    }

    fn line_strategy() -> impl Strategy<Value = ReportingLine> {
        prop_oneof![Just(ReportingLine::None), Just(ReportingLine::Up), Just(ReportingLine::Both)]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]

        /// Whatever the tree: an allowed call is never by the introducer,
        /// never by a manager of the introducer (when configured), never by
        /// an inactive or departed agent, never by sales or a broker for a
        /// compliance callback.
        #[test]
        fn allowed_calls_break_no_rule((staff, intro, agent, compliance, on) in arb_world(), line in line_strategy()) {
            let dir = Directory::new(staff.clone());
            let rules = Avoidance { line, ..Avoidance::default() };
            let intro_id = intro.map(|i| format!("s{i}"));
            let c = client(intro_id.as_deref());
            let agent_id = format!("s{agent}");
            let a = dir.get(&agent_id).unwrap();
            let verdict = may_call(&dir, &rules, &agent_id, &c, compliance, day(on));
            if verdict.is_ok() {
                prop_assert!(a.active);
                prop_assert!(a.left_on.is_none_or(|l| l > day(on)));
                prop_assert_ne!(Some(&agent_id), intro_id.as_ref());
                if compliance {
                    prop_assert!(a.role != Role::Sales && a.role != Role::Broker);
                }
                if let Some(i) = &intro_id && line != ReportingLine::None {
                    // walk the chain by hand: the agent is not above the introducer
                    let mut cur = dir.get(i).and_then(|s| s.manager_id.clone());
                    let mut seen = HashSet::new();
                    while let Some(m) = cur {
                        prop_assert_ne!(&m, &agent_id);
                        if !seen.insert(m.clone()) { break; }
                        cur = dir.get(&m).and_then(|s| s.manager_id.clone());
                    }
                    if line == ReportingLine::Both {
                        prop_assert!(!dir.all_reports(i).contains(agent_id.as_str()));
                    }
                }
            }
        }

        /// The reason given is true: an introducer refusal names the
        /// introducer, a departure the agent's own date, a manager
        /// relation the real distance.
        #[test]
        fn reasons_are_true((staff, intro, agent, compliance, on) in arb_world(), line in line_strategy()) {
            let dir = Directory::new(staff);
            let rules = Avoidance { line, ..Avoidance::default() };
            let intro_id = intro.map(|i| format!("s{i}"));
            let c = client(intro_id.as_deref());
            let agent_id = format!("s{agent}");
            match may_call(&dir, &rules, &agent_id, &c, compliance, day(on)) {
                Ok(()) => {}
                Err(Refusal::Introducer) => prop_assert_eq!(intro_id.as_deref(), Some(agent_id.as_str())),
                Err(Refusal::Departed(d)) => {
                    prop_assert_eq!(dir.get(&agent_id).unwrap().left_on, Some(d));
                    prop_assert!(d <= day(on));
                }
                Err(Refusal::Inactive) => prop_assert!(!dir.get(&agent_id).unwrap().active),
                Err(Refusal::ReportingLine(Relation::Manager(n))) => {
                    prop_assert!(line != ReportingLine::None);
                    prop_assert_eq!(dir.levels_up(intro_id.as_deref().unwrap(), &agent_id), Some(n));
                }
                Err(Refusal::ReportingLine(Relation::Report(n))) => {
                    prop_assert_eq!(line, ReportingLine::Both);
                    prop_assert_eq!(dir.levels_up(&agent_id, intro_id.as_deref().unwrap()), Some(n));
                }
                Err(Refusal::Role { role, compliance: c2 }) => {
                    prop_assert_eq!(c2, compliance);
                    prop_assert_eq!(dir.get(&agent_id).unwrap().role, role);
                }
                Err(Refusal::UnknownAgent) => prop_assert!(false, "every agent is in the list"),
            }
        }

        /// A wider reporting line never allows more calls.
        #[test]
        fn wider_lines_refuse_at_least_as_much((staff, intro, agent, compliance, on) in arb_world()) {
            let dir = Directory::new(staff);
            let c = client(intro.map(|i| format!("s{i}")).as_deref());
            let agent_id = format!("s{agent}");
            let ok = |line| {
                let rules = Avoidance { line, ..Avoidance::default() };
                may_call(&dir, &rules, &agent_id, &c, compliance, day(on)).is_ok()
            };
            let (none, up, both) = (ok(ReportingLine::None), ok(ReportingLine::Up), ok(ReportingLine::Both));
            prop_assert!(!both || up);
            prop_assert!(!up || none);
            // and a compliance callback is never allowed where a service one is not
            let rules = Avoidance::default();
            if may_call(&dir, &rules, &agent_id, &c, true, day(on)).is_ok() {
                prop_assert!(may_call(&dir, &rules, &agent_id, &c, false, day(on)).is_ok());
            }
        }
    }
}
