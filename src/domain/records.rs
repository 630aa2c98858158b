//! Callback records (回访记录): what an agent fills in after a callback,
//! how it is reviewed, and the follow-ups that problems open.
//!
//! - The **form** follows the task kind: 附表1 new account, 附表2 existing
//!   clients (important, dormant, departed staff), 附表3 special (special
//!   orders, complaints, abnormal trading, potential risk). Each form has its
//!   script checklist ([`checklist`]); a reached client answers every
//!   question (`yes`/`no`, free text for needs and other remarks).
//! - A `no` to a compliance question (own account, certificate and risks,
//!   risk disclosure signed, no discretionary trading, event confirmed) is a
//!   problem found: the record must describe it ([`RecordDraft::validate`]).
//! - States: `submitted` → `reviewed` (approved or returned). The reviewer
//!   is never the author ([`check_reviewer`]; the schema repeats it).
//! - Problems found open a **follow-up**: the responsible department answers
//!   within 2 business days, the client has the final answer within 15
//!   ([`follow_up_dues`]); a special callback's records go back to the
//!   ordering department within 5 business days.

use std::collections::BTreeMap;
use std::fmt;

use chrono::NaiveDate;
use serde::Deserialize;
use thiserror::Error;

use super::calendar::{Calendar, CalendarError};
use super::kinds::TaskKind;

/// The record form of a kind of callback.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Form {
    /// 附表1 新开户客户回访记录.
    NewAccount,
    /// 附表2 存量客户回访记录.
    Existing,
    /// 附表3 客户回访记录（专项）.
    Special,
}

impl Form {
    /// The form for a kind of task.
    pub fn for_kind(kind: TaskKind) -> Form {
        match kind {
            TaskKind::NewAccount => Form::NewAccount,
            TaskKind::Important | TaskKind::Dormant | TaskKind::DepartedStaff | TaskKind::Existing => {
                Form::Existing
            }
            TaskKind::Special | TaskKind::Complaint | TaskKind::AbnormalTrading | TaskKind::PotentialRisk => {
                Form::Special
            }
        }
    }

    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Form::NewAccount => "new_account",
            Form::Existing => "existing",
            Form::Special => "special",
        }
    }

    /// The form's title.
    pub fn zh(self) -> &'static str {
        match self {
            Form::NewAccount => "附表1 新开户客户回访记录",
            Form::Existing => "附表2 存量客户回访记录",
            Form::Special => "附表3 客户回访记录（专项）",
        }
    }
}

/// One question of the script.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Question {
    /// Its id in a record's answers.
    pub id: &'static str,
    /// As the agent asks it.
    pub zh: &'static str,
    /// In English.
    pub en: &'static str,
    /// A `no` is a compliance problem.
    pub compliance: bool,
    /// Answered in free text rather than yes/no.
    pub free_text: bool,
}

const fn q(
    id: &'static str,
    zh: &'static str,
    en: &'static str,
    compliance: bool,
    free_text: bool,
) -> Question {
    Question { id, zh, en, compliance, free_text }
}

const STANDARD: [Question; 7] = [
    q("own_account", "是否本人开户？并提醒及时变更资料", "Did you open the account yourself?", true, false),
    q(
        "certificate_and_risks",
        "工作人员是否出示执业证书并揭示风险？",
        "Did the staff show a certificate and explain the risks?",
        true,
        false,
    ),
    q(
        "risk_disclosure_signed",
        "是否签署风险揭示书并知晓市场风险？",
        "Did you sign the risk disclosure and know the risks?",
        true,
        false,
    ),
    q(
        "no_discretionary_trading",
        "是否保管好密码、未委托他人代为买卖？",
        "Password kept safe, nobody trading for you?",
        true,
        false,
    ),
    q("satisfied", "对工作人员的服务是否满意？", "Satisfied with the staff's service?", false, false),
    q("needs", "需求及意见", "Needs or suggestions", false, true),
    q("other", "其他情况", "Anything else", false, true),
];

const SPECIAL: [Question; 5] = [
    q(
        "event_confirmed",
        "是否确认所回访事项属实？",
        "Do you confirm the matter of this callback?",
        true,
        false,
    ),
    q(
        "no_discretionary_trading",
        "是否保管好密码、未委托他人代为买卖？",
        "Password kept safe, nobody trading for you?",
        true,
        false,
    ),
    q("satisfied", "对服务是否满意？", "Satisfied with the service?", false, false),
    q("needs", "需求及意见", "Needs or suggestions", false, true),
    q("other", "其他情况", "Anything else", false, true),
];

/// The script of a form.
pub fn checklist(form: Form) -> &'static [Question] {
    match form {
        Form::NewAccount | Form::Existing => &STANDARD,
        Form::Special => &SPECIAL,
    }
}

/// What the agent says before and after the checklist (开场白, 结束语),
/// in Chinese and English: who calls, why, and that the call is recorded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Script {
    /// The opening, as the agent says it.
    pub opening_zh: &'static str,
    /// The opening in English.
    pub opening_en: &'static str,
    /// The closing.
    pub closing_zh: &'static str,
    /// The closing in English.
    pub closing_en: &'static str,
}

/// The script around a form's checklist.
pub fn script(form: Form) -> Script {
    let opening_zh = match form {
        Form::NewAccount => {
            "您好，我是公司客户回访专员。为保障您的权益，现就您近期开户的情况进行回访，本次通话将被录音，请问现在方便吗？"
        }
        Form::Existing => {
            "您好，我是公司客户回访专员。为保障您的权益，现对您的账户服务情况进行回访，本次通话将被录音，请问现在方便吗？"
        }
        Form::Special => {
            "您好，我是公司客户回访专员。现就以下事项向您进行专项回访，本次通话将被录音，请问现在方便吗？"
        }
    };
    let opening_en = match form {
        Form::NewAccount => {
            "Hello, this is the company's client callback service. To protect your interests we are calling about the account you opened recently; this call is recorded. Is now a good time?"
        }
        Form::Existing => {
            "Hello, this is the company's client callback service. To protect your interests we are calling about the service on your account; this call is recorded. Is now a good time?"
        }
        Form::Special => {
            "Hello, this is the company's client callback service. We are calling about the following matter; this call is recorded. Is now a good time?"
        }
    };
    Script {
        opening_zh,
        opening_en,
        closing_zh: "感谢您的配合！如有疑问请拨打公司客服热线。祝您投资顺利，再见。",
        closing_en: "Thank you! For any question please call our service line. Goodbye.",
    }
}

/// How the callback went.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Outcome {
    /// The client was reached and the script gone through.
    Reached,
    /// The client could not be reached.
    Unreachable,
    /// The client declined.
    Refused,
    /// The number is not the client's.
    WrongNumber,
}

impl Outcome {
    /// Every outcome.
    pub const ALL: [Outcome; 4] =
        [Outcome::Reached, Outcome::Unreachable, Outcome::Refused, Outcome::WrongNumber];

    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Reached => "reached",
            Outcome::Unreachable => "unreachable",
            Outcome::Refused => "refused",
            Outcome::WrongNumber => "wrong_number",
        }
    }

    /// From the stored name.
    pub fn from_name(s: &str) -> Option<Outcome> {
        Outcome::ALL.into_iter().find(|o| o.as_str() == s)
    }
}

/// Callback methods (回访形式); only `phone` is recorded by huifang itself.
pub const METHODS: [&str; 6] = ["phone", "face_to_face", "letter", "email", "questionnaire", "sms"];

/// A record as the agent submits it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordDraft {
    /// The task's kind (decides the form).
    pub kind: TaskKind,
    /// Who made the callback.
    pub agent_id: String,
    /// When.
    pub called_on: NaiveDate,
    /// How (one of [`METHODS`]).
    pub method: String,
    /// How it went.
    pub outcome: Outcome,
    /// Question id → `yes`, `no`, or free text.
    pub answers: BTreeMap<String, String>,
    /// Problems found (问题), if any.
    pub problems: Option<String>,
}

/// A record that cannot be accepted.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum RecordError {
    /// An answer is missing for a reached client.
    #[error("question {0} is not answered")]
    Missing(&'static str),
    /// An answer names no question of the form.
    #[error("{question} is not a question of form {form}")]
    UnknownQuestion {
        /// The id given.
        question: String,
        /// The form.
        form: &'static str,
    },
    /// A yes/no question has another answer.
    #[error("question {0} takes yes or no")]
    NotYesNo(&'static str),
    /// A compliance question answered `no` without a problem described.
    #[error("question {0} was answered no: describe the problem found (--problems)")]
    ProblemNotDescribed(&'static str),
    /// The method is not known.
    #[error("method {0:?} is not one of phone, face_to_face, letter, email, questionnaire, sms")]
    Method(String),
    /// The agent is missing.
    #[error("the record needs its agent")]
    NoAgent,
    /// The reviewer made the record (相互制衡).
    #[error("a reviewer may not review a record they made")]
    OwnRecord,
}

impl RecordDraft {
    /// Checks the record against its form. For a reached client every
    /// question needs an answer; unreached, answers are optional but still
    /// checked. Returns the form.
    pub fn validate(&self) -> Result<Form, RecordError> {
        if self.agent_id.trim().is_empty() {
            return Err(RecordError::NoAgent);
        }
        if !METHODS.contains(&self.method.as_str()) {
            return Err(RecordError::Method(self.method.clone()));
        }
        let form = Form::for_kind(self.kind);
        let questions = checklist(form);
        for id in self.answers.keys() {
            if !questions.iter().any(|q| q.id == id) {
                return Err(RecordError::UnknownQuestion { question: id.clone(), form: form.as_str() });
            }
        }
        let described = self.problems.as_deref().is_some_and(|p| !p.trim().is_empty());
        for q in questions {
            match self.answers.get(q.id).map(|a| a.trim()) {
                None if self.outcome == Outcome::Reached && !q.free_text => {
                    return Err(RecordError::Missing(q.id));
                }
                None => {}
                Some(a) if q.free_text => {
                    let _ = a;
                }
                Some("yes") => {}
                Some("no") if q.compliance && !described => {
                    return Err(RecordError::ProblemNotDescribed(q.id));
                }
                Some("no") => {}
                Some(_) => return Err(RecordError::NotYesNo(q.id)),
            }
        }
        Ok(form)
    }

    /// Whether the record opens a follow-up.
    pub fn has_problems(&self) -> bool {
        self.problems.as_deref().is_some_and(|p| !p.trim().is_empty())
    }
}

/// Refuses a review by the record's own author.
pub fn check_reviewer(author: &str, reviewer: &str) -> Result<(), RecordError> {
    if author == reviewer {
        return Err(RecordError::OwnRecord);
    }
    Ok(())
}

/// A record's review state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RecordState {
    /// Submitted by the agent.
    Submitted,
    /// Reviewed by someone else.
    Reviewed,
}

impl fmt::Display for RecordState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            RecordState::Submitted => "submitted",
            RecordState::Reviewed => "reviewed",
        })
    }
}

/// `[records]`: the deadlines after a callback.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RecordsConfig {
    /// The responsible department answers within this many business days.
    #[serde(default = "two")]
    pub answer_business_days: u32,
    /// The client has the final answer within this many business days of
    /// the request.
    #[serde(default = "fifteen")]
    pub resolve_business_days: u32,
    /// Special-callback records reach the ordering department within this
    /// many business days.
    #[serde(default = "five")]
    pub special_feedback_business_days: u32,
    /// Branches upload the previous month's records within the first N
    /// business days of the month.
    #[serde(default = "ten")]
    pub monthly_upload_business_days: u32,
    /// The share of each month's reached records drawn for spot-checks
    /// (抽检), in percent (1..=100).
    #[serde(default = "ten")]
    pub spot_check_percent: u32,
}

fn two() -> u32 {
    2
}
fn fifteen() -> u32 {
    15
}
fn five() -> u32 {
    5
}
fn ten() -> u32 {
    10
}

impl Default for RecordsConfig {
    fn default() -> Self {
        RecordsConfig {
            answer_business_days: two(),
            resolve_business_days: fifteen(),
            special_feedback_business_days: five(),
            monthly_upload_business_days: ten(),
            spot_check_percent: ten(),
        }
    }
}

impl RecordsConfig {
    /// Checks the values: `Err((key, reason))`.
    pub fn check(&self) -> Result<(), (String, String)> {
        for (k, v) in [
            ("answer_business_days", self.answer_business_days),
            ("resolve_business_days", self.resolve_business_days),
            ("special_feedback_business_days", self.special_feedback_business_days),
            ("monthly_upload_business_days", self.monthly_upload_business_days),
        ] {
            if v == 0 || v > 60 {
                return Err((format!("records.{k}"), format!("{v} is out of range 1..=60")));
            }
        }
        if !(1..=100).contains(&self.spot_check_percent) {
            return Err((
                "records.spot_check_percent".into(),
                format!("{} is out of range 1..=100", self.spot_check_percent),
            ));
        }
        if self.resolve_business_days < self.answer_business_days {
            return Err((
                "records.resolve_business_days".into(),
                "must not be below records.answer_business_days".into(),
            ));
        }
        Ok(())
    }
}

/// The follow-up's two deadlines from the day it is opened: the
/// department's answer and the final answer to the client.
pub fn follow_up_dues(
    cal: &Calendar,
    opened_on: NaiveDate,
    cfg: &RecordsConfig,
) -> Result<(NaiveDate, NaiveDate), CalendarError> {
    Ok((
        cal.add_business_days(opened_on, cfg.answer_business_days)?,
        cal.add_business_days(opened_on, cfg.resolve_business_days)?,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::calendar::tests::shipped;

    fn d(s: &str) -> NaiveDate {
        NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
    }

    fn all_yes(form: Form) -> BTreeMap<String, String> {
        checklist(form)
            .iter()
            .map(|q| (q.id.to_string(), if q.free_text { "" } else { "yes" }.into()))
            .collect()
    }

    fn draft(kind: TaskKind) -> RecordDraft {
        RecordDraft {
            kind,
            agent_id: "A1".into(),
            called_on: d("2026-11-27"),
            method: "phone".into(),
            outcome: Outcome::Reached,
            answers: all_yes(Form::for_kind(kind)),
            problems: None,
        }
    }

    #[test]
    fn forms_by_kind() {
        assert_eq!(Form::for_kind(TaskKind::NewAccount), Form::NewAccount);
        assert_eq!(Form::for_kind(TaskKind::Dormant), Form::Existing);
        assert_eq!(Form::for_kind(TaskKind::Complaint), Form::Special);
        assert_eq!(checklist(Form::NewAccount).len(), 7);
    }

    #[test]
    fn validation_table() {
        type Change = fn(&mut RecordDraft);
        let cases: [(TaskKind, Change, Result<Form, RecordError>); 9] = [
            (TaskKind::NewAccount, |_| {}, Ok(Form::NewAccount)),
            (TaskKind::Special, |_| {}, Ok(Form::Special)),
            (
                TaskKind::NewAccount,
                |r| {
                    r.answers.remove("own_account");
                },
                Err(RecordError::Missing("own_account")),
            ),
            (
                TaskKind::NewAccount,
                |r| {
                    r.answers.insert("own_account".into(), "maybe".into());
                },
                Err(RecordError::NotYesNo("own_account")),
            ),
            (
                TaskKind::NewAccount,
                |r| {
                    r.answers.insert("no_discretionary_trading".into(), "no".into());
                },
                Err(RecordError::ProblemNotDescribed("no_discretionary_trading")),
            ),
            (
                TaskKind::NewAccount,
                |r| {
                    r.answers.insert("no_discretionary_trading".into(), "no".into());
                    r.problems = Some("broker trades for the client".into());
                },
                Ok(Form::NewAccount),
            ),
            (
                TaskKind::NewAccount,
                |r| {
                    r.answers.insert("event_confirmed".into(), "yes".into());
                },
                Err(RecordError::UnknownQuestion { question: "event_confirmed".into(), form: "new_account" }),
            ),
            (
                TaskKind::NewAccount,
                |r| {
                    r.outcome = Outcome::Unreachable;
                    r.answers.clear();
                },
                Ok(Form::NewAccount),
            ),
            (TaskKind::NewAccount, |r| r.method = "pigeon".into(), Err(RecordError::Method("pigeon".into()))),
        ];
        for (i, (kind, change, want)) in cases.into_iter().enumerate() {
            let mut r = draft(kind);
            change(&mut r);
            assert_eq!(r.validate(), want, "case {i}");
        }
    }

    #[test]
    fn reviewer_is_never_the_author() {
        assert_eq!(check_reviewer("A1", "A1"), Err(RecordError::OwnRecord));
        assert_eq!(check_reviewer("A1", "R1"), Ok(()));
    }

    #[test]
    fn follow_up_deadlines_in_business_days() {
        let cal = shipped();
        let cfg = RecordsConfig::default();
        // (opened, answer due, final due)
        let cases = [
            ("2026-11-27", "2026-12-01", "2026-12-18"),
            ("2026-09-29", "2026-10-08", "2026-10-27"), // across National Day
            ("2026-02-11", "2026-02-13", "2026-03-12"), // across the Spring Festival
        ];
        for (opened, answer, fin) in cases {
            assert_eq!(follow_up_dues(&cal, d(opened), &cfg).unwrap(), (d(answer), d(fin)), "{opened}");
        }
    }
}
