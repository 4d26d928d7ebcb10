//! Micro-benchmarks of what every message pays inside catwalk: peeking at a JSON-RPC message, framing a
//! server's output into lines, finding a session, and routing a server's response to the request's stream.
//!
//!   cargo bench -p catwalk --bench hot_path

use std::sync::Arc;

use bytes::Bytes;
use catwalk::backend::lines::{Line, LineReader};
use catwalk::backend::{Instance, ServerEvent, Tag};
use catwalk::jsonrpc;
use catwalk::session::{Delivery, Limits, Owner, Registry, Session, Transport};
use divan::Bencher;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

fn main() {
    divan::main();
}

const CALL: &[u8] = br#"{"jsonrpc":"2.0","id":1042,"method":"tools/call","params":{"name":"echo","arguments":{"message":"t1042"},"_meta":{"progressToken":"p1042"}}}"#;
const RESULT: &[u8] =
    br#"{"jsonrpc":"2.0","id":1042,"result":{"content":[{"type":"text","text":"Echo: t1042"}]}}"#;

/// A client message, as every POST's body is looked at: kind, id, method, progress token.
#[divan::bench]
fn peek_request() -> Option<jsonrpc::IdKey> {
    jsonrpc::peek(Bytes::from_static(CALL)).ok()?.key
}

/// A server's response, as the router looks at every line.
#[divan::bench]
fn peek_response() -> Option<jsonrpc::IdKey> {
    jsonrpc::peek(Bytes::from_static(RESULT)).ok()?.key
}

/// A batch body of `n` requests split into messages.
#[divan::bench(args = [1, 16])]
fn split_body(bencher: Bencher, n: usize) {
    let body = match n {
        1 => Bytes::from_static(CALL),
        _ => {
            let calls = vec![std::str::from_utf8(CALL).unwrap(); n];
            Bytes::from(format!("[{}]", calls.join(",")))
        }
    };
    bencher.bench(|| jsonrpc::split_body(&body).map(|(messages, _)| messages.len()));
}

/// `lines` newline-terminated responses, as they arrive in one read from a server's stdout, framed.
#[divan::bench(args = [1, 64])]
fn frame_lines(bencher: Bencher, lines: usize) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let mut input = Vec::new();
    for _ in 0..lines {
        input.extend_from_slice(RESULT);
        input.push(b'\n');
    }
    bencher.bench(|| {
        runtime.block_on(async {
            let mut reader = LineReader::new(input.as_slice(), 4 << 20);
            let mut framed = 0;
            while let Ok(Some(Line::Text(_))) = reader.next_line().await {
                framed += 1;
            }
            framed
        })
    });
}

/// A session whose server is the benchmark itself: it holds the other ends of the instance's queues.
struct Harness {
    session: Arc<Session>,
    registry: Arc<Registry>,
    events: mpsc::Sender<ServerEvent>,
    _to_server: mpsc::Receiver<Bytes>,
}

fn harness(registry: &Arc<Registry>) -> Harness {
    let (to_server, server_in) = mpsc::channel(64);
    let (events, from_server) = mpsc::channel(256);
    let instance = Instance {
        to_server,
        from_server,
        stop: CancellationToken::new(),
        tag: Tag::default(),
        spare: false,
    };
    let session = Session::start(
        registry.new_id(),
        Transport::Streamable,
        Owner {
            tenant: Arc::from(""),
            token: None,
        },
        instance,
        Arc::new(Limits::default()),
        Vec::new(),
        registry.clone(),
        None,
        Default::default(),
    );
    registry.insert(session.clone());
    Harness {
        session,
        registry: registry.clone(),
        events,
        _to_server: server_in,
    }
}

/// Finding a session by its id among `sessions` live ones.
#[divan::bench(args = [100, 10_000])]
fn session_lookup(bencher: Bencher, sessions: usize) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let registry = Registry::new(sessions, None);
    let all: Vec<Harness> =
        runtime.block_on(async { (0..sessions).map(|_| harness(&registry)).collect() });
    let id = all[sessions / 2].session.id.as_str().to_owned();
    bencher.bench(|| registry.get(&id).is_some());
    drop(runtime);
    drop(all);
}

/// One request registered on its stream, its response handed to the session by the server's reader, routed by
/// id, and received on the stream: the whole of catwalk's part of a call between HTTP and the server's pipes.
#[divan::bench]
fn route_response(bencher: Bencher) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let registry = Registry::new(1, None);
    let h = runtime.block_on(async { harness(&registry) });
    let request = jsonrpc::peek(Bytes::from_static(CALL)).unwrap();
    bencher.bench(|| {
        runtime.block_on(async {
            let (_, mut live) = h.session.open_request_stream(&[&request]).unwrap();
            h.events
                .send(ServerEvent::Message(Bytes::from_static(RESULT)))
                .await
                .unwrap();
            let delivered: Delivery = live.recv().await.unwrap();
            assert!(delivered.last);
        })
    });
    h.session.end("done");
    h.registry.remove(&h.session.id);
}
