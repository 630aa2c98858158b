//! The SIP endpoint, one test binary: malformed messages, OPTIONS, TCP,
//! registration to Kamailio and to the built-in registrar, agent sessions.
//!
//! Each module is one file of behaviours (its own doc says which); the
//! helpers are in `tests/common/`. One binary instead of one per file, so
//! that CI spends its time testing rather than linking.

#[macro_use]
#[path = "../common/mod.rs"]
mod common;

mod agent_sessions_traced;
mod baresip_registers_to_builtin_registrar;
mod malformed_messages;
mod options_and_unknown_invite;
mod register_to_kamailio;
mod softphone_registers;
mod tcp_keepalive_and_reuse;
mod torture;
