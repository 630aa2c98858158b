//! TCP connections: accept, connect, frame, write, keep alive.
//!
//! Each connection is two tasks: a reader that frames messages with
//! [`StreamFramer`] and hands them to the endpoint loop, and a writer that
//! drains a bounded queue of outgoing bytes. The endpoint keeps one
//! [`Conn`] per remote address and reuses it for every message to that
//! address (RFC 3261 §18.1.1), whichever side opened it.

use std::net::SocketAddr;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tracing::debug;

use crate::sip::msg::Rejected;
use crate::sip::msg::framing::{StreamFramer, StreamItem};

/// Outgoing queue depth per connection.
const QUEUE: usize = 256;
/// How long a connect may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// Keep-alive ping interval on connections we opened (RFC 5626 §4.4.1).
pub const PING_INTERVAL: Duration = Duration::from_secs(30);
/// How long a connection whose reading side ended waits for responses
/// still being queued before it closes.
const LINGER: std::time::Duration = std::time::Duration::from_millis(500);
/// A connection with no traffic for this long is closed.
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(600);

/// What a connection reports to the endpoint loop.
#[derive(Debug)]
pub enum ConnEvent {
    /// A framed item (or a framing error, after which the reader stops).
    Item {
        /// The remote address.
        peer: SocketAddr,
        /// What came.
        item: Result<StreamItem, Rejected>,
    },
    /// The connection closed or could not be opened.
    Closed {
        /// The remote address.
        peer: SocketAddr,
        /// Connection generation, so that a stale close does not remove a
        /// newer connection to the same address.
        id: u64,
    },
}

/// The endpoint's handle on one connection.
#[derive(Debug, Clone)]
pub struct Conn {
    /// Generation id.
    pub id: u64,
    tx: mpsc::Sender<Vec<u8>>,
}

impl Conn {
    /// Queues bytes; `false` if the connection is gone or its queue full.
    pub fn send(&self, bytes: Vec<u8>) -> bool {
        self.tx.try_send(bytes).is_ok()
    }
}

/// Starts the tasks of an accepted connection.
pub fn accepted(stream: TcpStream, peer: SocketAddr, id: u64, events: mpsc::Sender<ConnEvent>) -> Conn {
    let (tx, rx) = mpsc::channel(QUEUE);
    tokio::spawn(run(Some(stream), peer, id, rx, events, false));
    Conn { id, tx }
}

/// Opens a connection to `peer`; bytes queued before it is up are sent
/// once it is.
pub fn connect(peer: SocketAddr, id: u64, events: mpsc::Sender<ConnEvent>) -> Conn {
    let (tx, rx) = mpsc::channel(QUEUE);
    tokio::spawn(run(None, peer, id, rx, events, true));
    Conn { id, tx }
}

async fn run(
    stream: Option<TcpStream>,
    peer: SocketAddr,
    id: u64,
    mut rx: mpsc::Receiver<Vec<u8>>,
    events: mpsc::Sender<ConnEvent>,
    outbound: bool,
) {
    let stream = match stream {
        Some(s) => s,
        None => match tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(peer)).await {
            Ok(Ok(s)) => s,
            Ok(Err(e)) => {
                debug!(%peer, error = %e, "TCP connect failed");
                let _ = events.send(ConnEvent::Closed { peer, id }).await;
                return;
            }
            Err(_) => {
                debug!(%peer, "TCP connect timed out");
                let _ = events.send(ConnEvent::Closed { peer, id }).await;
                return;
            }
        },
    };
    let _ = stream.set_nodelay(true);
    let (mut rd, mut wr) = stream.into_split();
    let reader_events = events.clone();
    let mut reader = tokio::spawn(async move {
        let mut framer = StreamFramer::new();
        let mut buf = vec![0u8; 16 * 1024];
        loop {
            let n = match tokio::time::timeout(IDLE_TIMEOUT, rd.read(&mut buf)).await {
                Ok(Ok(0)) | Ok(Err(_)) | Err(_) => return,
                Ok(Ok(n)) => n,
            };
            framer.push(&buf[..n]);
            loop {
                match framer.next() {
                    Ok(None) => break,
                    Ok(Some(item)) => {
                        if reader_events.send(ConnEvent::Item { peer, item: Ok(item) }).await.is_err() {
                            return;
                        }
                    }
                    Err(rejected) => {
                        // Out of sync: report and close.
                        let _ = reader_events.send(ConnEvent::Item { peer, item: Err(rejected) }).await;
                        return;
                    }
                }
            }
        }
    });
    let mut ping = tokio::time::interval_at(tokio::time::Instant::now() + PING_INTERVAL, PING_INTERVAL);
    loop {
        tokio::select! {
            _ = &mut reader => {
                // The peer closed, or the stream lost framing: what is
                // already queued (a 400, say) still goes out, then we close.
                while let Ok(Some(bytes)) = tokio::time::timeout(LINGER, rx.recv()).await {
                    if wr.write_all(&bytes).await.is_err() {
                        break;
                    }
                }
                break;
            }
            msg = rx.recv() => match msg {
                Some(bytes) => {
                    if wr.write_all(&bytes).await.is_err() {
                        break;
                    }
                }
                None => break,
            },
            _ = ping.tick(), if outbound => {
                if wr.write_all(b"\r\n\r\n").await.is_err() {
                    break;
                }
            }
        }
    }
    reader.abort();
    let _ = wr.shutdown().await;
    let _ = events.send(ConnEvent::Closed { peer, id }).await;
}
