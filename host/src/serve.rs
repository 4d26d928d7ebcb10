//! `catwalk serve`, assembled: the session registry and its sweeper, the tenants (a tenants file's, or the
//! one server of the flags), the router, and the drain on shutdown.

use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::backend::Launcher;
use crate::backend::npm::CommandSource;
use crate::backend::process::ProcessSpec;
use crate::backend::shared::SharedServer;
use crate::backend::wasi::GuestPolicy;
use crate::config::{Config, Server};
use crate::http::Tenants;
use crate::session::Registry;
use crate::vocab::{Mode, Sandbox};

/// Serves `config` on `listener` until `shutdown` is cancelled, then drains and stops every server.
pub async fn run(
    listener: TcpListener,
    config: Config,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    crate::reaper::start();
    let registry = Registry::new(config.max_sessions, config.machine_id.clone());
    let sweep_every = (config.limits.request_timeout / 4)
        .clamp(Duration::from_millis(50), Duration::from_secs(1));
    registry.spawn_sweeper(sweep_every, shutdown.clone());
    let max_guest_memory = config
        .tenants
        .iter()
        .flatten()
        .filter_map(|t| t.limits.memory)
        .chain([config.guest.max_memory_bytes])
        .max()
        .unwrap_or(config.guest.max_memory_bytes);
    let path = config
        .spec
        .env
        .iter()
        .find(|(k, _)| k == "PATH")
        .map_or_else(|| "/usr/local/bin:/usr/bin:/bin".into(), |(_, v)| v.clone());
    let mut host = crate::tenants::Host::new(
        config.state_dir.clone(),
        registry.clone(),
        shutdown.clone(),
        config.limits.clone(),
        config.max_body_bytes,
        config.spec.clone(),
        path,
        config.guest.clone(),
        max_guest_memory,
    );
    host.max_inflight = config.max_inflight;
    host.spare = config.spare;
    host.tenant_env = config.tenant_env.clone();
    host.egress_ca = config.egress_ca.clone();
    host.pins = config.oauth_pins.clone();
    host.state_key = config.state_key.clone();
    host.audit = match &config.audit {
        Some(target) => Some(crate::audit::AuditLog::open(target).map_err(std::io::Error::other)?),
        None => None,
    };
    host.egress_limits = config.egress_limits;
    host.packages = config.packages.clone();
    host.refresh = config.refresh;
    if config.tenants.is_some() {
        host.confine_children(config.helper.clone()).await?;
    }
    if let Some(file) = &config.tenants_file {
        host.check_private(file)?;
    }
    if let Some(location) = &config.catalog {
        host.load_catalog(location).await?;
    }
    let mut keeping = crate::tenants::Keeping {
        machine: config.machine_id.clone(),
        move_deadline: config.move_deadline,
        ..Default::default()
    };
    if let (Some(specs), Some(_)) = (&config.tenants, config.admin_token) {
        keeping.store =
            crate::tenants::store::Store::open(&config.state_dir, config.state_key.clone())
                .map_err(std::io::Error::other)?;
        keeping.file_ids = crate::tenants::changes::file_ids(specs);
        if !keeping.store.sealed() {
            tracing::warn!(
                "{} is not set: the admin API keeps only tenants without secrets (env values, secrets, tokens)",
                crate::tenants::store::KEY_VAR
            );
        }
    }
    let tenants = Tenants::keeping(host, config.tenants.is_some(), keeping);
    match &config.tenants {
        Some(specs) => {
            for spec in specs {
                let app = tenants
                    .host
                    .build(spec)
                    .await
                    .map_err(|e| std::io::Error::other(format!("tenant {:?}: {e}", spec.id)))?;
                tenants.insert(app).await;
            }
            let restored = tenants.restore().await?;
            tracing::info!(
                tenants = specs.len(),
                restored,
                "serving tenants on /t/{{id}}/mcp"
            );
        }
        None => {
            let launcher = single_launcher(&config, &tenants.host, &shutdown).await?;
            let app = tenants
                .host
                .app("", launcher, Default::default(), Default::default());
            tenants.insert(app).await;
        }
    }

    let router = crate::http::router(
        tenants.clone(),
        Arc::new(config.origin_policy.clone()),
        config.admin_token,
        config.machine_id.clone(),
    );
    tracing::info!(addr = %listener.local_addr()?, mode = ?config.mode, "catwalk is serving");

    let drained = CancellationToken::new();
    tokio::spawn(crate::shutdown::drain(
        registry.clone(),
        shutdown.clone(),
        drained.clone(),
        config.drain_timeout,
    ));
    crate::http::server::serve(listener, router, config.connections, drained.clone()).await?;
    registry.end_all("catwalk is shutting down");
    tenants.stop_all().await;
    // Give the stopped servers their stop sequence before the process (and its runtime) goes.
    // (WASI instances are tasks of this runtime: ending their sessions already stopped them.)
    crate::shutdown::wait_for_children(config.spec.stop_grace * 2 + Duration::from_secs(1)).await;
    Ok(())
}

/// The single tenant's server: `--wasm`, the demo guest, a package or a command.
async fn single_launcher(
    config: &Config,
    host: &crate::tenants::Host,
    shutdown: &CancellationToken,
) -> std::io::Result<Launcher> {
    Ok(match &config.server {
        Server::Wasm { path, policy } => {
            let policy = with_egress(config, host, policy.clone()).await?;
            let wasm = tokio::fs::read(path).await.map_err(|e| {
                std::io::Error::new(e.kind(), format!("cannot read {}: {e}", path.display()))
            })?;
            let name = path
                .file_name()
                .map_or_else(|| "guest".into(), |n| n.to_string_lossy().into_owned());
            Launcher::Wasi(host.wasi_server("", name, wasm, policy).await?)
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
            let policy = with_egress(config, host, policy.clone()).await?;
            Launcher::Wasi(
                host.wasi_server("", "catwalk-demo".into(), wasm, policy)
                    .await?,
            )
        }
        Server::Package(package)
            if let Some(module) = host
                .published_build(package, config.sandbox)
                .map_err(std::io::Error::other)? =>
        {
            tracing::info!(%package, "serving the catalog's WASI build of the package");
            let wasm = crate::tenants::source::load(
                &module,
                &config.state_dir.join("modules"),
                host.http(),
            )
            .await
            .map_err(std::io::Error::other)?;
            let policy = GuestPolicy {
                env: package_guest_env(config),
                ..config.guest.clone()
            };
            let policy = with_egress(config, host, policy).await?;
            Launcher::Wasi(host.wasi_server("", package.clone(), wasm, policy).await?)
        }
        Server::Package(package)
            if matches!(config.sandbox, Sandbox::Wasi | Sandbox::WasiOrNpx)
                && let Some(launcher) = packed_launcher(config, host, package).await? =>
        {
            launcher
        }
        Server::Package(_) | Server::Command(_) => {
            if !config.egress.is_empty() || !config.secrets.is_empty() {
                return Err(std::io::Error::other(
                    "--egress and --secret are enforced in the sandbox, and this package runs through npx \
                     (give --sandbox wasi to pack it): an npx process is not network-confined",
                ));
            }
            let mut source = match &config.server {
                Server::Package(spec) => {
                    let base = ProcessSpec {
                        args: config.package_args.iter().map(Into::into).collect(),
                        ..config.spec.clone()
                    };
                    CommandSource::npm(
                        base,
                        spec.clone(),
                        &config.state_dir,
                        None,
                        supply(config, host)?,
                    )
                }
                _ => CommandSource::command(config.spec.clone()),
            };
            if config.mode == Mode::PerSession {
                source = source.with_spares(
                    config.spare,
                    shutdown.clone(),
                    host.metrics.tenant("").spares("process"),
                );
            }
            let source = Arc::new(source);
            // Resolve the package now, so the first session does not pay for it (and /readyz can tell), and
            // start the spares.
            let prepare = source.clone();
            tokio::spawn(async move {
                prepare.prepare().await;
                prepare.refill();
            });
            match config.mode {
                Mode::PerSession => Launcher::PerSession(source),
                Mode::Shared => Launcher::Shared(SharedServer::start(
                    source,
                    shutdown.clone(),
                    host.metrics.tenant(""),
                )),
            }
        }
    })
}

/// The demo WASI server (`catwalk-guest`'s `echo` example), served when nothing is configured. Empty when the
/// build had no wasm32-wasip1 target.
/// What a package's WASI build gets of the package's env: the tenant's credentials, without the variables only
/// a process needs.
fn package_guest_env(config: &Config) -> Vec<(String, String)> {
    config
        .spec
        .env
        .iter()
        .filter_map(|(k, v)| Some((k.to_str()?.to_owned(), v.to_str()?.to_owned())))
        .filter(|(k, _)| {
            !matches!(k.as_str(), "PATH" | "HOME" | "TMPDIR") && !k.starts_with("npm_config_")
        })
        .collect()
}

/// `policy` with the single server's egress grants and secrets (`--egress`, `--secret`).
async fn with_egress(
    config: &Config,
    host: &crate::tenants::Host,
    policy: GuestPolicy,
) -> std::io::Result<GuestPolicy> {
    let egress = host
        .tenant_egress("", &config.egress, &config.secrets)
        .await
        .map_err(std::io::Error::other)?;
    Ok(GuestPolicy { egress, ..policy })
}

/// How the single server's package is to be had: `--verify`, and the registry its env names.
fn supply(
    config: &Config,
    host: &crate::tenants::Host,
) -> std::io::Result<crate::packages::Supply> {
    let env: Vec<(String, String)> = config
        .spec
        .env
        .iter()
        .filter_map(|(k, v)| Some((k.to_str()?.to_owned(), v.to_str()?.to_owned())))
        .collect();
    host.supply(&env, None).map_err(std::io::Error::other)
}

/// The package packed to WASI (`catwalk pack`, done now unless it was before). `None`: it cannot be packed
/// and `--sandbox wasi-or-npx` lets it run through npx.
async fn packed_launcher(
    config: &Config,
    host: &crate::tenants::Host,
    package: &str,
) -> std::io::Result<Option<Launcher>> {
    let base = GuestPolicy {
        env: package_guest_env(config),
        ..config.guest.clone()
    };
    let base = with_egress(config, host, base).await?;
    match host
        .pack_launcher(
            "",
            package,
            &config.package_args,
            base,
            supply(config, host)?,
        )
        .await
    {
        Ok(launcher) => Ok(Some(launcher)),
        Err(e) if config.sandbox == Sandbox::WasiOrNpx => {
            tracing::warn!(%package, "cannot run sandboxed, so it runs through npx: {e}");
            Ok(None)
        }
        Err(e) => Err(std::io::Error::other(format!(
            "{package} cannot run sandboxed (--sandbox wasi): {e}"
        ))),
    }
}

const DEMO_GUEST: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/demo.wasm"));
