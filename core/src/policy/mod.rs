//! Policy: what a tenant's server is given and how much of the machine it may take, decided once here and
//! enforced by every backend alike (child processes, WASI guests, and the packer's smoke test). Deny by
//! default: a server gets what its tenant was granted, and nothing else.
//!
//! - [`egress`]: the hosts a tenant's server may reach by HTTP(S), and the addresses it never may.
//! - [`secrets`]: values bound to hosts, swapped in on the way out, never given to the server.
//! - [`grants`]: directories, and the addresses a WASI guest may open raw TCP connections to.
//! - [`limits`]: memory, CPU, open files, processes, sessions and requests per tenant.
//! - [`offer`]: which of its server's tools, prompts and resources a tenant offers its clients.
//! - [`packages`]: what an npm package must prove (registry signatures, provenance) before it runs.

pub mod egress;
pub mod grants;
pub mod limits;
pub mod offer;
pub mod packages;
pub mod secrets;
