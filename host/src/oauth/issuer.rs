//! Tokens of an external issuer. Its metadata (RFC 8414, else OIDC discovery) names its keys and its
//! introspection endpoint; both are fetched under the egress guard, on the first token, and kept.
//!
//! A JWT must be signed with RS256, ES256 or EdDSA by a key of the issuer's JWKS whose type fits the algorithm
//! (so `none`, and an HMAC keyed with a public key, never pass), and carry the issuer's `iss`, the tenant's
//! audience in `aud`, a `sub`, and an `exp` (and any `nbf`) within a minute's skew. An unknown `kid` fetches the
//! keys again, at most every 30 s. A token that is not a JWT is introspected, if catwalk has credentials at the
//! issuer; answers are kept for a minute at most (never past the token's `exp`).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use jsonwebtoken::jwk::{AlgorithmParameters, Jwk, JwkSet, KeyAlgorithm};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::Deserialize;
use serde_json::Value;

use super::{Fetcher, Principal, Refusal, now};
use crate::vocab::lock;

/// Largest metadata or key set read.
const MAX_DOCUMENT: u64 = 256 << 10;
/// Most keys kept from a key set.
const MAX_KEYS: usize = 64;
/// Keys are fetched again after this, or for an unknown `kid` (but not more often than [`MIN_REFRESH`]).
const KEYS_TTL: Duration = Duration::from_secs(3600);
const MIN_REFRESH: Duration = Duration::from_secs(30);
/// Clock skew allowed on `exp` and `nbf`.
const LEEWAY: u64 = 60;
const INTROSPECTION_TTL: u64 = 60;
const MAX_INTROSPECTED: usize = 10_000;

/// One issuer, as one tenant trusts it.
pub struct Verifier {
    issuer: String,
    audience: Option<String>,
    scopes: Vec<String>,
    introspection: Option<(String, String)>,
    fetcher: Fetcher,
    keys: tokio::sync::Mutex<Keys>,
    introspected: Mutex<Introspected>,
}

/// Introspection's answers by the token's SHA-256: until when each is kept, and what it said.
type Introspected = HashMap<[u8; 32], (u64, Result<Principal, String>)>;

impl std::fmt::Debug for Verifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Verifier")
            .field("issuer", &self.issuer)
            .field("audience", &self.audience)
            .finish_non_exhaustive()
    }
}

#[derive(Default)]
struct Keys {
    metadata: Option<Metadata>,
    set: Vec<Jwk>,
    fetched: Option<Instant>,
}

#[derive(Deserialize, Clone)]
struct Metadata {
    issuer: String,
    jwks_uri: Option<String>,
    introspection_endpoint: Option<String>,
}

/// The claims catwalk reads (the rest are checked by `jsonwebtoken`'s validation).
#[derive(Deserialize)]
struct Claims {
    sub: Option<String>,
    client_id: Option<String>,
    azp: Option<String>,
    scope: Option<String>,
    scp: Option<Vec<String>>,
}

impl Verifier {
    pub fn new(
        issuer: String,
        audience: Option<String>,
        scopes: Vec<String>,
        introspection: Option<(String, String)>,
        fetcher: Fetcher,
    ) -> Self {
        Self {
            issuer,
            audience,
            scopes,
            introspection,
            fetcher,
            keys: Default::default(),
            introspected: Default::default(),
        }
    }

    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    pub fn scopes(&self) -> &[String] {
        &self.scopes
    }

    /// Checks a token for the resource `resource` (the audience, unless the tenant names another).
    pub async fn check(&self, token: &str, resource: &str) -> Result<Principal, Refusal> {
        let audience = self.audience.as_deref().unwrap_or(resource);
        match jsonwebtoken::decode_header(token) {
            Ok(header) => self.check_jwt(token, header, audience).await,
            Err(_) if token.split('.').count() == 3 => Err(Refusal::Invalid(
                "the token is not a JWT signed with RS256, ES256 or EdDSA".into(),
            )),
            Err(_) => self.introspect(token, audience).await,
        }
    }

    async fn check_jwt(
        &self,
        token: &str,
        header: jsonwebtoken::Header,
        audience: &str,
    ) -> Result<Principal, Refusal> {
        let invalid = |why: &str| Refusal::Invalid(why.to_owned());
        if !matches!(
            header.alg,
            Algorithm::RS256 | Algorithm::ES256 | Algorithm::EdDSA
        ) {
            return Err(invalid("tokens are signed with RS256, ES256 or EdDSA only"));
        }
        let jwk = self.key(header.kid.as_deref(), header.alg).await?;
        let key =
            DecodingKey::from_jwk(&jwk).map_err(|_| invalid("the issuer's key is unusable"))?;
        let mut validation = Validation::new(header.alg);
        validation.set_issuer(&[&self.issuer]);
        validation.set_audience(&[audience]);
        validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        validation.validate_nbf = true;
        validation.leeway = LEEWAY;
        let data = jsonwebtoken::decode::<Claims>(token, &key, &validation).map_err(|e| {
            use jsonwebtoken::errors::ErrorKind;
            invalid(match e.kind() {
                ErrorKind::ExpiredSignature => "the token has expired",
                ErrorKind::ImmatureSignature => "the token is not valid yet",
                ErrorKind::InvalidAudience => "the token is for another resource",
                ErrorKind::InvalidIssuer => "the token is from another issuer",
                ErrorKind::InvalidSignature => "the token's signature does not verify",
                ErrorKind::InvalidAlgorithm => "the token's algorithm does not fit its key",
                ErrorKind::MissingRequiredClaim(_) => "the token lacks exp, iss, aud or sub",
                _ => "the token is malformed",
            })
        })?;
        let claims = data.claims;
        let scopes = match (claims.scope, claims.scp) {
            (Some(scope), _) => scope.split_whitespace().map(str::to_owned).collect(),
            (None, Some(scp)) => scp,
            (None, None) => Vec::new(),
        };
        Ok(Principal {
            issuer: self.issuer.clone(),
            subject: claims.sub.ok_or_else(|| invalid("the token has no sub"))?,
            client_id: claims.client_id.or(claims.azp).unwrap_or_default(),
            scopes,
        })
    }

    /// The key a token names, from the key set (fetched again once for an unknown `kid`).
    async fn key(&self, kid: Option<&str>, alg: Algorithm) -> Result<Jwk, Refusal> {
        let mut keys = self.keys.lock().await;
        let stale = keys.fetched.is_none_or(|at| at.elapsed() > KEYS_TTL);
        if stale {
            self.refresh(&mut keys).await?;
        }
        if let Some(jwk) = find(&keys.set, kid, alg) {
            return Ok(jwk);
        }
        if !stale && keys.fetched.is_some_and(|at| at.elapsed() >= MIN_REFRESH) {
            self.refresh(&mut keys).await?;
            if let Some(jwk) = find(&keys.set, kid, alg) {
                return Ok(jwk);
            }
        }
        Err(Refusal::Invalid(
            "the token's key is not among the issuer's keys".into(),
        ))
    }

    /// Fetches the metadata (once) and the key set.
    async fn refresh(&self, keys: &mut Keys) -> Result<(), Refusal> {
        keys.fetched = Some(Instant::now());
        let metadata = self.metadata(keys).await?;
        let Some(uri) = metadata.jwks_uri else {
            return Err(self.unreachable("its metadata names no jwks_uri"));
        };
        let set: JwkSet = self
            .fetcher
            .json(&uri, MAX_DOCUMENT)
            .await
            .and_then(|v| serde_json::from_value(v).map_err(|_| "not a JWK set".into()))
            .map_err(|e| self.unreachable(&format!("its keys ({uri}): {e}")))?;
        keys.set = set.keys.into_iter().take(MAX_KEYS).collect();
        Ok(())
    }

    async fn metadata(&self, keys: &mut Keys) -> Result<Metadata, Refusal> {
        if let Some(metadata) = &keys.metadata {
            return Ok(metadata.clone());
        }
        let mut last = String::new();
        for url in discovery_urls(&self.issuer) {
            match self.fetcher.json(&url, MAX_DOCUMENT).await {
                Ok(value) => {
                    let metadata: Metadata = serde_json::from_value(value)
                        .map_err(|_| self.unreachable(&format!("{url}: not metadata")))?;
                    if metadata.issuer.trim_end_matches('/') != self.issuer {
                        return Err(self.unreachable(&format!("{url} names another issuer")));
                    }
                    keys.metadata = Some(metadata.clone());
                    return Ok(metadata);
                }
                Err(e) => last = format!("{url}: {e}"),
            }
        }
        Err(self.unreachable(&last))
    }

    /// A token that cannot be checked now: the issuer could not be reached. Logged for the operator.
    fn unreachable(&self, why: &str) -> Refusal {
        tracing::warn!(issuer = %self.issuer, "the issuer's metadata or keys could not be read: {why}");
        Refusal::Invalid("the token cannot be checked: the issuer's keys could not be read".into())
    }

    /// RFC 7662: an opaque token, asked about.
    async fn introspect(&self, token: &str, audience: &str) -> Result<Principal, Refusal> {
        let Some((client_id, secret)) = &self.introspection else {
            return Err(Refusal::Invalid(
                "the token is not a JWT, and this tenant's issuer has no introspection set up"
                    .into(),
            ));
        };
        let key: [u8; 32] = {
            use sha2::Digest;
            sha2::Sha256::digest(token.as_bytes()).into()
        };
        let t = now();
        if let Some((until, answer)) = lock(&self.introspected).get(&key)
            && *until > t
        {
            return answer.clone().map_err(Refusal::Invalid);
        }
        let endpoint = {
            let mut keys = self.keys.lock().await;
            self.metadata(&mut keys).await?.introspection_endpoint
        };
        let Some(endpoint) = endpoint else {
            return Err(self.unreachable("its metadata names no introspection_endpoint"));
        };
        let form = [("token", token), ("token_type_hint", "access_token")];
        let (status, answer) = self
            .fetcher
            .post_form(&endpoint, &form, (client_id, secret), MAX_DOCUMENT)
            .await
            .map_err(|e| self.unreachable(&format!("introspection: {e}")))?;
        if !status.is_success() {
            return Err(self.unreachable(&format!("introspection answered {status}")));
        }
        let exp = answer.get("exp").and_then(Value::as_u64);
        let outcome = self.introspected(&answer, audience, t);
        let until = exp.map_or(t + INTROSPECTION_TTL, |e| e.min(t + INTROSPECTION_TTL));
        let mut cache = lock(&self.introspected);
        if cache.len() >= MAX_INTROSPECTED {
            cache.retain(|_, (until, _)| *until > t);
            if cache.len() >= MAX_INTROSPECTED {
                cache.clear();
            }
        }
        cache.insert(key, (until, outcome.clone()));
        outcome.map_err(Refusal::Invalid)
    }

    fn introspected(&self, answer: &Value, audience: &str, t: u64) -> Result<Principal, String> {
        let text = |k: &str| answer.get(k).and_then(Value::as_str);
        if answer.get("active").and_then(Value::as_bool) != Some(true) {
            return Err("the token is not active".into());
        }
        if answer
            .get("exp")
            .and_then(Value::as_u64)
            .is_some_and(|e| e + LEEWAY < t)
        {
            return Err("the token has expired".into());
        }
        if text("iss").is_some_and(|iss| iss.trim_end_matches('/') != self.issuer) {
            return Err("the token is from another issuer".into());
        }
        let audiences: Vec<&str> = match answer.get("aud") {
            Some(Value::String(one)) => vec![one.as_str()],
            Some(Value::Array(many)) => many.iter().filter_map(Value::as_str).collect(),
            _ => Vec::new(),
        };
        if !audiences.contains(&audience) {
            return Err("the token is for another resource".into());
        }
        Ok(Principal {
            issuer: self.issuer.clone(),
            subject: text("sub").ok_or("the token has no sub")?.to_owned(),
            client_id: text("client_id").unwrap_or_default().to_owned(),
            scopes: text("scope")
                .unwrap_or_default()
                .split_whitespace()
                .map(str::to_owned)
                .collect(),
        })
    }
}

/// Where an issuer's metadata is looked for: RFC 8414's well-known URI (inserted before the issuer's path),
/// then OIDC discovery's (both ways for an issuer with a path).
fn discovery_urls(issuer: &str) -> Vec<String> {
    let Ok(url) = url::Url::parse(issuer) else {
        return Vec::new();
    };
    let origin = url.origin().ascii_serialization();
    let path = url.path().trim_end_matches('/');
    let mut urls = vec![format!(
        "{origin}/.well-known/oauth-authorization-server{path}"
    )];
    if !path.is_empty() {
        urls.push(format!("{origin}/.well-known/openid-configuration{path}"));
    }
    urls.push(format!("{origin}{path}/.well-known/openid-configuration"));
    urls
}

/// The key named `kid` (or the only key, if the token names none) whose type fits `alg`.
fn find(set: &[Jwk], kid: Option<&str>, alg: Algorithm) -> Option<Jwk> {
    let fits = |jwk: &Jwk| {
        let family = matches!(
            (&jwk.algorithm, alg),
            (AlgorithmParameters::RSA(_), Algorithm::RS256)
                | (AlgorithmParameters::EllipticCurve(_), Algorithm::ES256)
                | (AlgorithmParameters::OctetKeyPair(_), Algorithm::EdDSA)
        );
        let named = match jwk.common.key_algorithm {
            None => true,
            Some(named) => key_algorithm(named) == Some(alg),
        };
        family && named
    };
    let mut candidates = set.iter().filter(|jwk| fits(jwk));
    match kid {
        Some(kid) => candidates
            .find(|jwk| jwk.common.key_id.as_deref() == Some(kid))
            .cloned(),
        None => {
            let first = candidates.next()?;
            candidates.next().is_none().then(|| first.clone())
        }
    }
}

fn key_algorithm(named: KeyAlgorithm) -> Option<Algorithm> {
    match named {
        KeyAlgorithm::RS256 => Some(Algorithm::RS256),
        KeyAlgorithm::ES256 => Some(Algorithm::ES256),
        KeyAlgorithm::EdDSA => Some(Algorithm::EdDSA),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metadata_is_looked_for_where_rfc_8414_and_oidc_put_it() {
        assert_eq!(
            discovery_urls("https://idp.test/tenants/a"),
            [
                "https://idp.test/.well-known/oauth-authorization-server/tenants/a",
                "https://idp.test/.well-known/openid-configuration/tenants/a",
                "https://idp.test/tenants/a/.well-known/openid-configuration",
            ]
        );
        assert_eq!(
            discovery_urls("https://idp.test"),
            [
                "https://idp.test/.well-known/oauth-authorization-server",
                "https://idp.test/.well-known/openid-configuration",
            ]
        );
    }
}
