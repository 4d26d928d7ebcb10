//! Egress, enforced: the HTTP(S) requests of a tenant's sandboxed server, made by catwalk on its behalf. The
//! guest never opens a socket: it hands catwalk a URL, headers and a body, and catwalk
//! 1. parses the URL by WHATWG's rules (so numeric hosts are the addresses they stand for) and checks it against
//!    the tenant's grants ([`crate::policy::egress`]);
//! 2. swaps secrets' placeholders into header values where they may go, and refuses the request where they may
//!    not ([`crate::policy::secrets`]), before anything is sent;
//! 3. resolves the name and connects only to the addresses it checked ([`connect`]), with TLS (rustls, SNI set
//!    to the name, the machine's CA bundle), HTTP/1.1 or HTTP/2;
//! 4. streams the bodies both ways ([`body`]): the request's scanned for placeholders, the response's capped in
//!    size and idle time, with the secrets' real values masked.
//!
//! A redirect is the guest's to follow: each hop is a new request, checked anew. Connections are pooled per
//! tenant ([`TenantEgress`]), never across tenants; an instance ([`Outbound`]) has a cap on requests in flight.
//! Every request and every refusal is counted per tenant; a refusal is logged with the tenant, the host and the
//! reason, never the path, the query, a header or a body.

mod body;
mod connect;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, HeaderName, HeaderValue, Method, Request, Response};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use tokio::sync::Semaphore;

use crate::audit::TenantAudit;
use crate::metrics::TenantMetrics;
use crate::policy::egress::{
    Denied, Egress, Grant, HostPattern, Pin, Ports, Reason, Scheme, Target,
};
use crate::policy::secrets::{Placeholders, Secret};
pub use body::{BoxError, Received};
pub use connect::tls_config;

/// Limits on a tenant's outbound requests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    pub connect_timeout: Duration,
    /// From the request sent to the response's head.
    pub first_byte_timeout: Duration,
    /// Between two parts of a response body.
    pub idle_timeout: Duration,
    /// Largest response body.
    pub max_response_bytes: u64,
    /// Requests of one instance in flight at once; more wait, up to as many again, then are refused.
    pub max_in_flight: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            connect_timeout: Duration::from_secs(10),
            first_byte_timeout: Duration::from_secs(60),
            idle_timeout: Duration::from_secs(60),
            max_response_bytes: 32 << 20,
            max_in_flight: 32,
        }
    }
}

/// Why a request got no response: refused by policy, or failed on the way.
#[derive(Debug, thiserror::Error)]
pub enum Failure {
    #[error("catwalk refused the request: {0}")]
    Denied(#[from] Denied),
    #[error("{0}")]
    Failed(String),
    #[error("no response within {0:?}")]
    Timeout(Duration),
}

type Connector = hyper_rustls::HttpsConnector<connect::Dialer>;

/// One tenant's way out: its grants, its secrets, its connection pool, its counters.
pub struct TenantEgress {
    tenant: Arc<str>,
    policy: Arc<Egress>,
    secrets: Vec<Secret>,
    limits: Limits,
    client: Client<Connector, body::Outgoing>,
    metrics: Arc<TenantMetrics>,
    /// Where refusals are recorded, if an audit trail is kept.
    audit: Option<Arc<TenantAudit>>,
}

impl std::fmt::Debug for TenantEgress {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TenantEgress")
            .field("tenant", &self.tenant)
            .field("policy", &self.policy)
            .field("secrets", &self.secrets)
            .finish_non_exhaustive()
    }
}

impl TenantEgress {
    pub fn new(
        tenant: &str,
        policy: Egress,
        secrets: Vec<Secret>,
        limits: Limits,
        tls: Arc<rustls::ClientConfig>,
        metrics: Arc<TenantMetrics>,
        audit: Option<Arc<TenantAudit>>,
    ) -> Arc<Self> {
        let policy = Arc::new(policy);
        let dialer = connect::Dialer::new(policy.clone(), limits.connect_timeout);
        let connector = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config((*tls).clone())
            .https_or_http()
            .enable_http1()
            .enable_http2()
            .wrap_connector(dialer);
        let client = Client::builder(TokioExecutor::new())
            .pool_idle_timeout(Duration::from_secs(90))
            .pool_max_idle_per_host(8)
            .build(connector);
        Arc::new(Self {
            tenant: tenant.into(),
            policy,
            secrets,
            limits,
            client,
            metrics,
            audit,
        })
    }

    pub fn policy(&self) -> &Egress {
        &self.policy
    }

    pub fn secrets(&self) -> &[Secret] {
        &self.secrets
    }

    /// A new instance's way out: fresh placeholders for the tenant's secrets, and its own cap.
    pub fn instance(self: &Arc<Self>) -> Outbound {
        Outbound {
            tenant: self.clone(),
            placeholders: Placeholders::new(&self.secrets),
            in_flight: Arc::new(Semaphore::new(self.limits.max_in_flight)),
            waiting: Arc::new(AtomicUsize::new(0)),
        }
    }

    fn refused(&self, target: &str, denied: Denied) -> Failure {
        self.metrics.egress_denied(denied.reason.as_str());
        let host: String = target
            .chars()
            .take(255)
            .filter(|c| !c.is_control())
            .collect();
        tracing::warn!(tenant = %self.tenant, host = %host, reason = denied.reason.as_str(), "egress refused: {denied}");
        if let Some(audit) = &self.audit {
            audit.egress_denied(&host, denied.reason.as_str());
        }
        Failure::Denied(denied)
    }
}

/// A request of catwalk's own to a URL that a client or an issuer named (an issuer's metadata and keys, a
/// client's metadata document, an introspection): `https` to a name only, checked and connected as a tenant's
/// request is. A private, loopback or metadata address is never reached, unless `pins` pins the name to it (the
/// operator's `--egress-resolve`). Answers the status and the body, of at most `max` bytes.
pub async fn fetch(
    request: Request<Bytes>,
    pins: &[Pin],
    tls: Arc<rustls::ClientConfig>,
    metrics: Arc<TenantMetrics>,
    max: u64,
) -> Result<(http::StatusCode, Bytes), Failure> {
    let url = request.uri().to_string();
    let denied = |why: &str| Failure::Denied(Denied::new(Reason::BadRequest, why.to_owned()));
    let parsed = url::Url::parse(&url).map_err(|_| denied("not a URL"))?;
    let name = match parsed.host() {
        Some(url::Host::Domain(name)) if parsed.scheme() == "https" => name.to_owned(),
        _ => return Err(denied("only https:// URLs with a host name are fetched")),
    };
    let grant = Grant {
        scheme: Scheme::Https,
        host: HostPattern::Name(name.to_ascii_lowercase()),
        ports: Ports::One(parsed.port_or_known_default().unwrap_or(443)),
    };
    let policy = Egress {
        grants: vec![grant],
        pins: pins.to_vec(),
    };
    let limits = Limits {
        connect_timeout: Duration::from_secs(5),
        first_byte_timeout: Duration::from_secs(10),
        idle_timeout: Duration::from_secs(10),
        max_response_bytes: max,
        max_in_flight: 1,
    };
    let egress = TenantEgress::new("catwalk", policy, Vec::new(), limits, tls, metrics, None);
    let (parts, body) = request.into_parts();
    let body = http_body_util::Full::new(body);
    let response = egress
        .instance()
        .send(parts.method, &url, parts.headers, body)
        .await?;
    let status = response.status();
    let mut received = response.into_body();
    let mut out = Vec::new();
    while let Some(chunk) = received.next().await {
        out.extend_from_slice(&chunk.map_err(Failure::Failed)?);
    }
    Ok((status, Bytes::from(out)))
}

/// One instance's way out.
#[derive(Clone)]
pub struct Outbound {
    tenant: Arc<TenantEgress>,
    placeholders: Placeholders,
    in_flight: Arc<Semaphore>,
    waiting: Arc<AtomicUsize>,
}

impl std::fmt::Debug for Outbound {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Outbound")
            .field("tenant", &self.tenant.tenant)
            .finish_non_exhaustive()
    }
}

/// Headers the guest may not set: hop-by-hop ones, and those catwalk sets itself (`Host` always from the URL).
const FORBIDDEN: &[&str] = &[
    "host",
    "connection",
    "keep-alive",
    "proxy-authenticate",
    "proxy-authorization",
    "proxy-connection",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
    "http2-settings",
    "accept-encoding",
];

impl Outbound {
    /// The variables the guest gets for its tenant's secrets: their placeholders.
    pub fn secret_env(&self) -> impl Iterator<Item = (&str, &str)> {
        self.placeholders.env()
    }

    /// The secrets' real values (a guest's log is masked with them too).
    pub fn secret_values(&self) -> impl Iterator<Item = &str> {
        self.placeholders.values()
    }

    pub fn tenant(&self) -> &Arc<TenantEgress> {
        &self.tenant
    }

    /// Checks a request and sends it: the response, its body streamed, or why there is none.
    pub async fn send<B>(
        &self,
        method: Method,
        url: &str,
        headers: HeaderMap,
        body: B,
    ) -> Result<Response<Received>, Failure>
    where
        B: http_body::Body<Data = Bytes> + Send + 'static,
        B::Error: Into<BoxError>,
    {
        let tenant = &self.tenant;
        let (parts, scheme, target, label) = match self.prepare(method, url, headers) {
            Ok(prepared) => prepared,
            Err((host, denied)) => return Err(tenant.refused(&host, denied)),
        };
        let body = match body::prescan(
            body,
            self.placeholders.clone(),
            tenant.metrics.clone(),
            label.clone(),
        )
        .await
        {
            Ok(body) => body,
            Err(denied) => return Err(tenant.refused(&target.to_string(), denied)),
        };
        let request = Request::from_parts(parts, body);
        let permit = match self.in_flight.clone().try_acquire_owned() {
            Ok(permit) => permit,
            Err(_) => {
                if self.waiting.load(Ordering::Relaxed) >= tenant.limits.max_in_flight {
                    return Err(tenant.refused(
                        &target.to_string(),
                        Denied::new(
                            Reason::TooMany,
                            format!(
                                "this server has {} requests in flight and as many waiting, the most it may",
                                tenant.limits.max_in_flight
                            ),
                        ),
                    ));
                }
                let _queued = Queued::enter(&self.waiting);
                self.in_flight
                    .clone()
                    .acquire_owned()
                    .await
                    .map_err(|_| Failure::Failed("catwalk is shutting down".into()))?
            }
        };
        let sent = tokio::time::timeout(
            tenant.limits.first_byte_timeout,
            tenant.client.request(request),
        )
        .await;
        let response = match sent {
            Err(_) => {
                tenant.metrics.egress_failed("timeout");
                return Err(Failure::Timeout(tenant.limits.first_byte_timeout));
            }
            Ok(Err(error)) => {
                if let Some(denied) = denial_in(&error) {
                    return Err(tenant.refused(&target.to_string(), denied));
                }
                tenant.metrics.egress_failed("connect");
                return Err(Failure::Failed(describe(&error, scheme, &target)));
            }
            Ok(Ok(response)) => response,
        };
        let (mut parts, incoming) = response.into_parts();
        mask_headers(&mut parts.headers, &self.placeholders);
        tenant.metrics.egress_request(&label, parts.status.as_u16());
        let body = Received::new(
            incoming,
            self.placeholders.clone(),
            tenant.limits,
            tenant.metrics.clone(),
            label,
            permit,
        );
        Ok(Response::from_parts(parts, body))
    }

    /// The request's head as it goes out, its scheme and target, and its grant's name (the metrics' host label); or
    /// the host asked for and why it may not go.
    #[allow(clippy::type_complexity)]
    fn prepare(
        &self,
        method: Method,
        url: &str,
        headers: HeaderMap,
    ) -> Result<(http::request::Parts, Scheme, Target, Arc<str>), (String, Denied)> {
        let shown = || {
            url.split(['/', '?', '#'])
                .take(3)
                .collect::<Vec<_>>()
                .join("/")
        };
        let bad = |why: &str| (shown(), Denied::new(Reason::BadRequest, why.to_owned()));
        let parsed = url::Url::parse(url).map_err(|e| bad(&format!("not a URL: {e}")))?;
        let scheme = Scheme::parse(parsed.scheme())
            .ok_or_else(|| bad("only http:// and https:// URLs are sent"))?;
        if !parsed.username().is_empty() || parsed.password().is_some() {
            return Err(bad(
                "credentials in a URL are not sent; use an Authorization header",
            ));
        }
        let host = parsed.host().ok_or_else(|| bad("the URL has no host"))?;
        let target = Target::of(host);
        let port = parsed
            .port_or_known_default()
            .unwrap_or(scheme.default_port());
        let shown_target = || format!("{target}:{port}");
        let allowed = self
            .tenant
            .policy
            .check(scheme, target.clone(), port)
            .map_err(|d| (shown_target(), d))?;
        let label: Arc<str> = allowed.grant.to_string().into();
        self.placeholders
            .check_url(parsed.as_str())
            .map_err(|d| (shown_target(), d))?;
        let mut out = HeaderMap::with_capacity(headers.len() + 1);
        for (name, value) in headers.iter() {
            if FORBIDDEN.contains(&name.as_str()) {
                continue;
            }
            if self
                .placeholders
                .find_in(name.as_str().as_bytes())
                .is_some()
            {
                return Err((
                    shown_target(),
                    crate::policy::secrets::refusal("a secret", "a header name"),
                ));
            }
            let value =
                match self
                    .placeholders
                    .swap(name.as_str(), value.as_bytes(), scheme, &target)
                {
                    Ok(None) => value.clone(),
                    Ok(Some(swapped)) => {
                        let mut swapped = HeaderValue::from_bytes(&swapped)
                            .map_err(|_| bad("a header value is not valid"))?;
                        swapped.set_sensitive(true);
                        swapped
                    }
                    Err(denied) => return Err((shown_target(), denied)),
                };
            out.append(name.clone(), value);
        }
        // The sandbox has no zlib: responses come uncompressed.
        out.insert(
            HeaderName::from_static("accept-encoding"),
            HeaderValue::from_static("identity"),
        );
        let uri: http::Uri = parsed
            .as_str()
            .parse()
            .map_err(|_| bad("not a URL hyper can send"))?;
        let (mut parts, ()) = Request::new(()).into_parts();
        parts.method = method;
        parts.uri = uri;
        parts.headers = out;
        Ok((parts, scheme, target, label))
    }
}

/// Counts a request waiting for one of its instance's places in flight while it waits.
struct Queued<'a>(&'a AtomicUsize);

impl<'a> Queued<'a> {
    fn enter(waiting: &'a AtomicUsize) -> Self {
        waiting.fetch_add(1, Ordering::Relaxed);
        Self(waiting)
    }
}

impl Drop for Queued<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Response headers with the secrets' real values masked.
fn mask_headers(headers: &mut HeaderMap, placeholders: &Placeholders) {
    if placeholders.is_empty() {
        return;
    }
    for value in headers.values_mut() {
        if let Some(masked) = placeholders.mask(value.as_bytes())
            && let Ok(masked) = HeaderValue::from_bytes(&masked)
        {
            *value = masked;
        }
    }
}

/// A refusal of the policy's, raised while connecting (the resolved addresses were all blocked).
fn denial_in(error: &(dyn std::error::Error + 'static)) -> Option<Denied> {
    let mut source = Some(error);
    while let Some(e) = source {
        if let Some(denied) = e.downcast_ref::<Denied>() {
            return Some(denied.clone());
        }
        source = e.source();
    }
    None
}

/// A failed request in words for the guest: what failed, from the innermost cause.
fn describe(error: &(dyn std::error::Error + 'static), scheme: Scheme, target: &Target) -> String {
    let mut cause = error.to_string();
    let mut source = error.source();
    while let Some(e) = source {
        cause = e.to_string();
        source = e.source();
    }
    format!(
        "the request to {}://{target} failed: {cause}",
        scheme.as_str()
    )
}

/// The grants and secret names a tenant has, for `/readyz` and the admin API (never a value).
pub fn describe_grants(policy: &Egress, secrets: &[Secret]) -> serde_json::Value {
    serde_json::json!({
        "egress": policy.grants.iter().map(ToString::to_string).collect::<Vec<_>>(),
        "egress_resolve": policy.pins.iter().map(ToString::to_string).collect::<Vec<_>>(),
        "secrets": secrets.iter().map(|s| serde_json::json!({
            "name": s.name,
            "hosts": s.hosts.iter().map(ToString::to_string).collect::<Vec<_>>(),
        })).collect::<Vec<_>>(),
    })
}
