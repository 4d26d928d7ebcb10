// Both protocol eras on one /mcp URL, with the official clients that speak the 2026-07-28 revision: the
// TypeScript SDK v2 (`@modelcontextprotocol/client`, versionNegotiation `auto` and `legacy`) and the Python SDK
// 2.x (`mcp.Client(url, mode=...)`, from the venv tests/run.sh sets up as CATWALK_PYTHON), beside the TypeScript
// SDK v1 (2025 era only). In front of catwalk's conformance fixture, as a WASI guest and as an npm server. Tools
// that ask the client (elicitation, sampling) reach a 2026-07-28 client as input requests, and go on when it
// retries with its answers.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import path from "node:path";
import { Client as ClientV2, StreamableHTTPClientTransport as TransportV2 } from "@modelcontextprotocol/client";
import { Client as ClientV1 } from "@modelcontextprotocol/sdk/client/index.js";
import { StreamableHTTPClientTransport as TransportV1 } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import { startCatwalk, fixtureDir, repo } from "./catwalk.mjs";

const target = path.resolve(path.dirname(process.env.CATWALK_BIN ?? path.join(repo, "target/debug/catwalk")), "..");
const servers = {
  "WASI guest": ["--wasm", path.join(target, "wasm32-wasip1/release/catwalk-conformance-guest.wasm")],
  "npm fixture": ["--package", fixtureDir],
};

const expected = { auto: "2026-07-28", legacy: "2025-11-25" };

function python(url, mode) {
  const interpreter = process.env.CATWALK_PYTHON;
  assert.ok(interpreter, "CATWALK_PYTHON names a Python with mcp 2.x installed (tests/run.sh sets it)");
  return new Promise((resolve, reject) => {
    const child = spawn(interpreter, [path.join(repo, "tests/py/eras_client.py"), url, mode], {
      stdio: ["ignore", "pipe", "pipe"],
    });
    let out = "";
    let err = "";
    child.stdout.on("data", (d) => (out += d));
    child.stderr.on("data", (d) => (err += d));
    child.on("error", reject);
    child.on("exit", (code) => (code === 0 ? resolve(JSON.parse(out.trim().split("\n").pop())) : reject(new Error(`python exited ${code}: ${err}`))));
  });
}

for (const [serverName, server] of Object.entries(servers)) {
  let catwalk;
  before(async () => { catwalk = await startCatwalk(server); });
  after(async () => { assert.equal((await catwalk.stop()).code, 0); });

  for (const [mode, version] of Object.entries(expected)) {
    test(`${serverName}: TypeScript SDK v2, versionNegotiation ${mode}, speaks ${version}`, async () => {
      const client = new ClientV2(
        { name: "catwalk-tests", version: "0" },
        { versionNegotiation: { mode }, capabilities: { elicitation: {}, sampling: {} } },
      );
      const asked = [];
      client.setRequestHandler("elicitation/create", async (request) => {
        asked.push(request.params.message);
        return { action: "accept", content: { username: "ada", email: "ada@example.com" } };
      });
      client.setRequestHandler("sampling/createMessage", async () => {
        asked.push("sampling");
        return { role: "assistant", content: { type: "text", text: "sampled by the test" }, model: "test-model" };
      });
      await client.connect(new TransportV2(new URL(`${catwalk.base}/mcp`)));
      assert.equal(client.getNegotiatedProtocolVersion(), version);
      const { tools } = await client.listTools();
      assert.ok(tools.some((t) => t.name === "echo"), JSON.stringify(tools));
      const echo = await client.callTool({ name: "echo", arguments: { message: `v2 ${mode}` } });
      assert.equal(echo.content[0].text, `Echo: v2 ${mode}`);
      // A tool with x-mcp-header arguments: in the 2026 era the client mirrors them into Mcp-Param-* headers,
      // which catwalk checks against the body.
      const routed = await client.callTool({ name: "test_header_param", arguments: { region: "eu-west", priority: 2 } });
      assert.equal(routed.content[0].text, "region=eu-west");
      const seen = [];
      const done = await client.callTool(
        { name: "test_tool_with_progress", arguments: {} },
        { onprogress: (p) => seen.push(p.progress) },
      );
      assert.equal(seen.length, 3, `progress reported: ${seen}`);
      assert.ok(done.content.length > 0);
      // The server's own requests: in the 2026 era, input requests the client answers by retrying.
      const elicited = await client.callTool({ name: "test_elicitation", arguments: { message: "Who are you?" } });
      assert.match(elicited.content[0].text, /action=accept, content=.*"username":"ada"/);
      const sampled = await client.callTool({ name: "test_sampling", arguments: { prompt: "Say hi" } });
      assert.equal(sampled.content[0].text, "LLM response: sampled by the test");
      assert.deepEqual(asked, ["Who are you?", "sampling"]);
      await client.close();
    });

    test(`${serverName}: Python SDK 2.x, mode ${mode}, speaks ${version}`, async () => {
      const got = await python(`${catwalk.base}/mcp`, mode);
      assert.equal(got.version, version);
      assert.ok(got.tools.includes("echo"), JSON.stringify(got));
      assert.equal(got.echo, "Echo: from python");
      assert.equal(got.routed, "region=eu-west");
      assert.match(got.elicited, /action=accept, content=.*"username": ?"py"/);
    });
  }

  test(`${serverName}: TypeScript SDK v1 (2025 era) on the same URL`, async () => {
    const client = new ClientV1({ name: "catwalk-tests", version: "0" });
    await client.connect(new TransportV1(new URL(`${catwalk.base}/mcp`)));
    const echo = await client.callTool({ name: "echo", arguments: { message: "v1" } });
    assert.equal(echo.content[0].text, "Echo: v1");
    await client.close();
  });
}
