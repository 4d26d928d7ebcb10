//! JSON-RPC as the bridge sees it: a peek at `id`, `method` and the progress token, never a re-serialisation.
//!
//! MCP messages carry fields catwalk does not know and must not lose (unknown params, `_meta`, future
//! extensions), so a message is forwarded as the exact bytes the client or server sent. This module reads only
//! what routing needs and builds only catwalk's own error replies.

use std::borrow::Cow;
use std::fmt;

use bytes::Bytes;
use serde::Deserialize;
use serde_json::value::RawValue;

/// JSON-RPC error codes catwalk itself answers with.
pub mod code {
    pub const PARSE_ERROR: i64 = -32700;
    pub const INVALID_REQUEST: i64 = -32600;
    pub const METHOD_NOT_FOUND: i64 = -32601;
    pub const INVALID_PARAMS: i64 = -32602;
    pub const INTERNAL_ERROR: i64 = -32603;
    /// The server behind the bridge is gone (exited, crashed, or was stopped).
    pub const SERVER_GONE: i64 = -32000;
    /// The server did not answer within the request timeout.
    pub const REQUEST_TIMEOUT: i64 = -32001;
    /// catwalk cannot take the request (capacity, shutting down).
    pub const UNAVAILABLE: i64 = -32002;
    /// A message from the server was over the line limit and had to be dropped.
    pub const MESSAGE_TOO_LARGE: i64 = -32003;
    /// A rate of the tenant's (its own, its subject's, or a tool's) is exceeded: retry later.
    pub const RATE_LIMITED: i64 = -32004;
}

/// A request id, normalised so that `"a"` and `"\u0061"` (or `1` sent back as `1`) compare equal.
///
/// The original bytes are kept alongside in [`Peeked::id`] so replies echo exactly what the client sent.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct IdKey(Box<str>);

impl IdKey {
    fn from_raw(raw: &RawValue) -> Option<Self> {
        let text = raw.get();
        if let Some(quoted) = text.strip_prefix('"') {
            // Fast path: a string without escapes is canonical already.
            if !quoted.contains('\\') {
                return Some(IdKey(text.into()));
            }
            let s: String = serde_json::from_str(text).ok()?;
            return serde_json::to_string(&s).ok().map(|s| IdKey(s.into()));
        }
        // Fast path: a plain integer that fits an i64 (no sign on zero, no fraction, no exponent).
        let digits = text.strip_prefix('-').unwrap_or(text);
        if (1..=18).contains(&digits.len())
            && digits.bytes().all(|b| b.is_ascii_digit())
            && text != "-0"
        {
            return Some(IdKey(text.into()));
        }
        // Any other number compares by value: `1.0`, `1e0` and `1` are one id (as a server that parses and
        // re-serialises ids would send it back), and so are `-0` and `0`.
        let number: serde_json::Number = serde_json::from_str(text).ok()?;
        let canonical = if let Some(n) = number.as_i64() {
            n.to_string()
        } else if let Some(n) = number.as_u64() {
            n.to_string()
        } else {
            match number.as_f64() {
                Some(f) if f.fract() == 0.0 && f.abs() < 9.2e18 => (f as i64).to_string(),
                _ => number.to_string(),
            }
        };
        Some(IdKey(canonical.into()))
    }
}

impl fmt::Debug for IdKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The normalised key of a raw id.
pub fn peek_key(raw: &RawValue) -> Option<IdKey> {
    IdKey::from_raw(raw)
}

/// What kind of JSON-RPC message a line is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Request,
    Notification,
    Response,
}

/// The routing-relevant parts of one JSON-RPC message, plus its original bytes.
#[derive(Debug, Clone)]
pub struct Peeked {
    pub kind: Kind,
    /// The id exactly as sent (for echoing in replies).
    pub id: Option<Box<RawValue>>,
    /// The id normalised for lookups.
    pub key: Option<IdKey>,
    pub method: Option<Box<str>>,
    /// `params._meta.progressToken` (requests) or `params.progressToken` (progress notifications), normalised.
    pub progress_token: Option<IdKey>,
    pub bytes: Bytes,
}

impl Peeked {
    pub fn method(&self) -> &str {
        self.method.as_deref().unwrap_or("")
    }
}

#[derive(Deserialize)]
struct Envelope<'a> {
    #[serde(borrow)]
    id: Option<&'a RawValue>,
    #[serde(borrow)]
    method: Option<Cow<'a, str>>,
    #[serde(borrow)]
    params: Option<&'a RawValue>,
    #[serde(borrow)]
    result: Option<&'a RawValue>,
    #[serde(borrow)]
    error: Option<&'a RawValue>,
}

#[derive(Deserialize)]
struct ParamsPeek<'a> {
    #[serde(borrow, rename = "_meta")]
    meta: Option<MetaPeek<'a>>,
    #[serde(borrow, rename = "progressToken")]
    progress_token: Option<&'a RawValue>,
}

#[derive(Deserialize)]
struct MetaPeek<'a> {
    #[serde(borrow, rename = "progressToken")]
    progress_token: Option<&'a RawValue>,
}

/// Why a message could not be taken.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PeekError {
    #[error("parse error: {0}")]
    Parse(String),
    #[error("invalid request: {0}")]
    Invalid(&'static str),
}

impl PeekError {
    pub fn code(&self) -> i64 {
        match self {
            PeekError::Parse(_) => code::PARSE_ERROR,
            PeekError::Invalid(_) => code::INVALID_REQUEST,
        }
    }
}

/// Peeks at one JSON-RPC message (an object, not a batch).
pub fn peek(bytes: Bytes) -> Result<Peeked, PeekError> {
    // serde skips the members it does not read without checking their UTF-8, so check it all first: what is
    // forwarded is JSON.
    let text = std::str::from_utf8(&bytes)
        .map_err(|e| PeekError::Parse(format!("invalid UTF-8 at byte {}", e.valid_up_to())))?;
    let env: Envelope<'_> = match serde_json::from_str(text) {
        Ok(env) => env,
        Err(e) if e.is_data() => return Err(PeekError::Invalid("not a JSON-RPC message object")),
        Err(e) => return Err(PeekError::Parse(e.to_string())),
    };
    let id = env.id.filter(|raw| raw.get() != "null");
    let key = match id {
        Some(raw) => Some(
            IdKey::from_raw(raw).ok_or(PeekError::Invalid("id must be a string or a number"))?,
        ),
        None => None,
    };
    let kind = match (&env.method, key.is_some()) {
        (Some(_), true) => Kind::Request,
        (Some(_), false) => Kind::Notification,
        (None, _) if env.result.is_some() || env.error.is_some() => Kind::Response,
        (None, _) => {
            return Err(PeekError::Invalid(
                "message has neither method nor result/error",
            ));
        }
    };
    let progress_token = match env.params {
        Some(params) if params.get().contains("progressToken") => {
            serde_json::from_str::<ParamsPeek<'_>>(params.get())
                .ok()
                .and_then(|p| match kind {
                    Kind::Request => p.meta.and_then(|m| m.progress_token),
                    _ => p.progress_token,
                })
                .and_then(IdKey::from_raw)
        }
        _ => None,
    };
    let method = env.method.map(|m| Box::from(m.as_ref()));
    let id = id.map(|raw| raw.to_owned());
    Ok(Peeked {
        kind,
        id,
        key,
        method,
        progress_token,
        bytes,
    })
}

/// Splits an HTTP body into messages: one object, or (2025-03-26) a non-empty batch array.
///
/// Each element keeps its own bytes, sliced out of the body without copying.
pub fn split_body(body: &Bytes) -> Result<(Vec<Peeked>, bool), PeekError> {
    let first = body.iter().find(|b| !b.is_ascii_whitespace());
    if first != Some(&b'[') {
        return Ok((vec![peek(body.clone())?], false));
    }
    let items: Vec<&RawValue> =
        serde_json::from_slice(body).map_err(|e| PeekError::Parse(e.to_string()))?;
    if items.is_empty() {
        return Err(PeekError::Invalid("empty batch"));
    }
    let base = body.as_ptr() as usize;
    let messages = items
        .into_iter()
        .map(|raw| {
            let start = raw.get().as_ptr() as usize - base;
            peek(body.slice(start..start + raw.get().len()))
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok((messages, true))
}

/// catwalk's own JSON-RPC error reply, echoing the request's id (or `null`).
pub fn error_reply(id: Option<&RawValue>, code: i64, message: &str) -> Bytes {
    let id = id.map_or("null", RawValue::get);
    let message = serde_json::to_string(message).unwrap_or_else(|_| "\"error\"".into());
    Bytes::from(format!(
        r#"{{"jsonrpc":"2.0","id":{id},"error":{{"code":{code},"message":{message}}}}}"#
    ))
}

/// A `notifications/cancelled` for a request the bridge gave up on.
pub fn cancelled_notification(id: &RawValue, reason: &str) -> Bytes {
    let reason = serde_json::to_string(reason).unwrap_or_else(|_| "\"\"".into());
    Bytes::from(format!(
        r#"{{"jsonrpc":"2.0","method":"notifications/cancelled","params":{{"requestId":{},"reason":{reason}}}}}"#,
        id.get()
    ))
}

/// The id of a response that was too large to keep, found at either end of it: among the first top-level
/// members (`{"jsonrpc":"2.0","id":7,...`) or as the last one (`...,"jsonrpc":"2.0","id":7}`, as the
/// TypeScript SDK writes). `None` if neither end shows a top-level id (a notification, or no telling).
pub fn oversized_response_id(head: &[u8], tail: &[u8]) -> Option<IdKey> {
    const MARK: &[u8] = b"\"id\":";
    let value_at = |bytes: &[u8]| -> Option<(IdKey, usize)> {
        let mut values =
            serde_json::Deserializer::from_slice(bytes).into_iter::<serde_json::Value>();
        let value = values.next()?.ok()?;
        let end = values.byte_offset();
        let raw = RawValue::from_string(value.to_string()).ok()?;
        Some((IdKey::from_raw(&raw)?, end))
    };
    let find = |bytes: &[u8]| bytes.windows(MARK.len()).position(|w| w == MARK);
    // At the head: the id comes before any nested value opens.
    if let Some(at) = find(head) {
        let before = &head[..at];
        let top_level =
            before.first() == Some(&b'{') && !before[1..].iter().any(|&b| b == b'{' || b == b'[');
        if top_level && let Some((key, _)) = value_at(&head[at + MARK.len()..]) {
            return Some(key);
        }
    }
    // At the tail: the last `"id":` whose value is followed only by the closing brace.
    let at = tail.windows(MARK.len()).rposition(|w| w == MARK)?;
    let rest = &tail[at + MARK.len()..];
    let (key, end) = value_at(rest)?;
    let after: Vec<u8> = rest[end..]
        .iter()
        .copied()
        .filter(|b| !b.is_ascii_whitespace())
        .collect();
    (after == b"}").then_some(key)
}

/// Reads `params.protocolVersion` from an initialize request.
pub fn requested_version(request: &[u8]) -> Option<String> {
    #[derive(Deserialize)]
    struct R {
        params: Option<V>,
    }
    #[derive(Deserialize)]
    struct V {
        #[serde(rename = "protocolVersion")]
        protocol_version: Option<String>,
    }
    serde_json::from_slice::<R>(request)
        .ok()?
        .params?
        .protocol_version
}

/// Reads `result.protocolVersion` from an initialize response.
pub fn negotiated_version(response: &[u8]) -> Option<String> {
    #[derive(Deserialize)]
    struct R {
        result: Option<V>,
    }
    #[derive(Deserialize)]
    struct V {
        #[serde(rename = "protocolVersion")]
        protocol_version: Option<String>,
    }
    serde_json::from_slice::<R>(response)
        .ok()?
        .result?
        .protocol_version
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> Result<Peeked, PeekError> {
        peek(Bytes::copy_from_slice(s.as_bytes()))
    }

    #[test]
    fn kinds_are_told_apart() {
        assert_eq!(
            p(r#"{"jsonrpc":"2.0","id":1,"method":"ping"}"#)
                .unwrap()
                .kind,
            Kind::Request
        );
        assert_eq!(
            p(r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#)
                .unwrap()
                .kind,
            Kind::Notification
        );
        assert_eq!(
            p(r#"{"jsonrpc":"2.0","id":"a","result":{}}"#).unwrap().kind,
            Kind::Response
        );
        assert_eq!(
            p(r#"{"jsonrpc":"2.0","id":null,"error":{"code":1,"message":"x"}}"#)
                .unwrap()
                .kind,
            Kind::Response
        );
    }

    #[test]
    fn ids_normalise_but_echo_verbatim() {
        let a = p(r#"{"id":"\u0061","method":"x"}"#).unwrap();
        let b = p(r#"{"id":"a","result":1}"#).unwrap();
        assert_eq!(a.key, b.key);
        assert_eq!(a.id.as_deref().unwrap().get(), r#""\u0061""#);
    }

    #[test]
    fn numeric_ids_compare_by_value_as_a_server_would_echo_them() {
        let key = |id: &str| p(&format!(r#"{{"id":{id},"result":1}}"#)).unwrap().key;
        for (sent, echoed) in [("-0", "0"), ("1.0", "1"), ("1e2", "100"), ("-7", "-7.0")] {
            assert_eq!(key(sent), key(echoed), "{sent} and {echoed}");
        }
        assert_ne!(key("1.5"), key("1"));
        assert_ne!(key("1"), key("\"1\""));
        let huge = "123456789012345678901234567890";
        let reserialised = serde_json::from_str::<serde_json::Value>(huge)
            .unwrap()
            .to_string();
        assert_eq!(key(huge), key(&reserialised));
    }

    #[test]
    fn bad_input_is_an_error_not_a_panic() {
        assert_eq!(p("{").unwrap_err().code(), code::PARSE_ERROR);
        let invalid_utf8 = peek(Bytes::from_static(
            b"{\"jsonrpc\":\"2.0\x92\",\"id\":1,\"result\":{}}",
        ));
        assert_eq!(invalid_utf8.unwrap_err().code(), code::PARSE_ERROR);
        assert_eq!(p("[]").unwrap_err().code(), code::INVALID_REQUEST);
        assert_eq!(p("42").unwrap_err().code(), code::INVALID_REQUEST);
        assert_eq!(
            p(r#"{"id":{"x":1},"method":"m"}"#).unwrap_err().code(),
            code::INVALID_REQUEST
        );
        assert_eq!(
            p(r#"{"id":1,"method":7}"#).unwrap_err().code(),
            code::INVALID_REQUEST
        );
        assert_eq!(p(r#"{"id":1}"#).unwrap_err().code(), code::INVALID_REQUEST);
        let deep = "[".repeat(10_000) + &"]".repeat(10_000);
        assert!(p(&deep).is_err());
        assert!(split_body(&Bytes::from(deep)).is_err());
        assert_eq!(
            split_body(&Bytes::from_static(b" [ ] "))
                .unwrap_err()
                .code(),
            code::INVALID_REQUEST
        );
    }

    #[test]
    fn progress_tokens_are_found_where_each_kind_carries_them() {
        let req = p(r#"{"id":1,"method":"tools/call","params":{"name":"t","_meta":{"progressToken":"tok"}}}"#)
            .unwrap();
        let note = p(
            r#"{"method":"notifications/progress","params":{"progressToken":"tok","progress":1}}"#,
        )
        .unwrap();
        assert_eq!(req.progress_token, note.progress_token);
        assert!(req.progress_token.is_some());
    }

    #[test]
    fn batches_keep_each_message_bytes() {
        let body =
            Bytes::from_static(br#"[{"id":1,"method":"a"} , {"method":"b","params":{"x":[1,2]}}]"#);
        let (msgs, batch) = split_body(&body).unwrap();
        assert!(batch);
        assert_eq!(&msgs[0].bytes[..], br#"{"id":1,"method":"a"}"#);
        assert_eq!(
            &msgs[1].bytes[..],
            br#"{"method":"b","params":{"x":[1,2]}}"#
        );
    }

    #[test]
    fn ids_of_oversized_responses_are_found_at_either_end() {
        let key = |s: &str| {
            p(&format!(r#"{{"id":{s},"result":1}}"#))
                .unwrap()
                .key
                .unwrap()
        };
        let head = br#"{"jsonrpc":"2.0","id":"abc","result":{"content":[{"text":"xxxx"#;
        assert_eq!(
            oversized_response_id(head, b"xx\"}]}}"),
            Some(key(r#""abc""#))
        );
        let tail = br#"xxx"}],"id":99},"jsonrpc":"2.0","id":7}"#;
        assert_eq!(
            oversized_response_id(br#"{"result":{"content":[{"id":1,"#, tail),
            Some(key("7"))
        );
        let note_tail = br#"xxx"}],"id":99}}}"#;
        assert_eq!(
            oversized_response_id(br#"{"jsonrpc":"2.0","method":"x","params":{"#, note_tail),
            None
        );
    }

    #[test]
    fn error_replies_are_valid_json() {
        let raw = RawValue::from_string("\"x\\\"y\"".into()).unwrap();
        let reply = error_reply(Some(&raw), code::INTERNAL_ERROR, "bad \"thing\"\n");
        let v: serde_json::Value = serde_json::from_slice(&reply).unwrap();
        assert_eq!(v["id"], "x\"y");
        assert_eq!(v["error"]["message"], "bad \"thing\"\n");
        assert_eq!(
            negotiated_version(br#"{"id":1,"result":{"protocolVersion":"2025-11-25"}}"#).unwrap(),
            "2025-11-25"
        );
    }
}

/// Where the rewritable parts of a message sit in its bytes (for the shared backend's id rewriting).
#[derive(Debug, Default)]
pub struct Located<'a> {
    pub id: Option<&'a RawValue>,
    /// `params._meta.progressToken` (requests).
    pub meta_progress_token: Option<&'a RawValue>,
    /// `params.progressToken` (progress notifications).
    pub progress_token: Option<&'a RawValue>,
    /// `params.requestId` (cancellations).
    pub request_id: Option<&'a RawValue>,
    /// `params.uri` (subscriptions, resource updates).
    pub uri: Option<Cow<'a, str>>,
}

/// Finds the rewritable parts of `bytes` without copying them. Every message [`peek`] takes is located (`None`
/// only for what is not a JSON object); parts that are not where or what they should be are not found.
pub fn locate(bytes: &[u8]) -> Option<Located<'_>> {
    #[derive(Deserialize)]
    struct E<'a> {
        #[serde(borrow)]
        id: Option<&'a RawValue>,
        #[serde(borrow)]
        params: Option<&'a RawValue>,
    }
    #[derive(Deserialize)]
    struct P<'a> {
        #[serde(borrow, rename = "_meta")]
        meta: Option<&'a RawValue>,
        #[serde(borrow, rename = "progressToken")]
        progress_token: Option<&'a RawValue>,
        #[serde(borrow, rename = "requestId")]
        request_id: Option<&'a RawValue>,
        #[serde(borrow)]
        uri: Option<&'a RawValue>,
    }
    let e: E<'_> = serde_json::from_slice(bytes).ok()?;
    // Params that are not an object (or repeat a member) have nothing to rewrite.
    let p = e
        .params
        .filter(|raw| raw.get().starts_with('{'))
        .and_then(|raw| serde_json::from_str::<P<'_>>(raw.get()).ok());
    let Some(p) = p else {
        return Some(Located {
            id: e.id,
            ..Located::default()
        });
    };
    Some(Located {
        id: e.id,
        meta_progress_token: p
            .meta
            .filter(|raw| raw.get().starts_with('{'))
            .and_then(|raw| serde_json::from_str::<MetaPeek<'_>>(raw.get()).ok())
            .and_then(|m| m.progress_token),
        progress_token: p.progress_token,
        request_id: p.request_id,
        uri: p
            .uri
            .and_then(|raw| serde_json::from_str::<Cow<'_, str>>(raw.get()).ok()),
    })
}

/// `bytes` with `part` (a slice of `bytes`, as [`locate`] returns) replaced by `with`.
pub fn splice(bytes: &[u8], part: &RawValue, with: &str) -> Bytes {
    let start = part.get().as_ptr() as usize - bytes.as_ptr() as usize;
    let end = start + part.get().len();
    let mut out = Vec::with_capacity(bytes.len() - part.get().len() + with.len());
    out.extend_from_slice(&bytes[..start]);
    out.extend_from_slice(with.as_bytes());
    out.extend_from_slice(&bytes[end..]);
    Bytes::from(out)
}

#[cfg(test)]
mod splice_tests {
    use super::*;

    #[test]
    fn every_message_taken_is_located() {
        for message in [
            r#"{"jsonrpc":"2.0","id":1,"method":"x","params":[1,2]}"#,
            r#"{"jsonrpc":"2.0","id":1,"method":"x","params":{"uri":5,"_meta":[]}}"#,
            r#"{"jsonrpc":"2.0","id":1,"method":"x","params":{"uri":"a","uri":"b"}}"#,
        ] {
            peek(Bytes::from_static(message.as_bytes())).unwrap();
            let at = locate(message.as_bytes()).expect(message);
            assert_eq!(at.id.map(RawValue::get), Some("1"), "{message}");
        }
    }

    #[test]
    fn splicing_changes_only_the_part() {
        let msg = br#"{"jsonrpc":"2.0","id":"abc","method":"tools/call","params":{"_meta":{"progressToken":7},"x":[1]}}"#;
        let at = locate(msg).unwrap();
        let out = splice(msg, at.id.unwrap(), "42");
        assert_eq!(&out[..], br#"{"jsonrpc":"2.0","id":42,"method":"tools/call","params":{"_meta":{"progressToken":7},"x":[1]}}"#);
        let at = locate(&out).unwrap();
        let out2 = splice(&out, at.meta_progress_token.unwrap(), "\"t\"");
        assert!(
            std::str::from_utf8(&out2)
                .unwrap()
                .contains(r#""progressToken":"t""#)
        );
    }
}
