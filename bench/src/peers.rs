//! Side by side with the peers: what the shared harness (`../shared/bench`) does not measure itself, and the
//! report of a `bench/peers.sh` run.
//!
//! - [`new_sessions`]: every bridge of a harness `bridges.conf` × every server of its `servers.conf`, started
//!   as the harness starts them: the time from a new session's `initialize` to its answer, on a running bridge;
//!   and catwalk serving an npm package by name (`--package`: resolved once, then started from its bin).
//! - [`report`]: the harness's records, these, and `catwalk-bench wasi`'s, over several rounds, as one table:
//!   medians over the rounds, and catwalk's ratio to the best peer.

use std::collections::BTreeMap;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;
use serde_json::{Value, json};

use crate::client::Session;
use crate::stats::Samples;

/// Labels to run, as the harness's `BRIDGES`/`SERVERS`: alternatives separated by `|`, each a substring of
/// the label; `.` runs everything.
#[derive(Debug, Clone)]
pub struct Filter(Vec<String>);

impl std::str::FromStr for Filter {
    type Err = std::convert::Infallible;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(Self(s.split('|').map(str::to_owned).collect()))
    }
}

impl Filter {
    fn is_match(&self, label: &str) -> bool {
        self.0
            .iter()
            .any(|f| f == "." || label.contains(f.as_str()))
    }
}

/// One line of a harness `.conf` file: `LABEL | FIELD | FIELD ...`.
fn conf_lines(path: &Path) -> Result<Vec<Vec<String>>> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    Ok(text
        .lines()
        .map(str::trim)
        .filter(|line| !line.is_empty() && !line.starts_with('#'))
        .map(|line| line.split('|').map(|f| f.trim().to_owned()).collect())
        .collect())
}

pub struct NewSessionsArgs<'a> {
    pub bridges: &'a Path,
    pub servers: &'a Path,
    /// The harness dir: `{DIR}`, `{NM}` and `{VENV}` of the conf files.
    pub dir: &'a Path,
    pub filter: &'a Filter,
    pub server_filter: &'a Filter,
    pub sessions: usize,
    /// Between two sessions: clients arrive one at a time, not back to back.
    pub pause: Duration,
    /// catwalk, and the npm package it serves by name.
    pub catwalk: &'a Path,
    pub package: Option<&'a str>,
    pub json: &'a Path,
}

pub async fn new_sessions(args: NewSessionsArgs<'_>) -> Result<()> {
    let dir = args.dir.to_str().context("a UTF-8 dir")?;
    let fill = |template: &str, server: &str, port: u16| {
        template
            .replace("{SERVER}", server)
            .replace("{PORT}", &port.to_string())
            .replace("{DIR}", dir)
            .replace("{NM}", &format!("{dir}/node/node_modules"))
            .replace("{VENV}", &format!("{dir}/venv"))
    };
    let mut runs = Vec::new();
    for bridge in conf_lines(args.bridges)? {
        let [label, command, mcp, _sse] = bridge.as_slice() else {
            bail!("a bridge line without four fields: {bridge:?}");
        };
        if mcp == "-" || !args.filter.is_match(label) {
            continue;
        }
        for server in conf_lines(args.servers)? {
            let [name, server_command, ..] = server.as_slice() else {
                bail!("a server line without a command: {server:?}");
            };
            if args.server_filter.is_match(name) {
                runs.push((
                    format!("{label}/{name}"),
                    command.clone(),
                    fill(server_command, "", 0),
                    mcp.clone(),
                ));
            }
        }
    }
    let mut out = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(args.json)
        .with_context(|| format!("opening {}", args.json.display()))?;
    for (label, command, server, path) in runs {
        let port = free_port()?;
        let command = fill(&command, &server, port);
        let record = measure(&label, &command, port, &path, args.sessions, args.pause).await?;
        writeln!(out, "{record}")?;
    }
    if let Some(package) = args.package {
        let port = free_port()?;
        let state = args.dir.join("catwalk-state");
        let command = format!(
            "{} serve --port {port} --state-dir {} --package {package}",
            args.catwalk.display(),
            state.display()
        );
        let record = measure(
            "catwalk/package",
            &command,
            port,
            "/mcp",
            args.sessions,
            args.pause,
        )
        .await?;
        writeln!(out, "{record}")?;
    }
    Ok(())
}

fn free_port() -> Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

/// Starts `command` as the harness does (`sh -c "exec ..."`, its own process group), opens `sessions` sessions
/// one after another once it answers, and stops the group.
async fn measure(
    label: &str,
    command: &str,
    port: u16,
    path: &str,
    sessions: usize,
    pause: Duration,
) -> Result<Value> {
    eprintln!("new sessions: {label}");
    let mut child = tokio::process::Command::new("sh")
        .arg("-c")
        .arg(format!("exec {command}"))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .process_group(0)
        .kill_on_drop(true)
        .spawn()
        .with_context(|| format!("starting {label}"))?;
    let group = Pid::from_raw(child.id().context("exited at once")? as i32);
    let result = sample(port, path, sessions, pause).await;
    let _ = killpg(group, Signal::SIGTERM);
    if tokio::time::timeout(Duration::from_secs(5), child.wait())
        .await
        .is_err()
    {
        let _ = killpg(group, Signal::SIGKILL);
        child.wait().await?;
    }
    let _ = killpg(group, Signal::SIGKILL);
    Ok(match result {
        Ok(samples) => json!({
            "kind": "new_session", "label": label, "sessions": samples.len(),
            "p50_ms": samples.quantile(0.5).as_secs_f64() * 1e3,
            "p99_ms": samples.quantile(0.99).as_secs_f64() * 1e3,
        }),
        Err(e) => json!({"kind": "new_session", "label": label, "error": format!("{e:#}")}),
    })
}

/// The first session is the warm-up (and waits for the bridge to listen); then `sessions` timed ones, `pause`
/// apart, each ended (DELETE) before the next, as a client would.
async fn sample(port: u16, path: &str, sessions: usize, pause: Duration) -> Result<Samples> {
    let http = reqwest::Client::new();
    let base = format!("http://127.0.0.1:{port}");
    let deadline = Instant::now() + Duration::from_secs(180);
    loop {
        match Session::open_at(&http, &base, path).await {
            Ok(session) => {
                let _ = session.close().await;
                break;
            }
            Err(_) if Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(50)).await
            }
            Err(e) => return Err(e.context("the bridge did not answer within 180 s")),
        }
    }
    let mut samples = Samples::default();
    for _ in 0..sessions {
        tokio::time::sleep(pause).await;
        let (session, initialize) = Session::open_timed(&http, &base, path).await?;
        samples.push(initialize);
        // Not every bridge ends sessions on DELETE; those that do not keep them until they stop.
        let _ = session.close().await;
    }
    Ok(samples)
}

/// Which way is better for a figure.
#[derive(Clone, Copy, PartialEq)]
enum Better {
    Lower,
    Higher,
}

/// One row of the report: a figure read from a bridge's records.
struct Metric {
    name: &'static str,
    better: Better,
    /// Decimals shown.
    digits: usize,
    read: fn(&Records) -> Option<f64>,
}

/// What one round recorded of one `bridge/server`.
#[derive(Default)]
struct Records {
    bridge: Option<Value>,
    new_session: Option<Value>,
    cold_npx: Option<Value>,
}

fn phase<'a>(record: &'a Value, name: &str) -> Option<&'a Value> {
    record["phases"]
        .as_array()?
        .iter()
        .find(|p| p["name"] == name)
}

fn phase_figure(records: &Records, name: &str, field: &str) -> Option<f64> {
    phase(records.bridge.as_ref()?, name)?[field].as_f64()
}

fn errors(records: &Records) -> Option<f64> {
    let bridge = records.bridge.as_ref()?;
    if bridge.get("error").is_some_and(|e| !e.is_null()) {
        return Some(f64::INFINITY);
    }
    let mut sum = 0.0;
    for phase in bridge["phases"].as_array()? {
        for count in phase["errors"].as_object()?.values() {
            sum += count.as_f64().unwrap_or(0.0);
        }
    }
    Some(sum)
}

const METRICS: &[Metric] = &[
    Metric {
        name: "tools/call p50 ms, sequential",
        better: Better::Lower,
        digits: 3,
        read: |r| phase_figure(r, "http seq", "p50_ms"),
    },
    Metric {
        name: "tools/call p99 ms, sequential",
        better: Better::Lower,
        digits: 3,
        read: |r| phase_figure(r, "http seq", "p99_ms"),
    },
    Metric {
        name: "calls/s c=1, one session",
        better: Better::Higher,
        digits: 0,
        read: |r| phase_figure(r, "http c=1", "rps"),
    },
    Metric {
        name: "calls/s c=16, one session",
        better: Better::Higher,
        digits: 0,
        read: |r| phase_figure(r, "http c=16", "rps"),
    },
    Metric {
        name: "calls/s c=64, one session",
        better: Better::Higher,
        digits: 0,
        read: |r| phase_figure(r, "http c=64", "rps"),
    },
    Metric {
        name: "calls/s c=16, 16 sessions",
        better: Better::Higher,
        digits: 0,
        read: |r| phase_figure(r, "http c=16 per-sess", "rps"),
    },
    Metric {
        name: "legacy SSE tools/call p50 ms",
        better: Better::Lower,
        digits: 3,
        read: |r| phase_figure(r, "sse seq", "p50_ms"),
    },
    Metric {
        name: "legacy SSE calls/s c=16",
        better: Better::Higher,
        digits: 0,
        read: |r| phase_figure(r, "sse c=16", "rps"),
    },
    Metric {
        name: "cold start → first tools/call ms",
        better: Better::Lower,
        digits: 1,
        read: |r| r.bridge.as_ref()?["cold_start_median_ms"].as_f64(),
    },
    Metric {
        name: "new session → initialize ms, p50",
        better: Better::Lower,
        digits: 2,
        read: |r| r.new_session.as_ref()?["p50_ms"].as_f64(),
    },
    Metric {
        name: "bridge RSS idle MiB",
        better: Better::Lower,
        digits: 1,
        read: |r| r.bridge.as_ref()?["idle_rss_mib"]["bridge"].as_f64(),
    },
    Metric {
        name: "bridge RSS peak MiB",
        better: Better::Lower,
        digits: 1,
        read: |r| r.bridge.as_ref()?["peak_rss_mib"]["bridge"].as_f64(),
    },
    Metric {
        name: "errors (all phases)",
        better: Better::Lower,
        digits: 0,
        read: errors,
    },
];

fn median(mut values: Vec<f64>) -> Option<f64> {
    values.retain(|v| !v.is_nan());
    values.sort_by(f64::total_cmp);
    values.get(values.len() / 2).copied()
}

fn read_jsonl(path: &Path) -> Vec<Value> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .filter_map(|line| serde_json::from_str(line).ok())
        .collect()
}

/// Prints the report of the rounds in `rounds` (each a harness run dir holding `results.jsonl`,
/// `sessions.jsonl` and `wasi.json`).
pub fn report(rounds: &[PathBuf], versions: Option<&Path>) -> Result<()> {
    if rounds.is_empty() {
        bail!("no rounds given");
    }
    // label ("bridge/server") -> one Records per round
    let mut by_label: BTreeMap<String, Vec<Records>> = BTreeMap::new();
    let mut wasi = Vec::new();
    let mut floors: BTreeMap<String, Vec<f64>> = BTreeMap::new();
    for (round, dir) in rounds.iter().enumerate() {
        fn slot<'a>(
            by_label: &'a mut BTreeMap<String, Vec<Records>>,
            label: &str,
            rounds: usize,
            round: usize,
        ) -> &'a mut Records {
            let rows = by_label.entry(label.to_owned()).or_default();
            rows.resize_with(rounds, Records::default);
            &mut rows[round]
        }
        let n = rounds.len();
        for record in read_jsonl(&dir.join("results.jsonl")) {
            let label = record["label"].as_str().unwrap_or_default().to_owned();
            match record["kind"].as_str() {
                Some("bridge") => slot(&mut by_label, &label, n, round).bridge = Some(record),
                Some("coldstart") if label.ends_with("(warm cache)") => {
                    let bridge = label.split('/').next().unwrap_or_default();
                    slot(&mut by_label, &format!("{bridge}/everything"), n, round).cold_npx =
                        Some(record);
                }
                Some("stdio") => {
                    if let Some(p50) =
                        phase(&record, "stdio seq").and_then(|p| p["p50_ms"].as_f64())
                    {
                        floors.entry(label).or_default().push(p50);
                    }
                }
                _ => {}
            }
        }
        for record in read_jsonl(&dir.join("sessions.jsonl")) {
            let label = record["label"].as_str().unwrap_or_default().to_owned();
            slot(&mut by_label, &label, n, round).new_session = Some(record);
        }
        if let Ok(text) = std::fs::read_to_string(dir.join("wasi.json")) {
            wasi.push(serde_json::from_str::<Value>(&text)?);
        }
    }

    println!("# catwalk beside its peers\n");
    println!(
        "Medians over {} rounds of `bash bench/peers.sh`; each round runs every bridge on the same stdio servers, \
         one after another, with nothing else measured at the same time. Ratios are catwalk's figure over the \
         best peer's: below 1 is catwalk ahead for times and memory, above 1 for throughput.\n",
        rounds.len()
    );
    if let Some(versions) = versions {
        println!(
            "```\n{}```\n",
            std::fs::read_to_string(versions).unwrap_or_default()
        );
    }
    let servers: std::collections::BTreeSet<String> = by_label
        .keys()
        .filter_map(|l| l.split_once('/').map(|(_, s)| s.to_owned()))
        .filter(|s| s != "package")
        .collect();
    for server in &servers {
        let bridges: Vec<&str> = by_label
            .keys()
            .filter_map(|l| l.strip_suffix(&format!("/{server}")))
            .collect();
        let (ours, peers): (Vec<&str>, Vec<&str>) =
            bridges.iter().partition(|b| b.starts_with("catwalk"));
        let floor = floors
            .get(&format!("stdio/{server}"))
            .and_then(|v| median(v.clone()));
        println!("## server: {server}\n");
        if let Some(floor) = floor {
            println!("The server alone over stdio (no bridge), tools/call p50: {floor:.3} ms.\n");
        }
        print!("|");
        for ours in &ours {
            print!(" | {ours} | {ours} ÷ best peer");
        }
        print!(" | best peer |");
        for peer in &peers {
            print!(" {peer} |");
        }
        println!();
        println!(
            "|---|{}---|{}",
            "---|---|".repeat(ours.len()),
            "---|".repeat(peers.len())
        );
        for metric in METRICS {
            let value = |bridge: &str| -> Option<f64> {
                let rows = by_label.get(&format!("{bridge}/{server}"))?;
                median(rows.iter().filter_map(|r| (metric.read)(r)).collect())
            };
            let best = peers
                .iter()
                .filter_map(|p| value(p).map(|v| (p, v)))
                .reduce(|a, b| match metric.better {
                    Better::Lower if b.1 < a.1 => b,
                    Better::Higher if b.1 > a.1 => b,
                    _ => a,
                });
            let show =
                |v: Option<f64>| v.map_or("–".to_owned(), |v| format!("{v:.*}", metric.digits));
            print!("| {} |", metric.name);
            for ours in &ours {
                let value = value(ours);
                let ratio = match (value, best) {
                    (Some(c), Some((_, b))) if b != 0.0 => format!("{:.2}", c / b),
                    _ => "–".to_owned(),
                };
                print!(" {} | {ratio} |", show(value));
            }
            print!(
                " {} |",
                best.map_or("–".to_owned(), |(p, v)| format!(
                    "{} ({p})",
                    show(Some(v))
                )),
            );
            for peer in &peers {
                print!(" {} |", show(value(peer)));
            }
            println!();
        }
        println!();
    }

    // npm: catwalk's new session with the package resolved once, against the peers' cold start with `npx -y`.
    let npx: Vec<(String, f64)> = by_label
        .iter()
        .filter_map(|(label, rows)| {
            let bridge = label.strip_suffix("/everything")?;
            let cold = median(
                rows.iter()
                    .filter_map(|r| r.cold_npx.as_ref()?["median_ms"].as_f64())
                    .collect(),
            )?;
            Some((bridge.to_owned(), cold))
        })
        .collect();
    let package = by_label.get("catwalk/package").and_then(|rows| {
        median(
            rows.iter()
                .filter_map(|r| r.new_session.as_ref()?["p50_ms"].as_f64())
                .collect(),
        )
    });
    if !npx.is_empty() || package.is_some() {
        println!("## npm: `@modelcontextprotocol/server-everything` by name\n");
        println!("| | ms |\n|---|---|");
        if let Some(package) = package {
            println!(
                "| catwalk `--package`: new session → initialize answered (package resolved once) | {package:.1} |"
            );
        }
        for (bridge, cold) in &npx {
            println!(
                "| {bridge}: cold start with `npx -y` (warm npm cache) → first tools/call | {cold:.1} |"
            );
        }
        let best = npx
            .iter()
            .filter(|(b, _)| !b.starts_with("catwalk"))
            .map(|(_, v)| *v)
            .reduce(f64::min);
        if let (Some(package), Some(best)) = (package, best) {
            println!(
                "| catwalk's new session ÷ the fastest peer's cold start | {:.3} |",
                package / best
            );
        }
        println!();
    }

    if !wasi.is_empty() {
        println!("## catwalk only: the WASI backend (built-in demo guest)\n");
        println!("| | median |\n|---|---|");
        let figures = [
            (
                "new session → initialize answered, p50 ms",
                "/new_session_p50_ms",
                3,
            ),
            (
                "new session → initialize answered, p99 ms",
                "/new_session_p99_ms",
                3,
            ),
            ("tools/call through a guest, p50 ms", "/call_p50_ms", 3),
            ("tools/call through a guest, p99 ms", "/call_p99_ms", 3),
            (
                "the floor: GET /healthz with the same client, p50 ms",
                "/http_floor_p50_ms",
                3,
            ),
            (
                "host RSS per idle session at 1,000 sessions, KiB",
                "/per_session_kib/1000",
                1,
            ),
            (
                "host RSS per idle session at 10,000 sessions, KiB",
                "/per_session_kib/10000",
                1,
            ),
            (
                "another tenant's tools/call p99 alone (before and after, pooled), ms",
                "/probe_p99_ms/0",
                3,
            ),
            (
                "… beside 10,000 idle sessions, ms",
                "/probe_p99_ms/10000",
                3,
            ),
        ];
        for (name, pointer, digits) in figures {
            let values = wasi
                .iter()
                .filter_map(|w| w.pointer(pointer)?.as_f64())
                .collect();
            if let Some(v) = median(values) {
                println!("| {name} | {v:.digits$} |");
            }
        }
        let ratio = median(
            wasi.iter()
                .filter_map(|w| {
                    Some(
                        w.pointer("/probe_p99_ms/10000")?.as_f64()?
                            / w.pointer("/probe_p99_ms/0")?.as_f64()?,
                    )
                })
                .collect(),
        );
        if let Some(ratio) = ratio {
            println!("| another tenant's p99, beside ÷ alone | {ratio:.3} |");
        }
        println!();
    }
    Ok(())
}
