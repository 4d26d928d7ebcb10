//! One tenant as served: its server, its places under the session caps, its turns, its tokens, and the
//! sessions and instances it starts. The front end routes a request to its tenant's [`App`] and asks it for a
//! session or an instance; what the front end keeps per tenant besides ([`Front`]: the 2026-07-28 bridge's
//! instances between requests) lives here for the tenant's life, opaque to this module.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio_util::sync::CancellationToken;

use super::Host;
use super::rates::{Limited, Rates};
use super::store::{Placement, Store};
use crate::audit::TenantAudit;
use crate::backend::{Instance, LaunchError, Launcher};
use crate::metrics::TenantMetrics;
use crate::oauth::TenantAuth;
use crate::policy::offer::Offer;
use crate::session::{Limits, Oversight, Owner, Registry, Session, Transport};

/// What the front end keeps per tenant, made when the tenant is configured and dropped with it (so that what
/// it holds stops when the tenant is removed or replaced).
pub trait Front: std::fmt::Debug + Send + Sync + Sized + 'static {
    /// The state of a new tenant; `shutdown` is catwalk's.
    fn new(shutdown: CancellationToken) -> Self;
}

/// One tenant, as the front end serves it.
#[derive(Debug)]
pub struct App<F> {
    /// The tenant's id (empty in the single-tenant flow).
    pub tenant: Arc<str>,
    pub metrics: Arc<TenantMetrics>,
    pub registry: Arc<Registry>,
    /// The tenant's own session cap and its size, under catwalk's.
    pub places: Option<(Arc<Semaphore>, usize)>,
    /// Requests of this tenant in progress at once (until their response starts); more wait their turn, so
    /// that a tenant's flood queues behind itself instead of in front of every other tenant. `None`: no limit
    /// (the single-tenant flow has no one to be fair to).
    pub turns: Option<Arc<Semaphore>>,
    /// Who may use this tenant.
    pub access: Access,
    /// What of its server's tools, prompts and resources the tenant offers; `None`: everything.
    pub offer: Option<Arc<Offer>>,
    /// Requests per second, for the tenant, each subject and tools.
    pub rates: Rates,
    /// The tenant's audit trail (`--audit-log`), if one is kept.
    pub audit: Option<Arc<TenantAudit>>,
    pub launcher: Launcher,
    pub limits: Arc<Limits>,
    pub max_body_bytes: usize,
    pub keep_alive: Duration,
    /// How long a single request may wait for its answer to come back as plain JSON before the reply
    /// becomes an SSE stream (which can then carry progress, logging and server requests).
    pub json_window: Duration,
    pub shutdown: CancellationToken,
    /// What the front end keeps for this tenant.
    pub front: F,
}

/// Who may use a tenant: holders of its static bearer tokens, holders of OAuth access tokens for it, or
/// (neither set) anyone.
#[derive(Debug, Clone, Default)]
pub struct Access {
    /// SHA-256 of each static bearer token.
    pub tokens: Vec<[u8; 32]>,
    pub oauth: Option<TenantAuth>,
}

impl Access {
    pub fn open(&self) -> bool {
        self.tokens.is_empty() && self.oauth.is_none()
    }
}

/// How a tenant is served, beside its server and who may use it: its own caps (`None`: the machine's) and what
/// it offers.
#[derive(Debug, Default)]
pub struct Terms {
    pub max_sessions: Option<usize>,
    pub request_timeout: Option<Duration>,
    pub max_inflight: Option<usize>,
    pub offer: Offer,
    pub rates: Rates,
    /// The audit trail keeps a keyed hash of each call's arguments.
    pub audit_arguments: bool,
}

/// Why a tenant cannot take a session or a request now.
#[derive(Debug, thiserror::Error)]
pub enum Refused {
    /// A cap is reached, or catwalk is shutting down: try again later.
    #[error("{0}")]
    Unavailable(String),
    #[error(transparent)]
    Launch(#[from] LaunchError),
}

impl<F> App<F> {
    /// A place under catwalk's instance cap and the tenant's, held while a session (or a 2026-07-28 request's
    /// instance) lives.
    pub fn reserve(&self) -> Result<Vec<OwnedSemaphorePermit>, Refused> {
        if self.shutdown.is_cancelled() {
            return Err(Refused::Unavailable("catwalk is shutting down".into()));
        }
        let mut permits = Vec::with_capacity(2);
        if let Some((places, max)) = &self.places {
            permits.push(places.clone().try_acquire_owned().map_err(|_| {
                Refused::Unavailable(format!(
                    "this tenant has its maximum of {max} sessions open; try again later"
                ))
            })?);
        }
        permits.push(self.registry.reserve().ok_or_else(|| {
            Refused::Unavailable(format!(
                "catwalk is serving its maximum of {} sessions; try again later",
                self.registry.max_sessions()
            ))
        })?);
        Ok(permits)
    }

    /// One of the tenant's turns, waited for (counted as waiting meanwhile); held until the response starts.
    /// `None` where the tenant has no limit.
    pub async fn turn(&self) -> Option<OwnedSemaphorePermit> {
        let turns = self.turns.as_ref()?;
        let _waiting = self.metrics.waiting();
        turns.clone().acquire_owned().await.ok()
    }

    /// Takes a call of tool `name` under the tenant's tool rates; a refusal is counted.
    pub fn admit_tool(&self, name: &str) -> Result<(), Limited> {
        self.rates.admit_tool(name).inspect_err(|limited| {
            self.metrics.refused(limited.which.label());
        })
    }

    /// Starts (or takes) an instance for the log's `tag`, counted in the tenant's metrics.
    pub async fn launch(&self, tag: Arc<str>) -> Result<Instance, LaunchError> {
        let launched = self.launcher.launch(tag).await;
        // A shared server's process is counted by its supervisor, not per session.
        if !matches!(self.launcher, Launcher::Shared(_)) {
            let outcome = match &launched {
                Ok(instance) if instance.spare => "spare",
                Ok(_) => "ok",
                Err(_) => "error",
            };
            self.metrics.instance_started(self.launcher.kind(), outcome);
        }
        launched
    }

    /// Starts a server instance and a session on it for `owner`, within catwalk's session cap and the
    /// tenant's.
    pub async fn open_session(
        &self,
        owner: Owner,
        subject: Option<Arc<str>>,
        transport: Transport,
    ) -> Result<Arc<Session>, Refused> {
        let permits = self.reserve()?;
        let id = self.registry.new_id();
        // The log's name for the instance: the session, after its tenant's id if it has one.
        let tag: Arc<str> = match &*self.tenant {
            "" => id.as_str().into(),
            tenant => format!("{tenant}/{id}").into(),
        };
        let per_instance = !matches!(self.launcher, Launcher::Shared(_));
        let starting = crate::traces::child("instance start");
        let instance = self.launch(tag).await;
        drop(starting);
        let instance = instance.inspect_err(|e| {
            tracing::error!(session = %id, "could not start a server instance: {e}");
        })?;
        let session = Session::start(
            id,
            transport,
            owner,
            instance,
            self.limits.clone(),
            permits,
            self.registry.clone(),
            per_instance.then(|| self.metrics.clone()),
            Oversight {
                offer: self.offer.clone(),
                audit: self.audit.clone(),
                subject,
            },
        );
        self.registry.insert(session.clone());
        tracing::debug!(session = %session.id, ?transport, "session started");
        Ok(session)
    }
}

impl Host {
    /// The key of tenant `id`'s argument hashes in the audit trail: from the state key where there is one (the
    /// same across restarts and machines), else this process's own.
    fn arguments_key(&self, id: &str) -> [u8; 32] {
        let purpose = format!("catwalk-audit-arguments:{id}");
        match &self.state_key {
            Some(key) => key.derive(&purpose),
            None => {
                static KEY: std::sync::OnceLock<crate::sealed::StateKey> =
                    std::sync::OnceLock::new();
                KEY.get_or_init(|| {
                    let mut bytes = [0u8; 32];
                    let _ = getrandom::fill(&mut bytes);
                    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
                    crate::sealed::StateKey::parse(&hex).expect("64 hex digits are a key")
                })
                .derive(&purpose)
            }
        }
    }

    /// The front end's view of one tenant.
    pub fn app<F: Front>(
        &self,
        tenant: &str,
        launcher: Launcher,
        access: Access,
        terms: Terms,
    ) -> Arc<App<F>> {
        let mut limits = self.limits.clone();
        if let Some(timeout) = terms.request_timeout {
            limits.request_timeout = timeout;
        }
        Arc::new(App {
            tenant: tenant.into(),
            metrics: self.metrics.tenant(tenant),
            registry: self.registry.clone(),
            launcher,
            limits: Arc::new(limits),
            places: terms.max_sessions.map(|n| (Arc::new(Semaphore::new(n)), n)),
            turns: terms.max_inflight.map(|n| Arc::new(Semaphore::new(n))),
            access,
            offer: (!terms.offer.is_open()).then(|| Arc::new(terms.offer)),
            rates: terms.rates,
            audit: self.audit.as_ref().map(|log| {
                let key = terms.audit_arguments.then(|| self.arguments_key(tenant));
                TenantAudit::new(log.clone(), tenant, key)
            }),
            max_body_bytes: self.max_body_bytes,
            keep_alive: self.keep_alive,
            json_window: self.json_window,
            shutdown: self.shutdown.clone(),
            front: F::new(self.shutdown.clone()),
        })
    }
}

/// The tenants being served, by id.
#[derive(Debug)]
pub struct Tenants<F> {
    pub host: Host,
    map: RwLock<HashMap<String, Arc<App<F>>>>,
    /// Whether tenants come from a tenants file (routes `/t/{id}/...`) or this is the single-tenant flow.
    pub multi: bool,
    /// What the admin API was told, kept; its lock makes one change at a time.
    pub(super) store: tokio::sync::Mutex<Store>,
    /// The tenants file's tenants: the operator's, never changed through the admin API.
    pub(super) file_ids: HashSet<String>,
    /// This machine's id among the fleet's (`--machine-id`).
    pub machine: Option<Arc<str>>,
    /// Where the fleet's tenants live (the store's, read on every request).
    pub(super) placement: Mutex<Placement>,
    /// Tenants placed elsewhere whose sessions here are draining.
    pub(super) draining: Mutex<HashSet<String>>,
    /// How long a moved tenant's open sessions go on here before they are ended.
    pub move_deadline: Duration,
}

/// How a [`Tenants`] keeps what it is told, and where it stands in a fleet.
#[derive(Debug)]
pub struct Keeping {
    pub store: Store,
    pub file_ids: HashSet<String>,
    pub machine: Option<Arc<str>>,
    pub move_deadline: Duration,
}

impl Default for Keeping {
    fn default() -> Self {
        Self {
            store: Store::memory_only(),
            file_ids: HashSet::new(),
            machine: None,
            move_deadline: Duration::from_secs(600),
        }
    }
}

impl<F: Front> Tenants<F> {
    pub fn new(host: Host, multi: bool) -> Arc<Self> {
        Self::keeping(host, multi, Keeping::default())
    }

    pub fn keeping(host: Host, multi: bool, keeping: Keeping) -> Arc<Self> {
        Arc::new(Self {
            host,
            map: RwLock::default(),
            multi,
            placement: Mutex::new(keeping.store.placement().clone()),
            store: tokio::sync::Mutex::new(keeping.store),
            file_ids: keeping.file_ids,
            machine: keeping.machine,
            draining: Mutex::default(),
            move_deadline: keeping.move_deadline,
        })
    }

    pub fn get(&self, id: &str) -> Option<Arc<App<F>>> {
        self.map
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(id)
            .cloned()
    }

    pub fn list(&self) -> Vec<Arc<App<F>>> {
        let mut apps: Vec<_> = self
            .map
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .values()
            .cloned()
            .collect();
        apps.sort_by(|a, b| a.tenant.cmp(&b.tenant));
        apps
    }

    /// Serves `app` under its tenant id; a tenant it replaces is retired (its sessions end). Returns whether
    /// it replaced one.
    pub async fn insert(&self, app: Arc<App<F>>) -> bool {
        let old = self
            .map
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .insert(app.tenant.to_string(), app.clone());
        let replaced = old.is_some();
        if let Some(old) = old {
            self.retire(&old, "its tenant was replaced").await;
        }
        replaced
    }

    /// Stops serving tenant `id`: its sessions end and its instances stop. Whether it existed.
    pub async fn remove(&self, id: &str) -> bool {
        self.remove_because(id, "its tenant was removed").await
    }

    /// [`Tenants::remove`], with the reason its sessions are told.
    pub async fn remove_because(&self, id: &str, reason: &str) -> bool {
        let old = self
            .map
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .remove(id);
        match old {
            Some(old) => {
                self.retire(&old, reason).await;
                true
            }
            None => false,
        }
    }

    /// Stops serving `app` as tenant `id` if it has no session and no request holds it (or `anyway`), and
    /// retires it. The map stays locked while it is checked, so no request can take it meanwhile.
    pub(super) fn take_if_idle(&self, id: &str, app: &Arc<App<F>>, anyway: bool) -> bool {
        let mut map = self.map.write().unwrap_or_else(|e| e.into_inner());
        let Some(current) = map.get(id) else {
            return false;
        };
        // The map's and the caller's: any more is a request in progress.
        let idle = self.host.registry.count_tenant(id) == 0 && Arc::strong_count(app) <= 2;
        if !Arc::ptr_eq(current, app) || !(idle || anyway) {
            return false;
        }
        map.remove(id);
        drop(map);
        let ended = self
            .host
            .registry
            .end_tenant(id, "its tenant moved to another machine");
        if let Launcher::Shared(server) = &app.launcher {
            let server = server.clone();
            tokio::spawn(async move { server.stop().await });
        }
        tracing::info!(tenant = %id, sessions = ended, "tenant retired: it moved to another machine");
        true
    }

    async fn retire(&self, app: &App<F>, reason: &str) {
        let ended = self.host.registry.end_tenant(&app.tenant, reason);
        if let Launcher::Shared(server) = &app.launcher {
            server.stop().await;
        }
        tracing::info!(tenant = %app.tenant, sessions = ended, "tenant retired: {reason}");
    }

    /// Stops every shared server (at shutdown; sessions were ended already).
    pub async fn stop_all(&self) {
        for app in self.list() {
            if let Launcher::Shared(server) = &app.launcher {
                server.stop().await;
            }
        }
    }
}

/// Whether `token`'s SHA-256 is one of `hashes`, comparing every byte of every hash (no early exit), so the time
/// taken says nothing about how close a guess came.
pub fn token_matches(token: &str, hashes: &[[u8; 32]]) -> Option<[u8; 32]> {
    use sha2::{Digest, Sha256};
    let digest: [u8; 32] = Sha256::digest(token.as_bytes()).into();
    let mut found = false;
    for hash in hashes {
        let diff = hash
            .iter()
            .zip(digest.iter())
            .fold(0u8, |acc, (a, b)| acc | (a ^ b));
        found |= std::hint::black_box(diff) == 0;
    }
    found.then_some(digest)
}
