//! catwalk serves MCP servers that speak newline-delimited JSON-RPC on stdio to remote clients over
//! Streamable HTTP and the legacy HTTP+SSE transport, many tenants to a machine: each tenant's server runs as
//! confined child processes or as a WASI guest inside catwalk.
//!
//! # Layout
//! The modules from the top floor down. Read down the list to follow a request: it enters in [`http`], finds its
//! tenant in [`tenants`], its session in [`session`], and its server in [`backend`], whose messages
//! [`jsonrpc`] peeks at. Each module uses only modules listed below it, never one above, so no two modules
//! import each other (`host/tests/layers.rs` checks this list against the code).
//!
//! - [`cli`]: the `catwalk` command line: `serve`, `pack`, `healthcheck`, and the `confine` helper.
//! - [`serve`]: `catwalk serve` assembled: registry, tenants, router, listener, and the drain ([`run`]).
//! - [`config`]: flags and environment, validated once into a [`config::Config`].
//! - [`shutdown`]: SIGTERM/SIGINT, then a bounded drain.
//! - [`http`]: where requests enter, and protocol rules: Streamable HTTP (`/mcp`, both eras), legacy SSE
//!   (`/sse`, `/message`), the Origin/Host guard, authentication, the admin API, health endpoints, and the one
//!   error type every handler answers with.
//! - [`tenants`]: who is served: each tenant as served ([`tenants::App`]: its places, turns and tokens), the
//!   launching of its sessions and instances, its server built from the tenants file, the admin API or the flags.
//! - [`pack`]: `catwalk pack`: npm packages precompiled to run in the WASI sandbox.
//! - [`session`]: one 2025-era MCP session, its pending requests and the streams its messages travel on; the
//!   registry of every session, the session cap, idle reaping and request timeouts.
//! - [`backend`]: server instances behind sessions: a supervised process per session, an npm package
//!   installed once, one process shared by every session, or a WASI guest.
//! - [`confine`]: `catwalk confine`, which narrows a tenant's child process before it runs.
//! - [`jail`]: a tenant's children isolated: a network namespace whose only way out is catwalk's egress proxy
//!   and resolver, and a cgroup for their memory, CPU and processes.
//! - [`packages`]: npm packages resolved once to a lockfile that is kept (the pin), their tree verified
//!   against the registry's signatures and Sigstore provenance before anything of them runs.
//! - [`oauth`]: OAuth 2.1 for tenants' clients: tokens checked for any issuer, and catwalk's own authorization
//!   server (clients, sign-in, grants, signing keys).
//! - [`egress`]: a sandboxed server's HTTP(S) requests, made by catwalk under its tenant's policy; and
//!   catwalk's own fetches of what clients and issuers name, under the same guard.
//! - [`metrics`]: Prometheus metrics per tenant, on `/metrics`.
//! - [`audit`]: the audit trail, a JSON line per call and per refusal.
//! - [`traces`]: OpenTelemetry spans of each request, exported over OTLP.
//! - [`reaper`]: spawning children so that catwalk, as PID 1 or a subreaper, reaps every orphan.
//! - [`sealed`]: what is kept in the state dir: secrets sealed with the state key, files replaced durably.
//!
//! Below them all, the crate `catwalk-core` (no runtime, no wasmtime; fuzzed on its own), whose modules this
//! crate re-exports: the tenants file's and the catalog's schemas, `wire` (clients' small formats), and
//! - [`policy`]: what a tenant's server is given and may take (egress, secrets, grants, limits), decided once
//!   for every backend;
//! - [`jsonrpc`]: the bridge's only view of messages: a peek at `id`/`method`, never a re-serialisation;
//! - [`vocab`]: the words every layer shares: modes, sandboxes, ids, durations and sizes, a mutex guard.

pub mod audit;
pub mod backend;
pub mod cli;
pub mod config;
pub mod confine;
pub mod egress;
pub mod http;
pub mod jail;
pub mod metrics;
pub mod oauth;
pub mod pack;
pub mod packages;
pub mod reaper;
pub mod sealed;
pub mod serve;
pub mod session;
pub mod shutdown;
pub mod tenants;
pub mod traces;

pub use catwalk_core::{jsonrpc, policy, vocab};
pub use serve::run;
