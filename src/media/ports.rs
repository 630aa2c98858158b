//! The RTP port range (`[media] rtp_ports = "30000-30999"`).
//!
//! Each call leg takes a pair of adjacent ports, RTP on the even one and RTCP
//! on the odd one (RFC 3550 §11). [`PortPool::bind_pair`] binds both sockets
//! and hands out a [`PortLease`] that returns the pair when dropped.
//!
//! ## Driving contract
//!
//! - Build one pool at start-up from the configured range
//!   ([`crate::config::parse_port_range`], [`PortPool::new`]) and clone it into the
//!   call tasks: clones share the same pairs.
//! - Call [`PortPool::bind_pair`] at call set-up, keep the lease as long as
//!   the sockets, and drop the sockets before (or with) the lease.
//!
//! Pairs are handed out round-robin, so a pair just freed is the last to be
//! reused (late packets of the previous call are unlikely to hit the next
//! one). A pair whose ports the OS refuses because someone else holds them is
//! skipped. The pool's lock is taken only at set-up and tear-down, never per
//! packet; the sockets it returns are non-blocking, ready for
//! `tokio::net::UdpSocket::from_std` inside a runtime.

use std::io;
use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::ops::RangeInclusive;
use std::sync::{Arc, Mutex, MutexGuard};

/// Why a range is invalid or no pair could be bound.
#[derive(Debug, thiserror::Error)]
pub enum PortError {
    /// The configured range is unusable; the text says why.
    #[error("invalid RTP port range: {0}")]
    InvalidRange(&'static str),
    /// Every pair is leased or held by another process.
    #[error("no free RTP port pair")]
    Exhausted,
    /// The OS refused to bind for a reason other than a port in use (e.g.
    /// the address is not local).
    #[error("cannot bind RTP ports: {0}")]
    Bind(#[source] io::Error),
}

/// The shared pool of RTP/RTCP port pairs. Cheap to clone.
#[derive(Debug, Clone)]
pub struct PortPool {
    inner: Arc<Mutex<Inner>>,
}

#[derive(Debug)]
struct Inner {
    /// The first (even) port.
    start: u16,
    /// Per pair: leased?
    leased: Vec<bool>,
    /// The pair to try first next time.
    next: usize,
}

/// A leased pair of ports; dropping it returns the pair to the pool.
#[derive(Debug)]
pub struct PortLease {
    inner: Arc<Mutex<Inner>>,
    index: usize,
    rtp_port: u16,
}

impl PortLease {
    /// The RTP (even) port; RTCP is the next one.
    pub fn rtp_port(&self) -> u16 {
        self.rtp_port
    }
}

impl Drop for PortLease {
    fn drop(&mut self) {
        if let Some(slot) = lock(&self.inner).leased.get_mut(self.index) {
            *slot = false;
        }
    }
}

impl PortPool {
    /// A pool over `range`: the start must be even and not 0, and the range
    /// must hold at least one pair. An odd last port is left unused.
    pub fn new(range: RangeInclusive<u16>) -> Result<PortPool, PortError> {
        let (start, end) = (*range.start(), *range.end());
        if start == 0 {
            return Err(PortError::InvalidRange("port 0 is not a port"));
        }
        if !start.is_multiple_of(2) {
            return Err(PortError::InvalidRange("the first port must be even"));
        }
        if end <= start {
            return Err(PortError::InvalidRange("it must hold at least two ports"));
        }
        // Whole pairs only: an odd last port is left out.
        let ports = usize::from(end - start) + 1;
        let pairs = ports / 2;
        Ok(PortPool { inner: Arc::new(Mutex::new(Inner { start, leased: vec![false; pairs], next: 0 })) })
    }

    /// Binds an RTP/RTCP socket pair (even port, port + 1) on `ip`, trying
    /// pairs round-robin and skipping those the OS refuses as in use. Both
    /// sockets are non-blocking. The lease returns the pair on drop.
    ///
    /// Errors: [`PortError::Exhausted`] when no pair is free,
    /// [`PortError::Bind`] when binding fails for another reason (then no
    /// other pair would do better).
    pub fn bind_pair(&self, ip: IpAddr) -> Result<(UdpSocket, UdpSocket, PortLease), PortError> {
        let mut inner = lock(&self.inner);
        let pairs = inner.leased.len();
        for step in 0..pairs {
            let index = (inner.next + step) % pairs;
            if inner.leased[index] {
                continue;
            }
            let port = inner.start + 2 * index as u16;
            let (rtp, rtcp) = match bind_two(ip, port) {
                Ok(sockets) => sockets,
                Err(e) if e.kind() == io::ErrorKind::AddrInUse => continue,
                Err(e) => return Err(PortError::Bind(e)),
            };
            inner.leased[index] = true;
            inner.next = (index + 1) % pairs;
            let lease = PortLease { inner: Arc::clone(&self.inner), index, rtp_port: port };
            return Ok((rtp, rtcp, lease));
        }
        Err(PortError::Exhausted)
    }

    /// How many pairs are not leased (some may still be held by other
    /// processes).
    pub fn available(&self) -> usize {
        lock(&self.inner).leased.iter().filter(|l| !**l).count()
    }
}

/// Binds `port` and `port + 1` on `ip`, both non-blocking.
fn bind_two(ip: IpAddr, port: u16) -> io::Result<(UdpSocket, UdpSocket)> {
    let rtp = UdpSocket::bind(SocketAddr::new(ip, port))?;
    let rtcp = UdpSocket::bind(SocketAddr::new(ip, port + 1))?;
    rtp.set_nonblocking(true)?;
    rtcp.set_nonblocking(true)?;
    Ok((rtp, rtcp))
}

/// The pool's lock; a panic elsewhere while holding it leaves a consistent
/// table (single writes), so poisoning is ignored.
fn lock(inner: &Mutex<Inner>) -> MutexGuard<'_, Inner> {
    inner.lock().unwrap_or_else(|e| e.into_inner())
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use std::net::Ipv4Addr;

    const LOCALHOST: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);

    /// A range of `pairs` pairs on 127.0.0.1 that were all free a moment ago
    /// (tests run in parallel with other processes binding ports).
    pub(crate) fn free_range(pairs: u16) -> RangeInclusive<u16> {
        for _ in 0..200 {
            let probe = UdpSocket::bind((LOCALHOST, 0)).unwrap();
            let base = probe.local_addr().unwrap().port() & !1;
            drop(probe);
            if base < 1024 || u32::from(base) + 2 * u32::from(pairs) > 65535 {
                continue;
            }
            let held: Result<Vec<UdpSocket>, _> =
                (base..base + 2 * pairs).map(|p| UdpSocket::bind((LOCALHOST, p))).collect();
            if held.is_ok() {
                return base..=base + 2 * pairs - 1;
            }
        }
        panic!("no free range of {pairs} UDP port pairs on 127.0.0.1");
    }

    #[test]
    fn new_checks_the_range() {
        assert!(PortPool::new(30001..=30999).is_err());
        assert!(PortPool::new(30000..=30000).is_err());
        assert!(PortPool::new(0..=9).is_err());
        assert_eq!(PortPool::new(30000..=30001).unwrap().available(), 1);
        // The odd last port is left unused.
        assert_eq!(PortPool::new(30000..=30998).unwrap().available(), 499);
        assert_eq!(PortPool::new(30000..=30999).unwrap().available(), 500);
    }

    #[test]
    fn pairs_are_even_and_odd_adjacent_and_non_blocking() {
        let pool = PortPool::new(free_range(3)).unwrap();
        let (rtp, rtcp, lease) = pool.bind_pair(LOCALHOST).unwrap();
        let p = rtp.local_addr().unwrap().port();
        assert_eq!(p % 2, 0);
        assert_eq!(rtcp.local_addr().unwrap().port(), p + 1);
        assert_eq!(lease.rtp_port(), p);
        let mut buf = [0u8; 16];
        assert_eq!(rtp.recv_from(&mut buf).unwrap_err().kind(), io::ErrorKind::WouldBlock);
    }

    #[test]
    fn exhausted_pool_errors_and_a_dropped_lease_frees_its_pair() {
        let range = free_range(2);
        let pool = PortPool::new(range.clone()).unwrap();
        let a = pool.bind_pair(LOCALHOST).unwrap();
        let b = pool.bind_pair(LOCALHOST).unwrap();
        assert_eq!(pool.available(), 0);
        assert!(matches!(pool.bind_pair(LOCALHOST), Err(PortError::Exhausted)));
        let freed = a.2.rtp_port();
        drop(a);
        assert_eq!(pool.available(), 1);
        let c = pool.clone().bind_pair(LOCALHOST).unwrap();
        assert_eq!(c.2.rtp_port(), freed);
        assert_ne!(b.2.rtp_port(), freed);
    }

    #[test]
    fn round_robin_reuses_a_freed_pair_last() {
        let pool = PortPool::new(free_range(3)).unwrap();
        let first = pool.bind_pair(LOCALHOST).unwrap();
        let p1 = first.2.rtp_port();
        drop(first);
        let second = pool.bind_pair(LOCALHOST).unwrap();
        assert_ne!(second.2.rtp_port(), p1);
    }

    #[test]
    fn a_port_in_use_by_someone_else_is_skipped() {
        let range = free_range(3);
        let start = *range.start();
        // Someone else holds the RTCP port of the first pair.
        let squatter = UdpSocket::bind((LOCALHOST, start + 1)).unwrap();
        let pool = PortPool::new(range).unwrap();
        let (rtp, _rtcp, lease) = pool.bind_pair(LOCALHOST).unwrap();
        assert_eq!(lease.rtp_port(), start + 2);
        assert_eq!(rtp.local_addr().unwrap().port(), start + 2);
        // The skipped pair is not leased: it is free once the squatter leaves.
        assert_eq!(pool.available(), 2);
        drop(squatter);
    }

    #[test]
    fn a_foreign_address_is_a_bind_error() {
        let pool = PortPool::new(free_range(1)).unwrap();
        // TEST-NET-1 is not a local address.
        let e = pool.bind_pair(IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1))).unwrap_err();
        assert!(matches!(e, PortError::Bind(_)), "{e:?}");
        assert_eq!(pool.available(), 1);
    }
}
