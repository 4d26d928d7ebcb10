//! Egress: where a tenant's server may connect, by name, deny by default. Decided here once, for every path
//! out: a WASI guest's HTTP requests (catwalk's own host interface, and `wasi:http`) and the packer's smoke test.
//!
//! A grant is a hostname with an optional scheme and port:
//! - `https://api.github.com`, `api.github.com` (a bare name is HTTPS on 443), `api.example.com:8443`,
//!   `http://plain.example.com` (plain HTTP on 80), `https://api.example.com:*` (any port);
//! - `https://*.slack.com`: any name below `slack.com` (the wildcard stands only as the leftmost label, and does
//!   not match `slack.com` itself);
//! - IP addresses and networks only where a grant names them: `https://203.0.113.7`, `http://10.0.0.0/8:8080`.
//!
//! A name is resolved by catwalk, within [`RESOLVE_TIMEOUT`], and every address it resolves to is checked: unless a
//! grant names the address, these are refused ([`blocked`]):
//! - loopback, private (RFC 1918, unique local `fc00::/7`, which holds Fly's `fdaa::/16`), link-local (the cloud
//!   metadata address 169.254.169.254 among them), shared (CGNAT, `100.64.0.0/10`), multicast, unspecified,
//!   broadcast, and the other special-purpose ranges of IANA's registries that are not globally reachable;
//! - IPv6 that embeds an IPv4 address (mapped, compatible, 6to4, NAT64, Teredo), judged as the IPv4 inside;
//! - the machine's own addresses.
//!
//! A name can be pinned to an address (`egress_resolve`, `--egress-resolve NAME:PORT=IP:PORT`, as curl's
//! `--connect-to`): the pinned address is used without a lookup, and allowed because the operator named it.
//! Whoever connects uses exactly the addresses [`Egress::resolve`] returned: there is no second lookup.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::LazyLock;
use std::time::Duration;

use ipnet::{IpNet, Ipv4Net, Ipv6Net};

/// How long resolving a name may take.
pub const RESOLVE_TIMEOUT: Duration = Duration::from_secs(5);

/// HTTP or HTTPS.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Scheme {
    Https,
    Http,
}

impl Scheme {
    pub fn default_port(self) -> u16 {
        match self {
            Scheme::Https => 443,
            Scheme::Http => 80,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Scheme::Https => "https",
            Scheme::Http => "http",
        }
    }

    pub fn parse(scheme: &str) -> Option<Self> {
        match scheme {
            "https" => Some(Scheme::Https),
            "http" => Some(Scheme::Http),
            _ => None,
        }
    }
}

/// What a grant's host part matches.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HostPattern {
    /// One name, lowercase ASCII (IDNs as punycode).
    Name(String),
    /// Any name ending in `.{suffix}`.
    Below(String),
    Addr(IpAddr),
    Net(IpNet),
}

impl HostPattern {
    /// Parses a name (`api.github.com`, `*.slack.com`), an address or a network.
    pub fn parse(host: &str) -> Result<Self, String> {
        let host = host.trim_end_matches('.').to_ascii_lowercase();
        if let Some(inner) = host.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
            return inner
                .parse::<Ipv6Addr>()
                .map(|ip| HostPattern::Addr(IpAddr::V6(ip)))
                .map_err(|_| format!("{host} is not an IPv6 address"));
        }
        if let Ok(ip) = host.parse::<IpAddr>() {
            return Ok(HostPattern::Addr(ip));
        }
        if host.contains('/') {
            return host
                .parse::<IpNet>()
                .map(|net| HostPattern::Net(net.trunc()))
                .map_err(|_| format!("{host} is not a network like 10.0.0.0/8"));
        }
        let (below, name) = match host.strip_prefix("*.") {
            Some(rest) => (true, rest),
            None => (false, host.as_str()),
        };
        let name = canonical_name(name)?;
        if below && !name.contains('.') {
            return Err(format!(
                "*.{name}: a wildcard stands for names below a domain, not a top-level domain"
            ));
        }
        Ok(match below {
            true => HostPattern::Below(name),
            false => HostPattern::Name(name),
        })
    }

    /// Whether `host` (canonical: lowercase name or address) is matched.
    pub fn matches(&self, host: &Target) -> bool {
        match (self, host) {
            (HostPattern::Name(name), Target::Name(host)) => name == host,
            (HostPattern::Below(suffix), Target::Name(host)) => host
                .strip_suffix(suffix.as_str())
                .is_some_and(|label| label.len() > 1 && label.ends_with('.')),
            (HostPattern::Addr(ip), Target::Ip(host)) => ip.to_canonical() == host.to_canonical(),
            (HostPattern::Net(net), Target::Ip(host)) => net.contains(&host.to_canonical()),
            _ => false,
        }
    }

    /// Whether it names addresses (which are then allowed even if they are private).
    fn names_addresses(&self) -> bool {
        matches!(self, HostPattern::Addr(_) | HostPattern::Net(_))
    }
}

impl std::fmt::Display for HostPattern {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            HostPattern::Name(name) => f.write_str(name),
            HostPattern::Below(suffix) => write!(f, "*.{suffix}"),
            HostPattern::Addr(IpAddr::V6(ip)) => write!(f, "[{ip}]"),
            HostPattern::Addr(ip) => write!(f, "{ip}"),
            HostPattern::Net(net) => write!(f, "{net}"),
        }
    }
}

/// A name as DNS and TLS see it: lowercase ASCII, IDNs as punycode, labels of letters, digits and hyphens.
fn canonical_name(name: &str) -> Result<String, String> {
    let ascii = match url::Host::parse(name) {
        Ok(url::Host::Domain(domain)) => domain,
        _ => return Err(format!("{name:?} is not a host name")),
    };
    let valid = !ascii.is_empty()
        && ascii.len() <= 253
        && ascii.split('.').all(|label| {
            (1..=63).contains(&label.len())
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        });
    match valid {
        true => Ok(ascii),
        false => Err(format!("{name:?} is not a host name")),
    }
}

/// Which ports a grant allows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ports {
    /// The scheme's own (443, 80).
    Default,
    One(u16),
    Any,
}

/// One grant: scheme, host and port.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grant {
    pub scheme: Scheme,
    pub host: HostPattern,
    pub ports: Ports,
}

impl Grant {
    /// Parses `[scheme://]host[:port|:*]`.
    pub fn parse(spec: &str) -> Result<Self, String> {
        let spec = spec.trim();
        let bad = |why: String| format!("{spec:?}: {why}");
        let (scheme, rest) = match spec.split_once("://") {
            Some((scheme, rest)) => (
                Scheme::parse(&scheme.to_ascii_lowercase())
                    .ok_or_else(|| bad("the scheme must be https or http".into()))?,
                rest,
            ),
            None => (Scheme::Https, spec),
        };
        let rest = rest.strip_suffix('/').unwrap_or(rest);
        if rest.contains(['/', '?', '#', '@']) && !looks_like_network(rest) {
            return Err(bad(
                "a grant is scheme://host[:port], without a path, query or credentials".into(),
            ));
        }
        let (host, port) = split_port(rest).map_err(bad)?;
        let ports = match port {
            None => Ports::Default,
            Some("*") => Ports::Any,
            Some(port) => Ports::One(
                port.parse::<u16>()
                    .ok()
                    .filter(|&p| p != 0)
                    .ok_or_else(|| bad(format!("{port} is not a port")))?,
            ),
        };
        let host = HostPattern::parse(host).map_err(bad)?;
        Ok(Grant {
            scheme,
            host,
            ports,
        })
    }

    fn allows(&self, scheme: Scheme, host: &Target, port: u16) -> bool {
        self.scheme == scheme
            && self.host.matches(host)
            && match self.ports {
                Ports::Default => port == scheme.default_port(),
                Ports::One(p) => port == p,
                Ports::Any => true,
            }
    }
}

impl std::fmt::Display for Grant {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}://{}", self.scheme.as_str(), self.host)?;
        match self.ports {
            Ports::Default => Ok(()),
            Ports::One(port) => write!(f, ":{port}"),
            Ports::Any => f.write_str(":*"),
        }
    }
}

fn looks_like_network(host_port: &str) -> bool {
    host_port.split_once('/').is_some_and(|(ip, rest)| {
        ip.parse::<IpAddr>().is_ok()
            && rest
                .split(':')
                .next()
                .is_some_and(|p| p.parse::<u8>().is_ok())
    })
}

/// `host:port`, `[v6]:port`, `10.0.0.0/8:port` or a host alone.
fn split_port(host_port: &str) -> Result<(&str, Option<&str>), String> {
    if host_port.starts_with('[') {
        let end = host_port
            .find(']')
            .ok_or_else(|| "an IPv6 address needs its closing ]".to_owned())?;
        let (host, rest) = host_port.split_at(end + 1);
        return match rest {
            "" => Ok((host, None)),
            rest => rest
                .strip_prefix(':')
                .map(|port| (host, Some(port)))
                .ok_or_else(|| "expected :port after the IPv6 address".to_owned()),
        };
    }
    // A bare IPv6 address or network has colons of its own.
    if host_port.matches(':').count() > 1 {
        return Ok((host_port, None));
    }
    Ok(match host_port.rsplit_once(':') {
        Some((host, port)) => (host, Some(port)),
        None => (host_port, None),
    })
}

/// A name pinned to an address (`NAME:PORT=IP:PORT`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pin {
    pub name: String,
    pub port: u16,
    pub to: SocketAddr,
}

impl Pin {
    pub fn parse(spec: &str) -> Result<Self, String> {
        let bad = || format!("{spec:?} is not NAME:PORT=IP:PORT");
        let (from, to) = spec.trim().split_once('=').ok_or_else(bad)?;
        let (name, port) = from.rsplit_once(':').ok_or_else(bad)?;
        let port = port
            .parse::<u16>()
            .ok()
            .filter(|&p| p != 0)
            .ok_or_else(bad)?;
        let name = canonical_name(name.trim_end_matches('.').to_ascii_lowercase().as_str())
            .map_err(|_| bad())?;
        let to: SocketAddr = to.parse().map_err(|_| bad())?;
        Ok(Pin { name, port, to })
    }
}

impl std::fmt::Display for Pin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}={}", self.name, self.port, self.to)
    }
}

/// A destination's host, canonical: a lowercase ASCII name, or an address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    Name(String),
    Ip(IpAddr),
}

impl Target {
    /// The host of a URL parsed by WHATWG's rules, so that `2852039166`, `0251.0376.0251.0376` and `0xa9fea9fe`
    /// are the address they stand for, not names.
    pub fn of(host: url::Host<&str>) -> Self {
        match host {
            url::Host::Domain(name) => {
                Target::Name(name.trim_end_matches('.').to_ascii_lowercase())
            }
            url::Host::Ipv4(ip) => Target::Ip(IpAddr::V4(ip)),
            url::Host::Ipv6(ip) => Target::Ip(IpAddr::V6(ip)),
        }
    }
}

impl std::fmt::Display for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Target::Name(name) => f.write_str(name),
            Target::Ip(IpAddr::V6(ip)) => write!(f, "[{ip}]"),
            Target::Ip(ip) => write!(f, "{ip}"),
        }
    }
}

/// Why a request may not go out. The reason's name is a metric label and a log field.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Reason {
    /// No grant allows the scheme, host and port.
    NotGranted,
    /// Every address the name resolved to is in a blocked range.
    BlockedAddress,
    /// The name does not resolve, or not in time.
    Unresolved,
    /// The URL is not one catwalk sends (scheme, credentials, malformed).
    BadRequest,
    /// A secret's placeholder where it may not go.
    Placeholder,
    /// The instance has too many requests in flight and waiting.
    TooMany,
}

impl Reason {
    pub fn as_str(self) -> &'static str {
        match self {
            Reason::NotGranted => "not_granted",
            Reason::BlockedAddress => "blocked_address",
            Reason::Unresolved => "unresolved",
            Reason::BadRequest => "bad_request",
            Reason::Placeholder => "placeholder",
            Reason::TooMany => "too_many",
        }
    }
}

/// A refusal: its reason, and words for the guest (never a secret: a host, a grant's name, a range).
#[derive(Debug, Clone, thiserror::Error)]
#[error("{message}")]
pub struct Denied {
    pub reason: Reason,
    pub message: String,
}

impl Denied {
    pub fn new(reason: Reason, message: impl Into<String>) -> Self {
        Self {
            reason,
            message: message.into(),
        }
    }
}

/// Where a request may go: the grant that allowed it.
#[derive(Debug, Clone)]
pub struct Allowed<'a> {
    pub grant: &'a Grant,
    pub scheme: Scheme,
    pub target: Target,
    pub port: u16,
}

/// A tenant's egress policy, validated: its grants and pins. Empty: nothing goes out.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Egress {
    pub grants: Vec<Grant>,
    pub pins: Vec<Pin>,
}

impl Egress {
    pub fn is_empty(&self) -> bool {
        self.grants.is_empty()
    }

    /// The grant that allows `scheme://target:port`, or why none does.
    pub fn check(&self, scheme: Scheme, target: Target, port: u16) -> Result<Allowed<'_>, Denied> {
        match self.grants.iter().find(|g| g.allows(scheme, &target, port)) {
            Some(grant) => Ok(Allowed {
                grant,
                scheme,
                target,
                port,
            }),
            None => Err(Denied::new(
                Reason::NotGranted,
                format!(
                    "{}://{target}:{port} is not granted to this server (its egress grants: {})",
                    scheme.as_str(),
                    match self.grants.is_empty() {
                        true => "none".to_owned(),
                        false => self
                            .grants
                            .iter()
                            .map(ToString::to_string)
                            .collect::<Vec<_>>()
                            .join(", "),
                    }
                ),
            )),
        }
    }

    /// The addresses an allowed request may connect to: the pinned one, the granted address itself, or what
    /// the name resolves to, less every blocked address. Connect to these and nothing else.
    pub async fn resolve(&self, allowed: &Allowed<'_>) -> Result<Vec<SocketAddr>, Denied> {
        let port = allowed.port;
        let name = match &allowed.target {
            // A grant named this address (only such a grant matches an address).
            Target::Ip(ip) => return Ok(vec![SocketAddr::new(*ip, port)]),
            Target::Name(name) => name,
        };
        if let Some(pin) = self.pins.iter().find(|p| p.name == *name && p.port == port) {
            return Ok(vec![pin.to]);
        }
        let looked_up = tokio::time::timeout(
            RESOLVE_TIMEOUT,
            tokio::net::lookup_host((name.as_str(), port)),
        )
        .await
        .map_err(|_| {
            Denied::new(
                Reason::Unresolved,
                format!("{name} did not resolve within {RESOLVE_TIMEOUT:?}"),
            )
        })?
        .map_err(|_| Denied::new(Reason::Unresolved, format!("{name} does not resolve")))?;
        let mut allowed_addrs = Vec::new();
        let mut refused = None;
        for addr in looked_up {
            match blocked(addr.ip()) {
                Some(range) => refused = Some((addr.ip(), range)),
                None if !allowed_addrs.contains(&addr) => allowed_addrs.push(addr),
                None => {}
            }
        }
        match (allowed_addrs.is_empty(), refused) {
            (false, _) => Ok(allowed_addrs),
            (true, Some((ip, range))) => Err(Denied::new(
                Reason::BlockedAddress,
                format!("{name} resolves to {ip}, a {range} address, which servers may not reach"),
            )),
            (true, None) => Err(Denied::new(
                Reason::Unresolved,
                format!("{name} has no address"),
            )),
        }
    }

    /// Whether any grant names addresses itself.
    pub fn names_addresses(&self) -> bool {
        self.grants.iter().any(|g| g.host.names_addresses())
    }
}

/// IANA's special-purpose IPv4 ranges that are not globally reachable, beyond what `std` classifies:
/// "this network", shared (CGNAT), IETF protocol assignments, benchmarking, and reserved.
static V4_SPECIAL: LazyLock<Vec<(Ipv4Net, &'static str)>> = LazyLock::new(|| {
    [
        ("0.0.0.0/8", "this-network"),
        ("100.64.0.0/10", "shared (CGNAT)"),
        ("192.0.0.0/24", "IETF protocol assignment"),
        ("198.18.0.0/15", "benchmarking"),
        ("240.0.0.0/4", "reserved"),
    ]
    .into_iter()
    .map(|(net, name)| (net.parse().expect("a valid network"), name))
    .collect()
});

/// IPv6 ranges that are not globally reachable, beyond what `std` classifies.
static V6_SPECIAL: LazyLock<Vec<(Ipv6Net, &'static str)>> = LazyLock::new(|| {
    [
        ("100::/64", "discard-only"),
        ("2001:db8::/32", "documentation"),
        ("fec0::/10", "site-local"),
        ("2001:2::/48", "benchmarking"),
        ("2001:10::/28", "ORCHID"),
    ]
    .into_iter()
    .map(|(net, name)| (net.parse().expect("a valid network"), name))
    .collect()
});

/// The IPv4 address an IPv6 address carries, by the transition mechanisms that route to it: mapped
/// (`::ffff:a.b.c.d`), compatible (`::a.b.c.d`), NAT64 (`64:ff9b::/96`, `64:ff9b:1::/48`), 6to4 (`2002::/16`),
/// and Teredo (`2001::/32`, the client's address inverted in the last 32 bits).
pub fn embedded_v4(ip: Ipv6Addr) -> Option<Ipv4Addr> {
    let s = ip.segments();
    let last = Ipv4Addr::new((s[6] >> 8) as u8, s[6] as u8, (s[7] >> 8) as u8, s[7] as u8);
    if let Some(v4) = ip.to_ipv4_mapped() {
        return Some(v4);
    }
    // `::a.b.c.d`, but not `::` and `::1`, which are their own.
    if s[..6] == [0; 6] && !(s[6] == 0 && s[7] <= 1) {
        return Some(last);
    }
    if s[0] == 0x64 && s[1] == 0xff9b && (s[2..6] == [0; 4] || s[2] == 1) {
        return Some(last);
    }
    if s[0] == 0x2002 {
        return Some(Ipv4Addr::new(
            (s[1] >> 8) as u8,
            s[1] as u8,
            (s[2] >> 8) as u8,
            s[2] as u8,
        ));
    }
    if s[0] == 0x2001 && s[1] == 0 {
        let client = !u32::from(last);
        return Some(Ipv4Addr::from(client));
    }
    None
}

/// The kind of range `ip` is in if a server may not reach it unless a grant names it: `None` for an address
/// of the public internet.
pub fn blocked(ip: IpAddr) -> Option<&'static str> {
    if own_addresses().contains(&ip.to_canonical()) {
        return Some("this machine's own");
    }
    match ip {
        IpAddr::V4(v4) => blocked_v4(v4),
        IpAddr::V6(v6) => match embedded_v4(v6) {
            Some(v4) => blocked_v4(v4).or_else(|| {
                own_addresses()
                    .contains(&IpAddr::V4(v4))
                    .then_some("this machine's own")
            }),
            None => blocked_v6(v6),
        },
    }
}

fn blocked_v4(ip: Ipv4Addr) -> Option<&'static str> {
    if ip.is_loopback() {
        return Some("loopback");
    }
    if ip.is_private() {
        return Some("private");
    }
    if ip.is_link_local() {
        return Some("link-local");
    }
    if ip.is_multicast() {
        return Some("multicast");
    }
    if ip.is_broadcast() {
        return Some("broadcast");
    }
    if ip.is_unspecified() {
        return Some("unspecified");
    }
    if ip.is_documentation() {
        return Some("documentation");
    }
    V4_SPECIAL
        .iter()
        .find(|(net, _)| net.contains(&ip))
        .map(|(_, name)| *name)
}

fn blocked_v6(ip: Ipv6Addr) -> Option<&'static str> {
    if ip.is_loopback() {
        return Some("loopback");
    }
    if ip.is_unspecified() {
        return Some("unspecified");
    }
    if ip.is_unique_local() {
        return Some("private (unique local)");
    }
    if ip.is_unicast_link_local() {
        return Some("link-local");
    }
    if ip.is_multicast() {
        return Some("multicast");
    }
    V6_SPECIAL
        .iter()
        .find(|(net, _)| net.contains(&ip))
        .map(|(_, name)| *name)
}

/// The addresses of this machine's interfaces, read once.
fn own_addresses() -> &'static [IpAddr] {
    static OWN: LazyLock<Vec<IpAddr>> = LazyLock::new(|| {
        nix::ifaddrs::getifaddrs()
            .map(|addrs| {
                addrs
                    .filter_map(|a| {
                        let addr = a.address?;
                        addr.as_sockaddr_in()
                            .map(|v4| IpAddr::V4(v4.ip()))
                            .or_else(|| addr.as_sockaddr_in6().map(|v6| IpAddr::V6(v6.ip())))
                    })
                    .map(|ip| ip.to_canonical())
                    .collect()
            })
            .unwrap_or_default()
    });
    &OWN
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target(host: &str) -> Target {
        let url = url::Url::parse(&format!("http://{host}/")).unwrap();
        Target::of(url.host().unwrap())
    }

    #[test]
    fn grants_parse_with_their_defaults() {
        let g = Grant::parse("api.github.com").unwrap();
        assert_eq!((g.scheme, g.ports), (Scheme::Https, Ports::Default));
        assert_eq!(g.host, HostPattern::Name("api.github.com".into()));
        let g = Grant::parse("https://*.Slack.com").unwrap();
        assert_eq!(g.host, HostPattern::Below("slack.com".into()));
        assert_eq!(
            Grant::parse("api.example.com:8443").unwrap().ports,
            Ports::One(8443)
        );
        assert_eq!(
            Grant::parse("http://x.example:*").unwrap().ports,
            Ports::Any
        );
        assert_eq!(
            Grant::parse("http://10.0.0.0/8:8080").unwrap().host,
            HostPattern::Net("10.0.0.0/8".parse().unwrap())
        );
        assert_eq!(
            Grant::parse("https://[2001:db8::1]:8443").unwrap().host,
            HostPattern::Addr("2001:db8::1".parse().unwrap())
        );
        for bad in [
            "ftp://x.com",
            "https://x.com/path",
            "a.*.com",
            "*.com",
            "https://u:p@x.com",
            "x.com:0",
            "x.com:99999",
            "",
        ] {
            assert!(Grant::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn wildcards_match_names_below_only() {
        let policy = Egress {
            grants: vec![Grant::parse("https://*.slack.com").unwrap()],
            pins: vec![],
        };
        assert!(
            policy
                .check(Scheme::Https, target("files.slack.com"), 443)
                .is_ok()
        );
        assert!(
            policy
                .check(Scheme::Https, target("a.b.slack.com"), 443)
                .is_ok()
        );
        for denied in ["slack.com", "evilslack.com", "slack.com.evil.io"] {
            assert!(
                policy.check(Scheme::Https, target(denied), 443).is_err(),
                "{denied}"
            );
        }
        assert!(
            policy
                .check(Scheme::Http, target("files.slack.com"), 80)
                .is_err()
        );
        assert!(
            policy
                .check(Scheme::Https, target("files.slack.com"), 8443)
                .is_err()
        );
    }

    #[test]
    fn numeric_hosts_are_addresses_and_need_a_grant_that_names_them() {
        let policy = Egress {
            grants: vec![Grant::parse("http://*.example.com").unwrap()],
            pins: vec![],
        };
        for host in [
            "169.254.169.254",
            "2852039166",
            "0251.0376.0251.0376",
            "0xa9fea9fe",
            "0xa9.0xfe.0xa9.0xfe",
            "[::ffff:169.254.169.254]",
            "[::ffff:a9fe:a9fe]",
        ] {
            let t = target(host);
            assert!(matches!(t, Target::Ip(_)), "{host} is an address");
            let denied = policy.check(Scheme::Http, t, 80).unwrap_err();
            assert_eq!(denied.reason, Reason::NotGranted, "{host}");
        }
        let named = Egress {
            grants: vec![Grant::parse("http://10.0.0.0/8").unwrap()],
            pins: vec![],
        };
        assert!(named.check(Scheme::Http, target("10.1.2.3"), 80).is_ok());
        assert!(
            named
                .check(Scheme::Http, target("[::ffff:10.1.2.3]"), 80)
                .is_ok()
        );
        assert!(named.check(Scheme::Http, target("11.1.2.3"), 80).is_err());
    }

    #[test]
    fn private_and_embedded_addresses_are_blocked() {
        for ip in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "224.0.0.1",
            "255.255.255.255",
            "::1",
            "::",
            "fc00::1",
            "fdaa::1",
            "fe80::1",
            "ff02::1",
            "::ffff:127.0.0.1",
            "::ffff:169.254.169.254",
            "::10.0.0.1",
            "64:ff9b::a9fe:a9fe",
            "2002:a9fe:a9fe::1",
            "2001:0:4136:e378:8000:63bf:f5ff:fffe",
        ] {
            let parsed: IpAddr = ip.parse().unwrap();
            assert!(blocked(parsed).is_some(), "{ip} is blocked");
        }
        for ip in [
            "8.8.8.8",
            "140.82.112.5",
            "2606:4700::1111",
            "64:ff9b::808:808",
            "2002:808:808::1",
        ] {
            assert_eq!(blocked(ip.parse().unwrap()), None, "{ip} is public");
        }
        // Teredo: the client's address is the last 32 bits, inverted (here 10.0.0.1).
        let teredo: Ipv6Addr = "2001:0:4136:e378:8000:63bf:f5ff:fffe".parse().unwrap();
        assert_eq!(embedded_v4(teredo), Some(Ipv4Addr::new(10, 0, 0, 1)));
    }

    #[test]
    fn pins_parse() {
        let pin = Pin::parse("API.github.com:443=127.0.0.1:8443").unwrap();
        assert_eq!((pin.name.as_str(), pin.port), ("api.github.com", 443));
        assert_eq!(pin.to, "127.0.0.1:8443".parse().unwrap());
        assert!(Pin::parse("api.github.com=127.0.0.1:1").is_err());
        assert!(Pin::parse("api.github.com:443=nowhere").is_err());
    }

    #[tokio::test]
    async fn pinned_and_named_addresses_skip_the_lookup_and_the_ranges() {
        let policy = Egress {
            grants: vec![
                Grant::parse("https://api.test").unwrap(),
                Grant::parse("http://127.0.0.1:9").unwrap(),
            ],
            pins: vec![Pin::parse("api.test:443=127.0.0.1:8443").unwrap()],
        };
        let allowed = policy
            .check(Scheme::Https, target("api.test"), 443)
            .unwrap();
        assert_eq!(
            policy.resolve(&allowed).await.unwrap(),
            ["127.0.0.1:8443".parse().unwrap()]
        );
        let allowed = policy
            .check(Scheme::Http, target("127.0.0.1:9"), 9)
            .unwrap();
        assert_eq!(
            policy.resolve(&allowed).await.unwrap(),
            ["127.0.0.1:9".parse().unwrap()]
        );
        // A granted name that resolves to loopback (through the hosts file) is refused.
        let local = Egress {
            grants: vec![Grant::parse("http://localhost").unwrap()],
            pins: vec![],
        };
        let allowed = local.check(Scheme::Http, target("localhost"), 80).unwrap();
        let denied = local.resolve(&allowed).await.unwrap_err();
        assert_eq!(denied.reason, Reason::BlockedAddress, "{denied}");
    }
}
