// What a tenant's terms and the operator's view of it cost per request: the same WASI tenant served plainly, with
// an offer (allow and deny globs, so every tools/list is filtered and every call checked) and rates (never
// reached), and both again with the audit trail (to a file) and traces (exported over OTLP/HTTP to a receiver in
// this script) on. Two catwalks, one without and one with audit and traces; each round measures every kind in
// turn: `tools/call` one at a time (latency), then 16 at once (throughput). The report is the median of the
// rounds, and each kind's ratio to the plain tenant of the plain catwalk.
//
//   cargo build --release -p catwalk && node bench/observe.mjs [rounds=3] [seconds=3]
import { spawn } from "node:child_process";
import http from "node:http";
import { mkdtempSync, writeFileSync, chmodSync, existsSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";

const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const target = process.env.CARGO_TARGET_DIR ?? path.join(repo, "target");
const bin = process.env.CATWALK_BIN ?? path.join(target, "release/catwalk");
const guest = [target, path.join(repo, "target")].map((t) => path.join(t, "wasm32-wasip1/release/catwalk-conformance-guest.wasm")).find(existsSync);
const rounds = Number(process.argv[2] ?? 3);
const seconds = Number(process.argv[3] ?? 3);
const work = mkdtempSync(path.join(tmpdir(), "catwalk-observe-bench-"));
chmodSync(work, 0o755);
const q = JSON.stringify;
writeFileSync(path.join(work, "tenants.toml"), `
[[tenant]]
id = "plain"
wasm = ${q(guest)}

[[tenant]]
id = "offered"
wasm = ${q(guest)}
tools = { allow = ["test_*", "echo"], deny = ["test_error_*", "*_admin"] }
limits = { rate = { per_second = 1000000, burst = 1000000 }, subject_rate = { per_second = 1000000 }, tool_rate = { "test_*" = { per_second = 1000000 } } }
`);

let spans = 0;
const receiver = http.createServer((req, res) => { req.resume(); req.on("end", () => { spans++; res.end("{}"); }); });
await new Promise((r) => receiver.listen(0, "127.0.0.1", r));

async function start(name, extra, env) {
  const child = spawn(bin, ["serve", "--port", "0", "--log-format", "json", "--config", path.join(work, "tenants.toml"),
    "--state-dir", path.join(work, `state-${name}`), ...extra], { env: { PATH: process.env.PATH, ...env }, stdio: ["ignore", "ignore", "pipe"] });
  const base = await new Promise((resolve, reject) => {
    let buffer = "";
    child.stderr.on("data", (chunk) => {
      buffer += chunk;
      const found = buffer.match(/"addr":"([^"]+)"/);
      if (found) resolve(`http://${found[1]}`);
    });
    child.on("exit", (code) => reject(new Error(`catwalk exited (${code}): ${buffer}`)));
  });
  return { child, base };
}

const plain = await start("plain", [], {});
const watched = await start("watched", ["--audit-log", path.join(work, "audit")], {
  OTEL_EXPORTER_OTLP_ENDPOINT: `http://127.0.0.1:${receiver.address().port}`, OTEL_EXPORTER_OTLP_PROTOCOL: "http/protobuf" });

async function post(base, id, session, body) {
  const res = await fetch(`${base}/t/${id}/mcp`, { method: "POST", body: JSON.stringify(body), headers: {
    "content-type": "application/json", accept: "application/json, text/event-stream",
    traceparent: "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
    ...(session ? { "mcp-session-id": session, "mcp-protocol-version": "2025-06-18" } : {}) } });
  const text = await res.text();
  if (res.status !== 200 && res.status !== 202) throw new Error(`${id}: ${res.status} ${text}`);
  return res.headers.get("mcp-session-id");
}

async function session(base, id) {
  const sid = await post(base, id, null, { jsonrpc: "2.0", id: 0, method: "initialize", params: { protocolVersion: "2025-06-18", capabilities: {}, clientInfo: { name: "bench", version: "0" } } });
  await post(base, id, sid, { jsonrpc: "2.0", method: "notifications/initialized" });
  let n = 1;
  return () => post(base, id, sid, { jsonrpc: "2.0", id: n++, method: "tools/call", params: { name: "test_simple_text", arguments: { q: "x" } } });
}

const kinds = {
  "plain": await session(plain.base, "plain"),
  "offer and rates": await session(plain.base, "offered"),
  "audit and traces": await session(watched.base, "plain"),
  "all of them": await session(watched.base, "offered"),
};
const results = Object.fromEntries(Object.keys(kinds).map((k) => [k, { p50: [], p99: [], rps: [] }]));
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

for (let round = 0; round < rounds; round++) {
  for (const [kind, call] of Object.entries(kinds)) {
    for (let i = 0; i < 50; i++) await call();
    const times = [];
    for (let i = 0; i < 500; i++) {
      const t = process.hrtime.bigint();
      await call();
      times.push(Number(process.hrtime.bigint() - t) / 1e6);
    }
    times.sort((a, b) => a - b);
    results[kind].p50.push(times[Math.floor(times.length * 0.5)]);
    results[kind].p99.push(times[Math.floor(times.length * 0.99)]);
    let done = 0;
    const end = Date.now() + seconds * 1000;
    await Promise.all(Array.from({ length: 16 }, async () => { while (Date.now() < end) { await call(); done++; } }));
    results[kind].rps.push(done / seconds);
  }
}

plain.child.kill("SIGTERM");
watched.child.kill("SIGTERM");
receiver.close();
const base = { p50: median(results.plain.p50), rps: median(results.plain.rps) };
console.log(`| kind | p50 ms | p99 ms | req/s at 16 in flight | p50 ratio to plain | req/s ratio to plain |`);
console.log(`|---|---|---|---|---|---|`);
for (const [kind, r] of Object.entries(results)) {
  const p50 = median(r.p50), p99 = median(r.p99), rps = median(r.rps);
  console.log(`| ${kind} | ${p50.toFixed(3)} | ${p99.toFixed(3)} | ${rps.toFixed(0)} | ${(p50 / base.p50).toFixed(2)} | ${(rps / base.rps).toFixed(2)} |`);
}
console.log(`(OTLP export requests received: ${spans})`);
