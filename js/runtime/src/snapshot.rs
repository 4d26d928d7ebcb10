//! Snapshots: the runtime pre-initialised once by `catwalk pack` under wasmtime-wizer, so that instances start
//! from that memory image instead of doing the same work each time. There are two, each its own export:
//!
//! - `wizer-initialize` does everything of a start that is the same for every instance: the engine, the
//!   prelude, the program's bytecode loaded, and its module evaluated. `catwalk pack` bundles a package so that
//!   this evaluation runs its dependencies only; the package's own code is the module's default export, which
//!   each instance calls when it starts. What belongs to one instance is left out and read at that start: the
//!   environment and `process.argv` (read through views filled then; the names read while the snapshot was
//!   taken are reported, so catwalk serves a tenant whose env sets one of them without the snapshot), the
//!   clock's origin, and randomness (`Math.random` is seeded then). A snapshot whose evaluation wanted
//!   randomness, wrote output or made a request is reported as unusable.
//! - `wizer-initialize-started` goes on through the start itself, for the arguments in `CATWALK_JS_ARGV`: the
//!   package's own code runs, and its event loop until it waits (for stdin, or a timer). catwalk serves it only
//!   to a tenant started with those arguments whose env sets none of the names the start read. The program may
//!   read the package's tree and print (what it printed is written again by each instance as it starts); a
//!   snapshot whose start wanted randomness, made a request, touched any other file, or exited (a server that
//!   needs a token in its env, say) is reported as unusable.
//!   The env it read is forgotten (wasi-libc's copy too), so each instance reads its own.
//!
//! wasi-libc's table of preopened dirs is forgotten before either is written, so each instance finds its own.

use std::cell::{Cell, RefCell};

use rquickjs::{CatchResultExt, Function, Object};

use super::{Ready, caught, drain, load, now, prepare, tick, write};

/// The program a snapshot loads: where `catwalk pack` puts the bytecode.
const SNAPSHOT_MAIN: &str = "/app/main.jsc";
/// Turns of the event loop a start may take, while the snapshot is taken, before it waits: a program whose
/// timers never let it wait is not snapshotted through its start.
const MAX_TURNS: usize = 10_000;

/// What an instance made from a snapshot starts from.
pub struct Taken {
    pub ready: Ready,
    /// Whether the program's start is in it (`wizer-initialize-started`).
    pub started: bool,
    /// `__catwalk.now()` when it was taken.
    pub clock: f64,
}

thread_local! {
    /// The engine as a `wizer-initialize*` export left it, in a snapshot; `None` in a runtime started cold.
    static SNAPSHOT: RefCell<Option<Taken>> = const { RefCell::new(None) };
    /// While a snapshot is taken: what the evaluation did that belongs to one instance (see the module docs).
    static SNAPSHOTTING: RefCell<Option<Vec<String>>> = const { RefCell::new(None) };
    /// While a snapshot is taken through the program's start.
    static STARTING: Cell<bool> = const { Cell::new(false) };
    /// What the program printed during a snapshot's start (fd, bytes): each instance writes it as it starts.
    static PRINTED: RefCell<Vec<(i32, Vec<u8>)>> = const { RefCell::new(Vec::new()) };
}

#[allow(unsafe_code)]
// SAFETY (of the declaration): wasi-libc defines these functions with exactly these signatures.
unsafe extern "C" {
    /// wasi-libc: forget the preopened dirs found so far, so the next path lookup finds this instance's.
    fn __wasilibc_reset_preopens();
    /// wasi-libc: forget the environment read so far, so the next read takes this instance's.
    fn __wasilibc_deinitialize_environ();
}

/// The snapshot this instance was made from, if any (taken once, when it starts), with what its start printed
/// written out.
pub fn take() -> Option<Taken> {
    let taken = SNAPSHOT.take()?;
    for (fd, bytes) in PRINTED.take() {
        write(fd, &bytes);
    }
    Some(taken)
}

/// Notes, while a snapshot is being taken, that its evaluation did something no snapshot may hold.
pub fn barrier(what: &str) {
    SNAPSHOTTING.with_borrow_mut(|seen| {
        if let Some(seen) = seen
            && !seen.iter().any(|s| s == what)
        {
            seen.push(what.to_owned());
        }
    });
}

/// Whether a snapshot is being taken through the program's start.
pub fn starting() -> bool {
    STARTING.get()
}

/// Keeps what the program prints during a snapshot's start, for each instance to write; false otherwise.
pub fn hold(fd: i32, bytes: &[u8]) -> bool {
    if starting() {
        PRINTED.with_borrow_mut(|printed| printed.push((fd, bytes.to_vec())));
    }
    starting()
}

/// Takes the snapshot of the program's evaluation, and reports on stdout, in one JSON line, whether it can be
/// used and which environment variables its evaluation read.
#[allow(unsafe_code)]
// SAFETY (of the export): no other symbol of the program is named `wizer-initialize`.
#[unsafe(export_name = "wizer-initialize")]
pub extern "C" fn wizer_initialize() {
    take_snapshot(false);
}

/// Takes the snapshot through the program's start, and reports on it as `wizer-initialize` does.
#[allow(unsafe_code)]
// SAFETY (of the export): no other symbol of the program is named `wizer-initialize-started`.
#[unsafe(export_name = "wizer-initialize-started")]
pub extern "C" fn wizer_initialize_started() {
    take_snapshot(true);
}

fn take_snapshot(through_start: bool) {
    SNAPSHOTTING.set(Some(Vec::new()));
    let prepared = load(SNAPSHOT_MAIN)
        .map_err(|e| format!("cannot read {SNAPSHOT_MAIN}: {e}"))
        .and_then(|program| prepare(SNAPSHOT_MAIN, program, true))
        .and_then(|ready| {
            if through_start {
                start(ready)
            } else {
                Ok(ready)
            }
        });
    let what = if through_start { "start" } else { "evaluation" };
    let report = match prepared {
        Ok(ready) => {
            let env: Vec<String> = ready
                .context
                .with(|ctx| {
                    let host: Object = ctx.globals().get("__catwalk").ok()?;
                    let reads: Function = host.get("snapshotReads").ok()?;
                    reads.call::<_, Vec<String>>(()).ok()
                })
                .unwrap_or_default();
            let barriers = SNAPSHOTTING.take().unwrap_or_default();
            if barriers.is_empty() {
                // The evaluation's garbage is collected here, once, rather than in every instance.
                ready.runtime.run_gc();
                // Instances allocate on pages of their own, not into the snapshot's shared ones.
                ready.context.with(|ctx| super::heap::seal(&ctx));
                let heap = super::heap::allocated(&ready.runtime);
                SNAPSHOT.set(Some(Taken {
                    ready: Ready { heap, ..ready },
                    started: through_start,
                    clock: now(),
                }));
            }
            let reason = format!("its {what} used {}", barriers.join(", "));
            report_line(barriers.is_empty(), &reason, &env)
        }
        Err(reason) => {
            // What stopped it may be what no snapshot may hold (an exit, say): that is the reason.
            let barriers = SNAPSHOTTING.take().unwrap_or_default();
            let reason = match barriers.is_empty() {
                true => format!("it failed: {reason}"),
                false => format!("its {what} used {}", barriers.join(", ")),
            };
            report_line(false, &reason, &[])
        }
    };
    SNAPSHOTTING.set(None);
    STARTING.set(false);
    write(1, report.as_bytes());
    #[allow(unsafe_code)]
    // SAFETY: wasi-libc functions with no arguments, called when no path lookup or env read is in progress.
    unsafe {
        __wasilibc_reset_preopens();
        __wasilibc_deinitialize_environ();
    }
}

/// Runs the program's start (`__catwalk.startSnapshot`) and its event loop until it would wait.
fn start(ready: Ready) -> Result<Ready, String> {
    STARTING.set(true);
    ready.context.with(|ctx| -> Result<(), String> {
        let host: Object = ctx.globals().get("__catwalk").map_err(|e| e.to_string())?;
        let start: Function = host.get("startSnapshot").map_err(|e| e.to_string())?;
        start
            .call::<_, ()>(())
            .catch(&ctx)
            .map_err(|e| format!("uncaught: {}", caught(&e)))
    })?;
    for _ in 0..MAX_TURNS {
        drain(&ready.runtime, &ready.rejections)?;
        let state = tick(&ready.context)?;
        if !ready.runtime.is_job_pending() && state.next != 0.0 {
            return Ok(ready);
        }
    }
    barrier("timers that never let it wait");
    Ok(ready)
}

/// The snapshot's report: `{"catwalk-snapshot": {"usable": …, "reason": …, "env": […]}}`.
fn report_line(usable: bool, reason: &str, env: &[String]) -> String {
    let quote = |text: &str| {
        let mut out = String::from("\"");
        for c in text.chars() {
            match c {
                '"' => out.push_str("\\\""),
                '\\' => out.push_str("\\\\"),
                c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
                c => out.push(c),
            }
        }
        out.push('"');
        out
    };
    let env: Vec<String> = env.iter().map(|name| quote(name)).collect();
    format!(
        "{{\"catwalk-snapshot\":{{\"usable\":{usable},\"reason\":{},\"env\":[{}]}}}}\n",
        quote(reason),
        env.join(",")
    )
}
