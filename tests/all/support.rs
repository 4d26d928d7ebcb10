//! Helpers: catwalk started in this process on 127.0.0.1:0 with real servers behind it, and a small MCP
//! client over reqwest that speaks exactly the HTTP the tests want to check.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use clap::Parser;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use catwalk::config::ServeArgs;

pub const ACCEPT_BOTH: &str = "application/json, text/event-stream";

/// The npm conformance fixture (run with node, its dependencies installed by `npm ci` in `tests/`).
pub fn fixture() -> Vec<String> {
    let path =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fixtures/conformance-server/server.mjs");
    vec!["node".into(), path.display().to_string()]
}

/// catwalk's own binary, which confines tenants' children (`catwalk confine`).
pub fn helper() -> String {
    env!("CARGO_BIN_EXE_catwalk-under-test").into()
}

/// The dependency-free stdio server, copied into `dir/bin` so that any uid can run it: returns the command
/// and the directory a tenant must be granted to read it.
pub fn plain_server(dir: &std::path::Path) -> Result<(Vec<String>, String)> {
    let bin = dir.join("bin");
    std::fs::create_dir_all(&bin)?;
    let path = bin.join("plain-server.mjs");
    std::fs::copy(
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fixtures/plain-server.mjs"),
        &path,
    )?;
    Ok((
        vec!["node".into(), path.display().to_string()],
        bin.display().to_string(),
    ))
}

/// The tiny Rust stdio server.
pub fn echo_server() -> Vec<String> {
    vec![env!("CARGO_BIN_EXE_echo-server").into()]
}

/// A catwalk serving in this process.
pub struct Catwalk {
    pub base: String,
    shutdown: CancellationToken,
    task: Option<JoinHandle<std::io::Result<()>>>,
}

impl Catwalk {
    /// Starts `catwalk serve <flags> -- <server>` with a minimal host environment plus `host_env`.
    pub async fn start(
        flags: &[&str],
        server: &[String],
        host_env: &[(&str, &str)],
    ) -> Result<Self> {
        let mut argv: Vec<String> = flags.iter().map(|s| s.to_string()).collect();
        argv.push("--".into());
        argv.extend(server.iter().cloned());
        Self::start_argv(argv, host_env).await
    }

    /// Starts `catwalk serve <flags>` (the server is named by the flags, e.g. `--wasm`).
    pub async fn start_without_command(flags: &[&str], host_env: &[(&str, &str)]) -> Result<Self> {
        Self::start_argv(flags.iter().map(|s| s.to_string()).collect(), host_env).await
    }

    async fn start_argv(flags: Vec<String>, host_env: &[(&str, &str)]) -> Result<Self> {
        let mut argv: Vec<String> = vec!["serve".into()];
        argv.extend(flags);
        if !argv.iter().any(|a| a == "--state-dir") {
            let state = std::env::temp_dir().join("catwalk-test-state");
            argv.extend(["--state-dir".into(), state.display().to_string()]);
        }
        argv.extend(["--helper".into(), helper()]);
        let args = ServeArgs::try_parse_from(argv)?;
        // The machine's trust store too: npm reaches the registry through it (a proxy may re-sign TLS).
        let mut env: Vec<(std::ffi::OsString, std::ffi::OsString)> = [
            "PATH",
            "HOME",
            "NODE_EXTRA_CA_CERTS",
            "SSL_CERT_FILE",
            "SSL_CERT_DIR",
        ]
        .into_iter()
        .filter_map(|k| std::env::var_os(k).map(|v| (k.into(), v)))
        .collect();
        env.extend(host_env.iter().map(|(k, v)| ((*k).into(), (*v).into())));
        let config = args.into_config(env)?;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let base = format!("http://{}", listener.local_addr()?);
        let shutdown = CancellationToken::new();
        let task = tokio::spawn(catwalk::run(listener, config, shutdown.clone()));
        Ok(Self {
            base,
            shutdown,
            task: Some(task),
        })
    }

    pub fn mcp(&self) -> String {
        format!("{}/mcp", self.base)
    }

    /// SIGTERM, in effect: drain, stop every server, and wait for `run` to return.
    pub async fn stop(mut self) -> Result<()> {
        self.shutdown.cancel();
        if let Some(task) = self.task.take() {
            tokio::time::timeout(Duration::from_secs(30), task)
                .await
                .context("catwalk did not stop")???;
        }
        Ok(())
    }
}

impl Drop for Catwalk {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

/// catwalk serving `server` with `flags`, and a client with an initialized 2025-11-25 session.
pub async fn connected(flags: &[&str], server: &[String]) -> Result<(Catwalk, Client)> {
    let cw = Catwalk::start(flags, server, &[]).await?;
    let mut client = Client::new(cw.mcp());
    client.initialize("2025-11-25").await?;
    Ok((cw, client))
}

/// A Streamable HTTP client for one session.
pub struct Client {
    pub http: reqwest::Client,
    pub url: String,
    pub session: Option<String>,
}

/// One HTTP answer, with its JSON-RPC messages parsed out of JSON or SSE.
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    pub content_type: String,
    pub headers: reqwest::header::HeaderMap,
    pub messages: Vec<Value>,
    /// SSE event ids, in order (the priming event included).
    pub event_ids: Vec<String>,
    pub text: String,
}

impl Answer {
    /// The message answering `id`.
    pub fn response(&self, id: &Value) -> Option<&Value> {
        self.messages
            .iter()
            .find(|m| &m["id"] == id && m.get("method").is_none())
    }
}

impl Client {
    pub fn new(url: String) -> Self {
        Self {
            http: reqwest::Client::new(),
            url,
            session: None,
        }
    }

    pub fn request(&self, body: &Value) -> reqwest::RequestBuilder {
        let mut req = self
            .http
            .post(&self.url)
            .header("accept", ACCEPT_BOTH)
            .header("content-type", "application/json")
            .body(body.to_string());
        if let Some(session) = &self.session {
            req = req.header("mcp-session-id", session);
        }
        req
    }

    pub async fn post(&self, body: &Value) -> Result<Answer> {
        read_answer(self.request(body).send().await?).await
    }

    pub async fn initialize(&mut self, version: &str) -> Result<Value> {
        let answer = self
            .post(
                &json!({"jsonrpc":"2.0","id":0,"method":"initialize","params":{
                "protocolVersion": version, "capabilities": {"sampling":{}, "elicitation":{}},
                "clientInfo": {"name":"catwalk-tests","version":"0"}}}),
            )
            .await?;
        if answer.status != 200 {
            bail!("initialize answered {}: {}", answer.status, answer.text);
        }
        self.session = Some(
            answer
                .headers
                .get("mcp-session-id")
                .context("no Mcp-Session-Id")?
                .to_str()?
                .to_owned(),
        );
        let result = answer
            .response(&json!(0))
            .context("no initialize response")?
            .clone();
        let initialized = self
            .post(&json!({"jsonrpc":"2.0","method":"notifications/initialized"}))
            .await?;
        assert_eq!(initialized.status, 202);
        Ok(result)
    }

    /// Calls a tool and returns its whole JSON-RPC response.
    pub async fn call(&self, id: Value, tool: &str, arguments: Value) -> Result<Value> {
        let answer = self
            .post(&json!({"jsonrpc":"2.0","id":id,"method":"tools/call","params":{"name":tool,"arguments":arguments}}))
            .await?;
        answer
            .response(&id)
            .cloned()
            .with_context(|| format!("no response to {id}: {answer:?}"))
    }

    /// Ends the session (DELETE on its URL); the HTTP status.
    pub async fn delete(&self) -> Result<u16> {
        let session = self.session.as_deref().context("no session to delete")?;
        let response = self
            .http
            .delete(&self.url)
            .header("mcp-session-id", session)
            .send()
            .await?;
        Ok(response.status().as_u16())
    }

    /// The text of a tool result.
    pub async fn call_text(&self, id: Value, tool: &str, arguments: Value) -> Result<String> {
        let response = self.call(id, tool, arguments).await?;
        response["result"]["content"][0]["text"]
            .as_str()
            .map(str::to_owned)
            .with_context(|| format!("not a text result: {response}"))
    }
}

pub async fn read_answer(response: reqwest::Response) -> Result<Answer> {
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let content_type = headers
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let text = response.text().await?;
    let (messages, event_ids) = if content_type.starts_with("text/event-stream") {
        parse_sse(&text)
    } else if text.trim().is_empty() {
        (Vec::new(), Vec::new())
    } else {
        (
            vec![serde_json::from_str(&text).with_context(|| format!("not JSON: {text}"))?],
            Vec::new(),
        )
    };
    Ok(Answer {
        status,
        content_type,
        headers,
        messages,
        event_ids,
        text,
    })
}

/// Messages and event ids of an SSE body (events without data are skipped, their ids kept).
pub fn parse_sse(text: &str) -> (Vec<Value>, Vec<String>) {
    let (mut messages, mut ids) = (Vec::new(), Vec::new());
    for event in text.split("\n\n") {
        let mut data = String::new();
        for line in event.lines() {
            if let Some(id) = line.strip_prefix("id: ") {
                ids.push(id.to_owned());
            } else if let Some(d) = line.strip_prefix("data: ") {
                data.push_str(d);
            }
        }
        if let Ok(value) = serde_json::from_str(&data) {
            messages.push(value);
        }
    }
    (messages, ids)
}

/// Polls `check` until it holds or `within` passes (a deadline, not a sleep standing in for a signal).
pub async fn eventually<F, Fut>(within: Duration, what: &str, mut check: F) -> Result<()>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + within;
    while Instant::now() < deadline {
        if check().await {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    bail!("{what}: not within {within:?}")
}

/// Whether a process exists (and is not a zombie).
pub fn alive(pid: i32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => {
            stat.rsplit(')')
                .next()
                .and_then(|s| s.split_whitespace().next())
                != Some("Z")
        }
        Err(_) => false,
    }
}

pub fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// A client for `url` that sends `token` as its bearer (if any).
pub fn client(url: String, token: Option<&str>) -> Client {
    let mut client = Client::new(url);
    if let Some(token) = token {
        let mut headers = reqwest::header::HeaderMap::new();
        headers.insert(
            "authorization",
            format!("Bearer {token}").parse().expect("a header value"),
        );
        client.http = reqwest::Client::builder()
            .default_headers(headers)
            .build()
            .expect("a client");
    }
    client
}

/// The value of the metric line that starts with `series` (name and labels, as rendered).
pub fn metric(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find_map(|line| line.strip_prefix(series)?.trim().parse().ok())
}

/// catwalk's `/metrics`, as text (with the admin token, if catwalk has one).
pub async fn scrape(base: &str, admin: Option<&str>) -> Result<String> {
    let mut request = reqwest::Client::new().get(format!("{base}/metrics"));
    if let Some(token) = admin {
        request = request.bearer_auth(token);
    }
    let response = request.send().await?;
    anyhow::ensure!(response.status() == 200, "/metrics: {}", response.status());
    Ok(response.text().await?)
}

/// Reads SSE events off a streaming response until `want` of them have data.
pub async fn read_events(
    response: &mut reqwest::Response,
    buffer: &mut String,
    want: usize,
) -> Result<Vec<(String, String)>> {
    let mut events = Vec::new();
    while events.len() < want {
        while let Some(end) = buffer.find("\n\n") {
            let raw: String = buffer.drain(..end + 2).collect();
            let mut name = "message".to_owned();
            let mut data = String::new();
            for line in raw.lines() {
                if let Some(v) = line.strip_prefix("event: ") {
                    name = v.to_owned();
                } else if let Some(v) = line.strip_prefix("data: ") {
                    data.push_str(v);
                }
            }
            if !data.is_empty() {
                events.push((name, data));
            }
        }
        if events.len() >= want {
            break;
        }
        let chunk = tokio::time::timeout(Duration::from_secs(30), response.chunk())
            .await??
            .context("stream ended")?;
        buffer.push_str(&String::from_utf8_lossy(&chunk));
    }
    Ok(events)
}

/// Starts `command` (catwalk's binary with `--log-format json`) through catwalk's reaper (the catwalks other tests
/// run in this process reap children they do not know of), and reads its log until it serves: the child, its
/// address, and the rest of its log.
pub async fn spawn_serving(
    command: &mut tokio::process::Command,
) -> Result<(
    tokio::process::Child,
    std::net::SocketAddr,
    tokio::io::Lines<tokio::io::BufReader<tokio::process::ChildStderr>>,
)> {
    use tokio::io::AsyncBufReadExt;
    command
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true);
    let mut child = catwalk::reaper::spawn(command)?;
    let stderr = child.stderr.take().context("stderr")?;
    let mut lines = tokio::io::BufReader::new(stderr).lines();
    let addr = tokio::time::timeout(Duration::from_secs(60), async {
        while let Some(line) = lines.next_line().await? {
            if let Ok(entry) = serde_json::from_str::<Value>(&line)
                && entry["fields"]["message"] == "catwalk is serving"
            {
                return Ok(entry["fields"]["addr"]
                    .as_str()
                    .unwrap_or_default()
                    .parse()?);
            }
        }
        bail!("catwalk ended before it served")
    })
    .await
    .context("catwalk did not start")??;
    Ok((child, addr, lines))
}
