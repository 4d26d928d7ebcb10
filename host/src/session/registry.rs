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
            }
        });
    }
}

/// Sessions swept between two yields to the runtime.
const SWEEP_CHUNK: usize = 256;

#[cfg(test)]
mod tests {
    use super::SessionId;

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
