//! A hostile guest: writes stdout without a newline, forever. Each tool is one attempt, and answers with what it managed to do.
//!
//!   cargo build --release --target wasm32-wasip1 -p catwalk-hostile-flood
use catwalk_guest::{Server, Tool, ToolResult};

fn main() -> std::io::Result<()> {
    Server::new("catwalk-hostile-flood", "0.1.0")
        .tool(
            Tool::new("flood", "Writes stdout without a newline, forever"),
            |_, _| {
                use std::io::Write;
                let chunk = vec![b'x'; 1 << 16];
                let mut out = std::io::stdout();
                loop {
                    if out.write_all(&chunk).is_err() {
                        return Ok(ToolResult::error("stdout closed"));
                    }
                }
            },
        )
        .run()
}
