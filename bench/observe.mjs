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
import { measure, serving, table } from "./measure.mjs";

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
  const base = await serving(child);
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
const results = await measure(kinds, { rounds, seconds });

plain.child.kill("SIGTERM");
watched.child.kill("SIGTERM");
receiver.close();
console.log(table(results, "kind", "plain"));
console.log(`(OTLP export requests received: ${spans})`);
