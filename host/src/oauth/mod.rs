//! OAuth 2.1 for tenants' clients, as the MCP authorization spec asks: a tenant with `auth` takes access
//! tokens bound to its resource URL (`{base}/t/{id}/mcp`), and names in its protected-resource metadata the
//! authorization server that issues them.
//!
//! - [`Verifier`] (`issuer.rs`): any issuer's tokens. JWTs are checked against the issuer's keys (its RFC 8414
//!   or OIDC metadata, then its JWKS: cached, fetched again for an unknown `kid` at most every 30 s); opaque
//!   tokens go to its RFC 7662 introspection endpoint, with a short cache.
//! - [`AuthServer`] (`builtin.rs`): catwalk's own authorization server, for operators without an identity
//!   provider: authorization code with PKCE (S256), dynamic registration and client metadata documents,
//!   refresh tokens rotated on use, revocation; the tenant's owner signs in with a one-time code the control
//!   plane mints through the admin API. Its signing key, clients and grants are kept in the state dir.
//!
//! A token that passes gives a [`Principal`]: the session it opens is bound to its subject and client
//! ([`Principal::owner`]), so another subject's token cannot use it.

mod builtin;
mod issuer;

use std::sync::Arc;

use bytes::Bytes;
use http::{Method, Request, StatusCode, header};
use serde_json::Value;
use sha2::{Digest, Sha256};

pub use builtin::{AuthServer, Authorization, Refused, SignIn};
pub use catwalk_core::schema::tenants::AuthSpec;
pub use issuer::Verifier;

use crate::metrics::TenantMetrics;
use crate::policy::egress::Pin;

/// Who a token was issued to: its issuer, subject, client and scopes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    pub issuer: String,
    pub subject: String,
    pub client_id: String,
    pub scopes: Vec<String>,
}

impl Principal {
    /// What a session is bound to: the issuer, subject and client, hashed (a session holds no token).
    pub fn owner(&self) -> [u8; 32] {
        let mut hash = Sha256::new();
        for part in [&self.issuer, &self.subject, &self.client_id] {
            hash.update(part.as_bytes());
            hash.update([0]);
        }
        hash.finalize().into()
    }
}

/// Why a token was refused, as RFC 6750 says it: `invalid_token` (401), or `insufficient_scope` (403) with
/// the scopes needed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    Invalid(String),
    Scope(String),
}

/// A tenant's OAuth, ready to check tokens.
#[derive(Debug, Clone)]
pub enum TenantAuth {
    Builtin {
        server: Arc<AuthServer>,
        scopes: Vec<String>,
    },
    Issuer(Arc<Verifier>),
}

impl TenantAuth {
    /// Checks `token` for the tenant whose resource URL is `resource` and whose built-in issuer would be
    /// `own_issuer`.
    pub async fn check(
        &self,
        token: &str,
        resource: &str,
        own_issuer: &str,
    ) -> Result<Principal, Refusal> {
        let principal = match self {
            TenantAuth::Builtin { server, .. } => server.check(token, own_issuer, resource)?,
            TenantAuth::Issuer(verifier) => verifier.check(token, resource).await?,
        };
        let missing: Vec<&str> = self
            .scopes()
            .iter()
            .filter(|s| !principal.scopes.contains(s))
            .map(String::as_str)
            .collect();
        match missing.is_empty() {
            true => Ok(principal),
            false => Err(Refusal::Scope(self.scopes().join(" "))),
        }
    }

    /// The scopes every request's token must hold.
    pub fn scopes(&self) -> &[String] {
        match self {
            TenantAuth::Builtin { scopes, .. } => scopes,
            TenantAuth::Issuer(verifier) => verifier.scopes(),
        }
    }

    /// The authorization server that issues this tenant's tokens.
    pub fn authorization_server(&self, own_issuer: &str) -> String {
        match self {
            TenantAuth::Builtin { .. } => own_issuer.to_owned(),
            TenantAuth::Issuer(verifier) => verifier.issuer().to_owned(),
        }
    }

    /// The built-in server, if this tenant uses it.
    pub fn builtin(&self) -> Option<&Arc<AuthServer>> {
        match self {
            TenantAuth::Builtin { server, .. } => Some(server),
            TenantAuth::Issuer(_) => None,
        }
    }
}

/// An OAuth error answer (RFC 6749 §5.2): its status, its `error` code and what went wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OAuthError {
    pub status: StatusCode,
    pub error: &'static str,
    pub description: String,
}

impl OAuthError {
    pub fn new(status: StatusCode, error: &'static str, description: impl Into<String>) -> Self {
        Self {
            status,
            error,
            description: description.into(),
        }
    }

    pub fn request(description: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "invalid_request", description)
    }

    pub fn grant(description: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "invalid_grant", description)
    }

    /// RFC 8707: the `resource` asked for is not the one allowed.
    pub fn target(description: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "invalid_target", description)
    }

    pub fn client(description: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, "invalid_client", description)
    }
}

/// catwalk's own requests to what issuers and clients name, under the egress guard ([`crate::egress::fetch`]).
#[derive(Clone)]
pub struct Fetcher {
    pub pins: Vec<Pin>,
    pub tls: Arc<rustls::ClientConfig>,
    pub metrics: Arc<TenantMetrics>,
}

impl std::fmt::Debug for Fetcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Fetcher")
            .field("pins", &self.pins)
            .finish_non_exhaustive()
    }
}

impl Fetcher {
    /// GETs `url` and reads its body as JSON, of at most `max` bytes; a status other than 200 is an error.
    pub async fn json(&self, url: &str, max: u64) -> Result<Value, String> {
        let request = Request::get(url)
            .header(header::ACCEPT, "application/json")
            .body(Bytes::new())
            .map_err(|_| "not a URL".to_owned())?;
        let (status, body) = self.send(request, max).await?;
        if status != StatusCode::OK {
            return Err(format!("answered {status}"));
        }
        serde_json::from_slice(&body).map_err(|_| "its answer is not JSON".to_owned())
    }

    /// POSTs a form to `url` with HTTP Basic credentials, and reads the JSON answer.
    pub async fn post_form(
        &self,
        url: &str,
        form: &[(&str, &str)],
        basic: (&str, &str),
        max: u64,
    ) -> Result<(StatusCode, Value), String> {
        use base64::Engine;
        let body = url::form_urlencoded::Serializer::new(String::new())
            .extend_pairs(form)
            .finish();
        let encode =
            |s: &str| url::form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
        let credentials = base64::engine::general_purpose::STANDARD.encode(format!(
            "{}:{}",
            encode(basic.0),
            encode(basic.1)
        ));
        let request = Request::builder()
            .method(Method::POST)
            .uri(url)
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .header(header::ACCEPT, "application/json")
            .header(header::AUTHORIZATION, format!("Basic {credentials}"))
            .body(Bytes::from(body))
            .map_err(|_| "not a URL".to_owned())?;
        let (status, body) = self.send(request, max).await?;
        let value =
            serde_json::from_slice(&body).map_err(|_| "its answer is not JSON".to_owned())?;
        Ok((status, value))
    }

    async fn send(&self, request: Request<Bytes>, max: u64) -> Result<(StatusCode, Bytes), String> {
        crate::egress::fetch(
            request,
            &self.pins,
            self.tls.clone(),
            self.metrics.clone(),
            max,
        )
        .await
        .map_err(|e| e.to_string())
    }
}

/// A random token of 32 bytes, base64url.
pub fn random_token() -> String {
    use base64::Engine;
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).expect("the kernel's randomness");
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// SHA-256 of `text`, hex.
pub fn digest(text: &str) -> String {
    Sha256::digest(text.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Seconds since the epoch.
pub fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}
