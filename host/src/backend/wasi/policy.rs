//! What a guest may do: the one place a WASI guest's capabilities and limits are decided.

use std::sync::Arc;
use std::time::Duration;

use wasmtime_wasi::sockets::SocketAddrUse;
use wasmtime_wasi::{FsPerms, WasiCtxBuilder};

use crate::egress::TenantEgress;
use crate::policy::grants::{DirGrant, NetGrant};

/// A guest's capabilities and limits, validated.
///
/// Built with [`GuestPolicy::new`], which denies everything that is not granted:
/// - **no environment variables** (only those in `env`, given to catwalk as data);
/// - **no arguments** beyond the program name;
/// - **no preopened directories** (only those in `dirs`, read-only unless granted writable);
/// - **no sockets and no name lookup** (UDP and `ip-name-lookup` always off; TCP only to the addresses in
///   `network`, outbound only, and only for `wasm32-wasip2` components, which have sockets at all);
/// - **no HTTP** but to the tenant's egress grants (`egress`), made by catwalk, never by the guest;
/// - **no inherited stdio**: stdin carries only the session's messages, stdout only goes to the session,
///   stderr only to catwalk's log, capped;
/// - clocks and randomness are allowed (they reveal nothing a tenant owns);
/// - memory, CPU time per request, message size and log output are capped.
#[derive(Debug, Clone)]
pub struct GuestPolicy {
    pub env: Vec<(String, String)>,
    pub dirs: Vec<DirGrant>,
    /// Where the guest may connect over TCP.
    pub network: Vec<NetGrant>,
    /// Linear memory cap per instance.
    pub max_memory_bytes: usize,
    /// Execution time a guest may spend on one message before it traps.
    pub cpu_budget: Duration,
    /// Longest line the guest may write to stdout; past it the session is ended.
    pub max_message_bytes: usize,
    /// stderr bytes logged per instance; the rest is dropped.
    pub max_log_bytes: usize,
    /// Where the guest may send HTTP(S) requests, with which secrets; `None`: nowhere.
    pub egress: Option<Arc<TenantEgress>>,
}

impl GuestPolicy {
    /// A policy granting nothing, with the default limits (64 MiB, 1 s per request, 4 MiB lines, 1 MiB log).
    pub fn new() -> Self {
        Self {
            env: Vec::new(),
            dirs: Vec::new(),
            network: Vec::new(),
            max_memory_bytes: 64 << 20,
            cpu_budget: Duration::from_secs(1),
            max_message_bytes: 4 << 20,
            max_log_bytes: 1 << 20,
            egress: None,
        }
    }

    /// The WASI context this policy allows (stdio is attached by the caller).
    pub fn builder(&self, program: &str) -> Result<WasiCtxBuilder, wasmtime::Error> {
        let mut builder = WasiCtxBuilder::new();
        builder
            .arg(program)
            .allow_tcp(!self.network.is_empty())
            .allow_udp(false)
            .allow_ip_name_lookup(false);
        if !self.network.is_empty() {
            let grants: Arc<[NetGrant]> = self.network.clone().into();
            builder.socket_addr_check(move |addr, usage| {
                let allowed = match usage {
                    // The implicit bind before a connect: to the wildcard address, any local port.
                    SocketAddrUse::TcpBind => addr.ip().is_unspecified() && addr.port() == 0,
                    SocketAddrUse::TcpConnect => grants.iter().any(|g| g.allows(addr)),
                    _ => false,
                };
                Box::pin(std::future::ready(allowed))
            });
        }
        // A secret's name holds its placeholder (set per instance), never a value of the tenant's env.
        let secrets = self
            .egress
            .as_ref()
            .map(|e| e.secrets())
            .unwrap_or_default();
        for (key, value) in &self.env {
            if !secrets.iter().any(|s| s.name == *key) {
                builder.env(key, value);
            }
        }
        for dir in &self.dirs {
            let perms = if dir.writable {
                FsPerms::ReadWrite
            } else {
                FsPerms::ReadOnly
            };
            builder.preopened_dir(&dir.host, &dir.guest, perms)?;
        }
        Ok(builder)
    }
}

impl Default for GuestPolicy {
    fn default() -> Self {
        Self::new()
    }
}
