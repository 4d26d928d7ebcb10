//! Servers that crash, hang, print garbage or flood; clients that collide, guess ids, or overstay.

use std::time::Duration;

use anyhow::Result;
use serde_json::json;

use crate::support::{Catwalk, Client, alive, connected, echo_server, eventually, fixture};

#[tokio::test]
async fn a_crash_mid_request_answers_with_an_error_and_the_session_ends() -> Result<()> {
    let (cw, client) = connected(&[], &fixture()).await?;
    let pid: i32 = client
        .call_text(json!(1), "pid", json!({}))
        .await?
        .parse()?;
    let started = std::time::Instant::now();
    let response = client.call(json!(2), "crash", json!({})).await?;
    assert_eq!(response["error"]["code"], -32000, "{response}");
    assert!(
        response["error"]["message"]
            .as_str()
            .unwrap()
            .contains("exited with status 3"),
        "{response}"
    );
    // "Promptly": the answer came from the exit, not from the 5-minute request timeout.
    assert!(started.elapsed() < Duration::from_secs(60));
    assert!(!alive(pid));
    let next = client
        .post(&json!({"jsonrpc":"2.0","id":3,"method":"ping"}))
        .await?;
    assert_eq!(next.status, 404, "the client must re-initialize");
    cw.stop().await
}

#[tokio::test]
async fn a_server_that_never_answers_times_out_and_is_told_so() -> Result<()> {
    let (cw, client) = connected(&["--request-timeout", "700ms"], &fixture()).await?;
    let response = client.call(json!("h"), "hang", json!({})).await?;
    assert_eq!(response["error"]["code"], -32001, "{response}");
    // The session is still usable afterwards.
    assert_eq!(
        client
            .call_text(json!(2), "echo", json!({"message":"after"}))
            .await?,
        "Echo: after"
    );
    cw.stop().await
}

#[tokio::test]
async fn garbage_and_oversized_lines_are_dropped_and_the_session_goes_on() -> Result<()> {
    let (cw, client) = connected(&[], &fixture()).await?;
    // A non-JSON line and a 10 MiB notification (over the 4 MiB limit) on stdout, then a real answer.
    let text = client
        .call_text(json!(1), "garbage", json!({"bytes": 10 * 1024 * 1024}))
        .await?;
    assert_eq!(text, "still here");
    assert_eq!(
        client
            .call_text(json!(2), "echo", json!({"message":"ok"}))
            .await?,
        "Echo: ok"
    );
    cw.stop().await
}

#[tokio::test]
async fn an_oversized_response_fails_exactly_its_request() -> Result<()> {
    let (cw, client) = connected(&["--max-message-bytes", "2000"], &fixture()).await?;
    let response = client
        .call(json!("big"), "big_answer", json!({"bytes": 5000}))
        .await?;
    assert_eq!(response["error"]["code"], -32003, "{response}");
    assert_eq!(
        client
            .call_text(json!("small"), "echo", json!({"message":"y"}))
            .await?,
        "Echo: y"
    );
    cw.stop().await
}

#[tokio::test]
async fn sixty_four_sessions_with_the_same_ids_get_only_their_own_answers() -> Result<()> {
    let cw = Catwalk::start(&[], &echo_server(), &[]).await?;
    let url = cw.mcp();
    let clients = (0..64).map(|n| {
        let url = url.clone();
        tokio::spawn(async move {
            let mut client = Client::new(url);
            client.initialize("2025-06-18").await?;
            for round in 0..20 {
                let mine = format!("client-{n}-round-{round}");
                let got = client
                    .call_text(json!(1), "echo", json!({"message": mine}))
                    .await?;
                anyhow::ensure!(got == mine, "client {n} got {got:?}");
            }
            anyhow::Ok(())
        })
    });
    for result in futures_util::future::join_all(clients).await {
        result??;
    }
    cw.stop().await
}

#[tokio::test]
async fn the_session_cap_answers_503_and_frees_places() -> Result<()> {
    let cw = Catwalk::start(&["--max-sessions", "2"], &echo_server(), &[]).await?;
    let mut a = Client::new(cw.mcp());
    let mut b = Client::new(cw.mcp());
    let mut c = Client::new(cw.mcp());
    a.initialize("2025-06-18").await?;
    b.initialize("2025-06-18").await?;
    let full = c.initialize("2025-06-18").await.unwrap_err().to_string();
    assert!(
        full.contains("503") && full.contains("maximum of 2 sessions"),
        "{full}"
    );
    a.delete().await?;
    c.initialize("2025-06-18").await?;
    cw.stop().await
}

#[tokio::test]
async fn idle_sessions_are_reaped_with_their_server() -> Result<()> {
    let (cw, client) = connected(&["--session-ttl", "300ms"], &fixture()).await?;
    let pid: i32 = client
        .call_text(json!(1), "pid", json!({}))
        .await?
        .parse()?;
    eventually(Duration::from_secs(20), "idle server stopped", || async {
        !alive(pid)
    })
    .await?;
    let after = client
        .post(&json!({"jsonrpc":"2.0","id":2,"method":"ping"}))
        .await?;
    assert_eq!(after.status, 404);
    cw.stop().await
}

#[tokio::test]
async fn delete_stops_the_server_and_the_grandchildren_it_started_in_their_own_session()
-> Result<()> {
    let (cw, client) = connected(&["--stop-grace", "300ms"], &fixture()).await?;
    let pid: i32 = client
        .call_text(json!(1), "pid", json!({}))
        .await?
        .parse()?;
    let grandchild: i32 = client
        .call_text(json!(2), "spawn_grandchild", json!({}))
        .await?
        .parse()?;
    assert!(alive(pid) && alive(grandchild));
    client.delete().await?;
    eventually(
        Duration::from_secs(10),
        "server and setsid grandchild gone",
        || async { !alive(pid) && !alive(grandchild) },
    )
    .await?;
    cw.stop().await
}

#[tokio::test]
async fn orphans_left_by_a_crashed_server_are_reaped_not_left_as_zombies() -> Result<()> {
    let (cw, client) = connected(&[], &fixture()).await?;
    let orphan: i32 = client
        .call_text(json!(1), "spawn_grandchild", json!({"seconds": 1}))
        .await?
        .parse()?;
    let _ = client.call(json!(2), "crash", json!({})).await?;
    // The orphan (in its own session, so outside the server's process group) is re-parented to catwalk, the
    // subreaper; when it exits, catwalk must reap it, or it stays a zombie for as long as catwalk runs.
    let gone = || async move { !std::path::Path::new(&format!("/proc/{orphan}")).exists() };
    eventually(Duration::from_secs(15), "orphan reaped", gone).await?;
    cw.stop().await
}

#[tokio::test]
async fn shutdown_lets_in_flight_requests_finish_then_stops_every_server() -> Result<()> {
    let (cw, client) = connected(&[], &fixture()).await?;
    let pid: i32 = client
        .call_text(json!(1), "pid", json!({}))
        .await?
        .parse()?;
    let mut stream = client
        .request(&json!({"jsonrpc":"2.0","id":2,"method":"tools/call",
            "params":{"name":"test_tool_with_logging","arguments":{}}}))
        .send()
        .await?;
    // The request is in flight once its first log line is on its stream.
    let mut seen = String::new();
    while !seen.contains("Tool execution started") {
        seen.push_str(&String::from_utf8_lossy(
            &stream.chunk().await?.expect("stream open"),
        ));
    }
    let stopping = tokio::spawn(cw.stop());
    while let Some(chunk) = stream.chunk().await? {
        seen.push_str(&String::from_utf8_lossy(&chunk));
    }
    stopping.await??;
    let (messages, _) = crate::support::parse_sse(&seen);
    let response = messages
        .iter()
        .find(|m| m["id"] == 2)
        .expect("the in-flight request was answered");
    assert_eq!(
        response["result"]["content"][0]["text"],
        "Tool with logging executed successfully"
    );
    assert!(!alive(pid), "every server is stopped when run returns");
    Ok(())
}
