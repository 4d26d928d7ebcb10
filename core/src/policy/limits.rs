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
    /// npm/command tenants: cores' worth of CPU time for all of the tenant's processes (`0.5`, `2`).
    pub cpu: Option<f64>,
    pub cpu_budget: Option<String>,
    pub max_sessions: Option<usize>,
    pub request_timeout: Option<String>,
    pub nofile: Option<u64>,
    pub nproc: Option<u64>,
    pub max_inflight: Option<usize>,
    /// Requests per second for the whole tenant, for each subject (a token's holder, an OAuth subject, or
    /// an address where the tenant is open), and for the tools whose names match a pattern.
    pub rate: Option<RateDef>,
    pub subject_rate: Option<RateDef>,
    #[serde(default)]
    pub tool_rate: std::collections::BTreeMap<String, RateDef>,
}

/// A rate, as written: `{ per_second = 5, burst = 10 }` (`burst` defaults to one second's worth, at least 1).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RateDef {
    pub per_second: f64,
    pub burst: Option<u32>,
}

/// A rate, validated: requests may come `burst` at once, then one every `period`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rate {
    pub period: Duration,
    pub burst: u32,
}

impl RateDef {
    fn validate(&self, field: &'static str) -> Result<Rate, (&'static str, String)> {
        if !(self.per_second.is_finite() && (0.001..=1_000_000.0).contains(&self.per_second)) {
            return Err((field, "per_second must be from 0.001 to 1000000".into()));
        }
        let burst = self.burst.unwrap_or(self.per_second.ceil() as u32).max(1);
        if self.burst == Some(0) || burst > 1_000_000 {
            return Err((field, "burst must be from 1 to 1000000".into()));
        }
        Ok(Rate {
            period: Duration::from_secs_f64(1.0 / self.per_second),
            burst,
        })
    }
}

/// A tenant's limits, validated; `None` is the machine's default.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TenantLimits {
    /// WASI linear memory per instance; for npm/command tenants, the memory of all the tenant's processes
    /// together (its cgroup's cap, or V8's heap cap where the machine has no memory cgroup).
    pub memory: Option<usize>,
    /// npm/command tenants: thousandths of a core for all the tenant's processes together.
    pub cpu_millicores: Option<u32>,
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
    pub rate: Option<Rate>,
    pub subject_rate: Option<Rate>,
    /// A tool-name glob and its rate, for the tenant's calls of the tools it matches; the first that matches
    /// applies.
    pub tool_rate: Vec<(String, Rate)>,
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
        if wasm && (self.nofile.is_some() || self.nproc.is_some() || self.cpu.is_some()) {
            return Err((
                "limits",
                "nofile, nproc and cpu limit child processes; a WASI tenant has none (cpu_budget bounds its \
                 requests)"
                    .into(),
            ));
        }
        let cpu_millicores = match self.cpu {
            None => None,
            Some(cores) if cores.is_finite() && (0.01..=1024.0).contains(&cores) => {
                Some((cores * 1000.0).round() as u32)
            }
            Some(_) => return Err(("limits.cpu", "must be from 0.01 to 1024 cores".into())),
        };
        let rate = self
            .rate
            .as_ref()
            .map(|r| r.validate("limits.rate"))
            .transpose()?;
        let subject_rate = self
            .subject_rate
            .as_ref()
            .map(|r| r.validate("limits.subject_rate"))
            .transpose()?;
        if self.tool_rate.len() > 64 {
            return Err(("limits.tool_rate", "at most 64 patterns".into()));
        }
        let tool_rate = self
            .tool_rate
            .iter()
            .map(|(pattern, r)| {
                if pattern.is_empty() || pattern.len() > 512 {
                    return Err(("limits.tool_rate", "a pattern is 1 to 512 bytes".into()));
                }
                Ok((pattern.clone(), r.validate("limits.tool_rate")?))
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(TenantLimits {
            rate,
            subject_rate,
            tool_rate,
            memory,
            cpu_millicores,
            cpu_budget,
            max_sessions: self.max_sessions,
            request_timeout,
            nofile: self.nofile,
            nproc: self.nproc,
            max_inflight: self.max_inflight,
        })
    }
}
