//! A call-center floor for the agent console's tests: `huifang serve`
//! (a child process: SIP with the built-in registrar, the dialer on the
//! test clock, the web door) on a fresh SQLite database with the given
//! staff, clients and tasks; an agent user `agent1` (staff A1); in-process
//! `huifang softphone`s registered to it; a WebSocket client for
//! `/ws/agent`.

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use huifang::domain::facts::{Client, Staff};
use huifang::ops::access::Role;
use huifang::ops::users::{self, AuthSettings, NewUser};
use huifang::sip::msg::Uri;
use huifang::softphone::{Options, Softphone};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

use crate::common::audio::{AGENT_WAV, CLIENT_WAV, fixture, read_wav};
use crate::common::db::{self, TestDb};
use crate::common::dialer::{QUIET_RULES, T, seed, serve_config};
use crate::common::huifang::Huifang;

/// Passwords of the floor (fixtures only).
pub const WEB_PASSWORD: &str = "floor-passphrase-77";
const PHONE_PASSWORD: &str = "floor-phone-secret";

pub type Ws = tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

pub struct Floor {
    pub db: TestDb,
    /// The configuration file of `serve` (for CLI commands on the same site).
    pub config: std::path::PathBuf,

    pub serve: Huifang,
    pub base: String,
    pub http: reqwest::Client,
    pub phones: Vec<Softphone>,
}

impl Floor {
    /// `serve` on `staff`, `clients` (each with a phone user of its number
    /// in the registrar) and `tasks`; `agent1` may log in to the web.
    pub async fn start(staff: &[Staff], clients: &[Client], tasks: &[T<'_>]) -> Floor {
        Floor::build(staff, clients, tasks, 30).await
    }

    /// [`start`](Self::start) with the agent held `wrap_up_secs` after a
    /// completed call. Users: `agent1` (staff A1), `super1` (supervisor of
    /// SH01, staff M1), `comp1` (compliance, staff K1).
    pub async fn build(staff: &[Staff], clients: &[Client], tasks: &[T<'_>], wrap_up_secs: u32) -> Floor {
        Floor::build_at(staff, clients, tasks, wrap_up_secs, "2026-11-30T10:00:00+08:00").await
    }

    /// [`build`](Self::build) with the dialer's drill clock starting at
    /// `clock` (RFC 3339): at night, the calling window is shut.
    pub async fn build_at(
        staff: &[Staff],
        clients: &[Client],
        tasks: &[T<'_>],
        wrap_up_secs: u32,
        clock: &str,
    ) -> Floor {
        Floor::build_lines(staff, clients, tasks, wrap_up_secs, clock, None).await
    }

    /// [`build_at`](Self::build_at) with the dialer's
    /// `max_concurrent_calls` (its default when `None`).
    pub async fn build_lines(
        staff: &[Staff],
        clients: &[Client],
        tasks: &[T<'_>],
        wrap_up_secs: u32,
        clock: &str,
        max_calls: Option<u32>,
    ) -> Floor {
        let db = db::fresh(db::Kind::Sqlite).await;
        let http_port = crate::common::free_port_tcp();
        let mut users = format!("[[sip.users]]\nname = \"agent1\"\npassword = \"{PHONE_PASSWORD}\"\n");
        for c in clients {
            users.push_str(&format!(
                "[[sip.users]]\nname = \"{}\"\npassword = \"{PHONE_PASSWORD}\"\n",
                c.phone
            ));
        }
        let lines = max_calls.map(|n| format!("max_concurrent_calls = {n}\n")).unwrap_or_default();
        let rest = format!(
            "{users}\n[call]\nagent_ring_secs = 10\nclient_ring_secs = 10\nmax_call_secs = 20\n\n\
             [dialer]\npoll_interval_ms = 200\nlease_secs = 10\nwrap_up_secs = {wrap_up_secs}\n{lines}\
             drill = true\nclock_start = \"{clock}\"\nclient_uri = \"sip:{{phone}}@127.0.0.1:@SIP_PORT@\"\n\n\
             [http]\nlisten = \"127.0.0.1:{http_port}\"\n\n{QUIET_RULES}"
        );
        let (config, _) = serve_config(db.dir.path(), &db.url, "", &rest);
        // serve_config picked its own SIP port: use it for the clients' URIs
        let text = std::fs::read_to_string(&config).unwrap();
        let listen = text.lines().find_map(|l| l.strip_prefix("listen = \"127.0.0.1:")).unwrap();
        let port: u16 = listen.trim_end_matches('"').parse().unwrap();
        std::fs::write(&config, text.replace("@SIP_PORT@", &port.to_string())).unwrap();
        let store = db.store.clone();
        seed(&store, staff, clients, tasks).await;
        let cfg = huifang::config::Config::load(&config).unwrap();
        let s = AuthSettings::from_config(&cfg.http);
        for (login, role, staff_id, branches) in [
            ("agent1", Role::Agent, "A1", vec![]),
            ("super1", Role::Supervisor, "M1", vec!["SH01".to_string()]),
            ("comp1", Role::Compliance, "K1", vec![]),
            // a supervisor who is also the agent A1: may not review A1's records
            ("lead1", Role::Supervisor, "A1", vec!["SH01".to_string()]),
        ] {
            let u =
                NewUser { login: login.into(), roles: vec![role], staff_id: Some(staff_id.into()), branches };
            users::add_user(&store, "test", u, WEB_PASSWORD.into(), &s).await.unwrap();
        }
        let serve = Huifang::start_with_config(&config);
        let base = format!("http://127.0.0.1:{http_port}");
        let http = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
        for _ in 0..100 {
            if http.get(format!("{base}/healthz")).send().await.is_ok() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        Floor { db, config, serve, base, http, phones: Vec::new() }
    }

    /// A softphone registered as `user`, answering after `answer` and
    /// hanging up `hangup` after its answer (`None`: never by itself).
    pub async fn phone(&mut self, user: &str, answer: Duration, hangup: Option<Duration>) -> usize {
        let mut o = Options::new(user, "127.0.0.1:0".parse().unwrap());
        o.registrar = Some(Uri::sip(None, "127.0.0.1", Some(self.serve.addr.port())));
        o.password = Some(PHONE_PASSWORD.into());
        o.answer_after = Some(answer);
        o.hangup_after = hangup;
        // agents say the agent's phrase, clients the client's, so that the
        // recordings (and their waveforms) are speech, not silence
        let phrase = if user.starts_with("agent") { AGENT_WAV } else { CLIENT_WAV };
        o.prompt = std::sync::Arc::from(read_wav(fixture(phrase)).2);
        o.after_prompt = huifang::softphone::media::AfterPrompt::Loop;
        let p = Softphone::start(o).await.unwrap();
        assert!(
            p.wait_registered(Duration::from_secs(10)).await,
            "{user} did not register:\n{}",
            self.serve.log()
        );
        self.phones.push(p);
        self.phones.len() - 1
    }

    /// A session cookie of `agent1`.
    pub async fn cookie(&self) -> String {
        self.cookie_of("agent1").await
    }

    /// A session cookie of `login`.
    pub async fn cookie_of(&self, login: &str) -> String {
        let r = self
            .http
            .post(format!("{}/api/v1/session", self.base))
            .json(&serde_json::json!({"login": login, "password": WEB_PASSWORD}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        let v = r.headers().get("set-cookie").unwrap().to_str().unwrap();
        v.split(';').next().unwrap().to_string()
    }

    /// A JSON POST with the cookie, from the site's own origin.
    pub async fn post(&self, cookie: &str, path: &str, body: serde_json::Value) -> (u16, serde_json::Value) {
        let r = self
            .http
            .post(format!("{}{path}", self.base))
            .header("cookie", cookie)
            .header("origin", &self.base)
            .json(&body)
            .send()
            .await
            .unwrap();
        let st = r.status().as_u16();
        (st, r.json().await.unwrap_or(serde_json::Value::Null))
    }

    /// Opens `/ws/agent` with the cookie (and `?since=`).
    pub async fn ws(&self, cookie: &str, since: Option<i64>) -> Ws {
        let q = since.map(|s| format!("?since={s}")).unwrap_or_default();
        let url = format!("{}/ws/agent{q}", self.base.replace("http://", "ws://"));
        let mut req = url.into_client_request().unwrap();
        req.headers_mut().insert("cookie", cookie.parse().unwrap());
        req.headers_mut().insert("origin", self.base.parse().unwrap());
        let (ws, _) = tokio_tungstenite::connect_async(req).await.unwrap();
        ws
    }
}

/// The next JSON message of `ws` within `timeout` (pings are answered by
/// the library; other frames skipped).
pub async fn next(ws: &mut Ws, timeout: Duration) -> Option<serde_json::Value> {
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        let m = tokio::time::timeout_at(deadline, ws.next()).await.ok()??.ok()?;
        if let Message::Text(t) = m {
            return Some(serde_json::from_str(t.as_str()).unwrap());
        }
    }
}

/// Reads messages until one of type `ty` (returned with those before it).
pub async fn until(ws: &mut Ws, ty: &str, timeout: Duration) -> (serde_json::Value, Vec<serde_json::Value>) {
    let mut seen = Vec::new();
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        let Some(m) = next(ws, left).await else {
            panic!("no {ty} within {timeout:?}; saw {seen:#?}");
        };
        if m["type"] == ty {
            return (m, seen);
        }
        seen.push(m);
    }
}

/// Closes a WebSocket politely.
pub async fn close(mut ws: Ws) {
    let _ = ws.send(Message::Close(None)).await;
}
