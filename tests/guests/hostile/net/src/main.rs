//! A hostile guest: opens sockets and looks names up. Each tool is one attempt, and answers with what it managed to do.
//!
//!   cargo build --release --target wasm32-wasip1 -p catwalk-hostile-net
use catwalk_guest::{Server, Tool, ToolResult};

/// What the guest managed: `done` on success, `denied: <why>` (as a tool error) otherwise.
fn denied_or(outcome: std::io::Result<()>, done: &str) -> ToolResult {
    match outcome {
        Ok(()) => ToolResult::text(done),
        Err(e) => ToolResult::error(format!("denied: {e}")),
    }
}

fn main() -> std::io::Result<()> {
    Server::new("catwalk-hostile-net", "0.1.0")
        .tool(
            Tool::new("connect", "Tries to open a TCP connection").param(
                "addr",
                "string",
                "host:port",
                true,
            ),
            |args, _| {
                Ok(denied_or(
                    std::net::TcpStream::connect(args.str("addr")?).map(drop),
                    "CONNECTED",
                ))
            },
        )
        .tool(
            Tool::new("resolve", "Tries to look a name up").param("name", "string", "n", true),
            |args, _| {
                use std::net::ToSocketAddrs;
                Ok(denied_or(
                    (args.str("name")?, 80).to_socket_addrs().map(drop),
                    "RESOLVED",
                ))
            },
        )
        .run()
}
