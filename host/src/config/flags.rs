//! The command line as clap reads it: `catwalk serve`'s flags (each also an env var), `catwalk pack`'s, and
//! the hidden `catwalk confine`. Raw here; [`super::Config`] is what they validate into.

use std::ffi::OsString;
use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Parser, Subcommand, ValueEnum};

use crate::policy::egress::{Grant, Pin};
use crate::policy::packages::Verify;
use crate::vocab::{Mode, Sandbox, parse_duration, parse_size};

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

    /// Resolve the spec again and pack what it resolves to now, even if it was packed and pinned before (a
    /// newer version may have been published).
    #[arg(long)]
    pub refresh: bool,

    /// What the package must prove before it is packed (as for `catwalk serve`).
    #[command(flatten)]
    pub verify: VerifyArgs,

    /// Print the manifest as JSON on stdout.
    #[arg(long)]
    pub json: bool,

    /// Where the artifact is kept (as for `catwalk serve`).
    #[arg(long, env = "CATWALK_STATE_DIR")]
    pub state_dir: Option<PathBuf>,

    /// A directory the smoke test's guest is granted, `HOST::GUEST[:ro|:rw]` (repeatable).
    #[arg(long = "dir", value_name = "HOST::GUEST[:ro|:rw]", value_parser = crate::policy::grants::parse_dir)]
    pub dirs: Vec<crate::policy::grants::DirGrant>,

    /// A variable for the smoke test's guest, `KEY=VALUE` (repeatable).
    #[arg(long = "env", value_name = "KEY=VALUE", value_parser = parse_key_value)]
    pub env: Vec<(String, Option<String>)>,

    /// The package's arguments (as `catwalk serve --package SPEC -- ARGS` gives them): the smoke test runs with
    /// them, and the snapshot through the package's start is taken for them.
    #[arg(last = true, value_name = "ARGS")]
    pub args: Vec<String>,
}

/// What an npm package must prove before anything of it runs (`catwalk serve` and `catwalk pack`).
#[derive(Debug, Clone, clap::Args)]
pub struct VerifyArgs {
    /// `signatures` (the registry's signature on every package of its tree; any provenance published,
    /// verified), `provenance` (and a verified provenance attestation for the package itself), or `off`.
    #[arg(long, env = "CATWALK_VERIFY", value_enum, default_value_t = Verify::Signatures)]
    pub verify: Verify,

    /// Accept only packages whose provenance names one of these source repositories (`github.com/owner/*`,
    /// comma-separated); implies `--verify provenance`.
    #[arg(
        long = "verify-from",
        env = "CATWALK_VERIFY_FROM",
        value_name = "REPO",
        value_delimiter = ','
    )]
    pub verify_from: Vec<String>,
}

impl VerifyArgs {
    /// The policy these flags give, or why `--verify-from` gives none.
    pub fn policy(&self) -> Result<crate::policy::packages::PackagePolicy, String> {
        crate::policy::packages::PackagePolicy::new(self.verify, self.verify_from.clone())
    }
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
    #[arg(long, env = "CATWALK_MAX_MESSAGE_BYTES", default_value = "4MiB", value_parser = parse_size)]
    pub max_message_bytes: usize,

    /// Most sessions open at once; more get 503.
    #[arg(long, env = "CATWALK_MAX_SESSIONS", default_value_t = 256)]
    pub max_sessions: usize,

    /// Connections open at once; more are shed at once (503). Default: what the open-file limit (raised to its
    /// hard limit at start) leaves room for after 256, between 64 and 10,000.
    #[arg(long, env = "CATWALK_MAX_CONNECTIONS")]
    pub max_connections: Option<usize>,

    /// Connections one client address may hold; more are shed. Default: an eighth of --max-connections, at least
    /// 16. Behind a proxy (whose few addresses carry every client) raise it, or give 0 for no cap.
    #[arg(long, env = "CATWALK_MAX_CONNECTIONS_PER_IP")]
    pub max_connections_per_ip: Option<usize>,

    /// A request head must arrive whole within this long of its first byte (a deadline a slow client cannot
    /// stretch).
    #[arg(long, env = "CATWALK_HEADER_TIMEOUT", default_value = "10s", value_parser = parse_duration)]
    pub header_timeout: Duration,

    /// A request body must arrive whole within this long of its head.
    #[arg(long, env = "CATWALK_BODY_TIMEOUT", default_value = "60s", value_parser = parse_duration)]
    pub body_timeout: Duration,

    /// A connection with no request in progress is closed after this long (a response in progress, such as an
    /// SSE stream, is never idle).
    #[arg(long, env = "CATWALK_IDLE_TIMEOUT", default_value = "60s", value_parser = parse_duration)]
    pub idle_timeout: Duration,

    /// On a machine of many tenants: requests a tenant may have in progress at once (until their response
    /// starts); more wait their turn, so one tenant's flood does not queue in front of the others. Default:
    /// twice the cores, at least 4. A tenant's `limits.max_inflight` overrides it.
    #[arg(long, env = "CATWALK_MAX_INFLIGHT", default_value_t = crate::policy::limits::default_max_inflight())]
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

    /// When a tenant is placed on another machine (`PUT /admin/placement`), how long its open sessions here
    /// go on before they are ended; new sessions go to its new machine at once.
    #[arg(long, env = "CATWALK_MOVE_DEADLINE", default_value = "10m", value_parser = parse_duration)]
    pub move_deadline: Duration,

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
    #[arg(long = "dir", value_name = "HOST::GUEST[:ro|:rw]", value_parser = crate::policy::grants::parse_dir)]
    pub dirs: Vec<crate::policy::grants::DirGrant>,

    /// An address the WASI guest may open TCP connections to, `IP:PORT` or `IP:*` (repeatable; a
    /// `wasm32-wasip2` component only: modules have no sockets). Nothing else is reachable, and names are
    /// not looked up.
    #[arg(long = "net", value_name = "IP:PORT", value_parser = crate::policy::grants::parse_net)]
    pub net: Vec<crate::policy::grants::NetGrant>,

    /// A host the sandboxed server may send HTTP(S) requests to (repeatable; comma-separated in the env):
    /// `https://api.github.com`, `api.github.com` (HTTPS on 443), `https://*.slack.com`, `api.example.com:8443`,
    /// `http://10.0.0.0/8` (addresses only where named). None: no requests at all.
    #[arg(long = "egress", env = "CATWALK_EGRESS", value_delimiter = ',', value_name = "[SCHEME://]HOST[:PORT]", value_parser = Grant::parse)]
    pub egress: Vec<Grant>,

    /// A name pinned to an address for egress, `NAME:PORT=IP:PORT`, as curl's `--connect-to` (repeatable):
    /// no lookup, and the address is allowed because it is named here.
    #[arg(long = "egress-resolve", env = "CATWALK_EGRESS_RESOLVE", value_delimiter = ',', value_name = "NAME:PORT=IP:PORT", value_parser = Pin::parse)]
    pub egress_resolve: Vec<Pin>,

    /// A name pinned to an address for catwalk's own fetches, `NAME:PORT=IP:PORT` (repeatable): OAuth issuers'
    /// metadata and keys, and clients' metadata documents. Every other name is resolved and checked as a
    /// tenant's egress is: no private, loopback or metadata address.
    #[arg(long = "oauth-resolve", env = "CATWALK_OAUTH_RESOLVE", value_delimiter = ',', value_name = "NAME:PORT=IP:PORT", value_parser = Pin::parse)]
    pub oauth_resolve: Vec<Pin>,

    /// The audit trail, one JSON line per call and per refusal (see `catwalk::audit`): `stdout`, or a dir of
    /// files `audit.YYYY-MM-DD.jsonl`, a new one each day. Off unless given.
    #[arg(
        long = "audit-log",
        env = "CATWALK_AUDIT_LOG",
        value_name = "stdout|DIR"
    )]
    pub audit_log: Option<String>,

    /// Days of audit files kept in `--audit-log DIR`.
    #[arg(
        long = "audit-keep-days",
        env = "CATWALK_AUDIT_KEEP_DAYS",
        default_value_t = 30,
        value_name = "N"
    )]
    pub audit_keep_days: usize,

    /// A PEM file of CA certificates egress trusts besides the machine's bundle (repeatable); catwalk's own
    /// OAuth fetches trust them too.
    #[arg(
        long = "egress-ca",
        env = "CATWALK_EGRESS_CA",
        value_delimiter = ',',
        value_name = "FILE"
    )]
    pub egress_ca: Vec<PathBuf>,

    /// A secret bound to hosts (repeatable): the sandboxed server's env holds a placeholder for it, which
    /// catwalk swaps for the value only in header values of HTTPS requests to those hosts. `NAME@HOST[,HOST]`
    /// takes the value from catwalk's own variable NAME (which then does not reach the server: prefer this, a
    /// command line can be read by other users); `NAME=VALUE@HOST[,HOST]` gives it here.
    #[arg(long = "secret", value_name = "NAME[=VALUE]@HOST[,HOST]")]
    pub secrets: Vec<String>,

    /// How long an outbound request may wait for its response to start.
    #[arg(long, env = "CATWALK_EGRESS_TIMEOUT", default_value = "60s", value_parser = parse_duration)]
    pub egress_timeout: Duration,

    /// How long an outbound response may go without sending anything, and a connection may take to open.
    #[arg(long, env = "CATWALK_EGRESS_IDLE_TIMEOUT", default_value = "60s", value_parser = parse_duration)]
    pub egress_idle_timeout: Duration,

    /// The largest outbound response body a server may receive.
    #[arg(long, env = "CATWALK_EGRESS_MAX_RESPONSE", default_value = "32MiB", value_parser = parse_size)]
    pub egress_max_response: usize,

    /// Outbound requests one instance may have in flight (as many more wait; past that they are refused).
    #[arg(long, env = "CATWALK_EGRESS_MAX_IN_FLIGHT", default_value_t = 32)]
    pub egress_max_in_flight: usize,

    /// Linear memory cap per WASI instance (e.g. `64MiB`).
    #[arg(long, env = "CATWALK_MEMORY", default_value = "64MiB", value_parser = parse_size)]
    pub memory: usize,

    /// Execution time a WASI guest may spend on one request before it is stopped (e.g. `1s`, `500ms`).
    #[arg(long, env = "CATWALK_CPU_BUDGET", default_value = "1s", value_parser = parse_duration)]
    pub cpu_budget: Duration,

    /// stderr bytes logged per WASI instance; the rest is dropped.
    #[arg(long, env = "CATWALK_MAX_LOG_BYTES", default_value = "1MiB", value_parser = parse_size)]
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

    /// What npm packages must prove before they run; a tenant's `verify` and `from` override it.
    #[command(flatten)]
    pub verify: VerifyArgs,

    /// Resolve every package spec again at start, instead of installing the version pinned in the state dir
    /// when it was first resolved (the new version is verified and pinned in turn).
    #[arg(long, env = "CATWALK_REFRESH")]
    pub refresh: bool,

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
pub enum LogFormat {
    Text,
    Json,
}

fn parse_key_value(s: &str) -> Result<(String, Option<String>), String> {
    match s.split_once('=') {
        Some((k, v)) if !k.is_empty() => Ok((k.to_owned(), Some(v.to_owned()))),
        None if !s.is_empty() => Ok((s.to_owned(), None)),
        _ => Err("expected KEY=VALUE or KEY".to_owned()),
    }
}

/// One per two cores, at least one.
fn default_workers() -> usize {
    std::thread::available_parallelism().map_or(1, |cores| (cores.get() / 2).max(1))
}
