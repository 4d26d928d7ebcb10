//! Faults under load, and what survives them: one table row per fault or attack, with how much was tried, what
//! held and what was lost.
//!
//! 1. Load: on each backend (a process server per session, a WASI guest per session), `sessions` sessions with
//!    `in_flight` calls in flight, for `seconds`, while a server child is killed (`SIGKILL`) every second, one
//!    WASI call in 64 stalls its guest on the CPU, and one call in 8 is dropped by its client mid-call. catwalk
//!    logs at debug to pipes whose readers are gone from the start. Afterwards: every call had an answer or an
//!    error, no session, waiting request, child or zombie is left, catwalk's RSS is back near its baseline, and
//!    SIGTERM drains it to exit 0.
//! 2. 1,100 slow clients, each holding half a request head, while a legitimate client calls.
//! 3. `abandoned` sessions opened and left without DELETE: reaped at their TTL, memory back to baseline.

use std::cell::{Cell, RefCell};
use std::fmt::Write as _;
use std::path::Path;
use std::rc::Rc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use futures_util::future::join_all;
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use serde_json::json;
use sha2::{Digest, Sha256};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpSocket;

use crate::client::{Answer, Catwalk, Logs, Session};

pub struct ChaosArgs<'a> {
    pub catwalk: &'a Path,
    pub state_dir: &'a Path,
    /// The hostile spin guest (tools `echo {message}`, `spin`).
    pub spin_guest: &'a Path,
    /// `catwalk-guest`'s echo example, native (tool `echo {message}`).
    pub native_echo: &'a Path,
    pub sessions: usize,
    pub in_flight: usize,
    pub seconds: u64,
    pub abandoned: usize,
    pub seed: u64,
    pub parts: Vec<Part>,
}

const ADMIN_TOKEN: &str = "catwalk-bench-chaos";
/// How long a call may go unanswered before the client counts it lost (catwalk's own request timeout, below,
/// is shorter: a call it cannot finish gets its error first).
const LOST_AFTER: Duration = Duration::from_secs(60);

/// The calls of one backend during the load, by how they ended.
#[derive(Default, Debug)]
struct Tally {
    tried: u64,
    results: u64,
    errors: u64,
    /// Dropped by the client before an answer came (on purpose).
    dropped: u64,
    /// No answer and no error: a connection closed without one, a stream ended empty, or nothing for a minute.
    lost: u64,
    /// Calls that stalled their guest (WASI) and were not dropped, and how many of those ended in an error.
    stalls: u64,
    stalls_ended: u64,
    /// Sessions found gone (their server killed) and opened again.
    reopened: u64,
}

/// A small xorshift generator: the faults' choices, reproducible from `--seed`.
struct Dice(Cell<u64>);

impl Dice {
    fn below(&self, n: u64) -> u64 {
        let mut x = self.0.get();
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0.set(x);
        x % n.max(1)
    }
}

struct Backend {
    tenant: &'static str,
    label: &'static str,
    /// One call in this many spins the guest on its CPU (0: none).
    stall_every: u64,
}

const BACKENDS: [Backend; 2] = [
    Backend {
        tenant: "proc",
        label: "process per session",
        stall_every: 0,
    },
    Backend {
        tenant: "wasi",
        label: "WASI guest per session",
        stall_every: 64,
    },
];

/// The parts of the run (`--only`).
#[derive(Clone, Copy, PartialEq, Eq, Debug, clap::ValueEnum)]
pub enum Part {
    /// Faults under load on both backends, logs to pipes whose readers are gone, and the drain.
    Load,
    /// 1,100 slow clients beside a legitimate one.
    Slow,
    /// Sessions abandoned without DELETE, reaped.
    Abandoned,
}

pub async fn chaos(args: ChaosArgs<'_>) -> Result<()> {
    raise_open_files()?;
    // A copy in the state dir: run as root, catwalk starts a tenant's child as the tenant's own uid, which may not
    // pass through the dirs the build is in.
    let bin = args.state_dir.join("bin");
    std::fs::create_dir_all(&bin)?;
    let native_echo = bin.join("echo");
    std::fs::copy(args.native_echo, &native_echo)
        .with_context(|| format!("copying {}", args.native_echo.display()))?;
    let tenants = format!(
        "[[tenant]]\nid = \"proc\"\ncommand = [{:?}]\ndirs = [{:?}]\n\n[[tenant]]\nid = \"wasi\"\nwasm = {:?}\n",
        native_echo.to_str().context("UTF-8")?,
        bin.to_str().context("UTF-8")?,
        args.spin_guest.to_str().context("UTF-8")?,
    );
    let mut table =
        String::from("| fault or attack | tried | what held | lost |\n|---|---|---|---|\n");
    let mut failures = Vec::new();
    if args.parts.contains(&Part::Load) {
        faults_under_load(&args, &tenants, &mut table, &mut failures).await?;
    }
    if args.parts.contains(&Part::Slow) {
        let slow = slow_clients(&args, &tenants).await?;
        let _ = writeln!(
            table,
            "| {} slow clients from one address, each holding half a request head (`ulimit -n 1024`) | {} legitimate calls beside them | all {} answered; {} slow connections shed at once by the per-address cap, the rest closed after {:.1} s (head timeout 2 s) | {} |",
            slow.connections,
            slow.legit,
            slow.answered,
            slow.shed,
            slow.closed_after.as_secs_f64(),
            slow.legit - slow.answered
        );
        if slow.answered < slow.legit {
            failures.push("legitimate calls failed beside slow clients".to_owned());
        }
    }
    if args.parts.contains(&Part::Abandoned) {
        let abandoned = abandoned_sessions(&args).await?;
        let base = abandoned.baseline_kib as f64;
        for (n, round) in abandoned.rounds.iter().enumerate() {
            let change = round.after_kib as f64 / base - 1.0;
            let _ = writeln!(
                table,
                "| {} sessions opened and abandoned without DELETE (WASI, TTL 10 s), round {} of {} | {} sessions, {:.1} MiB RSS at their peak | reaped: {} left after {:.1} s; RSS {:.1} MiB against a baseline of {:.1} MiB ({:+.1}%) | {} |",
                args.abandoned,
                n + 1,
                abandoned.rounds.len(),
                round.opened,
                round.peak_kib as f64 / 1024.0,
                round.left,
                round.reaped_after.as_secs_f64(),
                round.after_kib as f64 / 1024.0,
                base / 1024.0,
                change * 100.0,
                round.left
            );
            if round.left > 0 || change > 0.10 {
                failures.push(format!(
                    "abandoned sessions not reaped to baseline (round {})",
                    n + 1
                ));
            }
        }
    }
    println!("{table}");
    if !failures.is_empty() {
        bail!("chaos: {}", failures.join("; "));
    }
    Ok(())
}

/// The load with faults, and what is left after it: rows of `table`, and what failed.
async fn faults_under_load(
    args: &ChaosArgs<'_>,
    tenants: &str,
    table: &mut String,
    failures: &mut Vec<String>,
) -> Result<()> {
    let config = args.state_dir.join("chaos.toml");
    std::fs::write(&config, tenants)?;
    let admin_hash = hex(&Sha256::digest(ADMIN_TOKEN));
    let catwalk = Catwalk::start_with(
        args.catwalk,
        args.state_dir,
        &[
            "--config",
            config.to_str().context("UTF-8")?,
            "--admin-token-sha256",
            &admin_hash,
            "--cpu-budget",
            "250ms",
            "--request-timeout",
            "20s",
        ],
        Logs::ReadersGone,
    )
    .await?;
    let http = reqwest::Client::new();
    let dice = Dice(Cell::new(args.seed.max(1)));

    // A round without faults first, so that the baseline holds what any run allocates once.
    load(args, &catwalk, &http, &dice, false, Duration::from_secs(5)).await?;
    let settled = settle(&http, &catwalk).await?;
    let baseline = settled_rss(&catwalk).await;

    let (tallies, kills) = load(
        args,
        &catwalk,
        &http,
        &dice,
        true,
        Duration::from_secs(args.seconds),
    )
    .await?;
    let after_load = settle(&http, &catwalk).await?;
    let rss_after = settled_rss(&catwalk).await;
    let tree = catwalk.tree();
    let zombies = tree
        .iter()
        .filter(|&&pid| pid != catwalk.pid && state(pid) == Some('Z'))
        .count();
    let children = tree.len() - 1 - zombies;
    let exit = catwalk.stop_status().await?;

    let total_lost: u64 = tallies.iter().map(|t| t.lost).sum();
    for (backend, tally) in BACKENDS.iter().zip(&tallies) {
        let mut held = format!(
            "{} results, {} errors; {} sessions found ended and opened again",
            tally.results, tally.errors, tally.reopened
        );
        if backend.stall_every > 0 {
            let _ = write!(
                held,
                "; {} of {} stalls ended by the CPU budget with an error",
                tally.stalls_ended, tally.stalls
            );
        }
        let _ = writeln!(
            table,
            "| {} calls in flight over {} sessions for {} s, {}: {} | {} calls ({} dropped by their client mid-call) | {} | {} |",
            args.in_flight,
            args.sessions,
            args.seconds,
            backend.label,
            if backend.tenant == "proc" {
                format!("a server child `SIGKILL`ed every second ({kills} killed)")
            } else {
                format!("one call in {} stalls its guest", backend.stall_every)
            },
            tally.tried,
            tally.dropped,
            held,
            tally.lost
        );
    }
    let rss_change = rss_after as f64 / baseline as f64 - 1.0;
    let _ = writeln!(
        table,
        "| after the load: sessions, waiting requests, children, zombies, RSS | every session ended | {} sessions and {} waiting requests left (before the faults: {} and {}); {} children, {} zombies; RSS {:.1} MiB against a baseline of {:.1} MiB ({:+.1}%) | {} |",
        after_load.0,
        after_load.1,
        settled.0,
        settled.1,
        children,
        zombies,
        rss_after as f64 / 1024.0,
        baseline as f64 / 1024.0,
        rss_change * 100.0,
        after_load.0 + after_load.1 + zombies as u64,
    );
    let _ = writeln!(
        table,
        "| stdout and stderr readers gone for the whole run, logging at debug | every log line of the run met EPIPE | served throughout; SIGTERM drained it: {exit} | 0 |",
    );
    if total_lost > 0 {
        failures.push(format!("{total_lost} calls lost"));
    }
    if after_load.0 + after_load.1 > 0 || zombies > 0 || children > 0 {
        failures.push("state left after the load".to_owned());
    }
    if rss_change > 0.10 {
        failures.push(format!("RSS {:+.1}% after the load", rss_change * 100.0));
    }
    if !exit.success() {
        failures.push(format!("catwalk exited with {exit}"));
    }
    Ok(())
}

/// A session that workers share, and whether one of them is opening its successor.
struct Slot {
    session: RefCell<Session>,
    reopening: Cell<bool>,
}

/// Runs the load on both backends for `time`; with `faults`, kills, stalls and drops too. Every session is
/// DELETEd at the end. The tallies (in [`BACKENDS`] order) and the children killed.
async fn load(
    args: &ChaosArgs<'_>,
    catwalk: &Catwalk,
    http: &reqwest::Client,
    dice: &Dice,
    faults: bool,
    time: Duration,
) -> Result<(Vec<Tally>, u64)> {
    let deadline = Instant::now() + time;
    let next_id = Cell::new(0u64);
    let mut tallies = Vec::new();
    let mut calls = Vec::new();
    let mut pools = Vec::new();
    for backend in &BACKENDS {
        let path = format!("/t/{}/mcp", backend.tenant);
        let mut pool = Vec::new();
        for _ in 0..args.sessions {
            pool.push(Slot {
                session: RefCell::new(Session::open_at(http, &catwalk.base, &path).await?),
                reopening: Cell::new(false),
            });
        }
        pools.push(Rc::new(pool));
        tallies.push(Rc::new(RefCell::new(Tally::default())));
    }
    for ((backend, pool), tally) in BACKENDS.iter().zip(&pools).zip(&tallies) {
        for worker in 0..args.in_flight {
            let (pool, tally) = (pool.clone(), tally.clone());
            let (next_id, dice) = (&next_id, dice);
            calls.push(async move {
                while Instant::now() < deadline {
                    let slot = &pool[worker % pool.len()];
                    let session = slot.session.borrow().clone();
                    next_id.set(next_id.get() + 1);
                    let stall =
                        faults && backend.stall_every > 0 && dice.below(backend.stall_every) == 0;
                    let drop_after = (faults && dice.below(8) == 0)
                        .then(|| Duration::from_millis(1 + dice.below(30)));
                    let (tool, arguments) = if stall {
                        ("spin", json!({}))
                    } else {
                        ("echo", json!({"message": "chaos"}))
                    };
                    let call = session.try_call(next_id.get(), tool, arguments);
                    let ended = match drop_after {
                        Some(after) => tokio::time::timeout(after, call).await.ok(),
                        None => Some(
                            tokio::time::timeout(LOST_AFTER, call)
                                .await
                                .unwrap_or_else(|_| Err(anyhow::anyhow!("no answer in a minute"))),
                        ),
                    };
                    let gone = matches!(ended, Some(Ok(Answer::Status(404))));
                    {
                        let mut t = tally.borrow_mut();
                        t.tried += 1;
                        t.stalls += u64::from(stall && ended.is_some());
                        match ended {
                            None => t.dropped += 1,
                            Some(Ok(Answer::Result(answer))) => {
                                let text = answer["result"]["content"][0]["text"].as_str();
                                if text.is_some_and(|t| t.ends_with("chaos")) {
                                    t.results += 1;
                                } else {
                                    eprintln!("lost: {tool}: a result not of this call: {answer}");
                                    t.lost += 1;
                                }
                            }
                            Some(Ok(Answer::Error | Answer::Status(_))) => {
                                t.errors += 1;
                                t.stalls_ended += u64::from(stall);
                            }
                            Some(Err(e)) => {
                                eprintln!("lost: {tool}: {e:#}");
                                t.lost += 1;
                            }
                        }
                    }
                    // The session ended (its server was killed): open another in its place, once (the worker
                    // that sees it first does; the others go on with the old one and see 404 meanwhile).
                    let mine =
                        gone && !slot.reopening.get() && slot.session.borrow().id() == session.id();
                    if mine {
                        slot.reopening.set(true);
                        if let Ok(fresh) = session.reopen().await {
                            *slot.session.borrow_mut() = fresh;
                            tally.borrow_mut().reopened += 1;
                        }
                        slot.reopening.set(false);
                    }
                }
            });
        }
    }
    let killer = async {
        let mut kills = 0;
        if !faults {
            return kills;
        }
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        tick.tick().await;
        while Instant::now() < deadline {
            tick.tick().await;
            let servers: Vec<i32> = catwalk
                .tree()
                .into_iter()
                .filter(|&pid| pid != catwalk.pid && comm(pid).as_deref() == Some("echo"))
                .collect();
            if servers.is_empty() {
                continue;
            }
            let victim = servers[dice.below(servers.len() as u64) as usize];
            if kill(Pid::from_raw(victim), Signal::SIGKILL).is_ok() {
                kills += 1;
            }
        }
        kills
    };
    let (_, kills) = tokio::join!(join_all(calls), killer);
    for pool in &pools {
        for slot in pool.iter() {
            // Sessions whose server was killed are gone already (404).
            let session = slot.session.borrow().clone();
            let _ = session.close().await;
        }
    }
    let tallies = tallies
        .into_iter()
        .map(|t| Rc::try_unwrap(t).map(RefCell::into_inner))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|_| anyhow::anyhow!("a worker still holds its tally"))?;
    Ok((tallies, kills))
}

/// Waits (up to 30 s) for catwalk's sessions and waiting requests to reach zero; what is left then.
async fn settle(http: &reqwest::Client, catwalk: &Catwalk) -> Result<(u64, u64)> {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let metrics = http
            .get(format!("{}/metrics", catwalk.base))
            .bearer_auth(ADMIN_TOKEN)
            .send()
            .await?
            .error_for_status()?
            .text()
            .await?;
        let left = (
            gauge(&metrics, "catwalk_sessions"),
            gauge(&metrics, "catwalk_requests_waiting"),
        );
        if left == (0, 0) || Instant::now() > deadline {
            return Ok(left);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The sum of a gauge over its labels, from Prometheus text.
fn gauge(metrics: &str, name: &str) -> u64 {
    metrics
        .lines()
        .filter(|line| {
            line.strip_prefix(name)
                .is_some_and(|rest| rest.starts_with('{') || rest.starts_with(' '))
        })
        .filter_map(|line| line.rsplit(' ').next()?.parse::<f64>().ok())
        .sum::<f64>() as u64
}

struct Slow {
    connections: usize,
    shed: usize,
    legit: u64,
    answered: u64,
    closed_after: Duration,
}

/// 1,100 connections from 127.0.0.2, each sending half a request head, against a catwalk limited to 1,024 open
/// files; a legitimate client on 127.0.0.1 calls meanwhile.
async fn slow_clients(args: &ChaosArgs<'_>, tenants: &str) -> Result<Slow> {
    const CONNECTIONS: usize = 1100;
    let state = args.state_dir.join("slow");
    std::fs::create_dir_all(&state)?;
    let config = state.join("chaos.toml");
    std::fs::write(&config, tenants)?;
    let admin_hash = hex(&Sha256::digest(ADMIN_TOKEN));
    // `ulimit -n 1024` for catwalk alone: a shell that lowers it and execs catwalk.
    let wrapper = state.join("catwalk-1024.sh");
    std::fs::write(
        &wrapper,
        format!(
            "#!/bin/sh\nulimit -n 1024\nexec {:?} \"$@\"\n",
            args.catwalk.to_str().context("UTF-8")?
        ),
    )?;
    std::fs::set_permissions(
        &wrapper,
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )?;
    let catwalk = Catwalk::start(
        &wrapper,
        &state,
        &[
            "--config",
            config.to_str().context("UTF-8")?,
            "--admin-token-sha256",
            &admin_hash,
            "--header-timeout",
            "2s",
        ],
    )
    .await?;
    let addr: std::net::SocketAddr = catwalk
        .base
        .strip_prefix("http://")
        .context("a base URL")?
        .parse()?;
    let started = Instant::now();
    let mut slow = Vec::new();
    let mut shed = 0;
    for _ in 0..CONNECTIONS {
        let socket = TcpSocket::new_v4()?;
        socket.bind("127.0.0.2:0".parse()?)?;
        let Ok(mut stream) = socket.connect(addr).await else {
            shed += 1;
            continue;
        };
        if stream
            .write_all(b"POST /t/wasi/mcp HTTP/1.1\r\nHost: localhost\r\nX-Slow: ")
            .await
            .is_err()
        {
            shed += 1;
            continue;
        }
        slow.push(stream);
    }
    let http = reqwest::Client::new();
    let session = Session::open_at(&http, &catwalk.base, "/t/wasi/mcp").await?;
    // Each slow connection is watched until catwalk sheds it (503) or closes it; meanwhile the legitimate client
    // calls, one call after another.
    let done = Cell::new(false);
    let watch = async {
        let ends = join_all(slow.into_iter().map(|mut stream| async move {
            let mut buf = [0u8; 256];
            match tokio::time::timeout(Duration::from_secs(60), stream.read(&mut buf)).await {
                Err(_) => SlowEnd::StillOpen,
                Ok(Ok(n)) if buf[..n].starts_with(b"HTTP/1.1 503") => SlowEnd::Shed,
                // hyper answers a head that timed out with 408 before it closes.
                Ok(_) => SlowEnd::Closed(started.elapsed()),
            }
        }))
        .await;
        done.set(true);
        ends
    };
    let calls = async {
        let (mut legit, mut answered) = (0, 0);
        while !done.get() {
            legit += 1;
            if let Ok(Answer::Result(_)) = session
                .try_call(legit, "echo", json!({"message": "still here"}))
                .await
            {
                answered += 1;
            }
        }
        (legit, answered)
    };
    let (ends, (legit, answered)) = tokio::join!(watch, calls);
    let mut closed_after = Duration::ZERO;
    let mut still_open = 0;
    for end in ends {
        match end {
            SlowEnd::Shed => shed += 1,
            SlowEnd::Closed(after) => closed_after = closed_after.max(after),
            SlowEnd::StillOpen => still_open += 1,
        }
    }
    catwalk.stop().await?;
    if still_open > 0 {
        bail!("{still_open} slow connections were still open after a minute");
    }
    Ok(Slow {
        connections: CONNECTIONS,
        shed,
        legit,
        answered,
        closed_after,
    })
}

enum SlowEnd {
    Shed,
    Closed(Duration),
    StillOpen,
}

struct Abandoned {
    baseline_kib: u64,
    rounds: Vec<Round>,
}

struct Round {
    opened: usize,
    peak_kib: u64,
    after_kib: u64,
    left: u64,
    reaped_after: Duration,
}

/// `abandoned` WASI sessions opened and left; reaped at a TTL of 10 s.
async fn abandoned_sessions(args: &ChaosArgs<'_>) -> Result<Abandoned> {
    let state = args.state_dir.join("abandoned");
    std::fs::create_dir_all(&state)?;
    let cap = (args.abandoned + 100).to_string();
    let catwalk = Catwalk::start(
        args.catwalk,
        &state,
        &[
            "--wasm",
            args.spin_guest.to_str().context("UTF-8")?,
            "--max-sessions",
            &cap,
            "--session-ttl",
            "10s",
        ],
    )
    .await?;
    let http = reqwest::Client::new();
    // A first hundred, opened and closed, so that the baseline holds what any run allocates once.
    for _ in 0..100 {
        Session::open(&http, &catwalk.base).await?.close().await?;
    }
    settle_single(&http, &catwalk).await?;
    let baseline_kib = settled_rss(&catwalk).await;
    let mut rounds = Vec::new();
    for _ in 0..ABANDON_ROUNDS {
        let opened = Cell::new(0usize);
        let openers: Vec<_> = (0..16)
            .map(|_| async {
                while opened.get() < args.abandoned {
                    opened.set(opened.get() + 1);
                    if Session::open(&http, &catwalk.base).await.is_err() {
                        opened.set(opened.get() - 1);
                        tokio::time::sleep(Duration::from_millis(10)).await;
                    }
                }
            })
            .collect();
        join_all(openers).await;
        let peak_kib = catwalk.memory_kib("VmRSS");
        let abandoned_at = Instant::now();
        let left = settle_single(&http, &catwalk).await?;
        let reaped_after = abandoned_at.elapsed();
        rounds.push(Round {
            opened: opened.get(),
            peak_kib,
            left,
            reaped_after,
            after_kib: settled_rss(&catwalk).await,
        });
    }
    catwalk.stop().await?;
    Ok(Abandoned {
        baseline_kib,
        rounds,
    })
}

/// Rounds of abandoned sessions, one after another on one catwalk: memory that grows from round to round is a
/// leak, memory that stays the same is what a peak leaves allocated.
const ABANDON_ROUNDS: usize = 2;

/// catwalk's RSS once it stops falling: no drop of more than 1% over 3 s, within 30 s (what ended sessions free
/// is handed back a sweep or two after they end, and catwalk sweeps every second).
async fn settled_rss(catwalk: &Catwalk) -> u64 {
    let mut readings = vec![catwalk.memory_kib("VmRSS")];
    while readings.len() < 60 {
        tokio::time::sleep(Duration::from_millis(500)).await;
        readings.push(catwalk.memory_kib("VmRSS"));
        if let [.., then, _, _, _, _, _, now] = readings[..]
            && now + then / 100 >= then
        {
            return now;
        }
    }
    readings.last().copied().unwrap_or(0)
}

/// Waits (up to 60 s) for a single-tenant catwalk's sessions to reach zero; how many are left then.
async fn settle_single(http: &reqwest::Client, catwalk: &Catwalk) -> Result<u64> {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let metrics = http
            .get(format!("{}/metrics", catwalk.base))
            .send()
            .await?
            .error_for_status()?
            .text()
            .await?;
        let left = gauge(&metrics, "catwalk_sessions");
        if left == 0 || Instant::now() > deadline {
            return Ok(left);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The process's state letter (`R`, `S`, `Z`, ...), from `/proc/<pid>/stat`.
fn state(pid: i32) -> Option<char> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    stat.rsplit_once(')')?.1.trim_start().chars().next()
}

fn comm(pid: i32) -> Option<String> {
    std::fs::read_to_string(format!("/proc/{pid}/comm"))
        .ok()
        .map(|c| c.trim().to_owned())
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The bench holds 1,100 sockets of its own.
fn raise_open_files() -> Result<()> {
    use rustix::process::{Resource, Rlimit, getrlimit, setrlimit};
    let limit = getrlimit(Resource::Nofile);
    setrlimit(
        Resource::Nofile,
        Rlimit {
            current: limit.maximum,
            maximum: limit.maximum,
        },
    )?;
    Ok(())
}
