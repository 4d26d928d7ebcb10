// Starts the real catwalk binary on 127.0.0.1 (port 0) and stops it by its PID.
import { spawn } from "node:child_process";
import { once } from "node:events";
import path from "node:path";
import { fileURLToPath } from "node:url";

const here = path.dirname(fileURLToPath(import.meta.url));
export const repo = path.resolve(here, "../..");
export const fixtureDir = path.join(repo, "tests/fixtures/conformance-server");
const bin = process.env.CATWALK_BIN ?? path.join(repo, "target/debug/catwalk");

/** `wrap`: a command catwalk runs under (as `nsenter ...`, which execs it: the PID stays catwalk's); `binary`: a
 * catwalk other than the one built. */
export async function startCatwalk(args, env = {}, { wrap = [], binary = bin } = {}) {
  const port = args.includes("--port") ? [] : ["--port", "0"];
  const argv = [binary, "serve", ...port, "--log-format", "json", ...args];
  const child = spawn(wrap[0] ?? argv[0], [...wrap.slice(1), ...(wrap.length ? argv : argv.slice(1))], {
    env: { PATH: process.env.PATH, HOME: process.env.HOME, NODE_EXTRA_CA_CERTS: process.env.NODE_EXTRA_CA_CERTS ?? "",
      ...(process.env.CATWALK_VERIFY ? { CATWALK_VERIFY: process.env.CATWALK_VERIFY } : {}),
      CATWALK_STATE_DIR: process.env.CATWALK_STATE_DIR ?? path.join(repo, "target/test-state"), ...env },
    stdio: ["ignore", "ignore", "pipe"],
  });
  const logs = [];
  const base = await new Promise((resolve, reject) => {
    let buffer = "";
    child.stderr.on("data", (chunk) => {
      buffer += chunk;
      let nl;
      while ((nl = buffer.indexOf("\n")) >= 0) {
        const line = buffer.slice(0, nl);
        buffer = buffer.slice(nl + 1);
        logs.push(line);
        try {
          const entry = JSON.parse(line);
          if (entry.fields?.message === "catwalk is serving") resolve(`http://${entry.fields.addr}`);
        } catch {}
      }
    });
    child.on("exit", (code) => reject(new Error(`catwalk exited (${code}): ${logs.join("\n")}`)));
  });
  // Ready means a session can start without waiting for the package install.
  for (let i = 0; i < 600; i++) {
    const res = await fetch(`${base}/readyz`).catch(() => null);
    if (res?.status === 200) break;
    await new Promise((r) => setTimeout(r, 100));
  }
  return {
    base,
    logs,
    async stop() {
      child.kill("SIGTERM");
      const [code, signal] = child.exitCode === null ? await once(child, "exit") : [child.exitCode, null];
      return { code, signal };
    },
  };
}
