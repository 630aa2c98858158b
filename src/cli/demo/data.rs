//! The demo's files, embedded in the binary (so that `huifang demo` needs
//! nothing but itself), and the fresh directory they are written into.

use std::net::{TcpListener, UdpSocket};
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};

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
    /// Where the phones keep what they heard.
    pub phones: PathBuf,
}

/// A new directory under the system's temporary directory; it is kept
/// after the demo so that its recordings can be looked at.
pub fn temp_dir() -> PathBuf {
    std::env::temp_dir().join(format!("huifang-demo-{}", crate::sip::random_token(8)))
}

/// Writes the demo's files into `dir`, which must not exist or be empty.
pub fn write(dir: &Path) -> anyhow::Result<Layout> {
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
    let config = render(CONFIG, free_sip_port()?, &rtp_ports(), &agent_password);
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
    Ok(Layout { config: dir.join("huifang.toml"), dir, agent_password, phones })
}

/// The configuration with its placeholders filled in.
fn render(template: &str, sip_port: u16, rtp_ports: &str, password: &str) -> String {
    template
        .replace("@SIP_PORT@", &sip_port.to_string())
        .replace("@RTP_PORTS@", rtp_ports)
        .replace("@AGENT_PASSWORD@", password)
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
        let layout = write(&dir).unwrap();
        let cfg = Config::load(&layout.config).unwrap();
        assert_eq!(cfg.sip.listen.ip().to_string(), "127.0.0.1");
        assert_ne!(cfg.sip.listen.port(), 0);
        let (users, skipped) = cfg.users();
        assert_eq!(users, vec![("agent1".to_string(), layout.agent_password.clone())]);
        assert!(skipped.is_empty());
        assert_eq!(cfg.archive.backend, "local");
        assert!(cfg.database_url().starts_with(&format!("sqlite://{}", layout.dir.display())));
        cfg.load_calendar().unwrap();
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&layout.config).unwrap().permissions().mode();
        assert_eq!(mode & 0o077, 0, "the config holds a password: {mode:o}");
        // Not twice in the same directory.
        let err = write(&dir).err().unwrap().to_string();
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
