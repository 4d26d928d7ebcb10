// What the benches share: waiting for a catwalk to serve (`serving`), and the measuring loop of the per-request
// cost benches (bench/auth.mjs, bench/observe.mjs): each round measures every kind in turn, `call` one at a time
// after a warm-up (p50, p99), then `inFlight` at once for `seconds` (requests per second); the report is the
// median of the rounds, with each kind's ratio to the first.

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

/** `kinds`: name → a function making one request. Returns name → { p50, p99, rps }, medians of the rounds. */
export async function measure(kinds, { rounds, seconds, inFlight = 16, calls = 500, warmup = 50 }) {
  const results = Object.fromEntries(Object.keys(kinds).map((k) => [k, { p50: [], p99: [], rps: [] }]));
  for (let round = 0; round < rounds; round++) {
    for (const [kind, call] of Object.entries(kinds)) {
      for (let i = 0; i < warmup; i++) await call();
      const times = [];
      for (let i = 0; i < calls; i++) {
        const t = process.hrtime.bigint();
        await call();
        times.push(Number(process.hrtime.bigint() - t) / 1e6);
      }
      times.sort((a, b) => a - b);
      results[kind].p50.push(times[Math.floor(times.length * 0.5)]);
      results[kind].p99.push(times[Math.floor(times.length * 0.99)]);
      let done = 0;
      const end = Date.now() + seconds * 1000;
      await Promise.all(Array.from({ length: inFlight }, async () => { while (Date.now() < end) { await call(); done++; } }));
      results[kind].rps.push(done / seconds);
    }
  }
  return Object.fromEntries(Object.entries(results).map(([k, r]) => [k, { p50: median(r.p50), p99: median(r.p99), rps: median(r.rps) }]));
}

/** The results as a Markdown table, each kind's ratios to the first kind's (`base`, as the header names it). */
export function table(results, heading, base) {
  const [first] = Object.values(results);
  const lines = [`| ${heading} | p50 ms | p99 ms | req/s at 16 in flight | p50 ratio to ${base} | req/s ratio to ${base} |`, `|---|---|---|---|---|---|`];
  for (const [kind, r] of Object.entries(results)) {
    lines.push(`| ${kind} | ${r.p50.toFixed(3)} | ${r.p99.toFixed(3)} | ${r.rps.toFixed(0)} | ${(r.p50 / first.p50).toFixed(2)} | ${(r.rps / first.rps).toFixed(2)} |`);
  }
  return lines.join("\n");
}

/** The URL a catwalk started with `--log-format json` serves on, once its log says so; rejects if it exits. */
export function serving(child) {
  return new Promise((resolve, reject) => {
    let buffer = "";
    child.stderr.on("data", (chunk) => {
      buffer += chunk;
      const found = buffer.match(/"addr":"([^"]+)"/);
      if (found) resolve(`http://${found[1]}`);
    });
    child.on("exit", (code) => reject(new Error(`catwalk exited (${code}): ${buffer}`)));
  });
}
