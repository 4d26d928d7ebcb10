//! catwalk end to end: catwalk on 127.0.0.1:0 with real stdio servers behind it, driven over real sockets.
//!
//!   npm ci --prefix tests && cargo test -p catwalk-tests

mod durable;
mod egress;
mod env;
mod faults;
mod hardening;
mod js;
mod legacy_sse;
mod logs;
mod modern;
mod replay;
mod shared;
mod spares;
mod streamable;
mod support;
mod tenants;
mod wasi;
