//! Building a tenant's server: its WASI module (a file, a pinned URL, the catalog's build, or its package
//! packed by catwalk) or its package or command as confined child processes, and the front end's view of it.

use std::ffi::OsString;
use std::sync::Arc;

use super::file::{ModuleSource, TenantServer, TenantSpec};
use super::{Access, App, Front, Host, Terms, source};
use crate::backend::Launcher;
use crate::backend::npm::CommandSource;
use crate::backend::process::ProcessSpec;
use crate::backend::shared::SharedServer;
use crate::backend::wasi::{GuestPolicy, PoolSize, WasiRuntime, WasiServer};
use crate::vocab::{Mode, Sandbox};

impl Host {
    /// The process's one WASI runtime for serving, started on first use.
    pub async fn wasi(&self) -> std::io::Result<Arc<WasiRuntime>> {
        let pool = PoolSize {
            instances: u32::try_from(self.registry.max_sessions()).unwrap_or(u32::MAX),
            max_memory_bytes: self.max_guest_memory,
        };
        self.runtime(&self.wasi, pool).await
    }

    /// The runtime packing on first use runs its steps in: a few instances, each with the memory the bytecode and
    /// snapshot steps need (`catwalk pack`'s own), which a serving pool's guests (64 MiB by default) do not get.
    async fn packing(&self) -> std::io::Result<Arc<WasiRuntime>> {
        let pool = PoolSize {
            instances: 4,
            max_memory_bytes: crate::pack::COMPILE_MEMORY,
        };
        self.runtime(&self.packing, pool).await
    }

    async fn runtime(
        &self,
        cell: &tokio::sync::OnceCell<Arc<WasiRuntime>>,
        pool: PoolSize,
    ) -> std::io::Result<Arc<WasiRuntime>> {
        cell.get_or_try_init(|| async {
            let cache_dir = self.state_dir.join("wasm");
            tokio::task::spawn_blocking(move || WasiRuntime::new(cache_dir, pool))
                .await
                .map_err(std::io::Error::other)?
                .map_err(std::io::Error::other)
        })
        .await
        .cloned()
    }

    /// Builds a tenant's server and its front end: fetches and compiles its module, or prepares its package.
    pub async fn build<F: Front>(&self, spec: &TenantSpec) -> Result<Arc<App<F>>, String> {
        let oauth = match &spec.auth {
            Some(auth) => Some(self.tenant_auth(&spec.id, auth).await?),
            None => None,
        };
        let launcher = self.launcher(spec).await?;
        let access = Access {
            tokens: spec.tokens.clone(),
            oauth,
        };
        let terms = Terms {
            max_sessions: spec.limits.max_sessions,
            request_timeout: spec.limits.request_timeout,
            max_inflight: Some(spec.limits.max_inflight.unwrap_or(self.max_inflight)),
            offer: spec.offer.clone(),
            rates: super::rates::Rates::new(&spec.limits),
            audit_arguments: spec.audit_arguments,
        };
        Ok(self.app(&spec.id, launcher, access, terms))
    }

    /// A tenant's server: its module, its package packed to WASI, or its package or command as processes.
    async fn launcher(&self, spec: &TenantSpec) -> Result<Launcher, String> {
        if let TenantServer::Package(package) = &spec.server
            && matches!(spec.sandbox, Sandbox::Wasi | Sandbox::WasiOrNpx)
            && self.catalog.resolve(package).is_none()
        {
            match self.packed_tenant(spec, package).await {
                Ok(launcher) => return Ok(launcher),
                Err(e) if spec.sandbox == Sandbox::WasiOrNpx && spec.secrets.is_empty() => {
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
            (TenantServer::Package(_) | TenantServer::Command(_), None)
                if !spec.secrets.is_empty() =>
            {
                return Err(
                    "secrets: secrets bound to hosts are kept from the server only in the sandbox, and this \
                     package has no WASI build here (give sandbox = \"wasi\" to pack it): an npx process would \
                     hold the value itself"
                        .into(),
                );
            }
            (TenantServer::Package(_) | TenantServer::Command(_), None) => {
                let dirs = self
                    .tenant_dirs(&spec.id)
                    .map_err(|e| format!("state dir: {e}"))?;
                let confined = self.confinement(spec, &dirs).await?;
                let mut env: Vec<(OsString, OsString)> =
                    spec.env.iter().map(|(k, v)| (k.into(), v.into())).collect();
                if let Some(cap) = confined.as_ref().and_then(|c| c.server.heap_cap_mib) {
                    let flag = format!("--max-old-space-size={cap}");
                    match env.iter_mut().find(|(k, _)| k == "NODE_OPTIONS") {
                        Some((_, options)) => {
                            options.push(" ");
                            options.push(flag);
                        }
                        None => env.push(("NODE_OPTIONS".into(), flag.into())),
                    }
                }
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
                    confine: confined.as_ref().map(|c| c.server.clone()),
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
                        confined.as_ref().map(|c| c.install.clone()),
                        self.supply(&spec.env, spec.packages.as_ref())?,
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
        supply: crate::packages::Supply,
    ) -> Result<Launcher, String> {
        let packer = crate::pack::Packer::new(
            &self.state_dir,
            self.packing().await.map_err(|e| e.to_string())?,
        )
        .map_err(|e| e.to_string())?;
        let request = crate::pack::PackRequest {
            spec: package.to_owned(),
            args: args.to_vec(),
            policy: base.clone(),
            refresh: false,
            supply,
        };
        let started = std::time::Instant::now();
        let (artifact, cached) = packer.pack(&request).await.map_err(|e| e.to_string())?;
        let policy = artifact.policy(&base, args);
        let program = artifact.program_path(&policy);
        tracing::info!(
            %tenant,
            %package,
            version = %artifact.manifest.version,
            artifact = %artifact.manifest.sha256,
            cached,
            // What it starts from: `started.wasm`, `snapshot.wasm` (pack/snapshot.rs), or `runtime.wasm`.
            from = %program
                .file_name()
                .map(|name| name.to_string_lossy())
                .unwrap_or_default(),
            took = ?started.elapsed(),
            "serving the package packed to WASI"
        );
        let wasm = tokio::fs::read(&program)
            .await
            .map_err(|e| format!("reading the packed runtime: {e}"))?;
        let server = self
            .wasi_server(tenant, package.to_owned(), wasm, policy)
            .await
            .map_err(|e| e.to_string())?;
        Ok(Launcher::Wasi(server))
    }

    /// What tenant `spec`'s guests may do: its env, grants and limits.
    async fn tenant_policy(&self, spec: &TenantSpec) -> Result<GuestPolicy, String> {
        let memory = spec.limits.memory.unwrap_or(self.guest.max_memory_bytes);
        if memory > self.max_guest_memory {
            return Err(format!(
                "limits.memory: more than this machine allows a guest ({} MiB, --memory)",
                self.max_guest_memory >> 20
            ));
        }
        let egress = self
            .tenant_egress(&spec.id, &spec.egress, &spec.secrets)
            .await
            .map_err(|e| format!("egress: {e}"))?;
        Ok(GuestPolicy {
            env: spec.env.clone(),
            dirs: spec.dirs.clone(),
            network: spec.network.clone(),
            egress,
            max_memory_bytes: memory,
            cpu_budget: spec.limits.cpu_budget.unwrap_or(self.guest.cpu_budget),
            ..self.guest.clone()
        })
    }

    /// Tenant `spec`'s package, packed to WASI, with the tenant's env, grants and limits.
    async fn packed_tenant(&self, spec: &TenantSpec, package: &str) -> Result<Launcher, String> {
        let base = self.tenant_policy(spec).await?;
        let supply = self.supply(&spec.env, spec.packages.as_ref())?;
        self.pack_launcher(&spec.id, package, &spec.args, base, supply)
            .await
    }

    /// A WASI server for tenant `spec` from `module`, with the tenant's env, grants and limits.
    async fn wasm_launcher(
        &self,
        spec: &TenantSpec,
        module: &ModuleSource,
        name: String,
    ) -> Result<Launcher, String> {
        let policy = self.tenant_policy(spec).await?;
        let wasm = source::load(module, &self.state_dir.join("modules"), self.http())
            .await
            .map_err(|e| format!("wasm: {e}"))?;
        let server = self
            .wasi_server(&spec.id, name, wasm, policy)
            .await
            .map_err(|e| format!("wasm: {e}"))?;
        Ok(Launcher::Wasi(server))
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
}
