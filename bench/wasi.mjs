// The WASI backend, measured on this machine against the same server run natively through the process backend:
//  - new session → initialize answered over HTTP (p50/p99);
//  - tools/call round trip (p50/p99), one session, sequential;
//  - host RSS per idle session with N sessions open;
//  - a spinning guest: how far past its CPU budget it is stopped, and another tenant's latency beside spinners.
//
//   cargo build --release -p catwalk && cargo build --release -p catwalk-guest --example echo
//   cargo build --release --target wasm32-wasip1 -p catwalk-hostile-spin
//   node bench/wasi.mjs [sessions=1000]
import { spawn } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";

const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const target = process.env.CARGO_TARGET_DIR ?? path.join(repo, "target");
const bin = path.join(target, "release/catwalk");
const nativeEcho = path.join(target, "release/examples/echo");
const hostile = path.join(target, "wasm32-wasip1/release/catwalk-hostile-spin.wasm");
const sessions = Number(process.argv[2] ?? 1000);
let port = 19100 + Math.floor(Math.random() * 500);

const headers = { "content-type": "application/json", accept: "application/json, text/event-stream" };
const pct = (xs, p) => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor(xs.length * p))];
const ms = (x) => x.toFixed(3);

function rssOf(pid) {
  let total = 0;
  const table = fs.readdirSync("/proc").filter((d) => /^\d+$/.test(d));
  const tree = [pid];
  for (let i = 0; i < tree.length; i++) {
    for (const p of table) {
      try {
        const stat = fs.readFileSync(`/proc/${p}/stat`, "utf8");
        if (Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]) === tree[i]) tree.push(Number(p));
      } catch {}
    }
  }
  for (const p of tree) {
    try { total += Number(/^VmRSS:\s+(\d+)/m.exec(fs.readFileSync(`/proc/${p}/status`, "utf8"))[1]); } catch {}
  }
  return total / 1024;
}

async function start(args) {
  port += 1;
  const child = spawn(bin, ["serve", "--port", String(port), "--max-sessions", String(sessions + 100),
    "--state-dir", path.join(target, "bench-state"), ...args], { env: { PATH: process.env.PATH, RUST_LOG: "warn" }, stdio: "ignore" });
  const base = `http://127.0.0.1:${port}`;
  for (let i = 0; i < 600; i++) {
    if ((await fetch(`${base}/readyz`).catch(() => null))?.status === 200) break;
    await new Promise((r) => setTimeout(r, 50));
  }
  return { child, base, async stop() { child.kill("SIGTERM"); await new Promise((r) => child.on("exit", r)); } };
}

async function initialize(base) {
  const t = performance.now();
  const res = await fetch(`${base}/mcp`, { method: "POST", headers, body: JSON.stringify({ jsonrpc: "2.0", id: 0,
    method: "initialize", params: { protocolVersion: "2025-06-18", capabilities: {}, clientInfo: { name: "b", version: "0" } } }) });
  await res.text();
  if (res.status !== 200) throw new Error(`initialize ${res.status}`);
  return { ms: performance.now() - t, session: res.headers.get("mcp-session-id") };
}

async function call(base, session, id, name, args) {
  const t = performance.now();
  const res = await fetch(`${base}/mcp`, { method: "POST", headers: { ...headers, "mcp-session-id": session },
    body: JSON.stringify({ jsonrpc: "2.0", id, method: "tools/call", params: { name, arguments: args } }) });
  const body = await res.text();
  return { ms: performance.now() - t, body };
}

async function measure(label, args, n) {
  const server = await start(args);
  const idle = rssOf(server.child.pid);
  const starts = [];
  let first;
  for (let i = 0; i < n; i++) {
    const s = await initialize(server.base);
    starts.push(s.ms);
    first ??= s.session;
  }
  await new Promise((r) => setTimeout(r, 500));
  const open = rssOf(server.child.pid);
  const calls = [];
  for (let i = 0; i < 2000; i++) calls.push((await call(server.base, first, i + 1, "echo", { text: "x" })).ms);
  await server.stop();
  return { label, n, start50: pct(starts, 0.5), start99: pct(starts, 0.99), call50: pct(calls, 0.5), call99: pct(calls, 0.99),
    idle, open, per: ((open - idle) * 1024) / n };
}

async function isolation() {
  const server = await start(["--wasm", hostile, "--cpu-budget", "1s"]);
  const victim = (await initialize(server.base)).session;
  const sample = async () => {
    const xs = [];
    for (let i = 0; i < 1500; i++) xs.push((await call(server.base, victim, i, "echo", { message: "x" })).ms);
    return xs;
  };
  const alone = await sample();
  let spinning = true;
  const overshoots = [];
  const spinner = async () => {
    while (spinning) {
      const s = (await initialize(server.base)).session;
      const r = await call(server.base, s, 1, "spin", {});
      if (!r.body.includes("CPU budget")) throw new Error(`spin did not trap: ${r.body}`);
      overshoots.push(r.ms - 1000);
    }
  };
  const spinners = [spinner(), spinner()];
  const beside = await sample();
  spinning = false;
  await Promise.all(spinners);
  await server.stop();
  return { alone50: pct(alone, 0.5), alone99: pct(alone, 0.99), beside50: pct(beside, 0.5), beside99: pct(beside, 0.99),
    overshoot50: pct(overshoots, 0.5), overshootMax: Math.max(...overshoots), spins: overshoots.length };
}

const rows = [
  await measure("WASI guest (echo, wasm32-wasip1)", [], sessions),
  await measure("same server native, process backend", ["--", nativeEcho], Math.min(sessions, 100)),
];
const iso = await isolation();
console.log(`\n${new Date().toISOString()}; ${process.version}; client: node fetch, sequential, keep-alive\n`);
console.log("| backend | sessions | new session → initialize p50 / p99 ms | tools/call p50 / p99 ms | RSS idle → with sessions MiB | RSS per idle session KiB |");
console.log("|---|---|---|---|---|---|");
for (const r of rows) {
  console.log(`| ${r.label} | ${r.n} | ${ms(r.start50)} / ${ms(r.start99)} | ${ms(r.call50)} / ${ms(r.call99)} | ${r.idle.toFixed(1)} → ${r.open.toFixed(1)} | ${r.per.toFixed(0)} |`);
}
console.log(`\nSpinning guests (CPU budget 1 s, ${iso.spins} spins by 2 spinners): stopped ${ms(iso.overshoot50)} ms past the budget (p50), ${ms(iso.overshootMax)} ms at most.`);
console.log(`Another tenant's echo: alone p50 ${ms(iso.alone50)} / p99 ${ms(iso.alone99)} ms; beside 2 spinners p50 ${ms(iso.beside50)} / p99 ${ms(iso.beside99)} ms (p99 ratio ${(iso.beside99 / iso.alone99).toFixed(2)}).`);
