//! A hostile guest: allocates until refused. Each tool is one attempt, and answers with what it managed to do.
//!
//!   cargo build --release --target wasm32-wasip1 -p catwalk-hostile-memory
use catwalk_guest::{Server, Tool, ToolResult};

fn main() -> std::io::Result<()> {
    Server::new("catwalk-hostile-memory", "0.1.0")
        .tool(
            Tool::new("alloc", "Allocates MiB blocks").param("mib", "number", "m", true),
            |args, _| {
                let mib = args.f64_or("mib", 1024.0) as usize;
                let mut hoard: Vec<Vec<u8>> = Vec::new();
                for _ in 0..mib {
                    hoard.push(vec![1u8; 1 << 20]);
                }
                Ok(ToolResult::text(format!("ALLOCATED {} MiB", hoard.len())))
            },
        )
        .run()
}
