//! The `catwalk` command line: flags, logging, the listener, then [`crate::run`]; or the `confine` helper.

use std::io::IsTerminal;

use anyhow::Context;
use clap::Parser;
use tokio_util::sync::CancellationToken;
use tracing_subscriber::EnvFilter;

use crate::config::{Cli, Command, LogFormat, PackArgs, ServeArgs};

/// What `catwalk` does with its arguments.
pub fn main() -> anyhow::Result<()> {
    match Cli::parse().command {
        Command::Serve(args) => serve(*args),
        Command::Healthcheck { port } => healthcheck(port),
        Command::Pack(args) => pack(args),
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

/// `catwalk pack`: packs one spec and says what it made (or why it could not).
fn pack(args: PackArgs) -> anyhow::Result<()> {
    use crate::backend::wasi::{GuestPolicy, PoolSize, WasiRuntime};
    use crate::pack::{PackRequest, Packer};

    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("warn")),
        )
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr)
        .init();
    let state_dir = args.state_dir.clone().unwrap_or_else(|| {
        crate::config::default_state_dir(
            std::env::var_os("XDG_CACHE_HOME"),
            std::env::var_os("HOME"),
        )
    });
    let mut env = Vec::new();
    for (key, value) in &args.env {
        let value = match value {
            Some(value) => value.clone(),
            None => std::env::var(key).with_context(|| format!("--env {key}: not set"))?,
        };
        env.push((key.clone(), value));
    }
    let request = PackRequest {
        spec: args.spec.clone(),
        args: args.args.clone(),
        policy: GuestPolicy {
            env,
            dirs: args.dirs.clone(),
            ..GuestPolicy::new()
        },
        refresh: args.refresh,
        supply: crate::packages::Supply {
            policy: args
                .verify
                .policy()
                .map_err(|e| anyhow::anyhow!("--verify-from: {e}"))?,
            registry: crate::packages::Registry::new(
                &crate::packages::registry_url(
                    std::env::vars()
                        .collect::<Vec<_>>()
                        .iter()
                        .map(|(k, v)| (k.as_str(), v.as_str())),
                ),
                crate::packages::registry::client().map_err(|e| anyhow::anyhow!(e))?,
            )
            .map_err(|e| anyhow::anyhow!("npm_config_registry: {e}"))?,
            refresh: args.refresh,
        },
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let started = std::time::Instant::now();
    let (artifact, cached) = runtime.block_on(async {
        // Room for the bytecode step (a large bundle compiles in more than a server's 64 MiB); the smoke test
        // still runs under the serving default.
        let pool = PoolSize {
            instances: 4,
            max_memory_bytes: crate::pack::COMPILE_MEMORY,
        };
        let cache = state_dir.join("wasm");
        let wasi = tokio::task::spawn_blocking(move || WasiRuntime::new(cache, pool)).await??;
        let packer = Packer::new(&state_dir, wasi)?;
        anyhow::Ok(packer.pack(&request).await?)
    })?;
    let took = started.elapsed();
    let m = &artifact.manifest;
    if args.json {
        println!("{}", serde_json::to_string_pretty(m)?);
        return Ok(());
    }
    let list = |items: Vec<String>| {
        if items.is_empty() {
            "none".to_owned()
        } else {
            items.join(", ")
        }
    };
    eprintln!(
        "packed {} {} in {:.1?}{}",
        m.package,
        m.version,
        took,
        if cached { " (packed before)" } else { "" }
    );
    eprintln!("  artifact  {}", artifact.dir.display());
    eprintln!(
        "  bundle    {} KiB, bytecode {} KiB",
        m.bundle_bytes >> 10,
        m.bytecode_bytes >> 10
    );
    match &m.unlisted {
        Some(why) => eprintln!("  tools     not listed: {why}"),
        None => eprintln!("  tools     {}", list(m.tools.clone())),
    }
    eprintln!(
        "  stubbed   {}",
        list(
            m.stubbed
                .iter()
                .map(|s| format!("{} (imported by {})", s.name, s.importer))
                .collect()
        )
    );
    if !m.missing.is_empty() {
        eprintln!(
            "  missing   {} (requiring it throws, as under Node)",
            list(
                m.missing
                    .iter()
                    .map(|s| format!("{} (required by {})", s.name, s.importer))
                    .collect()
            )
        );
    }
    eprintln!("  addons    {}", list(m.addons.clone()));
    for (label, snapshot) in [("snapshot", &m.snapshot), ("started", &m.started)] {
        match snapshot {
            Some(s) if s.usable => eprintln!(
                "  {label:<9} {} KiB{}{}",
                s.bytes >> 10,
                match &s.argv {
                    Some(argv) => format!(", for argv {argv}"),
                    None => String::new(),
                },
                match s.env.is_empty() {
                    true => String::new(),
                    false => format!(" (not for a tenant whose env sets {})", s.env.join(", ")),
                }
            ),
            Some(s) => eprintln!("  {label:<9} none: {}", s.reason),
            None => {}
        }
    }
    if let Some(verified) = &m.verified {
        eprintln!("  verified  {}", verified.describe());
    }
    eprintln!(
        "serve it:   catwalk serve --package {} --sandbox wasi",
        m.spec
    );
    Ok(())
}

fn serve(args: ServeArgs) -> anyhow::Result<()> {
    // Before the flags are read: the default connection caps come from the open-file limit.
    crate::http::server::raise_open_files();
    let config = args.into_config(std::env::vars_os().collect())?;
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    // Log lines go to stderr from a thread of their own, through a bounded queue that drops lines rather than
    // wait: a slow log collector never blocks a task, and a gone one (EPIPE) never fails catwalk.
    let (writer, _flush) = tracing_appender::non_blocking::NonBlockingBuilder::default()
        .lossy(true)
        .buffered_lines_limit(16_384)
        .thread_name("catwalk-log")
        .finish(Sink);
    match config.log_format {
        LogFormat::Text => tracing_subscriber::fmt()
            .with_env_filter(filter)
            .with_ansi(std::io::stderr().is_terminal())
            .with_writer(writer)
            .init(),
        LogFormat::Json => tracing_subscriber::fmt()
            .json()
            .with_env_filter(filter)
            .with_writer(writer)
            .init(),
    }
    // Flushed when dropped, after the runtime has stopped serving.
    let traces = crate::traces::init().map_err(anyhow::Error::msg)?;
    if traces.is_some() {
        tracing::info!("exporting traces over OTLP (OTEL_EXPORTER_OTLP_*)");
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

/// stderr, whose failures (the reader gone, EPIPE) are dropped: a log line that cannot be written is lost, and
/// nothing else is.
struct Sink;

impl std::io::Write for Sink {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        let _ = std::io::stderr().write_all(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}
