//! The 2026-07-28 headers: a value plain or `=?base64?…?=`, and `Mcp-Param-*` headers checked against the
//! `tools/call` arguments they mirror, as declared by any `tools/list` a server returns.
//!
//! Input: any bytes as one header value; and, when the input is a JSON object
//! `{"tools": [...], "arguments": {...}, "headers": {"Name": "value"}}`, a check of those headers.
#![no_main]

use base64::Engine;
use catwalk_core::wire::{decode_header, params};
use http::{HeaderMap, HeaderName, HeaderValue};
use libfuzzer_sys::fuzz_target;
use serde_json::{Map, Value};

fuzz_target!(|data: &[u8]| {
    if let Ok(value) = HeaderValue::from_bytes(data)
        && let Some(text) = decode_header(&value)
    {
        // Whatever a header decodes to survives being encoded again.
        let encoded = format!(
            "=?base64?{}?=",
            base64::engine::general_purpose::STANDARD.encode(&text)
        );
        let again = decode_header(&HeaderValue::from_str(&encoded).unwrap());
        assert_eq!(again.as_deref(), Some(text.as_str()));
    }
    let Ok(Value::Object(input)) = serde_json::from_slice::<Value>(data) else {
        return;
    };
    let tools = match input.get("tools") {
        Some(Value::Array(tools)) => tools.clone(),
        _ => Vec::new(),
    };
    let arguments = match input.get("arguments") {
        Some(Value::Object(arguments)) => arguments.clone(),
        _ => Map::new(),
    };
    let mut headers = HeaderMap::new();
    if let Some(Value::Object(sent)) = input.get("headers") {
        for (name, value) in sent {
            let value = value.as_str().unwrap_or_default();
            if let (Ok(name), Ok(value)) = (
                HeaderName::from_bytes(name.as_bytes()),
                HeaderValue::from_str(value),
            ) {
                headers.append(name, value);
            }
        }
    }
    for mirrored in params::scan(&tools).values() {
        let _ = params::check(&headers, &arguments, mirrored);
        // Arguments with no values need no headers.
        assert_eq!(
            params::check(&HeaderMap::new(), &Map::new(), mirrored),
            Ok(())
        );
    }
});
