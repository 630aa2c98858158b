//! The store's errors. None of them carries personal data: database errors
//! are reduced to a [`DbError`] (PostgreSQL's `DETAIL` quotes the failing
//! row, phone URIs included, and sqlx's `Debug` prints it), URLs lose their
//! password, and rows are named by their id only.

use std::fmt;

use uuid::Uuid;

/// A failed store operation. `Display` names the operation and the cause,
/// never a URI or a password.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The URL is not one the store understands (`sqlite:` or `postgres:`).
    #[error("unsupported database URL {url}: {reason}")]
    Url {
        /// The URL without its password.
        url: String,
        /// Why it was refused.
        reason: &'static str,
    },
    /// The database could not be opened or reached.
    #[error("cannot open database {url}: {source}")]
    Open {
        /// The URL without its password.
        url: String,
        /// What the driver said.
        #[source]
        source: DbError,
    },
    /// The migrations could not be run.
    #[error("cannot migrate database {url}: {source}")]
    Migrate {
        /// The URL without its password.
        url: String,
        /// What the migrator said.
        #[source]
        source: DbError,
    },
    /// A statement failed.
    #[error("database error in {op}: {source}")]
    Query {
        /// The store method that failed, e.g. `finish_call`.
        op: &'static str,
        /// What the database said.
        #[source]
        source: DbError,
    },
    /// The row does not exist.
    #[error("{what} {id} not found")]
    NotFound {
        /// `call` or `recording`.
        what: &'static str,
        /// Its id.
        id: Uuid,
    },
    /// The change would break a rule of the trace (E2, E3): the row is
    /// final, already set, or already exists. Nothing was changed.
    #[error("refused: {what} ({id})")]
    Conflict {
        /// What stands in the way, e.g. `call already has an outcome`.
        what: &'static str,
        /// The row's id.
        id: Uuid,
    },
    /// A row named by its natural key (a client id, a staff id, an
    /// idempotency key) does not exist.
    #[error("{what} {key} not found")]
    Missing {
        /// `client`, `staff member`, `task`, …
        what: &'static str,
        /// Its key.
        key: String,
    },
    /// A rule of the callback records refused the change (a review by the
    /// record's author, a task already finished, a batch planned
    /// concurrently). Nothing was changed.
    #[error("refused: {0}")]
    Refused(String),
    /// An argument is outside what the schema allows (an unknown outcome,
    /// a SIP status outside 100–699, a malformed SHA-256, …). Nothing was
    /// written.
    #[error("invalid {what}")]
    Invalid {
        /// The argument at fault.
        what: &'static str,
    },
}

/// A database or driver error with only what an operator needs: the
/// driver's primary message, the SQLSTATE (or SQLite result code) and the
/// constraint. PostgreSQL's `DETAIL`, `HINT` and `WHERE`, which may quote
/// row values, are dropped.
#[derive(Clone, PartialEq, Eq)]
pub struct DbError {
    message: String,
    code: Option<String>,
    constraint: Option<String>,
}

impl DbError {
    /// The primary message.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// The SQLSTATE (PostgreSQL) or extended result code (SQLite), if the
    /// error came from the database.
    pub fn code(&self) -> Option<&str> {
        self.code.as_deref()
    }

    /// The violated constraint, if the database named it.
    pub fn constraint(&self) -> Option<&str> {
        self.constraint.as_deref()
    }

    /// A bare message (for errors found by the store itself, such as an
    /// undecodable column).
    pub(crate) fn msg(message: impl Into<String>) -> DbError {
        DbError { message: message.into(), code: None, constraint: None }
    }
}

impl From<&sqlx::Error> for DbError {
    fn from(e: &sqlx::Error) -> DbError {
        match e {
            sqlx::Error::Database(db) => DbError {
                message: db.message().to_string(),
                code: db.code().map(|c| c.into_owned()),
                constraint: db.constraint().map(str::to_string),
            },
            // The other variants describe the connection, the pool, the
            // protocol or a column's type, never row values.
            other => DbError::msg(other.to_string()),
        }
    }
}

impl From<sqlx::Error> for DbError {
    fn from(e: sqlx::Error) -> DbError {
        DbError::from(&e)
    }
}

impl From<&sqlx::migrate::MigrateError> for DbError {
    fn from(e: &sqlx::migrate::MigrateError) -> DbError {
        use sqlx::migrate::MigrateError;
        match e {
            MigrateError::Execute(inner) => DbError::from(inner),
            MigrateError::ExecuteMigration(inner, version) => {
                let mut d = DbError::from(inner);
                d.message = format!("migration {version}: {}", d.message);
                d
            }
            other => DbError::msg(other.to_string()),
        }
    }
}

impl fmt::Display for DbError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)?;
        if let Some(code) = &self.code {
            write!(f, " (code {code})")?;
        }
        Ok(())
    }
}

impl fmt::Debug for DbError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DbError")
            .field("message", &self.message)
            .field("code", &self.code)
            .field("constraint", &self.constraint)
            .finish()
    }
}

impl std::error::Error for DbError {}

/// How the store sorts a failed statement.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Violation {
    /// A primary key or UNIQUE constraint.
    Unique,
    /// A foreign key.
    ForeignKey,
    /// Anything else.
    Other,
}

/// The kind of constraint a failed statement violated.
pub(crate) fn violation(e: &sqlx::Error) -> Violation {
    match e.as_database_error().map(|d| d.kind()) {
        Some(sqlx::error::ErrorKind::UniqueViolation) => Violation::Unique,
        Some(sqlx::error::ErrorKind::ForeignKeyViolation) => Violation::ForeignKey,
        _ => Violation::Other,
    }
}

/// `map_err` helper: a failed statement of operation `op`.
pub(crate) fn query(op: &'static str) -> impl FnOnce(sqlx::Error) -> StoreError {
    move |e| StoreError::Query { op, source: DbError::from(&e) }
}
