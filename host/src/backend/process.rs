//! The process backend: one supervised child speaking newline-delimited JSON-RPC on stdio.
//!
//! Supervision, in order of what can go wrong:
//! - the child runs in its own process group, so signals reach npx *and* the node it starts;
//! - stopping closes stdin, waits a grace period, sends SIGTERM to the group, waits again, then SIGKILL;
//!   descendants that left the group with `setsid` are found through `/proc` before the tree is torn down;
//! - whatever way the child ends, its group is killed afterwards, so nothing is left behind;
//! - catwalk is a child subreaper, and reaps zombies it did not spawn itself, so it can be PID 1.

use std::ffi::OsString;
use std::path::PathBuf;
use std::process::{ExitStatus, Stdio};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use nix::sys::signal::{Signal, kill, killpg};
use nix::unistd::Pid;
use tokio::io::{AsyncWriteExt, BufReader, BufWriter};
use tokio::process::{Child, Command};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::lines::{Line, LineReader};
use super::{Instance, ServerEvent, Tag};
use crate::confine::Confinement;
use crate::reaper::{self, proc_table};

/// Everything needed to start one child. The environment is complete: nothing is inherited.
#[derive(Debug, Clone)]
pub struct ProcessSpec {
    pub program: OsString,
    pub args: Vec<OsString>,
    pub env: Vec<(OsString, OsString)>,
    pub cwd: Option<PathBuf>,
    /// The longest stdout line accepted as a message.
    pub max_message_bytes: usize,
    /// How long to wait after closing stdin, and again after SIGTERM.
    pub stop_grace: Duration,
    /// Limits, Landlock and uid for a tenant's child; `None` starts the command as catwalk's own child.
    pub confine: Option<Arc<Confinement>>,
}

impl ProcessSpec {
    /// A command for `program args` with exactly `env`, confined when the spec says so. Stdio is the
    /// caller's.
    pub fn command(&self, program: &OsString, args: &[OsString]) -> Command {
        let mut cmd = match &self.confine {
            Some(confine) => confine.command(program, args),
            None => {
                let mut cmd = Command::new(program);
                cmd.args(args);
                cmd
            }
        };
        cmd.env_clear().envs(self.env.iter().map(|(k, v)| (k, v)));
        if let Some(dir) = &self.cwd {
            cmd.current_dir(dir);
        }
        cmd
    }
}

/// The longest stderr line logged whole; longer ones are cut.
const STDERR_LINE_CAP: usize = 8 * 1024;

/// Starts the child described by `spec`. `tag` names it in the log (a session id or a shared-server name).
pub fn spawn(spec: &ProcessSpec, tag: Tag) -> std::io::Result<Instance> {
    let mut cmd = spec.command(&spec.program, &spec.args);
    cmd.stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .kill_on_drop(false);
    let oom_before = spec.confine.as_ref().map_or(0, |c| c.oom_kills());
    let mut child = reaper::spawn(&mut cmd)?;
    let pid = Pid::from_raw(child.id().map_or(0, |id| id as i32));
    let (stdin, stdout, stderr) = (child.stdin.take(), child.stdout.take(), child.stderr.take());
    let (Some(stdin), Some(stdout), Some(stderr)) = (stdin, stdout, stderr) else {
        return Err(std::io::Error::other("child stdio was not piped"));
    };

    let (to_server, mut outgoing) = mpsc::channel::<Bytes>(64);
    let (events, from_server) = mpsc::channel::<ServerEvent>(256);
    let stop = CancellationToken::new();

    // stdin: lines from the session, flushed when the queue runs dry; closed when stopping.
    let writer_stop = stop.clone();
    tokio::spawn(async move {
        let mut stdin = BufWriter::new(stdin);
        loop {
            let line = tokio::select! {
                line = outgoing.recv() => line,
                () = writer_stop.cancelled() => None,
            };
            let Some(line) = line else { break };
            // Requests that are ready run first and queue their lines, so that they go in this one write: under
            // load a server reads many messages per wake-up, instead of one write and one wake-up each.
            tokio::task::yield_now().await;
            let mut batch = Some(line);
            while let Some(line) = batch {
                if stdin.write_all(&line).await.is_err() || stdin.write_all(b"\n").await.is_err() {
                    return;
                }
                batch = outgoing.try_recv().ok();
            }
            if stdin.flush().await.is_err() {
                return;
            }
        }
        let _ = stdin.shutdown().await;
    });

    // Variables catwalk sets itself are not secrets; everything else the tenant gave may be.
    let redactor = super::Redactor::new(
        spec.env
            .iter()
            .filter(|(k, _)| {
                !matches!(
                    k.to_str(),
                    Some("PATH" | "HOME" | "TMPDIR" | "npm_config_cache")
                )
            })
            .filter_map(|(_, v)| v.to_str()),
    );
    let stdout_redactor = redactor.clone();

    // stdout: messages to the session; a closed stdout means the server can no longer answer.
    let reader_events = events.clone();
    let reader_stop = stop.clone();
    let reader_tag = tag.clone();
    let max = spec.max_message_bytes;
    let reader = tokio::spawn(async move {
        let mut lines = LineReader::new(BufReader::with_capacity(64 * 1024, stdout), max);
        while let Ok(Some(line)) = lines.next_line().await {
            let event = match line {
                Line::Text(text) if text.iter().all(u8::is_ascii_whitespace) => continue,
                Line::Text(text) if looks_like_json(&text) => ServerEvent::Message(text),
                Line::Text(text) => {
                    tracing::warn!(
                        session = %reader_tag,
                        line = %stdout_redactor.apply(&String::from_utf8_lossy(&text[..text.len().min(200)])),
                        "dropped a non-JSON line the server wrote to stdout"
                    );
                    continue;
                }
                Line::TooLong { len, head, tail } => ServerEvent::Oversized { len, head, tail },
            };
            if reader_events.send(event).await.is_err() {
                break;
            }
        }
        reader_stop.cancel();
    });

    // stderr: to the log, tagged and cut.
    let stderr_tag = tag.clone();
    tokio::spawn(async move {
        let mut lines = LineReader::new(BufReader::new(stderr), STDERR_LINE_CAP);
        while let Ok(Some(line)) = lines.next_line().await {
            match line {
                Line::Text(text) => {
                    tracing::info!(
                        session = %stderr_tag,
                        "server stderr: {}",
                        redactor.apply(&String::from_utf8_lossy(&text))
                    )
                }
                Line::TooLong { len, .. } => {
                    tracing::info!(session = %stderr_tag, "server stderr: [a line of {len} bytes, not logged]")
                }
            }
        }
    });

    let grace = spec.stop_grace;
    let confine = spec.confine.clone();
    let supervisor_tag = tag.clone();
    let supervisor_stop = stop.clone();
    tokio::spawn(async move {
        let status = tokio::select! {
            status = child.wait() => status,
            () = supervisor_stop.cancelled() => stop_child(&mut child, pid, grace).await,
        };
        // Leave nothing behind, however the child ended.
        let _ = killpg(pid, Signal::SIGKILL);
        reaper::forget(pid);
        let _ = tokio::time::timeout(Duration::from_secs(1), reader).await;
        let reason = match status {
            Ok(status) => confine
                .and_then(|c| c.explain(&status, oom_before))
                .unwrap_or_else(|| describe(status)),
            Err(e) => format!("could not be waited for: {e}"),
        };
        tracing::debug!(session = %supervisor_tag, "server process ended: {reason}");
        let _ = events.send(ServerEvent::Exited { reason }).await;
    });

    Ok(Instance {
        to_server,
        from_server,
        stop,
        tag,
        spare: false,
    })
}

/// Closes stdin (the writer does, on cancel), waits, then SIGTERM, waits, then SIGKILL, to the whole tree.
///
/// The tree is read before stdin closes: once the leader exits, descendants that left its process group
/// (`setsid`) are re-parented and can no longer be told apart.
async fn stop_child(child: &mut Child, pid: Pid, grace: Duration) -> std::io::Result<ExitStatus> {
    let tree = descendants(pid);
    let status = match tokio::time::timeout(grace, child.wait()).await {
        Ok(status) => status,
        Err(_) => {
            signal_tree(pid, &tree, Signal::SIGTERM);
            match tokio::time::timeout(grace, child.wait()).await {
                Ok(status) => status,
                Err(_) => {
                    signal_tree(pid, &tree, Signal::SIGKILL);
                    child.wait().await
                }
            }
        }
    };
    signal_tree(pid, &tree, Signal::SIGKILL);
    status
}

fn signal_tree(leader: Pid, tree: &[(Pid, Pid)], signal: Signal) {
    let _ = killpg(leader, signal);
    for &(pid, pgid) in tree {
        if pgid != leader {
            let _ = killpg(pgid, signal);
        }
        let _ = kill(pid, signal);
    }
}

/// Every process below `root` with its process group, read from `/proc`.
fn descendants(root: Pid) -> Vec<(Pid, Pid)> {
    let table = proc_table();
    let mut found = Vec::new();
    let mut frontier = vec![root];
    while let Some(parent) = frontier.pop() {
        for &(pid, ppid, pgid, _) in &table {
            if ppid == parent && !found.iter().any(|&(p, _)| p == pid) {
                found.push((pid, pgid));
                frontier.push(pid);
            }
        }
    }
    found
}

fn looks_like_json(line: &[u8]) -> bool {
    matches!(
        line.iter().find(|b| !b.is_ascii_whitespace()),
        Some(b'{' | b'[')
    )
}

fn describe(status: ExitStatus) -> String {
    use std::os::unix::process::ExitStatusExt;
    match (status.code(), status.signal()) {
        (Some(code), _) => format!("exited with status {code}"),
        (None, Some(signal)) => format!("killed by signal {signal}"),
        _ => "ended".to_owned(),
    }
}
