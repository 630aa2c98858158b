//! The event hub: agents' feeds, from the dialer and the operations to the
//! pages (`/ws/agent`) of whichever instance the agent is connected to.
//!
//! [`Hub::publish`] stores the event in the agent's feed log (the next
//! sequence number of that agent, given by the database) and hands it at
//! once to the connections of this process. The other instances learn of
//! it through the database, never through a bus of our own: on PostgreSQL
//! the storing transaction sends `NOTIFY huifang_feed` and each instance's
//! [`Hub::run`] worker reads the event when one of its connections follows
//! that agent; on SQLite (one serving process) the worker reads new rows
//! every 250 ms, which is how events written by the CLI (`huifang agent
//! pause`) reach the page.
//!
//! A connection may miss events (a lagging receiver, a lost notification,
//! a reconnecting page): the sequence numbers show the gap and
//! [`Hub::missed`] reads it from the log, so a page always sees an agent's
//! events in order and without holes.
//!
//! Publishing never fails a call or an operation: an event that cannot be
//! stored is logged and dropped (the page's next `snapshot` is right).

pub mod events;

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::Utc;
use tokio::sync::{broadcast, watch};
use tracing::{debug, info, warn};

pub use events::{Event, Offer, message};

use crate::store::{FeedRow, Store, StoreError};

/// How many events a slow connection may fall behind before it reads the
/// rest from the log.
const BACKLOG: usize = 32;
/// How long events stay in the log.
const KEEP: chrono::Duration = chrono::Duration::hours(24);
/// SQLite: how often new rows are looked for.
const POLL: Duration = Duration::from_millis(250);

/// One event as sent to the connections: its number and its text.
#[derive(Debug)]
pub struct Delivered {
    /// The agent's sequence number.
    pub seq: i64,
    /// The JSON message.
    pub text: String,
}

impl Delivered {
    fn of(row: &FeedRow) -> Arc<Delivered> {
        Arc::new(Delivered { seq: row.seq, text: message(row) })
    }
}

struct Inner {
    store: Store,
    instance: String,
    subs: Mutex<HashMap<String, broadcast::Sender<Arc<Delivered>>>>,
    connections: AtomicUsize,
}

/// The hub: cheap to clone.
#[derive(Clone)]
pub struct Hub(Arc<Inner>);

/// A connection's subscription to one agent's events; unsubscribes when
/// dropped.
pub struct Subscription {
    hub: Hub,
    agent: String,
    /// The events as they come.
    pub rx: broadcast::Receiver<Arc<Delivered>>,
}

impl Drop for Subscription {
    fn drop(&mut self) {
        self.hub.0.connections.fetch_sub(1, Ordering::Relaxed);
        let mut subs = self.hub.0.subs.lock().unwrap_or_else(|e| e.into_inner());
        // this receiver is still alive here: the last one counts 1
        if subs.get(&self.agent).is_some_and(|tx| tx.receiver_count() <= 1) {
            subs.remove(&self.agent);
        }
    }
}

impl Hub {
    /// A hub writing as `instance`.
    pub fn new(store: Store, instance: impl Into<String>) -> Hub {
        Hub(Arc::new(Inner {
            store,
            instance: instance.into(),
            subs: Mutex::new(HashMap::new()),
            connections: AtomicUsize::new(0),
        }))
    }

    /// The store.
    pub fn store(&self) -> &Store {
        &self.0.store
    }

    /// Connections subscribed in this process.
    pub fn connections(&self) -> usize {
        self.0.connections.load(Ordering::Relaxed)
    }

    /// Stores `ev` in `agent`'s feed and sends it to this process's
    /// connections; returns its sequence number.
    pub async fn publish(&self, agent: &str, ev: &Event) -> Result<i64, StoreError> {
        let body = serde_json::to_value(ev).unwrap_or_default();
        let row = self.0.store.append_feed(agent, ev.kind(), &self.0.instance, &body, Utc::now()).await?;
        self.deliver(&row);
        Ok(row.seq)
    }

    /// [`publish`](Self::publish), logging a failure instead of returning
    /// it: what the dialer and the operations use.
    pub async fn tell(&self, agent: &str, ev: &Event) {
        if let Err(e) = self.publish(agent, ev).await {
            warn!(%agent, kind = ev.kind(), error = %e, "feed: event not stored; the page catches up at its next snapshot");
        }
    }

    fn deliver(&self, row: &FeedRow) {
        let subs = self.0.subs.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(tx) = subs.get(&row.agent_id) {
            let _ = tx.send(Delivered::of(row));
        }
    }

    fn wanted(&self, agent: &str) -> bool {
        self.0.subs.lock().unwrap_or_else(|e| e.into_inner()).contains_key(agent)
    }

    /// Follows `agent`'s events from now on.
    pub fn subscribe(&self, agent: &str) -> Subscription {
        let mut subs = self.0.subs.lock().unwrap_or_else(|e| e.into_inner());
        let rx = match subs.get(agent) {
            Some(tx) => tx.subscribe(),
            None => {
                let (tx, rx) = broadcast::channel(BACKLOG);
                subs.insert(agent.to_string(), tx);
                rx
            }
        };
        self.0.connections.fetch_add(1, Ordering::Relaxed);
        Subscription { hub: self.clone(), agent: agent.to_string(), rx }
    }

    /// `agent`'s events after `after` still in the log, oldest first, at
    /// most `limit`.
    pub async fn missed(
        &self,
        agent: &str,
        after: i64,
        limit: i64,
    ) -> Result<Vec<Arc<Delivered>>, StoreError> {
        Ok(self.0.store.feed_after(agent, after, limit).await?.iter().map(Delivered::of).collect())
    }

    /// The worker: brings other processes' events to this one's
    /// connections and prunes the log, until `stop` turns true.
    pub async fn run(self, mut stop: watch::Receiver<bool>) {
        let store = self.0.store.clone();
        let mut last_id = store.feed_last_id().await.unwrap_or_default();
        let mut prune = tokio::time::interval(Duration::from_secs(3600));
        let mut listener = None;
        let mut backoff = Duration::from_millis(250);
        info!(instance = %self.0.instance, "feed hub started");
        while !*stop.borrow() {
            if store.backend() == "postgres" && listener.is_none() {
                match store.feed_listener().await {
                    Ok(l) => {
                        listener = l;
                        backoff = Duration::from_millis(250);
                        // what came while no one listened
                        last_id = self.catch_up(last_id).await;
                    }
                    Err(e) => {
                        warn!(error = %e, "feed: cannot LISTEN; retrying");
                        tokio::select! {
                            _ = tokio::time::sleep(backoff) => {}
                            _ = stop.changed() => {}
                        }
                        backoff = (backoff * 2).min(Duration::from_secs(10));
                        continue;
                    }
                }
            }
            tokio::select! {
                r = stop.changed() => if r.is_err() { break },
                _ = prune.tick() => {
                    match store.prune_feed(Utc::now() - KEEP).await {
                        Ok(n) if n > 0 => debug!(events = n, "feed: old events pruned"),
                        Ok(_) => {}
                        Err(e) => warn!(error = %e, "feed: old events not pruned"),
                    }
                }
                note = async { listener.as_mut().expect("listening").recv().await }, if listener.is_some() => {
                    match note {
                        Ok(Some(n)) => {
                            last_id = last_id.max(n.id);
                            if n.instance != self.0.instance && self.wanted(&n.agent) {
                                match store.feed_after(&n.agent, n.seq - 1, 1).await {
                                    Ok(rows) => rows.iter().filter(|r| r.seq == n.seq).for_each(|r| self.deliver(r)),
                                    Err(e) => warn!(error = %e, "feed: event not read"),
                                }
                            }
                        }
                        Ok(None) => {}
                        Err(e) => {
                            warn!(error = %e, "feed: LISTEN connection lost; reconnecting");
                            listener = None;
                        }
                    }
                }
                _ = tokio::time::sleep(POLL), if listener.is_none() => {
                    last_id = self.catch_up(last_id).await;
                }
            }
        }
        info!("feed hub stopped");
    }

    /// Delivers the events of other processes after `last_id`; returns the
    /// new last id.
    async fn catch_up(&self, mut last_id: i64) -> i64 {
        loop {
            match self.0.store.feed_since_id(last_id, 500).await {
                Ok(rows) => {
                    for r in &rows {
                        last_id = last_id.max(r.id);
                        if r.instance != self.0.instance {
                            self.deliver(r);
                        }
                    }
                    if rows.len() < 500 {
                        return last_id;
                    }
                }
                Err(e) => {
                    warn!(error = %e, "feed: new events not read");
                    return last_id;
                }
            }
        }
    }
}
