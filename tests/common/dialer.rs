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
    }
}

/// A task to plan: key, kind, client, due date.
pub struct T<'a> {
    pub key: &'a str,
    pub kind: TaskKind,
    pub client: &'a str,
    pub due: &'a str,
}

/// Stores staff, clients and one special-order batch holding `tasks`.
pub async fn seed(store: &Store, staff: &[Staff], clients: &[Client], tasks: &[T<'_>]) {
    let none = &mut |_| {};
    store.import_staff(staff, false, Utc::now(), none).await.unwrap();
    store.import_clients(clients, false, Utc::now(), none).await.unwrap();
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
            reason: serde_json::json!({"rule": "test"}),
            batch: key,
        });
    }
    store.save_plan(&Plan { batches, tasks: planned, warnings: vec![] }, Utc::now()).await.unwrap();
}
