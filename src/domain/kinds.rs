//! Kinds of callback task and their numbers.
//!
//! Each [`TaskKind`] is one rule of `DOMAIN.md` ("new account", "important
//! clients", …). Its numbers — deadline, sampling ratio, thresholds,
//! cadence, priority, retention kind, whether it is a compliance callback —
//! live in [`RulesConfig`], the `[rules.*]` sections of the configuration,
//! with DOMAIN.md's values as defaults. [`RulesConfig::check`] validates
//! them (the caller adds the file name).
//!
//! Priority: 1 is the most urgent. The dialer orders tasks overdue first,
//! then by due date, then by priority.

use std::fmt;

use serde::Deserialize;

use super::facts::Cny;

/// A kind of callback task: one rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum TaskKind {
    /// 新开户回访: new accounts (external-broker clients 100%, others sampled).
    NewAccount,
    /// 重要客户回访: clients above the thresholds, on a cadence.
    Important,
    /// 潜在风险客户回访: the week's top inflow, outflow and turnover.
    PotentialRisk,
    /// 投诉回访: every complaint.
    Complaint,
    /// 异常交易回访: every abnormal-trading alert.
    AbnormalTrading,
    /// 离职前台业务人员客户回访: every client of a departed employee.
    DepartedStaff,
    /// 休眠客户回访: dormant clients, sampled per half-year.
    Dormant,
    /// 专项回访: clients named by a head-office order.
    Special,
    /// 存量客户回访: a yearly sample of last year-end's clients, dormant
    /// ones excluded (CSRC: at least 10%).
    Existing,
}

impl TaskKind {
    /// Every kind.
    pub const ALL: [TaskKind; 9] = [
        TaskKind::NewAccount,
        TaskKind::Important,
        TaskKind::PotentialRisk,
        TaskKind::Complaint,
        TaskKind::AbnormalTrading,
        TaskKind::DepartedStaff,
        TaskKind::Dormant,
        TaskKind::Special,
        TaskKind::Existing,
    ];

    /// The stored name (also the `[rules.NAME]` section).
    pub fn as_str(self) -> &'static str {
        match self {
            TaskKind::NewAccount => "new_account",
            TaskKind::Important => "important",
            TaskKind::PotentialRisk => "potential_risk",
            TaskKind::Complaint => "complaint",
            TaskKind::AbnormalTrading => "abnormal_trading",
            TaskKind::DepartedStaff => "departed_staff",
            TaskKind::Dormant => "dormant",
            TaskKind::Special => "special",
            TaskKind::Existing => "existing",
        }
    }

    /// The Chinese name of the callback project.
    pub fn zh(self) -> &'static str {
        match self {
            TaskKind::NewAccount => "新开户回访",
            TaskKind::Important => "重要客户回访",
            TaskKind::PotentialRisk => "潜在风险客户回访",
            TaskKind::Complaint => "投诉回访",
            TaskKind::AbnormalTrading => "异常交易回访",
            TaskKind::DepartedStaff => "离职人员客户回访",
            TaskKind::Dormant => "休眠客户回访",
            TaskKind::Special => "专项回访",
            TaskKind::Existing => "存量客户回访",
        }
    }

    /// The English name of the callback project.
    pub fn en(self) -> &'static str {
        match self {
            TaskKind::NewAccount => "New account callback",
            TaskKind::Important => "Important client callback",
            TaskKind::PotentialRisk => "Potential risk callback",
            TaskKind::Complaint => "Complaint callback",
            TaskKind::AbnormalTrading => "Abnormal trading callback",
            TaskKind::DepartedStaff => "Departed staff's client callback",
            TaskKind::Dormant => "Dormant client callback",
            TaskKind::Special => "Special callback",
            TaskKind::Existing => "Existing client callback",
        }
    }

    /// A kind from its stored name.
    pub fn from_name(s: &str) -> Option<TaskKind> {
        TaskKind::ALL.into_iter().find(|k| k.as_str() == s)
    }
}

impl fmt::Display for TaskKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How often a cadenced rule comes round; tasks are due on the period's
/// last business day.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Cadence {
    /// Every calendar month (`2026-11`).
    Monthly,
    /// Every quarter (`2026-Q4`).
    Quarterly,
    /// Every half-year (`2026-H2`).
    HalfYearly,
    /// Every year (`2026`).
    Yearly,
}

impl Cadence {
    /// A cadence from its config name.
    pub fn parse(s: &str) -> Option<Cadence> {
        Some(match s {
            "monthly" => Cadence::Monthly,
            "quarterly" => Cadence::Quarterly,
            "half_yearly" => Cadence::HalfYearly,
            "yearly" => Cadence::Yearly,
            _ => return None,
        })
    }
}

/// What every rule has.
#[derive(Debug, Clone, PartialEq)]
pub struct Policy {
    /// Whether the rule creates tasks at all.
    pub enabled: bool,
    /// 1 = most urgent.
    pub priority: u8,
    /// Decides how long the recordings are kept (`[retention.years]`).
    pub retention_kind: String,
    /// A compliance callback: never made by a sales-role agent (E7).
    pub compliance: bool,
}

macro_rules! defaults {
    ($($f:ident: $t:ty = $v:expr;)*) => {$(
        fn $f() -> $t { $v }
    )*};
}

defaults! {
    yes: bool = true;
    no: bool = false;
    p1: u8 = 1;
    p2: u8 = 2;
    p3: u8 = 3;
    p4: u8 = 4;
    p5: u8 = 5;
    bd2: u32 = 2;
    bd5: u32 = 5;
    new_ratio: f64 = 0.30;
    dormant_ratio: f64 = 0.20;
    lookback: u32 = 30;
    dormant_days: u32 = 180;
    top10: u32 = 10;
    assets_3m: i64 = 3_000_000;
    commission_200k: i64 = 200_000;
    turnover_10m: i64 = 10_000_000;
    hq_10m: i64 = 10_000_000;
    monthly: String = "monthly".into();
    yearly: String = "yearly".into();
    rk_new: String = "new_account".into();
    rk_important: String = "important".into();
    rk_risk: String = "potential_risk".into();
    rk_complaint: String = "complaint".into();
    rk_abnormal: String = "abnormal_trading".into();
    rk_departed: String = "departed_staff".into();
    rk_dormant: String = "dormant".into();
    rk_special: String = "special".into();
    rk_existing: String = "existing".into();
    existing_ratio: f64 = 0.10;
}

/// `[rules.new_account]`: 新开户回访.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewAccountRule {
    /// Whether the rule creates tasks.
    #[serde(default = "yes")]
    pub enabled: bool,
    /// Due this many business days after the opening day.
    #[serde(default = "bd5")]
    pub due_business_days: u32,
    /// Share of ordinary (not broker-introduced) new clients called back.
    #[serde(default = "new_ratio")]
    pub sample_ratio: f64,
    /// Only accounts opened within this many days before the planning day.
    #[serde(default = "lookback")]
    pub lookback_days: u32,
    /// 1 = most urgent.
    #[serde(default = "p2")]
    pub priority: u8,
    /// Retention kind of the recordings.
    #[serde(default = "rk_new")]
    pub retention_kind: String,
    /// Compliance callback (no sales agents).
    #[serde(default = "yes")]
    pub compliance: bool,
}

/// `[rules.important]`: 重要客户回访.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ImportantRule {
    /// Whether the rule creates tasks.
    #[serde(default = "yes")]
    pub enabled: bool,
    /// Important from these assets, CNY (inclusive).
    #[serde(default = "assets_3m")]
    pub assets_cny: i64,
    /// Or from this yearly commission, CNY (inclusive).
    #[serde(default = "commission_200k")]
    pub yearly_commission_cny: i64,
    /// Or from this monthly turnover, CNY (inclusive).
    #[serde(default = "turnover_10m")]
    pub monthly_turnover_cny: i64,
    /// Head-office-level clients from these assets, CNY (inclusive).
    #[serde(default = "hq_10m")]
    pub hq_assets_cny: i64,
    /// Cadence of the other important (core) clients.
    #[serde(default = "monthly")]
    pub cadence: String,
    /// Cadence of head-office-level clients.
    #[serde(default = "yearly")]
    pub hq_cadence: String,
    /// 1 = most urgent.
    #[serde(default = "p4")]
    pub priority: u8,
    /// Retention kind of the recordings.
    #[serde(default = "rk_important")]
    pub retention_kind: String,
    /// Compliance callback (no sales agents).
    #[serde(default = "no")]
    pub compliance: bool,
}

/// `[rules.potential_risk]`: 潜在风险客户回访.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PotentialRiskRule {
    /// Whether the rule creates tasks.
    #[serde(default = "yes")]
    pub enabled: bool,
    /// The top N clients of the week for each of inflow, outflow, turnover
    /// (ties at the cut-off are all included).
    #[serde(default = "top10")]
    pub top_n: u32,
    /// Due this many business days after the planning day.
    #[serde(default = "bd2")]
    pub due_business_days: u32,
    /// 1 = most urgent.
    #[serde(default = "p1")]
    pub priority: u8,
    /// Retention kind of the recordings.
    #[serde(default = "rk_risk")]
    pub retention_kind: String,
    /// Compliance callback (no sales agents).
    #[serde(default = "yes")]
    pub compliance: bool,
}

/// The event-driven rules (`complaint`, `abnormal_trading`,
/// `departed_staff`, `special`) as the planner reads them: one task per
/// event (per client for a departure), due N business days after it.
#[derive(Debug, Clone, PartialEq)]
pub struct EventRule {
    /// Whether the rule creates tasks.
    pub enabled: bool,
    /// Due this many business days after the event.
    pub due_business_days: u32,
    /// 1 = most urgent.
    pub priority: u8,
    /// Retention kind of the recordings.
    pub retention_kind: String,
    /// Compliance callback (no sales agents).
    pub compliance: bool,
}

/// One `[rules.NAME]` section of an event-driven rule, with its own defaults.
macro_rules! event_section {
    ($(#[$doc:meta])* $name:ident, $due:ident = $dues:literal, $prio:ident = $prios:literal, $rk:ident = $rks:literal) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Deserialize)]
        #[serde(deny_unknown_fields)]
        pub struct $name {
            /// Whether the rule creates tasks.
            #[serde(default = "yes")]
            pub enabled: bool,
            /// Due this many business days after the event.
            #[serde(default = $dues)]
            pub due_business_days: u32,
            /// 1 = most urgent.
            #[serde(default = $prios)]
            pub priority: u8,
            /// Retention kind of the recordings.
            #[serde(default = $rks)]
            pub retention_kind: String,
            /// Compliance callback (no sales agents).
            #[serde(default = "yes")]
            pub compliance: bool,
        }

        impl Default for $name {
            fn default() -> Self {
                $name {
                    enabled: true,
                    due_business_days: $due(),
                    priority: $prio(),
                    retention_kind: $rk(),
                    compliance: true,
                }
            }
        }

        impl $name {
            /// The section as the planner reads it.
            pub fn rule(&self) -> EventRule {
                EventRule {
                    enabled: self.enabled,
                    due_business_days: self.due_business_days,
                    priority: self.priority,
                    retention_kind: self.retention_kind.clone(),
                    compliance: self.compliance,
                }
            }
        }
    };
}

event_section!(
    /// `[rules.complaint]`: 投诉回访, every complaint, promptly.
    ComplaintRule, bd2 = "bd2", p1 = "p1", rk_complaint = "rk_complaint"
);
event_section!(
    /// `[rules.abnormal_trading]`: 异常交易回访, every alert, promptly.
    AbnormalTradingRule, bd2 = "bd2", p1 = "p1", rk_abnormal = "rk_abnormal"
);
event_section!(
    /// `[rules.departed_staff]`: every client of a departed employee.
    DepartedStaffRule, bd5 = "bd5", p3 = "p3", rk_departed = "rk_departed"
);
event_section!(
    /// `[rules.special]`: 专项回访, every client named by an order.
    SpecialRule, bd5 = "bd5", p2 = "p2", rk_special = "rk_special"
);

/// `[rules.dormant]`: 休眠客户回访.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DormantRule {
    /// Whether the rule creates tasks.
    #[serde(default = "yes")]
    pub enabled: bool,
    /// Dormant after this many days without a trade (or since opening
    /// when the client never traded).
    #[serde(default = "dormant_days")]
    pub dormant_after_days: u32,
    /// Share called back per half-year.
    #[serde(default = "dormant_ratio")]
    pub sample_ratio: f64,
    /// 1 = most urgent.
    #[serde(default = "p5")]
    pub priority: u8,
    /// Retention kind of the recordings.
    #[serde(default = "rk_dormant")]
    pub retention_kind: String,
    /// Compliance callback (no sales agents).
    #[serde(default = "no")]
    pub compliance: bool,
}

/// `[rules.existing]`: 存量客户回访.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExistingRule {
    /// Whether the rule creates tasks.
    #[serde(default = "yes")]
    pub enabled: bool,
    /// Share of last year-end's clients (dormant ones excluded) called back
    /// in the year; due on the year's last business day.
    #[serde(default = "existing_ratio")]
    pub sample_ratio: f64,
    /// 1 = most urgent.
    #[serde(default = "p5")]
    pub priority: u8,
    /// Retention kind of the recordings.
    #[serde(default = "rk_existing")]
    pub retention_kind: String,
    /// Compliance callback (no sales agents).
    #[serde(default = "yes")]
    pub compliance: bool,
}

impl Default for ExistingRule {
    fn default() -> Self {
        ExistingRule {
            enabled: true,
            sample_ratio: existing_ratio(),
            priority: p5(),
            retention_kind: rk_existing(),
            compliance: true,
        }
    }
}

/// `[rules]`: every rule.
#[derive(Debug, Clone, PartialEq, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RulesConfig {
    /// New accounts.
    #[serde(default)]
    pub new_account: NewAccountRule,
    /// Important clients.
    #[serde(default)]
    pub important: ImportantRule,
    /// Potential-risk clients.
    #[serde(default)]
    pub potential_risk: PotentialRiskRule,
    /// Complaints.
    #[serde(default)]
    pub complaint: ComplaintRule,
    /// Abnormal-trading alerts.
    #[serde(default)]
    pub abnormal_trading: AbnormalTradingRule,
    /// Clients of departed staff.
    #[serde(default)]
    pub departed_staff: DepartedStaffRule,
    /// Dormant clients.
    #[serde(default)]
    pub dormant: DormantRule,
    /// Special orders.
    #[serde(default)]
    pub special: SpecialRule,
    /// Existing clients.
    #[serde(default)]
    pub existing: ExistingRule,
}

impl Default for NewAccountRule {
    fn default() -> Self {
        NewAccountRule {
            enabled: true,
            due_business_days: bd5(),
            sample_ratio: new_ratio(),
            lookback_days: lookback(),
            priority: p2(),
            retention_kind: rk_new(),
            compliance: true,
        }
    }
}

impl Default for ImportantRule {
    fn default() -> Self {
        ImportantRule {
            enabled: true,
            assets_cny: assets_3m(),
            yearly_commission_cny: commission_200k(),
            monthly_turnover_cny: turnover_10m(),
            hq_assets_cny: hq_10m(),
            cadence: monthly(),
            hq_cadence: yearly(),
            priority: p4(),
            retention_kind: rk_important(),
            compliance: false,
        }
    }
}

impl Default for PotentialRiskRule {
    fn default() -> Self {
        PotentialRiskRule {
            enabled: true,
            top_n: top10(),
            due_business_days: bd2(),
            priority: p1(),
            retention_kind: rk_risk(),
            compliance: true,
        }
    }
}

impl Default for DormantRule {
    fn default() -> Self {
        DormantRule {
            enabled: true,
            dormant_after_days: dormant_days(),
            sample_ratio: dormant_ratio(),
            priority: p5(),
            retention_kind: rk_dormant(),
            compliance: false,
        }
    }
}

impl RulesConfig {
    /// What every rule has, for one kind.
    pub fn policy(&self, kind: TaskKind) -> Policy {
        let p = |enabled, priority, rk: &String, compliance| Policy {
            enabled,
            priority,
            retention_kind: rk.clone(),
            compliance,
        };
        match kind {
            TaskKind::NewAccount => {
                let r = &self.new_account;
                p(r.enabled, r.priority, &r.retention_kind, r.compliance)
            }
            TaskKind::Important => {
                let r = &self.important;
                p(r.enabled, r.priority, &r.retention_kind, r.compliance)
            }
            TaskKind::PotentialRisk => {
                let r = &self.potential_risk;
                p(r.enabled, r.priority, &r.retention_kind, r.compliance)
            }
            TaskKind::Dormant => {
                let r = &self.dormant;
                p(r.enabled, r.priority, &r.retention_kind, r.compliance)
            }
            TaskKind::Existing => {
                let r = &self.existing;
                p(r.enabled, r.priority, &r.retention_kind, r.compliance)
            }
            TaskKind::Complaint | TaskKind::AbnormalTrading | TaskKind::DepartedStaff | TaskKind::Special => {
                let r = self.event_rule(kind).expect("an event rule");
                p(r.enabled, r.priority, &r.retention_kind, r.compliance)
            }
        }
    }

    /// The event-driven rules' section.
    pub fn event_rule(&self, kind: TaskKind) -> Option<EventRule> {
        match kind {
            TaskKind::Complaint => Some(self.complaint.rule()),
            TaskKind::AbnormalTrading => Some(self.abnormal_trading.rule()),
            TaskKind::DepartedStaff => Some(self.departed_staff.rule()),
            TaskKind::Special => Some(self.special.rule()),
            _ => None,
        }
    }

    /// Checks every value: `Err((key, reason))` with the key below `rules.`.
    pub fn check(&self) -> Result<(), (String, String)> {
        let err = |k: &str, r: String| Err((format!("rules.{k}"), r));
        for kind in TaskKind::ALL {
            let p = self.policy(kind);
            let name = kind.as_str();
            if !(1..=9).contains(&p.priority) {
                return err(&format!("{name}.priority"), format!("{} is out of range 1..=9", p.priority));
            }
            if p.retention_kind.is_empty()
                || !p
                    .retention_kind
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
            {
                return err(
                    &format!("{name}.retention_kind"),
                    "must be a non-empty name of a-z, 0-9 and _".into(),
                );
            }
            if let Some(r) = self.event_rule(kind) {
                check_due(&format!("{name}.due_business_days"), r.due_business_days)?;
            }
        }
        let n = &self.new_account;
        check_due("new_account.due_business_days", n.due_business_days)?;
        check_ratio("new_account.sample_ratio", n.sample_ratio)?;
        if n.lookback_days == 0 || n.lookback_days > 366 {
            return err("new_account.lookback_days", format!("{} is out of range 1..=366", n.lookback_days));
        }
        let i = &self.important;
        for (k, v) in [
            ("assets_cny", i.assets_cny),
            ("yearly_commission_cny", i.yearly_commission_cny),
            ("monthly_turnover_cny", i.monthly_turnover_cny),
            ("hq_assets_cny", i.hq_assets_cny),
        ] {
            if v <= 0 || v > 1_000_000_000_000 {
                return err(&format!("important.{k}"), format!("{v} must be a positive amount of CNY"));
            }
        }
        if i.hq_assets_cny < i.assets_cny {
            return err("important.hq_assets_cny", "must not be below important.assets_cny".into());
        }
        for (k, v) in [("cadence", &i.cadence), ("hq_cadence", &i.hq_cadence)] {
            if Cadence::parse(v).is_none() {
                return err(
                    &format!("important.{k}"),
                    format!("{v:?} is not monthly, quarterly, half_yearly or yearly"),
                );
            }
        }
        let r = &self.potential_risk;
        if r.top_n == 0 || r.top_n > 100_000 {
            return err("potential_risk.top_n", format!("{} is out of range 1..=100000", r.top_n));
        }
        check_due("potential_risk.due_business_days", r.due_business_days)?;
        let d = &self.dormant;
        check_ratio("dormant.sample_ratio", d.sample_ratio)?;
        check_ratio("existing.sample_ratio", self.existing.sample_ratio)?;
        if d.dormant_after_days < 30 || d.dormant_after_days > 3660 {
            return err(
                "dormant.dormant_after_days",
                format!("{} is out of range 30..=3660", d.dormant_after_days),
            );
        }
        Ok(())
    }

    /// The important rule's cadences, checked.
    pub fn important_cadences(&self) -> (Cadence, Cadence) {
        let i = &self.important;
        (
            Cadence::parse(&i.cadence).unwrap_or(Cadence::Monthly),
            Cadence::parse(&i.hq_cadence).unwrap_or(Cadence::Yearly),
        )
    }

    /// Thresholds of the important rule in fen.
    pub fn important_thresholds(&self) -> [Cny; 4] {
        let i = &self.important;
        [
            Cny::yuan(i.assets_cny),
            Cny::yuan(i.yearly_commission_cny),
            Cny::yuan(i.monthly_turnover_cny),
            Cny::yuan(i.hq_assets_cny),
        ]
    }
}

fn check_due(key: &str, v: u32) -> Result<(), (String, String)> {
    if v > 60 {
        return Err((format!("rules.{key}"), format!("{v} is out of range 0..=60")));
    }
    Ok(())
}

fn check_ratio(key: &str, v: f64) -> Result<(), (String, String)> {
    if !(v > 0.0 && v <= 1.0) {
        return Err((format!("rules.{key}"), format!("{v} is not a ratio in (0, 1]")));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_domain_numbers() {
        let r = RulesConfig::default();
        assert_eq!(r.new_account.due_business_days, 5);
        assert_eq!(r.new_account.sample_ratio, 0.30);
        assert_eq!(r.important.assets_cny, 3_000_000);
        assert_eq!(r.important.yearly_commission_cny, 200_000);
        assert_eq!(r.important.monthly_turnover_cny, 10_000_000);
        assert_eq!(r.important.hq_assets_cny, 10_000_000);
        assert_eq!(r.dormant.sample_ratio, 0.20);
        assert!(r.policy(TaskKind::Complaint).compliance);
        assert!(!r.policy(TaskKind::Important).compliance);
        r.check().unwrap();
    }

    #[test]
    fn names_round_trip() {
        for k in TaskKind::ALL {
            assert_eq!(TaskKind::from_name(k.as_str()), Some(k));
        }
    }

    #[test]
    fn bad_values_name_their_key() {
        type Change = fn(&mut RulesConfig);
        let cases: [(Change, &str); 6] = [
            (|r| r.new_account.sample_ratio = 0.0, "rules.new_account.sample_ratio"),
            (|r| r.dormant.sample_ratio = 1.5, "rules.dormant.sample_ratio"),
            (|r| r.important.cadence = "hourly".into(), "rules.important.cadence"),
            (|r| r.complaint.priority = 0, "rules.complaint.priority"),
            (|r| r.special.retention_kind = "Special Kind".into(), "rules.special.retention_kind"),
            (|r| r.important.hq_assets_cny = 1, "rules.important.hq_assets_cny"),
        ];
        for (change, key) in cases {
            let mut r = RulesConfig::default();
            change(&mut r);
            assert_eq!(r.check().unwrap_err().0, key);
        }
    }
}
