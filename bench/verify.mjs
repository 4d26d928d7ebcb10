// What verifying a package costs: a real tree (@modelcontextprotocol/server-memory, 99 packages) installed by
// catwalk with `verify = "signatures"` against `verify = "off"`, side by side, and npm's own verifier, `npm audit
// signatures`, on the same installed tree (where it can run: it needs Sigstore's TUF CDN). The registry is the tests' stand-in (tests/js/registry.mjs) relaying
// the machine's registry and signing every version it relays, as registry.npmjs.org signs (the machine's mirror
// strips the signatures). Each round: a first start (resolve, verify, `npm ci`; npm's cache warm), a restart
// from the pin, and `npm audit signatures` in the installed tree.
//
//   cargo build --release -p catwalk && node bench/verify.mjs [rounds=5]
import { spawn, execFileSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { serving } from "./measure.mjs";
import { startRegistry } from "../tests/js/registry.mjs";

const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const bin = process.env.CATWALK_BIN ?? path.join(repo, "target/release/catwalk");
const rounds = Number(process.argv[2] ?? 5);
const spec = "@modelcontextprotocol/server-memory@2026.8.31";
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const upstream = execFileSync("npm", ["config", "get", "registry"], { encoding: "utf8" }).trim();
const registry = await startRegistry({ upstream, resign: true });
const env = { ...process.env, npm_config_registry: registry.url, npm_config_fetch_retries: "0" };

/** Seconds from catwalk's start to /readyz saying the package is ready, and what it says. */
async function ready(state, verify) {
  const started = process.hrtime.bigint();
  const child = spawn(bin, ["serve", "--port", "0", "--log-format", "json", "--package", spec, "--verify", verify], {
    env: { ...env, CATWALK_STATE_DIR: state }, stdio: ["ignore", "ignore", "pipe"],
  });
  try {
    const base = await serving(child);
    for (;;) {
      const res = await fetch(`${base}/readyz`);
      const body = await res.json();
      if (res.status === 200) return { seconds: Number(process.hrtime.bigint() - started) / 1e9, body };
      if (!/not installed yet/.test(body.detail)) throw new Error(body.detail);
      await new Promise((r) => setTimeout(r, 20));
    }
  } finally {
    child.kill("SIGTERM");
  }
}

/** `npm audit signatures` in an installed tree: seconds, and its summary. */
function audit(dir) {
  const started = process.hrtime.bigint();
  return new Promise((resolve, reject) => {
    const child = spawn("npm", ["audit", "signatures", "--prefix", dir], { env, stdio: ["ignore", "pipe", "pipe"] });
    let out = "";
    let err = "";
    child.stdout.on("data", (d) => (out += d));
    child.stderr.on("data", (d) => (err += d));
    child.on("exit", (code) => code === 0
      ? resolve({ seconds: Number(process.hrtime.bigint() - started) / 1e9, out })
      : reject(new Error(`npm audit signatures: ${code} ${out} ${err}`)));
  });
}

const times = { off: [], signatures: [], pinned: [], audit: [] };
let shown;
for (let round = 0; round < rounds; round++) {
  for (const verify of ["off", "signatures"]) {
    const state = mkdtempSync(path.join(tmpdir(), "catwalk-bench-verify-"));
    const first = await ready(state, verify);
    times[verify].push(first.seconds);
    if (verify === "signatures") {
      shown = first.body.package;
      times.pinned.push((await ready(state, verify)).seconds);
      const dir = execFileSync("sh", ["-c", `ls -d ${state}/npm/*/`], { encoding: "utf8" }).trim();
      // npm's verifier fetches Sigstore's trust root from its TUF CDN first, even to check registry signatures:
      // where that cannot be reached (as here) it checks nothing. catwalk's trust root is built in.
      const result = await audit(dir).catch((e) => ({ failed: e.message.match(/npm error (network request[^\n]*|code \w+)/)?.[1] ?? e.message }));
      if (result.failed) shown.audit = `failed: ${result.failed}`;
      else {
        times.audit.push(result.seconds);
        shown.audit = result.out.trim().split("\n").filter((l) => /verified|audited/.test(l)).join("; ");
      }
    }
    rmSync(state, { recursive: true, force: true });
  }
}
await registry.close();
const off = median(times.off);
console.log(`| ${spec}: ${shown.packages} packages, ${shown.signed} signatures checked | median s (${rounds} rounds) | ratio to verify = "off" |`);
console.log("|---|---|---|");
for (const [what, key] of [["catwalk, first start, verify = \"off\" (resolve, `npm ci`)", "off"],
  ["catwalk, first start, verify = \"signatures\" (resolve, verify, `npm ci`)", "signatures"],
  ["catwalk, restart from the pin (signatures)", "pinned"], ["`npm audit signatures` on the installed tree", "audit"]]) {
  if (!times[key].length) console.log(`| ${what} | did not run | |`);
  else console.log(`| ${what} | ${median(times[key]).toFixed(2)} | ${(median(times[key]) / off).toFixed(2)} |`);
}
console.log(`\nnpm audit signatures said: ${shown.audit}`);
