//! Tenants: who this catwalk serves. Each has its own server (npm package, command or WASI module), env, grants,
//! limits and tokens; none can see or touch another's. The single-tenant flow (`MCP_PACKAGE`, `--wasm`, a command)
//! is one tenant with the empty id, served on `/mcp` and `/sse`; a tenants file serves each on `/t/{id}/...`.
//!
//! - [`file`]: the tenants file's schema and its validation.
//! - [`source`]: where a WASI module comes from (a file, or a pinned URL, cached by content).
//! - [`catalog`]: which npm packages have a published WASI build, run sandboxed instead of through npx.
//!
//! Tenants' child processes are confined by [`crate::confine`]: limits, Landlock, and a uid each as root.

pub mod catalog;
pub mod file;
pub mod source;

use std::collections::HashMap;
use std::ffi::OsString;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;

use crate::backend::Launcher;
use crate::backend::npm::CommandSource;
use crate::backend::process::ProcessSpec;
use crate::backend::shared::SharedServer;
use crate::backend::wasi::{GuestPolicy, PoolSize, WasiRuntime, WasiServer};
use crate::config::{Mode, Sandbox};
use crate::confine::{ConfineArgs, Confinement};
use crate::http::App;
use crate::metrics::Metrics;
use crate::session::{Limits, Registry};
use catalog::Catalog;
use file::{ModuleSource, TenantServer, TenantSpec};

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
    /// How tenants' children are confined; `None` in the single-tenant flow, where the command runs as
    /// catwalk's own child.
    pub children: Option<ChildConfinement>,
    pub metrics: Arc<Metrics>,
    /// Variables of catwalk's own environment every tenant's children get (CA paths, a proxy).
    pub tenant_env: Vec<(OsString, OsString)>,
    /// Requests a tenant of a tenants file may have in progress at once, unless it says otherwise.
    pub max_inflight: usize,
    /// Guests each WASI server keeps started ahead of need (`--spare`).
    pub spare: usize,
    /// WASI builds of npm packages (empty without `--catalog`).
    pub catalog: Catalog,
    /// Tenants' uids, once given: a tenant keeps its uid for the life of the process.
    uids: Mutex<HashMap<String, u32>>,
    wasi: tokio::sync::OnceCell<Arc<WasiRuntime>>,
    /// Built on first use: its TLS set-up is code and memory a catwalk that fetches nothing never needs.
    http: std::sync::OnceLock<reqwest::Client>,
}

/// How tenants' children are confined on this machine, found once at start-up.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ChildConfinement {
    #[serde(skip)]
    pub helper: PathBuf,
    /// What the kernel enforces of the filesystem rules: `full`, `partial` or `none`.
    pub landlock: String,
    pub landlock_abi: i32,
    /// Whether each tenant's children run as a uid of their own (catwalk runs as root).
    pub uid_per_tenant: bool,
    pub nofile: u64,
    /// Only with a uid per tenant.
    pub nproc: Option<u64>,
}

/// Tenants' uids are taken from `FIRST_TENANT_UID..FIRST_TENANT_UID + TENANT_UIDS`, far above any system's
/// or person's uid, by a hash of the tenant id (so a tenant finds its files again after a restart).
const FIRST_TENANT_UID: u32 = 1_000_000_000;
const TENANT_UIDS: u32 = 1 << 24;
/// Requests in progress per tenant (see [`App::turns`]), unless configured: twice the cores, at least 4. Fewer
/// keep a flooded machine fairer but leave cores idle between one tenant's requests (measured in
/// `bench/README.md`, fairness).
pub fn default_max_inflight() -> usize {
    std::thread::available_parallelism().map_or(4, |n| (2 * n.get()).max(4))
}
/// Open files per child, and tasks per tenant uid, unless the tenant says otherwise.
const DEFAULT_NOFILE: u64 = 4096;
const DEFAULT_NPROC: u64 = 4096;

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
            children: None,
            metrics: Metrics::new(),
            catalog: Catalog::default(),
            max_inflight: default_max_inflight(),
            spare: 0,
            tenant_env: Vec::new(),
            uids: Mutex::default(),
            wasi: tokio::sync::OnceCell::new(),
            http: std::sync::OnceLock::new(),
        }
    }

    /// Finds out how tenants' children can be confined here (runs the helper once), and closes the state
    /// dir to them: with a uid per tenant, each tenant's dir is its own and the rest is catwalk's.
    pub async fn confine_children(&mut self, helper: PathBuf) -> std::io::Result<()> {
        let probe = crate::confine::probe(&helper).await?;
        let uid_per_tenant = rustix::process::geteuid().is_root();
        if uid_per_tenant {
            use std::os::unix::fs::PermissionsExt;
            std::fs::create_dir_all(&self.state_dir)?;
            reachable_by_others(&self.state_dir)?;
            let tenants = self.state_dir.join("tenants");
            std::fs::create_dir_all(&tenants)?;
            for (dir, mode) in [(&self.state_dir, 0o711), (&tenants, 0o711)] {
                std::fs::set_permissions(dir, std::fs::Permissions::from_mode(mode))?;
            }
            for private in ["modules", "wasm", "npm"] {
                let dir = self.state_dir.join(private);
                std::fs::create_dir_all(&dir)?;
                std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700))?;
            }
        }
        let children = ChildConfinement {
            helper,
            landlock: probe.landlock,
            landlock_abi: probe.abi,
            uid_per_tenant,
            nofile: DEFAULT_NOFILE,
            nproc: uid_per_tenant.then_some(DEFAULT_NPROC),
        };
        tracing::info!(
            landlock = %children.landlock,
            landlock_abi = children.landlock_abi,
            uid_per_tenant,
            nofile = children.nofile,
            nproc = ?children.nproc,
            "tenants' children are confined"
        );
        if children.landlock == "none" {
            tracing::warn!(
                "this kernel does not enforce Landlock: tenants' children can read what their uid can"
            );
        }
        self.children = Some(children);
        Ok(())
    }

    /// Refuses a tenants file that tenants' children could read: it holds every tenant's secrets, and on the
    /// npx path children may read the system's directories (and, without root, share catwalk's uid).
    pub fn check_private(&self, file: &std::path::Path) -> std::io::Result<()> {
        if self.children.is_none() {
            return Ok(());
        }
        let file = std::fs::canonicalize(file)?;
        let readable = crate::confine::system_read_dirs(&self.path)
            .into_iter()
            .filter_map(|dir| std::fs::canonicalize(dir).ok())
            .find(|dir| file.starts_with(dir));
        match readable {
            Some(dir) => Err(std::io::Error::other(format!(
                "the tenants file {} is below {}, which every tenant's child may read: keep it elsewhere \
                 (such as /etc/catwalk)",
                file.display(),
                dir.display()
            ))),
            None => Ok(()),
        }
    }

    /// The uid of tenant `id`'s children: stable for the id, never another tenant's.
    fn uid_for(&self, id: &str) -> u32 {
        let mut uids = crate::lock(&self.uids);
        if let Some(&uid) = uids.get(id) {
            return uid;
        }
        let hash = id.bytes().fold(0x811c_9dc5_u32, |h, b| {
            (h ^ u32::from(b)).wrapping_mul(0x0100_0193)
        });
        let mut slot = hash % TENANT_UIDS;
        while uids.values().any(|&u| u == FIRST_TENANT_UID + slot) {
            slot = (slot + 1) % TENANT_UIDS;
        }
        let uid = FIRST_TENANT_UID + slot;
        uids.insert(id.to_owned(), uid);
        uid
    }

    /// How tenant `spec`'s children are confined: its uid, limits, and what Landlock lets them touch.
    fn confinement(&self, spec: &TenantSpec, dirs: &TenantDirs) -> Option<Arc<Confinement>> {
        let children = self.children.as_ref()?;
        let uid = children.uid_per_tenant.then(|| self.uid_for(&spec.id));
        let mut read = crate::confine::system_read_dirs(&self.path);
        let mut write = crate::confine::system_write_dirs();
        write.push(dirs.root.clone());
        for grant in &spec.dirs {
            if grant.writable {
                write.push(grant.host.clone());
            } else {
                read.push(grant.host.clone());
            }
        }
        let args = ConfineArgs {
            nofile: Some(spec.nofile.unwrap_or(children.nofile)),
            nproc: uid.map(|_| spec.nproc.or(children.nproc).unwrap_or(DEFAULT_NPROC)),
            landlock: children.landlock != "none",
            read,
            write,
            uid,
            ..ConfineArgs::default()
        };
        Some(Arc::new(Confinement {
            helper: children.helper.clone(),
            args,
        }))
    }

    /// The client catwalk fetches modules and catalogs with.
    pub fn http(&self) -> &reqwest::Client {
        self.http.get_or_init(|| {
            reqwest::Client::builder()
                .connect_timeout(Duration::from_secs(10))
                .timeout(Duration::from_secs(300))
                .build()
                .expect("a TLS backend is compiled in")
        })
    }

    /// Reads the catalog of WASI builds at `location`.
    pub async fn load_catalog(&mut self, location: &str) -> std::io::Result<()> {
        self.catalog = Catalog::load(location, self.http())
            .await
            .map_err(|e| std::io::Error::other(format!("--catalog: {e}")))?;
        tracing::info!(
            packages = self.catalog.len(),
            "catalog of WASI builds loaded"
        );
        Ok(())
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
        tenant: &str,
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
        let server = Arc::new(server.with_spares(
            self.spare,
            self.shutdown.clone(),
            self.metrics.tenant(tenant).spares("wasi"),
        ));
        server.refill();
        Ok(server)
    }

    /// The front end's view of one tenant.
    pub fn app(
        &self,
        tenant: &str,
        launcher: Launcher,
        tokens: Vec<[u8; 32]>,
        max_sessions: Option<usize>,
        request_timeout: Option<Duration>,
        max_inflight: Option<usize>,
    ) -> Arc<App> {
        let mut limits = self.limits.clone();
        if let Some(timeout) = request_timeout {
            limits.request_timeout = timeout;
        }
        let modern = Arc::new(crate::http::modern::Pool::default());
        crate::http::modern::Pool::spawn_reaper(&modern, self.shutdown.clone());
        Arc::new(App {
            tenant: tenant.into(),
            metrics: self.metrics.tenant(tenant),
            registry: self.registry.clone(),
            launcher,
            limits: Arc::new(limits),
            places: max_sessions.map(|n| (Arc::new(Semaphore::new(n)), n)),
            turns: max_inflight.map(|n| Arc::new(Semaphore::new(n))),
            tokens,
            max_body_bytes: self.max_body_bytes,
            keep_alive: self.keep_alive,
            json_window: self.json_window,
            shutdown: self.shutdown.clone(),
            modern,
        })
    }

    /// Builds a tenant's server and its front end: fetches and compiles its module, or prepares its package.
    pub async fn build(&self, spec: &TenantSpec) -> Result<Arc<App>, String> {
        let launcher = self.launcher(spec).await?;
        Ok(self.app(
            &spec.id,
            launcher,
            spec.tokens.clone(),
            spec.max_sessions,
            spec.request_timeout,
            Some(spec.max_inflight.unwrap_or(self.max_inflight)),
        ))
    }

    /// A tenant's server: its module, its package packed to WASI, or its package or command as processes.
    async fn launcher(&self, spec: &TenantSpec) -> Result<Launcher, String> {
        if let TenantServer::Package(package) = &spec.server
            && matches!(spec.sandbox, Sandbox::Wasi | Sandbox::WasiOrNpx)
            && self.catalog.resolve(package).is_none()
        {
            match self.packed_tenant(spec, package).await {
                Ok(launcher) => return Ok(launcher),
                Err(e) if spec.sandbox == Sandbox::WasiOrNpx => {
                    tracing::warn!(tenant = %spec.id, %package, "cannot run sandboxed, so it runs through npx: {e}");
                }
                Err(e) => return Err(format!("sandbox: {package} cannot run sandboxed: {e}")),
            }
        }
        let published = match &spec.server {
            TenantServer::Package(package) => self
                .published_build(package, spec.sandbox)
                .map_err(|e| format!("sandbox: {e}"))?,
            _ => None,
        };
        let launcher = match (&spec.server, published) {
            (_, Some(module)) => {
                let name = match &spec.server {
                    TenantServer::Package(package) => package.clone(),
                    _ => spec.id.clone(),
                };
                self.wasm_launcher(spec, &module, name).await?
            }
            (TenantServer::Wasm(module), None) => {
                self.wasm_launcher(spec, module, spec.id.clone()).await?
            }
            (TenantServer::Package(_) | TenantServer::Command(_), None) => {
                let dirs = self
                    .tenant_dirs(&spec.id)
                    .map_err(|e| format!("state dir: {e}"))?;
                let confine = self.confinement(spec, &dirs);
                let mut env: Vec<(OsString, OsString)> =
                    spec.env.iter().map(|(k, v)| (k.into(), v.into())).collect();
                for (name, value) in [
                    ("PATH", self.path.clone()),
                    ("HOME", dirs.home.clone().into()),
                    ("npm_config_cache", dirs.npm_cache.clone().into()),
                    ("TMPDIR", dirs.tmp.clone().into()),
                ] {
                    if !env.iter().any(|(k, _)| k == name) {
                        env.push((name.into(), value));
                    }
                }
                for (name, value) in &self.tenant_env {
                    if !env.iter().any(|(k, _)| k == name) {
                        env.push((name.clone(), value.clone()));
                    }
                }
                let base = ProcessSpec {
                    env,
                    cwd: Some(dirs.work.clone()),
                    confine,
                    ..self.process.clone()
                };
                let source = Arc::new(match &spec.server {
                    TenantServer::Package(package) => CommandSource::npm(
                        ProcessSpec {
                            args: spec.args.iter().map(OsString::from).collect(),
                            ..base
                        },
                        package.clone(),
                        &dirs.root,
                    ),
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
                    Mode::Shared => Launcher::Shared(SharedServer::start(
                        source,
                        self.shutdown.child_token(),
                        self.metrics.tenant(&spec.id),
                    )),
                }
            }
        };
        Ok(launcher)
    }

    /// The catalog's WASI build of `package`, if it should be used. `None` means npx or, with `wasi` and
    /// `wasi-or-npx`, the package packed by catwalk.
    pub fn published_build(
        &self,
        package: &str,
        sandbox: Sandbox,
    ) -> Result<Option<ModuleSource>, String> {
        Ok(match sandbox {
            Sandbox::Npx => None,
            Sandbox::Auto | Sandbox::Wasi | Sandbox::WasiOrNpx => {
                self.catalog.resolve(package).cloned()
            }
        })
    }

    /// A WASI server of `package` packed to WASI (`catwalk pack`; packed now unless it was before), under
    /// `base`'s env, grants and limits, with the package's `args`.
    pub async fn pack_launcher(
        &self,
        tenant: &str,
        package: &str,
        args: &[String],
        base: GuestPolicy,
    ) -> Result<Launcher, String> {
        let packer = crate::pack::Packer::new(
            &self.state_dir,
            self.wasi().await.map_err(|e| e.to_string())?,
        )
        .map_err(|e| e.to_string())?;
        let request = crate::pack::PackRequest {
            spec: package.to_owned(),
            args: args.to_vec(),
            policy: base.clone(),
            refresh: false,
        };
        let started = std::time::Instant::now();
        let (artifact, cached) = packer.pack(&request).await.map_err(|e| e.to_string())?;
        tracing::info!(
            %tenant,
            %package,
            version = %artifact.manifest.version,
            artifact = %artifact.manifest.sha256,
            cached,
            took = ?started.elapsed(),
            "serving the package packed to WASI"
        );
        let wasm = tokio::fs::read(artifact.runtime_path())
            .await
            .map_err(|e| format!("reading the packed runtime: {e}"))?;
        let policy = artifact.policy(&base, args);
        let server = self
            .wasi_server(tenant, package.to_owned(), wasm, policy)
            .await
            .map_err(|e| e.to_string())?;
        Ok(Launcher::Wasi(server))
    }

    /// What tenant `spec`'s guests may do: its env, grants and limits.
    fn tenant_policy(&self, spec: &TenantSpec) -> Result<GuestPolicy, String> {
        let memory = spec.memory.unwrap_or(self.guest.max_memory_bytes);
        if memory > self.max_guest_memory {
            return Err(format!(
                "limits.memory: more than this machine allows a guest ({} MiB, --memory)",
                self.max_guest_memory >> 20
            ));
        }
        Ok(GuestPolicy {
            env: spec.env.clone(),
            dirs: spec.dirs.clone(),
            network: spec.network.clone(),
            max_memory_bytes: memory,
            cpu_budget: spec.cpu_budget.unwrap_or(self.guest.cpu_budget),
            ..self.guest.clone()
        })
    }

    /// Tenant `spec`'s package, packed to WASI, with the tenant's env, grants and limits.
    async fn packed_tenant(&self, spec: &TenantSpec, package: &str) -> Result<Launcher, String> {
        let base = self.tenant_policy(spec)?;
        self.pack_launcher(&spec.id, package, &spec.args, base)
            .await
    }

    /// A WASI server for tenant `spec` from `module`, with the tenant's env, grants and limits.
    async fn wasm_launcher(
        &self,
        spec: &TenantSpec,
        module: &ModuleSource,
        name: String,
    ) -> Result<Launcher, String> {
        let policy = self.tenant_policy(spec)?;
        let wasm = source::load(module, &self.state_dir.join("modules"), self.http())
            .await
            .map_err(|e| format!("wasm: {e}"))?;
        let server = self
            .wasi_server(&spec.id, name, wasm, policy)
            .await
            .map_err(|e| format!("wasm: {e}"))?;
        Ok(Launcher::Wasi(server))
    }

    /// A tenant's own directories for its children: its root (packages install there), home, npm cache and
    /// working dir.
    /// With a uid per tenant they are owned by that uid, and the root is closed to everyone else.
    fn tenant_dirs(&self, id: &str) -> std::io::Result<TenantDirs> {
        let root = self.state_dir.join("tenants").join(id);
        let dirs = TenantDirs {
            home: root.join("home"),
            npm_cache: root.join("npm-cache"),
            work: root.join("work"),
            tmp: root.join("tmp"),
            root,
        };
        for dir in [&dirs.home, &dirs.npm_cache, &dirs.work, &dirs.tmp] {
            std::fs::create_dir_all(dir)?;
        }
        if self.children.as_ref().is_some_and(|c| c.uid_per_tenant) {
            use std::os::unix::fs::PermissionsExt;
            let uid = self.uid_for(id);
            for dir in [
                &dirs.root,
                &dirs.home,
                &dirs.npm_cache,
                &dirs.work,
                &dirs.tmp,
            ] {
                std::os::unix::fs::chown(dir, Some(uid), Some(uid))?;
            }
            std::fs::set_permissions(&dirs.root, std::fs::Permissions::from_mode(0o700))?;
        }
        Ok(dirs)
    }
}

struct TenantDirs {
    root: PathBuf,
    home: PathBuf,
    npm_cache: PathBuf,
    work: PathBuf,
    tmp: PathBuf,
}

/// Whether every directory above `dir` lets other users through (a tenant's uid must reach its own dir below
/// it): a state dir under `/root` (mode 0700) cannot serve tenants with uids of their own.
fn reachable_by_others(dir: &std::path::Path) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let dir = std::fs::canonicalize(dir)?;
    for above in dir.ancestors().skip(1) {
        let mode = std::fs::metadata(above)?.permissions().mode();
        if mode & 0o001 == 0 {
            return Err(std::io::Error::other(format!(
                "the state dir {} is below {} (mode {:o}), which tenants' uids cannot pass through: give \
                 --state-dir a place they can reach, such as /var/lib/catwalk",
                dir.display(),
                above.display(),
                mode & 0o7777
            )));
        }
    }
    Ok(())
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn a_state_dir_tenants_cannot_reach_is_refused() {
        let top = std::env::temp_dir().join(format!("catwalk-reach-{}", std::process::id()));
        let state = top.join("private").join("state");
        std::fs::create_dir_all(&state).unwrap();
        assert!(reachable_by_others(&state).is_ok());
        let private = top.join("private");
        std::fs::set_permissions(&private, std::fs::Permissions::from_mode(0o700)).unwrap();
        let error = reachable_by_others(&state).unwrap_err().to_string();
        assert!(error.contains("mode 700"), "{error}");
        std::fs::remove_dir_all(top).unwrap();
    }
}
