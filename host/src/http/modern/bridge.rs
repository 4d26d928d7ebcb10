//! Bridging a 2026-07-28 request to the tenant's server: an instance for it (an idle initialized one from
//! the pool, or a new one), the request driven on it, and the answer back as JSON or an SSE stream. A 2025-era
//! server's own requests mid-call park the request, with its instance, until the client retries with its
//! answers (`InputRequiredResult`, then `requestState`); a server that speaks 2026-07-28 itself (asked once
//! per tenant, [`speaks_modern`]) gets the request as it came.

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use futures_util::{StreamExt, stream};
use serde_json::{Map, Value, json};
use tokio::sync::{OwnedSemaphorePermit, mpsc};
use tokio_stream::wrappers::ReceiverStream;

use super::checks::{Meta, modern_code};
use super::pool::{Parked, Pool};
use super::wire::{Wire, complete, gone};
use super::{FIRST_MODERN, META_CAPABILITIES, META_VERSION};
use crate::audit::Call;
use crate::backend::{Instance, Launcher, ServerEvent};
use crate::http::{App, Scope, events};
use crate::jsonrpc::{self, code};
use crate::policy::offer::Offer;
use crate::vocab::random_hex;

/// One modern request, bound for a 2025-era instance.
pub(super) struct Exchange {
    pub(super) client_id: Value,
    pub(super) method: String,
    pub(super) params: Value,
    pub(super) meta: Meta,
    /// What a retry must repeat: the parameters but `_meta`, `inputResponses` and `requestState`.
    pub(super) digest: String,
    /// The bearer token the request came with (its SHA-256).
    pub(super) owner: Option<[u8; 32]>,
    /// The server speaks 2026-07-28 itself: no handshake, the request as it came, the answer as it goes.
    pub(super) passthrough: bool,
    /// The request's record in the audit trail, written with its answer.
    pub(super) call: Option<Call>,
}

/// What the instance sends back for the client: request-related notifications, then the final reply.
pub(super) enum Out {
    Note(Bytes),
    Final(StatusCode, Bytes),
}

pub(super) type Failure = (StatusCode, i64, String);

pub(super) async fn serve(scope: &Scope, exchange: Exchange) -> Result<Response, Failure> {
    let answers = start(scope, exchange).await?;
    reply(answers, scope.app.keep_alive).await
}

/// Takes an instance for the request (an idle initialized one of the pool where one matches) and starts it:
/// what comes back for the client, notifications and then the final answer.
pub(super) async fn start(
    scope: &Scope,
    exchange: Exchange,
) -> Result<mpsc::Receiver<Out>, Failure> {
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
        store: app.front.clone(),
    };
    Ok(run(scope, prepared, exchange, Stage::Fresh, permits))
}

/// Places for one more server at work, under catwalk's cap and the tenant's.
pub(super) fn places(app: &App) -> Result<Vec<OwnedSemaphorePermit>, Failure> {
    app.reserve().map_err(|e| {
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
pub(super) async fn instance(
    app: &App,
    key: String,
) -> Result<(Instance, Option<Value>, Option<String>), Failure> {
    let pooled = matches!(app.launcher, Launcher::PerSession(_));
    if pooled && let Some((instance, initialized)) = app.front.take(&key) {
        return Ok((instance, Some(initialized), Some(key)));
    }
    let tag = match &*app.tenant {
        "" => "modern".into(),
        tenant => format!("{tenant}/modern").into(),
    };
    let starting = crate::traces::child("instance start");
    let instance = app.launch(tag).await;
    drop(starting);
    let instance = instance.map_err(|e| {
        tracing::error!("could not start a server instance for a 2026-07-28 request: {e}");
        (StatusCode::BAD_GATEWAY, code::SERVER_GONE, e.to_string())
    })?;
    Ok((instance, None, pooled.then_some(key)))
}

/// A request of catwalk's own, served like a client's: the server's final answer.
pub(super) async fn internal(scope: &Scope, exchange: Exchange) -> Result<Value, Failure> {
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
pub(super) async fn resume(
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
        .front
        .resume(state, &exchange.method, &exchange.digest, exchange.owner)
        .ok_or_else(invalid)?;
    if let Some(Value::Object(responses)) = responses {
        for (key, value) in responses {
            // Keys the server did not ask under are ignored; an answer is a result, an object.
            if parked.asks.iter().any(|(asked, _)| *asked == key) {
                if !value.is_object() {
                    let message = format!("inputResponses[\"{key}\"] is not a result object");
                    app.front.park(parked, state.to_owned());
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
        app.front.park(parked, state);
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
        store: app.front.clone(),
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
pub(super) const PROBE_WAIT: Duration = Duration::from_secs(10);
pub(super) const PROBE_ID: &str = "catwalk/probe";

/// Whether the tenant's server speaks 2026-07-28 itself. Asked once, of an instance started for the question
/// and stopped after it (a 2025-era server may exit on a request before `initialize`): `server/discover` with
/// a 2026-07-28 `_meta` (the stdio transport's probe). A discover result naming the revision says yes; an
/// error, silence for [`PROBE_WAIT`] or an exit say no. A shared server is not asked (it is 2025-era).
pub(super) async fn speaks_modern(app: &App) -> bool {
    if matches!(app.launcher, Launcher::Shared(_)) {
        return false;
    }
    let asked = app
        .front
        .era
        .get_or_try_init(|| async {
            let mut instance = app.launch("probe".into()).await.map_err(|_| ())?;
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
pub(super) fn run(
    scope: &Scope,
    prepared: Prepared,
    exchange: Exchange,
    stage: Stage,
    permits: Vec<OwnedSemaphorePermit>,
) -> mpsc::Receiver<Out> {
    let app = &scope.app;
    let (out, answers) = mpsc::channel(app.limits.live_queue);
    let answering = crate::traces::child("server answer");
    tokio::spawn(drive(
        prepared,
        exchange,
        stage,
        out,
        app.limits.request_timeout,
        permits,
        (app.offer.clone(), answering),
    ));
    answers
}

/// JSON when the final answer comes first, else an SSE stream of the notifications and then the answer.
pub(super) async fn reply(
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
                .map(|bytes| events::event(None, None, &bytes));
            Ok(events::response(all, keep_alive))
        }
    }
}

/// An instance for one request: initialized already if it came from the pool (or waited for the client's
/// input), the pool key it goes back under (process servers), and the store of its tenant's pool and parked
/// requests.
pub(super) struct Prepared {
    pub(super) instance: Instance,
    pub(super) initialized: Option<Value>,
    pub(super) pool: Option<String>,
    pub(super) store: Arc<Pool>,
}

/// Where a request stands when its instance is handed to [`drive`].
pub(super) enum Stage {
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
pub(super) enum Ending {
    Answer(Value),
    /// The server asked the client something (its own requests, 2025 style): the client answers by retrying.
    Input(Vec<Ask>),
}

/// One request of the server's for the client.
pub(super) struct Ask {
    pub(super) id: Value,
    pub(super) method: String,
    pub(super) params: Value,
}

/// The server requests a 2026-07-28 client answers through input requests, and the capability each needs.
pub(super) const INPUT_METHODS: &[(&str, &str)] = &[
    ("elicitation/create", "elicitation"),
    ("sampling/createMessage", "sampling"),
    ("roots/list", "roots"),
];

/// The client requests whose answer may be an input request.
pub(super) const INPUT_CAPABLE: &[&str] = &["tools/call", "prompts/get", "resources/read"];

/// Runs one modern request on its instance, then returns the instance to its pool (if it has one and the
/// request ended with an answer), parks it (if the server asked the client something), or stops it. Ends
/// early, stopping the server's work, if the client goes away (the stream closing is the 2026 era's
/// cancellation).
pub(super) async fn drive(
    prepared: Prepared,
    mut exchange: Exchange,
    stage: Stage,
    out: mpsc::Sender<Out>,
    timeout: Duration,
    places: Vec<OwnedSemaphorePermit>,
    (offer, mut answering): (Option<Arc<Offer>>, Option<opentelemetry::global::BoxedSpan>),
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
            if let Some(offer) = offer.filter(|o| o.filters(&exchange.method))
                && let Some(result) = answer.get_mut("result")
            {
                offer.filter(&exchange.method, result);
            }
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
            if let Some(span) = &mut answering {
                crate::traces::failed(span, code);
            }
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
    if let Out::Final(_, bytes) = &reply {
        if let Some(call) = exchange.call.take() {
            call.answered(bytes);
        }
        if let Some(span) = answering.take() {
            crate::traces::answered(span, bytes);
        }
    }
    let _ = out.send(reply).await;
}

/// The key of the `n`th input request of a round: its kind and number (`elicitation-1`).
pub(super) fn input_key(method: &str, n: usize) -> String {
    format!("{}-{}", method.split('/').next().unwrap_or("input"), n + 1)
}

/// An `InputRequiredResult` for the asks of `parked` not answered yet, and its `requestState` (`state`, or a
/// fresh random one: it names the parked request, which only a retry of the same tenant, bearer token, method
/// and parameters can take).
pub(super) fn input_required(
    id: &Value,
    parked: &Parked,
    state: Option<String>,
) -> (String, String) {
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

impl std::fmt::Debug for Ask {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ask")
            .field("method", &self.method)
            .finish_non_exhaustive()
    }
}
