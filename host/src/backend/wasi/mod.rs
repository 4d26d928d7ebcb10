//! The WASI backend: MCP servers compiled to `wasm32-wasip1` modules or `wasm32-wasip2` components, run inside
//! catwalk under wasmtime, deny-by-default.
//!
//! Three scopes, kept apart:
//! - per process, [`WasiRuntime`]: the `Engine` (async, epoch interruption from a ticker thread, pooling
//!   allocator with explicit totals), the linkers, and the compile cache (content-addressed, on disk);
//! - per tenant, [`WasiServer`]: the validated [`GuestPolicy`] and the pre-instantiated module or component
//!   (imports resolved once, so unknown imports are refused at load, not at the first session);
//! - per session, [`WasiServer::launch`]: one `Store` with its WASI context, memory limits, CPU budget and
//!   stdio, running on a tokio task as an [`Instance`] like any other backend's.

mod cpu;
mod http;
mod outgoing;
pub mod policy;
mod snapshot;
mod stdio;

use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use prometheus_client::metrics::gauge::Gauge;
use sha2::{Digest, Sha256};
use tokio::sync::{Semaphore, mpsc};
use tokio_util::sync::CancellationToken;
use wasmtime::component::{Component, ResourceTable};
use wasmtime::{
    Config, Engine, InstanceAllocationStrategy, InstancePre, Linker, Module,
    PoolingAllocationConfig, Store, StoreLimits, StoreLimitsBuilder, Trap, UpdateDeadline,
};
use wasmtime_wasi::p1::WasiP1Ctx;
use wasmtime_wasi::p2::bindings::CommandPre;
use wasmtime_wasi::{I32Exit, WasiCtx, WasiCtxView, WasiView};
use wasmtime_wasi_http::{WasiHttpCtx, WasiHttpCtxView, WasiHttpView};

use super::spares::Spares;
use super::{Instance, LaunchError, Redactor, ServerEvent, Tag};
use cpu::{Budget, Lanes};
pub use policy::GuestPolicy;
pub use snapshot::Snapshot;
use stdio::{GuestStderr, GuestStdin, GuestStdout};

/// Why a module cannot be served.
#[derive(Debug, thiserror::Error)]
pub enum WasiError {
    #[error("{0}: not a WebAssembly module or component")]
    NotWasm(String),
    #[error("{what}: {source:#}")]
    Wasmtime {
        what: String,
        source: wasmtime::Error,
    },
    #[error("{what}: {source}")]
    Io {
        what: String,
        source: std::io::Error,
    },
}

/// Guests started ahead of need, over every WASI server of the process: the pool has this many places beyond
/// one per session for them. Each idle one holds ~100 KiB.
const SPARE_PLACES: u32 = 64;

/// Sizes of the instance pool, shared by every tenant of the process.
#[derive(Debug, Clone, Copy)]
pub struct PoolSize {
    /// Instances alive at once (one per WASI session).
    pub instances: u32,
    /// The largest linear memory any tenant may be granted.
    pub max_memory_bytes: usize,
}

/// The per-process WASI runtime.
pub struct WasiRuntime {
    engine: Engine,
    p1_linker: Linker<P1Guest>,
    p2_linker: wasmtime::component::Linker<P2Guest>,
    cache_dir: PathBuf,
    /// The engine's settings, as they bear on compiled code (pool sizes do): part of a cached artifact's name, so
    /// engines set up apart (serving, and packing's larger pool) keep their own and never refuse each other's.
    settings: String,
    compiled: Mutex<HashMap<String, Compiled>>,
    lanes: Lanes,
    spare_places: Arc<Semaphore>,
}

impl std::fmt::Debug for WasiRuntime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WasiRuntime")
            .field("cache_dir", &self.cache_dir)
            .finish_non_exhaustive()
    }
}

#[derive(Clone)]
enum Compiled {
    Module(Module),
    Component(Component),
}

impl WasiRuntime {
    /// The engine and its epoch ticker. `cache_dir` holds compiled artifacts (it must not be writable by
    /// tenants: catwalk loads native code from it).
    pub fn new(cache_dir: PathBuf, pool: PoolSize) -> Result<Arc<Self>, WasiError> {
        let wasmtime_err = |what: &str| {
            let what = what.to_owned();
            move |source| WasiError::Wasmtime { what, source }
        };
        let mut pooling = PoolingAllocationConfig::default();
        let instances = pool.instances.saturating_add(SPARE_PLACES);
        // Totals set here, not left to defaults: they bound the address space and slots catwalk reserves.
        // A component instance holds at most a few core instances (the adapter and the program).
        pooling
            .total_core_instances(instances.saturating_mul(4))
            .total_component_instances(instances)
            .total_memories(instances.saturating_mul(2))
            .total_tables(instances.saturating_mul(4))
            .total_stacks(instances)
            .max_memory_size(pool.max_memory_bytes);
        let mut config = Config::new();
        config
            .epoch_interruption(true)
            .wasm_component_model(true)
            .allocation_strategy(InstanceAllocationStrategy::Pooling(pooling))
            // Each memory reserves only what it may grow to (bounds checks replace a 4 GiB guard region), so
            // thousands of instances fit in the address space.
            .memory_reservation(pool.max_memory_bytes as u64)
            .memory_guard_size(64 << 10)
            .memory_reservation_for_growth(0)
            .max_wasm_stack(1 << 20)
            .async_stack_size(2 << 20)
            // A pooled stack is handed back to the kernel when its instance ends (madvise), so neither its pages
            // nor its bytes outlive the guest: without this, ten thousand abandoned sessions kept ~80 MiB of
            // stacks resident after they were reaped.
            .async_stack_zeroing(true);
        let engine = Engine::new(&config).map_err(wasmtime_err("configuring wasmtime"))?;

        let mut p1_linker = Linker::new(&engine);
        wasmtime_wasi::p1::add_to_linker_async(&mut p1_linker, |guest: &mut P1Guest| {
            &mut guest.wasi
        })
        .map_err(wasmtime_err("linking WASIp1"))?;
        http::add_to_linker(&mut p1_linker).map_err(wasmtime_err("linking catwalk_http"))?;
        let mut p2_linker = wasmtime::component::Linker::new(&engine);
        wasmtime_wasi::p2::add_to_linker_async(&mut p2_linker)
            .map_err(wasmtime_err("linking WASIp2"))?;
        wasmtime_wasi_http::p2::add_only_http_to_linker_async(&mut p2_linker)
            .map_err(wasmtime_err("linking wasi:http"))?;

        std::fs::create_dir_all(&cache_dir).map_err(|source| WasiError::Io {
            what: format!("creating {}", cache_dir.display()),
            source,
        })?;
        let lanes = Lanes::new(&engine).map_err(|source| WasiError::Io {
            what: "starting the guest scheduler's threads".into(),
            source,
        })?;
        let settings = {
            let mut hasher = std::hash::DefaultHasher::new();
            engine.precompile_compatibility_hash().hash(&mut hasher);
            format!("{:016x}", hasher.finish())
        };
        Ok(Arc::new(Self {
            engine,
            p1_linker,
            p2_linker,
            cache_dir,
            settings,
            compiled: Mutex::default(),
            lanes,
            spare_places: Arc::new(Semaphore::new(SPARE_PLACES as usize)),
        }))
    }

    /// Compiles `wasm` (or loads it from the cache): compiled once per content hash, per process and on disk.
    fn load(&self, name: &str, wasm: &[u8]) -> Result<Compiled, WasiError> {
        let component = match wasm.get(..8) {
            Some([0, b'a', b's', b'm', 1, 0, 0, 0]) => false,
            Some([0, b'a', b's', b'm', 0x0d, 0, 1, 0]) => true,
            _ => return Err(WasiError::NotWasm(name.to_owned())),
        };
        let digest: String = Sha256::digest(wasm)
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        if let Some(compiled) = self
            .compiled
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&digest)
        {
            return Ok(compiled.clone());
        }
        let path = self.cache_dir.join(format!(
            "{digest}-{}.{}",
            self.settings,
            if component { "ccwasm" } else { "cwasm" }
        ));
        let compiled = match self.deserialize(&path, component) {
            Some(compiled) => compiled,
            None => {
                let wasmtime_err = |source| WasiError::Wasmtime {
                    what: format!("compiling {name}"),
                    source,
                };
                let artifact = if component {
                    self.engine
                        .precompile_component(wasm)
                        .map_err(wasmtime_err)?
                } else {
                    self.engine.precompile_module(wasm).map_err(wasmtime_err)?
                };
                let io_err = |source| WasiError::Io {
                    what: format!("caching {}", path.display()),
                    source,
                };
                // A name of this write's own: two compilations of the same wasm at once (two tenants, or
                // two catwalks in one process) must not write into one temporary file.
                let temp = path.with_extension(format!(
                    "tmp{}-{}",
                    std::process::id(),
                    crate::vocab::random_hex()
                ));
                std::fs::write(&temp, &artifact).map_err(io_err)?;
                std::fs::rename(&temp, &path).map_err(io_err)?;
                self.deserialize(&path, component)
                    .ok_or_else(|| WasiError::Io {
                        what: format!("loading {}", path.display()),
                        source: std::io::Error::other(
                            "the artifact just written could not be loaded",
                        ),
                    })?
            }
        };
        self.compiled
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(digest, compiled.clone());
        Ok(compiled)
    }

    /// Loads a precompiled artifact from the cache; `None` if absent or not loadable by this engine.
    #[allow(unsafe_code)]
    fn deserialize(&self, path: &Path, component: bool) -> Option<Compiled> {
        if !path.exists() {
            return None;
        }
        // SAFETY: loading a precompiled artifact runs native code from it, so the file must come from
        // `Engine::precompile_*`. catwalk reads only files it wrote itself into its own state directory (not
        // writable by tenants), named by the SHA-256 of the wasm they were compiled from, and written to a
        // temporary name then renamed, so no torn file is ever read. wasmtime also checks the artifact's
        // header against this engine's version and settings, and refuses a mismatch (then we recompile).
        let loaded = unsafe {
            if component {
                Component::deserialize_file(&self.engine, path).map(Compiled::Component)
            } else {
                Module::deserialize_file(&self.engine, path).map(Compiled::Module)
            }
        };
        match loaded {
            Ok(compiled) => Some(compiled),
            Err(e) => {
                tracing::info!(path = %path.display(), "recompiling a cached artifact this engine refused: {e}");
                None
            }
        }
    }
}

/// Store data of a WASIp1 guest.
struct P1Guest {
    wasi: WasiP1Ctx,
    limits: StoreLimits,
    net: http::GuestNet,
}

impl http::HasNet for P1Guest {
    fn net(&mut self) -> &mut http::GuestNet {
        &mut self.net
    }
}

/// Store data of a WASIp2 guest.
struct P2Guest {
    ctx: WasiCtx,
    table: ResourceTable,
    limits: StoreLimits,
    http: WasiHttpCtx,
    hooks: outgoing::Hooks,
}

impl WasiHttpView for P2Guest {
    fn http(&mut self) -> WasiHttpCtxView<'_> {
        WasiHttpCtxView {
            ctx: &mut self.http,
            table: &mut self.table,
            hooks: &mut self.hooks,
        }
    }
}

impl WasiView for P2Guest {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.ctx,
            table: &mut self.table,
        }
    }
}

enum Pre {
    P1(InstancePre<P1Guest>),
    P2(CommandPre<P2Guest>),
}

/// One tenant's WASI server: its policy and its pre-instantiated program.
pub struct WasiServer {
    runtime: Arc<WasiRuntime>,
    pre: Pre,
    policy: GuestPolicy,
    name: String,
    spares: Spares,
    stderr_tail: Option<stdio::StderrTail>,
    unanswered: http::Unanswered,
}

impl std::fmt::Debug for WasiServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WasiServer")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

impl WasiServer {
    /// Compiles (or loads) `wasm` and resolves its imports against WASI: an import catwalk does not provide
    /// is refused here, at load, with the import named.
    pub fn new(
        runtime: Arc<WasiRuntime>,
        name: &str,
        wasm: &[u8],
        policy: GuestPolicy,
    ) -> Result<Self, WasiError> {
        let link_err = |source| WasiError::Wasmtime {
            what: format!("{name} cannot run under catwalk"),
            source,
        };
        let pre = match runtime.load(name, wasm)? {
            Compiled::Module(module) => Pre::P1(
                runtime
                    .p1_linker
                    .instantiate_pre(&module)
                    .map_err(link_err)?,
            ),
            Compiled::Component(component) => {
                let pre = runtime
                    .p2_linker
                    .instantiate_pre(&component)
                    .map_err(link_err)?;
                Pre::P2(CommandPre::new(pre).map_err(link_err)?)
            }
        };
        Ok(Self {
            runtime,
            pre,
            policy,
            name: name.to_owned(),
            spares: Spares::default(),
            stderr_tail: None,
            unanswered: http::Unanswered::default(),
        })
    }

    /// Keeps the last lines its guests write to stderr (`catwalk pack` reports them when a guest fails).
    pub fn with_stderr_tail(mut self) -> Self {
        self.stderr_tail = Some(stdio::StderrTail::default());
        self
    }

    /// What [`Self::with_stderr_tail`] kept, oldest first.
    pub fn stderr_tail(&self) -> Vec<String> {
        self.stderr_tail
            .as_ref()
            .map(|tail| crate::vocab::lock(tail).iter().cloned().collect())
            .unwrap_or_default()
    }

    /// How many of its guests' requests (and lookups) the network did not answer: refused or failed.
    pub fn unanswered_requests(&self) -> u64 {
        self.unanswered.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Keeps `wanted` instances started ahead of need (while places for spares are left), until `shutdown`.
    /// Call from within the runtime.
    pub fn with_spares(mut self, wanted: usize, shutdown: CancellationToken, gauge: Gauge) -> Self {
        self.spares = Spares::new(
            wanted,
            shutdown,
            Some(self.runtime.spare_places.clone()),
            gauge,
        );
        self
    }

    pub fn kind(&self) -> &'static str {
        match self.pre {
            Pre::P1(_) => "wasm32-wasip1 module",
            Pre::P2(_) => "wasm32-wasip2 component",
        }
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// Where its guests' HTTP(S) requests may go, with which secrets.
    pub fn egress(&self) -> Option<&Arc<crate::egress::TenantEgress>> {
        self.policy.egress.as_ref()
    }

    /// An instance for a new session: a spare if one is waiting, else a fresh start.
    pub fn launch(self: &Arc<Self>, tag: &Arc<str>) -> Result<Instance, LaunchError> {
        let instance = match self.spares.take(tag) {
            Some(instance) => instance,
            None => self.start(Tag::named(tag.clone()), false)?,
        };
        self.refill();
        Ok(instance)
    }

    /// Starts spares in the background up to the number wanted.
    pub fn refill(self: &Arc<Self>) {
        self.spares.refill(|| {
            let server = self.clone();
            async move { server.start(Tag::default(), true) }
        });
    }

    /// Starts one instance: its own store, WASI context and limits, on a tokio task. An instance started `ahead`
    /// of need starts up on the background lane.
    fn start(&self, tag: Tag, ahead: bool) -> Result<Instance, LaunchError> {
        let (to_server, messages) = mpsc::channel::<Bytes>(64);
        let (events, from_server) = mpsc::channel::<ServerEvent>(256);
        let stop = CancellationToken::new();
        let budget = Budget::new();
        if ahead {
            budget.start_in_background();
        }
        let mut builder = self
            .policy
            .builder(&self.name)
            .map_err(|e| LaunchError::Wasi(format!("{e:#}")))?;
        // The tenant's way out, with fresh placeholders for its secrets: the guest's env holds those.
        let outbound = self.policy.egress.as_ref().map(|egress| egress.instance());
        let mut secrets = Vec::new();
        if let Some(outbound) = &outbound {
            for (name, placeholder) in outbound.secret_env() {
                builder.env(name, placeholder);
            }
            secrets.extend(outbound.secret_values().map(str::to_owned));
        }
        let stdin = GuestStdin::new(messages, budget.clone());
        builder
            .stdin(stdin.clone())
            .stdout(GuestStdout::new(
                events.clone(),
                self.policy.max_message_bytes,
            ))
            .stderr(GuestStderr::new(
                tag.clone(),
                self.policy.max_log_bytes,
                // The JavaScript runtime's own variables (which file to run) are not the tenant's secrets.
                Redactor::new(
                    self.policy
                        .env
                        .iter()
                        .filter(|(k, _)| !k.starts_with("CATWALK_JS_"))
                        .map(|(_, v)| v.as_str())
                        .chain(secrets.iter().map(String::as_str)),
                ),
                self.stderr_tail.clone(),
            ));
        let limits = StoreLimitsBuilder::new()
            .memory_size(self.policy.max_memory_bytes)
            .trap_on_grow_failure(true)
            .build();
        let engine = &self.runtime.engine;
        let cpu = self.policy.cpu_budget;
        let run: std::pin::Pin<Box<dyn std::future::Future<Output = wasmtime::Result<()>> + Send>> =
            match &self.pre {
                Pre::P1(pre) => {
                    let mut store = Store::new(
                        engine,
                        P1Guest {
                            wasi: builder.build_p1(),
                            limits,
                            net: http::GuestNet::new(outbound, self.unanswered.clone(), stdin),
                        },
                    );
                    store.limiter(|guest| &mut guest.limits);
                    meter(&mut store, budget.clone(), cpu);
                    let pre = pre.clone();
                    Box::pin(async move {
                        let instance = pre.instantiate_async(&mut store).await?;
                        let start = instance.get_typed_func::<(), ()>(&mut store, "_start")?;
                        start.call_async(&mut store, ()).await
                    })
                }
                Pre::P2(pre) => {
                    let data = P2Guest {
                        ctx: builder.build(),
                        table: ResourceTable::new(),
                        limits,
                        http: WasiHttpCtx::new(),
                        hooks: outgoing::Hooks {
                            outbound,
                            unanswered: self.unanswered.clone(),
                        },
                    };
                    let mut store = Store::new(engine, data);
                    store.limiter(|guest| &mut guest.limits);
                    meter(&mut store, budget.clone(), cpu);
                    let pre = pre.clone();
                    Box::pin(async move {
                        let command = pre.instantiate_async(&mut store).await?;
                        command
                            .wasi_cli_run()
                            .call_run(&mut store)
                            .await?
                            .map_err(|()| {
                                wasmtime::format_err!("the component's run returned an error")
                            })
                    })
                }
            };
        let guest_stop = stop.clone();
        let name = self.name.clone();
        let runtime = self.runtime.clone();
        let ended_tag = tag.clone();
        tokio::spawn(async move {
            let reason = tokio::select! {
                outcome = runtime.lanes.drive(run, budget.clone()) => describe(outcome, cpu, budget.used()),
                () = guest_stop.cancelled() => "was stopped".to_owned(),
            };
            tracing::debug!(session = %ended_tag, guest = %name, "guest ended: {reason}");
            let _ = events.send(ServerEvent::Exited { reason }).await;
        });
        Ok(Instance {
            to_server,
            from_server,
            stop,
            tag,
            spare: false,
        })
    }
}

/// CPU accounting: every epoch tick the guest is running, charge the CPU it used; past its budget for the
/// current message it traps, otherwise it yields to tokio so a spinning guest cannot starve other tenants (and,
/// past its foreground slice, moves to the background lane: see [`cpu`]).
fn meter<T: Send>(store: &mut Store<T>, budget: Arc<Budget>, cpu: Duration) {
    store.set_epoch_deadline(1);
    store.epoch_deadline_callback(move |_| {
        if budget.charge() > cpu {
            return Ok(UpdateDeadline::Interrupt);
        }
        // tokio's own yield, not wasmtime's: it lets every other ready task run before this guest resumes.
        Ok(UpdateDeadline::YieldCustom(
            1,
            Box::pin(tokio::task::yield_now()),
        ))
    });
}

/// How a guest ended, in words for its session's pending requests.
fn describe(outcome: wasmtime::Result<()>, cpu: Duration, used: Duration) -> String {
    let Err(error) = outcome else {
        return "exited".to_owned();
    };
    if let Some(exit) = error.downcast_ref::<I32Exit>() {
        return format!("exited with status {}", exit.0);
    }
    match error.downcast_ref::<Trap>() {
        Some(Trap::Interrupt) => {
            format!("used {used:.4?} of CPU on one request, past its CPU budget of {cpu:?}")
        }
        Some(Trap::StackOverflow) => "overflowed its stack".to_owned(),
        Some(trap) => format!("trapped: {trap}"),
        // The root cause says what happened (e.g. a memory limit); the outer layers say where.
        None => {
            let cause = error.root_cause().to_string();
            format!(
                "failed: {}",
                cause
                    .lines()
                    .next()
                    .unwrap_or_default()
                    .chars()
                    .take(300)
                    .collect::<String>()
            )
        }
    }
}
