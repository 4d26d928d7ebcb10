//! The admin API, for the control plane that places tenants on machines: list, add or replace, and remove
//! tenants at runtime, and say where the fleet's tenants live. Off unless `--admin-token-sha256` is set; every
//! call needs that token. Every change is kept in the state dir before it is answered
//! ([`crate::tenants::store`]), so the machine serves the same tenants after a restart.
//!
//! - `GET /admin/tenants`: every tenant, its server kind, version, open sessions and network grants (never its
//!   env, tokens or secrets' values). `GET /admin/tenants/{id}`: one, with its version in `ETag`.
//! - `PUT /admin/tenants/{id}`: a tenant as JSON, with the tenants file's schema; 201 added, 200 replaced (a
//!   replaced tenant's sessions end). The same definition again changes nothing (200, same `ETag`): its
//!   sessions go on.
//! - `DELETE /admin/tenants/{id}`: 204; its sessions end and its instances stop.
//! - `GET`/`PUT /admin/placement`: `{"acme": "148e21ea", ...}`, tenant id → machine id, for the whole fleet.
//! - `GET /admin/status`: the machine at a glance, as HTML or JSON ([`super::status`]).
//!
//! `PUT` and `DELETE` take `If-Match` (the `ETag` last seen, or `*`) and `PUT` takes `If-None-Match: *`; a
//! version that is not the current one gets 412. The tenants file's tenants are the operator's: changing one
//! here gets 409.

use std::collections::HashMap;
use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, Query, Request, State};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Extension, Json};
use serde_json::json;

use std::collections::BTreeMap;

use axum::http::{HeaderMap, HeaderValue, header};

use super::Tenants;
use super::auth::bearer;
use super::error::HttpError;
use crate::backend::Launcher;
use crate::tenants::changes::{ChangeError, Changed, Condition};
use crate::tenants::file::TenantDef;
use crate::tenants::store::StoreError;
use crate::tenants::token_matches;

#[derive(Clone, Copy)]
struct AdminToken([u8; 32]);

pub fn router(token: [u8; 32]) -> Router<Arc<Tenants>> {
    Router::new()
        .route("/admin/tenants", get(list))
        .route("/admin/tenants/{id}", get(show).put(put).delete(delete))
        .route("/admin/tenants/{id}/sign-in", post(sign_in))
        .route("/admin/tenants/{id}/grants", get(grants).delete(revoke))
        .route("/admin/placement", get(placement).put(place))
        .route("/admin/status", get(super::status::status))
        .route_layer(axum::middleware::from_fn(authorize))
        .layer(Extension(AdminToken(token)))
}

async fn authorize(
    Extension(AdminToken(token)): Extension<AdminToken>,
    request: Request,
    next: Next,
) -> Result<Response, HttpError> {
    let presented = bearer(request.headers()).unwrap_or_default();
    if token_matches(presented, &[token]).is_none() {
        return Err(HttpError::Unauthorized {
            resource_metadata: String::new(),
        });
    }
    Ok(next.run(request).await)
}

async fn list(State(tenants): State<Arc<Tenants>>) -> Response {
    let mut list = Vec::new();
    for app in tenants.list() {
        list.push(describe(&tenants, &app).await);
    }
    Json(json!({ "tenants": list })).into_response()
}

/// What the admin API tells of a tenant: never its env, tokens or secrets' values.
async fn describe(tenants: &Tenants, app: &super::App) -> serde_json::Value {
    let version = tenants.stored(&app.tenant).await.map(|s| s.version);
    let server = match &app.launcher {
        Launcher::PerSession(_) => "process per session",
        Launcher::Shared(_) => "shared process",
        Launcher::Wasi(_) => "wasi",
    };
    json!({
        "id": &*app.tenant,
        "server": server,
        "source": if tenants.from_file(&app.tenant) { "file" } else { "admin" },
        "version": version,
        "placed_elsewhere": tenants.placed_elsewhere(&app.tenant),
        "sessions": tenants.host.registry.count_tenant(&app.tenant),
        "max_sessions": app.places.as_ref().map(|(_, max)| max),
        "protected": !app.access.open(),
        "auth": app.access.oauth.as_ref().map(|oauth| match oauth.builtin() {
            Some(_) => "builtin".to_owned(),
            None => oauth.authorization_server(""),
        }),
        "grants": app.launcher.grants(),
        "package": app.launcher.package(),
    })
}

/// The tenant's built-in authorization server, or why there is none.
fn auth_server(tenants: &Tenants, id: &str) -> Result<Arc<crate::oauth::AuthServer>, HttpError> {
    let app = tenants.get(id).ok_or(HttpError::UnknownTenant)?;
    app.access
        .oauth
        .as_ref()
        .and_then(|oauth| oauth.builtin().cloned())
        .ok_or(HttpError::NotFound(
            "this tenant does not use catwalk's authorization server (auth = { issuer = \"builtin\" })",
        ))
}

/// `POST /admin/tenants/{id}/sign-in` `{"subject": "...", "ttl_secs": 600}`: a one-time sign-in code for the
/// tenant's consent page, for the control plane to hand to the person it signed in.
async fn sign_in(
    State(tenants): State<Arc<Tenants>>,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Response, HttpError> {
    let server = auth_server(&tenants, &id)?;
    let body: serde_json::Value = serde_json::from_slice(&body)
        .map_err(|_| HttpError::BadRequest("the body is {\"subject\": \"...\"}".into()))?;
    let subject = body["subject"]
        .as_str()
        .filter(|s| (1..=256).contains(&s.len()) && !s.chars().any(char::is_control))
        .ok_or_else(|| {
            HttpError::BadRequest(
                "subject: 1 to 256 characters, none of them control characters".into(),
            )
        })?;
    let ttl = match &body["ttl_secs"] {
        serde_json::Value::Null => 600,
        value => value
            .as_u64()
            .filter(|t| (1..=86_400).contains(t))
            .ok_or_else(|| HttpError::BadRequest("ttl_secs: 1 to 86400".into()))?,
    };
    let code = server.sign_in(subject, std::time::Duration::from_secs(ttl));
    tracing::info!(tenant = %id, "a sign-in code was minted");
    Ok((StatusCode::CREATED, Json(code)).into_response())
}

/// `GET /admin/tenants/{id}/grants`: who signed in, with which client (no tokens).
async fn grants(
    State(tenants): State<Arc<Tenants>>,
    Path(id): Path<String>,
) -> Result<Response, HttpError> {
    let server = auth_server(&tenants, &id)?;
    Ok(Json(json!({ "grants": server.grants().await })).into_response())
}

/// `DELETE /admin/tenants/{id}/grants?subject=...`: every grant of that subject ends, and its tokens stop
/// working at once.
async fn revoke(
    State(tenants): State<Arc<Tenants>>,
    Path(id): Path<String>,
    Query(query): Query<HashMap<String, String>>,
) -> Result<Response, HttpError> {
    let server = auth_server(&tenants, &id)?;
    let subject = query
        .get("subject")
        .filter(|s| !s.is_empty())
        .ok_or_else(|| HttpError::BadRequest("name the subject: ?subject=...".into()))?;
    let revoked = server.revoke_subject(subject).await.map_err(|e| {
        tracing::error!(tenant = %id, "revoking grants failed: {e}");
        HttpError::Unavailable("the grants could not be revoked; try again".into())
    })?;
    tracing::info!(tenant = %id, revoked, "a subject's grants were revoked");
    Ok(Json(json!({ "revoked": revoked })).into_response())
}

async fn show(
    State(tenants): State<Arc<Tenants>>,
    Path(id): Path<String>,
) -> Result<Response, HttpError> {
    let app = tenants.get(&id).ok_or(HttpError::UnknownTenant)?;
    let described = describe(&tenants, &app).await;
    let mut response = Json(&described).into_response();
    if let Some(version) = described["version"].as_u64() {
        tag(&mut response, version);
    }
    Ok(response)
}

async fn put(
    State(tenants): State<Arc<Tenants>>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, HttpError> {
    // The body's own words are never echoed back: it carries the tenant's secrets.
    let def: TenantDef = serde_json::from_slice(&body).map_err(|e| {
        HttpError::BadRequest(format!(
            "not a tenant (line {}, column {}: {:?})",
            e.line(),
            e.column(),
            e.classify()
        ))
    })?;
    if def.id != id {
        return Err(HttpError::BadRequest(
            "the body's id differs from the URL's".into(),
        ));
    }
    let value: serde_json::Value =
        serde_json::from_slice(&body).map_err(|_| HttpError::BadRequest("not a tenant".into()))?;
    let changed = tenants
        .put(&id, value, def, &condition(&headers)?)
        .await
        .map_err(refused)?;
    if changed.changed {
        tracing::info!(tenant = %id, version = changed.version, created = changed.created, "tenant configured through the admin API");
    }
    Ok(answer(
        json!({ "id": id, "replaced": !changed.created }),
        changed,
    ))
}

async fn delete(
    State(tenants): State<Arc<Tenants>>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Result<Response, HttpError> {
    tenants
        .delete(&id, &condition(&headers)?)
        .await
        .map_err(refused)?;
    tracing::info!(tenant = %id, "tenant removed through the admin API");
    Ok(StatusCode::NO_CONTENT.into_response())
}

async fn placement(State(tenants): State<Arc<Tenants>>) -> Response {
    let placement = tenants.placement();
    let mut response = Json(&placement.tenants).into_response();
    if placement.version > 0 {
        tag(&mut response, placement.version);
    }
    response
}

async fn place(
    State(tenants): State<Arc<Tenants>>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, HttpError> {
    let map: BTreeMap<String, String> = serde_json::from_slice(&body).map_err(|e| {
        HttpError::BadRequest(format!(
            "not a placement, an object of tenant ids to machine ids (line {}, column {}: {:?})",
            e.line(),
            e.column(),
            e.classify()
        ))
    })?;
    let tenants_placed = map.len();
    let changed = tenants
        .place(map, &condition(&headers)?)
        .await
        .map_err(refused)?;
    if changed.changed {
        tracing::info!(
            version = changed.version,
            tenants = tenants_placed,
            "placement set through the admin API"
        );
    }
    Ok(answer(json!({ "tenants": tenants_placed }), changed))
}

/// The answer to a change: 201 when it added, else 200, with the version in `ETag`.
fn answer(mut body: serde_json::Value, changed: Changed) -> Response {
    body["version"] = json!(changed.version);
    body["changed"] = json!(changed.changed);
    let status = if changed.created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    let mut response = (status, Json(body)).into_response();
    tag(&mut response, changed.version);
    response
}

fn tag(response: &mut Response, version: u64) {
    if let Ok(value) = HeaderValue::from_str(&format!("\"{version}\"")) {
        response.headers_mut().insert(header::ETAG, value);
    }
}

/// The version a change is conditional on: `If-Match` (a list of entity tags, or `*`) or `If-None-Match: *`.
fn condition(headers: &HeaderMap) -> Result<Condition, HttpError> {
    let text = |name: header::HeaderName| {
        let values: Result<Vec<&str>, _> =
            headers.get_all(&name).iter().map(|v| v.to_str()).collect();
        values
            .map(|v| v.join(","))
            .map_err(|_| HttpError::BadRequest(format!("{name} is not text")))
    };
    if headers.contains_key(header::IF_MATCH) {
        let text = text(header::IF_MATCH)?;
        if text.trim() == "*" {
            return Ok(Condition::Match(None));
        }
        let tags = text
            .split(',')
            .map(|tag| {
                let tag = tag.trim();
                let tag = tag.strip_prefix("W/").unwrap_or(tag);
                tag.strip_prefix('"')
                    .and_then(|t| t.strip_suffix('"'))
                    .and_then(|t| t.parse().ok())
            })
            .collect();
        return Ok(Condition::Match(Some(tags)));
    }
    if headers.contains_key(header::IF_NONE_MATCH) {
        return match text(header::IF_NONE_MATCH)?.trim() {
            "*" => Ok(Condition::Absent),
            _ => Err(HttpError::BadRequest(
                "If-None-Match takes only * here (add only if absent)".into(),
            )),
        };
    }
    Ok(Condition::Always)
}

fn refused(error: ChangeError) -> HttpError {
    let (status, code) = match &error {
        ChangeError::Stale { .. } => (
            StatusCode::PRECONDITION_FAILED,
            crate::jsonrpc::code::INVALID_REQUEST,
        ),
        ChangeError::FromFile(_) | ChangeError::NoPlacement(_) => {
            (StatusCode::CONFLICT, crate::jsonrpc::code::INVALID_REQUEST)
        }
        ChangeError::Unknown => return HttpError::UnknownTenant,
        ChangeError::Invalid(message) => return HttpError::BadRequest(message.clone()),
        ChangeError::Store(StoreError::NoKey) => (
            StatusCode::UNPROCESSABLE_ENTITY,
            crate::jsonrpc::code::INVALID_REQUEST,
        ),
        ChangeError::Store(_) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            crate::jsonrpc::code::INTERNAL_ERROR,
        ),
    };
    if status == StatusCode::INTERNAL_SERVER_ERROR {
        tracing::error!("an admin change could not be kept: {error}");
    }
    HttpError::rpc(status, code, error.to_string(), None)
}
