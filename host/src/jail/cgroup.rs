//! Memory, CPU and processes per tenant, by control groups: cgroup v2 where catwalk can have a subtree of its
//! own, else the v1 `memory`, `pids` and `cpu` hierarchies (hybrid hosts), else nothing (and the start-up log
//! and `/readyz` say so).
//!
//! v2: catwalk enables the controllers on its own cgroup; where that cgroup is not the root and holds catwalk,
//! catwalk first moves itself into a leaf of it (`supervisor`, weighted above tenants) as the kernel asks. It
//! refuses to when other processes share its cgroup: that subtree is not its to delegate. Tenants' cgroups
//! are `catwalk-<pid>/tenant-<id>` below, one per tenant: `memory.max` with `memory.oom.group` (the kernel
//! kills that tenant's processes together, and only them), `pids.max`, `cpu.max` (every core but one unless the
//! tenant says).
//! v1: the same below catwalk's own cgroup in each hierarchy, with `memory.limit_in_bytes`, `pids.max` and
//! `cpu.cfs_quota_us`. A child joins by writing its pid to each `cgroup.procs` before it execs.

use std::path::{Path, PathBuf};

/// What a tenant's processes may take together.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Resources {
    /// Bytes of memory, page cache included; `None`: as much as catwalk's own cgroup has.
    pub memory: Option<u64>,
    /// Cores' worth of CPU time; `None`: every core but one ([`default_cpu`]).
    pub cpu: Option<f64>,
    /// Processes and threads.
    pub pids: u64,
}

/// A tenant's CPU when it sets none: every core but one, at least one. A tenant that spins cannot take the whole
/// machine: the rest of it answers at its usual latency (measured in `bench/RESULTS.md`, "A spinning
/// neighbour"); beyond its cap, tenants share by equal weights.
pub fn default_cpu() -> f64 {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    cores.saturating_sub(1).max(1) as f64
}

/// The controllers catwalk needs.
const CONTROLLERS: [&str; 3] = ["memory", "pids", "cpu"];
const ROOT: &str = "/sys/fs/cgroup";
/// The CFS period `cpu` quotas are given in, in microseconds.
const PERIOD_US: u64 = 100_000;

/// How this machine's tenants' resources are bounded.
#[derive(Debug)]
pub enum Cgroups {
    /// cgroup v2: tenants' cgroups go below this one.
    V2(PathBuf),
    /// cgroup v1: below these, one per controller (memory, pids, cpu).
    V1([PathBuf; 3]),
    /// Not available, and why.
    Unavailable(String),
}

impl Cgroups {
    /// Finds what this machine offers, and makes catwalk's subtree. Run once, before any child starts.
    pub fn detect() -> Self {
        let own = match std::fs::read_to_string("/proc/self/cgroup") {
            Ok(own) => own,
            Err(e) => return Self::Unavailable(format!("/proc/self/cgroup: {e}")),
        };
        let base = format!("catwalk-{}", std::process::id());
        let result = if Path::new(ROOT).join("cgroup.controllers").exists() {
            v2(&own, &base).map(Self::V2)
        } else if Path::new(ROOT).join("memory/cgroup.procs").exists() {
            v1(&own, &base).map(Self::V1)
        } else {
            Err(format!("no cgroup filesystem at {ROOT}"))
        };
        result.unwrap_or_else(Self::Unavailable)
    }

    /// `"cgroup v2 (<dir>)"`, `"cgroup v1 (<dir>)"` or `"none: <why>"`.
    pub fn describe(&self) -> String {
        match self {
            Self::V2(dir) => format!("cgroup v2 ({})", dir.display()),
            Self::V1([memory, ..]) => format!("cgroup v1 ({})", memory.display()),
            Self::Unavailable(why) => format!("none: {why}"),
        }
    }

    pub fn available(&self) -> bool {
        !matches!(self, Self::Unavailable(_))
    }

    /// A cgroup for tenant `id`'s children, with `resources`. Each is new (`tenant-<id>-<n>`): a tenant
    /// replaced by the admin API has its new children counted apart from the old ones still stopping.
    pub fn tenant(&self, id: &str, resources: &Resources) -> std::io::Result<Option<TenantCgroup>> {
        static MADE: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let n = MADE.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let name = format!("tenant-{}-{n}", sanitise(id));
        let (dirs, version) = match self {
            Self::Unavailable(_) => return Ok(None),
            Self::V2(base) => (vec![base.join(&name)], 2),
            Self::V1(bases) => (bases.iter().map(|b| b.join(&name)).collect(), 1),
        };
        for dir in &dirs {
            std::fs::create_dir_all(dir)?;
        }
        let group = TenantCgroup { dirs, version };
        group.apply(resources)?;
        Ok(Some(group))
    }
}

/// One tenant's cgroup (a directory per hierarchy on v1). Removed when dropped, once its processes are gone.
#[derive(Debug)]
pub struct TenantCgroup {
    dirs: Vec<PathBuf>,
    version: u8,
}

impl TenantCgroup {
    fn apply(&self, resources: &Resources) -> std::io::Result<()> {
        let write = |dir: &Path, file: &str, value: String| {
            std::fs::write(dir.join(file), value)
                .map_err(|e| std::io::Error::other(format!("{}: {e}", dir.join(file).display())))
        };
        let cores = resources.cpu.unwrap_or_else(default_cpu);
        let quota = ((cores * PERIOD_US as f64) as u64).max(1000);
        if self.version == 2 {
            let dir = &self.dirs[0];
            let memory = resources.memory.map_or("max".into(), |m| m.to_string());
            write(dir, "memory.max", memory)?;
            // Swap would let a tenant past its cap at the machine's expense.
            let _ = write(dir, "memory.swap.max", "0".into());
            write(dir, "memory.oom.group", "1".into())?;
            write(dir, "pids.max", resources.pids.to_string())?;
            write(dir, "cpu.max", format!("{quota} {PERIOD_US}"))?;
        } else {
            let [memory, pids, cpu] = [&self.dirs[0], &self.dirs[1], &self.dirs[2]];
            let limit = resources.memory.map_or("-1".into(), |m| m.to_string());
            write(memory, "memory.limit_in_bytes", limit)?;
            let _ = write(memory, "memory.swappiness", "0".into());
            write(pids, "pids.max", resources.pids.to_string())?;
            write(cpu, "cpu.cfs_period_us", PERIOD_US.to_string())?;
            write(cpu, "cpu.cfs_quota_us", quota.to_string())?;
        }
        Ok(())
    }

    /// The files a child writes its pid to, to join.
    pub fn procs(&self) -> Vec<PathBuf> {
        self.dirs.iter().map(|d| d.join("cgroup.procs")).collect()
    }

    /// How many times the kernel killed one of these processes for the memory cap.
    pub fn oom_kills(&self) -> u64 {
        let file = match self.version {
            2 => "memory.events",
            _ => "memory.oom_control",
        };
        std::fs::read_to_string(self.dirs[0].join(file))
            .ok()
            .and_then(|text| {
                text.lines()
                    .find_map(|l| l.strip_prefix("oom_kill ")?.trim().parse().ok())
            })
            .unwrap_or(0)
    }
}

impl Drop for TenantCgroup {
    fn drop(&mut self) {
        for dir in &self.dirs {
            let _ = std::fs::remove_dir(dir);
        }
    }
}

/// A tenant id as a directory name.
fn sanitise(id: &str) -> String {
    id.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// catwalk's path in hierarchy `controller` (`""` for v2) from `/proc/self/cgroup`.
fn own_path<'a>(own: &'a str, controller: &str) -> Option<&'a str> {
    own.lines().find_map(|line| {
        let mut parts = line.splitn(3, ':');
        let (_, controllers, path) = (parts.next()?, parts.next()?, parts.next()?);
        let matches = match controller {
            "" => controllers.is_empty(),
            c => controllers.split(',').any(|x| x == c),
        };
        matches.then_some(path)
    })
}

fn v2(own: &str, base: &str) -> Result<PathBuf, String> {
    let path = own_path(own, "").ok_or("no cgroup v2 entry in /proc/self/cgroup")?;
    let own = Path::new(ROOT).join(path.trim_start_matches('/'));
    let read = |p: &Path| std::fs::read_to_string(p).map_err(|e| format!("{}: {e}", p.display()));
    let offered = read(&own.join("cgroup.controllers"))?;
    let missing: Vec<_> = CONTROLLERS
        .iter()
        .filter(|c| !offered.split_whitespace().any(|o| o == **c))
        .collect();
    if !missing.is_empty() {
        return Err(format!(
            "{} does not offer the {missing:?} controllers (not delegated)",
            own.display()
        ));
    }
    let enable = CONTROLLERS.map(|c| format!("+{c}")).join(" ");
    if std::fs::write(own.join("cgroup.subtree_control"), &enable).is_err() {
        // A cgroup with processes in it may not hand controllers down: catwalk moves into a leaf, if it is
        // alone.
        let me = std::process::id().to_string();
        let procs = read(&own.join("cgroup.procs"))?;
        if let Some(other) = procs.lines().find(|p| p.trim() != me) {
            return Err(format!(
                "{} holds other processes (pid {other}) as well as catwalk: give catwalk a cgroup of its own \
                 (systemd: Delegate=yes) or run it as the container's init",
                own.display()
            ));
        }
        let supervisor = own.join("supervisor");
        std::fs::create_dir_all(&supervisor)
            .map_err(|e| format!("{}: {e}", supervisor.display()))?;
        std::fs::write(supervisor.join("cgroup.procs"), &me)
            .map_err(|e| format!("moving catwalk to {}: {e}", supervisor.display()))?;
        std::fs::write(own.join("cgroup.subtree_control"), &enable)
            .map_err(|e| format!("{}: {e}", own.join("cgroup.subtree_control").display()))?;
        let _ = std::fs::write(supervisor.join("cpu.weight"), "10000");
    }
    clear_stale(&own);
    let base = own.join(base);
    std::fs::create_dir_all(&base).map_err(|e| format!("{}: {e}", base.display()))?;
    std::fs::write(base.join("cgroup.subtree_control"), &enable)
        .map_err(|e| format!("{}: {e}", base.join("cgroup.subtree_control").display()))?;
    Ok(base)
}

fn v1(own: &str, base: &str) -> Result<[PathBuf; 3], String> {
    let mut made = Vec::new();
    for controller in CONTROLLERS {
        let root = Path::new(ROOT).join(controller);
        if !root.join("cgroup.procs").exists() {
            return Err(format!(
                "no cgroup v1 {controller} hierarchy at {}",
                root.display()
            ));
        }
        let path = own_path(own, controller).unwrap_or("/");
        let parent = root.join(path.trim_start_matches('/'));
        clear_stale(&parent);
        let dir = parent.join(base);
        std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        made.push(dir);
    }
    Ok(made.try_into().expect("three controllers"))
}

/// Removes the subtrees of catwalks that are gone (`catwalk-<pid>` with no such process).
fn clear_stale(parent: &Path) {
    let Ok(entries) = std::fs::read_dir(parent) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(pid) = name.to_str().and_then(|n| n.strip_prefix("catwalk-")) else {
            continue;
        };
        if Path::new("/proc").join(pid).exists() {
            continue;
        }
        if let Ok(tenants) = std::fs::read_dir(entry.path()) {
            for tenant in tenants.flatten() {
                if tenant.path().is_dir() {
                    let _ = std::fs::remove_dir(tenant.path());
                }
            }
        }
        let _ = std::fs::remove_dir(entry.path());
    }
}

#[cfg(test)]
mod tests {
    use super::{own_path, sanitise};

    #[test]
    fn own_paths_are_read_per_hierarchy() {
        let hybrid = "9:name=systemd:/\n4:memory:/process_api/14a5\n2:cpu,cpuacct:/x\n0::/\n";
        assert_eq!(own_path(hybrid, "memory"), Some("/process_api/14a5"));
        assert_eq!(own_path(hybrid, "cpu"), Some("/x"));
        assert_eq!(own_path(hybrid, ""), Some("/"));
        assert_eq!(own_path(hybrid, "pids"), None);
        assert_eq!(
            own_path("0::/system.slice/catwalk.service\n", ""),
            Some("/system.slice/catwalk.service")
        );
    }

    #[test]
    fn tenant_ids_make_plain_names() {
        assert_eq!(sanitise("a/../b c"), "a____b_c");
    }
}
