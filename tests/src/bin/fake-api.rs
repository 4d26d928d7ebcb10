//! The fake upstream API of the egress tests, as a program for the JavaScript tests: HTTPS (with a CA of its
//! own, written to `--ca-out`) and plain HTTP, answering the routes of `--routes` (a JSON array of
//! `{"host", "path", "status", "body"}`) and the test routes under `/__catwalk/` (see `catwalk_tests::upstream`).
//! It prints one JSON line, `{"port": <https>, "plain": <http>}`, then serves until it is killed.
//!
//!   fake-api --names api.github.com,slack.com --ca-out /tmp/ca.pem [--routes routes.json] [--bind 127.0.0.1]
//!            [--port 443]
use anyhow::Context;
use catwalk_tests::upstream::{Route, Upstream};

#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    let mut names = String::new();
    let mut ca_out = None;
    let mut routes_file = None;
    let mut bind = "127.0.0.1".to_owned();
    let mut port = 0u16;
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let value = args
            .next()
            .with_context(|| format!("{flag} needs a value"))?;
        match flag.as_str() {
            "--names" => names = value,
            "--ca-out" => ca_out = Some(value),
            "--routes" => routes_file = Some(value),
            "--bind" => bind = value,
            "--port" => port = value.parse().context("--port")?,
            _ => anyhow::bail!("unknown flag {flag}"),
        }
    }
    let routes = match routes_file {
        Some(file) => {
            let list: Vec<serde_json::Value> =
                serde_json::from_str(&std::fs::read_to_string(&file)?)?;
            list.into_iter()
                .map(|r| Route {
                    host: r["host"].as_str().map(str::to_owned),
                    path: r["path"].as_str().unwrap_or("/").to_owned(),
                    status: r["status"].as_u64().unwrap_or(200) as u16,
                    body: r["body"].clone(),
                })
                .collect()
        }
        None => Vec::new(),
    };
    let names: Vec<&str> = names.split(',').filter(|n| !n.is_empty()).collect();
    let upstream = Upstream::start_on(&bind, port, &names, routes).await?;
    std::fs::write(ca_out.context("--ca-out is required")?, &upstream.ca_pem)?;
    println!(
        "{}",
        serde_json::json!({"port": upstream.addr.port(), "plain": upstream.plain.port()})
    );
    std::future::pending::<()>().await;
    Ok(())
}
