//! Secrets stay out of the log: catwalk as its own process at trace level, in JSON, read whole.

use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context, Result};
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, BufReader};

use crate::support::{Client, client, eventually, helper, plain_server, sha256_hex};
use crate::wasi::guest;

#[tokio::test]
async fn no_secret_reaches_the_log_even_at_trace_level() -> Result<()> {
    // Each secret is distinct, so a leak says which path leaked it.
    let env_a = "canary-env-of-a-7f3e91";
    let env_b = "canary-env-of-b-2c8d40";
    let env_c = "canary-env-via-admin-9a1b77";
    let token = "canary-token-5d6e0f";
    let admin = "canary-admin-token-3b2a19";
    // The key the admin API seals tenants' secrets with: never in the log either.
    let state_key = "5eed".repeat(16);
    let dir = std::env::temp_dir().join(format!("catwalk-logs-{}", std::process::id()));
    let (plain, plain_dir) = plain_server(&dir)?;
    let command = serde_json::to_string(&plain)?;
    let config = dir.join("tenants.toml");
    std::fs::write(
        &config,
        format!(
            "[[tenant]]\nid = \"proc\"\ncommand = {command}\ndirs = [\"{plain_dir}\"]\n\
             env = {{ SECRET_A = \"{env_a}\" }}\ntoken_sha256 = [\"{}\"]\n\n\
             [[tenant]]\nid = \"guest\"\nwasm = \"{}\"\nenv = {{ SECRET_B = \"{env_b}\" }}\n",
            sha256_hex(token.as_bytes()),
            guest("wasm32-wasip1", "catwalk-hostile-env"),
        ),
    )?;
    // The other tests' state dir: its compile cache spares this catwalk compiling the guests again.
    let state = std::env::temp_dir().join("catwalk-test-state");
    // What the admin API kept in an earlier run is not this run's.
    let _ = std::fs::remove_dir_all(state.join("admin"));
    let mut command = tokio::process::Command::new(helper());
    command
        .args(["serve", "--port", "0", "--log-format", "json", "--config"])
        .arg(&config)
        .arg("--state-dir")
        .arg(&state)
        .arg("--helper")
        .arg(helper())
        .arg("--admin-token-sha256")
        .arg(sha256_hex(admin.as_bytes()))
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("CATWALK_STATE_KEY", &state_key)
        // Everything at trace, but the compiler's millions of lines about machine code (nothing of a tenant's
        // goes through them; at trace they take minutes).
        .env(
            "RUST_LOG",
            "trace,cranelift_codegen=info,cranelift_frontend=info,wasmtime_internal_cranelift=info",
        )
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    // Through catwalk's reaper: the catwalks other tests run in this process reap children they do not know
    // of, and would take this one's exit status.
    let mut child = catwalk::reaper::spawn(&mut command)?;
    let pid = child.id().context("a pid")?;
    let log = Arc::new(Mutex::new(Vec::<String>::new()));
    let lines = log.clone();
    let stderr = child.stderr.take().context("stderr")?;
    let reader = tokio::spawn(async move {
        let mut stderr = BufReader::new(stderr).lines();
        while let Ok(Some(line)) = stderr.next_line().await {
            lines.lock().unwrap().push(line);
        }
    });
    let text = || log.lock().unwrap().join("\n");
    let mut addr = String::new();
    // Generous: on a cold machine this catwalk may compile the guest itself (a debug build, at trace level),
    // while other tests fill the cores.
    eventually(Duration::from_secs(180), "catwalk serving", || {
        let found = log.lock().unwrap().iter().find_map(|line| {
            let line: Value = serde_json::from_str(line).ok()?;
            (line["fields"]["message"] == "catwalk is serving")
                .then(|| line["fields"]["addr"].as_str().map(str::to_owned))
                .flatten()
        });
        if let Some(found) = found {
            addr = found;
        }
        std::future::ready(!addr.is_empty())
    })
    .await?;
    let base = format!("http://{addr}");

    // The process tenant, with its token; its server prints its env to stderr.
    let mut proc = client(format!("{base}/t/proc/mcp"), Some(token));
    proc.initialize("2025-11-25").await?;
    assert_eq!(
        proc.call_text(json!(1), "log_env", json!({})).await?,
        "logged"
    );
    eventually(
        Duration::from_secs(10),
        "the server's stderr logged",
        || std::future::ready(text().contains("SECRET_A=[redacted]")),
    )
    .await?;
    let wrong = client(format!("{base}/t/proc/mcp"), Some("not-the-token"))
        .post(&json!({"jsonrpc": "2.0", "id": 1, "method": "ping"}))
        .await?;
    assert_eq!(wrong.status, 401);

    // The guest tenant answers with its secret in a message body.
    let mut sandboxed = Client::new(format!("{base}/t/guest/mcp"));
    sandboxed.initialize("2025-11-25").await?;
    assert_eq!(
        sandboxed
            .call_text(json!(1), "env", json!({"name": "SECRET_B"}))
            .await?,
        format!("SET {env_b}")
    );

    // A tenant added through the admin API, and the metrics.
    let http = reqwest::Client::new();
    let added = http
        .put(format!("{base}/admin/tenants/added"))
        .bearer_auth(admin)
        .json(
            &json!({"id": "added", "wasm": guest("wasm32-wasip1", "catwalk-hostile-env"),
                      "env": {"SECRET_C": env_c}}),
        )
        .send()
        .await?;
    assert_eq!(added.status(), 201);
    let metrics = http
        .get(format!("{base}/metrics"))
        .bearer_auth(admin)
        .send()
        .await?
        .text()
        .await?;
    assert!(metrics.contains("tenant=\"added\""));

    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid as i32),
        nix::sys::signal::Signal::SIGTERM,
    )?;
    let status = tokio::time::timeout(Duration::from_secs(20), child.wait()).await??;
    catwalk::reaper::forget(nix::unistd::Pid::from_raw(pid as i32));
    assert!(status.success(), "{status}");
    reader.await?;
    let all = text();
    let lines = log.lock().unwrap().clone();
    assert!(
        lines.iter().any(|l| l.contains("\"level\":\"TRACE\"")),
        "trace level was on"
    );
    for line in &lines {
        assert!(
            serde_json::from_str::<Value>(line).is_ok(),
            "not JSON: {line}"
        );
    }
    for secret in [env_a, env_b, env_c, token, admin, state_key.as_str()] {
        assert!(!all.contains(secret), "{secret} is in the log");
    }
    std::fs::remove_dir_all(dir)?;
    Ok(())
}
