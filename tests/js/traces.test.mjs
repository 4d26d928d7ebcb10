// OpenTelemetry traces, end to end: catwalk exports over OTLP/HTTP (JSON) to a receiver the test runs (no
// collector binary is published on a registry this machine reaches), set up only by the standard OTEL_* variables.
// A tools/call through each backend, in each protocol era, makes its spans under the trace id of the traceparent
// the client sent: the request's span (named and attributed by the MCP conventions), its children (waiting for a
// turn, starting an instance, the server's answer), and the server gets the trace context in `params._meta`. No
// secret (an env value, a token, an argument) appears in any span.
//
//   cargo build -p catwalk --bins && node --test tests/js/traces.test.mjs
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import http from "node:http";
import { mkdtempSync, chmodSync, existsSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { createHash, randomBytes } from "node:crypto";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import * as v2 from "@modelcontextprotocol/client";
import { startCatwalk, repo } from "./catwalk.mjs";

const target = path.resolve(path.dirname(process.env.CATWALK_BIN ?? path.join(repo, "target/debug/catwalk")), "..");
const guest = path.join(target, "wasm32-wasip1/release/catwalk-conformance-guest.wasm");
const paged = path.join(repo, "tests/fixtures/paged-server.mjs");
const CANARY_ENV = "canary-env-7c1f0a";
const CANARY_TOKEN = "canary-token-9d2b4e";
const CANARY_ARGUMENT = "canary-argument-3e8a51";

let catwalk, receiver, port;
const received = [];

before(async () => {
  assert.ok(existsSync(guest), `${guest} is missing: build the WASI guests first`);
  receiver = http.createServer((req, res) => {
    let body = "";
    req.on("data", (d) => (body += d));
    req.on("end", () => {
      if (req.url === "/v1/traces") received.push({ type: req.headers["content-type"], body: JSON.parse(body) });
      res.writeHead(200, { "content-type": "application/json" }).end("{}");
    });
  });
  await new Promise((r) => receiver.listen(0, "127.0.0.1", r));
  port = receiver.address().port;
  const work = mkdtempSync(path.join(tmpdir(), "catwalk-traces-"));
  chmodSync(work, 0o755);
  const q = JSON.stringify;
  writeFileSync(path.join(work, "tenants.toml"), `
[[tenant]]
id = "npm"
command = ["node", ${q(paged)}]
dirs = [${q(`${path.join(repo, "tests")}:ro`)}]
env = { API_KEY = ${q(CANARY_ENV)} }
token_sha256 = [${q(createHash("sha256").update(CANARY_TOKEN).digest("hex"))}]

[[tenant]]
id = "wasi"
wasm = ${q(guest)}
env = { API_KEY = ${q(CANARY_ENV)} }
`);
  catwalk = await startCatwalk(["--config", path.join(work, "tenants.toml"), "--state-dir", path.join(work, "state")], {
    OTEL_EXPORTER_OTLP_ENDPOINT: `http://127.0.0.1:${port}`, OTEL_EXPORTER_OTLP_PROTOCOL: "http/json",
    OTEL_BSP_SCHEDULE_DELAY: "100", OTEL_SERVICE_NAME: "catwalk-under-test" });
});

after(async () => {
  assert.equal((await catwalk?.stop())?.code, 0);
  receiver?.close();
});

/** Every span received, flattened, with its attributes as an object. */
function spans() {
  const all = [];
  for (const { body } of received) {
    for (const rs of body.resourceSpans ?? []) {
      const service = rs.resource?.attributes?.find((a) => a.key === "service.name")?.value?.stringValue;
      for (const ss of rs.scopeSpans ?? []) {
        for (const s of ss.spans ?? []) {
          const attributes = Object.fromEntries((s.attributes ?? []).map((a) => [a.key, Object.values(a.value)[0]]));
          all.push({ ...s, attributes, service });
        }
      }
    }
  }
  return all;
}

async function trace(traceId, wanted) {
  for (let i = 0; i < 400; i++) {
    const mine = spans().filter((s) => s.traceId === traceId);
    if (wanted(mine)) return mine;
    await new Promise((r) => setTimeout(r, 25));
  }
  return spans().filter((s) => s.traceId === traceId);
}

const traceparent = () => {
  const traceId = randomBytes(16).toString("hex");
  return { traceId, header: `00-${traceId}-${randomBytes(8).toString("hex")}-01` };
};

test("npm server, 2025 era: a tools/call's spans are under the client's trace, and the server gets its context", async () => {
  const { traceId, header } = traceparent();
  const client = new Client({ name: "traces-test", version: "1" });
  await client.connect(new StreamableHTTPClientTransport(new URL(`${catwalk.base}/t/npm/mcp`),
    { requestInit: { headers: { traceparent: header, authorization: `Bearer ${CANARY_TOKEN}` } } }));
  const result = await client.callTool({ name: "tool_3", arguments: { q: CANARY_ARGUMENT } });
  assert.equal(result.content[0].text, "called tool_3");
  assert.match(result._meta.seenTraceparent, new RegExp(`^00-${traceId}-[0-9a-f]{16}-01$`));
  const sessionId = client.transport.sessionId;
  await assert.rejects(client.callTool({ name: "tool_99", arguments: {} }));
  await client.close();

  const mine = await trace(traceId, (s) => s.some((x) => x.name === "tools/call tool_3")
    && s.some((x) => x.name === "server answer") && s.some((x) => x.name === "instance start"));
  const call = mine.find((s) => s.name === "tools/call tool_3");
  assert.ok(call, JSON.stringify(mine.map((s) => s.name)));
  assert.equal(call.service, "catwalk-under-test");
  assert.equal(call.kind, 2, "a server span");
  assert.equal(call.attributes["mcp.method.name"], "tools/call");
  assert.equal(call.attributes["gen_ai.tool.name"], "tool_3");
  assert.equal(call.attributes["mcp.session.id"], sessionId);
  assert.equal(call.attributes["catwalk.tenant"], "npm");
  assert.equal(call.attributes["catwalk.backend"], "process");
  assert.equal(String(call.attributes["http.response.status_code"]), "200");
  const children = mine.filter((s) => s.parentSpanId === call.spanId).map((s) => s.name).sort();
  assert.deepEqual(children, ["server answer", "wait for turn"]);
  // The server's context is the request's span: its spans would be the call's children.
  assert.ok(result._meta.seenTraceparent.includes(call.spanId), `${result._meta.seenTraceparent} vs ${call.spanId}`);
  // A call the server answers with an error: its answer's span says so.
  const failing = (await trace(traceId, (s) => s.some((x) => x.name === "tools/call tool_99"))).find((s) => s.name === "tools/call tool_99");
  const failedAnswer = spans().find((s) => s.parentSpanId === failing.spanId && s.name === "server answer");
  assert.equal(failedAnswer?.attributes["error.type"], "-32602", JSON.stringify(failedAnswer));
  assert.equal(failedAnswer.status?.code, 2, "an error status");
  const init = mine.find((s) => s.name === "initialize");
  assert.ok(mine.some((s) => s.name === "instance start" && s.parentSpanId === init.spanId));
});

test("WASI guest, 2026-07-28: a tools/call's spans are under the client's trace", async () => {
  const { traceId, header } = traceparent();
  const client = new v2.Client({ name: "traces-test", version: "2" }, { versionNegotiation: { mode: "auto" } });
  await client.connect(new v2.StreamableHTTPClientTransport(new URL(`${catwalk.base}/t/wasi/mcp`),
    { requestInit: { headers: { traceparent: header } } }));
  assert.equal(client.getNegotiatedProtocolVersion(), "2026-07-28");
  const echo = await client.callTool({ name: "echo", arguments: { message: CANARY_ARGUMENT } });
  assert.match(echo.content[0].text, new RegExp(CANARY_ARGUMENT));
  await client.close();
  const mine = await trace(traceId, (s) => s.some((x) => x.name === "tools/call echo")
    && s.filter((x) => x.name === "server answer").length >= 1);
  const call = mine.find((s) => s.name === "tools/call echo");
  assert.ok(call, JSON.stringify(mine.map((s) => s.name)));
  assert.equal(call.attributes["catwalk.backend"], "wasi");
  assert.equal(call.attributes["mcp.protocol.version"], "2026-07-28");
  const children = mine.filter((s) => s.parentSpanId === call.spanId).map((s) => s.name);
  for (const name of ["wait for turn", "instance start", "server answer"]) assert.ok(children.includes(name), children.join());
});

test("no secret reaches a span, and a request without a traceparent starts its own trace", async () => {
  const res = await fetch(`${catwalk.base}/t/wasi/mcp`, { method: "POST", headers: { "content-type": "application/json",
    accept: "application/json, text/event-stream" }, body: JSON.stringify({ jsonrpc: "2.0", id: 1, method: "initialize",
    params: { protocolVersion: "2025-11-25", capabilities: {}, clientInfo: { name: "bare", version: "0" } } }) });
  assert.equal(res.status, 200);
  for (let i = 0; i < 200 && !spans().some((s) => s.attributes["mcp.session.id"] === res.headers.get("mcp-session-id")); i++) {
    await new Promise((r) => setTimeout(r, 25));
  }
  const own = spans().find((s) => s.attributes["mcp.session.id"] === res.headers.get("mcp-session-id"));
  assert.ok(own && /^[0-9a-f]{32}$/.test(own.traceId) && !own.parentSpanId, JSON.stringify(own));
  const everything = JSON.stringify(received);
  for (const canary of [CANARY_ENV, CANARY_TOKEN, CANARY_ARGUMENT]) assert.ok(!everything.includes(canary), `${canary} in a span`);
  assert.ok(received.every((r) => r.type.startsWith("application/json")));
});
