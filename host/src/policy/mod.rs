//! Policy: what a tenant's server is given and how much of the machine it may take, decided once here and
//! enforced by every backend alike (child processes, WASI guests, and the packer's smoke test). Deny by
//! default: a server gets what its tenant was granted, and nothing else.
//!
//! - [`grants`]: directories, and the addresses a WASI guest may connect to.
//! - [`limits`]: memory, CPU, open files, processes, sessions and requests per tenant.

pub mod grants;
pub mod limits;
