//! The surface `@modelcontextprotocol/conformance server --suite all` tests, as a WASI guest written with
//! catwalk-guest (the same names as the npm fixture in tests/fixtures/conformance-server).
//!
//!   cargo build --release --target wasm32-wasip1 -p catwalk-conformance-guest      (or wasm32-wasip2)
//!   catwalk serve --wasm target/wasm32-wasip1/release/catwalk-conformance-guest.wasm
use catwalk_guest::{
    Error, Prompt, Resource, ResourceTemplate, Server, Tool, ToolResult, Value, json,
};

/// A 1x1 red PNG and a tiny silent WAV.
const PNG: &str = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8DwHwAFBQIAX8jx0gAAAABJRU5ErkJggg==";
const WAV: &str = "UklGRiQAAABXQVZFZm10IBAAAAABAAEAQB8AAIA+AAACABAAZGF0YQAAAAA=";

/// Waits without spinning: a blocking sleep is a WASI poll on the clock, which suspends the guest.
fn pause() {
    std::thread::sleep(std::time::Duration::from_millis(50));
}

fn text(t: &str) -> Value {
    json!({ "type": "text", "text": t })
}

/// A fixture's stand-in for a MAC over `requestState` (a real server would use HMAC with a secret of its own):
/// enough to tell a state this server sealed from one a client changed.
fn seal(payload: &str) -> String {
    format!("{payload}.{:016x}", checksum(payload))
}

/// The payload of a state this server sealed; an error for one it did not.
fn unseal(state: &str) -> catwalk_guest::Result<String> {
    state
        .rsplit_once('.')
        .filter(|(payload, mac)| *mac == format!("{:016x}", checksum(payload)))
        .map(|(payload, _)| payload.to_owned())
        .ok_or_else(|| Error::invalid_params("requestState failed its integrity check"))
}

/// FNV-1a over a fixed key and `payload`.
fn checksum(payload: &str) -> u64 {
    "catwalk-conformance-fixture:"
        .bytes()
        .chain(payload.bytes())
        .fold(0xcbf2_9ce4_8422_2325, |hash, b| {
            (hash ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
        })
}

/// An elicitation request for one string field.
fn ask_for(field: &str, message: &str) -> Value {
    json!({ "message": message, "requestedSchema": {
        "type": "object", "properties": { field: { "type": "string" } }, "required": [field] } })
}

fn elicited(result: &Value) -> ToolResult {
    ToolResult::text(format!(
        "Elicitation completed: action={}, content={}",
        result["action"].as_str().unwrap_or("unknown"),
        result.get("content").cloned().unwrap_or(json!({}))
    ))
}

fn main() -> std::io::Result<()> {
    Server::new("catwalk-conformance-guest", "0.1.0")
        .tool(Tool::new("test_simple_text", "Returns simple text"), |_, _| {
            Ok(ToolResult::text("This is a simple text response for testing."))
        })
        .tool(Tool::new("test_image_content", "Returns an image"), |_, _| {
            Ok(ToolResult::content(vec![json!({ "type": "image", "data": PNG, "mimeType": "image/png" })]))
        })
        .tool(Tool::new("test_audio_content", "Returns audio"), |_, _| {
            Ok(ToolResult::content(vec![json!({ "type": "audio", "data": WAV, "mimeType": "audio/wav" })]))
        })
        .tool(Tool::new("test_embedded_resource", "Returns an embedded resource"), |_, _| {
            Ok(ToolResult::content(vec![json!({ "type": "resource", "resource": {
                "uri": "test://embedded-resource", "mimeType": "text/plain",
                "text": "This is an embedded resource content." } })]))
        })
        .tool(Tool::new("test_multiple_content_types", "Returns text, image and resource"), |_, _| {
            Ok(ToolResult::content(vec![
                text("Multiple content types test:"),
                json!({ "type": "image", "data": PNG, "mimeType": "image/png" }),
                json!({ "type": "resource", "resource": { "uri": "test://mixed-content-resource",
                    "mimeType": "application/json", "text": "{\"test\":\"data\",\"value\":123}" } }),
            ]))
        })
        .tool(Tool::new("test_tool_with_logging", "Logs three messages while running"), |_, cx| {
            cx.log("info", json!("Tool execution started"))?;
            pause();
            cx.log("info", json!("Tool processing data"))?;
            pause();
            cx.log("info", json!("Tool execution completed"))?;
            Ok(ToolResult::text("Tool with logging executed successfully"))
        })
        .tool(Tool::new("test_tool_with_progress", "Reports progress 0, 50, 100"), |_, cx| {
            for progress in [0.0, 50.0, 100.0] {
                cx.progress(progress, Some(100.0), None)?;
                if progress < 100.0 {
                    pause();
                }
            }
            Ok(ToolResult::text("Tool with progress executed successfully"))
        })
        .tool(Tool::new("test_error_handling", "Always fails"), |_, _| {
            Ok(ToolResult::error("This tool intentionally returns an error for testing"))
        })
        .tool(
            Tool::new("test_sampling", "Asks the client's LLM").param("prompt", "string", "The prompt", true),
            |args, cx| {
                let result = cx.sample(args.str("prompt")?, 100)?;
                let reply = result["content"]["text"].as_str().map_or_else(|| result["content"].to_string(), str::to_owned);
                Ok(ToolResult::text(format!("LLM response: {reply}")))
            },
        )
        .tool(
            Tool::new("test_elicitation", "Asks the user").param("message", "string", "The message", true),
            |args, cx| {
                let result = cx.elicit(args.str("message")?, json!({
                    "type": "object",
                    "properties": {
                        "username": { "type": "string", "description": "User's response" },
                        "email": { "type": "string", "description": "User's email address" },
                    },
                    "required": ["username", "email"],
                }))?;
                Ok(ToolResult::text(format!(
                    "User response: action={}, content={}",
                    result["action"].as_str().unwrap_or("unknown"),
                    result.get("content").cloned().unwrap_or(json!({}))
                )))
            },
        )
        .tool(Tool::new("test_elicitation_sep1034_defaults", "Elicitation with defaults"), |_, cx| {
            let result = cx.elicit("Please review and update the form fields with defaults", json!({
                "type": "object",
                "properties": {
                    "name": { "type": "string", "description": "User name", "default": "John Doe" },
                    "age": { "type": "integer", "description": "User age", "default": 30 },
                    "score": { "type": "number", "description": "User score", "default": 95.5 },
                    "status": { "type": "string", "description": "User status",
                        "enum": ["active", "inactive", "pending"], "default": "active" },
                    "verified": { "type": "boolean", "description": "Verification status", "default": true },
                },
            }))?;
            Ok(elicited(&result))
        })
        .tool(Tool::new("test_elicitation_sep1330_enums", "Elicitation with every enum form"), |_, cx| {
            let result = cx.elicit("Please choose among the options", json!({
                "type": "object",
                "properties": {
                    "untitledSingle": { "type": "string", "enum": ["option1", "option2", "option3"] },
                    "titledSingle": { "type": "string", "oneOf": [
                        { "const": "value1", "title": "First Option" },
                        { "const": "value2", "title": "Second Option" },
                        { "const": "value3", "title": "Third Option" }] },
                    "legacyEnum": { "type": "string", "enum": ["opt1", "opt2", "opt3"],
                        "enumNames": ["Option One", "Option Two", "Option Three"] },
                    "untitledMulti": { "type": "array", "items": { "type": "string",
                        "enum": ["option1", "option2", "option3"] } },
                    "titledMulti": { "type": "array", "items": { "anyOf": [
                        { "const": "value1", "title": "First Choice" },
                        { "const": "value2", "title": "Second Choice" },
                        { "const": "value3", "title": "Third Choice" }] } },
                },
            }))?;
            Ok(elicited(&result))
        })
        .tool(
            Tool::with_schema("json_schema_2020_12_tool", "Tool with JSON Schema 2020-12 features", json!({
                "$schema": "https://json-schema.org/draft/2020-12/schema",
                "type": "object",
                "$defs": { "address": { "$anchor": "addressDef", "type": "object", "properties": {
                    "street": { "type": "string" }, "city": { "type": "string" } } } },
                "properties": {
                    "name": { "type": "string" },
                    "address": { "$ref": "#/$defs/address" },
                    "contactMethod": { "type": "string", "enum": ["phone", "email"] },
                    "phone": { "type": "string" },
                    "email": { "type": "string" },
                },
                "allOf": [{ "anyOf": [{ "required": ["phone"] }, { "required": ["email"] }] }],
                "if": { "properties": { "contactMethod": { "const": "phone" } }, "required": ["contactMethod"] },
                "then": { "required": ["phone"] },
                "else": { "required": ["email"] },
                "additionalProperties": false,
            })),
            |args, _| Ok(ToolResult::text(format!("Received: {}", Value::Object(args.0.clone())))),
        )
        // Arguments a 2026-07-28 client mirrors into Mcp-Param-* headers (catwalk checks them).
        .tool(
            Tool::with_schema("test_header_param", "Answers with the arguments it routes on", json!({
                "type": "object",
                "properties": {
                    "region": { "type": "string", "x-mcp-header": "Region" },
                    "priority": { "type": "integer", "x-mcp-header": "Priority" },
                    "query": { "type": "string" },
                },
                "required": ["region"],
            })),
            |args, _| Ok(ToolResult::text(format!("region={}", args.str("region")?))),
        )
        .tool(Tool::new("test_reconnection", "Takes a moment, then answers"), |_, _| {
            pause();
            Ok(ToolResult::text("Reconnection test completed successfully"))
        })
        .tool(Tool::new("echo", "Echoes its message").param("message", "string", "The message", true), |args, _| {
            Ok(ToolResult::text(format!("Echo: {}", args.str("message")?)))
        })
        // Input requests, 2026-07-28 style (the `input-required-result-*` scenarios).
        .tool(Tool::new("test_input_required_result_elicitation", "Asks the user's name"), |_, cx| {
            let answer = cx.ask("user_name", "elicitation/create", ask_for("name", "What is your name?"))?;
            Ok(ToolResult::text(format!("Hello, {}!", answer["content"]["name"].as_str().unwrap_or("?"))))
        })
        .tool(Tool::new("test_input_required_result_sampling", "Asks the client's model"), |_, cx| {
            let answer = cx.ask("capital_question", "sampling/createMessage", json!({
                "messages": [{ "role": "user", "content": text("What is the capital of France?") }],
                "maxTokens": 100,
            }))?;
            Ok(ToolResult::text(answer["content"]["text"].as_str().unwrap_or("no text").to_owned()))
        })
        .tool(Tool::new("test_input_required_result_list_roots", "Asks the client's roots"), |_, cx| {
            let answer = cx.ask("client_roots", "roots/list", json!({}))?;
            let roots: Vec<&str> = answer["roots"].as_array().into_iter().flatten()
                .filter_map(|r| r["uri"].as_str()).collect();
            Ok(ToolResult::text(format!("Roots: {}", roots.join(", "))))
        })
        .tool(Tool::new("test_input_required_result_request_state", "Round-trips its state"), |_, cx| {
            if let Some(state) = cx.request_state() {
                unseal(state)?;
            }
            cx.set_request_state(seal("confirm"));
            let answer = cx.ask("confirm", "elicitation/create", json!({ "message": "Please confirm",
                "requestedSchema": { "type": "object", "properties": { "ok": { "type": "boolean" } }, "required": ["ok"] } }))?;
            Ok(ToolResult::text(format!("state-ok: {}", answer["content"]["ok"])))
        })
        .tool(Tool::new("test_input_required_result_multiple_inputs", "Asks three things at once"), |_, cx| {
            if let Some(state) = cx.request_state() {
                unseal(state)?;
            }
            cx.set_request_state(seal("multiple"));
            // All three asked before any is needed, so they go to the client together.
            let name = cx.ask("user_name", "elicitation/create", ask_for("name", "What is your name?"));
            let greeting = cx.ask("greeting", "sampling/createMessage", json!({
                "messages": [{ "role": "user", "content": text("Generate a greeting") }], "maxTokens": 50 }));
            let roots = cx.ask("client_roots", "roots/list", json!({}));
            let (name, greeting, roots) = (name?, greeting?, roots?);
            Ok(ToolResult::text(format!(
                "name={}, greeting={}, roots={}",
                name["content"]["name"], greeting["content"]["text"], roots["roots"].as_array().map_or(0, Vec::len)
            )))
        })
        .tool(Tool::new("test_input_required_result_multi_round", "Asks twice, one round each"), |_, cx| {
            // Round 2 on: the name from round 1 travels in the state.
            let name = match cx.request_state() {
                Some(state) => unseal(state)?,
                None => String::new(),
            };
            let name = if name.is_empty() {
                cx.set_request_state(seal(""));
                let answer = cx.ask("step1", "elicitation/create", ask_for("name", "Step 1: What is your name?"))?;
                answer["content"]["name"].as_str().unwrap_or("?").to_owned()
            } else {
                name
            };
            cx.set_request_state(seal(&name));
            let answer = cx.ask("step2", "elicitation/create", ask_for("color", "Step 2: What is your favorite color?"))?;
            Ok(ToolResult::text(format!("{name} likes {}", answer["content"]["color"].as_str().unwrap_or("?"))))
        })
        .tool(Tool::new("test_input_required_result_tampered_state", "Checks its state"), |_, cx| {
            if let Some(state) = cx.request_state() {
                unseal(state)?;
            }
            cx.set_request_state(seal("tamper-check"));
            cx.ask("confirm", "elicitation/create", ask_for("ok", "Please confirm"))?;
            Ok(ToolResult::text("state verified"))
        })
        .tool(Tool::new("test_input_required_result_capabilities", "Asks only what the client can answer"), |_, cx| {
            let capabilities = cx.client_capabilities().clone();
            let elicitation = capabilities.get("elicitation").is_some()
                .then(|| cx.ask("user_name", "elicitation/create", ask_for("name", "What is your name?")));
            let sampling = capabilities.get("sampling").is_some().then(|| cx.ask("capital_question", "sampling/createMessage",
                json!({ "messages": [{ "role": "user", "content": text("What is the capital of France?") }], "maxTokens": 100 })));
            elicitation.transpose()?;
            sampling.transpose()?;
            Ok(ToolResult::text("asked what the client can answer"))
        })
        // Diagnostic tools of the 2026-07-28 `server-stateless` scenario.
        .tool(Tool::new("test_missing_capability", "Needs the client's sampling capability"), |_, cx| {
            if !cx.client_capabilities()["sampling"].is_object() {
                return Err(Error {
                    code: -32021,
                    message: "This tool needs the client's sampling capability".into(),
                    data: Some(json!({ "requiredCapabilities": { "sampling": {} } })),
                });
            }
            Ok(ToolResult::text("The client declared sampling"))
        })
        .tool(Tool::new("test_logging_tool", "Logs while it runs"), |_, cx| {
            cx.log("info", json!("Logging tool running"))?;
            Ok(ToolResult::text("Logging tool done"))
        })
        .tool(Tool::new("test_streaming_elicitation", "Asks the user, then answers"), |_, cx| {
            let schema = json!({ "type": "object", "properties": { "name": { "type": "string" } } });
            Ok(match cx.elicit("Your name?", schema) {
                Ok(result) => ToolResult::text(format!("Elicitation answered: {}", result["action"])),
                Err(error) => ToolResult::text(format!("Elicitation unavailable: {}", error.message)),
            })
        })
        .resource(
            Resource::new("test://static-text", "static-text", "A static text resource", "text/plain"),
            |uri, _| Ok(vec![json!({ "uri": uri, "mimeType": "text/plain",
                "text": "This is the content of the static text resource." })]),
        )
        .resource(
            Resource::new("test://static-binary", "static-binary", "A static binary resource", "image/png"),
            |uri, _| Ok(vec![json!({ "uri": uri, "mimeType": "image/png", "blob": PNG })]),
        )
        .resource(
            Resource::new("test://watched-resource", "watched-resource", "A resource to subscribe to", "text/plain"),
            |uri, _| Ok(vec![json!({ "uri": uri, "mimeType": "text/plain", "text": "Watched." })]),
        )
        .template(
            ResourceTemplate::new("test://template/{id}/data", "template-data", "Data for an id", "application/json"),
            |uri, vars, _| {
                let id = vars["id"].as_str().unwrap_or_default();
                let data = json!({ "id": id, "templateTest": true, "data": format!("Data for ID: {id}") });
                Ok(vec![json!({ "uri": uri, "mimeType": "application/json", "text": data.to_string() })])
            },
        )
        .prompt(Prompt::new("test_simple_prompt", "A prompt without arguments"), |_, _| {
            Ok(vec![json!({ "role": "user", "content": text("This is a simple prompt for testing.") })])
        })
        .prompt(
            Prompt::new("test_prompt_with_arguments", "A prompt with two arguments")
                .arg("arg1", "First test argument", true)
                .arg("arg2", "Second test argument", true),
            |args, _| {
                let (a, b) = (args["arg1"].as_str().unwrap_or_default(), args["arg2"].as_str().unwrap_or_default());
                Ok(vec![json!({ "role": "user", "content": text(&format!("Prompt with arguments: arg1='{a}', arg2='{b}'")) })])
            },
        )
        .prompt(
            Prompt::new("test_prompt_with_embedded_resource", "A prompt embedding a resource")
                .arg("resourceUri", "URI of the resource to embed", true),
            |args, _| {
                Ok(vec![
                    json!({ "role": "user", "content": { "type": "resource", "resource": {
                        "uri": args["resourceUri"], "mimeType": "text/plain",
                        "text": "Embedded resource content for testing." } } }),
                    json!({ "role": "user", "content": text("Please process the embedded resource above.") }),
                ])
            },
        )
        .prompt(Prompt::new("test_input_required_result_prompt", "A prompt that asks for its context"), |_, cx| {
            let answer = cx.ask("user_context", "elicitation/create", ask_for("context", "What context should the prompt use?"))?;
            let context = answer["content"]["context"].as_str().unwrap_or("none").to_owned();
            Ok(vec![json!({ "role": "user", "content": text(&format!("Use this context: {context}")) })])
        })
        .prompt(Prompt::new("test_prompt_with_image", "A prompt with an image"), |_, _| {
            Ok(vec![
                json!({ "role": "user", "content": { "type": "image", "data": PNG, "mimeType": "image/png" } }),
                json!({ "role": "user", "content": text("Please analyze the image above.") }),
            ])
        })
        .completion(|_reference, _argument, value| {
            let values = ["paris", "park", "party", "london", "lisbon"];
            Ok(values.iter().filter(|v| v.starts_with(value)).map(|v| (*v).to_owned()).collect())
        })
        .run()
}
