//! The two protocol eras side by side on one catwalk: a tools/call over a 2025-era session against the same call
//! as a stateless 2026-07-28 request (its own instance, initialized by catwalk), for a WASI guest and a process.

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Result, ensure};
use serde_json::{Value, json};

use crate::client::{Catwalk, Session, body};
use crate::stats::Samples;

pub struct ErasArgs<'a> {
    pub catwalk: &'a Path,
    pub state_dir: &'a Path,
    /// catwalk's flags naming each server, by label.
    pub servers: &'a [(&'a str, Vec<String>)],
    pub calls: usize,
}

/// One stateless tools/call of echo, as a 2026-07-28 client sends it.
async fn modern_echo(http: &reqwest::Client, url: &str, id: u64) -> Result<Value> {
    let meta = json!({
        "io.modelcontextprotocol/protocolVersion": "2026-07-28",
        "io.modelcontextprotocol/clientInfo": {"name": "catwalk-bench", "version": "0"},
        "io.modelcontextprotocol/clientCapabilities": {},
    });
    let response = http
        .post(url)
        .header("accept", "application/json, text/event-stream")
        .header("mcp-protocol-version", "2026-07-28")
        .header("mcp-method", "tools/call")
        .header("mcp-name", "echo")
        .json(&json!({"jsonrpc": "2.0", "id": id, "method": "tools/call",
            "params": {"name": "echo", "arguments": {"message": "hi"}, "_meta": meta}}))
        .send()
        .await?;
    body(response).await
}

/// Rows per server: p50 and p99 of each era, the calls interleaved one by one, `calls` of each per round over
/// two rounds after a warm-up one; as JSON.
pub async fn eras(args: ErasArgs<'_>) -> Result<Value> {
    let mut rows = serde_json::Map::new();
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    for (label, flags) in args.servers {
        let flags: Vec<&str> = flags.iter().map(String::as_str).collect();
        let catwalk = Catwalk::start(args.catwalk, args.state_dir, &flags).await?;
        let http = reqwest::Client::new();
        let url = format!("{}/mcp", catwalk.base);
        let session = Session::open(&http, &catwalk.base).await?;
        let (mut legacy, mut modern) = (Samples::default(), Samples::default());
        let mut id = 0;
        for round in 0..3 {
            for _ in 0..args.calls {
                id += 1;
                let started = Instant::now();
                let answer = session.call(id, "echo", json!({"message": "hi"})).await?;
                let took = started.elapsed();
                ensure!(
                    answer["result"]["content"][0]["text"] == "Echo: hi",
                    "{answer}"
                );
                if round > 0 {
                    legacy.push(took);
                }
                id += 1;
                let started = Instant::now();
                let answer = modern_echo(&http, &url, id).await?;
                let took = started.elapsed();
                ensure!(answer["result"]["resultType"] == "complete", "{answer}");
                if round > 0 {
                    modern.push(took);
                }
            }
        }
        catwalk.stop().await?;
        let row = json!({
            "legacy_p50_ms": ms(legacy.quantile(0.5)),
            "legacy_p99_ms": ms(legacy.quantile(0.99)),
            "modern_p50_ms": ms(modern.quantile(0.5)),
            "modern_p99_ms": ms(modern.quantile(0.99)),
        });
        eprintln!("eras: {label}: {row}");
        rows.insert((*label).to_owned(), row);
    }
    Ok(Value::Object(rows))
}
