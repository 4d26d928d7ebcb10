// The audit trail, end to end against the real catwalk (`--audit-log DIR`) with official clients: one JSON record
// per tools/call, resources/read and prompts/get, on both backends, in both protocol eras and on both 2025-era
// transports, and one per refusal (a bad token, a hidden tool, a rate, a sandboxed server's egress). Each record
// names the tenant, the subject, the client, the method and entry, the outcome and the bytes; no argument or
// result ever appears in it (a canary in both is looked for), and a tenant that asks gets its arguments as a keyed
// hash, equal for equal arguments.
//
//   cargo build -p catwalk --bins && node --test tests/js/audit.test.mjs
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, chmodSync, existsSync, writeFileSync, readdirSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { createHash } from "node:crypto";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import { SSEClientTransport } from "@modelcontextprotocol/sdk/client/sse.js";
import * as v2 from "@modelcontextprotocol/client";
import { startCatwalk, repo } from "./catwalk.mjs";

const target = path.resolve(path.dirname(process.env.CATWALK_BIN ?? path.join(repo, "target/debug/catwalk")), "..");
const guest = path.join(target, "wasm32-wasip1/release/catwalk-conformance-guest.wasm");
const egressGuest = path.join(target, "wasm32-wasip1/release/catwalk-egress-guest.wasm");
const everything = path.join(repo, "tests/node_modules/@modelcontextprotocol/server-everything/dist/index.js");
const TOKEN = "catwalk-audit-test-token";
const CANARY_ARGUMENT = "canary-argument-4f1d8e";
const sha256 = (text) => createHash("sha256").update(text).digest("hex");
const CLIENT = { name: "catwalk-audit-test", version: "3.1.4" };

let catwalk, base, auditDir;

before(async () => {
  for (const wasm of [guest, egressGuest]) assert.ok(existsSync(wasm), `${wasm} is missing: build the WASI guests first`);
  const work = mkdtempSync(path.join(tmpdir(), "catwalk-audit-"));
  chmodSync(work, 0o755);
  auditDir = path.join(work, "audit");
  const q = JSON.stringify;
  writeFileSync(path.join(work, "tenants.toml"), `
[[tenant]]
id = "everything"
command = ["node", ${q(everything)}, "stdio"]
dirs = [${q(`${path.join(repo, "tests")}:ro`)}]
token_sha256 = [${q(sha256(TOKEN))}]
tools = { deny = ["get-env"] }
audit = { hash_arguments = true }
limits = { tool_rate = { "get-sum" = { per_second = 0.01, burst = 1 } } }

[[tenant]]
id = "guest"
wasm = ${q(guest)}

[[tenant]]
id = "egress"
wasm = ${q(egressGuest)}
egress = ["https://api.test"]
`);
  catwalk = await startCatwalk(["--config", path.join(work, "tenants.toml"), "--state-dir", path.join(work, "state"),
    "--audit-log", auditDir], { CATWALK_STATE_KEY: "a1b2c3d4".repeat(8) });
  base = catwalk.base;
});

after(async () => {
  assert.equal((await catwalk?.stop())?.code, 0);
});

const headers = { authorization: `Bearer ${TOKEN}` };
const url = (id, route = "mcp") => new URL(`${base}/t/${id}/${route}`);

function records() {
  if (!existsSync(auditDir)) return [];
  const text = readdirSync(auditDir).map((f) => readFileSync(path.join(auditDir, f), "utf8")).join("");
  return { text, lines: text.split("\n").filter(Boolean).map((l) => JSON.parse(l)) };
}

/** The records that match `want`, once the trail holds `count` of them (it is written by a thread of its own). */
async function awaitRecords(want, count) {
  const matches = (r) => Object.entries(want).every(([k, v]) => (typeof v === "function" ? v(r[k]) : r[k] === v));
  for (let i = 0; i < 200; i++) {
    const found = (records().lines ?? []).filter(matches);
    if (found.length >= count) return found;
    await new Promise((r) => setTimeout(r, 25));
  }
  return (records().lines ?? []).filter(matches);
}

const connections = {
  "streamable": async (id, h) => {
    const client = new Client(CLIENT);
    await client.connect(new StreamableHTTPClientTransport(url(id), { requestInit: { headers: h } }));
    return client;
  },
  "sse": async (id, h) => {
    const client = new Client(CLIENT);
    await client.connect(new SSEClientTransport(url(id, "sse"), { requestInit: { headers: h },
      eventSourceInit: { fetch: (u, init) => fetch(u, { ...init, headers: { ...init?.headers, ...h } }) } }));
    return client;
  },
  "modern": async (id, h) => {
    const client = new v2.Client(CLIENT, { versionNegotiation: { mode: "auto" } });
    await client.connect(new v2.StreamableHTTPClientTransport(url(id), { requestInit: { headers: h } }));
    return client;
  },
};

for (const [transport, connect] of Object.entries(connections)) {
  test(`npm server, ${transport}: one record per call, none with an argument or a result`, async () => {
    const client = await connect("everything", headers);
    const echo = await client.callTool({ name: "echo", arguments: { message: `${CANARY_ARGUMENT} via ${transport}` } });
    assert.match(echo.content[0].text, new RegExp(CANARY_ARGUMENT));
    await client.callTool({ name: "echo", arguments: { message: "same" } });
    await assert.rejects(client.callTool({ name: "get-env", arguments: {} }));
    await client.getPrompt({ name: "simple-prompt", arguments: {} });
    const { resources } = await client.listResources();
    await client.readResource({ uri: resources[0].uri });
    await client.close();

    const mine = (method, name) => ({ tenant: "everything", transport, method, name });
    const echoes = await awaitRecords(mine("tools/call", "echo"), 2);
    assert.equal(echoes.length, 2, JSON.stringify(records().lines));
    for (const r of echoes) {
      assert.equal(r.outcome, "ok");
      assert.equal(r.subject, `token:${sha256(TOKEN).slice(0, 16)}`);
      assert.deepEqual(r.client, CLIENT);
      assert.ok(r.bytes_in > 0 && r.bytes_out > 0 && r.duration_ms >= 0, JSON.stringify(r));
      assert.match(r.arguments_hmac, /^[0-9a-f]{64}$/);
      assert.ok(!Number.isNaN(Date.parse(r.time)));
    }
    const [denied] = await awaitRecords(mine("tools/call", "get-env"), 1);
    assert.equal(denied.outcome, "denied");
    assert.equal(denied.reason, "not_offered");
    assert.equal(denied.code, -32602);
    assert.equal((await awaitRecords(mine("prompts/get", "simple-prompt"), 1)).length, 1);
    assert.equal((await awaitRecords(mine("resources/read", resources[0].uri), 1))[0].outcome, "ok");
    // Lists are not calls: no record.
    assert.equal(records().lines.filter((r) => r.method === "resources/list").length, 0);
    const { text } = records();
    assert.ok(!text.includes(CANARY_ARGUMENT), "an argument reached the audit trail");
    assert.ok(!text.includes("Echo:"), "a result reached the audit trail");
    assert.ok(!text.includes(TOKEN), "the token reached the audit trail");
  });
}

test("equal arguments hash alike across eras and transports, and other arguments differently", async () => {
  const same = await awaitRecords({ tenant: "everything", method: "tools/call", name: "echo" }, 6);
  const byTransport = {};
  for (const r of same) (byTransport[r.transport] ??= []).push(r);
  // Each transport's second echo had {message: "same"}; the first carried the canary, different each time.
  const hashes = Object.values(byTransport).map((rs) => rs.map((r) => r.arguments_hmac));
  const sameHashes = hashes.map((hs) => hs[1]);
  assert.equal(new Set(sameHashes).size, 1, JSON.stringify(hashes));
  assert.equal(new Set(hashes.map((hs) => hs[0])).size, 3);
});

test("a WASI guest's calls are recorded, and a sandboxed server's refused egress is", async () => {
  const client = await connections.streamable("guest", {});
  await client.callTool({ name: "echo", arguments: { message: CANARY_ARGUMENT } });
  await client.close();
  const [call] = await awaitRecords({ tenant: "guest", method: "tools/call", name: "echo" }, 1);
  assert.equal(call.outcome, "ok");
  assert.equal(call.subject, null);
  assert.equal(call.arguments_hmac, undefined, "the guest's tenant did not ask for argument hashes");

  const egress = await connections.modern("egress", {});
  const refused = await egress.callTool({ name: "fetch", arguments: { url: "https://not-granted.test/secret" } });
  assert.ok(refused.isError, JSON.stringify(refused));
  await egress.close();
  const [denial] = await awaitRecords({ tenant: "egress", method: "egress" }, 1);
  assert.equal(denial.outcome, "denied");
  assert.equal(denial.name, "not-granted.test:443");
  assert.match(denial.reason, /^egress_/);
  const [fetchCall] = await awaitRecords({ tenant: "egress", method: "tools/call", name: "fetch" }, 1);
  assert.equal(fetchCall.outcome, "tool_error");
  assert.equal(fetchCall.transport, "modern");
});

test("refusals before a call is read are recorded: a bad token, and a tool over its rate", async () => {
  const bad = await fetch(url("everything"), { method: "POST", headers: { authorization: "Bearer not-the-token",
    "content-type": "application/json", accept: "application/json, text/event-stream" },
    body: JSON.stringify({ jsonrpc: "2.0", id: 1, method: "initialize", params: {} }) });
  assert.equal(bad.status, 401);
  const [auth] = await awaitRecords({ tenant: "everything", reason: "auth", status: 401 }, 1);
  assert.equal(auth.outcome, "denied");
  assert.ok(!records().text.includes("not-the-token"));

  const client = await connections.streamable("everything", headers);
  await client.callTool({ name: "get-sum", arguments: { a: 1, b: 2 } });
  await assert.rejects(client.callTool({ name: "get-sum", arguments: { a: 1, b: 2 } }), /-32004/);
  await client.close();
  const sums = await awaitRecords({ tenant: "everything", method: "tools/call", name: "get-sum" }, 2);
  assert.deepEqual(sums.map((r) => r.outcome), ["ok", "denied"], JSON.stringify(sums));
  assert.equal(sums[1].reason, "rate_tool");
  assert.equal(sums[1].code, -32004);
});
