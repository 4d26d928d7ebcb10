//! The engine's heap, as a snapshot leaves it to the instances made from it.
//!
//! QuickJS serves small allocations (up to 512 bytes) from 4 KiB arenas, one size class to an arena, and reuses the
//! free blocks of arenas that are partly used before it makes a new one. In a snapshot those arenas are pages every
//! instance shares copy-on-write: an instance that allocated into them would copy each such page into its own
//! memory, one page for every block it took. [`seal`] takes every free block of the snapshot's arenas before the
//! snapshot is written, so an instance's allocations go to arenas of its own, on pages it writes anyway, and the
//! snapshot's pages stay shared. The blocks taken are never used or freed; they cost the snapshot's file, not the
//! instances.

use rquickjs::{Ctx, Runtime, qjs};

/// QuickJS's small-block size classes, header included (`arena_block_sizes` in quickjs.c).
const CLASSES: [usize; 31] = [
    16, 24, 32, 40, 48, 56, 64, 72, 80, 88, 96, 104, 112, 120, 128, 144, 160, 176, 192, 208, 224,
    240, 256, 288, 320, 352, 384, 416, 448, 480, 512,
];
/// The header before every block: its index in its arena, then its size class, GC type and reference count.
const HEADER: usize = 8;
/// An arena's header before its blocks (two list links, then the counts), on wasm32.
const ARENA_HEADER: usize = 24;
/// Where an arena's count of used blocks sits in its header.
const USED_AT: usize = 18;
/// Enough for any heap a snapshot holds (a 64 MiB heap of 16-byte blocks); the loop ends long before.
const MAX_BLOCKS: usize = 4 << 20;

/// Bytes the engine has allocated. It walks every object of the heap: measured once, when the engine is made ready
/// (for a snapshot, when it is taken), not at each start.
pub fn allocated(runtime: &Runtime) -> usize {
    usize::try_from(runtime.memory_usage().malloc_size).unwrap_or(0)
}

/// Takes every free block of the heap's arenas (see the module docs): how many it took. Takes none if the engine's
/// allocator is not laid out as this module expects.
pub fn seal(ctx: &Ctx<'_>) -> usize {
    #[allow(unsafe_code)]
    // SAFETY: the runtime outlives the call; every pointer read is within a block the allocator just returned (its
    // header, 8 bytes before it) or within that block's arena header, found from the block's index as the
    // allocator finds it, and only after the block's reported size confirms the layout.
    unsafe {
        let rt = qjs::JS_GetRuntime(ctx.as_raw().as_ptr());
        let mut taken = 0;
        for size in CLASSES {
            loop {
                if taken >= MAX_BLOCKS {
                    return taken;
                }
                let block = qjs::js_malloc_rt(rt, (size - HEADER) as _).cast::<u8>();
                if block.is_null() {
                    return taken;
                }
                if qjs::js_malloc_usable_size_rt(rt, block.cast()) as usize != size - HEADER {
                    // Not the layout this module knows: give the block back and take nothing more.
                    qjs::js_free_rt(rt, block.cast());
                    return taken;
                }
                let index = usize::from(block.sub(HEADER).cast::<u16>().read());
                let arena = block.sub(HEADER + size * index + ARENA_HEADER);
                let used = arena.add(USED_AT).cast::<u16>().read();
                if index == 0 && used == 1 {
                    // A new arena: every free block of this class is taken. Freeing its one block frees it.
                    qjs::js_free_rt(rt, block.cast());
                    break;
                }
                taken += 1;
            }
        }
        taken
    }
}
