//! The HTTP front end: where requests enter.
//!
//! - [`streamable`]: Streamable HTTP (2025 era) on `/mcp`: POST, GET stream, DELETE.
//! - [`modern`]: the 2026-07-28 era on the same URL: stateless requests, `subscriptions/listen`.
//! - [`sse`]: legacy HTTP+SSE (2024-11-05) on `/sse` and `/message`.
//! - [`guard`]: Origin/Host validation in front of both.
//! - [`health`]: `/healthz` and `/readyz`.
//! - [`error`]: every error answer catwalk writes.

pub mod admin;
pub mod auth;
pub mod error;
pub mod events;
pub mod guard;
pub mod health;
pub mod modern;
pub mod replay;
pub mod sse;
pub mod streamable;

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::{HeaderMap, header};
use axum::routing::{get, post};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio_util::sync::CancellationToken;

use crate::backend::Launcher;
use crate::metrics::TenantMetrics;
use crate::session::{Limits, Owner, Registry, Session, Transport};
use crate::tenants::Tenants;
use error::HttpError;

/// The protocol revisions catwalk serves over the 2025-era transports.
pub const SUPPORTED_VERSIONS: &[&str] = &["2024-11-05", "2025-03-26", "2025-06-18", "2025-11-25"];

/// One tenant, as the front end serves it.
#[derive(Debug)]
pub struct App {
    /// The tenant's id (empty in the single-tenant flow).
    pub tenant: Arc<str>,
    pub metrics: Arc<TenantMetrics>,
    pub registry: Arc<Registry>,
    /// The tenant's own session cap and its size, under catwalk's.
    pub places: Option<(Arc<Semaphore>, usize)>,
    /// Requests of this tenant in progress at once (until their response starts); more wait their turn, so
    /// that a tenant's flood queues behind itself instead of in front of every other tenant. `None`: no limit
    /// (the single-tenant flow has no one to be fair to).
    pub turns: Option<Arc<Semaphore>>,
    /// SHA-256 of each bearer token that may use this tenant; empty: no token needed.
    pub tokens: Vec<[u8; 32]>,
    pub launcher: Launcher,
    pub limits: Arc<Limits>,
    pub max_body_bytes: usize,
    pub keep_alive: Duration,
    /// How long a single request may wait for its answer to come back as plain JSON before the reply
    /// becomes an SSE stream (which can then carry progress, logging and server requests).
    pub json_window: Duration,
    pub shutdown: CancellationToken,
    /// Initialized server processes kept between 2026-07-28 requests (process servers only).
    pub modern: Arc<modern::Pool>,
}

/// A request's tenant and the token it presented (its SHA-256): set by [`auth::scope`] before any handler runs.
#[derive(Debug, Clone)]
pub struct Scope {
    pub app: Arc<App>,
    pub token: Option<[u8; 32]>,
}

impl Scope {
    fn owner(&self) -> Owner {
        Owner {
            tenant: self.app.tenant.clone(),
            token: self.token,
        }
    }

    /// Whether `session` belongs to this caller: same tenant, same token.
    fn owns(&self, session: &Session) -> bool {
        session.owner == self.owner()
    }
}

/// Everything catwalk serves: every tenant's MCP endpoints (behind the Origin/Host guard and the tenant's
/// authentication), protected-resource metadata, the admin API when configured, and health endpoints.
pub fn router(
    tenants: Arc<Tenants>,
    policy: Arc<guard::OriginPolicy>,
    admin: Option<[u8; 32]>,
    machine: Option<Arc<str>>,
) -> Router {
    let mcp = |prefix: &str| {
        Router::new()
            .route(
                &format!("{prefix}/mcp"),
                post(streamable::post)
                    .get(streamable::get)
                    .delete(streamable::delete),
            )
            .route(&format!("{prefix}/sse"), get(sse::connect))
            .route(&format!("{prefix}/message"), post(sse::message))
            .route(&format!("{prefix}/messages"), post(sse::message))
    };
    // Each layer checks Origin and Host first (the guard), before anything else sees the request: one layer
    // less on every request than a guard of its own.
    let mut endpoints = if tenants.multi {
        mcp("/t/{tenant}")
    } else {
        mcp("")
    }
    .route_layer(axum::middleware::from_fn_with_state(
        (tenants.clone(), policy.clone()),
        auth::scope,
    ));
    if let Some(machine) = machine {
        // Before authentication: the machine that holds the session checks the token.
        endpoints = endpoints.route_layer(axum::middleware::from_fn_with_state(
            (machine, policy),
            replay::replay,
        ));
    }
    let endpoints = endpoints.layer(DefaultBodyLimit::max(tenants.host.max_body_bytes));
    let mut router = Router::new()
        .merge(endpoints)
        .route(
            "/.well-known/oauth-protected-resource/t/{tenant}/mcp",
            get(auth::metadata),
        )
        .route("/healthz", get(health::healthz))
        .route("/readyz", get(health::readyz))
        .route("/metrics", get(auth::metrics).layer(axum::Extension(admin)));
    if let Some(token) = admin {
        router = router.merge(admin::router(token));
    }
    router.with_state(tenants)
}

/// A place under catwalk's instance cap and the tenant's, held while a session (or a 2026-07-28 request's
/// instance) lives.
fn reserve_places(app: &App) -> Result<Vec<OwnedSemaphorePermit>, HttpError> {
    if app.shutdown.is_cancelled() {
        return Err(HttpError::Unavailable("catwalk is shutting down".into()));
    }
    let mut permits = Vec::with_capacity(2);
    if let Some((places, max)) = &app.places {
        permits.push(places.clone().try_acquire_owned().map_err(|_| {
            HttpError::Unavailable(format!(
                "this tenant has its maximum of {max} sessions open; try again later"
            ))
        })?);
    }
    permits.push(app.registry.reserve().ok_or_else(|| {
        HttpError::Unavailable(format!(
            "catwalk is serving its maximum of {} sessions; try again later",
            app.registry.max_sessions()
        ))
    })?);
    Ok(permits)
}

/// Starts (or takes) an instance for the log's `tag`, counted in the tenant's metrics.
async fn launch(
    app: &App,
    tag: Arc<str>,
) -> Result<crate::backend::Instance, crate::backend::LaunchError> {
    let launched = app.launcher.launch(tag).await;
    // A shared server's process is counted by its supervisor, not per session.
    if !matches!(app.launcher, Launcher::Shared(_)) {
        let outcome = match &launched {
            Ok(instance) if instance.spare => "spare",
            Ok(_) => "ok",
            Err(_) => "error",
        };
        app.metrics.instance_started(app.launcher.kind(), outcome);
    }
    launched
}

/// Starts a server instance and a session on it, within catwalk's session cap and the tenant's.
async fn create_session(scope: &Scope, transport: Transport) -> Result<Arc<Session>, HttpError> {
    let app = &scope.app;
    let permits = reserve_places(app)?;
    let id = app.registry.new_id();
    // The log's name for the instance: the session, after its tenant's id if it has one.
    let tag: Arc<str> = match &*app.tenant {
        "" => id.as_str().into(),
        tenant => format!("{tenant}/{id}").into(),
    };
    let per_instance = !matches!(app.launcher, Launcher::Shared(_));
    let instance = launch(app, tag).await.map_err(|e| {
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
        scope.owner(),
        instance,
        app.limits.clone(),
        permits,
        app.registry.clone(),
        per_instance.then(|| app.metrics.clone()),
    );
    app.registry.insert(session.clone());
    tracing::debug!(session = %session.id, ?transport, "session started");
    Ok(session)
}

/// Whether an `Accept` header lists every one of `wanted` (media ranges with parameters allowed).
fn accepts(headers: &HeaderMap, wanted: &[&str]) -> bool {
    let listed = || {
        headers
            .get_all(header::ACCEPT)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .map(|v| v.split(';').next().unwrap_or("").trim())
    };
    wanted
        .iter()
        .all(|w| listed().any(|l| l.eq_ignore_ascii_case(w)))
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
