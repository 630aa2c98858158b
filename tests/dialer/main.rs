//! The dialer, one test binary: end to end on SQLite and on PostgreSQL with
//! several instances, retries and windows, avoidance, an agent who does not
//! answer, shutdown with calls in progress, an instance killed mid-call.
//!
//! Each module is one file of behaviours (its own doc says which); the
//! helpers are in `tests/common/`. One binary instead of one per file, so
//! that CI spends its time testing rather than linking.

#[macro_use]
#[path = "../common/mod.rs"]
mod common;

mod dialer_agent_no_answer_paused;
mod dialer_avoidance_at_dial_time;
mod dialer_avoidance_in_practice;
mod dialer_end_to_end_sqlite;
mod dialer_instance_killed_mid_call;
mod dialer_retries_then_unreachable;
mod dialer_shutdown_lets_calls_finish;
mod dialer_two_instances_on_postgres;
mod dialer_write_back_after_a_crash;
