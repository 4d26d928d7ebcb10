//! A packed server's snapshot: catwalk-js pre-initialised at pack time (its `wizer-initialize`: the engine, the
//! Node layer and the package's dependencies evaluated), so instances start from that memory image, shared
//! copy-on-write, rather than evaluating it all again. It is taken in the sandbox with the package tree alone
//! granted: nothing of any tenant is in it.

use std::path::Path;

use serde::{Deserialize, Serialize};

use super::{COMPILE_MEMORY, GUEST_APP, Packer, STEP_TIMEOUT, last_line};
use crate::backend::wasi::GuestPolicy;
use crate::policy::grants::DirGrant;

/// The snapshot's file in an artifact.
pub const SNAPSHOT_FILE: &str = "snapshot.wasm";

/// A packed server's snapshot: the runtime pre-initialised with wasmtime-wizer at pack time, its engine, the
/// Node layer and the package's dependencies evaluated (catwalk-js's `wizer-initialize`).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SnapshotInfo {
    /// Whether instances start from it; if not, `reason` says why.
    pub usable: bool,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub reason: String,
    /// The environment variables its evaluation read (`*`: all of them). A tenant whose env sets one starts
    /// without the snapshot, as the snapshot saw them unset.
    #[serde(default)]
    pub env: Vec<String>,
    pub bytes: u64,
}

impl SnapshotInfo {
    /// Whether instances under `policy` start from it: it is usable, and `policy`'s env (or egress secrets) sets
    /// no variable its evaluation read. catwalk-js's own variables do not count: the snapshot reads them at start.
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
        self.usable && !names.any(read)
    }
}

impl Packer {
    /// The runtime pre-initialised for the package in `app` (written to `dir`'s `snapshot.wasm`), or why there
    /// is none. It is taken in the sandbox with the package tree alone granted, read-only: no env, no network.
    pub(super) async fn take_snapshot(&self, app: &Path, dir: &Path) -> SnapshotInfo {
        let refused = |reason: String| SnapshotInfo {
            usable: false,
            reason,
            env: Vec::new(),
            bytes: 0,
        };
        let mut policy = GuestPolicy {
            max_memory_bytes: COMPILE_MEMORY,
            ..GuestPolicy::new()
        };
        policy.dirs.push(DirGrant {
            host: app.to_path_buf(),
            guest: GUEST_APP.into(),
            writable: false,
        });
        let taken = match self
            .wasi
            .snapshot(&self.runtime, &policy, STEP_TIMEOUT)
            .await
        {
            Ok(taken) => taken,
            Err(e) => return refused(e.to_string()),
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
            return refused(format!(
                "the runtime did not report on it: {}",
                last_line(&taken.stderr)
            ));
        };
        if !report.usable {
            return refused(report.reason);
        }
        if let Err(e) = tokio::fs::write(dir.join(SNAPSHOT_FILE), &taken.wasm).await {
            return refused(format!("writing it: {e}"));
        }
        SnapshotInfo {
            usable: true,
            reason: String::new(),
            env: report.env,
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

    #[test]
    fn a_tenant_whose_env_sets_what_the_snapshot_read_starts_without_it() {
        let mut packed = artifact();
        let snapshot = |usable: bool, env: &[&str]| SnapshotInfo {
            usable,
            reason: String::new(),
            env: env.iter().map(|n| n.to_string()).collect(),
            bytes: 1,
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
}
