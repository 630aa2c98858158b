//! The dialer end to end on SQLite, through a real switch: staff, clients
//! and complaint events are imported from CSV, `plan` makes three callback
//! tasks, two agents log in, and `serve` dials the tasks through Kamailio —
//! each agent's baresip first, then the client's baresip (registered under
//! the client's phone number). Every call is recorded and linked to its
//! task; no agent has two calls at once. Completed calls without a record
//! show in the overdue report; the agents submit their records; the
//! coverage report shows every task done; `huifang status` tells it all
//! from the database.

use crate::common;

use std::path::Path;
use std::time::Duration;

use common::db::{Kind, fresh};
use common::dialer::{QUIET_RULES, cli_ok, serve_config, wait_for};
use common::huifang::Huifang;
use common::{Baresip, BaresipOpts, kamailio};
use huifang::store::TaskFilter;

const PHONES: [&str; 3] = ["13900000001", "13900000002", "13900000003"];

fn phone(user: &str, k: &common::Kamailio) -> Baresip {
    let mut p = Baresip::spawn(BaresipOpts::new(user, &format!("{user}-test-secret"), &k.hostport()));
    assert!(p.wait_registered(Duration::from_secs(10)), "{user} did not register:\n{}", p.log());
    p
}

fn write_csvs(dir: &Path, k: &common::Kamailio) {
    let hp = k.hostport();
    std::fs::write(
        dir.join("staff.csv"),
        format!(
            "staff_id,name,role,branch,manager_id,sip_uri,active,left_on\n\
             M1,Manager,supervisor,SH01,,,true,\n\
             S1,Sales,sales,SH01,M1,,true,\n\
             A1,Agent One,service,SH01,,sip:agent1@{hp},true,\n\
             A2,Agent Two,service,SH01,,sip:agent2@{hp},true,\n"
        ),
    )
    .unwrap();
    let mut clients = String::from(
        "client_id,name,phone,branch,opened_on,introducer_id,broker_introduced,assets_cny,yearly_commission_cny,\
         monthly_turnover_cny,last_trade_on\n",
    );
    let mut events = String::from("event_id,client_id,kind,occurred_on,amount_cny,staff_id,note\n");
    for (i, p) in PHONES.iter().enumerate() {
        clients.push_str(&format!("C{i},客户{i},{p},SH01,2025-03-01,S1,0,,,,2026-11-20\n"));
        events.push_str(&format!("E{i},C{i},complaint,2026-11-27,,,\n"));
    }
    std::fs::write(dir.join("clients.csv"), clients).unwrap();
    std::fs::write(dir.join("events.csv"), events).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_dials_the_planned_tasks_through_the_switch_and_records_close_them() {
    let k = kamailio();
    let db = fresh(Kind::Sqlite).await;
    let switch = format!(
        "[sip.switch]\nregistrar = \"sip:{}\"\nuser = \"huifang\"\npassword = \"huifang-test-secret\"\n",
        k.hostport()
    );
    let rest = format!(
        "[call]\nagent_ring_secs = 8\nclient_ring_secs = 8\nmax_call_secs = 3\n\n\
         [dialer]\npoll_interval_ms = 200\nlease_secs = 10\nwrap_up_secs = 0\nrecord_due_secs = 2\n\
         drill = true\nclock_start = \"2026-11-30T10:00:00+08:00\"\nclient_uri = \"sip:{{phone}}@{}\"\n\n{QUIET_RULES}",
        k.hostport()
    );
    let (config, _) = serve_config(db.dir.path(), &db.url, &switch, &rest);
    write_csvs(db.dir.path(), &k);
    for what in ["staff", "clients", "events"] {
        cli_ok(&config, &["import", what, db.dir.path().join(format!("{what}.csv")).to_str().unwrap()]);
    }
    cli_ok(&config, &["plan", "--as-of", "2026-11-30"]);
    let store = db.open_store().await;
    let tasks = store.tasks(&TaskFilter::default()).await.unwrap();
    assert_eq!(tasks.len(), 3, "one complaint task per client: {tasks:?}");
    assert!(tasks.iter().all(|t| t.kind == "complaint"));

    let agents = [phone("agent1", &k), phone("agent2", &k)];
    let clients: Vec<Baresip> = PHONES.iter().map(|p| phone(p, &k)).collect();
    cli_ok(&config, &["agent", "login", "A1"]);
    cli_ok(&config, &["agent", "login", "A2"]);

    let mut h = Huifang::start_with_config(&config);
    let tasks = wait_for(Duration::from_secs(90), "three completed calls", || async {
        let tasks = store.tasks(&TaskFilter::default()).await.unwrap();
        tasks.iter().all(|t| t.awaiting_record_since.is_some()).then_some(tasks)
    })
    .await;

    // every call: completed, linked to its task, recorded and sealed; one call per task
    let mut calls = Vec::new();
    for t in &tasks {
        assert_eq!((t.attempts, t.last_outcome.as_deref()), (1, Some("completed")), "{}", h.log());
        let call = store.get_call(t.last_call_id.unwrap()).await.unwrap();
        assert_eq!(call.task_id.as_deref(), Some(t.id.to_string().as_str()));
        assert_eq!(call.outcome.as_deref(), Some("completed"));
        // the trace keeps when the dialer claimed the task, before the INVITE
        let claimed = call.claimed_at.expect("the claim's time");
        assert!(
            claimed <= call.started_at && call.started_at - claimed < chrono::Duration::seconds(5),
            "{call:?}"
        );
        let rec = store.recording_for_call(call.id).await.unwrap().expect("a recording");
        assert_eq!(rec.state.as_str(), "sealed");
        assert!(Path::new(&rec.path).exists(), "{}", rec.path);
        calls.push(call);
    }
    assert_eq!(db.count("SELECT count(*) FROM calls").await, 3, "each task dialed once");
    // no agent had two calls at once
    for a in ["agent1", "agent2"] {
        let mut mine: Vec<_> = calls.iter().filter(|c| c.agent_uri.contains(a)).collect();
        mine.sort_by_key(|c| c.started_at);
        assert!(
            mine.windows(2).all(|w| w[0].ended_at.unwrap() <= w[1].started_at),
            "{a} had two calls at once"
        );
    }

    // no record yet, record_due_secs later: overdue
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let overdue: serde_json::Value = serde_json::from_str(&cli_ok(
        &config,
        &["report", "overdue", "--as-of", "2026-11-30", "--format", "json"],
    ))
    .unwrap();
    let rows = overdue["rows"].as_array().unwrap();
    assert_eq!(rows.len(), 3, "{overdue:#}");
    assert!(rows.iter().all(|r| r["why"].as_str().unwrap().contains("no callback record")), "{overdue:#}");
    let status: serde_json::Value =
        serde_json::from_str(&cli_ok(&config, &["status", "--format", "json"])).unwrap();
    assert_eq!(status["queue"]["awaiting_record"], 3, "{status:#}");
    assert_eq!(status["queue"]["record_overdue"], 3, "{status:#}");
    assert_eq!(status["calls"].as_array().unwrap().len(), 0, "{status:#}");
    assert!(status["agents"].as_array().unwrap().iter().all(|a| a["presence"] == "available"), "{status:#}");
    let table = cli_ok(&config, &["status"]);
    assert!(table.contains("dialer") && table.contains("AWAITING_RECORD"), "{table}");

    // the agents submit their records: the tasks are done
    for t in &tasks {
        let call = t.last_call_id.unwrap().to_string();
        let agent = t.assigned_agent.as_deref().unwrap();
        cli_ok(
            &config,
            &[
                "record",
                "submit",
                "--task",
                &t.key,
                "--agent",
                agent,
                "--call",
                &call,
                "--on",
                "2026-11-30",
                "--answer",
                "event_confirmed=yes",
                "--answer",
                "no_discretionary_trading=yes",
                "--answer",
                "satisfied=yes",
            ],
        );
    }
    let csv = cli_ok(
        &config,
        &["report", "coverage", "--month", "2026-12", "--as-of", "2026-12-01", "--format", "csv"],
    );
    assert!(csv.lines().any(|l| l == "complaint,SH01,3,3,0,0,0,100.0%,100%"), "{csv}");
    let overdue = cli_ok(&config, &["report", "overdue", "--as-of", "2026-11-30", "--format", "csv"]);
    assert_eq!(overdue.lines().count(), 1, "nothing overdue any more: {overdue}");

    let (st, _) = h.terminate(Duration::from_secs(20));
    assert!(st.success(), "{}", h.log());
    store.close().await;
    drop((agents, clients));
}
