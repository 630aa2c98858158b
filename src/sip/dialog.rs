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
        if response.call_id() != Some(call_id) || response.from_tag().as_deref() != Some(local_tag.as_str()) {
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
            id: DialogId { call_id: call_id.to_string(), local_tag, remote_tag },
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
            id: DialogId { call_id: call_id.to_string(), local_tag, remote_tag },
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
        self.route_set.first().map_or(&self.remote_target, |route| &route.uri)
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
        let target = if is_target_refresh(&cseq.method) { contact(req)? } else { None };
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
    if status >= 200 { DialogState::Confirmed } else { DialogState::Early }
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
    contact(msg).ok().flatten().ok_or(DialogError::MissingLocalContact)
}

fn record_route(msg: &Message) -> Result<Vec<NameAddr>, DialogError> {
    msg.name_addrs("Record-Route").map_err(|_| DialogError::BadRecordRoute)
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

#[cfg(test)]
mod tests {
    //! Fixtures after RFC 3665 §3.2 (Alice calls Bob through the proxies
    //! ss1.atlanta and ss2.biloxi, both record-routing), bodies left out.
    use super::*;

    /// F4: Alice's INVITE (the second, after the 407), as Alice sent it.
    const F4_INVITE: &str = "INVITE sip:bob@biloxi.example.com SIP/2.0\r\n\
Via: SIP/2.0/TCP client.atlanta.example.com:5060;branch=z9hG4bK74bf9\r\n\
Max-Forwards: 70\r\n\
From: Alice <sip:alice@atlanta.example.com>;tag=9fxced76sl\r\n\
To: Bob <sip:bob@biloxi.example.com>\r\n\
Call-ID: 3848276298220188511@atlanta.example.com\r\n\
CSeq: 2 INVITE\r\n\
Contact: <sip:alice@client.atlanta.example.com;transport=tcp>\r\n\
Content-Length: 0\r\n\r\n";

    /// F8: the same INVITE as Bob receives it.
    const F8_INVITE: &str = "INVITE sip:bob@client.biloxi.example.com SIP/2.0\r\n\
Via: SIP/2.0/TCP ss2.biloxi.example.com:5060;branch=z9hG4bK721e4.1\r\n\
Via: SIP/2.0/TCP ss1.atlanta.example.com:5060;branch=z9hG4bK2d4790.1;received=192.0.2.111\r\n\
Via: SIP/2.0/TCP client.atlanta.example.com:5060;branch=z9hG4bK74bf9;received=192.0.2.101\r\n\
Max-Forwards: 68\r\n\
Record-Route: <sip:ss2.biloxi.example.com;lr>\r\n\
Record-Route: <sip:ss1.atlanta.example.com;lr>\r\n\
From: Alice <sip:alice@atlanta.example.com>;tag=9fxced76sl\r\n\
To: Bob <sip:bob@biloxi.example.com>\r\n\
Call-ID: 3848276298220188511@atlanta.example.com\r\n\
CSeq: 2 INVITE\r\n\
Contact: <sip:alice@client.atlanta.example.com;transport=tcp>\r\n\
Content-Length: 0\r\n\r\n";

    /// F11: 180 Ringing as Alice receives it (F14, the 200, only differs
    /// in its status line).
    const F11_RINGING: &str = "SIP/2.0 180 Ringing\r\n\
Via: SIP/2.0/TCP client.atlanta.example.com:5060;branch=z9hG4bK74bf9;received=192.0.2.101\r\n\
Record-Route: <sip:ss2.biloxi.example.com;lr>, <sip:ss1.atlanta.example.com;lr>\r\n\
From: Alice <sip:alice@atlanta.example.com>;tag=9fxced76sl\r\n\
To: Bob <sip:bob@biloxi.example.com>;tag=314159\r\n\
Call-ID: 3848276298220188511@atlanta.example.com\r\n\
CSeq: 2 INVITE\r\n\
Contact: <sip:bob@client.biloxi.example.com;transport=tcp>\r\n\
Content-Length: 0\r\n\r\n";

    const ALICE: &str = "Alice <sip:alice@atlanta.example.com>;tag=9fxced76sl";
    const BOB: &str = "Bob <sip:bob@biloxi.example.com>;tag=314159";
    const BOB_CONTACT: &str = "Contact: <sip:bob@client.biloxi.example.com;transport=tcp>\r\n";
    const SS1: &str = "<sip:ss1.atlanta.example.com;lr>";
    const SS2: &str = "<sip:ss2.biloxi.example.com;lr>";

    fn parse(text: &str) -> Message {
        Message::parse(text.as_bytes()).expect("fixture parses")
    }

    /// F14, the 200 OK, with `edits` (from, to) made to its text.
    fn f14(edits: &[(&str, &str)]) -> Message {
        let text = F11_RINGING.replace("180 Ringing", "200 OK");
        parse(&edits.iter().fold(text, |t, (from, to)| t.replace(from, to)))
    }

    /// Our message as the peer receives it: a Via added, printed, parsed.
    fn on_the_wire(mut msg: Message) -> Message {
        msg.prepend("Via", "SIP/2.0/TCP h.example.com;branch=z9hG4bKtest");
        Message::parse(&msg.to_bytes()).expect("built message parses")
    }

    /// Alice's confirmed dialog (UAC).
    fn alice() -> Dialog {
        let mut d = Dialog::from_uac(&parse(F4_INVITE), &parse(F11_RINGING)).unwrap();
        d.confirm(&f14(&[])).unwrap();
        d
    }

    /// Bob's confirmed dialog (UAS).
    fn bob() -> Dialog {
        let invite = parse(F8_INVITE);
        let mut ok = Message::response_to(&invite, 200).with("Contact", BOB_CONTACT[9..].trim_end());
        ok.ensure_to_tag("314159");
        Dialog::from_uas(&invite, &ok).unwrap()
    }

    /// A request from Bob to Alice in the call.
    fn from_bob(method: &str, seq: u32, extra: &str) -> Message {
        parse(&format!(
            "{method} sip:alice@client.atlanta.example.com;transport=tcp SIP/2.0\r\n\
Via: SIP/2.0/TCP client.biloxi.example.com:5060;branch=z9hG4bKnashds7\r\n\
From: {BOB}\r\nTo: {ALICE}\r\nCall-ID: 3848276298220188511@atlanta.example.com\r\n\
CSeq: {seq} {method}\r\n{extra}Content-Length: 0\r\n\r\n"
        ))
    }

    fn routes(msg: &Message) -> Vec<&str> {
        msg.header_values("Route").collect()
    }

    #[test]
    fn uac_early_then_confirmed_acks_and_byes() {
        let mut d = Dialog::from_uac(&parse(F4_INVITE), &parse(F11_RINGING)).unwrap();
        assert_eq!((d.role(), d.state()), (Role::Uac, DialogState::Early));
        assert_eq!((d.id().local_tag.as_str(), d.id().remote_tag.as_str()), ("9fxced76sl", "314159"));
        let rs: Vec<String> = d.route_set().iter().map(ToString::to_string).collect();
        assert_eq!(rs, [SS1, SS2], "Record-Route reversed");
        assert_eq!((d.local_seq(), d.remote_seq()), (2, None));
        d.confirm(&f14(&[])).unwrap();
        assert_eq!(d.state(), DialogState::Confirmed);
        d.confirm(&f14(&[])).unwrap(); // a retransmitted 2xx

        // F15: the ACK.
        let ack = d.ack(2);
        let target = "sip:bob@client.biloxi.example.com;transport=tcp";
        assert_eq!(ack.request_uri().unwrap().as_str(), target);
        assert_eq!(routes(&ack), [SS1, SS2]);
        assert_eq!(ack.header("CSeq"), Some("2 ACK"));
        assert_eq!((ack.header("From"), ack.header("To")), (Some(ALICE), Some(BOB)));
        assert_eq!(ack.header("Max-Forwards"), Some("70"));
        assert_eq!(ack.header("Contact"), None);
        assert_eq!(d.next_hop().as_str(), "sip:ss1.atlanta.example.com;lr");

        let bye = on_the_wire(d.request(Method::Bye));
        assert_eq!(bye.header("CSeq"), Some("3 BYE"));
        assert_eq!(routes(&bye), [SS1, SS2]);
        assert_eq!(bye.header("Contact"), None);
        // Bob's dialog takes Alice's BYE.
        let mut b = bob();
        assert!(b.matches_request(&bye));
        b.on_request(&bye).unwrap();
        assert_eq!(b.state(), DialogState::Terminated);
    }

    #[test]
    fn route_set_and_target_come_from_the_2xx() {
        let ringing = F11_RINGING.replace(&format!("{SS2}, "), "").replace(BOB_CONTACT, "");
        let mut d = Dialog::from_uac(&parse(F4_INVITE), &parse(&ringing)).unwrap();
        assert_eq!(d.route_set().len(), 1);
        assert_eq!(d.remote_target().as_str(), "sip:bob@biloxi.example.com");
        d.confirm(&f14(&[])).unwrap();
        assert_eq!(d.route_set().len(), 2);
        assert_eq!(d.remote_target().host(), "client.biloxi.example.com");
    }

    #[test]
    fn uas_keeps_record_route_order_and_swaps_from_and_to() {
        let mut d = bob();
        assert_eq!((d.role(), d.state()), (Role::Uas, DialogState::Confirmed));
        assert_eq!((d.id().local_tag.as_str(), d.id().remote_tag.as_str()), ("314159", "9fxced76sl"));
        assert_eq!(d.remote_seq(), Some(2));
        assert_eq!(d.local_contact().host(), "client.biloxi.example.com");
        // The ACK is exempt from the CSeq check and changes nothing.
        d.on_request(&on_the_wire(alice().ack(2))).unwrap();
        assert_eq!(d.state(), DialogState::Confirmed);

        // F17: Bob's BYE.
        let bye = on_the_wire(d.request(Method::Bye));
        let target = "sip:alice@client.atlanta.example.com;transport=tcp";
        assert_eq!(bye.request_uri().unwrap().as_str(), target);
        assert_eq!(routes(&bye), [SS2, SS1]);
        assert_eq!((bye.header("From"), bye.header("To")), (Some(BOB), Some(ALICE)));
        assert_eq!(bye.header("CSeq"), Some("1 BYE"));
        assert_eq!(d.next_hop().as_str(), "sip:ss2.biloxi.example.com;lr");
        assert_eq!(dialog_id_of_request(&bye).as_ref(), Some(alice().id()));
        let mut a = alice();
        a.on_request(&bye).unwrap();
        assert_eq!(a.state(), DialogState::Terminated);
        assert_eq!(a.on_request(&bye), Err(DialogError::Terminated));
    }

    #[test]
    fn strict_routing_puts_the_target_last() {
        let rr = "<sip:p2.example.com;lr>, <sip:p1.example.com;transport=tcp;method=INVITE>";
        let ok = f14(&[(&format!("{SS2}, {SS1}"), rr)]);
        let mut d = Dialog::from_uac(&parse(F4_INVITE), &ok).unwrap();
        let reinvite = d.request(Method::Invite);
        let ruri = reinvite.request_uri().unwrap();
        assert_eq!(ruri.as_str(), "sip:p1.example.com;transport=tcp");
        let target = "<sip:bob@client.biloxi.example.com;transport=tcp>";
        assert_eq!(routes(&reinvite), ["<sip:p2.example.com;lr>", target]);
        assert_eq!(reinvite.header("CSeq"), Some("3 INVITE"));
        let contact = "<sip:alice@client.atlanta.example.com;transport=tcp>";
        assert_eq!(reinvite.header("Contact"), Some(contact));
        assert_eq!(d.next_hop().host(), "p1.example.com");
    }

    #[test]
    fn remote_requests_refresh_target_and_keep_order() {
        let mut d = alice();
        let contact = "Contact: <sip:bob@192.0.2.200;transport=tcp>\r\n";
        d.on_request(&from_bob("INVITE", 5, contact)).unwrap();
        assert_eq!(d.remote_seq(), Some(5));
        assert_eq!(d.remote_target().host(), "192.0.2.200");
        let late = d.on_request(&from_bob("INFO", 4, ""));
        assert_eq!(late, Err(DialogError::CSeqOutOfOrder));
        d.on_request(&from_bob("ACK", 5, "")).unwrap();
        d.on_request(&from_bob("ACK", 1, "")).unwrap();
        let star = d.on_request(&from_bob("UPDATE", 6, "Contact: *\r\n"));
        assert_eq!(star, Err(DialogError::BadContact));
        assert_eq!(d.remote_seq(), Some(5), "unchanged on error");
        d.on_request(&from_bob("INFO", 6, BOB_CONTACT)).unwrap();
        assert_eq!(d.remote_target().host(), "192.0.2.200", "INFO is no refresh");
        d.on_request(&from_bob("BYE", 7, "")).unwrap();
        assert_eq!(d.state(), DialogState::Terminated);
    }

    #[test]
    fn responses_refresh_or_terminate() {
        let mut d = alice();
        let update = on_the_wire(d.request(Method::Update));
        let ok = Message::response_to(&update, 200).with("Contact", "<sip:bob@192.0.2.9>");
        d.on_response(&Method::Update, &ok);
        assert_eq!(d.remote_target().as_str(), "sip:bob@192.0.2.9");

        let info = on_the_wire(d.request(Method::Info));
        let mut foreign = Message::response_to(&info, 481);
        foreign.set("To", "Bob <sip:bob@biloxi.example.com>;tag=other");
        d.on_response(&Method::Info, &foreign);
        assert_eq!(d.state(), DialogState::Confirmed, "another dialog's 481");
        d.on_response(&Method::Info, &Message::response_to(&info, 481));
        assert_eq!(d.state(), DialogState::Terminated);

        let mut b = bob();
        let bye = on_the_wire(b.request(Method::Bye));
        b.on_response(&Method::Bye, &Message::response_to(&bye, 200));
        assert_eq!(b.state(), DialogState::Terminated);
    }

    #[test]
    fn matching_by_call_id_and_tags() {
        let mut d = alice();
        assert!(d.matches_request(&from_bob("INFO", 1, "")));
        assert!(!d.matches_request(&on_the_wire(d.ack(2))), "our own request");
        assert!(d.matches_response(&f14(&[])));
        assert!(!d.matches_response(&f14(&[("tag=314159", "tag=271828")])));
        assert!(!d.matches_response(&f14(&[("38482", "11111")])), "other Call-ID");
        let fork = f14(&[("tag=314159", "tag=271828")]);
        assert_eq!(d.confirm(&f14(&[])), Ok(()), "a retransmission");
        assert_eq!(d.confirm(&fork), Err(DialogError::WrongDialog));
        let mut early = Dialog::from_uac(&parse(F4_INVITE), &parse(F11_RINGING)).unwrap();
        assert_eq!(early.confirm(&fork), Err(DialogError::WrongDialog));
        assert_eq!(dialog_id_of_response(&f14(&[])).as_ref(), Some(d.id()));
        assert_eq!(dialog_id_of_request(&parse(F8_INVITE)), None);
        assert_eq!(new_tag().len(), 12);
    }

    #[test]
    fn refuses_responses_that_cannot_make_a_dialog() {
        let (f4, f8) = (parse(F4_INVITE), parse(F8_INVITE));
        let uac = |resp: &Message| Dialog::from_uac(&f4, resp).unwrap_err();
        assert_eq!(uac(&f14(&[(";tag=314159", "")])), DialogError::MissingToTag);
        let err = uac(&f14(&[(BOB_CONTACT, "")]));
        assert_eq!(err, DialogError::MissingContact);
        assert!(!err.to_string().contains("biloxi"), "no URI in the text");
        assert_eq!(uac(&Message::response_to(&f4, 100)), DialogError::NotDialogCreating);
        let tagless = Message::response_to(&f8, 180);
        assert_eq!(Dialog::from_uas(&f8, &tagless).unwrap_err(), DialogError::MissingToTag);
        let alice_contact = "Contact: <sip:alice@client.atlanta.example.com;transport=tcp>\r\n";
        let f8_bare = parse(&F8_INVITE.replace(alice_contact, ""));
        let err = Dialog::from_uas(&f8_bare, &parse(F11_RINGING)).unwrap_err();
        assert_eq!(err, DialogError::MissingContact);
    }
}
