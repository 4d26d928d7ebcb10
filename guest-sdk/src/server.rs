//! The server builder and its loop.

use std::io::{BufRead, Write};

use serde_json::{Map, Value, json};

use crate::context::{Context, INPUT_REQUIRED, LEVELS, Modern, Wire};
use crate::types::{Args, Error, Prompt, Resource, ResourceTemplate, Tool, ToolResult};
use crate::{MODERN_VERSIONS, PROTOCOL_VERSIONS, Result};

const META_VERSION: &str = "io.modelcontextprotocol/protocolVersion";
const META_CAPABILITIES: &str = "io.modelcontextprotocol/clientCapabilities";
const META_LOG_LEVEL: &str = "io.modelcontextprotocol/logLevel";
pub(crate) const SUBSCRIPTION_ID: &str = "io.modelcontextprotocol/subscriptionId";

/// Methods of the 2025 era only: a 2026-07-28 request for one is a method not found.
const LEGACY_ONLY: &[&str] = &[
    "initialize",
    "ping",
    "logging/setLevel",
    "resources/subscribe",
    "resources/unsubscribe",
];

type ToolFn = Box<dyn Fn(&Args, &mut Context) -> Result<ToolResult>>;
type ReadFn = Box<dyn Fn(&str, &mut Context) -> Result<Vec<Value>>>;
type TemplateFn = Box<dyn Fn(&str, &Map<String, Value>, &mut Context) -> Result<Vec<Value>>>;
type PromptFn = Box<dyn Fn(&Map<String, Value>, &mut Context) -> Result<Vec<Value>>>;
type CompleteFn = Box<dyn Fn(&Value, &str, &str) -> Result<Vec<String>>>;

/// An MCP server: what it offers, and the loop that serves it on stdio.
pub struct Server {
    name: String,
    version: String,
    instructions: Option<String>,
    tools: Vec<(Tool, ToolFn)>,
    resources: Vec<(Resource, ReadFn)>,
    templates: Vec<(ResourceTemplate, TemplateFn)>,
    prompts: Vec<(Prompt, PromptFn)>,
    completer: Option<CompleteFn>,
}

impl Server {
    pub fn new(name: &str, version: &str) -> Self {
        Self {
            name: name.to_owned(),
            version: version.to_owned(),
            instructions: None,
            tools: Vec::new(),
            resources: Vec::new(),
            templates: Vec::new(),
            prompts: Vec::new(),
            completer: None,
        }
    }

    /// Instructions for the model, sent in the initialize result.
    pub fn instructions(mut self, text: &str) -> Self {
        self.instructions = Some(text.to_owned());
        self
    }

    /// A tool and its handler.
    pub fn tool(
        mut self,
        tool: Tool,
        handler: impl Fn(&Args, &mut Context) -> Result<ToolResult> + 'static,
    ) -> Self {
        self.tools.push((tool, Box::new(handler)));
        self
    }

    /// A resource and its reader, which returns the `contents` entries (`{uri, mimeType, text|blob}`).
    pub fn resource(
        mut self,
        resource: Resource,
        read: impl Fn(&str, &mut Context) -> Result<Vec<Value>> + 'static,
    ) -> Self {
        self.resources.push((resource, Box::new(read)));
        self
    }

    /// A resource template and its reader, which gets the URI and the template's variables.
    pub fn template(
        mut self,
        template: ResourceTemplate,
        read: impl Fn(&str, &Map<String, Value>, &mut Context) -> Result<Vec<Value>> + 'static,
    ) -> Self {
        self.templates.push((template, Box::new(read)));
        self
    }

    /// A prompt and its handler, which returns the prompt's messages.
    pub fn prompt(
        mut self,
        prompt: Prompt,
        get: impl Fn(&Map<String, Value>, &mut Context) -> Result<Vec<Value>> + 'static,
    ) -> Self {
        self.prompts.push((prompt, Box::new(get)));
        self
    }

    /// Completion for prompt and template arguments: `(ref, argument name, partial value) -> values`.
    pub fn completion(
        mut self,
        complete: impl Fn(&Value, &str, &str) -> Result<Vec<String>> + 'static,
    ) -> Self {
        self.completer = Some(Box::new(complete));
        self
    }

    /// Serves on stdin/stdout until stdin ends.
    pub fn run(self) -> std::io::Result<()> {
        let stdin = std::io::stdin();
        let stdout = std::io::stdout();
        self.run_with(stdin.lock(), stdout.lock())
    }

    /// Serves on any line-oriented input and output (for tests and other transports).
    pub fn run_with(self, input: impl BufRead, output: impl Write) -> std::io::Result<()> {
        let mut wire = Wire::new(input, output);
        while let Some(message) = wire.read()? {
            let Some(method) = message
                .get("method")
                .and_then(Value::as_str)
                .map(str::to_owned)
            else {
                continue; // a late answer to a request of ours: nobody is waiting for it any more
            };
            let params = message.get("params").cloned().unwrap_or(Value::Null);
            let Some(id) = message.get("id").cloned() else {
                // Other notifications (initialized, roots/list_changed, ...) need nothing done.
                if method == "notifications/cancelled" {
                    wire.cancel(&params);
                }
                continue;
            };
            let progress_token = params
                .get("_meta")
                .and_then(|m| m.get("progressToken"))
                .cloned();
            let modern = params
                .get("_meta")
                .and_then(|m| m.get(META_VERSION))
                .and_then(Value::as_str)
                .map(str::to_owned);
            let outcome = match modern {
                // A subscription is answered only when it ends: the loop goes on serving meanwhile.
                Some(version) if method == "subscriptions/listen" => {
                    match self.listen(&mut wire, &id, &params, &version) {
                        Ok(()) => continue,
                        Err(error) => Err(error),
                    }
                }
                Some(version) => self.serve_modern(&mut wire, &id, &method, &params, &version),
                None => {
                    let mut cx = Context {
                        wire: &mut wire,
                        request_id: id.clone(),
                        progress_token,
                        modern: None,
                    };
                    self.handle(&method, &params, &mut cx)
                }
            };
            let reply = match outcome {
                Ok(result) => json!({ "jsonrpc": "2.0", "id": id, "result": result }),
                Err(error) => json!({ "jsonrpc": "2.0", "id": id, "error": error.to_json() }),
            };
            // A cancelled request gets no answer.
            if !wire.is_cancelled(&id) {
                wire.send(&reply)?;
            }
            wire.forget(&id);
        }
        Ok(())
    }

    /// `subscriptions/listen` (2026-07-28): acknowledges what of the client's filter this server sends (resource
    /// updates, when it has resources; its lists are fixed, so no list changes), and follows the resources named
    /// until the client cancels the request.
    fn listen(&self, wire: &mut Wire, id: &Value, params: &Value, version: &str) -> Result<()> {
        modern_checks(params, version)?;
        let filter = params
            .get("notifications")
            .and_then(Value::as_object)
            .ok_or_else(|| Error::invalid_params("params.notifications is required"))?;
        let mut agreed = Map::new();
        let mut uris = Vec::new();
        if (!self.resources.is_empty() || !self.templates.is_empty())
            && let Some(asked) = filter
                .get("resourceSubscriptions")
                .and_then(Value::as_array)
        {
            for uri in asked.iter().filter_map(Value::as_str) {
                if !uris.iter().any(|u| u == uri) {
                    uris.push(uri.to_owned());
                }
            }
            agreed.insert("resourceSubscriptions".into(), json!(uris));
        }
        wire.listens.push((id.clone(), uris));
        wire.notify(
            "notifications/subscriptions/acknowledged",
            json!({ "notifications": agreed, "_meta": { SUBSCRIPTION_ID: id } }),
        )
        .map_err(|e| Error::internal(e.to_string()))
    }

    /// One 2026-07-28 request: the client's capabilities and log level are the request's own, and what a
    /// handler asks the client ends the call with an input request unless the request carries the answer.
    fn serve_modern(
        &self,
        wire: &mut Wire,
        id: &Value,
        method: &str,
        params: &Value,
        version: &str,
    ) -> Result<Value> {
        let capabilities = modern_checks(params, version)?;
        let meta = &params["_meta"];
        if LEGACY_ONLY.contains(&method) {
            return Err(Error::method_not_found(method));
        }
        if method == "server/discover" {
            let mut result = self.discover();
            result["supportedVersions"] = json!(
                MODERN_VERSIONS
                    .iter()
                    .chain(PROTOCOL_VERSIONS)
                    .collect::<Vec<_>>()
            );
            return Ok(complete(result));
        }
        // This request's own: the client's capabilities, and its log level (no logging unless it names one).
        let capabilities = std::mem::replace(&mut wire.client_capabilities, capabilities.clone());
        let level = meta
            .get(META_LOG_LEVEL)
            .and_then(Value::as_str)
            .and_then(|l| LEVELS.iter().position(|known| *known == l))
            .unwrap_or(LEVELS.len());
        let log_level = wire.log_level.replace(level);
        let mut cx = Context {
            wire,
            request_id: id.clone(),
            progress_token: meta.get("progressToken").cloned(),
            modern: Some(Modern::new(
                params
                    .get("inputResponses")
                    .and_then(Value::as_object)
                    .cloned()
                    .unwrap_or_default(),
                params
                    .get("requestState")
                    .and_then(Value::as_str)
                    .map(str::to_owned),
            )),
        };
        let outcome = self.handle(method, params, &mut cx);
        let modern = cx.modern.take().unwrap_or_default();
        wire.client_capabilities = capabilities;
        wire.log_level = log_level;
        if !modern.asks.is_empty() {
            let mut result =
                json!({ "resultType": "input_required", "inputRequests": modern.asks });
            if let Some(state) = modern.state_out {
                result["requestState"] = json!(state);
            }
            return Ok(result);
        }
        match outcome {
            Err(error) if error.code == INPUT_REQUIRED => {
                Err(Error::internal("input required, but nothing asked"))
            }
            outcome => outcome.map(complete),
        }
    }

    fn handle(&self, method: &str, params: &Value, cx: &mut Context) -> Result<Value> {
        match method {
            "initialize" => Ok(self.initialize(params, cx)),
            "ping" => Ok(json!({})),
            "tools/list" => Ok(
                json!({ "tools": self.tools.iter().map(|(t, _)| &t.definition).collect::<Vec<_>>() }),
            ),
            "tools/call" => {
                let name = params["name"].as_str().unwrap_or_default();
                let (_, handler) = self
                    .tools
                    .iter()
                    .find(|(t, _)| t.name() == name)
                    .ok_or_else(|| Error::invalid_params(format!("unknown tool: {name}")))?;
                let args = Args(params["arguments"].as_object().cloned().unwrap_or_default());
                handler(&args, cx).map(|r| r.to_json())
            }
            "resources/list" => Ok(
                json!({ "resources": self.resources.iter().map(|(r, _)| &r.definition).collect::<Vec<_>>() }),
            ),
            "resources/templates/list" => Ok(json!({
                "resourceTemplates": self.templates.iter().map(|(t, _)| &t.definition).collect::<Vec<_>>()
            })),
            "resources/read" => {
                let uri = params["uri"]
                    .as_str()
                    .ok_or_else(|| Error::invalid_params("uri must be a string"))?;
                if let Some((_, read)) = self.resources.iter().find(|(r, _)| r.uri() == uri) {
                    return Ok(json!({ "contents": read(uri, cx)? }));
                }
                for (template, read) in &self.templates {
                    if let Some(vars) = template.matches(uri) {
                        return Ok(json!({ "contents": read(uri, &vars, cx)? }));
                    }
                }
                Err(Error::resource_not_found(uri))
            }
            "resources/subscribe" | "resources/unsubscribe" => {
                let uri = params["uri"]
                    .as_str()
                    .ok_or_else(|| Error::invalid_params("uri must be a string"))?;
                if method == "resources/subscribe" {
                    cx.wire.subscriptions.insert(uri.to_owned());
                } else {
                    cx.wire.subscriptions.remove(uri);
                }
                Ok(json!({}))
            }
            "prompts/list" => Ok(
                json!({ "prompts": self.prompts.iter().map(|(p, _)| &p.definition).collect::<Vec<_>>() }),
            ),
            "prompts/get" => {
                let name = params["name"].as_str().unwrap_or_default();
                let (prompt, get) = self
                    .prompts
                    .iter()
                    .find(|(p, _)| p.name() == name)
                    .ok_or_else(|| Error::invalid_params(format!("unknown prompt: {name}")))?;
                let args = params["arguments"].as_object().cloned().unwrap_or_default();
                for declared in prompt.definition["arguments"]
                    .as_array()
                    .into_iter()
                    .flatten()
                {
                    let arg = declared["name"].as_str().unwrap_or_default();
                    if declared["required"] == true && !args.contains_key(arg) {
                        return Err(Error::invalid_params(format!("missing argument {arg:?}")));
                    }
                }
                Ok(
                    json!({ "description": prompt.definition["description"], "messages": get(&args, cx)? }),
                )
            }
            "completion/complete" => {
                let complete = self
                    .completer
                    .as_ref()
                    .ok_or_else(|| Error::method_not_found(method))?;
                let name = params["argument"]["name"].as_str().unwrap_or_default();
                let value = params["argument"]["value"].as_str().unwrap_or_default();
                let values = complete(&params["ref"], name, value)?;
                Ok(
                    json!({ "completion": { "values": values, "total": values.len(), "hasMore": false } }),
                )
            }
            "logging/setLevel" => {
                let level = params["level"].as_str().unwrap_or_default();
                let rank = LEVELS
                    .iter()
                    .position(|l| *l == level)
                    .ok_or_else(|| Error::invalid_params(format!("unknown log level {level:?}")))?;
                cx.wire.log_level = Some(rank);
                Ok(json!({}))
            }
            _ => Err(Error::method_not_found(method)),
        }
    }

    fn initialize(&self, params: &Value, cx: &mut Context) -> Value {
        cx.wire.client_capabilities = params["capabilities"].clone();
        let asked = params["protocolVersion"].as_str().unwrap_or_default();
        let version = PROTOCOL_VERSIONS
            .iter()
            .find(|v| **v == asked)
            .unwrap_or(&PROTOCOL_VERSIONS[0]);
        let mut result = self.discover();
        result["protocolVersion"] = json!(version);
        result
    }

    /// What the server is and offers: `initialize`'s result, and `server/discover`'s.
    fn discover(&self) -> Value {
        let mut capabilities = json!({ "logging": {} });
        if !self.tools.is_empty() {
            capabilities["tools"] = json!({});
        }
        if !self.resources.is_empty() || !self.templates.is_empty() {
            capabilities["resources"] = json!({ "subscribe": true });
        }
        if !self.prompts.is_empty() {
            capabilities["prompts"] = json!({});
        }
        if self.completer.is_some() {
            capabilities["completions"] = json!({});
        }
        let info = json!({ "name": self.name, "version": self.version });
        let mut result = json!({
            "capabilities": capabilities,
            "serverInfo": info,
            "_meta": { "io.modelcontextprotocol/serverInfo": info },
        });
        if let Some(instructions) = &self.instructions {
            result["instructions"] = json!(instructions);
        }
        result
    }
}

/// A 2026-07-28 request's version and `_meta`: the client's capabilities, or the error the request gets.
fn modern_checks<'p>(params: &'p Value, version: &str) -> Result<&'p Value> {
    if !MODERN_VERSIONS.contains(&version) {
        let supported: Vec<&str> = MODERN_VERSIONS
            .iter()
            .chain(PROTOCOL_VERSIONS)
            .copied()
            .collect();
        return Err(Error {
            code: -32022,
            message: "Unsupported protocol version".into(),
            data: Some(json!({ "supported": supported, "requested": version })),
        });
    }
    params["_meta"]
        .get(META_CAPABILITIES)
        .filter(|c| c.is_object())
        .ok_or_else(|| {
            Error::invalid_params(format!("params._meta[\"{META_CAPABILITIES}\"] is required"))
        })
}

/// A 2026-07-28 result: marked complete.
fn complete(mut result: Value) -> Value {
    if let Some(fields) = result.as_object_mut() {
        fields
            .entry("resultType")
            .or_insert_with(|| json!("complete"));
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    fn serve(server: Server, input: &str) -> Vec<Value> {
        let mut out = Vec::new();
        server.run_with(input.as_bytes(), &mut out).unwrap();
        String::from_utf8(out)
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }

    fn echo() -> Server {
        Server::new("t", "1").tool(
            Tool::new("echo", "e").param("text", "string", "t", true),
            |args, cx| {
                cx.progress(1.0, Some(1.0), None)?;
                Ok(ToolResult::text(args.str("text")?))
            },
        )
    }

    #[test]
    fn negotiates_and_calls_tools() {
        let out = serve(
            echo(),
            concat!(
                r#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{}}}"#,
                "\n",
                r#"{"jsonrpc":"2.0","id":2,"method":"initialize","params":{"protocolVersion":"1999-01-01"}}"#,
                "\nnot json\n",
                r#"{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":"echo","arguments":{"text":"hi"},"_meta":{"progressToken":"p"}}}"#,
                "\n",
                r#"{"jsonrpc":"2.0","id":4,"method":"tools/call","params":{"name":"echo","arguments":{}}}"#,
                "\n",
                r#"{"jsonrpc":"2.0","id":5,"method":"nope"}"#,
                "\n"
            ),
        );
        assert_eq!(out[0]["result"]["protocolVersion"], "2025-06-18");
        assert_eq!(out[1]["result"]["protocolVersion"], PROTOCOL_VERSIONS[0]);
        assert_eq!(out[2]["error"]["code"], -32700);
        assert_eq!(out[3]["method"], "notifications/progress");
        assert_eq!(out[3]["params"]["progressToken"], "p");
        assert_eq!(out[4]["result"]["content"][0]["text"], "hi");
        assert_eq!(out[5]["error"]["code"], -32602);
        assert_eq!(out[6]["error"]["code"], -32601);
    }

    #[test]
    fn a_request_to_the_client_blocks_until_its_answer_and_defers_the_rest() {
        let server = Server::new("t", "1").tool(Tool::new("ask", "a"), |_, cx| {
            let answer = cx.sample("q", 5)?;
            Ok(ToolResult::text(
                answer["content"]["text"].as_str().unwrap_or_default(),
            ))
        });
        let out = serve(
            server,
            concat!(
                r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"ask"}}"#,
                "\n",
                r#"{"jsonrpc":"2.0","id":2,"method":"ping"}"#,
                "\n",
                r#"{"jsonrpc":"2.0","id":"guest-0","result":{"content":{"type":"text","text":"sampled"}}}"#,
                "\n"
            ),
        );
        assert_eq!(out[0]["method"], "sampling/createMessage");
        assert_eq!(out[1]["id"], 1);
        assert_eq!(out[1]["result"]["content"][0]["text"], "sampled");
        assert_eq!(
            out[2]["id"], 2,
            "the ping read meanwhile is answered afterwards"
        );
    }

    fn modern(id: u64, method: &str, mut params: Value, capabilities: Value) -> String {
        params["_meta"] = json!({
            "io.modelcontextprotocol/protocolVersion": "2026-07-28",
            "io.modelcontextprotocol/clientCapabilities": capabilities,
        });
        json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params}).to_string()
    }

    #[test]
    fn serves_2026_requests_without_initialize() {
        let input = [
            modern(1, "server/discover", json!({}), json!({})),
            modern(
                2,
                "tools/call",
                json!({"name": "echo", "arguments": {"text": "hi"}}),
                json!({}),
            ),
            modern(3, "ping", json!({}), json!({})),
            json!({"jsonrpc": "2.0", "id": 4, "method": "tools/list", "params": {"_meta": {
                "io.modelcontextprotocol/protocolVersion": "1999-01-01",
                "io.modelcontextprotocol/clientCapabilities": {}}}})
            .to_string(),
        ]
        .join("\n");
        let out = serve(echo(), &input);
        let discover = &out[0]["result"];
        assert_eq!(discover["resultType"], "complete");
        assert!(
            discover["supportedVersions"]
                .as_array()
                .unwrap()
                .contains(&json!("2026-07-28"))
        );
        assert_eq!(
            discover["_meta"]["io.modelcontextprotocol/serverInfo"]["name"],
            "t"
        );
        assert_eq!(out[1]["result"]["content"][0]["text"], "hi");
        assert_eq!(out[1]["result"]["resultType"], "complete");
        assert_eq!(out[2]["error"]["code"], -32601, "ping is of the 2025 era");
        assert_eq!(out[3]["error"]["code"], -32022);
        assert_eq!(out[3]["error"]["data"]["requested"], "1999-01-01");
    }

    #[test]
    fn what_a_2026_request_asks_the_client_comes_back_as_an_input_request() {
        let server = Server::new("t", "1").tool(Tool::new("greet", "g"), |_, cx| {
            let answer = cx.elicit("Name?", json!({"type": "object"}))?;
            Ok(ToolResult::text(format!(
                "Hello, {}",
                answer["content"]["name"]
            )))
        });
        let call = |id, responses: Option<Value>, capabilities: Value| {
            let mut params = json!({"name": "greet", "arguments": {}});
            if let Some(responses) = responses {
                params["inputResponses"] = responses;
            }
            modern(id, "tools/call", params, capabilities)
        };
        let input = [
            call(1, None, json!({"elicitation": {}})),
            call(
                2,
                Some(json!({"elicitation-1": {"action": "accept", "content": {"name": "Ada"}}})),
                json!({"elicitation": {}}),
            ),
            call(3, None, json!({})),
        ]
        .join("\n");
        let out = serve(server, &input);
        let first = &out[0]["result"];
        assert_eq!(first["resultType"], "input_required");
        assert_eq!(
            first["inputRequests"]["elicitation-1"]["method"],
            "elicitation/create"
        );
        assert_eq!(
            first["inputRequests"]["elicitation-1"]["params"]["message"],
            "Name?"
        );
        assert_eq!(out[1]["result"]["content"][0]["text"], "Hello, \"Ada\"");
        // A client that cannot answer is not asked.
        assert_eq!(out[2]["error"]["code"], -32021);
        assert_eq!(
            out[2]["error"]["data"]["requiredCapabilities"]["elicitation"],
            json!({})
        );
    }

    #[test]
    fn a_handler_sets_and_reads_the_request_state_and_answers_are_checked() {
        let server = Server::new("t", "1").tool(Tool::new("confirm", "c"), |_, cx| {
            let round = cx.request_state().unwrap_or("0").to_owned();
            cx.set_request_state("1");
            cx.ask("ok", "elicitation/create", json!({"message": "Sure?"}))?;
            Ok(ToolResult::text(format!("confirmed in round {round}")))
        });
        let call = |id, extra: Value| {
            let mut params = json!({"name": "confirm", "arguments": {}});
            params
                .as_object_mut()
                .unwrap()
                .extend(extra.as_object().unwrap().clone());
            modern(id, "tools/call", params, json!({"elicitation": {}}))
        };
        let input = [
            call(1, json!({})),
            call(
                2,
                json!({"requestState": "1", "inputResponses": {"ok": {"action": "accept"}}}),
            ),
            call(
                3,
                json!({"requestState": "1", "inputResponses": {"ok": 12345}}),
            ),
        ]
        .join("\n");
        let out = serve(server, &input);
        assert_eq!(out[0]["result"]["requestState"], "1");
        assert_eq!(
            out[1]["result"]["content"][0]["text"],
            "confirmed in round 1"
        );
        assert_eq!(
            out[2]["error"]["code"], -32602,
            "an answer that is not a result object"
        );
    }

    #[test]
    fn a_2026_subscription_is_acknowledged_and_follows_its_resources_until_cancelled() {
        let server = Server::new("t", "1")
            .resource(
                Resource::new("note://a", "a", "A note", "text/plain"),
                |uri, _| Ok(vec![json!({"uri": uri, "text": "a"})]),
            )
            .tool(Tool::new("touch", "t"), |_, cx| {
                cx.resource_updated("note://a")?;
                Ok(ToolResult::text("touched"))
            });
        let touch = |id| modern(id, "tools/call", json!({"name": "touch"}), json!({}));
        let input = [
            modern(
                7,
                "subscriptions/listen",
                json!({"notifications": {"toolsListChanged": true, "resourceSubscriptions": ["note://a", "note://b"]}}),
                json!({}),
            ),
            touch(1),
            json!({"jsonrpc": "2.0", "method": "notifications/cancelled", "params": {"requestId": 7}}).to_string(),
            touch(2),
            modern(8, "subscriptions/listen", json!({}), json!({})),
        ]
        .join("\n");
        let out = serve(server, &input);
        let ack = &out[0];
        assert_eq!(ack["method"], "notifications/subscriptions/acknowledged");
        assert_eq!(ack["params"]["_meta"][SUBSCRIPTION_ID], 7);
        assert_eq!(
            ack["params"]["notifications"],
            json!({"resourceSubscriptions": ["note://a", "note://b"]}),
            "no list changes: this server's lists are fixed"
        );
        assert_eq!(out[1]["method"], "notifications/resources/updated");
        assert_eq!(out[1]["params"]["uri"], "note://a");
        assert_eq!(out[1]["params"]["_meta"][SUBSCRIPTION_ID], 7);
        assert_eq!(out[2]["id"], 1);
        assert_eq!(out[3]["id"], 2, "nothing more for a cancelled subscription");
        assert_eq!(out[4]["id"], 8);
        assert_eq!(out[4]["error"]["code"], -32602, "a listen without a filter");
        assert_eq!(out.len(), 5, "{out:?}");
    }
}
