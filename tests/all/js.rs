//! catwalk-js: a JavaScript MCP server (tests/fixtures/js-server) run by the QuickJS runtime built for
//! wasm32-wasip1, served as any WASI guest is: its script mounted read-only, only granted env, the same limits.

use std::time::Duration;

use anyhow::Result;
use serde_json::{Value, json};

use crate::support::{Catwalk, Client, eventually};

/// catwalk serving the JS fixture under catwalk-js, and a client with a session.
async fn js_server(flags: &[&str], host_env: &[(&str, &str)]) -> Result<(Catwalk, Client)> {
    let runtime = crate::wasi::guest("wasm32-wasip1", "catwalk-js");
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/js-server");
    let grant = format!("{script}::/app:ro");
    let mut all = vec!["--wasm", runtime.as_str(), "--dir", grant.as_str()];
    all.extend_from_slice(flags);
    let cw = Catwalk::start_without_command(&all, host_env).await?;
    let mut client = Client::new(cw.mcp());
    let initialized = client.initialize("2025-11-25").await?;
    assert_eq!(
        initialized["result"]["serverInfo"]["name"], "catwalk-js-fixture",
        "{initialized}"
    );
    Ok((cw, client))
}

async fn text(client: &Client, tool: &str, arguments: Value) -> Result<String> {
    let answer = client.call(json!(tool), tool, arguments).await?;
    Ok(answer["result"]["content"][0]["text"]
        .as_str()
        .unwrap_or_else(|| panic!("{tool}: {answer}"))
        .to_owned())
}

#[tokio::test]
async fn a_javascript_server_runs_in_the_sandbox_with_timers_randomness_and_only_granted_env()
-> Result<()> {
    let (cw, client) = js_server(
        &["--env", "GRANTED=yes"],
        &[("CANARY_SECRET", "canary-5e1b")],
    )
    .await?;
    assert_eq!(
        text(&client, "echo", json!({"message": "hi"})).await?,
        "Echo: hi"
    );
    // Answered by a timer that fires while the runtime waits on stdin.
    assert_eq!(
        text(&client, "later", json!({"ms": 40})).await?,
        "after 40 ms"
    );
    let (a, b) = (
        text(&client, "uuid", json!({})).await?,
        text(&client, "uuid", json!({})).await?,
    );
    for uuid in [&a, &b] {
        let groups: Vec<usize> = uuid.split('-').map(str::len).collect();
        assert_eq!(groups, [8, 4, 4, 4, 12], "{uuid}");
        assert_eq!(uuid.as_bytes()[14], b'4', "version 4: {uuid}");
    }
    assert_ne!(a, b, "random, not repeated");
    assert_eq!(text(&client, "env", json!({})).await?, "GRANTED");
    let unicode = "héllo ✓ 🎉";
    assert_eq!(
        text(&client, "utf8", json!({"text": unicode})).await?,
        unicode
    );
    cw.stop().await
}

#[tokio::test]
async fn a_javascript_server_that_exits_or_throws_ends_its_session_with_the_reason() -> Result<()> {
    let (cw, client) = js_server(&[], &[]).await?;
    let answer = client.call(json!(1), "exit", json!({"code": 3})).await?;
    let message = answer["error"]["message"].as_str().unwrap_or_default();
    assert!(message.contains("exited with status 3"), "{answer}");

    // An exception thrown from a timer, after the call was answered, is uncaught: the program ends with 1.
    let mut other = Client::new(cw.mcp());
    other.initialize("2025-11-25").await?;
    assert_eq!(text(&other, "throw_later", json!({})).await?, "scheduled");
    eventually(Duration::from_secs(10), "the session ends", || {
        let other = &other;
        async move {
            other
                .call(json!(2), "echo", json!({"message": "still there?"}))
                .await
                .map_or(true, |answer| answer.get("result").is_none())
        }
    })
    .await?;
    cw.stop().await
}

#[tokio::test]
async fn a_spinning_or_hoarding_javascript_server_is_stopped_at_its_limits() -> Result<()> {
    let (cw, spinner) = js_server(&["--cpu-budget", "300ms", "--memory", "32MiB"], &[]).await?;
    let answer = spinner.call(json!(1), "spin", json!({})).await?;
    let message = answer["error"]["message"].as_str().unwrap_or_default();
    assert!(message.contains("CPU budget"), "{answer}");

    let mut hoarder = Client::new(cw.mcp());
    hoarder.initialize("2025-11-25").await?;
    let answer = hoarder.call(json!(1), "hoard", json!({})).await?;
    assert!(answer.get("result").is_none(), "{answer}");

    // Another session of the same server is unaffected.
    let mut other = Client::new(cw.mcp());
    other.initialize("2025-11-25").await?;
    assert_eq!(
        text(&other, "echo", json!({"message": "fine"})).await?,
        "Echo: fine"
    );
    cw.stop().await
}
