//! The small wire formats catwalk reads from clients, apart from JSON-RPC ([`crate::jsonrpc`]): each parses bytes
//! a client chose, so each is fuzzed (`fuzz/`).
//! - [`decode_header`]: a 2026-07-28 header value, plain or `=?base64?…?=`;
//! - [`parse_event_id`]: a `Last-Event-ID`, as catwalk writes event ids (`<stream>-<seq>`);
//! - [`params`]: `Mcp-Param-*` headers against the tool arguments they mirror.

pub mod params;

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

/// `<stream>-<seq>`, as catwalk writes event ids: the stream and the event's number on it.
pub fn parse_event_id(id: &str) -> Option<(u64, u64)> {
    let (stream, seq) = id.split_once('-')?;
    Some((stream.parse().ok()?, seq.parse().ok()?))
}
