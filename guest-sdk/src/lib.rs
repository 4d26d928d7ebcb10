//! `catwalk-guest`: write MCP servers that run sandboxed under catwalk, compiled to `wasm32-wasip1`,
//! `wasm32-wasip2`, or natively.
//!
//! A server is a blocking loop over newline-delimited JSON-RPC on stdin/stdout: no async runtime, and no
//! busy-waiting (a guest blocked on stdin costs catwalk nothing). Handlers are plain closures; they return
//! errors as values.
//!
//! # Quick start
//! ```no_run
//! use catwalk_guest::{Server, Tool, ToolResult};
//!
//! fn main() -> std::io::Result<()> {
//!     Server::new("echo", "0.1.0")
//!         .tool(
//!             Tool::new("echo", "Echoes its text back").param("text", "string", "What to echo", true),
//!             |args, _cx| Ok(ToolResult::text(args.str("text")?)),
//!         )
//!         .run()
//! }
//! ```
//! Build and serve it (from the workspace root):
//! ```text
//! rustup target add wasm32-wasip1
//! cargo build --release --target wasm32-wasip1 -p catwalk-guest --example echo
//! catwalk serve --wasm target/wasm32-wasip1/release/examples/echo.wasm
//! ```
//! (`--target wasm32-wasip2` builds a component; catwalk serves both.)
//!
//! # Layout
//! - [`Server`]: the builder and the loop (initialize and version negotiation, ping, tools, resources with
//!   templates and subscriptions, prompts, completion, logging).
//! - [`Context`]: what a handler may do while it runs: progress, log messages, resource-updated notices,
//!   and requests to the client (sampling, elicitation, roots) that block until the answer arrives.
//! - [`Tool`], [`ToolResult`], [`Resource`], [`Prompt`]: what a server offers.
//! - [`Error`]: a JSON-RPC error a handler returns.
//! - [`http`]: a blocking HTTP client; catwalk sends its requests under the tenant's egress grants.

mod context;
pub mod http;
mod server;
mod types;

pub use context::Context;
pub use serde_json::{Value, json};
pub use server::Server;
pub use types::{Args, Error, Prompt, Resource, ResourceTemplate, Tool, ToolResult};

/// The 2025-era protocol revisions this SDK speaks (with `initialize`), newest first.
pub const PROTOCOL_VERSIONS: &[&str] = &["2025-11-25", "2025-06-18", "2025-03-26", "2024-11-05"];

/// The stateless revisions this SDK speaks too: a request whose `params._meta` names one is served on its own,
/// with no `initialize`, and the client's input comes back in its retry (see [`Context::ask`]).
pub const MODERN_VERSIONS: &[&str] = &["2026-07-28"];

/// A handler's result.
pub type Result<T> = std::result::Result<T, Error>;
