//! The WASI backend: guests written with catwalk-guest, served sandboxed, and guests that attack the sandbox.
//! The guests are built for wasm by the test command (`bash tests/run.sh`).

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Result;
use serde_json::{Value, json};

use crate::support::{Catwalk, Client, metric};

/// A guest built for `target` (`wasm32-wasip1` or `wasm32-wasip2`) in this build's target dir.
pub fn guest(target: &str, name: &str) -> String {
    let exe = std::env::current_exe().expect("test executable");
    let target_dir: PathBuf = exe.ancestors().nth(3).expect("target dir").into();
    let path = target_dir
        .join(target)
        .join("release")
        .join(format!("{name}.wasm"));
    assert!(
        path.exists(),
        "{} is missing: cargo build --release --target {target} -p {name}",
        path.display()
    );
    path.display().to_string()
}

async fn serve(wasm: &str, flags: &[&str], host_env: &[(&str, &str)]) -> Result<Catwalk> {
    let mut all = vec!["--wasm", wasm];
    all.extend_from_slice(flags);
    Catwalk::start_without_command(&all, host_env).await
}

#[tokio::test]
async fn guests_serve_over_http_as_p1_modules_and_p2_components() -> Result<()> {
    for target in ["wasm32-wasip1", "wasm32-wasip2"] {
        let cw = serve(&guest(target, "catwalk-conformance-guest"), &[], &[]).await?;
        let mut client = Client::new(cw.mcp());
        let init = client.initialize("2025-11-25").await?;
        assert_eq!(
            init["result"]["serverInfo"]["name"], "catwalk-conformance-guest",
            "{target}"
        );
        assert_eq!(
            client
                .call_text(json!(1), "echo", json!({"message": target}))
                .await?,
            format!("Echo: {target}")
        );
        let answer = client
            .post(&json!({"jsonrpc":"2.0","id":2,"method":"tools/call",
                "params":{"name":"test_tool_with_progress","arguments":{},"_meta":{"progressToken":1}}}))
            .await?;
        let progress = answer
            .messages
            .iter()
            .filter(|m| m["method"] == "notifications/progress")
            .count();
        assert_eq!(progress, 3, "{target}: {:?}", answer.messages);
        client.delete().await?;
        assert_eq!(
            client
                .post(&json!({"jsonrpc":"2.0","id":3,"method":"ping"}))
                .await?
                .status,
            404
        );
        cw.stop().await?;
    }
    Ok(())
}

/// catwalk serving the hostile guest `catwalk-hostile-<attack>` built for `target`, and a session on it.
async fn hostile_on(
    attack: &str,
    target: &str,
    flags: &[&str],
    host_env: &[(&str, &str)],
) -> Result<(Catwalk, Client)> {
    let cw = serve(
        &guest(target, &format!("catwalk-hostile-{attack}")),
        flags,
        host_env,
    )
    .await?;
    let mut client = Client::new(cw.mcp());
    client.initialize("2025-11-25").await?;
    Ok((cw, client))
}

async fn hostile(
    attack: &str,
    flags: &[&str],
    host_env: &[(&str, &str)],
) -> Result<(Catwalk, Client)> {
    hostile_on(attack, "wasm32-wasip1", flags, host_env).await
}

/// A tool result's text and whether it is an error.
async fn attempt(client: &Client, tool: &str, arguments: Value) -> Result<(String, bool)> {
    let response = client.call(json!(tool), tool, arguments).await?;
    let text = response["result"]["content"][0]["text"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    Ok((text, response["result"]["isError"] == true))
}

/// A scratch directory for grants, removed at the end.
struct Scratch(PathBuf);

impl Scratch {
    fn new(name: &str) -> Result<Self> {
        let dir = std::env::temp_dir().join(format!("catwalk-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir)?;
        Ok(Self(dir))
    }

    fn grant(&self, guest: &str) -> String {
        format!("{}::{guest}", self.0.display())
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[tokio::test]
async fn paths_outside_the_grants_cannot_be_read() -> Result<()> {
    let dir = Scratch::new("fs-read")?;
    std::fs::write(dir.0.join("ok.txt"), "granted")?;
    std::os::unix::fs::symlink("/etc/passwd", dir.0.join("link"))?;
    std::os::unix::fs::symlink("/etc", dir.0.join("etc-dir"))?;
    let (cw, client) = hostile("fs-read", &["--dir", &dir.grant("/data")], &[]).await?;
    let read = |path: &'static str| attempt(&client, "read_file", json!({ "path": path }));
    assert_eq!(read("/data/ok.txt").await?, ("READ 7 bytes".into(), false));
    let escapes = [
        "/etc/passwd",
        "/",
        "/proc/self/environ",
        "/data/../etc/passwd",
        "/data/../../etc/passwd",
        "../etc/passwd",
        "/data/link",
        "/data/etc-dir/passwd",
        "/data/etc-dir/",
        "/data/etc-dir",
    ];
    for path in escapes {
        let (text, error) = read(path).await?;
        assert!(error && text.starts_with("denied"), "{path}: {text}");
    }
    cw.stop().await
}

#[tokio::test]
async fn read_only_grants_refuse_writes_truncation_renames_and_hard_links() -> Result<()> {
    let dir = Scratch::new("fs-write")?;
    std::fs::write(dir.0.join("keep.txt"), "unchanged")?;
    let before = std::fs::metadata(dir.0.join("keep.txt"))?.modified()?;
    let (cw, client) = hostile("fs-write", &["--dir", &dir.grant("/data")], &[]).await?;
    let attempts = [
        ("write_file", json!({"path": "/data/keep.txt"})),
        ("write_file", json!({"path": "/data/new.txt"})),
        ("truncate", json!({"path": "/data/keep.txt"})),
        (
            "rename",
            json!({"from": "/data/keep.txt", "to": "/data/moved.txt"}),
        ),
        (
            "hard_link",
            json!({"from": "/data/keep.txt", "to": "/data/linked.txt"}),
        ),
    ];
    for (tool, args) in attempts {
        let (text, error) = attempt(&client, tool, args.clone()).await?;
        assert!(error && text.starts_with("denied"), "{tool} {args}: {text}");
    }
    assert_eq!(
        std::fs::read_to_string(dir.0.join("keep.txt"))?,
        "unchanged"
    );
    assert_eq!(
        std::fs::metadata(dir.0.join("keep.txt"))?.modified()?,
        before
    );
    let names: Vec<_> = std::fs::read_dir(&dir.0)?
        .map(|e| e.map(|e| e.file_name()))
        .collect::<Result<_, _>>()?;
    assert_eq!(names, ["keep.txt"]);
    cw.stop().await?;

    // The same grant made writable does allow writes: the denials above were the grant's doing.
    let (cw, client) = hostile(
        "fs-write",
        &["--dir", &format!("{}:rw", dir.grant("/data"))],
        &[],
    )
    .await?;
    assert_eq!(
        attempt(&client, "write_file", json!({"path": "/data/new.txt"})).await?,
        ("WROTE".into(), false)
    );
    cw.stop().await
}

#[tokio::test]
async fn only_granted_env_vars_are_visible() -> Result<()> {
    let host = [("FROM_HOST", "by-name"), ("CANARY_SECRET", "canary-9d2f")];
    let (cw, client) = hostile(
        "env",
        &["--env", "GRANTED=yes", "--env", "FROM_HOST"],
        &host,
    )
    .await?;
    let env = |name: &'static str| attempt(&client, "env", json!({ "name": name }));
    assert_eq!(env("GRANTED").await?, ("SET yes".into(), false));
    assert_eq!(env("FROM_HOST").await?, ("SET by-name".into(), false));
    for name in ["CANARY_SECRET", "PATH", "HOME"] {
        assert_eq!(env(name).await?, ("absent".into(), true), "{name}");
    }
    cw.stop().await
}

#[tokio::test]
async fn guests_cannot_open_sockets_or_resolve_names() -> Result<()> {
    // A listener the guest would reach if sockets were open to it.
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    listener.set_nonblocking(true)?;
    let target = listener.local_addr()?.to_string();
    for triple in ["wasm32-wasip1", "wasm32-wasip2"] {
        let (cw, client) = hostile_on("net", triple, &[], &[]).await?;
        for addr in [
            target.as_str(),
            "169.254.169.254:80",
            "[::ffff:127.0.0.1]:80",
        ] {
            let (text, error) = attempt(&client, "connect", json!({"addr": addr})).await?;
            assert!(
                error && text.starts_with("denied"),
                "{triple} {addr}: {text}"
            );
        }
        let (text, error) = attempt(&client, "resolve", json!({"name": "localhost"})).await?;
        assert!(error && text.starts_with("denied"), "{triple}: {text}");
        cw.stop().await?;
    }
    assert!(listener.accept().is_err(), "no connection arrived");
    Ok(())
}

#[tokio::test]
async fn a_spinning_guest_is_stopped_at_its_budget_while_another_keeps_answering() -> Result<()> {
    let (cw, spinner) = hostile("spin", &["--cpu-budget", "400ms"], &[]).await?;
    let mut other = Client::new(cw.mcp());
    other.initialize("2025-11-25").await?;
    let background_before = background_cpu();
    let spin = tokio::spawn(async move { spinner.call(json!("s"), "spin", json!({})).await });
    // While the spinner runs, the other tenant's guest keeps answering.
    let mut answered = 0;
    while !spin.is_finished() {
        assert_eq!(
            attempt(&other, "echo", json!({"message": "alive"})).await?,
            ("alive".into(), false)
        );
        answered += 1;
    }
    let response = spin.await??;
    assert_eq!(response["error"]["code"], -32000, "{response}");
    assert!(
        response["error"]["message"]
            .as_str()
            .unwrap()
            .contains("CPU budget"),
        "{response}"
    );
    assert!(
        answered > 0,
        "the other guest answered while the spinner ran"
    );
    // Past its foreground slice the spinner ran on the lowest-priority threads: nearly all of its 400 ms.
    let spun = background_cpu() - background_before;
    assert!(
        spun >= Duration::from_millis(250),
        "CPU on background threads while spinning: {spun:?}"
    );
    // An idle guest is not charged for the time it waits for input.
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert_eq!(
        attempt(&other, "echo", json!({"message": "still"})).await?,
        ("still".into(), false)
    );
    cw.stop().await
}

#[tokio::test]
async fn memory_bombs_deep_recursion_and_floods_end_only_their_own_session() -> Result<()> {
    let flags = ["--memory", "32MiB", "--max-message-bytes", "1MiB"];
    for (attack, tool, args, expect) in [
        ("memory", "alloc", json!({"mib": 200}), "memory"),
        ("recursion", "recurse", json!({}), "stack"),
        (
            "flood",
            "flood",
            json!({}),
            "line over the message size limit",
        ),
    ] {
        let (cw, client) = hostile(attack, &flags, &[]).await?;
        let response = client.call(json!(tool), tool, args).await?;
        assert_eq!(response["error"]["code"], -32000, "{tool}: {response}");
        let message = response["error"]["message"].as_str().unwrap_or_default();
        assert!(message.contains(expect), "{tool}: {message}");
        assert_eq!(
            client
                .post(&json!({"jsonrpc":"2.0","id":1,"method":"ping"}))
                .await?
                .status,
            404,
            "{tool}"
        );
        // catwalk itself is unharmed: a new session on the same guest answers.
        let mut fresh = Client::new(cw.mcp());
        fresh.initialize("2025-11-25").await?;
        let pong = fresh
            .post(&json!({"jsonrpc":"2.0","id":2,"method":"ping"}))
            .await?;
        assert_eq!(
            pong.response(&json!(2)).map(|r| r["result"].clone()),
            Some(json!({})),
            "{tool}"
        );
        if attack == "memory" {
            assert_eq!(
                attempt(&fresh, "alloc", json!({"mib": 8})).await?.0,
                "ALLOCATED 8 MiB",
                "within the cap"
            );
        }
        cw.stop().await?;
    }
    Ok(())
}

#[tokio::test]
async fn with_nothing_configured_the_built_in_demo_guest_is_served() -> Result<()> {
    let cw = Catwalk::start_without_command(&[], &[]).await?;
    let mut client = Client::new(cw.mcp());
    let init = client.initialize("2025-11-25").await?;
    assert_eq!(init["result"]["serverInfo"]["name"], "catwalk-echo");
    assert_eq!(
        client
            .call_text(json!(1), "echo", json!({"message": "demo"}))
            .await?,
        "Echo: demo"
    );
    let readyz: Value = reqwest::get(format!("{}/readyz", cw.base))
        .await?
        .json()
        .await?;
    assert_eq!(readyz["detail"], "catwalk-demo (wasm32-wasip1 module)");
    cw.stop().await
}

/// CPU used so far by this process's background-lane threads (all of them run at nice 19, which is checked).
fn background_cpu() -> Duration {
    let ticks_per_second = rustix::param::clock_ticks_per_second();
    let mut ticks = 0;
    for task in std::fs::read_dir("/proc/self/task").expect("/proc is mounted") {
        let Ok(stat) = std::fs::read_to_string(task.expect("a task entry").path().join("stat"))
        else {
            continue; // the thread ended
        };
        let Some((head, tail)) = stat.rsplit_once(')') else {
            continue;
        };
        if !head.ends_with("catwalk-guest-b") {
            continue;
        }
        // Fields after the name, from the state (field 3): utime is field 14, stime 15, nice 19.
        let fields: Vec<&str> = tail.split_whitespace().collect();
        assert_eq!(fields[16], "19", "a background thread's nice value");
        ticks += fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap();
    }
    Duration::from_millis(ticks * 1000 / ticks_per_second)
}

#[tokio::test]
async fn metrics_count_requests_instances_and_traps() -> Result<()> {
    // No spare: the session's guest is started for it (`outcome="ok"`).
    let (cw, spinner) = hostile("spin", &["--cpu-budget", "50ms", "--spare", "0"], &[]).await?;
    let scrape = || async {
        let response = reqwest::get(format!("{}/metrics", cw.base)).await?;
        assert_eq!(response.status(), 200);
        anyhow::Ok(response.text().await?)
    };
    let before = scrape().await?;
    assert_eq!(
        metric(&before, "catwalk_sessions{tenant=\"\"}"),
        Some(1.0),
        "{before}"
    );
    assert_eq!(
        metric(
            &before,
            "catwalk_instance_starts_total{tenant=\"\",backend=\"wasi\",outcome=\"ok\"}"
        ),
        Some(1.0)
    );
    assert_eq!(
        metric(
            &before,
            "catwalk_instance_exits_total{tenant=\"\",cause=\"trap\"}"
        ),
        None
    );
    let answered = metric(
        &before,
        "catwalk_http_requests_total{tenant=\"\",status=\"200\"}",
    )
    .unwrap_or_default();

    // The spin goes past its budget: the guest traps, its session ends, and the trap is counted once.
    let answer = spinner.call(json!("s"), "spin", json!({})).await?;
    assert!(
        answer["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("CPU budget")),
        "{answer}"
    );
    let gone = spinner
        .post(&json!({"jsonrpc": "2.0", "id": 2, "method": "tools/list"}))
        .await?;
    assert_eq!(gone.status, 404);
    let after = scrape().await?;
    assert_eq!(
        metric(
            &after,
            "catwalk_instance_exits_total{tenant=\"\",cause=\"trap\"}"
        ),
        Some(1.0),
        "{after}"
    );
    assert_eq!(metric(&after, "catwalk_sessions{tenant=\"\"}"), Some(0.0));
    assert_eq!(
        metric(
            &after,
            "catwalk_http_requests_total{tenant=\"\",status=\"200\"}"
        ),
        Some(answered + 1.0)
    );
    assert_eq!(
        metric(
            &after,
            "catwalk_http_requests_total{tenant=\"\",status=\"404\"}"
        ),
        Some(1.0)
    );
    assert!(
        metric(
            &after,
            "catwalk_http_request_duration_seconds_count{tenant=\"\"}"
        )
        .is_some_and(|n| n >= answered + 2.0),
        "{after}"
    );
    cw.stop().await
}

#[tokio::test]
async fn a_network_grant_opens_exactly_that_address_to_a_component() -> Result<()> {
    let granted = std::net::TcpListener::bind("127.0.0.1:0")?;
    let other = std::net::TcpListener::bind("127.0.0.1:0")?;
    other.set_nonblocking(true)?;
    let target = granted.local_addr()?.to_string();
    let (cw, client) = hostile_on("net", "wasm32-wasip2", &["--net", &target], &[]).await?;
    let (text, error) = attempt(&client, "connect", json!({"addr": target})).await?;
    assert_eq!((text.as_str(), error), ("CONNECTED", false));
    granted.set_nonblocking(false)?;
    assert!(granted.accept().is_ok(), "the connection arrived");
    // Another port on the same host, and any other address, stay closed; so does name lookup.
    for addr in [other.local_addr()?.to_string(), "169.254.169.254:80".into()] {
        let (text, error) = attempt(&client, "connect", json!({"addr": addr})).await?;
        assert!(error && text.starts_with("denied"), "{addr}: {text}");
    }
    let (text, error) = attempt(&client, "resolve", json!({"name": "localhost"})).await?;
    assert!(error && text.starts_with("denied"), "{text}");
    assert!(other.accept().is_err(), "nothing reached the other port");
    cw.stop().await
}

/// A snapshot's memory image is shared copy-on-write between instances: what one instance writes, into the
/// snapshot's pages or into fresh heap, no later instance can read, even one given the same pool slot.
#[tokio::test]
async fn no_instance_sees_another_instances_memory_through_a_snapshot() -> Result<()> {
    let dir = Scratch::new("snapshot")?;
    let wasm = std::fs::read(guest("wasm32-wasip1", "catwalk-hostile-snapshot"))?;
    let runtime = catwalk::backend::wasi::WasiRuntime::new(
        dir.0.join("cache"),
        catwalk::backend::wasi::PoolSize {
            instances: 2,
            max_memory_bytes: 64 << 20,
        },
    )?;
    let snapshot = runtime
        .snapshot(
            &wasm,
            "wizer-initialize",
            &catwalk::backend::wasi::GuestPolicy::new(),
            Duration::from_secs(60),
        )
        .await?;
    let path = dir.0.join("snapshot.wasm");
    std::fs::write(&path, &snapshot.wasm)?;
    // One session at a time and no spare: each new instance takes the slot the last one left.
    let cw = serve(
        &path.display().to_string(),
        &["--spare", "0", "--max-sessions", "2"],
        &[],
    )
    .await?;
    for round in 0..4 {
        let canary = format!("canary-{round}-{}", std::process::id());
        let mut planter = Client::new(cw.mcp());
        planter.initialize("2025-11-25").await?;
        let (before, _) = attempt(&planter, "search", json!({"canary": canary})).await?;
        assert_eq!(
            before, "CLEAN; BLOCK AS SNAPSHOT",
            "a new instance starts as the snapshot"
        );
        assert_eq!(
            attempt(&planter, "plant", json!({"canary": canary}))
                .await?
                .0,
            "PLANTED"
        );
        // The control: the search finds what was planted, in the instance that planted it.
        let (found, _) = attempt(&planter, "search", json!({"canary": canary})).await?;
        assert!(
            found.starts_with("FOUND at ") && found.contains("BLOCK CHANGED"),
            "round {round}: {found}"
        );
        assert_eq!(planter.delete().await?, 200);

        let mut searcher = Client::new(cw.mcp());
        searcher.initialize("2025-11-25").await?;
        let (after, _) = attempt(&searcher, "search", json!({"canary": canary})).await?;
        assert_eq!(after, "CLEAN; BLOCK AS SNAPSHOT", "round {round}");
        assert_eq!(searcher.delete().await?, 200);
    }
    cw.stop().await?;
    Ok(())
}
