// catwalk-js's globals: what a Node program expects of its process and QuickJS does not have, built on the host
// functions in `globalThis.__catwalk` (main.rs). The npm compatibility layer (modules such as `fs`, `events`,
// `buffer`) builds on these.
"use strict";
(() => {
  const host = globalThis.__catwalk;

  // A small event emitter for process and its streams (the `events` module comes with the compatibility layer).
  class Emitter {
    constructor() { this._events = new Map(); }
    on(name, listener) {
      const list = this._events.get(name) ?? [];
      list.push(listener);
      this._events.set(name, list);
      return this;
    }
    addListener(name, listener) { return this.on(name, listener); }
    prependListener(name, listener) {
      this._events.set(name, [listener, ...(this._events.get(name) ?? [])]);
      return this;
    }
    once(name, listener) {
      const once = (...args) => { this.off(name, once); listener.apply(this, args); };
      once.listener = listener;
      return this.on(name, once);
    }
    off(name, listener) {
      const list = (this._events.get(name) ?? []).filter((l) => l !== listener && l.listener !== listener);
      this._events.set(name, list);
      return this;
    }
    removeListener(name, listener) { return this.off(name, listener); }
    removeAllListeners(name) {
      if (name === undefined) this._events.clear(); else this._events.delete(name);
      return this;
    }
    emit(name, ...args) {
      const list = [...(this._events.get(name) ?? [])];
      for (const listener of list) listener.apply(this, args);
      return list.length > 0;
    }
    listenerCount(name) { return (this._events.get(name) ?? []).length; }
    listeners(name) { return [...(this._events.get(name) ?? [])]; }
    setMaxListeners() { return this; }
  }

  // UTF-8, as TextEncoder and TextDecoder (with `stream: true` keeping a split character for the next chunk).
  class TextEncoder {
    get encoding() { return "utf-8"; }
    encode(text = "") {
      const out = [];
      for (const char of String(text)) {
        let code = char.codePointAt(0);
        if (code >= 0xd800 && code <= 0xdfff) code = 0xfffd;
        if (code < 0x80) out.push(code);
        else if (code < 0x800) out.push(0xc0 | (code >> 6), 0x80 | (code & 63));
        else if (code < 0x10000) out.push(0xe0 | (code >> 12), 0x80 | ((code >> 6) & 63), 0x80 | (code & 63));
        else out.push(0xf0 | (code >> 18), 0x80 | ((code >> 12) & 63), 0x80 | ((code >> 6) & 63), 0x80 | (code & 63));
      }
      return new Uint8Array(out);
    }
  }
  // windows-1252 (what the Encoding Standard makes of "latin1", "ascii" and "iso-8859-1") differs from Latin-1
  // in 0x80–0x9f; and UTF-16LE. Labels as the Encoding Standard lists them.
  const CP1252 = [0x20ac, 0x81, 0x201a, 0x192, 0x201e, 0x2026, 0x2020, 0x2021, 0x2c6, 0x2030, 0x160, 0x2039, 0x152,
    0x8d, 0x17d, 0x8f, 0x90, 0x2018, 0x2019, 0x201c, 0x201d, 0x2022, 0x2013, 0x2014, 0x2dc, 0x2122, 0x161, 0x203a,
    0x153, 0x9d, 0x17e, 0x178];
  const ENCODINGS = {
    "utf-8": ["unicode-1-1-utf-8", "unicode11utf8", "unicode20utf8", "utf-8", "utf8", "x-unicode20utf8"],
    "windows-1252": ["ansi_x3.4-1968", "ascii", "cp1252", "cp819", "csisolatin1", "ibm819", "iso-8859-1", "iso-ir-100",
      "iso8859-1", "iso88591", "iso_8859-1", "iso_8859-1:1987", "l1", "latin1", "us-ascii", "windows-1252", "x-cp1252"],
    "utf-16le": ["csunicode", "iso-10646-ucs-2", "ucs-2", "unicode", "unicodefeff", "utf-16", "utf-16le"],
  };
  const encodingOf = (label) => {
    const name = String(label).trim().toLowerCase();
    const found = Object.keys(ENCODINGS).find((encoding) => ENCODINGS[encoding].includes(name));
    if (!found) {
      throw Object.assign(new RangeError(`The "${label}" encoding is not supported`), { code: "ERR_ENCODING_NOT_SUPPORTED" });
    }
    return found;
  };
  class TextDecoder {
    constructor(label = "utf-8", options = {}) {
      this._encoding = encodingOf(label);
      this._fatal = Boolean(options.fatal);
      this._rest = [];
    }
    get encoding() { return this._encoding; }
    get fatal() { return this._fatal; }
    decode(input, options = {}) {
      let bytes = input === undefined ? new Uint8Array(0)
        : input instanceof ArrayBuffer ? new Uint8Array(input)
        : new Uint8Array(input.buffer, input.byteOffset, input.byteLength);
      if (this._encoding === "windows-1252") {
        let text = "";
        for (let at = 0; at < bytes.length; at += 8192) {
          const part = Array.from(bytes.subarray(at, at + 8192), (b) => (b >= 0x80 && b < 0xa0 ? CP1252[b - 0x80] : b));
          text += String.fromCharCode(...part);
        }
        return text;
      }
      if (this._encoding === "utf-16le") {
        if (this._rest.length > 0) bytes = Uint8Array.from([...this._rest, ...bytes]);
        const whole = bytes.length & ~1;
        this._rest = options.stream ? [...bytes.subarray(whole)] : [];
        let text = "";
        for (let at = 0; at < whole; at += 2) text += String.fromCharCode(bytes[at] | (bytes[at + 1] << 8));
        if (!options.stream && whole < bytes.length) text += "\ufffd";
        return text;
      }
      if (this._rest.length > 0) bytes = Uint8Array.from([...this._rest, ...bytes]);
      this._rest = [];
      let text = "";
      let i = 0;
      const bad = () => {
        if (this._fatal) throw new TypeError("The encoded data was not valid for encoding utf-8");
        text += "\ufffd";
      };
      while (i < bytes.length) {
        const first = bytes[i];
        const size = first < 0x80 ? 1 : first >= 0xf0 && first < 0xf5 ? 4 : first >= 0xe0 ? 3 : first >= 0xc2 && first < 0xe0 ? 2 : 0;
        if (size === 0) { bad(); i += 1; continue; }
        if (i + size > bytes.length) {
          if (options.stream) { this._rest = [...bytes.subarray(i)]; break; }
          bad(); break;
        }
        let code = size === 1 ? first : first & (0xff >> (size + 1));
        let valid = true;
        for (let k = 1; k < size; k++) {
          const next = bytes[i + k];
          if ((next & 0xc0) !== 0x80) { valid = false; break; }
          code = (code << 6) | (next & 63);
        }
        if (!valid) { bad(); i += 1; continue; }
        text += String.fromCodePoint(code);
        i += size;
      }
      return text;
    }
  }
  globalThis.TextEncoder ??= TextEncoder;
  globalThis.TextDecoder ??= TextDecoder;

  // Timers, kept by id; the host's loop calls `tick` to run the due ones and learn when the next is due.
  const timers = new Map();
  let nextTimer = 1;
  let referenced = 0;
  class Timeout {
    constructor(callback, ms, args, repeat) {
      if (typeof callback !== "function") throw new TypeError("The callback argument must be a function");
      this._id = nextTimer++;
      this._callback = callback;
      this._args = args;
      this._ms = repeat || ms !== 0 ? Math.max(1, Number(ms) || 1) : 0;
      this._repeat = repeat;
      this._ref = true;
      this._due = host.now() + this._ms;
      timers.set(this._id, this);
      referenced += 1;
    }
    ref() { if (!this._ref && timers.has(this._id)) referenced += 1; this._ref = true; return this; }
    unref() { if (this._ref && timers.has(this._id)) referenced -= 1; this._ref = false; return this; }
    hasRef() { return this._ref; }
    refresh() { this._due = host.now() + this._ms; return this; }
    close() { clear(this); return this; }
    [Symbol.toPrimitive]() { return this._id; }
  }
  function clear(timer) {
    const found = timer instanceof Timeout ? timer : timers.get(Number(timer));
    if (found && timers.delete(found._id) && found._ref) referenced -= 1;
  }
  globalThis.setTimeout = (callback, ms, ...args) => new Timeout(callback, ms ?? 1, args, false);
  globalThis.setInterval = (callback, ms, ...args) => new Timeout(callback, ms ?? 1, args, true);
  globalThis.setImmediate = (callback, ...args) => new Timeout(callback, 0, args, false);
  globalThis.clearTimeout = clear;
  globalThis.clearInterval = clear;
  globalThis.clearImmediate = clear;
  globalThis.queueMicrotask ??= (callback) => { Promise.resolve().then(callback); };
  // Node's name for the global object, which modules read as they load (before any layer module runs).
  globalThis.global ??= globalThis;

  const fatal = (error) => {
    const text = error instanceof Error ? `${error.stack ?? ""}`.includes(error.message) ? error.stack : `${error}\n${error.stack ?? ""}` : String(error);
    host.write(2, `Uncaught ${text}\n`);
    host.exit(1);
  };

  // Outbound HTTP, made by catwalk (net.rs): an exchange is a request the loop polls whenever catwalk says one
  // made progress. An exchange in flight keeps the program alive, as a socket does in Node. `onhead`, `ondata`,
  // `onend` and `onerror` are its user's; `write` and `end` stream the request body in, `pause` and `resume`
  // hold the response body back.
  const exchanges = new Map();
  const failure = (error) => Object.assign(new Error(error?.message ?? String(error)), { code: "ERR_CATWALK_EGRESS" });
  host.exchange = (spec) => {
    if (host.snapshotting) host.barrier("a request");
    let handle;
    try { handle = host.httpRequest(JSON.stringify(spec)); } catch (error) { throw failure(error); }
    const exchange = {
      handle, queue: [], ending: false, finished: false, head: null, done: false, paused: false,
      onhead: null, ondata: null, onend: null, onerror: null,
      write(bytes) { if (!this.done) { this.queue.push(bytes); progress(this); } },
      end() { this.ending = true; progress(this); },
      pause() { this.paused = true; },
      resume() { if (this.paused) { this.paused = false; queueMicrotask(() => progress(this)); } },
      close() {
        if (this.done) return;
        this.done = true;
        exchanges.delete(handle);
        host.httpClose(handle);
      },
    };
    exchanges.set(handle, exchange);
    return exchange;
  };
  // Moves one exchange on as far as it can without waiting; its user's callbacks run outside the host calls.
  function progress(exchange) {
    const events = [];
    try {
      while (exchange.queue.length > 0 && host.httpWrite(exchange.handle, exchange.queue[0])) exchange.queue.shift();
      if (exchange.ending && !exchange.finished && exchange.queue.length === 0) {
        host.httpFinish(exchange.handle);
        exchange.finished = true;
      }
      if (!exchange.head) {
        const head = host.httpHead(exchange.handle);
        if (head != null) {
          exchange.head = JSON.parse(head);
          events.push(["onhead", exchange.head]);
        }
      }
      while (exchange.head && !exchange.paused && !exchange.done) {
        const chunk = host.httpRead(exchange.handle);
        if (chunk == null) break;
        if (chunk.length === 0) {
          exchange.close();
          events.push(["onend"]);
          break;
        }
        events.push(["ondata", chunk]);
        if (events.length > 64) break;
      }
    } catch (error) {
      exchange.close();
      events.push(["onerror", failure(error)]);
    }
    for (const [name, value] of events) {
      try { exchange[name]?.(value); } catch (error) { fatal(error); }
    }
    if (events.length > 64 && !exchange.done) queueMicrotask(() => progress(exchange));
  }
  host.httpProgress = () => { for (const exchange of [...exchanges.values()]) progress(exchange); };

  // The loop's step: runs the timers now due (one at a time, in due order), then says how long until the next
  // (ms; -1: none), how many keep the program alive, whether anyone is listening on stdin, and how many
  // requests are in flight.
  host.tick = () => {
    const now = host.now();
    const due = [...timers.values()].filter((t) => t._due <= now).sort((a, b) => a._due - b._due || a._id - b._id);
    for (const timer of due) {
      if (!timers.has(timer._id)) continue;
      if (timer._repeat) timer._due = now + timer._ms; else clear(timer);
      try { timer._callback(...timer._args); } catch (error) { fatal(error); }
    }
    let next = -1;
    for (const timer of timers.values()) if (next < 0 || timer._due < next) next = timer._due;
    return [next < 0 ? -1 : Math.max(0, next - host.now()), referenced + exchanges.size, stdin.flowing(), exchanges.size];
  };

  // process and its streams.
  const process = new Emitter();
  // What libraries check to tell Node apart (axios picks its http adapter by it).
  Object.defineProperty(process, Symbol.toStringTag, { value: "process" });
  const stdin = new Emitter();
  stdin.fd = 0;
  stdin.isTTY = false;
  stdin.readable = true;
  stdin._paused = false;
  stdin._ended = false;
  stdin._decoder = null;
  stdin.setEncoding = (encoding = "utf8") => { stdin._decoder = new TextDecoder(encoding); return stdin; };
  stdin.pause = () => { stdin._paused = true; return stdin; };
  stdin.resume = () => { stdin._paused = false; return stdin; };
  stdin.isPaused = () => stdin._paused;
  stdin.flowing = () => !stdin._ended && !stdin._paused && stdin.listenerCount("data") > 0;
  stdin.destroy = () => { stdin._ended = true; return stdin; };
  host.stdin = (chunk) => {
    if (chunk === null || chunk === undefined) {
      stdin._ended = true;
      stdin.readable = false;
      stdin.emit("end");
      stdin.emit("close");
      return;
    }
    const data = stdin._decoder ? stdin._decoder.decode(chunk, { stream: true })
      : typeof globalThis.Buffer === "function" ? globalThis.Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength)
      : chunk;
    if (data.length > 0) stdin.emit("data", data);
  };

  const output = (fd) => {
    const stream = new Emitter();
    stream.fd = fd;
    stream.isTTY = false;
    stream.writable = true;
    stream.write = (chunk, encoding, callback) => {
      if (typeof encoding === "function") callback = encoding;
      const ok = typeof chunk === "string" ? host.write(fd, chunk) : host.writeBytes(fd, new Uint8Array(chunk.buffer, chunk.byteOffset, chunk.byteLength));
      if (typeof callback === "function") queueMicrotask(() => callback(ok ? null : new Error("write failed")));
      return true;
    };
    stream.end = (chunk, encoding, callback) => {
      if (chunk !== undefined && typeof chunk !== "function") stream.write(chunk, encoding);
      const done = [chunk, encoding, callback].find((c) => typeof c === "function");
      if (done) queueMicrotask(done);
      return stream;
    };
    return stream;
  };

  // This instance's environment and arguments are read when it starts (`host.start`), not before: a snapshot
  // taken at pack time holds neither. `process.env` is a view of them, so what a module kept a reference to
  // sees them once filled; the names read while a snapshot is taken are reported (`host.snapshotReads`), so
  // catwalk does not serve that snapshot to a tenant whose env sets one.
  let started = host.now();
  const env = {};
  const envReads = new Set();
  const read = (key) => { if (host.snapshotting && typeof key === "string") envReads.add(key); };
  const envView = new Proxy(env, {
    get(target, key) { read(key); return target[key]; },
    has(target, key) { read(key); return key in target; },
    getOwnPropertyDescriptor(target, key) { read(key); return Reflect.getOwnPropertyDescriptor(target, key); },
    ownKeys(target) { read("*"); return Reflect.ownKeys(target); },
    // Node keeps strings only.
    set(target, key, value) { if (starting) touched.add(key); target[key] = String(value); return true; },
    defineProperty(target, key, descriptor) { if (starting) touched.add(key); target[key] = String(descriptor.value); return true; },
    deleteProperty(target, key) { if (starting) touched.add(key); delete target[key]; return true; },
  });
  const argv = [];
  host.snapshotReads = () => [...envReads];
  // catwalk's own variables for the runtime are not the program's environment; a name the program set (or
  // deleted) itself during a snapshot's start keeps what it did.
  const fill = (own, keep) => {
    for (const [name, value] of Object.entries(own)) if (!name.startsWith("CATWALK_JS_") && !keep.has(name)) env[name] = value;
  };
  // While a snapshot is taken through the start (`host.startSnapshot`): the program runs with the arguments
  // the snapshot is for, its env reads are recorded, and what belongs to one instance stops the snapshot.
  let starting = false;
  const touched = new Set();
  const begin = () => {
    const own = host.env();
    argv.push(...(own.CATWALK_JS_ARGV ? JSON.parse(own.CATWALK_JS_ARGV) : ["catwalk-js", own.CATWALK_JS_MAIN ?? "/app/main.js"]));
    fill(own, touched);
    started = host.now();
    seed = null;
    // The package's own code, bundled apart from its dependencies by `catwalk pack` (it runs at once, up to its
    // first await).
    if (typeof host.main === "function") host.main().catch(fatal);
  };
  host.start = () => {
    host.snapshotting = false;
    begin();
  };
  host.startSnapshot = () => {
    starting = true;
    begin();
  };
  // An instance made from a snapshot taken through the start: its own env (the snapshot's program saw none of
  // the names it sets, or catwalk would not serve it this snapshot), clock and randomness.
  host.resume = () => {
    host.snapshotting = false;
    starting = false;
    fill(host.env(), touched);
    started = host.now();
    seed = null;
  };
  // During a snapshot's start, the file system is the package's tree, read: anything else (a tenant's grant, a
  // file written or held open) would differ from one instance to the next.
  if (host.snapshotting) {
    const reads = new Set(["readFile", "stat", "readdir", "readlink", "realpath"]);
    const inTree = (path) => {
      const parts = [];
      for (const part of String(path).split("/")) {
        if (part === "..") parts.pop();
        else if (part !== "" && part !== ".") parts.push(part);
      }
      return parts[0] === "app";
    };
    for (const [name, call] of Object.entries(host.fs)) {
      host.fs[name] = (...args) => {
        if (starting && !(reads.has(name) && inTree(args[0]))) host.barrier("the file system outside the package");
        return call(...args);
      };
    }
    const lookup = host.dnsLookup;
    host.dnsLookup = (...args) => {
      host.barrier("a request");
      return lookup(...args);
    };
  }
  Object.defineProperty(process, "argv", {
    get() { if (host.snapshotting && !starting) host.barrier("process.argv"); return argv; },
    set(value) { argv.length = 0; argv.push(...value); },
    enumerable: true,
    configurable: true,
  });
  // Math.random from WASI randomness, seeded per instance: QuickJS seeds its own generator once, when the engine
  // is made, so instances made from one snapshot would all draw the same numbers (xorshift128, 53 bits a draw).
  let seed = null;
  Math.random = function random() {
    if (seed === null) {
      seed = new Uint32Array(host.random(16).slice().buffer);
      if (!(seed[0] | seed[1] | seed[2] | seed[3])) seed[0] = 1;
    }
    const next = () => {
      let t = seed[3];
      const s = seed[0];
      seed[3] = seed[2];
      seed[2] = seed[1];
      seed[1] = s;
      t ^= t << 11;
      t ^= t >>> 8;
      seed[0] = t ^ s ^ (s >>> 19);
      return seed[0] >>> 0;
    };
    return ((next() >>> 5) * 67108864 + (next() >>> 6)) / 9007199254740992;
  };
  Object.assign(process, {
    argv0: "node",
    execArgv: [],
    execPath: "/usr/local/bin/node",
    env: envView,
    exitCode: undefined,
    pid: 1,
    ppid: 0,
    // As os.platform() says: the sandbox's files and paths are Linux's, and packages that branch on the platform
    // (cache directories, path rules) take the branch that fits.
    platform: "linux",
    arch: "wasm32",
    version: "v20.0.0",
    versions: { node: "20.0.0" },
    release: { name: "node" },
    title: "catwalk-js",
    stdin,
    stdout: output(1),
    stderr: output(2),
    cwd: () => "/",
    chdir: () => { throw new Error("process.chdir is not available in the sandbox"); },
    exit: (code) => {
      if (code !== undefined) process.exitCode = code;
      process.emit("exit", process.exitCode ?? 0);
      host.exit(Number(process.exitCode ?? 0));
    },
    nextTick: (callback, ...args) => queueMicrotask(() => callback(...args)),
    uptime: () => (host.now() - started) / 1e3,
    memoryUsage: Object.assign(() => ({ rss: 0, heapTotal: 0, heapUsed: 0, external: 0, arrayBuffers: 0 }), { rss: () => 0 }),
    // In microseconds, as Node's. The sandbox has no CPU clock of its own: the time since the start stands in for
    // user time (an upper bound), and system time is 0.
    cpuUsage: (previous) => {
      const user = Math.round((host.now() - started) * 1e3);
      return { user: previous ? user - previous.user : user, system: 0 };
    },
    emitWarning: (warning) => host.write(2, `Warning: ${warning}\n`),
    umask: () => 0o22,
    getuid: () => 0,
    getgid: () => 0,
  });
  process.hrtime = (previous) => {
    const now = host.now();
    let seconds = Math.floor(now / 1e3);
    let nanos = Math.floor((now % 1e3) * 1e6);
    if (previous) {
      seconds -= previous[0];
      nanos -= previous[1];
      if (nanos < 0) { seconds -= 1; nanos += 1e9; }
    }
    return [seconds, nanos];
  };
  process.hrtime.bigint = () => BigInt(Math.floor(host.now() * 1e6));
  globalThis.process = process;

  // console: log, info and debug to stdout, warn and error to stderr (as Node does).
  const show = (value) => {
    if (typeof value === "string") return value;
    if (value instanceof Error) return value.stack ?? String(value);
    if (typeof value === "object" && value !== null) {
      try { return JSON.stringify(value); } catch { return String(value); }
    }
    return String(value);
  };
  const format = (args) => {
    if (typeof args[0] === "string" && /%[sdifjoO%]/.test(args[0])) {
      let rest = args.slice(1);
      const head = args[0].replace(/%([sdifjoO%])/g, (match, kind) => {
        if (kind === "%") return "%";
        if (rest.length === 0) return match;
        const value = rest.shift();
        if (kind === "d" || kind === "i") return String(parseInt(value, 10));
        if (kind === "f") return String(parseFloat(value));
        if (kind === "s") return typeof value === "string" ? value : show(value);
        return show(value);
      });
      return [head, ...rest.map(show)].join(" ");
    }
    return args.map(show).join(" ");
  };
  const print = (fd) => (...args) => host.write(fd, `${format(args)}\n`);
  globalThis.console = {
    log: print(1), info: print(1), debug: print(1),
    warn: print(2), error: print(2), trace: print(2),
    dir: (value) => host.write(1, `${show(value)}\n`),
    time() {}, timeEnd() {}, assert(ok, ...args) { if (!ok) print(2)("Assertion failed:", ...args); },
  };

  // Randomness from WASI.
  const getRandomValues = (array) => {
    const bytes = host.random(array.byteLength);
    new Uint8Array(array.buffer, array.byteOffset, array.byteLength).set(bytes);
    return array;
  };
  const randomUUID = () => {
    const b = host.random(16);
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    const hex = [...b].map((x) => x.toString(16).padStart(2, "0")).join("");
    return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
  };
  globalThis.crypto ??= { getRandomValues, randomUUID };

  // structuredClone for the values JSON-RPC carries and a few more.
  const clone = (value, seen) => {
    if (typeof value !== "object" || value === null) {
      if (typeof value === "function" || typeof value === "symbol") throw new TypeError(`${String(value)} could not be cloned.`);
      return value;
    }
    if (seen.has(value)) return seen.get(value);
    let copy;
    if (value instanceof Date) copy = new Date(value.getTime());
    else if (value instanceof RegExp) copy = new RegExp(value.source, value.flags);
    else if (ArrayBuffer.isView(value)) copy = value.slice();
    else if (value instanceof ArrayBuffer) copy = value.slice(0);
    else if (value instanceof Map) { copy = new Map(); seen.set(value, copy); for (const [k, v] of value) copy.set(clone(k, seen), clone(v, seen)); return copy; }
    else if (value instanceof Set) { copy = new Set(); seen.set(value, copy); for (const v of value) copy.add(clone(v, seen)); return copy; }
    else if (Array.isArray(value)) { copy = []; seen.set(value, copy); value.forEach((v, i) => { copy[i] = clone(v, seen); }); return copy; }
    else { copy = {}; seen.set(value, copy); for (const key of Object.keys(value)) copy[key] = clone(value[key], seen); return copy; }
    seen.set(value, copy);
    return copy;
  };
  globalThis.structuredClone ??= (value) => clone(value, new Map());

  // V8's stack-trace API, as Node programs use it. QuickJS-ng has `Error.captureStackTrace`,
  // `Error.stackTraceLimit` and `Error.prepareStackTrace` with call sites; this adds what V8 has beyond them:
  // - the "Name: message" line V8's stacks start with (programs print `err.stack` alone, or drop its first line
  //   to keep the frames), without the trailing newline QuickJS leaves, made by a default
  //   `Error.prepareStackTrace` as in Node (QuickJS calls it when an error is made, where V8 waits for the first
  //   read of `stack`: about 10 µs more per error);
  // - the call-site methods QuickJS lacks (depd, and so express, call `isEval` and `getEvalOrigin`), and V8's
  //   `toString` of a call site.
  const frameLines = /^ {4}at /;
  const headed = (error, stack) => {
    if (typeof stack !== "string" || (stack !== "" && !frameLines.test(stack))) return stack;
    let head;
    try { head = Error.prototype.toString.call(error); } catch { head = "Error"; }
    return stack === "" ? head : `${head}\n${stack.replace(/\n$/, "")}`;
  };
  const stack = Object.getOwnPropertyDescriptor(Error.prototype, "stack");
  const prepare = Error.prepareStackTrace;
  Error.prepareStackTrace = (_, sites) => sites;
  const sites = new Error().stack;
  Error.prepareStackTrace = prepare;
  const CallSite = Array.isArray(sites) && sites.length > 0 ? Object.getPrototypeOf(sites[0]) : null;
  if (CallSite) {
    const functionName = CallSite.getFunctionName;
    const extra = {
      // V8 names no function at a script's or module's top level; QuickJS says "<eval>".
      getFunctionName() { const name = functionName.call(this); return name && name !== "<eval>" ? name : null; },
      getThis() { return undefined; },
      getTypeName() { return null; },
      getMethodName() { return null; },
      getScriptNameOrSourceURL() { return this.getFileName(); },
      getScriptHash() { return ""; },
      getEvalOrigin() { return undefined; },
      getEnclosingLineNumber() { return null; },
      getEnclosingColumnNumber() { return null; },
      getPosition() { return 0; },
      getPromiseIndex() { return null; },
      isEval() { return false; },
      isToplevel() { return this.getFunctionName() === null; },
      isAsync() { return false; },
      isPromiseAll() { return false; },
      toString() {
        if (this.isNative()) return `${this.getFunctionName() ?? "<anonymous>"} (native)`;
        const where = `${this.getFileName() ?? "<anonymous>"}:${this.getLineNumber()}:${this.getColumnNumber()}`;
        const name = this.getFunctionName();
        return name ? `${this.isConstructor() ? "new " : ""}${name} (${where})` : where;
      },
    };
    for (const [name, method] of Object.entries(extra)) {
      if (name === "getFunctionName" || name === "toString" || !(name in CallSite)) {
        Object.defineProperty(CallSite, name, { value: method, writable: true, configurable: true });
      }
    }
  }
  // Node's default formatter, which programs call to format frames they were given, and chain to.
  Error.prepareStackTrace = function ErrorPrepareStackTrace(error, trace) {
    return headed(error, trace.map((site) => `    at ${site}\n`).join(""));
  };
  if (stack?.get) {
    Object.defineProperty(Error.prototype, "stack", {
      ...stack,
      get() { return headed(this, stack.get.call(this)); },
    });
  }
  const capture = Error.captureStackTrace;
  if (typeof capture === "function") {
    Error.captureStackTrace = function captureStackTrace(target, constructorOpt) {
      // This wrapper's own frame is left out with everything above `constructorOpt`.
      capture(target, typeof constructorOpt === "function" ? constructorOpt : captureStackTrace);
      const own = Object.getOwnPropertyDescriptor(target, "stack");
      if (own && "value" in own) Object.defineProperty(target, "stack", { ...own, value: headed(target, own.value) });
    };
  }
})();
