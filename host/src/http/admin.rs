//! The admin API, for the control plane that places tenants on machines: list, add or replace, and remove
//! tenants at runtime. Off unless `--admin-token-sha256` is set; every call needs that token.
//!
//! - `GET /admin/tenants`: every tenant, its server kind, open sessions and network grants (never its env, tokens
//!   or secrets' values).
//! - `PUT /admin/tenants/{id}`: a tenant as JSON, with the tenants file's schema; 201 added, 200 replaced (a
//!   replaced tenant's sessions end).
//! - `DELETE /admin/tenants/{id}`: 204; its sessions end and its instances stop.

use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, Request, State};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Extension, Json};
use serde_json::json;

use super::Tenants;
use super::auth::bearer;
use super::error::HttpError;
use crate::backend::Launcher;
use crate::tenants::file::TenantDef;
use crate::tenants::token_matches;

#[derive(Clone, Copy)]
struct AdminToken([u8; 32]);

pub fn router(token: [u8; 32]) -> Router<Arc<Tenants>> {
    Router::new()
        .route("/admin/tenants", get(list))
        .route(
            "/admin/tenants/{id}",
            axum::routing::put(put).delete(delete),
        )
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
    let list: Vec<_> = tenants
        .list()
        .iter()
        .map(|app| {
            let server = match &app.launcher {
                Launcher::PerSession(_) => "process per session",
                Launcher::Shared(_) => "shared process",
                Launcher::Wasi(_) => "wasi",
            };
            json!({
                "id": &*app.tenant,
                "server": server,
                "sessions": tenants.host.registry.count_tenant(&app.tenant),
                "max_sessions": app.places.as_ref().map(|(_, max)| max),
                "protected": !app.tokens.is_empty(),
                "grants": app.launcher.grants(),
            })
        })
        .collect();
    Json(json!({ "tenants": list })).into_response()
}

async fn put(
    State(tenants): State<Arc<Tenants>>,
    Path(id): Path<String>,
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
    let spec = def
        .validate()
        .map_err(|e| HttpError::BadRequest(e.to_string()))?;
    let app = tenants
        .host
        .build(&spec)
        .await
        .map_err(|e| HttpError::BadRequest(format!("tenant {id:?}: {e}")))?;
    let replaced = tenants.insert(app).await;
    tracing::info!(tenant = %id, replaced, "tenant configured through the admin API");
    let status = if replaced {
        StatusCode::OK
    } else {
        StatusCode::CREATED
    };
    Ok((status, Json(json!({ "id": id, "replaced": replaced }))).into_response())
}

async fn delete(
    State(tenants): State<Arc<Tenants>>,
    Path(id): Path<String>,
) -> Result<Response, HttpError> {
    if tenants.remove(&id).await {
        Ok(StatusCode::NO_CONTENT.into_response())
    } else {
        Err(HttpError::UnknownTenant)
    }
}
