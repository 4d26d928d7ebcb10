//! Accepting connections, bounded, so that what a public endpoint meets (slow clients, floods of connections)
//! costs only whoever sends it:
//! - **caps**: open connections overall (`--max-connections`, by default what the open-file limit leaves room
//!   for) and per client address (`--max-connections-per-ip`); past either, a connection is shed at once, a 503
//!   written if the socket takes it, before it costs a task or a buffer;
//! - **timeouts** a slow client cannot stretch: a request head must arrive whole within `--header-timeout` of its
//!   first byte (a deadline, not an idle timer), its body within `--body-timeout` of the head, and a connection
//!   with no request in progress is closed after `--idle-timeout`. A response in progress (an SSE stream, a
//!   2026-07-28 listen stream) is never idle, and keeps its keep-alives; it counts toward the caps;
//! - TCP_NODELAY on every connection: an SSE event goes out when it is written, not at the client's next ACK.
//!
//! On shutdown the listener closes, each connection finishes the request it is in and closes, and [`serve`]
//! returns once all are gone.

use std::collections::HashMap;
use std::convert::Infallible;
use std::net::IpAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Body;
use bytes::Bytes;
use http_body::{Frame, SizeHint};
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tower::ServiceExt;

use crate::vocab::lock;

/// How connections are bounded.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub header_timeout: Duration,
    pub body_timeout: Duration,
    pub idle_timeout: Duration,
    pub max_connections: usize,
    /// 0: no cap per address.
    pub max_per_ip: usize,
}

/// What a connection shed at a cap is told, if its socket takes it at once.
const SHED: &[u8] = b"HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\nconnection: close\r\ncontent-length: 113\r\n\r\n{\"jsonrpc\":\"2.0\",\"id\":null,\"error\":{\"code\":-32002,\"message\":\"too many connections; try again later, from fewer\"}}";

/// Serves `router` on `listener` within `limits` until `drained`, then waits for every connection to finish.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    limits: Limits,
    drained: CancellationToken,
) -> std::io::Result<()> {
    let total = Arc::new(Semaphore::new(limits.max_connections));
    let per_ip: Arc<Mutex<HashMap<IpAddr, usize>>> = Arc::default();
    let connections = TaskTracker::new();
    let mut last_accept_error: Option<Instant> = None;
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            () = drained.cancelled() => break,
        };
        let (stream, peer) = match accepted {
            Ok(accepted) => accepted,
            Err(e) => {
                // Out of file descriptors, say: said once a second at most, and the loop goes on after a pause
                // instead of spinning.
                if last_accept_error.is_none_or(|at| at.elapsed() > Duration::from_secs(1)) {
                    tracing::warn!("accepting a connection failed: {e}");
                    last_accept_error = Some(Instant::now());
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let Some(place) = Place::take(&total, &per_ip, peer.ip(), limits.max_per_ip) else {
            // Shed: a best-effort answer, never a wait.
            let _ = stream.try_write(SHED);
            continue;
        };
        if let Err(e) = stream.set_nodelay(true) {
            tracing::debug!(error = %e, "cannot set TCP_NODELAY on a connection");
        }
        connections.spawn(connection(
            stream,
            router.clone(),
            limits,
            drained.clone(),
            place,
        ));
    }
    drop(listener);
    connections.close();
    connections.wait().await;
    Ok(())
}

/// A connection's places under the caps, given back when it closes.
struct Place {
    _total: OwnedSemaphorePermit,
    ip: IpAddr,
    per_ip: Arc<Mutex<HashMap<IpAddr, usize>>>,
}

impl Place {
    fn take(
        total: &Arc<Semaphore>,
        per_ip: &Arc<Mutex<HashMap<IpAddr, usize>>>,
        ip: IpAddr,
        max_per_ip: usize,
    ) -> Option<Self> {
        let permit = total.clone().try_acquire_owned().ok()?;
        let ip = ip.to_canonical();
        let mut counts = lock(per_ip);
        let count = counts.entry(ip).or_default();
        if max_per_ip > 0 && *count >= max_per_ip {
            return None;
        }
        *count += 1;
        Some(Self {
            _total: permit,
            ip,
            per_ip: per_ip.clone(),
        })
    }
}

impl Drop for Place {
    fn drop(&mut self) {
        let mut counts = lock(&self.per_ip);
        if let Some(count) = counts.get_mut(&self.ip) {
            *count -= 1;
            if *count == 0 {
                counts.remove(&self.ip);
            }
        }
    }
}

/// Whether a connection has a request in progress, and since when it has had none.
#[derive(Default)]
struct Activity {
    in_progress: AtomicUsize,
    /// Milliseconds since the connection opened, when its last request ended.
    quiet_since: AtomicU64,
}

/// Ends a request's part in its connection's activity when its response is done (or dropped).
struct Busy {
    activity: Arc<Activity>,
    opened: Instant,
}

impl Drop for Busy {
    fn drop(&mut self) {
        let now = u64::try_from(self.opened.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.activity.quiet_since.store(now, Ordering::Relaxed);
        self.activity.in_progress.fetch_sub(1, Ordering::Relaxed);
    }
}

/// The address a request's connection came from (an extension of every request).
#[derive(Debug, Clone, Copy)]
pub struct Peer(pub IpAddr);

async fn connection(
    stream: TcpStream,
    router: Router,
    limits: Limits,
    drained: CancellationToken,
    place: Place,
) {
    let opened = Instant::now();
    let peer = Peer(place.ip);
    let activity = Arc::new(Activity::default());
    let tracked = activity.clone();
    let service = hyper::service::service_fn(move |request: hyper::Request<Incoming>| {
        tracked.in_progress.fetch_add(1, Ordering::Relaxed);
        let busy = Busy {
            activity: tracked.clone(),
            opened,
        };
        let mut request = request.map(|body| Body::new(Deadline::new(body, limits.body_timeout)));
        request.extensions_mut().insert(peer);
        let router = router.clone();
        async move {
            let response = router
                .oneshot(request)
                .await
                .unwrap_or_else(|never: Infallible| match never {});
            Ok::<_, Infallible>(response.map(|body| Body::new(Tracked { body, _busy: busy })))
        }
    });
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout)
        .keep_alive(true);
    let conn = builder.serve_connection(TokioIo::new(stream), service);
    let mut conn = std::pin::pin!(conn);
    let mut closing = false;
    loop {
        let idle = async {
            loop {
                let quiet = Duration::from_millis(activity.quiet_since.load(Ordering::Relaxed));
                let due = (quiet + limits.idle_timeout).saturating_sub(opened.elapsed());
                if due.is_zero() && activity.in_progress.load(Ordering::Relaxed) == 0 {
                    return;
                }
                tokio::time::sleep(due.max(Duration::from_millis(100))).await;
            }
        };
        tokio::select! {
            _ = conn.as_mut() => return,
            () = idle, if !closing => {
                closing = true;
                conn.as_mut().graceful_shutdown();
            }
            () = drained.cancelled(), if !closing => {
                closing = true;
                conn.as_mut().graceful_shutdown();
            }
        }
    }
}

/// A request body that must arrive whole within its deadline.
struct Deadline {
    body: Incoming,
    deadline: Pin<Box<tokio::time::Sleep>>,
    limit: Duration,
}

impl Deadline {
    fn new(body: Incoming, limit: Duration) -> Self {
        Self {
            body,
            deadline: Box::pin(tokio::time::sleep(limit)),
            limit,
        }
    }
}

/// A body that did not arrive in time.
#[derive(Debug, thiserror::Error)]
#[error("the request body did not arrive within {0:?}")]
pub struct BodyTimeout(Duration);

impl http_body::Body for Deadline {
    type Data = Bytes;
    type Error = Box<dyn std::error::Error + Send + Sync>;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        if let Poll::Ready(frame) = Pin::new(&mut self.body).poll_frame(cx) {
            return Poll::Ready(frame.map(|f| f.map_err(Into::into)));
        }
        match self.deadline.as_mut().poll(cx) {
            Poll::Ready(()) => Poll::Ready(Some(Err(Box::new(BodyTimeout(self.limit))))),
            Poll::Pending => Poll::Pending,
        }
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}

/// A response body that keeps its request counted as in progress until it is done.
struct Tracked {
    body: Body,
    _busy: Busy,
}

impl http_body::Body for Tracked {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        Pin::new(&mut self.body).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}

/// The soft limit on open files raised to the hard one (a container's soft 1,024 is common); what it is now.
pub fn raise_open_files() -> u64 {
    use nix::sys::resource::{Resource, getrlimit, setrlimit};
    match getrlimit(Resource::RLIMIT_NOFILE) {
        Ok((soft, hard)) if soft < hard => match setrlimit(Resource::RLIMIT_NOFILE, hard, hard) {
            Ok(()) => hard,
            Err(e) => {
                tracing::warn!("cannot raise the open-file limit from {soft} to {hard}: {e}");
                soft
            }
        },
        Ok((soft, _)) => soft,
        Err(_) => 1024,
    }
}

/// Connections catwalk holds at most by default: what the open-file limit leaves after room for servers' pipes,
/// guests and the state dir (at least 64, at most 10,000).
pub fn default_max_connections(open_files: u64) -> usize {
    usize::try_from(open_files.saturating_sub(256).clamp(64, 10_000)).unwrap_or(10_000)
}

/// Connections one address may hold by default: an eighth of the total, at least 16 (behind a proxy, whose
/// few addresses carry every client, raise it or turn it off with 0).
pub fn default_max_per_ip(max_connections: usize) -> usize {
    (max_connections / 8).max(16)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn places_are_capped_overall_and_per_address_and_given_back() {
        let total = Arc::new(Semaphore::new(3));
        let per_ip = Arc::default();
        let a: IpAddr = "10.0.0.1".parse().unwrap();
        let b: IpAddr = "::ffff:10.0.0.2".parse().unwrap();
        let first = Place::take(&total, &per_ip, a, 2).unwrap();
        let _second = Place::take(&total, &per_ip, a, 2).unwrap();
        assert!(
            Place::take(&total, &per_ip, a, 2).is_none(),
            "the address is at its cap"
        );
        let _third = Place::take(&total, &per_ip, b, 2).unwrap();
        assert!(
            Place::take(&total, &per_ip, "10.0.0.3".parse().unwrap(), 2).is_none(),
            "the total is at its cap"
        );
        drop(first);
        assert!(
            Place::take(&total, &per_ip, a, 2).is_some(),
            "a closed connection gives its places back"
        );
        assert_eq!(default_max_connections(1024), 768);
        assert_eq!(default_max_per_ip(768), 96);
    }
}
