// The bundling step of `catwalk pack`, run by Node with the tools installed beside this file:
//   node pack.mjs '{"root": ".../app", "bin": ".../app/node_modules/pkg/dist/index.js", "out": ".../app/main.mjs"}'
// Bundles the package's bin, with everything it imports, into one ES module for catwalk-js. Node's built-ins
// come from the compatibility layer beside this file or from maintained npm polyfills; the rest become stubs
// that throw a clear error when used. Prints a JSON report: the stubbed built-ins and the native addons found.
import { build } from "esbuild";
import { existsSync } from "node:fs";
import { readFile, readdir, writeFile } from "node:fs/promises";
import { builtinModules, createRequire } from "node:module";
import path from "node:path";
import { fileURLToPath } from "node:url";

const tools = path.dirname(fileURLToPath(import.meta.url));
const require = createRequire(import.meta.url);
const { root, bin, out } = JSON.parse(process.argv[2]);
// Where the package tree is mounted in the sandbox.
const GUEST_ROOT = "/app";

const LAYER = {
  fs: "fs.js", "fs/promises": "fs-promises.js", os: "os.js", crypto: "crypto.js", module: "module.js", url: "url.js",
  timers: "timers.js", "timers/promises": "timers-promises.js", process: "process.js", tty: "tty.js",
  perf_hooks: "perf_hooks.js", async_hooks: "async_hooks.js", assert: "assert.js", "assert/strict": "assert.js",
  readline: "readline.js", constants: "constants.js", http: "http.js", https: "https.js", dns: "dns.js",
  "dns/promises": "dns-promises.js", net: "net.js", tls: "tls.js", http2: "http2.js", zlib: "zlib.js",
  diagnostics_channel: "diagnostics_channel.js", worker_threads: "worker_threads.js", util: "util.js",
  "util/types": "util-types.js",
};
const POLYFILLS = {
  events: "events", buffer: "buffer", string_decoder: "string_decoder", path: "path-browserify",
  "path/posix": "path-browserify", stream: "readable-stream", punycode: "punycode",
  querystring: "querystring-es3",
};
const builtins = new Set(builtinModules);
const stubbed = new Map();
// Modules required but not installed (optional dependencies): name → first importer.
const missing = new Map();
const addons = new Set();
// Addons the bin's imports reach: those make the package unpackable.
const imported = new Set();

const guestPath = (file) => `${GUEST_ROOT}/${path.relative(root, file).split(path.sep).join("/")}`;

const sandbox = {
  name: "catwalk-sandbox",
  setup(b) {
    // undici, an npm package rather than a built-in: its own client needs WebAssembly and sockets, so the layer's
    // (undici.js, over the layer's fetch) stands in for it.
    b.onResolve({ filter: /^undici$/ }, () => ({ path: "undici.js", namespace: "catwalk-builtin" }));
    b.onResolve({ filter: /^(node:)?[a-z0-9_]+(\/[a-z0-9_]+)?$/ }, (args) => {
      const name = args.path.replace(/^node:/, "");
      if (!builtins.has(name) && !args.path.startsWith("node:")) return undefined;
      // Node's built-ins are plain objects packages patch (graceful-fs replaces fs.close): each layer module
      // reaches the bundle as CommonJS around its default object, which can be written, not as a namespace.
      // The polyfills' own `require("util")` (inherits asks for util.inherits) gets the polyfill: the layer's
      // util.js is built on it, and would be required while it is still being evaluated.
      if (name === "util" && args.importer.startsWith(path.join(tools, "node_modules") + path.sep)) {
        return { path: require.resolve("util/") };
      }
      if (LAYER[name]) return { path: LAYER[name], namespace: "catwalk-builtin" };
      // The trailing slash asks for the npm package, not the built-in of the same name.
      if (POLYFILLS[name]) return { path: require.resolve(`${POLYFILLS[name]}/`) };
      const importer = path.relative(root, args.importer);
      if (!stubbed.has(name)) stubbed.set(name, importer);
      return { path: name, namespace: "catwalk-stub" };
    });
    b.onLoad({ filter: /.*/, namespace: "catwalk-builtin" }, (args) => ({
      loader: "js",
      resolveDir: tools,
      contents: `module.exports = require(${JSON.stringify(path.join(tools, args.path))}).default;`,
    }));
    // A native addon cannot run in the sandbox. One the bin imports statically refuses the package; one it
    // requires (often in a try/catch, with a JavaScript fallback) fails when required, as a missing build does.
    b.onResolve({ filter: /\.node$/ }, (args) => {
      const addon = path.relative(root, path.resolve(args.resolveDir, args.path));
      addons.add(addon);
      if (args.kind !== "require-call" && args.kind !== "dynamic-import") imported.add(addon);
      return { path: args.path, namespace: "catwalk-missing" };
    });
    b.onLoad({ filter: /.*/, namespace: "catwalk-stub" }, async (args) => ({
      loader: "js",
      contents: `const what = ${JSON.stringify(args.path)};
const unavailable = (key) => function () {
  throw Object.assign(new Error(what + (key ? "." + key : "") + " is not available in catwalk's sandbox"), { code: "ERR_CATWALK_SANDBOX" });
};
const trap = new Proxy({}, {
  get: (_, key) => (typeof key === "symbol" || key === "__esModule" || key === "default" || key === "then" ? undefined : unavailable(key)),
});
module.exports = Object.create(trap);
${await stubExports(args.path)}`,
    }));
    // A module that is not there (an optional dependency not installed) fails where Node fails: when it is
    // required or dynamically imported, which a package guards with try/catch. A static import of one is still
    // a bundling error, as it is an error for Node at start. Only packages are looked for (a bare name): each
    // look is a second resolution, and a tree such as an API client's requires thousands of its own files.
    b.onResolve({ filter: /^[^./]/ }, async (args) => {
      if (args.pluginData?.catwalkRetry || (args.kind !== "require-call" && args.kind !== "dynamic-import")) return undefined;
      const found = await b.resolve(args.path, {
        kind: args.kind, importer: args.importer, resolveDir: args.resolveDir, pluginData: { catwalkRetry: true },
      });
      if (found.errors.length === 0) return undefined;
      const importer = path.relative(root, args.importer);
      if (!missing.has(args.path)) missing.set(args.path, importer);
      return { path: args.path, namespace: "catwalk-missing" };
    });
    b.onLoad({ filter: /.*/, namespace: "catwalk-missing" }, (args) => {
      const message = args.path.endsWith(".node")
        ? `Cannot load '${args.path}': native addons are not available in catwalk's sandbox`
        : `Cannot find module '${args.path}'`;
      return { loader: "js", contents: `throw Object.assign(new Error(${JSON.stringify(message)}), { code: "MODULE_NOT_FOUND" });` };
    });
    // Each file of the package tree learns where it is in the sandbox: import.meta.url and friends,
    // __dirname/__filename in CommonJS, and `require.resolve`, which answers from the file's place in the tree as
    // Node's does (the bundle's own require would answer from the bundle's).
    b.onLoad({ filter: /\.[cm]?js$/ }, async (args) => {
      if (!args.path.startsWith(root + path.sep)) return undefined;
      let contents = await readFile(args.path, "utf8");
      const file = guestPath(args.path);
      if (contents.includes("import.meta")) {
        contents = contents
          .replaceAll("import.meta.url", JSON.stringify(`file://${file}`))
          .replaceAll("import.meta.dirname", JSON.stringify(path.posix.dirname(file)))
          .replaceAll("import.meta.filename", JSON.stringify(file));
      }
      const declarations = [];
      if (/\b__(dirname|filename)\b/.test(contents) && !/\b(const|let|var)\s+__(dirname|filename)\b/.test(contents)) {
        declarations.push(`__filename = ${JSON.stringify(file)}, __dirname = ${JSON.stringify(path.posix.dirname(file))}`);
      }
      const resolve = /(?<![\w$.])require\.resolve\(/g;
      if (resolve.test(contents)) {
        contents = contents.replace(resolve, "__catwalk_resolve(");
        declarations.push(`__catwalk_resolve = require("module").createRequire(${JSON.stringify(file)}).resolve`);
      }
      if (declarations.length > 0) {
        // After a hashbang and a "use strict" directive, on the same line, so both still count and line
        // numbers stay.
        const head = /^(?:#![^\n]*\n)?(?:\s*(?:\/\/[^\n]*\n|\/\*[\s\S]*?\*\/))*\s*(?:(["'])use strict\1;?)?/.exec(contents)[0];
        contents = `${head};var ${declarations.join(", ")};${contents.slice(head.length)}`;
      }
      return { contents, loader: "js" };
    });
  },
};

// A stubbed built-in's exports by their real names, read from this Node: classes and functions that throw when
// called (so that "class Pool extends Worker {}" still evaluates), and its plain values (isMainThread).
async function stubExports(name) {
  if (!builtins.has(name)) return "";
  let real;
  try { real = await import(`node:${name}`); } catch { return ""; }
  const lines = [];
  for (const key of Object.keys(real.default ?? real)) {
    if (!/^[A-Za-z_$][\w$]*$/.test(key) || key === "default") continue;
    const value = (real.default ?? real)[key];
    if (typeof value === "function") {
      lines.push(`module.exports.${key} = { ${key}: function () { return unavailable(${JSON.stringify(key)})(); } }.${key};`);
    } else if (value === null || ["string", "number", "boolean", "undefined"].includes(typeof value)) {
      lines.push(`module.exports.${key} = ${value === undefined ? "undefined" : JSON.stringify(value)};`);
    }
  }
  return lines.join("\n");
}

// Native addons anywhere in the tree, whether or not the bin reaches them.
async function findAddons(dir) {
  for (const entry of await readdir(dir, { withFileTypes: true })) {
    const at = path.join(dir, entry.name);
    if (entry.isDirectory()) await findAddons(at);
    else if (entry.name.endsWith(".node") || entry.name === "binding.gyp") addons.add(path.relative(root, at));
  }
}

const options = {
  bundle: true,
  format: "esm",
  platform: "node",
  target: "es2023",
  minify: true,
  keepNames: true,
  legalComments: "none",
  logLevel: "silent",
  plugins: [sandbox],
};

// The package's own files: those of the bin's package, not of its dependencies.
let own = path.dirname(bin);
while (own.startsWith(root) && !existsSync(path.join(own, "package.json"))) own = path.dirname(own);
const isOwn = (file) => file.startsWith(own + path.sep) && !path.relative(own, file).split(path.sep).includes("node_modules");

// What the package's own files import statically, in the order Node evaluates them: catwalk's snapshot (made at
// pack time) evaluates these, and the package's own code runs when an instance starts (it reads the instance's
// env and arguments). A module of the package imported only by `require` or `import()` stays where it is.
async function dependencies() {
  const probe = await build({ ...options, entryPoints: [bin], write: false, metafile: true, absWorkingDir: root }).catch(() => null);
  if (!probe) return { eager: [], inputs: [] };
  const seen = new Set();
  const eager = [];
  const visit = (key) => {
    if (seen.has(key)) return;
    seen.add(key);
    for (const record of probe.metafile.inputs[key]?.imports ?? []) {
      if (record.external || record.kind !== "import-statement") continue;
      const file = record.path.includes(":") ? null : path.join(root, record.path);
      if (file && isOwn(file)) visit(record.path);
      else if (!eager.includes(file ?? record.original)) eager.push(file ?? record.original);
    }
  };
  visit(path.relative(root, bin));
  return { eager, inputs: Object.keys(probe.metafile.inputs).map((key) => (key.includes(":") ? key : path.join(root, key))) };
}

const entry = path.join(root, "catwalk-entry.mjs");
const globals = `import ${JSON.stringify(path.join(tools, "globals.js"))};\n`;
const { eager, inputs } = await dependencies();
// The MCP SDK's message schemas, run over a client's first messages while the snapshot is taken (mcp-warm.js):
// each copy of the SDK the bundle holds, whether the package imports it statically or with `import()`.
const sdks = [...new Set(inputs.map((d) => /^(.*\/node_modules\/@modelcontextprotocol\/sdk\/dist\/(?:esm|cjs))\//.exec(d)?.[1]).filter(Boolean))]
  .map((dir) => path.join(dir, "types.js"))
  .filter((file) => existsSync(file));
const warm = sdks.length === 0 ? "" : `import { warm as __catwalkWarm } from ${JSON.stringify(path.join(tools, "mcp-warm.js"))};\n${sdks
  .map((file, i) => `import * as __catwalkMcp${i} from ${JSON.stringify(file)};\n__catwalkWarm(__catwalkMcp${i});\n`)
  .join("")}`;
const lazy = `${globals}${eager.map((d) => `import ${JSON.stringify(d)};\n`).join("")}${warm}export default () => import(${JSON.stringify(bin)});\n`;
await writeFile(entry, lazy);
let result = await build({ ...options, entryPoints: [entry], outfile: out }).catch((error) => ({ failed: error }));
if (result.failed && imported.size === 0) {
  // What esbuild cannot load lazily is bundled as before: the whole program evaluated at once.
  await writeFile(entry, `${globals}import ${JSON.stringify(bin)};\n`);
  result = await build({ ...options, entryPoints: [entry], outfile: out }).catch((error) => ({ failed: error }));
}
await findAddons(path.join(root, "node_modules"));
if (!result.failed && imported.size > 0) {
  result.failed = { errors: [{ text: `it imports native addons: ${[...imported].join(", ")}` }] };
}
if (result.failed) {
  const messages = (result.failed.errors ?? []).slice(0, 5).map((e) => `${e.location?.file ?? ""}:${e.location?.line ?? ""}: ${e.text}`);
  process.stdout.write(JSON.stringify({ error: messages.join("; ") || String(result.failed), stubbed: [...stubbed.keys()], addons: [...(imported.size > 0 ? imported : addons)] }));
  process.exit(0);
}
process.stdout.write(JSON.stringify({
  stubbed: [...stubbed.entries()].map(([name, importer]) => ({ name, importer })),
  missing: [...missing.entries()].map(([name, importer]) => ({ name, importer })),
  addons: [...addons],
  warnings: result.warnings.length,
}));
