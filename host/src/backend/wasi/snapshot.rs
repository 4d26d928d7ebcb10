//! Pre-initialised modules (wasmtime-wizer): a module's `wizer-initialize` export run once, in the sandbox
//! under the policy it is given, then its memory and globals written out as a new module whose instances start
//! from that state. Served from the compile cache like any module, the state is each instance's initial memory
//! image, mapped copy-on-write (the pooling allocator's `memory_init_cow`, the default).

use std::time::Duration;

use bytes::Bytes;
use tokio::sync::mpsc;
use wasmtime::{Store, StoreLimitsBuilder};
use wasmtime_wasi::p2::pipe::MemoryOutputPipe;
use wasmtime_wizer::{InstanceState, SnapshotVal, ValType, Wizer};

use super::cpu::Budget;
use super::stdio::GuestStdin;
use super::{Compiled, GuestPolicy, P1Guest, WasiError, WasiRuntime, http};

/// The most a module may print while its snapshot is taken.
const MAX_OUTPUT: usize = 64 << 10;

/// A pre-initialised module, and what its initialisation printed.
#[derive(Debug)]
pub struct Snapshot {
    pub wasm: Vec<u8>,
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
}

impl WasiRuntime {
    /// Runs `wasm`'s export `init` (wizer's is `wizer-initialize`) under `policy` (its env, dirs and memory
    /// limit; no network), within `timeout`, and gives the module it leaves.
    pub async fn snapshot(
        &self,
        wasm: &[u8],
        init: &str,
        policy: &GuestPolicy,
        timeout: Duration,
    ) -> Result<Snapshot, WasiError> {
        let wasmtime_err = |what: &str| {
            let what = what.to_owned();
            move |source| WasiError::Wasmtime { what, source }
        };
        let mut wizer = Wizer::new();
        wizer.init_func(init);
        let (cx, instrumented) = wizer
            .instrument(wasm)
            .map_err(wasmtime_err("preparing the module for its snapshot"))?;
        let Compiled::Module(module) = self.load("the module to snapshot", &instrumented)? else {
            return Err(WasiError::NotWasm("the module to snapshot".into()));
        };
        let pre = self
            .p1_linker
            .instantiate_pre(&module)
            .map_err(wasmtime_err("linking the module to snapshot"))?;
        let stdout = MemoryOutputPipe::new(MAX_OUTPUT);
        let stderr = MemoryOutputPipe::new(MAX_OUTPUT);
        let mut builder = policy
            .builder("catwalk-js")
            .map_err(wasmtime_err("the snapshot's WASI context"))?;
        // No input: its sender is gone, so a read finds the end at once.
        let (_, nothing) = mpsc::channel::<Bytes>(1);
        let stdin = GuestStdin::new(nothing, Budget::new());
        builder
            .stdin(stdin.clone())
            .stdout(stdout.clone())
            .stderr(stderr.clone());
        let limits = StoreLimitsBuilder::new()
            .memory_size(policy.max_memory_bytes)
            .trap_on_grow_failure(true)
            .build();
        let mut store = Store::new(
            &self.engine,
            P1Guest {
                wasi: builder.build_p1(),
                limits,
                net: http::GuestNet::new(None, http::Unanswered::default(), stdin),
            },
        );
        store.limiter(|guest| &mut guest.limits);
        // It yields at every epoch tick, so the timeout below can end a module that spins.
        store.set_epoch_deadline(1);
        store.epoch_deadline_async_yield_and_update(1);
        let taken = async {
            let instance = pre.instantiate_async(&mut store).await?;
            instance
                .get_typed_func::<(), ()>(&mut store, wizer.get_init_func())?
                .call_async(&mut store, ())
                .await?;
            wizer
                .snapshot(
                    &cx,
                    &mut Taken {
                        store: &mut store,
                        instance,
                    },
                )
                .await
        };
        let wasm = tokio::time::timeout(timeout, taken)
            .await
            .map_err(|_| WasiError::Wasmtime {
                what: "taking the snapshot".into(),
                source: wasmtime::format_err!("it did not finish within {timeout:?}"),
            })?
            .map_err(wasmtime_err("taking the snapshot"))?;
        Ok(Snapshot {
            wasm,
            stdout: stdout.contents().to_vec(),
            stderr: stderr.contents().to_vec(),
        })
    }
}

/// The instance whose state becomes the snapshot.
struct Taken<'a> {
    store: &'a mut Store<P1Guest>,
    instance: wasmtime::Instance,
}

impl InstanceState for Taken<'_> {
    async fn global_get(&mut self, name: &str, _: ValType) -> SnapshotVal {
        let global = self
            .instance
            .get_global(&mut *self.store, name)
            .expect("wizer asks only for globals the module exports");
        match global.get(&mut *self.store) {
            wasmtime::Val::I32(x) => SnapshotVal::I32(x),
            wasmtime::Val::I64(x) => SnapshotVal::I64(x),
            wasmtime::Val::F32(x) => SnapshotVal::F32(x),
            wasmtime::Val::F64(x) => SnapshotVal::F64(x),
            wasmtime::Val::V128(x) => SnapshotVal::V128(x.as_u128()),
            other => panic!("a global of a type wizer does not snapshot: {other:?}"),
        }
    }

    async fn memory_contents(&mut self, name: &str, contents: impl FnOnce(&[u8]) + Send) {
        let memory = self
            .instance
            .get_memory(&mut *self.store, name)
            .expect("wizer asks only for memories the module exports");
        contents(memory.data(&*self.store));
    }
}
