// A tenant's latency beside a neighbour that spins every core: catwalk as root (each npx tenant in its jail: a
// cgroup per tenant, CPU shared equally when the machine is busy) against the same catwalk run as a user that
// can make no cgroups (no jail: children compete as plain processes), side by side in one run. Both tenants
// run tests/fixtures/jail-server.mjs under Node; the victim's `echo` is timed one call at a time, first with the
// neighbour idle, then while it burns 4 threads for 10 s (`burn`, which answers when they stop: the next
// measurement starts on a quiet machine), then while a neighbour capped at `limits.cpu = 0.5` burns as many.
//
//   cargo build --release -p catwalk && node bench/jail.mjs [rounds=3] [calls=300]     (as root)
import { spawn, execFileSync } from "node:child_process";
import { mkdtempSync, writeFileSync, chmodSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { serving } from "./measure.mjs";

const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
// The official TypeScript SDK, from the tests' dependencies (`npm ci --prefix tests`).
const sdk = path.join(repo, "tests/node_modules/@modelcontextprotocol/sdk/dist/esm/client");
const { Client } = await import(path.join(sdk, "index.js"));
const { StreamableHTTPClientTransport } = await import(path.join(sdk, "streamableHttp.js"));
const bin = process.env.CATWALK_BIN ?? path.join(repo, "target/release/catwalk");
const [rounds, calls] = [Number(process.argv[2] ?? 3), Number(process.argv[3] ?? 300)];
const server = path.join(repo, "tests/fixtures/jail-server.mjs");
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

async function start(user) {
  const work = mkdtempSync(path.join(tmpdir(), "catwalk-bench-jail-"));
  chmodSync(work, 0o755);
  const tenant = (id, extra = "") => `[[tenant]]\nid = "${id}"\ncommand = ["node", "${server}"]\ndirs = ["${path.join(repo, "tests")}:ro"]\n${extra}\n`;
  const file = path.join(work, "tenants.toml");
  writeFileSync(file, tenant("victim") + tenant("spinner") + tenant("capped", "[tenant.limits]\ncpu = 0.5"));
  chmodSync(file, 0o600);
  if (user) execFileSync("chown", ["-R", user, work]);
  const argv = [bin, "serve", "--port", "0", "--log-format", "json", "--config", file, "--state-dir", path.join(work, "state")];
  const child = user ? spawn("runuser", ["-u", user, "--", ...argv], { stdio: ["ignore", "ignore", "pipe"], env: { PATH: process.env.PATH, HOME: work } })
    : spawn(argv[0], argv.slice(1), { stdio: ["ignore", "ignore", "pipe"], env: { PATH: process.env.PATH, HOME: process.env.HOME } });
  const base = await serving(child);
  const ready = await (await fetch(`${base}/readyz`)).json();
  return { base, child, resources: ready.children.resources };
}

async function connect(url) {
  const client = new Client({ name: "bench-jail", version: "0" });
  await client.connect(new StreamableHTTPClientTransport(new URL(url)));
  return client;
}

async function timed(client) {
  const times = [];
  for (let i = 0; i < 30; i++) await client.callTool({ name: "echo", arguments: { i } });
  for (let i = 0; i < calls; i++) {
    const t = process.hrtime.bigint();
    await client.callTool({ name: "echo", arguments: { i } });
    times.push(Number(process.hrtime.bigint() - t) / 1e6);
  }
  times.sort((a, b) => a - b);
  return { p50: times[Math.floor(calls * 0.5)], p99: times[Math.floor(calls * 0.99)] };
}

const rows = [];
for (const [label, user] of [["jailed (root: a cgroup per tenant)", null], ["not jailed (user nobody: no cgroups)", "nobody"]]) {
  const catwalk = await start(user);
  const victim = await connect(`${catwalk.base}/t/victim/mcp`);
  const results = { idle: [], spinning: [], capped: [] };
  for (let round = 0; round < rounds; round++) {
    results.idle.push(await timed(victim));
    for (const [kind, tenant] of [["spinning", "spinner"], ["capped", "capped"]]) {
      const neighbour = await connect(`${catwalk.base}/t/${tenant}/mcp`);
      const started = Date.now();
      const burning = neighbour.callTool({ name: "burn", arguments: { threads: 4, ms: 10_000 } }, undefined, { timeout: 120_000 });
      results[kind].push(await timed(victim));
      if (Date.now() - started > 10_000) console.error(`${label} ${kind}: the measurement outlasted the burn`);
      await burning;
      await neighbour.close();
    }
  }
  await victim.close();
  catwalk.child.kill("SIGTERM");
  const m = (kind, q) => median(results[kind].map((r) => r[q]));
  rows.push(`| ${label} | ${catwalk.resources} | ${m("idle", "p50").toFixed(2)} / ${m("idle", "p99").toFixed(2)} | ` +
    `${m("spinning", "p50").toFixed(2)} / ${m("spinning", "p99").toFixed(2)} | ${(m("spinning", "p99") / m("idle", "p99")).toFixed(2)} | ` +
    `${m("capped", "p50").toFixed(2)} / ${m("capped", "p99").toFixed(2)} | ${(m("capped", "p99") / m("idle", "p99")).toFixed(2)} |`);
}
console.log(`rounds ${rounds}, ${calls} calls each; victim's echo, one call at a time (ms, medians of the rounds)\n`);
console.log("| catwalk | resources | idle neighbour p50 / p99 | spinning neighbour p50 / p99 | p99 ratio | neighbour capped at 0.5 core p50 / p99 | p99 ratio |");
console.log("|---|---|---|---|---|---|---|");
for (const row of rows) console.log(row);
