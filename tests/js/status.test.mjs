// The admin status page, rendered in headless Chromium (Debian's package, driven by playwright-core): after a client
// has connected, it shows the tenant and the session, with the client's name; the same data comes as JSON; without
// the admin token there is no page. A screenshot of it must not be a blank page.
//
//   apt-get install chromium && cargo build -p catwalk --bins && node --test tests/js/status.test.mjs
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, chmodSync, existsSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { createHash } from "node:crypto";
import { chromium } from "playwright-core";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import { startCatwalk, repo } from "./catwalk.mjs";

const ADMIN = "catwalk-status-test-admin-token";
const CHROMIUM = process.env.CATWALK_CHROMIUM ?? "/usr/bin/chromium";
const target = path.resolve(path.dirname(process.env.CATWALK_BIN ?? path.join(repo, "target/debug/catwalk")), "..");
const guest = path.join(target, "wasm32-wasip1/release/catwalk-conformance-guest.wasm");
const plain = path.join(repo, "tests/fixtures/paged-server.mjs");

let catwalk, work, browser;

before(async () => {
  assert.ok(existsSync(CHROMIUM), `${CHROMIUM} is missing: apt-get install chromium (tests/run.sh does)`);
  work = mkdtempSync(path.join(tmpdir(), "catwalk-status-"));
  chmodSync(work, 0o755);
  writeFileSync(path.join(work, "tenants.toml"), `
[[tenant]]
id = "acme"
command = ["node", ${JSON.stringify(plain)}]
dirs = [${JSON.stringify(`${path.join(repo, "tests")}:ro`)}]
tools = { deny = ["tool_1"] }

[[tenant]]
id = "sandboxed"
wasm = ${JSON.stringify(guest)}
`);
  catwalk = await startCatwalk(["--config", path.join(work, "tenants.toml"), "--state-dir", path.join(work, "state"),
    "--admin-token-sha256", createHash("sha256").update(ADMIN).digest("hex"), "--audit-log", path.join(work, "audit")]);
  browser = await chromium.launch({ executablePath: CHROMIUM, args: ["--no-sandbox"] });
});

after(async () => {
  await browser?.close();
  assert.equal((await catwalk?.stop())?.code, 0);
});

test("the status page shows a tenant and the session a client opened, in a real browser", async () => {
  const client = new Client({ name: "status-page-client", version: "9.9" });
  await client.connect(new StreamableHTTPClientTransport(new URL(`${catwalk.base}/t/acme/mcp`)));
  await client.callTool({ name: "tool_0", arguments: {} });
  await assert.rejects(client.callTool({ name: "tool_1", arguments: {} }));

  const context = await browser.newContext({ extraHTTPHeaders: { authorization: `Bearer ${ADMIN}` },
    viewport: { width: 1280, height: 800 } });
  const page = await context.newPage();
  const scripts = [];
  page.on("request", (r) => r.resourceType() === "script" && scripts.push(r.url()));
  const response = await page.goto(`${catwalk.base}/admin/status`);
  assert.equal(response.status(), 200);
  const tenants = await page.locator("#tenants tr").allInnerTexts();
  assert.ok(tenants.some((row) => row.includes("acme") && row.includes("process")), tenants.join("\n"));
  assert.ok(tenants.some((row) => row.includes("sandboxed") && row.includes("wasi")), tenants.join("\n"));
  assert.ok(tenants.some((row) => row.includes("acme") && row.includes("not_offered: 1")), tenants.join("\n"));
  const sessions = await page.locator("#sessions tr").allInnerTexts();
  assert.ok(sessions.some((row) => row.includes("acme") && row.includes("status-page-client 9.9")), sessions.join("\n"));
  const audit = await page.locator("#audit tr").allInnerTexts();
  assert.ok(audit.some((row) => row.includes("tool_1") && row.includes("denied")), audit.join("\n"));
  assert.deepEqual(scripts, [], "the page loads no script");

  // Not a blank page: its screenshot holds far more than a blank page's does.
  const shot = await page.screenshot({ fullPage: true });
  const blank = await context.newPage();
  await blank.setContent("<html><body></body></html>");
  const empty = await blank.screenshot({ fullPage: true });
  assert.ok(shot.length > 5 * empty.length, `screenshot ${shot.length} bytes, a blank page's ${empty.length}`);
  writeFileSync(path.join(work, "status.png"), shot);
  // Memory per tenant: measured by its uid where catwalk runs as root (each tenant's processes have their own).
  const live = await (await fetch(`${catwalk.base}/admin/status?format=json`, { headers: { authorization: `Bearer ${ADMIN}` } })).json();
  const acme = live.tenants.find((t) => t.id === "acme");
  assert.equal(acme.sessions.length, 1);
  if (process.getuid() === 0) assert.ok(acme.memory_bytes > 1 << 20, JSON.stringify(acme));
  await context.close();
  await client.close();
});

test("the same data comes as JSON, and without the admin token there is nothing", async () => {
  const json = await fetch(`${catwalk.base}/admin/status`, {
    headers: { authorization: `Bearer ${ADMIN}`, accept: "application/json" } });
  assert.equal(json.status, 200);
  const status = await json.json();
  const acme = status.tenants.find((t) => t.id === "acme");
  assert.equal(acme.backend, "process");
  assert.ok(status.sessions.max > 0);
  assert.ok(Array.isArray(status.audit) && status.audit.some((r) => r.name === "tool_0" && r.outcome === "ok"));
  for (const auth of [undefined, "Bearer wrong"]) {
    const res = await fetch(`${catwalk.base}/admin/status`, { headers: auth ? { authorization: auth } : {} });
    assert.equal(res.status, 401);
  }
});
