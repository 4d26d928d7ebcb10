//! A hostile guest: loops forever on request. Each tool is one attempt, and answers with what it managed to do.
//!
//!   cargo build --release --target wasm32-wasip1 -p catwalk-hostile-spin
use catwalk_guest::{Server, Tool, ToolResult};

fn main() -> std::io::Result<()> {
    Server::new("catwalk-hostile-spin", "0.1.0")
        .tool(
            Tool::new("echo", "Answers, to show the guest is alive")
                .param("message", "string", "m", true),
            |args, _| Ok(ToolResult::text(args.str("message")?)),
        )
        .tool(Tool::new("spin", "Loops forever"), |_, _| {
            let mut n: u64 = 0;
            loop {
                n = std::hint::black_box(n.wrapping_add(1));
            }
        })
        .run()
}
