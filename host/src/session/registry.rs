//! Every live session of the process, the session cap, and the sweeper that times out requests and reaps
//! idle sessions.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio_util::sync::CancellationToken;

use super::Session;
use crate::vocab::random_hex;

/// A session id: 128 bits from the operating system's CSPRNG, as 32 lowercase hex digits, after the id of the
/// machine that holds the session and a `-` when there is one (`--machine-id`), so that any machine of the
/// app can tell where a session lives.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct SessionId(Arc<str>);

impl SessionId {
    pub fn generate(machine: Option<&str>) -> Self {
        let random = random_hex();
        Self(
            match machine {
                Some(machine) => format!("{machine}-{random}"),
                None => random,
            }
            .into(),
        )
    }

    /// The machine an id names, if it names one.
    pub fn machine_of(id: &str) -> Option<&str> {
        id.split_once('-').map(|(machine, _)| machine)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

// Lookups by the header's `&str`, without building an id per request.
impl std::borrow::Borrow<str> for SessionId {
    fn borrow(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for SessionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for SessionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The sessions of this process.
#[derive(Debug)]
pub struct Registry {
    // A std lock: held only for map operations, never across an await.
    sessions: RwLock<HashMap<SessionId, Arc<Session>>>,
    places: Arc<Semaphore>,
    max_sessions: usize,
    /// This machine's id, in every session id it gives.
    machine: Option<Arc<str>>,
}

impl Registry {
    pub fn new(max_sessions: usize, machine: Option<Arc<str>>) -> Arc<Self> {
        Arc::new(Self {
            sessions: RwLock::default(),
            places: Arc::new(Semaphore::new(max_sessions)),
            max_sessions,
            machine,
        })
    }

    /// A fresh session id of this machine.
    pub fn new_id(&self) -> SessionId {
        SessionId::generate(self.machine.as_deref())
    }

    /// A place for one more session, or `None` at the cap.
    pub fn reserve(&self) -> Option<OwnedSemaphorePermit> {
        self.places.clone().try_acquire_owned().ok()
    }

    pub fn max_sessions(&self) -> usize {
        self.max_sessions
    }

    pub fn insert(&self, session: Arc<Session>) {
        self.write().insert(session.id.clone(), session);
    }

    pub fn get(&self, id: &str) -> Option<Arc<Session>> {
        self.sessions
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(id)
            .cloned()
    }

    pub fn remove(&self, id: &SessionId) -> Option<Arc<Session>> {
        self.write().remove(id)
    }

    pub fn len(&self) -> usize {
        self.sessions
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn all(&self) -> Vec<Arc<Session>> {
        self.sessions
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .values()
            .cloned()
            .collect()
    }

    /// Ends every session (shutdown).
    pub fn end_all(&self, reason: &str) {
        for session in self.write().drain().map(|(_, s)| s) {
            session.end(reason);
        }
    }

    /// Ends every session of `tenant`; returns how many there were.
    pub fn end_tenant(&self, tenant: &str, reason: &str) -> usize {
        let ended: Vec<Arc<Session>> = {
            let mut sessions = self.write();
            let ids: Vec<SessionId> = sessions
                .iter()
                .filter(|(_, s)| &*s.owner.tenant == tenant)
                .map(|(id, _)| id.clone())
                .collect();
            ids.iter().filter_map(|id| sessions.remove(id)).collect()
        };
        for session in &ended {
            session.end(reason);
        }
        ended.len()
    }

    /// How many sessions `tenant` has open.
    pub fn count_tenant(&self, tenant: &str) -> usize {
        self.sessions
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .values()
            .filter(|s| &*s.owner.tenant == tenant)
            .count()
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, HashMap<SessionId, Arc<Session>>> {
        self.sessions.write().unwrap_or_else(|e| e.into_inner())
    }

    /// Every `every`, times out overdue requests and ends sessions idle past their TTL. The sessions are
    /// visited a chunk at a time, yielding between chunks: with ten thousand sessions a sweep takes
    /// milliseconds, which would otherwise be added to whichever requests arrived during it.
    pub fn spawn_sweeper(self: &Arc<Self>, every: Duration, shutdown: CancellationToken) {
        let registry = self.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(every);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            let mut heap = HeapReturn::default();
            loop {
                tokio::select! {
                    _ = tick.tick() => {}
                    () = shutdown.cancelled() => return,
                }
                let now = Instant::now();
                for chunk in registry.all().chunks(SWEEP_CHUNK) {
                    for session in chunk {
                        if session.sweep(now) {
                            tracing::info!(session = %session.id, "ending idle session");
                            session.end("the session was idle for longer than its TTL");
                            registry.remove(&session.id);
                        }
                    }
                    tokio::task::yield_now().await;
                }
                if heap.after_sweep(registry.len()) {
                    // The table of sessions too: it keeps the size of its peak until told.
                    {
                        let mut sessions = registry.write();
                        let keep = sessions.len() * 2;
                        sessions.shrink_to(keep);
                    }
                    tokio::task::spawn_blocking(trim_heap);
                }
            }
        });
    }
}

/// Sessions ended since the heap was last handed back after which it is handed back even while sessions are
/// still ending.
const RETURN_HEAP_AFTER: usize = 256;

/// Hands the heap that ended sessions leave behind back to the kernel. glibc's malloc keeps freed memory in its
/// arenas, between what is still live, so ten thousand sessions reaped left catwalk ~230 MiB larger than before
/// they were opened; `malloc_trim` releases every free page of every arena. It runs a sweep after sessions end
/// (their instances are dropped by then): once the count of live sessions holds still, or after every
/// [`RETURN_HEAP_AFTER`] ended while it keeps falling.
#[derive(Default)]
struct HeapReturn {
    /// Live sessions at the previous sweep.
    live: usize,
    /// Sessions ended since the heap was last handed back (as far as the counts between sweeps show).
    ended: usize,
    /// Hand the heap back at the next sweep.
    due: bool,
}

impl HeapReturn {
    /// Whether to hand the heap back now, given the sessions live after this sweep.
    fn after_sweep(&mut self, live: usize) -> bool {
        let now = std::mem::take(&mut self.due);
        let ended_now = self.live.saturating_sub(live);
        self.live = live;
        self.ended += ended_now;
        if self.ended > 0 && ended_now == 0 {
            // The ends were a sweep ago: their instances are gone.
            self.ended = 0;
            return true;
        }
        if self.ended >= RETURN_HEAP_AFTER {
            self.ended = 0;
            self.due = true;
        }
        now
    }
}

#[cfg(all(target_os = "linux", target_env = "gnu"))]
#[allow(unsafe_code)]
fn trim_heap() {
    // SAFETY: malloc_trim has no preconditions; it takes each arena's lock itself.
    unsafe {
        libc::malloc_trim(0);
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn trim_heap() {}

/// Sessions swept between two yields to the runtime.
const SWEEP_CHUNK: usize = 256;

#[cfg(test)]
mod tests {
    use super::SessionId;

    #[test]
    fn the_heap_is_handed_back_a_sweep_after_sessions_end() {
        let mut heap = super::HeapReturn::default();
        let sweeps = |heap: &mut super::HeapReturn, counts: &[usize]| -> Vec<bool> {
            counts.iter().map(|&live| heap.after_sweep(live)).collect()
        };
        // Opened, then a few ended: handed back once the count holds still, a sweep later.
        assert_eq!(
            sweeps(&mut heap, &[1000, 990, 990, 990]),
            [false, false, true, false]
        );
        // Ending in a steady stream: a sweep after every 256 or more, and once it stops.
        assert_eq!(
            sweeps(&mut heap, &[800, 700, 500, 300, 300, 300]),
            [false, false, true, false, true, false]
        );
        // Nothing ended, nothing to hand back.
        assert_eq!(sweeps(&mut heap, &[300, 400, 500]), [false, false, false]);
    }

    #[test]
    fn session_ids_are_128_bit_hex_and_distinct() {
        let a = SessionId::generate(None);
        let b = SessionId::generate(None);
        assert_eq!(a.as_str().len(), 32);
        assert!(a.as_str().bytes().all(|c| c.is_ascii_hexdigit()));
        assert_ne!(a, b);
        assert_eq!(SessionId::machine_of(a.as_str()), None);
        let c = SessionId::generate(Some("148ed726c0d989"));
        assert_eq!(SessionId::machine_of(c.as_str()), Some("148ed726c0d989"));
        assert_eq!(c.as_str().len(), 14 + 1 + 32);
    }
}
