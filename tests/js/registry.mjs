// An npm registry stand-in on 127.0.0.1, for the supply-chain tests: it serves packuments, tarballs, its
// signing keys (`/-/npm/v1/keys`) and attestations (`/-/npm/v1/attestations/...`), as registry.npmjs.org does,
// and signs each version it publishes (ECDSA P-256 over `name@version:integrity`) with a key of its own. A test
// publishes versions as it goes, and can publish what the real registry never would: a bad signature, none,
// a tarball whose bytes are not the ones its integrity names, someone else's attestation.
import http from "node:http";
import { createHash, generateKeyPairSync, sign } from "node:crypto";
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";

export function integrityOf(bytes) {
  return `sha512-${createHash("sha512").update(bytes).digest("base64")}`;
}

/** A tarball of a package made from `files` (name → text) with `npm pack`. */
export function packTarball(manifest, files) {
  const dir = mkdtempSync(path.join(tmpdir(), "catwalk-registry-pkg-"));
  writeFileSync(path.join(dir, "package.json"), JSON.stringify(manifest, null, 2));
  for (const [name, text] of Object.entries(files)) writeFileSync(path.join(dir, name), text);
  const out = mkdtempSync(path.join(tmpdir(), "catwalk-registry-tgz-"));
  const [packed] = JSON.parse(execFileSync("npm", ["pack", "--json", "--pack-destination", out, dir], { encoding: "utf8" }));
  return readFileSync(path.join(out, packed.filename));
}

/** `upstream`: a registry to relay the packuments of packages it does not have from (their tarballs stay
 * there), as a private registry in front of the public one does. `resign`: it also signs every version it
 * relays, and serves the tarballs itself, as a registry mirror that signs (for a tree of real packages
 * verified as registry.npmjs.org's would be, where the machine's registry strips its signatures). */
export async function startRegistry({ upstream = null, resign = false } = {}) {
  const { publicKey, privateKey } = generateKeyPairSync("ec", { namedCurve: "P-256" });
  const spki = publicKey.export({ type: "spki", format: "der" });
  const keyid = `SHA256:${createHash("sha256").update(spki).digest("base64").replace(/=+$/, "")}`;
  const packages = new Map(); // name → { versions: Map(version → entry), latest }
  const tarballs = new Map(); // url path → bytes
  const attestations = new Map(); // "name@version" → JSON text
  const requests = [];
  const relayed = new Map(); // "accept url" → a relayed packument, signed
  let base;

  const server = http.createServer((req, res) => {
    const url = decodeURIComponent(req.url.split("?")[0]);
    requests.push(url);
    const send = (status, body, type = "application/json") => {
      res.writeHead(status, { "content-type": type });
      res.end(body);
    };
    if (url === "/-/npm/v1/keys") {
      return send(200, JSON.stringify({ keys: [{ expires: null, keyid, keytype: "ecdsa-sha2-nistp256",
        scheme: "ecdsa-sha2-nistp256", key: spki.toString("base64") }] }));
    }
    if (url.startsWith("/-/npm/v1/attestations/")) {
      const found = attestations.get(url.slice("/-/npm/v1/attestations/".length));
      return found ? send(200, found) : send(404, "{}");
    }
    if (tarballs.has(url)) return send(200, tarballs.get(url), "application/octet-stream");
    const pkg = packages.get(url.slice(1));
    if (!pkg && upstream) {
      const from = upstream.replace(/\/$/, "");
      const cacheKey = `${req.headers.accept} ${req.url}`;
      if (relayed.has(cacheKey)) return send(200, relayed.get(cacheKey));
      fetch(`${from}${req.url}`, { headers: { accept: req.headers.accept ?? "application/json" } })
        .then(async (up) => {
          const body = Buffer.from(await up.arrayBuffer());
          if (!resign || !up.ok || req.url.endsWith(".tgz")) return send(up.status, body, up.headers.get("content-type"));
          const doc = JSON.parse(body);
          for (const [version, manifest] of Object.entries(doc.versions ?? {})) {
            const dist = manifest.dist;
            if (!dist?.integrity) continue;
            dist.tarball = dist.tarball.replace(from, base.slice(0, -1));
            dist.signatures = [{ keyid, sig: sign("sha256", Buffer.from(`${doc.name}@${version}:${dist.integrity}`), privateKey).toString("base64") }];
          }
          // Signed once, as a registry signs at publication.
          relayed.set(cacheKey, JSON.stringify(doc));
          send(200, relayed.get(cacheKey));
        })
        .catch(() => send(502, "{}"));
      return;
    }
    if (!pkg) return send(404, JSON.stringify({ error: "Not found" }));
    const versions = Object.fromEntries([...pkg.versions].map(([v, e]) => [v, e.manifest]));
    const time = Object.fromEntries([...pkg.versions].map(([v, e]) => [v, e.time]));
    send(200, JSON.stringify({ name: url.slice(1), "dist-tags": { latest: pkg.latest }, versions, time }));
  });
  await new Promise((resolve) => server.listen(0, "127.0.0.1", resolve));
  base = `http://127.0.0.1:${server.address().port}/`;

  return {
    url: base,
    requests,
    /** Publishes `manifest.name@manifest.version` from `tarball` (bytes). `signature`: "good", "bad" (over
     * another version), or "none"; `serve`: other bytes to serve for the tarball than those published;
     * `attestations`: the JSON the registry serves for it (its provenance bundle). */
    publish(manifest, tarball, { signature = "good", serve = null, attestations: attested = null } = {}) {
      const { name, version } = manifest;
      const integrity = integrityOf(tarball);
      const file = `/${name}/-/${name.split("/").pop()}-${version}.tgz`;
      tarballs.set(file, serve ?? tarball);
      const signed = signature === "bad" ? `${name}@${version}.1:${integrity}` : `${name}@${version}:${integrity}`;
      const signatures = signature === "none" ? undefined
        : [{ keyid, sig: sign("sha256", Buffer.from(signed), privateKey).toString("base64") }];
      const dist = { integrity, tarball: `${base.slice(0, -1)}${file}`, signatures };
      if (attested) {
        attestations.set(`${name}@${version}`, attested);
        dist.attestations = { url: `${base}-/npm/v1/attestations/${name}@${version}`,
          provenance: { predicateType: "https://slsa.dev/provenance/v0.2" } };
      }
      const entry = packages.get(name) ?? { versions: new Map(), latest: version };
      entry.versions.set(version, { manifest: { ...manifest, dist }, time: new Date().toISOString() });
      entry.latest = version;
      packages.set(name, entry);
    },
    close: () => new Promise((resolve) => server.close(resolve)),
  };
}

/** A stdio MCP server package that says which version of it runs (its serverInfo, and a `version` tool). */
export function versionServer(name, version) {
  const manifest = { name, version, bin: { [name]: "server.js" } };
  const server = `#!/usr/bin/env node
const readline = require("node:readline");
const { name, version } = require("./package.json");
const send = (m) => process.stdout.write(JSON.stringify(m) + "\\n");
readline.createInterface({ input: process.stdin }).on("line", (line) => {
  const msg = JSON.parse(line);
  if (msg.id === undefined) return;
  if (msg.method === "initialize") {
    send({ jsonrpc: "2.0", id: msg.id, result: { protocolVersion: msg.params.protocolVersion,
      capabilities: { tools: {} }, serverInfo: { name, version } } });
  } else if (msg.method === "tools/list") {
    send({ jsonrpc: "2.0", id: msg.id, result: { tools: [{ name: "version", inputSchema: { type: "object" } }] } });
  } else if (msg.method === "tools/call") {
    send({ jsonrpc: "2.0", id: msg.id, result: { content: [{ type: "text", text: version }] } });
  } else {
    send({ jsonrpc: "2.0", id: msg.id, error: { code: -32601, message: "no such method" } });
  }
});
`;
  return { manifest, tarball: packTarball(manifest, { "server.js": server }) };
}
