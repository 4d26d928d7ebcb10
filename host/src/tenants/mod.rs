//! Tenants: who this catwalk serves. Each has its own server (npm package, command or WASI module), env, grants,
//! limits and tokens; none can see or touch another's. The single-tenant flow (`MCP_PACKAGE`, `--wasm`, a command)
//! is one tenant with the empty id, served on `/mcp` and `/sse`; a tenants file serves each on `/t/{id}/...`.
//!
//! - [`Host`] (here): what every tenant of the process shares: the state dir, the WASI runtime, the defaults a
//!   tenant's limits override, and how tenants' children are confined;
//! - [`App`] (`app.rs`): one tenant as served: its places under the session caps, its turns, its tokens, and
//!   the sessions and instances it opens; [`Tenants`]: every tenant by id;
//! - `launch.rs`: a tenant's server built from its spec (its module, its package packed or as processes);
//! - [`file`]: the tenants file's schema and its validation.
//! - [`source`]: where a WASI module comes from (a file, or a pinned URL, cached by content).
//! - [`catalog`]: which npm packages have a published WASI build, run sandboxed instead of through npx.
//! - [`changes`]: tenants put, removed and placed while catwalk serves, kept by [`store`] in the state dir.
//!
//! Tenants' child processes are confined by [`crate::confine`]: limits, Landlock, and a uid each as root.

mod app;
pub mod catalog;
pub mod changes;
pub mod rates;
pub use catwalk_core::schema::tenants as file;
mod launch;
pub mod source;
pub mod store;

pub use app::{Access, App, Front, Keeping, Refused, Tenants, Terms, token_matches};

use std::collections::HashMap;
use std::ffi::OsString;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::backend::process::ProcessSpec;
use crate::backend::wasi::{GuestPolicy, WasiRuntime};
use crate::confine::{ConfineArgs, Confinement};
use crate::egress::TenantEgress;
use crate::metrics::Metrics;
use crate::policy::egress::Egress;
use crate::policy::limits::{DEFAULT_NOFILE, DEFAULT_NPROC, default_max_inflight};
use crate::policy::secrets::Secret;
use crate::session::{Limits, Registry};
use catalog::Catalog;
use file::TenantSpec;

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
    /// Extra roots tenants' egress trusts (`--egress-ca`), and its limits.
    pub egress_ca: Vec<PathBuf>,
    pub egress_limits: crate::egress::Limits,
    /// The TLS settings of every tenant's egress, made when the first tenant with egress is built.
    tls: tokio::sync::OnceCell<Arc<rustls::ClientConfig>>,
    /// WASI builds of npm packages (empty without `--catalog`).
    pub catalog: Catalog,
    /// What packages must prove before they run, where a tenant does not say (`--verify`).
    pub packages: crate::policy::packages::PackagePolicy,
    /// Resolve packages' specs again instead of using their pins (`--refresh`).
    pub refresh: bool,
    /// Tenants' uids, once given: a tenant keeps its uid for the life of the process.
    uids: Mutex<HashMap<String, u32>>,
    wasi: tokio::sync::OnceCell<Arc<WasiRuntime>>,
    /// Where packing on first use runs its steps (launch.rs): a pool with room for the bytecode step.
    packing: tokio::sync::OnceCell<Arc<WasiRuntime>>,
    /// Built on first use: its TLS set-up is code and memory a catwalk that fetches nothing never needs.
    http: std::sync::OnceLock<reqwest::Client>,
    registry_http: std::sync::OnceLock<Result<reqwest::Client, String>>,
    /// The audit trail (`--audit-log`), if kept.
    pub audit: Option<Arc<crate::audit::AuditLog>>,
    /// The state key (`CATWALK_STATE_KEY`): the built-in authorization server seals its signing keys with it.
    pub state_key: Option<crate::sealed::StateKey>,
    /// Names pinned to addresses for catwalk's own fetches (`--egress-resolve`): issuers' metadata and keys,
    /// clients' metadata documents.
    pub pins: Vec<crate::policy::egress::Pin>,
    /// Each tenant's built-in authorization server, kept while the tenant is (a tenant put again keeps its
    /// clients and grants).
    auth_servers: Mutex<HashMap<String, Arc<crate::oauth::AuthServer>>>,
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
    /// Only with a uid per tenant, and no pids cgroup.
    pub nproc: Option<u64>,
    /// What isolates each tenant's children in network and resources here.
    #[serde(flatten)]
    pub report: crate::jail::IsolationReport,
    #[serde(skip)]
    pub isolation: Arc<crate::jail::Isolation>,
}

/// Tenants' uids are taken from `FIRST_TENANT_UID..FIRST_TENANT_UID + TENANT_UIDS`, far above any system's
/// or person's uid, by a hash of the tenant id (so a tenant finds its files again after a restart).
const FIRST_TENANT_UID: u32 = 1_000_000_000;
const TENANT_UIDS: u32 = 1 << 24;

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
            packages: Default::default(),
            registry_http: Default::default(),
            refresh: false,
            max_inflight: default_max_inflight(),
            spare: 0,
            egress_ca: Vec::new(),
            egress_limits: crate::egress::Limits::default(),
            tls: tokio::sync::OnceCell::new(),
            tenant_env: Vec::new(),
            uids: Mutex::default(),
            wasi: tokio::sync::OnceCell::new(),
            packing: tokio::sync::OnceCell::new(),
            http: std::sync::OnceLock::new(),
            state_key: None,
            audit: None,
            pins: Vec::new(),
            auth_servers: Mutex::default(),
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
            for private in ["modules", "wasm", "npm", "oauth"] {
                let dir = self.state_dir.join(private);
                std::fs::create_dir_all(&dir)?;
                std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700))?;
            }
        }
        let isolation = crate::jail::Isolation::probe(&self.state_dir.join("jail"));
        let report = isolation.report();
        let children = ChildConfinement {
            helper,
            landlock: probe.landlock,
            landlock_abi: probe.abi,
            uid_per_tenant,
            nofile: DEFAULT_NOFILE,
            nproc: (uid_per_tenant && !isolation.cgroups.available()).then_some(DEFAULT_NPROC),
            report,
            isolation: Arc::new(isolation),
        };
        tracing::info!(
            landlock = %children.landlock,
            landlock_abi = children.landlock_abi,
            uid_per_tenant,
            nofile = children.nofile,
            nproc = ?children.nproc,
            network = %children.report.network,
            resources = %children.report.resources,
            "tenants' children are confined"
        );
        if let Err(why) = &children.isolation.network {
            tracing::warn!(
                "tenants' children share the machine's network: {why}; tenants with egress grants or \
                 isolation = \"strict\" are refused"
            );
        }
        if !children.isolation.cgroups.available() {
            tracing::warn!(
                "tenants' children are not bounded in memory and CPU by cgroups ({}); node servers get V8's \
                 heap cap where a tenant sets limits.memory",
                children.report.resources
            );
        }
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
    /// The resident memory of tenant `id`'s processes, where they run as a uid of their own (catwalk as
    /// root): the sum of their `VmRSS`, read from `/proc`. `None` where that cannot tell them apart.
    pub fn tenant_rss(&self, id: &str) -> Option<u64> {
        let uid = *crate::vocab::lock(&self.uids).get(id)?;
        let mut total = 0;
        for entry in std::fs::read_dir("/proc").ok()?.flatten() {
            let pid = entry.file_name();
            if !pid
                .to_str()
                .is_some_and(|n| n.bytes().all(|b| b.is_ascii_digit()))
            {
                continue;
            }
            let Ok(status) = std::fs::read_to_string(entry.path().join("status")) else {
                continue;
            };
            let field = |name: &str| {
                status
                    .lines()
                    .find_map(|l| l.strip_prefix(name))
                    .and_then(|v| v.split_whitespace().next())
                    .and_then(|v| v.parse::<u64>().ok())
            };
            if field("Uid:") == Some(uid.into()) {
                total += field("VmRSS:").unwrap_or(0) * 1024;
            }
        }
        Some(total)
    }

    fn uid_for(&self, id: &str) -> u32 {
        let mut uids = crate::vocab::lock(&self.uids);
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

    /// How tenant `spec`'s children are confined (uid, limits, what Landlock lets them touch, their jail): the
    /// server's, and its package install's, whose network reaches only the npm registry. `None` in the
    /// single-server flow.
    async fn confinement(
        &self,
        spec: &TenantSpec,
        dirs: &TenantDirs,
    ) -> Result<Option<Confined>, String> {
        let Some(children) = self.children.as_ref() else {
            return Ok(None);
        };
        let isolation = &children.isolation;
        if spec.strict_isolation {
            let missing = isolation.missing();
            if !missing.is_empty() {
                return Err(format!(
                    "isolation = \"strict\": this machine cannot isolate the tenant's processes: no {}",
                    missing.join(", no ")
                ));
            }
        }
        if !spec.egress.is_empty()
            && let Err(why) = &isolation.network
        {
            return Err(format!(
                "egress: the tenant's processes cannot have a network namespace here ({why}), so its egress \
                 grants cannot be enforced"
            ));
        }
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
        let pids = spec
            .limits
            .nproc
            .or(children.nproc)
            .unwrap_or(DEFAULT_NPROC);
        let args = ConfineArgs {
            nofile: Some(spec.limits.nofile.unwrap_or(children.nofile)),
            // A pids cgroup counts the tenant's tasks itself; the uid's limit would only double it.
            nproc: uid.filter(|_| !isolation.cgroups.available()).map(|_| pids),
            landlock: children.landlock != "none",
            read,
            write,
            uid,
            ..ConfineArgs::default()
        };
        let resources = crate::jail::Resources {
            memory: spec.limits.memory.map(|m| m as u64),
            cpu: spec.limits.cpu_millicores.map(|m| f64::from(m) / 1000.0),
            pids,
        };
        let heap_cap_mib = spec
            .limits
            .memory
            .filter(|_| !isolation.cgroups.available())
            .map(|m| (m as u64 >> 20).max(16));
        let jail = |policy: &crate::policy::egress::Egress| {
            let watch = crate::jail::Watch {
                metrics: Some(self.metrics.tenant(&spec.id)),
                audit: self
                    .audit
                    .as_ref()
                    .map(|log| crate::audit::TenantAudit::new(log.clone(), &spec.id, None)),
            };
            isolation
                .jail(&spec.id, policy, &resources, watch)
                .map(Arc::new)
                .map_err(|e| format!("isolation: {e}"))
        };
        let confinement = |jail| {
            Arc::new(Confinement {
                helper: children.helper.clone(),
                args: args.clone(),
                jail: Some(jail),
                memory_cap_mib: spec.limits.memory.map(|m| m as u64 >> 20),
                heap_cap_mib,
            })
        };
        let server = confinement(jail(&spec.egress)?);
        // A command installs nothing: its server's confinement stands for the install's.
        let install = match (&isolation.network, &spec.server) {
            (Ok(()), file::TenantServer::Package(_)) => {
                let registry = self.npm_registry(spec).await.unwrap_or_else(|e| {
                    tracing::warn!(tenant = %spec.id, "its package cannot be installed: {e}");
                    Egress::default()
                });
                confinement(jail(&registry)?)
            }
            _ => server.clone(),
        };
        Ok(Some(Confined { server, install }))
    }

    /// The npm registry, as the one grant of a tenant's package install: the tenant's `npm_config_registry`,
    /// or catwalk's, or npm's own. Its name is resolved now and pinned: the registry is the operator's choice,
    /// like catwalk's own fetches, so its address is not held to the blocked ranges (a private mirror may be
    /// on `10.0.0.0/8`).
    async fn npm_registry(&self, spec: &TenantSpec) -> Result<Egress, String> {
        let configured = self.supply(&spec.env, None)?.registry.url().to_owned();
        let url = url::Url::parse(&configured)
            .map_err(|e| format!("npm_config_registry is not a URL ({e})"))?;
        let host = url.host_str().ok_or("npm_config_registry has no host")?;
        let port = url.port_or_known_default().unwrap_or(443);
        let grant =
            crate::policy::egress::Grant::parse(&format!("{}://{host}:{port}", url.scheme()))
                .map_err(|e| format!("npm_config_registry: {e}"))?;
        let address = tokio::net::lookup_host((host, port))
            .await
            .ok()
            .and_then(|mut found| found.next())
            .ok_or_else(|| format!("the npm registry's host {host} does not resolve"))?;
        let pins = match host.parse::<std::net::IpAddr>() {
            Ok(_) => Vec::new(),
            Err(_) => vec![crate::policy::egress::Pin {
                name: host.to_ascii_lowercase(),
                port,
                to: address,
            }],
        };
        Ok(Egress {
            grants: vec![grant],
            pins,
        })
    }

    /// How a package is to be had: the tenant's policy (or the machine's), and the registry its env names (or
    /// catwalk's, or npm's own).
    pub fn supply(
        &self,
        env: &[(String, String)],
        policy: Option<&crate::policy::packages::PackagePolicy>,
    ) -> Result<crate::packages::Supply, String> {
        let own: Vec<(&str, &str)> = self
            .tenant_env
            .iter()
            .filter_map(|(k, v)| Some((k.to_str()?, v.to_str()?)))
            .collect();
        let url = crate::packages::registry_url(
            env.iter().map(|(k, v)| (k.as_str(), v.as_str())).chain(own),
        );
        Ok(crate::packages::Supply {
            policy: policy.unwrap_or(&self.packages).clone(),
            registry: crate::packages::Registry::new(&url, self.registry_http()?)?,
            refresh: self.refresh,
        })
    }

    /// The client npm registries are read with (see [`crate::packages::registry::client`]), made once.
    fn registry_http(&self) -> Result<reqwest::Client, String> {
        self.registry_http
            .get_or_init(crate::packages::registry::client)
            .clone()
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
        self.catalog = catalog::load(location, self.http())
            .await
            .map_err(|e| std::io::Error::other(format!("--catalog: {e}")))?;
        tracing::info!(
            packages = self.catalog.len(),
            "catalog of WASI builds loaded"
        );
        Ok(())
    }

    /// Tenant `id`'s way out for its sandboxed server: `None` when it has no egress grants and no secrets.
    pub async fn tenant_egress(
        &self,
        id: &str,
        egress: &Egress,
        secrets: &[Secret],
    ) -> Result<Option<Arc<TenantEgress>>, String> {
        if egress.is_empty() && secrets.is_empty() {
            return Ok(None);
        }
        let tls = self.tls().await?;
        Ok(Some(TenantEgress::new(
            id,
            egress.clone(),
            secrets.to_vec(),
            self.egress_limits,
            tls,
            self.metrics.tenant(id),
            self.audit
                .as_ref()
                .map(|log| crate::audit::TenantAudit::new(log.clone(), id, None)),
        )))
    }

    /// How tenant `id`'s clients sign in with OAuth, ready to check their tokens.
    pub async fn tenant_auth(
        &self,
        id: &str,
        spec: &crate::oauth::AuthSpec,
    ) -> Result<crate::oauth::TenantAuth, String> {
        use crate::oauth::{AuthServer, AuthSpec, Fetcher, TenantAuth, Verifier};
        let fetcher = Fetcher {
            pins: self.pins.clone(),
            tls: self.tls().await?,
            metrics: self.metrics.tenant(id),
        };
        Ok(match spec {
            AuthSpec::Builtin { scopes } => {
                let Some(key) = &self.state_key else {
                    return Err(format!(
                        "auth: the built-in authorization server keeps its signing key sealed, and {} is not set",
                        crate::sealed::KEY_VAR
                    ));
                };
                let existing = crate::vocab::lock(&self.auth_servers).get(id).cloned();
                let server = match existing {
                    Some(server) => server,
                    None => {
                        let server = Arc::new(
                            AuthServer::open(&self.state_dir, id, key, fetcher)
                                .map_err(|e| format!("auth: {e}"))?,
                        );
                        crate::vocab::lock(&self.auth_servers)
                            .entry(id.to_owned())
                            .or_insert(server)
                            .clone()
                    }
                };
                TenantAuth::Builtin {
                    server,
                    scopes: scopes.clone(),
                }
            }
            AuthSpec::Issuer {
                issuer,
                audience,
                scopes,
                introspection,
            } => TenantAuth::Issuer(Arc::new(Verifier::new(
                issuer.clone(),
                audience.clone(),
                scopes.clone(),
                introspection.clone(),
                fetcher,
            ))),
        })
    }

    /// Forgets tenant `id`'s built-in authorization server: its key, clients and grants (the tenant is gone).
    pub fn forget_auth(&self, id: &str) {
        crate::vocab::lock(&self.auth_servers).remove(id);
        crate::oauth::AuthServer::forget(&self.state_dir, id);
    }

    async fn tls(&self) -> Result<Arc<rustls::ClientConfig>, String> {
        Ok(self
            .tls
            .get_or_try_init(|| async {
                crate::egress::tls_config(&self.egress_ca).map_err(|e| format!("--egress-ca: {e}"))
            })
            .await?
            .clone())
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

/// A tenant's children's confinement: its server's, and its package install's.
struct Confined {
    server: Arc<Confinement>,
    install: Arc<Confinement>,
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
