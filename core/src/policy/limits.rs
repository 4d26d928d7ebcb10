//! Limits: how much of the machine one tenant's server may take. A tenant sets what it needs in its
//! `[tenant.limits]`; what it leaves out is the machine's default (its flags). Validated here once, for both
//! backends: memory and CPU per request bound a WASI guest, open files and processes a child process, and
//! sessions, requests in progress and request time bound every tenant.

use std::time::Duration;

use serde::Deserialize;

use crate::vocab::{parse_duration, parse_size};

/// Open files per child, and tasks per tenant uid, unless the tenant says otherwise.
pub const DEFAULT_NOFILE: u64 = 4096;
pub const DEFAULT_NPROC: u64 = 4096;

/// Requests in progress per tenant, unless configured: twice the cores, at least 4. Fewer keep a flooded
/// machine fairer but leave cores idle between one tenant's requests (measured in `bench/README.md`,
/// fairness).
pub fn default_max_inflight() -> usize {
    std::thread::available_parallelism().map_or(4, |n| (2 * n.get()).max(4))
}

/// A tenant's limits, as written.
#[derive(Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LimitsDef {
    pub memory: Option<String>,
    pub cpu_budget: Option<String>,
    pub max_sessions: Option<usize>,
    pub request_timeout: Option<String>,
    pub nofile: Option<u64>,
    pub nproc: Option<u64>,
    pub max_inflight: Option<usize>,
}

/// A tenant's limits, validated; `None` is the machine's default.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TenantLimits {
    /// WASI linear memory per instance.
    pub memory: Option<usize>,
    /// WASI CPU time per request.
    pub cpu_budget: Option<Duration>,
    pub max_sessions: Option<usize>,
    pub request_timeout: Option<Duration>,
    /// Open files per child (npm/command tenants).
    pub nofile: Option<u64>,
    /// Processes and threads of the tenant's uid (npm/command tenants, when catwalk runs as root).
    pub nproc: Option<u64>,
    /// Requests in progress at once; more wait their turn.
    pub max_inflight: Option<usize>,
}

impl LimitsDef {
    /// The limits of a tenant whose server is a WASI guest (`wasm`) or a child process; an error names the
    /// field (`limits.memory`) and the problem, never the value.
    pub fn validate(self, wasm: bool) -> Result<TenantLimits, (&'static str, String)> {
        let memory = self
            .memory
            .map(|m| parse_size(&m).map_err(|e| ("limits.memory", e)))
            .transpose()?;
        if memory.is_some_and(|m| m < (64 << 10)) {
            return Err(("limits.memory", "must be at least 64KiB".into()));
        }
        let cpu_budget = self
            .cpu_budget
            .map(|d| parse_duration(&d).map_err(|e| ("limits.cpu_budget", e)))
            .transpose()?;
        let request_timeout = self
            .request_timeout
            .map(|d| parse_duration(&d).map_err(|e| ("limits.request_timeout", e)))
            .transpose()?;
        for (field, d) in [
            ("limits.cpu_budget", cpu_budget),
            ("limits.request_timeout", request_timeout),
        ] {
            if d.is_some_and(|d| d.is_zero()) {
                return Err((field, "must be greater than 0".into()));
            }
        }
        for (field, n) in [
            ("limits.max_sessions", self.max_sessions.map(|n| n as u64)),
            ("limits.max_inflight", self.max_inflight.map(|n| n as u64)),
            ("limits.nofile", self.nofile),
            ("limits.nproc", self.nproc),
        ] {
            if n == Some(0) {
                return Err((field, "must be greater than 0".into()));
            }
        }
        if wasm && (self.nofile.is_some() || self.nproc.is_some()) {
            return Err((
                "limits",
                "nofile and nproc limit a child process; a WASI tenant has none".into(),
            ));
        }
        Ok(TenantLimits {
            memory,
            cpu_budget,
            max_sessions: self.max_sessions,
            request_timeout,
            nofile: self.nofile,
            nproc: self.nproc,
            max_inflight: self.max_inflight,
        })
    }
}
