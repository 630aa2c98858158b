//! # huifang (回访)
//!
//! A daemon for the call centers of securities brokerages: it dials the
//! callback lists through the SIP switch, bridges the agent to the client,
//! records both sides and keeps a mandatory, retrievable trace of every
//! callback (强制留痕).
//!
//! ## Map of the crate
//! Layers import downwards only (see `docs/ARCHITECTURE.md`):
//!
//! | layer | modules |
//! | --- | --- |
//! | entry | `main.rs`, [`cli`] |
//! | services | [`dialer`] (works the callback queue inside `serve`), [`softphone`] (a SIP phone on our own stack: `huifang softphone`, the demo's phones) |
//! | call control | [`sip::endpoint`] (sockets, timers, dispatch) |
//! | engines | [`sip`]'s sans-IO cores: [`sip::msg`], [`sip::transaction`], [`sip::dialog`], [`sip::auth`], [`sip::registration`], [`sip::registrar`] |
//! | engines (callbacks) | [`import`] (CSV exports), [`store`] |
//! | ground | [`domain`] (the callback rules, pure), [`config`] |
//!
//! The protocol cores never touch a socket or a clock: they take
//! `(input, now)` and return what to send and when to wake them. The
//! endpoint is the only place that does IO.

#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod archive;
pub mod audit;
pub mod call;
pub mod cli;
pub mod config;
pub mod dialer;
pub mod domain;
pub mod feed;
pub mod import;
pub mod media;
pub mod metrics;
pub mod ops;
pub mod sip;
pub mod softphone;
pub mod store;
pub mod web;
