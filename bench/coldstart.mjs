// Cold start of a machine with restored tenants: from the catwalk process's start to the first answered
// `tools/call`, for a WASI tenant, a packed npm tenant and an npx tenant. The tenants are put once through the
// admin API (which packs, installs and compiles, all kept in the state dir, as on a Fly volume); each run then
// starts a new catwalk on that state dir and calls one of them. Every run restores all three.
//
//   cargo build --release -p catwalk && npm ci --prefix tests && node bench/coldstart.mjs [runs=7] [extra WASI tenants=0]
import { spawn } from "node:child_process";
import { mkdtempSync, writeFileSync, chmodSync, existsSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { createHash } from "node:crypto";
import { fileURLToPath } from "node:url";

const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const target = process.env.CARGO_TARGET_DIR ?? path.join(repo, "target");
const bin = process.env.CATWALK_BIN ?? path.join(target, "release/catwalk");
const runs = Number(process.argv[2] ?? 7);
// More WASI tenants restored beside the three (each a tenant of its own, the same module).
const extra = Number(process.argv[3] ?? 0);
const ADMIN = "coldstart-bench-admin";
const KEY = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
const PACKAGE = "@modelcontextprotocol/server-sequential-thinking@2026.8.31";
const work = mkdtempSync(path.join(tmpdir(), "catwalk-coldstart-"));
// Tenants' uids (catwalk as root) must pass through it to their own dirs.
chmodSync(work, 0o755);
const guest = [target, path.join(repo, "target")].map((t) => path.join(t, "wasm32-wasip1/release/catwalk-conformance-guest.wasm")).find(existsSync);
const config = path.join(work, "tenants.toml");
writeFileSync(config, "");

const tenants = {
  wasi: { def: { id: "wasi", wasm: guest }, tool: "test_simple_text", args: {} },
  packed: { def: { id: "packed", package: PACKAGE, sandbox: "wasi" }, tool: "sequentialthinking", args: { thought: "x", nextThoughtNeeded: false, thoughtNumber: 1, totalThoughts: 1 } },
  npx: { def: { id: "npx", package: PACKAGE, sandbox: "npx" }, tool: "sequentialthinking", args: { thought: "x", nextThoughtNeeded: false, thoughtNumber: 1, totalThoughts: 1 } },
};

function start() {
  const began = process.hrtime.bigint();
  const child = spawn(bin, ["serve", "--port", "0", "--log-format", "json", "--config", config, "--state-dir", path.join(work, "state"),
    "--admin-token-sha256", createHash("sha256").update(ADMIN).digest("hex")], {
    env: { CATWALK_STATE_KEY: KEY, ...Object.fromEntries(["PATH", "HOME", "NODE_EXTRA_CA_CERTS", "SSL_CERT_FILE", "SSL_CERT_DIR"].filter((k) => process.env[k]).map((k) => [k, process.env[k]])) },
    stdio: ["ignore", "ignore", "pipe"],
  });
  const serving = new Promise((resolve, reject) => {
    let buffer = "";
    child.stderr.on("data", (chunk) => {
      buffer += chunk;
      for (let nl; (nl = buffer.indexOf("\n")) >= 0; buffer = buffer.slice(nl + 1)) {
        try {
          const entry = JSON.parse(buffer.slice(0, nl));
          if (entry.fields?.message === "catwalk is serving") resolve({ base: `http://${entry.fields.addr}`, at: ms(began) });
        } catch {}
      }
    });
    child.on("exit", (code) => reject(new Error(`catwalk exited (${code}): ${buffer}`)));
  });
  return { child, began, serving };
}

const ms = (since) => Number(process.hrtime.bigint() - since) / 1e6;
const headers = { "content-type": "application/json", accept: "application/json, text/event-stream" };
const post = (url, body, session) => fetch(url, {
  method: "POST", headers: session ? { ...headers, "mcp-session-id": session, "mcp-protocol-version": "2025-06-18" } : headers,
  body: JSON.stringify(body), signal: AbortSignal.timeout(120_000),
});

/** initialize, initialized, then the tool: its answer's text. */
async function firstCall(base, kind) {
  const url = `${base}/t/${kind}/mcp`;
  const init = await post(url, { jsonrpc: "2.0", id: 1, method: "initialize", params: { protocolVersion: "2025-06-18", capabilities: {}, clientInfo: { name: "bench", version: "1" } } });
  if (init.status !== 200) throw new Error(`${kind}: initialize ${init.status} ${await init.text()}`);
  const session = init.headers.get("mcp-session-id");
  await init.text();
  await (await post(url, { jsonrpc: "2.0", method: "notifications/initialized" }, session)).text();
  const call = await post(url, { jsonrpc: "2.0", id: 2, method: "tools/call", params: { name: tenants[kind].tool, arguments: tenants[kind].args } }, session);
  const text = await call.text();
  if (!text.includes('"result"')) throw new Error(`${kind}: tools/call ${call.status} ${text.slice(0, 300)}`);
}

async function stop(child) {
  child.kill("SIGTERM");
  await new Promise((resolve) => (child.exitCode !== null ? resolve() : child.once("exit", resolve)));
}

// Once: the tenants put, packed, installed and compiled, and each called.
{
  const { child, serving } = start();
  const { base } = await serving;
  for (const [kind, { def }] of Object.entries(tenants)) {
    const put = await fetch(`${base}/admin/tenants/${kind}`, { method: "PUT", headers: { authorization: `Bearer ${ADMIN}`, "content-type": "application/json" }, body: JSON.stringify(def) });
    if (put.status !== 201) throw new Error(`${kind}: ${put.status} ${await put.text()}`);
  }
  for (let i = 0; i < extra; i++) {
    const def = { ...tenants.wasi.def, id: `extra-${i}` };
    const put = await fetch(`${base}/admin/tenants/${def.id}`, { method: "PUT", headers: { authorization: `Bearer ${ADMIN}`, "content-type": "application/json" }, body: JSON.stringify(def) });
    if (put.status !== 201) throw new Error(`${def.id}: ${put.status} ${await put.text()}`);
  }
  for (let i = 0; i < 600 && !(await (await fetch(`${base}/readyz`)).json()).tenants?.npx?.ready; i++) await new Promise((r) => setTimeout(r, 100));
  for (const kind of Object.keys(tenants)) await firstCall(base, kind);
  await stop(child);
}

const results = Object.fromEntries(Object.keys(tenants).map((k) => [k, { serving: [], first: [] }]));
for (let run = 0; run < runs; run++) {
  for (const kind of Object.keys(tenants)) {
    const { child, began, serving } = start();
    const { base, at } = await serving;
    await firstCall(base, kind);
    results[kind].serving.push(at);
    results[kind].first.push(ms(began));
    await stop(child);
  }
}
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const range = (xs) => `${Math.min(...xs).toFixed(0)}–${Math.max(...xs).toFixed(0)}`;
console.log(`cold start with ${3 + extra} restored tenants, ${runs} runs each (ms, median and range)`);
console.log("| tenant | process start → serving | process start → first tools/call answered |");
console.log("|---|---|---|");
for (const [kind, r] of Object.entries(results)) {
  console.log(`| ${kind} | ${median(r.serving).toFixed(0)} (${range(r.serving)}) | ${median(r.first).toFixed(0)} (${range(r.first)}) |`);
}
