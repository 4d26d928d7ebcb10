//! The 2026-07-28 era on the same `/mcp` URL as the 2025 era: stateless requests with their version and client
//! in `_meta`, the headers checked against the body, and 2025-era servers (a WASI guest, an npm server) behind.

use anyhow::{Context, Result};
use serde_json::{Value, json};

use crate::support::{ACCEPT_BOTH, Answer, Catwalk, Client, fixture, read_answer, read_events};

const VERSION: &str = "2026-07-28";

/// Headers of a request, by name.
type Headers = Vec<(&'static str, String)>;

fn meta() -> Value {
    json!({
        "io.modelcontextprotocol/protocolVersion": VERSION,
        "io.modelcontextprotocol/clientInfo": {"name": "catwalk-tests", "version": "0"},
        "io.modelcontextprotocol/clientCapabilities": {},
    })
}

/// A modern request as a conforming client sends it: `_meta` in the params, the headers mirrored from the body.
fn request(id: i64, method: &str, mut params: Value) -> (Value, Headers) {
    params["_meta"] = meta();
    let mut headers = vec![
        ("mcp-protocol-version", VERSION.to_owned()),
        ("mcp-method", method.to_owned()),
    ];
    if let Some(name) = params
        .get("name")
        .or(params.get("uri"))
        .and_then(Value::as_str)
    {
        headers.push(("mcp-name", name.to_owned()));
    }
    (
        json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params}),
        headers,
    )
}

async fn send(url: &str, body: &Value, headers: &[(&str, String)]) -> Result<Answer> {
    let mut post = reqwest::Client::new()
        .post(url)
        .header("accept", ACCEPT_BOTH)
        .header("content-type", "application/json")
        .body(body.to_string());
    for (name, value) in headers {
        post = post.header(*name, value);
    }
    read_answer(post.send().await?).await
}

async fn modern(url: &str, id: i64, method: &str, params: Value) -> Result<Answer> {
    let (body, headers) = request(id, method, params);
    send(url, &body, &headers).await
}

#[tokio::test]
async fn a_wasi_guest_serves_modern_requests_beside_a_2025_session_on_one_url() -> Result<()> {
    let cw = Catwalk::start_without_command(&[], &[]).await?;
    let url = cw.mcp();

    let discover = modern(&url, 1, "server/discover", json!({})).await?;
    assert_eq!(discover.status, 200, "{}", discover.text);
    let result = &discover.messages[0]["result"];
    let versions = result["supportedVersions"].as_array().expect("a list");
    assert!(versions.contains(&json!(VERSION)) && versions.contains(&json!("2025-11-25")));
    assert_eq!(
        result["_meta"]["io.modelcontextprotocol/serverInfo"]["name"],
        "catwalk-echo"
    );
    assert!(result["capabilities"]["tools"].is_object(), "{result}");
    assert!(
        discover.headers.get("mcp-session-id").is_none(),
        "no session in the 2026 era"
    );

    let call = modern(
        &url,
        2,
        "tools/call",
        json!({"name": "echo", "arguments": {"message": "modern"}}),
    )
    .await?;
    assert_eq!(call.status, 200, "{}", call.text);
    assert_eq!(call.messages[0]["id"], 2);
    assert_eq!(
        call.messages[0]["result"]["content"][0]["text"],
        "Echo: modern"
    );
    assert_eq!(call.messages[0]["result"]["resultType"], "complete");

    let list = modern(&url, 3, "tools/list", json!({})).await?;
    let result = &list.messages[0]["result"];
    assert_eq!(
        (result["ttlMs"].clone(), result["cacheScope"].clone()),
        (json!(0), json!("private"))
    );
    assert!(result["tools"].as_array().is_some_and(|t| !t.is_empty()));

    // A 2025-era session on the same URL, alongside.
    let mut legacy = Client::new(url.clone());
    legacy.initialize("2025-11-25").await?;
    assert_eq!(
        legacy
            .call_text(json!(1), "echo", json!({"message": "old"}))
            .await?,
        "Echo: old"
    );
    cw.stop().await
}

#[tokio::test]
async fn an_npm_server_answers_modern_requests_with_progress_on_the_stream() -> Result<()> {
    let cw = Catwalk::start(&[], &fixture(), &[]).await?;
    let url = cw.mcp();
    let call = modern(
        &url,
        7,
        "tools/call",
        json!({"name": "test_simple_text", "arguments": {}}),
    )
    .await?;
    assert_eq!(call.status, 200, "{}", call.text);
    assert_eq!(
        call.messages[0]["result"]["content"][0]["text"],
        "This is a simple text response for testing."
    );

    // Progress the server reports reaches the client on the request's own stream, before the result.
    let mut params = json!({"name": "test_tool_with_progress", "arguments": {}});
    let (mut body, headers) = request(8, "tools/call", params.take());
    body["params"]["_meta"]["progressToken"] = json!("p-8");
    let answer = send(&url, &body, &headers).await?;
    assert!(
        answer.content_type.starts_with("text/event-stream"),
        "{}",
        answer.text
    );
    let progress: Vec<&Value> = answer
        .messages
        .iter()
        .filter(|m| m["method"] == "notifications/progress")
        .collect();
    assert_eq!(progress.len(), 3, "{}", answer.text);
    assert!(
        progress
            .iter()
            .all(|p| p["params"]["progressToken"] == "p-8")
    );
    let last = answer.messages.last().expect("a final message");
    assert_eq!(last["id"], 8);
    assert_eq!(last["result"]["resultType"], "complete");
    cw.stop().await
}

#[tokio::test]
async fn bad_modern_requests_get_the_revisions_errors_with_their_id() -> Result<()> {
    let cw = Catwalk::start_without_command(&[], &[]).await?;
    let url = cw.mcp();
    let echo = json!({"name": "echo", "arguments": {"message": "x"}});
    let (good, good_headers) = request(5, "tools/call", echo.clone());
    let with = |headers: &[(&'static str, &str)]| -> Headers {
        let mut all: Headers = good_headers
            .iter()
            .filter(|(n, _)| !headers.iter().any(|(h, _)| h == n))
            .cloned()
            .collect();
        all.extend(
            headers
                .iter()
                .filter(|(_, v)| !v.is_empty())
                .map(|(n, v)| (*n, v.to_string())),
        );
        all
    };
    let without_meta = {
        let mut body = good.clone();
        body["params"].as_object_mut().unwrap().remove("_meta");
        body
    };
    let cases: Vec<(&str, Value, Headers, u16, i64)> = vec![
        ("no _meta", without_meta, with(&[]), 400, -32602),
        (
            "no version header",
            good.clone(),
            with(&[("mcp-protocol-version", "")]),
            400,
            -32020,
        ),
        (
            "version header differs",
            good.clone(),
            with(&[("mcp-protocol-version", "2025-11-25")]),
            400,
            -32020,
        ),
        (
            "unsupported version",
            unsupported_body(&good),
            with(&[("mcp-protocol-version", "2099-01-01")]),
            400,
            -32022,
        ),
        (
            "no Mcp-Method",
            good.clone(),
            with(&[("mcp-method", "")]),
            400,
            -32020,
        ),
        (
            "Mcp-Method differs",
            good.clone(),
            with(&[("mcp-method", "tools/list")]),
            400,
            -32020,
        ),
        (
            "no Mcp-Name",
            good.clone(),
            with(&[("mcp-name", "")]),
            400,
            -32020,
        ),
        (
            "Mcp-Name differs",
            good.clone(),
            with(&[("mcp-name", "time")]),
            400,
            -32020,
        ),
    ];
    for (what, body, headers, status, code) in cases {
        let answer = send(&url, &body, &headers).await?;
        assert_eq!(answer.status, status, "{what}: {}", answer.text);
        assert_eq!(
            answer.messages[0]["error"]["code"], code,
            "{what}: {}",
            answer.text
        );
        assert_eq!(
            answer.messages[0]["id"], 5,
            "{what}: the error carries the request's id"
        );
    }
    let answer = send(
        &url,
        &unsupported_body(&good),
        &with(&[("mcp-protocol-version", "2099-01-01")]),
    )
    .await?;
    let supported = &answer.messages[0]["error"]["data"]["supported"];
    assert!(
        supported
            .as_array()
            .is_some_and(|s| s.contains(&json!(VERSION))),
        "{}",
        answer.text
    );

    // A name that is not plain ASCII comes base64-encoded, and is compared decoded.
    let (body, mut headers) = request(
        6,
        "tools/call",
        json!({"name": "echo", "arguments": {"message": "é"}}),
    );
    headers.retain(|(n, _)| *n != "mcp-name");
    headers.push(("mcp-name", "=?base64?ZWNobw==?=".into()));
    let answer = send(&url, &body, &headers).await?;
    assert_eq!(
        answer.messages[0]["result"]["content"][0]["text"], "Echo: é",
        "{}",
        answer.text
    );

    // Methods of the 2025 era only, and methods the server does not have: 404 with -32601.
    for method in ["ping", "initialize", "no/such-method"] {
        let answer = modern(&url, 9, method, json!({})).await?;
        assert_eq!(answer.status, 404, "{method}: {}", answer.text);
        assert_eq!(answer.messages[0]["error"]["code"], -32601, "{method}");
    }
    // A notification is accepted, with nothing to answer.
    let (mut note, headers) = request(0, "notifications/initialized", json!({}));
    note.as_object_mut().unwrap().remove("id");
    assert_eq!(send(&url, &note, &headers).await?.status, 202);
    // No GET stream and no session to delete in this era.
    let http = reqwest::Client::new();
    for method in [reqwest::Method::GET, reqwest::Method::DELETE] {
        let response = http
            .request(method.clone(), &url)
            .header("accept", "text/event-stream")
            .header("mcp-protocol-version", VERSION)
            .send()
            .await?;
        assert_eq!(response.status(), 405, "{method}");
    }
    cw.stop().await
}

fn unsupported_body(good: &Value) -> Value {
    let mut body = good.clone();
    body["params"]["_meta"]["io.modelcontextprotocol/protocolVersion"] = json!("2099-01-01");
    body
}

/// The pid of the process that served a modern call of the fixture's `pid` tool, with `capabilities` declared.
async fn served_by(url: &str, id: i64, capabilities: Value) -> Result<i64> {
    let (mut body, headers) = request(id, "tools/call", json!({"name": "pid", "arguments": {}}));
    body["params"]["_meta"]["io.modelcontextprotocol/clientCapabilities"] = capabilities;
    let answer = send(url, &body, &headers).await?;
    let text = answer.messages[0]["result"]["content"][0]["text"]
        .as_str()
        .map(str::to_owned);
    Ok(text.with_context(|| answer.text.clone())?.parse()?)
}

#[tokio::test]
async fn an_initialized_npm_server_serves_the_next_modern_request_from_the_same_client()
-> Result<()> {
    let cw = Catwalk::start(&["--spare", "0"], &fixture(), &[]).await?;
    let url = cw.mcp();
    let first = served_by(&url, 1, json!({})).await?;
    // Kept initialized, and taken again by a request declaring what its initialize carried.
    assert_eq!(served_by(&url, 2, json!({})).await?, first);
    // Another client's capabilities get a server initialized with them.
    let other = served_by(&url, 3, json!({"sampling": {}})).await?;
    assert_ne!(other, first);
    assert_eq!(served_by(&url, 4, json!({})).await?, first);
    assert_eq!(served_by(&url, 5, json!({"sampling": {}})).await?, other);
    cw.stop().await
}

/// A modern tools/call of the fixture's `test_elicitation`, with `capabilities`, and optionally the retry fields.
async fn elicitation_call(
    url: &str,
    id: i64,
    capabilities: Value,
    retry: Option<(Value, Value)>,
) -> Result<Value> {
    let (mut body, headers) = request(
        id,
        "tools/call",
        json!({"name": "test_elicitation", "arguments": {"message": "Who are you?"}}),
    );
    body["params"]["_meta"]["io.modelcontextprotocol/clientCapabilities"] = capabilities;
    if let Some((state, responses)) = retry {
        body["params"]["requestState"] = state;
        body["params"]["inputResponses"] = responses;
    }
    let answer = send(url, &body, &headers).await?;
    assert_eq!(answer.status, 200, "{}", answer.text);
    Ok(answer.messages.last().context("an answer")?.clone())
}

#[tokio::test]
async fn a_servers_question_reaches_a_modern_client_as_an_input_request_and_the_retry_goes_on()
-> Result<()> {
    let cw = Catwalk::start(&[], &fixture(), &[]).await?;
    let url = cw.mcp();
    let elicitation = json!({"elicitation": {}});

    let first = elicitation_call(&url, 1, elicitation.clone(), None).await?;
    let result = &first["result"];
    assert_eq!(result["resultType"], "input_required", "{first}");
    let asked = &result["inputRequests"]["elicitation-1"];
    assert_eq!(asked["method"], "elicitation/create");
    assert_eq!(asked["params"]["message"], "Who are you?");
    let state = result["requestState"].clone();
    assert!(
        state.as_str().is_some_and(|s| s.len() >= 32),
        "an unguessable state: {state}"
    );

    // A retry that leaves the answer out is asked again, under the same state.
    let again = elicitation_call(
        &url,
        2,
        elicitation.clone(),
        Some((state.clone(), json!({}))),
    )
    .await?;
    assert_eq!(again["result"]["resultType"], "input_required");
    assert_eq!(again["result"]["requestState"], state);
    assert!(again["result"]["inputRequests"]["elicitation-1"].is_object());

    // A forged state, or the right one on other parameters, is refused; the request still waits.
    let forged = elicitation_call(
        &url,
        3,
        elicitation.clone(),
        Some((json!("00ff"), json!({}))),
    )
    .await?;
    assert_eq!(forged["error"]["code"], -32602, "{forged}");
    let (mut other, headers) = request(
        4,
        "tools/call",
        json!({"name": "test_elicitation", "arguments": {"message": "Something else?"}}),
    );
    other["params"]["_meta"]["io.modelcontextprotocol/clientCapabilities"] = elicitation.clone();
    other["params"]["requestState"] = state.clone();
    let answer = send(&url, &other, &headers).await?;
    assert_eq!(
        answer.messages[0]["error"]["code"], -32602,
        "{}",
        answer.text
    );

    // The answer goes to the server that asked, and the result comes under the retry's id.
    let answers = json!({"elicitation-1": {"action": "accept", "content": {"username": "ada", "email": "a@example.com"}}});
    let done = elicitation_call(
        &url,
        5,
        elicitation.clone(),
        Some((state.clone(), answers.clone())),
    )
    .await?;
    assert_eq!(done["id"], 5);
    assert_eq!(done["result"]["resultType"], "complete");
    let text = done["result"]["content"][0]["text"]
        .as_str()
        .unwrap_or_default();
    assert!(
        text.contains("action=accept") && text.contains("\"username\":\"ada\""),
        "{done}"
    );

    // A state serves one retry.
    let replayed = elicitation_call(&url, 6, elicitation, Some((state, answers))).await?;
    assert_eq!(replayed["error"]["code"], -32602, "{replayed}");
    cw.stop().await
}

#[tokio::test]
async fn a_client_without_the_capability_is_not_asked() -> Result<()> {
    let cw = conformance_guest().await?;
    let (body, headers) = request(
        1,
        "tools/call",
        json!({"name": "test_elicitation", "arguments": {"message": "Who are you?"}}),
    );
    let answer = send(&cw.mcp(), &body, &headers).await?;
    // The server's question is refused to it with the 2026 era's error, which the guest passes on.
    assert_eq!(answer.status, 400, "{}", answer.text);
    let error = &answer.messages[0]["error"];
    assert_eq!(error["code"], -32021, "{}", answer.text);
    assert!(
        error["message"]
            .as_str()
            .is_some_and(|m| m.contains("elicitation")),
        "{}",
        answer.text
    );
    cw.stop().await
}

#[tokio::test]
async fn a_request_waiting_for_input_holds_its_place_under_the_session_cap() -> Result<()> {
    let cw = Catwalk::start(&["--max-sessions", "1"], &fixture(), &[]).await?;
    let url = cw.mcp();
    let elicitation = json!({"elicitation": {}});
    let first = elicitation_call(&url, 1, elicitation.clone(), None).await?;
    let state = first["result"]["requestState"].clone();
    assert!(state.is_string(), "{first}");

    // The waiting request's server counts like a session: the one place is taken.
    let (body, headers) = request(
        2,
        "tools/call",
        json!({"name": "echo", "arguments": {"message": "x"}}),
    );
    let refused = send(&url, &body, &headers).await?;
    assert_eq!(refused.status, 503, "{}", refused.text);

    let answers = json!({"elicitation-1": {"action": "decline"}});
    let done = elicitation_call(&url, 3, elicitation, Some((state, answers))).await?;
    assert_eq!(done["result"]["resultType"], "complete", "{done}");
    // Answered: the place is free again.
    let served = send(&url, &body, &headers).await?;
    assert_eq!(
        served.messages[0]["result"]["content"][0]["text"], "Echo: x",
        "{}",
        served.text
    );
    cw.stop().await
}

#[tokio::test]
async fn a_guest_that_speaks_2026_07_28_is_passed_through() -> Result<()> {
    // catwalk-guest speaks the revision itself: its own input requests and keys reach the client unchanged.
    let cw = conformance_guest().await?;
    let url = cw.mcp();
    let call = |id: i64, responses: Option<Value>| {
        let (mut body, headers) = request(
            id,
            "tools/call",
            json!({"name": "test_input_required_result_elicitation", "arguments": {}}),
        );
        body["params"]["_meta"]["io.modelcontextprotocol/clientCapabilities"] =
            json!({"elicitation": {}});
        if let Some(responses) = responses {
            body["params"]["inputResponses"] = responses;
        }
        let url = url.clone();
        async move { send(&url, &body, &headers).await }
    };
    let first = call(1, None).await?;
    let result = &first.messages[0]["result"];
    assert_eq!(result["resultType"], "input_required", "{}", first.text);
    assert_eq!(
        result["inputRequests"]["user_name"]["method"],
        "elicitation/create"
    );
    assert!(
        result.get("requestState").is_none(),
        "the guest keeps no state: {}",
        first.text
    );
    // The retry runs on a fresh guest, which finds its answer in the request.
    let answer = json!({"user_name": {"action": "accept", "content": {"name": "Ada"}}});
    let done = call(2, Some(answer)).await?;
    assert_eq!(
        done.messages[0]["result"]["content"][0]["text"], "Hello, Ada!",
        "{}",
        done.text
    );
    cw.stop().await
}

/// Opens a `subscriptions/listen` stream for `notifications`.
async fn listen(url: &str, id: i64, notifications: Value) -> Result<reqwest::Response> {
    let response = try_listen(url, id, notifications).await?;
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "text/event-stream");
    Ok(response)
}

async fn try_listen(url: &str, id: i64, notifications: Value) -> Result<reqwest::Response> {
    let (body, headers) = request(
        id,
        "subscriptions/listen",
        json!({"notifications": notifications}),
    );
    let mut post = reqwest::Client::new()
        .post(url)
        .header("accept", ACCEPT_BOTH)
        .header("content-type", "application/json")
        .body(body.to_string());
    for (name, value) in &headers {
        post = post.header(*name, value);
    }
    Ok(post.send().await?)
}

/// The next message on a stream.
async fn next(stream: &mut reqwest::Response, buffer: &mut String) -> Result<Value> {
    let (_, data) = read_events(stream, buffer, 1).await?.remove(0);
    Ok(serde_json::from_str(&data)?)
}

const SUBSCRIPTION_ID: &str = "io.modelcontextprotocol/subscriptionId";

/// catwalk serving the WASI conformance fixture, written with catwalk-guest (which speaks 2026-07-28 itself).
async fn conformance_guest() -> Result<Catwalk> {
    Catwalk::start_without_command(
        &[
            "--wasm",
            &crate::wasi::guest("wasm32-wasip1", "catwalk-conformance-guest"),
        ],
        &[],
    )
    .await
}

#[tokio::test]
async fn a_listen_stream_gets_the_list_changes_it_asked_for_made_by_other_requests() -> Result<()> {
    let cw = Catwalk::start(&[], &fixture(), &[]).await?;
    let url = cw.mcp();
    let (mut tools, mut tools_buffer) = (
        listen(
            &url,
            41,
            json!({"toolsListChanged": true, "resourcesListChanged": true, "promptsListChanged": false}),
        )
        .await?,
        String::new(),
    );
    let ack = next(&mut tools, &mut tools_buffer).await?;
    assert_eq!(ack["method"], "notifications/subscriptions/acknowledged");
    assert_eq!(ack["params"]["_meta"][SUBSCRIPTION_ID], 41);
    assert_eq!(
        ack["params"]["notifications"],
        json!({"toolsListChanged": true, "resourcesListChanged": true})
    );
    let (mut prompts, mut prompts_buffer) = (
        listen(&url, 42, json!({"promptsListChanged": true})).await?,
        String::new(),
    );
    let ack = next(&mut prompts, &mut prompts_buffer).await?;
    assert_eq!(
        ack["params"]["notifications"],
        json!({"promptsListChanged": true})
    );

    // Each change is made by a request of its own, on a server instance neither stream holds.
    for (id, trigger) in [
        (1, "test_trigger_tool_change"),
        (2, "test_trigger_prompt_change"),
    ] {
        let call = modern(&url, id, "tools/call", json!({"name": trigger})).await?;
        assert_eq!(call.status, 200, "{}", call.text);
    }
    let changed = next(&mut tools, &mut tools_buffer).await?;
    assert_eq!(changed["method"], "notifications/tools/list_changed");
    assert_eq!(changed["params"]["_meta"][SUBSCRIPTION_ID], 41);
    // The tool list changed first, but this stream did not ask for it.
    let changed = next(&mut prompts, &mut prompts_buffer).await?;
    assert_eq!(changed["method"], "notifications/prompts/list_changed");
    assert_eq!(changed["params"]["_meta"][SUBSCRIPTION_ID], 42);

    // When catwalk ends a stream, its last message is the listen request's result.
    let rest = tokio::spawn(async move {
        let mut last = None;
        while let Ok(mut events) = read_events(&mut tools, &mut tools_buffer, 1).await {
            last = events.pop().map(|(_, data)| data);
        }
        last
    });
    cw.stop().await?;
    let last: Value = serde_json::from_str(&rest.await?.expect("an event before the end"))?;
    assert_eq!(last["id"], 41);
    assert_eq!(last["result"]["resultType"], "complete");
    Ok(())
}

#[tokio::test]
async fn a_listen_stream_follows_resources_on_a_server_held_for_it() -> Result<()> {
    let cw = Catwalk::start(&["--max-sessions", "1"], &fixture(), &[]).await?;
    let url = cw.mcp();
    let mut stream = listen(&url, 5, json!({"resourceSubscriptions": ["test://ticker"]})).await?;
    let mut buffer = String::new();
    let ack = next(&mut stream, &mut buffer).await?;
    assert_eq!(
        ack["params"]["notifications"],
        json!({"resourceSubscriptions": ["test://ticker"]})
    );
    // The fixture's ticker changes every 100 ms while subscribed to.
    for _ in 0..2 {
        let updated = next(&mut stream, &mut buffer).await?;
        assert_eq!(updated["method"], "notifications/resources/updated");
        assert_eq!(updated["params"]["uri"], "test://ticker");
        assert_eq!(updated["params"]["_meta"][SUBSCRIPTION_ID], 5);
    }
    // The server held for the stream has its place under the cap, like a session's.
    let refused = modern(&url, 6, "tools/list", json!({})).await?;
    assert_eq!(refused.status, 503, "{}", refused.text);
    drop(stream);
    crate::support::eventually(
        std::time::Duration::from_secs(30),
        "the place comes back when the stream closes",
        || {
            let url = url.clone();
            async move {
                modern(&url, 7, "tools/list", json!({}))
                    .await
                    .is_ok_and(|answer| answer.status == 200)
            }
        },
    )
    .await?;
    cw.stop().await
}

#[tokio::test]
async fn mirrored_arguments_must_match_their_mcp_param_headers() -> Result<()> {
    let cw = Catwalk::start(&[], &fixture(), &[]).await?;
    let url = cw.mcp();
    let (body, headers) = request(
        1,
        "tools/call",
        json!({"name": "test_header_param", "arguments": {"region": "eu-west", "priority": 3, "query": "q"}}),
    );
    let with = |extra: &[(&'static str, &str)]| {
        let mut all = headers.clone();
        all.extend(extra.iter().map(|(k, v)| (*k, (*v).to_owned())));
        all
    };
    for (sent, status) in [
        (
            vec![("mcp-param-region", "eu-west"), ("mcp-param-priority", "3")],
            200,
        ),
        // Base64 of "eu-west", and a number written another way.
        (
            vec![
                ("mcp-param-region", "=?base64?ZXUtd2VzdA==?="),
                ("mcp-param-priority", "3.0"),
                ("mcp-param-unknown", "x"),
            ],
            200,
        ),
        (vec![("mcp-param-region", "eu-west")], 400),
        (
            vec![("mcp-param-region", "us-east"), ("mcp-param-priority", "3")],
            400,
        ),
        (
            vec![
                ("mcp-param-region", "=?base64?ZXUtd2VzdA?="),
                ("mcp-param-priority", "3"),
            ],
            400,
        ),
    ] {
        let answer = send(&url, &body, &with(&sent)).await?;
        assert_eq!(answer.status, status, "{sent:?}: {}", answer.text);
        let message = &answer.messages[0];
        assert_eq!(message["id"], 1);
        match status {
            200 => assert_eq!(message["result"]["content"][0]["text"], "region=eu-west"),
            _ => assert_eq!(message["error"]["code"], -32020, "{sent:?}"),
        }
    }
    cw.stop().await
}

#[tokio::test]
async fn a_guest_that_speaks_2026_07_28_answers_its_own_listen_stream_and_its_headers_are_checked()
-> Result<()> {
    let cw = conformance_guest().await?;
    let url = cw.mcp();
    let mut stream = listen(
        &url,
        9,
        json!({"toolsListChanged": true, "resourceSubscriptions": ["test://static-text"]}),
    )
    .await?;
    let ack = next(&mut stream, &mut String::new()).await?;
    assert_eq!(ack["method"], "notifications/subscriptions/acknowledged");
    assert_eq!(ack["params"]["_meta"][SUBSCRIPTION_ID], 9);
    assert_eq!(
        ack["params"]["notifications"],
        json!({"resourceSubscriptions": ["test://static-text"]}),
        "the guest's lists are fixed: no list changes"
    );
    let (body, headers) = request(
        2,
        "tools/call",
        json!({"name": "test_header_param", "arguments": {"region": "eu-west"}}),
    );
    let missing = send(&url, &body, &headers).await?;
    assert_eq!(missing.status, 400, "{}", missing.text);
    assert_eq!(missing.messages[0]["error"]["code"], -32020);
    let mut mirrored = headers.clone();
    mirrored.push(("mcp-param-region", "eu-west".to_owned()));
    let answer = send(&url, &body, &mirrored).await?;
    assert_eq!(
        answer.messages[0]["result"]["content"][0]["text"],
        "region=eu-west"
    );
    cw.stop().await
}

#[tokio::test]
async fn a_listen_stream_holds_a_place_under_the_session_cap() -> Result<()> {
    let cw = Catwalk::start(&["--max-sessions", "1"], &fixture(), &[]).await?;
    let url = cw.mcp();
    let mut open = listen(&url, 1, json!({"toolsListChanged": true})).await?;
    next(&mut open, &mut String::new()).await?;
    let refused = try_listen(&url, 2, json!({"toolsListChanged": true})).await?;
    assert_eq!(refused.status(), 503);
    let body: Value = refused.json().await?;
    assert_eq!(body["id"], 2, "{body}");
    assert!(body["error"]["code"].is_i64(), "{body}");
    drop(open);
    crate::support::eventually(
        std::time::Duration::from_secs(30),
        "the place comes back when the stream closes",
        || {
            let url = url.clone();
            async move {
                try_listen(&url, 3, json!({"toolsListChanged": true}))
                    .await
                    .is_ok_and(|response| response.status() == 200)
            }
        },
    )
    .await?;
    cw.stop().await
}
