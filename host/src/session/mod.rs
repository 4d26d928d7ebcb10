//! Sessions: one MCP session, its server instance, and the streams its messages travel on.
//!
//! A session owns one [`Instance`] and a router task that reads what the server says. Each message goes to
//! exactly one stream:
//! - a response goes to the stream of the POST that carried its request (found by id);
//! - a progress notification goes to the stream of the request that set its progress token;
//! - list-changed and resource-updated notifications go to the standalone (GET) stream;
//! - other server requests and notifications (sampling, elicitation, logging) go to the stream of the newest
//!   request still in flight, the one that most plausibly caused them, or to the standalone stream when none is.
//!
//! Every stream keeps a bounded buffer of its recent events, so a client that lost its connection can resume
//! with `Last-Event-ID`; a client that does not read fast enough is disconnected (and may resume) rather than
//! letting the buffer grow.

mod registry;
mod stream;

pub use registry::{Registry, SessionId};
pub use stream::{Delivery, STANDALONE, StreamId};

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use bytes::Bytes;
use serde_json::value::RawValue;
use tokio::sync::{OwnedSemaphorePermit, mpsc};
use tokio_util::sync::CancellationToken;

use crate::audit::{Call, Caller, TenantAudit};
use crate::backend::{Instance, ServerEvent};
use crate::jsonrpc::{self, IdKey, Kind, Peeked, code};
use crate::metrics::TenantMetrics;
use crate::policy::offer::Offer;
use stream::Stream;

/// Which HTTP transport a session was opened on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    /// Streamable HTTP (2025 era): a stream per POST plus an optional GET stream.
    Streamable,
    /// Legacy HTTP+SSE (2024-11-05): everything on the one GET stream.
    LegacySse,
}

/// Limits every session lives by.
#[derive(Debug, Clone)]
pub struct Limits {
    pub request_timeout: Duration,
    pub idle_ttl: Duration,
    /// Events kept per stream for `Last-Event-ID` replay.
    pub replay_events: usize,
    pub replay_bytes: usize,
    /// Events queued to one HTTP connection before it is cut as too slow.
    pub live_queue: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            request_timeout: Duration::from_secs(300),
            idle_ttl: Duration::from_secs(1800),
            replay_events: 256,
            replay_bytes: 8 << 20,
            live_queue: 256,
        }
    }
}

/// Why a request could not be sent.
#[derive(Debug, thiserror::Error)]
pub enum SendError {
    #[error("session ended")]
    Ended,
    #[error("a request with id {0:?} is already in flight in this session")]
    DuplicateId(IdKey),
}

/// Who a session belongs to: its tenant, and the token (its SHA-256) that opened it. A session is found only
/// by its owner: on another tenant's route, or with another token, it does not exist.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Owner {
    pub tenant: Arc<str>,
    pub token: Option<[u8; 32]>,
}

/// One MCP session.
pub struct Session {
    pub id: SessionId,
    pub transport: Transport,
    pub owner: Owner,
    to_server: mpsc::Sender<Bytes>,
    state: Mutex<State>,
    limits: Arc<Limits>,
    /// Milliseconds since `epoch` at the last client activity.
    last_active: AtomicU64,
    epoch: Instant,
    ended: CancellationToken,
    stop_instance: CancellationToken,
    oversight: Oversight,
}

/// What a session's tenant asks of its traffic.
#[derive(Debug, Clone, Default)]
pub struct Oversight {
    /// What the tenant offers of its server's tools, prompts and resources: requests for the rest are refused
    /// here, and lists and resource updates leave them out. `None`: everything.
    pub offer: Option<Arc<Offer>>,
    /// The tenant's audit trail, where calls are recorded, and how it names the session's owner.
    pub audit: Option<Arc<TenantAudit>>,
    pub subject: Option<Arc<str>>,
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session")
            .field("id", &self.id)
            .field("transport", &self.transport)
            .finish()
    }
}

struct State {
    pending: HashMap<IdKey, Pending>,
    progress: HashMap<IdKey, StreamId>,
    streams: HashMap<StreamId, Stream>,
    finished: std::collections::VecDeque<StreamId>,
    next_stream: StreamId,
    next_request_seq: u64,
    /// The negotiated protocol version, from the initialize response.
    version: Option<String>,
    /// The client's name and version, from its initialize request.
    client: Option<Arc<(String, String)>>,
    end_reason: Option<String>,
    /// Released when the session ends, freeing a place under the session caps (catwalk's and its tenant's).
    permits: Vec<OwnedSemaphorePermit>,
}

struct Pending {
    id: Box<RawValue>,
    stream: StreamId,
    seq: u64,
    deadline: Instant,
    progress_token: Option<IdKey>,
    initialize: bool,
    /// The list method whose answer the offer filters.
    filtered: Option<Box<str>>,
    /// The call's record in the audit trail, written when it is answered.
    call: Option<Call>,
    /// The `server answer` span, ended when it is answered.
    span: Option<opentelemetry::global::BoxedSpan>,
}

/// Finished POST streams kept for late resumption.
const FINISHED_STREAMS_KEPT: usize = 16;

impl Session {
    /// Starts a session over `instance`; `metrics` counts the instance's own exit (not for a shared server,
    /// whose supervisor counts it). The returned session is live until its server exits or it is ended.
    #[allow(clippy::too_many_arguments)]
    pub fn start(
        id: SessionId,
        transport: Transport,
        owner: Owner,
        instance: Instance,
        limits: Arc<Limits>,
        permits: Vec<OwnedSemaphorePermit>,
        registry: Arc<Registry>,
        metrics: Option<Arc<TenantMetrics>>,
        oversight: Oversight,
    ) -> Arc<Session> {
        let Instance {
            to_server,
            mut from_server,
            stop,
            ..
        } = instance;
        let mut streams = HashMap::new();
        streams.insert(STANDALONE, Stream::new(true));
        let session = Arc::new(Session {
            id,
            transport,
            owner,
            to_server,
            state: Mutex::new(State {
                pending: HashMap::new(),
                progress: HashMap::new(),
                streams,
                finished: Default::default(),
                next_stream: STANDALONE + 1,
                next_request_seq: 0,
                version: None,
                client: None,
                end_reason: None,
                permits,
            }),
            limits,
            last_active: AtomicU64::new(0),
            epoch: Instant::now(),
            ended: CancellationToken::new(),
            stop_instance: stop,
            oversight,
        });
        let router = session.clone();
        tokio::spawn(async move {
            let reason = loop {
                match from_server.recv().await {
                    Some(ServerEvent::Message(bytes)) => router.route_from_server(bytes),
                    Some(ServerEvent::Oversized { len, head, tail }) => {
                        router.oversized(len, &head, &tail)
                    }
                    Some(ServerEvent::Exited { reason }) => {
                        if let Some(metrics) = &metrics
                            && !router.ended.is_cancelled()
                        {
                            metrics.instance_exited(&reason);
                        }
                        break format!("the MCP server {reason}");
                    }
                    None => break "the MCP server is gone".to_owned(),
                }
            };
            router.end(&reason);
            registry.remove(&router.id);
        });
        session
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        crate::vocab::lock(&self.state)
    }

    /// Marks client activity (for the idle TTL).
    pub fn touch(&self) {
        self.last_active
            .store(self.epoch.elapsed().as_millis() as u64, Ordering::Relaxed);
    }

    pub fn is_ended(&self) -> bool {
        self.ended.is_cancelled()
    }

    /// Resolves when the session has ended.
    pub fn ended(&self) -> tokio_util::sync::WaitForCancellationFuture<'_> {
        self.ended.cancelled()
    }

    /// How long ago the session started, and since its client was last heard from.
    pub fn age(&self) -> Duration {
        self.epoch.elapsed()
    }

    pub fn idle(&self) -> Duration {
        self.epoch.elapsed().saturating_sub(Duration::from_millis(
            self.last_active.load(Ordering::Relaxed),
        ))
    }

    /// The client's name and version, from its initialize request.
    pub fn client(&self) -> Option<Arc<(String, String)>> {
        self.lock().client.clone()
    }

    /// The negotiated protocol version, once initialize has been answered.
    pub fn version(&self) -> Option<String> {
        self.lock().version.clone()
    }

    /// Opens a stream for the requests in one POST and registers them, so their responses find it.
    ///
    /// Returns the stream and its live receiver. Requests are registered before they are sent.
    pub fn open_request_stream(
        &self,
        requests: &[&Peeked],
    ) -> Result<(StreamId, mpsc::Receiver<Delivery>), SendError> {
        let mut st = self.lock();
        check_new_requests(&st, requests)?;
        let stream_id = st.next_stream;
        st.next_stream += 1;
        let mut stream = Stream::new(false);
        let (tx, rx) = mpsc::channel(self.limits.live_queue);
        stream.live = Some(tx);
        st.streams.insert(stream_id, stream);
        self.register(&mut st, requests, stream_id);
        Ok((stream_id, rx))
    }

    /// Registers requests whose answers go to the standalone stream (legacy SSE).
    pub fn register_on_standalone(&self, requests: &[&Peeked]) -> Result<(), SendError> {
        let mut st = self.lock();
        check_new_requests(&st, requests)?;
        self.register(&mut st, requests, STANDALONE);
        Ok(())
    }

    fn register(&self, st: &mut State, requests: &[&Peeked], stream_id: StreamId) {
        let deadline = Instant::now() + self.limits.request_timeout;
        if let Some(stream) = st.streams.get_mut(&stream_id) {
            stream.open_requests += requests.len();
        }
        for req in requests {
            let (Some(id), Some(key)) = (req.id.clone(), req.key.clone()) else {
                continue;
            };
            let seq = st.next_request_seq;
            st.next_request_seq += 1;
            let mut call = None;
            if req.method() == "initialize" {
                let params = params(&req.bytes);
                st.client = Caller::client_info(params.as_ref().and_then(|p| p.get("clientInfo")));
            }
            if let Some(audit) = &self.oversight.audit
                && TenantAudit::audits(req.method())
            {
                let caller = Caller {
                    subject: self.oversight.subject.clone(),
                    client: st.client.clone(),
                };
                let transport = match self.transport {
                    Transport::Streamable => "streamable",
                    Transport::LegacySse => "sse",
                };
                let params = params(&req.bytes);
                call = audit.begin(
                    req.method(),
                    params.as_ref(),
                    caller,
                    transport,
                    req.bytes.len(),
                );
            }
            if let Some(token) = &req.progress_token {
                st.progress.insert(token.clone(), stream_id);
            }
            let pending = Pending {
                id,
                stream: stream_id,
                seq,
                deadline,
                progress_token: req.progress_token.clone(),
                initialize: req.method() == "initialize",
                filtered: self
                    .oversight
                    .offer
                    .as_ref()
                    .filter(|offer| offer.filters(req.method()))
                    .map(|_| req.method().into()),
                call,
                // Started when the request is sent ([`Session::screen`]).
                span: None,
            };
            st.pending.insert(key, pending);
        }
    }

    /// Whether any request of this session is waiting for its answer.
    pub fn has_pending(&self) -> bool {
        !self.lock().pending.is_empty()
    }

    /// What of `messages` goes to the server, and how many were refused: a request for what the tenant does
    /// not offer is answered here with the protocol's error for an entry that does not exist (on the stream it
    /// was registered to), and is not sent.
    pub fn screen(&self, messages: &[Peeked]) -> (Vec<Bytes>, usize) {
        let traced = crate::traces::enabled();
        if self.oversight.offer.is_none() && !traced {
            return (messages.iter().map(|m| m.bytes.clone()).collect(), 0);
        }
        let mut refused_count = 0;
        let mut passed = Vec::with_capacity(messages.len());
        for message in messages {
            let refused = match (&message.kind, &message.key, &self.oversight.offer) {
                (Kind::Request, Some(key), Some(offer)) if Offer::gates(message.method()) => offer
                    .check(message.method(), params(&message.bytes).as_ref())
                    .err()
                    .map(|refusal| (key, refusal)),
                _ => None,
            };
            match refused {
                Some((key, refusal)) => {
                    tracing::info!(session = %self.id, method = message.method(), "refused: not offered by the tenant");
                    refused_count += 1;
                    let mut st = self.lock();
                    let call = st.pending.get_mut(key).and_then(|p| p.call.take());
                    if let Some(call) = call {
                        call.refused("not_offered", refusal.code);
                    }
                    self.fail(&mut st, key, refusal.code, &refusal.message, false);
                }
                // The server's spans join the request's trace, and its answer is timed from here.
                None if traced && message.kind == Kind::Request => {
                    if let Some(key) = &message.key
                        && let Some(pending) = self.lock().pending.get_mut(key)
                    {
                        pending.span = crate::traces::child("server answer");
                    }
                    passed.push(crate::traces::with_context(message.bytes.clone()))
                }
                None => passed.push(message.bytes.clone()),
            }
        }
        (passed, refused_count)
    }

    /// Sends messages to the server, in order.
    pub async fn send(&self, messages: Vec<Bytes>) -> Result<(), SendError> {
        for message in messages {
            let message = one_line(message);
            tokio::select! {
                sent = self.to_server.send(message) => sent.map_err(|_| SendError::Ended)?,
                () = self.ended.cancelled() => return Err(SendError::Ended),
            }
        }
        Ok(())
    }

    /// Attaches a connection to a stream, replaying what came after `after` (an event sequence number).
    ///
    /// `None` when the stream is unknown or already has a reader.
    pub fn attach(
        &self,
        stream_id: StreamId,
        after: Option<u64>,
    ) -> Option<mpsc::Receiver<Delivery>> {
        let mut st = self.lock();
        let stream = st.streams.get_mut(&stream_id)?;
        if stream.live.as_ref().is_some_and(|tx| !tx.is_closed()) {
            return None;
        }
        let (tx, rx) = mpsc::channel(self.limits.live_queue.max(stream.buffered() + 1));
        for delivery in stream.replay_after(after) {
            let _ = tx.try_send(delivery);
        }
        if !stream.finished {
            stream.live = Some(tx);
        }
        Some(rx)
    }

    fn route_from_server(&self, bytes: Bytes) {
        let msg = match jsonrpc::peek(one_line(bytes)) {
            Ok(msg) => msg,
            Err(e) => {
                tracing::warn!(session = %self.id, "dropped a message from the server: {e}");
                return;
            }
        };
        let mut st = self.lock();
        let st = &mut *st;
        if msg.kind == Kind::Response {
            let Some(pending) = msg.key.as_ref().and_then(|key| st.pending.remove(key)) else {
                tracing::warn!(session = %self.id, id = ?msg.key, "dropped a response to no request in flight");
                return;
            };
            if pending.initialize {
                st.version = jsonrpc::negotiated_version(&msg.bytes);
            }
            if let Some(token) = &pending.progress_token {
                st.progress.remove(token);
            }
            let bytes = match (&pending.filtered, &self.oversight.offer) {
                (Some(method), Some(offer)) => filtered(offer, method, msg.bytes),
                _ => msg.bytes,
            };
            if let Some(call) = pending.call {
                call.answered(&bytes);
            }
            if let Some(span) = pending.span {
                crate::traces::answered(span, &bytes);
            }
            self.deliver(st, pending.stream, bytes, true);
            return;
        }
        if let Some(offer) = &self.oversight.offer
            && msg.kind == Kind::Notification
            && Offer::screens(msg.method())
            && !offer.admits_notification(msg.method(), params(&msg.bytes).as_ref())
        {
            return;
        }
        let target = match (self.transport, msg.kind) {
            (Transport::LegacySse, _) => STANDALONE,
            (_, Kind::Notification) if msg.method() == "notifications/progress" => {
                match msg.progress_token.as_ref().and_then(|t| st.progress.get(t)) {
                    Some(&stream) => stream,
                    None => newest_request_stream(st).unwrap_or(STANDALONE),
                }
            }
            (_, Kind::Notification)
                if msg.method().ends_with("/list_changed")
                    || msg.method() == "notifications/resources/updated" =>
            {
                STANDALONE
            }
            _ => newest_request_stream(st).unwrap_or(STANDALONE),
        };
        self.deliver(st, target, msg.bytes, false);
    }

    /// Puts one event on a stream; `answers_request` counts down the stream's open requests.
    fn deliver(&self, st: &mut State, stream_id: StreamId, bytes: Bytes, answers_request: bool) {
        let Some(stream) = st.streams.get_mut(&stream_id) else {
            return;
        };
        if answers_request {
            stream.open_requests = stream.open_requests.saturating_sub(1);
        }
        let last = answers_request && stream.open_requests == 0 && !stream.standalone;
        let overflowed = stream.push(bytes, last, &self.limits);
        if overflowed {
            tracing::warn!(session = %self.id, stream = stream_id, "client is not reading its stream; disconnected it");
        }
        if last {
            st.finished.push_back(stream_id);
            while st.finished.len() > FINISHED_STREAMS_KEPT {
                if let Some(old) = st.finished.pop_front() {
                    st.streams.remove(&old);
                }
            }
        }
    }

    /// A message over the limit was dropped. If it was a response (its id found at either end of the line),
    /// that request gets an error now instead of waiting for its timeout.
    fn oversized(&self, len: usize, head: &[u8], tail: &[u8]) {
        let key = jsonrpc::oversized_response_id(head, tail);
        tracing::warn!(session = %self.id, len, id = ?key, "the server wrote a message over the size limit; dropped it");
        let Some(key) = key else { return };
        let message =
            format!("the MCP server's answer was {len} bytes, over catwalk's message size limit");
        let mut st = self.lock();
        self.fail(&mut st, &key, code::MESSAGE_TOO_LARGE, &message, false);
    }

    /// Answers one pending request with an error, optionally telling the server it was cancelled.
    fn fail(&self, st: &mut State, key: &IdKey, code: i64, message: &str, cancel_on_server: bool) {
        let Some(pending) = st.pending.remove(key) else {
            return;
        };
        if let Some(token) = &pending.progress_token {
            st.progress.remove(token);
        }
        if let Some(call) = pending.call {
            call.failed(code);
        }
        if let Some(mut span) = pending.span {
            crate::traces::failed(&mut span, code);
        }
        if cancel_on_server {
            let _ = self
                .to_server
                .try_send(jsonrpc::cancelled_notification(&pending.id, message));
        }
        let reply = jsonrpc::error_reply(Some(&pending.id), code, message);
        self.deliver(st, pending.stream, reply, true);
    }

    /// Times out overdue requests and reports whether the session has been idle past its TTL.
    ///
    /// Every session is swept every second or so, on the threads that serve requests: a session with nothing due
    /// costs a lock and two comparisons, so that ten thousand of them do not hold up anyone's request.
    pub fn sweep(&self, now: Instant) -> bool {
        let mut st = self.lock();
        if st.pending.values().any(|p| p.deadline <= now) {
            let overdue: Vec<IdKey> = st
                .pending
                .iter()
                .filter(|(_, p)| p.deadline <= now)
                .map(|(k, _)| k.clone())
                .collect();
            let message = format!(
                "the MCP server did not answer within {:?}",
                self.limits.request_timeout
            );
            for key in overdue {
                tracing::warn!(session = %self.id, id = ?key, "request timed out");
                self.fail(&mut st, &key, code::REQUEST_TIMEOUT, &message, true);
            }
        }
        let idle_for = now.saturating_duration_since(
            self.epoch + Duration::from_millis(self.last_active.load(Ordering::Relaxed)),
        );
        if idle_for < self.limits.idle_ttl {
            return false;
        }
        let busy = !st.pending.is_empty()
            || st
                .streams
                .values()
                .any(|s| s.live.as_ref().is_some_and(|tx| !tx.is_closed()));
        !busy
    }

    /// Ends the session: every pending request gets an error, every stream closes, the instance stops.
    pub fn end(&self, reason: &str) {
        let mut st = self.lock();
        if st.end_reason.is_some() {
            return;
        }
        st.end_reason = Some(reason.to_owned());
        let keys: Vec<IdKey> = st.pending.keys().cloned().collect();
        for key in keys {
            self.fail(&mut st, &key, code::SERVER_GONE, reason, false);
        }
        for stream in st.streams.values_mut() {
            stream.live = None;
            stream.finished = true;
        }
        st.permits.clear();
        drop(st);
        tracing::debug!(session = %self.id, "session ended: {reason}");
        self.ended.cancel();
        self.stop_instance.cancel();
    }
}

fn check_new_requests(st: &State, requests: &[&Peeked]) -> Result<(), SendError> {
    if st.end_reason.is_some() {
        return Err(SendError::Ended);
    }
    for (i, req) in requests.iter().enumerate() {
        let Some(key) = &req.key else { continue };
        if st.pending.contains_key(key) || requests[..i].iter().any(|r| r.key.as_ref() == Some(key))
        {
            return Err(SendError::DuplicateId(key.clone()));
        }
    }
    Ok(())
}

/// A list's answer without what the tenant does not offer (an answer that is not a list result goes as it
/// came).
fn filtered(offer: &Offer, method: &str, bytes: Bytes) -> Bytes {
    let Ok(mut answer) = serde_json::from_slice::<serde_json::Value>(&bytes) else {
        return bytes;
    };
    match answer.get_mut("result") {
        Some(result) => offer.filter(method, result),
        None => return bytes,
    }
    serde_json::to_vec(&answer).map_or(bytes, Bytes::from)
}

/// A message's `params`, parsed.
fn params(bytes: &[u8]) -> Option<serde_json::Value> {
    serde_json::from_slice::<serde_json::Value>(bytes)
        .ok()
        .and_then(|mut v| v.get_mut("params").map(serde_json::Value::take))
}

fn newest_request_stream(st: &State) -> Option<StreamId> {
    st.pending.values().max_by_key(|p| p.seq).map(|p| p.stream)
}

/// Newline-delimited stdio needs each message on one line. Raw line breaks can only be insignificant white
/// space in valid JSON (inside strings they are escaped), so they become spaces; nothing else changes.
fn one_line(message: Bytes) -> Bytes {
    if !message.iter().any(|&b| b == b'\n' || b == b'\r') {
        return message;
    }
    message
        .iter()
        .map(|&b| if b == b'\n' || b == b'\r' { b' ' } else { b })
        .collect::<Vec<u8>>()
        .into()
}

#[cfg(test)]
mod tests {
    use super::one_line;
    use bytes::Bytes;

    #[test]
    fn pretty_printed_json_becomes_one_line() {
        let pretty = Bytes::from_static(b"{\r\n  \"a\": \"x\\ny\"\n}");
        let line = one_line(pretty);
        assert!(!line.contains(&b'\n'));
        let v: serde_json::Value = serde_json::from_slice(&line).unwrap();
        assert_eq!(v["a"], "x\ny");
    }
}
