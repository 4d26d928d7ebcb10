//! A packed server's snapshots: catwalk-js pre-initialised at pack time, so instances start from that memory image,
//! shared copy-on-write, rather than doing the same work again. Each is taken in the sandbox with the package
//! tree alone granted: nothing of any tenant is in it.
//! - `snapshot.wasm` (catwalk-js's `wizer-initialize`): the engine, the Node layer and the package's
//!   dependencies evaluated. It serves any tenant whose env sets none of the names that evaluation read.
//! - `started.wasm` (`wizer-initialize-started`): the package's own start run too, with the arguments it was
//!   packed with and no env, up to where it waits for its first request. It serves a tenant with exactly those
//!   arguments whose env sets none of the names the start read (a server with a token in its env reads it
//!   there: such a tenant gets `snapshot.wasm`).

use std::path::Path;

use serde::{Deserialize, Serialize};

use super::{COMPILE_MEMORY, GUEST_APP, Packer, STEP_TIMEOUT, last_line, launch_env};
use crate::backend::wasi::GuestPolicy;
use crate::policy::grants::DirGrant;

/// The snapshot's file in an artifact.
pub const SNAPSHOT_FILE: &str = "snapshot.wasm";
/// The snapshot taken through the start, in an artifact.
pub const STARTED_FILE: &str = "started.wasm";
/// The runtime's variable that carries `process.argv` (pack/mod.rs's `launch_env`).
const ARGV: &str = "CATWALK_JS_ARGV";

/// A packed server's snapshot (see the module docs).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SnapshotInfo {
    /// Whether instances start from it; if not, `reason` says why.
    pub usable: bool,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub reason: String,
    /// The environment variables it read (`*`: all of them). A tenant whose env sets one starts without it, as
    /// the snapshot saw them unset.
    #[serde(default)]
    pub env: Vec<String>,
    /// For a snapshot taken through the start: the `process.argv` it ran with (as JSON). It serves no other.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub argv: Option<String>,
    pub bytes: u64,
}

impl SnapshotInfo {
    fn refused(reason: String) -> Self {
        SnapshotInfo {
            usable: false,
            reason,
            env: Vec::new(),
            argv: None,
            bytes: 0,
        }
    }

    /// Whether instances under `policy` start from it: it is usable, it was taken with `policy`'s arguments (if
    /// it holds the start), and `policy`'s env (or egress secrets) sets no variable it read. catwalk-js's own
    /// variables do not count: the instance reads them as it starts.
    pub fn serves(&self, policy: &GuestPolicy) -> bool {
        let secrets = policy
            .egress
            .as_ref()
            .map(|e| e.secrets())
            .unwrap_or_default();
        let mut names = policy
            .env
            .iter()
            .map(|(k, _)| k.as_str())
            .chain(secrets.iter().map(|s| s.name.as_str()))
            .filter(|name| !name.starts_with("CATWALK_JS_"));
        let read = |name: &str| self.env.iter().any(|n| n == name || n == "*");
        let argv = || policy.env.iter().find(|(k, _)| k == ARGV).map(|(_, v)| v);
        self.usable
            && self.argv.as_ref().is_none_or(|taken| argv() == Some(taken))
            && !names.any(read)
    }
}

impl Packer {
    /// The runtime pre-initialised for the package in `app` (written to `dir`'s `snapshot.wasm`), and through
    /// the start of `bin` with `args` (`started.wasm`), or why there is none. Each is taken in the sandbox with
    /// the package tree alone granted, read-only: no tenant's env, no network.
    pub(super) async fn take_snapshots(
        &self,
        app: &Path,
        dir: &Path,
        bin: &str,
        args: &[String],
    ) -> (SnapshotInfo, Option<SnapshotInfo>) {
        let mut policy = GuestPolicy {
            max_memory_bytes: COMPILE_MEMORY,
            ..GuestPolicy::new()
        };
        policy.dirs.push(DirGrant {
            host: app.to_path_buf(),
            guest: GUEST_APP.into(),
            writable: false,
        });
        let evaluated = self
            .take_snapshot("wizer-initialize", &policy, &dir.join(SNAPSHOT_FILE))
            .await;
        if !evaluated.usable {
            return (evaluated, None);
        }
        policy.env = launch_env(bin, args, "main.jsc");
        let mut started = self
            .take_snapshot("wizer-initialize-started", &policy, &dir.join(STARTED_FILE))
            .await;
        started.argv = policy
            .env
            .iter()
            .find(|(k, _)| k == ARGV)
            .map(|(_, v)| v.clone());
        (evaluated, Some(started))
    }

    /// The runtime pre-initialised by its export `init` under `policy`, written to `file`, or why there is none.
    async fn take_snapshot(&self, init: &str, policy: &GuestPolicy, file: &Path) -> SnapshotInfo {
        let taken = match self
            .wasi
            .snapshot(&self.runtime, init, policy, STEP_TIMEOUT)
            .await
        {
            Ok(taken) => taken,
            Err(e) => return SnapshotInfo::refused(e.to_string()),
        };
        #[derive(Deserialize)]
        struct Line {
            #[serde(rename = "catwalk-snapshot")]
            report: Report,
        }
        #[derive(Deserialize)]
        struct Report {
            usable: bool,
            reason: String,
            env: Vec<String>,
        }
        let Some(Line { report }) = taken
            .stdout
            .split(|b| *b == b'\n')
            .find_map(|line| serde_json::from_slice::<Line>(line).ok())
        else {
            return SnapshotInfo::refused(format!(
                "the runtime did not report on it: {}",
                last_line(&taken.stderr)
            ));
        };
        if !report.usable {
            return SnapshotInfo::refused(report.reason);
        }
        if let Err(e) = tokio::fs::write(file, &taken.wasm).await {
            return SnapshotInfo::refused(format!("writing it: {e}"));
        }
        SnapshotInfo {
            usable: true,
            reason: String::new(),
            env: report.env,
            argv: None,
            bytes: taken.wasm.len() as u64,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::*;
    use crate::pack::Artifact;
    use crate::pack::tests::artifact;

    /// A usable snapshot that read `env`, taken through the start with `argv` if given.
    fn taken(env: &[&str], argv: Option<String>) -> SnapshotInfo {
        SnapshotInfo {
            usable: true,
            reason: String::new(),
            env: env.iter().map(|n| n.to_string()).collect(),
            argv,
            bytes: 1,
        }
    }

    #[test]
    fn a_tenant_whose_env_sets_what_the_snapshot_read_starts_without_it() {
        let mut packed = artifact();
        let snapshot = |usable: bool, env: &[&str]| SnapshotInfo {
            usable,
            ..taken(env, None)
        };
        let serves = |packed: &Artifact, names: &[&str]| {
            let mut base = GuestPolicy::new();
            base.env = names.iter().map(|n| (n.to_string(), "v".into())).collect();
            packed.program_path(&packed.policy(&base, &[]))
        };
        let snap = PathBuf::from("/state/packs/abc").join(SNAPSHOT_FILE);
        let runtime = packed.runtime_path();
        assert_eq!(serves(&packed, &[]), runtime, "no snapshot");

        packed.manifest.snapshot = Some(snapshot(true, &["DEBUG"]));
        assert_eq!(serves(&packed, &["TOKEN"]), snap);
        assert_eq!(serves(&packed, &["TOKEN", "DEBUG"]), runtime);

        packed.manifest.snapshot = Some(snapshot(true, &["*"]));
        assert_eq!(
            serves(&packed, &[]),
            snap,
            "catwalk's own names do not count"
        );
        assert_eq!(serves(&packed, &["TOKEN"]), runtime);

        packed.manifest.snapshot = Some(snapshot(false, &[]));
        assert_eq!(serves(&packed, &[]), runtime, "an unusable snapshot");
    }

    #[test]
    fn the_snapshot_through_the_start_serves_only_its_arguments_and_an_env_it_did_not_read() {
        let mut packed = artifact();
        packed.manifest.snapshot = Some(taken(&["DEBUG"], None));
        let evaluated = packed.dir.join(SNAPSHOT_FILE);
        let started = packed.dir.join(STARTED_FILE);
        let argv = |args: &[&str]| {
            let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
            packed.policy(&GuestPolicy::new(), &args).env
        };
        let stdio = argv(&["stdio"])
            .into_iter()
            .find(|(k, _)| k == ARGV)
            .map(|(_, v)| v);
        packed.manifest.started = Some(taken(&["MEMORY_FILE_PATH"], stdio));
        let serves = |packed: &Artifact, args: &[&str], names: &[&str]| {
            let mut base = GuestPolicy::new();
            base.env = names.iter().map(|n| (n.to_string(), "v".into())).collect();
            let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
            packed.program_path(&packed.policy(&base, &args))
        };
        assert_eq!(serves(&packed, &["stdio"], &[]), started);
        assert_eq!(serves(&packed, &["stdio"], &["TOKEN"]), started);
        assert_eq!(
            serves(&packed, &["stdio"], &["MEMORY_FILE_PATH"]),
            evaluated,
            "a name the start read"
        );
        assert_eq!(serves(&packed, &[], &[]), evaluated, "other arguments");
        assert_eq!(serves(&packed, &["stdio", "x"], &[]), evaluated);
        if let Some(started) = packed.manifest.started.as_mut() {
            started.usable = false;
        }
        assert_eq!(serves(&packed, &["stdio"], &[]), evaluated);
    }
}
