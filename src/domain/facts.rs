//! The facts the rules work on: clients, staff and events, as imported
//! from the brokerage's systems (`huifang import`), plus money.
//!
//! These are plain values. Personal data (a client's name and phone) is
//! kept because the callback needs it, but `Debug` of a [`Client`] masks
//! both, so that a value logged by mistake leaks nothing; use [`mask_phone`]
//! and [`mask_name`] wherever such a value must be shown in a message.

use std::fmt;
use std::str::FromStr;

use chrono::NaiveDate;

/// An amount of money in fen (0.01 CNY), exact: thresholds compare without
/// rounding.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Cny(pub i64);

impl Cny {
    /// Whole yuan.
    pub fn yuan(y: i64) -> Cny {
        Cny(y.saturating_mul(100))
    }
}

impl fmt::Display for Cny {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let sign = if self.0 < 0 { "-" } else { "" };
        let a = self.0.unsigned_abs();
        write!(f, "{sign}{}.{:02}", a / 100, a % 100)
    }
}

impl FromStr for Cny {
    type Err = &'static str;

    /// `1234`, `1234.5`, `1,234.56`, `-20.00` (thousands separators
    /// allowed, at most two decimals).
    fn from_str(s: &str) -> Result<Cny, &'static str> {
        let s: String = s.trim().chars().filter(|c| *c != ',').collect();
        let (neg, digits) = match s.strip_prefix('-') {
            Some(rest) => (true, rest),
            None => (false, s.as_str()),
        };
        let (whole, frac) = digits.split_once('.').unwrap_or((digits, ""));
        if whole.is_empty() || !whole.bytes().all(|b| b.is_ascii_digit()) {
            return Err("not an amount (digits, optional . and two decimals)");
        }
        if frac.len() > 2 || !frac.bytes().all(|b| b.is_ascii_digit()) {
            return Err("at most two decimals");
        }
        let whole: i64 = whole.parse().map_err(|_| "amount too large")?;
        let frac: i64 = if frac.is_empty() { 0 } else { format!("{frac:0<2}").parse().unwrap_or(0) };
        let fen = whole.checked_mul(100).and_then(|w| w.checked_add(frac)).ok_or("amount too large")?;
        Ok(Cny(if neg { -fen } else { fen }))
    }
}

/// A client of the brokerage.
#[derive(Clone, PartialEq, Eq)]
pub struct Client {
    /// The brokerage's client id (客户号): the natural key.
    pub client_id: String,
    /// Name (personal data).
    pub name: String,
    /// Phone number (personal data).
    pub phone: String,
    /// Branch (营业部).
    pub branch: String,
    /// Account opening date (开户日期).
    pub opened_on: NaiveDate,
    /// The staff member or broker who introduced the client (介绍人).
    pub introducer_id: Option<String>,
    /// Opened through an external broker (经纪人客户): called back 100%.
    pub broker_introduced: bool,
    /// Assets.
    pub assets: Option<Cny>,
    /// Commission over the last year.
    pub yearly_commission: Option<Cny>,
    /// Turnover over the last month.
    pub monthly_turnover: Option<Cny>,
    /// Last trade.
    pub last_trade_on: Option<NaiveDate>,
    /// ID number (证件号码; personal data), when the client list has one.
    pub id_number: Option<String>,
    /// Risk level (风险等级, `C1`–`C5`), when the client list has one.
    pub risk_level: Option<String>,
}

impl fmt::Debug for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Client")
            .field("client_id", &self.client_id)
            .field("name", &mask_name(&self.name))
            .field("phone", &mask_phone(&self.phone))
            .field("branch", &self.branch)
            .field("opened_on", &self.opened_on)
            .field("introducer_id", &self.introducer_id)
            .field("broker_introduced", &self.broker_introduced)
            .finish_non_exhaustive()
    }
}

/// What a staff member does; decides which callbacks they may make (E7).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Role {
    /// Sales (营销): never makes compliance callbacks.
    Sales,
    /// Callback / service agent (回访人员).
    Service,
    /// Compliance (合规).
    Compliance,
    /// Reviewer (复核人员).
    Reviewer,
    /// Supervisor, branch head (营运总监 / 营业部负责人).
    Supervisor,
    /// External broker (经纪人): introduces clients, never calls them back.
    Broker,
}

impl Role {
    /// Every role.
    pub const ALL: [Role; 6] =
        [Role::Sales, Role::Service, Role::Compliance, Role::Reviewer, Role::Supervisor, Role::Broker];

    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Sales => "sales",
            Role::Service => "service",
            Role::Compliance => "compliance",
            Role::Reviewer => "reviewer",
            Role::Supervisor => "supervisor",
            Role::Broker => "broker",
        }
    }

    /// A role from its English name or a Chinese equivalent.
    pub fn parse(s: &str) -> Option<Role> {
        Some(match s.trim().to_ascii_lowercase().as_str() {
            "sales" | "营销" | "营销人员" | "销售" => Role::Sales,
            "service" | "回访" | "回访人员" | "回访专员" | "客服" => Role::Service,
            "compliance" | "合规" => Role::Compliance,
            "reviewer" | "复核" | "复核人员" => Role::Reviewer,
            "supervisor" | "营运总监" | "营业部负责人" | "主管" => Role::Supervisor,
            "broker" | "经纪人" => Role::Broker,
            _ => return None,
        })
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A member of staff (agents, reviewers, sales, brokers…).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Staff {
    /// Staff id (工号): the natural key.
    pub staff_id: String,
    /// Name.
    pub name: String,
    /// Role.
    pub role: Role,
    /// Branch.
    pub branch: String,
    /// Manager (the reporting line goes up through these).
    pub manager_id: Option<String>,
    /// The agent's softphone, for the dialer.
    pub sip_uri: Option<String>,
    /// Active (在职, not suspended).
    pub active: bool,
    /// Day of departure (离职日期), if any.
    pub left_on: Option<NaiveDate>,
}

/// What an event says happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum EventKind {
    /// An account was opened.
    AccountOpened,
    /// Assets moved in (transfer, deposit, custody transfer).
    AssetInflow,
    /// Assets moved out.
    AssetOutflow,
    /// Trading turnover.
    Turnover,
    /// A complaint (投诉).
    Complaint,
    /// An abnormal-trading alert (异常交易).
    AbnormalTrading,
    /// A special callback order from head office (专项回访).
    SpecialOrder,
    /// A front-office employee left (离职).
    StaffDeparture,
}

impl EventKind {
    /// Every kind.
    pub const ALL: [EventKind; 8] = [
        EventKind::AccountOpened,
        EventKind::AssetInflow,
        EventKind::AssetOutflow,
        EventKind::Turnover,
        EventKind::Complaint,
        EventKind::AbnormalTrading,
        EventKind::SpecialOrder,
        EventKind::StaffDeparture,
    ];

    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::AccountOpened => "account_opened",
            EventKind::AssetInflow => "asset_inflow",
            EventKind::AssetOutflow => "asset_outflow",
            EventKind::Turnover => "turnover",
            EventKind::Complaint => "complaint",
            EventKind::AbnormalTrading => "abnormal_trading",
            EventKind::SpecialOrder => "special_order",
            EventKind::StaffDeparture => "staff_departure",
        }
    }

    /// A kind from its English name or a Chinese equivalent.
    pub fn parse(s: &str) -> Option<EventKind> {
        let s = s.trim().to_ascii_lowercase();
        if let Some(k) = EventKind::ALL.into_iter().find(|k| k.as_str() == s) {
            return Some(k);
        }
        Some(match s.as_str() {
            "开户" => EventKind::AccountOpened,
            "资产转入" | "资金转入" => EventKind::AssetInflow,
            "资产转出" | "资金转出" => EventKind::AssetOutflow,
            "成交" | "交易量" | "成交金额" => EventKind::Turnover,
            "投诉" => EventKind::Complaint,
            "异常交易" => EventKind::AbnormalTrading,
            "专项回访" | "专项" => EventKind::SpecialOrder,
            "离职" | "员工离职" => EventKind::StaffDeparture,
            _ => return None,
        })
    }

    /// Whether the event must name a client.
    pub fn needs_client(self) -> bool {
        !matches!(self, EventKind::StaffDeparture)
    }

    /// Whether the event must carry an amount.
    pub fn needs_amount(self) -> bool {
        matches!(self, EventKind::AssetInflow | EventKind::AssetOutflow | EventKind::Turnover)
    }
}

impl fmt::Display for EventKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Something that happened, from the brokerage's monitoring systems.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    /// Event id: the natural key.
    pub event_id: String,
    /// The client concerned (all kinds but `staff_departure`).
    pub client_id: Option<String>,
    /// What happened.
    pub kind: EventKind,
    /// When.
    pub occurred_on: NaiveDate,
    /// How much (inflow, outflow, turnover).
    pub amount: Option<Cny>,
    /// The staff member concerned (`staff_departure`; optional otherwise).
    pub staff_id: Option<String>,
    /// Free text (a special order's instructions).
    pub note: Option<String>,
}

/// A phone number with all but the first three and last four digits
/// hidden: `138****5678`; short numbers keep only their last two.
pub fn mask_phone(phone: &str) -> String {
    let chars: Vec<char> = phone.chars().collect();
    let n = chars.len();
    if n >= 8 {
        let head: String = chars[..3].iter().collect();
        let tail: String = chars[n - 4..].iter().collect();
        format!("{head}{}{tail}", "*".repeat(n - 7))
    } else if n > 2 {
        format!("{}{}", "*".repeat(n - 2), chars[n - 2..].iter().collect::<String>())
    } else {
        "*".repeat(n)
    }
}

/// A name with all but its first character hidden: `张*`, `J***`.
pub fn mask_name(name: &str) -> String {
    let mut chars = name.chars();
    match chars.next() {
        Some(first) => format!("{first}{}", "*".repeat(chars.count().max(1))),
        None => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn amounts_parse_exactly() {
        let cases = [
            ("0", Some(0)),
            ("3000000", Some(300_000_000)),
            ("3,000,000.00", Some(300_000_000)),
            ("2999999.99", Some(299_999_999)),
            ("12.5", Some(1250)),
            ("-20.00", Some(-2000)),
            ("1.234", None),
            ("abc", None),
            ("", None),
            (".5", None),
            ("99999999999999999999", None),
        ];
        for (text, want) in cases {
            assert_eq!(text.parse::<Cny>().ok().map(|c| c.0), want, "{text}");
        }
        assert_eq!(Cny(1250).to_string(), "12.50");
        assert_eq!(Cny(-5).to_string(), "-0.05");
    }

    #[test]
    fn masks() {
        assert_eq!(mask_phone("13812345678"), "138****5678");
        assert_eq!(mask_phone("+8613812345678"), "+86*******5678");
        assert_eq!(mask_phone("12345"), "***45");
        assert_eq!(mask_name("张三丰"), "张**");
        assert_eq!(mask_name("张"), "张*");
        assert_eq!(mask_name(""), "");
    }

    #[test]
    fn client_debug_hides_personal_data() {
        let c = Client {
            client_id: "C1".into(),
            name: "王小明".into(),
            phone: "13812345678".into(),
            branch: "SH01".into(),
            opened_on: NaiveDate::from_ymd_opt(2026, 11, 2).unwrap(),
            introducer_id: None,
            broker_introduced: false,
            assets: None,
            yearly_commission: None,
            monthly_turnover: None,
            last_trade_on: None,
            id_number: None,
            risk_level: None,
        };
        let s = format!("{c:?}");
        assert!(!s.contains("13812345678") && !s.contains("王小明"), "{s}");
    }

    #[test]
    fn names_parse_in_both_languages() {
        assert_eq!(Role::parse("营销"), Some(Role::Sales));
        assert_eq!(Role::parse("Compliance"), Some(Role::Compliance));
        assert_eq!(Role::parse("boss"), None);
        assert_eq!(EventKind::parse("投诉"), Some(EventKind::Complaint));
        assert_eq!(EventKind::parse("asset_inflow"), Some(EventKind::AssetInflow));
        for k in EventKind::ALL {
            assert_eq!(EventKind::parse(k.as_str()), Some(k));
        }
        for r in Role::ALL {
            assert_eq!(Role::parse(r.as_str()), Some(r));
        }
    }
}
