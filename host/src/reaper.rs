//! Zombie reaping for a catwalk that is PID 1 (in a container) or a subreaper.
//!
//! tokio waits for the children it spawned by pid; orphans re-parented to catwalk are nobody's, so on every
//! SIGCHLD catwalk reaps the zombies among its children that it did not spawn. Spawning holds the same lock as
//! the scan, so a fresh child is always known before it can be mistaken for an orphan.

use std::collections::HashSet;
use std::sync::Mutex;

use nix::unistd::Pid;
use tokio::process::{Child, Command};

static SPAWNED: Mutex<Option<HashSet<i32>>> = Mutex::new(None);

/// Spawns and remembers the child.
pub fn spawn(cmd: &mut Command) -> std::io::Result<Child> {
    let mut spawned = crate::vocab::lock(&SPAWNED);
    let child = cmd.spawn()?;
    if let Some(id) = child.id() {
        spawned.get_or_insert_with(HashSet::new).insert(id as i32);
    }
    Ok(child)
}

/// Forgets a child tokio has waited for.
pub fn forget(pid: Pid) {
    if let Some(set) = crate::vocab::lock(&SPAWNED).as_mut() {
        set.remove(&pid.as_raw());
    }
}

/// How many spawned children are still running (not yet waited for).
pub fn running() -> usize {
    SPAWNED
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .as_ref()
        .map_or(0, HashSet::len)
}

/// Becomes a subreaper and starts reaping orphans. Call once, inside the runtime.
pub fn start() {
    if let Err(e) = nix::sys::prctl::set_child_subreaper(true) {
        tracing::warn!("could not become a child subreaper: {e}");
    }
    let Ok(mut sigchld) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::child())
    else {
        tracing::warn!("no SIGCHLD stream: orphaned processes will not be reaped");
        return;
    };
    tokio::spawn(async move {
        while sigchld.recv().await.is_some() {
            reap_orphans();
        }
    });
}

fn reap_orphans() {
    use nix::sys::wait::{WaitPidFlag, waitpid};
    let me = nix::unistd::getpid();
    let spawned = crate::vocab::lock(&SPAWNED);
    for (pid, ppid, _, state) in proc_table() {
        let ours = spawned.as_ref().is_some_and(|s| s.contains(&pid.as_raw()));
        if ppid == me && state == 'Z' && !ours {
            let _ = waitpid(pid, Some(WaitPidFlag::WNOHANG));
        }
    }
}

/// `(pid, ppid, pgid, state)` of every process, from `/proc/<pid>/stat`.
pub fn proc_table() -> Vec<(Pid, Pid, Pid, char)> {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.filter_map(|entry| {
        let name = entry.ok()?.file_name();
        let pid: i32 = name.to_str()?.parse().ok()?;
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
        // The command name may contain spaces and parentheses: the fields start after the last ')'.
        let mut fields = stat[stat.rfind(')')? + 1..].split_whitespace();
        let state = fields.next()?.chars().next()?;
        let ppid: i32 = fields.next()?.parse().ok()?;
        let pgid: i32 = fields.next()?.parse().ok()?;
        Some((
            Pid::from_raw(pid),
            Pid::from_raw(ppid),
            Pid::from_raw(pgid),
            state,
        ))
    })
    .collect()
}
