//! The catalog: which npm packages have a published WASI build. With one configured (`--catalog`), a tenant
//! that names a package listed there is served by the WASI build, sandboxed, instead of by `npx`; a package
//! not listed falls back to `npx` (unless the tenant asks for `sandbox = "wasi"`, which then fails).
//!
//! A catalog is a TOML file, local or at an `https://` URL:
//!
//! ```toml
//! [[package]]
//! name = "@modelcontextprotocol/server-everything"
//! version = "2025.9.25"                 # optional: without it, the entry serves any version asked for
//! wasm = { url = "https://builds.example.com/everything-2025.9.25.wasm", sha256 = "<64 hex digits>" }
//!
//! [[package]]
//! name = "my-server"
//! wasm = { path = "builds/my-server.wasm", sha256 = "<64 hex digits>" }   # relative to the catalog file
//! ```
//!
//! Every build is pinned by its SHA-256 and fetched and cached like any tenant's module. A package asked for as
//! `name@version` takes the entry with that exact version, else an entry without a version; a package asked
//! for as `name` (or `name@latest`) takes the first entry of that name.

use std::path::Path;

pub use catwalk_core::schema::catalog::{Catalog, CatalogError, MAX_CATALOG_BYTES};

/// Reads the catalog at `location`: a path, or an `https://` URL (plain `http://` only to loopback).
pub async fn load(location: &str, http: &reqwest::Client) -> Result<Catalog, CatalogError> {
    let remote = location.starts_with("https://") || location.starts_with("http://");
    let text = if remote {
        fetch(location, http)
            .await
            .map_err(|e| CatalogError::Read(location.into(), e))?
    } else {
        tokio::fs::read_to_string(location)
            .await
            .map_err(|e| CatalogError::Read(location.into(), e.to_string()))?
    };
    let base = (!remote).then(|| {
        Path::new(location)
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_default()
    });
    Catalog::parse(&text, base.as_deref())
        .map_err(|problem| CatalogError::Invalid(location.into(), problem))
}

async fn fetch(url: &str, http: &reqwest::Client) -> Result<String, String> {
    let parsed = reqwest::Url::parse(url).map_err(|e| e.to_string())?;
    let loopback = parsed
        .host_str()
        .is_some_and(|h| matches!(h, "127.0.0.1" | "localhost" | "[::1]"));
    if parsed.scheme() != "https" && !loopback {
        return Err("must be https:// (plain http only to a loopback address)".into());
    }
    let response = http
        .get(parsed)
        .send()
        .await
        .and_then(|r| r.error_for_status())
        .map_err(|e| e.without_url().to_string())?;
    if response
        .content_length()
        .is_some_and(|n| n > MAX_CATALOG_BYTES as u64)
    {
        return Err(format!("larger than {} MiB", MAX_CATALOG_BYTES >> 20));
    }
    let bytes = response
        .bytes()
        .await
        .map_err(|e| e.without_url().to_string())?;
    if bytes.len() > MAX_CATALOG_BYTES {
        return Err(format!("larger than {} MiB", MAX_CATALOG_BYTES >> 20));
    }
    String::from_utf8(bytes.to_vec()).map_err(|_| "not UTF-8 text".into())
}
