//! Configuration: the TOML file, its defaults and its checks.
//!
//! Every key is documented in the shipped `config/huifang.toml`. Loading
//! fails — and `huifang` exits with code 2 — on a missing file, a syntax
//! error, an unknown key or a bad value; the error names the file, the key
//! (`sip.switch.transport`), the line and the reason. Secrets may come
//! from environment variables (`password_env`).

mod http;
pub use http::{HttpConfig, TlsConfig};

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;
use thiserror::Error;

use crate::domain::avoidance::{Avoidance, AvoidanceConfig};
use crate::domain::calendar::Calendar;
use crate::domain::dialing::{DialingPolicy, RetryConfig, RetryPolicy, WindowsConfig};
use crate::domain::kinds::RulesConfig;
use crate::domain::records::RecordsConfig;
use crate::sip::msg::Uri;
use crate::sip::transport::Transport;

/// A configuration that cannot be used.
#[derive(Debug, Error)]
#[error("config error in {file}: {key}: {reason}")]
pub struct ConfigError {
    /// The file.
    pub file: String,
    /// The key at fault (dotted path), or `-` for the file as a whole.
    pub key: String,
    /// Why, with a line number where known.
    pub reason: String,
}

/// The whole configuration.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// SIP settings.
    pub sip: SipConfig,
    /// Logging.
    #[serde(default)]
    pub log: LogConfig,
    /// Media relay.
    #[serde(default)]
    pub media: MediaConfig,
    /// The trace database.
    #[serde(default)]
    pub database: DatabaseConfig,
    /// The local recording spool.
    #[serde(default)]
    pub spool: SpoolConfig,
    /// How calls are placed.
    #[serde(default)]
    pub call: CallConfig,
    /// Where sealed recordings go for good.
    #[serde(default)]
    pub archive: ArchiveConfig,
    /// How long recordings are kept.
    #[serde(default)]
    pub retention: RetentionConfig,
    /// The trading calendar.
    #[serde(default)]
    pub calendar: CalendarConfig,
    /// The callback rules and their numbers.
    #[serde(default)]
    pub rules: RulesConfig,
    /// Avoidance (E7).
    #[serde(default)]
    pub avoidance: AvoidanceConfig,
    /// Deadlines after a callback.
    #[serde(default)]
    pub records: RecordsConfig,
    /// The dialer inside `serve`.
    #[serde(default)]
    pub dialer: DialerConfig,
    /// The web door inside `serve`. A file without an `[http]` section runs
    /// none (opening a port is a choice); with the section, `enabled`
    /// defaults to true.
    #[serde(default = "HttpConfig::absent")]
    pub http: HttpConfig,
    /// The directory of the configuration file: relative paths start here.
    #[serde(skip)]
    pub base_dir: PathBuf,
}

/// `[media]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MediaConfig {
    /// Address the RTP sockets bind to and that SDP advertises.
    #[serde(default = "default_media_address")]
    pub address: std::net::IpAddr,
    /// RTP port range `"FIRST-LAST"`; each leg takes an even port and the next.
    #[serde(default = "default_rtp_ports")]
    pub rtp_ports: String,
    /// Threads that write recordings to disk.
    #[serde(default = "default_recorder_threads")]
    pub recorder_threads: usize,
}

impl Default for MediaConfig {
    fn default() -> Self {
        MediaConfig {
            address: default_media_address(),
            rtp_ports: default_rtp_ports(),
            recorder_threads: default_recorder_threads(),
        }
    }
}

fn default_media_address() -> std::net::IpAddr {
    std::net::IpAddr::from([127, 0, 0, 1])
}
fn default_rtp_ports() -> String {
    "30000-30999".into()
}
fn default_recorder_threads() -> usize {
    2
}

/// `[database]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DatabaseConfig {
    /// `sqlite://PATH` (relative to the config file) or `postgres://…`.
    #[serde(default = "default_db_url")]
    pub url: String,
}

impl Default for DatabaseConfig {
    fn default() -> Self {
        DatabaseConfig { url: default_db_url() }
    }
}

fn default_db_url() -> String {
    "sqlite://var/huifang.db".into()
}

/// `[spool]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SpoolConfig {
    /// Directory for recordings in progress and sealed ones awaiting upload.
    #[serde(default = "default_spool")]
    pub path: PathBuf,
    /// Below this much free space on the spool's file system, new calls are
    /// refused (`recording-failed`) rather than recorded into a full disk, MiB.
    #[serde(default = "default_min_free")]
    pub min_free_mb: u64,
    /// How long a spooled file is kept after its upload was verified, seconds.
    #[serde(default = "default_grace")]
    pub keep_after_upload_secs: u64,
}

impl Default for SpoolConfig {
    fn default() -> Self {
        SpoolConfig {
            path: default_spool(),
            min_free_mb: default_min_free(),
            keep_after_upload_secs: default_grace(),
        }
    }
}

fn default_min_free() -> u64 {
    512
}
fn default_grace() -> u64 {
    86_400
}

/// `[archive]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ArchiveConfig {
    /// `local` (a directory) or `s3`.
    #[serde(default = "default_backend")]
    pub backend: String,
    /// The local backend's directory (relative to the config file).
    #[serde(default = "default_archive_path")]
    pub path: PathBuf,
    /// The S3 backend.
    #[serde(default)]
    pub s3: Option<S3Config>,
    /// Uploader: first retry delay after an error, seconds.
    #[serde(default = "default_retry_min")]
    pub retry_min_secs: u64,
    /// Uploader: longest retry delay, seconds.
    #[serde(default = "default_retry_max")]
    pub retry_max_secs: u64,
    /// Uploads running at once.
    #[serde(default = "default_upload_parallel")]
    pub parallel_uploads: usize,
}

impl Default for ArchiveConfig {
    fn default() -> Self {
        ArchiveConfig {
            backend: default_backend(),
            path: default_archive_path(),
            s3: None,
            retry_min_secs: default_retry_min(),
            retry_max_secs: default_retry_max(),
            parallel_uploads: default_upload_parallel(),
        }
    }
}

fn default_backend() -> String {
    "local".into()
}
fn default_archive_path() -> PathBuf {
    "var/archive".into()
}
fn default_upload_parallel() -> usize {
    32
}

/// `[archive.s3]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct S3Config {
    /// Endpoint URL, e.g. `http://127.0.0.1:7480`.
    pub endpoint: String,
    /// Bucket (must have Object Lock and versioning).
    pub bucket: String,
    /// Region name (any for S3-compatible stores).
    #[serde(default = "default_region")]
    pub region: String,
    /// Path-style addressing (S3-compatible stores need it).
    #[serde(default = "default_true")]
    pub path_style: bool,
    /// Access key id; default: `AWS_ACCESS_KEY_ID`.
    #[serde(default)]
    pub access_key_id: Option<String>,
    /// Name of an environment variable holding the secret key; default:
    /// `AWS_SECRET_ACCESS_KEY`.
    #[serde(default)]
    pub secret_access_key_env: Option<String>,
}

fn default_region() -> String {
    "us-east-1".into()
}
fn default_true() -> bool {
    true
}

/// `[retention]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RetentionConfig {
    /// Floor for every recording, years (15 by the rules; smaller stops start-up).
    #[serde(default = "default_min_years")]
    pub minimum_years: u32,
    /// Years per callback kind; unknown kinds use `minimum_years`.
    #[serde(default)]
    pub years: std::collections::BTreeMap<String, u32>,
}

impl Default for RetentionConfig {
    fn default() -> Self {
        RetentionConfig { minimum_years: default_min_years(), years: Default::default() }
    }
}

fn default_min_years() -> u32 {
    15
}

impl RetentionConfig {
    /// Retention of a callback kind, years (never below the floor).
    pub fn years_for(&self, kind: Option<&str>) -> u32 {
        kind.and_then(|k| self.years.get(k)).copied().unwrap_or(self.minimum_years).max(self.minimum_years)
    }
}

/// `[calendar]`
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CalendarConfig {
    /// The holiday file (relative to the config file); none: the
    /// exchanges' calendar built into the binary ([`BUILT_IN_HOLIDAYS`]).
    #[serde(default)]
    pub holidays: Option<PathBuf>,
}

/// The mainland exchanges' closures as shipped (`config/holidays/cn-exchanges.toml`),
/// built in: a configuration written from scratch needs no file beside it.
pub const BUILT_IN_HOLIDAYS: &str = include_str!("../config/holidays/cn-exchanges.toml");

fn default_spool() -> PathBuf {
    "var/spool".into()
}

/// `[call]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CallConfig {
    /// Auto-answer hint on the agent's INVITE: `call-info`, `alert-info`, `both`, `none`.
    #[serde(default = "default_auto_answer")]
    pub auto_answer: String,
    /// How long the agent's phone may ring, seconds.
    #[serde(default = "default_agent_ring")]
    pub agent_ring_secs: u64,
    /// How long the client's phone may ring before `no-answer`, seconds.
    #[serde(default = "default_client_ring")]
    pub client_ring_secs: u64,
    /// Longest conversation, seconds.
    #[serde(default = "default_max_call")]
    pub max_call_secs: u64,
    /// Codecs offered to the agent, in order of preference.
    #[serde(default = "default_codecs")]
    pub codecs: Vec<String>,
    /// RTP payload type offered for telephone-event (RFC 4733), 96..=127.
    #[serde(default = "default_te")]
    pub telephone_event_pt: u8,
}

impl Default for CallConfig {
    fn default() -> Self {
        CallConfig {
            auto_answer: default_auto_answer(),
            agent_ring_secs: default_agent_ring(),
            client_ring_secs: default_client_ring(),
            max_call_secs: default_max_call(),
            codecs: default_codecs(),
            telephone_event_pt: default_te(),
        }
    }
}

fn default_auto_answer() -> String {
    "call-info".into()
}
fn default_agent_ring() -> u64 {
    30
}
fn default_client_ring() -> u64 {
    45
}
fn default_max_call() -> u64 {
    3600
}
fn default_codecs() -> Vec<String> {
    vec!["PCMU".into(), "PCMA".into()]
}
fn default_te() -> u8 {
    101
}

/// `[dialer]`: the dialer inside `serve` (progressive mode).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DialerConfig {
    /// Whether `serve` works the callback queue.
    #[serde(default = "default_true")]
    pub enabled: bool,
    /// This instance's name in leases and traces; default `HOSTNAME:SIPPORT`.
    /// Must stay the same across restarts (start-up recovery closes the
    /// open calls of this instance only).
    #[serde(default)]
    pub instance_id: Option<String>,
    /// `progressive`: each available agent gets the next task, agent first.
    #[serde(default = "default_mode")]
    pub mode: String,
    /// Calls at once, at most, for this instance.
    #[serde(default = "default_max_calls")]
    pub max_concurrent_calls: u32,
    /// How often the dialer looks for available agents and due tasks, ms.
    #[serde(default = "default_poll_ms")]
    pub poll_interval_ms: u64,
    /// Lease of a claimed task and of its agent, seconds; renewed every
    /// third of it while the call runs. Another instance takes a task up
    /// once its lease has expired.
    #[serde(default = "default_lease")]
    pub lease_secs: u64,
    /// After a call, the agent writes the record for this long before the
    /// next call, seconds.
    #[serde(default = "default_wrap_up")]
    pub wrap_up_secs: u64,
    /// At shutdown: how long calls in progress may go on before they are
    /// ended (as `interrupted`), seconds.
    #[serde(default = "default_dialer_deadline")]
    pub shutdown_deadline_secs: u64,
    /// The client's SIP URI; `{phone}` becomes the client's phone number
    /// (digits and a leading `+` only).
    #[serde(default = "default_client_uri")]
    pub client_uri: String,
    /// Attempts that reach the client's phone, at most; then the task is
    /// closed `unreachable`.
    #[serde(default = "default_max_attempts")]
    pub max_attempts: u32,
    /// Wait after the 1st, 2nd, … unsuccessful attempt, seconds (the last
    /// value repeats).
    #[serde(default = "default_retry_spacing")]
    pub retry_spacing_secs: Vec<u64>,
    /// Wait after an attempt that did not count (recording failed, huifang
    /// stopped, cancelled), seconds.
    #[serde(default = "default_retry_failed")]
    pub retry_failed_secs: u64,
    /// A completed call whose task has no callback record this many
    /// seconds later shows in `huifang report overdue`.
    #[serde(default = "default_record_due")]
    pub record_due_secs: u64,
    /// The call center's time zone, hours east of UTC (calling windows and
    /// business days).
    #[serde(default = "default_tz")]
    pub utc_offset_hours: i32,
    /// Whether calls are placed on days the exchanges are closed (the
    /// weekday's windows then apply).
    #[serde(default)]
    pub call_on_non_business_days: bool,
    /// Test clock: the dialer's time starts at this instant (RFC 3339) and
    /// runs at the normal pace. For tests and drills only: refused unless
    /// [`drill`](Self::drill) is set too.
    #[serde(default)]
    pub clock_start: Option<String>,
    /// This is a drill (the demo, tests): only then is `clock_start`
    /// accepted, and the dialer says so loudly while it runs.
    #[serde(default)]
    pub drill: bool,
    /// Calling hours per weekday.
    #[serde(default)]
    pub windows: WindowsConfig,
}

impl Default for DialerConfig {
    fn default() -> Self {
        DialerConfig {
            enabled: true,
            instance_id: None,
            mode: default_mode(),
            max_concurrent_calls: default_max_calls(),
            poll_interval_ms: default_poll_ms(),
            lease_secs: default_lease(),
            wrap_up_secs: default_wrap_up(),
            shutdown_deadline_secs: default_dialer_deadline(),
            client_uri: default_client_uri(),
            max_attempts: default_max_attempts(),
            retry_spacing_secs: default_retry_spacing(),
            retry_failed_secs: default_retry_failed(),
            record_due_secs: default_record_due(),
            utc_offset_hours: default_tz(),
            call_on_non_business_days: false,
            clock_start: None,
            drill: false,
            windows: WindowsConfig::default(),
        }
    }
}

fn default_mode() -> String {
    "progressive".into()
}
fn default_max_calls() -> u32 {
    20
}
fn default_poll_ms() -> u64 {
    1000
}
fn default_lease() -> u64 {
    30
}
fn default_wrap_up() -> u64 {
    20
}
fn default_dialer_deadline() -> u64 {
    60
}
fn default_client_uri() -> String {
    "sip:{phone}@127.0.0.1:5060".into()
}
fn default_max_attempts() -> u32 {
    3
}
fn default_retry_spacing() -> Vec<u64> {
    vec![1800, 7200]
}
fn default_retry_failed() -> u64 {
    300
}
fn default_record_due() -> u64 {
    1800
}
fn default_tz() -> i32 {
    8
}

impl DialerConfig {
    /// The calling windows and time zone, checked.
    pub fn policy(&self) -> Result<DialingPolicy, (String, String)> {
        let offset = chrono::FixedOffset::east_opt(self.utc_offset_hours * 3600)
            .filter(|_| (-12..=14).contains(&self.utc_offset_hours))
            .ok_or(("dialer.utc_offset_hours".to_string(), "must be in -12..=14".to_string()))?;
        Ok(DialingPolicy {
            windows: self.windows.resolve()?,
            non_business_days: self.call_on_non_business_days,
            offset,
        })
    }

    /// The retry policy, checked.
    pub fn retry(&self) -> Result<RetryPolicy, (String, String)> {
        RetryConfig {
            max_attempts: self.max_attempts,
            spacing_secs: self.retry_spacing_secs.clone(),
            failed_secs: self.retry_failed_secs,
        }
        .resolve()
    }

    /// The test clock's start, if set.
    pub fn clock_start(&self) -> Result<Option<chrono::DateTime<chrono::Utc>>, (String, String)> {
        self.clock_start
            .as_deref()
            .map(|s| {
                chrono::DateTime::parse_from_rfc3339(s).map(|t| t.with_timezone(&chrono::Utc)).map_err(|e| {
                    ("dialer.clock_start".to_string(), format!("{s:?} is not an RFC 3339 time: {e}"))
                })
            })
            .transpose()
    }

    /// The client's URI for a phone number: `{phone}` replaced by the
    /// number's digits (a leading `+` kept). `None` when the number has
    /// anything else.
    pub fn client_uri_for(&self, phone: &str) -> Option<Uri> {
        let compact: String = phone.chars().filter(|c| !matches!(c, ' ' | '-' | '(' | ')')).collect();
        let digits = compact.strip_prefix('+').unwrap_or(&compact);
        if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        Uri::parse(&self.client_uri.replace("{phone}", &compact)).ok()
    }

    fn check(&self) -> Result<(), (String, String)> {
        if self.mode != "progressive" {
            return Err(("dialer.mode".into(), format!("{:?} is not \"progressive\"", self.mode)));
        }
        if let Some(id) = &self.instance_id
            && (id.is_empty() || id.len() > 64 || !id.bytes().all(|b| b.is_ascii_graphic()))
        {
            return Err(("dialer.instance_id".into(), "must be 1..=64 printable ASCII characters".into()));
        }
        for (key, v, range) in [
            ("dialer.max_concurrent_calls", u64::from(self.max_concurrent_calls), 1..=1000),
            ("dialer.poll_interval_ms", self.poll_interval_ms, 50..=60_000),
            ("dialer.lease_secs", self.lease_secs, 3..=3600),
            ("dialer.wrap_up_secs", self.wrap_up_secs, 0..=3600),
            ("dialer.shutdown_deadline_secs", self.shutdown_deadline_secs, 0..=86_400),
            ("dialer.record_due_secs", self.record_due_secs, 1..=7 * 86_400),
        ] {
            if !range.contains(&v) {
                return Err((key.into(), format!("{v} is out of range {}..={}", range.start(), range.end())));
            }
        }
        if self.client_uri.matches("{phone}").count() != 1 {
            return Err(("dialer.client_uri".into(), "must contain {phone} exactly once".into()));
        }
        if self.client_uri_for("13800000000").is_none() {
            return Err(("dialer.client_uri".into(), "is not a SIP URI once {phone} is replaced".into()));
        }
        self.policy()?;
        self.retry()?;
        if self.clock_start()?.is_some() && !self.drill {
            return Err((
                "dialer.clock_start".into(),
                "a drill clock moves the calling windows: it is accepted only with dialer.drill = true \
                 (the demo, tests), never in production"
                    .into(),
            ));
        }
        Ok(())
    }
}

/// `[log]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogConfig {
    /// A tracing filter such as `info` or `huifang=debug` (`RUST_LOG` wins).
    #[serde(default = "default_log_level")]
    pub level: String,
}

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig { level: default_log_level() }
    }
}

fn default_log_level() -> String {
    "info".into()
}

/// `[sip]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SipConfig {
    /// Address for UDP and TCP.
    pub listen: SocketAddr,
    /// Address to put in Via and Contact when it differs from `listen`.
    #[serde(default)]
    pub advertise: Option<SocketAddr>,
    /// User-Agent / Server header value.
    #[serde(default = "default_user_agent")]
    pub user_agent: String,
    /// RFC 3261 T1 in milliseconds (RTT estimate).
    #[serde(default = "default_t1")]
    pub t1_ms: u64,
    /// RFC 3261 T2 in milliseconds (cap of non-INVITE retransmit interval).
    #[serde(default = "default_t2")]
    pub t2_ms: u64,
    /// RFC 3261 T4 in milliseconds (how long a message stays in the network).
    #[serde(default = "default_t4")]
    pub t4_ms: u64,
    /// How long `serve` waits at shutdown for unregistering and open
    /// transactions, in milliseconds.
    #[serde(default = "default_shutdown")]
    pub shutdown_grace_ms: u64,
    /// The switch to register to; absent means built-in registrar mode.
    #[serde(default)]
    pub switch: Option<SwitchConfig>,
    /// The built-in registrar.
    #[serde(default)]
    pub registrar: RegistrarConfig,
    /// Accounts of the built-in registrar.
    #[serde(default)]
    pub users: Vec<UserConfig>,
}

fn default_user_agent() -> String {
    format!("huifang/{}", env!("CARGO_PKG_VERSION"))
}
fn default_t1() -> u64 {
    500
}
fn default_t2() -> u64 {
    4000
}
fn default_t4() -> u64 {
    5000
}
fn default_shutdown() -> u64 {
    5000
}

/// `[sip.switch]`: registration to the call center's switch.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SwitchConfig {
    /// Registrar URI, e.g. `sip:127.0.0.1:5060`.
    pub registrar: String,
    /// User name (the AOR's user part and the digest user).
    pub user: String,
    /// Password in the file (prefer `password_env`).
    #[serde(default)]
    pub password: Option<String>,
    /// Name of an environment variable holding the password.
    #[serde(default)]
    pub password_env: Option<String>,
    /// `udp` or `tcp`.
    #[serde(default = "default_transport")]
    pub transport: String,
    /// Domain of the address of record; default: the registrar's host.
    #[serde(default)]
    pub domain: Option<String>,
    /// Registration lifetime asked for, seconds.
    #[serde(default = "default_expires")]
    pub expires: u32,
    /// First retry delay after a failed registration, seconds.
    #[serde(default = "default_retry_min")]
    pub retry_min_secs: u64,
    /// Longest retry delay, seconds.
    #[serde(default = "default_retry_max")]
    pub retry_max_secs: u64,
}

fn default_transport() -> String {
    "udp".into()
}
fn default_expires() -> u32 {
    3600
}
fn default_retry_min() -> u64 {
    2
}
fn default_retry_max() -> u64 {
    300
}

/// `[sip.registrar]`: the built-in registrar.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RegistrarConfig {
    /// Digest realm.
    #[serde(default = "default_realm")]
    pub realm: String,
    /// Shortest registration accepted (423 below), seconds.
    #[serde(default = "default_min_expires")]
    pub min_expires: u32,
    /// Longest registration granted, seconds.
    #[serde(default = "default_max_expires")]
    pub max_expires: u32,
    /// Lifetime of a digest nonce, seconds.
    #[serde(default = "default_nonce_lifetime")]
    pub nonce_lifetime_secs: u64,
    /// Digest algorithms offered to softphones, in order of preference:
    /// `"MD5"`, `"SHA-256"`.
    #[serde(default = "default_algorithms")]
    pub digest_algorithms: Vec<String>,
    /// Wrong passwords or unknown users from one address within
    /// `guess_window_secs` that block the address (password guessing).
    #[serde(default = "default_guess_max")]
    pub guess_max_failures: u32,
    /// The window failures are counted in, seconds.
    #[serde(default = "default_guess_window")]
    pub guess_window_secs: u64,
    /// How long a blocked address is answered 403 unchecked, seconds.
    #[serde(default = "default_guess_block")]
    pub guess_block_secs: u64,
}

impl Default for RegistrarConfig {
    fn default() -> Self {
        RegistrarConfig {
            realm: default_realm(),
            min_expires: default_min_expires(),
            max_expires: default_max_expires(),
            nonce_lifetime_secs: default_nonce_lifetime(),
            digest_algorithms: default_algorithms(),
            guess_max_failures: default_guess_max(),
            guess_window_secs: default_guess_window(),
            guess_block_secs: default_guess_block(),
        }
    }
}

fn default_guess_max() -> u32 {
    10
}
fn default_guess_window() -> u64 {
    60
}
fn default_guess_block() -> u64 {
    300
}

fn default_realm() -> String {
    "huifang".into()
}
fn default_min_expires() -> u32 {
    60
}
fn default_max_expires() -> u32 {
    3600
}
fn default_nonce_lifetime() -> u64 {
    300
}
fn default_algorithms() -> Vec<String> {
    vec!["MD5".into()]
}

impl RegistrarConfig {
    /// The password-guessing throttle, checked.
    pub fn guess(&self) -> Result<crate::sip::registrar::GuessLimit, (String, String)> {
        let bad = |k: &str, v: u64, lo: u64, hi: u64| {
            (!(lo..=hi).contains(&v))
                .then(|| (format!("sip.registrar.{k}"), format!("{v} is out of range {lo}..={hi}")))
        };
        if let Some(e) = bad("guess_max_failures", self.guess_max_failures.into(), 1, 10_000)
            .or_else(|| bad("guess_window_secs", self.guess_window_secs, 1, 86_400))
            .or_else(|| bad("guess_block_secs", self.guess_block_secs, 1, 86_400))
        {
            return Err(e);
        }
        Ok(crate::sip::registrar::GuessLimit {
            max_failures: self.guess_max_failures,
            window: std::time::Duration::from_secs(self.guess_window_secs),
            block: std::time::Duration::from_secs(self.guess_block_secs),
        })
    }

    /// The digest algorithms, checked: known names, at least one, no repeats.
    pub fn algorithms(&self) -> Result<Vec<crate::sip::auth::Algorithm>, String> {
        use crate::sip::auth::Algorithm;
        let mut out = Vec::new();
        for name in &self.digest_algorithms {
            let alg = match name.to_ascii_uppercase().as_str() {
                "MD5" => Algorithm::Md5,
                "SHA-256" => Algorithm::Sha256,
                _ => return Err(format!("{name:?} is not \"MD5\" or \"SHA-256\"")),
            };
            if out.contains(&alg) {
                return Err(format!("{name:?} is listed twice"));
            }
            out.push(alg);
        }
        if out.is_empty() {
            return Err("must list at least one algorithm".into());
        }
        Ok(out)
    }
}

/// `[[sip.users]]`: one account of the built-in registrar.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UserConfig {
    /// User name.
    pub name: String,
    /// Password in the file (prefer `password_env`).
    #[serde(default)]
    pub password: Option<String>,
    /// Name of an environment variable holding the password.
    #[serde(default)]
    pub password_env: Option<String>,
}

/// The switch settings, checked and resolved.
#[derive(Clone)]
pub struct Switch {
    /// Registrar URI.
    pub registrar: Uri,
    /// Where REGISTERs go.
    pub target: SocketAddr,
    /// Transport.
    pub transport: Transport,
    /// AOR user.
    pub user: String,
    /// AOR domain.
    pub domain: String,
    /// Password (resolved from the file or the environment).
    pub password: String,
    /// Requested lifetime.
    pub expires: u32,
    /// Retry back-off bounds.
    pub retry_min: Duration,
    /// Retry back-off bounds.
    pub retry_max: Duration,
}

impl std::fmt::Debug for Switch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Switch")
            .field("target", &self.target)
            .field("transport", &self.transport)
            .field("user", &self.user)
            .field("password", &"***")
            .finish()
    }
}

impl Config {
    /// Reads and checks a configuration file.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let file = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|e| ConfigError {
            file: file.clone(),
            key: "-".into(),
            reason: format!("cannot read the file: {e}"),
        })?;
        let mut cfg = Self::parse(&text, &file)?;
        let dir = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
        cfg.base_dir = std::path::absolute(dir).unwrap_or_else(|_| dir.to_path_buf());
        Ok(cfg)
    }

    /// Parses and checks configuration text; `file` names it in errors.
    pub fn parse(text: &str, file: &str) -> Result<Config, ConfigError> {
        let err = |key: &str, reason: String| ConfigError { file: file.into(), key: key.into(), reason };
        let de = toml::Deserializer::parse(text).map_err(|e| err("-", describe_toml(text, &e)))?;
        let cfg: Config = serde_path_to_error::deserialize(de).map_err(|e| {
            let key = e.path().to_string();
            err(if key == "." { "-" } else { &key }, describe_toml(text, e.inner()))
        })?;
        cfg.check().map_err(|(key, reason)| err(&key, reason))?;
        Ok(cfg)
    }

    fn check(&self) -> Result<(), (String, String)> {
        let s = &self.sip;
        for (key, v) in [("sip.t1_ms", s.t1_ms), ("sip.t2_ms", s.t2_ms), ("sip.t4_ms", s.t4_ms)] {
            if v == 0 || v > 60_000 {
                return Err((key.into(), format!("{v} is out of range 1..=60000")));
            }
        }
        if s.t2_ms < s.t1_ms {
            return Err(("sip.t2_ms".into(), "must not be smaller than sip.t1_ms".into()));
        }
        if s.listen.port() == 0 {
            return Err(("sip.listen".into(), "port 0 is not allowed".into()));
        }
        if let Some(sw) = &s.switch {
            self.resolve_switch(sw)?;
        }
        let r = &s.registrar;
        if r.min_expires == 0 || r.min_expires > r.max_expires {
            return Err(("sip.registrar.min_expires".into(), "must be in 1..=max_expires".into()));
        }
        r.algorithms().map_err(|reason| ("sip.registrar.digest_algorithms".to_string(), reason))?;
        r.guess()?;
        if r.nonce_lifetime_secs == 0 {
            return Err(("sip.registrar.nonce_lifetime_secs".into(), "must be positive".into()));
        }
        self.http.check()?;
        let m = &self.media;
        parse_port_range(&m.rtp_ports).map_err(|r| ("media.rtp_ports".to_string(), r))?;
        if m.recorder_threads == 0 || m.recorder_threads > 64 {
            return Err(("media.recorder_threads".into(), "must be in 1..=64".into()));
        }
        let db = &self.database.url;
        if !(db.starts_with("sqlite:") || db.starts_with("postgres://") || db.starts_with("postgresql://")) {
            return Err(("database.url".into(), "must start with sqlite:// or postgres://".into()));
        }
        let c = &self.call;
        if !["call-info", "alert-info", "both", "none"].contains(&c.auto_answer.as_str()) {
            return Err((
                "call.auto_answer".into(),
                format!("{:?} is not call-info, alert-info, both or none", c.auto_answer),
            ));
        }
        for (key, v, max) in [
            ("call.agent_ring_secs", c.agent_ring_secs, 600),
            ("call.client_ring_secs", c.client_ring_secs, 600),
            ("call.max_call_secs", c.max_call_secs, 86_400),
        ] {
            if v == 0 || v > max {
                return Err((key.into(), format!("{v} is out of range 1..={max}")));
            }
        }
        if c.codecs.is_empty() {
            return Err(("call.codecs".into(), "must list at least one codec".into()));
        }
        for codec in &c.codecs {
            if !["PCMU", "PCMA"].contains(&codec.to_ascii_uppercase().as_str()) {
                return Err(("call.codecs".into(), format!("{codec:?} is not PCMU or PCMA")));
            }
        }
        if !(96..=127).contains(&c.telephone_event_pt) {
            return Err((
                "call.telephone_event_pt".into(),
                "must be a dynamic payload type, 96..=127".into(),
            ));
        }
        if self.retention.minimum_years < 15 || self.retention.minimum_years > 100 {
            return Err((
                "retention.minimum_years".into(),
                format!(
                    "{} is below the 15-year floor the rules demand (or above 100)",
                    self.retention.minimum_years
                ),
            ));
        }
        for (kind, years) in &self.retention.years {
            if *years < self.retention.minimum_years || *years > 100 {
                return Err((
                    format!("retention.years.{kind}"),
                    format!("{years} is below retention.minimum_years ({})", self.retention.minimum_years),
                ));
            }
        }
        self.rules.check()?;
        self.avoidance.resolve()?;
        self.records.check()?;
        self.dialer.check()?;
        let a = &self.archive;
        match a.backend.as_str() {
            "local" => {}
            "s3" => {
                let Some(s3) = &a.s3 else {
                    return Err((
                        "archive.s3".into(),
                        "backend = \"s3\" needs an [archive.s3] section".into(),
                    ));
                };
                if !(s3.endpoint.starts_with("http://") || s3.endpoint.starts_with("https://")) {
                    return Err(("archive.s3.endpoint".into(), "must be an http:// or https:// URL".into()));
                }
                if s3.bucket.len() < 3 || s3.bucket.len() > 63 {
                    return Err(("archive.s3.bucket".into(), "must be 3..=63 characters".into()));
                }
            }
            other => return Err(("archive.backend".into(), format!("{other:?} is not local or s3"))),
        }
        if a.retry_min_secs == 0 || a.retry_min_secs > a.retry_max_secs {
            return Err(("archive.retry_min_secs".into(), "must be in 1..=retry_max_secs".into()));
        }
        if a.parallel_uploads == 0 || a.parallel_uploads > 64 {
            return Err(("archive.parallel_uploads".into(), "must be in 1..=64".into()));
        }
        let mut seen = std::collections::HashSet::new();
        for (i, u) in s.users.iter().enumerate() {
            let key = format!("sip.users[{i}]");
            if u.name.is_empty() || !u.name.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_.+".contains(&b))
            {
                return Err((format!("{key}.name"), "must be a non-empty SIP user name".into()));
            }
            if !seen.insert(u.name.as_str()) {
                return Err((format!("{key}.name"), format!("user {} appears twice", u.name)));
            }
            match (&u.password, &u.password_env) {
                (Some(_), Some(_)) => {
                    return Err((
                        format!("{key}.password"),
                        "give password or password_env, not both".into(),
                    ));
                }
                (None, None) => {
                    return Err((format!("{key}.password"), "missing: give password or password_env".into()));
                }
                (Some(p), None) if p.is_empty() => {
                    return Err((format!("{key}.password"), "must not be empty".into()));
                }
                _ => {}
            }
        }
        Ok(())
    }

    /// The switch settings resolved (password read from the environment),
    /// or `None` in built-in registrar mode.
    pub fn switch(&self) -> Result<Option<Switch>, ConfigError> {
        match &self.sip.switch {
            None => Ok(None),
            Some(sw) => self.resolve_switch(sw).map(Some).map_err(|(key, reason)| ConfigError {
                file: "-".into(),
                key,
                reason,
            }),
        }
    }

    fn resolve_switch(&self, sw: &SwitchConfig) -> Result<Switch, (String, String)> {
        let registrar = Uri::parse(&sw.registrar)
            .map_err(|e| ("sip.switch.registrar".to_string(), format!("not a SIP URI ({e})")))?;
        let target = registrar.socket_addr().ok_or((
            "sip.switch.registrar".to_string(),
            "the host must be an IP address (DNS is not supported yet)".to_string(),
        ))?;
        let transport = Transport::parse(&sw.transport)
            .ok_or(("sip.switch.transport".to_string(), format!("{:?} is not udp or tcp", sw.transport)))?;
        let password =
            secret(&sw.password, &sw.password_env).map_err(|r| ("sip.switch.password".to_string(), r))?;
        if sw.user.is_empty() {
            return Err(("sip.switch.user".into(), "must not be empty".into()));
        }
        if !(10..=86_400).contains(&sw.expires) {
            return Err(("sip.switch.expires".into(), format!("{} is out of range 10..=86400", sw.expires)));
        }
        if sw.retry_min_secs == 0 || sw.retry_min_secs > sw.retry_max_secs {
            return Err(("sip.switch.retry_min_secs".into(), "must be in 1..=retry_max_secs".into()));
        }
        Ok(Switch {
            domain: sw.domain.clone().unwrap_or_else(|| registrar.host().to_string()),
            registrar,
            target,
            transport,
            user: sw.user.clone(),
            password,
            expires: sw.expires,
            retry_min: Duration::from_secs(sw.retry_min_secs),
            retry_max: Duration::from_secs(sw.retry_max_secs),
        })
    }

    /// The built-in registrar's accounts with their passwords resolved;
    /// a user whose `password_env` is unset is left out (and named in the
    /// returned list of skipped users so that `serve` can warn).
    pub fn users(&self) -> (Vec<(String, String)>, Vec<String>) {
        let mut ok = Vec::new();
        let mut skipped = Vec::new();
        for u in &self.sip.users {
            match secret(&u.password, &u.password_env) {
                Ok(p) => ok.push((u.name.clone(), p)),
                Err(_) => skipped.push(u.name.clone()),
            }
        }
        (ok, skipped)
    }

    /// The address to advertise in Via and Contact.
    pub fn advertised(&self) -> SocketAddr {
        self.sip.advertise.unwrap_or(self.sip.listen)
    }

    /// Transaction timers.
    pub fn timers(&self) -> (Duration, Duration, Duration) {
        let s = &self.sip;
        (Duration::from_millis(s.t1_ms), Duration::from_millis(s.t2_ms), Duration::from_millis(s.t4_ms))
    }
}

/// Parses `"FIRST-LAST"`: FIRST even, at least one pair.
pub fn parse_port_range(s: &str) -> Result<std::ops::RangeInclusive<u16>, String> {
    let (a, b) = s.split_once('-').ok_or_else(|| format!("{s:?} is not FIRST-LAST"))?;
    let a: u16 = a.trim().parse().map_err(|_| format!("{a:?} is not a port"))?;
    let b: u16 = b.trim().parse().map_err(|_| format!("{b:?} is not a port"))?;
    if a < 1024 || !a.is_multiple_of(2) || b <= a {
        return Err(format!("{s:?}: FIRST must be an even port ≥ 1024 and LAST greater"));
    }
    Ok(a..=b)
}

impl Config {
    /// The database URL with a relative SQLite path resolved against the
    /// config file's directory.
    pub fn database_url(&self) -> String {
        let url = &self.database.url;
        match url.strip_prefix("sqlite://") {
            Some(path) if !path.starts_with('/') && !path.starts_with(':') => {
                format!("sqlite://{}", self.base_dir.join(path).display())
            }
            _ => url.clone(),
        }
    }
    /// The local archive directory, resolved against the config file's directory.
    pub fn archive_path(&self) -> PathBuf {
        self.base_dir.join(&self.archive.path)
    }
    /// The holiday file, resolved against the config file's directory
    /// (`None`: the built-in calendar).
    pub fn holidays_path(&self) -> Option<PathBuf> {
        self.calendar.holidays.as_ref().map(|h| self.base_dir.join(h))
    }

    /// Reads the trading calendar: `[calendar] holidays`, or the built-in
    /// one. A missing or bad file is a [`ConfigError`] naming the holiday
    /// file, the key and the reason.
    pub fn load_calendar(&self) -> Result<Calendar, ConfigError> {
        let (file, text) = match self.holidays_path() {
            None => ("(built in) cn-exchanges.toml".to_string(), BUILT_IN_HOLIDAYS.to_string()),
            Some(path) => {
                let file = path.display().to_string();
                let text = std::fs::read_to_string(&path).map_err(|e| ConfigError {
                    file: file.clone(),
                    key: "-".into(),
                    reason: format!("cannot read the holiday file ([calendar] holidays): {e}"),
                })?;
                (file, text)
            }
        };
        Calendar::from_toml(&text).map_err(|e| match e {
            crate::domain::calendar::CalendarError::Invalid { key, reason } => {
                ConfigError { file, key, reason }
            }
            other => ConfigError { file, key: "-".into(), reason: other.to_string() },
        })
    }

    /// The avoidance rules, resolved (checked at load time).
    pub fn avoidance(&self) -> Avoidance {
        self.avoidance.resolve().unwrap_or_default()
    }

    /// This instance's name: `dialer.instance_id`, or `HOSTNAME:SIPPORT`.
    pub fn instance_id(&self) -> String {
        if let Some(id) = &self.dialer.instance_id {
            return id.clone();
        }
        let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
            .ok()
            .map(|h| h.trim().to_string())
            .filter(|h| !h.is_empty() && h.bytes().all(|b| b.is_ascii_graphic()))
            .unwrap_or_else(|| "huifang".to_string());
        format!("{host}:{}", self.sip.listen.port())
    }

    /// The spool directory, resolved against the config file's directory.
    pub fn spool_path(&self) -> PathBuf {
        self.base_dir.join(&self.spool.path)
    }
}

/// Resolves `password` / `password_env` (exactly one must be given). An
/// unset variable is an error here; for registrar users the caller may
/// choose to skip the user instead.
fn secret(password: &Option<String>, env: &Option<String>) -> Result<String, String> {
    match (password, env) {
        (Some(_), Some(_)) => Err("give password or password_env, not both".into()),
        (None, None) => Err("missing: give password or password_env".into()),
        (Some(p), None) if p.is_empty() => Err("must not be empty".into()),
        (Some(p), None) => Ok(p.clone()),
        (None, Some(var)) => match std::env::var(var) {
            Ok(v) if !v.is_empty() => Ok(v),
            _ => Err(format!("environment variable {var} is not set")),
        },
    }
}

/// A toml error as "line N: message".
fn describe_toml(text: &str, e: &toml::de::Error) -> String {
    match e.span() {
        Some(span) => {
            let line = text[..span.start.min(text.len())].matches('\n').count() + 1;
            format!("line {line}: {}", e.message().trim())
        }
        None => e.message().trim().to_string(),
    }
}

/// The default configuration file, relative to the working directory.
pub fn default_path() -> PathBuf {
    PathBuf::from("config/huifang.toml")
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIN: &str = "[sip]\nlisten = \"127.0.0.1:5070\"\n";

    #[test]
    fn minimal() {
        let c = Config::parse(MIN, "t.toml").unwrap();
        assert!(c.sip.switch.is_none());
        assert_eq!(c.sip.t1_ms, 500);
    }

    #[test]
    fn shipped_default_parses() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("config/huifang.toml");
        let c = Config::load(&path).unwrap();
        assert!(c.sip.switch.is_none(), "the embedded default is built-in registrar mode");
        // the shipped file documents the defaults, and says them right
        assert_eq!(c.rules, RulesConfig::default());
        assert_eq!(c.avoidance, AvoidanceConfig::default());
        assert_eq!(c.records, RecordsConfig::default());
        assert_eq!(c.dialer, DialerConfig::default());
    }

    #[test]
    fn dialer_keys_are_checked() {
        let cases = [
            ("[dialer]\nmode = \"predictive\"\n", "dialer.mode"),
            ("[dialer]\nmax_concurrent_calls = 0\n", "dialer.max_concurrent_calls"),
            ("[dialer]\nlease_secs = 1\n", "dialer.lease_secs"),
            ("[dialer]\nclient_uri = \"sip:13800000000@gw\"\n", "dialer.client_uri"),
            ("[dialer]\nclient_uri = \"tel:{phone}\"\n", "dialer.client_uri"),
            ("[dialer]\nmax_attempts = 0\n", "dialer.max_attempts"),
            ("[dialer]\nretry_spacing_secs = []\n", "dialer.retry_spacing_secs"),
            ("[dialer]\nutc_offset_hours = 20\n", "dialer.utc_offset_hours"),
            ("[dialer]\ndrill = true\nclock_start = \"tomorrow\"\n", "dialer.clock_start"),
            ("[dialer]\nclock_start = \"2026-11-30T10:00:00+08:00\"\n", "dialer.clock_start"),
            ("[dialer]\ninstance_id = \"\"\n", "dialer.instance_id"),
            ("[dialer.windows]\nmon = [\"18:00-09:00\"]\n", "dialer.windows.mon[0]"),
            ("[dialer.windows]\nholiday = []\n", "dialer.windows"),
            ("[dialer]\nspeed = 2\n", "dialer"),
        ];
        for (text, key) in cases {
            let e = Config::parse(&format!("{MIN}{text}"), "t.toml").unwrap_err();
            assert!(e.key.starts_with(key), "{text}: {e}");
        }
        let c = Config::parse(
            &format!("{MIN}[dialer]\nclient_uri = \"sip:{{phone}}@10.0.0.1:5060\"\n"),
            "t.toml",
        )
        .unwrap();
        assert_eq!(
            c.dialer.client_uri_for("138 0000-0001").unwrap().to_string(),
            "sip:13800000001@10.0.0.1:5060"
        );
        assert!(c.dialer.client_uri_for("138;x").is_none());
    }

    #[test]
    fn unknown_key_names_key_and_line() {
        let e = Config::parse("[sip]\nlisten = \"127.0.0.1:5070\"\nlisen = 1\n", "t.toml").unwrap_err();
        assert_eq!(e.file, "t.toml");
        assert!(e.reason.contains("line 3"), "{e}");
        assert!(e.reason.contains("lisen"), "{e}");
    }

    #[test]
    fn bad_value_names_key() {
        let e = Config::parse("[sip]\nlisten = \"nowhere\"\n", "t.toml").unwrap_err();
        assert_eq!(e.key, "sip.listen");
        let e = Config::parse(
            &format!("{MIN}[sip.switch]\nregistrar = \"sip:127.0.0.1\"\nuser = \"u\"\npassword = \"p\"\ntransport = \"sctp\"\n"),
            "t.toml",
        )
        .unwrap_err();
        assert_eq!(e.key, "sip.switch.transport");
        let e = Config::parse(&format!("{MIN}t1_ms = 0\n"), "t.toml").unwrap_err();
        assert_eq!(e.key, "sip.t1_ms");
    }

    #[test]
    fn digest_algorithms_checked() {
        let e = Config::parse(&format!("{MIN}[sip.registrar]\ndigest_algorithms = [\"MD4\"]\n"), "t.toml")
            .unwrap_err();
        assert_eq!(e.key, "sip.registrar.digest_algorithms");
        let e =
            Config::parse(&format!("{MIN}[sip.registrar]\ndigest_algorithms = []\n"), "t.toml").unwrap_err();
        assert_eq!(e.key, "sip.registrar.digest_algorithms");
        let c = Config::parse(
            &format!("{MIN}[sip.registrar]\ndigest_algorithms = [\"sha-256\", \"MD5\"]\n"),
            "t.toml",
        )
        .unwrap();
        assert_eq!(c.sip.registrar.algorithms().unwrap().len(), 2);
        let e =
            Config::parse(&format!("{MIN}[sip.registrar]\nguess_max_failures = 0\n"), "t.toml").unwrap_err();
        assert_eq!(e.key, "sip.registrar.guess_max_failures");
        // the shipped file offers SHA-256 first, then MD5
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("config/huifang.toml");
        let shipped = Config::load(&path).unwrap();
        assert_eq!(shipped.sip.registrar.digest_algorithms, ["SHA-256", "MD5"]);
    }

    #[test]
    fn retention_floor_is_enforced() {
        let e = Config::parse(&format!("{MIN}[retention]\nminimum_years = 10\n"), "t.toml").unwrap_err();
        assert_eq!(e.key, "retention.minimum_years");
        let e = Config::parse(&format!("{MIN}[retention.years]\nnew_account = 5\n"), "t.toml").unwrap_err();
        assert_eq!(e.key, "retention.years.new_account");
        let c = Config::parse(&format!("{MIN}[retention.years]\nnew_account = 20\n"), "t.toml").unwrap();
        assert_eq!(c.retention.years_for(Some("new_account")), 20);
        assert_eq!(c.retention.years_for(Some("dormant")), 15);
        assert_eq!(c.retention.years_for(None), 15);
    }

    #[test]
    fn rules_avoidance_records_are_checked() {
        let cases = [
            ("[rules.new_account]\nsample_ratio = 1.5\n", "rules.new_account.sample_ratio"),
            ("[rules.new_account]\nsample_rate = 0.5\n", "rules.new_account"),
            ("[rules.important]\ncadence = \"daily\"\n", "rules.important.cadence"),
            ("[rules.complaint]\npriority = 0\n", "rules.complaint.priority"),
            ("[rules.bogus]\nenabled = true\n", "rules"),
            ("[avoidance]\nreporting_line = \"sideways\"\n", "avoidance.reporting_line"),
            ("[avoidance]\ncompliance_roles = [\"sales\"]\n", "avoidance.compliance_roles"),
            ("[records]\nanswer_business_days = 0\n", "records.answer_business_days"),
        ];
        for (text, key) in cases {
            let e = Config::parse(&format!("{MIN}{text}"), "t.toml").unwrap_err();
            assert!(e.key.starts_with(key), "{text}: {e}");
            assert_eq!(e.file, "t.toml");
        }
        let c = Config::parse(&format!("{MIN}[rules.complaint]\npriority = 3\n"), "t.toml").unwrap();
        assert_eq!(c.rules.complaint.priority, 3);
        assert_eq!(c.rules.complaint.due_business_days, 2, "other keys keep their defaults");
    }

    #[test]
    fn shipped_calendar_loads_and_bad_one_names_file_and_key() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("config/huifang.toml");
        let c = Config::load(&path).unwrap();
        assert!(c.load_calendar().unwrap().years().contains_key(&2026));
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("h.toml"),
            "[years.2026]\nstatus = \"official\"\nclosed = [\"2026-02-30\"]\n",
        )
        .unwrap();
        let conf = dir.path().join("c.toml");
        std::fs::write(&conf, format!("{MIN}[calendar]\nholidays = \"h.toml\"\n")).unwrap();
        let e = Config::load(&conf).unwrap().load_calendar().unwrap_err();
        assert!(e.file.ends_with("h.toml"), "{e}");
        assert_eq!(e.key, "years.2026.closed[0]");
    }

    #[test]
    fn s3_backend_needs_its_section() {
        let e = Config::parse(&format!("{MIN}[archive]\nbackend = \"s3\"\n"), "t.toml").unwrap_err();
        assert_eq!(e.key, "archive.s3");
    }

    #[test]
    fn password_env() {
        let text = format!(
            "{MIN}[sip.switch]\nregistrar = \"sip:127.0.0.1:5060\"\nuser = \"u\"\npassword_env = \"HUIFANG_TEST_UNSET_VAR\"\n"
        );
        let e = Config::parse(&text, "t.toml").unwrap_err();
        assert_eq!(e.key, "sip.switch.password");
        assert!(e.reason.contains("HUIFANG_TEST_UNSET_VAR"));
        assert!(!e.to_string().contains("secret"));
    }

    #[test]
    fn missing_file() {
        let e = Config::load(Path::new("/nonexistent/huifang.toml")).unwrap_err();
        assert!(e.to_string().contains("cannot read"), "{e}");
    }

    #[test]
    fn syntax_error_has_line() {
        let e = Config::parse("[sip\nlisten=1", "t.toml").unwrap_err();
        assert!(e.reason.contains("line 1"), "{e}");
    }
}
