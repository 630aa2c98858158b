//! The messages of an agent's feed (protocol v1, `docs/AGENT_EVENTS.md`).
//!
//! [`Event`] is what is stored and sent, less the envelope (`v`, `type`,
//! `seq`, `at`) that [`message`] puts around it. [`offer`] gathers what
//! the screen-pop shows when the dialer has claimed a task for an agent:
//! the task, why the rule made it, earlier attempts, the client facts the
//! agent may see — never the introducer — and the form's checklist and
//! script.

use chrono::{DateTime, NaiveDate, SecondsFormat, Utc};
use serde::Serialize;
use serde_json::{Map, Value};
use uuid::Uuid;

use crate::domain::facts::{Client, mask_phone};
use crate::domain::kinds::TaskKind;
use crate::domain::records::{Form, checklist, script};
use crate::store::{FeedRow, Store, StoreError, TaskRow};

/// The protocol version in every message.
pub const VERSION: u32 = 1;

/// One event of an agent's feed.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Event {
    /// The agent's state changed.
    State {
        /// `logged_out`, `available`, `paused`.
        state: String,
        /// Why (a pause reason), if given.
        reason: Option<String>,
        /// Who changed it (a staff id, a login or `dialer@INSTANCE`).
        by: String,
        /// Since when.
        since: DateTime<Utc>,
    },
    /// The dialer claimed a task for the agent; the agent's phone rings next.
    Offered(Box<Offer>),
    /// The agent's phone is ringing.
    AgentRinging {
        /// The call.
        call_id: Uuid,
        /// Its task.
        task_id: Uuid,
    },
    /// The agent answered; the client's phone is ringing.
    ClientRinging {
        /// The call.
        call_id: Uuid,
        /// Its task.
        task_id: Uuid,
    },
    /// The client answered: both sides are bridged and recorded.
    Connected {
        /// The call.
        call_id: Uuid,
        /// Its task.
        task_id: Uuid,
    },
    /// The call is over.
    Ended {
        /// The call.
        call_id: Uuid,
        /// Its task.
        task_id: Uuid,
        /// The call's one outcome (`completed`, `no-answer`, …).
        outcome: String,
        /// Why, in words, when not completed.
        reason: Option<String>,
        /// The recording, when there is one.
        recording_id: Option<Uuid>,
        /// Whether the recording was sealed (flushed, hashed, read-only).
        sealed: bool,
        /// The recording's length.
        duration_ms: Option<u64>,
    },
    /// The agent writes the record now; no call is offered before the
    /// deadline passes or the record is saved.
    WrapUp {
        /// The call.
        call_id: Uuid,
        /// Its task.
        task_id: Uuid,
        /// The end of the wrap-up (none: no hold is configured).
        deadline: Option<DateTime<Utc>>,
    },
    /// The callback record was stored.
    RecordSaved {
        /// The task it closed.
        task_id: Uuid,
        /// The record.
        record_id: Uuid,
        /// The recorded call, if any.
        call_id: Option<Uuid>,
        /// How it went.
        outcome: String,
    },
}

impl Event {
    /// The message type.
    pub fn kind(&self) -> &'static str {
        match self {
            Event::State { .. } => "state",
            Event::Offered(_) => "offered",
            Event::AgentRinging { .. } => "agent_ringing",
            Event::ClientRinging { .. } => "client_ringing",
            Event::Connected { .. } => "connected",
            Event::Ended { .. } => "ended",
            Event::WrapUp { .. } => "wrap_up",
            Event::RecordSaved { .. } => "record_saved",
        }
    }
}

/// A kind's names.
#[derive(Debug, Clone, Serialize)]
pub struct KindName {
    /// The stored name (`new_account`, …).
    pub id: String,
    /// 中文.
    pub zh: String,
    /// English.
    pub en: String,
}

/// An earlier attempt at the task.
#[derive(Debug, Clone, Serialize)]
pub struct EarlierAttempt {
    /// The call.
    pub call_id: Uuid,
    /// When it was placed.
    pub started_at: DateTime<Utc>,
    /// How it ended (none: still open).
    pub outcome: Option<String>,
}

/// The client facts an agent may see.
#[derive(Debug, Clone, Serialize)]
pub struct ClientView {
    /// 客户号.
    pub client_id: String,
    /// The name, to address the client.
    pub name: String,
    /// The phone, masked (the phone itself is dialled by huifang).
    pub phone_masked: String,
    /// The ID number, masked, when the client list has one.
    pub id_number_masked: Option<String>,
    /// 营业部.
    pub branch: String,
    /// The risk level (C1–C5), when the client list has one.
    pub risk_level: Option<String>,
    /// 开户日期.
    pub opened_on: NaiveDate,
}

/// One question of the checklist.
#[derive(Debug, Clone, Serialize)]
pub struct ChecklistItem {
    /// Its id in the record's `answers`.
    pub id: &'static str,
    /// As the agent asks it (中文).
    pub question: &'static str,
    /// In English.
    pub question_en: &'static str,
    /// A `no` is a compliance problem (describe it in `problems`).
    pub compliance: bool,
    /// Answered in free text (else `yes` or `no`).
    pub free_text: bool,
}

/// The form and the words around the checklist.
#[derive(Debug, Clone, Serialize)]
pub struct FormView {
    /// `new_account` (附表1), `existing` (附表2), `special` (附表3).
    pub id: &'static str,
    /// Its title.
    pub title: &'static str,
    /// The opening (中文).
    pub opening: &'static str,
    /// The opening in English.
    pub opening_en: &'static str,
    /// The closing (中文).
    pub closing: &'static str,
    /// The closing in English.
    pub closing_en: &'static str,
}

/// What the screen-pop shows.
#[derive(Debug, Clone, Serialize)]
pub struct Offer {
    /// The task.
    pub task_id: Uuid,
    /// Its key (`new_account:C0001`, …).
    pub task_key: String,
    /// The call about to be placed.
    pub call_id: Uuid,
    /// The kind.
    pub kind: KindName,
    /// Why the rule created the task (which rule, which facts).
    pub reason: Value,
    /// Due date.
    pub due_on: NaiveDate,
    /// Whether the due date has passed.
    pub overdue: bool,
    /// A compliance callback.
    pub compliance: bool,
    /// Earlier attempts at this task.
    pub attempts: Vec<EarlierAttempt>,
    /// The client.
    pub client: ClientView,
    /// The record form.
    pub form: FormView,
    /// The checklist.
    pub checklist: Vec<ChecklistItem>,
}

/// The screen-pop of `task` for the call `call_id` about to be placed.
pub async fn offer(
    store: &Store,
    task: &TaskRow,
    client: &Client,
    call_id: Uuid,
    today: NaiveDate,
) -> Result<Offer, StoreError> {
    let attempts = store
        .task_attempts(task.id)
        .await?
        .into_iter()
        .filter(|(id, ..)| *id != call_id)
        .map(|(call_id, started_at, outcome)| EarlierAttempt { call_id, started_at, outcome })
        .collect();
    Ok(offer_of(task, client, call_id, today, attempts))
}

fn offer_of(
    task: &TaskRow,
    client: &Client,
    call_id: Uuid,
    today: NaiveDate,
    attempts: Vec<EarlierAttempt>,
) -> Offer {
    let kind = TaskKind::from_name(&task.kind);
    let form = Form::for_kind(kind.unwrap_or(TaskKind::Special));
    let words = script(form);
    Offer {
        task_id: task.id,
        task_key: task.key.clone(),
        call_id,
        kind: KindName {
            id: task.kind.clone(),
            zh: kind.map(TaskKind::zh).unwrap_or(&task.kind).to_string(),
            en: kind.map(TaskKind::en).unwrap_or(&task.kind).to_string(),
        },
        reason: without_introducer(&task.reason, client),
        due_on: task.due_on,
        overdue: task.due_on < today,
        compliance: task.compliance,
        attempts,
        client: ClientView {
            client_id: client.client_id.clone(),
            name: client.name.clone(),
            phone_masked: mask_phone(&client.phone),
            id_number_masked: client.id_number.as_deref().map(mask_id_number),
            branch: client.branch.clone(),
            risk_level: client.risk_level.clone(),
            opened_on: client.opened_on,
        },
        form: FormView {
            id: form.as_str(),
            title: form.zh(),
            opening: words.opening_zh,
            opening_en: words.opening_en,
            closing: words.closing_zh,
            closing_en: words.closing_en,
        },
        checklist: checklist(form)
            .iter()
            .map(|q| ChecklistItem {
                id: q.id,
                question: q.zh,
                question_en: q.en,
                compliance: q.compliance,
                free_text: q.free_text,
            })
            .collect(),
    }
}

/// The rule's reason less any fact naming the client's introducer (a
/// departed employee's id, an event's staff member): the agent never
/// learns who introduced the client.
fn without_introducer(reason: &Value, client: &Client) -> Value {
    let (Value::Object(m), Some(intro)) = (reason, client.introducer_id.as_deref()) else {
        return reason.clone();
    };
    Value::Object(
        m.iter().filter(|(_, v)| v.as_str() != Some(intro)).map(|(k, v)| (k.clone(), v.clone())).collect(),
    )
}

/// An ID number with all but its first 6 and last 4 characters hidden
/// (`110101********1234`); short numbers keep only their last 2.
pub fn mask_id_number(id: &str) -> String {
    let chars: Vec<char> = id.trim().chars().collect();
    let n = chars.len();
    let (head, tail) = if n >= 15 { (6, 4) } else { (0, 2.min(n)) };
    chars.iter().enumerate().map(|(i, c)| if i < head || i >= n - tail { *c } else { '*' }).collect()
}

/// The time as messages write it (RFC 3339, milliseconds, UTC).
pub fn time(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// The message of a stored event: the envelope (`v`, `type`, `seq`, `at`)
/// and the event's own fields.
pub fn message(row: &FeedRow) -> String {
    let mut m = Map::new();
    m.insert("v".into(), VERSION.into());
    m.insert("type".into(), row.kind.clone().into());
    m.insert("seq".into(), row.seq.into());
    m.insert("at".into(), time(row.at).into());
    if let Value::Object(body) = &row.body {
        for (k, v) in body {
            if !m.contains_key(k) {
                m.insert(k.clone(), v.clone());
            }
        }
    }
    Value::Object(m).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn id_numbers_are_masked() {
        assert_eq!(mask_id_number("110101199003071234"), "110101********1234");
        assert_eq!(mask_id_number("E12345678"), "*******78");
        assert_eq!(mask_id_number("1"), "1");
        assert_eq!(mask_id_number(""), "");
    }

    #[test]
    fn a_message_has_the_envelope_and_the_fields() {
        let ev = Event::Connected { call_id: Uuid::nil(), task_id: Uuid::nil() };
        let row = FeedRow {
            id: 7,
            agent_id: "A1".into(),
            seq: 3,
            at: DateTime::parse_from_rfc3339("2026-12-07T01:02:03.456Z").unwrap().into(),
            kind: ev.kind().into(),
            instance: "i".into(),
            body: serde_json::to_value(&ev).unwrap(),
        };
        let m: Value = serde_json::from_str(&message(&row)).unwrap();
        assert_eq!(m["v"], 1);
        assert_eq!(m["type"], "connected");
        assert_eq!(m["seq"], 3);
        assert_eq!(m["at"], "2026-12-07T01:02:03.456Z");
        assert_eq!(m["call_id"], Uuid::nil().to_string());
    }

    #[test]
    fn an_offer_never_names_the_introducer() {
        let task = TaskRow {
            id: Uuid::nil(),
            key: "new_account:C1".into(),
            batch_id: Uuid::nil(),
            kind: "new_account".into(),
            client_id: "C1".into(),
            branch: "B1".into(),
            due_on: NaiveDate::from_ymd_opt(2026, 12, 1).unwrap(),
            priority: 1,
            retention_kind: "new_account".into(),
            compliance: true,
            reason: serde_json::json!({"rule": "departed_staff", "staff_id": "S-INTRO-42"}),
            state: "open".into(),
            outcome: None,
            attempts: 0,
            assigned_agent: None,
            created_at: Utc::now(),
            closed_at: None,
            next_attempt_at: None,
            lease_owner: None,
            lease_until: None,
            last_call_id: None,
            last_outcome: None,
            last_attempt_at: None,
            awaiting_record_since: None,
            closed_by: None,
        };
        let client = Client {
            client_id: "C1".into(),
            name: "张三".into(),
            phone: "13812345678".into(),
            branch: "B1".into(),
            opened_on: NaiveDate::from_ymd_opt(2026, 11, 20).unwrap(),
            introducer_id: Some("S-INTRO-42".into()),
            broker_introduced: false,
            assets: None,
            yearly_commission: None,
            monthly_turnover: None,
            last_trade_on: None,
            id_number: Some("110101199003071234".into()),
            risk_level: Some("C3".into()),
        };
        let o = offer_of(&task, &client, Uuid::nil(), NaiveDate::from_ymd_opt(2026, 12, 7).unwrap(), vec![]);
        let text = serde_json::to_string(&Event::Offered(Box::new(o))).unwrap();
        assert!(!text.contains("S-INTRO-42"), "{text}");
        assert!(!text.contains("13812345678"), "{text}");
        assert!(!text.contains("199003071234"), "{text}");
        assert!(text.contains("138****5678"));
        assert!(text.contains("\"overdue\":true"));
        assert!(text.contains("\"risk_level\":\"C3\""));
        assert!(text.contains("own_account"));
    }
}
