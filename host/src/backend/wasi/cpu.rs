//! CPU accounting and scheduling of guests.
//!
//! Every guest is charged the CPU time its thread spent running it, per message: reading its next message starts
//! afresh, and past its budget it traps. Time blocked on input or yielded to other tenants is not charged, and
//! neither is time the kernel gave another process while the guest's thread waited.
//!
//! Guests run on two lanes. A message is handled on the *foreground* lane, the runtime that also serves HTTP, as
//! long as it has used less than [`FOREGROUND_SLICE`]: nearly every MCP request finishes well within it. Past that the
//! guest moves to the *background* lane, a runtime whose threads run at the lowest CPU priority, so a tenant that
//! computes (or spins) takes only the CPU nobody else wants and the others keep their latency. Waiting for its next
//! message brings the guest back to the foreground, so the message is handled there. A spare (a guest started
//! ahead of need) starts up on the background lane, on CPU nobody else wants. A guest moves between lanes only
//! while it is suspended (at an epoch yield or a blocking read), never mid-poll.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use rustix::time::{ClockId, clock_gettime};
use tokio_util::task::AbortOnDropHandle;
use wasmtime::Engine;

/// How often the engine's epoch advances while a guest runs on the foreground lane: the granularity of its CPU
/// accounting and of yielding, so a foreground guest holds an HTTP worker at most this long at a time.
const TICK: Duration = Duration::from_micros(250);

/// The same while only background guests run: they compete only with each other, and each tick costs a wake-up of
/// the ticker thread (~17 µs here: 4,000 a second took 7% of a core).
const BACKGROUND_TICK: Duration = Duration::from_millis(2);

/// CPU a message may use on the foreground lane before its guest is moved to the background lane.
pub const FOREGROUND_SLICE: Duration = Duration::from_millis(2);

/// The lowest scheduling priority (`nice` 19): background threads run only when nothing else wants the CPU.
const BACKGROUND_NICE: i32 = 19;

/// CPU time a guest has used on its current message, and the lane it runs on.
#[derive(Debug)]
pub struct Budget {
    base: Instant,
    used_nanos: AtomicU64,
    /// Where the guest last resumed: the thread, its CPU clock and the wall clock at that moment.
    resumed_tid: AtomicU64,
    resumed_cpu: AtomicU64,
    resumed_wall: AtomicU64,
    background: AtomicBool,
}

impl Budget {
    pub fn new() -> Arc<Self> {
        let budget = Arc::new(Self {
            base: Instant::now(),
            used_nanos: AtomicU64::new(0),
            resumed_tid: AtomicU64::new(0),
            resumed_cpu: AtomicU64::new(0),
            resumed_wall: AtomicU64::new(0),
            background: AtomicBool::new(false),
        });
        budget.restart();
        budget
    }

    /// A new message: nothing used yet, running from now, on the foreground lane.
    pub fn restart(&self) {
        self.used_nanos.store(0, Ordering::Relaxed);
        self.background.store(false, Ordering::Relaxed);
        self.resume();
    }

    /// Start-up ahead of need: on the background lane until the guest waits for its first message.
    pub fn start_in_background(&self) {
        self.background.store(true, Ordering::Relaxed);
    }

    /// The guest waits for its next message: it waits, and handles the message, on the foreground lane.
    pub fn wait_for_input(&self) {
        self.background.store(false, Ordering::Relaxed);
    }

    /// The guest runs again: charging starts from here.
    fn resume(&self) {
        self.resumed_tid.store(thread_id(), Ordering::Relaxed);
        self.resumed_cpu
            .store(thread_cpu_nanos(), Ordering::Relaxed);
        self.resumed_wall
            .store(self.wall_nanos(), Ordering::Relaxed);
    }

    /// Charges what the guest used since it resumed, and returns the total on this message. A message that has used
    /// more than [`FOREGROUND_SLICE`] goes to the background lane.
    pub fn charge(&self) -> Duration {
        // A guest runs on one thread between resuming and the next charge (both happen inside one poll of its lane);
        // should it ever not, the wall clock is charged instead, which only over-counts.
        let ran = if self.resumed_tid.load(Ordering::Relaxed) == thread_id() {
            thread_cpu_nanos().saturating_sub(self.resumed_cpu.load(Ordering::Relaxed))
        } else {
            self.wall_nanos()
                .saturating_sub(self.resumed_wall.load(Ordering::Relaxed))
        };
        self.resume();
        let used = Duration::from_nanos(self.used_nanos.fetch_add(ran, Ordering::Relaxed) + ran);
        if used > FOREGROUND_SLICE {
            self.background.store(true, Ordering::Relaxed);
        }
        used
    }

    /// CPU charged on the current message so far.
    pub fn used(&self) -> Duration {
        Duration::from_nanos(self.used_nanos.load(Ordering::Relaxed))
    }

    fn background(&self) -> bool {
        self.background.load(Ordering::Relaxed)
    }

    fn wall_nanos(&self) -> u64 {
        u64::try_from(self.base.elapsed().as_nanos()).unwrap_or(u64::MAX)
    }
}

fn thread_id() -> u64 {
    rustix::thread::gettid().as_raw_nonzero().get() as u64
}

fn thread_cpu_nanos() -> u64 {
    let t = clock_gettime(ClockId::ThreadCPUTime);
    (t.tv_sec as u64)
        .saturating_mul(1_000_000_000)
        .saturating_add(t.tv_nsec as u64)
}

/// The guest scheduler: the epoch ticker and the background lane.
pub struct Lanes {
    // An `Option` only so that `Drop` can take it: a runtime must not be dropped where blocking is not allowed.
    background: Option<tokio::runtime::Runtime>,
    ticker: Arc<Ticker>,
}

impl std::fmt::Debug for Lanes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Lanes").finish_non_exhaustive()
    }
}

/// Advances the engine's epoch while guests are being polled: every [`TICK`] while one runs on the foreground
/// lane, every [`BACKGROUND_TICK`] while only background guests run, and not at all (parked, no CPU) while none
/// runs, so an idle catwalk does not wake thousands of times a second.
struct Ticker {
    foreground: AtomicUsize,
    background: AtomicUsize,
    stopped: AtomicBool,
    /// The ticker thread, set once it is spawned (no guest can run before that).
    thread: std::sync::OnceLock<std::thread::Thread>,
}

impl Ticker {
    /// Marks a guest as running on a lane until the guard drops.
    fn running(&self, background: bool) -> RunningGuard<'_> {
        let count = if background {
            &self.background
        } else {
            &self.foreground
        };
        // The first foreground guest wakes a ticker that is parked or on the slow tick; background guests only
        // need it awake.
        let before = count.fetch_add(1, Ordering::AcqRel);
        if before == 0
            && (!background || self.foreground.load(Ordering::Acquire) == 0)
            && let Some(thread) = self.thread.get()
        {
            thread.unpark();
        }
        RunningGuard(count)
    }

    fn run(&self, engine: &wasmtime::EngineWeak) {
        // The next tick. A guest starting on the foreground lane can only bring it closer, never push it back, so
        // a stream of short requests cannot keep the ticker from ticking for a spinner.
        let mut due: Option<Instant> = None;
        while !self.stopped.load(Ordering::Acquire) {
            let tick = if self.foreground.load(Ordering::Acquire) > 0 {
                TICK
            } else if self.background.load(Ordering::Acquire) > 0 {
                BACKGROUND_TICK
            } else {
                // Woken by the first guest to run (or by drop); an unpark that came first is not lost.
                due = None;
                std::thread::park();
                continue;
            };
            // The first tick comes a full tick after a guest starts: most requests finish before any.
            let now = Instant::now();
            let next = due.map_or(now + tick, |due| due.min(now + tick));
            if now < next {
                due = Some(next);
                std::thread::park_timeout(next - now);
                continue;
            }
            due = None;
            let Some(engine) = engine.upgrade() else {
                return;
            };
            engine.increment_epoch();
        }
    }
}

struct RunningGuard<'a>(&'a AtomicUsize);

impl Drop for RunningGuard<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

impl Lanes {
    pub fn new(engine: &Engine) -> std::io::Result<Self> {
        let workers = std::thread::available_parallelism().map_or(2, usize::from);
        let background = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(workers)
            .thread_name("catwalk-guest-bg")
            .on_thread_start(|| {
                // On Linux a thread's nice value is its own. Should raising it fail, the lane still runs; the
                // guest only competes at normal priority.
                if let Err(error) = rustix::process::setpriority_process(None, BACKGROUND_NICE) {
                    tracing::warn!("could not lower a background guest thread's priority: {error}");
                }
            })
            .enable_all()
            .build()?;
        let ticker = Arc::new(Ticker {
            foreground: AtomicUsize::new(0),
            background: AtomicUsize::new(0),
            stopped: AtomicBool::new(false),
            thread: std::sync::OnceLock::new(),
        });
        let engine = engine.weak();
        let state = ticker.clone();
        let handle = std::thread::Builder::new()
            .name("catwalk-epoch".into())
            .spawn(move || state.run(&engine))?;
        let _ = ticker.thread.set(handle.thread().clone());
        Ok(Self {
            background: Some(background),
            ticker,
        })
    }

    /// Runs a guest to completion, on whichever lane its budget says, moving it when that changes.
    pub async fn drive<T: Send + 'static>(
        &self,
        mut guest: Pin<Box<dyn Future<Output = T> + Send>>,
        budget: Arc<Budget>,
    ) -> T {
        let handle = self
            .background
            .as_ref()
            .expect("the runtime is only taken on drop")
            .handle()
            .clone();
        loop {
            let background = budget.background();
            let leg = Leg {
                guest: Some(guest),
                budget: budget.clone(),
                ticker: self.ticker.clone(),
                background,
            };
            let outcome = if background {
                // Aborted if the session is stopped while its guest is in the background.
                match AbortOnDropHandle::new(handle.spawn(leg)).await {
                    Ok(outcome) => outcome,
                    Err(error) => std::panic::resume_unwind(error.into_panic()),
                }
            } else {
                leg.await
            };
            match outcome {
                LegOutcome::Done(output) => return output,
                LegOutcome::Moved(rest) => guest = rest,
            }
        }
    }
}

impl Drop for Lanes {
    fn drop(&mut self) {
        self.ticker.stopped.store(true, Ordering::Release);
        if let Some(thread) = self.ticker.thread.get() {
            thread.unpark();
        }
        if let Some(runtime) = self.background.take() {
            runtime.shutdown_background();
        }
    }
}

/// A guest running on one lane until it finishes or its budget sends it to the other.
struct Leg<T> {
    guest: Option<Pin<Box<dyn Future<Output = T> + Send>>>,
    budget: Arc<Budget>,
    ticker: Arc<Ticker>,
    background: bool,
}

enum LegOutcome<T> {
    Done(T),
    Moved(Pin<Box<dyn Future<Output = T> + Send>>),
}

impl<T> Future for Leg<T> {
    type Output = LegOutcome<T>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = &mut *self;
        let guest = this
            .guest
            .as_mut()
            .expect("a leg is not polled after it ends");
        // The guest runs only inside this poll: whatever happened since the last one (a wait of any kind, on any
        // thread, and other tasks' CPU meanwhile) is not its, and what it used up to suspending is.
        this.budget.resume();
        let running = this.ticker.running(this.background);
        let poll = guest.as_mut().poll(cx);
        drop(running);
        if let Poll::Ready(output) = poll {
            return Poll::Ready(LegOutcome::Done(output));
        }
        this.budget.charge();
        if this.budget.background() == this.background {
            return Poll::Pending;
        }
        // Suspended, and due on the other lane: the next leg polls it there at once, so no wake-up is lost.
        let guest = this.guest.take().expect("checked above");
        Poll::Ready(LegOutcome::Moved(guest))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Burns this thread's CPU for about `how_long`.
    fn spin(how_long: Duration) {
        let start = thread_cpu_nanos();
        while thread_cpu_nanos() - start < how_long.as_nanos() as u64 {
            std::hint::spin_loop();
        }
    }

    /// Runs a guest that uses `before`, waits while another task on its thread spins for 300 ms, then uses 20 ms;
    /// what it is charged.
    fn charged(before: Duration) -> Duration {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let engine = Engine::default();
        let lanes = Lanes::new(&engine).unwrap();
        runtime.block_on(async {
            let budget = Budget::new();
            let (done_waiting, waited) = tokio::sync::oneshot::channel::<()>();
            tokio::spawn(async move {
                spin(Duration::from_millis(300));
                let _ = done_waiting.send(());
            });
            let meter = budget.clone();
            let guest = Box::pin(async move {
                spin(before);
                waited.await.unwrap();
                spin(Duration::from_millis(20));
                // Where the engine's next epoch tick charges it.
                meter.charge()
            });
            lanes.drive(guest, budget).await
        })
    }

    /// A guest that waits (for a response, a timer, its stdin) is not charged for the wait, nor for what other
    /// tasks did meanwhile; what it ran itself is. Both when it resumes on the thread it waited on (within its
    /// foreground slice) and when it resumes on another (moved to the background lane).
    #[test]
    fn a_guest_is_charged_its_own_cpu_and_not_its_waits() {
        for before in [Duration::from_micros(500), Duration::from_millis(20)] {
            let used = charged(before);
            assert!(
                used >= before + Duration::from_millis(20) && used < Duration::from_millis(200),
                "charged {used:?} for {:?} of its own CPU and a 300 ms wait",
                before + Duration::from_millis(20)
            );
        }
    }
}
