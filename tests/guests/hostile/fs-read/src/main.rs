//! A hostile guest: reads paths it was not granted. Each tool is one attempt, and answers with what it managed to do.
//!
//!   cargo build --release --target wasm32-wasip1 -p catwalk-hostile-fs-read
use catwalk_guest::{Server, Tool, ToolResult};

fn main() -> std::io::Result<()> {
    Server::new("catwalk-hostile-fs-read", "0.1.0")
        .tool(
            Tool::new("read_file", "Tries to read a path").param("path", "string", "p", true),
            |args, _| {
                Ok(match std::fs::read_to_string(args.str("path")?) {
                    Ok(text) => ToolResult::text(format!("READ {} bytes", text.len())),
                    Err(e) => ToolResult::error(format!("denied: {e}")),
                })
            },
        )
        .run()
}
