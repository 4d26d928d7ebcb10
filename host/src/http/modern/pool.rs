//! One tenant's instances kept between its 2026-07-28 requests, and what its listen streams and header checks
//! share: the front end's state per tenant ([`Front`]), held by the tenant's [`crate::tenants::App`].

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{Map, Value};
use tokio::sync::{OwnedSemaphorePermit, broadcast};
use tokio_util::sync::CancellationToken;

use super::bridge::Ask;
use super::params;
use crate::backend::Instance;
use crate::vocab::lock;

/// One tenant's instances kept between its 2026-07-28 requests, and what its listen streams and header checks
/// share.
///
/// - Idle: initialized server processes, so that a request does not pay a process start: at most [`POOL_MAX`];
///   one idle past [`POOL_IDLE`] is stopped (by [`Pool::reap`]). An instance serves one request at a time, and
///   only requests whose client declared the same capabilities and info (what its `initialize` carried) and
///   log level.
/// - Parked: requests whose server asked the client something, waiting for the client's retry with its
///   answers: at most [`PARKED_MAX`], each for [`PARKED_TTL`].
///
/// Everything is stopped when the pool goes (tenant removed or replaced, shutdown).
#[derive(Debug)]
pub struct Pool {
    pub(super) idle: std::sync::Mutex<Vec<Idle>>,
    pub(super) parked: std::sync::Mutex<HashMap<String, Parked>>,
    /// Whether the tenant's server speaks 2026-07-28 itself, once asked (see [`speaks_modern`]).
    pub(super) era: tokio::sync::OnceCell<bool>,
    /// The list changes the tenant's instances announced, for its `subscriptions/listen` streams.
    pub(super) changes: broadcast::Sender<Change>,
    /// The tenant's tools' mirrored parameters, from its server's `tools/list`; forgotten when the server says
    /// its tools changed.
    pub(super) mirrored: std::sync::Mutex<Option<Arc<params::Mirrors>>>,
    /// Cancelled when the pool goes: its listen streams end with a result.
    pub(super) closing: CancellationToken,
    /// Binds the `requestState` of a server that speaks 2026-07-28 itself to who asked ([`Pool::bind_state`]).
    states: ring::hmac::Key,
}

impl Default for Pool {
    fn default() -> Self {
        Self {
            idle: Default::default(),
            parked: Default::default(),
            era: Default::default(),
            changes: broadcast::channel(CHANGES_QUEUE).0,
            mirrored: Default::default(),
            closing: CancellationToken::new(),
            states: ring::hmac::Key::generate(
                ring::hmac::HMAC_SHA256,
                &ring::rand::SystemRandom::new(),
            )
            .expect("the kernel's randomness"),
        }
    }
}

/// How a bound `requestState` starts: `cw1.` and the MAC (HMAC-SHA256, base64url), then `.` and the server's
/// own state.
const BOUND: &str = "cw1.";
const TAG_CHARS: usize = 43;

impl Pool {
    /// A passthrough server's `requestState` for the client, bound to the caller `owner` (its token's digest, or
    /// its OAuth subject and client): `cw1.<MAC of owner and state>.<state>`. Another caller's retry with it is
    /// refused as a forged state is; the server sees its own state only.
    pub(super) fn bind_state(&self, owner: &[u8; 32], state: &str) -> String {
        use base64::Engine;
        let tag = ring::hmac::sign(&self.states, &Self::signed(owner, state));
        let tag = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(tag.as_ref());
        format!("{BOUND}{tag}.{state}")
    }

    /// The server's own state inside a bound `presented`, if this pool bound it to `owner`.
    pub(super) fn unbind_state(&self, owner: &[u8; 32], presented: &str) -> Option<String> {
        use base64::Engine;
        let rest = presented.strip_prefix(BOUND)?;
        let (tag, state) = (
            rest.get(..TAG_CHARS)?,
            rest.get(TAG_CHARS..)?.strip_prefix('.')?,
        );
        let tag = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(tag)
            .ok()?;
        ring::hmac::verify(&self.states, &Self::signed(owner, state), &tag)
            .ok()
            .map(|()| state.to_owned())
    }

    fn signed(owner: &[u8; 32], state: &str) -> Vec<u8> {
        [owner.as_slice(), state.as_bytes()].concat()
    }
}

/// A list a server said changed (a `notifications/*/list_changed`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Change {
    Tools,
    Prompts,
    Resources,
}

impl Change {
    pub(super) const ALL: [Self; 3] = [Self::Tools, Self::Prompts, Self::Resources];

    pub(super) fn method(self) -> &'static str {
        match self {
            Self::Tools => "notifications/tools/list_changed",
            Self::Prompts => "notifications/prompts/list_changed",
            Self::Resources => "notifications/resources/list_changed",
        }
    }

    /// Its name in a `subscriptions/listen` filter.
    pub(super) fn filter(self) -> &'static str {
        match self {
            Self::Tools => "toolsListChanged",
            Self::Prompts => "promptsListChanged",
            Self::Resources => "resourcesListChanged",
        }
    }

    /// The server capability that announces it.
    pub(super) fn capability(self) -> &'static str {
        match self {
            Self::Tools => "tools",
            Self::Prompts => "prompts",
            Self::Resources => "resources",
        }
    }

    pub(super) fn of(method: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|c| c.method() == method)
    }
}

/// List changes a slow listen stream may fall behind by before it is told every list it follows changed.
pub(super) const CHANGES_QUEUE: usize = 64;

#[derive(Debug)]
pub(super) struct Idle {
    pub(super) key: String,
    pub(super) instance: Instance,
    pub(super) initialized: Value,
    pub(super) since: Instant,
}

/// A request waiting for the client's answers to its server's requests.
#[derive(Debug)]
pub(super) struct Parked {
    pub(super) instance: Instance,
    pub(super) initialized: Value,
    /// The pool key of the instance, for a process server.
    pub(super) pool: Option<String>,
    /// The id the server knows the request by.
    pub(super) server_id: Value,
    /// What a retry must match: the method, its parameters (but `_meta`, `inputResponses`, `requestState`),
    /// and the bearer token.
    pub(super) method: String,
    pub(super) digest: String,
    pub(super) owner: Option<[u8; 32]>,
    /// The server's requests, by the key the client answers under.
    pub(super) asks: Vec<(String, Ask)>,
    /// Answers received so far (a retry that left some out is asked again for the rest).
    pub(super) answered: Map<String, Value>,
    pub(super) since: Instant,
    /// Its places under catwalk's and the tenant's caps: a waiting request holds a server like a session.
    pub(super) places: Vec<OwnedSemaphorePermit>,
}

/// Idle initialized processes a tenant keeps at most.
pub const POOL_MAX: usize = 4;
/// How long an initialized process may wait for another request.
pub const POOL_IDLE: Duration = Duration::from_secs(60);
/// Requests a tenant may have waiting for the client's input at once; past it the oldest is stopped.
pub const PARKED_MAX: usize = 32;
/// How long a request waits for the client's retry with its input.
pub const PARKED_TTL: Duration = Duration::from_secs(600);

impl Pool {
    /// An idle instance initialized with `key`, and its `initialize` result.
    pub(super) fn take(&self, key: &str) -> Option<(Instance, Value)> {
        let mut idle = lock(&self.idle);
        // One whose server exited meanwhile is dropped.
        idle.retain(|i| !i.instance.stop.is_cancelled() && !i.instance.to_server.is_closed());
        let at = idle.iter().rposition(|i| i.key == key)?;
        let found = idle.swap_remove(at);
        Some((found.instance, found.initialized))
    }

    /// Keeps an instance for the next request with the same `key`, stopping the oldest idle one if full.
    pub(super) fn put(&self, key: String, instance: Instance, initialized: Value) {
        let mut idle = lock(&self.idle);
        if idle.len() >= POOL_MAX {
            let oldest = idle.remove(0);
            oldest.instance.stop.cancel();
        }
        idle.push(Idle {
            key,
            instance,
            initialized,
            since: Instant::now(),
        });
    }

    /// Keeps a request waiting for input under `state`, stopping the oldest waiting one if full.
    pub(super) fn park(&self, parked: Parked, state: String) {
        let mut waiting = lock(&self.parked);
        if waiting.len() >= PARKED_MAX
            && let Some(oldest) = waiting
                .iter()
                .min_by_key(|(_, p)| p.since)
                .map(|(state, _)| state.clone())
            && let Some(oldest) = waiting.remove(&oldest)
        {
            oldest.instance.stop.cancel();
        }
        waiting.insert(state, parked);
    }

    /// The request waiting under `state`, if the retry matches it (method, parameters, token); a retry that
    /// does not match leaves it waiting.
    pub(super) fn resume(
        &self,
        state: &str,
        method: &str,
        digest: &str,
        owner: Option<[u8; 32]>,
    ) -> Option<Parked> {
        let mut waiting = lock(&self.parked);
        let parked = waiting.get(state)?;
        if parked.method != method || parked.digest != digest || parked.owner != owner {
            return None;
        }
        waiting.remove(state)
    }

    /// Stops the instances idle past [`POOL_IDLE`] and the requests waiting past [`PARKED_TTL`] at `now`.
    pub fn reap(&self, now: Instant) {
        lock(&self.idle).retain(|i| {
            let keep = now.duration_since(i.since) < POOL_IDLE;
            if !keep {
                i.instance.stop.cancel();
            }
            keep
        });
        lock(&self.parked).retain(|_, p| {
            let keep = now.duration_since(p.since) < PARKED_TTL;
            if !keep {
                p.instance.stop.cancel();
            }
            keep
        });
    }

    /// Tells the tenant's listen streams that a list changed; a changed tool list also drops what catwalk knew
    /// of the tools' mirrored parameters.
    pub(super) fn announce(&self, change: Change) {
        if change == Change::Tools {
            *lock(&self.mirrored) = None;
        }
        // No stream listening is not an error.
        let _ = self.changes.send(change);
    }

    /// Idle instances now.
    pub fn len(&self) -> usize {
        lock(&self.idle).len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Stops everything the pool holds, and ends its listen streams.
    pub(super) fn clear(&self) {
        self.closing.cancel();
        lock(&self.idle)
            .drain(..)
            .for_each(|i| i.instance.stop.cancel());
        lock(&self.parked)
            .drain()
            .for_each(|(_, p)| p.instance.stop.cancel());
    }

    /// Reaps `pool` every few seconds until it is dropped or `shutdown`, when it stops what it holds.
    pub fn spawn_reaper(pool: &Arc<Self>, shutdown: CancellationToken) {
        let pool = Arc::downgrade(pool);
        tokio::spawn(async move {
            let mut ticks = tokio::time::interval(POOL_IDLE / 6);
            loop {
                tokio::select! {
                    _ = ticks.tick() => {}
                    () = shutdown.cancelled() => break,
                }
                let Some(pool) = pool.upgrade() else { return };
                pool.reap(Instant::now());
            }
            if let Some(pool) = pool.upgrade() {
                pool.clear();
            }
        });
    }
}

/// What the front end keeps per tenant: its pool.
pub type Front = Arc<Pool>;

impl crate::tenants::Front for Arc<Pool> {
    fn new(shutdown: CancellationToken) -> Self {
        let pool = Arc::new(Pool::default());
        Pool::spawn_reaper(&pool, shutdown);
        pool
    }
}

impl Drop for Pool {
    fn drop(&mut self) {
        self.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::Bytes;
    use serde_json::json;
    use tokio::sync::mpsc;

    /// An instance put in `pool`: its stop token, and its input (alive while held).
    pub(super) fn idle(pool: &Pool, key: &str) -> (CancellationToken, mpsc::Receiver<Bytes>) {
        let (to_server, server_in) = mpsc::channel(1);
        let (_events, from_server) = mpsc::channel(1);
        let stop = CancellationToken::new();
        let instance = Instance {
            to_server,
            from_server,
            stop: stop.clone(),
            tag: Default::default(),
            spare: false,
        };
        pool.put(key.into(), instance, json!({}));
        (stop, server_in)
    }

    #[test]
    pub(super) fn the_pool_is_bounded_keyed_and_reaped() {
        let pool = Pool::default();
        let (stops, _inputs): (Vec<_>, Vec<_>) = (0..=POOL_MAX)
            .map(|i| idle(&pool, &format!("k{i}")))
            .unzip();
        // Over the bound, the oldest idle one is stopped.
        assert!(stops[0].is_cancelled());
        assert!(stops[1..].iter().all(|s| !s.is_cancelled()));
        assert_eq!(pool.len(), POOL_MAX);
        assert!(pool.take("k0").is_none(), "stopped, not kept");
        assert!(pool.take("nope").is_none(), "only the same key");
        let (taken, _) = pool.take("k1").expect("kept for its key");
        assert!(!taken.stop.is_cancelled());
        // Idle past the limit: stopped.
        pool.reap(Instant::now() + POOL_IDLE);
        assert!(pool.is_empty());
        assert!(stops[2..].iter().all(|s| s.is_cancelled()));
        // Whatever a pool holds is stopped when it goes.
        let (last, _input) = idle(&pool, "k");
        drop(pool);
        assert!(last.is_cancelled());
    }
}
