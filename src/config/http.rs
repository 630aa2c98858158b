//! `[http]`: the web door inside `serve` (issue 12).

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;

use serde::Deserialize;

/// `[http]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpConfig {
    /// Whether `serve` runs the web door.
    #[serde(default = "yes")]
    pub enabled: bool,
    /// Address and port to listen on.
    #[serde(default = "default_listen")]
    pub listen: SocketAddr,
    /// Reverse proxies whose `X-Forwarded-For` and `X-Forwarded-Proto` are
    /// believed (exact addresses). Anyone else's are ignored.
    #[serde(default)]
    pub trusted_proxies: Vec<IpAddr>,
    /// Origins, besides the one the request's `Host` names, from which a
    /// browser may change state or open a WebSocket (e.g. the address the
    /// proxy serves: `https://huifang.example.com`).
    #[serde(default)]
    pub allowed_origins: Vec<String>,
    /// A session ends after this many minutes without a request.
    #[serde(default = "default_idle")]
    pub session_idle_mins: u32,
    /// A session ends this many hours after the login, used or not.
    #[serde(default = "default_absolute")]
    pub session_absolute_hours: u32,
    /// Failed logins that lock a login…
    #[serde(default = "default_max_failures")]
    pub login_max_failures: u32,
    /// …within this many minutes…
    #[serde(default = "default_fifteen")]
    pub login_window_mins: u32,
    /// …for this many minutes.
    #[serde(default = "default_fifteen")]
    pub login_lock_mins: u32,
    /// Shortest password accepted.
    #[serde(default = "default_password_min")]
    pub password_min_length: usize,
    /// Whether agents may play the recordings of their own calls.
    #[serde(default)]
    pub agents_may_play: bool,
    /// The roles whose holders may reveal a client's full phone or ID
    /// number (each reveal audited): `compliance`, `supervisor` (of the
    /// client's branch). Everyone else sees them masked.
    #[serde(default = "default_reveal_roles")]
    pub reveal_roles: Vec<String>,
    /// Largest request body, KiB.
    #[serde(default = "default_body_kib")]
    pub max_body_kib: usize,
    /// A request that takes longer is answered 503 (audio streams excepted).
    #[serde(default = "default_timeout")]
    pub request_timeout_secs: u64,
    /// How often the event feeds (`/ws/agent`) ping; a connection that did
    /// not answer the previous ping is closed.
    #[serde(default = "default_ws_ping")]
    pub ws_ping_secs: u64,
    /// TLS by huifang itself (else plain HTTP, e.g. behind a proxy).
    #[serde(default)]
    pub tls: Option<TlsConfig>,
}

/// `[http.tls]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsConfig {
    /// PEM certificate chain (relative to the configuration file).
    pub cert: PathBuf,
    /// PEM private key (relative to the configuration file).
    pub key: PathBuf,
}

fn default_reveal_roles() -> Vec<String> {
    vec!["compliance".into()]
}

fn default_ws_ping() -> u64 {
    20
}

impl Default for HttpConfig {
    fn default() -> Self {
        HttpConfig {
            enabled: true,
            listen: default_listen(),
            trusted_proxies: Vec::new(),
            allowed_origins: Vec::new(),
            session_idle_mins: default_idle(),
            session_absolute_hours: default_absolute(),
            login_max_failures: default_max_failures(),
            login_window_mins: default_fifteen(),
            login_lock_mins: default_fifteen(),
            password_min_length: default_password_min(),
            agents_may_play: false,
            reveal_roles: default_reveal_roles(),
            max_body_kib: default_body_kib(),
            request_timeout_secs: default_timeout(),
            ws_ping_secs: default_ws_ping(),
            tls: None,
        }
    }
}

impl HttpConfig {
    /// The settings of a file without an `[http]` section: the defaults,
    /// disabled.
    pub fn absent() -> Self {
        HttpConfig { enabled: false, ..HttpConfig::default() }
    }

    /// Checks the values: `(key, reason)` on the first bad one.
    pub(super) fn check(&self) -> Result<(), (String, String)> {
        let ranges: [(&str, u64, u64, u64); 8] = [
            ("http.session_idle_mins", self.session_idle_mins.into(), 1, 24 * 60),
            ("http.session_absolute_hours", self.session_absolute_hours.into(), 1, 24 * 7),
            ("http.login_max_failures", self.login_max_failures.into(), 1, 100),
            ("http.login_window_mins", self.login_window_mins.into(), 1, 24 * 60),
            ("http.login_lock_mins", self.login_lock_mins.into(), 1, 24 * 60),
            ("http.max_body_kib", self.max_body_kib as u64, 1, 64 * 1024),
            ("http.request_timeout_secs", self.request_timeout_secs, 1, 3600),
            ("http.ws_ping_secs", self.ws_ping_secs, 1, 300),
        ];
        for (key, v, lo, hi) in ranges {
            if !(lo..=hi).contains(&v) {
                return Err((key.into(), format!("{v} is out of range {lo}..={hi}")));
            }
        }
        if self.password_min_length < 8 || self.password_min_length > 256 {
            return Err(("http.password_min_length".into(), "must be in 8..=256".into()));
        }
        for (i, r) in self.reveal_roles.iter().enumerate() {
            if !matches!(r.as_str(), "compliance" | "supervisor") {
                return Err((
                    format!("http.reveal_roles[{i}]"),
                    format!("{r:?}: only compliance and supervisor may reveal numbers"),
                ));
            }
        }
        for (i, o) in self.allowed_origins.iter().enumerate() {
            let ok = (o.starts_with("https://") || o.starts_with("http://"))
                && !o.trim_end_matches('/').contains(['?', '#'])
                && o.split("://").nth(1).is_some_and(|h| !h.is_empty() && !h.contains('/'));
            if !ok {
                return Err((
                    format!("http.allowed_origins[{i}]"),
                    format!("{o:?} is not an origin like https://host[:port]"),
                ));
            }
        }
        Ok(())
    }
}

fn yes() -> bool {
    true
}
fn default_listen() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 8080))
}
fn default_idle() -> u32 {
    30
}
fn default_absolute() -> u32 {
    12
}
fn default_max_failures() -> u32 {
    5
}
fn default_fifteen() -> u32 {
    15
}
fn default_password_min() -> usize {
    12
}
fn default_body_kib() -> usize {
    256
}
fn default_timeout() -> u64 {
    30
}

#[cfg(test)]
mod tests {
    use crate::config::Config;

    const MIN: &str = "[sip]\nlisten = \"127.0.0.1:5070\"\n";

    #[test]
    fn no_section_no_web_door_and_the_shipped_file_says_the_defaults() {
        assert!(!Config::parse(MIN, "t.toml").unwrap().http.enabled);
        let c = Config::parse(&format!("{MIN}[http]\n"), "t.toml").unwrap();
        assert!(c.http.enabled);
        assert_eq!(c.http.listen.to_string(), "127.0.0.1:8080");
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("config/huifang.toml");
        let shipped = Config::load(&path).unwrap().http;
        let d = super::HttpConfig::default();
        assert_eq!(
            (shipped.enabled, shipped.listen, shipped.session_idle_mins, shipped.login_max_failures),
            (d.enabled, d.listen, d.session_idle_mins, d.login_max_failures)
        );
        assert_eq!(shipped.password_min_length, d.password_min_length);
        assert!(!shipped.agents_may_play && shipped.tls.is_none());
        assert_eq!(shipped.reveal_roles, d.reveal_roles);
    }

    #[test]
    fn bad_values_are_named() {
        for (text, key) in [
            ("[http]\nsession_idle_mins = 0\n", "http.session_idle_mins"),
            ("[http]\npassword_min_length = 4\n", "http.password_min_length"),
            ("[http]\nallowed_origins = [\"evil\"]\n", "http.allowed_origins[0]"),
            ("[http]\nreveal_roles = [\"compliance\", \"agent\"]\n", "http.reveal_roles[1]"),
            ("[http]\nlisten_port = 1\n", "http"),
        ] {
            let e = Config::parse(&format!("{MIN}{text}"), "t.toml").unwrap_err();
            assert!(e.key.starts_with(key), "{text}: {e}");
        }
    }
}
