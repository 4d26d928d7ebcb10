//! SSE framing for catwalk's streams, written directly: every event catwalk sends is a single-line JSON-RPC
//! message (or an empty priming event, which axum's builder cannot express), so the encoder is a few
//! `format!`s, plus a keep-alive comment when the stream has been quiet.

use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use futures_util::Stream;
use tokio::time::{Interval, MissedTickBehavior, interval_at};

/// `id: <id>` + `data: <message>`; `event` names the type (legacy SSE uses `message`).
pub fn message(id: Option<&str>, event: Option<&str>, data: &[u8]) -> Bytes {
    let mut out = Vec::with_capacity(data.len() + 48);
    if let Some(event) = event {
        out.extend_from_slice(b"event: ");
        out.extend_from_slice(event.as_bytes());
        out.push(b'\n');
    }
    if let Some(id) = id {
        out.extend_from_slice(b"id: ");
        out.extend_from_slice(id.as_bytes());
        out.push(b'\n');
    }
    out.extend_from_slice(b"data: ");
    out.extend_from_slice(data);
    out.extend_from_slice(b"\n\n");
    Bytes::from(out)
}

/// The event that opens a resumable stream: an id to resume from, the reconnect delay, and empty data.
pub fn priming(id: &str, retry: Duration) -> Bytes {
    Bytes::from(format!(
        "id: {id}\nretry: {}\ndata: \n\n",
        retry.as_millis()
    ))
}

const KEEP_ALIVE: &[u8] = b": keep-alive\n\n";

/// An SSE response over `events`, with `X-Accel-Buffering: no` so proxies do not hold events back.
pub fn response<S>(events: S, keep_alive: Duration) -> Response
where
    S: Stream<Item = Bytes> + Send + 'static,
{
    let start = tokio::time::Instant::now() + keep_alive;
    let mut ticks = interval_at(start, keep_alive);
    ticks.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let body = KeepAlive {
        events: Box::pin(events),
        ticks,
    };
    (
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/event-stream"),
            ),
            (header::CACHE_CONTROL, HeaderValue::from_static("no-cache")),
            (
                header::HeaderName::from_static("x-accel-buffering"),
                HeaderValue::from_static("no"),
            ),
        ],
        Body::from_stream(body),
    )
        .into_response()
}

/// Passes events through; when none came for a keep-alive interval, sends a comment line.
struct KeepAlive {
    events: Pin<Box<dyn Stream<Item = Bytes> + Send>>,
    ticks: Interval,
}

impl Stream for KeepAlive {
    type Item = Result<Bytes, std::convert::Infallible>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        match self.events.as_mut().poll_next(cx) {
            Poll::Ready(Some(event)) => {
                self.ticks.reset();
                Poll::Ready(Some(Ok(event)))
            }
            Poll::Ready(None) => Poll::Ready(None),
            Poll::Pending => match self.ticks.poll_tick(cx) {
                Poll::Ready(_) => Poll::Ready(Some(Ok(Bytes::from_static(KEEP_ALIVE)))),
                Poll::Pending => Poll::Pending,
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_are_framed_as_sse() {
        assert_eq!(
            &message(Some("1-2"), None, b"{}")[..],
            b"id: 1-2\ndata: {}\n\n"
        );
        assert_eq!(
            &message(None, Some("message"), b"{}")[..],
            b"event: message\ndata: {}\n\n"
        );
        assert_eq!(
            &priming("3-0", Duration::from_secs(1))[..],
            b"id: 3-0\nretry: 1000\ndata: \n\n"
        );
    }
}
