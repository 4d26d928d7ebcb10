//! Command line and environment: raw flags (`ServeArgs`, parsed by clap), then one conversion into a
//! validated [`Config`] that the rest of catwalk can trust.
//!
//! # Which environment reaches a server
//! A server gets exactly the environment catwalk computes here, never catwalk's own by accident:
//! - the *tenant's variables*: by default every variable catwalk was started with **except its own
//!   configuration** (`CATWALK_*`, `MCP_PACKAGE`, `PORT`, `RUST_LOG`) — this is how one tenant's credentials
//!   reach its server on a machine started with them, as the seed's `--pass-environment` did; with
//!   `--pass-env NAME,...` only the named variables pass;
//! - `--env KEY=VALUE` values, given to catwalk as data;
//! - what npx needs: `PATH` and `HOME` (defaults supplied if catwalk has none).

mod flags;

use std::ffi::OsString;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use crate::backend::process::ProcessSpec;
use crate::backend::wasi::GuestPolicy;
use crate::http::guard::OriginPolicy;
use crate::policy::egress::Egress;
use crate::policy::secrets::Secret;
use crate::session::Limits;
use crate::tenants::file::TenantSpec;
use crate::vocab::{Mode, Sandbox};
pub use flags::{Cli, Command, LogFormat, PackArgs, ServeArgs};

/// `$XDG_CACHE_HOME/catwalk`, or `~/.cache/catwalk`.
pub fn default_state_dir(xdg_cache_home: Option<OsString>, home: Option<OsString>) -> PathBuf {
    xdg_cache_home
        .map(PathBuf::from)
        .or_else(|| home.map(|h| PathBuf::from(h).join(".cache")))
        .unwrap_or_else(std::env::temp_dir)
        .join("catwalk")
}

/// What to run.
#[derive(Debug, Clone)]
pub enum Server {
    Package(String),
    Command(ProcessSpec),
    /// A WASI module or component file, and what it may do.
    Wasm {
        path: PathBuf,
        policy: GuestPolicy,
    },
    /// Nothing configured: the demo WASI server embedded in the binary.
    Demo {
        policy: GuestPolicy,
    },
}

/// The validated configuration of one `catwalk serve`.
#[derive(Debug, Clone)]
pub struct Config {
    pub addr: SocketAddr,
    /// Threads of the runtime that serves HTTP.
    pub workers: usize,
    pub mode: Mode,
    /// Per-session mode: servers kept started ahead of need.
    pub spare: usize,
    pub server: Server,
    /// The command template: env, limits (program/args filled in for packages by the npm resolver).
    pub spec: ProcessSpec,
    pub state_dir: PathBuf,
    pub origin_policy: OriginPolicy,
    pub limits: Limits,
    pub max_sessions: usize,
    pub max_body_bytes: usize,
    pub drain_timeout: Duration,
    /// How long a moved tenant's sessions go on here (`--move-deadline`).
    pub move_deadline: Duration,
    /// The key tenants' secrets are sealed with in the state dir (`CATWALK_STATE_KEY`).
    pub state_key: Option<crate::tenants::store::StateKey>,
    pub log_format: LogFormat,
    /// Tenants from a tenants file; `None` in the single-tenant flow (`server` above).
    pub tenants: Option<Vec<TenantSpec>>,
    /// Where the tenants file is (it holds every tenant's secrets).
    pub tenants_file: Option<PathBuf>,
    /// SHA-256 of the admin API's token; `None`: no admin API.
    pub admin_token: Option<[u8; 32]>,
    /// What a guest gets by default (memory, CPU budget, caps); a tenant's limits override it.
    pub guest: GuestPolicy,
    /// The binary that confines tenants' children (`catwalk confine`).
    pub helper: PathBuf,
    pub catalog: Option<String>,
    pub sandbox: Sandbox,
    /// What npm packages must prove before they run (`--verify`, `--verify-from`); a tenant may say otherwise.
    pub packages: crate::policy::packages::PackagePolicy,
    /// Resolve package specs again instead of using their pins (`--refresh`).
    pub refresh: bool,
    /// The package's arguments (`--package SPEC -- ARGS`).
    pub package_args: Vec<String>,
    pub max_inflight: usize,
    /// This machine's id, in its session ids (`--machine-id`).
    pub machine_id: Option<Arc<str>>,
    /// What of catwalk's environment every tenant's children get (`--tenant-env`).
    pub tenant_env: Vec<(OsString, OsString)>,
    /// The single server's egress grants and pins (`--egress`, `--egress-resolve`).
    pub egress: Egress,
    /// The single server's secrets bound to hosts (`--secret`).
    pub secrets: Vec<Secret>,
    /// Extra roots every tenant's egress trusts (`--egress-ca`).
    pub egress_ca: Vec<PathBuf>,
    /// Names pinned for catwalk's own OAuth fetches (`--oauth-resolve`).
    pub oauth_pins: Vec<crate::policy::egress::Pin>,
    /// Where the audit trail goes (`--audit-log`); `None`: no audit trail.
    pub audit: Option<crate::audit::AuditTarget>,
    pub egress_limits: crate::egress::Limits,
    /// How connections are bounded (caps and timeouts).
    pub connections: crate::http::server::Limits,
}

/// Why the flags cannot make a configuration.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("give one server: --package, --wasm, or a command after `--`")]
    BothServers,
    #[error("--{flag}: {problem}")]
    Invalid { flag: &'static str, problem: String },
    #[error("--config: {0}")]
    Tenants(#[from] crate::tenants::file::FileError),
    #[error(
        "--config serves tenants from a file: give their servers there, not --package, --wasm or a command"
    )]
    ConfigAndServer,
    #[error("{0}")]
    StateKey(String),
}

/// Variables that configure catwalk itself and never reach a server.
fn is_catwalk_own(name: &str) -> bool {
    name.starts_with("CATWALK_") || matches!(name, "MCP_PACKAGE" | "PORT" | "RUST_LOG")
}

impl ServeArgs {
    /// Validates the flags against catwalk's own environment `host_env`.
    pub fn into_config(self, host_env: Vec<(OsString, OsString)>) -> Result<Config, ConfigError> {
        if let Some(path) = self.config.clone() {
            if self.package.is_some() || self.wasm.is_some() || !self.command.is_empty() {
                return Err(ConfigError::ConfigAndServer);
            }
            if !self.egress.is_empty()
                || !self.egress_resolve.is_empty()
                || !self.secrets.is_empty()
            {
                return Err(ConfigError::Invalid {
                    flag: "egress",
                    problem: "with --config, each tenant has its own egress and secrets in the tenants file"
                        .into(),
                });
            }
            let tenants = crate::tenants::file::read(&path)?;
            let policy = self.guest_policy(Vec::new());
            let mut config = self.finish(Server::Demo { policy }, host_env, Vec::new())?;
            config.tenants = Some(tenants);
            config.tenants_file = Some(path);
            return Ok(config);
        }
        let get = |name: &str| {
            host_env
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.clone())
        };
        let mut given = Vec::new();
        for (key, value) in &self.env {
            let value = match value {
                Some(value) => value.clone(),
                None => get(key).and_then(|v| v.into_string().ok()).ok_or_else(|| {
                    ConfigError::Invalid {
                        flag: "env",
                        problem: format!("{key} is not set in catwalk's environment"),
                    }
                })?,
            };
            given.push((key.clone(), value));
        }
        if let Some(path) = self.wasm.clone() {
            if self.package.is_some() || !self.command.is_empty() {
                return Err(ConfigError::BothServers);
            }
            if self.memory < (64 << 10) {
                return Err(ConfigError::Invalid {
                    flag: "memory",
                    problem: "must be at least 64KiB".into(),
                });
            }
            if self.cpu_budget.is_zero() {
                return Err(ConfigError::Invalid {
                    flag: "cpu-budget",
                    problem: "must be greater than 0".into(),
                });
            }
            for dir in &self.dirs {
                if !dir.host.is_dir() {
                    return Err(ConfigError::Invalid {
                        flag: "dir",
                        problem: format!("{} is not a directory", dir.host.display()),
                    });
                }
            }
            let policy = self.guest_policy(given.clone());
            return self.finish(Server::Wasm { path, policy }, host_env, given);
        }
        let sandboxed =
            self.package.is_some() && matches!(self.sandbox, Sandbox::Wasi | Sandbox::WasiOrNpx);
        if !self.dirs.is_empty() && !sandboxed {
            return Err(ConfigError::Invalid {
                flag: "dir",
                problem:
                    "only a WASI server (--wasm, or --package with --sandbox wasi) takes grants"
                        .into(),
            });
        }
        let server = match (self.package.clone(), self.command.is_empty()) {
            (Some(p), _) if p.trim().is_empty() => {
                return Err(ConfigError::Invalid {
                    flag: "package",
                    problem: "empty".into(),
                });
            }
            // A command after `--` with a package is the package's arguments.
            (Some(p), _) => Server::Package(p.trim().to_owned()),
            (None, false) => Server::Command(ProcessSpec {
                program: self.command[0].clone(),
                args: self.command[1..].to_vec(),
                ..empty_spec()
            }),
            (None, true) => Server::Demo {
                policy: self.guest_policy(given.clone()),
            },
        };
        self.finish(server, host_env, given)
    }

    fn guest_policy(&self, env: Vec<(String, String)>) -> GuestPolicy {
        GuestPolicy {
            env,
            dirs: self.dirs.clone(),
            network: self.net.clone(),
            max_memory_bytes: self.memory,
            cpu_budget: self.cpu_budget,
            max_message_bytes: self.max_message_bytes,
            max_log_bytes: self.max_log_bytes,
            egress: None,
        }
    }

    fn finish(
        self,
        server: Server,
        host_env: Vec<(OsString, OsString)>,
        given: Vec<(String, String)>,
    ) -> Result<Config, ConfigError> {
        let admin_token = self
            .admin_token_sha256
            .as_deref()
            .map(|hex| {
                crate::tenants::file::parse_sha256(hex).ok_or(ConfigError::Invalid {
                    flag: "admin-token-sha256",
                    problem: "must be 64 hex digits".into(),
                })
            })
            .transpose()?;
        let state_key = host_env
            .iter()
            .find(|(k, _)| k == crate::tenants::store::KEY_VAR)
            .map(|(_, v)| {
                v.to_str()
                    .ok_or_else(|| "not text".to_owned())
                    .and_then(crate::tenants::store::StateKey::parse)
                    .map_err(ConfigError::StateKey)
            })
            .transpose()?;
        let guest = self.guest_policy(Vec::new());
        let positive = |flag: &'static str, v: usize| {
            if v == 0 {
                Err(ConfigError::Invalid {
                    flag,
                    problem: "must be greater than 0".into(),
                })
            } else {
                Ok(v)
            }
        };
        let max_message_bytes = positive("max-message-bytes", self.max_message_bytes)?;
        let max_sessions = positive("max-sessions", self.max_sessions)?;
        let max_inflight = positive("max-inflight", self.max_inflight)?;
        let workers = positive("workers", self.workers)?;
        if self.spare > max_sessions {
            return Err(ConfigError::Invalid {
                flag: "spare",
                problem: format!("must be at most --max-sessions ({max_sessions})"),
            });
        }
        let machine_id = self
            .machine_id
            .clone()
            .filter(|id| !id.is_empty())
            .map(|id| {
                crate::vocab::valid_machine_id(&id)
                    .then_some(id)
                    .ok_or(ConfigError::Invalid {
                        flag: "machine-id",
                        problem: "must be 1 to 64 letters and digits".into(),
                    })
            })
            .transpose()?;
        let open_files = rustix::process::getrlimit(rustix::process::Resource::Nofile)
            .current
            .unwrap_or(1024);
        let max_connections = match self.max_connections {
            Some(n) => positive("max-connections", n)?,
            None => crate::http::server::default_max_connections(open_files),
        };
        let connections = crate::http::server::Limits {
            header_timeout: self.header_timeout,
            body_timeout: self.body_timeout,
            idle_timeout: self.idle_timeout,
            max_connections,
            max_per_ip: self
                .max_connections_per_ip
                .unwrap_or_else(|| crate::http::server::default_max_per_ip(max_connections)),
        };
        for (flag, d) in [
            ("session-ttl", self.session_ttl),
            ("request-timeout", self.request_timeout),
            ("header-timeout", self.header_timeout),
            ("body-timeout", self.body_timeout),
            ("idle-timeout", self.idle_timeout),
        ] {
            if d.is_zero() {
                return Err(ConfigError::Invalid {
                    flag,
                    problem: "must be greater than 0".into(),
                });
            }
        }

        let get = |name: &str| {
            host_env
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.clone())
        };
        let state_dir = match self.state_dir {
            Some(dir) => dir,
            // Tenants' uids must reach their dirs, which they could not below /root.
            None if self.config.is_some() && rustix::process::geteuid().is_root() => {
                PathBuf::from("/var/lib/catwalk")
            }
            None => default_state_dir(get("XDG_CACHE_HOME"), get("HOME")),
        };
        let env = child_env(&self.pass_env, &host_env, &given, &state_dir);
        let secrets = self
            .secrets
            .iter()
            .map(|spec| secret(spec, &host_env))
            .collect::<Result<Vec<_>, _>>()?;
        // A secret's value never reaches the server's env, whatever passes from catwalk's own.
        let env: Vec<_> = env
            .into_iter()
            .filter(|(k, _)| !secrets.iter().any(|s| k == s.name.as_str()))
            .collect();
        if (!self.egress.is_empty() || !secrets.is_empty()) && matches!(server, Server::Command(_))
        {
            return Err(ConfigError::Invalid {
                flag: "egress",
                problem: "a command's process is not network-confined; egress grants and secrets are for sandboxed servers (--wasm, or --package with --sandbox wasi)".into(),
            });
        }
        let egress = Egress {
            grants: self.egress.clone(),
            pins: self.egress_resolve.clone(),
        };
        let egress_limits = crate::egress::Limits {
            connect_timeout: self.egress_idle_timeout,
            first_byte_timeout: self.egress_timeout,
            idle_timeout: self.egress_idle_timeout,
            max_response_bytes: self.egress_max_response as u64,
            max_in_flight: positive("egress-max-in-flight", self.egress_max_in_flight)?,
        };

        let lower = |v: Vec<String>| {
            v.into_iter()
                .map(|s| s.trim().to_ascii_lowercase())
                .filter(|s| !s.is_empty())
        };
        let origin_policy = OriginPolicy {
            check_host: self.bind.is_loopback(),
            hosts: lower(self.allowed_hosts).collect(),
            origins: lower(self.allowed_origins)
                .map(|o| o.trim_end_matches('/').to_owned())
                .collect(),
        };
        let packages = self
            .verify
            .policy()
            .map_err(|problem| ConfigError::Invalid {
                flag: "verify-from",
                problem,
            })?;
        let spec = match &server {
            Server::Command(cmd) => cmd.clone(),
            Server::Package(_) | Server::Wasm { .. } | Server::Demo { .. } => empty_spec(),
        };
        let spec = ProcessSpec {
            env,
            max_message_bytes,
            stop_grace: self.stop_grace,
            ..spec
        };
        let helper = self
            .helper
            .or_else(|| std::env::current_exe().ok())
            .unwrap_or_else(|| "catwalk".into());
        Ok(Config {
            helper,
            tenants_file: None,
            catalog: self.catalog,
            sandbox: self.sandbox,
            packages,
            refresh: self.refresh,
            package_args: match server {
                Server::Package(_) => self
                    .command
                    .iter()
                    .map(|a| a.to_string_lossy().into_owned())
                    .collect(),
                _ => Vec::new(),
            },
            max_inflight,
            machine_id: machine_id.map(Arc::from),
            tenant_env: host_env
                .iter()
                .filter(|(k, _)| {
                    k.to_str()
                        .is_some_and(|k| self.tenant_env.iter().any(|n| n.trim() == k))
                })
                .cloned()
                .collect(),
            tenants: None,
            egress,
            secrets,
            egress_ca: self.egress_ca.clone(),
            oauth_pins: self.oauth_resolve.clone(),
            audit: match self.audit_log.as_deref() {
                None | Some("") => None,
                Some("stdout" | "-") => Some(crate::audit::AuditTarget::Stdout),
                Some(dir) => Some(crate::audit::AuditTarget::Dir {
                    dir: dir.into(),
                    keep: self.audit_keep_days.max(1),
                }),
            },
            egress_limits,
            connections,
            admin_token,
            guest,
            addr: SocketAddr::new(self.bind, self.port),
            mode: self.mode,
            workers,
            spare: self.spare,
            server,
            spec,
            state_dir,
            origin_policy,
            limits: Limits {
                request_timeout: self.request_timeout,
                idle_ttl: self.session_ttl,
                ..Limits::default()
            },
            max_sessions,
            max_body_bytes: max_message_bytes,
            drain_timeout: self.drain_timeout,
            move_deadline: self.move_deadline,
            state_key,
            log_format: self.log_format,
        })
    }
}

/// `--secret NAME=VALUE@HOSTS`, or `NAME@HOSTS` with the value of catwalk's own variable NAME.
fn secret(spec: &str, host_env: &[(OsString, OsString)]) -> Result<Secret, ConfigError> {
    let invalid = |problem: String| ConfigError::Invalid {
        flag: "secret",
        problem,
    };
    let by_value = spec
        .find('=')
        .is_some_and(|eq| spec.rfind('@').is_some_and(|at| eq < at));
    if by_value {
        return Secret::parse_flag(spec).map_err(invalid);
    }
    let (name, hosts) = spec
        .rsplit_once('@')
        .ok_or_else(|| invalid("expected NAME[=VALUE]@HOST[,HOST]".into()))?;
    let value = host_env
        .iter()
        .find(|(k, _)| k == name)
        .and_then(|(_, v)| v.to_str())
        .ok_or_else(|| invalid(format!("{name} is not set in catwalk's environment")))?;
    let hosts: Vec<String> = hosts
        .split(',')
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty())
        .collect();
    Secret::new(name, value, &hosts).map_err(invalid)
}

fn empty_spec() -> ProcessSpec {
    ProcessSpec {
        program: OsString::new(),
        args: Vec::new(),
        env: Vec::new(),
        cwd: None,
        max_message_bytes: 4 << 20,
        stop_grace: Duration::from_secs(2),
        confine: None,
    }
}

/// The server's whole environment (see the module docs).
fn child_env(
    pass: &str,
    host_env: &[(OsString, OsString)],
    extra: &[(String, String)],
    state_dir: &std::path::Path,
) -> Vec<(OsString, OsString)> {
    let names: Vec<&str> = pass
        .split(',')
        .map(str::trim)
        .filter(|n| !n.is_empty())
        .collect();
    let all = names.contains(&"*");
    let mut env: Vec<(OsString, OsString)> = host_env
        .iter()
        .filter(|(k, _)| {
            let k = k.to_string_lossy();
            !is_catwalk_own(&k) && (all || names.contains(&k.as_ref()))
        })
        .cloned()
        .collect();
    for (k, v) in extra {
        env.retain(|(name, _)| name != k.as_str());
        env.push((k.into(), v.into()));
    }
    let mut ensure = |name: &str, value: OsString| {
        if !env.iter().any(|(k, _)| k == name) {
            let inherited = host_env
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.clone());
            env.push((name.into(), inherited.unwrap_or(value)));
        }
    };
    ensure("PATH", "/usr/local/bin:/usr/bin:/bin".into());
    ensure("HOME", state_dir.join("home").into());
    env
}
#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    fn args(extra: &[&str]) -> ServeArgs {
        let mut argv = vec!["serve"];
        argv.extend_from_slice(extra);
        ServeArgs::try_parse_from(argv).unwrap()
    }

    fn env(pairs: &[(&str, &str)]) -> Vec<(OsString, OsString)> {
        pairs.iter().map(|(k, v)| (k.into(), v.into())).collect()
    }

    fn names(c: &Config) -> Vec<String> {
        c.spec
            .env
            .iter()
            .map(|(k, _)| k.to_string_lossy().into_owned())
            .collect()
    }

    #[test]
    fn the_tenant_env_passes_but_catwalk_own_does_not() {
        let host = env(&[
            ("GITHUB_TOKEN", "t"),
            ("CATWALK_X", "x"),
            ("PORT", "1"),
            ("PATH", "/bin"),
            ("MCP_PACKAGE", "p"),
        ]);
        let c = args(&["--package", "p"]).into_config(host.clone()).unwrap();
        assert_eq!(names(&c), ["GITHUB_TOKEN", "PATH", "HOME"]);
        let c = args(&["--pass-env", "NONE", "--env", "A=1", "--package", "p"])
            .into_config(host)
            .unwrap();
        assert_eq!(names(&c), ["A", "PATH", "HOME"]);
    }

    #[test]
    fn bad_flags_name_the_flag() {
        let e = args(&["--max-sessions", "0", "--package", "p"])
            .into_config(vec![])
            .unwrap_err();
        assert!(e.to_string().contains("--max-sessions"));
        for bad in [
            &["--workers", "0"][..],
            &["--spare", "9", "--max-sessions", "8"][..],
        ] {
            let flag = bad[0];
            let e = args(bad).into_config(vec![]).unwrap_err();
            assert!(e.to_string().contains(flag), "{e}");
        }
        assert!(matches!(
            args(&[]).into_config(vec![]).unwrap().server,
            Server::Demo { .. }
        ));
        // After `--`, a package's own arguments.
        let with_args = args(&["--package", "p", "--", "x"])
            .into_config(vec![])
            .unwrap();
        assert!(matches!(with_args.server, Server::Package(ref p) if p == "p"));
        assert_eq!(with_args.package_args, ["x"]);
        assert!(matches!(
            args(&["--package", "p", "--dir", "/tmp::/t"]).into_config(vec![]),
            Err(ConfigError::Invalid { flag: "dir", .. })
        ));
        assert!(matches!(
            args(&["--wasm", "m.wasm", "--package", "p"]).into_config(vec![]),
            Err(ConfigError::BothServers)
        ));
    }
}
