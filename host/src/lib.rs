//! catwalk serves MCP servers that speak newline-delimited JSON-RPC on stdio to remote clients over
//! Streamable HTTP and the legacy HTTP+SSE transport.
//!
//! # Layout
//! - [`config`]: flags and environment, validated once into a [`config::Config`].
//! - [`http`]: where requests enter — Streamable HTTP (`/mcp`), legacy SSE (`/sse`, `/message`), the
//!   Origin/Host guard, health endpoints, and the one error type every handler answers with.
//! - [`session`]: one MCP session, its pending requests and the streams its messages travel on; the registry
//!   of every session, the session cap, idle reaping and request timeouts.
//! - [`backend`]: server instances behind sessions — a supervised process per session, an npm package
//!   installed once, or one process shared by every session.
//! - [`jsonrpc`]: the bridge's only view of messages: a peek at `id`/`method`, never a re-serialisation.
//! - [`shutdown`]: SIGTERM/SIGINT, then a bounded drain.

pub mod backend;
pub mod config;
pub mod http;
pub mod jsonrpc;
pub mod session;
pub mod shutdown;

use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use backend::Launcher;
use backend::npm::CommandSource;
use backend::shared::SharedServer;
use config::{Config, Mode, Server};
use session::Registry;

/// Serves `config` on `listener` until `shutdown` is cancelled, then drains and stops every server.
pub async fn run(
    listener: TcpListener,
    config: Config,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    backend::process::reaper::start();
    let launcher = match &config.server {
        Server::Wasm { path, policy } => {
            let wasm = tokio::fs::read(path).await.map_err(|e| {
                std::io::Error::new(e.kind(), format!("cannot read {}: {e}", path.display()))
            })?;
            let name = path
                .file_name()
                .map_or_else(|| "guest".into(), |n| n.to_string_lossy().into_owned());
            Launcher::Wasi(wasi_server(&config, name, wasm, policy.clone()).await?)
        }
        Server::Demo { policy } => {
            if DEMO_GUEST.is_empty() {
                return Err(std::io::Error::other(
                    "nothing to serve, and this build has no demo guest (rustup target add wasm32-wasip1, then \
                     rebuild): set MCP_PACKAGE, --wasm, or give a command after --",
                ));
            }
            tracing::info!("nothing configured: serving the built-in demo WASI server");
            let wasm = DEMO_GUEST.to_vec();
            Launcher::Wasi(wasi_server(&config, "catwalk-demo".into(), wasm, policy.clone()).await?)
        }
        Server::Package(_) | Server::Command(_) => {
            let source = Arc::new(match &config.server {
                Server::Package(spec) => {
                    CommandSource::npm(config.spec.clone(), spec.clone(), &config.state_dir)
                }
                _ => CommandSource::command(config.spec.clone()),
            });
            // Resolve the package now, so the first session does not pay for it (and /readyz can tell).
            let prepare = source.clone();
            tokio::spawn(async move { prepare.prepare().await });
            match config.mode {
                Mode::PerSession => Launcher::PerSession(source),
                Mode::Shared => Launcher::Shared(SharedServer::start(source, shutdown.clone())),
            }
        }
    };

    let registry = Registry::new(config.max_sessions);
    let sweep_every = (config.limits.request_timeout / 4)
        .clamp(Duration::from_millis(50), Duration::from_secs(1));
    registry.spawn_sweeper(sweep_every, shutdown.clone());
    let app = Arc::new(http::App {
        registry: registry.clone(),
        launcher: launcher.clone(),
        limits: Arc::new(config.limits.clone()),
        max_body_bytes: config.max_body_bytes,
        keep_alive: Duration::from_secs(15),
        json_window: Duration::from_millis(50),
        shutdown: shutdown.clone(),
    });
    let router = http::router(app, Arc::new(config.origin_policy.clone()));
    tracing::info!(addr = %listener.local_addr()?, mode = ?config.mode, "catwalk is serving");

    let drained = CancellationToken::new();
    tokio::spawn(shutdown::drain(
        registry.clone(),
        shutdown.clone(),
        drained.clone(),
        config.drain_timeout,
    ));
    axum::serve(listener, router)
        .with_graceful_shutdown(drained.clone().cancelled_owned())
        .await?;
    registry.end_all("catwalk is shutting down");
    if let Launcher::Shared(server) = &launcher {
        server.stop().await;
    }
    // Give the stopped servers their stop sequence before the process (and its runtime) goes.
    // (WASI instances are tasks of this runtime: ending their sessions already stopped them.)
    shutdown::wait_for_children(config.spec.stop_grace * 2 + Duration::from_secs(1)).await;
    Ok(())
}

/// The demo WASI server (`catwalk-guest`'s `echo` example), served when nothing is configured. Empty when the
/// build had no wasm32-wasip1 target.
const DEMO_GUEST: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/demo.wasm"));

/// Compiles (or loads from the cache) and links a WASI server, off the async threads.
async fn wasi_server(
    config: &Config,
    name: String,
    wasm: Vec<u8>,
    policy: backend::wasi::GuestPolicy,
) -> std::io::Result<Arc<backend::wasi::WasiServer>> {
    let pool = backend::wasi::PoolSize {
        instances: u32::try_from(config.max_sessions).unwrap_or(u32::MAX),
        max_memory_bytes: policy.max_memory_bytes,
    };
    let cache_dir = config.state_dir.join("wasm");
    let server = tokio::task::spawn_blocking(move || {
        let runtime = backend::wasi::WasiRuntime::new(cache_dir, pool)?;
        backend::wasi::WasiServer::new(runtime, &name, &wasm, policy)
    })
    .await
    .map_err(std::io::Error::other)?
    .map_err(std::io::Error::other)?;
    tracing::info!(
        guest = server.name(),
        kind = server.kind(),
        "WASI server ready"
    );
    Ok(Arc::new(server))
}
