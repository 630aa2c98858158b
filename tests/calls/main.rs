//! Recorded calls, one test binary: `huifang dial` and the softphones
//! against SIPp, baresip and Kamailio; outcomes, each side on its channel,
//! the audit events of a call, a crash mid-call, and the audio checks.
//!
//! Each module is one file of behaviours (its own doc says which); the
//! helpers are in `tests/common/`. One binary instead of one per file, so
//! that CI spends its time testing rather than linking.

#[macro_use]
#[path = "../common/mod.rs"]
mod common;

mod audio_checks;
mod call_outcomes;
mod call_records_each_side;
mod call_through_kamailio_with_baresip;
mod crash_mid_call_is_recovered;
mod dial_between_two_softphones_records_each_side;
mod dial_through_serve;
mod dial_writes_audit_events;
mod recording_fails_closed;
mod registrations_survive_a_crash;
mod softphone_and_baresip_call_each_other;
mod softphone_over_tcp;
mod softphones_call_through_kamailio;
