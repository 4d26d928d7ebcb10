// API-client npm servers, served packed (WASI, catwalk makes their requests) and through npx (Node makes them),
// against the same fake API: the same script of tool calls that reach the API must get identical answers both
// ways, and the fake API checks that the real token arrived with every request of both runs. The table is kept
// in tests/packed/README.md.
//
// Node resolves the APIs' real hostnames itself, so the comparison runs in a network namespace of the test's own
// whose /etc/hosts (`ip netns exec` mounts /etc/netns/<ns>/hosts) sends them to the fake API on 127.0.0.1:443,
// with the fake API's CA in NODE_EXTRA_CA_CERTS; the packed run reaches it through --egress-resolve and
// --egress-ca. The namespace has no way out: the packages are packed and installed first, outside it.
//
//   cargo build -p catwalk -p catwalk-tests --bins && node --test tests/js/api-clients.test.mjs   (as root)
import { test, describe, before, after } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync, chmodSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { startCatwalk } from "./catwalk.mjs";
import { fakeApi } from "./fake-api.mjs";
import { call, transcript } from "./transcript.mjs";

const here = fileURLToPath(import.meta.url);
const basic = (user, password) => `Basic ${Buffer.from(`${user}:${password}`).toString("base64")}`;
const has = (request, name, value) => request.headers.some(([k, v]) => k === name && v === value);

// Each package: its spec, the env both runs give it (`plain`: values that travel in a URL or a body cannot be
// bound), the secrets the packed run binds to its API's host (plain env under Node), the API's hosts, what
// the fake API answers, the calls, what the first call's answer shows of the API's, and how the real token shows
// in a request.
const packages = [
  {
    spec: "@modelcontextprotocol/server-brave-search@0.6.2", lib: "fetch",
    secrets: { BRAVE_API_KEY: "BSA-brave-0123456789abcdef" }, hosts: ["api.search.brave.com"],
    routes: [{ host: "api.search.brave.com", path: "/res/v1/web/search", body: { web: { results: [{ title: "catwalk", description: "An MCP host", url: "https://example.com/catwalk" }] } } }],
    calls: [call("brave_web_search", { query: "catwalk mcp", count: 2 }), call("brave_web_search", { query: "sandbox" })],
    expect: /Title: catwalk/,
    carries: (r, v) => has(r, "x-subscription-token", v.BRAVE_API_KEY),
  },
  {
    spec: "@modelcontextprotocol/server-github@2025.4.8", lib: "node-fetch",
    secrets: { GITHUB_PERSONAL_ACCESS_TOKEN: "ghp_github0123456789abcdefghij" }, hosts: ["api.github.com"],
    routes: [{ host: "api.github.com", path: "/repos/catwalk/catwalk/issues/1", body: { number: 1, title: "Egress", state: "open", user: { login: "octocat" }, labels: [] } }],
    calls: [call("get_issue", { owner: "catwalk", repo: "catwalk", issue_number: 1 }), call("get_issue", { owner: "catwalk", repo: "catwalk", issue_number: 2 })],
    expect: /Egress/,
    carries: (r, v) => has(r, "authorization", `Bearer ${v.GITHUB_PERSONAL_ACCESS_TOKEN}`),
  },
  {
    spec: "@modelcontextprotocol/server-slack@2025.4.25", lib: "fetch",
    plain: { SLACK_TEAM_ID: "T0123" }, secrets: { SLACK_BOT_TOKEN: "xoxb-slack-0123456789abcdef" }, hosts: ["slack.com"],
    routes: [
      { host: "slack.com", path: "/api/conversations.list", body: { ok: true, channels: [{ id: "C1", name: "general" }], response_metadata: { next_cursor: "" } } },
      { host: "slack.com", path: "/api/chat.postMessage", body: { ok: true, channel: "C1", ts: "1700000000.000100" } },
    ],
    calls: [call("slack_list_channels", {}), call("slack_post_message", { channel_id: "C1", text: "hello from the sandbox" })],
    expect: /general/,
    carries: (r, v) => has(r, "authorization", `Bearer ${v.SLACK_BOT_TOKEN}`),
  },
  {
    // Its key travels in the URL's query, where a bound secret may not go: it gets the key as plain env.
    spec: "@modelcontextprotocol/server-google-maps@0.6.2", lib: "node-fetch",
    plain: { GOOGLE_MAPS_API_KEY: "AIza-maps-0123456789abcdef" }, hosts: ["maps.googleapis.com"],
    routes: [
      { host: "maps.googleapis.com", path: "/maps/api/geocode/json", body: { status: "OK", results: [{ geometry: { location: { lat: 52.52, lng: 13.4 } }, formatted_address: "Berlin, Germany", place_id: "p1" }] } },
      { host: "maps.googleapis.com", path: "/maps/api/elevation/json", body: { status: "OK", results: [{ elevation: 34.5, location: { lat: 52.52, lng: 13.4 }, resolution: 9.5 }] } },
    ],
    calls: [call("maps_geocode", { address: "Berlin" }), call("maps_elevation", { locations: [{ latitude: 52.52, longitude: 13.4 }] })],
    expect: /Berlin, Germany/,
    carries: (r, v) => r.path.includes(`key=${v.GOOGLE_MAPS_API_KEY}`),
  },
  {
    spec: "@modelcontextprotocol/server-gitlab@2025.4.25", lib: "node-fetch",
    secrets: { GITLAB_PERSONAL_ACCESS_TOKEN: "glpat-gitlab0123456789abcd" }, hosts: ["gitlab.com"],
    routes: [{ host: "gitlab.com", path: "/api/v4/projects?", body: [] }],
    calls: [call("search_repositories", { search: "catwalk" }), call("get_file_contents", { project_id: "7", file_path: "README.md" })],
    expect: /\\"items\\": \[\]/,
    carries: (r, v) => has(r, "authorization", `Bearer ${v.GITLAB_PERSONAL_ACCESS_TOKEN}`),
  },
  {
    spec: "@modelcontextprotocol/server-everart@0.6.2", lib: "axios",
    secrets: { EVERART_API_KEY: "everart-0123456789abcdefgh" }, hosts: ["api.everart.ai"],
    routes: [{ host: "api.everart.ai", path: "/", status: 402, body: { message: "Not enough credits" } }],
    calls: [call("generate_image", { prompt: "a cat on a catwalk" })],
    expect: /Not enough credits/,
    carries: (r, v) => has(r, "authorization", `Bearer ${v.EVERART_API_KEY}`),
  },
  {
    // Its key travels in the request body too (`api_key`), where a bound secret may not go: plain env.
    spec: "tavily-mcp@0.2.22", lib: "axios",
    plain: { TAVILY_API_KEY: "tvly-tavily0123456789abcdef" }, hosts: ["api.tavily.com"],
    routes: [{ host: "api.tavily.com", path: "/search", body: { query: "catwalk", results: [{ title: "Catwalk", url: "https://example.com/catwalk", content: "An MCP host", score: 0.9 }], response_time: 0.12 } }],
    calls: [call("tavily_search", { query: "catwalk" })],
    expect: /An MCP host/,
    carries: (r, v) => has(r, "authorization", `Bearer ${v.TAVILY_API_KEY}`) || r.body.includes(v.TAVILY_API_KEY),
  },
  {
    spec: "@hubspot/mcp-server@0.4.0", lib: "fetch",
    secrets: { PRIVATE_APP_ACCESS_TOKEN: "pat-na1-hubspot0123456789ab" }, hosts: ["api.hubspot.com"],
    routes: [{ host: "api.hubspot.com", path: "/crm/v3/objects/contacts", body: { results: [{ id: "101", properties: { email: "ada@example.com", firstname: "Ada" }, createdAt: "2026-01-01T00:00:00.000Z", updatedAt: "2026-01-02T00:00:00.000Z", archived: false }] } }],
    calls: [call("hubspot-list-objects", { objectType: "contacts", limit: 1 }), call("hubspot-list-objects", { objectType: "deals", limit: 1 })],
    expect: /ada@example\.com/,
    carries: (r, v) => has(r, "authorization", `Bearer ${v.PRIVATE_APP_ACCESS_TOKEN}`),
  },
  {
    // Basic credentials: the placeholder is swapped inside the decoded `email:key`.
    spec: "@upstash/mcp-server@0.3.0", lib: "fetch",
    plain: { UPSTASH_EMAIL: "ops@example.com" }, secrets: { UPSTASH_API_KEY: "upstash-0123456789abcdefgh" }, hosts: ["api.upstash.com"],
    routes: [{ host: "api.upstash.com", path: "/v2/redis/databases", body: [{ database_id: "db1", database_name: "sessions", region: "eu-west-1", state: "active" }] }],
    calls: [call("redis_database_list_databases", {})],
    expect: /sessions/,
    carries: (r, v) => has(r, "authorization", basic("ops@example.com", v.UPSTASH_API_KEY)),
  },
  {
    // AWS signs each request with its secret key (SigV4) in the server: the keys are plain env, and the
    // access key id is what travels.
    spec: "@modelcontextprotocol/server-aws-kb-retrieval@0.6.2", lib: "AWS SDK (node http2)",
    plain: { AWS_ACCESS_KEY_ID: "AKIAEXAMPLE0123456789", AWS_SECRET_ACCESS_KEY: "aws-secret-0123456789abcdef", AWS_REGION: "us-east-1" },
    hosts: ["bedrock-agent-runtime.us-east-1.amazonaws.com"],
    routes: [{ host: "bedrock-agent-runtime.us-east-1.amazonaws.com", path: "/knowledgebases/KB1/retrieve", body: { retrievalResults: [{ content: { text: "Catwalk serves MCP servers." }, location: { type: "S3", s3Location: { uri: "s3://docs/catwalk.md" } }, score: 0.87 }] } }],
    calls: [call("retrieve_from_aws_kb", { query: "what is catwalk", knowledgeBaseId: "KB1", n: 1 })],
    expect: /Catwalk serves MCP servers/,
    carries: (r, v) => r.headers.some(([k, val]) => k === "authorization" && val.includes(`Credential=${v.AWS_ACCESS_KEY_ID}/`)),
  },
];

const allHosts = [...new Set(packages.flatMap((p) => p.hosts))];
const netns = process.env.CATWALK_API_NETNS;

const serveArgs = (entry, sandbox, ca) => [
  "--package", entry.spec, "--sandbox", sandbox,
  ...(sandbox === "wasi"
    ? [
      ...entry.hosts.flatMap((h) => ["--egress", `https://${h}`, "--egress-resolve", `${h}:443=127.0.0.1:${entry.port ?? 443}`]),
      "--egress-ca", ca,
      ...Object.keys(entry.secrets ?? {}).flatMap((name) => ["--secret", `${name}@${entry.hosts[0]}`]),
    ]
    : []),
  ...(entry.args?.length ? ["--", ...entry.args] : []),
];
// Under Node the secrets are plain env; the packed run's catwalk takes them by name (`--secret NAME@host`), so
// they are in catwalk's env and reach the server only as placeholders. Node trusts the fake API's CA beside
// the machine's own (npm reaches the registry through them).
const serveEnv = (entry, ca) => ({ ...entry.plain, ...entry.secrets, NODE_EXTRA_CA_CERTS: ca });

/** The fake API's CA and the machine's extra roots, in one file for NODE_EXTRA_CA_CERTS. */
function bundle(ca, dir) {
  const file = path.join(dir, "roots.pem");
  const machine = process.env.NODE_EXTRA_CA_CERTS ? readFileSync(process.env.NODE_EXTRA_CA_CERTS, "utf8") : "";
  writeFileSync(file, `${machine}\n${readFileSync(ca, "utf8")}`);
  return file;
}

if (!netns) {
  // Outside: pack and install every package (the namespace has no way out), then run the comparison inside.
  describe("API clients, packed and through npx, against the same API", () => {
    const work = mkdtempSync(path.join(tmpdir(), "catwalk-api-"));
    chmodSync(work, 0o755);
    const name = `cw-api-${process.pid}`;
    let api;
    let roots;
    before(async () => {
      api = await fakeApi(allHosts, work, packages.flatMap((p) => p.routes.map((r) => ({ status: 200, ...r }))));
      roots = bundle(api.ca, work);
    });
    after(() => {
      api?.stop();
      spawnSync("ip", ["netns", "del", name]);
      rmSync(`/etc/netns/${name}`, { recursive: true, force: true });
    });

    test("every package packs with its API reachable, and installs for npx", { timeout: 1_200_000 }, async () => {
      for (const entry of packages) {
        for (const sandbox of ["wasi", "npx"]) {
          const catwalk = await startCatwalk(serveArgs({ ...entry, port: api.port }, sandbox, api.ca), serveEnv(entry, roots));
          const ready = await (await fetch(`${catwalk.base}/readyz`)).json();
          await catwalk.stop();
          assert.equal(ready.ready, true, `${entry.spec} (${sandbox}): ${JSON.stringify(ready)}`);
        }
      }
    });

    test("inside a network namespace, each package answers the same script identically both ways", { timeout: 1_200_000 }, () => {
      if (process.getuid() !== 0) return;
      for (const args of [["netns", "add", name], ["-n", name, "link", "set", "lo", "up"]]) {
        assert.equal(spawnSync("ip", args).status, 0, `ip ${args.join(" ")}`);
      }
      mkdirSync(`/etc/netns/${name}`, { recursive: true });
      writeFileSync(`/etc/netns/${name}/hosts`, `127.0.0.1 localhost\n${allHosts.map((h) => `127.0.0.1 ${h}`).join("\n")}\n`);
      const inner = spawnSync("ip", ["netns", "exec", name, process.execPath, "--test", "--test-reporter=spec", here], {
        // A test file the runner starts itself (not a nested run, which the runner would skip).
        env: { ...Object.fromEntries(Object.entries(process.env).filter(([k]) => k !== "NODE_TEST_CONTEXT")), CATWALK_API_NETNS: name, CATWALK_API_WORK: work },
        encoding: "utf8",
        timeout: 1_100_000,
      });
      process.stdout.write(inner.stdout ?? "");
      process.stderr.write(inner.stderr ?? "");
      assert.equal(inner.status, 0, "the comparison inside the namespace failed (its output is above)");
    });
  });
} else {
  // Inside the namespace: the fake API on 127.0.0.1:443, where the APIs' names resolve.
  describe(`API clients inside ${netns}`, () => {
    const work = process.env.CATWALK_API_WORK;
    let api;
    let roots;
    before(async () => {
      const dir = mkdtempSync(path.join(work, "inner-"));
      api = await fakeApi(allHosts, dir, packages.flatMap((p) => p.routes.map((r) => ({ status: 200, ...r }))), 443);
      roots = bundle(api.ca, dir);
    });
    after(() => api?.stop());

    for (const entry of packages) {
      test(`${entry.spec} (${entry.lib})`, { timeout: 300_000 }, async () => {
        const values = { ...entry.plain, ...entry.secrets };
        const runs = {};
        for (const sandbox of ["npx", "wasi"]) {
          const mark = (await api.requests()).length;
          const catwalk = await startCatwalk(serveArgs(entry, sandbox, api.ca), serveEnv(entry, roots));
          runs[sandbox] = await transcript(catwalk.base, entry.calls).finally(() => catwalk.stop());
          const arrived = (await api.requests()).slice(mark).filter((r) => entry.hosts.includes(r.host));
          assert.ok(arrived.length > 0, `${sandbox}: no request reached the API`);
          if (entry.reached) assert.ok(entry.reached(arrived), `${sandbox}: the call did not reach the API`);
          for (const request of arrived) {
            assert.ok(entry.carries(request, values), `${sandbox}: the real token did not arrive: ${JSON.stringify(request)}`);
          }
          if (sandbox === "wasi") assert.ok(catwalk.logs.some((l) => l.includes("serving the package packed to WASI")));
        }
        assert.ok(runs.npx.tools?.tools?.length > 0, `Node listed tools: ${JSON.stringify(runs.npx.tools)}`);
        // The first call's answer comes from the API (not a failure both runs share before reaching it).
        if (entry.expect) assert.match(JSON.stringify(runs.npx.calls[0]), entry.expect);
        runs.npx.calls.forEach((answer, i) => assert.deepEqual(runs.wasi.calls[i], answer, `call ${i}`));
        assert.deepEqual(runs.wasi, runs.npx);
      });
    }
  });
}
