//! A tenant's request rates: for the whole tenant, for each subject, and for the tools matching a pattern
//! (`limits.rate`, `limits.subject_rate`, `limits.tool_rate`). Past a rate, a request is refused with how long
//! until it would be taken (HTTP 429 and `Retry-After`, from the front end), and the refusal is counted.

use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use governor::clock::{Clock, DefaultClock};
use governor::{DefaultDirectRateLimiter, DefaultKeyedRateLimiter, Quota, RateLimiter};

use crate::policy::limits::{Rate, TenantLimits};
use crate::policy::offer::glob;

/// Subjects remembered before those idle longest are forgotten (a forgotten one starts with a full burst).
const SUBJECTS_KEPT: usize = 10_000;

/// Who a request counts against under the subject rate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Subject {
    /// A static token's SHA-256, or an OAuth subject's and client's ([`crate::oauth::Principal::owner`]).
    Owner([u8; 32]),
    /// An open tenant's caller, by address.
    Peer(IpAddr),
}

/// Which rate refused a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Which {
    Tenant,
    Subject,
    Tool,
}

impl Which {
    pub fn label(self) -> &'static str {
        match self {
            Which::Tenant => "rate_tenant",
            Which::Subject => "rate_subject",
            Which::Tool => "rate_tool",
        }
    }
}

/// A request over a rate: which, and when it would be taken.
#[derive(Debug, Clone, Copy)]
pub struct Limited {
    pub which: Which,
    pub retry_after: Duration,
}

/// A tenant's rate limiters.
#[derive(Debug, Default)]
pub struct Rates {
    tenant: Option<DefaultDirectRateLimiter>,
    subjects: Option<DefaultKeyedRateLimiter<Subject>>,
    tools: Vec<(String, DefaultDirectRateLimiter)>,
    /// Subject checks since the limiter was last trimmed.
    checks: AtomicU64,
}

fn quota(rate: &Rate) -> Quota {
    let burst = NonZeroU32::new(rate.burst).unwrap_or(NonZeroU32::MIN);
    Quota::with_period(rate.period)
        .unwrap_or_else(|| Quota::per_second(NonZeroU32::MAX))
        .allow_burst(burst)
}

impl Rates {
    pub fn new(limits: &TenantLimits) -> Self {
        Self {
            tenant: limits.rate.as_ref().map(|r| RateLimiter::direct(quota(r))),
            subjects: limits
                .subject_rate
                .as_ref()
                .map(|r| RateLimiter::keyed(quota(r))),
            tools: limits
                .tool_rate
                .iter()
                .map(|(pattern, r)| (pattern.clone(), RateLimiter::direct(quota(r))))
                .collect(),
            checks: AtomicU64::new(0),
        }
    }

    /// Whether any tool has a rate (so that calls are worth reading for their tool's name).
    pub fn has_tool_rates(&self) -> bool {
        !self.tools.is_empty()
    }

    /// Takes one request of `subject` under the tenant's rate and the subject's.
    pub fn admit(&self, subject: Subject) -> Result<(), Limited> {
        if let Some(limiter) = &self.tenant {
            limiter
                .check()
                .map_err(|until| limited(Which::Tenant, until.wait_time_from(clock_now())))?;
        }
        if let Some(limiter) = &self.subjects {
            // Trimmed now and then, so that a stream of new subjects (addresses) cannot grow it for ever.
            if self.checks.fetch_add(1, Ordering::Relaxed) % 1024 == 1023
                && limiter.len() > SUBJECTS_KEPT
            {
                limiter.retain_recent();
                limiter.shrink_to_fit();
            }
            limiter
                .check_key(&subject)
                .map_err(|until| limited(Which::Subject, until.wait_time_from(clock_now())))?;
        }
        Ok(())
    }

    /// Takes one call of tool `name` under the first tool rate whose pattern matches it.
    pub fn admit_tool(&self, name: &str) -> Result<(), Limited> {
        match self.tools.iter().find(|(pattern, _)| glob(pattern, name)) {
            Some((_, limiter)) => limiter
                .check()
                .map_err(|until| limited(Which::Tool, until.wait_time_from(clock_now()))),
            None => Ok(()),
        }
    }
}

fn clock_now() -> <DefaultClock as Clock>::Instant {
    DefaultClock::default().now()
}

fn limited(which: Which, wait: Duration) -> Limited {
    Limited {
        which,
        retry_after: wait,
    }
}

impl Limited {
    /// `Retry-After`'s whole seconds: rounded up, at least 1.
    pub fn retry_after_secs(&self) -> u64 {
        self.retry_after.as_secs_f64().ceil().max(1.0) as u64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits(rate: Option<Rate>, subject: Option<Rate>) -> TenantLimits {
        TenantLimits {
            rate,
            subject_rate: subject,
            tool_rate: vec![(
                "slow_*".into(),
                Rate {
                    period: Duration::from_secs(10),
                    burst: 1,
                },
            )],
            ..Default::default()
        }
    }

    #[test]
    fn a_burst_is_taken_then_refused_with_a_wait() {
        let rate = Rate {
            period: Duration::from_secs(10),
            burst: 3,
        };
        let rates = Rates::new(&limits(Some(rate), None));
        let who = Subject::Peer([127, 0, 0, 1].into());
        for _ in 0..3 {
            assert!(rates.admit(who).is_ok());
        }
        let refused = rates.admit(who).unwrap_err();
        assert_eq!(refused.which, Which::Tenant);
        assert!(refused.retry_after > Duration::ZERO);
        assert!((1..=10).contains(&refused.retry_after_secs()));
    }

    #[test]
    fn each_subject_has_its_own_burst() {
        let rate = Rate {
            period: Duration::from_secs(10),
            burst: 1,
        };
        let rates = Rates::new(&limits(None, Some(rate)));
        assert!(rates.admit(Subject::Owner([1; 32])).is_ok());
        assert_eq!(
            rates.admit(Subject::Owner([1; 32])).unwrap_err().which,
            Which::Subject
        );
        assert!(rates.admit(Subject::Owner([2; 32])).is_ok());
    }

    #[test]
    fn tools_matching_a_pattern_share_its_rate() {
        let rates = Rates::new(&limits(None, None));
        assert!(rates.has_tool_rates());
        assert!(rates.admit_tool("slow_search").is_ok());
        assert_eq!(
            rates.admit_tool("slow_fetch").unwrap_err().which,
            Which::Tool
        );
        assert!(rates.admit_tool("echo").is_ok());
    }
}
