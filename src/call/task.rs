//! One call on one tokio task: the driver of [`CallMachine`].
//!
//! [`place_call`] owns everything of the call — its two SIP legs (through
//! the endpoint's routing of its Call-IDs), its [`Relay`] and recorder —
//! and writes the trace as it goes:
//!
//! 1. the `calls` row is inserted **before** the first INVITE leaves (E2);
//! 2. each leg's status changes, the agent's and the client's answers are
//!    written as they happen;
//! 3. the recorder is opened after the agent answered and before the
//!    client is called; a `recordings` row in state `recording` exists from
//!    then on (E1);
//! 4. at the end the recording is sealed (flush, fsync, SHA-256, rename;
//!    E3) and its row updated, and the call gets its one outcome (E2).
//!
//! The media path never waits on any of this: the relay only hands frames
//! to the recorder's writer thread.

use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::json;
use tokio::sync::{Notify, mpsc, watch};
use tokio::time::Instant;
use tracing::{debug, info, warn};
use uuid::Uuid;

use super::machine::{AutoAnswer, CallMachine, CallSpec, LegEvent, LegSpec, MediaCmd, Output, Trace};
use super::{Leg, Outcome};
use crate::audit::{AuditAction, AuditEvent};
use crate::media::g711::Codec;
use crate::media::ports::PortPool;
use crate::media::recorder::RecorderPool;
use crate::media::relay::{Relay, RelayEvent};
use crate::media::timeline::SideStats;
use crate::sip::endpoint::{EndpointHandle, SipEvent};
use crate::sip::msg::Uri;
use crate::sip::transport::Transport;
use crate::store::{self, NewCall, NewRecording, RecordingState, SideCounters, Store};

/// Call settings from the configuration.
#[derive(Debug, Clone)]
pub struct CallSettings {
    /// Below this much free space on the spool, calls are refused.
    pub min_free_mb: u64,
    /// Auto-answer hint.
    pub auto_answer: AutoAnswer,
    /// Agent ring time.
    pub agent_ring: Duration,
    /// Client ring time.
    pub client_ring: Duration,
    /// Longest conversation.
    pub max_duration: Duration,
    /// Codecs offered to the agent.
    pub codecs: Vec<Codec>,
    /// telephone-event payload type.
    pub telephone_event: u8,
    /// User-Agent.
    pub user_agent: String,
    /// Digest credentials for the switch.
    pub credentials: Option<(String, String)>,
    /// Our identity (From).
    pub from: Uri,
}

/// What a call needs from the process.
#[derive(Clone)]
pub struct CallServices {
    /// The SIP endpoint.
    pub endpoint: EndpointHandle,
    /// The trace.
    pub store: Store,
    /// The recorder threads and spool.
    pub recorders: RecorderPool,
    /// The RTP port range.
    pub ports: PortPool,
    /// Address for RTP.
    pub media_ip: IpAddr,
    /// Settings.
    pub settings: CallSettings,
    /// Notified after each recording is sealed: wakes the uploader.
    pub sealed: Arc<Notify>,
    /// This huifang instance (written with each call, for recovery).
    pub instance: String,
}

/// One call to place.
#[derive(Debug, Clone)]
pub struct CallRequest {
    /// The agent's softphone.
    pub agent: Uri,
    /// The client's phone.
    pub client: Uri,
    /// The client's id in the brokerage's systems.
    pub client_id: Option<String>,
    /// The callback task this call works on.
    pub task_id: Option<String>,
    /// The callback kind (decides the retention of the recording).
    pub kind: Option<String>,
    /// The agent (a staff id) who takes the call, when known.
    pub agent_id: Option<String>,
    /// Overrides the configured maximum duration.
    pub max_duration: Option<Duration>,
    /// The call's id, when the caller chose it beforehand (the dialer
    /// announces the call before placing it); else a new one.
    pub call_id: Option<Uuid>,
    /// Where to report the call's progress, if anyone watches.
    pub progress: Option<mpsc::UnboundedSender<Progress>>,
    /// When the dialer claimed the task (kept with the call's trace).
    pub claimed_at: Option<DateTime<Utc>>,
}

/// How a call goes, as its caller hears of it (the call task never knows
/// who watches: the dialer forwards this to the agent's feed).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Progress {
    /// The agent's phone rings (180/183 on the agent leg).
    AgentRinging,
    /// The agent answered and the client's phone rings.
    ClientRinging,
    /// The client answered: bridged and recorded.
    Connected,
}

/// A leg in the report.
#[derive(Debug, Clone, Serialize)]
pub struct LegReport {
    /// Final (or last) status of the leg's INVITE.
    pub status: Option<u16>,
}

/// The recording in the report.
#[derive(Debug, Clone, Serialize)]
pub struct RecordingReport {
    /// Recording id (the call id).
    pub id: Uuid,
    /// Where the sealed file is.
    pub path: PathBuf,
    /// SHA-256 of the file, hex.
    pub sha256: String,
    /// File size.
    pub bytes: u64,
    /// Audio length.
    pub duration_ms: u64,
    /// Agent side counters.
    pub agent: SideStats,
    /// Client side counters.
    pub client: SideStats,
}

/// A DTMF digit pressed during the call.
#[derive(Debug, Clone, Serialize)]
pub struct DtmfReport {
    /// Which side pressed it.
    pub leg: Leg,
    /// The digit.
    pub digit: char,
    /// How long, ms.
    pub duration_ms: u32,
}

/// How a call went: what `huifang dial` prints.
#[derive(Debug, Clone, Serialize)]
pub struct CallReport {
    /// Our id of the call.
    pub call_id: Uuid,
    /// The one outcome (E2).
    pub outcome: Outcome,
    /// Why, in words (no personal data).
    pub reason: Option<String>,
    /// The agent leg.
    pub agent: LegReport,
    /// The client leg.
    pub client: LegReport,
    /// When the first INVITE was about to leave.
    pub started_at: DateTime<Utc>,
    /// When the client answered.
    pub answered_at: Option<DateTime<Utc>>,
    /// When the call ended.
    pub ended_at: DateTime<Utc>,
    /// The sealed recording, when there is one.
    pub recording: Option<RecordingReport>,
    /// DTMF events.
    pub dtmf: Vec<DtmfReport>,
}

impl CallReport {
    /// Answered and sealed: the success `huifang dial` exits 0 for.
    pub fn is_success(&self) -> bool {
        self.outcome == Outcome::Completed && self.answered_at.is_some() && self.recording.is_some()
    }
}

fn store_leg(leg: Leg) -> store::Leg {
    match leg {
        Leg::Agent => store::Leg::Agent,
        Leg::Client => store::Leg::Client,
    }
}

fn counters(s: SideStats) -> SideCounters {
    SideCounters { packets: s.packets, lost: s.lost, late: s.late, gaps: s.gaps }
}

/// Places one recorded callback call and waits until it is over. Errors
/// only when the call could not even be traced (no `calls` row — then no
/// INVITE was sent either).
pub async fn place_call(
    svc: &CallServices,
    req: CallRequest,
    mut stop: watch::Receiver<bool>,
) -> Result<CallReport, store::StoreError> {
    let id = req.call_id.unwrap_or_else(Uuid::now_v7);
    let started_at = Utc::now();
    let mut progress = Watchers { tx: req.progress.clone(), agent_rang: false, client_rang: false };
    // Big awaited futures (sqlx's above all) go through `Box::pin` here and
    // below: an async fn's future is as big as its biggest state, and every
    // call's task keeps that size for its whole life (≈ 20 KiB a call before;
    // see docs/PERFORMANCE.md). Boxed, each costs a short-lived allocation
    // when a SIP message or a trace update happens, never per packet.
    let new_call = NewCall {
        id,
        task_id: req.task_id.clone(),
        client_id: req.client_id.clone(),
        agent_uri: req.agent.to_string(),
        client_uri: req.client.to_string(),
        started_at,
        kind: req.kind.clone(),
        agent_id: req.agent_id.clone(),
        claimed_at: req.claimed_at,
    };
    Box::pin(svc.store.insert_call_by(&new_call, Some(&svc.instance))).await?;
    let mut report = CallReport {
        call_id: id,
        outcome: Outcome::Failed,
        reason: None,
        agent: LegReport { status: None },
        client: LegReport { status: None },
        started_at,
        answered_at: None,
        ended_at: started_at,
        recording: None,
        dtmf: Vec::new(),
    };
    info!(call = %id, "placing callback call");
    // E6: the audit log knows of the call before its first INVITE leaves.
    // Ids only, never the phone URIs.
    let placed = AuditEvent::system(
        AuditAction::CallPlaced,
        id,
        json!({"task_id": req.task_id, "client_id": req.client_id, "kind": req.kind}),
    );
    if let Err(e) = Box::pin(svc.store.append_audit(&placed)).await {
        warn!(call = %id, error = %e, "audit: call.placed not written; call not placed");
        return Box::pin(finish(svc, report, Outcome::Failed, Some(format!("audit log: {e}")))).await;
    }

    // Where the legs go, and the relay, before anything rings. Matched
    // where it is awaited: a named result would keep its slot (a whole
    // relay) in this future for the call's life.
    let (agent_uri, agent_target, client_uri, client_target, mut relay) = match Box::pin(async {
        let Some((agent_uri, agent_target)) = svc.endpoint.resolve(&req.agent).await else {
            return Err((Outcome::AgentUnavailable, "the agent is not registered".to_string()));
        };
        let Some((client_uri, client_target)) = svc.endpoint.resolve(&req.client).await else {
            return Err((Outcome::Unreachable, "the client URI cannot be reached".to_string()));
        };
        // Never record into a full disk: refuse the call before anything rings.
        crate::archive::guard::spool_has_room(svc.recorders.spool(), svc.settings.min_free_mb)
            .map_err(|why| (Outcome::RecordingFailed, format!("spool: {why}")))?;
        let relay = Relay::new(&svc.ports, svc.media_ip)
            .map_err(|e| (Outcome::Failed, format!("media relay: {e}")))?;
        Ok((agent_uri, agent_target, client_uri, client_target, relay))
    })
    .await
    {
        Ok(v) => v,
        Err((outcome, reason)) => {
            warn!(call = %id, %outcome, %reason, "call not placed");
            return Box::pin(finish(svc, report, outcome, Some(reason))).await;
        }
    };
    let s = &svc.settings;
    let transport = svc.endpoint.switch_transport().unwrap_or(agent_target.transport);
    let spec = CallSpec {
        agent: LegSpec {
            request_uri: agent_uri,
            to: req.agent.clone(),
            target: agent_target,
            media: relay.local(Leg::Agent.side()),
        },
        client: LegSpec {
            request_uri: client_uri,
            to: req.client.clone(),
            target: client_target,
            media: relay.local(Leg::Client.side()),
        },
        from: s.from.clone(),
        contact: svc.endpoint.contact(if transport == Transport::Tcp {
            Transport::Tcp
        } else {
            Transport::Udp
        }),
        credentials: s.credentials.clone(),
        auto_answer: s.auto_answer,
        agent_ring: s.agent_ring,
        client_ring: s.client_ring,
        max_duration: req.max_duration.unwrap_or(s.max_duration),
        codecs: s.codecs.clone(),
        telephone_event: s.telephone_event,
        user_agent: s.user_agent.clone(),
    };
    let mut machine = CallMachine::new(spec);
    let (sink, mut events) = mpsc::unbounded_channel();
    for leg in [Leg::Agent, Leg::Client] {
        Box::pin(svc.endpoint.attach(machine.call_id(leg), sink.clone())).await;
    }
    drop(sink);

    let mut recording_started = false;
    let mut stopped = *stop.borrow();
    machine.start(Instant::now().into_std());
    loop {
        // Execute what the machine asked for.
        while let Some(out) = machine.poll_output() {
            match out {
                Output::Send(_, msg, target) => Box::pin(svc.endpoint.send(msg, target)).await,
                Output::Respond(tx, msg) => Box::pin(svc.endpoint.respond(tx, msg)).await,
                Output::Cancel(leg) => Box::pin(svc.endpoint.cancel(machine.call_id(leg))).await,
                Output::Media(MediaCmd::Remote { leg, negotiated }) => {
                    relay.set_remote(leg.side(), negotiated.remote, negotiated.rtcp);
                    relay.set_payloads(
                        leg.side(),
                        &[(negotiated.pt, negotiated.codec)],
                        negotiated.telephone_event,
                    );
                }
                Output::Media(MediaCmd::Forwarding(a2c, c2a)) => relay.set_forwarding(a2c, c2a),
                Output::StartRecording => {
                    let result = Box::pin(open_recording(svc, id)).await;
                    let now = Instant::now().into_std();
                    match result {
                        Ok(rec) => {
                            info!(call = %id, "recording started");
                            relay.start_recording(rec, now);
                            recording_started = true;
                            machine.on_recording(Ok(()), now);
                        }
                        Err(reason) => machine.on_recording(Err(reason), now),
                    }
                }
                Output::Trace(Trace::Invited(leg)) => {
                    progress.invited(leg);
                    if let Err(e) = Box::pin(svc.store.update_leg(id, store_leg(leg), None, Utc::now())).await
                    {
                        warn!(call = %id, error = %e, "trace: INVITE time not written");
                    }
                }
                Output::Trace(Trace::LegStatus(leg, status)) => {
                    match leg {
                        Leg::Agent => report.agent.status = Some(status),
                        Leg::Client => report.client.status = Some(status),
                    }
                    progress.leg_status(leg, status);
                    if let Err(e) =
                        Box::pin(svc.store.update_leg(id, store_leg(leg), Some(status), Utc::now())).await
                    {
                        warn!(call = %id, error = %e, "trace: leg status not written");
                    }
                }
                Output::Trace(Trace::Answered) => {
                    let at = Utc::now();
                    report.answered_at = Some(at);
                    progress.tell(Progress::Connected);
                    info!(call = %id, "client answered; bridged and recording");
                    if let Err(e) = Box::pin(svc.store.mark_answered(id, at)).await {
                        warn!(call = %id, error = %e, "trace: answer not written");
                    }
                    let answered =
                        AuditEvent { at, ..AuditEvent::system(AuditAction::CallAnswered, id, json!({})) };
                    if let Err(e) = Box::pin(svc.store.append_audit(&answered)).await {
                        warn!(call = %id, error = %e, "audit: call.answered not written; retrying");
                        audit_later(svc, answered);
                    }
                }
            }
        }
        if machine.is_done() {
            break;
        }
        let deadline = machine.poll_timeout().map(Instant::from_std);
        tokio::select! {
            ev = events.recv() => match ev {
                Some(ev) => {
                    let now = Instant::now().into_std();
                    let (call_id, ev) = match *ev {
                        SipEvent::Response(m) => (m.call_id().unwrap_or("").to_string(), LegEvent::Response(m)),
                        SipEvent::Timeout { call_id, method } => (call_id, LegEvent::Timeout(method)),
                        SipEvent::Request(tx, m) => (m.call_id().unwrap_or("").to_string(), LegEvent::Request(tx, m)),
                        SipEvent::Ack(m) => (m.call_id().unwrap_or("").to_string(), LegEvent::Ack(m)),
                    };
                    if let Some(leg) = machine.leg_of(&call_id) {
                        machine.on_leg_event(leg, ev, now);
                    }
                }
                None => machine.hang_up(Instant::now().into_std()),
            },
            ev = relay.next_event() => match ev {
                RelayEvent::RecorderFailed(e) => {
                    warn!(call = %id, error = %e, "recorder failed mid-call: ending the call");
                    machine.on_recorder_failed(&e.to_string(), Instant::now().into_std());
                }
                RelayEvent::Dtmf { side, event } => {
                    let leg = if side == Leg::Agent.side() { Leg::Agent } else { Leg::Client };
                    debug!(call = %id, %leg, "DTMF");
                    report.dtmf.push(DtmfReport { leg, digit: event.digit, duration_ms: event.duration_ms });
                }
                other => debug!(call = %id, event = ?other, "media"),
            },
            _ = sleep_until(deadline) => machine.handle_timeout(Instant::now().into_std()),
            r = stop.changed(), if !stopped => {
                if r.is_err() || *stop.borrow() {
                    stopped = true;
                    machine.hang_up(Instant::now().into_std());
                }
            }
        }
    }
    for leg in [Leg::Agent, Leg::Client] {
        Box::pin(svc.endpoint.detach(machine.call_id(leg))).await;
    }
    report.agent.status = machine.status(Leg::Agent);
    report.client.status = machine.status(Leg::Client);
    let (mut outcome, mut reason) = machine
        .outcome()
        .map(|(o, r)| (o, r.map(str::to_string)))
        .unwrap_or((Outcome::Failed, Some("no outcome".into())));

    // Seal the recording (E3) and update its row.
    let (sealed, agent_stats, client_stats) = Box::pin(relay.finish(Instant::now().into_std())).await;
    match sealed {
        Some(Ok(sealed)) => {
            let row = super::sealed_row(
                &sealed,
                RecordingState::Sealed,
                counters(agent_stats),
                counters(client_stats),
            );
            info!(call = %id, duration_ms = sealed.duration_ms, "recording sealed");
            let rtp = |s: SideStats| crate::metrics::Rtp { packets: s.packets, lost: s.lost, late: s.late };
            crate::metrics::METRICS.rtp(rtp(agent_stats), rtp(client_stats));
            let event = super::sealed_event(&row, id);
            // the seal and its audit event in one commit; should that fail,
            // each on its own, as far as it goes
            match Box::pin(svc.store.seal_recording_audited(&row, &event)).await {
                Ok(_) => svc.sealed.notify_one(),
                Err(e) => {
                    warn!(call = %id, error = %e, "trace: seal and audit event not written together; one by one");
                    match Box::pin(svc.store.seal_recording(&row)).await {
                        Ok(()) => svc.sealed.notify_one(),
                        Err(e) => warn!(call = %id, error = %e, "trace: sealed recording not written"),
                    }
                    if let Err(e) = Box::pin(svc.store.append_audit(&event)).await {
                        warn!(call = %id, error = %e, "audit: recording.sealed not written; retrying");
                        audit_later(svc, event.clone());
                    }
                }
            }
            report.recording = Some(RecordingReport {
                id: sealed.id,
                path: sealed.path,
                sha256: sealed.sha256,
                bytes: sealed.bytes,
                duration_ms: sealed.duration_ms,
                agent: agent_stats,
                client: client_stats,
            });
        }
        Some(Err(e)) => {
            warn!(call = %id, error = %e, "recording could not be sealed");
            // The file stays in the spool's recording/ directory; start-up
            // repair seals it as interrupted.
            if report.answered_at.is_some() || outcome == Outcome::Completed {
                outcome = Outcome::RecordingFailed;
                reason = Some(format!("sealing failed: {e}"));
            }
        }
        None if recording_started => {}
        None => {}
    }
    Box::pin(finish(svc, report, outcome, reason)).await
}

/// The caller's progress channel, told each step once.
struct Watchers {
    tx: Option<mpsc::UnboundedSender<Progress>>,
    agent_rang: bool,
    client_rang: bool,
}

impl Watchers {
    fn tell(&self, p: Progress) {
        if let Some(tx) = &self.tx {
            let _ = tx.send(p);
        }
    }

    /// The client's INVITE left (the agent answered and the recorder is
    /// open): from the agent's side, the client's phone is ringing.
    fn invited(&mut self, leg: Leg) {
        if leg == Leg::Client && !self.client_rang {
            self.client_rang = true;
            self.tell(Progress::ClientRinging);
        }
    }

    /// A provisional status on the agent's leg: ringing is told once (a
    /// 183 after a 180 is the same ringing).
    fn leg_status(&mut self, leg: Leg, status: u16) {
        let ringing = (180..=183).contains(&status);
        match leg {
            Leg::Agent if ringing && !self.agent_rang => {
                self.agent_rang = true;
                self.tell(Progress::AgentRinging);
            }
            _ => {}
        }
    }
}

async fn open_recording(svc: &CallServices, id: Uuid) -> Result<crate::media::recorder::Recorder, String> {
    let rec = svc.recorders.open(id).await.map_err(|e| e.to_string())?;
    let path = svc.recorders.spool().join("recording").join(format!("{id}.wav"));
    svc.store
        .insert_recording(&NewRecording {
            id,
            call_id: id,
            path: path.display().to_string(),
            started_at: Utc::now(),
        })
        .await
        .map_err(|e| format!("trace: {e}"))?;
    Ok(rec)
}

async fn finish(
    svc: &CallServices,
    mut report: CallReport,
    outcome: Outcome,
    reason: Option<String>,
) -> Result<CallReport, store::StoreError> {
    report.ended_at = Utc::now();
    report.outcome = outcome;
    report.reason = reason;
    let ended = AuditEvent {
        at: report.ended_at,
        ..AuditEvent::system(
            AuditAction::CallEnded,
            report.call_id,
            json!({"outcome": outcome.as_str(), "reason": report.reason}),
        )
    };
    let (call, reason) = (report.call_id, report.reason.as_deref());
    // the outcome and its audit event in one commit; should that fail, each
    // on its own (a refused outcome is the caller's error, as before)
    if let Err(e) =
        svc.store.finish_call_audited(call, outcome.as_str(), reason, report.ended_at, &ended).await
    {
        warn!(%call, error = %e, "trace: outcome and audit event not written together; one by one");
        svc.store.finish_call(call, outcome.as_str(), reason, report.ended_at).await?;
        if let Err(e) = svc.store.append_audit(&ended).await {
            warn!(%call, error = %e, "audit: call.ended not written; retrying");
            audit_later(svc, ended);
        }
    }
    crate::metrics::METRICS.call_ended(outcome.as_str());
    info!(call = %report.call_id, %outcome, "call ended");
    Ok(report)
}

/// E6 after the fact: an event of a call already placed that could not be
/// written is retried in the background — 200 ms, doubling up to 30 s —
/// until it is (its time stays the event's own). Should the process stop
/// first, `huifang verify` reports the call's missing event
/// (`audit-missing`): never only a line in a log.
fn audit_later(svc: &CallServices, event: AuditEvent) {
    retry_audit(svc.store.clone(), event);
}

/// [`audit_later`] on `store`.
fn retry_audit(store: store::Store, event: AuditEvent) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut delay = std::time::Duration::from_millis(200);
        let mut tries = 1u32;
        loop {
            tokio::time::sleep(delay).await;
            tries += 1;
            match store.append_audit(&event).await {
                Ok(_) => {
                    info!(action = %event.action, subject = %event.subject, tries, "audit: event written after retries");
                    return;
                }
                Err(e) => {
                    warn!(action = %event.action, subject = %event.subject, tries, error = %e, "audit: event still not written");
                    delay = (delay * 2).min(std::time::Duration::from_secs(30));
                }
            }
        }
    })
}

async fn sleep_until(t: Option<Instant>) {
    match t {
        Some(t) => tokio::time::sleep_until(t).await,
        None => std::future::pending().await,
    }
}

#[cfg(test)]
mod audit_retry_tests {
    use super::*;
    use sqlx::Connection;

    #[tokio::test]
    async fn an_event_refused_for_a_while_is_written_once_the_store_takes_it() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("t.db").display());
        let store = store::Store::open(&url).await.unwrap();
        let mut conn = sqlx::SqliteConnection::connect(&url).await.unwrap();
        sqlx::query(
            "CREATE TRIGGER audit_down BEFORE INSERT ON audit_events \
             BEGIN SELECT RAISE(ABORT, 'the audit log is down (test)'); END",
        )
        .execute(&mut conn)
        .await
        .unwrap();
        let id = Uuid::now_v7();
        let event = AuditEvent::system(AuditAction::CallEnded, id, json!({"outcome": "completed"}));
        assert!(store.append_audit(&event).await.is_err());
        let retry = retry_audit(store.clone(), event);
        tokio::time::sleep(std::time::Duration::from_millis(700)).await;
        assert!(store.audit_of(&id.to_string(), 0, 10).await.unwrap().is_empty());
        sqlx::query("DROP TRIGGER audit_down").execute(&mut conn).await.unwrap();
        tokio::time::timeout(std::time::Duration::from_secs(10), retry).await.unwrap().unwrap();
        let rows = store.audit_of(&id.to_string(), 0, 10).await.unwrap();
        assert_eq!(rows.len(), 1, "written once");
        assert_eq!(rows[0].action, "call.ended");
    }
}
