//! Spares: server processes (per-session mode) and WASI guests started ahead of need, taken by the next new
//! session, replaced, and stopped at shutdown (or when their tenant goes).

use std::time::Duration;

use anyhow::Result;
use serde_json::json;

use crate::support::{Catwalk, Client, alive, eventually, fixture, metric, scrape};
use crate::tenants::with_admin_api;
use crate::wasi::guest;

/// The pids of live processes whose environment holds `marker` (this test's servers, not other tests').
fn servers_marked(marker: &str) -> Vec<i32> {
    let needle = format!("CATWALK_TEST_MARK={marker}");
    std::fs::read_dir("/proc")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|entry| entry.file_name().to_str()?.parse::<i32>().ok())
        .filter(|&pid| alive(pid))
        .filter(|pid| {
            std::fs::read(format!("/proc/{pid}/environ"))
                .is_ok_and(|env| env.split(|&b| b == 0).any(|var| var == needle.as_bytes()))
        })
        .collect()
}

/// A new session, and the pid of its server.
async fn session_and_pid(cw: &Catwalk) -> Result<(Client, i32)> {
    let mut client = Client::new(cw.mcp());
    client.initialize("2025-11-25").await?;
    let pid = client
        .call_text(json!(1), "pid", json!({}))
        .await?
        .parse()?;
    Ok((client, pid))
}

#[tokio::test]
async fn a_new_session_takes_the_spare_started_before_it_and_shutdown_stops_the_spares()
-> Result<()> {
    let marker = format!("{:x}", std::process::id() as u64 * 7919 + 17);
    let env = format!("CATWALK_TEST_MARK={marker}");
    let cw = Catwalk::start(&["--spare", "1", "--env", &env], &fixture(), &[]).await?;

    // Before any session: one server is running, the spare.
    eventually(
        Duration::from_secs(20),
        "a spare server started",
        || async { servers_marked(&marker).len() == 1 },
    )
    .await?;
    let spare = servers_marked(&marker)[0];

    // The first session's server is that process, started before the session existed; a new spare replaces it.
    let (_first, pid) = session_and_pid(&cw).await?;
    assert_eq!(pid, spare, "the session did not get the spare");
    eventually(Duration::from_secs(20), "the spare replaced", || async {
        servers_marked(&marker).len() == 2
    })
    .await?;
    let next = servers_marked(&marker)
        .into_iter()
        .find(|&p| p != pid)
        .expect("two servers");

    // Another session gets the replacement.
    let (_second, second_pid) = session_and_pid(&cw).await?;
    assert_eq!(second_pid, next);

    // At shutdown nothing is left: the sessions' servers and the spare started after the second session.
    eventually(
        Duration::from_secs(20),
        "the second spare started",
        || async { servers_marked(&marker).len() == 3 },
    )
    .await?;
    cw.stop().await?;
    assert_eq!(servers_marked(&marker), Vec::<i32>::new());
    Ok(())
}

#[tokio::test]
async fn with_no_spares_a_server_starts_only_for_a_session() -> Result<()> {
    let marker = format!("{:x}", std::process::id() as u64 * 104_729 + 3);
    let env = format!("CATWALK_TEST_MARK={marker}");
    let cw = Catwalk::start(&["--spare", "0", "--env", &env], &fixture(), &[]).await?;
    let (_client, pid) = session_and_pid(&cw).await?;
    assert_eq!(servers_marked(&marker), vec![pid]);
    cw.stop().await?;
    assert_eq!(servers_marked(&marker), Vec::<i32>::new());
    Ok(())
}

/// The value of `series` on catwalk's `/metrics` now.
async fn gauge(cw: &Catwalk, admin: Option<&str>, series: &str) -> Result<Option<f64>> {
    Ok(metric(&scrape(&cw.base, admin).await?, series))
}

const DEMO_SPARES: &str = "catwalk_spares{tenant=\"\",backend=\"wasi\"}";
const DEMO_FROM_SPARE: &str =
    "catwalk_instance_starts_total{tenant=\"\",backend=\"wasi\",outcome=\"spare\"}";
const DEMO_STARTED: &str =
    "catwalk_instance_starts_total{tenant=\"\",backend=\"wasi\",outcome=\"ok\"}";

/// A session on the demo guest, checked to answer.
async fn demo_session(cw: &Catwalk, message: &str) -> Result<Client> {
    let mut client = Client::new(cw.mcp());
    client.initialize("2025-11-25").await?;
    let text = client
        .call_text(json!(1), "echo", json!({"message": message}))
        .await?;
    assert_eq!(text, format!("Echo: {message}"));
    Ok(client)
}

#[tokio::test]
async fn a_wasi_session_takes_a_guest_started_before_it_and_another_replaces_it() -> Result<()> {
    let cw = Catwalk::start_without_command(&["--spare", "1"], &[]).await?;
    let spare_waiting =
        || async { gauge(&cw, None, DEMO_SPARES).await.ok().flatten() == Some(1.0) };
    eventually(
        Duration::from_secs(20),
        "a spare guest started",
        spare_waiting,
    )
    .await?;

    // The session's guest is the spare: none is started for it, and another takes the spare's place.
    let _first = demo_session(&cw, "first").await?;
    let metrics = scrape(&cw.base, None).await?;
    assert_eq!(metric(&metrics, DEMO_FROM_SPARE), Some(1.0), "{metrics}");
    assert_eq!(metric(&metrics, DEMO_STARTED), None, "{metrics}");
    eventually(Duration::from_secs(20), "the spare replaced", spare_waiting).await?;

    // Each guest is its session's own: the next session gets the replacement, with a fresh state.
    let _second = demo_session(&cw, "second").await?;
    assert_eq!(gauge(&cw, None, DEMO_FROM_SPARE).await?, Some(2.0));
    cw.stop().await
}

#[tokio::test]
async fn without_spares_each_wasi_session_starts_its_own_guest() -> Result<()> {
    let cw = Catwalk::start_without_command(&["--spare", "0"], &[]).await?;
    let _client = demo_session(&cw, "cold").await?;
    let metrics = scrape(&cw.base, None).await?;
    assert_eq!(metric(&metrics, DEMO_STARTED), Some(1.0), "{metrics}");
    assert_eq!(metric(&metrics, DEMO_FROM_SPARE), None, "{metrics}");
    assert_eq!(
        metric(&metrics, DEMO_SPARES).unwrap_or(0.0),
        0.0,
        "{metrics}"
    );
    cw.stop().await
}

#[tokio::test]
async fn a_removed_tenants_spare_guest_is_stopped() -> Result<()> {
    let admin = "spares-admin-t0ken";
    let cw = with_admin_api("spares", admin).await?;
    let url = format!("{}/admin/tenants/s", cw.base);
    let http = reqwest::Client::new();
    let wasm = guest("wasm32-wasip1", "catwalk-conformance-guest");
    let added = http
        .put(&url)
        .bearer_auth(admin)
        .json(&json!({"id": "s", "wasm": wasm}))
        .send()
        .await?;
    assert_eq!(added.status(), 201);
    let series = "catwalk_spares{tenant=\"s\",backend=\"wasi\"}";
    eventually(
        Duration::from_secs(20),
        "the tenant's spare started",
        || async { gauge(&cw, Some(admin), series).await.ok().flatten() == Some(1.0) },
    )
    .await?;

    let removed = http.delete(&url).bearer_auth(admin).send().await?;
    assert_eq!(removed.status(), 204);
    eventually(Duration::from_secs(20), "the spare stopped", || async {
        gauge(&cw, Some(admin), series).await.ok().flatten() == Some(0.0)
    })
    .await?;
    cw.stop().await
}
