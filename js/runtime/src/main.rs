//! catwalk-js: a JavaScript runtime for `wasm32-wasip1`, so that an npm MCP server, bundled to one script, runs
//! inside catwalk's WASI sandbox under the same grants and limits as any guest.
//!
//! The engine is QuickJS-ng (through `rquickjs`). This crate adds what a Node program expects of its process:
//! - an event loop: microtasks, then due timers, then a wait for stdin *or* the next timer, whichever is first (so
//!   timers fire while the server waits for a request); the program ends when nothing is left to wait for: no
//!   pending job, no referenced timer, no one listening on stdin (Node's rule);
//! - the globals of `prelude.js`: `process` (stdin, stdout, stderr, env, argv, exit, nextTick, hrtime), timers,
//!   `console`, `TextEncoder`/`TextDecoder`, `crypto.getRandomValues`/`randomUUID` (WASI randomness),
//!   `structuredClone`, `queueMicrotask`;
//! - exit codes: `process.exit(n)`, `process.exitCode`, 1 for an uncaught exception or an unhandled rejection.
//!
//! The program is the path in `CATWALK_JS_MAIN`, or the first of `/app/main.jsc`, `/app/main.mjs` and
//! `/app/main.js` that exists. By its extension it is QuickJS bytecode of a module (`.jsc`, what `catwalk pack`
//! produces), an ES module (`.mjs`), or a script (anything else). `process.argv` is the JSON array in
//! `CATWALK_JS_ARGV` when catwalk gives one (a packed server's bin and arguments, as Node would have them).
//!
//! With `CATWALK_JS_COMPILE=<file>` the runtime does not run the program: it compiles the module to bytecode,
//! writes it to that file and exits (`catwalk pack` does this once per package, so no session parses it).
//!
//! **Snapshots** (`catwalk pack` takes them at pack time with wasmtime-wizer): see `snapshot.rs`.

mod fs;
mod heap;
mod input;
mod intl;
mod net;
mod snapshot;
mod whatwg;
mod zlib;

use std::cell::{Cell, RefCell};
use std::io::Write;
use std::process::ExitCode;
use std::rc::Rc;
use std::time::{Duration, Instant};

use rquickjs::function::Opt;
use rquickjs::{
    CatchResultExt, CaughtError, Context, Ctx, Function, Module, Object, Runtime, TypedArray,
};

use input::{Input, Stdin};
use snapshot::barrier;

const PRELUDE: &str = include_str!("prelude.js");
/// Where the program is looked for when `CATWALK_JS_MAIN` names none, in this order.
const DEFAULT_MAINS: [&str; 3] = ["/app/main.jsc", "/app/main.mjs", "/app/main.js"];

/// The engine ready to start a program: the prelude run and the program's module evaluated.
struct Ready {
    runtime: Runtime,
    context: Context,
    rejections: Rejections,
    /// Bytes the engine had allocated when it was made ready. Measured then: measuring walks every object of the
    /// heap, which in an instance started from a snapshot takes milliseconds and reads every page.
    heap: usize,
}

thread_local! {
    /// Where `__catwalk.now()` counts from, and what it counted at that moment (an instance made from a snapshot
    /// goes on from the snapshot's count, so the timers it holds keep their delays).
    static CLOCK: Cell<Option<(Instant, f64)>> = const { Cell::new(None) };
}

/// Milliseconds on `__catwalk.now()`'s clock.
fn now() -> f64 {
    CLOCK.get().map_or(0.0, |(origin, at)| {
        at + origin.elapsed().as_secs_f64() * 1e3
    })
}

/// How much the heap may grow during a start before the engine collects cycles.
const START_ALLOWANCE: usize = 16 << 20;

/// What the runtime runs.
enum Program {
    Script(String),
    Module(String),
    /// A module compiled to QuickJS bytecode by this same runtime.
    Bytecode(Vec<u8>),
}

fn main() -> ExitCode {
    if let Some(taken) = snapshot::take() {
        CLOCK.set(Some((Instant::now(), taken.clock)));
        return match run(taken.ready, taken.started) {
            Ok(code) => ExitCode::from(code),
            Err(message) => {
                eprintln!("catwalk-js: {message}");
                ExitCode::from(1)
            }
        };
    }
    let main = std::env::var("CATWALK_JS_MAIN").unwrap_or_else(|_| {
        DEFAULT_MAINS
            .iter()
            .find(|path| std::path::Path::new(path).exists())
            .unwrap_or(&DEFAULT_MAINS[2])
            .to_string()
    });
    let program = match load(&main) {
        Ok(program) => program,
        Err(error) => {
            eprintln!("catwalk-js: cannot read {main}: {error}");
            return ExitCode::from(1);
        }
    };
    if let Ok(out) = std::env::var("CATWALK_JS_COMPILE") {
        return match compile(&main, program, &out) {
            Ok(()) => ExitCode::SUCCESS,
            Err(message) => {
                eprintln!("catwalk-js: cannot compile {main}: {message}");
                ExitCode::from(1)
            }
        };
    }
    match prepare(&main, program, false).and_then(|ready| run(ready, false)) {
        Ok(code) => ExitCode::from(code),
        Err(message) => {
            eprintln!("catwalk-js: {message}");
            ExitCode::from(1)
        }
    }
}

/// Promise rejections with no handler yet: reported (and fatal) if still unhandled once the microtasks drain.
type Rejections = Rc<RefCell<Vec<String>>>;

fn load(path: &str) -> std::io::Result<Program> {
    Ok(if path.ends_with(".jsc") {
        Program::Bytecode(std::fs::read(path)?)
    } else if path.ends_with(".mjs") {
        Program::Module(std::fs::read_to_string(path)?)
    } else {
        Program::Script(std::fs::read_to_string(path)?)
    })
}

/// Compiles a module to bytecode in `out`, without running it.
fn compile(name: &str, program: Program, out: &str) -> Result<(), String> {
    let Program::Module(source) = program else {
        return Err("only an ES module (.mjs) is compiled".into());
    };
    let runtime = Runtime::new().map_err(|e| e.to_string())?;
    let context = Context::full(&runtime).map_err(|e| e.to_string())?;
    let bytecode = context.with(|ctx| {
        Module::declare(ctx.clone(), name, source)
            .catch(&ctx)
            .map_err(|e| caught(&e))?
            // Line numbers stay, for stack traces; the source text does not (it would double the size).
            .write(rquickjs::WriteOptions {
                strip_source: true,
                ..Default::default()
            })
            .map_err(|e| e.to_string())
    })?;
    std::fs::write(out, bytecode).map_err(|e| format!("writing {out}: {e}"))
}

/// The engine with the prelude run and `program`'s module evaluated (for a snapshot, with the prelude told so).
fn prepare(name: &str, program: Program, snapshot: bool) -> Result<Ready, String> {
    let runtime = Runtime::new().map_err(|e| e.to_string())?;
    let context = Context::full(&runtime).map_err(|e| e.to_string())?;
    let rejections: Rejections = Rc::default();
    let pending = rejections.clone();
    runtime.set_host_promise_rejection_tracker(Some(Box::new(
        move |ctx, _promise, reason, handled| {
            let mut pending = pending.borrow_mut();
            if handled {
                pending.pop();
            } else {
                pending.push(describe(&ctx, reason));
            }
        },
    )));
    context.with(|ctx| -> Result<(), String> {
        install(&ctx, snapshot).map_err(|e| e.to_string())?;
        ctx.eval::<(), _>(PRELUDE)
            .catch(&ctx)
            .map_err(|e| format!("the prelude failed: {e}"))?;
        // A module's evaluation is a promise: an error in it is a rejection nobody handles, which the loop
        // reports as fatal once the microtasks drain.
        match program {
            Program::Script(source) => {
                let mut options = rquickjs::context::EvalOptions::default();
                options.strict = false;
                options.filename = Some(name.to_owned());
                ctx.eval_with_options::<(), _>(source, options)
                    .catch(&ctx)
                    .map_err(|e| format!("uncaught: {}", caught(&e)))
            }
            Program::Module(source) => Module::evaluate(ctx.clone(), name, source)
                .catch(&ctx)
                .map(drop)
                .map_err(|e| format!("uncaught: {}", caught(&e))),
            Program::Bytecode(bytes) => {
                // QuickJS keeps pointing into the bytes it loaded a module from: they live as long as the
                // program.
                let bytes: &'static [u8] = Vec::leak(bytes);
                #[allow(unsafe_code)]
                // SAFETY: the bytes were written by `compile` in this same runtime build (`catwalk pack`
                // produces them beside the runtime they were made with), and they are never freed.
                let module = unsafe { Module::load(ctx.clone(), bytes) };
                let (module, _) = module
                    .and_then(Module::eval)
                    .catch(&ctx)
                    .map_err(|e| format!("uncaught: {}", caught(&e)))?;
                // The package's own code, when `catwalk pack` bundled it apart from its dependencies: run at
                // the start.
                let main: Option<Function> =
                    module.namespace().and_then(|ns| ns.get("default")).ok();
                let host: Object = ctx.globals().get("__catwalk").map_err(|e| e.to_string())?;
                host.set("main", main).map_err(|e| e.to_string())
            }
        }
    })?;
    drain(&runtime, &rejections)?;
    Ok(Ready {
        heap: heap::allocated(&runtime),
        runtime,
        context,
        rejections,
    })
}

/// Starts the program (this instance's env, argv, clock and randomness, then the package's own code; `started`:
/// a snapshot taken through the start, which only takes this instance's env, clock and randomness) and runs it
/// to the end of its event loop: the exit code.
fn run(ready: Ready, started: bool) -> Result<u8, String> {
    let Ready {
        runtime,
        context,
        rejections,
        heap,
    } = ready;
    // No collection during the start: a collection writes to every object of the heap, which would copy
    // every page of the snapshot's memory into this instance (and take milliseconds). Reference counting
    // frees the start's garbage as it goes; cycles wait for the first collection after it.
    runtime.set_gc_threshold(heap + START_ALLOWANCE);
    context.with(|ctx| -> Result<(), String> {
        let host: Object = ctx.globals().get("__catwalk").map_err(|e| e.to_string())?;
        let start: Function = host
            .get(if started { "resume" } else { "start" })
            .map_err(|e| e.to_string())?;
        start
            .call::<_, ()>(())
            .catch(&ctx)
            .map_err(|e| format!("uncaught: {}", caught(&e)))
    })?;
    let mut stdin = Stdin::new();
    loop {
        drain(&runtime, &rejections)?;
        let loop_state = tick(&context)?;
        if runtime.is_job_pending() || loop_state.next == 0.0 {
            continue;
        }
        // Node's rule: the program ends when no one listens on stdin and nothing referenced is left (timers,
        // requests in flight).
        if !loop_state.listening && loop_state.referenced == 0 {
            break;
        }
        let wait = (loop_state.next > 0.0).then(|| Duration::from_secs_f64(loop_state.next / 1e3));
        let input = stdin
            .next(loop_state.listening, loop_state.open > 0, wait)
            .map_err(|e| format!("stdin: {e}"))?;
        if input == Input::Timeout {
            continue;
        }
        let progress = input == Input::Http;
        context.with(|ctx| -> Result<(), String> {
            let host: Object = ctx.globals().get("__catwalk").map_err(|e| e.to_string())?;
            if progress {
                let poll: Function = host.get("httpProgress").map_err(|e| e.to_string())?;
                return poll
                    .call::<_, ()>(())
                    .catch(&ctx)
                    .map_err(|e| format!("uncaught: {}", caught(&e)));
            }
            let deliver: Function = host.get("stdin").map_err(|e| e.to_string())?;
            let chunk = match input {
                Input::Data(bytes) => {
                    Some(TypedArray::<u8>::new(ctx.clone(), bytes).map_err(|e| e.to_string())?)
                }
                _ => None,
            };
            deliver
                .call::<_, ()>((chunk,))
                .catch(&ctx)
                .map_err(|e| format!("uncaught: {}", caught(&e)))
        })?;
    }
    context.with(|ctx| {
        let process: Object = ctx.globals().get("process").map_err(|e| e.to_string())?;
        let code: Option<i32> = process.get("exitCode").unwrap_or(None);
        Ok(code.map_or(0, |c| c.clamp(0, 255) as u8))
    })
}

/// Where the event loop stands after its due timers ran (`__catwalk.tick`).
struct LoopState {
    /// Milliseconds to the next timer (0: due now; negative: none).
    next: f64,
    /// Referenced timers and requests in flight.
    referenced: u32,
    /// Whether someone listens on stdin.
    listening: bool,
    /// Requests in flight.
    open: u32,
}

/// Runs the timers that are due.
fn tick(context: &Context) -> Result<LoopState, String> {
    context.with(|ctx| {
        let host: Object = ctx.globals().get("__catwalk").map_err(|e| e.to_string())?;
        let tick: Function = host.get("tick").map_err(|e| e.to_string())?;
        let state: rquickjs::Array = tick
            .call(())
            .catch(&ctx)
            .map_err(|e| format!("uncaught: {}", caught(&e)))?;
        let get = |i| state.get::<rquickjs::Value>(i).map_err(|e| e.to_string());
        let number = |i| get(i).map(|v| v.as_number().unwrap_or(0.0));
        Ok(LoopState {
            next: number(0)?,
            referenced: number(1)? as u32,
            listening: get(2)?.as_bool().unwrap_or(false),
            open: number(3)? as u32,
        })
    })
}

/// Runs every pending job (microtask); an exception in one, or a rejection still unhandled after, is fatal.
fn drain(runtime: &Runtime, rejections: &Rejections) -> Result<(), String> {
    loop {
        match runtime.execute_pending_job() {
            Ok(true) => {}
            Ok(false) => break,
            Err(job) => {
                let message = job.0.with(|ctx| describe(&ctx, ctx.catch()));
                return Err(format!("uncaught: {message}"));
            }
        }
    }
    match rejections.borrow_mut().drain(..).next() {
        Some(reason) => Err(format!("unhandled promise rejection: {reason}")),
        None => Ok(()),
    }
}

/// A thrown value as Node prints it: an error's stack (with its message), or the value itself.
fn describe<'js>(ctx: &Ctx<'js>, value: rquickjs::Value<'js>) -> String {
    if let Some(error) = value.as_object() {
        let stack: Option<String> = error.get("stack").ok();
        let message: Option<String> = error.get("message").ok();
        if let Some(message) = message {
            return format!("{message}\n{}", stack.unwrap_or_default());
        }
    }
    ctx.json_stringify(value)
        .ok()
        .flatten()
        .and_then(|s| s.to_string().ok())
        .unwrap_or_else(|| "a value that cannot be shown".to_owned())
}

fn caught(error: &CaughtError<'_>) -> String {
    match error {
        CaughtError::Exception(exception) => format!(
            "{}\n{}",
            exception.message().unwrap_or_default(),
            exception.stack().unwrap_or_default()
        ),
        other => other.to_string(),
    }
}

/// The host functions the prelude builds on, as `globalThis.__catwalk`.
fn install(ctx: &Ctx<'_>, snapshot: bool) -> rquickjs::Result<()> {
    let host = Object::new(ctx.clone())?;
    CLOCK.set(Some((Instant::now(), 0.0)));
    host.set("now", Function::new(ctx.clone(), now)?)?;
    host.set("snapshotting", snapshot)?;
    host.set(
        "barrier",
        Function::new(ctx.clone(), |what: String| barrier(&what))?,
    )?;
    host.set(
        "write",
        Function::new(ctx.clone(), |fd: i32, text: String| {
            write(fd, text.as_bytes())
        })?,
    )?;
    host.set("writeBytes", Function::new(ctx.clone(), write_bytes)?)?;
    host.set("random", Function::new(ctx.clone(), random)?)?;
    host.set("digest", Function::new(ctx.clone(), digest)?)?;
    host.set("env", Function::new(ctx.clone(), env)?)?;
    fs::install(ctx, &host)?;
    net::install(ctx, &host)?;
    whatwg::install(ctx, &host)?;
    intl::install(ctx, &host)?;
    zlib::install(ctx, &host)?;
    host.set(
        "exit",
        Function::new(ctx.clone(), |ctx: Ctx<'_>, code: Opt<i32>| {
            let code = code.0.unwrap_or(0);
            // A start that exits while its snapshot is taken is not snapshotted: it stops there, and says so.
            if snapshot::starting() {
                barrier(&format!("process.exit({code})"));
                return Err::<(), _>(rquickjs::Exception::throw_internal(
                    &ctx,
                    "the program exited while its snapshot was taken",
                ));
            }
            let _ = std::io::stdout().flush();
            std::process::exit(code)
        })?,
    )?;
    ctx.globals().set("__catwalk", host)
}

fn write_bytes(fd: i32, bytes: TypedArray<'_, u8>) -> bool {
    #[allow(unsafe_code)]
    // SAFETY: the bytes are copied out before any JavaScript runs again, so the array cannot be detached or
    // resized while they are borrowed.
    let copied = unsafe { bytes.as_bytes() }.map(<[u8]>::to_vec);
    write(fd, &copied.unwrap_or_default())
}

/// `len` random bytes (at most 64 KiB, as Web Crypto allows), from WASI's random source.
fn random<'js>(ctx: Ctx<'js>, len: usize) -> rquickjs::Result<TypedArray<'js, u8>> {
    barrier("randomness");
    let mut bytes = vec![0; len.min(65_536)];
    getrandom::fill(&mut bytes)
        .map_err(|e| rquickjs::Exception::throw_internal(&ctx, &format!("no randomness: {e}")))?;
    TypedArray::new(ctx, bytes)
}

/// The digest of `bytes` by `algorithm` (Node's names: md5, sha1, sha224, sha256, sha384, sha512); `null` for
/// an algorithm not offered.
fn digest<'js>(
    ctx: Ctx<'js>,
    algorithm: String,
    bytes: TypedArray<'js, u8>,
) -> rquickjs::Result<Option<TypedArray<'js, u8>>> {
    use sha2::Digest;
    #[allow(unsafe_code)]
    // SAFETY: hashed before any JavaScript runs again, so the array cannot be detached or resized meanwhile.
    let input = unsafe { bytes.as_bytes() }.unwrap_or_default();
    let out: Vec<u8> = match algorithm.to_ascii_lowercase().replace('-', "").as_str() {
        "md5" => md5::Md5::digest(input).to_vec(),
        "sha1" => sha1::Sha1::digest(input).to_vec(),
        "sha224" => sha2::Sha224::digest(input).to_vec(),
        "sha256" => sha2::Sha256::digest(input).to_vec(),
        "sha384" => sha2::Sha384::digest(input).to_vec(),
        "sha512" => sha2::Sha512::digest(input).to_vec(),
        _ => return Ok(None),
    };
    TypedArray::new(ctx, out).map(Some)
}

/// The environment the sandbox gave: only the variables granted.
fn env<'js>(ctx: Ctx<'js>) -> rquickjs::Result<Object<'js>> {
    // A snapshot taken through the start reads the env it is for, and forgets it after (snapshot.rs).
    if !snapshot::starting() {
        barrier("the environment");
    }
    let env = Object::new(ctx)?;
    for (name, value) in std::env::vars() {
        env.set(name, value)?;
    }
    Ok(env)
}

/// Writes to stdout (1) or stderr (2) at once: nothing is held back when the program exits.
fn write(fd: i32, bytes: &[u8]) -> bool {
    if snapshot::hold(fd, bytes) {
        return true;
    }
    barrier("output");
    let written = match fd {
        2 => {
            let mut stderr = std::io::stderr().lock();
            stderr.write_all(bytes).and_then(|()| stderr.flush())
        }
        _ => {
            let mut stdout = std::io::stdout().lock();
            stdout.write_all(bytes).and_then(|()| stdout.flush())
        }
    };
    written.is_ok()
}
