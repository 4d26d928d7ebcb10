//! Legacy HTTP+SSE (2024-11-05): endpoint event, 202 on POST, answers as `message` events.

use std::time::Duration;

use anyhow::Result;
use serde_json::{Value, json};

use crate::support::{Catwalk, alive, eventually, fixture, read_events};

#[tokio::test]
async fn legacy_clients_post_to_the_endpoint_and_read_answers_on_the_stream() -> Result<()> {
    let cw = Catwalk::start(&[], &fixture(), &[]).await?;
    let http = reqwest::Client::new();
    let mut stream = http
        .get(format!("{}/sse", cw.base))
        .header("accept", "text/event-stream")
        .send()
        .await?;
    assert_eq!(stream.status(), 200);
    let mut buffer = String::new();
    let endpoint = read_events(&mut stream, &mut buffer, 1).await?.remove(0);
    assert_eq!(endpoint.0, "endpoint");
    assert!(
        endpoint.1.starts_with("/message?sessionId="),
        "{}",
        endpoint.1
    );
    let post_url = format!("{}{}", cw.base, endpoint.1);

    let post = |body: Value| {
        http.post(&post_url)
            .header("content-type", "application/json")
            .body(body.to_string())
            .send()
    };
    let init = post(json!({"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2024-11-05",
        "capabilities":{},"clientInfo":{"name":"legacy","version":"0"}}})).await?;
    assert_eq!(init.status(), 202);
    let (name, data) = read_events(&mut stream, &mut buffer, 1).await?.remove(0);
    assert_eq!(name, "message");
    let init: Value = serde_json::from_str(&data)?;
    assert_eq!(init["id"], 1);
    assert_eq!(
        init["result"]["serverInfo"]["name"],
        "catwalk-conformance-server"
    );
    assert_eq!(
        post(json!({"jsonrpc":"2.0","method":"notifications/initialized"}))
            .await?
            .status(),
        202
    );

    assert_eq!(
        post(json!({"jsonrpc":"2.0","id":2,"method":"tools/call",
        "params":{"name":"echo","arguments":{"message":"legacy"}}}))
        .await?
        .status(),
        202
    );
    let (_, data) = read_events(&mut stream, &mut buffer, 1).await?.remove(0);
    let call: Value = serde_json::from_str(&data)?;
    assert_eq!(call["result"]["content"][0]["text"], "Echo: legacy");
    // Progress, in order, before the answer, on the one stream.
    assert_eq!(
        post(json!({"jsonrpc":"2.0","id":"p","method":"tools/call",
        "params":{"name":"test_tool_with_progress","arguments":{},"_meta":{"progressToken":"t"}}}))
        .await?
        .status(),
        202
    );
    let events = read_events(&mut stream, &mut buffer, 4).await?;
    let messages: Vec<Value> = events
        .iter()
        .map(|(_, d)| serde_json::from_str(d))
        .collect::<Result<_, _>>()?;
    let progress: Vec<&Value> = messages[..3]
        .iter()
        .map(|m| &m["params"]["progress"])
        .collect();
    assert_eq!(
        progress,
        [&json!(0), &json!(50), &json!(100)],
        "{messages:?}"
    );
    assert_eq!(messages[3]["id"], "p");

    assert_eq!(
        post(json!({"jsonrpc":"2.0","id":3,"method":"tools/call",
        "params":{"name":"pid","arguments":{}}}))
        .await?
        .status(),
        202
    );
    let (_, data) = read_events(&mut stream, &mut buffer, 1).await?.remove(0);
    let pid: i32 = serde_json::from_str::<Value>(&data)?["result"]["content"][0]["text"]
        .as_str()
        .unwrap()
        .parse()?;

    // Bad input on the endpoint.
    let bad = http
        .post(&post_url)
        .header("content-type", "application/json")
        .body("{oops")
        .send()
        .await?;
    assert_eq!(bad.status(), 400);
    let missing = http
        .post(format!("{}/message", cw.base))
        .body("{}")
        .send()
        .await?;
    assert_eq!(missing.status(), 400);
    let unknown = http
        .post(format!("{}/message?sessionId=nope", cw.base))
        .body("{}")
        .send()
        .await?;
    assert_eq!(unknown.status(), 404);

    // Closing the stream ends the session and stops its server.
    drop(stream);
    eventually(
        Duration::from_secs(10),
        "server stopped after the stream closed",
        || async { !alive(pid) },
    )
    .await?;
    let after = post(json!({"jsonrpc":"2.0","id":4,"method":"ping"})).await?;
    assert_eq!(after.status(), 404);
    cw.stop().await
}

#[tokio::test]
async fn session_ids_do_not_cross_transports() -> Result<()> {
    let cw = Catwalk::start(&[], &fixture(), &[]).await?;
    let http = reqwest::Client::new();
    let mut stream = http.get(format!("{}/sse", cw.base)).send().await?;
    let mut buffer = String::new();
    let endpoint = read_events(&mut stream, &mut buffer, 1).await?.remove(0).1;
    let legacy_id = endpoint.split('=').nth(1).unwrap().to_owned();
    let on_streamable = http
        .post(cw.mcp())
        .header("accept", crate::support::ACCEPT_BOTH)
        .header("content-type", "application/json")
        .header("mcp-session-id", &legacy_id)
        .body(r#"{"jsonrpc":"2.0","id":1,"method":"ping"}"#)
        .send()
        .await?;
    assert_eq!(on_streamable.status(), 404);
    cw.stop().await
}

/// Every connection catwalk accepts has TCP_NODELAY: otherwise an SSE event written while the previous one is
/// still unacknowledged waits for the client's delayed ACK (40 ms on Linux), which held legacy SSE with 16 calls
/// in flight to ~3,600 calls/s.
#[tokio::test]
async fn accepted_connections_send_without_nagle_delay() -> Result<()> {
    use rustix::process::{PidfdFlags, PidfdGetfdFlags, getpid, pidfd_getfd, pidfd_open};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    let cw = Catwalk::start(&[], &fixture(), &[]).await?;
    let mut client = tokio::net::TcpStream::connect(cw.base.trim_start_matches("http://")).await?;
    // A whole exchange on the connection, so that catwalk has accepted it.
    client
        .write_all(b"GET /healthz HTTP/1.1\r\nhost: 127.0.0.1\r\n\r\n")
        .await?;
    let mut status = [0u8; 12];
    client.read_exact(&mut status).await?;
    assert_eq!(&status, b"HTTP/1.1 200");

    // catwalk runs in this process: find its end of the connection among our descriptors.
    let ours = client.local_addr()?;
    let pidfd = pidfd_open(getpid(), PidfdFlags::empty())?;
    let mut nodelay = Vec::new();
    for entry in std::fs::read_dir("/proc/self/fd")? {
        let Ok(raw) = entry?.file_name().to_string_lossy().parse() else {
            continue;
        };
        let Ok(fd) = pidfd_getfd(&pidfd, raw, PidfdGetfdFlags::empty()) else {
            continue;
        };
        let peer = rustix::net::getpeername(&fd).ok().flatten();
        if peer.and_then(|p| std::net::SocketAddr::try_from(p).ok()) == Some(ours) {
            nodelay.push(rustix::net::sockopt::tcp_nodelay(&fd)?);
        }
    }
    assert_eq!(nodelay, [true], "catwalk's end of the connection");
    cw.stop().await
}
