//! The wire between catwalk and a 2025-era server for one 2026-07-28 request: the `initialize` handshake
//! with the client's capabilities, the request, and everything the server says until its answer (progress and
//! log notifications relayed, its own requests for the client collected or refused), then the answer made a
//! 2026-07-28 result.

use axum::body::Bytes;
use axum::http::StatusCode;
use serde_json::{Map, Value, json};
use tokio::sync::mpsc;

use super::bridge::{Ask, Ending, Exchange, Failure, INPUT_METHODS, Out, Stage};
use super::checks::{Meta, modern_code};
use super::pool::{Change, Pool};
use super::{META_SERVER_INFO, MODERN_VERSIONS, SERVER_VERSION};
use crate::backend::ServerEvent;
use crate::http::SUPPORTED_VERSIONS;
use crate::jsonrpc::{self, Kind, code};

/// Results a client may cache: catwalk adds a hint (none by default: `ttlMs` 0, `private`) where the server
/// gave none, since it cannot know how long the server's answer holds.
pub(super) const CACHEABLE: &[&str] = &[
    "tools/list",
    "prompts/list",
    "resources/list",
    "resources/templates/list",
    "resources/read",
];

/// "Resource not found" in the 2025 era.
pub(super) const RESOURCE_NOT_FOUND_2025: i64 = -32002;

/// The ids catwalk gives its own requests to the server; a client's ids pass through unchanged.
pub(super) const INITIALIZE_ID: &str = "catwalk/initialize";
pub(super) const SET_LEVEL_ID: &str = "catwalk/logging-level";

pub(super) struct Wire<'a> {
    pub(super) to_server: &'a mpsc::Sender<Bytes>,
    pub(super) from_server: &'a mut mpsc::Receiver<ServerEvent>,
    pub(super) out: &'a mpsc::Sender<Out>,
    pub(super) relay_logs: bool,
    /// Whether the request may end in input requests (tools/call, prompts/get, resources/read).
    pub(super) asks_allowed: bool,
    /// The client's declared capabilities: the server's requests that need others are refused to it.
    pub(super) capabilities: &'a Value,
    /// The tenant's pool, told of the list changes the server announces.
    pub(super) pool: &'a Pool,
}

impl Wire<'_> {
    /// How the request ended, and the server's `initialize` result (for an instance kept for later).
    pub(super) async fn run(
        &mut self,
        exchange: &Exchange,
        initialized: Option<Value>,
        stage: Stage,
    ) -> Result<(Ending, Value), Failure> {
        if exchange.passthrough {
            let request = json!({"jsonrpc": "2.0", "id": exchange.client_id,
                "method": exchange.method, "params": exchange.params});
            self.send(&request).await?;
            let mut answer = self.answer(&exchange.client_id, false).await?;
            if let (Some(owner), Ending::Answer(answer)) = (&exchange.owner, &mut answer)
                && let Some(Value::String(state)) = answer.pointer_mut("/result/requestState")
            {
                *state = self.pool.bind_state(owner, state);
            }
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
    pub(super) async fn handshake(&mut self, meta: &Meta) -> Result<Value, Failure> {
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

    pub(super) async fn send(&self, message: &Value) -> Result<(), Failure> {
        self.to_server
            .send(message.to_string().into())
            .await
            .map_err(|_| gone("the MCP server is gone"))
    }

    /// The answer to one of catwalk's own requests (no input requests come of those).
    pub(super) async fn own_answer(&mut self, id: &Value) -> Result<Value, Failure> {
        match self.answer(id, false).await? {
            Ending::Answer(answer) => Ok(answer),
            Ending::Input(_) => Err(gone("the MCP server asked for input during set-up")),
        }
    }

    /// Reads until the answer to `id`, relaying request-related notifications. A server request for the
    /// client ends the wait when `asks_allowed` (with any others the server sent at once); otherwise it is
    /// refused to the server, as is one the client has no capability for. A ping is answered.
    pub(super) async fn answer(
        &mut self,
        id: &Value,
        asks_allowed: bool,
    ) -> Result<Ending, Failure> {
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
pub(super) const RELAY_REFUSAL: &str = "is not relayed to 2026-07-28 clients";

/// The answer to a server's request that no client will see: a ping is answered, anything else refused with
/// `why` after its method.
pub(super) fn refusal(request: &Value, why: &str) -> Value {
    match request["method"].as_str() {
        Some("ping") => json!({"jsonrpc": "2.0", "id": request["id"], "result": {}}),
        method => json!({"jsonrpc": "2.0", "id": request["id"], "error": {
            "code": code::METHOD_NOT_FOUND,
            "message": format!("{} {why}", method.unwrap_or("a request")),
        }}),
    }
}

pub(super) fn gone(message: &str) -> Failure {
    (
        StatusCode::BAD_GATEWAY,
        code::SERVER_GONE,
        message.to_owned(),
    )
}

/// The answer as a 2026-07-28 result: marked complete, with a caching hint where one belongs. An unknown
/// method is a 404, a client capability the server needs and the request did not declare a 400. A resource
/// not found is -32602 in this revision (the 2025 era's servers say -32002).
pub(super) fn complete(method: &str, mut answer: Value) -> Out {
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
pub(super) fn discover(id: &Value, initialized: &Value) -> String {
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

    #[test]
    pub(super) fn results_are_marked_complete_and_lists_get_a_caching_hint() {
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
