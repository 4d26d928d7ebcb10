// Packed npm servers calling APIs through catwalk: `tests/fixtures/egress-package` makes requests every way a Node
// program does (global fetch, https, axios, node-fetch), packed to WASI and served with egress grants and a
// secret bound to its API's host. The API is a fake one with a CA of its own (`fake-api`), reached by name
// through --egress-resolve and --egress-ca; what arrived there is read back from it, so each attack is checked
// where it would land.
//
//   cargo build -p catwalk -p catwalk-tests --bins && node --test tests/js/egress.test.mjs
import { test, describe, before, after } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, writeFileSync, chmodSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { createHash } from "node:crypto";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import { startCatwalk, repo } from "./catwalk.mjs";
import { fakeApi } from "./fake-api.mjs";

const SECRET = "tok_live_0123456789abcdefghijklmnop";
const ADMIN = "catwalk-egress-test-admin-token";

async function connect(url) {
  const client = new Client({ name: "catwalk-egress-test", version: "0" });
  await client.connect(new StreamableHTTPClientTransport(new URL(url)));
  return client;
}

/** A tool's answer: `{ ok: parsed }` or `{ error: text }`. */
async function call(client, name, args) {
  const result = await client.callTool({ name, arguments: args }, undefined, { timeout: 60_000 });
  const text = result.content[0].text;
  return result.isError ? { error: text } : { ok: text.startsWith("{") || text.startsWith("[") ? JSON.parse(text) : text };
}

describe("a packed server's requests through catwalk", () => {
  let api;
  let catwalk;
  let a;
  let placeholder;
  const work = mkdtempSync(path.join(tmpdir(), "catwalk-egress-"));
  chmodSync(work, 0o755);

  before(async () => {
    api = await fakeApi(["api.test", "other.test"], work);
    const fixture = path.join(repo, "tests/fixtures/egress-package");
    const tenant = (id) => `[[tenant]]
id = "${id}"
package = "${fixture}"
sandbox = "wasi"
egress = ["https://api.test", "https://other.test"]
egress_resolve = ["api.test:443=127.0.0.1:${api.port}", "other.test:443=127.0.0.1:${api.port}"]
secrets.TOKEN = { value = "${SECRET}", hosts = ["api.test"] }
`;
    writeFileSync(path.join(work, "tenants.toml"), tenant("a") + tenant("b"));
    catwalk = await startCatwalk([
      "--config", path.join(work, "tenants.toml"), "--egress-ca", api.ca, "--egress-timeout", "2s",
      "--egress-max-response", "256KiB", "--egress-max-in-flight", "8", "--state-dir", path.join(work, "state"),
      "--admin-token-sha256", createHash("sha256").update(ADMIN).digest("hex"),
    ]);
    a = await connect(`${catwalk.base}/t/a/mcp`);
    placeholder = (await call(a, "env", { name: "TOKEN" })).ok;
  });
  after(async () => {
    await a?.close();
    await catwalk?.stop();
    api?.stop();
  });

  test("its env holds a placeholder, never the secret", () => {
    assert.match(placeholder, /^tok_[A-Za-z0-9]{24,}$/);
    assert.ok(!placeholder.includes(SECRET.slice(4)));
  });

  for (const tool of ["fetch_url", "https_get", "axios_get", "node_fetch", "undici_fetch"]) {
    test(`${tool} reaches a granted name; the real token arrives, and comes back masked`, async () => {
      const answer = await call(a, tool, { url: "https://api.test/__catwalk/echo", headers: { authorization: `Bearer ${placeholder}` } });
      assert.ok(answer.ok, `${tool}: ${answer.error}`);
      assert.equal(answer.ok.status, 200);
      const echoed = JSON.parse(answer.ok.body);
      const sent = echoed.headers.find(([name]) => name === "authorization")[1];
      assert.equal(sent, `Bearer ${"*".repeat(SECRET.length)}`, "the secret is masked on the way back");
      const last = (await api.requests()).at(-1);
      assert.equal(last.host, "api.test");
      assert.ok(last.headers.some(([name, value]) => name === "authorization" && value === `Bearer ${SECRET}`), JSON.stringify(last));
    });
  }

  test("a redirect to a host not granted, or to the metadata address, is refused at its hop", async () => {
    for (const to of ["http://169.254.169.254/latest/meta-data/", "https://evil.test/", "http://127.0.0.1:1/"]) {
      const url = `https://api.test/__catwalk/redirect?to=${encodeURIComponent(to)}`;
      for (const tool of ["fetch_url", "axios_get"]) {
        const answer = await call(a, tool, { url });
        assert.match(answer.error ?? "", /not granted/, `${tool} ${to}: ${JSON.stringify(answer)}`);
      }
    }
    // A hop to a granted host is taken, and the credential stays behind with the origin that was given it.
    const hop = await call(a, "fetch_url", { url: `https://api.test/__catwalk/redirect?to=${encodeURIComponent("https://other.test/__catwalk/echo")}`, headers: { authorization: `Bearer ${placeholder}` } });
    assert.equal(hop.ok?.redirected, true, JSON.stringify(hop));
    assert.equal(JSON.parse(hop.ok.body).host, "other.test");
    assert.ok(!JSON.parse(hop.ok.body).headers.some(([name]) => name === "authorization"));
  });

  test("a Host header or an absolute-form target cannot steer a request elsewhere", async () => {
    const steered = await call(a, "https_get", { url: "https://api.test/__catwalk/echo", headers: { host: "evil.test" } });
    assert.equal(JSON.parse(steered.ok.body).host, "api.test");
    const absolute = await call(a, "https_raw", { host: "api.test", path: "https://evil.test/__catwalk/echo" });
    assert.match(absolute.error ?? "", /evil\.test.*not granted/, JSON.stringify(absolute));
  });

  test("a placeholder bound elsewhere, or in a query or a body, refuses the request: the real value never arrives", async () => {
    const before = (await api.requests()).length;
    const attempts = [
      ["fetch_url", { url: "https://other.test/__catwalk/echo", headers: { authorization: `Bearer ${placeholder}` } }],
      ["https_get", { url: "https://other.test/__catwalk/echo", headers: { "x-api-key": placeholder } }],
      ["fetch_url", { url: `https://api.test/__catwalk/echo?key=${placeholder}` }],
      ["fetch_url", { url: "https://api.test/__catwalk/echo", method: "POST", body: JSON.stringify({ token: placeholder }) }],
      ["node_fetch", { url: "https://api.test/__catwalk/echo", method: "POST", body: `token=${placeholder}` }],
    ];
    for (const [tool, args] of attempts) {
      const answer = await call(a, tool, args);
      assert.match(answer.error ?? "", /placeholder/, `${tool} ${JSON.stringify(args)}: ${JSON.stringify(answer)}`);
    }
    const after = await api.requests();
    assert.equal(after.length, before, "a refused request arrived");
    for (const request of after) {
      if (request.host !== "api.test") assert.ok(!JSON.stringify(request).includes(SECRET), `the secret went to ${request.host}`);
    }
  });

  test("a response over the cap, and an upstream that never answers, fail with clear errors", async () => {
    const big = await call(a, "fetch_url", { url: "https://api.test/__catwalk/big?bytes=300000" });
    assert.match(big.error ?? "", /larger than 262144 bytes/);
    const hang = await call(a, "https_get", { url: "https://api.test/__catwalk/hang" });
    assert.match(hang.error ?? "", /no response within 2s/);
  });

  test("500 requests at once from one server are capped, and another tenant's calls go on", async () => {
    const flood = call(a, "flood", { url: "https://api.test/__catwalk/slow?ms=300", count: 500 });
    const b = await connect(`${catwalk.base}/t/b/mcp`);
    const other = await call(b, "fetch_url", { url: "https://api.test/__catwalk/echo" });
    assert.equal(other.ok?.status, 200, JSON.stringify(other));
    await b.close();
    const result = (await flood).ok;
    assert.equal(result.ok + result.refused, 500);
    assert.ok(result.refused > 0 && /requests in flight/.test(result.reason), JSON.stringify(result));
    assert.ok(result.ok >= 8, JSON.stringify(result));
    assert.ok((await api.mostAtOnce()) <= 16, "two tenants' caps of 8 bound what the upstream saw at once");
  });

  test("raw sockets fail naming what the sandbox offers; dns.lookup answers under the grants", async () => {
    const socket = await call(a, "net_connect", { host: "db.internal", port: 5432 });
    assert.match(socket.error ?? "", /net\.connect to db\.internal:5432 is not available.*egress/);
    assert.deepEqual((await call(a, "lookup", { name: "api.test" })).ok, [{ address: "127.0.0.1", family: 4 }]);
    assert.match((await call(a, "lookup", { name: "evil.test" })).error ?? "", /ENOTFOUND.*not granted/);
  });

  test("denials are counted and logged with tenant, host and reason, and nothing secret", async () => {
    const metrics = await (await fetch(`${catwalk.base}/metrics`, { headers: { authorization: `Bearer ${ADMIN}` } })).text();
    const count = (reason) => Number(metrics.match(new RegExp(`catwalk_egress_denials_total\\{tenant="a",reason="${reason}"\\} (\\d+)`))?.[1] ?? 0);
    assert.ok(count("placeholder") >= 5 && count("not_granted") >= 6 && count("too_many") > 0, metrics);
    assert.match(metrics, /catwalk_egress_requests_total\{tenant="a",host="https:\/\/api.test",status="200"\} \d+/);
    assert.match(metrics, /catwalk_egress_bytes_total\{tenant="a",host="https:\/\/api.test",direction="in"\} \d+/);
    const refusals = catwalk.logs.filter((line) => line.includes("egress refused"));
    assert.ok(refusals.some((line) => /"tenant":"a"/.test(line) && /"reason":"placeholder"/.test(line) && /"host":"other.test/.test(line)), refusals.join("\n"));
    for (const line of catwalk.logs) {
      assert.ok(!line.includes(SECRET), `the secret is in the log: ${line}`);
      assert.ok(!line.includes(`key=${placeholder}`), `a refused URL's query is in the log: ${line}`);
    }
    assert.ok(!metrics.includes(SECRET));
  });
});
