//! Origin and Host validation, before anything else sees a request (the endpoints' layers check it first:
//! [`super::auth::scope`], and [`super::replay::replay`] in front of it when sessions span machines).
//!
//! - A present `Origin` must be allowed, or the answer is 403: a web page must not drive a tenant's server.
//! - When catwalk is bound to loopback, `Host` must name loopback (or an allowed host), or 403: this is what
//!   stops DNS rebinding, where `evil.example` resolves to 127.0.0.1 in the victim's browser.
//!
//! By default the loopback names (`localhost`, `127.0.0.1`, `[::1]`, any port) are allowed as hosts and as
//! `http(s)` origins; `--allowed-host` and `--allowed-origin` add more (`*` allows any).

use axum::http::{HeaderMap, header};

use super::error::HttpError;

/// The validated allowlists.
#[derive(Debug, Clone, Default)]
pub struct OriginPolicy {
    /// Enforce `Host` (set when bound to loopback).
    pub check_host: bool,
    /// Extra hosts (names, without port), lowercase; `*` allows all.
    pub hosts: Vec<String>,
    /// Extra origins (`scheme://host[:port]`), lowercase; `*` allows all.
    pub origins: Vec<String>,
}

impl OriginPolicy {
    fn host_allowed(&self, host: &str) -> bool {
        let name = strip_port(host).to_ascii_lowercase();
        is_loopback_name(&name) || self.hosts.iter().any(|h| h == "*" || *h == name)
    }

    fn origin_allowed(&self, origin: &str) -> bool {
        let origin = origin.trim_end_matches('/').to_ascii_lowercase();
        if self.origins.iter().any(|o| o == "*" || *o == origin) {
            return true;
        }
        match origin.split_once("://") {
            Some(("http" | "https", authority)) => {
                let name = strip_port(authority);
                is_loopback_name(name) || self.hosts.iter().any(|h| h != "*" && h == name)
            }
            _ => false,
        }
    }

    pub fn check(&self, headers: &HeaderMap) -> Result<(), HttpError> {
        if let Some(origin) = headers.get(header::ORIGIN) {
            let allowed = origin.to_str().is_ok_and(|o| self.origin_allowed(o));
            if !allowed {
                return Err(HttpError::Forbidden("Origin not allowed"));
            }
        }
        if self.check_host {
            let allowed = headers
                .get(header::HOST)
                .and_then(|h| h.to_str().ok())
                .is_some_and(|h| self.host_allowed(h));
            if !allowed {
                return Err(HttpError::Forbidden("Host not allowed"));
            }
        }
        Ok(())
    }
}

fn strip_port(authority: &str) -> &str {
    // `[v6]:port` keeps its brackets; a `[` with no `]` is no address, and is left whole.
    if authority.starts_with('[') {
        return authority
            .find(']')
            .map_or(authority, |end| &authority[..=end]);
    }
    authority
        .rsplit_once(':')
        .map_or(authority, |(host, _)| host)
}

fn is_loopback_name(name: &str) -> bool {
    matches!(name, "localhost" | "[::1]")
        || name.starts_with("127.") && name.parse::<std::net::Ipv4Addr>().is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn headers(host: Option<&str>, origin: Option<&str>) -> HeaderMap {
        let mut h = HeaderMap::new();
        if let Some(v) = host {
            h.insert(header::HOST, HeaderValue::from_str(v).unwrap());
        }
        if let Some(v) = origin {
            h.insert(header::ORIGIN, HeaderValue::from_str(v).unwrap());
        }
        h
    }

    #[test]
    fn loopback_policy_refuses_rebinding_and_foreign_origins() {
        let p = OriginPolicy {
            check_host: true,
            ..Default::default()
        };
        assert!(p.check(&headers(Some("localhost:8080"), None)).is_ok());
        assert!(
            p.check(&headers(Some("127.0.0.1:9"), Some("http://127.0.0.1:9")))
                .is_ok()
        );
        assert!(
            p.check(&headers(Some("[::1]:80"), Some("https://localhost")))
                .is_ok()
        );
        assert!(p.check(&headers(Some("evil.example.com"), None)).is_err());
        assert!(
            p.check(&headers(Some("localhost"), Some("http://evil.example.com")))
                .is_err()
        );
        assert!(p.check(&headers(Some("127.0.0.1.evil.com"), None)).is_err());
        assert!(p.check(&headers(None, None)).is_err());
        assert!(p.check(&headers(Some("localhost"), Some("null"))).is_err());
        // Malformed bracketed hosts are refused, not a panic.
        assert!(p.check(&headers(Some("[::1"), None)).is_err());
        assert!(p.check(&headers(Some("["), Some("http://["))).is_err());
        assert!(p.check(&headers(Some("[::1]"), None)).is_ok());
    }

    #[test]
    fn allowlists_extend_the_defaults() {
        let p = OriginPolicy {
            check_host: false,
            hosts: vec!["mcp.example.com".into()],
            origins: vec!["https://app.example.com".into()],
        };
        assert!(p.check(&headers(Some("anything"), None)).is_ok());
        assert!(
            p.check(&headers(None, Some("https://app.example.com")))
                .is_ok()
        );
        assert!(
            p.check(&headers(None, Some("https://mcp.example.com:443")))
                .is_ok()
        );
        assert!(
            p.check(&headers(None, Some("https://other.example.com")))
                .is_err()
        );
    }
}
