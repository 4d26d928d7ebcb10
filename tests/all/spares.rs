//! Spare servers (per-session mode): started ahead of need, taken by the next new session, replaced, and
//! stopped at shutdown.

use std::time::Duration;

use anyhow::Result;
use serde_json::json;

use crate::support::{Catwalk, Client, alive, eventually, fixture};

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
