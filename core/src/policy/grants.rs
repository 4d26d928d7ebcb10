//! Grants: the directories and addresses a tenant's server is given. Parsed here once, for both backends: a
//! WASI guest sees a directory at a guest path of its own (`HOST::GUEST`), a child process at the host path
//! itself (`HOST`); a network grant is an address a `wasm32-wasip2` guest may connect to.

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;

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
    pub fn allows(&self, addr: SocketAddr) -> bool {
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

/// Parses a child process's grant, `HOST_PATH[:ro|:rw]` (read-only unless `:rw`): the path is the same
/// inside and out.
pub fn parse_child_dir(spec: &str) -> Result<DirGrant, String> {
    if spec.contains("::") {
        return Err(
            "a child process sees host paths: write HOST_PATH[:ro|:rw], without ::GUEST".into(),
        );
    }
    let (path, writable) = match spec.rsplit_once(':') {
        Some((path, "rw")) => (path, true),
        Some((path, "ro")) => (path, false),
        _ => (spec, false),
    };
    if !path.starts_with('/') {
        return Err("expected an absolute HOST_PATH[:ro|:rw]".into());
    }
    Ok(DirGrant {
        host: path.into(),
        guest: path.into(),
        writable,
    })
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
}
