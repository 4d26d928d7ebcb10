//! Changes to the tenants while catwalk serves: a tenant put or removed through the admin API, and where the
//! fleet's tenants live. Each change is kept in the [`Store`] before it is answered, takes a version, and can
//! be made conditional on the version its sender last saw (`If-Match`), so that a retry is safe and two
//! control planes cannot overwrite each other unseen.
//!
//! A tenant the tenants file defines is the operator's: it is never changed here. A tenant placed on another
//! machine is drained here: it takes no new sessions (they are replayed to its machine), keeps its open ones
//! until they end or the move deadline passes, and is then removed.

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;

use super::app::{Front, Tenants};
use super::file::TenantDef;
use super::store::{Placement, StoreError};

/// The version a change may be conditional on: from `If-Match` or `If-None-Match`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum Condition {
    #[default]
    Always,
    /// `If-Match`: one of these versions (`None`: `*`, any version); a tag that is not a version never
    /// matches.
    Match(Option<Vec<Option<u64>>>),
    /// `If-None-Match: *`: only if there is none.
    Absent,
}

impl Condition {
    fn holds(&self, current: Option<u64>) -> bool {
        match (self, current) {
            (Condition::Always, _) => true,
            (Condition::Match(None), current) => current.is_some(),
            (Condition::Match(Some(tags)), Some(version)) => tags.contains(&Some(version)),
            (Condition::Match(Some(_)), None) => false,
            (Condition::Absent, current) => current.is_none(),
        }
    }
}

/// What a change did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Changed {
    pub version: u64,
    /// Whether it added what was not there.
    pub created: bool,
    /// Whether anything changed: a repeated request changes nothing.
    pub changed: bool,
}

/// Why a change was refused.
#[derive(Debug, thiserror::Error)]
pub enum ChangeError {
    #[error("the version given in If-Match or If-None-Match is not the current one ({current})")]
    Stale { current: String },
    #[error(
        "tenant {0:?} is defined in the tenants file, which is the operator's: change it there"
    )]
    FromFile(String),
    #[error("no such tenant on this machine")]
    Unknown,
    #[error("{0}")]
    Invalid(String),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("{0}")]
    NoPlacement(&'static str),
}

impl<F: Front> Tenants<F> {
    /// Tenant `id` as the admin API was given it (`None` for the tenants file's and unknown ones).
    pub async fn stored(&self, id: &str) -> Option<super::store::Stored> {
        self.store.lock().await.tenant(id).cloned()
    }

    /// Whether the tenants file defines `id`.
    pub fn from_file(&self, id: &str) -> bool {
        self.file_ids.contains(id)
    }

    /// Serves `def` (the JSON `body`, parsed) as tenant `id`, kept before it returns. The same definition
    /// again changes nothing: its sessions go on, and its version stays.
    pub async fn put(
        self: &Arc<Self>,
        id: &str,
        body: Value,
        def: TenantDef,
        condition: &Condition,
    ) -> Result<Changed, ChangeError> {
        if self.from_file(id) {
            return Err(ChangeError::FromFile(id.to_owned()));
        }
        let secret = !def.env.is_empty()
            || !def.secrets.is_empty()
            || !def.token_sha256.is_empty()
            || def.auth.as_ref().is_some_and(|a| a.has_secret());
        let seen = {
            let store = self.store.lock().await;
            let current = store.tenant(id);
            if let Some(current) = current
                && current.def == body
                && self.get(id).is_some()
            {
                return Ok(Changed {
                    version: current.version,
                    created: false,
                    changed: false,
                });
            }
            let seen = current.map(|c| c.version);
            if !condition.holds(seen) {
                return Err(stale(seen));
            }
            if secret && !store.sealed() && !store.in_memory() {
                return Err(StoreError::NoKey.into());
            }
            seen
        };
        // Built without the lock (a package may take a while to pack); the version is checked again after.
        let spec = def
            .validate()
            .map_err(|e| ChangeError::Invalid(e.to_string()))?;
        let app = self
            .host
            .build(&spec)
            .await
            .map_err(|e| ChangeError::Invalid(format!("tenant {id:?}: {e}")))?;
        let mut store = self.store.lock().await;
        let current = store.tenant(id).map(|c| c.version);
        if current != seen && *condition != Condition::Always {
            return Err(stale(current));
        }
        let version = store.put(id, body, secret).await?;
        let replaced = self.insert(app).await;
        drop(store);
        self.drain_moved();
        Ok(Changed {
            version,
            created: !replaced,
            changed: true,
        })
    }

    /// Stops serving tenant `id` and forgets it, kept before it returns.
    pub async fn delete(&self, id: &str, condition: &Condition) -> Result<(), ChangeError> {
        if self.from_file(id) {
            return Err(ChangeError::FromFile(id.to_owned()));
        }
        let mut store = self.store.lock().await;
        let current = store.tenant(id).map(|c| c.version);
        if current.is_none() && self.get(id).is_none() {
            return Err(ChangeError::Unknown);
        }
        if !condition.holds(current) {
            return Err(stale(current));
        }
        store.remove(id).await?;
        self.remove(id).await;
        self.host.forget_auth(id);
        Ok(())
    }

    /// Where the fleet's tenants live, as last set.
    pub fn placement(&self) -> Placement {
        crate::vocab::lock(&self.placement).clone()
    }

    /// The machine tenant `id` lives on, when that is another machine than this one.
    pub fn placed_elsewhere(&self, id: &str) -> Option<String> {
        let machine = self.machine.as_deref()?;
        crate::vocab::lock(&self.placement)
            .tenants
            .get(id)
            .filter(|owner| owner.as_str() != machine)
            .cloned()
    }

    /// Sets where the fleet's tenants live (tenant id → machine id), kept before it returns; this machine's
    /// tenants placed elsewhere start draining.
    pub async fn place(
        self: &Arc<Self>,
        tenants: BTreeMap<String, String>,
        condition: &Condition,
    ) -> Result<Changed, ChangeError> {
        if self.machine.is_none() {
            return Err(ChangeError::NoPlacement(
                "this catwalk has no machine id (--machine-id; Fly sets FLY_MACHINE_ID), so it cannot tell \
                 its tenants from other machines'",
            ));
        }
        for (tenant, machine) in &tenants {
            if !super::file::valid_id(tenant) {
                return Err(ChangeError::Invalid(format!(
                    "{tenant:?} is not a tenant id"
                )));
            }
            if !crate::vocab::valid_machine_id(machine) {
                return Err(ChangeError::Invalid(format!(
                    "tenant {tenant:?}: a machine id is 1 to 64 letters and digits"
                )));
            }
        }
        let mut store = self.store.lock().await;
        let current = store.placement().clone();
        if current.tenants == tenants && current.version > 0 {
            return Ok(Changed {
                version: current.version,
                created: false,
                changed: false,
            });
        }
        let seen = (current.version > 0).then_some(current.version);
        if !condition.holds(seen) {
            return Err(stale(seen));
        }
        let version = store.set_placement(tenants).await?;
        *crate::vocab::lock(&self.placement) = store.placement().clone();
        drop(store);
        self.drain_moved();
        Ok(Changed {
            version,
            created: seen.is_none(),
            changed: true,
        })
    }

    /// Starts draining every tenant served here that is placed on another machine (and not draining yet).
    pub fn drain_moved(self: &Arc<Self>) {
        for app in self.list() {
            let id = app.tenant.to_string();
            if self.from_file(&id) || self.placed_elsewhere(&id).is_none() {
                continue;
            }
            if !crate::vocab::lock(&self.draining).insert(id.clone()) {
                continue;
            }
            let tenants = self.clone();
            tokio::spawn(async move {
                tenants.drain(&id, app).await;
                crate::vocab::lock(&tenants.draining).remove(&id);
            });
        }
    }

    /// Drains tenant `id` (served as `app`): once it has no session and no request in progress, or the move
    /// deadline has passed, it is removed here. A tenant placed back here, or replaced, stops draining; one put
    /// here after the placement was set is not drained at all (the control plane puts a moving tenant on its
    /// new machine first, then tells the fleet).
    async fn drain(&self, id: &str, app: Arc<super::App<F>>) {
        const EVERY: Duration = Duration::from_millis(200);
        {
            let store = self.store.lock().await;
            let put_at = store.tenant(id).map_or(0, |s| s.version);
            if put_at > store.placement().version {
                return;
            }
        }
        let deadline = tokio::time::Instant::now() + self.move_deadline;
        tracing::info!(tenant = %id, "tenant placed on another machine: draining its sessions here");
        loop {
            let current = self.get(id);
            let same = current.as_ref().is_some_and(|c| Arc::ptr_eq(c, &app));
            drop(current);
            let Some(owner) = self.placed_elsewhere(id).filter(|_| same) else {
                return;
            };
            let late = tokio::time::Instant::now() >= deadline;
            if self.host.shutdown.is_cancelled() {
                return;
            }
            let mut store = self.store.lock().await;
            if self.placed_elsewhere(id).is_none() {
                return;
            }
            // Taken out of service only when idle (or late), so that no request can reach it after the check.
            if self.take_if_idle(id, &app, late) {
                drop(app);
                if let Err(e) = store.remove(id).await {
                    tracing::error!(tenant = %id, "a moved tenant could not be forgotten: {e}");
                }
                drop(store);
                tracing::info!(tenant = %id, %owner, late, "moved tenant drained");
                return;
            }
            drop(store);
            tokio::select! {
                () = tokio::time::sleep(EVERY) => {}
                () = self.host.shutdown.cancelled() => return,
            }
        }
    }

    /// Serves what the admin API kept, at start: every stored tenant the tenants file does not define (one it
    /// does is forgotten: the file wins). A tenant that cannot be built is logged and stays kept.
    pub async fn restore(self: &Arc<Self>) -> std::io::Result<usize> {
        let mut store = self.store.lock().await;
        *crate::vocab::lock(&self.placement) = store.placement().clone();
        let stored: Vec<_> = store
            .tenants()
            .iter()
            .map(|(id, s)| (id.clone(), s.def.clone()))
            .collect();
        let mut restored = 0;
        for (id, def) in stored {
            if self.from_file(&id) {
                tracing::warn!(tenant = %id, "the tenants file defines this tenant too: the file's is served");
                store.remove(&id).await.map_err(std::io::Error::other)?;
                continue;
            }
            let built = async {
                // Not the parser's words: they could quote a value, and values are secrets.
                let def: TenantDef = serde_json::from_value(def)
                    .map_err(|_| "its kept definition is no longer a tenant".to_owned())?;
                let spec = def.validate().map_err(|e| e.to_string())?;
                self.host.build(&spec).await.map_err(|e| e.to_string())
            };
            match built.await {
                Ok(app) => {
                    self.insert(app).await;
                    restored += 1;
                }
                Err(e) => tracing::error!(tenant = %id, "a kept tenant could not be served: {e}"),
            }
        }
        drop(store);
        self.drain_moved();
        Ok(restored)
    }
}

fn stale(current: Option<u64>) -> ChangeError {
    ChangeError::Stale {
        current: current.map_or_else(|| "none".into(), |v| v.to_string()),
    }
}

/// Tenants from the tenants file, which the admin API leaves alone.
pub fn file_ids(specs: &[super::file::TenantSpec]) -> HashSet<String> {
    specs.iter().map(|s| s.id.clone()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conditions_hold_for_the_versions_they_name() {
        assert!(Condition::Always.holds(None));
        assert!(Condition::Match(None).holds(Some(3)));
        assert!(!Condition::Match(None).holds(None));
        assert!(Condition::Match(Some(vec![Some(2), Some(3)])).holds(Some(3)));
        assert!(!Condition::Match(Some(vec![Some(2)])).holds(Some(3)));
        assert!(!Condition::Match(Some(vec![None])).holds(Some(3)));
        assert!(!Condition::Match(Some(vec![Some(3)])).holds(None));
        assert!(Condition::Absent.holds(None));
        assert!(!Condition::Absent.holds(Some(1)));
    }
}
