//! Confinement of tenants' child processes (the npx and command path).
//!
//! A tenant's child is not started directly. catwalk starts itself as `catwalk confine <limits> -- <command>`,
//! and that helper, still in a fresh single-threaded process, narrows what the command may do and then
//! replaces itself with it:
//! 1. its tenant's jail ([`crate::jail`]): the tenant's cgroups (the helper writes its pid to each
//!    `cgroup.procs`), the tenant's network namespace, and a mount namespace of its own in which
//!    `/etc/resolv.conf` names the namespace's resolver and `/etc/hosts` names only localhost (the machine's
//!    may name its private addresses);
//! 2. resource limits: `RLIMIT_NOFILE`, and `RLIMIT_NPROC` when the child gets its own uid (the limit counts
//!    every process of a uid, so it means nothing for a uid shared with catwalk). Never `RLIMIT_AS`: V8
//!    reserves far more address space than it uses;
//! 3. Landlock, where the kernel offers it: reading and executing only below the system's program and library
//!    directories, the few files of `/etc` programs need, `PATH` and the tenant's read grants; writing only
//!    below the tenant's own directory and its write grants; signals and abstract unix sockets scoped to the
//!    child's own domain (ABI 6);
//! 4. when catwalk runs as root, the tenant's own uid and gid, with no supplementary groups;
//! 5. `exec` of the command, with exactly the environment catwalk gave the helper.
//!
//! The helper runs as root until step 4, so it can be anywhere (a cargo target dir under `/root`), and the
//! command it execs is found and opened as the tenant.

use std::ffi::OsString;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;

use clap::Args;
use landlock::{
    ABI, Access, AccessFs, LandlockStatus, RestrictionStatus, Ruleset, RulesetAttr,
    RulesetCreatedAttr, RulesetStatus, Scope, path_beneath_rules,
};
use nix::mount::{MsFlags, mount};
use nix::sched::{CloneFlags, setns, unshare};
use nix::sys::resource::{Resource, getrlimit, setrlimit};
use nix::unistd::{Gid, Uid, setgid, setgroups, setuid};

use crate::jail::Jail;

/// The Landlock ABI whose filesystem rights are asked for; newer kernels enforce it whole, older ones part.
const FS_ABI: ABI = ABI::V5;
/// Signal and abstract-socket scoping came with ABI 6.
const SCOPE_ABI: ABI = ABI::V6;

/// `catwalk confine`: what the helper applies before it execs the command. Internal: catwalk builds it.
#[derive(Debug, Clone, Default, Args)]
pub struct ConfineArgs {
    /// Open files (soft and hard).
    #[arg(long)]
    pub nofile: Option<u64>,
    /// Processes and threads of the uid (soft and hard); only meaningful with `--uid`.
    #[arg(long)]
    pub nproc: Option<u64>,
    /// Turns Landlock on: reads only below `--read`, writes only below `--write`.
    #[arg(long)]
    pub landlock: bool,
    #[arg(long, value_name = "DIR")]
    pub read: Vec<PathBuf>,
    #[arg(long, value_name = "DIR")]
    pub write: Vec<PathBuf>,
    /// Become this uid (and gid) before exec; needs root.
    #[arg(long)]
    pub uid: Option<u32>,
    /// Join this network namespace (a path to it); needs root.
    #[arg(long, value_name = "PATH")]
    pub netns: Option<PathBuf>,
    /// In a mount namespace of its own, see this directory's `resolv.conf` and `hosts` as `/etc`'s; needs
    /// root.
    #[arg(long, value_name = "DIR")]
    pub etc: Option<PathBuf>,
    /// Join the cgroup whose `cgroup.procs` this is (one per hierarchy on cgroup v1).
    #[arg(long, value_name = "FILE")]
    pub cgroup: Vec<PathBuf>,
    /// Restrict an empty process and report what the kernel enforces, as one line of JSON.
    #[arg(long)]
    pub probe: bool,
    /// The command.
    #[arg(last = true)]
    pub command: Vec<OsString>,
}

/// How a tenant's children are confined.
#[derive(Debug, Clone)]
pub struct Confinement {
    /// The catwalk binary that runs `confine`.
    pub helper: PathBuf,
    pub args: ConfineArgs,
    /// The tenant's network namespace and cgroup, where the machine has them.
    pub jail: Option<Arc<Jail>>,
    /// The tenant's memory cap (MiB), for saying why a child was killed.
    pub memory_cap_mib: Option<u64>,
    /// V8's heap cap (MiB) given to node where no memory cgroup caps the tenant.
    pub heap_cap_mib: Option<u64>,
}

impl Confinement {
    /// A command that runs `program args` confined. The caller adds env, stdio and the process group.
    pub fn command(&self, program: &OsString, args: &[OsString]) -> tokio::process::Command {
        let mut cmd = tokio::process::Command::new(&self.helper);
        cmd.arg("confine");
        let a = &self.args;
        if let Some(n) = a.nofile {
            cmd.arg(format!("--nofile={n}"));
        }
        if let Some(n) = a.nproc {
            cmd.arg(format!("--nproc={n}"));
        }
        if let Some(uid) = a.uid {
            cmd.arg(format!("--uid={uid}"));
        }
        if let Some(jail) = &self.jail {
            if let Some((netns, etc)) = jail.network() {
                cmd.arg("--netns").arg(netns).arg("--etc").arg(etc);
            }
            for procs in jail.cgroup().map(|c| c.procs()).unwrap_or_default() {
                cmd.arg("--cgroup").arg(procs);
            }
        }
        if a.landlock {
            cmd.arg("--landlock");
            for dir in &a.read {
                cmd.arg("--read").arg(dir);
            }
            for dir in &a.write {
                cmd.arg("--write").arg(dir);
            }
        }
        cmd.arg("--").arg(program).args(args);
        cmd
    }

    /// How many times the kernel has killed one of the tenant's processes for its memory cap.
    pub fn oom_kills(&self) -> u64 {
        self.jail
            .as_ref()
            .and_then(|j| j.cgroup())
            .map_or(0, |c| c.oom_kills())
    }

    /// Why a child ended, when its tenant's limits ended it: `oom_before` is [`Self::oom_kills`] from before
    /// it started.
    pub fn explain(&self, status: &std::process::ExitStatus, oom_before: u64) -> Option<String> {
        use std::os::unix::process::ExitStatusExt;
        let signal = status.signal();
        if signal.is_some() && self.oom_kills() > oom_before {
            let cap = self
                .memory_cap_mib
                .map_or(String::new(), |cap| format!(", {cap} MiB"));
            return Some(format!(
                "was killed by the kernel: its tenant's processes went over their memory cap (limits.memory{cap})"
            ));
        }
        let aborted = signal == Some(libc::SIGABRT) || status.code() == Some(134);
        match self.heap_cap_mib {
            Some(cap) if aborted => Some(format!(
                "ran out of JavaScript heap under its tenant's memory cap ({cap} MiB, V8's heap cap: this \
                 machine has no memory cgroup)"
            )),
            _ => None,
        }
    }
}

/// What the kernel enforces, found by running the helper once at start-up.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize, PartialEq, Eq)]
pub struct Probe {
    /// `"full"`, `"partial"` or `"none"`.
    pub landlock: String,
    /// The kernel's Landlock ABI, 0 without Landlock.
    pub abi: i32,
}

/// Runs `helper confine --probe`: a real restriction in a throwaway process, so what it reports is what
/// tenants' children get.
pub async fn probe(helper: &Path) -> std::io::Result<Probe> {
    use crate::reaper;
    let mut cmd = tokio::process::Command::new(helper);
    cmd.args(["confine", "--probe"])
        .env_clear()
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    // Spawned through the reaper, which would otherwise take the child's exit for an orphan's.
    let child = reaper::spawn(&mut cmd)?;
    let pid = child.id();
    let out = child.wait_with_output().await;
    if let Some(pid) = pid {
        reaper::forget(nix::unistd::Pid::from_raw(pid as i32));
    }
    let out = out?;
    if !out.status.success() {
        let stderr = String::from_utf8_lossy(&out.stderr);
        return Err(std::io::Error::other(format!(
            "{} confine --probe failed ({}): {}",
            helper.display(),
            out.status,
            stderr.trim()
        )));
    }
    serde_json::from_slice(&out.stdout)
        .map_err(|e| std::io::Error::other(format!("{} confine --probe: {e}", helper.display())))
}

/// The helper: applies `args` to this process and execs the command. Returns only on failure.
pub fn exec(args: ConfineArgs) -> std::io::Error {
    if args.probe {
        let probe = match restrict(&args.read, &args.write) {
            Ok(status) => describe(&status),
            Err(e) => return std::io::Error::other(format!("landlock: {e}")),
        };
        println!(
            "{}",
            serde_json::to_string(&probe).expect("a probe serialises")
        );
        std::process::exit(0);
    }
    let Some((program, rest)) = args.command.split_first() else {
        return std::io::Error::other("no command after --");
    };
    if let Err(e) = enter_jail(&args) {
        return e;
    }
    for (resource, limit) in [
        (Resource::RLIMIT_NOFILE, args.nofile),
        (Resource::RLIMIT_NPROC, args.nproc),
    ] {
        // Never above the hard limit catwalk was given: only root may raise it.
        let Some(n) = limit else { continue };
        let n = getrlimit(resource).map_or(n, |(_, hard)| n.min(hard));
        if let Err(e) = setrlimit(resource, n, n) {
            return std::io::Error::other(format!("{resource:?} {n}: {e}"));
        }
    }
    if args.landlock
        && let Err(e) = restrict(&args.read, &args.write)
    {
        return std::io::Error::other(format!("landlock: {e}"));
    }
    if let Some(uid) = args.uid {
        let steps = setgroups(&[])
            .and_then(|()| setgid(Gid::from_raw(uid)))
            .and_then(|()| setuid(Uid::from_raw(uid)));
        if let Err(e) = steps {
            return std::io::Error::other(format!("cannot become uid {uid}: {e}"));
        }
    }
    std::process::Command::new(program).args(rest).exec()
}

/// Joins the tenant's cgroups, its network namespace, and a mount namespace where `/etc/resolv.conf` and
/// `/etc/hosts` are the jail's.
fn enter_jail(args: &ConfineArgs) -> Result<(), std::io::Error> {
    let fail = |what: String| move |e: nix::Error| std::io::Error::other(format!("{what}: {e}"));
    for procs in &args.cgroup {
        std::fs::write(procs, std::process::id().to_string())
            .map_err(|e| std::io::Error::other(format!("joining {}: {e}", procs.display())))?;
    }
    if let Some(path) = &args.netns {
        let ns = std::fs::File::open(path)
            .map_err(|e| std::io::Error::other(format!("{}: {e}", path.display())))?;
        setns(ns, CloneFlags::CLONE_NEWNET)
            .map_err(fail("joining the network namespace".into()))?;
    }
    if let Some(etc) = &args.etc {
        unshare(CloneFlags::CLONE_NEWNS).map_err(fail("a mount namespace".into()))?;
        // Private first, so that nothing mounted here reaches the machine's mounts.
        mount(
            None::<&str>,
            "/",
            None::<&str>,
            MsFlags::MS_REC | MsFlags::MS_PRIVATE,
            None::<&str>,
        )
        .map_err(fail("making mounts private".into()))?;
        for file in ["resolv.conf", "hosts"] {
            let (from, to) = (etc.join(file), Path::new("/etc").join(file));
            if to.exists() {
                mount(
                    Some(from.as_path()),
                    to.as_path(),
                    None::<&str>,
                    MsFlags::MS_BIND,
                    None::<&str>,
                )
                .map_err(fail(format!(
                    "binding {} over {}",
                    from.display(),
                    to.display()
                )))?;
            }
        }
    }
    Ok(())
}

/// Restricts this process: read and execute below `read`, everything below `write`, scoped signals.
fn restrict(
    read: &[PathBuf],
    write: &[PathBuf],
) -> Result<RestrictionStatus, landlock::RulesetError> {
    Ruleset::default()
        .handle_access(AccessFs::from_all(FS_ABI))?
        .scope(Scope::from_all(SCOPE_ABI))?
        .create()?
        .add_rules(path_beneath_rules(read, AccessFs::from_read(FS_ABI)))?
        .add_rules(path_beneath_rules(write, AccessFs::from_all(FS_ABI)))?
        .restrict_self()
}

fn describe(status: &RestrictionStatus) -> Probe {
    let landlock = match status.ruleset {
        RulesetStatus::FullyEnforced => "full",
        RulesetStatus::PartiallyEnforced => "partial",
        RulesetStatus::NotEnforced => "none",
    };
    let abi = match status.landlock {
        LandlockStatus::Available {
            effective_abi,
            kernel_abi,
        } => kernel_abi.unwrap_or(effective_abi as i32),
        _ => 0,
    };
    Probe {
        landlock: landlock.into(),
        abi,
    }
}

/// What every child may read and execute below: the system's programs and libraries, the parts of `/etc` that
/// programs need to start, resolve names and check certificates (not all of `/etc`, where an operator keeps
/// catwalk's own configuration), and each directory of `path`. Not `/run` either: containers mount secrets there.
pub fn system_read_dirs(path: &std::ffi::OsStr) -> Vec<PathBuf> {
    let mut dirs: Vec<PathBuf> = [
        "/usr",
        "/bin",
        "/sbin",
        "/lib",
        "/lib32",
        "/lib64",
        "/libx32",
        "/opt",
        "/proc",
        "/sys",
        "/dev/urandom",
        "/dev/random",
        "/etc/ld.so.cache",
        "/etc/ld.so.conf",
        "/etc/ld.so.conf.d",
        "/etc/alternatives",
        "/etc/ssl",
        "/etc/ca-certificates",
        "/etc/pki",
        "/etc/resolv.conf",
        "/etc/hosts",
        "/etc/host.conf",
        "/etc/nsswitch.conf",
        "/etc/gai.conf",
        "/etc/services",
        "/etc/protocols",
        "/etc/passwd",
        "/etc/group",
        "/etc/localtime",
        "/etc/timezone",
        "/etc/os-release",
        "/etc/mime.types",
        "/etc/npmrc",
        "/run/systemd/resolve",
    ]
    .into_iter()
    .map(PathBuf::from)
    .collect();
    dirs.extend(std::env::split_paths(path).filter(|p| p.is_absolute()));
    dirs
}

/// Devices every child may write.
pub fn system_write_dirs() -> Vec<PathBuf> {
    ["/dev/null", "/dev/zero", "/dev/full"]
        .into_iter()
        .map(PathBuf::from)
        .collect()
}
