// A tenant's terms, end to end against the real catwalk with official clients:
// - what it offers (`tools`, `prompts`, `resources` allow/deny globs): against server-everything, denied tools
//   vanish from tools/list and calling one is refused, whatever the server would say, in both protocol eras and
//   on legacy SSE; against a WASI guest the same; a client paging through a filtered list (a server that pages
//   its tools and resources) sees every offered entry exactly once; resource reads and listen subscriptions
//   obey the resource patterns;
// - its rates (`limits.rate`, `limits.subject_rate`, `limits.tool_rate`): a flood gets 429 with Retry-After and
//   a JSON-RPC error, counted in the metrics, while another tenant's calls are unaffected.
//
//   cargo build -p catwalk --bins && node --test tests/js/policy.test.mjs
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, chmodSync, existsSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { createHash } from "node:crypto";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import { SSEClientTransport } from "@modelcontextprotocol/sdk/client/sse.js";
import * as v2 from "@modelcontextprotocol/client";
import { startCatwalk, repo } from "./catwalk.mjs";

const ADMIN = "catwalk-policy-test-admin-token";
const target = path.resolve(path.dirname(process.env.CATWALK_BIN ?? path.join(repo, "target/debug/catwalk")), "..");
const guest = path.join(target, "wasm32-wasip1/release/catwalk-conformance-guest.wasm");
const everything = ["node", path.join(repo, "tests/node_modules/@modelcontextprotocol/server-everything/dist/index.js"), "stdio"];
const paged = ["node", path.join(repo, "tests/fixtures/paged-server.mjs")];
const readable = [`${path.join(repo, "tests")}:ro`];
const sha256 = (text) => createHash("sha256").update(text).digest("hex");

let catwalk, base;

const admin = (method, route, body) =>
  fetch(`${base}/admin/${route}`, {
    method, headers: { authorization: `Bearer ${ADMIN}`, "content-type": "application/json" },
    body: body && JSON.stringify(body),
  });

async function put(tenant) {
  const res = await admin("PUT", `tenants/${tenant.id}`, tenant);
  assert.ok([200, 201].includes(res.status), await res.text());
}

before(async () => {
  assert.ok(existsSync(guest), `${guest} is missing: build the WASI guests first (tests/run.sh)`);
  const work = mkdtempSync(path.join(tmpdir(), "catwalk-policy-"));
  chmodSync(work, 0o755);
  writeFileSync(path.join(work, "tenants.toml"), "");
  catwalk = await startCatwalk(["--config", path.join(work, "tenants.toml"), "--state-dir", path.join(work, "state"),
    "--admin-token-sha256", sha256(ADMIN)], { CATWALK_STATE_KEY: "5e6f7a8b".repeat(8) });
  base = catwalk.base;
  const offer = { tools: { deny: ["get-env", "trigger-*"] }, prompts: { allow: ["simple-prompt"] } };
  await put({ id: "everything", command: everything, dirs: readable, ...offer });
  await put({ id: "everything-open", command: everything, dirs: readable });
  await put({ id: "paged", command: paged, dirs: readable,
    tools: { deny: ["tool_1", "tool_3", "tool_4", "tool_5"] }, resources: { deny: ["paged://r/7"] } });
  await put({ id: "guest", wasm: guest, tools: { allow: ["echo", "test_simple_*"] } });
});

after(async () => {
  assert.equal((await catwalk?.stop())?.code, 0);
});

const url = (id, route = "mcp") => new URL(`${base}/t/${id}/${route}`);

async function v1(id, headers = {}) {
  const client = new Client({ name: "catwalk-policy-test", version: "0" });
  await client.connect(new StreamableHTTPClientTransport(url(id), { requestInit: { headers } }));
  return client;
}

async function legacy(id) {
  const client = new Client({ name: "catwalk-policy-test", version: "0" });
  await client.connect(new SSEClientTransport(url(id, "sse")));
  return client;
}

async function modern(id) {
  const client = new v2.Client({ name: "catwalk-policy-test", version: "0" }, { versionNegotiation: { mode: "auto" } });
  await client.connect(new v2.StreamableHTTPClientTransport(url(id)));
  assert.equal(client.getNegotiatedProtocolVersion(), "2026-07-28");
  return client;
}

/** Every page of a list, through the client's own cursor handling. */
async function all(list, key, field) {
  const names = [];
  let cursor;
  let pages = 0;
  do {
    const page = await list(cursor === undefined ? {} : { cursor });
    names.push(...page[key].map((e) => e[field]));
    cursor = page.nextCursor;
    pages++;
  } while (cursor !== undefined && pages < 50);
  return { names, pages };
}

test("the open tenant shows what server-everything has, so the filter below has something to remove", async () => {
  const client = await v1("everything-open");
  const { tools } = await client.listTools();
  const names = tools.map((t) => t.name);
  assert.ok(names.includes("get-env") && names.includes("trigger-long-running-operation"), names.join());
  const env = await client.callTool({ name: "get-env", arguments: {} });
  assert.ok(!env.isError, JSON.stringify(env));
  await client.close();
});

for (const [era, connect] of [["2025 era, Streamable HTTP", v1], ["2024-11-05, legacy SSE", legacy], ["2026-07-28", modern]]) {
  test(`server-everything, ${era}: denied tools vanish from tools/list and calling one is refused`, async () => {
    const client = await connect("everything");
    const { tools } = await client.listTools();
    const names = tools.map((t) => t.name);
    assert.ok(names.includes("echo") && names.includes("get-sum"), names.join());
    assert.ok(!names.some((n) => n === "get-env" || n.startsWith("trigger-")), names.join());
    const echo = await client.callTool({ name: "echo", arguments: { message: "offered" } });
    assert.match(echo.content[0].text, /offered/);
    for (const name of ["get-env", "trigger-long-running-operation"]) {
      await assert.rejects(client.callTool({ name, arguments: {} }), (e) => {
        assert.equal(e.code, -32602, String(e));
        assert.match(e.message, new RegExp(`Unknown tool: ${name}`));
        return true;
      });
    }
    const { prompts } = await client.listPrompts();
    assert.deepEqual(prompts.map((p) => p.name), ["simple-prompt"]);
    await assert.rejects(client.getPrompt({ name: "args-prompt", arguments: { city: "Paris" } }), (e) => e.code === -32602);
    await client.close();
  });
}

test("a WASI guest's tools obey the same offer (2026-07-28 and 2025 era)", async () => {
  for (const connect of [modern, v1]) {
    const client = await connect("guest");
    const { tools } = await client.listTools();
    const names = tools.map((t) => t.name).sort();
    assert.ok(names.length >= 2 && names.every((n) => n === "echo" || n.startsWith("test_simple_")), names.join());
    await assert.rejects(client.callTool({ name: "test_error_handling", arguments: {} }), (e) => e.code === -32602);
    const echo = await client.callTool({ name: "echo", arguments: { message: "wasi" } });
    assert.match(echo.content[0].text, /wasi/);
    await client.close();
  }
});

test("a client paging through filtered lists sees every offered entry exactly once, in both eras", async () => {
  const offeredTools = ["tool_0", "tool_2", "tool_6", "tool_7", "tool_8", "tool_9"];
  const offeredResources = ["paged://r/0", "paged://r/1", "paged://r/2", "paged://r/3", "paged://r/4",
    "paged://r/5", "paged://r/6", "paged://r/8", "paged://r/9"];
  for (const connect of [v1, modern]) {
    const client = await connect("paged");
    const tools = await all((p) => client.listTools(p), "tools", "name");
    assert.deepEqual(tools.names, offeredTools);
    // The server's four pages stay four: the second (tool_3..5) comes back empty, its cursor kept. (The v2
    // client pages through a list itself, and returns it whole.)
    assert.equal(tools.pages, connect === v1 ? 4 : 1);
    const resources = await all((p) => client.listResources(p), "resources", "uri");
    assert.deepEqual(resources.names, offeredResources);
    const read = await client.readResource({ uri: "paged://r/8" });
    assert.equal(read.contents[0].text, "paged://r/8");
    await assert.rejects(client.readResource({ uri: "paged://r/7" }), (e) => e.code === -32002);
    await assert.rejects(client.callTool({ name: "tool_4", arguments: {} }), (e) => e.code === -32602);
    assert.equal((await client.callTool({ name: "tool_6", arguments: {} })).content[0].text, "called tool_6");
    await client.close();
  }
});

test("a batch with a denied call gets its error beside the other answers", async () => {
  const client = await v1("paged");
  const session = client.transport.sessionId;
  const res = await fetch(url("paged"), {
    method: "POST",
    headers: { "content-type": "application/json", accept: "application/json, text/event-stream",
      "mcp-session-id": session, "mcp-protocol-version": "2025-03-26" },
    body: JSON.stringify([
      { jsonrpc: "2.0", id: 1, method: "tools/call", params: { name: "tool_1", arguments: {} } },
      { jsonrpc: "2.0", id: 2, method: "tools/call", params: { name: "tool_2", arguments: {} } },
    ]),
  });
  assert.equal(res.status, 200);
  const answers = (await res.text()).split("\n").filter((l) => l.startsWith("data: ") && l.length > 6).map((l) => JSON.parse(l.slice(6)));
  const byId = Object.fromEntries(answers.map((a) => [a.id, a]));
  assert.equal(byId[1].error.code, -32602, JSON.stringify(answers));
  assert.equal(byId[2].result.content[0].text, "called tool_2");
  await client.close();
});

test("rates: a flood gets 429 with Retry-After and a JSON-RPC error, counted, while another tenant is unaffected", async () => {
  await put({ id: "limited", command: paged, dirs: readable, limits: { rate: { per_second: 0.5, burst: 8 } } });
  const client = await v1("limited");
  const session = client.transport.sessionId;
  const ping = (id, tenant = "limited", sessionId = session) => fetch(url(tenant), {
    method: "POST",
    headers: { "content-type": "application/json", accept: "application/json, text/event-stream",
      "mcp-session-id": sessionId, "mcp-protocol-version": "2025-03-26" },
    body: JSON.stringify({ jsonrpc: "2.0", id, method: "ping" }),
  });
  const other = await v1("paged");
  const flood = await Promise.all(Array.from({ length: 20 }, (_, i) => ping(100 + i)));
  const limited = flood.filter((r) => r.status === 429);
  assert.ok(limited.length >= 10, `statuses: ${flood.map((r) => r.status)}`);
  const first = limited[0];
  assert.ok(Number(first.headers.get("retry-after")) >= 1, first.headers.get("retry-after"));
  const body = await first.json();
  assert.equal(body.jsonrpc, "2.0");
  assert.equal(body.error.code, -32004);
  assert.match(body.error.message, /over its rate/);
  // The other tenant's calls go on while this one is held back.
  for (let i = 0; i < 10; i++) {
    assert.equal((await other.callTool({ name: "tool_0", arguments: {} })).content[0].text, "called tool_0");
  }
  const metrics = await (await fetch(`${base}/metrics`, { headers: { authorization: `Bearer ${ADMIN}` } })).text();
  const counted = metrics.match(/catwalk_refusals_total\{tenant="limited",reason="rate_tenant"\} (\d+)/);
  assert.ok(counted && Number(counted[1]) >= limited.length, metrics.split("\n").filter((l) => l.includes("refusals")).join("\n"));
  assert.ok(!/catwalk_refusals_total\{tenant="paged",reason="rate/.test(metrics));
  await other.close();
});

test("rates: each subject has its own, and a tool can have one of its own", async () => {
  await put({ id: "subjects", command: paged, dirs: readable, token_sha256: [sha256("token-a"), sha256("token-b")],
    limits: { subject_rate: { per_second: 0.2, burst: 8 }, tool_rate: { "tool_9": { per_second: 0.01, burst: 1 } } } });
  const a = await v1("subjects", { authorization: "Bearer token-a" });
  const b = await v1("subjects", { authorization: "Bearer token-b" });
  // a's burst is spent by its connection and a few calls; b's is its own.
  let refused;
  for (let i = 0; i < 12 && !refused; i++) {
    await a.callTool({ name: "tool_0", arguments: {} }).catch((e) => { refused = e; });
  }
  assert.ok(refused, "token-a was never limited");
  assert.match(String(refused), /-32004.*your requests to this tenant are over their rate/);
  assert.equal((await b.callTool({ name: "tool_0", arguments: {} })).content[0].text, "called tool_0");
  // tool_9 once, then its own rate refuses it, while b's other tools go on.
  assert.equal((await b.callTool({ name: "tool_9", arguments: {} })).content[0].text, "called tool_9");
  await assert.rejects(b.callTool({ name: "tool_9", arguments: {} }), /-32004.*calls of this tool are over their rate/);
  assert.equal((await b.callTool({ name: "tool_2", arguments: {} })).content[0].text, "called tool_2");
  await a.close().catch(() => {});
  await b.close();
});

test("subscriptions/listen (2026-07-28): a resource the tenant does not offer is left out of the acknowledgement", async () => {
  await put({ id: "listening", command: everything, dirs: readable,
    resources: { deny: ["demo://resource/static/document/architecture.md"] } });
  const offered = "demo://resource/static/document/features.md";
  const hidden = "demo://resource/static/document/architecture.md";
  const meta = { "io.modelcontextprotocol/protocolVersion": "2026-07-28",
    "io.modelcontextprotocol/clientInfo": { name: "catwalk-policy-test", version: "0" },
    "io.modelcontextprotocol/clientCapabilities": {} };
  const res = await fetch(url("listening"), {
    method: "POST",
    headers: { "content-type": "application/json", accept: "application/json, text/event-stream",
      "mcp-protocol-version": "2026-07-28", "mcp-method": "subscriptions/listen" },
    body: JSON.stringify({ jsonrpc: "2.0", id: 7, method: "subscriptions/listen",
      params: { notifications: { resourceSubscriptions: [offered, hidden] }, _meta: meta } }),
  });
  assert.equal(res.status, 200);
  const reader = res.body.getReader();
  let text = "";
  while (!text.includes("notifications/subscriptions/acknowledged")) {
    const { value, done } = await reader.read();
    assert.ok(!done, `the stream ended before its acknowledgement: ${text}`);
    text += new TextDecoder().decode(value);
  }
  await reader.cancel();
  const line = text.split("\n").find((l) => l.startsWith("data: ") && l.includes("acknowledged"));
  const acknowledged = JSON.parse(line.slice(6));
  assert.deepEqual(acknowledged.params.notifications.resourceSubscriptions, [offered], line);
});
