//! Streamable HTTP, 2026-07-28 era, on the same URL as the 2025 era: no `initialize`, no session, no GET
//! stream. Every request carries its version, client info and client capabilities in `params._meta`, and its
//! version, method and target name in headers that must match the body.
//!
//! Nearly every stdio server speaks the 2025 era, so a modern request is served statelessly over a 2025-era
//! instance: catwalk takes one (a spare where one waits), performs the `initialize` handshake itself with the
//! client's capabilities and info from `_meta`, forwards the request, relays what relates to it (progress, and
//! log messages when `_meta` asks for a level), answers with the result marked complete, and stops the instance.
//! `server/discover` is answered from the server's `initialize` result. A server's own requests mid-call
//! (sampling, elicitation, roots) end the call with an `InputRequiredResult`; the instance waits, parked under
//! the `requestState` it names, for the client's retry with the answers.
//!
//! A server that speaks 2026-07-28 itself (asked once per tenant) gets the requests as they came.
//!
//! A request goes down these files in order: here, [`post`] reads the body and routes it;
//! - [`checks`]: the revision's rules for a request (`_meta`, the version and method headers) and its errors;
//! - [`params`]: `Mcp-Param-*` headers checked against the tool arguments they mirror;
//! - [`bridge`]: an instance for the request (from [`pool`], or launched by the tenant), the request driven
//!   on it, parked for the client's input or resumed, and the answer as JSON or SSE;
//! - [`wire`]: the exchange with a 2025-era server itself: handshake, relaying, and the answer made a
//!   2026-07-28 result;
//! - [`pool`]: what the front end keeps per tenant between requests (idle instances, parked requests, what it
//!   learnt of the server);
//! - [`listen`]: `subscriptions/listen`, the revision's stream of change notifications.

mod bridge;
mod checks;
mod listen;
mod params;
mod pool;
mod wire;

use axum::body::Bytes;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::Scope;
use super::error::HttpError;
use crate::audit::Caller;
use crate::jsonrpc::code;
use bridge::{Exchange, Failure, INPUT_CAPABLE, resume, serve, speaks_modern};
use checks::{LEGACY_ONLY, check, reject, without_modern_meta};
pub use pool::{Front, Pool};

/// The modern revisions catwalk serves.
pub const MODERN_VERSIONS: &[&str] = &["2026-07-28"];
/// The first modern revision: a version header from it on marks a modern request.
const FIRST_MODERN: &str = "2026-07-28";
/// What catwalk speaks to the 2025-era servers behind it.
const SERVER_VERSION: &str = "2025-11-25";

const META_VERSION: &str = "io.modelcontextprotocol/protocolVersion";
const META_CLIENT_INFO: &str = "io.modelcontextprotocol/clientInfo";
const META_CAPABILITIES: &str = "io.modelcontextprotocol/clientCapabilities";
const META_LOG_LEVEL: &str = "io.modelcontextprotocol/logLevel";
const META_SERVER_INFO: &str = "io.modelcontextprotocol/serverInfo";

/// Whether a POST is of the modern era: its version header names 2026-07-28 or later, or its body's `_meta`
/// names a version.
/// The search for [`META_VERSION`] in a body, built once.
static META_VERSION_FINDER: std::sync::LazyLock<memchr::memmem::Finder<'static>> =
    std::sync::LazyLock::new(|| memchr::memmem::Finder::new(META_VERSION));

pub fn is_modern(headers: &HeaderMap, body: &[u8]) -> bool {
    if header_version(headers).is_some_and(|v| v >= FIRST_MODERN) {
        return true;
    }
    // Parsed only when the key appears at all: 2025-era requests pay a substring search.
    META_VERSION_FINDER.find(body).is_some()
        && serde_json::from_slice::<Value>(body).ok().is_some_and(|v| {
            v.pointer("/params/_meta")
                .and_then(|m| m.get(META_VERSION))
                .is_some()
        })
}

fn header_version(headers: &HeaderMap) -> Option<&str> {
    headers.get("mcp-protocol-version")?.to_str().ok()
}

/// Whether a GET or DELETE comes from a modern client (which has no stream or session to ask for).
pub fn is_modern_header(headers: &HeaderMap) -> bool {
    header_version(headers).is_some_and(|v| v >= FIRST_MODERN)
}

/// 405 for what the 2026 era removed (the GET stream, DELETE of a session).
pub fn method_not_allowed() -> Response {
    (
        StatusCode::METHOD_NOT_ALLOWED,
        [(header::ALLOW, HeaderValue::from_static("POST"))],
    )
        .into_response()
}

/// Serves one modern POST.
pub async fn post(scope: &Scope, headers: &HeaderMap, body: &Bytes) -> Response {
    let Ok(message) = serde_json::from_slice::<Value>(body) else {
        return reject(
            StatusCode::BAD_REQUEST,
            &Value::Null,
            code::PARSE_ERROR,
            "the body is not JSON",
            None,
        );
    };
    let Some(object) = message.as_object() else {
        return reject(
            StatusCode::BAD_REQUEST,
            &Value::Null,
            code::INVALID_REQUEST,
            "a 2026-07-28 POST carries one JSON-RPC request or notification, not a batch",
            None,
        );
    };
    let id = object.get("id").cloned().unwrap_or(Value::Null);
    let Some(method) = object.get("method").and_then(Value::as_str) else {
        return reject(
            StatusCode::BAD_REQUEST,
            &id,
            code::INVALID_REQUEST,
            "a 2026-07-28 POST carries a JSON-RPC request or notification (responses are not sent)",
            None,
        );
    };
    let params = object.get("params").cloned().unwrap_or(json!({}));
    let checked = match check(headers, &id, method, &params) {
        Ok(meta) => meta,
        Err(response) => return response,
    };
    if object.get("id").is_none() {
        // This revision defines no client notifications over HTTP; with no session, none has anywhere to go.
        return StatusCode::ACCEPTED.into_response();
    }
    crate::traces::describe(method, Some(&params), Some(&id.to_string()), None);
    crate::traces::attribute("mcp.protocol.version", FIRST_MODERN.to_owned());
    // The server's spans join the request's trace.
    let trace_fields = crate::traces::context_fields();
    let call = scope.app.audit.as_ref().and_then(|audit| {
        let caller = Caller {
            subject: scope.subject.clone(),
            client: Caller::client_info(Some(&checked.client_info)),
        };
        audit.begin(method, Some(&params), caller, "modern", body.len())
    });
    if let Some(offer) = &scope.app.offer
        && let Err(refusal) = offer.check(method, Some(&params))
    {
        tracing::info!(tenant = %scope.app.tenant, method, "refused: not offered by the tenant");
        scope.app.metrics.refused("not_offered");
        if let Some(call) = call {
            call.refused("not_offered", refusal.code);
        }
        return reject(StatusCode::OK, &id, refusal.code, &refusal.message, None);
    }
    if method == "tools/call"
        && let Some(name) = params.get("name").and_then(Value::as_str)
        && let Err(limited) = scope.app.admit_tool(name)
    {
        if let Some(call) = call {
            call.refused(limited.which.label(), code::RATE_LIMITED);
        }
        return HttpError::RateLimited(limited).into_response();
    }
    let passthrough = speaks_modern(&scope.app).await;
    let failed = |(status, code, message): Failure| reject(status, &id, code, &message, None);
    if method == "subscriptions/listen" {
        return listen::listen(scope, id.clone(), params, checked, passthrough)
            .await
            .unwrap_or_else(failed);
    }
    if method == "tools/call"
        && let Err(response) =
            params::verify(scope, headers, &id, &params, &checked, passthrough).await
    {
        if let Some(call) = call {
            call.refused("bad_request", checks::modern_code::INVALID_PARAMS);
        }
        return response;
    }
    if passthrough {
        // The server speaks this revision itself: the request goes to it as it came, but for a `requestState`
        // catwalk bound to its caller, which goes back to the server's own (see `Pool::bind_state`).
        let mut params = params;
        if let (Some(owner), Some(Value::String(presented))) =
            (scope.token, params.get("requestState").cloned())
        {
            let Some(state) = scope.app.front.unbind_state(&owner, &presented) else {
                return reject(
                    StatusCode::OK,
                    &id,
                    checks::modern_code::INVALID_PARAMS,
                    "requestState is not one this server gave for this request, or it has expired",
                    None,
                );
            };
            params["requestState"] = Value::String(state);
        }
        if let Some(fields) = &trace_fields {
            crate::traces::inject(&mut params, fields);
        }
        let exchange = Exchange {
            client_id: id.clone(),
            method: method.to_owned(),
            params,
            meta: checked,
            digest: String::new(),
            owner: scope.token,
            passthrough: true,
            call,
        };
        return serve(scope, exchange).await.unwrap_or_else(failed);
    }
    if LEGACY_ONLY.contains(&method) {
        return reject(
            StatusCode::NOT_FOUND,
            &id,
            code::METHOD_NOT_FOUND,
            &format!("{method} is not served to 2026-07-28 requests"),
            None,
        );
    }
    let mut params = without_modern_meta(params);
    if let Some(fields) = &trace_fields {
        crate::traces::inject(&mut params, fields);
    }
    // A retry's answers to the server's questions, and the state naming the request that asked them.
    let (state, responses) = match params.as_object_mut() {
        Some(fields) if INPUT_CAPABLE.contains(&method) => (
            fields.remove("requestState"),
            fields.remove("inputResponses"),
        ),
        _ => (None, None),
    };
    let digest = {
        let mut salient = params.clone();
        if let Some(fields) = salient.as_object_mut() {
            fields.remove("_meta");
        }
        salient.to_string()
    };
    let exchange = Exchange {
        client_id: id.clone(),
        method: method.to_owned(),
        params,
        meta: checked,
        digest,
        owner: scope.token,
        passthrough: false,
        call,
    };
    let served = match state {
        Some(state) => resume(scope, exchange, &state, responses).await,
        None => serve(scope, exchange).await,
    };
    served.unwrap_or_else(failed)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (k, v) in pairs {
            map.insert(*k, HeaderValue::from_str(v).unwrap());
        }
        map
    }

    #[test]
    fn modern_requests_are_told_apart_by_header_or_meta() {
        let legacy = br#"{"jsonrpc":"2.0","id":1,"method":"tools/list"}"#;
        assert!(!is_modern(&HeaderMap::new(), legacy));
        assert!(!is_modern(
            &headers(&[("mcp-protocol-version", "2025-11-25")]),
            legacy
        ));
        assert!(is_modern(
            &headers(&[("mcp-protocol-version", "2026-07-28")]),
            legacy
        ));
        let meta = br#"{"jsonrpc":"2.0","id":1,"method":"tools/list","params":{"_meta":{"io.modelcontextprotocol/protocolVersion":"1900-01-01"}}}"#;
        assert!(is_modern(&HeaderMap::new(), meta));
        // The key in a tool's arguments is not a version in `_meta`.
        let argument = br#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"arguments":{"io.modelcontextprotocol/protocolVersion":"x"}}}"#;
        assert!(!is_modern(&HeaderMap::new(), argument));
    }
}
