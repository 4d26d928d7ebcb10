//! `catwalk pack`: an npm MCP server precompiled to WASI, so the npm ecosystem runs in the sandbox.
//!
//! Packing a spec:
//! 1. installs it with npm, lifecycle scripts disabled, into a scratch dir;
//! 2. finds its bin, as npx would;
//! 3. bundles the bin with esbuild into one ES module against the Node compatibility layer (`js/node/`: the
//!    layer's own modules and maintained npm polyfills; built-ins that cannot work in the sandbox become stubs
//!    that throw a clear error when used, and are reported, as are native addons);
//! 4. compiles the bundle to QuickJS bytecode with the same runtime that will run it (`catwalk-js`, embedded
//!    in this binary), inside the sandbox;
//! 5. takes snapshots of the runtime (`snapshot.rs`): with the bundle's dependencies evaluated, and through the
//!    package's start for the arguments it is packed with, where each touched nothing an instance must have fresh;
//! 6. smoke-tests it: the packed server, under the grants it will be served with and from what it will be
//!    served from, answers `initialize` and `tools/list`;
//! 7. keeps the result as one artifact, named by its content: `<state>/packs/<sha256>/` with the runtime
//!    (`runtime.wasm`), the snapshots (`snapshot.wasm`, `started.wasm`), the package tree with the bundle and its bytecode
//!    (`app/`, mounted read-only at `/app`) and `manifest.json`. Native code is compiled once and cached by
//!    wasmtime's module cache.
//!
//! Packing the same spec again is instant: `<state>/packs/specs/` maps each spec (with the runtime and layer
//! it was packed with) to its artifact.

mod layer;
mod npm;
mod smoke;
mod snapshot;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use tokio::process::Command;

use crate::backend::wasi::{GuestPolicy, WasiRuntime};
use crate::policy::grants::DirGrant;
use layer::TOOLS;
use npm::{installed, last_line, npm_install, run};
pub use snapshot::{SNAPSHOT_FILE, STARTED_FILE, SnapshotInfo};

/// `catwalk-js`, the JavaScript runtime for `wasm32-wasip1`, built into this binary (empty when the build
/// could not make it; `CATWALK_JS_RUNTIME` names a file instead).
const EMBEDDED_RUNTIME: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/catwalk-js.wasm"));

/// Where the package tree is mounted in the guest.
pub const GUEST_APP: &str = "/app";
/// The memory the bytecode step may use (within what the WASI runtime's pool allows).
pub const COMPILE_MEMORY: usize = 512 << 20;
/// The longest an npm install or the esbuild step may take before it is stopped and packing fails.
const STEP_TIMEOUT: Duration = Duration::from_secs(300);
/// How long the smoke test waits for each answer (the first start includes compiling the runtime).
const SMOKE_TIMEOUT: Duration = Duration::from_secs(60);
/// A packed server's snapshot, beside its runtime in the artifact.

#[derive(Debug, thiserror::Error)]
pub enum PackError {
    #[error(
        "this catwalk was built without its JavaScript runtime (building catwalk-js needs Debian's clang, lld, llvm, \
         wasi-libc and libclang-rt-dev-wasm32; `bash scripts/deps.sh` installs them): build again, or set \
         CATWALK_JS_RUNTIME to a catwalk-js.wasm"
    )]
    NoRuntime,
    #[error("installing the pack tools (esbuild and the polyfills) failed: {0}")]
    Tools(String),
    /// Resolving, verifying or installing the package failed (the message names the package and the step).
    #[error("{0}")]
    Package(String),
    #[error("{0}")]
    Bin(String),
    #[error("{package} needs native addons, which cannot run in WASI: {addons}")]
    Addons { package: String, addons: String },
    #[error("bundling {package} failed: {reason}")]
    Bundle { package: String, reason: String },
    #[error("compiling {package} to bytecode failed: {reason}")]
    Bytecode { package: String, reason: String },
    #[error("the packed {package} failed its smoke test: {reason}")]
    Smoke { package: String, reason: String },
    #[error("{what}: {source}")]
    Io {
        what: String,
        source: std::io::Error,
    },
}

fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> PackError {
    let what = what.into();
    move |source| PackError::Io { what, source }
}

/// A built-in module the bundle got a stub for, and the first file that imports it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Stubbed {
    pub name: String,
    pub importer: String,
}

/// What an artifact is and what packing found, kept as `manifest.json` beside it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Manifest {
    pub spec: String,
    pub package: String,
    pub version: String,
    /// The bin, as a path in the guest (`process.argv[1]`).
    pub bin: String,
    /// The artifact's content hash: runtime, bundle, bytecode and the package tree's lockfile.
    pub sha256: String,
    pub runtime_sha256: String,
    pub bundle_bytes: u64,
    pub bytecode_bytes: u64,
    /// Built-ins replaced by stubs (they throw "not available in catwalk's sandbox" when used).
    pub stubbed: Vec<Stubbed>,
    /// Modules required but not installed (optional dependencies): requiring one throws `MODULE_NOT_FOUND`, as
    /// it would under Node.
    #[serde(default)]
    pub missing: Vec<Stubbed>,
    /// Native addons in the tree (packing refuses a bin that imports one statically; one it requires throws
    /// when required).
    pub addons: Vec<String>,
    /// The tools the smoke test listed.
    pub tools: Vec<String>,
    /// Why the smoke test has no list of tools: its `tools/list` needed the network, which did not answer
    /// (`smoke.rs`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unlisted: Option<String>,
    /// What the package proved before it was packed (version, signatures, provenance).
    #[serde(default)]
    pub verified: Option<crate::packages::Verified>,
    /// The snapshot instances start from (`snapshot.wasm`), or why there is none.
    #[serde(default)]
    pub snapshot: Option<SnapshotInfo>,
    /// The snapshot taken through the start (`started.wasm`), or why there is none.
    #[serde(default)]
    pub started: Option<SnapshotInfo>,
}

/// A packed server, ready to serve.
#[derive(Debug, Clone)]
pub struct Artifact {
    pub dir: PathBuf,
    pub manifest: Manifest,
}

impl Artifact {
    pub fn runtime_path(&self) -> PathBuf {
        self.dir.join("runtime.wasm")
    }

    /// The module to serve under `policy`: the first snapshot that serves it (the one taken through the start,
    /// then the other: `snapshot.rs`); else the runtime, which evaluates everything at each start.
    pub fn program_path(&self, policy: &GuestPolicy) -> PathBuf {
        let serves =
            |snapshot: &Option<SnapshotInfo>| snapshot.as_ref().is_some_and(|s| s.serves(policy));
        if serves(&self.manifest.started) {
            self.dir.join(STARTED_FILE)
        } else if serves(&self.manifest.snapshot) {
            self.dir.join(SNAPSHOT_FILE)
        } else {
            self.runtime_path()
        }
    }

    /// `base` (the tenant's env, grants and limits) plus what the packed server needs: its tree read-only at
    /// `/app`, and its bin and `args` as Node would have them in `process.argv`.
    pub fn policy(&self, base: &GuestPolicy, args: &[String]) -> GuestPolicy {
        let mut policy = base.clone();
        policy.dirs.push(DirGrant {
            host: self.dir.join("app"),
            guest: GUEST_APP.into(),
            writable: false,
        });
        policy
            .env
            .extend(launch_env(&self.manifest.bin, args, "main.jsc"));
        policy
    }
}

/// The runtime's own variables: which file to run, and `process.argv`.
fn launch_env(bin: &str, args: &[String], main: &str) -> Vec<(String, String)> {
    let argv: Vec<&str> = ["node", bin]
        .into_iter()
        .chain(args.iter().map(String::as_str))
        .collect();
    vec![
        ("CATWALK_JS_MAIN".into(), format!("{GUEST_APP}/{main}")),
        (
            "CATWALK_JS_ARGV".into(),
            serde_json::to_string(&argv).unwrap_or_default(),
        ),
    ]
}

/// What to pack, and the grants and arguments its smoke test runs with (those it will be served with).
#[derive(Debug, Clone)]
pub struct PackRequest {
    pub spec: String,
    pub args: Vec<String>,
    pub policy: GuestPolicy,
    /// Pack again even when the spec was packed before (a newer version may have been published).
    pub refresh: bool,
    /// What the package must prove, and its registry (`supply.refresh` also resolves its pin again).
    pub supply: crate::packages::Supply,
}

/// Packs npm specs into artifacts under one state dir.
#[derive(Debug, Clone)]
pub struct Packer {
    root: PathBuf,
    runtime: Arc<[u8]>,
    wasi: Arc<WasiRuntime>,
}

fn sha256_hex(parts: &[&[u8]]) -> String {
    let mut hash = Sha256::new();
    for part in parts {
        hash.update((part.len() as u64).to_le_bytes());
        hash.update(part);
    }
    format!("{:x}", hash.finalize())
}

/// For a spec that is a local folder, the hash of its files (paths and contents, in order; `node_modules` and `.git`
/// left out, as npm installs the one and does not pack the other); empty for any other spec.
fn folder_contents_sha(spec: &Path) -> std::io::Result<String> {
    if !spec.is_dir() {
        return Ok(String::new());
    }
    let mut hash = Sha256::new();
    let mut pending = vec![spec.to_path_buf()];
    while let Some(dir) = pending.pop() {
        let mut entries = std::fs::read_dir(&dir)?.collect::<std::io::Result<Vec<_>>>()?;
        entries.sort_by_key(std::fs::DirEntry::file_name);
        for entry in entries {
            let name = entry.file_name();
            if name == "node_modules" || name == ".git" {
                continue;
            }
            let path = entry.path();
            let kind = entry.file_type()?;
            if kind.is_dir() {
                pending.push(path);
            } else if kind.is_file() {
                let relative = path.strip_prefix(spec).unwrap_or(&path);
                let bytes = relative.as_os_str().as_encoded_bytes();
                let contents = std::fs::read(&path)?;
                hash.update((bytes.len() as u64).to_le_bytes());
                hash.update(bytes);
                hash.update((contents.len() as u64).to_le_bytes());
                hash.update(&contents);
            }
        }
    }
    Ok(format!("{:x}", hash.finalize()))
}

impl Packer {
    /// The runtime is the one built into catwalk, or the file `CATWALK_JS_RUNTIME` names.
    pub fn new(state_dir: &Path, wasi: Arc<WasiRuntime>) -> Result<Self, PackError> {
        let runtime: Arc<[u8]> = match std::env::var_os("CATWALK_JS_RUNTIME") {
            Some(path) => std::fs::read(&path)
                .map_err(io(format!(
                    "reading CATWALK_JS_RUNTIME ({})",
                    Path::new(&path).display()
                )))?
                .into(),
            None if EMBEDDED_RUNTIME.is_empty() => return Err(PackError::NoRuntime),
            None => EMBEDDED_RUNTIME.into(),
        };
        // Absolute: the bundle names the bin by its path, and the runtime resolves it in the guest.
        let root = std::path::absolute(state_dir.join("packs"))
            .map_err(io(format!("resolving {}", state_dir.display())))?;
        Ok(Self {
            root,
            runtime,
            wasi,
        })
    }

    /// The artifact for `request.spec`: the one packed before, or a new one. `true` with it: it was cached.
    pub async fn pack(&self, request: &PackRequest) -> Result<(Artifact, bool), PackError> {
        let runtime_sha = sha256_hex(&[&self.runtime]);
        let tools: Vec<&[u8]> = TOOLS.iter().map(|(_, text)| text.as_bytes()).collect();
        let layer_sha = sha256_hex(&tools);
        // A local folder is packed again when its files change; a registry spec stays as packed until refreshed.
        let folder_sha = folder_contents_sha(Path::new(&request.spec))
            .map_err(io(format!("reading {}", request.spec)))?;
        // A stricter policy than the artifact was packed under checks the package again.
        let policy = format!(
            "{:?} {:?} {}",
            request.supply.policy.verify,
            request.supply.policy.from,
            request.supply.registry.url()
        );
        let index = self.root.join("specs").join(sha256_hex(&[
            request.spec.as_bytes(),
            runtime_sha.as_bytes(),
            layer_sha.as_bytes(),
            folder_sha.as_bytes(),
            policy.as_bytes(),
        ]));
        if !request.refresh
            && let Some(artifact) = self.cached(&index)
        {
            return Ok((artifact, true));
        }
        let tools_dir = self.tools(&layer_sha).await?;
        let scratch = self
            .root
            .join(format!("tmp-{}", crate::vocab::random_hex()));
        let built = self.build(request, &tools_dir, &scratch, runtime_sha).await;
        let artifact = match built {
            Ok(artifact) => artifact,
            Err(error) => {
                let _ = tokio::fs::remove_dir_all(&scratch).await;
                return Err(error);
            }
        };
        tokio::fs::create_dir_all(index.parent().unwrap_or(&self.root))
            .await
            .map_err(io("creating the pack index"))?;
        let temp = index.with_extension(crate::vocab::random_hex());
        tokio::fs::write(&temp, &artifact.manifest.sha256)
            .await
            .map_err(io("writing the pack index"))?;
        tokio::fs::rename(&temp, &index)
            .await
            .map_err(io("writing the pack index"))?;
        Ok((artifact, false))
    }

    /// The artifact an index entry names, if it is still there whole.
    fn cached(&self, index: &Path) -> Option<Artifact> {
        let sha = std::fs::read_to_string(index).ok()?;
        let dir = self.root.join(sha.trim());
        let manifest = std::fs::read(dir.join("manifest.json")).ok()?;
        let manifest: Manifest = serde_json::from_slice(&manifest).ok()?;
        (dir.join("runtime.wasm").is_file() && dir.join("app/main.jsc").is_file())
            .then_some(Artifact { dir, manifest })
    }

    /// The tools dir for this layer: the layer's files and, installed once, esbuild and the polyfills. It is
    /// installed aside and renamed into place, so packers that start at once never share a half-made one.
    async fn tools(&self, layer_sha: &str) -> Result<PathBuf, PackError> {
        let dir = self.root.join(format!("tools-{}", &layer_sha[..16]));
        if dir.join(".installed").exists() {
            return Ok(dir);
        }
        let fail = |e: std::io::Error| PackError::Tools(e.to_string());
        let aside = self
            .root
            .join(format!("tmp-tools-{}", crate::vocab::random_hex()));
        tokio::fs::create_dir_all(&aside).await.map_err(fail)?;
        let installed = async {
            for (name, text) in TOOLS {
                tokio::fs::write(aside.join(name), text)
                    .await
                    .map_err(fail)?;
            }
            npm_install(&aside).await.map_err(PackError::Tools)?;
            tokio::fs::write(aside.join(".installed"), b"")
                .await
                .map_err(fail)
        }
        .await;
        if installed.is_ok() && tokio::fs::rename(&aside, &dir).await.is_ok() {
            return Ok(dir);
        }
        let _ = tokio::fs::remove_dir_all(&aside).await;
        installed?;
        // Another packer's install got there first.
        if dir.join(".installed").exists() {
            Ok(dir)
        } else {
            Err(PackError::Tools(format!(
                "{} is incomplete: remove it",
                dir.display()
            )))
        }
    }

    async fn build(
        &self,
        request: &PackRequest,
        tools: &Path,
        scratch: &Path,
        runtime_sha: String,
    ) -> Result<Artifact, PackError> {
        let spec = &request.spec;
        let app = scratch.join("app");
        tokio::fs::create_dir_all(&app)
            .await
            .map_err(io("creating the scratch dir"))?;
        // The spec's pin (its lockfile and what it proved) is kept under `pins/`, for the next packing of it.
        let pins = self.root.join("pins").join(crate::packages::dir_name(spec));
        for name in crate::packages::PIN_FILES {
            let _ = tokio::fs::copy(pins.join(name), app.join(name)).await;
        }
        let install = crate::packages::Install {
            spec,
            dir: &app,
            registry: &request.supply.registry,
            policy: &request.supply.policy,
            refresh: request.refresh || request.supply.refresh,
            // Nothing of the package runs outside the sandbox; a local folder is copied, not linked.
            npm_flags: &["--ignore-scripts", "--install-links"],
        };
        let verified = crate::packages::install(&install, npm::npm)
            .await
            .map_err(PackError::Package)?;
        tokio::fs::create_dir_all(&pins)
            .await
            .map_err(io("keeping the pin"))?;
        for name in crate::packages::PIN_FILES {
            let _ = tokio::fs::copy(app.join(name), pins.join(name)).await;
        }
        let bin = crate::backend::npm::bin_path(&app).map_err(PackError::Bin)?;
        let (package, version) = installed(&app)?;

        // Bundle.
        let bundle = app.join("main.mjs");
        let job = serde_json::json!({ "root": app, "bin": bin, "out": bundle });
        let mut node = Command::new("node");
        node.arg(tools.join("pack.mjs")).arg(job.to_string());
        let out = run(&mut node)
            .await
            .map_err(io("running node for esbuild"))?;
        let report: BundleReport =
            serde_json::from_slice(&out.stdout).map_err(|_| PackError::Bundle {
                package: package.clone(),
                reason: last_line(&out.stderr),
            })?;
        if let Some(reason) = report.error {
            return Err(if report.addons.is_empty() {
                PackError::Bundle { package, reason }
            } else {
                PackError::Addons {
                    package,
                    addons: report.addons.join(", "),
                }
            });
        }
        let bin_guest = format!(
            "{GUEST_APP}/{}",
            bin.strip_prefix(&app).unwrap_or(&bin).display()
        );

        // Bytecode, made by the runtime that will run it, in the sandbox with only the scratch tree granted.
        let mut compile = GuestPolicy {
            max_memory_bytes: COMPILE_MEMORY,
            cpu_budget: Duration::from_secs(60),
            ..GuestPolicy::new()
        };
        compile.dirs.push(DirGrant {
            host: app.clone(),
            guest: GUEST_APP.into(),
            writable: true,
        });
        compile.env = vec![
            ("CATWALK_JS_MAIN".into(), format!("{GUEST_APP}/main.mjs")),
            ("CATWALK_JS_COMPILE".into(), format!("{GUEST_APP}/main.jsc")),
        ];
        let status = self.run_to_exit(&compile).await;
        let bytecode = match (status, tokio::fs::read(app.join("main.jsc")).await) {
            (Ok(()), Ok(bytes)) if !bytes.is_empty() => bytes,
            (Err(reason), _) => return Err(PackError::Bytecode { package, reason }),
            _ => {
                return Err(PackError::Bytecode {
                    package,
                    reason: "the runtime wrote no bytecode".into(),
                });
            }
        };
        let source = tokio::fs::read(&bundle)
            .await
            .map_err(io("reading the bundle"))?;
        let lock = tokio::fs::read(app.join("package-lock.json"))
            .await
            .unwrap_or_default();
        let sha256 = sha256_hex(&[runtime_sha.as_bytes(), &source, &bytecode, &lock]);

        let dir = self.root.join(&sha256);
        let mut manifest = Manifest {
            spec: spec.clone(),
            package: package.clone(),
            version,
            bin: bin_guest,
            sha256: sha256.clone(),
            runtime_sha256: runtime_sha,
            bundle_bytes: source.len() as u64,
            bytecode_bytes: bytecode.len() as u64,
            stubbed: report.stubbed,
            missing: report.missing,
            addons: report.addons,
            tools: Vec::new(),
            unlisted: None,
            verified: Some(verified),
            snapshot: None,
            started: None,
        };
        tokio::fs::write(scratch.join("runtime.wasm"), &self.runtime)
            .await
            .map_err(io("writing the runtime"))?;
        let _ = tokio::fs::remove_file(app.join("catwalk-entry.mjs")).await;

        // The snapshots, taken in the sandbox with the package tree alone granted (nothing of a tenant).
        let (snapshot, started) = self
            .take_snapshots(&app, scratch, &manifest.bin, &request.args)
            .await;
        manifest.snapshot = Some(snapshot);
        manifest.started = started;

        // Smoke test, from the scratch tree, under the grants it will be served with, from what it will be
        // served from.
        let mut trial = Artifact {
            dir: scratch.to_path_buf(),
            manifest: manifest.clone(),
        };
        let served = trial.policy(&request.policy, &request.args);
        let mut smoked = self.smoke_from(&trial, &served).await?;
        if let Err(reason) = &smoked
            && let Some(started) = manifest.started.as_mut()
            && trial.program_path(&served).ends_with(STARTED_FILE)
        {
            // What only the snapshot through the start got wrong (it is larger, say, than the tenant's memory):
            // that snapshot serves no one, and the test is run again from what is served instead.
            started.usable = false;
            started.reason = format!("its smoke test failed: {reason}");
            trial.manifest = manifest.clone();
            smoked = self.smoke_from(&trial, &served).await?;
        }
        // What the server answered may quote its env (a token): neither the error nor the manifest keeps it.
        let redactor = crate::backend::Redactor::new(
            served
                .env
                .iter()
                .filter(|(name, _)| !name.starts_with("CATWALK_JS_"))
                .map(|(_, value)| value.as_str()),
        );
        let listing = smoked.map_err(|reason| PackError::Smoke {
            package: package.clone(),
            reason: if manifest.addons.is_empty() {
                redactor.apply(&reason).into_owned()
            } else {
                format!(
                    "{} (the package tree has native addons, which cannot run in WASI: {})",
                    redactor.apply(&reason),
                    manifest.addons.join(", ")
                )
            },
        })?;
        manifest.tools = listing.tools;
        manifest.unlisted = listing
            .unlisted
            .map(|why| redactor.apply(&why).into_owned());
        tokio::fs::write(
            scratch.join("manifest.json"),
            serde_json::to_vec_pretty(&manifest).unwrap_or_default(),
        )
        .await
        .map_err(io("writing the manifest"))?;
        if dir.join("manifest.json").exists() {
            // The same content was packed before (or by another packer just now): keep that one.
            let _ = tokio::fs::remove_dir_all(scratch).await;
        } else if let Err(e) = tokio::fs::rename(scratch, &dir).await {
            if !dir.join("manifest.json").exists() {
                return Err(io("keeping the artifact")(e));
            }
            let _ = tokio::fs::remove_dir_all(scratch).await;
        }
        Ok(Artifact { dir, manifest })
    }
}

/// What `pack.mjs` printed.
#[derive(Debug, Deserialize)]
struct BundleReport {
    #[serde(default)]
    error: Option<String>,
    #[serde(default, deserialize_with = "stubs")]
    stubbed: Vec<Stubbed>,
    #[serde(default)]
    missing: Vec<Stubbed>,
    #[serde(default)]
    addons: Vec<String>,
}

/// Stubs as `{name, importer}` objects, or as bare names when bundling failed.
fn stubs<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<Stubbed>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Entry {
        Full(Stubbed),
        Name(String),
    }
    Ok(Vec::<Entry>::deserialize(d)?
        .into_iter()
        .map(|e| match e {
            Entry::Full(s) => s,
            Entry::Name(name) => Stubbed {
                name,
                importer: String::new(),
            },
        })
        .collect())
}

#[cfg(test)]
pub(super) mod tests {
    use std::collections::HashMap;

    use super::*;

    pub(super) fn artifact() -> Artifact {
        Artifact {
            dir: PathBuf::from("/state/packs/abc"),
            manifest: Manifest {
                spec: "pkg@1".into(),
                package: "pkg".into(),
                version: "1.0.0".into(),
                bin: "/app/node_modules/pkg/bin.js".into(),
                sha256: "abc".into(),
                runtime_sha256: "def".into(),
                bundle_bytes: 1,
                bytecode_bytes: 1,
                stubbed: Vec::new(),
                missing: Vec::new(),
                addons: Vec::new(),
                tools: Vec::new(),
                unlisted: None,
                verified: None,
                snapshot: None,
                started: None,
            },
        }
    }

    #[test]
    fn a_packed_server_gets_its_tree_read_only_and_argv_as_node_would() {
        let mut base = GuestPolicy::new();
        base.env.push(("TOKEN".into(), "secret".into()));
        let policy = artifact().policy(&base, &["/docs".into()]);
        let app = policy.dirs.last().unwrap();
        assert_eq!(app.host, PathBuf::from("/state/packs/abc/app"));
        assert_eq!(app.guest, "/app");
        assert!(!app.writable);
        let env: HashMap<_, _> = policy.env.iter().cloned().collect();
        assert_eq!(env["TOKEN"], "secret");
        assert_eq!(env["CATWALK_JS_MAIN"], "/app/main.jsc");
        let argv: Vec<String> = serde_json::from_str(&env["CATWALK_JS_ARGV"]).unwrap();
        assert_eq!(argv, ["node", "/app/node_modules/pkg/bin.js", "/docs"]);
    }

    #[test]
    fn the_bundle_report_reads_stubs_with_or_without_their_importers() {
        let done: BundleReport = serde_json::from_str(
            r#"{"stubbed":[{"name":"net","importer":"node_modules/x.js"}],"addons":[],"warnings":0}"#,
        )
        .unwrap();
        assert_eq!(done.stubbed[0].importer, "node_modules/x.js");
        assert!(done.error.is_none());
        let failed: BundleReport = serde_json::from_str(
            r#"{"error":"it imports native addons: a.node","stubbed":["net"],"addons":["a.node"]}"#,
        )
        .unwrap();
        assert_eq!(failed.stubbed[0].name, "net");
        assert_eq!(failed.addons, ["a.node"]);
    }

    #[test]
    fn a_local_folder_is_known_by_its_files_but_not_its_installs() {
        let dir = std::env::temp_dir().join(format!("catwalk-folder-sha-{}", std::process::id()));
        std::fs::create_dir_all(dir.join("bin")).unwrap();
        std::fs::write(dir.join("package.json"), "{}").unwrap();
        std::fs::write(dir.join("bin/server.js"), "one").unwrap();
        let first = folder_contents_sha(&dir).unwrap();
        assert_eq!(first.len(), 64);
        std::fs::create_dir_all(dir.join("node_modules/x")).unwrap();
        std::fs::write(dir.join("node_modules/x/index.js"), "installed").unwrap();
        assert_eq!(folder_contents_sha(&dir).unwrap(), first);
        std::fs::write(dir.join("bin/server.js"), "two").unwrap();
        assert_ne!(folder_contents_sha(&dir).unwrap(), first);
        assert_eq!(folder_contents_sha(Path::new("zod@4")).unwrap(), "");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn content_hashes_keep_parts_apart() {
        assert_ne!(sha256_hex(&[b"ab", b"c"]), sha256_hex(&[b"a", b"bc"]));
        assert_eq!(sha256_hex(&[b"x"]).len(), 64);
    }
}
