// The compatibility sweep behind tests/packed/COMPAT.md: each package served through npx (Node) and packed to WASI
// (`--sandbox wasi`), a placeholder for any key it needs at start, and the same conversation with both: initialize
// and every list the server offers (tools, prompts, resources, templates). A row says whether the two agree,
// where they differ, or why the package does not pack or start. No call reaches an API: the keys are placeholders.
//
//   cargo build -p catwalk && npm ci --prefix tests && CATWALK_VERIFY=off node tests/packed/compat.mjs [SPEC ...]
import { execFileSync } from "node:child_process";
import { startCatwalk } from "../js/catwalk.mjs";
import { transcript } from "../js/transcript.mjs";

// spec (without a version: the newest, resolved once at the start), the env its start needs (placeholders), its
// arguments, and the directories granted to the packed build (Node sees the machine's).
const SWEEP = [
  ["@modelcontextprotocol/server-memory@2026.8.31"],
  ["@modelcontextprotocol/server-sequential-thinking@2026.8.31"],
  ["@modelcontextprotocol/server-everything@2026.8.31"],
  ["@modelcontextprotocol/server-filesystem@2026.8.31", {}, ["/tmp"], ["/tmp::/tmp"]],
  ["@modelcontextprotocol/server-github@2025.4.8", { GITHUB_PERSONAL_ACCESS_TOKEN: "placeholder" }],
  ["@modelcontextprotocol/server-brave-search@0.6.2", { BRAVE_API_KEY: "placeholder" }],
  ["@modelcontextprotocol/server-slack@2025.4.25", { SLACK_BOT_TOKEN: "placeholder", SLACK_TEAM_ID: "T0" }],
  ["@modelcontextprotocol/server-google-maps@0.6.2", { GOOGLE_MAPS_API_KEY: "placeholder" }],
  ["@modelcontextprotocol/server-gitlab@2025.4.25", { GITLAB_PERSONAL_ACCESS_TOKEN: "placeholder" }],
  ["@modelcontextprotocol/server-everart@0.6.2", { EVERART_API_KEY: "placeholder" }],
  ["@modelcontextprotocol/server-aws-kb-retrieval@0.6.2", { AWS_ACCESS_KEY_ID: "placeholder", AWS_SECRET_ACCESS_KEY: "placeholder", AWS_REGION: "us-east-1" }],
  ["@modelcontextprotocol/server-puppeteer"],
  ["@modelcontextprotocol/server-postgres", {}, ["postgresql://db.example/test"]],
  ["@modelcontextprotocol/server-redis"],
  ["@upstash/context7-mcp"],
  ["firecrawl-mcp", { FIRECRAWL_API_KEY: "placeholder" }],
  ["@notionhq/notion-mcp-server"],
  ["exa-mcp-server", { EXA_API_KEY: "placeholder" }],
  ["tavily-mcp@0.2.22", { TAVILY_API_KEY: "placeholder" }],
  ["airtable-mcp-server", { AIRTABLE_API_KEY: "placeholder" }],
  ["@brave/brave-search-mcp-server", { BRAVE_API_KEY: "placeholder" }],
  ["linear-mcp-server@0.1.0", { LINEAR_API_KEY: "placeholder" }],
  ["@hubspot/mcp-server@0.4.0", { PRIVATE_APP_ACCESS_TOKEN: "placeholder" }],
  ["@upstash/mcp-server@0.3.0", { UPSTASH_EMAIL: "a@example.com", UPSTASH_API_KEY: "placeholder" }],
  ["figma-developer-mcp", { FIGMA_API_KEY: "placeholder" }, ["--stdio"]],
  ["@perplexity-ai/mcp-server", { PERPLEXITY_API_KEY: "placeholder" }],
  ["@sentry/mcp-server", { SENTRY_ACCESS_TOKEN: "placeholder" }],
  ["@supabase/mcp-server-supabase", { SUPABASE_ACCESS_TOKEN: "placeholder" }],
  ["@stripe/mcp", {}, ["--tools=all", "--api-key=sk_test_placeholder"]],
  ["@heroku/mcp-server", { HEROKU_API_KEY: "placeholder" }],
  ["@playwright/mcp"],
  // npm_config_ignore_scripts: its tree's install script (playwright's) downloads a browser this machine cannot reach;
  // packing never runs install scripts, so both sides install the same way.
  ["mcp-mermaid@0.4.1", { npm_config_ignore_scripts: "true" }],
  ["@kimtaeyoon83/mcp-server-youtube-transcript"],
  ["@wonderwhy-er/desktop-commander"],
  ["time-mcp@1.0.6"],
  ["@coo-quack/calc-mcp@2.1.1"],
  ["mcp-server-filesystem@0.6.2", {}, ["/tmp"], ["/tmp::/tmp"]],
  ["mcp-sequentialthinking-tools@0.0.3"],
  ["@itseasy21/mcp-knowledge-graph@1.0.7"],
  ["@allpepper/memory-bank-mcp@0.2.2", { MEMORY_BANK_ROOT: "/tmp" }, [], ["/tmp::/tmp:rw"]],
  ["mcp-memory-keeper@0.14.1"],
  ["task-master-ai"],
  ["@executeautomation/playwright-mcp-server", {}, [], ["/tmp::/tmp:rw"]],
  ["mcp-server-kubernetes"],
  ["@modelcontextprotocol/server-gdrive"],
  ["@browsermcp/mcp"],
  ["@21st-dev/magic", { API_KEY: "placeholder" }],
  ["@apify/actors-mcp-server", { APIFY_TOKEN: "placeholder" }],
  ["@agentdeskai/browser-tools-mcp"],
  ["@winor30/mcp-server-datadog", { DATADOG_API_KEY: "placeholder", DATADOG_APP_KEY: "placeholder" }],
];

const only = process.argv.slice(2);
const pinned = (spec) => /.@[^/]+$/.test(spec);
const sweep = (only.length ? SWEEP.filter(([spec]) => only.some((s) => spec.startsWith(s))) : SWEEP).map(([spec, ...rest]) => [
  pinned(spec) ? spec : `${spec}@${execFileSync("npm", ["view", spec, "version"], { encoding: "utf8" }).trim().split("\n").pop()}`,
  ...rest,
]);

const args = (spec, env, argv, dirs, sandbox) => [
  "--package", spec, "--sandbox", sandbox, "--spare", "0",
  ...(sandbox === "wasi" ? dirs.flatMap((d) => ["--dir", d]) : []),
  ...Object.entries(env).flatMap(([k, v]) => ["--env", `${k}=${v}`]),
  ...(argv.length ? ["--", ...argv] : []),
];

// A run's transcript, or the first line of why it could not start.
async function run(spec, env, argv, dirs, sandbox) {
  let catwalk;
  try {
    catwalk = await startCatwalk(args(spec, env, argv, dirs, sandbox));
    return { seen: await transcript(catwalk.base, []) };
  } catch (error) {
    // catwalk's own reason ("Caused by:"), else the error as it came.
    const text = String(error.message);
    const cause = text.split("Caused by:")[1]?.trim() ?? text.split("\n")[0];
    return { failed: cause.replace(/^.*?cannot run sandboxed \(--sandbox wasi\): /, "").slice(0, 400) };
  } finally {
    await catwalk?.stop().catch(() => {});
  }
}

// The first place two answers differ: its path and both values there.
function firstDifference(a, b, at = "") {
  if (JSON.stringify(a) === JSON.stringify(b)) return null;
  if (a && b && typeof a === "object" && typeof b === "object") {
    for (const key of new Set([...Object.keys(a), ...Object.keys(b)])) {
      const found = firstDifference(a[key], b[key], `${at}.${key}`);
      if (found) return found;
    }
  }
  return [at.slice(1), a, b];
}

const cell = (text) => String(text).replaceAll("|", "\\|").replaceAll("\n", " ");
const names = (seen, what) => (seen[what]?.[what === "templates" ? "resourceTemplates" : what] ?? []).map((x) => x.name ?? x.uriTemplate ?? x.uri);

console.log(`Swept ${new Date().toISOString().slice(0, 10)}: each package through npx (Node ${process.version}) and packed to WASI, initialize and every list compared.\n`);
console.log("| package | under Node | packed | result |");
console.log("|---|---|---|---|");
let same = 0;
for (const [spec, env = {}, argv = [], dirs = []] of sweep) {
  const node = await run(spec, env, argv, dirs, "npx");
  const packed = await run(spec, env, argv, dirs, "wasi");
  let result;
  if (node.failed) result = packed.failed ? "fails under Node too" : "starts only packed";
  else if (packed.failed) result = `does not run packed: ${packed.failed}`;
  else if (JSON.stringify(node.seen) === JSON.stringify(packed.seen)) {
    result = "identical";
    same++;
  } else {
    const [where, a, b] = firstDifference(node.seen, packed.seen);
    result = `differs at \`${where}\`: Node ${JSON.stringify(a)?.slice(0, 200)}, packed ${JSON.stringify(b)?.slice(0, 200)}`;
  }
  const summary = (r) => (r.failed ? `fails: ${r.failed}` : `${names(r.seen, "tools").length} tools, ${names(r.seen, "prompts").length} prompts, ${names(r.seen, "resources").length} resources`);
  console.log(`| \`${spec}\` | ${cell(summary(node))} | ${cell(summary(packed))} | ${cell(result)} |`);
}
console.log(`\n${same} of ${sweep.length} identical.`);
