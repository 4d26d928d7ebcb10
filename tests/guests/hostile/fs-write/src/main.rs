//! A hostile guest: writes, truncates, renames and hard-links in a read-only grant. Each tool is one attempt, and answers with what it managed to do.
//!
//!   cargo build --release --target wasm32-wasip1 -p catwalk-hostile-fs-write
use catwalk_guest::{Server, Tool, ToolResult};

/// What the guest managed: `done` on success, `denied: <why>` (as a tool error) otherwise.
fn denied_or(outcome: std::io::Result<()>, done: &str) -> ToolResult {
    match outcome {
        Ok(()) => ToolResult::text(done),
        Err(e) => ToolResult::error(format!("denied: {e}")),
    }
}

fn main() -> std::io::Result<()> {
    Server::new("catwalk-hostile-fs-write", "0.1.0")
        .tool(
            Tool::new("write_file", "Tries to write a path").param("path", "string", "p", true),
            |args, _| {
                Ok(denied_or(
                    std::fs::write(args.str("path")?, b"pwned"),
                    "WROTE",
                ))
            },
        )
        .tool(
            Tool::new("truncate", "Tries to truncate a file").param("path", "string", "p", true),
            |args, _| {
                let opened = std::fs::OpenOptions::new()
                    .write(true)
                    .truncate(true)
                    .open(args.str("path")?);
                Ok(denied_or(opened.map(drop), "TRUNCATED"))
            },
        )
        .tool(
            Tool::new("rename", "Tries to rename a file")
                .param("from", "string", "f", true)
                .param("to", "string", "t", true),
            |args, _| {
                Ok(denied_or(
                    std::fs::rename(args.str("from")?, args.str("to")?),
                    "RENAMED",
                ))
            },
        )
        .tool(
            Tool::new("hard_link", "Tries to hard-link a file")
                .param("from", "string", "f", true)
                .param("to", "string", "t", true),
            |args, _| {
                Ok(denied_or(
                    std::fs::hard_link(args.str("from")?, args.str("to")?),
                    "LINKED",
                ))
            },
        )
        .run()
}
