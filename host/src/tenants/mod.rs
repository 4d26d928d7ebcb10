//! Tenants: who this catwalk serves. Each has its own server (npm package, command or WASI module), env, grants,
//! limits and tokens; none can see or touch another's. The single-tenant flow (`MCP_PACKAGE`, `--wasm`, a command)
//! is one tenant with the empty id, served on `/mcp` and `/sse`; a tenants file serves each on `/t/{id}/...`.
//!
//! - [`file`]: the tenants file's schema and its validation.
//! - [`source`]: where a WASI module comes from (a file, or a pinned URL, cached by content).

pub mod file;
pub mod source;

use std::collections::HashMap;
use std::ffi::OsString;
use std::path::PathBuf;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;

use crate::backend::Launcher;
use crate::backend::npm::CommandSource;
use crate::backend::process::ProcessSpec;
use crate::backend::shared::SharedServer;
use crate::backend::wasi::{GuestPolicy, PoolSize, WasiRuntime, WasiServer};
use crate::config::Mode;
use crate::http::App;
use crate::session::{Limits, Registry};
use file::{TenantServer, TenantSpec};

/// What every tenant of the process shares, and the defaults a tenant's own limits override.
#[derive(Debug)]
pub struct Host {
    pub state_dir: PathBuf,
    pub registry: Arc<Registry>,
    pub shutdown: CancellationToken,
    pub limits: Limits,
    pub max_body_bytes: usize,
    pub keep_alive: Duration,
    pub json_window: Duration,
    /// The defaults for a child process: message cap and stop grace (env and command are the tenant's).
    pub process: ProcessSpec,
    /// `PATH` for tenants' children (npx needs one); nothing else of catwalk's environment reaches them.
    pub path: OsString,
    /// The defaults for a guest: memory, CPU budget, message and log caps (env and dirs are the tenant's).
    pub guest: GuestPolicy,
    /// The largest memory any tenant may be granted: the WASI pool is sized for it.
    pub max_guest_memory: usize,
    wasi: tokio::sync::OnceCell<Arc<WasiRuntime>>,
    http: reqwest::Client,
}

impl Host {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        state_dir: PathBuf,
        registry: Arc<Registry>,
        shutdown: CancellationToken,
        limits: Limits,
        max_body_bytes: usize,
        process: ProcessSpec,
        path: OsString,
        guest: GuestPolicy,
        max_guest_memory: usize,
    ) -> Self {
        Self {
            state_dir,
            registry,
            shutdown,
            limits,
            max_body_bytes,
            keep_alive: Duration::from_secs(15),
            json_window: Duration::from_millis(50),
            process,
            path,
            guest,
            max_guest_memory,
            wasi: tokio::sync::OnceCell::new(),
            http: reqwest::Client::builder()
                .connect_timeout(Duration::from_secs(10))
                .timeout(Duration::from_secs(300))
                .build()
                .expect("a TLS backend is compiled in"),
        }
    }

    /// The process's one WASI runtime, started on first use.
    pub async fn wasi(&self) -> std::io::Result<Arc<WasiRuntime>> {
        self.wasi
            .get_or_try_init(|| async {
                let pool = PoolSize {
                    instances: u32::try_from(self.registry.max_sessions()).unwrap_or(u32::MAX),
                    max_memory_bytes: self.max_guest_memory,
                };
                let cache_dir = self.state_dir.join("wasm");
                tokio::task::spawn_blocking(move || WasiRuntime::new(cache_dir, pool))
                    .await
                    .map_err(std::io::Error::other)?
                    .map_err(std::io::Error::other)
            })
            .await
            .cloned()
    }

    /// Compiles (or loads from the cache) and links a WASI server, off the async threads.
    pub async fn wasi_server(
        &self,
        name: String,
        wasm: Vec<u8>,
        policy: GuestPolicy,
    ) -> std::io::Result<Arc<WasiServer>> {
        let runtime = self.wasi().await?;
        let server =
            tokio::task::spawn_blocking(move || WasiServer::new(runtime, &name, &wasm, policy))
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

    /// The front end's view of one tenant.
    pub fn app(
        &self,
        tenant: &str,
        launcher: Launcher,
        tokens: Vec<[u8; 32]>,
        max_sessions: Option<usize>,
        request_timeout: Option<Duration>,
    ) -> Arc<App> {
        let mut limits = self.limits.clone();
        if let Some(timeout) = request_timeout {
            limits.request_timeout = timeout;
        }
        Arc::new(App {
            tenant: tenant.into(),
            registry: self.registry.clone(),
            launcher,
            limits: Arc::new(limits),
            places: max_sessions.map(|n| (Arc::new(Semaphore::new(n)), n)),
            tokens,
            max_body_bytes: self.max_body_bytes,
            keep_alive: self.keep_alive,
            json_window: self.json_window,
            shutdown: self.shutdown.clone(),
        })
    }

    /// Builds a tenant's server and its front end: fetches and compiles its module, or prepares its package.
    pub async fn build(&self, spec: &TenantSpec) -> Result<Arc<App>, String> {
        let launcher = match &spec.server {
            TenantServer::Wasm(module) => {
                let memory = spec.memory.unwrap_or(self.guest.max_memory_bytes);
                if memory > self.max_guest_memory {
                    return Err(format!(
                        "limits.memory: more than this machine allows a guest ({} MiB, --memory)",
                        self.max_guest_memory >> 20
                    ));
                }
                let wasm = source::load(module, &self.state_dir.join("modules"), &self.http)
                    .await
                    .map_err(|e| format!("wasm: {e}"))?;
                let policy = GuestPolicy {
                    env: spec.env.clone(),
                    dirs: spec.dirs.clone(),
                    max_memory_bytes: memory,
                    cpu_budget: spec.cpu_budget.unwrap_or(self.guest.cpu_budget),
                    ..self.guest.clone()
                };
                let server = self
                    .wasi_server(spec.id.clone(), wasm, policy)
                    .await
                    .map_err(|e| format!("wasm: {e}"))?;
                Launcher::Wasi(server)
            }
            TenantServer::Package(_) | TenantServer::Command(_) => {
                let dirs = self
                    .tenant_dirs(&spec.id)
                    .map_err(|e| format!("state dir: {e}"))?;
                let mut env: Vec<(OsString, OsString)> =
                    spec.env.iter().map(|(k, v)| (k.into(), v.into())).collect();
                for (name, value) in [
                    ("PATH", self.path.clone()),
                    ("HOME", dirs.home.clone().into()),
                    ("npm_config_cache", dirs.npm_cache.clone().into()),
                ] {
                    if !env.iter().any(|(k, _)| k == name) {
                        env.push((name.into(), value));
                    }
                }
                let base = ProcessSpec {
                    env,
                    cwd: Some(dirs.work.clone()),
                    ..self.process.clone()
                };
                let source = Arc::new(match &spec.server {
                    TenantServer::Package(package) => {
                        CommandSource::npm(base, package.clone(), &dirs.root)
                    }
                    TenantServer::Command(argv) => CommandSource::command(ProcessSpec {
                        program: argv[0].clone().into(),
                        args: argv[1..].iter().map(OsString::from).collect(),
                        ..base
                    }),
                    TenantServer::Wasm(_) => unreachable!("matched above"),
                });
                let prepare = source.clone();
                tokio::spawn(async move { prepare.prepare().await });
                match spec.mode {
                    Mode::PerSession => Launcher::PerSession(source),
                    Mode::Shared => {
                        Launcher::Shared(SharedServer::start(source, self.shutdown.child_token()))
                    }
                }
            }
        };
        Ok(self.app(
            &spec.id,
            launcher,
            spec.tokens.clone(),
            spec.max_sessions,
            spec.request_timeout,
        ))
    }

    /// A tenant's own directories for its children: its root (packages install there), home, npm cache and
    /// working dir.
    fn tenant_dirs(&self, id: &str) -> std::io::Result<TenantDirs> {
        let root = self.state_dir.join("tenants").join(id);
        let dirs = TenantDirs {
            home: root.join("home"),
            npm_cache: root.join("npm-cache"),
            work: root.join("work"),
            root,
        };
        for dir in [&dirs.home, &dirs.npm_cache, &dirs.work] {
            std::fs::create_dir_all(dir)?;
        }
        Ok(dirs)
    }
}

struct TenantDirs {
    root: PathBuf,
    home: PathBuf,
    npm_cache: PathBuf,
    work: PathBuf,
}

/// The tenants being served, by id.
#[derive(Debug)]
pub struct Tenants {
    pub host: Host,
    map: RwLock<HashMap<String, Arc<App>>>,
    /// Whether tenants come from a tenants file (routes `/t/{id}/...`) or this is the single-tenant flow.
    pub multi: bool,
}

impl Tenants {
    pub fn new(host: Host, multi: bool) -> Arc<Self> {
        Arc::new(Self {
            host,
            map: RwLock::default(),
            multi,
        })
    }

    pub fn get(&self, id: &str) -> Option<Arc<App>> {
        self.map
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(id)
            .cloned()
    }

    pub fn list(&self) -> Vec<Arc<App>> {
        let mut apps: Vec<_> = self
            .map
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .values()
            .cloned()
            .collect();
        apps.sort_by(|a, b| a.tenant.cmp(&b.tenant));
        apps
    }

    /// Serves `app` under its tenant id; a tenant it replaces is retired (its sessions end). Returns whether
    /// it replaced one.
    pub async fn insert(&self, app: Arc<App>) -> bool {
        let old = self
            .map
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .insert(app.tenant.to_string(), app.clone());
        let replaced = old.is_some();
        if let Some(old) = old {
            self.retire(&old, "its tenant was replaced").await;
        }
        replaced
    }

    /// Stops serving tenant `id`: its sessions end and its instances stop. Whether it existed.
    pub async fn remove(&self, id: &str) -> bool {
        let old = self
            .map
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .remove(id);
        match old {
            Some(old) => {
                self.retire(&old, "its tenant was removed").await;
                true
            }
            None => false,
        }
    }

    async fn retire(&self, app: &App, reason: &str) {
        let ended = self.host.registry.end_tenant(&app.tenant, reason);
        if let Launcher::Shared(server) = &app.launcher {
            server.stop().await;
        }
        tracing::info!(tenant = %app.tenant, sessions = ended, "tenant retired: {reason}");
    }

    /// Stops every shared server (at shutdown; sessions were ended already).
    pub async fn stop_all(&self) {
        for app in self.list() {
            if let Launcher::Shared(server) = &app.launcher {
                server.stop().await;
            }
        }
    }
}

/// Whether `token`'s SHA-256 is one of `hashes`, comparing every byte of every hash (no early exit), so the time
/// taken says nothing about how close a guess came.
pub fn token_matches(token: &str, hashes: &[[u8; 32]]) -> Option<[u8; 32]> {
    use sha2::{Digest, Sha256};
    let digest: [u8; 32] = Sha256::digest(token.as_bytes()).into();
    let mut found = false;
    for hash in hashes {
        let diff = hash
            .iter()
            .zip(digest.iter())
            .fold(0u8, |acc, (a, b)| acc | (a ^ b));
        found |= std::hint::black_box(diff) == 0;
    }
    found.then_some(digest)
}
