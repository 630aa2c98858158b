//! The operations a person can do, shared by both doors.
//!
//! The CLI (`cli/`) and the web API (`web/`) parse, authenticate and
//! format; what they do in between lives here, once: who may see what
//! ([`access`]), users, logins, sessions and tokens ([`users`]), the
//! recordings of a client and their audio ([`recordings`]), the audit
//! events of a recording or client ([`audit`]).
//!
//! Every function takes the [`access::Person`] asking (the CLI's operator
//! is [`access::Person::operator`], who may do everything the machine's
//! database credentials allow anyway) and answers with an [`OpsError`]
//! that names the field at fault or the reason of a refusal, never a
//! phone number or a client's name.

pub mod access;
pub mod agents;
pub mod audit;
pub mod calls;
pub mod chart;
pub mod clients;
mod error;
pub mod export;
pub mod holds;
pub mod recordings;
pub mod records;
pub mod report;
pub mod spotcheck;
pub mod status;
pub mod tasks;
pub mod users;
pub mod verify;
pub mod waveform;

pub use error::OpsError;

/// Today in China (UTC+8), where the exchanges and the callbacks are: the
/// default day of a record, a report, a spot-check month.
pub fn today() -> chrono::NaiveDate {
    (chrono::Utc::now() + chrono::Duration::hours(8)).date_naive()
}
