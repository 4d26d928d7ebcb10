//! One supervised server process shared by every session of the machine, for when a process per session
//! costs too much memory (a node MCP server takes ~65 MB; the seed's machines have 256 MB).
//!
//! How sessions are kept apart on one stdio stream:
//! - every request id is rewritten to a number unique in the process (spliced into the original bytes, nothing
//!   else touched), and the client's own id is put back on the response, so no response crosses sessions;
//! - progress tokens are rewritten the same way, so progress goes to the session that asked for it;
//! - the first `initialize` goes to the server; later ones are answered from its result, and only the first
//!   `notifications/initialized` is forwarded;
//! - a server-to-client request (sampling, elicitation, roots) or a logging notification goes to the session
//!   with the newest request in flight — over stdio nothing else says which request caused it, which is why
//!   per-session mode is the default when memory allows;
//! - list-changed notifications go to every session; resource updates only to sessions that subscribed;
//! - when the process dies every attached session ends (its pending requests get errors at once, the next
//!   request gets 404), and the process is restarted with exponential backoff (1 s doubling to 30 s, reset
//!   after a minute of uptime). `/readyz` reports its state.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use bytes::Bytes;
use serde_json::value::RawValue;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::npm::CommandSource;
use super::{Instance, LaunchError, ServerEvent, Tag, process};
use crate::jsonrpc::{self, IdKey, Kind};
use crate::metrics::TenantMetrics;

/// The shared server and its multiplexer.
#[derive(Debug)]
pub struct SharedServer {
    pub(crate) source: Arc<CommandSource>,
    metrics: Arc<TenantMetrics>,
    mux: Mutex<Mux>,
    shutdown: CancellationToken,
    stopped: CancellationToken,
}

#[derive(Debug, Default)]
struct Mux {
    child: Option<mpsc::Sender<Bytes>>,
    child_stop: Option<CancellationToken>,
    status: Option<Result<String, String>>,
    restarts: u64,
    clients: HashMap<u64, mpsc::Sender<ServerEvent>>,
    next_client: u64,
    /// Upstream id → the session and id it stands for.
    outstanding: HashMap<u64, Outstanding>,
    /// Upstream progress token → the session and its own token.
    progress: HashMap<u64, (u64, Box<RawValue>)>,
    next_upstream: u64,
    init_result: Option<Box<RawValue>>,
    initialized_sent: bool,
    subscriptions: HashMap<u64, HashSet<String>>,
}

#[derive(Debug)]
struct Outstanding {
    client: u64,
    id: Box<RawValue>,
    key: IdKey,
    initialize: bool,
    progress: Option<u64>,
}

impl SharedServer {
    /// Starts the supervisor, which keeps one server process running until `shutdown`.
    pub fn start(
        source: Arc<CommandSource>,
        shutdown: CancellationToken,
        metrics: Arc<TenantMetrics>,
    ) -> Arc<Self> {
        let server = Arc::new(Self {
            source,
            metrics,
            mux: Mutex::default(),
            shutdown,
            stopped: CancellationToken::new(),
        });
        tokio::spawn(server.clone().supervise());
        server
    }

    fn lock(&self) -> MutexGuard<'_, Mux> {
        crate::vocab::lock(&self.mux)
    }

    pub fn readiness(&self) -> Result<String, String> {
        let mux = self.lock();
        let restarts = mux.restarts;
        match &mux.status {
            Some(Ok(s)) => Ok(format!("shared server up ({s}); {restarts} restarts")),
            Some(Err(s)) => Err(format!("shared server down: {s}; {restarts} restarts")),
            None => Err("shared server starting".into()),
        }
    }

    /// Stops the process (shutdown) and waits for the supervisor to finish.
    pub async fn stop(&self) {
        if let Some(stop) = self.lock().child_stop.clone() {
            stop.cancel();
        }
        let _ = tokio::time::timeout(Duration::from_secs(10), self.stopped.cancelled()).await;
    }

    async fn supervise(self: Arc<Self>) {
        const MIN_BACKOFF: Duration = Duration::from_secs(1);
        let mut backoff = MIN_BACKOFF;
        while !self.shutdown.is_cancelled() {
            let spec = self.source.spec().await;
            let started = Instant::now();
            match spec.and_then(|spec| process::spawn(&spec, Tag::named("shared".into()))) {
                Ok(instance) => {
                    self.metrics.instance_started("shared", "ok");
                    let reason = self.pump(instance).await;
                    if !self.shutdown.is_cancelled() {
                        self.metrics.instance_exited(&reason);
                    }
                    tracing::warn!("shared server {reason}");
                    self.reset(&reason);
                }
                Err(e) => {
                    self.metrics.instance_started("shared", "error");
                    tracing::error!("could not start the shared server: {e}");
                    self.lock().status = Some(Err(e.to_string()));
                }
            }
            if started.elapsed() > Duration::from_secs(60) {
                backoff = MIN_BACKOFF;
            }
            if self.shutdown.is_cancelled() {
                break;
            }
            self.lock().restarts += 1;
            self.metrics.restarted();
            tokio::select! {
                () = tokio::time::sleep(backoff) => {}
                () = self.shutdown.cancelled() => break,
            }
            backoff = (backoff * 2).min(Duration::from_secs(30));
        }
        self.stopped.cancel();
    }

    async fn pump(&self, instance: Instance) -> String {
        let Instance {
            to_server,
            mut from_server,
            stop,
            ..
        } = instance;
        {
            let mut mux = self.lock();
            mux.child = Some(to_server);
            mux.child_stop = Some(stop.clone());
            mux.status = Some(Ok("running".into()));
        }
        loop {
            let event = tokio::select! {
                event = from_server.recv() => event,
                () = self.shutdown.cancelled(), if !stop.is_cancelled() => { stop.cancel(); continue; }
            };
            match event {
                Some(ServerEvent::Message(bytes)) => self.on_child_message(bytes).await,
                Some(ServerEvent::Oversized { len, .. }) => {
                    tracing::warn!(
                        len,
                        "shared server wrote a message over the size limit; dropped it"
                    )
                }
                Some(ServerEvent::Exited { reason }) => return reason,
                None => return "is gone".into(),
            }
        }
    }

    /// The process is gone: every attached session ends, all routing state goes with it.
    fn reset(&self, reason: &str) {
        let clients = {
            let mut mux = self.lock();
            mux.child = None;
            mux.child_stop = None;
            mux.status = Some(Err(format!("the process {reason}; restarting")));
            mux.outstanding.clear();
            mux.progress.clear();
            mux.subscriptions.clear();
            mux.init_result = None;
            mux.initialized_sent = false;
            std::mem::take(&mut mux.clients)
        };
        for (_, client) in clients {
            let _ = client.try_send(ServerEvent::Exited {
                reason: format!("(shared) {reason}"),
            });
        }
    }

    /// A virtual instance for one session.
    pub async fn attach(self: &Arc<Self>) -> Result<Instance, LaunchError> {
        let (events, from_server) = mpsc::channel(256);
        let client = {
            let mut mux = self.lock();
            if mux.child.is_none() {
                let why = match &mux.status {
                    Some(Err(e)) => e.clone(),
                    _ => "starting".into(),
                };
                return Err(LaunchError::SharedDown(why));
            }
            let client = mux.next_client;
            mux.next_client += 1;
            mux.clients.insert(client, events.clone());
            client
        };
        let (to_server, mut outgoing) = mpsc::channel::<Bytes>(64);
        let stop = CancellationToken::new();
        let server = self.clone();
        let client_stop = stop.clone();
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    message = outgoing.recv() => match message {
                        Some(bytes) => server.on_client_message(client, bytes).await,
                        None => break,
                    },
                    () = client_stop.cancelled() => break,
                }
            }
            server.detach(client).await;
            let _ = events
                .send(ServerEvent::Exited {
                    reason: "detached from the shared server".into(),
                })
                .await;
        });
        Ok(Instance {
            to_server,
            from_server,
            stop,
            tag: Tag::named("shared".into()),
            spare: false,
        })
    }

    async fn detach(&self, client: u64) {
        let (child, cancels) = {
            let mut mux = self.lock();
            mux.clients.remove(&client);
            mux.subscriptions.remove(&client);
            mux.progress.retain(|_, (c, _)| *c != client);
            let mine: Vec<u64> = mux
                .outstanding
                .iter()
                .filter(|(_, o)| o.client == client)
                .map(|(k, _)| *k)
                .collect();
            for up in &mine {
                mux.outstanding.remove(up);
            }
            (mux.child.clone(), mine)
        };
        if let Some(child) = child {
            for up in cancels {
                let id = RawValue::from_string(up.to_string()).expect("a number is JSON");
                let _ = child
                    .send(jsonrpc::cancelled_notification(&id, "the session ended"))
                    .await;
            }
        }
    }

    async fn on_client_message(&self, client: u64, bytes: Bytes) {
        let Ok(msg) = jsonrpc::peek(bytes.clone()) else {
            return;
        };
        let Some(at) = jsonrpc::locate(&bytes) else {
            return;
        };
        let mut reply_direct = None;
        let forward = {
            let mut mux = self.lock();
            match msg.kind {
                Kind::Request if msg.method() == "initialize" && mux.init_result.is_some() => {
                    let result = mux.init_result.as_deref().map_or("{}", RawValue::get);
                    let id = at.id.map_or("null", RawValue::get);
                    reply_direct = Some(Bytes::from(format!(
                        r#"{{"jsonrpc":"2.0","id":{id},"result":{result}}}"#
                    )));
                    None
                }
                Kind::Request => {
                    let up = mux.next_upstream;
                    mux.next_upstream += 1;
                    let mut out =
                        jsonrpc::splice(&bytes, at.id.expect("requests have ids"), &up.to_string());
                    let mut progress = None;
                    if let Some(token) = at.meta_progress_token {
                        let t = mux.next_upstream;
                        mux.next_upstream += 1;
                        if let Some(again) =
                            jsonrpc::locate(&out).and_then(|a| a.meta_progress_token)
                        {
                            out = jsonrpc::splice(&out, again, &t.to_string());
                            mux.progress.insert(t, (client, token.to_owned()));
                            progress = Some(t);
                        }
                    }
                    match (msg.method(), &at.uri) {
                        ("resources/subscribe", Some(uri)) => {
                            mux.subscriptions
                                .entry(client)
                                .or_default()
                                .insert(uri.to_string());
                        }
                        ("resources/unsubscribe", Some(uri)) => {
                            mux.subscriptions
                                .entry(client)
                                .or_default()
                                .remove(uri.as_ref());
                        }
                        _ => {}
                    }
                    let outstanding = Outstanding {
                        client,
                        id: at.id.expect("requests have ids").to_owned(),
                        key: msg.key.clone().expect("requests have ids"),
                        initialize: msg.method() == "initialize",
                        progress,
                    };
                    mux.outstanding.insert(up, outstanding);
                    Some(out)
                }
                Kind::Notification if msg.method() == "notifications/initialized" => {
                    (!std::mem::replace(&mut mux.initialized_sent, true)).then_some(bytes.clone())
                }
                Kind::Notification if msg.method() == "notifications/cancelled" => {
                    let wanted = at.request_id.and_then(jsonrpc::peek_key);
                    let up = mux
                        .outstanding
                        .iter()
                        .find(|(_, o)| o.client == client && Some(&o.key) == wanted.as_ref())
                        .map(|(up, _)| *up);
                    match (up, at.request_id) {
                        (Some(up), Some(raw)) => {
                            Some(jsonrpc::splice(&bytes, raw, &up.to_string()))
                        }
                        _ => None,
                    }
                }
                // Other notifications, and responses to the server's own requests (its ids are unique already).
                _ => Some(bytes.clone()),
            }
        };
        if let Some(reply) = reply_direct {
            let sender = self.lock().clients.get(&client).cloned();
            if let Some(sender) = sender {
                let _ = sender.send(ServerEvent::Message(reply)).await;
            }
        }
        if let Some(out) = forward {
            let child = self.lock().child.clone();
            if let Some(child) = child {
                let _ = child.send(out).await;
            }
        }
    }

    async fn on_child_message(&self, bytes: Bytes) {
        let Ok(msg) = jsonrpc::peek(bytes.clone()) else {
            tracing::warn!("shared server wrote a message that is not JSON-RPC; dropped it");
            return;
        };
        let Some(at) = jsonrpc::locate(&bytes) else {
            return;
        };
        let mut deliveries: Vec<(mpsc::Sender<ServerEvent>, Bytes)> = Vec::new();
        let mut answer_child = None;
        {
            let mut mux = self.lock();
            let newest_client = mux
                .outstanding
                .iter()
                .max_by_key(|(up, _)| **up)
                .map(|(_, o)| o.client);
            match msg.kind {
                Kind::Response => {
                    let up = at.id.and_then(|id| id.get().parse::<u64>().ok());
                    let Some(o) = up.and_then(|up| mux.outstanding.remove(&up)) else {
                        tracing::warn!(
                            "shared server answered a request no session is waiting for"
                        );
                        return;
                    };
                    if let Some(t) = o.progress {
                        mux.progress.remove(&t);
                    }
                    if o.initialize && mux.init_result.is_none() {
                        mux.init_result = init_result(&bytes);
                    }
                    let out = jsonrpc::splice(
                        &bytes,
                        at.id.expect("responses found have ids"),
                        o.id.get(),
                    );
                    if let Some(c) = mux.clients.get(&o.client) {
                        deliveries.push((c.clone(), out));
                    }
                }
                Kind::Notification if msg.method() == "notifications/progress" => {
                    let token = at.progress_token.and_then(|t| t.get().parse::<u64>().ok());
                    if let (Some((client, own)), Some(raw)) =
                        (token.and_then(|t| mux.progress.get(&t)), at.progress_token)
                        && let Some(c) = mux.clients.get(client)
                    {
                        deliveries.push((c.clone(), jsonrpc::splice(&bytes, raw, own.get())));
                    }
                }
                Kind::Notification if msg.method().ends_with("/list_changed") => {
                    deliveries.extend(mux.clients.values().map(|c| (c.clone(), bytes.clone())));
                }
                Kind::Notification if msg.method() == "notifications/resources/updated" => {
                    let uri = at.uri.as_deref().unwrap_or_default();
                    for (client, uris) in &mux.subscriptions {
                        if uris.contains(uri)
                            && let Some(c) = mux.clients.get(client)
                        {
                            deliveries.push((c.clone(), bytes.clone()));
                        }
                    }
                }
                _ => match newest_client.and_then(|c| mux.clients.get(&c)) {
                    Some(c) => deliveries.push((c.clone(), bytes.clone())),
                    None if msg.kind == Kind::Request => {
                        answer_child = Some(jsonrpc::error_reply(
                            at.id,
                            jsonrpc::code::INTERNAL_ERROR,
                            "no session has a request in flight to route this request to",
                        ));
                    }
                    None => {
                        deliveries.extend(mux.clients.values().map(|c| (c.clone(), bytes.clone())))
                    }
                },
            }
        }
        for (client, out) in deliveries {
            let _ = client.send(ServerEvent::Message(out)).await;
        }
        if let Some(reply) = answer_child {
            let child = self.lock().child.clone();
            if let Some(child) = child {
                let _ = child.send(reply).await;
            }
        }
    }
}

/// The raw `result` of an initialize response.
fn init_result(bytes: &[u8]) -> Option<Box<RawValue>> {
    #[derive(serde::Deserialize)]
    struct R<'a> {
        #[serde(borrow)]
        result: Option<&'a RawValue>,
    }
    serde_json::from_slice::<R<'_>>(bytes)
        .ok()?
        .result
        .map(RawValue::to_owned)
}
