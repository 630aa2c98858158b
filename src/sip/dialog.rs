//! SIP dialogs (RFC 3261 §12, with the in-dialog rules of §13–§15): the
//! state two user agents share for the length of a call.
//!
//! A [`Dialog`] holds the dialog ID (Call-ID and both tags), the local and
//! remote CSeq numbers, the remote target (where requests go) and the
//! route set (which proxies they go through). It is sans-IO: it reads and
//! builds [`Message`]s, and never sends, times or logs anything.
//!
//! ## Calling contract
//! The call state machine is the main caller; the endpoint's dispatch and
//! the registrar use [`dialog_id_of_request`] to tell a request that claims
//! a dialog (its To has a tag) from one that does not, and answer `481`
//! when no dialog of that ID exists.
//!
//! **Calling out (UAC).** Send the INVITE with a From tag ([`new_tag`]) and
//! a Contact. For each 1xx that carries a To tag, look the early dialog up
//! by [`dialog_id_of_response`] or create it with [`Dialog::from_uac`]:
//! every To tag is a fork and its own dialog. On a 2xx call
//! [`Dialog::confirm`] on the early dialog of that tag, or create a
//! confirmed dialog with `from_uac` when there was none. Then send
//! [`Dialog::ack`] (the UA core, not the transaction, acknowledges a 2xx,
//! and re-sends the same ACK for each retransmitted 2xx). A non-2xx final
//! response ends every early dialog of the INVITE: call
//! [`Dialog::terminate`] on them.
//!
//! **Answering (UAS).** Pick a tag with [`new_tag`], answer the INVITE with
//! a 1xx or 2xx carrying it and our Contact, and build the dialog with
//! [`Dialog::from_uas`]; if that was a 1xx, call `confirm` with the 2xx.
//! The ACK then comes through [`Dialog::on_request`].
//!
//! **In the dialog.** [`Dialog::request`] builds a request (Request-URI,
//! Route, From, To, Call-ID, CSeq, Max-Forwards, and Contact for target
//! refreshes); the caller adds the top Via and the body, sends it through
//! a client transaction to [`Dialog::next_hop`], and hands the final
//! response to [`Dialog::on_response`] (a transaction timeout is a `408`).
//! Every request received in the dialog goes to `on_request` before it is
//! acted on: `Err(CSeqOutOfOrder)` is answered `500`, `Err(BadContact)`
//! `400`, `Err(Terminated)` `481`. After sending a BYE call `terminate`
//! (§15.1.1); a BYE received terminates the dialog by itself.
//!
//! Deliberate limits: the secure flag is taken from a `sips:` Request-URI
//! (the transport is not known here); only INVITE and UPDATE are target
//! refresh requests; a 1xx without Contact is accepted and leaves the
//! INVITE's Request-URI as remote target until the 2xx brings one.

use std::fmt;

use thiserror::Error;

use super::msg::{CSeq, Message, Method, NameAddr, ParseError, Uri};

/// Max-Forwards of the requests we originate (RFC 3261 §8.1.1.6).
const MAX_FORWARDS: &str = "70";
/// The largest CSeq number (RFC 3261 §8.1.1.5: below 2^31).
const MAX_CSEQ: u32 = (1 << 31) - 1;

/// Which side of the dialog-creating INVITE we were.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// We sent the INVITE.
    Uac,
    /// We received the INVITE.
    Uas,
}

/// The life of a dialog (RFC 3261 §12).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DialogState {
    /// Created by a 1xx with a To tag; no 2xx yet.
    Early,
    /// A 2xx was sent or received.
    Confirmed,
    /// Ended by BYE, 481/408, or [`Dialog::terminate`].
    Terminated,
}

/// A dialog ID (RFC 3261 §12): Call-ID, local tag, remote tag, as seen
/// from our side. The remote tag is empty for a peer that sent no From tag.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct DialogId {
    /// The Call-ID.
    pub call_id: String,
    /// Our tag.
    pub local_tag: String,
    /// The peer's tag.
    pub remote_tag: String,
}

impl fmt::Debug for DialogId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The Call-ID often holds a host or number: only its hash is shown.
        write!(
            f,
            "DialogId(call {}, local {}, remote {})",
            crate::sip::short_hash(&self.call_id),
            self.local_tag,
            self.remote_tag
        )
    }
}

/// Why a dialog could not be created or a message was refused by it. The
/// texts name no URI, header value or number of a party.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum DialogError {
    /// Not an INVITE answered by a 101–299 response (or, for
    /// [`Dialog::confirm`], not a 2xx to INVITE).
    #[error("not a dialog-creating response")]
    NotDialogCreating,
    /// The response has no To tag.
    #[error("response has no To tag")]
    MissingToTag,
    /// Our own INVITE has no From tag.
    #[error("INVITE has no From tag")]
    MissingFromTag,
    /// The peer's INVITE or 2xx has no Contact.
    #[error("peer's message has no Contact")]
    MissingContact,
    /// Our own INVITE or response has no usable Contact.
    #[error("our own message has no usable Contact")]
    MissingLocalContact,
    /// The peer's Contact is `*` or not a SIP URI.
    #[error("Contact is not a SIP URI")]
    BadContact,
    /// A Record-Route element does not parse.
    #[error("malformed Record-Route")]
    BadRecordRoute,
    /// The message's Call-ID or tags are not this dialog's.
    #[error("message does not belong to this dialog")]
    WrongDialog,
    /// The request's CSeq is lower than the last one received: answer 500.
    #[error("CSeq lower than the dialog's remote sequence number")]
    CSeqOutOfOrder,
    /// The dialog has ended: answer 481.
    #[error("dialog is terminated")]
    Terminated,
    /// A header the dialog needs is missing or malformed.
    #[error("malformed message: {0}")]
    Malformed(#[from] ParseError),
}

/// One dialog, either side. See the module doc for who calls what when.
#[derive(Clone)]
pub struct Dialog {
    id: DialogId,
    role: Role,
    state: DialogState,
    /// CSeq of our last request; 0 means empty (UAS before its first one).
    local_seq: u32,
    remote_seq: Option<u32>,
    /// Our From (UAC) or To (UAS), without tag.
    local_uri: NameAddr,
    /// The peer's address, without tag.
    remote_uri: NameAddr,
    remote_target: Uri,
    route_set: Vec<NameAddr>,
    secure: bool,
    local_contact: Uri,
}

impl fmt::Debug for Dialog {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Dialog")
            .field("id", &self.id)
            .field("role", &self.role)
            .field("state", &self.state)
            .field("local_seq", &self.local_seq)
            .field("remote_seq", &self.remote_seq)
            .field("routes", &self.route_set.len())
            .finish_non_exhaustive()
    }
}

impl Dialog {
    /// UAC side (§12.1.2): from the INVITE we sent and a 1xx with a To tag
    /// (early dialog) or a 2xx (confirmed). The route set is the response's
    /// Record-Route reversed, the remote target its Contact, the local CSeq
    /// the INVITE's; the remote CSeq stays empty.
    pub fn from_uac(invite: &Message, response: &Message) -> Result<Dialog, DialogError> {
        let status = dialog_creating(invite, response)?;
        let call_id = call_id(invite)?;
        let from = invite.from_hdr()?;
        let local_tag = from.tag().ok_or(DialogError::MissingFromTag)?.to_string();
        if response.call_id() != Some(call_id) || response.from_tag() != Some(local_tag.clone())
        {
            return Err(DialogError::WrongDialog);
        }
        let to = response.to_hdr()?;
        let remote_tag = nonempty_tag(&to).ok_or(DialogError::MissingToTag)?;
        let request_uri = invite.request_uri().ok_or(DialogError::NotDialogCreating)?;
        let remote_target = match contact(response)? {
            Some(uri) => uri,
            None if status < 200 => request_uri.clone(),
            None => return Err(DialogError::MissingContact),
        };
        let mut route_set = record_route(response)?;
        route_set.reverse();
        Ok(Dialog {
            id: DialogId {
                call_id: call_id.to_string(),
                local_tag,
                remote_tag,
            },
            role: Role::Uac,
            state: state_after(status),
            local_seq: invite.cseq()?.seq,
            remote_seq: None,
            local_uri: untagged(from),
            remote_uri: untagged(to),
            remote_target,
            route_set,
            secure: request_uri.is_sips(),
            local_contact: local_contact(invite)?,
        })
    }

    /// UAS side (§12.1.1): from the INVITE received and the 1xx or 2xx we
    /// answer it with, which must carry our To tag. The route set is the
    /// INVITE's Record-Route in order, the remote target its Contact, the
    /// remote CSeq its CSeq; the local CSeq stays empty.
    pub fn from_uas(invite: &Message, response: &Message) -> Result<Dialog, DialogError> {
        let status = dialog_creating(invite, response)?;
        let call_id = call_id(invite)?;
        if response.call_id() != Some(call_id) {
            return Err(DialogError::WrongDialog);
        }
        let local_tag = nonempty_tag(&response.to_hdr()?).ok_or(DialogError::MissingToTag)?;
        let from = invite.from_hdr()?;
        let remote_tag = from.tag().unwrap_or_default().to_string();
        let remote_target = contact(invite)?.ok_or(DialogError::MissingContact)?;
        let request_uri = invite.request_uri().ok_or(DialogError::NotDialogCreating)?;
        Ok(Dialog {
            id: DialogId {
                call_id: call_id.to_string(),
                local_tag,
                remote_tag,
            },
            role: Role::Uas,
            state: state_after(status),
            local_seq: 0,
            remote_seq: Some(invite.cseq()?.seq),
            local_uri: untagged(invite.to_hdr()?),
            remote_uri: untagged(from),
            remote_target,
            route_set: record_route(invite)?,
            secure: request_uri.is_sips(),
            local_contact: local_contact(response)?,
        })
    }

    /// The dialog ID.
    pub fn id(&self) -> &DialogId {
        &self.id
    }
    /// Early, confirmed or terminated.
    pub fn state(&self) -> DialogState {
        self.state
    }
    /// Whether we sent or received the INVITE.
    pub fn role(&self) -> Role {
        self.role
    }
    /// The CSeq number of our last request (0: none yet, UAS side).
    pub fn local_seq(&self) -> u32 {
        self.local_seq
    }
    /// The CSeq number of the peer's last request, if any.
    pub fn remote_seq(&self) -> Option<u32> {
        self.remote_seq
    }
    /// Where the peer wants its requests (its last Contact).
    pub fn remote_target(&self) -> &Uri {
        &self.remote_target
    }
    /// The proxies our requests go through, first hop first.
    pub fn route_set(&self) -> &[NameAddr] {
        &self.route_set
    }
    /// Our Contact, put into target refresh requests.
    pub fn local_contact(&self) -> &Uri {
        &self.local_contact
    }
    /// The secure flag: the INVITE's Request-URI was `sips:`.
    pub fn is_secure(&self) -> bool {
        self.secure
    }

    /// Confirms an early dialog with the 2xx to its INVITE: received (UAC:
    /// remote target and route set are taken anew from the 2xx, §12.1.2,
    /// §13.2.2.4) or sent (UAS: only our Contact may change). A 2xx with
    /// another To tag is another fork (`Err(WrongDialog)`: create it with
    /// [`Dialog::from_uac`]). On a confirmed dialog it does nothing, so
    /// retransmitted 2xx may be passed again.
    pub fn confirm(&mut self, response: &Message) -> Result<(), DialogError> {
        if self.state == DialogState::Terminated {
            return Err(DialogError::Terminated);
        }
        let is_2xx = response.status().is_some_and(|s| (200..300).contains(&s));
        if !is_2xx || response.method() != Some(Method::Invite) {
            return Err(DialogError::NotDialogCreating);
        }
        let ours = match self.role {
            Role::Uac => self.matches_response(response),
            Role::Uas => {
                response.call_id() == Some(self.id.call_id.as_str())
                    && response.to_tag().as_deref() == Some(self.id.local_tag.as_str())
            }
        };
        if !ours {
            return Err(DialogError::WrongDialog);
        }
        if self.state == DialogState::Confirmed {
            return Ok(());
        }
        match self.role {
            Role::Uac => {
                let target = contact(response)?.ok_or(DialogError::MissingContact)?;
                let mut route_set = record_route(response)?;
                route_set.reverse();
                self.remote_target = target;
                self.route_set = route_set;
            }
            Role::Uas => {
                if let Ok(Some(uri)) = contact(response) {
                    self.local_contact = uri;
                }
            }
        }
        self.state = DialogState::Confirmed;
        Ok(())
    }

    /// Builds a request in the dialog (§12.2.1.1) and advances the local
    /// CSeq (ACK and CANCEL reuse the current one; prefer [`Dialog::ack`]).
    /// Loose routing (`lr` on the first route, or no route): Request-URI =
    /// remote target, Route = route set. Strict: Request-URI = first route
    /// without `method` and URI headers, Route = the rest and then the
    /// remote target. INVITE and UPDATE carry our Contact. The caller adds
    /// the top Via and the body and sends it to [`Dialog::next_hop`].
    #[must_use]
    pub fn request(&mut self, method: Method) -> Message {
        if !matches!(method, Method::Ack | Method::Cancel) {
            self.local_seq = self.local_seq.saturating_add(1).min(MAX_CSEQ);
        }
        self.build(method, self.local_seq)
    }

    /// The ACK for a 2xx to our INVITE of CSeq `invite_seq` (§13.2.2.4):
    /// built like [`Dialog::request`] with that CSeq number and no Contact.
    #[must_use]
    pub fn ack(&self, invite_seq: u32) -> Message {
        self.build(Method::Ack, invite_seq)
    }

    /// Where to send our requests: the first route of the route set (the
    /// Request-URI's host when it is a strict router), else the remote
    /// target. It may change after [`Dialog::confirm`] and any call that
    /// refreshes the remote target.
    pub fn next_hop(&self) -> &Uri {
        self.route_set
            .first()
            .map_or(&self.remote_target, |route| &route.uri)
    }

    /// Takes in a request received in this dialog, before acting on it
    /// (§12.2.2): a CSeq lower than the last one is refused (ACK and CANCEL
    /// are exempt), a target refresh (INVITE, UPDATE) with a Contact
    /// replaces the remote target, a BYE terminates the dialog. On error
    /// the dialog is left unchanged.
    pub fn on_request(&mut self, req: &Message) -> Result<(), DialogError> {
        if !req.is_request() || !self.matches_request(req) {
            return Err(DialogError::WrongDialog);
        }
        if self.state == DialogState::Terminated {
            return Err(DialogError::Terminated);
        }
        let cseq = req.cseq()?;
        if matches!(cseq.method, Method::Ack | Method::Cancel) {
            return Ok(());
        }
        if self.remote_seq.is_some_and(|last| cseq.seq < last) {
            return Err(DialogError::CSeqOutOfOrder);
        }
        let target = if is_target_refresh(&cseq.method) {
            contact(req)?
        } else {
            None
        };
        self.remote_seq = Some(cseq.seq);
        if let Some(uri) = target {
            self.remote_target = uri;
        }
        if cseq.method == Method::Bye {
            self.state = DialogState::Terminated;
        }
        Ok(())
    }

    /// Takes in the final response to a request we sent in this dialog
    /// (the INVITE that created it goes to [`Dialog::confirm`] instead): a
    /// 2xx to a re-INVITE or UPDATE refreshes the remote target; 481 or 408
    /// terminates the dialog (§12.2.1.2), and so does any final response
    /// to BYE. Responses of other dialogs are ignored.
    pub fn on_response(&mut self, req_method: &Method, resp: &Message) {
        let Some(status) = resp.status() else { return };
        if self.state == DialogState::Terminated || !self.matches_response(resp) {
            return;
        }
        match status {
            481 | 408 => self.state = DialogState::Terminated,
            200..=299 if is_target_refresh(req_method) => {
                if let Ok(Some(uri)) = contact(resp) {
                    self.remote_target = uri;
                }
            }
            _ => {}
        }
        if *req_method == Method::Bye && status >= 200 {
            self.state = DialogState::Terminated;
        }
    }

    /// Whether a request received belongs to this dialog: same Call-ID,
    /// To tag ours, From tag the peer's.
    pub fn matches_request(&self, req: &Message) -> bool {
        req.call_id() == Some(self.id.call_id.as_str())
            && req.to_tag().as_deref() == Some(self.id.local_tag.as_str())
            && req.from_tag().unwrap_or_default() == self.id.remote_tag
    }

    /// Whether a response received answers a request of this dialog: same
    /// Call-ID, From tag ours, To tag the peer's.
    pub fn matches_response(&self, resp: &Message) -> bool {
        resp.call_id() == Some(self.id.call_id.as_str())
            && resp.from_tag().as_deref() == Some(self.id.local_tag.as_str())
            && resp.to_tag().unwrap_or_default() == self.id.remote_tag
    }

    /// Marks the dialog terminated: after sending a BYE, on a transaction
    /// timeout, or when a non-2xx final response ends an early dialog.
    pub fn terminate(&mut self) {
        self.state = DialogState::Terminated;
    }

    fn build(&self, method: Method, seq: u32) -> Message {
        let (uri, routes): (Uri, Vec<NameAddr>) = match self.route_set.split_first() {
            Some((first, rest)) if first.uri.param("lr").is_none() => {
                let mut routes = rest.to_vec();
                routes.push(NameAddr::new(self.remote_target.clone()));
                (request_uri_of(&first.uri), routes)
            }
            _ => (self.remote_target.clone(), self.route_set.clone()),
        };
        let mut msg = Message::request(method.clone(), uri).with("Max-Forwards", MAX_FORWARDS);
        for route in &routes {
            msg.push("Route", route.to_string());
        }
        msg.push("From", tagged(&self.local_uri, &self.id.local_tag));
        msg.push("To", tagged(&self.remote_uri, &self.id.remote_tag));
        msg.push("Call-ID", self.id.call_id.clone());
        let refresh = is_target_refresh(&method);
        msg.push("CSeq", CSeq { seq, method }.to_string());
        if refresh {
            msg.push("Contact", NameAddr::new(self.local_contact.clone()).to_string());
        }
        msg
    }
}

/// A new random tag for a From or To header (RFC 3261 §19.3).
pub fn new_tag() -> String {
    crate::sip::random_token(12)
}

/// The ID of the dialog an incoming request claims, as its UAS sees it
/// (local tag = To tag, remote = From tag); `None` without a To tag, i.e.
/// outside any dialog.
pub fn dialog_id_of_request(req: &Message) -> Option<DialogId> {
    if !req.is_request() {
        return None;
    }
    Some(DialogId {
        call_id: req.call_id()?.to_string(),
        local_tag: req.to_tag().filter(|t| !t.is_empty())?,
        remote_tag: req.from_tag().unwrap_or_default(),
    })
}

/// The ID of the dialog a response to our request belongs to (local tag =
/// From tag, remote = To tag); `None` without both tags. Tells the forks
/// of an INVITE apart.
pub fn dialog_id_of_response(resp: &Message) -> Option<DialogId> {
    if resp.is_request() {
        return None;
    }
    Some(DialogId {
        call_id: resp.call_id()?.to_string(),
        local_tag: resp.from_tag()?,
        remote_tag: resp.to_tag().filter(|t| !t.is_empty())?,
    })
}

/// Checks for an INVITE and a 101–299 response to it; returns the status.
fn dialog_creating(invite: &Message, response: &Message) -> Result<u16, DialogError> {
    let status = response.status().unwrap_or(0);
    if !invite.is_request()
        || invite.method() != Some(Method::Invite)
        || !(101..300).contains(&status)
        || response.method() != Some(Method::Invite)
    {
        return Err(DialogError::NotDialogCreating);
    }
    Ok(status)
}

fn state_after(status: u16) -> DialogState {
    if status >= 200 {
        DialogState::Confirmed
    } else {
        DialogState::Early
    }
}

fn call_id(msg: &Message) -> Result<&str, DialogError> {
    Ok(msg.call_id().ok_or(ParseError::MissingHeader("Call-ID"))?)
}

fn nonempty_tag(addr: &NameAddr) -> Option<String> {
    addr.tag().filter(|t| !t.is_empty()).map(str::to_string)
}

/// The URI of the (first) Contact, if any.
fn contact(msg: &Message) -> Result<Option<Uri>, DialogError> {
    if msg.is_contact_star() {
        return Err(DialogError::BadContact);
    }
    msg.header("Contact")
        .map(|v| NameAddr::parse(v, "Contact").map(|n| n.uri))
        .transpose()
        .map_err(|_| DialogError::BadContact)
}

fn local_contact(msg: &Message) -> Result<Uri, DialogError> {
    contact(msg)
        .ok()
        .flatten()
        .ok_or(DialogError::MissingLocalContact)
}

fn record_route(msg: &Message) -> Result<Vec<NameAddr>, DialogError> {
    msg.name_addrs("Record-Route")
        .map_err(|_| DialogError::BadRecordRoute)
}

fn is_target_refresh(method: &Method) -> bool {
    matches!(method, Method::Invite | Method::Update)
}

fn untagged(mut addr: NameAddr) -> NameAddr {
    addr.params.remove("tag");
    addr
}

fn tagged(addr: &NameAddr, tag: &str) -> String {
    let mut addr = addr.clone();
    if !tag.is_empty() {
        addr.params.set("tag", Some(tag));
    }
    addr.to_string()
}

/// A route's URI as a Request-URI: without the `method` parameter and URI
/// headers, which a Request-URI may not carry (§19.1.1).
fn request_uri_of(uri: &Uri) -> Uri {
    let text = uri.as_str();
    let base = text.split_once('?').map_or(text, |(before, _)| before);
    let host_start = base.find('@').map_or(0, |i| i + 1);
    let (head, params) = match base[host_start..].find(';') {
        Some(i) => base.split_at(host_start + i),
        None => (base, ""),
    };
    let mut out = head.to_string();
    for p in params.split(';').filter(|p| !p.is_empty()) {
        let name = p.split('=').next().unwrap_or_default();
        if !name.eq_ignore_ascii_case("method") {
            out.push(';');
            out.push_str(p);
        }
    }
    if out == text {
        return uri.clone();
    }
    Uri::parse(&out).unwrap_or_else(|_| uri.clone())
}
