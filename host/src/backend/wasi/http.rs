//! `catwalk_http`: how a `wasm32-wasip1` guest makes HTTP requests, which WASIp1 has no interface for. The
//! guest names a request; catwalk makes it ([`crate::egress`]: the tenant's grants, secrets, TLS); the guest
//! streams the body in and the response out through a handle, without blocking: it waits on its input and its
//! requests together ([`wait`](self#functions)), so concurrent requests interleave with timers and stdin.
//! catwalk-js builds `fetch`, `http`/`https` and `dns.lookup` on these; `catwalk-guest` a blocking client.
//!
//! # Functions
//! Numbers are `i32` unless said; a negative result is [`ERROR`] (the message is read with `error`) or
//! [`PENDING`] (nothing yet: `wait`, then ask again).
//! - `request(spec, spec_len) -> handle`: `spec` is JSON, `{"method", "url", "headers": [[name, value], ...]}`;
//!   the body follows with `write`, and ends with `finish` (a request without a body: `finish` at once);
//! - `write(handle, ptr, len) -> 0 | PENDING` (the body's queue is full);
//! - `finish(handle) -> 0`;
//! - `head(handle, buf, len) -> n`: the response head as JSON, `{"status", "headers": [[name, value], ...]}`;
//!   `n > len` asks for a buffer of `n` bytes (nothing is consumed);
//! - `read(handle, buf, len) -> n`: body bytes, 0 at its end;
//! - `close(handle)`: ends the exchange (a request still in flight is abandoned);
//! - `error(buf, len) -> n`: the last error's message, as `head` gives the head;
//! - `wait(mask, timeout_ms: i64) -> ready`: waits until what `mask` asks for is ready (1: stdin has input,
//!   2: a request made progress) or `timeout_ms` passes (-1: no timeout), and says which (0: the time ran out);
//! - `lookup(name, name_len, buf, len) -> n`: the addresses a granted name resolves to, as a JSON array.

use std::collections::HashMap;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, HeaderName, HeaderValue, Method};
use http_body::{Body, Frame};
use serde::Deserialize;
use tokio::sync::{Notify, mpsc, oneshot};
use tokio_util::task::AbortOnDropHandle;
use wasmtime::{Caller, Extern, Linker};
use wasmtime_wasi::p2::Pollable;

use super::stdio::GuestStdin;
use crate::egress::{BoxError, Outbound};
use crate::policy::egress::{Scheme, Target};

pub const MODULE: &str = "catwalk_http";
pub const ERROR: i32 = -1;
pub const PENDING: i32 = -2;

/// Exchanges one instance may have open at once.
const MAX_OPEN: usize = 1024;
/// Body parts queued each way.
const QUEUE: usize = 8;
/// The largest request spec.
const MAX_SPEC: usize = 1 << 20;

/// Requests (and lookups) of a server's instances that the network did not answer: refused (no egress, or
/// not granted) or failed. Shared by the instances of one server.
pub type Unanswered = Arc<AtomicU64>;

/// A guest's network: its way out, its open exchanges, and what `wait` watches.
pub struct GuestNet {
    outbound: Option<Outbound>,
    unanswered: Unanswered,
    exchanges: HashMap<i32, Exchange>,
    next: i32,
    progress: Arc<Notify>,
    stdin: GuestStdin,
    last_error: String,
}

impl GuestNet {
    pub fn new(outbound: Option<Outbound>, unanswered: Unanswered, stdin: GuestStdin) -> Self {
        Self {
            outbound,
            unanswered,
            exchanges: HashMap::new(),
            next: 1,
            progress: Arc::new(Notify::new()),
            stdin,
            last_error: String::new(),
        }
    }

    fn fail(&mut self, message: impl Into<String>) -> i32 {
        self.last_error = message.into();
        ERROR
    }

    /// [`Self::fail`], for what the network did not answer.
    fn unanswered(&mut self, message: impl Into<String>) -> i32 {
        self.unanswered.fetch_add(1, Ordering::Relaxed);
        self.fail(message)
    }
}

/// What a store's data gives these functions.
pub trait HasNet: Send + 'static {
    fn net(&mut self) -> &mut GuestNet;
}

/// One request and its response, as the guest sees them.
struct Exchange {
    body: Option<mpsc::Sender<Bytes>>,
    head: Head,
    parts: mpsc::Receiver<Result<Bytes, String>>,
    partial: Bytes,
    ended: bool,
    _task: AbortOnDropHandle<()>,
}

enum Head {
    Waiting(oneshot::Receiver<Result<String, String>>),
    Ready(String),
    Failed(String),
    Taken,
}

#[derive(Deserialize)]
struct Spec {
    method: String,
    url: String,
    #[serde(default)]
    headers: Vec<(String, String)>,
}

/// A request body the guest writes: each part taken wakes the guest, which may have waited for room.
struct Fed {
    parts: mpsc::Receiver<Bytes>,
    progress: Arc<Notify>,
}

impl Body for Fed {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let polled = self.parts.poll_recv(cx);
        if polled.is_ready() {
            self.progress.notify_one();
        }
        polled.map(|part| part.map(|part| Ok(Frame::data(part))))
    }
}

fn memory<T>(caller: &mut Caller<'_, T>) -> Option<wasmtime::Memory> {
    caller.get_export("memory").and_then(Extern::into_memory)
}

fn read_guest<T>(caller: &mut Caller<'_, T>, ptr: i32, len: i32, max: usize) -> Option<Vec<u8>> {
    let (ptr, len) = (usize::try_from(ptr).ok()?, usize::try_from(len).ok()?);
    if len > max {
        return None;
    }
    memory(caller)?
        .data(&*caller)
        .get(ptr..ptr.checked_add(len)?)
        .map(<[u8]>::to_vec)
}

fn write_guest<T>(caller: &mut Caller<'_, T>, ptr: i32, bytes: &[u8]) -> Option<()> {
    let ptr = usize::try_from(ptr).ok()?;
    let memory = memory(caller)?;
    memory
        .data_mut(&mut *caller)
        .get_mut(ptr..ptr.checked_add(bytes.len())?)?
        .copy_from_slice(bytes);
    Some(())
}

/// Gives `text` to the guest as `head` and `error` do: written if it fits in `len`, its length either way.
fn give<T>(caller: &mut Caller<'_, T>, ptr: i32, len: i32, text: &[u8]) -> Option<i32> {
    let size = i32::try_from(text.len()).ok()?;
    if size <= len {
        write_guest(caller, ptr, text)?;
    }
    Some(size)
}

/// Adds `catwalk_http` to a WASIp1 linker.
pub fn add_to_linker<T: HasNet>(linker: &mut Linker<T>) -> wasmtime::Result<()> {
    linker.func_wrap(
        MODULE,
        "request",
        |mut caller: Caller<'_, T>, spec: i32, len: i32| -> i32 {
            let Some(bytes) = read_guest(&mut caller, spec, len, MAX_SPEC) else {
                return caller
                    .data_mut()
                    .net()
                    .fail("the request spec is not in the guest's memory");
            };
            start(caller.data_mut().net(), &bytes)
        },
    )?;
    linker.func_wrap(
        MODULE,
        "write",
        |mut caller: Caller<'_, T>, handle: i32, ptr: i32, len: i32| -> i32 {
            let Some(bytes) = read_guest(&mut caller, ptr, len, 16 << 20) else {
                return caller
                    .data_mut()
                    .net()
                    .fail("the body part is not in the guest's memory");
            };
            let net = caller.data_mut().net();
            let Some(exchange) = net.exchanges.get_mut(&handle) else {
                return net.fail("no such request");
            };
            let Some(body) = &exchange.body else {
                return net.fail("the request body was finished already");
            };
            match body.try_send(Bytes::from(bytes)) {
                Ok(()) => 0,
                Err(mpsc::error::TrySendError::Full(_)) => PENDING,
                // The request ended (refused, failed or answered without reading the body).
                Err(mpsc::error::TrySendError::Closed(_)) => 0,
            }
        },
    )?;
    linker.func_wrap(
        MODULE,
        "finish",
        |mut caller: Caller<'_, T>, handle: i32| -> i32 {
            let net = caller.data_mut().net();
            match net.exchanges.get_mut(&handle) {
                Some(exchange) => {
                    exchange.body = None;
                    0
                }
                None => net.fail("no such request"),
            }
        },
    )?;
    linker.func_wrap(
        MODULE,
        "head",
        |mut caller: Caller<'_, T>, handle: i32, ptr: i32, len: i32| -> i32 {
            let net = caller.data_mut().net();
            let Some(exchange) = net.exchanges.get_mut(&handle) else {
                return net.fail("no such request");
            };
            if let Head::Waiting(waiting) = &mut exchange.head {
                exchange.head = match waiting.try_recv() {
                    Ok(Ok(head)) => Head::Ready(head),
                    Ok(Err(message)) => Head::Failed(message),
                    Err(oneshot::error::TryRecvError::Empty) => return PENDING,
                    Err(oneshot::error::TryRecvError::Closed) => {
                        Head::Failed("the request was abandoned".into())
                    }
                };
            }
            let head = match &exchange.head {
                Head::Ready(head) => head.clone(),
                Head::Failed(message) => {
                    let message = message.clone();
                    return net.fail(message);
                }
                Head::Taken => return net.fail("the response head was read already"),
                Head::Waiting(_) => return PENDING,
            };
            match give(&mut caller, ptr, len, head.as_bytes()) {
                Some(size) => {
                    if size <= len
                        && let Some(exchange) = caller.data_mut().net().exchanges.get_mut(&handle)
                    {
                        exchange.head = Head::Taken;
                    }
                    size
                }
                None => caller
                    .data_mut()
                    .net()
                    .fail("the buffer is not in the guest's memory"),
            }
        },
    )?;
    linker.func_wrap(
        MODULE,
        "read",
        |mut caller: Caller<'_, T>, handle: i32, ptr: i32, len: i32| -> i32 {
            let net = caller.data_mut().net();
            let Some(exchange) = net.exchanges.get_mut(&handle) else {
                return net.fail("no such request");
            };
            if exchange.partial.is_empty() && !exchange.ended {
                match exchange.parts.try_recv() {
                    Ok(Ok(part)) => exchange.partial = part,
                    Ok(Err(message)) => {
                        exchange.ended = true;
                        return net.fail(message);
                    }
                    Err(mpsc::error::TryRecvError::Empty) => return PENDING,
                    Err(mpsc::error::TryRecvError::Disconnected) => exchange.ended = true,
                }
            }
            if exchange.partial.is_empty() {
                return 0;
            }
            let n = exchange
                .partial
                .len()
                .min(usize::try_from(len).unwrap_or(0));
            let part = exchange.partial.split_to(n);
            match write_guest(&mut caller, ptr, &part) {
                Some(()) => n as i32,
                None => caller
                    .data_mut()
                    .net()
                    .fail("the buffer is not in the guest's memory"),
            }
        },
    )?;
    linker.func_wrap(MODULE, "close", |mut caller: Caller<'_, T>, handle: i32| {
        caller.data_mut().net().exchanges.remove(&handle);
    })?;
    linker.func_wrap(
        MODULE,
        "error",
        |mut caller: Caller<'_, T>, ptr: i32, len: i32| -> i32 {
            let message = caller.data_mut().net().last_error.clone();
            give(&mut caller, ptr, len, message.as_bytes()).unwrap_or(ERROR)
        },
    )?;
    linker.func_wrap_async(
        MODULE,
        "wait",
        |mut caller: Caller<'_, T>, (mask, timeout): (i32, i64)| {
            let net = caller.data_mut().net();
            let mut stdin = net.stdin.clone();
            let progress = net.progress.clone();
            Box::new(async move {
                let input = async {
                    match mask & 1 {
                        0 => std::future::pending().await,
                        _ => stdin.ready().await,
                    }
                };
                let requests = async {
                    match mask & 2 {
                        0 => std::future::pending().await,
                        _ => progress.notified().await,
                    }
                };
                let time = async {
                    match u64::try_from(timeout) {
                        Ok(ms) => tokio::time::sleep(Duration::from_millis(ms)).await,
                        Err(_) => std::future::pending().await,
                    }
                };
                let ready = tokio::select! {
                    () = input => 1,
                    () = requests => 2,
                    () = time => 0,
                };
                Ok(ready)
            })
        },
    )?;
    linker.func_wrap_async(
        MODULE,
        "lookup",
        |mut caller: Caller<'_, T>, (name, name_len, ptr, len): (i32, i32, i32, i32)| {
            let read = read_guest(&mut caller, name, name_len, 1024);
            let outbound = caller.data_mut().net().outbound.clone();
            Box::new(async move {
                let answer = match (read.and_then(|n| String::from_utf8(n).ok()), outbound) {
                    (None, _) => {
                        return Ok(caller
                            .data_mut()
                            .net()
                            .fail("the name is not in the guest's memory"));
                    }
                    (Some(_), None) => Err("this server is granted no egress".to_owned()),
                    (Some(name), Some(outbound)) => lookup(&outbound, &name).await,
                };
                Ok(match answer {
                    Ok(json) => give(&mut caller, ptr, len, json.as_bytes()).unwrap_or(ERROR),
                    Err(message) => caller.data_mut().net().unanswered(message),
                })
            })
        },
    )?;
    Ok(())
}

/// Starts the exchange `spec` names: its handle, or [`ERROR`].
fn start(net: &mut GuestNet, spec: &[u8]) -> i32 {
    let Some(outbound) = net.outbound.clone() else {
        return net.unanswered("catwalk refused the request: this server is granted no egress (its tenant's egress grants are empty)");
    };
    if net.exchanges.len() >= MAX_OPEN {
        return net.fail(format!(
            "this server has {MAX_OPEN} requests open, the most it may"
        ));
    }
    let spec: Spec = match serde_json::from_slice(spec) {
        Ok(spec) => spec,
        Err(e) => return net.fail(format!("the request spec is not valid: {e}")),
    };
    let Ok(method) = Method::from_bytes(spec.method.as_bytes()) else {
        return net.fail(format!("{:?} is not an HTTP method", spec.method));
    };
    let mut headers = HeaderMap::new();
    for (name, value) in &spec.headers {
        let (Ok(name), Ok(value)) = (
            HeaderName::from_bytes(name.as_bytes()),
            HeaderValue::from_str(value),
        ) else {
            return net.fail(format!("the header {name:?} is not valid"));
        };
        headers.append(name, value);
    }
    let (writer, fed) = mpsc::channel(QUEUE);
    let (head_tx, head) = oneshot::channel();
    let (parts_tx, parts) = mpsc::channel(QUEUE);
    let progress = net.progress.clone();
    let unanswered = net.unanswered.clone();
    let body = Fed {
        parts: fed,
        progress: progress.clone(),
    };
    let task = tokio::spawn(async move {
        let sent = outbound.send(method, &spec.url, headers, body).await;
        let mut response = match sent {
            Ok(response) => response,
            Err(failure) => {
                unanswered.fetch_add(1, Ordering::Relaxed);
                let _ = head_tx.send(Err(failure.to_string()));
                progress.notify_one();
                return;
            }
        };
        let headers: Vec<(&str, String)> = response
            .headers()
            .iter()
            .map(|(name, value)| {
                (
                    name.as_str(),
                    String::from_utf8_lossy(value.as_bytes()).into_owned(),
                )
            })
            .collect();
        let head = serde_json::json!({"status": response.status().as_u16(), "headers": headers})
            .to_string();
        let _ = head_tx.send(Ok(head));
        progress.notify_one();
        let body = response.body_mut();
        while let Some(part) = body.next().await {
            let failed = part.is_err();
            if parts_tx.send(part).await.is_err() {
                return;
            }
            progress.notify_one();
            if failed {
                return;
            }
        }
        drop(parts_tx);
        progress.notify_one();
    });
    let handle = net.next;
    net.next = net.next.checked_add(1).unwrap_or(1);
    net.exchanges.insert(
        handle,
        Exchange {
            body: Some(writer),
            head: Head::Waiting(head),
            parts,
            partial: Bytes::new(),
            ended: false,
            _task: AbortOnDropHandle::new(task),
        },
    );
    handle
}

/// `dns.lookup` under the policy: a name some grant allows, resolved and checked as a request's would be.
async fn lookup(outbound: &Outbound, name: &str) -> Result<String, String> {
    let policy = outbound.tenant().policy();
    let target = match url::Host::parse(name) {
        Ok(url::Host::Domain(domain)) => Target::Name(domain.to_ascii_lowercase()),
        Ok(url::Host::Ipv4(ip)) => Target::Ip(ip.into()),
        Ok(url::Host::Ipv6(ip)) => Target::Ip(ip.into()),
        Err(_) => return Err(format!("{name:?} is not a host name")),
    };
    let granted = policy
        .grants
        .iter()
        .find(|g| g.host.matches(&target))
        .ok_or_else(|| format!("{name} is not granted to this server"))?;
    let port = match granted.ports {
        crate::policy::egress::Ports::One(port) => port,
        _ => granted.scheme.default_port(),
    };
    let scheme: Scheme = granted.scheme;
    let allowed = policy.check(scheme, target, port).map_err(|d| d.message)?;
    let addresses = policy.resolve(&allowed).await.map_err(|d| d.message)?;
    let list: Vec<serde_json::Value> = addresses
        .iter()
        .map(|a| serde_json::json!({"address": a.ip().to_string(), "family": if a.is_ipv4() { 4 } else { 6 }}))
        .collect();
    Ok(serde_json::Value::from(list).to_string())
}
