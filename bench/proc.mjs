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
  let rss = 0, pss = 0;
  for (const pid of descendants(root)) {
    try {
      const rollup = fs.readFileSync(`/proc/${pid}/smaps_rollup`, "utf8");
      rss += Number(/^Rss:\s+(\d+)/m.exec(rollup)[1]);
      pss += Number(/^Pss:\s+(\d+)/m.exec(rollup)[1]);
    } catch {}
  }
  return { rss: rss / 1024, pss: pss / 1024, procs: descendants(root).length };
}
