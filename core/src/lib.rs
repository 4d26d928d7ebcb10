//! catwalk-core: what catwalk decides and parses without a runtime around it, below every module of the
//! `catwalk` host (which re-exports these): the words every layer shares, the policy a tenant's server lives by,
//! and the formats clients and configuration hand it. None of it imports the host, and all of it is fuzzed
//! (`fuzz/`) without building wasmtime.
//!
//! # Layout
//! - [`schema`]: the tenants file and the admin API's tenants ([`schema::tenants`]), and the catalog of WASI
//!   builds ([`schema::catalog`]), validated into types that cannot be invalid.
//! - [`policy`]: what a tenant's server is given and may take (egress, secrets, grants, limits), decided once for
//!   every backend.
//! - [`wire`]: the small wire formats of clients (2026-07-28 headers, `Last-Event-ID`, `Mcp-Param-*`).
//! - [`jsonrpc`]: the bridge's only view of messages: a peek at `id`/`method`, never a re-serialisation.
//! - [`lines`]: a server's stdout cut into bounded lines.
//! - [`vocab`]: the words every layer shares: modes, sandboxes, ids, durations and sizes, a mutex guard.

pub mod jsonrpc;
pub mod lines;
pub mod policy;
pub mod schema;
pub mod vocab;
pub mod wire;
