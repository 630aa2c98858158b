//! SIP: the protocol cores (sans-IO) and the endpoint that drives them.
//!
//! | module | what | IO? |
//! | --- | --- | --- |
//! | [`msg`] | parse/print messages behind our facade over rsip | no |
//! | [`transaction`] | RFC 3261 §17 client and server transactions | no |
//! | [`dialog`] | dialog state (tags, route set, CSeq, target) | no |
//! | [`auth`] | HTTP digest (client answers, server challenges) | no |
//! | [`registration`] | REGISTER client: refresh, back-off, unregister | no |
//! | [`registrar`] | the built-in registrar's bindings | no |
//! | [`endpoint`] | sockets, clock and dispatch for all of the above | tokio |
//!
//! The sans-IO cores take `(input, now)` and hand back what to send, what
//! to report and when they next need the clock. See each module's doc for
//! its driving contract.

pub mod auth;
pub mod dialog;
pub mod endpoint;
pub mod msg;
pub mod registrar;
pub mod registration;
pub mod transaction;
pub mod transport;

/// Masks a URI or address for logs: keeps the scheme and host, replaces
/// the user part (often a phone number) with `***`.
pub fn mask_uri(uri: &str) -> String {
    match uri.split_once('@') {
        Some((before, after)) => {
            let scheme = before.split_once(':').map(|(s, _)| s).unwrap_or("sip");
            format!("{scheme}:***@{after}")
        }
        None => uri.to_string(),
    }
}

/// A SIP user name for logs: one that looks like a phone number (seven or
/// more digits, an optional `+`) is masked as every phone number is
/// ([`mask_phone`](crate::domain::facts::mask_phone): `139****1005`);
/// account names (`agent1`) are shown as they are.
pub fn mask_user(user: &str) -> String {
    let digits = user.strip_prefix('+').unwrap_or(user);
    if digits.len() >= 7 && digits.bytes().all(|b| b.is_ascii_digit()) {
        crate::domain::facts::mask_phone(user)
    } else {
        user.to_string()
    }
}

/// A short, stable, non-reversible tag for an identifier (a Call-ID) in logs.
pub fn short_hash(s: &str) -> String {
    use sha2::{Digest, Sha256};
    let d = Sha256::digest(s.as_bytes());
    hex::encode(&d[..4])
}

/// A random token for tags, branches and Call-IDs.
pub fn random_token(len: usize) -> String {
    use rand::RngExt;
    const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";
    let mut rng = rand::rng();
    (0..len).map(|_| ALPHABET[rng.random_range(0..ALPHABET.len())] as char).collect()
}

/// A new RFC 3261 branch (`z9hG4bK` + random).
pub fn new_branch() -> String {
    format!("{}{}", msg::header::BRANCH_COOKIE, random_token(16))
}

#[cfg(test)]
mod tests {
    #[test]
    fn phone_like_users_are_masked_account_names_are_not() {
        assert_eq!(super::mask_user("13900001005"), "139****1005");
        assert_eq!(super::mask_user("+8613900001005"), "+86*******1005");
        assert_eq!(super::mask_user("agent1"), "agent1");
        assert_eq!(super::mask_user("123456"), "123456");
    }

    #[test]
    fn masking() {
        assert_eq!(super::mask_uri("sip:13800000000@10.0.0.1:5060"), "sip:***@10.0.0.1:5060");
        assert_eq!(super::mask_uri("sip:10.0.0.1"), "sip:10.0.0.1");
        assert_eq!(super::short_hash("abc").len(), 8);
        assert!(super::new_branch().starts_with("z9hG4bK"));
    }
}
