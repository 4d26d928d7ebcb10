//! The built-in authorization server's endpoints ([`crate::oauth::AuthServer`]), for a tenant with
//! `auth = { issuer = "builtin" }`. Its issuer is `{base}/t/{id}`:
//!
//! - `GET /.well-known/oauth-authorization-server/t/{id}`: RFC 8414 metadata;
//! - `GET /t/{id}/oauth/jwks`: the key its access tokens are signed with;
//! - `POST /t/{id}/oauth/register`: RFC 7591 dynamic registration;
//! - `GET /t/{id}/oauth/authorize`: the consent page, where the tenant's owner types a sign-in code;
//!   `POST` (the page's form): the code for the client, sent to its redirect URI;
//! - `POST /t/{id}/oauth/token`: codes and refresh tokens for tokens;
//! - `POST /t/{id}/oauth/revoke`: RFC 7009 revocation.
//!
//! Errors are OAuth's (RFC 6749 §5.2: `{"error", "error_description"}`), as OAuth clients read them; the
//! consent page shows its own as a page. These endpoints check `Host` but not `Origin`: browser-based clients
//! call them from their own origin, and the consent form is posted from catwalk's.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, RawQuery, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use base64::Engine;
use serde_json::{Value, json};

use super::Tenants;
use super::auth::Urls;
use super::guard::OriginPolicy;
use super::server::Peer;
use crate::oauth::{AuthServer, Authorization, OAuthError, Refused};

/// The endpoints, each behind a check of `Host` (`policy` allows any origin).
pub fn router(tenants: Arc<Tenants>, policy: Arc<OriginPolicy>) -> Router<Arc<Tenants>> {
    Router::new()
        .route(
            "/.well-known/oauth-authorization-server/t/{tenant}",
            get(metadata),
        )
        .route("/t/{tenant}/oauth/jwks", get(jwks))
        .route(
            "/t/{tenant}/oauth/register",
            post(register).options(preflight),
        )
        .route("/t/{tenant}/oauth/authorize", get(authorize).post(approve))
        .route("/t/{tenant}/oauth/token", post(token).options(preflight))
        .route("/t/{tenant}/oauth/revoke", post(revoke).options(preflight))
        .route_layer(axum::middleware::from_fn_with_state(
            (tenants, policy),
            host_checked,
        ))
}

/// Checks `Host` (`policy` allows any origin), as every endpoint does before anything else.
async fn host_checked(
    State((_, policy)): State<(Arc<Tenants>, Arc<OriginPolicy>)>,
    request: Request,
    next: Next,
) -> Response {
    match policy.check(request.headers()) {
        Ok(()) => next.run(request).await,
        Err(refused) => refused.into_response(),
    }
}

/// Tenant `id`'s built-in server and the scopes it grants, or 404.
fn server(tenants: &Tenants, id: &str) -> Result<(Arc<AuthServer>, Vec<String>), OAuthError> {
    tenants
        .get(id)
        .filter(|_| tenants.multi)
        .and_then(|app| {
            let oauth = app.access.oauth.as_ref()?;
            Some((oauth.builtin()?.clone(), oauth.scopes().to_vec()))
        })
        .ok_or_else(|| {
            OAuthError::new(
                StatusCode::NOT_FOUND,
                "invalid_request",
                "no tenant here has catwalk's authorization server",
            )
        })
}

async fn metadata(
    State(tenants): State<Arc<Tenants>>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Response {
    match server(&tenants, &id) {
        Ok((server, scopes)) => {
            let urls = Urls::new(&headers, &id);
            public(axum::Json(server.metadata(&urls.issuer, &scopes)).into_response())
        }
        Err(error) => oauth_error(error),
    }
}

async fn jwks(State(tenants): State<Arc<Tenants>>, Path(id): Path<String>) -> Response {
    match server(&tenants, &id) {
        Ok((server, _)) => public(axum::Json(server.jwks()).into_response()),
        Err(error) => oauth_error(error),
    }
}

async fn register(
    State(tenants): State<Arc<Tenants>>,
    Path(id): Path<String>,
    peer: Option<axum::Extension<Peer>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let (server, _) = match server(&tenants, &id) {
        Ok(found) => found,
        Err(error) => return oauth_error(error),
    };
    let Ok(body) = serde_json::from_slice::<Value>(&body) else {
        return oauth_error(OAuthError::new(
            StatusCode::BAD_REQUEST,
            "invalid_client_metadata",
            "the registration is a JSON object",
        ));
    };
    let peer = client_address(&tenants, peer, &headers);
    match server.register(peer, &body).await {
        Ok(client) => {
            let mut response = (StatusCode::CREATED, axum::Json(client)).into_response();
            no_store(&mut response);
            public(response)
        }
        Err(error) => oauth_error(error),
    }
}

/// The address a request came from: the connection's peer, or behind Fly's proxy (`--machine-id`), the
/// client's address as the proxy says it.
fn client_address(
    tenants: &Tenants,
    peer: Option<axum::Extension<Peer>>,
    headers: &HeaderMap,
) -> IpAddr {
    let forwarded = tenants
        .machine
        .as_ref()
        .and_then(|_| headers.get("fly-client-ip"))
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<IpAddr>().ok());
    forwarded
        .or(peer.map(|p| p.0.0))
        .unwrap_or(IpAddr::V6(std::net::Ipv6Addr::UNSPECIFIED))
}

/// The consent page, for an authorization request that passed its checks.
async fn authorize(
    State(tenants): State<Arc<Tenants>>,
    Path(id): Path<String>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    let (server, _) = match server(&tenants, &id) {
        Ok(found) => found,
        Err(error) => return oauth_error(error),
    };
    let params = match pairs(query.unwrap_or_default().as_bytes()) {
        Ok(params) => params,
        Err(error) => return page_error(&error),
    };
    let urls = Urls::new(&headers, &id);
    match server.authorization(&params, &urls.resource).await {
        Ok(request) => consent(&id, &request, &params, None, StatusCode::OK),
        Err(refused) => refusal(refused),
    }
}

/// The consent form, posted: with a good sign-in code, the client gets its code.
async fn approve(
    State(tenants): State<Arc<Tenants>>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let (server, scopes) = match server(&tenants, &id) {
        Ok(found) => found,
        Err(error) => return oauth_error(error),
    };
    let params = match pairs(&body) {
        Ok(params) => params,
        Err(error) => return page_error(&error),
    };
    let urls = Urls::new(&headers, &id);
    let request = match server.authorization(&params, &urls.resource).await {
        Ok(request) => request,
        Err(refused) => return refusal(refused),
    };
    let code = params.get("sign_in_code").map(String::as_str).unwrap_or("");
    match server.approve(&request, code, &urls.issuer, &scopes) {
        Ok(location) => redirect(&location),
        Err(error) => consent(
            &id,
            &request,
            &params,
            Some(&error.description),
            error.status,
        ),
    }
}

async fn token(
    State(tenants): State<Arc<Tenants>>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let (server, form, basic) = match form_call(&tenants, &id, &headers, &body) {
        Ok(call) => call,
        Err(error) => return oauth_error(error),
    };
    let urls = Urls::new(&headers, &id);
    match server
        .token(&form, basic, &urls.issuer, &urls.resource)
        .await
    {
        Ok(tokens) => {
            let mut response = axum::Json(tokens).into_response();
            no_store(&mut response);
            public(response)
        }
        Err(error) => oauth_error(error),
    }
}

async fn revoke(
    State(tenants): State<Arc<Tenants>>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let (server, form, basic) = match form_call(&tenants, &id, &headers, &body) {
        Ok(call) => call,
        Err(error) => return oauth_error(error),
    };
    match server.revoke(&form, basic).await {
        Ok(()) => public(StatusCode::OK.into_response()),
        Err(error) => oauth_error(error),
    }
}

/// CORS preflight for browser-based clients.
async fn preflight() -> Response {
    let mut response = public(StatusCode::NO_CONTENT.into_response());
    let headers = response.headers_mut();
    headers.insert(
        header::ACCESS_CONTROL_ALLOW_METHODS,
        HeaderValue::from_static("POST, OPTIONS"),
    );
    headers.insert(
        header::ACCESS_CONTROL_ALLOW_HEADERS,
        HeaderValue::from_static("authorization, content-type, mcp-protocol-version"),
    );
    response
}

/// A form call's server, its form, and the client's HTTP Basic credentials, if any.
type FormCall = (
    Arc<AuthServer>,
    HashMap<String, String>,
    Option<(String, String)>,
);

/// A call of the token or revocation endpoint, read: tenant `id`'s server, the form and the credentials.
fn form_call(
    tenants: &Tenants,
    id: &str,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<FormCall, OAuthError> {
    let (server, _) = server(tenants, id)?;
    let (form, basic) = form_request(headers, body)?;
    Ok((server, form, basic))
}

/// A form body (`application/x-www-form-urlencoded`) and the client's HTTP Basic credentials, if any.
#[allow(clippy::type_complexity)]
fn form_request(
    headers: &HeaderMap,
    body: &[u8],
) -> Result<(HashMap<String, String>, Option<(String, String)>), OAuthError> {
    let form_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|v| {
            v.trim()
                .eq_ignore_ascii_case("application/x-www-form-urlencoded")
        });
    if !form_type {
        return Err(OAuthError::request(
            "the body must be application/x-www-form-urlencoded",
        ));
    }
    let form = pairs(body)?;
    let basic = match headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
    {
        None => None,
        Some(value) => Some(basic_credentials(value).ok_or_else(|| {
            OAuthError::client("the Authorization header is not HTTP Basic credentials")
        })?),
    };
    Ok((form, basic))
}

/// `Basic base64(urlencoded(id):urlencoded(secret))`, as RFC 6749 §2.3.1 writes it.
fn basic_credentials(value: &str) -> Option<(String, String)> {
    let (scheme, encoded) = value.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded.trim())
        .ok()?;
    let text = String::from_utf8(decoded).ok()?;
    let (id, secret) = text.split_once(':')?;
    let unescape = |s: &str| {
        url::form_urlencoded::parse(format!("x={s}").as_bytes())
            .next()
            .map(|(_, v)| v.into_owned())
    };
    Some((unescape(id)?, unescape(secret)?))
}

/// Form or query parameters; a parameter given twice is refused (RFC 6749 §3.1).
fn pairs(text: &[u8]) -> Result<HashMap<String, String>, OAuthError> {
    let mut params = HashMap::new();
    for (key, value) in url::form_urlencoded::parse(text) {
        if params
            .insert(key.clone().into_owned(), value.into_owned())
            .is_some()
        {
            return Err(OAuthError::request(format!("{key} is given twice")));
        }
    }
    Ok(params)
}

fn oauth_error(error: OAuthError) -> Response {
    let mut response = (
        error.status,
        axum::Json(json!({"error": error.error, "error_description": error.description})),
    )
        .into_response();
    no_store(&mut response);
    public(response)
}

fn refusal(refused: Refused) -> Response {
    match refused {
        Refused::Page(error) => page_error(&error),
        Refused::Redirect(location) => redirect(&location),
    }
}

fn redirect(location: &str) -> Response {
    let mut response = StatusCode::SEE_OTHER.into_response();
    if let Ok(value) = HeaderValue::from_str(location) {
        response.headers_mut().insert(header::LOCATION, value);
    }
    no_store(&mut response);
    response
}

/// What the consent page says when the request cannot go on, with the OAuth error as the status says it.
fn page_error(error: &OAuthError) -> Response {
    let body = format!(
        "<!doctype html><meta charset=utf-8><title>Sign-in refused</title>{STYLE}<main><h1>This sign-in cannot go on</h1><p>{}</p><p><code>{}</code></p></main>",
        escape(&error.description),
        error.error
    );
    framed((error.status, Html(body)).into_response())
}

/// The consent page: who asks, where they will be sent, and a field for the sign-in code.
fn consent(
    tenant: &str,
    request: &Authorization,
    params: &HashMap<String, String>,
    problem: Option<&str>,
    status: StatusCode,
) -> Response {
    let carried = [
        "response_type",
        "client_id",
        "redirect_uri",
        "state",
        "code_challenge",
        "code_challenge_method",
        "scope",
        "resource",
    ];
    let hidden: String = carried
        .iter()
        .filter_map(|name| {
            params.get(*name).map(|value| {
                format!(
                    "<input type=hidden name=\"{name}\" value=\"{}\">",
                    escape(value)
                )
            })
        })
        .collect();
    let client = request.client_name.as_deref().unwrap_or(&request.client_id);
    let target = url::Url::parse(&request.redirect_uri)
        .ok()
        .and_then(|u| u.host_str().map(str::to_owned))
        .unwrap_or_else(|| request.redirect_uri.clone());
    let problem = problem
        .map(|p| format!("<p class=problem>{}</p>", escape(p)))
        .unwrap_or_default();
    let body = format!(
        "<!doctype html><meta charset=utf-8><title>Sign in to {tenant}</title>{STYLE}<main>\
         <h1>Sign in to {tenant}</h1>\
         <p><b>{client}</b> asks to use this MCP server on your behalf. After you sign in, you are sent back to \
         <b>{target}</b>.</p>{problem}\
         <form method=post>{hidden}<label>Sign-in code <input name=sign_in_code autocomplete=off required autofocus></label>\
         <button>Allow</button></form>\
         <p class=note>Your sign-in code comes from whoever runs this server for you. It works once.</p></main>",
        tenant = escape(tenant),
        client = escape(client),
        target = escape(&target),
    );
    framed((status, Html(body)).into_response())
}

const STYLE: &str = "<style>body{font:16px system-ui,sans-serif;margin:0;background:#f6f6f4;color:#222}\
main{max-width:32rem;margin:4rem auto;padding:2rem;background:#fff;border-radius:8px}\
input{display:block;width:100%;margin:.5rem 0 1rem;padding:.5rem;font:inherit}\
button{padding:.5rem 1.5rem;font:inherit}.problem{color:#a00}.note{color:#666;font-size:.9em}</style>";

/// A page no other site may frame or cache.
fn framed(mut response: Response) -> Response {
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'",
        ),
    );
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    no_store(&mut response);
    response
}

fn no_store(response: &mut Response) {
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
}

/// An answer any origin may read (metadata, keys, registration and tokens are for browser-based clients too).
fn public(mut response: Response) -> Response {
    response.headers_mut().insert(
        header::ACCESS_CONTROL_ALLOW_ORIGIN,
        HeaderValue::from_static("*"),
    );
    response
}

fn escape(text: &str) -> String {
    text.chars()
        .map(|c| match c {
            '&' => "&amp;".to_owned(),
            '<' => "&lt;".to_owned(),
            '>' => "&gt;".to_owned(),
            '"' => "&quot;".to_owned(),
            '\'' => "&#39;".to_owned(),
            c => c.to_string(),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn basic_credentials_are_url_decoded_and_parameters_given_twice_are_refused() {
        let encoded = base64::engine::general_purpose::STANDARD.encode("my%3Aid:s%20e");
        assert_eq!(
            basic_credentials(&format!("Basic {encoded}")),
            Some(("my:id".into(), "s e".into()))
        );
        assert!(basic_credentials("Bearer x").is_none());
        assert!(pairs(b"a=1&a=2").is_err());
        assert_eq!(pairs(b"a=1&b=x%20y").unwrap()["b"], "x y");
    }

    #[test]
    fn the_consent_page_escapes_what_clients_send() {
        assert_eq!(escape("<script>\"x\""), "&lt;script&gt;&quot;x&quot;");
    }
}
