//! What catwalk keeps in its state dir that must survive a crash and must not be read: [`StateKey`] seals
//! secrets (AES-256-GCM, `ring`'s), and [`write_durably`] replaces a file so that a crash leaves the old one or
//! the new one, whole. The admin API's tenants ([`crate::tenants::store`]) and the built-in authorization
//! server's keys and grants ([`crate::oauth`]) are kept this way.

use std::io::Write;
use std::path::Path;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use ring::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};

/// The environment variable that holds the state key.
pub const KEY_VAR: &str = "CATWALK_STATE_KEY";

/// The key tenants' definitions are sealed with.
#[derive(Clone)]
pub struct StateKey([u8; 32]);

impl std::fmt::Debug for StateKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("StateKey(<redacted>)")
    }
}

impl StateKey {
    /// A key written as 64 hex digits or as base64 of 32 bytes (`openssl rand -base64 32`). The error never
    /// repeats the text.
    pub fn parse(text: &str) -> Result<Self, String> {
        let text = text.trim();
        let bytes = if text.len() == 64 && text.bytes().all(|b| b.is_ascii_hexdigit()) {
            (0..32)
                .map(|i| u8::from_str_radix(&text[2 * i..2 * i + 2], 16))
                .collect::<Result<Vec<u8>, _>>()
                .ok()
        } else {
            STANDARD
                .decode(text)
                .or_else(|_| base64::engine::general_purpose::URL_SAFE.decode(text))
                .ok()
        };
        let bytes = bytes.filter(|b| b.len() == 32).ok_or_else(|| {
            format!(
                "{KEY_VAR} must be 32 bytes, as 64 hex digits or base64 (openssl rand -base64 32)"
            )
        })?;
        let mut key = [0u8; 32];
        key.copy_from_slice(&bytes);
        Ok(Self(key))
    }

    /// A key of its own for `purpose` (HMAC-SHA256 of it under the state key): the same on every machine that
    /// has the state key, and telling nothing of it.
    pub fn derive(&self, purpose: &str) -> [u8; 32] {
        let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, &self.0);
        let mut derived = [0u8; 32];
        derived.copy_from_slice(ring::hmac::sign(&key, purpose.as_bytes()).as_ref());
        derived
    }

    fn aead(&self) -> LessSafeKey {
        LessSafeKey::new(
            UnboundKey::new(&AES_256_GCM, &self.0).expect("32 bytes is an AES-256 key"),
        )
    }

    pub fn seal(&self, aad: &str, plain: &[u8]) -> Result<String, String> {
        let mut nonce = [0u8; NONCE_LEN];
        getrandom::fill(&mut nonce).map_err(|e| format!("no randomness for a nonce: {e}"))?;
        let mut sealed = plain.to_vec();
        self.aead()
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(aad.as_bytes()),
                &mut sealed,
            )
            .map_err(|_| "sealing failed")?;
        let mut out = nonce.to_vec();
        out.extend_from_slice(&sealed);
        Ok(STANDARD.encode(out))
    }

    pub fn open(&self, aad: &str, text: &str) -> Option<Vec<u8>> {
        let mut bytes = STANDARD.decode(text).ok()?;
        if bytes.len() < NONCE_LEN {
            return None;
        }
        let mut sealed = bytes.split_off(NONCE_LEN);
        let nonce = Nonce::try_assume_unique_for_key(&bytes).ok()?;
        let aead = self.aead();
        let plain = aead
            .open_in_place(nonce, Aad::from(aad.as_bytes()), &mut sealed)
            .ok()?;
        Some(plain.to_vec())
    }
}

/// Writes `dir/name` so that a crash leaves the old file or the new one, whole: a temporary file, flushed,
/// renamed over the old, and the directory flushed.
pub fn write_durably(dir: &Path, name: &str, bytes: &[u8]) -> std::io::Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    let temporary = dir.join(format!("{name}.tmp"));
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(true)
        .write(true)
        .mode(0o600)
        .open(&temporary)?;
    file.write_all(bytes)?;
    file.sync_all()?;
    drop(file);
    std::fs::rename(&temporary, dir.join(name))?;
    std::fs::File::open(dir)?.sync_all()
}
