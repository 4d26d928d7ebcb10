// A tool call whose server makes one HTTPS request to a local upstream, packed to WASI (catwalk makes the request,
// under the egress grants) against the same package run by Node (npx), both running at once and measured in turns:
//  - p50 and p90 of the call, one at a time;
//  - calls per second with 16 in flight (16 sessions, each calling in a loop);
//  - idle memory per session after its call, with its keep-alive connection to the upstream still open (RSS and
//    PSS of catwalk and everything below it with N such sessions, less the same with none, over N).
// The server is tests/fixtures/egress-package (`fetch_url`, global fetch); the upstream is the tests' fake API.
//
//   cargo build --release -p catwalk -p catwalk-tests --bins && npm ci --prefix tests && node bench/egress.mjs [calls=500] [seconds=10] [sessions=10]
import { spawn } from "node:child_process";
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { memory, serving } from "./proc.mjs";

const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const target = process.env.CARGO_TARGET_DIR ?? path.join(repo, "target");
const bin = process.env.CATWALK_BIN ?? path.join(target, "release/catwalk");
const state = process.env.CATWALK_STATE_DIR ?? path.join(target, "bench-state");
const fixture = path.join(repo, "tests/fixtures/egress-package");
const calls = Number(process.argv[2] ?? 500);
const seconds = Number(process.argv[3] ?? 10);
const idle = Number(process.argv[4] ?? 10);
const work = mkdtempSync(path.join(tmpdir(), "catwalk-bench-egress-"));

const api = spawn(path.join(path.dirname(bin), "fake-api"), ["--names", "api.bench", "--ca-out", path.join(work, "ca.pem")], { stdio: ["ignore", "pipe", "inherit"] });
const { port } = await new Promise((resolve) => api.stdout.once("data", (line) => resolve(JSON.parse(String(line)))));
const ca = path.join(work, "ca.pem");
// Node trusts the upstream's CA beside the machine's own (npm reaches the registry through them).
const roots = path.join(work, "roots.pem");
writeFileSync(roots, `${process.env.NODE_EXTRA_CA_CERTS ? readFileSync(process.env.NODE_EXTRA_CA_CERTS, "utf8") : ""}\n${readFileSync(ca, "utf8")}`);
const url = `https://127.0.0.1:${port}/__catwalk/echo`;

async function start(sandbox) {
  const args = ["serve", "--port", "0", "--log-format", "json", "--state-dir", state, "--max-sessions", "512", "--package", fixture, "--sandbox", sandbox];
  if (sandbox === "wasi") args.push("--egress", `https://127.0.0.1:${port}`, "--egress-ca", ca);
  const env = Object.fromEntries(["PATH", "HOME", "SSL_CERT_FILE", "SSL_CERT_DIR"].filter((k) => process.env[k]).map((k) => [k, process.env[k]]));
  const child = spawn(bin, args, { env: { ...env, NODE_EXTRA_CA_CERTS: roots }, stdio: ["ignore", "ignore", "pipe"] });
  const base = `${await serving(child)}/mcp`;
  return { child, base };
}

const headers = { "content-type": "application/json", accept: "application/json, text/event-stream" };
const post = (base, hdrs, body) => fetch(base, { method: "POST", headers: hdrs, body, signal: AbortSignal.timeout(30_000) });

async function session(base) {
  const res = await post(base, headers, JSON.stringify({ jsonrpc: "2.0", id: 1, method: "initialize",
    params: { protocolVersion: "2025-06-18", capabilities: {}, clientInfo: { name: "bench", version: "1" } } }));
  await res.text();
  const hdrs = { ...headers, "mcp-session-id": res.headers.get("mcp-session-id"), "mcp-protocol-version": "2025-06-18" };
  await post(base, hdrs, JSON.stringify({ jsonrpc: "2.0", method: "notifications/initialized" })).then((r) => r.text());
  let id = 10;
  return {
    async call() {
      const text = await post(base, hdrs, JSON.stringify({ jsonrpc: "2.0", id: ++id, method: "tools/call", params: { name: "fetch_url", arguments: { url } } })).then((r) => r.text());
      if (!text.includes('\\"status\\":200')) throw new Error(`the call failed: ${text.slice(0, 300)}`);
    },
    close: () => fetch(base, { method: "DELETE", headers: hdrs }).then((r) => r.text()),
  };
}

const quantile = (values, q) => [...values].sort((a, b) => a - b)[Math.min(values.length - 1, Math.floor(q * values.length))];
const settle = () => new Promise((r) => setTimeout(r, 1500));
const phase = (what) => process.stderr.write(`${new Date().toISOString()} ${what}\n`);
const timed = async (session) => {
  const began = process.hrtime.bigint();
  await session.call();
  return Number(process.hrtime.bigint() - began) / 1e6;
};

// Both run at once and are measured in turns, so that whatever else the machine does falls on both alike.
const sides = [{ sandbox: "npx" }, { sandbox: "wasi" }];
for (const side of sides) side.catwalk = await start(side.sandbox);

phase("sequential calls, in turns");
for (const side of sides) {
  side.one = await session(side.catwalk.base);
  for (let i = 0; i < 50; i++) await side.one.call();
  side.times = [];
}
for (let i = 0; i < calls; i++) {
  // Which goes first alternates, so neither always follows the other's wake-ups.
  for (const side of i % 2 ? [...sides].reverse() : sides) side.times.push(await timed(side.one));
}
for (const side of sides) {
  side.p50 = quantile(side.times, 0.5);
  side.p90 = quantile(side.times, 0.9);
  await side.one.close();
}

phase("16 in flight, in four turns");
for (const side of sides) {
  side.sessions = await Promise.all(Array.from({ length: 16 }, () => session(side.catwalk.base)));
  for (const s of side.sessions) await s.call();
  side.done = 0;
}
for (const side of [sides[0], sides[1], sides[1], sides[0]]) {
  const until = Date.now() + (seconds * 1000) / 2;
  await Promise.all(side.sessions.map(async (s) => { while (Date.now() < until) { await s.call(); side.done++; } }));
}
for (const side of sides) {
  side.throughput = side.done / seconds;
  for (const s of side.sessions) await s.close();
}

phase("idle memory");
for (const side of sides) {
  await settle();
  const pid = side.catwalk.child.pid;
  const before = memory(pid);
  const open = [];
  for (let i = 0; i < idle; i++) {
    const s = await session(side.catwalk.base);
    await s.call();
    open.push(s);
  }
  await settle();
  const after = memory(pid);
  side.rss = (after.rss - before.rss) / idle;
  side.pss = (after.pss - before.pss) / idle;
  for (const s of open) await s.close();
}
for (const side of sides) {
  side.catwalk.child.kill("SIGTERM");
  await new Promise((r) => side.catwalk.child.once("exit", r));
}

const fmt = (n, d = 2) => n.toFixed(d);
console.log(`catwalk ${bin}; ${calls} calls one at a time, ${seconds} s at 16 in flight, ${idle} idle sessions; ${new Date().toISOString()}`);
console.log("| run by | call p50 (p90) | calls/s, 16 in flight | idle RSS / session | idle PSS / session |");
console.log("|---|---|---|---|---|");
for (const row of sides) {
  console.log(`| ${row.sandbox === "npx" ? "Node (npx)" : "packed, WASI"} | ${fmt(row.p50)} ms (${fmt(row.p90)}) | ${fmt(row.throughput, 0)} | ${fmt(row.rss, 1)} MiB | ${fmt(row.pss, 1)} MiB |`);
}
const [node, wasi] = sides;
console.log(`\npacked / Node: p50 ${fmt(wasi.p50 / node.p50, 3)}, throughput ${fmt(wasi.throughput / node.throughput, 3)}, idle RSS ${fmt(wasi.rss / node.rss, 3)}, idle PSS ${fmt(wasi.pss / node.pss, 3)}`);
api.kill();
