// `module`: `createRequire`, for the two things a bundled package still requires at run time: JSON files of
// its own tree (read from the read-only /app mount) and a few built-ins named by a computed string.
import fs from "./fs.js";
import path from "path";
import os from "./os.js";
import events from "events";
import { Buffer } from "buffer";
import url from "./url.js";
import crypto from "./crypto.js";
import timers from "./timers.js";
import tty from "./tty.js";
import perfHooks from "./perf_hooks.js";
import asyncHooks from "./async_hooks.js";
import http from "./http.js";
import https from "./https.js";
import dns from "./dns.js";
import net from "./net.js";
import tls from "./tls.js";
import http2 from "./http2.js";
import zlib from "./zlib.js";
import assert from "./assert.js";
import readline from "./readline.js";
import diagnosticsChannel from "./diagnostics_channel.js";
import workerThreads from "./worker_threads.js";
import util from "./util.js";
import stream from "stream";
import stringDecoder from "string_decoder";
import querystring from "querystring";

const builtins = {
  fs, "fs/promises": fs.promises, path, os, events, buffer: { Buffer }, url, crypto, timers, tty,
  perf_hooks: perfHooks, async_hooks: asyncHooks, process: globalThis.process, http, https, dns,
  "dns/promises": dns.promises, net, tls, http2, zlib, assert, readline, diagnostics_channel: diagnosticsChannel,
  worker_threads: workerThreads, util, stream, string_decoder: stringDecoder, querystring,
};

export const builtinModules = ["assert", "async_hooks", "buffer", "child_process", "crypto", "diagnostics_channel", "dns", "events", "fs", "http", "http2", "https", "module", "net", "os", "path", "perf_hooks", "process", "querystring", "readline", "stream", "string_decoder", "timers", "tls", "tty", "url", "util", "worker_threads", "zlib"];
export const isBuiltin = (name) => builtinModules.includes(String(name).replace(/^node:/, "").split("/")[0]);

export function createRequire(from) {
  const base = String(from).startsWith("file:") ? url.fileURLToPath(from) : String(from);
  const dir = base.endsWith("/") ? base : path.dirname(base);
  const cache = new Map();
  const require = (name) => {
    const bare = String(name).replace(/^node:/, "");
    if (bare in builtins) return builtins[bare];
    if (bare === "module") return { createRequire, builtinModules, isBuiltin };
    if (isBuiltin(bare)) throw moduleError(name, `${name} is not available in catwalk's sandbox (it was not bundled when the package was packed)`);
    const file = require.resolve(name);
    if (cache.has(file)) return cache.get(file);
    if (!file.endsWith(".json")) throw moduleError(name, `catwalk's sandbox can require only JSON files at run time; ${name} was not bundled when the package was packed`);
    const value = JSON.parse(fs.readFileSync(file, "utf8"));
    cache.set(file, value);
    return value;
  };
  require.resolve = (name) => {
    if (name.startsWith("./") || name.startsWith("../") || name.startsWith("/")) {
      const file = path.resolve(dir, name);
      for (const candidate of [file, `${file}.json`]) if (fs.existsSync(candidate) && fs.statSync(candidate).isFile()) return candidate;
      throw moduleError(name, `Cannot find module '${name}'`);
    }
    for (let at = dir; ; at = path.dirname(at)) {
      const candidate = path.join(at, "node_modules", name);
      if (fs.existsSync(candidate)) return fs.statSync(candidate).isDirectory() ? path.join(candidate, "package.json") : candidate;
      if (at === "/") break;
    }
    throw moduleError(name, `Cannot find module '${name}'`);
  };
  require.cache = {};
  return require;
}

function moduleError(name, message) {
  return Object.assign(new Error(message), { code: "MODULE_NOT_FOUND", moduleName: name });
}

export default { createRequire, builtinModules, isBuiltin };
