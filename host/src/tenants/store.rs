//! What the admin API was told, kept in the state dir so that a restart (Fly's auto-stop, a crash) serves the
//! same tenants: every tenant put through the API, with its version, and where the fleet's tenants live.
//!
//! One file, `admin/state.json`, written whole for each change: to a temporary file, flushed to disk, renamed
//! over the old one, and the directory flushed too. A change is answered only after that, so a crash at any
//! moment leaves either the state before it or the state after it.
//!
//! A tenant's definition holds its secrets (env values, secrets bound to hosts, token digests). With a key
//! (`CATWALK_STATE_KEY`, 32 bytes) every definition is sealed with AES-256-GCM, bound to its tenant and
//! version; without one, only a definition with no secrets is kept, and one with secrets is refused. The key
//! is read from the environment and never written anywhere.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::sealed::write_durably;
pub use crate::sealed::{KEY_VAR, StateKey};

const FORMAT: u32 = 1;

/// Where the fleet's tenants live: tenant id → machine id, with its version.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Placement {
    pub version: u64,
    pub tenants: BTreeMap<String, String>,
}

/// A tenant as the admin API was given it: its definition (JSON, with its secrets) and its version.
#[derive(Debug, Clone, PartialEq)]
pub struct Stored {
    pub version: u64,
    pub def: Value,
}

/// The file, as written.
#[derive(Serialize, Deserialize, Default)]
struct File {
    format: u32,
    /// The last version given out: every change takes the next one.
    revision: u64,
    tenants: BTreeMap<String, Record>,
    placement: Placement,
}

#[derive(Serialize, Deserialize, Clone)]
struct Record {
    version: u64,
    #[serde(flatten)]
    body: Body,
}

#[derive(Serialize, Deserialize, Clone)]
#[serde(rename_all = "snake_case")]
enum Body {
    /// A definition with no secrets, kept as it is (no key was given).
    Plain(Value),
    /// nonce ‖ AES-256-GCM(definition), base64; bound to `tenant:{id}:{version}`.
    Sealed(String),
}

/// Why a change cannot be kept.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error(
        "this tenant has secrets (env values, secrets or token digests), and catwalk keeps them on disk only \
         encrypted: set {KEY_VAR} (32 bytes, such as openssl rand -base64 32; on Fly a secret) and restart"
    )]
    NoKey,
    #[error("the state dir could not be written: {0}")]
    Io(#[from] std::io::Error),
    #[error("{0}")]
    Seal(String),
}

/// The admin API's durable state; one writer at a time (the admin API holds it behind a lock).
#[derive(Debug)]
pub struct Store {
    /// `None`: kept in memory only (a catwalk with no tenants file, whose admin API has nothing to restore).
    dir: Option<PathBuf>,
    key: Option<StateKey>,
    revision: u64,
    tenants: BTreeMap<String, Stored>,
    records: BTreeMap<String, RecordSlot>,
    placement: Placement,
    /// Held while the process lives: a second catwalk on the same state dir is refused.
    _lock: Option<std::fs::File>,
}

/// A record as it is on disk, kept so that an unchanged tenant is not sealed again on every write.
#[derive(Clone)]
struct RecordSlot(Record);

impl std::fmt::Debug for RecordSlot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Record(v{})", self.0.version)
    }
}

impl Store {
    /// Opens (or starts) the state under `state_dir/admin`, reading every kept tenant. Fails when another
    /// catwalk holds it, when it was sealed with another key, or when it has sealed tenants and no key is given.
    pub fn open(state_dir: &Path, key: Option<StateKey>) -> Result<Self, String> {
        use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
        let dir = state_dir.join("admin");
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&dir)
            .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
        let lock = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .mode(0o600)
            .open(dir.join("lock"))
            .map_err(|e| format!("cannot open {}: {e}", dir.join("lock").display()))?;
        rustix::fs::flock(&lock, rustix::fs::FlockOperation::NonBlockingLockExclusive).map_err(
            |_| {
                format!(
                    "another catwalk is using the state dir {}: each catwalk needs its own",
                    state_dir.display()
                )
            },
        )?;
        let path = dir.join("state.json");
        let file: File = match std::fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes)
                .map_err(|e| format!("{} is not catwalk's state: {e}", path.display()))?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => File::default(),
            Err(e) => return Err(format!("cannot read {}: {e}", path.display())),
        };
        if file.format > FORMAT {
            return Err(format!(
                "{} was written by a newer catwalk (format {})",
                path.display(),
                file.format
            ));
        }
        let mut tenants = BTreeMap::new();
        let mut records = BTreeMap::new();
        for (id, record) in file.tenants {
            let def = match &record.body {
                Body::Plain(def) => def.clone(),
                Body::Sealed(text) => {
                    let key = key.as_ref().ok_or_else(|| {
                        format!(
                            "the state dir keeps tenants' secrets sealed, and {KEY_VAR} is not set: set the key \
                             they were sealed with"
                        )
                    })?;
                    let plain = key.open(&aad(&id, record.version), text).ok_or_else(|| {
                        format!(
                            "tenant {id:?} in the state dir cannot be opened with this {KEY_VAR}: it was \
                             sealed with another key, or changed"
                        )
                    })?;
                    serde_json::from_slice(&plain)
                        .map_err(|_| format!("tenant {id:?} in the state dir is not JSON"))?
                }
            };
            tenants.insert(
                id.clone(),
                Stored {
                    version: record.version,
                    def,
                },
            );
            records.insert(id, RecordSlot(record));
        }
        Ok(Self {
            dir: Some(dir),
            key,
            revision: file.revision,
            tenants,
            records,
            placement: file.placement,
            _lock: Some(lock),
        })
    }

    /// A store that keeps nothing on disk.
    pub fn memory_only() -> Self {
        Self {
            dir: None,
            key: None,
            revision: 0,
            tenants: BTreeMap::new(),
            records: BTreeMap::new(),
            placement: Placement::default(),
            _lock: None,
        }
    }

    /// Whether nothing is kept on disk.
    pub fn in_memory(&self) -> bool {
        self.dir.is_none()
    }

    /// Whether tenants are sealed at rest (a key was given).
    pub fn sealed(&self) -> bool {
        self.key.is_some()
    }

    pub fn tenants(&self) -> &BTreeMap<String, Stored> {
        &self.tenants
    }

    pub fn tenant(&self, id: &str) -> Option<&Stored> {
        self.tenants.get(id)
    }

    pub fn placement(&self) -> &Placement {
        &self.placement
    }

    /// Keeps tenant `id` as `def` (on disk before it returns) and gives its new version. `secret` says
    /// whether `def` holds secrets: without a key it is then refused.
    pub async fn put(&mut self, id: &str, def: Value, secret: bool) -> Result<u64, StoreError> {
        let version = self.revision + 1;
        let body = match &self.key {
            Some(key) => {
                let plain =
                    serde_json::to_vec(&def).map_err(|e| StoreError::Seal(e.to_string()))?;
                Body::Sealed(
                    key.seal(&aad(id, version), &plain)
                        .map_err(StoreError::Seal)?,
                )
            }
            None if secret && self.dir.is_some() => return Err(StoreError::NoKey),
            None => Body::Plain(def.clone()),
        };
        let mut records = self.records.clone();
        records.insert(id.to_owned(), RecordSlot(Record { version, body }));
        self.write(version, &records, &self.placement.clone())
            .await?;
        self.records = records;
        self.revision = version;
        self.tenants.insert(id.to_owned(), Stored { version, def });
        Ok(version)
    }

    /// Forgets tenant `id` (on disk before it returns). Whether it was kept.
    pub async fn remove(&mut self, id: &str) -> Result<bool, StoreError> {
        if !self.records.contains_key(id) {
            return Ok(false);
        }
        let version = self.revision + 1;
        let mut records = self.records.clone();
        records.remove(id);
        self.write(version, &records, &self.placement.clone())
            .await?;
        self.records = records;
        self.revision = version;
        self.tenants.remove(id);
        Ok(true)
    }

    /// Keeps where the fleet's tenants live (on disk before it returns) and gives its new version.
    pub async fn set_placement(
        &mut self,
        tenants: BTreeMap<String, String>,
    ) -> Result<u64, StoreError> {
        let version = self.revision + 1;
        let placement = Placement { version, tenants };
        let records = self.records.clone();
        self.write(version, &records, &placement).await?;
        self.revision = version;
        self.placement = placement;
        Ok(version)
    }

    async fn write(
        &self,
        revision: u64,
        records: &BTreeMap<String, RecordSlot>,
        placement: &Placement,
    ) -> Result<(), StoreError> {
        let file = File {
            format: FORMAT,
            revision,
            tenants: records
                .iter()
                .map(|(id, slot)| (id.clone(), slot.0.clone()))
                .collect(),
            placement: placement.clone(),
        };
        let Some(dir) = self.dir.clone() else {
            return Ok(());
        };
        let bytes = serde_json::to_vec(&file).map_err(|e| StoreError::Seal(e.to_string()))?;
        tokio::task::spawn_blocking(move || write_durably(&dir, "state.json", &bytes))
            .await
            .map_err(std::io::Error::other)??;
        Ok(())
    }
}

/// What a sealed definition is bound to: moving it to another tenant or version makes it unreadable.
fn aad(id: &str, version: u64) -> String {
    format!("catwalk-tenant:{id}:{version}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::Engine;
    use base64::engine::general_purpose::STANDARD;
    use serde_json::json;

    fn key() -> StateKey {
        StateKey::parse(&"ab".repeat(32)).unwrap()
    }

    fn scratch(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("catwalk-store-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        dir
    }

    #[test]
    fn keys_are_hex_or_base64_of_32_bytes_and_errors_never_repeat_them() {
        assert!(StateKey::parse(&"0f".repeat(32)).is_ok());
        assert!(StateKey::parse(&STANDARD.encode([7u8; 32])).is_ok());
        let error = StateKey::parse("hunter2-secret").unwrap_err();
        assert!(!error.contains("hunter2"), "{error}");
        assert!(StateKey::parse(&STANDARD.encode([7u8; 16])).is_err());
    }

    #[tokio::test]
    async fn sealed_tenants_come_back_with_their_versions_and_never_in_plain_text() {
        let dir = scratch("sealed");
        let def = json!({"id": "acme", "env": {"TOKEN": "canary-7f3a"}});
        {
            let mut store = Store::open(&dir, Some(key())).unwrap();
            assert_eq!(store.put("acme", def.clone(), true).await.unwrap(), 1);
            let placement = BTreeMap::from([("acme".to_owned(), "m1".to_owned())]);
            assert_eq!(store.set_placement(placement).await.unwrap(), 2);
        }
        let text = std::fs::read_to_string(dir.join("admin/state.json")).unwrap();
        assert!(!text.contains("canary-7f3a"), "{text}");

        let store = Store::open(&dir, Some(key())).unwrap();
        assert_eq!(store.tenant("acme"), Some(&Stored { version: 1, def }));
        assert_eq!(store.placement().version, 2);
        drop(store);

        let other = StateKey::parse(&"cd".repeat(32)).unwrap();
        let error = Store::open(&dir, Some(other)).unwrap_err();
        assert!(error.contains("another key"), "{error}");
        let error = Store::open(&dir, None).unwrap_err();
        assert!(error.contains(KEY_VAR), "{error}");
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[tokio::test]
    async fn without_a_key_secrets_are_refused_and_the_rest_is_kept() {
        let dir = scratch("plain");
        let mut store = Store::open(&dir, None).unwrap();
        let refused = store
            .put("a", json!({"id": "a", "env": {"K": "v"}}), true)
            .await;
        assert!(matches!(refused, Err(StoreError::NoKey)));
        assert_eq!(
            store
                .put("b", json!({"id": "b", "command": ["x"]}), false)
                .await
                .unwrap(),
            1
        );
        assert!(Store::open(&dir, None).is_err(), "the first still holds it");
        drop(store);
        let store = Store::open(&dir, None).unwrap();
        assert_eq!(store.tenants().len(), 1);
        std::fs::remove_dir_all(dir).unwrap();
    }
}
