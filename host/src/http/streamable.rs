//! Streamable HTTP, 2025 era (2025-03-26, 2025-06-18, 2025-11-25), on one URL.
//!
//! - POST carries client messages. Notifications and responses only: 202. Requests: the answer comes as one
//!   JSON object when the server answers straight away, or as an SSE stream when the server has something to
//!   say first (progress, logging, a sampling request) or takes longer than the JSON window.
//! - GET opens the standalone stream, or resumes a broken one with `Last-Event-ID`.
//! - DELETE ends the session.
//!
//! A request of the 2026-07-28 era on the same URL is served statelessly by [`super::modern`].

use std::sync::Arc;

use axum::Extension;
use axum::body::Bytes;
use axum::extract::{FromRequest, Request};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use futures_util::{StreamExt, stream};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;

use super::error::HttpError;
use super::{
    App, Scope, accepts, admit_tool_calls, check_version, describe_in_trace, events, modern,
};
use crate::jsonrpc::{self, Kind, Peeked, code};
use crate::session::{Delivery, STANDALONE, SendError, Session, StreamId, Transport};

const SESSION_HEADER: &str = "mcp-session-id";

pub async fn post(
    Extension(scope): Extension<Scope>,
    request: Request,
) -> Result<Response, HttpError> {
    // The headers are moved out, not cloned as a `HeaderMap` extractor would on every request.
    let (mut parts, body) = request.into_parts();
    let headers = std::mem::take(&mut parts.headers);
    let body = Bytes::from_request(Request::from_parts(parts, body), &()).await;
    let app = &scope.app;
    if !accepts(&headers, &["application/json", "text/event-stream"]) {
        return Err(HttpError::NotAcceptable(
            "both application/json and text/event-stream",
        ));
    }
    let json = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            v.split(';')
                .next()
                .unwrap_or("")
                .trim()
                .eq_ignore_ascii_case("application/json")
        });
    if !json {
        return Err(HttpError::UnsupportedMediaType);
    }
    let body = body.map_err(|rejection| match rejection.status() {
        StatusCode::PAYLOAD_TOO_LARGE => HttpError::TooLarge(app.max_body_bytes),
        _ => HttpError::BadRequest(rejection.body_text()),
    })?;
    if modern::is_modern(&headers, &body) {
        return Ok(modern::post(&scope, &headers, &body).await);
    }
    check_version(&headers)?;
    let (messages, batch) = jsonrpc::split_body(&body)
        .map_err(|e| HttpError::rpc(StatusCode::BAD_REQUEST, e.code(), e.to_string(), None))?;

    let initialize = messages
        .iter()
        .any(|m| m.kind == Kind::Request && m.method() == "initialize");
    let session = if initialize {
        if batch {
            return Err(HttpError::rpc(
                StatusCode::BAD_REQUEST,
                code::INVALID_REQUEST,
                "initialize must not be part of a batch",
                None,
            ));
        }
        if let Some(id) = session_id(&headers)? {
            return Err(match find(&scope, id).ok() {
                Some(_) => HttpError::BadRequest("this session is already initialized".into()),
                None => HttpError::UnknownSession,
            });
        }
        app.open_session(scope.owner(), scope.subject.clone(), Transport::Streamable)
            .await?
    } else {
        let id = session_id(&headers)?.ok_or(HttpError::MissingSession)?;
        find(&scope, id)?
    };
    session.touch();
    describe_in_trace(&messages, &session);
    admit_tool_calls(&scope, &messages, "streamable")?;

    let requests: Vec<&Peeked> = messages
        .iter()
        .filter(|m| m.kind == Kind::Request)
        .collect();
    if requests.is_empty() {
        session
            .send(messages.iter().map(|m| m.bytes.clone()).collect())
            .await
            .map_err(|_| HttpError::UnknownSession)?;
        return Ok(StatusCode::ACCEPTED.into_response());
    }
    let (stream_id, live) = session
        .open_request_stream(&requests)
        .map_err(|e| match e {
            SendError::Ended => HttpError::UnknownSession,
            SendError::DuplicateId(_) => HttpError::rpc(
                StatusCode::BAD_REQUEST,
                code::INVALID_REQUEST,
                e.to_string(),
                requests.first().and_then(|r| r.id.clone()),
            ),
        })?;
    // A failed send ends the session, which answers the registered requests on their stream: no early return.
    let (passed, refused) = session.screen(&messages);
    for _ in 0..refused {
        app.metrics.refused("not_offered");
    }
    let _ = session.send(passed).await;

    // Until initialize is answered, the version the client asked for decides whether it can resume.
    let version = match initialize {
        true => messages
            .first()
            .and_then(|m| jsonrpc::requested_version(&m.bytes)),
        false => session.version(),
    };
    let mut response = answer(app, version, stream_id, live, !batch).await;
    if initialize {
        let id = HeaderValue::from_str(session.id.as_str()).expect("session ids are visible ASCII");
        response.headers_mut().insert(SESSION_HEADER, id);
    }
    Ok(response)
}

pub async fn get(
    Extension(scope): Extension<Scope>,
    headers: HeaderMap,
) -> Result<Response, HttpError> {
    let app = &scope.app;
    if modern::is_modern_header(&headers) {
        return Ok(modern::method_not_allowed());
    }
    if !accepts(&headers, &["text/event-stream"]) {
        return Err(HttpError::NotAcceptable("text/event-stream"));
    }
    let id = session_id(&headers)?.ok_or(HttpError::MissingSession)?;
    check_version(&headers)?;
    let session = find(&scope, id)?;
    session.touch();
    let resume = headers.get("last-event-id").map(|v| {
        v.to_str()
            .ok()
            .and_then(catwalk_core::wire::sse::parse_event_id)
    });
    let (stream_id, live) = match resume {
        Some(None) => {
            return Err(HttpError::BadRequest(
                "Last-Event-ID is not one catwalk issued".into(),
            ));
        }
        Some(Some((stream_id, seq))) => {
            let live = session.attach(stream_id, Some(seq)).ok_or_else(|| {
                HttpError::rpc(
                    StatusCode::NOT_FOUND,
                    code::INVALID_REQUEST,
                    "no stream to resume for that Last-Event-ID (expired, or already being read)",
                    None,
                )
            })?;
            (stream_id, live)
        }
        None => {
            let live = session.attach(STANDALONE, None).ok_or(HttpError::Conflict(
                "this session already has a GET stream open",
            ))?;
            (STANDALONE, live)
        }
    };
    Ok(sse_response(app, stream_id, None, live, StreamKind::Get))
}

pub async fn delete(
    Extension(scope): Extension<Scope>,
    headers: HeaderMap,
) -> Result<Response, HttpError> {
    let app = &scope.app;
    if modern::is_modern_header(&headers) {
        return Ok(modern::method_not_allowed());
    }
    let id = session_id(&headers)?.ok_or(HttpError::MissingSession)?;
    let session = find(&scope, id)?;
    session.end("the client ended the session");
    app.registry.remove(&session.id);
    Ok(StatusCode::OK.into_response())
}

fn session_id(headers: &HeaderMap) -> Result<Option<&str>, HttpError> {
    match headers.get(SESSION_HEADER) {
        None => Ok(None),
        Some(v) => v.to_str().map(Some).map_err(|_| HttpError::UnknownSession),
    }
}

/// The caller's live Streamable HTTP session `id`: another tenant's or another token's is unknown.
fn find(scope: &Scope, id: &str) -> Result<Arc<Session>, HttpError> {
    scope
        .app
        .registry
        .get(id)
        .filter(|s| !s.is_ended() && s.transport == Transport::Streamable && scope.owns(s))
        .ok_or(HttpError::UnknownSession)
}

/// JSON if the first thing on the stream is the (only) answer within the JSON window, else SSE.
async fn answer(
    app: &App,
    version: Option<String>,
    stream_id: StreamId,
    mut live: mpsc::Receiver<Delivery>,
    single: bool,
) -> Response {
    let mut first = None;
    if single && let Ok(received) = tokio::time::timeout(app.json_window, live.recv()).await {
        match received {
            Some(delivery) if delivery.last => {
                return ([(header::CONTENT_TYPE, "application/json")], delivery.bytes)
                    .into_response();
            }
            other => first = other,
        }
    }
    let resumable = version.is_none_or(|v| v.as_str() >= "2025-11-25");
    sse_response(app, stream_id, first, live, StreamKind::Post { resumable })
}

/// Which stream an SSE response carries.
enum StreamKind {
    /// The answer to a POST: ends with its last response (it drains at shutdown). A client that can resume
    /// (2025-11-25 and later) gets a priming event first: an id to resume from, a reconnect delay, empty data.
    Post { resumable: bool },
    /// The standalone GET stream, or a resumed one: ends at shutdown.
    Get,
}

fn sse_response(
    app: &App,
    stream_id: StreamId,
    first: Option<Delivery>,
    live: mpsc::Receiver<Delivery>,
    kind: StreamKind,
) -> Response {
    let post = matches!(kind, StreamKind::Post { .. });
    let priming = matches!(kind, StreamKind::Post { resumable: true })
        .then(|| events::priming(&format!("{stream_id}-0"), std::time::Duration::from_secs(1)));
    let messages = stream::iter(first)
        .chain(ReceiverStream::new(live))
        .map(move |d| events::event(Some(&format!("{stream_id}-{}", d.seq)), None, &d.bytes));
    let all = stream::iter(priming).chain(messages);
    if post {
        events::response(all, app.keep_alive)
    } else {
        events::response(
            all.take_until(app.shutdown.clone().cancelled_owned()),
            app.keep_alive,
        )
    }
}
