// Both protocol eras on one /mcp URL, with the official clients that speak the 2026-07-28 revision: the
// TypeScript SDK v2 (`@modelcontextprotocol/client`, versionNegotiation `auto` and `legacy`) and the Python SDK
// 2.x (`mcp.Client(url, mode=...)`, from the venv tests/run.sh sets up as CATWALK_PYTHON), beside the TypeScript
// SDK v1 (2025 era only). In front of the WASI demo guest and of catwalk's npm fixture.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import path from "node:path";
import { Client as ClientV2, StreamableHTTPClientTransport as TransportV2 } from "@modelcontextprotocol/client";
import { Client as ClientV1 } from "@modelcontextprotocol/sdk/client/index.js";
import { StreamableHTTPClientTransport as TransportV1 } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import { startCatwalk, fixtureDir, repo } from "./catwalk.mjs";

const servers = {
  "WASI demo guest": { args: [], progress: null },
  "npm fixture": { args: ["--package", fixtureDir], progress: "test_tool_with_progress" },
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
  before(async () => { catwalk = await startCatwalk(server.args); });
  after(async () => { assert.equal((await catwalk.stop()).code, 0); });

  for (const [mode, version] of Object.entries(expected)) {
    test(`${serverName}: TypeScript SDK v2, versionNegotiation ${mode}, speaks ${version}`, async () => {
      const client = new ClientV2({ name: "catwalk-tests", version: "0" }, { versionNegotiation: { mode } });
      await client.connect(new TransportV2(new URL(`${catwalk.base}/mcp`)));
      assert.equal(client.getNegotiatedProtocolVersion(), version);
      const { tools } = await client.listTools();
      assert.ok(tools.some((t) => t.name === "echo"), JSON.stringify(tools));
      const echo = await client.callTool({ name: "echo", arguments: { message: `v2 ${mode}` } });
      assert.equal(echo.content[0].text, `Echo: v2 ${mode}`);
      if (server.progress) {
        const seen = [];
        const done = await client.callTool(
          { name: server.progress, arguments: {} },
          { onprogress: (p) => seen.push(p.progress) },
        );
        assert.equal(seen.length, 3, `progress reported: ${seen}`);
        assert.ok(done.content.length > 0);
      }
      await client.close();
    });

    test(`${serverName}: Python SDK 2.x, mode ${mode}, speaks ${version}`, async () => {
      const got = await python(`${catwalk.base}/mcp`, mode);
      assert.equal(got.version, version);
      assert.ok(got.tools.includes("echo"), JSON.stringify(got));
      assert.equal(got.echo, "Echo: from python");
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
