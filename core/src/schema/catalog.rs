//! The catalog: which npm packages have a published WASI build. With one configured (`--catalog`), a tenant
//! that names a package listed there is served by the WASI build, sandboxed, instead of by `npx`; a package
//! not listed falls back to `npx` (unless the tenant asks for `sandbox = "wasi"`, which then fails).
//!
//! A catalog is a TOML file, local or at an `https://` URL:
//!
//! ```toml
//! [[package]]
//! name = "@modelcontextprotocol/server-everything"
//! version = "2025.9.25"                 # optional: without it, the entry serves any version asked for
//! wasm = { url = "https://builds.example.com/everything-2025.9.25.wasm", sha256 = "<64 hex digits>" }
//!
//! [[package]]
//! name = "my-server"
//! wasm = { path = "builds/my-server.wasm", sha256 = "<64 hex digits>" }   # relative to the catalog file
//! ```
//!
//! Every build is pinned by its SHA-256 and fetched and cached like any tenant's module. A package asked for as
//! `name@version` takes the entry with that exact version, else an entry without a version; a package asked
//! for as `name` (or `name@latest`) takes the first entry of that name.

use std::path::Path;

use serde::Deserialize;

use super::tenants::{ModuleDef, ModuleSource, TenantError, module_source};

/// The largest catalog catwalk reads.
pub const MAX_CATALOG_BYTES: usize = 16 << 20;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CatalogFile {
    #[serde(default)]
    package: Vec<EntryDef>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct EntryDef {
    name: String,
    version: Option<String>,
    wasm: ModuleDef,
}

#[derive(Debug, Clone)]
struct Entry {
    name: String,
    version: Option<String>,
    module: ModuleSource,
}

/// A catalog, read and validated.
#[derive(Debug, Clone, Default)]
pub struct Catalog {
    entries: Vec<Entry>,
}

/// Why a catalog cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum CatalogError {
    #[error("cannot read {0}: {1}")]
    Read(String, String),
    #[error("{0}: {1}")]
    Invalid(String, String),
}

impl Catalog {
    /// Parses a catalog's text; relative paths are taken from `base` (none for a catalog fetched by URL).
    pub fn parse(text: &str, base: Option<&Path>) -> Result<Self, String> {
        let file: CatalogFile = toml::from_str(text).map_err(|e| e.message().to_owned())?;
        let mut entries = Vec::new();
        for def in file.package {
            let name = def.name.trim().to_owned();
            if name.is_empty() {
                return Err("a package without a name".into());
            }
            let fail = |field: &'static str, problem: String| TenantError {
                tenant: name.clone(),
                field,
                problem,
            };
            let module = match module_source(def.wasm, &fail)
                .map_err(|e| format!("package {:?}: {}: {}", e.tenant, e.field, e.problem))?
            {
                ModuleSource::File { sha256: None, .. } => {
                    return Err(format!(
                        "package {name:?}: wasm: a catalog's builds must be pinned by sha256"
                    ));
                }
                ModuleSource::File {
                    path,
                    sha256: Some(sha256),
                } => {
                    let path = match base {
                        _ if path.is_absolute() => path,
                        Some(base) => base.join(path),
                        None => {
                            return Err(format!(
                                "package {name:?}: wasm.path: a catalog fetched by URL lists URLs"
                            ));
                        }
                    };
                    ModuleSource::File {
                        path,
                        sha256: Some(sha256),
                    }
                }
                url => url,
            };
            entries.push(Entry {
                name,
                version: def.version.map(|v| v.trim().to_owned()),
                module,
            });
        }
        Ok(Self { entries })
    }

    /// The WASI build published for `spec` (`name`, `name@version`, `@scope/name@version`), if any.
    pub fn resolve(&self, spec: &str) -> Option<&ModuleSource> {
        let (name, version) = split_spec(spec.trim());
        let named = || self.entries.iter().filter(|e| e.name == name);
        match version {
            None | Some("latest") => named().next(),
            Some(version) => named()
                .find(|e| e.version.as_deref() == Some(version))
                .or_else(|| named().find(|e| e.version.is_none())),
        }
        .map(|e| &e.module)
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

/// `@scope/name@1.2.3` into (`@scope/name`, `1.2.3`); the scope's own `@` is not a version separator.
fn split_spec(spec: &str) -> (&str, Option<&str>) {
    match spec.rfind('@') {
        Some(at) if at > 0 => (&spec[..at], Some(&spec[at + 1..])),
        _ => (spec, None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PIN: &str = "0000000000000000000000000000000000000000000000000000000000000001";

    fn catalog(text: &str) -> Result<Catalog, String> {
        Catalog::parse(text, Some(Path::new("/srv/catalog")))
    }

    #[test]
    fn specs_resolve_by_name_and_version() {
        let c = catalog(&format!(
            "[[package]]\nname = \"@s/srv\"\nversion = \"2.0.0\"\nwasm = {{ path = \"two.wasm\", sha256 = \"{PIN}\" }}\n\
             [[package]]\nname = \"@s/srv\"\nwasm = {{ url = \"https://x.example/any.wasm\", sha256 = \"{PIN}\" }}\n"
        ))
        .unwrap();
        let path = |spec: &str| match c.resolve(spec) {
            Some(ModuleSource::File { path, .. }) => path.display().to_string(),
            Some(ModuleSource::Url { url, .. }) => url.clone(),
            None => "npx".into(),
        };
        assert_eq!(path("@s/srv@2.0.0"), "/srv/catalog/two.wasm");
        assert_eq!(path("@s/srv"), "/srv/catalog/two.wasm");
        assert_eq!(path("@s/srv@latest"), "/srv/catalog/two.wasm");
        assert_eq!(path("@s/srv@1.0.0"), "https://x.example/any.wasm");
        assert_eq!(path("@s/other"), "npx");
        assert_eq!(path("srv"), "npx");
    }

    #[test]
    fn builds_must_be_pinned() {
        let unpinned = catalog("[[package]]\nname = \"a\"\nwasm = \"a.wasm\"\n").unwrap_err();
        assert!(unpinned.contains("pinned by sha256"), "{unpinned}");
        let url =
            catalog("[[package]]\nname = \"a\"\nwasm = { url = \"https://x.example/a.wasm\" }\n")
                .unwrap_err();
        assert!(url.contains("sha256"), "{url}");
        let unknown =
            catalog("[[package]]\nname = \"a\"\nwasm = \"a.wasm\"\nextra = 1\n").unwrap_err();
        assert!(unknown.contains("extra"), "{unknown}");
    }
}
