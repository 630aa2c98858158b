//! Reading the brokerage's CSV exports: clients, staff, events.
//!
//! Pure (text in, rows or errors out); `huifang import` reads the file and
//! stores the rows with one transaction per file. The contract — columns,
//! their Chinese equivalents, formats — is `docs/IMPORT.md`; this module is
//! its implementation:
//!
//! 1. [`decode`]: UTF-8 with or without BOM, or GBK (Excel exports in China);
//!    `auto` takes a BOM, then valid UTF-8, else GBK.
//! 2. The header row: English names or Chinese equivalents, in any order;
//!    a missing required column or a column given twice stops the import;
//!    unknown columns are ignored with a warning.
//! 3. Every row is checked; every error names its line, column, value and
//!    reason (names and phone numbers masked). Any error means the file is
//!    refused: the caller imports nothing. A key given twice is an error.
//!
//! [`Reader`] reads a file row by row, so that a large file is stored in
//! batches while it is read: memory holds the text, the keys seen so far
//! (to find duplicates) and one batch, never every row. Once a row is bad,
//! [`Reader::is_clean`] is false and stays so: the caller stops storing and
//! rolls back; reading on collects the remaining errors (the first
//! [`MAX_ERRORS`] are kept, the others counted). [`clients`], [`staff`] and
//! [`events`] read a whole file into memory at once.

use std::collections::HashMap;
use std::fmt;

use chrono::NaiveDate;
use thiserror::Error;

use crate::domain::facts::{Client, Cny, Event, EventKind, Role, Staff, mask_name, mask_phone};

/// How the file's bytes are encoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    /// A UTF-8 BOM, else valid UTF-8, else GBK.
    Auto,
    /// UTF-8 (a BOM is skipped).
    Utf8,
    /// GBK (GB 18030's superset is accepted).
    Gbk,
}

impl Encoding {
    /// From `auto`, `utf-8` (`utf8`), `gbk`.
    pub fn parse(s: &str) -> Option<Encoding> {
        Some(match s.to_ascii_lowercase().as_str() {
            "auto" => Encoding::Auto,
            "utf-8" | "utf8" => Encoding::Utf8,
            "gbk" | "gb18030" | "gb2312" => Encoding::Gbk,
            _ => return None,
        })
    }
}

/// One bad value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RowError {
    /// Line in the file (the header is line 1).
    pub line: u64,
    /// The column, by its contract name.
    pub column: &'static str,
    /// The value as found (masked for personal data).
    pub value: String,
    /// Why it is refused.
    pub reason: String,
}

impl fmt::Display for RowError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {}, column {}, value {:?}: {}", self.line, self.column, self.value, self.reason)
    }
}

/// Most row errors listed in one report.
pub const MAX_ERRORS: usize = 50;

/// A file that cannot be imported; nothing of it is.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ImportError {
    /// The bytes are not text in the encoding asked for.
    #[error("the file is not valid {encoding}: {reason}")]
    Encoding {
        /// The encoding tried.
        encoding: &'static str,
        /// Where and why.
        reason: String,
    },
    /// The header row is unusable.
    #[error("header (line 1): {0}")]
    Header(String),
    /// The CSV itself is malformed (unbalanced quotes, …).
    #[error("line {line}: {reason}")]
    Csv {
        /// Where.
        line: u64,
        /// Why.
        reason: String,
    },
    /// Rows with bad values: nothing was imported.
    #[error("{} bad value(s), nothing imported:\n{}{}", .total, list(.errors), more(.errors.len(), *.total))]
    Rows {
        /// The first [`MAX_ERRORS`] errors.
        errors: Vec<RowError>,
        /// How many there are in all.
        total: usize,
    },
}

fn list(errors: &[RowError]) -> String {
    errors.iter().map(|e| format!("  {e}")).collect::<Vec<_>>().join("\n")
}

fn more(shown: usize, total: usize) -> String {
    if total > shown { format!("\n  … and {} more", total - shown) } else { String::new() }
}

/// Rows read from a file.
#[derive(Debug, Clone, PartialEq)]
pub struct Parsed<T> {
    /// Every row, in file order.
    pub rows: Vec<T>,
    /// Ignored columns and the like.
    pub warnings: Vec<String>,
    /// The encoding found.
    pub encoding: &'static str,
}

/// Decodes the file's bytes; returns the text and the encoding used.
/// UTF-8 is taken as it is, without a copy.
pub fn decode(mut bytes: Vec<u8>, enc: Encoding) -> Result<(String, &'static str), ImportError> {
    let utf8 = |mut b: Vec<u8>| -> Result<String, ImportError> {
        if b.starts_with(b"\xEF\xBB\xBF") {
            b.drain(..3);
        }
        String::from_utf8(b).map_err(|e| {
            let at = e.utf8_error().valid_up_to();
            ImportError::Encoding {
                encoding: "UTF-8",
                reason: format!("invalid bytes on line {} (try --encoding gbk)", line_of(e.as_bytes(), at)),
            }
        })
    };
    let gbk = |b: &[u8]| -> Result<String, ImportError> {
        let (text, had_errors) = encoding_rs::GBK.decode_without_bom_handling(b);
        if had_errors {
            let line = text.lines().position(|l| l.contains('\u{FFFD}')).map_or(0, |i| i + 1);
            return Err(ImportError::Encoding {
                encoding: "GBK",
                reason: format!("invalid bytes on line {line}"),
            });
        }
        Ok(text.into_owned())
    };
    match enc {
        Encoding::Utf8 => Ok((utf8(bytes)?, "utf-8")),
        Encoding::Gbk => Ok((gbk(&bytes)?, "gbk")),
        Encoding::Auto if bytes.starts_with(b"\xEF\xBB\xBF") => Ok((utf8(bytes)?, "utf-8 (BOM)")),
        Encoding::Auto => match String::from_utf8(bytes) {
            Ok(s) => Ok((s, "utf-8")),
            Err(e) => {
                bytes = e.into_bytes();
                gbk(&bytes).map(|t| (t, "gbk")).map_err(|_| ImportError::Encoding {
                    encoding: "UTF-8 or GBK",
                    reason: "neither decodes it; pass --encoding".into(),
                })
            }
        },
    }
}

fn line_of(b: &[u8], at: usize) -> usize {
    b[..at.min(b.len())].iter().filter(|c| **c == b'\n').count() + 1
}

/// A column of the contract.
#[derive(Debug, Clone, Copy)]
pub struct Column {
    /// The English name.
    pub name: &'static str,
    /// Chinese equivalents.
    pub zh: &'static [&'static str],
    /// Whether the header must have it.
    pub required: bool,
    /// Personal data: masked in errors.
    pub personal: bool,
}

const fn col(name: &'static str, zh: &'static [&'static str], required: bool, personal: bool) -> Column {
    Column { name, zh, required, personal }
}

/// The clients file's columns.
pub const CLIENT_COLUMNS: [Column; 13] = [
    col("client_id", &["客户号", "客户编号", "客户代码", "资金账号"], true, false),
    col("name", &["姓名", "客户姓名", "客户名称"], true, true),
    col("phone", &["手机", "手机号", "手机号码", "联系电话"], true, true),
    col("branch", &["营业部"], true, false),
    col("opened_on", &["开户日期"], true, false),
    col("introducer_id", &["介绍人", "介绍人编号", "介绍人工号"], false, false),
    col("broker_introduced", &["经纪人客户", "是否经纪人客户", "经纪人介绍"], false, false),
    col("assets_cny", &["资产", "总资产", "资产总额"], false, false),
    col("yearly_commission_cny", &["年佣金", "年佣金贡献"], false, false),
    col("monthly_turnover_cny", &["月交易金额", "月成交金额", "月交易量"], false, false),
    col("last_trade_on", &["最后交易日期", "最近交易日期", "最后交易日"], false, false),
    col("id_number", &["证件号码", "身份证号", "身份证号码", "证件号"], false, true),
    col("risk_level", &["风险等级", "风险承受能力等级", "客户风险等级"], false, false),
];

/// The staff file's columns.
pub const STAFF_COLUMNS: [Column; 8] = [
    col("staff_id", &["员工号", "工号", "员工编号"], true, false),
    col("name", &["姓名", "员工姓名"], true, true),
    col("role", &["角色", "岗位"], true, false),
    col("branch", &["营业部"], true, false),
    col("manager_id", &["上级", "上级工号", "直属上级"], false, false),
    col("sip_uri", &["分机", "SIP地址", "坐席号"], false, false),
    col("active", &["在职", "是否在职"], false, false),
    col("left_on", &["离职日期"], false, false),
];

/// The events file's columns.
pub const EVENT_COLUMNS: [Column; 7] = [
    col("event_id", &["事件号", "事件编号"], true, false),
    col("client_id", &["客户号", "客户编号", "资金账号"], false, false),
    col("kind", &["类型", "事件类型"], true, false),
    col("occurred_on", &["日期", "发生日期"], true, false),
    col("amount_cny", &["金额"], false, false),
    col("staff_id", &["员工号", "工号"], false, false),
    col("note", &["备注", "说明"], false, true),
];

/// The row errors of a file: the first [`MAX_ERRORS`], and how many in all.
#[derive(Debug, Default)]
struct Errors {
    shown: Vec<RowError>,
    total: usize,
}

impl Errors {
    fn push(&mut self, e: RowError) {
        self.total += 1;
        if self.shown.len() < MAX_ERRORS {
            self.shown.push(e);
        }
    }
}

/// One CSV row, with the columns found in the header.
struct Row<'a> {
    line: u64,
    record: &'a csv::StringRecord,
    index: &'a HashMap<&'static str, usize>,
    columns: &'static [Column],
    errors: &'a mut Errors,
}

impl Row<'_> {
    fn raw(&self, name: &str) -> &str {
        self.index.get(name).and_then(|i| self.record.get(*i)).map(str::trim).unwrap_or("")
    }

    fn fail(&mut self, name: &'static str, reason: impl Into<String>) {
        let raw = self.raw(name);
        let personal = self.columns.iter().any(|c| c.name == name && c.personal);
        let value = match (personal, name) {
            (true, "phone") => mask_phone(raw),
            (true, "note") => format!("<{} characters>", raw.chars().count()),
            (true, _) => mask_name(raw),
            (false, _) => raw.chars().take(60).collect(),
        };
        self.errors.push(RowError { line: self.line, column: name, value, reason: reason.into() });
    }

    fn opt(&self, name: &str) -> Option<String> {
        let v = self.raw(name);
        (!v.is_empty()).then(|| v.to_string())
    }

    fn required(&mut self, name: &'static str) -> String {
        let v = self.raw(name).to_string();
        if v.is_empty() {
            self.fail(name, "must not be empty");
        } else if v.chars().count() > 200 || v.chars().any(char::is_control) {
            self.fail(name, "must be at most 200 characters without control characters");
        }
        v
    }

    fn id(&mut self, name: &'static str, required: bool) -> Option<String> {
        let v = self.raw(name).to_string();
        if v.is_empty() {
            if required {
                self.fail(name, "must not be empty");
            }
            return None;
        }
        if v.chars().count() > 64 || v.chars().any(|c| c.is_whitespace() || c.is_control()) {
            self.fail(name, "an id is at most 64 characters without spaces");
        }
        Some(v)
    }

    fn date(&mut self, name: &'static str, required: bool) -> Option<NaiveDate> {
        let v = self.raw(name);
        if v.is_empty() {
            if required {
                self.fail(name, "must not be empty");
            }
            return None;
        }
        let d = iso_date(v).or_else(|| {
            ["%Y-%m-%d", "%Y/%m/%d", "%Y%m%d"].iter().find_map(|f| NaiveDate::parse_from_str(v, f).ok())
        });
        if d.is_none() {
            self.fail(name, "not a date (YYYY-MM-DD, YYYY/MM/DD or YYYYMMDD)");
        }
        d
    }

    fn flag(&mut self, name: &'static str) -> Option<bool> {
        let v = self.raw(name).to_lowercase();
        match v.as_str() {
            "" => None,
            "true" | "1" | "是" | "yes" | "y" => Some(true),
            "false" | "0" | "否" | "no" | "n" => Some(false),
            _ => {
                self.fail(name, "not a boolean (true/false, 1/0, 是/否)");
                None
            }
        }
    }

    fn amount(&mut self, name: &'static str) -> Option<Cny> {
        let v = self.raw(name);
        if v.is_empty() {
            return None;
        }
        match v.parse::<Cny>() {
            Ok(a) => Some(a),
            Err(why) => {
                self.fail(name, why);
                None
            }
        }
    }

    fn phone(&mut self, name: &'static str) -> String {
        let v = self.raw(name);
        let compact: String = v.chars().filter(|c| !matches!(c, ' ' | '-' | '(' | ')')).collect();
        let digits = compact.strip_prefix('+').unwrap_or(&compact);
        if v.is_empty() {
            self.fail(name, "must not be empty");
        } else if !(5..=20).contains(&digits.len()) || !digits.bytes().all(|b| b.is_ascii_digit()) {
            self.fail(name, "not a phone number (5 to 20 digits, optional +, spaces and dashes)");
        }
        compact
    }
}

/// `YYYY-MM-DD` exactly (the common case, without chrono's format parser);
/// `None` for anything else, which the other formats then try.
fn iso_date(v: &str) -> Option<NaiveDate> {
    let b = v.as_bytes();
    if b.len() != 10 || b[4] != b'-' || b[7] != b'-' {
        return None;
    }
    let num = |r: std::ops::Range<usize>| -> Option<u32> {
        b[r].iter().try_fold(0u32, |n, c| c.is_ascii_digit().then(|| n * 10 + u32::from(c - b'0')))
    };
    NaiveDate::from_ymd_opt(i32::try_from(num(0..4)?).ok()?, num(5..7)?, num(8..10)?)
}

/// Reads a file row by row (see the module docs): [`Reader::clients`],
/// [`Reader::staff`], [`Reader::events`].
pub struct Reader<'a, T> {
    csv: csv::Reader<&'a [u8]>,
    record: csv::StringRecord,
    index: HashMap<&'static str, usize>,
    columns: &'static [Column],
    key: &'static str,
    each: fn(&mut Row<'_>) -> T,
    /// Keys seen so far → their line.
    seen: HashMap<Box<str>, u64>,
    errors: Errors,
    warnings: Vec<String>,
    rows: u64,
}

impl<'a, T> Reader<'a, T> {
    /// Reads the header: English names or Chinese equivalents, in any order.
    fn new(
        text: &'a str,
        what: &str,
        columns: &'static [Column],
        key: &'static str,
        each: fn(&mut Row<'_>) -> T,
    ) -> Result<Reader<'a, T>, ImportError> {
        let mut csv =
            csv::ReaderBuilder::new().has_headers(false).flexible(true).from_reader(text.as_bytes());
        let mut header = csv::StringRecord::new();
        match csv.read_record(&mut header) {
            Ok(true) => {}
            Ok(false) => return Err(ImportError::Header(format!("the {what} file is empty"))),
            Err(e) => return Err(ImportError::Header(e.to_string())),
        }
        let mut index: HashMap<&'static str, usize> = HashMap::new();
        let mut warnings = Vec::new();
        for (i, name) in header.iter().enumerate() {
            let n = name.trim().trim_start_matches('\u{FEFF}');
            let found = columns.iter().find(|c| c.name.eq_ignore_ascii_case(n) || c.zh.contains(&n));
            match found {
                Some(c) => {
                    if index.insert(c.name, i).is_some() {
                        return Err(ImportError::Header(format!(
                            "column {} is given twice (as {n:?})",
                            c.name
                        )));
                    }
                }
                None if n.is_empty() => {}
                None => warnings.push(format!("column {n:?} is not in the {what} contract: ignored")),
            }
        }
        let missing: Vec<String> = columns
            .iter()
            .filter(|c| c.required && !index.contains_key(c.name))
            .map(|c| format!("{} ({})", c.name, c.zh.first().unwrap_or(&"")))
            .collect();
        if !missing.is_empty() {
            return Err(ImportError::Header(format!("missing column(s): {}", missing.join(", "))));
        }
        Ok(Reader {
            csv,
            record: csv::StringRecord::new(),
            index,
            columns,
            key,
            each,
            seen: HashMap::new(),
            errors: Errors::default(),
            warnings,
            rows: 0,
        })
    }

    /// The next row, checked; `None` at the end of the file. A row with
    /// bad values is returned too (with placeholders where they were bad),
    /// and [`is_clean`](Self::is_clean) turns false. Malformed CSV
    /// (unbalanced quotes, …) is an error: stop there.
    pub fn next_row(&mut self) -> Result<Option<T>, ImportError> {
        loop {
            match self.csv.read_record(&mut self.record) {
                Ok(true) => {}
                Ok(false) => return Ok(None),
                Err(e) => {
                    return Err(ImportError::Csv {
                        line: e.position().map_or(0, |p| p.line()),
                        reason: e.to_string(),
                    });
                }
            }
            if self.record.iter().all(|f| f.trim().is_empty()) {
                continue;
            }
            let line = self.record.position().map_or(0, |p| p.line());
            self.rows += 1;
            let mut row = Row {
                line,
                record: &self.record,
                index: &self.index,
                columns: self.columns,
                errors: &mut self.errors,
            };
            let k = row.raw(self.key);
            if let Some(first) = self.seen.get(k)
                && !k.is_empty()
            {
                row.fail(self.key, format!("duplicate {}, first on line {first}", self.key));
            } else {
                self.seen.insert(k.into(), line);
            }
            return Ok(Some((self.each)(&mut row)));
        }
    }

    /// No bad value so far.
    pub fn is_clean(&self) -> bool {
        self.errors.total == 0
    }

    /// Rows read so far (blank lines are skipped).
    pub fn rows(&self) -> u64 {
        self.rows
    }

    /// Bytes of the text read so far.
    pub fn position(&self) -> u64 {
        self.csv.position().byte()
    }

    /// Ignored columns and the like (known once the header is read).
    pub fn warnings(&self) -> &[String] {
        &self.warnings
    }

    /// After the last row: the warnings, or every row error found.
    pub fn finish(self) -> Result<Vec<String>, ImportError> {
        if self.errors.total > 0 {
            return Err(ImportError::Rows { errors: self.errors.shown, total: self.errors.total });
        }
        Ok(self.warnings)
    }

    /// Every row at once.
    fn collect(mut self, encoding: &'static str) -> Result<Parsed<T>, ImportError> {
        let mut rows = Vec::new();
        while let Some(row) = self.next_row()? {
            rows.push(row);
        }
        let warnings = self.finish()?;
        Ok(Parsed { rows, warnings, encoding })
    }
}

impl<'a> Reader<'a, Client> {
    /// A clients file (already decoded).
    pub fn clients(text: &'a str) -> Result<Self, ImportError> {
        Reader::new(text, "clients", &CLIENT_COLUMNS, "client_id", client_row)
    }
}

impl<'a> Reader<'a, Staff> {
    /// A staff file.
    pub fn staff(text: &'a str) -> Result<Self, ImportError> {
        Reader::new(text, "staff", &STAFF_COLUMNS, "staff_id", staff_row)
    }
}

impl<'a> Reader<'a, Event> {
    /// An events file.
    pub fn events(text: &'a str) -> Result<Self, ImportError> {
        Reader::new(text, "events", &EVENT_COLUMNS, "event_id", event_row)
    }
}

/// Reads a clients file (already decoded) at once.
pub fn clients(text: &str, encoding: &'static str) -> Result<Parsed<Client>, ImportError> {
    Reader::clients(text)?.collect(encoding)
}

/// Reads a staff file at once.
pub fn staff(text: &str, encoding: &'static str) -> Result<Parsed<Staff>, ImportError> {
    Reader::staff(text)?.collect(encoding)
}

/// Reads an events file at once.
pub fn events(text: &str, encoding: &'static str) -> Result<Parsed<Event>, ImportError> {
    Reader::events(text)?.collect(encoding)
}

fn client_row(r: &mut Row<'_>) -> Client {
    let client_id = r.id("client_id", true).unwrap_or_default();
    let name = r.required("name");
    let phone = r.phone("phone");
    let branch = r.required("branch");
    let opened_on = r.date("opened_on", true);
    let last_trade_on = r.date("last_trade_on", false);
    if let (Some(o), Some(l)) = (opened_on, last_trade_on)
        && l < o
    {
        r.fail("last_trade_on", "is before opened_on");
    }
    Client {
        client_id,
        name,
        phone,
        branch,
        opened_on: opened_on.unwrap_or_default(),
        introducer_id: r.id("introducer_id", false),
        broker_introduced: r.flag("broker_introduced").unwrap_or(false),
        assets: r.amount("assets_cny"),
        yearly_commission: r.amount("yearly_commission_cny"),
        monthly_turnover: r.amount("monthly_turnover_cny"),
        last_trade_on,
        id_number: r.id("id_number", false),
        risk_level: risk_level(r),
    }
}

/// `C1`…`C5` (适当性管理办法's five levels), also written with the
/// level's name after it (`C3-稳健型`) or in lower case; empty: none.
fn risk_level(r: &mut Row<'_>) -> Option<String> {
    let v = r.raw("risk_level").trim().to_ascii_uppercase();
    if v.is_empty() {
        return None;
    }
    let level: String = v.chars().take(2).collect();
    let ok = level.len() == 2 && level.starts_with('C') && matches!(level.as_bytes()[1], b'1'..=b'5');
    let rest = v[level.len().min(v.len())..].trim_start_matches(['-', ' ', '_']);
    let known_rest = ["", "保守型", "谨慎型", "稳健型", "积极型", "激进型"].contains(&rest);
    if !ok || !known_rest {
        r.fail("risk_level", "is not a risk level C1 to C5");
        return None;
    }
    Some(level)
}

fn staff_row(r: &mut Row<'_>) -> Staff {
    let staff_id = r.id("staff_id", true).unwrap_or_default();
    let name = r.required("name");
    let role_text = r.raw("role").to_string();
    let role = Role::parse(&role_text).unwrap_or_else(|| {
        r.fail("role", "not a role (sales, service, compliance, reviewer, supervisor, broker)");
        Role::Sales
    });
    let manager_id = r.id("manager_id", false);
    if manager_id.as_deref() == Some(staff_id.as_str()) && !staff_id.is_empty() {
        r.fail("manager_id", "a staff member cannot be their own manager");
    }
    let left_on = r.date("left_on", false);
    let active = r.flag("active").unwrap_or(left_on.is_none());
    Staff {
        staff_id,
        name,
        role,
        branch: r.required("branch"),
        manager_id,
        sip_uri: r.opt("sip_uri"),
        active,
        left_on,
    }
}

fn event_row(r: &mut Row<'_>) -> Event {
    let event_id = r.id("event_id", true).unwrap_or_default();
    let kind_text = r.raw("kind").to_string();
    let kind = EventKind::parse(&kind_text).unwrap_or_else(|| {
        r.fail(
            "kind",
            "not an event kind (account_opened, asset_inflow, asset_outflow, turnover, complaint, \
             abnormal_trading, special_order, staff_departure)",
        );
        EventKind::Complaint
    });
    let client_id = r.id("client_id", false);
    if client_id.is_none() && kind.needs_client() && EventKind::parse(&kind_text).is_some() {
        r.fail("client_id", format!("a {kind} event needs its client"));
    }
    let occurred_on = r.date("occurred_on", true).unwrap_or_default();
    let amount = r.amount("amount_cny");
    if amount.is_none() && kind.needs_amount() && r.raw("amount_cny").is_empty() {
        r.fail("amount_cny", format!("a {kind} event needs its amount"));
    }
    let staff_id = r.id("staff_id", false);
    if staff_id.is_none() && kind == EventKind::StaffDeparture {
        r.fail("staff_id", "a staff_departure event needs its staff member");
    }
    let note = r.opt("note");
    if note.as_ref().is_some_and(|n| n.chars().count() > 2000) {
        r.fail("note", "at most 2000 characters");
    }
    Event { event_id, client_id, kind, occurred_on, amount, staff_id, note }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEADER: &str = "client_id,name,phone,branch,opened_on,introducer_id,broker_introduced,assets_cny,\
                          yearly_commission_cny,monthly_turnover_cny,last_trade_on\n";

    #[test]
    fn decodes_utf8_bom_and_gbk() {
        let text = "客户号,姓名\nC1,张三\n";
        assert_eq!(decode(text.as_bytes().to_vec(), Encoding::Auto).unwrap(), (text.to_string(), "utf-8"));
        let bom = [b"\xEF\xBB\xBF".as_slice(), text.as_bytes()].concat();
        assert_eq!(decode(bom, Encoding::Auto).unwrap(), (text.to_string(), "utf-8 (BOM)"));
        let (gbk, _, _) = encoding_rs::GBK.encode(text);
        assert_eq!(decode(gbk.to_vec(), Encoding::Auto).unwrap(), (text.to_string(), "gbk"));
        assert_eq!(decode(gbk.to_vec(), Encoding::Gbk).unwrap().0, text);
        let e = decode(gbk.to_vec(), Encoding::Utf8).unwrap_err();
        assert!(e.to_string().contains("line 1"), "{e}");
    }

    #[test]
    fn good_rows_parse() {
        let text = format!(
            "{HEADER}C1,张三,138 1234 5678,SH01,2026-11-23,S1,是,\"3,000,000.00\",,,20261126\nC2,李四,+8613900000000,SH01,2026/11/24,,0,,,,\n"
        );
        let p = clients(&text, "utf-8").unwrap();
        assert_eq!(p.rows.len(), 2);
        assert_eq!(p.rows[0].phone, "13812345678");
        assert!(p.rows[0].broker_introduced);
        assert_eq!(p.rows[0].assets, Some(Cny::yuan(3_000_000)));
        assert_eq!(p.rows[0].last_trade_on, NaiveDate::from_ymd_opt(2026, 11, 26));
        assert_eq!(p.rows[1].opened_on, NaiveDate::from_ymd_opt(2026, 11, 24).unwrap());
        assert!(p.warnings.is_empty());
    }

    #[test]
    fn chinese_headers_and_unknown_columns() {
        let text =
            "客户号,姓名,手机,营业部,开户日期,介绍人,备注列\nC1,张三,13812345678,SH01,2026-11-23,S1,x\n";
        let p = clients(text, "gbk").unwrap();
        assert_eq!(p.rows[0].introducer_id.as_deref(), Some("S1"));
        assert_eq!(p.warnings.len(), 1, "{:?}", p.warnings);
    }

    #[test]
    fn header_errors() {
        let e = clients("client_id,name,phone,branch\n", "utf-8").unwrap_err();
        assert!(matches!(&e, ImportError::Header(m) if m.contains("opened_on")), "{e}");
        let e = clients("client_id,客户号,name,phone,branch,opened_on\n", "utf-8").unwrap_err();
        assert!(matches!(&e, ImportError::Header(m) if m.contains("twice")), "{e}");
        assert!(matches!(clients("", "utf-8"), Err(ImportError::Header(_))));
    }

    #[test]
    fn row_errors_name_line_column_value_and_mask_personal_data() {
        let text = format!(
            "{HEADER}C1,张三,13812345678,SH01,2026-11-23,,,,,,\n\
             C2,李四,12AB45678901,SH01,2026-11-23,,,,,,\n\
             C3,王五,13812345679,SH01,2026-13-01,,maybe,1.234,,,\n\
             C1,赵六,13812345670,SH01,2026-11-23,,,,,,\n"
        );
        let Err(ImportError::Rows { errors, total }) = clients(&text, "utf-8") else { panic!() };
        assert_eq!(total, 5);
        let shown: Vec<(u64, &str)> = errors.iter().map(|e| (e.line, e.column)).collect();
        assert_eq!(
            shown,
            [(3, "phone"), (4, "opened_on"), (4, "broker_introduced"), (4, "assets_cny"), (5, "client_id")]
        );
        assert_eq!(errors[0].value, "12A*****8901");
        let all = ImportError::Rows { errors, total }.to_string();
        assert!(!all.contains("12AB45678901") && !all.contains("李四"), "{all}");
        assert!(all.contains("first on line 2"), "{all}");
    }

    #[test]
    fn the_reader_goes_row_by_row_and_keeps_the_first_errors() {
        let mut text = String::from(HEADER);
        for i in 0..80 {
            let date = if i < 3 { "2026-11-23" } else { "2026-13-01" };
            text.push_str(&format!("C{i},张三,13812345678,SH01,{date},,,,,,\n"));
        }
        let mut r = Reader::clients(&text).unwrap();
        let mut seen = Vec::new();
        for _ in 0..3 {
            seen.push(r.next_row().unwrap().unwrap().client_id);
            assert!(r.is_clean());
        }
        assert_eq!(seen, ["C0", "C1", "C2"]);
        let at = r.position();
        assert!(at > HEADER.len() as u64 && at < text.len() as u64, "{at}");
        assert!(r.next_row().unwrap().is_some(), "a bad row is still returned");
        assert!(!r.is_clean());
        while r.next_row().unwrap().is_some() {}
        assert_eq!(r.rows(), 80);
        assert_eq!(r.position(), text.len() as u64);
        let Err(ImportError::Rows { errors, total }) = r.finish() else { panic!() };
        assert_eq!((errors.len(), total), (MAX_ERRORS, 77));
        assert_eq!((errors[0].line, errors[MAX_ERRORS - 1].line), (5, 54));
    }

    #[test]
    fn iso_dates_take_the_short_path_and_the_same_checks() {
        assert_eq!(iso_date("2026-11-27"), NaiveDate::from_ymd_opt(2026, 11, 27));
        for bad in ["2026-02-30", "2026-13-01", "2026-1-05", "2026/11/27", "２０２６-11-27", "+026-11-27"]
        {
            assert_eq!(iso_date(bad), None, "{bad}");
        }
        let text = format!("{HEADER}C1,张三,13812345678,SH01,2026/11/24,,,,,,20261126\n");
        let p = clients(&text, "utf-8").unwrap();
        assert_eq!(p.rows[0].opened_on, NaiveDate::from_ymd_opt(2026, 11, 24).unwrap());
    }

    #[test]
    fn staff_and_events() {
        let s = staff(
            "staff_id,name,role,branch,manager_id,active,left_on\nS1,甲,营销,SH01,M1,1,\nS2,乙,service,SH01,,,2026-11-20\n",
            "utf-8",
        )
        .unwrap();
        assert_eq!(s.rows[0].role, Role::Sales);
        assert!(!s.rows[1].active, "a departure date makes an unspecified `active` false");
        let e = events(
            "event_id,client_id,kind,occurred_on,amount_cny,staff_id,note\n\
             E1,C1,投诉,2026-11-26,,,服务态度\nE2,,staff_departure,2026-11-20,,S2,\nE3,,asset_inflow,2026-11-20,,,\n",
            "utf-8",
        )
        .unwrap_err();
        let ImportError::Rows { errors, .. } = e else { panic!() };
        let shown: Vec<(u64, &str)> = errors.iter().map(|e| (e.line, e.column)).collect();
        assert_eq!(shown, [(4, "client_id"), (4, "amount_cny")]);
    }
}
