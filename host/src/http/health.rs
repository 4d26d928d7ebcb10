//! `/healthz`: the process is alive. `/readyz`: a new session can be served now (the package is resolved,
//! the shared server is up, catwalk is not shutting down).

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;

use super::App;

pub async fn healthz() -> Response {
    Json(json!({ "status": "ok" })).into_response()
}

pub async fn readyz(State(app): State<Arc<App>>) -> Response {
    let sessions = app.registry.len();
    let readiness = if app.shutdown.is_cancelled() {
        Err("shutting down".to_owned())
    } else {
        app.launcher.readiness().await
    };
    match readiness {
        Ok(detail) => {
            Json(json!({ "ready": true, "detail": detail, "sessions": sessions })).into_response()
        }
        Err(detail) => (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({ "ready": false, "detail": detail, "sessions": sessions })),
        )
            .into_response(),
    }
}
