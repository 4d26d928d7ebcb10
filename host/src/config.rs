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

use std::ffi::OsString;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use clap::{Parser, Subcommand, ValueEnum};

use crate::backend::process::ProcessSpec;
use crate::backend::wasi::GuestPolicy;
use crate::http::guard::OriginPolicy;
use crate::session::Limits;
use crate::tenants::file::TenantSpec;

#[derive(Debug, Parser)]
#[command(
    name = "catwalk",
    version,
    about = "Serve MCP servers over Streamable HTTP and legacy SSE"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve one MCP server: an npm package, a WASI module, or any stdio command after `--`; with nothing
    /// configured, a demo WASI server built into catwalk.
    ///
    /// Examples:
    ///   MCP_PACKAGE=@modelcontextprotocol/server-everything catwalk serve
    ///   catwalk serve --port 9000 -- python3 my_server.py
    Serve(Box<ServeArgs>),
    /// Exits 0 if the catwalk on this machine answers `/healthz` (a container's health check).
    Healthcheck {
        /// The port catwalk listens on.
        #[arg(long, env = "PORT", default_value_t = 8080)]
        port: u16,
    },
    /// Precompiles an npm MCP server to WASI: installs it (no lifecycle scripts), bundles its bin against
    /// catwalk's Node compatibility layer, compiles it to QuickJS bytecode, smoke-tests it in the sandbox and
    /// keeps the artifact in the state dir (`catwalk serve --package SPEC --sandbox wasi` then serves it).
    ///
    /// Examples:
    ///   catwalk pack @modelcontextprotocol/server-memory
    ///   catwalk pack @modelcontextprotocol/server-filesystem --dir /srv/docs::/docs -- /docs
    Pack(PackArgs),
    /// Internal: confines a tenant's child (limits, Landlock, uid), then execs it. catwalk runs this itself.
    #[command(hide = true)]
    Confine(crate::confine::ConfineArgs),
}

#[derive(Debug, Clone, Parser)]
pub struct PackArgs {
    /// The npm package to pack (`name`, `name@version`, or any spec npm installs).
    #[arg(value_name = "SPEC")]
    pub spec: String,

    /// Pack again even if this spec was packed before (a newer version may have been published).
    #[arg(long)]
    pub refresh: bool,

    /// Print the manifest as JSON on stdout.
    #[arg(long)]
    pub json: bool,

    /// Where the artifact is kept (as for `catwalk serve`).
    #[arg(long, env = "CATWALK_STATE_DIR")]
    pub state_dir: Option<PathBuf>,

    /// A directory the smoke test's guest is granted, `HOST::GUEST[:ro|:rw]` (repeatable).
    #[arg(long = "dir", value_name = "HOST::GUEST[:ro|:rw]", value_parser = crate::backend::wasi::policy::parse_dir)]
    pub dirs: Vec<crate::backend::wasi::policy::DirGrant>,

    /// A variable for the smoke test's guest, `KEY=VALUE` (repeatable).
    #[arg(long = "env", value_name = "KEY=VALUE", value_parser = parse_key_value)]
    pub env: Vec<(String, Option<String>)>,

    /// The package's arguments for the smoke test (as `catwalk serve --package SPEC -- ARGS` gives them).
    #[arg(last = true, value_name = "ARGS")]
    pub args: Vec<String>,
}

#[derive(Debug, Clone, Parser)]
pub struct ServeArgs {
    /// npm package to serve (`npx -y <package>`, installed once and started from its bin).
    #[arg(long, env = "MCP_PACKAGE", value_name = "SPEC")]
    pub package: Option<String>,

    /// Port to listen on.
    #[arg(long, env = "PORT", default_value_t = 8080)]
    pub port: u16,

    /// Address to bind. Loopback by default; a container binds `::` (all interfaces, IPv4 and IPv6).
    #[arg(long, env = "CATWALK_BIND", default_value = "127.0.0.1")]
    pub bind: IpAddr,

    /// `per-session`: a server process per MCP session (full isolation and routing; the default).
    /// `shared`: one supervised process for every session (least memory).
    #[arg(long, env = "CATWALK_MODE", value_enum, default_value_t = Mode::PerSession)]
    pub mode: Mode,

    /// Instances started ahead of need, so that a new session takes one that is already running instead of
    /// waiting for a start: server processes in per-session mode (Node takes a few hundred ms; each costs one
    /// idle server's memory; tenants' processes start on demand), and guests of every WASI server, tenants'
    /// too (~100 KiB each, started on CPU nobody else wants; at most 64 in the process). 0 starts every
    /// instance on demand.
    #[arg(long, env = "CATWALK_SPARE", default_value_t = 1)]
    pub spare: usize,

    /// Threads serving HTTP and the sessions (and guests' first milliseconds of CPU per message); default: one
    /// per two cores, at least one. Fewer leave more of the machine to the servers catwalk runs, and a call's
    /// work stays on one thread: on 2 cores, 1 thread took 15-20% less CPU per call than 2 and kept another
    /// tenant's p99 beside a flood about half as high; 2 served a flood of CPU-bound guests 10-20% faster
    /// (`bench/README.md`).
    #[arg(long, env = "CATWALK_WORKERS", default_value_t = default_workers())]
    pub workers: usize,

    /// Which of catwalk's environment variables the server gets: `*` (all but catwalk's own configuration)
    /// or a comma-separated list of names.
    #[arg(
        long,
        env = "CATWALK_PASS_ENV",
        default_value = "*",
        value_name = "NAMES"
    )]
    pub pass_env: String,

    /// A variable for the server (repeatable): `KEY=VALUE`, or `KEY` to pass that one variable of catwalk's
    /// own environment. A WASI guest gets only these.
    #[arg(long = "env", value_name = "KEY[=VALUE]", value_parser = parse_key_value)]
    pub env: Vec<(String, Option<String>)>,

    /// Extra allowed Host names (comma-separated; `*` for any). Loopback names are always allowed.
    #[arg(
        long,
        env = "CATWALK_ALLOWED_HOSTS",
        value_delimiter = ',',
        value_name = "HOSTS"
    )]
    pub allowed_hosts: Vec<String>,

    /// Extra allowed Origins, like `https://app.example.com` (comma-separated; `*` for any).
    #[arg(
        long,
        env = "CATWALK_ALLOWED_ORIGINS",
        value_delimiter = ',',
        value_name = "ORIGINS"
    )]
    pub allowed_origins: Vec<String>,

    /// Largest request body and largest message line from a server, in bytes.
    #[arg(long, env = "CATWALK_MAX_MESSAGE_BYTES", default_value = "4MiB", value_parser = crate::backend::wasi::policy::parse_size)]
    pub max_message_bytes: usize,

    /// Most sessions open at once; more get 503.
    #[arg(long, env = "CATWALK_MAX_SESSIONS", default_value_t = 256)]
    pub max_sessions: usize,

    /// On a machine of many tenants: requests a tenant may have in progress at once (until their response
    /// starts); more wait their turn, so one tenant's flood does not queue in front of the others. Default:
    /// twice the cores, at least 4. A tenant's `limits.max_inflight` overrides it.
    #[arg(long, env = "CATWALK_MAX_INFLIGHT", default_value_t = crate::tenants::default_max_inflight())]
    pub max_inflight: usize,

    /// On a machine of many tenants: variables of catwalk's own environment that every tenant's child
    /// processes get too (comma-separated names), for the machine's trust store or proxy. Only CA paths by
    /// default; a proxy URL can carry the operator's credentials, so it is passed only when named here.
    #[arg(
        long,
        env = "CATWALK_TENANT_ENV",
        value_delimiter = ',',
        default_value = "NODE_EXTRA_CA_CERTS,SSL_CERT_FILE,SSL_CERT_DIR",
        value_name = "NAMES"
    )]
    pub tenant_env: Vec<String>,

    /// Sessions with no client activity for this long are ended (e.g. `30m`, `90s`).
    #[arg(long, env = "CATWALK_SESSION_TTL", default_value = "30m", value_parser = parse_duration)]
    pub session_ttl: Duration,

    /// A request the server has not answered after this long gets an error (e.g. `5m`, `500ms`).
    #[arg(long, env = "CATWALK_REQUEST_TIMEOUT", default_value = "5m", value_parser = parse_duration)]
    pub request_timeout: Duration,

    /// On SIGTERM, how long in-flight requests may take before every server is stopped.
    #[arg(long, env = "CATWALK_DRAIN_TIMEOUT", default_value = "10s", value_parser = parse_duration)]
    pub drain_timeout: Duration,

    /// After closing a server's stdin (and again after SIGTERM), how long to wait before escalating.
    #[arg(long, env = "CATWALK_STOP_GRACE", default_value = "2s", value_parser = parse_duration)]
    pub stop_grace: Duration,

    /// Where catwalk keeps installed packages, compiled modules and tenants' dirs. Default:
    /// `$XDG_CACHE_HOME/catwalk` or `~/.cache/catwalk`; `/var/lib/catwalk` for a tenants file run as root.
    #[arg(long, env = "CATWALK_STATE_DIR")]
    pub state_dir: Option<PathBuf>,

    /// Log format.
    #[arg(long, env = "CATWALK_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,

    /// A WASI MCP server to run sandboxed: a `wasm32-wasip1` module or a `wasm32-wasip2` component.
    #[arg(long, env = "CATWALK_WASM", value_name = "FILE")]
    pub wasm: Option<PathBuf>,

    /// A directory granted to the WASI guest, `HOST_PATH::GUEST_PATH[:ro|:rw]` (read-only by default;
    /// repeatable).
    #[arg(long = "dir", value_name = "HOST::GUEST[:ro|:rw]", value_parser = crate::backend::wasi::policy::parse_dir)]
    pub dirs: Vec<crate::backend::wasi::policy::DirGrant>,

    /// An address the WASI guest may open TCP connections to, `IP:PORT` or `IP:*` (repeatable; a
    /// `wasm32-wasip2` component only: modules have no sockets). Nothing else is reachable, and names are
    /// not looked up.
    #[arg(long = "net", value_name = "IP:PORT", value_parser = crate::backend::wasi::policy::parse_net)]
    pub net: Vec<crate::backend::wasi::policy::NetGrant>,

    /// Linear memory cap per WASI instance (e.g. `64MiB`).
    #[arg(long, env = "CATWALK_MEMORY", default_value = "64MiB", value_parser = crate::backend::wasi::policy::parse_size)]
    pub memory: usize,

    /// Execution time a WASI guest may spend on one request before it is stopped (e.g. `1s`, `500ms`).
    #[arg(long, env = "CATWALK_CPU_BUDGET", default_value = "1s", value_parser = parse_duration)]
    pub cpu_budget: Duration,

    /// stderr bytes logged per WASI instance; the rest is dropped.
    #[arg(long, env = "CATWALK_MAX_LOG_BYTES", default_value = "1MiB", value_parser = crate::backend::wasi::policy::parse_size)]
    pub max_log_bytes: usize,

    /// A tenants file: many tenants on this machine, each on `/t/{id}/mcp` with its own server, env, grants,
    /// limits and tokens (see `tenants::file` for the schema). Not with a single server's flags.
    #[arg(long, env = "CATWALK_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,

    /// Turns on the admin API (`/admin/tenants`): the hex SHA-256 of its bearer token.
    #[arg(long, env = "CATWALK_ADMIN_TOKEN_SHA256", value_name = "HEX")]
    pub admin_token_sha256: Option<String>,

    /// A catalog of WASI builds of npm packages (a TOML file or an https:// URL; see `tenants::catalog`): a
    /// package listed there runs sandboxed instead of through npx.
    #[arg(long, env = "CATWALK_CATALOG", value_name = "FILE|URL")]
    pub catalog: Option<String>,

    /// For `--package`: `auto` (its WASI build when the catalog lists one, else npx), `npx`, or `wasi` (the
    /// WASI build or fail).
    #[arg(long, env = "CATWALK_SANDBOX", value_enum, default_value_t = Sandbox::Auto)]
    pub sandbox: Sandbox,

    /// This machine's id among the app's machines (Fly sets `FLY_MACHINE_ID`): session ids carry it, and a
    /// request for another machine's session is answered with `fly-replay` so Fly's proxy sends it there.
    #[arg(long, env = "FLY_MACHINE_ID", value_name = "ID")]
    pub machine_id: Option<String>,

    /// The catwalk binary that confines tenants' children (`catwalk confine`); this binary by default.
    #[arg(long, hide = true, value_name = "FILE")]
    pub helper: Option<PathBuf>,

    /// The stdio server command and its arguments (instead of `--package`).
    #[arg(last = true, value_name = "COMMAND")]
    pub command: Vec<OsString>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Mode {
    PerSession,
    Shared,
}

/// How a package is run when a catalog may have a WASI build of it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, ValueEnum)]
pub enum Sandbox {
    /// The WASI build when the catalog lists one, otherwise npx.
    #[default]
    Auto,
    /// Always npx.
    Npx,
    /// The WASI build: the catalog's, or the package packed by catwalk (`catwalk pack`) on first use; if
    /// neither can be had, catwalk does not start (the error says why): the package never runs outside the
    /// sandbox.
    Wasi,
    /// As `wasi`, but a package that cannot be packed runs through npx (with a warning saying why).
    WasiOrNpx,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

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
    /// The package's arguments (`--package SPEC -- ARGS`).
    pub package_args: Vec<String>,
    pub max_inflight: usize,
    /// This machine's id, in its session ids (`--machine-id`).
    pub machine_id: Option<Arc<str>>,
    /// What of catwalk's environment every tenant's children get (`--tenant-env`).
    pub tenant_env: Vec<(OsString, OsString)>,
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
                let valid = id.len() <= 64 && id.bytes().all(|b| b.is_ascii_alphanumeric());
                valid.then_some(id).ok_or(ConfigError::Invalid {
                    flag: "machine-id",
                    problem: "must be 1 to 64 letters and digits".into(),
                })
            })
            .transpose()?;
        for (flag, d) in [
            ("session-ttl", self.session_ttl),
            ("request-timeout", self.request_timeout),
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
            log_format: self.log_format,
        })
    }
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

fn parse_key_value(s: &str) -> Result<(String, Option<String>), String> {
    match s.split_once('=') {
        Some((k, v)) if !k.is_empty() => Ok((k.to_owned(), Some(v.to_owned()))),
        None if !s.is_empty() => Ok((s.to_owned(), None)),
        _ => Err("expected KEY=VALUE or KEY".to_owned()),
    }
}

/// `500ms`, `30s`, `5m`, `1h`, or a bare number of seconds.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (number, unit) = s.split_at(split);
    let n: u64 = number
        .parse()
        .map_err(|_| format!("{s:?} is not a duration like 500ms, 30s, 5m or 1h"))?;
    let per_unit = match unit.trim() {
        "ms" => Duration::from_millis(1),
        "" | "s" => Duration::from_secs(1),
        "m" => Duration::from_secs(60),
        "h" => Duration::from_secs(3600),
        _ => return Err(format!("{s:?} is not a duration like 500ms, 30s, 5m or 1h")),
    };
    per_unit
        .checked_mul(u32::try_from(n).map_err(|_| format!("{s:?} is too long"))?)
        .ok_or("too long".into())
}

/// One per two cores, at least one.
fn default_workers() -> usize {
    std::thread::available_parallelism().map_or(1, |cores| (cores.get() / 2).max(1))
}

#[cfg(test)]
mod tests {
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

    #[test]
    fn durations_parse() {
        assert_eq!(parse_duration("500ms").unwrap(), Duration::from_millis(500));
        assert_eq!(parse_duration("5m").unwrap(), Duration::from_secs(300));
        assert_eq!(parse_duration("7").unwrap(), Duration::from_secs(7));
        assert!(parse_duration("5 parsecs").is_err());
        assert!(parse_duration("99999999999h").is_err());
    }
}
