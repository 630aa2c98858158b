//! The registrar's bindings kept in the database, so that a restarted
//! `serve` still reaches every agent's softphone.
//!
//! The registrar is sans-IO and in memory; a phone registers for up to an
//! hour and refreshes at three quarters of that. Without this, a `serve`
//! killed and restarted (a crash, an OOM kill, a deploy) would know no
//! phone for up to 45 minutes, and the dialer would call nobody (found by
//! the soak, issue 16).
//!
//! - After every change of a user's bindings (bound, refreshed, removed,
//!   expired) the endpoint sends that user's whole list ([`UserBindings`])
//!   to [`keep`], a worker that writes it with
//!   [`Store::replace_bindings`]. The SIP task never waits on the
//!   database: the channel is unbounded, and the worker keeps only the
//!   latest list per user, so a slow or absent database costs one entry per
//!   user, not one per REGISTER.
//! - A write that fails is retried with a back-off (1 s doubling to 30 s);
//!   at the stop signal the worker flushes what it has for up to
//!   [`EXIT_DEADLINE`] and exits.
//! - At start-up `serve` reads the live rows ([`Store::live_bindings`]) and
//!   the endpoint [restores](super::Endpoint::keep_bindings) them before its
//!   first datagram, then asks each phone with an OPTIONS: a binding is
//!   used only once its phone answered (any response), and dropped when
//!   none comes (the transaction's timeout, 32 s) — a phone that went away
//!   while `serve` was down is not called, nor its agent paused for not
//!   answering.
//!
//! Only UDP bindings are kept: a TCP binding is its connection, which is
//! gone with the process (the phone reconnects and registers again).

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio::sync::{mpsc, watch};
use tracing::{debug, info, warn};

use crate::sip::msg::Uri;
use crate::sip::registrar::Binding;
use crate::sip::transport::{Target, Transport};
use crate::store::{Store, StoredBinding};

/// How long the worker goes on writing after the stop signal.
pub const EXIT_DEADLINE: Duration = Duration::from_secs(3);
const RETRY_MIN: Duration = Duration::from_secs(1);
const RETRY_MAX: Duration = Duration::from_secs(30);

/// A user's bindings after a change (empty: none left).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserBindings {
    /// The account.
    pub user: String,
    /// Its UDP bindings, wall-clock expiry.
    pub rows: Vec<StoredBinding>,
}

/// What to keep of `user`'s bindings: the UDP ones, with their expiry on
/// the wall clock (`now` and `wall` are the same moment on both clocks).
pub fn to_rows(
    user: &str,
    bindings: &[Binding],
    now: std::time::Instant,
    wall: DateTime<Utc>,
) -> UserBindings {
    let rows = bindings
        .iter()
        .filter(|b| b.source.transport == Transport::Udp && b.expires_at > now)
        .map(|b| StoredBinding {
            user: user.to_string(),
            contact: b.contact.as_str().to_string(),
            transport: "udp".into(),
            source: b.source.addr.to_string(),
            call_id: b.call_id.clone(),
            cseq: b.cseq,
            expires_at: wall
                + chrono::Duration::from_std(b.expires_at.duration_since(now))
                    .unwrap_or(chrono::Duration::zero()),
        })
        .collect();
    UserBindings { user: user.to_string(), rows }
}

/// The kept rows as bindings again, on the monotonic clock; rows that do
/// not read back (a contact or address that does not parse, TCP) are left
/// out with a warning.
pub fn from_rows(
    rows: Vec<StoredBinding>,
    now: std::time::Instant,
    wall: DateTime<Utc>,
) -> Vec<(String, Binding)> {
    rows.into_iter()
        .filter_map(|r| {
            let contact = Uri::parse(&r.contact).ok();
            let addr = r.source.parse::<SocketAddr>().ok();
            let (Some(contact), Some(addr), "udp") = (contact, addr, r.transport.as_str()) else {
                warn!(user = %crate::sip::mask_user(&r.user), "a kept registrar binding does not read back; left out");
                return None;
            };
            let left = (r.expires_at - wall).to_std().ok()?;
            Some((
                r.user,
                Binding {
                    contact,
                    source: Target { transport: Transport::Udp, addr },
                    expires_at: now + left,
                    call_id: r.call_id,
                    cseq: r.cseq,
                    confirmed: false,
                },
            ))
        })
        .collect()
}

/// The worker: writes every user's latest bindings until the endpoint is
/// gone or the stop signal came (then flushes for [`EXIT_DEADLINE`]).
pub async fn keep(
    store: Store,
    instance: String,
    mut changes: mpsc::UnboundedReceiver<UserBindings>,
    mut stop: watch::Receiver<bool>,
) {
    let mut pending: BTreeMap<String, Vec<StoredBinding>> = BTreeMap::new();
    let mut delay = RETRY_MIN;
    let mut retry_at: Option<tokio::time::Instant> = None;
    let mut open = true;
    loop {
        let stopping = *stop.borrow() || !open;
        if stopping {
            break;
        }
        tokio::select! {
            ch = changes.recv() => match ch {
                Some(c) => { pending.insert(c.user, c.rows); }
                None => open = false,
            },
            r = stop.changed() => if r.is_err() { open = false },
            _ = async { tokio::time::sleep_until(retry_at.expect("guarded")).await }, if retry_at.is_some() => {
                retry_at = None;
            }
        }
        while let Ok(c) = changes.try_recv() {
            pending.insert(c.user, c.rows);
        }
        if retry_at.is_some() {
            continue; // backing off
        }
        let users = pending.len();
        match flush(&store, &instance, &mut pending).await {
            Ok(()) => {
                if users > 0 {
                    debug!(users, "registrar bindings kept");
                }
                delay = RETRY_MIN;
            }
            Err(e) => {
                warn!(error = %e, retry_in_secs = delay.as_secs(), users = pending.len(), "registrar bindings not kept; retrying");
                retry_at = Some(tokio::time::Instant::now() + delay);
                delay = (delay * 2).min(RETRY_MAX);
            }
        }
    }
    while let Ok(c) = changes.try_recv() {
        pending.insert(c.user, c.rows);
    }
    if pending.is_empty() {
        return;
    }
    match tokio::time::timeout(EXIT_DEADLINE, flush(&store, &instance, &mut pending)).await {
        Ok(Ok(())) => debug!("registrar bindings kept at shutdown"),
        Ok(Err(e)) => warn!(error = %e, users = pending.len(), "registrar bindings not kept at shutdown"),
        Err(_) => {
            warn!(users = pending.len(), "registrar bindings not kept at shutdown: the database is too slow")
        }
    }
}

/// Writes the pending users' lists, removing each once written.
async fn flush(
    store: &Store,
    instance: &str,
    pending: &mut BTreeMap<String, Vec<StoredBinding>>,
) -> Result<(), crate::store::StoreError> {
    while let Some((user, rows)) = pending.pop_first() {
        if let Err(e) = store.replace_bindings(instance, &user, &rows).await {
            // a newer list may have come meanwhile: keep that one
            pending.entry(user).or_insert(rows);
            return Err(e);
        }
    }
    Ok(())
}

/// Reads the live bindings kept for `instance` (start-up): none, with a
/// warning, when the database cannot say.
pub async fn load(store: &Store, instance: &str) -> Vec<StoredBinding> {
    match store.live_bindings(instance, Utc::now()).await {
        Ok(rows) => {
            if !rows.is_empty() {
                info!(bindings = rows.len(), "registrar bindings from before the restart restored");
            }
            rows
        }
        Err(e) => {
            warn!(error = %e, "registrar bindings from before the restart not read; phones are reachable once they register again");
            Vec::new()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn binding(transport: Transport, secs: u64, now: std::time::Instant) -> Binding {
        Binding {
            contact: Uri::parse("sip:agent1@127.0.0.1:5090;transport=udp").unwrap(),
            source: Target { transport, addr: "127.0.0.1:5090".parse().unwrap() },
            expires_at: now + Duration::from_secs(secs),
            call_id: "reg-1".into(),
            cseq: 9,
            confirmed: true,
        }
    }

    #[test]
    fn udp_bindings_go_round_the_database_unchanged() {
        let now = std::time::Instant::now();
        let wall = Utc::now();
        let kept = to_rows(
            "agent1",
            &[binding(Transport::Udp, 600, now), binding(Transport::Tcp, 600, now)],
            now,
            wall,
        );
        assert_eq!(kept.rows.len(), 1, "TCP left out");
        let r = &kept.rows[0];
        assert_eq!((r.transport.as_str(), r.source.as_str(), r.cseq), ("udp", "127.0.0.1:5090", 9));
        assert_eq!((r.expires_at - wall).num_seconds(), 600);
        // read back one second later on both clocks
        let later = now + Duration::from_secs(1);
        let back = from_rows(kept.rows, later, wall + chrono::Duration::seconds(1));
        assert_eq!(back.len(), 1);
        let (user, b) = &back[0];
        assert_eq!(user, "agent1");
        assert_eq!(b.contact.as_str(), "sip:agent1@127.0.0.1:5090;transport=udp");
        assert_eq!(b.source, Target { transport: Transport::Udp, addr: "127.0.0.1:5090".parse().unwrap() });
        assert_eq!(b.expires_at.duration_since(now).as_secs(), 600);
        assert_eq!((b.call_id.as_str(), b.cseq), ("reg-1", 9));
    }

    #[test]
    fn ended_and_unreadable_rows_are_left_out() {
        let now = std::time::Instant::now();
        let wall = Utc::now();
        let mut rows = to_rows("agent1", &[binding(Transport::Udp, 600, now)], now, wall).rows;
        let mut ended = rows[0].clone();
        ended.expires_at = wall - chrono::Duration::seconds(1);
        let mut bad = rows[0].clone();
        bad.source = "nowhere".into();
        let mut tcp = rows[0].clone();
        tcp.transport = "tcp".into();
        rows.extend([ended, bad, tcp]);
        assert_eq!(from_rows(rows, now, wall).len(), 1);
    }
}
