// npm MCP servers packed to WASI (`catwalk pack`, served with `--sandbox wasi`) against the same packages run by
// Node through npx: the official TypeScript SDK client sends both the same request script, and the answers must
// be identical (timestamps and ids aside). Then the grants: what a packed server can and cannot reach, and the
// attacks a packed server must not get away with. The table of packages is kept in tests/packed/README.md.
//
//   cargo build -p catwalk && npm ci --prefix tests && node --test tests/js/packed.test.mjs
import { test, describe, before, after } from "node:test";
import assert from "node:assert/strict";
import { chmodSync, cpSync, existsSync, mkdtempSync, readFileSync, writeFileSync, mkdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import zlib from "node:zlib";
import { startCatwalk, repo } from "./catwalk.mjs";
import { call, prompt, read, transcript } from "./transcript.mjs";

const work = mkdtempSync(path.join(tmpdir(), "catwalk-packed-"));
const files = path.join(work, "files");
// Each run of a server that writes starts from the same tree: Node's writes are not there for the packed run.
const fresh = (dir) => () => {
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
};
const freshFiles = () => {
  fresh(files)();
  mkdirSync(path.join(files, "notes"));
  writeFileSync(path.join(files, "a.txt"), "first line\nsecond line\nthird line\n");
  writeFileSync(path.join(files, "notes", "todo.md"), "# To do\n- pack servers\n- compare them\n");
};
freshFiles();


// Each package, pinned, with what both runs get and the calls made after the lists. `dirs` are granted to the
// packed server at the same paths Node sees them, so paths in answers agree.
const packages = [
  {
    spec: "@modelcontextprotocol/server-memory@2026.8.31",
    env: { MEMORY_FILE_PATH: path.join(work, "memory", "graph.jsonl") },
    dirs: [`${path.join(work, "memory")}::${path.join(work, "memory")}:rw`],
    setup: fresh(path.join(work, "memory")),
    calls: [
      call("create_entities", { entities: [{ name: "Ada", entityType: "person", observations: ["wrote the first program"] }] }),
      call("create_relations", { relations: [{ from: "Ada", to: "Ada", relationType: "knows" }] }),
      call("search_nodes", { query: "program" }),
      call("read_graph"),
      call("delete_entities", { entityNames: ["Ada"] }),
    ],
  },
  {
    spec: "@modelcontextprotocol/server-sequential-thinking@2026.8.31",
    env: { DISABLE_THOUGHT_LOGGING: "true" },
    calls: [
      call("sequentialthinking", { thought: "First, list the servers.", nextThoughtNeeded: true, thoughtNumber: 1, totalThoughts: 2 }),
      call("sequentialthinking", { thought: "Then compare them.", nextThoughtNeeded: false, thoughtNumber: 2, totalThoughts: 2 }),
      call("sequentialthinking", { thought: 7 }),
    ],
  },
  {
    spec: "@modelcontextprotocol/server-everything@2026.8.31",
    calls: [
      call("echo", { message: "héllo ✓" }),
      call("get-sum", { a: 2, b: 40 }),
      call("get-annotated-message", { messageType: "error", includeImage: true }),
      call("get-structured-content", { location: "New York" }),
      call("get-resource-reference", { resourceType: "Text", resourceId: 3 }),
      call("get-tiny-image"),
      call("trigger-long-running-operation", { duration: 0.2, steps: 2 }),
      prompt("simple-prompt"),
      prompt("args-prompt", { city: "Lisbon", state: "PT" }),
      read("demo://resource/static/document/architecture.md"),
    ],
  },
  {
    spec: "@modelcontextprotocol/server-filesystem@2026.8.31",
    args: [files],
    dirs: [`${files}::${files}:rw`],
    setup: freshFiles,
    calls: [
      call("list_allowed_directories"),
      call("list_directory", { path: files }),
      call("read_text_file", { path: path.join(files, "a.txt") }),
      call("read_text_file", { path: path.join(files, "a.txt"), head: 2 }),
      call("read_text_file", { path: path.join(files, "a.txt"), tail: 1 }),
      call("read_multiple_files", { paths: [path.join(files, "a.txt"), path.join(files, "notes", "todo.md")] }),
      call("directory_tree", { path: files }),
      call("search_files", { path: files, pattern: "todo" }),
      call("write_file", { path: path.join(files, "written.txt"), content: "written by the script\n" }),
      call("edit_file", { path: path.join(files, "written.txt"), edits: [{ oldText: "script", newText: "request script" }] }),
      call("read_text_file", { path: path.join(files, "written.txt") }),
      call("read_text_file", { path: "/etc/passwd" }),
      call("read_text_file", { path: path.join(files, "missing.txt") }),
    ],
  },
  {
    spec: "mcp-server-filesystem@0.6.2",
    args: [files],
    dirs: [`${files}::${files}:rw`],
    setup: freshFiles,
    calls: [
      call("list_allowed_directories"),
      call("list_directory", { path: files }),
      call("read_file", { path: path.join(files, "notes", "todo.md") }),
      call("search_files", { path: files, pattern: "a" }),
      call("read_file", { path: "/etc/hostname" }),
    ],
  },
  {
    spec: "time-mcp@1.0.6",
    calls: [
      call("days_in_month", { date: "2024-02-10" }),
      call("get_week_year", { date: "2025-03-23" }),
      call("get_timestamp", { time: "2025-01-02 03:04:05.678" }),
      // Time zones, through catwalk's Intl.
      call("convert_time", { sourceTimezone: "UTC", targetTimezone: "Asia/Tokyo", time: "2025-01-02 03:04:05" }),
      call("convert_time", { sourceTimezone: "America/New_York", targetTimezone: "Europe/London", time: "2025-07-04 18:30:00" }),
    ],
  },
  {
    spec: "mcp-sequentialthinking-tools@0.0.3",
    calls: [
      call("sequentialthinking_tools", {
        available_mcp_tools: ["search", "fetch"], thought: "Search first.", thought_number: 1, total_thoughts: 1, next_thought_needed: false,
      }),
    ],
  },
  {
    spec: "@coo-quack/calc-mcp@2.1.1",
    calls: [
      call("math", { expression: "2 * (3 + 4) ^ 2" }),
      call("math", { action: "statistics", values: [1, 2, 3, 4, 10] }),
      call("base64", { input: "héllo ✓", action: "encode" }),
      call("encode", { input: "a b&c", action: "encode", type: "url" }),
      call("date", { action: "diff", date: "2024-01-01", date2: "2024-03-01" }),
      call("regex", { pattern: "o+", flags: "g", text: "foo boo", action: "match" }),
      call("base", { value: "255", from: 10, to: 16 }),
      call("diff", { text1: "a\nb\nc", text2: "a\nc\nd" }),
      call("format_validate", { input: "{\"a\": [1, 2]}", format: "json" }),
      call("luhn", { number: "4539578763621486" }),
      call("ip", { action: "contains", ip: "10.1.2.3", cidr: "10.0.0.0/8" }),
      call("color", { color: "#ff8800" }),
      call("convert", { value: 10, from: "km", to: "mi" }),
      call("url_parse", { url: "https://user@example.com:8080/a/b?x=1#frag" }),
      call("semver", { action: "compare", version: "1.2.3", version2: "1.10.0" }),
      call("hash", { input: "abc", algorithm: "sha256" }),
      call("hash", { input: "héllo", algorithm: "md5" }),
      call("hash", { input: "abc", algorithm: "sha512", action: "hmac", key: "a key" }),
      // Grapheme counts, characters and cron times in a time zone, through catwalk's Intl.
      call("count", { text: "one two three\nfour 👨‍👩‍👧 e\u0301" }),
      call("char_info", { char: "é" }),
      call("char_info", { char: "👨‍👩‍👧" }),
      call("cron_parse", { expression: "0 9 * * 1", count: 2 }),
      call("cron_parse", { expression: "30 17 * * *", count: 3, timezone: "America/Los_Angeles" }),
    ],
  },
  {
    spec: "@itseasy21/mcp-knowledge-graph@1.0.7",
    env: { MEMORY_FILE_PATH: path.join(work, "graph", "kg.jsonl") },
    dirs: [`${path.join(work, "graph")}::${path.join(work, "graph")}:rw`],
    setup: fresh(path.join(work, "graph")),
    calls: [
      call("create_entities", { entities: [{ name: "Lin", entityType: "person", observations: ["maps"] }] }),
      call("add_observations", { observations: [{ entityName: "Lin", contents: ["graphs"] }] }),
      call("search_nodes", { query: "graphs" }),
      call("read_graph"),
      call("delete_entities", { entityNames: ["Lin"] }),
    ],
  },
  {
    spec: "@allpepper/memory-bank-mcp@0.2.2",
    env: { MEMORY_BANK_ROOT: path.join(work, "bank") },
    dirs: [`${path.join(work, "bank")}::${path.join(work, "bank")}:rw`],
    setup: fresh(path.join(work, "bank")),
    calls: [
      call("memory_bank_write", { projectName: "catwalk", fileName: "notes.md", content: "# Notes\n" }),
      call("list_projects"),
      call("list_project_files", { projectName: "catwalk" }),
      call("memory_bank_read", { projectName: "catwalk", fileName: "notes.md" }),
      call("memory_bank_update", { projectName: "catwalk", fileName: "notes.md", content: "# Notes, updated\n" }),
      call("memory_bank_read", { projectName: "catwalk", fileName: "missing.md" }),
    ],
  },
];

const serveArgs = (entry, sandbox) => [
  "--package", entry.spec, "--sandbox", sandbox,
  ...(sandbox === "wasi" ? (entry.dirs ?? []).flatMap((d) => ["--dir", d]) : []),
  ...(entry.args?.length ? ["--", ...entry.args] : []),
];

describe("packed npm servers answer as Node does", () => {
  for (const entry of packages) {
    test(entry.spec, async () => {
      entry.setup?.();
      const npx = await startCatwalk(serveArgs(entry, "npx"), entry.env);
      const node = await transcript(npx.base, entry.calls).finally(() => npx.stop());
      entry.setup?.();
      const wasi = await startCatwalk(serveArgs(entry, "wasi"), entry.env);
      const packed = await transcript(wasi.base, entry.calls).finally(() => wasi.stop());
      assert.ok(node.tools?.tools?.length > 0, `Node listed tools: ${JSON.stringify(node.tools)}`);
      node.calls.forEach((answer, i) => assert.deepEqual(packed.calls[i], answer, `call ${i} of ${entry.spec}`));
      assert.deepEqual(packed, node);
      assert.ok(wasi.logs.some((l) => l.includes("serving the package packed to WASI")), "catwalk served the packed build");
      for (const [attempt, why] of entry.unsupported ?? []) {
        const again = await startCatwalk(serveArgs(entry, "wasi"), entry.env);
        const seen = await transcript(again.base, [attempt]).finally(() => again.stop());
        const answer = seen.calls[0];
        assert.ok(answer.isError || answer.error, "what the sandbox lacks fails, and says so");
        assert.match(answer.error?.message ?? answer.content[0].text, why);
      }
    });
  }
});

// The Node layer's own answers, against Node's: tests/fixtures/egress-package's `urls` takes URL and URLSearchParams
// through their corners.
test("URL and URLSearchParams answer as Node's do", async () => {
  const entry = { spec: path.join(repo, "tests/fixtures/egress-package"), calls: [call("urls")] };
  const npx = await startCatwalk(serveArgs(entry, "npx"));
  const node = await transcript(npx.base, entry.calls).finally(() => npx.stop());
  const wasi = await startCatwalk(serveArgs(entry, "wasi"));
  const packed = await transcript(wasi.base, entry.calls).finally(() => wasi.stop());
  assert.ok(wasi.logs.some((l) => l.includes("serving the package packed to WASI")), "catwalk served the packed build");
  assert.ok(!node.calls[0].isError && JSON.parse(node.calls[0].content[0].text).length > 40, JSON.stringify(node.calls[0]));
  assert.deepEqual(JSON.parse(packed.calls[0].content[0].text), JSON.parse(node.calls[0].content[0].text));
});

// The Node layer's zlib, V8 stack-trace API, stubbed built-ins and missing optional modules, against Node's:
// tests/fixtures/layers-package answers with facts that do not depend on paths or on which compressor ran.
describe("the Node layer answers as Node does", () => {
  const sample = `catwalk compresses ${"this ".repeat(100)}✓`;
  const entry = {
    spec: path.join(repo, "tests/fixtures/layers-package"),
    calls: [call("zlib"), call("stacks"), call("depd"), call("extends"), call("compress", { text: sample }), call("intl"), call("channels"), call("messages"), call("process")],
  };
  const answers = {};
  before(async () => {
    const npx = await startCatwalk(serveArgs(entry, "npx"));
    answers.node = await transcript(npx.base, entry.calls).finally(() => npx.stop());
    const wasi = await startCatwalk(serveArgs(entry, "wasi"));
    answers.packed = await transcript(wasi.base, entry.calls).finally(() => wasi.stop());
    assert.ok(wasi.logs.some((l) => l.includes("serving the package packed to WASI")), "catwalk served the packed build");
  });
  const answer = (run, i) => {
    const result = answers[run].calls[i];
    assert.ok(!result.isError && !result.error, `${run}: ${JSON.stringify(result)}`);
    return JSON.parse(result.content[0].text);
  };

  test("zlib: gzip, deflate and brotli, one-shot, callbacks and streams, and their errors", () => {
    const node = answer("node", 0);
    assert.deepEqual(node.roundTrips, [true, true, true, true, true, true]);
    assert.equal(node.errors.notGzip.code, "Z_DATA_ERROR");
    assert.deepEqual(answer("packed", 0), node);
  });
  test("what the packed server compresses, Node decompresses", () => {
    const packed = answer("packed", 4);
    assert.equal(zlib.gunzipSync(Buffer.from(packed.gzip, "base64")).toString(), sample);
    assert.equal(zlib.inflateSync(Buffer.from(packed.deflate, "base64")).toString(), sample);
    assert.equal(zlib.inflateRawSync(Buffer.from(packed.deflateRaw, "base64")).toString(), sample);
    assert.equal(zlib.brotliDecompressSync(Buffer.from(packed.brotli, "base64")).toString(), sample);
  });
  test("V8's stack-trace API: captureStackTrace, prepareStackTrace, call sites, stackTraceLimit", () => {
    const node = answer("node", 1);
    assert.equal(node.head, "Error: boom");
    assert.deepEqual(node.missing, []);
    assert.deepEqual(answer("packed", 1), node);
  });
  test("depd (express's) finds its callers and reports deprecations", () => {
    const node = answer("node", 2);
    assert.equal(node.seen.length, 2);
    assert.deepEqual(answer("packed", 2), node);
  });
  test("Intl: dates in IANA time zones, numbers, plurals, collation, segmentation and the toLocale methods, for en-US", () => {
    const node = answer("node", 5);
    assert.ok(node.length > 1400, `${node.length} cases`);
    const packed = answer("packed", 5);
    assert.equal(packed.length, node.length);
    const differ = node.filter(([label, value], i) => packed[i][0] !== label || packed[i][1] !== value)
      .map(([label, value], i) => `${label}: Node ${JSON.stringify(value)}, packed ${JSON.stringify(packed[node.indexOf(node.find((c) => c[0] === label))][1])}`);
    assert.deepEqual(differ, []);
  });
  test("diagnostics_channel: channels and tracing channels publish to their subscribers", () => {
    const node = answer("node", 6);
    assert.equal(node.sum, 9);
    assert.ok(node.events.length >= 6, JSON.stringify(node.events));
    assert.deepEqual(answer("packed", 6), node);
  });
  test("MessageChannel and worker_threads within the thread, windows-1252 and UTF-16 text, built-ins required by a computed name", () => {
    const node = answer("node", 7);
    assert.equal(node.emitted, "emitter style");
    assert.equal(node.latin1, "H\u00e9\u20ac\u201c\u0178\u00ffA");
    assert.deepEqual(answer("packed", 7), node);
  });
  test("a class extending a stubbed built-in evaluates, an optional module not installed fails where it is required, and require.resolve answers from the requiring file", () => {
    const node = answer("node", 3);
    assert.deepEqual(node, { parent: "function", subclass: true, name: "Pool", optional: { missing: "MODULE_NOT_FOUND" }, where: "catwalk-layers-package" });
    assert.deepEqual(answer("packed", 3), node);
  });
  test("process.cpuUsage, process.memoryUsage.rss and perf_hooks, as OpenTelemetry's metrics read them", () => {
    const node = answer("node", 8);
    assert.deepEqual(node.cpu, [["user", "number", true], ["system", "number", true]]);
    assert.equal(node.perfConstants.NODE_PERFORMANCE_GC_MAJOR, 4);
    assert.deepEqual(answer("packed", 8), node);
  });
});

// server-everything's gzip-file-as-resource, on a data: URL: the packed server fetches it, gzips it and hands
// it back; the blobs differ by compressor, so what they hold is compared.
test("server-everything's gzip-file-as-resource gzips what it fetched", async () => {
  const content = "gzip me ".repeat(64);
  const entry = {
    spec: "@modelcontextprotocol/server-everything@2026.8.31",
    calls: [call("gzip-file-as-resource", { name: "a.txt.gz", data: `data:text/plain;base64,${Buffer.from(content).toString("base64")}`, outputType: "resource" })],
  };
  const unzipped = (seen) => {
    const result = seen.calls[0];
    assert.ok(!result.isError && !result.error, JSON.stringify(result));
    const { resource } = result.content[0];
    return { mimeType: resource.mimeType, uri: resource.uri, text: zlib.gunzipSync(Buffer.from(resource.blob, "base64")).toString() };
  };
  const npx = await startCatwalk(serveArgs(entry, "npx"));
  const node = unzipped(await transcript(npx.base, entry.calls).finally(() => npx.stop()));
  const wasi = await startCatwalk(serveArgs(entry, "wasi"));
  const packed = unzipped(await transcript(wasi.base, entry.calls).finally(() => wasi.stop()));
  assert.equal(node.text, content);
  assert.deepEqual(packed, node);
});

describe("grants", () => {
  test("server-memory keeps its graph across sessions only in the directory it was granted", async () => {
    const data = path.join(work, "granted");
    mkdirSync(data);
    const spec = "@modelcontextprotocol/server-memory@2026.8.31";
    const file = path.join(data, "memory.jsonl");
    const catwalk = await startCatwalk(["--package", spec, "--sandbox", "wasi", "--dir", `${data}::/data:rw`], { MEMORY_FILE_PATH: "/data/memory.jsonl" });
    try {
      await transcript(catwalk.base, [call("create_entities", { entities: [{ name: "Grace", entityType: "person", observations: ["found a moth"] }] })]);
      const later = await transcript(catwalk.base, [call("open_nodes", { names: ["Grace"] })]);
      assert.match(later.calls[0].content[0].text, /found a moth/, "a second session reads what the first wrote");
      assert.match(readFileSync(file, "utf8"), /"Grace"/, "the graph is in the granted directory on the host");
    } finally {
      await catwalk.stop();
    }

    const ungranted = await startCatwalk(["--package", spec, "--sandbox", "wasi"], { MEMORY_FILE_PATH: "/data/memory.jsonl" });
    try {
      const seen = await transcript(ungranted.base, [
        call("create_entities", { entities: [{ name: "Grace", entityType: "person", observations: ["x"] }] }),
        call("read_graph"),
      ]);
      assert.equal(seen.calls[0].isError, true, "writing without a grant fails");
      assert.match(seen.calls[0].content[0].text, /ENOENT|EPERM|EACCES|EROFS/, "with the error Node would give");
      assert.equal(seen.calls[1].isError, undefined, "and the server goes on answering");
      assert.match(seen.calls[1].content[0].text, /"entities": \[\]/);
    } finally {
      await ungranted.stop();
    }
  });

  test("server-filesystem with a read-only grant cannot write", async () => {
    const dir = mkdtempSync(path.join(work, "ro-"));
    writeFileSync(path.join(dir, "kept.txt"), "unchanged\n");
    const catwalk = await startCatwalk([
      "--package", "@modelcontextprotocol/server-filesystem@2026.8.31", "--sandbox", "wasi", "--dir", `${dir}::${dir}:ro`, "--", dir,
    ]);
    try {
      const seen = await transcript(catwalk.base, [
        call("read_text_file", { path: path.join(dir, "kept.txt") }),
        call("write_file", { path: path.join(dir, "new.txt"), content: "no" }),
        call("write_file", { path: path.join(dir, "kept.txt"), content: "changed" }),
        call("create_directory", { path: path.join(dir, "sub") }),
      ]);
      assert.equal(seen.calls[0].content[0].text, "unchanged\n");
      for (const attempt of seen.calls.slice(1)) assert.equal(attempt.isError, true, JSON.stringify(attempt));
      assert.equal(existsSync(path.join(dir, "new.txt")), false);
      assert.equal(existsSync(path.join(dir, "sub")), false);
      assert.equal(readFileSync(path.join(dir, "kept.txt"), "utf8"), "unchanged\n");
    } finally {
      await catwalk.stop();
    }
  });
});

describe("a hostile packed server is stopped", () => {
  let catwalk;
  before(async () => {
    catwalk = await startCatwalk([
      "--package", path.join(repo, "tests/fixtures/hostile-js-package"), "--sandbox", "wasi",
      "--cpu-budget", "500ms", "--memory", "48MiB",
    ]);
  });
  after(() => catwalk.stop());

  test("it cannot read the host's files", async () => {
    const seen = await transcript(catwalk.base, [call("read_file", { path: "/etc/passwd" }), call("read_file", { path: "/proc/self/environ" })]);
    for (const attempt of seen.calls) {
      assert.equal(attempt.isError, true);
      assert.doesNotMatch(attempt.content[0].text, /root:|PATH=/);
    }
  });

  for (const [tool, why] of [["spin", /CPU budget/], ["hoard", /memory|exited|trap|unreachable/i]]) {
    test(`${tool}: its session ends, and another session still works`, async () => {
      const seen = await transcript(catwalk.base, [call(tool)]);
      assert.ok(seen.calls[0].error, `the call failed: ${JSON.stringify(seen.calls[0])}`);
      assert.match(seen.calls[0].error.message, why);
      const after = await transcript(catwalk.base, [call("ping")]);
      assert.equal(after.calls[0].content[0].text, "pong");
    });
  }
});

test("packing on first use has catwalk pack's memory for its steps, whatever --memory the server gets", async () => {
  // 16 MiB holds this server, and compiling its bundle to bytecode needs more. Copied to a path of its own, so
  // that it is packed here rather than found packed.
  const copy = mkdtempSync(path.join(tmpdir(), "catwalk-small-server-"));
  cpSync(path.join(repo, "tests/fixtures/hostile-js-package"), copy, { recursive: true });
  try {
    const catwalk = await startCatwalk(["--package", copy, "--sandbox", "wasi", "--memory", "16MiB"]);
    try {
      const seen = await transcript(catwalk.base, [call("ping")]);
      assert.equal(seen.calls[0].content[0].text, "pong");
    } finally {
      await catwalk.stop();
    }
  } finally {
    rmSync(copy, { recursive: true, force: true });
  }
});

// A server that fetches its tool list from its API (as Supabase's does) answers tools/list with an error while
// its API is out of reach, under Node too: packing, whose smoke test has only the tenant's grants, packs it and
// says why it has no list; a tenant granted the API is served the list.
describe("a server whose tools/list needs its API", () => {
  const fixture = path.join(repo, "tests/fixtures/listing-package");
  const bin = process.env.CATWALK_BIN ?? path.join(repo, "target/debug/catwalk");
  // Each test in a state dir of its own: an artifact packed once is not smoke-tested again.
  const states = [];
  const newState = () => {
    const state = mkdtempSync(path.join(tmpdir(), "catwalk-listing-state-"));
    chmodSync(state, 0o755);
    states.push(state);
    return state;
  };
  after(() => states.forEach((state) => rmSync(state, { recursive: true, force: true })));
  const pack = async (state, args, env = []) => {
    const { execFileSync } = await import("node:child_process");
    const flags = env.flatMap((e) => ["--env", e]);
    return JSON.parse(execFileSync(bin, ["pack", fixture, "--json", "--state-dir", state, ...flags, "--", ...args], { encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] }));
  };

  test("packs without the network and says why it has no list; a tenant granted its API is served the list", async () => {
    const state = newState();
    const manifest = await pack(state, []);
    assert.deepEqual(manifest.tools, []);
    assert.match(manifest.unlisted ?? "", /tools\/list was answered with an error \(.*fetch failed.*\) after \d+ of its requests went unanswered/, JSON.stringify(manifest));
    const { fakeApi } = await import("./fake-api.mjs");
    const api = await fakeApi(["api.test"], work);
    const config = path.join(work, "listing-tenants.toml");
    writeFileSync(config, [
      "[[tenant]]", 'id = "granted"', `package = ${JSON.stringify(fixture)}`, 'sandbox = "wasi"',
      'env = { TOOLS_API = "https://api.test" }', 'egress = ["https://api.test"]',
      `egress_resolve = ["api.test:443=127.0.0.1:${api.port}"]`, "",
    ].join("\n"));
    const catwalk = await startCatwalk(["--config", config, "--state-dir", state, "--egress-ca", api.ca]);
    try {
      const seen = await transcript(`${catwalk.base}/t/granted`, []);
      assert.deepEqual(seen.tools.tools.map((t) => t.name), ["from_api_test"], JSON.stringify(seen.tools));
      assert.equal((await api.requests()).at(-1)?.host, "api.test");
    } finally {
      await catwalk.stop();
      api.stop();
    }
  });

  test("a tools/list that fails without asking the network still fails the smoke test, and its token is not quoted", async () => {
    const token = "list-token-0123456789";
    await assert.rejects(pack(newState(), ["broken"], [`LIST_TOKEN=${token}`]), (error) => {
      assert.match(String(error.stderr), /failed its smoke test: tools\/list was answered with an error: .*listTools is not a function \(token \[redacted\]\)/);
      assert.ok(!String(error.stderr).includes(token), String(error.stderr));
      return true;
    });
  });
});

describe("a snapshot taken through the package's start", () => {
  const fixture = path.join(repo, "tests/fixtures/start-package");
  const bin = process.env.CATWALK_BIN ?? path.join(repo, "target/debug/catwalk");
  // Each in a state dir of its own: an artifact's snapshots are taken for the arguments it is first packed with.
  const pack = async (args, env = []) => {
    const { execFileSync } = await import("node:child_process");
    const state = mkdtempSync(path.join(tmpdir(), "catwalk-start-state-"));
    chmodSync(state, 0o755);
    const manifest = JSON.parse(execFileSync(bin, ["pack", fixture, "--json", "--state-dir", state, ...env.flatMap((e) => ["--env", e]), "--", ...args], { encoding: "utf8" }));
    return { manifest, state };
  };

  test("serves the arguments it was taken with and an env it did not read; each instance has its own env, arguments and randomness", async () => {
    const { manifest, state } = await pack([]);
    assert.equal(manifest.started?.usable, true, JSON.stringify(manifest.started));
    assert.ok(manifest.started.env.includes("START_GREETING"), JSON.stringify(manifest.started.env));
    const config = path.join(work, "start-tenants.toml");
    const tenant = (id, env) => [
      "[[tenant]]", `id = "${id}"`, `package = ${JSON.stringify(fixture)}`, 'sandbox = "wasi"',
      `env = { ${Object.entries(env).map(([k, v]) => `${k} = ${JSON.stringify(v)}`).join(", ")} }`, "",
    ].join("\n");
    writeFileSync(config, [tenant("plain", { LATER: "read later" }), tenant("greeted", { START_GREETING: "hello" })].join("\n"));
    const catwalk = await startCatwalk(["--config", config, "--state-dir", state]);
    try {
      const started = (id) => catwalk.logs.find((l) => l.includes("serving the package packed to WASI") && l.includes(id));
      const answer = async (id) => JSON.parse((await transcript(`${catwalk.base}/t/${id}`, [call("start")])).calls[0].content[0].text);
      const [first, second] = [await answer("plain"), await answer("plain")];
      assert.match(started("plain"), /started\.wasm/);
      assert.deepEqual({ ...first, random: 0 }, { greeting: "unset", later: "read later", argv: [], random: 0 });
      assert.notEqual(first.random, second.random, "each instance draws its own numbers");
      // What the start printed, each instance prints as it starts.
      assert.ok(catwalk.logs.some((l) => l.includes("guest stderr: start-package ready, greeting unset")), catwalk.logs.join("\n"));
      // A tenant whose env sets what the start read gets the snapshot taken before the start.
      const greeted = await answer("greeted");
      assert.match(started("greeted"), /snapshot\.wasm/);
      assert.equal(greeted.greeting, "hello");
    } finally {
      await catwalk.stop();
      rmSync(state, { recursive: true, force: true });
    }
  });

  test("a server that exits as it starts fails its smoke test, and says how it ended", async () => {
    await assert.rejects(pack(["exit"]), (error) => {
      assert.match(String(error.stderr), /failed its smoke test: the server exited with status 1 before it (read|answered) initialize/, String(error.stderr));
      return true;
    });
  });

  const cases = [
    ["randomness", "random", /randomness/],
    ["a file outside its package", "outside", /the file system outside the package/],
    // The smoke test has the token; the snapshot through the start has no env.
    ["an exit (no token in its env)", "exit", /process\.exit\(1\)/, ["START_TOKEN=x"]],
  ];
  for (const [what, mode, why, env] of cases) {
    test(`a start that uses ${what} is not snapshotted, and says why`, async () => {
      const { manifest, state } = await pack([mode], env);
      try {
        assert.equal(manifest.started?.usable, false, JSON.stringify(manifest.started));
        assert.match(manifest.started.reason, why);
        assert.equal(manifest.snapshot?.usable, true, "the snapshot before the start still serves it");
      } finally {
        rmSync(state, { recursive: true, force: true });
      }
    });
  }
});

describe("serving a package that cannot be packed", () => {
  const fixture = path.join(repo, "tests/fixtures/needs-node-package");

  test("--sandbox wasi refuses to start, and says why", async () => {
    await assert.rejects(startCatwalk(["--package", fixture, "--sandbox", "wasi"]), /cannot run sandboxed.*smoke test.*child_process\.execFileSync is not available in catwalk's sandbox/s);
  });

  test("--sandbox wasi-or-npx runs it through npx, with a warning saying why", async () => {
    const catwalk = await startCatwalk(["--package", fixture, "--sandbox", "wasi-or-npx"]);
    try {
      const seen = await transcript(catwalk.base, []);
      assert.equal(seen.server.name, "needs-node");
      assert.match(seen.tools.tools[0].description, /host \(.+\)/);
      assert.ok(catwalk.logs.some((l) => /runs through npx/.test(l) && /child_process\.execFileSync is not available/.test(l)), "the warning names the reason");
    } finally {
      await catwalk.stop();
    }
  });
});

describe("a tenant's package packed to WASI", () => {
  test("sandbox = \"wasi\" with args, on the tenant's route", async () => {
    const dir = mkdtempSync(path.join(work, "tenant-"));
    writeFileSync(path.join(dir, "shared.txt"), "for the tenant\n");
    const config = path.join(work, "tenants.toml");
    writeFileSync(config, [
      "[[tenant]]",
      'id = "docs"',
      'package = "@modelcontextprotocol/server-filesystem@2026.8.31"',
      'sandbox = "wasi"',
      `args = [${JSON.stringify(dir)}]`,
      // A package tenant's grants are host paths (as its npx children see them); packed, each is granted at
      // the same path in the guest.
      `dirs = [${JSON.stringify(`${dir}:ro`)}]`,
      "",
    ].join("\n"));
    // A tenants file run as root keeps its state where tenants' uids can reach (not below /root).
    const state = mkdtempSync(path.join(tmpdir(), "catwalk-tenant-state-"));
    chmodSync(state, 0o755);
    const catwalk = await startCatwalk(["--config", config, "--state-dir", state]);
    try {
      const seen = await transcript(`${catwalk.base}/t/docs`, [call("read_text_file", { path: path.join(dir, "shared.txt") })]);
      assert.equal(seen.calls[0].content[0].text, "for the tenant\n");
      assert.ok(catwalk.logs.some((l) => l.includes("serving the package packed to WASI") && l.includes("docs")));
    } finally {
      await catwalk.stop();
    }
  });
});

describe("catwalk pack", () => {
  test("packs once: the second time the same artifact comes from the cache", async () => {
    const { execFileSync } = await import("node:child_process");
    const bin = process.env.CATWALK_BIN ?? path.join(repo, "target/debug/catwalk");
    const state = process.env.CATWALK_STATE_DIR ?? path.join(repo, "target/test-state");
    const pack = () => JSON.parse(execFileSync(bin, ["pack", "@modelcontextprotocol/server-sequential-thinking@2026.8.31", "--json", "--state-dir", state], { encoding: "utf8" }));
    const first = pack();
    const second = pack();
    assert.equal(second.sha256, first.sha256);
    assert.deepEqual(first.tools, ["sequentialthinking"]);
    assert.ok(first.bytecode_bytes > 0);
  });

  test("a local folder is packed again when its files change, and not before", async () => {
    const { execFileSync } = await import("node:child_process");
    const bin = process.env.CATWALK_BIN ?? path.join(repo, "target/debug/catwalk");
    const state = process.env.CATWALK_STATE_DIR ?? path.join(repo, "target/test-state");
    const folder = path.join(work, "local-package");
    mkdirSync(folder, { recursive: true });
    writeFileSync(path.join(folder, "package.json"), JSON.stringify({ name: "local-package", version: "1.0.0", type: "module", bin: { "local-package": "server.mjs" } }));
    const server = readFileSync(path.join(repo, "tests/fixtures/plain-server.mjs"), "utf8");
    writeFileSync(path.join(folder, "server.mjs"), server);
    // The state dir given relative to the working dir, as an operator may.
    const pack = () => JSON.parse(execFileSync(bin, ["pack", folder, "--json", "--state-dir", path.basename(state)], { cwd: path.dirname(state), encoding: "utf8" }));
    const first = pack();
    assert.equal(pack().sha256, first.sha256, "unchanged, it comes from the cache");
    writeFileSync(path.join(folder, "server.mjs"), server.replace("whoami:", "who_am_i:"));
    const edited = pack();
    assert.notEqual(edited.sha256, first.sha256);
    assert.ok(first.tools.includes("whoami") && !first.tools.includes("who_am_i"), JSON.stringify(first.tools));
    assert.ok(edited.tools.includes("who_am_i") && !edited.tools.includes("whoami"), JSON.stringify(edited.tools));
  });

  test("a package with a native addon is refused, and says which", async () => {
    const { spawnSync } = await import("node:child_process");
    const bin = process.env.CATWALK_BIN ?? path.join(repo, "target/debug/catwalk");
    const state = process.env.CATWALK_STATE_DIR ?? path.join(repo, "target/test-state");
    const out = spawnSync(bin, ["pack", path.join(repo, "tests/fixtures/native-addon-package"), "--state-dir", state], { encoding: "utf8", env: { ...process.env, RUST_BACKTRACE: "0" } });
    assert.notEqual(out.status, 0);
    assert.match(out.stderr, /native addons.*build\/Release\/addon\.node/);
  });
});
