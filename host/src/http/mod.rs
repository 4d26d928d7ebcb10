//! The HTTP front end: where requests enter.
//!
//! - [`streamable`]: Streamable HTTP (2025 era) on `/mcp`: POST, GET stream, DELETE.
//! - [`sse`]: legacy HTTP+SSE (2024-11-05) on `/sse` and `/message`.
//! - [`guard`]: Origin/Host validation in front of both.
//! - [`health`]: `/healthz` and `/readyz`.
//! - [`error`]: every error answer catwalk writes.

pub mod error;
pub mod events;
pub mod guard;
pub mod health;
pub mod sse;
pub mod streamable;

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::{HeaderMap, header};
use axum::routing::{get, post};
use tokio_util::sync::CancellationToken;

use crate::backend::Launcher;
use crate::session::{Limits, Registry, Session, SessionId, Transport};
use error::HttpError;

/// The protocol revisions catwalk serves over the 2025-era transports.
pub const SUPPORTED_VERSIONS: &[&str] = &["2024-11-05", "2025-03-26", "2025-06-18", "2025-11-25"];

/// What every handler shares.
#[derive(Debug)]
pub struct App {
    pub registry: Arc<Registry>,
    pub launcher: Launcher,
    pub limits: Arc<Limits>,
    pub max_body_bytes: usize,
    pub keep_alive: Duration,
    /// How long a single request may wait for its answer to come back as plain JSON before the reply
    /// becomes an SSE stream (which can then carry progress, logging and server requests).
    pub json_window: Duration,
    pub shutdown: CancellationToken,
}

/// The router for one server: MCP endpoints behind the Origin/Host guard, health endpoints beside.
pub fn router(app: Arc<App>, policy: Arc<guard::OriginPolicy>) -> Router {
    let mcp = Router::new()
        .route(
            "/mcp",
            post(streamable::post)
                .get(streamable::get)
                .delete(streamable::delete),
        )
        .route("/sse", get(sse::connect))
        .route("/message", post(sse::message))
        .route("/messages", post(sse::message))
        .layer(axum::middleware::from_fn_with_state(
            policy,
            guard::validate,
        ))
        .layer(DefaultBodyLimit::max(app.max_body_bytes));
    Router::new()
        .merge(mcp)
        .route("/healthz", get(health::healthz))
        .route("/readyz", get(health::readyz))
        .with_state(app)
}

/// Starts a server instance and a session on it, within the session cap.
async fn create_session(app: &Arc<App>, transport: Transport) -> Result<Arc<Session>, HttpError> {
    if app.shutdown.is_cancelled() {
        return Err(HttpError::Unavailable("catwalk is shutting down".into()));
    }
    let permit = app.registry.reserve().ok_or_else(|| {
        HttpError::Unavailable(format!(
            "catwalk is serving its maximum of {} sessions; try again later",
            app.registry.max_sessions()
        ))
    })?;
    let id = SessionId::generate();
    let instance = app.launcher.launch(id.as_str().into()).await.map_err(|e| {
        tracing::error!(session = %id, "could not start a server instance: {e}");
        HttpError::rpc(
            axum::http::StatusCode::BAD_GATEWAY,
            crate::jsonrpc::code::SERVER_GONE,
            e.to_string(),
            None,
        )
    })?;
    let session = Session::start(
        id,
        transport,
        instance,
        app.limits.clone(),
        permit,
        app.registry.clone(),
    );
    app.registry.insert(session.clone());
    tracing::debug!(session = %session.id, ?transport, "session started");
    Ok(session)
}

/// Whether an `Accept` header lists every one of `wanted` (media ranges with parameters allowed).
fn accepts(headers: &HeaderMap, wanted: &[&str]) -> bool {
    let listed: Vec<String> = headers
        .get_all(header::ACCEPT)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|v| {
            v.split(';')
                .next()
                .unwrap_or("")
                .trim()
                .to_ascii_lowercase()
        })
        .collect();
    wanted.iter().all(|w| listed.iter().any(|l| l == w))
}

/// 400 for an `MCP-Protocol-Version` catwalk does not serve (absent means 2025-03-26).
fn check_version(headers: &HeaderMap) -> Result<(), HttpError> {
    match headers.get("mcp-protocol-version").map(|v| v.to_str()) {
        None => Ok(()),
        Some(Ok(v)) if SUPPORTED_VERSIONS.contains(&v) => Ok(()),
        Some(v) => Err(HttpError::UnsupportedVersion(
            v.unwrap_or("<not text>").chars().take(64).collect(),
        )),
    }
}
