// Session cost of the process backend, measured on this machine:
//  - memory (RSS and PSS of catwalk plus every process below it) with N sessions open, per-session vs shared mode;
//  - time from a new session's initialize POST to its answer: server started from the installed package bin
//    (what catwalk does) vs `npx -y <package>` per session (what it would cost without the one-time install).
//
//   cargo build --release -p catwalk && npm ci --prefix tests && node bench/sessions.mjs [sessions=10]
import { spawn } from "node:child_process";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { memory } from "./proc.mjs";

const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const bin = process.env.CATWALK_BIN ?? path.join(process.env.CARGO_TARGET_DIR ?? path.join(repo, "target"), "release/catwalk");
const pkg = "@modelcontextprotocol/server-everything@2026.8.31";
const sessions = Number(process.argv[2] ?? 10);
const port = 18700 + Math.floor(Math.random() * 200);

async function initialize(base) {
  const started = performance.now();
  const res = await fetch(`${base}/mcp`, {
    method: "POST",
    headers: { "content-type": "application/json", accept: "application/json, text/event-stream" },
    body: JSON.stringify({ jsonrpc: "2.0", id: 1, method: "initialize", params: {
      protocolVersion: "2025-06-18", capabilities: {}, clientInfo: { name: "bench", version: "0" } } }),
  });
  await res.text();
  if (res.status !== 200) throw new Error(`initialize: ${res.status}`);
  return { ms: performance.now() - started, session: res.headers.get("mcp-session-id") };
}

async function scenario(label, args, env) {
  const child = spawn(bin, ["serve", "--port", String(port), ...args], {
    env: { PATH: process.env.PATH, HOME: process.env.HOME, NODE_EXTRA_CA_CERTS: process.env.NODE_EXTRA_CA_CERTS ?? "",
      CATWALK_STATE_DIR: path.join(repo, "target/bench-state"), RUST_LOG: "warn", ...env },
    stdio: "ignore",
  });
  const base = `http://127.0.0.1:${port}`;
  for (let i = 0; i < 1200; i++) {
    const r = await fetch(`${base}/readyz`).catch(() => null);
    if (r?.status === 200) break;
    await new Promise((r) => setTimeout(r, 100));
  }
  const idle = memory(child.pid);
  const times = [];
  for (let i = 0; i < sessions; i++) times.push((await initialize(base)).ms);
  await new Promise((r) => setTimeout(r, 1000)); // let the servers settle after start-up
  const open = memory(child.pid);
  child.kill("SIGTERM");
  await new Promise((r) => child.on("exit", r));
  times.sort((a, b) => a - b);
  return { label, idle, open, p50: times[Math.floor(times.length / 2)], max: times.at(-1) };
}

const rows = [
  await scenario("per-session, installed package", ["--mode", "per-session"], { MCP_PACKAGE: pkg }),
  await scenario("shared, installed package", ["--mode", "shared"], { MCP_PACKAGE: pkg }),
  await scenario("per-session, `npx -y` every session", ["--", "npx", "-y", pkg], {}),
];
console.log(`\n${sessions} sessions of ${pkg}; ${new Date().toISOString()}; ${process.version}\n`);
console.log("| mode | new session → initialize answered, p50 / max ms | RSS idle MiB | RSS with sessions MiB | PSS with sessions MiB | processes |");
console.log("|---|---|---|---|---|---|");
for (const r of rows) {
  console.log(`| ${r.label} | ${r.p50.toFixed(0)} / ${r.max.toFixed(0)} | ${r.idle.rss.toFixed(1)} | ${r.open.rss.toFixed(1)} | ${r.open.pss.toFixed(1)} | ${r.open.procs} |`);
}
