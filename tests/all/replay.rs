//! Sessions across machines: two catwalks with different machine ids, as two Fly Machines of one app would be.
//! A request for the other machine's session gets `fly-replay` naming that machine; Fly's proxy is not needed
//! to check the decision.

use anyhow::Result;
use serde_json::json;

use crate::support::{Catwalk, Client};

#[tokio::test]
async fn a_request_for_another_machines_session_is_replayed_there() -> Result<()> {
    let one = Catwalk::start_without_command(&["--machine-id", "m1a2"], &[]).await?;
    let two = Catwalk::start_without_command(&["--machine-id", "m2b3"], &[]).await?;
    let mut client = Client::new(one.mcp());
    client.initialize("2025-11-25").await?;
    let id = client.session.clone().expect("a session id");
    assert!(id.starts_with("m1a2-"), "{id}");

    // On its own machine, the session answers.
    let list = json!({"jsonrpc": "2.0", "id": 1, "method": "tools/list"});
    assert_eq!(client.post(&list).await?.status, 200);

    // On the other machine: 421, a JSON-RPC error, and the replay to the session's machine.
    let mut elsewhere = Client::new(two.mcp());
    elsewhere.session = Some(id.clone());
    let answer = elsewhere.post(&list).await?;
    assert_eq!(answer.status, 421, "{answer:?}");
    assert_eq!(
        answer.headers["fly-replay"],
        "instance=m1a2;timeout=5s;fallback=force_self"
    );
    assert_eq!(answer.messages[0]["error"]["code"], -32600);
    let http = reqwest::Client::new();
    for method in [reqwest::Method::GET, reqwest::Method::DELETE] {
        let response = http
            .request(method.clone(), two.mcp())
            .header("mcp-session-id", &id)
            .header("accept", "text/event-stream")
            .send()
            .await?;
        assert_eq!(response.status(), 421, "{method}");
        assert!(response.headers().contains_key("fly-replay"), "{method}");
    }
    // A legacy message names its session in the query.
    let legacy = http
        .post(format!("{}/message?sessionId={id}", two.base))
        .json(&list)
        .send()
        .await?;
    assert_eq!(legacy.status(), 421);
    assert_eq!(
        legacy.headers()["fly-replay"],
        "instance=m1a2;timeout=5s;fallback=force_self"
    );

    // Replayed once already (or sent back because the machine is gone): not replayed again, just unknown here.
    for header in ["fly-replay-src", "fly-replay-failed"] {
        let response = http
            .post(two.mcp())
            .header("mcp-session-id", &id)
            .header("accept", "application/json, text/event-stream")
            .header(header, "instance=m1a2")
            .json(&list)
            .send()
            .await?;
        assert_eq!(response.status(), 404, "{header}");
        assert!(!response.headers().contains_key("fly-replay"));
    }
    // An id that names no machine, or this one, is simply unknown.
    for stranger in ["0123456789abcdef0123456789abcdef", "m2b3-0123456789abcdef"] {
        let mut other = Client::new(two.mcp());
        other.session = Some(stranger.into());
        assert_eq!(other.post(&list).await?.status, 404, "{stranger}");
    }
    one.stop().await?;
    two.stop().await
}

#[tokio::test]
async fn a_machine_id_must_be_letters_and_digits() -> Result<()> {
    let error = Catwalk::start_without_command(&["--machine-id", "m1-evil;x"], &[])
        .await
        .err()
        .expect("refused")
        .to_string();
    assert!(error.contains("--machine-id"), "{error}");
    Ok(())
}
