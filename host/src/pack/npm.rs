//! npm, run for packing: installs with lifecycle scripts off, the installed package's name and version, and
//! a command's output within the step timeout.

use std::collections::HashMap;
use std::ffi::OsString;
use std::path::{Path, PathBuf};

use tokio::process::Command;

use super::{PackError, STEP_TIMEOUT, io};

/// The installed package's name and version.
pub(super) fn installed(app: &Path) -> Result<(String, String), PackError> {
    let read = |path: PathBuf| -> Result<serde_json::Value, PackError> {
        let text = std::fs::read(&path).map_err(io(format!("reading {}", path.display())))?;
        serde_json::from_slice(&text)
            .map_err(|e| PackError::Bin(format!("{}: {e}", path.display())))
    };
    let top = read(app.join("package.json"))?;
    let deps: HashMap<String, serde_json::Value> =
        serde_json::from_value(top["dependencies"].clone()).unwrap_or_default();
    let name = deps
        .keys()
        .next()
        .cloned()
        .ok_or_else(|| PackError::Bin("the install recorded no package".into()))?;
    let manifest = read(app.join("node_modules").join(&name).join("package.json"))?;
    let version = manifest["version"].as_str().unwrap_or("").to_owned();
    Ok((name, version))
}

/// `npm install` of the pack tools in `dir` (their package.json), with lifecycle scripts disabled.
pub(super) async fn npm_install(dir: &Path) -> Result<(), String> {
    let args = [
        "install",
        "--ignore-scripts",
        "--no-audit",
        "--no-fund",
        "--loglevel=error",
        "--prefix",
    ];
    npm(args
        .iter()
        .map(Into::into)
        .chain([dir.as_os_str().to_owned()])
        .collect())
    .await
}

/// Runs npm with `args` (catwalk's own, unconfined: packing runs nothing of the package), for its exit status
/// and, when it fails, its own words.
pub(super) async fn npm(args: Vec<OsString>) -> Result<(), String> {
    let mut command = Command::new("npm");
    command.args(args).stdin(std::process::Stdio::null());
    let out = run(&mut command).await.map_err(|e| format!("npm: {e}"))?;
    match out.status.success() {
        true => Ok(()),
        false => Err(crate::packages::npm_failure(out.status, &out.stderr)),
    }
}

/// Runs a command to its end for its output, for at most [`STEP_TIMEOUT`]. Spawned through catwalk's reaper,
/// which otherwise collects the exit status first when this runs inside `catwalk serve`.
pub(super) async fn run(command: &mut Command) -> std::io::Result<std::process::Output> {
    use crate::reaper;
    command
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true);
    let child = reaper::spawn(command)?;
    let pid = child.id();
    // Past the limit the child is dropped, which kills it (`kill_on_drop`).
    let out = tokio::time::timeout(STEP_TIMEOUT, child.wait_with_output())
        .await
        .unwrap_or_else(|_| {
            Err(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                format!("stopped after {} s", STEP_TIMEOUT.as_secs()),
            ))
        });
    if let Some(pid) = pid {
        reaper::forget(nix::unistd::Pid::from_raw(pid as i32));
    }
    out
}

pub(super) fn last_line(text: &[u8]) -> String {
    String::from_utf8_lossy(text)
        .lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .unwrap_or("no output")
        .chars()
        .take(300)
        .collect()
}
