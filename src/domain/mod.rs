//! The domain of client callbacks (客户回访): the rules of `DOMAIN.md` as
//! data and pure functions. No IO, no clock, no database: everything takes
//! its inputs (facts, configuration, the trading calendar, the day) as
//! arguments, so every rule is tested with tables of cases.
//!
//! | module | what | call it |
//! | --- | --- | --- |
//! | [`calendar`] | trading days (weekends + a holiday file) | for every deadline |
//! | [`dialing`] | calling windows, queue order, retries after each attempt | the dialer |
//! | [`facts`] | clients, staff, events, money, masking of personal data | import, planning |
//! | [`kinds`] | task kinds and their numbers (`[rules.*]`) | config, planning, reports |
//! | [`sample`] | reproducible samples from a stored seed | planning, inspection |
//! | [`planner`] | rules → tasks with idempotency keys | `huifang plan` |
//! | [`agents`] | agent sessions: login, pause, resume, logout; on call | `huifang agent`, the dialer |
//! | [`avoidance`] | E7: may this agent call this client? | assignment, dialing, record submission |
//! | [`records`] | callback records, checklist, review, follow-up deadlines | `huifang record` |
//!
//! This is layer 1: it imports nothing else of the crate.

pub mod agents;
pub mod avoidance;
pub mod calendar;
pub mod dialing;
pub mod facts;
pub mod kinds;
pub mod planner;
pub mod records;
pub mod sample;
