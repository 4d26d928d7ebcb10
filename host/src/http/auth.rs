//! Which tenant a request is for, and whether it may use it: the tenant comes from the route (`/t/{id}/...`, or the
//! single tenant on `/mcp`), the token from `Authorization: Bearer` (checked against the tenant's SHA-256 hashes in
//! constant time). A 401 points at the tenant's protected-resource metadata (RFC 9728). Tokens in the query string
//! are refused: URLs end up in logs.

use std::collections::HashMap;
use std::sync::Arc;

use std::time::Instant;

use axum::extract::{Path, Query, Request, State};
use axum::http::{HeaderMap, Uri, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use serde_json::json;

use super::error::{Challenge, HttpError};
use super::guard::OriginPolicy;
use super::server::Peer;
use super::{App, Scope, Tenants};
use crate::audit::Caller;
use crate::oauth::Refusal;
use crate::tenants::rates::Subject;
use crate::tenants::token_matches;

/// Checks Origin and Host ([`OriginPolicy`]), resolves the request's [`Scope`] before its handler runs, and
/// counts the request in the tenant's metrics.
pub async fn scope(
    State((tenants, policy)): State<(Arc<Tenants>, Arc<OriginPolicy>)>,
    request: Request,
    next: Next,
) -> Response {
    if let Err(refused) = policy.check(request.headers()) {
        return refused.into_response();
    }
    let started = Instant::now();
    let (app, outcome) = authorize(&tenants, request.uri(), request.headers()).await;
    let traced = app.as_ref().and_then(|app| {
        crate::traces::request(request.headers(), request.method().as_str(), &app.tenant)
    });
    let response = match outcome {
        Ok(owner) => {
            let mut request = request;
            let app = app.clone().expect("an authorized request has a tenant");
            let subject = match (&owner, request.extensions().get::<Peer>()) {
                (Some(owner), _) => Subject::Owner(owner.digest),
                (None, Some(peer)) => Subject::Peer(peer.0),
                (None, None) => Subject::Peer(std::net::Ipv4Addr::UNSPECIFIED.into()),
            };
            let (token, caller) = match owner {
                Some(owner) => (Some(owner.digest), Some(owner.subject)),
                None => (None, None),
            };
            if let Err(limited) = app.rates.admit(subject) {
                app.metrics.refused(limited.which.label());
                let response = HttpError::RateLimited(limited).into_response();
                if let Some(audit) = &app.audit {
                    let caller = Caller {
                        subject: caller,
                        client: None,
                    };
                    audit.denied(&caller, limited.which.label(), response.status().as_u16());
                }
                app.metrics
                    .request(response.status().as_u16(), started.elapsed());
                if let Some(cx) = &traced {
                    crate::traces::finish(cx, response.status().as_u16());
                }
                return response;
            }
            // Held until the response starts (a stream's head), not for the stream's life.
            let waiting = traced
                .as_ref()
                .map(|cx| crate::traces::child_of(cx, "wait for turn"));
            let _turn = app.turn().await;
            drop(waiting);
            let backend = app.launcher.kind();
            request.extensions_mut().insert(Scope {
                app,
                token,
                subject: caller,
            });
            match &traced {
                Some(cx) => {
                    use opentelemetry::context::FutureExt;
                    crate::traces::attribute_in(cx, "catwalk.backend", backend.into());
                    next.run(request).with_context(cx.clone()).await
                }
                None => next.run(request).await,
            }
        }
        Err(error) => {
            let response = error.into_response();
            if let Some(audit) = app.as_ref().and_then(|app| app.audit.as_ref()) {
                audit.denied(&Caller::default(), "auth", response.status().as_u16());
            }
            response
        }
    };
    let status = response.status().as_u16();
    if let Some(cx) = &traced {
        crate::traces::finish(cx, status);
    }
    match app {
        Some(app) => app.metrics.request(status, started.elapsed()),
        None => tenants.host.metrics.unscoped_request(status),
    }
    response
}

/// A request's owner, as its session is bound to (`None`: its tenant needs no token), or why it may not go
/// on.
type Authorized = Result<Option<Owner>, HttpError>;

/// Who presented a token: what sessions are bound to (a static token's SHA-256, or an OAuth token's issuer,
/// subject and client, hashed: [`crate::oauth::Principal::owner`]), and how the audit trail names them.
struct Owner {
    digest: [u8; 32],
    subject: Arc<str>,
}

/// The request's tenant (if it names one that exists) and its owner, or why it may not go on.
async fn authorize(
    tenants: &Tenants,
    uri: &Uri,
    headers: &HeaderMap,
) -> (Option<Arc<App>>, Authorized) {
    let token_in_query = uri.query().is_some_and(|_| {
        Query::<HashMap<String, String>>::try_from_uri(uri)
            .is_ok_and(|query| query.keys().any(|k| k.eq_ignore_ascii_case("access_token")))
    });
    if token_in_query {
        return (
            None,
            Err(HttpError::BadRequest(
                "tokens are not accepted in the query string; send Authorization: Bearer <token>"
                    .into(),
            )),
        );
    }
    let id = match tenants.multi {
        true => uri
            .path()
            .strip_prefix("/t/")
            .and_then(|rest| rest.split('/').next())
            .unwrap_or_default(),
        false => "",
    };
    let Some(app) = tenants.get(id) else {
        return (None, Err(HttpError::UnknownTenant));
    };
    if app.access.open() {
        return (Some(app), Ok(None));
    }
    let presented = bearer(headers).unwrap_or_default();
    if let Some(digest) = token_matches(presented, &app.access.tokens) {
        let prefix: String = digest[..8].iter().map(|b| format!("{b:02x}")).collect();
        let subject = format!("token:{prefix}").into();
        return (Some(app), Ok(Some(Owner { digest, subject })));
    }
    // Only past a static token: its requests need none of these URLs.
    let urls = Urls::new(headers, id);
    let outcome = match (&app.access.oauth, presented) {
        (Some(oauth), token) if !token.is_empty() => {
            match oauth.check(token, &urls.resource, &urls.issuer).await {
                Ok(principal) => Ok(Some(Owner {
                    digest: principal.owner(),
                    subject: format!("oauth:{}", principal.subject).into(),
                })),
                Err(refusal) => {
                    let (error, description, scope) = match refusal {
                        Refusal::Invalid(why) => ("invalid_token", why, None),
                        Refusal::Scope(scope) => (
                            "insufficient_scope",
                            format!("the token lacks a scope this tenant needs: {scope}"),
                            Some(scope),
                        ),
                    };
                    tracing::info!(tenant = %app.tenant, error, "token refused: {description}");
                    Err(HttpError::Token(Challenge {
                        resource_metadata: urls.resource_metadata,
                        error,
                        description,
                        scope,
                    }))
                }
            }
        }
        _ => Err(HttpError::Unauthorized {
            resource_metadata: urls.resource_metadata,
        }),
    };
    (Some(app), outcome)
}

/// A tenant's URLs as its clients see them, from the request's `Host` (and `X-Forwarded-Proto`).
#[derive(Debug)]
pub struct Urls {
    /// Its MCP endpoint: the resource its tokens are bound to.
    pub resource: String,
    pub resource_metadata: String,
    /// Its built-in authorization server's issuer.
    pub issuer: String,
}

impl Urls {
    pub fn new(headers: &HeaderMap, id: &str) -> Self {
        let base = base_url(headers);
        let prefix = match id {
            "" => String::new(),
            id => format!("/t/{id}"),
        };
        Self {
            resource: format!("{base}{prefix}/mcp"),
            resource_metadata: format!("{base}/.well-known/oauth-protected-resource{prefix}/mcp"),
            issuer: format!("{base}{prefix}"),
        }
    }
}

/// `/metrics`: Prometheus metrics. Tenants' ids are in it, so on a machine of many tenants it needs the admin
/// token (and is not served without one); a single tenant's machine serves it to anyone unless an admin token
/// is set.
pub async fn metrics(
    State(tenants): State<Arc<Tenants>>,
    Extension(admin): Extension<Option<[u8; 32]>>,
    headers: HeaderMap,
) -> Result<Response, HttpError> {
    match admin {
        None if tenants.multi => {
            return Err(HttpError::NotFound(
                "metrics are served on a machine of many tenants only with --admin-token-sha256",
            ));
        }
        None => {}
        Some(token) if token_matches(bearer(&headers).unwrap_or_default(), &[token]).is_none() => {
            return Err(HttpError::Unauthorized {
                resource_metadata: String::new(),
            });
        }
        Some(_) => {}
    }
    let sessions = tenants.list().into_iter().map(|app| {
        let open = tenants.host.registry.count_tenant(&app.tenant);
        (app.tenant.to_string(), open)
    });
    let text = tenants.host.metrics.render(sessions);
    Ok((
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        text,
    )
        .into_response())
}

/// RFC 9728 protected-resource metadata for a tenant's MCP endpoint.
pub async fn metadata(
    State(tenants): State<Arc<Tenants>>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Result<Response, HttpError> {
    let Some(app) = tenants.get(&id).filter(|_| tenants.multi) else {
        return Err(HttpError::UnknownTenant);
    };
    let urls = Urls::new(&headers, &id);
    let mut metadata = json!({
        "resource": urls.resource,
        "bearer_methods_supported": ["header"],
        "authorization_servers": [],
    });
    if let Some(oauth) = &app.access.oauth {
        metadata["authorization_servers"] = json!([oauth.authorization_server(&urls.issuer)]);
        if !oauth.scopes().is_empty() {
            metadata["scopes_supported"] = json!(oauth.scopes());
        }
    }
    Ok(([(header::ACCESS_CONTROL_ALLOW_ORIGIN, "*")], Json(metadata)).into_response())
}

/// The token of an `Authorization: Bearer` header.
pub fn bearer(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim())
        .filter(|t| !t.is_empty())
}

/// How clients reach this machine: `https` behind a TLS-terminating proxy that says so, the `Host` they used.
pub fn base_url(headers: &HeaderMap) -> String {
    let https = headers
        .get("x-forwarded-proto")
        .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"https"));
    let host = headers
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .filter(|h| h.bytes().all(|b| b.is_ascii_graphic()))
        .unwrap_or("localhost");
    format!("{}://{host}", if https { "https" } else { "http" })
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use axum::Router;
    use axum::body::Body;
    use axum::routing::post;
    use tokio::sync::{Notify, mpsc};
    use tokio_util::sync::CancellationToken;
    use tower::ServiceExt;

    use super::*;
    use crate::backend::Launcher;
    use crate::backend::npm::CommandSource;
    use crate::backend::process::ProcessSpec;
    use crate::backend::wasi::GuestPolicy;
    use crate::session::{Limits, Registry};
    use crate::tenants::Host;

    /// A handler that says it started, then holds its request until released.
    #[derive(Clone)]
    struct Gate {
        entered: mpsc::UnboundedSender<()>,
        release: Arc<Notify>,
    }

    async fn held(Extension(gate): Extension<Gate>) -> &'static str {
        let _ = gate.entered.send(());
        gate.release.notified().await;
        "done"
    }

    #[tokio::test]
    async fn a_tenant_past_its_turns_waits_until_one_is_free() {
        let spec = ProcessSpec {
            program: "true".into(),
            args: Vec::new(),
            env: Vec::new(),
            cwd: None,
            max_message_bytes: 1 << 20,
            stop_grace: Duration::from_secs(1),
            confine: None,
        };
        let host = Host::new(
            std::env::temp_dir().join("catwalk-turns-test"),
            Registry::new(8, None),
            CancellationToken::new(),
            Limits::default(),
            1 << 20,
            spec.clone(),
            "/usr/bin".into(),
            GuestPolicy::new(),
            64 << 20,
        );
        let tenants = Tenants::new(host, false);
        let launcher = Launcher::PerSession(Arc::new(CommandSource::command(spec)));
        let app = tenants.host.app(
            "",
            launcher,
            Default::default(),
            crate::tenants::Terms {
                max_inflight: Some(1),
                ..Default::default()
            },
        );
        tenants.insert(app).await;
        let (entered, mut started) = mpsc::unbounded_channel();
        let gate = Gate {
            entered,
            release: Arc::new(Notify::new()),
        };
        let router = Router::new()
            .route("/mcp", post(held))
            .route_layer(axum::middleware::from_fn_with_state(
                (tenants.clone(), Arc::new(OriginPolicy::default())),
                scope,
            ))
            .layer(Extension(gate.clone()))
            .with_state(tenants.clone());
        let request = || {
            let router = router.clone();
            tokio::spawn(async move {
                let request = Request::post("/mcp").body(Body::empty()).unwrap();
                router.oneshot(request).await.unwrap().status()
            })
        };
        let waiting = || {
            let text = tenants.host.metrics.render([]);
            text.lines()
                .find_map(|l| l.strip_prefix("catwalk_requests_waiting{tenant=\"\"} "))
                .map(str::to_owned)
        };

        let first = request();
        started.recv().await.unwrap();
        let second = request();
        // The second request waits for the turn the first holds, and is counted as waiting.
        tokio::time::timeout(Duration::from_secs(10), async {
            while waiting().as_deref() != Some("1") {
                tokio::task::yield_now().await;
            }
        })
        .await
        .expect("the second request waits for a turn");
        assert!(
            started.try_recv().is_err(),
            "the second request got no turn"
        );
        gate.release.notify_one();
        assert_eq!(first.await.unwrap(), 200);
        started.recv().await.unwrap();
        assert_eq!(waiting().as_deref(), Some("0"));
        gate.release.notify_one();
        assert_eq!(second.await.unwrap(), 200);
    }
}
