//! Traces: an OpenTelemetry span per request on a tenant's MCP endpoints, exported over OTLP/HTTP when the standard
//! variables name an endpoint (`OTEL_EXPORTER_OTLP_ENDPOINT` or `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`; protocol
//! `http/protobuf` or `http/json` by `OTEL_EXPORTER_OTLP_PROTOCOL`; headers, timeout and `OTEL_SERVICE_NAME`
//! as the specification says). Off otherwise: then each request pays one check.
//!
//! - The request's span (server kind) continues the client's W3C `traceparent`, and is named and given attributes
//!   by the MCP semantic conventions once its message is read: `mcp.method.name`, `gen_ai.tool.name`,
//!   `gen_ai.prompt.name`, `mcp.resource.uri`, `mcp.session.id`, `mcp.protocol.version`, `jsonrpc.request.id`,
//!   and catwalk's `catwalk.tenant` and `catwalk.backend`; `error.type` when it fails.
//! - Its children: `wait for turn` (the tenant's fair turns), `instance start` (a server instance for a new
//!   session or a 2026-07-28 request), and `server answer` (from the request sent to the server to its answer).
//! - The server gets the request's trace context in `params._meta` (`traceparent`, `tracestate`), as the MCP
//!   proposal for trace context has it, so that its own spans join the same trace.
//!
//! Never an argument, a result, a token or an env value: only the names above.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};

use axum::http::HeaderMap;
use opentelemetry::global::{self, BoxedSpan, BoxedTracer};
use opentelemetry::propagation::TextMapPropagator;
use opentelemetry::trace::{SpanKind, TraceContextExt, Tracer};
use opentelemetry::{Context, KeyValue};
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::SdkTracerProvider;
use serde_json::Value;

static ENABLED: AtomicBool = AtomicBool::new(false);

/// The exporter, flushed when dropped (at shutdown).
pub struct Traces {
    provider: SdkTracerProvider,
}

impl std::fmt::Debug for Traces {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Traces").finish_non_exhaustive()
    }
}

impl Drop for Traces {
    fn drop(&mut self) {
        let _ = self.provider.shutdown();
    }
}

/// Starts exporting if the environment names an OTLP endpoint; `None` when it names none.
pub fn init() -> Result<Option<Traces>, String> {
    let var = |name: &str| std::env::var(name).ok().filter(|v| !v.trim().is_empty());
    if var("OTEL_SDK_DISABLED").is_some_and(|v| v.eq_ignore_ascii_case("true"))
        || (var("OTEL_EXPORTER_OTLP_ENDPOINT").is_none()
            && var("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT").is_none())
    {
        return Ok(None);
    }
    use opentelemetry_otlp::{Protocol, WithExportConfig};
    let protocol = var("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL")
        .or_else(|| var("OTEL_EXPORTER_OTLP_PROTOCOL"))
        .unwrap_or_else(|| "http/protobuf".into());
    let protocol = match protocol.as_str() {
        "http/protobuf" => Protocol::HttpBinary,
        "http/json" => Protocol::HttpJson,
        other => {
            return Err(format!(
                "OTEL_EXPORTER_OTLP_PROTOCOL={other} is not built in: use http/protobuf or http/json (a collector's port 4318)"
            ));
        }
    };
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .with_protocol(protocol)
        .build()
        .map_err(|e| format!("cannot export traces: {e}"))?;
    let service = var("OTEL_SERVICE_NAME").unwrap_or_else(|| "catwalk".into());
    let provider = SdkTracerProvider::builder()
        .with_batch_exporter(exporter)
        .with_resource(
            opentelemetry_sdk::Resource::builder()
                .with_service_name(service)
                .build(),
        )
        .build();
    global::set_tracer_provider(provider.clone());
    global::set_text_map_propagator(TraceContextPropagator::new());
    ENABLED.store(true, Ordering::Relaxed);
    Ok(Some(Traces { provider }))
}

/// Whether spans are being made.
pub fn enabled() -> bool {
    ENABLED.load(Ordering::Relaxed)
}

fn tracer() -> BoxedTracer {
    global::tracer("catwalk")
}

/// The span of one request on a tenant's endpoints, continuing the client's `traceparent`: the context to run
/// its handler in. `None` when traces are off.
pub fn request(headers: &HeaderMap, method: &str, tenant: &str) -> Option<Context> {
    if !enabled() {
        return None;
    }
    let parent =
        TraceContextPropagator::new().extract(&opentelemetry_http::HeaderExtractor(headers));
    let span = tracer()
        .span_builder(format!("{method} mcp"))
        .with_kind(SpanKind::Server)
        .with_attributes([
            KeyValue::new("http.request.method", method.to_owned()),
            KeyValue::new("catwalk.tenant", tenant.to_owned()),
        ])
        .start_with_context(&tracer(), &parent);
    Some(parent.with_span(span))
}

/// Ends a request's span with its status.
pub fn finish(cx: &Context, status: u16) {
    let span = cx.span();
    span.set_attribute(KeyValue::new(
        "http.response.status_code",
        i64::from(status),
    ));
    if status >= 400 {
        span.set_attribute(KeyValue::new("error.type", status.to_string()));
        if status >= 500 {
            span.set_status(opentelemetry::trace::Status::error(status.to_string()));
        }
    }
    span.end();
}

/// A child of the current request's span, ended when dropped: `wait for turn`, `instance start`, `server
/// answer`. `None` when traces are off.
pub fn child(name: &'static str) -> Option<BoxedSpan> {
    enabled().then(|| tracer().start_with_context(name, &Context::current()))
}

/// A child of the span in `cx`.
pub fn child_of(cx: &Context, name: &'static str) -> BoxedSpan {
    tracer().start_with_context(name, cx)
}

/// Names the current request's span by the message it carries, with the MCP conventions' attributes.
pub fn describe(method: &str, params: Option<&Value>, id: Option<&str>, session: Option<&str>) {
    if !enabled() {
        return;
    }
    let cx = Context::current();
    let span = cx.span();
    let field = |name: &str| params.and_then(|p| p.get(name)).and_then(Value::as_str);
    let (target, key) = match method {
        "tools/call" => (field("name"), "gen_ai.tool.name"),
        "prompts/get" => (field("name"), "gen_ai.prompt.name"),
        "resources/read" | "resources/subscribe" | "resources/unsubscribe" => {
            (field("uri"), "mcp.resource.uri")
        }
        _ => (None, ""),
    };
    match target {
        Some(target) => {
            let target: String = target.chars().take(256).collect();
            span.update_name(format!("{method} {target}"));
            span.set_attribute(KeyValue::new(key, target));
        }
        None => span.update_name(method.to_owned()),
    }
    span.set_attribute(KeyValue::new("mcp.method.name", method.to_owned()));
    if let Some(id) = id {
        span.set_attribute(KeyValue::new(
            "jsonrpc.request.id",
            id.chars().take(64).collect::<String>(),
        ));
    }
    if let Some(session) = session {
        span.set_attribute(KeyValue::new("mcp.session.id", session.to_owned()));
    }
}

/// Sets one attribute of the span in `cx`.
pub fn attribute_in(cx: &Context, key: &'static str, value: String) {
    cx.span().set_attribute(KeyValue::new(key, value));
}

/// Sets one attribute of the current request's span.
pub fn attribute(key: &'static str, value: String) {
    if enabled() {
        Context::current()
            .span()
            .set_attribute(KeyValue::new(key, value));
    }
}

/// Marks a span failed with a JSON-RPC error `code`.
pub fn failed(span: &mut BoxedSpan, code: i64) {
    use opentelemetry::trace::Span;
    span.set_attribute(KeyValue::new("error.type", code.to_string()));
    span.set_attribute(KeyValue::new("rpc.jsonrpc.error_code", code));
    span.set_status(opentelemetry::trace::Status::error(code.to_string()));
}

/// Ends a `server answer` span with what the answer says: failed, with its code, if it is a JSON-RPC error.
pub fn answered(mut span: BoxedSpan, answer: &[u8]) {
    #[derive(serde::Deserialize)]
    struct Answer {
        error: Option<ErrorCode>,
    }
    #[derive(serde::Deserialize)]
    struct ErrorCode {
        code: i64,
    }
    if let Ok(Answer {
        error: Some(ErrorCode { code }),
    }) = serde_json::from_slice(answer)
    {
        failed(&mut span, code);
    }
}

/// The current context's `traceparent` and `tracestate`, as the server gets them in `params._meta`.
pub fn context_fields() -> Option<HashMap<String, String>> {
    if !enabled() {
        return None;
    }
    let cx = Context::current();
    if !cx.span().span_context().is_valid() {
        return None;
    }
    let mut fields = HashMap::new();
    TraceContextPropagator::new().inject_context(&cx, &mut fields);
    Some(fields)
}

/// `message` (a JSON-RPC request) with the current trace context in its `params._meta`; as it was when traces
/// are off or it cannot be read.
pub fn with_context(message: bytes::Bytes) -> bytes::Bytes {
    let Some(fields) = context_fields() else {
        return message;
    };
    let Ok(mut value) = serde_json::from_slice::<Value>(&message) else {
        return message;
    };
    inject(&mut value["params"], &fields);
    serde_json::to_vec(&value).map_or(message, bytes::Bytes::from)
}

/// Puts `fields` into `params._meta` (made where missing).
pub fn inject(params: &mut Value, fields: &HashMap<String, String>) {
    if !params.is_object() {
        *params = Value::Object(Default::default());
    }
    if !params["_meta"].is_object() {
        params["_meta"] = Value::Object(Default::default());
    }
    for (key, value) in fields {
        params["_meta"][key.as_str()] = Value::String(value.clone());
    }
}
