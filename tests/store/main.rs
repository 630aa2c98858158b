//! The store and what stands on it without SIP, one test binary: the
//! database on both backends (SQLite and PostgreSQL), imports, plans,
//! callback records and reviews, follow-ups, reports, the audit chain,
//! legal holds, verify and reindex on the local archive.
//!
//! Each module is one file of behaviours (its own doc says which); the
//! helpers are in `tests/common/`. One binary instead of one per file, so
//! that CI spends its time testing rather than linking.

#[macro_use]
#[path = "../common/mod.rs"]
mod common;

mod audit_chain;
mod follow_up_dates_across_holiday;
mod import_bad_row_imports_nothing;
mod import_encodings_and_headers;
mod import_large_file_in_batches;
mod import_reimport_changes_nothing;
mod legal_hold_two_person_rule;
mod plan_twice_no_duplicates;
mod record_review_by_author_refused;
mod reindex_rebuilds_index;
mod reports_output;
mod store_archive_columns;
mod store_backends;
mod store_callbacks;
mod store_dialer_claims;
mod task_mark_closes_the_task;
mod verify_findings;
