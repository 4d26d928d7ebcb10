// A process and everything below it, as /proc shows them: the memory of a server and its children.
import fs from "node:fs";

export function descendants(root) {
  const table = fs.readdirSync("/proc").filter((d) => /^\d+$/.test(d)).map((pid) => {
    try {
      const stat = fs.readFileSync(`/proc/${pid}/stat`, "utf8");
      return [Number(pid), Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1])];
    } catch { return null; }
  }).filter(Boolean);
  const found = [root];
  for (let i = 0; i < found.length; i++) for (const [pid, ppid] of table) if (ppid === found[i]) found.push(pid);
  return found;
}

export function memory(root) {
  let rss = 0, pss = 0, dirty = 0;
  for (const pid of descendants(root)) {
    try {
      const rollup = fs.readFileSync(`/proc/${pid}/smaps_rollup`, "utf8");
      rss += Number(/^Rss:\s+(\d+)/m.exec(rollup)[1]);
      pss += Number(/^Pss:\s+(\d+)/m.exec(rollup)[1]);
      dirty += Number(/^Private_Dirty:\s+(\d+)/m.exec(rollup)[1]);
    } catch {}
  }
  return { rss: rss / 1024, pss: pss / 1024, dirty: dirty / 1024, procs: descendants(root).length };
}

// The address a catwalk child serves on, once it logs "catwalk is serving" (`--log-format json`), then ready
// (`/readyz` answers 200: its tenants placed, packed and started).
export async function serving(child) {
  const base = await new Promise((resolve, reject) => {
    let buffer = "";
    child.stderr.on("data", (chunk) => {
      buffer += chunk;
      for (let nl; (nl = buffer.indexOf("\n")) >= 0; buffer = buffer.slice(nl + 1)) {
        try {
          const entry = JSON.parse(buffer.slice(0, nl));
          if (entry.fields?.message === "catwalk is serving") resolve(`http://${entry.fields.addr}`);
        } catch {}
      }
    });
    child.on("exit", (code) => reject(new Error(`catwalk exited (${code})`)));
  });
  for (let i = 0; i < 1200 && (await fetch(`${base}/readyz`).catch(() => null))?.status !== 200; i++) {
    await new Promise((r) => setTimeout(r, 100));
  }
  return base;
}
