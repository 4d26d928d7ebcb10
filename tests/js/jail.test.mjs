// npx tenants in their jails: a network namespace per tenant whose only way out is catwalk's egress proxy, and
// a cgroup per tenant for memory, CPU and processes (issue: npm servers confined as tightly as the sandbox).
//
// The attacks run against a catwalk inside a network namespace this test makes (`cwjail<pid>`), reached over a
// veth pair. The targets are there too: 169.254.169.254 and a private address (10.1.2.3) on its loopback, and a
// loopback listener, each recording every connection. A broken jail then reaches a host of ours, and the test
// sees it; nothing leaves the machine. The fake API (own CA) is reached by name through --egress-resolve.
// A second catwalk, in the machine's namespace, serves an npm package installed through the registry-only
// proxy of its install, calling its API four ways through the proxy.
//
//   cargo build -p catwalk -p catwalk-tests --bins && node --test tests/js/jail.test.mjs     (as root)
import { test, describe, before, after } from "node:test";
import assert from "node:assert/strict";
import { execFileSync, spawn } from "node:child_process";
import { mkdtempSync, writeFileSync, readFileSync, readdirSync, existsSync, chmodSync, rmSync, copyFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import readline from "node:readline";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import { startCatwalk, repo } from "./catwalk.mjs";
import { fakeApi } from "./fake-api.mjs";

const root = process.getuid?.() === 0;
const NS = `cwjail${process.pid}`;
const subnet = `10.213.${process.pid % 250}`;
const bins = path.dirname(process.env.CATWALK_BIN ?? path.join(repo, "target/debug/catwalk"));
const server = path.join(repo, "tests/fixtures/jail-server.mjs");
const sh = (...argv) => execFileSync(argv[0], argv.slice(1), { stdio: ["ignore", "pipe", "pipe"] }).toString();

/** Waits (up to 10 s) for catwalk to have logged a line that `match` accepts: its log is written apart. */
async function logged(catwalk, match) {
  for (const deadline = Date.now() + 10_000; Date.now() < deadline; await new Promise((r) => setTimeout(r, 25))) {
    if (catwalk.logs.some(match)) return true;
  }
  return false;
}

async function connect(url) {
  const client = new Client({ name: "catwalk-jail-test", version: "0" });
  await client.connect(new StreamableHTTPClientTransport(new URL(url)));
  return client;
}

/** A tool's JSON answer, or `{ failed: message }` when the call itself failed. */
async function call(client, name, args = {}) {
  try {
    const result = await client.callTool({ name, arguments: args }, undefined, { timeout: 60_000 });
    const text = result.content[0].text;
    return text.startsWith("{") ? JSON.parse(text) : { text, isError: result.isError };
  } catch (e) {
    return { failed: e.message };
  }
}

/** The test's namespace's network, with its own /etc/hosts (not `ip netns exec`, which hides the cgroup
 * filesystem behind a sysfs of the namespace's own). */
const within = () => ["nsenter", `--net=/run/netns/${NS}`, "unshare", "--mount", "--propagation", "private", "sh", "-c",
  `mount --bind ${path.join(tmpdir(), NS + ".hosts")} /etc/hosts && exec "$0" "$@"`];

/** Runs `argv` inside the test's namespace; its stdout lines go to `lines`. */
function inside(argv, lines = []) {
  const wrap = within();
  const child = spawn(wrap[0], [...wrap.slice(1), ...argv], { stdio: ["ignore", "pipe", "inherit"] });
  readline.createInterface({ input: child.stdout }).on("line", (line) => lines.push(line));
  return { child, lines };
}

describe("an npx tenant's jail", { skip: !root && "needs root, to make network namespaces" }, () => {
  const work = mkdtempSync(path.join(tmpdir(), "catwalk-jail-"));
  chmodSync(work, 0o755);
  const hits = [];
  let targets, api, apiChild, catwalk, a, b;
  const loopbackPort = 9911;

  before(async () => {
    sh("ip", "netns", "add", NS);
    sh("ip", "link", "add", `${NS}h`, "type", "veth", "peer", "name", `${NS}n`);
    sh("ip", "link", "set", `${NS}n`, "netns", NS);
    sh("ip", "addr", "add", `${subnet}.1/30`, "dev", `${NS}h`);
    sh("ip", "link", "set", `${NS}h`, "up");
    for (const step of [
      ["link", "set", "lo", "up"],
      ["addr", "add", `${subnet}.2/30`, "dev", `${NS}n`],
      ["link", "set", `${NS}n`, "up"],
      ["addr", "add", "169.254.169.254/32", "dev", "lo"],
      ["addr", "add", "10.1.2.3/32", "dev", "lo"],
    ]) sh("ip", "-n", NS, ...step);
    // /etc/hosts inside: the names a rebinding attack would use.
    writeFileSync(path.join(tmpdir(), NS + ".hosts"), "127.0.0.1 localhost\n10.1.2.3 rebind.test\n169.254.169.254 metadata.test\n");

    // The targets: each records a connection as a line.
    const listen = `const net = require("node:net");
      for (const [host, port] of [["169.254.169.254", 80], ["10.1.2.3", 443], ["127.0.0.1", ${loopbackPort}]])
        net.createServer((s) => { console.log("hit " + host + ":" + port); s.end("secret\\n"); })
          .listen(port, host, () => console.log("listening " + host + ":" + port));`;
    targets = inside([process.execPath, "-e", listen], hits);
    while (hits.filter((l) => l.startsWith("listening")).length < 3) await new Promise((r) => setTimeout(r, 20));

    const apiLines = [];
    apiChild = inside([path.join(bins, "fake-api"), "--names", "api.test", "--ca-out", path.join(work, "ca.pem"), "--port", "0"], apiLines);
    while (!apiLines.length) await new Promise((r) => setTimeout(r, 20));
    api = JSON.parse(apiLines[0]);

    const tenant = (id, extra = "") => `[[tenant]]
id = "${id}"
command = ["node", "${server}"]
dirs = ["${path.join(repo, "tests")}:ro", "${work}:ro"]
env = { NODE_EXTRA_CA_CERTS = "${path.join(work, "ca.pem")}" }
${extra}
`;
    writeFileSync(path.join(work, "tenants.toml"),
      tenant("a", `egress = ["https://api.test", "http://api.test:${api.plain}", "https://rebind.test", "http://metadata.test"]
egress_resolve = ["api.test:443=127.0.0.1:${api.port}", "api.test:${api.plain}=127.0.0.1:${api.plain}"]
isolation = "strict"
[tenant.limits]
memory = "160MiB"
nproc = 64
`) + tenant("b"));
    chmodSync(path.join(work, "tenants.toml"), 0o600);
    catwalk = await startCatwalk(
      ["--config", path.join(work, "tenants.toml"), "--bind", `${subnet}.2`, "--state-dir", path.join(work, "state"),
        "--audit-log", path.join(work, "audit")],
      {}, { wrap: within() });
    a = await connect(`${catwalk.base}/t/a/mcp`);
    b = await connect(`${catwalk.base}/t/b/mcp`);
  });

  after(async () => {
    await a?.close().catch(() => {});
    await b?.close().catch(() => {});
    await catwalk?.stop();
    targets?.child.kill();
    apiChild?.child.kill();
    try { sh("ip", "netns", "del", NS); } catch {}
    rmSync(path.join(tmpdir(), NS + ".hosts"), { force: true });
  });

  test("/readyz says what isolates tenants here", async () => {
    const ready = await (await fetch(`${catwalk.base}/readyz`)).json();
    assert.equal(ready.children.network, "namespace per tenant");
    assert.match(ready.children.resources, /^cgroup v[12] /);
    assert.equal(ready.tenants.a.ready, true, "a strict tenant starts where its isolation is available");
    assert.ok(JSON.stringify(ready.tenants.a.grants).includes("https://api.test"), JSON.stringify(ready.tenants.a));
  });

  test("its server reaches neither catwalk, nor another tenant, nor the metadata address, nor loopback", async () => {
    const port = Number(new URL(catwalk.base).port);
    const theirs = await call(b, "listen");
    assert.ok(theirs.port > 0);
    assert.deepEqual(await call(b, "connect", { host: "127.0.0.1", port: theirs.port }), { connected: true },
      "the other tenant reaches its own listener");
    for (const [host, p] of [["127.0.0.1", theirs.port], ["127.0.0.1", port], [`${subnet}.2`, port],
      [`${subnet}.1`, 22], ["169.254.169.254", 80], ["10.1.2.3", 443], ["127.0.0.1", loopbackPort]]) {
      const answer = await call(a, "connect", { host, port: p });
      assert.equal(answer.connected, false, `${host}:${p}: ${JSON.stringify(answer)}`);
    }
    for (const url of ["http://169.254.169.254/latest/meta-data/", "http://metadata.test/latest/meta-data/"]) {
      const answer = await call(a, "fetch", { url });
      assert.ok(answer.error || answer.status === 403, `${url}: ${JSON.stringify(answer)}`);
    }
    assert.deepEqual(hits.filter((l) => l.startsWith("hit")), [], "no target was reached");
  });

  test("a granted name is reached by name, whatever the client, and through the proxy", async () => {
    const proxy = "http://127.0.0.1:3128";
    const echo = "https://api.test/__catwalk/echo";
    const plain = `http://api.test:${api.plain}/__catwalk/echo`;
    for (const [tool, args] of [["fetch", { url: echo }], ["https_get", { url: echo }], ["https_get", { url: echo, proxy }],
      ["fetch", { url: plain }], ["https_get", { url: plain }], ["https_get", { url: plain, proxy }]]) {
      const answer = await call(a, tool, args);
      assert.equal(answer.status, 200, `${tool} ${JSON.stringify(args)}: ${JSON.stringify(answer)}`);
      assert.equal(JSON.parse(answer.body).host, "api.test");
    }
    assert.deepEqual(await call(a, "lookup", { name: "api.test" }), { addresses: ["127.0.0.1"] });
  });

  test("an ungranted name gets a clear error, and catwalk says why", async () => {
    assert.deepEqual(await call(a, "lookup", { name: "evil.test" }), { error: "ENOTFOUND" });
    assert.equal((await call(a, "https_get", { url: "https://evil.test/" })).error, "ENOTFOUND");
    assert.match((await call(a, "fetch", { url: "https://evil.test/" })).error, /ENOTFOUND/);
    const tunnel = await call(a, "https_get", { url: "https://evil.test/", proxy: "http://127.0.0.1:3128" });
    assert.ok(tunnel.error, JSON.stringify(tunnel));
    const plain = await call(a, "https_get", { url: "http://evil.test:8080/", proxy: "http://127.0.0.1:3128" });
    assert.equal(plain.status, 403, JSON.stringify(plain));
    assert.match(plain.body, /catwalk refused the connection: http:\/\/evil\.test:8080 is not granted/);
    assert.ok(await logged(catwalk, (l) => l.includes("egress refused at the proxy") && l.includes("https://evil.test:443 is not granted")));
    // And the audit trail has the refusal (written by a thread of its own: read until it is there).
    const audit = path.join(work, "audit");
    const refusals = () => readdirSync(audit).flatMap((f) => readFileSync(path.join(audit, f), "utf8").split("\n"))
      .filter(Boolean).map((l) => JSON.parse(l))
      .filter((r) => r.tenant === "a" && r.method === "egress" && r.name === "evil.test" && r.reason === "egress_not_granted");
    for (const deadline = Date.now() + 10_000; !refusals().length && Date.now() < deadline;) await new Promise((r) => setTimeout(r, 25));
    assert.ok(refusals().length > 0, "the refusal is in the audit trail");
  });

  test("a TLS server name other than the granted host is refused, by name and through the proxy", async () => {
    const fronted = await call(a, "https_get", { url: "https://api.test/__catwalk/echo", servername: "evil.test" });
    assert.ok(fronted.error, JSON.stringify(fronted));
    const tunnelled = await call(a, "https_get", { url: "https://api.test/__catwalk/echo", servername: "evil.test", proxy: "http://127.0.0.1:3128" });
    assert.ok(tunnelled.error, JSON.stringify(tunnelled));
    assert.ok(await logged(catwalk, (l) => l.includes("the tunnel to api.test asked TLS for evil.test")));
    assert.ok(await logged(catwalk, (l) => l.includes("https://evil.test:443 is not granted")));
  });

  test("a granted name that resolves to a private address is refused (DNS rebinding)", async () => {
    const answer = await call(a, "fetch", { url: "https://rebind.test/" });
    assert.ok(answer.error, JSON.stringify(answer));
    assert.ok(await logged(catwalk, (l) => l.includes("rebind.test resolves to 10.1.2.3")), JSON.stringify(answer) + catwalk.logs.slice(-5).join("\n"));
    assert.deepEqual(hits.filter((l) => l.startsWith("hit")), []);
  });

  test("a fork bomb stops at the tenant's process cap; the other tenant keeps answering", async () => {
    const bomb = await call(a, "spawn", { count: 200 });
    assert.ok(bomb.started < 64 && bomb.failed > 0, JSON.stringify(bomb));
    assert.equal(bomb.error, "EAGAIN");
    assert.deepEqual(await call(b, "echo", { still: "here" }), { still: "here" });
  });

  test("past its memory cap a tenant's server is killed alone, and its session ends with the reason", async () => {
    const doomed = await connect(`${catwalk.base}/t/a/mcp`);
    const answer = await call(doomed, "allocate", { mib: 600 });
    assert.match(answer.failed ?? "", /memory cap \(limits\.memory, 160 MiB\)/, JSON.stringify(answer));
    assert.deepEqual(await call(b, "echo", { n: 1 }), { n: 1 }, "the other tenant answers");
    assert.match((await call(doomed, "echo")).failed ?? "", /session not found/);
    const fresh = await connect(`${catwalk.base}/t/a/mcp`);
    assert.deepEqual(await call(fresh, "echo", { n: 2 }), { n: 2 }, "a new session of the same tenant starts");
    await fresh.close();
  });
});

describe("an npm package in its jail", { skip: !root && "needs root, to make network namespaces" }, () => {
  const work = mkdtempSync(path.join(tmpdir(), "catwalk-jail-npm-"));
  chmodSync(work, 0o755);
  let api, catwalk, client;

  before(async () => {
    api = await fakeApi(["api.test"], work);
    // The fake API's CA beside the machine's (its npm install needs those: the registry may be behind a proxy
    // of the machine's).
    const machine = process.env.NODE_EXTRA_CA_CERTS || "/etc/ssl/certs/ca-certificates.crt";
    writeFileSync(path.join(work, "cas.pem"), (existsSync(machine) ? readFileSync(machine, "utf8") : "") + readFileSync(api.ca, "utf8"));
    writeFileSync(path.join(work, "tenants.toml"), `[[tenant]]
id = "pkg"
package = "${path.join(repo, "tests/fixtures/egress-package")}"
sandbox = "npx"
egress = ["https://api.test"]
egress_resolve = ["api.test:443=127.0.0.1:${api.port}"]
env = { NODE_EXTRA_CA_CERTS = "${path.join(work, "cas.pem")}" }
dirs = ["${work}:ro", "${path.join(repo, "tests")}:ro"]
`);
    chmodSync(path.join(work, "tenants.toml"), 0o600);
    catwalk = await startCatwalk(["--config", path.join(work, "tenants.toml"), "--state-dir", path.join(work, "state")]);
    client = await connect(`${catwalk.base}/t/pkg/mcp`);
  });

  after(async () => {
    await client?.close();
    await catwalk?.stop();
    api?.stop();
  });

  test("installed through its registry-only proxy, it calls its API four ways through the tenant's", async () => {
    assert.ok(catwalk.logs.some((l) => l.includes("package installed")), "the install went through the proxy");
    for (const tool of ["fetch_url", "https_get", "axios_get", "node_fetch"]) {
      const result = await client.callTool({ name: tool, arguments: { url: "https://api.test/__catwalk/echo" } }, undefined, { timeout: 60_000 });
      const text = result.content[0].text;
      assert.ok(!result.isError, `${tool}: ${text}`);
      assert.equal(JSON.parse(text).status, 200, `${tool}: ${text}`);
    }
    const other = await client.callTool({ name: "fetch_url", arguments: { url: "https://registry.npmjs.org/" } });
    assert.ok(other.isError || JSON.parse(other.content[0].text).status === 403, "the registry is the install's, not the server's");
  });

  test("a secret bound to hosts is refused on the npx path, with the reason", () => {
    const file = path.join(work, "secret.toml");
    writeFileSync(file, `[[tenant]]
id = "s"
package = "@modelcontextprotocol/server-everything"
sandbox = "npx"
secrets.TOKEN = { value = "tok_live_canary_value", hosts = ["api.test"] }
`);
    chmodSync(file, 0o600);
    let stderr = "";
    try {
      execFileSync(process.env.CATWALK_BIN ?? path.join(repo, "target/debug/catwalk"),
        ["serve", "--port", "0", "--config", file, "--state-dir", path.join(work, "state2")], { stdio: ["ignore", "ignore", "pipe"], timeout: 60_000 });
    } catch (e) {
      stderr = String(e.stderr);
    }
    assert.match(stderr, /secrets.*kept from the server only in the sandbox/);
    assert.ok(!stderr.includes("tok_live_canary_value"));
  });
});

describe("a machine that cannot jail (catwalk as a user without privileges)", { skip: !root && "needs root, to become another user" }, () => {
  const work = mkdtempSync(path.join(tmpdir(), "catwalk-nojail-"));
  chmodSync(work, 0o755);
  // The user must be able to run catwalk: a copy of it, outside root's home.
  const bin = path.join(work, "catwalk");
  let catwalk, client;

  const tenant = (id, extra = "") => `[[tenant]]
id = "${id}"
command = ["node", "${server}"]
dirs = ["${path.join(repo, "tests")}:ro"]
${extra}
`;
  const serve = (file, state) => ["-u", "nobody", "--", bin, "serve", "--port", "0", "--log-format", "json", "--config", file, "--state-dir", state];

  before(async () => {
    copyFileSync(process.env.CATWALK_BIN ?? path.join(repo, "target/debug/catwalk"), bin);
    chmodSync(bin, 0o755);
    const file = path.join(work, "tenants.toml");
    writeFileSync(file, tenant("small", `[tenant.limits]\nmemory = "64MiB"`));
    chmodSync(file, 0o600);
    execFileSync("chown", ["-R", "nobody", work]);
    catwalk = await startCatwalk(["--config", file, "--state-dir", path.join(work, "state")], { HOME: work },
      { wrap: ["runuser", "-u", "nobody", "--"], binary: bin });
    client = await connect(`${catwalk.base}/t/small/mcp`);
  });

  after(async () => {
    await client?.close().catch(() => {});
    await catwalk?.stop();
    // The copy of catwalk is hundreds of MB in a debug build.
    rmSync(work, { recursive: true, force: true });
  });

  test("/readyz and the start-up log say what is missing", async () => {
    const ready = await (await fetch(`${catwalk.base}/readyz`)).json();
    assert.match(ready.children.network, /^none: cannot make a network namespace/);
    assert.match(ready.children.resources, /^none: /);
    assert.ok(catwalk.logs.some((l) => l.includes("tenants' children share the machine's network")));
    assert.ok(catwalk.logs.some((l) => l.includes("not bounded in memory and CPU by cgroups")));
  });

  test("node gets V8's heap cap from limits.memory, and its session ends with the reason", async () => {
    const answer = await call(client, "allocate", { mib: 600 });
    assert.match(answer.failed ?? "", /ran out of JavaScript heap under its tenant's memory cap \(64 MiB, V8's heap cap/, JSON.stringify(answer));
  });

  test("a strict tenant, or one with egress grants, is refused at start with the reason", () => {
    for (const [extra, reason] of [
      [`isolation = "strict"`, /isolation = \\?"strict\\?": this machine cannot isolate the tenant's processes: no network namespaces/],
      [`egress = ["https://api.test"]`, /egress: the tenant's processes cannot have a network namespace here/],
    ]) {
      const file = path.join(work, "refused.toml");
      writeFileSync(file, tenant("refused", extra));
      chmodSync(file, 0o600);
      execFileSync("chown", ["nobody", file]);
      let stderr = "";
      try {
        execFileSync("runuser", serve(file, path.join(work, "state2")), { stdio: ["ignore", "ignore", "pipe"], timeout: 60_000, env: { PATH: process.env.PATH, HOME: work } });
      } catch (e) {
        stderr = String(e.stderr);
      }
      assert.match(stderr, reason);
    }
  });
});
