//! A files server that can only see the directory catwalk grants it (mounted at `/data` in the guest).
//!
//!   cargo build --release --target wasm32-wasip1 -p catwalk-guest --example files
//!   catwalk serve --wasm target/wasm32-wasip1/release/examples/files.wasm --dir ./notes::/data
//!   (add `:rw` to the grant to allow `write`)
use std::path::{Component, Path, PathBuf};

use catwalk_guest::{Error, Server, Tool, ToolResult};

const ROOT: &str = "/data";

/// A path under the granted directory; `..` and absolute paths are refused here too (the sandbox refuses
/// them anyway).
fn resolve(relative: &str) -> catwalk_guest::Result<PathBuf> {
    let path = Path::new(relative);
    if path
        .components()
        .any(|c| !matches!(c, Component::Normal(_) | Component::CurDir))
    {
        return Err(Error::invalid_params(
            "paths are relative to the granted directory, without ..",
        ));
    }
    Ok(Path::new(ROOT).join(path))
}

fn main() -> std::io::Result<()> {
    Server::new("catwalk-files", env!("CARGO_PKG_VERSION"))
        .tool(
            Tool::new("list", "Lists a directory").param(
                "path",
                "string",
                "Directory, relative",
                false,
            ),
            |args, _cx| {
                let dir = resolve(args.get("path").and_then(|v| v.as_str()).unwrap_or("."))?;
                let mut names: Vec<String> = match std::fs::read_dir(&dir) {
                    Ok(entries) => entries
                        .filter_map(|e| e.ok())
                        .map(|e| e.file_name().to_string_lossy().into())
                        .collect(),
                    Err(e) => {
                        return Ok(ToolResult::error(format!(
                            "cannot list {}: {e}",
                            dir.display()
                        )));
                    }
                };
                names.sort();
                Ok(ToolResult::text(names.join("\n")))
            },
        )
        .tool(
            Tool::new("read", "Reads a text file").param("path", "string", "File, relative", true),
            |args, _cx| match std::fs::read_to_string(resolve(args.str("path")?)?) {
                Ok(text) => Ok(ToolResult::text(text)),
                Err(e) => Ok(ToolResult::error(format!("cannot read: {e}"))),
            },
        )
        .tool(
            Tool::new("write", "Writes a text file (needs a writable grant)")
                .param("path", "string", "File, relative", true)
                .param("text", "string", "Content", true),
            |args, _cx| match std::fs::write(resolve(args.str("path")?)?, args.str("text")?) {
                Ok(()) => Ok(ToolResult::text("written")),
                Err(e) => Ok(ToolResult::error(format!("cannot write: {e}"))),
            },
        )
        .run()
}
