//! The `catwalk` command line: flags, logging, the listener, then [`crate::run`]; or the `confine` helper.

use std::io::IsTerminal;

use anyhow::Context;
use clap::Parser;
use tokio_util::sync::CancellationToken;
use tracing_subscriber::EnvFilter;

use crate::config::{Cli, Command, LogFormat, ServeArgs};

/// What `catwalk` does with its arguments.
pub fn main() -> anyhow::Result<()> {
    match Cli::parse().command {
        Command::Serve(args) => serve(*args),
        Command::Healthcheck { port } => healthcheck(port),
        Command::Confine(args) => {
            let error = crate::confine::exec(args);
            eprintln!("catwalk confine: {error}");
            std::process::exit(126)
        }
    }
}

/// `GET http://127.0.0.1:<port>/healthz`, within 3 s.
fn healthcheck(port: u16) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        reqwest::Client::builder()
            .timeout(std::time::Duration::from_secs(3))
            .build()?
            .get(format!("http://127.0.0.1:{port}/healthz"))
            .send()
            .await?
            .error_for_status()?;
        Ok(())
    })
}

fn serve(args: ServeArgs) -> anyhow::Result<()> {
    let config = args.into_config(std::env::vars_os().collect())?;
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    match config.log_format {
        LogFormat::Text => tracing_subscriber::fmt()
            .with_env_filter(filter)
            .with_ansi(std::io::stderr().is_terminal())
            .with_writer(std::io::stderr)
            .init(),
        LogFormat::Json => tracing_subscriber::fmt()
            .json()
            .with_env_filter(filter)
            .with_writer(std::io::stderr)
            .init(),
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(config.workers)
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let listener = tokio::net::TcpListener::bind(config.addr)
            .await
            .with_context(|| format!("cannot listen on {}", config.addr))?;
        let shutdown = CancellationToken::new();
        let trigger = shutdown.clone();
        tokio::spawn(async move {
            crate::shutdown::signal().await;
            trigger.cancel();
        });
        crate::run(listener, config, shutdown)
            .await
            .context("catwalk stopped")
    })
}
