//! Server-sent events as catwalk writes them, and the event ids it reads back from `Last-Event-ID`.
//!
//! A message's bytes are the server's own, never re-serialised, and a server may put a carriage return in a
//! message as insignificant white space. SSE ends a line at CR, LF or CRLF, so each such break starts another
//! `data:` line: a client joins them with LF, which is the same white space to JSON.

use bytes::Bytes;
use std::time::Duration;

/// One event: `event:` names its type (the legacy transport uses `message`), `id:` lets a client resume after
/// it, and `data` is the message.
pub fn event(id: Option<&str>, event: Option<&str>, data: &[u8]) -> Bytes {
    let mut out = Vec::with_capacity(data.len() + 48);
    if let Some(event) = event {
        field(&mut out, b"event", event.as_bytes());
    }
    if let Some(id) = id {
        field(&mut out, b"id", id.as_bytes());
    }
    let mut rest = data;
    loop {
        let end = rest
            .iter()
            .position(|&b| b == b'\r' || b == b'\n')
            .unwrap_or(rest.len());
        field(&mut out, b"data", &rest[..end]);
        if end == rest.len() {
            break;
        }
        let crlf = rest[end] == b'\r' && rest.get(end + 1) == Some(&b'\n');
        rest = &rest[end + 1 + usize::from(crlf)..];
    }
    out.push(b'\n');
    Bytes::from(out)
}

/// The event that opens a resumable stream: an id to resume from, the reconnect delay, and empty data.
pub fn priming(id: &str, retry: Duration) -> Bytes {
    Bytes::from(format!(
        "id: {id}\nretry: {}\ndata: \n\n",
        retry.as_millis()
    ))
}

/// A comment line, sent when a stream has been quiet, so that proxies keep it open.
pub const KEEP_ALIVE: &[u8] = b": keep-alive\n\n";

/// `name: value` and a line end. Names and ids are catwalk's own and hold no line breaks.
fn field(out: &mut Vec<u8>, name: &[u8], value: &[u8]) {
    out.extend_from_slice(name);
    out.extend_from_slice(b": ");
    out.extend_from_slice(value);
    out.push(b'\n');
}

/// `<stream>-<seq>`, as catwalk writes event ids: the stream and the event's number on it.
pub fn parse_event_id(id: &str) -> Option<(u64, u64)> {
    let (stream, seq) = id.split_once('-')?;
    Some((stream.parse().ok()?, seq.parse().ok()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_are_framed_as_sse() {
        assert_eq!(
            &event(Some("1-2"), None, b"{}")[..],
            b"id: 1-2\ndata: {}\n\n"
        );
        assert_eq!(
            &event(None, Some("message"), b"{}")[..],
            b"event: message\ndata: {}\n\n"
        );
        assert_eq!(
            &priming("3-0", Duration::from_secs(1))[..],
            b"id: 3-0\nretry: 1000\ndata: \n\n"
        );
    }

    #[test]
    fn line_breaks_in_a_message_start_new_data_lines() {
        assert_eq!(
            &event(None, None, b"{\"a\":1,\r\"b\":2\r\n}\n")[..],
            b"data: {\"a\":1,\ndata: \"b\":2\ndata: }\ndata: \n\n"
        );
    }

    #[test]
    fn event_ids_are_stream_and_sequence() {
        assert_eq!(parse_event_id("7-42"), Some((7, 42)));
        for bad in [
            "",
            "7",
            "-1",
            "7-",
            "a-1",
            "1-2-3",
            "99999999999999999999-1",
        ] {
            assert_eq!(parse_event_id(bad), None, "{bad}");
        }
    }
}
