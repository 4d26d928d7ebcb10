//! One error type for every HTTP answer catwalk writes itself: the right status and a JSON-RPC error body,
//! never a stack trace, a server's env or another session's data.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::value::RawValue;

use crate::jsonrpc::{self, code};
use crate::tenants::Refused;
use crate::tenants::rates::{Limited, Which};

/// What a refused token's `WWW-Authenticate` says (RFC 6750 §3, RFC 9728 §5.1).
#[derive(Debug, Clone)]
pub struct Challenge {
    pub resource_metadata: String,
    /// `invalid_token` or `insufficient_scope`.
    pub error: &'static str,
    pub description: String,
    /// The scopes the tenant needs, if any.
    pub scope: Option<String>,
}

impl Challenge {
    fn header(&self) -> String {
        let quoted = |s: &str| s.replace(['"', '\\'], "'");
        let mut value = format!(
            "Bearer error=\"{}\", error_description=\"{}\"",
            self.error,
            quoted(&self.description)
        );
        if let Some(scope) = &self.scope {
            value.push_str(&format!(", scope=\"{}\"", quoted(scope)));
        }
        if !self.resource_metadata.is_empty() {
            value.push_str(&format!(
                ", resource_metadata=\"{}\"",
                self.resource_metadata
            ));
        }
        value
    }
}

#[derive(Debug, thiserror::Error)]
pub enum HttpError {
    #[error("{0}")]
    BadRequest(String),
    #[error("{message}")]
    Rpc {
        status: StatusCode,
        code: i64,
        message: String,
        id: Option<Box<RawValue>>,
    },
    #[error("session not found: it has ended or never existed; start a new one with initialize")]
    UnknownSession,
    #[error("missing Mcp-Session-Id header; send initialize first to start a session")]
    MissingSession,
    #[error("Accept must list {0}")]
    NotAcceptable(&'static str),
    #[error("Content-Type must be application/json")]
    UnsupportedMediaType,
    #[error("request body is over the {0}-byte limit")]
    TooLarge(usize),
    #[error("{0}")]
    Forbidden(&'static str),
    #[error("unsupported protocol version {0:?}; supported: {supported}", supported = crate::http::SUPPORTED_VERSIONS.join(", "))]
    UnsupportedVersion(String),
    #[error("{0}")]
    Unavailable(String),
    #[error("{0}")]
    Conflict(&'static str),
    #[error("no such tenant on this machine")]
    UnknownTenant,
    /// No valid bearer token; the metadata URL tells the client where to get one.
    #[error("a valid bearer token is required (Authorization: Bearer <token>)")]
    Unauthorized { resource_metadata: String },
    /// A token was refused (401, `invalid_token`), or lacks scopes (403, `insufficient_scope`): RFC 6750 §3.
    #[error("{}", .0.description)]
    Token(Challenge),
    #[error("{0}")]
    NotFound(&'static str),
    #[error("{}; retry in {} s", match .0.which {
        Which::Tenant => "this tenant's requests are over its rate",
        Which::Subject => "your requests to this tenant are over their rate",
        Which::Tool => "calls of this tool are over their rate",
    }, .0.retry_after_secs())]
    RateLimited(Limited),
}

impl HttpError {
    pub fn status(&self) -> StatusCode {
        match self {
            HttpError::BadRequest(_)
            | HttpError::MissingSession
            | HttpError::UnsupportedVersion(_) => StatusCode::BAD_REQUEST,
            HttpError::Rpc { status, .. } => *status,
            HttpError::UnknownSession | HttpError::UnknownTenant | HttpError::NotFound(_) => {
                StatusCode::NOT_FOUND
            }
            HttpError::Unauthorized { .. } => StatusCode::UNAUTHORIZED,
            HttpError::Token(challenge) if challenge.error == "insufficient_scope" => {
                StatusCode::FORBIDDEN
            }
            HttpError::Token(_) => StatusCode::UNAUTHORIZED,
            HttpError::NotAcceptable(_) => StatusCode::NOT_ACCEPTABLE,
            HttpError::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            HttpError::TooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            HttpError::Forbidden(_) => StatusCode::FORBIDDEN,
            HttpError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            HttpError::Conflict(_) => StatusCode::CONFLICT,
            HttpError::RateLimited(_) => StatusCode::TOO_MANY_REQUESTS,
        }
    }

    fn code(&self) -> i64 {
        match self {
            HttpError::Rpc { code, .. } => *code,
            HttpError::Unavailable(_) => code::UNAVAILABLE,
            HttpError::RateLimited(_) => code::RATE_LIMITED,
            _ => code::INVALID_REQUEST,
        }
    }

    /// A JSON-RPC error for a request with `status` and `code`.
    pub fn rpc(
        status: StatusCode,
        code: i64,
        message: impl Into<String>,
        id: Option<Box<RawValue>>,
    ) -> Self {
        HttpError::Rpc {
            status,
            code,
            message: message.into(),
            id,
        }
    }
}

impl IntoResponse for HttpError {
    fn into_response(self) -> Response {
        let id = match &self {
            HttpError::Rpc { id, .. } => id.as_deref(),
            _ => None,
        };
        let body = jsonrpc::error_reply(id, self.code(), &self.to_string());
        let mut response = (self.status(), body).into_response();
        response.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        if let HttpError::Unauthorized { resource_metadata } = &self
            && let Ok(value) = HeaderValue::from_str(&if resource_metadata.is_empty() {
                "Bearer".to_owned()
            } else {
                format!("Bearer resource_metadata=\"{resource_metadata}\"")
            })
        {
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, value);
        }
        if let HttpError::RateLimited(limited) = &self {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, limited.retry_after_secs().into());
        }
        if let HttpError::Token(challenge) = &self
            && let Ok(value) = HeaderValue::from_str(&challenge.header())
        {
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, value);
        }
        response
    }
}

impl From<Refused> for HttpError {
    fn from(refused: Refused) -> Self {
        match refused {
            Refused::Unavailable(message) => HttpError::Unavailable(message),
            Refused::Launch(e) => HttpError::rpc(
                axum::http::StatusCode::BAD_GATEWAY,
                code::SERVER_GONE,
                e.to_string(),
                None,
            ),
        }
    }
}

/// The answer to a request whose handler panicked: 500 and a JSON-RPC error, nothing of the panic itself.
pub fn panicked(_: Box<dyn std::any::Any + Send + 'static>) -> Response {
    tracing::error!("a request's handler panicked; it was answered with 500 and catwalk goes on");
    HttpError::rpc(
        axum::http::StatusCode::INTERNAL_SERVER_ERROR,
        code::INTERNAL_ERROR,
        "catwalk failed on this request (an internal error); try again",
        None,
    )
    .into_response()
}

/// Debug builds: a request with `x-catwalk-test-panic` panics in its handler, for the tests of [`panicked`].
#[cfg(debug_assertions)]
pub async fn panic_on_request(
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    if request.headers().contains_key("x-catwalk-test-panic") {
        panic!("a test asked this request's handler to panic");
    }
    next.run(request).await
}
