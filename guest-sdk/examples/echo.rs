//! The smallest useful guest: `echo` and `time`.
//!
//!   cargo build --release --target wasm32-wasip1 -p catwalk-guest --example echo
//!   catwalk serve --wasm target/wasm32-wasip1/release/examples/echo.wasm
use std::time::{SystemTime, UNIX_EPOCH};

use catwalk_guest::{Server, Tool, ToolResult, json};

fn main() -> std::io::Result<()> {
    Server::new("catwalk-echo", env!("CARGO_PKG_VERSION"))
        .instructions("A demo MCP server running sandboxed in catwalk's WASI backend.")
        .tool(
            Tool::new("echo", "Echoes its message back").param(
                "message",
                "string",
                "What to echo",
                true,
            ),
            |args, _cx| Ok(ToolResult::text(format!("Echo: {}", args.str("message")?))),
        )
        .tool(
            Tool::new("time", "The current time, in seconds since the Unix epoch"),
            |_, _cx| {
                let now = SystemTime::now()
                    .duration_since(UNIX_EPOCH)
                    .unwrap_or_default();
                Ok(ToolResult::text(now.as_secs().to_string())
                    .structured(json!({ "unix": now.as_secs() })))
            },
        )
        .run()
}
