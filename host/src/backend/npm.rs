//! npm packages as servers: install once, start many times.
//!
//! `npx -y <pkg>` asks the registry about the package on every start (about a second or two here), and runs
//! whatever version it is given. catwalk instead resolves the spec once to a lockfile, verifies the tree
//! against the registry ([`crate::packages`]), installs it with `npm ci` into its state directory, reads the
//! package's `bin`, and starts every later instance from the installed file. Later starts of catwalk use the
//! pinned lockfile. A package refused by its policy is not run at all; with verification off, an install that
//! fails falls back to `npx -y <spec>`, which is correct, just slower.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex};

use prometheus_client::metrics::gauge::Gauge;
use tokio::sync::OnceCell;
use tokio_util::sync::CancellationToken;

use super::process::{self, ProcessSpec};
use super::spares::Spares;
use super::{Instance, Tag};
use crate::packages::{self, Registry, Supply, Verified};
use crate::policy::packages::{PackagePolicy, Verify};
use crate::reaper;
use crate::vocab::lock;

/// Where the command for a new instance comes from.
#[derive(Debug)]
pub struct CommandSource {
    base: ProcessSpec,
    package: Option<NpmPackage>,
    spares: Spares,
}

#[derive(Debug)]
struct NpmPackage {
    spec: String,
    /// The package's own arguments, after its bin.
    args: Vec<OsString>,
    install_dir: PathBuf,
    /// How `npm install` is confined, where it differs from the server (a network that reaches only the
    /// registry).
    installer: Option<Arc<crate::confine::Confinement>>,
    /// What the package must prove, and where it comes from.
    policy: PackagePolicy,
    registry: Registry,
    refresh: bool,
    resolved: OnceCell<Result<ProcessSpec, String>>,
    status: Mutex<Result<String, String>>,
    verified: Mutex<Option<Verified>>,
}

impl CommandSource {
    /// A fixed command (`catwalk serve -- cmd args`).
    pub fn command(base: ProcessSpec) -> Self {
        Self {
            base,
            package: None,
            spares: Spares::default(),
        }
    }

    /// Keeps `wanted` servers started ahead of need, until `shutdown`.
    pub fn with_spares(mut self, wanted: usize, shutdown: CancellationToken, gauge: Gauge) -> Self {
        self.spares = Spares::new(wanted, shutdown, None, gauge);
        self
    }

    /// An instance for a new session: a spare if one is running, else a fresh start.
    pub async fn launch(self: &Arc<Self>, tag: Arc<str>) -> std::io::Result<Instance> {
        let instance = match self.spares.take(&tag) {
            Some(instance) => instance,
            None => process::spawn(&self.spec().await?, Tag::named(tag))?,
        };
        self.refill();
        Ok(instance)
    }

    /// Starts spares in the background up to the number wanted.
    pub fn refill(self: &Arc<Self>) {
        self.spares.refill(|| {
            let source = self.clone();
            async move { Ok(process::spawn(&source.spec().await?, Tag::default())?) }
        });
    }

    /// An npm package; `base` carries env, limits and the package's own arguments, and runs
    /// `npx -y <spec> <args>` if the install fails with verification off.
    pub fn npm(
        mut base: ProcessSpec,
        spec: String,
        state_dir: &Path,
        installer: Option<Arc<crate::confine::Confinement>>,
        supply: Supply,
    ) -> Self {
        let args = std::mem::take(&mut base.args);
        base.program = "npx".into();
        base.args = [OsString::from("-y"), spec.clone().into()]
            .into_iter()
            .chain(args.iter().cloned())
            .collect();
        let install_dir = state_dir.join("npm").join(packages::dir_name(&spec));
        let status = Mutex::new(Err(format!("package {spec} is not installed yet")));
        let package = NpmPackage {
            args,
            spec,
            install_dir,
            installer,
            policy: supply.policy,
            registry: supply.registry,
            refresh: supply.refresh,
            resolved: OnceCell::new(),
            status,
            verified: Mutex::new(None),
        };
        Self {
            base,
            package: Some(package),
            spares: Spares::default(),
        }
    }

    /// Installs the package if this source is one (idempotent; concurrent callers wait for one install).
    pub async fn prepare(&self) {
        let _ = self.spec().await;
    }

    /// The command for the next instance, or why there is none (its package was refused).
    pub async fn spec(&self) -> std::io::Result<ProcessSpec> {
        let Some(pkg) = &self.package else {
            return Ok(self.base.clone());
        };
        pkg.resolved
            .get_or_init(|| async {
                let started = std::time::Instant::now();
                let mut installer = ProcessSpec {
                    confine: pkg.installer.clone().or_else(|| self.base.confine.clone()),
                    ..self.base.clone()
                };
                installer_env(&mut installer);
                match install(&installer, pkg).await {
                    Ok((bin, verified)) => {
                        let took = started.elapsed();
                        tracing::info!(package = %pkg.spec, version = %verified.version, bin = %bin.display(),
                            verify = %verified.verify, signed = verified.signed, ?took, "package installed");
                        *lock(&pkg.status) = Ok(format!(
                            "package {} installed: {}@{} ({})",
                            pkg.spec,
                            verified.name,
                            verified.version,
                            verified.describe()
                        ));
                        *lock(&pkg.verified) = Some(verified);
                        let (program, mut args) = node_command(&bin);
                        args.extend(pkg.args.iter().cloned());
                        Ok(ProcessSpec { program, args, ..self.base.clone() })
                    }
                    Err(e) if pkg.policy.verify == Verify::Off => {
                        tracing::warn!(package = %pkg.spec, "install failed, sessions will use npx -y: {e}");
                        *lock(&pkg.status) = Err(format!("package {} could not be installed: {e}", pkg.spec));
                        Ok(self.base.clone())
                    }
                    Err(e) => {
                        // npx would run what was not verified: the tenant's sessions are refused instead.
                        tracing::error!(package = %pkg.spec, "refused: {e}");
                        *lock(&pkg.status) = Err(format!("package {} is not served: {e}", pkg.spec));
                        Err(e)
                    }
                }
            })
            .await
            .clone()
            .map_err(std::io::Error::other)
    }

    /// The egress policy its instances' network namespace enforces, if they have one.
    pub fn egress(&self) -> Option<&crate::policy::egress::Egress> {
        self.base.confine.as_ref()?.jail.as_ref()?.policy()
    }

    /// `Ok(what)` when a server can be started from a resolved command.
    pub fn readiness(&self) -> Result<String, String> {
        match &self.package {
            None => Ok(format!("command {}", self.base.program.to_string_lossy())),
            Some(pkg) => lock(&pkg.status).clone(),
        }
    }

    /// What the installed package proved (its version, signatures, provenance), once it is installed.
    pub fn verified(&self) -> Option<Verified> {
        lock(&self.package.as_ref()?.verified).clone()
    }
}

/// The install's env: npm pointed at its namespace's proxy (no other is reachable there), and without the heap
/// cap given to the tenant's servers (npm is catwalk's, and a large tree needs more).
fn installer_env(installer: &mut ProcessSpec) {
    let Some(confine) = installer.confine.clone() else {
        return;
    };
    if let Some(jail) = &confine.jail {
        for (name, value) in jail.npm_proxy_env() {
            installer.env.retain(|(k, _)| k != name);
            installer.env.push((name.into(), value.into()));
        }
    }
    if let Some(cap) = confine.heap_cap_mib {
        let flag = format!("--max-old-space-size={cap}");
        for (name, value) in installer.env.iter_mut() {
            if name == "NODE_OPTIONS"
                && let Some(options) = value.to_str()
            {
                let kept: Vec<&str> = options.split(' ').filter(|o| *o != flag).collect();
                *value = kept.join(" ").into();
            }
        }
    }
}

/// Resolves, verifies and installs the package (see [`packages::install`]), and finds its bin.
async fn install(base: &ProcessSpec, pkg: &NpmPackage) -> Result<(PathBuf, Verified), String> {
    let dir = &pkg.install_dir;
    let uid = base.confine.as_ref().and_then(|c| c.args.uid);
    if let Some(parent) = dir.parent() {
        std::fs::create_dir_all(parent).map_err(|e| format!("{}: {e}", parent.display()))?;
    }
    let npm = |args: Vec<OsString>| async move {
        // A confined install runs as the tenant's uid: the tree it writes into is the tenant's. The pin
        // beside it stays catwalk's: a tenant that changes its lockfile only has it resolved and verified again.
        if let Some(uid) = uid {
            let own = |p: &Path| std::os::unix::fs::chown(p, Some(uid), Some(uid));
            for path in [dir.parent().unwrap_or(dir), dir] {
                own(path).map_err(|e| format!("{}: {e}", path.display()))?;
            }
            for name in ["package.json", "package-lock.json"] {
                let path = dir.join(name);
                if path.exists() {
                    own(&path).map_err(|e| format!("{}: {e}", path.display()))?;
                }
            }
        }
        run_npm(base, &args).await
    };
    let install = packages::Install {
        spec: &pkg.spec,
        dir,
        registry: &pkg.registry,
        policy: &pkg.policy,
        refresh: pkg.refresh,
        // A package from a local folder is copied with its dependencies, not linked to the folder: it runs as
        // it would from the registry, and a confined server need not reach the folder.
        npm_flags: &["--install-links"],
    };
    let verified = packages::install(&install, npm).await?;
    let bin =
        bin_path(dir).map_err(|e| format!("the installed package has no usable bin entry: {e}"))?;
    Ok((bin, verified))
}

/// Runs npm as `base` runs its programs (confined, with its env), for its exit status and last words.
async fn run_npm(base: &ProcessSpec, args: &[OsString]) -> Result<(), String> {
    let mut cmd = base.command(&"npm".into(), args);
    cmd.stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    let child = reaper::spawn(&mut cmd).map_err(|e| format!("npm: {e}"))?;
    let pid = child.id();
    let out = child
        .wait_with_output()
        .await
        .map_err(|e| format!("npm: {e}"))?;
    if let Some(pid) = pid {
        reaper::forget(nix::unistd::Pid::from_raw(pid as i32));
    }
    if out.status.success() {
        return Ok(());
    }
    Err(packages::npm_failure(out.status, &out.stderr))
}

/// The installed package's bin, chosen as npx chooses: the only one, or the one named like the package.
pub(crate) fn bin_path(dir: &Path) -> Result<PathBuf, String> {
    let read = |p: PathBuf| -> Result<serde_json::Value, String> {
        let text = std::fs::read_to_string(&p).map_err(|e| format!("{}: {e}", p.display()))?;
        serde_json::from_str(&text).map_err(|e| format!("{}: {e}", p.display()))
    };
    let top = read(dir.join("package.json"))?;
    let name = top["dependencies"]
        .as_object()
        .and_then(|deps| {
            (deps.len() == 1)
                .then(|| deps.keys().next().cloned())
                .flatten()
        })
        .ok_or("the install did not record exactly one dependency")?;
    let pkg_dir = dir.join("node_modules").join(&name);
    let manifest = read(pkg_dir.join("package.json"))?;
    let short = name.rsplit('/').next().unwrap_or(&name);
    let file = match &manifest["bin"] {
        serde_json::Value::String(file) => file.clone(),
        serde_json::Value::Object(bins) if bins.len() == 1 => bins
            .values()
            .next()
            .and_then(|v| v.as_str())
            .unwrap_or_default()
            .to_owned(),
        serde_json::Value::Object(bins) => bins
            .get(short)
            .and_then(|v| v.as_str())
            .ok_or_else(|| format!("{name} has several bins and none is named {short}"))?
            .to_owned(),
        _ => return Err(format!("{name} has no bin")),
    };
    let path = pkg_dir.join(file);
    if !path.is_file() {
        return Err(format!("{} does not exist", path.display()));
    }
    // Started through node explicitly: a bin need not be executable or carry a shebang npm rewrote.
    Ok(path)
}

/// The program and arguments that run an installed bin.
pub fn node_command(bin: &Path) -> (OsString, Vec<OsString>) {
    ("node".into(), vec![bin.into()])
}
