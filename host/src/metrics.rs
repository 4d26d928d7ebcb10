//! Prometheus metrics, per tenant, served on `/metrics` in the OpenMetrics text format.
//!
//! Labels are only ever a tenant's id (checked `[A-Za-z0-9_-]` when the tenant was configured), a status code,
//! a backend kind or a fixed cause: nothing a client sends becomes a label, so a client cannot blow up the
//! series count, and no env value, token or message body can appear here.
//!
//! - `catwalk_sessions{tenant}`: sessions open now (read from the registry at scrape time).
//! - `catwalk_http_requests_total{tenant,status}` and `catwalk_http_request_duration_seconds{tenant}`: requests
//!   on the MCP endpoints, timed to the response head (a stream's later events are not in it). Requests for no
//!   known tenant count under `tenant="-"`.
//! - `catwalk_instance_starts_total{tenant,backend,outcome}`: server instances for new sessions: started for the
//!   session (`ok`), taken from the spares started ahead of need (`spare`), or not started (`error`).
//! - `catwalk_spares{tenant,backend}`: spares started and waiting for a session now.
//! - `catwalk_instance_exits_total{tenant,cause}`: instances that ended on their own, not those catwalk
//!   stopped: `exit` (a process or guest exited), `signal` (a process was killed), `trap` (a WASI guest trapped
//!   or went past its CPU or memory limit).
//! - `catwalk_restarts_total{tenant}`: restarts of a shared server process.
//! - `catwalk_requests_waiting{tenant}`: requests waiting for one of their tenant's turns (`--max-inflight`).
//! - `catwalk_egress_requests_total{tenant,host,status}`, `catwalk_egress_bytes_total{tenant,host,direction}`:
//!   sandboxed servers' HTTP(S) requests and their bytes each way (`out`, `in`); `host` is the grant that allowed
//!   the request (`https://api.github.com`, `https://*.slack.com`), so the operator's grants bound the series.
//! - `catwalk_egress_denials_total{tenant,reason}`: requests catwalk refused (`not_granted`, `blocked_address`,
//!   `unresolved`, `bad_request`, `placeholder`, `too_many`); `catwalk_egress_failures_total{tenant,cause}`:
//!   requests that failed on the way (`connect`, `timeout`, `too_large`).
//! - `catwalk_refusals_total{tenant,reason}`: clients' requests catwalk refused by its tenant's terms:
//!   `not_offered` (a tool, prompt or resource the tenant does not offer), `rate_tenant`, `rate_subject`,
//!   `rate_tool` (over a rate).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

/// The label of requests that reached no tenant; not a valid tenant id, so it cannot be mistaken for one.
pub const NO_TENANT: &str = "-";

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct TenantLabel {
    tenant: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    tenant: String,
    status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StartLabels {
    tenant: String,
    backend: &'static str,
    outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct BackendLabels {
    tenant: String,
    backend: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct EgressLabels {
    tenant: String,
    host: String,
    status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct EgressBytesLabels {
    tenant: String,
    host: String,
    direction: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ReasonLabels {
    tenant: String,
    reason: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ExitLabels {
    tenant: String,
    cause: &'static str,
}

type Latency = Family<TenantLabel, Histogram, fn() -> Histogram>;

/// Every metric of the process.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    sessions: Family<TenantLabel, Gauge>,
    requests: Family<RequestLabels, Counter>,
    latency: Latency,
    starts: Family<StartLabels, Counter>,
    spares: Family<BackendLabels, Gauge>,
    exits: Family<ExitLabels, Counter>,
    restarts: Family<TenantLabel, Counter>,
    waiting: Family<TenantLabel, Gauge>,
    egress: Family<EgressLabels, Counter>,
    egress_bytes: Family<EgressBytesLabels, Counter>,
    egress_denials: Family<ReasonLabels, Counter>,
    egress_failures: Family<ReasonLabels, Counter>,
    refusals: Family<ReasonLabels, Counter>,
}

impl Metrics {
    pub fn new() -> Arc<Self> {
        let mut registry = Registry::default();
        let sessions = Family::<TenantLabel, Gauge>::default();
        let requests = Family::<RequestLabels, Counter>::default();
        // 100 µs to ~6.5 s, doubling.
        let latency: Latency =
            Family::new_with_constructor(|| Histogram::new(exponential_buckets(0.0001, 2.0, 17)));
        let starts = Family::<StartLabels, Counter>::default();
        let spares = Family::<BackendLabels, Gauge>::default();
        let exits = Family::<ExitLabels, Counter>::default();
        let restarts = Family::<TenantLabel, Counter>::default();
        let waiting = Family::<TenantLabel, Gauge>::default();
        registry.register("catwalk_sessions", "Sessions open now", sessions.clone());
        registry.register(
            "catwalk_http_requests",
            "Requests on the MCP endpoints, by response status",
            requests.clone(),
        );
        registry.register(
            "catwalk_http_request_duration_seconds",
            "Time from request to response head on the MCP endpoints",
            latency.clone(),
        );
        registry.register(
            "catwalk_instance_starts",
            "Server instances started",
            starts.clone(),
        );
        registry.register(
            "catwalk_spares",
            "Server instances started ahead of need, waiting for a session",
            spares.clone(),
        );
        registry.register(
            "catwalk_instance_exits",
            "Server instances that ended on their own (not stopped by catwalk)",
            exits.clone(),
        );
        registry.register(
            "catwalk_restarts",
            "Restarts of a shared server process",
            restarts.clone(),
        );
        registry.register(
            "catwalk_requests_waiting",
            "Requests waiting for one of their tenant's turns",
            waiting.clone(),
        );
        let egress = Family::<EgressLabels, Counter>::default();
        let egress_bytes = Family::<EgressBytesLabels, Counter>::default();
        let egress_denials = Family::<ReasonLabels, Counter>::default();
        let egress_failures = Family::<ReasonLabels, Counter>::default();
        registry.register(
            "catwalk_egress_requests",
            "Sandboxed servers' HTTP(S) requests, by the grant that allowed them and response status",
            egress.clone(),
        );
        registry.register(
            "catwalk_egress_bytes",
            "Body bytes of sandboxed servers' HTTP(S) requests, out and in",
            egress_bytes.clone(),
        );
        registry.register(
            "catwalk_egress_denials",
            "Sandboxed servers' requests catwalk refused, by reason",
            egress_denials.clone(),
        );
        registry.register(
            "catwalk_egress_failures",
            "Sandboxed servers' requests that failed on the way, by cause",
            egress_failures.clone(),
        );
        let refusals = Family::<ReasonLabels, Counter>::default();
        registry.register(
            "catwalk_refusals",
            "Clients' requests refused by their tenant's terms (what it offers, its rates), by reason",
            refusals.clone(),
        );
        Arc::new(Self {
            refusals,
            egress,
            egress_bytes,
            egress_denials,
            egress_failures,
            waiting,
            registry,
            sessions,
            requests,
            latency,
            starts,
            spares,
            exits,
            restarts,
        })
    }

    /// The handle one tenant records through.
    pub fn tenant(self: &Arc<Self>, tenant: &str) -> Arc<TenantMetrics> {
        Arc::new(TenantMetrics {
            label: TenantLabel {
                tenant: tenant.to_owned(),
            },
            metrics: self.clone(),
        })
    }

    /// The OpenMetrics text of every metric, with `sessions` (tenant, open sessions) as they are now.
    pub fn render(&self, sessions: impl IntoIterator<Item = (String, usize)>) -> String {
        self.sessions.clear();
        for (tenant, open) in sessions {
            self.sessions
                .get_or_create(&TenantLabel { tenant })
                .set(i64::try_from(open).unwrap_or(i64::MAX));
        }
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &self.registry)
            .expect("writing to a String cannot fail");
        text
    }

    /// Every tenant's counters and gauges, as `name{labels}` and value, by tenant (for the status page): the
    /// metrics rendered once, whatever the number of tenants.
    pub fn series_by_tenant(&self) -> HashMap<String, Vec<(String, f64)>> {
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &self.registry)
            .expect("writing to a String cannot fail");
        let mut found: HashMap<String, Vec<(String, f64)>> = HashMap::new();
        let series = text
            .lines()
            .filter(|line| !line.starts_with('#'))
            .filter(|line| !line.contains("_bucket{") && !line.contains("_duration_seconds"));
        for line in series {
            let Some((series, value)) = line.rsplit_once(' ') else {
                continue;
            };
            let tenant = series
                .split_once("tenant=\"")
                .and_then(|(_, rest)| rest.split_once('"'))
                .map(|(tenant, _)| tenant);
            if let (Some(tenant), Ok(value)) = (tenant, value.parse()) {
                found
                    .entry(tenant.to_owned())
                    .or_default()
                    .push((series.to_owned(), value));
            }
        }
        found
    }

    /// A request that reached no tenant.
    pub fn unscoped_request(&self, status: u16) {
        self.requests
            .get_or_create(&RequestLabels {
                tenant: NO_TENANT.into(),
                status,
            })
            .inc();
    }
}

/// One tenant's view of the metrics.
#[derive(Debug)]
pub struct TenantMetrics {
    label: TenantLabel,
    metrics: Arc<Metrics>,
}

impl TenantMetrics {
    pub fn request(&self, status: u16, took: Duration) {
        self.metrics
            .requests
            .get_or_create(&RequestLabels {
                tenant: self.label.tenant.clone(),
                status,
            })
            .inc();
        self.metrics
            .latency
            .get_or_create(&self.label)
            .observe(took.as_secs_f64());
    }

    /// A client's request refused by the tenant's terms: `reason` is `not_offered` or a rate's label.
    pub fn refused(&self, reason: &'static str) {
        self.metrics
            .refusals
            .get_or_create(&ReasonLabels {
                tenant: self.label.tenant.clone(),
                reason,
            })
            .inc();
    }

    /// An instance for a new session: `outcome` is `ok`, `spare` or `error`.
    pub fn instance_started(&self, backend: &'static str, outcome: &'static str) {
        self.metrics
            .starts
            .get_or_create(&StartLabels {
                tenant: self.label.tenant.clone(),
                backend,
                outcome,
            })
            .inc();
    }

    /// The gauge of `backend`'s spares waiting now.
    pub fn spares(&self, backend: &'static str) -> Gauge {
        self.metrics
            .spares
            .get_or_create(&BackendLabels {
                tenant: self.label.tenant.clone(),
                backend,
            })
            .clone()
    }

    /// An instance ended on its own; `reason` is how [`crate::backend::ServerEvent::Exited`] put it.
    pub fn instance_exited(&self, reason: &str) {
        let cause = if reason.starts_with("exited") || reason == "ended" {
            "exit"
        } else if reason.starts_with("killed") {
            "signal"
        } else {
            "trap"
        };
        self.metrics
            .exits
            .get_or_create(&ExitLabels {
                tenant: self.label.tenant.clone(),
                cause,
            })
            .inc();
    }

    /// Counts a request as waiting for a turn until the guard is dropped (also when its client goes away).
    pub fn waiting(&self) -> Waiting {
        let gauge = self.metrics.waiting.get_or_create(&self.label).clone();
        gauge.inc();
        Waiting(gauge)
    }

    /// An outbound request answered with `status`, allowed by the grant named `host`.
    pub fn egress_request(&self, host: &str, status: u16) {
        self.metrics
            .egress
            .get_or_create(&EgressLabels {
                tenant: self.label.tenant.clone(),
                host: host.to_owned(),
                status,
            })
            .inc();
    }

    /// Body bytes of an outbound request (`out`) or its response (`in`).
    pub fn egress_bytes(&self, host: &str, direction: &'static str, bytes: u64) {
        self.metrics
            .egress_bytes
            .get_or_create(&EgressBytesLabels {
                tenant: self.label.tenant.clone(),
                host: host.to_owned(),
                direction,
            })
            .inc_by(bytes);
    }

    /// An outbound request refused: `reason` is one of [`crate::policy::egress::Reason`]'s names.
    pub fn egress_denied(&self, reason: &'static str) {
        self.metrics
            .egress_denials
            .get_or_create(&ReasonLabels {
                tenant: self.label.tenant.clone(),
                reason,
            })
            .inc();
    }

    /// An outbound request that failed on the way (`connect`, `timeout`, `too_large`).
    pub fn egress_failed(&self, cause: &'static str) {
        self.metrics
            .egress_failures
            .get_or_create(&ReasonLabels {
                tenant: self.label.tenant.clone(),
                reason: cause,
            })
            .inc();
    }

    pub fn restarted(&self) {
        self.metrics.restarts.get_or_create(&self.label).inc();
    }
}

/// A request waiting for its turn; see [`TenantMetrics::waiting`].
pub struct Waiting(Gauge);

impl Drop for Waiting {
    fn drop(&mut self) {
        self.0.dec();
    }
}
