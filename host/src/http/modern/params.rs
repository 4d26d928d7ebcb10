//! `Mcp-Param-*` headers: a tool may mark arguments with `x-mcp-header` in its `inputSchema`, and a 2026-07-28
//! client then mirrors each such argument of a `tools/call` into an `Mcp-Param-{Name}` header, so that what
//! sits in front of the server can route on it without reading the body. The server must hold the two to
//! agree: a header missing for an argument that has a value, one that is not valid (`=?base64?…?=` that does
//! not decode), or one whose value differs is refused with 400 and -32020.
//!
//! catwalk is the HTTP server, so it checks, for both kinds of server behind it: the tools' declarations come
//! from the server's `tools/list`, asked once and kept per tenant until the server says its tools changed.
//! Declarations the spec does not allow (a name that is not an HTTP token, one used twice, a parameter that is
//! not a string, integer, number or boolean, or one not reached through `properties` alone) make the tool's
//! declarations void: nothing is enforced for it. Headers that mirror nothing pass.

use std::sync::Arc;

use axum::http::HeaderMap;
use axum::response::Response;
use serde_json::{Map, Value, json};

use super::bridge::{Exchange, Failure, internal};
use super::checks::{Meta, header_mismatch, reject, without_modern_meta};
use crate::http::Scope;
use crate::vocab::lock;
pub use catwalk_core::wire::params::{Mirrors, check, scan};

/// Pages of `tools/list` catwalk reads at most when it learns a server's tools.
const MAX_PAGES: usize = 64;

/// Checks a `tools/call`'s `Mcp-Param-*` headers against its arguments; the refusal if they disagree.
pub(super) async fn verify(
    scope: &Scope,
    headers: &HeaderMap,
    id: &Value,
    params: &Value,
    meta: &Meta,
    passthrough: bool,
) -> Result<(), Response> {
    let mirrors = match known(scope, params, meta, passthrough).await {
        Ok(mirrors) => mirrors,
        Err((status, code, message)) => return Err(reject(status, id, code, &message, None)),
    };
    let Some(tool) = params.get("name").and_then(Value::as_str) else {
        return Ok(());
    };
    let Some(mirrored) = mirrors.get(tool) else {
        return Ok(());
    };
    let empty = Map::new();
    let arguments = params
        .get("arguments")
        .and_then(Value::as_object)
        .unwrap_or(&empty);
    check(headers, arguments, mirrored).map_err(|message| header_mismatch(id, &message))
}

/// What catwalk knows of the tenant's tools' mirrored arguments, learnt from its server first if need be.
async fn known(
    scope: &Scope,
    params: &Value,
    meta: &Meta,
    passthrough: bool,
) -> Result<Arc<Mirrors>, Failure> {
    let pool = &scope.app.front;
    if let Some(known) = lock(&pool.mirrored).clone() {
        return Ok(known);
    }
    // The request's own `_meta`, for a server that reads it; a 2025-era server is initialized from `meta`.
    let request_meta = params.get("_meta").cloned().unwrap_or_else(|| json!({}));
    let mut tools = Vec::new();
    let mut cursor: Option<Value> = None;
    for _ in 0..MAX_PAGES {
        let mut list = json!({"_meta": request_meta});
        if let Some(cursor) = cursor.take() {
            list["cursor"] = cursor;
        }
        let exchange = Exchange {
            client_id: Value::from("catwalk/tools-list"),
            method: "tools/list".into(),
            params: match passthrough {
                true => list,
                false => without_modern_meta(list),
            },
            meta: meta.clone(),
            digest: String::new(),
            owner: scope.token,
            passthrough,
            call: None,
        };
        let answer = internal(scope, exchange).await?;
        let Some(result) = answer.get("result") else {
            // A server without tools mirrors nothing.
            break;
        };
        tools.extend(
            result
                .get("tools")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .cloned(),
        );
        match result.get("nextCursor") {
            Some(next) if !next.is_null() => cursor = Some(next.clone()),
            _ => break,
        }
    }
    let known = Arc::new(scan(&tools));
    *lock(&pool.mirrored) = Some(known.clone());
    Ok(known)
}
