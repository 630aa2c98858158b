//! A database with one client (C1, branch B1) of agent S1, one sealed
//! recording of a call of theirs in the spool, users of every role, and
//! the web door running on it.

use std::path::PathBuf;

use huifang::archive::Archive;
use huifang::config::Config;
use huifang::feed::Hub;
use huifang::ops::access::Role;
use huifang::ops::users::{self, AuthSettings, NewUser};
use huifang::web::{WebServer, WebState};
use uuid::Uuid;

use crate::common::db::{self, TestDb};
use crate::common::site::record_call_by;

const LOCAL_ARCHIVE: &str = "[archive]\nbackend = \"local\"\npath = \"archive\"\n";

/// A self-signed certificate for 127.0.0.1 in `dir` (`cert.pem`, `key.pem`).
fn make_certificate(dir: &std::path::Path) {
    std::fs::create_dir_all(dir).unwrap();
    let out = std::process::Command::new("openssl")
        .args(["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"])
        .args(["-days", "2", "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1"])
        .arg("-keyout")
        .arg(dir.join("key.pem"))
        .arg("-out")
        .arg(dir.join("cert.pem"))
        .output()
        .expect("openssl (Debian package openssl)");
    assert!(out.status.success(), "openssl: {}", String::from_utf8_lossy(&out.stderr));
}

/// A test password (fixtures only).
pub const PASSWORD: &str = "fixture-passphrase-42";

pub struct Site {
    pub db: TestDb,
    pub config_path: PathBuf,
    pub server: Option<WebServer>,
    pub base: String,
    pub recording: Uuid,
    pub wav: Vec<u8>,
    pub http: reqwest::Client,
    /// The event hub of the server (its worker runs until the site is dropped).
    pub hub: Hub,
    hub_stops: Vec<tokio::sync::watch::Sender<bool>>,
}

/// A hub on `store` writing as `instance`, with its worker running until
/// the returned sender is dropped.
pub fn running_hub(store: &huifang::store::Store, instance: &str) -> (Hub, tokio::sync::watch::Sender<bool>) {
    let hub = Hub::new(store.clone(), instance);
    let (tx, rx) = tokio::sync::watch::channel(false);
    tokio::spawn(hub.clone().run(rx));
    (hub, tx)
}

/// The roles the matrix walks, each a user of its own.
pub const ROLES: [Role; 5] = [Role::Agent, Role::Supervisor, Role::Compliance, Role::Admin, Role::Monitor];

pub fn login_of(r: Role) -> String {
    format!("{}1", r.as_str())
}

/// A WAV-like file of `n` bytes with a varying pattern (so a wrong offset
/// shows).
/// A stereo 16-bit 8 kHz WAV of `n` bytes (a 44-byte header, then
/// samples that are not silence), as the recorder writes them.
fn wav_bytes(n: usize) -> Vec<u8> {
    let data = (n - 44) as u32;
    let mut v = b"RIFF".to_vec();
    v.extend((36 + data).to_le_bytes());
    v.extend(b"WAVEfmt ");
    v.extend(16u32.to_le_bytes());
    v.extend(1u16.to_le_bytes()); // PCM
    v.extend(2u16.to_le_bytes()); // channels
    v.extend(8000u32.to_le_bytes());
    v.extend((8000u32 * 4).to_le_bytes());
    v.extend(4u16.to_le_bytes());
    v.extend(16u16.to_le_bytes());
    v.extend(b"data");
    v.extend(data.to_le_bytes());
    v.extend((0..n - 44).map(|i| (i * 7 + i / 251) as u8));
    v
}

impl Site {
    pub async fn new() -> Site {
        Site::with(false).await
    }

    pub async fn with(agents_may_play: bool) -> Site {
        Site::build(db::Kind::Sqlite, agents_may_play, LOCAL_ARCHIVE, "").await
    }

    /// A site on a fresh PostgreSQL database (what several instances share).
    pub async fn on_postgres() -> Site {
        Site::build(db::Kind::Postgres, false, LOCAL_ARCHIVE, "").await
    }

    /// A site behind a reverse proxy on 127.0.0.1 (`trusted_proxies`).
    pub async fn behind_proxy() -> Site {
        Site::build(db::Kind::Sqlite, false, LOCAL_ARCHIVE, "trusted_proxies = [\"127.0.0.1\"]\n").await
    }

    /// A site with more `[http]` keys (`ws_ping_secs = 1`, …).
    pub async fn with_http(keys: &str) -> Site {
        Site::build(db::Kind::Sqlite, false, LOCAL_ARCHIVE, keys).await
    }

    /// A site serving HTTPS itself (`[http.tls]`, a self-signed certificate
    /// made with `openssl`).
    pub async fn with_tls() -> Site {
        Site::build(
            db::Kind::Sqlite,
            false,
            LOCAL_ARCHIVE,
            "[http.tls]\ncert = \"tls/cert.pem\"\nkey = \"tls/key.pem\"\n",
        )
        .await
    }

    /// A site archiving to `bucket` on the test RGW (the secret key from
    /// `HUIFANG_S3_SECRET_KEY`, as `scripts/test.sh` exports it).
    pub async fn on_rgw(rgw: &crate::common::s3::Rgw, bucket: &str) -> Site {
        assert!(
            std::env::var("HUIFANG_S3_SECRET_KEY").is_ok_and(|v| v == rgw.secret_key),
            "HUIFANG_S3_SECRET_KEY must hold the test RGW's secret key: run through scripts/test.sh"
        );
        let archive = format!(
            "[archive]\nbackend = \"s3\"\n[archive.s3]\nendpoint = \"{}\"\nbucket = \"{bucket}\"\n\
             access_key_id = \"{}\"\nsecret_access_key_env = \"HUIFANG_S3_SECRET_KEY\"\n",
            rgw.endpoint, rgw.access_key
        );
        Site::build(db::Kind::Sqlite, false, &archive, "").await
    }

    async fn build(kind: db::Kind, agents_may_play: bool, archive: &str, http_extra: &str) -> Site {
        let db = db::fresh(kind).await;
        let dir = db.dir.path().to_path_buf();
        let tls = http_extra.contains("[http.tls]");
        if tls {
            make_certificate(&dir.join("tls"));
        }
        let holidays =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("config/holidays/cn-exchanges.toml");
        let text = format!(
            "[sip]\nlisten = \"127.0.0.1:5070\"\n[database]\nurl = \"{}\"\n[calendar]\nholidays = \"{}\"\n\
             [spool]\npath = \"spool\"\n{archive}\
             [http]\nlisten = \"127.0.0.1:0\"\nagents_may_play = {agents_may_play}\n{http_extra}",
            db.url,
            holidays.display()
        );
        let config_path = dir.join("web.toml");
        std::fs::write(&config_path, text).unwrap();
        let cfg = Config::load(&config_path).unwrap();
        let store = db.store.clone();
        for sql in [
            "INSERT INTO staff (staff_id, name, role, branch, sip_uri, active, imported_at, updated_at) VALUES \
             ('S1', 'Agent One', 'service', 'B1', 'sip:agent1@127.0.0.1', TRUE, '2026-12-01T00:00:00.000Z', \
             '2026-12-01T00:00:00.000Z')",
            "INSERT INTO staff (staff_id, name, role, branch, active, imported_at, updated_at) VALUES \
             ('S2', 'Agent Two', 'service', 'B2', TRUE, '2026-12-01T00:00:00.000Z', '2026-12-01T00:00:00.000Z')",
            "INSERT INTO staff (staff_id, name, role, branch, active, imported_at, updated_at) VALUES \
             ('M1', 'Supervisor One', 'supervisor', 'B1', TRUE, '2026-12-01T00:00:00.000Z', '2026-12-01T00:00:00.000Z')",
            "INSERT INTO staff (staff_id, name, role, branch, active, imported_at, updated_at) VALUES \
             ('K1', 'Compliance One', 'compliance', 'HQ', TRUE, '2026-12-01T00:00:00.000Z', '2026-12-01T00:00:00.000Z')",
            "INSERT INTO clients (client_id, name, phone, branch, opened_on, broker_introduced, imported_at, \
             updated_at) VALUES ('C1', 'Client One', '13800000001', 'B1', '2026-11-02', FALSE, \
             '2026-12-01T00:00:00.000Z', '2026-12-01T00:00:00.000Z')",
            "INSERT INTO clients (client_id, name, phone, branch, opened_on, broker_introduced, imported_at, \
             updated_at) VALUES ('C2', 'Client Two', '13800000002', 'B2', '2026-11-02', FALSE, \
             '2026-12-01T00:00:00.000Z', '2026-12-01T00:00:00.000Z')",
        ] {
            db.raw(sql).await.unwrap();
        }
        // one sealed recording of a call agent S1 made to C1
        let sealed_dir = dir.join("spool/sealed");
        std::fs::create_dir_all(&sealed_dir).unwrap();
        let path = sealed_dir.join("c1-call.wav");
        let wav = wav_bytes(100_000);
        std::fs::write(&path, &wav).unwrap();
        let id = record_call_by(&store, "C1", Some("S1"), Some(&path)).await;
        // one user per role
        let s = AuthSettings::from_config(&cfg.http);
        for r in ROLES {
            let u = NewUser {
                login: login_of(r),
                roles: vec![r],
                staff_id: match r {
                    Role::Agent => Some("S1".to_string()),
                    Role::Supervisor => Some("M1".to_string()),
                    Role::Compliance => Some("K1".to_string()),
                    _ => None,
                },
                branches: if r == Role::Supervisor { vec!["B1".into()] } else { vec![] },
            };
            users::add_user(&store, "test", u, PASSWORD.into(), &s).await.unwrap();
        }
        let archive = Archive::from_config(&cfg).unwrap();
        let (hub, hub_stop) = running_hub(&store, "site-a");
        let state = WebState::new(&cfg, store.clone(), archive, hub.clone()).unwrap();
        let server = WebServer::start(&cfg, state).await.unwrap();
        let scheme = if tls { "https" } else { "http" };
        let base = format!("{scheme}://{}", server.local);
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            // the test certificate is self-signed
            .tls_danger_accept_invalid_certs(true)
            .build()
            .unwrap();
        Site {
            db,
            config_path,
            server: Some(server),
            base,
            recording: id,
            wav,
            http,
            hub,
            hub_stops: vec![hub_stop],
        }
    }

    /// Runs the `huifang` binary on this site's config; its stdout.
    pub fn cli(&self, args: &[&str]) -> String {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_huifang"))
            .args(args)
            .arg("--config")
            .arg(&self.config_path)
            .env_remove("RUST_LOG")
            .output()
            .unwrap();
        assert!(out.status.success(), "huifang {args:?}: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8(out.stdout).unwrap()
    }

    /// The demo brokerage (`config/demo/`: staff, clients, events) imported
    /// and planned as of 2026-11-27, with users `a01` (agent A01), `a02`
    /// (agent A02, another branch) and `m01` (supervisor M01 of 上海陆家嘴营业部).
    pub async fn with_demo_data() -> Site {
        let site = Site::new().await;
        let demo = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("config/demo");
        for what in ["staff", "clients", "events"] {
            site.cli(&["import", what, demo.join(format!("{what}.csv")).to_str().unwrap()]);
        }
        site.cli(&["plan", "--as-of", "2026-11-27"]);
        let cfg = Config::load(&site.config_path).unwrap();
        let s = AuthSettings::from_config(&cfg.http);
        for (login, role, staff, branch) in [
            ("a01", Role::Agent, "A01", None),
            ("a02", Role::Agent, "A02", None),
            ("m01", Role::Supervisor, "M01", Some("上海陆家嘴营业部")),
        ] {
            let u = NewUser {
                login: login.into(),
                roles: vec![role],
                staff_id: Some(staff.into()),
                branches: branch.map(|b| vec![b.to_string()]).unwrap_or_default(),
            };
            users::add_user(&site.db.store, "test", u, PASSWORD.into(), &s).await.unwrap();
        }
        site
    }

    /// A token for any login, carrying its roles.
    pub async fn token_of(&self, login: &str, roles: Vec<Role>) -> String {
        users::create_token(&self.db.store, "test", login, roles, 1, None).await.unwrap().0
    }

    /// GET `path` with `token`: status and JSON body.
    pub async fn get_json(&self, path: &str, token: &str) -> (u16, serde_json::Value) {
        let r = self.http.get(self.url(path)).bearer_auth(token).send().await.unwrap();
        let status = r.status().as_u16();
        (status, r.json().await.unwrap_or(serde_json::Value::Null))
    }

    /// POST `body` to `path` with `token`: status and JSON body.
    pub async fn post_json(
        &self,
        path: &str,
        token: &str,
        body: serde_json::Value,
    ) -> (u16, serde_json::Value) {
        let r = self.http.post(self.url(path)).bearer_auth(token).json(&body).send().await.unwrap();
        let status = r.status().as_u16();
        (status, r.json().await.unwrap_or(serde_json::Value::Null))
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// An API token for the user of role `r` carrying that role.
    pub async fn token(&self, r: Role) -> String {
        let (secret, _) =
            users::create_token(&self.db.store, "test", &login_of(r), vec![r], 1, None).await.unwrap();
        secret
    }

    /// Logs in as `login`; the session cookie's value.
    pub async fn login(&self, login: &str, password: &str) -> reqwest::Response {
        self.http
            .post(self.url("/api/v1/session"))
            .json(&serde_json::json!({"login": login, "password": password}))
            .send()
            .await
            .unwrap()
    }

    /// The cookie a successful login set.
    pub fn cookie_of(r: &reqwest::Response) -> String {
        let v = r.headers().get("set-cookie").expect("a cookie").to_str().unwrap().to_string();
        v.split(';').next().unwrap().to_string()
    }

    /// Another web server on the same configuration and database (a second
    /// `serve` instance): its base URL and the server.
    pub async fn second_instance(&mut self) -> (String, WebServer) {
        let cfg = Config::load(&self.config_path).unwrap();
        let store = huifang::store::Store::open(&self.db.url).await.unwrap();
        let archive = Archive::from_config(&cfg).unwrap();
        let (hub, stop) = running_hub(&store, "site-b");
        self.hub_stops.push(stop);
        let server = WebServer::start(&cfg, WebState::new(&cfg, store, archive, hub).unwrap()).await.unwrap();
        (format!("http://{}", server.local), server)
    }

    /// Stops the server (requests finish, plays are audited).
    pub async fn stop(&mut self) {
        if let Some(s) = self.server.take() {
            s.shutdown(std::time::Duration::from_secs(2)).await;
        }
    }

    /// Audit events with `action` about `subject`.
    pub async fn audit(&self, action: &str) -> Vec<huifang::audit::AuditRow> {
        self.db.store.audit_rows(0).await.unwrap().into_iter().filter(|r| r.action == action).collect()
    }
}
