//! Helpers for the dialer's tests: staff, clients and tasks written
//! straight through the store (the CLI import and plan are tested
//! elsewhere), and the configuration of a `serve` that dials.

use chrono::{NaiveDate, Utc};
use huifang::domain::facts::{Client, Role, Staff};
use huifang::domain::kinds::TaskKind;
use huifang::domain::planner::{Batch, BatchKey, Plan, PlannedTask};
use huifang::store::Store;

/// A staff member (active, branch SH01).
pub fn staff(id: &str, role: Role, manager: Option<&str>, sip_uri: Option<&str>) -> Staff {
    Staff {
        staff_id: id.into(),
        name: format!("name {id}"),
        role,
        branch: "SH01".into(),
        manager_id: manager.map(String::from),
        sip_uri: sip_uri.map(String::from),
        active: true,
        left_on: None,
    }
}

/// A client with a phone number and an introducer.
pub fn client(id: &str, phone: &str, introducer: Option<&str>) -> Client {
    Client {
        client_id: id.into(),
        name: "测试".into(),
        phone: phone.into(),
        branch: "SH01".into(),
        opened_on: NaiveDate::from_ymd_opt(2026, 11, 2).unwrap(),
        introducer_id: introducer.map(String::from),
        broker_introduced: false,
        assets: None,
        yearly_commission: None,
        monthly_turnover: None,
        last_trade_on: None,
        id_number: None,
        risk_level: None,
    }
}

/// A task to plan: key, kind, client, due date.
pub struct T<'a> {
    pub key: &'a str,
    pub kind: TaskKind,
    pub client: &'a str,
    pub due: &'a str,
}

/// [`seed`] of the smallest floor: agent A1 (softphone `agent1`), client
/// C1 (13900000001) and its complaint callback `complaint:E1`, due
/// 1 December 2026.
pub async fn seed_one(store: &Store) {
    seed(
        store,
        &[staff("A1", Role::Service, None, Some("sip:agent1@127.0.0.1"))],
        &[client("C1", "13900000001", None)],
        &[T { key: "complaint:E1", kind: TaskKind::Complaint, client: "C1", due: "2026-12-01" }],
    )
    .await;
}

/// Stores staff, clients and one special-order batch holding `tasks`.
pub async fn seed(store: &Store, staff: &[Staff], clients: &[Client], tasks: &[T<'_>]) {
    let none = &mut |_| {};
    store.import(staff, false, Utc::now(), none).await.unwrap();
    store.import(clients, false, Utc::now(), none).await.unwrap();
    let rules = huifang::domain::kinds::RulesConfig::default();
    let mut batches: Vec<Batch> = Vec::new();
    let mut planned = Vec::new();
    for t in tasks {
        let key = BatchKey { kind: t.kind, period: "test".into() };
        if !batches.iter().any(|b| b.key == key) {
            batches.push(Batch {
                key: key.clone(),
                seed: None,
                new_seed: false,
                ratio: None,
                population: 0,
                selected: 0,
            });
        }
        let policy = rules.policy(t.kind);
        planned.push(PlannedTask {
            key: t.key.into(),
            kind: t.kind,
            client_id: t.client.into(),
            branch: "SH01".into(),
            due_on: NaiveDate::parse_from_str(t.due, "%Y-%m-%d").unwrap(),
            priority: policy.priority,
            retention_kind: policy.retention_kind,
            compliance: policy.compliance,
            reason: huifang::domain::planner::Reason::new(&serde_json::json!({"rule": "test"})),
            batch: key,
        });
    }
    store.save_plan(&Plan { batches, tasks: planned, warnings: vec![] }, Utc::now()).await.unwrap();
}

/// An even port starting a run of `2 * pairs` ports that were free just
/// now, as `[media] rtp_ports` (the pool skips ports taken meanwhile).
pub fn rtp_ports(pairs: u16) -> String {
    for _ in 0..100 {
        let probe = std::net::UdpSocket::bind(("127.0.0.1", 0)).unwrap();
        let base = probe.local_addr().unwrap().port() & !1;
        drop(probe);
        if base < 1024 || base as u32 + 2 * pairs as u32 > 65_000 {
            continue;
        }
        let free = (base..base + 2 * pairs).all(|p| std::net::UdpSocket::bind(("127.0.0.1", p)).is_ok());
        if free {
            return format!("{}-{}", base, base + 2 * pairs - 1);
        }
    }
    panic!("no free run of RTP ports");
}

/// Writes `dir/huifang.toml` for a `serve` that dials: `[sip] listen` on a
/// free port plus `sip_keys`, the database `db_url`, free RTP ports, the
/// shipped calendar, then `rest` (`[dialer]` and others). Returns the path
/// and the SIP port.
pub fn serve_config(
    dir: &std::path::Path,
    db_url: &str,
    sip_keys: &str,
    rest: &str,
) -> (std::path::PathBuf, u16) {
    let port = super::free_port_udp_tcp();
    let holidays = super::repo_root().join("config/holidays/cn-exchanges.toml");
    let text = format!(
        "[log]\nlevel = \"debug\"\n\n[sip]\nlisten = \"127.0.0.1:{port}\"\n{sip_keys}\n\n[database]\nurl = \"{db_url}\"\n\n\
         [media]\nrtp_ports = \"{}\"\n\n[calendar]\nholidays = \"{}\"\n\n{rest}\n",
        rtp_ports(40),
        holidays.display()
    );
    let path = dir.join("huifang.toml");
    std::fs::write(&path, text).unwrap();
    (path, port)
}

/// Two `serve` instances, `inst-a` and `inst-b`, on one database (the
/// multi-instance tests): their configuration files in temporary
/// directories (kept alive by the returned guards), each dialing clients
/// at `sip:{phone}@127.0.0.1:CLIENT_PORT` on the test clock with a
/// `lease_secs` lease and calls of at most `max_call_secs`.
#[allow(dead_code)]
pub fn two_instances(
    db_url: &str,
    client_port: u16,
    lease_secs: u32,
    max_call_secs: u32,
) -> ([tempfile::TempDir; 2], std::path::PathBuf, std::path::PathBuf) {
    let rest = |me: &str| {
        format!(
            "[call]\nagent_ring_secs = 5\nclient_ring_secs = 5\nmax_call_secs = {max_call_secs}\n\n\
             [dialer]\ninstance_id = \"{me}\"\npoll_interval_ms = 200\nlease_secs = {lease_secs}\nwrap_up_secs = 0\n\
             drill = true\nclock_start = \"2026-11-30T10:00:00+08:00\"\nclient_uri = \"sip:{{phone}}@127.0.0.1:{client_port}\"\n\n{QUIET_RULES}"
        )
    };
    let dirs = [tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap()];
    let (a, _) = serve_config(dirs[0].path(), db_url, "", &rest("inst-a"));
    let (b, _) = serve_config(dirs[1].path(), db_url, "", &rest("inst-b"));
    (dirs, a, b)
}

/// Logs each agent in (by themselves, now).
#[allow(dead_code)]
pub async fn log_in(store: &Store, agents: &[&str]) {
    for a in agents {
        store
            .change_agent(a, huifang::domain::agents::AgentCommand::Login, a, None, chrono::Utc::now())
            .await
            .unwrap();
    }
}

/// The rules that would add tasks of their own to a small test book.
pub const QUIET_RULES: &str = "[rules.new_account]\nenabled = false\n[rules.important]\nenabled = false\n\
     [rules.dormant]\nenabled = false\n[rules.existing]\nenabled = false\n";

/// Runs `huifang ARGS --config CONFIG`.
pub fn cli(config: &std::path::Path, args: &[&str]) -> std::process::Output {
    std::process::Command::new(super::huifang::binary())
        .args(args)
        .arg("--config")
        .arg(config)
        .env_remove("RUST_LOG")
        .env("NO_COLOR", "1")
        .output()
        .expect("running huifang")
}

/// [`cli`], asserting success; returns stdout.
pub fn cli_ok(config: &std::path::Path, args: &[&str]) -> String {
    let out = cli(config, args);
    assert!(
        out.status.success(),
        "huifang {args:?} failed: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// Polls `f` every 200 ms until it returns `Some`, or panics with `what`
/// after `timeout`.
pub async fn wait_for<T, F, Fut>(timeout: std::time::Duration, what: &str, mut f: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = std::time::Instant::now() + timeout;
    loop {
        if let Some(v) = f().await {
            return v;
        }
        assert!(std::time::Instant::now() < deadline, "timed out after {timeout:?} waiting for {what}");
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
}
