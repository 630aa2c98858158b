//! Who may do what: roles, the person asking, and the scope of each role.
//!
//! | role | may |
//! | --- | --- |
//! | `agent` | their own calls, tasks, records and state (linked to a staff row); play their own calls' recordings only when `http.agents_may_play` |
//! | `supervisor` | the calls, recordings, records, reviews and live status of the branches they supervise |
//! | `compliance` | every client, the audit log, holds, exports, verify |
//! | `admin` | users and tokens |
//! | `monitor` | `/metrics` only |
//!
//! A person may hold several roles; what they may do is the union of what
//! each role allows **within that role's own scope**: an agent who also
//! supervises branch B sees B's calls as a supervisor and their own calls
//! elsewhere as an agent, never another agent's calls outside B. A token
//! carries at most its user's roles, and only those the user still holds
//! when it is used. There is no implicit role: a person with none may do
//! nothing.

use std::fmt;

use crate::ops::OpsError;

/// A role.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// A call-center agent.
    Agent,
    /// A supervisor of some branches.
    Supervisor,
    /// A compliance officer.
    Compliance,
    /// An administrator of users.
    Admin,
    /// A metrics scraper.
    Monitor,
}

impl Role {
    /// Every role.
    pub const ALL: [Role; 5] = [Role::Agent, Role::Supervisor, Role::Compliance, Role::Admin, Role::Monitor];

    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Agent => "agent",
            Role::Supervisor => "supervisor",
            Role::Compliance => "compliance",
            Role::Admin => "admin",
            Role::Monitor => "monitor",
        }
    }

    /// The role of a name.
    pub fn from_name(s: &str) -> Option<Role> {
        Role::ALL.into_iter().find(|r| r.as_str() == s)
    }

    /// Parses a list of names (unknown names are [`OpsError::Invalid`]),
    /// sorted and without repeats.
    pub fn parse_all(names: &[String], field: &'static str) -> Result<Vec<Role>, OpsError> {
        let mut roles = Vec::new();
        for n in names {
            let r = Role::from_name(n.trim()).ok_or_else(|| {
                OpsError::invalid(
                    field,
                    format!("{n:?} is not a role (agent, supervisor, compliance, admin, monitor)"),
                )
            })?;
            roles.push(r);
        }
        roles.sort();
        roles.dedup();
        Ok(roles)
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How the person came in.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Via {
    /// A browser session (the first 12 hex digits of its hash, for logs).
    Session(String),
    /// An API token (its id).
    Token(uuid::Uuid),
    /// The command line on the machine itself.
    Cli,
}

/// The person asking, with what they may do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Person {
    /// The login (the actor of audit events).
    pub login: String,
    /// Roles in force for this request, sorted.
    pub roles: Vec<Role>,
    /// The staff row of an agent.
    pub staff_id: Option<String>,
    /// The branches a supervisor supervises.
    pub branches: Vec<String>,
    /// How they came in.
    pub via: Via,
    /// Where from (the client address), for the audit log.
    pub address: Option<String>,
}

impl Person {
    /// The operator at the command line: every role, every branch (the
    /// CLI runs with the database's own credentials; it names the actor
    /// with `--user`).
    pub fn operator(login: &str) -> Person {
        Person {
            login: login.to_string(),
            roles: vec![Role::Supervisor, Role::Compliance, Role::Admin],
            staff_id: None,
            branches: Vec::new(),
            via: Via::Cli,
            address: None,
        }
    }

    /// Whether the person holds `role`.
    pub fn has(&self, role: Role) -> bool {
        self.roles.contains(&role)
    }

    /// What a list (tasks, records) shows this person: `(branches, agent)`
    /// — compliance everything `(None, None)`, a supervisor their branches,
    /// an agent their own; anyone else is refused.
    pub fn list_scope(&self) -> Result<(Option<Vec<String>>, Option<String>), OpsError> {
        if self.sees_every_client() {
            Ok((None, None))
        } else if self.has(Role::Supervisor) {
            // a supervisor who is also an agent: their branches' rows (their
            // own elsewhere are in the agent's view)
            Ok((Some(self.branches.clone()), None))
        } else if let Some(staff) = self.own_staff() {
            Ok((None, Some(staff.to_string())))
        } else {
            Err(OpsError::Forbidden("needs the role compliance, supervisor or agent".into()))
        }
    }

    /// [`OpsError::Forbidden`] unless the person holds one of `roles`.
    pub fn require_any(&self, roles: &[Role]) -> Result<(), OpsError> {
        if roles.iter().any(|r| self.has(*r)) {
            Ok(())
        } else {
            let names: Vec<&str> = roles.iter().map(|r| r.as_str()).collect();
            Err(OpsError::Forbidden(format!("needs the role {}", names.join(" or "))))
        }
    }

    /// The roles as words, e.g. `"agent supervisor"` (for audit details).
    pub fn role_text(&self) -> String {
        self.roles.iter().map(|r| r.as_str()).collect::<Vec<_>>().join(" ")
    }

    /// Whether the person sees everything a client has (compliance, or a
    /// CLI operator).
    pub fn sees_every_client(&self) -> bool {
        self.has(Role::Compliance) || self.via == Via::Cli
    }

    /// Whether the person supervises `branch`.
    pub fn supervises(&self, branch: &str) -> bool {
        self.has(Role::Supervisor) && (self.via == Via::Cli || self.branches.iter().any(|b| b == branch))
    }

    /// The staff id under which the person sees their own calls (agents).
    pub fn own_staff(&self) -> Option<&str> {
        if self.has(Role::Agent) { self.staff_id.as_deref() } else { None }
    }
}

/// What a person may see of one client's calls.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClientScope {
    /// Every call of the client (compliance, or a supervisor of the
    /// client's branch).
    All,
    /// Only the calls this agent took.
    OwnCalls(String),
}

impl ClientScope {
    /// The scope of `p` over a client of `branch`; [`OpsError::Forbidden`]
    /// when the person may see none of its calls.
    pub fn of(p: &Person, branch: Option<&str>) -> Result<ClientScope, OpsError> {
        if p.sees_every_client() || branch.is_some_and(|b| p.supervises(b)) {
            return Ok(ClientScope::All);
        }
        if let Some(staff) = p.own_staff() {
            return Ok(ClientScope::OwnCalls(staff.to_string()));
        }
        Err(OpsError::Forbidden("not a compliance officer, nor the supervisor of the client's branch".into()))
    }

    /// The agent the scope limits calls to, if any.
    pub fn agent(&self) -> Option<&str> {
        match self {
            ClientScope::All => None,
            ClientScope::OwnCalls(a) => Some(a),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn person(roles: &[Role], branches: &[&str], staff: Option<&str>) -> Person {
        Person {
            login: "p".into(),
            roles: roles.to_vec(),
            staff_id: staff.map(str::to_string),
            branches: branches.iter().map(|b| b.to_string()).collect(),
            via: Via::Session("x".into()),
            address: None,
        }
    }

    /// roles, branches, staff id, the client's branch, the scope expected
    type Case<'a> = (&'a [Role], &'a [&'a str], Option<&'a str>, Option<&'a str>, Option<ClientScope>);

    #[test]
    fn each_role_sees_its_own_scope_and_no_more() {
        let cases: &[Case] = &[
            (&[Role::Compliance], &[], None, Some("B1"), Some(ClientScope::All)),
            (&[Role::Supervisor], &["B1"], None, Some("B1"), Some(ClientScope::All)),
            (&[Role::Supervisor], &["B1"], None, Some("B2"), None),
            (&[Role::Supervisor], &["B1"], None, None, None),
            (&[Role::Agent], &[], Some("S1"), Some("B1"), Some(ClientScope::OwnCalls("S1".into()))),
            // an agent without a staff row sees nothing
            (&[Role::Agent], &[], None, Some("B1"), None),
            // agent + supervisor of B1: B2's clients only as the agent
            (
                &[Role::Agent, Role::Supervisor],
                &["B1"],
                Some("S1"),
                Some("B2"),
                Some(ClientScope::OwnCalls("S1".into())),
            ),
            (&[Role::Agent, Role::Supervisor], &["B1"], Some("S1"), Some("B1"), Some(ClientScope::All)),
            (&[Role::Admin], &[], None, Some("B1"), None),
            (&[Role::Monitor], &[], None, Some("B1"), None),
            (&[], &[], None, Some("B1"), None),
        ];
        for (roles, branches, staff, branch, want) in cases {
            let p = person(roles, branches, *staff);
            let got = ClientScope::of(&p, *branch).ok();
            assert_eq!(&got, want, "{roles:?} {branches:?} {staff:?} over {branch:?}");
        }
    }

    #[test]
    fn roles_parse_sorted_and_refuse_unknown_names() {
        let r = Role::parse_all(&["supervisor".into(), "agent".into(), "agent".into()], "role").unwrap();
        assert_eq!(r, vec![Role::Agent, Role::Supervisor]);
        let e = Role::parse_all(&["root".into()], "role").unwrap_err();
        assert!(e.to_string().contains("\"root\" is not a role"), "{e}");
    }
}
