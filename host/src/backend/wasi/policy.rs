//! What a guest may do: the one place a WASI guest's capabilities and limits are decided.

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use wasmtime_wasi::sockets::SocketAddrUse;
use wasmtime_wasi::{FsPerms, WasiCtxBuilder};

/// A directory granted to a guest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DirGrant {
    pub host: PathBuf,
    pub guest: String,
    pub writable: bool,
}

/// An address a guest may open TCP connections to: an IP and a port, or any port (`*`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NetGrant {
    pub ip: IpAddr,
    pub port: Option<u16>,
}

impl NetGrant {
    fn allows(&self, addr: SocketAddr) -> bool {
        self.ip.to_canonical() == addr.ip().to_canonical()
            && self.port.is_none_or(|port| port == addr.port())
    }
}

/// Parses `IP:PORT`, `[IPv6]:PORT`, or either with `*` for any port. Names are not accepted: name lookup
/// stays off (a lookup is itself a way out).
pub fn parse_net(spec: &str) -> Result<NetGrant, String> {
    let spec = spec.trim();
    let bad = || format!("{spec:?} is not IP:PORT (or IP:* for any port; [IPv6]:PORT)");
    let (host, port) = spec.rsplit_once(':').ok_or_else(bad)?;
    let host = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host);
    let ip: IpAddr = host.parse().map_err(|_| bad())?;
    let port = match port {
        "*" => None,
        port => Some(
            port.parse::<u16>()
                .ok()
                .filter(|&p| p != 0)
                .ok_or_else(bad)?,
        ),
    };
    Ok(NetGrant { ip, port })
}

/// A guest's capabilities and limits, validated.
///
/// Built with [`GuestPolicy::new`], which denies everything that is not granted:
/// - **no environment variables** (only those in `env`, given to catwalk as data);
/// - **no arguments** beyond the program name;
/// - **no preopened directories** (only those in `dirs`, read-only unless granted writable);
/// - **no sockets and no name lookup** (UDP and `ip-name-lookup` always off; TCP only to the addresses in
///   `network`, outbound only, and only for `wasm32-wasip2` components, which have sockets at all);
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
        for (key, value) in &self.env {
            builder.env(key, value);
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

/// Parses `HOST_PATH::GUEST_PATH[:ro|:rw]` (read-only unless `:rw`).
pub fn parse_dir(spec: &str) -> Result<DirGrant, String> {
    let (host, rest) = spec
        .split_once("::")
        .ok_or("expected HOST_PATH::GUEST_PATH[:ro|:rw]")?;
    let (guest, writable) = match rest.rsplit_once(':') {
        Some((guest, "rw")) => (guest, true),
        Some((guest, "ro")) => (guest, false),
        _ => (rest, false),
    };
    if host.is_empty() || guest.is_empty() {
        return Err("expected HOST_PATH::GUEST_PATH[:ro|:rw]".into());
    }
    Ok(DirGrant {
        host: host.into(),
        guest: guest.into(),
        writable,
    })
}

/// Parses a size: `64MiB`, `512KiB`, `1GiB`, or bytes.
pub fn parse_size(spec: &str) -> Result<usize, String> {
    let spec = spec.trim();
    let split = spec
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(spec.len());
    let (number, unit) = spec.split_at(split);
    let n: usize = number
        .parse()
        .map_err(|_| format!("{spec:?} is not a size like 64MiB"))?;
    let unit = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kib" | "kb" => 1 << 10,
        "m" | "mib" | "mb" => 1 << 20,
        "g" | "gib" | "gb" => 1 << 30,
        _ => return Err(format!("{spec:?} is not a size like 64MiB")),
    };
    n.checked_mul(unit)
        .ok_or_else(|| format!("{spec:?} is too large"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dir_grants_default_to_read_only() {
        assert_eq!(
            parse_dir("/data::/d").unwrap(),
            DirGrant {
                host: "/data".into(),
                guest: "/d".into(),
                writable: false
            }
        );
        assert!(parse_dir("/data::/d:rw").unwrap().writable);
        assert!(!parse_dir("/data::/d:ro").unwrap().writable);
        assert!(parse_dir("/data").is_err());
        assert!(parse_dir("::/d").is_err());
    }

    #[test]
    fn sizes_parse() {
        assert_eq!(parse_size("64MiB").unwrap(), 64 << 20);
        assert_eq!(parse_size("4096").unwrap(), 4096);
        assert!(parse_size("lots").is_err());
    }
}
