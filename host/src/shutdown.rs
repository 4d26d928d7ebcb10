//! Graceful shutdown: SIGTERM or SIGINT stops new sessions, lets in-flight requests finish (up to the drain
//! timeout), then ends every session, which stops every server.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;

use crate::session::Registry;

/// Resolves on the first SIGTERM or SIGINT.
pub async fn signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let (Ok(mut term), Ok(mut int)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) else {
        tracing::error!("cannot listen for SIGTERM/SIGINT");
        return std::future::pending().await;
    };
    tokio::select! {
        _ = term.recv() => tracing::info!("SIGTERM: draining"),
        _ = int.recv() => tracing::info!("SIGINT: draining"),
    }
}

/// After `shutdown`, waits until no request is in flight (or `timeout`), ends every session, then cancels
/// `drained`, which lets the HTTP server finish.
pub async fn drain(
    registry: Arc<Registry>,
    shutdown: CancellationToken,
    drained: CancellationToken,
    timeout: Duration,
) {
    shutdown.cancelled().await;
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline && registry.all().iter().any(|s| s.has_pending()) {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    registry.end_all("catwalk is shutting down");
    drained.cancel();
}

/// Waits (bounded) for stopped sessions' servers to finish their stop sequence.
pub async fn wait_for_children(timeout: Duration) {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline && crate::reaper::running() > 0 {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
