//! A guest that attacks its sandbox: each tool is one attack, and answers with what it managed to do.
//!
//!   cargo build --release --target wasm32-wasip1 -p catwalk-hostile-guest
use std::io::Write;

use catwalk_guest::{Server, Tool, ToolResult, json};

fn main() -> std::io::Result<()> {
    Server::new("catwalk-hostile-guest", "0.1.0")
        .tool(
            Tool::new("echo", "Answers, to show the guest is alive")
                .param("message", "string", "m", true),
            |args, _| Ok(ToolResult::text(args.str("message")?)),
        )
        .tool(
            Tool::new("read_file", "Tries to read a path").param("path", "string", "p", true),
            |args, _| {
                Ok(match std::fs::read_to_string(args.str("path")?) {
                    Ok(text) => ToolResult::text(format!("READ {} bytes", text.len())),
                    Err(e) => ToolResult::error(format!("denied: {e}")),
                })
            },
        )
        .tool(
            Tool::new("write_file", "Tries to write a path").param("path", "string", "p", true),
            |args, _| {
                Ok(match std::fs::write(args.str("path")?, b"pwned") {
                    Ok(()) => ToolResult::text("WROTE"),
                    Err(e) => ToolResult::error(format!("denied: {e}")),
                })
            },
        )
        .tool(
            Tool::new("truncate", "Tries to truncate a file").param("path", "string", "p", true),
            |args, _| {
                let opened = std::fs::OpenOptions::new()
                    .write(true)
                    .truncate(true)
                    .open(args.str("path")?);
                Ok(match opened {
                    Ok(_) => ToolResult::text("TRUNCATED"),
                    Err(e) => ToolResult::error(format!("denied: {e}")),
                })
            },
        )
        .tool(
            Tool::new("rename", "Tries to rename a file")
                .param("from", "string", "f", true)
                .param("to", "string", "t", true),
            |args, _| {
                Ok(match std::fs::rename(args.str("from")?, args.str("to")?) {
                    Ok(()) => ToolResult::text("RENAMED"),
                    Err(e) => ToolResult::error(format!("denied: {e}")),
                })
            },
        )
        .tool(
            Tool::new("hard_link", "Tries to hard-link a file")
                .param("from", "string", "f", true)
                .param("to", "string", "t", true),
            |args, _| {
                Ok(
                    match std::fs::hard_link(args.str("from")?, args.str("to")?) {
                        Ok(()) => ToolResult::text("LINKED"),
                        Err(e) => ToolResult::error(format!("denied: {e}")),
                    },
                )
            },
        )
        .tool(
            Tool::new("connect", "Tries to open a TCP connection").param(
                "addr",
                "string",
                "host:port",
                true,
            ),
            |args, _| {
                Ok(match std::net::TcpStream::connect(args.str("addr")?) {
                    Ok(_) => ToolResult::text("CONNECTED"),
                    Err(e) => ToolResult::error(format!("denied: {e}")),
                })
            },
        )
        .tool(
            Tool::new("resolve", "Tries to look a name up").param("name", "string", "n", true),
            |args, _| {
                use std::net::ToSocketAddrs;
                Ok(match (args.str("name")?, 80).to_socket_addrs() {
                    Ok(addrs) => ToolResult::text(format!("RESOLVED {}", addrs.count())),
                    Err(e) => ToolResult::error(format!("denied: {e}")),
                })
            },
        )
        .tool(
            Tool::new("env", "Reads an environment variable").param("name", "string", "n", true),
            |args, _| {
                Ok(match std::env::var(args.str("name")?) {
                    Ok(value) => ToolResult::text(format!("SET {value}")),
                    Err(_) => ToolResult::error("absent"),
                })
            },
        )
        .tool(Tool::new("spin", "Loops forever"), |_, _| {
            let mut n: u64 = 0;
            loop {
                n = std::hint::black_box(n.wrapping_add(1));
            }
        })
        .tool(
            Tool::new("alloc", "Allocates until refused").param("mib", "number", "m", true),
            |args, _| {
                let mib = args.f64_or("mib", 1024.0) as usize;
                let mut hoard: Vec<Vec<u8>> = Vec::new();
                for _ in 0..mib {
                    hoard.push(vec![1u8; 1 << 20]);
                }
                Ok(ToolResult::text(format!("ALLOCATED {} MiB", hoard.len()))
                    .structured(json!({ "mib": hoard.len() })))
            },
        )
        .tool(
            Tool::new("flood", "Writes stdout without a newline, forever"),
            |_, _| {
                let chunk = vec![b'x'; 1 << 16];
                let mut out = std::io::stdout();
                loop {
                    if out.write_all(&chunk).is_err() {
                        return Ok(ToolResult::error("stdout closed"));
                    }
                }
            },
        )
        .tool(Tool::new("recurse", "Recurses without end"), |_, _| {
            // Never reaches its end: the stack runs out first.
            fn deeper(n: u64) -> u64 {
                if n == u64::MAX {
                    return n;
                }
                std::hint::black_box(deeper(n + 1)).wrapping_add(1)
            }
            Ok(ToolResult::text(deeper(0).to_string()))
        })
        .run()
}
