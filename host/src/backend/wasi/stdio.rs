//! A guest's stdio, as catwalk gives it: stdin is the session's messages (and nothing else), stdout is cut into
//! lines that become the session's messages, stderr goes to the log. No host stream is ever inherited.
//!
//! A guest blocked reading stdin is a suspended future: it holds no thread and burns no CPU. Reading a new
//! message also starts a new CPU budget (see [`Budget`](super::cpu::Budget)).

use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use tokio::sync::mpsc;
use wasmtime_wasi::cli::{IsTerminal, StdinStream, StdoutStream};
use wasmtime_wasi::p2::{InputStream, OutputStream, Pollable, StreamError, StreamResult};

use super::cpu::Budget;
use crate::backend::{Redactor, ServerEvent, Tag};

/// stdin: the session's messages, each followed by a newline.
#[derive(Clone)]
pub struct GuestStdin(Arc<tokio::sync::Mutex<StdinState>>);

struct StdinState {
    messages: mpsc::Receiver<Bytes>,
    pending: Bytes,
    closed: bool,
    budget: Arc<Budget>,
}

impl GuestStdin {
    pub fn new(messages: mpsc::Receiver<Bytes>, budget: Arc<Budget>) -> Self {
        Self(Arc::new(tokio::sync::Mutex::new(StdinState {
            messages,
            pending: Bytes::new(),
            closed: false,
            budget,
        })))
    }
}

impl StdinState {
    fn take(&mut self, message: Bytes) {
        let mut line = BytesMut::with_capacity(message.len() + 1);
        line.extend_from_slice(&message);
        line.extend_from_slice(b"\n");
        self.pending = line.freeze();
        self.budget.restart();
    }
}

impl IsTerminal for GuestStdin {
    fn is_terminal(&self) -> bool {
        false
    }
}

impl StdinStream for GuestStdin {
    fn p2_stream(&self) -> Box<dyn InputStream> {
        Box::new(self.clone())
    }

    fn async_stream(&self) -> Box<dyn tokio::io::AsyncRead + Send + Sync> {
        // Only WASIp3 guests use this; catwalk serves p1 modules and p2 components.
        Box::new(tokio::io::empty())
    }
}

#[wasmtime_wasi::async_trait]
impl Pollable for GuestStdin {
    async fn ready(&mut self) {
        let mut state = self.0.lock().await;
        if !state.pending.is_empty() || state.closed {
            return;
        }
        state.budget.wait_for_input();
        match state.messages.recv().await {
            Some(message) => state.take(message),
            None => state.closed = true,
        }
    }
}

impl InputStream for GuestStdin {
    fn read(&mut self, size: usize) -> StreamResult<Bytes> {
        // Guests are single-threaded: the lock is only ever held by `ready`, which has returned by now.
        let Ok(mut state) = self.0.try_lock() else {
            return Ok(Bytes::new());
        };
        if state.pending.is_empty() {
            match state.messages.try_recv() {
                Ok(message) => state.take(message),
                Err(mpsc::error::TryRecvError::Empty) => return Ok(Bytes::new()),
                Err(mpsc::error::TryRecvError::Disconnected) => state.closed = true,
            }
        }
        if state.pending.is_empty() && state.closed {
            return Err(StreamError::Closed);
        }
        let n = size.min(state.pending.len());
        Ok(state.pending.split_to(n))
    }
}

/// stdout: complete lines become session messages; a line over the limit ends the guest.
#[derive(Clone)]
pub struct GuestStdout(Arc<std::sync::Mutex<LineSink>>);

struct LineSink {
    line: BytesMut,
    max: usize,
    events: mpsc::Sender<ServerEvent>,
}

impl GuestStdout {
    pub fn new(events: mpsc::Sender<ServerEvent>, max: usize) -> Self {
        Self(Arc::new(std::sync::Mutex::new(LineSink {
            line: BytesMut::new(),
            max,
            events,
        })))
    }
}

impl IsTerminal for GuestStdout {
    fn is_terminal(&self) -> bool {
        false
    }
}

impl StdoutStream for GuestStdout {
    fn p2_stream(&self) -> Box<dyn OutputStream> {
        Box::new(self.clone())
    }

    fn async_stream(&self) -> Box<dyn tokio::io::AsyncWrite + Send + Sync> {
        Box::new(tokio::io::sink())
    }
}

/// Bytes the guest may hand over at once; it waits (suspended) when the session is behind.
const WRITE_PERMIT: usize = 64 * 1024;

#[wasmtime_wasi::async_trait]
impl Pollable for GuestStdout {
    async fn ready(&mut self) {
        let events = self
            .0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .events
            .clone();
        // The guest is this channel's only sender, so capacity seen here is still there for its write.
        if let Ok(permit) = events.reserve().await {
            drop(permit);
        }
    }
}

impl OutputStream for GuestStdout {
    fn write(&mut self, bytes: Bytes) -> StreamResult<()> {
        let mut sink = crate::vocab::lock(&self.0);
        let mut rest = &bytes[..];
        while let Some(newline) = rest.iter().position(|&b| b == b'\n') {
            sink.line.extend_from_slice(&rest[..newline]);
            rest = &rest[newline + 1..];
            let mut line = std::mem::take(&mut sink.line);
            if line.last() == Some(&b'\r') {
                line.truncate(line.len() - 1);
            }
            if line.iter().all(u8::is_ascii_whitespace) {
                continue;
            }
            if line.len() > sink.max {
                return Err(StreamError::trap(
                    "the guest wrote a line over the message size limit",
                ));
            }
            // Capacity was checked by `check_write`; a full queue here means the session is gone.
            if sink
                .events
                .try_send(ServerEvent::Message(line.freeze()))
                .is_err()
            {
                return Err(StreamError::Closed);
            }
        }
        sink.line.extend_from_slice(rest);
        if sink.line.len() > sink.max {
            return Err(StreamError::trap(
                "the guest wrote a line over the message size limit",
            ));
        }
        Ok(())
    }

    fn flush(&mut self) -> StreamResult<()> {
        Ok(())
    }

    fn check_write(&mut self) -> StreamResult<usize> {
        let sink = crate::vocab::lock(&self.0);
        if sink.events.is_closed() {
            return Err(StreamError::Closed);
        }
        // One message per write at most is queued, so room for one is room enough.
        Ok(if sink.events.capacity() > 0 {
            WRITE_PERMIT
        } else {
            0
        })
    }
}

/// stderr: lines to catwalk's log, tagged with the session, until the log allowance is spent.
#[derive(Clone)]
pub struct GuestStderr(Arc<std::sync::Mutex<LogSink>>);

struct LogSink {
    tag: Tag,
    redactor: Redactor,
    line: Vec<u8>,
    left: usize,
    tail: Option<StderrTail>,
}

/// The last lines a guest wrote to stderr (redacted as logged), for whoever must say why it failed.
pub type StderrTail = Arc<std::sync::Mutex<std::collections::VecDeque<String>>>;

/// Lines kept in a [`StderrTail`].
const TAIL_LINES: usize = 20;

/// The longest stderr line logged whole.
const LOG_LINE_CAP: usize = 8 * 1024;

impl GuestStderr {
    pub fn new(tag: Tag, allowance: usize, redactor: Redactor, tail: Option<StderrTail>) -> Self {
        Self(Arc::new(std::sync::Mutex::new(LogSink {
            tag,
            redactor,
            line: Vec::new(),
            left: allowance,
            tail,
        })))
    }
}

impl IsTerminal for GuestStderr {
    fn is_terminal(&self) -> bool {
        false
    }
}

impl StdoutStream for GuestStderr {
    fn p2_stream(&self) -> Box<dyn OutputStream> {
        Box::new(self.clone())
    }

    fn async_stream(&self) -> Box<dyn tokio::io::AsyncWrite + Send + Sync> {
        Box::new(tokio::io::sink())
    }
}

#[wasmtime_wasi::async_trait]
impl Pollable for GuestStderr {
    async fn ready(&mut self) {}
}

impl OutputStream for GuestStderr {
    fn write(&mut self, bytes: Bytes) -> StreamResult<()> {
        let mut sink = crate::vocab::lock(&self.0);
        if sink.left == 0 {
            return Ok(());
        }
        let take = bytes.len().min(sink.left);
        sink.left -= take;
        for &b in &bytes[..take] {
            if b == b'\n' {
                let line = std::mem::take(&mut sink.line);
                let text = String::from_utf8_lossy(&line);
                let text = sink.redactor.apply(&text);
                tracing::info!(session = %sink.tag, "guest stderr: {text}");
                if let Some(tail) = &sink.tail {
                    let mut tail = crate::vocab::lock(tail);
                    if tail.len() == TAIL_LINES {
                        tail.pop_front();
                    }
                    tail.push_back(text.into_owned());
                }
            } else if sink.line.len() < LOG_LINE_CAP {
                sink.line.push(b);
            }
        }
        if sink.left == 0 {
            tracing::warn!(session = %sink.tag, "guest stderr allowance spent; further output is dropped");
        }
        Ok(())
    }

    fn flush(&mut self) -> StreamResult<()> {
        Ok(())
    }

    fn check_write(&mut self) -> StreamResult<usize> {
        Ok(WRITE_PERMIT)
    }
}
