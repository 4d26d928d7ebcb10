//! What a public endpoint meets: slow clients, a log collector that goes away, a handler that panics, idle
//! connections. catwalk (the binary, where the process's own limits and pipes matter) keeps serving the others.

use std::net::SocketAddr;
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpSocket, TcpStream};

use crate::support::{ACCEPT_BOTH, Catwalk, Client, helper, spawn_serving};

/// catwalk's binary started with `flags` through `sh` (so `ulimit` can come first), its address read from its
/// log; the child, and its stderr left to the caller when `keep_stderr`.
async fn spawn(
    shell_prefix: &str,
    flags: &[&str],
) -> Result<(
    tokio::process::Child,
    SocketAddr,
    tokio::io::Lines<BufReader<tokio::process::ChildStderr>>,
)> {
    let state = std::env::temp_dir().join("catwalk-test-state");
    let line = format!(
        "{shell_prefix} exec {} serve --port 0 --log-format json --state-dir {} {}",
        helper(),
        state.display(),
        flags.join(" ")
    );
    let mut command = tokio::process::Command::new("sh");
    command
        .args(["-c", &line])
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env(
            "RUST_LOG",
            "debug,cranelift_codegen=info,wasmtime_internal_cranelift=info",
        )
        .stdin(Stdio::null())
        .stdout(Stdio::piped());
    spawn_serving(&mut command).await
}

/// A minimal HTTP/1.1 GET of `path`, its status.
async fn get(addr: SocketAddr, path: &str) -> Result<u16> {
    let response = reqwest::Client::new()
        .get(format!("http://{addr}{path}"))
        .timeout(Duration::from_secs(10))
        .send()
        .await?;
    Ok(response.status().as_u16())
}

#[tokio::test]
async fn slow_clients_cannot_take_the_machine() -> Result<()> {
    // This test holds 1,100 sockets of its own.
    use rustix::process::{Resource, getrlimit, setrlimit};
    let limit = getrlimit(Resource::Nofile);
    if limit.current.unwrap_or(0) < 4096 {
        setrlimit(
            Resource::Nofile,
            rustix::process::Rlimit {
                current: limit.maximum,
                maximum: limit.maximum,
            },
        )?;
    }
    // 1,024 open files, soft and hard: the common default that a flood of half-sent heads used to exhaust.
    let (mut child, addr, _log) = spawn("ulimit -n 1024 &&", &["--header-timeout", "2s"]).await?;
    let slow_from: SocketAddr = "127.0.0.2:0".parse()?;
    let mut slow = Vec::new();
    let mut shed = 0;
    for _ in 0..1100 {
        let socket = TcpSocket::new_v4()?;
        socket.bind(slow_from)?;
        let Ok(mut stream) = socket.connect(addr).await else {
            shed += 1;
            continue;
        };
        // Half a request head, and then nothing.
        if stream
            .write_all(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\nX-Slow: ")
            .await
            .is_err()
        {
            shed += 1;
            continue;
        }
        slow.push(stream);
    }
    // Meanwhile, from another address, requests are answered.
    for _ in 0..5 {
        assert_eq!(
            get(addr, "/healthz").await?,
            200,
            "a legitimate request was not answered"
        );
    }
    let mut client = Client::new(format!("http://{addr}/mcp"));
    client.initialize("2025-11-25").await?;
    assert!(
        client
            .call_text(json!(1), "echo", json!({"message": "still here"}))
            .await?
            .contains("still here")
    );
    // Every slow connection is closed: the ones past the caps at once, the rest at their head's deadline.
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut closed_by_timeout = 0;
    let mut shed_now = 0;
    for stream in &mut slow {
        let mut buf = [0u8; 256];
        let left = deadline.saturating_duration_since(Instant::now());
        match tokio::time::timeout(left, stream.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => closed_by_timeout += 1,
            Ok(Ok(n)) if buf[..n].starts_with(b"HTTP/1.1 503") => shed_now += 1,
            // hyper answers a head that timed out with 408 before it closes.
            Ok(Ok(_)) => closed_by_timeout += 1,
            Err(_) => bail!("a slow connection was still open after a minute"),
        }
    }
    assert_eq!(closed_by_timeout + shed_now + shed, 1100);
    assert!(
        shed_now + shed > 0,
        "the address's cap shed some of the 1,100"
    );
    assert!(
        closed_by_timeout > 0,
        "those under the cap were held until their deadline"
    );
    // And catwalk is still serving.
    assert_eq!(get(addr, "/healthz").await?, 200);
    child.kill().await?;
    Ok(())
}

#[tokio::test]
async fn a_log_pipe_whose_reader_is_gone_does_not_stop_catwalk() -> Result<()> {
    let (mut child, addr, log) = spawn("", &[]).await?;
    // Both pipes' readers go away: every log line from now on meets EPIPE.
    drop(log);
    drop(child.stdout.take());
    for n in 0..20 {
        let mut client = Client::new(format!("http://{addr}/mcp"));
        client
            .initialize("2025-11-25")
            .await
            .with_context(|| format!("session {n}"))?;
        assert!(
            client
                .call_text(json!(1), "echo", json!({"message": "hi"}))
                .await?
                .contains("hi")
        );
        client.delete().await?;
    }
    let pid = nix::unistd::Pid::from_raw(child.id().context("pid")? as i32);
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM)?;
    let status = tokio::time::timeout(Duration::from_secs(30), child.wait())
        .await
        .context("catwalk did not stop on SIGTERM")??;
    assert_eq!(
        status.code(),
        Some(0),
        "catwalk drained and exited 0: {status}"
    );
    Ok(())
}

#[tokio::test]
async fn a_handler_that_panics_fails_only_its_request() -> Result<()> {
    let cw = Catwalk::start_without_command(&[], &[]).await?;
    let http = reqwest::Client::new();
    let initialize = json!({"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25",
        "capabilities":{},"clientInfo":{"name":"t","version":"0"}}});
    let panicked = http
        .post(cw.mcp())
        .header("accept", ACCEPT_BOTH)
        .header("content-type", "application/json")
        .header("x-catwalk-test-panic", "1")
        .body(initialize.to_string())
        .send()
        .await?;
    assert_eq!(panicked.status(), 500);
    let body: Value = panicked.json().await?;
    assert_eq!(body["error"]["code"], -32603, "{body}");
    let mut client = Client::new(cw.mcp());
    client.initialize("2025-11-25").await?;
    assert!(
        client
            .call_text(json!(2), "echo", json!({"message": "after"}))
            .await?
            .contains("after")
    );
    cw.stop().await
}

#[tokio::test]
async fn an_idle_connection_is_closed_but_an_sse_stream_is_not() -> Result<()> {
    let cw = Catwalk::start_without_command(&["--idle-timeout", "1s", "--body-timeout", "1s"], &[])
        .await?;
    let addr: SocketAddr = cw.base.trim_start_matches("http://").parse()?;
    // A keep-alive connection, idle after its request: closed by catwalk.
    let mut idle = TcpStream::connect(addr).await?;
    idle.write_all(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n")
        .await?;
    let mut seen = Vec::new();
    let closed = tokio::time::timeout(Duration::from_secs(30), async {
        let mut buf = [0u8; 1024];
        loop {
            match idle.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => seen.extend_from_slice(&buf[..n]),
            }
        }
    })
    .await;
    assert!(closed.is_ok(), "an idle connection stayed open");
    assert!(
        seen.starts_with(b"HTTP/1.1 200"),
        "{}",
        String::from_utf8_lossy(&seen)
    );

    // A legacy SSE stream is a response in progress: still there after several idle timeouts, and its
    // session's answers arrive on it.
    let response = reqwest::Client::new()
        .get(format!("{}/sse", cw.base))
        .send()
        .await?;
    let mut stream = response.bytes_stream();
    use futures_util::StreamExt;
    let first = String::from_utf8(stream.next().await.context("no endpoint event")??.to_vec())?;
    let endpoint = first
        .lines()
        .find_map(|l| l.strip_prefix("data: "))
        .context("no endpoint")?
        .to_owned();
    let later = Instant::now() + Duration::from_secs(3);
    tokio::time::sleep_until(later.into()).await;
    let posted = reqwest::Client::new()
        .post(format!("{}{endpoint}", cw.base))
        .header("content-type", "application/json")
        .body(json!({"jsonrpc":"2.0","id":7,"method":"ping"}).to_string())
        .send()
        .await?;
    assert_eq!(posted.status(), 202);
    let answer = tokio::time::timeout(Duration::from_secs(10), stream.next())
        .await
        .context("the stream was closed while idle")?
        .context("the stream ended")??;
    assert!(String::from_utf8_lossy(&answer).contains("\"id\":7"));

    // A body that does not arrive in time is refused, with the reason.
    let mut slow = TcpStream::connect(addr).await?;
    slow.write_all(b"POST /mcp HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nAccept: application/json, text/event-stream\r\nContent-Length: 100\r\n\r\n{\"jsonrpc\":").await?;
    let mut answer = Vec::new();
    tokio::time::timeout(Duration::from_secs(30), slow.read_to_end(&mut answer)).await??;
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 400"), "{answer}");
    assert!(answer.contains("did not arrive within 1s"), "{answer}");
    cw.stop().await
}
