//! A release `catwalk` process on 127.0.0.1, and a minimal Streamable HTTP client for it.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use serde_json::{Value, json};

/// A running catwalk, stopped (SIGTERM, then waited for) on [`Catwalk::stop`] or killed on drop.
pub struct Catwalk {
    child: tokio::process::Child,
    pub base: String,
    pub pid: i32,
}

impl Catwalk {
    pub async fn start(bin: &Path, state_dir: &Path, args: &[&str]) -> Result<Self> {
        Self::start_with(bin, state_dir, args, Logs::Discarded).await
    }

    /// Starts catwalk with its logs going where `logs` says.
    pub async fn start_with(
        bin: &Path,
        state_dir: &Path,
        args: &[&str],
        logs: Logs,
    ) -> Result<Self> {
        // A free port, released just before catwalk binds it.
        let port = std::net::TcpListener::bind("127.0.0.1:0")?
            .local_addr()?
            .port();
        let (level, out, err) = match logs {
            Logs::Discarded => ("warn", Stdio::null(), Stdio::inherit()),
            Logs::ReadersGone => ("debug", Stdio::piped(), Stdio::piped()),
        };
        let mut child = tokio::process::Command::new(bin)
            .arg("serve")
            .args(["--port", &port.to_string()])
            .arg("--state-dir")
            .arg(state_dir)
            .args(args)
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("RUST_LOG", level)
            // To compare settings: `CATWALK_WORKERS=1 CATWALK_SPARE=4 catwalk-bench ...`.
            .envs(std::env::vars_os().filter(|(k, _)| k.to_string_lossy().starts_with("CATWALK_")))
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("starting {}", bin.display()))?;
        // The pipes' read ends close here: every log line catwalk writes from now on meets EPIPE.
        drop((child.stdout.take(), child.stderr.take()));
        let pid = child.id().context("catwalk exited at once")? as i32;
        let catwalk = Self {
            child,
            base: format!("http://127.0.0.1:{port}"),
            pid,
        };
        let http = reqwest::Client::new();
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let ready = http.get(format!("{}/readyz", catwalk.base)).send().await;
            if ready.is_ok_and(|r| r.status().is_success()) {
                return Ok(catwalk);
            }
            if Instant::now() > deadline {
                bail!("catwalk did not become ready within 60 s");
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Starts catwalk serving the tenants file `tenants` (TOML), written to `state_dir/name`, with `flags`.
    pub async fn start_tenants(
        bin: &Path,
        state_dir: &Path,
        name: &str,
        tenants: &str,
        flags: &[&str],
    ) -> Result<Self> {
        std::fs::create_dir_all(state_dir)?;
        let config = state_dir.join(name);
        std::fs::write(&config, tenants)?;
        let mut args = vec!["--config", config.to_str().context("a UTF-8 path")?];
        args.extend(flags);
        Self::start(bin, state_dir, &args).await
    }

    pub async fn stop(self) -> Result<()> {
        self.stop_status().await?;
        Ok(())
    }

    /// SIGTERM, and how catwalk exited.
    pub async fn stop_status(mut self) -> Result<std::process::ExitStatus> {
        kill(Pid::from_raw(self.pid), Signal::SIGTERM)?;
        Ok(self.child.wait().await?)
    }

    /// CPU time catwalk has used (user + system), from `/proc`.
    pub fn cpu(&self) -> Duration {
        cpu_of(&format!("/proc/{}/stat", self.pid))
    }

    /// CPU time used by catwalk's threads whose name starts with `prefix`.
    pub fn thread_cpu(&self, prefix: &str) -> Duration {
        let Ok(tasks) = std::fs::read_dir(format!("/proc/{}/task", self.pid)) else {
            return Duration::ZERO;
        };
        tasks
            .flatten()
            .filter(|task| {
                std::fs::read_to_string(task.path().join("comm"))
                    .is_ok_and(|name| name.starts_with(prefix))
            })
            .map(|task| cpu_of(&task.path().join("stat").to_string_lossy()))
            .sum()
    }

    /// RSS of catwalk and every process below it, in KiB.
    pub fn tree_rss_kib(&self) -> u64 {
        self.tree()
            .iter()
            .map(|&pid| status_kib(pid, "VmRSS"))
            .sum()
    }

    /// catwalk's pid and every process's below it (zombies too).
    pub fn tree(&self) -> Vec<i32> {
        let mut tree = vec![self.pid];
        let mut i = 0;
        while let Some(&parent) = tree.get(i) {
            // Each thread lists the children it spawned.
            let tasks = std::fs::read_dir(format!("/proc/{parent}/task"))
                .into_iter()
                .flatten();
            for task in tasks.flatten() {
                let children =
                    std::fs::read_to_string(task.path().join("children")).unwrap_or_default();
                tree.extend(
                    children
                        .split_whitespace()
                        .filter_map(|c| c.parse::<i32>().ok()),
                );
            }
            i += 1;
        }
        tree
    }

    /// A `/proc/<pid>/status` figure in KiB (`VmRSS`, `VmHWM`).
    pub fn memory_kib(&self, field: &str) -> u64 {
        status_kib(self.pid, field)
    }
}

fn status_kib(pid: i32, field: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|line| line.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|v| v.trim().trim_end_matches(" kB").parse().ok())
        .unwrap_or(0)
}

/// User + system time from a `/proc/.../stat` file.
fn cpu_of(stat: &str) -> Duration {
    let stat = std::fs::read_to_string(stat).unwrap_or_default();
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map(|(_, tail)| tail.split_whitespace().collect())
        .unwrap_or_default();
    let ticks: u64 = [11, 12]
        .iter()
        .filter_map(|&i| fields.get(i)?.parse::<u64>().ok())
        .sum();
    Duration::from_millis(ticks * 1000 / rustix::param::clock_ticks_per_second())
}

/// Where a catwalk started by the bench logs.
pub enum Logs {
    /// stdout to /dev/null, stderr to the bench's, at `warn`.
    Discarded,
    /// At `debug`, to pipes whose readers are gone from the start.
    ReadersGone,
}

/// How a call ended, as the client saw it.
#[derive(Debug)]
pub enum Answer {
    /// A JSON-RPC result.
    Result(Value),
    /// A JSON-RPC error.
    Error,
    /// An HTTP error status (its body held a JSON-RPC error, or nothing).
    Status(u16),
}

/// One MCP session over Streamable HTTP (2025-11-25).
#[derive(Clone)]
pub struct Session {
    http: reqwest::Client,
    base: String,
    url: String,
    id: String,
}

impl Session {
    pub async fn open(http: &reqwest::Client, base: &str) -> Result<Self> {
        Self::open_at(http, base, "/mcp").await
    }

    /// A session on the endpoint at `path` (a tenant's: `/t/{id}/mcp`).
    pub async fn open_at(http: &reqwest::Client, base: &str, path: &str) -> Result<Self> {
        Ok(Self::open_timed(http, base, path).await?.0)
    }

    /// A session on the endpoint at `path`, and the time from sending `initialize` to its answer.
    pub async fn open_timed(
        http: &reqwest::Client,
        base: &str,
        path: &str,
    ) -> Result<(Self, Duration)> {
        let url = format!("{base}{path}");
        let started = Instant::now();
        let response = http
            .post(&url)
            .header("accept", "application/json, text/event-stream")
            .json(
                &json!({"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {
                "protocolVersion": "2025-11-25", "capabilities": {},
                "clientInfo": {"name": "catwalk-bench", "version": "0"}}}),
            )
            .send()
            .await?;
        let id = response
            .headers()
            .get("mcp-session-id")
            .context("no session id on the initialize response")?
            .to_str()?
            .to_owned();
        body(response).await?;
        let initialize = started.elapsed();
        let session = Self {
            http: http.clone(),
            base: base.to_owned(),
            url,
            id,
        };
        session
            .post(json!({"jsonrpc": "2.0", "method": "notifications/initialized"}))
            .await?;
        Ok((session, initialize))
    }

    /// A new session of the same server.
    pub async fn reopen(&self) -> Result<Self> {
        let path = self.url.strip_prefix(&self.base).unwrap_or("/mcp");
        Self::open_at(&self.http, &self.base, path).await
    }

    /// Ends the session (DELETE).
    pub async fn close(&self) -> Result<()> {
        self.http
            .delete(&self.url)
            .header("mcp-session-id", &self.id)
            .send()
            .await?
            .error_for_status()?;
        Ok(())
    }

    /// The session's id.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// Calls a tool and tells how it ended; `Err` only when the call had no answer at all (the connection
    /// closed without one, or a stream ended without data).
    pub async fn try_call(&self, id: u64, tool: &str, arguments: Value) -> Result<Answer> {
        let response = self
            .send(json!({"jsonrpc": "2.0", "id": id, "method": "tools/call",
                "params": {"name": tool, "arguments": arguments}}))
            .await?;
        let status = response.status();
        if !status.is_success() {
            response.bytes().await?;
            return Ok(Answer::Status(status.as_u16()));
        }
        let answer = body(response).await?;
        Ok(match answer.get("result") {
            Some(_) => Answer::Result(answer),
            None => Answer::Error,
        })
    }

    /// Calls a tool; the JSON-RPC response (a result or an error).
    pub async fn call(&self, id: u64, tool: &str, arguments: Value) -> Result<Value> {
        self.post(json!({"jsonrpc": "2.0", "id": id, "method": "tools/call",
            "params": {"name": tool, "arguments": arguments}}))
            .await
    }

    async fn post(&self, message: Value) -> Result<Value> {
        body(self.send(message).await?).await
    }

    async fn send(&self, message: Value) -> Result<reqwest::Response> {
        Ok(self
            .http
            .post(&self.url)
            .header("accept", "application/json, text/event-stream")
            .header("mcp-session-id", &self.id)
            .header("mcp-protocol-version", "2025-11-25")
            .json(&message)
            .send()
            .await?)
    }
}

/// A response body: JSON, the last `data:` of an SSE stream, or null for 202.
pub async fn body(response: reqwest::Response) -> Result<Value> {
    let status = response.status();
    let sse = response
        .headers()
        .get("content-type")
        .is_some_and(|v| v.as_bytes().starts_with(b"text/event-stream"));
    let text = response.text().await?;
    if !status.is_success() {
        bail!("HTTP {status}: {text}");
    }
    if text.is_empty() {
        return Ok(Value::Null);
    }
    if !sse {
        return Ok(serde_json::from_str(&text)?);
    }
    let data = text
        .lines()
        .filter_map(|line| line.strip_prefix("data:"))
        .map(str::trim)
        .rfind(|data| !data.is_empty())
        .context("an SSE answer without data")?;
    Ok(serde_json::from_str(data)?)
}

/// Where cargo put this build: the dir this binary is in (`release/`) lies in, else `CARGO_TARGET_DIR`, else
/// `target/` of the workspace.
pub fn target_dir() -> PathBuf {
    // This binary is `<target dir>/release/catwalk-bench`, wherever the target dir is.
    let beside_me = std::env::current_exe()
        .ok()
        .and_then(|exe| Some(exe.parent()?.parent()?.to_path_buf()));
    beside_me
        .or_else(|| std::env::var_os("CARGO_TARGET_DIR").map(PathBuf::from))
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../target"))
}
