//! Tenants' child processes, isolated: a network namespace per tenant whose only way out is catwalk's egress
//! proxy ([`proxy`]) and resolver ([`dns`]), under the same egress policy as the sandbox; and a cgroup per
//! tenant ([`cgroup`]) for its memory, CPU and processes.
//!
//! What this machine can do is found once at start-up ([`Isolation::probe`]), said in the log and in
//! `/readyz`. A tenant's [`Jail`] is made when its server is built and lives as long as the tenant; its
//! children join it through `catwalk confine` (`--netns`, `--etc`, `--cgroup`).
//!
//! Inside, a tenant's server needs no cooperation: catwalk's resolver answers every granted name with
//! 127.0.0.1, where catwalk listens on 443 and 80 (and the ports grants name) and lets each connection through
//! by its TLS server name or its `Host`. Whatever speaks TLS or HTTP by name gets out that way: Node's `fetch`
//! and `https`, axios, node-fetch, npm, curl, Python. Nothing else does: there is no route out of the
//! namespace. Clients set up for a proxy find one at `127.0.0.1:3128` (CONNECT, or absolute-form HTTP).

pub mod cgroup;
mod dns;
mod netns;
mod proxy;

use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::{CancellationToken, DropGuard};

use crate::audit::TenantAudit;
use crate::metrics::TenantMetrics;
use crate::policy::egress::{Egress, Ports, Scheme};
pub use cgroup::{Cgroups, Resources, TenantCgroup};
use netns::Netns;
pub use proxy::PROXY_PORT;

/// What this machine can isolate tenants' children with.
#[derive(Debug)]
pub struct Isolation {
    /// Network namespaces, or why not.
    pub network: Result<(), String>,
    pub cgroups: Cgroups,
    /// The directory of the `resolv.conf` (catwalk's resolver in their namespace) and `hosts` (localhost
    /// only) children see.
    etc: PathBuf,
}

/// What `/readyz` and the start-up log say of it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct IsolationReport {
    /// `"namespace per tenant"`, or `"none: <why>"`.
    pub network: String,
    /// `"cgroup v2 (<dir>)"`, `"cgroup v1 (<dir>)"`, or `"none: <why>"` (and then V8's heap cap for node).
    pub resources: String,
}

impl Isolation {
    /// Finds out, by doing it once, whether catwalk can make network namespaces and cgroups here. `dir` is
    /// where it keeps the children's `resolv.conf`.
    pub fn probe(dir: &Path) -> Self {
        let network = Netns::create(|| Ok(()))
            .map(drop)
            .map_err(|e| format!("cannot make a network namespace: {e}"));
        let network = network.and_then(|()| {
            std::fs::create_dir_all(dir)
                .and_then(|()| {
                    std::fs::write(
                        dir.join("resolv.conf"),
                        "nameserver 127.0.0.1\noptions attempts:2 timeout:2\n",
                    )
                })
                .and_then(|()| {
                    std::fs::write(dir.join("hosts"), "127.0.0.1 localhost\n::1 localhost\n")
                })
                .map_err(|e| format!("{}: {e}", dir.display()))
        });
        Self {
            network,
            cgroups: Cgroups::detect(),
            etc: dir.to_owned(),
        }
    }

    /// Nothing available (the single-server flow, and tests).
    pub fn none(why: &str) -> Self {
        Self {
            network: Err(why.to_owned()),
            cgroups: Cgroups::Unavailable(why.to_owned()),
            etc: PathBuf::new(),
        }
    }

    pub fn report(&self) -> IsolationReport {
        IsolationReport {
            network: match &self.network {
                Ok(()) => "namespace per tenant".into(),
                Err(why) => format!("none: {why}"),
            },
            resources: self.cgroups.describe(),
        }
    }

    /// What is missing for a tenant that requires all of it (`isolation = "strict"`); empty when nothing is.
    pub fn missing(&self) -> Vec<String> {
        let mut missing = Vec::new();
        if let Err(why) = &self.network {
            missing.push(format!("network namespaces ({why})"));
        }
        if let Cgroups::Unavailable(why) = &self.cgroups {
            missing.push(format!("cgroups ({why})"));
        }
        missing
    }

    /// Tenant `tenant`'s jail: its network namespace, under `policy` (when namespaces are available), and
    /// its cgroup with `resources` (when cgroups are).
    pub fn jail(
        &self,
        tenant: &str,
        policy: &Egress,
        resources: &Resources,
        watch: Watch,
    ) -> std::io::Result<Jail> {
        let stop = CancellationToken::new();
        let network = match &self.network {
            Ok(()) => Some(network(tenant, policy, watch, &stop)?),
            Err(_) => None,
        };
        let policy = network.is_some().then(|| policy.clone());
        let cgroup = self.cgroups.tenant(tenant, resources)?;
        Ok(Jail {
            network,
            policy,
            etc: self.etc.clone(),
            cgroup,
            _stop: stop.drop_guard(),
        })
    }
}

/// Where a jail's refusals are counted and recorded.
#[derive(Default)]
pub struct Watch {
    pub metrics: Option<Arc<TenantMetrics>>,
    pub audit: Option<Arc<TenantAudit>>,
}

/// One tenant's isolation, for as long as the tenant is served.
#[derive(Debug)]
pub struct Jail {
    network: Option<Netns>,
    /// What its doors let through, when it has a network of its own.
    policy: Option<Egress>,
    etc: PathBuf,
    cgroup: Option<TenantCgroup>,
    _stop: DropGuard,
}

impl Jail {
    /// The namespace children join, and the directory of the `resolv.conf` and `hosts` they see there.
    pub fn network(&self) -> Option<(PathBuf, PathBuf)> {
        self.network.as_ref().map(|n| (n.path(), self.etc.clone()))
    }

    /// The egress policy its network namespace enforces; `None` where it has none (the machine's network).
    pub fn policy(&self) -> Option<&Egress> {
        self.policy.as_ref()
    }

    pub fn cgroup(&self) -> Option<&TenantCgroup> {
        self.cgroup.as_ref()
    }

    /// The variables that point npm at the proxy, for the tenant's package install. A server gets none: it
    /// reaches a granted name by the name itself, whatever its HTTP client (Node's own ignores these without
    /// `NODE_USE_ENV_PROXY`, and a client that honours them as well as Node would send its requests through
    /// the proxy twice); a client set up for a proxy finds it at `http://127.0.0.1:PROXY_PORT`.
    pub fn npm_proxy_env(&self) -> Vec<(&'static str, String)> {
        if self.network.is_none() {
            return Vec::new();
        }
        let url = format!("http://127.0.0.1:{PROXY_PORT}");
        vec![
            ("npm_config_proxy", url.clone()),
            ("npm_config_https_proxy", url),
        ]
    }
}

/// Makes the namespace with its doors and resolver, and serves them until `stop`.
fn network(
    tenant: &str,
    policy: &Egress,
    watch: Watch,
    stop: &CancellationToken,
) -> std::io::Result<Netns> {
    let mut doors = vec![
        (PROXY_PORT, proxy::Door::Proxy),
        (443, proxy::Door::Tls(443)),
        (80, proxy::Door::Http(80)),
    ];
    for grant in &policy.grants {
        if let Ports::One(port) = grant.ports
            && !doors.iter().any(|(p, _)| *p == port)
            && port != 53
        {
            let door = match grant.scheme {
                Scheme::Https => proxy::Door::Tls(port),
                Scheme::Http => proxy::Door::Http(port),
            };
            doors.push((port, door));
        }
    }
    let (ns, (listeners, resolver)) = Netns::create(|| {
        let listeners = doors
            .iter()
            .map(|&(port, door)| {
                let listener =
                    std::net::TcpListener::bind(SocketAddr::from((Ipv4Addr::LOCALHOST, port)))?;
                listener.set_nonblocking(true)?;
                Ok((listener, door))
            })
            .collect::<std::io::Result<Vec<_>>>()?;
        let resolver = std::net::UdpSocket::bind((Ipv4Addr::LOCALHOST, 53))?;
        resolver.set_nonblocking(true)?;
        Ok((listeners, resolver))
    })?;
    let policy = Arc::new(policy.clone());
    let gate = Arc::new(proxy::Gate {
        tenant: tenant.into(),
        policy: policy.clone(),
        metrics: watch.metrics,
        audit: watch.audit,
        connect_timeout: Duration::from_secs(10),
    });
    for (listener, door) in listeners {
        let listener = tokio::net::TcpListener::from_std(listener)?;
        tokio::spawn(proxy::serve(listener, door, gate.clone(), stop.clone()));
    }
    let resolver = tokio::net::UdpSocket::from_std(resolver)?;
    tokio::spawn(dns::serve(resolver, policy, stop.clone()));
    Ok(ns)
}
