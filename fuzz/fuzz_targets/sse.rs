//! Server-sent events as catwalk frames a server's message (whatever bytes it printed), read back by a parser
//! that follows the SSE specification; and `Last-Event-ID` as a client sends it.
#![no_main]

use catwalk_core::wire::sse;
use libfuzzer_sys::fuzz_target;

/// One event's fields, as the WHATWG `EventSource` parser collects them.
#[derive(Debug, Default, PartialEq)]
struct Event {
    event: Vec<u8>,
    id: Vec<u8>,
    data: Vec<u8>,
}

/// The SSE stream `bytes` as a client reads it: lines end at CRLF, LF or CR; `data` lines join with LF.
fn parse(bytes: &[u8]) -> Vec<Event> {
    let mut events = Vec::new();
    let mut current = Event::default();
    let mut data: Option<Vec<u8>> = None;
    let mut rest = bytes;
    while !rest.is_empty() {
        let end = rest
            .iter()
            .position(|&b| b == b'\r' || b == b'\n')
            .expect("every line is terminated");
        let line = &rest[..end];
        let crlf = rest[end] == b'\r' && rest.get(end + 1) == Some(&b'\n');
        rest = &rest[end + 1 + usize::from(crlf)..];
        if line.is_empty() {
            if let Some(data) = data.take() {
                current.data = data;
                events.push(std::mem::take(&mut current));
            }
            continue;
        }
        let (name, value) = match line.iter().position(|&b| b == b':') {
            Some(0) => continue,
            Some(at) => {
                let value = &line[at + 1..];
                (&line[..at], value.strip_prefix(b" ").unwrap_or(value))
            }
            None => (line, &b""[..]),
        };
        match name {
            b"event" => current.event = value.to_vec(),
            b"id" => current.id = value.to_vec(),
            b"data" => match data.as_mut() {
                Some(data) => {
                    data.push(b'\n');
                    data.extend_from_slice(value);
                }
                None => data = Some(value.to_vec()),
            },
            _ => {}
        }
    }
    events
}

/// `data` as JSON sees it after SSE: each CRLF or CR a LF.
fn normalised(data: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(data.len());
    let mut i = 0;
    while i < data.len() {
        match data[i] {
            b'\r' => {
                out.push(b'\n');
                if data.get(i + 1) == Some(&b'\n') {
                    i += 1;
                }
            }
            b => out.push(b),
        }
        i += 1;
    }
    out
}

fuzz_target!(|data: &[u8]| {
    let framed = sse::event(Some("3-4"), Some("message"), data);
    assert_eq!(
        parse(&framed),
        vec![Event {
            event: b"message".to_vec(),
            id: b"3-4".to_vec(),
            data: normalised(data),
        }],
        "one event, with the message intact"
    );
    if let Ok(text) = std::str::from_utf8(data)
        && let Some((stream, seq)) = sse::parse_event_id(text)
    {
        assert_eq!(
            sse::parse_event_id(&format!("{stream}-{seq}")),
            Some((stream, seq))
        );
    }
    if data.len() >= 16 {
        let stream = u64::from_le_bytes(data[..8].try_into().unwrap());
        let seq = u64::from_le_bytes(data[8..16].try_into().unwrap());
        assert_eq!(
            sse::parse_event_id(&format!("{stream}-{seq}")),
            Some((stream, seq))
        );
    }
});
