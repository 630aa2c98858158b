//! The demo's files, embedded in the binary (so that `huifang demo` needs
//! nothing but itself), and the fresh directory they are written into.

use std::net::{TcpListener, UdpSocket};
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use chrono::NaiveDate;

/// The demo configuration, with `@…@` placeholders.
const CONFIG: &str = include_str!("../../../config/demo/huifang.toml");
/// The trading calendar the configuration names.
const HOLIDAYS: &str = include_str!("../../../config/holidays/cn-exchanges.toml");
/// Staff, clients and events (UTF-8, Chinese headers).
pub const STAFF: &[u8] = include_bytes!("../../../config/demo/staff.csv");
/// See [`STAFF`].
pub const CLIENTS: &[u8] = include_bytes!("../../../config/demo/clients.csv");
/// See [`STAFF`].
pub const EVENTS: &[u8] = include_bytes!("../../../config/demo/events.csv");
/// What the agent says (8 kHz mono 16-bit).
pub const AGENT_WAV: &[u8] = include_bytes!("../../../config/demo/audio/agent.wav");
/// What the clients say.
pub const CLIENT_WAV: &[u8] = include_bytes!("../../../config/demo/audio/client.wav");

/// The demo's directory, written.
pub struct Layout {
    /// The directory.
    pub dir: PathBuf,
    /// Its configuration file.
    pub config: PathBuf,
    /// The agent's password for the built-in registrar.
    pub agent_password: String,
    /// The clients' phones' password (one for all of them).
    pub client_password: String,
    /// Where the phones keep what they heard.
    pub phones: PathBuf,
}

/// A new directory under the system's temporary directory; it is kept
/// after the demo so that its recordings can be looked at.
pub fn temp_dir() -> PathBuf {
    std::env::temp_dir().join(format!("huifang-demo-{}", crate::sip::random_token(8)))
}

/// Writes the demo's files into `dir`, which must not exist or be empty;
/// the dialer's drill clock starts at 10:00 Beijing time on `as_of`.
pub fn write(dir: &Path, as_of: NaiveDate) -> anyhow::Result<Layout> {
    if dir.exists() {
        let mut entries = std::fs::read_dir(dir).with_context(|| format!("reading {}", dir.display()))?;
        if entries.next().is_some() {
            bail!("{} is not empty: the demo starts from a fresh directory", dir.display());
        }
    }
    let dir = std::path::absolute(dir).unwrap_or_else(|_| dir.to_path_buf());
    let write = |rel: &str, bytes: &[u8]| -> anyhow::Result<()> {
        let path = dir.join(rel);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).with_context(|| format!("creating {}", parent.display()))?;
        }
        std::fs::write(&path, bytes).with_context(|| format!("writing {}", path.display()))
    };
    let agent_password = crate::sip::random_token(24);
    let client_password = crate::sip::random_token(24);
    let fill = Fill {
        sip_port: free_sip_port()?,
        rtp_ports: rtp_ports(),
        agent_password: agent_password.clone(),
        client_users: client_users(&client_password)?,
        clock_start: format!("{as_of}T10:00:00+08:00"),
    };
    let config = render(CONFIG, &fill);
    write("huifang.toml", config.as_bytes())?;
    restrict(&dir.join("huifang.toml"))?;
    write("holidays/cn-exchanges.toml", HOLIDAYS.as_bytes())?;
    write("data/staff.csv", STAFF)?;
    write("data/clients.csv", CLIENTS)?;
    write("data/events.csv", EVENTS)?;
    write("audio/agent.wav", AGENT_WAV)?;
    write("audio/client.wav", CLIENT_WAV)?;
    let phones = dir.join("phones");
    std::fs::create_dir_all(&phones).with_context(|| format!("creating {}", phones.display()))?;
    Ok(Layout { config: dir.join("huifang.toml"), dir, agent_password, client_password, phones })
}

/// What fills the configuration's `@…@` placeholders.
struct Fill {
    sip_port: u16,
    rtp_ports: String,
    agent_password: String,
    client_users: String,
    clock_start: String,
}

/// The configuration with its placeholders filled in.
fn render(template: &str, f: &Fill) -> String {
    template
        .replace("@SIP_PORT@", &f.sip_port.to_string())
        .replace("@RTP_PORTS@", &f.rtp_ports)
        .replace("@AGENT_PASSWORD@", &f.agent_password)
        .replace("@CLIENT_USERS@", &f.client_users)
        .replace("@CLOCK_START@", &f.clock_start)
}

/// One `[[sip.users]]` table per client phone of the sample data.
fn client_users(password: &str) -> anyhow::Result<String> {
    let mut out = String::new();
    for (_, phone) in client_phones()? {
        out.push_str(&format!("[[sip.users]]\nname = \"{phone}\"\npassword = \"{password}\"\n\n"));
    }
    Ok(out)
}

/// The sample clients' ids and phone numbers, as `clients.csv` gives them.
pub fn client_phones() -> anyhow::Result<Vec<(String, String)>> {
    let (text, enc) = crate::import::decode(CLIENTS.to_vec(), crate::import::Encoding::Auto)?;
    let parsed = crate::import::clients(&text, enc).context("the demo's clients.csv")?;
    Ok(parsed.rows.into_iter().map(|c| (c.client_id, c.phone)).collect())
}

/// The configuration holds a password: only its owner may read it.
fn restrict(path: &Path) -> anyhow::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
        .with_context(|| format!("restricting {}", path.display()))
}

/// A port on 127.0.0.1 free for both UDP and TCP right now (the SIP
/// endpoint binds both; the configuration wants a fixed port).
fn free_sip_port() -> anyhow::Result<u16> {
    for _ in 0..50 {
        let udp = UdpSocket::bind(("127.0.0.1", 0)).context("binding a UDP port on 127.0.0.1")?;
        let port = udp.local_addr()?.port();
        if TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return Ok(port);
        }
    }
    bail!("no port on 127.0.0.1 is free for both UDP and TCP")
}

/// 400 RTP ports at a random even start in 40000–59000 (ports in use are
/// skipped by the relay).
fn rtp_ports() -> String {
    let start = 40_000 + 2 * (rand::random::<u16>() % 9_500);
    format!("{start}-{}", start + 399)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;

    #[test]
    fn the_written_config_loads_and_keeps_its_secret() {
        let dir = std::env::temp_dir().join(format!("huifang-demo-test-{}", crate::sip::random_token(8)));
        let as_of = NaiveDate::from_ymd_opt(2026, 11, 27).unwrap();
        let layout = write(&dir, as_of).unwrap();
        let cfg = Config::load(&layout.config).unwrap();
        assert_eq!(cfg.sip.listen.ip().to_string(), "127.0.0.1");
        assert_ne!(cfg.sip.listen.port(), 0);
        let (users, skipped) = cfg.users();
        assert_eq!(users[0], ("agent1".to_string(), layout.agent_password.clone()));
        let phones = client_phones().unwrap();
        assert_eq!(phones.len(), 8);
        assert_eq!(users.len(), 1 + phones.len());
        for (user, (_, phone)) in users[1..].iter().zip(&phones) {
            assert_eq!(user, &(phone.clone(), layout.client_password.clone()));
        }
        assert!(skipped.is_empty());
        // The dialer's drill clock, and the clients reached through the registrar.
        let d = crate::dialer::DialerSettings::from_config(&cfg).unwrap();
        assert_eq!(d.clock_start.unwrap().to_rfc3339(), "2026-11-27T02:00:00+00:00");
        assert_eq!(
            d.raw.client_uri_for(&phones[0].1).unwrap().to_string(),
            format!("sip:{}@127.0.0.1:{}", phones[0].1, cfg.sip.listen.port())
        );
        assert_eq!(cfg.archive.backend, "local");
        assert!(cfg.database_url().starts_with(&format!("sqlite://{}", layout.dir.display())));
        cfg.load_calendar().unwrap();
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&layout.config).unwrap().permissions().mode();
        assert_eq!(mode & 0o077, 0, "the config holds a password: {mode:o}");
        // Not twice in the same directory.
        let err = write(&dir, as_of).err().unwrap().to_string();
        assert!(err.contains("not empty"), "{err}");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn rtp_ranges_are_even_and_in_bounds() {
        for _ in 0..100 {
            let r = crate::config::parse_port_range(&rtp_ports()).unwrap();
            assert!(*r.start() >= 40_000 && *r.end() <= 59_399 && r.start().is_multiple_of(2));
        }
    }
}
