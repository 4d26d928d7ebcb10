// npm MCP servers packed to WASI (`--sandbox wasi`) against the same package run by Node (`--sandbox npx`), side by
// side in one run on this machine:
//  - new session -> initialize answered, with no spare started ahead (each session starts its own server: Node's
//    start against the runtime's instantiation, bytecode load and the package's own start), and with catwalk's
//    default of one spare;
//  - idle memory per instance: RSS of catwalk and every process below it with N sessions open, less the same with
//    none, divided by N (RSS and PSS; PSS shares the runtime's and Node's shared pages fairly);
//  - with BENCH_CALL (a tools/call's params as JSON), what that call adds to each idle instance.
//
//   cargo build --release -p catwalk && npm ci --prefix tests && node bench/packed.mjs [sessions=20] [starts=30]
import { spawn } from "node:child_process";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { memory, serving } from "./proc.mjs";

const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const bin = process.env.CATWALK_BIN ?? path.join(process.env.CARGO_TARGET_DIR ?? path.join(repo, "target"), "release/catwalk");
const state = process.env.CATWALK_STATE_DIR ?? path.join(process.env.CARGO_TARGET_DIR ?? path.join(repo, "target"), "bench-state");
const packages = (process.env.BENCH_PACKAGES ?? "@modelcontextprotocol/server-memory@2026.8.31,@modelcontextprotocol/server-sequential-thinking@2026.8.31").split(",");
const sessions = Number(process.argv[2] ?? 20);
const starts = Number(process.argv[3] ?? 30);
// A tools/call each idle session makes before its memory is measured again, as JSON ({"name", "arguments"}).
const call = process.env.BENCH_CALL ? JSON.parse(process.env.BENCH_CALL) : null;

async function start(args) {
  const child = spawn(bin, ["serve", "--port", "0", "--log-format", "json", "--state-dir", state, "--max-sessions", "512", ...args], {
    // The machine's CA settings too: npm (packing, and npx's install) reaches the registry through them.
    env: Object.fromEntries(["PATH", "HOME", "NODE_EXTRA_CA_CERTS", "SSL_CERT_FILE", "SSL_CERT_DIR", "CATWALK_VERIFY"].filter((k) => process.env[k]).map((k) => [k, process.env[k]])),
    stdio: ["ignore", "ignore", "pipe"],
  });
  const base = `${await serving(child)}/mcp`;
  return { child, base };
}

const headers = { "content-type": "application/json", accept: "application/json, text/event-stream" };
// No request of the benchmark waits forever: a stuck one fails the run, naming the phase.
const post = (base, hdrs, body, what) => fetch(base, { method: "POST", headers: hdrs, body, signal: AbortSignal.timeout(30_000) })
  .catch((error) => { throw new Error(`${what}: ${error.message}`); });
const initialize = JSON.stringify({
  jsonrpc: "2.0", id: 1, method: "initialize",
  params: { protocolVersion: "2025-06-18", capabilities: {}, clientInfo: { name: "bench", version: "1" } },
});

/// One session: initialize (timed to its answer), initialized, tools/list. Returns the session id and the time.
async function open(base) {
  const began = process.hrtime.bigint();
  const res = await post(base, headers, initialize, "initialize");
  const text = await res.text();
  const took = Number(process.hrtime.bigint() - began) / 1e6;
  if (!text.includes('"serverInfo"')) throw new Error(`initialize failed: ${res.status} ${text.slice(0, 200)}`);
  const id = res.headers.get("mcp-session-id");
  const session = { ...headers, "mcp-session-id": id, "mcp-protocol-version": "2025-06-18" };
  await post(base, session, JSON.stringify({ jsonrpc: "2.0", method: "notifications/initialized" }), "initialized").then((r) => r.text());
  const list = await post(base, session, JSON.stringify({ jsonrpc: "2.0", id: 2, method: "tools/list" }), "tools/list").then((r) => r.text());
  if (!list.includes('"tools"')) throw new Error("tools/list failed");
  return { id, took };
}
const close = (base, id) => fetch(base, { method: "DELETE", headers: { ...headers, "mcp-session-id": id }, signal: AbortSignal.timeout(30_000) }).then((r) => r.text());
const phase = (what) => process.stderr.write(`${new Date().toISOString()} ${what}\n`);

const quantile = (values, q) => [...values].sort((a, b) => a - b)[Math.min(values.length - 1, Math.floor(q * values.length))];
const settle = () => new Promise((r) => setTimeout(r, 1500));

async function measure(pkg, sandbox) {
  const row = { pkg, sandbox };
  phase(`${pkg} ${sandbox}: starts`);
  // New sessions, each starting its own server.
  let catwalk = await start(["--package", pkg, "--sandbox", sandbox, "--spare", "0"]);
  await close(catwalk.base, (await open(catwalk.base)).id);
  const cold = [];
  for (let i = 0; i < starts; i++) {
    const { id, took } = await open(catwalk.base);
    cold.push(took);
    await close(catwalk.base, id);
  }
  row.start_p50 = quantile(cold, 0.5);
  row.start_p90 = quantile(cold, 0.9);
  // Idle memory: N sessions open, against none.
  phase(`${pkg} ${sandbox}: idle memory`);
  await settle();
  const before = memory(catwalk.child.pid);
  const open_ = [];
  for (let i = 0; i < sessions; i++) open_.push((await open(catwalk.base)).id);
  await settle();
  const after = memory(catwalk.child.pid);
  row.rss_per_session = (after.rss - before.rss) / sessions;
  row.pss_per_session = (after.pss - before.pss) / sessions;
  row.dirty_per_session = (after.dirty - before.dirty) / sessions;
  if (call) {
    // What one call costs each instance on top of its idle memory (time-mcp's convert_time: Intl).
    phase(`${pkg} ${sandbox}: idle memory after ${call.name}`);
    for (const [i, id] of open_.entries()) {
      const session = { ...headers, "mcp-session-id": id, "mcp-protocol-version": "2025-06-18" };
      const body = JSON.stringify({ jsonrpc: "2.0", id: 3 + i, method: "tools/call", params: call });
      const answer = await post(catwalk.base, session, body, call.name).then((r) => r.text());
      if (!answer.includes('"content"') || answer.includes('"isError":true')) throw new Error(`${call.name} failed: ${answer.slice(0, 200)}`);
    }
    await settle();
    const called = memory(catwalk.child.pid);
    row.pss_call = (called.pss - after.pss) / sessions;
    row.dirty_call = (called.dirty - after.dirty) / sessions;
  }
  for (const id of open_) await close(catwalk.base, id);
  catwalk.child.kill("SIGTERM");
  await new Promise((r) => catwalk.child.once("exit", r));
  // New sessions with catwalk's default spare (started ahead of need).
  phase(`${pkg} ${sandbox}: with a spare`);
  catwalk = await start(["--package", pkg, "--sandbox", sandbox, "--spare", "1"]);
  const warm = [];
  for (let i = 0; i < starts; i++) {
    // Pacing, not synchronisation: one session a second gives the spare time to be ready, as on a machine
    // whose sessions do not all arrive at once.
    await new Promise((r) => setTimeout(r, 1000));
    const { id, took } = await open(catwalk.base);
    warm.push(took);
    await close(catwalk.base, id);
  }
  row.spare_p50 = quantile(warm, 0.5);
  catwalk.child.kill("SIGTERM");
  await new Promise((r) => catwalk.child.once("exit", r));
  return row;
}

const fmt = (n, d = 1) => n.toFixed(d);
console.log(`catwalk ${bin}; ${sessions} idle sessions, ${starts} starts; ${new Date().toISOString()}`);
console.log("| package | run by | new session -> initialize p50 (p90), no spare | with a spare, p50 | idle RSS / instance | idle PSS / instance | idle Private_Dirty / instance |");
console.log("|---|---|---|---|---|---|---|");
const rows = [];
for (const pkg of packages) {
  for (const sandbox of (process.env.BENCH_SANDBOXES ?? "npx,wasi").split(",")) {
    const row = await measure(pkg, sandbox);
    rows.push(row);
    console.log(`| ${pkg} | ${sandbox === "npx" ? "Node (npx)" : "packed, WASI"} | ${fmt(row.start_p50)} ms (${fmt(row.start_p90)}) | ${fmt(row.spare_p50, 2)} ms | ${fmt(row.rss_per_session, 2)} MiB | ${fmt(row.pss_per_session, 2)} MiB | ${fmt(row.dirty_per_session, 2)} MiB |`);
  }
}
console.log("\n| package | start, packed / Node | idle RSS, packed / Node | idle PSS, packed / Node | idle Private_Dirty, packed / Node |");
console.log("|---|---|---|---|---|");
for (const pkg of packages) {
  const [node, wasi] = ["npx", "wasi"].map((s) => rows.find((r) => r.pkg === pkg && r.sandbox === s));
  if (!node || !wasi) continue;
  console.log(`| ${pkg} | ${fmt(wasi.start_p50 / node.start_p50, 3)} | ${fmt(wasi.rss_per_session / node.rss_per_session, 3)} | ${fmt(wasi.pss_per_session / node.pss_per_session, 3)} | ${fmt(wasi.dirty_per_session / node.dirty_per_session, 3)} |`);
}
if (call) {
  console.log(`\n| package | run by | PSS / instance added by ${call.name} | Private_Dirty / instance added |`);
  console.log("|---|---|---|---|");
  for (const row of rows) console.log(`| ${row.pkg} | ${row.sandbox === "npx" ? "Node (npx)" : "packed, WASI"} | ${fmt(row.pss_call, 3)} MiB | ${fmt(row.dirty_call, 3)} MiB |`);
}
