// What catwalk runs is what was meant: npm packages verified against their registry before anything of them
// runs, and pinned at first use. The registry is a stand-in the test starts (`registry.mjs`), which signs what
// it publishes with a key of its own and can publish what the real one never would. The provenance is real:
// sigstore@0.4.0's tarball (from the machine's registry) and the attestation registry.npmjs.org publishes for it,
// verified against Sigstore's public-good trust root.
//
//   cargo build -p catwalk && node --test tests/js/supply.test.mjs
import { test, describe, before, after } from "node:test";
import assert from "node:assert/strict";
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { createHash } from "node:crypto";
import { execFileSync, spawn } from "node:child_process";
import { once } from "node:events";
import path from "node:path";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import { startCatwalk, repo } from "./catwalk.mjs";
import { startRegistry, versionServer, integrityOf } from "./registry.mjs";

const ADMIN = "catwalk-supply-test-admin-token";
const SIGSTORE_TGZ = "https://registry.npmjs.org/sigstore/-/sigstore-0.4.0.tgz";
const SIGSTORE_INTEGRITY =
  "sha512-KCwMX6k20mQyFkNYG2XT3lwK9u1P36wS9YURFd85zCXPrwrSLZCEh7/vMBFNYcJXRiBtGDS+T4/RZZF493zABA==";
const attestations = readFileSync(path.join(repo, "host/tests/data/sigstore-0.4.0.attestations.json"), "utf8");

/** Waits until every tenant named has finished installing (or was refused), and returns /readyz's tenants. */
async function settled(base, ids) {
  let pending = ids;
  for (let i = 0; i < 1800; i++) {
    const ready = await (await fetch(`${base}/readyz`)).json();
    pending = ids.filter((id) => /not installed yet/.test(ready.tenants?.[id]?.detail ?? "not installed yet"));
    if (!pending.length) return ready.tenants;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`tenants ${pending} never finished installing`);
}

async function serverVersion(url) {
  const client = new Client({ name: "catwalk-supply-test", version: "0" });
  await client.connect(new StreamableHTTPClientTransport(new URL(url)));
  const version = client.getServerVersion().version;
  await client.close();
  return version;
}

/** A tenants file: one `[[tenant]]` per entry, each with the registry in its env. */
function tenantsFile(dir, registry, tenants) {
  const file = path.join(dir, "tenants.toml");
  writeFileSync(file, tenants.map(({ id, pkg, extra = "" }) =>
    `[[tenant]]\nid = "${id}"\npackage = "${pkg}"\nsandbox = "npx"\n${extra}\nenv = { npm_config_registry = "${registry.url}", npm_config_fetch_retries = "0" }\n`).join("\n"));
  return file;
}

describe("packages are verified before they run", () => {
  let registry;
  let catwalk;
  let tenants;
  const work = mkdtempSync(path.join(tmpdir(), "catwalk-supply-"));
  chmodSync(work, 0o755); // tenants' uids pass through to the state dir below

  before(async () => {
    registry = await startRegistry();
    const signed = versionServer("signed-server", "1.0.0");
    registry.publish(signed.manifest, signed.tarball);
    const badSig = versionServer("bad-signature-server", "1.0.0");
    registry.publish(badSig.manifest, badSig.tarball, { signature: "bad" });
    const unsigned = versionServer("unsigned-server", "1.0.0");
    registry.publish(unsigned.manifest, unsigned.tarball, { signature: "none" });
    // Signed over the integrity of one tarball, and serving another's bytes.
    const tampered = versionServer("tampered-server", "1.0.0");
    const other = versionServer("tampered-server", "1.0.1");
    registry.publish(tampered.manifest, tampered.tarball, { serve: other.tarball });
    // Someone else's attestation, served as this package's.
    const borrowed = versionServer("borrowed-provenance-server", "1.0.0");
    registry.publish(borrowed.manifest, borrowed.tarball, { attestations });
    // sigstore@0.4.0 as published, with its real provenance (its dependencies left out: only the package itself
    // is installed, and its bin is not an MCP server; what matters here is what /readyz says of it).
    const tgz = Buffer.from(await (await fetch(SIGSTORE_TGZ)).arrayBuffer());
    assert.equal(integrityOf(tgz), SIGSTORE_INTEGRITY, "the machine's registry serves sigstore-0.4.0.tgz as published");
    registry.publish({ name: "sigstore", version: "0.4.0", bin: { sigstore: "bin/sigstore.js" } }, tgz, { attestations });

    const file = tenantsFile(work, registry, [
      { id: "signed", pkg: "signed-server" },
      { id: "wants-provenance", pkg: "signed-server", extra: 'verify = "provenance"' },
      { id: "bad-signature", pkg: "bad-signature-server" },
      { id: "unsigned", pkg: "unsigned-server" },
      { id: "tampered", pkg: "tampered-server" },
      { id: "borrowed", pkg: "borrowed-provenance-server" },
      { id: "provenance", pkg: "sigstore@0.4.0", extra: 'verify = "provenance"\nfrom = ["github.com/sigstore/*"]' },
      { id: "other-repo", pkg: "sigstore@0.4.0", extra: 'from = ["github.com/modelcontextprotocol/*"]' },
      { id: "off", pkg: "unsigned-server", extra: 'verify = "off"' },
    ]);
    catwalk = await startCatwalk(["--config", file, "--admin-token-sha256", createHash("sha256").update(ADMIN).digest("hex")], { CATWALK_STATE_DIR: path.join(work, "state"), CATWALK_VERIFY: "signatures" });
    tenants = await settled(catwalk.base, ["signed", "wants-provenance", "bad-signature", "unsigned", "tampered",
      "borrowed", "provenance", "other-repo", "off"]);
  });

  after(async () => {
    await catwalk?.stop();
    await registry?.close();
    rmSync(work, { recursive: true, force: true });
  });

  test("a package signed by its registry is served, and /readyz says what it proved", async () => {
    assert.equal(tenants.signed.ready, true, tenants.signed.detail);
    assert.equal(tenants.signed.package.version, "1.0.0");
    assert.equal(tenants.signed.package.verify, "signatures");
    assert.equal(tenants.signed.package.signed, 1);
    assert.equal(tenants.signed.package.provenance, undefined);
    assert.equal(await serverVersion(`${catwalk.base}/t/signed/mcp`), "1.0.0");
  });

  test("without provenance, a package is refused under verify = \"provenance\", and its sessions too", async () => {
    assert.equal(tenants["wants-provenance"].ready, false);
    assert.match(tenants["wants-provenance"].detail,
      /signed-server@1\.0\.0 has no provenance attestation, and the policy requires one/);
    await assert.rejects(serverVersion(`${catwalk.base}/t/wants-provenance/mcp`));
  });

  test("a bad signature, no signature, or bytes that are not the signed ones are refused", () => {
    assert.match(tenants["bad-signature"].detail, /bad-signature-server@1\.0\.0's registry signature is not valid/);
    assert.match(tenants.unsigned.detail, /unsigned-server@1\.0\.0 carries no registry signature/);
    assert.match(tenants.tampered.detail, /tampered-server@1\.0\.0 from its lockfile: .*(EINTEGRITY|integrity)/);
    for (const id of ["bad-signature", "unsigned", "tampered"]) assert.equal(tenants[id].ready, false, id);
  });

  test("a real provenance attestation verifies, and /readyz names the source repository", () => {
    assert.equal(tenants.provenance.ready, true, tenants.provenance.detail);
    const { provenance, verify } = tenants.provenance.package;
    assert.equal(verify, "provenance");
    assert.equal(provenance.repository, "https://github.com/sigstore/sigstore-js");
    assert.match(provenance.signer, /^https:\/\/github\.com\/sigstore\/sigstore-js\/\.github\/workflows\/publish\.yml@/);
    assert.match(tenants.provenance.detail, /provenance from https:\/\/github\.com\/sigstore\/sigstore-js/);
  });

  test("`from` refuses provenance from another repository", () => {
    assert.equal(tenants["other-repo"].ready, false);
    assert.match(tenants["other-repo"].detail,
      /sigstore@0\.4\.0 was built from https:\/\/github\.com\/sigstore\/sigstore-js, which is not in `from`/);
  });

  test("an attestation for another package is refused", () => {
    assert.equal(tenants.borrowed.ready, false);
    assert.match(tenants.borrowed.detail, /provenance attestation does not verify: the attestation is for pkg:npm\/sigstore@0\.4\.0/);
  });

  test("verify = \"off\" runs what is not signed, and says so", async () => {
    assert.equal(tenants.off.ready, true, tenants.off.detail);
    assert.equal(tenants.off.package.verify, "off");
    assert.equal(await serverVersion(`${catwalk.base}/t/off/mcp`), "1.0.0");
  });

  test("the admin API shows what a tenant's package proved", async () => {
    const res = await fetch(`${catwalk.base}/admin/tenants/provenance`, { headers: { authorization: `Bearer ${ADMIN}` } });
    assert.equal(res.status, 200);
    const shown = await res.json();
    assert.equal(shown.package.provenance.repository, "https://github.com/sigstore/sigstore-js");
    assert.equal(shown.package.version, "0.4.0");
  });
});

describe("a package is pinned at first use", () => {
  let registry;
  const work = mkdtempSync(path.join(tmpdir(), "catwalk-pin-"));
  chmodSync(work, 0o755);
  const state = path.join(work, "state");

  before(async () => {
    registry = await startRegistry();
    const first = versionServer("moving-server", "1.0.0");
    registry.publish(first.manifest, first.tarball);
  });

  after(async () => {
    await registry?.close();
    rmSync(work, { recursive: true, force: true });
  });

  async function serve(args = []) {
    const file = tenantsFile(work, registry, [{ id: "moving", pkg: "moving-server" }]);
    const catwalk = await startCatwalk(["--config", file, ...args], { CATWALK_STATE_DIR: state, CATWALK_VERIFY: "signatures" });
    try {
      const tenants = await settled(catwalk.base, ["moving"]);
      assert.equal(tenants.moving.ready, true, tenants.moving.detail);
      return { readyz: tenants.moving.package.version, server: await serverVersion(`${catwalk.base}/t/moving/mcp`) };
    } finally {
      await catwalk.stop();
    }
  }

  test("a newer version published is not served until --refresh", async () => {
    assert.deepEqual(await serve(), { readyz: "1.0.0", server: "1.0.0" });
    const next = versionServer("moving-server", "1.1.0");
    registry.publish(next.manifest, next.tarball);
    const asked = registry.requests.length;
    assert.deepEqual(await serve(), { readyz: "1.0.0", server: "1.0.0" }, "a restart keeps the pinned version");
    assert.deepEqual(registry.requests.slice(asked), [], "and installs nothing: the pinned tree is in place");
    assert.deepEqual(await serve(["--refresh"]), { readyz: "1.1.0", server: "1.1.0" });
    assert.deepEqual(await serve(), { readyz: "1.1.0", server: "1.1.0" }, "the refreshed version is the new pin");
  });
});

describe("catwalk pack verifies and pins as serving does", () => {
  let registry;
  const work = mkdtempSync(path.join(tmpdir(), "catwalk-pack-pin-"));
  const state = path.join(work, "state");
  const bin = process.env.CATWALK_BIN ?? path.join(repo, "target/debug/catwalk");

  before(async () => {
    // The pack tools (esbuild, the polyfills) come through it from the machine's registry.
    registry = await startRegistry({ upstream: execFileSync("npm", ["config", "get", "registry"], { encoding: "utf8" }).trim() });
    const first = versionServer("packed-moving-server", "1.0.0");
    registry.publish(first.manifest, first.tarball);
  });

  after(async () => {
    await registry?.close();
    rmSync(work, { recursive: true, force: true });
  });

  // Spawned, not spawnSync: the registry answers from this process's event loop.
  async function pack(args = []) {
    const child = spawn(bin, ["pack", "packed-moving-server", "--json", "--state-dir", state, ...args], {
      env: { ...process.env, CATWALK_VERIFY: "signatures", npm_config_registry: registry.url, npm_config_fetch_retries: "0" },
    });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d) => (stdout += d));
    child.stderr.on("data", (d) => (stderr += d));
    const [status] = await once(child, "exit");
    return { status, manifest: status === 0 ? JSON.parse(stdout) : null, stderr };
  }

  test("a package is packed as pinned until --refresh, and refused when it lacks the provenance asked for", async () => {
    const first = await pack();
    assert.equal(first.status, 0, first.stderr);
    assert.equal(first.manifest.version, "1.0.0");
    assert.equal(first.manifest.verified.signed, 1);
    const next = versionServer("packed-moving-server", "1.1.0");
    registry.publish(next.manifest, next.tarball);
    // Without its artifact (the spec's index entry gone), packing again installs the pinned version.
    rmSync(path.join(state, "packs/specs"), { recursive: true, force: true });
    assert.equal((await pack()).manifest.version, "1.0.0");
    assert.equal((await pack(["--refresh"])).manifest.version, "1.1.0");
    const refused = await pack(["--verify", "provenance"]);
    assert.notEqual(refused.status, 0);
    assert.match(refused.stderr, /packed-moving-server@1\.1\.0 has no provenance attestation, and the policy requires one/);
  });
});
