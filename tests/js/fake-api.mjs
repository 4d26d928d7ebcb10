// The fake API of the egress tests (`fake-api`, built beside catwalk): HTTPS with a CA of its own, for the names
// given, answering `routes` and the test routes under /__catwalk/; what it received is read back from it.
import { spawn } from "node:child_process";
import { writeFileSync } from "node:fs";
import path from "node:path";
import { repo } from "./catwalk.mjs";

const bins = path.dirname(process.env.CATWALK_BIN ?? path.join(repo, "target/debug/catwalk"));

/** Starts the fake API for `names` (HTTPS on `port`, any when 0): its ports and what it received. */
export async function fakeApi(names, dir, routes, port = 0) {
  const args = ["--names", names.join(","), "--ca-out", path.join(dir, "ca.pem"), "--port", String(port)];
  if (routes) {
    writeFileSync(path.join(dir, "routes.json"), JSON.stringify(routes));
    args.push("--routes", path.join(dir, "routes.json"));
  }
  const child = spawn(path.join(bins, "fake-api"), args, { stdio: ["ignore", "pipe", "inherit"] });
  const ports = await new Promise((resolve, reject) => {
    child.stdout.once("data", (line) => resolve(JSON.parse(String(line))));
    child.once("exit", (code) => reject(new Error(`fake-api exited with ${code}`)));
  });
  return {
    ...ports,
    ca: path.join(dir, "ca.pem"),
    async requests() { return (await fetch(`http://127.0.0.1:${ports.plain}/__catwalk/requests`)).json(); },
    async mostAtOnce() { return (await (await fetch(`http://127.0.0.1:${ports.plain}/__catwalk/stats`)).json()).most_at_once; },
    stop() { child.kill(); },
  };
}
