// `fetch` and the web's HTTP classes (Headers, Request, Response, Blob, File, FormData), over catwalk's outbound
// HTTP: the request goes to catwalk, which sends it under the tenant's egress grants (the guest never opens a
// socket). Bodies stream both ways; a redirect is followed here, as fetch does, each hop checked by catwalk anew.
// globals.js installs these as globals, as Node has them.
import { ReadableStream } from "web-streams-polyfill";

const host = () => globalThis.__catwalk;
const encoder = new TextEncoder();
const decoder = () => new TextDecoder();

const concat = (chunks) => {
  const size = chunks.reduce((n, c) => n + c.length, 0);
  const out = new Uint8Array(size);
  let at = 0;
  for (const c of chunks) { out.set(c, at); at += c.length; }
  return out;
};

const bytesOf = (value) => {
  if (value instanceof Uint8Array) return value;
  if (value instanceof ArrayBuffer) return new Uint8Array(value);
  if (ArrayBuffer.isView(value)) return new Uint8Array(value.buffer, value.byteOffset, value.byteLength);
  return encoder.encode(String(value));
};

export class Blob {
  #parts;
  #type;
  constructor(parts = [], options = {}) {
    this.#parts = [];
    for (const part of parts) this.#parts.push(part instanceof Blob ? part.#bytes() : bytesOf(part));
    this.#type = String(options.type ?? "").toLowerCase();
  }
  #bytes() { return concat(this.#parts); }
  get size() { return this.#parts.reduce((n, p) => n + p.length, 0); }
  get type() { return this.#type; }
  async arrayBuffer() { const b = this.#bytes(); return b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength); }
  async bytes() { return this.#bytes(); }
  async text() { return decoder().decode(this.#bytes()); }
  slice(start, end, type) { return new Blob([this.#bytes().slice(start, end)], { type }); }
  stream() { const bytes = this.#bytes(); return new ReadableStream({ start(c) { if (bytes.length) c.enqueue(bytes); c.close(); } }); }
  get [Symbol.toStringTag]() { return "Blob"; }
}

export class File extends Blob {
  constructor(parts, name, options = {}) {
    super(parts, options);
    this.name = String(name);
    this.lastModified = options.lastModified ?? Date.now();
  }
  get [Symbol.toStringTag]() { return "File"; }
}

const normalizeName = (name) => {
  const text = String(name);
  if (!/^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/.test(text)) throw new TypeError(`Header name must be a valid HTTP token ["${text}"]`);
  return text.toLowerCase();
};
const normalizeValue = (value) => String(value).replace(/^[\t\n\r ]+|[\t\n\r ]+$/g, "");

export class Headers {
  #map = new Map();
  constructor(init) {
    if (init instanceof Headers) for (const [k, v] of init) this.append(k, v);
    else if (Array.isArray(init) || (init && typeof init[Symbol.iterator] === "function")) for (const [k, v] of init) this.append(k, v);
    else if (init && typeof init === "object") for (const k of Object.keys(init)) this.append(k, init[k]);
  }
  append(name, value) {
    const key = normalizeName(name);
    const list = this.#map.get(key) ?? [];
    list.push(normalizeValue(value));
    this.#map.set(key, list);
  }
  set(name, value) { this.#map.set(normalizeName(name), [normalizeValue(value)]); }
  get(name) {
    const list = this.#map.get(normalizeName(name));
    return list === undefined ? null : list.join(", ");
  }
  getSetCookie() { return [...(this.#map.get("set-cookie") ?? [])]; }
  has(name) { return this.#map.has(normalizeName(name)); }
  delete(name) { this.#map.delete(normalizeName(name)); }
  forEach(callback, self) { for (const [k, v] of this) callback.call(self, v, k, this); }
  *entries() {
    for (const key of [...this.#map.keys()].sort()) {
      if (key === "set-cookie") for (const v of this.#map.get(key)) yield [key, v];
      else yield [key, this.get(key)];
    }
  }
  *keys() { for (const [k] of this.entries()) yield k; }
  *values() { for (const [, v] of this.entries()) yield v; }
  [Symbol.iterator]() { return this.entries(); }
  get [Symbol.toStringTag]() { return "Headers"; }
  /** Every field as sent: `[name, value]` pairs, repeated names kept apart. */
  _pairs() { const out = []; for (const [k, list] of this.#map) for (const v of list) out.push([k, v]); return out; }
}

export class FormData {
  #entries = [];
  append(name, value, filename) { this.#entries.push([String(name), this.#value(value, filename)]); }
  set(name, value, filename) {
    const key = String(name);
    const at = this.#entries.findIndex(([k]) => k === key);
    const entry = [key, this.#value(value, filename)];
    this.#entries = this.#entries.filter(([k], i) => k !== key || i === at);
    if (at < 0) this.#entries.push(entry); else this.#entries[this.#entries.findIndex(([k]) => k === key)] = entry;
  }
  #value(value, filename) {
    if (value instanceof Blob) return value instanceof File && filename === undefined ? value : new File([value], filename ?? "blob", { type: value.type });
    return String(value);
  }
  get(name) { return this.#entries.find(([k]) => k === String(name))?.[1] ?? null; }
  getAll(name) { return this.#entries.filter(([k]) => k === String(name)).map(([, v]) => v); }
  has(name) { return this.#entries.some(([k]) => k === String(name)); }
  delete(name) { this.#entries = this.#entries.filter(([k]) => k !== String(name)); }
  forEach(callback, self) { for (const [k, v] of this.#entries) callback.call(self, v, k, this); }
  *entries() { yield* this.#entries; }
  *keys() { for (const [k] of this.#entries) yield k; }
  *values() { for (const [, v] of this.#entries) yield v; }
  [Symbol.iterator]() { return this.entries(); }
  get [Symbol.toStringTag]() { return "FormData"; }
}

// A body as fetch extracts it: its bytes (or a stream of them) and the Content-Type it implies.
async function extract(body) {
  if (body === null || body === undefined) return { bytes: null, type: null };
  if (typeof body === "string") return { bytes: encoder.encode(body), type: "text/plain;charset=UTF-8" };
  if (body instanceof URLSearchParams) return { bytes: encoder.encode(body.toString()), type: "application/x-www-form-urlencoded;charset=UTF-8" };
  if (body instanceof Blob) return { bytes: await body.bytes(), type: body.type || null };
  if (body instanceof FormData) {
    const boundary = `----catwalk${Math.random().toString(16).slice(2)}${Math.random().toString(16).slice(2)}`;
    const parts = [];
    for (const [name, value] of body) {
      const escaped = (s) => s.replace(/\n/g, "%0A").replace(/\r/g, "%0D").replace(/"/g, "%22");
      if (typeof value === "string") {
        parts.push(encoder.encode(`--${boundary}\r\nContent-Disposition: form-data; name="${escaped(name)}"\r\n\r\n${value}\r\n`));
      } else {
        parts.push(encoder.encode(`--${boundary}\r\nContent-Disposition: form-data; name="${escaped(name)}"; filename="${escaped(value.name)}"\r\nContent-Type: ${value.type || "application/octet-stream"}\r\n\r\n`));
        parts.push(await value.bytes());
        parts.push(encoder.encode("\r\n"));
      }
    }
    parts.push(encoder.encode(`--${boundary}--\r\n`));
    return { bytes: concat(parts), type: `multipart/form-data; boundary=${boundary}` };
  }
  if (body instanceof ReadableStream || typeof body?.getReader === "function") return { stream: body, type: null };
  if (typeof body?.[Symbol.asyncIterator] === "function") return { iterable: body, type: null };
  if (body instanceof ArrayBuffer || ArrayBuffer.isView(body)) return { bytes: bytesOf(body).slice(), type: null };
  return { bytes: encoder.encode(String(body)), type: "text/plain;charset=UTF-8" };
}

// A response body as catwalk delivers it: chunks queued as they arrive, read whole (`text()`, `json()`, ...)
// without a stream, or as a ReadableStream once someone asks for `body`. Past a few queued chunks the exchange
// is paused until they are read.
const QUEUED = 4;
class Incoming {
  #exchange;
  #chunks = [];
  #done = false;
  #error = null;
  #wake = null;
  #onCancel;
  constructor(exchange, onCancel) { this.#exchange = exchange; this.#onCancel = onCancel; }
  push(chunk) {
    this.#chunks.push(chunk);
    if (this.#chunks.length >= QUEUED) this.#exchange.pause();
    this.#notify();
  }
  end() { this.#done = true; this.#notify(); }
  fail(error) { this.#error ??= error; this.#done = true; this.#notify(); }
  #notify() { const wake = this.#wake; this.#wake = null; wake?.(); }
  /** The next chunk, or `null` at the end; what arrived before an error is read before it is thrown. */
  async next() {
    for (;;) {
      if (this.#chunks.length > 0) {
        const chunk = this.#chunks.shift();
        if (this.#chunks.length < QUEUED && !this.#done) this.#exchange.resume();
        return chunk;
      }
      if (this.#error) throw this.#error;
      if (this.#done) return null;
      this.#exchange.resume();
      await new Promise((resolve) => { this.#wake = resolve; });
    }
  }
  cancel() { this.#chunks = []; this.#done = true; this.#exchange.close(); this.#onCancel?.(); }
  stream() {
    const incoming = this;
    return new ReadableStream({
      async pull(controller) {
        try {
          const chunk = await incoming.next();
          if (chunk === null) controller.close(); else controller.enqueue(chunk);
        } catch (error) { controller.error(error); }
      },
      cancel() { incoming.cancel(); },
    }, { highWaterMark: 0 });
  }
}

class Body {
  #stream = null;
  #source;
  _bodyUsed = false;
  _initBody(source) { this.#source = source; }
  get body() {
    if (this.#stream) return this.#stream;
    const source = this.#source;
    if (source === null || source === undefined) return null;
    if (source instanceof ReadableStream) return (this.#stream = source);
    if (source instanceof Incoming) return (this.#stream = source.stream());
    this.#stream = new ReadableStream({
      async start(controller) {
        const { bytes, stream, iterable } = await extract(source);
        if (bytes) { if (bytes.length) controller.enqueue(bytes); controller.close(); return; }
        try {
          if (iterable) { for await (const chunk of iterable) controller.enqueue(bytesOf(chunk)); controller.close(); return; }
          const reader = stream.getReader();
          for (;;) { const { done, value } = await reader.read(); if (done) break; controller.enqueue(bytesOf(value)); }
          controller.close();
        } catch (error) { controller.error(error); }
      },
    });
    return this.#stream;
  }
  get bodyUsed() { return this._bodyUsed; }
  async #consume() {
    if (this._bodyUsed) throw new TypeError("Body is unusable: Body has already been read");
    this._bodyUsed = true;
    if (this.#stream === null && this.#source instanceof Incoming) {
      const chunks = [];
      for (let chunk; (chunk = await this.#source.next()) !== null;) chunks.push(chunk);
      return chunks.length === 1 ? chunks[0] : concat(chunks);
    }
    const stream = this.body;
    if (stream === null) return new Uint8Array(0);
    const reader = stream.getReader();
    const chunks = [];
    for (;;) { const { done, value } = await reader.read(); if (done) break; chunks.push(bytesOf(value)); }
    return concat(chunks);
  }
  async arrayBuffer() { const b = await this.#consume(); return b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength); }
  async bytes() { return this.#consume(); }
  async text() { return decoder().decode(await this.#consume()); }
  async json() { return JSON.parse(await this.text()); }
  async blob() { return new Blob([await this.#consume()], { type: this.headers.get("content-type") ?? "" }); }
  async formData() {
    const type = this.headers.get("content-type") ?? "";
    const text = await this.text();
    if (type.startsWith("application/x-www-form-urlencoded")) {
      const form = new FormData();
      for (const [k, v] of new URLSearchParams(text)) form.append(k, v);
      return form;
    }
    throw new TypeError("catwalk's fetch reads a form body only when it is application/x-www-form-urlencoded");
  }
}

export class Request extends Body {
  constructor(input, init = {}) {
    super();
    const from = input instanceof Request ? input : null;
    const url = new URL(from ? from.url : String(input instanceof URL ? input.href : input));
    if (url.username || url.password) throw new TypeError(`Request cannot be constructed from a URL that includes credentials: ${url.href}`);
    this.url = url.href;
    this.method = String(init.method ?? from?.method ?? "GET").toUpperCase();
    this.headers = new Headers(init.headers ?? from?.headers);
    this.redirect = init.redirect ?? from?.redirect ?? "follow";
    // Made when asked for: most requests are never aborted.
    this._signal = init.signal ?? from?._signal ?? null;
    this.credentials = init.credentials ?? "same-origin";
    this.mode = init.mode ?? "cors";
    this.cache = init.cache ?? "default";
    this.keepalive = Boolean(init.keepalive);
    this.duplex = init.duplex ?? "half";
    const body = init.body !== undefined ? init.body : from ? from._source : null;
    if (body !== null && body !== undefined && (this.method === "GET" || this.method === "HEAD")) {
      throw new TypeError("Request with GET/HEAD method cannot have body.");
    }
    this._source = body;
    this._initBody(body);
  }
  get signal() { return (this._signal ??= new AbortController().signal); }
  clone() { return new Request(this); }
  get [Symbol.toStringTag]() { return "Request"; }
}

const STATUS_TEXT = { 200: "OK", 201: "Created", 202: "Accepted", 204: "No Content", 301: "Moved Permanently", 302: "Found", 303: "See Other", 304: "Not Modified", 307: "Temporary Redirect", 308: "Permanent Redirect", 400: "Bad Request", 401: "Unauthorized", 403: "Forbidden", 404: "Not Found", 409: "Conflict", 422: "Unprocessable Entity", 429: "Too Many Requests", 500: "Internal Server Error", 502: "Bad Gateway", 503: "Service Unavailable", 504: "Gateway Timeout" };

export class Response extends Body {
  constructor(body = null, init = {}) {
    super();
    this.status = init.status ?? 200;
    if (this.status < 200 || this.status > 599) throw new RangeError(`init["status"] must be in the range of 200 to 599, inclusive.`);
    this.statusText = init.statusText ?? "";
    this.headers = new Headers(init.headers);
    this.type = init.type ?? "default";
    this.url = init.url ?? "";
    this.redirected = Boolean(init.redirected);
    if (body !== null && body !== undefined && !(body instanceof ReadableStream) && !this.headers.has("content-type")) {
      const type = typeof body === "string" ? "text/plain;charset=UTF-8" : body instanceof URLSearchParams ? "application/x-www-form-urlencoded;charset=UTF-8" : body instanceof Blob && body.type ? body.type : null;
      if (type) this.headers.set("content-type", type);
    }
    this._initBody(body);
  }
  get ok() { return this.status >= 200 && this.status < 300; }
  clone() {
    if (this.bodyUsed) throw new TypeError("Response.clone: Body has already been consumed.");
    const [a, b] = this.body ? this.body.tee() : [null, null];
    if (a) this._initBody(a);
    return new Response(b, { status: this.status, statusText: this.statusText, headers: this.headers, url: this.url, redirected: this.redirected });
  }
  static json(data, init = {}) {
    const headers = new Headers(init.headers);
    if (!headers.has("content-type")) headers.set("content-type", "application/json");
    return new Response(JSON.stringify(data), { ...init, headers });
  }
  static error() { return new Response(null, { status: 200, type: "error" }); }
  static redirect(url, status = 302) { return new Response(null, { status, headers: { location: new URL(url).href } }); }
  get [Symbol.toStringTag]() { return "Response"; }
}

const abortError = (signal) => signal.reason ?? new DOMException("This operation was aborted", "AbortError");

// One HTTP exchange through catwalk: resolves with the response head and its body as a stream.
function exchange(method, url, headers, payload, signal) {
  return new Promise((resolve, reject) => {
    let ex;
    try {
      ex = host().exchange({ method, url, headers });
    } catch (error) {
      reject(Object.assign(new TypeError("fetch failed"), { cause: error }));
      return;
    }
    let settled = false;
    // A body given up on no longer listens for its request's abort.
    const body = new Incoming(ex, () => signal?.removeEventListener("abort", onAbort));
    const onAbort = () => {
      ex.close();
      const error = abortError(signal);
      if (!settled) { settled = true; reject(error); } else body.fail(error);
    };
    signal?.addEventListener("abort", onAbort, { once: true });
    ex.onhead = (head) => { settled = true; resolve({ head, body }); };
    ex.ondata = (chunk) => body.push(chunk);
    ex.onend = () => { signal?.removeEventListener("abort", onAbort); body.end(); };
    ex.onerror = (error) => {
      signal?.removeEventListener("abort", onAbort);
      if (!settled) { settled = true; reject(Object.assign(new TypeError("fetch failed"), { cause: error })); }
      else body.fail(Object.assign(new TypeError("terminated"), { cause: error }));
    };
    (async () => {
      try {
        if (payload.bytes) { if (payload.bytes.length) ex.write(payload.bytes); }
        else if (payload.stream) {
          const reader = payload.stream.getReader();
          for (;;) { const { done, value } = await reader.read(); if (done) break; ex.write(bytesOf(value)); }
        } else if (payload.iterable) {
          for await (const chunk of payload.iterable) ex.write(bytesOf(chunk));
        }
        ex.end();
      } catch (error) {
        ex.close();
        if (!settled) { settled = true; reject(Object.assign(new TypeError("fetch failed"), { cause: error })); }
      }
    })();
  });
}

const REDIRECTS = new Set([301, 302, 303, 307, 308]);

// A `data:` URL is answered here, as Node's fetch answers it (the Fetch Standard's data: URL processor): its
// bytes, percent-decoded and then base64-decoded if it says `;base64`, with its MIME type.
function dataResponse(href) {
  const rest = href.slice("data:".length).replace(/#.*$/s, "");
  const comma = rest.indexOf(",");
  if (comma < 0) throw new TypeError("fetch failed", { cause: new Error("invalid data: URL") });
  let type = rest.slice(0, comma).trim();
  const base64 = /;\s*base64\s*$/i.test(type);
  if (base64) type = type.replace(/;\s*base64\s*$/i, "");
  const encoded = rest.slice(comma + 1);
  const bytes = [];
  const utf8 = new TextEncoder();
  for (let i = 0; i < encoded.length; i++) {
    if (encoded[i] === "%" && /^[0-9a-f]{2}$/i.test(encoded.slice(i + 1, i + 3))) {
      bytes.push(parseInt(encoded.slice(i + 1, i + 3), 16));
      i += 2;
    } else {
      bytes.push(...utf8.encode(encoded[i]));
    }
  }
  let body = Uint8Array.from(bytes);
  if (base64) {
    const text = String.fromCharCode(...body).replace(/[\t\n\f\r ]/g, "");
    let decoded;
    try { decoded = atob(text); } catch { throw new TypeError("fetch failed", { cause: new Error("invalid data: URL") }); }
    body = Uint8Array.from(decoded, (c) => c.charCodeAt(0));
  }
  if (type === "" || type.startsWith(";")) type = `text/plain${type || ";charset=US-ASCII"}`;
  return new Response(body, { status: 200, statusText: "OK", headers: { "content-type": type }, url: href });
}

export async function fetch(input, init = {}) {
  let request = new Request(input, init);
  const signal = request._signal;
  if (signal?.aborted) throw abortError(signal);
  if (request.url.startsWith("data:")) {
    if (request.method !== "GET") throw new TypeError("fetch failed", { cause: new Error("a data: URL is fetched with GET only") });
    return dataResponse(request.url);
  }
  let payload = await extract(request._source);
  for (let hop = 0; ; hop++) {
    const headers = request.headers._pairs();
    if (payload.type && !request.headers.has("content-type")) headers.push(["content-type", payload.type]);
    if (!request.headers.has("accept")) headers.push(["accept", "*/*"]);
    if (!request.headers.has("user-agent")) headers.push(["user-agent", "node"]);
    const { head, body } = await exchange(request.method, request.url, headers, payload, signal);
    const response = new Response(head.status === 204 || head.status === 304 || request.method === "HEAD" ? null : body, {
      status: head.status,
      statusText: STATUS_TEXT[head.status] ?? "",
      headers: head.headers,
      url: request.url,
      redirected: hop > 0,
    });
    const location = response.headers.get("location");
    if (!REDIRECTS.has(head.status) || location === null || request.redirect === "manual") return response;
    if (request.redirect === "error") throw new TypeError("fetch failed", { cause: new Error("unexpected redirect") });
    if (hop >= 20) throw new TypeError("fetch failed", { cause: new Error("redirect count exceeded") });
    body.cancel();
    const next = new URL(location, request.url).href;
    const keepBody = head.status === 307 || head.status === 308;
    if (keepBody && payload.stream) throw new TypeError("fetch failed", { cause: new Error("cannot follow a redirect with a streamed body") });
    const method = keepBody || request.method === "HEAD" ? request.method : "GET";
    const nextHeaders = new Headers(request.headers);
    if (!keepBody) for (const name of ["content-type", "content-length", "content-encoding", "content-language", "content-location"]) nextHeaders.delete(name);
    // Credentials stay with the origin that was given them.
    if (new URL(next).origin !== new URL(request.url).origin) { nextHeaders.delete("authorization"); nextHeaders.delete("cookie"); }
    request = new Request(next, { method, headers: nextHeaders, redirect: request.redirect, signal: signal ?? undefined, body: keepBody ? request._source : null });
    if (!keepBody) payload = { bytes: null, type: null };
  }
}

export default { fetch, Headers, Request, Response, Blob, File, FormData };
