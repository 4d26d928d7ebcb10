//! npm packages: what catwalk runs is what was meant. A package spec is resolved once, by npm, to a lockfile
//! (every package of its tree at an exact version, with its integrity hash); the tree is verified against
//! the registry before anything of it runs; the lockfile is kept, and every later install is `npm ci` from
//! it, so later starts run the same bytes even if the registry moves. A refresh, or another spec, resolves
//! again, deliberately.
//!
//! Verification ([`crate::policy::packages`] says what is required):
//! - **Signatures**, as `npm audit signatures` checks them: every package of the tree from the registry
//!   carries the registry's ECDSA signature over `name@version:integrity`, by a key the registry publishes
//!   at `/-/npm/v1/keys` (a key that has expired is good only for versions published before it did). The
//!   lockfile's integrity must be the one signed; `npm ci` then refuses a tarball whose bytes do not match it.
//! - **Provenance**: a version whose registry entry names attestations has its SLSA provenance verified with
//!   Sigstore ([`sigstore`]): Fulcio's certificate, Rekor's entry, the DSSE signature, and the subject (this
//!   package, this tarball's SHA-512). The source repository its certificate names is shown in `/readyz`.
//!
//! Packages from a local folder are the operator's own files: they are not verified (their dependencies
//! from the registry are), and not pinned (the folder is read again at each install).

pub mod registry;
mod sigstore;

use std::ffi::OsString;
use std::future::Future;
use std::path::{Path, PathBuf};

use futures_util::StreamExt;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::policy::packages::{PackagePolicy, Verify};
pub use registry::Registry;
pub use sigstore::Provenance;

/// Registry documents fetched at once while verifying a tree.
const FETCHES: usize = 8;

/// What was installed, and what it proved.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Verified {
    pub name: String,
    pub version: String,
    pub integrity: String,
    /// The policy it was checked under.
    pub verify: String,
    /// `from`, where the policy names repositories.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub from: Vec<String>,
    /// Packages in its tree (itself included), those with a verified registry signature, and those with a
    /// verified provenance attestation.
    pub packages: usize,
    pub signed: usize,
    pub attested: usize,
    /// The package's own provenance, where it has one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub provenance: Option<ProvenanceSeen>,
    /// When the spec was resolved to this version (RFC 3339).
    pub pinned: String,
}

impl Verified {
    /// A line for `/readyz` and `catwalk pack`: what was checked, and the source repository where provenance
    /// names one.
    pub fn describe(&self) -> String {
        match (&self.provenance, self.verify.as_str()) {
            (_, "off") => "not verified: verify = \"off\"".into(),
            (Some(p), _) => format!(
                "{} of {} packages signed by the registry; provenance from {}",
                self.signed, self.packages, p.repository
            ),
            (None, _) => format!(
                "{} of {} packages signed by the registry; no provenance",
                self.signed, self.packages
            ),
        }
    }
}

/// [`Provenance`], as kept in the pin.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProvenanceSeen {
    pub repository: String,
    pub signer: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub commit: Option<String>,
}

/// The package a lockfile was resolved for, and its tree's registry packages.
struct Tree {
    name: String,
    version: String,
    integrity: String,
    /// `(name, version, integrity)` of every package of the tree from the registry.
    from_registry: Vec<(String, String, String)>,
    local: bool,
}

/// Reads the tree of an npm lockfile (v2 or v3) resolved for one dependency.
fn tree(lock: &Value, registry: &Registry) -> Result<Tree, String> {
    let packages = lock["packages"]
        .as_object()
        .ok_or("the lockfile lists no packages (npm 7 or later writes them)")?;
    let top = packages
        .get("")
        .and_then(|root| root["dependencies"].as_object())
        .filter(|deps| deps.len() == 1)
        .and_then(|deps| deps.keys().next().cloned())
        .ok_or("the lockfile was not resolved for exactly one package")?;
    let mut tree = Tree {
        name: top.clone(),
        version: String::new(),
        integrity: String::new(),
        from_registry: Vec::new(),
        local: false,
    };
    for (path, entry) in packages {
        if path.is_empty() || entry["link"] == true || entry["inBundle"] == true {
            continue;
        }
        // `node_modules/a/node_modules/@s/b` is `@s/b`, unless the entry names the real package (an alias).
        let name = entry["name"]
            .as_str()
            .map(str::to_owned)
            .unwrap_or_else(|| {
                path.rsplit_once("node_modules/")
                    .map_or(path.as_str(), |(_, name)| name)
                    .to_owned()
            });
        let version = entry["version"].as_str().unwrap_or_default().to_owned();
        let resolved = entry["resolved"].as_str().unwrap_or_default();
        let integrity = entry["integrity"].as_str().unwrap_or_default().to_owned();
        let is_top = path == &format!("node_modules/{top}");
        // npm leaves `resolved` out for its own registry with `omit-lockfile-registry-resolved`.
        if resolved.starts_with("file:") || (resolved.is_empty() && integrity.is_empty()) {
            tree.local |= is_top;
            continue;
        }
        if !resolved.is_empty() && !registry.serves(resolved) {
            return Err(format!(
                "{name}@{version} comes from {resolved}, not from the registry {}: nothing signs it",
                registry.url()
            ));
        }
        if integrity.is_empty() {
            return Err(format!(
                "{name}@{version} has no integrity hash in the lockfile"
            ));
        }
        if is_top {
            tree.version = version.clone();
            tree.integrity = integrity.clone();
        }
        tree.from_registry.push((name, version, integrity));
    }
    Ok(tree)
}

/// The SHA-512 of an SRI integrity string (`sha512-<base64>`, perhaps among others).
fn sha512(integrity: &str) -> Option<Vec<u8>> {
    use base64::Engine;
    integrity
        .split_whitespace()
        .find_map(|h| h.strip_prefix("sha512-"))
        .and_then(|b64| base64::engine::general_purpose::STANDARD.decode(b64).ok())
        .filter(|digest| digest.len() == 64)
}

/// `pkg:npm/%40scope/name@1.2.3`, as attestations name their subject.
fn purl(name: &str, version: &str) -> String {
    format!("pkg:npm/{}@{version}", name.replacen('@', "%40", 1))
}

/// One package of the tree checked: its registry signature, and its provenance if it has any.
async fn check(
    registry: &Registry,
    keys: &[registry::Key],
    (name, version, integrity): &(String, String, String),
) -> Result<Option<Provenance>, String> {
    let id = format!("{name}@{version}");
    let mut dist = registry.dist(name, version, false).await?;
    if dist.integrity.as_deref() != Some(integrity.as_str()) {
        return Err(format!(
            "{id}: the lockfile's integrity is not the one the registry publishes"
        ));
    }
    let message = format!("{id}:{integrity}");
    let mut checked = Vec::new();
    for (keyid, signature) in &dist.signatures.clone() {
        let Some(key) = keys.iter().find(|k| &k.keyid == keyid) else {
            checked.push(format!(
                "signed by {keyid}, a key the registry does not publish"
            ));
            continue;
        };
        if !key.scheme.is_empty() && key.scheme != "ecdsa-sha2-nistp256" {
            checked.push(format!(
                "signed with {}, which catwalk does not check",
                key.scheme
            ));
            continue;
        }
        if let Some(expires) = &key.expires {
            if dist.published.is_none() {
                dist.published = registry.dist(name, version, true).await?.published;
            }
            let before = match (dist.published.as_deref().map(timestamp), timestamp(expires)) {
                (Some(Some(published)), Some(expires)) => published < expires,
                _ => false,
            };
            if !before {
                checked.push(format!(
                    "signed by {keyid}, which expired before it was published"
                ));
                continue;
            }
        }
        match sigstore::verify_p256(&key.key, message.as_bytes(), signature) {
            Ok(()) => {
                checked.clear();
                break;
            }
            Err(e) => checked.push(format!("{keyid}: {e}")),
        }
    }
    if dist.signatures.is_empty() {
        return Err(format!("{id} carries no registry signature"));
    }
    if !checked.is_empty() {
        return Err(format!(
            "{id}'s registry signature is not valid ({})",
            checked.join("; ")
        ));
    }
    let Some(url) = &dist.attestations else {
        return Ok(None);
    };
    let attestations = registry.attestations(url).await?;
    let Some((_, bundle)) = attestations
        .iter()
        .find(|(kind, _)| kind.starts_with("https://slsa.dev/provenance/"))
    else {
        return Ok(None);
    };
    let digest = sha512(integrity).ok_or_else(|| format!("{id} has no SHA-512 integrity"))?;
    sigstore::verify_provenance(bundle, &digest, &purl(name, version))
        .map(Some)
        .map_err(|e| format!("{id}'s provenance attestation does not verify: {e}"))
}

fn timestamp(text: &str) -> Option<time::OffsetDateTime> {
    time::OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339).ok()
}

fn now() -> String {
    time::OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

/// One package of a tree, checked.
struct Checked {
    name: String,
    version: String,
    provenance: Option<Provenance>,
}

/// Verifies a lockfile's tree under `policy`: refused, with what failed and the package it failed for.
pub async fn verify(
    lock: &Value,
    registry: &Registry,
    policy: &PackagePolicy,
) -> Result<Verified, String> {
    let tree = tree(lock, registry)?;
    let mut verified = Verified {
        name: tree.name.clone(),
        version: tree.version.clone(),
        integrity: tree.integrity.clone(),
        verify: policy.verify.name().to_owned(),
        from: policy.from.clone(),
        packages: tree.from_registry.len() + usize::from(tree.local),
        signed: 0,
        attested: 0,
        provenance: None,
        pinned: now(),
    };
    if policy.verify == Verify::Off {
        return Ok(verified);
    }
    if tree.local && policy.needs_provenance() {
        return Err(format!(
            "{} is a local folder: it has no provenance, and the policy requires it",
            tree.name
        ));
    }
    let keys = registry.keys().await?;
    let checked: Vec<Result<Checked, String>> =
        futures_util::stream::iter(tree.from_registry.clone())
            .map(|package| {
                let keys = &keys;
                async move {
                    let provenance = check(registry, keys, &package).await?;
                    Ok(Checked {
                        name: package.0,
                        version: package.1,
                        provenance,
                    })
                }
            })
            .buffer_unordered(FETCHES)
            .collect()
            .await;
    for result in checked {
        let Checked {
            name,
            version,
            provenance,
        } = result?;
        verified.signed += 1;
        if let Some(provenance) = provenance {
            verified.attested += 1;
            if name == tree.name && version == tree.version {
                verified.provenance = Some(ProvenanceSeen {
                    repository: provenance.repository,
                    signer: provenance.signer,
                    commit: provenance.commit,
                });
            }
        }
    }
    let id = format!("{}@{}", tree.name, tree.version);
    if policy.needs_provenance() {
        let Some(provenance) = &verified.provenance else {
            return Err(format!(
                "{id} has no provenance attestation, and the policy requires one (verify = \"provenance\")"
            ));
        };
        if !policy.accepts_repository(&provenance.repository) {
            return Err(format!(
                "{id} was built from {}, which is not in `from` ({})",
                provenance.repository,
                policy.from.join(", ")
            ));
        }
    }
    Ok(verified)
}

/// How a package is to be had: its policy, its registry, and whether its pin is to be resolved again.
#[derive(Debug, Clone)]
pub struct Supply {
    pub policy: PackagePolicy,
    pub registry: Registry,
    pub refresh: bool,
}

/// How a package is installed: where, from which registry, under which policy.
pub struct Install<'a> {
    pub spec: &'a str,
    /// The install dir, where npm's `package.json` and `package-lock.json` (the pin) are kept.
    pub dir: &'a Path,
    pub registry: &'a Registry,
    pub policy: &'a PackagePolicy,
    /// Resolve the spec again, even if it was pinned.
    pub refresh: bool,
    /// Given to every npm command (`--install-links`, `--ignore-scripts`, ...).
    pub npm_flags: &'a [&'a str],
}

/// The pin beside the lockfile: what was verified, and the lockfile it was verified for.
#[derive(Serialize, Deserialize)]
struct Pin {
    spec: String,
    registry: String,
    /// SHA-256 of the lockfile verified, in hex: a lockfile changed since is resolved and verified again.
    lock_sha256: String,
    verified: Verified,
}

const PIN: &str = "catwalk-pin.json";
const LOCK: &str = "package-lock.json";
/// The files of a pin: npm's manifest and lockfile, and what catwalk verified of them.
pub const PIN_FILES: [&str; 3] = ["package.json", LOCK, PIN];

/// Whether a spec names a local folder (the operator's own files: installed afresh, not pinned).
fn is_local(spec: &str) -> bool {
    spec.starts_with('/') || spec.starts_with('.') || spec.starts_with("file:")
}

fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest;
    sha2::Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The pin in `dir`, if it is for this spec, registry and policy, and its lockfile is the one it verified.
fn pinned(install: &Install<'_>) -> Option<Verified> {
    let pin: Pin = serde_json::from_slice(&std::fs::read(install.dir.join(PIN)).ok()?).ok()?;
    let lock = std::fs::read(install.dir.join(LOCK)).ok()?;
    let policy = install.policy.verify.name();
    (pin.spec == install.spec
        && pin.registry == install.registry.url()
        && pin.lock_sha256 == sha256_hex(&lock)
        && pin.verified.verify == policy
        && pin.verified.from == install.policy.from)
        .then_some(pin.verified)
}

/// Whether `node_modules` holds the pinned version of the package already.
fn installed(dir: &Path, verified: &Verified) -> bool {
    let manifest = dir
        .join("node_modules")
        .join(&verified.name)
        .join("package.json");
    std::fs::read(manifest)
        .ok()
        .and_then(|m| serde_json::from_slice::<Value>(&m).ok())
        .is_some_and(|m| m["version"] == verified.version.as_str())
        && dir.join("node_modules/.package-lock.json").exists()
}

/// Resolves (or reads the pin), verifies, and installs with `npm ci`. `npm` runs npm with the given
/// arguments and says why it failed. Nothing of the package runs before its tree is verified: the resolution
/// reads the registry's metadata only (`--package-lock-only`, scripts off).
pub async fn install<F, Fut>(install: &Install<'_>, npm: F) -> Result<Verified, String>
where
    F: Fn(Vec<OsString>) -> Fut,
    Fut: Future<Output = Result<(), String>>,
{
    let dir = install.dir;
    let args = |command: &[&str]| -> Vec<OsString> {
        command
            .iter()
            .chain(install.npm_flags)
            .chain(&["--no-audit", "--no-fund", "--loglevel=error", "--prefix"])
            .map(OsString::from)
            .chain([dir.as_os_str().to_owned()])
            .collect()
    };
    let local = is_local(install.spec);
    let kept = (!install.refresh && !local)
        .then(|| pinned(install))
        .flatten();
    let verified = match kept {
        Some(verified) => verified,
        None => {
            std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
            for stale in [LOCK, PIN] {
                let _ = std::fs::remove_file(dir.join(stale));
            }
            std::fs::write(
                dir.join("package.json"),
                "{\"name\":\"catwalk-install\",\"private\":true}\n",
            )
            .map_err(|e| format!("{}: {e}", dir.display()))?;
            let mut resolve = args(&["install", "--package-lock-only", "--ignore-scripts"]);
            resolve.push(install.spec.into());
            npm(resolve)
                .await
                .map_err(|e| format!("npm could not resolve {}: {e}", install.spec))?;
            let lock = std::fs::read(dir.join(LOCK))
                .map_err(|e| format!("npm wrote no lockfile for {}: {e}", install.spec))?;
            let tree: Value = serde_json::from_slice(&lock)
                .map_err(|e| format!("npm's lockfile for {} does not parse: {e}", install.spec))?;
            let verified = verify(&tree, install.registry, install.policy)
                .await
                .map_err(|e| format!("{} is refused: {e}", install.spec))?;
            let pin = Pin {
                spec: install.spec.to_owned(),
                registry: install.registry.url().to_owned(),
                lock_sha256: sha256_hex(&lock),
                verified: verified.clone(),
            };
            let pin = serde_json::to_vec_pretty(&pin).expect("a pin serialises");
            crate::sealed::write_durably(dir, PIN, &pin)
                .map_err(|e| format!("{}: {e}", dir.display()))?;
            verified
        }
    };
    if !installed(dir, &verified) || local {
        npm(args(&["ci"])).await.map_err(|e| {
            format!(
                "npm could not install {}@{} from its lockfile: {e}",
                verified.name, verified.version
            )
        })?;
    }
    Ok(verified)
}

/// Why npm failed, in its own words (`npm error 404 Not Found - GET ...`), not its pointer to a log file.
pub fn npm_failure(status: std::process::ExitStatus, stderr: &[u8]) -> String {
    let stderr = String::from_utf8_lossy(stderr);
    let said: Vec<&str> = stderr
        .lines()
        .filter(|l| l.starts_with("npm error") && !l.contains("A complete log of this run"))
        .take(3)
        .collect();
    let words = match said.is_empty() {
        true => stderr
            .lines()
            .rev()
            .find(|l| !l.trim().is_empty())
            .unwrap_or("no output")
            .to_owned(),
        false => said.join("; "),
    };
    format!("{status}: {}", words.chars().take(400).collect::<String>())
}

/// Where a spec's install dir goes under `root`: readable, and unique per spec.
pub fn dir_name(spec: &str) -> String {
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

/// The registry npm uses for an install with this env: `npm_config_registry` (any case), else npm's own.
pub fn registry_url<'a>(env: impl IntoIterator<Item = (&'a str, &'a str)>) -> String {
    env.into_iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("npm_config_registry"))
        .map(|(_, v)| v.to_owned())
        .unwrap_or_else(|| "https://registry.npmjs.org/".to_owned())
}

/// Where pins of packed packages are kept in a state dir.
pub fn pack_pins(state_dir: &Path) -> PathBuf {
    state_dir.join("packs").join("pins")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn registry() -> Registry {
        Registry::new("https://registry.example/", reqwest::Client::new()).unwrap()
    }

    #[test]
    fn a_lockfile_tree_is_read_with_its_registry_packages() {
        let lock = json!({"lockfileVersion": 3, "packages": {
            "": {"dependencies": {"@s/top": "^1.0.0"}},
            "node_modules/@s/top": {"version": "1.2.3", "resolved": "https://registry.example/@s/top/-/top-1.2.3.tgz", "integrity": "sha512-aa"},
            "node_modules/dep": {"version": "2.0.0", "resolved": "https://registry.example/dep/-/dep-2.0.0.tgz", "integrity": "sha512-bb"},
            "node_modules/@s/top/node_modules/alias": {"name": "real", "version": "3.0.0", "resolved": "https://registry.example/real/-/real-3.0.0.tgz", "integrity": "sha512-cc"},
            "node_modules/bundled": {"version": "1.0.0", "inBundle": true},
            "node_modules/linked": {"resolved": "../x", "link": true},
        }});
        let tree = tree(&lock, &registry()).unwrap();
        assert_eq!(
            (tree.name.as_str(), tree.version.as_str()),
            ("@s/top", "1.2.3")
        );
        let mut names: Vec<&str> = tree.from_registry.iter().map(|p| p.0.as_str()).collect();
        names.sort();
        assert_eq!(names, ["@s/top", "dep", "real"]);
        assert!(!tree.local);
    }

    #[test]
    fn a_package_from_elsewhere_or_without_integrity_is_refused() {
        let lock = |resolved: &str, integrity: &str| {
            json!({"packages": {"": {"dependencies": {"top": "1"}},
                "node_modules/top": {"version": "1.0.0", "resolved": resolved, "integrity": integrity}}})
        };
        let e = tree(
            &lock("https://evil.example/top.tgz", "sha512-aa"),
            &registry(),
        )
        .err()
        .unwrap();
        assert!(e.contains("not from the registry"), "{e}");
        let e = tree(
            &lock("https://registry.example/top/-/top-1.0.0.tgz", ""),
            &registry(),
        )
        .err()
        .unwrap();
        assert!(e.contains("no integrity"), "{e}");
        assert!(
            tree(
                &lock("git+ssh://git@github.com/a/b.git", "sha512-aa"),
                &registry()
            )
            .is_err()
        );
    }

    #[test]
    fn subjects_and_digests_are_named_as_attestations_name_them() {
        assert_eq!(purl("@scope/pkg", "1.0.0"), "pkg:npm/%40scope/pkg@1.0.0");
        assert_eq!(purl("pkg", "1.0.0"), "pkg:npm/pkg@1.0.0");
        let digest = sha512("sha1-xx sha512-KCwMX6k20mQyFkNYG2XT3lwK9u1P36wS9YURFd85zCXPrwrSLZCEh7/vMBFNYcJXRiBtGDS+T4/RZZF493zABA==").unwrap();
        assert_eq!(digest[0], 0x28);
        assert!(sha512("sha1-xx").is_none());
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
