//! The HTTP front end: where requests enter. It routes them, applies the protocol's rules, and turns answers
//! into HTTP; who the tenant is and what it runs is [`crate::tenants`]'s.
//!
//! A request passes, in order:
//! - [`guard`]: Origin/Host validation, before anything else;
//! - [`replay`]: with sessions across machines, a request for another machine's session is sent there;
//! - [`auth`]: its tenant, its bearer token, and one of the tenant's turns;
//! - [`streamable`]: Streamable HTTP (2025 era) on `/mcp`: POST, GET stream, DELETE; it hands a request of the
//!   2026-07-28 era to [`modern`], stateless on the same URL;
//! - [`sse`]: legacy HTTP+SSE (2024-11-05) on `/sse` and `/message`;
//! - [`events`]: SSE framing for every stream; [`error`]: every error answer catwalk writes.
//!
//! Beside them: [`admin`] (the admin API), [`status`] (its page for people), [`health`] (`/healthz`, `/readyz`);
//! below them all, [`server`]
//! accepts connections within their caps and timeouts.

pub mod admin;
pub mod auth;
pub mod error;
pub mod events;
pub mod guard;
pub mod health;
pub mod modern;
pub mod oauth;
pub mod replay;
pub mod server;
pub mod sse;
pub mod status;
pub mod streamable;

use std::sync::Arc;

use crate::audit::Caller;
use crate::jsonrpc::{Kind, Peeked};
use crate::session::{Owner, Session};
use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::{HeaderMap, header};
use axum::routing::{get, post};
use error::HttpError;

/// The protocol revisions catwalk serves over the 2025-era transports.
pub const SUPPORTED_VERSIONS: &[&str] = &["2024-11-05", "2025-03-26", "2025-06-18", "2025-11-25"];

/// One tenant, as this front end serves it.
pub type App = crate::tenants::App<modern::Front>;
/// The tenants being served, with what this front end keeps for each.
pub type Tenants = crate::tenants::Tenants<modern::Front>;

/// A request's tenant and the token it presented (its SHA-256): set by [`auth::scope`] before any handler runs.
#[derive(Debug, Clone)]
pub struct Scope {
    pub app: Arc<App>,
    pub token: Option<[u8; 32]>,
    /// How the audit trail names who presented the token.
    pub subject: Option<Arc<str>>,
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
    let mut metadata = Router::new().route(
        "/.well-known/oauth-protected-resource/t/{tenant}/mcp",
        get(auth::metadata),
    );
    // The authorization server's endpoints check Host, not Origin (browser-based clients call them).
    let any_origin = Arc::new(guard::OriginPolicy {
        origins: vec!["*".into()],
        ..(*policy).clone()
    });
    let mut authorization = oauth::router(tenants.clone(), any_origin.clone());
    if let Some(machine) = machine {
        // Before authentication: the machine that holds the session, or the tenant, checks the token.
        let replay = axum::middleware::from_fn_with_state(
            (tenants.clone(), machine.clone(), policy),
            replay::replay,
        );
        endpoints = endpoints.route_layer(replay.clone());
        metadata = metadata.route_layer(replay);
        authorization = authorization.route_layer(axum::middleware::from_fn_with_state(
            (tenants.clone(), machine, any_origin),
            replay::replay,
        ));
    }
    let endpoints = endpoints.layer(DefaultBodyLimit::max(tenants.host.max_body_bytes));
    let mut router = Router::new()
        .merge(endpoints)
        .merge(metadata)
        .merge(authorization)
        .route("/healthz", get(health::healthz))
        .route("/readyz", get(health::readyz))
        .route("/metrics", get(auth::metrics).layer(axum::Extension(admin)));
    if let Some(token) = admin {
        router = router.merge(admin::router(token));
    }
    // Tests' way to make a handler panic (debug builds only): `x-catwalk-test-panic: 1`.
    #[cfg(debug_assertions)]
    let router = router.layer(axum::middleware::from_fn(error::panic_on_request));
    // A handler that panics anyway fails its own request (500, a JSON-RPC error), never the process.
    router
        .layer(tower_http::catch_panic::CatchPanicLayer::custom(
            error::panicked,
        ))
        .with_state(tenants)
}

/// Takes the tool calls among a POST's `messages` under the tenant's tool rates: 429 past one, for the whole
/// POST (nothing of it is sent).
fn admit_tool_calls(
    scope: &Scope,
    messages: &[Peeked],
    transport: &'static str,
) -> Result<(), HttpError> {
    let app = &scope.app;
    if !app.rates.has_tool_rates() {
        return Ok(());
    }
    for message in messages {
        if message.kind != Kind::Request || message.method() != "tools/call" {
            continue;
        }
        let params = serde_json::from_slice::<serde_json::Value>(&message.bytes)
            .ok()
            .and_then(|mut v| v.get_mut("params").map(serde_json::Value::take));
        let Some(name) = params.as_ref().and_then(|p| p.get("name")?.as_str()) else {
            continue;
        };
        if let Err(limited) = app.admit_tool(name) {
            if let Some(audit) = &app.audit {
                let caller = Caller {
                    subject: scope.subject.clone(),
                    client: None,
                };
                let call = audit.begin(
                    "tools/call",
                    params.as_ref(),
                    caller,
                    transport,
                    message.bytes.len(),
                );
                if let Some(call) = call {
                    call.refused(limited.which.label(), crate::jsonrpc::code::RATE_LIMITED);
                }
            }
            return Err(HttpError::RateLimited(limited));
        }
    }
    Ok(())
}

/// Names the request's span (when traces are on) by the first request of a 2025-era POST.
fn describe_in_trace(messages: &[Peeked], session: &Session) {
    if !crate::traces::enabled() {
        return;
    }
    let Some(first) = messages.iter().find(|m| m.kind == Kind::Request) else {
        return;
    };
    let params = serde_json::from_slice::<serde_json::Value>(&first.bytes)
        .ok()
        .and_then(|mut v| v.get_mut("params").map(serde_json::Value::take));
    crate::traces::describe(
        first.method(),
        params.as_ref(),
        first.id.as_deref().map(|id| id.get()),
        Some(session.id.as_str()),
    );
    if let Some(version) = session.version() {
        crate::traces::attribute("mcp.protocol.version", version);
    }
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
