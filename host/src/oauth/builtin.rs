// Longer than 700 lines: one authorization server, whose steps (register, authorize, token, refresh, revoke)
// share its clients, codes and grants, and are easier to check against each other side by side.
//! catwalk's own authorization server, one per tenant, for operators without an identity provider. Its issuer
//! is `{base}/t/{id}`; its endpoints are under `{base}/t/{id}/oauth/` ([`crate::http`] serves them).
//!
//! - Clients register by RFC 7591 (at most [`BURST`] at once from one address, then one every
//!   [`REFILL`]), or are named by a client metadata document (`client_id` is its `https` URL), fetched under
//!   the egress guard and kept for ten minutes.
//! - The tenant's owner signs in on the consent page with a one-time code the control plane minted through the
//!   admin API for a subject ([`AuthServer::sign_in`]). catwalk keeps no users: the code names the subject.
//! - Authorization codes need PKCE with S256, live a minute and are used once: a code used again revokes the
//!   grant it gave.
//! - Access tokens are JWTs signed with the tenant's Ed25519 key, bound to the tenant's resource URL, and live
//!   ten minutes; a revoked grant's tokens stop working at once.
//! - Refresh tokens are rotated on every use and kept only as SHA-256 digests; one used twice revokes its
//!   whole grant.
//!
//! The signing key (sealed with the state key), the clients and the grants are kept in
//! `<state dir>/oauth/<tenant>.json`, written whole for every change. Codes and sign-in codes live in memory.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, RwLock};
use std::time::{Duration, Instant};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use http::StatusCode;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use ring::signature::{Ed25519KeyPair, KeyPair};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use super::{Fetcher, OAuthError, Principal, Refusal, digest, now, random_token};
use crate::sealed::{StateKey, write_durably};
use crate::vocab::lock;

const FORMAT: u32 = 1;
/// How long an access token lives.
pub const ACCESS_TTL: u64 = 600;
/// How long a grant lives without being refreshed.
const GRANT_TTL: u64 = 30 * 24 * 3600;
const CODE_TTL: u64 = 60;
/// Registrations one address may make at once, and how soon it may make another.
pub const BURST: f64 = 10.0;
pub const REFILL: Duration = Duration::from_secs(6);
const MAX_CLIENTS: usize = 10_000;
const MAX_GRANTS: usize = 10_000;
const MAX_PENDING: usize = 10_000;
const MAX_REDIRECTS: usize = 10;
/// A client metadata document's largest size, and how long one is kept.
const MAX_DOCUMENT: u64 = 5 << 10;
const DOCUMENT_TTL: Duration = Duration::from_secs(600);
/// Refresh tokens of a grant remembered after rotation, to catch their reuse.
const SPENT_KEPT: usize = 16;

/// A tenant's authorization server.
pub struct AuthServer {
    tenant: String,
    dir: PathBuf,
    kid: String,
    signing: EncodingKey,
    verifying: DecodingKey,
    public: String,
    kept: tokio::sync::Mutex<Kept>,
    /// The ids of live grants: a token of a grant not here is refused.
    live: RwLock<HashSet<String>>,
    pending: Mutex<Pending>,
    fetcher: Fetcher,
}

impl std::fmt::Debug for AuthServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuthServer")
            .field("tenant", &self.tenant)
            .field("kid", &self.kid)
            .finish_non_exhaustive()
    }
}

/// What is kept in the state dir.
#[derive(Serialize, Deserialize)]
struct Kept {
    format: u32,
    kid: String,
    /// The Ed25519 key (PKCS#8), sealed with the state key.
    signing_key: String,
    clients: BTreeMap<String, Client>,
    grants: BTreeMap<String, Grant>,
}

/// A client, registered or named by its metadata document.
#[derive(Serialize, Deserialize, Clone)]
struct Client {
    client_id: String,
    client_name: Option<String>,
    redirect_uris: Vec<String>,
    /// `none`, `client_secret_post` or `client_secret_basic`.
    auth_method: String,
    secret_sha256: Option<String>,
    created: u64,
}

/// What a signed-in subject gave a client: its refresh token's digest, and those it replaced.
#[derive(Serialize, Deserialize, Clone)]
struct Grant {
    subject: String,
    client_id: String,
    scopes: Vec<String>,
    resource: String,
    refresh_sha256: String,
    spent: Vec<String>,
    created: u64,
    refreshed: u64,
}

#[derive(Default)]
struct Pending {
    codes: HashMap<String, Code>,
    sign_ins: HashMap<String, (String, u64)>,
    /// Registrations left to each address, when that was counted, and when its refusal was last logged.
    buckets: HashMap<IpAddr, (f64, Instant, Option<Instant>)>,
    documents: HashMap<String, (Instant, Client)>,
}

struct Code {
    client_id: String,
    redirect_uri: String,
    challenge: String,
    subject: String,
    scopes: Vec<String>,
    resource: String,
    expires: u64,
    /// The grant it gave, once used.
    redeemed: Option<String>,
}

/// A one-time sign-in code, as the admin API hands it to the control plane.
#[derive(Debug, Serialize)]
pub struct SignIn {
    pub code: String,
    pub subject: String,
    pub expires_in: u64,
}

/// An authorization request that passed its checks, for the consent page.
#[derive(Debug, Clone)]
pub struct Authorization {
    pub client_id: String,
    pub client_name: Option<String>,
    pub redirect_uri: String,
    pub state: Option<String>,
    pub challenge: String,
    pub resource: String,
}

/// Why an authorization request cannot go on: shown on the page (its client or redirect cannot be trusted),
/// or sent back to the client's redirect URI.
#[derive(Debug)]
pub enum Refused {
    Page(OAuthError),
    Redirect(String),
}

/// The claims of catwalk's access tokens.
#[derive(Serialize, Deserialize)]
struct AccessClaims {
    iss: String,
    sub: String,
    aud: String,
    exp: u64,
    iat: u64,
    jti: String,
    client_id: String,
    scope: String,
    /// The grant it came from.
    gid: String,
}

impl AuthServer {
    /// The tenant's server, with what was kept for it (a new signing key the first time).
    pub fn open(
        state_dir: &Path,
        tenant: &str,
        key: &StateKey,
        fetcher: Fetcher,
    ) -> Result<Self, String> {
        let dir = state_dir.join("oauth");
        std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        let path = dir.join(file_name(tenant));
        let aad = format!("catwalk-oauth-key:{tenant}");
        let (kept, pkcs8) = match std::fs::read(&path) {
            Ok(bytes) => {
                let kept: Kept = serde_json::from_slice(&bytes)
                    .map_err(|_| format!("{}: not catwalk's OAuth state", path.display()))?;
                let pkcs8 = key.open(&aad, &kept.signing_key).ok_or_else(|| {
                    format!(
                        "{}: the signing key does not open with this state key",
                        path.display()
                    )
                })?;
                (kept, pkcs8)
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let rng = ring::rand::SystemRandom::new();
                let pkcs8 = Ed25519KeyPair::generate_pkcs8(&rng)
                    .map_err(|_| "no randomness for a signing key")?
                    .as_ref()
                    .to_vec();
                let pair = Ed25519KeyPair::from_pkcs8(&pkcs8).map_err(|_| "a bad signing key")?;
                let kid =
                    digest(&URL_SAFE_NO_PAD.encode(pair.public_key().as_ref()))[..16].to_owned();
                let kept = Kept {
                    format: FORMAT,
                    kid,
                    signing_key: key.seal(&aad, &pkcs8)?,
                    clients: BTreeMap::new(),
                    grants: BTreeMap::new(),
                };
                let bytes = serde_json::to_vec(&kept).map_err(|e| e.to_string())?;
                write_durably(&dir, &file_name(tenant), &bytes)
                    .map_err(|e| format!("{}: {e}", path.display()))?;
                (kept, pkcs8)
            }
            Err(e) => return Err(format!("{}: {e}", path.display())),
        };
        let pair = Ed25519KeyPair::from_pkcs8(&pkcs8).map_err(|_| "a bad signing key")?;
        let public = URL_SAFE_NO_PAD.encode(pair.public_key().as_ref());
        let verifying = DecodingKey::from_ed_components(&public).map_err(|e| e.to_string())?;
        let live = kept.grants.keys().cloned().collect();
        Ok(Self {
            tenant: tenant.to_owned(),
            dir,
            kid: kept.kid.clone(),
            signing: EncodingKey::from_ed_der(&pkcs8),
            verifying,
            public,
            kept: tokio::sync::Mutex::new(kept),
            live: RwLock::new(live),
            pending: Mutex::default(),
            fetcher,
        })
    }

    /// Forgets a tenant's clients, grants and key (the tenant was removed).
    pub fn forget(state_dir: &Path, tenant: &str) {
        let _ = std::fs::remove_file(state_dir.join("oauth").join(file_name(tenant)));
    }

    /// RFC 8414 metadata, for the issuer `issuer` (`{base}/t/{id}`).
    pub fn metadata(&self, issuer: &str, scopes: &[String]) -> Value {
        let mut metadata = json!({
            "issuer": issuer,
            "authorization_endpoint": format!("{issuer}/oauth/authorize"),
            "token_endpoint": format!("{issuer}/oauth/token"),
            "registration_endpoint": format!("{issuer}/oauth/register"),
            "revocation_endpoint": format!("{issuer}/oauth/revoke"),
            "jwks_uri": format!("{issuer}/oauth/jwks"),
            "response_types_supported": ["code"],
            "grant_types_supported": ["authorization_code", "refresh_token"],
            "code_challenge_methods_supported": ["S256"],
            "token_endpoint_auth_methods_supported": ["none", "client_secret_post", "client_secret_basic"],
            "revocation_endpoint_auth_methods_supported": ["none", "client_secret_post", "client_secret_basic"],
            "client_id_metadata_document_supported": true,
            "authorization_response_iss_parameter_supported": true,
        });
        if !scopes.is_empty() {
            metadata["scopes_supported"] = json!(scopes);
        }
        metadata
    }

    /// The public key tokens are signed with, as a JWK set.
    pub fn jwks(&self) -> Value {
        json!({"keys": [{
            "kty": "OKP", "crv": "Ed25519", "x": self.public, "kid": self.kid, "alg": "EdDSA", "use": "sig",
        }]})
    }

    /// RFC 7591 registration from `peer`: the client's record, with its secret if it has one.
    pub async fn register(&self, peer: IpAddr, body: &Value) -> Result<Value, OAuthError> {
        if !self.take_registration(peer) {
            return Err(OAuthError::new(
                StatusCode::TOO_MANY_REQUESTS,
                "too_many_requests",
                format!(
                    "too many registrations from this address; one more is allowed every {}s",
                    REFILL.as_secs()
                ),
            ));
        }
        let invalid = |why: &str| {
            OAuthError::new(
                StatusCode::BAD_REQUEST,
                "invalid_client_metadata",
                why.to_owned(),
            )
        };
        let redirect = |why: &str| {
            OAuthError::new(
                StatusCode::BAD_REQUEST,
                "invalid_redirect_uri",
                why.to_owned(),
            )
        };
        let Some(body) = body.as_object() else {
            return Err(invalid("the registration is a JSON object"));
        };
        let redirect_uris: Vec<String> = match body.get("redirect_uris") {
            Some(Value::Array(uris)) if !uris.is_empty() && uris.len() <= MAX_REDIRECTS => uris
                .iter()
                .map(|u| u.as_str().map(str::to_owned))
                .collect::<Option<_>>()
                .ok_or_else(|| redirect("redirect_uris are strings"))?,
            _ => {
                return Err(redirect(&format!(
                    "redirect_uris: 1 to {MAX_REDIRECTS} URIs are needed"
                )));
            }
        };
        if let Some(bad) = redirect_uris.iter().find(|u| !redirect_allowed(u)) {
            return Err(redirect(&format!(
                "{}: a redirect URI is https, http to a loopback address, or an app's own scheme, without a fragment",
                shown(bad)
            )));
        }
        let listed = |key: &str, allowed: &[&str]| match body.get(key) {
            None => true,
            Some(Value::Array(values)) => values
                .iter()
                .all(|v| v.as_str().is_some_and(|v| allowed.contains(&v))),
            Some(_) => false,
        };
        if !listed("grant_types", &["authorization_code", "refresh_token"]) {
            return Err(invalid(
                "grant_types: authorization_code and refresh_token are supported",
            ));
        }
        if !listed("response_types", &["code"]) {
            return Err(invalid("response_types: code is supported"));
        }
        let auth_method = match body.get("token_endpoint_auth_method") {
            None => "client_secret_basic",
            Some(Value::String(m))
                if ["none", "client_secret_post", "client_secret_basic"].contains(&m.as_str()) =>
            {
                m.as_str()
            }
            Some(_) => {
                return Err(invalid(
                    "token_endpoint_auth_method: none, client_secret_post or client_secret_basic",
                ));
            }
        };
        let client_name = match body.get("client_name") {
            None | Some(Value::Null) => None,
            Some(Value::String(name)) => Some(
                name.chars()
                    .filter(|c| !c.is_control())
                    .take(200)
                    .collect::<String>(),
            ),
            Some(_) => return Err(invalid("client_name is a string")),
        };
        let secret = (auth_method != "none").then(random_token);
        let client = Client {
            client_id: format!("cw-{}", &random_token()[..24]),
            client_name,
            redirect_uris,
            auth_method: auth_method.to_owned(),
            secret_sha256: secret.as_deref().map(digest),
            created: now(),
        };
        let mut kept = self.kept.lock().await;
        if kept.clients.len() >= MAX_CLIENTS {
            return Err(OAuthError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "temporarily_unavailable",
                "this tenant has as many registered clients as it may",
            ));
        }
        kept.clients
            .insert(client.client_id.clone(), client.clone());
        self.save(&kept).await.map_err(|e| self.failed(&e))?;
        let mut answer = json!({
            "client_id": client.client_id,
            "client_id_issued_at": client.created,
            "redirect_uris": client.redirect_uris,
            "token_endpoint_auth_method": client.auth_method,
            "grant_types": ["authorization_code", "refresh_token"],
            "response_types": ["code"],
        });
        if let Some(name) = client.client_name {
            answer["client_name"] = json!(name);
        }
        if let Some(secret) = secret {
            answer["client_secret"] = json!(secret);
            answer["client_secret_expires_at"] = json!(0);
        }
        Ok(answer)
    }

    /// Takes one of `peer`'s registrations, if it has one left. A refusal is logged once a minute per address.
    fn take_registration(&self, peer: IpAddr) -> bool {
        let mut pending = lock(&self.pending);
        let now = Instant::now();
        if pending.buckets.len() >= MAX_PENDING {
            pending
                .buckets
                .retain(|_, (_, at, _)| now.duration_since(*at) < REFILL.mul_f64(BURST));
        }
        let (tokens, at, logged) = pending.buckets.entry(peer).or_insert((BURST, now, None));
        *tokens =
            (*tokens + now.duration_since(*at).as_secs_f64() / REFILL.as_secs_f64()).min(BURST);
        *at = now;
        if *tokens >= 1.0 {
            *tokens -= 1.0;
            return true;
        }
        if logged.is_none_or(|l| now.duration_since(l) >= Duration::from_secs(60)) {
            *logged = Some(now);
            tracing::warn!(tenant = %self.tenant, %peer, "client registrations refused: too many from this address");
        }
        false
    }

    /// Checks an authorization request (its query, or the consent form's fields) for the resource `resource`.
    pub async fn authorization(
        &self,
        params: &HashMap<String, String>,
        resource: &str,
    ) -> Result<Authorization, Refused> {
        let page = |why: String| Refused::Page(OAuthError::request(why));
        let client_id = params
            .get("client_id")
            .ok_or_else(|| page("client_id is missing".into()))?;
        let client = self.client(client_id).await.map_err(Refused::Page)?;
        let redirect_uri = match params.get("redirect_uri") {
            Some(uri)
                if client
                    .redirect_uris
                    .iter()
                    .any(|r| redirect_matches(r, uri)) =>
            {
                uri.clone()
            }
            Some(uri) => {
                tracing::warn!(tenant = %self.tenant, client = %shown(client_id), "authorization refused: redirect URI not registered");
                return Err(page(format!(
                    "{} is not a redirect URI registered for this client",
                    shown(uri)
                )));
            }
            None if client.redirect_uris.len() == 1 => client.redirect_uris[0].clone(),
            None => return Err(page("redirect_uri is missing".into())),
        };
        let state = params.get("state").cloned();
        let back = |error: &str, why: &str| {
            tracing::warn!(tenant = %self.tenant, client = %shown(client_id), "authorization refused: {why}");
            Refused::Redirect(redirect_to(
                &redirect_uri,
                &[
                    ("error", error),
                    ("error_description", why),
                    ("state", state.as_deref().unwrap_or_default()),
                ],
            ))
        };
        if params.get("response_type").map(String::as_str) != Some("code") {
            return Err(back(
                "unsupported_response_type",
                "response_type must be code",
            ));
        }
        let challenge = match (
            params.get("code_challenge"),
            params.get("code_challenge_method").map(String::as_str),
        ) {
            (None, _) => {
                return Err(back(
                    "invalid_request",
                    "PKCE is required: code_challenge is missing",
                ));
            }
            (Some(_), Some("S256")) => params["code_challenge"].clone(),
            (Some(_), _) => {
                return Err(back(
                    "invalid_request",
                    "code_challenge_method must be S256 (plain is not accepted)",
                ));
            }
        };
        let well_formed = (43..=128).contains(&challenge.len())
            && challenge
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        if !well_formed {
            return Err(back(
                "invalid_request",
                "code_challenge is not an S256 challenge",
            ));
        }
        if let Some(asked) = params.get("resource")
            && !same_resource(asked, resource)
        {
            return Err(back(
                "invalid_target",
                "resource is not this tenant's MCP endpoint",
            ));
        }
        Ok(Authorization {
            client_id: client.client_id,
            client_name: client.client_name,
            redirect_uri,
            state,
            challenge,
            resource: resource.to_owned(),
        })
    }

    /// Mints a one-time sign-in code for `subject`, good for `ttl`.
    pub fn sign_in(&self, subject: &str, ttl: Duration) -> SignIn {
        let code = format!("cwsi_{}", random_token());
        let expires_in = ttl.as_secs().max(1);
        let mut pending = lock(&self.pending);
        let t = now();
        if pending.sign_ins.len() >= MAX_PENDING {
            pending.sign_ins.retain(|_, (_, until)| *until > t);
        }
        pending
            .sign_ins
            .insert(digest(&code), (subject.to_owned(), t + expires_in));
        SignIn {
            code,
            subject: subject.to_owned(),
            expires_in,
        }
    }

    /// The owner signed in with `sign_in`: the code for the client, in the URL it is sent back to.
    pub fn approve(
        &self,
        request: &Authorization,
        sign_in: &str,
        issuer: &str,
        scopes: &[String],
    ) -> Result<String, OAuthError> {
        let mut pending = lock(&self.pending);
        let t = now();
        let subject = match pending.sign_ins.remove(&digest(sign_in.trim())) {
            Some((subject, until)) if until > t => subject,
            _ => {
                tracing::warn!(tenant = %self.tenant, client = %shown(&request.client_id), "sign-in refused: the code is unknown, used or expired");
                return Err(OAuthError::new(
                    StatusCode::UNAUTHORIZED,
                    "access_denied",
                    "the sign-in code is unknown, used or expired; ask for a new one",
                ));
            }
        };
        let code = random_token();
        if pending.codes.len() >= MAX_PENDING {
            pending.codes.retain(|_, c| c.expires > t);
        }
        pending.codes.insert(
            digest(&code),
            Code {
                client_id: request.client_id.clone(),
                redirect_uri: request.redirect_uri.clone(),
                challenge: request.challenge.clone(),
                subject,
                scopes: scopes.to_vec(),
                resource: request.resource.clone(),
                expires: t + CODE_TTL,
                redeemed: None,
            },
        );
        let mut params = vec![("code", code.as_str()), ("iss", issuer)];
        if let Some(state) = &request.state {
            params.push(("state", state));
        }
        Ok(redirect_to(&request.redirect_uri, &params))
    }

    /// The token endpoint: a code or a refresh token for tokens. `basic` is the client's HTTP Basic
    /// credentials, if it sent them.
    pub async fn token(
        &self,
        form: &HashMap<String, String>,
        basic: Option<(String, String)>,
        issuer: &str,
        resource: &str,
    ) -> Result<Value, OAuthError> {
        let client = self.authenticate(form, basic).await?;
        match form.get("grant_type").map(String::as_str) {
            Some("authorization_code") => self.redeem(form, &client, issuer, resource).await,
            Some("refresh_token") => self.refresh(form, &client, issuer, resource).await,
            Some(_) => Err(OAuthError::new(
                StatusCode::BAD_REQUEST,
                "unsupported_grant_type",
                "grant_type is authorization_code or refresh_token",
            )),
            None => Err(OAuthError::request("grant_type is missing")),
        }
    }

    async fn redeem(
        &self,
        form: &HashMap<String, String>,
        client: &Client,
        issuer: &str,
        resource: &str,
    ) -> Result<Value, OAuthError> {
        let code = form
            .get("code")
            .ok_or_else(|| OAuthError::request("code is missing"))?;
        let verifier = form
            .get("code_verifier")
            .ok_or_else(|| OAuthError::request("code_verifier is missing (PKCE is required)"))?;
        let id = random_token();
        let (subject, scopes, granted_resource, replayed) = {
            let mut pending = lock(&self.pending);
            let Some(found) = pending.codes.get_mut(&digest(code)) else {
                return Err(OAuthError::grant("the code is unknown or expired"));
            };
            if found.expires <= now() {
                return Err(OAuthError::grant("the code has expired"));
            }
            if found.client_id != client.client_id {
                return Err(OAuthError::grant("the code was given to another client"));
            }
            match &found.redeemed {
                Some(grant) => (
                    String::new(),
                    Vec::new(),
                    String::new(),
                    Some(grant.clone()),
                ),
                None => {
                    if form.get("redirect_uri") != Some(&found.redirect_uri) {
                        return Err(OAuthError::grant(
                            "redirect_uri is not the one the code was sent to",
                        ));
                    }
                    let challenge = URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()));
                    if challenge != found.challenge {
                        tracing::warn!(tenant = %self.tenant, client = %shown(&client.client_id), "token refused: the PKCE verifier does not match");
                        return Err(OAuthError::grant(
                            "code_verifier does not match the challenge",
                        ));
                    }
                    if let Some(asked) = form.get("resource")
                        && !same_resource(asked, &found.resource)
                    {
                        return Err(OAuthError::target(
                            "resource is not the one the code was given for",
                        ));
                    }
                    // Used from now on: a second exchange racing this one is a replay.
                    found.redeemed = Some(id.clone());
                    (
                        found.subject.clone(),
                        found.scopes.clone(),
                        found.resource.clone(),
                        None,
                    )
                }
            }
        };
        if let Some(grant) = replayed {
            tracing::warn!(tenant = %self.tenant, client = %shown(&client.client_id), "a code was used twice: its grant is revoked");
            self.remove_grants(|id, _| *id == grant)
                .await
                .map_err(|e| self.failed(&e))?;
            return Err(OAuthError::grant("the code was used already"));
        }
        if !same_resource(&granted_resource, resource) {
            return Err(OAuthError::grant("the code was given for another resource"));
        }
        let refresh = random_token();
        let t = now();
        let grant = Grant {
            subject,
            client_id: client.client_id.clone(),
            scopes,
            resource: granted_resource,
            refresh_sha256: digest(&refresh),
            spent: Vec::new(),
            created: t,
            refreshed: t,
        };
        {
            let mut kept = self.kept.lock().await;
            kept.grants.retain(|_, g| g.refreshed + GRANT_TTL > t);
            if kept.grants.len() >= MAX_GRANTS {
                return Err(OAuthError::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "temporarily_unavailable",
                    "this tenant has as many grants as it may",
                ));
            }
            kept.grants.insert(id.clone(), grant.clone());
            self.save(&kept).await.map_err(|e| self.failed(&e))?;
            self.set_live(&kept);
        }
        self.tokens(&id, &grant, &refresh, issuer)
    }

    async fn refresh(
        &self,
        form: &HashMap<String, String>,
        client: &Client,
        issuer: &str,
        resource: &str,
    ) -> Result<Value, OAuthError> {
        let presented = form
            .get("refresh_token")
            .ok_or_else(|| OAuthError::request("refresh_token is missing"))?;
        let hash = digest(presented);
        let t = now();
        let mut kept = self.kept.lock().await;
        let reused = kept
            .grants
            .iter()
            .find(|(_, g)| g.spent.contains(&hash))
            .map(|(id, g)| (id.clone(), g.client_id.clone()));
        if let Some((id, owner)) = reused {
            tracing::warn!(tenant = %self.tenant, client = %shown(&owner), "a refresh token was used after rotation: its whole grant is revoked");
            kept.grants.remove(&id);
            self.save(&kept).await.map_err(|e| self.failed(&e))?;
            self.set_live(&kept);
            return Err(OAuthError::grant(
                "the refresh token was used already; the grant is revoked",
            ));
        }
        let Some((id, grant)) = kept
            .grants
            .iter_mut()
            .find(|(_, g)| g.refresh_sha256 == hash)
        else {
            return Err(OAuthError::grant("the refresh token is unknown or revoked"));
        };
        if grant.client_id != client.client_id {
            return Err(OAuthError::grant(
                "the refresh token was given to another client",
            ));
        }
        if grant.refreshed + GRANT_TTL <= t {
            return Err(OAuthError::grant("the grant has expired; sign in again"));
        }
        if let Some(asked) = form.get("resource")
            && !same_resource(asked, &grant.resource)
        {
            return Err(OAuthError::target(
                "resource is not the one the grant was given for",
            ));
        }
        if !same_resource(&grant.resource, resource) {
            return Err(OAuthError::grant(
                "the grant was given for another resource",
            ));
        }
        let id = id.clone();
        let refresh = random_token();
        grant.spent.push(hash);
        if grant.spent.len() > SPENT_KEPT {
            grant.spent.remove(0);
        }
        grant.refresh_sha256 = digest(&refresh);
        grant.refreshed = t;
        let grant = grant.clone();
        self.save(&kept).await.map_err(|e| self.failed(&e))?;
        drop(kept);
        self.tokens(&id, &grant, &refresh, issuer)
    }

    /// The token response: a signed access token, and the grant's new refresh token.
    fn tokens(
        &self,
        id: &str,
        grant: &Grant,
        refresh: &str,
        issuer: &str,
    ) -> Result<Value, OAuthError> {
        let t = now();
        let claims = AccessClaims {
            iss: issuer.to_owned(),
            sub: grant.subject.clone(),
            aud: grant.resource.clone(),
            exp: t + ACCESS_TTL,
            iat: t,
            jti: random_token(),
            client_id: grant.client_id.clone(),
            scope: grant.scopes.join(" "),
            gid: id.to_owned(),
        };
        let mut header = Header::new(Algorithm::EdDSA);
        header.kid = Some(self.kid.clone());
        header.typ = Some("at+jwt".into());
        let access = jsonwebtoken::encode(&header, &claims, &self.signing)
            .map_err(|_| self.failed("signing a token failed"))?;
        let mut answer = json!({
            "access_token": access,
            "token_type": "Bearer",
            "expires_in": ACCESS_TTL,
            "refresh_token": refresh,
        });
        if !grant.scopes.is_empty() {
            answer["scope"] = json!(claims.scope);
        }
        Ok(answer)
    }

    /// RFC 7009: the grant of a refresh token or of an access token this server signed ends. An unknown token
    /// is no error.
    pub async fn revoke(
        &self,
        form: &HashMap<String, String>,
        basic: Option<(String, String)>,
    ) -> Result<(), OAuthError> {
        let client = self.authenticate(form, basic).await?;
        let token = form
            .get("token")
            .ok_or_else(|| OAuthError::request("token is missing"))?;
        let hash = digest(token);
        let access_grant = {
            let mut validation = Validation::new(Algorithm::EdDSA);
            validation.validate_aud = false;
            validation.validate_exp = false;
            validation.required_spec_claims.clear();
            jsonwebtoken::decode::<AccessClaims>(token, &self.verifying, &validation)
                .ok()
                .map(|data| data.claims.gid)
        };
        let client_id = client.client_id.clone();
        self.remove_grants(|id, g| {
            g.client_id == client_id
                && (g.refresh_sha256 == hash || access_grant.as_deref() == Some(id.as_str()))
        })
        .await
        .map_err(|e| self.failed(&e))?;
        Ok(())
    }

    /// Ends every grant of `subject` (the admin API): their access and refresh tokens stop working at once.
    pub async fn revoke_subject(&self, subject: &str) -> Result<usize, String> {
        lock(&self.pending)
            .codes
            .retain(|_, c| c.subject != subject);
        self.remove_grants(|_, g| g.subject == subject).await
    }

    /// The live grants, without their secrets (the admin API).
    pub async fn grants(&self) -> Vec<Value> {
        let kept = self.kept.lock().await;
        kept.grants
            .values()
            .map(|g| {
                json!({
                    "subject": g.subject,
                    "client_id": g.client_id,
                    "client_name": kept.clients.get(&g.client_id).and_then(|c| c.client_name.clone()),
                    "scopes": g.scopes,
                    "created": g.created,
                    "refreshed": g.refreshed,
                })
            })
            .collect()
    }

    /// Checks one of this server's access tokens, for the issuer `issuer` and the resource `resource`.
    pub fn check(&self, token: &str, issuer: &str, resource: &str) -> Result<Principal, Refusal> {
        let invalid = |why: &str| Refusal::Invalid(why.to_owned());
        let header = jsonwebtoken::decode_header(token)
            .map_err(|_| invalid("the token is not one of this tenant's access tokens"))?;
        if header.alg != Algorithm::EdDSA || header.kid.as_deref() != Some(self.kid.as_str()) {
            return Err(invalid(
                "the token is not signed by this tenant's authorization server",
            ));
        }
        let mut validation = Validation::new(Algorithm::EdDSA);
        validation.set_issuer(&[issuer]);
        validation.set_audience(&[resource]);
        validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        validation.leeway = 30;
        let claims = jsonwebtoken::decode::<AccessClaims>(token, &self.verifying, &validation)
            .map_err(|e| {
                use jsonwebtoken::errors::ErrorKind;
                invalid(match e.kind() {
                    ErrorKind::ExpiredSignature => "the token has expired",
                    ErrorKind::InvalidAudience => "the token is for another resource",
                    ErrorKind::InvalidIssuer => "the token is from another issuer",
                    _ => "the token does not verify",
                })
            })?
            .claims;
        let live = self
            .live
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .contains(&claims.gid);
        if !live {
            return Err(invalid("the token's grant was revoked"));
        }
        Ok(Principal {
            issuer: issuer.to_owned(),
            subject: claims.sub,
            client_id: claims.client_id,
            scopes: claims.scope.split_whitespace().map(str::to_owned).collect(),
        })
    }

    /// The client a request names, and that it proved to be, by its method.
    async fn authenticate(
        &self,
        form: &HashMap<String, String>,
        basic: Option<(String, String)>,
    ) -> Result<Client, OAuthError> {
        let (client_id, secret) = match (&basic, form.get("client_id")) {
            (Some((id, secret)), None) => (id.clone(), Some(secret.clone())),
            (Some((id, secret)), Some(named)) if named == id => (id.clone(), Some(secret.clone())),
            (Some(_), Some(_)) => {
                return Err(OAuthError::client(
                    "client_id and the Basic credentials disagree",
                ));
            }
            (None, Some(id)) => (id.clone(), form.get("client_secret").cloned()),
            (None, None) => return Err(OAuthError::client("the client is not named")),
        };
        let client = self.client(&client_id).await.map_err(|e| OAuthError {
            status: StatusCode::UNAUTHORIZED,
            error: "invalid_client",
            ..e
        })?;
        let proved = match (client.auth_method.as_str(), &client.secret_sha256, secret) {
            ("none", _, _) => true,
            ("client_secret_basic" | "client_secret_post", Some(hash), Some(secret)) => {
                // Digests are compared: how long that takes says nothing of the secret.
                digest(&secret) == *hash
            }
            _ => false,
        };
        if !proved {
            tracing::warn!(tenant = %self.tenant, client = %shown(&client_id), "client authentication failed");
            return Err(OAuthError::client("the client's credentials do not match"));
        }
        Ok(client)
    }

    /// A client by its id: registered, or an `https` URL naming its metadata document.
    async fn client(&self, client_id: &str) -> Result<Client, OAuthError> {
        if client_id.starts_with("https://") {
            return self.document(client_id).await;
        }
        self.kept
            .lock()
            .await
            .clients
            .get(client_id)
            .cloned()
            .ok_or_else(|| OAuthError::request("the client is not registered here"))
    }

    /// A client metadata document, fetched under the egress guard (no private or loopback address), checked,
    /// and kept for [`DOCUMENT_TTL`].
    async fn document(&self, url: &str) -> Result<Client, OAuthError> {
        if let Some((at, client)) = lock(&self.pending).documents.get(url)
            && at.elapsed() < DOCUMENT_TTL
        {
            return Ok(client.clone());
        }
        let refused = |why: String| {
            tracing::warn!(tenant = %self.tenant, client = %shown(url), "client metadata document refused: {why}");
            OAuthError::request(format!(
                "the client metadata document at {}: {why}",
                shown(url)
            ))
        };
        let parsed = url::Url::parse(url).map_err(|_| refused("not a URL".into()))?;
        if parsed.path() == "/" || parsed.fragment().is_some() || !parsed.username().is_empty() {
            return Err(refused(
                "a client id URL has a path, and no fragment or credentials".into(),
            ));
        }
        let document = self
            .fetcher
            .json(url, MAX_DOCUMENT)
            .await
            .map_err(refused)?;
        if document.get("client_id").and_then(Value::as_str) != Some(url) {
            return Err(refused("its client_id is not its own URL".into()));
        }
        let redirect_uris: Vec<String> = document
            .get("redirect_uris")
            .and_then(Value::as_array)
            .map(|uris| {
                uris.iter()
                    .filter_map(Value::as_str)
                    .map(str::to_owned)
                    .collect()
            })
            .unwrap_or_default();
        if redirect_uris.is_empty()
            || redirect_uris.len() > MAX_REDIRECTS
            || !redirect_uris.iter().all(|u| redirect_allowed(u))
        {
            return Err(refused(
                "its redirect_uris are missing or not allowed".into(),
            ));
        }
        match document
            .get("token_endpoint_auth_method")
            .and_then(Value::as_str)
        {
            None | Some("none") => {}
            Some(_) => {
                return Err(refused(
                    "only public clients (token_endpoint_auth_method none) are supported".into(),
                ));
            }
        }
        let client = Client {
            client_id: url.to_owned(),
            client_name: document
                .get("client_name")
                .and_then(Value::as_str)
                .map(|n| n.chars().filter(|c| !c.is_control()).take(200).collect()),
            redirect_uris,
            auth_method: "none".into(),
            secret_sha256: None,
            created: now(),
        };
        let mut pending = lock(&self.pending);
        if pending.documents.len() >= 256 {
            pending
                .documents
                .retain(|_, (at, _)| at.elapsed() < DOCUMENT_TTL);
            if pending.documents.len() >= 256 {
                pending.documents.clear();
            }
        }
        pending
            .documents
            .insert(url.to_owned(), (Instant::now(), client.clone()));
        Ok(client)
    }

    async fn remove_grants(
        &self,
        doomed: impl Fn(&String, &Grant) -> bool,
    ) -> Result<usize, String> {
        let mut kept = self.kept.lock().await;
        let before = kept.grants.len();
        kept.grants.retain(|id, g| !doomed(id, g));
        let removed = before - kept.grants.len();
        if removed > 0 {
            self.set_live(&kept);
            self.save(&kept).await?;
        }
        Ok(removed)
    }

    fn set_live(&self, kept: &Kept) {
        *self.live.write().unwrap_or_else(|e| e.into_inner()) =
            kept.grants.keys().cloned().collect();
    }

    async fn save(&self, kept: &Kept) -> Result<(), String> {
        let bytes = serde_json::to_vec(kept).map_err(|e| e.to_string())?;
        let dir = self.dir.clone();
        let name = file_name(&self.tenant);
        tokio::task::spawn_blocking(move || write_durably(&dir, &name, &bytes))
            .await
            .map_err(|e| e.to_string())?
            .map_err(|e| e.to_string())
    }

    fn failed(&self, why: &str) -> OAuthError {
        tracing::error!(tenant = %self.tenant, "the authorization server could not keep a change: {why}");
        OAuthError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "server_error",
            "the authorization server could not keep the change",
        )
    }
}

fn file_name(tenant: &str) -> String {
    format!("{tenant}.json")
}

/// A client's text, shown in a log or an error: printable, and cut short.
fn shown(text: &str) -> String {
    text.chars().filter(|c| !c.is_control()).take(120).collect()
}

/// Whether a redirect URI may be registered: `https`; `http` to a loopback address (a native app's own
/// listener); or an app's private-use scheme. Never a fragment, nor a scheme a browser runs.
fn redirect_allowed(uri: &str) -> bool {
    let Ok(url) = url::Url::parse(uri) else {
        return false;
    };
    if url.fragment().is_some() {
        return false;
    }
    match url.scheme() {
        "https" => url.host_str().is_some(),
        "http" => is_loopback(&url),
        "javascript" | "data" | "file" | "vbscript" | "blob" | "about" | "ftp" | "ws" | "wss" => {
            false
        }
        _ => true,
    }
}

fn is_loopback(url: &url::Url) -> bool {
    match url.host() {
        Some(url::Host::Domain(name)) => name == "localhost",
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    }
}

/// Whether `asked` is the registered redirect URI `registered`: the same string, or both `http` to loopback
/// and the same but for the port (RFC 8252 §7.3: a native app's port is chosen when it runs).
fn redirect_matches(registered: &str, asked: &str) -> bool {
    if registered == asked {
        return true;
    }
    match (url::Url::parse(registered), url::Url::parse(asked)) {
        (Ok(mut r), Ok(mut a)) if r.scheme() == "http" && is_loopback(&r) && is_loopback(&a) => {
            let _ = r.set_port(None);
            let _ = a.set_port(None);
            r == a
        }
        _ => false,
    }
}

/// Whether two resource URLs name the same endpoint (a trailing slash aside).
fn same_resource(a: &str, b: &str) -> bool {
    a.trim_end_matches('/') == b.trim_end_matches('/')
}

/// `uri` with `params` added to its query.
fn redirect_to(uri: &str, params: &[(&str, &str)]) -> String {
    match url::Url::parse(uri) {
        Ok(mut url) => {
            url.query_pairs_mut()
                .extend_pairs(params.iter().filter(|(_, v)| !v.is_empty()));
            url.to_string()
        }
        Err(_) => uri.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redirect_uris_are_https_loopback_or_an_apps_own_scheme() {
        assert!(redirect_allowed("https://app.example/cb"));
        assert!(redirect_allowed("http://127.0.0.1:3000/callback"));
        assert!(redirect_allowed("http://localhost/cb"));
        assert!(redirect_allowed(
            "cursor://anysphere.cursor-retrieval/oauth/callback"
        ));
        assert!(!redirect_allowed("http://evil.example/cb"));
        assert!(!redirect_allowed("https://app.example/cb#frag"));
        assert!(!redirect_allowed("javascript:alert(1)"));
        assert!(!redirect_allowed("not a url"));
    }

    #[test]
    fn a_loopback_redirect_may_change_its_port_and_nothing_else() {
        assert!(redirect_matches(
            "http://127.0.0.1/cb",
            "http://127.0.0.1:5173/cb"
        ));
        assert!(!redirect_matches(
            "http://127.0.0.1/cb",
            "http://127.0.0.1:5173/other"
        ));
        assert!(!redirect_matches(
            "https://app.example/cb",
            "https://app.example:444/cb"
        ));
    }
}
