//! `catwalk-bench`: measurements of catwalk that a test must not make (timings on a shared, noisy machine).
//!
//!   cargo build --release -p catwalk -p catwalk-bench && cargo build --release -p catwalk-guest --example echo
//!   cargo build --release --target wasm32-wasip1 -p catwalk-hostile-spin -p catwalk-hostile-memory
//!   target/release/catwalk-bench sessions
//!   target/release/catwalk-bench isolation
//!   target/release/catwalk-bench memory
//!   target/release/catwalk-bench fairness
//!   target/release/catwalk-bench chaos
//!
//! Beside the peers (`bench/peers.sh` runs these, with the shared harness):
//!   catwalk-bench new-sessions --bridges B.conf --servers S.conf --dir HARNESS --json OUT
//!   catwalk-bench wasi --json OUT
//!   catwalk-bench report ROUND_DIR...
//!
//! The protocol eras (2025 session against 2026-07-28 stateless), on the demo guest and a process server:
//!   catwalk-bench eras --process "CMD" --json OUT

mod chaos;
mod client;
mod eras;
mod fairness;
mod peers;
mod stats;
mod wasi;

use std::path::PathBuf;

use anyhow::Result;
use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(about = "Benchmarks of catwalk")]
struct Cli {
    /// The catwalk binary (default: the release build in the target dir).
    #[arg(long, global = true)]
    catwalk: Option<PathBuf>,
    #[command(subcommand)]
    bench: Bench,
}

#[derive(Subcommand)]
enum Bench {
    /// The built-in demo guest against the same server native: session start, tools/call, RSS per session.
    Sessions {
        #[arg(long, default_value_t = 1000)]
        sessions: usize,
        #[arg(long, default_value_t = 2000)]
        calls: usize,
    },
    /// Another session's echo latency alone and beside guests spinning on their CPU budget.
    Isolation {
        #[arg(long, default_value_t = 5)]
        rounds: usize,
        #[arg(long, default_value_t = 2000)]
        calls: usize,
        #[arg(long, default_value_t = 2)]
        spinners: usize,
    },
    /// One tenant's echo latency alone and while another tenant floods catwalk (WASI and process backends).
    Fairness {
        #[arg(long, default_value_t = 64)]
        flood: usize,
        /// `--max-inflight` values to compare, in one run (0: no limit; catwalk's default is twice the cores,
        /// at least 4).
        #[arg(long, value_delimiter = ',', default_value = "0,4,8")]
        caps: Vec<usize>,
        #[arg(long, default_value_t = 3)]
        rounds: usize,
        #[arg(long, default_value_t = 2000)]
        calls: usize,
    },
    /// catwalk's RSS while guests allocate until refused at their memory cap.
    Memory {
        #[arg(long, default_value_t = 16)]
        sessions: usize,
    },
    /// New session → initialize answered, on each bridge of a harness bridges.conf (and catwalk `--package`).
    NewSessions {
        #[arg(long)]
        bridges: PathBuf,
        #[arg(long)]
        servers: PathBuf,
        /// The harness dir the conf files refer to.
        #[arg(long)]
        dir: PathBuf,
        /// Bridge labels to run: substrings separated by `|`; `.` for all.
        #[arg(long, default_value = ".")]
        filter: peers::Filter,
        #[arg(long, default_value = ".")]
        server_filter: peers::Filter,
        #[arg(long, default_value_t = 15)]
        sessions: usize,
        /// Milliseconds between two sessions.
        #[arg(long, default_value_t = 1000)]
        pause_ms: u64,
        /// An npm package catwalk also serves by name (`--package`), measured the same way.
        #[arg(long)]
        package: Option<String>,
        /// JSON lines are appended here.
        #[arg(long)]
        json: PathBuf,
    },
    /// The WASI rows of the peers report: new session, tools/call, RSS per idle session, another tenant's
    /// latency beside them.
    Wasi {
        #[arg(long, value_delimiter = ',', default_value = "1000,10000")]
        steps: Vec<usize>,
        /// Sequential calls per measurement of the probe (a p99 needs thousands).
        #[arg(long, default_value_t = 5000)]
        calls: usize,
        #[arg(long)]
        json: PathBuf,
    },
    /// tools/call over a 2025-era session against the same call as a stateless 2026-07-28 request, on the
    /// built-in demo guest and on a process server (`--process`, a stdio command with an `echo` tool).
    Eras {
        #[arg(long)]
        process: String,
        #[arg(long, default_value_t = 500)]
        calls: usize,
        #[arg(long)]
        json: PathBuf,
    },
    /// Faults under load (server children killed, guests stalled, calls dropped, log pipes gone), slow clients
    /// and abandoned sessions: one row per fault, with what was tried, what held and what was lost. Fails if
    /// anything was lost or left behind.
    Chaos {
        #[arg(long, default_value_t = 16)]
        sessions: usize,
        /// Calls in flight on each backend.
        #[arg(long, default_value_t = 64)]
        in_flight: usize,
        #[arg(long, default_value_t = 30)]
        seconds: u64,
        #[arg(long, default_value_t = 10_000)]
        abandoned: usize,
        /// Seeds the faults' choices (which child is killed, which call stalls or is dropped).
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// Only these parts (repeatable); all three by default.
        #[arg(long, value_enum)]
        only: Vec<chaos::Part>,
    },
    /// One table of the rounds of a `bench/peers.sh` run, medians and ratios to the best peer.
    Report {
        /// The harness's versions.txt of the run.
        #[arg(long)]
        versions: Option<PathBuf>,
        rounds: Vec<PathBuf>,
    },
}

fn main() -> Result<()> {
    let cli = Cli::parse();
    let target = client::target_dir();
    let catwalk = cli
        .catwalk
        .unwrap_or_else(|| target.join("release/catwalk"));
    // Not below the target dir: that may be under a home dir tenants' uids cannot pass through, and catwalk run as
    // root with a tenants file refuses a state dir there.
    let state_dir = std::env::temp_dir().join("catwalk-bench-state");
    let guest =
        |name: &str| target.join(format!("wasm32-wasip1/release/catwalk-hostile-{name}.wasm"));
    // The measuring client on one thread, so that it takes as little of the machine as it can.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    if let Bench::Report { versions, rounds } = &cli.bench {
        return peers::report(rounds, versions.as_deref());
    }
    runtime.block_on(async {
        match cli.bench {
            Bench::Report { .. } => unreachable!("answered above"),
            Bench::NewSessions {
                bridges,
                servers,
                dir,
                filter,
                server_filter,
                sessions,
                pause_ms,
                package,
                json,
            } => {
                peers::new_sessions(peers::NewSessionsArgs {
                    bridges: &bridges,
                    servers: &servers,
                    dir: &dir,
                    filter: &filter,
                    server_filter: &server_filter,
                    sessions,
                    pause: std::time::Duration::from_millis(pause_ms),
                    catwalk: &catwalk,
                    package: package.as_deref(),
                    json: &json,
                })
                .await
            }
            Bench::Wasi { steps, calls, json } => {
                let rows = wasi::rows(wasi::RowsArgs {
                    catwalk: &catwalk,
                    state_dir: &state_dir,
                    echo_guest: &target.join("wasm32-wasip1/release/examples/echo.wasm"),
                    steps: &steps,
                    calls,
                })
                .await?;
                std::fs::write(&json, rows.to_string())?;
                Ok(())
            }
            Bench::Eras {
                process,
                calls,
                json,
            } => {
                let mut process_flags = vec!["--".to_owned()];
                process_flags.extend(process.split_whitespace().map(str::to_owned));
                let servers = [("WASI demo guest", Vec::new()), ("process", process_flags)];
                let rows = eras::eras(eras::ErasArgs {
                    catwalk: &catwalk,
                    state_dir: &state_dir,
                    servers: &servers,
                    calls,
                })
                .await?;
                std::fs::write(&json, rows.to_string())?;
                Ok(())
            }
            Bench::Isolation {
                rounds,
                calls,
                spinners,
            } => {
                wasi::isolation(wasi::IsolationArgs {
                    catwalk: &catwalk,
                    state_dir: &state_dir,
                    spin_guest: &guest("spin"),
                    rounds,
                    calls,
                    spinners,
                })
                .await
            }
            Bench::Sessions { sessions, calls } => {
                wasi::sessions(wasi::SessionsArgs {
                    catwalk: &catwalk,
                    state_dir: &state_dir,
                    native_echo: &target.join("release/examples/echo"),
                    sessions,
                    calls,
                })
                .await
            }
            Bench::Fairness {
                flood,
                caps,
                rounds,
                calls,
            } => {
                fairness::fairness(fairness::FairnessArgs {
                    catwalk: &catwalk,
                    state_dir: &state_dir,
                    wasm_echo: &guest("spin"),
                    native_echo: &target.join("release/examples/echo"),
                    flood,
                    caps: &caps,
                    rounds,
                    calls,
                })
                .await
            }
            Bench::Chaos {
                sessions,
                in_flight,
                seconds,
                abandoned,
                seed,
                only,
            } => {
                chaos::chaos(chaos::ChaosArgs {
                    catwalk: &catwalk,
                    state_dir: &state_dir,
                    spin_guest: &guest("spin"),
                    native_echo: &target.join("release/examples/echo"),
                    sessions,
                    in_flight,
                    seconds,
                    abandoned,
                    seed,
                    parts: if only.is_empty() {
                        vec![chaos::Part::Load, chaos::Part::Slow, chaos::Part::Abandoned]
                    } else {
                        only
                    },
                })
                .await
            }
            Bench::Memory { sessions } => {
                wasi::memory(wasi::MemoryArgs {
                    catwalk: &catwalk,
                    state_dir: &state_dir,
                    memory_guest: &guest("memory"),
                    sessions,
                })
                .await
            }
        }
    })
}
