//! Instances started ahead of need: a new session takes one instead of waiting for a start (a server process,
//! or a guest's instantiation and start-up). Taken ones are replaced in the background; one that ended while
//! waiting is dropped; all are stopped at shutdown.

use std::future::Future;
use std::sync::{Arc, Mutex};

use prometheus_client::metrics::gauge::Gauge;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio_util::sync::CancellationToken;

use super::{Instance, LaunchError};
use crate::vocab::lock;

/// The spares of one server.
#[derive(Debug, Default)]
pub struct Spares {
    wanted: usize,
    pool: Arc<Mutex<Pool>>,
    /// Cancelled at shutdown, or when the server is dropped: the ready spares are stopped.
    stop: CancellationToken,
    /// Places shared with other servers' spares, if their total is bounded: a spare holds one while it waits.
    places: Option<Arc<Semaphore>>,
    /// Spares waiting now, for `/metrics`.
    gauge: Gauge,
}

#[derive(Debug, Default)]
struct Pool {
    ready: Vec<(Instance, Option<OwnedSemaphorePermit>)>,
    /// Starts under way, counted with the ready ones so that concurrent refills do not overshoot.
    starting: usize,
}

impl Pool {
    fn counted(&self, gauge: &Gauge) {
        gauge.set(i64::try_from(self.ready.len()).unwrap_or(i64::MAX));
    }
}

impl Spares {
    /// Keeps `wanted` spares until `shutdown`, counted in `gauge`; each also takes one of `places`, when given,
    /// and a server whose spare finds none left goes without.
    pub fn new(
        wanted: usize,
        shutdown: CancellationToken,
        places: Option<Arc<Semaphore>>,
        gauge: Gauge,
    ) -> Self {
        let pool = Arc::new(Mutex::new(Pool::default()));
        let drained = pool.clone();
        let stop = shutdown.child_token();
        let when = stop.clone();
        let zero = gauge.clone();
        tokio::spawn(async move {
            when.cancelled().await;
            let mut pool = lock(&drained);
            for (spare, _) in pool.ready.drain(..) {
                spare.stop.cancel();
            }
            pool.counted(&zero);
        });
        Self {
            wanted,
            pool,
            stop,
            places,
            gauge,
        }
    }

    /// A running spare, now serving the session `tag`, if there is one.
    pub fn take(&self, tag: &Arc<str>) -> Option<Instance> {
        let mut pool = lock(&self.pool);
        // A spare whose server ended has its stop token cancelled (process) or its input closed (guest).
        pool.ready
            .retain(|(i, _)| !i.stop.is_cancelled() && !i.to_server.is_closed());
        let taken = pool.ready.pop();
        pool.counted(&self.gauge);
        let (mut instance, _place) = taken?;
        instance.tag.name(tag.clone());
        instance.spare = true;
        tracing::debug!(session = %tag, "took a spare");
        Some(instance)
    }

    /// Starts spares in the background, with `start`, up to the number wanted.
    pub fn refill<F, S>(&self, start: S)
    where
        S: Fn() -> F,
        F: Future<Output = Result<Instance, LaunchError>> + Send + 'static,
    {
        loop {
            let place = {
                let mut pool = lock(&self.pool);
                if pool.ready.len() + pool.starting >= self.wanted || self.stop.is_cancelled() {
                    return;
                }
                let place = match &self.places {
                    None => None,
                    Some(places) => match places.clone().try_acquire_owned() {
                        Ok(place) => Some(place),
                        Err(_) => return,
                    },
                };
                pool.starting += 1;
                place
            };
            let started = start();
            let pool = self.pool.clone();
            let stop = self.stop.clone();
            let gauge = self.gauge.clone();
            tokio::spawn(async move {
                // Whatever asked for this refill (a session's first request) goes first.
                tokio::task::yield_now().await;
                let started = started.await;
                // Checked under the lock the shutdown drain takes: a spare is either drained or never kept.
                let mut pool = lock(&pool);
                pool.starting -= 1;
                match started {
                    Ok(spare) if stop.is_cancelled() => spare.stop.cancel(),
                    Ok(spare) => {
                        pool.ready.push((spare, place));
                        pool.counted(&gauge);
                    }
                    // Not retried here: the next session tries again.
                    Err(e) => tracing::warn!("could not start a spare: {e}"),
                }
            });
        }
    }
}

impl Drop for Spares {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}
