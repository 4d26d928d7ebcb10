//! npm packages as servers: install once, start many times.
//!
//! `npx -y <pkg>` asks the registry about the package on every start (about a second or two here). catwalk
//! instead installs the package once into its state directory (`npm install --prefix <dir> <spec>`), reads the
//! package's `bin`, and starts every later instance from the installed file. If the install fails (registry
//! down, unusual package), instances fall back to `npx -y <spec>`, which is always correct, just slower.

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
    resolved: OnceCell<ProcessSpec>,
    status: Mutex<Result<String, String>>,
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
            None => process::spawn(&self.spec().await, Tag::named(tag))?,
        };
        self.refill();
        Ok(instance)
    }

    /// Starts spares in the background up to the number wanted.
    pub fn refill(self: &Arc<Self>) {
        self.spares.refill(|| {
            let source = self.clone();
            async move { Ok(process::spawn(&source.spec().await, Tag::default())?) }
        });
    }

    /// An npm package; `base` carries env, limits and the package's own arguments, and runs
    /// `npx -y <spec> <args>` until the install is done.
    pub fn npm(
        mut base: ProcessSpec,
        spec: String,
        state_dir: &Path,
        installer: Option<Arc<crate::confine::Confinement>>,
    ) -> Self {
        let args = std::mem::take(&mut base.args);
        base.program = "npx".into();
        base.args = [OsString::from("-y"), spec.clone().into()]
            .into_iter()
            .chain(args.iter().cloned())
            .collect();
        let install_dir = state_dir.join("npm").join(dir_name(&spec));
        let status = Mutex::new(Err(format!("package {spec} is not installed yet")));
        let package = NpmPackage {
            args,
            spec,
            install_dir,
            installer,
            resolved: OnceCell::new(),
            status,
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

    /// The command for the next instance.
    pub async fn spec(&self) -> ProcessSpec {
        let Some(pkg) = &self.package else {
            return self.base.clone();
        };
        pkg.resolved
            .get_or_init(|| async {
                let started = std::time::Instant::now();
                let mut installer = ProcessSpec {
                    confine: pkg.installer.clone().or_else(|| self.base.confine.clone()),
                    ..self.base.clone()
                };
                installer_env(&mut installer);
                match install(&installer, &pkg.spec, &pkg.install_dir).await {
                    Ok(bin) => {
                        let took = started.elapsed();
                        tracing::info!(package = %pkg.spec, bin = %bin.display(), ?took, "package installed");
                        *lock(&pkg.status) = Ok(format!("package {} installed at {}", pkg.spec, bin.display()));
                        let (program, mut args) = node_command(&bin);
                        args.extend(pkg.args.iter().cloned());
                        ProcessSpec { program, args, ..self.base.clone() }
                    }
                    Err(e) => {
                        tracing::warn!(package = %pkg.spec, "install failed, sessions will use npx -y: {e}");
                        *lock(&pkg.status) = Err(format!("package {} could not be installed: {e}", pkg.spec));
                        self.base.clone()
                    }
                }
            })
            .await
            .clone()
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

/// A directory name for a package spec: readable, and unique per spec.
fn dir_name(spec: &str) -> String {
    let readable: String = spec
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '.' || c == '-' {
                c
            } else {
                '_'
            }
        })
        .take(80)
        .collect();
    // FNV-1a keeps two specs that sanitise alike apart.
    let hash = spec.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
    });
    format!("{readable}-{hash:016x}")
}

#[derive(Debug, thiserror::Error)]
enum InstallError {
    #[error("npm install failed ({0})")]
    Npm(String),
    #[error("{0}")]
    Io(#[from] std::io::Error),
    #[error("the installed package has no usable bin entry: {0}")]
    Bin(String),
}

async fn install(base: &ProcessSpec, spec: &str, dir: &Path) -> Result<PathBuf, InstallError> {
    // A spec pinned to an exact version that is installed already cannot have moved: no npm, no network.
    if let Some((name, version)) = exact_version(spec)
        && installed_version(dir, name).as_deref() == Some(version)
        && let Ok(bin) = bin_path(dir)
    {
        return Ok(bin);
    }
    tokio::fs::create_dir_all(dir).await?;
    if !dir.join("package.json").exists() {
        tokio::fs::write(
            dir.join("package.json"),
            "{\"name\":\"catwalk-install\",\"private\":true}\n",
        )
        .await?;
    }
    // A confined install runs as the tenant's uid: the tree it writes into is the tenant's.
    if let Some(uid) = base.confine.as_ref().and_then(|c| c.args.uid) {
        let parent = dir.parent().unwrap_or(dir);
        for path in [parent, dir, &dir.join("package.json")] {
            std::os::unix::fs::chown(path, Some(uid), Some(uid))?;
        }
    }
    let args: Vec<OsString> = [
        "install",
        // A package from a local folder is copied with its dependencies, not linked to the folder: it runs as
        // it would from the registry, and a confined server need not reach the folder.
        "--install-links",
        "--no-audit",
        "--no-fund",
        "--loglevel=error",
        "--prefix",
    ]
    .into_iter()
    .map(OsString::from)
    .chain([dir.as_os_str().to_owned(), spec.into()])
    .collect();
    let mut cmd = base.command(&"npm".into(), &args);
    cmd.stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    let child = reaper::spawn(&mut cmd)?;
    let pid = child.id();
    let out = child.wait_with_output().await?;
    if let Some(pid) = pid {
        reaper::forget(nix::unistd::Pid::from_raw(pid as i32));
    }
    if !out.status.success() {
        let stderr = String::from_utf8_lossy(&out.stderr);
        let last = stderr
            .lines()
            .rev()
            .find(|l| !l.trim().is_empty())
            .unwrap_or("no output");
        return Err(InstallError::Npm(format!(
            "{}: {}",
            out.status,
            last.chars().take(300).collect::<String>()
        )));
    }
    bin_path(dir).map_err(InstallError::Bin)
}

/// `name@1.2.3` (an exact version, prerelease allowed): the name and the version. A range, a tag or no version
/// is not exact: npm must resolve it.
fn exact_version(spec: &str) -> Option<(&str, &str)> {
    let at = spec.get(1..)?.rfind('@')? + 1;
    let (name, version) = (&spec[..at], &spec[at + 1..]);
    let core = version.split(['-', '+']).next()?;
    let exact = core.split('.').count() == 3
        && core
            .split('.')
            .all(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()));
    exact.then_some((name, version))
}

/// The version of package `name` installed in `dir`, if it is.
fn installed_version(dir: &Path, name: &str) -> Option<String> {
    let manifest =
        std::fs::read_to_string(dir.join("node_modules").join(name).join("package.json")).ok()?;
    let manifest: serde_json::Value = serde_json::from_str(&manifest).ok()?;
    manifest["version"].as_str().map(str::to_owned)
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

#[cfg(test)]
mod tests {
    use super::{dir_name, exact_version};

    #[test]
    fn only_exact_versions_are_pinned() {
        assert_eq!(
            exact_version("@scope/pkg@1.2.3"),
            Some(("@scope/pkg", "1.2.3"))
        );
        assert_eq!(exact_version("pkg@2026.8.31"), Some(("pkg", "2026.8.31")));
        assert_eq!(
            exact_version("pkg@1.0.0-beta.1"),
            Some(("pkg", "1.0.0-beta.1"))
        );
        for moving in [
            "pkg",
            "@scope/pkg",
            "pkg@latest",
            "pkg@^1.2.3",
            "pkg@1.2",
            "pkg@1.x.0",
        ] {
            assert_eq!(exact_version(moving), None, "{moving}");
        }
    }

    #[test]
    fn dir_names_are_safe_and_distinct() {
        let a = dir_name("@scope/pkg@1.0.0");
        let b = dir_name("@scope_pkg@1.0.0");
        assert_ne!(a, b);
        assert!(
            a.chars()
                .all(|c| c.is_ascii_alphanumeric() || "._-".contains(c))
        );
        assert!(dir_name(&"x".repeat(1000)).len() < 100);
    }
}
