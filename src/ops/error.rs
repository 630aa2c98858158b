//! The operations' error: what went wrong, in words a door can show.

use crate::archive::ArchiveError;
use crate::store::StoreError;

/// Why an operation did not happen. Nothing stored was changed unless the
/// variant says otherwise.
#[derive(Debug, thiserror::Error)]
pub enum OpsError {
    /// A value given is not acceptable: `field` names it, `reason` says why.
    #[error("{field}: {reason}")]
    Invalid {
        /// The field (a JSON key, a CLI flag without dashes, a path part;
        /// `answers.ID` for one answer of a record).
        field: std::borrow::Cow<'static, str>,
        /// Why.
        reason: String,
    },
    /// No such thing (or none the person may know of).
    #[error("{what} {key} not found")]
    NotFound {
        /// `recording`, `client`, `user`, …
        what: &'static str,
        /// Its id.
        key: String,
    },
    /// The person may not do this (the reason is for the audit log and
    /// the answer).
    #[error("forbidden: {0}")]
    Forbidden(String),
    /// A rule of the trade refuses it (相互制衡, the two-person rule):
    /// `code` names the rule for pages to say in their language.
    #[error("forbidden: {reason}")]
    Rule {
        /// `own-record`, `same-person`, …
        code: &'static str,
        /// Why, in English.
        reason: String,
    },
    /// What is stored does not allow it now (the agent is on a call, the
    /// window is shut, …): `code` names the case for pages.
    #[error("conflict: {reason}")]
    State {
        /// `agent-busy`, `window-shut`, `not-registered`, `task-not-callable`.
        code: &'static str,
        /// Why, in English.
        reason: String,
    },
    /// Wrong credentials: the same answer for an unknown login and a wrong
    /// password.
    #[error("login or password is wrong")]
    BadCredentials,
    /// Too many failed logins: locked until then.
    #[error("too many failed logins; locked until {until}")]
    Locked {
        /// When the lock ends.
        until: chrono::DateTime<chrono::Utc>,
    },
    /// A byte range outside a recording of `size` bytes.
    #[error("range outside the recording's {size} bytes")]
    RangeNotSatisfiable {
        /// The recording's size.
        size: u64,
    },
    /// The change conflicts with what is stored (a login taken, a hold
    /// already set, …).
    #[error("conflict: {0}")]
    Conflict(String),
    /// The database failed.
    #[error(transparent)]
    Store(StoreError),
    /// The archive failed.
    #[error(transparent)]
    Archive(#[from] ArchiveError),
    /// Something else failed inside (hashing, a file).
    #[error("internal error: {0}")]
    Internal(String),
}

impl From<StoreError> for OpsError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Missing { what, key } => OpsError::NotFound { what, key },
            StoreError::NotFound { what, id } => OpsError::NotFound { what, key: id.to_string() },
            StoreError::Refused(why) => OpsError::Conflict(why),
            StoreError::Conflict { what, id } => OpsError::Conflict(format!("{what} ({id})")),
            other => OpsError::Store(other),
        }
    }
}

impl OpsError {
    /// An [`OpsError::Invalid`].
    pub fn invalid(field: impl Into<std::borrow::Cow<'static, str>>, reason: impl Into<String>) -> Self {
        OpsError::Invalid { field: field.into(), reason: reason.into() }
    }
}
