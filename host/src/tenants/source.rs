//! Where a WASI tenant's module comes from: a local file, or a URL pinned by SHA-256, fetched once and kept in a
//! content-addressed cache (`<state dir>/modules/<sha256>.wasm`), so a restart or a second tenant does not fetch
//! again.

use std::path::Path;

use sha2::{Digest, Sha256};

use super::file::ModuleSource;

/// The largest module catwalk fetches.
const MAX_MODULE_BYTES: usize = 256 << 20;

/// Why a module could not be loaded (no secrets in it: sources are paths and URLs).
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("cannot fetch {url}: {problem}")]
    Fetch { url: String, problem: String },
    #[error("{what} has SHA-256 {actual}, not the pinned {expected}")]
    Mismatch {
        what: String,
        expected: String,
        actual: String,
    },
}

/// The module's bytes, checked against its pin.
pub async fn load(
    source: &ModuleSource,
    cache_dir: &Path,
    http: &reqwest::Client,
) -> Result<Vec<u8>, SourceError> {
    match source {
        ModuleSource::File { path, sha256 } => {
            let bytes = tokio::fs::read(path)
                .await
                .map_err(|source| SourceError::Read {
                    path: path.display().to_string(),
                    source,
                })?;
            if let Some(expected) = sha256 {
                check(&bytes, expected, &path.display().to_string())?;
            }
            Ok(bytes)
        }
        ModuleSource::Url { url, sha256 } => {
            // Shown in logs and errors without a query or credentials, which may carry a secret.
            let shown = shown(url);
            let url = url.as_str();
            let cached = cache_dir.join(format!("{}.wasm", hex(sha256)));
            if let Ok(bytes) = tokio::fs::read(&cached).await
                && check(&bytes, sha256, &shown).is_ok()
            {
                tracing::debug!(url = %shown, "module from the cache");
                return Ok(bytes);
            }
            let bytes = fetch(http, url, &shown).await?;
            check(&bytes, sha256, &shown)?;
            store(cache_dir, &cached, &bytes)
                .await
                .map_err(|source| SourceError::Read {
                    path: cached.display().to_string(),
                    source,
                })?;
            tracing::info!(url = %shown, bytes = bytes.len(), "module fetched and cached");
            Ok(bytes)
        }
    }
}

async fn fetch(http: &reqwest::Client, url: &str, shown: &str) -> Result<Vec<u8>, SourceError> {
    let fail = |problem: String| SourceError::Fetch {
        url: shown.to_owned(),
        problem,
    };
    let mut response = http
        .get(url)
        .send()
        .await
        .and_then(reqwest::Response::error_for_status)
        .map_err(|e| fail(e.without_url().to_string()))?;
    let mut bytes = Vec::new();
    while let Some(chunk) = response
        .chunk()
        .await
        .map_err(|e| fail(e.without_url().to_string()))?
    {
        if bytes.len() + chunk.len() > MAX_MODULE_BYTES {
            return Err(fail(format!("larger than {} MiB", MAX_MODULE_BYTES >> 20)));
        }
        bytes.extend_from_slice(&chunk);
    }
    Ok(bytes)
}

/// Writes the cache entry whole or not at all (a temporary file renamed into place).
async fn store(dir: &Path, path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    tokio::fs::create_dir_all(dir).await?;
    let mut nonce = [0u8; 8];
    getrandom::fill(&mut nonce).map_err(|e| std::io::Error::other(e.to_string()))?;
    let partial = path.with_extension(format!("{}.partial", hex(&nonce)));
    tokio::fs::write(&partial, bytes).await?;
    tokio::fs::rename(&partial, path).await
}

fn check(bytes: &[u8], expected: &[u8; 32], what: &str) -> Result<(), SourceError> {
    let actual: [u8; 32] = Sha256::digest(bytes).into();
    if &actual == expected {
        Ok(())
    } else {
        Err(SourceError::Mismatch {
            what: what.to_owned(),
            expected: hex(expected),
            actual: hex(&actual),
        })
    }
}

/// A URL without its user info and query.
fn shown(url: &str) -> String {
    match reqwest::Url::parse(url) {
        Ok(mut parsed) => {
            let _ = parsed.set_username("");
            let _ = parsed.set_password(None);
            parsed.set_query(None);
            parsed.to_string()
        }
        Err(_) => "<module URL>".to_owned(),
    }
}

pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
