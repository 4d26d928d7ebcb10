// A fleet of three catwalks behind a stand-in for Fly's proxy (`fly-proxy.mjs`), as one app's machines: the
// control plane (this test) places 100 tenants through the admin API, clients of the official TypeScript SDK
// call them through the proxy, and meanwhile machines are stopped and started again (as Fly's auto-stop does)
// and tenants move between machines. No client may see an error but the 404 of a session whose machine
// stopped, after which it starts a new session.
//
//   cargo build -p catwalk -p catwalk-tests --bins && node --test tests/js/fleet.test.mjs
import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, writeFileSync, chmodSync, existsSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { createHash } from "node:crypto";
import { EventEmitter, once } from "node:events";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import { startCatwalk, repo } from "./catwalk.mjs";
import { flyProxy } from "./fly-proxy.mjs";

const ADMIN = "catwalk-fleet-test-admin-token";
const KEY = "f1ee7f1ee7f1ee7f1ee7f1ee7f1ee7f1ee7f1ee7f1ee7f1ee7f1ee7f1ee7f1ee";
const MACHINES = ["m1", "m2", "m3"];
const TENANTS = 100;
const WORKERS = 8;
const target = path.resolve(path.dirname(process.env.CATWALK_BIN ?? path.join(repo, "target/debug/catwalk")), "..");
const guest = path.join(target, "wasm32-wasip1/release/catwalk-hostile-env.wasm");

test("a fleet on Fly's proxy serves every tenant while machines stop and tenants move", { timeout: 600_000 }, async () => {
  assert.ok(existsSync(guest), `${guest} is missing: build the WASI guests first (tests/run.sh)`);
  const work = mkdtempSync(path.join(tmpdir(), "catwalk-fleet-"));
  chmodSync(work, 0o755);
  writeFileSync(path.join(work, "tenants.toml"), "");
  const proxy = await flyProxy();
  const catwalks = new Map();
  const start = async (id) => {
    const catwalk = await startCatwalk([
      "--config", path.join(work, "tenants.toml"), "--state-dir", path.join(work, id), "--machine-id", id,
      "--admin-token-sha256", createHash("sha256").update(ADMIN).digest("hex"), "--move-deadline", "60s",
    ], { CATWALK_STATE_KEY: KEY });
    catwalks.set(id, catwalk);
    proxy.up(id, catwalk.base);
  };
  for (const id of MACHINES) await start(id);
  const admin = (id, method, route, body) =>
    fetch(`${catwalks.get(id).base}/admin/${route}`, {
      method, headers: { authorization: `Bearer ${ADMIN}`, "content-type": "application/json" },
      body: body && JSON.stringify(body),
    });

  // The control plane places each tenant on one machine and tells every machine where each lives.
  const def = (id) => ({ id, wasm: guest, env: { TENANT_ID: id } });
  const placement = {};
  for (let i = 0; i < TENANTS; i++) {
    const id = `t${i}`;
    placement[id] = MACHINES[i % MACHINES.length];
    const put = await admin(placement[id], "PUT", `tenants/${id}`, def(id));
    assert.equal(put.status, 201, await put.text());
  }
  const place = async () => {
    for (const id of MACHINES) {
      const put = await admin(id, "PUT", "placement", placement);
      assert.ok([200, 201].includes(put.status), await put.text());
    }
  };
  await place();

  // Clients: each takes a tenant, calls it a few times through the proxy, ends its session, and goes on.
  const failures = [];
  const counts = { calls: 0, sessions: 0, lostSessions: 0 };
  const progress = new EventEmitter();
  progress.setMaxListeners(0);
  let running = true;
  // The 404 of a session that is gone (its machine stopped): from a request in it, or from ending it.
  const isLostSession = (error) =>
    error?.code === 404 && (/session not found/.test(error.message) || /terminate session/.test(error.message));
  const worker = async (w) => {
    let n = w;
    while (running) {
      const tenant = `t${(n = (n * 7 + 13) % TENANTS)}`;
      const client = new Client({ name: "catwalk-fleet-test", version: "0" });
      const transport = new StreamableHTTPClientTransport(new URL(`${proxy.base}/t/${tenant}/mcp`));
      try {
        await client.connect(transport);
        counts.sessions++;
        for (let call = 0; call < 3 && running; call++) {
          const result = await client.callTool({ name: "env", arguments: { name: "TENANT_ID" } });
          assert.equal(result.content[0].text, `SET ${tenant}`);
          counts.calls++;
          progress.emit("call");
        }
        await transport.terminateSession();
      } catch (error) {
        if (isLostSession(error)) {
          // Its machine stopped: the session is gone, and the client starts a new one.
          counts.lostSessions++;
        } else {
          failures.push(`${tenant}: ${error?.stack ?? error}`);
          progress.emit("call");
        }
      } finally {
        await client.close().catch(() => {});
      }
    }
  };
  const workers = Array.from({ length: WORKERS }, (_, w) => worker(w + 1));

  // The chaos: a machine stops when idle (as Fly's auto-stop) and starts again; then tenants move.
  const callsSince = async (n) => {
    const from = counts.calls;
    while (counts.calls < from + n && failures.length === 0) await once(progress, "call");
  };
  const moved = [];
  for (let round = 0; round < 3; round++) {
    await callsSince(30);
    const stopping = MACHINES[round];
    proxy.down(stopping);
    await proxy.idle(stopping);
    await catwalks.get(stopping).stop();
    await start(stopping);
    await callsSince(30);
    // Five tenants move to the next machine: put there first, then the placement everywhere.
    for (let k = 0; k < 5; k++) {
      const id = `t${round * 30 + k * 3}`;
      const to = MACHINES[(MACHINES.indexOf(placement[id]) + 1) % MACHINES.length];
      const put = await admin(to, "PUT", `tenants/${id}`, def(id));
      assert.equal(put.status, 201, await put.text());
      moved.push({ id, from: placement[id], to });
      placement[id] = to;
    }
    await place();
    const placedAt = Date.now();
    for (const move of moved) move.placedAt ??= placedAt;
  }
  await callsSince(60);
  running = false;
  await Promise.all(workers);
  assert.deepEqual(failures, []);
  assert.ok(counts.calls >= 300, JSON.stringify(counts));

  // Each moved tenant's new sessions went to its new machine, and its old machine let it go once drained.
  for (const { id, from, to } of moved) {
    const held = await admin(to, "GET", `tenants/${id}`);
    assert.equal(held.status, 200, `${id} on ${to}`);
    // Draining: its last sessions there are ending (the deadline is 60 s).
    for (let tries = 0; ; tries++) {
      const left = await admin(from, "GET", `tenants/${id}`);
      if (left.status === 404) break;
      assert.ok(left.status === 200 && tries < 900, `${id} still on ${from}: ${left.status}`);
      await new Promise((r) => setTimeout(r, 100));
    }
  }
  // A new session of a moved tenant, begun after the placement, was served by its new machine.
  let checked = 0;
  for (const { id, to, placedAt } of moved) {
    const fresh = proxy.served.filter((s) => s.path === `/t/${id}/mcp` && !s.session && s.at > placedAt);
    for (const s of fresh) assert.equal(s.machine, to, `${id}: a new session after its move went to ${s.machine}`);
    checked += fresh.length;
  }
  assert.ok(checked > 0, "no moved tenant had a new session after its move");
  console.log(`fleet: ${JSON.stringify(counts)}, ${moved.length} tenants moved, 3 machines restarted`);
  for (const catwalk of catwalks.values()) await catwalk.stop();
  await proxy.close();
});
