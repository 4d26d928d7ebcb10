//! The small wire formats between catwalk and clients, apart from JSON-RPC ([`crate::jsonrpc`]): each reads
//! bytes a client chose, or frames bytes a server chose, so each is fuzzed (`fuzz/`).
//! - [`decode_header`]: a 2026-07-28 header value, plain or `=?base64?…?=`;
//! - [`sse`]: server-sent events as catwalk writes them, and a `Last-Event-ID` read back;
//! - [`params`]: `Mcp-Param-*` headers against the tool arguments they mirror.

pub mod params;
pub mod sse;

use base64::Engine;
use http::HeaderValue;

/// A header value as the 2026-07-28 revision encodes it: plain visible ASCII, or `=?base64?…?=` for what is
/// not (the Base64 of UTF-8). `None`: neither.
pub fn decode_header(value: &HeaderValue) -> Option<String> {
    let text = value.to_str().ok()?;
    match text
        .strip_prefix("=?base64?")
        .and_then(|rest| rest.strip_suffix("?="))
    {
        Some(encoded) => String::from_utf8(
            base64::engine::general_purpose::STANDARD
                .decode(encoded)
                .ok()?,
        )
        .ok(),
        None => Some(text.to_owned()),
    }
}
