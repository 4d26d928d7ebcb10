//! Streamable HTTP, 2025 era: the transport rules, checked against the real npm fixture.

use anyhow::Result;
use serde_json::{Value, json};

use crate::support::{ACCEPT_BOTH, Catwalk, Client, connected, fixture, parse_sse, read_answer};

#[tokio::test]
async fn a_session_lives_from_initialize_to_delete_then_404() -> Result<()> {
    let cw = Catwalk::start(&[], &fixture(), &[]).await?;
    let mut client = Client::new(cw.mcp());
    let init = client.initialize("2025-11-25").await?;
    assert_eq!(
        init["result"]["serverInfo"]["name"],
        "catwalk-conformance-server"
    );
    let session = client.session.clone().unwrap();
    assert_eq!(session.len(), 32, "128 random bits in hex");

    let tools = client
        .post(&json!({"jsonrpc":"2.0","id":"list","method":"tools/list"}))
        .await?;
    assert_eq!(tools.status, 200);
    let names: Vec<&str> = tools.response(&json!("list")).unwrap()["result"]["tools"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|t| t["name"].as_str())
        .collect();
    assert!(names.contains(&"test_simple_text"), "{names:?}");
    assert_eq!(
        client
            .call_text(json!(7), "echo", json!({"message":"hi"}))
            .await?,
        "Echo: hi"
    );

    assert_eq!(client.delete().await?, 200);
    let after = client
        .post(&json!({"jsonrpc":"2.0","id":8,"method":"ping"}))
        .await?;
    assert_eq!(after.status, 404);
    assert_eq!(after.messages[0]["error"]["code"], -32600);
    cw.stop().await
}

#[tokio::test]
async fn bad_requests_get_the_right_status_and_a_json_rpc_error() -> Result<()> {
    let cw = Catwalk::start(&["--max-message-bytes", "65536"], &fixture(), &[]).await?;
    let mut client = Client::new(cw.mcp());
    client.initialize("2025-06-18").await?;
    let session = client.session.clone().unwrap();
    let http = &client.http;
    let ping = json!({"jsonrpc":"2.0","id":1,"method":"ping"}).to_string();

    let post = |accept: &str, ctype: &str, body: String, session: Option<&str>| {
        let mut r = http
            .post(cw.mcp())
            .header("accept", accept)
            .header("content-type", ctype)
            .body(body);
        if let Some(s) = session {
            r = r.header("mcp-session-id", s);
        }
        r
    };
    let cases: Vec<(reqwest::RequestBuilder, u16, Option<i64>)> = vec![
        (
            post(
                "application/json",
                "application/json",
                ping.clone(),
                Some(&session),
            ),
            406,
            None,
        ),
        (
            post("*/*", "application/json", ping.clone(), Some(&session)),
            406,
            None,
        ),
        (
            post(ACCEPT_BOTH, "text/plain", ping.clone(), Some(&session)),
            415,
            None,
        ),
        (
            post(
                ACCEPT_BOTH,
                "application/json",
                "{not json".into(),
                Some(&session),
            ),
            400,
            Some(-32700),
        ),
        (
            post(ACCEPT_BOTH, "application/json", "[]".into(), Some(&session)),
            400,
            Some(-32600),
        ),
        (
            post(
                ACCEPT_BOTH,
                "application/json",
                r#"{"id":{},"method":"x"}"#.into(),
                Some(&session),
            ),
            400,
            Some(-32600),
        ),
        (
            post(
                ACCEPT_BOTH,
                "application/json",
                r#"{"id":1,"method":7}"#.into(),
                Some(&session),
            ),
            400,
            Some(-32600),
        ),
        (
            post(
                ACCEPT_BOTH,
                "application/json",
                "[".repeat(5000),
                Some(&session),
            ),
            400,
            Some(-32700),
        ),
        (
            post(ACCEPT_BOTH, "application/json", ping.clone(), None),
            400,
            Some(-32600),
        ),
        (
            post(
                ACCEPT_BOTH,
                "application/json",
                ping.clone(),
                Some("00000000000000000000000000000000"),
            ),
            404,
            None,
        ),
        (
            post(
                ACCEPT_BOTH,
                "application/json",
                ping.clone(),
                Some(&"f".repeat(10_000)),
            ),
            404,
            None,
        ),
        (
            post(
                ACCEPT_BOTH,
                "application/json",
                format!(r#"{{"x":"{}"}}"#, "a".repeat(70_000)),
                Some(&session),
            ),
            413,
            None,
        ),
        (
            post(
                ACCEPT_BOTH,
                "application/json",
                ping.clone(),
                Some(&session),
            )
            .header("mcp-protocol-version", "1999-01-01"),
            400,
            None,
        ),
        (
            post(
                ACCEPT_BOTH,
                "application/json",
                ping.clone(),
                Some(&session),
            )
            .header("origin", "https://evil.example.com"),
            403,
            None,
        ),
        (
            post(
                ACCEPT_BOTH,
                "application/json",
                ping.clone(),
                Some(&session),
            )
            .header("host", "evil.example.com"),
            403,
            None,
        ),
        (
            http.get(cw.mcp())
                .header("accept", "application/json")
                .header("mcp-session-id", &session),
            406,
            None,
        ),
        (
            http.get(cw.mcp()).header("accept", "text/event-stream"),
            400,
            None,
        ),
        (
            http.delete(cw.mcp()).header("mcp-session-id", "nope"),
            404,
            None,
        ),
    ];
    for (i, (request, status, code)) in cases.into_iter().enumerate() {
        let answer = read_answer(request.send().await?).await?;
        assert_eq!(answer.status, status, "case {i}: {}", answer.text);
        let body: Value = serde_json::from_str(&answer.text)
            .unwrap_or_else(|e| panic!("case {i}: {e}: {}", answer.text));
        assert_eq!(body["jsonrpc"], "2.0", "case {i}");
        assert!(
            body["error"]["message"]
                .as_str()
                .is_some_and(|m| !m.is_empty()),
            "case {i}"
        );
        if let Some(code) = code {
            assert_eq!(body["error"]["code"], code, "case {i}: {}", answer.text);
        }
    }
    // The session survived all of it.
    assert_eq!(
        client
            .call_text(json!(2), "echo", json!({"message":"ok"}))
            .await?,
        "Echo: ok"
    );
    cw.stop().await
}

#[tokio::test]
async fn notifications_get_202_and_batches_are_answered_in_one_stream() -> Result<()> {
    let cw = Catwalk::start(&[], &fixture(), &[]).await?;
    let mut client = Client::new(cw.mcp());
    client.initialize("2025-03-26").await?;
    let note = client
        .post(&json!({"jsonrpc":"2.0","method":"notifications/roots/list_changed"}))
        .await?;
    assert_eq!((note.status, note.text.as_str()), (202, ""));

    let batch = json!([
        {"jsonrpc":"2.0","id":"a","method":"ping"},
        {"jsonrpc":"2.0","method":"notifications/roots/list_changed"},
        {"jsonrpc":"2.0","id":"b","method":"tools/call","params":{"name":"echo","arguments":{"message":"x"}}}
    ]);
    let answer = client.post(&batch).await?;
    assert_eq!(answer.status, 200);
    assert!(answer.content_type.starts_with("text/event-stream"));
    assert_eq!(answer.response(&json!("a")).unwrap()["result"], json!({}));
    assert_eq!(
        answer.response(&json!("b")).unwrap()["result"]["content"][0]["text"],
        "Echo: x"
    );

    let duplicate =
        json!([{"jsonrpc":"2.0","id":1,"method":"ping"},{"jsonrpc":"2.0","id":1,"method":"ping"}]);
    assert_eq!(client.post(&duplicate).await?.status, 400);
    cw.stop().await
}

#[tokio::test]
async fn progress_and_logging_arrive_on_the_request_stream_before_the_answer() -> Result<()> {
    let (cw, client) = connected(&[], &fixture()).await?;
    let answer = client
        .post(&json!({"jsonrpc":"2.0","id":5,"method":"tools/call",
            "params":{"name":"test_tool_with_progress","arguments":{},"_meta":{"progressToken":"p-1"}}}))
        .await?;
    assert!(answer.content_type.starts_with("text/event-stream"));
    assert_eq!(
        answer.event_ids.first().map(String::as_str),
        Some(&*format!(
            "{}-0",
            answer.event_ids[0].split('-').next().unwrap()
        ))
    );
    assert!(
        answer.text.starts_with("id: ") && answer.text.contains("retry: 1000\ndata: \n\n"),
        "priming first"
    );
    let progress: Vec<&Value> = answer
        .messages
        .iter()
        .filter(|m| m["method"] == "notifications/progress")
        .collect();
    assert_eq!(progress.len(), 3, "{:?}", answer.messages);
    assert!(
        progress
            .iter()
            .all(|p| p["params"]["progressToken"] == "p-1")
    );
    assert_eq!(answer.messages.last().unwrap()["id"], 5);

    let logged = client
        .post(&json!({"jsonrpc":"2.0","id":6,"method":"tools/call",
        "params":{"name":"test_tool_with_logging","arguments":{}}}))
        .await?;
    let logs = logged
        .messages
        .iter()
        .filter(|m| m["method"] == "notifications/message")
        .count();
    assert_eq!(logs, 3);
    cw.stop().await
}

#[tokio::test]
async fn a_dropped_stream_resumes_with_last_event_id() -> Result<()> {
    let (cw, client) = connected(&[], &fixture()).await?;
    // Read only the priming event, then drop the connection while the tool is still running.
    let mut response = client
        .request(&json!({"jsonrpc":"2.0","id":9,"method":"tools/call",
            "params":{"name":"test_tool_with_progress","arguments":{},"_meta":{"progressToken":9}}}))
        .send()
        .await?;
    let mut seen = String::new();
    while !seen.contains("\n\n") {
        seen.push_str(&String::from_utf8_lossy(
            &response.chunk().await?.expect("stream open"),
        ));
    }
    let (_, ids) = parse_sse(&seen);
    let priming = ids.first().expect("priming event id").clone();
    drop(response);

    let resumed = client
        .http
        .get(cw.mcp())
        .header("accept", "text/event-stream")
        .header("mcp-session-id", client.session.as_ref().unwrap())
        .header("last-event-id", &priming)
        .send()
        .await?;
    assert_eq!(resumed.status(), 200);
    let answer = read_answer(resumed).await?;
    assert_eq!(
        answer.response(&json!(9)).unwrap()["result"]["content"][0]["text"],
        "Tool with progress executed successfully"
    );
    let progress = answer
        .messages
        .iter()
        .filter(|m| m["method"] == "notifications/progress")
        .count();
    assert_eq!(
        progress, 3,
        "every event after the priming one is replayed: {:?}",
        answer.messages
    );

    // Resuming from the last event replays nothing and ends at once: the stream is finished.
    let last = answer.event_ids.last().unwrap().clone();
    let again = client
        .http
        .get(cw.mcp())
        .header("accept", "text/event-stream")
        .header("mcp-session-id", client.session.as_ref().unwrap())
        .header("last-event-id", last)
        .send()
        .await?;
    assert!(read_answer(again).await?.messages.is_empty());
    cw.stop().await
}

#[tokio::test]
async fn the_get_stream_is_one_per_session() -> Result<()> {
    let (cw, client) = connected(&[], &fixture()).await?;
    let get = || {
        client
            .http
            .get(cw.mcp())
            .header("accept", "text/event-stream")
            .header("mcp-session-id", client.session.as_ref().unwrap())
            .send()
    };
    let first = get().await?;
    assert_eq!(first.status(), 200);
    assert_eq!(first.headers()["x-accel-buffering"], "no");
    assert_eq!(get().await?.status(), 409);
    drop(first);
    cw.stop().await
}
