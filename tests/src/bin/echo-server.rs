//! A minimal stdio MCP server for tests that need many cheap sessions: initialize, ping, and one tool,
//! `echo`, which answers `{message}` back. Blocking, newline-delimited JSON-RPC, nothing else.
//!
//!   cargo run -p catwalk-tests --bin echo-server
use std::io::{BufRead, Write};

use serde_json::{Value, json};

fn main() {
    let stdin = std::io::stdin();
    let mut stdout = std::io::stdout().lock();
    for line in stdin.lock().lines() {
        let Ok(line) = line else { break };
        let Ok(message) = serde_json::from_str::<Value>(&line) else {
            continue;
        };
        let (Some(id), Some(method)) = (message.get("id"), message["method"].as_str()) else {
            continue;
        };
        let result = match method {
            "initialize" => json!({
                "protocolVersion": message["params"]["protocolVersion"],
                "capabilities": { "tools": {} },
                "serverInfo": { "name": "echo-server", "version": "0.1.0" },
            }),
            "ping" => json!({}),
            "tools/list" => json!({ "tools": [{
                "name": "echo",
                "description": "Echoes its message",
                "inputSchema": { "type": "object", "properties": { "message": { "type": "string" } } },
            }] }),
            "tools/call" => json!({ "content": [{
                "type": "text",
                "text": message["params"]["arguments"]["message"],
            }] }),
            _ => {
                let error = json!({ "jsonrpc": "2.0", "id": id, "error": { "code": -32601, "message": "no such method" } });
                let _ = writeln!(stdout, "{error}");
                continue;
            }
        };
        let _ = writeln!(
            stdout,
            "{}",
            json!({ "jsonrpc": "2.0", "id": id, "result": result })
        );
        let _ = stdout.flush();
    }
}
