//! `/healthz`: the process is alive. `/readyz`: a new session can be served now (the package is resolved,
//! the shared server is up, catwalk is not shutting down).

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;

use super::Tenants;

pub async fn healthz() -> Response {
    Json(json!({ "status": "ok" })).into_response()
}

pub async fn readyz(State(tenants): State<Arc<Tenants>>) -> Response {
    let sessions = tenants.host.registry.len();
    if tenants.host.shutdown.is_cancelled() {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({ "ready": false, "detail": "shutting down", "sessions": sessions })),
        )
            .into_response();
    }
    if tenants.multi {
        // A machine of many tenants is ready when it serves; each tenant says how its server is.
        let mut each = serde_json::Map::new();
        for app in tenants.list() {
            let (ready, detail) = match app.launcher.readiness().await {
                Ok(detail) => (true, detail),
                Err(detail) => (false, detail),
            };
            each.insert(
                app.tenant.to_string(),
                json!({ "ready": ready, "detail": detail, "grants": app.launcher.grants(),
                    "package": app.launcher.package() }),
            );
        }
        return Json(json!({
            "ready": true,
            "sessions": sessions,
            "tenants": each,
            "children": tenants.host.children,
        }))
        .into_response();
    }
    let (readiness, grants, package) = match tenants.get("") {
        Some(app) => (
            app.launcher.readiness().await,
            app.launcher.grants(),
            app.launcher.package(),
        ),
        None => (
            Err("no server configured".to_owned()),
            serde_json::Value::Null,
            serde_json::Value::Null,
        ),
    };
    match readiness {
        Ok(detail) => Json(
            json!({ "ready": true, "detail": detail, "sessions": sessions,
            "grants": grants, "package": package }),
        )
        .into_response(),
        Err(detail) => (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({ "ready": false, "detail": detail, "sessions": sessions })),
        )
            .into_response(),
    }
}
