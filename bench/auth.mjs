// What checking a client costs per request: the same WASI tenant served open, with a static bearer token, with
// an access token of catwalk's own authorization server (EdDSA JWT, grant checked), and with an external
// issuer's RS256 JWT (keys fetched once from the fake API as idp.test). Each round measures every kind in turn:
// `tools/call` one at a time (latency), then 16 at once (throughput); the report is the median of the rounds,
// and each kind's ratio to the open tenant.
//
//   cargo build --release -p catwalk && cargo build -p catwalk-tests --bins && node bench/auth.mjs [rounds=3] [seconds=3]
import { spawn } from "node:child_process";
import { mkdtempSync, writeFileSync, chmodSync, existsSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { createHash, generateKeyPairSync, randomBytes, sign } from "node:crypto";
import { fileURLToPath } from "node:url";
import { measure, serving, table } from "./measure.mjs";

const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const target = process.env.CARGO_TARGET_DIR ?? path.join(repo, "target");
const bin = process.env.CATWALK_BIN ?? path.join(target, "release/catwalk");
const fakeApiBin = [target, path.join(repo, "target")].map((t) => path.join(t, "debug/fake-api")).find(existsSync);
const guest = [target, path.join(repo, "target")].map((t) => path.join(t, "wasm32-wasip1/release/catwalk-conformance-guest.wasm")).find(existsSync);
const rounds = Number(process.argv[2] ?? 3);
const seconds = Number(process.argv[3] ?? 3);
const ADMIN = "auth-bench-admin";
const STATIC = "auth-bench-static-token";
const KEY = "a5".repeat(32);
const REDIRECT = "http://127.0.0.1:9/callback";
const work = mkdtempSync(path.join(tmpdir(), "catwalk-auth-bench-"));
chmodSync(work, 0o755);
writeFileSync(path.join(work, "tenants.toml"), "");

// The external issuer: its keys, served by the fake API.
const rsa = generateKeyPairSync("rsa", { modulusLength: 2048 });
writeFileSync(path.join(work, "routes.json"), JSON.stringify([
  { host: "idp.test", path: "/.well-known/oauth-authorization-server", status: 200, body: { issuer: "https://idp.test", jwks_uri: "https://idp.test/jwks" } },
  { host: "idp.test", path: "/jwks", status: 200, body: { keys: [{ ...rsa.publicKey.export({ format: "jwk" }), kid: "k1", alg: "RS256" }] } },
]));
const idp = spawn(fakeApiBin, ["--names", "idp.test", "--ca-out", path.join(work, "ca.pem"), "--routes", path.join(work, "routes.json")], { stdio: ["ignore", "pipe", "inherit"] });
const idpPort = await new Promise((resolve) => idp.stdout.once("data", (line) => resolve(JSON.parse(String(line)).port)));

const child = spawn(bin, ["serve", "--port", "0", "--log-format", "json", "--config", path.join(work, "tenants.toml"),
  "--state-dir", path.join(work, "state"), "--admin-token-sha256", createHash("sha256").update(ADMIN).digest("hex"),
  "--oauth-resolve", `idp.test:443=127.0.0.1:${idpPort}`, "--egress-ca", path.join(work, "ca.pem")], {
  env: { PATH: process.env.PATH, CATWALK_STATE_KEY: KEY }, stdio: ["ignore", "ignore", "pipe"],
});
const base = await serving(child);

const admin = async (method, route, body) => {
  const res = await fetch(`${base}/admin/${route}`, { method, headers: { authorization: `Bearer ${ADMIN}`, "content-type": "application/json" }, body: body && JSON.stringify(body) });
  if (res.status >= 300) throw new Error(`${route}: ${res.status} ${await res.text()}`);
  return res.json();
};
const put = (id, extra) => admin("PUT", `tenants/${id}`, { id, wasm: guest, ...extra });
await put("open", {});
await put("static", { token_sha256: [createHash("sha256").update(STATIC).digest("hex")] });
await put("builtin", { auth: { issuer: "builtin" } });
await put("jwt", { auth: { issuer: "https://idp.test" } });

/** An access token of the built-in server, by the whole flow. */
async function builtinToken() {
  const client = (await (await fetch(`${base}/t/builtin/oauth/register`, { method: "POST", headers: { "content-type": "application/json" },
    body: JSON.stringify({ redirect_uris: [REDIRECT], token_endpoint_auth_method: "none" }) })).json()).client_id;
  const verifier = randomBytes(32).toString("base64url");
  const { code: signIn } = await admin("POST", "tenants/builtin/sign-in", { subject: "bench" });
  const form = new URLSearchParams({ response_type: "code", client_id: client, redirect_uri: REDIRECT, state: "s",
    code_challenge: createHash("sha256").update(verifier).digest("base64url"), code_challenge_method: "S256", sign_in_code: signIn });
  const approved = await fetch(`${base}/t/builtin/oauth/authorize`, { method: "POST", body: form, redirect: "manual", headers: { "content-type": "application/x-www-form-urlencoded" } });
  const code = new URL(approved.headers.get("location")).searchParams.get("code");
  const tokens = await (await fetch(`${base}/t/builtin/oauth/token`, { method: "POST", headers: { "content-type": "application/x-www-form-urlencoded" },
    body: new URLSearchParams({ grant_type: "authorization_code", code, redirect_uri: REDIRECT, code_verifier: verifier, client_id: client }) })).json();
  return tokens.access_token;
}

function rs256Token() {
  const enc = (o) => Buffer.from(JSON.stringify(o)).toString("base64url");
  const input = `${enc({ alg: "RS256", kid: "k1" })}.${enc({ iss: "https://idp.test", aud: `${base}/t/jwt/mcp`, sub: "bench", exp: Math.floor(Date.now() / 1000) + 3600 })}`;
  return `${input}.${sign("sha256", Buffer.from(input), rsa.privateKey).toString("base64url")}`;
}

const kinds = { open: undefined, static: STATIC, builtin: await builtinToken(), jwt: rs256Token() };

async function post(id, token, session, body) {
  const res = await fetch(`${base}/t/${id}/mcp`, { method: "POST", body: JSON.stringify(body), headers: {
    "content-type": "application/json", accept: "application/json, text/event-stream",
    ...(token ? { authorization: `Bearer ${token}` } : {}), ...(session ? { "mcp-session-id": session, "mcp-protocol-version": "2025-06-18" } : {}) } });
  const text = await res.text();
  if (res.status !== 200 && res.status !== 202) throw new Error(`${id}: ${res.status} ${text}`);
  return res.headers.get("mcp-session-id");
}

async function session(id) {
  const token = kinds[id];
  const sid = await post(id, token, null, { jsonrpc: "2.0", id: 0, method: "initialize", params: { protocolVersion: "2025-06-18", capabilities: {}, clientInfo: { name: "bench", version: "0" } } });
  await post(id, token, sid, { jsonrpc: "2.0", method: "notifications/initialized" });
  let n = 1;
  return () => post(id, token, sid, { jsonrpc: "2.0", id: n++, method: "tools/call", params: { name: "test_simple_text", arguments: {} } });
}

const calls = Object.fromEntries(await Promise.all(Object.keys(kinds).map(async (id) => [id, await session(id)])));
const results = await measure(calls, { rounds, seconds });

child.kill("SIGTERM");
idp.kill();
console.log(table(results, "client check", "open"));
