// A thousand idle packed sessions on one machine, and what they cost a neighbour (issue 26):
//  - tenant "idle" serves server-memory packed to WASI; the run opens N sessions on it (each its own instance,
//    started from the pack-time snapshot) and leaves them idle;
//  - the memory of catwalk and everything below it (RSS and PSS from smaps_rollup) with the N sessions open,
//    against the same with none;
//  - tenant "other" serves server-memory packed too: a tools/call on one session, `calls` times one after another,
//    before the N sessions are opened (unloaded), with them open (loaded), and after they are closed (unloaded
//    again); its p50 and p99, and the loaded p99 against the unloaded ones.
//
//   cargo build --release -p catwalk && npm ci --prefix tests && node bench/idle.mjs [sessions=1000] [calls=2000]
import { spawn } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { memory, serving } from "./proc.mjs";

const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const target = process.env.CARGO_TARGET_DIR ?? path.join(repo, "target");
const bin = process.env.CATWALK_BIN ?? path.join(target, "release/catwalk");
const state = process.env.CATWALK_STATE_DIR ?? path.join(target, "bench-state");
const pkg = process.env.BENCH_PACKAGE ?? "@modelcontextprotocol/server-memory@2026.8.31";
const sessions = Number(process.argv[2] ?? 1000);
const calls = Number(process.argv[3] ?? 2000);

const config = path.join(state, "idle-tenants.toml");
fs.mkdirSync(state, { recursive: true });
fs.writeFileSync(config, ["idle", "other"].map((id) => `[[tenant]]
id = "${id}"
package = "${pkg}"
sandbox = "wasi"
[tenant.limits]
max_sessions = ${sessions + 10}
`).join("\n"));

const phase = (what) => process.stderr.write(`${new Date().toISOString()} ${what}\n`);

async function start() {
  const child = spawn(bin, ["serve", "--port", "0", "--log-format", "json", "--state-dir", state, "--config", config,
    "--max-sessions", String(sessions + 20), "--spare", "0"], {
    env: Object.fromEntries(["PATH", "HOME", "NODE_EXTRA_CA_CERTS", "SSL_CERT_FILE", "SSL_CERT_DIR", "CATWALK_VERIFY"].filter((k) => process.env[k]).map((k) => [k, process.env[k]])),
    stdio: ["ignore", "ignore", "pipe"],
  });
  const base = await serving(child);
  return { child, base };
}

const headers = { "content-type": "application/json", accept: "application/json, text/event-stream" };
const post = (url, hdrs, body, what) => fetch(url, { method: "POST", headers: hdrs, body, signal: AbortSignal.timeout(60_000) })
  .catch((error) => { throw new Error(`${what}: ${error.message}`); });

async function open(url) {
  const res = await post(url, headers, JSON.stringify({
    jsonrpc: "2.0", id: 1, method: "initialize",
    params: { protocolVersion: "2025-06-18", capabilities: {}, clientInfo: { name: "bench", version: "1" } },
  }), "initialize");
  const text = await res.text();
  if (!text.includes('"serverInfo"')) throw new Error(`initialize failed: ${res.status} ${text.slice(0, 200)}`);
  const session = { ...headers, "mcp-session-id": res.headers.get("mcp-session-id"), "mcp-protocol-version": "2025-06-18" };
  await post(url, session, JSON.stringify({ jsonrpc: "2.0", method: "notifications/initialized" }), "initialized").then((r) => r.text());
  return session;
}
const close = (url, session) => fetch(url, { method: "DELETE", headers: session, signal: AbortSignal.timeout(60_000) }).then((r) => r.text());

const quantile = (values, q) => [...values].sort((a, b) => a - b)[Math.min(values.length - 1, Math.floor(q * values.length))];

async function latencies(url, session) {
  const took = [];
  const body = JSON.stringify({ jsonrpc: "2.0", id: 3, method: "tools/call", params: { name: "read_graph", arguments: {} } });
  for (let i = 0; i < calls; i++) {
    const began = process.hrtime.bigint();
    const text = await post(url, session, body, "tools/call").then((r) => r.text());
    took.push(Number(process.hrtime.bigint() - began) / 1e6);
    if (!text.includes('"result"')) throw new Error(`tools/call failed: ${text.slice(0, 200)}`);
  }
  return { p50: quantile(took, 0.5), p99: quantile(took, 0.99) };
}

// Settling, not synchronisation: the instances' first pages are touched and the allocator has returned memory.
const settle = () => new Promise((r) => setTimeout(r, 3000));

phase("packing (or finding the artifact) and starting");
const catwalk = await start();
const idle = `${catwalk.base}/t/idle/mcp`;
const other = `${catwalk.base}/t/other/mcp`;
try {
  const neighbour = await open(other);
  await latencies(other, neighbour);
  phase("the neighbour, unloaded");
  const before = await latencies(other, neighbour);
  await settle();
  const empty = memory(catwalk.child.pid);
  phase(`opening ${sessions} idle sessions`);
  const opened = [];
  const began = performance.now();
  for (let i = 0; i < sessions; i += 8) {
    opened.push(...(await Promise.all(Array.from({ length: Math.min(8, sessions - i) }, () => open(idle)))));
  }
  const openSeconds = (performance.now() - began) / 1000;
  await settle();
  const full = memory(catwalk.child.pid);
  phase("the neighbour, loaded");
  const loaded = await latencies(other, neighbour);
  phase("closing");
  for (let i = 0; i < opened.length; i += 16) await Promise.all(opened.slice(i, i + 16).map((s) => close(idle, s)));
  await settle();
  phase("the neighbour, unloaded again");
  const after = await latencies(other, neighbour);

  const fmt = (n, d = 2) => n.toFixed(d);
  const grew = { rss: full.rss - empty.rss, pss: full.pss - empty.pss };
  console.log(`catwalk ${bin}; ${pkg}; ${sessions} idle sessions, ${calls} neighbour calls per phase; ${new Date().toISOString()}`);
  console.log("| | value |");
  console.log("|---|---|");
  console.log(`| sessions opened | ${opened.length} in ${fmt(openSeconds, 1)} s (${fmt(opened.length / openSeconds, 0)}/s, 8 at a time) |`);
  console.log(`| host memory with none open: RSS / PSS | ${fmt(empty.rss, 0)} / ${fmt(empty.pss, 0)} MiB |`);
  console.log(`| host memory with ${sessions} open: RSS / PSS | ${fmt(full.rss, 0)} / ${fmt(full.pss, 0)} MiB |`);
  console.log(`| growth: RSS / PSS | ${fmt(grew.rss / 1024, 3)} / ${fmt(grew.pss / 1024, 3)} GiB (${fmt(grew.rss / sessions)} / ${fmt(grew.pss / sessions)} MiB per session) |`);
  console.log(`| neighbour tools/call p50 / p99, unloaded | ${fmt(before.p50, 3)} / ${fmt(before.p99, 3)} ms |`);
  console.log(`| neighbour tools/call p50 / p99, ${sessions} idle sessions open | ${fmt(loaded.p50, 3)} / ${fmt(loaded.p99, 3)} ms |`);
  console.log(`| neighbour tools/call p50 / p99, unloaded again | ${fmt(after.p50, 3)} / ${fmt(after.p99, 3)} ms |`);
  const unloaded = Math.max(before.p99, after.p99);
  console.log(`| loaded p99 / unloaded p99 (the higher of the two unloaded runs; the lower) | ${fmt(loaded.p99 / unloaded, 3)} (${fmt(loaded.p99 / Math.min(before.p99, after.p99), 3)}) |`);
} finally {
  catwalk.child.kill("SIGTERM");
  await new Promise((r) => catwalk.child.once("exit", r));
}
