//! `catwalk-guest`: write MCP servers that run sandboxed under catwalk, compiled to `wasm32-wasip1`,
//! `wasm32-wasip2`, or natively.
//!
//! This crate is a placeholder in the workspace for now: the SDK (blocking newline-delimited JSON-RPC on
//! stdio, the initialize handshake, tools, resources, prompts, and server-to-client requests) is the next
//! piece of work, with the WASI backend it runs under.
