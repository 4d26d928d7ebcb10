//! A hostile guest: reads environment variables it was not granted. Each tool is one attempt, and answers with what it managed to do.
//!
//!   cargo build --release --target wasm32-wasip1 -p catwalk-hostile-env
use catwalk_guest::{Server, Tool, ToolResult};

fn main() -> std::io::Result<()> {
    Server::new("catwalk-hostile-env", "0.1.0")
        .tool(
            Tool::new("env", "Reads an environment variable").param("name", "string", "n", true),
            |args, _| {
                Ok(match std::env::var(args.str("name")?) {
                    Ok(value) => ToolResult::text(format!("SET {value}")),
                    Err(_) => ToolResult::error("absent"),
                })
            },
        )
        .run()
}
