//! `huifang demo --web`: after the demo's calls, huifang keeps running —
//! the web door on `--http`, the dialer, the agent's auto-answering
//! softphone and the clients' phones — with an agent, a supervisor and a
//! compliance account whose passwords (made up for this run) are printed,
//! so that a person can open `/agent` in a browser and take the next calls.
//! Ctrl-C or SIGTERM stops it.

use std::net::SocketAddr;

use anyhow::Context;
use serde::Serialize;

use crate::archive::Archive;
use crate::config::Config;
use crate::feed::Hub;
use crate::ops::access::Role;
use crate::ops::users::{AuthSettings, NewUser, add_user};
use crate::sip::endpoint::EndpointHandle;
use crate::store::Store;
use crate::web::{WebServer, WebState};

/// One account of the demo's web door.
#[derive(Debug, Serialize)]
pub struct Account {
    login: String,
    password: String,
    role: &'static str,
    staff_id: String,
}

/// The line printed once the pages are up.
#[derive(Debug, Serialize)]
pub struct WebLine {
    web: String,
    accounts: Vec<Account>,
}

/// The demo's people: the agent who worked the shift, the branch's head
/// as supervisor, the compliance officer (staff ids of `staff.csv`).
const PEOPLE: [(&str, &str, Role); 3] =
    [("a01", "A01", Role::Agent), ("m01", "M01", Role::Supervisor), ("c01", "C01", Role::Compliance)];

/// The running web door of the demo.
pub struct DemoWeb {
    server: WebServer,
    /// What to print.
    pub line: WebLine,
}

impl DemoWeb {
    /// Adds the accounts (fresh passwords) and starts the web door on
    /// `listen`.
    pub async fn start(
        cfg: &Config,
        store: &Store,
        archive: &Archive,
        hub: &Hub,
        endpoint: EndpointHandle,
        dialer: Option<crate::dialer::DialerHandle>,
        listen: SocketAddr,
    ) -> anyhow::Result<DemoWeb> {
        let mut cfg = cfg.clone();
        cfg.http.enabled = true;
        cfg.http.listen = listen;
        let auth = AuthSettings::from_config(&cfg.http);
        let staff = store.staff().await?;
        let mut accounts = Vec::new();
        for (login, staff_id, role) in PEOPLE {
            let s = staff
                .iter()
                .find(|s| s.staff_id == staff_id)
                .with_context(|| format!("the demo's staff.csv has no {staff_id}"))?;
            let password = crate::sip::random_token(16);
            let u = NewUser {
                login: login.into(),
                roles: vec![role],
                staff_id: Some(staff_id.into()),
                branches: if role == Role::Supervisor { vec![s.branch.clone()] } else { vec![] },
            };
            add_user(store, "demo", u, password.clone(), &auth)
                .await
                .with_context(|| format!("adding the demo's user {login}"))?;
            accounts.push(Account {
                login: login.into(),
                password,
                role: role.as_str(),
                staff_id: staff_id.into(),
            });
        }
        let state = WebState::new(&cfg, store.clone(), archive.clone(), hub.clone())?
            .with_endpoint(endpoint)
            .with_dialer(dialer);
        let server = WebServer::start(&cfg, state).await?;
        let line = WebLine { web: format!("http://{}", server.local), accounts };
        Ok(DemoWeb { server, line })
    }

    /// What a person reads on the terminal.
    pub fn explain(&self) -> String {
        let mut s = format!(
            "\nhuifang keeps running with its web pages: open {}/agent in a browser.\n\
             Log in as the agent, press 上线 (available): the dialer offers the next callback,\n\
             the agent's softphone answers by itself, the client's phone answers and speaks.\n\
             Accounts (passwords made up for this run):\n",
            self.line.web
        );
        for a in &self.line.accounts {
            s.push_str(&format!("  {:<12} {:<10} {}  (staff {})\n", a.role, a.login, a.password, a.staff_id));
        }
        s.push_str("Ctrl-C stops everything.\n");
        s
    }

    /// Stops the web door (open feeds are told 1001).
    pub async fn stop(self) {
        self.server.shutdown(std::time::Duration::from_secs(2)).await;
    }
}
