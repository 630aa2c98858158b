//! The web door (issue 12), one binary: a real `WebServer` on a free port
//! over a fresh database, driven with an HTTP client.
//!
//! - `matrix`: every route × every role (and no credentials) gets its
//!   expected status; a route without an entry fails the test.
//! - `sessions`: login, the same answer for unknown logins and wrong
//!   passwords, lockout, logout, idle and absolute expiry, a disabled
//!   user's session, token expiry and revocation.
//! - `browser`: a foreign `Origin` or `Sec-Fetch-Site` is refused on
//!   state-changing requests and WebSocket upgrades; safety headers.
//! - `audio`: ranges from the spool and the local archive (bytes equal the
//!   file's, 206/416), one `recording.played` per play with its ranges, a
//!   download audited, the chain still whole; the CLI and the API agree.
//! - `feed` (issue 13, on `floor`: `serve` with real softphones and the
//!   dialer): `offered` before the agent's INVITE, the call's events in
//!   order, the record from the page, replay on reconnect, E7, the feed
//!   across two instances on PostgreSQL.
//! - `console`: the agent's page in Debian's headless Chromium over
//!   WebDriver — log in, go available, the screen-pop, the form kept over a
//!   reload, an error beside its question, the record saved; screenshots
//!   under `target/screenshots/agent-console/`.
//! - `export` (issue 14): a client's evidence export from the API and the
//!   CLI passes its own verifiers; a changed byte is found and named.
//! - `desks` (issue 14): the supervisor finds an agent's calls, plays one
//!   (206, the time advances), reviews — never their own record; compliance
//!   sees a client's every attempt and who played them, reveals a number
//!   (audited), exports; in headless Chromium, screenshots under
//!   `target/screenshots/desks/`.
//! - `quality` (issue 14): the month's spot-checks drawn once and
//!   reproducibly, never checked by the record's author; follow-ups with
//!   their deadlines moved forward; the calls search by branch, kind and
//!   outcome, paged; a recording's waveform.
//! - `calls` (issue 15, on `floor`): calls placed by hand through
//!   `serve`'s dialer — the feed, trace, recording and audit as its own;
//!   E7, a busy agent and another branch's agent refused; call back at.
//! - `demo_web`: `huifang demo --web` prints its accounts, keeps running,
//!   and the agent takes the next call from the page's feed.

#[macro_use]
#[path = "../common/mod.rs"]
mod common;

mod fixture;
mod floor;

mod audio;
mod browser;
mod calls;
mod console;
mod demo_web;
mod desks;
mod export;
mod feed;
mod matrix;
mod ops;
mod quality;
mod sessions;
