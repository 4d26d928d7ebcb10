//! Server instances: what a session talks to. Every backend hands a session the same [`Instance`]: a queue of
//! lines to the server, a queue of events from it, and a way to stop it. The session and HTTP layers never
//! know which backend is behind.
//!
//! - [`process`]: a supervised child process per instance (any command, or an npm package).
//! - [`npm`]: resolves an npm package once, so later instances start from the installed bin, not `npx`.
//! - [`shared`]: one child shared by every session, with JSON-RPC ids rewritten so nothing crosses sessions.
//! - [`wasi`]: a WASI module or component per session, inside catwalk under wasmtime, deny-by-default.

pub use catwalk_core::lines;
pub mod npm;
pub mod process;
pub mod shared;
pub mod spares;
pub mod wasi;

use std::sync::{Arc, OnceLock};

use bytes::Bytes;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

/// What a server instance says, in order. `Exited` is the last event.
#[derive(Debug)]
pub enum ServerEvent {
    /// One JSON-RPC message (an object or a batch), as written.
    Message(Bytes),
    /// A line over the message limit, discarded but for its two ends.
    Oversized {
        len: usize,
        head: Bytes,
        tail: Bytes,
    },
    /// The instance is gone; no more events follow.
    Exited { reason: String },
}

/// One running server as a session sees it.
#[derive(Debug)]
pub struct Instance {
    /// Lines to the server (one JSON-RPC message each, no newline).
    pub to_server: mpsc::Sender<Bytes>,
    pub from_server: mpsc::Receiver<ServerEvent>,
    /// Cancelling it stops the instance; an [`ServerEvent::Exited`] follows.
    pub stop: CancellationToken,
    /// How the log names the instance.
    pub tag: Tag,
    /// Started ahead of need, and taken from the spares.
    pub spare: bool,
}

/// The log's name for an instance: its session (or a shared server's name), or `spare` until a session takes
/// it.
#[derive(Debug, Clone, Default)]
pub struct Tag(Arc<OnceLock<Arc<str>>>);

impl Tag {
    pub fn named(name: Arc<str>) -> Self {
        Self(Arc::new(OnceLock::from(name)))
    }

    /// Names a spare after the session that took it; a tag already named keeps its name.
    pub fn name(&self, name: Arc<str>) {
        let _ = self.0.set(name);
    }
}

impl std::fmt::Display for Tag {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.0.get().map_or("spare", |name| name))
    }
}

/// Why an instance could not be started.
#[derive(Debug, thiserror::Error)]
pub enum LaunchError {
    #[error("could not start the server: {0}")]
    Spawn(#[from] std::io::Error),
    #[error("the shared server is not running: {0}")]
    SharedDown(String),
    #[error("could not start the guest: {0}")]
    Wasi(String),
}

/// How new instances come to be: the per-session or shared backend.
#[derive(Debug, Clone)]
pub enum Launcher {
    /// A fresh child per session.
    PerSession(Arc<npm::CommandSource>),
    /// One supervised child for every session.
    Shared(Arc<shared::SharedServer>),
    /// A WASI instance per session.
    Wasi(Arc<wasi::WasiServer>),
}

impl Launcher {
    /// Starts (or attaches) an instance for the session named by `tag`.
    pub async fn launch(&self, tag: Arc<str>) -> Result<Instance, LaunchError> {
        match self {
            Launcher::PerSession(source) => Ok(source.launch(tag).await?),
            Launcher::Shared(server) => server.attach().await,
            Launcher::Wasi(server) => server.launch(&tag),
        }
    }

    /// The backend's name in metrics.
    pub fn kind(&self) -> &'static str {
        match self {
            Launcher::PerSession(_) => "process",
            Launcher::Shared(_) => "shared",
            Launcher::Wasi(_) => "wasi",
        }
    }

    /// What its server is granted of the network, names only (never a secret's value): for `/readyz` and the
    /// admin API.
    pub fn grants(&self) -> serde_json::Value {
        match self {
            Launcher::Wasi(server) => match server.egress() {
                Some(egress) => crate::egress::describe_grants(egress.policy(), egress.secrets()),
                None => crate::egress::describe_grants(&Default::default(), &[]),
            },
            // Processes in a network namespace of their own have the same grants; elsewhere, none are enforced.
            Launcher::PerSession(source) => {
                source.egress().map_or(serde_json::Value::Null, |egress| {
                    crate::egress::describe_grants(egress, &[])
                })
            }
            Launcher::Shared(server) => server
                .source
                .egress()
                .map_or(serde_json::Value::Null, |egress| {
                    crate::egress::describe_grants(egress, &[])
                }),
        }
    }

    /// The npm package its processes run, as installed and verified (version, signatures, provenance), once
    /// it is: for `/readyz` and the admin API. Packed packages say so in their artifact's manifest.
    pub fn package(&self) -> serde_json::Value {
        let verified = match self {
            Launcher::PerSession(source) => source.verified(),
            Launcher::Shared(server) => server.source.verified(),
            Launcher::Wasi(_) => None,
        };
        verified.map_or(serde_json::Value::Null, |v| {
            serde_json::to_value(v).unwrap_or_default()
        })
    }

    /// Whether a new instance can be started now, and if not, why.
    pub async fn readiness(&self) -> Result<String, String> {
        match self {
            Launcher::PerSession(source) => source.readiness(),
            Launcher::Shared(server) => server.readiness(),
            Launcher::Wasi(server) => Ok(format!("{} ({})", server.name(), server.kind())),
        }
    }
}

/// Takes a tenant's env values out of what its server writes to the log (stderr, stray stdout), so a server
/// that prints its own configuration does not put the tenant's secrets in catwalk's log.
#[derive(Debug, Clone, Default)]
pub struct Redactor(Arc<[String]>);

impl Redactor {
    /// Values shorter than this are left alone: they are not secrets, and hiding them would garble the log.
    const MIN_SECRET: usize = 6;

    pub fn new<'a>(values: impl IntoIterator<Item = &'a str>) -> Self {
        let mut values: Vec<String> = values
            .into_iter()
            .filter(|v| v.len() >= Self::MIN_SECRET)
            .map(str::to_owned)
            .collect();
        // Longest first, so a value that contains another is hidden whole.
        values.sort_by_key(|v| std::cmp::Reverse(v.len()));
        values.dedup();
        Self(values.into())
    }

    /// `text` with every secret replaced by `[redacted]`.
    pub fn apply<'a>(&self, text: &'a str) -> std::borrow::Cow<'a, str> {
        let mut text = std::borrow::Cow::Borrowed(text);
        for secret in self.0.iter() {
            if text.contains(secret.as_str()) {
                text = std::borrow::Cow::Owned(text.replace(secret.as_str(), "[redacted]"));
            }
        }
        text
    }
}
