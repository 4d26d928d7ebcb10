//! Shared mode: one server process for every session, with nothing crossing between sessions.

use std::time::Duration;

use anyhow::Result;
use serde_json::{Value, json};

use crate::support::{Catwalk, Client, alive, eventually, fixture};

#[tokio::test]
async fn sessions_share_one_process_but_not_their_answers() -> Result<()> {
    let cw = Catwalk::start(&["--mode", "shared"], &fixture(), &[]).await?;
    let ready = || async {
        reqwest::get(format!("{}/readyz", cw.base))
            .await
            .is_ok_and(|r| r.status() == 200)
    };
    eventually(Duration::from_secs(30), "shared server ready", ready).await?;

    let mut clients = Vec::new();
    for _ in 0..8 {
        let mut client = Client::new(cw.mcp());
        let init = client.initialize("2025-11-25").await?;
        assert_eq!(
            init["id"], 0,
            "the cached initialize answer carries this client's id"
        );
        assert_eq!(
            init["result"]["serverInfo"]["name"],
            "catwalk-conformance-server"
        );
        clients.push(client);
    }
    let pids: Vec<String> = futures_util::future::try_join_all(
        clients
            .iter()
            .map(|c| c.call_text(json!(1), "pid", json!({}))),
    )
    .await?;
    assert!(
        pids.windows(2).all(|w| w[0] == w[1]),
        "one process: {pids:?}"
    );

    // Same ids and same progress tokens everywhere at once; each answer and each progress note finds its session.
    let calls = clients.iter().enumerate().map(|(n, c)| async move {
        let echo = c.call_text(json!(7), "echo", json!({"message": format!("from {n}")})).await?;
        anyhow::ensure!(echo == format!("Echo: from {n}"), "client {n} got {echo}");
        let answer = c
            .post(&json!({"jsonrpc":"2.0","id":7,"method":"tools/call",
                "params":{"name":"test_tool_with_progress","arguments":{},"_meta":{"progressToken":"same"}}}))
            .await?;
        let progress: Vec<&Value> = answer.messages.iter().filter(|m| m["method"] == "notifications/progress").collect();
        anyhow::ensure!(progress.len() == 3, "client {n}: {:?}", answer.messages);
        anyhow::ensure!(progress.iter().all(|p| p["params"]["progressToken"] == "same"));
        anyhow::Ok(())
    });
    futures_util::future::try_join_all(calls).await?;

    // Sampling goes back to the session whose tool call asked for it, and its answer reaches the server.
    let sampler = &clients[3];
    let mut request = sampler
        .request(&json!({"jsonrpc":"2.0","id":"s","method":"tools/call",
            "params":{"name":"test_sampling","arguments":{"prompt":"hello"}}}))
        .send()
        .await?;
    let mut seen = String::new();
    let sampling_id = loop {
        seen.push_str(&String::from_utf8_lossy(
            &request.chunk().await?.expect("stream open"),
        ));
        let (messages, _) = crate::support::parse_sse(&seen);
        if let Some(m) = messages
            .iter()
            .find(|m| m["method"] == "sampling/createMessage")
        {
            break m["id"].clone();
        }
    };
    let reply = json!({"jsonrpc":"2.0","id":sampling_id,"result":{"role":"assistant",
        "content":{"type":"text","text":"sampled"},"model":"test"}});
    assert_eq!(sampler.post(&reply).await?.status, 202);
    while !seen.contains("LLM response: sampled") {
        match request.chunk().await? {
            Some(chunk) => seen.push_str(&String::from_utf8_lossy(&chunk)),
            None => panic!("stream ended without the tool result: {seen}"),
        }
    }

    // The process dies: every session ends, and a new process serves new sessions.
    let pid: i32 = pids[0].parse()?;
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid),
        nix::sys::signal::Signal::SIGKILL,
    )?;
    eventually(Duration::from_secs(10), "old sessions ended", || async {
        clients[0]
            .post(&json!({"jsonrpc":"2.0","id":9,"method":"ping"}))
            .await
            .is_ok_and(|a| a.status == 404)
    })
    .await?;
    eventually(Duration::from_secs(30), "shared server restarted", ready).await?;
    let mut fresh = Client::new(cw.mcp());
    fresh.initialize("2025-11-25").await?;
    let new_pid: i32 = fresh.call_text(json!(1), "pid", json!({})).await?.parse()?;
    assert_ne!(new_pid, pid);
    let readyz: Value = reqwest::get(format!("{}/readyz", cw.base))
        .await?
        .json()
        .await?;
    assert!(
        readyz["detail"].as_str().unwrap().contains("1 restarts"),
        "{readyz}"
    );
    cw.stop().await?;
    assert!(!alive(new_pid));
    Ok(())
}
