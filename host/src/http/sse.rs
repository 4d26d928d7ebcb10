//! Legacy HTTP+SSE (2024-11-05): `GET /sse` opens the session's one stream, whose first event names the URL to
//! POST to; every POST answers 202 and every server message arrives on the stream as an `event: message`.
//! The session lives as long as the stream: when the client disconnects, its server instance is stopped.

use std::sync::Arc;

use axum::Extension;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{OriginalUri, Query};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use futures_util::{StreamExt, stream};
use serde::Deserialize;
use tokio_stream::wrappers::ReceiverStream;

use super::error::HttpError;
use super::{Scope, events};
use crate::jsonrpc::{self, Kind};
use crate::session::{Registry, STANDALONE, Session, Transport};

pub async fn connect(
    Extension(scope): Extension<Scope>,
    OriginalUri(uri): OriginalUri,
) -> Result<Response, HttpError> {
    let app = &scope.app;
    let session = app
        .open_session(scope.owner(), scope.subject.clone(), Transport::LegacySse)
        .await?;
    session.touch();
    let live = session
        .attach(STANDALONE, None)
        .expect("a new session's stream has no reader");
    let base = uri.path().strip_suffix("sse").unwrap_or("/");
    let endpoint = events::event(
        None,
        Some("endpoint"),
        format!("{base}message?sessionId={}", session.id).as_bytes(),
    );
    let guard = EndOnDrop {
        session: session.clone(),
        registry: app.registry.clone(),
    };
    let messages = ReceiverStream::new(live).filter_map(move |d| {
        let _keep = &guard;
        async move { Some(events::event(None, Some("message"), &d.bytes)) }
    });
    let all = stream::once(async { endpoint })
        .chain(messages)
        .take_until(app.shutdown.clone().cancelled_owned());
    Ok(events::response(all, app.keep_alive))
}

#[derive(Deserialize)]
pub struct MessageQuery {
    #[serde(rename = "sessionId")]
    session_id: Option<String>,
}

pub async fn message(
    Extension(scope): Extension<Scope>,
    Query(query): Query<MessageQuery>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, HttpError> {
    let id = query.session_id.ok_or(HttpError::BadRequest(
        "missing sessionId query parameter".into(),
    ))?;
    let app = &scope.app;
    let session = app
        .registry
        .get(&id)
        .filter(|s| !s.is_ended() && s.transport == Transport::LegacySse && scope.owns(s))
        .ok_or(HttpError::UnknownSession)?;
    let body = body.map_err(|rejection| match rejection.status() {
        StatusCode::PAYLOAD_TOO_LARGE => HttpError::TooLarge(app.max_body_bytes),
        _ => HttpError::BadRequest(rejection.body_text()),
    })?;
    let (messages, _) = jsonrpc::split_body(&body)
        .map_err(|e| HttpError::rpc(StatusCode::BAD_REQUEST, e.code(), e.to_string(), None))?;
    session.touch();
    super::describe_in_trace(&messages, &session);
    super::admit_tool_calls(&scope, &messages, "sse")?;
    let requests: Vec<_> = messages
        .iter()
        .filter(|m| m.kind == Kind::Request)
        .collect();
    session.register_on_standalone(&requests).map_err(|e| {
        HttpError::rpc(
            StatusCode::BAD_REQUEST,
            jsonrpc::code::INVALID_REQUEST,
            e.to_string(),
            None,
        )
    })?;
    let (passed, refused) = session.screen(&messages);
    for _ in 0..refused {
        app.metrics.refused("not_offered");
    }
    session
        .send(passed)
        .await
        .map_err(|_| HttpError::UnknownSession)?;
    Ok((StatusCode::ACCEPTED, "Accepted").into_response())
}

/// Ends a legacy session when its stream is dropped (the client went away).
struct EndOnDrop {
    session: Arc<Session>,
    registry: Arc<Registry>,
}

impl Drop for EndOnDrop {
    fn drop(&mut self) {
        self.session.end("the client closed its SSE stream");
        self.registry.remove(&self.session.id);
    }
}
