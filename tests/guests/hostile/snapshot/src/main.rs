//! A hostile guest for snapshots: `wizer-initialize` fills a 1 MiB block, which the snapshot then holds as part
//! of every instance's initial memory image (mapped copy-on-write from one file). `plant` writes a canary into
//! that block and into fresh heap; `search` reads all of the instance's linear memory for it. An instance that
//! found another's canary, or a block that is not as the snapshot left it, would be a leak across instances.
//!
//! The canary is kept XOR 0x5a, and `search` compares byte by byte without making the needle, so the only copy
//! of it in memory is the one `plant` wrote (the request that names it holds it plain).
//!
//!   cargo build --release --target wasm32-wasip1 -p catwalk-hostile-snapshot
#![allow(unsafe_code)]

use std::cell::RefCell;

use catwalk_guest::{Server, Tool, ToolResult};

/// What the snapshot's block is filled with.
const FILL: u8 = 0xab;
const BLOCK: usize = 1 << 20;
const MASK: u8 = 0x5a;

thread_local! {
    /// The block `wizer-initialize` fills: part of the snapshot.
    static BLOCK_MEMORY: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
    /// Heap the canary was planted in, kept until the instance ends.
    static PLANTED: RefCell<Vec<Vec<u8>>> = const { RefCell::new(Vec::new()) };
}

// SAFETY (of the export): no other symbol of the program is named `wizer-initialize`.
#[unsafe(export_name = "wizer-initialize")]
pub extern "C" fn wizer_initialize() {
    BLOCK_MEMORY.with_borrow_mut(|block| *block = vec![FILL; BLOCK]);
}

fn masked(canary: &str) -> Vec<u8> {
    canary.bytes().map(|b| b ^ MASK).collect()
}

/// The size of linear memory (none where this is built for the host, as the workspace's lints do).
fn memory_bytes() -> usize {
    #[cfg(target_arch = "wasm32")]
    return core::arch::wasm32::memory_size(0) * 65536;
    #[cfg(not(target_arch = "wasm32"))]
    return 0;
}

/// Where in linear memory `canary`, masked, is found (it is compared byte by byte, never copied).
fn find(canary: &[u8]) -> Option<usize> {
    let size = memory_bytes();
    let first = *canary.first()? ^ MASK;
    // Address 0 is never read: it is the null pointer.
    (1..size.saturating_sub(canary.len())).find(|&at| {
        // SAFETY: every address below the memory's size is readable in wasm; reads are volatile so none is
        // optimised away, and nothing is written.
        let byte = |i: usize| unsafe { core::ptr::read_volatile((at + i) as *const u8) };
        byte(0) == first && canary.iter().enumerate().all(|(i, b)| byte(i) == b ^ MASK)
    })
}

fn main() -> std::io::Result<()> {
    Server::new("catwalk-hostile-snapshot", "0.1.0")
        .tool(
            Tool::new(
                "plant",
                "Writes a canary into the snapshot's block and into fresh heap",
            )
            .param("canary", "string", "what to plant", true),
            |args, _| {
                let canary = masked(args.str("canary")?);
                BLOCK_MEMORY.with_borrow_mut(|block| {
                    // One copy in each of a few pages of the block, so every page it touches is the instance's own.
                    for page in [0, 7, 63, 200, 255] {
                        let at = page * 4096 + 100;
                        if at + canary.len() <= block.len() {
                            block[at..at + canary.len()].copy_from_slice(&canary);
                        }
                    }
                });
                PLANTED.with_borrow_mut(|planted| planted.push(canary));
                Ok(ToolResult::text("PLANTED"))
            },
        )
        .tool(
            Tool::new(
                "search",
                "Reads all of linear memory for a canary, and checks the snapshot's block",
            )
            .param("canary", "string", "what to look for", true),
            |args, _| {
                let canary: Vec<u8> = args.str("canary")?.bytes().collect();
                let found = find(&canary);
                let block = BLOCK_MEMORY.with_borrow(|block| {
                    match (block.len(), block.iter().filter(|b| **b != FILL).count()) {
                        (0, _) => "NO BLOCK".to_owned(),
                        (_, 0) => "BLOCK AS SNAPSHOT".to_owned(),
                        (_, changed) => format!("BLOCK CHANGED ({changed} bytes)"),
                    }
                });
                Ok(ToolResult::text(match found {
                    Some(at) => format!("FOUND at {at}; {block}"),
                    None => format!("CLEAN; {block}"),
                }))
            },
        )
        .run()
}
