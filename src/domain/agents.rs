//! Agent sessions: when an agent may be offered a call.
//!
//! An agent logs in (available), may pause and resume, and logs out:
//!
//! ```text
//!   logged_out ──login──► available ──pause──► paused
//!        ▲                 │  ▲                  │
//!        └─────logout──────┘  └─────resume───────┘ (logout from paused too)
//! ```
//!
//! The dialer pauses an agent by itself when the agent's phone does not
//! answer (the call ends `agent-unavailable`), with the reason traced.
//! While a call runs (and during the wrap-up after it) the agent is
//! **on call**: that is not a stored state but a lease on the agent's row
//! held by the instance that placed the call (see `store::dialer`), so an
//! instance that dies frees its agents when the lease expires.
//!
//! [`transition`] is the whole state machine; the store applies it in a
//! transaction and writes every change, with who, when and why, to the
//! append-only `agent_events`.

use std::fmt;

/// The stored state of an agent's session.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AgentState {
    /// Not working: never offered a call.
    LoggedOut,
    /// Logged in and ready: offered calls (when not on a call already).
    Available,
    /// Logged in, not taking calls (a break; or, set by the dialer, the
    /// phone did not answer).
    Paused,
}

impl AgentState {
    /// Every state.
    pub const ALL: [AgentState; 3] = [AgentState::LoggedOut, AgentState::Available, AgentState::Paused];

    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            AgentState::LoggedOut => "logged_out",
            AgentState::Available => "available",
            AgentState::Paused => "paused",
        }
    }

    /// From the stored name.
    pub fn from_name(s: &str) -> Option<AgentState> {
        AgentState::ALL.into_iter().find(|a| a.as_str() == s)
    }
}

impl fmt::Display for AgentState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What someone asks of an agent's session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AgentCommand {
    /// Start working.
    Login,
    /// Stop working.
    Logout,
    /// Stop taking calls for a while.
    Pause,
    /// Take calls again.
    Resume,
}

impl AgentCommand {
    /// The command's name (`login`, …).
    pub fn as_str(self) -> &'static str {
        match self {
            AgentCommand::Login => "login",
            AgentCommand::Logout => "logout",
            AgentCommand::Pause => "pause",
            AgentCommand::Resume => "resume",
        }
    }
}

/// Why a command does not apply to the session as it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TransitionError {
    /// Login while logged in.
    #[error("already logged in ({0})")]
    AlreadyLoggedIn(AgentState),
    /// Logout, pause or resume while logged out.
    #[error("not logged in")]
    NotLoggedIn,
    /// Pause while paused.
    #[error("already paused")]
    AlreadyPaused,
    /// Resume while not paused.
    #[error("not paused")]
    NotPaused,
}

/// The state after `cmd`, from `from` (`None`: the agent never logged in).
pub fn transition(from: Option<AgentState>, cmd: AgentCommand) -> Result<AgentState, TransitionError> {
    use AgentCommand as C;
    use AgentState as S;
    match (from.unwrap_or(S::LoggedOut), cmd) {
        (S::LoggedOut, C::Login) => Ok(S::Available),
        (s @ (S::Available | S::Paused), C::Login) => Err(TransitionError::AlreadyLoggedIn(s)),
        (S::LoggedOut, C::Logout | C::Pause | C::Resume) => Err(TransitionError::NotLoggedIn),
        (S::Available | S::Paused, C::Logout) => Ok(S::LoggedOut),
        (S::Available, C::Pause) => Ok(S::Paused),
        (S::Paused, C::Pause) => Err(TransitionError::AlreadyPaused),
        (S::Paused, C::Resume) => Ok(S::Available),
        (S::Available, C::Resume) => Err(TransitionError::NotPaused),
    }
}

/// What an agent is doing, as shown to operators: the stored state, or on
/// a call / in wrap-up while an instance holds the agent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Presence {
    /// The stored state, no call.
    Idle(AgentState),
    /// A call is running for a task.
    OnCall,
    /// The call ended; the agent writes the record (no call is offered).
    WrapUp,
}

impl Presence {
    /// `logged_out`, `available`, `paused`, `on_call` or `wrap_up`.
    pub fn as_str(self) -> &'static str {
        match self {
            Presence::Idle(s) => s.as_str(),
            Presence::OnCall => "on_call",
            Presence::WrapUp => "wrap_up",
        }
    }
}

impl fmt::Display for Presence {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_state_and_command() {
        use AgentCommand as C;
        use AgentState as S;
        let cases: [(Option<S>, C, Result<S, TransitionError>); 13] = [
            (None, C::Login, Ok(S::Available)),
            (None, C::Pause, Err(TransitionError::NotLoggedIn)),
            (Some(S::LoggedOut), C::Login, Ok(S::Available)),
            (Some(S::LoggedOut), C::Logout, Err(TransitionError::NotLoggedIn)),
            (Some(S::LoggedOut), C::Resume, Err(TransitionError::NotLoggedIn)),
            (Some(S::Available), C::Login, Err(TransitionError::AlreadyLoggedIn(S::Available))),
            (Some(S::Available), C::Pause, Ok(S::Paused)),
            (Some(S::Available), C::Resume, Err(TransitionError::NotPaused)),
            (Some(S::Available), C::Logout, Ok(S::LoggedOut)),
            (Some(S::Paused), C::Pause, Err(TransitionError::AlreadyPaused)),
            (Some(S::Paused), C::Resume, Ok(S::Available)),
            (Some(S::Paused), C::Logout, Ok(S::LoggedOut)),
            (Some(S::Paused), C::Login, Err(TransitionError::AlreadyLoggedIn(S::Paused))),
        ];
        for (from, cmd, want) in cases {
            assert_eq!(transition(from, cmd), want, "{from:?} {cmd:?}");
        }
    }

    #[test]
    fn names_round_trip() {
        for s in AgentState::ALL {
            assert_eq!(AgentState::from_name(s.as_str()), Some(s));
        }
        assert_eq!(AgentState::from_name("on_call"), None, "on call is a lease, not a stored state");
    }
}
