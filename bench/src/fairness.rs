//! Fair sharing between tenants: one tenant's sequential echo latency alone, and while another tenant floods
//! the same catwalk with `flood` concurrent sessions calling as fast as they can.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, ensure};
use serde_json::{Value, json};

use crate::client::{Catwalk, Session};
use crate::stats::{Samples, median, ms};

pub struct FairnessArgs<'a> {
    pub catwalk: &'a Path,
    pub state_dir: &'a Path,
    /// A WASI echo guest (tool `echo {message}`).
    pub wasm_echo: &'a Path,
    /// The same kind of server, native (`catwalk-guest`'s echo example: tool `echo {message}`).
    pub native_echo: &'a Path,
    pub flood: usize,
    /// `--max-inflight` values to compare; 0: no limit.
    pub caps: &'a [usize],
    pub rounds: usize,
    pub calls: usize,
}

/// How a backend's echo is called.
struct Backend {
    label: &'static str,
    server: String,
    arguments: Value,
    /// The answer's text.
    expect: &'static str,
}

pub async fn fairness(args: FairnessArgs<'_>) -> Result<()> {
    // A copy in the state dir: run as root, catwalk starts a tenant's child as the tenant's own uid, which may not
    // pass through the dirs the build is in (a home dir of mode 700).
    let bin = args.state_dir.join("bin");
    std::fs::create_dir_all(&bin)?;
    let native_echo = bin.join("echo");
    std::fs::copy(args.native_echo, &native_echo)
        .with_context(|| format!("copying {}", args.native_echo.display()))?;
    let backends = [
        Backend {
            label: "WASI guest",
            server: format!("wasm = {:?}", args.wasm_echo.to_str().context("UTF-8")?),
            arguments: json!({"message": "hi"}),
            expect: "hi",
        },
        Backend {
            label: "process per session",
            // The binary's dir is granted: a tenant's child reads nothing else outside the system's dirs.
            server: format!(
                "command = [{:?}]\ndirs = [{:?}]",
                native_echo.to_str().context("UTF-8")?,
                bin.to_str().context("UTF-8")?
            ),
            arguments: json!({"message": "hi"}),
            expect: "Echo: hi",
        },
    ];
    println!(
        "| backend | requests in progress per tenant | probe alone p50 / p99 ms | probe beside a {}-session flood p50 / p99 ms | ratio p50 / p99 | flood calls/s | flood errors |",
        args.flood
    );
    println!("|---|---|---|---|---|---|---|");
    for backend in &backends {
        for &cap in args.caps {
            measure(&args, backend, (cap > 0).then_some(cap)).await?;
        }
    }
    Ok(())
}

async fn measure(args: &FairnessArgs<'_>, backend: &Backend, cap: Option<usize>) -> Result<()> {
    let max_sessions = (args.flood + 8).to_string();
    let max_inflight = cap.unwrap_or(1 << 20).to_string();
    let catwalk = Catwalk::start_tenants(
        args.catwalk,
        args.state_dir,
        "fairness.toml",
        &format!(
            "[[tenant]]\nid = \"flood\"\n{server}\n\n[[tenant]]\nid = \"probe\"\n{server}\n",
            server = backend.server
        ),
        &[
            "--max-sessions",
            &max_sessions,
            "--max-inflight",
            &max_inflight,
        ],
    )
    .await?;
    let http = reqwest::Client::new();
    let probe = Session::open_at(&http, &catwalk.base, "/t/probe/mcp").await?;
    let mut next_id = 0;
    let mut sequential = async |samples: &mut Samples| -> Result<()> {
        for _ in 0..args.calls {
            next_id += 1;
            let started = Instant::now();
            let answer = probe
                .call(next_id, "echo", backend.arguments.clone())
                .await?;
            samples.push(started.elapsed());
            ensure!(
                answer["result"]["content"][0]["text"] == backend.expect,
                "{answer}"
            );
        }
        Ok(())
    };
    sequential(&mut Samples::default()).await?; // warm-up

    let (mut alone, mut beside) = ((vec![], vec![]), (vec![], vec![]));
    let (mut flood_calls, mut flood_errors, mut flood_time) = (0, 0, Duration::ZERO);
    for _ in 0..args.rounds {
        let mut round = Samples::default();
        sequential(&mut round).await?;
        alone.0.push(round.quantile(0.5));
        alone.1.push(round.quantile(0.99));

        // The flood runs on a thread and runtime of its own, so the probe's client is not queued behind it.
        let flood = Flood::start(
            &catwalk.base,
            args.flood,
            backend.arguments.clone(),
            backend.expect,
        )
        .await?;
        let mut round = Samples::default();
        sequential(&mut round).await?;
        let (calls, errors, took) = flood.stop()?;
        (flood_calls, flood_errors, flood_time) = (
            flood_calls + calls,
            flood_errors + errors,
            flood_time + took,
        );
        beside.0.push(round.quantile(0.5));
        beside.1.push(round.quantile(0.99));
    }
    catwalk.stop().await?;
    let (a50, a99, b50, b99) = (
        median(&alone.0),
        median(&alone.1),
        median(&beside.0),
        median(&beside.1),
    );
    println!(
        "| {} | {} | {} / {} | {} / {} | {:.2} / {:.2} | {:.0} | {} |",
        backend.label,
        cap.map_or_else(|| "no limit".to_owned(), |n| n.to_string()),
        ms(a50),
        ms(a99),
        ms(b50),
        ms(b99),
        b50.as_secs_f64() / a50.as_secs_f64(),
        b99.as_secs_f64() / a99.as_secs_f64(),
        flood_calls as f64 / flood_time.as_secs_f64(),
        flood_errors
    );
    Ok(())
}

struct Flood {
    running: Arc<AtomicBool>,
    calls: Arc<AtomicU64>,
    errors: Arc<AtomicU64>,
    started: Instant,
    thread: std::thread::JoinHandle<Result<()>>,
}

impl Flood {
    /// Opens `sessions` sessions on the flood tenant and starts calling; returns once all are calling.
    async fn start(
        base: &str,
        sessions: usize,
        arguments: Value,
        expect: &'static str,
    ) -> Result<Self> {
        let running = Arc::new(AtomicBool::new(true));
        let (calls, errors) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
        let (ready_tx, ready_rx) = tokio::sync::oneshot::channel();
        let base = base.to_owned();
        let (flag, counted, failed) = (running.clone(), calls.clone(), errors.clone());
        let thread = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            runtime.block_on(async move {
                let http = reqwest::Client::new();
                let mut open = Vec::with_capacity(sessions);
                for _ in 0..sessions {
                    open.push(Session::open_at(&http, &base, "/t/flood/mcp").await?);
                }
                let tasks: Vec<_> = open
                    .into_iter()
                    .map(|session| {
                        let (flag, counted, failed) =
                            (flag.clone(), counted.clone(), failed.clone());
                        let arguments = arguments.clone();
                        tokio::spawn(async move {
                            let mut id = 0;
                            while flag.load(Ordering::Relaxed) {
                                id += 1;
                                match session.call(id, "echo", arguments.clone()).await {
                                    Ok(answer)
                                        if answer["result"]["content"][0]["text"] == expect =>
                                    {
                                        counted.fetch_add(1, Ordering::Relaxed);
                                    }
                                    _ => {
                                        failed.fetch_add(1, Ordering::Relaxed);
                                    }
                                }
                            }
                            session.close().await
                        })
                    })
                    .collect();
                let _ = ready_tx.send(());
                for task in tasks {
                    task.await??;
                }
                anyhow::Ok(())
            })
        });
        if ready_rx.await.is_err() {
            let error = match thread.join() {
                Ok(Err(error)) => error,
                _ => anyhow::anyhow!("the flood thread ended"),
            };
            return Err(error.context("the flood did not start"));
        }
        Ok(Self {
            running,
            calls,
            errors,
            started: Instant::now(),
            thread,
        })
    }

    /// Stops the flood: (calls answered, errors, time it ran).
    fn stop(self) -> Result<(u64, u64, Duration)> {
        self.running.store(false, Ordering::Relaxed);
        let took = self.started.elapsed();
        self.thread
            .join()
            .map_err(|_| anyhow::anyhow!("the flood thread panicked"))??;
        Ok((
            self.calls.load(Ordering::Relaxed),
            self.errors.load(Ordering::Relaxed),
            took,
        ))
    }
}
