//! A hostile guest: recurses without end. Each tool is one attempt, and answers with what it managed to do.
//!
//!   cargo build --release --target wasm32-wasip1 -p catwalk-hostile-recursion
use catwalk_guest::{Server, Tool, ToolResult};

fn main() -> std::io::Result<()> {
    Server::new("catwalk-hostile-recursion", "0.1.0")
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
