//! The tenants file (`catwalk serve --config tenants.toml`) and the admin API's tenant bodies: one schema, read
//! into [`TenantDef`] and validated into a [`TenantSpec`]. Errors name the tenant and the field, never a value
//! (env values and token hashes are secrets, or close enough).
//!
//! ```toml
//! [[tenant]]
//! id = "acme"                                  # [A-Za-z0-9_-], at most 64
//! package = "@modelcontextprotocol/server-everything"   # or: command = ["node", "server.js"]
//! # or a WASI module: wasm = "/srv/acme.wasm", or pinned: wasm = { url = "https://...", sha256 = "<hex>" }
//! mode = "per-session"                         # npm/command only: or "shared"
//! sandbox = "auto"                             # package only: its WASI build if the catalog lists one, else
//!                                              # npx; "wasi": the WASI build or fail; "npx": always npx
//! env = { GITHUB_TOKEN = "..." }               # the tenant's variables: its server gets these and nothing else
//! dirs = ["/srv/acme/data::/data:rw"]          # WASI: HOST::GUEST[:ro|:rw]; npm/command: HOST[:ro|:rw]
//! network = ["203.0.113.7:443"]               # WASI (wasip2) and catalog builds: TCP to IP:PORT or IP:*
//! egress = ["https://api.github.com"]          # the hosts its HTTP(S) requests may reach (see
//!                                              # `policy::egress`); none: no requests at all. npm/command:
//!                                              # through catwalk's proxy, from a network namespace of its own
//! isolation = "strict"                         # npm/command: refuse to start without a network namespace
//!                                              # and cgroups ("best-effort", the default: what the machine has)
//! verify = "provenance"                       # package only: what it must prove before it runs (see
//! from = ["github.com/acme/*"]                 # `policy::packages`); default: the machine's (`--verify`)
//! egress_resolve = ["api.github.com:443=10.0.0.7:443"]   # a name pinned to an address (allowed as named)
//! secrets.GITHUB_TOKEN = { value = "...", hosts = ["api.github.com"] }   # sandboxed: the server's env holds a
//!                                              # placeholder, swapped for the value in headers to those hosts
//! token_sha256 = ["<hex of SHA-256(token)>"]   # bearer tokens that may use it; none: no token needed
//! auth = { issuer = "builtin", scopes = ["mcp"] }   # OAuth 2.1: catwalk's own authorization server, or an
//!                                              # issuer's URL; see [`AuthDef`]
//! [tenant.limits]
//! memory = "64MiB"                             # WASI linear memory per instance; npm/command: all the
//!                                              # tenant's processes together
//! cpu = 0.5                                    # npm/command: cores' worth for all its processes
//! cpu_budget = "1s"                            # WASI CPU per request
//! max_sessions = 32
//! max_inflight = 4                             # requests in progress at once (default: 2 x cores, >= 4)
//! request_timeout = "5m"
//! nofile = 4096                                # npm/command: open files per child
//! nproc = 4096                                 # npm/command, as root: processes and threads of the tenant's uid
//! ```

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::Deserialize;

use crate::policy::egress::{Egress, Grant, Pin};
use crate::policy::grants::{DirGrant, NetGrant, parse_child_dir, parse_dir, parse_net};
use crate::policy::limits::{LimitsDef, TenantLimits};
use crate::policy::offer::{Offer, PatternsDef};
use crate::policy::packages::{PackagePolicy, Verify};
use crate::policy::secrets::Secret;
use clap::ValueEnum;

use crate::vocab::Mode;
use crate::vocab::Sandbox;

/// The whole file.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TenantsFile {
    #[serde(default)]
    pub tenant: Vec<TenantDef>,
}

/// One tenant, as written.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TenantDef {
    pub id: String,
    pub package: Option<String>,
    /// A package's arguments, after its bin.
    #[serde(default)]
    pub args: Vec<String>,
    pub command: Option<Vec<String>>,
    pub wasm: Option<ModuleDef>,
    pub mode: Option<String>,
    pub sandbox: Option<String>,
    /// `"strict"`: refuse to start unless the machine isolates the tenant's children in network and
    /// resources; `"best-effort"` (the default): what the machine offers.
    pub isolation: Option<String>,
    /// A package's supply-chain policy (see [`crate::policy::packages`]); the machine's when not given.
    pub verify: Option<String>,
    #[serde(default)]
    pub from: Vec<String>,
    // Values stay `toml::Value` until validated, so that a wrong type is reported without its value.
    #[serde(default)]
    pub env: BTreeMap<String, toml::Value>,
    #[serde(default)]
    pub dirs: Vec<String>,
    #[serde(default)]
    pub network: Vec<String>,
    #[serde(default)]
    pub egress: Vec<String>,
    #[serde(default)]
    pub egress_resolve: Vec<String>,
    #[serde(default)]
    pub secrets: BTreeMap<String, SecretDef>,
    #[serde(default)]
    pub token_sha256: Vec<String>,
    pub auth: Option<AuthDef>,
    #[serde(default)]
    pub limits: LimitsDef,
    /// What of its server's tools, prompts and resources the tenant offers (see [`crate::policy::offer`]).
    pub tools: Option<PatternsDef>,
    pub prompts: Option<PatternsDef>,
    pub resources: Option<PatternsDef>,
    /// What the audit trail keeps of this tenant's calls besides the usual: `{ hash_arguments = true }`.
    pub audit: Option<AuditDef>,
}

/// What the audit trail keeps of a tenant's calls, as written.
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct AuditDef {
    /// A keyed hash of each call's arguments, so that two calls can be compared without being read.
    #[serde(default)]
    pub hash_arguments: bool,
}

/// How a tenant's clients sign in with OAuth 2.1, as written:
///
/// ```toml
/// auth = { issuer = "builtin" }                # catwalk's own authorization server
/// auth = { issuer = "https://idp.example", audience = "https://mcp.example/t/acme/mcp", scopes = ["mcp"],
///          client_id = "catwalk", client_secret = "..." }   # an issuer's JWTs; opaque tokens by introspection
/// ```
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuthDef {
    pub issuer: String,
    /// The `aud` tokens must carry: the tenant's resource URL unless given.
    pub audience: Option<String>,
    /// Scopes every request's token must hold.
    #[serde(default)]
    pub scopes: Vec<String>,
    /// catwalk's own credentials at the issuer, for RFC 7662 introspection of opaque tokens.
    pub client_id: Option<String>,
    // A `toml::Value` until validated, so that a wrong type is reported without its value.
    pub client_secret: Option<toml::Value>,
}

/// A tenant's OAuth, validated.
#[derive(Clone, PartialEq)]
pub enum AuthSpec {
    /// catwalk's own authorization server signs its tokens.
    Builtin { scopes: Vec<String> },
    /// An issuer's tokens: JWTs checked against its keys, opaque ones introspected with `introspection`.
    Issuer {
        issuer: String,
        audience: Option<String>,
        scopes: Vec<String>,
        introspection: Option<(String, String)>,
    },
}

impl AuthSpec {
    pub fn scopes(&self) -> &[String] {
        match self {
            AuthSpec::Builtin { scopes } | AuthSpec::Issuer { scopes, .. } => scopes,
        }
    }
}

// By hand: the introspection secret must not reach a log through `{:?}`.
impl std::fmt::Debug for AuthSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            AuthSpec::Builtin { scopes } => {
                f.debug_struct("Builtin").field("scopes", scopes).finish()
            }
            AuthSpec::Issuer {
                issuer,
                audience,
                scopes,
                introspection,
            } => f
                .debug_struct("Issuer")
                .field("issuer", issuer)
                .field("audience", audience)
                .field("scopes", scopes)
                .field("introspection", &introspection.as_ref().map(|(id, _)| id))
                .finish(),
        }
    }
}

impl AuthDef {
    /// Whether the definition holds a secret (the introspection credentials).
    pub fn has_secret(&self) -> bool {
        self.client_secret.is_some()
    }

    fn validate(
        self,
        fail: &impl Fn(&'static str, String) -> TenantError,
    ) -> Result<AuthSpec, TenantError> {
        for scope in &self.scopes {
            let fits = !scope.is_empty()
                && scope
                    .bytes()
                    .all(|b| b.is_ascii_graphic() && b != b'"' && b != b'\\');
            if !fits {
                return Err(fail(
                    "auth.scopes",
                    "a scope is printable ASCII, without spaces, quotes or backslashes".into(),
                ));
            }
        }
        if self.issuer == "builtin" {
            if self.audience.is_some() || self.client_id.is_some() || self.client_secret.is_some() {
                return Err(fail(
                    "auth",
                    "audience, client_id and client_secret are for an external issuer, not \"builtin\"".into(),
                ));
            }
            return Ok(AuthSpec::Builtin {
                scopes: self.scopes,
            });
        }
        url::Url::parse(&self.issuer)
            .ok()
            .filter(|u| {
                u.scheme() == "https"
                    && u.host_str().is_some()
                    && u.query().is_none()
                    && u.fragment().is_none()
                    && u.username().is_empty()
            })
            .ok_or_else(|| {
                fail(
                    "auth.issuer",
                    "must be \"builtin\" or an https URL without query or fragment".into(),
                )
            })?;
        let introspection = match (self.client_id, self.client_secret) {
            (None, None) => None,
            (Some(id), Some(toml::Value::String(secret)))
                if !id.is_empty() && !secret.is_empty() =>
            {
                Some((id, secret))
            }
            (Some(_), Some(_)) => {
                return Err(fail(
                    "auth.client_secret",
                    "must be a non-empty string".into(),
                ));
            }
            _ => {
                return Err(fail(
                    "auth",
                    "client_id and client_secret come together (catwalk's credentials for introspection)".into(),
                ));
            }
        };
        Ok(AuthSpec::Issuer {
            issuer: self.issuer.trim_end_matches('/').to_owned(),
            audience: self.audience,
            scopes: self.scopes,
            introspection,
        })
    }
}

/// A secret bound to hosts, as written.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SecretDef {
    // A `toml::Value` until validated, so that a wrong type is reported without its value.
    pub value: toml::Value,
    #[serde(default)]
    pub hosts: Vec<String>,
}

#[derive(Deserialize)]
#[serde(untagged)]
pub enum ModuleDef {
    Path(PathBuf),
    Pinned {
        path: Option<PathBuf>,
        url: Option<String>,
        sha256: Option<String>,
    },
}

/// Where a WASI module comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ModuleSource {
    /// A local file, optionally pinned.
    File {
        path: PathBuf,
        sha256: Option<[u8; 32]>,
    },
    /// A URL, always pinned.
    Url { url: String, sha256: [u8; 32] },
}

/// What a tenant runs.
#[derive(Debug, Clone)]
pub enum TenantServer {
    Package(String),
    Command(Vec<String>),
    Wasm(ModuleSource),
}

/// One tenant, validated.
#[derive(Clone)]
pub struct TenantSpec {
    pub id: String,
    pub server: TenantServer,
    pub mode: Mode,
    /// For a package: its WASI build (the catalog's, or packed by catwalk), or npx.
    pub sandbox: Sandbox,
    /// A package's arguments.
    pub args: Vec<String>,
    pub env: Vec<(String, String)>,
    pub dirs: Vec<DirGrant>,
    /// Where a WASI tenant's guest may connect.
    pub network: Vec<NetGrant>,
    /// Where a sandboxed server's HTTP(S) requests may go.
    pub egress: Egress,
    /// Values bound to hosts, for a sandboxed server.
    pub secrets: Vec<Secret>,
    pub tokens: Vec<[u8; 32]>,
    /// How its clients sign in with OAuth, if they do.
    pub auth: Option<AuthSpec>,
    /// Its own limits, where it sets them (the machine's defaults otherwise).
    pub limits: TenantLimits,
    pub offer: Offer,
    /// The audit trail keeps a keyed hash of each call's arguments.
    pub audit_arguments: bool,
    /// Refuse to start the tenant's children without network and resource isolation.
    pub strict_isolation: bool,
    /// What its package must prove before it runs, where the tenant says (the machine's policy otherwise).
    pub packages: Option<PackagePolicy>,
}

// By hand: the env values must not reach a log through `{:?}`.
impl std::fmt::Debug for TenantSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TenantSpec")
            .field("id", &self.id)
            .field("server", &self.server)
            .field("env", &self.env.iter().map(|(k, _)| k).collect::<Vec<_>>())
            .field("egress", &self.egress)
            .field("secrets", &self.secrets)
            .field("tokens", &self.tokens.len())
            .field("auth", &self.auth)
            .field("offer", &self.offer)
            .finish_non_exhaustive()
    }
}

/// A tenant that cannot be served, by tenant and field.
#[derive(Debug, thiserror::Error)]
#[error("tenant {tenant:?}: {field}: {problem}")]
pub struct TenantError {
    pub tenant: String,
    pub field: &'static str,
    pub problem: String,
}

/// A tenants file that cannot be read.
#[derive(Debug, thiserror::Error)]
pub enum FileError {
    #[error("{path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    /// The parser's message and position only: its usual snippet of the offending line could show a secret.
    #[error("{path}, line {line}: {message}")]
    Syntax {
        path: String,
        line: usize,
        message: String,
    },
    #[error("{path}: {source}")]
    Tenant { path: String, source: TenantError },
    #[error("{path}: tenant {0:?} appears twice", .id)]
    Duplicate { path: String, id: String },
}

/// Reads and validates a tenants file.
pub fn read(path: &std::path::Path) -> Result<Vec<TenantSpec>, FileError> {
    let shown = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|source| FileError::Read {
        path: shown.clone(),
        source,
    })?;
    parse(&text, shown)
}

/// Validates the text of a tenants file; `shown` names the file in errors.
pub fn parse(text: &str, shown: String) -> Result<Vec<TenantSpec>, FileError> {
    let file: TenantsFile = toml::from_str(text).map_err(|e| FileError::Syntax {
        path: shown.clone(),
        line: e.span().map_or(0, |span| {
            text.get(..span.start)
                .map_or(0, |before| before.lines().count().max(1))
        }),
        message: e.message().to_owned(),
    })?;
    let mut specs: Vec<TenantSpec> = Vec::new();
    for def in file.tenant {
        let spec = def.validate().map_err(|source| FileError::Tenant {
            path: shown.clone(),
            source,
        })?;
        if specs.iter().any(|s| s.id == spec.id) {
            return Err(FileError::Duplicate {
                path: shown,
                id: spec.id,
            });
        }
        specs.push(spec);
    }
    Ok(specs)
}

impl TenantDef {
    pub fn validate(self) -> Result<TenantSpec, TenantError> {
        let id = self.id.clone();
        let fail = |field: &'static str, problem: String| TenantError {
            tenant: id.clone(),
            field,
            problem,
        };
        if !valid_id(&self.id) {
            return Err(fail(
                "id",
                "must be 1 to 64 characters of A-Z, a-z, 0-9, '-' and '_'".into(),
            ));
        }
        let server = match (self.package, self.command, self.wasm) {
            (Some(package), None, None) if !package.trim().is_empty() => {
                TenantServer::Package(package.trim().to_owned())
            }
            (None, Some(command), None) if command.first().is_some_and(|c| !c.is_empty()) => {
                TenantServer::Command(command)
            }
            (None, None, Some(module)) => TenantServer::Wasm(module_source(module, &fail)?),
            (None, None, None) => {
                return Err(fail(
                    "server",
                    "give one of package, command or wasm".into(),
                ));
            }
            _ => {
                return Err(fail(
                    "server",
                    "give exactly one of package, command or wasm, not empty".into(),
                ));
            }
        };
        if !self.args.is_empty() && !matches!(server, TenantServer::Package(_)) {
            return Err(fail(
                "args",
                "only a package takes args (a command carries its own)".into(),
            ));
        }
        let wasm = matches!(server, TenantServer::Wasm(_));
        let sandbox = match self.sandbox.as_deref() {
            None => Sandbox::Auto,
            Some(_) if !matches!(server, TenantServer::Package(_)) => {
                return Err(fail(
                    "sandbox",
                    "only a package tenant chooses between its WASI build and npx".into(),
                ));
            }
            Some(value) => Sandbox::from_str(value, true).map_err(|_| {
                fail(
                    "sandbox",
                    "must be \"auto\", \"npx\", \"wasi\" or \"wasi-or-npx\"".into(),
                )
            })?,
        };
        let mode = match self.mode.as_deref() {
            None | Some("per-session") => Mode::PerSession,
            Some("shared") if !wasm => Mode::Shared,
            Some("shared") => {
                return Err(fail(
                    "mode",
                    "a WASI tenant always has an instance per session".into(),
                ));
            }
            Some(_) => return Err(fail("mode", "must be \"per-session\" or \"shared\"".into())),
        };
        let mut env = Vec::new();
        for (key, value) in self.env {
            if key.is_empty() || key.contains('=') || key.contains('\0') {
                return Err(fail("env", format!("{key:?} is not a variable name")));
            }
            match value {
                toml::Value::String(value) if !value.contains('\0') => env.push((key, value)),
                _ => return Err(fail("env", format!("the value of {key} must be a string"))),
            }
        }
        let mut dirs = Vec::new();
        for dir in &self.dirs {
            let grant = if wasm {
                parse_dir(dir)
            } else {
                parse_child_dir(dir)
            }
            .map_err(|e| fail("dirs", format!("{dir}: {e}")))?;
            if !grant.host.is_dir() {
                return Err(fail(
                    "dirs",
                    format!("{} is not a directory", grant.host.display()),
                ));
            }
            dirs.push(grant);
        }
        let network = self
            .network
            .iter()
            .map(|spec| parse_net(spec).map_err(|e| fail("network", e)))
            .collect::<Result<Vec<_>, _>>()?;
        if !network.is_empty() && matches!(server, TenantServer::Command(_)) {
            return Err(fail(
                "network",
                "a command's process is not network-confined; network grants are for WASI guests"
                    .into(),
            ));
        }
        let egress = Egress {
            grants: self
                .egress
                .iter()
                .map(|spec| Grant::parse(spec).map_err(|e| fail("egress", e)))
                .collect::<Result<_, _>>()?,
            pins: self
                .egress_resolve
                .iter()
                .map(|spec| Pin::parse(spec).map_err(|e| fail("egress_resolve", e)))
                .collect::<Result<_, _>>()?,
        };
        let mut secrets = Vec::new();
        for (name, def) in self.secrets {
            let toml::Value::String(value) = def.value else {
                return Err(fail(
                    "secrets",
                    format!("the value of {name} must be a string"),
                ));
            };
            secrets.push(Secret::new(&name, &value, &def.hosts).map_err(|e| fail("secrets", e))?);
        }
        // A process holds whatever its env holds: a value bound to hosts is only kept from the server where the
        // sandbox makes its requests for it.
        if !secrets.is_empty()
            && (matches!(server, TenantServer::Command(_)) || sandbox == Sandbox::Npx)
        {
            return Err(fail(
                "secrets",
                "secrets bound to hosts are kept from the server only in the sandbox, which makes its requests \
                 for it; a process would hold the value itself. Give sandbox = \"wasi\", or the value as env"
                    .into(),
            ));
        }
        let strict_isolation = match self.isolation.as_deref() {
            None | Some("best-effort") => false,
            Some("strict") => true,
            Some(other) => {
                return Err(fail(
                    "isolation",
                    format!("{other:?} is neither \"strict\" nor \"best-effort\""),
                ));
            }
        };
        let packages = match (self.verify.as_deref(), self.from.is_empty()) {
            (None, true) => None,
            _ if !matches!(server, TenantServer::Package(_)) => {
                return Err(fail(
                    "verify",
                    "verify and from are for a package; this tenant runs a command or a module"
                        .into(),
                ));
            }
            (verify, _) => {
                let verify = verify
                    .map(Verify::parse)
                    .transpose()
                    .map_err(|e| fail("verify", e))?
                    .unwrap_or_default();
                Some(PackagePolicy::new(verify, self.from).map_err(|e| fail("from", e))?)
            }
        };
        let tokens = self
            .token_sha256
            .iter()
            .enumerate()
            .map(|(i, hex)| {
                parse_sha256(hex).ok_or_else(|| {
                    fail(
                        "token_sha256",
                        format!("entry {} is not 64 hex digits", i + 1),
                    )
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        let auth = self.auth.map(|auth| auth.validate(&fail)).transpose()?;
        let limits = self
            .limits
            .validate(wasm)
            .map_err(|(field, problem)| fail(field, problem))?;
        let patterns = |def: Option<PatternsDef>, field: &'static str| {
            def.map(|d| d.validate().map_err(|e| fail(field, e)))
                .transpose()
                .map(Option::unwrap_or_default)
        };
        let offer = Offer {
            tools: patterns(self.tools, "tools")?,
            prompts: patterns(self.prompts, "prompts")?,
            resources: patterns(self.resources, "resources")?,
        };
        Ok(TenantSpec {
            id: self.id,
            server,
            mode,
            sandbox,
            args: self.args,
            env,
            dirs,
            network,
            egress,
            secrets,
            tokens,
            auth,
            limits,
            offer,
            audit_arguments: self.audit.is_some_and(|a| a.hash_arguments),
            strict_isolation,
            packages,
        })
    }
}

pub(crate) fn module_source(
    module: ModuleDef,
    fail: &impl Fn(&'static str, String) -> TenantError,
) -> Result<ModuleSource, TenantError> {
    let digest = |hex: Option<String>| {
        hex.map(|hex| {
            parse_sha256(&hex).ok_or_else(|| fail("wasm.sha256", "must be 64 hex digits".into()))
        })
        .transpose()
    };
    match module {
        ModuleDef::Path(path) => Ok(ModuleSource::File { path, sha256: None }),
        ModuleDef::Pinned {
            path: Some(path),
            url: None,
            sha256,
        } => Ok(ModuleSource::File {
            path,
            sha256: digest(sha256)?,
        }),
        ModuleDef::Pinned {
            path: None,
            url: Some(url),
            sha256,
        } => {
            let sha256 = digest(sha256)?.ok_or_else(|| {
                fail(
                    "wasm.sha256",
                    "a module fetched from a URL must be pinned by its SHA-256".into(),
                )
            })?;
            let parsed =
                url::Url::parse(&url).map_err(|e| fail("wasm.url", format!("not a URL: {e}")))?;
            let loopback = parsed
                .host_str()
                .is_some_and(|h| matches!(h, "127.0.0.1" | "localhost" | "[::1]"));
            if parsed.scheme() != "https" && !(parsed.scheme() == "http" && loopback) {
                return Err(fail(
                    "wasm.url",
                    "must be https:// (plain http only to a loopback address)".into(),
                ));
            }
            Ok(ModuleSource::Url { url, sha256 })
        }
        ModuleDef::Pinned { .. } => Err(fail(
            "wasm",
            "give a path, or a path or url table with sha256".into(),
        )),
    }
}

pub fn valid_id(id: &str) -> bool {
    (1..=64).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// 64 hex digits into 32 bytes.
pub fn parse_sha256(hex: &str) -> Option<[u8; 32]> {
    let hex = hex.trim();
    if hex.len() != 64 {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, byte) in out.iter_mut().enumerate() {
        *byte = u8::from_str_radix(hex.get(2 * i..2 * i + 2)?, 16).ok()?;
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn def(toml: &str) -> Result<TenantSpec, TenantError> {
        let file: TenantsFile = toml::from_str(toml).unwrap();
        file.tenant.into_iter().next().unwrap().validate()
    }

    #[test]
    fn errors_name_tenant_and_field_but_not_values() {
        let e = def("[[tenant]]\nid = \"a\"\npackage = \"p\"\nenv = { K = 5 }").unwrap_err();
        assert_eq!(
            e.to_string(),
            "tenant \"a\": env: the value of K must be a string"
        );
        let e = def("[[tenant]]\nid = \"a\"\ntoken_sha256 = [\"secretish\"]\npackage = \"p\"")
            .unwrap_err();
        assert!(!e.to_string().contains("secretish"), "{e}");
        let e = def("[[tenant]]\nid = \"a b\"\npackage = \"p\"").unwrap_err();
        assert!(e.to_string().contains("id:"), "{e}");
        let e = def("[[tenant]]\nid = \"a\"\nwasm = { url = \"http://example.com/x.wasm\", sha256 = \"00\" }")
            .unwrap_err();
        assert!(e.to_string().contains("wasm.sha256"), "{e}");
        let e = def("[[tenant]]\nid = \"a\"\npackage = \"p\"\ncommand = [\"x\"]").unwrap_err();
        assert!(e.to_string().contains("server"), "{e}");
    }

    #[test]
    fn a_full_tenant_validates() {
        let zero = "0".repeat(64);
        let spec = def(&format!(
            "[[tenant]]\nid = \"acme\"\nwasm = {{ url = \"https://example.com/m.wasm\", sha256 = \"{zero}\" }}\n\
             env = {{ K = \"v\" }}\ntoken_sha256 = [\"{zero}\"]\n[tenant.limits]\nmemory = \"32MiB\"\nmax_sessions = 3"
        ))
        .unwrap();
        assert_eq!(spec.limits.memory, Some(32 << 20));
        assert_eq!(spec.limits.max_sessions, Some(3));
        assert_eq!(spec.tokens, vec![[0u8; 32]]);
        assert!(!format!("{spec:?}").contains("\"v\""));
    }

    #[test]
    fn a_package_tenant_says_what_its_package_must_prove() {
        let spec =
            def("[[tenant]]\nid = \"a\"\npackage = \"p\"\nfrom = [\"github.com/acme/*\"]").unwrap();
        let policy = spec.packages.unwrap();
        assert_eq!(policy.verify, Verify::Provenance, "from implies provenance");
        assert!(policy.accepts_repository("https://github.com/acme/server"));
        let spec = def("[[tenant]]\nid = \"a\"\npackage = \"p\"\nverify = \"off\"").unwrap();
        assert_eq!(spec.packages.unwrap().verify, Verify::Off);
        assert!(
            def("[[tenant]]\nid = \"a\"\npackage = \"p\"")
                .unwrap()
                .packages
                .is_none()
        );
        for (bad, field) in [
            ("package = \"p\"\nverify = \"strict\"", "verify:"),
            (
                "package = \"p\"\nverify = \"off\"\nfrom = [\"github.com/a/*\"]",
                "from:",
            ),
            (
                "package = \"p\"\nfrom = [\"https://github.com/a\"]",
                "from:",
            ),
            ("command = [\"node\"]\nverify = \"provenance\"", "verify:"),
        ] {
            let e = def(&format!("[[tenant]]\nid = \"a\"\n{bad}")).unwrap_err();
            assert!(e.to_string().contains(field), "{bad}: {e}");
        }
    }

    #[test]
    fn npx_tenants_take_grants_and_isolation_but_not_bound_secrets() {
        let spec = def("[[tenant]]\nid = \"a\"\ncommand = [\"node\", \"s.js\"]\negress = [\"https://api.test\"]\n\
             isolation = \"strict\"\n[tenant.limits]\ncpu = 0.5\nmemory = \"128MiB\"")
        .unwrap();
        assert!(spec.strict_isolation);
        assert_eq!(spec.egress.grants.len(), 1);
        assert_eq!(spec.limits.cpu_millicores, Some(500));
        assert!(
            !def("[[tenant]]\nid = \"a\"\npackage = \"p\"")
                .unwrap()
                .strict_isolation
        );
        for bad in [
            "package = \"p\"\nsandbox = \"npx\"\nsecrets.T = { value = \"canary-value\", hosts = [\"api.test\"] }",
            "command = [\"x\"]\nsecrets.T = { value = \"canary-value\", hosts = [\"api.test\"] }",
        ] {
            let e = def(&format!("[[tenant]]\nid = \"a\"\n{bad}"))
                .unwrap_err()
                .to_string();
            assert!(
                e.contains(
                    "secrets: secrets bound to hosts are kept from the server only in the sandbox"
                ),
                "{e}"
            );
            assert!(!e.contains("canary-value"), "{e}");
        }
        let e = def("[[tenant]]\nid = \"a\"\npackage = \"p\"\nisolation = \"lax\"").unwrap_err();
        assert!(e.to_string().contains("isolation:"), "{e}");
        for cpu in ["0", "-1", "2000", "nan"] {
            let e = def(&format!(
                "[[tenant]]\nid = \"a\"\npackage = \"p\"\n[tenant.limits]\ncpu = {cpu}"
            ));
            assert!(e.is_err(), "cpu = {cpu}");
        }
        let e = def("[[tenant]]\nid = \"a\"\nwasm = \"/m.wasm\"\n[tenant.limits]\ncpu = 1")
            .unwrap_err();
        assert!(e.to_string().contains("cpu limit child processes"), "{e}");
    }
}
