//! The wire (stdin/stdout) and what a handler can do with it while it runs.

use std::collections::{HashMap, HashSet, VecDeque};
use std::io::{BufRead, Write};

use serde_json::{Map, Value, json};

use crate::types::Error;

/// Log levels in increasing severity (RFC 5424 names, as MCP uses them).
pub(crate) const LEVELS: &[&str] = &[
    "debug",
    "info",
    "notice",
    "warning",
    "error",
    "critical",
    "alert",
    "emergency",
];

/// The server's side of the connection: messages in, messages out, and what was learned along the way.
pub(crate) struct Wire<'io> {
    input: Box<dyn BufRead + 'io>,
    output: Box<dyn Write + 'io>,
    /// Messages read while waiting for a client's answer, handled after the current request.
    deferred: VecDeque<Value>,
    next_id: u64,
    pub(crate) log_level: Option<usize>,
    pub(crate) subscriptions: HashSet<String>,
    /// Open `subscriptions/listen` requests (2026-07-28): each one's id and the resource URIs it follows.
    pub(crate) listens: Vec<(Value, Vec<String>)>,
    pub(crate) client_capabilities: Value,
    cancelled: HashSet<String>,
}

impl<'io> Wire<'io> {
    pub(crate) fn new(input: impl BufRead + 'io, output: impl Write + 'io) -> Self {
        Self {
            input: Box::new(input),
            output: Box::new(output),
            deferred: VecDeque::new(),
            next_id: 0,
            log_level: None,
            subscriptions: HashSet::new(),
            listens: Vec::new(),
            client_capabilities: Value::Null,
            cancelled: HashSet::new(),
        }
    }

    /// The next message: one put aside earlier, or the next line of stdin (blocking). `None` at end of input.
    pub(crate) fn read(&mut self) -> std::io::Result<Option<Value>> {
        match self.deferred.pop_front() {
            Some(message) => Ok(Some(message)),
            None => self.read_input(),
        }
    }

    /// The next message from stdin itself (blocking), past anything put aside.
    fn read_input(&mut self) -> std::io::Result<Option<Value>> {
        let mut line = String::new();
        loop {
            line.clear();
            if self.input.read_line(&mut line)? == 0 {
                return Ok(None);
            }
            if line.trim().is_empty() {
                continue;
            }
            match serde_json::from_str::<Value>(&line) {
                Ok(Value::Array(batch)) => {
                    let mut batch = batch.into_iter();
                    let Some(first) = batch.next() else { continue };
                    self.deferred.extend(batch);
                    return Ok(Some(first));
                }
                Ok(message) => return Ok(Some(message)),
                Err(e) => {
                    let reply = json!({"jsonrpc":"2.0","id":null,"error":{"code":-32700,"message":format!("parse error: {e}")}});
                    self.send(&reply)?;
                }
            }
        }
    }

    pub(crate) fn send(&mut self, message: &Value) -> std::io::Result<()> {
        serde_json::to_writer(&mut self.output, message)?;
        self.output.write_all(b"\n")?;
        self.output.flush()
    }

    pub(crate) fn notify(&mut self, method: &str, params: Value) -> std::io::Result<()> {
        self.send(&json!({ "jsonrpc": "2.0", "method": method, "params": params }))
    }

    /// Records a `notifications/cancelled` from the client; one for a listen request ends that subscription.
    pub(crate) fn cancel(&mut self, params: &Value) {
        if let Some(id) = params.get("requestId") {
            self.listens.retain(|(listen, _)| listen != id);
            self.cancelled.insert(id.to_string());
        }
    }

    pub(crate) fn is_cancelled(&self, id: &Value) -> bool {
        self.cancelled.contains(&id.to_string())
    }

    pub(crate) fn forget(&mut self, id: &Value) {
        self.cancelled.remove(&id.to_string());
    }
}

/// What a handler can do while it runs: report progress, log, and ask the client for things.
pub struct Context<'w, 'io> {
    pub(crate) wire: &'w mut Wire<'io>,
    pub(crate) request_id: Value,
    pub(crate) progress_token: Option<Value>,
    /// For a 2026-07-28 request: its input responses, and what the handler asked that they lack.
    pub(crate) modern: Option<Modern>,
}

/// A 2026-07-28 request's exchange with its client: it cannot ask mid-call, so what a handler asks that the
/// request's `inputResponses` do not answer ends the call with an input request, and the client's retry
/// (which runs the handler again) carries the answer.
#[derive(Default)]
pub(crate) struct Modern {
    pub(crate) responses: Map<String, Value>,
    pub(crate) asks: Map<String, Value>,
    counts: HashMap<String, usize>,
    /// The `requestState` the retry echoed, and the one to send with the next input request.
    pub(crate) state_in: Option<String>,
    pub(crate) state_out: Option<String>,
}

impl Modern {
    pub(crate) fn new(responses: Map<String, Value>, state_in: Option<String>) -> Self {
        Self {
            responses,
            state_in,
            ..Self::default()
        }
    }
}

/// The error a handler gets back from [`Context::ask`] while the answer is still to come; the SDK answers
/// the request with the input request instead of any error.
pub(crate) const INPUT_REQUIRED: i64 = -32099;

impl Context<'_, '_> {
    /// Sends `notifications/progress`, if the client asked for progress on this request.
    pub fn progress(
        &mut self,
        progress: f64,
        total: Option<f64>,
        message: Option<&str>,
    ) -> crate::Result<()> {
        let Some(token) = self.progress_token.clone() else {
            return Ok(());
        };
        let mut params = json!({ "progressToken": token, "progress": progress });
        if let Some(total) = total {
            params["total"] = json!(total);
        }
        if let Some(message) = message {
            params["message"] = json!(message);
        }
        self.wire
            .notify("notifications/progress", params)
            .map_err(io_error)
    }

    /// Sends `notifications/message` at `level` (`"info"`, `"warning"`, ...), unless the client set a higher
    /// minimum level with `logging/setLevel`.
    pub fn log(&mut self, level: &str, data: Value) -> crate::Result<()> {
        let rank = LEVELS
            .iter()
            .position(|l| *l == level)
            .ok_or_else(|| Error::internal("unknown log level"))?;
        if self.wire.log_level.is_some_and(|min| rank < min) {
            return Ok(());
        }
        self.wire
            .notify(
                "notifications/message",
                json!({ "level": level, "data": data }),
            )
            .map_err(io_error)
    }

    /// Tells the client a resource changed, if it subscribed to it: a 2025-era `resources/subscribe`, or a
    /// 2026-07-28 `subscriptions/listen` that names it (tagged with that subscription's id).
    pub fn resource_updated(&mut self, uri: &str) -> crate::Result<()> {
        if self.wire.subscriptions.contains(uri) {
            self.wire
                .notify("notifications/resources/updated", json!({ "uri": uri }))
                .map_err(io_error)?;
        }
        let following: Vec<Value> = self
            .wire
            .listens
            .iter()
            .filter(|(_, uris)| uris.iter().any(|u| u == uri))
            .map(|(id, _)| id.clone())
            .collect();
        for id in following {
            let params = json!({ "uri": uri, "_meta": { crate::server::SUBSCRIPTION_ID: id } });
            self.wire
                .notify("notifications/resources/updated", params)
                .map_err(io_error)?;
        }
        Ok(())
    }

    /// Whether the client cancelled the request being handled.
    pub fn is_cancelled(&self) -> bool {
        self.wire.is_cancelled(&self.request_id)
    }

    /// The capabilities the client declared in `initialize`.
    pub fn client_capabilities(&self) -> &Value {
        &self.wire.client_capabilities
    }

    /// Asks the client (`elicitation/create`, `sampling/createMessage`, `roots/list`) under `key`. On a
    /// 2025-era session it is [`Context::request`]. On a 2026-07-28 request, the answer is the one the request
    /// carries in `inputResponses[key]`; without it the call ends with an input request for it (a handler
    /// gets an error to pass on with `?`), and the client's retry runs the handler again with the answer.
    /// The client must have declared the capability the request needs (else -32021).
    pub fn ask(&mut self, key: &str, method: &str, params: Value) -> crate::Result<Value> {
        let Some(modern) = self.modern.as_mut() else {
            return self.request(method, params);
        };
        if let Some(answer) = modern.responses.get(key) {
            // An answer is a result: an object.
            return match answer.is_object() {
                true => Ok(answer.clone()),
                false => Err(Error::invalid_params(format!(
                    "inputResponses[\"{key}\"] is not a result object"
                ))),
            };
        }
        let capability = method.split('/').next().unwrap_or_default();
        if self.wire.client_capabilities.get(capability).is_none() {
            return Err(Error {
                code: -32021,
                message: format!("this needs the client's {capability} capability"),
                data: Some(json!({ "requiredCapabilities": { capability: {} } })),
            });
        }
        modern.asks.insert(
            key.to_owned(),
            json!({ "method": method, "params": params }),
        );
        Err(Error::new(INPUT_REQUIRED, "waiting for the client's input"))
    }

    /// The `requestState` a 2026-07-28 retry echoed back, as the server gave it. It comes from the client:
    /// protect what matters in it (e.g. with a MAC) and check it before trusting it.
    pub fn request_state(&self) -> Option<&str> {
        self.modern.as_ref()?.state_in.as_deref()
    }

    /// The `requestState` to send with this call's input request (2026-07-28); the client echoes it on its
    /// retry. Ignored on a 2025-era session.
    pub fn set_request_state(&mut self, state: impl Into<String>) {
        if let Some(modern) = self.modern.as_mut() {
            modern.state_out = Some(state.into());
        }
    }

    /// [`Context::ask`] under a key of the method's kind and its count in this call (`elicitation-1`).
    fn ask_next(&mut self, method: &str, params: Value) -> crate::Result<Value> {
        let Some(modern) = self.modern.as_mut() else {
            return self.request(method, params);
        };
        let kind = method.split('/').next().unwrap_or("input").to_owned();
        let count = modern.counts.entry(kind.clone()).or_default();
        *count += 1;
        let key = format!("{kind}-{count}");
        self.ask(&key, method, params)
    }

    /// Sends a request to the client and blocks until its answer arrives (2025 era). Other messages that
    /// arrive meanwhile are handled after the current request.
    pub fn request(&mut self, method: &str, params: Value) -> crate::Result<Value> {
        let id = json!(format!("guest-{}", self.wire.next_id));
        self.wire.next_id += 1;
        self.wire
            .send(&json!({ "jsonrpc": "2.0", "id": id, "method": method, "params": params }))
            .map_err(io_error)?;
        loop {
            // Only new input can hold the answer; what was put aside stays aside until this request is done.
            let Some(message) = self.wire.read_input().map_err(io_error)? else {
                return Err(Error::internal("the client went away"));
            };
            if message.get("method").is_none() && message.get("id") == Some(&id) {
                if let Some(error) = message.get("error") {
                    let code = error["code"].as_i64().unwrap_or(-32603);
                    return Err(Error::new(
                        code,
                        error["message"].as_str().unwrap_or("client error"),
                    ));
                }
                return Ok(message.get("result").cloned().unwrap_or(Value::Null));
            }
            if message["method"] == "notifications/cancelled" {
                self.wire.cancel(&message["params"]);
                if self.is_cancelled() {
                    return Err(Error::new(-32800, "the request was cancelled"));
                }
                continue;
            }
            self.wire.deferred.push_back(message);
        }
    }

    /// `sampling/createMessage`: asks the client's model. Returns the client's result.
    pub fn sample(&mut self, prompt: &str, max_tokens: u32) -> crate::Result<Value> {
        let params = json!({
            "messages": [{ "role": "user", "content": { "type": "text", "text": prompt } }],
            "maxTokens": max_tokens,
        });
        self.ask_next("sampling/createMessage", params)
    }

    /// `elicitation/create`: asks the user to fill in `schema`. Returns the client's result.
    pub fn elicit(&mut self, message: &str, schema: Value) -> crate::Result<Value> {
        self.ask_next(
            "elicitation/create",
            json!({ "message": message, "requestedSchema": schema }),
        )
    }

    /// `roots/list`: the client's roots.
    pub fn roots(&mut self) -> crate::Result<Value> {
        self.ask_next("roots/list", json!({}))
    }
}

fn io_error(e: std::io::Error) -> Error {
    Error::internal(format!("stdio failed: {e}"))
}
