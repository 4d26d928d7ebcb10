//! Which tenant a request is for, and whether it may use it: the tenant comes from the route (`/t/{id}/...`, or the
//! single tenant on `/mcp`), the token from `Authorization: Bearer` (checked against the tenant's SHA-256 hashes in
//! constant time). A 401 points at the tenant's protected-resource metadata (RFC 9728). Tokens in the query string
//! are refused: URLs end up in logs.

use std::collections::HashMap;
use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, Query, Request, State};
use axum::http::{HeaderMap, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde_json::json;

use super::Scope;
use super::error::HttpError;
use crate::tenants::{Tenants, token_matches};

/// Resolves the request's [`Scope`] before its handler runs.
pub async fn scope(
    State(tenants): State<Arc<Tenants>>,
    mut request: Request,
    next: Next,
) -> Result<Response, HttpError> {
    let token_in_query = request.uri().query().is_some_and(|_| {
        Query::<HashMap<String, String>>::try_from_uri(request.uri())
            .is_ok_and(|query| query.keys().any(|k| k.eq_ignore_ascii_case("access_token")))
    });
    if token_in_query {
        return Err(HttpError::BadRequest(
            "tokens are not accepted in the query string; send Authorization: Bearer <token>"
                .into(),
        ));
    }
    let id = match tenants.multi {
        true => request
            .uri()
            .path()
            .strip_prefix("/t/")
            .and_then(|rest| rest.split('/').next())
            .unwrap_or_default(),
        false => "",
    };
    let app = tenants.get(id).ok_or(HttpError::UnknownTenant)?;
    let token = if app.tokens.is_empty() {
        None
    } else {
        let presented = bearer(request.headers()).unwrap_or_default();
        match token_matches(presented, &app.tokens) {
            Some(digest) => Some(digest),
            None => {
                return Err(HttpError::Unauthorized {
                    resource_metadata: format!(
                        "{}/.well-known/oauth-protected-resource/t/{id}/mcp",
                        base_url(request.headers())
                    ),
                });
            }
        }
    };
    request.extensions_mut().insert(Scope { app, token });
    Ok(next.run(request).await)
}

/// RFC 9728 protected-resource metadata for a tenant's MCP endpoint.
pub async fn metadata(
    State(tenants): State<Arc<Tenants>>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Result<Response, HttpError> {
    if !tenants.multi || tenants.get(&id).is_none() {
        return Err(HttpError::UnknownTenant);
    }
    Ok(Json(json!({
        "resource": format!("{}/t/{id}/mcp", base_url(&headers)),
        "bearer_methods_supported": ["header"],
        "authorization_servers": [],
    }))
    .into_response())
}

/// The token of an `Authorization: Bearer` header.
pub fn bearer(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim())
        .filter(|t| !t.is_empty())
}

/// How clients reach this machine: `https` behind a TLS-terminating proxy that says so, the `Host` they used.
fn base_url(headers: &HeaderMap) -> String {
    let https = headers
        .get("x-forwarded-proto")
        .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"https"));
    let host = headers
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .filter(|h| h.bytes().all(|b| b.is_ascii_graphic()))
        .unwrap_or("localhost");
    format!("{}://{host}", if https { "https" } else { "http" })
}
