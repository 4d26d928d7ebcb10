//! Tenants of the WASI backend against hostile neighbours: latency beside spinning guests, how far past its CPU
//! budget a spinner runs, and catwalk's memory while guests allocate to their cap.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, ensure};
use serde_json::json;

use crate::client::{Catwalk, Session};
use crate::stats::{Samples, median, ms};

pub struct IsolationArgs<'a> {
    pub catwalk: &'a Path,
    pub state_dir: &'a Path,
    pub spin_guest: &'a Path,
    pub rounds: usize,
    pub calls: usize,
    pub spinners: usize,
}

/// Another session's echo alone and beside spinners, alternating for `rounds`; then spinners alone, for the CPU
/// catwalk spends per spin.
pub async fn isolation(args: IsolationArgs<'_>) -> Result<()> {
    let budget = Duration::from_secs(1);
    let guest = args.spin_guest.to_str().context("a UTF-8 path")?;
    let catwalk = Catwalk::start(
        args.catwalk,
        args.state_dir,
        &["--wasm", guest, "--cpu-budget", "1s"],
    )
    .await?;
    let http = reqwest::Client::new();
    let echo = Session::open(&http, &catwalk.base).await?;
    let mut next_id = 0;
    let mut sequential = async |samples: &mut Samples| -> Result<()> {
        for _ in 0..args.calls {
            next_id += 1;
            let started = Instant::now();
            let answer = echo.call(next_id, "echo", json!({"message": "hi"})).await?;
            samples.push(started.elapsed());
            ensure!(answer["result"]["content"][0]["text"] == "hi", "{answer}");
        }
        Ok(())
    };
    sequential(&mut Samples::default()).await?; // warm-up

    let mut alone = Samples::default();
    let mut beside = Samples::default();
    let (mut alone_p50, mut alone_p99, mut beside_p50, mut beside_p99) =
        (vec![], vec![], vec![], vec![]);
    let spin_walls = Arc::new(std::sync::Mutex::new(Spins::default()));
    for _ in 0..args.rounds {
        let mut round = Samples::default();
        sequential(&mut round).await?;
        alone_p50.push(round.quantile(0.5));
        alone_p99.push(round.quantile(0.99));
        alone.extend(&round);

        let spinning = Arc::new(AtomicBool::new(true));
        let mut spinners = Vec::new();
        for _ in 0..args.spinners {
            let session = Session::open(&http, &catwalk.base).await?;
            spinners.push(tokio::spawn(spin(
                session,
                spinning.clone(),
                spin_walls.clone(),
            )));
        }
        let mut round = Samples::default();
        sequential(&mut round).await?;
        spinning.store(false, Ordering::Relaxed);
        for spinner in spinners {
            spinner.await??;
        }
        beside_p50.push(round.quantile(0.5));
        beside_p99.push(round.quantile(0.99));
        beside.extend(&round);
    }

    // Spinners alone: catwalk's CPU per spin, measured by the kernel, against the budget it enforces.
    let spins_per_spinner = 3;
    let cpu_before = catwalk.cpu();
    let background_before = catwalk.thread_cpu("catwalk-guest-b");
    let ticker_before = catwalk.thread_cpu("catwalk-epoch");
    let mut spinners = Vec::new();
    let counted = Arc::new(std::sync::Mutex::new(Spins::default()));
    for _ in 0..args.spinners {
        let session = Session::open(&http, &catwalk.base).await?;
        let counted = counted.clone();
        spinners.push(tokio::spawn(async move {
            for _ in 0..spins_per_spinner {
                spin_once(&session, &counted).await?;
            }
            anyhow::Ok(())
        }));
    }
    for spinner in spinners {
        spinner.await??;
    }
    let spins = args.spinners * spins_per_spinner;
    let cpu_per_spin = (catwalk.cpu() - cpu_before) / spins as u32;
    let background_per_spin =
        (catwalk.thread_cpu("catwalk-guest-b") - background_before) / spins as u32;
    let ticker_per_spin = (catwalk.thread_cpu("catwalk-epoch") - ticker_before) / spins as u32;
    let reported = counted.lock().expect("not poisoned").used.clone();
    catwalk.stop().await?;

    let walls = spin_walls.lock().expect("not poisoned").walls.clone();
    println!(
        "## Another session's echo (tools/call, sequential), alone and beside {} spinning guests",
        args.spinners
    );
    println!();
    println!(
        "{} rounds × {} calls each way; per-round quantiles, median over rounds (all calls pooled in brackets).",
        args.rounds, args.calls
    );
    println!();
    println!("| | p50 ms | p99 ms |");
    println!("|---|---|---|");
    println!(
        "| alone | {} ({}) | {} ({}) |",
        ms(median(&alone_p50)),
        ms(alone.quantile(0.5)),
        ms(median(&alone_p99)),
        ms(alone.quantile(0.99))
    );
    println!(
        "| beside {} spinners | {} ({}) | {} ({}) |",
        args.spinners,
        ms(median(&beside_p50)),
        ms(beside.quantile(0.5)),
        ms(median(&beside_p99)),
        ms(beside.quantile(0.99))
    );
    println!(
        "| ratio | {:.3} ({:.3}) | {:.3} ({:.3}) |",
        ratio(median(&beside_p50), median(&alone_p50)),
        ratio(beside.quantile(0.5), alone.quantile(0.5)),
        ratio(median(&beside_p99), median(&alone_p99)),
        ratio(beside.quantile(0.99), alone.quantile(0.99))
    );
    println!();
    println!(
        "Spinners trapped: {} while measured, wall time from call to error p50 {} ms, max {} ms (budget {budget:?} of CPU).",
        walls.len(),
        ms(walls.quantile(0.5)),
        ms(walls.quantile(1.0))
    );
    println!();
    println!("Spinners alone, {spins} spins: CPU per spin");
    println!();
    println!("| measured by | ms | past the budget, ms |");
    println!("|---|---|---|");
    for (what, cpu) in [
        (
            "catwalk, as it reports in the error (guest thread's CPU clock), max",
            reported.quantile(1.0),
        ),
        (
            "kernel, catwalk's background-lane threads (10 ms ticks)",
            background_per_spin,
        ),
        (
            "kernel, the whole catwalk process (10 ms ticks)",
            cpu_per_spin,
        ),
    ] {
        println!(
            "| {what} | {} | {} |",
            ms(cpu),
            ms(cpu.saturating_sub(budget))
        );
    }
    println!(
        "The epoch ticker thread's part of the process figure: {} ms per spin.",
        ms(ticker_per_spin)
    );
    Ok(())
}

/// Spins until told to stop, one call after another; every call must end in the CPU-budget error.
async fn spin(
    session: Session,
    spinning: Arc<AtomicBool>,
    walls: Arc<std::sync::Mutex<Spins>>,
) -> Result<()> {
    while spinning.load(Ordering::Relaxed) {
        spin_once(&session, &walls).await?;
    }
    Ok(())
}

/// One spin in a fresh session of the same server (the trap ends the session it ran in).
async fn spin_once(session: &Session, spins: &std::sync::Mutex<Spins>) -> Result<()> {
    let fresh = session.reopen().await?;
    let started = Instant::now();
    let answer = fresh.call(1, "spin", json!({})).await?;
    let wall = started.elapsed();
    let message = answer["error"]["message"].as_str().unwrap_or_default();
    ensure!(
        message.contains("CPU budget"),
        "the spin was not trapped: {answer}"
    );
    // "... used 1.000s of CPU on one request, past its CPU budget of 1s"
    let used = message
        .split_once("used ")
        .and_then(|(_, rest)| rest.split_once(" of CPU"))
        .and_then(|(used, _)| parse_duration(used))
        .with_context(|| format!("no CPU figure in {message:?}"))?;
    let mut spins = spins.lock().expect("not poisoned");
    spins.walls.push(wall);
    spins.used.push(used);
    Ok(())
}

/// Spins' wall time from call to error, and the CPU catwalk charged them.
#[derive(Default)]
struct Spins {
    walls: Samples,
    used: Samples,
}

/// A `Duration` as Rust's `Debug` prints it: `1.000s`, `999.2ms`, `12µs`.
fn parse_duration(text: &str) -> Option<Duration> {
    let split = text.find(|c: char| !(c.is_ascii_digit() || c == '.'))?;
    let (number, unit) = text.split_at(split);
    let number: f64 = number.parse().ok()?;
    let seconds = match unit {
        "s" => number,
        "ms" => number / 1e3,
        "µs" => number / 1e6,
        "ns" => number / 1e9,
        _ => return None,
    };
    Some(Duration::from_secs_f64(seconds))
}

pub struct SessionsArgs<'a> {
    pub catwalk: &'a Path,
    pub state_dir: &'a Path,
    pub native_echo: &'a Path,
    pub sessions: usize,
    pub calls: usize,
}

/// The built-in demo guest against the same server built natively behind the process backend: new session to
/// initialize answered, tools/call, and catwalk's RSS per idle session.
pub async fn sessions(args: SessionsArgs<'_>) -> Result<()> {
    let native = args.native_echo.to_str().context("a UTF-8 path")?;
    let native_sessions = args.sessions.min(100);
    println!(
        "| backend | sessions | new session → initialize p50 / p99 ms | tools/call p50 / p99 ms | RSS idle → with sessions MiB | RSS per idle session KiB |"
    );
    println!("|---|---|---|---|---|---|");
    for (label, server, sessions) in [
        (
            "WASI guest (built-in demo, wasm32-wasip1)",
            vec![],
            args.sessions,
        ),
        (
            "same server native, process backend",
            vec!["--", native],
            native_sessions,
        ),
    ] {
        let max_sessions = (sessions + 8).to_string();
        let mut flags = vec!["--max-sessions", max_sessions.as_str()];
        flags.extend(server);
        let catwalk = Catwalk::start(args.catwalk, args.state_dir, &flags).await?;
        let http = reqwest::Client::new();
        let idle = catwalk.tree_rss_kib();
        let mut starts = Samples::default();
        let mut open = Vec::with_capacity(sessions);
        for _ in 0..sessions {
            let started = Instant::now();
            open.push(Session::open(&http, &catwalk.base).await?);
            starts.push(started.elapsed());
        }
        let with_sessions = catwalk.tree_rss_kib();
        let mut calls = Samples::default();
        for id in 0..args.calls as u64 {
            let started = Instant::now();
            let answer = open[0].call(id, "echo", json!({"message": "hi"})).await?;
            calls.push(started.elapsed());
            ensure!(
                answer["result"]["content"][0]["text"] == "Echo: hi",
                "{answer}"
            );
        }
        catwalk.stop().await?;
        println!(
            "| {label} | {sessions} | {} / {} | {} / {} | {:.1} → {:.1} | {} |",
            ms(starts.quantile(0.5)),
            ms(starts.quantile(0.99)),
            ms(calls.quantile(0.5)),
            ms(calls.quantile(0.99)),
            idle as f64 / 1024.0,
            with_sessions as f64 / 1024.0,
            with_sessions.saturating_sub(idle) / sessions as u64
        );
    }
    Ok(())
}

pub struct MemoryArgs<'a> {
    pub catwalk: &'a Path,
    pub state_dir: &'a Path,
    pub memory_guest: &'a Path,
    pub sessions: usize,
}

/// `sessions` guests allocate at once until refused at a 64 MiB cap: catwalk's RSS before, at its peak and after.
pub async fn memory(args: MemoryArgs<'_>) -> Result<()> {
    let guest = args.memory_guest.to_str().context("a UTF-8 path")?;
    let sessions = args.sessions.to_string();
    let catwalk = Catwalk::start(
        args.catwalk,
        args.state_dir,
        &[
            "--wasm",
            guest,
            "--memory",
            "64MiB",
            "--max-sessions",
            &sessions,
        ],
    )
    .await?;
    let http = reqwest::Client::new();
    let mut open = Vec::new();
    for _ in 0..args.sessions {
        open.push(Session::open(&http, &catwalk.base).await?);
    }
    let before = catwalk.memory_kib("VmRSS");
    let mut bombs = Vec::new();
    for session in open {
        bombs.push(tokio::spawn(async move {
            session.call(1, "alloc", json!({"mib": 4096})).await
        }));
    }
    let mut refused = 0;
    for bomb in bombs {
        let answer = bomb.await??;
        let message = answer["error"]["message"].as_str().unwrap_or_default();
        if message.contains("memory") || message.contains("failed") {
            refused += 1;
        }
    }
    let peak = catwalk.memory_kib("VmHWM");
    let after = catwalk.memory_kib("VmRSS");
    catwalk.stop().await?;
    ensure!(
        refused == args.sessions,
        "only {refused} of {} bombs were refused",
        args.sessions
    );
    let cap_total = args.sessions as u64 * 64 * 1024;
    println!(
        "## {} guests allocating 4 GiB each at once, capped at 64 MiB ({} MiB in all)",
        args.sessions,
        cap_total / 1024
    );
    println!();
    println!("| catwalk RSS | MiB |");
    println!("|---|---|");
    println!(
        "| with the sessions open, before | {:.1} |",
        before as f64 / 1024.0
    );
    println!("| peak (VmHWM) | {:.1} |", peak as f64 / 1024.0);
    println!(
        "| after every bomb was refused | {:.1} |",
        after as f64 / 1024.0
    );
    println!();
    println!(
        "All {refused} refused at the cap; peak growth {:.1} MiB = {:.0}% of the caps' sum.",
        (peak.saturating_sub(before)) as f64 / 1024.0,
        peak.saturating_sub(before) as f64 * 100.0 / cap_total as f64
    );
    Ok(())
}

fn ratio(a: Duration, b: Duration) -> f64 {
    a.as_secs_f64() / b.as_secs_f64()
}

pub struct RowsArgs<'a> {
    pub catwalk: &'a Path,
    pub state_dir: &'a Path,
    /// The demo guest: `catwalk-guest`'s echo example for wasm32-wasip1.
    pub echo_guest: &'a Path,
    /// Idle sessions held, in steps: RSS per session and the probe's latency at each.
    pub steps: &'a [usize],
    pub calls: usize,
}

/// The WASI rows of the peers report. Two tenants serve the demo guest: `idle` opens sessions up to each step
/// and holds them; `probe` calls echo on one session, sequentially, alone (before the sessions open and after
/// they are ended, pooled) and at each step.
pub async fn rows(args: RowsArgs<'_>) -> Result<serde_json::Value> {
    let guest = args.echo_guest.to_str().context("a UTF-8 path")?;
    let most = args.steps.iter().copied().max().unwrap_or(0);
    let max_sessions = (most + 8).to_string();
    let catwalk = Catwalk::start_tenants(
        args.catwalk,
        args.state_dir,
        "wasi-rows.toml",
        &format!(
            "[[tenant]]\nid = \"idle\"\nwasm = {guest:?}\n\n[[tenant]]\nid = \"probe\"\nwasm = {guest:?}\n"
        ),
        &["--max-sessions", &max_sessions],
    )
    .await?;
    let http = reqwest::Client::new();
    let probe = Session::open_at(&http, &catwalk.base, "/t/probe/mcp").await?;
    let mut next_id = 0;
    let mut calls = async || -> Result<Samples> {
        let mut samples = Samples::default();
        for _ in 0..args.calls {
            next_id += 1;
            let started = Instant::now();
            let answer = probe
                .call(next_id, "echo", json!({"message": "hi"}))
                .await?;
            samples.push(started.elapsed());
            ensure!(
                answer["result"]["content"][0]["text"] == "Echo: hi",
                "{answer}"
            );
        }
        Ok(samples)
    };
    calls().await?; // warm-up
    let alone_before = calls().await?;
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    // The floor: an HTTP round trip to catwalk with this client, nothing behind it.
    let mut floor = Samples::default();
    for _ in 0..args.calls {
        let started = Instant::now();
        let health = http.get(format!("{}/healthz", catwalk.base)).send().await?;
        ensure!(
            health.status().is_success(),
            "/healthz: {}",
            health.status()
        );
        health.bytes().await?;
        floor.push(started.elapsed());
    }
    let mut probe_p50 = serde_json::Map::new();
    let mut probe_p99 = serde_json::Map::new();
    let mut per_session = serde_json::Map::new();

    let before = catwalk.memory_kib("VmRSS");
    let mut held = Vec::with_capacity(most);
    let mut starts = Samples::default();
    for &step in args.steps {
        while held.len() < step {
            let (session, initialize) =
                Session::open_timed(&http, &catwalk.base, "/t/idle/mcp").await?;
            starts.push(initialize);
            held.push(session);
        }
        let rss = catwalk.memory_kib("VmRSS");
        per_session.insert(
            step.to_string(),
            json!(rss.saturating_sub(before) as f64 / step.max(1) as f64),
        );
        let beside = calls().await?;
        probe_p50.insert(step.to_string(), json!(ms(beside.quantile(0.5))));
        probe_p99.insert(step.to_string(), json!(ms(beside.quantile(0.99))));
        eprintln!(
            "wasi: {step} idle sessions, {:.1} KiB each; probe p50 / p99 {:.3} / {:.3} ms",
            rss.saturating_sub(before) as f64 / step.max(1) as f64,
            ms(beside.quantile(0.5)),
            ms(beside.quantile(0.99))
        );
    }
    // The probe alone again once the idle sessions are gone: alone is measured on both sides of beside, so that
    // the machine's drift over the minutes the sessions take to open does not pass for their effect.
    for session in &held {
        session.close().await?;
    }
    drop(held);
    let alone_after = calls().await?;
    let mut alone = alone_before.clone();
    alone.extend(&alone_after);
    probe_p50.insert("0".into(), json!(ms(alone.quantile(0.5))));
    probe_p99.insert("0".into(), json!(ms(alone.quantile(0.99))));
    catwalk.stop().await?;
    Ok(json!({
        "http_floor_p50_ms": ms(floor.quantile(0.5)),
        "new_session_p50_ms": ms(starts.quantile(0.5)),
        "new_session_p99_ms": ms(starts.quantile(0.99)),
        "call_p50_ms": ms(alone.quantile(0.5)),
        "call_p99_ms": ms(alone.quantile(0.99)),
        "probe_alone_p99_ms": {
            "before": ms(alone_before.quantile(0.99)),
            "after": ms(alone_after.quantile(0.99)),
        },
        "per_session_kib": per_session,
        "probe_p50_ms": probe_p50,
        "probe_p99_ms": probe_p99,
    }))
}
