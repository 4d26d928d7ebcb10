//! Streamable HTTP, 2026-07-28 era, on the same URL as the 2025 era: no `initialize`, no session, no GET
//! stream. Every request carries its version, client info and client capabilities in `params._meta`, and its
//! version, method and target name in headers that must match the body.
//!
//! Nearly every stdio server speaks the 2025 era, so a modern request is served statelessly over a 2025-era
//! instance: catwalk takes one (a spare where one waits), performs the `initialize` handshake itself with the
//! client's capabilities and info from `_meta`, forwards the request, relays what relates to it (progress, and
//! log messages when `_meta` asks for a level), answers with the result marked complete, and stops the instance.
//! `server/discover` is answered from the server's `initialize` result. A server's own requests mid-call
//! (sampling, elicitation, roots) end the call with an `InputRequiredResult`; the instance waits, parked under
//! the `requestState` it names, for the client's retry with the answers.
//!
//! A server that speaks 2026-07-28 itself (asked once per tenant, [`speaks_modern`]) gets the requests as they
//! came.
//!
//! - [`listen`]: `subscriptions/listen`, the revision's stream of change notifications.
//! - [`params`]: `Mcp-Param-*` headers checked against the tool arguments they mirror.

mod listen;
mod params;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use futures_util::{StreamExt, stream};
use serde_json::{Map, Value, json};
use tokio::sync::{OwnedSemaphorePermit, broadcast, mpsc};
use tokio_stream::wrappers::ReceiverStream;
use tokio_util::sync::CancellationToken;

use super::{App, SUPPORTED_VERSIONS, Scope, events, launch, reserve_places};
use crate::backend::{Instance, Launcher, ServerEvent};
use crate::jsonrpc::{self, Kind, code};
use crate::lock;
use crate::session::random_hex;

/// The modern revisions catwalk serves.
pub const MODERN_VERSIONS: &[&str] = &["2026-07-28"];
/// The first modern revision: a version header from it on marks a modern request.
const FIRST_MODERN: &str = "2026-07-28";
/// What catwalk speaks to the 2025-era servers behind it.
const SERVER_VERSION: &str = "2025-11-25";

const META_VERSION: &str = "io.modelcontextprotocol/protocolVersion";
const META_CLIENT_INFO: &str = "io.modelcontextprotocol/clientInfo";
const META_CAPABILITIES: &str = "io.modelcontextprotocol/clientCapabilities";
const META_LOG_LEVEL: &str = "io.modelcontextprotocol/logLevel";
const META_SERVER_INFO: &str = "io.modelcontextprotocol/serverInfo";

/// Errors the 2026-07-28 revision defines.
mod modern_code {
    pub const HEADER_MISMATCH: i64 = -32020;
    pub const MISSING_CAPABILITY: i64 = -32021;
    pub const UNSUPPORTED_VERSION: i64 = -32022;
    pub const INVALID_PARAMS: i64 = -32602;
}

/// Methods of the 2025 era that a modern request may not use.
const LEGACY_ONLY: &[&str] = &[
    "initialize",
    "ping",
    "logging/setLevel",
    "resources/subscribe",
    "resources/unsubscribe",
];

/// Results a client may cache: catwalk adds a hint (none by default: `ttlMs` 0, `private`) where the server
/// gave none, since it cannot know how long the server's answer holds.
const CACHEABLE: &[&str] = &[
    "tools/list",
    "prompts/list",
    "resources/list",
    "resources/templates/list",
    "resources/read",
];

/// "Resource not found" in the 2025 era.
const RESOURCE_NOT_FOUND_2025: i64 = -32002;

/// The ids catwalk gives its own requests to the server; a client's ids pass through unchanged.
const INITIALIZE_ID: &str = "catwalk/initialize";
const SET_LEVEL_ID: &str = "catwalk/logging-level";

/// Whether a POST is of the modern era: its version header names 2026-07-28 or later, or its body's `_meta`
/// names a version.
/// The search for [`META_VERSION`] in a body, built once.
static META_VERSION_FINDER: std::sync::LazyLock<memchr::memmem::Finder<'static>> =
    std::sync::LazyLock::new(|| memchr::memmem::Finder::new(META_VERSION));

pub fn is_modern(headers: &HeaderMap, body: &[u8]) -> bool {
    if header_version(headers).is_some_and(|v| v >= FIRST_MODERN) {
        return true;
    }
    // Parsed only when the key appears at all: 2025-era requests pay a substring search.
    META_VERSION_FINDER.find(body).is_some()
        && serde_json::from_slice::<Value>(body).ok().is_some_and(|v| {
            v.pointer("/params/_meta")
                .and_then(|m| m.get(META_VERSION))
                .is_some()
        })
}

fn header_version(headers: &HeaderMap) -> Option<&str> {
    headers.get("mcp-protocol-version")?.to_str().ok()
}

/// Whether a GET or DELETE comes from a modern client (which has no stream or session to ask for).
pub fn is_modern_header(headers: &HeaderMap) -> bool {
    header_version(headers).is_some_and(|v| v >= FIRST_MODERN)
}

/// 405 for what the 2026 era removed (the GET stream, DELETE of a session).
pub fn method_not_allowed() -> Response {
    (
        StatusCode::METHOD_NOT_ALLOWED,
        [(header::ALLOW, HeaderValue::from_static("POST"))],
    )
        .into_response()
}

/// A JSON-RPC error reply with `status`.
fn reject(
    status: StatusCode,
    id: &Value,
    code: i64,
    message: &str,
    data: Option<Value>,
) -> Response {
    let mut error = json!({"code": code, "message": message});
    if let Some(data) = data {
        error["data"] = data;
    }
    json_reply(status, &json!({"jsonrpc": "2.0", "id": id, "error": error}))
}

/// 400 with -32020: a header that does not agree with the body.
fn header_mismatch(id: &Value, message: &str) -> Response {
    reject(
        StatusCode::BAD_REQUEST,
        id,
        modern_code::HEADER_MISMATCH,
        message,
        None,
    )
}

fn json_reply(status: StatusCode, body: &Value) -> Response {
    (
        status,
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        body.to_string(),
    )
        .into_response()
}

/// A header value as the spec encodes it: plain, or `=?base64?…?=` for what is not plain ASCII.
fn decode_header(value: &HeaderValue) -> Option<String> {
    let text = value.to_str().ok()?;
    match text
        .strip_prefix("=?base64?")
        .and_then(|rest| rest.strip_suffix("?="))
    {
        Some(encoded) => String::from_utf8(
            base64::engine::general_purpose::STANDARD
                .decode(encoded)
                .ok()?,
        )
        .ok(),
        None => Some(text.to_owned()),
    }
}

/// Serves one modern POST.
pub async fn post(scope: &Scope, headers: &HeaderMap, body: &Bytes) -> Response {
    let Ok(message) = serde_json::from_slice::<Value>(body) else {
        return reject(
            StatusCode::BAD_REQUEST,
            &Value::Null,
            code::PARSE_ERROR,
            "the body is not JSON",
            None,
        );
    };
    let Some(object) = message.as_object() else {
        return reject(
            StatusCode::BAD_REQUEST,
            &Value::Null,
            code::INVALID_REQUEST,
            "a 2026-07-28 POST carries one JSON-RPC request or notification, not a batch",
            None,
        );
    };
    let id = object.get("id").cloned().unwrap_or(Value::Null);
    let Some(method) = object.get("method").and_then(Value::as_str) else {
        return reject(
            StatusCode::BAD_REQUEST,
            &id,
            code::INVALID_REQUEST,
            "a 2026-07-28 POST carries a JSON-RPC request or notification (responses are not sent)",
            None,
        );
    };
    let params = object.get("params").cloned().unwrap_or(json!({}));
    let checked = match check(headers, &id, method, &params) {
        Ok(meta) => meta,
        Err(response) => return response,
    };
    if object.get("id").is_none() {
        // This revision defines no client notifications over HTTP; with no session, none has anywhere to go.
        return StatusCode::ACCEPTED.into_response();
    }
    let passthrough = speaks_modern(&scope.app).await;
    let failed = |(status, code, message): Failure| reject(status, &id, code, &message, None);
    if method == "subscriptions/listen" {
        return listen::listen(scope, id.clone(), params, checked, passthrough)
            .await
            .unwrap_or_else(failed);
    }
    if method == "tools/call"
        && let Err(response) =
            params::verify(scope, headers, &id, &params, &checked, passthrough).await
    {
        return response;
    }
    if passthrough {
        // The server speaks this revision itself: the request goes to it as it came.
        let exchange = Exchange {
            client_id: id.clone(),
            method: method.to_owned(),
            params,
            meta: checked,
            digest: String::new(),
            owner: scope.token,
            passthrough: true,
        };
        return serve(scope, exchange).await.unwrap_or_else(failed);
    }
    if LEGACY_ONLY.contains(&method) {
        return reject(
            StatusCode::NOT_FOUND,
            &id,
            code::METHOD_NOT_FOUND,
            &format!("{method} is not served to 2026-07-28 requests"),
            None,
        );
    }
    let mut params = without_modern_meta(params);
    // A retry's answers to the server's questions, and the state naming the request that asked them.
    let (state, responses) = match params.as_object_mut() {
        Some(fields) if INPUT_CAPABLE.contains(&method) => (
            fields.remove("requestState"),
            fields.remove("inputResponses"),
        ),
        _ => (None, None),
    };
    let digest = {
        let mut salient = params.clone();
        if let Some(fields) = salient.as_object_mut() {
            fields.remove("_meta");
        }
        salient.to_string()
    };
    let exchange = Exchange {
        client_id: id.clone(),
        method: method.to_owned(),
        params,
        meta: checked,
        digest,
        owner: scope.token,
        passthrough: false,
    };
    let served = match state {
        Some(state) => resume(scope, exchange, &state, responses).await,
        None => serve(scope, exchange).await,
    };
    served.unwrap_or_else(failed)
}

/// The request's `_meta` fields catwalk acts on.
#[derive(Debug, Clone)]
struct Meta {
    client_info: Value,
    capabilities: Value,
    log_level: Option<String>,
}

impl Meta {
    /// What a pooled instance was initialized with: only an instance initialized the same way serves a request.
    fn key(&self) -> String {
        json!([self.capabilities, self.client_info, self.log_level]).to_string()
    }
}

/// One tenant's instances kept between its 2026-07-28 requests, and what its listen streams and header checks
/// share.
///
/// - Idle: initialized server processes, so that a request does not pay a process start: at most [`POOL_MAX`];
///   one idle past [`POOL_IDLE`] is stopped (by [`Pool::reap`]). An instance serves one request at a time, and
///   only requests whose client declared the same capabilities and info (what its `initialize` carried) and
///   log level.
/// - Parked: requests whose server asked the client something, waiting for the client's retry with its
///   answers: at most [`PARKED_MAX`], each for [`PARKED_TTL`].
///
/// Everything is stopped when the pool goes (tenant removed or replaced, shutdown).
#[derive(Debug)]
pub struct Pool {
    idle: std::sync::Mutex<Vec<Idle>>,
    parked: std::sync::Mutex<HashMap<String, Parked>>,
    /// Whether the tenant's server speaks 2026-07-28 itself, once asked (see [`speaks_modern`]).
    era: tokio::sync::OnceCell<bool>,
    /// The list changes the tenant's instances announced, for its `subscriptions/listen` streams.
    changes: broadcast::Sender<Change>,
    /// The tenant's tools' mirrored parameters, from its server's `tools/list`; forgotten when the server says
    /// its tools changed.
    mirrored: std::sync::Mutex<Option<Arc<params::Mirrors>>>,
    /// Cancelled when the pool goes: its listen streams end with a result.
    closing: CancellationToken,
}

impl Default for Pool {
    fn default() -> Self {
        Self {
            idle: Default::default(),
            parked: Default::default(),
            era: Default::default(),
            changes: broadcast::channel(CHANGES_QUEUE).0,
            mirrored: Default::default(),
            closing: CancellationToken::new(),
        }
    }
}

/// A list a server said changed (a `notifications/*/list_changed`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Change {
    Tools,
    Prompts,
    Resources,
}

impl Change {
    const ALL: [Self; 3] = [Self::Tools, Self::Prompts, Self::Resources];

    fn method(self) -> &'static str {
        match self {
            Self::Tools => "notifications/tools/list_changed",
            Self::Prompts => "notifications/prompts/list_changed",
            Self::Resources => "notifications/resources/list_changed",
        }
    }

    /// Its name in a `subscriptions/listen` filter.
    fn filter(self) -> &'static str {
        match self {
            Self::Tools => "toolsListChanged",
            Self::Prompts => "promptsListChanged",
            Self::Resources => "resourcesListChanged",
        }
    }

    /// The server capability that announces it.
    fn capability(self) -> &'static str {
        match self {
            Self::Tools => "tools",
            Self::Prompts => "prompts",
            Self::Resources => "resources",
        }
    }

    fn of(method: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|c| c.method() == method)
    }
}

/// List changes a slow listen stream may fall behind by before it is told every list it follows changed.
const CHANGES_QUEUE: usize = 64;

#[derive(Debug)]
struct Idle {
    key: String,
    instance: Instance,
    initialized: Value,
    since: Instant,
}

/// A request waiting for the client's answers to its server's requests.
#[derive(Debug)]
struct Parked {
    instance: Instance,
    initialized: Value,
    /// The pool key of the instance, for a process server.
    pool: Option<String>,
    /// The id the server knows the request by.
    server_id: Value,
    /// What a retry must match: the method, its parameters (but `_meta`, `inputResponses`, `requestState`),
    /// and the bearer token.
    method: String,
    digest: String,
    owner: Option<[u8; 32]>,
    /// The server's requests, by the key the client answers under.
    asks: Vec<(String, Ask)>,
    /// Answers received so far (a retry that left some out is asked again for the rest).
    answered: Map<String, Value>,
    since: Instant,
    /// Its places under catwalk's and the tenant's caps: a waiting request holds a server like a session.
    places: Vec<OwnedSemaphorePermit>,
}

impl std::fmt::Debug for Ask {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ask")
            .field("method", &self.method)
            .finish_non_exhaustive()
    }
}

/// Idle initialized processes a tenant keeps at most.
pub const POOL_MAX: usize = 4;
/// How long an initialized process may wait for another request.
pub const POOL_IDLE: Duration = Duration::from_secs(60);
/// Requests a tenant may have waiting for the client's input at once; past it the oldest is stopped.
pub const PARKED_MAX: usize = 32;
/// How long a request waits for the client's retry with its input.
pub const PARKED_TTL: Duration = Duration::from_secs(600);

impl Pool {
    /// An idle instance initialized with `key`, and its `initialize` result.
    fn take(&self, key: &str) -> Option<(Instance, Value)> {
        let mut idle = lock(&self.idle);
        // One whose server exited meanwhile is dropped.
        idle.retain(|i| !i.instance.stop.is_cancelled() && !i.instance.to_server.is_closed());
        let at = idle.iter().rposition(|i| i.key == key)?;
        let found = idle.swap_remove(at);
        Some((found.instance, found.initialized))
    }

    /// Keeps an instance for the next request with the same `key`, stopping the oldest idle one if full.
    fn put(&self, key: String, instance: Instance, initialized: Value) {
        let mut idle = lock(&self.idle);
        if idle.len() >= POOL_MAX {
            let oldest = idle.remove(0);
            oldest.instance.stop.cancel();
        }
        idle.push(Idle {
            key,
            instance,
            initialized,
            since: Instant::now(),
        });
    }

    /// Keeps a request waiting for input under `state`, stopping the oldest waiting one if full.
    fn park(&self, parked: Parked, state: String) {
        let mut waiting = lock(&self.parked);
        if waiting.len() >= PARKED_MAX
            && let Some(oldest) = waiting
                .iter()
                .min_by_key(|(_, p)| p.since)
                .map(|(state, _)| state.clone())
            && let Some(oldest) = waiting.remove(&oldest)
        {
            oldest.instance.stop.cancel();
        }
        waiting.insert(state, parked);
    }

    /// The request waiting under `state`, if the retry matches it (method, parameters, token); a retry that
    /// does not match leaves it waiting.
    fn resume(
        &self,
        state: &str,
        method: &str,
        digest: &str,
        owner: Option<[u8; 32]>,
    ) -> Option<Parked> {
        let mut waiting = lock(&self.parked);
        let parked = waiting.get(state)?;
        if parked.method != method || parked.digest != digest || parked.owner != owner {
            return None;
        }
        waiting.remove(state)
    }

    /// Stops the instances idle past [`POOL_IDLE`] and the requests waiting past [`PARKED_TTL`] at `now`.
    pub fn reap(&self, now: Instant) {
        lock(&self.idle).retain(|i| {
            let keep = now.duration_since(i.since) < POOL_IDLE;
            if !keep {
                i.instance.stop.cancel();
            }
            keep
        });
        lock(&self.parked).retain(|_, p| {
            let keep = now.duration_since(p.since) < PARKED_TTL;
            if !keep {
                p.instance.stop.cancel();
            }
            keep
        });
    }

    /// Tells the tenant's listen streams that a list changed; a changed tool list also drops what catwalk knew
    /// of the tools' mirrored parameters.
    fn announce(&self, change: Change) {
        if change == Change::Tools {
            *lock(&self.mirrored) = None;
        }
        // No stream listening is not an error.
        let _ = self.changes.send(change);
    }

    /// Idle instances now.
    pub fn len(&self) -> usize {
        lock(&self.idle).len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Stops everything the pool holds, and ends its listen streams.
    fn clear(&self) {
        self.closing.cancel();
        lock(&self.idle)
            .drain(..)
            .for_each(|i| i.instance.stop.cancel());
        lock(&self.parked)
            .drain()
            .for_each(|(_, p)| p.instance.stop.cancel());
    }

    /// Reaps `pool` every few seconds until it is dropped or `shutdown`, when it stops what it holds.
    pub fn spawn_reaper(pool: &Arc<Self>, shutdown: CancellationToken) {
        let pool = Arc::downgrade(pool);
        tokio::spawn(async move {
            let mut ticks = tokio::time::interval(POOL_IDLE / 6);
            loop {
                tokio::select! {
                    _ = ticks.tick() => {}
                    () = shutdown.cancelled() => break,
                }
                let Some(pool) = pool.upgrade() else { return };
                pool.reap(Instant::now());
            }
            if let Some(pool) = pool.upgrade() {
                pool.clear();
            }
        });
    }
}

impl Drop for Pool {
    fn drop(&mut self) {
        self.clear();
    }
}

/// The checks of the 2026-07-28 transport, in its order: `_meta`, the version header against it, the version,
/// then `Mcp-Method` and `Mcp-Name` against the body.
#[allow(clippy::result_large_err)]
fn check(headers: &HeaderMap, id: &Value, method: &str, params: &Value) -> Result<Meta, Response> {
    let invalid = |message: &str| {
        reject(
            StatusCode::BAD_REQUEST,
            id,
            modern_code::INVALID_PARAMS,
            message,
            None,
        )
    };
    let mismatch = |message: String| header_mismatch(id, &message);
    let meta = params
        .get("_meta")
        .and_then(Value::as_object)
        .ok_or_else(|| {
            invalid(
                "params._meta is required: it carries the protocol version and client capabilities",
            )
        })?;
    let version = meta
        .get(META_VERSION)
        .and_then(Value::as_str)
        .ok_or_else(|| invalid(&format!("params._meta[\"{META_VERSION}\"] is required")))?;
    let capabilities = meta
        .get(META_CAPABILITIES)
        .filter(|c| c.is_object())
        .ok_or_else(|| {
            invalid(&format!(
                "params._meta[\"{META_CAPABILITIES}\"] is required (an object)"
            ))
        })?;
    match header_version(headers) {
        None => {
            return Err(mismatch(
                "Header mismatch: the MCP-Protocol-Version header is missing".into(),
            ));
        }
        Some(header) if header != version => {
            return Err(mismatch(format!(
                "Header mismatch: MCP-Protocol-Version header value '{header}' does not match body value '{version}'"
            )));
        }
        Some(_) => {}
    }
    if !MODERN_VERSIONS.contains(&version) {
        let supported: Vec<&str> = MODERN_VERSIONS
            .iter()
            .chain(SUPPORTED_VERSIONS.iter().rev())
            .copied()
            .collect();
        return Err(reject(
            StatusCode::BAD_REQUEST,
            id,
            modern_code::UNSUPPORTED_VERSION,
            "Unsupported protocol version",
            Some(json!({"supported": supported, "requested": version})),
        ));
    }
    match headers.get("mcp-method").and_then(decode_header) {
        None => {
            return Err(mismatch(
                "Header mismatch: the Mcp-Method header is missing".into(),
            ));
        }
        Some(header) if header != method => {
            return Err(mismatch(format!(
                "Header mismatch: Mcp-Method header value '{header}' does not match body value '{method}'"
            )));
        }
        Some(_) => {}
    }
    let named = match method {
        "tools/call" | "prompts/get" => params.get("name").and_then(Value::as_str),
        "resources/read" => params.get("uri").and_then(Value::as_str),
        _ => None,
    };
    if let Some(name) = named {
        match headers.get("mcp-name").map(decode_header) {
            None => {
                return Err(mismatch(
                    "Header mismatch: the Mcp-Name header is missing".into(),
                ));
            }
            Some(None) => {
                return Err(mismatch(
                    "Header mismatch: the Mcp-Name header is malformed".into(),
                ));
            }
            Some(Some(header)) if header != name => {
                return Err(mismatch(format!(
                    "Header mismatch: Mcp-Name header value '{header}' does not match body value '{name}'"
                )));
            }
            Some(Some(_)) => {}
        }
    }
    Ok(Meta {
        client_info: meta
            .get(META_CLIENT_INFO)
            .filter(|i| i.is_object())
            .cloned()
            .unwrap_or_else(|| json!({"name": "catwalk-modern-client", "version": "0"})),
        capabilities: capabilities.clone(),
        log_level: meta
            .get(META_LOG_LEVEL)
            .and_then(Value::as_str)
            .map(str::to_owned),
    })
}

/// `params` without the modern `_meta` keys, which mean nothing to a 2025-era server.
fn without_modern_meta(mut params: Value) -> Value {
    if let Some(meta) = params.get_mut("_meta").and_then(Value::as_object_mut) {
        meta.retain(|key, _| !key.starts_with("io.modelcontextprotocol/"));
        if meta.is_empty()
            && let Some(params) = params.as_object_mut()
        {
            params.remove("_meta");
        }
    }
    params
}

/// One modern request, bound for a 2025-era instance.
struct Exchange {
    client_id: Value,
    method: String,
    params: Value,
    meta: Meta,
    /// What a retry must repeat: the parameters but `_meta`, `inputResponses` and `requestState`.
    digest: String,
    /// The bearer token the request came with (its SHA-256).
    owner: Option<[u8; 32]>,
    /// The server speaks 2026-07-28 itself: no handshake, the request as it came, the answer as it goes.
    passthrough: bool,
}

/// What the instance sends back for the client: request-related notifications, then the final reply.
enum Out {
    Note(Bytes),
    Final(StatusCode, Bytes),
}

type Failure = (StatusCode, i64, String);

async fn serve(scope: &Scope, exchange: Exchange) -> Result<Response, Failure> {
    let answers = start(scope, exchange).await?;
    reply(answers, scope.app.keep_alive).await
}

/// Takes an instance for the request (an idle initialized one of the pool where one matches) and starts it:
/// what comes back for the client, notifications and then the final answer.
async fn start(scope: &Scope, exchange: Exchange) -> Result<mpsc::Receiver<Out>, Failure> {
    let app = &scope.app;
    let permits = places(app)?;
    // A server of this revision keeps nothing between requests: any idle one serves.
    let key = match exchange.passthrough {
        true => FIRST_MODERN.to_owned(),
        false => exchange.meta.key(),
    };
    let (instance, initialized, pool) = instance(app, key).await?;
    let prepared = Prepared {
        instance,
        initialized,
        pool,
        store: app.modern.clone(),
    };
    Ok(run(scope, prepared, exchange, Stage::Fresh, permits))
}

/// Places for one more server at work, under catwalk's cap and the tenant's.
fn places(app: &App) -> Result<Vec<OwnedSemaphorePermit>, Failure> {
    reserve_places(app).map_err(|e| {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            code::UNAVAILABLE,
            e.to_string(),
        )
    })
}

/// An instance for a request whose client is `key` (see [`Meta::key`]): an idle one of the pool initialized
/// for it, with its `initialize` result, or a new one. Processes are kept initialized between requests (a
/// start costs Node hundreds of ms), so the pool key is returned for one; a WASI guest is fresh per request (a
/// spare is ready in microseconds, and keeps no state from another request).
async fn instance(
    app: &App,
    key: String,
) -> Result<(Instance, Option<Value>, Option<String>), Failure> {
    let pooled = matches!(app.launcher, Launcher::PerSession(_));
    if pooled && let Some((instance, initialized)) = app.modern.take(&key) {
        return Ok((instance, Some(initialized), Some(key)));
    }
    let tag = match &*app.tenant {
        "" => "modern".into(),
        tenant => format!("{tenant}/modern").into(),
    };
    let instance = launch(app, tag).await.map_err(|e| {
        tracing::error!("could not start a server instance for a 2026-07-28 request: {e}");
        (StatusCode::BAD_GATEWAY, code::SERVER_GONE, e.to_string())
    })?;
    Ok((instance, None, pooled.then_some(key)))
}

/// A request of catwalk's own, served like a client's: the server's final answer.
async fn internal(scope: &Scope, exchange: Exchange) -> Result<Value, Failure> {
    let mut answers = start(scope, exchange).await?;
    while let Some(out) = answers.recv().await {
        if let Out::Final(_, bytes) = out {
            return serde_json::from_slice(&bytes)
                .map_err(|_| gone("the MCP server's answer is not JSON"));
        }
    }
    Err(gone("the MCP server ended without an answer"))
}

/// A retry carrying `requestState`: the answers go to the server that asked for them, and the request goes on
/// where it stopped. The state must name a request of this tenant, with the same method, parameters and bearer
/// token; an answer left out is asked for again.
async fn resume(
    scope: &Scope,
    exchange: Exchange,
    state: &Value,
    responses: Option<Value>,
) -> Result<Response, Failure> {
    let app = &scope.app;
    let invalid = || {
        (
            StatusCode::OK,
            modern_code::INVALID_PARAMS,
            "requestState is not one this server gave for this request, or it has expired"
                .to_owned(),
        )
    };
    let state = state.as_str().ok_or_else(invalid)?;
    let mut parked = app
        .modern
        .resume(state, &exchange.method, &exchange.digest, exchange.owner)
        .ok_or_else(invalid)?;
    if let Some(Value::Object(responses)) = responses {
        for (key, value) in responses {
            // Keys the server did not ask under are ignored; an answer is a result, an object.
            if parked.asks.iter().any(|(asked, _)| *asked == key) {
                if !value.is_object() {
                    let message = format!("inputResponses[\"{key}\"] is not a result object");
                    app.modern.park(parked, state.to_owned());
                    return Err((StatusCode::OK, modern_code::INVALID_PARAMS, message));
                }
                parked.answered.insert(key, value);
            }
        }
    }
    if parked
        .asks
        .iter()
        .any(|(key, _)| !parked.answered.contains_key(key))
    {
        let (body, state) = input_required(&exchange.client_id, &parked, Some(state.to_owned()));
        parked.since = Instant::now();
        app.modern.park(parked, state);
        return Ok((
            StatusCode::OK,
            [(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            )],
            body,
        )
            .into_response());
    }
    let permits = std::mem::take(&mut parked.places);
    let answers = parked
        .asks
        .iter()
        .map(|(key, ask)| json!({"jsonrpc": "2.0", "id": ask.id, "result": parked.answered[key]}))
        .collect();
    let prepared = Prepared {
        instance: parked.instance,
        initialized: Some(parked.initialized),
        pool: parked.pool,
        store: app.modern.clone(),
    };
    let stage = Stage::Resumed {
        server_id: parked.server_id,
        answers,
    };
    reply(
        run(scope, prepared, exchange, stage, permits),
        app.keep_alive,
    )
    .await
}

/// How long a server may take to answer `server/discover` when asked whether it speaks 2026-07-28.
const PROBE_WAIT: Duration = Duration::from_secs(10);
const PROBE_ID: &str = "catwalk/probe";

/// Whether the tenant's server speaks 2026-07-28 itself. Asked once, of an instance started for the question
/// and stopped after it (a 2025-era server may exit on a request before `initialize`): `server/discover` with
/// a 2026-07-28 `_meta` (the stdio transport's probe). A discover result naming the revision says yes; an
/// error, silence for [`PROBE_WAIT`] or an exit say no. A shared server is not asked (it is 2025-era).
async fn speaks_modern(app: &crate::http::App) -> bool {
    if matches!(app.launcher, Launcher::Shared(_)) {
        return false;
    }
    let asked = app
        .modern
        .era
        .get_or_try_init(|| async {
            let mut instance = launch(app, "probe".into()).await.map_err(|_| ())?;
            let probe = json!({"jsonrpc": "2.0", "id": PROBE_ID, "method": "server/discover",
                "params": {"_meta": {META_VERSION: FIRST_MODERN, META_CAPABILITIES: {}}}});
            let sent = instance.to_server.send(probe.to_string().into()).await;
            let modern = sent.is_ok()
                && tokio::time::timeout(PROBE_WAIT, async {
                    while let Some(ServerEvent::Message(bytes)) = instance.from_server.recv().await {
                        let Ok(answer) = serde_json::from_slice::<Value>(&bytes) else {
                            continue;
                        };
                        if answer["id"] == PROBE_ID {
                            return answer
                                .pointer("/result/supportedVersions")
                                .and_then(Value::as_array)
                                .is_some_and(|versions| {
                                    versions.iter().any(|v| v.as_str() == Some(FIRST_MODERN))
                                });
                        }
                    }
                    false
                })
                .await
                .unwrap_or(false);
            instance.stop.cancel();
            tracing::info!(
                tenant = %app.tenant,
                "the server speaks {}",
                if modern { "2026-07-28 itself: modern requests pass through" } else { "the 2025 era: catwalk bridges modern requests" }
            );
            Ok::<bool, ()>(modern)
        })
        .await;
    asked.is_ok_and(|modern| *modern)
}

/// Drives the request on its instance: what comes back for the client.
fn run(
    scope: &Scope,
    prepared: Prepared,
    exchange: Exchange,
    stage: Stage,
    permits: Vec<OwnedSemaphorePermit>,
) -> mpsc::Receiver<Out> {
    let app = &scope.app;
    let (out, answers) = mpsc::channel(app.limits.live_queue);
    tokio::spawn(drive(
        prepared,
        exchange,
        stage,
        out,
        app.limits.request_timeout,
        permits,
    ));
    answers
}

/// JSON when the final answer comes first, else an SSE stream of the notifications and then the answer.
async fn reply(
    mut answers: mpsc::Receiver<Out>,
    keep_alive: Duration,
) -> Result<Response, Failure> {
    match answers.recv().await {
        None => Err((
            StatusCode::BAD_GATEWAY,
            code::SERVER_GONE,
            "the MCP server ended without an answer".into(),
        )),
        Some(Out::Final(status, bytes)) => Ok((
            status,
            [(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            )],
            bytes,
        )
            .into_response()),
        Some(Out::Note(first)) => {
            let rest = ReceiverStream::new(answers).map(|out| match out {
                Out::Note(bytes) | Out::Final(_, bytes) => bytes,
            });
            let all = stream::iter([first])
                .chain(rest)
                .map(|bytes| events::message(None, None, &bytes));
            Ok(events::response(all, keep_alive))
        }
    }
}

/// An instance for one request: initialized already if it came from the pool (or waited for the client's
/// input), the pool key it goes back under (process servers), and the store of its tenant's pool and parked
/// requests.
struct Prepared {
    instance: Instance,
    initialized: Option<Value>,
    pool: Option<String>,
    store: Arc<Pool>,
}

/// Where a request stands when its instance is handed to [`drive`].
enum Stage {
    /// Not sent to the server yet.
    Fresh,
    /// Sent earlier as `server_id`; the server waits for `answers`, its requests' responses from the client's
    /// retry.
    Resumed {
        server_id: Value,
        answers: Vec<Value>,
    },
}

/// How the server's side of a request ended.
enum Ending {
    Answer(Value),
    /// The server asked the client something (its own requests, 2025 style): the client answers by retrying.
    Input(Vec<Ask>),
}

/// One request of the server's for the client.
struct Ask {
    id: Value,
    method: String,
    params: Value,
}

/// The server requests a 2026-07-28 client answers through input requests, and the capability each needs.
const INPUT_METHODS: &[(&str, &str)] = &[
    ("elicitation/create", "elicitation"),
    ("sampling/createMessage", "sampling"),
    ("roots/list", "roots"),
];

/// The client requests whose answer may be an input request.
const INPUT_CAPABLE: &[&str] = &["tools/call", "prompts/get", "resources/read"];

/// Runs one modern request on its instance, then returns the instance to its pool (if it has one and the
/// request ended with an answer), parks it (if the server asked the client something), or stops it. Ends
/// early, stopping the server's work, if the client goes away (the stream closing is the 2026 era's
/// cancellation).
async fn drive(
    prepared: Prepared,
    exchange: Exchange,
    stage: Stage,
    out: mpsc::Sender<Out>,
    timeout: Duration,
    places: Vec<OwnedSemaphorePermit>,
) {
    let Prepared {
        mut instance,
        initialized,
        pool,
        store,
    } = prepared;
    let server_id = match &stage {
        Stage::Fresh => exchange.client_id.clone(),
        Stage::Resumed { server_id, .. } => server_id.clone(),
    };
    let mut wire = Wire {
        to_server: &instance.to_server,
        from_server: &mut instance.from_server,
        out: &out,
        relay_logs: exchange.meta.log_level.is_some(),
        asks_allowed: INPUT_CAPABLE.contains(&exchange.method.as_str()),
        capabilities: &exchange.meta.capabilities,
        pool: &store,
    };
    let client_id = exchange.client_id.clone();
    let outcome = tokio::select! {
        outcome = tokio::time::timeout(timeout, wire.run(&exchange, initialized, stage)) => outcome.unwrap_or_else(|_| Err((
            StatusCode::OK,
            code::REQUEST_TIMEOUT,
            format!("the MCP server did not answer within {timeout:?}"),
        ))),
        () = out.closed() => {
            instance.stop.cancel();
            return;
        }
    };
    let reply = match outcome {
        Ok((Ending::Answer(mut answer), initialized)) => {
            // A retry has an id of its own; the server answers the id it was first sent.
            answer["id"] = client_id;
            match pool {
                Some(key) => store.put(key, instance, initialized),
                None => instance.stop.cancel(),
            }
            complete(&exchange.method, answer)
        }
        Ok((Ending::Input(asks), initialized)) => {
            let waiting = Parked {
                instance,
                initialized,
                pool,
                server_id,
                method: exchange.method.clone(),
                digest: exchange.digest.clone(),
                owner: exchange.owner,
                asks: asks
                    .into_iter()
                    .enumerate()
                    .map(|(n, ask)| (input_key(&ask.method, n), ask))
                    .collect(),
                answered: Map::new(),
                since: Instant::now(),
                places,
            };
            let reply = input_required(&client_id, &waiting, None);
            store.park(waiting, reply.1.clone());
            Out::Final(StatusCode::OK, reply.0.into())
        }
        Err((status, code, message)) => {
            instance.stop.cancel();
            Out::Final(
                status,
                jsonrpc::error_reply(
                    serde_json::value::to_raw_value(&client_id).ok().as_deref(),
                    code,
                    &message,
                ),
            )
        }
    };
    let _ = out.send(reply).await;
}

/// The key of the `n`th input request of a round: its kind and number (`elicitation-1`).
fn input_key(method: &str, n: usize) -> String {
    format!("{}-{}", method.split('/').next().unwrap_or("input"), n + 1)
}

/// An `InputRequiredResult` for the asks of `parked` not answered yet, and its `requestState` (`state`, or a
/// fresh random one: it names the parked request, which only a retry of the same tenant, bearer token, method
/// and parameters can take).
fn input_required(id: &Value, parked: &Parked, state: Option<String>) -> (String, String) {
    let state = state.unwrap_or_else(random_hex);
    let requests: Map<String, Value> = parked
        .asks
        .iter()
        .filter(|(key, _)| !parked.answered.contains_key(key))
        .map(|(key, ask)| {
            (
                key.clone(),
                json!({"method": ask.method, "params": ask.params}),
            )
        })
        .collect();
    let body = json!({"jsonrpc": "2.0", "id": id, "result": {
        "resultType": "input_required",
        "inputRequests": requests,
        "requestState": state,
    }});
    (body.to_string(), state)
}

struct Wire<'a> {
    to_server: &'a mpsc::Sender<Bytes>,
    from_server: &'a mut mpsc::Receiver<ServerEvent>,
    out: &'a mpsc::Sender<Out>,
    relay_logs: bool,
    /// Whether the request may end in input requests (tools/call, prompts/get, resources/read).
    asks_allowed: bool,
    /// The client's declared capabilities: the server's requests that need others are refused to it.
    capabilities: &'a Value,
    /// The tenant's pool, told of the list changes the server announces.
    pool: &'a Pool,
}

impl Wire<'_> {
    /// How the request ended, and the server's `initialize` result (for an instance kept for later).
    async fn run(
        &mut self,
        exchange: &Exchange,
        initialized: Option<Value>,
        stage: Stage,
    ) -> Result<(Ending, Value), Failure> {
        if exchange.passthrough {
            let request = json!({"jsonrpc": "2.0", "id": exchange.client_id,
                "method": exchange.method, "params": exchange.params});
            self.send(&request).await?;
            let answer = self.answer(&exchange.client_id, false).await?;
            return Ok((answer, initialized.unwrap_or_default()));
        }
        let initialized = match initialized {
            Some(initialized) => initialized,
            None => self.handshake(&exchange.meta).await?,
        };
        if exchange.method == "server/discover" {
            let answer: Value = serde_json::from_str(&discover(&exchange.client_id, &initialized))
                .expect("discover writes JSON");
            return Ok((Ending::Answer(answer), initialized));
        }
        let server_id = match stage {
            Stage::Fresh => {
                if let Some(level) = &exchange.meta.log_level {
                    let set = json!({"jsonrpc": "2.0", "id": SET_LEVEL_ID, "method": "logging/setLevel",
                        "params": {"level": level}});
                    self.send(&set).await?;
                    self.own_answer(&Value::from(SET_LEVEL_ID)).await?;
                }
                let request = json!({"jsonrpc": "2.0", "id": exchange.client_id,
                    "method": exchange.method, "params": exchange.params});
                self.send(&request).await?;
                exchange.client_id.clone()
            }
            Stage::Resumed { server_id, answers } => {
                for answer in &answers {
                    self.send(answer).await?;
                }
                server_id
            }
        };
        Ok((
            self.answer(&server_id, self.asks_allowed).await?,
            initialized,
        ))
    }

    /// `initialize` with the client's capabilities and info, then `notifications/initialized`: the server's
    /// `initialize` result.
    async fn handshake(&mut self, meta: &Meta) -> Result<Value, Failure> {
        let initialize = json!({"jsonrpc": "2.0", "id": INITIALIZE_ID, "method": "initialize", "params": {
            "protocolVersion": SERVER_VERSION,
            "capabilities": meta.capabilities,
            "clientInfo": meta.client_info,
        }});
        self.send(&initialize).await?;
        let answer = self.own_answer(&Value::from(INITIALIZE_ID)).await?;
        let Some(result) = answer.get("result") else {
            let reason = answer
                .pointer("/error/message")
                .and_then(Value::as_str)
                .unwrap_or("no result");
            return Err((
                StatusCode::BAD_GATEWAY,
                code::SERVER_GONE,
                format!("the MCP server refused initialize: {reason}"),
            ));
        };
        let result = result.clone();
        self.send(&json!({"jsonrpc": "2.0", "method": "notifications/initialized"}))
            .await?;
        Ok(result)
    }

    async fn send(&self, message: &Value) -> Result<(), Failure> {
        self.to_server
            .send(message.to_string().into())
            .await
            .map_err(|_| gone("the MCP server is gone"))
    }

    /// The answer to one of catwalk's own requests (no input requests come of those).
    async fn own_answer(&mut self, id: &Value) -> Result<Value, Failure> {
        match self.answer(id, false).await? {
            Ending::Answer(answer) => Ok(answer),
            Ending::Input(_) => Err(gone("the MCP server asked for input during set-up")),
        }
    }

    /// Reads until the answer to `id`, relaying request-related notifications. A server request for the
    /// client ends the wait when `asks_allowed` (with any others the server sent at once); otherwise it is
    /// refused to the server, as is one the client has no capability for. A ping is answered.
    async fn answer(&mut self, id: &Value, asks_allowed: bool) -> Result<Ending, Failure> {
        let wanted = serde_json::value::to_raw_value(id)
            .ok()
            .and_then(|raw| jsonrpc::peek_key(&raw));
        let mut asks = Vec::new();
        loop {
            let event = if asks.is_empty() {
                self.from_server.recv().await
            } else {
                // Asks the server sent together go to the client together.
                match self.from_server.try_recv() {
                    Ok(event) => Some(event),
                    Err(_) => return Ok(Ending::Input(asks)),
                }
            };
            let bytes = match event {
                Some(ServerEvent::Message(bytes)) => bytes,
                Some(ServerEvent::Oversized { len, .. }) => {
                    return Err(gone(&format!(
                        "the MCP server wrote a message of {len} bytes, over the limit"
                    )));
                }
                Some(ServerEvent::Exited { reason }) => {
                    return Err(gone(&format!("the MCP server {reason}")));
                }
                None => return Err(gone("the MCP server is gone")),
            };
            let Ok(peeked) = jsonrpc::peek(bytes.clone()) else {
                continue;
            };
            match peeked.kind {
                Kind::Response if peeked.key.is_some() && peeked.key == wanted => {
                    let answer = serde_json::from_slice(&bytes)
                        .map_err(|_| gone("the MCP server's answer is not JSON"))?;
                    return Ok(Ending::Answer(answer));
                }
                Kind::Response => {}
                Kind::Request => {
                    let method = peeked.method();
                    let needs = INPUT_METHODS
                        .iter()
                        .find(|(m, _)| *m == method)
                        .map(|(_, capability)| *capability);
                    let message: Value = serde_json::from_slice(&bytes).unwrap_or_default();
                    let reply = match needs {
                        _ if method == "ping" => refusal(&message, RELAY_REFUSAL),
                        Some(capability)
                            if asks_allowed && self.capabilities.get(capability).is_some() =>
                        {
                            asks.push(Ask {
                                id: message["id"].clone(),
                                method: method.to_owned(),
                                params: message.get("params").cloned().unwrap_or(json!({})),
                            });
                            continue;
                        }
                        // The 2026 era's own error: a server that passes it on tells the client what it lacks.
                        Some(capability) => {
                            json!({"jsonrpc": "2.0", "id": message["id"], "error": {
                                "code": modern_code::MISSING_CAPABILITY,
                                "message": format!("the client did not declare the {capability} capability for this request"),
                                "data": {"requiredCapabilities": {capability: {}}},
                            }})
                        }
                        None => refusal(&message, RELAY_REFUSAL),
                    };
                    let _ = self.to_server.send(reply.to_string().into()).await;
                }
                Kind::Notification => {
                    let method = peeked.method();
                    if let Some(change) = Change::of(method) {
                        self.pool.announce(change);
                    }
                    let relay = match method {
                        "notifications/progress" => true,
                        "notifications/message" => self.relay_logs,
                        _ => false,
                    };
                    if relay && self.out.send(Out::Note(bytes)).await.is_err() {
                        return Err(gone("the client went away"));
                    }
                }
            }
        }
    }
}

/// Why a server's request for the client goes unanswered when it is not one the revision relays.
const RELAY_REFUSAL: &str = "is not relayed to 2026-07-28 clients";

/// The answer to a server's request that no client will see: a ping is answered, anything else refused with
/// `why` after its method.
fn refusal(request: &Value, why: &str) -> Value {
    match request["method"].as_str() {
        Some("ping") => json!({"jsonrpc": "2.0", "id": request["id"], "result": {}}),
        method => json!({"jsonrpc": "2.0", "id": request["id"], "error": {
            "code": code::METHOD_NOT_FOUND,
            "message": format!("{} {why}", method.unwrap_or("a request")),
        }}),
    }
}

fn gone(message: &str) -> Failure {
    (
        StatusCode::BAD_GATEWAY,
        code::SERVER_GONE,
        message.to_owned(),
    )
}

/// The answer as a 2026-07-28 result: marked complete, with a caching hint where one belongs. An unknown
/// method is a 404, a client capability the server needs and the request did not declare a 400. A resource
/// not found is -32602 in this revision (the 2025 era's servers say -32002).
fn complete(method: &str, mut answer: Value) -> Out {
    if method == "resources/read"
        && let Some(code) = answer.pointer_mut("/error/code")
        && code.as_i64() == Some(RESOURCE_NOT_FOUND_2025)
    {
        *code = Value::from(modern_code::INVALID_PARAMS);
    }
    if let Some(result) = answer.get_mut("result").and_then(Value::as_object_mut) {
        result
            .entry("resultType")
            .or_insert_with(|| Value::from("complete"));
        if CACHEABLE.contains(&method) && result.get("resultType") == Some(&Value::from("complete"))
        {
            result.entry("ttlMs").or_insert_with(|| Value::from(0));
            result
                .entry("cacheScope")
                .or_insert_with(|| Value::from("private"));
        }
    }
    let status = match answer.pointer("/error/code").and_then(Value::as_i64) {
        Some(code::METHOD_NOT_FOUND) => StatusCode::NOT_FOUND,
        Some(modern_code::MISSING_CAPABILITY) => StatusCode::BAD_REQUEST,
        _ => StatusCode::OK,
    };
    Out::Final(status, answer.to_string().into())
}

/// `server/discover` from the server's `initialize` result.
fn discover(id: &Value, initialized: &Value) -> String {
    let supported: Vec<&str> = MODERN_VERSIONS
        .iter()
        .chain(SUPPORTED_VERSIONS.iter().rev())
        .copied()
        .collect();
    let server_info = initialized
        .get("serverInfo")
        .cloned()
        .unwrap_or_else(|| json!({"name": "unknown", "version": "0"}));
    let mut result = Map::new();
    result.insert("resultType".into(), "complete".into());
    result.insert("supportedVersions".into(), json!(supported));
    result.insert(
        "capabilities".into(),
        initialized
            .get("capabilities")
            .cloned()
            .unwrap_or_else(|| json!({})),
    );
    result.insert("serverInfo".into(), server_info.clone());
    if let Some(instructions) = initialized.get("instructions") {
        result.insert("instructions".into(), instructions.clone());
    }
    result.insert("_meta".into(), json!({META_SERVER_INFO: server_info}));
    json!({"jsonrpc": "2.0", "id": id, "result": result}).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (k, v) in pairs {
            map.insert(*k, HeaderValue::from_str(v).unwrap());
        }
        map
    }

    #[test]
    fn modern_requests_are_told_apart_by_header_or_meta() {
        let legacy = br#"{"jsonrpc":"2.0","id":1,"method":"tools/list"}"#;
        assert!(!is_modern(&HeaderMap::new(), legacy));
        assert!(!is_modern(
            &headers(&[("mcp-protocol-version", "2025-11-25")]),
            legacy
        ));
        assert!(is_modern(
            &headers(&[("mcp-protocol-version", "2026-07-28")]),
            legacy
        ));
        let meta = br#"{"jsonrpc":"2.0","id":1,"method":"tools/list","params":{"_meta":{"io.modelcontextprotocol/protocolVersion":"1900-01-01"}}}"#;
        assert!(is_modern(&HeaderMap::new(), meta));
        // The key in a tool's arguments is not a version in `_meta`.
        let argument = br#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"arguments":{"io.modelcontextprotocol/protocolVersion":"x"}}}"#;
        assert!(!is_modern(&HeaderMap::new(), argument));
    }

    /// An instance put in `pool`: its stop token, and its input (alive while held).
    fn idle(pool: &Pool, key: &str) -> (CancellationToken, mpsc::Receiver<Bytes>) {
        let (to_server, server_in) = mpsc::channel(1);
        let (_events, from_server) = mpsc::channel(1);
        let stop = CancellationToken::new();
        let instance = Instance {
            to_server,
            from_server,
            stop: stop.clone(),
            tag: Default::default(),
            spare: false,
        };
        pool.put(key.into(), instance, json!({}));
        (stop, server_in)
    }

    #[test]
    fn the_pool_is_bounded_keyed_and_reaped() {
        let pool = Pool::default();
        let (stops, _inputs): (Vec<_>, Vec<_>) = (0..=POOL_MAX)
            .map(|i| idle(&pool, &format!("k{i}")))
            .unzip();
        // Over the bound, the oldest idle one is stopped.
        assert!(stops[0].is_cancelled());
        assert!(stops[1..].iter().all(|s| !s.is_cancelled()));
        assert_eq!(pool.len(), POOL_MAX);
        assert!(pool.take("k0").is_none(), "stopped, not kept");
        assert!(pool.take("nope").is_none(), "only the same key");
        let (taken, _) = pool.take("k1").expect("kept for its key");
        assert!(!taken.stop.is_cancelled());
        // Idle past the limit: stopped.
        pool.reap(Instant::now() + POOL_IDLE);
        assert!(pool.is_empty());
        assert!(stops[2..].iter().all(|s| s.is_cancelled()));
        // Whatever a pool holds is stopped when it goes.
        let (last, _input) = idle(&pool, "k");
        drop(pool);
        assert!(last.is_cancelled());
    }

    #[test]
    fn encoded_header_values_are_decoded() {
        let plain = HeaderValue::from_static("get_weather");
        assert_eq!(decode_header(&plain).as_deref(), Some("get_weather"));
        let encoded = HeaderValue::from_static("=?base64?SGVsbG8sIOS4lueVjA==?=");
        assert_eq!(decode_header(&encoded).as_deref(), Some("Hello, 世界"));
        let broken = HeaderValue::from_static("=?base64?***?=");
        assert_eq!(decode_header(&broken), None);
    }

    #[test]
    fn results_are_marked_complete_and_lists_get_a_caching_hint() {
        let Out::Final(status, bytes) = complete(
            "tools/list",
            json!({"jsonrpc": "2.0", "id": 1, "result": {"tools": []}}),
        ) else {
            panic!("a final answer");
        };
        assert_eq!(status, StatusCode::OK);
        let body: Value = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(body["result"]["resultType"], "complete");
        assert_eq!(body["result"]["ttlMs"], 0);
        assert_eq!(body["result"]["cacheScope"], "private");
        let Out::Final(status, _) = complete(
            "nope",
            json!({"jsonrpc": "2.0", "id": 1, "error": {"code": -32601, "message": "no"}}),
        ) else {
            panic!("a final answer");
        };
        assert_eq!(status, StatusCode::NOT_FOUND);
        let Out::Final(_, bytes) = complete(
            "resources/read",
            json!({"jsonrpc": "2.0", "id": 1, "error": {"code": -32002, "message": "not found"}}),
        ) else {
            panic!("a final answer");
        };
        let body: Value = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(body["error"]["code"], -32602);
    }
}
