//! A guest that makes HTTP requests through catwalk with `catwalk-guest`'s client: `fetch` sends one, `env`
//! shows one of its variables (a secret's placeholder, say).
//! Built for both targets, so the same tools test `catwalk_http` (wasip1) and `wasi:http` (wasip2):
//!
//!   cargo build --release --target wasm32-wasip1 -p catwalk-egress-guest
//!   cargo build --release --target wasm32-wasip2 -p catwalk-egress-guest
use catwalk_guest::http::Request;
use catwalk_guest::{Server, Tool, ToolResult, json};

fn main() -> std::io::Result<()> {
    Server::new("catwalk-egress-guest", "0.1.0")
        .tool(
            Tool::new("fetch", "Sends one HTTP request through catwalk")
                .param("url", "string", "Where", true)
                .param("method", "string", "GET by default", false)
                .param("headers", "object", "Header names and values", false)
                .param("body", "string", "The body", false),
            |args, _| {
                let mut request = Request::new(
                    args.get("method").and_then(|m| m.as_str()).unwrap_or("GET"),
                    args.str("url")?,
                );
                if let Some(headers) = args.get("headers").and_then(|h| h.as_object()) {
                    for (name, value) in headers {
                        request = request.header(name, value.as_str().unwrap_or_default());
                    }
                }
                if let Some(body) = args.get("body").and_then(|b| b.as_str()) {
                    request = request.body(body.as_bytes());
                }
                Ok(match request.send() {
                    Ok(response) => ToolResult::text(response.text()).structured(json!({
                        "status": response.status,
                        "body": response.text(),
                        "headers": response.headers,
                    })),
                    Err(e) => ToolResult::error(format!("refused: {e}")),
                })
            },
        )
        .tool(
            Tool::new("env", "One of the guest's env variables")
                .param("name", "string", "Its name", true),
            |args, _| {
                Ok(ToolResult::text(
                    std::env::var(args.str("name")?).unwrap_or_default(),
                ))
            },
        )
        .run()
}
