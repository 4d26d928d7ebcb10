//! Sessions across the machines of one app, through Fly's proxy rather than a router of our own.
//!
//! With `--machine-id` (Fly sets `FLY_MACHINE_ID`), every session id starts with the id of the machine that
//! holds it. A request that names another machine's session (in `Mcp-Session-Id`, or a legacy `/message`'s
//! `sessionId`) is answered with `fly-replay: instance=<that machine>`, and Fly's proxy replays it there. If that
//! machine cannot take it (stopped, gone), the proxy sends the request back here (`fallback=force_self`) with
//! `fly-replay-failed`; a request that was replayed once already carries `fly-replay-src`. Either way it is not
//! replayed again: it goes on, and the session is unknown here (404), so the client starts a new one.
//! Without Fly in front, the answer is a plain 421 Misdirected Request with a JSON-RPC error.
//!
//! Tenants are routed the same way, by where the control plane placed them (`PUT /admin/placement`): a request
//! that names no session (a new session, a 2026-07-28 request, protected-resource metadata) for a tenant placed
//! on another machine is replayed there. A session stays on the machine that holds it, so a moved tenant's open
//! sessions go on where they are. A tenant placed elsewhere whose machine could not take the request (the proxy
//! sent it back) gets 503 with `Retry-After`; a tenant neither here nor placed anywhere is unknown (404).

use std::collections::HashMap;
use std::sync::Arc;

use axum::extract::{Query, Request, State};
use axum::http::{HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::Tenants;
use super::error::HttpError;
use super::guard::OriginPolicy;
use crate::session::SessionId;

/// How long Fly's proxy tries the other machine before sending the request back.
const REPLAY_TIMEOUT: &str = "5s";

/// Checks Origin and Host first ([`OriginPolicy`]): a request refused here is not replayed anywhere.
pub async fn replay(
    State((tenants, machine, policy)): State<(Arc<Tenants>, Arc<str>, Arc<OriginPolicy>)>,
    request: Request,
    next: Next,
) -> Response {
    let headers = request.headers();
    if let Err(refused) = policy.check(headers) {
        return refused.into_response();
    }
    let replayed =
        headers.contains_key("fly-replay-src") || headers.contains_key("fly-replay-failed");
    let tenant = tenant_of(request.uri().path());
    let (owner, what) = match session_named(&request) {
        Some(id) => (
            SessionId::machine_of(&id)
                .filter(|owner| *owner != &*machine && crate::vocab::valid_machine_id(owner))
                .map(str::to_owned),
            "session",
        ),
        None => (tenant.and_then(|id| tenants.placed_elsewhere(id)), "tenant"),
    };
    match owner {
        Some(owner) if !replayed => {
            let mut response = HttpError::rpc(
                StatusCode::MISDIRECTED_REQUEST,
                crate::jsonrpc::code::INVALID_REQUEST,
                format!("this {what} lives on machine {owner}; the request is replayed there"),
                None,
            )
            .into_response();
            let value = format!("instance={owner};timeout={REPLAY_TIMEOUT};fallback=force_self");
            if let Ok(value) = HeaderValue::from_str(&value) {
                response.headers_mut().insert("fly-replay", value);
            }
            response
        }
        Some(owner) if what == "tenant" && tenant.is_some_and(|id| tenants.get(id).is_none()) => {
            let mut response = HttpError::Unavailable(format!(
                "this tenant lives on machine {owner}, which could not take the request now; try again"
            ))
            .into_response();
            response
                .headers_mut()
                .insert("retry-after", HeaderValue::from_static("1"));
            response
        }
        _ => next.run(request).await,
    }
}

/// The tenant a path names: `/t/{id}/...` (its MCP and OAuth endpoints), or its protected-resource or
/// authorization-server metadata.
fn tenant_of(path: &str) -> Option<&str> {
    let path = path
        .strip_prefix("/.well-known/oauth-protected-resource")
        .or_else(|| path.strip_prefix("/.well-known/oauth-authorization-server"))
        .unwrap_or(path);
    path.strip_prefix("/t/")?.split('/').next()
}

/// The session id a request names: its `Mcp-Session-Id`, or a legacy message's `sessionId`.
fn session_named(request: &Request) -> Option<String> {
    if let Some(id) = request.headers().get("mcp-session-id") {
        return id.to_str().ok().map(str::to_owned);
    }
    request.uri().query()?;
    Query::<HashMap<String, String>>::try_from_uri(request.uri())
        .ok()?
        .0
        .remove("sessionId")
}

#[cfg(test)]
mod tests {
    use super::tenant_of;

    #[test]
    fn a_tenants_oauth_endpoints_and_metadata_follow_its_placement() {
        for path in [
            "/t/acme/mcp",
            "/t/acme/oauth/token",
            "/t/acme/oauth/authorize",
            "/.well-known/oauth-protected-resource/t/acme/mcp",
            "/.well-known/oauth-authorization-server/t/acme",
        ] {
            assert_eq!(tenant_of(path), Some("acme"), "{path}");
        }
        assert_eq!(tenant_of("/healthz"), None);
    }
}
