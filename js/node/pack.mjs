// The bundling step of `catwalk pack`, run by Node with the tools installed beside this file:
//   node pack.mjs '{"root": ".../app", "bin": ".../app/node_modules/pkg/dist/index.js", "out": ".../app/main.mjs"}'
// Bundles the package's bin, with everything it imports, into one ES module for catwalk-js. Node's built-ins
// come from the compatibility layer beside this file or from maintained npm polyfills; the rest become stubs
// that throw a clear error when used. Prints a JSON report: the stubbed built-ins and the native addons found.
import { build } from "esbuild";
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
  "dns/promises": "dns-promises.js", net: "net.js", tls: "tls.js", http2: "http2.js",
};
const POLYFILLS = {
  events: "events", buffer: "buffer", string_decoder: "string_decoder", path: "path-browserify",
  "path/posix": "path-browserify", util: "util", stream: "readable-stream", punycode: "punycode",
  querystring: "querystring-es3",
};
const builtins = new Set(builtinModules);
const stubbed = new Map();
const addons = new Set();
// Addons the bin's imports reach: those make the package unpackable.
const imported = new Set();

const guestPath = (file) => `${GUEST_ROOT}/${path.relative(root, file).split(path.sep).join("/")}`;

const sandbox = {
  name: "catwalk-sandbox",
  setup(b) {
    b.onResolve({ filter: /^(node:)?[a-z0-9_]+(\/[a-z0-9_]+)?$/ }, (args) => {
      const name = args.path.replace(/^node:/, "");
      if (!builtins.has(name) && !args.path.startsWith("node:")) return undefined;
      // Node's built-ins are plain objects packages patch (graceful-fs replaces fs.close): each layer module
      // reaches the bundle as CommonJS around its default object, which can be written, not as a namespace.
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
    b.onResolve({ filter: /\.node$/ }, (args) => {
      const addon = path.relative(root, path.resolve(args.resolveDir, args.path));
      addons.add(addon);
      imported.add(addon);
      return { path: args.path, namespace: "catwalk-stub" };
    });
    b.onLoad({ filter: /.*/, namespace: "catwalk-stub" }, (args) => ({
      loader: "js",
      contents: `const what = ${JSON.stringify(args.path)};
const unavailable = (key) => function () {
  throw Object.assign(new Error(what + (key ? "." + key : "") + " is not available in catwalk's sandbox"), { code: "ERR_CATWALK_SANDBOX" });
};
const trap = new Proxy({}, {
  get: (_, key) => (typeof key === "symbol" || key === "__esModule" || key === "default" || key === "then" ? undefined : unavailable(key)),
});
module.exports = Object.create(trap);`,
    }));
    // Each file of the package tree learns where it is in the sandbox: import.meta.url and friends, and
    // __dirname/__filename in CommonJS.
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
      if (/\b__(dirname|filename)\b/.test(contents) && !/\b(const|let|var)\s+__(dirname|filename)\b/.test(contents)) {
        contents = `var __filename = ${JSON.stringify(file)}, __dirname = ${JSON.stringify(path.posix.dirname(file))};\n${contents}`;
      }
      return { contents, loader: "js" };
    });
  },
};

// Native addons anywhere in the tree, whether or not the bin reaches them.
async function findAddons(dir) {
  for (const entry of await readdir(dir, { withFileTypes: true })) {
    const at = path.join(dir, entry.name);
    if (entry.isDirectory()) await findAddons(at);
    else if (entry.name.endsWith(".node") || entry.name === "binding.gyp") addons.add(path.relative(root, at));
  }
}

const entry = path.join(root, "catwalk-entry.mjs");
await writeFile(entry, `import ${JSON.stringify(path.join(tools, "globals.js"))};\nimport ${JSON.stringify(bin)};\n`);
const result = await build({
  entryPoints: [entry],
  outfile: out,
  bundle: true,
  format: "esm",
  platform: "node",
  target: "es2023",
  minify: true,
  keepNames: true,
  legalComments: "none",
  logLevel: "silent",
  plugins: [sandbox],
}).catch((error) => ({ failed: error }));
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
  addons: [...addons],
  warnings: result.warnings.length,
}));
