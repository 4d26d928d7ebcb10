//! The 2026-07-28 transport's checks of a request, in its order: `_meta`, the version header against it, the
//! version, then `Mcp-Method` and `Mcp-Name` against the body; and the errors the revision defines.

use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::{
    META_CAPABILITIES, META_CLIENT_INFO, META_LOG_LEVEL, META_VERSION, MODERN_VERSIONS,
    header_version,
};
use crate::http::SUPPORTED_VERSIONS;
pub(super) use catwalk_core::wire::decode_header;

/// Errors the 2026-07-28 revision defines.
pub(super) mod modern_code {
    pub const HEADER_MISMATCH: i64 = -32020;
    pub const MISSING_CAPABILITY: i64 = -32021;
    pub const UNSUPPORTED_VERSION: i64 = -32022;
    pub const INVALID_PARAMS: i64 = -32602;
}

/// Methods of the 2025 era that a modern request may not use.
pub(super) const LEGACY_ONLY: &[&str] = &[
    "initialize",
    "ping",
    "logging/setLevel",
    "resources/subscribe",
    "resources/unsubscribe",
];

/// A JSON-RPC error reply with `status`.
pub(super) fn reject(
    status: StatusCode,
    id: &Value,
    code: i64,
    message: &str,
    data: Option<Value>,
) -> Response {
    let mut error = json!({"code": code, "message": message});
    if let Some(data) = data {
        error["data"] = data;
    }
    json_reply(status, &json!({"jsonrpc": "2.0", "id": id, "error": error}))
}

/// 400 with -32020: a header that does not agree with the body.
pub(super) fn header_mismatch(id: &Value, message: &str) -> Response {
    reject(
        StatusCode::BAD_REQUEST,
        id,
        modern_code::HEADER_MISMATCH,
        message,
        None,
    )
}

pub(super) fn json_reply(status: StatusCode, body: &Value) -> Response {
    (
        status,
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        body.to_string(),
    )
        .into_response()
}

/// The request's `_meta` fields catwalk acts on.
#[derive(Debug, Clone)]
pub(super) struct Meta {
    pub(super) client_info: Value,
    pub(super) capabilities: Value,
    pub(super) log_level: Option<String>,
}

impl Meta {
    /// What a pooled instance was initialized with: only an instance initialized the same way serves a request.
    pub(super) fn key(&self) -> String {
        json!([self.capabilities, self.client_info, self.log_level]).to_string()
    }
}

/// The checks of the 2026-07-28 transport, in its order: `_meta`, the version header against it, the version,
/// then `Mcp-Method` and `Mcp-Name` against the body.
#[allow(clippy::result_large_err)]
pub(super) fn check(
    headers: &HeaderMap,
    id: &Value,
    method: &str,
    params: &Value,
) -> Result<Meta, Response> {
    let invalid = |message: &str| {
        reject(
            StatusCode::BAD_REQUEST,
            id,
            modern_code::INVALID_PARAMS,
            message,
            None,
        )
    };
    let mismatch = |message: String| header_mismatch(id, &message);
    let meta = params
        .get("_meta")
        .and_then(Value::as_object)
        .ok_or_else(|| {
            invalid(
                "params._meta is required: it carries the protocol version and client capabilities",
            )
        })?;
    let version = meta
        .get(META_VERSION)
        .and_then(Value::as_str)
        .ok_or_else(|| invalid(&format!("params._meta[\"{META_VERSION}\"] is required")))?;
    let capabilities = meta
        .get(META_CAPABILITIES)
        .filter(|c| c.is_object())
        .ok_or_else(|| {
            invalid(&format!(
                "params._meta[\"{META_CAPABILITIES}\"] is required (an object)"
            ))
        })?;
    match header_version(headers) {
        None => {
            return Err(mismatch(
                "Header mismatch: the MCP-Protocol-Version header is missing".into(),
            ));
        }
        Some(header) if header != version => {
            return Err(mismatch(format!(
                "Header mismatch: MCP-Protocol-Version header value '{header}' does not match body value '{version}'"
            )));
        }
        Some(_) => {}
    }
    if !MODERN_VERSIONS.contains(&version) {
        let supported: Vec<&str> = MODERN_VERSIONS
            .iter()
            .chain(SUPPORTED_VERSIONS.iter().rev())
            .copied()
            .collect();
        return Err(reject(
            StatusCode::BAD_REQUEST,
            id,
            modern_code::UNSUPPORTED_VERSION,
            "Unsupported protocol version",
            Some(json!({"supported": supported, "requested": version})),
        ));
    }
    match headers.get("mcp-method").and_then(decode_header) {
        None => {
            return Err(mismatch(
                "Header mismatch: the Mcp-Method header is missing".into(),
            ));
        }
        Some(header) if header != method => {
            return Err(mismatch(format!(
                "Header mismatch: Mcp-Method header value '{header}' does not match body value '{method}'"
            )));
        }
        Some(_) => {}
    }
    let named = match method {
        "tools/call" | "prompts/get" => params.get("name").and_then(Value::as_str),
        "resources/read" => params.get("uri").and_then(Value::as_str),
        _ => None,
    };
    if let Some(name) = named {
        match headers.get("mcp-name").map(decode_header) {
            None => {
                return Err(mismatch(
                    "Header mismatch: the Mcp-Name header is missing".into(),
                ));
            }
            Some(None) => {
                return Err(mismatch(
                    "Header mismatch: the Mcp-Name header is malformed".into(),
                ));
            }
            Some(Some(header)) if header != name => {
                return Err(mismatch(format!(
                    "Header mismatch: Mcp-Name header value '{header}' does not match body value '{name}'"
                )));
            }
            Some(Some(_)) => {}
        }
    }
    Ok(Meta {
        client_info: meta
            .get(META_CLIENT_INFO)
            .filter(|i| i.is_object())
            .cloned()
            .unwrap_or_else(|| json!({"name": "catwalk-modern-client", "version": "0"})),
        capabilities: capabilities.clone(),
        log_level: meta
            .get(META_LOG_LEVEL)
            .and_then(Value::as_str)
            .map(str::to_owned),
    })
}

/// `params` without the modern `_meta` keys, which mean nothing to a 2025-era server.
pub(super) fn without_modern_meta(mut params: Value) -> Value {
    if let Some(meta) = params.get_mut("_meta").and_then(Value::as_object_mut) {
        meta.retain(|key, _| !key.starts_with("io.modelcontextprotocol/"));
        if meta.is_empty()
            && let Some(params) = params.as_object_mut()
        {
            params.remove("_meta");
        }
    }
    params
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    pub(super) fn encoded_header_values_are_decoded() {
        let plain = HeaderValue::from_static("get_weather");
        assert_eq!(decode_header(&plain).as_deref(), Some("get_weather"));
        let encoded = HeaderValue::from_static("=?base64?SGVsbG8sIOS4lueVjA==?=");
        assert_eq!(decode_header(&encoded).as_deref(), Some("Hello, 世界"));
        let broken = HeaderValue::from_static("=?base64?***?=");
        assert_eq!(decode_header(&broken), None);
    }
}
